/*
 * rt_churn_state — per-user churn records cached under a bound, a hash
 * index of timer nodes over every user with a timer, and one timer heap
 * per input partition. See rt_churn_state.h.
 */
#include "rt_churn_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_VERSION1 1
#define MAX_PARTITIONS  1024
#define MAX_PENDING_REC 4096 /* a record with more is refused as malformed */
#define MIN_SLOTS       1024

/* A user the state knows in memory: while it has a timer, while its
 * record is cached, or while stale heap entries still point at it. */
typedef struct rt_churn_node {
        int64_t due;          /* RT_CHURN_NEVER: no timer */
        rt_churn_user_t *rec; /* NULL: evicted, the record is in the store */
        uint32_t refs;        /* heap entries pointing here, stale included */
        int32_t partition;
        uint32_t len;
        char id[]; /* NUL-terminated */
} node_t;

typedef struct heap_ent {
        int64_t due;
        node_t *n;
} heap_ent_t;

typedef struct heap {
        heap_ent_t *e;
        size_t n, cap;
} heap_t;

struct rt_churn_state {
        int64_t inactive_ms;
        uint64_t max_cached; /* 0: no bound */
        feat_store_t *st;    /* NULL: nothing on disk, nothing evicted */
        /* a user without a node may have a record in the store: set when
         * the open scan found a record without a timer, or a node went */
        int on_disk;
        node_t **slots; /* open addressing, linear probing */
        size_t n_slots; /* power of two */
        size_t n_nodes;
        rt_churn_user_t *lru_head, *lru_tail; /* cached records */
        size_t n_cached;
        uint64_t n_users, n_pending, n_timers;
        uint64_t n_cached_points; /* counted at touch, load and eviction */
        rt_churn_user_t **dirty;
        size_t n_dirty, cap_dirty;
        heap_t heaps[MAX_PARTITIONS];
        size_t n_entries;  /* over all heaps, stale ones included */
        tern_pool_t *pool; /* nodes, records and their pending points */
        tern_buf_t key, val;
        tern_code_t err; /* first failure of get / pop_due */
        char errstr[256];
};

static void fail(rt_churn_state_t *s, tern_code_t code, const char *what,
                 const node_t *n) {
        if (s->err)
                return;
        s->err = tern_errf(s->errstr, sizeof(s->errstr), code,
                           "churn record of partition %d user '%.*s': %s",
                           n ? (int)n->partition : -1,
                           n ? (int)(n->len > 64 ? 64 : n->len) : 0,
                           n ? n->id : "", what);
}

rt_churn_state_t *rt_churn_state_new(int64_t inactive_ms) {
        rt_churn_state_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->inactive_ms = inactive_ms;
        s->n_slots = MIN_SLOTS;
        s->slots = calloc(s->n_slots, sizeof(*s->slots));
        s->pool = tern_pool_new();
        tern_buf_init(&s->key, 1 << 16);
        tern_buf_init(&s->val, 16u << 20);
        if (!s->slots || !s->pool) {
                rt_churn_state_destroy(s);
                return NULL;
        }
        return s;
}

void rt_churn_state_set_max_cached(rt_churn_state_t *s, uint64_t n) {
        s->max_cached = n;
}

static void rec_free(rt_churn_state_t *s, rt_churn_user_t *u) {
        if (!u)
                return;
        tern_pool_free(u->pool, u->pending,
                       (size_t)u->cap_pending * sizeof(*u->pending));
        tern_pool_free(s->pool, u, sizeof(*u));
}

static size_t node_size(uint32_t id_len) {
        return sizeof(node_t) + (size_t)id_len + 1;
}

static void node_free(rt_churn_state_t *s, node_t *n) {
        if (n)
                tern_pool_free(s->pool, n, node_size(n->len));
}

void rt_churn_state_destroy(rt_churn_state_t *s) {
        if (!s)
                return;
        while (s->lru_head) {
                rt_churn_user_t *u = s->lru_head;
                s->lru_head = u->lru_next;
                rec_free(s, u);
        }
        for (size_t i = 0; s->slots && i < s->n_slots; i++)
                node_free(s, s->slots[i]);
        for (int p = 0; p < MAX_PARTITIONS; p++)
                free(s->heaps[p].e);
        free(s->slots);
        free(s->dirty);
        tern_pool_destroy(s->pool);
        tern_buf_free(&s->key);
        tern_buf_free(&s->val);
        free(s);
}

tern_code_t rt_churn_state_status(const rt_churn_state_t *s, char *errstr,
                                  size_t errstr_size) {
        if (s->err)
                tern_errf(errstr, errstr_size, s->err, "%s", s->errstr);
        return s->err;
}

/* ---- node index ---- */

static uint64_t hash_of(int32_t partition, const char *user, uint32_t len) {
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)partition;
        for (uint32_t i = 0; i < len; i++) {
                h ^= (uint8_t)user[i];
                h *= 1099511628211ULL;
        }
        return h ^ (h >> 29);
}

static size_t home_of(const rt_churn_state_t *s, const node_t *n) {
        return hash_of(n->partition, n->id, n->len) & (s->n_slots - 1);
}

/* The user's node, or NULL and *pos = the free slot for it. */
static node_t *find_node(const rt_churn_state_t *s, int32_t partition,
                         const char *user, uint32_t len, size_t *pos) {
        size_t mask = s->n_slots - 1;
        node_t *n;
        *pos = hash_of(partition, user, len) & mask;
        while ((n = s->slots[*pos])) {
                if (n->partition == partition && n->len == len &&
                    !memcmp(n->id, user, len))
                        return n;
                *pos = (*pos + 1) & mask;
        }
        return NULL;
}

/* Re-place every node in a table of n_slots slots; drop_idle: free the
 * nodes nothing needs any more (no record, no timer, no heap entry). */
static int reindex(rt_churn_state_t *s, size_t n_slots, int drop_idle) {
        node_t **old = s->slots;
        size_t old_n = s->n_slots;
        node_t **slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return -1;
        s->slots = slots;
        s->n_slots = n_slots;
        for (size_t i = 0; i < old_n; i++) {
                node_t *n = old[i];
                size_t pos;
                if (!n)
                        continue;
                if (drop_idle && !n->rec && n->due == RT_CHURN_NEVER &&
                    !n->refs) {
                        node_free(s, n);
                        s->n_nodes--;
                        s->on_disk = 1;
                        continue;
                }
                pos = home_of(s, n);
                while (slots[pos])
                        pos = (pos + 1) & (n_slots - 1);
                slots[pos] = n;
        }
        free(old);
        return 0;
}

static node_t *node_add(rt_churn_state_t *s, int32_t partition,
                        const char *user, uint32_t len) {
        node_t *n;
        size_t pos;
        if ((s->n_nodes + 1) * 2 > s->n_slots &&
            reindex(s, s->n_slots * 2, 0) != 0)
                return NULL;
        if (!(n = tern_pool_alloc(s->pool, node_size(len))))
                return NULL;
        n->due = RT_CHURN_NEVER;
        n->rec = NULL;
        n->refs = 0;
        n->partition = partition;
        n->len = len;
        memcpy(n->id, user, len);
        n->id[len] = '\0';
        find_node(s, partition, user, len, &pos);
        s->slots[pos] = n;
        s->n_nodes++;
        return n;
}

/* Free n when nothing needs it: backward-shift deletion, so that every
 * other node stays reachable from its home slot. */
static void node_gc(rt_churn_state_t *s, node_t *n) {
        size_t mask = s->n_slots - 1, i, j;
        if (n->rec || n->due != RT_CHURN_NEVER || n->refs)
                return;
        i = home_of(s, n);
        while (s->slots[i] != n)
                i = (i + 1) & mask;
        for (j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
                size_t k = home_of(s, s->slots[j]);
                /* stays if its home k lies cyclically in (i, j] */
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                        continue;
                s->slots[i] = s->slots[j];
                i = j;
        }
        s->slots[i] = NULL;
        s->n_nodes--;
        s->on_disk = 1;
        node_free(s, n);
}

/* ---- cached records, most recently used first ---- */

static void lru_unlink(rt_churn_state_t *s, rt_churn_user_t *u) {
        if (u->lru_prev)
                u->lru_prev->lru_next = u->lru_next;
        else
                s->lru_head = u->lru_next;
        if (u->lru_next)
                u->lru_next->lru_prev = u->lru_prev;
        else
                s->lru_tail = u->lru_prev;
        u->lru_prev = u->lru_next = NULL;
}

static void lru_front(rt_churn_state_t *s, rt_churn_user_t *u) {
        u->lru_prev = NULL;
        u->lru_next = s->lru_head;
        if (s->lru_head)
                s->lru_head->lru_prev = u;
        else
                s->lru_tail = u;
        s->lru_head = u;
}

static void lru_use(rt_churn_state_t *s, rt_churn_user_t *u) {
        if (s->lru_head == u)
                return;
        lru_unlink(s, u);
        lru_front(s, u);
}

/* A new record for n: armed, nothing pending, most recently used. */
static rt_churn_user_t *rec_add(rt_churn_state_t *s, node_t *n) {
        rt_churn_user_t *u = tern_pool_calloc(s->pool, sizeof(*u));
        if (!u)
                return NULL;
        u->pool = s->pool;
        u->partition = n->partition;
        u->user_len = n->len;
        u->user_id = n->id;
        u->alert.armed = 1;
        u->last_score_ts = -1;
        u->next_sweep = RT_CHURN_NEVER;
        u->node = n;
        n->rec = u;
        lru_front(s, u);
        s->n_cached++;
        return u;
}

/* The record leaves memory; its node stays (node_gc() decides). */
static void rec_detach(rt_churn_state_t *s, rt_churn_user_t *u) {
        lru_unlink(s, u);
        u->node->rec = NULL;
        s->n_cached--;
        s->n_cached_points -= u->pending_seen;
        rec_free(s, u);
}

/* n's record from the store; NULL when absent or on an error (s->err). */
static rt_churn_user_t *rec_load(rt_churn_state_t *s, node_t *n) {
        char errstr[256];
        rt_churn_user_t *u;
        int found = 0;
        tern_buf_reset(&s->key);
        tern_buf_reset(&s->val);
        feat_key_user(&s->key, n->partition, n->id, n->len);
        if (feat_store_get(s->st, FEAT_CF_CHURN, s->key.data, s->key.len,
                           &s->val, &found, errstr,
                           sizeof(errstr)) != TERN_OK) {
                fail(s, TERN_ERR_STATE, errstr, n);
                return NULL;
        }
        if (!found)
                return NULL;
        if (!(u = rec_add(s, n))) {
                fail(s, TERN_ERR_NOMEM, "out of memory", n);
                return NULL;
        }
        if (rt_churn_user_decode(u, s->val.data, s->val.len) != 0) {
                fail(s, TERN_ERR_STATE, "undecodable", n);
                rec_detach(s, u);
                return NULL;
        }
        u->pending_seen = u->n_pending; /* in n_pending since written */
        s->n_cached_points += u->n_pending;
        return u;
}

static void index_timer(rt_churn_state_t *s, node_t *n);

rt_churn_user_t *rt_churn_state_get(rt_churn_state_t *s, int32_t partition,
                                    const char *user, uint32_t len,
                                    int create) {
        size_t pos;
        node_t *n;
        rt_churn_user_t *u = NULL;
        int known;
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        n = find_node(s, partition, user, len, &pos);
        if (n && n->rec) {
                lru_use(s, n->rec);
                return n->rec;
        }
        known = n != NULL; /* a node without a record: evicted */
        if (!known && !(create || (s->st && s->on_disk)))
                return NULL;
        if (!n && !(n = node_add(s, partition, user, len))) {
                fail(s, TERN_ERR_NOMEM, "out of memory", NULL);
                return NULL;
        }
        if (s->st && (known || s->on_disk) && (u = rec_load(s, n)))
                index_timer(s, n); /* (it has its node's due already) */
        if (!u && !s->err && create) {
                if ((u = rec_add(s, n)))
                        s->n_users++;
                else
                        fail(s, TERN_ERR_NOMEM, "out of memory", n);
        }
        if (!u)
                node_gc(s, n);
        return u;
}

/* ---- timers ---- */

static int ent_before(const heap_ent_t *a, const heap_ent_t *b) {
        uint32_t n;
        int c;
        if (a->due != b->due)
                return a->due < b->due;
        n = a->n->len < b->n->len ? a->n->len : b->n->len;
        c = memcmp(a->n->id, b->n->id, n);
        return c ? c < 0 : a->n->len < b->n->len;
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
        e.n->refs++;
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
 * heaps grew by ~16 bytes per scored event. Each node has at most one live
 * entry (due == n->due): once the heaps hold twice as many entries as
 * timers, rebuild them from the nodes, O(nodes) per O(nodes) pushes; the
 * nodes nothing needs any more (evicted, no timer) go at the same time. */
static void heaps_rebuild(rt_churn_state_t *s) {
        size_t want = MIN_SLOTS;
        for (int p = 0; p < MAX_PARTITIONS; p++)
                s->heaps[p].n = 0;
        s->n_entries = 0;
        for (size_t i = 0; i < s->n_slots; i++)
                if (s->slots[i])
                        s->slots[i]->refs = 0;
        for (size_t i = 0; i < s->n_slots; i++) {
                node_t *n = s->slots[i];
                /* (no push can fail: each heap held these entries) */
                if (n && n->due != RT_CHURN_NEVER &&
                    !heap_push(&s->heaps[n->partition],
                               (heap_ent_t){n->due, n}))
                        s->n_entries++;
        }
        while (want < 4 * (s->n_timers + s->n_cached))
                want *= 2;
        reindex(s, want < s->n_slots ? want : s->n_slots, 1);
        for (int p = 0; p < MAX_PARTITIONS; p++) {
                heap_t *h = &s->heaps[p];
                size_t cap = h->n > 128 ? h->n * 2 : 256;
                heap_ent_t *e;
                if (h->cap <= 2 * cap)
                        continue;
                e = realloc(h->e, cap * sizeof(*e));
                if (e) {
                        h->e = e;
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

static void set_due(rt_churn_state_t *s, node_t *n, int64_t due) {
        if (due == n->due)
                return;
        s->n_timers += (due != RT_CHURN_NEVER) - (n->due != RT_CHURN_NEVER);
        n->due = due;
        if (due == RT_CHURN_NEVER)
                return;
        if (heap_push(&s->heaps[n->partition], (heap_ent_t){due, n}) != 0) {
                fail(s, TERN_ERR_NOMEM, "out of memory for a timer", n);
                return;
        }
        s->n_entries++;
        if (s->n_entries > 2 * s->n_timers + 4096)
                heaps_rebuild(s);
}

static void index_timer(rt_churn_state_t *s, node_t *n) {
        set_due(s, n, due_of(s, n->rec));
}

static void mark_dirty(rt_churn_state_t *s, rt_churn_user_t *u) {
        if (u->dirty)
                return;
        if (s->n_dirty == s->cap_dirty) {
                size_t cap = s->cap_dirty ? s->cap_dirty * 2 : 1024;
                rt_churn_user_t **n = realloc(s->dirty, cap * sizeof(*n));
                if (!n) {
                        /* unwritten, it could be evicted: stop instead */
                        fail(s, TERN_ERR_NOMEM, "out of memory", u->node);
                        return;
                }
                s->dirty = n;
                s->cap_dirty = cap;
        }
        s->dirty[s->n_dirty++] = u;
        u->dirty = 1;
}

void rt_churn_state_touch(rt_churn_state_t *s, rt_churn_user_t *u) {
        mark_dirty(s, u);
        s->n_pending += (uint64_t)u->n_pending - u->pending_seen;
        s->n_cached_points += (uint64_t)u->n_pending - u->pending_seen;
        u->pending_seen = u->n_pending;
        index_timer(s, u->node);
}

rt_churn_user_t *rt_churn_state_pop_due(rt_churn_state_t *s, int32_t partition,
                                        int64_t before) {
        heap_t *h;
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return NULL;
        h = &s->heaps[partition];
        while (h->n && h->e[0].due < before) {
                heap_ent_t e = h->e[0];
                rt_churn_user_t *u;
                heap_pop(h);
                s->n_entries--;
                e.n->refs--;
                if (e.due != e.n->due) {
                        node_gc(s, e.n); /* stale: the user was re-indexed */
                        continue;
                }
                set_due(s, e.n, RT_CHURN_NEVER);
                if ((u = e.n->rec)) {
                        lru_use(s, u);
                        return u;
                }
                if (s->st && (u = rec_load(s, e.n)))
                        return u;
                fail(s, s->err ? s->err : TERN_ERR_STATE,
                     "a timer without its record", e.n);
                node_gc(s, e.n);
                return NULL;
        }
        return NULL;
}

/* ---- pending points ---- */

/* Room for cap points (cap > u->cap_pending). */
static int pending_grow(rt_churn_user_t *u, uint32_t cap) {
        rt_churn_point_t *n = tern_pool_alloc(u->pool, cap * sizeof(*n));
        if (!n)
                return -1;
        if (u->n_pending)
                memcpy(n, u->pending, u->n_pending * sizeof(*n));
        tern_pool_free(u->pool, u->pending, u->cap_pending * sizeof(*n));
        u->pending = n;
        u->cap_pending = cap;
        return 0;
}

int rt_churn_user_add_point(rt_churn_user_t *u, const rt_churn_point_t *pt) {
        if (u->n_pending == u->cap_pending &&
            pending_grow(u, u->cap_pending ? u->cap_pending * 2 : 4))
                return -1;
        u->pending[u->n_pending++] = *pt;
        return 0;
}

void rt_churn_user_drop_point(rt_churn_user_t *u, uint32_t i) {
        memmove(&u->pending[i], &u->pending[i + 1],
                (u->n_pending - i - 1) * sizeof(*u->pending));
        u->n_pending--;
}

/* ---- records ---- */

/* A pending point, field by field: each call checks room (and grows the
 * buffer, or fails past its maximum, exactly where the value needs). */
static void point_put(tern_buf_t *out, const rt_churn_point_t *pt) {
        tern_buf_put_long(out, pt->ts_ms);
        tern_buf_put_long(out, pt->offset);
        tern_buf_put_double(out, pt->risk);
        tern_buf_put_u8(out, pt->active);
        for (int k = 0; k < MODEL_CHURN_DIM; k++)
                tern_buf_put_float(out, pt->x[k]);
}

/* The same bytes stored through a pointer, when the buffer already has
 * room for the longest point: the out-of-line tern_buf_put_float per
 * value was most of the churn records' cost at commit. */
#define POINT_MAX (10 + 10 + 8 + 1 + 4 * MODEL_CHURN_DIM)

static uint8_t *point_raw(uint8_t *o, const rt_churn_point_t *pt) {
        o = tern_buf_long_at(o, pt->ts_ms);
        o = tern_buf_long_at(o, pt->offset);
        o = tern_buf_double_at(o, pt->risk);
        *o++ = pt->active;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(o, pt->x, sizeof(pt->x)); /* the floats' bytes, in order */
        return o + sizeof(pt->x);
#else
        for (int k = 0; k < MODEL_CHURN_DIM; k++)
                o = tern_buf_float_at(o, pt->x[k]);
        return o;
#endif
}

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
                if (tern_buf_room(out, POINT_MAX))
                        out->len = (size_t)(point_raw(out->data + out->len,
                                                      &u->pending[i]) -
                                            out->data);
                else
                        point_put(out, &u->pending[i]);
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
        /* the record's own count: a record read back is no larger than it */
        if (n > u->cap_pending && pending_grow(u, (uint32_t)n))
                return -1;
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

/* Index one record of the open scan: counted, and a node when it has a
 * timer; the record itself is not kept. */
static int index_record(rt_churn_state_t *s, rt_churn_user_t *tmp,
                        const uint8_t *k, size_t klen, const uint8_t *v,
                        size_t vlen) {
        int32_t partition = (int32_t)(k[0] << 8 | k[1]);
        int64_t due;
        node_t *n;
        if (rt_churn_user_decode(tmp, v, vlen) != 0)
                return -1;
        s->n_users++;
        s->n_pending += tmp->n_pending;
        due = due_of(s, tmp);
        if (due == RT_CHURN_NEVER) {
                s->on_disk = 1;
                return 0;
        }
        if (partition >= MAX_PARTITIONS ||
            !(n = node_add(s, partition, (const char *)k + 2,
                           (uint32_t)(klen - 2))))
                return -1;
        set_due(s, n, due);
        return s->err ? -1 : 0;
}

tern_code_t rt_churn_state_load(rt_churn_state_t *s, feat_store_t *st,
                                char *errstr, size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_CHURN, NULL, 0);
        rt_churn_user_t tmp = {0};
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t rc = TERN_OK;
        s->st = st;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "churn state: out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                if (klen < 2 || index_record(s, &tmp, k, klen, v, vlen)) {
                        rc = tern_errf(
                            errstr, errstr_size, TERN_ERR_STATE,
                            "churn record of partition %d user '%.*s': %s",
                            klen >= 2 ? (int)(k[0] << 8 | k[1]) : -1,
                            (int)(klen > 2 ? klen - 2 : 0), (const char *)k + 2,
                            s->err ? "out of memory" : "undecodable");
                        break;
                }
        }
        free(tmp.pending);
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

/* Every record is clean now: past the bound, the least recently used go,
 * down to 90% of it. The margin is not for the eviction's cost (O(1) a
 * record) but for the commits after it: while no cache is past its bound
 * the feature engine writes batches on the store's thread
 * (feat_engine_commit_begin), and a bound hit by every batch would write
 * every batch in place. */
void rt_churn_state_done(rt_churn_state_t *s) {
        uint64_t keep;
        for (size_t i = 0; i < s->n_dirty; i++)
                s->dirty[i]->dirty = 0;
        s->n_dirty = 0;
        if (!rt_churn_state_over_bound(s))
                return;
        keep = s->max_cached - s->max_cached / 10;
        while (s->n_cached > keep) {
                node_t *n = s->lru_tail->node;
                rec_detach(s, s->lru_tail);
                node_gc(s, n);
        }
}

int rt_churn_state_over_bound(const rt_churn_state_t *s) {
        return s->max_cached && s->st && s->n_cached > s->max_cached;
}

uint64_t rt_churn_state_users(const rt_churn_state_t *s) {
        return s->n_users;
}

uint64_t rt_churn_state_pending(const rt_churn_state_t *s) {
        return s->n_pending;
}

uint64_t rt_churn_state_cached(const rt_churn_state_t *s) {
        return s->n_cached;
}

uint64_t rt_churn_state_cached_points(const rt_churn_state_t *s) {
        return s->n_cached_points;
}

uint64_t rt_churn_state_nodes(const rt_churn_state_t *s) {
        return s->n_nodes;
}

uint64_t rt_churn_state_timers(const rt_churn_state_t *s) {
        return s->n_entries;
}
