/*
 * feat_join — the impression -> click join, in event time (DESIGN 4, CTR).
 *
 * An IMPRESSION is kept pending for an attribution window with what its
 * example needs later: the prediction made when it was shown and the
 * hashed feature indices it was scored on (opaque numbers here: features/
 * knows no model). A CLICK naming a pending impression inside the window
 * makes it positive, once; an impression whose window closes unclicked is
 * negative. Windows close by EVENT time: each input partition has a
 * watermark = the largest ts_ms seen in it minus the allowed lateness, and
 * an impression expires once watermark >= ts + window. So a replay gives the
 * same examples in the same order whatever its speed or batch boundaries.
 *
 * Order of calls for every event of a partition (the runtime does this):
 *   1. feat_join_impression() / feat_join_click() for the event itself,
 *      judged against the watermark BEFORE this event (so a click at the
 *      very end of its window still counts);
 *   2. feat_join_observe(partition, ts);
 *   3. feat_join_expire() until it returns 0: the closed windows in
 *      (deadline, impression id) order.
 *
 * Outcomes: an impression whose window had already closed when it arrived
 * is "late" (not joined); an impression id seen again while pending is a
 * "duplicate impression" (ignored); a click with no pending impression is an
 * "orphan"; a second click is a "duplicate click"; a click after the window
 * (ts > deadline) is a "late click" (the impression stays negative). When
 * max_pending impressions are pending, the partition's oldest is dropped
 * ("evicted": no example) so memory stays bounded.
 *
 * State: every pending impression, each partition's largest ts and the
 * counters live in memory and in the "pending" column family; changes are
 * written at each commit through the writer from feat_join_writer(), in the
 * same WriteBatch as the offsets, and everything is loaded back at
 * feat_join_new(). Memory and load time grow with the pending impressions
 * (about 100 bytes + 4 per feature index each).
 *   pending key [u16be partition][impression_id] ->
 *     [u8 1][long ts][long deadline][long src_offset][double p][u8 clicked]
 *     [varint n][n x varint index]
 *   pending key [u16be partition]          -> [u8 1][long max_ts]
 *   pending key [0xff 0xff]"stats"         -> [u8 1][varint counters...]
 * Impression ids must be non-empty (an empty one is refused as an orphan
 * would be: it could never be matched).
 *
 * Ownership: a feat_pending_t filled by the join borrows join memory until
 * the next call into the join. Not thread safe.
 */
#ifndef FEAT_JOIN_H
#define FEAT_JOIN_H

#include <stdint.h>

#include "../common/tern_err.h"
#include "feat_engine.h"
#include "feat_store.h"

#define FEAT_JOIN_MAX_INDICES 1024

typedef struct feat_join_conf {
        int64_t window_ms;   /* attribution window */
        int64_t lateness_ms; /* how far behind the largest ts an event may be */
        uint64_t max_pending;
} feat_join_conf_t;

typedef struct feat_pending {
        const char *id; /* impression id, not NUL-terminated */
        uint32_t id_len;
        int32_t partition;
        int64_t ts_ms, deadline_ms, src_offset;
        double p_click; /* the prediction published for it */
        int clicked;
        uint32_t n_idx;
        const uint32_t *idx;
} feat_pending_t;

typedef struct feat_join_stats {
        uint64_t impressions; /* joined (pending at some point) */
        uint64_t clicks;      /* CLICK events naming an impression */
        uint64_t positives, negatives;
        uint64_t late_impressions, duplicate_impressions, evicted;
        uint64_t orphan_clicks, duplicate_clicks, late_clicks;
        uint64_t pending; /* now */
} feat_join_stats_t;

typedef enum feat_join_result {
        FEAT_JOIN_OK = 0,     /* impression pending / click positive */
        FEAT_JOIN_LATE,       /* window already closed */
        FEAT_JOIN_DUPLICATE,  /* impression id pending / clicked already */
        FEAT_JOIN_ORPHAN,     /* click: no such pending impression */
        FEAT_JOIN_LATE_CLICK, /* click after the impression's window */
        FEAT_JOIN_NOMEM
} feat_join_result_t;

typedef struct feat_join feat_join_t;

feat_join_t *feat_join_new(feat_store_t *st, const feat_join_conf_t *conf,
                           char *errstr, size_t errstr_size);
void feat_join_destroy(feat_join_t *j);
/* The writer to register with feat_engine_add_writer(). */
feat_writer_t feat_join_writer(feat_join_t *j);

/* n_idx is at most FEAT_JOIN_MAX_INDICES (more are cut). */
feat_join_result_t feat_join_impression(feat_join_t *j, int32_t partition,
                                        const char *id, uint32_t id_len,
                                        int64_t ts_ms, int64_t src_offset,
                                        double p_click, const uint32_t *idx,
                                        uint32_t n_idx);
/* FEAT_JOIN_OK: *out is the impression, now marked clicked: learn it as a
 * positive example. */
feat_join_result_t feat_join_click(feat_join_t *j, int32_t partition,
                                   const char *id, uint32_t id_len,
                                   int64_t ts_ms, feat_pending_t *out);
void feat_join_observe(feat_join_t *j, int32_t partition, int64_t ts_ms);
/* INT64_MIN before the partition's first event. */
int64_t feat_join_watermark(const feat_join_t *j, int32_t partition);
/* 1: *out is the next impression whose window closed (removed from the
 * pending set; out->clicked says whether it was learned already); 0: none.
 */
int feat_join_expire(feat_join_t *j, int32_t partition, feat_pending_t *out);

void feat_join_stats(const feat_join_t *j, feat_join_stats_t *out);
/* The counters as stored, read straight from the store (tern inspect). */
tern_code_t feat_join_stats_load(feat_store_t *st, feat_join_stats_t *out,
                                 char *errstr, size_t errstr_size);

#endif
