/*
 * rt_churn_state — per-user churn records, a hash index over them, and one
 * timer heap per input partition. See rt_churn_state.h.
 */
#include "rt_churn_state.h"

#include <stdlib.h>
#include <string.h>

#define RECORD_VERSION1 1
#define MAX_PARTITIONS  1024
#define MAX_PENDING_REC 4096 /* a record with more is refused as malformed */

typedef struct heap_ent {
        int64_t due;
        rt_churn_user_t *u;
} heap_ent_t;

typedef struct heap {
        heap_ent_t *e;
        size_t n, cap;
} heap_t;

struct rt_churn_state {
        int64_t inactive_ms;
        rt_churn_user_t **users;
        size_t n_users, cap_users;
        uint32_t *slots; /* index + 1 into users; 0 = empty */
        size_t n_slots;  /* power of two */
        rt_churn_user_t **dirty;
        size_t n_dirty, cap_dirty;
        heap_t heaps[MAX_PARTITIONS];
        size_t n_entries; /* over all heaps, stale ones included */
        tern_buf_t key, val;
};

rt_churn_state_t *rt_churn_state_new(int64_t inactive_ms) {
        rt_churn_state_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->inactive_ms = inactive_ms;
        s->n_slots = 1024;
        s->slots = calloc(s->n_slots, sizeof(*s->slots));
        tern_buf_init(&s->key, 1 << 16);
        tern_buf_init(&s->val, 16u << 20);
        if (!s->slots) {
                rt_churn_state_destroy(s);
                return NULL;
        }
        return s;
}

static void user_free(rt_churn_user_t *u) {
        if (!u)
                return;
        free(u->user_id);
        free(u->pending);
        free(u);
}

void rt_churn_state_destroy(rt_churn_state_t *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_users; i++)
                user_free(s->users[i]);
        for (int p = 0; p < MAX_PARTITIONS; p++)
                free(s->heaps[p].e);
        free(s->users);
        free(s->slots);
        free(s->dirty);
        tern_buf_free(&s->key);
        tern_buf_free(&s->val);
        free(s);
}

/* ---- hash index ---- */

static uint64_t hash_of(int32_t partition, const char *user, uint32_t len) {
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)partition;
        for (uint32_t i = 0; i < len; i++) {
                h ^= (uint8_t)user[i];
                h *= 1099511628211ULL;
        }
        return h ^ (h >> 29);
}

static int same_user(const rt_churn_user_t *u, int32_t partition,
                     const char *user, uint32_t len) {
        return u->partition == partition && u->user_len == len &&
               !memcmp(u->user_id, user, len);
}

/* 1 and *pos = the user's slot, or 0 and *pos = the free slot for it. */
static int find_slot(const rt_churn_state_t *s, int32_t partition,
                     const char *user, uint32_t len, size_t *pos) {
        size_t mask = s->n_slots - 1;
        *pos = hash_of(partition, user, len) & mask;
        while (s->slots[*pos]) {
                if (same_user(s->users[s->slots[*pos] - 1], partition, user,
                              len))
                        return 1;
                *pos = (*pos + 1) & mask;
        }
        return 0;
}

static int rehash(rt_churn_state_t *s) {
        size_t n = s->n_slots * 2, mask = n - 1;
        uint32_t *slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -1;
        for (size_t i = 0; i < s->n_users; i++) {
                const rt_churn_user_t *u = s->users[i];
                size_t pos =
                    hash_of(u->partition, u->user_id, u->user_len) & mask;
                while (slots[pos])
                        pos = (pos + 1) & mask;
                slots[pos] = (uint32_t)i + 1;
        }
        free(s->slots);
        s->slots = slots;
        s->n_slots = n;
        return 0;
}

static int insert_user(rt_churn_state_t *s, rt_churn_user_t *u) {
        size_t pos;
        if ((s->n_users + 1) * 2 > s->n_slots && rehash(s) != 0)
                return -1;
        if (s->n_users == s->cap_users) {
                size_t cap = s->cap_users ? s->cap_users * 2 : 1024;
                rt_churn_user_t **n = realloc(s->users, cap * sizeof(*n));
                if (!n)
                        return -1;
                s->users = n;
                s->cap_users = cap;
        }
        find_slot(s, u->partition, u->user_id, u->user_len, &pos);
        s->users[s->n_users++] = u;
        s->slots[pos] = (uint32_t)s->n_users;
        return 0;
}

static rt_churn_user_t *user_new(int32_t partition, const char *user,
                                 uint32_t len) {
        rt_churn_user_t *u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->user_id = malloc((size_t)len + 1);
        if (!u->user_id) {
                free(u);
                return NULL;
        }
        memcpy(u->user_id, user, len);
        u->user_id[len] = '\0';
        u->user_len = len;
        u->partition = partition;
        u->alert.armed = 1;
        u->last_score_ts = -1;
        u->next_sweep = RT_CHURN_NEVER;
        u->due = RT_CHURN_NEVER;
        return u;
}

rt_churn_user_t *rt_churn_state_get(rt_churn_state_t *s, int32_t partition,
                                    const char *user, uint32_t len,
                                    int create) {
        size_t pos;
        rt_churn_user_t *u;
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        if (find_slot(s, partition, user, len, &pos))
                return s->users[s->slots[pos] - 1];
        if (!create || !(u = user_new(partition, user, len)))
                return NULL;
        if (insert_user(s, u) != 0) {
                user_free(u);
                return NULL;
        }
        return u;
}

/* ---- timers ---- */

static int ent_before(const heap_ent_t *a, const heap_ent_t *b) {
        uint32_t n;
        int c;
        if (a->due != b->due)
                return a->due < b->due;
        n = a->u->user_len < b->u->user_len ? a->u->user_len : b->u->user_len;
        c = memcmp(a->u->user_id, b->u->user_id, n);
        return c ? c < 0 : a->u->user_len < b->u->user_len;
}

static int heap_push(heap_t *h, heap_ent_t e) {
        size_t i;
        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 256;
                heap_ent_t *n = realloc(h->e, cap * sizeof(*n));
                if (!n)
                        return -1;
                h->e = n;
                h->cap = cap;
        }
        i = h->n++;
        while (i > 0 && ent_before(&e, &h->e[(i - 1) / 2])) {
                h->e[i] = h->e[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        h->e[i] = e;
        return 0;
}

static void heap_pop(heap_t *h) {
        heap_ent_t last = h->e[--h->n];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && ent_before(&h->e[c + 1], &h->e[c]))
                        c++;
                if (!ent_before(&h->e[c], &last))
                        break;
                h->e[i] = h->e[c];
                i = c;
        }
        if (h->n)
                h->e[i] = last;
}

/* Re-indexing a user leaves its old entry in the heap until that entry's
 * due time passes (inactive_ms of event time, days), so without this the
 * heaps grew by ~16 bytes per scored event. Each user has at most one live
 * entry (due == u->due): once the heaps hold twice as many entries as
 * users, rebuild them from the users, O(users) per O(users) pushes. */
static void heaps_rebuild(rt_churn_state_t *s) {
        for (int p = 0; p < MAX_PARTITIONS; p++)
                s->heaps[p].n = 0;
        s->n_entries = 0;
        for (size_t i = 0; i < s->n_users; i++) {
                rt_churn_user_t *u = s->users[i];
                if (u->due != RT_CHURN_NEVER &&
                    !heap_push(&s->heaps[u->partition],
                               (heap_ent_t){u->due, u}))
                        s->n_entries++;
        }
        for (int p = 0; p < MAX_PARTITIONS; p++) {
                heap_t *h = &s->heaps[p];
                size_t cap = h->n > 128 ? h->n * 2 : 256;
                heap_ent_t *n;
                if (h->cap <= 2 * cap)
                        continue;
                n = realloc(h->e, cap * sizeof(*n));
                if (n) {
                        h->e = n;
                        h->cap = cap;
                }
        }
}

static int64_t due_of(const rt_churn_state_t *s, const rt_churn_user_t *u) {
        int64_t due = u->next_sweep;
        for (uint32_t i = 0; i < u->n_pending; i++)
                if (u->pending[i].ts_ms + s->inactive_ms < due)
                        due = u->pending[i].ts_ms + s->inactive_ms;
        return due;
}

static void index_timer(rt_churn_state_t *s, rt_churn_user_t *u) {
        int64_t due = due_of(s, u);
        if (due == u->due)
                return;
        u->due = due;
        if (due == RT_CHURN_NEVER)
                return;
        if (!heap_push(&s->heaps[u->partition], (heap_ent_t){due, u}))
                s->n_entries++;
        if (s->n_entries > 2 * s->n_users + 4096)
                heaps_rebuild(s);
}

static void mark_dirty(rt_churn_state_t *s, rt_churn_user_t *u) {
        if (u->dirty)
                return;
        if (s->n_dirty == s->cap_dirty) {
                size_t cap = s->cap_dirty ? s->cap_dirty * 2 : 1024;
                rt_churn_user_t **n = realloc(s->dirty, cap * sizeof(*n));
                if (!n)
                        return; /* written at a later touch */
                s->dirty = n;
                s->cap_dirty = cap;
        }
        s->dirty[s->n_dirty++] = u;
        u->dirty = 1;
}

void rt_churn_state_touch(rt_churn_state_t *s, rt_churn_user_t *u) {
        mark_dirty(s, u);
        index_timer(s, u);
}

rt_churn_user_t *rt_churn_state_pop_due(rt_churn_state_t *s, int32_t partition,
                                        int64_t before) {
        heap_t *h;
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        h = &s->heaps[partition];
        while (h->n && h->e[0].due < before) {
                heap_ent_t e = h->e[0];
                heap_pop(h);
                s->n_entries--;
                if (e.due != e.u->due)
                        continue; /* stale: the user was re-indexed */
                e.u->due = RT_CHURN_NEVER;
                return e.u;
        }
        return NULL;
}

/* ---- pending points ---- */

int rt_churn_user_add_point(rt_churn_user_t *u, const rt_churn_point_t *pt) {
        if (u->n_pending == u->cap_pending) {
                uint32_t cap = u->cap_pending ? u->cap_pending * 2 : 4;
                rt_churn_point_t *n = realloc(u->pending, cap * sizeof(*n));
                if (!n)
                        return -1;
                u->pending = n;
                u->cap_pending = cap;
        }
        u->pending[u->n_pending++] = *pt;
        return 0;
}

void rt_churn_user_drop_point(rt_churn_user_t *u, uint32_t i) {
        memmove(&u->pending[i], &u->pending[i + 1],
                (u->n_pending - i - 1) * sizeof(*u->pending));
        u->n_pending--;
}

/* ---- records ---- */

void rt_churn_user_encode(const rt_churn_user_t *u, tern_buf_t *out) {
        const model_churn_activity_t *a = &u->act;
        tern_buf_put_u8(out, RECORD_VERSION1);
        tern_buf_put_long(out, a->first_ts);
        tern_buf_put_long(out, a->last_ts);
        tern_buf_put_long(out, a->prev_gap_ms);
        tern_buf_put_long(out, a->decay_ts);
        for (int k = 0; k < 3; k++)
                tern_buf_put_double(out, a->decayed[k]);
        tern_buf_put_double(out, a->gap_ewma_ms);
        tern_buf_put_double(out, a->spend);
        tern_buf_put_varint(out, a->visits);
        tern_buf_put_varint(out, a->purchases);
        tern_buf_put_varint(out, a->carts_since_purchase);
        tern_buf_put_varint(out, a->events);
        tern_buf_put_double(out, u->alert.last_risk);
        tern_buf_put_long(out, u->alert.last_alert_ts);
        tern_buf_put_u8(out, (uint8_t)(u->alert.armed | u->alert.alerted << 1 |
                                       u->alert.has_risk << 2));
        tern_buf_put_long(out, u->last_score_ts);
        tern_buf_put_long(out, u->next_sweep);
        tern_buf_put_varint(out, u->n_pending);
        for (uint32_t i = 0; i < u->n_pending; i++) {
                const rt_churn_point_t *pt = &u->pending[i];
                tern_buf_put_long(out, pt->ts_ms);
                tern_buf_put_long(out, pt->offset);
                tern_buf_put_double(out, pt->risk);
                tern_buf_put_u8(out, pt->active);
                for (int k = 0; k < MODEL_CHURN_DIM; k++)
                        tern_buf_put_float(out, pt->x[k]);
        }
}

int rt_churn_user_decode(rt_churn_user_t *u, const uint8_t *v, size_t vlen) {
        model_churn_activity_t *a = &u->act;
        tern_rd_t r;
        uint64_t n;
        uint8_t flags;
        tern_rd_init(&r, v, vlen);
        if (tern_rd_u8(&r) != RECORD_VERSION1)
                return -1;
        a->first_ts = tern_rd_long(&r);
        a->last_ts = tern_rd_long(&r);
        a->prev_gap_ms = tern_rd_long(&r);
        a->decay_ts = tern_rd_long(&r);
        for (int k = 0; k < 3; k++)
                a->decayed[k] = tern_rd_double(&r);
        a->gap_ewma_ms = tern_rd_double(&r);
        a->spend = tern_rd_double(&r);
        a->visits = (uint32_t)tern_rd_varint(&r);
        a->purchases = (uint32_t)tern_rd_varint(&r);
        a->carts_since_purchase = (uint32_t)tern_rd_varint(&r);
        a->events = (uint32_t)tern_rd_varint(&r);
        u->alert.last_risk = tern_rd_double(&r);
        u->alert.last_alert_ts = tern_rd_long(&r);
        flags = tern_rd_u8(&r);
        u->alert.armed = flags & 1;
        u->alert.alerted = (flags >> 1) & 1;
        u->alert.has_risk = (flags >> 2) & 1;
        u->last_score_ts = tern_rd_long(&r);
        u->next_sweep = tern_rd_long(&r);
        n = tern_rd_varint(&r);
        if (r.err || n > MAX_PENDING_REC)
                return -1;
        u->n_pending = 0;
        for (uint64_t i = 0; i < n && !r.err; i++) {
                rt_churn_point_t pt;
                pt.ts_ms = tern_rd_long(&r);
                pt.offset = tern_rd_long(&r);
                pt.risk = tern_rd_double(&r);
                pt.active = tern_rd_u8(&r);
                for (int k = 0; k < MODEL_CHURN_DIM; k++)
                        pt.x[k] = tern_rd_float(&r);
                if (!r.err && rt_churn_user_add_point(u, &pt) != 0)
                        return -1;
        }
        return r.err || tern_rd_left(&r) ? -1 : 0;
}

tern_code_t rt_churn_state_load(rt_churn_state_t *s, feat_store_t *st,
                                char *errstr, size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_CHURN, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t rc = TERN_OK;
        while (rc == TERN_OK && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                int32_t partition = klen >= 2 ? (int32_t)(k[0] << 8 | k[1]) : 0;
                rt_churn_user_t *u =
                    klen >= 2
                        ? rt_churn_state_get(s, partition, (const char *)k + 2,
                                             (uint32_t)(klen - 2), 1)
                        : NULL;
                if (!u || rt_churn_user_decode(u, v, vlen) != 0) {
                        rc = tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                       "churn record of partition %d user "
                                       "'%.*s': %s",
                                       (int)partition,
                                       (int)(klen > 2 ? klen - 2 : 0),
                                       (const char *)k + 2,
                                       u ? "undecodable" : "out of memory");
                        break;
                }
                index_timer(s, u);
        }
        if (rc == TERN_OK)
                rc = feat_iter_status(it, "reading churn state", errstr,
                                      errstr_size);
        feat_iter_destroy(it);
        return rc;
}

void rt_churn_state_write(rt_churn_state_t *s, feat_store_t *st,
                          feat_batch_t *b) {
        for (size_t i = 0; i < s->n_dirty; i++) {
                const rt_churn_user_t *u = s->dirty[i];
                tern_buf_reset(&s->key);
                tern_buf_reset(&s->val);
                feat_key_user(&s->key, u->partition, u->user_id, u->user_len);
                rt_churn_user_encode(u, &s->val);
                feat_batch_put(b, st, FEAT_CF_CHURN, s->key.data, s->key.len,
                               s->val.data, s->val.len);
        }
}

void rt_churn_state_done(rt_churn_state_t *s) {
        for (size_t i = 0; i < s->n_dirty; i++)
                s->dirty[i]->dirty = 0;
        s->n_dirty = 0;
}

uint64_t rt_churn_state_timers(const rt_churn_state_t *s) {
        return s->n_entries;
}

uint64_t rt_churn_state_users(const rt_churn_state_t *s) {
        return s->n_users;
}

uint64_t rt_churn_state_pending(const rt_churn_state_t *s) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->n_users; i++)
                n += s->users[i]->n_pending;
        return n;
}
