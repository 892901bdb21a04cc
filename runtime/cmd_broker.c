/* tern broker — the embedded Kafka-protocol broker as its own process. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt_cmd.h"
#include "rt_kafka.h"
#include "rt_log.h"

static void broker_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern broker [-c FILE] [-X key=value]... [--brokers N]\n"
            "                   [--bootstrap-file PATH] [--topic NAME[:N]]...\n"
            "\n"
            "Start librdkafka's mock cluster (the real Kafka protocol over TCP "
            "on\n"
            "127.0.0.1), create the config's topics, print the bootstrap "
            "address\n"
            "on stdout, and serve until SIGINT/SIGTERM. For development and "
            "tests:\n"
            "it keeps about 5 MiB per partition and nothing on disk.\n"
            "\n"
            "  -c, --config FILE       topics and partitions from this config\n"
            "  -X key.path=value       override one config key (repeatable)\n"
            "      --brokers N         number of brokers (default 1)\n"
            "      --bootstrap-file P  also write the address to P (for "
            "scripts)\n"
            "      --topic NAME[:N]    also create NAME with N partitions "
            "(default 4;\n"
            "                          repeatable; e.g. for tern bench "
            "--brokers)\n"
            "  -h, --help\n");
}

static int write_bootstrap_file(const char *path, const char *addr) {
        char tmp[4096];
        FILE *f;
        /* Written whole, then renamed: a script polling for it never reads
         * half an address. */
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", addr) < 0 || fclose(f) != 0 ||
            rename(tmp, path) != 0) {
                fprintf(stderr, "tern broker: cannot write %s: %m\n", path);
                return -1;
        }
        return 0;
}

#define MAX_EXTRA_TOPICS 32

static int create_extra(rt_broker_t *b, char *const *names, const int *parts,
                        int n, char *errstr, size_t size) {
        for (int i = 0; i < n; i++)
                if (rt_broker_create_topic(b, names[i], parts[i], errstr, size))
                        return -1;
        return 0;
}

/* NAME[:N] -> name (in arg, cut at ':') and partitions; -1 if bad. */
static int parse_topic(char *arg, int *partitions) {
        char *colon = strrchr(arg, ':');
        int64_t n = 4;
        if (colon) {
                *colon = 0;
                if (rt_parse_i64(colon + 1, &n) || n < 1 || n > 1024)
                        return -1;
        }
        *partitions = (int)n;
        return *arg ? 0 : -1;
}

static int broker_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"brokers", required_argument, NULL, 'n'},
            {"bootstrap-file", required_argument, NULL, 'f'},
            {"topic", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *bootstrap_file = NULL;
        char *topics[MAX_EXTRA_TOPICS];
        int topic_parts[MAX_EXTRA_TOPICS], n_topics = 0;
        int64_t n_brokers = 1;
        rt_common_opts_t co = {0};
        char errstr[512];
        tern_conf_t *conf;
        rt_broker_t *b;
        int c, rc = RT_EXIT_OK;
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'n':
                        if (rt_parse_i64(optarg, &n_brokers) || n_brokers < 1 ||
                            n_brokers > 9) {
                                fprintf(stderr,
                                        "tern broker: --brokers takes 1..9\n");
                                return RT_EXIT_USAGE;
                        }
                        break;
                case 'f':
                        bootstrap_file = optarg;
                        break;
                case 't':
                        if (n_topics == MAX_EXTRA_TOPICS ||
                            parse_topic(optarg, &topic_parts[n_topics])) {
                                fprintf(stderr, "tern broker: bad --topic "
                                                "(NAME[:1..1024], at most "
                                                "32)\n");
                                return RT_EXIT_USAGE;
                        }
                        topics[n_topics++] = optarg;
                        break;
                case 'h':
                        broker_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        broker_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        conf = rt_conf_load("broker", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        rt_signals_install();
        b = rt_broker_new((int)n_brokers, errstr, sizeof(errstr));
        if (!b) {
                fprintf(stderr, "tern broker: %s\n", errstr);
                conf_destroy(conf);
                return RT_EXIT_FAIL;
        }
        if (rt_broker_create_topics(b, conf, (int)conf->input_partitions,
                                    errstr, sizeof(errstr)) ||
            create_extra(b, topics, topic_parts, n_topics, errstr,
                         sizeof(errstr)) ||
            (bootstrap_file &&
             write_bootstrap_file(bootstrap_file, rt_broker_bootstraps(b)))) {
                fprintf(stderr, "tern broker: %s\n", errstr);
                rc = RT_EXIT_FAIL;
                goto out;
        }
        printf("%s\n", rt_broker_bootstraps(b));
        fflush(stdout);
        RT_LOG(RT_LOG_INFO, "broker", "serving on %s (topics %s x%lld, %s, %s)",
               rt_broker_bootstraps(b), conf->topic_input,
               (long long)conf->input_partitions, conf->topic_recommendations,
               conf->topic_dead_letter);
        while (!rt_stop)
                usleep(100 * 1000);
        RT_LOG(RT_LOG_INFO, "broker", "stopping");
out:
        rt_broker_destroy(b);
        conf_destroy(conf);
        return rc;
}

const rt_cmd_t rt_cmd_broker = {
    "broker", "the embedded Kafka-protocol broker (dev, tests)", broker_main};
