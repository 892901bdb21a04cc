/*
 * 0052-pool: the pool for the loop's long-lived objects (item ids,
 * catalog entries, top lists, users, churn records). Every object keeps
 * its bytes while others come and go; a freed slot is reused by the next
 * object of its class, so a churn over a bounded live set stops taking
 * slabs; a class is at most a quarter above the size asked for; objects
 * past the largest class come from malloc (ASan checks those are freed).
 */
/* TERN_TEST_LINK: tern_common */
#include "test.h"

#include <stdint.h>
#include <string.h>

#include "common/tern_pool.h"

#define N_LIVE 3000

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

typedef struct {
        char *p;
        size_t n;
        uint8_t fill;
} held_t;

static void fill(held_t *h, tern_pool_t *pool, size_t n) {
        h->n = n;
        h->fill = (uint8_t)rng_next();
        h->p = tern_pool_alloc(pool, n);
        TEST_ASSERT(h->p != NULL, "alloc %zu", n);
        memset(h->p, h->fill, n);
}

static void check(const held_t *h) {
        for (size_t i = 0; i < h->n; i++)
                TEST_ASSERT((uint8_t)h->p[i] == h->fill,
                            "byte %zu of a %zu-byte object changed", i, h->n);
}

/* Sizes 1..2 x the largest class: most pooled, some malloc'ed. */
static size_t some_size(void) {
        return 1 + rng_next() % (2 * TERN_POOL_MAX);
}

static void churn_keeps_bytes_and_slabs(void) {
        static held_t live[N_LIVE];
        tern_pool_t *pool = tern_pool_new();
        size_t slabs_after_warmup = 0;
        TEST_ASSERT(pool != NULL, "new");
        TEST_EQ_INT(tern_pool_bytes(pool), 0);
        for (int i = 0; i < N_LIVE; i++)
                fill(&live[i], pool, some_size());
        for (int round = 0; round < 40; round++) {
                for (int k = 0; k < N_LIVE / 2; k++) {
                        held_t *h = &live[rng_next() % N_LIVE];
                        check(h);
                        tern_pool_free(pool, h->p, h->n);
                        fill(h, pool, some_size());
                }
                if (round == 9)
                        slabs_after_warmup = tern_pool_bytes(pool);
        }
        for (int i = 0; i < N_LIVE; i++)
                check(&live[i]);
        /* The live set is bounded and freed slots are reused: after ten
         * rounds the pool grows only as the size mix drifts, not with
         * the 60,000 objects made since. */
        TEST_ASSERT(tern_pool_bytes(pool) <= 2 * slabs_after_warmup,
                    "pool grew from %zu to %zu bytes", slabs_after_warmup,
                    tern_pool_bytes(pool));
        for (int i = 0; i < N_LIVE; i += 2)
                tern_pool_free(pool, live[i].p, live[i].n);
        for (int i = 1; i < N_LIVE; i += 2)
                if (live[i].n > TERN_POOL_MAX)
                        tern_pool_free(pool, live[i].p, live[i].n);
        /* the rest go with the pool */
        tern_pool_destroy(pool);
}

/* Every size gets an aligned slot of its own, at most a quarter (or 15
 * bytes) larger than asked; the bytes handed out are counted. */
static void classes_fit(void) {
        tern_pool_t *pool = tern_pool_new();
        size_t used = 0;
        for (size_t n = 1; n <= TERN_POOL_MAX; n++) {
                char *p = tern_pool_alloc(pool, n);
                size_t slot;
                TEST_ASSERT(p != NULL, "alloc %zu", n);
                TEST_ASSERT(((uintptr_t)p & 15) == 0, "%zu: 16-byte aligned",
                            n);
                memset(p, 0xA5, n);
                slot = tern_pool_used(pool) - used;
                TEST_ASSERT(slot >= n && (slot <= n + 15 || slot * 4 <= n * 5),
                            "%zu bytes got a %zu-byte slot", n, slot);
                used = tern_pool_used(pool);
                tern_pool_free(pool, p, n);
                TEST_EQ_INT(tern_pool_used(pool), used - slot);
                used -= slot;
        }
        TEST_ASSERT(tern_pool_bytes(pool) > 0, "slabs taken");
        tern_pool_destroy(pool);
}

static void calloc_zeroes(void) {
        tern_pool_t *pool = tern_pool_new();
        unsigned char *p = tern_pool_alloc(pool, 600);
        memset(p, 0xFF, 600);
        tern_pool_free(pool, p, 600);
        p = tern_pool_calloc(pool, 600); /* the same slot, zeroed */
        for (int i = 0; i < 600; i++)
                TEST_ASSERT(p[i] == 0, "byte %d zeroed", i);
        tern_pool_free(pool, p, 600);
        tern_pool_destroy(pool);
}

static void same_class_reuses_slot(void) {
        tern_pool_t *pool = tern_pool_new();
        char *a = tern_pool_alloc(pool, 7);
        char *b;
        TEST_ASSERT(a != NULL, "alloc");
        TEST_ASSERT(((uintptr_t)a & 15) == 0, "16-byte aligned");
        tern_pool_free(pool, a, 7);
        b = tern_pool_alloc(pool, 16); /* same 16-byte class */
        TEST_ASSERT(a == b, "a freed slot is reused by its class");
        tern_pool_free(pool, NULL, 5); /* a no-op */
        tern_pool_free(pool, b, 16);
        tern_pool_destroy(pool);
        tern_pool_destroy(NULL);
}

TEST_MAIN(TEST_CASE(same_class_reuses_slot), TEST_CASE(classes_fit),
          TEST_CASE(calloc_zeroes), TEST_CASE(churn_keeps_bytes_and_slabs));
