/*
 * tern_pool — objects that live long (seconds to hours) and are made and
 * dropped by one thread, kept out of malloc's arenas.
 *
 * Why: the loop's arena also takes RocksDB's data blocks (~4 KiB each,
 * thousands a second when the block cache is smaller than the working
 * set). An object malloc'ed among them lives for minutes, and the free
 * chunk beside it cannot merge with its free neighbour, so the arena's
 * free memory grows though the bytes in use do not. Some land in the
 * other arena: the loop frees chunks other threads allocated there,
 * glibc's per-thread cache hands them to the loop's next malloc of that
 * size, and one object left in such a chunk keeps that arena's free
 * memory from going back. A heap walk of a 1,500 events/s soak
 * (tests/tools/tern_heapwalk.c) found the free chunks of both arenas
 * beside the loop's long-kept objects: item ids, catalog entries, top
 * lists, users, churn records and nodes, pending impressions.
 *
 * Here they sit in 64 KiB mmapped slabs of their own, each slab of one
 * class: 16 bytes up to 256, four per doubling above (320, 384, ...
 * 8192). A freed slot is reused by the next object of its class, the
 * slab with room most recently freed into first; a slab whose slots have
 * all come back goes back to the system (a few are kept for reuse). So a
 * churn over a bounded live set stops taking slabs, and when the size
 * mix moves on (users' bodies grow from their first sizes to their
 * lists' limits) the sizes no longer asked for give their memory back.
 * A first version kept every slab: a 1,500 events/s soak held 99 MiB of
 * slabs at 20 minutes, still growing, for ~50 MiB of objects. Larger
 * objects come from malloc.
 *
 * Ownership: the pool owns its slabs; an object lives until it is freed
 * with the size it was allocated with, or the pool is destroyed. Not
 * thread-safe: a pool belongs to one thread. Under AddressSanitizer a
 * free slot is poisoned, so a use after free is reported until the slot
 * is reused (no quarantine), and the slabs are LeakSanitizer roots; an
 * overflow into a slot's rounding is not seen. A NULL pool is malloc
 * (tools and tests that keep a few objects).
 *
 * TERN_POOLS=off in the environment at tern_pool_new makes that pool
 * malloc's: for comparing the two in a soak on one build.
 */
#ifndef TERN_POOL_H
#define TERN_POOL_H

#include <stddef.h>

/* Bytes; larger objects are malloc'ed. A user at the default list limits
 * is 4-6 KiB: with 4 KiB here their bodies stayed among RocksDB's blocks
 * and the main arena grew again (4.7 MiB in 10 minutes of the soak). */
#define TERN_POOL_MAX 8192

typedef struct tern_pool tern_pool_t;

tern_pool_t *tern_pool_new(void);
void tern_pool_destroy(tern_pool_t *pool);

/* n bytes (n >= 1), 16-byte aligned; NULL: no memory. */
void *tern_pool_alloc(tern_pool_t *pool, size_t n);
/* The same, zeroed. */
void *tern_pool_calloc(tern_pool_t *pool, size_t n);
/* p from tern_pool_alloc with the same n (at least on the same side of
 * TERN_POOL_MAX: a slot's slab knows its class); NULL is a no-op. */
void tern_pool_free(tern_pool_t *pool, void *p, size_t n);

/* The bytes an object of n bytes takes: its class's slot (n itself when
 * malloc'ed), so a cache bounded in bytes counts the rounding. */
size_t tern_pool_slot_bytes(const tern_pool_t *pool, size_t n);

/* Bytes the pool holds from the system (its slabs, the empty ones kept
 * included), and the bytes of its objects in slots (rounded up to their
 * classes); not the malloc'ed. */
size_t tern_pool_bytes(const tern_pool_t *pool);
size_t tern_pool_used(const tern_pool_t *pool);
/* The slabs of every pool in the process; any thread may ask. */
size_t tern_pool_all_bytes(void);

#endif
