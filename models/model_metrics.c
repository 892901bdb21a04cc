/*
 * model_metrics — progressive-validation counters, the statistics derived
 * from them, JSON and the stored record (all described in model_metrics.h).
 */
#include "model_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_REC_VERSION 1

static double clip_p(double p) {
        if (!(p >= MODEL_METRICS_P_MIN)) /* also NaN */
                return MODEL_METRICS_P_MIN;
        if (p > 1.0 - MODEL_METRICS_P_MIN)
                return 1.0 - MODEL_METRICS_P_MIN;
        return p;
}

uint32_t model_metrics_bin(double p) {
        double logit, x;
        p = clip_p(p);
        logit = log(p) - log1p(-p);
        x = floor((logit + MODEL_METRICS_LOGIT_MAX) *
                  (MODEL_METRICS_BINS / (2 * MODEL_METRICS_LOGIT_MAX)));
        if (x < 0)
                return 0;
        if (x > MODEL_METRICS_BINS - 1)
                return MODEL_METRICS_BINS - 1;
        return (uint32_t)x;
}

void model_metrics_add(model_metrics_t *m, double p, int y) {
        uint32_t b = model_metrics_bin(p);
        p = clip_p(p);
        m->examples++;
        m->p_sum += p;
        if (y) {
                m->positives++;
                m->logloss_sum -= log(p);
                m->pos[b]++;
        } else {
                m->logloss_sum -= log1p(-p);
                m->neg[b]++;
        }
}

double model_metrics_logloss(const model_metrics_t *m) {
        return m->examples ? m->logloss_sum / (double)m->examples : NAN;
}

double model_metrics_auc(const model_metrics_t *m) {
        uint64_t n_neg = m->examples - m->positives;
        double neg_below = 0, area = 0;
        if (!m->positives || !n_neg)
                return NAN;
        for (uint32_t b = 0; b < MODEL_METRICS_BINS; b++) {
                area += (double)m->pos[b] * (neg_below + 0.5 * m->neg[b]);
                neg_below += (double)m->neg[b];
        }
        return area / ((double)m->positives * (double)n_neg);
}

double model_metrics_base_rate(const model_metrics_t *m) {
        return m->examples ? (double)m->positives / (double)m->examples : NAN;
}

double model_metrics_mean_p(const model_metrics_t *m) {
        return m->examples ? m->p_sum / (double)m->examples : NAN;
}

double model_metrics_base_rate_logloss(const model_metrics_t *m) {
        double rate, r;
        if (!m->examples)
                return NAN;
        /* Clipped like any prediction: the constant predictor is scored
         * exactly as model_metrics_add() would score it. */
        rate = model_metrics_base_rate(m);
        r = clip_p(rate);
        return -(rate * log(r) + (1.0 - rate) * log1p(-r));
}

double model_metrics_calibration(const model_metrics_t *m) {
        if (!m->positives)
                return NAN;
        return model_metrics_mean_p(m) / model_metrics_base_rate(m);
}

static void put_num(tern_buf_t *out, const char *key, double v, int last) {
        if (isfinite(v))
                tern_buf_printf(out, "\"%s\":%.17g%s", key, v, last ? "" : ",");
        else
                tern_buf_printf(out, "\"%s\":null%s", key, last ? "" : ",");
}

void model_metrics_json(const model_metrics_t *m, tern_buf_t *out) {
        tern_buf_printf(out, "{\"examples\":%llu,\"positives\":%llu,",
                        (unsigned long long)m->examples,
                        (unsigned long long)m->positives);
        put_num(out, "logloss", model_metrics_logloss(m), 0);
        put_num(out, "auc", model_metrics_auc(m), 0);
        put_num(out, "base_rate_logloss", model_metrics_base_rate_logloss(m),
                0);
        put_num(out, "calibration", model_metrics_calibration(m), 0);
        put_num(out, "mean_p", model_metrics_mean_p(m), 0);
        put_num(out, "base_rate", model_metrics_base_rate(m), 1);
        tern_buf_put_u8(out, '}');
}

void model_metrics_encode(const model_metrics_t *m, tern_buf_t *out) {
        uint32_t count = 0;
        int64_t prev = -1;
        for (uint32_t b = 0; b < MODEL_METRICS_BINS; b++)
                count += (m->pos[b] || m->neg[b]);
        tern_buf_put_u8(out, METRICS_REC_VERSION);
        tern_buf_put_varint(out, MODEL_METRICS_BINS);
        tern_buf_put_varint(out, m->examples);
        tern_buf_put_varint(out, m->positives);
        tern_buf_put_double(out, m->logloss_sum);
        tern_buf_put_double(out, m->p_sum);
        tern_buf_put_varint(out, count);
        for (uint32_t b = 0; b < MODEL_METRICS_BINS; b++) {
                if (!m->pos[b] && !m->neg[b])
                        continue;
                tern_buf_put_varint(out, (uint64_t)((int64_t)b - prev - 1));
                tern_buf_put_varint(out, m->pos[b]);
                tern_buf_put_varint(out, m->neg[b]);
                prev = b;
        }
}

static tern_code_t parse(model_metrics_t *t, const void *v, size_t len,
                         char *errstr, size_t errstr_size) {
        tern_rd_t r;
        uint64_t bins, count, pos_sum = 0, all_sum = 0;
        int64_t prev = -1;
        tern_rd_init(&r, v, len);
        if (tern_rd_u8(&r) != METRICS_REC_VERSION)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "metrics: unknown record version");
        bins = tern_rd_varint(&r);
        t->examples = tern_rd_varint(&r);
        t->positives = tern_rd_varint(&r);
        t->logloss_sum = tern_rd_double(&r);
        t->p_sum = tern_rd_double(&r);
        count = tern_rd_varint(&r);
        if (!r.err && (bins != MODEL_METRICS_BINS || count > bins))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "metrics: record has %llu bins, %llu used "
                                 "(expected %d)",
                                 (unsigned long long)bins,
                                 (unsigned long long)count, MODEL_METRICS_BINS);
        for (uint64_t k = 0; k < count && !r.err; k++) {
                uint64_t gap = tern_rd_varint(&r), b;
                uint64_t p = tern_rd_varint(&r), n = tern_rd_varint(&r);
                b = (uint64_t)(prev + 1) + (gap < bins ? gap : bins);
                if (r.err)
                        break;
                if (b >= bins)
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "metrics: bin out of range");
                /* Keeps all_sum <= examples: no sum can wrap around. */
                if (p > t->examples || n > t->examples - p ||
                    p + n > t->examples - all_sum)
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "metrics: bin %llu counts exceed the "
                                         "examples",
                                         (unsigned long long)b);
                t->pos[b] = p;
                t->neg[b] = n;
                pos_sum += p;
                all_sum += p + n;
                prev = (int64_t)b;
        }
        if (r.err || tern_rd_left(&r))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "metrics: record %s",
                                 r.err ? "truncated" : "has trailing bytes");
        if (pos_sum != t->positives || all_sum != t->examples ||
            !isfinite(t->logloss_sum) || !isfinite(t->p_sum))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "metrics: record is inconsistent (bin counts "
                                 "do not add up to the totals)");
        return TERN_OK;
}

tern_code_t model_metrics_decode(model_metrics_t *m, const void *v, size_t len,
                                 char *errstr, size_t errstr_size) {
        model_metrics_t *t = calloc(1, sizeof(*t));
        tern_code_t code;
        if (!t)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "metrics: out of memory");
        code = parse(t, v, len, errstr, errstr_size);
        if (code == TERN_OK)
                *m = *t;
        free(t);
        return code;
}
