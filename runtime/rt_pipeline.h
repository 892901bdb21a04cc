/*
 * rt_pipeline — the poll -> decode -> state -> recommend -> produce ->
 * commit loop that every command runs (run, demo, replay, bench).
 *
 * One thread drives it: rd_kafka_consumer_poll() one message at a time;
 * each batch (batch.max_events or batch.max_ms) ends with
 *   1. the producer flushed: every output of the batch delivered, else the
 *      batch is NOT committed and the pipeline stops with a fatal error;
 *   2. one RocksDB WriteBatch with the batch's state and the next offsets.
 * On (re)assignment each partition resumes from the offset stored with the
 * state, so after a crash no event is counted twice in state; outputs are
 * at least once (keyed, latest wins).
 *
 * Other threads may read stats and positions and set drain targets while
 * the loop runs; everything else belongs to the loop's thread.
 */
#ifndef RT_PIPELINE_H
#define RT_PIPELINE_H

#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"
#include "../common/tern_buf.h"
#include "../conf/conf.h"

#define RT_MAX_PARTITIONS 1024

typedef struct rt_pipeline_opts {
        const tern_conf_t *conf;
        const char *brokers;   /* NULL = conf->brokers */
        const char *state_dir; /* NULL = conf->state_dir */
        const char *group_id;  /* NULL = conf->group_id */
        const char *emit_dir;  /* NULL = no DIR/<topic>.jsonl */
        const char *ctr_trace; /* NULL = none; see rt_ctr_new() */
        /* SIGHUP (rt_reload): the config read again, NULL with a message
         * when it cannot be; reload NULL = SIGHUP ignored. rt_control.h. */
        tern_conf_t *(*reload)(void *opaque, char *errstr, size_t errstr_size);
        void *reload_opaque;
        /* NULL = no /metrics; borrowed, must outlive the pipeline. */
        struct rt_metrics *metrics;
} rt_pipeline_opts_t;

typedef struct rt_pipeline_stats {
        uint64_t records_in; /* Kafka records consumed */
        uint64_t events_in;  /* decoded and applied */
        uint64_t by_type[6]; /* per tern_event_type_t */
        uint64_t dead_lettered;
        uint64_t recommendations;
        uint64_t batches;
        uint64_t commit_ns_total;
        uint64_t commit_ns_max;
        int64_t first_record_ns; /* monotonic; 0 before the first record */
        int64_t last_commit_ns;
        /* Time per stage, summed: decode, feature state, ranking + encoding,
         * handing outputs to the producer, waiting for deliveries at commit,
         * the RocksDB batch write; the CTR and churn modules per event
         * (scoring, joins, learning; their sends count in ns_produce). */
        uint64_t ns_decode, ns_state, ns_recs, ns_produce, ns_flush, ns_write;
        uint64_t ns_models;
        /* malloc_trim calls at commits (state.malloc_trim_seconds) and
         * the time they took */
        uint64_t malloc_trims, malloc_trim_ns;
} rt_pipeline_stats_t;

typedef struct rt_pipeline rt_pipeline_t;

rt_pipeline_t *rt_pipeline_new(const rt_pipeline_opts_t *opts, char *errstr,
                               size_t errstr_size);
void rt_pipeline_destroy(rt_pipeline_t *p);

/* Called on the loop thread with each input record's partition, offset
 * and the monotonic time the consumer's poll returned it (tern bench's
 * latency legs). Set before rt_pipeline_run() or after it returned; NULL
 * removes it. */
typedef void(rt_poll_observer_t)(void *opaque, int32_t partition,
                                 int64_t offset, int64_t mono_ns);
void rt_pipeline_set_poll_observer(rt_pipeline_t *p, rt_poll_observer_t *fn,
                                   void *opaque);

/* Runs until rt_stop is set, a fatal error happens (returned, with the
 * message), or every drain target is committed. Always commits what it
 * processed before returning, unless the error forbids it. */
tern_code_t rt_pipeline_run(rt_pipeline_t *p, char *errstr, size_t errstr_size);

/* Stop once the input partition's committed position reaches end_offset.
 * With drain targets set, run() returns when all of them are reached. */
void rt_pipeline_drain_at(rt_pipeline_t *p, int32_t partition,
                          int64_t end_offset);
/* The next input offset the loop will process / has committed for a
 * partition (-1 before the first message / commit). */
int64_t rt_pipeline_position(const rt_pipeline_t *p, int32_t partition);
int64_t rt_pipeline_committed(const rt_pipeline_t *p, int32_t partition);
/* The next offset stored with the state for an input partition, 0 if none. */
int64_t rt_pipeline_stored_offset(rt_pipeline_t *p, int32_t partition);
/* The offset the partition resumed from at its first assignment. */
int64_t rt_pipeline_resumed_from(const rt_pipeline_t *p, int32_t partition);

void rt_pipeline_stats(const rt_pipeline_t *p, rt_pipeline_stats_t *out);
/* The configuration version stamped on outputs now. */
int64_t rt_pipeline_config_version(const rt_pipeline_t *p);
/* The live CTR model's document (rt_ctr_json), "null" when disabled. */
void rt_pipeline_ctr_json(const rt_pipeline_t *p, tern_buf_t *out);
/* The churn block (rt_churn_json), or null when churn is off; call it
 * from the loop's thread or after run() returned. */
void rt_pipeline_churn_json(const rt_pipeline_t *p, tern_buf_t *out);
/* Per output topic counts as JSON object text {"topic": n, ...}. */
void rt_pipeline_outputs_json(const rt_pipeline_t *p, char *buf, size_t size);

#endif
