/*
 * 0041-churn_bound: churn.max_cached_users bounds the churn records kept in
 * memory without changing a single output. One seeded stream (300 users on
 * 2 input partitions, weeks of event time: sweeps, labels, alerts, late
 * events, a drift) goes through the feature engine and rt_churn four
 * times: with no bound to speak of and with a bound of 50 users, each
 * straight through and with a restart (everything closed and reopened)
 * half way. Every output record (topic, key, value bytes, in order), the
 * churn block of figures and the churn and model column families must be
 * byte-identical across the four; with the bound, the records cached after
 * each commit are at most 50, while the users reach 300. And an evicted
 * record that cannot be read back stops the state with an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/tern_buf.h"
#include "../features/feat_engine.h"
#include "../runtime/rt_churn.h"
#include "../runtime/rt_churn_state.h"
#include "../runtime/rt_stages.h"
#include "test.h"
#include "test_conf.h"

#define USERS     300
#define EVENTS    6000
#define BATCH     97 /* events per commit: not a divisor of anything */
#define BOUND     50
#define UNBOUNDED "1000000"

static const char *const churn_conf[] = {"churn.inactive_days=2",
                                         "churn.score_interval_days=0.5",
                                         "churn.min_score_gap_seconds=600",
                                         "churn.allowed_lateness_seconds=600",
                                         "churn.max_pending=8",
                                         "churn.drift_min_labels=200",
                                         "churn.drift_psi_window=1000",
                                         "churn.alert_threshold=0.6",
                                         "churn.alert_rearm_threshold=0.4",
                                         "churn.alert_cooldown_days=1",
                                         NULL};

typedef struct stream {
        tern_event_t ev[EVENTS];
        char users[USERS][8];
        char items[50][8];
} stream_t;

static uint64_t rng_next(uint64_t *s) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        return *s >> 33;
}

/* Skewed users (a few come back often, most rarely), times advancing by
 * up to 90 minutes (6 hours in the second half: the scores drift), one
 * event in 50 late by up to 20 minutes. */
static void stream_make(stream_t *s) {
        static const tern_event_type_t types[] = {
            TERN_EV_VIEW, TERN_EV_VIEW,     TERN_EV_VIEW,      TERN_EV_CART,
            TERN_EV_VIEW, TERN_EV_PURCHASE, TERN_EV_IMPRESSION};
        uint64_t r = 41;
        int64_t ts = 1700000000000LL, off[2] = {0, 0};
        for (int u = 0; u < USERS; u++)
                snprintf(s->users[u], sizeof(s->users[u]), "u%03d", u);
        for (int i = 0; i < 50; i++)
                snprintf(s->items[i], sizeof(s->items[i]), "i%02d", i);
        for (int k = 0; k < EVENTS; k++) {
                tern_event_t *ev = &s->ev[k];
                double x = (double)(rng_next(&r) % 10000) / 10000.0;
                int u = (int)(x * x * x * USERS);
                tern_event_clear(ev);
                /* half way, visits get 4 times rarer: drift */
                ts += (int64_t)(rng_next(&r) % 5400000) *
                      (k < EVENTS / 2 ? 1 : 4);
                ev->user_id = tern_str_c(s->users[u]);
                ev->item_id = tern_str_c(s->items[rng_next(&r) % 50]);
                ev->type = types[rng_next(&r) % 7];
                ev->ts_ms = rng_next(&r) % 50
                                ? ts
                                : ts - (int64_t)(rng_next(&r) % 1200000);
                ev->src_topic = "in";
                ev->src_partition = u % 2;
                ev->src_offset = off[u % 2]++;
        }
}

typedef struct out {
        tern_buf_t rec; /* every output: topic, key, value, length-prefixed */
        uint64_t n;
} out_t;

static void put_bytes(tern_buf_t *b, const void *p, size_t n) {
        tern_buf_put_varint(b, n);
        tern_buf_append(b, p, n);
}

static void on_send(void *opaque, const char *topic, const void *key,
                    size_t klen, const tern_buf_t *value,
                    const tern_buf_t *json) {
        out_t *o = opaque;
        (void)json;
        put_bytes(&o->rec, topic, strlen(topic));
        put_bytes(&o->rec, key, klen);
        put_bytes(&o->rec, value->data, value->len);
        o->n++;
}

typedef struct stage {
        tern_conf_t *conf;
        feat_store_t *st;
        feat_engine_t *eng;
        rt_churn_t *churn;
} stage_t;

static void stage_close(stage_t *g) {
        rt_churn_destroy(g->churn);
        feat_engine_destroy(g->eng);
        feat_store_close(g->st);
        g->churn = NULL;
        g->eng = NULL;
        g->st = NULL;
}

static int stage_open(stage_t *g, out_t *o, char *errstr, size_t size) {
        rt_emit_t emit = {on_send, o, 0, NULL};
        g->st = rt_stages_store(g->conf, NULL, 0, errstr, size);
        g->eng = g->st ? rt_stages_engine(g->conf, g->st, errstr, size) : NULL;
        g->churn =
            g->eng ? rt_churn_new(g->conf, g->st, g->eng, &emit, errstr, size)
                   : NULL;
        return g->churn ? 0 : -1;
}

static int commit(stage_t *g, const stream_t *s, int upto, char *errstr,
                  size_t size) {
        feat_offset_t offs[2] = {{"in", 0, 0}, {"in", 1, 0}};
        for (int k = 0; k < upto; k++)
                offs[s->ev[k].src_partition].next_offset =
                    s->ev[k].src_offset + 1;
        return feat_engine_commit(g->eng, offs, 2, errstr, size);
}

/* One hash over the churn and model column families, in key order. */
static uint64_t digest(feat_store_t *st) {
        static const feat_cf_t cfs[] = {FEAT_CF_CHURN, FEAT_CF_MODEL};
        uint64_t h = 1469598103934665603ULL;
        for (int i = 0; i < 2; i++) {
                feat_iter_t *it = feat_iter_new(st, cfs[i], NULL, 0);
                const uint8_t *k, *v;
                size_t kl, vl;
                while (it && feat_iter_next(it, &k, &kl, &v, &vl)) {
                        for (size_t j = 0; j < kl; j++)
                                h = (h ^ k[j]) * 1099511628211ULL;
                        for (size_t j = 0; j < vl; j++)
                                h = (h ^ v[j]) * 1099511628211ULL;
                        h = (h ^ 0xff) * 1099511628211ULL;
                }
                feat_iter_destroy(it);
        }
        return h;
}

typedef struct result {
        out_t out;
        tern_buf_t figures;
        uint64_t digest;
        uint64_t max_cached; /* after a commit */
} result_t;

/* The whole stream through one state directory: bound as the config
 * value, restart_at: the commit after which everything is reopened. */
static void run(const stream_t *s, const char *tag, const char *bound,
                int restart_at, result_t *res) {
        char *dir = test_tmpdir(tag), errstr[1024], kv[64];
        const char *const more[] = {kv, NULL};
        stage_t g = {0};
        rt_churn_figures_t f;
        int commits = 0;
        if (!dir)
                return;
        snprintf(kv, sizeof(kv), "churn.max_cached_users=%s", bound);
        g.conf = test_conf_new(dir, churn_conf, more);
        tern_buf_init(&res->out.rec, 64u << 20);
        tern_buf_init(&res->figures, 1 << 16);
        TEST_ASSERT(stage_open(&g, &res->out, errstr, sizeof(errstr)) == 0,
                    "%s", errstr);
        for (int k = 0; k < EVENTS; k++) {
                const feat_user_t *user = NULL;
                int counted;
                TEST_ASSERT(feat_engine_apply(g.eng, &s->ev[k], &counted, &user,
                                              errstr, sizeof(errstr)) == 0,
                            "%s", errstr);
                TEST_ASSERT(rt_churn_on_event(g.churn, &s->ev[k], user, errstr,
                                              sizeof(errstr)) == 0,
                            "%s", errstr);
                if ((k + 1) % BATCH && k + 1 < EVENTS)
                        continue;
                TEST_ASSERT(commit(&g, s, k + 1, errstr, sizeof(errstr)) == 0,
                            "%s", errstr);
                rt_churn_figures(g.churn, &f);
                if (f.users > res->max_cached)
                        res->max_cached = f.users;
                if (++commits == restart_at) {
                        stage_close(&g);
                        TEST_ASSERT(stage_open(&g, &res->out, errstr,
                                               sizeof(errstr)) == 0,
                                    "%s", errstr);
                }
        }
        rt_churn_json(g.churn, &res->figures);
        tern_buf_put_u8(&res->figures, '\0');
        res->digest = digest(g.st);
        stage_close(&g);
        conf_destroy(g.conf);
        free(dir);
}

static int same(const result_t *a, const result_t *b) {
        return a->out.n == b->out.n && a->out.rec.len == b->out.rec.len &&
               !memcmp(a->out.rec.data, b->out.rec.data, a->out.rec.len) &&
               a->figures.len == b->figures.len &&
               !memcmp(a->figures.data, b->figures.data, a->figures.len) &&
               a->digest == b->digest;
}

static void bound_changes_nothing(void) {
        static stream_t s;
        static result_t r[4];
        static const char *const names[4] = {
            "unbounded", "bound 50", "unbounded, restart", "bound 50, restart"};
        stream_make(&s);
        run(&s, "churn-bound-a", UNBOUNDED, 0, &r[0]);
        run(&s, "churn-bound-b", "50", 0, &r[1]);
        run(&s, "churn-bound-c", UNBOUNDED, EVENTS / BATCH / 2, &r[2]);
        run(&s, "churn-bound-d", "50", EVENTS / BATCH / 2, &r[3]);
        if (test_failed_flag)
                goto out;
        fprintf(stderr, "  %llu outputs (%zu bytes); churn %.*s\n",
                (unsigned long long)r[0].out.n, r[0].out.rec.len,
                (int)r[0].figures.len, (const char *)r[0].figures.data);
        /* the stream exercises what the bound could break */
        TEST_ASSERT(strstr((const char *)r[0].figures.data, "\"sweeps\":0,") ==
                        NULL,
                    "no sweeps");
        TEST_ASSERT(strstr((const char *)r[0].figures.data, "\"alerts\":0,") ==
                        NULL,
                    "no alerts");
        TEST_ASSERT(
            strstr((const char *)r[0].figures.data, "\"labelled\":0,") == NULL,
            "no labels");
        TEST_ASSERT(strstr((const char *)r[0].figures.data, "\"drifts\":0,") ==
                        NULL,
                    "no drift (model-alerts)");
        TEST_ASSERT(r[0].max_cached > 4 * BOUND, "only %llu users",
                    (unsigned long long)r[0].max_cached);
        for (int i = 1; i < 4; i++)
                TEST_ASSERT(same(&r[0], &r[i]),
                            "%s differs from unbounded: %llu / %llu outputs, "
                            "%zu / %zu bytes, digest %016llx / %016llx, "
                            "churn %.*s",
                            names[i], (unsigned long long)r[i].out.n,
                            (unsigned long long)r[0].out.n, r[i].out.rec.len,
                            r[0].out.rec.len, (unsigned long long)r[i].digest,
                            (unsigned long long)r[0].digest,
                            (int)r[i].figures.len,
                            (const char *)r[i].figures.data);
        TEST_ASSERT(r[1].max_cached <= BOUND && r[3].max_cached <= BOUND,
                    "%llu / %llu records cached after a commit, bound %d",
                    (unsigned long long)r[1].max_cached,
                    (unsigned long long)r[3].max_cached, BOUND);
out:
        for (int i = 0; i < 4; i++) {
                tern_buf_free(&r[i].out.rec);
                tern_buf_free(&r[i].figures);
        }
}

/* Three users written, u0 (no timer) and u1 (timer at 5000) evicted,
 * then both records overwritten with garbage: reading them back fails. */
static rt_churn_state_t *bad_state(feat_store_t *st, feat_batch_t *b) {
        static const char *const ids[] = {"u0", "u1", "u2"};
        char errstr[512];
        rt_churn_state_t *s = rt_churn_state_new(1000);
        tern_buf_t key;
        if (!s || rt_churn_state_load(s, st, errstr, sizeof(errstr)))
                return s;
        rt_churn_state_set_max_cached(s, 1);
        for (int i = 0; i < 3; i++) {
                rt_churn_user_t *u = rt_churn_state_get(s, 0, ids[i], 2, 1);
                if (!u)
                        return s;
                u->next_sweep = i ? 5000 : RT_CHURN_NEVER;
                rt_churn_state_touch(s, u);
        }
        feat_batch_clear(b);
        rt_churn_state_write(s, st, b);
        feat_store_write(st, b, errstr, sizeof(errstr));
        rt_churn_state_done(s);
        feat_batch_clear(b);
        tern_buf_init(&key, 256);
        for (int i = 0; i < 2; i++) {
                tern_buf_reset(&key);
                feat_key_user(&key, 0, ids[i], 2);
                feat_batch_put(b, st, FEAT_CF_CHURN, key.data, key.len, "\x07",
                               1);
        }
        feat_store_write(st, b, errstr, sizeof(errstr));
        tern_buf_free(&key);
        return s;
}

/* An evicted record that cannot be read back is an error of the state
 * (the pipeline stops), on an event and on a timer alike. */
static void unreadable_record_is_an_error(void) {
        char *dir[2] = {test_tmpdir("churn-bound-bad1"),
                        test_tmpdir("churn-bound-bad2")};
        char errstr[512];
        feat_batch_t *b = feat_batch_new();
        for (int k = 0; k < 2; k++) {
                feat_store_conf_t sc = {.dir = dir[k]};
                feat_store_t *st = feat_store_open(&sc, errstr, sizeof(errstr));
                rt_churn_state_t *s = st && b ? bad_state(st, b) : NULL;
                const rt_churn_user_t *u;
                int code;
                TEST_ASSERT(s && rt_churn_state_cached(s) == 1 &&
                                rt_churn_state_users(s) == 3,
                            "setup");
                u = k ? rt_churn_state_pop_due(s, 0, 10000)
                      : rt_churn_state_get(s, 0, "u0", 2, 1);
                code = rt_churn_state_status(s, errstr, sizeof(errstr));
                TEST_ASSERT(u == NULL && code == TERN_ERR_STATE, "%s", errstr);
                TEST_ASSERT(strstr(errstr, k ? "'u1': undecodable"
                                             : "'u0': undecodable"),
                            "%s", errstr);
                rt_churn_state_destroy(s);
                feat_store_close(st);
                free(dir[k]);
        }
        feat_batch_destroy(b);
}

TEST_MAIN(TEST_CASE(bound_changes_nothing),
          TEST_CASE(unreadable_record_is_an_error));
