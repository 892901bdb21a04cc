/*
 * feat_int — private structures shared by the feature engine's files.
 *
 *   feat_profile.c  user records: codec, profile/recent/affinity update
 *   feat_window.c   the per-user window of counted items
 *   feat_cooc.c     item interning, pair counts, top neighbours, trending,
 *                   pending merges (the co-occurrence interface)
 *   feat_engine.c   apply / commit / mirrors of users
 *   feat_inspect.c  JSON documents read straight from the store
 *   feat_lru.c      eviction order of the cached users and items
 */
#ifndef FEAT_INT_H
#define FEAT_INT_H

#include <stdint.h>
#include <string.h>

#include "feat_engine.h"
#include "../common/tern_pool.h"

#define FEAT_REC_VERSION 1
#define FEAT_ID_MAX      4096 /* longest user/item/category id in a record */
#define FEAT_LIST_MAX    4096 /* longest list a record may hold */
#define FEAT_NONE        UINT32_MAX

/* Byte-string order of ids: memcmp, then the shorter first. */
static inline int feat_id_cmp(const char *a, uint32_t al, const char *b,
                              uint32_t bl) {
        int r = memcmp(a, b, al < bl ? al : bl);
        if (r)
                return r;
        return al < bl ? -1 : al > bl;
}

/* ---- items and co-occurrence (feat_cooc.c) ---- */

typedef struct feat_top {
        uint32_t id;
        int64_t c;
} feat_top_t;

typedef struct feat_item {
        char *id; /* NULL: a free slot, its index kept for reuse */
        uint32_t len;
        uint32_t hash;     /* feat_id_hash(id): islots' key, and each
                              neighbour carries it (feat_neighbor_t) */
        int64_t n;         /* committed + pending, valid when n_loaded */
        int64_t n_pending; /* merge to write at the next commit */
        uint32_t gen;   /* changes when the slot is freed (feat_item_cached) */
        uint32_t stamp; /* engine tick of the last use (eviction order) */
        uint32_t deg;   /* entries of the pair table naming this item */
        uint8_t n_loaded;
        uint8_t top_loaded; /* top and f are valid (feat_cooc.c) */
        uint8_t n_dirty;
        uint8_t top_dirty; /* a new member since the last commit */
        /* its stored record is counted and still the store's (or it has
         * none): nothing to write when it leaves memory */
        uint8_t rec_counted;
        uint8_t keep; /* named by a list: not freed (eviction only) */
        uint32_t n_top;
        feat_top_t *top; /* top_neighbors by (c desc, id asc), room for +1 */
        /* At least c(this, x) for every x that is neither in top nor in an
         * entry of the pair table; 0: every such pair is 0. */
        int64_t f;
} feat_item_t;

/* An entry of the pair table: c(a,b) exactly (known) or an upper bound
 * of it, plus the increments the next commit merges. */
typedef struct feat_pair {
        uint32_t a, b; /* a < b; a == FEAT_NONE: empty slot */
        int64_t c;     /* c(a,b) == c(b,a), or its upper bound */
        int64_t pend;
        uint32_t stamp;        /* engine tick of the last use */
        uint32_t flushed : 31; /* commit seq of the last flush with pend */
        uint32_t known : 1;    /* c is exact */
} feat_pair_t;

typedef struct feat_cooc {
        /* items, interned: index = item id; freed ids are reused */
        feat_item_t *items;
        tern_pool_t *pool;           /* the items' id strings and top lists */
        size_t top_bytes;            /* a top list: top_neighbors + 1 members */
        uint32_t n_items, cap_items; /* n_items: ids handed out, free or not */
        uint32_t *free_ids;
        uint32_t n_free, cap_free;
        uint32_t n_top_loaded; /* items whose top list is in memory */
        uint32_t gen_max;      /* largest gen given; a reset starts above it */
        uint32_t *islots;
        uint32_t imask;
        uint32_t *dirty_items;
        uint32_t n_dirty_items, cap_dirty_items;
        uint32_t *dirty_tops; /* items whose top record the commit writes */
        uint32_t n_dirty_tops, cap_dirty_tops;
        const feat_top_t **members; /* top_encode's scratch, k + 1 */
        /* pair counts */
        feat_pair_t *pslots;
        size_t pmask, n_pairs;
        size_t sweep_at; /* where the next eviction sweep starts */
        /* Pairs the store may hold (a blocked Bloom filter by the two ids'
         * hashes), built at the first eviction: a pair it rules out has a
         * count of 0, no read needed. NULL: not built. */
        uint64_t *pfilt;
        size_t pfilt_mask; /* words - 1 */
        int pfilt_tried;   /* built once, or failed: not again */
        size_t *dirty_pairs;
        size_t n_dirty_pairs, cap_dirty_pairs;
        uint32_t seq; /* flushes so far (31 bits): feat_pair_t.flushed */
        /* trending: top trending_size items by (n desc, id asc) */
        feat_top_t *trend;
        uint32_t n_trend;
        int trend_dirty;
        int layout_dirty; /* the commit writes the layout record */
        tern_buf_t key;
        tern_buf_t val;     /* records read and written */
        tern_buf_t cnt_val; /* pair counts read */
} feat_cooc_t;

struct feat_engine;
tern_code_t feat_cooc_init(struct feat_engine *eng, char *errstr,
                           size_t errstr_size);
void feat_cooc_destroy(struct feat_engine *eng);
/* Item id for a string, interned on first sight; FEAT_NONE when out of
 * memory. */
uint32_t feat_item_intern(struct feat_engine *eng, const char *s, uint32_t len);
uint32_t feat_item_lookup(struct feat_engine *eng, const char *s, uint32_t len);
tern_code_t feat_item_load_n(struct feat_engine *eng, uint32_t id, char *errstr,
                             size_t errstr_size);
/* The item's top list (and f) from its top record, unless loaded. */
tern_code_t feat_item_load_top(struct feat_engine *eng, uint32_t id,
                               char *errstr, size_t errstr_size);
/* Makes sure feat_cooc_add(*slot, w) can keep both top lists exact: an
 * entry for the pair (its slot in *slot), whose count is read from the
 * store when only its upper bound is known and that bound could move a
 * top list. Both items' tops loaded, room reserved (feat_cooc_reserve);
 * changes no count. The slot holds until the table next grows or
 * evicts. */
tern_code_t feat_cooc_resolve(struct feat_engine *eng, uint32_t a, uint32_t b,
                              int64_t w, size_t *slot, char *errstr,
                              size_t errstr_size);
/* c(a,b) += w, c(b,a) += w for the pair feat_cooc_resolve() gave this
 * slot with this w. */
void feat_cooc_add(struct feat_engine *eng, size_t slot, int64_t w);
int feat_cooc_reserve(struct feat_engine *eng, uint32_t more);
/* n(i) += w; n must be loaded. */
void feat_item_add_n(struct feat_engine *eng, uint32_t id, int64_t w);
/* Pending merges, trending, into the batch; cleared. */
tern_code_t feat_cooc_flush(struct feat_engine *eng, feat_batch_t *b,
                            char *errstr, size_t errstr_size);
/* After a commit: forget the store view; past max_cached_pairs (pairs or
 * items), evict the least recently used down to 90% of it (feat_cooc.c,
 * "eviction"). */
void feat_cooc_committed(struct feat_engine *eng);
/* 1 when feat_cooc_committed() would evict. */
int feat_cooc_over_bound(const struct feat_engine *eng);
/* Forget everything in memory (after a failed commit): reload from store.
 * Item ids handed out before never match feat_item_cached() again. */
tern_code_t feat_cooc_reset(struct feat_engine *eng, char *errstr,
                            size_t errstr_size);

/* A user's cached (item id, gen) still names the item it was cached for:
 * freeing a slot changes its gen, so a reused id never matches. gen 0:
 * nothing cached. */
static inline int feat_item_cached(const feat_cooc_t *c, uint32_t iid,
                                   uint32_t gen) {
        return iid < c->n_items && c->items[iid].gen == gen;
}

/* ---- users (feat_profile.c, feat_window.c) ---- */

/* A user: this record with its id and one block, the body, that holds
 * the lists and the bytes of the ids they name; a new user's first body
 * shares the record's allocation (feat_profile.c, "user memory"). */
typedef struct feat_uuser {
        feat_user_t pub; /* pointers into the body */
        uint8_t dirty;
        feat_item_ts_t *window;
        uint32_t *win_iid; /* cached item ids ... */
        uint32_t *win_gen; /* ... valid while feat_item_cached() */
        feat_item_ts_t *recent;
        feat_affinity_t *aff;
        uint32_t cap_window, cap_recent, cap_aff; /* allocated entries */
        uint32_t max_window, max_recent, max_aff; /* configured limits */
        char *arena; /* id strings of the lists, appended */
        uint32_t arena_len, arena_cap;
        void *body;
        tern_pool_t *pool;   /* of this record and its bodies; NULL: malloc */
        uint8_t body_inline; /* body is part of this allocation */
        char user_id[];      /* NUL-terminated */
} feat_uuser_t;

/* The user's record and bodies come from pool (NULL: malloc), which
 * must outlive it. */
feat_uuser_t *feat_user_new(const feat_conf_t *conf, tern_pool_t *pool,
                            int32_t partition, const char *user, uint32_t len);
void feat_user_free(feat_uuser_t *u);
/* Bytes the user's allocations hold, rounded up to the pool's slots: the
 * record with its first body, plus the body that replaced it (the first
 * stays, unused). */
size_t feat_user_bytes(const feat_uuser_t *u);
/* Room for at least n_window/n_recent/n_aff entries (each at most its
 * configured limit) and `bytes` more id bytes. May move the lists and
 * their strings: pointers into them are stale after it. -1: no memory,
 * the user is unchanged. */
int feat_user_room(feat_uuser_t *u, uint32_t n_window, uint32_t n_recent,
                   uint32_t n_aff, uint32_t bytes);
/* Copies an id into the arena; feat_user_room() must have made room. */
const char *feat_user_add_id(feat_uuser_t *u, const char *s, uint32_t len);
/* Decode the stored records into a fresh user (either may be absent). */
tern_code_t feat_user_decode(feat_uuser_t *u, const uint8_t *prof, size_t plen,
                             const uint8_t *win, size_t wlen, char *errstr,
                             size_t errstr_size);
int feat_profile_encode(const feat_uuser_t *u, tern_buf_t *out);
int feat_window_encode(const feat_uuser_t *u, tern_buf_t *out);
/* Every event: counts, spend, times, sessions, affinities, recent. */
int feat_profile_update(feat_uuser_t *u, const feat_conf_t *conf,
                        const tern_event_t *ev);
/* Window index of item (id cached or bytes), -1 if absent. */
int feat_window_find(const feat_uuser_t *u, const feat_cooc_t *c, uint32_t iid,
                     const char *item, uint32_t len);
/* Move/insert item to the front with ts, trimming to window_items; the
 * entry caches (iid, gen). */
int feat_window_touch(feat_uuser_t *u, const feat_conf_t *conf, int pos,
                      uint32_t gen, uint32_t iid, const char *item,
                      uint32_t len, int64_t ts, uint8_t type);
void feat_user_sync_pub(feat_uuser_t *u);

/* ---- the engine ---- */

/* A slot of the user table keeps the hash next to the pointer, so a
 * probe dereferences a user (a cache miss) only when the hash matches;
 * the stamp (engine tick of the last use) orders eviction. */
typedef struct feat_uslot {
        feat_uuser_t *u; /* NULL: empty */
        uint32_t hash;
        uint32_t stamp;
} feat_uslot_t;

typedef struct feat_users {
        tern_pool_t *pool; /* the users' records and bodies */
        feat_uslot_t *slots;
        size_t mask, n;
        uint64_t bytes; /* feat_user_bytes() of every cached user */
        feat_uuser_t **dirty;
        size_t n_dirty, cap_dirty;
} feat_users_t;

struct feat_engine {
        feat_store_t *st;
        feat_conf_t conf;
        feat_cooc_t cooc;
        feat_users_t users;
        feat_batch_t *batch;
        feat_batch_t *landing; /* written by the store's thread */
        int in_flight;         /* landing is being written */
        feat_neighbor_t *nb_out;
        uint32_t cap_nb_out;
        uint32_t *tmp_ids; /* window items paired by one event */
        size_t *tmp_slots; /* ... their pairs' slots (feat_cooc_resolve) */
        tern_buf_t key;
        tern_buf_t val;
        tern_buf_t val2;
        feat_stats_t stats;
        feat_writer_t writers[FEAT_MAX_WRITERS];
        uint32_t n_writers;
        uint32_t tick; /* events applied (wraps): stamps of users, items */
        uint64_t *lru; /* eviction scratch: 2 x cap_lru keys (feat_lru.c) */
        size_t cap_lru;
};

/* ---- eviction order (feat_lru.c) ----
 * A key sorts the least recently used first: (tick - stamp) descending,
 * then the payload (an index) ascending. Ticks wrap; an age past 2^32
 * events only makes an entry look younger than it is. */
static inline uint64_t feat_lru_key(uint32_t tick, uint32_t stamp,
                                    uint32_t payload) {
        return ((uint64_t)(UINT32_MAX - (tick - stamp)) << 32) | payload;
}
static inline uint32_t feat_lru_age(uint64_t key) {
        return UINT32_MAX - (uint32_t)(key >> 32);
}
/* Room for n keys (and the sort's scratch) in eng->lru; -1: no memory. */
int feat_lru_room(struct feat_engine *eng, size_t n);
/* Sorts eng->lru[0..n) by key, ascending (least recently used first). */
void feat_lru_sort(struct feat_engine *eng, size_t n);

/* A key for an error message: printable ASCII kept, other bytes as \xNN,
 * cut to fit out (always NUL-terminated). */
void feat_key_printable(const uint8_t *k, size_t klen, char *out,
                        size_t out_size);

#endif
