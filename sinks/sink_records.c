/*
 * sink_records — Avro binary and JSON encoders for the output records.
 *
 * The Avro side is written by hand in the field order of
 * conf/schemas/recommendation.avsc, dead_letter.avsc and ctr_score.avsc (a
 * change there must change this file; tests/0007-sinks.c decodes with Avro-C to
 * catch a mismatch). Arrays and maps are written as one block: count, items, 0.
 *
 * Every encoder appends to `out`; the buffer's overflow flag is sticky, so
 * the encoders append everything and check once at the end. On failure the
 * partial record is cut off again (out->len is restored) and -1 returned.
 */
#include "sink_records.h"

#include "sink_enc.h"

#include <math.h>
#include <string.h>

/* NULL strings are written as "": the runtime may leave a field unset, and
 * an empty string is a valid Avro/JSON value where NULL is not. */
static const char *str_or_empty(const char *s) {
        return s ? s : "";
}

void sink_avro_cstr(tern_buf_t *out, const char *s) {
        s = str_or_empty(s);
        tern_buf_put_str(out, s, strlen(s));
}

int sink_enc_done(tern_buf_t *out, size_t start) {
        if (!out->overflow)
                return 0;
        if (out->len > start)
                out->len = start;
        return -1;
}

void sink_avro_source(tern_buf_t *out, const sink_source_t *src) {
        sink_avro_cstr(out, src->topic);
        tern_buf_put_long(out, src->partition); /* Avro int: same zigzag */
        tern_buf_put_long(out, src->offset);
}

static void avro_items(tern_buf_t *out, const sink_recommendation_t *r) {
        if (r->n_items) {
                tern_buf_put_long(out, r->n_items);
                for (uint32_t i = 0; i < r->n_items; i++) {
                        const sink_scored_item_t *it = &r->items[i];
                        tern_buf_put_str(out, it->item_id, it->len);
                        tern_buf_put_double(out, it->score);
                }
        }
        tern_buf_put_long(out, 0);
}

static void avro_models(tern_buf_t *out, const sink_recommendation_t *r) {
        if (r->n_models) {
                tern_buf_put_long(out, r->n_models);
                for (uint32_t i = 0; i < r->n_models; i++) {
                        sink_avro_cstr(out, r->models[i].model);
                        tern_buf_put_long(out, r->models[i].version);
                }
        }
        tern_buf_put_long(out, 0);
}

int sink_recommendation_avro(const sink_recommendation_t *r, tern_buf_t *out) {
        size_t start = out->len;
        tern_buf_put_str(out, r->user_id, r->user_len);
        avro_items(out, r);
        sink_avro_cstr(out, r->strategy);
        tern_buf_put_long(out, r->config_version);
        avro_models(out, r);
        sink_avro_source(out, &r->source);
        tern_buf_put_long(out, r->generated_at);
        return sink_enc_done(out, start);
}

int sink_dead_letter_avro(const sink_dead_letter_t *d, tern_buf_t *out) {
        size_t start = out->len;
        /* Avro bytes and string share one encoding: length, then bytes. */
        tern_buf_put_str(out, (const char *)d->raw, d->raw_len);
        sink_avro_cstr(out, d->error);
        sink_avro_cstr(out, d->reason);
        sink_avro_source(out, &d->source);
        tern_buf_put_long(out, d->failed_at);
        tern_buf_put_long(out, d->config_version);
        return sink_enc_done(out, start);
}

/* JSON ------------------------------------------------------------------ */

void sink_json_str(tern_buf_t *out, const char *s, size_t n) {
        if (!s) {
                s = "";
                n = 0;
        }
        tern_buf_put_u8(out, '"');
        tern_buf_put_json_str(out, s, n);
        tern_buf_put_u8(out, '"');
}

void sink_json_cstr(tern_buf_t *out, const char *s) {
        s = str_or_empty(s);
        sink_json_str(out, s, strlen(s));
}

/* %.17g round-trips every double; JSON has no NaN or Infinity, so those
 * become null rather than an unparsable line. */
void sink_json_double(tern_buf_t *out, double v) {
        if (!isfinite(v))
                PUT_LIT(out, "null");
        else
                tern_buf_printf(out, "%.17g", v);
}

void sink_json_source(tern_buf_t *out, const sink_source_t *src) {
        PUT_LIT(out, "\"source_topic\":");
        sink_json_cstr(out, src->topic);
        tern_buf_printf(out, ",\"source_partition\":%d,\"source_offset\":%lld",
                        (int)src->partition, (long long)src->offset);
}

static void json_items(tern_buf_t *out, const sink_recommendation_t *r) {
        PUT_LIT(out, "\"items\":[");
        for (uint32_t i = 0; i < r->n_items; i++) {
                const sink_scored_item_t *it = &r->items[i];
                if (i)
                        tern_buf_put_u8(out, ',');
                PUT_LIT(out, "{\"item_id\":");
                sink_json_str(out, it->item_id, it->len);
                PUT_LIT(out, ",\"score\":");
                sink_json_double(out, it->score);
                tern_buf_put_u8(out, '}');
        }
        tern_buf_put_u8(out, ']');
}

static void json_models(tern_buf_t *out, const sink_recommendation_t *r) {
        PUT_LIT(out, "\"model_versions\":{");
        for (uint32_t i = 0; i < r->n_models; i++) {
                if (i)
                        tern_buf_put_u8(out, ',');
                sink_json_cstr(out, r->models[i].model);
                tern_buf_printf(out, ":%lld", (long long)r->models[i].version);
        }
        tern_buf_put_u8(out, '}');
}

int sink_recommendation_json(const sink_recommendation_t *r, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"user_id\":");
        sink_json_str(out, r->user_id, r->user_len);
        tern_buf_put_u8(out, ',');
        json_items(out, r);
        PUT_LIT(out, ",\"strategy\":");
        sink_json_cstr(out, r->strategy);
        tern_buf_printf(out, ",\"config_version\":%lld,",
                        (long long)r->config_version);
        json_models(out, r);
        tern_buf_put_u8(out, ',');
        sink_json_source(out, &r->source);
        tern_buf_printf(out, ",\"generated_at\":%lld}",
                        (long long)r->generated_at);
        return sink_enc_done(out, start);
}

static void json_base64(tern_buf_t *out, const uint8_t *p, size_t n) {
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char q[4];
        tern_buf_put_u8(out, '"');
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < n)
                        v |= p[i + 2];
                q[0] = b64[v >> 18];
                q[1] = b64[(v >> 12) & 63];
                q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                q[3] = i + 2 < n ? b64[v & 63] : '=';
                tern_buf_append(out, q, 4);
        }
        tern_buf_put_u8(out, '"');
}

int sink_dead_letter_json(const sink_dead_letter_t *d, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"raw_base64\":");
        json_base64(out, d->raw, d->raw_len);
        PUT_LIT(out, ",\"error\":");
        sink_json_cstr(out, d->error);
        PUT_LIT(out, ",\"reason\":");
        sink_json_cstr(out, d->reason);
        tern_buf_put_u8(out, ',');
        sink_json_source(out, &d->source);
        tern_buf_printf(out, ",\"failed_at\":%lld,\"config_version\":%lld}",
                        (long long)d->failed_at, (long long)d->config_version);
        return sink_enc_done(out, start);
}

/* ctr-scores ------------------------------------------------------------ */

/* ["null", "string"]: branch index, then the string. */
static void avro_opt_str(tern_buf_t *out, const char *s, uint32_t len) {
        tern_buf_put_long(out, s ? 1 : 0);
        if (s)
                tern_buf_put_str(out, s, len);
}

int sink_ctr_score_avro(const sink_ctr_score_t *c, tern_buf_t *out) {
        size_t start = out->len;
        tern_buf_put_str(out, c->impression_id, c->impression_len);
        tern_buf_put_str(out, c->user_id, c->user_len);
        avro_opt_str(out, c->item_id, c->item_len);
        avro_opt_str(out, c->campaign_id, c->campaign_len);
        tern_buf_put_double(out, c->p_click);
        tern_buf_put_long(out, c->model_version);
        sink_avro_source(out, &c->source);
        tern_buf_put_long(out, c->event_time);
        tern_buf_put_long(out, c->config_version);
        return sink_enc_done(out, start);
}

static void json_opt_str(tern_buf_t *out, const char *s, uint32_t len) {
        if (s)
                sink_json_str(out, s, len);
        else
                PUT_LIT(out, "null");
}

int sink_ctr_score_json(const sink_ctr_score_t *c, tern_buf_t *out) {
        size_t start = out->len;
        PUT_LIT(out, "{\"impression_id\":");
        sink_json_str(out, c->impression_id, c->impression_len);
        PUT_LIT(out, ",\"user_id\":");
        sink_json_str(out, c->user_id, c->user_len);
        PUT_LIT(out, ",\"item_id\":");
        json_opt_str(out, c->item_id, c->item_len);
        PUT_LIT(out, ",\"campaign_id\":");
        json_opt_str(out, c->campaign_id, c->campaign_len);
        PUT_LIT(out, ",\"p_click\":");
        sink_json_double(out, c->p_click);
        tern_buf_printf(out, ",\"model_version\":%lld,",
                        (long long)c->model_version);
        sink_json_source(out, &c->source);
        tern_buf_printf(out, ",\"event_time\":%lld,\"config_version\":%lld}",
                        (long long)c->event_time, (long long)c->config_version);
        return sink_enc_done(out, start);
}
