/*
 * ingest_decode — bounded, schema-specific decoder for tern.BehaviorEvent.
 *
 * The decoder is compiled once from the READER schema (tern.BehaviorEvent,
 * conf/schemas/behavior_event.avsc) and one or more WRITER schemas (parsed
 * with Avro-C, trusted: they come from config or the schema directory).
 * For each writer schema it builds a small program: per writer field,
 * read-into-reader-field (with int->long, float->double, enum-by-symbol
 * resolution) or skip; reader fields the writer lacks take their default.
 * Defaults are the reader schema's declared "default" values (Avro-C does
 * not expose them, so the reader JSON is walked for them: ingest_jwalk):
 * null, a string, an enum symbol, a number, or {} for the context map,
 * typed by the field's type or, for a union, its first branch (Avro's
 * rule; a default of the wrong type is TERN_ERR_CONFIG at set-up). With
 * no declared default, a ["null", T] field still defaults to null and the
 * context map to {} (tern's leniency); any other reader field is required
 * and a writer schema without it is refused at set-up with
 * TERN_ERR_CONFIG. String defaults live in the decoder: an event's
 * strings borrow the record or the decoder.
 * Decoding then never calls Avro-C: it walks the bytes with bounds checks.
 *
 * Bounds (ingest_limits_t): no length or count may exceed the bytes that
 * remain nor the configured maximum; nothing is allocated from a length
 * found in the input; nesting deeper than max_depth fails. Hostile input
 * fails with TERN_ERR_DECODE / TERN_ERR_LIMIT / TERN_ERR_NOT_FOUND and a
 * reason, never a crash.
 *
 * Validation after decode (TERN_ERR_INVALID): empty event_id or user_id,
 * ts_ms outside [ts_min_ms, ts_max_ms], more context entries than
 * max_context_entries. An enum symbol the reader lacks is TERN_ERR_INVALID
 * ("unknown enum symbol").
 *
 * Wire formats: RAW = Avro binary written with the configured raw writer
 * schema; CONFLUENT = 0x00, 4-byte big-endian schema id, Avro binary; AUTO =
 * CONFLUENT when byte 0 is 0x00, else RAW (an empty event_id is invalid
 * anyway, so a raw record never starts with 0x00 legitimately).
 *
 * Thread safety: ingest_decode() only reads the decoder, so several
 * threads may decode at once — while nobody changes it. The set-up calls
 * (set_raw_schema, add_schema, load_schema_dir) change it: before the
 * decoder is shared they are free; afterwards only the ONE thread that
 * decodes may call them, between its own decodes (the pipeline's loop
 * adds schemas fetched from a Schema Registry that way, runtime/
 * rt_schemas.c). A decoder shared by several decoding threads must not be
 * changed at all.
 */
#ifndef INGEST_DECODE_H
#define INGEST_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_err.h"
#include "ingest_event.h"

typedef enum ingest_wire {
        INGEST_WIRE_AUTO = 0,
        INGEST_WIRE_RAW,
        INGEST_WIRE_CONFLUENT
} ingest_wire_t;

typedef struct ingest_limits {
        size_t max_record_bytes;       /* whole payload */
        size_t max_string_bytes;       /* any one string/bytes value */
        uint32_t max_context_entries;  /* <= TERN_EVENT_MAX_CONTEXT */
        uint32_t max_collection_items; /* any array/map being skipped */
        uint32_t max_depth;            /* nesting while skipping */
        int64_t ts_min_ms;
        int64_t ts_max_ms;
} ingest_limits_t;

void ingest_limits_default(ingest_limits_t *l);

typedef struct ingest_decoder ingest_decoder_t;

/* The reader schema JSON is tern.BehaviorEvent; NULL = the built-in copy. */
ingest_decoder_t *ingest_decoder_new(const char *reader_schema_json,
                                     const ingest_limits_t *limits,
                                     ingest_wire_t wire, char *errstr,
                                     size_t errstr_size);
void ingest_decoder_destroy(ingest_decoder_t *dec);

/* Writer schema for RAW records; until set, RAW records are read with the
 * reader schema itself. */
tern_code_t ingest_decoder_set_raw_schema(ingest_decoder_t *dec,
                                          const char *writer_json, char *errstr,
                                          size_t errstr_size);
/* Writer schema for a Confluent schema id. */
tern_code_t ingest_decoder_add_schema(ingest_decoder_t *dec, int32_t id,
                                      const char *writer_json, char *errstr,
                                      size_t errstr_size);
/* Load every DIR/<id>.avsc (id a decimal integer); other files ignored. */
tern_code_t ingest_decoder_load_schema_dir(ingest_decoder_t *dec,
                                           const char *dir, char *errstr,
                                           size_t errstr_size);
/* 1 when a writer schema is registered for Confluent schema id `id`. */
int ingest_decoder_has_schema(const ingest_decoder_t *dec, int32_t id);
/* 1 and *id when buf is Confluent-framed (0x00 + 4-byte id + body). */
int ingest_confluent_id(const uint8_t *buf, size_t len, int32_t *id);

/* Decode one payload into *ev (strings borrow buf). ev's src_* fields are
 * left untouched. On failure *ev is unspecified; *reason (if given) is set
 * to a short class: "decode", "invalid", "unknown_schema", "too_large",
 * "bad_magic" (NULL on success). The class follows the code: DECODE ->
 * "decode" (or "bad_magic" for a CONFLUENT payload not starting with 0x00),
 * INVALID -> "invalid", LIMIT (record, string, collection or nesting over
 * its limit) -> "too_large", NOT_FOUND -> "unknown_schema". errstr names the
 * writer field and the byte offset in buf where it failed. */
tern_code_t ingest_decode(const ingest_decoder_t *dec, const uint8_t *buf,
                          size_t len, tern_event_t *ev, const char **reason,
                          char *errstr, size_t errstr_size);

/* The built-in reader schema JSON (conf/schemas/behavior_event.avsc). */
extern const char ingest_behavior_event_schema[];

#endif
