/*
 * tern bench — on one embedded broker and one generated stream, measure in
 * the same process:
 *   (a) a bare consumer, (b) a bare consume->produce loop, (c) the full
 *   pipeline (every model on) on the same records; rates from the first
 *   record to the last (group joins excluded); wall time per stage and CPU
 *   time per event of the pipeline;
 *   (d) event->recommendation latency at half of (c)'s rate: a paced
 *   producer feeds the continuation of the stream into a fresh input topic
 *   of the same state, a consumer of the recommendations measures
 *   (rt_bench.h says exactly what the figure spans);
 *   (e) tern's decoder against Avro-C's generic reader on the same bytes.
 * Soak mode (--seconds N) runs only a paced pipeline for N seconds and
 * samples RSS. Compare ratios, not absolute figures, on a noisy machine.
 * Progress goes to stderr, results to stdout (--json: one object).
 */
#include <getopt.h>
#include <stdarg.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../ingest/ingest_encode.h"
#include "../ingest/ingest_gen.h"
#include "rt_bench.h"
#include "rt_cmd.h"
#include "rt_feed.h"
#include "rt_kafka.h"
#include "rt_log.h"
#include "rt_metrics.h"
#include "rt_pipeline.h"

#define BENCH_IN       "bench-in"
#define BENCH_OUT      "bench-out"
#define BENCH_LAT_IN   "bench-latency-in"
#define BENCH_LAT_RECS "bench-latency-recommendations"
/* Records kept for the decoder comparison. */
#define DECODE_SAMPLE 100000
/* The embedded broker keeps ~5 MiB per partition (librdkafka's mock has no
 * retention setting): one partition per this many events, zstd-batched. */
#define EVENTS_PER_PARTITION 100000

typedef struct bench {
        int64_t events, partitions;
        int64_t users, items; /* the generated stream's; 0: its defaults */
        int64_t latency_partitions; /* (d)'s topics; the soak's: partitions */
        uint64_t seed;
        int json;
        double latency_seconds, rate, soak_seconds, sample_seconds;
        double warmup_seconds; /* soak: growth counted from here; 0: N/10 */
        int64_t wait_ms;       /* soak: linger and fetch waits, SOAK_WAIT_MS */
        const char *brokers;
        const char *remote;    /* --brokers: a broker of its own process */
        rt_broker_t *broker;   /* NULL with --brokers */
        rt_metrics_t *metrics; /* what holds memory, for the soak lines */
        tern_conf_t *conf;
        ingest_gen_t *gen;
        char state_dir[64];
        int64_t end[RT_MAX_PARTITIONS];
        /* decoder sample */
        tern_buf_t sample;
        uint32_t *sample_lens;
        size_t n_sample;
        /* results */
        double produce_eps, raw_eps, pass_eps, pipe_eps;
        double loop_cpu_s, proc_cpu_s, pipe_wall_s;
        rt_pipeline_stats_t pipe_stats;
        uint64_t raw_count, pass_count, pipe_count;
        rt_pace_result_t lat;
        double lat_rate;
        int have_lat;
        rt_decode_cmp_t dec;
} bench_t;

static void bench_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern bench [--events N] [--partitions P] [--seed S] "
            "[--json]\n"
            "                  [--users U] [--items I]\n"
            "                  [--latency-seconds S] [--rate EPS] "
            "[--latency-partitions L]\n"
            "                  [--seconds N [--sample-seconds S] "
            "[--warmup-seconds W]\n"
            "                   [--wait-ms W]]\n"
            "                  [--brokers ADDR]\n"
            "                  [-c FILE] [-X key=value]...\n"
            "\n"
            "Generate N events (default 1000000 of U users and I Zipf-skewed "
            "items,\n"
            "default 100k and 50k: views, impressions, clicks, carts, "
            "favourites,\n"
            "purchases) into one embedded broker and measure on the same\n"
            "records: (a) a bare consumer,\n"
            "(b) a bare consume->produce loop, (c) the full pipeline; then "
            "(d) the\n"
            "event->recommendation latency for S seconds (default 10) at "
            "half of (c)'s\n"
            "rate (or EPS), measured by a consumer of the recommendations; "
            "(e) tern's\n"
            "decoder vs Avro-C's generic reader on the same bytes. Prints "
            "events/s,\n"
            "(c)/(b), time per event by stage, latency percentiles, peak "
            "RSS.\n"
            "Partitions default to one per 100k events (at least 4): the "
            "embedded\n"
            "broker keeps ~5 MiB per partition. (d)'s two topics have L "
            "partitions\n"
            "(default 1): the embedded broker walks each partition's list of "
            "message\n"
            "sets from the oldest for every fetch, and every partition adds "
            "a message\n"
            "set per producer request; Kafka keeps an offset index.\n"
            "\n"
            "Soak: --seconds N runs only the pipeline, fed at EPS (default "
            "10000)\n"
            "for N seconds, and prints RSS every S seconds (default 10) with "
            "what holds\n"
            "it (RocksDB memtables, block cache, table readers; cached users "
            "and pairs;\n"
            "churn users, points, timers), its growth and the latency. "
            "Growth is\n"
            "counted from the sample at --warmup-seconds (default a tenth "
            "of N, at\n"
            "least 30), once the caches have filled up to their bounds. The "
            "paced\n"
            "producer lingers and both consumers wait up to W ms per fetch "
            "(default 20:\n"
            "the embedded broker walks its whole log per fetch once full); "
            "--wait-ms 1\n"
            "for latency figures.\n"
            "\n"
            "--brokers ADDR uses a broker of its own process instead of the "
            "embedded\n"
            "one, so the RSS is tern's alone. Start it with the bench's "
            "topics:\n"
            "  tern broker --topic bench-in:P --topic bench-out:P "
            "--topic bench-latency-in:P\n"
            "              --topic bench-latency-recommendations:P   "
            "(P: --partitions, 4;\n"
            "              without --seconds the latency topics need L "
            "partitions)\n");
}

static double cpu_s(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "bench: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* ---- input ---- */

static void keep_sample(bench_t *b, const tern_event_t *ev) {
        size_t before = b->sample.len;
        if (b->n_sample >= DECODE_SAMPLE)
                return;
        if (ingest_encode_event(ev, b->conf->wire_format == 2 ? 1 : -1,
                                &b->sample)) {
                b->sample.len = before;
                return;
        }
        b->sample_lens[b->n_sample++] = (uint32_t)(b->sample.len - before);
}

static int fill_topic(bench_t *b, char *errstr, size_t size) {
        rt_feed_t *feed;
        int64_t t0 = rt_mono_ns();
        tern_code_t rc = TERN_OK;
        progress("producing %lld events into %s (%lld partitions)",
                 (long long)b->events, BENCH_IN, (long long)b->partitions);
        feed = rt_feed_new(b->conf, b->brokers, BENCH_IN, "zstd", errstr, size);
        if (!feed)
                return -1;
        for (int64_t i = 0; i < b->events && rc == TERN_OK && !rt_stop; i++) {
                tern_event_t ev;
                tern_event_clear(&ev);
                ingest_gen_next(b->gen, &ev);
                keep_sample(b, &ev);
                rc = rt_feed_event(feed, &ev, errstr, size);
        }
        if (rc == TERN_OK)
                rc = rt_feed_flush(feed, 120000, errstr, size);
        b->produce_eps =
            (double)b->events / ((double)(rt_mono_ns() - t0) / 1e9);
        rt_feed_destroy(feed);
        return rc == TERN_OK && !rt_stop ? 0 : -1;
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

/* ---- (a) and (b) ---- */

static void pass_on(rd_kafka_t *producer, const rd_kafka_message_t *m) {
        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(BENCH_OUT),
                                 RD_KAFKA_V_KEY(m->key, m->key_len),
                                 RD_KAFKA_V_VALUE(m->payload, m->len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 10);
        rd_kafka_poll(producer, 0);
}

/* Consume everything; with a producer, pass each value on. */
static uint64_t consume_all(bench_t *b, rd_kafka_t *producer, double *eps,
                            char *errstr, size_t size) {
        rd_kafka_t *rk = plain_consumer(b, errstr, size);
        uint64_t n = 0;
        int64_t first = 0, idle_since = rt_mono_ns();
        if (!rk)
                return 0;
        while (n < (uint64_t)b->events && !rt_stop &&
               rt_mono_ns() - idle_since < 10000000000LL) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        if (!n++)
                                first = rt_mono_ns();
                        idle_since = rt_mono_ns();
                        if (producer)
                                pass_on(producer, m);
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
        progress("(b) consume -> produce");
        b->pass_count = consume_all(b, producer, &b->pass_eps, errstr, size);
        rd_kafka_destroy(producer);
        return 0;
}

/* ---- (c) ---- */

static rt_pipeline_t *open_pipeline(bench_t *b, const char *group, char *errstr,
                                    size_t size) {
        return rt_pipeline_new(&(rt_pipeline_opts_t){.conf = b->conf,
                                                     .brokers = b->brokers,
                                                     .state_dir = b->state_dir,
                                                     .group_id = group,
                                                     .metrics = b->metrics},
                               errstr, size);
}

static int run_pipeline(bench_t *b, char *errstr, size_t size) {
        rt_pipeline_stats_t *st = &b->pipe_stats;
        double loop0, proc0;
        rt_pipeline_t *p = open_pipeline(b, "bench-pipeline", errstr, size);
        tern_code_t rc;
        if (!p)
                return -1;
        progress("(c) pipeline");
        for (int i = 0; i < b->partitions; i++)
                rt_pipeline_drain_at(p, i, b->end[i]);
        loop0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
        proc0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
        rc = rt_pipeline_run(p, errstr, size);
        b->loop_cpu_s = cpu_s(CLOCK_THREAD_CPUTIME_ID) - loop0;
        b->proc_cpu_s = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - proc0;
        rt_pipeline_stats(p, st);
        b->pipe_count = st->records_in;
        b->pipe_wall_s =
            (double)(st->last_commit_ns - st->first_record_ns) / 1e9;
        b->pipe_eps = st->records_in > 1 && b->pipe_wall_s > 0
                          ? (double)st->records_in / b->pipe_wall_s
                          : 0;
        rt_pipeline_destroy(p);
        return rc == TERN_OK ? 0 : -1;
}

/* ---- (d) and soak ---- */

static void use_topics(bench_t *b, const char *in, const char *recs) {
        free(b->conf->topic_input);
        b->conf->topic_input = strdup(in);
        if (recs) {
                free(b->conf->topic_recommendations);
                b->conf->topic_recommendations = strdup(recs);
        }
}

/* Soak: librdkafka's mock broker finds a fetch offset by walking its
 * partition's list of message sets from the oldest (up to 100,000 of them,
 * 5 MiB), so once its logs are full every fetch costs a walk of the whole
 * list: the soak batches its input (20 ms linger) and fetches less often
 * (20 ms) to keep the mock's thread off the CPU. */
#define SOAK_WAIT_MS 20

static int run_paced(bench_t *b, double rate, double seconds, double sample_s,
                     const char *label, char *errstr, size_t size) {
        rt_pipeline_t *p;
        rt_pipeline_stats_t st;
        rt_pace_t *pc;
        tern_code_t rc;
        use_topics(b, BENCH_LAT_IN, BENCH_LAT_RECS);
        p = open_pipeline(b, "bench-latency-pipeline", errstr, size);
        if (!p)
                return -1;
        pc = rt_pace_start(
            &(rt_pace_opts_t){
                .conf = b->conf,
                .brokers = b->brokers,
                .input_topic = BENCH_LAT_IN,
                .recs_topic = BENCH_LAT_RECS,
                .partitions =
                    (int)(sample_s > 0 ? b->partitions : b->latency_partitions),
                .gen = b->gen,
                .rate = rate,
                .warmup_s = 2,
                .seconds = seconds,
                .sample_every_s = sample_s,
                .linger_ms = sample_s > 0 ? (int)b->wait_ms : 1,
                .fetch_wait_ms = sample_s > 0 ? (int)b->wait_ms : 1,
                .label = label,
                .metrics = b->metrics},
            p, errstr, size);
        if (!pc) {
                rt_pipeline_destroy(p);
                return -1;
        }
        rc = rt_pipeline_run(p, errstr, size);
        rt_pace_join(pc, &b->lat);
        rt_pipeline_stats(p, &st);
        b->lat.batches = st.batches;
        b->lat.commit_mean_ms =
            st.batches ? (double)st.commit_ns_total / (double)st.batches / 1e6
                       : 0;
        b->lat.commit_max_ms = (double)st.commit_ns_max / 1e6;
        if (st.batches) {
                b->lat.flush_mean_ms =
                    (double)st.ns_flush / (double)st.batches / 1e6;
                b->lat.write_mean_ms =
                    (double)st.ns_write / (double)st.batches / 1e6;
        }
        b->lat_rate = rate;
        b->have_lat = 1;
        rt_pipeline_destroy(p);
        return rc == TERN_OK ? 0 : -1;
}

static int run_latency(bench_t *b, char *errstr, size_t size) {
        double rate = b->rate > 0 ? b->rate : b->pipe_eps / 2;
        if (b->latency_seconds <= 0 || rate <= 0)
                return 0;
        progress("(d) latency: %.0f events/s for %.0f s (half of (c) unless "
                 "--rate)",
                 rate, b->latency_seconds);
        return run_paced(b, rate, b->latency_seconds, 0, "bench: (d)", errstr,
                         size);
}

/* ---- output ---- */

typedef struct stage_us {
        double decode, state, models, recs, produce, flush, write;
        double loop_cpu, proc_cpu;
} stage_us_t;

static stage_us_t stages(const bench_t *b) {
        const rt_pipeline_stats_t *st = &b->pipe_stats;
        double n = st->records_in ? (double)st->records_in : 1;
        return (stage_us_t){
            .decode = (double)st->ns_decode / n / 1e3,
            .state = (double)st->ns_state / n / 1e3,
            .models = (double)st->ns_models / n / 1e3,
            .recs = (double)st->ns_recs / n / 1e3,
            .produce = (double)st->ns_produce / n / 1e3,
            .flush = (double)st->ns_flush / n / 1e3,
            .write = (double)st->ns_write / n / 1e3,
            .loop_cpu = b->loop_cpu_s * 1e6 / n,
            .proc_cpu = b->proc_cpu_s * 1e6 / n,
        };
}

static double decode_ratio(const bench_t *b) {
        return b->dec.avro_ns > 0 ? b->dec.tern_ns / b->dec.avro_ns : 0;
}

/* Where the latency goes: split at the time tern's poll returned each
 * input (rt_bench.h). */
static void print_legs(const rt_pace_result_t *r) {
        printf("    legs             produce -> tern's poll p50 %.2f p99 %.2f "
               "ms; tern's poll -> received p50 %.2f p99 %.2f ms\n",
               r->in_p50_ms, r->in_p99_ms, r->out_p50_ms, r->out_p99_ms);
        printf("    commits          %llu, mean %.2f ms (waiting for outputs "
               "%.2f, state %.2f), max %.2f ms (inputs arriving meanwhile "
               "wait)\n",
               (unsigned long long)r->batches, r->commit_mean_ms,
               r->flush_mean_ms, r->write_mean_ms, r->commit_max_ms);
}

static void print_legs_json(const rt_pace_result_t *r) {
        printf("\"latency_legs_ms\":{\"in_p50\":%.3f,\"in_p99\":%.3f,"
               "\"out_p50\":%.3f,\"out_p99\":%.3f,\"commits\":%llu,"
               "\"commit_mean\":%.3f,\"commit_flush_mean\":%.3f,"
               "\"commit_state_mean\":%.3f,\"commit_max\":%.3f},",
               r->in_p50_ms, r->in_p99_ms, r->out_p50_ms, r->out_p99_ms,
               (unsigned long long)r->batches, r->commit_mean_ms,
               r->flush_mean_ms, r->write_mean_ms, r->commit_max_ms);
}

static void print_json(const bench_t *b) {
        stage_us_t s = stages(b);
        double ratio = b->pass_eps > 0 ? b->pipe_eps / b->pass_eps : 0;
        printf("{\"events\":%lld,\"partitions\":%lld,\"produce_eps\":%.0f,"
               "\"raw_consume_eps\":%.0f,\"passthrough_eps\":%.0f,"
               "\"pipeline_eps\":%.0f,\"ratio\":%.3f,",
               (long long)b->events, (long long)b->partitions, b->produce_eps,
               b->raw_eps, b->pass_eps, b->pipe_eps, ratio);
        printf("\"raw_consumed\":%llu,\"pipeline_consumed\":%llu,"
               "\"batches\":%llu,\"recommendations\":%llu,",
               (unsigned long long)b->raw_count,
               (unsigned long long)b->pipe_count,
               (unsigned long long)b->pipe_stats.batches,
               (unsigned long long)b->pipe_stats.recommendations);
        printf("\"stage_us\":{\"decode\":%.3f,\"state\":%.3f,\"models\":%.3f,"
               "\"recs\":%.3f,\"produce\":%.3f,\"flush\":%.3f,"
               "\"rocksdb_write\":%.3f},",
               s.decode, s.state, s.models, s.recs, s.produce, s.flush,
               s.write);
        printf("\"cpu_us_per_event\":{\"loop_thread\":%.3f,\"process\":%.3f},",
               s.loop_cpu, s.proc_cpu);
        printf("\"latency_partitions\":%lld,",
               (long long)b->latency_partitions);
        printf("\"latency_rate_eps\":%.0f,\"latency_sent\":%llu,"
               "\"latency_measured\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"p999_ms\":%.3f,\"max_ms\":%.3f,",
               b->have_lat ? b->lat.achieved_eps : 0,
               (unsigned long long)b->lat.sent,
               (unsigned long long)b->lat.measured, b->lat.p50_ms,
               b->lat.p99_ms, b->lat.p999_ms, b->lat.max_ms);
        print_legs_json(&b->lat);
        printf("\"decode\":{\"records\":%llu,\"bytes_per_record\":%.1f,"
               "\"tern_ns\":%.1f,\"avro_c_generic_ns\":%.1f,\"ratio\":%.4f},",
               (unsigned long long)b->dec.records,
               b->dec.records ? (double)b->dec.bytes / (double)b->dec.records
                              : 0,
               b->dec.tern_ns, b->dec.avro_ns, decode_ratio(b));
        printf("\"peak_rss_mb\":%.1f}\n", rt_bench_hwm_mb());
}

static void print_text(const bench_t *b) {
        stage_us_t s = stages(b);
        double ratio = b->pass_eps > 0 ? b->pipe_eps / b->pass_eps : 0;
        printf("events               %lld over %lld partitions, one embedded "
               "broker\n",
               (long long)b->events, (long long)b->partitions);
        printf("produce              %10.0f events/s\n", b->produce_eps);
        printf("(a) raw consume      %10.0f events/s  (%llu records)\n",
               b->raw_eps, (unsigned long long)b->raw_count);
        printf("(b) passthrough      %10.0f events/s  (%llu records)\n",
               b->pass_eps, (unsigned long long)b->pass_count);
        printf("(c) tern pipeline    %10.0f events/s  (%llu records, %llu "
               "batches)\n",
               b->pipe_eps, (unsigned long long)b->pipe_count,
               (unsigned long long)b->pipe_stats.batches);
        printf("(c)/(b)              %10.3f\n", ratio);
        printf("(c) us/event, wall   decode %.2f  state %.2f  models %.2f  "
               "recs %.2f  produce %.2f  flush %.2f  rocksdb-write %.2f\n",
               s.decode, s.state, s.models, s.recs, s.produce, s.flush,
               s.write);
        printf("(c) CPU us/event     loop thread %.2f  whole process %.2f "
               "(with librdkafka and broker threads)\n",
               s.loop_cpu, s.proc_cpu);
        if (b->have_lat)
                printf("(d) latency          p50 %.2f  p99 %.2f  p999 %.2f  "
                       "max %.2f ms  at %.0f events/s, %lld partition(s) "
                       "(%llu recommendations measured)\n",
                       b->lat.p50_ms, b->lat.p99_ms, b->lat.p999_ms,
                       b->lat.max_ms, b->lat.achieved_eps,
                       (long long)b->latency_partitions,
                       (unsigned long long)b->lat.measured);
        if (b->have_lat)
                print_legs(&b->lat);
        printf("(e) decode           tern %.1f ns  Avro-C generic %.1f ns  "
               "ratio %.3f  (%llu records)\n",
               b->dec.tern_ns, b->dec.avro_ns, decode_ratio(b),
               (unsigned long long)b->dec.records);
        printf("peak RSS             %10.1f MiB (the embedded broker's logs "
               "included)\n",
               rt_bench_hwm_mb());
}

/* ---- soak ---- */

static double soak_growth(const rt_pace_result_t *r, double from_s,
                          double *base_mb) {
        const rt_pace_sample_t *base = NULL;
        if (!r->n_samples)
                return 0;
        for (uint32_t i = 0; i < r->n_samples && !base; i++)
                if (r->samples[i].t_s >= from_s)
                        base = &r->samples[i];
        if (!base)
                base = &r->samples[0];
        *base_mb = base->rss_mb;
        return base->rss_mb > 0
                   ? (r->samples[r->n_samples - 1].rss_mb - base->rss_mb) /
                         base->rss_mb * 100
                   : 0;
}

/* Growth by a least-squares line through the samples from the first one
 * soak_growth() takes: one sample swings by 5-20 MiB (memtables filling
 * and flushing, blocks in flight), so two samples alone can say +3% or
 * +5% of the same run. *n_used < 3: no line (0 returned); *first_s: the
 * first sample's time. */
static double soak_growth_line(const rt_pace_result_t *r, double from_s,
                               uint32_t *n_used, double *first_s) {
        double st = 0, sy = 0, stt = 0, sty = 0, t0 = -1, t1 = 0, n = 0;
        double slope, base;
        uint32_t first = 0;
        while (first < r->n_samples && r->samples[first].t_s < from_s)
                first++;
        if (first == r->n_samples)
                first = 0; /* shorter than the warm-up: every sample */
        for (uint32_t i = first; i < r->n_samples; i++) {
                const rt_pace_sample_t *s = &r->samples[i];
                if (t0 < 0)
                        t0 = s->t_s;
                t1 = s->t_s;
                n++;
                st += s->t_s;
                sy += s->rss_mb;
                stt += s->t_s * s->t_s;
                sty += s->t_s * s->rss_mb;
        }
        *n_used = (uint32_t)n;
        *first_s = t0 < 0 ? 0 : t0;
        if (n < 3 || n * stt - st * st <= 0)
                return 0;
        slope = (n * sty - st * sy) / (n * stt - st * st);
        base = (sy - slope * st) / n + slope * t0;
        return base > 0 ? slope * (t1 - t0) / base * 100 : 0;
}

static void print_soak(const bench_t *b) {
        const rt_pace_result_t *r = &b->lat;
        double warm_s = b->warmup_seconds > 0       ? b->warmup_seconds
                        : b->soak_seconds / 10 > 30 ? b->soak_seconds / 10
                                                    : 30;
        double base_mb = 0, growth = soak_growth(r, warm_s, &base_mb);
        double end_mb = r->n_samples ? r->samples[r->n_samples - 1].rss_mb : 0;
        uint32_t n_line = 0;
        double line_from_s = 0;
        double line = soak_growth_line(r, warm_s, &n_line, &line_from_s);
        char line_note[96];
        if (n_line >= 3)
                snprintf(line_note, sizeof(line_note),
                         "by a line through the %u samples from %.0f s: "
                         "%+.2f%%",
                         n_line, line_from_s, line);
        else
                snprintf(line_note, sizeof(line_note),
                         "too few samples for a line");
        if (!b->json) {
                printf("soak                 %.0f s at %.0f events/s "
                       "(%llu events, %llu recommendations measured)\n",
                       b->soak_seconds, r->achieved_eps,
                       (unsigned long long)r->sent,
                       (unsigned long long)r->measured);
                printf("RSS                  %.1f MiB at %.0f s -> %.1f MiB at "
                       "the end: growth %.2f%% (%s); peak %.1f MiB\n",
                       base_mb, warm_s, end_mb, growth, line_note,
                       rt_bench_hwm_mb());
                printf("latency              p50 %.2f  p99 %.2f  p999 %.2f  "
                       "max %.2f ms\n",
                       r->p50_ms, r->p99_ms, r->p999_ms, r->max_ms);
                print_legs(r);
                return;
        }
        printf("{\"soak_seconds\":%.0f,\"rate_eps\":%.0f,\"events\":%llu,"
               "\"rss_base_s\":%.0f,\"rss_base_mb\":%.1f,\"rss_end_mb\":%.1f,"
               "\"rss_growth_pct\":%.3f,\"rss_growth_line_pct\":%.3f,"
               "\"rss_growth_line_samples\":%u,"
               "\"peak_rss_mb\":%.1f,\"p50_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"p999_ms\":%.3f,",
               b->soak_seconds, r->achieved_eps, (unsigned long long)r->sent,
               warm_s, base_mb, end_mb, growth, line, n_line, rt_bench_hwm_mb(),
               r->p50_ms, r->p99_ms, r->p999_ms);
        print_legs_json(r);
        printf("\"samples\":[");
        for (uint32_t i = 0; i < r->n_samples; i++)
                printf("%s[%.2f,%.1f]", i ? "," : "", r->samples[i].t_s,
                       r->samples[i].rss_mb);
        printf("]}\n");
}

/* ---- phases ---- */

/* librdkafka's mock broker (2.0) answers no CreateTopics: with --brokers
 * the topics come from `tern broker --topic` (see the usage); this only
 * says which one is missing. */
static int check_remote_topics(bench_t *b, char *errstr, size_t size) {
        const char *need[] = {BENCH_IN, BENCH_OUT, BENCH_LAT_IN,
                              BENCH_LAT_RECS};
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_t *rk;
        int rc = 0;
        rd_kafka_conf_set(kc, "bootstrap.servers", b->brokers, NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, size);
        if (!rk)
                return -1;
        if (rd_kafka_metadata(rk, 1, NULL, &md, 10000)) {
                snprintf(errstr, size, "no metadata from %s", b->brokers);
                rd_kafka_destroy(rk);
                return -1;
        }
        for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && !rc; i++) {
                long long want = i >= 2 && b->soak_seconds <= 0
                                     ? (long long)b->latency_partitions
                                     : (long long)b->partitions;
                int found = 0;
                for (int t = 0; t < md->topic_cnt; t++)
                        if (!strcmp(md->topics[t].topic, need[i]))
                                found = md->topics[t].partition_cnt == want;
                if (!found) {
                        snprintf(errstr, size,
                                 "%s has no topic %s with %lld partitions "
                                 "(tern broker --topic %s:%lld)",
                                 b->brokers, need[i], want, need[i], want);
                        rc = -1;
                }
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return rc;
}

static int make_topics(bench_t *b, char *errstr, size_t size) {
        int parts = (int)b->partitions;
        int lat_parts =
            (int)(b->soak_seconds > 0 ? b->partitions : b->latency_partitions);
        use_topics(b, BENCH_IN, NULL);
        if (!b->broker)
                return check_remote_topics(b, errstr, size);
        return rt_broker_create_topics(b->broker, b->conf, parts, errstr,
                                       size) ||
               rt_broker_create_topic(b->broker, BENCH_OUT, parts, errstr,
                                      size) ||
               rt_broker_create_topic(b->broker, BENCH_LAT_IN, lat_parts,
                                      errstr, size) ||
               rt_broker_create_topic(b->broker, BENCH_LAT_RECS, lat_parts,
                                      errstr, size);
}

static int measure(bench_t *b, char *errstr, size_t size) {
        if (fill_topic(b, errstr, size) || read_ends(b, errstr, size))
                return -1;
        progress("(a) raw consume");
        b->raw_count = consume_all(b, NULL, &b->raw_eps, errstr, size);
        if (b->raw_count < (uint64_t)b->events)
                RT_LOG(RT_LOG_WARN, "bench",
                       "only %llu of %lld records came back: the embedded "
                       "broker dropped data; use more --partitions",
                       (unsigned long long)b->raw_count, (long long)b->events);
        if (run_passthrough(b, errstr, size) || run_pipeline(b, errstr, size) ||
            run_latency(b, errstr, size))
                return -1;
        progress("(e) decoders on %zu records", b->n_sample);
        if (rt_bench_decode(b->conf, b->sample.data, b->sample_lens,
                            b->n_sample, 11, &b->dec, errstr, size) != TERN_OK)
                return -1;
        if (b->json)
                print_json(b);
        else
                print_text(b);
        return 0;
}

static int soak(bench_t *b, char *errstr, size_t size) {
        double rate = b->rate > 0 ? b->rate : 10000;
        progress("soak: %.0f events/s for %.0f s, RSS every %.0f s", rate,
                 b->soak_seconds, b->sample_seconds);
        if (run_paced(b, rate, b->soak_seconds, b->sample_seconds, "soak",
                      errstr, size))
                return -1;
        print_soak(b);
        return 0;
}

static void remove_state(const bench_t *b) {
        char cmd[128];
        if (!b->state_dir[0])
                return;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->state_dir);
        if (system(cmd) != 0)
                RT_LOG(RT_LOG_WARN, "bench", "could not remove %s",
                       b->state_dir);
}

static int bench_exec(bench_t *b) {
        char errstr[1024];
        ingest_gen_conf_t gc;
        int rc = -1;
        ingest_gen_conf_default(&gc);
        gc.seed = b->seed;
        gc.users = (uint32_t)b->users;
        gc.items = (uint32_t)b->items;
        b->gen = ingest_gen_new(&gc);
        snprintf(errstr, sizeof(errstr), "out of memory");
        /* Soak only: a snapshot per commit would weigh on (c). */
        if (b->soak_seconds > 0)
                b->metrics = rt_metrics_new(0);
        if (!b->remote)
                b->broker = rt_broker_new(1, errstr, sizeof(errstr));
        snprintf(b->state_dir, sizeof(b->state_dir), "/tmp/tern-bench-XXXXXX");
        if (!b->gen || (b->soak_seconds > 0 && !b->metrics) ||
            (!b->remote && !b->broker) || !mkdtemp(b->state_dir)) {
                if (b->gen && (b->metrics || b->soak_seconds <= 0) &&
                    (b->remote || b->broker))
                        snprintf(errstr, sizeof(errstr), "mkdtemp: %m");
                b->state_dir[0] = 0;
                goto out;
        }
        b->brokers = b->broker ? rt_broker_bootstraps(b->broker) : b->remote;
        if (make_topics(b, errstr, sizeof(errstr)))
                goto out;
        rc = b->soak_seconds > 0 ? soak(b, errstr, sizeof(errstr))
                                 : measure(b, errstr, sizeof(errstr));
out:
        if (rc)
                fprintf(stderr, "tern bench: %s\n", errstr);
        if (b->broker)
                rt_broker_destroy(b->broker);
        rt_metrics_destroy(b->metrics);
        ingest_gen_destroy(b->gen);
        remove_state(b);
        return rc ? RT_EXIT_FAIL : RT_EXIT_OK;
}

/* ---- options ---- */

static int parse_seconds(const char *s, double *out) {
        char *end;
        *out = strtod(s, &end);
        return end == s || *end || *out < 0 || *out > 1e7;
}

static int bench_opt(bench_t *b, int c, const char *arg, int64_t *seed) {
        switch (c) {
        case 'n':
                return rt_parse_i64(arg, &b->events) || b->events < 1;
        case 'p':
                return rt_parse_i64(arg, &b->partitions) || b->partitions < 1 ||
                       b->partitions > 64;
        case 'P':
                return rt_parse_i64(arg, &b->latency_partitions) ||
                       b->latency_partitions < 1 || b->latency_partitions > 64;
        case 's':
                return rt_parse_i64(arg, seed);
        case 'u':
                return rt_parse_i64(arg, &b->users) || b->users < 1 ||
                       b->users > 100000000;
        case 'I':
                return rt_parse_i64(arg, &b->items) || b->items < 1 ||
                       b->items > 100000000;
        case 'l':
                return parse_seconds(arg, &b->latency_seconds);
        case 'r':
                return parse_seconds(arg, &b->rate);
        case 'S':
                return parse_seconds(arg, &b->soak_seconds);
        case 'i':
                return parse_seconds(arg, &b->sample_seconds) ||
                       b->sample_seconds < 1;
        case 'W':
                return parse_seconds(arg, &b->warmup_seconds);
        case 'j':
                b->json = 1;
                return 0;
        case 'B':
                b->remote = arg;
                return !*arg;
        case 'w':
                return rt_parse_i64(arg, &b->wait_ms) || b->wait_ms < 0 ||
                       b->wait_ms > 1000;
        }
        return -1;
}

/* Soak (see SOAK_WAIT_MS): the pipeline's consumer waits --wait-ms too
 * (read before the options are parsed, so that -X still overrides it). */
static void soak_fetch_wait(rt_common_opts_t *co, int argc, char **argv) {
        static char kv[64]; /* overrides keep the pointer */
        const char *wait = NULL;
        int soak = 0;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--seconds"))
                        soak = 1;
                else if (!strcmp(argv[i], "--wait-ms") && i + 1 < argc)
                        wait = argv[i + 1];
                else if (!strncmp(argv[i], "--wait-ms=", 10))
                        wait = argv[i] + 10;
        }
        if (!soak)
                return;
        snprintf(kv, sizeof(kv), "kafka.consumer.fetch.wait.max.ms=%d",
                 wait ? atoi(wait) : SOAK_WAIT_MS);
        rt_overrides_add(&co->ov, kv);
}

static int bench_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"events", required_argument, NULL, 'n'},
            {"partitions", required_argument, NULL, 'p'},
            {"latency-partitions", required_argument, NULL, 'P'},
            {"seed", required_argument, NULL, 's'},
            {"users", required_argument, NULL, 'u'},
            {"items", required_argument, NULL, 'I'},
            {"latency-seconds", required_argument, NULL, 'l'},
            {"rate", required_argument, NULL, 'r'},
            {"seconds", required_argument, NULL, 'S'},
            {"sample-seconds", required_argument, NULL, 'i'},
            {"warmup-seconds", required_argument, NULL, 'W'},
            {"json", no_argument, NULL, 'j'},
            {"brokers", required_argument, NULL, 'B'},
            {"wait-ms", required_argument, NULL, 'w'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        bench_t b = {.events = 1000000,
                     .latency_partitions = 1,
                     .seed = 1,
                     .latency_seconds = 10,
                     .sample_seconds = 10,
                     .wait_ms = SOAK_WAIT_MS};
        rt_common_opts_t co = {0};
        int64_t seed = 1;
        int c, status;
        /* The embedded broker answers a fetch with no data only after
         * fetch.wait.max.ms (500 ms by default) even when data arrives
         * meanwhile, which Kafka does not: the latency would measure
         * that. -X may set it back. */
        rt_overrides_add(&co.ov, "kafka.consumer.fetch.wait.max.ms=1");
        soak_fetch_wait(&co, argc, argv);
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                if (c == 'h') {
                        bench_usage(stdout);
                        return RT_EXIT_OK;
                }
                if (c == '?' || bench_opt(&b, c, optarg, &seed)) {
                        if (c != '?')
                                fprintf(stderr, "tern bench: bad value '%s'\n",
                                        optarg);
                        bench_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        if (!b.partitions && b.soak_seconds > 0)
                b.partitions = 4; /* fewer lists for the mock to walk */
        if (!b.partitions) {
                b.partitions = (b.events + EVENTS_PER_PARTITION - 1) /
                               EVENTS_PER_PARTITION;
                b.partitions = b.partitions < 4    ? 4
                               : b.partitions > 64 ? 64
                                                   : b.partitions;
        }
        b.seed = (uint64_t)seed;
        b.conf = rt_conf_load("bench", &co);
        if (!b.conf)
                return RT_EXIT_USAGE;
        tern_buf_init(&b.sample, 64u << 20);
        b.sample_lens = calloc(DECODE_SAMPLE, sizeof(*b.sample_lens));
        rt_signals_install();
        status = b.sample_lens ? bench_exec(&b) : RT_EXIT_FAIL;
        free(b.sample_lens);
        tern_buf_free(&b.sample);
        conf_destroy(b.conf);
        return status;
}

const rt_cmd_t rt_cmd_bench = {
    "bench", "raw consume vs passthrough vs pipeline, latency, decoders, soak",
    bench_main};
