/*
 * rt_churn — drift-aware churn scoring in the pipeline, all in event time.
 *
 * For each applied event (rt_churn_on_event(), called by the pipeline
 * right after feat_engine_apply):
 *  1. WATERMARK. The event's partition's watermark becomes max(event time
 *     seen) - churn.allowed_lateness_seconds. Every timer of that
 *     partition due strictly before the watermark fires, earliest (due,
 *     user id) first, in rounds: first the due labels (a pending point at
 *     t with t + inactive < watermark: no activity came, label 1, the
 *     model learns), then all due sweeps of the round scored together
 *     (one sgemv), until no timer is due. So timers fire as events
 *     advance the watermark, never at commits: batch boundaries do not
 *     change results.
 *  2. ACTIVITY (any event but IMPRESSION). Each pending point of the user
 *     at t < ts <= t + inactive is settled as label 0, but learned only
 *     when its timer fires, inactive_days after the point like every
 *     label (no label-delay bias: see resolve_due()); a point whose
 *     window closed before ts (timer held back by the lateness) resolves
 *     now. Then the user's activity summary
 *     absorbs the event (with the profile the feature engine computed),
 *     and the event is a scoring point when min_score_gap has passed
 *     since the user's previous one. The next sweep is due
 *     score_interval after the last scoring; sweeps stop once the
 *     silence reaches inactive_days (the user is churned then).
 *  3. SCORING POINT (event or sweep): publish churn-scores; feed the PSI
 *     detector; step the user's alert hysteresis (churn-alerts with the
 *     top 3 reasons); keep the point for its label when the previous kept
 *     point is at least score_interval older (at most max_pending).
 *  4. LEARNING: each label updates the model (progressive metrics first)
 *     and feeds Page-Hinkley with the point's logloss. A drift from either
 *     detector publishes a model-alerts record and adapts: the learning
 *     rate is multiplied by adapt_learning_rate_boost for adapt_labels
 *     labels, and the detector restarts.
 *
 * State: per-user records and timers (rt_churn_state.h) in the churn CF;
 * the model, the drift detectors and a meta record (watermarks, counters)
 * in the model CF under "churn\0model", "churn\0drift", "churn\0meta".
 * All of it is written by a feat_engine writer in the SAME WriteBatch as
 * the feature state and the offsets, so a SIGKILLed replay resumes with
 * state, model and offsets that agree, and goes on to the same alerts and
 * the same model as an uninterrupted one.
 *
 * Ownership: rt_churn_new() borrows the config, store, engine and emitter
 * for its lifetime. Not thread safe (the pipeline's thread).
 */
#ifndef RT_CHURN_H
#define RT_CHURN_H

#include "../common/tern_buf.h"
#include "../conf/conf.h"
#include "../features/feat_engine.h"
#include "../ingest/ingest_event.h"
#include "../models/model_churn.h"
#include "rt_emit.h"

typedef struct rt_churn rt_churn_t;

/* Loads state from the store and registers the commit writer. */
rt_churn_t *rt_churn_new(const tern_conf_t *conf, feat_store_t *st,
                         feat_engine_t *eng, const rt_emit_t *emit,
                         char *errstr, size_t errstr_size);
void rt_churn_destroy(rt_churn_t *c);

/* One applied event; user: its state after the event (may be NULL). */
tern_code_t rt_churn_on_event(rt_churn_t *c, const tern_event_t *ev,
                              const feat_user_t *user, char *errstr,
                              size_t errstr_size);

/* Live control: conf's churn.learning_rate, l2 and alert thresholds
 * (cool-down included) apply from the next scoring point / label. */
void rt_churn_set_live(rt_churn_t *c, const tern_conf_t *conf);

/* The "churn" block: {"scored","labelled","positives","auc","logloss",
 * "alerts","drifts","model_version",...}, appended to out. */
void rt_churn_json(const rt_churn_t *c, tern_buf_t *out);

/* The figures /metrics reports (the same as rt_churn_json's). */
typedef struct rt_churn_figures {
        model_churn_metrics_t model; /* labelled = examples learned */
        uint64_t alerts;             /* churn-alerts published */
        uint64_t drifts;             /* drift detections (model-alerts) */
        /* memory (rt_churn_state.h): records cached, the points waiting
         * for a label in them, timer nodes (users with a timer) */
        uint64_t users, pending, timers;
} rt_churn_figures_t;
void rt_churn_figures(const rt_churn_t *c, rt_churn_figures_t *out);

/* The same block plus the weights and the detectors, read from a store
 * (`tern inspect model churn`). TERN_ERR_NOT_FOUND without a churn model. */
tern_code_t rt_churn_inspect_json(const tern_conf_t *conf, feat_store_t *st,
                                  tern_buf_t *out, char *errstr,
                                  size_t errstr_size);

#endif
