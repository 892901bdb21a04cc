/*
 * ingest_event — one decoded tern.BehaviorEvent and where it came from.
 *
 * Ownership: every tern_str_t in a tern_event_t BORROWS the bytes it was
 * decoded from (the Kafka message payload, a file line, a generator buffer).
 * It stays valid exactly as long as those bytes do; the pipeline keeps the
 * message alive until the event has been processed. A string whose ptr is
 * NULL is Avro null (absent); a non-NULL string may have len 0.
 * Strings are NOT NUL-terminated.
 */
#ifndef INGEST_EVENT_H
#define INGEST_EVENT_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

typedef struct tern_str {
        const char *ptr; /* NULL = null */
        uint32_t len;
} tern_str_t;

#define TERN_STR_NULL ((tern_str_t){NULL, 0})
static inline tern_str_t tern_str_c(const char *s) {
        tern_str_t r = {s, s ? (uint32_t)strlen(s) : 0};
        return r;
}
static inline int tern_str_eq(tern_str_t a, tern_str_t b) {
        return a.len == b.len &&
               (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Symbol order is the Avro enum order of tern.EventType. */
typedef enum tern_event_type {
        TERN_EV_VIEW = 0,
        TERN_EV_CLICK,
        TERN_EV_CART,
        TERN_EV_FAVORITE,
        TERN_EV_PURCHASE,
        TERN_EV_IMPRESSION,
        TERN_EV__CNT
} tern_event_type_t;

extern const char *const tern_event_type_names[TERN_EV__CNT];
/* Returns the type or -1 for an unknown name (exact, upper case). */
int tern_event_type_parse(const char *s, size_t len);

/* Hard cap on context entries; config may set lower. 64: a Criteo row
 * carries 39 (I1..I13, C1..C26), with room for more. */
#define TERN_EVENT_MAX_CONTEXT     64
#define TERN_EVENT_MAX_CONTEXT_STR "64" /* the same, for message literals */

typedef struct tern_event {
        tern_str_t event_id;
        tern_str_t user_id;
        tern_str_t item_id;     /* nullable */
        tern_str_t category_id; /* nullable */
        tern_event_type_t type;
        int64_t ts_ms;
        int has_price;
        double price;
        int has_quantity;
        int32_t quantity;
        tern_str_t impression_id; /* nullable */
        tern_str_t campaign_id;   /* nullable */
        uint32_t n_context;
        tern_str_t context_key[TERN_EVENT_MAX_CONTEXT];
        tern_str_t context_val[TERN_EVENT_MAX_CONTEXT];

        /* Where the event came from; src_topic is borrowed (lives as long as
         * the consumer's topic handle / the replay). */
        const char *src_topic;
        int32_t src_partition;
        int64_t src_offset;
} tern_event_t;

/* Clears everything but the context arrays: only the first n_context
 * entries are ever read, so the 2 KiB behind them need no memset (it was
 * a third of the decode time per event). */
static inline void tern_event_clear(tern_event_t *ev) {
        memset(ev, 0, offsetof(tern_event_t, context_key));
        ev->src_topic = NULL;
        ev->src_partition = -1;
        ev->src_offset = -1;
}

#endif
