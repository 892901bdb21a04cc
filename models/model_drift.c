/*
 * model_drift — Page-Hinkley on the error stream, PSI on the scores.
 * Definitions in model_drift.h.
 */
#include "model_drift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DRIFT_VERSION1 1

typedef struct ph {
        uint64_t n;
        double mean, m, m_min;
        int64_t first_off, min_off, last_off;
        uint64_t n_at_min;
} ph_t;

typedef struct psi {
        uint64_t ref[MODEL_DRIFT_PSI_BINS], cur[MODEL_DRIFT_PSI_BINS];
        uint32_t ref_n, cur_n;
        int64_t ref_start, ref_end, cur_start, cur_end;
        double last;
} psi_t;

struct model_drift {
        model_drift_conf_t conf;
        ph_t ph;
        psi_t psi;
        uint64_t drifts;
};

void model_drift_conf_default(model_drift_conf_t *c) {
        c->ph_delta = 0.05;
        c->ph_lambda = 50;
        c->min_labels = 1000;
        c->psi_threshold = 0.25;
        c->psi_window = 5000;
}

model_drift_t *model_drift_new(const model_drift_conf_t *conf) {
        model_drift_t *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->conf = *conf;
        return d;
}

void model_drift_destroy(model_drift_t *d) {
        free(d);
}

/* ---- Page-Hinkley ---- */

static void ph_reset(ph_t *ph) {
        memset(ph, 0, sizeof(*ph));
}

int model_drift_on_label(model_drift_t *d, double x, int64_t offset,
                         model_drift_event_t *ev) {
        ph_t *ph = &d->ph;
        if (ph->n == 0)
                ph->first_off = ph->min_off = offset;
        ph->n++;
        ph->mean += (x - ph->mean) / (double)ph->n;
        ph->m += x - ph->mean - d->conf.ph_delta;
        ph->last_off = offset;
        if (ph->m < ph->m_min) {
                ph->m_min = ph->m;
                ph->min_off = offset;
                ph->n_at_min = ph->n;
        }
        if (ph->n < d->conf.min_labels ||
            ph->m - ph->m_min <= d->conf.ph_lambda)
                return 0;
        *ev = (model_drift_event_t){
            .detector = "page_hinkley",
            .statistic = ph->m - ph->m_min,
            .threshold = d->conf.ph_lambda,
            .reference_n = ph->n_at_min,
            .current_n = ph->n - ph->n_at_min,
            .reference_start = ph->first_off,
            .reference_end = ph->min_off,
            .current_start = ph->min_off,
            .current_end = offset,
        };
        d->drifts++;
        ph_reset(ph);
        return 1;
}

/* ---- PSI ---- */

static int psi_bin(double p) {
        int b = (int)(p * MODEL_DRIFT_PSI_BINS);
        return b < 0                       ? 0
               : b >= MODEL_DRIFT_PSI_BINS ? MODEL_DRIFT_PSI_BINS - 1
                                           : b;
}

static double psi_value(const psi_t *s) {
        double v = 0;
        double rn = s->ref_n + 0.5 * MODEL_DRIFT_PSI_BINS;
        double cn = s->cur_n + 0.5 * MODEL_DRIFT_PSI_BINS;
        for (int b = 0; b < MODEL_DRIFT_PSI_BINS; b++) {
                double r = ((double)s->ref[b] + 0.5) / rn;
                double c = ((double)s->cur[b] + 0.5) / cn;
                v += (c - r) * log(c / r);
        }
        return v;
}

int model_drift_on_score(model_drift_t *d, double risk, int64_t offset,
                         uint64_t labelled, model_drift_event_t *ev) {
        psi_t *s = &d->psi;
        uint32_t w = d->conf.psi_window;
        int b = psi_bin(risk);
        if (d->conf.psi_threshold <= 0 || labelled < d->conf.min_labels)
                return 0;
        if (s->ref_n < w) {
                if (s->ref_n++ == 0)
                        s->ref_start = offset;
                s->ref[b]++;
                s->ref_end = offset;
                return 0;
        }
        if (s->cur_n++ == 0)
                s->cur_start = offset;
        s->cur[b]++;
        s->cur_end = offset;
        if (s->cur_n < w)
                return 0;
        s->last = psi_value(s);
        if (s->last <= d->conf.psi_threshold) {
                memset(s->cur, 0, sizeof(s->cur));
                s->cur_n = 0;
                return 0;
        }
        *ev = (model_drift_event_t){
            .detector = "psi",
            .statistic = s->last,
            .threshold = d->conf.psi_threshold,
            .reference_n = s->ref_n,
            .current_n = s->cur_n,
            .reference_start = s->ref_start,
            .reference_end = s->ref_end,
            .current_start = s->cur_start,
            .current_end = s->cur_end,
        };
        d->drifts++;
        memset(s, 0, sizeof(*s)); /* a new reference from the next window */
        return 1;
}

uint64_t model_drift_count(const model_drift_t *d) {
        return d->drifts;
}

void model_drift_json(const model_drift_t *d, tern_buf_t *out) {
        tern_buf_printf(out,
                        "{\"page_hinkley\":{\"n\":%llu,\"statistic\":%.17g,"
                        "\"threshold\":%.17g},\"psi\":{\"reference_n\":%u,"
                        "\"current_n\":%u,\"last\":%.17g,\"threshold\":%.17g},"
                        "\"drifts\":%llu}",
                        (unsigned long long)d->ph.n, d->ph.m - d->ph.m_min,
                        d->conf.ph_lambda, d->psi.ref_n, d->psi.cur_n,
                        d->psi.last, d->conf.psi_threshold,
                        (unsigned long long)d->drifts);
}

/* ---- persistence ---- */

void model_drift_encode(const model_drift_t *d, tern_buf_t *out) {
        const ph_t *ph = &d->ph;
        const psi_t *s = &d->psi;
        tern_buf_put_u8(out, DRIFT_VERSION1);
        tern_buf_put_varint(out, d->drifts);
        tern_buf_put_varint(out, ph->n);
        tern_buf_put_double(out, ph->mean);
        tern_buf_put_double(out, ph->m);
        tern_buf_put_double(out, ph->m_min);
        tern_buf_put_long(out, ph->first_off);
        tern_buf_put_long(out, ph->min_off);
        tern_buf_put_long(out, ph->last_off);
        tern_buf_put_varint(out, ph->n_at_min);
        tern_buf_put_varint(out, MODEL_DRIFT_PSI_BINS);
        for (int b = 0; b < MODEL_DRIFT_PSI_BINS; b++) {
                tern_buf_put_varint(out, s->ref[b]);
                tern_buf_put_varint(out, s->cur[b]);
        }
        tern_buf_put_varint(out, s->ref_n);
        tern_buf_put_varint(out, s->cur_n);
        tern_buf_put_long(out, s->ref_start);
        tern_buf_put_long(out, s->ref_end);
        tern_buf_put_long(out, s->cur_start);
        tern_buf_put_long(out, s->cur_end);
        tern_buf_put_double(out, s->last);
}

int model_drift_decode(model_drift_t *d, const uint8_t *v, size_t vlen) {
        model_drift_t t = *d;
        tern_rd_t r;
        tern_rd_init(&r, v, vlen);
        if (tern_rd_u8(&r) != DRIFT_VERSION1)
                return -1;
        t.drifts = tern_rd_varint(&r);
        t.ph.n = tern_rd_varint(&r);
        t.ph.mean = tern_rd_double(&r);
        t.ph.m = tern_rd_double(&r);
        t.ph.m_min = tern_rd_double(&r);
        t.ph.first_off = tern_rd_long(&r);
        t.ph.min_off = tern_rd_long(&r);
        t.ph.last_off = tern_rd_long(&r);
        t.ph.n_at_min = tern_rd_varint(&r);
        if (tern_rd_varint(&r) != MODEL_DRIFT_PSI_BINS)
                return -1;
        for (int b = 0; b < MODEL_DRIFT_PSI_BINS; b++) {
                t.psi.ref[b] = tern_rd_varint(&r);
                t.psi.cur[b] = tern_rd_varint(&r);
        }
        t.psi.ref_n = (uint32_t)tern_rd_varint(&r);
        t.psi.cur_n = (uint32_t)tern_rd_varint(&r);
        t.psi.ref_start = tern_rd_long(&r);
        t.psi.ref_end = tern_rd_long(&r);
        t.psi.cur_start = tern_rd_long(&r);
        t.psi.cur_end = tern_rd_long(&r);
        t.psi.last = tern_rd_double(&r);
        if (r.err || tern_rd_left(&r) != 0)
                return -1;
        *d = t;
        return 0;
}
