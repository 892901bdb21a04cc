/*
 * feat_catalog — each item's latest category, for category boosts: the
 * ranking sees candidate items only by id, the events tell their category.
 *
 * Every applied event with an item and a category records that category
 * for the item (the latest event wins). The map lives in memory (one hash
 * lookup per event, no RocksDB read) and is persisted in the meta column
 * family under "cat\0" + item_id -> [u8 version=1][category bytes], written
 * by a feature-engine writer in the commit's WriteBatch (only items whose
 * category changed in the batch).
 *
 * BOUND: memory holds at most max_items entries after each commit
 * (state.max_cached_items; a batch may add its new items on top until it
 * commits). Past it, right after a commit -- when every entry is in the
 * store -- the least recently seen are dropped down to 7/8 of the bound
 * (so the sort behind it runs once per max_items/8 new items). The store
 * keeps them all: once anything was dropped (or the store held more than
 * fit at load), feat_catalog_get() reads a category it does not hold
 * from the store and keeps it, so category boosts stay exact; the cost is
 * one RocksDB read per lookup of an item memory does not hold, and only
 * while a category boost exists (rt_control asks only then). The store's
 * map itself is not bounded: one small record per item ever seen.
 *
 * Ownership: the catalog copies ids; a category returned by
 * feat_catalog_get() borrows catalog memory until the next observe or
 * get. Not thread safe (the pipeline's thread).
 */
#ifndef FEAT_CATALOG_H
#define FEAT_CATALOG_H

#include <stdint.h>

#include "../common/tern_err.h"
#include "feat_engine.h"
#include "feat_store.h"

#define FEAT_CATALOG_MAX_ID 1024 /* longer item or category ids are skipped */

typedef struct feat_catalog feat_catalog_t;

/* Loads the stored map (up to max_items entries; 0: no bound) and
 * registers the commit writer with eng (eng may be NULL: a read-only
 * catalog for inspection). */
feat_catalog_t *feat_catalog_new(feat_store_t *st, feat_engine_t *eng,
                                 uint64_t max_items, char *errstr,
                                 size_t errstr_size);
void feat_catalog_destroy(feat_catalog_t *c);

void feat_catalog_observe(feat_catalog_t *c, const char *item, uint32_t len,
                          const char *category, uint32_t clen);
/* NULL when the item's category is unknown (or the store read failed:
 * feat_catalog_stats().read_errors). */
const char *feat_catalog_get(feat_catalog_t *c, const char *item, uint32_t len,
                             uint32_t *clen);

typedef struct feat_catalog_stats {
        uint64_t size;        /* entries in memory */
        uint64_t evicted;     /* entries dropped from memory, ever */
        uint64_t store_reads; /* lookups memory could not answer */
        uint64_t read_errors; /* ... of which the store read failed */
} feat_catalog_stats_t;
void feat_catalog_stats(const feat_catalog_t *c, feat_catalog_stats_t *out);

#endif
