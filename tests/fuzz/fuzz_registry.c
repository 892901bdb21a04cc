/*
 * fuzz_registry: a Schema Registry's answer is network input. Every body
 * must either give a schema string (no longer than the body) or fail with
 * a message; the JSON pull reader (ingest_jwalk) is walked over the same
 * bytes with jw_skip.
 *
 * The schema itself is not compiled here: Avro-C's own parser leaks when
 * a schema names a type twice (avro_schema_from_json fails with "Cannot
 * save enum schema" and leaks ~1 KiB, libavro 1.11), which this target
 * found; tern bounds that by remembering a refused id (rt_schemas), and
 * fuzzing Avro-C is not this target's job.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/ingest_jwalk.h"
#include "../../ingest/ingest_registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[512] = "", *schema = NULL;
        jw_t w;
        tern_code_t rc;
        jw_init(&w, (const char *)data, size);
        jw_skip(&w);
        rc = ingest_registry_parse_answer((const char *)data, size, &schema,
                                          err, sizeof(err));
        if (rc != TERN_OK) {
                if (!err[0] || schema)
                        abort();
                return 0;
        }
        if (!schema || strlen(schema) > size)
                abort();
        free(schema);
        return 0;
}
