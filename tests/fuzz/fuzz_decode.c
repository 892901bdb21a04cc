/*
 * fuzz_decode — libFuzzer target for ingest_decode().
 *
 * The input is decoded in RAW mode (the built-in schema, and a writer with
 * recursive and zero-size types to exercise the skipper) and in AUTO mode
 * (Confluent ids 1 = built-in, 2 = an evolved writer with nested types to
 * skip and promotions, 3 = the recursive one). Decoders are built once.
 *
 * Beyond "no crash, no leak, no UB": every decoded string must lie inside
 * the input, and an event decoded from the built-in layout must survive
 * ingest_encode_event() -> ingest_decode() unchanged.
 *
 * Seeds: tests/fuzz/corpus/decode/ (written by tests/0002-decode with
 * TERN_WRITE_CORPUS=DIR).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tern_buf.h"
#include "ingest/ingest_decode.h"
#include "ingest/ingest_encode.h"

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

static ingest_decoder_t *dec_raw, *dec_raw_nested, *dec_auto;

static void die(const char *what, const char *err) {
        fprintf(stderr, "fuzz_decode: %s: %s\n", what, err);
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char err[512];
        (void)argc;
        (void)argv;
        if (!(dec_raw = ingest_decoder_new(NULL, NULL, INGEST_WIRE_RAW, err,
                                           sizeof(err))) ||
            !(dec_raw_nested = ingest_decoder_new(NULL, NULL, INGEST_WIRE_RAW,
                                                  err, sizeof(err))) ||
            !(dec_auto = ingest_decoder_new(NULL, NULL, INGEST_WIRE_AUTO, err,
                                            sizeof(err))))
                die("decoder", err);
        if (ingest_decoder_set_raw_schema(dec_raw_nested, nested_schema, err,
                                          sizeof(err)) ||
            ingest_decoder_add_schema(dec_auto, 1, ingest_behavior_event_schema,
                                      err, sizeof(err)) ||
            ingest_decoder_add_schema(dec_auto, 2, evolved_schema, err,
                                      sizeof(err)) ||
            ingest_decoder_add_schema(dec_auto, 3, nested_schema, err,
                                      sizeof(err)))
                die("schema", err);
        return 0;
}

static void str_inside(tern_str_t s, const uint8_t *data, size_t size) {
        const uint8_t *p = (const uint8_t *)s.ptr;
        if (p && (p < data || p + s.len > data + size))
                abort();
}

static void check_inside(const tern_event_t *ev, const uint8_t *data,
                         size_t size) {
        str_inside(ev->event_id, data, size);
        str_inside(ev->user_id, data, size);
        str_inside(ev->item_id, data, size);
        str_inside(ev->category_id, data, size);
        str_inside(ev->impression_id, data, size);
        str_inside(ev->campaign_id, data, size);
        if (ev->n_context > TERN_EVENT_MAX_CONTEXT)
                abort();
        for (uint32_t i = 0; i < ev->n_context; i++) {
                str_inside(ev->context_key[i], data, size);
                str_inside(ev->context_val[i], data, size);
        }
}

static int str_same(tern_str_t a, tern_str_t b) {
        return (a.ptr == NULL) == (b.ptr == NULL) && tern_str_eq(a, b);
}

static int events_same(const tern_event_t *a, const tern_event_t *b) {
        if (!str_same(a->event_id, b->event_id) ||
            !str_same(a->user_id, b->user_id) ||
            !str_same(a->item_id, b->item_id) ||
            !str_same(a->category_id, b->category_id) ||
            !str_same(a->impression_id, b->impression_id) ||
            !str_same(a->campaign_id, b->campaign_id) || a->type != b->type ||
            a->ts_ms != b->ts_ms || a->has_price != b->has_price ||
            (a->has_price && memcmp(&a->price, &b->price, 8) != 0) ||
            a->has_quantity != b->has_quantity ||
            (a->has_quantity && a->quantity != b->quantity) ||
            a->n_context != b->n_context)
                return 0;
        for (uint32_t i = 0; i < a->n_context; i++)
                if (!str_same(a->context_key[i], b->context_key[i]) ||
                    !str_same(a->context_val[i], b->context_val[i]))
                        return 0;
        return 1;
}

/* decode(encode(ev)) == ev for an event the built-in layout produced. */
static void check_round_trip(const tern_event_t *ev) {
        tern_buf_t b;
        tern_event_t again;
        char err[512];
        tern_buf_init(&b, 2 * 1024 * 1024);
        if (ingest_encode_event(ev, -1, &b))
                abort();
        tern_event_clear(&again);
        if (ingest_decode(dec_raw, b.data, b.len, &again, NULL, err,
                          sizeof(err)) != TERN_OK) {
                fprintf(stderr, "re-decode failed: %s\n", err);
                abort();
        }
        if (!events_same(ev, &again))
                abort();
        tern_buf_free(&b);
}

static tern_code_t decode(const ingest_decoder_t *dec, const uint8_t *data,
                          size_t size, tern_event_t *ev) {
        char err[512];
        const char *reason = NULL;
        tern_code_t code;
        tern_event_clear(ev);
        code = ingest_decode(dec, data, size, ev, &reason, err, sizeof(err));
        if (code == TERN_OK)
                check_inside(ev, data, size);
        else if (!reason || !err[0])
                abort(); /* every failure has a class and a message */
        return code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        tern_event_t ev;
        if (decode(dec_raw, data, size, &ev) == TERN_OK)
                check_round_trip(&ev);
        decode(dec_raw_nested, data, size, &ev);
        decode(dec_auto, data, size, &ev);
        return 0;
}
