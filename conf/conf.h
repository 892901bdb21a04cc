/*
 * conf — tern's configuration: one property table (conf_props.c) drives
 * the defaults, the YAML loader (conf_yaml.c), `-X key=value` overrides,
 * validation messages, the commented example conf/tern.yaml and the README
 * reference (conf_doc.c). Nothing about a key is written twice.
 *
 * Errors name the place, the key and the reason:
 *     conf/tern.yaml:12:3: features.window_items: must be between 1 and 1000
 * (got 0) -X features.window_itemz=3: unknown key and are TERN_ERR_CONFIG;
 * commands exit with status 2 on them.
 *
 * A config is built in a scratch copy and only handed back when the whole
 * document parsed and every check passed (libyaml reports some syntax
 * errors after earlier values have arrived).
 *
 * Ownership: tern_conf_t owns every string and map in it; conf_destroy()
 * frees them. Pointers into it stay valid until conf_destroy().
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/tern_err.h"
#include "../ingest/ingest_event.h"

typedef struct conf_kv {
        char *key;
        char *value;
        int line, column; /* where it was set (0 = default or -X) */
} conf_kv_t;

typedef struct conf_map {
        conf_kv_t *kv;
        size_t n;
} conf_map_t;

/* state.compaction, in the order of its symbols in conf_props.c. */
typedef enum {
        TERN_COMPACTION_LEVEL,
        TERN_COMPACTION_UNIVERSAL
} tern_compaction_t;

typedef struct tern_conf {
        /* kafka */
        char *brokers;
        char *group_id;
        conf_map_t kafka_props;    /* both clients */
        conf_map_t consumer_props; /* consumer only */
        conf_map_t producer_props; /* producer only */
        int64_t session_timeout_ms;
        int require_tls; /* refuse plaintext security.protocol */
        /* topics */
        char *topic_input;
        char *topic_recommendations;
        char *topic_dead_letter;
        char *topic_ctr_scores;
        char *topic_churn_scores;
        char *topic_churn_alerts;
        char *topic_model_alerts;
        int64_t input_partitions; /* embedded broker only */
        /* input */
        int wire_format; /* ingest_wire_t */
        char *writer_schema;
        char *schema_dir;
        int64_t max_record_bytes;
        int64_t max_string_bytes;
        int64_t max_context_entries;
        int64_t max_collection_items;
        int64_t max_depth;
        int64_t ts_min_ms;
        int64_t ts_max_ms;
        /* input: Schema Registry (ingest_registry.h, runtime/rt_schemas.h) */
        char *schema_registry_url; /* "" = off */
        char *schema_registry_auth;
        int64_t schema_registry_timeout_ms;
        int64_t schema_registry_connect_timeout_ms;
        int64_t schema_registry_retry_ms;
        /* replay: file rows -> event time (ingest_file_opts_t) */
        int64_t replay_row_spacing_ms;
        int64_t replay_click_delay_ms;
        /* state */
        char *state_dir;
        int64_t block_cache_mb;
        int64_t write_buffer_mb;
        int compaction; /* tern_compaction_t */
        int sync_writes;
        int64_t max_cached_users;
        int64_t max_cached_users_mb;
        int64_t max_cached_pairs;
        int64_t pair_filter_mb;
        int64_t max_cached_items;    /* the item catalog (feat_catalog.h) */
        int64_t malloc_trim_seconds; /* rt_pipeline, at a commit */
        /* batch */
        int64_t batch_max_events;
        int64_t batch_max_ms;
        int64_t delivery_timeout_ms;
        int64_t shutdown_timeout_ms;
        /* features */
        int64_t window_items;
        int64_t window_seconds;
        int64_t type_weight[TERN_EV__CNT];
        int64_t session_gap_seconds;
        double gap_ewma_alpha;
        int64_t affinity_half_life_seconds;
        int64_t affinity_top_k;
        int64_t recent_items;
        int64_t top_neighbors;
        int64_t trending_size;
        /* recommendations */
        int64_t recs_top_n;
        int64_t recs_seed_items;
        int64_t recs_recency_half_life_seconds;
        double recs_type_boost[TERN_EV__CNT];
        double recs_similarity_weight;
        double recs_ctr_weight;
        int64_t recs_ctr_candidates;
        /* ctr */
        int ctr_enabled;
        int64_t ctr_window_seconds;
        int64_t ctr_lateness_seconds;
        int64_t ctr_max_pending;
        int64_t ctr_hash_bits;
        double ctr_alpha, ctr_beta, ctr_l1, ctr_l2;
        char *ctr_crosses;
        /* churn (rt_churn.h) */
        int churn_enabled;
        double churn_inactive_days;
        double churn_score_interval_days;
        int64_t churn_min_score_gap_seconds;
        int64_t churn_allowed_lateness_seconds;
        int64_t churn_max_pending;
        double churn_learning_rate;
        double churn_l2;
        double churn_alert_threshold;
        double churn_alert_rearm_threshold;
        double churn_alert_cooldown_days;
        double churn_ph_delta;
        double churn_ph_lambda;
        int64_t churn_drift_min_labels;
        double churn_psi_threshold;
        int64_t churn_psi_window;
        double churn_adapt_boost;
        int64_t churn_adapt_labels;
        /* memc: churn state bounded in memory (rt_churn_state.h) */
        int64_t churn_max_cached_users;
        /* http endpoint: /metrics, /healthz, /readyz (runtime/rt_http.h) */
        char *http_listen;          /* "host:port"; "" = no endpoint */
        int64_t http_stall_seconds; /* /healthz: longest loop silence */
        /* log */
        int log_level;  /* rt_log_level_t order: error warn info debug */
        int log_format; /* 0 text, 1 json */

        /* live control (runtime/rt_control.h) */
        char *topic_control;

        int64_t config_version; /* stamped on every output */
        char *source;           /* file name the config came from */
} tern_conf_t;

/* A config with every default set. */
tern_conf_t *conf_new(void);
void conf_destroy(tern_conf_t *conf);

/* A deep copy: every string and map duplicated. */
tern_conf_t *conf_copy(const tern_conf_t *src);

/* Load a YAML file over the defaults in conf. On error conf is unchanged. */
tern_code_t conf_load_file(tern_conf_t *conf, const char *path, char *errstr,
                           size_t errstr_size);
/* Same, from a string (name used in messages). */
tern_code_t conf_load_string(tern_conf_t *conf, const char *name,
                             const char *yaml, size_t len, char *errstr,
                             size_t errstr_size);
/* Apply one "key.path=value" override (kcat's -X). */
tern_code_t conf_set_override(tern_conf_t *conf, const char *assignment,
                              char *errstr, size_t errstr_size);
/* Cross-key checks, once, after all sources are applied. */
tern_code_t conf_finalize(tern_conf_t *conf, char *errstr, size_t errstr_size);

/* Live keys (CONF_F_LIVE in the property table: numbers that may change
 * while tern runs). conf_live_find(): the index of path among them, -1 if
 * path is no live key. */
size_t conf_live_count(void);
const char *conf_live_path(size_t i);
int conf_live_find(const char *path);
double conf_live_get(const tern_conf_t *conf, size_t i);
/* Checks the table's min/max: TERN_ERR_CONFIG "PATH: must be between ..."
 * and conf unchanged when out of range. */
tern_code_t conf_live_check(size_t i, double v, char *errstr,
                            size_t errstr_size);
tern_code_t conf_live_set(tern_conf_t *conf, size_t i, double v, char *errstr,
                          size_t errstr_size);
/* Every key whose value differs between a and b, in table order: fn gets
 * its path and whether it is live. Returns the number of differences. */
typedef void (*conf_diff_fn)(void *opaque, const char *path, int live);
size_t conf_diff(const tern_conf_t *a, const tern_conf_t *b, conf_diff_fn fn,
                 void *opaque);

/* Secrets (passwords, keys) are redacted in everything printed. */
int conf_is_secret(const char *property);

/* The commented example config (conf/tern.yaml is exactly this text). */
void conf_write_example(FILE *out);
/* The Markdown reference table used in README.md. */
void conf_write_reference(FILE *out);
/* The effective config as YAML, secrets redacted. */
void conf_write_effective(const tern_conf_t *conf, FILE *out);

#endif
