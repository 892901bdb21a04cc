/*
 * 0007-sinks — output encoders and the producer.
 *
 * Encoders: every record is decoded again with Avro-C's generic reader
 * against the embedded schema (not with tern's own reader), and every JSON
 * line is parsed by a small strict parser below and checked field by field.
 * Producer: librdkafka's mock cluster; 1000 records to each of two topics
 * through a tiny local queue (so the queue-full retry runs), and a
 * non-retriable Produce error that flush must report with topic and error.
 */
/* TERN_TEST_LINK: tern_sinks PkgConfig::AVRO */
#include "test.h"

#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>

#include "sinks/sink_producer.h"
#include "sinks/sink_churn.h"
#include "sinks/sink_records.h"
#include "sinks/sink_schemas.h"

#define MOCK_API_PRODUCE 0 /* the mock's ApiKey constants are private */

/* A strict little JSON parser: flattens a document into path -> scalar.
 * ------------------------------------------------------------------------ */

typedef struct jent {
        char path[96];
        char val[256]; /* decoded string, or the number/literal text */
        size_t len;
        int is_str;
} jent_t;

typedef struct jdoc {
        const char *p, *end;
        jent_t ent[64];
        int n;
        int err;
} jdoc_t;

static int jv(jdoc_t *d, char *path, size_t plen, int depth);

static void jws(jdoc_t *d) {
        while (d->p < d->end && strchr(" \t\r\n", *d->p))
                d->p++;
}

static int jfail(jdoc_t *d) {
        d->err = 1;
        return -1;
}

static int jhex4(jdoc_t *d, unsigned *u) {
        *u = 0;
        for (int i = 0; i < 4; i++, d->p++) {
                char c = d->p < d->end ? *d->p : 0;
                int v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (v < 0)
                        return jfail(d);
                *u = *u << 4 | (unsigned)v;
        }
        return 0;
}

static void jput(char *out, size_t *n, unsigned c) {
        if (*n < 255)
                out[(*n)++] = (char)c;
}

/* \uXXXX to UTF-8 (BMP only: tern writes \u00XX for control bytes). */
static int jescape(jdoc_t *d, char *out, size_t *n) {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e;
        unsigned u;
        if (d->p >= d->end)
                return jfail(d);
        if (*d->p != 'u') {
                if (!*d->p || !(e = strchr(from, *d->p)))
                        return jfail(d);
                jput(out, n, (unsigned char)to[e - from]);
                d->p++;
                return 0;
        }
        d->p++;
        if (jhex4(d, &u))
                return -1;
        if (u < 0x80) {
                jput(out, n, u);
        } else if (u < 0x800) {
                jput(out, n, 0xc0 | u >> 6);
                jput(out, n, 0x80 | (u & 63));
        } else {
                jput(out, n, 0xe0 | u >> 12);
                jput(out, n, 0x80 | ((u >> 6) & 63));
                jput(out, n, 0x80 | (u & 63));
        }
        return 0;
}

static int jstr(jdoc_t *d, char *out, size_t *n) {
        *n = 0;
        if (d->p >= d->end || *d->p++ != '"')
                return jfail(d);
        while (d->p < d->end && *d->p != '"') {
                unsigned char c = (unsigned char)*d->p++;
                if (c < 0x20)
                        return jfail(d); /* raw control character */
                if (c != '\\')
                        jput(out, n, c);
                else if (jescape(d, out, n))
                        return -1;
        }
        if (d->p >= d->end)
                return jfail(d);
        d->p++;
        out[*n] = '\0';
        return 0;
}

static jent_t *jadd(jdoc_t *d, const char *path) {
        jent_t *e;
        if (d->n == (int)(sizeof(d->ent) / sizeof(d->ent[0])))
                return NULL;
        e = &d->ent[d->n++];
        snprintf(e->path, sizeof(e->path), "%s", path);
        return e;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? or true/false/null */
static int jscalar(jdoc_t *d, const char *path) {
        const char *s = d->p;
        jent_t *e = jadd(d, path);
        static const char *lits[] = {"true", "false", "null"};
        if (!e)
                return jfail(d);
        for (int i = 0; i < 3; i++) {
                size_t l = strlen(lits[i]);
                if ((size_t)(d->end - s) >= l && !memcmp(s, lits[i], l)) {
                        d->p += l;
                        goto done;
                }
        }
        if (d->p < d->end && *d->p == '-')
                d->p++;
        if (d->p >= d->end || *d->p < '0' || *d->p > '9')
                return jfail(d);
        if (*d->p == '0')
                d->p++;
        else
                while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
                        d->p++;
        if (d->p < d->end && *d->p == '.') {
                const char *f = ++d->p;
                while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
                        d->p++;
                if (d->p == f)
                        return jfail(d);
        }
        if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
                const char *x;
                d->p++;
                if (d->p < d->end && (*d->p == '+' || *d->p == '-'))
                        d->p++;
                x = d->p;
                while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
                        d->p++;
                if (d->p == x)
                        return jfail(d);
        }
done:
        e->len = (size_t)(d->p - s);
        snprintf(e->val, sizeof(e->val), "%.*s", (int)e->len, s);
        return 0;
}

static int jobj(jdoc_t *d, char *path, size_t plen, int depth) {
        char key[256];
        size_t klen;
        int first = 1;
        d->p++;
        for (jws(d); d->p < d->end && *d->p != '}'; first = 0) {
                if (!first && *d->p++ != ',')
                        return jfail(d);
                jws(d);
                if (jstr(d, key, &klen))
                        return -1;
                jws(d);
                if (d->p >= d->end || *d->p++ != ':')
                        return jfail(d);
                snprintf(path + plen, 96 - plen, "%s%s", plen ? "." : "", key);
                if (jv(d, path, strlen(path), depth + 1))
                        return -1;
                jws(d);
        }
        if (d->p >= d->end)
                return jfail(d);
        d->p++;
        return 0;
}

static int jarr(jdoc_t *d, char *path, size_t plen, int depth) {
        int i = 0;
        d->p++;
        for (jws(d); d->p < d->end && *d->p != ']'; i++) {
                if (i && *d->p++ != ',')
                        return jfail(d);
                snprintf(path + plen, 96 - plen, "[%d]", i);
                if (jv(d, path, strlen(path), depth + 1))
                        return -1;
                jws(d);
        }
        if (d->p >= d->end)
                return jfail(d);
        d->p++;
        return 0;
}

static int jv(jdoc_t *d, char *path, size_t plen, int depth) {
        jent_t *e;
        path[plen] = '\0';
        jws(d);
        if (depth > 8 || d->p >= d->end)
                return jfail(d);
        if (*d->p == '{')
                return jobj(d, path, plen, depth);
        if (*d->p == '[')
                return jarr(d, path, plen, depth);
        if (*d->p != '"')
                return jscalar(d, path);
        if (!(e = jadd(d, path)))
                return jfail(d);
        e->is_str = 1;
        return jstr(d, e->val, &e->len);
}

/* Parses the whole of buf (one line, no newline) or fails the test. */
static int jparse(jdoc_t *d, const void *buf, size_t len) {
        char path[96] = "";
        memset(d, 0, sizeof(*d));
        d->p = buf;
        d->end = d->p + len;
        if (memchr(buf, '\n', len))
                return -1;
        if (jv(d, path, 0, 0) || (jws(d), d->p != d->end))
                return -1;
        return 0;
}

static const jent_t *jget(const jdoc_t *d, const char *path) {
        for (int i = 0; i < d->n; i++)
                if (!strcmp(d->ent[i].path, path))
                        return &d->ent[i];
        return NULL;
}

#define JSTR(d, path, want)                                                    \
        do {                                                                   \
                const jent_t *e_ = jget((d), (path));                          \
                TEST_ASSERT(e_ && e_->is_str, "no string %s", (path));         \
                TEST_ASSERT(e_->len == strlen(want) &&                         \
                                !memcmp(e_->val, (want), e_->len),             \
                            "%s: \"%s\" != \"%s\"", (path), e_->val, (want));  \
        } while (0)
#define JNUM(d, path, want)                                                    \
        do {                                                                   \
                const jent_t *e_ = jget((d), (path));                          \
                TEST_ASSERT(e_ && !e_->is_str, "no number %s", (path));        \
                TEST_ASSERT(strtod(e_->val, NULL) == (double)(want),           \
                            "%s: %s != %.17g", (path), e_->val,                \
                            (double)(want));                                   \
        } while (0)
#define JLIT(d, path, want)                                                    \
        do {                                                                   \
                const jent_t *e_ = jget((d), (path));                          \
                TEST_ASSERT(e_ && !e_->is_str, "no value %s", (path));         \
                TEST_EQ_STR(e_->val, (want));                                  \
        } while (0)

/* Avro-C side ------------------------------------------------------------ */

typedef struct adec {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t v;
        int ok;
} adec_t;

/* Decodes buf with the generic reader; all bytes must be consumed. */
static int adec_read(adec_t *a, const char *schema_json, const tern_buf_t *b) {
        avro_reader_t rd;
        char extra;
        int rc = -1;
        memset(a, 0, sizeof(*a));
        if (avro_schema_from_json_length(schema_json, strlen(schema_json),
                                         &a->schema))
                return -1;
        a->iface = avro_generic_class_from_schema(a->schema);
        if (!a->iface || avro_generic_value_new(a->iface, &a->v))
                return -1;
        a->ok = 1;
        rd = avro_reader_memory((const char *)b->data, (int64_t)b->len);
        if (avro_value_read(rd, &a->v) == 0 && avro_read(rd, &extra, 1) != 0)
                rc = 0;
        else
                fprintf(stderr, "  avro: %s\n", avro_strerror());
        avro_reader_free(rd);
        return rc;
}

static void adec_free(adec_t *a) {
        if (a->ok)
                avro_value_decref(&a->v);
        if (a->iface)
                avro_value_iface_decref(a->iface);
        if (a->schema)
                avro_schema_decref(a->schema);
}

/* Decodes buf, written with writer_json, as a reader of reader_json would
 * (Avro-C's resolved writer: it skips writer fields the reader lacks; it
 * does not fill reader defaults). All bytes must be consumed. */
static int adec_read_as(adec_t *a, const char *writer_json,
                        const char *reader_json, const tern_buf_t *b) {
        avro_schema_t ws = NULL;
        avro_value_iface_t *res = NULL;
        avro_value_t rv;
        avro_reader_t rd;
        char extra;
        int rc = -1;
        memset(a, 0, sizeof(*a));
        if (avro_schema_from_json_length(writer_json, strlen(writer_json),
                                         &ws) ||
            avro_schema_from_json_length(reader_json, strlen(reader_json),
                                         &a->schema))
                goto out;
        a->iface = avro_generic_class_from_schema(a->schema);
        if (!a->iface || avro_generic_value_new(a->iface, &a->v))
                goto out;
        a->ok = 1;
        res = avro_resolved_writer_new(ws, a->schema);
        if (!res || avro_resolved_writer_new_value(res, &rv))
                goto out;
        avro_resolved_writer_set_dest(&rv, &a->v);
        rd = avro_reader_memory((const char *)b->data, (int64_t)b->len);
        if (avro_value_read(rd, &rv) == 0 && avro_read(rd, &extra, 1) != 0)
                rc = 0;
        avro_reader_free(rd);
        avro_value_decref(&rv);
out:
        if (rc)
                fprintf(stderr, "  avro: %s\n", avro_strerror());
        if (res)
                avro_value_iface_decref(res);
        if (ws)
                avro_schema_decref(ws);
        return rc;
}

static avro_value_t afield(avro_value_t *rec, const char *name) {
        avro_value_t f = {0};
        if (avro_value_get_by_name(rec, name, &f, NULL))
                fprintf(stderr, "  no field %s\n", name);
        return f;
}

static int astr_is(avro_value_t *rec, const char *name, const char *want,
                   size_t want_len) {
        avro_value_t f = afield(rec, name);
        const char *s = NULL;
        size_t n = 0; /* includes the NUL Avro-C adds */
        if (!f.iface || avro_value_get_string(&f, &s, &n))
                return 0;
        return n == want_len + 1 && !memcmp(s, want, want_len);
}

static int64_t along(avro_value_t *rec, const char *name) {
        avro_value_t f = afield(rec, name);
        int64_t v = INT64_MIN;
        if (f.iface)
                avro_value_get_long(&f, &v);
        return v;
}

static int32_t aint(avro_value_t *rec, const char *name) {
        avro_value_t f = afield(rec, name);
        int32_t v = INT32_MIN;
        if (f.iface)
                avro_value_get_int(&f, &v);
        return v;
}

/* Fixtures --------------------------------------------------------------- */

static const char USER[] = "u\"ser\\1 \xc3\xa9\xe2\x9c\x93"; /* é ✓ */
static const char TOPIC[] = "behavior-events";
static const double SCORES[] = {0.1,   -1e-300, 1.0 / 3, 12345.678, 0,
                                1e300, -2.5,    7,       0.000123,  42.42};
static char item_ids[10][32];
static sink_scored_item_t items[10];
static const sink_model_version_t MODELS[] = {{"ctr", 7},
                                              {"churn \"v2\"", 1LL << 40}};

static sink_recommendation_t rec_fixture(uint32_t n_items, uint32_t n_models) {
        sink_recommendation_t r = {
            .user_id = USER,
            .user_len = sizeof(USER) - 1,
            .n_items = n_items,
            .items = items,
            .strategy = "co-occurrence",
            .config_version = 17,
            .n_models = n_models,
            .models = MODELS,
            .source = {TOPIC, 3, 1234567890123LL},
            .generated_at = 1700000000123LL,
        };
        for (int i = 0; i < 10; i++) {
                snprintf(item_ids[i], sizeof(item_ids[i]),
                         "item-\"%d\"-\xc3\xbc\t", i); /* ü and a tab */
                items[i] = (sink_scored_item_t){
                    item_ids[i], (uint32_t)strlen(item_ids[i]), SCORES[i]};
        }
        return r;
}

/* Encoders: Avro ---------------------------------------------------------- */

static void check_rec_avro(uint32_t n_items, uint32_t n_models) {
        sink_recommendation_t r = rec_fixture(n_items, n_models);
        avro_value_t arr, map, it, f;
        tern_buf_t b;
        adec_t a;
        size_t cnt = 99;
        double score;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_recommendation_avro(&r, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_recommendation_schema, &b), 0);
        tern_buf_free(&b);
        TEST_ASSERT(astr_is(&a.v, "user_id", USER, sizeof(USER) - 1),
                    "field %s", "user_id");
        TEST_ASSERT(astr_is(&a.v, "strategy", "co-occurrence", 13), "field %s",
                    "strategy");
        TEST_EQ_INT(along(&a.v, "config_version"), 17);
        TEST_ASSERT(astr_is(&a.v, "source_topic", TOPIC, strlen(TOPIC)),
                    "field %s", "source_topic");
        TEST_EQ_INT(aint(&a.v, "source_partition"), 3);
        TEST_EQ_INT(along(&a.v, "source_offset"), 1234567890123LL);
        TEST_EQ_INT(along(&a.v, "generated_at"), 1700000000123LL);
        arr = afield(&a.v, "items");
        avro_value_get_size(&arr, &cnt);
        TEST_EQ_INT(cnt, n_items);
        for (uint32_t i = 0; i < n_items; i++) {
                TEST_EQ_INT(avro_value_get_by_index(&arr, i, &it, NULL), 0);
                TEST_ASSERT(
                    astr_is(&it, "item_id", item_ids[i], strlen(item_ids[i])),
                    "item %u", i);
                f = afield(&it, "score");
                TEST_EQ_INT(avro_value_get_double(&f, &score), 0);
                TEST_ASSERT(score == SCORES[i], "score %u: %.17g", i, score);
        }
        map = afield(&a.v, "model_versions");
        avro_value_get_size(&map, &cnt);
        TEST_EQ_INT(cnt, n_models);
        for (uint32_t i = 0; i < n_models; i++) {
                int64_t ver = -1;
                TEST_EQ_INT(
                    avro_value_get_by_name(&map, MODELS[i].model, &f, NULL), 0);
                avro_value_get_long(&f, &ver);
                TEST_EQ_INT(ver, MODELS[i].version);
        }
        adec_free(&a);
}

static void rec_avro_0_items(void) {
        check_rec_avro(0, 0);
}

static void rec_avro_1_item(void) {
        check_rec_avro(1, 2);
}

static void rec_avro_10_items(void) {
        check_rec_avro(10, 2);
}

static const uint8_t RAW[] = {0x00, 0x01, 0x00, 0xff, 'a', 0x00};
static const char DL_ERROR[] = "bad \"thing\"\nline\x01two";

static sink_dead_letter_t dl_fixture(void) {
        return (sink_dead_letter_t){
            .raw = RAW,
            .raw_len = sizeof(RAW),
            .error = DL_ERROR,
            .reason = "decode",
            .source = {TOPIC, 0, 42},
            .failed_at = 1699999999999LL,
            .config_version = 1LL << 33,
        };
}

static void dead_letter_avro(void) {
        sink_dead_letter_t d = dl_fixture();
        avro_value_t f;
        const void *raw = NULL;
        size_t raw_len = 0;
        tern_buf_t b;
        adec_t a;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_dead_letter_avro(&d, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_dead_letter_schema, &b), 0);
        tern_buf_free(&b);
        f = afield(&a.v, "raw");
        TEST_EQ_INT(avro_value_get_bytes(&f, &raw, &raw_len), 0);
        TEST_EQ_INT(raw_len, sizeof(RAW));
        TEST_ASSERT(!memcmp(raw, RAW, sizeof(RAW)), "raw bytes differ");
        TEST_ASSERT(astr_is(&a.v, "error", DL_ERROR, strlen(DL_ERROR)),
                    "field %s", "error");
        TEST_ASSERT(astr_is(&a.v, "reason", "decode", 6), "field %s", "reason");
        TEST_ASSERT(astr_is(&a.v, "source_topic", TOPIC, strlen(TOPIC)),
                    "field %s", "source_topic");
        TEST_EQ_INT(aint(&a.v, "source_partition"), 0);
        TEST_EQ_INT(along(&a.v, "source_offset"), 42);
        TEST_EQ_INT(along(&a.v, "failed_at"), 1699999999999LL);
        TEST_EQ_INT(along(&a.v, "config_version"), 1LL << 33);
        adec_free(&a);
}

/* A full buffer fails the encoder and leaves what was there before. */
static void encoders_overflow(void) {
        sink_recommendation_t r = rec_fixture(10, 2);
        sink_dead_letter_t d = dl_fixture();
        tern_buf_t b;
        tern_buf_init(&b, 64);
        tern_buf_append(&b, "xyz", 3);
        TEST_EQ_INT(sink_recommendation_avro(&r, &b), -1);
        TEST_EQ_INT(b.len, 3);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_recommendation_json(&r, &b), -1);
        TEST_EQ_INT(b.len, 0);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_dead_letter_json(&d, &b), -1);
        TEST_EQ_INT(b.len, 0);
        tern_buf_free(&b);
}

/* Encoders: JSON ---------------------------------------------------------- */

static void check_rec_json(uint32_t n_items) {
        sink_recommendation_t r = rec_fixture(n_items, 2);
        char path[64];
        tern_buf_t b;
        jdoc_t d;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_recommendation_json(&r, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        tern_buf_free(&b);
        JSTR(&d, "user_id", USER);
        JSTR(&d, "strategy", "co-occurrence");
        JNUM(&d, "config_version", 17);
        JSTR(&d, "source_topic", TOPIC);
        JNUM(&d, "source_partition", 3);
        JLIT(&d, "source_offset", "1234567890123");
        JLIT(&d, "generated_at", "1700000000123");
        for (uint32_t i = 0; i < n_items; i++) {
                snprintf(path, sizeof(path), "items[%u].item_id", i);
                JSTR(&d, path, item_ids[i]);
                snprintf(path, sizeof(path), "items[%u].score", i);
                JNUM(&d, path, SCORES[i]);
        }
        snprintf(path, sizeof(path), "items[%u].item_id", n_items);
        TEST_ASSERT(!jget(&d, path), "extra item");
        /* model names appear only inside the map */
        TEST_ASSERT(!jget(&d, "churn \"v2\""), "model at the top level");
        JLIT(&d, "model_versions.ctr", "7");
        JLIT(&d, "model_versions.churn \"v2\"", "1099511627776");
        /* 7 scalar fields, 2 per item, 1 per model: nothing else */
        TEST_EQ_INT(d.n, 7 + 2 * (int)n_items + 2);
}

static void rec_json_0_items(void) {
        sink_recommendation_t r = rec_fixture(0, 0);
        tern_buf_t b;
        jdoc_t d;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_recommendation_json(&r, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        TEST_ASSERT(memmem(b.data, b.len, "\"items\":[]", 10),
                    "no empty items");
        TEST_ASSERT(memmem(b.data, b.len, "\"model_versions\":{}", 19),
                    "no empty model map");
        tern_buf_free(&b);
        JSTR(&d, "user_id", USER);
        TEST_EQ_INT(d.n, 7);
}

static void rec_json_1_item(void) {
        check_rec_json(1);
}

static void rec_json_10_items(void) {
        check_rec_json(10);
}

static void rec_json_non_finite(void) {
        sink_recommendation_t r = rec_fixture(3, 0);
        tern_buf_t b;
        jdoc_t d;
        items[0].score = NAN;
        items[1].score = INFINITY;
        items[2].score = -INFINITY;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_recommendation_json(&r, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        tern_buf_free(&b);
        JLIT(&d, "items[0].score", "null");
        JLIT(&d, "items[1].score", "null");
        JLIT(&d, "items[2].score", "null");
}

static void check_base64(const uint8_t *raw, size_t n, const char *want) {
        sink_dead_letter_t d = dl_fixture();
        tern_buf_t b;
        jdoc_t j;
        d.raw = raw;
        d.raw_len = n;
        tern_buf_init(&b, 1 << 20);
        TEST_EQ_INT(sink_dead_letter_json(&d, &b), 0);
        TEST_EQ_INT(jparse(&j, b.data, b.len), 0);
        tern_buf_free(&b);
        JSTR(&j, "raw_base64", want);
        JSTR(&j, "error", DL_ERROR);
        JSTR(&j, "reason", "decode");
        JSTR(&j, "source_topic", TOPIC);
        JNUM(&j, "source_partition", 0);
        JNUM(&j, "source_offset", 42);
        JLIT(&j, "failed_at", "1699999999999");
        JLIT(&j, "config_version", "8589934592");
        TEST_EQ_INT(j.n, 8);
}

static void dead_letter_json(void) {
        check_base64(RAW, sizeof(RAW), "AAEA/2EA");
        check_base64(RAW, 1, "AA==");
        check_base64(RAW, 2, "AAE=");
        check_base64(RAW, 0, "");
}

/* Producer against the mock cluster ----------------------------------------
 */

typedef struct mock {
        rd_kafka_t *rk; /* throwaway handle that owns the cluster */
        rd_kafka_mock_cluster_t *mc;
} mock_t;

static int mock_new(mock_t *m) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        /* it never connects: quiet its "no bootstrap.servers" notice */
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
        m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!m->rk)
                return -1;
        m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
        return m->mc ? 0 : -1;
}

static void mock_destroy(mock_t *m) {
        if (m->mc)
                rd_kafka_mock_cluster_destroy(m->mc);
        if (m->rk)
                rd_kafka_destroy(m->rk);
}

static rd_kafka_conf_t *producer_conf(mock_t *m, const char *timeout_ms) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        const char *kv[][2] = {
            {"bootstrap.servers", rd_kafka_mock_cluster_bootstraps(m->mc)},
            {"message.timeout.ms", timeout_ms},
            {"linger.ms", "2"},
            /* tiny local queue: the queue-full retry path must run */
            {"queue.buffering.max.messages", "50"},
        };
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
                        fprintf(stderr, "  conf: %s\n", errstr);
        return conf;
}

static long count_lines(const char *dir, const char *file, char *first,
                        size_t first_size) {
        char path[4096], line[256];
        long n = 0;
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (!(f = fopen(path, "r")))
                return -1;
        while (fgets(line, sizeof(line), f))
                if (n++ == 0)
                        snprintf(first, first_size, "%s", line);
        fclose(f);
        return n;
}

static int64_t topic_messages(mock_t *m, const char *topic, int parts) {
        rd_kafka_conf_t *conf = producer_conf(m, "5000");
        char errstr[256];
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        int64_t sum = 0, lo, hi;
        for (int i = 0; rk && i < parts; i++) {
                if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi,
                                                     5000))
                        sum = -1000000;
                sum += hi - lo;
        }
        if (rk)
                rd_kafka_destroy(rk);
        return sum;
}

static tern_code_t send_n(sink_producer_t *p, const char *topic, int n,
                          char *errstr, size_t errstr_size) {
        char key[32], val[64];
        tern_code_t rc = TERN_OK;
        for (int i = 0; i < n && !rc; i++) {
                int kl = snprintf(key, sizeof(key), "user-%d", i);
                int vl = snprintf(val, sizeof(val), "{\"i\":%d}", i);
                rc = sink_producer_send(p, topic, key, (size_t)kl, val,
                                        (size_t)vl, val, (size_t)vl, 10000,
                                        errstr, errstr_size);
                if (i % 100 == 0)
                        sink_producer_poll(p);
        }
        return rc;
}

static void producer_delivers(void) {
        mock_t m = {0};
        char errstr[512] = "", first[256];
        char *dir = test_tmpdir("0007-emit");
        const sink_topic_count_t *c;
        sink_producer_t *p;
        TEST_EQ_INT(mock_new(&m), 0);
        rd_kafka_mock_topic_create(m.mc, "recs-a", 4, 1);
        rd_kafka_mock_topic_create(m.mc, "recs.b", 2, 1);
        p = sink_producer_new(producer_conf(&m, "10000"), dir, errstr,
                              sizeof(errstr));
        TEST_ASSERT(p, "%s", errstr);
        TEST_EQ_INT(sink_producer_send(p, "recs-a", "k", 1, "v", 1, NULL, 0,
                                       1000, errstr, sizeof(errstr)),
                    TERN_ERR_INVALID_ARG); /* emit needs the JSON form */
        for (int t = 0; t < 2; t++)
                TEST_EQ_INT(send_n(p, t ? "recs.b" : "recs-a", 1000, errstr,
                                   sizeof(errstr)),
                            TERN_OK);
        TEST_EQ_INT(sink_producer_flush(p, 10000, errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(sink_producer_counts(p, &c), 2);
        for (int t = 0; t < 2; t++) {
                TEST_EQ_STR(c[t].topic, t ? "recs.b" : "recs-a");
                TEST_EQ_INT(c[t].sent, 1000);
                TEST_EQ_INT(c[t].delivered, 1000);
                TEST_EQ_INT(c[t].failed, 0);
        }
        sink_producer_destroy(p);
        TEST_EQ_INT(count_lines(dir, "recs-a.jsonl", first, sizeof(first)),
                    1000);
        TEST_EQ_STR(first, "{\"i\":0}\n");
        TEST_EQ_INT(count_lines(dir, "recs.b.jsonl", first, sizeof(first)),
                    1000);
        TEST_EQ_INT(topic_messages(&m, "recs-a", 4), 1000);
        TEST_EQ_INT(topic_messages(&m, "recs.b", 2), 1000);
        mock_destroy(&m);
        free(dir);
}

static void producer_delivery_failure(void) {
        mock_t m = {0};
        char errstr[512] = "";
        const sink_topic_count_t *c;
        rd_kafka_resp_err_t errs[64];
        sink_producer_t *p;
        tern_code_t rc;
        TEST_EQ_INT(mock_new(&m), 0);
        rd_kafka_mock_topic_create(m.mc, "recs-denied", 1, 1);
        p = sink_producer_new(producer_conf(&m, "3000"), NULL, errstr,
                              sizeof(errstr));
        TEST_ASSERT(p, "%s", errstr);
        for (size_t i = 0; i < 64; i++)
                errs[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        rd_kafka_mock_push_request_errors_array(m.mc, MOCK_API_PRODUCE, 64,
                                                errs);
        TEST_EQ_INT(send_n(p, "recs-denied", 10, errstr, sizeof(errstr)),
                    TERN_OK);
        rc = sink_producer_flush(p, 10000, errstr, sizeof(errstr));
        TEST_EQ_INT(rc, TERN_ERR_KAFKA);
        fprintf(stderr, "  flush reported: %s\n", errstr);
        TEST_ASSERT(strstr(errstr, "\"recs-denied\"") &&
                        strstr(errstr, "TOPIC_AUTHORIZATION_FAILED"),
                    "%s", errstr);
        TEST_EQ_INT(sink_producer_counts(p, &c), 1);
        TEST_EQ_INT(c[0].sent, 10);
        TEST_ASSERT(c[0].failed > 0, "no failed delivery counted");
        TEST_EQ_INT(c[0].delivered + c[0].failed, 10);
        /* failed stays failed: later sends and flushes report it */
        TEST_EQ_INT(send_n(p, "recs-denied", 1, errstr, sizeof(errstr)),
                    TERN_ERR_KAFKA);
        TEST_EQ_INT(sink_producer_flush(p, 1000, errstr, sizeof(errstr)),
                    TERN_ERR_KAFKA);
        TEST_ASSERT(strstr(errstr, "TOPIC_AUTHORIZATION_FAILED"), "%s", errstr);
        sink_producer_destroy(p);
        mock_destroy(&m);
}

/* A conf librdkafka refuses is freed by sink_producer_new (no leak under
 * ASan) and reported. */
static void producer_bad_conf(void) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512] = "";
        sink_producer_t *p;
        /* idempotence needs acks=all */
        rd_kafka_conf_set(conf, "acks", "1", errstr, sizeof(errstr));
        p = sink_producer_new(conf, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(!p, "acks=1 with idempotence accepted");
        TEST_ASSERT(*errstr, "no error text");
}

/* ctr-scores, churn-scores, churn-alerts, model-alerts ------------------ */

static const sink_ctr_score_t CTR = {
    .impression_id = "imp-1",
    .impression_len = 5,
    .user_id = USER,
    .user_len = sizeof(USER) - 1,
    .item_id = "item\"7",
    .item_len = 6,
    .campaign_id = NULL,
    .p_click = 0.25,
    .model_version = 1234,
    .source = {TOPIC, 2, 99},
    .event_time = 1700000000999LL,
    .config_version = 12,
};
static const sink_churn_reason_t REASONS[3] = {
    {"silence_days", 40, 1.5}, {"visits_i", 0.2, 0.7}, {"trend", -1, 0.1}};
static const sink_churn_score_t CHURN_SCORE = {
    USER, sizeof(USER) - 1, 1700000000000LL, 0.75,
    9,    "sweep",          {TOPIC, 1, 77},  21};
static const sink_churn_alert_t CHURN_ALERT = {USER,
                                               sizeof(USER) - 1,
                                               1700000000001LL,
                                               0.85,
                                               0.5,
                                               0.8,
                                               3,
                                               REASONS,
                                               10,
                                               {TOPIC, 1, 78},
                                               22};
static const sink_model_alert_t MODEL_ALERT = {"churn",
                                               "page_hinkley",
                                               210.5,
                                               200,
                                               1000,
                                               5,
                                               900,
                                               300,
                                               901,
                                               1200,
                                               "learning rate x5",
                                               11,
                                               1700000000002LL,
                                               {TOPIC, 0, 79},
                                               23};

/* ctr-scores: the generic reader against conf/schemas/ctr_score.avsc,
 * with both branches of the nullable fields. */
static void ctr_score_avro(void) {
        sink_ctr_score_t c = CTR;
        avro_value_t f, branch;
        tern_buf_t b;
        adec_t a;
        double p = 0;
        int disc = -1;
        tern_buf_init(&b, 1 << 16);
        TEST_EQ_INT(sink_ctr_score_avro(&c, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_ctr_score_schema, &b), 0);
        TEST_ASSERT(astr_is(&a.v, "impression_id", "imp-1", 5), "impression");
        TEST_ASSERT(astr_is(&a.v, "user_id", USER, sizeof(USER) - 1), "user");
        f = afield(&a.v, "item_id");
        avro_value_get_current_branch(&f, &branch);
        avro_value_get_discriminant(&f, &disc);
        TEST_EQ_INT(disc, 1);
        f = afield(&a.v, "campaign_id");
        avro_value_get_discriminant(&f, &disc);
        TEST_EQ_INT(disc, 0);
        f = afield(&a.v, "p_click");
        avro_value_get_double(&f, &p);
        TEST_ASSERT(p == 0.25, "p_click %g", p);
        TEST_EQ_INT(along(&a.v, "model_version"), 1234);
        TEST_EQ_INT(aint(&a.v, "source_partition"), 2);
        TEST_EQ_INT(along(&a.v, "source_offset"), 99);
        TEST_EQ_INT(along(&a.v, "event_time"), 1700000000999LL);
        TEST_EQ_INT(along(&a.v, "config_version"), 12);
        adec_free(&a);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_ctr_score_json(&c, &b), 0);
        tern_buf_put_u8(&b, 0);
        TEST_ASSERT(strstr((char *)b.data, "\"item_id\":\"item\\\"7\"") &&
                        strstr((char *)b.data, "\"campaign_id\":null") &&
                        strstr((char *)b.data, "\"p_click\":0.25") &&
                        strstr((char *)b.data, "\"config_version\":12}"),
                    "%s", (char *)b.data);
        tern_buf_free(&b);
}

static double adouble(avro_value_t *rec, const char *name) {
        avro_value_t f = afield(rec, name);
        double v = -1;
        if (f.iface)
                avro_value_get_double(&f, &v);
        return v;
}

/* churn-scores, churn-alerts, model-alerts: the generic reader against
 * their schemas. */
static void churn_records_avro(void) {
        sink_churn_score_t sc = CHURN_SCORE;
        sink_churn_alert_t al = CHURN_ALERT;
        sink_model_alert_t ma = MODEL_ALERT;
        avro_value_t arr, it;
        size_t cnt = 0;
        tern_buf_t b;
        adec_t a;
        tern_buf_init(&b, 1 << 16);
        TEST_EQ_INT(sink_churn_score_avro(&sc, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_churn_score_schema, &b), 0);
        TEST_ASSERT(astr_is(&a.v, "user_id", USER, sizeof(USER) - 1), "user");
        TEST_ASSERT(adouble(&a.v, "risk") == 0.75, "risk");
        TEST_ASSERT(astr_is(&a.v, "trigger", "sweep", 5), "trigger");
        TEST_EQ_INT(along(&a.v, "source_offset"), 77);
        TEST_EQ_INT(along(&a.v, "config_version"), 21);
        adec_free(&a);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_churn_alert_avro(&al, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_churn_alert_schema, &b), 0);
        TEST_ASSERT(adouble(&a.v, "previous_risk") == 0.5, "previous risk");
        arr = afield(&a.v, "reasons");
        avro_value_get_size(&arr, &cnt);
        TEST_EQ_INT(cnt, 3);
        avro_value_get_by_index(&arr, 0, &it, NULL);
        TEST_ASSERT(astr_is(&it, "feature", "silence_days", 12), "reason");
        TEST_ASSERT(adouble(&it, "contribution") == 1.5, "contribution");
        TEST_EQ_INT(along(&a.v, "model_version"), 10);
        TEST_EQ_INT(along(&a.v, "config_version"), 22);
        adec_free(&a);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_model_alert_avro(&ma, &b), 0);
        TEST_EQ_INT(adec_read(&a, sink_model_alert_schema, &b), 0);
        TEST_ASSERT(astr_is(&a.v, "detector", "page_hinkley", 12), "detector");
        TEST_ASSERT(adouble(&a.v, "statistic") == 210.5, "statistic");
        TEST_EQ_INT(along(&a.v, "current_end_offset"), 1200);
        TEST_ASSERT(astr_is(&a.v, "action", "learning rate x5", 16), "action");
        TEST_EQ_INT(along(&a.v, "ts_ms"), 1700000000002LL);
        TEST_EQ_INT(along(&a.v, "config_version"), 23);
        adec_free(&a);
        tern_buf_free(&b);
}

/* JSON of the churn outputs: config_version last, the source before it. */
static void churn_records_json(void) {
        tern_buf_t b;
        jdoc_t d;
        tern_buf_init(&b, 1 << 16);
        TEST_EQ_INT(sink_churn_score_json(&CHURN_SCORE, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        JSTR(&d, "trigger", "sweep");
        JNUM(&d, "source_offset", 77);
        JNUM(&d, "config_version", 21);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_churn_alert_json(&CHURN_ALERT, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        JSTR(&d, "reasons[2].feature", "trend");
        JNUM(&d, "model_version", 10);
        JNUM(&d, "config_version", 22);
        tern_buf_reset(&b);
        TEST_EQ_INT(sink_model_alert_json(&MODEL_ALERT, &b), 0);
        TEST_EQ_INT(jparse(&d, b.data, b.len), 0);
        JSTR(&d, "action", "learning rate x5");
        JNUM(&d, "source_offset", 79);
        JNUM(&d, "config_version", 23);
        tern_buf_free(&b);
}

/* The schema as it was before config_version: the field must be the last
 * one, a long with default 0 (so a reader of this schema reads the old
 * records); cut it out. */
static int schema_without_cv(const char *schema, char *out, size_t size) {
        static const char FIELD[] = "{\"name\": \"config_version\", \"type\": "
                                    "\"long\", \"default\": 0,";
        const char *f = strstr(schema, FIELD), *comma, *end;
        if (!f || !(end = strchr(f, '}')) ||
            strspn(end + 1, " \n]}") != strlen(end + 1))
                return -1; /* missing, no default 0, or not last */
        for (comma = f; comma > schema && *comma != ','; comma--)
                ;
        if ((size_t)(comma - schema) + 3 > size)
                return -1;
        memcpy(out, schema, (size_t)(comma - schema));
        strcpy(out + (comma - schema), "]}");
        return 0;
}

/* cv_big: the record with config_version 2^33 (a 5-byte varint); cv_0:
 * the same with 0. A reader of the old schema reads cv_big (the field is
 * skipped); cv_0 is the old layout plus one 0 byte. */
static void check_cv_resolves(const char *name, const char *schema,
                              const tern_buf_t *cv_big, const tern_buf_t *cv_0,
                              int64_t source_offset) {
        char old[4096];
        avro_value_t f;
        tern_buf_t cut;
        adec_t a;
        TEST_ASSERT(schema_without_cv(schema, old, sizeof(old)) == 0,
                    "%s: config_version is not last with default 0", name);
        TEST_EQ_INT(adec_read_as(&a, schema, old, cv_big), 0);
        TEST_EQ_INT(along(&a.v, "source_offset"), source_offset);
        TEST_ASSERT(avro_value_get_by_name(&a.v, "config_version", &f, NULL),
                    "%s: the old reader has config_version", name);
        adec_free(&a);
        TEST_ASSERT(cv_0->len > 0 && cv_0->data[cv_0->len - 1] == 0,
                    "%s: does not end with config_version 0", name);
        tern_buf_init(&cut, 1 << 16);
        tern_buf_append(&cut, cv_0->data, cv_0->len - 1);
        TEST_EQ_INT(adec_read(&a, old, &cut), 0);
        TEST_EQ_INT(along(&a.v, "source_offset"), source_offset);
        adec_free(&a);
        tern_buf_free(&cut);
}

#define CV_CASE(schema, enc, type, fixture, off)                               \
        do {                                                                   \
                type r_ = (fixture);                                           \
                tern_buf_reset(&big);                                          \
                tern_buf_reset(&zero);                                         \
                r_.config_version = 1LL << 33;                                 \
                TEST_EQ_INT(enc(&r_, &big), 0);                                \
                r_.config_version = 0;                                         \
                TEST_EQ_INT(enc(&r_, &zero), 0);                               \
                check_cv_resolves(#enc, (schema), &big, &zero, (off));         \
        } while (0)

/* config_version was added to these records after they were published:
 * old readers read new records, and new records are the old layout plus
 * the field, which a reader honouring defaults (Java, Python, the Schema
 * Registry's compatibility check) fills with 0 in old records. */
static void config_version_resolves(void) {
        tern_buf_t big, zero;
        tern_buf_init(&big, 1 << 16);
        tern_buf_init(&zero, 1 << 16);
        CV_CASE(sink_dead_letter_schema, sink_dead_letter_avro,
                sink_dead_letter_t, dl_fixture(), 42);
        CV_CASE(sink_ctr_score_schema, sink_ctr_score_avro, sink_ctr_score_t,
                CTR, 99);
        CV_CASE(sink_churn_score_schema, sink_churn_score_avro,
                sink_churn_score_t, CHURN_SCORE, 77);
        CV_CASE(sink_churn_alert_schema, sink_churn_alert_avro,
                sink_churn_alert_t, CHURN_ALERT, 78);
        CV_CASE(sink_model_alert_schema, sink_model_alert_avro,
                sink_model_alert_t, MODEL_ALERT, 79);
        tern_buf_free(&big);
        tern_buf_free(&zero);
}

TEST_MAIN(TEST_CASE(rec_avro_0_items), TEST_CASE(rec_avro_1_item),
          TEST_CASE(rec_avro_10_items), TEST_CASE(dead_letter_avro),
          TEST_CASE(encoders_overflow), TEST_CASE(rec_json_0_items),
          TEST_CASE(rec_json_1_item), TEST_CASE(rec_json_10_items),
          TEST_CASE(rec_json_non_finite), TEST_CASE(dead_letter_json),
          TEST_CASE(producer_delivers), TEST_CASE(producer_delivery_failure),
          TEST_CASE(producer_bad_conf), TEST_CASE(ctr_score_avro),
          TEST_CASE(churn_records_avro), TEST_CASE(churn_records_json),
          TEST_CASE(config_version_resolves));
