/* tern produce — write files' events into the input topic of any broker.
 * Several --input files are one stream, in the given order (rt_feed_files). */
#include <getopt.h>
#include <stdio.h>

#include "rt_cmd.h"
#include "rt_feed.h"
#include "rt_log.h"

static void produce_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern produce [-c FILE] [-X key=value]... --input PATH "
            "[--input PATH]...\n"
            "                    --format F [--brokers HOST:PORT]\n"
            "\n"
            "Encode each event of the inputs as Avro tern.BehaviorEvent "
            "(Confluent framed\n"
            "with schema id 1 when input.wire_format is confluent) and produce "
            "it to\n"
            "topics.input, keyed by user_id, timestamped with its event time.\n"
            "Prints a JSON summary at the end.\n"
            "\n"
            "  -c, --config FILE     YAML config; default: built-in\n"
            "  -X key.path=value     override one config key (repeatable)\n"
            "  -i, --input PATH      file to read; repeat for several, read "
            "in the\n"
            "                        given order as one stream (one row "
            "clock,\n"
            "                        replay.*), all in one --format\n"
            "  -f, --format F        %s\n"
            "  -b, --brokers LIST    same as -X kafka.brokers=LIST\n"
            "  -h, --help\n",
            ingest_format_list());
}

static int produce_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"brokers", required_argument, NULL, 'b'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *inputs[RT_FEED_MAX_INPUTS] = {NULL};
        const char *format = NULL, *brokers = NULL;
        size_t n_inputs = 0;
        rt_common_opts_t co = {0};
        char errstr[1024];
        uint64_t bad_lines = 0;
        int64_t t0;
        tern_conf_t *conf;
        rt_feed_t *feed;
        tern_code_t rc;
        int c, fmt;
        while ((c = getopt_long(argc, argv, "c:X:i:f:b:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'i':
                        if (n_inputs == RT_FEED_MAX_INPUTS) {
                                fprintf(stderr,
                                        "tern produce: more than %d --input\n",
                                        RT_FEED_MAX_INPUTS);
                                return RT_EXIT_USAGE;
                        }
                        inputs[n_inputs++] = optarg;
                        break;
                case 'f':
                        format = optarg;
                        break;
                case 'b':
                        brokers = optarg;
                        break;
                case 'h':
                        produce_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        produce_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        for (size_t i = 0; i < n_inputs || i == 0; i++)
                if (rt_input_args("produce", inputs[i], format, &fmt))
                        return RT_EXIT_USAGE;
        conf = rt_conf_load("produce", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        feed = rt_feed_new(conf, brokers, conf->topic_input, NULL, errstr,
                           sizeof(errstr));
        if (!feed) {
                fprintf(stderr, "tern produce: %s\n", errstr);
                conf_destroy(conf);
                return RT_EXIT_FAIL;
        }
        t0 = rt_mono_ns();
        rc = rt_feed_files(feed, inputs, n_inputs, (ingest_format_t)fmt, NULL,
                           NULL, &bad_lines, errstr, sizeof(errstr));
        if (rc == TERN_OK)
                rc = rt_feed_flush(feed, 60000, errstr, sizeof(errstr));
        if (rc != TERN_OK)
                fprintf(stderr, "tern produce: %s\n", errstr);
        {
                double secs = (double)(rt_mono_ns() - t0) / 1e9;
                printf("{\"produced\":%llu,\"failed\":%llu,\"bad_lines\":%llu,"
                       "\"topic\":\"%s\",\"seconds\":%.3f,\"events_per_"
                       "second\":%.0f}\n",
                       (unsigned long long)rt_feed_sent(feed),
                       (unsigned long long)rt_feed_failed(feed),
                       (unsigned long long)bad_lines, conf->topic_input, secs,
                       secs > 0 ? (double)rt_feed_sent(feed) / secs : 0.0);
        }
        rt_feed_destroy(feed);
        conf_destroy(conf);
        return rc == TERN_OK ? RT_EXIT_OK : RT_EXIT_FAIL;
}

const rt_cmd_t rt_cmd_produce = {
    "produce", "write files' events into the input topic", produce_main};
