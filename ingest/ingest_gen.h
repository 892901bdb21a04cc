/*
 * ingest_gen — synthetic shop traffic for `tern demo` and benchmarks.
 *
 * Deterministic for a seed. Users and items are Zipf-skewed (a few hot
 * items, a long tail); each user browses in sessions within a few
 * categories; the type mix is mostly VIEW with IMPRESSION, CLICK (answering
 * a recent impression of that user), CART, FAVORITE and PURCHASE (with
 * price and quantity); context carries device, channel, page, placement.
 * Event time starts at start_ts_ms and advances by a mean of
 * mean_gap_ms per event (not wall clock).
 *
 * The event returned by ingest_gen_next() borrows the generator's buffers:
 * valid until the next call. No allocation per event; ingest_gen_new()
 * allocates about 24 bytes per item and per user (NULL on failure).
 *
 * Ids: event "e<seq>", user "u<n>", item "i<n>", category "c<n>",
 * impression "m<n>", campaign "k<n>" (fixed by item). A CLICK answers the
 * latest impression of a user who saw one recently (same user and item),
 * at most once; with no impression to answer yet, an IMPRESSION is emitted
 * instead. Items per category are fixed by the seed.
 */
#ifndef INGEST_GEN_H
#define INGEST_GEN_H

#include <stdint.h>

#include "ingest_event.h"

typedef struct ingest_gen_conf {
        uint64_t seed;
        uint32_t users;      /* default 100000 */
        uint32_t items;      /* default 50000 */
        uint32_t categories; /* default 500 */
        double zipf_s;       /* item skew, default 1.1 */
        int64_t start_ts_ms; /* default 2026-11-11 00:00 UTC */
        int64_t mean_gap_ms; /* default 2 */
} ingest_gen_conf_t;

/* Defaults (seed 1). In ingest_gen_new(), zero users/items/categories and
 * zipf_s <= 0 also mean the default; a negative mean_gap_ms means 0. */
void ingest_gen_conf_default(ingest_gen_conf_t *c);

typedef struct ingest_gen ingest_gen_t;

ingest_gen_t *ingest_gen_new(const ingest_gen_conf_t *conf);
void ingest_gen_next(ingest_gen_t *g, tern_event_t *ev);
void ingest_gen_destroy(ingest_gen_t *g);

#endif
