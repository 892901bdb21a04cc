/*
 * rt_schemas — registry lookups for unknown schema ids (design: the
 * header).
 */
#include "rt_schemas.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"

/* Ids whose writer schema the decoder refused: remembered (with why) so a
 * stream of such records costs a lookup, not a schema compile, each. */
#define REFUSED_MAX 256

typedef struct refused {
        int32_t id;
        char why[512];
} refused_t;

struct rt_schemas {
        ingest_registry_t *reg;
        refused_t *refused;
        uint32_t n_refused;
        uint64_t cache_failed_seen; /* cache write failures logged */
};

tern_code_t rt_schemas_new(const tern_conf_t *conf, const char *state_dir,
                           rt_schemas_t **out, char *errstr,
                           size_t errstr_size) {
        char cache[4200];
        rt_schemas_t *s;
        ingest_registry_conf_t rc = {
            .url = conf->schema_registry_url,
            .auth = conf->schema_registry_auth,
            .timeout_ms = conf->schema_registry_timeout_ms,
            .connect_timeout_ms = conf->schema_registry_connect_timeout_ms,
            .retry_ms = conf->schema_registry_retry_ms,
            .cache_dir = cache,
            .schema_dir = conf->schema_dir,
        };
        *out = NULL;
        if (!*conf->schema_registry_url)
                return TERN_OK;
        snprintf(cache, sizeof(cache), "%s/schemas",
                 state_dir ? state_dir : conf->state_dir);
        if (!(s = calloc(1, sizeof(*s))) ||
            !(s->refused = calloc(REFUSED_MAX, sizeof(refused_t)))) {
                free(s);
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        }
        if (!(s->reg = ingest_registry_new(&rc, errstr, errstr_size))) {
                rt_schemas_destroy(s);
                return TERN_ERR_CONFIG;
        }
        RT_LOG(RT_LOG_INFO, "ingest",
               "schema registry %s (cache %s, fallback %s)",
               conf->schema_registry_url, cache,
               *conf->schema_dir ? conf->schema_dir : "none");
        *out = s;
        return TERN_OK;
}

void rt_schemas_destroy(rt_schemas_t *s) {
        if (!s)
                return;
        ingest_registry_destroy(s->reg);
        free(s->refused);
        free(s);
}

void rt_schemas_stats(const rt_schemas_t *s, ingest_registry_stats_t *out) {
        ingest_registry_stats(s->reg, out);
}

static const refused_t *refused_find(const rt_schemas_t *s, int32_t id) {
        for (uint32_t i = 0; i < s->n_refused; i++)
                if (s->refused[i].id == id)
                        return &s->refused[i];
        return NULL;
}

static void refused_add(rt_schemas_t *s, int32_t id, const char *why) {
        refused_t *r;
        if (s->n_refused >= REFUSED_MAX)
                return; /* still refused, only compiled again next time */
        r = &s->refused[s->n_refused++];
        r->id = id;
        snprintf(r->why, sizeof(r->why), "%s", why);
}

/* The registry counts a fetched schema it could not write to the disk
 * cache; nothing fails now, but a restart with the registry down would
 * miss it, which the operator should hear about. */
static void cache_failure_log(rt_schemas_t *s, int32_t id) {
        ingest_registry_stats_t st;
        ingest_registry_stats(s->reg, &st);
        if (st.cache_write_failed == s->cache_failed_seen)
                return;
        s->cache_failed_seen = st.cache_write_failed;
        RT_LOG(RT_LOG_WARN, "ingest",
               "schema id %" PRId32 " fetched but not cached on disk (%s): a "
               "restart with the registry down will not find it",
               id, ingest_registry_cache_error(s->reg));
}

/* Where the writer schema of id comes from; the registry's classes on
 * failure. Id 1 is tern's own (what `tern produce` writes): when the
 * registry answered that it has no id 1, the built-in schema. Not when
 * the registry could not be asked: its id 1 may be another schema, and
 * the decoder keeps what is added for the life of the process, so a
 * guess during an outage would misread id 1 until restart. */
static tern_code_t lookup(rt_schemas_t *s, int32_t id, const char **json,
                          const char **from, const char **reason, char *errstr,
                          size_t errstr_size) {
        tern_code_t rc =
            ingest_registry_get(s->reg, id, json, from, errstr, errstr_size);
        if (rc == TERN_OK) {
                cache_failure_log(s, id);
                return TERN_OK;
        }
        if (id == 1 && rc == TERN_ERR_NOT_FOUND) {
                *json = ingest_behavior_event_schema;
                *from = "built-in";
                return TERN_OK;
        }
        *reason = rc == TERN_ERR_IO       ? "schema_unavailable"
                  : rc == TERN_ERR_CONFIG ? "incompatible_schema"
                                          : "unknown_schema";
        return rc;
}

tern_code_t rt_schemas_decode_again(rt_schemas_t *s, ingest_decoder_t *dec,
                                    const uint8_t *buf, size_t len,
                                    tern_event_t *ev, const char **reason,
                                    char *errstr, size_t errstr_size) {
        const refused_t *ref;
        const char *json = NULL, *from = "";
        char why[300];
        int32_t id;
        tern_code_t rc;
        if (!ingest_confluent_id(buf, len, &id) || id < 0 ||
            ingest_decoder_has_schema(dec, id))
                /* not an unknown id after all: decode says what it is */
                return ingest_decode(dec, buf, len, ev, reason, errstr,
                                     errstr_size);
        if ((ref = refused_find(s, id))) {
                *reason = "incompatible_schema";
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG, "%s",
                                 ref->why);
        }
        if ((rc = lookup(s, id, &json, &from, reason, errstr, errstr_size)))
                return rc;
        rc = ingest_decoder_add_schema(dec, id, json, why, sizeof(why));
        if (rc != TERN_OK) {
                char full[512];
                snprintf(full, sizeof(full),
                         "schema id %" PRId32 " (from %s) cannot be read as "
                         "tern.BehaviorEvent: %s (not retriable)",
                         id, from, why);
                RT_LOG(RT_LOG_WARN, "ingest", "%s", full);
                if (rc == TERN_ERR_CONFIG)
                        refused_add(s, id, full);
                *reason = "incompatible_schema";
                return tern_errf(errstr, errstr_size, rc, "%s", full);
        }
        RT_LOG(RT_LOG_INFO, "ingest", "schema id %" PRId32 " added (from %s)",
               id, from);
        return ingest_decode(dec, buf, len, ev, reason, errstr, errstr_size);
}
