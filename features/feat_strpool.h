/*
 * feat_strpool — short strings that live long (interned item ids, the
 * catalog's entries), kept out of malloc's arenas.
 *
 * Why: the loop's arena also takes RocksDB's data blocks (~4 KiB each,
 * thousands a second when the block cache is smaller than the working
 * set) and users' bodies. An id malloc'ed among them lives for minutes or
 * for good, and the free chunk beside it cannot merge with its free
 * neighbour. Some even land in the other arena: the loop frees chunks
 * that other threads allocated there, glibc's per-thread cache hands
 * them to the loop's next malloc of that size, and one id left in such
 * a chunk keeps that arena's free memory from going back. A heap walk of
 * a 1,500 events/s soak found 37-67% of the free bytes (chunks of 1 KiB
 * and more) of both arenas beside interned item ids and catalog entries.
 * Here they sit in slabs of their own: slots in 16-byte classes up to
 * FEAT_STRPOOL_MAX bytes, a freed slot reused by the next string of its
 * class. Longer strings, rare, still come from malloc.
 *
 * Ownership: the pool owns its slabs; a string lives until it is freed
 * or the pool is destroyed. Not thread-safe (the loop's own).
 */
#ifndef FEAT_STRPOOL_H
#define FEAT_STRPOOL_H

#include <stddef.h>

#define FEAT_STRPOOL_MAX 128 /* bytes; longer strings are malloc'ed */

typedef struct feat_strpool feat_strpool_t;

feat_strpool_t *feat_strpool_new(void);
void feat_strpool_destroy(feat_strpool_t *pool);

/* n bytes (n >= 1); NULL: no memory. */
void *feat_strpool_alloc(feat_strpool_t *pool, size_t n);
/* p from feat_strpool_alloc with the same n; NULL is a no-op. */
void feat_strpool_free(feat_strpool_t *pool, void *p, size_t n);

/* Bytes the pool holds from the system (its slabs). */
size_t feat_strpool_bytes(const feat_strpool_t *pool);

#endif
