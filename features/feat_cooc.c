/*
 * feat_cooc — item co-occurrence: interned item ids, the pair-count table,
 * each item's exact top neighbours, the exact global trending list and the
 * pending merges of the current batch.
 *
 * Exactness: an item is "pairs loaded" when every pair it is part of is in
 * the pair table (one prefix scan of the cooc CF), and its top list was
 * built from all of them. Increments only touch items with their pairs
 * loaded, and counts only grow, so each top list stays exact: an increment
 * either moves an entry up or lets the neighbour enter when its new
 * (c, id) beats the last entry. The same argument keeps trending exact,
 * starting from the list stored with the last commit.
 *
 * This file is the whole co-occurrence interface: feat_cooc_add() takes the
 * increments and feat_item_load_pairs()/the top lists serve the reads, so
 * either side can later be fed from a repartition topic instead.
 */
#include "feat_int.h"

#include <stdio.h>
#include <stdlib.h>

#define ISLOTS_MIN   1024u
#define PSLOTS_MIN   ((size_t)1 << 14)
#define TRENDING_KEY "trending"

static uint32_t str_hash(const char *s, uint32_t len) {
        uint64_t h = 1469598103934665603ULL;
        for (uint32_t i = 0; i < len; i++) {
                h ^= (uint8_t)s[i];
                h *= 1099511628211ULL;
        }
        return (uint32_t)(h ^ (h >> 32));
}

static size_t pair_hash(uint32_t a, uint32_t b) {
        uint64_t x = ((uint64_t)a << 32) | b;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return (size_t)x;
}

static int push_u32(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x) {
        if (*n == *cap) {
                uint32_t nc = *cap ? *cap * 2 : 256;
                uint32_t *g = realloc(*v, nc * sizeof(**v));
                if (!g)
                        return -1;
                *v = g;
                *cap = nc;
        }
        (*v)[(*n)++] = x;
        return 0;
}

static int push_size(size_t **v, size_t *n, size_t *cap, size_t x) {
        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 1024;
                size_t *g = realloc(*v, nc * sizeof(**v));
                if (!g)
                        return -1;
                *v = g;
                *cap = nc;
        }
        (*v)[(*n)++] = x;
        return 0;
}

/* ---- interning ---- */

static int islots_resize(feat_cooc_t *c, uint32_t cap) {
        uint32_t *s = malloc((size_t)cap * sizeof(*s));
        if (!s)
                return -1;
        memset(s, 0xff, (size_t)cap * sizeof(*s));
        for (uint32_t id = 0; id < c->n_items; id++) {
                uint32_t i = c->items[id].hash & (cap - 1);
                while (s[i] != FEAT_NONE)
                        i = (i + 1) & (cap - 1);
                s[i] = id;
        }
        free(c->islots);
        c->islots = s;
        c->imask = cap - 1;
        return 0;
}

uint32_t feat_item_lookup(feat_engine_t *eng, const char *s, uint32_t len) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t h = str_hash(s, len);
        for (uint32_t i = h & c->imask;; i = (i + 1) & c->imask) {
                uint32_t id = c->islots[i];
                const feat_item_t *it;
                if (id == FEAT_NONE)
                        return FEAT_NONE;
                it = &c->items[id];
                if (it->hash == h && it->len == len && !memcmp(it->id, s, len))
                        return id;
        }
}

static int items_room(feat_cooc_t *c) {
        if ((uint64_t)(c->n_items + 1) * 4 > (uint64_t)(c->imask + 1) * 3 &&
            islots_resize(c, (c->imask + 1) * 2))
                return -1;
        if (c->n_items == c->cap_items) {
                uint32_t nc = c->cap_items ? c->cap_items * 2 : 1024;
                feat_item_t *g = realloc(c->items, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->items = g;
                c->cap_items = nc;
        }
        return c->n_items >= FEAT_NONE - 1 ? -1 : 0;
}

uint32_t feat_item_intern(feat_engine_t *eng, const char *s, uint32_t len) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t id = feat_item_lookup(eng, s, len), i;
        feat_item_t *it;
        if (id != FEAT_NONE)
                return id;
        if (items_room(c))
                return FEAT_NONE;
        it = &c->items[c->n_items];
        memset(it, 0, sizeof(*it));
        if (!(it->id = feat_strdup_n(s, len)))
                return FEAT_NONE;
        it->len = len;
        it->hash = str_hash(s, len);
        for (i = it->hash & c->imask; c->islots[i] != FEAT_NONE;
             i = (i + 1) & c->imask)
                ;
        c->islots[i] = c->n_items;
        return c->n_items++;
}

/* ---- top lists ---- */

/* (c1, id1) sorts before (c2, id2): count desc, then id bytes asc. */
static int top_beats(const feat_cooc_t *c, int64_t c1, uint32_t id1, int64_t c2,
                     uint32_t id2) {
        const feat_item_t *a, *b;
        if (c1 != c2)
                return c1 > c2;
        a = &c->items[id1];
        b = &c->items[id2];
        return feat_id_cmp(a->id, a->len, b->id, b->len) < 0;
}

/* Raises id's count from c_old (0: not a member) to c_new in the exact
 * top-k list. Returns 1 if the list changed. */
static int top_raise(const feat_cooc_t *c, feat_top_t *top, uint32_t *n,
                     uint32_t k, uint32_t id, int64_t c_old, int64_t c_new) {
        uint32_t pos = *n;
        if (k == 0)
                return 0;
        /* Full list: only an entry at least as good as the last can be in
         * it, so most increments skip the search. */
        if (c_old > 0 &&
            (*n < k || !top_beats(c, top[*n - 1].c, top[*n - 1].id, c_old, id)))
                for (uint32_t i = 0; i < *n; i++)
                        if (top[i].id == id) {
                                pos = i;
                                break;
                        }
        if (pos == *n) {
                if (*n < k)
                        (*n)++;
                else if (top_beats(c, c_new, id, top[k - 1].c, top[k - 1].id))
                        pos = k - 1;
                else
                        return 0;
        }
        top[pos].id = id;
        top[pos].c = c_new;
        for (; pos > 0 && top_beats(c, top[pos].c, top[pos].id, top[pos - 1].c,
                                    top[pos - 1].id);
             pos--) {
                feat_top_t t = top[pos];
                top[pos] = top[pos - 1];
                top[pos - 1] = t;
        }
        return 1;
}

/* ---- pair table ---- */

static feat_pair_t *pair_slot(feat_cooc_t *c, uint32_t a, uint32_t b) {
        size_t i = pair_hash(a, b) & c->pmask;
        for (;; i = (i + 1) & c->pmask) {
                feat_pair_t *p = &c->pslots[i];
                if (p->a == FEAT_NONE || (p->a == a && p->b == b))
                        return p;
        }
}

static int pairs_resize(feat_cooc_t *c, size_t cap) {
        feat_pair_t *old = c->pslots;
        size_t old_cap = old ? c->pmask + 1 : 0;
        feat_pair_t *s = malloc(cap * sizeof(*s));
        if (!s)
                return -1;
        for (size_t i = 0; i < cap; i++)
                s[i].a = FEAT_NONE;
        c->pslots = s;
        c->pmask = cap - 1;
        c->n_dirty_pairs = 0;
        for (size_t i = 0; i < old_cap; i++) {
                feat_pair_t *p;
                if (old[i].a == FEAT_NONE)
                        continue;
                p = pair_slot(c, old[i].a, old[i].b);
                *p = old[i];
                /* Slot indexes changed: rebuild the pending list. */
                if (p->pend &&
                    push_size(&c->dirty_pairs, &c->n_dirty_pairs,
                              &c->cap_dirty_pairs, (size_t)(p - s))) {
                        free(old);
                        return -2; /* pending merges lost: caller resets */
                }
        }
        free(old);
        return 0;
}

static int reserve_lists(feat_cooc_t *c, uint32_t more) {
        size_t want = c->n_dirty_pairs + more;
        if (want > c->cap_dirty_pairs) {
                size_t nc = want * 2;
                size_t *g = realloc(c->dirty_pairs, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->dirty_pairs = g;
                c->cap_dirty_pairs = nc;
        }
        if (c->n_dirty_items + 1 > c->cap_dirty_items) {
                uint32_t nc = c->cap_dirty_items ? c->cap_dirty_items * 2 : 256;
                uint32_t *g = realloc(c->dirty_items, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->dirty_items = g;
                c->cap_dirty_items = nc;
        }
        return 0;
}

/* Room for `more` new pairs and pending entries (and one pending item), so
 * the increments that follow cannot fail half-way through an event. */
int feat_cooc_reserve(feat_engine_t *eng, uint32_t more) {
        feat_cooc_t *c = &eng->cooc;
        size_t cap = c->pmask + 1;
        if (reserve_lists(c, more))
                return -1;
        if ((c->n_pairs + more) * 4 <= cap * 3)
                return 0;
        while ((c->n_pairs + more) * 4 > cap * 3)
                cap *= 2;
        return pairs_resize(c, cap);
}

void feat_cooc_add(feat_engine_t *eng, uint32_t a, uint32_t b, int64_t w) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t k = eng->conf.top_neighbors;
        feat_pair_t *p = pair_slot(c, a < b ? a : b, a < b ? b : a);
        int64_t old;
        if (p->a == FEAT_NONE) {
                p->a = a < b ? a : b;
                p->b = a < b ? b : a;
                p->c = p->pend = 0;
                c->n_pairs++;
        }
        old = p->c;
        p->c += w;
        if (p->pend == 0)
                push_size(&c->dirty_pairs, &c->n_dirty_pairs,
                          &c->cap_dirty_pairs, (size_t)(p - c->pslots));
        p->pend += w;
        top_raise(c, c->items[a].top, &c->items[a].n_top, k, b, old, p->c);
        top_raise(c, c->items[b].top, &c->items[b].n_top, k, a, old, p->c);
        eng->stats.pair_increments++;
}

void feat_item_add_n(feat_engine_t *eng, uint32_t id, int64_t w) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        int64_t old = it->n;
        it->n += w;
        it->n_pending += w;
        if (!it->n_dirty) {
                it->n_dirty = 1;
                push_u32(&c->dirty_items, &c->n_dirty_items,
                         &c->cap_dirty_items, id);
        }
        if (top_raise(c, c->trend, &c->n_trend, eng->conf.trending_size, id,
                      old, it->n))
                c->trend_dirty = 1;
}

/* ---- loading from the store ---- */

void feat_key_printable(const uint8_t *k, size_t klen, char *out,
                        size_t out_size) {
        size_t o = 0;
        for (size_t i = 0; i < klen && o + 5 < out_size; i++) {
                if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
                        out[o++] = (char)k[i];
                else
                        o += (size_t)snprintf(out + o, out_size - o, "\\x%02x",
                                              k[i]);
        }
        if (out_size)
                out[o < out_size ? o : out_size - 1] = '\0';
}

static tern_code_t bad_counter(feat_cf_t cf, const uint8_t *k, size_t klen,
                               char *errstr, size_t errstr_size) {
        char pk[256];
        feat_key_printable(k, klen, pk, sizeof(pk));
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "undecodable %s counter at key \"%s\"",
                         feat_cf_names[cf], pk);
}

tern_code_t feat_item_load_n(feat_engine_t *eng, uint32_t id, char *errstr,
                             size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        int found;
        tern_code_t code;
        if (it->n_loaded)
                return TERN_OK;
        code = feat_store_get(eng->st, FEAT_CF_ITEM, it->id, it->len, &c->val,
                              &found, errstr, errstr_size);
        if (code)
                return code;
        if (found && c->val.len != 8)
                return bad_counter(FEAT_CF_ITEM, (const uint8_t *)it->id,
                                   it->len, errstr, errstr_size);
        it->n = found ? feat_counter_decode(c->val.data, 8) : 0;
        it->n_loaded = 1;
        return TERN_OK;
}

/* One pair read from the store joins the table (unless the other item's
 * load put it there already: then it holds the same count) and the
 * loading item's top list. */
static int load_pair(feat_engine_t *eng, uint32_t id, const uint8_t *b,
                     uint32_t blen, int64_t cnt) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t bid = feat_item_intern(eng, (const char *)b, blen);
        feat_pair_t *p;
        feat_item_t *it;
        if (bid == FEAT_NONE || feat_cooc_reserve(eng, 1))
                return -1;
        if (bid == id || cnt <= 0)
                return 0;
        p = pair_slot(c, id < bid ? id : bid, id < bid ? bid : id);
        if (p->a == FEAT_NONE) {
                p->a = id < bid ? id : bid;
                p->b = id < bid ? bid : id;
                p->c = cnt;
                p->pend = 0;
                c->n_pairs++;
        }
        it = &c->items[id];
        top_raise(c, it->top, &it->n_top, eng->conf.top_neighbors, bid, 0,
                  p->c);
        return 0;
}

/* An item's pair list into the pair table and its top list. */
static tern_code_t load_list(feat_engine_t *eng, uint32_t id, const uint8_t *v,
                             size_t vlen, char *errstr, size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        feat_cooc_rd_t lr;
        const uint8_t *b;
        uint32_t blen;
        int64_t cnt;
        int r = -1;
        if (!feat_cooc_list_open(&lr, v, vlen))
                while ((r = feat_cooc_list_next(&lr, &b, &blen, &cnt)) == 1 &&
                       blen <= FEAT_ID_MAX)
                        if (load_pair(eng, id, b, blen, cnt))
                                return tern_errf(errstr, errstr_size,
                                                 TERN_ERR_NOMEM,
                                                 "out of memory loading pairs");
        if (r == 0)
                return TERN_OK;
        return bad_counter(FEAT_CF_COOC, c->key.data, c->key.len, errstr,
                           errstr_size);
}

static tern_code_t load_pairs_scan(feat_engine_t *eng, uint32_t id,
                                   char *errstr, size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        const uint8_t *k, *v;
        size_t klen, vlen, plen;
        if (!c->scan && !(c->scan = feat_iter_new_item_scan(eng->st)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        feat_key_cooc_prefix(&c->key, c->items[id].id, c->items[id].len);
        plen = c->key.len;
        if (c->key.overflow || feat_iter_seek(c->scan, c->key.data, plen))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "cooc scan: cannot build the key");
        /* The prefix is the list's whole key; a longer key is a pair
         * counter of an older store (feat_store.h). */
        while (feat_iter_next(c->scan, &k, &klen, &v, &vlen)) {
                tern_code_t code =
                    klen == plen
                        ? load_list(eng, id, v, vlen, errstr, errstr_size)
                        : bad_counter(FEAT_CF_COOC, k, klen, errstr,
                                      errstr_size);
                if (code)
                        return code;
        }
        return feat_iter_status(c->scan, "cooc scan", errstr, errstr_size);
}

tern_code_t feat_item_load_pairs(feat_engine_t *eng, uint32_t id, char *errstr,
                                 size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        tern_code_t code;
        if (c->items[id].pairs_loaded)
                return TERN_OK;
        if (!c->items[id].top && eng->conf.top_neighbors &&
            !(c->items[id].top =
                  malloc(eng->conf.top_neighbors * sizeof(feat_top_t))))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        c->items[id].n_top = 0;
        if ((code = load_pairs_scan(eng, id, errstr, errstr_size)))
                return code;
        c->items[id].pairs_loaded = 1;
        return TERN_OK;
}

/* ---- trending record: u8 version, varint size, varint n, {str, long} ---- */

static int trending_encode(const feat_engine_t *eng, tern_buf_t *out) {
        const feat_cooc_t *c = &eng->cooc;
        tern_buf_reset(out);
        tern_buf_put_u8(out, FEAT_REC_VERSION);
        tern_buf_put_varint(out, eng->conf.trending_size);
        tern_buf_put_varint(out, c->n_trend);
        for (uint32_t i = 0; i < c->n_trend; i++) {
                const feat_item_t *it = &c->items[c->trend[i].id];
                tern_buf_put_str(out, it->id, it->len);
                tern_buf_put_long(out, c->trend[i].c);
        }
        return out->overflow ? -1 : 0;
}

static int trending_add(feat_engine_t *eng, const char *s, uint32_t len,
                        int64_t n) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t id = feat_item_intern(eng, s, len);
        if (id == FEAT_NONE)
                return -1;
        c->items[id].n = n;
        c->items[id].n_loaded = 1;
        top_raise(c, c->trend, &c->n_trend, eng->conf.trending_size, id, 0, n);
        return 0;
}

/* 1: loaded; 0: no usable record (absent or another trending_size). */
static int trending_decode(feat_engine_t *eng, const uint8_t *b, size_t len) {
        tern_rd_t r;
        uint64_t size, n;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return -1;
        size = tern_rd_varint(&r);
        n = tern_rd_varint(&r);
        if (r.err || n > size)
                return -1;
        if (size != eng->conf.trending_size)
                return 0;
        for (uint64_t i = 0; i < n; i++) {
                uint32_t slen;
                const char *s = tern_rd_str(&r, FEAT_ID_MAX, &slen);
                int64_t cnt = tern_rd_long(&r);
                if (r.err || trending_add(eng, s, slen, cnt))
                        return -1;
        }
        return tern_rd_left(&r) ? -1 : 1;
}

/* Exact trending from a full scan of the item CF: for a store written with
 * another trending_size (or none yet). Items met are interned, then the
 * mirror is dropped down to the trending items at the next commit. */
static tern_code_t trending_rebuild(feat_engine_t *eng, char *errstr,
                                    size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(eng->st, FEAT_CF_ITEM, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t code = TERN_OK;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                int64_t n = feat_counter_decode(v, vlen);
                if (vlen != 8) {
                        code = bad_counter(FEAT_CF_ITEM, k, klen, errstr,
                                           errstr_size);
                        goto out;
                }
                if (n > 0 && klen <= FEAT_ID_MAX &&
                    trending_add(eng, (const char *)k, (uint32_t)klen, n)) {
                        code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
                        goto out;
                }
        }
        code = feat_iter_status(it, "cooc scan", errstr, errstr_size);
        eng->cooc.trend_dirty = 1;
out:
        feat_iter_destroy(it);
        return code;
}

static tern_code_t trending_load(feat_engine_t *eng, char *errstr,
                                 size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        int found, r = 0;
        tern_code_t code;
        code = feat_store_get(eng->st, FEAT_CF_META, TRENDING_KEY,
                              strlen(TRENDING_KEY), &c->val, &found, errstr,
                              errstr_size);
        if (code)
                return code;
        if (found && (r = trending_decode(eng, c->val.data, c->val.len)) < 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "undecodable meta record \"%s\"",
                                 TRENDING_KEY);
        if (r == 1)
                return TERN_OK;
        c->n_trend = 0;
        return trending_rebuild(eng, errstr, errstr_size);
}

/* ---- commit ---- */

/* One direction of a pending pair: c(x, y) += pend. */
typedef struct feat_dir {
        const feat_item_t *x, *y;
        int64_t pend;
} feat_dir_t;

/* x's key order (len, then bytes: feat_key_cooc_prefix), then y's bytes
 * (the order inside a pair list). */
static int dir_cmp(const void *pa, const void *pb) {
        const feat_dir_t *a = pa, *b = pb;
        int r;
        if (a->x->len != b->x->len)
                return a->x->len < b->x->len ? -1 : 1;
        if ((r = memcmp(a->x->id, b->x->id, a->x->len)))
                return r;
        return feat_id_cmp(a->y->id, a->y->len, b->y->id, b->y->len);
}

/* Both directions of every pending pair, sorted by x then y. */
static feat_dir_t *pending_dirs(feat_engine_t *eng, size_t *n) {
        feat_cooc_t *c = &eng->cooc;
        feat_dir_t *d = malloc((c->n_dirty_pairs * 2 + 1) * sizeof(*d));
        *n = 0;
        if (!d)
                return NULL;
        for (size_t i = 0; i < c->n_dirty_pairs; i++) {
                const feat_pair_t *p = &c->pslots[c->dirty_pairs[i]];
                const feat_item_t *x = &c->items[p->a], *y = &c->items[p->b];
                if (!p->pend)
                        continue;
                d[(*n)++] = (feat_dir_t){x, y, p->pend};
                d[(*n)++] = (feat_dir_t){y, x, p->pend};
        }
        qsort(d, *n, sizeof(*d), dir_cmp);
        return d;
}

/* One merge per item x: its pending pairs as one pair list (feat_store.h),
 * so the memtable takes a key per item instead of one per pair. */
static int flush_list(feat_engine_t *eng, feat_batch_t *b, const feat_dir_t *d,
                      size_t n) {
        feat_cooc_t *c = &eng->cooc;
        tern_buf_reset(&c->val);
        tern_buf_put_u8(&c->val, FEAT_COOC_LIST_VERSION);
        tern_buf_put_varint(&c->val, n);
        for (size_t i = 0; i < n; i++) {
                tern_buf_put_str(&c->val, d[i].y->id, d[i].y->len);
                tern_buf_put_long(&c->val, d[i].pend);
        }
        feat_key_cooc_prefix(&c->key, d->x->id, d->x->len);
        if (c->val.overflow || c->key.overflow)
                return -1;
        feat_batch_merge(b, eng->st, FEAT_CF_COOC, c->key.data, c->key.len,
                         c->val.data, c->val.len);
        eng->stats.merges_written++;
        return 0;
}

static int flush_pairs(feat_engine_t *eng, feat_batch_t *b) {
        feat_cooc_t *c = &eng->cooc;
        size_t n, run;
        feat_dir_t *d = pending_dirs(eng, &n);
        int r = d ? 0 : -1;
        for (size_t i = 0; i < n && !r; i += run) {
                for (run = 1; i + run < n && d[i + run].x == d[i].x; run++)
                        ;
                r = flush_list(eng, b, d + i, run);
        }
        free(d);
        for (size_t i = 0; i < c->n_dirty_pairs; i++)
                c->pslots[c->dirty_pairs[i]].pend = 0;
        c->n_dirty_pairs = 0;
        return r;
}

static void flush_items(feat_engine_t *eng, feat_batch_t *b) {
        feat_cooc_t *c = &eng->cooc;
        for (uint32_t i = 0; i < c->n_dirty_items; i++) {
                feat_item_t *it = &c->items[c->dirty_items[i]];
                if (it->n_pending)
                        feat_batch_merge_add(b, eng->st, FEAT_CF_ITEM, it->id,
                                             it->len, it->n_pending);
                it->n_pending = 0;
                it->n_dirty = 0;
                eng->stats.merges_written++;
        }
        c->n_dirty_items = 0;
}

tern_code_t feat_cooc_flush(feat_engine_t *eng, feat_batch_t *b, char *errstr,
                            size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        if (flush_pairs(eng, b))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory writing pair lists");
        flush_items(eng, b);
        if (!c->trend_dirty)
                return TERN_OK;
        if (trending_encode(eng, &c->val))
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "trending record too large");
        feat_batch_put(b, eng->st, FEAT_CF_META, TRENDING_KEY,
                       strlen(TRENDING_KEY), c->val.data, c->val.len);
        c->trend_dirty = 0;
        return TERN_OK;
}

/* ---- mirror lifetime ---- */

static void items_free(feat_cooc_t *c) {
        for (uint32_t i = 0; i < c->n_items; i++) {
                free(c->items[i].id);
                free(c->items[i].top);
        }
        free(c->items);
        free(c->islots);
        free(c->pslots);
        c->items = NULL;
        c->islots = NULL;
        c->pslots = NULL;
        c->n_items = c->cap_items = 0;
        c->n_pairs = 0;
        c->n_dirty_items = 0;
        c->n_dirty_pairs = 0;
}

static int tables_init(feat_cooc_t *c) {
        c->epoch++;
        c->imask = 0;
        if (islots_resize(c, ISLOTS_MIN))
                return -1;
        c->pmask = 0;
        return pairs_resize(c, PSLOTS_MIN) ? -1 : 0;
}

/* Drops items and pairs, keeping the trending items with their n: every
 * other item reloads exactly from the store on its next touch. */
static int cooc_drop(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t n = c->n_trend;
        feat_top_t *saved = malloc((n ? n : 1) * sizeof(*saved));
        char **names = malloc((n ? n : 1) * sizeof(*names));
        uint32_t *lens = malloc((n ? n : 1) * sizeof(*lens));
        int r = -1;
        if (!saved || !names || !lens)
                goto out;
        for (uint32_t i = 0; i < n; i++) {
                saved[i] = c->trend[i];
                names[i] = c->items[saved[i].id].id;
                lens[i] = c->items[saved[i].id].len;
                c->items[saved[i].id].id = NULL; /* kept: freed below */
        }
        items_free(c);
        c->n_trend = 0;
        r = tables_init(c);
        for (uint32_t i = 0; i < n; i++) {
                if (!r && trending_add(eng, names[i], lens[i], saved[i].c))
                        r = -1;
                free(names[i]);
        }
out:
        free(saved);
        free(names);
        free(lens);
        return r;
}

void feat_cooc_committed(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        feat_iter_destroy(c->scan); /* the next scan must see this commit */
        c->scan = NULL;
        if (c->n_pairs > eng->conf.max_cached_pairs ||
            c->n_items > eng->conf.max_cached_pairs) {
                if (cooc_drop(eng)) {
                        /* Out of memory rebuilding: start over from the
                         * store, which holds everything after the commit. */
                        feat_cooc_destroy(eng);
                        feat_cooc_init(eng, NULL, 0);
                }
        }
}

tern_code_t feat_cooc_init(feat_engine_t *eng, char *errstr,
                           size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t epoch = c->epoch;
        memset(c, 0, sizeof(*c));
        c->epoch = epoch; /* users' cached ids must never match again */
        tern_buf_init(&c->key, 2 * FEAT_ID_MAX + 16);
        tern_buf_init(&c->val, (size_t)64 << 20);
        c->trend = calloc(eng->conf.trending_size + 1, sizeof(*c->trend));
        if (!c->trend || tables_init(c))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        return trending_load(eng, errstr, errstr_size);
}

void feat_cooc_destroy(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        feat_iter_destroy(c->scan);
        c->scan = NULL;
        items_free(c);
        free(c->dirty_items);
        free(c->dirty_pairs);
        free(c->trend);
        c->dirty_items = NULL;
        c->dirty_pairs = NULL;
        c->trend = NULL;
        c->cap_dirty_items = 0;
        c->cap_dirty_pairs = 0;
        tern_buf_free(&c->key);
        tern_buf_free(&c->val);
}

tern_code_t feat_cooc_reset(feat_engine_t *eng, char *errstr,
                            size_t errstr_size) {
        feat_cooc_destroy(eng);
        return feat_cooc_init(eng, errstr, errstr_size);
}
