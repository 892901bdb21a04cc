/*
 * sink_records — the output records tern publishes, and their encoders.
 *
 * Each record type is plain data (sinks know no model internals; the
 * runtime fills these from stage results). Encoders append Avro binary in
 * the layout of conf/schemas/<name>.avsc, and/or one JSON object (one
 * line, no trailing newline) with the same field names, used by
 * `replay --emit` and logs. Strings are borrowed for the duration of the
 * call. Appending fails (-1) only when the buffer's maximum is exceeded;
 * then the partial record is cut off again (out->len as before the call).
 * NULL C strings are written as "". JSON doubles use %.17g; NaN and
 * infinities become null.
 *
 * config_version: the live configuration version (runtime/rt_control.h)
 * when the record was made. Every record carries it; all but the
 * recommendation (which had it from the start) have it last, with a
 * default of 0 in the schema, so readers and records of either version
 * resolve.
 */
#ifndef SINK_RECORDS_H
#define SINK_RECORDS_H

#include <stdint.h>

#include "../common/tern_buf.h"

typedef struct sink_source {
        const char *topic;
        int32_t partition;
        int64_t offset;
} sink_source_t;

typedef struct sink_scored_item {
        const char *item_id;
        uint32_t len;
        double score;
} sink_scored_item_t;

typedef struct sink_model_version {
        const char *model;
        int64_t version;
} sink_model_version_t;

typedef struct sink_recommendation {
        const char *user_id;
        uint32_t user_len;
        uint32_t n_items;
        const sink_scored_item_t *items;
        const char *strategy; /* "co-occurrence" | "trending" */
        int64_t config_version;
        uint32_t n_models;
        const sink_model_version_t *models;
        sink_source_t source;
        int64_t generated_at; /* event time, ms */
} sink_recommendation_t;

typedef struct sink_dead_letter {
        const uint8_t *raw;
        size_t raw_len;
        const char *error;
        const char *reason;
        sink_source_t source;
        int64_t failed_at; /* Kafka timestamp of the source record, ms */
        int64_t config_version;
} sink_dead_letter_t;

typedef struct sink_ctr_score {
        const char *impression_id;
        uint32_t impression_len;
        const char *user_id;
        uint32_t user_len;
        const char *item_id; /* NULL = null */
        uint32_t item_len;
        const char *campaign_id; /* NULL = null */
        uint32_t campaign_len;
        double p_click;
        int64_t model_version;
        sink_source_t source;
        int64_t event_time; /* ms */
        int64_t config_version;
} sink_ctr_score_t;

int sink_recommendation_avro(const sink_recommendation_t *r, tern_buf_t *out);
int sink_recommendation_json(const sink_recommendation_t *r, tern_buf_t *out);
int sink_dead_letter_avro(const sink_dead_letter_t *d, tern_buf_t *out);
/* raw is written base64-encoded as "raw_base64". */
int sink_dead_letter_json(const sink_dead_letter_t *d, tern_buf_t *out);

int sink_ctr_score_avro(const sink_ctr_score_t *c, tern_buf_t *out);
int sink_ctr_score_json(const sink_ctr_score_t *c, tern_buf_t *out);

#endif
