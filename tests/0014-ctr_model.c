/*
 * 0014-ctr_model: the pure pieces of the CTR model — the feature hash
 * (golden values: changing it would silently invalidate every stored
 * model), FTRL-Proximal against a two-step example worked by hand, exact
 * persistence of pages, header and metrics, learning on a synthetic
 * stream, AUC from bins against an exact computation, the features of a
 * known event, cross parsing, and a micro-benchmark that only prints.
 */
/* TERN_TEST_LINK: tern_models */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../models/model_ctr.h"
#include "../models/model_ftrl.h"
#include "../models/model_hash.h"
#include "../models/model_metrics.h"
#include "test.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

static uint64_t rng_state;
static uint64_t rng_next(void) { /* splitmix64 */
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}
static double rng_unit(void) {
        return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}
static double rng_normal(void) {
        double u = rng_unit(), v = rng_unit();
        return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static int same_bits(double a, double b) {
        return memcmp(&a, &b, sizeof(a)) == 0;
}

/* ---- hashing ---- */

static void hash_golden(void) {
        uint8_t b[256];
        for (int i = 0; i < 256; i++)
                b[i] = (uint8_t)i;
        /* MurmurHash64A (checked against Appleby's reference code and the
         * Python in model_hash.h). */
        TEST_ASSERT(model_hash64("", 0, 0) == 0ULL);
        TEST_ASSERT(model_hash64("a", 1, 0) == 0x071717d2d36b6b11ULL);
        TEST_ASSERT(model_hash64("abcdefgh", 8, 0) == 0xafdb0257ff41aa98ULL);
        TEST_ASSERT(model_hash64("abcdefghi", 9, 0) == 0xc9b9d84356146ac2ULL);
        TEST_ASSERT(model_hash64("hello world", 11, 42) ==
                    0x58ec590127de6711ULL);
        TEST_ASSERT(model_hash64(b, 256, MODEL_HASH_SEED) ==
                    0xc0290a43851e718eULL);
        TEST_EQ_INT(model_hash_feature("user", 4, "u1", 2, 20), 874321);
        TEST_EQ_INT(model_hash_feature("user", 4, "u1", 2, 32), 504190801);
        TEST_EQ_INT(model_hash_feature("bias", 4, "", 0, 20), 216857);
        TEST_EQ_INT(model_hash_context("placement", 9, "top", 3, 20), 134838);
        TEST_EQ_INT(
            model_hash_cross("user", 4, "u1", 2, "category", 8, "c9", 2, 20),
            550954);
}

/* Long pieces go through the incremental hasher, short ones through a
 * copy: both must equal the hash of the concatenation, at every length
 * and split (block boundaries inside and between pieces). */
static void hash_pieces_equal_concatenation(void) {
        char field[300], value[300], cat[700];
        for (int i = 0; i < 300; i++) {
                field[i] = (char)('a' + i % 26);
                value[i] = (char)(i * 7);
        }
        for (size_t fl = 0; fl < 300; fl += 13) {
                for (size_t vl = 0; vl < 300; vl += 7) {
                        uint64_t h;
                        memcpy(cat, field, fl);
                        cat[fl] = 0x1f;
                        memcpy(cat + fl + 1, value, vl);
                        h = model_hash64(cat, fl + 1 + vl, MODEL_HASH_SEED);
                        TEST_ASSERT(model_hash_feature(field, fl, value, vl,
                                                       32) == (uint32_t)h,
                                    "field %zu value %zu", fl, vl);
                        TEST_ASSERT(
                            model_hash_feature(field, fl, value, vl, 13) ==
                                ((uint32_t)h & 0x1fff),
                            "masked");
                }
        }
        /* A cross is the feature "fa*fb" with value va 0x1e vb. */
        memcpy(cat, "c9\x1e", 3);
        memcpy(cat + 3, value, 250);
        TEST_EQ_INT(
            model_hash_cross("user", 4, "c9", 2, "item", 4, value, 250, 24),
            model_hash_feature("user*item", 9, cat, 253, 24));
        TEST_EQ_INT(model_hash_context("device", 6, "ios", 3, 24),
                    model_hash_feature("ctx", 3, "device=ios", 10, 24));
}

/* ---- FTRL ---- */

static model_ftrl_t *ftrl(double alpha, double beta, double l1, double l2,
                          uint32_t bits) {
        model_ftrl_conf_t c = {alpha, beta, l1, l2, bits};
        char errstr[256];
        model_ftrl_t *m = model_ftrl_new(&c, errstr, sizeof(errstr));
        if (!m)
                fprintf(stderr, "model_ftrl_new: %s\n", errstr);
        return m;
}

#define COORD_IS(m, i, ez, en, ew)                                             \
        do {                                                                   \
                double z_, n_;                                                 \
                model_ftrl_coord(m, i, &z_, &n_);                              \
                TEST_ASSERT(NEAR(z_, ez, 1e-12), "z%u %.17g", i, z_);          \
                TEST_ASSERT(NEAR(n_, en, 1e-12), "n%u %.17g", i, n_);          \
                TEST_ASSERT(NEAR(model_ftrl_weight(m, i), ew, 1e-12),          \
                            "w%u %.17g", i, model_ftrl_weight(m, i));          \
        } while (0)

/* alpha 0.1, beta 1, l1 0, l2 1; features {3, 7}; y = 1 then y = 0.
 *
 * Step 1: every w = 0, so margin 0 and p = 0.5; g = p - y = -0.5.
 *   For i = 3 and 7: sigma = (sqrt(0 + 0.25) - sqrt(0)) / 0.1 = 5,
 *   z = 0 + (-0.5) - 5 * 0 = -0.5, n = 0 + 0.25 = 0.25.
 *   w = -(z - sgn(z) l1) / ((beta + sqrt(n)) / alpha + l2)
 *     = 0.5 / ((1 + 0.5) / 0.1 + 1) = 0.5 / 16 = 0.03125.
 * Step 2: margin = 2 * 0.03125 = 0.0625, p = 1 / (1 + e^-0.0625)
 *   = 0.51561991572301560; g = p - 0 = p, g^2 = 0.26586389749020970.
 *   sigma = (sqrt(0.25 + g^2) - 0.5) / 0.1
 *         = (0.71823665841434856 - 0.5) / 0.1 = 2.1823665841434856,
 *   z = -0.5 + g - sigma * 0.03125 = -0.5 + 0.51561991572301560
 *       - 0.068198955754483925 = -0.052579040031468350,
 *   n = 0.25 + g^2 = 0.51586389749020970,
 *   w = 0.052579040031468350 / ((1 + 0.71823665841434856) / 0.1 + 1)
 *     = 0.052579040031468350 / 18.182366584143486 = 0.0028917599800964075.
 */
static void ftrl_two_steps(void) {
        uint32_t x[2] = {3, 7};
        model_ftrl_t *m = ftrl(0.1, 1, 0, 1, 10);
        double p;
        TEST_ASSERT(m);
        p = model_ftrl_predict(m, x, 2);
        TEST_ASSERT(p == 0.5, "p1 %.17g", p);
        model_ftrl_update(m, x, 2, p, 1);
        COORD_IS(m, 3, -0.5, 0.25, 0.03125);
        COORD_IS(m, 7, -0.5, 0.25, 0.03125);
        p = model_ftrl_predict(m, x, 2);
        TEST_ASSERT(NEAR(p, 0.51561991572301560, 1e-12), "p2 %.17g", p);
        model_ftrl_update(m, x, 2, p, 0);
        COORD_IS(m, 3, -0.052579040031468350, 0.51586389749020970,
                 0.0028917599800964075);
        COORD_IS(m, 7, -0.052579040031468350, 0.51586389749020970,
                 0.0028917599800964075);
        TEST_EQ_INT(model_ftrl_updates(m), 2);
        /* Untouched coordinates stay zero. */
        COORD_IS(m, 4, 0, 0, 0);
        model_ftrl_destroy(m);
}

/* The same with l1 = 0.6: step 1 {3, 7}, y = 1; step 2 {3} alone, y = 1.
 *
 * Step 1: as above, p = 0.5, z3 = z7 = -0.5, n3 = n7 = 0.25, but
 *   |z| = 0.5 <= l1 = 0.6, so both weights stay exactly 0.
 * Step 2: p = 0.5 again (all weights 0); g = -0.5. For i = 3 only:
 *   sigma = (sqrt(0.25 + 0.25) - sqrt(0.25)) / 0.1
 *         = (0.70710678118654757 - 0.5) / 0.1 = 2.0710678118654755,
 *   z3 = -0.5 + (-0.5) - sigma * 0 = -1, n3 = 0.5;
 *   |z3| = 1 > 0.6: w3 = -(-1 - (-0.6)) / ((1 + sqrt(0.5)) / 0.1 + 1)
 *     = 0.4 / 18.071067811865476 = 0.022134829228926907.
 *   Coordinate 7 keeps z = -0.5, n = 0.25 and w = 0.
 */
static void ftrl_two_steps_l1(void) {
        uint32_t x[2] = {3, 7};
        model_ftrl_t *m = ftrl(0.1, 1, 0.6, 1, 10);
        double p;
        TEST_ASSERT(m);
        p = model_ftrl_predict(m, x, 2);
        model_ftrl_update(m, x, 2, p, 1);
        COORD_IS(m, 3, -0.5, 0.25, 0);
        COORD_IS(m, 7, -0.5, 0.25, 0);
        TEST_ASSERT(model_ftrl_weight(m, 7) == 0.0, "exactly zero");
        p = model_ftrl_predict(m, x, 1);
        TEST_ASSERT(p == 0.5, "p2 %.17g", p);
        model_ftrl_update(m, x, 1, p, 1);
        COORD_IS(m, 3, -1.0, 0.5, 0.022134829228926907);
        COORD_IS(m, 7, -0.5, 0.25, 0);
        TEST_ASSERT(model_ftrl_weight(m, 7) == 0.0, "exactly zero");
        model_ftrl_destroy(m);
}

/* A repeated index counts twice; indices are masked to bits. */
static void ftrl_repeats_and_mask(void) {
        uint32_t x1[1] = {3}, x2[2] = {3, 3}, xm[1] = {3 + (1u << 10)};
        model_ftrl_t *m = ftrl(0.1, 1, 0, 1, 10);
        double p;
        TEST_ASSERT(m);
        model_ftrl_update(m, x1, 1, model_ftrl_predict(m, x1, 1), 1);
        p = model_ftrl_predict(m, x2, 2);
        TEST_ASSERT(NEAR(p, 1 / (1 + exp(-2 * model_ftrl_weight(m, 3))), 1e-15),
                    "%.17g", p);
        TEST_ASSERT(model_ftrl_predict(m, xm, 1) ==
                    model_ftrl_predict(m, x1, 1));
        /* Two occurrences = two steps one after the other. */
        {
                model_ftrl_t *a = ftrl(0.1, 1, 0, 1, 10);
                model_ftrl_t *b = ftrl(0.1, 1, 0, 1, 10);
                double z1, n1, z2, n2;
                model_ftrl_update(a, x2, 2, 0.3, 1);
                model_ftrl_update(b, x1, 1, 0.3, 1);
                model_ftrl_update(b, x1, 1, 0.3, 1);
                model_ftrl_coord(a, 3, &z1, &n1);
                model_ftrl_coord(b, 3, &z2, &n2);
                model_ftrl_destroy(a);
                model_ftrl_destroy(b);
                TEST_ASSERT(same_bits(z1, z2) && same_bits(n1, n2));
        }
        model_ftrl_destroy(m);
}

static void ftrl_margin_clipped(void) {
        uint32_t x[64];
        model_ftrl_t *m = ftrl(10, 1, 0, 0, 10);
        TEST_ASSERT(m);
        for (int i = 0; i < 64; i++)
                x[i] = (uint32_t)i;
        for (int k = 0; k < 200; k++)
                model_ftrl_update(m, x, 64, model_ftrl_predict(m, x, 64), 1);
        TEST_ASSERT(model_ftrl_predict(m, x, 64) == 1 / (1 + exp(-35.0)),
                    "%.17g", model_ftrl_predict(m, x, 64));
        model_ftrl_destroy(m);
}

static void ftrl_conf_refused(void) {
        model_ftrl_conf_t c;
        char errstr[256];
        model_ftrl_conf_default(&c);
        TEST_ASSERT(c.alpha == 0.05 && c.beta == 1 && c.l1 == 1 && c.l2 == 1 &&
                    c.bits == 20);
        c.alpha = 0;
        TEST_ASSERT(!model_ftrl_new(&c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "alpha"), "%s", errstr);
        model_ftrl_conf_default(&c);
        c.l1 = -1;
        TEST_ASSERT(!model_ftrl_new(&c, errstr, sizeof(errstr)));
        model_ftrl_conf_default(&c);
        c.bits = MODEL_FTRL_MAX_BITS + 1;
        TEST_ASSERT(!model_ftrl_new(&c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "bits"), "%s", errstr);
}

/* Random examples of n features over the whole space. */
static void random_example(uint32_t *x, uint32_t n, uint32_t bits) {
        for (uint32_t k = 0; k < n; k++)
                x[k] = (uint32_t)rng_next() & ((1u << bits) - 1);
}

static void learn_random(model_ftrl_t *m, int n_examples, uint32_t bits) {
        uint32_t x[8];
        for (int e = 0; e < n_examples; e++) {
                random_example(x, 8, bits);
                x[0] = 1; /* a shared bias: weights move off zero */
                model_ftrl_update(m, x, 8, model_ftrl_predict(m, x, 8),
                                  rng_unit() < 0.2);
        }
}

/* Copy m into a fresh model through its records: header and every
 * non-zero page. */
static model_ftrl_t *ftrl_copy(const model_ftrl_t *m, const char *why) {
        const model_ftrl_conf_t *c = model_ftrl_conf(m);
        model_ftrl_t *r = ftrl(c->alpha, c->beta, c->l1, c->l2, c->bits);
        tern_buf_t b;
        char errstr[256];
        tern_buf_init(&b, 1 << 20);
        model_ftrl_header_encode(m, &b);
        if (model_ftrl_header_decode(r, b.data, b.len, errstr,
                                     sizeof(errstr)) != TERN_OK)
                fprintf(stderr, "%s: %s\n", why, errstr);
        for (uint32_t pg = 0; pg < model_ftrl_pages(m); pg++) {
                if (model_ftrl_page_is_zero(m, pg))
                        continue;
                tern_buf_reset(&b);
                model_ftrl_page_encode(m, pg, &b);
                if (b.overflow ||
                    model_ftrl_page_decode(r, pg, b.data, b.len, errstr,
                                           sizeof(errstr)))
                        fprintf(stderr, "%s: page %u: %s\n", why, pg, errstr);
        }
        tern_buf_free(&b);
        return r;
}

static void ftrl_persist_exact(void) {
        const uint32_t bits = 13; /* 16 pages */
        model_ftrl_t *m = ftrl(0.05, 1, 1, 1, bits), *r;
        const uint32_t *dirty;
        uint32_t nd, x[8];
        TEST_ASSERT(m);
        rng_state = 11;
        learn_random(m, 3000, bits);
        r = ftrl_copy(m, "copy");
        TEST_EQ_INT(model_ftrl_updates(r), 3000);
        TEST_EQ_INT(model_ftrl_dirty_pages(r, &dirty), 0); /* decode: clean */
        for (uint32_t i = 0; i < (1u << bits); i++) {
                double z1, n1, z2, n2;
                model_ftrl_coord(m, i, &z1, &n1);
                model_ftrl_coord(r, i, &z2, &n2);
                TEST_ASSERT(same_bits(z1, z2) && same_bits(n1, n2) &&
                                same_bits(model_ftrl_weight(m, i),
                                          model_ftrl_weight(r, i)),
                            "coordinate %u differs", i);
        }
        /* ...and both go on learning identically. */
        model_ftrl_clear_dirty(m);
        rng_state = 12;
        learn_random(m, 500, bits);
        rng_state = 12;
        learn_random(r, 500, bits);
        rng_state = 13;
        for (int e = 0; e < 200; e++) {
                double pm, pr;
                random_example(x, 8, bits);
                pm = model_ftrl_predict(m, x, 8);
                pr = model_ftrl_predict(r, x, 8);
                TEST_ASSERT(same_bits(pm, pr), "%.17g != %.17g", pm, pr);
        }
        /* Dirty pages: ascending, and only what the last 500 touched. */
        nd = model_ftrl_dirty_pages(m, &dirty);
        TEST_ASSERT(nd > 0 && nd <= model_ftrl_pages(m));
        for (uint32_t k = 1; k < nd; k++)
                TEST_ASSERT(dirty[k - 1] < dirty[k]);
        model_ftrl_clear_dirty(m);
        TEST_EQ_INT(model_ftrl_dirty_pages(m, &dirty), 0);
        x[0] = 5;
        x[1] = 3 * MODEL_FTRL_PAGE + 1;
        model_ftrl_update(m, x, 2, model_ftrl_predict(m, x, 2), 0);
        TEST_EQ_INT(model_ftrl_dirty_pages(m, &dirty), 2);
        {
                uint32_t pa = 5 / MODEL_FTRL_PAGE,
                         pb = (3 * MODEL_FTRL_PAGE + 1) / MODEL_FTRL_PAGE;
                TEST_ASSERT(dirty[0] == (pa < pb ? pa : pb) &&
                            dirty[1] == (pa < pb ? pb : pa));
        }
        model_ftrl_destroy(m);
        model_ftrl_destroy(r);
}

static void ftrl_records_refused(void) {
        model_ftrl_t *m = ftrl(0.05, 1, 1, 1, 12), *o;
        tern_buf_t b;
        char errstr[512];
        uint32_t x[2] = {1, 2};
        /* a page the example touches, and an untouched one */
        uint32_t tp = 1 / MODEL_FTRL_PAGE, ep = 3;
        double z, n;
        TEST_ASSERT(m);
        tern_buf_init(&b, 1 << 20);
        model_ftrl_update(m, x, 2, 0.5, 1);
        /* A header written with other bits, or another alpha. */
        o = ftrl(0.05, 1, 1, 1, 14);
        model_ftrl_header_encode(o, &b);
        TEST_EQ_INT(
            model_ftrl_header_decode(m, b.data, b.len, errstr, sizeof(errstr)),
            TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(errstr, "bits=14") && strstr(errstr, "bits=12"),
                    "%s", errstr);
        model_ftrl_destroy(o);
        o = ftrl(0.1, 1, 1, 1, 12);
        tern_buf_reset(&b);
        model_ftrl_header_encode(o, &b);
        TEST_EQ_INT(
            model_ftrl_header_decode(m, b.data, b.len, errstr, sizeof(errstr)),
            TERN_ERR_CONFIG);
        TEST_EQ_INT(model_ftrl_updates(m), 1); /* unchanged */
        /* Truncated header. */
        TEST_EQ_INT(model_ftrl_header_decode(m, b.data, b.len - 1, errstr,
                                             sizeof(errstr)),
                    TERN_ERR_DECODE);
        model_ftrl_destroy(o);
        /* Page records: truncated, trailing bytes, another page's. */
        tern_buf_reset(&b);
        model_ftrl_page_encode(m, tp, &b);
        TEST_EQ_INT(model_ftrl_page_decode(m, tp, b.data, b.len - 1, errstr,
                                           sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_EQ_INT(model_ftrl_page_decode(m, ep, b.data, b.len, errstr,
                                           sizeof(errstr)),
                    TERN_ERR_DECODE);
        tern_buf_put_u8(&b, 0);
        TEST_EQ_INT(model_ftrl_page_decode(m, tp, b.data, b.len, errstr,
                                           sizeof(errstr)),
                    TERN_ERR_DECODE);
        model_ftrl_coord(m, 1, &z, &n);
        TEST_ASSERT(z == -0.5 && n == 0.25, "unchanged on failure");
        /* An empty page record decodes to zeros. */
        tern_buf_reset(&b);
        model_ftrl_page_encode(m, ep, &b);
        TEST_EQ_INT(b.len, 3);
        TEST_ASSERT(model_ftrl_page_is_zero(m, ep) &&
                    !model_ftrl_page_is_zero(m, tp));
        model_ftrl_page_clear(m, tp);
        model_ftrl_coord(m, 1, &z, &n);
        TEST_ASSERT(model_ftrl_page_is_zero(m, tp) && z == 0 && n == 0);
        tern_buf_free(&b);
        model_ftrl_destroy(m);
}

/* One feature (present in 30% of the examples) raises the click rate from
 * 1% to 25%; six noise features per example from a pool of 2000.
 * Progressive validation: predict, score, then learn. */
static void ftrl_learns(void) {
        model_ftrl_conf_t c;
        model_ftrl_t *m;
        static model_metrics_t mm;
        char errstr[256];
        tern_buf_t js;
        model_ftrl_conf_default(&c);
        c.alpha = 0.1;
        m = model_ftrl_new(&c, errstr, sizeof(errstr));
        TEST_ASSERT(m, "%s", errstr);
        memset(&mm, 0, sizeof(mm));
        rng_state = 7;
        for (int e = 0; e < 100000; e++) {
                uint32_t x[8], n = 0;
                int strong = rng_unit() < 0.3, y;
                double p;
                x[n++] = model_hash_feature("bias", 4, "", 0, c.bits);
                for (int k = 0; k < 6; k++)
                        x[n++] = 1000 + (uint32_t)(rng_next() % 2000);
                if (strong)
                        x[n++] = 42;
                y = rng_unit() < (strong ? 0.25 : 0.01);
                p = model_ftrl_predict(m, x, n);
                model_metrics_add(&mm, p, y);
                model_ftrl_update(m, x, n, p, y);
        }
        tern_buf_init(&js, 4096);
        model_metrics_json(&mm, &js);
        tern_buf_put_u8(&js, 0);
        printf("  learning: %s\n", (char *)js.data);
        tern_buf_free(&js);
        TEST_ASSERT(model_metrics_logloss(&mm) <
                        0.85 * model_metrics_base_rate_logloss(&mm),
                    "logloss %g base %g", model_metrics_logloss(&mm),
                    model_metrics_base_rate_logloss(&mm));
        TEST_ASSERT(model_metrics_auc(&mm) > 0.8, "auc %g",
                    model_metrics_auc(&mm));
        TEST_ASSERT(NEAR(model_metrics_calibration(&mm), 1, 0.15), "cal %g",
                    model_metrics_calibration(&mm));
        TEST_ASSERT(model_ftrl_weight(m, 42) > 1.5, "w %g",
                    model_ftrl_weight(m, 42));
        model_ftrl_destroy(m);
}

/* ---- metrics ---- */

static int cmp_pair(const void *a, const void *b) {
        const double *x = a, *y = b;
        return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Mann-Whitney over sorted scores, ties averaged. */
static double exact_auc(double (*ex)[2], int n) {
        double rank_sum = 0, pos = 0;
        qsort(ex, (size_t)n, sizeof(ex[0]), cmp_pair);
        for (int i = 0; i < n;) {
                int j = i;
                double avg, npos = 0;
                while (j < n && ex[j][0] == ex[i][0])
                        npos += ex[j++][1];
                avg = (i + 1 + j) / 2.0; /* mean of ranks i+1..j */
                rank_sum += npos * avg;
                pos += npos;
                i = j;
        }
        return (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos));
}

static void metrics_auc_vs_exact(void) {
        enum { N = 40000 };
        static double ex[N][2];
        static model_metrics_t mm;
        double worst = 0;
        for (int run = 0; run < 3; run++) {
                /* Small CTRs: scores around logit -4 (p ~ 0.018), each a
                 * noisy view of the true click probability. */
                double center = -5.0 + run * 1.5;
                double exact, binned;
                memset(&mm, 0, sizeof(mm));
                rng_state = 100 + (uint64_t)run;
                for (int i = 0; i < N; i++) {
                        double t = center + 1.2 * rng_normal();
                        double s = t + 0.8 * rng_normal();
                        double p = 1 / (1 + exp(-s));
                        int y = rng_unit() < 1 / (1 + exp(-t));
                        ex[i][0] = p;
                        ex[i][1] = y;
                        model_metrics_add(&mm, p, y);
                }
                exact = exact_auc(ex, N);
                binned = model_metrics_auc(&mm);
                printf("  auc exact %.6f binned %.6f (base rate %.4f)\n", exact,
                       binned, model_metrics_base_rate(&mm));
                if (fabs(exact - binned) > worst)
                        worst = fabs(exact - binned);
        }
        TEST_ASSERT(worst < 1e-3, "worst difference %g", worst);
}

static void metrics_values(void) {
        static model_metrics_t mm;
        tern_buf_t js;
        double ll;
        memset(&mm, 0, sizeof(mm));
        tern_buf_init(&js, 4096);
        model_metrics_json(&mm, &js);
        tern_buf_put_u8(&js, 0);
        TEST_EQ_STR((char *)js.data,
                    "{\"examples\":0,\"positives\":0,\"logloss\":null,"
                    "\"auc\":null,\"base_rate_logloss\":null,"
                    "\"calibration\":null,\"mean_p\":null,\"base_rate\":null}");
        /* 0.8 clicked, 0.4 not, 0.1 clicked, 0.2 not. */
        model_metrics_add(&mm, 0.8, 1);
        model_metrics_add(&mm, 0.4, 0);
        model_metrics_add(&mm, 0.1, 1);
        model_metrics_add(&mm, 0.2, 0);
        ll = -(log(0.8) + log(0.6) + log(0.1) + log(0.8)) / 4;
        TEST_ASSERT(NEAR(model_metrics_logloss(&mm), ll, 1e-15));
        TEST_ASSERT(NEAR(model_metrics_base_rate_logloss(&mm), log(2), 1e-15));
        TEST_ASSERT(NEAR(model_metrics_calibration(&mm), 0.375 / 0.5, 1e-15));
        /* Pairs (pos, neg): 0.8 beats both, 0.1 beats none: 2 of 4. */
        TEST_ASSERT(model_metrics_auc(&mm) == 0.5);
        /* Clipping: p = 0 with a click costs -log(1e-15), not infinity. */
        model_metrics_add(&mm, 0.0, 1);
        TEST_ASSERT(isfinite(model_metrics_logloss(&mm)));
        tern_buf_reset(&js);
        model_metrics_json(&mm, &js);
        tern_buf_put_u8(&js, 0);
        TEST_ASSERT(strstr((char *)js.data, "\"examples\":5,\"positives\":3,"),
                    "%s", (char *)js.data);
        TEST_ASSERT(!strstr((char *)js.data, "nan") &&
                        !strstr((char *)js.data, "null"),
                    "%s", (char *)js.data);
        /* Only one class: AUC undefined, the rest defined. */
        memset(&mm, 0, sizeof(mm));
        model_metrics_add(&mm, 0.3, 0);
        tern_buf_reset(&js);
        model_metrics_json(&mm, &js);
        tern_buf_put_u8(&js, 0);
        TEST_ASSERT(
            strstr((char *)js.data, "\"auc\":null") &&
                strstr((char *)js.data, "\"calibration\":null") &&
                strstr((char *)js.data, "\"mean_p\":0.2999999999999999"),
            "%s", (char *)js.data);
        /* Bins are monotone in p and cover small CTRs finely. */
        TEST_ASSERT(model_metrics_bin(0.001) < model_metrics_bin(0.00101));
        TEST_EQ_INT(model_metrics_bin(0.5), MODEL_METRICS_BINS / 2);
        TEST_EQ_INT(model_metrics_bin(1e-12), 0);
        TEST_EQ_INT(model_metrics_bin(1.0), MODEL_METRICS_BINS - 1);
        tern_buf_free(&js);
}

static void metrics_roundtrip(void) {
        static model_metrics_t a, b;
        tern_buf_t buf;
        char errstr[256];
        memset(&a, 0, sizeof(a));
        memset(&b, 0xff, sizeof(b));
        rng_state = 5;
        for (int i = 0; i < 5000; i++) {
                double p = rng_unit() * 0.2;
                model_metrics_add(&a, p, rng_unit() < 0.05);
        }
        tern_buf_init(&buf, 1 << 20);
        model_metrics_encode(&a, &buf);
        TEST_ASSERT(!buf.overflow);
        TEST_EQ_INT(
            model_metrics_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
            TERN_OK);
        TEST_ASSERT(memcmp(&a, &b, sizeof(a)) == 0, "not bit-exact");
        printf("  metrics record: %zu bytes for 5000 examples\n", buf.len);
        /* Truncated, trailing, inconsistent: refused, b unchanged. */
        TEST_EQ_INT(model_metrics_decode(&b, buf.data, buf.len - 1, errstr,
                                         sizeof(errstr)),
                    TERN_ERR_DECODE);
        tern_buf_put_u8(&buf, 0);
        TEST_EQ_INT(
            model_metrics_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
            TERN_ERR_DECODE);
        buf.data[3]++; /* examples: the varint after version and bins */
        buf.len--;
        TEST_EQ_INT(
            model_metrics_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
            TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "inconsistent"), "%s", errstr);
        TEST_ASSERT(memcmp(&a, &b, sizeof(a)) == 0, "changed on failure");
        /* The empty metrics too. */
        memset(&a, 0, sizeof(a));
        tern_buf_reset(&buf);
        model_metrics_encode(&a, &buf);
        TEST_EQ_INT(
            model_metrics_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
            TERN_OK);
        TEST_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
        tern_buf_free(&buf);
}

/* ---- features ---- */

#define F(field, value)                                                        \
        model_hash_feature(field, strlen(field), value, strlen(value), 20)

static void ctr_known_event(void) {
        model_ctr_conf_t c = {20, "user*category, placement*item,"
                                  "campaign*item,hour*dow,count_purchase*item"};
        model_ctr_t *m;
        tern_event_t ev;
        feat_profile_t prof;
        model_ctr_input_t in;
        uint32_t idx[MODEL_CTR_MAX_FEATURES], want[32], n, k = 0;
        char errstr[256];
        m = model_ctr_new(&c, errstr, sizeof(errstr));
        TEST_ASSERT(m, "%s", errstr);
        TEST_EQ_INT(model_ctr_n_crosses(m), 5);
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("u1");
        ev.item_id = tern_str_c("i1");
        ev.category_id = tern_str_c("c1");
        /* campaign absent */
        ev.type = TERN_EV_IMPRESSION;
        ev.ts_ms = 1511620200000; /* 2017-11-25 14:30 UTC, a Saturday */
        ev.n_context = 2;
        ev.context_key[0] = tern_str_c("placement");
        ev.context_val[0] = tern_str_c("top");
        ev.context_key[1] = tern_str_c("device");
        ev.context_val[1] = tern_str_c("ios");
        memset(&prof, 0, sizeof(prof));
        prof.events[TERN_EV_VIEW] = 3;       /* log2(4) = 2 */
        prof.events[TERN_EV_CART] = 1;       /* log2(2) = 1 */
        prof.events[TERN_EV_PURCHASE] = 7;   /* log2(8) = 3 */
        prof.events[TERN_EV_IMPRESSION] = 8; /* log2(9) = 3.17 -> 3 */
        prof.sessions = 2;                   /* log2(3) = 1.58 -> 1 */
        model_ctr_input_from_event(&in, &ev, &prof);
        n = model_ctr_features(m, &in, idx);

        want[k++] = F("bias", "");
        want[k++] = F("user", "u1");
        want[k++] = F("item", "i1");
        want[k++] = F("category", "c1");
        want[k++] = F("ctx", "placement=top");
        want[k++] = F("ctx", "device=ios");
        want[k++] = F("hour", "14");
        want[k++] = F("dow", "5");
        want[k++] = F("count_view", "2");
        want[k++] = F("count_click", "0");
        want[k++] = F("count_cart", "1");
        want[k++] = F("count_favorite", "0");
        want[k++] = F("count_purchase", "3");
        want[k++] = F("count_impression", "3");
        want[k++] = F("sessions", "1");
        want[k++] = F("user*category", "u1\x1e"
                                       "c1");
        want[k++] = F("placement*item", "top\x1e"
                                        "i1");
        /* campaign*item: campaign absent, skipped */
        want[k++] = F("hour*dow", "14\x1e"
                                  "5");
        want[k++] = F("count_purchase*item", "3\x1e"
                                             "i1");
        TEST_EQ_INT(n, k);
        for (uint32_t i = 0; i < k; i++)
                TEST_ASSERT(idx[i] == want[i], "feature %u: %u != %u", i,
                            idx[i], want[i]);

        /* Without a profile: no count or session features, and the
         * count_purchase cross is skipped. */
        model_ctr_input_from_event(&in, &ev, NULL);
        TEST_EQ_INT(model_ctr_features(m, &in, idx), k - 7 - 1);
        /* Deterministic, and a different hour changes exactly the hour
         * features. */
        ev.ts_ms -= 3600 * 1000;
        model_ctr_input_from_event(&in, &ev, &prof);
        TEST_EQ_INT(model_ctr_features(m, &in, idx), k);
        TEST_ASSERT(idx[6] == F("hour", "13") && idx[7] == want[7]);
        model_ctr_destroy(m);
}

static void ctr_time_fields(void) {
        model_ctr_conf_t c = {20, NULL};
        model_ctr_t *m = model_ctr_new(&c, NULL, 0);
        model_ctr_input_t in;
        uint32_t idx[MODEL_CTR_MAX_FEATURES];
        TEST_ASSERT(m);
        memset(&in, 0, sizeof(in));
        in.ts_ms = -60000; /* 1969-12-31 23:59 UTC, a Wednesday */
        TEST_EQ_INT(model_ctr_features(m, &in, idx), 3); /* bias, hour, dow */
        TEST_EQ_INT(idx[1], F("hour", "23"));
        TEST_EQ_INT(idx[2], F("dow", "2"));
        in.ts_ms = 0; /* 1970-01-01 00:00, a Thursday */
        model_ctr_features(m, &in, idx);
        TEST_EQ_INT(idx[1], F("hour", "0"));
        TEST_EQ_INT(idx[2], F("dow", "3"));
        in.user = tern_str_c(""); /* present but empty */
        TEST_EQ_INT(model_ctr_features(m, &in, idx), 4);
        TEST_EQ_INT(idx[1], F("user", ""));
        model_ctr_destroy(m);
}

static void ctr_crosses_parse(void) {
        static const char *const good[] = {"", "  ", "user*category",
                                           " user * category ,placement*item ",
                                           "device*hour,count_view*campaign"};
        static const struct {
                const char *spec, *named;
        } bad[] = {{"user", "\"user\""},
                   {"user*", "\"user*\""},
                   {"*item", "\"*item\""},
                   {"user*category*item", "\"user*category*item\""},
                   {"user*user", "\"user*user\""},
                   {"user*item,us er*item", "\"us er*item\""},
                   {"bias*item", "\"bias*item\""},
                   {"user*item,user*item", "listed twice"},
                   {"user*item,hour*dow,item*user", "\"item*user\": listed"},
                   {"user*item,", "empty cross"},
                   {"user*item,,hour*dow", "empty cross"}};
        model_ctr_conf_t c = {20, NULL};
        char errstr[512], many[2048];
        size_t off = 0;
        model_ctr_t *m;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                c.crosses = good[i];
                m = model_ctr_new(&c, errstr, sizeof(errstr));
                TEST_ASSERT(m, "\"%s\" refused: %s", good[i], errstr);
                model_ctr_destroy(m);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                c.crosses = bad[i].spec;
                errstr[0] = 0;
                m = model_ctr_new(&c, errstr, sizeof(errstr));
                TEST_ASSERT(!m, "\"%s\" accepted", bad[i].spec);
                TEST_ASSERT(strstr(errstr, bad[i].named), "\"%s\": %s",
                            bad[i].spec, errstr);
        }
        for (int i = 0; i <= MODEL_CTR_MAX_CROSSES; i++)
                off += (size_t)snprintf(many + off, sizeof(many) - off,
                                        "%sk%d*item", i ? "," : "", i);
        c.crosses = many;
        TEST_ASSERT(!model_ctr_new(&c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "more than"), "%s", errstr);
        c.crosses = NULL;
        c.bits = 33;
        TEST_ASSERT(!model_ctr_new(&c, errstr, sizeof(errstr)));
}

/* model_ctr_items_features() is model_ctr_item_features() of the input
 * with the item set: every kind of cross side (context, derived, ids),
 * absent sides, ids past the memo's length, and enough ids to make memo
 * slots collide and be replaced. */
static void ctr_items_equal_item_features(void) {
        model_ctr_conf_t c = {18, "placement*item,item*hour,count_view*item,"
                                  "user*item,campaign*item,user*category"};
        model_ctr_t *m = model_ctr_new(&c, NULL, 0);
        model_ctr_items_t *items = model_ctr_items_new();
        tern_event_t ev;
        feat_profile_t prof;
        model_ctr_input_t in;
        uint32_t want[MODEL_CTR_MAX_FEATURES], got[1 + MODEL_CTR_MAX_CROSSES];
        char id[64];
        TEST_ASSERT(m && items);
        memset(&prof, 0, sizeof(prof));
        prof.events[TERN_EV_VIEW] = 12;
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("u7");
        ev.ts_ms = 1511620200000;
        for (int variant = 0; variant < 4; variant++) {
                ev.n_context = variant & 1;
                ev.context_key[0] = tern_str_c("placement");
                ev.context_val[0] = tern_str_c("top");
                model_ctr_input_from_event(&in, &ev,
                                           variant & 2 ? &prof : NULL);
                model_ctr_items_prepare(m, items, &in);
                for (int pass = 0; pass < 2; pass++) /* 2nd: memo hits */
                        for (int k = 0; k < 3 * MODEL_CTR_ITEM_MEMO; k++) {
                                uint32_t n, w;
                                int len = snprintf(
                                    id, sizeof(id), "%s%d",
                                    k % 97 ? "i"
                                           : "a-long-item-id-past-the-memo-",
                                    k);
                                in.item = (tern_str_t){id, (uint32_t)len};
                                w = model_ctr_item_features(m, &in, want);
                                n = model_ctr_items_features(
                                    m, items, id, (uint32_t)len, got);
                                TEST_EQ_INT(n, w);
                                for (uint32_t i = 0; i < n; i++)
                                        TEST_ASSERT(
                                            got[i] == want[i],
                                            "variant %d item %s feature %u",
                                            variant, id, i);
                        }
        }
        in.item = TERN_STR_NULL;
        TEST_EQ_INT(model_ctr_items_features(m, items, NULL, 0, got), 0);
        model_ctr_items_destroy(items);
        model_ctr_destroy(m);
}

/* ---- micro-benchmark (prints only) ---- */

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench(void) {
        enum { NF = 32, NE = 20000 };
        static uint32_t x[NE][NF];
        model_ftrl_conf_t c;
        model_ftrl_t *m;
        model_ctr_conf_t cc;
        model_ctr_t *ctr;
        model_ctr_input_t in;
        tern_event_t ev;
        feat_profile_t prof;
        uint32_t idx[MODEL_CTR_MAX_FEATURES], nfeat = 0;
        double t0, t_pred, t_upd, t_feat, sink = 0;
        model_ftrl_conf_default(&c); /* 2^20 coordinates, 32 MiB */
        m = model_ftrl_new(&c, NULL, 0);
        TEST_ASSERT(m);
        rng_state = 99;
        for (int e = 0; e < NE; e++)
                random_example(x[e], NF, c.bits);
        for (int e = 0; e < NE; e++) /* touch the pages once */
                model_ftrl_update(m, x[e], NF, 0.5, e & 1);
        /* Best of 5: the machine is shared and noisy. */
        t_pred = t_upd = t_feat = 1e30;
        for (int rep = 0; rep < 5; rep++) {
                t0 = now_ns();
                for (int e = 0; e < NE; e++)
                        sink += model_ftrl_predict(m, x[NE - 1 - e], NF);
                t_pred = fmin(t_pred, (now_ns() - t0) / NE);
                t0 = now_ns();
                for (int e = 0; e < NE; e++)
                        model_ftrl_update(m, x[e], NF, 0.3, e % 7 == 0);
                t_upd = fmin(t_upd, (now_ns() - t0) / NE);
        }

        model_ctr_conf_default(&cc);
        ctr = model_ctr_new(&cc, NULL, 0);
        TEST_ASSERT(ctr);
        tern_event_clear(&ev);
        ev.user_id = tern_str_c("user-000123456");
        ev.item_id = tern_str_c("item-0004567");
        ev.category_id = tern_str_c("cat-0042");
        ev.campaign_id = tern_str_c("camp-17");
        ev.ts_ms = 1511620200000;
        ev.n_context = 4;
        ev.context_key[0] = tern_str_c("placement");
        ev.context_val[0] = tern_str_c("home_top");
        ev.context_key[1] = tern_str_c("device");
        ev.context_val[1] = tern_str_c("ios");
        ev.context_key[2] = tern_str_c("channel");
        ev.context_val[2] = tern_str_c("app");
        ev.context_key[3] = tern_str_c("page");
        ev.context_val[3] = tern_str_c("home");
        memset(&prof, 0, sizeof(prof));
        prof.events[TERN_EV_VIEW] = 40;
        prof.sessions = 5;
        model_ctr_input_from_event(&in, &ev, &prof);
        for (int rep = 0; rep < 5; rep++) {
                t0 = now_ns();
                for (int e = 0; e < NE; e++) {
                        in.ts_ms += 1000;
                        nfeat = model_ctr_features(ctr, &in, idx);
                        sink += idx[e % nfeat];
                }
                t_feat = fmin(t_feat, (now_ns() - t0) / NE);
        }
        printf("  bench (2^%u coordinates, %d features): predict %.0f ns, "
               "update %.0f ns; features of an impression (%u) %.0f ns "
               "[%g]\n",
               c.bits, NF, t_pred, t_upd, nfeat, t_feat, sink > 0 ? 1.0 : 0.0);
        model_ctr_destroy(ctr);
        model_ftrl_destroy(m);
}

TEST_MAIN(TEST_CASE(hash_golden), TEST_CASE(hash_pieces_equal_concatenation),
          TEST_CASE(ftrl_two_steps), TEST_CASE(ftrl_two_steps_l1),
          TEST_CASE(ftrl_repeats_and_mask), TEST_CASE(ftrl_margin_clipped),
          TEST_CASE(ftrl_conf_refused), TEST_CASE(ftrl_persist_exact),
          TEST_CASE(ftrl_records_refused), TEST_CASE(ftrl_learns),
          TEST_CASE(metrics_auc_vs_exact), TEST_CASE(metrics_values),
          TEST_CASE(metrics_roundtrip), TEST_CASE(ctr_known_event),
          TEST_CASE(ctr_time_fields), TEST_CASE(ctr_crosses_parse),
          TEST_CASE(ctr_items_equal_item_features), TEST_CASE(bench));
