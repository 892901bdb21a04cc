/* TERN_TEST_LINK: tern_features */
/*
 * 0051-cooc_pair_keys — pair counters and top records of ids whose
 * leading bytes tie (long shared prefixes, ids that are prefixes of
 * others, bytes 0x00 and 0x01): every pair is stored once, under the id
 * that sorts first in byte order (the shorter first), whichever order its
 * items came in, and each item's top record names the others in that
 * order.
 */
#include "test.h"

#include <stdint.h>

#include "features/feat_engine.h"
#include "features/feat_store.h"

static char errstr[512];

static const struct {
        const char *s;
        uint32_t len;
} ids[] = {
    {"shared-prefix-a", 15},
    {"shared-prefix-ab", 16},
    {"shared-prefix-b", 15},
    {"shared-prefix-", 14},
    {"shared-prefix-a\0", 16},
    {"shared-prefix-a\x01", 16},
    {"shared-p", 8},
    {"shared-q", 8},
    {"s", 1},
    {"shared-prefix-a\0b", 17},
    {"zz", 2},
    {"\0", 1},
};
#define N_IDS (sizeof(ids) / sizeof(ids[0]))

static int id_cmp(const char *a, uint32_t al, const char *b, uint32_t bl) {
        int r = memcmp(a, b, al < bl ? al : bl);
        return r ? r : (al > bl) - (al < bl);
}

/* Every pair once, first id before second, count 1; either order of
 * the ids builds its key. */
static void check_pairs(feat_store_t *st) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_COOC, NULL, 0);
        const uint8_t *k, *v, *a, *b;
        size_t klen, vlen, n = 0;
        uint32_t alen, blen;
        tern_buf_t key;
        tern_buf_init(&key, 1 << 16);
        TEST_ASSERT(it);
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                TEST_ASSERT(
                    !feat_key_cooc_split(k, klen, &a, &alen, &b, &blen));
                TEST_ASSERT(
                    id_cmp((const char *)a, alen, (const char *)b, blen) < 0,
                    "pair %zu out of order", n);
                TEST_EQ_INT(feat_counter_decode(v, vlen), 1);
                feat_key_cooc(&key, (const char *)b, blen, (const char *)a,
                              alen);
                TEST_ASSERT(key.len == klen && !memcmp(key.data, k, klen));
                n++;
        }
        TEST_EQ_INT(n, N_IDS * (N_IDS - 1) / 2);
        feat_iter_destroy(it);
        tern_buf_free(&key);
}

/* Item i's top record: every other item once, ascending. */
static void check_top(feat_store_t *st, size_t i) {
        tern_buf_t v;
        tern_rd_t r;
        const char *prev = NULL;
        uint32_t prev_len = 0;
        int found = 0;
        tern_buf_init(&v, 1 << 20);
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_TOP, ids[i].s, ids[i].len, &v,
                                    &found, errstr, sizeof(errstr)) &&
                        found,
                    "item %zu: no top record (%s)", i, errstr);
        tern_rd_init(&r, v.data, v.len);
        TEST_EQ_INT(tern_rd_u8(&r), 1);
        TEST_EQ_INT(tern_rd_varint(&r), 32);
        TEST_EQ_INT(tern_rd_u8(&r), 0); /* not counted: written at commit */
        TEST_EQ_INT(tern_rd_varint(&r), N_IDS - 1);
        for (size_t m = 0; m + 1 < N_IDS; m++) {
                uint32_t len;
                const char *s = tern_rd_str(&r, 1 << 16, &len);
                TEST_ASSERT(!r.err);
                TEST_ASSERT(!prev || id_cmp(prev, prev_len, s, len) < 0,
                            "item %zu: member %zu out of order", i, m);
                prev = s;
                prev_len = len;
        }
        TEST_EQ_INT(tern_rd_left(&r), 0);
        tern_buf_free(&v);
}

static void test_pair_keys(void) {
        char *dir = test_tmpdir("cooc-pair-keys");
        feat_store_conf_t sc = {.dir = dir};
        feat_store_t *st = feat_store_open(&sc, errstr, sizeof(errstr));
        feat_conf_t conf;
        feat_engine_t *eng;
        TEST_ASSERT(st, "%s", errstr);
        feat_conf_default(&conf);
        eng = feat_engine_new(st, &conf, errstr, sizeof(errstr));
        TEST_ASSERT(eng, "%s", errstr);
        for (size_t i = 0; i < N_IDS; i++) { /* one user: every pair once */
                tern_event_t ev;
                tern_event_clear(&ev);
                ev.user_id = tern_str_c("u");
                ev.item_id.ptr = ids[i].s;
                ev.item_id.len = ids[i].len;
                ev.type = TERN_EV_VIEW;
                ev.ts_ms = 1000 + (int64_t)i;
                TEST_ASSERT(!feat_engine_apply(eng, &ev, NULL, NULL, errstr,
                                               sizeof(errstr)),
                            "%s", errstr);
        }
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)),
                    "%s", errstr);
        check_pairs(st);
        for (size_t i = 0; i < N_IDS && !test_failed_flag; i++)
                check_top(st, i);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

TEST_MAIN(TEST_CASE(test_pair_keys));
