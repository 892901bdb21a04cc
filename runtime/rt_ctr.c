#include "rt_ctr.h"

#include <stdlib.h>
#include <string.h>

#include "../features/feat_join.h"
#include "../models/model_ctr.h"
#include "../models/model_ftrl.h"
#include "../models/model_metrics.h"
#include "../sinks/sink_records.h"
#include "rt_cmd.h"
#include "rt_log.h"

#define CTR_KEY_HEADER  "ctr\0header"
#define CTR_KEY_METRICS "ctr\0metrics"
#define CTR_KEY_PAGE    "ctr\0page" /* + u32be page */
#define CTR_KEY_LEN(k)  (sizeof(k) - 1)
#define CTR_RECORD_MAX  (1u << 20)

struct rt_ctr {
        const tern_conf_t *conf;
        feat_store_t *st;
        model_ftrl_t *ftrl;
        model_ctr_t *feat;
        model_metrics_t *metrics;
        feat_join_t *join;
        rt_emit_t emit;
        FILE *trace;
        int metrics_dirty;
        /* cost of the model work (wall time, this process only) */
        uint64_t ns_score, n_score, ns_learn, n_learn;
        uint32_t idx[MODEL_CTR_MAX_FEATURES];
        /* the event the blend scorer answers for, its item left out */
        model_ctr_input_t score_in;
        double score_base;    /* margin of the event's features but the item */
        int score_base_ready; /* computed on the first candidate only */
        model_ctr_items_t *items; /* the item features of score_in */
        /* p_click_many: each candidate's item features */
        uint32_t cand_idx[MODEL_RECS_MAX_N][1 + MODEL_CTR_MAX_CROSSES];
        tern_buf_t value, json, rec, key;
};

/* ---- persistence ---- */

static tern_code_t get_record(rt_ctr_t *c, const char *key, size_t klen,
                              int *found, char *errstr, size_t errstr_size) {
        tern_buf_reset(&c->rec);
        return feat_store_get(c->st, FEAT_CF_MODEL, key, klen, &c->rec, found,
                              errstr, errstr_size);
}

static tern_code_t load_pages(rt_ctr_t *c, char *errstr, size_t errstr_size) {
        size_t plen = CTR_KEY_LEN(CTR_KEY_PAGE);
        feat_iter_t *it =
            feat_iter_new(c->st, FEAT_CF_MODEL, CTR_KEY_PAGE, plen);
        const uint8_t *k, *v;
        size_t kl, vl;
        tern_code_t rc = TERN_OK;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (rc == TERN_OK && feat_iter_next(it, &k, &kl, &v, &vl)) {
                uint32_t page;
                if (kl != plen + 4) {
                        rc = tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                       "ctr model: bad page key");
                        break;
                }
                page = (uint32_t)k[plen] << 24 | (uint32_t)k[plen + 1] << 16 |
                       (uint32_t)k[plen + 2] << 8 | k[plen + 3];
                rc = model_ftrl_page_decode(c->ftrl, page, v, vl, errstr,
                                            errstr_size);
        }
        if (rc == TERN_OK)
                rc = feat_iter_status(it, "reading the ctr model", errstr,
                                      errstr_size);
        feat_iter_destroy(it);
        return rc;
}

static tern_code_t load_model(rt_ctr_t *c, char *errstr, size_t errstr_size) {
        int found = 0;
        tern_code_t rc =
            get_record(c, CTR_KEY_HEADER, CTR_KEY_LEN(CTR_KEY_HEADER), &found,
                       errstr, errstr_size);
        if (rc != TERN_OK || !found)
                return rc; /* a new model */
        rc = model_ftrl_header_decode(c->ftrl, c->rec.data, c->rec.len, errstr,
                                      errstr_size);
        if (rc == TERN_OK)
                rc = load_pages(c, errstr, errstr_size);
        if (rc == TERN_OK)
                rc =
                    get_record(c, CTR_KEY_METRICS, CTR_KEY_LEN(CTR_KEY_METRICS),
                               &found, errstr, errstr_size);
        if (rc == TERN_OK && found)
                rc = model_metrics_decode(c->metrics, c->rec.data, c->rec.len,
                                          errstr, errstr_size);
        return rc;
}

static tern_code_t model_write(void *opaque, feat_store_t *st, feat_batch_t *b,
                               char *errstr, size_t errstr_size) {
        rt_ctr_t *c = opaque;
        const uint32_t *pages;
        uint32_t n = model_ftrl_dirty_pages(c->ftrl, &pages);
        if (!n && !c->metrics_dirty)
                return TERN_OK;
        for (uint32_t i = 0; i < n; i++) {
                tern_buf_reset(&c->key);
                tern_buf_append(&c->key, CTR_KEY_PAGE,
                                CTR_KEY_LEN(CTR_KEY_PAGE));
                tern_buf_put_u32be(&c->key, pages[i]);
                tern_buf_reset(&c->rec);
                model_ftrl_page_encode(c->ftrl, pages[i], &c->rec);
                if (c->rec.overflow)
                        goto too_large;
                feat_batch_put(b, st, FEAT_CF_MODEL, c->key.data, c->key.len,
                               c->rec.data, c->rec.len);
        }
        tern_buf_reset(&c->rec);
        model_ftrl_header_encode(c->ftrl, &c->rec);
        feat_batch_put(b, st, FEAT_CF_MODEL, CTR_KEY_HEADER,
                       CTR_KEY_LEN(CTR_KEY_HEADER), c->rec.data, c->rec.len);
        tern_buf_reset(&c->rec);
        model_metrics_encode(c->metrics, &c->rec);
        if (c->rec.overflow)
                goto too_large;
        feat_batch_put(b, st, FEAT_CF_MODEL, CTR_KEY_METRICS,
                       CTR_KEY_LEN(CTR_KEY_METRICS), c->rec.data, c->rec.len);
        return TERN_OK;
too_large:
        return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                         "ctr model record larger than %u bytes",
                         CTR_RECORD_MAX);
}

static void model_done(void *opaque, int written) {
        rt_ctr_t *c = opaque;
        if (!written)
                return; /* the pipeline stops; dirty pages stay marked */
        model_ftrl_clear_dirty(c->ftrl);
        c->metrics_dirty = 0;
}

/* ---- scoring and learning ---- */

static void publish_score(rt_ctr_t *c, const tern_event_t *ev, double p) {
        sink_ctr_score_t s = {
            .impression_id = ev->impression_id.ptr ? ev->impression_id.ptr
                                                   : ev->event_id.ptr,
            .impression_len = ev->impression_id.ptr ? ev->impression_id.len
                                                    : ev->event_id.len,
            .user_id = ev->user_id.ptr,
            .user_len = ev->user_id.len,
            .item_id = ev->item_id.ptr,
            .item_len = ev->item_id.len,
            .campaign_id = ev->campaign_id.ptr,
            .campaign_len = ev->campaign_id.len,
            .p_click = p,
            .model_version = (int64_t)model_ftrl_updates(c->ftrl),
            .source = {ev->src_topic, ev->src_partition, ev->src_offset},
            .event_time = ev->ts_ms,
            .config_version = rt_emit_config_version(&c->emit),
        };
        tern_buf_reset(&c->value);
        tern_buf_reset(&c->json);
        sink_ctr_score_avro(&s, &c->value);
        if (c->emit.want_json)
                sink_ctr_score_json(&s, &c->json);
        c->emit.send(c->emit.opaque, c->conf->topic_ctr_scores, ev->user_id.ptr,
                     ev->user_id.len, &c->value,
                     c->emit.want_json ? &c->json : NULL);
}

static void trace_example(rt_ctr_t *c, const feat_pending_t *pe, int y) {
        fprintf(c->trace, "%lld %d %.17g", (long long)pe->src_offset, y,
                pe->p_click);
        for (uint32_t i = 0; i < pe->n_idx; i++)
                fprintf(c->trace, " %u", pe->idx[i]);
        fputc('\n', c->trace);
}

/* Progressive validation with the published prediction, then one FTRL step
 * with the model's current one. */
static void learn(rt_ctr_t *c, const feat_pending_t *pe, int y) {
        int64_t t0 = rt_mono_ns();
        double p_now = model_ftrl_predict(c->ftrl, pe->idx, pe->n_idx);
        model_ftrl_update(c->ftrl, pe->idx, pe->n_idx, p_now, y);
        c->ns_learn += (uint64_t)(rt_mono_ns() - t0);
        c->n_learn++;
        model_metrics_add(c->metrics, pe->p_click, y);
        c->metrics_dirty = 1;
        if (c->trace)
                trace_example(c, pe, y);
}

static void on_impression(rt_ctr_t *c, const tern_event_t *ev,
                          const feat_user_t *user) {
        model_ctr_input_t in;
        uint32_t n;
        double p;
        int64_t t0 = rt_mono_ns();
        model_ctr_input_from_event(&in, ev, user ? &user->profile : NULL);
        n = model_ctr_features(c->feat, &in, c->idx);
        p = model_ftrl_predict(c->ftrl, c->idx, n);
        c->ns_score += (uint64_t)(rt_mono_ns() - t0);
        c->n_score++;
        publish_score(c, ev, p);
        if (ev->impression_id.ptr)
                feat_join_impression(c->join, ev->src_partition,
                                     ev->impression_id.ptr,
                                     ev->impression_id.len, ev->ts_ms,
                                     ev->src_offset, p, c->idx, n);
}

tern_code_t rt_ctr_on_event(rt_ctr_t *c, const tern_event_t *ev,
                            const feat_user_t *user, char *errstr,
                            size_t errstr_size) {
        feat_pending_t pe;
        if (ev->type == TERN_EV_IMPRESSION)
                on_impression(c, ev, user);
        else if (ev->type == TERN_EV_CLICK && ev->impression_id.ptr)
                feat_join_click(c->join, ev->src_partition,
                                ev->impression_id.ptr, ev->impression_id.len,
                                ev->ts_ms, &pe);
        feat_join_observe(c->join, ev->src_partition, ev->ts_ms);
        /* Both labels are learned when the window closes, in the order
         * the impressions were shown: learning a click at once but its
         * unclicked neighbours a window later would feed the model its
         * positives first and bias it upwards (delayed feedback). */
        while (feat_join_expire(c->join, ev->src_partition, &pe))
                learn(c, &pe, pe.clicked);
        (void)errstr;
        (void)errstr_size;
        return TERN_OK;
}

int64_t rt_ctr_model_version(const rt_ctr_t *c) {
        return (int64_t)model_ftrl_updates(c->ftrl);
}

/* Candidates share everything but the item: the margin of the rest is
 * summed once per ranking (score_base), each candidate adds its own. The
 * base waits for the first candidate: most rankings never ask (no blend
 * weight, or no candidate). */
static void score_base(rt_ctr_t *c) {
        uint32_t n;
        if (c->score_base_ready)
                return;
        n = model_ctr_features(c->feat, &c->score_in, c->idx);
        c->score_base = model_ftrl_margin(c->ftrl, c->idx, n);
        model_ctr_items_prepare(c->feat, c->items, &c->score_in);
        c->score_base_ready = 1;
}

static double score_item(void *opaque, const char *item, uint32_t len) {
        rt_ctr_t *c = opaque;
        uint32_t n;
        score_base(c);
        n = model_ctr_items_features(c->feat, c->items, item, len, c->idx);
        return model_ftrl_sigmoid(c->score_base +
                                  model_ftrl_margin(c->ftrl, c->idx, n));
}

/* The same for a ranking's whole pool: every candidate's coordinates are
 * asked for before the first is summed, so their cache misses overlap. */
static void score_many(void *opaque, const model_rec_item_t *items,
                       uint32_t n_items, double *p) {
        rt_ctr_t *c = opaque;
        uint32_t n[MODEL_RECS_MAX_N];
        if (n_items == 0)
                return;
        if (n_items > MODEL_RECS_MAX_N) { /* model_recs never asks more */
                score_many(c, items + MODEL_RECS_MAX_N,
                           n_items - MODEL_RECS_MAX_N, p + MODEL_RECS_MAX_N);
                n_items = MODEL_RECS_MAX_N;
        }
        score_base(c);
        for (uint32_t k = 0; k < n_items; k++) {
                n[k] =
                    model_ctr_items_features(c->feat, c->items, items[k].item,
                                             items[k].len, c->cand_idx[k]);
                model_ftrl_prefetch(c->ftrl, c->cand_idx[k], n[k]);
        }
        for (uint32_t k = 0; k < n_items; k++)
                p[k] = model_ftrl_sigmoid(
                    c->score_base +
                    model_ftrl_margin(c->ftrl, c->cand_idx[k], n[k]));
}

model_item_scorer_t rt_ctr_scorer(rt_ctr_t *c, const tern_event_t *ev,
                                  const feat_user_t *user) {
        model_ctr_input_t *in = &c->score_in;
        model_ctr_input_from_event(in, ev, user ? &user->profile : NULL);
        in->item = TERN_STR_NULL;
        in->category = TERN_STR_NULL; /* a candidate's is not known here */
        c->score_base_ready = 0;
        return (model_item_scorer_t){
            c, score_item, (int64_t)model_ftrl_updates(c->ftrl), score_many};
}

/* ---- reports ---- */

static void join_json(const feat_join_stats_t *s, tern_buf_t *out) {
        tern_buf_printf(
            out,
            "{\"impressions\":%llu,\"clicks\":%llu,\"positives\":%llu,"
            "\"negatives\":%llu,\"pending\":%llu,\"orphan_clicks\":%llu,"
            "\"duplicate_clicks\":%llu,\"late_clicks\":%llu,"
            "\"late_impressions\":%llu,\"duplicate_impressions\":%llu,"
            "\"evicted\":%llu}",
            (unsigned long long)s->impressions, (unsigned long long)s->clicks,
            (unsigned long long)s->positives, (unsigned long long)s->negatives,
            (unsigned long long)s->pending,
            (unsigned long long)s->orphan_clicks,
            (unsigned long long)s->duplicate_clicks,
            (unsigned long long)s->late_clicks,
            (unsigned long long)s->late_impressions,
            (unsigned long long)s->duplicate_impressions,
            (unsigned long long)s->evicted);
}

/* The metrics object with ,"model_version":N,"join":{...} added inside. */
static void ctr_doc(const model_metrics_t *m, int64_t version,
                    const feat_join_stats_t *js, tern_buf_t *out) {
        size_t start = out->len;
        model_metrics_json(m, out);
        if (out->len > start && out->data[out->len - 1] == '}')
                out->len--;
        tern_buf_printf(
            out, ",\"model_version\":%lld,\"join\":", (long long)version);
        join_json(js, out);
        tern_buf_put_u8(out, '}');
}

const model_metrics_t *rt_ctr_metrics(const rt_ctr_t *c) {
        return c->metrics;
}

void rt_ctr_json(const rt_ctr_t *c, tern_buf_t *out) {
        feat_join_stats_t js;
        feat_join_stats(c->join, &js);
        ctr_doc(c->metrics, rt_ctr_model_version(c), &js, out);
        /* This run's cost per example: features + predict per score, one
         * predict + update per learned example. */
        if (out->len && out->data[out->len - 1] == '}')
                out->len--;
        tern_buf_printf(out, ",\"ns_per_score\":%.0f,\"ns_per_learn\":%.0f}",
                        c->n_score ? (double)c->ns_score / c->n_score : 0.0,
                        c->n_learn ? (double)c->ns_learn / c->n_learn : 0.0);
}

tern_code_t rt_ctr_inspect_json(feat_store_t *st, tern_buf_t *out, char *errstr,
                                size_t errstr_size) {
        model_metrics_t *m = calloc(1, sizeof(*m));
        feat_join_stats_t js;
        tern_buf_t rec;
        int found = 0;
        int64_t version = 0;
        tern_code_t rc;
        tern_buf_init(&rec, CTR_RECORD_MAX);
        if (!m) {
                rc = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                               "out of memory");
                goto out;
        }
        rc = feat_store_get(st, FEAT_CF_MODEL, CTR_KEY_METRICS,
                            CTR_KEY_LEN(CTR_KEY_METRICS), &rec, &found, errstr,
                            errstr_size);
        if (rc == TERN_OK && found)
                rc = model_metrics_decode(m, rec.data, rec.len, errstr,
                                          errstr_size);
        /* The version is the examples learned, which the metrics count. */
        version = (int64_t)m->examples;
        if (rc == TERN_OK)
                rc = feat_join_stats_load(st, &js, errstr, errstr_size);
        if (rc == TERN_OK)
                ctr_doc(m, version, &js, out);
out:
        tern_buf_free(&rec);
        free(m);
        return rc;
}

void rt_ctr_set_live(rt_ctr_t *c, const tern_conf_t *conf) {
        const model_ftrl_conf_t *fc = model_ftrl_conf(c->ftrl);
        if (fc->alpha == conf->ctr_alpha && fc->beta == conf->ctr_beta &&
            fc->l1 == conf->ctr_l1 && fc->l2 == conf->ctr_l2)
                return;
        /* The config table's ranges are inside FTRL's: this cannot fail. */
        model_ftrl_set_params(c->ftrl, conf->ctr_alpha, conf->ctr_beta,
                              conf->ctr_l1, conf->ctr_l2);
        /* The stored header must name the settings the weights now follow,
         * or a restart would refuse the model: write it with this batch. */
        c->metrics_dirty = 1;
}

/* ---- lifecycle ---- */

static tern_code_t build_models(rt_ctr_t *c, char *errstr, size_t errstr_size) {
        const tern_conf_t *conf = c->conf;
        model_ftrl_conf_t fc;
        model_ctr_conf_t cc = {.bits = (uint32_t)conf->ctr_hash_bits,
                               .crosses = conf->ctr_crosses};
        model_ftrl_conf_default(&fc);
        fc.alpha = conf->ctr_alpha;
        fc.beta = conf->ctr_beta;
        fc.l1 = conf->ctr_l1;
        fc.l2 = conf->ctr_l2;
        fc.bits = (uint32_t)conf->ctr_hash_bits;
        if (!(c->ftrl = model_ftrl_new(&fc, errstr, errstr_size)))
                return TERN_ERR_CONFIG;
        if (!(c->feat = model_ctr_new(&cc, errstr, errstr_size)))
                return TERN_ERR_CONFIG;
        if (!(c->metrics = calloc(1, sizeof(*c->metrics))))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        return TERN_OK;
}

rt_ctr_t *rt_ctr_new(const tern_conf_t *conf, feat_store_t *st,
                     feat_engine_t *eng, const rt_emit_t *emit, FILE *trace,
                     char *errstr, size_t errstr_size) {
        rt_ctr_t *c = calloc(1, sizeof(*c));
        feat_join_conf_t jc = {
            .window_ms = conf->ctr_window_seconds * 1000,
            .lateness_ms = conf->ctr_lateness_seconds * 1000,
            .max_pending = (uint64_t)conf->ctr_max_pending,
        };
        feat_writer_t model_writer, join_writer;
        if (!c) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        c->conf = conf;
        c->st = st;
        c->emit = *emit;
        c->trace = trace;
        tern_buf_init(&c->value, 1 << 16);
        tern_buf_init(&c->json, 1 << 16);
        tern_buf_init(&c->rec, CTR_RECORD_MAX);
        tern_buf_init(&c->key, 64);
        if (!(c->items = model_ctr_items_new())) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                goto fail;
        }
        if (build_models(c, errstr, errstr_size) != TERN_OK ||
            load_model(c, errstr, errstr_size) != TERN_OK ||
            !(c->join = feat_join_new(st, &jc, errstr, errstr_size)))
                goto fail;
        model_writer = (feat_writer_t){model_write, model_done, c};
        join_writer = feat_join_writer(c->join);
        if (feat_engine_add_writer(eng, &model_writer) ||
            feat_engine_add_writer(eng, &join_writer)) {
                tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                          "feature engine: no room for the ctr writers");
                goto fail;
        }
        return c;
fail:
        rt_ctr_destroy(c);
        return NULL;
}

void rt_ctr_destroy(rt_ctr_t *c) {
        if (!c)
                return;
        feat_join_destroy(c->join);
        free(c->metrics);
        model_ctr_items_destroy(c->items);
        model_ctr_destroy(c->feat);
        model_ftrl_destroy(c->ftrl);
        tern_buf_free(&c->value);
        tern_buf_free(&c->json);
        tern_buf_free(&c->rec);
        tern_buf_free(&c->key);
        free(c);
}
