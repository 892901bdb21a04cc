/*
 * rt_emit — how a runtime module (CTR, churn) hands an output record to the
 * pipeline's producer. The module encodes the record into value (Avro) and,
 * when want_json is set, json (for --emit); send() delivers it within the
 * batch, so the batch is committed only once it is delivered. A failure is
 * kept by the pipeline as its fatal error.
 *
 * Ownership: the buffers are the caller's; send() copies them.
 */
#ifndef RT_EMIT_H
#define RT_EMIT_H

#include <stddef.h>

#include "../common/tern_buf.h"

typedef struct rt_emit {
        void (*send)(void *opaque, const char *topic, const void *key,
                     size_t klen, const tern_buf_t *value,
                     const tern_buf_t *json);
        void *opaque;
        int want_json;
} rt_emit_t;

#endif
