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
#define N_CLASSES  (N_SMALL + 5 * PER_DOUBLE) /* 256 -> 8192: 5 doublings */
/* mmapped and aligned to its size, so a slot finds its slab by masking
 * and a slab never shares pages with malloc's chunks */
#define SLAB_BYTES (64u * 1024u)
/* empty slabs kept for reuse rather than unmapped at once: a class whose
 * last slot comes and goes does not map and unmap a slab each time */
#define MAX_EMPTY 4

/* A free slot holds the next free slot of its slab. */
typedef struct free_slot {
        struct free_slot *next;
} free_slot_t;

/* The head of a slab; its slots, all of one class, follow. */
typedef struct slab {
        struct slab *prev, *next;         /* its class's slabs with room */
        struct slab *all_prev, *all_next; /* every slab of the pool */
        free_slot_t *free;                /* freed slots */
        char *bump;      /* slots from here on were never handed out */
        uint32_t n_live; /* slots handed out and not freed */
        uint16_t cls;
        uint8_t has_room; /* in its class's list */
} slab_t;

#define SLOTS_AT (((sizeof(slab_t) + SMALL_STEP - 1) / SMALL_STEP) * SMALL_STEP)

/* every pool's slabs, for the memory figures of other threads */
static _Atomic size_t all_pools_bytes;

struct tern_pool {
        int malloc_only;         /* TERN_POOLS=off: every object from malloc */
        slab_t *room[N_CLASSES]; /* slabs with a free slot, per class */
        slab_t *all;
        slab_t *empty; /* up to MAX_EMPTY empty slabs, by .next */
        size_t n_empty;
        size_t n_slabs; /* mapped, the empty ones included */
        size_t used;    /* bytes of the slots handed out */
};

/* Objects a pool leaves to malloc: all of them when it is off, and those
 * too large for a class. */
static int from_malloc(const tern_pool_t *pool, size_t n) {
        return !pool || pool->malloc_only || !n || n > TERN_POOL_MAX;
}

static int pools_off(void) {
        const char *e = getenv("TERN_POOLS");
        return e && (!strcmp(e, "off") || !strcmp(e, "0"));
}

tern_pool_t *tern_pool_new(void) {
        tern_pool_t *pool = calloc(1, sizeof(tern_pool_t));
        if (pool)
                pool->malloc_only = pools_off();
        return pool;
}

static void slab_unmap(tern_pool_t *pool, slab_t *s) {
        UNPOISON(s, SLAB_BYTES);
        UNROOT(s, SLAB_BYTES);
        munmap(s, SLAB_BYTES);
        pool->n_slabs--;
        atomic_fetch_sub_explicit(&all_pools_bytes, SLAB_BYTES,
                                  memory_order_relaxed);
}

void tern_pool_destroy(tern_pool_t *pool) {
        if (!pool)
                return;
        for (slab_t *s = pool->all, *next; s; s = next) {
                next = s->all_next;
                slab_unmap(pool, s);
        }
        for (slab_t *s = pool->empty, *next; s; s = next) {
                next = s->next;
                slab_unmap(pool, s);
        }
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

static size_t class_bytes(size_t c) {
        size_t bytes;
        if (c < N_SMALL)
                return (c + 1) * SMALL_STEP;
        /* the largest size of class c */
        c -= N_SMALL;
        bytes = (size_t)256 << (c / PER_DOUBLE);
        return bytes + (c % PER_DOUBLE + 1) * (bytes / PER_DOUBLE);
}

/* SLAB_BYTES of address space aligned to SLAB_BYTES: map twice that and
 * hand the ends back. */
static void *map_aligned(void) {
        char *mem = mmap(NULL, 2 * (size_t)SLAB_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uintptr_t at;
        size_t head;
        if (mem == MAP_FAILED)
                return NULL;
        at = ((uintptr_t)mem + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
        head = at - (uintptr_t)mem;
        if (head)
                munmap(mem, head);
        munmap((char *)at + SLAB_BYTES, SLAB_BYTES - head);
        return (void *)at;
}

static void room_push(tern_pool_t *pool, slab_t *s) {
        s->prev = NULL;
        s->next = pool->room[s->cls];
        if (s->next)
                s->next->prev = s;
        pool->room[s->cls] = s;
        s->has_room = 1;
}

static void room_remove(tern_pool_t *pool, slab_t *s) {
        if (s->prev)
                s->prev->next = s->next;
        else
                pool->room[s->cls] = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->prev = s->next = NULL;
        s->has_room = 0;
}

/* An empty slab for class c, listed with room; NULL: no memory. */
static slab_t *slab_get(tern_pool_t *pool, size_t c) {
        slab_t *s = pool->empty;
        if (s) {
                pool->empty = s->next;
                pool->n_empty--;
        } else {
                if (!(s = map_aligned()))
                        return NULL;
                ROOT(s, SLAB_BYTES);
                POISON((char *)s + SLOTS_AT, SLAB_BYTES - SLOTS_AT);
                pool->n_slabs++;
                atomic_fetch_add_explicit(&all_pools_bytes, SLAB_BYTES,
                                          memory_order_relaxed);
        }
        s->free = NULL;
        s->bump = (char *)s + SLOTS_AT;
        s->n_live = 0;
        s->cls = (uint16_t)c;
        s->all_prev = NULL;
        s->all_next = pool->all;
        if (pool->all)
                pool->all->all_prev = s;
        pool->all = s;
        room_push(pool, s);
        return s;
}

/* Its last slot came back: kept for reuse, or unmapped. */
static void slab_put(tern_pool_t *pool, slab_t *s) {
        if (s->has_room)
                room_remove(pool, s);
        if (s->all_prev)
                s->all_prev->all_next = s->all_next;
        else
                pool->all = s->all_next;
        if (s->all_next)
                s->all_next->all_prev = s->all_prev;
        if (pool->n_empty >= MAX_EMPTY) {
                slab_unmap(pool, s);
                return;
        }
        POISON((char *)s + SLOTS_AT, SLAB_BYTES - SLOTS_AT);
        s->next = pool->empty;
        pool->empty = s;
        pool->n_empty++;
}

static int slab_full(const slab_t *s, size_t bytes) {
        return !s->free &&
               (size_t)((const char *)s + SLAB_BYTES - s->bump) < bytes;
}

void *tern_pool_alloc(tern_pool_t *pool, size_t n) {
        size_t c, bytes;
        slab_t *s;
        void *p;
        if (from_malloc(pool, n))
                return malloc(n ? n : 1);
        c = class_of(n, &bytes);
        if (!(s = pool->room[c]) && !(s = slab_get(pool, c)))
                return NULL;
        if (s->free) {
                p = s->free;
                UNPOISON(p, bytes);
                s->free = s->free->next;
        } else {
                p = s->bump;
                s->bump += bytes;
                UNPOISON(p, bytes);
        }
        s->n_live++;
        if (slab_full(s, bytes))
                room_remove(pool, s);
        pool->used += bytes;
        return p;
}

void *tern_pool_calloc(tern_pool_t *pool, size_t n) {
        void *p;
        if (!pool || pool->malloc_only)
                return calloc(1, n ? n : 1);
        p = tern_pool_alloc(pool, n);
        if (p)
                memset(p, 0, n ? n : 1);
        return p;
}

void tern_pool_free(tern_pool_t *pool, void *p, size_t n) {
        free_slot_t *slot = p;
        slab_t *s;
        size_t bytes;
        if (!p)
                return;
        if (from_malloc(pool, n)) {
                free(p);
                return;
        }
        /* the slab knows its class: n only tells a slot from malloc's */
        s = (slab_t *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
        bytes = class_bytes(s->cls);
        slot->next = s->free;
        s->free = slot;
        POISON(p, bytes);
        pool->used -= bytes;
        if (--s->n_live == 0)
                slab_put(pool, s);
        else if (!s->has_room)
                room_push(pool, s);
}

size_t tern_pool_slot_bytes(const tern_pool_t *pool, size_t n) {
        size_t bytes;
        if (from_malloc(pool, n))
                return n;
        class_of(n, &bytes);
        return bytes;
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
