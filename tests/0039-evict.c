/* TERN_TEST_LINK: tern_features tern_models */
/*
 * 0039-evict — bounded caches. The feature engine with tiny bounds (100
 * users, 1,000 pairs and items) evicts after nearly every commit; it must
 * stay within its bounds after each commit and compute exactly what it
 * computes with bounds it never reaches: the same user state and the same
 * recommendations after every event, the same top neighbours and trending
 * list, and a byte-identical store (digest). Seven runs over one stream:
 * unbounded; tiny bounds with the same commits; tiny bounds with other
 * commits written in the background; a bound every item fits in but the
 * pair entries do not (so items keep top lists whose pairs come and go
 * and pair counts are read back from the store), once as is and once
 * with the engine restarted every few commits (every top list loaded
 * back from its record); top lists bounded, entries not; users bounded
 * by the bytes they hold, not their number.
 */
#include "test.h"

#include <stdint.h>

#include "features/feat_engine.h"
#include "features/feat_int.h"
#include "models/model_recs.h"

#define N_EVENTS 12000
#define N_USERS  1000
#define N_ITEMS  2000
#define TINY_U   100
#define TINY_P   1000
#define MID_P    6000
#define TINY_I   200
#define TINY_UB  (48 << 10) /* ~100 users' bytes */

static char errstr[512];

typedef struct ev_spec {
        char user[16], item[16];
        tern_event_type_t type;
        int64_t ts;
} ev_spec_t;

static ev_spec_t evs[N_EVENTS];

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uniform(void) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        return (double)(rng >> 11) / 9007199254740992.0;
}

/* Skewed users and items (a few hot, a long tail), time moving on. */
static void gen_events(void) {
        rng = 0x9e3779b97f4a7c15ULL;
        static const tern_event_type_t types[] = {
            TERN_EV_VIEW,     TERN_EV_VIEW,    TERN_EV_VIEW, TERN_EV_CLICK,
            TERN_EV_CART,     TERN_EV_VIEW,    TERN_EV_VIEW, TERN_EV_IMPRESSION,
            TERN_EV_PURCHASE, TERN_EV_FAVORITE};
        int64_t ts = 1700000000000LL;
        for (int i = 0; i < N_EVENTS; i++) {
                double u = uniform(), it = uniform();
                ts += (int64_t)(uniform() * 400);
                snprintf(evs[i].user, sizeof(evs[i].user), "u%d",
                         (int)(u * u * N_USERS));
                snprintf(evs[i].item, sizeof(evs[i].item), "i%d",
                         (int)(it * it * it * N_ITEMS));
                evs[i].type = types[(int)(uniform() * 10)];
                evs[i].ts = ts;
        }
}

typedef struct run {
        char *dir;
        feat_store_t *st;
        feat_engine_t *eng;
        model_recs_t *recs;
        tern_buf_t log; /* what the run computed, event by event */
        tern_buf_t digest;
        uint64_t max_items;      /* feat_conf_t.max_cached_items; 0: default */
        uint64_t max_user_bytes; /* feat_conf_t.max_cached_user_bytes */
        int no_filter;           /* feat_conf_t.pair_filter_bytes = 0 */
        int reopen_every;        /* commits between engine restarts; 0: never */
        int n_commits;
        feat_conf_t conf;
        uint64_t top_loads, pair_reads; /* summed over the restarts */
} run_t;

static tern_code_t nb_of(void *opaque, const char *item, uint32_t len,
                         const feat_neighbor_t **out, uint32_t *n_out, char *es,
                         size_t es_size) {
        return feat_engine_top_neighbors(opaque, item, len, out, n_out, es,
                                         es_size);
}

static void trend_of(void *opaque, const feat_neighbor_t **out,
                     uint32_t *n_out) {
        feat_engine_trending(opaque, out, n_out);
}

static void log_user(tern_buf_t *o, const feat_user_t *u) {
        tern_buf_printf(o, "%.*s ev%llu s%u w", (int)u->user_len, u->user_id,
                        (unsigned long long)u->profile.events[TERN_EV_VIEW],
                        u->profile.sessions);
        for (uint32_t k = 0; k < u->n_window; k++)
                tern_buf_printf(o, " %.*s@%lld", (int)u->window[k].len,
                                u->window[k].item,
                                (long long)u->window[k].ts_ms);
        tern_buf_printf(o, "\n");
}

static int log_recs(run_t *r, const feat_user_t *u) {
        model_nb_source_t src = {r->eng, nb_of, trend_of, NULL, NULL};
        model_recs_result_t res;
        if (model_recs_compute(r->recs, u, &src, &res, errstr, sizeof(errstr)))
                return -1;
        tern_buf_printf(&r->log, " %s:", res.strategy);
        for (uint32_t k = 0; k < res.n; k++)
                tern_buf_printf(&r->log, " %.*s=%.17g", (int)res.items[k].len,
                                res.items[k].item, res.items[k].score);
        tern_buf_printf(&r->log, "\n");
        return 0;
}

static int log_neighbors(run_t *r, const char *item) {
        const feat_neighbor_t *nb;
        uint32_t n;
        if (feat_engine_top_neighbors(r->eng, item, (uint32_t)strlen(item), &nb,
                                      &n, errstr, sizeof(errstr)))
                return -1;
        tern_buf_printf(&r->log, " nb %s:", item);
        for (uint32_t k = 0; k < n; k++)
                tern_buf_printf(&r->log, " %.*s/%lld/%lld/%.17g",
                                (int)nb[k].len, nb[k].item, (long long)nb[k].c,
                                (long long)nb[k].n, nb[k].score);
        tern_buf_printf(&r->log, "\n");
        return 0;
}

static void log_trending(run_t *r) {
        const feat_neighbor_t *t;
        uint32_t n;
        feat_engine_trending(r->eng, &t, &n);
        tern_buf_printf(&r->log, "trending:");
        for (uint32_t i = 0; i < n; i++)
                tern_buf_printf(&r->log, " %.*s=%lld", (int)t[i].len, t[i].item,
                                (long long)t[i].n);
        tern_buf_printf(&r->log, "\n");
}

static int apply_one(run_t *r, const ev_spec_t *e, int i) {
        tern_event_t ev;
        const feat_user_t *u;
        tern_event_clear(&ev);
        ev.user_id = tern_str_c(e->user);
        ev.item_id = tern_str_c(e->item);
        ev.type = e->type;
        ev.ts_ms = e->ts;
        if (feat_engine_apply(r->eng, &ev, NULL, &u, errstr, sizeof(errstr)))
                return -1;
        log_user(&r->log, u);
        if (log_recs(r, u))
                return -1;
        return i % 97 ? 0 : log_neighbors(r, e->item);
}

/* The users metric's running sum, recounted. */
static uint64_t user_bytes_recounted(const feat_engine_t *eng) {
        uint64_t n = 0;
        for (size_t i = 0; i <= eng->users.mask; i++)
                if (eng->users.slots[i].u)
                        n += feat_user_bytes(eng->users.slots[i].u);
        return n;
}

/* After a commit: the mirrors within their bounds (at_low: within the
 * 90% an eviction goes down to). */
static void check_bounds(run_t *r, uint64_t max_u, uint64_t max_p, int at_low) {
        feat_stats_t s;
        uint64_t max_i =
            r->max_items && r->max_items < max_p ? r->max_items : max_p;
        if (at_low) {
                max_u -= max_u / 10;
                max_p -= max_p / 10;
                max_i -= max_i / 10;
        }
        feat_engine_stats(r->eng, &s);
        TEST_ASSERT(s.cached_users <= max_u, "%llu users",
                    (unsigned long long)s.cached_users);
        TEST_EQ_INT(s.cached_user_bytes, user_bytes_recounted(r->eng));
        if (r->max_user_bytes) {
                uint64_t max_b = r->max_user_bytes;
                if (at_low)
                        max_b -= max_b / 10;
                TEST_ASSERT(s.cached_user_bytes <= max_b, "%llu user bytes",
                            (unsigned long long)s.cached_user_bytes);
        }
        TEST_ASSERT(s.cached_pairs <= max_p, "%llu pairs",
                    (unsigned long long)s.cached_pairs);
        TEST_ASSERT(s.cached_items <= max_p, "%llu items",
                    (unsigned long long)s.cached_items);
        TEST_ASSERT(s.cached_top_lists <= max_i, "%llu top lists",
                    (unsigned long long)s.cached_top_lists);
}

/* One commit; async: written by the store's thread while the next
 * events are applied (feat_engine_commit_begin), landed at the next. */
static void commit(run_t *r, int async) {
        feat_stats_t s;
        int landed;
        if (async)
                TEST_ASSERT(!feat_engine_commit_begin(r->eng, NULL, 0, &landed,
                                                      errstr, sizeof(errstr)),
                            "%s", errstr);
        else
                TEST_ASSERT(!feat_engine_commit(r->eng, NULL, 0, errstr,
                                                sizeof(errstr)),
                            "%s", errstr);
        if (!r->reopen_every || ++r->n_commits % r->reopen_every)
                return;
        TEST_ASSERT(!feat_engine_commit_end(r->eng, errstr, sizeof(errstr)),
                    "%s", errstr);
        feat_engine_stats(r->eng, &s);
        r->top_loads += s.top_loads;
        r->pair_reads += s.pair_reads;
        feat_engine_destroy(r->eng);
        TEST_ASSERT(
            (r->eng = feat_engine_new(r->st, &r->conf, errstr, sizeof(errstr))),
            "%s", errstr);
}

static void run_stream(run_t *r, const char *tag, uint64_t max_u,
                       uint64_t max_p, int every, int async) {
        feat_store_conf_t sc = {0};
        feat_conf_t c;
        model_recs_conf_t rc;
        feat_conf_default(&c);
        c.window_items = 8;
        c.top_neighbors = 8;
        c.trending_size = 20;
        c.max_cached_users = max_u;
        c.max_cached_pairs = max_p;
        if (r->max_items)
                c.max_cached_items = r->max_items;
        c.max_cached_user_bytes = r->max_user_bytes;
        if (r->no_filter)
                c.pair_filter_bytes = 0;
        r->conf = c;
        model_recs_conf_default(&rc);
        r->dir = test_tmpdir(tag);
        sc.dir = r->dir;
        tern_buf_init(&r->log, (size_t)1 << 28);
        tern_buf_init(&r->digest, 1 << 12);
        TEST_ASSERT((r->st = feat_store_open(&sc, errstr, sizeof(errstr))),
                    "%s", errstr);
        TEST_ASSERT(
            (r->eng = feat_engine_new(r->st, &c, errstr, sizeof(errstr))), "%s",
            errstr);
        TEST_ASSERT((r->recs = model_recs_new(&rc)));
        for (int i = 0; i < N_EVENTS; i++) {
                TEST_ASSERT(!apply_one(r, &evs[i], i), "event %d: %s", i,
                            errstr);
                if ((i + 1) % every && i + 1 < N_EVENTS)
                        continue;
                commit(r, async);
                check_bounds(r, max_u, max_p, every == N_EVENTS);
                if (test_failed_flag)
                        return;
        }
        for (int i = 0; i < N_ITEMS; i += 7) {
                char item[16];
                snprintf(item, sizeof(item), "i%d", i);
                TEST_ASSERT(!log_neighbors(r, item), "%s", errstr);
        }
        log_trending(r);
        TEST_ASSERT(!r->log.overflow);
        TEST_ASSERT(!feat_engine_commit_end(r->eng, errstr, sizeof(errstr)),
                    "%s", errstr);
        /* runs differ in which items left memory (their records counted) */
        TEST_ASSERT(
            !feat_engine_write_top_records(r->eng, errstr, sizeof(errstr)),
            "%s", errstr);
        TEST_ASSERT(!feat_inspect_digest_json(r->st, &r->digest, errstr,
                                              sizeof(errstr)),
                    "%s", errstr);
}

static void run_free(run_t *r) {
        model_recs_destroy(r->recs);
        feat_engine_destroy(r->eng);
        feat_store_close(r->st);
        tern_buf_free(&r->log);
        tern_buf_free(&r->digest);
        free(r->dir);
}

/* Index of the first differing line, for the failure message. */
static long first_diff_line(const tern_buf_t *a, const tern_buf_t *b) {
        long line = 1;
        for (size_t i = 0; i < a->len && i < b->len; i++) {
                if (a->data[i] != b->data[i])
                        return line;
                line += a->data[i] == '\n';
        }
        return a->len == b->len ? 0 : line;
}

static void same_results(const run_t *a, const run_t *b, const char *what) {
        TEST_ASSERT(a->log.len == b->log.len &&
                        !memcmp(a->log.data, b->log.data, a->log.len),
                    "%s: results differ from line %ld", what,
                    first_diff_line(&a->log, &b->log));
        TEST_ASSERT(a->digest.len == b->digest.len &&
                        !memcmp(a->digest.data, b->digest.data, a->digest.len),
                    "%s: store differs: %.*s vs %.*s", what, (int)a->digest.len,
                    (const char *)a->digest.data, (int)b->digest.len,
                    (const char *)b->digest.data);
}

/* Evictions must not leave the pair table clustered: lookups of absent
 * pairs probe to the end of a run. */
static void table_shape(const run_t *r, const char *what) {
        feat_table_stats_t t;
        feat_engine_pair_table_stats(r->eng, &t);
        fprintf(stderr,
                "%s: %llu entries in %llu slots, displacement mean %.2f max "
                "%llu, longest run %llu\n",
                what, (unsigned long long)t.entries,
                (unsigned long long)t.slots, t.mean_displacement,
                (unsigned long long)t.max_displacement,
                (unsigned long long)t.longest_run);
        /* random at this load: mean ~0.3, runs of a few dozen; sweeping
         * from slot 0 every time gave mean 1.9, a run of 296 in "mid" */
        TEST_ASSERT(t.mean_displacement < 1.0 && t.longest_run < 100,
                    "%s: the pair table is clustered", what);
}

static void test_tiny_bounds_same_results(void) {
        /* mid reads every count (no pair filter), the others may not */
        run_t big = {0}, tiny = {0}, tiny2 = {0}, mid = {.no_filter = 1},
              mid2 = {.reopen_every = 7};
        run_t items = {.max_items = TINY_I};
        run_t ubytes = {.max_user_bytes = TINY_UB};
        feat_stats_t s;
        gen_events();
        run_stream(&big, "evict-big", 1000000, 100000000, 64, 0);
        if (!test_failed_flag)
                run_stream(&tiny, "evict-tiny", TINY_U, TINY_P, 64, 0);
        if (!test_failed_flag)
                run_stream(&tiny2, "evict-tiny2", TINY_U, TINY_P, 13, 1);
        /* every item fits, entries do not: items keep their top lists
         * while entries come and go, and most commits are written in the
         * background */
        if (!test_failed_flag)
                run_stream(&mid, "evict-mid", 1000000, MID_P, 32, 1);
        if (!test_failed_flag)
                run_stream(&mid2, "evict-mid2", 1000000, MID_P, 32, 1);
        /* top lists bounded, entries not: unloaded items drop their top
         * lists (and entries whose both items are unloaded go); the
         * items themselves stay, named by entries and top lists */
        if (!test_failed_flag)
                run_stream(&items, "evict-items", 1000000, 100000000, 32, 1);
        /* users bounded by their bytes, not their number */
        if (!test_failed_flag)
                run_stream(&ubytes, "evict-ubytes", 1000000, 100000000, 32, 1);
        if (!test_failed_flag) {
                /* the unbounded run never evicted, the bounded ones did,
                 * items too (user windows then name reused item slots) */
                feat_engine_stats(big.eng, &s);
                TEST_EQ_INT(s.users_evicted + s.items_unloaded, 0);
                feat_engine_stats(tiny.eng, &s);
                TEST_ASSERT(s.users_evicted > 1000 && s.items_evicted > 1000 &&
                                s.items_unloaded > 1000 &&
                                s.pairs_evicted > 10000,
                            "evicted %llu users %llu items, unloaded %llu, "
                            "%llu pairs",
                            (unsigned long long)s.users_evicted,
                            (unsigned long long)s.items_evicted,
                            (unsigned long long)s.items_unloaded,
                            (unsigned long long)s.pairs_evicted);
                TEST_ASSERT(s.pair_reads > 100, "%llu pair reads",
                            (unsigned long long)s.pair_reads);
                feat_engine_stats(mid.eng, &s);
                TEST_ASSERT(s.pairs_evicted > 10000 && s.pair_reads > 100 &&
                                s.items_unloaded == 0,
                            "mid: %llu pairs evicted, %llu reads, %llu "
                            "unloaded",
                            (unsigned long long)s.pairs_evicted,
                            (unsigned long long)s.pair_reads,
                            (unsigned long long)s.items_unloaded);
                table_shape(&mid, "mid");
                table_shape(&mid2, "mid2");
                table_shape(&items, "items");
                feat_engine_stats(tiny.eng, &s);
                TEST_ASSERT(s.pair_filter_builds == 1 &&
                                s.pair_filter_zeros > 100,
                            "tiny: filter built %llu, %llu zeros",
                            (unsigned long long)s.pair_filter_builds,
                            (unsigned long long)s.pair_filter_zeros);
                feat_engine_stats(tiny.eng, &s);
                TEST_ASSERT(s.top_loads_counted > 100,
                            "tiny: %llu counted top records loaded",
                            (unsigned long long)s.top_loads_counted);
                TEST_ASSERT(mid2.top_loads > 1000 && mid2.pair_reads > 100,
                            "mid2: %llu top lists loaded, %llu reads",
                            (unsigned long long)mid2.top_loads,
                            (unsigned long long)mid2.pair_reads);
                same_results(&big, &tiny, "tiny bounds");
                same_results(&big, &tiny2, "tiny bounds, other commits");
                same_results(&big, &mid, "entries bounded, items not");
                same_results(&big, &mid2,
                             "the same, restarted every 7 commits");
                feat_engine_stats(items.eng, &s);
                TEST_ASSERT(s.items_unloaded > 1000 && s.items_evicted == 0,
                            "items: %llu unloaded, %llu freed",
                            (unsigned long long)s.items_unloaded,
                            (unsigned long long)s.items_evicted);
                same_results(&big, &items, "items bounded, entries not");
                feat_engine_stats(ubytes.eng, &s);
                fprintf(stderr,
                        "ubytes: %llu users (%llu bytes), %llu evicted\n",
                        (unsigned long long)s.cached_users,
                        (unsigned long long)s.cached_user_bytes,
                        (unsigned long long)s.users_evicted);
                TEST_ASSERT(s.users_evicted > 1000 && s.items_unloaded == 0,
                            "ubytes: %llu users evicted, %llu items unloaded",
                            (unsigned long long)s.users_evicted,
                            (unsigned long long)s.items_unloaded);
                same_results(&big, &ubytes, "users bounded by bytes");
        }
        run_free(&big);
        run_free(&tiny);
        run_free(&tiny2);
        run_free(&mid);
        run_free(&mid2);
        run_free(&items);
        run_free(&ubytes);
}

/* A batch far over the bounds: its one commit evicts down to 90%. */
static void test_one_big_batch(void) {
        run_t r = {0};
        gen_events();
        run_stream(&r, "evict-batch", TINY_U, TINY_P, N_EVENTS, 0);
        run_free(&r);
        if (test_failed_flag)
                return;
        r = (run_t){.max_user_bytes = TINY_UB};
        run_stream(&r, "evict-batch-bytes", 1000000, 100000000, N_EVENTS, 0);
        run_free(&r);
}

TEST_MAIN(TEST_CASE(test_tiny_bounds_same_results),
          TEST_CASE(test_one_big_batch));
