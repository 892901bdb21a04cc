/*
 * model_boost — the live promotion rules the ranking applies: boosts of
 * items and categories (a factor until an event time) and blocked items.
 *
 * A candidate item j of category c, ranked for an event at time t, has its
 * score multiplied by factor(j) when t < until(j), and by factor(c) when
 * t < until(c) (both when both apply). A boost whose until has passed stays
 * in the table (shown by `tern inspect control`) but multiplies by 1; a
 * later boost of the same item or category replaces it. Blocked items are
 * never recommended.
 *
 * Plain data: no store, no Kafka. The runtime fills it from control records
 * and persists it with model_boost_encode(). Lookups are binary searches
 * over sorted arrays: the tables are operator-sized (thousands at most).
 *
 * Ownership: the table copies every string it is given. Pointers returned
 * by model_boost_get() borrow table memory until the next change.
 */
#ifndef MODEL_BOOST_H
#define MODEL_BOOST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"

#define MODEL_BOOST_FOREVER INT64_MAX /* until_ts_ms of an unbounded boost */
#define MODEL_BOOST_MAX_ENTRIES                                                \
        100000                  /* per table: items, categories, blocked */
#define MODEL_BOOST_MAX_ID 1024 /* bytes of an item or category id */

typedef enum model_boost_kind {
        MODEL_BOOST_ITEM = 0,
        MODEL_BOOST_CATEGORY,
        MODEL_BOOST_BLOCKED, /* factor and until unused */
        MODEL_BOOST__KINDS
} model_boost_kind_t;

typedef struct model_boost_entry {
        const char *id; /* NUL-terminated copy */
        uint32_t len;
        double factor;
        int64_t until_ts_ms;
} model_boost_entry_t;

typedef struct model_boost model_boost_t;

model_boost_t *model_boost_new(void);
void model_boost_destroy(model_boost_t *b);
/* Empties every table. */
void model_boost_clear(model_boost_t *b);

/* Insert or replace. -1 when the table is full (MODEL_BOOST_MAX_ENTRIES),
 * the id is empty or longer than MODEL_BOOST_MAX_ID, or no memory. */
int model_boost_set(model_boost_t *b, model_boost_kind_t kind, const char *id,
                    uint32_t len, double factor, int64_t until_ts_ms);
/* 1 when the entry was there (and is removed), 0 otherwise. */
int model_boost_remove(model_boost_t *b, model_boost_kind_t kind,
                       const char *id, uint32_t len);

uint32_t model_boost_count(const model_boost_t *b, model_boost_kind_t kind);
/* The i-th entry in id order (bytes, shorter first). */
const model_boost_entry_t *model_boost_at(const model_boost_t *b,
                                          model_boost_kind_t kind, uint32_t i);
const model_boost_entry_t *model_boost_get(const model_boost_t *b,
                                           model_boost_kind_t kind,
                                           const char *id, uint32_t len);

/* The multiplier of an item (category may be NULL: unknown) at event time
 * now_ms; 1 when no boost applies. */
double model_boost_factor(const model_boost_t *b, const char *item,
                          uint32_t len, const char *category, uint32_t clen,
                          int64_t now_ms);
int model_boost_blocked(const model_boost_t *b, const char *item, uint32_t len);

/* At least the bytes model_boost_encode() writes (each entry counted at
 * its id plus MODEL_BOOST_ENTRY_OVERHEAD): what a caller that stores the
 * record checks a new entry against before adding it. */
#define MODEL_BOOST_ENTRY_OVERHEAD 28 /* varint length, double, long */
size_t model_boost_encoded_max(const model_boost_t *b);

/* [u8 version=1] then per kind: [varint n] n x {Avro string id, double
 * factor, Avro long until}. Decoding replaces b's content; TERN_ERR_DECODE
 * and b unchanged on a malformed record. */
void model_boost_encode(const model_boost_t *b, tern_buf_t *out);
tern_code_t model_boost_decode(model_boost_t *b, tern_rd_t *r, char *errstr,
                               size_t errstr_size);

#endif
