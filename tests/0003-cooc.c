/* TERN_TEST_LINK: tern_features */
/*
 * 0003-cooc — the exact co-occurrence definition of feat_engine.h on small
 * hand-computed cases, and determinism: batch boundaries, tiny mirrors
 * (drops and reloads) and a reopen mid-way give byte-identical stores.
 */
#include "test.h"

#include <stdint.h>

#include "features/feat_engine.h"

static char errstr[512];

typedef struct fx {
        char *dir;
        feat_store_t *st;
        feat_engine_t *eng;
        feat_conf_t conf;
} fx_t;

static int fx_open(fx_t *f) {
        feat_store_conf_t sc = {.dir = f->dir};
        if (!(f->st = feat_store_open(&sc, errstr, sizeof(errstr))))
                return -1;
        f->eng = feat_engine_new(f->st, &f->conf, errstr, sizeof(errstr));
        return f->eng ? 0 : -1;
}

static void fx_close(fx_t *f) {
        feat_engine_destroy(f->eng);
        feat_store_close(f->st);
        f->eng = NULL;
        f->st = NULL;
}

static int fx_init(fx_t *f, const char *tag, const feat_conf_t *conf) {
        f->dir = test_tmpdir(tag);
        if (conf)
                f->conf = *conf;
        else
                feat_conf_default(&f->conf);
        return fx_open(f);
}

static void fx_free(fx_t *f) {
        fx_close(f);
        free(f->dir);
}

static int ev_apply(fx_t *f, const char *user, const char *item,
                    tern_event_type_t type, int64_t ts, int *counted) {
        tern_event_t ev;
        int c = 0;
        tern_event_clear(&ev);
        ev.user_id = tern_str_c(user);
        ev.item_id = tern_str_c(item);
        ev.type = type;
        ev.ts_ms = ts;
        if (feat_engine_apply(f->eng, &ev, &c, NULL, errstr, sizeof(errstr)))
                return -1;
        if (counted)
                *counted = c;
        return 0;
}

/* c(a,b) from the engine's top list (0 if not a top neighbour). */
static int64_t top_c(fx_t *f, const char *a, const char *b) {
        const feat_neighbor_t *nb;
        uint32_t n;
        if (feat_engine_top_neighbors(f->eng, a, (uint32_t)strlen(a), &nb, &n,
                                      errstr, sizeof(errstr)))
                return -1;
        for (uint32_t i = 0; i < n; i++)
                if (nb[i].len == strlen(b) && !memcmp(nb[i].item, b, nb[i].len))
                        return nb[i].c;
        return 0;
}

static int64_t item_n(fx_t *f, const char *a) {
        return feat_engine_item_n(f->eng, a, (uint32_t)strlen(a), errstr,
                                  sizeof(errstr));
}

static void test_basic(void) {
        fx_t f = {0};
        TEST_ASSERT(!fx_init(&f, "cooc-basic", NULL), "%s", errstr);
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 0, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "B", TERN_EV_VIEW, 1000, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "C", TERN_EV_CLICK, 2000, NULL));
        TEST_EQ_INT(top_c(&f, "A", "B"), 1);
        TEST_EQ_INT(top_c(&f, "B", "A"), 1);
        TEST_EQ_INT(top_c(&f, "C", "A"), 1);
        TEST_EQ_INT(top_c(&f, "C", "B"), 1);
        TEST_EQ_INT(item_n(&f, "C"), 1);
        /* another user's window is separate */
        TEST_ASSERT(!ev_apply(&f, "v", "D", TERN_EV_VIEW, 2000, NULL));
        TEST_EQ_INT(top_c(&f, "D", "C"), 0);
        TEST_ASSERT(!feat_engine_commit(f.eng, NULL, 0, errstr, sizeof(errstr)),
                    "%s", errstr);
        TEST_EQ_INT(top_c(&f, "A", "C"), 1);
        fx_free(&f);
}

static void test_time_boundary(void) {
        fx_t f = {0};
        feat_conf_t c;
        feat_conf_default(&c);
        c.window_seconds = 10;
        TEST_ASSERT(!fx_init(&f, "cooc-time", &c), "%s", errstr);
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 0, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "B", TERN_EV_VIEW, 10000, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "C", TERN_EV_VIEW, 20001, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "D", TERN_EV_VIEW, 30001, NULL));
        TEST_EQ_INT(top_c(&f, "A", "B"), 1); /* exactly T: in */
        TEST_EQ_INT(top_c(&f, "B", "C"), 0); /* T + 1 ms: out */
        TEST_EQ_INT(top_c(&f, "A", "C"), 0);
        TEST_EQ_INT(top_c(&f, "C", "D"), 1);
        TEST_EQ_INT(top_c(&f, "B", "D"), 0);
        fx_free(&f);
}

static void test_window_eviction(void) {
        fx_t f = {0};
        feat_conf_t c;
        const feat_user_t *u;
        tern_event_t ev;
        feat_conf_default(&c);
        c.window_items = 2;
        TEST_ASSERT(!fx_init(&f, "cooc-evict", &c), "%s", errstr);
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 1, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "B", TERN_EV_VIEW, 2, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "C", TERN_EV_VIEW, 3, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "D", TERN_EV_VIEW, 4, NULL));
        TEST_EQ_INT(top_c(&f, "A", "C"), 1);
        TEST_EQ_INT(top_c(&f, "B", "C"), 1);
        TEST_EQ_INT(top_c(&f, "A", "D"), 0); /* A left the window */
        TEST_EQ_INT(top_c(&f, "B", "D"), 1);
        TEST_EQ_INT(top_c(&f, "C", "D"), 1);
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("u");
        ev.type = TERN_EV_VIEW;
        ev.ts_ms = 5;
        TEST_ASSERT(
            !feat_engine_apply(f.eng, &ev, NULL, &u, errstr, sizeof(errstr)));
        TEST_EQ_INT(u->n_window, 2);
        TEST_ASSERT(u->window[0].len == 1 && u->window[0].item[0] == 'D');
        TEST_ASSERT(u->window[1].item[0] == 'C' && u->window[1].ts_ms == 3);
        fx_free(&f);
}

static void test_repeat_moves_front(void) {
        fx_t f = {0};
        const feat_user_t *u;
        tern_event_t ev;
        TEST_ASSERT(!fx_init(&f, "cooc-repeat", NULL), "%s", errstr);
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 1, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "B", TERN_EV_VIEW, 2, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 3, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_CART, 4, NULL));
        TEST_EQ_INT(top_c(&f, "A", "B"), 3);
        TEST_EQ_INT(top_c(&f, "A", "A"), 0);
        TEST_EQ_INT(item_n(&f, "A"), 3);
        TEST_EQ_INT(item_n(&f, "B"), 1);
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("u");
        ev.item_id = tern_str_c("C");
        ev.type = TERN_EV_VIEW;
        ev.ts_ms = 5;
        TEST_ASSERT(
            !feat_engine_apply(f.eng, &ev, NULL, &u, errstr, sizeof(errstr)));
        TEST_EQ_INT(u->n_window, 3);
        TEST_ASSERT(u->window[1].item[0] == 'A' && u->window[1].ts_ms == 4);
        TEST_EQ_INT(u->window[1].type, TERN_EV_CART);
        TEST_ASSERT(u->window[2].item[0] == 'B');
        TEST_EQ_INT(top_c(&f, "C", "A"), 1);
        TEST_EQ_INT(top_c(&f, "C", "B"), 1);
        fx_free(&f);
}

static void test_weights_uncounted(void) {
        fx_t f = {0};
        feat_conf_t c;
        int counted = -1;
        feat_conf_default(&c);
        c.type_weight[TERN_EV_PURCHASE] = 3;
        TEST_ASSERT(!fx_init(&f, "cooc-weights", &c), "%s", errstr);
        TEST_ASSERT(!ev_apply(&f, "u", "X", TERN_EV_IMPRESSION, 1, &counted));
        TEST_EQ_INT(counted, 0);
        TEST_ASSERT(!ev_apply(&f, "u", NULL, TERN_EV_VIEW, 2, &counted));
        TEST_EQ_INT(counted, 0);
        TEST_ASSERT(!ev_apply(&f, "u", "A", TERN_EV_VIEW, 3, &counted));
        TEST_EQ_INT(counted, 1);
        TEST_ASSERT(!ev_apply(&f, "u", "B", TERN_EV_PURCHASE, 4, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "X", TERN_EV_IMPRESSION, 5, NULL));
        TEST_ASSERT(!ev_apply(&f, "u", "C", TERN_EV_VIEW, 6, NULL));
        TEST_EQ_INT(top_c(&f, "A", "B"), 3);
        TEST_EQ_INT(item_n(&f, "B"), 3);
        TEST_EQ_INT(item_n(&f, "X"), 0);
        TEST_EQ_INT(top_c(&f, "A", "X"), 0);
        TEST_EQ_INT(top_c(&f, "C", "X"), 0);
        TEST_EQ_INT(top_c(&f, "C", "B"), 1);
        fx_free(&f);
}

/* Equal scores sort by id bytes: memcmp, shorter first. */
static void test_sort_ties(void) {
        static const char *nbs[] = {"b", "ab", "a", "aa", "a\x01"};
        const feat_neighbor_t *nb;
        uint32_t n;
        fx_t f = {0};
        tern_buf_t out;
        const char *want = "{\"item_id\":\"I\",\"n\":5,\"neighbors\":["
                           "{\"item_id\":\"a\",\"c\":1,\"score\":"
                           "0.44721359549995793},"
                           "{\"item_id\":\"a\\u0001\",\"c\":1,\"score\":"
                           "0.44721359549995793},"
                           "{\"item_id\":\"aa\"";
        TEST_ASSERT(!fx_init(&f, "cooc-ties", NULL), "%s", errstr);
        for (int i = 0; i < 5; i++) {
                char user[8];
                snprintf(user, sizeof(user), "u%d", i);
                TEST_ASSERT(!ev_apply(&f, user, nbs[i], TERN_EV_VIEW, 1, NULL));
                TEST_ASSERT(!ev_apply(&f, user, "I", TERN_EV_VIEW, 2, NULL));
        }
        TEST_ASSERT(!feat_engine_top_neighbors(f.eng, "I", 1, &nb, &n, errstr,
                                               sizeof(errstr)));
        TEST_EQ_INT(n, 5);
        TEST_ASSERT(nb[0].len == 1 && nb[0].item[0] == 'a');
        TEST_ASSERT(nb[1].len == 2 && !memcmp(nb[1].item, "a\x01", 2));
        TEST_ASSERT(nb[2].len == 2 && !memcmp(nb[2].item, "aa", 2));
        TEST_ASSERT(nb[4].len == 1 && nb[4].item[0] == 'b');
        TEST_ASSERT(
            !feat_engine_commit(f.eng, NULL, 0, errstr, sizeof(errstr)));
        tern_buf_init(&out, 1 << 20);
        TEST_ASSERT(
            !feat_inspect_item_json(f.st, "I", 0, &out, errstr, sizeof(errstr)),
            "%s", errstr);
        tern_buf_put_u8(&out, 0);
        TEST_ASSERT(!strncmp((char *)out.data, want, strlen(want)), "%s",
                    (char *)out.data);
        tern_buf_free(&out);
        fx_free(&f);
}

/* ---- determinism against a naive reference ---- */

#define D_USERS  23
#define D_ITEMS  41
#define D_EVENTS 4000

typedef struct dev {
        int user, item, type, cat;
        int64_t ts;
} det_ev_t;

static det_ev_t devs[D_EVENTS];

static void gen_events(void) {
        uint64_t s = 42;
        int64_t ts = 1000000;
        for (int i = 0; i < D_EVENTS; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                devs[i].user = (int)((s >> 33) % D_USERS);
                /* skewed items: small ids more often */
                devs[i].item =
                    (int)(((s >> 20) % D_ITEMS) * ((s >> 50) % 8) / 8);
                devs[i].type = (int)((s >> 12) % TERN_EV__CNT);
                devs[i].cat = (int)((s >> 40) % 5);
                if ((s >> 7) % 13 == 0)
                        devs[i].item = -1;
                ts += (int64_t)((s >> 28) % 900);
                devs[i].ts = ts;
        }
}

static void dev_event(const det_ev_t *d, tern_event_t *ev, char *ubuf,
                      char *ibuf, char *cbuf) {
        tern_event_clear(ev);
        sprintf(ubuf, "user%d", d->user);
        sprintf(ibuf, "item%d", d->item);
        sprintf(cbuf, "cat%d", d->cat);
        ev->user_id = tern_str_c(ubuf);
        ev->item_id = d->item >= 0 ? tern_str_c(ibuf) : TERN_STR_NULL;
        ev->category_id = tern_str_c(cbuf);
        ev->type = (tern_event_type_t)d->type;
        ev->ts_ms = d->ts;
        ev->src_partition = d->user % 3;
        ev->has_price = 1;
        ev->price = 1.25 * d->item;
}

static void det_conf(feat_conf_t *c) {
        feat_conf_default(c);
        c->window_items = 5;
        c->window_seconds = 3;
        c->type_weight[TERN_EV_CART] = 2;
        c->top_neighbors = 3;
        c->trending_size = 4;
        c->affinity_top_k = 2;
        c->recent_items = 4;
}

/* Applies the events, committing every `every`, reopening at `reopen`. */
static int det_run(fx_t *f, int every, int reopen) {
        feat_offset_t off = {"events", 0, 0};
        for (int i = 0; i < D_EVENTS; i++) {
                char ub[32], ib[32], cb[32];
                tern_event_t ev;
                dev_event(&devs[i], &ev, ub, ib, cb);
                if (feat_engine_apply(f->eng, &ev, NULL, NULL, errstr,
                                      sizeof(errstr)))
                        return -1;
                off.next_offset = i + 1;
                if ((i + 1) % every == 0 || i + 1 == D_EVENTS || i == reopen)
                        if (feat_engine_commit(f->eng, &off, 1, errstr,
                                               sizeof(errstr)))
                                return -1;
                if (i == reopen) {
                        fx_close(f);
                        if (fx_open(f))
                                return -1;
                }
        }
        return 0;
}

/* Every CF, every key and value, in one buffer. */
static void dump_store(feat_store_t *st, tern_buf_t *out) {
        for (int cf = 0; cf < FEAT_CF__CNT; cf++) {
                feat_iter_t *it = feat_iter_new(st, (feat_cf_t)cf, NULL, 0);
                const uint8_t *k, *v;
                size_t kl, vl;
                tern_buf_put_u32be(out, (uint32_t)cf);
                while (feat_iter_next(it, &k, &kl, &v, &vl)) {
                        tern_buf_put_str(out, (const char *)k, kl);
                        tern_buf_put_str(out, (const char *)v, vl);
                }
                feat_iter_destroy(it);
        }
}

/* Naive reference of the definition: c and n over item indexes. */
static int64_t ref_c[D_ITEMS][D_ITEMS], ref_n[D_ITEMS];

static void reference(const feat_conf_t *c) {
        int win[D_USERS][64], nw[D_USERS];
        int64_t wts[D_USERS][64];
        memset(ref_c, 0, sizeof(ref_c));
        memset(ref_n, 0, sizeof(ref_n));
        memset(nw, 0, sizeof(nw));
        for (int e = 0; e < D_EVENTS; e++) {
                const det_ev_t *d = &devs[e];
                int u = d->user, w = c->type_weight[d->type], pos = -1;
                if (d->item < 0 || w <= 0)
                        continue;
                for (int k = 0; k < nw[u]; k++) {
                        if (win[u][k] == d->item) {
                                pos = k;
                                continue;
                        }
                        if (d->ts - wts[u][k] <= c->window_seconds * 1000) {
                                ref_c[d->item][win[u][k]] += w;
                                ref_c[win[u][k]][d->item] += w;
                        }
                }
                ref_n[d->item] += w;
                if (pos < 0)
                        pos =
                            nw[u] < (int)c->window_items ? nw[u]++ : nw[u] - 1;
                memmove(&win[u][1], &win[u][0], pos * sizeof(int));
                memmove(&wts[u][1], &wts[u][0], pos * sizeof(int64_t));
                win[u][0] = d->item;
                wts[u][0] = d->ts;
        }
}

static int ref_i; /* item whose neighbours ref_cmp sorts */

static int ref_cmp(const void *pa, const void *pb) {
        int x = *(const int *)pa, y = *(const int *)pb;
        char bx[32], by[32];
        if (ref_c[ref_i][x] != ref_c[ref_i][y])
                return ref_c[ref_i][x] > ref_c[ref_i][y] ? -1 : 1;
        sprintf(bx, "item%d", x);
        sprintf(by, "item%d", y);
        return strcmp(bx, by);
}

/* The engine's top lists and n against the naive reference. */
static void check_reference(fx_t *f) {
        for (int i = 0; i < D_ITEMS; i++) {
                char a[32];
                const feat_neighbor_t *nb;
                uint32_t n, want = 0;
                int ids[D_ITEMS];
                sprintf(a, "item%d", i);
                TEST_EQ_INT(item_n(f, a), ref_n[i]);
                TEST_ASSERT(!feat_engine_top_neighbors(
                    f->eng, a, (uint32_t)strlen(a), &nb, &n, errstr,
                    sizeof(errstr)));
                for (int j = 0; j < D_ITEMS; j++)
                        if (ref_c[i][j] > 0)
                                ids[want++] = j;
                ref_i = i;
                qsort(ids, want, sizeof(int), ref_cmp);
                if (want > f->conf.top_neighbors)
                        want = f->conf.top_neighbors;
                TEST_EQ_INT(n, want);
                for (uint32_t k = 0; k < n; k++) {
                        char b[32];
                        sprintf(b, "item%d", ids[k]);
                        TEST_ASSERT(nb[k].len == strlen(b) &&
                                        !memcmp(nb[k].item, b, nb[k].len),
                                    "%s neighbour %u", a, k);
                        TEST_EQ_INT(nb[k].c, ref_c[i][ids[k]]);
                        TEST_EQ_INT(nb[k].n, ref_n[ids[k]]);
                }
        }
}

static void trending_str(fx_t *f, tern_buf_t *out) {
        const feat_neighbor_t *t;
        uint32_t n;
        feat_engine_trending(f->eng, &t, &n);
        for (uint32_t i = 0; i < n; i++)
                tern_buf_printf(out, "%.*s=%lld ", (int)t[i].len, t[i].item,
                                (long long)t[i].n);
}

static void test_determinism(void) {
        static const struct {
                int every, reopen;
                uint64_t max_users, max_pairs;
        } runs[] = {{D_EVENTS, -1, 200000, 20000000},
                    {7, -1, 2, 5},
                    {50, 1999, 200000, 20000000},
                    {1, 733, 1, 1}};
        tern_buf_t dump[4], trend[4];
        feat_conf_t c;
        det_conf(&c);
        gen_events();
        reference(&c);
        for (int r = 0; r < 4; r++) {
                fx_t f = {0};
                char tag[32];
                snprintf(tag, sizeof(tag), "cooc-det%d", r);
                c.max_cached_users = runs[r].max_users;
                c.max_cached_pairs = runs[r].max_pairs;
                tern_buf_init(&dump[r], 1 << 26);
                tern_buf_init(&trend[r], 1 << 20);
                TEST_ASSERT(!fx_init(&f, tag, &c), "%s", errstr);
                TEST_ASSERT(!det_run(&f, runs[r].every, runs[r].reopen), "%s",
                            errstr);
                trending_str(&f, &trend[r]);
                check_reference(&f);
                if (test_failed_flag)
                        return;
                /* records counted by whichever items left memory */
                TEST_ASSERT(!feat_engine_write_top_records(f.eng, errstr,
                                                           sizeof(errstr)),
                            "%s", errstr);
                dump_store(f.st, &dump[r]);
                fx_free(&f);
                TEST_ASSERT(
                    dump[r].len == dump[0].len &&
                        !memcmp(dump[r].data, dump[0].data, dump[0].len),
                    "run %d store differs", r);
                TEST_ASSERT(
                    trend[r].len == trend[0].len &&
                        !memcmp(trend[r].data, trend[0].data, trend[0].len),
                    "run %d trending differs", r);
        }
        for (int r = 0; r < 4; r++) {
                tern_buf_free(&dump[r]);
                tern_buf_free(&trend[r]);
        }
}

TEST_MAIN(TEST_CASE(test_basic), TEST_CASE(test_time_boundary),
          TEST_CASE(test_window_eviction), TEST_CASE(test_repeat_moves_front),
          TEST_CASE(test_weights_uncounted), TEST_CASE(test_sort_ties),
          TEST_CASE(test_determinism));
