/*
 * sink_schemas — the output schemas, embedded at build time.
 *
 * Defined by the CMake build (cmake/embed.cmake) from
 * conf/schemas/recommendation.avsc and conf/schemas/dead_letter.avsc, as
 * NUL-terminated JSON text. sink_records.c encodes exactly these layouts;
 * tests/0007-sinks.c decodes with Avro-C against them to prove it.
 */
#ifndef SINK_SCHEMAS_H
#define SINK_SCHEMAS_H

extern const char sink_recommendation_schema[];
extern const char sink_dead_letter_schema[];
extern const char sink_ctr_score_schema[];

#endif
