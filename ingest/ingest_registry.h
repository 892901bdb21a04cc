/*
 * ingest_registry — writer schemas by Confluent schema id, from a Schema
 * Registry over HTTP (libcurl), with an in-memory and an on-disk cache and
 * a local fallback directory.
 *
 * Lookup order for an id (ids are immutable in a Schema Registry, so a
 * copy held anywhere is as good as the registry's):
 *   1. memory (every id found so far);
 *   2. the disk cache, cache_dir/<id>.avsc (written atomically — temp
 *      file, fsync, rename, fsync of the directory — after each
 *      successful fetch, so a restart works with the registry down; a
 *      cache_dir that exists but is no directory is refused by _new);
 *   3. the registry: GET {url}/schemas/ids/{id}, answer
 *      {"schema": "<schema JSON as a string>"} (Confluent's API; a
 *      "schemaType" other than AVRO is refused);
 *   4. schema_dir/<id>.avsc (input.schema_dir).
 * An id found nowhere is remembered as failed for retry_ms (negative
 * cache): lookups within that interval answer at once with the same error
 * and make no request, so a dead registry costs one timeout per id per
 * interval, not one per record.
 *
 * Errors: TERN_ERR_NOT_FOUND — the registry answered that the id does not
 * exist (HTTP 404 with Confluent's error_code 40403) and no local copy has
 * it: NOT retriable. TERN_ERR_IO — the registry could not be asked
 * (connection refused, timeout, HTTP 5xx, 401/403, a 404 without that
 * error code, i.e. a URL that is no registry, a malformed or oversized
 * answer) and no local copy has it: retriable, the same record may decode
 * once the registry (or its configuration) is back.
 * TERN_ERR_CONFIG — the registry holds the id but it is not an Avro schema:
 * not retriable.
 *
 * Bounds: connect and total timeouts per request, an answer of at most
 * max_response_bytes (larger: TERN_ERR_IO, the transfer is cut short), no
 * redirects, http and https only, at most INGEST_REGISTRY_MAX_IDS ids
 * remembered (beyond that, older ones are forgotten in turn).
 *
 * Threads: a registry is used by one thread at a time (the pipeline's
 * loop). ingest_registry_new() calls curl_global_init() and _destroy()
 * the matching curl_global_cleanup(); before libcurl 7.84 (or a build
 * without CURL_VERSION_THREADSAFE) neither is thread-safe: create and
 * destroy registries while no other thread uses libcurl.
 *
 * Ownership: the registry copies its configuration strings. JSON handed
 * out by ingest_registry_get() belongs to the registry and stays valid
 * until the next ingest_registry_get() or ingest_registry_destroy().
 */
#ifndef INGEST_REGISTRY_H
#define INGEST_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_err.h"

#define INGEST_REGISTRY_MAX_IDS      4096
#define INGEST_REGISTRY_RESPONSE_MAX (4u << 20)

typedef struct ingest_registry_conf {
        const char *url;            /* base URL, e.g. http://registry:8081 */
        const char *auth;           /* "user:password" (basic auth), or "" */
        int64_t timeout_ms;         /* whole request */
        int64_t connect_timeout_ms; /* TCP (and TLS) connect */
        int64_t retry_ms;           /* negative cache interval */
        size_t max_response_bytes;  /* 0 = INGEST_REGISTRY_RESPONSE_MAX */
        const char *cache_dir;      /* disk cache (created); NULL = none */
        const char *schema_dir;     /* last fallback; NULL or "" = none */
} ingest_registry_conf_t;

typedef struct ingest_registry ingest_registry_t;

typedef struct ingest_registry_stats {
        uint64_t requests;    /* HTTP requests made */
        uint64_t from_memory; /* lookups answered from memory */
        uint64_t from_cache;  /* ... from the disk cache */
        uint64_t from_registry;
        uint64_t from_schema_dir;
        uint64_t failed;             /* lookups that found nothing */
        uint64_t failed_cached;      /* ... answered by the negative cache */
        uint64_t cache_write_failed; /* fetched, but not written to disk */
} ingest_registry_stats_t;

ingest_registry_t *ingest_registry_new(const ingest_registry_conf_t *conf,
                                       char *errstr, size_t errstr_size);
void ingest_registry_destroy(ingest_registry_t *r);

/* The writer schema JSON of id. *from (if given) names where it was
 * found: "memory", "cache", "registry", "schema_dir". */
tern_code_t ingest_registry_get(ingest_registry_t *r, int32_t id,
                                const char **json, const char **from,
                                char *errstr, size_t errstr_size);

void ingest_registry_stats(const ingest_registry_t *r,
                           ingest_registry_stats_t *out);
/* Why the last disk-cache write failed (stats.cache_write_failed counts
 * them; the lookup itself succeeded), "" when none has. */
const char *ingest_registry_cache_error(const ingest_registry_t *r);

/* Extract the "schema" string of a registry answer into a new buffer
 * (caller frees). TERN_ERR_IO when the text is not such an answer,
 * TERN_ERR_CONFIG when its schemaType is not AVRO. Exposed for tests. */
tern_code_t ingest_registry_parse_answer(const char *body, size_t len,
                                         char **schema, char *errstr,
                                         size_t errstr_size);

#endif
