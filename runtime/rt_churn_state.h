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
 * MEMORY: every user's record is kept in memory, loaded by one scan of the
 * churn CF when the pipeline opens (about 200 bytes per user plus 80 per
 * pending point; a few seconds per million users at open). Timers are
 * indexed per input partition by a binary heap on (due time, user id),
 * rebuilt by the same scan; an entry whose due time no longer matches its
 * user's is stale and skipped when popped, and the heaps are rebuilt from
 * the users when stale entries outnumber them (16 bytes an entry).
 * Bound: users x (200 + 88 x cap of churn.max_pending) bytes plus the
 * heaps; the number of users is NOT bounded by config. Changed records are
 * written at each commit in the feature engine's batch (rt_churn's writer), so
 * state, model and offsets always agree.
 *
 * Ownership: records belong to the state; pointers stay valid until
 * rt_churn_state_destroy(). Not thread safe.
 */
#ifndef RT_CHURN_STATE_H
#define RT_CHURN_STATE_H

#include <stdint.h>

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
        char *user_id; /* NUL-terminated copy */
        model_churn_activity_t act;
        model_churn_alert_state_t alert;
        int64_t last_score_ts; /* -1: never scored */
        int64_t next_sweep;    /* RT_CHURN_NEVER: no sweep scheduled */
        uint32_t n_pending, cap_pending;
        rt_churn_point_t *pending; /* in scoring order */
        /* in memory only */
        int64_t due; /* heap key; RT_CHURN_NEVER: not in the heap */
        int dirty;
} rt_churn_user_t;

typedef struct rt_churn_state rt_churn_state_t;

rt_churn_state_t *rt_churn_state_new(int64_t inactive_ms);
void rt_churn_state_destroy(rt_churn_state_t *s);

/* Read every record of the churn CF (see MEMORY above). */
tern_code_t rt_churn_state_load(rt_churn_state_t *s, feat_store_t *st,
                                char *errstr, size_t errstr_size);

/* The user's record; create: make a new one (armed, nothing pending)
 * when absent, else NULL. NULL on allocation failure too. */
rt_churn_user_t *rt_churn_state_get(rt_churn_state_t *s, int32_t partition,
                                    const char *user, uint32_t len, int create);
/* After a change: mark for the next commit and re-index the user's timers
 * (due = the earlier of the next sweep and the first pending label,
 * ts + inactive). */
void rt_churn_state_touch(rt_churn_state_t *s, rt_churn_user_t *u);
/* A user of the partition whose timer is due strictly before `before`,
 * earliest (due, user id) first; NULL when none. The user leaves the
 * index until the next touch. */
rt_churn_user_t *rt_churn_state_pop_due(rt_churn_state_t *s, int32_t partition,
                                        int64_t before);

/* Append a pending point; -1 on allocation failure. Remove point i. */
int rt_churn_user_add_point(rt_churn_user_t *u, const rt_churn_point_t *pt);
void rt_churn_user_drop_point(rt_churn_user_t *u, uint32_t i);

/* Put every changed record into b (the commit's batch); done() after the
 * batch is written clears the marks. */
void rt_churn_state_write(rt_churn_state_t *s, feat_store_t *st,
                          feat_batch_t *b);
void rt_churn_state_done(rt_churn_state_t *s);

uint64_t rt_churn_state_users(const rt_churn_state_t *s);
/* Entries in the timer heaps, stale ones included: at most about twice
 * the users (they are rebuilt from the users beyond that). */
uint64_t rt_churn_state_timers(const rt_churn_state_t *s);
/* Points waiting for a label (counts over all users: for stats). */
uint64_t rt_churn_state_pending(const rt_churn_state_t *s);

/* Record encoding (tests). decode: 0, or -1 when malformed. */
void rt_churn_user_encode(const rt_churn_user_t *u, tern_buf_t *out);
int rt_churn_user_decode(rt_churn_user_t *u, const uint8_t *v, size_t vlen);

#endif
