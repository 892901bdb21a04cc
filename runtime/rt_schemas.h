/*
 * rt_schemas — the pipeline's side of the Schema Registry: a Confluent
 * record whose schema id the decoder does not know is looked up
 * (ingest_registry: memory, STATE_DIR/schemas, the registry,
 * input.schema_dir; for id 1, when the registry answered that it does
 * not have it, the built-in tern.BehaviorEvent),
 * added to the decoder, and decoded again.
 *
 * When it cannot be used the record is dead-lettered with one of:
 *   unknown_schema      the registry answered that the id does not exist
 *                       (HTTP 404 with error_code 40403) and no local
 *                       copy has it (not retriable);
 *   schema_unavailable  the registry could not be asked or gave no
 *                       usable answer (down, timeout, 5xx, 401/403, a 404
 *                       without error_code 40403, a malformed answer) and
 *                       no local copy has it (retriable: the record
 *                       decodes once the registry, or its configuration,
 *                       is back);
 *   incompatible_schema the id's schema is not Avro, or the writer schema
 *                       cannot be read as tern's reader schema (a
 *                       required field missing, a type that does not
 *                       resolve): not retriable — ids are immutable, so
 *                       an id the decoder refused is remembered as such.
 * A failed lookup is not retried for input.schema_registry_retry_ms, so
 * a dead registry makes records fail fast instead of stalling the loop.
 *
 * Threads: the pipeline's loop thread only. Adding a schema changes the
 * decoder, which ingest_decode.h allows to the one thread that decodes.
 *
 * Ownership: rt_schemas_t owns its registry client; the decoder is the
 * caller's.
 */
#ifndef RT_SCHEMAS_H
#define RT_SCHEMAS_H

#include "../conf/conf.h"
#include "../ingest/ingest_decode.h"
#include "../ingest/ingest_registry.h"

typedef struct rt_schemas rt_schemas_t;

/* *out = NULL (and TERN_OK) when input.schema_registry_url is empty.
 * The disk cache is state_dir/schemas. */
tern_code_t rt_schemas_new(const tern_conf_t *conf, const char *state_dir,
                           rt_schemas_t **out, char *errstr,
                           size_t errstr_size);
void rt_schemas_destroy(rt_schemas_t *s);

/* After ingest_decode() answered TERN_ERR_NOT_FOUND for buf: resolve its
 * schema id, add it to dec, decode again. Returns what ingest_decode()
 * returns, or the lookup's failure with *reason one of the classes above
 * and errstr saying why. */
tern_code_t rt_schemas_decode_again(rt_schemas_t *s, ingest_decoder_t *dec,
                                    const uint8_t *buf, size_t len,
                                    tern_event_t *ev, const char **reason,
                                    char *errstr, size_t errstr_size);

void rt_schemas_stats(const rt_schemas_t *s, ingest_registry_stats_t *out);

#endif
