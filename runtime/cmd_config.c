/* tern config — the config table as an example file, a reference, or the
 * effective config after -c and -X (secrets redacted). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "rt_cmd.h"
#include "rt_metrics.h"

static void config_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern config --example | --reference | --metrics\n"
            "                   | --print [-c FILE] "
            "[-X k=v]...\n"
            "                   | --check -c FILE [-X k=v]...\n"
            "\n"
            "  --example     the commented default config (conf/tern.yaml)\n"
            "  --reference   the Markdown table of every key (README.md)\n"
            "  --metrics     the Markdown table of every /metrics metric "
            "(README.md)\n"
            "  --print       the effective config, secrets redacted\n"
            "  --check       validate; exit 2 with file:line:column on an "
            "error\n");
}

static int config_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"example", no_argument, NULL, 'e'},
            {"reference", no_argument, NULL, 'r'},
            {"print", no_argument, NULL, 'p'},
            {"check", no_argument, NULL, 'k'},
            {"metrics", no_argument, NULL, 'm'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        rt_common_opts_t co = {0};
        tern_conf_t *conf;
        int c, mode = 0;
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'e':
                case 'r':
                case 'p':
                case 'k':
                case 'm':
                        mode = c;
                        break;
                case 'h':
                        config_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        config_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        if (mode == 'e') {
                conf_write_example(stdout);
                return RT_EXIT_OK;
        }
        if (mode == 'r') {
                conf_write_reference(stdout);
                return RT_EXIT_OK;
        }
        if (mode == 'm') {
                rt_metrics_write_reference(stdout);
                return RT_EXIT_OK;
        }
        if (!mode) {
                config_usage(stderr);
                return RT_EXIT_USAGE;
        }
        conf = rt_conf_load("config", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        if (mode == 'p')
                conf_write_effective(conf, stdout);
        else
                printf("%s: ok\n", co.file ? co.file : "(defaults)");
        conf_destroy(conf);
        return RT_EXIT_OK;
}

const rt_cmd_t rt_cmd_config = {
    "config", "example config, key reference, validation", config_main};
