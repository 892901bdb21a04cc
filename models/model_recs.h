/*
 * model_recs — rank a user's recommendations from co-occurrence neighbours.
 *
 * Candidates are the kept top neighbours (by count) of the user's most
 * recent `seed_items` window items. A candidate j scores
 *     sum over seed items i of  s(i,j) * 2^(-(t - ts_i) / half_life) *
 * boost[type_i] where t is the user's latest event time (event time: replays
 * are deterministic). Items in the user's window or recent items (seen) and
 * blocked items are removed; ties break by item id ascending (bytes).
 * With no candidate left, the user gets global trending items not seen
 * (cold start), scored n(j) / n(top).
 *
 * Boosts (src->boost, live control): a candidate's score is multiplied by
 * its boost at the user's latest event time before the top-N is chosen
 * (co-occurrence and trending alike); with the blend, the blended score is
 * multiplied (the similarity part is scaled by the best unboosted score).
 *
 * Blend (model_recs_compute_blend with a scorer and ctr_weight > 0): the
 * best ctr_candidates by that score are re-scored as
 *     similarity_weight * score / best score + ctr_weight * p_click(j)
 * with p_click from the CTR model for the user, the context of the event
 * and candidate j; ties again by item id.
 *
 * models/ knows no store: neighbour lists arrive through model_nb_source_t,
 * which the runtime wires to the feature engine (later: to a global table
 * mirrored from a topic).
 *
 * The result borrows item id strings from the neighbour source: valid until
 * that source's next mutation (for the feature engine: the next apply).
 */
#ifndef MODEL_RECS_H
#define MODEL_RECS_H

#include <stdint.h>

#include "../common/tern_err.h"
#include "../features/feat_types.h"

#define MODEL_RECS_MAX_N 100

typedef struct model_recs_conf {
        uint32_t top_n;                    /* default 10, <= MODEL_RECS_MAX_N */
        uint32_t seed_items;               /* default 20 */
        int64_t recency_half_life_seconds; /* default 1800 */
        double type_boost[TERN_EV__CNT];   /* default VIEW 1, CLICK 1.5, CART 3,
                                              FAVORITE 2, PURCHASE 2 */
        double similarity_weight;          /* default 1 */
        double ctr_weight;                 /* default 0: no blend */
        uint32_t ctr_candidates; /* re-ranked by the blend; default 30 */
} model_recs_conf_t;

void model_recs_conf_default(model_recs_conf_t *c);

typedef struct model_nb_source {
        void *opaque;
        /* Each neighbour's hash must be feat_id_hash() of its id: the
         * candidate table is keyed by it. */
        tern_code_t (*top_neighbors)(void *opaque, const char *item,
                                     uint32_t len, const feat_neighbor_t **out,
                                     uint32_t *n_out, char *errstr,
                                     size_t errstr_size);
        void (*trending)(void *opaque, const feat_neighbor_t **out,
                         uint32_t *n_out);
        /* 1 when the item must never be recommended; may be NULL. */
        int (*blocked)(void *opaque, const char *item, uint32_t len);
        /* Live boost: the candidate's score multiplier at event time now_ms
         * (model_boost.h); may be NULL (1 for every item). */
        double (*boost)(void *opaque, const char *item, uint32_t len,
                        int64_t now_ms);
} model_nb_source_t;

/* The CTR model's view of a candidate for the user being ranked. */
typedef struct model_rec_item {
        const char *item;
        uint32_t len;
        double score;
} model_rec_item_t;

typedef struct model_item_scorer {
        void *opaque;
        double (*p_click)(void *opaque, const char *item, uint32_t len);
        int64_t version; /* model version, for the record */
        /* Optional: p_click of n items at once into p[0..n-1], each exactly
         * what p_click gives it (the scorer may then overlap their memory
         * reads); NULL = one p_click per item. */
        void (*p_click_many)(void *opaque, const model_rec_item_t *items,
                             uint32_t n, double *p);
} model_item_scorer_t;

typedef struct model_recs_result {
        uint32_t n;
        model_rec_item_t items[MODEL_RECS_MAX_N];
        const char *strategy; /* "co-occurrence" or "trending" */
} model_recs_result_t;

typedef struct model_recs model_recs_t;

model_recs_t *model_recs_new(const model_recs_conf_t *conf);
void model_recs_destroy(model_recs_t *r);
/* Live blend weights (the next ranking uses them). */
void model_recs_set_blend(model_recs_t *r, double similarity_weight,
                          double ctr_weight);
tern_code_t model_recs_compute(model_recs_t *r, const feat_user_t *user,
                               const model_nb_source_t *src,
                               model_recs_result_t *out, char *errstr,
                               size_t errstr_size);
/* The same, blended with the scorer's p(click) (scorer may be NULL). */
tern_code_t model_recs_compute_blend(model_recs_t *r, const feat_user_t *user,
                                     const model_nb_source_t *src,
                                     const model_item_scorer_t *scorer,
                                     model_recs_result_t *out, char *errstr,
                                     size_t errstr_size);

#endif
