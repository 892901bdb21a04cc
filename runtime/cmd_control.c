/* tern control — write one live control record (rt_control.h) to
 * topics.control from flags, validated by the same code the pipeline
 * applies it with. */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_cmd.h"
#include "rt_control.h"
#include "rt_kafka.h"

static void control_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern control [-c FILE] [-X key=value]... [--brokers B] "
            "OP [--id S] [--by S]\n"
            "\n"
            "Write one control record to topics.control; every running tern "
            "applies it\n"
            "between two batches and increments config_version. OP is one "
            "of:\n"
            "  --boost-item I | --boost-category C --factor F [--until TS | "
            "--for D]\n"
            "        multiply the score of item I (or of every item of "
            "category C) by F\n"
            "        (0 < F <= 1000) while the event time is before TS (ms "
            "since the\n"
            "        epoch) or now + D (D: 90s, 30m, 2h, 1d; event time is "
            "assumed to\n"
            "        follow the wall clock); neither: no end\n"
            "  --unboost-item I | --unboost-category C\n"
            "  --block-item I | --unblock-item I\n"
            "  --blend SIM,CTR | --similarity-weight X | --ctr-weight Y\n"
            "  --churn-threshold X | --churn-rearm X | --churn-cooldown-days "
            "D\n"
            "        (any of the three together)\n"
            "  --ctr-alpha A | --ctr-beta B | --ctr-l1 X | --ctr-l2 Y  (any "
            "together)\n"
            "  --churn-learning-rate R | --churn-l2 Y  (together or alone)\n"
            "  --raw JSON     a record as is (see README \"Live control\")\n"
            "\n"
            "  -c, --config FILE  YAML config; default: built-in\n"
            "  -X key.path=value  override one config key (repeatable)\n"
            "  -b, --brokers B    same as -X kafka.brokers=B\n"
            "      --id S, --by S audit fields kept with the change\n"
            "  -n, --dry-run      validate and print the record, write "
            "nothing\n"
            "  -h, --help\n"
            "Prints {\"topic\",\"partition\",\"offset\",\"record\"}. Exit "
            "2 on a record tern would reject.\n");
}

enum {
        O_BOOST_ITEM = 2000,
        O_BOOST_CAT,
        O_FACTOR,
        O_UNTIL,
        O_FOR,
        O_UNBOOST_ITEM,
        O_UNBOOST_CAT,
        O_BLOCK,
        O_UNBLOCK,
        O_BLEND,
        O_RAW,
        O_ID,
        O_BY,
        O_SET /* O_SET + k: rt_control_fields[k] */
};

typedef struct ctl_args {
        const char *op, *model; /* the op being built */
        const char *id_key, *id;
        const char *factor, *until, *dur, *raw, *audit_id, *audit_by;
        const char *set_val[RT_CONTROL_N_FIELDS];
        int dry_run;
} ctl_args_t;

static int set_op(ctl_args_t *a, const char *op, const char *model) {
        if ((a->op && strcmp(a->op, op)) ||
            (a->model && model && strcmp(a->model, model))) {
                fprintf(stderr,
                        "tern control: one op per record (%s%s%s and "
                        "%s%s%s given)\n",
                        a->op, a->model ? " " : "", a->model ? a->model : "",
                        op, model ? " " : "", model ? model : "");
                return -1;
        }
        a->op = op;
        if (model)
                a->model = model;
        return 0;
}

static int set_id(ctl_args_t *a, const char *op, const char *key,
                  const char *id) {
        if (set_op(a, op, NULL))
                return -1;
        if (a->id) {
                fprintf(stderr, "tern control: one item or category per "
                                "record\n");
                return -1;
        }
        a->id_key = key;
        a->id = id;
        return 0;
}

/* "90s", "30m", "2h", "1d" or seconds; -1 if not a duration. */
static int64_t parse_duration_ms(const char *s) {
        char *end;
        double v;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -1;
        if (!strcmp(end, "") || !strcmp(end, "s"))
                v *= 1000;
        else if (!strcmp(end, "ms"))
                ;
        else if (!strcmp(end, "m"))
                v *= 60000;
        else if (!strcmp(end, "h"))
                v *= 3600000;
        else if (!strcmp(end, "d"))
                v *= 86400000;
        else
                return -1;
        return v > 9e15 ? -1 : (int64_t)v;
}

/* A number flag's text as a JSON number, or the text itself quoted so the
 * validator names the key ("expected a number"). */
static void put_number(tern_buf_t *b, const char *text) {
        char *end;
        double v;
        errno = 0;
        v = strtod(text, &end);
        if (!errno && end != text && !*end && isfinite(v))
                tern_buf_put_num(b, v);
        else {
                tern_buf_printf(b, "\"");
                tern_buf_put_json_str(b, text, strlen(text));
                tern_buf_printf(b, "\"");
        }
}

static void put_key_str(tern_buf_t *b, const char *key, const char *val) {
        tern_buf_printf(b, ",\"%s\":\"", key);
        tern_buf_put_json_str(b, val, strlen(val));
        tern_buf_printf(b, "\"");
}

static int build(const ctl_args_t *a, tern_buf_t *b) {
        if (a->raw) {
                tern_buf_append(b, a->raw, strlen(a->raw));
                return 0;
        }
        if (!a->op) {
                fprintf(stderr, "tern control: no op given (see --help)\n");
                return -1;
        }
        tern_buf_printf(b, "{\"op\":\"%s\"", a->op);
        if (a->model)
                tern_buf_printf(b, ",\"model\":\"%s\"", a->model);
        if (a->id)
                put_key_str(b, a->id_key, a->id);
        if (a->factor) {
                tern_buf_printf(b, ",\"factor\":");
                put_number(b, a->factor);
        }
        if (a->until) {
                tern_buf_printf(b, ",\"until_ts_ms\":");
                put_number(b, a->until);
        } else if (a->dur) {
                int64_t ms = parse_duration_ms(a->dur);
                if (ms < 0) {
                        fprintf(stderr,
                                "tern control: --for %s: expected a duration "
                                "such as 90s, 30m, 2h or 1d\n",
                                a->dur);
                        return -1;
                }
                tern_buf_printf(b, ",\"until_ts_ms\":%lld",
                                (long long)(rt_wall_ms() + ms));
        }
        for (size_t k = 0; k < RT_CONTROL_N_FIELDS; k++)
                if (a->set_val[k]) {
                        tern_buf_printf(b,
                                        ",\"%s\":", rt_control_fields[k].key);
                        put_number(b, a->set_val[k]);
                }
        if (a->audit_id)
                put_key_str(b, "id", a->audit_id);
        if (a->audit_by)
                put_key_str(b, "by", a->audit_by);
        tern_buf_printf(b, "}");
        return 0;
}

static int parse_blend(ctl_args_t *a, const char *arg) {
        static char sim[64], ctr[64];
        const char *comma = strchr(arg, ',');
        if (!comma || (size_t)(comma - arg) >= sizeof(sim) ||
            strlen(comma + 1) >= sizeof(ctr)) {
                fprintf(stderr,
                        "tern control: --blend takes SIM,CTR (got "
                        "'%s')\n",
                        arg);
                return -1;
        }
        memcpy(sim, arg, (size_t)(comma - arg));
        sim[comma - arg] = '\0';
        strcpy(ctr, comma + 1);
        a->set_val[0] = sim;
        a->set_val[1] = ctr;
        return set_op(a, "blend", NULL);
}

static int take_opt(ctl_args_t *a, int c, const char *arg) {
        switch (c) {
        case O_BOOST_ITEM:
                return set_id(a, "boost", "item", arg);
        case O_BOOST_CAT:
                return set_id(a, "boost", "category", arg);
        case O_UNBOOST_ITEM:
                return set_id(a, "unboost", "item", arg);
        case O_UNBOOST_CAT:
                return set_id(a, "unboost", "category", arg);
        case O_BLOCK:
                return set_id(a, "block", "item", arg);
        case O_UNBLOCK:
                return set_id(a, "unblock", "item", arg);
        case O_FACTOR:
                a->factor = arg;
                return 0;
        case O_UNTIL:
                a->until = arg;
                return 0;
        case O_FOR:
                a->dur = arg;
                return 0;
        case O_BLEND:
                return parse_blend(a, arg);
        case O_RAW:
                a->raw = arg;
                return 0;
        case O_ID:
                a->audit_id = arg;
                return 0;
        case O_BY:
                a->audit_by = arg;
                return 0;
        case 'n':
                a->dry_run = 1;
                return 0;
        default:
                if (c >= O_SET && c < O_SET + (int)RT_CONTROL_N_FIELDS) {
                        a->set_val[c - O_SET] = arg;
                        return set_op(a, rt_control_fields[c - O_SET].op,
                                      rt_control_fields[c - O_SET].model);
                }
                return 1;
        }
}

/* ---- producing ---- */

typedef struct delivery {
        int done;
        rd_kafka_resp_err_t err;
        int32_t partition;
        int64_t offset;
} delivery_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
        delivery_t *d = m->_private;
        (void)rk;
        (void)opaque;
        d->done = 1;
        d->err = m->err;
        d->partition = m->partition;
        d->offset = m->offset;
}

static int produce(const tern_conf_t *conf, const char *brokers,
                   const tern_buf_t *rec) {
        char errstr[1024];
        delivery_t d = {0};
        rd_kafka_t *rk;
        rd_kafka_resp_err_t err;
        rd_kafka_conf_t *kc;
        if (!*conf->topic_control) {
                fprintf(stderr, "tern control: topics.control is empty: this "
                                "config has no control topic\n");
                return RT_EXIT_USAGE;
        }
        kc = rt_kafka_producer_conf(conf, brokers, errstr, sizeof(errstr));
        if (!kc) {
                fprintf(stderr, "tern control: %s\n", errstr);
                return RT_EXIT_USAGE;
        }
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr,
                                sizeof(errstr)))) {
                fprintf(stderr, "tern control: %s\n", errstr);
                return RT_EXIT_FAIL;
        }
        /* One key: every record on one partition, applied in order. */
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(conf->topic_control),
                                RD_KAFKA_V_KEY("tern-control", 12),
                                RD_KAFKA_V_VALUE(rec->data, rec->len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
        if (!err) {
                rd_kafka_flush(rk, (int)conf->delivery_timeout_ms);
                err = d.done ? d.err : RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        rd_kafka_destroy(rk);
        if (err) {
                fprintf(stderr, "tern control: writing to %s: %s\n",
                        conf->topic_control, rd_kafka_err2str(err));
                return RT_EXIT_FAIL;
        }
        printf("{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,"
               "\"record\":%.*s}\n",
               conf->topic_control, (int)d.partition, (long long)d.offset,
               (int)rec->len, (const char *)rec->data);
        return RT_EXIT_OK;
}

static int control_exec(const ctl_args_t *a, rt_common_opts_t *co,
                        const char *brokers) {
        tern_buf_t rec;
        rt_control_op_t op;
        char errstr[1024];
        tern_conf_t *conf;
        int status = RT_EXIT_USAGE;
        tern_buf_init(&rec, RT_CONTROL_MAX_RECORD + 1);
        if (build(a, &rec))
                goto out;
        if (rec.overflow ||
            rt_control_parse((const char *)rec.data, rec.len, &op, errstr,
                             sizeof(errstr)) != TERN_OK) {
                fprintf(stderr, "tern control: rejected: %s\n",
                        rec.overflow ? "record too large" : errstr);
                goto out;
        }
        if (a->dry_run) {
                printf("{\"record\":%.*s}\n", (int)rec.len,
                       (const char *)rec.data);
                status = RT_EXIT_OK;
                goto out;
        }
        if (!(conf = rt_conf_load("control", co)))
                goto out;
        status = produce(conf, brokers, &rec);
        conf_destroy(conf);
out:
        tern_buf_free(&rec);
        return status;
}

static int control_main(int argc, char **argv) {
        struct option opts[32 + RT_CONTROL_N_FIELDS] = {
            {"config", required_argument, NULL, 'c'},
            {"brokers", required_argument, NULL, 'b'},
            {"boost-item", required_argument, NULL, O_BOOST_ITEM},
            {"boost-category", required_argument, NULL, O_BOOST_CAT},
            {"factor", required_argument, NULL, O_FACTOR},
            {"until", required_argument, NULL, O_UNTIL},
            {"for", required_argument, NULL, O_FOR},
            {"unboost-item", required_argument, NULL, O_UNBOOST_ITEM},
            {"unboost-category", required_argument, NULL, O_UNBOOST_CAT},
            {"block-item", required_argument, NULL, O_BLOCK},
            {"unblock-item", required_argument, NULL, O_UNBLOCK},
            {"blend", required_argument, NULL, O_BLEND},
            {"raw", required_argument, NULL, O_RAW},
            {"id", required_argument, NULL, O_ID},
            {"by", required_argument, NULL, O_BY},
            {"dry-run", no_argument, NULL, 'n'},
            {"help", no_argument, NULL, 'h'},
        };
        size_t n_opts = 17;
        ctl_args_t a = {0};
        rt_common_opts_t co = {0};
        const char *brokers = NULL;
        int c;
        for (size_t k = 0; k < RT_CONTROL_N_FIELDS; k++)
                opts[n_opts++] =
                    (struct option){rt_control_fields[k].flag,
                                    required_argument, NULL, O_SET + (int)k};
        opts[n_opts] = (struct option){NULL, 0, NULL, 0};
        while ((c = getopt_long(argc, argv, "c:X:b:nh", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                if (c == 'b') {
                        brokers = optarg;
                        continue;
                }
                if (c == 'h') {
                        control_usage(stdout);
                        return RT_EXIT_OK;
                }
                taken = take_opt(&a, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken > 0) {
                        control_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "tern control: unexpected argument '%s'\n",
                        argv[optind]);
                return RT_EXIT_USAGE;
        }
        if (a.raw && (a.op || a.factor || a.until || a.dur)) {
                fprintf(stderr, "tern control: --raw takes the whole record: "
                                "no other op flag\n");
                return RT_EXIT_USAGE;
        }
        if (a.until && a.dur) {
                fprintf(stderr, "tern control: --until or --for, not both\n");
                return RT_EXIT_USAGE;
        }
        return control_exec(&a, &co, brokers);
}

const rt_cmd_t rt_cmd_control = {
    "control", "write a live control record (boost, block, blend, ...)",
    control_main};
