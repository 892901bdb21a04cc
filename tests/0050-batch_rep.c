/* TERN_TEST_LINK: tern_features */
/*
 * 0050-batch_rep — feat_batch appends records in RocksDB's WriteBatch
 * format itself (feat_store.c, "batches"): its bytes must be exactly the
 * bytes RocksDB's own WriteBatch Put/Merge/Delete build for the same
 * records in the same column families (lengths across every varint
 * size), and a written batch must read back.
 */
#include "test.h"

#include <rocksdb/c.h>
#include <stdint.h>

#include "features/feat_store.h"

static char errstr[512];

static feat_store_t *open_store(const char *dir) {
        feat_store_conf_t sc = {0};
        sc.dir = dir;
        sc.block_cache_mb = 8;
        sc.write_buffer_mb = 4;
        return feat_store_open(&sc, errstr, sizeof(errstr));
}

enum { OP_PUT, OP_MERGE, OP_DELETE };
static const size_t lens[] = {0, 1, 127, 128, 300, 16383, 16384, 70000};
#define N_LENS (sizeof(lens) / sizeof(lens[0]))

static char bytes[70000 + 16];

/* The i-th record of the sequence both builders append. */
static void record(size_t i, int *cf, int *op, size_t *klen, size_t *vlen) {
        *cf = (int)(i % FEAT_CF__CNT);
        *op = (int)(i / FEAT_CF__CNT % 3);
        *klen = lens[i % N_LENS] % 20000 + 1; /* keys: 1 .. 16385 bytes */
        /* merges are of counters: 8-byte operands (feat_batch_merge_add) */
        *vlen = *op == OP_MERGE ? 8 : lens[i / 3 % N_LENS];
}

/* The operand rocksdb_rep() merges, as feat_batch_merge_add()'s delta. */
static int64_t merge_delta(void) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | (uint8_t)bytes[7 + i];
        return (int64_t)v;
}
#define N_RECORDS (FEAT_CF__CNT * 3 * N_LENS)

/* RocksDB's own bytes for the sequence, from a store opened raw. */
static char *rocksdb_rep(const char *dir, size_t *len) {
        const char *names[FEAT_CF__CNT + 1];
        const rocksdb_options_t *cfo[FEAT_CF__CNT + 1];
        rocksdb_column_family_handle_t *cf[FEAT_CF__CNT + 1];
        rocksdb_options_t *o = rocksdb_options_create();
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        char *rerr = NULL, *out = NULL;
        const char *data;
        rocksdb_t *db;
        for (int i = 0; i <= FEAT_CF__CNT; i++) {
                names[i] = i < FEAT_CF__CNT ? feat_cf_names[i] : "default";
                cfo[i] = o;
        }
        db = rocksdb_open_column_families(o, dir, FEAT_CF__CNT + 1, names, cfo,
                                          cf, &rerr);
        if (!db) {
                fprintf(stderr, "  raw open: %s\n", rerr);
                free(rerr);
                goto out;
        }
        for (size_t i = 0; i < N_RECORDS; i++) {
                int c, op;
                size_t kl, vl;
                record(i, &c, &op, &kl, &vl);
                if (op == OP_PUT)
                        rocksdb_writebatch_put_cf(wb, cf[c], bytes, kl,
                                                  bytes + 7, vl);
                else if (op == OP_MERGE)
                        rocksdb_writebatch_merge_cf(wb, cf[c], bytes, kl,
                                                    bytes + 7, vl);
                else
                        rocksdb_writebatch_delete_cf(wb, cf[c], bytes, kl);
        }
        data = rocksdb_writebatch_data(wb, len);
        if ((out = malloc(*len)))
                memcpy(out, data, *len);
        for (int i = 0; i <= FEAT_CF__CNT; i++)
                rocksdb_column_family_handle_destroy(cf[i]);
        rocksdb_close(db);
out:
        rocksdb_writebatch_destroy(wb);
        rocksdb_options_destroy(o);
        return out;
}

static void test_same_bytes(void) {
        char *dir = test_tmpdir("batch-rep");
        feat_store_t *st = open_store(dir);
        feat_batch_t *b = feat_batch_new();
        const uint8_t *ours;
        size_t len = 0, our_len = 0;
        char *theirs;
        for (size_t i = 0; i < sizeof(bytes); i++)
                bytes[i] = (char)('a' + i % 26);
        TEST_ASSERT(st && b, "%s", errstr);
        feat_store_close(st); /* created the column families */
        theirs = rocksdb_rep(dir, &len);
        TEST_ASSERT(theirs, "no RocksDB batch");
        TEST_ASSERT((st = open_store(dir)), "%s", errstr);
        for (int round = 0; round < 2; round++) { /* the second after clear */
                feat_batch_clear(b);
                for (size_t i = 0; i < N_RECORDS; i++) {
                        int c, op;
                        size_t kl, vl;
                        record(i, &c, &op, &kl, &vl);
                        if (op == OP_PUT)
                                feat_batch_put(b, st, (feat_cf_t)c, bytes, kl,
                                               bytes + 7, vl);
                        else if (op == OP_MERGE)
                                feat_batch_merge_add(b, st, (feat_cf_t)c, bytes,
                                                     kl, merge_delta());
                        else
                                feat_batch_delete(b, st, (feat_cf_t)c, bytes,
                                                  kl);
                }
                TEST_EQ_INT(feat_batch_count(b), N_RECORDS);
                ours = feat_batch_data(b, &our_len);
                TEST_EQ_INT(our_len, len);
                TEST_ASSERT(!memcmp(ours, theirs, len), "bytes differ");
        }
        free(theirs);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

static void test_write_reads_back(void) {
        char *dir = test_tmpdir("batch-rep-rw");
        feat_store_t *st = open_store(dir);
        feat_batch_t *b = feat_batch_new();
        tern_buf_t v;
        int found = 0;
        TEST_ASSERT(st && b, "%s", errstr);
        tern_buf_init(&v, 1 << 20);
        feat_batch_put(b, st, FEAT_CF_PROFILE, "u1", 2, bytes, 20000);
        feat_batch_put(b, st, FEAT_CF_META, "m", 1, "x", 1);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 5);
        feat_batch_merge_add(b, st, FEAT_CF_ITEM, "i", 1, 7);
        TEST_ASSERT(!feat_store_write(st, b, errstr, sizeof(errstr)), "%s",
                    errstr);
        feat_batch_clear(b);
        feat_batch_delete(b, st, FEAT_CF_META, "m", 1);
        TEST_ASSERT(!feat_store_write_begin(st, b, errstr, sizeof(errstr)),
                    "%s", errstr);
        TEST_ASSERT(!feat_store_write_end(st, errstr, sizeof(errstr)), "%s",
                    errstr);
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_PROFILE, "u1", 2, &v, &found,
                                    errstr, sizeof(errstr)) &&
                        found && v.len == 20000 &&
                        !memcmp(v.data, bytes, 20000),
                    "profile");
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_ITEM, "i", 1, &v, &found,
                                    errstr, sizeof(errstr)) &&
                        found,
                    "item");
        TEST_EQ_INT(feat_counter_decode(v.data, v.len), 12);
        TEST_ASSERT(!feat_store_get(st, FEAT_CF_META, "m", 1, &v, &found,
                                    errstr, sizeof(errstr)) &&
                        !found,
                    "deleted");
        tern_buf_free(&v);
        feat_batch_destroy(b);
        feat_store_close(st);
        free(dir);
}

TEST_MAIN(TEST_CASE(test_same_bytes), TEST_CASE(test_write_reads_back));
