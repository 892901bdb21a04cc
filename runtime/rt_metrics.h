/*
 * rt_metrics — what /metrics, /healthz and /readyz report (rt_http), and
 * how it crosses from the pipeline's thread to the HTTP thread.
 *
 * The pipeline's loop thread owns every object reported on (consumer,
 * producer, store, models) and never shares them: at start, after each
 * commit, and at most once a second while idle it copies the figures
 * into a snapshot (rt_metrics_snap_t, plain data) and publishes it under
 * a mutex. The HTTP thread copies the latest snapshot out under the same
 * mutex (rt_metrics_read) and formats Prometheus text from its copy only
 * (rt_metrics_format). Liveness (a heartbeat) and readiness (a phase) are
 * atomics.
 *
 * Cost: nothing per event. Per commit: one snapshot (the models' AUC over
 * their score bins, the cached high watermarks of the assigned
 * partitions, a copy of ~25 KiB); the RocksDB size at most once a second.
 *
 * The metric names are a contract with deploy/ (Prometheus, Grafana): one
 * table in rt_metrics.c drives both the formatter and the README list
 * (`tern config --metrics`).
 *
 * Ownership: the command creates the rt_metrics_t, lends it to the
 * pipeline (rt_pipeline_opts_t.metrics) and to the HTTP server, and
 * destroys it after both. The objects given to rt_metrics_bind() are
 * borrowed until rt_metrics_bind(m, NULL) (the pipeline's destroy).
 */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/tern_buf.h"
#include "../features/feat_engine.h"
#include "../features/feat_store.h"
#include "../ingest/ingest_event.h"
#include "../ingest/ingest_registry.h"
#include "../sinks/sink_producer.h"
#include "rt_churn.h"
#include "rt_control.h"
#include "rt_ctr.h"
#include "rt_schemas.h"

#define RT_METRICS_BUCKETS    13 /* commit latency: 1 ms .. 10 s, then +Inf */
#define RT_METRICS_MAX_TOPICS 16
#define RT_METRICS_MAX_LAG    1024 /* partitions (RT_MAX_PARTITIONS) */
#define RT_METRICS_NAME_MAX   256  /* Kafka topic names: 249 */

/* Upper bounds of the commit latency buckets, seconds. */
extern const double rt_metrics_buckets[RT_METRICS_BUCKETS];

typedef enum rt_metrics_phase {
        RT_PHASE_STARTING = 0, /* state opening, no partition yet */
        RT_PHASE_READY,        /* partitions assigned, first poll done */
        RT_PHASE_STOPPING,     /* stop requested or drained: finishing */
        RT_PHASE_STOPPED       /* the loop returned */
} rt_metrics_phase_t;

typedef struct rt_metrics_model {
        int enabled;
        uint64_t examples;   /* learned */
        double logloss, auc; /* NaN when undefined (as null in JSON) */
} rt_metrics_model_t;

typedef struct rt_metrics_snap {
        uint64_t records_in;
        uint64_t events_by_type[TERN_EV__CNT];
        uint64_t dead_lettered;
        uint64_t batches;
        /* Commit latency: commits with latency <= rt_metrics_buckets[i]
         * (cumulative, as Prometheus wants them), all commits, seconds. */
        uint64_t commit_le[RT_METRICS_BUCKETS];
        uint64_t commit_count;
        double commit_seconds_sum;
        uint32_t n_outputs;
        struct {
                char topic[RT_METRICS_NAME_MAX];
                uint64_t delivered;
        } outputs[RT_METRICS_MAX_TOPICS];
        uint32_t n_lag; /* assigned partitions with a known high watermark */
        char lag_topic[RT_METRICS_NAME_MAX];
        struct {
                int32_t partition;
                int64_t messages; /* high watermark - next offset to read */
        } lag[RT_METRICS_MAX_LAG];
        rt_metrics_model_t ctr, churn;
        uint64_t drift_events; /* churn */
        uint64_t churn_alerts;
        uint64_t rocksdb_bytes;
        /* What holds memory (read with rocksdb_bytes, at most once a
         * second): RocksDB's memtables, block cache and table readers;
         * the feature engine's in-memory mirrors (0 without an engine). */
        feat_store_mem_t rocksdb_mem;
        /* malloc's view (glibc mallinfo2, all arenas; read by
         * rt_metrics_read on the reader's thread): bytes handed out, and
         * bytes it holds from the system (handed out + free in its
         * arenas); the difference is memory freed but not returned.
         * heap_known 0: no mallinfo2 (not glibc 2.33+). */
        int heap_known;
        uint64_t heap_in_use, heap_held;
        /* The same split by arena (glibc malloc_info): the main arena,
         * which the loop's thread allocates from (with some of RocksDB's
         * and librdkafka's threads), and the others (the rest of them). held:
         * taken from the system (mmapped blocks not included); free: held but
         * not in use, the top chunk included. heap_arenas 0: not read. */
        int heap_arenas;
        uint64_t heap_main_held, heap_main_free;
        uint64_t heap_other_held, heap_other_free;
        /* the loop's long-lived objects' slabs (tern_pool), outside
         * malloc's arenas */
        uint64_t pool_bytes;
        /* malloc_trim calls (state.malloc_trim_seconds) and their time */
        uint64_t malloc_trims;
        double malloc_trim_seconds;
        uint64_t cached_users, cached_items, cached_pairs, cached_top_lists;
        uint64_t cached_user_bytes;
        /* pairs the co-occurrence mirror evicted, commits: both so far */
        uint64_t pairs_evicted, engine_commits;
        uint64_t pair_reads;        /* pair counts read back (only bounded) */
        uint64_t top_loads;         /* top lists loaded from their records */
        uint64_t pair_filter_zeros; /* ... or none: the filter said 0 */
        /* churn records cached, their points, timer nodes */
        uint64_t churn_users, churn_pending, churn_timers;
        int64_t config_version;
        /* The Schema Registry's counters (registry: one is configured). */
        int registry;
        ingest_registry_stats_t schemas;
        /* Control records (kept with the state across restarts); the last
         * applied one's place, control_last_partition -1 when unknown. */
        int control;
        uint64_t control_applied, control_rejected;
        int32_t control_last_partition;
        int64_t control_last_offset;
        int ready; /* 0/1, filled by rt_metrics_read() from the phase */
} rt_metrics_snap_t;

/* The loop's objects a snapshot is taken from (borrowed). */
typedef struct rt_metrics_src {
        rd_kafka_t *consumer;
        const sink_producer_t *producer;
        feat_store_t *store;
        const rt_ctr_t *ctr;     /* NULL when ctr.enabled is false */
        const rt_churn_t *churn; /* NULL when churn.enabled is false */
        const rt_control_t *control;
        const rt_schemas_t *schemas; /* NULL without a Schema Registry */
        const feat_engine_t *engine; /* NULL: no cache counts */
} rt_metrics_src_t;

typedef struct rt_metrics rt_metrics_t;
struct rt_pipeline;

/* stall_seconds: /healthz fails when the loop has not come round for this
 * long (http.stall_seconds). NULL when out of memory. */
rt_metrics_t *rt_metrics_new(int64_t stall_seconds);
void rt_metrics_destroy(rt_metrics_t *m);

/* ---- the pipeline's loop thread; every call accepts m == NULL ---- */

/* src == NULL: unbind (the objects are going away). */
void rt_metrics_bind(rt_metrics_t *m, const rt_metrics_src_t *src);
/* run() begins: heartbeat, first snapshot. */
void rt_metrics_loop_start(rt_metrics_t *m, const struct rt_pipeline *p);
/* After a poll that returned nothing, and every 64 messages: heartbeat,
 * readiness, and a snapshot if the last one is older than a second. */
void rt_metrics_tick(rt_metrics_t *m, const struct rt_pipeline *p);
/* A batch committed in took_ns (after the pipeline counted it). */
void rt_metrics_committed(rt_metrics_t *m, const struct rt_pipeline *p,
                          int64_t took_ns);
/* The consumer's assignment changed (its rebalance callback, after the
 * assign or unassign): holding no partition after a rebalance took them
 * all, the instance is not ready (/readyz 503 "unassigned", tern_ready 0)
 * until partitions come back. */
void rt_metrics_rebalanced(rt_metrics_t *m, rd_kafka_t *consumer);
/* The loop is leaving (stop, drained or fatal): not ready any more. */
void rt_metrics_loop_stopping(rt_metrics_t *m);
/* run() is returning: the final snapshot, then not alive. */
void rt_metrics_loop_stopped(rt_metrics_t *m, const struct rt_pipeline *p);

/* ---- any thread ---- */

/* The latest published snapshot (zeroes before the first). */
void rt_metrics_read(rt_metrics_t *m, rt_metrics_snap_t *out);
rt_metrics_phase_t rt_metrics_phase(rt_metrics_t *m);
/* Prometheus text format 0.0.4 of a snapshot, every metric with # HELP
 * and # TYPE. Pure: the unit test feeds it snapshots. */
void rt_metrics_format(const rt_metrics_snap_t *s, tern_buf_t *out);
/* The probes: the HTTP status (200/503) and a one-line JSON body. */
int rt_metrics_healthz(rt_metrics_t *m, tern_buf_t *body);
int rt_metrics_readyz(rt_metrics_t *m, tern_buf_t *body);
/* The Markdown table of every metric (README "Metrics and health"). */
void rt_metrics_write_reference(FILE *out);

#endif
