/*
 * 0044-buf_writers: tern_buf's inline writers (varint, long, double,
 * string) write exactly what their out-of-line _exact versions write —
 * the same bytes, and the same overflow point when the buffer's maximum
 * cuts a value — so making them inline changed no record tern stores or
 * sends.
 */
/* TERN_TEST_LINK: tern_common */
#include <stdint.h>
#include <string.h>

#include "../common/tern_buf.h"
#include "test.h"

static uint64_t rng_state = 7;
static uint64_t rng_next(void) { /* splitmix64 */
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

enum { W_VARINT, W_LONG, W_DOUBLE, W_STR, W__CNT };

static char text[2048];

/* One write of kind w with value v, inline or exact. */
static int put(tern_buf_t *b, int w, uint64_t v, int exact) {
        double d;
        size_t n = (size_t)(v % sizeof(text));
        switch (w) {
        case W_VARINT:
                return exact ? tern_buf_put_varint_exact(b, v)
                             : tern_buf_put_varint(b, v);
        case W_LONG: /* the exact long is the exact varint of its zigzag */
                return exact ? tern_buf_put_varint_exact(
                                   b, (v << 1) ^ (uint64_t)((int64_t)v >> 63))
                             : tern_buf_put_long(b, (int64_t)v);
        case W_DOUBLE:
                memcpy(&d, &v, 8);
                return exact ? tern_buf_put_double_exact(b, d)
                             : tern_buf_put_double(b, d);
        default:
                return exact ? tern_buf_put_str_exact(b, text, n)
                             : tern_buf_put_str(b, text, n);
        }
}

static uint64_t value(int i) {
        static const uint64_t edge[] = {
            0,    1,    127,  128,  16383,      16384,
            1023, 1024, 1025, 2047, UINT64_MAX, (uint64_t)1 << 63};
        if (i < (int)(sizeof(edge) / sizeof(edge[0])))
                return edge[i];
        return rng_next() >> (rng_next() % 64);
}

/* A sequence of writes into buffers of every small maximum: both agree on
 * every return, length, overflow flag and byte. */
static void same_as_exact(void) {
        for (size_t i = 0; i < sizeof(text); i++)
                text[i] = (char)('a' + i % 26);
        for (int round = 0; round < 400; round++) {
                uint64_t seq[8];
                int kind[8];
                for (int k = 0; k < 8; k++) {
                        seq[k] = value(round * 8 + k);
                        kind[k] = (int)(rng_next() % W__CNT);
                }
                for (size_t max = 0; max < 3000; max += 1 + max / 16) {
                        tern_buf_t a, e;
                        tern_buf_init(&a, max);
                        tern_buf_init(&e, max);
                        for (int k = 0; k < 8; k++) {
                                int ra = put(&a, kind[k], seq[k], 0);
                                int re = put(&e, kind[k], seq[k], 1);
                                TEST_EQ_INT(ra, re);
                                TEST_EQ_INT(a.len, e.len);
                                TEST_EQ_INT(a.overflow, e.overflow);
                                TEST_ASSERT(a.len == 0 || memcmp(a.data, e.data,
                                                                 a.len) == 0,
                                            "round %d max %zu write %d", round,
                                            max, k);
                        }
                        tern_buf_free(&a);
                        tern_buf_free(&e);
                }
        }
}

TEST_MAIN(TEST_CASE(same_as_exact));
