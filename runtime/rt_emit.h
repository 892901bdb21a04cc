/*
 * rt_emit — how a runtime module (CTR, churn) hands an output record to the
 * pipeline's producer. The module encodes the record into value (Avro) and,
 * when want_json is set, json (for --emit); send() delivers it within the
 * batch, so the batch is committed only once it is delivered. A failure is
 * kept by the pipeline as its fatal error.
 *
 * Every output record carries the live config_version (rt_control.h):
 * modules read it with rt_emit_config_version() when they build a record,
 * so a change applied between batches is on the next record they make.
 *
 * Ownership: the buffers are the caller's; send() copies them.
 * config_version points into the pipeline's live config (one thread).
 */
#ifndef RT_EMIT_H
#define RT_EMIT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_buf.h"

typedef struct rt_emit {
        void (*send)(void *opaque, const char *topic, const void *key,
                     size_t klen, const tern_buf_t *value,
                     const tern_buf_t *json);
        void *opaque;
        int want_json;
        const int64_t *config_version; /* the live one; NULL reads as 0 */
} rt_emit_t;

static inline int64_t rt_emit_config_version(const rt_emit_t *e) {
        return e->config_version ? *e->config_version : 0;
}

#endif
