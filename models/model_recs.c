#include "model_recs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Candidate accumulator: open addressing keyed by the item's bytes. Sized
 * for seed_items * neighbours; reused between calls, so no allocation per
 * event once warm. */
typedef struct cand {
        const char *item;
        uint32_t len;
        uint32_t hash; /* feat_id_hash: most collisions end here */
        double score;
        uint32_t seen; /* in the user's window or recent items */
} cand_t;

struct model_recs {
        model_recs_conf_t conf;
        cand_t *slots;
        uint32_t cap;   /* power of two */
        uint32_t *used; /* indexes of filled slots */
        uint32_t n_used;
};

void model_recs_conf_default(model_recs_conf_t *c) {
        memset(c, 0, sizeof(*c));
        c->top_n = 10;
        c->seed_items = 20;
        c->recency_half_life_seconds = 1800;
        c->type_boost[TERN_EV_VIEW] = 1.0;
        c->type_boost[TERN_EV_CLICK] = 1.5;
        c->type_boost[TERN_EV_CART] = 3.0;
        c->type_boost[TERN_EV_FAVORITE] = 2.0;
        c->type_boost[TERN_EV_PURCHASE] = 2.0;
        c->type_boost[TERN_EV_IMPRESSION] = 0.5;
        c->similarity_weight = 1.0;
        c->ctr_weight = 0.0;
        c->ctr_candidates = 30;
}

model_recs_t *model_recs_new(const model_recs_conf_t *conf) {
        model_recs_t *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->conf = *conf;
        if (r->conf.top_n > MODEL_RECS_MAX_N)
                r->conf.top_n = MODEL_RECS_MAX_N;
        return r;
}

void model_recs_set_blend(model_recs_t *r, double similarity_weight,
                          double ctr_weight) {
        r->conf.similarity_weight = similarity_weight;
        r->conf.ctr_weight = ctr_weight;
}

void model_recs_destroy(model_recs_t *r) {
        if (!r)
                return;
        free(r->slots);
        free(r->used);
        free(r);
}

static inline cand_t *cand_find(model_recs_t *r, const char *item, uint32_t len,
                                uint32_t hash, int insert);

/* Grow to hold `want` candidates at a load of 1/2, keeping every score
 * accumulated so far: what a ranking computes must not depend on how warm
 * the table is (a fresh process and a long-running one agree). */
static int cand_reserve(model_recs_t *r, uint32_t want) {
        cand_t *old_slots = r->slots;
        uint32_t *old_used = r->used, old_n = r->n_used;
        uint32_t cap = 64;
        while (cap < want * 2)
                cap <<= 1;
        if (cap <= r->cap)
                return 0;
        r->slots = calloc(cap, sizeof(*r->slots));
        r->used = calloc(cap, sizeof(*r->used));
        if (!r->slots || !r->used) {
                free(r->slots);
                free(r->used);
                r->slots = old_slots;
                r->used = old_used;
                return -1;
        }
        r->cap = cap;
        r->n_used = 0;
        for (uint32_t k = 0; k < old_n; k++) {
                const cand_t *c = &old_slots[old_used[k]];
                cand_t *n = cand_find(r, c->item, c->len, c->hash, 1);
                n->score = c->score;
                n->seen = c->seen;
        }
        free(old_slots);
        free(old_used);
        return 0;
}

/* Inlined: ~640 calls per ranking, where a call's register saves cost
 * as much as the probe. hash: feat_id_hash(item, len), which neighbours
 * carry. Nothing ranked depends on it: candidates are visited in
 * insertion order and the top-N is a total order. */
static inline __attribute__((always_inline)) cand_t *
cand_find(model_recs_t *r, const char *item, uint32_t len, uint32_t h,
          int insert) {
        uint32_t mask = r->cap - 1;
        for (uint32_t i = h & mask;; i = (i + 1) & mask) {
                cand_t *c = &r->slots[i];
                if (!c->item) {
                        if (!insert)
                                return NULL;
                        c->item = item;
                        c->len = len;
                        c->hash = h;
                        c->seen = 0;
                        c->score = 0;
                        r->used[r->n_used++] = i;
                        return c;
                }
                /* The feature engine hands out one string per item id, so
                 * a pointer match is the common hit; bytes decide. */
                if (c->item == item || (c->hash == h && c->len == len &&
                                        memcmp(c->item, item, len) == 0))
                        return c;
        }
}

static void cand_clear(model_recs_t *r) {
        for (uint32_t k = 0; k < r->n_used; k++)
                r->slots[r->used[k]].item = NULL;
        r->n_used = 0;
}

static int item_cmp(const char *a, uint32_t alen, const char *b,
                    uint32_t blen) {
        int c = memcmp(a, b, alen < blen ? alen : blen);
        if (c)
                return c;
        return alen < blen ? -1 : alen > blen;
}

/* Better first: score desc, then id asc. */
static int rec_better(const model_rec_item_t *a, const model_rec_item_t *b) {
        if (a->score != b->score)
                return a->score > b->score;
        return item_cmp(a->item, a->len, b->item, b->len) < 0;
}

/* Keep out->items as the best top_n seen so far: binary search for the
 * place (rec_better is a strict total order: ids are distinct), one
 * memmove for the shift. Inlined: ~30 inserts per ranking, where the call
 * cost a fifth of the insert. */
static inline __attribute__((always_inline)) void
top_offer(model_recs_result_t *out, uint32_t top_n,
          const model_rec_item_t *it) {
        uint32_t lo = 0, hi;
        if (out->n == top_n) {
                if (!rec_better(it, &out->items[top_n - 1]))
                        return;
                out->n--; /* the last one drops out */
        }
        hi = out->n;
        while (lo < hi) {
                uint32_t mid = (lo + hi) / 2;
                if (rec_better(it, &out->items[mid]))
                        hi = mid;
                else
                        lo = mid + 1;
        }
        memmove(&out->items[lo + 1], &out->items[lo],
                (out->n - lo) * sizeof(*it));
        out->items[lo] = *it;
        out->n++;
}

static int is_seen(const feat_user_t *u, const char *item, uint32_t len) {
        for (uint32_t k = 0; k < u->n_window; k++)
                if (u->window[k].len == len &&
                    memcmp(u->window[k].item, item, len) == 0)
                        return 1;
        for (uint32_t k = 0; k < u->profile.n_recent; k++)
                if (u->profile.recent[k].len == len &&
                    memcmp(u->profile.recent[k].item, item, len) == 0)
                        return 1;
        return 0;
}

static int excluded(const feat_user_t *u, const model_nb_source_t *src,
                    const char *item, uint32_t len) {
        if (is_seen(u, item, len))
                return 1;
        return src->blocked && src->blocked(src->opaque, item, len);
}

static tern_code_t score_neighbors(model_recs_t *r, const feat_user_t *u,
                                   const model_nb_source_t *src, char *errstr,
                                   size_t errstr_size) {
        uint32_t seeds =
            u->n_window < r->conf.seed_items ? u->n_window : r->conf.seed_items;
        int64_t now = u->profile.last_ts_ms;
        double half_life_ms =
            (double)r->conf.recency_half_life_seconds * 1000.0;
        for (uint32_t k = 0; k < seeds; k++) {
                const feat_item_ts_t *seed = &u->window[k];
                const feat_neighbor_t *nb;
                uint32_t n_nb;
                double weight;
                tern_code_t rc =
                    src->top_neighbors(src->opaque, seed->item, seed->len, &nb,
                                       &n_nb, errstr, errstr_size);
                if (rc != TERN_OK)
                        return rc;
                if (cand_reserve(r, r->n_used + n_nb))
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "recommendation candidates");
                weight = exp2(-(double)(now - seed->ts_ms) / half_life_ms) *
                         r->conf.type_boost[seed->type % TERN_EV__CNT];
                for (uint32_t j = 0; j < n_nb; j++)
                        cand_find(r, nb[j].item, nb[j].len, nb[j].hash, 1)
                            ->score += nb[j].score * weight;
        }
        return TERN_OK;
}

static void pick_trending(uint32_t top, const feat_user_t *u,
                          const model_nb_source_t *src,
                          model_recs_result_t *out) {
        const feat_neighbor_t *tr;
        uint32_t n_tr;
        src->trending(src->opaque, &tr, &n_tr);
        for (uint32_t k = 0; k < n_tr && (src->boost || out->n < top); k++) {
                model_rec_item_t it = {tr[k].item, tr[k].len,
                                       (double)tr[k].n / (double)tr[0].n};
                if (excluded(u, src, tr[k].item, tr[k].len))
                        continue;
                if (!src->boost) {
                        out->items[out->n++] = it; /* already in order */
                        continue;
                }
                /* Boosts reorder: every trending item competes. */
                it.score *= src->boost(src->opaque, it.item, it.len,
                                       u->profile.last_ts_ms);
                if (it.score > 0)
                        top_offer(out, top, &it);
        }
        out->strategy = "trending";
}

/* Flag the candidates the user has seen: one table lookup per seen item
 * rather than a scan of every seen item per candidate (is_seen()). */
static void mark_seen(model_recs_t *r, const feat_user_t *u) {
        cand_t *c;
        if (r->n_used == 0)
                return;
        for (uint32_t k = 0; k < u->n_window; k++) {
                const feat_item_ts_t *w = &u->window[k];
                if ((c = cand_find(r, w->item, w->len,
                                   feat_id_hash(w->item, w->len), 0)))
                        c->seen = 1;
        }
        for (uint32_t k = 0; k < u->profile.n_recent; k++) {
                const feat_item_ts_t *w = &u->profile.recent[k];
                if ((c = cand_find(r, w->item, w->len,
                                   feat_id_hash(w->item, w->len), 0)))
                        c->seen = 1;
        }
}

/* The best `top` candidates by co-occurrence score (or trending). */
static tern_code_t rank(model_recs_t *r, const feat_user_t *user,
                        const model_nb_source_t *src, uint32_t top,
                        model_recs_result_t *out, char *errstr,
                        size_t errstr_size) {
        tern_code_t rc;
        cand_clear(r);
        rc = score_neighbors(r, user, src, errstr, errstr_size);
        if (rc != TERN_OK)
                return rc;
        mark_seen(r, user);
        for (uint32_t k = 0; k < r->n_used; k++) {
                const cand_t *c = &r->slots[r->used[k]];
                model_rec_item_t it = {c->item, c->len, c->score};
                if (src->boost)
                        it.score *= src->boost(src->opaque, c->item, c->len,
                                               user->profile.last_ts_ms);
                /* The blocked test is the costly one: only candidates that
                 * would enter the top pay for it. */
                if (c->seen || it.score <= 0 ||
                    (out->n == top &&
                     !rec_better(&it, &out->items[out->n - 1])))
                        continue;
                if (!(src->blocked &&
                      src->blocked(src->opaque, c->item, c->len)))
                        top_offer(out, top, &it);
        }
        if (out->n == 0)
                pick_trending(top, user, src, out);
        return TERN_OK;
}

/* Re-score the ranked pool with p(click), keep the best top_n. The pool's
 * scores carry their boosts: the similarity part is the unboosted score
 * scaled by the best unboosted one, and the blend is boosted as a whole. */
static void blend(const model_recs_conf_t *conf,
                  const model_item_scorer_t *scorer,
                  const model_nb_source_t *src, int64_t now_ms,
                  model_recs_result_t *out) {
        model_recs_result_t pool = *out;
        double boost[MODEL_RECS_MAX_N], p[MODEL_RECS_MAX_N], best = 0;
        if (scorer->p_click_many)
                scorer->p_click_many(scorer->opaque, pool.items, pool.n, p);
        else
                for (uint32_t k = 0; k < pool.n; k++)
                        p[k] =
                            scorer->p_click(scorer->opaque, pool.items[k].item,
                                            pool.items[k].len);
        for (uint32_t k = 0; k < pool.n; k++) {
                boost[k] = src->boost
                               ? src->boost(src->opaque, pool.items[k].item,
                                            pool.items[k].len, now_ms)
                               : 1.0;
                pool.items[k].score /= boost[k];
                if (pool.items[k].score > best)
                        best = pool.items[k].score;
        }
        if (best <= 0)
                best = 1.0;
        out->n = 0;
        for (uint32_t k = 0; k < pool.n; k++) {
                model_rec_item_t it = pool.items[k];
                it.score = (conf->similarity_weight * it.score / best +
                            conf->ctr_weight * p[k]) *
                           boost[k];
                top_offer(out, conf->top_n, &it);
        }
}

tern_code_t model_recs_compute_blend(model_recs_t *r, const feat_user_t *user,
                                     const model_nb_source_t *src,
                                     const model_item_scorer_t *scorer,
                                     model_recs_result_t *out, char *errstr,
                                     size_t errstr_size) {
        int blending = scorer && scorer->p_click && r->conf.ctr_weight > 0;
        uint32_t top = r->conf.top_n;
        tern_code_t rc;
        out->n = 0;
        out->strategy = "co-occurrence";
        if (r->conf.top_n == 0)
                return TERN_OK;
        if (blending && r->conf.ctr_candidates > top)
                top = r->conf.ctr_candidates < MODEL_RECS_MAX_N
                          ? r->conf.ctr_candidates
                          : MODEL_RECS_MAX_N;
        rc = rank(r, user, src, top, out, errstr, errstr_size);
        if (rc == TERN_OK && blending && out->n > 0)
                blend(&r->conf, scorer, src, user->profile.last_ts_ms, out);
        return rc;
}

tern_code_t model_recs_compute(model_recs_t *r, const feat_user_t *user,
                               const model_nb_source_t *src,
                               model_recs_result_t *out, char *errstr,
                               size_t errstr_size) {
        return model_recs_compute_blend(r, user, src, NULL, out, errstr,
                                        errstr_size);
}
