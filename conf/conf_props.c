/*
 * conf_props — THE table of configuration keys. Add a key here and it is
 * parsed, validated, defaulted, overridable with -X, documented in
 * conf/tern.yaml and in README.md.
 */
#include <stddef.h>

#include "conf_int.h"

#define OFF(field) offsetof(tern_conf_t, field)

static const char *const wire_symbols[] = {"auto", "raw", "confluent", NULL};
static const char *const level_symbols[] = {"error", "warn", "info", "debug",
                                            NULL};
static const char *const format_symbols[] = {"text", "json", NULL};
static const char *const compaction_symbols[] = {"level", "universal", NULL};

const conf_section_t conf_sections[] = {
    {"kafka", "Brokers and client properties. Any librdkafka property can be\n"
              "passed through (see librdkafka's CONFIGURATION.md)."},
    {"topics", "Topic names."},
    {"input", "Decoding of input records. Every length and count in a record\n"
              "is checked against these limits before anything is read."},
    {"replay",
     "How files map to event time in `tern replay` and `tern produce`, for\n"
     "the formats without a per-row timestamp (avazu-csv: an hour only;\n"
     "criteo-tsv: none). Several --input files share one row clock."},
    {"state",
     "The RocksDB state store. State and consumed offsets are written\n"
     "in one batch, so a restart resumes exactly where state left off."},
    {"batch", "How often state and offsets are committed."},
    {"features", "Profiles, user windows and item co-occurrence (DESIGN 4)."},
    {"recommendations", "Ranking of each user's refreshed top-N."},
    {"ctr",
     "Online click-through model (FTRL-Proximal over hashed features).\n"
     "An IMPRESSION is scored at once (topic topics.ctr_scores) and kept\n"
     "pending; a CLICK naming it inside the attribution window makes a\n"
     "positive example, an impression whose window closes unclicked a\n"
     "negative one. Windows close by event time: the largest ts_ms seen in\n"
     "the input partition minus the allowed lateness."},
    {"churn",
     "Churn scoring (DESIGN 4): p(no activity for inactive_days) from an\n"
     "online logistic regression on dense activity features, learned from\n"
     "delayed labels; alerts with reasons; drift detection. All in event\n"
     "time."},
    {"http",
     "HTTP endpoint for Prometheus and probes (`tern run`, `demo`, `replay`):\n"
     "/metrics (Prometheus text format 0.0.4), /healthz (the processing loop\n"
     "is alive), /readyz (state open, partitions assigned, not stopping)."},
    {"log", "Logging to stderr."},
};
const size_t conf_sections_cnt =
    sizeof(conf_sections) / sizeof(conf_sections[0]);

const conf_prop_t conf_props[] = {
    /* kafka */
    {"kafka.brokers", CP_STR, OFF(brokers), 0, 0, "localhost:9092", NULL,
     "Bootstrap brokers, host:port[,host:port]. `tern demo` and `tern replay`\n"
     "use their own embedded broker instead."},
    {"kafka.group_id", CP_STR, OFF(group_id), 0, 0, "tern", NULL,
     "Consumer group of `tern run` instances."},
    {"kafka.session_timeout_ms", CP_INT, OFF(session_timeout_ms), 1000, 3600000,
     "10000", NULL,
     "Consumer session timeout; a rebalance after a crash waits about this "
     "long."},
    {"kafka.properties", CP_MAP, OFF(kafka_props), 0, 0, "{}", NULL,
     "librdkafka properties for both consumer and producer, e.g.\n"
     "{security.protocol: SASL_SSL, sasl.mechanisms: PLAIN}."},
    {"kafka.require_tls", CP_BOOL, OFF(require_tls), 0, 0, "false", NULL,
     "Refuse to start unless both clients use security.protocol ssl or\n"
     "sasl_ssl (plaintext, sasl_plaintext or unset are refused)."},
    {"kafka.consumer", CP_MAP, OFF(consumer_props), 0, 0, "{}", NULL,
     "librdkafka properties for the consumer only."},
    {"kafka.producer", CP_MAP, OFF(producer_props), 0, 0, "{}", NULL,
     "librdkafka properties for the producer only (idempotence is always "
     "on;\n"
     "linger.ms is 1 (ms) unless set here or in kafka.properties: outputs\n"
     "are latency-bound)."},
    /* topics */
    {"topics.input", CP_STR, OFF(topic_input), 0, 0, "behavior-events", NULL,
     "Input: Avro tern.BehaviorEvent, keyed by user_id."},
    {"topics.recommendations", CP_STR, OFF(topic_recommendations), 0, 0,
     "recommendations", NULL,
     "Output: each user's refreshed top-N. Every output record carries the\n"
     "config_version it was made under (see topics.control)."},
    {"topics.dead_letter", CP_STR, OFF(topic_dead_letter), 0, 0,
     "tern-dead-letter", NULL,
     "Output: input records that could not be used, with the reason and\n"
     "source offset."},
    {"topics.ctr_scores", CP_STR, OFF(topic_ctr_scores), 0, 0, "ctr-scores",
     NULL,
     "Output: p(click) of every IMPRESSION, published before its label is\n"
     "known."},
    {"topics.churn_scores", CP_STR, OFF(topic_churn_scores), 0, 0,
     "churn-scores", NULL,
     "Output: each churn scoring point (user, ts_ms, risk, model_version,\n"
     "config_version)."},
    {"topics.churn_alerts", CP_STR, OFF(topic_churn_alerts), 0, 0,
     "churn-alerts", NULL,
     "Output: a user's risk crossed churn.alert_threshold, with the top 3\n"
     "reasons."},
    {"topics.model_alerts", CP_STR, OFF(topic_model_alerts), 0, 0,
     "model-alerts", NULL,
     "Output: a model's drift detector fired, and the adaptation taken."},
    /* live control (runtime/rt_control.h) */
    {"topics.control", CP_STR, OFF(topic_control), 0, 0, "tern-control", NULL,
     "Input: live control records (JSON: boosts, blocks, blend, churn\n"
     "thresholds, model parameters), read in full by every tern instance;\n"
     "see README \"Live control\". One partition keeps their order; empty =\n"
     "no control topic (live changes by SIGHUP only)."},
    {"topics.input_partitions", CP_INT, OFF(input_partitions), 1, 1024, "4",
     NULL,
     "Partitions of the input topic when tern creates it on its embedded\n"
     "broker (`tern broker`, `tern demo`). `tern replay` always uses 1 so its\n"
     "outputs are reproducible."},
    /* input */
    {"input.wire_format", CP_ENUM, OFF(wire_format), 0, 0, "auto", wire_symbols,
     "raw: Avro binary with input.writer_schema; confluent: magic byte 0 +\n"
     "4-byte schema id (ids from input.schema_dir or the Schema Registry);\n"
     "auto: confluent when the first byte is 0, else raw."},
    {"input.writer_schema", CP_STR, OFF(writer_schema), 0, 0, "\"\"", NULL,
     "Writer schema file (.avsc) of raw records; empty = the built-in\n"
     "tern.BehaviorEvent."},
    {"input.schema_dir", CP_STR, OFF(schema_dir), 0, 0, "\"\"", NULL,
     "Directory of <id>.avsc writer schemas for the confluent wire format;\n"
     "empty = only id 1, the built-in schema. With\n"
     "input.schema_registry_url: the registry's last fallback instead."},
    {"input.max_record_bytes", CP_INT, OFF(max_record_bytes), 16, 64 << 20,
     "1048576", NULL, "Larger records are dead-lettered as too_large."},
    {"input.max_string_bytes", CP_INT, OFF(max_string_bytes), 1, 64 << 20,
     "65536", NULL, "Longest string or bytes value in a record."},
    {"input.max_context_entries", CP_INT, OFF(max_context_entries), 0,
     TERN_EVENT_MAX_CONTEXT, "64", NULL, "Most entries in the context map."},
    {"input.max_collection_items", CP_INT, OFF(max_collection_items), 1,
     1000000, "10000", NULL,
     "Most items in any array or map of an evolved writer schema."},
    {"input.max_depth", CP_INT, OFF(max_depth), 1, 256, "32", NULL,
     "Deepest nesting accepted in an evolved writer schema's values."},
    {"input.ts_min_ms", CP_INT, OFF(ts_min_ms), 0, 9e15, "0", NULL,
     "Events with ts_ms below this are invalid (dead-lettered)."},
    {"input.ts_max_ms", CP_INT, OFF(ts_max_ms), 0, 9e15, "4102444800000", NULL,
     "Events with ts_ms above this are invalid (default 2100-01-01)."},
    /* input: Schema Registry */
    {"input.schema_registry_url", CP_STR, OFF(schema_registry_url), 0, 0,
     "\"\"", NULL,
     "Schema Registry base URL (http or https) for confluent-framed records\n"
     "whose schema id tern does not know: GET URL/schemas/ids/ID. Found\n"
     "schemas are cached in STATE_DIR/schemas; lookup order: memory, that\n"
     "cache, the registry, input.schema_dir. Empty = off."},
    {"input.schema_registry_auth", CP_STR, OFF(schema_registry_auth), 0, 0,
     "\"\"", NULL, "user:password for HTTP basic auth; empty = none."},
    {"input.schema_registry_timeout_ms", CP_INT,
     OFF(schema_registry_timeout_ms), 100, 600000, "5000", NULL,
     "Whole request to the registry (the pipeline waits for it)."},
    {"input.schema_registry_connect_timeout_ms", CP_INT,
     OFF(schema_registry_connect_timeout_ms), 100, 600000, "2000", NULL,
     "Connecting to the registry."},
    {"input.schema_registry_retry_ms", CP_INT, OFF(schema_registry_retry_ms), 0,
     86400000, "30000", NULL,
     "A schema id found nowhere is not asked for again for this long: its\n"
     "records are dead-lettered at once meanwhile (schema_unavailable,\n"
     "retriable; or unknown_schema when the registry does not have it)."},
    /* replay */
    {"replay.row_spacing_ms", CP_INT, OFF(replay_row_spacing_ms), 1, 3600000,
     "100", NULL,
     "Event time between consecutive rows, in file order: avazu-csv row r is\n"
     "at its hour + r * this, criteo-tsv row r at 2014-01-01 00:00 UTC +\n"
     "r * this (r counts the rows of all earlier --input files too)."},
    {"replay.click_delay_ms", CP_INT, OFF(replay_click_delay_ms), 1, 86400000,
     "2000", NULL,
     "A row labelled 1 also yields a CLICK this much event time after its\n"
     "IMPRESSION, emitted in event-time order among the later rows."},
    /* state */
    {"state.dir", CP_STR, OFF(state_dir), 0, 0, "tern-state", NULL,
     "RocksDB directory (created if missing)."},
    {"state.block_cache_mb", CP_INT, OFF(block_cache_mb), 1, 1 << 20, "64",
     NULL, "RocksDB block cache."},
    {"state.write_buffer_mb", CP_INT, OFF(write_buffer_mb), 4, 1 << 16, "32",
     NULL,
     "RocksDB memtable size per column family (its hash index alone takes\n"
     "about 1 MiB, hence the minimum)."},
    {"state.compaction", CP_ENUM, OFF(compaction), 0, 0, "level",
     compaction_symbols,
     "RocksDB compaction style of every column family. level: each file is\n"
     "merged into the next level's overlapping files. universal: sorted\n"
     "runs of similar size are merged together, so each counter increment\n"
     "is rewritten fewer times (a half to two thirds of level's compaction\n"
     "CPU in a 2,000 events/s soak), but reads look in more sorted runs and\n"
     "a full merge takes minutes and up to twice the disk space: that soak\n"
     "fell further behind. A state directory can be reopened with the\n"
     "other style."},
    {"state.sync_writes", CP_BOOL, OFF(sync_writes), 0, 0, "false", NULL,
     "fsync every commit. Off: the WAL survives a process crash but not a\n"
     "power loss."},
    {"state.max_cached_users", CP_INT, OFF(max_cached_users), 1, 1e9, "200000",
     NULL,
     "Users kept in memory after a commit; past this the least recently\n"
     "used go, down to 90%, and reload from RocksDB on their next event\n"
     "(results do not change)."},
    {"state.max_cached_users_mb", CP_INT, OFF(max_cached_users_mb), 0, 1 << 20,
     "512", NULL,
     "...and the bytes they hold (tern_memory_bytes{part=\"users\"}):\n"
     "past this, the least recently used go until the rest hold 90% of\n"
     "it. A user grows with its history up to the features.* limits,\n"
     "~4 KiB at the defaults (200000 full users: ~800 MiB). 0: users are\n"
     "bounded by their number only."},
    {"state.max_cached_pairs", CP_INT, OFF(max_cached_pairs), 1, 1e10,
     "20000000", NULL,
     "Co-occurrence pair counts (and items) kept in memory after a commit;\n"
     "past this the least recently used go, down to 90%. An item in memory\n"
     "keeps its top neighbours and a bound for its pairs that are not, and a\n"
     "pair's count is read back from RocksDB only when it could change a\n"
     "top list (results do not change)."},
    {"state.pair_filter_mb", CP_INT, OFF(pair_filter_mb), 0, 4096, "16", NULL,
     "Once pair counts are evicted (state.max_cached_pairs), a filter of\n"
     "the pairs ever counted (built from RocksDB, then kept up) spares the\n"
     "read of a pair it rules out. 16 MiB keeps false positives near 1%\n"
     "up to ~8M pairs. 0: no filter."},
    {"state.max_cached_items", CP_INT, OFF(max_cached_items), 1, 1e9, "1000000",
     NULL,
     "Items kept in memory, in two places: item -> category entries for\n"
     "category boosts (about 150 bytes each) and co-occurrence top\n"
     "neighbour lists (about 0.6 KiB each with 32 neighbours). Past this\n"
     "the least recently used go after a commit, down to 90%, and are read\n"
     "back from RocksDB when needed (results do not change)."},
    {"state.malloc_trim_seconds", CP_INT, OFF(malloc_trim_seconds), 0, 86400,
     "0", NULL,
     "Every this many seconds (wall clock), at a commit, hand the\n"
     "pages malloc holds free back to the system (glibc's malloc_trim;\n"
     "tern_malloc_trim_seconds_total says what it costs). Off by default:\n"
     "in a 35-minute soak, once a minute, RSS grew about as fast as\n"
     "without (the pages came back within 30 s) and each trim held\n"
     "the loop 18 ms on average, up to 54. 0: never. glibc only."},
    /* batch */
    {"batch.max_events", CP_INT, OFF(batch_max_events), 1, 1000000, "10000",
     NULL,
     "Commit after this many events ... (outputs are sent as each event is\n"
     "processed; a batch bounds what a crash makes tern process again, and\n"
     "larger ones merge more counter increments into one write)"},
    {"batch.max_ms", CP_INT, OFF(batch_max_ms), 1, 600000, "100", NULL,
     "... or this many milliseconds (wall clock), whichever comes first."},
    {"batch.delivery_timeout_ms", CP_INT, OFF(delivery_timeout_ms), 100,
     3600000, "30000", NULL,
     "Outputs of a batch must be delivered within this before its commit;\n"
     "a delivery failure stops tern without committing the batch."},
    {"batch.shutdown_timeout_ms", CP_INT, OFF(shutdown_timeout_ms), 100,
     3600000, "10000", NULL,
     "On SIGINT/SIGTERM: time allowed to finish the batch and commit; past\n"
     "it `tern run` exits 1 without committing the batch (a restart\n"
     "processes it again)."},
    /* features */
    {"features.window_items", CP_INT, OFF(window_items), 1, 1000, "20", NULL,
     "W: distinct recent items per user paired with each new item."},
    {"features.window_seconds", CP_INT, OFF(window_seconds), 1, 31536000,
     "3600", NULL, "T: an item stays in the window this long after its event."},
    {"features.type_weights", CP_TYPE_INT, OFF(type_weight), 0, 1000,
     "{VIEW: 1, CLICK: 1, CART: 1, FAVORITE: 1, PURCHASE: 1, IMPRESSION: 0}",
     NULL,
     "w(type) added to co-occurrence counts; 0 = the type is not counted."},
    {"features.session_gap_seconds", CP_INT, OFF(session_gap_seconds), 1,
     31536000, "1800", NULL, "A longer gap starts a new session."},
    {"features.gap_ewma_alpha", CP_DBL, OFF(gap_ewma_alpha), 0.001, 1, "0.2",
     NULL, "Weight of the newest gap in the inter-event gap average."},
    {"features.affinity_half_life_seconds", CP_INT,
     OFF(affinity_half_life_seconds), 1, 315360000, "604800", NULL,
     "Category affinities halve over this much event time."},
    {"features.affinity_top_k", CP_INT, OFF(affinity_top_k), 1, 100, "10", NULL,
     "Category affinities kept per user."},
    {"features.recent_items", CP_INT, OFF(recent_items), 1, 1000, "50", NULL,
     "Recent distinct items kept per user (never recommended back)."},
    {"features.top_neighbors", CP_INT, OFF(top_neighbors), 1, 1000, "32", NULL,
     "Neighbours per item kept exactly (by count) for ranking."},
    {"features.trending_size", CP_INT, OFF(trending_size), 1, 10000, "100",
     NULL, "Global trending items kept (cold start)."},
    /* recommendations */
    {"recommendations.top_n", CP_INT, OFF(recs_top_n), 0, 100, "10", NULL,
     "N: items per recommendation record (0 = publish none)."},
    {"recommendations.seed_items", CP_INT, OFF(recs_seed_items), 1, 1000, "20",
     NULL, "Most recent window items whose neighbours are candidates."},
    {"recommendations.recency_half_life_seconds", CP_INT,
     OFF(recs_recency_half_life_seconds), 1, 31536000, "1800", NULL,
     "A seed item's weight halves over this much event time."},
    {"recommendations.type_boost", CP_TYPE_DBL, OFF(recs_type_boost), 0, 1000,
     "{VIEW: 1, CLICK: 1.5, CART: 3, FAVORITE: 2, PURCHASE: 2, IMPRESSION: "
     "0.5}",
     NULL, "Weight of a seed item by the type of the user's last event on it."},
    {"recommendations.similarity_weight", CP_DBL, OFF(recs_similarity_weight),
     0, 1000, "1", NULL,
     "Blend: weight of the co-occurrence score (scaled so the best candidate\n"
     "has 1).",
     CONF_F_LIVE},
    {"recommendations.ctr_weight", CP_DBL, OFF(recs_ctr_weight), 0, 1000, "0.5",
     NULL,
     "Blend: weight of the CTR model's p(click) for the user, the event's\n"
     "context and the candidate item (0 = co-occurrence only).",
     CONF_F_LIVE},
    {"recommendations.ctr_candidates", CP_INT, OFF(recs_ctr_candidates), 1, 100,
     "30", NULL,
     "Best candidates by co-occurrence that the CTR blend re-ranks."},
    /* ctr */
    {"ctr.enabled", CP_BOOL, OFF(ctr_enabled), 0, 0, "true", NULL,
     "Score impressions, join clicks and learn online."},
    {"ctr.attribution_window_seconds", CP_INT, OFF(ctr_window_seconds), 1,
     31536000, "60", NULL,
     "A click counts for an impression when it comes at most this long after\n"
     "it (event time)."},
    {"ctr.allowed_lateness_seconds", CP_INT, OFF(ctr_lateness_seconds), 0,
     31536000, "10", NULL,
     "How far an event may lag the partition's largest ts_ms and still be\n"
     "joined; windows close this much later."},
    {"ctr.max_pending", CP_INT, OFF(ctr_max_pending), 1, 1e9, "1000000", NULL,
     "Impressions kept waiting for a click (about 250 bytes each); past this\n"
     "the partition's oldest is dropped unlearned (counted as evicted)."},
    {"ctr.hash_bits", CP_INT, OFF(ctr_hash_bits), 10, 28, "20", NULL,
     "Hashed feature space: 2^bits weights (32 bytes each in memory: 32 MiB\n"
     "at the default 20)."},
    {"ctr.alpha", CP_DBL, OFF(ctr_alpha), 1e-6, 100, "0.05", NULL,
     "FTRL-Proximal per-coordinate learning rate alpha.", CONF_F_LIVE},
    {"ctr.beta", CP_DBL, OFF(ctr_beta), 0, 100, "1", NULL,
     "FTRL-Proximal beta (smooths the first steps of a coordinate).",
     CONF_F_LIVE},
    {"ctr.l1", CP_DBL, OFF(ctr_l1), 0, 1000, "1", NULL,
     "L1 regularisation: weights of rare features stay exactly 0.",
     CONF_F_LIVE},
    {"ctr.l2", CP_DBL, OFF(ctr_l2), 0, 1000, "1", NULL, "L2 regularisation.",
     CONF_F_LIVE},
    {"ctr.crosses", CP_STR, OFF(ctr_crosses), 0, 0,
     "user*category,placement*item", NULL,
     "Feature crosses, comma separated pairs a*b of: user, item, category,\n"
     "campaign, hour, dow, or a context key (placement, device, ...)."},
    /* churn */
    {"churn.enabled", CP_BOOL, OFF(churn_enabled), 0, 0, "true", NULL,
     "Score churn, learn from delayed labels, publish scores and alerts."},
    {"churn.inactive_days", CP_DBL, OFF(churn_inactive_days), 0.0001, 3650,
     "90", NULL,
     "I: a scoring point at t is labelled churned (1) when the user shows no\n"
     "activity (any event but IMPRESSION) in (t, t + I], else 0. Also the\n"
     "time scale of the features (decayed counts over I/4, I, 4I)."},
    {"churn.score_interval_days", CP_DBL, OFF(churn_score_interval_days),
     0.00001, 3650, "7", NULL,
     "A silent user is scored again this long after the last scoring, while\n"
     "the silence is shorter than inactive_days (sweeps, as the partition's\n"
     "watermark passes them). Also the least spacing of the points kept for\n"
     "labels."},
    {"churn.min_score_gap_seconds", CP_INT, OFF(churn_min_score_gap_seconds), 0,
     31536000, "1800", NULL,
     "An activity event is a scoring point when at least this long has\n"
     "passed since the user's previous one; activity closer than this to\n"
     "the previous activity is the same visit."},
    {"churn.allowed_lateness_seconds", CP_INT,
     OFF(churn_allowed_lateness_seconds), 0, 31536000, "60", NULL,
     "Watermark of a partition = its latest event time minus this; a timer\n"
     "at T fires once the watermark is past T."},
    {"churn.max_pending", CP_INT, OFF(churn_max_pending), 1, 4096, "64", NULL,
     "Scoring points per user waiting for their label; more are not\n"
     "learned from (counted as labels_dropped)."},
    {"churn.learning_rate", CP_DBL, OFF(churn_learning_rate), 0, 10, "0.002",
     NULL, "SGD step size of the logistic regression.", CONF_F_LIVE},
    {"churn.l2", CP_DBL, OFF(churn_l2), 0, 1, "0.0001", NULL,
     "L2 penalty per step.", CONF_F_LIVE},
    {"churn.alert_threshold", CP_DBL, OFF(churn_alert_threshold), 0, 1, "0.8",
     NULL, "A churn alert when an armed user's risk reaches this.",
     CONF_F_LIVE},
    {"churn.alert_rearm_threshold", CP_DBL, OFF(churn_alert_rearm_threshold), 0,
     1, "0.6", NULL,
     "After an alert the user is armed again once the risk falls below this.",
     CONF_F_LIVE},
    {"churn.alert_cooldown_days", CP_DBL, OFF(churn_alert_cooldown_days), 0,
     3650, "30", NULL, "At most one alert per user within this much time.",
     CONF_F_LIVE},
    /* These are not model_drift_conf_default()'s 0.05 / 50: that is the
     * library default for a plain per-example loss stream (test 0015 holds
     * its detection delay); the pipeline's churn logloss is learned at a
     * fixed inactive_days delay in bursts of swept points, and 0.1 / 200
     * keeps CDNOW to a few alarms while test 0016 still fires. */
    {"churn.drift_ph_delta", CP_DBL, OFF(churn_ph_delta), 0, 100, "0.1", NULL,
     "Page-Hinkley on the logloss of resolved labels: tolerated increase\n"
     "per label."},
    {"churn.drift_ph_lambda", CP_DBL, OFF(churn_ph_lambda), 0.001, 1e9, "200",
     NULL, "Page-Hinkley alarm threshold (cumulative logloss excess)."},
    {"churn.drift_min_labels", CP_INT, OFF(churn_drift_min_labels), 1, 1e9,
     "1000", NULL,
     "Labels before Page-Hinkley may fire (after each reset) and before the\n"
     "PSI reference window starts."},
    {"churn.drift_psi_threshold", CP_DBL, OFF(churn_psi_threshold), 0, 100,
     "0.25", NULL,
     "PSI of the score distribution (10 bins) of a window against the\n"
     "reference window above which the scores drifted; 0 = off."},
    {"churn.drift_psi_window", CP_INT, OFF(churn_psi_window), 100, 1e8, "5000",
     NULL, "Scores per PSI window (reference and current)."},
    {"churn.adapt_learning_rate_boost", CP_DBL, OFF(churn_adapt_boost), 1, 1000,
     "5", NULL, "On drift the learning rate is multiplied by this ..."},
    {"churn.adapt_labels", CP_INT, OFF(churn_adapt_labels), 0, 1e9, "2000",
     NULL, "... for this many labels."},
    /* memc: churn state bounded in memory */
    {"churn.max_cached_users", CP_INT, OFF(churn_max_cached_users), 1, 1e9,
     "200000", NULL,
     "Users' churn records kept in memory after a commit (about 200 bytes\n"
     "plus 88 per pending point); past this the least recently used are\n"
     "evicted and read back from RocksDB on their next event or timer\n"
     "(results do not change). Timers stay in memory: ~90 bytes per user\n"
     "not yet churned."},
    /* http */
    {"http.listen", CP_STR, OFF(http_listen), 0, 0, "\"\"", NULL,
     "host:port to serve /metrics, /healthz and /readyz on, e.g.\n"
     "0.0.0.0:9464; \"\" = no endpoint. Port 0 picks a free port; the\n"
     "address is logged as `listening on HOST:PORT`. `--http ADDR` on run,\n"
     "demo and replay sets it."},
    {"http.stall_seconds", CP_INT, OFF(http_stall_seconds), 1, 86400, "60",
     NULL,
     "/healthz answers 503 when the processing loop has not come round for\n"
     "this long (a stuck poll, delivery or state write)."},
    /* log */
    {"log.level", CP_ENUM, OFF(log_level), 0, 0, "info", level_symbols,
     "error, warn, info or debug."},
    {"log.format", CP_ENUM, OFF(log_format), 0, 0, "text", format_symbols,
     "text, or json: one JSON object per line with stage, topic, partition,\n"
     "offset."},
};
const size_t conf_props_cnt = sizeof(conf_props) / sizeof(conf_props[0]);
