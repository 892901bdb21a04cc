/*
 * feat_store — RocksDB open/close, the add-int64 merge operator, batches,
 * point reads, prefix iterators and the key layouts of feat_store.h.
 */
#include "feat_store.h"

#include <dirent.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const feat_cf_names[FEAT_CF__CNT] = {
    [FEAT_CF_PROFILE] = "profile", [FEAT_CF_WINDOW] = "window",
    [FEAT_CF_COOC] = "cooc",       [FEAT_CF_ITEM] = "item",
    [FEAT_CF_OFFSETS] = "offsets", [FEAT_CF_META] = "meta",
    [FEAT_CF_PENDING] = "pending", [FEAT_CF_MODEL] = "model",
    [FEAT_CF_CHURN] = "churn",     [FEAT_CF_TOP] = "top",
};

#define FEAT_OFFSET_VERSION 1

struct feat_store {
        rocksdb_t *db;
        rocksdb_options_t *opts;
        rocksdb_options_t *point_opts; /* profile, window, item */
        rocksdb_options_t *cooc_opts;
        rocksdb_readoptions_t *scan_ropts; /* iterators in total order */
        rocksdb_block_based_table_options_t *bbto;
        rocksdb_block_based_table_options_t *cooc_bbto;
        rocksdb_cache_t *cache;
        /* feat_cf_t order, then RocksDB's mandatory "default" (unused) */
        rocksdb_column_family_handle_t *cf[FEAT_CF__CNT + 1];
        uint32_t cf_id[FEAT_CF__CNT]; /* RocksDB's ids of cf[] */
        rocksdb_readoptions_t *ropts; /* gets and item scans */
        rocksdb_writeoptions_t *wopts;
        int read_only;
        int write_failed;         /* a batch write failed: no flush on close */
        struct feat_store_bg *bg; /* background writer, once started */
};

/* A batch is built straight in RocksDB's WriteBatch format (see "batches"
 * below) in a buffer it owns and keeps across clears; RocksDB gets a copy
 * when it is written. */
struct feat_batch {
        tern_buf_t rep;
        size_t count;
        int failed; /* an append found no memory: the write refuses it */
};

struct feat_iter {
        rocksdb_iterator_t *it;
        uint8_t *prefix;
        size_t plen;
        int started;
};

/* ---- merge operator: values and operands are 8-byte LE int64 ---- */

static int64_t le64_get(const uint8_t *p) {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
                u = (u << 8) | p[i];
        return (int64_t)u;
}

static void le64_put(uint8_t *p, int64_t v) {
        uint64_t u = (uint64_t)v;
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(u >> (8 * i));
}

/* Sums operands (and the existing value); a malformed operand makes the
 * merge fail, which RocksDB reports as Corruption on the read, never a
 * silently wrong count. Unsigned arithmetic: wraps instead of UB.
 * TRAP (7.8.3 c.cc): the wrapper copies the returned buffer with
 * *new_len BEFORE looking at *success, so a failure must still return a
 * valid buffer and a length. */
static char *add_sum(const char *existing, size_t elen, const char *const *ops,
                     const size_t *oplen, int nops, unsigned char *success,
                     size_t *new_len) {
        uint64_t sum = 0;
        char *out = malloc(8);
        int ok = out != NULL;
        if (existing) {
                ok = ok && elen == 8;
                if (ok)
                        sum = (uint64_t)le64_get((const uint8_t *)existing);
        }
        for (int i = 0; i < nops && ok; i++) {
                ok = oplen[i] == 8;
                if (ok)
                        sum += (uint64_t)le64_get((const uint8_t *)ops[i]);
        }
        if (ok)
                le64_put((uint8_t *)out, (int64_t)sum);
        *new_len = ok ? 8 : 0;
        *success = (unsigned char)ok;
        return out;
}

static char *add_full_merge(void *state, const char *key, size_t klen,
                            const char *existing, size_t elen,
                            const char *const *ops, const size_t *oplen,
                            int nops, unsigned char *success, size_t *new_len) {
        (void)state, (void)key, (void)klen;
        return add_sum(existing, elen, ops, oplen, nops, success, new_len);
}

static char *add_partial_merge(void *state, const char *key, size_t klen,
                               const char *const *ops, const size_t *oplen,
                               int nops, unsigned char *success,
                               size_t *new_len) {
        (void)state, (void)key, (void)klen;
        return add_sum(NULL, 0, ops, oplen, nops, success, new_len);
}

static void add_delete_value(void *state, const char *v, size_t vlen) {
        (void)state, (void)vlen;
        free((void *)v);
}

static const char *add_name(void *state) {
        (void)state;
        return "tern.add_int64";
}

/* RocksDB 7.8.3 calls the destructor unconditionally: NULL segfaults.
 * Also the (stateless) prefix extractors' destructor. */
static void add_destroy(void *state) {
        (void)state;
}

int64_t feat_counter_decode(const uint8_t *v, size_t vlen) {
        if (!v || vlen != 8)
                return 0;
        return le64_get(v);
}

/* ---- prefix extractors ---- */

static char *whole_key(void *state, const char *key, size_t len,
                       size_t *dst_len) {
        (void)state;
        *dst_len = len;
        return (char *)key;
}

/* Cooc keys [u32be len(a)][a][b]: the prefix is [u32be len(a)][a]. */
static size_t cooc_prefix_len(const char *key, size_t len) {
        const uint8_t *k = (const uint8_t *)key;
        size_t alen;
        if (len < 4)
                return 0;
        alen = ((size_t)k[0] << 24) | ((size_t)k[1] << 16) |
               ((size_t)k[2] << 8) | k[3];
        return alen <= len - 4 ? 4 + alen : 0;
}

static char *cooc_prefix(void *state, const char *key, size_t len,
                         size_t *dst_len) {
        (void)state;
        *dst_len = cooc_prefix_len(key, len);
        return (char *)key;
}

static unsigned char cooc_in_domain(void *state, const char *key, size_t len) {
        (void)state;
        return cooc_prefix_len(key, len) > 0;
}

static unsigned char any_key(void *state, const char *key, size_t len) {
        (void)state, (void)key, (void)len;
        return 1;
}

static unsigned char no_range(void *state, const char *key, size_t len) {
        (void)state, (void)key, (void)len;
        return 0;
}

static const char *whole_key_name(void *state) {
        (void)state;
        return "tern.whole_key";
}

static const char *cooc_prefix_name(void *state) {
        (void)state;
        return "tern.cooc_item";
}

/* ---- open / close ---- */

static tern_code_t store_err(char *errstr, size_t errstr_size, char *rerr,
                             const char *what) {
        tern_errf(errstr, errstr_size, TERN_ERR_STATE, "%s: %s", what,
                  rerr ? rerr : "unknown RocksDB error");
        free(rerr);
        return TERN_ERR_STATE;
}

/* Memtables hashed by key prefix. RocksDB's default skiplist costs a
 * dozen cache misses per insert and lookup once it holds ~100k entries
 * (measured: most of the commit time); a hashed memtable finds the key's
 * bucket directly.
 *  - profile, window, item, and the models' pending, model and churn:
 *    only point gets and puts/merges/deletes while running (their scans
 *    happen at start-up), so the "prefix" is the whole key and a bucket
 *    holds one key's versions. On the skiplist, the churn and model
 *    records (about one per event) made the batch write cost 14 us per
 *    event in `tern bench`; hashed, 10 us.
 *  - top: point gets and puts, like the above.
 *  - cooc: one counter per pair, read by point gets; the prefix is the
 *    pair's first item ([u32be len(a)][a]), so a commit's increments of
 *    one item's pairs share a bucket (a short skiplist each) instead of
 *    one bucket per pair.
 * A hashed memtable has no total order of its own: every other iterator
 * reads with total_order_seek (feat_iter_new), for which RocksDB sorts a
 * copy of the memtable; only inspection and start-up scan like that.
 * Neither rep supports concurrent memtable writes (one writer anyway). */
#define HASH_BUCKETS ((size_t)1 << 17)

/* L0 files that start a compaction into L1 for the cooc column family
 * under level compaction (RocksDB's default: 4). Its counters are spread
 * over the whole key space, so every L0 -> L1 compaction takes every L1
 * file (all of the data until it passes max_bytes_for_level_base,
 * 256 MiB, and up to that much after) for the few MiB it merges: waiting
 * for twice as many files halves the rewrites while compaction keeps up
 * (once behind, each compaction takes all the L0 files waiting anyway).
 * A perf profile of the compaction thread in a soak (2,000 events/s,
 * 4 MiB write buffers, ~18 min in): 55% RocksDB's merge iterator and
 * table builder, 16% libc copies and compares, 10% snappy; no one part
 * to make cheaper, only less to rewrite. The cost: point reads look in
 * up to twice as many L0 files, and those files' index and filter
 * partitions stay pinned in the block cache (pin_l0_...), up to twice
 * as much of it. */
#define COOC_L0_TRIGGER 8

static void cf_options(feat_store_t *st, int universal) {
        st->point_opts = rocksdb_options_create_copy(st->opts);
        rocksdb_options_set_prefix_extractor(
            st->point_opts,
            rocksdb_slicetransform_create(NULL, add_destroy, whole_key, any_key,
                                          no_range, whole_key_name));
        rocksdb_options_set_hash_link_list_rep(st->point_opts, HASH_BUCKETS);
        st->cooc_opts = rocksdb_options_create_copy(st->opts);
        rocksdb_options_set_prefix_extractor(
            st->cooc_opts, rocksdb_slicetransform_create(
                               NULL, add_destroy, cooc_prefix, cooc_in_domain,
                               no_range, cooc_prefix_name));
        rocksdb_options_set_hash_skip_list_rep(st->cooc_opts, HASH_BUCKETS, 4,
                                               4);
        if (!universal)
                rocksdb_options_set_level0_file_num_compaction_trigger(
                    st->cooc_opts, COOC_L0_TRIGGER);
        rocksdb_options_set_block_based_table_factory(st->cooc_opts,
                                                      st->cooc_bbto);
}

/* Block-based table options over the shared block cache. partitioned:
 * the cooc column family's, whose one counter per pair makes its files'
 * filters megabytes each: a whole filter evicted from a small cache was
 * read back (and decompressed) for nearly every point lookup (a soak at
 * 2,000 events/s with an 8 MiB cache: 40% of the process). Partitioned,
 * a lookup loads one 4 KiB partition of the filter and of the index, and
 * only their top levels stay pinned. */
static rocksdb_block_based_table_options_t *table_options(feat_store_t *st,
                                                          int partitioned) {
        rocksdb_block_based_table_options_t *t =
            rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_block_cache(t, st->cache);
        /* Most engine reads are point gets of absent users and items:
         * the bloom filter answers those without touching data blocks. */
        rocksdb_block_based_options_set_filter_policy(
            t, rocksdb_filterpolicy_create_bloom_full(10));
        /* Index and filter blocks live in the block cache, so
         * state.block_cache_mb bounds them too: outside it each open table
         * file kept its own, growing with the data on disk. They go in
         * the cache's high-priority pool (data blocks are evicted before
         * them), and L0's stay pinned: L0 files are the newest and every
         * read checks all of them. */
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
            t, 1);
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
            t, 1);
        if (partitioned) {
                rocksdb_block_based_options_set_index_type(
                    t,
                    rocksdb_block_based_table_index_type_two_level_index_search);
                rocksdb_block_based_options_set_partition_filters(t, 1);
                rocksdb_block_based_options_set_metadata_block_size(t, 4096);
                rocksdb_block_based_options_set_pin_top_level_index_and_filter(
                    t, 1);
        }
        return t;
}

static void store_options(feat_store_t *st, const feat_store_conf_t *conf) {
        size_t cache_mb = conf->block_cache_mb ? conf->block_cache_mb : 64;
        size_t wbuf_mb = conf->write_buffer_mb ? conf->write_buffer_mb : 32;
        st->opts = rocksdb_options_create();
        rocksdb_options_set_create_if_missing(st->opts, 1);
        rocksdb_options_set_create_missing_column_families(st->opts, 1);
        rocksdb_options_set_allow_concurrent_memtable_write(st->opts, 0);
        /* No info LOG file in the state directory. On a full disk the first
         * failed LOG append marks RocksDB's log writer as failed, and the
         * next append (a flush or an error message, moments later) trips an
         * assertion that Debian's librocksdb keeps compiled in: tern would
         * abort instead of exiting with the I/O error. Level 6 is above
         * HEADER_LEVEL (5), so nothing is logged; errors still reach tern
         * through each call's errptr. */
        rocksdb_options_set_info_log_level(st->opts, 6);
        /* Each open renames LOG to LOG.old.<time>; RocksDB keeps 1,000 of
         * them by default, all empty at this level. */
        rocksdb_options_set_keep_log_file_num(st->opts, 1);
        rocksdb_options_set_write_buffer_size(st->opts, wbuf_mb << 20);
        /* The offsets and meta column families take a few bytes per commit,
         * so their memtables never fill and never flush, and RocksDB keeps
         * every WAL file since the first until the total passes its default
         * limit, 4 x the sum of all write buffers (2.3 GB here): a 10-minute
         * soak of tern bench held 2.7 GB of WAL, all of it replayed on a
         * restart. Past this much WAL the column families holding the
         * oldest file are flushed instead. */
        rocksdb_options_set_max_total_wal_size(st->opts, (uint64_t)(4 * wbuf_mb)
                                                             << 20);
        /* RocksDB opens each column family's table files with up to 16
         * threads of their own: 9 column families made ~150 short-lived
         * threads per open, and `tern inspect` on a busy 2-core machine took
         * seconds. tern has few files; one opener is enough. */
        rocksdb_options_set_max_file_opening_threads(st->opts, 1);
        /* Universal: co-occurrence counters are increments to keys spread
         * over the whole key space, so with levels every L0 -> L1
         * compaction rewrote most of L1 for a few MiB of new data. */
        if (conf->universal)
                rocksdb_options_set_compaction_style(
                    st->opts, rocksdb_universal_compaction);
        rocksdb_options_set_merge_operator(
            st->opts, rocksdb_mergeoperator_create(
                          NULL, add_destroy, add_full_merge, add_partial_merge,
                          add_delete_value, add_name));
        st->cache = rocksdb_cache_create_lru(cache_mb << 20);
        st->bbto = table_options(st, 0);
        st->cooc_bbto = table_options(st, 1);
        rocksdb_options_set_block_based_table_factory(st->opts, st->bbto);
        cf_options(st, conf->universal);
        st->scan_ropts = rocksdb_readoptions_create();
        rocksdb_readoptions_set_total_order_seek(st->scan_ropts, 1);
        st->ropts = rocksdb_readoptions_create();
        st->wopts = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(st->wopts, conf->sync ? 1 : 0);
}

/* With the info log silenced (level 6, see store_options) RocksDB cannot
 * write its OPTIONS file: the level has no name to serialize, so every
 * open and every column family created leaves an OPTIONS-N.dbtmp behind,
 * which RocksDB never deletes (it keeps temporary options files). The
 * open itself succeeds because fail_if_options_file_error is false in
 * RocksDB 7.8 (not settable through its C API). RocksDB issue 9941 is
 * this case; later releases default that option to true (PR 11800), so
 * on such a RocksDB the log must be silenced another way or no open
 * succeeds. Called after the open, holding the directory's LOCK: nobody
 * else writes these files. */
static void remove_options_tmp(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n;
        while (d && (e = readdir(d))) {
                n = strlen(e->d_name);
                if (strncmp(e->d_name, "OPTIONS-", 8) ||
                    strcmp(e->d_name + n - 6, ".dbtmp"))
                        continue;
                unlinkat(dirfd(d), e->d_name, 0); /* best effort */
        }
        if (d)
                closedir(d);
}

feat_store_t *feat_store_open(const feat_store_conf_t *conf, char *errstr,
                              size_t errstr_size) {
        const rocksdb_options_t *cfo[FEAT_CF__CNT + 1];
        const char *names[FEAT_CF__CNT + 1];
        feat_store_t *st;
        char *rerr = NULL;
        if (!conf || !conf->dir || !*conf->dir) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "state store: no directory configured");
                return NULL;
        }
        if (!(st = calloc(1, sizeof(*st)))) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        store_options(st, conf);
        for (int i = 0; i <= FEAT_CF__CNT; i++) {
                cfo[i] = i == FEAT_CF_PROFILE || i == FEAT_CF_WINDOW ||
                                 i == FEAT_CF_ITEM || i == FEAT_CF_PENDING ||
                                 i == FEAT_CF_MODEL || i == FEAT_CF_CHURN ||
                                 i == FEAT_CF_TOP
                             ? st->point_opts
                         : i == FEAT_CF_COOC ? st->cooc_opts
                                             : st->opts;
                names[i] = i < FEAT_CF__CNT ? feat_cf_names[i] : "default";
        }
        st->read_only = conf->read_only;
        if (conf->read_only)
                st->db = rocksdb_open_for_read_only_column_families(
                    st->opts, conf->dir, FEAT_CF__CNT + 1, names, cfo, st->cf,
                    0, &rerr);
        else
                st->db = rocksdb_open_column_families(st->opts, conf->dir,
                                                      FEAT_CF__CNT + 1, names,
                                                      cfo, st->cf, &rerr);
        if (rerr || !st->db) {
                char what[256];
                snprintf(what, sizeof(what), "cannot open state store %s%s",
                         conf->dir, conf->read_only ? " (read-only)" : "");
                store_err(errstr, errstr_size, rerr, what);
                st->db = NULL;
                feat_store_close(st);
                return NULL;
        }
        for (int i = 0; i < FEAT_CF__CNT; i++)
                st->cf_id[i] = rocksdb_column_family_handle_get_id(st->cf[i]);
        if (!conf->read_only)
                remove_options_tmp(conf->dir);
        return st;
}

/* After a clean stop, readers (tern inspect) open the store without
 * replaying the whole write-ahead log into memory. Best effort: the WAL
 * holds the same data if this fails. */
static void flush_memtables(feat_store_t *st) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = 0; i < FEAT_CF__CNT; i++) {
                char *rerr = NULL;
                if (!st->cf[i])
                        continue;
                rocksdb_flush_cf(st->db, fo, st->cf[i], &rerr);
                free(rerr);
        }
        rocksdb_flushoptions_destroy(fo);
}

uint64_t feat_store_size_bytes(feat_store_t *st) {
        static const char *const props[] = {"rocksdb.total-sst-files-size",
                                            "rocksdb.cur-size-all-mem-tables"};
        uint64_t total = 0, v;
        for (int i = 0; i <= FEAT_CF__CNT; i++)
                for (size_t k = 0; k < 2; k++)
                        if (st->cf[i] &&
                            rocksdb_property_int_cf(st->db, st->cf[i], props[k],
                                                    &v) == 0)
                                total += v;
        return total;
}

/* RocksDB answers the per-level file counts only as text. */
static uint64_t property_text_u64(feat_store_t *st,
                                  rocksdb_column_family_handle_t *cf,
                                  const char *name) {
        char *text = rocksdb_property_value_cf(st->db, cf, name);
        uint64_t v = text ? strtoull(text, NULL, 10) : 0;
        rocksdb_free(text);
        return v;
}

/* Sorted runs: each L0 file is one, each non-empty level below one more
 * (what a point read may have to look in, and what universal compaction
 * counts against its triggers). Pending bytes: level compaction only. */
static void lsm_shape(feat_store_t *st, rocksdb_column_family_handle_t *cf,
                      feat_store_mem_t *out) {
        char name[40];
        uint64_t l0, runs, v;
        l0 = property_text_u64(st, cf, "rocksdb.num-files-at-level0");
        runs = l0;
        for (int level = 1; level < 7; level++) {
                snprintf(name, sizeof(name), "rocksdb.num-files-at-level%d",
                         level);
                runs += property_text_u64(st, cf, name) > 0;
        }
        if (l0 > out->l0_files_max)
                out->l0_files_max = l0;
        if (runs > out->sorted_runs_max)
                out->sorted_runs_max = runs;
        if (!rocksdb_property_int_cf(
                st->db, cf, "rocksdb.estimate-pending-compaction-bytes", &v))
                out->pending_compaction_bytes += v;
}

void feat_store_memory(feat_store_t *st, feat_store_mem_t *out) {
        uint64_t v;
        *out = (feat_store_mem_t){0};
        for (int i = 0; i <= FEAT_CF__CNT; i++) {
                if (!st->cf[i])
                        continue;
                if (!rocksdb_property_int_cf(st->db, st->cf[i],
                                             "rocksdb.size-all-mem-tables", &v))
                        out->memtables += v;
                if (!rocksdb_property_int_cf(
                        st->db, st->cf[i], "rocksdb.estimate-table-readers-mem",
                        &v))
                        out->table_readers += v;
                lsm_shape(st, st->cf[i], out);
        }
        if (st->db && !rocksdb_property_int(
                          st->db, "rocksdb.num-running-compactions", &v))
                out->compactions_running = v;
        if (st->db && !rocksdb_property_int(
                          st->db, "rocksdb.actual-delayed-write-rate", &v))
                out->delayed_write_rate = v;
        /* One cache shared by every column family: count it once. */
        if (st->cache) {
                out->block_cache = rocksdb_cache_get_usage(st->cache);
                out->block_cache_pinned =
                    rocksdb_cache_get_pinned_usage(st->cache);
        }
}

void feat_store_compact(feat_store_t *st) {
        for (int i = 0; i <= FEAT_CF__CNT; i++)
                if (st->cf[i])
                        rocksdb_compact_range_cf(st->db, st->cf[i], NULL, 0,
                                                 NULL, 0);
}

static void bg_stop(feat_store_t *st);

void feat_store_close(feat_store_t *st) {
        if (!st)
                return;
        bg_stop(st);
        /* After a failed write RocksDB refuses further writes (a background
         * error), so a flush could only fail again. */
        if (st->db && !st->read_only && !st->write_failed)
                flush_memtables(st);
        if (st->db) {
                for (int i = 0; i <= FEAT_CF__CNT; i++)
                        if (st->cf[i])
                                rocksdb_column_family_handle_destroy(st->cf[i]);
                rocksdb_close(st->db);
        }
        rocksdb_readoptions_destroy(st->ropts);
        rocksdb_writeoptions_destroy(st->wopts);
        rocksdb_options_destroy(st->opts);
        rocksdb_options_destroy(st->point_opts);
        rocksdb_options_destroy(st->cooc_opts);
        rocksdb_readoptions_destroy(st->scan_ropts);
        rocksdb_block_based_options_destroy(st->bbto);
        rocksdb_block_based_options_destroy(st->cooc_bbto);
        rocksdb_cache_destroy(st->cache);
        free(st);
}

/* ---- reads ---- */

tern_code_t feat_store_get(feat_store_t *st, feat_cf_t cf, const void *key,
                           size_t klen, tern_buf_t *val, int *found,
                           char *errstr, size_t errstr_size) {
        char *rerr = NULL, *v;
        size_t vlen = 0;
        tern_code_t code = TERN_OK;
        tern_buf_reset(val);
        *found = 0;
        v = rocksdb_get_cf(st->db, st->ropts, st->cf[cf], key, klen, &vlen,
                           &rerr);
        if (rerr)
                return store_err(errstr, errstr_size, rerr, feat_cf_names[cf]);
        if (!v)
                return TERN_OK;
        if (tern_buf_append(val, v, vlen))
                code = tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "%s: record of %zu bytes exceeds the buffer",
                                 feat_cf_names[cf], vlen);
        else
                *found = 1;
        rocksdb_free(v);
        return code;
}

/* ---- batches ----
 *
 * rocksdb_writebatch_put_cf() cost ~590 instructions a record (C++
 * wrappers, a save point, five std::string appends), a quarter of the
 * state build at commit. A batch is therefore appended here in
 * WriteBatch's own format, which is also the write-ahead log's record
 * format, stable across RocksDB versions (db/write_batch.cc):
 *   header: fixed64 sequence (0 here), fixed32 count (set at the write)
 *   record: tag [varint32 cf id] varstring key [varstring value]
 * where the tag is put 0x1, merge 0x2, delete 0x0 for the default column
 * family (id 0, no id follows) and 0x5, 0x6, 0x4 for any other;
 * varstring: varint32 length, then the bytes. These are exactly the
 * bytes WriteBatch::Put/Merge/Delete append (test 0050 compares them). */

#define BATCH_HEADER 12
#define BATCH_MAX    ((size_t)1 << 40)

enum { REC_DELETE = 0x0, REC_PUT = 0x1, REC_MERGE = 0x2, REC_CF = 0x4 };

feat_batch_t *feat_batch_new(void) {
        feat_batch_t *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        tern_buf_init(&b->rep, BATCH_MAX);
        feat_batch_clear(b);
        return b;
}

void feat_batch_destroy(feat_batch_t *b) {
        if (!b)
                return;
        tern_buf_free(&b->rep);
        free(b);
}

void feat_batch_clear(feat_batch_t *b) {
        static const uint8_t header[BATCH_HEADER];
        tern_buf_reset(&b->rep);
        b->failed = tern_buf_append(&b->rep, header, sizeof(header)) != 0;
        b->count = 0;
}

size_t feat_batch_count(const feat_batch_t *b) {
        return b->count;
}

/* One record; op is REC_PUT, REC_MERGE or REC_DELETE (no value). */
static void batch_record(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                         uint8_t op, const void *key, size_t klen,
                         const void *val, size_t vlen) {
        uint32_t id = st->cf_id[cf];
        size_t need = 1 + 5 + 5 + klen + (op == REC_DELETE ? 0 : 5 + vlen);
        uint8_t *o;
        if (b->failed || klen > UINT32_MAX || vlen > UINT32_MAX ||
            tern_buf_reserve(&b->rep, need)) {
                b->failed = 1;
                return;
        }
        o = b->rep.data + b->rep.len;
        *o++ = id ? (uint8_t)(op | REC_CF) : op;
        if (id)
                o = tern_buf_varint_at(o, id);
        o = tern_buf_varint_at(o, klen);
        memcpy(o, key, klen);
        o += klen;
        if (op != REC_DELETE) {
                o = tern_buf_varint_at(o, vlen);
                if (vlen)
                        memcpy(o, val, vlen);
                o += vlen;
        }
        b->rep.len = (size_t)(o - b->rep.data);
        b->count++;
}

void feat_batch_put(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                    const void *key, size_t klen, const void *val,
                    size_t vlen) {
        batch_record(b, st, cf, REC_PUT, key, klen, val, vlen);
}

void feat_batch_delete(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                       const void *key, size_t klen) {
        batch_record(b, st, cf, REC_DELETE, key, klen, NULL, 0);
}

void feat_batch_merge_add(feat_batch_t *b, feat_store_t *st, feat_cf_t cf,
                          const void *key, size_t klen, int64_t delta) {
        uint8_t v[8];
        le64_put(v, delta);
        batch_record(b, st, cf, REC_MERGE, key, klen, v, 8);
}

const uint8_t *feat_batch_data(feat_batch_t *b, size_t *len) {
        uint32_t n = (uint32_t)b->count;
        *len = 0;
        if (b->rep.len < BATCH_HEADER) /* no memory for the header */
                return NULL;
        for (int i = 0; i < 4; i++)
                b->rep.data[8 + i] = (uint8_t)(n >> (8 * i));
        *len = b->rep.len;
        return b->rep.data;
}

/* Writes b; RocksDB's error (to be freed), NULL on success. The copy into
 * a WriteBatch runs on the writing thread (the store's, in the
 * background). */
static char *batch_write(feat_store_t *st, feat_batch_t *b) {
        rocksdb_writebatch_t *wb;
        const uint8_t *data;
        char *rerr = NULL;
        size_t len;
        if (b->failed)
                return strdup("out of memory building the batch");
        if (b->count > UINT32_MAX)
                return strdup("more than 2^32 records in one batch");
        if (!(data = feat_batch_data(b, &len)) ||
            !(wb = rocksdb_writebatch_create_from((const char *)data, len)))
                return strdup("out of memory copying the batch");
        rocksdb_write(st->db, st->wopts, wb, &rerr);
        rocksdb_writebatch_destroy(wb);
        return rerr;
}

tern_code_t feat_store_write(feat_store_t *st, feat_batch_t *b, char *errstr,
                             size_t errstr_size) {
        char *rerr = batch_write(st, b);
        if (rerr) {
                st->write_failed = 1;
                return store_err(errstr, errstr_size, rerr,
                                 "state batch write");
        }
        return TERN_OK;
}

/* ---- offsets ---- */

static int offset_key(tern_buf_t *k, const char *topic, int32_t partition) {
        tern_buf_init(k, 4096);
        tern_buf_append(k, topic, strlen(topic) + 1);
        tern_buf_put_u32be(k, (uint32_t)partition);
        return k->overflow ? -1 : 0;
}

tern_code_t feat_store_offset_get(feat_store_t *st, const char *topic,
                                  int32_t partition, int64_t *next_offset,
                                  int *found, char *errstr,
                                  size_t errstr_size) {
        tern_buf_t k, v;
        tern_code_t code;
        *found = 0;
        *next_offset = -1;
        if (offset_key(&k, topic, partition)) {
                tern_buf_free(&k);
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "offset key: topic name too long");
        }
        tern_buf_init(&v, 64);
        code = feat_store_get(st, FEAT_CF_OFFSETS, k.data, k.len, &v, found,
                              errstr, errstr_size);
        if (code || !*found)
                goto out;
        if (v.len != 9 || v.data[0] != FEAT_OFFSET_VERSION) {
                *found = 0;
                code = tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "offsets: undecodable record for %s [%d]",
                                 topic, (int)partition);
                goto out;
        }
        *next_offset = le64_get(v.data + 1);
out:
        tern_buf_free(&k);
        tern_buf_free(&v);
        return code;
}

void feat_batch_offset_put(feat_batch_t *b, feat_store_t *st, const char *topic,
                           int32_t partition, int64_t next_offset) {
        tern_buf_t k;
        uint8_t v[9];
        v[0] = FEAT_OFFSET_VERSION;
        le64_put(v + 1, next_offset);
        if (!offset_key(&k, topic, partition))
                feat_batch_put(b, st, FEAT_CF_OFFSETS, k.data, k.len, v, 9);
        tern_buf_free(&k);
}

/* ---- iterators ---- */

int feat_iter_seek(feat_iter_t *it, const void *prefix, size_t plen) {
        uint8_t *p = NULL;
        if (plen && !(p = malloc(plen)))
                return -1;
        if (plen)
                memcpy(p, prefix, plen);
        free(it->prefix);
        it->prefix = p;
        it->plen = plen;
        it->started = 0;
        return 0;
}

feat_iter_t *feat_iter_new(feat_store_t *st, feat_cf_t cf, const void *prefix,
                           size_t plen) {
        feat_iter_t *it = calloc(1, sizeof(*it));
        if (!it)
                return NULL;
        if (feat_iter_seek(it, prefix, plen)) {
                free(it);
                return NULL;
        }
        it->it = rocksdb_create_iterator_cf(st->db, st->scan_ropts, st->cf[cf]);
        return it;
}

int feat_iter_next(feat_iter_t *it, const uint8_t **key, size_t *klen,
                   const uint8_t **val, size_t *vlen) {
        const char *k;
        if (!it->started) {
                it->started = 1;
                if (it->plen)
                        rocksdb_iter_seek(it->it, (const char *)it->prefix,
                                          it->plen);
                else
                        rocksdb_iter_seek_to_first(it->it);
        } else {
                rocksdb_iter_next(it->it);
        }
        if (!rocksdb_iter_valid(it->it))
                return 0;
        k = rocksdb_iter_key(it->it, klen);
        if (*klen < it->plen ||
            (it->plen && memcmp(k, it->prefix, it->plen) != 0))
                return 0;
        *key = (const uint8_t *)k;
        *val = (const uint8_t *)rocksdb_iter_value(it->it, vlen);
        return 1;
}

tern_code_t feat_iter_status(feat_iter_t *it, const char *what, char *errstr,
                             size_t errstr_size) {
        char *rerr = feat_iter_error(it);
        if (!rerr)
                return TERN_OK;
        tern_errf(errstr, errstr_size, TERN_ERR_STATE, "%s: %s", what, rerr);
        free(rerr);
        return TERN_ERR_STATE;
}

char *feat_iter_error(feat_iter_t *it) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it->it, &rerr);
        return rerr;
}

void feat_iter_destroy(feat_iter_t *it) {
        if (!it)
                return;
        rocksdb_iter_destroy(it->it);
        free(it->prefix);
        free(it);
}

/* ---- keys ---- */

void feat_key_user(tern_buf_t *k, int32_t partition, const char *user,
                   size_t len) {
        uint8_t p[2] = {(uint8_t)((uint32_t)partition >> 8),
                        (uint8_t)partition};
        tern_buf_reset(k);
        tern_buf_append(k, p, 2);
        tern_buf_append(k, user, len);
}

void feat_key_cooc_prefix(tern_buf_t *k, const char *a, size_t alen) {
        tern_buf_reset(k);
        tern_buf_put_u32be(k, (uint32_t)alen);
        tern_buf_append(k, a, alen);
}

void feat_key_cooc(tern_buf_t *k, const char *a, size_t alen, const char *b,
                   size_t blen) {
        int r = memcmp(a, b, alen < blen ? alen : blen);
        if (r > 0 || (r == 0 && alen > blen)) {
                const char *t = a;
                size_t tlen = alen;
                a = b, alen = blen;
                b = t, blen = tlen;
        }
        feat_key_cooc_prefix(k, a, alen);
        tern_buf_append(k, b, blen);
}

int feat_key_cooc_split(const uint8_t *k, size_t klen, const uint8_t **a,
                        uint32_t *alen, const uint8_t **b, uint32_t *blen) {
        size_t plen = cooc_prefix_len((const char *)k, klen);
        if (plen == 0 || plen == klen)
                return -1;
        *a = k + 4;
        *alen = (uint32_t)(plen - 4);
        *b = k + plen;
        *blen = (uint32_t)(klen - plen);
        return 0;
}

/* ---- background writes ---- */

/* One thread per store, started by the first feat_store_write_begin(), and
 * one batch in flight: the caller hands a batch over and takes the result
 * back with feat_store_write_end(), so writes stay in commit order. */
struct feat_store_bg {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        feat_batch_t *batch; /* in flight; NULL: idle */
        int done;            /* the batch in flight was written (or failed) */
        int stop;
        char *err; /* RocksDB's error of the batch, owned */
};

static void *bg_main(void *arg) {
        feat_store_t *st = arg;
        struct feat_store_bg *bg = st->bg;
        pthread_setname_np(pthread_self(), "tern:store");
        pthread_mutex_lock(&bg->lock);
        for (;;) {
                char *rerr;
                while (!bg->stop && (!bg->batch || bg->done))
                        pthread_cond_wait(&bg->cond, &bg->lock);
                if (bg->stop)
                        break;
                pthread_mutex_unlock(&bg->lock);
                rerr = batch_write(st, bg->batch);
                pthread_mutex_lock(&bg->lock);
                bg->err = rerr;
                bg->done = 1;
                pthread_cond_broadcast(&bg->cond);
        }
        pthread_mutex_unlock(&bg->lock);
        return NULL;
}

static int bg_start(feat_store_t *st) {
        struct feat_store_bg *bg = calloc(1, sizeof(*bg));
        if (!bg)
                return -1;
        pthread_mutex_init(&bg->lock, NULL);
        pthread_cond_init(&bg->cond, NULL);
        st->bg = bg;
        if (pthread_create(&bg->thread, NULL, bg_main, st)) {
                pthread_mutex_destroy(&bg->lock);
                pthread_cond_destroy(&bg->cond);
                free(bg);
                st->bg = NULL;
                return -1;
        }
        return 0;
}

static void bg_stop(feat_store_t *st) {
        struct feat_store_bg *bg = st->bg;
        if (!bg)
                return;
        feat_store_write_end(st, NULL, 0); /* the last batch lands first */
        pthread_mutex_lock(&bg->lock);
        bg->stop = 1;
        pthread_cond_broadcast(&bg->cond);
        pthread_mutex_unlock(&bg->lock);
        pthread_join(bg->thread, NULL);
        pthread_mutex_destroy(&bg->lock);
        pthread_cond_destroy(&bg->cond);
        free(bg);
        st->bg = NULL;
}

tern_code_t feat_store_write_begin(feat_store_t *st, feat_batch_t *b,
                                   char *errstr, size_t errstr_size) {
        tern_code_t code;
        if (st->bg && st->bg->batch &&
            (code = feat_store_write_end(st, errstr, errstr_size)))
                return code;
        if (!st->bg && bg_start(st))
                return feat_store_write(st, b, errstr, errstr_size);
        pthread_mutex_lock(&st->bg->lock);
        st->bg->batch = b;
        st->bg->done = 0;
        pthread_cond_broadcast(&st->bg->cond);
        pthread_mutex_unlock(&st->bg->lock);
        return TERN_OK;
}

void feat_store_write_wait(feat_store_t *st) {
        struct feat_store_bg *bg = st->bg;
        if (!bg)
                return;
        pthread_mutex_lock(&bg->lock);
        while (bg->batch && !bg->done)
                pthread_cond_wait(&bg->cond, &bg->lock);
        pthread_mutex_unlock(&bg->lock);
}

tern_code_t feat_store_write_end(feat_store_t *st, char *errstr,
                                 size_t errstr_size) {
        struct feat_store_bg *bg = st->bg;
        char *rerr;
        if (!bg)
                return TERN_OK;
        feat_store_write_wait(st);
        pthread_mutex_lock(&bg->lock);
        rerr = bg->err;
        bg->err = NULL;
        bg->batch = NULL;
        pthread_mutex_unlock(&bg->lock);
        if (!rerr)
                return TERN_OK;
        st->write_failed = 1;
        return store_err(errstr, errstr_size, rerr, "state batch write");
}
