/*
 * tern replay — feed files through the real pipeline and exit when drained.
 *
 * An embedded broker holds a one-partition input topic (so the outputs are
 * exactly reproducible); a feeder thread produces the file in order while
 * the pipeline consumes it over TCP, never more than FEED_WINDOW records
 * ahead (the embedded broker silently drops data past ~5 MiB a partition).
 * Resuming: the topic is refilled from the start, so every event lands at
 * the same offset as before, and the pipeline resumes from the offset
 * stored with its state. The records before that offset are produced (and
 * delivered) before the pipeline polls at all: a fetch beyond the end of
 * the log would be out of range. Several --input files are one stream
 * (rt_feed_files): a resume needs the same files in the same order.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/tern_buf.h"
#include "rt_cmd.h"
#include "rt_feed.h"
#include "rt_http.h"
#include "rt_kafka.h"
#include "rt_log.h"
#include "rt_pipeline.h"

#define FEED_WINDOW 20000

typedef struct replay {
        const char *inputs[RT_FEED_MAX_INPUTS];
        size_t n_inputs;
        const char *ctr_trace;
        int64_t linger_seconds; /* keep the HTTP endpoint up after the end */
        ingest_format_t format;
        rt_feed_t *feed;
        rt_pipeline_t *pipeline;
        uint64_t bad_lines;
        int64_t resume_from; /* offset stored with the state, 0 if none */
        tern_code_t feed_rc;
        char feed_err[1024];
        _Atomic int caught_up; /* records before resume_from delivered */
        _Atomic int feed_done;
} replay_t;

static void replay_usage(FILE *out) {
        fprintf(out,
                "usage: tern replay [-c FILE] [-X key=value]... --input PATH "
                "[--input PATH]...\n"
                "                   --format F [--state-dir DIR] [--emit "
                "DIR] [--ctr-trace F]\n"
                "                   [--http ADDR [--linger-seconds N]]\n"
                "\n"
                "Feed files through the same code path as `tern run` (an "
                "embedded\n"
                "broker, one input partition) and exit once every event is "
                "consumed\n"
                "and committed. Prints one JSON summary on stdout. Run again "
                "with the\n"
                "same inputs and state directory after a crash: it resumes "
                "where the\n"
                "state left off.\n"
                "\n"
                "  -c, --config FILE   YAML config; default: built-in\n"
                "  -X key.path=value   override one config key (repeatable)\n"
                "  -i, --input PATH    file to replay; repeat for several, fed "
                "in the\n"
                "                      given order as one stream (one row "
                "clock,\n"
                "                      replay.*), all in one --format\n"
                "  -f, --format F      %s\n"
                "      --state-dir DIR same as -X state.dir=DIR\n"
                "      --ctr-trace F   write each CTR example to F as it is "
                "learned:\n"
                "                      source offset, label, published "
                "p(click), feature\n"
                "                      indices (for evaluations)\n"
                "      --emit DIR      also write every output topic as "
                "DIR/<topic>.jsonl\n"
                "      --http ADDR     serve /metrics, /healthz, /readyz on "
                "host:port\n"
                "                      (port 0: any free port, logged)\n"
                "      --linger-seconds N  after the summary, keep serving "
                "/metrics for N\n"
                "                      seconds (or until SIGINT/SIGTERM): "
                "a final scrape\n"
                "  -h, --help\n",
                ingest_format_list());
}

static void catch_up(replay_t *r) {
        if (atomic_load(&r->caught_up))
                return;
        r->feed_rc =
            rt_feed_flush(r->feed, 60000, r->feed_err, sizeof(r->feed_err));
        atomic_store(&r->caught_up, 1);
}

static int throttle(void *opaque, uint64_t sent) {
        replay_t *r = opaque;
        if ((int64_t)sent < r->resume_from)
                return rt_stop; /* already in the state: no need to wait */
        catch_up(r);
        if (r->feed_rc != TERN_OK)
                return 1;
        for (;;) {
                int64_t pos = rt_pipeline_position(r->pipeline, 0);
                if (pos < r->resume_from)
                        pos = r->resume_from;
                if (rt_stop)
                        return 1;
                if ((int64_t)sent - pos < FEED_WINDOW)
                        return 0;
                usleep(500);
        }
}

static void *feeder(void *arg) {
        replay_t *r = arg;
        tern_code_t rc;
        pthread_setname_np(pthread_self(), "replay:feed");
        rc = rt_feed_files(r->feed, r->inputs, r->n_inputs, r->format, throttle,
                           r, &r->bad_lines, r->feed_err, sizeof(r->feed_err));
        if (r->feed_rc == TERN_OK)
                r->feed_rc = rc;
        catch_up(r); /* a file shorter than the stored offset */
        if (r->feed_rc == TERN_OK)
                r->feed_rc = rt_feed_flush(r->feed, 60000, r->feed_err,
                                           sizeof(r->feed_err));
        if (r->feed_rc == TERN_OK)
                rt_pipeline_drain_at(r->pipeline, 0,
                                     (int64_t)rt_feed_sent(r->feed));
        else
                rt_stop = 1;
        atomic_store(&r->feed_done, 1);
        return NULL;
}

/* The paths joined with ",", escaped for a JSON string. */
static const char *inputs_json(const replay_t *r, tern_buf_t *b) {
        for (size_t i = 0; i < r->n_inputs; i++) {
                if (i)
                        tern_buf_put_u8(b, ',');
                tern_buf_put_json_str(b, r->inputs[i], strlen(r->inputs[i]));
        }
        tern_buf_put_u8(b, '\0');
        return b->overflow ? "?" : (const char *)b->data;
}

static void print_summary(replay_t *r, const tern_conf_t *conf, double secs,
                          int64_t resumed_from) {
        rt_pipeline_stats_t st;
        char outputs[2048];
        tern_buf_t input, ctr, churn;
        tern_buf_init(&input, 1 << 20);
        tern_buf_init(&ctr, 1 << 20);
        tern_buf_init(&churn, 1 << 16);
        rt_pipeline_stats(r->pipeline, &st);
        rt_pipeline_outputs_json(r->pipeline, outputs, sizeof(outputs));
        rt_pipeline_ctr_json(r->pipeline, &ctr);
        tern_buf_put_u8(&ctr, 0);
        rt_pipeline_churn_json(r->pipeline, &churn);
        tern_buf_put_u8(&churn, 0);
        printf("{\"input\":\"%s\",\"format\":\"%s\",\"records_in\":%llu,"
               "\"events_in\":%llu,\"dead_lettered\":%llu,\"bad_lines\":%llu,"
               "\"resumed_from_offset\":%lld,\"committed_offset\":%lld,"
               "\"outputs\":%s,\"batches\":%llu,\"seconds\":%.3f,"
               "\"events_per_second\":%.0f,\"state_dir\":\"%s\",\"ctr\":%s,"
               "\"churn\":%s}\n",
               inputs_json(r, &input), ingest_format_name(r->format),
               (unsigned long long)st.records_in,
               (unsigned long long)st.events_in,
               (unsigned long long)st.dead_lettered,
               (unsigned long long)r->bad_lines, (long long)resumed_from,
               (long long)rt_pipeline_committed(r->pipeline, 0), outputs,
               (unsigned long long)st.batches, secs,
               secs > 0 ? (double)st.records_in / secs : 0.0, conf->state_dir,
               ctr.overflow ? "null" : (const char *)ctr.data,
               churn.overflow ? "null" : (const char *)churn.data);
        tern_buf_free(&ctr);
        tern_buf_free(&churn);
        tern_buf_free(&input);
}

/* After the summary: the endpoint stays up for a last scrape. The stop
 * flag released the feeder; from here on it means a signal. */
static void linger(const replay_t *r, const rt_http_t *http) {
        int64_t until = rt_mono_ns() + r->linger_seconds * 1000000000LL;
        if (!http || r->linger_seconds <= 0)
                return;
        rt_stop = 0;
        while (!rt_stop && rt_mono_ns() < until)
                usleep(20000);
}

static int replay_exec(replay_t *r, tern_conf_t *conf, const char *emit) {
        char errstr[1024];
        rt_metrics_t *metrics = NULL;
        rt_http_t *http = NULL;
        int signalled;
        rt_broker_t *b =
            rt_broker_new(RT_BROKER_EMBEDDED, errstr, sizeof(errstr));
        pthread_t thread;
        int64_t t0, resumed_from;
        tern_code_t rc;
        int status = RT_EXIT_FAIL;
        /* One input partition: the outputs are then reproducible. */
        if (!b || rt_broker_create_topics(b, conf, 1, errstr, sizeof(errstr)))
                goto out;
        if (rt_http_open(conf, &metrics, &http)) {
                r->feed_rc = TERN_ERR_IO; /* logged; nothing more to say */
                goto out;
        }
        r->pipeline = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf,
                                  .brokers = rt_broker_bootstraps(b),
                                  .emit_dir = emit,
                                  .ctr_trace = r->ctr_trace,
                                  .metrics = metrics},
            errstr, sizeof(errstr));
        if (!r->pipeline)
                goto out;
        r->feed = rt_feed_new(conf, rt_broker_bootstraps(b), conf->topic_input,
                              "lz4", errstr, sizeof(errstr));
        if (!r->feed)
                goto out;
        r->resume_from = rt_pipeline_stored_offset(r->pipeline, 0);
        t0 = rt_mono_ns();
        pthread_create(&thread, NULL, feeder, r);
        while (!atomic_load(&r->caught_up) && !rt_stop)
                usleep(1000);
        rc = rt_pipeline_run(r->pipeline, errstr, sizeof(errstr));
        signalled = rt_stop;
        rt_stop = 1; /* let the feeder go if the pipeline stopped first */
        pthread_join(thread, NULL);
        resumed_from = rt_pipeline_resumed_from(r->pipeline, 0);
        if (r->feed_rc != TERN_OK) {
                RT_LOG(RT_LOG_ERROR, "replay", "feeding %s%s: %s", r->inputs[0],
                       r->n_inputs > 1 ? " and more" : "", r->feed_err);
        } else if (rc != TERN_OK) {
                RT_LOG(RT_LOG_ERROR, "replay", "%s", errstr);
        } else {
                print_summary(r, conf, (double)(rt_mono_ns() - t0) / 1e9,
                              resumed_from);
                fflush(stdout);
                if (!signalled)
                        linger(r, http);
                status = RT_EXIT_OK;
        }
out:
        if (status != RT_EXIT_OK && !r->feed && r->feed_rc == TERN_OK)
                RT_LOG(RT_LOG_ERROR, "replay", "%s", errstr);
        rt_feed_destroy(r->feed);
        rt_pipeline_destroy(r->pipeline);
        rt_http_close(http, metrics);
        rt_broker_destroy(b);
        return status;
}

static int replay_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"state-dir", required_argument, NULL, RT_OPT_STATE_DIR},
            {"emit", required_argument, NULL, 'e'},
            {"ctr-trace", required_argument, NULL, 't'},
            {"http", required_argument, NULL, RT_OPT_HTTP},
            {"linger-seconds", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *format = NULL, *emit = NULL;
        rt_common_opts_t co = {0};
        replay_t r = {0};
        tern_conf_t *conf;
        int c, fmt, status;
        while ((c = getopt_long(argc, argv, "c:X:i:f:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'i':
                        if (r.n_inputs == RT_FEED_MAX_INPUTS) {
                                fprintf(stderr,
                                        "tern replay: more than %d --input\n",
                                        RT_FEED_MAX_INPUTS);
                                return RT_EXIT_USAGE;
                        }
                        r.inputs[r.n_inputs++] = optarg;
                        break;
                case 'f':
                        format = optarg;
                        break;
                case 'e':
                        emit = optarg;
                        break;
                case 't':
                        r.ctr_trace = optarg;
                        break;
                case 'L':
                        if (rt_parse_i64(optarg, &r.linger_seconds) ||
                            r.linger_seconds < 0) {
                                fprintf(stderr,
                                        "tern replay: --linger-seconds needs a "
                                        "non-negative integer, got '%s'\n",
                                        optarg);
                                return RT_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        replay_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        replay_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        for (size_t i = 0; i < r.n_inputs || i == 0; i++)
                if (rt_input_args("replay", r.inputs[i], format, &fmt))
                        return RT_EXIT_USAGE;
        r.format = (ingest_format_t)fmt;
        conf = rt_conf_load("replay", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        if (emit && mkdir(emit, 0755) != 0 && access(emit, W_OK) != 0) {
                fprintf(stderr, "tern replay: cannot create %s: %m\n", emit);
                conf_destroy(conf);
                return RT_EXIT_USAGE;
        }
        rt_signals_install();
        status = replay_exec(&r, conf, emit);
        conf_destroy(conf);
        return status;
}

const rt_cmd_t rt_cmd_replay = {
    "replay", "feed files through the pipeline, exit when drained",
    replay_main};
