/*
 * model_ctr — the features of an impression, hashed to coordinates of the
 * CTR model (model_ftrl.h) with model_hash.h.
 *
 * Features, in this order (F(field, value) = model_hash_feature, C(key,
 * value) = model_hash_context, X = model_hash_cross; numbers are decimal
 * ASCII without leading zeros):
 *   bias                F("bias", "")
 *   user                F("user", user id)
 *   item                F("item", item id)
 *   category            F("category", category id)
 *   campaign            F("campaign", campaign id)
 *   each context entry  C(key, value)   (in the input's order; at most
 *                                        TERN_EVENT_MAX_CONTEXT)
 *   hour                F("hour", 0..23)  hour of day of ts_ms, UTC
 *   dow                 F("dow", 0..6)    day of week of ts_ms, UTC,
 *                                         0 = Monday (Python's weekday())
 *   count_<type>        F("count_view", b) ... F("count_impression", b):
 *                       b = floor(log2(1 + profile->events[type])), for
 *                       every event type (lower-case names)
 *   sessions            F("sessions", floor(log2(1 + profile->sessions)))
 *   each cross a*b      X(a, value of a, b, value of b), in config order
 * An absent field (NULL string pointer, or no profile; a context entry with
 * a NULL key or value) produces no feature; a cross with an absent side is
 * skipped. A present empty string is the value "". Nothing else is read:
 * the same input gives the same indices.
 *
 * Crosses: conf->crosses is a comma-separated list of "a*b" (spaces around
 * names ignored), e.g. "user*category,placement*item". A name is one of
 * user, item, category, campaign, hour, dow, sessions, count_<type>, or
 * else a context key (letters, digits, '_', '-', '.'; the reserved names
 * win: a context key called "user" cannot be crossed). The value of a
 * context side is the entry's value (the first entry with that key).
 * Refused with a message naming the cross: an empty or invalid name, a
 * name crossed with itself, "bias", a duplicate (b*a after a*b too), more
 * than MODEL_CTR_MAX_CROSSES.
 *
 * Ownership: model_ctr_t copies what it needs from the conf. An input
 * borrows the event's strings and the profile; features are computed into
 * the caller's idx array, nothing is kept.
 */
#ifndef MODEL_CTR_H
#define MODEL_CTR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_err.h"
#include "../features/feat_types.h"
#include "../ingest/ingest_event.h"

#define MODEL_CTR_MAX_FEATURES 160
#define MODEL_CTR_MAX_CROSSES  64
#define MODEL_CTR_MAX_NAME     64 /* bytes in a cross's field name */

typedef struct model_ctr_conf {
        uint32_t bits;       /* hash space, as model_ftrl_conf_t.bits */
        const char *crosses; /* "user*category,placement*item"; NULL = none */
} model_ctr_conf_t;

/* bits 20, crosses "user*category,placement*item" */
void model_ctr_conf_default(model_ctr_conf_t *c);

typedef struct model_ctr model_ctr_t;

/* Parses the crosses: NULL with a message naming a bad one (or bits
 * outside 1..32). */
model_ctr_t *model_ctr_new(const model_ctr_conf_t *c, char *errstr,
                           size_t errstr_size);
void model_ctr_destroy(model_ctr_t *m);
uint32_t model_ctr_n_crosses(const model_ctr_t *m);

typedef struct model_ctr_input {
        tern_str_t user, item, category, campaign; /* NULL ptr = absent */
        uint32_t n_context;
        const tern_str_t *context_key, *context_val;
        int64_t ts_ms;
        const feat_profile_t *profile; /* may be NULL */
} model_ctr_input_t;

/* The input borrows ev's strings and context arrays, and profile. */
void model_ctr_input_from_event(model_ctr_input_t *in, const tern_event_t *ev,
                                const feat_profile_t *profile);

/* Fills idx (room for MODEL_CTR_MAX_FEATURES) and returns the count. */
uint32_t model_ctr_features(const model_ctr_t *m, const model_ctr_input_t *in,
                            uint32_t *idx);

/* Only the features that depend on the item: the item itself and the
 * crosses with an item side (none when in->item is absent). The features
 * of the input with the item set are those of the input with the item
 * absent plus these: ranking many candidate items for one context sums the
 * rest once. */
uint32_t model_ctr_item_features(const model_ctr_t *m,
                                 const model_ctr_input_t *in, uint32_t *idx);

/* Ranking many candidate items for one input (the recommendation blend):
 * model_ctr_items_prepare() resolves once what the item features read
 * besides the item (the other side of each item cross: a context lookup,
 * a derived value); model_ctr_items_features() then gives exactly
 * model_ctr_item_features() of that input with the item set, same indices
 * in the same order, for a fraction of the cost.
 *
 * The item's own index F("item", id) is a pure function of the id, so a
 * direct-mapped memo of MODEL_CTR_ITEM_MEMO ids (up to
 * MODEL_CTR_ITEM_MEMO_ID bytes) keeps it across rankings: popular items
 * are candidates of most rankings. A memo entry only ever holds the index
 * its bytes hash to, so a hit is always right; only the model_ctr_t it was
 * filled with may use it (its bits).
 *
 * Ownership: the caller allocates the model_ctr_items_t (about 200 KiB,
 * model_ctr_items_new) and keeps it across rankings; a prepared context
 * borrows the input's strings until the next prepare. */
#define MODEL_CTR_ITEM_MEMO    4096 /* power of two */
#define MODEL_CTR_ITEM_MEMO_ID 24   /* longer ids are hashed every time */

typedef struct model_ctr_items model_ctr_items_t;

model_ctr_items_t *model_ctr_items_new(void);
void model_ctr_items_destroy(model_ctr_items_t *c);
void model_ctr_items_prepare(const model_ctr_t *m, model_ctr_items_t *c,
                             const model_ctr_input_t *in);
/* Fills idx (room for 1 + MODEL_CTR_MAX_CROSSES) and returns the count. */
uint32_t model_ctr_items_features(const model_ctr_t *m, model_ctr_items_t *c,
                                  const char *item, uint32_t len,
                                  uint32_t *idx);

#endif
