/* tern inspect — read state (read-only; works while `tern run` is running). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sinks/sink_records.h"
#include "rt_churn.h"
#include "rt_cmd.h"
#include "rt_control.h"
#include "rt_ctr.h"
#include "rt_stages.h"

static void inspect_usage(FILE *out) {
        fprintf(
            out,
            "usage: tern inspect [-c FILE] [-X key=value]... [--state-dir DIR] "
            "WHAT\n"
            "\n"
            "Print state as JSON on stdout. WHAT is one of:\n"
            "  user ID                 profile, event counts, first/last time, "
            "window\n"
            "  item ID [--neighbors K] n(i) and the top K neighbours by "
            "similarity\n"
            "                          (exact, all counts read; default K 10, "
            "0 = all)\n"
            "  items                   every item with all its neighbours, one "
            "JSON\n"
            "                          document per line\n"
            "  users                   every user's document, one per line\n"
            "  recs ID                 the user's recommendations from the "
            "current state\n"
            "  offsets                 the input offsets stored with the "
            "state\n"
            "  digest                  one line: a hash over every record "
            "(state, "
            "models,\n"
            "                          offsets) and the record counts, to "
            "compare two\n"
            "                          state directories exactly\n"
            "  model NAME              a model's metrics and counters (NAME: "
            "ctr or churn)\n"
            "  control                 the live configuration: config_version, "
            "boosts,\n"
            "                          blocked items, blend, churn and model "
            "parameters,\n"
            "                          control offsets, the last applied "
            "change\n"
            "\n"
            "  -c, --config FILE       YAML config; default: built-in\n"
            "  -X key.path=value       override one config key (repeatable)\n"
            "      --state-dir DIR     same as -X state.dir=DIR\n"
            "  -h, --help\n"
            "Exit status 1 when the user or item is not in the state.\n");
}

static int print_buf(tern_buf_t *b) {
        fwrite(b->data, 1, b->len, stdout);
        fputc('\n', stdout);
        return RT_EXIT_OK;
}

static int inspect_recs(const tern_conf_t *conf, feat_store_t *st,
                        const char *user, tern_buf_t *out, char *errstr,
                        size_t size) {
        feat_engine_t *eng = rt_stages_engine(conf, st, errstr, size);
        model_recs_t *recs = rt_stages_recs(conf);
        model_recs_result_t res;
        const feat_user_t *u = NULL;
        tern_code_t rc =
            eng ? feat_engine_user(eng, user, (uint32_t)strlen(user), -1, &u,
                                   errstr, size)
                : TERN_ERR_STATE;
        if (rc == TERN_OK) {
                model_nb_source_t src = rt_stages_nb_source(eng);
                rc = model_recs_compute(recs, u, &src, &res, errstr, size);
        }
        if (rc == TERN_OK) {
                tern_buf_printf(out, "{\"user_id\":\"");
                tern_buf_put_json_str(out, user, strlen(user));
                tern_buf_printf(out, "\",\"strategy\":\"%s\",\"items\":[",
                                res.strategy);
                for (uint32_t i = 0; i < res.n; i++) {
                        tern_buf_printf(out, "%s{\"item_id\":\"", i ? "," : "");
                        tern_buf_put_json_str(out, res.items[i].item,
                                              res.items[i].len);
                        tern_buf_printf(out, "\",\"score\":%.17g}",
                                        res.items[i].score);
                }
                tern_buf_printf(out, "]}");
        }
        model_recs_destroy(recs);
        feat_engine_destroy(eng);
        return rc;
}

/* Every user's document, one per line, in key order (partition, id). */
static int inspect_users(feat_store_t *st, char *errstr, size_t size) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_PROFILE, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_buf_t doc;
        tern_code_t rc = TERN_OK;
        tern_buf_init(&doc, 64u << 20);
        while (rc == TERN_OK && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                char user[1024];
                if (klen < 3 || klen - 2 >= sizeof(user))
                        continue;
                memcpy(user, k + 2, klen - 2);
                user[klen - 2] = '\0';
                tern_buf_reset(&doc);
                rc = feat_inspect_user_json(
                    st, user, (int32_t)(k[0] << 8 | k[1]), &doc, errstr, size);
                if (rc == TERN_OK) {
                        fwrite(doc.data, 1, doc.len, stdout);
                        fputc('\n', stdout);
                }
        }
        if (rc == TERN_OK)
                rc = feat_iter_status(it, "reading users", errstr, size);
        tern_buf_free(&doc);
        feat_iter_destroy(it);
        return rc;
}

static int inspect_offsets(feat_store_t *st, tern_buf_t *out, char *errstr,
                           size_t size) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_OFFSETS, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        int first = 1;
        tern_code_t rc = TERN_OK;
        tern_buf_printf(out, "{\"offsets\":[");
        while (rc == TERN_OK && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                const uint8_t *nul = memchr(k, 0, klen);
                char topic[1024];
                int64_t next = -1;
                int found = 0;
                tern_rd_t rd;
                int32_t partition;
                if (!nul || (size_t)(k + klen - nul) != 5 ||
                    (size_t)(nul - k) >= sizeof(topic))
                        continue;
                memcpy(topic, k, (size_t)(nul - k) + 1);
                tern_rd_init(&rd, nul + 1, 4);
                partition = (int32_t)tern_rd_u32be(&rd);
                rc = feat_store_offset_get(st, topic, partition, &next, &found,
                                           errstr, size);
                tern_buf_printf(out, "%s{\"topic\":\"", first ? "" : ",");
                tern_buf_put_json_str(out, topic, strlen(topic));
                tern_buf_printf(out,
                                "\",\"partition\":%d,\"next_offset\":%lld}",
                                (int)partition, (long long)next);
                first = 0;
        }
        tern_buf_printf(out, "]}");
        feat_iter_destroy(it);
        return rc;
}

/* `inspect model NAME`: one row per model. */
typedef tern_code_t (*model_inspect_fn)(const tern_conf_t *conf,
                                        feat_store_t *st, tern_buf_t *out,
                                        char *errstr, size_t errstr_size);

static tern_code_t inspect_ctr(const tern_conf_t *conf, feat_store_t *st,
                               tern_buf_t *out, char *errstr, size_t size) {
        (void)conf;
        return rt_ctr_inspect_json(st, out, errstr, size);
}

static const struct {
        const char *name;
        model_inspect_fn fn;
} inspect_models[] = {
    {"ctr", inspect_ctr},
    {"churn", rt_churn_inspect_json},
};

static tern_code_t inspect_model(const tern_conf_t *conf, feat_store_t *st,
                                 const char *name, tern_buf_t *out,
                                 char *errstr, size_t size) {
        for (size_t i = 0;
             i < sizeof(inspect_models) / sizeof(inspect_models[0]); i++)
                if (!strcmp(inspect_models[i].name, name))
                        return inspect_models[i].fn(conf, st, out, errstr,
                                                    size);
        return tern_errf(errstr, size, TERN_ERR_NOT_FOUND,
                         "no model named '%s' (ctr, churn)", name);
}

static int inspect_exec(const tern_conf_t *conf, int argc, char **argv,
                        int64_t k) {
        char errstr[1024];
        const char *what = argv[0];
        feat_store_t *st =
            rt_stages_store(conf, NULL, 1, errstr, sizeof(errstr));
        tern_buf_t out;
        tern_code_t rc;
        int status;
        if (!st) {
                fprintf(stderr, "tern inspect: %s\n", errstr);
                return RT_EXIT_FAIL;
        }
        tern_buf_init(&out, 256u << 20);
        if (!strcmp(what, "user") && argc == 2)
                rc = feat_inspect_user_json(st, argv[1], -1, &out, errstr,
                                            sizeof(errstr));
        else if (!strcmp(what, "item") && argc == 2)
                rc = feat_inspect_item_json(st, argv[1], (uint32_t)k, &out,
                                            errstr, sizeof(errstr));
        else if (!strcmp(what, "recs") && argc == 2)
                rc = inspect_recs(conf, st, argv[1], &out, errstr,
                                  sizeof(errstr));
        else if (!strcmp(what, "items") && argc == 1)
                rc = feat_inspect_items_jsonl(st, 0, stdout, errstr,
                                              sizeof(errstr));
        else if (!strcmp(what, "users") && argc == 1)
                rc = inspect_users(st, errstr, sizeof(errstr));
        else if (!strcmp(what, "offsets") && argc == 1)
                rc = inspect_offsets(st, &out, errstr, sizeof(errstr));
        else if (!strcmp(what, "control") && argc == 1)
                rc = rt_control_inspect_json(conf, st, &out, errstr,
                                             sizeof(errstr));
        else if (!strcmp(what, "digest") && argc == 1)
                rc = feat_inspect_digest_json(st, &out, errstr, sizeof(errstr));
        else if (!strcmp(what, "model") && argc == 2)
                rc = inspect_model(conf, st, argv[1], &out, errstr,
                                   sizeof(errstr));
        else {
                fprintf(stderr,
                        "tern inspect: expected user ID, item ID, recs ID, "
                        "users, items, offsets, digest, control or model "
                        "NAME\n");
                feat_store_close(st);
                tern_buf_free(&out);
                return RT_EXIT_USAGE;
        }
        if (rc == TERN_OK) {
                status = out.len ? print_buf(&out) : RT_EXIT_OK;
        } else {
                fprintf(stderr, "tern inspect: %s\n", errstr);
                status = RT_EXIT_FAIL;
        }
        tern_buf_free(&out);
        feat_store_close(st);
        return status;
}

static int inspect_main(int argc, char **argv) {
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"state-dir", required_argument, NULL, RT_OPT_STATE_DIR},
            {"neighbors", required_argument, NULL, 'k'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        int64_t k = 10;
        rt_common_opts_t co = {0};
        tern_conf_t *conf;
        int c, status;
        while ((c = getopt_long(argc, argv, "+c:X:h", opts, NULL)) != -1) {
                int taken = rt_common_opt(&co, c, optarg);
                if (taken < 0)
                        return RT_EXIT_USAGE;
                if (taken)
                        continue;
                switch (c) {
                case 'k':
                        if (rt_parse_i64(optarg, &k) || k < 0 || k > 1000000) {
                                fprintf(stderr, "tern inspect: --neighbors "
                                                "takes 0..1000000\n");
                                return RT_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        inspect_usage(stdout);
                        return RT_EXIT_OK;
                default:
                        inspect_usage(stderr);
                        return RT_EXIT_USAGE;
                }
        }
        /* Options may also follow WHAT ID (tern inspect item X --neighbors 5).
         */
        if (optind < argc && optind + 2 < argc) {
                int rest = optind + 2;
                if (!strcmp(argv[optind], "items") ||
                    !strcmp(argv[optind], "users") ||
                    !strcmp(argv[optind], "offsets") ||
                    !strcmp(argv[optind], "control") ||
                    !strcmp(argv[optind], "digest"))
                        rest = optind + 1;
                if (rest < argc && !strcmp(argv[rest], "--neighbors") &&
                    rest + 1 < argc && !rt_parse_i64(argv[rest + 1], &k)) {
                        argc = rest;
                } else if (rest < argc) {
                        fprintf(stderr, "tern inspect: unexpected '%s'\n",
                                argv[rest]);
                        return RT_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                inspect_usage(stderr);
                return RT_EXIT_USAGE;
        }
        conf = rt_conf_load("inspect", &co);
        if (!conf)
                return RT_EXIT_USAGE;
        status = inspect_exec(conf, argc - optind, argv + optind, k);
        conf_destroy(conf);
        return status;
}

const rt_cmd_t rt_cmd_inspect = {
    "inspect", "read state: users, items, recommendations, models",
    inspect_main};
