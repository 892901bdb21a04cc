/*
 * model_churn — p(churn) of a user from dense activity features: an online
 * logistic regression that learns from delayed labels.
 *
 * FEATURES. The runtime keeps one model_churn_activity_t per user, updated
 * by model_churn_observe() at each activity event (every event type but
 * IMPRESSION: an impression is shown to the user, it is not the user
 * acting). model_churn_features() turns it into MODEL_CHURN_DIM raw values
 * at any event time t >= the last activity (a sweep scores a silent user
 * at t > last activity). The time scales follow churn.inactive_days (I):
 * decayed activity counts with half-lives I/4, I and 4I are "frequency
 * over several windows", so one config works for a shop whose customers
 * come back daily and for one where they come back yearly. Names and
 * definitions: model_churn_feature_names[] and model_churn.c.
 *
 * MODEL. p = sigmoid(b + w . z), z_i = (x_i - mean_i) / sqrt(var_i + 0.01)
 * where mean and var are running (Welford) statistics of every scored
 * point, updated AFTER the point is scored. Learning: one SGD step per
 * resolved label, w += lr * ((y - p) z - l2 w), b += 10 lr (y - p), with the
 * stored z-values recomputed from the raw features at learning time. Scoring
 * many points at once (a sweep) is one cblas_sgemv over the n x DIM matrix of
 * z-values (floats); a single point goes through the same call, so a point's
 * risk does not depend on how it was batched... up to the kernel's summation
 * order, which depends only on n and DIM: the runtime's batches depend on
 * event time only, never on commits, so replays stay exact.
 * The model starts from a prior (churn the likelier label; longer silence
 * relative to the usual gap: riskier; more frequent: safer; model_churn.c) so
 * that it ranks sensibly before the first label resolves, inactive_days after
 * the first event. The learning rate may be raised for a number of labels
 * (drift adaptation, model_churn_boost()).
 *
 * REASONS. The contribution of feature i to a score is w_i * z_i: its push
 * on the log-odds relative to an average scored point. An alert names the
 * three largest.
 *
 * METRICS. Progressive validation: each resolved label is compared with
 * the risk the model gave at that scoring point, before it learned from
 * it: logloss, and AUC from a 1000-bin histogram of risks per label (ties
 * within a bin count one half: exact to about 1e-3).
 *
 * models/ knows no store and no Kafka: the runtime persists the encoded
 * model (model_churn_encode()) with each commit. Version 1 records.
 * Not thread safe. openblas_set_num_threads(1) is called once by
 * model_churn_new() (DESIGN 8: 2 threads make small gemv 6x slower).
 */
#ifndef MODEL_CHURN_H
#define MODEL_CHURN_H

#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"
#include "../features/feat_types.h"
#include "../ingest/ingest_event.h"

#define MODEL_CHURN_DIM      14
#define MODEL_CHURN_REASONS  3
#define MODEL_CHURN_AUC_BINS 1000

extern const char *const model_churn_feature_names[MODEL_CHURN_DIM];

/* Per-user activity summary (plain data; the runtime stores it). */
typedef struct model_churn_activity {
        int64_t first_ts, last_ts; /* first / latest activity, ms */
        int64_t prev_gap_ms; /* gap before the latest visit, -1: none yet */
        int64_t decay_ts;    /* time the decayed counts refer to */
        double decayed[3];   /* activity, half-lives I/4, I, 4I */
        double gap_ewma_ms;  /* between visits; 0: none yet */
        double spend;        /* from the profile, at the last activity */
        uint32_t visits;     /* activity more than visit_gap apart */
        uint32_t purchases;  /* from the profile */
        uint32_t carts_since_purchase;
        uint32_t events; /* activity events */
} model_churn_activity_t;

typedef struct model_churn_conf {
        double inactive_days;  /* label window and feature time scale; 90 */
        double learning_rate;  /* 0.002 */
        double l2;             /* 1e-4 */
        int64_t visit_gap_ms;  /* activity closer than this: same visit */
        double gap_ewma_alpha; /* weight of the newest visit gap; 0.3 */
} model_churn_conf_t;

void model_churn_conf_default(model_churn_conf_t *c);

typedef struct model_churn model_churn_t;

model_churn_t *model_churn_new(const model_churn_conf_t *conf);
void model_churn_destroy(model_churn_t *m);

/* Activity: is this event the user acting? (all but IMPRESSION) */
int model_churn_is_activity(const tern_event_t *ev);
/* Fold an activity event at ev->ts_ms into a (zeroed for a new user);
 * profile (may be NULL) is the user's profile after the event. */
void model_churn_observe(const model_churn_t *m, model_churn_activity_t *a,
                         const tern_event_t *ev, const feat_profile_t *profile);
/* Raw features of a at time t_ms (t_ms >= a->last_ts). */
void model_churn_features(const model_churn_t *m,
                          const model_churn_activity_t *a, int64_t t_ms,
                          float x[MODEL_CHURN_DIM]);

/* Risks of n points (x: n rows of raw features) into p[n], one sgemv;
 * then the running feature statistics absorb the n points in order. */
void model_churn_score(model_churn_t *m, const float *x, uint32_t n, double *p);
/* The top MODEL_CHURN_REASONS contributions to a score of x with the
 * current model, largest first: feature indexes and w_i * z_i. */
void model_churn_reasons(const model_churn_t *m, const float x[MODEL_CHURN_DIM],
                         int idx[MODEL_CHURN_REASONS],
                         double contrib[MODEL_CHURN_REASONS]);
/* A resolved label y (0/1) of a point scored p_then with features x:
 * metrics, then one SGD step. Returns the point's logloss (with p_then
 * clipped to [1e-6, 1 - 1e-6]), the drift detectors' input. */
double model_churn_learn(model_churn_t *m, const float x[MODEL_CHURN_DIM],
                         double p_then, int y);
/* Live control: the base learning rate and L2 of the next steps (a drift
 * boost in progress still multiplies the new rate). */
void model_churn_set_rates(model_churn_t *m, double learning_rate, double l2);
/* Multiply the learning rate by factor for the next n labels. */
void model_churn_boost(model_churn_t *m, double factor, uint64_t n);

/* ALERTS, per user: an alert when the risk reaches `threshold` while the
 * user is armed and no alert was raised within `cooldown_ms` before; the
 * alert disarms the user, who is re-armed once a risk falls below
 * `rearm` (< threshold). A user starts armed, so the first risk at or
 * above the threshold alerts; an alert held back by the cool-down comes
 * at the first risk still at or above the threshold after it. */
typedef struct model_churn_alert_conf {
        double threshold; /* 0.8 */
        double rearm;     /* 0.6 */
        int64_t cooldown_ms;
} model_churn_alert_conf_t;
typedef struct model_churn_alert_state {
        double last_risk;      /* of the previous scoring point */
        int64_t last_alert_ts; /* valid when alerted */
        uint8_t armed;         /* set for a new user */
        uint8_t alerted;       /* ever */
        uint8_t has_risk;      /* last_risk is set */
} model_churn_alert_state_t;
/* 1: alert now (*prev_risk: the risk before this one, 0 if none). */
int model_churn_alert_step(const model_churn_alert_conf_t *c,
                           model_churn_alert_state_t *s, double risk,
                           int64_t ts_ms, double *prev_risk);

/* Version: the number of learning steps taken. */
int64_t model_churn_version(const model_churn_t *m);

typedef struct model_churn_metrics {
        uint64_t scored, labelled, positives;
        double logloss; /* mean, 0 when nothing labelled */
        double auc;     /* 0.5 when either class is missing */
} model_churn_metrics_t;
void model_churn_metrics(const model_churn_t *m, model_churn_metrics_t *out);

/* The weights as JSON object text {"bias":..,"<feature>":..}, appended. */
void model_churn_weights_json(const model_churn_t *m, tern_buf_t *out);

/* Whole model state (weights, statistics, metrics, boost) as a versioned
 * record; decode replaces m's state, -1 on a malformed record. */
void model_churn_encode(const model_churn_t *m, tern_buf_t *out);
int model_churn_decode(model_churn_t *m, const uint8_t *v, size_t vlen);

#endif
