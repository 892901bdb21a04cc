/*
 * feat_types — the feature stage's results as plain data: a user's profile
 * and window, an item's neighbours. Later stages (the ranking in models/)
 * read these and nothing else of features/: no store, no engine.
 *
 * Ownership: every pointer in these structs borrows the memory of whoever
 * filled them (for the feature engine: valid until its next apply, commit
 * or destroy, see feat_engine.h). Item and category strings are not
 * NUL-terminated.
 */
#ifndef FEAT_TYPES_H
#define FEAT_TYPES_H

#include <stdint.h>
#include <string.h>

#include "../ingest/ingest_event.h"

typedef struct feat_item_ts {
        const char *item; /* borrowed, not NUL-terminated */
        uint32_t len;
        int64_t ts_ms;
        uint8_t type; /* tern_event_type_t of the latest event on it */
} feat_item_ts_t;

typedef struct feat_affinity {
        const char *category;
        uint32_t len;
        double score; /* decayed to ts_ms */
        int64_t ts_ms;
} feat_affinity_t;

typedef struct feat_profile {
        uint64_t events[TERN_EV__CNT];
        double spend;
        uint64_t units;
        int64_t first_ts_ms;
        int64_t last_ts_ms;
        double gap_ewma_ms;
        uint32_t sessions;
        uint32_t n_affinity;
        const feat_affinity_t *affinity; /* score desc */
        uint32_t n_recent;
        const feat_item_ts_t *recent; /* most recent first */
} feat_profile_t;

typedef struct feat_user {
        const char *user_id;
        uint32_t user_len;
        int32_t partition;
        feat_profile_t profile;
        uint32_t n_window;
        const feat_item_ts_t *window; /* most recent first */
} feat_user_t;

/* An item id's hash, a word at a time (ids are short): the feature
 * engine keys its item table with it and hands it out with each
 * neighbour, so the ranking's candidate table does not hash the id again
 * (~640 candidates a ranking). Memory only: nothing stored depends on it. */
static inline __attribute__((always_inline)) uint32_t
feat_id_hash(const char *s, uint32_t len) {
        const uint64_t k = 0x9e3779b97f4a7c15ULL;
        uint64_t h = (uint64_t)len * k, t = 0;
        for (; len >= 8; s += 8, len -= 8) {
                uint64_t w;
                memcpy(&w, s, 8);
                h = (h ^ w) * k;
                h ^= h >> 29;
        }
        /* The last 1..7 bytes in two (possibly overlapping) loads, or
         * first, middle and last byte: no loop, no read past the id. */
        if (len >= 4) {
                uint32_t a, b;
                memcpy(&a, s, 4);
                memcpy(&b, s + len - 4, 4);
                t = a | (uint64_t)b << 32;
        } else if (len) {
                t = (uint8_t)s[0] | (uint64_t)(uint8_t)s[len >> 1] << 8 |
                    (uint64_t)(uint8_t)s[len - 1] << 16;
        }
        h = (h ^ t) * k;
        h ^= h >> 29;
        h *= k;
        return (uint32_t)(h ^ (h >> 32));
}

typedef struct feat_neighbor {
        const char *item;
        uint32_t len;
        uint32_t hash; /* feat_id_hash(item, len) */
        int64_t c;     /* c(i,j) */
        int64_t n;     /* n(j) */
        double score;  /* s(i,j) */
} feat_neighbor_t;

#endif
