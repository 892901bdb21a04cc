/* TERN_TEST_LINK: tern_features */
/*
 * 0005-store — the RocksDB store: merge operator sums, offsets round trip,
 * one WriteBatch is atomic (state and offsets appear together after a
 * reopen), read-only open, and corrupt records give errors, not crashes.
 */
#include "test.h"

#include <stdint.h>

#include "features/feat_engine.h"

static char errstr[512];

static feat_store_t *open_store(const char *dir, int ro) {
        feat_store_conf_t sc = {0};
        sc.dir = dir;
        sc.read_only = ro;
        sc.block_cache_mb = 8;
        sc.write_buffer_mb = 4;
        return feat_store_open(&sc, errstr, sizeof(errstr));
}

static int64_t get_counter(feat_store_t *st, feat_cf_t cf, const char *key) {
        tern_buf_t v;
        int found;
        int64_t r = -1;
        tern_buf_init(&v, 64);
        if (!feat_store_get(st, cf, key, strlen(key), &v, &found, errstr,
                            sizeof(errstr)) &&
            found)
                r = feat_counter_decode(v.data, v.len);
        tern_buf_free(&v);
        return r;
}

static void test_merge_sums(void) {
        char *dir = test_tmpdir("store-merge");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        TEST_ASSERT(st, "%s", errstr);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 5);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 7);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "j", 1, -3);
        TEST_EQ_INT(feat_batch_count(b), 3);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_batch_clear(b);
        TEST_EQ_INT(get_counter(st, FEAT_CF_ITEM, "i"), 12);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 30);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_store_close(st);
        st = open_store(dir, 0);
        TEST_EQ_INT(get_counter(st, FEAT_CF_ITEM, "i"), 42);
        TEST_EQ_INT(get_counter(st, FEAT_CF_ITEM, "j"), -3);
        TEST_EQ_INT(get_counter(st, FEAT_CF_ITEM, "k"), -1);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

static void test_offsets_atomic(void) {
        char *dir = test_tmpdir("store-offsets");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        int64_t off;
        int found;
        TEST_ASSERT(st, "%s", errstr);
        TEST_ASSERT(!feat_store_offset_get(st, "events", 3, &off, &found,
                                           errstr, sizeof(errstr)));
        TEST_EQ_INT(found, 0);
        feat_batch_put(b, st, FEAT_CF_META, "k", 1, "v1", 2);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 1);
        feat_batch_offset_put(b, st, "events", 3, 1234567890123LL);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_batch_clear(b);
        /* a batch never written leaves no trace */
        feat_batch_put(b, st, FEAT_CF_META, "lost", 4, "x", 1);
        feat_batch_offset_put(b, st, "events", 3, 99);
        feat_store_close(st);
        st = open_store(dir, 0);
        TEST_ASSERT(!feat_store_offset_get(st, "events", 3, &off, &found,
                                           errstr, sizeof(errstr)));
        TEST_EQ_INT(found, 1);
        TEST_EQ_INT(off, 1234567890123LL);
        TEST_EQ_INT(get_counter(st, FEAT_CF_ITEM, "i"), 1);
        TEST_EQ_INT(get_counter(st, FEAT_CF_META, "lost"), -1);
        TEST_ASSERT(!feat_store_offset_get(st, "events", 4, &off, &found,
                                           errstr, sizeof(errstr)));
        TEST_EQ_INT(found, 0);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

static void test_read_only(void) {
        char *dir = test_tmpdir("store-ro");
        feat_store_t *st = open_store(dir, 0), *ro;
        feat_batch_t *b = feat_batch_new();
        feat_iter_t *it;
        const uint8_t *k, *v;
        size_t kl, vl;
        int n = 0;
        TEST_ASSERT(st, "%s", errstr);
        feat_batch_put(b, st, FEAT_CF_PROFILE, "a1", 2, "x", 1);
        feat_batch_put(b, st, FEAT_CF_PROFILE, "a2", 2, "y", 1);
        feat_batch_put(b, st, FEAT_CF_PROFILE, "b1", 2, "z", 1);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_store_close(st);
        TEST_ASSERT((ro = open_store(dir, 1)), "%s", errstr);
        it = feat_iter_new(ro, FEAT_CF_PROFILE, "a", 1);
        while (feat_iter_next(it, &k, &kl, &v, &vl))
                n++;
        TEST_ASSERT(!feat_iter_error(it));
        feat_iter_destroy(it);
        TEST_EQ_INT(n, 2);
        feat_batch_clear(b);
        feat_batch_put(b, ro, FEAT_CF_PROFILE, "c", 1, "w", 1);
        TEST_EQ_INT(feat_store_write(ro, b, errstr, sizeof(errstr)),
                    TERN_ERR_STATE);
        feat_store_close(ro);
        feat_batch_destroy(b);
        /* a missing store cannot be opened read-only */
        free(dir);
        dir = test_tmpdir("store-ro-missing");
        strcat(dir, "/none");
        TEST_ASSERT(!open_store(dir, 1));
        free(dir);
}

static int apply(feat_engine_t *eng, const char *user, const char *item) {
        tern_event_t ev;
        tern_event_clear(&ev);
        ev.user_id = tern_str_c(user);
        ev.item_id = tern_str_c(item);
        ev.type = TERN_EV_VIEW;
        ev.ts_ms = 1000;
        return feat_engine_apply(eng, &ev, NULL, NULL, errstr, sizeof(errstr));
}

static void test_corrupt(void) {
        char *dir = test_tmpdir("store-corrupt");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        feat_engine_t *eng;
        feat_conf_t c;
        tern_buf_t key, out;
        tern_buf_init(&key, 1024);
        tern_buf_init(&out, 1 << 16);
        feat_conf_default(&c);
        TEST_ASSERT(st, "%s", errstr);
        feat_key_user(&key, 0, "bad", 3);
        feat_batch_put(b, st, FEAT_CF_PROFILE, key.data, key.len,
                       "\x01\x05\xff", 3);
        feat_key_user(&key, 0, "badwin", 6);
        feat_batch_put(b, st, FEAT_CF_WINDOW, key.data, key.len, "\x09\x00", 2);
        feat_batch_put(b, st, FEAT_CF_ITEM, "badn", 4, "123", 3);
        feat_key_cooc(&key, "badc", 4, "x", 1);
        feat_batch_put(b, st, FEAT_CF_COOC, key.data, key.len, "1", 1);
        feat_batch_put(b, st, FEAT_CF_META, "trending", 8, "\x07", 1);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        /* a corrupt trending record refuses the engine */
        TEST_ASSERT(!feat_engine_new(st, &c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "trending"), "%s", errstr);
        feat_batch_clear(b);
        feat_batch_put(b, st, FEAT_CF_META, "trending", 8, "\x01\x64\x00", 3);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        TEST_ASSERT((eng = feat_engine_new(st, &c, errstr, sizeof(errstr))),
                    "%s", errstr);
        TEST_EQ_INT(apply(eng, "bad", "i"), TERN_ERR_STATE);
        TEST_ASSERT(strstr(errstr, "\"bad\""), "%s", errstr);
        TEST_EQ_INT(apply(eng, "badwin", "i"), TERN_ERR_STATE);
        TEST_EQ_INT(apply(eng, "good", "badn"), TERN_ERR_STATE);
        TEST_EQ_INT(apply(eng, "good", "badc"), TERN_ERR_STATE);
        TEST_ASSERT(strstr(errstr, "badc"), "%s", errstr);
        /* the engine is still usable */
        TEST_EQ_INT(apply(eng, "good", "ok1"), TERN_OK);
        TEST_EQ_INT(apply(eng, "good", "ok2"), TERN_OK);
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        TEST_EQ_INT(
            feat_inspect_user_json(st, "bad", 0, &out, errstr, sizeof(errstr)),
            TERN_ERR_STATE);
        TEST_EQ_INT(
            feat_inspect_item_json(st, "badc", 0, &out, errstr, sizeof(errstr)),
            TERN_ERR_STATE);
        TEST_EQ_INT(
            feat_inspect_item_json(st, "ok1", 0, &out, errstr, sizeof(errstr)),
            TERN_OK);
        feat_engine_destroy(eng);
        feat_batch_destroy(b);
        feat_store_close(st);
        tern_buf_free(&key);
        tern_buf_free(&out);
        free(dir);
}

/* A malformed merge operand fails the read instead of a wrong count. */
static void test_corrupt_operand(void) {
        char *dir = test_tmpdir("store-operand");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        tern_buf_t v;
        int found;
        TEST_ASSERT(st, "%s", errstr);
        tern_buf_init(&v, 64);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 5);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_batch_clear(b);
        feat_batch_put(b, st, FEAT_CF_ITEM, "i", 1, "abc", 3);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 5);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        TEST_EQ_INT(feat_store_get(st, FEAT_CF_ITEM, "i", 1, &v, &found, errstr,
                                   sizeof(errstr)),
                    TERN_ERR_STATE);
        tern_buf_free(&v);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

/* A malformed pair-list operand (its header claims 100 entries, none
 * follow) fails the merge with an error naming the state, never a crash
 * or a partial count; well-formed lists merge by summing per neighbour. */
static void test_cooc_list_operands(void) {
        static const uint8_t list_a[] = {2, 2, 2, 'x', 2, 2, 'y', 4};
        static const uint8_t list_b[] = {2, 1, 2, 'x', 6};
        static const uint8_t bad[] = {2, 100};
        char *dir = test_tmpdir("store-lists");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        tern_buf_t key, out;
        TEST_ASSERT(st, "%s", errstr);
        tern_buf_init(&key, 64);
        tern_buf_init(&out, 4096);
        feat_key_cooc_prefix(&key, "i", 1);
        feat_batch_merge(b, st, FEAT_CF_COOC, key.data, key.len, list_a,
                         sizeof(list_a));
        feat_batch_merge(b, st, FEAT_CF_COOC, key.data, key.len, list_b,
                         sizeof(list_b));
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 2);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "x", 1, 4);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "y", 1, 2);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)), "%s",
                    errstr);
        TEST_EQ_INT(
            feat_inspect_item_json(st, "i", 0, &out, errstr, sizeof(errstr)),
            TERN_OK);
        /* x: 1 + 3 = 4, y: 2 (lists carry Avro longs: 2 -> 1, 4 -> 2, 6 -> 3)
         */
        TEST_ASSERT(strstr((char *)out.data, "\"item_id\":\"x\",\"c\":4") &&
                        strstr((char *)out.data, "\"item_id\":\"y\",\"c\":2"),
                    "%.*s", (int)out.len, (char *)out.data);
        feat_batch_clear(b);
        feat_batch_merge(b, st, FEAT_CF_COOC, key.data, key.len, bad,
                         sizeof(bad));
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)), "%s",
                    errstr);
        tern_buf_reset(&out);
        TEST_EQ_INT(
            feat_inspect_item_json(st, "i", 0, &out, errstr, sizeof(errstr)),
            TERN_ERR_STATE);
        tern_buf_free(&key);
        tern_buf_free(&out);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

/* A list record of ids k0000.. with counts cnt[] (0: absent), in the
 * order ids[] gives. */
static void put_list(tern_buf_t *o, const int *ids, int n, const int64_t *cnt) {
        int m = 0;
        char id[8];
        for (int i = 0; i < n; i++)
                m += cnt[ids[i]] != 0;
        tern_buf_reset(o);
        tern_buf_put_u8(o, FEAT_COOC_LIST_VERSION);
        tern_buf_put_varint(o, (uint64_t)m);
        for (int i = 0; i < n; i++)
                if (cnt[ids[i]]) {
                        snprintf(id, sizeof(id), "k%04d", ids[i]);
                        tern_buf_put_str(o, id, 5);
                        tern_buf_put_long(o, cnt[ids[i]]);
                }
}

/* A stored list (a put) and many operands, merged on read: the one-pass
 * merge with the sorted list and the sort-everything path for an
 * unsorted one give the same sorted, summed list as the reference. */
static void test_cooc_list_merge_existing(void) {
        enum { N = 3000, OPS = 40, PER = 25 };
        static int64_t base[N], want[N], op[N];
        static int order[N];
        char *dir = test_tmpdir("store-merge");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        tern_buf_t key, val, expect;
        uint64_t rng = 12345;
        int found;
        TEST_ASSERT(st, "%s", errstr);
        tern_buf_init(&key, 64);
        tern_buf_init(&val, 1 << 20);
        tern_buf_init(&expect, 1 << 20);
        for (int sorted = 1; sorted >= 0; sorted--) {
                feat_batch_clear(b);
                feat_key_cooc_prefix(&key, sorted ? "s" : "u", 1);
                for (int i = 0; i < N; i++) {
                        rng = rng * 6364136223846793005ULL + 1;
                        base[i] = want[i] =
                            (rng >> 60) & 1 ? (int64_t)(rng >> 58) + 1 : 0;
                        order[i] = sorted ? i : N - 1 - i;
                }
                put_list(&val, order, N, base);
                feat_batch_put(b, st, FEAT_CF_COOC, key.data, key.len, val.data,
                               val.len);
                for (int o = 0; o < OPS; o++) {
                        memset(op, 0, sizeof(op));
                        for (int k = 0; k < PER; k++) {
                                rng = rng * 6364136223846793005ULL + 1;
                                op[(rng >> 33) % N] += 1 + (int64_t)(rng >> 62);
                        }
                        for (int i = 0; i < N; i++) {
                                want[i] += op[i];
                                order[i] = i;
                        }
                        put_list(&val, order, N, op);
                        feat_batch_merge(b, st, FEAT_CF_COOC, key.data, key.len,
                                         val.data, val.len);
                }
                TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)),
                            "%s", errstr);
                for (int i = 0; i < N; i++)
                        order[i] = i;
                put_list(&expect, order, N, want);
                TEST_ASSERT(!feat_store_get(st, FEAT_CF_COOC, key.data, key.len,
                                            &val, &found, errstr,
                                            sizeof(errstr)) &&
                                found,
                            "%s", errstr);
                TEST_ASSERT(val.len == expect.len &&
                                !memcmp(val.data, expect.data, val.len),
                            "%s existing list: merged record differs",
                            sorted ? "sorted" : "unsorted");
        }
        tern_buf_free(&key);
        tern_buf_free(&val);
        tern_buf_free(&expect);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

/* Every item as JSON lines, against one-item documents. */
static void test_items_jsonl(void) {
        char *dir = test_tmpdir("store-jsonl");
        feat_store_t *st = open_store(dir, 0);
        feat_engine_t *eng;
        feat_conf_t c;
        tern_buf_t one, all;
        char *buf = NULL;
        size_t blen = 0;
        FILE *f;
        feat_conf_default(&c);
        TEST_ASSERT(st &&
                    (eng = feat_engine_new(st, &c, errstr, sizeof(errstr))));
        apply(eng, "u", "a");
        apply(eng, "u", "b");
        apply(eng, "v", "b");
        apply(eng, "v", "c");
        apply(eng, "u", "c");
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        f = open_memstream(&buf, &blen);
        TEST_ASSERT(!feat_inspect_items_jsonl(st, 0, f, errstr, sizeof(errstr)),
                    "%s", errstr);
        fclose(f);
        tern_buf_init(&one, 1 << 16);
        tern_buf_init(&all, 1 << 16);
        for (const char *i = "abc"; *i; i++) {
                char id[2] = {*i, 0};
                tern_buf_reset(&one);
                TEST_ASSERT(!feat_inspect_item_json(st, id, 0, &one, errstr,
                                                    sizeof(errstr)));
                tern_buf_append(&all, one.data, one.len);
                tern_buf_put_u8(&all, '\n');
        }
        TEST_ASSERT(all.len == blen && !memcmp(all.data, buf, blen), "%s", buf);
        TEST_ASSERT(strstr(buf, "{\"item_id\":\"c\",\"n\":2,\"neighbors\":"
                                "[{\"item_id\":\"b\",\"c\":2,\"score\":1},"));
        free(buf);
        tern_buf_free(&one);
        tern_buf_free(&all);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
}

TEST_MAIN(TEST_CASE(test_merge_sums), TEST_CASE(test_offsets_atomic),
          TEST_CASE(test_read_only), TEST_CASE(test_corrupt),
          TEST_CASE(test_corrupt_operand), TEST_CASE(test_cooc_list_operands),
          TEST_CASE(test_cooc_list_merge_existing),
          TEST_CASE(test_items_jsonl));
