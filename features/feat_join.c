/*
 * feat_join — pending impressions: a hash table by (partition, id) for
 * clicks, one min-heap per partition by (deadline, id) for expiry, and the
 * lists of what changed since the last commit (see feat_join.h).
 */
#include "feat_join.h"

#include <stdlib.h>
#include <string.h>

#include "../common/tern_pool.h"

#define JOIN_REC_VERSION 1
#define JOIN_KEY_MAX     (2 + 4096)
#define JOIN_STATS_KEY   "\xff\xffstats"
#define JOIN_STATS_KLEN  7

typedef struct pend {
        uint32_t hash;
        int32_t partition;
        uint8_t clicked, dirty, deleted;
        size_t heap_pos;
        int64_t ts, deadline, src_offset;
        double p;
        uint32_t n_idx, klen;
        uint32_t *idx;
        uint8_t *key; /* [u16be partition][id] */
} pend_t;

typedef struct pend_list {
        pend_t **a;
        size_t n, cap;
} pend_list_t;

typedef struct part {
        int64_t max_ts; /* INT64_MIN: no event yet */
        uint8_t dirty;
        pend_list_t heap;
} part_t;

struct feat_join {
        feat_store_t *st;
        feat_join_conf_t conf;
        tern_pool_t *pool; /* the pending impressions */
        pend_t **slots;
        size_t mask, n;
        part_t *parts;
        uint32_t n_parts;
        pend_list_t dirty; /* changed since the last commit, live or not */
        pend_list_t grave; /* removed since the last commit: freed after it */
        feat_join_stats_t stats;
        int stats_dirty;
        int nomem;
        tern_buf_t val;
};

/* ---- small helpers ---- */

static uint32_t key_hash(const uint8_t *k, size_t n) {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ k[i]) * 16777619u;
        return h;
}

static int list_push(pend_list_t *l, pend_t *e) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                pend_t **a = realloc(l->a, cap * sizeof(*a));
                if (!a)
                        return -1;
                l->a = a;
                l->cap = cap;
        }
        l->a[l->n++] = e;
        return 0;
}

static void mark_dirty(feat_join_t *j, pend_t *e) {
        if (e->dirty)
                return;
        e->dirty = 1;
        if (list_push(&j->dirty, e))
                j->nomem = 1;
}

static part_t *part_get(feat_join_t *j, int32_t partition) {
        if (partition < 0 || partition >= 0xff00)
                return NULL;
        if ((uint32_t)partition >= j->n_parts) {
                uint32_t n = (uint32_t)partition + 1;
                part_t *p = realloc(j->parts, n * sizeof(*p));
                if (!p)
                        return NULL;
                for (uint32_t i = j->n_parts; i < n; i++)
                        p[i] = (part_t){.max_ts = INT64_MIN};
                j->parts = p;
                j->n_parts = n;
        }
        return &j->parts[partition];
}

/* ---- per-partition heap by (deadline, id) ---- */

static int pend_before(const pend_t *a, const pend_t *b) {
        size_t n = a->klen < b->klen ? a->klen : b->klen;
        int r;
        if (a->deadline != b->deadline)
                return a->deadline < b->deadline;
        r = memcmp(a->key, b->key, n);
        return r ? r < 0 : a->klen < b->klen;
}

static void heap_set(pend_list_t *h, size_t i, pend_t *e) {
        h->a[i] = e;
        e->heap_pos = i;
}

static void heap_up(pend_list_t *h, size_t i) {
        pend_t *e = h->a[i];
        while (i > 0 && pend_before(e, h->a[(i - 1) / 2])) {
                heap_set(h, i, h->a[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_set(h, i, e);
}

static void heap_down(pend_list_t *h, size_t i) {
        pend_t *e = h->a[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && pend_before(h->a[c + 1], h->a[c]))
                        c++;
                if (!pend_before(h->a[c], e))
                        break;
                heap_set(h, i, h->a[c]);
                i = c;
        }
        heap_set(h, i, e);
}

static int heap_push(pend_list_t *h, pend_t *e) {
        if (list_push(h, e))
                return -1;
        heap_up(h, h->n - 1);
        return 0;
}

static void heap_remove(pend_list_t *h, pend_t *e) {
        size_t i = e->heap_pos;
        pend_t *last = h->a[--h->n];
        if (i == h->n)
                return;
        heap_set(h, i, last);
        heap_down(h, i);
        heap_up(h, last->heap_pos);
}

/* ---- hash table of pending impressions (linear probing) ---- */

static pend_t **slot_find(const feat_join_t *j, const uint8_t *key,
                          uint32_t klen, uint32_t hash) {
        size_t i = hash & j->mask;
        for (;; i = (i + 1) & j->mask) {
                pend_t *e = j->slots[i];
                if (!e || (e->hash == hash && e->klen == klen &&
                           !memcmp(e->key, key, klen)))
                        return &j->slots[i];
        }
}

static int table_grow(feat_join_t *j) {
        size_t cap = (j->mask + 1) * 2;
        pend_t **old = j->slots, **slots = calloc(cap, sizeof(*slots));
        size_t old_cap = j->mask + 1;
        if (!slots)
                return -1;
        j->slots = slots;
        j->mask = cap - 1;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i])
                        *slot_find(j, old[i]->key, old[i]->klen, old[i]->hash) =
                            old[i];
        free(old);
        return 0;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void table_remove(feat_join_t *j, pend_t *e) {
        size_t i = (size_t)(slot_find(j, e->key, e->klen, e->hash) - j->slots);
        size_t k = i;
        j->slots[i] = NULL;
        for (;;) {
                size_t home;
                k = (k + 1) & j->mask;
                if (!j->slots[k])
                        break;
                home = j->slots[k]->hash & j->mask;
                if (((k - home) & j->mask) >= ((k - i) & j->mask)) {
                        j->slots[i] = j->slots[k];
                        j->slots[k] = NULL;
                        i = k;
                }
        }
        j->n--;
}

static size_t pend_size(uint32_t n_idx, uint32_t klen) {
        return sizeof(pend_t) + (size_t)n_idx * sizeof(uint32_t) + klen;
}

static void pend_free(tern_pool_t *pool, pend_t *e) {
        if (e)
                tern_pool_free(pool, e, pend_size(e->n_idx, e->klen));
}

static pend_t *pend_alloc(tern_pool_t *pool, int32_t partition, const char *id,
                          uint32_t id_len, uint32_t n_idx) {
        pend_t *e = tern_pool_calloc(pool, pend_size(n_idx, 2 + id_len));
        if (!e)
                return NULL;
        e->idx = (uint32_t *)(e + 1);
        e->key = (uint8_t *)(e->idx + n_idx);
        e->key[0] = (uint8_t)(partition >> 8);
        e->key[1] = (uint8_t)partition;
        memcpy(e->key + 2, id, id_len);
        e->klen = 2 + id_len;
        e->n_idx = n_idx;
        e->partition = partition;
        e->hash = key_hash(e->key, e->klen);
        return e;
}

static int pend_insert(feat_join_t *j, part_t *part, pend_t *e) {
        if ((j->n + 1) * 2 > j->mask + 1 && table_grow(j))
                return -1;
        if (heap_push(&part->heap, e))
                return -1;
        *slot_find(j, e->key, e->klen, e->hash) = e;
        j->n++;
        return 0;
}

/* Out of the table and heap; freed after the next commit (it may be
 * borrowed by the caller until then, and its key is needed for the
 * delete). */
static void pend_remove(feat_join_t *j, part_t *part, pend_t *e) {
        table_remove(j, e);
        heap_remove(&part->heap, e);
        e->deleted = 1;
        mark_dirty(j, e);
        if (list_push(&j->grave, e))
                j->nomem = 1;
}

static void pend_view(const pend_t *e, feat_pending_t *out) {
        *out = (feat_pending_t){
            .id = (const char *)e->key + 2,
            .id_len = e->klen - 2,
            .partition = e->partition,
            .ts_ms = e->ts,
            .deadline_ms = e->deadline,
            .src_offset = e->src_offset,
            .p_click = e->p,
            .clicked = e->clicked,
            .n_idx = e->n_idx,
            .idx = e->idx,
        };
}

/* ---- the join ---- */

feat_join_result_t feat_join_impression(feat_join_t *j, int32_t partition,
                                        const char *id, uint32_t id_len,
                                        int64_t ts_ms, int64_t src_offset,
                                        double p_click, const uint32_t *idx,
                                        uint32_t n_idx) {
        part_t *part = part_get(j, partition);
        uint8_t key[JOIN_KEY_MAX];
        pend_t *e;
        if (!part)
                return FEAT_JOIN_NOMEM;
        if (!id || !id_len || id_len > JOIN_KEY_MAX - 2)
                return FEAT_JOIN_ORPHAN;
        if (n_idx > FEAT_JOIN_MAX_INDICES)
                n_idx = FEAT_JOIN_MAX_INDICES;
        if (ts_ms + j->conf.window_ms <= feat_join_watermark(j, partition)) {
                j->stats.late_impressions++;
                j->stats_dirty = 1;
                return FEAT_JOIN_LATE;
        }
        key[0] = (uint8_t)(partition >> 8);
        key[1] = (uint8_t)partition;
        memcpy(key + 2, id, id_len);
        if (*slot_find(j, key, 2 + id_len, key_hash(key, 2 + id_len))) {
                j->stats.duplicate_impressions++;
                j->stats_dirty = 1;
                return FEAT_JOIN_DUPLICATE;
        }
        if (j->n >= j->conf.max_pending && part->heap.n > 0) {
                pend_remove(j, part, part->heap.a[0]);
                j->stats.evicted++;
        }
        if (!(e = pend_alloc(j->pool, partition, id, id_len, n_idx)))
                return FEAT_JOIN_NOMEM;
        memcpy(e->idx, idx, n_idx * sizeof(uint32_t));
        e->ts = ts_ms;
        e->deadline = ts_ms + j->conf.window_ms;
        e->src_offset = src_offset;
        e->p = p_click;
        if (pend_insert(j, part, e)) {
                pend_free(j->pool, e);
                return FEAT_JOIN_NOMEM;
        }
        mark_dirty(j, e);
        j->stats.impressions++;
        j->stats_dirty = 1;
        return FEAT_JOIN_OK;
}

feat_join_result_t feat_join_click(feat_join_t *j, int32_t partition,
                                   const char *id, uint32_t id_len,
                                   int64_t ts_ms, feat_pending_t *out) {
        uint8_t key[JOIN_KEY_MAX];
        pend_t *e = NULL;
        feat_join_result_t r;
        if (id && id_len && id_len <= JOIN_KEY_MAX - 2 && partition >= 0 &&
            partition < 0xff00) {
                key[0] = (uint8_t)(partition >> 8);
                key[1] = (uint8_t)partition;
                memcpy(key + 2, id, id_len);
                e = *slot_find(j, key, 2 + id_len, key_hash(key, 2 + id_len));
        }
        j->stats_dirty = 1;
        if (!e) {
                j->stats.orphan_clicks++;
                return FEAT_JOIN_ORPHAN;
        }
        j->stats.clicks++;
        if (e->clicked) {
                j->stats.duplicate_clicks++;
                r = FEAT_JOIN_DUPLICATE;
        } else if (ts_ms > e->deadline) {
                j->stats.late_clicks++;
                r = FEAT_JOIN_LATE_CLICK;
        } else {
                e->clicked = 1;
                mark_dirty(j, e);
                j->stats.positives++;
                pend_view(e, out);
                r = FEAT_JOIN_OK;
        }
        return r;
}

void feat_join_observe(feat_join_t *j, int32_t partition, int64_t ts_ms) {
        part_t *part = part_get(j, partition);
        if (!part) {
                j->nomem = 1;
                return;
        }
        if (ts_ms > part->max_ts) {
                part->max_ts = ts_ms;
                part->dirty = 1;
        }
}

int64_t feat_join_watermark(const feat_join_t *j, int32_t partition) {
        if (partition < 0 || (uint32_t)partition >= j->n_parts ||
            j->parts[partition].max_ts == INT64_MIN)
                return INT64_MIN;
        return j->parts[partition].max_ts - j->conf.lateness_ms;
}

int feat_join_expire(feat_join_t *j, int32_t partition, feat_pending_t *out) {
        part_t *part;
        pend_t *e;
        if (partition < 0 || (uint32_t)partition >= j->n_parts)
                return 0;
        part = &j->parts[partition];
        if (!part->heap.n)
                return 0;
        e = part->heap.a[0];
        if (e->deadline > feat_join_watermark(j, partition))
                return 0;
        pend_remove(j, part, e);
        if (!e->clicked)
                j->stats.negatives++;
        j->stats_dirty = 1;
        pend_view(e, out);
        return 1;
}

void feat_join_stats(const feat_join_t *j, feat_join_stats_t *out) {
        *out = j->stats;
        out->pending = j->n;
}

/* ---- records ---- */

static void stats_encode(const feat_join_stats_t *s, tern_buf_t *out) {
        const uint64_t v[] = {s->impressions,      s->clicks,
                              s->positives,        s->negatives,
                              s->late_impressions, s->duplicate_impressions,
                              s->evicted,          s->orphan_clicks,
                              s->duplicate_clicks, s->late_clicks};
        tern_buf_put_u8(out, JOIN_REC_VERSION);
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                tern_buf_put_varint(out, v[i]);
}

static int stats_decode(feat_join_stats_t *s, const uint8_t *v, size_t n) {
        uint64_t *f[] = {&s->impressions,      &s->clicks,
                         &s->positives,        &s->negatives,
                         &s->late_impressions, &s->duplicate_impressions,
                         &s->evicted,          &s->orphan_clicks,
                         &s->duplicate_clicks, &s->late_clicks};
        tern_rd_t r;
        tern_rd_init(&r, v, n);
        if (tern_rd_u8(&r) != JOIN_REC_VERSION)
                return -1;
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
                *f[i] = tern_rd_varint(&r);
        return r.err ? -1 : 0;
}

static void pend_encode(const pend_t *e, tern_buf_t *out) {
        tern_buf_put_u8(out, JOIN_REC_VERSION);
        tern_buf_put_long(out, e->ts);
        tern_buf_put_long(out, e->deadline);
        tern_buf_put_long(out, e->src_offset);
        tern_buf_put_double(out, e->p);
        tern_buf_put_u8(out, e->clicked);
        tern_buf_put_varint(out, e->n_idx);
        for (uint32_t i = 0; i < e->n_idx; i++)
                tern_buf_put_varint(out, e->idx[i]);
}

static pend_t *pend_decode(tern_pool_t *pool, const uint8_t *k, size_t klen,
                           const uint8_t *v, size_t vlen) {
        tern_rd_t r;
        int64_t ts, deadline, src_offset;
        double p;
        uint8_t clicked;
        uint64_t n;
        pend_t *e;
        tern_rd_init(&r, v, vlen);
        if (tern_rd_u8(&r) != JOIN_REC_VERSION)
                return NULL;
        ts = tern_rd_long(&r);
        deadline = tern_rd_long(&r);
        src_offset = tern_rd_long(&r);
        p = tern_rd_double(&r);
        clicked = tern_rd_u8(&r);
        n = tern_rd_varint(&r);
        if (r.err || n > FEAT_JOIN_MAX_INDICES || n > tern_rd_left(&r))
                return NULL;
        e = pend_alloc(pool, ((int32_t)k[0] << 8) | k[1], (const char *)k + 2,
                       (uint32_t)(klen - 2), (uint32_t)n);
        if (!e)
                return NULL;
        for (uint64_t i = 0; i < n; i++)
                e->idx[i] = (uint32_t)tern_rd_varint(&r);
        e->ts = ts;
        e->deadline = deadline;
        e->src_offset = src_offset;
        e->p = p;
        e->clicked = clicked;
        if (r.err) {
                pend_free(pool, e);
                return NULL;
        }
        return e;
}

/* ---- load and write ---- */

static tern_code_t load_record(feat_join_t *j, const uint8_t *k, size_t kl,
                               const uint8_t *v, size_t vl, char *errstr,
                               size_t errstr_size) {
        pend_t *e;
        part_t *part;
        if (kl == JOIN_STATS_KLEN && !memcmp(k, JOIN_STATS_KEY, kl)) {
                if (stats_decode(&j->stats, v, vl))
                        goto bad;
                return TERN_OK;
        }
        if (kl < 2 || kl > JOIN_KEY_MAX || k[0] == 0xff)
                goto bad;
        if (!(part = part_get(j, ((int32_t)k[0] << 8) | k[1])))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if (kl == 2) {
                tern_rd_t r;
                tern_rd_init(&r, v, vl);
                if (tern_rd_u8(&r) != JOIN_REC_VERSION)
                        goto bad;
                part->max_ts = tern_rd_long(&r);
                return r.err ? TERN_ERR_STATE : TERN_OK;
        }
        if (!(e = pend_decode(j->pool, k, kl, v, vl)))
                goto bad;
        if (pend_insert(j, part, e)) {
                pend_free(j->pool, e);
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        }
        return TERN_OK;
bad:
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "pending impressions: undecodable record (key of "
                         "%zu bytes, value of %zu)",
                         kl, vl);
}

static tern_code_t join_load(feat_join_t *j, char *errstr, size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(j->st, FEAT_CF_PENDING, NULL, 0);
        const uint8_t *k, *v;
        size_t kl, vl;
        tern_code_t rc = TERN_OK;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (rc == TERN_OK && feat_iter_next(it, &k, &kl, &v, &vl))
                rc = load_record(j, k, kl, v, vl, errstr, errstr_size);
        if (rc == TERN_OK)
                rc = feat_iter_status(it, "reading pending impressions", errstr,
                                      errstr_size);
        feat_iter_destroy(it);
        return rc;
}

static tern_code_t join_write(void *opaque, feat_store_t *st, feat_batch_t *b,
                              char *errstr, size_t errstr_size) {
        feat_join_t *j = opaque;
        if (j->nomem)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "pending impressions: out of memory");
        for (size_t i = 0; i < j->dirty.n; i++) {
                pend_t *e = j->dirty.a[i];
                if (e->deleted) {
                        feat_batch_delete(b, st, FEAT_CF_PENDING, e->key,
                                          e->klen);
                        continue;
                }
                tern_buf_reset(&j->val);
                pend_encode(e, &j->val);
                feat_batch_put(b, st, FEAT_CF_PENDING, e->key, e->klen,
                               j->val.data, j->val.len);
        }
        for (uint32_t p = 0; p < j->n_parts; p++) {
                uint8_t key[2] = {(uint8_t)(p >> 8), (uint8_t)p};
                if (!j->parts[p].dirty)
                        continue;
                tern_buf_reset(&j->val);
                tern_buf_put_u8(&j->val, JOIN_REC_VERSION);
                tern_buf_put_long(&j->val, j->parts[p].max_ts);
                feat_batch_put(b, st, FEAT_CF_PENDING, key, 2, j->val.data,
                               j->val.len);
        }
        if (j->stats_dirty) {
                tern_buf_reset(&j->val);
                stats_encode(&j->stats, &j->val);
                feat_batch_put(b, st, FEAT_CF_PENDING, JOIN_STATS_KEY,
                               JOIN_STATS_KLEN, j->val.data, j->val.len);
        }
        if (j->val.overflow)
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "pending impression record too large");
        return TERN_OK;
}

static void join_done(void *opaque, int written) {
        feat_join_t *j = opaque;
        (void)written; /* a failed commit stops the pipeline */
        for (size_t i = 0; i < j->dirty.n; i++)
                j->dirty.a[i]->dirty = 0;
        j->dirty.n = 0;
        for (size_t i = 0; i < j->grave.n; i++)
                pend_free(j->pool, j->grave.a[i]);
        j->grave.n = 0;
        for (uint32_t p = 0; p < j->n_parts; p++)
                j->parts[p].dirty = 0;
        j->stats_dirty = 0;
}

feat_writer_t feat_join_writer(feat_join_t *j) {
        return (feat_writer_t){join_write, join_done, j};
}

feat_join_t *feat_join_new(feat_store_t *st, const feat_join_conf_t *conf,
                           char *errstr, size_t errstr_size) {
        feat_join_t *j = calloc(1, sizeof(*j));
        if (!j || !(j->slots = calloc(1024, sizeof(*j->slots))) ||
            !(j->pool = tern_pool_new())) {
                if (j)
                        free(j->slots);
                free(j);
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        j->mask = 1023;
        j->st = st;
        j->conf = *conf;
        tern_buf_init(&j->val, 64 << 10);
        if (join_load(j, errstr, errstr_size) != TERN_OK) {
                feat_join_destroy(j);
                return NULL;
        }
        return j;
}

void feat_join_destroy(feat_join_t *j) {
        if (!j)
                return;
        join_done(j, 0);
        for (size_t i = 0; i <= j->mask; i++)
                pend_free(j->pool, j->slots[i]);
        for (uint32_t p = 0; p < j->n_parts; p++)
                free(j->parts[p].heap.a);
        free(j->parts);
        free(j->slots);
        free(j->dirty.a);
        free(j->grave.a);
        tern_pool_destroy(j->pool);
        tern_buf_free(&j->val);
        free(j);
}

tern_code_t feat_join_stats_load(feat_store_t *st, feat_join_stats_t *out,
                                 char *errstr, size_t errstr_size) {
        tern_buf_t v;
        int found = 0;
        tern_code_t rc;
        feat_iter_t *it;
        const uint8_t *k, *val;
        size_t kl, vl;
        memset(out, 0, sizeof(*out));
        tern_buf_init(&v, 1 << 16);
        rc = feat_store_get(st, FEAT_CF_PENDING, JOIN_STATS_KEY,
                            JOIN_STATS_KLEN, &v, &found, errstr, errstr_size);
        if (rc == TERN_OK && found && stats_decode(out, v.data, v.len))
                rc = tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                               "join counters: undecodable record");
        tern_buf_free(&v);
        if (rc != TERN_OK)
                return rc;
        /* pending now: the impression records (keys longer than 2 bytes) */
        it = feat_iter_new(st, FEAT_CF_PENDING, NULL, 0);
        while (it && feat_iter_next(it, &k, &kl, &val, &vl))
                if (kl > 2 && k[0] != 0xff)
                        out->pending++;
        rc = it ? feat_iter_status(it, "counting pending impressions", errstr,
                                   errstr_size)
                : TERN_ERR_NOMEM;
        feat_iter_destroy(it);
        return rc;
}
