/* TERN_TEST_LINK: tern_features */
/*
 * 0051-cooc_list_order — pair lists of ids whose leading bytes tie (long
 * shared prefixes, ids that are prefixes of others, bytes 0x00 and 0x01),
 * where the commit's sort of pending pairs must fall back from the first
 * bytes to the whole id: every stored list holds each other item once,
 * in byte order, the shorter first, with its count. The merge operator
 * sorts an unsorted operand, so what this reads back does not show the
 * operand's own order; with an assertion of that order in flush_pairs
 * these events reach the fallback (a fallback that answers "not less"
 * fails it), and this test, 0003 and the loop_instr stream pass.
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

/* Item i's stored list: every other item once, ascending, c = 1. */
static void check_list(feat_store_t *st, size_t i) {
        tern_buf_t k, v;
        feat_cooc_rd_t lr;
        const uint8_t *b, *prev = NULL;
        uint32_t blen, prev_len = 0, n = 0;
        int64_t c;
        int found = 0, r;
        tern_buf_init(&k, 1 << 16);
        tern_buf_init(&v, 1 << 20);
        feat_key_cooc_prefix(&k, ids[i].s, ids[i].len);
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_COOC, k.data, k.len, &v, &found,
                                    errstr, sizeof(errstr)) &&
                        found,
                    "item %zu: no list (%s)", i, errstr);
        TEST_ASSERT(!feat_cooc_list_open(&lr, v.data, v.len));
        while ((r = feat_cooc_list_next(&lr, &b, &blen, &c)) == 1) {
                TEST_ASSERT(!prev || id_cmp((const char *)prev, prev_len,
                                            (const char *)b, blen) < 0,
                            "item %zu: entry %u out of order", i, n);
                TEST_EQ_INT(c, 1);
                prev = b;
                prev_len = blen;
                n++;
        }
        TEST_EQ_INT(r, 0);
        TEST_EQ_INT(n, N_IDS - 1);
        tern_buf_free(&k);
        tern_buf_free(&v);
}

static void test_list_order(void) {
        char *dir = test_tmpdir("cooc-list-order");
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
        for (size_t i = 0; i < N_IDS && !test_failed_flag; i++)
                check_list(st, i);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

TEST_MAIN(TEST_CASE(test_list_order));
