/*
 * ingest_encode — write a tern_event_t as Avro binary in the tern.BehaviorEvent
 * layout (the inverse of ingest_decode with the built-in schema). Used by the
 * producers of input: `tern produce`, replay, the demo and bench generators,
 * tests. With schema_id >= 0 the Confluent frame (0x00 + id) is written first.
 * Appends to out; returns -1 when out's maximum would be exceeded.
 */
#ifndef INGEST_ENCODE_H
#define INGEST_ENCODE_H

#include "../common/tern_buf.h"
#include "ingest_event.h"

int ingest_encode_event(const tern_event_t *ev, int32_t schema_id,
                        tern_buf_t *out);

#endif
