/*
 * feat_inspect — state read straight from the store as JSON (`tern
 * inspect`): a user's profile and window, an item's exact neighbour list,
 * and every item's list as JSON lines. Works on a read-only store, and
 * never uses the engine's mirrors, so it is an independent view of what
 * the engine committed.
 */
#include "feat_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define JSON_MAX ((size_t)1 << 30)

/* ---- user ---- */

static void json_str(tern_buf_t *o, const char *s, size_t n) {
        tern_buf_put_u8(o, '"');
        tern_buf_put_json_str(o, s, n);
        tern_buf_put_u8(o, '"');
}

static void json_items(tern_buf_t *o, const char *name, const feat_item_ts_t *v,
                       uint32_t n, int with_type) {
        tern_buf_printf(o, ",\"%s\":[", name);
        for (uint32_t i = 0; i < n; i++) {
                tern_buf_printf(o, "%s{\"item_id\":", i ? "," : "");
                json_str(o, v[i].item, v[i].len);
                tern_buf_printf(o, ",\"ts_ms\":%lld", (long long)v[i].ts_ms);
                if (with_type)
                        tern_buf_printf(o, ",\"type\":\"%s\"",
                                        tern_event_type_names[v[i].type]);
                tern_buf_put_u8(o, '}');
        }
        tern_buf_put_u8(o, ']');
}

static void json_user(tern_buf_t *o, const feat_uuser_t *u) {
        const feat_profile_t *p = &u->pub.profile;
        tern_buf_put_u8(o, '{');
        tern_buf_append(o, "\"user_id\":", 10);
        json_str(o, u->user_id, u->pub.user_len);
        tern_buf_printf(o, ",\"partition\":%d,\"events\":{",
                        (int)u->pub.partition);
        for (int t = 0; t < TERN_EV__CNT; t++)
                tern_buf_printf(o, "%s\"%s\":%llu", t ? "," : "",
                                tern_event_type_names[t],
                                (unsigned long long)p->events[t]);
        tern_buf_printf(o,
                        "},\"first_ts_ms\":%lld,\"last_ts_ms\":%lld,"
                        "\"spend\":%.17g,\"units\":%llu,\"sessions\":%u,"
                        "\"gap_ewma_ms\":%.17g,\"affinities\":[",
                        (long long)p->first_ts_ms, (long long)p->last_ts_ms,
                        p->spend, (unsigned long long)p->units, p->sessions,
                        p->gap_ewma_ms);
        for (uint32_t i = 0; i < p->n_affinity; i++) {
                tern_buf_printf(o, "%s{\"category_id\":", i ? "," : "");
                json_str(o, u->aff[i].category, u->aff[i].len);
                tern_buf_printf(o, ",\"score\":%.17g,\"ts_ms\":%lld}",
                                u->aff[i].score, (long long)u->aff[i].ts_ms);
        }
        tern_buf_put_u8(o, ']');
        json_items(o, "recent", u->recent, p->n_recent, 1);
        json_items(o, "window", u->window, u->pub.n_window, 0);
        tern_buf_put_u8(o, '}');
}

/* Reads a user's records in one partition: TERN_ERR_NOT_FOUND if absent. */
static tern_code_t user_read(feat_store_t *st, const char *user,
                             int32_t partition, feat_uuser_t **out,
                             char *errstr, size_t errstr_size) {
        feat_conf_t conf;
        tern_buf_t key, pv, wv;
        int pf = 0, wf = 0;
        uint32_t len = (uint32_t)strlen(user);
        tern_code_t code;
        feat_conf_default(&conf);
        conf.window_items = conf.recent_items = FEAT_LIST_MAX;
        conf.affinity_top_k = FEAT_LIST_MAX;
        *out = NULL;
        tern_buf_init(&key, 2 * FEAT_ID_MAX + 16);
        tern_buf_init(&pv, (size_t)64 << 20);
        tern_buf_init(&wv, (size_t)64 << 20);
        feat_key_user(&key, partition, user, len);
        if ((code = feat_store_get(st, FEAT_CF_PROFILE, key.data, key.len, &pv,
                                   &pf, errstr, errstr_size)) ||
            (code = feat_store_get(st, FEAT_CF_WINDOW, key.data, key.len, &wv,
                                   &wf, errstr, errstr_size)))
                goto out;
        if (!pf && !wf) {
                code = TERN_ERR_NOT_FOUND;
                goto out;
        }
        if (!(*out = feat_user_new(&conf, NULL, partition, user, len))) {
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
                goto out;
        }
        code =
            feat_user_decode(*out, pf ? pv.data : NULL, pv.len,
                             wf ? wv.data : NULL, wv.len, errstr, errstr_size);
out:
        tern_buf_free(&key);
        tern_buf_free(&pv);
        tern_buf_free(&wv);
        return code;
}

/* Partitions named in the offsets CF ([topic]\0[u32be partition]). */
static int listed_partitions(feat_store_t *st, uint8_t *seen) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_OFFSETS, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        int n = 0;
        char *rerr;
        if (!it)
                return 0;
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                uint32_t p;
                if (klen < 5)
                        continue;
                p = ((uint32_t)k[klen - 4] << 24) |
                    ((uint32_t)k[klen - 3] << 16) |
                    ((uint32_t)k[klen - 2] << 8) | k[klen - 1];
                if (p <= 0xffff && !seen[p]) {
                        seen[p] = 1;
                        n++;
                }
        }
        if ((rerr = feat_iter_error(it)))
                free(rerr);
        feat_iter_destroy(it);
        return n;
}

/* The partitions listed in the offsets CF first, then 0..1023. */
static tern_code_t user_find(feat_store_t *st, const char *user,
                             feat_uuser_t **u, char *errstr,
                             size_t errstr_size) {
        uint8_t *seen = calloc(0x10000, 1);
        tern_code_t code = TERN_ERR_NOT_FOUND;
        if (!seen)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        listed_partitions(st, seen);
        for (int32_t p = 0; p <= 0xffff && code == TERN_ERR_NOT_FOUND; p++)
                if (seen[p])
                        code = user_read(st, user, p, u, errstr, errstr_size);
        for (int32_t p = 0; p < 1024 && code == TERN_ERR_NOT_FOUND; p++)
                if (!seen[p])
                        code = user_read(st, user, p, u, errstr, errstr_size);
        free(seen);
        return code;
}

tern_code_t feat_inspect_user_json(feat_store_t *st, const char *user,
                                   int32_t partition, tern_buf_t *out,
                                   char *errstr, size_t errstr_size) {
        feat_uuser_t *u = NULL;
        tern_code_t code;
        if (!user || strlen(user) > FEAT_ID_MAX || partition > 0xffff)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "inspect: bad user id or partition");
        if (partition >= 0)
                code = user_read(st, user, partition, &u, errstr, errstr_size);
        else
                code = user_find(st, user, &u, errstr, errstr_size);
        if (code == TERN_ERR_NOT_FOUND)
                tern_errf(errstr, errstr_size, code,
                          "user \"%.200s\" not found", user);
        if (!code) {
                json_user(out, u);
                if (out->overflow)
                        code = tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                         "inspect: document too large");
        }
        feat_user_free(u);
        return code;
}

/* ---- items ---- */

typedef struct nb_ent {
        size_t off; /* into the names arena */
        uint32_t len;
        int64_t c, n;
        double score;
} nb_ent_t;

typedef struct nb_list {
        nb_ent_t *v;
        size_t cnt, cap;
        tern_buf_t names;
} nb_list_t;

/* n of another item: from a preloaded table or a point read. */
typedef int (*n_lookup_fn)(void *ctx, const uint8_t *id, size_t len, int64_t *n,
                           char *errstr, size_t errstr_size);

static int nb_push(nb_list_t *l, const uint8_t *id, uint32_t len, int64_t c) {
        if (l->cnt == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 64;
                nb_ent_t *g = realloc(l->v, nc * sizeof(*g));
                if (!g)
                        return -1;
                l->v = g;
                l->cap = nc;
        }
        l->v[l->cnt].off = l->names.len;
        l->v[l->cnt].len = len;
        l->v[l->cnt].c = c;
        l->cnt++;
        return tern_buf_append(&l->names, id, len);
}

static const char *nb_name(const nb_list_t *l, const nb_ent_t *e) {
        return (const char *)l->names.data + e->off;
}

static const nb_list_t *sort_ctx;

/* s(i,a) > s(i,b)  <=>  c_a^2 * n_b > c_b^2 * n_a. Compared exactly in
 * integers: the doubles of mathematically equal scores (3/sqrt(117) and
 * 1/sqrt(13)) can differ in the last bit, and the order is a contract. */
static int nb_cmp(const void *pa, const void *pb) {
        const nb_ent_t *a = pa, *b = pb;
        unsigned __int128 lhs = (unsigned __int128)((__int128)a->c * a->c) *
                                (uint64_t)(b->n > 0 ? b->n : 0);
        unsigned __int128 rhs = (unsigned __int128)((__int128)b->c * b->c) *
                                (uint64_t)(a->n > 0 ? a->n : 0);
        if (lhs != rhs)
                return lhs > rhs ? -1 : 1;
        return feat_id_cmp(nb_name(sort_ctx, a), a->len, nb_name(sort_ctx, b),
                           b->len);
}

static tern_code_t nb_collect(feat_iter_t *it, size_t plen, nb_list_t *l,
                              char *errstr, size_t errstr_size) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                if (vlen != 8) {
                        char pk[256];
                        feat_key_printable(k, klen, pk, sizeof(pk));
                        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                         "undecodable counter at key \"%s\"",
                                         pk);
                }
                if (nb_push(l, k + plen, (uint32_t)(klen - plen),
                            feat_counter_decode(v, vlen)))
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
        }
        return feat_iter_status(it, "counter scan", errstr, errstr_size);
}

static tern_code_t bad_pair(const uint8_t *k, size_t klen, char *errstr,
                            size_t errstr_size) {
        char pk[256];
        feat_key_printable(k, klen, pk, sizeof(pk));
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "undecodable pair counter at key \"%s\"", pk);
}

/* One item's neighbours: every stored pair naming it, first or second (a
 * scan of the whole cooc CF: pairs are kept once, under the id that sorts
 * first). */
static tern_code_t nb_collect_cooc(feat_iter_t *it, const char *item,
                                   size_t len, nb_list_t *l, char *errstr,
                                   size_t errstr_size) {
        const uint8_t *k, *v, *a, *b;
        size_t klen, vlen;
        uint32_t alen, blen;
        if (feat_iter_seek(it, NULL, 0))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                int push_b, push_a;
                if (feat_key_cooc_split(k, klen, &a, &alen, &b, &blen))
                        return bad_pair(k, klen, errstr, errstr_size);
                push_b = alen == len && !memcmp(a, item, len);
                push_a = blen == len && !memcmp(b, item, len);
                /* a bad count only spoils the documents of its items */
                if ((push_a || push_b) && vlen != 8)
                        return bad_pair(k, klen, errstr, errstr_size);
                if ((push_b &&
                     nb_push(l, b, blen, feat_counter_decode(v, 8))) ||
                    (push_a && nb_push(l, a, alen, feat_counter_decode(v, 8))))
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
        }
        return feat_iter_status(it, "cooc scan", errstr, errstr_size);
}

static void json_item(tern_buf_t *o, const char *item, size_t len, int64_t n,
                      const nb_list_t *l, uint32_t k) {
        size_t cnt = k && k < l->cnt ? k : l->cnt;
        tern_buf_append(o, "{\"item_id\":", 11);
        json_str(o, item, len);
        tern_buf_printf(o, ",\"n\":%lld,\"neighbors\":[", (long long)n);
        for (size_t i = 0; i < cnt; i++) {
                const nb_ent_t *e = &l->v[i];
                tern_buf_printf(o, "%s{\"item_id\":", i ? "," : "");
                json_str(o, nb_name(l, e), e->len);
                tern_buf_printf(o, ",\"c\":%lld,\"score\":%.17g}",
                                (long long)e->c, e->score);
        }
        tern_buf_append(o, "]}", 2);
}

/* One item's document into o from its neighbours in l (scored and
 * sorted here). */
static tern_code_t item_doc(const char *item, size_t len, int64_t n,
                            n_lookup_fn lookup, void *ctx, uint32_t k,
                            tern_buf_t *o, nb_list_t *l, char *errstr,
                            size_t errstr_size) {
        for (size_t i = 0; i < l->cnt; i++) {
                nb_ent_t *e = &l->v[i];
                if (lookup(ctx, (const uint8_t *)nb_name(l, e), e->len, &e->n,
                           errstr, errstr_size))
                        return TERN_ERR_STATE;
                e->score = n > 0 && e->n > 0
                               ? (double)e->c / sqrt((double)n * (double)e->n)
                               : 0.0;
        }
        sort_ctx = l;
        if (l->cnt)
                qsort(l->v, l->cnt, sizeof(*l->v), nb_cmp);
        json_item(o, item, len, n, l, k);
        return o->overflow ? tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                       "inspect: document too large")
                           : TERN_OK;
}

static int get_n(void *ctx, const uint8_t *id, size_t len, int64_t *n,
                 char *errstr, size_t errstr_size) {
        tern_buf_t v;
        int found, r = 0;
        tern_buf_init(&v, 64);
        if (feat_store_get(ctx, FEAT_CF_ITEM, id, len, &v, &found, errstr,
                           errstr_size))
                r = -1;
        else if (found && v.len != 8)
                r = -1, tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                  "undecodable item counter \"%.*s\"",
                                  (int)(len > 200 ? 200 : len), id);
        *n = found && !r ? feat_counter_decode(v.data, v.len) : 0;
        tern_buf_free(&v);
        return r;
}

tern_code_t feat_inspect_item_json(feat_store_t *st, const char *item,
                                   uint32_t k, tern_buf_t *out, char *errstr,
                                   size_t errstr_size) {
        nb_list_t l = {0};
        feat_iter_t *it;
        int64_t n;
        size_t len = item ? strlen(item) : 0;
        tern_code_t code;
        if (!item || len > FEAT_ID_MAX)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "inspect: bad item id");
        if (get_n(st, (const uint8_t *)item, len, &n, errstr, errstr_size))
                return TERN_ERR_STATE;
        if (!(it = feat_iter_new(st, FEAT_CF_COOC, NULL, 0)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        tern_buf_init(&l.names, JSON_MAX);
        code = nb_collect_cooc(it, item, len, &l, errstr, errstr_size);
        if (!code)
                code = item_doc(item, len, n, get_n, st, k, out, &l, errstr,
                                errstr_size);
        if (!code && n == 0 && l.cnt == 0)
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOT_FOUND,
                                 "item \"%.200s\" not found", item);
        feat_iter_destroy(it);
        tern_buf_free(&l.names);
        free(l.v);
        return code;
}

/* ---- every item: the item CF preloaded into a sorted table ---- */

typedef struct n_table {
        nb_list_t l; /* c holds n; entries in store (bytewise) order */
} n_table_t;

/* The item's index in the table, t->l.cnt if absent. */
static size_t table_index(const n_table_t *t, const uint8_t *id, size_t len) {
        const nb_list_t *l = &t->l;
        size_t lo = 0, hi = l->cnt;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const nb_ent_t *e = &l->v[mid];
                int r = feat_id_cmp(nb_name(l, e), e->len, (const char *)id,
                                    (uint32_t)len);
                if (r == 0)
                        return mid;
                if (r < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return l->cnt;
}

static int table_n(void *ctx, const uint8_t *id, size_t len, int64_t *n,
                   char *errstr, size_t errstr_size) {
        const n_table_t *t = ctx;
        size_t i = table_index(t, id, len);
        (void)errstr, (void)errstr_size;
        *n = i < t->l.cnt ? t->l.v[i].c : 0;
        return 0;
}

/* Every stored pair, both ways, grouped by the item it is read from: the
 * neighbours of table item i are to[first[i] .. first[i + 1]). */
typedef struct nb_index {
        size_t *first;
        uint32_t *to;
        int64_t *c;
} nb_index_t;

static void nb_index_free(nb_index_t *x) {
        free(x->first);
        free(x->to);
        free(x->c);
}

/* One pass to count each item's pairs, one to place them (two scans of
 * the cooc CF instead of holding its keys). Pairs naming an item the
 * item CF lacks are skipped (no document names that item). */
static tern_code_t nb_index_build(feat_store_t *st, const n_table_t *t,
                                  nb_index_t *x, char *errstr,
                                  size_t errstr_size) {
        size_t n_items = t->l.cnt, *fill = NULL;
        tern_code_t code = TERN_OK;
        if (!(x->first = calloc(n_items + 1, sizeof(*x->first))) ||
            !(fill = calloc(n_items + 1, sizeof(*fill))))
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        for (int pass = 0; pass < 2 && !code; pass++) {
                feat_iter_t *it = feat_iter_new(st, FEAT_CF_COOC, NULL, 0);
                const uint8_t *k, *v, *a, *b;
                size_t klen, vlen;
                uint32_t alen, blen;
                if (!it) {
                        code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
                        break;
                }
                while (!code && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                        size_t ia, ib;
                        if (vlen != 8 || feat_key_cooc_split(k, klen, &a, &alen,
                                                             &b, &blen)) {
                                code = bad_pair(k, klen, errstr, errstr_size);
                                break;
                        }
                        ia = table_index(t, a, alen);
                        ib = table_index(t, b, blen);
                        if (ia == n_items || ib == n_items)
                                continue;
                        if (pass == 0) {
                                x->first[ia + 1]++;
                                x->first[ib + 1]++;
                                continue;
                        }
                        /* both passes read the same (read-only) store,
                         * but a pass must not outgrow what the first
                         * counted */
                        if (fill[ia] == x->first[ia + 1] ||
                            fill[ib] == x->first[ib + 1]) {
                                code = tern_errf(errstr, errstr_size,
                                                 TERN_ERR_STATE,
                                                 "cooc scan: the pairs "
                                                 "changed while read");
                                break;
                        }
                        x->to[fill[ia]] = (uint32_t)ib;
                        x->c[fill[ia]++] = feat_counter_decode(v, 8);
                        x->to[fill[ib]] = (uint32_t)ia;
                        x->c[fill[ib]++] = feat_counter_decode(v, 8);
                }
                if (!code)
                        code = feat_iter_status(it, "cooc scan", errstr,
                                                errstr_size);
                feat_iter_destroy(it);
                if (pass == 0 && !code) {
                        for (size_t i = 0; i < n_items; i++)
                                x->first[i + 1] += x->first[i];
                        memcpy(fill, x->first, n_items * sizeof(*fill));
                        if (!(x->to = malloc((x->first[n_items] + 1) *
                                             sizeof(*x->to))) ||
                            !(x->c = malloc((x->first[n_items] + 1) *
                                            sizeof(*x->c))))
                                code =
                                    tern_errf(errstr, errstr_size,
                                              TERN_ERR_NOMEM, "out of memory");
                }
        }
        free(fill);
        return code;
}

static tern_code_t table_load(feat_store_t *st, n_table_t *t, char *errstr,
                              size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_ITEM, NULL, 0);
        tern_code_t code;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        code = nb_collect(it, 0, &t->l, errstr, errstr_size);
        feat_iter_destroy(it);
        return code;
}

tern_code_t feat_inspect_items_jsonl(feat_store_t *st, uint32_t k, FILE *out,
                                     char *errstr, size_t errstr_size) {
        n_table_t t = {{0}};
        nb_index_t x = {0};
        nb_list_t l = {0};
        tern_buf_t doc;
        tern_code_t code;
        tern_buf_init(&t.l.names, JSON_MAX);
        tern_buf_init(&l.names, JSON_MAX);
        tern_buf_init(&doc, JSON_MAX);
        if ((code = table_load(st, &t, errstr, errstr_size)) ||
            (code = nb_index_build(st, &t, &x, errstr, errstr_size)))
                goto out;
        for (size_t i = 0; i < t.l.cnt && !code; i++) {
                const nb_ent_t *e = &t.l.v[i];
                l.cnt = 0;
                tern_buf_reset(&l.names);
                for (size_t j = x.first[i]; j < x.first[i + 1] && !code; j++) {
                        const nb_ent_t *m = &t.l.v[x.to[j]];
                        if (nb_push(&l, (const uint8_t *)nb_name(&t.l, m),
                                    m->len, x.c[j]))
                                code =
                                    tern_errf(errstr, errstr_size,
                                              TERN_ERR_NOMEM, "out of memory");
                }
                tern_buf_reset(&doc);
                if (!code)
                        code = item_doc(nb_name(&t.l, e), e->len, e->c, table_n,
                                        &t, k, &doc, &l, errstr, errstr_size);
                if (!code && (fwrite(doc.data, 1, doc.len, out) != doc.len ||
                              fputc('\n', out) == EOF))
                        code = tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                         "inspect: write failed");
        }
out:
        nb_index_free(&x);
        tern_buf_free(&t.l.names);
        tern_buf_free(&l.names);
        tern_buf_free(&doc);
        free(t.l.v);
        free(l.v);
        return code;
}

/* ---- digest ---- */

typedef struct digest {
        uint64_t a, b;
} digest_t;

static void digest_bytes(digest_t *d, const void *p, size_t n) {
        const uint8_t *c = p;
        for (size_t i = 0; i < n; i++) {
                d->a = (d->a ^ c[i]) * 0x100000001b3ULL;
                d->b = (d->b ^ c[i]) * 0x00000100000001b3ULL +
                       0x9e3779b97f4a7c15ULL;
        }
}

static void digest_len(digest_t *d, size_t n) {
        uint8_t be[8];
        for (int i = 0; i < 8; i++)
                be[i] = (uint8_t)(n >> (56 - 8 * i));
        digest_bytes(d, be, sizeof(be));
}

tern_code_t feat_inspect_digest_json(feat_store_t *st, tern_buf_t *out,
                                     char *errstr, size_t errstr_size) {
        digest_t d = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
        uint64_t counts[FEAT_CF__CNT] = {0}, total = 0;
        tern_code_t rc = TERN_OK;
        for (int cf = 0; cf < FEAT_CF__CNT && rc == TERN_OK; cf++) {
                feat_iter_t *it = feat_iter_new(st, (feat_cf_t)cf, NULL, 0);
                const uint8_t *k, *v;
                size_t kl, vl;
                uint8_t id = (uint8_t)cf;
                if (!it)
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
                while (feat_iter_next(it, &k, &kl, &v, &vl)) {
                        digest_bytes(&d, &id, 1);
                        digest_len(&d, kl);
                        digest_bytes(&d, k, kl);
                        digest_len(&d, vl);
                        digest_bytes(&d, v, vl);
                        counts[cf]++;
                }
                rc = feat_iter_status(it, feat_cf_names[cf], errstr,
                                      errstr_size);
                feat_iter_destroy(it);
                total += counts[cf];
        }
        if (rc != TERN_OK)
                return rc;
        tern_buf_printf(out,
                        "{\"digest\":\"%016llx%016llx\",\"records\":%llu,"
                        "\"by_cf\":{",
                        (unsigned long long)d.a, (unsigned long long)d.b,
                        (unsigned long long)total);
        for (int cf = 0; cf < FEAT_CF__CNT; cf++)
                tern_buf_printf(out, "%s\"%s\":%llu", cf ? "," : "",
                                feat_cf_names[cf],
                                (unsigned long long)counts[cf]);
        tern_buf_printf(out, "}}");
        return TERN_OK;
}
