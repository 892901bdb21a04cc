/*
 * sink_churn — Avro and JSON encoders of the churn outputs, by hand in the
 * field order of their schemas (tests/0007-sinks.c decodes them with
 * Avro-C against the embedded schemas to catch a mismatch).
 */
#include "sink_churn.h"

#include <string.h>

#include "sink_enc.h"

/* "name":value after a previous field */
static void json_double(tern_buf_t *out, const char *name, double v) {
        tern_buf_printf(out, ",\"%s\":", name);
        sink_json_double(out, v);
}

/* the source fields and config_version, last in every churn record */
static void json_tail(tern_buf_t *out, const sink_source_t *src,
                      int64_t config_version) {
        tern_buf_put_u8(out, ',');
        sink_json_source(out, src);
        tern_buf_printf(out, ",\"config_version\":%lld}",
                        (long long)config_version);
}

int sink_churn_score_avro(const sink_churn_score_t *r, tern_buf_t *out) {
        size_t start = out->len;
        tern_buf_put_str(out, r->user_id, r->user_len);
        tern_buf_put_long(out, r->ts_ms);
        tern_buf_put_double(out, r->risk);
        tern_buf_put_long(out, r->model_version);
        sink_avro_cstr(out, r->trigger);
        sink_avro_source(out, &r->source);
        tern_buf_put_long(out, r->config_version);
        return sink_enc_done(out, start);
}

int sink_churn_score_json(const sink_churn_score_t *r, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"user_id\":");
        sink_json_str(out, r->user_id, r->user_len);
        tern_buf_printf(out, ",\"ts_ms\":%lld", (long long)r->ts_ms);
        json_double(out, "risk", r->risk);
        tern_buf_printf(out, ",\"model_version\":%lld,\"trigger\":",
                        (long long)r->model_version);
        sink_json_cstr(out, r->trigger);
        json_tail(out, &r->source, r->config_version);
        return sink_enc_done(out, start);
}

int sink_churn_alert_avro(const sink_churn_alert_t *r, tern_buf_t *out) {
        size_t start = out->len;
        tern_buf_put_str(out, r->user_id, r->user_len);
        tern_buf_put_long(out, r->ts_ms);
        tern_buf_put_double(out, r->risk);
        tern_buf_put_double(out, r->previous_risk);
        tern_buf_put_double(out, r->threshold);
        if (r->n_reasons) {
                tern_buf_put_long(out, r->n_reasons);
                for (uint32_t i = 0; i < r->n_reasons; i++) {
                        sink_avro_cstr(out, r->reasons[i].feature);
                        tern_buf_put_double(out, r->reasons[i].value);
                        tern_buf_put_double(out, r->reasons[i].contribution);
                }
        }
        tern_buf_put_long(out, 0);
        tern_buf_put_long(out, r->model_version);
        sink_avro_source(out, &r->source);
        tern_buf_put_long(out, r->config_version);
        return sink_enc_done(out, start);
}

int sink_churn_alert_json(const sink_churn_alert_t *r, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"user_id\":");
        sink_json_str(out, r->user_id, r->user_len);
        tern_buf_printf(out, ",\"ts_ms\":%lld", (long long)r->ts_ms);
        json_double(out, "risk", r->risk);
        json_double(out, "previous_risk", r->previous_risk);
        json_double(out, "threshold", r->threshold);
        PUT_LIT(out, ",\"reasons\":[");
        for (uint32_t i = 0; i < r->n_reasons; i++) {
                PUT_LIT(out, "{\"feature\":");
                sink_json_cstr(out, r->reasons[i].feature);
                json_double(out, "value", r->reasons[i].value);
                json_double(out, "contribution", r->reasons[i].contribution);
                PUT_LIT(out, "}");
                if (i + 1 < r->n_reasons)
                        PUT_LIT(out, ",");
        }
        tern_buf_printf(out, "],\"model_version\":%lld",
                        (long long)r->model_version);
        json_tail(out, &r->source, r->config_version);
        return sink_enc_done(out, start);
}

int sink_model_alert_avro(const sink_model_alert_t *r, tern_buf_t *out) {
        size_t start = out->len;
        sink_avro_cstr(out, r->model);
        sink_avro_cstr(out, r->detector);
        tern_buf_put_double(out, r->statistic);
        tern_buf_put_double(out, r->threshold);
        tern_buf_put_long(out, r->reference_count);
        tern_buf_put_long(out, r->reference_start);
        tern_buf_put_long(out, r->reference_end);
        tern_buf_put_long(out, r->current_count);
        tern_buf_put_long(out, r->current_start);
        tern_buf_put_long(out, r->current_end);
        sink_avro_cstr(out, r->action);
        tern_buf_put_long(out, r->model_version);
        tern_buf_put_long(out, r->ts_ms);
        sink_avro_source(out, &r->source);
        tern_buf_put_long(out, r->config_version);
        return sink_enc_done(out, start);
}

int sink_model_alert_json(const sink_model_alert_t *r, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"model\":");
        sink_json_cstr(out, r->model);
        PUT_LIT(out, ",\"detector\":");
        sink_json_cstr(out, r->detector);
        json_double(out, "statistic", r->statistic);
        json_double(out, "threshold", r->threshold);
        tern_buf_printf(
            out,
            ",\"reference_count\":%lld,\"reference_start_offset\":%lld,"
            "\"reference_end_offset\":%lld,\"current_count\":%lld,"
            "\"current_start_offset\":%lld,\"current_end_offset\":%lld,"
            "\"action\":",
            (long long)r->reference_count, (long long)r->reference_start,
            (long long)r->reference_end, (long long)r->current_count,
            (long long)r->current_start, (long long)r->current_end);
        sink_json_cstr(out, r->action);
        tern_buf_printf(out, ",\"model_version\":%lld,\"ts_ms\":%lld",
                        (long long)r->model_version, (long long)r->ts_ms);
        json_tail(out, &r->source, r->config_version);
        return sink_enc_done(out, start);
}
