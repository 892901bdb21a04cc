#include "tern_pool.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang's way of saying it */
#define TERN_POOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) /* gcc's */
#define TERN_POOL_ASAN 1
#endif

#ifdef TERN_POOL_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* LeakSanitizer does not scan mmapped memory: a malloc'ed block that
 * only a pooled object points to (a large user body) would look leaked */
#define ROOT(p, n)   __lsan_register_root_region((p), (n))
#define UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define ROOT(p, n)     ((void)(p), (void)(n))
#define UNROOT(p, n)   ((void)(p), (void)(n))
#endif

#define SMALL_STEP 16
#define SMALL_MAX  256 /* 16-byte classes up to here */
#define N_SMALL    (SMALL_MAX / SMALL_STEP)
#define PER_DOUBLE 4 /* classes per doubling above SMALL_MAX */
#define N_CLASSES  (N_SMALL + 4 * PER_DOUBLE) /* 256 -> 4096: 4 doublings */
/* mmapped, so a slab never shares pages with malloc's chunks */
#define SLAB_BYTES (64u * 1024u)

typedef struct slab {
        struct slab *next;
} slab_t;

/* A free slot holds the next free slot of its class. */
typedef struct free_slot {
        struct free_slot *next;
} free_slot_t;

/* every pool's slabs, for the memory figures of other threads */
static _Atomic size_t all_pools_bytes;

struct tern_pool {
        slab_t *slabs;
        char *bump, *bump_end; /* the newest slab's unused tail */
        free_slot_t *free[N_CLASSES];
        size_t n_slabs;
        size_t used; /* bytes of the slots handed out */
};

tern_pool_t *tern_pool_new(void) {
        return calloc(1, sizeof(tern_pool_t));
}

void tern_pool_destroy(tern_pool_t *pool) {
        if (!pool)
                return;
        for (slab_t *s = pool->slabs, *next; s; s = next) {
                UNPOISON(s, SLAB_BYTES);
                UNROOT(s, SLAB_BYTES);
                next = s->next;
                munmap(s, SLAB_BYTES);
        }
        atomic_fetch_sub_explicit(&all_pools_bytes, pool->n_slabs * SLAB_BYTES,
                                  memory_order_relaxed);
        free(pool);
}

/* The class of n (1 <= n <= TERN_POOL_MAX) and its slot size. */
static size_t class_of(size_t n, size_t *bytes) {
        unsigned b;
        size_t step, k;
        if (n <= SMALL_MAX) {
                k = (n + SMALL_STEP - 1) / SMALL_STEP;
                *bytes = k * SMALL_STEP;
                return k - 1;
        }
        b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
        /* 2^b < n <= 2^(b+1), b >= 8 */
        step = (size_t)1 << (b - 2);
        k = (n - 1 - ((size_t)1 << b)) / step;
        *bytes = ((size_t)1 << b) + (k + 1) * step;
        return N_SMALL + (size_t)(b - 8) * PER_DOUBLE + k;
}

static int slab_add(tern_pool_t *pool) {
        void *mem = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        slab_t *s;
        if (mem == MAP_FAILED)
                return -1;
        ROOT(mem, SLAB_BYTES);
        s = mem;
        s->next = pool->slabs;
        pool->slabs = s;
        pool->n_slabs++;
        atomic_fetch_add_explicit(&all_pools_bytes, SLAB_BYTES,
                                  memory_order_relaxed);
        /* slots start 16-byte aligned after the header */
        pool->bump = (char *)mem + SMALL_STEP;
        pool->bump_end = (char *)mem + SLAB_BYTES;
        POISON(pool->bump, (size_t)(pool->bump_end - pool->bump));
        return 0;
}

void *tern_pool_alloc(tern_pool_t *pool, size_t n) {
        size_t c, bytes;
        void *p;
        if (!pool || !n || n > TERN_POOL_MAX)
                return malloc(n ? n : 1);
        c = class_of(n, &bytes);
        if (pool->free[c]) {
                p = pool->free[c];
                UNPOISON(p, bytes);
                pool->free[c] = pool->free[c]->next;
        } else {
                /* a full slab's tail (under one slot) is left unused */
                if ((size_t)(pool->bump_end - pool->bump) < bytes &&
                    slab_add(pool))
                        return NULL;
                p = pool->bump;
                pool->bump += bytes;
                UNPOISON(p, bytes);
        }
        pool->used += bytes;
        return p;
}

void *tern_pool_calloc(tern_pool_t *pool, size_t n) {
        void *p;
        if (!pool)
                return calloc(1, n ? n : 1);
        p = tern_pool_alloc(pool, n);
        if (p)
                memset(p, 0, n ? n : 1);
        return p;
}

void tern_pool_free(tern_pool_t *pool, void *p, size_t n) {
        free_slot_t *slot = p;
        size_t c, bytes;
        if (!p)
                return;
        if (!pool || !n || n > TERN_POOL_MAX) {
                free(p);
                return;
        }
        c = class_of(n, &bytes);
        slot->next = pool->free[c];
        pool->free[c] = slot;
        pool->used -= bytes;
        POISON(p, bytes);
}

size_t tern_pool_bytes(const tern_pool_t *pool) {
        return pool ? pool->n_slabs * SLAB_BYTES : 0;
}

size_t tern_pool_used(const tern_pool_t *pool) {
        return pool ? pool->used : 0;
}

size_t tern_pool_all_bytes(void) {
        return atomic_load_explicit(&all_pools_bytes, memory_order_relaxed);
}
