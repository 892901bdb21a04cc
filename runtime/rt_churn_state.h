/*
 * rt_churn_state — per-user churn state and its event-time timers.
 *
 * One record per user and input partition in the churn column family,
 * key [u16be partition][user_id] (feat_key_user), value (version 1):
 *   [u8 1] activity (model_churn_activity_t) | alert state | last scoring
 *   time | next sweep time | pending scoring points, each {ts, source
 *   offset, risk given then, activity seen since, raw features (floats)}
 * A pending point waits for its delayed label; a sweep is the next time
 * the silent user is scored again. Both are the user's TIMERS: they are
 * stored in the record, so they survive a restart with the record.
 *
 * MEMORY: the records are bounded by config, the timers by the users not
 * yet churned (~95 bytes each). Records are cached, at most
 * churn.max_cached_users of them after each commit (the least recently used
 * clean ones are evicted then; a batch's dirty users come on top until it is
 * written), and read back from the churn CF with a point get on the user's next
 * event or when its timer fires. A cached record costs about 200 bytes plus 88
 * per allocated point (4, 8, ... up to churn.max_pending). Timers stay in
 * memory for every user that has one: a node (due time, partition, user id: 28
 * bytes + the id, ~48 with malloc's header for a 10-byte id) in a hash on
 * (partition, user id) (8-16 bytes a node at a load <= 1/2) and one heap per
 * input partition on (due, user id) (16 bytes an entry), about 80-100 bytes per
 * user with a timer; a user has one only while a label is pending or it is not
 * yet churned (silence < churn.inactive_days): churned users cost nothing. Not
 * an on-disk index: firing needs ordered scans, which the churn CF's hashed
 * memtable does not give at run time, and every change of a due time would cost
 * a delete and a put per user and commit (~3 us). An entry whose due time no
 * longer matches its node's is stale and skipped when popped; the heaps are
 * rebuilt from the nodes when stale entries outnumber them. Opening reads every
 * record once to index the timers (no record stays in memory). Changed records
 * are written at each commit in the feature engine's batch (rt_churn's writer),
 * so state, model and offsets always agree, and a record is evicted only once
 * it is written: whatever is cached, the outputs are the same.
 *
 * Ownership: records belong to the state; a pointer to one stays valid
 * until the next rt_churn_state_done() (which may evict it). Not thread
 * safe.
 */
#ifndef RT_CHURN_STATE_H
#define RT_CHURN_STATE_H

#include <stdint.h>

#include "../common/tern_pool.h"
#include "../features/feat_store.h"
#include "../models/model_churn.h"

#define RT_CHURN_NEVER INT64_MAX

typedef struct rt_churn_point {
        int64_t ts_ms;
        int64_t offset; /* source offset of the event that scored it */
        double risk;    /* as given then (progressive validation) */
        uint8_t active; /* activity seen in the window: label 0 */
        float x[MODEL_CHURN_DIM];
} rt_churn_point_t;

typedef struct rt_churn_user {
        int32_t partition;
        uint32_t user_len;
        char *user_id; /* NUL-terminated, the node's copy */
        model_churn_activity_t act;
        model_churn_alert_state_t alert;
        int64_t last_score_ts; /* -1: never scored */
        int64_t next_sweep;    /* RT_CHURN_NEVER: no sweep scheduled */
        uint32_t n_pending, cap_pending;
        rt_churn_point_t *pending; /* in scoring order */
        /* in memory only */
        tern_pool_t *pool; /* of pending (rt_churn_state.c); NULL: malloc */
        struct rt_churn_node *node; /* its timer and id (rt_churn_state.c) */
        struct rt_churn_user *lru_prev, *lru_next; /* most recent first */
        uint32_t pending_seen; /* n_pending at the last count */
        int dirty;
} rt_churn_user_t;

typedef struct rt_churn_state rt_churn_state_t;

rt_churn_state_t *rt_churn_state_new(int64_t inactive_ms);
void rt_churn_state_destroy(rt_churn_state_t *s);
/* Records kept in memory after a commit; 0 (the default): all of them.
 * Eviction needs the store of rt_churn_state_load(). */
void rt_churn_state_set_max_cached(rt_churn_state_t *s, uint64_t n);

/* Index the timers of every record of the churn CF (see MEMORY above);
 * records are read from st from then on. */
tern_code_t rt_churn_state_load(rt_churn_state_t *s, feat_store_t *st,
                                char *errstr, size_t errstr_size);

/* The user's record, from memory or else from the store; create: make a
 * new one (armed, nothing pending) when absent, else NULL. NULL on
 * allocation failure or a store error too (rt_churn_state_status()). */
rt_churn_user_t *rt_churn_state_get(rt_churn_state_t *s, int32_t partition,
                                    const char *user, uint32_t len, int create);
/* After a change: mark for the next commit and re-index the user's timers
 * (due = the earlier of the next sweep and the first pending label,
 * ts + inactive). */
void rt_churn_state_touch(rt_churn_state_t *s, rt_churn_user_t *u);
/* A user of the partition whose timer is due strictly before `before`,
 * earliest (due, user id) first, its record read back if it was evicted;
 * NULL when none (or on an error: rt_churn_state_status()). The user
 * leaves the index until the next touch. */
rt_churn_user_t *rt_churn_state_pop_due(rt_churn_state_t *s, int32_t partition,
                                        int64_t before);

/* Append a pending point; -1 on allocation failure. Remove point i. */
int rt_churn_user_add_point(rt_churn_user_t *u, const rt_churn_point_t *pt);
void rt_churn_user_drop_point(rt_churn_user_t *u, uint32_t i);

/* Put every changed record into b (the commit's batch); done() after the
 * batch is written clears the marks, then evicts the least recently used
 * records down to the bound (they are all clean then). */
void rt_churn_state_write(rt_churn_state_t *s, feat_store_t *st,
                          feat_batch_t *b);
void rt_churn_state_done(rt_churn_state_t *s);
/* 1 when rt_churn_state_done() would evict. */
int rt_churn_state_over_bound(const rt_churn_state_t *s);

/* TERN_OK, or the first store or allocation error met by get/pop_due. */
tern_code_t rt_churn_state_status(const rt_churn_state_t *s, char *errstr,
                                  size_t errstr_size);

/* Users with a record, in the store or in memory. */
uint64_t rt_churn_state_users(const rt_churn_state_t *s);
/* Points waiting for a label, over all users. */
uint64_t rt_churn_state_pending(const rt_churn_state_t *s);
/* Memory: records cached, the points they hold, timer nodes (users with
 * a timer, and evicted ones whose stale heap entries have not popped). */
uint64_t rt_churn_state_cached(const rt_churn_state_t *s);
uint64_t rt_churn_state_cached_points(const rt_churn_state_t *s);
uint64_t rt_churn_state_nodes(const rt_churn_state_t *s);
/* Entries in the timer heaps, stale ones included: at most about twice
 * the users with a timer (they are rebuilt from the nodes beyond that). */
uint64_t rt_churn_state_timers(const rt_churn_state_t *s);

/* Record encoding (tests). decode: 0, or -1 when malformed. */
void rt_churn_user_encode(const rt_churn_user_t *u, tern_buf_t *out);
int rt_churn_user_decode(rt_churn_user_t *u, const uint8_t *v, size_t vlen);

#endif
