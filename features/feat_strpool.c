#include "feat_strpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define CLASS_BYTES 16
#define N_CLASSES   (FEAT_STRPOOL_MAX / CLASS_BYTES)
/* mmapped, so a slab never shares pages with malloc's chunks */
#define SLAB_BYTES (64u * 1024u)

typedef struct slab {
        struct slab *next;
} slab_t;

/* A free slot holds the next free slot of its class. */
typedef struct free_slot {
        struct free_slot *next;
} free_slot_t;

struct feat_strpool {
        slab_t *slabs;
        char *bump, *bump_end; /* the newest slab's unused tail */
        free_slot_t *free[N_CLASSES];
        size_t n_slabs;
};

feat_strpool_t *feat_strpool_new(void) {
        return calloc(1, sizeof(feat_strpool_t));
}

void feat_strpool_destroy(feat_strpool_t *pool) {
        if (!pool)
                return;
        for (slab_t *s = pool->slabs, *next; s; s = next) {
                next = s->next;
                munmap(s, SLAB_BYTES);
        }
        free(pool);
}

static size_t class_of(size_t n) {
        return (n + CLASS_BYTES - 1) / CLASS_BYTES - 1;
}

static int slab_add(feat_strpool_t *pool) {
        void *mem = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        slab_t *s;
        if (mem == MAP_FAILED)
                return -1;
        s = mem;
        s->next = pool->slabs;
        pool->slabs = s;
        pool->n_slabs++;
        /* slots start 16-byte aligned after the header */
        pool->bump = (char *)mem + CLASS_BYTES;
        pool->bump_end = (char *)mem + SLAB_BYTES;
        return 0;
}

void *feat_strpool_alloc(feat_strpool_t *pool, size_t n) {
        size_t c, bytes;
        void *p;
        if (!n || n > FEAT_STRPOOL_MAX)
                return malloc(n ? n : 1);
        c = class_of(n);
        if (pool->free[c]) {
                p = pool->free[c];
                pool->free[c] = pool->free[c]->next;
                return p;
        }
        bytes = (c + 1) * CLASS_BYTES;
        /* a full slab's tail (under FEAT_STRPOOL_MAX bytes) is left */
        if ((size_t)(pool->bump_end - pool->bump) < bytes && slab_add(pool))
                return NULL;
        p = pool->bump;
        pool->bump += bytes;
        return p;
}

void feat_strpool_free(feat_strpool_t *pool, void *p, size_t n) {
        free_slot_t *slot = p;
        size_t c;
        if (!p)
                return;
        if (!n || n > FEAT_STRPOOL_MAX) {
                free(p);
                return;
        }
        c = class_of(n);
        slot->next = pool->free[c];
        pool->free[c] = slot;
}

size_t feat_strpool_bytes(const feat_strpool_t *pool) {
        return pool->n_slabs * SLAB_BYTES;
}
