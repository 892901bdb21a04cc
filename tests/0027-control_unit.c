/*
 * 0027-control_unit: live control without Kafka — control records
 * validated as rt_control.h documents (every op, every rejection names
 * its key), ops applied to a live config and the boost table, boosts and
 * blocks in the ranking (co-occurrence, trending, blend), the item
 * catalog and the live state surviving a reopen of the store, SIGHUP
 * diffs (live keys applied, others refused and kept).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../features/feat_catalog.h"
#include "../models/model_boost.h"
#include "../models/model_recs.h"
#include "../runtime/rt_control.h"
#include "test.h"

static tern_code_t parse(const char *json, rt_control_op_t *op, char *errstr,
                         size_t size) {
        return rt_control_parse(json, strlen(json), op, errstr, size);
}

static void parse_valid(void) {
        rt_control_op_t op;
        char errstr[512];
        TEST_EQ_INT(parse("{\"op\":\"boost\",\"item\":\"i1\",\"factor\":2.5,"
                          "\"until_ts_ms\":1700000000000,\"id\":\"p1\","
                          "\"by\":\"ops\"}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.kind, RT_CTL_BOOST);
        TEST_EQ_INT(op.target, MODEL_BOOST_ITEM);
        TEST_EQ_STR(op.id, "i1");
        TEST_ASSERT(op.factor == 2.5 && op.until_ts_ms == 1700000000000LL,
                    "factor %g until %lld", op.factor,
                    (long long)op.until_ts_ms);
        /* until absent or null: no end; in the past: fine (expired) */
        TEST_EQ_INT(parse(" {\"op\":\"boost\",\"category\":\"c\\u00e9\","
                          "\"factor\":1e-3,\"until_ts_ms\":null} ",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.target, MODEL_BOOST_CATEGORY);
        TEST_EQ_STR(op.id, "c\xc3\xa9");
        TEST_ASSERT(op.until_ts_ms == MODEL_BOOST_FOREVER, "forever");
        TEST_EQ_INT(parse("{\"op\":\"boost\",\"item\":\"x\",\"factor\":3,"
                          "\"until_ts_ms\":0}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(parse("{\"op\":\"unboost\",\"category\":\"c\"}", &op,
                          errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.kind, RT_CTL_UNBOOST);
        TEST_EQ_INT(parse("{\"op\":\"block\",\"item\":\"i\"}", &op, errstr,
                          sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.kind, RT_CTL_BLOCK);
        TEST_EQ_INT(parse("{\"op\":\"unblock\",\"item\":\"i\"}", &op, errstr,
                          sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.kind, RT_CTL_UNBLOCK);
        TEST_EQ_INT(parse("{\"op\":\"blend\",\"similarity_weight\":0.5,"
                          "\"ctr_weight\":2}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.kind, RT_CTL_SET);
        TEST_EQ_INT(op.n_sets, 2);
        TEST_EQ_STR(conf_live_path(op.sets[0].live),
                    "recommendations.similarity_weight");
        TEST_EQ_INT(parse("{\"op\":\"churn\",\"alert_threshold\":0.7,"
                          "\"alert_rearm_threshold\":0.5,"
                          "\"alert_cooldown_days\":7}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.n_sets, 3);
        TEST_EQ_INT(parse("{\"op\":\"model\",\"model\":\"ctr\",\"alpha\":0.1,"
                          "\"beta\":1,\"l1\":2,\"l2\":0}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(op.n_sets, 4);
        TEST_EQ_INT(parse("{\"op\":\"model\",\"model\":\"churn\","
                          "\"learning_rate\":0.01,\"l2\":0.001}",
                          &op, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_STR(conf_live_path(op.sets[1].live), "churn.l2");
}

static void parse_rejects(void) {
        static const struct {
                const char *json, *why;
        } bad[] = {
            {"", "empty"},
            {"[1]", "not a JSON object"},
            {"{\"op\":\"boost\"", "expected"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":2} x", "trailing"},
            {"{\"op\":\"nuke\"}", "unknown op \"nuke\""},
            {"{\"item\":\"i\"}", "\"op\" is required"},
            {"{\"op\":1}", "op: expected a string"},
            {"{\"op\":\"boost\",\"item\":\"i\"}", "\"factor\" is required"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":0}", "above 0"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":-1}", "above 0"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":1001}", "at most"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":\"2\"}",
             "factor: expected a number"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":2,\"until_ts_ms\":"
             "1.5}",
             "until_ts_ms: expected an integer"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"factor\":2,\"until_ts_ms\":"
             "-1}",
             "until_ts_ms: must be"},
            {"{\"op\":\"boost\",\"item\":\"i\",\"category\":\"c\","
             "\"factor\":2}",
             "not both"},
            {"{\"op\":\"boost\",\"factor\":2}", "\"item\" or \"category\""},
            {"{\"op\":\"boost\",\"item\":\"\",\"factor\":2}", "1 to"},
            {"{\"op\":\"boost\",\"item\":7,\"factor\":2}",
             "item: expected a string"},
            {"{\"op\":\"block\",\"category\":\"c\"}",
             "unknown key \"category\""},
            {"{\"op\":\"block\",\"item\":\"i\",\"color\":\"red\"}",
             "unknown key \"color\""},
            {"{\"op\":\"block\",\"item\":\"i\",\"item\":\"j\"}", "duplicate"},
            {"{\"op\":\"block\",\"item\":{\"a\":1}}", "nested"},
            {"{\"op\":\"block\",\"item\":\"a\\u0000b\"}", "\\u0000"},
            {"{\"op\":\"blend\"}", "at least one"},
            {"{\"op\":\"blend\",\"ctr_weight\":2000}",
             "recommendations.ctr_weight: must be between 0 and 1000"},
            {"{\"op\":\"blend\",\"ctr_weight\":true}",
             "ctr_weight: expected a number"},
            {"{\"op\":\"blend\",\"alert_threshold\":0.5}", "unknown key"},
            {"{\"op\":\"churn\",\"alert_threshold\":1.5}",
             "churn.alert_threshold: must be between 0 and 1"},
            {"{\"op\":\"model\",\"alpha\":0.1}", "\"ctr\" or \"churn\""},
            {"{\"op\":\"model\",\"model\":\"ctr\",\"learning_rate\":0.1}",
             "unknown key \"learning_rate\""},
            {"{\"op\":\"model\",\"model\":\"ctr\",\"alpha\":0}",
             "ctr.alpha: must be between"},
            {"{\"op\":\"block\",\"item\":\"i\",\"by\":5}", "by: expected"},
            {"{\"op\":\"blend\",\"ctr_weight\":01}", "leading zero"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                rt_control_op_t op;
                char errstr[512] = "";
                tern_code_t rc =
                    parse(bad[i].json, &op, errstr, sizeof(errstr));
                TEST_ASSERT(rc == TERN_ERR_INVALID_ARG, "accepted: %s",
                            bad[i].json);
                TEST_ASSERT(strstr(errstr, bad[i].why), "%s: \"%s\" lacks %s",
                            bad[i].json, errstr, bad[i].why);
        }
}

static void apply_and_boost_table(void) {
        tern_conf_t *conf = conf_new();
        model_boost_t *b = model_boost_new();
        rt_control_op_t op;
        char errstr[512];
        const char *ops[] = {
            ("{\"op\":\"boost\",\"item\":\"i1\",\"factor\":2,"
             "\"until_ts_ms\":1000}"),
            "{\"op\":\"boost\",\"category\":\"c1\",\"factor\":3}",
            "{\"op\":\"block\",\"item\":\"i9\"}",
            "{\"op\":\"blend\",\"ctr_weight\":0.75}",
            "{\"op\":\"churn\",\"alert_threshold\":0.66}",
        };
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                TEST_EQ_INT(parse(ops[i], &op, errstr, sizeof(errstr)),
                            TERN_OK);
                TEST_EQ_INT(
                    rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr)),
                    TERN_OK);
        }
        TEST_ASSERT(conf->recs_ctr_weight == 0.75, "ctr_weight");
        TEST_ASSERT(conf->churn_alert_threshold == 0.66, "threshold");
        /* item boost until 1000 (event time), category boost forever */
        TEST_ASSERT(model_boost_factor(b, "i1", 2, NULL, 0, 999) == 2, "i1");
        TEST_ASSERT(model_boost_factor(b, "i1", 2, NULL, 0, 1000) == 1,
                    "expired at until");
        TEST_ASSERT(model_boost_factor(b, "i1", 2, "c1", 2, 5) == 6, "both");
        TEST_ASSERT(model_boost_factor(b, "i2", 2, "c2", 2, 5) == 1, "none");
        TEST_ASSERT(model_boost_blocked(b, "i9", 2), "blocked");
        TEST_ASSERT(!model_boost_blocked(b, "i1", 2), "not blocked");
        /* unboost, unblock, replace */
        parse("{\"op\":\"unblock\",\"item\":\"i9\"}", &op, errstr,
              sizeof(errstr));
        rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr));
        parse("{\"op\":\"unboost\",\"category\":\"c1\"}", &op, errstr,
              sizeof(errstr));
        rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr));
        parse("{\"op\":\"boost\",\"item\":\"i1\",\"factor\":0.5}", &op, errstr,
              sizeof(errstr));
        rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr));
        TEST_ASSERT(!model_boost_blocked(b, "i9", 2), "unblocked");
        TEST_EQ_INT(model_boost_count(b, MODEL_BOOST_CATEGORY), 0);
        TEST_ASSERT(model_boost_factor(b, "i1", 2, "c1", 2, 1e12) == 0.5,
                    "replaced: no end");
        /* encode / decode round trip; a malformed record leaves b alone */
        {
                tern_buf_t buf;
                tern_rd_t r;
                model_boost_t *c = model_boost_new();
                tern_buf_init(&buf, 1 << 20);
                model_boost_set(b, MODEL_BOOST_BLOCKED, "zz", 2, 0, 0);
                model_boost_encode(b, &buf);
                tern_rd_init(&r, buf.data, buf.len);
                TEST_EQ_INT(model_boost_decode(c, &r, errstr, sizeof(errstr)),
                            TERN_OK);
                TEST_ASSERT(model_boost_factor(c, "i1", 2, NULL, 0, 1) == 0.5,
                            "decoded boost");
                TEST_ASSERT(model_boost_blocked(c, "zz", 2), "decoded block");
                tern_rd_init(&r, buf.data, buf.len - 1);
                TEST_EQ_INT(model_boost_decode(c, &r, errstr, sizeof(errstr)),
                            TERN_ERR_DECODE);
                TEST_ASSERT(model_boost_blocked(c, "zz", 2), "unchanged");
                tern_buf_free(&buf);
                model_boost_destroy(c);
        }
        model_boost_destroy(b);
        conf_destroy(conf);
}

/* Blocks of long ids until the stored state's bound: the one that would
 * pass it is refused (and changes nothing), the record it leaves fits,
 * re-blocking a blocked item still works. */
static void boosts_bounded_by_stored_state(void) {
        tern_conf_t *conf = conf_new();
        model_boost_t *b = model_boost_new();
        rt_control_op_t op = {.kind = RT_CTL_BLOCK,
                              .target = MODEL_BOOST_ITEM,
                              .id_len = MODEL_BOOST_MAX_ID};
        char errstr[512];
        uint32_t n = 0;
        tern_buf_t buf;
        tern_code_t rc;
        memset(op.id, 'x', MODEL_BOOST_MAX_ID);
        do {
                snprintf(op.id, sizeof(op.id), "%08u", n);
                op.id[8] = 'x'; /* keep the id MODEL_BOOST_MAX_ID long */
                rc = rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr));
        } while (rc == TERN_OK && ++n < MODEL_BOOST_MAX_ENTRIES);
        TEST_EQ_INT(rc, TERN_ERR_LIMIT);
        TEST_ASSERT(strstr(errstr, "MiB of stored state"), "%s", errstr);
        TEST_EQ_INT(model_boost_count(b, MODEL_BOOST_BLOCKED), n);
        tern_buf_init(&buf, RT_CONTROL_MAX_BOOSTS);
        model_boost_encode(b, &buf);
        TEST_ASSERT(!buf.overflow && buf.len <= model_boost_encoded_max(b),
                    "encoded %zu bytes", buf.len);
        tern_buf_free(&buf);
        snprintf(op.id, sizeof(op.id), "%08u", 0);
        op.id[8] = 'x';
        TEST_EQ_INT(rt_control_apply_op(&op, conf, b, errstr, sizeof(errstr)),
                    TERN_OK);
        model_boost_destroy(b);
        conf_destroy(conf);
}

/* ---- ranking with the hooks ---- */

static feat_neighbor_t nbs[3] = {
    {"a", 1, 0, 1, 1, 0.9}, {"b", 1, 0, 1, 1, 0.5}, {"c", 1, 0, 1, 1, 0.2}};
static feat_neighbor_t trend[3] = {
    {"t1", 2, 0, 9, 9, 0}, {"t2", 2, 0, 6, 6, 0}, {"t3", 2, 0, 3, 3, 0}};
static model_boost_t *table;
static int no_neighbours;

static tern_code_t neighbours(void *o, const char *item, uint32_t len,
                              const feat_neighbor_t **out, uint32_t *n,
                              char *errstr, size_t size) {
        (void)o, (void)item, (void)len, (void)errstr, (void)size;
        *out = nbs;
        *n = no_neighbours ? 0 : 3;
        return TERN_OK;
}
static void trending(void *o, const feat_neighbor_t **out, uint32_t *n) {
        (void)o;
        *out = trend;
        *n = 3;
}
static int blocked(void *o, const char *item, uint32_t len) {
        (void)o;
        return model_boost_blocked(table, item, len);
}
static double boost(void *o, const char *item, uint32_t len, int64_t now) {
        (void)o;
        return model_boost_factor(table, item, len, NULL, 0, now);
}
static double p_click(void *o, const char *item, uint32_t len) {
        (void)o, (void)len;
        return item[0] == 'c' ? 0.9 : 0.1;
}

static void ranking_hooks(void) {
        feat_item_ts_t window[1] = {{"s", 1, 1000, TERN_EV_VIEW}};
        feat_user_t user = {
            .user_id = "u", .user_len = 1, .n_window = 1, .window = window};
        model_nb_source_t src = {NULL, neighbours, trending, blocked, boost};
        model_recs_conf_t rc;
        model_recs_result_t res;
        model_recs_t *r;
        for (int k = 0; k < 3; k++) /* what a source's neighbours carry */
                nbs[k].hash = feat_id_hash(nbs[k].item, nbs[k].len);
        model_item_scorer_t scorer = {NULL, p_click, 1};
        char errstr[256];
        user.profile.last_ts_ms = 1000;
        model_recs_conf_default(&rc);
        rc.top_n = 2;
        r = model_recs_new(&rc);
        table = model_boost_new();
        /* no boost: a, b */
        model_recs_compute(r, &user, &src, &res, errstr, sizeof(errstr));
        TEST_ASSERT(res.n == 2 && res.items[0].item[0] == 'a' &&
                        res.items[1].item[0] == 'b',
                    "plain");
        /* c x5 = 1.0 > a 0.9; a blocked; b boost expired at 1000 */
        model_boost_set(table, MODEL_BOOST_ITEM, "c", 1, 5, 2000);
        model_boost_set(table, MODEL_BOOST_ITEM, "b", 1, 100, 1000);
        model_boost_set(table, MODEL_BOOST_BLOCKED, "a", 1, 0, 0);
        model_recs_compute(r, &user, &src, &res, errstr, sizeof(errstr));
        TEST_ASSERT(res.n == 2 && res.items[0].item[0] == 'c' &&
                        res.items[1].item[0] == 'b',
                    "boosted/blocked: %.*s", (int)res.items[0].len,
                    res.items[0].item);
        TEST_ASSERT(fabs(res.items[0].score - 1.0) < 1e-12, "c score %g",
                    res.items[0].score);
        /* blend: (w_s * s / s_best + w_c * p) * boost, s_best unboosted */
        model_recs_set_blend(r, 1.0, 1.0);
        model_recs_compute_blend(r, &user, &src, &scorer, &res, errstr,
                                 sizeof(errstr));
        /* c: (0.2/0.5 + 0.9) * 5 = 6.5; b: (0.5/0.5 + 0.1) = 1.1 */
        TEST_ASSERT(res.n == 2 && res.items[0].item[0] == 'c' &&
                        fabs(res.items[0].score - 6.5) < 1e-12 &&
                        fabs(res.items[1].score - 1.1) < 1e-12,
                    "blend %g %g", res.items[0].score, res.items[1].score);
        /* trending reordered by boosts */
        no_neighbours = 1;
        model_boost_set(table, MODEL_BOOST_ITEM, "t3", 2, 10, 5000);
        model_recs_compute(r, &user, &src, &res, errstr, sizeof(errstr));
        TEST_EQ_STR(res.strategy, "trending");
        TEST_ASSERT(res.n == 2 && !memcmp(res.items[0].item, "t3", 2) &&
                        !memcmp(res.items[1].item, "t1", 2),
                    "trending %.*s", (int)res.items[0].len, res.items[0].item);
        no_neighbours = 0;
        model_boost_destroy(table);
        model_recs_destroy(r);
}

/* ---- state: catalog and the live record across a reopen ---- */

static feat_store_t *open_store(const char *dir) {
        char errstr[512];
        feat_store_conf_t sc = {
            .dir = dir, .block_cache_mb = 8, .write_buffer_mb = 4};
        return feat_store_open(&sc, errstr, sizeof(errstr));
}

static void state_survives_reopen(void) {
        char *dir = test_tmpdir("control-state");
        char errstr[512];
        feat_conf_t fc;
        tern_conf_t *file = conf_new(), *live = conf_copy(file), *file2;
        feat_store_t *st = open_store(dir);
        feat_engine_t *eng;
        rt_control_t *ctl;
        tern_event_t ev;
        tern_buf_t out;
        uint32_t clen = 0;
        feat_conf_default(&fc);
        eng = feat_engine_new(st, &fc, errstr, sizeof(errstr));
        ctl = rt_control_new(live, file, st, eng, errstr, sizeof(errstr));
        TEST_ASSERT(ctl, "%s", errstr);
        memset(&ev, 0, sizeof(ev));
        ev.item_id = (tern_str_t){"i1", 2};
        ev.category_id = (tern_str_t){"c7", 2};
        rt_control_on_event(ctl, &ev);
        /* SIGHUP: a live key and a non-live key changed in the file */
        file2 = conf_copy(file);
        file2->recs_ctr_weight = 0.125;
        file2->window_items = 7;
        rt_control_reload(ctl, file2);
        TEST_ASSERT(live->recs_ctr_weight == 0.125, "live key applied");
        TEST_EQ_INT(live->window_items, 20); /* refused: old value stays */
        TEST_EQ_INT(live->config_version, 2);
        TEST_ASSERT(rt_control_dirty(ctl), "dirty");
        TEST_EQ_INT(feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_ASSERT(!rt_control_dirty(ctl), "written");
        /* the same file again: nothing changes, no version bump */
        rt_control_reload(ctl, file2);
        TEST_EQ_INT(live->config_version, 2);
        rt_control_destroy(ctl);
        feat_engine_destroy(eng);
        feat_store_close(st);
        conf_destroy(live);

        /* Reopen with the file as it is now: the stored state comes back. */
        st = open_store(dir);
        eng = feat_engine_new(st, &fc, errstr, sizeof(errstr));
        live = conf_copy(file2);
        ctl = rt_control_new(live, file2, st, eng, errstr, sizeof(errstr));
        TEST_ASSERT(ctl, "%s", errstr);
        TEST_EQ_INT(live->config_version, 2);
        TEST_ASSERT(live->recs_ctr_weight == 0.125, "restored");
        {
                feat_catalog_t *cat =
                    feat_catalog_new(st, NULL, 0, errstr, sizeof(errstr));
                const char *c = feat_catalog_get(cat, "i1", 2, &clen);
                TEST_ASSERT(c && clen == 2 && !memcmp(c, "c7", 2),
                            "catalog restored");
                feat_catalog_destroy(cat);
        }
        tern_buf_init(&out, 1 << 20);
        rt_control_json(ctl, &out);
        tern_buf_put_u8(&out, 0);
        TEST_ASSERT(strstr((char *)out.data, "\"config_version\":2,") &&
                        strstr((char *)out.data, "\"ctr_weight\":0.125") &&
                        strstr((char *)out.data, "\"origin\":\"sighup\""),
                    "%s", (char *)out.data);
        tern_buf_free(&out);
        rt_control_destroy(ctl);
        feat_engine_destroy(eng);
        feat_store_close(st);
        conf_destroy(live);
        conf_destroy(file2);
        conf_destroy(file);
        free(dir);
}

/* state.max_cached_items: memory stays bounded after each commit, and an
 * item that left memory still has its category (read from the store). */
static void catalog_bounded(void) {
        char *dir = test_tmpdir("control-catalog");
        char errstr[512], item[16], cat[16];
        feat_conf_t fc;
        feat_store_t *st = open_store(dir);
        feat_engine_t *eng;
        feat_catalog_t *c;
        feat_catalog_stats_t s;
        const char *got;
        uint32_t clen = 0;
        feat_conf_default(&fc);
        eng = feat_engine_new(st, &fc, errstr, sizeof(errstr));
        c = feat_catalog_new(st, eng, 8, errstr, sizeof(errstr));
        TEST_ASSERT(c, "%s", errstr);
        for (int i = 0; i < 20; i++) {
                snprintf(item, sizeof(item), "i%d", i);
                snprintf(cat, sizeof(cat), "c%d", i % 3);
                feat_catalog_observe(c, item, (uint32_t)strlen(item), cat,
                                     (uint32_t)strlen(cat));
        }
        feat_catalog_stats(c, &s);
        TEST_EQ_INT(s.size, 20); /* nothing leaves before it is stored */
        TEST_EQ_INT(feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)),
                    TERN_OK);
        feat_catalog_stats(c, &s);
        TEST_EQ_INT(s.size, 7); /* 7/8 of the bound */
        TEST_EQ_INT(s.evicted, 13);
        /* the oldest left memory, its category did not */
        got = feat_catalog_get(c, "i0", 2, &clen);
        TEST_ASSERT(got && clen == 2 && !memcmp(got, "c0", 2), "i0 -> c0");
        got = feat_catalog_get(c, "i19", 3, &clen);
        TEST_ASSERT(got && clen == 2 && !memcmp(got, "c1", 2), "i19 -> c1");
        TEST_ASSERT(!feat_catalog_get(c, "nope", 4, &clen), "unknown item");
        feat_catalog_stats(c, &s);
        TEST_EQ_INT(s.store_reads, 2);
        TEST_EQ_INT(s.read_errors, 0);
        feat_catalog_destroy(c);
        /* a reopen loads at most the bound and reads the rest on demand */
        c = feat_catalog_new(st, NULL, 4, errstr, sizeof(errstr));
        TEST_ASSERT(c, "%s", errstr);
        feat_catalog_stats(c, &s);
        TEST_EQ_INT(s.size, 4);
        for (int i = 0; i < 20; i++) {
                snprintf(item, sizeof(item), "i%d", i);
                snprintf(cat, sizeof(cat), "c%d", i % 3);
                got = feat_catalog_get(c, item, (uint32_t)strlen(item), &clen);
                TEST_ASSERT(got && clen == strlen(cat) &&
                                !memcmp(got, cat, clen),
                            "%s after reopen", item);
        }
        feat_catalog_destroy(c);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

static void live_keys_and_diff(void) {
        tern_conf_t *a = conf_new(), *b = conf_copy(a);
        char errstr[256];
        int i = conf_live_find("churn.alert_threshold");
        TEST_EQ_INT(conf_live_count(), 11);
        TEST_ASSERT(i >= 0, "churn.alert_threshold is live");
        TEST_EQ_INT(conf_live_find("features.window_items"), -1);
        TEST_EQ_INT(conf_live_set(b, (size_t)i, 1.5, errstr, sizeof(errstr)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(b->churn_alert_threshold == 0.8, "unchanged");
        TEST_EQ_INT(conf_diff(a, b, NULL, NULL), 0);
        conf_live_set(b, (size_t)i, 0.5, errstr, sizeof(errstr));
        b->batch_max_ms = 7;
        TEST_EQ_INT(conf_diff(a, b, NULL, NULL), 2);
        conf_destroy(a);
        conf_destroy(b);
}

TEST_MAIN(TEST_CASE(parse_valid), TEST_CASE(parse_rejects),
          TEST_CASE(apply_and_boost_table),
          TEST_CASE(boosts_bounded_by_stored_state), TEST_CASE(ranking_hooks),
          TEST_CASE(state_survives_reopen), TEST_CASE(catalog_bounded),
          TEST_CASE(live_keys_and_diff));
