/*
 * tern bench — on one embedded broker and one generated stream, measure in
 * the same process: (a) a bare consumer, (b) a bare consume->produce loop,
 * (c) the full pipeline. Rates are taken from the first record to the last
 * (group joins excluded); compare the ratio (c)/(b), not absolute figures,
 * on a noisy machine.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../ingest/ingest_gen.h"
#include "rt_cmd.h"
#include "rt_feed.h"
#include "rt_kafka.h"
#include "rt_log.h"
#include "rt_pipeline.h"

#define BENCH_IN  "bench-in"
#define BENCH_OUT "bench-out"

typedef struct bench {
        int64_t events;
        int64_t partitions;
        uint64_t seed;
        const char *brokers;
        tern_conf_t *conf;
        int64_t end[RT_MAX_PARTITIONS];
        double produce_eps, raw_eps, pass_eps, pipe_eps;
        rt_pipeline_stats_t pipe_stats;
        uint64_t raw_count, pass_count, pipe_count;
} bench_t;

static void bench_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern bench [--events N] [--partitions P] [--seed S] "
            "[--json]\n"
            "                  [-c FILE] [-X key=value]...\n"
            "\n"
            "Generate N events (default 200000) into an embedded broker, then\n"
            "measure a bare consumer, a bare consume->produce loop and the "
            "full\n"
            "pipeline on the same records. Prints events/s for each and the "
            "ratio\n"
            "pipeline/passthrough. The embedded broker keeps ~5 MiB per "
            "partition\n"
            "(zstd-compressed here): raise --partitions with --events.\n");
}

static int fill_topic(bench_t *b, char *errstr, size_t size) {
        ingest_gen_conf_t gc;
        ingest_gen_t *gen;
        rt_feed_t *feed;
        int64_t t0 = rt_mono_ns();
        tern_code_t rc = TERN_OK;
        ingest_gen_conf_default(&gc);
        gc.seed = b->seed;
        feed = rt_feed_new(b->conf, b->brokers, BENCH_IN, "zstd", errstr, size);
        if (!feed)
                return -1;
        gen = ingest_gen_new(&gc);
        for (int64_t i = 0; i < b->events && rc == TERN_OK; i++) {
                tern_event_t ev;
                tern_event_clear(&ev);
                ingest_gen_next(gen, &ev);
                rc = rt_feed_event(feed, &ev, errstr, size);
        }
        if (rc == TERN_OK)
                rc = rt_feed_flush(feed, 120000, errstr, size);
        b->produce_eps =
            (double)b->events / ((double)(rt_mono_ns() - t0) / 1e9);
        ingest_gen_destroy(gen);
        rt_feed_destroy(feed);
        return rc == TERN_OK ? 0 : -1;
}

static rd_kafka_t *plain_consumer(bench_t *b, char *errstr, size_t size) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_t *rk;
        rd_kafka_conf_set(kc, "bootstrap.servers", b->brokers, NULL, 0);
        rd_kafka_conf_set(kc, "group.id", "bench-plain", NULL, 0);
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, size);
        if (!rk)
                return NULL;
        rd_kafka_poll_set_consumer(rk);
        parts = rd_kafka_topic_partition_list_new((int)b->partitions);
        for (int p = 0; p < b->partitions; p++)
                rd_kafka_topic_partition_list_add(parts, BENCH_IN, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        return rk;
}

/* (a) and (b): consume everything; with a producer, pass each value on. */
static uint64_t consume_all(bench_t *b, rd_kafka_t *producer, double *eps,
                            char *errstr, size_t size) {
        rd_kafka_t *rk = plain_consumer(b, errstr, size);
        uint64_t n = 0;
        int64_t first = 0, idle_since = rt_mono_ns();
        if (!rk)
                return 0;
        while (n < (uint64_t)b->events &&
               rt_mono_ns() - idle_since < 10000000000LL) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        if (!n++)
                                first = rt_mono_ns();
                        idle_since = rt_mono_ns();
                        while (producer &&
                               rd_kafka_producev(
                                   producer, RD_KAFKA_V_TOPIC(BENCH_OUT),
                                   RD_KAFKA_V_KEY(m->key, m->key_len),
                                   RD_KAFKA_V_VALUE(m->payload, m->len),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_END) ==
                                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(producer, 10);
                        if (producer)
                                rd_kafka_poll(producer, 0);
                }
                rd_kafka_message_destroy(m);
        }
        if (producer)
                rd_kafka_flush(producer, 60000);
        *eps = n > 1 ? (double)n / ((double)(rt_mono_ns() - first) / 1e9) : 0;
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

static int run_passthrough(bench_t *b, char *errstr, size_t size) {
        rd_kafka_conf_t *pc =
            rt_kafka_producer_conf(b->conf, b->brokers, errstr, size);
        rd_kafka_t *producer;
        if (!pc)
                return -1;
        producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, size);
        if (!producer)
                return -1;
        b->pass_count = consume_all(b, producer, &b->pass_eps, errstr, size);
        rd_kafka_destroy(producer);
        return 0;
}

static int run_pipeline(bench_t *b, char *errstr, size_t size) {
        char state_dir[] = "/tmp/tern-bench-XXXXXX", cmd[128];
        rt_pipeline_stats_t st;
        rt_pipeline_t *p;
        tern_code_t rc;
        if (!mkdtemp(state_dir))
                return -1;
        p = rt_pipeline_new(&(rt_pipeline_opts_t){.conf = b->conf,
                                                  .brokers = b->brokers,
                                                  .state_dir = state_dir,
                                                  .group_id = "bench-pipeline"},
                            errstr, size);
        if (!p)
                return -1;
        for (int i = 0; i < b->partitions; i++)
                rt_pipeline_drain_at(p, i, b->end[i]);
        rc = rt_pipeline_run(p, errstr, size);
        rt_pipeline_stats(p, &st);
        b->pipe_stats = st;
        b->pipe_count = st.records_in;
        b->pipe_eps =
            st.records_in > 1
                ? (double)st.records_in /
                      ((double)(st.last_commit_ns - st.first_record_ns) / 1e9)
                : 0;
        rt_pipeline_destroy(p);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
        if (system(cmd) != 0)
                RT_LOG(RT_LOG_WARN, "bench", "could not remove %s", state_dir);
        return rc == TERN_OK ? 0 : -1;
}

static int read_ends(bench_t *b, char *errstr, size_t size) {
        rd_kafka_t *rk = plain_consumer(b, errstr, size);
        if (!rk)
                return -1;
        for (int p = 0; p < b->partitions; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, BENCH_IN, p, &lo, &hi,
                                                     10000)) {
                        snprintf(errstr, size, "cannot read end offsets");
                        rd_kafka_destroy(rk);
                        return -1;
                }
                b->end[p] = hi;
        }
        rd_kafka_destroy(rk);
        return 0;
}

static void print_results(const bench_t *b, int json) {
        struct rusage ru;
        double ratio = b->pass_eps > 0 ? b->pipe_eps / b->pass_eps : 0;
        getrusage(RUSAGE_SELF, &ru);
        if (json) {
                printf(
                    "{\"events\":%lld,\"partitions\":%lld,\"produce_eps\":%.0f,"
                    "\"raw_consume_eps\":%.0f,\"passthrough_eps\":%.0f,"
                    "\"pipeline_eps\":%.0f,\"ratio\":%.3f,\"raw_consumed\":%"
                    "llu,"
                    "\"pipeline_consumed\":%llu,\"peak_rss_mb\":%.1f}\n",
                    (long long)b->events, (long long)b->partitions,
                    b->produce_eps, b->raw_eps, b->pass_eps, b->pipe_eps, ratio,
                    (unsigned long long)b->raw_count,
                    (unsigned long long)b->pipe_count, ru.ru_maxrss / 1024.0);
                return;
        }
        printf("events               %lld over %lld partitions\n",
               (long long)b->events, (long long)b->partitions);
        printf("produce              %10.0f events/s\n", b->produce_eps);
        printf("(a) raw consume      %10.0f events/s  (%llu records)\n",
               b->raw_eps, (unsigned long long)b->raw_count);
        printf("(b) passthrough      %10.0f events/s  (%llu records)\n",
               b->pass_eps, (unsigned long long)b->pass_count);
        printf("(c) tern pipeline    %10.0f events/s  (%llu records, %.0f "
               "ns/event)\n",
               b->pipe_eps, (unsigned long long)b->pipe_count,
               b->pipe_eps > 0 ? 1e9 / b->pipe_eps : 0);
        printf("(c)/(b)              %10.3f\n", ratio);
        {
                const rt_pipeline_stats_t *st = &b->pipe_stats;
                double n = st->records_in ? (double)st->records_in : 1;
                printf(
                    "pipeline ns/event    decode %.0f  state %.0f  recs %.0f  "
                    "produce %.0f  flush %.0f  rocksdb-write %.0f  (batches "
                    "%llu)\n",
                    st->ns_decode / n, st->ns_state / n, st->ns_recs / n,
                    st->ns_produce / n, st->ns_flush / n, st->ns_write / n,
                    (unsigned long long)st->batches);
        }
        printf("peak RSS             %10.1f MiB\n", ru.ru_maxrss / 1024.0);
}

static int bench_exec(bench_t *b, int json) {
        char errstr[1024];
        rt_broker_t *broker = rt_broker_new(1, errstr, sizeof(errstr));
        int rc = -1;
        if (!broker ||
            rt_broker_create_topic(broker, BENCH_IN, (int)b->partitions, errstr,
                                   sizeof(errstr)) ||
            rt_broker_create_topic(broker, BENCH_OUT, (int)b->partitions,
                                   errstr, sizeof(errstr)))
                goto out;
        b->brokers = rt_broker_bootstraps(broker);
        free(b->conf->topic_input);
        b->conf->topic_input = strdup(BENCH_IN);
        if (fill_topic(b, errstr, sizeof(errstr)) ||
            read_ends(b, errstr, sizeof(errstr)))
                goto out;
        b->raw_count =
            consume_all(b, NULL, &b->raw_eps, errstr, sizeof(errstr));
        if (b->raw_count < (uint64_t)b->events)
                RT_LOG(
                    RT_LOG_WARN, "bench",
                    "only %llu of %lld records came back: "
                    "the embedded broker dropped data; use more --partitions",
                    (unsigned long long)b->raw_count, (long long)b->events);
        if (run_passthrough(b, errstr, sizeof(errstr)) ||
            run_pipeline(b, errstr, sizeof(errstr)))
                goto out;
        print_results(b, json);
        rc = 0;
out:
        if (rc)
                fprintf(stderr, "tern bench: %s\n", errstr);
        rt_broker_destroy(broker);
        return rc ? RT_EXIT_FAIL : RT_EXIT_OK;
}

static int bench_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"events", required_argument, NULL, 'n'},
            {"partitions", required_argument, NULL, 'p'},
            {"seed", required_argument, NULL, 's'},
            {"json", no_argument, NULL, 'j'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        bench_t b = {.events = 200000, .partitions = 4, .seed = 1};
        rt_common_opts_t co = {0};
        int64_t seed = 1;
        int c, json = 0, status;
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'n':
                        if (rt_parse_i64(optarg, &b.events) || b.events < 1)
                                goto bad;
                        break;
                case 'p':
                        if (rt_parse_i64(optarg, &b.partitions) ||
                            b.partitions < 1 || b.partitions > 64)
                                goto bad;
                        break;
                case 's':
                        if (rt_parse_i64(optarg, &seed))
                                goto bad;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        bench_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        bench_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        b.seed = (uint64_t)seed;
        b.conf = rt_conf_load("bench", &co);
        if (!b.conf)
                return RT_EXIT_USAGE;
        rt_signals_install();
        status = bench_exec(&b, json);
        conf_destroy(b.conf);
        return status;
bad:
        fprintf(stderr, "tern bench: bad value '%s' for --%s\n", optarg,
                c == 'n'   ? "events"
                : c == 'p' ? "partitions"
                           : "seed");
        return RT_EXIT_USAGE;
}

const rt_cmd_t rt_cmd_bench = {
    "bench", "raw consume vs passthrough vs pipeline, events/s", bench_main};
