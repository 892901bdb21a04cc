/*
 * model_drift — is the churn model still matching reality? Two detectors,
 * both fed in event order by the runtime, both plain online statistics:
 *
 * PAGE-HINKLEY on the logloss of resolved labels (the model's error
 * stream): m_T = sum_{t<=T} (x_t - mean_T' - delta), mean_T' the running
 * mean of x_1..x_t; M_T = min m_t. A drift (the error went up) when
 * m_T - M_T > lambda, once at least min_labels values were seen since the
 * last reset. The reference window is the examples from the reset to the
 * argmin of m (the estimated change point), the current one from there to
 * now; they are reported as source offsets of the scoring points.
 * Decreasing error (a model that is still learning) never alarms.
 *
 * PSI of the score distribution: 10 equal bins over [0, 1]; the reference
 * is the first `psi_window` scores once the model has seen warmup_labels
 * labels, then each following tumbling window of psi_window scores is
 * compared with it: PSI = sum (c_i - r_i) ln(c_i / r_i) over bin shares
 * (counts + 0.5, so an empty bin stays finite). A drift when PSI >
 * psi_threshold; the reference is then taken again from the next window
 * (the new normal, after the adaptation). psi_threshold 0 turns PSI off.
 *
 * After a drift the caller adapts (model_churn_boost()) and the detector
 * that fired restarts. State is a versioned record for the store.
 * Not thread safe.
 */
#ifndef MODEL_DRIFT_H
#define MODEL_DRIFT_H

#include <stdint.h>

#include "../common/tern_buf.h"

#define MODEL_DRIFT_PSI_BINS 10

typedef struct model_drift_conf {
        double ph_delta;      /* tolerated increase per example; 0.05 */
        double ph_lambda;     /* alarm threshold; 50 */
        uint64_t min_labels;  /* PH: values since reset before it may fire;
                                 also the PSI warm-up; 1000 */
        double psi_threshold; /* 0.25; 0 = off */
        uint32_t psi_window;  /* scores per window; 5000 */
} model_drift_conf_t;

void model_drift_conf_default(model_drift_conf_t *c);

typedef struct model_drift_event {
        const char *detector; /* "page_hinkley" | "psi" */
        double statistic;
        double threshold;
        uint64_t reference_n, current_n; /* examples / scores per window */
        int64_t reference_start, reference_end; /* source offsets */
        int64_t current_start, current_end;
} model_drift_event_t;

typedef struct model_drift model_drift_t;

model_drift_t *model_drift_new(const model_drift_conf_t *conf);
void model_drift_destroy(model_drift_t *d);

/* One resolved label's logloss, scored at source offset `offset`.
 * 1 and *ev filled on a drift (the detector has restarted). */
int model_drift_on_label(model_drift_t *d, double logloss, int64_t offset,
                         model_drift_event_t *ev);
/* One score; labelled = the model's labels so far (for the warm-up). */
int model_drift_on_score(model_drift_t *d, double risk, int64_t offset,
                         uint64_t labelled, model_drift_event_t *ev);

/* Drifts detected so far (both detectors). */
uint64_t model_drift_count(const model_drift_t *d);
/* {"page_hinkley":{"n":..,"statistic":..},"psi":{...},"drifts":N} */
void model_drift_json(const model_drift_t *d, tern_buf_t *out);

void model_drift_encode(const model_drift_t *d, tern_buf_t *out);
int model_drift_decode(model_drift_t *d, const uint8_t *v, size_t vlen);

#endif
