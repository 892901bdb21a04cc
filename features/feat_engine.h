/*
 * feat_engine — per-user profiles and windows, item co-occurrence and item
 * stats: the state that every event updates.
 *
 * DEFINITIONS (tests depend on them exactly):
 *  - Window of user u: the last window_items DISTINCT items of u's counted
 *    events, most recent first, each with the ts_ms of u's latest counted
 *    event on it. Item j is IN the window for an event at time t when
 *    t - ts(j) <= window_seconds * 1000.
 *  - An event is COUNTED when it has an item_id and type_weight[type] > 0
 *    (IMPRESSION has weight 0 by default). For a counted event on item i
 *    with weight w, using the window as it was BEFORE this event:
 *    c(i,j) += w and c(j,i) += w for every j != i in the window;
 *    n(i) += w; then i moves to the front of the window with ts = t (the
 *    window is trimmed to window_items; entries out of time may be dropped).
 *  - Every event (counted or not) updates the user's profile: counts per
 *    type, spend (price * quantity, quantity defaulting to 1, on PURCHASE),
 *    first/last ts, EWMA of the inter-event gap, sessions (a gap >
 *    session_gap_seconds starts one), decayed category affinities (top-K,
 *    half-life in event time), recent distinct items.
 *  - s(i,j) = c(i,j) / sqrt(n(i) * n(j)); neighbours of i sort by s desc,
 *    then item id ascending as byte strings (memcmp, shorter first on a tie).
 *
 * MEMORY MODEL: the engine mirrors the state it touches in memory (users,
 * items, pair counts), loading an entry from the store on first touch.
 * Changes accumulate in memory and are written by feat_engine_commit() in
 * ONE WriteBatch together with the consumed offsets: one Put per dirty user
 * record, one merge per distinct (a,b) pair and per item touched in the
 * batch (pre-aggregated). After a commit, a mirror over its configured
 * size (max_cached_users and max_cached_user_bytes; max_cached_pairs and
 * max_cached_items) evicts its
 * least recently used entries down to 90% of it, keeping its tables'
 * allocation; because entries reload exactly from the store, that never
 * changes what is computed. Between two commits a batch may add its new
 * entries on top of the bound. Batch boundaries do not change results
 * either.
 *
 * For recommendations each item keeps its top `top_neighbors` neighbours by
 * raw count (c desc, id asc), maintained exactly under increments (counts
 * only grow), and the engine keeps the exact global top `trending_size`
 * items by n (n desc, id asc), stored in the meta CF at each commit.
 *
 * Ownership: pointers returned by lookups (feat_user_t, feat_neighbor_t
 * arrays, item id strings) borrow engine memory and stay valid until the
 * next feat_engine_apply(), feat_engine_commit() or destroy.
 *
 * Not thread safe: one engine per pipeline thread.
 */
#ifndef FEAT_ENGINE_H
#define FEAT_ENGINE_H

#include <stdint.h>
#include <stdio.h>

#include "../common/tern_err.h"
#include "../ingest/ingest_event.h"
#include "feat_store.h"
#include "feat_types.h"

typedef struct feat_conf {
        uint32_t window_items;              /* W, default 20 */
        int64_t window_seconds;             /* T, default 3600 */
        int32_t type_weight[TERN_EV__CNT];  /* default 1, IMPRESSION 0 */
        int64_t session_gap_seconds;        /* default 1800 */
        double gap_ewma_alpha;              /* default 0.2 */
        int64_t affinity_half_life_seconds; /* default 7 days */
        uint32_t affinity_top_k;            /* default 10 */
        uint32_t recent_items;              /* default 50 */
        uint32_t top_neighbors;             /* per item, for recs; default 32 */
        uint32_t trending_size;             /* default 100 */
        /* mirror sizes after a commit (LRU eviction past them) */
        uint64_t max_cached_users; /* default 200000 */
        /* ... and their bytes (feat_stats_t.cached_user_bytes); 0: no
         * bound; default 512 MiB */
        uint64_t max_cached_user_bytes;
        uint64_t max_cached_pairs; /* pairs, and items; default 20000000 */
        /* co-occurrence items (each holds its id and top list, ~0.6 KiB
         * with 32 neighbours); 0: bounded by max_cached_pairs only;
         * default 1000000 */
        uint64_t max_cached_items;
        /* the filter of stored pairs, built once pairs are evicted (a
         * power of two of bytes at most this; 0: none); default 16 MiB */
        uint64_t pair_filter_bytes;
} feat_conf_t;

void feat_conf_default(feat_conf_t *c);

/* feat_item_ts_t, feat_profile_t, feat_user_t, feat_neighbor_t: feat_types.h */

typedef struct feat_offset {
        const char *topic;
        int32_t partition;
        int64_t next_offset;
} feat_offset_t;

typedef struct feat_engine feat_engine_t;

feat_engine_t *feat_engine_new(feat_store_t *st, const feat_conf_t *conf,
                               char *errstr, size_t errstr_size);
void feat_engine_destroy(feat_engine_t *eng);

/* Apply one valid event. *counted says whether it changed window and
 * co-occurrence; *user (if non-NULL) is the user's state after the event. */
tern_code_t feat_engine_apply(feat_engine_t *eng, const tern_event_t *ev,
                              int *counted, const feat_user_t **user,
                              char *errstr, size_t errstr_size);

/* A user's current state, loaded from the store if needed; partition < 0:
 * look in every input partition named in the offsets CF. TERN_ERR_NOT_FOUND
 * when the user has no profile. */
tern_code_t feat_engine_user(feat_engine_t *eng, const char *user, uint32_t len,
                             int32_t partition, const feat_user_t **out,
                             char *errstr, size_t errstr_size);

/* n(i), 0 if unknown. */
int64_t feat_engine_item_n(feat_engine_t *eng, const char *item, uint32_t len,
                           char *errstr, size_t errstr_size);

/* The top_neighbors kept for recommendations: *out in (c desc, id asc) order,
 * with score filled in. */
tern_code_t feat_engine_top_neighbors(feat_engine_t *eng, const char *item,
                                      uint32_t len, const feat_neighbor_t **out,
                                      uint32_t *n_out, char *errstr,
                                      size_t errstr_size);

/* Exact global trending: items by n desc, id asc. */
void feat_engine_trending(feat_engine_t *eng, const feat_neighbor_t **out,
                          uint32_t *n_out);

/* Other state that must land in the same WriteBatch as the engine's
 * (pending impressions, model weights, churn timers): each registered
 * writer adds its changes at every commit, before the offsets, and hears
 * whether the batch reached the store. At most FEAT_MAX_WRITERS. */
#define FEAT_MAX_WRITERS 8
typedef struct feat_writer {
        tern_code_t (*write)(void *opaque, feat_store_t *st, feat_batch_t *b,
                             char *errstr, size_t errstr_size);
        /* written = 1: the batch is in the store; 0: it failed (the
         * pipeline then stops) */
        void (*done)(void *opaque, int written);
        void *opaque;
        /* Optional: 1 when done(1) would evict (a cache past its bound);
         * that commit is then written in place, see
         * feat_engine_commit_begin(). */
        int (*over_bound)(void *opaque);
} feat_writer_t;
/* -1 when FEAT_MAX_WRITERS are registered already. */
int feat_engine_add_writer(feat_engine_t *eng, const feat_writer_t *w);

/* Write everything changed since the last commit, plus offsets, in one batch.
 */
tern_code_t feat_engine_commit(feat_engine_t *eng, const feat_offset_t *offsets,
                               uint32_t n_offsets, char *errstr,
                               size_t errstr_size);
/* The same commit with the RocksDB write on the store's thread
 * (feat_store_write_begin): returns once the batch is built, *landed = 0,
 * and the caller may apply the next events meanwhile. A commit whose
 * caches must evict afterwards is written in place: *landed = 1. Each
 * begin first lands the batch before it. feat_engine_commit_end() waits
 * for the batch in flight (TERN_OK when none): its offsets are durable
 * when it returns TERN_OK. A failed write is fatal, as for
 * feat_engine_commit(): the engine forgets what it holds. */
tern_code_t feat_engine_commit_begin(feat_engine_t *eng,
                                     const feat_offset_t *offsets,
                                     uint32_t n_offsets, int *landed,
                                     char *errstr, size_t errstr_size);
tern_code_t feat_engine_commit_end(feat_engine_t *eng, char *errstr,
                                   size_t errstr_size);

/* The pair table's shape, for tests and diagnostics: a full scan of the
 * table (milliseconds for millions of slots), not for every metrics
 * read. displacement: slots from an entry's hash slot to where it is; a
 * lookup of an absent pair probes to the end of its run. */
typedef struct feat_table_stats {
        uint64_t slots, entries;
        double mean_displacement;
        uint64_t max_displacement, longest_run;
} feat_table_stats_t;

/* Writes every item's top record with its counts, as its leaving memory
 * would (the loaded ones from memory, the others read back; after a
 * commit, nothing pending or in flight). The store is then the same
 * whichever items happened to leave memory: for tests that compare the
 * stores of runs with other bounds, restarts or commits. */
tern_code_t feat_engine_write_top_records(feat_engine_t *eng, char *errstr,
                                          size_t errstr_size);
void feat_engine_pair_table_stats(const feat_engine_t *eng,
                                  feat_table_stats_t *out);

/* Counters for logs and metrics. */
typedef struct feat_stats {
        uint64_t events, counted, pair_increments, commits;
        uint64_t merges_written, users_written;
        uint64_t cached_users, cached_items, cached_pairs;
        uint64_t cached_top_lists;  /* cached items whose top list is loaded */
        uint64_t cached_user_bytes; /* what the cached users hold */
        /* eviction after commits: users and items freed, items whose
         * pairs were unloaded, pairs deleted */
        uint64_t users_evicted, items_evicted, items_unloaded, pairs_evicted;
        /* pair filter: built (at the first entry eviction), and pair
         * counts it showed to be 0 without a read */
        uint64_t pair_filter_builds, pair_filter_zeros;
        /* pair counts read from the store because only a bound was in
         * memory, and the reads that waited for the batch in flight */
        uint64_t pair_reads, pair_read_waits;
        /* top records read (a load of a stored top list; counted: with the
         * counts, one read) and written, and failed writes of counted
         * records (harmless: loads then read the counts) */
        uint64_t top_loads, top_loads_counted, top_records_written;
        uint64_t top_record_write_errors;
} feat_stats_t;
void feat_engine_stats(const feat_engine_t *eng, feat_stats_t *out);

/* ---- reading state straight from the store (tern inspect) ---- */

/* Profile + window of a user, decoded from the store, as JSON (the
 * `tern inspect user` document). partition < 0: search all partitions. */
tern_code_t feat_inspect_user_json(feat_store_t *st, const char *user,
                                   int32_t partition, tern_buf_t *out,
                                   char *errstr, size_t errstr_size);
/* {"item_id","n","neighbors":[{"item_id","c","score"}...]}, exact: all
 * neighbours read, sorted by s desc then id asc, first k (0 = all). */
tern_code_t feat_inspect_item_json(feat_store_t *st, const char *item,
                                   uint32_t k, tern_buf_t *out, char *errstr,
                                   size_t errstr_size);
/* The item document above for EVERY item in the item CF, one per line
 * (JSON lines, in item id byte order) to out; k as above. Reads the item
 * CF once into memory, then one prefix seek per item: for whole-store
 * comparisons against a reference. */
tern_code_t feat_inspect_items_jsonl(feat_store_t *st, uint32_t k, FILE *out,
                                     char *errstr, size_t errstr_size);

/* {"digest":"<32 hex>","records":N,"by_cf":{"profile":N,...}}: a hash over
 * every record of every column family (state, models, pending
 * impressions, churn timers, offsets), in column family then key order, so
 * two state directories compare exactly. Two independent 64-bit FNV-1a
 * lanes over [cf][len key][key][len value][value]: a comparison, not a
 * cryptographic fingerprint. */
tern_code_t feat_inspect_digest_json(feat_store_t *st, tern_buf_t *out,
                                     char *errstr, size_t errstr_size);

#endif
