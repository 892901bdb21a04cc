/*
 * tern demo — everything embedded: a Kafka-protocol broker, a synthetic
 * shop (Zipf-skewed items, sessions, impressions and clicks, a broken record
 * now and then), the real pipeline, and a one-line summary per second.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ingest/ingest_gen.h"
#include "rt_cmd.h"
#include "rt_feed.h"
#include "rt_http.h"
#include "rt_kafka.h"
#include "rt_log.h"
#include "rt_pipeline.h"

#define DEMO_MAX_LAG 60000 /* events, all partitions */

typedef struct demo {
        rt_feed_t *feed;
        rt_pipeline_t *pipeline;
        int64_t rate; /* events per second */
        uint64_t seed;
        int partitions;
        _Atomic uint64_t produced;
        _Atomic int stop_feed;
        char feed_err[512];
} demo_t;

static void demo_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern demo [--seconds N] [--rate EPS] [--seed S] [-c FILE]\n"
            "                 [-X key=value]... [--state-dir DIR]\n"
            "\n"
            "Start an embedded Kafka-protocol broker, a synthetic shop "
            "producing\n"
            "behaviour events (one in 5000 deliberately broken, to show the\n"
            "dead-letter path), and the pipeline; print a summary line each "
            "second.\n"
            "Stops on Ctrl-C or after --seconds.\n"
            "\n"
            "  -s, --seconds N     stop after N seconds (default: run until "
            "Ctrl-C)\n"
            "  -r, --rate EPS      events per second produced, at most "
            "(default 20000;\n"
            "                      the shop waits when the pipeline falls "
            "behind)\n"
            "      --seed S        generator seed (default 1)\n"
            "  -c, --config FILE   YAML config; default: built-in\n"
            "  -X key.path=value   override one config key (repeatable)\n"
            "      --state-dir DIR keep state here (default: a temporary "
            "directory)\n"
            "      --http ADDR     serve /metrics, /healthz, /readyz on "
            "host:port\n"
            "  -h, --help\n");
}

static int feed_garbage(demo_t *d, uint64_t n, int64_t ts_ms) {
        char junk[24], errstr[256];
        int len = snprintf(junk, sizeof(junk), "\x02not-avro-%llu",
                           (unsigned long long)n);
        return rt_feed_raw(d->feed, "demo", 4, junk, (size_t)len, ts_ms, errstr,
                           sizeof(errstr)) == TERN_OK
                   ? 0
                   : -1;
}

static int64_t total_position(const demo_t *d) {
        int64_t sum = 0;
        for (int p = 0; p < d->partitions; p++) {
                int64_t pos = rt_pipeline_position(d->pipeline, p);
                sum += pos > 0 ? pos : 0;
        }
        return sum;
}

static void *demo_feeder(void *arg) {
        demo_t *d = arg;
        ingest_gen_conf_t gc;
        ingest_gen_t *gen;
        int64_t t0 = rt_mono_ns();
        pthread_setname_np(pthread_self(), "demo:feed");
        ingest_gen_conf_default(&gc);
        gc.seed = d->seed;
        gen = ingest_gen_new(&gc);
        while (!atomic_load(&d->stop_feed)) {
                uint64_t n = atomic_load(&d->produced);
                int64_t due = (rt_mono_ns() - t0) * d->rate / 1000000000;
                tern_event_t ev;
                /* --rate is an upper bound: never run further ahead of the
                 * pipeline than the embedded broker keeps (~5 MiB a
                 * partition), or unread events would be dropped. */
                if ((int64_t)n >= due ||
                    (int64_t)n - total_position(d) > DEMO_MAX_LAG) {
                        usleep(1000);
                        continue;
                }
                tern_event_clear(&ev);
                ingest_gen_next(gen, &ev);
                if ((n + 1) % 5000 == 0
                        ? feed_garbage(d, n, ev.ts_ms)
                        : rt_feed_event(d->feed, &ev, d->feed_err,
                                        sizeof(d->feed_err)) != TERN_OK)
                        break;
                atomic_fetch_add(&d->produced, 1);
        }
        ingest_gen_destroy(gen);
        return NULL;
}

static void *demo_pipeline(void *arg) {
        demo_t *d = arg;
        char errstr[1024];
        pthread_setname_np(pthread_self(), "tern:loop");
        if (rt_pipeline_run(d->pipeline, errstr, sizeof(errstr)) != TERN_OK) {
                RT_LOG(RT_LOG_ERROR, "demo", "pipeline stopped: %s", errstr);
                rt_stop = 1;
        }
        return NULL;
}

static void print_progress(demo_t *d, double secs, uint64_t *last_events) {
        rt_pipeline_stats_t st;
        uint64_t produced = atomic_load(&d->produced);
        rt_pipeline_stats(d->pipeline, &st);
        fprintf(
            stderr,
            "demo %5.0fs  produced %llu  processed %llu (%llu/s)  recs %llu  "
            "dead-letter %llu  batches %llu  lag %lld\n",
            secs, (unsigned long long)produced,
            (unsigned long long)st.records_in,
            (unsigned long long)(st.records_in - *last_events),
            (unsigned long long)st.recommendations,
            (unsigned long long)st.dead_lettered,
            (unsigned long long)st.batches,
            (long long)produced - (long long)total_position(d));
        *last_events = st.records_in;
}

static void print_summary(demo_t *d, double secs) {
        rt_pipeline_stats_t st;
        char outputs[2048];
        tern_buf_t ctr;
        tern_buf_init(&ctr, 1 << 20);
        rt_pipeline_stats(d->pipeline, &st);
        rt_pipeline_outputs_json(d->pipeline, outputs, sizeof(outputs));
        rt_pipeline_ctr_json(d->pipeline, &ctr); /* the pipeline has stopped */
        tern_buf_put_u8(&ctr, 0);
        printf("{\"seconds\":%.1f,\"produced\":%llu,\"records_in\":%llu,"
               "\"events_in\":%llu,\"events\":{\"VIEW\":%llu,\"CLICK\":%llu,"
               "\"CART\":%llu,\"FAVORITE\":%llu,\"PURCHASE\":%llu,"
               "\"IMPRESSION\":%llu},\"dead_lettered\":%llu,\"outputs\":%s,"
               "\"batches\":%llu,\"mean_commit_ms\":%.2f,\"ctr\":%s}\n",
               secs, (unsigned long long)atomic_load(&d->produced),
               (unsigned long long)st.records_in,
               (unsigned long long)st.events_in,
               (unsigned long long)st.by_type[0],
               (unsigned long long)st.by_type[1],
               (unsigned long long)st.by_type[2],
               (unsigned long long)st.by_type[3],
               (unsigned long long)st.by_type[4],
               (unsigned long long)st.by_type[5],
               (unsigned long long)st.dead_lettered, outputs,
               (unsigned long long)st.batches,
               st.batches ? (double)st.commit_ns_total / st.batches / 1e6 : 0.0,
               ctr.overflow ? "null" : (const char *)ctr.data);
        tern_buf_free(&ctr);
}

static int demo_exec(demo_t *d, tern_conf_t *conf, int64_t seconds,
                     rt_common_opts_t *co) {
        char errstr[1024];
        rt_broker_t *b =
            rt_broker_new(RT_BROKER_EMBEDDED, errstr, sizeof(errstr));
        pthread_t feeder_thread, pipeline_thread;
        rt_metrics_t *metrics = NULL;
        rt_http_t *http = NULL;
        uint64_t last = 0;
        int64_t t0 = rt_mono_ns(), next_report = 1;
        int status = RT_EXIT_FAIL;
        if (!b || rt_broker_create_topics(b, conf, (int)conf->input_partitions,
                                          errstr, sizeof(errstr)))
                goto fail;
        d->partitions = (int)conf->input_partitions;
        if (rt_http_open(conf, &metrics, &http))
                goto out;
        d->pipeline = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf,
                                  .brokers = rt_broker_bootstraps(b),
                                  .reload = rt_conf_reload_cb,
                                  .reload_opaque = co,
                                  .metrics = metrics},
            errstr, sizeof(errstr));
        if (!d->pipeline)
                goto fail;
        d->feed = rt_feed_new(conf, rt_broker_bootstraps(b), conf->topic_input,
                              "lz4", errstr, sizeof(errstr));
        if (!d->feed)
                goto fail;
        RT_LOG(RT_LOG_INFO, "demo",
               "embedded broker on %s; state in %s; Ctrl-C to stop",
               rt_broker_bootstraps(b), conf->state_dir);
        pthread_create(&feeder_thread, NULL, demo_feeder, d);
        pthread_create(&pipeline_thread, NULL, demo_pipeline, d);
        while (!rt_stop) {
                double secs = (double)(rt_mono_ns() - t0) / 1e9;
                if (seconds > 0 && secs >= (double)seconds)
                        break;
                if (secs >= (double)next_report) {
                        print_progress(d, secs, &last);
                        next_report++;
                }
                usleep(20000);
        }
        atomic_store(&d->stop_feed, 1);
        pthread_join(feeder_thread, NULL);
        rt_stop = 1;
        pthread_join(pipeline_thread, NULL);
        print_summary(d, (double)(rt_mono_ns() - t0) / 1e9);
        status = RT_EXIT_OK;
out:
        rt_feed_destroy(d->feed);
        rt_pipeline_destroy(d->pipeline);
        rt_http_close(http, metrics);
        rt_broker_destroy(b);
        return status;
fail:
        RT_LOG(RT_LOG_ERROR, "demo", "%s", errstr);
        goto out;
}

static int demo_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"seconds", required_argument, NULL, 's'},
            {"rate", required_argument, NULL, 'r'},
            {"seed", required_argument, NULL, 'S'},
            {"config", required_argument, NULL, 'c'},
            {"state-dir", required_argument, NULL, RT_OPT_STATE_DIR},
            {"http", required_argument, NULL, RT_OPT_HTTP},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        int64_t seconds = 0, seed = 1;
        char tmp_dir[] = "/tmp/tern-demo-XXXXXX", cmd[128];
        demo_t d = {.rate = 20000};
        rt_common_opts_t co = {0};
        tern_conf_t *conf;
        int c, status, own_state;
        while ((c = getopt_long(argc, argv, "s:r:c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 's':
                        if (rt_parse_i64(optarg, &seconds) || seconds < 0)
                                goto bad_number;
                        break;
                case 'r':
                        if (rt_parse_i64(optarg, &d.rate) || d.rate < 1)
                                goto bad_number;
                        break;
                case 'S':
                        if (rt_parse_i64(optarg, &seed))
                                goto bad_number;
                        break;
                case 'h':
                        demo_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        demo_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        d.seed = (uint64_t)seed;
        own_state = !co.state_dir_assignment[0];
        if (own_state && !mkdtemp(tmp_dir)) {
                fprintf(stderr,
                        "tern demo: cannot create a temporary directory: %m\n");
                return RT_EXIT_FAIL;
        }
        if (own_state) {
                /* A throwaway state directory, removed at the end. */
                rt_common_opt(&co, RT_OPT_STATE_DIR, tmp_dir);
        }
        conf = rt_conf_load("demo", &co);
        if (!conf) {
                if (own_state)
                        rmdir(tmp_dir);
                return RT_EXIT_USAGE;
        }
        rt_signals_install();
        rt_signals_install_reload();
        status = demo_exec(&d, conf, seconds, &co);
        if (own_state) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
                if (system(cmd) != 0)
                        RT_LOG(RT_LOG_WARN, "demo", "could not remove %s",
                               tmp_dir);
        }
        conf_destroy(conf);
        return status;
bad_number:
        fprintf(stderr,
                "tern demo: --%s needs a non-negative integer, got '%s'\n",
                c == 's'   ? "seconds"
                : c == 'r' ? "rate"
                           : "seed",
                optarg);
        return RT_EXIT_USAGE;
}

const rt_cmd_t rt_cmd_demo = {
    "demo", "embedded broker + synthetic shop + pipeline, live summary",
    demo_main};
