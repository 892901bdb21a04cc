/*
 * 0052-strpool: the pool for long-lived short strings (item ids, catalog
 * entries). Every string keeps its bytes while others come and go; a
 * freed slot is reused by the next string of its class, so a churn of
 * strings over a bounded live set stops taking slabs; strings past the
 * largest class come from malloc (ASan checks those are freed).
 */
/* TERN_TEST_LINK: tern_features */
#include "test.h"

#include <stdint.h>
#include <string.h>

#include "features/feat_strpool.h"

#define N_LIVE 5000

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

static void fill(held_t *h, feat_strpool_t *pool, size_t n) {
        h->n = n;
        h->fill = (uint8_t)rng_next();
        h->p = feat_strpool_alloc(pool, n);
        TEST_ASSERT(h->p != NULL, "alloc %zu", n);
        memset(h->p, h->fill, n);
}

static void check(const held_t *h) {
        for (size_t i = 0; i < h->n; i++)
                TEST_ASSERT((uint8_t)h->p[i] == h->fill,
                            "byte %zu of a %zu-byte string changed", i, h->n);
}

/* Sizes 1..2 x the largest class: most pooled, some malloc'ed. */
static size_t some_size(void) {
        return 1 + rng_next() % (2 * FEAT_STRPOOL_MAX);
}

static void churn_keeps_bytes_and_slabs(void) {
        static held_t live[N_LIVE];
        feat_strpool_t *pool = feat_strpool_new();
        size_t slabs_after_warmup = 0;
        TEST_ASSERT(pool != NULL, "new");
        TEST_EQ_INT(feat_strpool_bytes(pool), 0);
        for (int i = 0; i < N_LIVE; i++)
                fill(&live[i], pool, some_size());
        for (int round = 0; round < 40; round++) {
                for (int k = 0; k < N_LIVE / 2; k++) {
                        held_t *h = &live[rng_next() % N_LIVE];
                        check(h);
                        feat_strpool_free(pool, h->p, h->n);
                        fill(h, pool, some_size());
                }
                if (round == 9)
                        slabs_after_warmup = feat_strpool_bytes(pool);
        }
        for (int i = 0; i < N_LIVE; i++)
                check(&live[i]);
        /* The live set is bounded and freed slots are reused: after ten
         * rounds the pool grows only as the size mix drifts, not with
         * the 100,000 strings made since. */
        TEST_ASSERT(feat_strpool_bytes(pool) <= 2 * slabs_after_warmup,
                    "pool grew from %zu to %zu bytes", slabs_after_warmup,
                    feat_strpool_bytes(pool));
        for (int i = 0; i < N_LIVE; i += 2)
                feat_strpool_free(pool, live[i].p, live[i].n);
        for (int i = 1; i < N_LIVE; i += 2)
                if (live[i].n > FEAT_STRPOOL_MAX)
                        feat_strpool_free(pool, live[i].p, live[i].n);
        /* the rest go with the pool */
        feat_strpool_destroy(pool);
}

static void same_class_reuses_slot(void) {
        feat_strpool_t *pool = feat_strpool_new();
        char *a = feat_strpool_alloc(pool, 7);
        char *b;
        TEST_ASSERT(a != NULL, "alloc");
        TEST_ASSERT(((uintptr_t)a & 15) == 0, "16-byte aligned");
        feat_strpool_free(pool, a, 7);
        b = feat_strpool_alloc(pool, 16); /* same 16-byte class */
        TEST_ASSERT(a == b, "a freed slot is reused by its class");
        feat_strpool_free(pool, NULL, 5); /* a no-op */
        feat_strpool_free(pool, b, 16);
        feat_strpool_destroy(pool);
        feat_strpool_destroy(NULL);
}

TEST_MAIN(TEST_CASE(same_class_reuses_slot),
          TEST_CASE(churn_keeps_bytes_and_slabs));
