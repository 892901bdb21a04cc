/* tern run — the pipeline against the brokers named in the config.
 *
 * Shutdown bound: on SIGINT/SIGTERM the pipeline finishes its batch,
 * delivers and commits it, and closes the consumer and producer. A watchdog
 * thread holds that to batch.shutdown_timeout_ms: past it (a broker that
 * does not acknowledge, a flush waiting up to batch.delivery_timeout_ms)
 * the process exits non-zero at once. That is as safe as a crash: the last
 * committed batch is in RocksDB's WAL, the unfinished one is processed
 * again on restart. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "rt_cmd.h"
#include "rt_http.h"
#include "rt_log.h"
#include "rt_pipeline.h"

static void run_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern run -c FILE [-X key=value]... [--state-dir DIR]\n"
            "\n"
            "Consume behaviour events from topics.input on kafka.brokers, "
            "keep\n"
            "profiles and co-occurrence in RocksDB (state.dir), publish\n"
            "recommendations and dead letters. Stops cleanly on "
            "SIGINT/SIGTERM:\n"
            "the batch in progress is finished, delivered and committed\n"
            "within batch.shutdown_timeout_ms, else tern exits 1 without\n"
            "committing it (a restart processes it again). SIGHUP re-reads\n"
            "the config file: live keys apply between batches, others are\n"
            "refused (see README \"Live control\").\n"
            "\n"
            "  -c, --config FILE   YAML config (see conf/tern.yaml); "
            "default: built-in\n"
            "  -X key.path=value   override one config key (repeatable)\n"
            "      --state-dir DIR same as -X state.dir=DIR\n"
            "      --emit DIR      also write every output as "
            "DIR/<topic>.jsonl\n"
            "      --http ADDR     serve /metrics, /healthz, /readyz on "
            "host:port\n"
            "                      (same as -X http.listen=ADDR)\n"
            "  -h, --help\n");
}

typedef struct {
        int64_t timeout_ms;
        atomic_int done; /* the pipeline is destroyed: nothing left to bound */
} run_watchdog_t;

static void *run_watchdog(void *arg) {
        run_watchdog_t *w = arg;
        const struct timespec tick = {0, 10 * 1000 * 1000};
        int64_t deadline;
        pthread_setname_np(pthread_self(), "tern:watchdog");
        while (!rt_stop && !atomic_load(&w->done))
                nanosleep(&tick, NULL);
        if (atomic_load(&w->done))
                return NULL;
        deadline = rt_mono_ns() + w->timeout_ms * 1000000;
        while (!atomic_load(&w->done)) {
                if (rt_mono_ns() >= deadline) {
                        RT_LOG(RT_LOG_ERROR, "run",
                               "shutdown took longer than "
                               "batch.shutdown_timeout_ms=%lld: exiting "
                               "now; the batch in progress was not "
                               "committed and is processed again on restart",
                               (long long)w->timeout_ms);
                        _exit(RT_EXIT_FAIL);
                }
                nanosleep(&tick, NULL);
        }
        return NULL;
}

static int run_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"state-dir", required_argument, NULL, RT_OPT_STATE_DIR},
            {"emit", required_argument, NULL, 'e'},
            {"http", required_argument, NULL, RT_OPT_HTTP},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *emit = NULL;
        rt_common_opts_t co = {0};
        char errstr[1024];
        rt_pipeline_t *p;
        rt_metrics_t *metrics;
        rt_http_t *http;
        tern_conf_t *conf;
        tern_code_t rc;
        run_watchdog_t watchdog = {0};
        pthread_t watchdog_thread;
        int c, watching;
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'e':
                        emit = optarg;
                        break;
                case 'h':
                        run_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        run_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "tern run: unexpected argument '%s'\n",
                        argv[optind]);
                return RT_EXIT_USAGE;
        }
        conf = rt_conf_load("run", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        rt_signals_install();
        rt_signals_install_reload();
        if (rt_http_open(conf, &metrics, &http)) {
                conf_destroy(conf);
                return RT_EXIT_FAIL;
        }
        p = rt_pipeline_new(&(rt_pipeline_opts_t){.conf = conf,
                                                  .emit_dir = emit,
                                                  .reload = rt_conf_reload_cb,
                                                  .reload_opaque = &co,
                                                  .metrics = metrics},
                            errstr, sizeof(errstr));
        if (!p) {
                RT_LOG(RT_LOG_ERROR, "run", "%s", errstr);
                rt_http_close(http, metrics);
                conf_destroy(conf);
                return RT_EXIT_FAIL;
        }
        RT_LOG(RT_LOG_INFO, "run", "consuming %s from %s, state in %s",
               conf->topic_input, conf->brokers, conf->state_dir);
        watchdog.timeout_ms = conf->shutdown_timeout_ms;
        watching = pthread_create(&watchdog_thread, NULL, run_watchdog,
                                  &watchdog) == 0;
        rc = rt_pipeline_run(p, errstr, sizeof(errstr));
        if (rc != TERN_OK)
                RT_LOG(RT_LOG_ERROR, "run", "stopping: %s", errstr);
        rt_pipeline_destroy(p);
        rt_http_close(http, metrics);
        atomic_store(&watchdog.done, 1);
        if (watching)
                pthread_join(watchdog_thread, NULL);
        if (rc == TERN_OK)
                RT_LOG(RT_LOG_INFO, "run", "stopped cleanly");
        conf_destroy(conf);
        return rc == TERN_OK ? RT_EXIT_OK : RT_EXIT_FAIL;
}

const rt_cmd_t rt_cmd_run = {
    "run", "run the pipeline against the configured brokers", run_main};
