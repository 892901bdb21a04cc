/*
 * sink_enc — the encoding pieces every output record shares (sink_records.c
 * defines them): NULL strings as "", the source triple, JSON strings and
 * doubles (%.17g; NaN and infinities as null), and the overflow check that
 * cuts a partial record off again. Private to sinks/.
 */
#ifndef SINK_ENC_H
#define SINK_ENC_H

#include <stddef.h>

#include "../common/tern_buf.h"
#include "sink_records.h"

#define PUT_LIT(out, lit) tern_buf_append((out), (lit), sizeof(lit) - 1)

void sink_avro_cstr(tern_buf_t *out, const char *s);
/* topic, partition, offset */
void sink_avro_source(tern_buf_t *out, const sink_source_t *src);
/* 0, or -1 with out->len back at start when the buffer overflowed */
int sink_enc_done(tern_buf_t *out, size_t start);
void sink_json_str(tern_buf_t *out, const char *s, size_t n);
void sink_json_cstr(tern_buf_t *out, const char *s);
void sink_json_double(tern_buf_t *out, double v);
/* "source_topic":..,"source_partition":..,"source_offset":.. */
void sink_json_source(tern_buf_t *out, const sink_source_t *src);

#endif
