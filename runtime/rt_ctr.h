/*
 * rt_ctr — the online CTR loop inside the pipeline: score every IMPRESSION
 * (ctr-scores), join CLICKs in event time (features/feat_join), learn each
 * resolved example with FTRL-Proximal (models/model_ftrl) and keep the
 * progressive validation metrics (models/model_metrics) of the predictions
 * that were published.
 *
 * Per event of an input partition, in order: the impression is scored and
 * published, or the click joined (a positive is learned at once); then the
 * partition's watermark advances and every impression whose window closed
 * is resolved (an unclicked one is learned as a negative). Metrics use the
 * prediction published for the impression (before its label was known);
 * the update uses the model's current prediction, as FTRL requires.
 *
 * Persistence: the model's header, dirty weight pages and metrics, and the
 * join's pending impressions go into the commit's WriteBatch through
 * writers registered with the feature engine, so after a restart the model
 * is exactly the one that matches the stored offsets. Records in the model
 * column family: "ctr\0header", "ctr\0metrics", "ctr\0page" + u32be page.
 *
 * Ownership: the conf, store and engine are borrowed and must outlive the
 * rt_ctr_t. One pipeline thread uses it.
 */
#ifndef RT_CTR_H
#define RT_CTR_H

#include <stdio.h>

#include "../common/tern_err.h"
#include "../conf/conf.h"
#include "../features/feat_engine.h"
#include "../models/model_metrics.h"
#include "../models/model_recs.h"
#include "rt_emit.h"

typedef struct rt_ctr rt_ctr_t;

/* trace: when non-NULL, one line per resolved example in learning order:
 * "<source offset> <label> <published p> <index> <index> ..." (evaluation
 * against a reference learner on the same hashed features). */
rt_ctr_t *rt_ctr_new(const tern_conf_t *conf, feat_store_t *st,
                     feat_engine_t *eng, const rt_emit_t *emit, FILE *trace,
                     char *errstr, size_t errstr_size);
void rt_ctr_destroy(rt_ctr_t *c);

/* After the feature engine applied ev (user: its state after the event). */
tern_code_t rt_ctr_on_event(rt_ctr_t *c, const tern_event_t *ev,
                            const feat_user_t *user, char *errstr,
                            size_t errstr_size);

/* Live control: conf's ctr.alpha, beta, l1, l2 into the model (the
 * header with them goes into the next commit). */
void rt_ctr_set_live(rt_ctr_t *c, const tern_conf_t *conf);

/* Examples learned so far: the version stamped on scores. */
int64_t rt_ctr_model_version(const rt_ctr_t *c);

/* The recommendation blend's scorer for candidates of the user's current
 * event (valid until the next rt_ctr_on_event()). */
model_item_scorer_t rt_ctr_scorer(rt_ctr_t *c, const tern_event_t *ev,
                                  const feat_user_t *user);

/* {"examples","positives","logloss","auc","base_rate_logloss",
 *  "calibration",...,"model_version","join":{...}}: the live model. */
void rt_ctr_json(const rt_ctr_t *c, tern_buf_t *out);
/* The progressive validation of the published predictions (borrowed,
 * valid until rt_ctr_destroy; the pipeline's thread only): /metrics. */
const model_metrics_t *rt_ctr_metrics(const rt_ctr_t *c);
/* The same document read from a store (tern inspect model ctr). */
tern_code_t rt_ctr_inspect_json(feat_store_t *st, tern_buf_t *out, char *errstr,
                                size_t errstr_size);

#endif
