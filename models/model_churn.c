/*
 * model_churn — dense churn features, online logistic regression, reasons,
 * progressive metrics. See model_churn.h for the definitions.
 */
#include "model_churn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS         86400000.0
#define MODEL_VERSION1 1
#define STD_EPS        0.1 /* keeps z finite for constant features */
/* The statistics freeze after this many points: a label resolves up to
 * inactive_days after its point was scored, and z must mean the same
 * thing then as it did at scoring. */
#define STAT_FREEZE 200000

const char *const model_churn_feature_names[MODEL_CHURN_DIM] = {
    "silence_days",     "prev_gap_days", "freq_short", "freq_mid",
    "freq_long",        "monetary",      "gap_ratio",  "trend",
    "cart_no_purchase", "tenure_days",   "purchases",  "visits",
    "window_elapsed",   "first_visit"};

/* The prior (see the header): weights on z-values. */
static const double prior_w[MODEL_CHURN_DIM] = {
    0.4, 0.0, -0.1, -0.3, -0.1, 0.0, 0.4, -0.1, 0.0, 0.0, -0.3, -0.6, 0.4, 0.4};
/* Starting bias: p = 0.73 at an average point. Most scoring points are
 * sweeps of users already silent for a while, and most of those stay
 * silent, so churn is the majority label. Starting at 0 (p = 0.5) scored
 * every point before the first label (the first inactive_days) too low
 * against the points after it; the bias then tracks the delayed base
 * rate. On CDNOW (tests/bench/churn_eval.py), with BIAS_LR_FACTOR: AUC
 * 0.713 -> 0.733, progressive logloss 0.61 -> 0.57. */
#define PRIOR_BIAS 1.0
/* The bias steps this many times faster than the weights: it is one
 * well-conditioned coordinate that tracks the (delayed) base rate, and a
 * fast bias shortens the early transient when PRIOR_BIAS is wrong for a
 * shop (Page-Hinkley's running mean of the logloss includes it). */
#define BIAS_LR_FACTOR 10.0

struct model_churn {
        model_churn_conf_t conf;
        double half_life_ms[3];
        double w[MODEL_CHURN_DIM];
        double bias;
        /* running statistics of the scored points (Welford) */
        uint64_t n_stat;
        double mean[MODEL_CHURN_DIM], m2[MODEL_CHURN_DIM];
        /* drift adaptation */
        double boost;
        uint64_t boost_left;
        int64_t version;
        /* metrics */
        uint64_t scored, labelled, positives;
        double logloss_sum;
        uint64_t hist[2][MODEL_CHURN_AUC_BINS]; /* [label][risk bin] */
        /* scratch for scoring */
        float *z;
        float *logit;
        uint32_t cap;
};

void model_churn_conf_default(model_churn_conf_t *c) {
        c->inactive_days = 90;
        c->learning_rate = 0.002;
        c->l2 = 1e-4;
        c->visit_gap_ms = 1800 * 1000;
        c->gap_ewma_alpha = 0.3;
}

static void model_reset(model_churn_t *m) {
        memcpy(m->w, prior_w, sizeof(m->w));
        m->bias = PRIOR_BIAS;
        m->n_stat = 0;
        memset(m->mean, 0, sizeof(m->mean));
        memset(m->m2, 0, sizeof(m->m2));
        m->boost = 1;
        m->boost_left = 0;
        m->version = 0;
        m->scored = m->labelled = m->positives = 0;
        m->logloss_sum = 0;
        memset(m->hist, 0, sizeof(m->hist));
}

model_churn_t *model_churn_new(const model_churn_conf_t *conf) {
        static int blas_threads_set;
        model_churn_t *m = calloc(1, sizeof(*m));
        double inactive_ms;
        if (!m)
                return NULL;
        if (!blas_threads_set) {
                openblas_set_num_threads(1);
                blas_threads_set = 1;
        }
        m->conf = *conf;
        inactive_ms = conf->inactive_days * DAY_MS;
        m->half_life_ms[0] = inactive_ms / 4;
        m->half_life_ms[1] = inactive_ms;
        m->half_life_ms[2] = inactive_ms * 4;
        model_reset(m);
        return m;
}

void model_churn_destroy(model_churn_t *m) {
        if (!m)
                return;
        free(m->z);
        free(m->logit);
        free(m);
}

/* ---- features ---- */

int model_churn_is_activity(const tern_event_t *ev) {
        return ev->type != TERN_EV_IMPRESSION;
}

static double decay(double v, int64_t from, int64_t to, double half_life) {
        return v * exp2(-(double)(to - from) / half_life);
}

static void observe_decay(const model_churn_t *m, model_churn_activity_t *a,
                          int64_t ts, int new_visit) {
        for (int k = 0; k < 3; k++) {
                if (ts >= a->decay_ts)
                        a->decayed[k] = decay(a->decayed[k], a->decay_ts, ts,
                                              m->half_life_ms[k]);
                if (new_visit) /* a late visit counts as already decayed */
                        a->decayed[k] +=
                            ts >= a->decay_ts
                                ? 1.0
                                : exp2(-(double)(a->decay_ts - ts) /
                                       m->half_life_ms[k]);
        }
        if (ts > a->decay_ts)
                a->decay_ts = ts;
}

void model_churn_observe(const model_churn_t *m, model_churn_activity_t *a,
                         const tern_event_t *ev,
                         const feat_profile_t *profile) {
        int64_t ts = ev->ts_ms;
        int first = a->events == 0;
        int new_visit = first || ts - a->last_ts >= m->conf.visit_gap_ms;
        if (first) {
                a->first_ts = a->last_ts = a->decay_ts = ts;
                a->prev_gap_ms = -1;
        }
        observe_decay(m, a, ts, new_visit);
        if (new_visit && !first && ts > a->last_ts) {
                double gap = (double)(ts - a->last_ts);
                a->prev_gap_ms = ts - a->last_ts;
                a->gap_ewma_ms =
                    a->gap_ewma_ms > 0
                        ? m->conf.gap_ewma_alpha * gap +
                              (1 - m->conf.gap_ewma_alpha) * a->gap_ewma_ms
                        : gap;
        }
        if (new_visit)
                a->visits++;
        a->events++;
        if (ts > a->last_ts)
                a->last_ts = ts;
        if (ts < a->first_ts)
                a->first_ts = ts;
        if (ev->type == TERN_EV_CART)
                a->carts_since_purchase++;
        if (ev->type == TERN_EV_PURCHASE) {
                a->carts_since_purchase = 0;
                if (!profile) {
                        a->purchases++;
                        a->spend +=
                            ev->has_price
                                ? ev->price *
                                      (ev->has_quantity ? ev->quantity : 1)
                                : 0;
                }
        }
        if (profile) {
                a->purchases = (uint32_t)profile->events[TERN_EV_PURCHASE];
                a->spend = profile->spend;
        }
}

static float clampf(double v, double lo, double hi) {
        return (float)(v < lo ? lo : v > hi ? hi : v);
}

void model_churn_features(const model_churn_t *m,
                          const model_churn_activity_t *a, int64_t t_ms,
                          float x[MODEL_CHURN_DIM]) {
        double inactive_ms = m->half_life_ms[1];
        double silence = t_ms > a->last_ts ? (double)(t_ms - a->last_ts) : 0;
        double usual = a->gap_ewma_ms > 0 ? a->gap_ewma_ms : inactive_ms / 2;
        double d[3], rate_short, rate_long;
        for (int k = 0; k < 3; k++)
                d[k] = t_ms >= a->decay_ts ? decay(a->decayed[k], a->decay_ts,
                                                   t_ms, m->half_life_ms[k])
                                           : a->decayed[k];
        /* decayed count / half-life: visits per unit time, recent vs long */
        rate_short = (d[0] + 0.25) / m->half_life_ms[0];
        rate_long = (d[2] + 0.25) / m->half_life_ms[2];
        x[0] = (float)log1p(silence / DAY_MS);
        x[1] = (float)log1p(a->prev_gap_ms > 0 ? a->prev_gap_ms / DAY_MS : 0);
        x[2] = (float)log1p(d[0]);
        x[3] = (float)log1p(d[1]);
        x[4] = (float)log1p(d[2]);
        x[5] = (float)log1p(a->spend > 0 ? a->spend : 0);
        x[6] = (float)log1p(silence / usual);
        x[7] = clampf(log(rate_short / rate_long), -5, 5);
        x[8] = (float)log1p(a->carts_since_purchase);
        x[9] = (float)log1p((double)(t_ms - a->first_ts) / DAY_MS);
        x[10] = (float)log1p(a->purchases);
        x[11] = (float)log1p(a->visits);
        x[12] = clampf(silence / inactive_ms, 0, 1);
        x[13] = a->visits <= 1 ? 1.0f : 0.0f;
}

/* ---- scoring and learning ---- */

static double stat_sd(const model_churn_t *m, int i) {
        double var = m->n_stat > 1 ? m->m2[i] / (double)(m->n_stat - 1) : 1;
        return sqrt(var + STD_EPS);
}

static void standardize(const model_churn_t *m, const float *x, float *z) {
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                z[i] = (float)((x[i] - m->mean[i]) / stat_sd(m, i));
}

static void stat_add(model_churn_t *m, const float *x) {
        if (m->n_stat >= STAT_FREEZE)
                return;
        m->n_stat++;
        for (int i = 0; i < MODEL_CHURN_DIM; i++) {
                double dx = x[i] - m->mean[i];
                m->mean[i] += dx / (double)m->n_stat;
                m->m2[i] += dx * (x[i] - m->mean[i]);
        }
}

static double sigmoid(double v) {
        return v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v));
}

static int grow(model_churn_t *m, uint32_t n) {
        float *z, *l;
        if (n <= m->cap)
                return 0;
        z = realloc(m->z, (size_t)n * MODEL_CHURN_DIM * sizeof(float));
        if (!z)
                return -1;
        m->z = z;
        l = realloc(m->logit, (size_t)n * sizeof(float));
        if (!l)
                return -1;
        m->logit = l;
        m->cap = n;
        return 0;
}

void model_churn_score(model_churn_t *m, const float *x, uint32_t n,
                       double *p) {
        float wf[MODEL_CHURN_DIM];
        if (!n)
                return;
        if (grow(m, n) != 0) {
                for (uint32_t r = 0; r < n; r++)
                        p[r] = 0.5; /* out of memory: no signal, no crash */
                return;
        }
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                wf[i] = (float)m->w[i];
        for (uint32_t r = 0; r < n; r++)
                standardize(m, x + (size_t)r * MODEL_CHURN_DIM,
                            m->z + (size_t)r * MODEL_CHURN_DIM);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, MODEL_CHURN_DIM, 1.0f,
                    m->z, MODEL_CHURN_DIM, wf, 1, 0.0f, m->logit, 1);
        for (uint32_t r = 0; r < n; r++)
                p[r] = sigmoid((double)m->logit[r] + m->bias);
        for (uint32_t r = 0; r < n; r++)
                stat_add(m, x + (size_t)r * MODEL_CHURN_DIM);
        m->scored += n;
}

void model_churn_reasons(const model_churn_t *m, const float x[MODEL_CHURN_DIM],
                         int idx[MODEL_CHURN_REASONS],
                         double contrib[MODEL_CHURN_REASONS]) {
        float z[MODEL_CHURN_DIM];
        int used[MODEL_CHURN_DIM] = {0};
        standardize(m, x, z);
        for (int k = 0; k < MODEL_CHURN_REASONS; k++) {
                int best = -1;
                double bv = 0;
                for (int i = 0; i < MODEL_CHURN_DIM; i++) {
                        double c = m->w[i] * z[i];
                        if (!used[i] && (best < 0 || c > bv)) {
                                best = i;
                                bv = c;
                        }
                }
                used[best] = 1;
                idx[k] = best;
                contrib[k] = bv;
        }
}

static void metrics_add(model_churn_t *m, double p, int y) {
        int bin = (int)(p * MODEL_CHURN_AUC_BINS);
        if (bin < 0)
                bin = 0;
        if (bin >= MODEL_CHURN_AUC_BINS)
                bin = MODEL_CHURN_AUC_BINS - 1;
        m->hist[y ? 1 : 0][bin]++;
        m->labelled++;
        m->positives += y ? 1 : 0;
}

double model_churn_learn(model_churn_t *m, const float x[MODEL_CHURN_DIM],
                         double p_then, int y) {
        float z[MODEL_CHURN_DIM];
        double pc = p_then < 1e-6       ? 1e-6
                    : p_then > 1 - 1e-6 ? 1 - 1e-6
                                        : p_then;
        double loss = y ? -log(pc) : -log(1 - pc);
        double logit = m->bias, g, lr;
        metrics_add(m, p_then, y);
        m->logloss_sum += loss;
        standardize(m, x, z);
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                logit += m->w[i] * z[i];
        g = (y ? 1.0 : 0.0) - sigmoid(logit);
        lr = m->conf.learning_rate * (m->boost_left ? m->boost : 1);
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                m->w[i] += lr * (g * z[i] - m->conf.l2 * m->w[i]);
        m->bias += lr * BIAS_LR_FACTOR * g;
        if (m->boost_left)
                m->boost_left--;
        m->version++;
        return loss;
}

void model_churn_set_rates(model_churn_t *m, double learning_rate, double l2) {
        m->conf.learning_rate = learning_rate;
        m->conf.l2 = l2;
}

void model_churn_boost(model_churn_t *m, double factor, uint64_t n) {
        m->boost = factor;
        m->boost_left = n;
}

int64_t model_churn_version(const model_churn_t *m) {
        return m->version;
}

static double auc_of(const model_churn_t *m) {
        double pos = 0, neg = 0, below = 0, sum = 0;
        for (int b = 0; b < MODEL_CHURN_AUC_BINS; b++) {
                pos += (double)m->hist[1][b];
                neg += (double)m->hist[0][b];
        }
        if (pos == 0 || neg == 0)
                return 0.5;
        for (int b = 0; b < MODEL_CHURN_AUC_BINS; b++) {
                sum += (double)m->hist[1][b] *
                       (below + 0.5 * (double)m->hist[0][b]);
                below += (double)m->hist[0][b];
        }
        return sum / (pos * neg);
}

void model_churn_metrics(const model_churn_t *m, model_churn_metrics_t *out) {
        out->scored = m->scored;
        out->labelled = m->labelled;
        out->positives = m->positives;
        out->logloss = m->labelled ? m->logloss_sum / (double)m->labelled : 0;
        out->auc = auc_of(m);
}

void model_churn_weights_json(const model_churn_t *m, tern_buf_t *out) {
        tern_buf_printf(out, "{\"bias\":%.17g", m->bias);
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                tern_buf_printf(out, ",\"%s\":%.17g",
                                model_churn_feature_names[i], m->w[i]);
        tern_buf_printf(out, "}");
}

/* ---- alerts ---- */

int model_churn_alert_step(const model_churn_alert_conf_t *c,
                           model_churn_alert_state_t *s, double risk,
                           int64_t ts_ms, double *prev_risk) {
        int fire = s->armed && risk >= c->threshold &&
                   (!s->alerted || ts_ms - s->last_alert_ts >= c->cooldown_ms);
        *prev_risk = s->has_risk ? s->last_risk : 0;
        if (fire) {
                s->armed = 0;
                s->alerted = 1;
                s->last_alert_ts = ts_ms;
        } else if (!s->armed && risk < c->rearm) {
                s->armed = 1;
        }
        s->last_risk = risk;
        s->has_risk = 1;
        return fire;
}

/* ---- persistence ---- */

void model_churn_encode(const model_churn_t *m, tern_buf_t *out) {
        tern_buf_put_u8(out, MODEL_VERSION1);
        tern_buf_put_varint(out, MODEL_CHURN_DIM);
        for (int i = 0; i < MODEL_CHURN_DIM; i++) {
                tern_buf_put_double(out, m->w[i]);
                tern_buf_put_double(out, m->mean[i]);
                tern_buf_put_double(out, m->m2[i]);
        }
        tern_buf_put_double(out, m->bias);
        tern_buf_put_varint(out, m->n_stat);
        tern_buf_put_double(out, m->boost);
        tern_buf_put_varint(out, m->boost_left);
        tern_buf_put_varint(out, (uint64_t)m->version);
        tern_buf_put_varint(out, m->scored);
        tern_buf_put_varint(out, m->labelled);
        tern_buf_put_varint(out, m->positives);
        tern_buf_put_double(out, m->logloss_sum);
        tern_buf_put_varint(out, MODEL_CHURN_AUC_BINS);
        for (int y = 0; y < 2; y++)
                for (int b = 0; b < MODEL_CHURN_AUC_BINS; b++)
                        tern_buf_put_varint(out, m->hist[y][b]);
}

int model_churn_decode(model_churn_t *m, const uint8_t *v, size_t vlen) {
        model_churn_t tmp = *m;
        tern_rd_t r;
        tern_rd_init(&r, v, vlen);
        if (tern_rd_u8(&r) != MODEL_VERSION1 ||
            tern_rd_varint(&r) != MODEL_CHURN_DIM)
                return -1;
        for (int i = 0; i < MODEL_CHURN_DIM; i++) {
                tmp.w[i] = tern_rd_double(&r);
                tmp.mean[i] = tern_rd_double(&r);
                tmp.m2[i] = tern_rd_double(&r);
        }
        tmp.bias = tern_rd_double(&r);
        tmp.n_stat = tern_rd_varint(&r);
        tmp.boost = tern_rd_double(&r);
        tmp.boost_left = tern_rd_varint(&r);
        tmp.version = (int64_t)tern_rd_varint(&r);
        tmp.scored = tern_rd_varint(&r);
        tmp.labelled = tern_rd_varint(&r);
        tmp.positives = tern_rd_varint(&r);
        tmp.logloss_sum = tern_rd_double(&r);
        if (tern_rd_varint(&r) != MODEL_CHURN_AUC_BINS)
                return -1;
        for (int y = 0; y < 2; y++)
                for (int b = 0; b < MODEL_CHURN_AUC_BINS; b++)
                        tmp.hist[y][b] = tern_rd_varint(&r);
        if (r.err || tern_rd_left(&r) != 0)
                return -1;
        *m = tmp;
        return 0;
}
