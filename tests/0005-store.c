/* TERN_TEST_LINK: tern_features */
/*
 * 0005-store — the RocksDB store: merge operator sums, offsets round trip,
 * one WriteBatch is atomic (state and offsets appear together after a
 * reopen), read-only open, and corrupt records give errors, not crashes;
 * a directory reopens under the other compaction style, and the LSM
 * figures (L0 files, sorted runs) follow flushes and compactions.
 */
#include "test.h"

#include <dirent.h>
#include <stdint.h>

#include "features/feat_engine.h"

static char errstr[512];

static feat_store_t *open_store_style(const char *dir, int ro, int universal) {
        feat_store_conf_t sc = {0};
        sc.dir = dir;
        sc.read_only = ro;
        sc.block_cache_mb = 8;
        sc.write_buffer_mb = 4;
        sc.universal = universal;
        return feat_store_open(&sc, errstr, sizeof(errstr));
}

static feat_store_t *open_store(const char *dir, int ro) {
        return open_store_style(dir, ro, 0);
}

/* The counter under key, -1 when absent or unreadable. */
static int64_t get_counter_key(feat_store_t *st, feat_cf_t cf, const void *key,
                               size_t klen) {
        tern_buf_t v;
        int found;
        int64_t r = -1;
        tern_buf_init(&v, 64);
        if (!feat_store_get(st, cf, key, klen, &v, &found, errstr,
                            sizeof(errstr)) &&
            found)
                r = feat_counter_decode(v.data, v.len);
        tern_buf_free(&v);
        return r;
}

static int64_t get_counter(feat_store_t *st, feat_cf_t cf, const char *key) {
        return get_counter_key(st, cf, key, strlen(key));
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

/* Files in dir whose name starts with prefix and ends with suffix. */
static int count_files(const char *dir, const char *prefix,
                       const char *suffix) {
        int n = 0;
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                size_t len = strlen(e->d_name), sl = strlen(suffix);
                n += !strncmp(e->d_name, prefix, strlen(prefix)) && len >= sl &&
                     !strcmp(e->d_name + len - sl, suffix);
        }
        if (d)
                closedir(d);
        return n;
}

/* The cooc key of pair k of the test's 500: ids "p<k>" and "q<k>". */
static void pair_key(tern_buf_t *key, int k) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "p%05d", k);
        snprintf(b, sizeof(b), "q%05d", k);
        tern_buf_reset(key);
        feat_key_cooc(key, a, strlen(a), b, strlen(b));
}

static int64_t get_pair(feat_store_t *st, tern_buf_t *key, int k) {
        pair_key(key, k);
        return get_counter_key(st, FEAT_CF_COOC, key->data, key->len);
}

/* Adds 1 to each of pair counters 0..pairs-1, visited in the order
 * k * stride % pairs (a permutation when stride is prime to pairs), in
 * one written batch. */
static void add_one_to_pairs(feat_store_t *st, feat_batch_t *b, tern_buf_t *key,
                             int pairs, int stride) {
        for (int k = 0; k < pairs; k++) {
                pair_key(key, k * stride % pairs);
                feat_batch_merge_add(b, st, FEAT_CF_COOC, key->data, key->len,
                                     1);
        }
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        feat_batch_clear(b);
}

/* state.compaction promises a directory reopens with the other style.
 * Each round, under level then universal in turn: add 1 to every pair
 * counter, close (the flush leaves an L0 file, which the LSM figures
 * must show), reopen and compact everything below L0 under that round's
 * style, so the next round's style meets the files this one wrote. */
static void test_compaction_switch(void) {
        char *dir = test_tmpdir("store-compaction");
        const int rounds = 6, pairs = 500;
        feat_store_mem_t mem;
        tern_buf_t key;
        feat_batch_t *b = feat_batch_new();
        tern_buf_init(&key, 64);
        for (int r = 0; r < rounds; r++) {
                int universal = r & 1;
                feat_store_t *st = open_store_style(dir, 0, universal);
                TEST_ASSERT(st, "round %d: %s", r, errstr);
                add_one_to_pairs(st, b, &key, pairs, 7919);
                feat_store_close(st);
                st = open_store_style(dir, 0, universal);
                TEST_ASSERT(st, "round %d reopen: %s", r, errstr);
                feat_store_memory(st, &mem);
                TEST_ASSERT(mem.l0_files_max >= 1, "round %d: %llu L0 files", r,
                            (unsigned long long)mem.l0_files_max);
                feat_store_compact(st);
                feat_store_memory(st, &mem);
                TEST_EQ_INT(mem.l0_files_max, 0);
                TEST_ASSERT(mem.sorted_runs_max >= 1);
                TEST_EQ_INT(get_pair(st, &key, 0), r + 1);
                TEST_EQ_INT(get_pair(st, &key, pairs - 1), r + 1);
                feat_store_close(st);
        }
        /* Six opens leave no temporary OPTIONS files and no old LOGs. */
        TEST_EQ_INT(count_files(dir, "OPTIONS-", ".dbtmp"), 0);
        TEST_EQ_INT(count_files(dir, "LOG.old", ""), 0);
        for (int universal = 0; universal < 2; universal++) {
                feat_store_t *st = open_store_style(dir, 1, universal);
                TEST_ASSERT(st, "%s", errstr);
                for (int k = 0; k < pairs; k += 37)
                        TEST_EQ_INT(get_pair(st, &key, k), rounds);
                feat_store_close(st);
        }
        tern_buf_free(&key);
        feat_batch_destroy(b);
        free(dir);
}

/* Under level compaction the cooc column family waits for 8 L0 files
 * (not RocksDB's 4) before compacting into L1, which it rewrites whole
 * each time: six flushed files (one per close) must all still be in L0.
 * Nothing is scheduled below the trigger, so this cannot race. */
static void test_cooc_l0_trigger(void) {
        char *dir = test_tmpdir("store-l0-trigger");
        const int files = 6, pairs = 200;
        feat_store_mem_t mem;
        tern_buf_t key;
        feat_batch_t *b = feat_batch_new();
        tern_buf_init(&key, 64);
        for (int f = 0; f < files; f++) {
                feat_store_t *st = open_store(dir, 0);
                TEST_ASSERT(st, "file %d: %s", f, errstr);
                add_one_to_pairs(st, b, &key, pairs, 1);
                feat_store_close(st);
        }
        feat_store_t *st = open_store(dir, 0);
        TEST_ASSERT(st, "%s", errstr);
        feat_store_memory(st, &mem);
        TEST_EQ_INT(mem.l0_files_max, files);
        TEST_EQ_INT(get_pair(st, &key, pairs - 1), files);
        feat_store_close(st);
        tern_buf_free(&key);
        feat_batch_destroy(b);
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
        feat_batch_put(b, st, FEAT_CF_TOP, "badc", 4, "\x07", 1);
        feat_batch_put(b, st, FEAT_CF_META, "cooc_layout", 11, "\x02\x40", 2);
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

static feat_engine_t *engine_k(feat_store_t *st, uint32_t k) {
        feat_conf_t c;
        feat_conf_default(&c);
        c.top_neighbors = k;
        return feat_engine_new(st, &c, errstr, sizeof(errstr));
}

/* Pairs are stored once, under the id that sorts first, and each item's
 * top list members in its top record; a store in an older layout, or kept
 * with fewer neighbours than configured, is refused with a clear error. */
static void test_pair_layout(void) {
        char *dir = test_tmpdir("store-layout");
        feat_store_t *st = open_store(dir, 0);
        feat_batch_t *b = feat_batch_new();
        feat_engine_t *eng;
        feat_conf_t c;
        tern_buf_t key, v;
        int found;
        tern_buf_init(&key, 1024);
        tern_buf_init(&v, 1024);
        feat_conf_default(&c);
        TEST_ASSERT(st && (eng = engine_k(st, 2)), "%s", errstr);
        apply(eng, "u", "zz");
        apply(eng, "u", "a");
        apply(eng, "u", "m");
        apply(eng, "v", "a");
        apply(eng, "v", "m");
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
        /* c(a,m) = 2 under "a", whichever order the pair came in */
        feat_key_cooc(&key, "m", 1, "a", 1);
        TEST_ASSERT(key.len == 6 && !memcmp(key.data + 4, "am", 2));
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_COOC, key.data, key.len, &v,
                                    &found, errstr, sizeof(errstr)) &&
                    found && feat_counter_decode(v.data, v.len) == 2);
        feat_key_cooc(&key, "zz", 2, "m", 1);
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_COOC, key.data, key.len, &v,
                                    &found, errstr, sizeof(errstr)) &&
                    found && feat_counter_decode(v.data, v.len) == 1);
        /* zz's top record: members a and m, id order */
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_TOP, "zz", 2, &v, &found,
                                    errstr, sizeof(errstr)) &&
                    found);
        /* version 1, k 2, not counted, 2 members */
        static const char rec[] = {1, 2, 0, 2, 2, 'a', 2, 'm'};
        TEST_ASSERT(v.len == sizeof(rec) && !memcmp(v.data, rec, sizeof(rec)),
                    "len %zu", v.len);
        /* more neighbours than the top records were kept with */
        c.top_neighbors = 3;
        TEST_ASSERT(!feat_engine_new(st, &c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "features.top_neighbors is 3"), "%s",
                    errstr);
        /* fewer is fine, and a reload answers from the records */
        c.top_neighbors = 1;
        TEST_ASSERT((eng = feat_engine_new(st, &c, errstr, sizeof(errstr))),
                    "%s", errstr);
        feat_engine_destroy(eng);
        feat_store_close(st);
        free(dir);
        /* a pair list of an older tern, no layout record */
        dir = test_tmpdir("store-layout-old");
        st = open_store(dir, 0);
        feat_key_cooc_prefix(&key, "i", 1);
        feat_batch_put(b, st, FEAT_CF_COOC, key.data, key.len, "\x02\x00", 2);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        TEST_ASSERT(!feat_engine_new(st, &c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "older tern's layout"), "%s", errstr);
        /* a layout record of another version */
        feat_batch_clear(b);
        feat_batch_put(b, st, FEAT_CF_META, "cooc_layout", 11, "\x01\x20", 2);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)));
        TEST_ASSERT(!feat_engine_new(st, &c, errstr, sizeof(errstr)));
        TEST_ASSERT(strstr(errstr, "in layout 1, this tern reads layout 2"),
                    "%s", errstr);
        feat_batch_destroy(b);
        feat_store_close(st);
        tern_buf_free(&key);
        tern_buf_free(&v);
        free(dir);
}

/* A's neighbours (c desc, id asc) as "B1 C1". */
static void top_of(feat_engine_t *eng, const char *item, char *out,
                   size_t out_size) {
        const feat_neighbor_t *nb;
        uint32_t n = 0;
        size_t o = 0;
        out[0] = '\0';
        TEST_ASSERT(!feat_engine_top_neighbors(eng, item,
                                               (uint32_t)strlen(item), &nb, &n,
                                               errstr, sizeof(errstr)),
                    "%s", errstr);
        for (uint32_t i = 0; i < n && o + 32 < out_size; i++)
                o += (size_t)snprintf(out + o, out_size - o, "%s%.*s%lld",
                                      i ? " " : "", (int)nb[i].len, nb[i].item,
                                      (long long)nb[i].c);
}

/* A top record kept with a larger k than now is rewritten with this k:
 * kept as it was, a partner that stayed below the list would be taken
 * for absent at the next load (the record, not full at the old k, says
 * A has no other pairs). */
static void test_lower_k_rewrites(void) {
        char *dir = test_tmpdir("store-lower-k");
        feat_store_t *st = open_store(dir, 0);
        feat_engine_t *eng;
        char top[256];
        TEST_ASSERT(st && (eng = engine_k(st, 3)), "%s", errstr);
        apply(eng, "u", "A");
        apply(eng, "u", "B");
        apply(eng, "u", "C"); /* A: {B 1, C 1}, not full at 3 */
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
        TEST_ASSERT((eng = engine_k(st, 2)), "%s", errstr);
        /* X's own list {P 2, Q 2} leaves A out, so only A's bound can
         * tell what c(A,X) may be */
        for (int i = 0; i < 4; i++) {
                char user[8];
                snprintf(user, sizeof(user), "w%d", i);
                apply(eng, user, "X");
                apply(eng, user, i < 2 ? "P" : "Q");
        }
        apply(eng, "w", "A");
        apply(eng, "w", "X"); /* c(A,X) = 1: below C by id */
        top_of(eng, "A", top, sizeof(top));
        TEST_ASSERT(!strcmp(top, "B1 C1"), "%s", top);
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
        TEST_ASSERT((eng = engine_k(st, 2)), "%s", errstr);
        apply(eng, "y", "A");
        apply(eng, "y", "X"); /* c(A,X) = 2 */
        top_of(eng, "A", top, sizeof(top));
        TEST_ASSERT(!strcmp(top, "X2 B1"), "%s", top);
        TEST_ASSERT(!feat_engine_commit(eng, NULL, 0, errstr, sizeof(errstr)));
        feat_engine_destroy(eng);
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

TEST_MAIN(TEST_CASE(test_merge_sums), TEST_CASE(test_compaction_switch),
          TEST_CASE(test_cooc_l0_trigger), TEST_CASE(test_offsets_atomic),
          TEST_CASE(test_read_only), TEST_CASE(test_corrupt),
          TEST_CASE(test_corrupt_operand), TEST_CASE(test_pair_layout),
          TEST_CASE(test_lower_k_rewrites), TEST_CASE(test_items_jsonl));
