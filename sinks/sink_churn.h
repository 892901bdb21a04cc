/*
 * sink_churn — the churn outputs: churn-scores, churn-alerts, model-alerts.
 *
 * Plain records filled by the runtime (sinks know no model internals) and
 * their encoders, in the conventions of sink_records.h: Avro binary in the
 * field order of conf/schemas/churn_score.avsc, churn_alert.avsc and
 * model_alert.avsc (embedded at build time, below), or one JSON object
 * with the same field names for `replay --emit`. Strings are borrowed for
 * the call; -1 (and out->len restored) when the buffer's maximum is hit.
 */
#ifndef SINK_CHURN_H
#define SINK_CHURN_H

#include <stdint.h>

#include "../common/tern_buf.h"
#include "sink_records.h"

extern const char sink_churn_score_schema[];
extern const char sink_churn_alert_schema[];
extern const char sink_model_alert_schema[];

typedef struct sink_churn_score {
        const char *user_id;
        uint32_t user_len;
        int64_t ts_ms;
        double risk;
        int64_t model_version;
        const char *trigger; /* "event" | "sweep" */
        sink_source_t source;
        int64_t config_version; /* last, see sink_records.h */
} sink_churn_score_t;

typedef struct sink_churn_reason {
        const char *feature;
        double value;
        double contribution;
} sink_churn_reason_t;

typedef struct sink_churn_alert {
        const char *user_id;
        uint32_t user_len;
        int64_t ts_ms;
        double risk, previous_risk, threshold;
        uint32_t n_reasons;
        const sink_churn_reason_t *reasons;
        int64_t model_version;
        sink_source_t source;
        int64_t config_version; /* last, see sink_records.h */
} sink_churn_alert_t;

typedef struct sink_model_alert {
        const char *model;
        const char *detector;
        double statistic, threshold;
        int64_t reference_count, reference_start, reference_end;
        int64_t current_count, current_start, current_end;
        const char *action;
        int64_t model_version;
        int64_t ts_ms;
        sink_source_t source;
        int64_t config_version; /* last, see sink_records.h */
} sink_model_alert_t;

int sink_churn_score_avro(const sink_churn_score_t *r, tern_buf_t *out);
int sink_churn_score_json(const sink_churn_score_t *r, tern_buf_t *out);
int sink_churn_alert_avro(const sink_churn_alert_t *r, tern_buf_t *out);
int sink_churn_alert_json(const sink_churn_alert_t *r, tern_buf_t *out);
int sink_model_alert_avro(const sink_model_alert_t *r, tern_buf_t *out);
int sink_model_alert_json(const sink_model_alert_t *r, tern_buf_t *out);

#endif
