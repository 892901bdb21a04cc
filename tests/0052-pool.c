/*
 * 0052-pool: the pool for the loop's long-lived objects (item ids,
 * catalog entries, top lists, users, churn records). Every object keeps
 * its bytes while others come and go; a freed slot is reused by the next
 * object of its class, so a churn over a bounded live set stops taking
 * slabs, and a slab whose slots all came back is returned; a class is at
 * most a quarter above the size asked for; objects past the largest
 * class come from malloc (ASan checks those are freed).
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

/* Slabs whose slots have all come back go back to the system (a few
 * are kept for reuse): when the size mix moves on, as users' bodies grow
 * from their first sizes to their lists' limits, the memory of the
 * sizes no longer asked for does not stay with the pool. */
static void empty_slabs_go_back(void) {
        enum { N = 20000 };
        static char *small[N], *large[N / 10];
        tern_pool_t *pool = tern_pool_new();
        size_t peak;
        for (int i = 0; i < N; i++) {
                small[i] = tern_pool_alloc(pool, 48);
                TEST_ASSERT(small[i] != NULL, "alloc");
                memset(small[i], 1, 48);
        }
        peak = tern_pool_bytes(pool);
        TEST_ASSERT(peak >= (size_t)N * 48, "%zu bytes for %d x 48", peak, N);
        /* every slot but one in ten back: slabs stay (one live slot each
         * at worst), then the rest go too */
        for (int i = 0; i < N; i++)
                if (i % 10)
                        tern_pool_free(pool, small[i], 48);
        for (int i = 0; i < N / 10; i++) {
                large[i] = tern_pool_alloc(pool, 400);
                memset(large[i], 2, 400);
        }
        for (int i = 0; i < N; i += 10) {
                TEST_ASSERT(small[i][0] == 1 && small[i][47] == 1, "kept");
                tern_pool_free(pool, small[i], 48);
        }
        /* what is left: the large slots' slabs and at most 4 empty ones */
        TEST_ASSERT(tern_pool_bytes(pool) <=
                        ((size_t)N / 10 * 448 / 65000 + 2 + 4) * 65536,
                    "%zu bytes left (peak %zu)", tern_pool_bytes(pool), peak);
        TEST_EQ_INT(tern_pool_used(pool), (size_t)N / 10 * 448);
        TEST_EQ_INT(tern_pool_all_bytes(), tern_pool_bytes(pool));
        for (int i = 0; i < N / 10; i++) {
                TEST_ASSERT(large[i][0] == 2 && large[i][399] == 2, "kept");
                tern_pool_free(pool, large[i], 400);
        }
        TEST_EQ_INT(tern_pool_used(pool), 0);
        TEST_ASSERT(tern_pool_bytes(pool) <= 4 * 65536, "%zu bytes",
                    tern_pool_bytes(pool));
        tern_pool_destroy(pool);
        TEST_EQ_INT(tern_pool_all_bytes(), 0);
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

/* What a bound in bytes counts: the slot, or malloc's n. */
static void slot_bytes_are_the_class(void) {
        tern_pool_t *pool = tern_pool_new();
        TEST_EQ_INT(tern_pool_slot_bytes(pool, 7), 16);
        TEST_EQ_INT(tern_pool_slot_bytes(pool, 257), 320);
        TEST_EQ_INT(tern_pool_slot_bytes(pool, 4100), 5120);
        TEST_EQ_INT(tern_pool_slot_bytes(pool, TERN_POOL_MAX + 1),
                    TERN_POOL_MAX + 1);
        TEST_EQ_INT(tern_pool_slot_bytes(NULL, 7), 7);
        for (size_t n = 1; n <= TERN_POOL_MAX; n += 37) {
                size_t used = tern_pool_used(pool);
                char *p = tern_pool_alloc(pool, n);
                TEST_EQ_INT(tern_pool_used(pool) - used,
                            tern_pool_slot_bytes(pool, n));
                tern_pool_free(pool, p, n);
        }
        tern_pool_destroy(pool);
}

/* TERN_POOLS=off: the same calls, all of them malloc's (a soak's A/B). */
static void off_is_malloc(void) {
        tern_pool_t *pool;
        char *p[100];
        setenv("TERN_POOLS", "off", 1);
        pool = tern_pool_new();
        unsetenv("TERN_POOLS");
        TEST_ASSERT(pool != NULL, "new");
        for (int i = 0; i < 100; i++) {
                p[i] = tern_pool_calloc(pool, 1 + (size_t)i * 50);
                TEST_ASSERT(p[i] != NULL && p[i][(size_t)i * 50] == 0,
                            "calloc %d", i);
        }
        TEST_EQ_INT(tern_pool_bytes(pool), 0);
        TEST_EQ_INT(tern_pool_slot_bytes(pool, 7), 7);
        for (int i = 0; i < 100; i++)
                tern_pool_free(pool, p[i], 1 + (size_t)i * 50);
        tern_pool_destroy(pool);
}

TEST_MAIN(TEST_CASE(same_class_reuses_slot),
          TEST_CASE(slot_bytes_are_the_class), TEST_CASE(off_is_malloc),
          TEST_CASE(classes_fit), TEST_CASE(calloc_zeroes),
          TEST_CASE(empty_slabs_go_back),
          TEST_CASE(churn_keeps_bytes_and_slabs));
