/*
 * rt_churn — churn scoring wired into the pipeline: watermarks and timers,
 * delayed labels, learning, alerts, drift, outputs, persistence.
 * The sequence of steps is in rt_churn.h.
 */
#include "rt_churn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/model_churn.h"
#include "../models/model_drift.h"
#include "../sinks/sink_churn.h"
#include "rt_churn_state.h"

#define DAY_MS         86400000.0
#define MAX_PARTITIONS 1024
#define META_VERSION1  1
#define RECORD_MAX     (1u << 20)
#define KEY(s)         s, sizeof(s) - 1
#define KEY_MODEL      "churn\0model"
#define KEY_DRIFT      "churn\0drift"
#define KEY_META       "churn\0meta"

typedef struct counters {
        uint64_t alerts, sweeps, late, labels_dropped;
} counters_t;

struct rt_churn {
        const tern_conf_t *conf;
        feat_store_t *st;
        rt_emit_t emit;
        model_churn_t *model;
        model_drift_t *drift;
        rt_churn_state_t *state;
        int64_t inactive_ms, interval_ms, min_gap_ms, lateness_ms;
        uint32_t max_pending;
        model_churn_alert_conf_t alert_conf;
        int64_t max_ts[MAX_PARTITIONS];
        uint8_t has_ts[MAX_PARTITIONS];
        counters_t n;
        int changed; /* model, drift or meta to write at the next commit */
        const tern_event_t *cause; /* the event being processed */
        tern_code_t err;           /* first allocation failure */
        /* scoring scratch: one round of sweeps, or one event */
        rt_churn_user_t **batch;
        int64_t *batch_ts;
        float *x;
        double *p;
        size_t cap;
        tern_buf_t val, json, rec;
};

/* ---- outputs ---- */

static sink_source_t source_of(const rt_churn_t *c) {
        return (sink_source_t){c->cause->src_topic, c->cause->src_partition,
                               c->cause->src_offset};
}

static void send(rt_churn_t *c, const char *topic, const char *key,
                 size_t klen) {
        c->emit.send(c->emit.opaque, topic, key, klen, &c->val,
                     c->emit.want_json ? &c->json : NULL);
}

static void emit_score(rt_churn_t *c, const rt_churn_user_t *u, int64_t ts,
                       double risk, const char *trigger) {
        sink_churn_score_t r = {u->user_id,
                                u->user_len,
                                ts,
                                risk,
                                model_churn_version(c->model),
                                trigger,
                                source_of(c),
                                rt_emit_config_version(&c->emit)};
        tern_buf_reset(&c->val);
        tern_buf_reset(&c->json);
        sink_churn_score_avro(&r, &c->val);
        if (c->emit.want_json)
                sink_churn_score_json(&r, &c->json);
        send(c, c->conf->topic_churn_scores, u->user_id, u->user_len);
}

static void emit_alert(rt_churn_t *c, const rt_churn_user_t *u, int64_t ts,
                       double risk, double prev, const float *x) {
        int idx[MODEL_CHURN_REASONS];
        double contrib[MODEL_CHURN_REASONS];
        sink_churn_reason_t reasons[MODEL_CHURN_REASONS];
        sink_churn_alert_t r;
        model_churn_reasons(c->model, x, idx, contrib);
        for (int k = 0; k < MODEL_CHURN_REASONS; k++)
                reasons[k] = (sink_churn_reason_t){
                    model_churn_feature_names[idx[k]], x[idx[k]], contrib[k]};
        r = (sink_churn_alert_t){u->user_id,
                                 u->user_len,
                                 ts,
                                 risk,
                                 prev,
                                 c->alert_conf.threshold,
                                 MODEL_CHURN_REASONS,
                                 reasons,
                                 model_churn_version(c->model),
                                 source_of(c),
                                 rt_emit_config_version(&c->emit)};
        tern_buf_reset(&c->val);
        tern_buf_reset(&c->json);
        sink_churn_alert_avro(&r, &c->val);
        if (c->emit.want_json)
                sink_churn_alert_json(&r, &c->json);
        send(c, c->conf->topic_churn_alerts, u->user_id, u->user_len);
        c->n.alerts++;
}

/* A drift: adapt, then tell (model-alerts). */
static void on_drift(rt_churn_t *c, const model_drift_event_t *d) {
        char action[256];
        sink_model_alert_t r;
        model_churn_boost(c->model, c->conf->churn_adapt_boost,
                          (uint64_t)c->conf->churn_adapt_labels);
        snprintf(action, sizeof(action),
                 "learning_rate x%g for %lld labels; %s restarted",
                 c->conf->churn_adapt_boost,
                 (long long)c->conf->churn_adapt_labels, d->detector);
        r = (sink_model_alert_t){
            .model = "churn",
            .detector = d->detector,
            .statistic = d->statistic,
            .threshold = d->threshold,
            .reference_count = (int64_t)d->reference_n,
            .reference_start = d->reference_start,
            .reference_end = d->reference_end,
            .current_count = (int64_t)d->current_n,
            .current_start = d->current_start,
            .current_end = d->current_end,
            .action = action,
            .model_version = model_churn_version(c->model),
            .ts_ms = c->cause->ts_ms,
            .source = source_of(c),
            .config_version = rt_emit_config_version(&c->emit),
        };
        tern_buf_reset(&c->val);
        tern_buf_reset(&c->json);
        sink_model_alert_avro(&r, &c->val);
        if (c->emit.want_json)
                sink_model_alert_json(&r, &c->json);
        send(c, c->conf->topic_model_alerts, "churn", 5);
}

/* ---- labels ---- */

static void learn(rt_churn_t *c, const rt_churn_point_t *pt, int y) {
        model_drift_event_t d;
        double loss = model_churn_learn(c->model, pt->x, pt->risk, y);
        if (model_drift_on_label(c->drift, loss, pt->offset, &d))
                on_drift(c, &d);
        c->changed = 1;
}

/* Timer: points whose window (t, t + inactive] closed before the
 * watermark: churned unless activity came in it. Every label is learned
 * only then, inactive_days after its point, although a return settles a
 * label 0 earlier: learning the early zeros at once would feed the model
 * nothing but zeros for its first inactive_days and then a flood of ones
 * (label-delay bias); at a fixed delay it learns the points in the order
 * they were scored. */
static void resolve_due(rt_churn_t *c, rt_churn_user_t *u, int64_t wm) {
        uint32_t i = 0;
        while (i < u->n_pending) {
                if (u->pending[i].ts_ms + c->inactive_ms < wm) {
                        learn(c, &u->pending[i], !u->pending[i].active);
                        rt_churn_user_drop_point(u, i);
                } else {
                        i++;
                }
        }
}

/* Activity at ts: earlier points in whose window it falls get label 0
 * (learned at their timer); a point whose window closed before ts (its
 * timer held back by the lateness) resolves now. */
static void resolve_on_activity(rt_churn_t *c, rt_churn_user_t *u, int64_t ts) {
        uint32_t i = 0;
        while (i < u->n_pending) {
                rt_churn_point_t *pt = &u->pending[i];
                if (pt->ts_ms < ts && ts > pt->ts_ms + c->inactive_ms) {
                        learn(c, pt, !pt->active);
                        rt_churn_user_drop_point(u, i);
                        continue;
                }
                if (pt->ts_ms < ts)
                        pt->active = 1;
                i++; /* (a late event older than the point: no effect) */
        }
}

/* ---- scoring points ---- */

static int grow(rt_churn_t *c, size_t n) {
        size_t cap = c->cap ? c->cap : 64;
        void *a, *b, *x, *p;
        if (n <= c->cap)
                return 0;
        while (cap < n)
                cap *= 2;
        a = realloc(c->batch, cap * sizeof(*c->batch));
        if (a)
                c->batch = a;
        b = realloc(c->batch_ts, cap * sizeof(*c->batch_ts));
        if (b)
                c->batch_ts = b;
        x = realloc(c->x, cap * MODEL_CHURN_DIM * sizeof(*c->x));
        if (x)
                c->x = x;
        p = realloc(c->p, cap * sizeof(*c->p));
        if (p)
                c->p = p;
        if (!a || !b || !x || !p)
                return -1;
        c->cap = cap;
        return 0;
}

static void keep_point(rt_churn_t *c, rt_churn_user_t *u, int64_t ts,
                       const float *x, double risk) {
        rt_churn_point_t pt;
        if (u->n_pending &&
            ts - u->pending[u->n_pending - 1].ts_ms < c->interval_ms)
                return; /* too close to the previous kept point */
        if (u->n_pending >= c->max_pending) {
                c->n.labels_dropped++;
                return;
        }
        pt.ts_ms = ts;
        pt.offset = c->cause->src_offset;
        pt.risk = risk;
        pt.active = 0;
        memcpy(pt.x, x, sizeof(pt.x));
        if (rt_churn_user_add_point(u, &pt) != 0)
                c->err = TERN_ERR_NOMEM;
}

static void schedule_sweep(rt_churn_t *c, rt_churn_user_t *u, int64_t from) {
        int64_t next = from + c->interval_ms;
        u->next_sweep =
            next - u->act.last_ts < c->inactive_ms ? next : RT_CHURN_NEVER;
}

static void post_score(rt_churn_t *c, rt_churn_user_t *u, int64_t ts,
                       const float *x, double risk, const char *trigger) {
        model_drift_event_t d;
        double prev;
        emit_score(c, u, ts, risk, trigger);
        if (model_drift_on_score(c->drift, risk, c->cause->src_offset,
                                 model_churn_version(c->model), &d))
                on_drift(c, &d);
        if (model_churn_alert_step(&c->alert_conf, &u->alert, risk, ts, &prev))
                emit_alert(c, u, ts, risk, prev, x);
        keep_point(c, u, ts, x, risk);
        u->last_score_ts = ts;
        schedule_sweep(c, u, ts);
        rt_churn_state_touch(c->state, u);
        c->changed = 1;
}

/* Score c->batch[0..n) at c->batch_ts[i], one sgemv. */
static void score_batch(rt_churn_t *c, size_t n, const char *trigger) {
        for (size_t i = 0; i < n; i++)
                model_churn_features(c->model, &c->batch[i]->act,
                                     c->batch_ts[i],
                                     c->x + i * MODEL_CHURN_DIM);
        model_churn_score(c->model, c->x, (uint32_t)n, c->p);
        for (size_t i = 0; i < n; i++)
                post_score(c, c->batch[i], c->batch_ts[i],
                           c->x + i * MODEL_CHURN_DIM, c->p[i], trigger);
}

/* Every timer of the partition due before the watermark, in rounds. */
static void fire_timers(rt_churn_t *c, int32_t partition, int64_t wm) {
        for (;;) {
                rt_churn_user_t *u;
                size_t n = 0;
                while ((u = rt_churn_state_pop_due(c->state, partition, wm))) {
                        resolve_due(c, u, wm);
                        if (u->next_sweep < wm && grow(c, n + 1) == 0) {
                                c->batch[n] = u;
                                c->batch_ts[n++] = u->next_sweep;
                        } else {
                                if (u->next_sweep < wm)
                                        c->err = TERN_ERR_NOMEM;
                                rt_churn_state_touch(c->state, u);
                        }
                }
                if (!n)
                        return;
                c->n.sweeps += n;
                score_batch(c, n, "sweep");
        }
}

static int32_t partition_of(const tern_event_t *ev) {
        return ev->src_partition >= 0 && ev->src_partition < MAX_PARTITIONS
                   ? ev->src_partition
                   : 0;
}

static void advance(rt_churn_t *c, const tern_event_t *ev) {
        int32_t p = partition_of(ev);
        if (!c->has_ts[p] || ev->ts_ms > c->max_ts[p]) {
                c->max_ts[p] = ev->ts_ms;
                c->has_ts[p] = 1;
                c->changed = 1;
                fire_timers(c, p, ev->ts_ms - c->lateness_ms);
        } else if (ev->ts_ms < c->max_ts[p] - c->lateness_ms) {
                c->n.late++;
                c->changed = 1;
        }
}

/* A user's record could not be had: the state's error (a read of an
 * evicted record failed), or out of memory. */
static tern_code_t state_error(rt_churn_t *c, char *errstr,
                               size_t errstr_size) {
        c->cause = NULL;
        if (rt_churn_state_status(c->state, errstr, errstr_size) == TERN_OK)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "churn: out of memory for a user");
        return rt_churn_state_status(c->state, errstr, errstr_size);
}

tern_code_t rt_churn_on_event(rt_churn_t *c, const tern_event_t *ev,
                              const feat_user_t *user, char *errstr,
                              size_t errstr_size) {
        rt_churn_user_t *u;
        c->cause = ev;
        advance(c, ev);
        if (model_churn_is_activity(ev)) {
                u = rt_churn_state_get(c->state, partition_of(ev),
                                       ev->user_id.ptr, ev->user_id.len, 1);
                if (!u)
                        return state_error(c, errstr, errstr_size);
                resolve_on_activity(c, u, ev->ts_ms);
                model_churn_observe(c->model, &u->act, ev,
                                    user ? &user->profile : NULL);
                if ((u->last_score_ts < 0 ||
                     ev->ts_ms - u->last_score_ts >= c->min_gap_ms) &&
                    grow(c, 1) == 0) {
                        c->batch[0] = u;
                        c->batch_ts[0] = ev->ts_ms;
                        score_batch(c, 1, "event");
                } else {
                        rt_churn_state_touch(c->state, u);
                }
        }
        c->cause = NULL;
        if (c->err)
                return tern_errf(errstr, errstr_size, c->err,
                                 "churn: out of memory");
        return rt_churn_state_status(c->state, errstr, errstr_size);
}

/* ---- persistence ---- */

static void meta_encode(const rt_churn_t *c, tern_buf_t *out) {
        uint64_t parts = 0;
        tern_buf_put_u8(out, META_VERSION1);
        tern_buf_put_varint(out, c->n.alerts);
        tern_buf_put_varint(out, c->n.sweeps);
        tern_buf_put_varint(out, c->n.late);
        tern_buf_put_varint(out, c->n.labels_dropped);
        for (int p = 0; p < MAX_PARTITIONS; p++)
                parts += c->has_ts[p];
        tern_buf_put_varint(out, parts);
        for (int p = 0; p < MAX_PARTITIONS; p++)
                if (c->has_ts[p]) {
                        tern_buf_put_varint(out, (uint64_t)p);
                        tern_buf_put_long(out, c->max_ts[p]);
                }
}

static int meta_decode(rt_churn_t *c, const uint8_t *v, size_t vlen) {
        tern_rd_t r;
        uint64_t parts;
        tern_rd_init(&r, v, vlen);
        if (tern_rd_u8(&r) != META_VERSION1)
                return -1;
        c->n.alerts = tern_rd_varint(&r);
        c->n.sweeps = tern_rd_varint(&r);
        c->n.late = tern_rd_varint(&r);
        c->n.labels_dropped = tern_rd_varint(&r);
        parts = tern_rd_varint(&r);
        for (uint64_t i = 0; i < parts && !r.err; i++) {
                uint64_t p = tern_rd_varint(&r);
                int64_t ts = tern_rd_long(&r);
                if (p >= MAX_PARTITIONS)
                        return -1;
                c->max_ts[p] = ts;
                c->has_ts[p] = 1;
        }
        return r.err || tern_rd_left(&r) ? -1 : 0;
}

static void put_blob(rt_churn_t *c, feat_store_t *st, feat_batch_t *b,
                     const char *key, size_t klen) {
        feat_batch_put(b, st, FEAT_CF_MODEL, key, klen, c->rec.data,
                       c->rec.len);
}

static tern_code_t writer_write(void *opaque, feat_store_t *st, feat_batch_t *b,
                                char *errstr, size_t errstr_size) {
        rt_churn_t *c = opaque;
        rt_churn_state_write(c->state, st, b);
        if (!c->changed)
                return TERN_OK;
        tern_buf_reset(&c->rec);
        model_churn_encode(c->model, &c->rec);
        put_blob(c, st, b, KEY(KEY_MODEL));
        tern_buf_reset(&c->rec);
        model_drift_encode(c->drift, &c->rec);
        put_blob(c, st, b, KEY(KEY_DRIFT));
        tern_buf_reset(&c->rec);
        meta_encode(c, &c->rec);
        put_blob(c, st, b, KEY(KEY_META));
        if (c->rec.overflow)
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "churn: a model record exceeds %u bytes",
                                 RECORD_MAX);
        return TERN_OK;
}

static int writer_over_bound(void *opaque) {
        const rt_churn_t *c = opaque;
        return rt_churn_state_over_bound(c->state);
}

static void writer_done(void *opaque, int written) {
        rt_churn_t *c = opaque;
        if (!written)
                return; /* the pipeline stops; nothing is retried */
        rt_churn_state_done(c->state);
        c->changed = 0;
}

typedef int (*decode_fn)(void *obj, const uint8_t *v, size_t vlen);

/* Load one model-CF record into obj; absent is fine (a new model). */
static tern_code_t load_blob(feat_store_t *st, const char *key, size_t klen,
                             decode_fn decode, void *obj, tern_buf_t *tmp,
                             int *found, char *errstr, size_t errstr_size) {
        tern_code_t rc;
        tern_buf_reset(tmp);
        rc = feat_store_get(st, FEAT_CF_MODEL, key, klen, tmp, found, errstr,
                            errstr_size);
        if (rc != TERN_OK || !*found)
                return rc;
        if (decode(obj, tmp->data, tmp->len) != 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "churn: undecodable %s record", key + 6);
        return TERN_OK;
}

static int dec_model(void *o, const uint8_t *v, size_t n) {
        return model_churn_decode(o, v, n);
}
static int dec_drift(void *o, const uint8_t *v, size_t n) {
        return model_drift_decode(o, v, n);
}
static int dec_meta(void *o, const uint8_t *v, size_t n) {
        return meta_decode(o, v, n);
}

static void model_conf(const tern_conf_t *conf, model_churn_conf_t *mc,
                       model_drift_conf_t *dc) {
        model_churn_conf_default(mc);
        mc->inactive_days = conf->churn_inactive_days;
        mc->learning_rate = conf->churn_learning_rate;
        mc->l2 = conf->churn_l2;
        mc->visit_gap_ms = conf->churn_min_score_gap_seconds * 1000;
        model_drift_conf_default(dc);
        dc->ph_delta = conf->churn_ph_delta;
        dc->ph_lambda = conf->churn_ph_lambda;
        dc->min_labels = (uint64_t)conf->churn_drift_min_labels;
        dc->psi_threshold = conf->churn_psi_threshold;
        dc->psi_window = (uint32_t)conf->churn_psi_window;
}

/* Model, detectors and meta from the store, into c (new ones if absent). */
static tern_code_t load_models(rt_churn_t *c, feat_store_t *st, int *found,
                               char *errstr, size_t errstr_size) {
        int f1 = 0, f2 = 0, f3 = 0;
        tern_code_t rc = load_blob(st, KEY(KEY_MODEL), dec_model, c->model,
                                   &c->rec, &f1, errstr, errstr_size);
        if (rc == TERN_OK)
                rc = load_blob(st, KEY(KEY_DRIFT), dec_drift, c->drift, &c->rec,
                               &f2, errstr, errstr_size);
        if (rc == TERN_OK)
                rc = load_blob(st, KEY(KEY_META), dec_meta, c, &c->rec, &f3,
                               errstr, errstr_size);
        *found = f1;
        return rc;
}

static rt_churn_t *churn_alloc(const tern_conf_t *conf) {
        rt_churn_t *c = calloc(1, sizeof(*c));
        model_churn_conf_t mc;
        model_drift_conf_t dc;
        if (!c)
                return NULL;
        c->conf = conf;
        c->inactive_ms = (int64_t)(conf->churn_inactive_days * DAY_MS);
        c->interval_ms = (int64_t)(conf->churn_score_interval_days * DAY_MS);
        if (c->interval_ms < 1)
                c->interval_ms = 1;
        c->min_gap_ms = conf->churn_min_score_gap_seconds * 1000;
        c->lateness_ms = conf->churn_allowed_lateness_seconds * 1000;
        c->max_pending = (uint32_t)conf->churn_max_pending;
        c->alert_conf = (model_churn_alert_conf_t){
            conf->churn_alert_threshold, conf->churn_alert_rearm_threshold,
            (int64_t)(conf->churn_alert_cooldown_days * DAY_MS)};
        model_conf(conf, &mc, &dc);
        c->model = model_churn_new(&mc);
        c->drift = model_drift_new(&dc);
        c->state = rt_churn_state_new(c->inactive_ms);
        if (c->state)
                rt_churn_state_set_max_cached(
                    c->state, (uint64_t)conf->churn_max_cached_users);
        tern_buf_init(&c->val, RECORD_MAX);
        tern_buf_init(&c->json, RECORD_MAX);
        tern_buf_init(&c->rec, RECORD_MAX);
        if (!c->model || !c->drift || !c->state) {
                rt_churn_destroy(c);
                return NULL;
        }
        return c;
}

void rt_churn_set_live(rt_churn_t *c, const tern_conf_t *conf) {
        model_churn_set_rates(c->model, conf->churn_learning_rate,
                              conf->churn_l2);
        c->alert_conf = (model_churn_alert_conf_t){
            conf->churn_alert_threshold, conf->churn_alert_rearm_threshold,
            (int64_t)(conf->churn_alert_cooldown_days * DAY_MS)};
}

rt_churn_t *rt_churn_new(const tern_conf_t *conf, feat_store_t *st,
                         feat_engine_t *eng, const rt_emit_t *emit,
                         char *errstr, size_t errstr_size) {
        rt_churn_t *c = churn_alloc(conf);
        feat_writer_t w;
        int found;
        if (!c) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "churn: out of memory");
                return NULL;
        }
        c->st = st;
        c->emit = *emit;
        if (load_models(c, st, &found, errstr, errstr_size) != TERN_OK ||
            rt_churn_state_load(c->state, st, errstr, errstr_size) != TERN_OK)
                goto fail;
        w = (feat_writer_t){writer_write, writer_done, c, writer_over_bound};
        if (feat_engine_add_writer(eng, &w) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "churn: no room for another commit writer");
                goto fail;
        }
        return c;
fail:
        rt_churn_destroy(c);
        return NULL;
}

void rt_churn_destroy(rt_churn_t *c) {
        if (!c)
                return;
        model_churn_destroy(c->model);
        model_drift_destroy(c->drift);
        rt_churn_state_destroy(c->state);
        free(c->batch);
        free(c->batch_ts);
        free(c->x);
        free(c->p);
        tern_buf_free(&c->val);
        tern_buf_free(&c->json);
        tern_buf_free(&c->rec);
        free(c);
}

/* ---- reporting ---- */

static void json_block(const rt_churn_t *c, tern_buf_t *out) {
        model_churn_metrics_t m;
        model_churn_metrics(c->model, &m);
        tern_buf_printf(
            out,
            "\"scored\":%llu,\"labelled\":%llu,\"positives\":%llu,"
            "\"auc\":%.17g,\"logloss\":%.17g,\"alerts\":%llu,\"drifts\":%llu,"
            "\"model_version\":%lld,\"sweeps\":%llu,\"late_events\":%llu,"
            "\"labels_dropped\":%llu,\"users\":%llu,\"pending_labels\":%llu",
            (unsigned long long)m.scored, (unsigned long long)m.labelled,
            (unsigned long long)m.positives, m.auc, m.logloss,
            (unsigned long long)c->n.alerts,
            (unsigned long long)model_drift_count(c->drift),
            (long long)model_churn_version(c->model),
            (unsigned long long)c->n.sweeps, (unsigned long long)c->n.late,
            (unsigned long long)c->n.labels_dropped,
            (unsigned long long)rt_churn_state_users(c->state),
            (unsigned long long)rt_churn_state_pending(c->state));
}

void rt_churn_figures(const rt_churn_t *c, rt_churn_figures_t *out) {
        model_churn_metrics(c->model, &out->model);
        out->alerts = c->n.alerts;
        out->drifts = model_drift_count(c->drift);
        out->users = rt_churn_state_cached(c->state);
        out->pending = rt_churn_state_cached_points(c->state);
        out->timers = rt_churn_state_nodes(c->state);
}

void rt_churn_json(const rt_churn_t *c, tern_buf_t *out) {
        tern_buf_put_u8(out, '{');
        json_block(c, out);
        tern_buf_put_u8(out, '}');
}

tern_code_t rt_churn_inspect_json(const tern_conf_t *conf, feat_store_t *st,
                                  tern_buf_t *out, char *errstr,
                                  size_t errstr_size) {
        rt_churn_t *c = churn_alloc(conf);
        tern_code_t rc;
        int found = 0;
        if (!c)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        rc = load_models(c, st, &found, errstr, errstr_size);
        if (rc == TERN_OK && !found)
                rc = tern_errf(errstr, errstr_size, TERN_ERR_NOT_FOUND,
                               "no churn model in this state");
        if (rc == TERN_OK)
                rc = rt_churn_state_load(c->state, st, errstr, errstr_size);
        if (rc == TERN_OK) {
                tern_buf_printf(out, "{\"model\":\"churn\",");
                json_block(c, out);
                tern_buf_printf(out, ",\"weights\":");
                model_churn_weights_json(c->model, out);
                tern_buf_printf(out, ",\"detectors\":");
                model_drift_json(c->drift, out);
                tern_buf_put_u8(out, '}');
        }
        rt_churn_destroy(c);
        return rc;
}
