/*
 * model_metrics — progressive validation of a binary classifier: each
 * example is scored BEFORE the model learns it, and model_metrics_add()
 * takes that score with the label.
 *
 * A zeroed model_metrics_t (memset, or = {0}) is empty; the struct is plain
 * data (~64 KiB) owned by the caller, copied and compared as such.
 *
 * p is clipped to [1e-15, 1 - 1e-15] before everything (logloss, mean p,
 * bins). AUC comes from MODEL_METRICS_BINS histogram bins of the score,
 * uniform in logit(p) over [-16, 16] (1/128 of a logit per bin; scores
 * beyond fall into the end bins): a CTR model's scores sit mostly far below
 * 0.3, where bins uniform in p would leave ~200 bins for everything under
 * 0.05; uniform in logit, every bin spans the same ~0.8% relative change of
 * the odds, so ranking resolution is as fine at p = 0.001 as at 0.5.
 * Positives and negatives in one bin count as ties (1/2).
 *
 * A statistic that is undefined (no examples; AUC without both classes;
 * calibration without a positive) is NaN from the functions and null in
 * the JSON.
 *
 * Record v1 (tern_buf primitives, doubles exact): u8 1,
 * varint MODEL_METRICS_BINS, varint examples, varint positives,
 * double logloss_sum, double p_sum, varint count, then count entries
 * {varint gap, varint pos, varint neg} for the non-empty bins ascending
 * (gap = bin minus the previous entry's bin minus 1; the first: its bin).
 */
#ifndef MODEL_METRICS_H
#define MODEL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"

#define MODEL_METRICS_BINS      4096
#define MODEL_METRICS_LOGIT_MAX 16.0 /* bins cover logit -16..16 */
#define MODEL_METRICS_P_MIN     1e-15

typedef struct model_metrics {
        uint64_t examples, positives;
        double logloss_sum, p_sum;
        uint64_t pos[MODEL_METRICS_BINS], neg[MODEL_METRICS_BINS];
} model_metrics_t;

/* One progressive-validation example: the score p before learning, label y
 * (0/1). */
void model_metrics_add(model_metrics_t *m, double p, int y);
/* The bin of a score (exposed for tests). */
uint32_t model_metrics_bin(double p);

double model_metrics_logloss(const model_metrics_t *m);
/* From the bins, ties in a bin = 1/2. */
double model_metrics_auc(const model_metrics_t *m);
/* Logloss of the constant prediction equal to the observed rate. */
double model_metrics_base_rate_logloss(const model_metrics_t *m);
/* Mean p / observed rate (1 = calibrated on average). */
double model_metrics_calibration(const model_metrics_t *m);
double model_metrics_mean_p(const model_metrics_t *m);
double model_metrics_base_rate(const model_metrics_t *m);

/* {"examples","positives","logloss","auc","base_rate_logloss",
 *  "calibration","mean_p","base_rate"}: integers, numbers as %.17g (a
 * restart comparison can be exact), null when undefined. */
void model_metrics_json(const model_metrics_t *m, tern_buf_t *out);

void model_metrics_encode(const model_metrics_t *m, tern_buf_t *out);
/* TERN_ERR_DECODE for a malformed or inconsistent record (bin counts that
 * do not add up to the totals); m is unchanged on failure. */
tern_code_t model_metrics_decode(model_metrics_t *m, const void *v, size_t len,
                                 char *errstr, size_t errstr_size);

#endif
