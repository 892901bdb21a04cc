/*
 * feat_catalog — each item's latest category, for category boosts: the
 * ranking sees candidate items only by id, the events tell their category.
 *
 * Every applied event with an item and a category records that category
 * for the item (the latest event wins). The map lives in memory (one hash
 * lookup per event, no RocksDB read) and is persisted in the meta column
 * family under "cat\0" + item_id -> [u8 version=1][category bytes], written
 * by a feature-engine writer in the commit's WriteBatch (only items whose
 * category changed in the batch). feat_catalog_new() loads it all.
 *
 * Ownership: the catalog copies ids; a category returned by
 * feat_catalog_get() borrows catalog memory until the next observe.
 * Not thread safe (the pipeline's thread).
 */
#ifndef FEAT_CATALOG_H
#define FEAT_CATALOG_H

#include <stdint.h>

#include "../common/tern_err.h"
#include "feat_engine.h"
#include "feat_store.h"

#define FEAT_CATALOG_MAX_ID 1024 /* longer item or category ids are skipped */

typedef struct feat_catalog feat_catalog_t;

/* Loads the stored map and registers the commit writer with eng (eng may
 * be NULL: a read-only catalog for inspection). */
feat_catalog_t *feat_catalog_new(feat_store_t *st, feat_engine_t *eng,
                                 char *errstr, size_t errstr_size);
void feat_catalog_destroy(feat_catalog_t *c);

void feat_catalog_observe(feat_catalog_t *c, const char *item, uint32_t len,
                          const char *category, uint32_t clen);
/* NULL when the item's category is unknown. */
const char *feat_catalog_get(const feat_catalog_t *c, const char *item,
                             uint32_t len, uint32_t *clen);
uint64_t feat_catalog_size(const feat_catalog_t *c);

#endif
