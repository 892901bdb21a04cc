/* TERN_TEST_LINK: tern_features */
/*
 * 0004-profile — per-user profile: counts per type, first/last ts, spend,
 * sessions, gap EWMA, decayed affinities, recent items; survives a commit
 * and reload; the `tern inspect user` document.
 */
#include "test.h"

#include <math.h>
#include <stdint.h>

#include "features/feat_engine.h"
#include "features/feat_int.h"

static char errstr[512];

static feat_engine_t *open_engine(const char *tag, feat_store_t **st,
                                  char **dir, const feat_conf_t *c) {
        feat_store_conf_t sc = {0};
        if (tag)
                *dir = test_tmpdir(tag);
        sc.dir = *dir;
        if (!(*st = feat_store_open(&sc, errstr, sizeof(errstr))))
                return NULL;
        return feat_engine_new(*st, c, errstr, sizeof(errstr));
}

static const feat_user_t *apply(feat_engine_t *eng, const char *item,
                                const char *cat, tern_event_type_t type,
                                int64_t ts, double price, int qty) {
        tern_event_t ev;
        const feat_user_t *u = NULL;
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("alice");
        ev.item_id = tern_str_c(item);
        ev.category_id = tern_str_c(cat);
        ev.type = type;
        ev.ts_ms = ts;
        ev.src_partition = 2;
        if (price >= 0) {
                ev.has_price = 1;
                ev.price = price;
        }
        if (qty >= 0) {
                ev.has_quantity = 1;
                ev.quantity = qty;
        }
        if (feat_engine_apply(eng, &ev, NULL, &u, errstr, sizeof(errstr)))
                return NULL;
        return u;
}

static void check_profile(const feat_user_t *u) {
        const feat_profile_t *p = &u->profile;
        double hl = 3600e3, a0;
        TEST_EQ_INT(p->events[TERN_EV_VIEW], 2);
        TEST_EQ_INT(p->events[TERN_EV_PURCHASE], 2);
        TEST_EQ_INT(p->events[TERN_EV_IMPRESSION], 1);
        TEST_EQ_INT(p->events[TERN_EV_CLICK], 0);
        TEST_EQ_INT(p->first_ts_ms, 1000);
        TEST_EQ_INT(p->last_ts_ms, 7201000);
        TEST_ASSERT(p->spend == 10.0 * 3 + 2.5, "spend %g", p->spend);
        TEST_EQ_INT(p->units, 4);
        /* gaps 1000, 2000, 7196000 (> 30 min: a new session), 1000 */
        TEST_EQ_INT(p->sessions, 2);
        {
                double g = 1000;
                g = 0.2 * 2000 + 0.8 * g;
                g = 0.2 * 7196000 + 0.8 * g;
                g = 0.2 * 1000 + 0.8 * g;
                TEST_ASSERT(p->gap_ewma_ms == g, "%.17g != %.17g",
                            p->gap_ewma_ms, g);
        }
        /* cat A: 1 at 1000 + 1 at 2000 (half-life 1 h), then a purchase at
         * 7200000; cat B: one purchase at 7201000; impressions: weight 0 */
        TEST_EQ_INT(p->n_affinity, 2);
        a0 = 1.0 * exp2(-1000.0 / hl) + 1.0;
        a0 = a0 * exp2(-(7200000.0 - 2000.0) / hl) + 1.0;
        TEST_ASSERT(p->affinity[0].len == 1 &&
                    p->affinity[0].category[0] == 'A');
        TEST_ASSERT(fabs(p->affinity[0].score - a0) < 1e-12, "%.17g %.17g",
                    p->affinity[0].score, a0);
        TEST_EQ_INT(p->affinity[0].ts_ms, 7200000);
        TEST_ASSERT(p->affinity[1].category[0] == 'B' &&
                    p->affinity[1].score == 1.0);
        /* recent: distinct items, most recent first, impressions included */
        TEST_EQ_INT(p->n_recent, 3);
        TEST_ASSERT(p->recent[0].item[0] == 'z' &&
                    p->recent[0].ts_ms == 7201000);
        TEST_EQ_INT(p->recent[0].type, TERN_EV_PURCHASE);
        TEST_ASSERT(p->recent[1].item[0] == 'x' &&
                    p->recent[1].ts_ms == 7200000);
        TEST_ASSERT(p->recent[2].item[0] == 'y');
        /* window: counted events only (the impression on y is not) */
        TEST_EQ_INT(u->n_window, 2);
        TEST_ASSERT(u->window[0].item[0] == 'z' && u->window[1].item[0] == 'x');
        TEST_EQ_INT(u->partition, 2);
}

static void feed(feat_engine_t *eng, const feat_user_t **u) {
        *u = apply(eng, "x", "A", TERN_EV_VIEW, 1000, -1, -1);
        *u = apply(eng, "x", "A", TERN_EV_VIEW, 2000, -1, -1);
        *u = apply(eng, "y", "A", TERN_EV_IMPRESSION, 4000, -1, -1);
        *u = apply(eng, "x", "A", TERN_EV_PURCHASE, 7200000, 10.0, 3);
        *u = apply(eng, "z", "B", TERN_EV_PURCHASE, 7201000, 2.5, -1);
}

static void test_profile(void) {
        feat_conf_t c;
        feat_store_t *st;
        feat_engine_t *eng;
        const feat_user_t *u;
        char *dir;
        feat_conf_default(&c);
        c.affinity_half_life_seconds = 3600;
        c.affinity_top_k = 2;
        c.recent_items = 3;
        TEST_ASSERT((eng = open_engine("profile", &st, &dir, &c)), "%s",
                    errstr);
        feed(eng, &u);
        TEST_ASSERT(u, "%s", errstr);
        check_profile(u);
        if (test_failed_flag)
                return;
        /* a fourth category pushes the weakest out (top-K = 2) */
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
        feat_store_close(st);
        /* reload from the store: identical */
        TEST_ASSERT((eng = open_engine(NULL, &st, &dir, &c)), "%s", errstr);
        u = apply(eng, NULL, NULL, TERN_EV_CLICK, 7201000, -1, -1);
        TEST_ASSERT(u);
        TEST_EQ_INT(u->profile.events[TERN_EV_CLICK], 1);
        TEST_EQ_INT(u->profile.events[TERN_EV_VIEW], 2);
        TEST_EQ_INT(u->profile.n_recent, 3);
        TEST_EQ_INT(u->n_window, 2);
        TEST_ASSERT(u->profile.affinity[0].category[0] == 'A');
        u = apply(eng, "w", "C", TERN_EV_CART, 7202000, -1, -1);
        TEST_EQ_INT(u->profile.n_affinity, 2);
        TEST_ASSERT(u->profile.affinity[0].category[0] == 'A');
        TEST_ASSERT(u->profile.recent[0].item[0] == 'w' &&
                    u->profile.recent[2].item[0] == 'x');
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

static void test_inspect_user(void) {
        feat_conf_t c;
        feat_store_t *st;
        feat_engine_t *eng;
        const feat_user_t *u;
        feat_store_conf_t sc = {0};
        feat_offset_t off = {"events", 2, 5};
        tern_buf_t out;
        char *dir;
        feat_conf_default(&c);
        TEST_ASSERT((eng = open_engine("profile-inspect", &st, &dir, &c)));
        feed(eng, &u);
        TEST_ASSERT(!feat_engine_commit(eng, &off, 1, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
        feat_store_close(st);
        sc.dir = dir;
        sc.read_only = 1;
        TEST_ASSERT((st = feat_store_open(&sc, errstr, sizeof(errstr))), "%s",
                    errstr);
        tern_buf_init(&out, 1 << 20);
        TEST_ASSERT(!feat_inspect_user_json(st, "alice", -1, &out, errstr,
                                            sizeof(errstr)),
                    "%s", errstr);
        tern_buf_put_u8(&out, 0);
        TEST_ASSERT(strstr((char *)out.data,
                           "{\"user_id\":\"alice\",\"partition\":2,\"events\":"
                           "{\"VIEW\":2,\"CLICK\":0,\"CART\":0,\"FAVORITE\":0,"
                           "\"PURCHASE\":2,\"IMPRESSION\":1},\"first_ts_ms\":"
                           "1000,\"last_ts_ms\":7201000,\"spend\":32.5"),
                    "%s", (char *)out.data);
        TEST_ASSERT(strstr((char *)out.data,
                           "\"window\":[{\"item_id\":\"z\",\"ts_ms\":7201000},"
                           "{\"item_id\":\"x\",\"ts_ms\":7200000}]}"),
                    "%s", (char *)out.data);
        tern_buf_reset(&out);
        TEST_EQ_INT(feat_inspect_user_json(st, "alice", 1, &out, errstr,
                                           sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(
            feat_inspect_user_json(st, "bob", -1, &out, errstr, sizeof(errstr)),
            TERN_ERR_NOT_FOUND);
        tern_buf_free(&out);
        feat_store_close(st);
        free(dir);
}

static size_t body_bytes(const feat_uuser_t *u) {
        return ((size_t)u->cap_window + u->cap_recent) *
                   sizeof(feat_item_ts_t) +
               (size_t)u->cap_aff * sizeof(feat_affinity_t) +
               (size_t)u->cap_window * 2 * sizeof(uint32_t) + u->arena_cap;
}

/* feat_user_bytes() (what the users metric sums): a fresh user's record,
 * plus the body that replaced its first one, each as its pool holds it. */
static void check_user_bytes(const feat_uuser_t *u, const feat_conf_t *c) {
        feat_uuser_t *fresh = feat_user_new(c, NULL, 2, "alice", 5);
        TEST_ASSERT(fresh);
        TEST_ASSERT(fresh->body_inline && !u->body_inline);
        /* a fresh user's first body has its first capacities */
        TEST_EQ_INT(feat_user_bytes(fresh),
                    ((sizeof(feat_uuser_t) + 5 + 1 + 7) & ~(size_t)7) +
                        body_bytes(fresh));
        /* u's pool rounds both up to their slots */
        TEST_EQ_INT(feat_user_bytes(u),
                    tern_pool_slot_bytes(u->pool, feat_user_bytes(fresh)) +
                        tern_pool_slot_bytes(u->pool, body_bytes(u)));
        feat_user_free(fresh);
}

/* Decodes grown's records into a fresh user, which must encode back to
 * the same records; *rec_bytes: their size. NULL on failure. */
static feat_uuser_t *reload(const feat_uuser_t *grown, const feat_conf_t *c,
                            size_t *rec_bytes) {
        tern_buf_t rec[4]; /* profile, window; again from the loaded user */
        feat_uuser_t *loaded = feat_user_new(c, NULL, 2, "alice", 5);
        int same = 0;
        for (int i = 0; i < 4; i++)
                tern_buf_init(&rec[i], 1 << 20);
        if (loaded && !feat_profile_encode(grown, &rec[0]) &&
            !feat_window_encode(grown, &rec[1]) &&
            !feat_user_decode(loaded, rec[0].data, rec[0].len, rec[1].data,
                              rec[1].len, errstr, sizeof(errstr)) &&
            !feat_profile_encode(loaded, &rec[2]) &&
            !feat_window_encode(loaded, &rec[3]))
                same = rec[0].len == rec[2].len && rec[1].len == rec[3].len &&
                       !memcmp(rec[0].data, rec[2].data, rec[0].len) &&
                       !memcmp(rec[1].data, rec[3].data, rec[1].len);
        *rec_bytes = rec[0].len + rec[1].len;
        for (int i = 0; i < 4; i++)
                tern_buf_free(&rec[i]);
        if (!same) {
                feat_user_free(loaded);
                return NULL;
        }
        return loaded;
}

/* A user read back from its records gets lists as long as theirs and an
 * arena of their bytes. It used to get twice the bytes and lists grown by
 * doubling: 5.8 KiB for the full user here, against 3.9 KiB for the same
 * user never evicted, so memory rose as more cached users were read-back
 * ones. */
static void test_reload_size(void) {
        feat_conf_t c;
        feat_store_t *st;
        feat_engine_t *eng;
        const feat_user_t *pub = NULL;
        const feat_uuser_t *grown;
        feat_uuser_t *loaded;
        size_t rec_bytes;
        char *dir, item[32], cat[16];
        feat_conf_default(&c);
        TEST_ASSERT((eng = open_engine("profile-reload", &st, &dir, &c)), "%s",
                    errstr);
        for (int i = 0; i < 77; i++) {
                snprintf(item, sizeof(item), "item-%06d", i * 7919 % 100000);
                snprintf(cat, sizeof(cat), "cat-%d", i % 13);
                pub = apply(eng, item, cat, TERN_EV_VIEW,
                            INT64_C(1700000000000) + i * 1000, -1, -1);
                TEST_ASSERT(pub, "%s", errstr);
                grown = (const feat_uuser_t *)(const void *)pub;
                if (i != 6)
                        continue;
                /* 7 of everything: lists of 7, not 8 */
                TEST_ASSERT((loaded = reload(grown, &c, &rec_bytes)), "%s",
                            errstr);
                TEST_EQ_INT(loaded->cap_recent, 7);
                TEST_EQ_INT(loaded->cap_window, 7);
                TEST_EQ_INT(loaded->cap_aff, 7);
                feat_user_free(loaded);
        }
        TEST_EQ_INT(grown->pub.profile.n_recent, 50);
        TEST_EQ_INT(grown->pub.n_window, 20);
        TEST_ASSERT((loaded = reload(grown, &c, &rec_bytes)), "%s", errstr);
        fprintf(stderr, "  body: grown %zu B, loaded %zu B (records %zu B)\n",
                body_bytes(grown), body_bytes(loaded), rec_bytes);
        check_user_bytes(grown, &c);
        check_user_bytes(loaded, &c);
        TEST_EQ_INT(loaded->cap_recent, 50);
        TEST_EQ_INT(loaded->cap_window, 20);
        TEST_EQ_INT(loaded->pub.profile.n_affinity, c.affinity_top_k);
        TEST_EQ_INT(loaded->cap_aff, c.affinity_top_k + 1); /* insert room */
        TEST_ASSERT(loaded->arena_cap <= rec_bytes, "arena %u > %zu",
                    loaded->arena_cap, rec_bytes);
        TEST_ASSERT(body_bytes(loaded) * 10 <= body_bytes(grown) * 11,
                    "loaded body %zu, grown %zu", body_bytes(loaded),
                    body_bytes(grown));
        feat_user_free(loaded);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

TEST_MAIN(TEST_CASE(test_profile), TEST_CASE(test_inspect_user),
          TEST_CASE(test_reload_size));
