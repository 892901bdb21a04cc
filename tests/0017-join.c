/* TERN_TEST_LINK: tern_features */
/*
 * 0017-join — the impression -> click join in event time: a click inside
 * the window is positive once, an unclicked impression expires negative
 * when the watermark passes its window, duplicate / orphan / late clicks
 * and late impressions are counted and not learned, eviction bounds
 * memory, and pending impressions with their watermark survive a restart.
 */
#include "test.h"

#include <stdint.h>

#include "features/feat_join.h"

static char errstr[512];

typedef struct fixture {
        char *dir;
        feat_store_t *st;
        feat_join_t *j;
        feat_batch_t *b;
} fixture_t;

static const feat_join_conf_t conf = {
    .window_ms = 10000, .lateness_ms = 2000, .max_pending = 1000};

static int fx_open(fixture_t *f, const feat_join_conf_t *c) {
        feat_store_conf_t sc = {0};
        sc.dir = f->dir;
        sc.block_cache_mb = 8;
        sc.write_buffer_mb = 4;
        f->st = feat_store_open(&sc, errstr, sizeof(errstr));
        if (!f->st)
                return -1;
        f->j = feat_join_new(f->st, c, errstr, sizeof(errstr));
        f->b = feat_batch_new();
        return f->j ? 0 : -1;
}

static void fx_close(fixture_t *f) {
        feat_join_destroy(f->j);
        feat_batch_destroy(f->b);
        feat_store_close(f->st);
        f->j = NULL;
        f->st = NULL;
        f->b = NULL;
}

static int fx_commit(fixture_t *f) {
        feat_writer_t w = feat_join_writer(f->j);
        tern_code_t rc = w.write(w.opaque, f->st, f->b, errstr, sizeof(errstr));
        if (rc == TERN_OK)
                rc = feat_store_write(f->st, f->b, errstr, sizeof(errstr));
        w.done(w.opaque, rc == TERN_OK);
        feat_batch_clear(f->b);
        return rc == TERN_OK ? 0 : -1;
}

static const uint32_t idx[3] = {7, 11, 13};

static feat_join_result_t imp(fixture_t *f, const char *id, int64_t ts) {
        feat_join_result_t r = feat_join_impression(
            f->j, 0, id, (uint32_t)strlen(id), ts, ts / 1000, 0.25, idx, 3);
        feat_join_observe(f->j, 0, ts);
        return r;
}

static feat_join_result_t click(fixture_t *f, const char *id, int64_t ts,
                                feat_pending_t *out) {
        feat_join_result_t r =
            feat_join_click(f->j, 0, id, (uint32_t)strlen(id), ts, out);
        feat_join_observe(f->j, 0, ts);
        return r;
}

/* Expired impressions' ids, comma separated, unclicked ones marked "-". */
static void expire_all(fixture_t *f, char *out, size_t size) {
        feat_pending_t p;
        size_t len = 0;
        out[0] = '\0';
        while (feat_join_expire(f->j, 0, &p) && len < size)
                len += (size_t)snprintf(out + len, size - len, "%s%.*s%s",
                                        len ? "," : "", (int)p.id_len, p.id,
                                        p.clicked ? "" : "-");
}

static void test_positive_negative(void) {
        fixture_t f = {test_tmpdir("join-basic")};
        feat_pending_t p;
        char expired[256];
        feat_join_stats_t s;
        TEST_ASSERT(!fx_open(&f, &conf), "%s", errstr);
        TEST_EQ_INT(imp(&f, "a", 1000), FEAT_JOIN_OK);
        TEST_EQ_INT(imp(&f, "b", 2000), FEAT_JOIN_OK);
        /* a click at the very end of a's window still counts */
        TEST_EQ_INT(click(&f, "a", 11000, &p), FEAT_JOIN_OK);
        TEST_ASSERT(p.id_len == 1 && p.id[0] == 'a' && p.clicked);
        TEST_ASSERT(p.p_click == 0.25 && p.n_idx == 3 && p.idx[2] == 13);
        TEST_EQ_INT(p.src_offset, 1);
        /* watermark 11000 - 2000 = 9000: nothing closed yet */
        expire_all(&f, expired, sizeof(expired));
        TEST_EQ_STR(expired, "");
        TEST_EQ_INT(click(&f, "a", 11500, &p), FEAT_JOIN_DUPLICATE);
        TEST_EQ_INT(click(&f, "zz", 11500, &p), FEAT_JOIN_ORPHAN);
        imp(&f, "c", 13000); /* watermark 11000: a (deadline 11000) closes */
        expire_all(&f, expired, sizeof(expired));
        TEST_EQ_STR(expired, "a");
        imp(&f, "d", 14000); /* watermark 12000: b closes unclicked */
        expire_all(&f, expired, sizeof(expired));
        TEST_EQ_STR(expired, "b-");
        /* b is gone: a click now is an orphan */
        TEST_EQ_INT(click(&f, "b", 14000, &p), FEAT_JOIN_ORPHAN);
        feat_join_stats(f.j, &s);
        TEST_EQ_INT(s.impressions, 4);
        TEST_EQ_INT(s.positives, 1);
        TEST_EQ_INT(s.negatives, 1);
        TEST_EQ_INT(s.duplicate_clicks, 1);
        TEST_EQ_INT(s.orphan_clicks, 2);
        TEST_EQ_INT(s.pending, 2);
        fx_close(&f);
        free(f.dir);
}

static void test_late_events(void) {
        fixture_t f = {test_tmpdir("join-late")};
        feat_pending_t p;
        feat_join_stats_t s;
        TEST_ASSERT(!fx_open(&f, &conf), "%s", errstr);
        imp(&f, "a", 100000);
        /* click after a's window (deadline 110000), before the watermark
         * closes it: late click, a stays negative */
        TEST_EQ_INT(click(&f, "a", 110001, &p), FEAT_JOIN_LATE_CLICK);
        /* watermark is now 108001: an impression at 98001 has its window
         * closed already */
        TEST_EQ_INT(imp(&f, "old", 98001), FEAT_JOIN_LATE);
        /* ... one at 98002 still has 1 ms */
        TEST_EQ_INT(imp(&f, "ok", 98002), FEAT_JOIN_OK);
        TEST_EQ_INT(imp(&f, "ok", 98003), FEAT_JOIN_DUPLICATE);
        feat_join_stats(f.j, &s);
        TEST_EQ_INT(s.late_clicks, 1);
        TEST_EQ_INT(s.late_impressions, 1);
        TEST_EQ_INT(s.duplicate_impressions, 1);
        TEST_EQ_INT(s.positives, 0);
        fx_close(&f);
        free(f.dir);
}

static void test_expiry_order_and_eviction(void) {
        fixture_t f = {test_tmpdir("join-order")};
        feat_join_conf_t small = conf;
        char expired[256];
        feat_join_stats_t s;
        small.max_pending = 3;
        TEST_ASSERT(!fx_open(&f, &small), "%s", errstr);
        /* same deadline: id order; the ts order otherwise */
        imp(&f, "m", 5000);
        imp(&f, "b", 5000);
        imp(&f, "k", 6000);
        imp(&f, "x", 7000); /* evicts b, the first by (deadline, id) */
        imp(&f, "z", 40000);
        expire_all(&f, expired, sizeof(expired));
        TEST_EQ_STR(expired, "k-,x-");
        feat_join_stats(f.j, &s);
        TEST_EQ_INT(s.evicted, 2); /* b, then m when z arrived */
        fx_close(&f);
        free(f.dir);
}

static void test_restart(void) {
        fixture_t f = {test_tmpdir("join-restart")};
        feat_pending_t p;
        char expired[256];
        feat_join_stats_t s;
        TEST_ASSERT(!fx_open(&f, &conf), "%s", errstr);
        imp(&f, "a", 1000);
        imp(&f, "b", 2000);
        TEST_EQ_INT(click(&f, "b", 3000, &p), FEAT_JOIN_OK);
        TEST_ASSERT(!fx_commit(&f), "%s", errstr);
        imp(&f, "lost", 4000); /* never committed */
        fx_close(&f);

        TEST_ASSERT(!fx_open(&f, &conf), "%s", errstr);
        TEST_EQ_INT(feat_join_watermark(f.j, 0), 3000 - 2000);
        TEST_EQ_INT(click(&f, "lost", 4500, &p), FEAT_JOIN_ORPHAN);
        TEST_EQ_INT(click(&f, "b", 4500, &p), FEAT_JOIN_DUPLICATE);
        TEST_EQ_INT(click(&f, "a", 5000, &p), FEAT_JOIN_OK);
        TEST_ASSERT(!fx_commit(&f), "%s", errstr);
        imp(&f, "c", 20000);
        expire_all(&f, expired, sizeof(expired));
        TEST_EQ_STR(expired, "a,b");
        TEST_ASSERT(!fx_commit(&f), "%s", errstr);
        fx_close(&f);

        TEST_ASSERT(!fx_open(&f, &conf), "%s", errstr);
        feat_join_stats(f.j, &s);
        TEST_EQ_INT(s.pending, 1); /* c */
        TEST_EQ_INT(s.positives, 2);
        TEST_EQ_INT(s.impressions, 3);
        TEST_EQ_INT(s.orphan_clicks, 1);
        fx_close(&f);
        {
                feat_store_conf_t sc = {.dir = f.dir, .read_only = 1};
                f.st = feat_store_open(&sc, errstr, sizeof(errstr));
        }
        TEST_ASSERT(f.st, "%s", errstr);
        TEST_ASSERT(!feat_join_stats_load(f.st, &s, errstr, sizeof(errstr)),
                    "%s", errstr);
        TEST_EQ_INT(s.pending, 1);
        TEST_EQ_INT(s.positives, 2);
        feat_store_close(f.st);
        free(f.dir);
}

TEST_MAIN(TEST_CASE(test_positive_negative), TEST_CASE(test_late_events),
          TEST_CASE(test_expiry_order_and_eviction), TEST_CASE(test_restart));
