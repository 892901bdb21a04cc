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

TEST_MAIN(TEST_CASE(hash_golden), TEST_CASE(hash_pieces_equal_concatenation),
          TEST_CASE(metrics_auc_vs_exact), TEST_CASE(metrics_values),
          TEST_CASE(metrics_roundtrip));
