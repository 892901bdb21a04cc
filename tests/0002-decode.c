/*
 * 0002-decode — the bounded Avro decoder (ingest/ingest_decode.c) and the
 * event encoder (ingest/ingest_encode.c).
 *
 * Valid records are written with Avro-C's generic writer (avro_value_t +
 * avro_value_write) so the decoder is checked against an independent
 * encoder; hostile records are built byte by byte with tern_buf.
 *
 * With TERN_WRITE_CORPUS=DIR set, case seed_corpus writes the fuzz seeds
 * (tests/fuzz/corpus/decode/) into DIR.
 */
/* TERN_TEST_LINK: tern_ingest */
#include "test.h"

#include <avro.h>
#include <stdint.h>

#include "common/tern_buf.h"
#include "ingest/ingest_decode.h"
#include "ingest/ingest_encode.h"
#include "test_avro.h"

/* An evolved writer: an extra nested field to skip (placed between known
 * ones), item/category/impression/campaign missing (default null), ts_ms as
 * int and price as float (promoted), EventType reordered plus a symbol the
 * reader lacks. */
static const char evolved_schema[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"extra\",\"type\":{\"type\":\"record\",\"name\":\"Extra\","
    " \"fields\":["
    "  {\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "  {\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":"
    "   {\"type\":\"array\",\"items\":\"long\"}}},"
    "  {\"name\":\"flag\",\"type\":\"boolean\"},"
    "  {\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F4\","
    "   \"size\":4}},"
    "  {\"name\":\"u\",\"type\":[\"null\",\"double\",\"string\"]},"
    "  {\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","
    "   \"symbols\":[\"A\",\"B\"]}},"
    "  {\"name\":\"b\",\"type\":\"bytes\"},"
    "  {\"name\":\"f\",\"type\":\"float\"}]}},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"event_type\",\"type\":{\"type\":\"enum\","
    " \"name\":\"EventType\",\"symbols\":[\"SHARE\",\"PURCHASE\",\"VIEW\","
    " \"CLICK\",\"CART\",\"FAVORITE\",\"IMPRESSION\"]}},"
    "{\"name\":\"ts_ms\",\"type\":\"int\"},"
    "{\"name\":\"price\",\"type\":[\"null\",\"float\"]},"
    "{\"name\":\"quantity\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"context\",\"type\":{\"type\":\"map\",\"values\":\"string\"}}"
    "]}";

/* Recursive and zero-size types to skip, ahead of the base fields. */
static const char nested_schema[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":["
    "{\"name\":\"chain\",\"type\":{\"type\":\"record\",\"name\":\"Node\","
    " \"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}},"
    "{\"name\":\"nulls\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"event_type\",\"type\":{\"type\":\"enum\","
    " \"name\":\"EventType\",\"symbols\":[\"VIEW\",\"CLICK\"]}},"
    "{\"name\":\"ts_ms\",\"type\":\"long\"}"
    "]}";

#define TS 1700000000000LL

/* test.h's TEST_ASSERT wants a message (an empty format trips -Werror). */
#define CHECK(cond) TEST_ASSERT(cond, "%s", "")

/* ---------------------------------------------------------------- helpers */

static ingest_decoder_t *dec_new(ingest_wire_t wire,
                                 const ingest_limits_t *lim) {
        char err[512];
        ingest_decoder_t *d =
            ingest_decoder_new(NULL, lim, wire, err, sizeof(err));
        if (!d)
                fprintf(stderr, "  decoder: %s\n", err);
        return d;
}

typedef struct res {
        tern_code_t code;
        const char *reason;
        char err[512];
        tern_event_t ev;
} res_t;

static void run(const ingest_decoder_t *d, const void *buf, size_t len,
                res_t *r) {
        tern_event_clear(&r->ev);
        r->err[0] = '\0';
        r->reason = "unset";
        r->code = ingest_decode(d, buf, len, &r->ev, &r->reason, r->err,
                                sizeof(r->err));
}

/* Decode and expect failure with this code, reason and message part. */
#define EXPECT_FAIL(d, buf, len, code_, reason_, part)                         \
        do {                                                                   \
                res_t r_;                                                      \
                run((d), (buf), (len), &r_);                                   \
                TEST_ASSERT(r_.code == (code_), "code %s, want %s: %s",        \
                            tern_code_name(r_.code), tern_code_name(code_),    \
                            r_.err);                                           \
                TEST_EQ_STR(r_.reason, reason_);                               \
                TEST_ASSERT(strstr(r_.err, (part)) != NULL,                    \
                            "message \"%s\" lacks \"%s\"", r_.err, (part));    \
        } while (0)

#define EXPECT_OK(d, buf, len, r)                                              \
        do {                                                                   \
                run((d), (buf), (len), (r));                                   \
                TEST_ASSERT((r)->code == TERN_OK, "%s: %s",                    \
                            tern_code_name((r)->code), (r)->err);              \
        } while (0)

static int str_is(tern_str_t s, const char *want) {
        if (!want)
                return s.ptr == NULL;
        return s.ptr && tern_str_eq(s, tern_str_c(want));
}

static void add_ctx(avro_value_t *rec, const char *k, const char *v) {
        avro_value_t m = fld(rec, "context"), e;
        avro_value_add(&m, k, &e, NULL, NULL);
        avro_value_set_string(&e, v);
}

/* A full base-schema record through Avro-C. */
static int write_base_avro(uint8_t *out, size_t cap, size_t *len) {
        aw_t a;
        avro_value_t f;
        if (aw_begin(&a, ingest_behavior_event_schema))
                return -1;
        set_str(&a.v, "event_id", "ev-1");
        set_str(&a.v, "user_id", "user-42");
        set_opt_str(&a.v, "item_id", "item-7");
        set_opt_str(&a.v, "category_id", NULL);
        f = fld(&a.v, "event_type");
        avro_value_set_enum(&f, TERN_EV_PURCHASE);
        f = fld(&a.v, "ts_ms");
        avro_value_set_long(&f, TS);
        f = set_branch(&a.v, "price", 1);
        avro_value_set_double(&f, 19.5);
        f = set_branch(&a.v, "quantity", 1);
        avro_value_set_int(&f, 3);
        set_opt_str(&a.v, "impression_id", "imp-9");
        set_opt_str(&a.v, "campaign_id", NULL);
        add_ctx(&a.v, "device", "ios");
        add_ctx(&a.v, "page", "home");
        return aw_end(&a, out, cap, len);
}

static const char *ctx_get(const tern_event_t *ev, const char *key) {
        static char val[256];
        for (uint32_t i = 0; i < ev->n_context; i++) {
                if (!str_is(ev->context_key[i], key))
                        continue;
                snprintf(val, sizeof(val), "%.*s", (int)ev->context_val[i].len,
                         ev->context_val[i].ptr);
                return val;
        }
        return NULL;
}

/* Hand-made base-schema record parts, for hostile variants. */
static void put_head(tern_buf_t *b, const char *eid, const char *uid,
                     int64_t ts) {
        tern_buf_put_cstr(b, eid);
        tern_buf_put_cstr(b, uid);
        tern_buf_put_long(b, 0); /* item_id null */
        tern_buf_put_long(b, 0); /* category_id null */
        tern_buf_put_long(b, TERN_EV_CLICK);
        tern_buf_put_long(b, ts);
        tern_buf_put_long(b, 0); /* price null */
        tern_buf_put_long(b, 0); /* quantity null */
        tern_buf_put_long(b, 0); /* impression_id null */
        tern_buf_put_long(b, 0); /* campaign_id null */
}

static void put_ctx_entries(tern_buf_t *b, int first, int n) {
        char k[16];
        for (int i = first; i < first + n; i++) {
                snprintf(k, sizeof(k), "k%d", i);
                tern_buf_put_cstr(b, k);
                tern_buf_put_cstr(b, "v");
        }
}

/* A block in the negative-count form: -n, byte size, entries. */
static void put_ctx_sized(tern_buf_t *b, int first, int n) {
        tern_buf_t e;
        tern_buf_init(&e, 4096);
        put_ctx_entries(&e, first, n);
        tern_buf_put_long(b, -n);
        tern_buf_put_long(b, (int64_t)e.len);
        tern_buf_append(b, e.data, e.len);
        tern_buf_free(&e);
}

static void sample_event(tern_event_t *ev) {
        tern_event_clear(ev);
        ev->event_id = tern_str_c("ev-77");
        ev->user_id = tern_str_c("u-1");
        ev->item_id = tern_str_c("item-3");
        ev->category_id = tern_str_c("");
        ev->type = TERN_EV_IMPRESSION;
        ev->ts_ms = TS + 5;
        ev->has_price = 1;
        ev->price = -0.25;
        ev->has_quantity = 1;
        ev->quantity = -7;
        ev->campaign_id = tern_str_c("camp-2");
        ev->n_context = 2;
        ev->context_key[0] = tern_str_c("channel");
        ev->context_val[0] = tern_str_c("app");
        ev->context_key[1] = tern_str_c("placement");
        ev->context_val[1] = tern_str_c("");
}

/* ------------------------------------------------------------------ cases */

static void avro_c_record_decodes(void) {
        uint8_t buf[512];
        size_t len;
        res_t r;
        ingest_decoder_t *d = dec_new(INGEST_WIRE_RAW, NULL);
        CHECK(d);
        TEST_EQ_INT(write_base_avro(buf, sizeof(buf), &len), 0);
        EXPECT_OK(d, buf, len, &r);
        CHECK(str_is(r.ev.event_id, "ev-1"));
        CHECK(str_is(r.ev.user_id, "user-42"));
        CHECK(str_is(r.ev.item_id, "item-7"));
        CHECK(str_is(r.ev.category_id, NULL));
        TEST_EQ_INT(r.ev.type, TERN_EV_PURCHASE);
        TEST_EQ_INT(r.ev.ts_ms, TS);
        CHECK(r.ev.has_price && r.ev.price == 19.5);
        CHECK(r.ev.has_quantity && r.ev.quantity == 3);
        CHECK(str_is(r.ev.impression_id, "imp-9"));
        CHECK(str_is(r.ev.campaign_id, NULL));
        TEST_EQ_INT(r.ev.n_context, 2);
        TEST_EQ_STR(ctx_get(&r.ev, "device"), "ios");
        TEST_EQ_STR(ctx_get(&r.ev, "page"), "home");
        TEST_EQ_INT(r.ev.src_partition, -1); /* src_* untouched */
        CHECK(r.reason == NULL);
        ingest_decoder_destroy(d);
}

static void encode_round_trip(void) {
        tern_event_t ev;
        tern_buf_t b;
        res_t r;
        ingest_decoder_t *d = dec_new(INGEST_WIRE_AUTO, NULL);
        CHECK(d);
        sample_event(&ev);
        tern_buf_init(&b, 4096);
        TEST_EQ_INT(ingest_encode_event(&ev, -1, &b), 0);
        EXPECT_OK(d, b.data, b.len, &r);
        CHECK(str_is(r.ev.event_id, "ev-77"));
        CHECK(str_is(r.ev.user_id, "u-1"));
        CHECK(str_is(r.ev.item_id, "item-3"));
        CHECK(str_is(r.ev.category_id, "")); /* empty, not null */
        TEST_EQ_INT(r.ev.type, TERN_EV_IMPRESSION);
        TEST_EQ_INT(r.ev.ts_ms, TS + 5);
        CHECK(r.ev.has_price && r.ev.price == -0.25);
        CHECK(r.ev.has_quantity && r.ev.quantity == -7);
        CHECK(str_is(r.ev.impression_id, NULL));
        CHECK(str_is(r.ev.campaign_id, "camp-2"));
        TEST_EQ_STR(ctx_get(&r.ev, "channel"), "app");
        TEST_EQ_STR(ctx_get(&r.ev, "placement"), "");
        /* a too-small buffer: -1 and nothing half-written */
        tern_buf_t small;
        tern_buf_init(&small, 10);
        TEST_EQ_INT(ingest_encode_event(&ev, -1, &small), -1);
        TEST_EQ_INT(small.len, 0);
        tern_buf_free(&small);
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

/* What ingest_encode writes, Avro-C's generic reader reads. */
static void encode_read_by_avro_c(void) {
        tern_event_t ev;
        tern_buf_t b;
        avro_schema_t s;
        avro_value_iface_t *iface;
        avro_value_t v, f, br;
        avro_reader_t rd;
        const char *str;
        size_t sz;
        int disc = 0;
        sample_event(&ev);
        tern_buf_init(&b, 4096);
        TEST_EQ_INT(ingest_encode_event(&ev, -1, &b), 0);
        TEST_EQ_INT(avro_schema_from_json_length(
                        ingest_behavior_event_schema,
                        strlen(ingest_behavior_event_schema), &s),
                    0);
        iface = avro_generic_class_from_schema(s);
        avro_generic_value_new(iface, &v);
        rd = avro_reader_memory((const char *)b.data, (int64_t)b.len);
        TEST_EQ_INT(avro_value_read(rd, &v), 0);
        f = fld(&v, "user_id");
        avro_value_get_string(&f, &str, &sz);
        TEST_EQ_STR(str, "u-1");
        f = fld(&v, "campaign_id");
        avro_value_get_current_branch(&f, &br);
        avro_value_get_discriminant(&f, &disc);
        TEST_EQ_INT(disc, 1);
        avro_value_get_string(&br, &str, &sz);
        TEST_EQ_STR(str, "camp-2");
        f = fld(&v, "context");
        avro_value_get_size(&f, &sz);
        TEST_EQ_INT(sz, 2);
        avro_reader_free(rd);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(s);
        tern_buf_free(&b);
}

static void confluent_id_1(void) {
        tern_event_t ev;
        tern_buf_t b;
        res_t r;
        char err[512];
        ingest_decoder_t *d = dec_new(INGEST_WIRE_CONFLUENT, NULL);
        CHECK(d);
        CHECK(!ingest_decoder_has_schema(d, 1));
        TEST_EQ_INT(
            ingest_decoder_load_schema_dir(
                d, TERN_SOURCE_DIR "/conf/schemas/registry", err, sizeof(err)),
            TERN_OK);
        CHECK(ingest_decoder_has_schema(d, 1));
        sample_event(&ev);
        tern_buf_init(&b, 4096);
        TEST_EQ_INT(ingest_encode_event(&ev, 1, &b), 0);
        TEST_EQ_INT(b.data[0], 0);
        TEST_EQ_INT(b.data[4], 1);
        EXPECT_OK(d, b.data, b.len, &r);
        CHECK(str_is(r.ev.event_id, "ev-77"));
        TEST_EQ_INT(r.ev.ts_ms, TS + 5);
        /* the same frame through an AUTO decoder */
        ingest_decoder_t *a = dec_new(INGEST_WIRE_AUTO, NULL);
        CHECK(a);
        TEST_EQ_INT(
            ingest_decoder_load_schema_dir(
                a, TERN_SOURCE_DIR "/conf/schemas/registry", err, sizeof(err)),
            TERN_OK);
        EXPECT_OK(a, b.data, b.len, &r);
        CHECK(str_is(r.ev.user_id, "u-1"));
        /* a missing directory says so */
        TEST_EQ_INT(ingest_decoder_load_schema_dir(a, "/nonexistent/x", err,
                                                   sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "/nonexistent/x"), "%s", err);
        ingest_decoder_destroy(a);
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

/* Write an evolved record with Avro-C; event_type given by writer index. */
static int write_evolved(int sym, uint8_t *out, size_t cap, size_t *len) {
        aw_t a;
        avro_value_t ex, f, e, arr;
        uint8_t fx[4] = {1, 2, 3, 4}, by[3] = {9, 8, 7};
        if (aw_begin(&a, evolved_schema))
                return -1;
        set_str(&a.v, "event_id", "ev-e");
        ex = fld(&a.v, "extra");
        f = fld(&ex, "tags");
        avro_value_append(&f, &e, NULL);
        avro_value_set_string(&e, "t1");
        avro_value_append(&f, &e, NULL);
        avro_value_set_string(&e, "t2");
        f = fld(&ex, "attrs");
        avro_value_add(&f, "a", &arr, NULL, NULL);
        avro_value_append(&arr, &e, NULL);
        avro_value_set_long(&e, -123456789);
        f = fld(&ex, "flag");
        avro_value_set_boolean(&f, 1);
        f = fld(&ex, "fx");
        avro_value_set_fixed(&f, fx, 4);
        f = set_branch(&ex, "u", 2);
        avro_value_set_string(&f, "in union");
        f = fld(&ex, "kind");
        avro_value_set_enum(&f, 1);
        f = fld(&ex, "b");
        avro_value_set_bytes(&f, by, 3);
        f = fld(&ex, "f");
        avro_value_set_float(&f, 1.5f);
        set_str(&a.v, "user_id", "user-e");
        f = fld(&a.v, "event_type");
        avro_value_set_enum(&f, sym);
        f = fld(&a.v, "ts_ms");
        avro_value_set_int(&f, 1234567);
        f = set_branch(&a.v, "price", 1);
        avro_value_set_float(&f, 2.5f);
        set_branch(&a.v, "quantity", 0);
        add_ctx(&a.v, "device", "web");
        return aw_end(&a, out, cap, len);
}

static void evolved_writer(void) {
        uint8_t buf[512];
        size_t len;
        res_t r;
        char err[512];
        ingest_limits_t lim;
        ingest_limits_default(&lim);
        ingest_decoder_t *d = dec_new(INGEST_WIRE_AUTO, &lim);
        CHECK(d);
        TEST_EQ_INT(
            ingest_decoder_add_schema(d, 7, evolved_schema, err, sizeof(err)),
            TERN_OK);
        TEST_EQ_INT(
            ingest_decoder_set_raw_schema(d, evolved_schema, err, sizeof(err)),
            TERN_OK);
        /* writer symbol 1 is PURCHASE: resolved by name, not index */
        TEST_EQ_INT(write_evolved(1, buf, sizeof(buf), &len), 0);
        EXPECT_OK(d, buf, len, &r);
        CHECK(str_is(r.ev.event_id, "ev-e"));
        CHECK(str_is(r.ev.user_id, "user-e"));
        CHECK(str_is(r.ev.item_id, NULL));
        CHECK(str_is(r.ev.category_id, NULL));
        CHECK(str_is(r.ev.impression_id, NULL));
        CHECK(str_is(r.ev.campaign_id, NULL));
        TEST_EQ_INT(r.ev.type, TERN_EV_PURCHASE);
        TEST_EQ_INT(r.ev.ts_ms, 1234567);           /* int -> long */
        CHECK(r.ev.has_price && r.ev.price == 2.5); /* float->double */
        CHECK(!r.ev.has_quantity);
        TEST_EQ_STR(ctx_get(&r.ev, "device"), "web");
        /* writer symbol 2 is VIEW, 6 IMPRESSION */
        TEST_EQ_INT(write_evolved(2, buf, sizeof(buf), &len), 0);
        EXPECT_OK(d, buf, len, &r);
        TEST_EQ_INT(r.ev.type, TERN_EV_VIEW);
        TEST_EQ_INT(write_evolved(6, buf, sizeof(buf), &len), 0);
        EXPECT_OK(d, buf, len, &r);
        TEST_EQ_INT(r.ev.type, TERN_EV_IMPRESSION);
        /* writer symbol 0 is SHARE: the reader has no such symbol */
        TEST_EQ_INT(write_evolved(0, buf, sizeof(buf), &len), 0);
        EXPECT_FAIL(d, buf, len, TERN_ERR_INVALID, "invalid",
                    "field event_type: unknown enum symbol \"SHARE\"");
        /* the same record in a Confluent frame with id 7 */
        TEST_EQ_INT(write_evolved(3, buf + 5, sizeof(buf) - 5, &len), 0);
        memcpy(buf, "\0\0\0\0\7", 5);
        EXPECT_OK(d, buf, len + 5, &r);
        TEST_EQ_INT(r.ev.type, TERN_EV_CLICK);
        ingest_decoder_destroy(d);
}

static void writer_schema_refused(void) {
        char err[512];
        ingest_decoder_t *d = dec_new(INGEST_WIRE_AUTO, NULL);
        CHECK(d);
        /* required reader field user_id missing from the writer */
        TEST_EQ_INT(ingest_decoder_add_schema(
                        d, 3,
                        "{\"type\":\"record\",\"name\":\"E\",\"fields\":["
                        "{\"name\":\"event_id\",\"type\":\"string\"},"
                        "{\"name\":\"event_type\",\"type\":{\"type\":\"enum\","
                        "\"name\":\"T\",\"symbols\":[\"VIEW\"]}},"
                        "{\"name\":\"ts_ms\",\"type\":\"long\"}]}",
                        err, sizeof(err)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(err, "required field user_id"), "%s", err);
        /* price as a string cannot become a double */
        TEST_EQ_INT(ingest_decoder_add_schema(
                        d, 4,
                        "{\"type\":\"record\",\"name\":\"E\",\"fields\":["
                        "{\"name\":\"event_id\",\"type\":\"string\"},"
                        "{\"name\":\"user_id\",\"type\":\"string\"},"
                        "{\"name\":\"event_type\",\"type\":{\"type\":\"enum\","
                        "\"name\":\"T\",\"symbols\":[\"VIEW\"]}},"
                        "{\"name\":\"ts_ms\",\"type\":\"long\"},"
                        "{\"name\":\"price\",\"type\":\"string\"}]}",
                        err, sizeof(err)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(err, "price"), "%s", err);
        /* not JSON at all: Avro-C's message, copied */
        TEST_EQ_INT(ingest_decoder_add_schema(d, 5, "{nope", err, sizeof(err)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(err, "writer schema"), "%s", err);
        CHECK(!ingest_decoder_has_schema(d, 3));
        ingest_decoder_destroy(d);
        /* limits out of range */
        ingest_limits_t lim;
        ingest_limits_default(&lim);
        lim.max_context_entries = TERN_EVENT_MAX_CONTEXT + 1;
        CHECK(
            !ingest_decoder_new(NULL, &lim, INGEST_WIRE_RAW, err, sizeof(err)));
        TEST_ASSERT(strstr(err, "max_context_entries 65 exceeds "
                                "TERN_EVENT_MAX_CONTEXT (64)"),
                    "%s", err);
}

/* Every strict prefix of a valid record fails, with an exact-size copy so
 * ASan sees any read past the end. */
static void prefixes_fail(void) {
        uint8_t buf[512];
        size_t len;
        char err[512];
        ingest_decoder_t *d = dec_new(INGEST_WIRE_AUTO, NULL);
        CHECK(d);
        TEST_EQ_INT(
            ingest_decoder_add_schema(d, 7, evolved_schema, err, sizeof(err)),
            TERN_OK);
        memcpy(buf, "\0\0\0\0\7", 5);
        TEST_EQ_INT(write_evolved(1, buf + 5, sizeof(buf) - 5, &len), 0);
        len += 5;
        for (size_t n = 0; n < len; n++) {
                uint8_t *copy = malloc(n ? n : 1);
                res_t r;
                memcpy(copy, buf, n);
                run(d, copy, n, &r);
                free(copy);
                TEST_ASSERT(r.code != TERN_OK, "prefix %zu decoded", n);
                TEST_ASSERT(r.err[0] != '\0', "prefix %zu: no message", n);
        }
        ingest_decoder_destroy(d);
}

static void hostile_lengths(void) {
        tern_buf_t b;
        uint8_t v11[11];
        ingest_decoder_t *d = dec_new(INGEST_WIRE_RAW, NULL);
        CHECK(d);
        tern_buf_init(&b, 4096);
        /* user_id claims 1 GiB, 12 bytes follow */
        tern_buf_put_cstr(&b, "e1");
        tern_buf_put_long(&b, 1 << 30);
        tern_buf_append(&b, "012345678901", 12);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "field user_id: string length 1073741824 exceeds the 12 "
                    "bytes that remain (byte offset 3)");
        /* negative length */
        tern_buf_reset(&b);
        tern_buf_put_long(&b, -5);
        tern_buf_append(&b, "abcdefgh", 8);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "field event_id: negative string length -5");
        /* 11-byte varint */
        memset(v11, 0xff, 10);
        v11[10] = 0x01;
        EXPECT_FAIL(d, v11, sizeof(v11), TERN_ERR_DECODE, "decode",
                    "varint longer than 10 bytes (byte offset 0)");
        /* a string over max_string_bytes (but within the record) */
        ingest_limits_t lim;
        ingest_limits_default(&lim);
        lim.max_string_bytes = 4;
        ingest_decoder_t *s = dec_new(INGEST_WIRE_RAW, &lim);
        CHECK(s);
        tern_buf_reset(&b);
        put_head(&b, "e1", "user-long", TS);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(s, b.data, b.len, TERN_ERR_LIMIT, "too_large",
                    "field user_id: string length 9 exceeds max_string_bytes");
        ingest_decoder_destroy(s);
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

static void hostile_context(void) {
        tern_buf_t b;
        res_t r;
        ingest_decoder_t *d = dec_new(INGEST_WIRE_RAW, NULL);
        CHECK(d);
        tern_buf_init(&b, 4096);
        /* map block count 2^31 and no bytes behind it */
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, INT64_C(1) << 31);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "field context: map block count 2147483648 exceeds");
        /* 33 entries in one block */
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, 33);
        put_ctx_entries(&b, 0, 33);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "too many context entries");
        /* 20 + 13 in two blocks, the second with a byte size */
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, 20);
        put_ctx_entries(&b, 0, 20);
        put_ctx_sized(&b, 20, 13);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "too many context entries");
        /* 32 entries, split the same way, are fine */
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, 20);
        put_ctx_entries(&b, 0, 20);
        put_ctx_sized(&b, 20, 12);
        tern_buf_put_long(&b, 0);
        EXPECT_OK(d, b.data, b.len, &r);
        TEST_EQ_INT(r.ev.n_context, 32);
        /* a block byte size that lies */
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, -1);
        tern_buf_put_long(&b, 3);
        put_ctx_entries(&b, 0, 1);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "map block of 3 bytes holds 5 bytes");
        /* trailing bytes */
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, 0);
        tern_buf_put_u8(&b, 0x42);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "1 trailing bytes after the record");
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

/* The nested schema's fields before event_id: a Node chain of `depth`
 * links, then `n_nulls` nulls (zero bytes each). */
static void put_nested(tern_buf_t *b, int depth, int64_t n_nulls) {
        for (int i = 0; i < depth; i++)
                tern_buf_put_long(b, 1);
        tern_buf_put_long(b, 0);
        if (n_nulls)
                tern_buf_put_long(b, n_nulls);
        tern_buf_put_long(b, 0);
        tern_buf_put_cstr(b, "e1");
        tern_buf_put_cstr(b, "u1");
        tern_buf_put_long(b, 1);
        tern_buf_put_long(b, TS);
}

static void hostile_skipping(void) {
        tern_buf_t b;
        res_t r;
        char err[512];
        ingest_decoder_t *d = dec_new(INGEST_WIRE_RAW, NULL);
        CHECK(d);
        TEST_EQ_INT(
            ingest_decoder_set_raw_schema(d, nested_schema, err, sizeof(err)),
            TERN_OK);
        tern_buf_init(&b, 4096);
        put_nested(&b, 10, 500);
        EXPECT_OK(d, b.data, b.len, &r);
        TEST_EQ_INT(r.ev.type, TERN_EV_CLICK);
        CHECK(str_is(r.ev.user_id, "u1"));
        /* 40 levels of a recursive record: past max_depth 32 */
        tern_buf_reset(&b);
        put_nested(&b, 40, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_LIMIT, "too_large",
                    "field chain: nesting deeper than max_depth 32");
        /* 2^31 zero-size items: bounded by max_collection_items */
        tern_buf_reset(&b);
        put_nested(&b, 0, INT64_C(1) << 31);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_LIMIT, "too_large",
                    "field nulls: array of 2147483648+ items exceeds "
                    "max_collection_items 10000");
        /* negative count with a byte size: jumped over */
        tern_buf_reset(&b);
        tern_buf_put_long(&b, 0);  /* chain.next = null */
        tern_buf_put_long(&b, -3); /* 3 nulls ... */
        tern_buf_put_long(&b, 0);  /* ... in 0 bytes */
        tern_buf_put_long(&b, 0);
        tern_buf_put_cstr(&b, "e1");
        tern_buf_put_cstr(&b, "u1");
        tern_buf_put_long(&b, 0);
        tern_buf_put_long(&b, TS);
        EXPECT_OK(d, b.data, b.len, &r);
        TEST_EQ_INT(r.ev.type, TERN_EV_VIEW);
        /* union branch out of range while skipping */
        tern_buf_reset(&b);
        tern_buf_put_long(&b, 2);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_DECODE, "decode",
                    "field chain: union branch 2 out of range (2 branches)");
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

static void hostile_frames(void) {
        tern_event_t ev;
        tern_buf_t b;
        ingest_limits_t lim;
        ingest_decoder_t *c = dec_new(INGEST_WIRE_CONFLUENT, NULL);
        ingest_decoder_t *a = dec_new(INGEST_WIRE_AUTO, NULL);
        CHECK(c && a);
        sample_event(&ev);
        tern_buf_init(&b, 4096);
        TEST_EQ_INT(ingest_encode_event(&ev, 99, &b), 0);
        EXPECT_FAIL(a, b.data, b.len, TERN_ERR_NOT_FOUND, "unknown_schema",
                    "unknown schema id 99");
        b.data[0] = 0x01;
        EXPECT_FAIL(c, b.data, b.len, TERN_ERR_DECODE, "bad_magic",
                    "starts with 0x01");
        EXPECT_FAIL(c, b.data, 0, TERN_ERR_DECODE, "bad_magic", "");
        EXPECT_FAIL(a, "\0\0\0", 3, TERN_ERR_DECODE, "decode",
                    "shorter than its 5-byte header");
        /* record over max_record_bytes */
        ingest_limits_default(&lim);
        lim.max_record_bytes = 32;
        ingest_decoder_t *s = dec_new(INGEST_WIRE_RAW, &lim);
        CHECK(s);
        tern_buf_reset(&b);
        TEST_EQ_INT(ingest_encode_event(&ev, -1, &b), 0);
        CHECK(b.len > 32);
        EXPECT_FAIL(s, b.data, b.len, TERN_ERR_LIMIT, "too_large",
                    "exceeds max_record_bytes 32");
        ingest_decoder_destroy(s);
        tern_buf_free(&b);
        ingest_decoder_destroy(c);
        ingest_decoder_destroy(a);
}

static void invalid_events(void) {
        tern_buf_t b;
        ingest_decoder_t *d = dec_new(INGEST_WIRE_RAW, NULL);
        CHECK(d);
        tern_buf_init(&b, 4096);
        put_head(&b, "e1", "", TS);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "user_id is empty");
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", -1);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "ts_ms -1 outside [0, 4102444800000]");
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", INT64_C(4102444800001));
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "ts_ms 4102444800001 outside");
        /* an empty event_id: why a raw record never starts with 0x00 */
        tern_buf_reset(&b);
        put_head(&b, "", "u1", TS);
        tern_buf_put_long(&b, 0);
        EXPECT_FAIL(d, b.data, b.len, TERN_ERR_INVALID, "invalid",
                    "event_id is empty");
        tern_buf_free(&b);
        ingest_decoder_destroy(d);
}

/* Fuzz seeds: only with TERN_WRITE_CORPUS=DIR. */
static void seed_write(const char *dir, const char *name, const void *p,
                       size_t n) {
        char path[4096];
        FILE *fp;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if ((fp = fopen(path, "wb"))) {
                fwrite(p, 1, n, fp);
                fclose(fp);
        }
}

static void seed_corpus(void) {
        const char *dir = getenv("TERN_WRITE_CORPUS");
        uint8_t buf[512];
        size_t len;
        tern_event_t ev;
        tern_buf_t b;
        if (!dir)
                TEST_SKIP("set TERN_WRITE_CORPUS=DIR to write fuzz seeds");
        tern_buf_init(&b, 4096);
        sample_event(&ev);
        ingest_encode_event(&ev, -1, &b);
        seed_write(dir, "raw_valid", b.data, b.len);
        seed_write(dir, "raw_truncated", b.data, b.len / 2);
        tern_buf_reset(&b);
        ingest_encode_event(&ev, 1, &b);
        seed_write(dir, "confluent_id1", b.data, b.len);
        b.data[4] = 2;
        seed_write(dir, "confluent_id2_evolved_mismatch", b.data, b.len);
        TEST_EQ_INT(write_base_avro(buf, sizeof(buf), &len), 0);
        seed_write(dir, "raw_avro_c", buf, len);
        memcpy(buf, "\0\0\0\0\2", 5);
        TEST_EQ_INT(write_evolved(1, buf + 5, sizeof(buf) - 5, &len), 0);
        seed_write(dir, "confluent_id2_evolved", buf, len + 5);
        tern_buf_reset(&b);
        tern_buf_append(&b, "\0\0\0\0\3", 5); /* id 3: nested schema */
        put_nested(&b, 5, 3);
        seed_write(dir, "confluent_id3_nested", b.data, b.len);
        tern_buf_reset(&b);
        tern_buf_put_cstr(&b, "e1");
        tern_buf_put_long(&b, 1 << 30);
        seed_write(dir, "hostile_huge_len", b.data, b.len);
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        put_ctx_sized(&b, 0, 2);
        tern_buf_put_long(&b, 0);
        seed_write(dir, "raw_ctx_negative_block", b.data, b.len);
        tern_buf_reset(&b);
        put_head(&b, "e1", "u1", TS);
        tern_buf_put_long(&b, INT64_C(1) << 31);
        seed_write(dir, "hostile_map_count", b.data, b.len);
        memset(buf, 0xff, 10);
        buf[10] = 1;
        seed_write(dir, "hostile_varint11", buf, 11);
        tern_buf_free(&b);
}

TEST_MAIN(TEST_CASE(avro_c_record_decodes), TEST_CASE(encode_round_trip),
          TEST_CASE(encode_read_by_avro_c), TEST_CASE(confluent_id_1),
          TEST_CASE(evolved_writer), TEST_CASE(writer_schema_refused),
          TEST_CASE(prefixes_fail), TEST_CASE(hostile_lengths),
          TEST_CASE(hostile_context), TEST_CASE(hostile_skipping),
          TEST_CASE(hostile_frames), TEST_CASE(invalid_events),
          TEST_CASE(seed_corpus));
