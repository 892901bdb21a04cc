/*
 * ingest_json — a small bounded JSON reader for the `jsonl` replay format.
 *
 * One line holds one JSON object with the tern.BehaviorEvent field names
 * (conf/schemas/behavior_event.avsc): strings or null for the string fields,
 * numbers (or null) for ts_ms, price and quantity, event_type as its symbol
 * ("VIEW", ...), context an object of string values. A union written the
 * Avro-JSON way ({"string": "x"}, {"double": 1.5}) is accepted as well.
 * Unknown keys are skipped (nesting at most INGEST_JSON_MAX_DEPTH deep).
 * A missing field stays absent (NULL string, 0 number): validation is the
 * pipeline's job, not the reader's. event_type is the one field that must be
 * there, since tern_event_t cannot say "no type".
 *
 * Ownership: strings are decoded IN PLACE (escapes only ever shrink), so
 * `line` is modified and the event borrows it.
 */
#ifndef INGEST_JSON_H
#define INGEST_JSON_H

#include <stddef.h>

#include "../common/tern_err.h"
#include "ingest_event.h"

#define INGEST_JSON_MAX_DEPTH 32

/* TERN_OK and *ev filled (event_id may be NULL when the line has none);
 * TERN_ERR_DECODE with a reason in errstr otherwise. */
tern_code_t ingest_json_event(char *line, size_t len, tern_event_t *ev,
                              char *errstr, size_t errstr_size);

#endif
