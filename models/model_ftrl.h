/*
 * model_ftrl — FTRL-Proximal logistic regression over binary hashed
 * features (McMahan et al. 2013, "Ad Click Prediction: a View from the
 * Trenches", Algorithm 1), with per-coordinate learning rates, L1 and L2.
 *
 * An example is a list of coordinate indices (model_hash.h), each a feature
 * with value 1; an index that appears twice counts twice. Indices are
 * masked to `bits`. For each coordinate the model keeps z_i and n_i
 * (zero for a coordinate never touched); its weight is, lazily,
 *     w_i = 0                                       if |z_i| <= l1
 *     w_i = -(z_i - sgn(z_i) l1) / ((beta + sqrt(n_i)) / alpha + l2)
 * p = 1 / (1 + exp(-clip(sum w_i, -35, 35))). Learning label y (0/1):
 * g = p - y and, for each occurrence of i (one after another, each with the
 * coordinate's current values),
 *     sigma = (sqrt(n_i + g^2) - sqrt(n_i)) / alpha
 *     z_i += g - sigma w_i;   n_i += g^2
 * w_i and sqrt(n_i) are cached next to z_i and n_i (32 bytes, one cache
 * line per coordinate) and recomputed from them after every change and on
 * decode, so predict is one load per feature and a model restored from its
 * (z, n) predicts bit for bit like the one that wrote them.
 *
 * Memory: 32 bytes * 2^bits (bits 20: 32 MiB), allocated zeroed at _new
 * and touched only where features land. The caller owns the model; it is
 * not thread-safe (one pipeline thread predicts and learns).
 *
 * Persistence (the store is the caller's): the coordinate space is split
 * into pages of MODEL_FTRL_PAGE coordinates; updates mark pages dirty so a
 * commit writes only what changed. Records (tern_buf primitives, doubles
 * as IEEE-754 little-endian bytes, i.e. exact):
 *   page v1:   u8 1, varint page, varint count, then count entries of
 *              {varint gap, double z, double n} for the coordinates with
 *              z or n non-zero, ascending (gap = offset in page minus the
 *              previous entry's offset minus 1; the first entry's offset)
 *   header v1: u8 1, u8 bits, varint MODEL_FTRL_PAGE, double alpha,
 *              double beta, double l1, double l2, varint updates
 * Encoders append to `out` (the caller checks out->overflow). Decoders
 * check everything and change nothing on failure.
 */
#ifndef MODEL_FTRL_H
#define MODEL_FTRL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"

/* Coordinates per page. Hashed features land all over the space, so a
 * batch dirties about one page per distinct coordinate it touched: one
 * coordinate per page writes ~35 bytes per changed weight, where 512 wrote
 * the whole page (tern bench: 7.3 -> 4.6 us/event in the RocksDB write). */
#define MODEL_FTRL_PAGE       1u
#define MODEL_FTRL_MIN_BITS   1u
#define MODEL_FTRL_MAX_BITS   28u /* 8 GiB of coordinates */
#define MODEL_FTRL_MAX_MARGIN 35.0

typedef struct model_ftrl_conf {
        double alpha, beta, l1, l2;
        uint32_t bits; /* 2^bits coordinates */
} model_ftrl_conf_t;

/* alpha 0.05, beta 1, l1 1, l2 1, bits 20 */
void model_ftrl_conf_default(model_ftrl_conf_t *c);

typedef struct model_ftrl model_ftrl_t;

/* NULL with a message for a bad conf (alpha <= 0, a negative or non-finite
 * beta/l1/l2, bits outside MIN..MAX) or no memory. */
model_ftrl_t *model_ftrl_new(const model_ftrl_conf_t *c, char *errstr,
                             size_t errstr_size);
void model_ftrl_destroy(model_ftrl_t *m);
const model_ftrl_conf_t *model_ftrl_conf(const model_ftrl_t *m);
/* Live control: new alpha, beta, l1, l2 (bits cannot change). Every
 * weight is recomputed from its (z, n) under them (one pass over the
 * table, ~10 ms at 2^20); learning goes on from the same (z, n). -1 (and
 * nothing changed) for values model_ftrl_new() would refuse. */
int model_ftrl_set_params(model_ftrl_t *m, double alpha, double beta, double l1,
                          double l2);

/* p(click) with the current weights; idx may repeat (a repeated index
 * counts twice). */
double model_ftrl_predict(const model_ftrl_t *m, const uint32_t *idx,
                          uint32_t n);
/* The unclipped sum of the weights, and the clipped logistic of a margin:
 * model_ftrl_predict() of a split example is the sigmoid of the sum of its
 * parts' margins (up to rounding). */
double model_ftrl_margin(const model_ftrl_t *m, const uint32_t *idx,
                         uint32_t n);
double model_ftrl_sigmoid(double margin);
/* Ask the CPU for the coordinates of idx ahead of a margin over them: the
 * table is far larger than the caches, so scoring many examples in a row
 * overlaps their misses instead of paying them one after another. */
void model_ftrl_prefetch(const model_ftrl_t *m, const uint32_t *idx,
                         uint32_t n);
/* One FTRL-Proximal step for label y (0/1); p must be model_ftrl_predict()
 * of the same idx with the current weights. Marks the touched coordinates'
 * pages dirty and counts one update. */
void model_ftrl_update(model_ftrl_t *m, const uint32_t *idx, uint32_t n,
                       double p, int y);
/* Examples learned: the model version. */
uint64_t model_ftrl_updates(const model_ftrl_t *m);
/* The current weight of one coordinate (tests, inspection). */
double model_ftrl_weight(const model_ftrl_t *m, uint32_t i);
void model_ftrl_coord(const model_ftrl_t *m, uint32_t i, double *z, double *n);

uint32_t model_ftrl_pages(const model_ftrl_t *m);
/* Dirty pages since the last clear, ascending; *out borrows model memory
 * until the next update or clear. */
uint32_t model_ftrl_dirty_pages(const model_ftrl_t *m, const uint32_t **out);
void model_ftrl_clear_dirty(model_ftrl_t *m);
/* 1 when every coordinate of the page is untouched (z = n = 0): the caller
 * may skip (or delete) its record; decoding nothing leaves it zero. */
int model_ftrl_page_is_zero(const model_ftrl_t *m, uint32_t page);

void model_ftrl_page_encode(const model_ftrl_t *m, uint32_t page,
                            tern_buf_t *out);
/* Replaces the page's values with the record's (TERN_ERR_DECODE for a
 * malformed record or one of another page). Does not mark it dirty. */
tern_code_t model_ftrl_page_decode(model_ftrl_t *m, uint32_t page,
                                   const void *v, size_t len, char *errstr,
                                   size_t errstr_size);
/* Sets every coordinate of the page to zero (a page whose record is gone). */
void model_ftrl_page_clear(model_ftrl_t *m, uint32_t page);

void model_ftrl_header_encode(const model_ftrl_t *m, tern_buf_t *out);
/* Checks the stored conf against the model's own (TERN_ERR_CONFIG, naming
 * what differs: a model learned with other settings cannot be continued)
 * and restores the update count. */
tern_code_t model_ftrl_header_decode(model_ftrl_t *m, const void *v, size_t len,
                                     char *errstr, size_t errstr_size);

#endif
