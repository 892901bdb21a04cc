/*
 * feat_store — tern's RocksDB state store.
 *
 * Column families (each value starts with a 1-byte record version, except
 * counters):
 *   profile  [u16be partition][user_id]   -> user profile record
 *   window   [u16be partition][user_id]   -> user window record
 *   cooc     [u32be len(a)][a][b]         -> int64 c(a,b), a before b in
 *                                            feat_id_cmp order (merge: add)
 *   top      [item_id]                    -> the members of the item's
 *                                            top list (feat_cooc.c)
 *   item     [item_id]                    -> int64 n(i) (merge: add)
 *   offsets  [topic]\0[u32be partition]   -> int64 next offset to consume
 *   meta     [name]                       -> misc records (trending,
 *                                            cooc_layout, ...)
 *   pending, model, churn: the models' records (models/ encodes them).
 * User keys start with the input partition so that all of one partition's
 * user state can later be moved between instances by a prefix scan.
 * Counter values are 8-byte little-endian int64 with a merge operator that
 * adds, so increments never read-modify-write (counters carry no version
 * byte: the merge operator needs fixed-size operands; an operand of any
 * other size fails the merge and the read reports Corruption).
 * Offsets values are [u8 version=1][int64 LE].
 *
 * All state produced by a batch AND the consumed offsets go into ONE
 * feat_batch_t and one feat_store_write() (WAL on): after a crash the store
 * holds either the whole batch or none of it.
 *
 * Errors from RocksDB's errptr are copied into errstr and freed at the call.
 * Values returned by feat_store_get() are copied into the caller's buffer.
 * Keys/values returned by an iterator borrow RocksDB memory, valid until the
 * next feat_iter_next() or feat_iter_destroy().
 */
#ifndef FEAT_STORE_H
#define FEAT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"

typedef enum feat_cf {
        FEAT_CF_PROFILE = 0,
        FEAT_CF_WINDOW,
        FEAT_CF_COOC,
        FEAT_CF_ITEM,
        FEAT_CF_OFFSETS,
        FEAT_CF_META,
        FEAT_CF_PENDING, /* CTR: impressions waiting for their click */
        FEAT_CF_MODEL,   /* model weights and metrics (models/ encodes them) */
        FEAT_CF_CHURN,   /* churn: per-user scoring points and alert state */
        FEAT_CF_TOP,     /* co-occurrence: each item's top list members */
        FEAT_CF__CNT
} feat_cf_t;

extern const char *const feat_cf_names[FEAT_CF__CNT];

typedef struct feat_store_conf {
        const char *dir;
        size_t block_cache_mb;  /* default 64 */
        size_t write_buffer_mb; /* default 32 */
        int universal;          /* universal compaction; default 0 (level) */
        int sync;      /* fsync each batch write; default 0 (WAL only) */
        int read_only; /* open for `tern inspect` */
} feat_store_conf_t;

typedef struct feat_store feat_store_t;
typedef struct feat_batch feat_batch_t;
typedef struct feat_iter feat_iter_t;

feat_store_t *feat_store_open(const feat_store_conf_t *conf, char *errstr,
                              size_t errstr_size);
void feat_store_close(feat_store_t *st);

/* *found = 0 and val empty when the key is absent. */
tern_code_t feat_store_get(feat_store_t *st, feat_cf_t cf, const void *key,
                           size_t klen, tern_buf_t *val, int *found,
                           char *errstr, size_t errstr_size);

feat_batch_t *feat_batch_new(void);
void feat_batch_destroy(feat_batch_t *b);
void feat_batch_clear(feat_batch_t *b);
size_t feat_batch_count(const feat_batch_t *b);
void feat_batch_put(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                    const void *key, size_t klen, const void *val, size_t vlen);
void feat_batch_delete(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                       const void *key, size_t klen);
void feat_batch_merge_add(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                          const void *key, size_t klen, int64_t delta);
/* The batch's bytes in RocksDB's WriteBatch format (count included),
 * borrowed until the batch changes; NULL when it found no memory for its
 * header. For tests, which compare them with RocksDB's own. */
const uint8_t *feat_batch_data(feat_batch_t *b, size_t *len);
tern_code_t feat_store_write(feat_store_t *st, feat_batch_t *b, char *errstr,
                             size_t errstr_size);
/* The same write on the store's own thread, so the caller can go on while
 * RocksDB appends the WAL and fills the memtables. begin() hands b over
 * (first waiting for the batch before, whose error it then returns): the
 * caller must not touch b until end() returned. end() waits for the batch
 * in flight and returns its result (TERN_OK when none is). Reads from any
 * thread meanwhile see the store before or after the whole batch, never a
 * part of it, so the caller must not read back keys the batch in flight
 * writes unless it still holds them itself. A single caller thread; close()
 * waits for the batch in flight. */
tern_code_t feat_store_write_begin(feat_store_t *st, feat_batch_t *b,
                                   char *errstr, size_t errstr_size);
tern_code_t feat_store_write_end(feat_store_t *st, char *errstr,
                                 size_t errstr_size);
/* Waits until the batch in flight (if any) is written, leaving its result
 * to end(): a read after it sees the batch, unless the write failed,
 * which end() then reports. */
void feat_store_write_wait(feat_store_t *st);

/* Offsets: the next offset to consume for (topic, partition). */
tern_code_t feat_store_offset_get(feat_store_t *st, const char *topic,
                                  int32_t partition, int64_t *next_offset,
                                  int *found, char *errstr, size_t errstr_size);
void feat_batch_offset_put(feat_batch_t *b, feat_store_t *st, const char *topic,
                           int32_t partition, int64_t next_offset);

/* Bytes the state takes: SST files plus memtables, summed over the
 * column families (RocksDB properties; takes the DB mutex briefly, so the
 * pipeline reads it at most once a second). */
uint64_t feat_store_size_bytes(feat_store_t *st);

/* Memory RocksDB holds, bytes, summed over the column families (RocksDB
 * properties, same cost as feat_store_size_bytes()): memtables (active,
 * immutable and pinned), the shared block cache's usage and pinned part
 * (index and filter blocks are in the cache, L0's pinned), and what the
 * open table files hold outside the cache (their readers' fixed part). */
typedef struct feat_store_mem {
        uint64_t memtables, block_cache, block_cache_pinned, table_readers;
        /* The LSM's shape, to tell compaction falling behind from memory:
         * the most L0 files and the most sorted runs (L0 files plus
         * non-empty levels) of any column family (writes slow down at 20
         * L0 files, or 20 sorted runs under universal compaction); the
         * bytes level compaction still owes, summed (RocksDB computes it
         * for level compaction only); compactions running; the write rate
         * RocksDB is holding writes to (0: not delayed). */
        uint64_t l0_files_max, sorted_runs_max, pending_compaction_bytes;
        uint64_t compactions_running, delayed_write_rate;
} feat_store_mem_t;
void feat_store_memory(feat_store_t *st, feat_store_mem_t *out);
/* Compacts every column family's whole key range now, flushing its
 * memtable first; returns when done. For tests that need table files
 * below L0 (0005 switches compaction styles over them). */
void feat_store_compact(feat_store_t *st);

/* Iterate keys of cf that start with prefix (plen may be 0: all keys),
 * in key order. */
feat_iter_t *feat_iter_new(feat_store_t *st, feat_cf_t cf, const void *prefix,
                           size_t plen);
/* Re-target an iterator at another prefix of the same cf: the next
 * feat_iter_next() returns the first key with that prefix. One iterator
 * reads one consistent view (taken at feat_iter_new()), so reusing it for
 * many prefix scans is cheap and sees no writes made after it was created.
 * -1 on allocation failure. */
int feat_iter_seek(feat_iter_t *it, const void *prefix, size_t plen);
/* 1 and the pointers set while there is a record; 0 at the end. */
int feat_iter_next(feat_iter_t *it, const uint8_t **key, size_t *klen,
                   const uint8_t **val, size_t *vlen);
/* Non-NULL (to be freed with free()) if the iteration failed. */
char *feat_iter_error(feat_iter_t *it);
/* TERN_OK, or TERN_ERR_STATE with "<what>: <RocksDB's reason>" in errstr
 * when the iteration failed (the reason is freed here). */
tern_code_t feat_iter_status(feat_iter_t *it, const char *what, char *errstr,
                             size_t errstr_size);
void feat_iter_destroy(feat_iter_t *it);

/* Key builders shared by engine and inspect. */
void feat_key_user(tern_buf_t *k, int32_t partition, const char *user,
                   size_t len);
/* The cooc key of the pair {a, b}, in either order: the id that sorts
 * first (feat_id_cmp) leads. */
void feat_key_cooc(tern_buf_t *k, const char *a, size_t alen, const char *b,
                   size_t blen);
/* [u32be len(a)][a]: the prefix of a's pairs with the ids after a. */
void feat_key_cooc_prefix(tern_buf_t *k, const char *a, size_t alen);
/* Splits a cooc key into its two ids; -1 if it is not one. */
int feat_key_cooc_split(const uint8_t *k, size_t klen, const uint8_t **a,
                        uint32_t *alen, const uint8_t **b, uint32_t *blen);

int64_t feat_counter_decode(const uint8_t *v, size_t vlen);

#endif
