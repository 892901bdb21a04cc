/*
 * rt_bench — measuring parts of `tern bench` (runtime/cmd_bench.c):
 *
 * Paced load with end-to-end latency (rt_pace_*). A feeder thread produces
 * generated events into an input topic at a fixed rate, each stamped with
 * its produce() time (monotonic ns, kept in a ring per partition keyed by
 * the offset its delivery report gives). A second thread consumes the
 * recommendations topic, decodes each record's source partition and offset
 * with Avro-C, and takes latency = time the recommendation is received by
 * that consumer - produce time of the input event. So a figure includes the
 * input producer's linger, the broker both ways, tern's fetch, processing
 * and output linger: what a downstream consumer sees. The pipeline's poll
 * observer stamps the time tern's poll returned each input, which splits
 * each figure into an input and an output leg. When the feeder is
 * done it sets the pipeline's drain targets, so rt_pipeline_run() returns
 * once everything fed is committed. The first warmup_s seconds are fed at
 * the same rate but not measured (the pipeline's consumer starts fetching
 * about a second after its assignment). Every `sample_every_s` the feeder logs
 * RSS (anonymous and file-backed), rate and latency so far to stderr and
 * keeps the sample (soak mode); with a metrics snapshot also RocksDB's
 * memtables, block cache and table readers, and the feature engine's
 * cached users and pairs: the parts config bounds.
 * Memory: fixed at start (rings of 32768 offsets per partition, one
 * histogram), whatever the duration.
 *
 * Decoder comparison (rt_bench_decode): tern's bounded decoder against
 * Avro-C's generic reader on the same encoded records.
 *
 * Ownership: rt_pace_t borrows conf, generator and pipeline; they must
 * outlive rt_pace_join(). All calls but the threads' own run in the caller's
 * thread.
 */
#ifndef RT_BENCH_H
#define RT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tern_err.h"
#include "../conf/conf.h"
#include "../ingest/ingest_gen.h"
#include "rt_metrics.h"
#include "rt_pipeline.h"

#define RT_PACE_MAX_SAMPLES 4096

typedef struct rt_pace_opts {
        const tern_conf_t *conf;
        const char *brokers;
        const char *input_topic; /* created by the caller */
        const char *recs_topic;  /* created by the caller */
        int partitions;          /* of both topics */
        ingest_gen_t *gen;       /* the events, borrowed */
        double rate;             /* events/s */
        double warmup_s;         /* fed first, not measured */
        double seconds;          /* feeding time measured, after warm-up */
        double sample_every_s;   /* 0 = no RSS samples */
        int linger_ms;           /* of the paced producer */
        int fetch_wait_ms;       /* of the latency consumer */
        const char *label;       /* prefix of the progress lines */
        /* The pipeline's snapshot (NULL: RSS only): what holds memory. */
        rt_metrics_t *metrics;
} rt_pace_opts_t;

typedef struct rt_pace_sample {
        double t_s, rss_mb, eps, p99_ms;
        double anon_mb, file_mb; /* RSS split (smaps_rollup) */
        double memtables_mb, block_cache_mb, table_readers_mb;
        double heap_in_use_mb, heap_held_mb; /* malloc's view */
        /* ... by arena: the main one (the loop's) and the others */
        double main_held_mb, main_free_mb, other_held_mb, other_free_mb;
        double pools_mb;
        uint64_t malloc_trims; /* so far, and their time */
        double malloc_trim_ms;
        /* RocksDB (feat_store_mem_t): most L0 files and sorted runs of a
         * column family, compactions running, compaction owed (level
         * compaction only), delayed write rate (0: writes not held back) */
        uint64_t l0_files, sorted_runs, compactions_running;
        uint64_t pending_compaction_mb, delayed_write_rate;
        uint64_t cached_users, cached_pairs, cached_items, cached_top_lists;
        double users_mb;                 /* what the cached users hold */
        uint64_t pairs_evicted, commits; /* so far */
        uint64_t pair_reads, top_loads;  /* so far */
        uint64_t pair_filter_zeros;      /* reads the filter spared */
        /* churn records cached, their points, timer nodes */
        uint64_t churn_users, churn_pending, churn_timers;
        int64_t lag; /* input messages not yet read by the pipeline */
} rt_pace_sample_t;

typedef struct rt_pace_result {
        uint64_t sent, measured, unmatched;
        double achieved_eps; /* sent / feeding time */
        double p50_ms, p99_ms, p999_ms, max_ms;
        /* The two legs, split at the time tern's poll returned the input:
         * in = feeder's produce() -> tern's poll (producer linger, broker,
         * tern's fetch, waiting while tern commits); out = tern's poll ->
         * received (processing, output linger, broker, the consumer's
         * fetch). */
        double in_p50_ms, in_p99_ms, out_p50_ms, out_p99_ms;
        /* The pipeline's commits meanwhile (filled by the caller): an
         * input that arrives during one waits for it. */
        uint64_t batches;
        double commit_mean_ms, commit_max_ms;
        double flush_mean_ms, write_mean_ms; /* parts of a commit */
        uint32_t n_samples;
        rt_pace_sample_t samples[RT_PACE_MAX_SAMPLES];
} rt_pace_result_t;

typedef struct rt_pace rt_pace_t;

/* Starts both threads; NULL with errstr when a client cannot be made. */
rt_pace_t *rt_pace_start(const rt_pace_opts_t *o, rt_pipeline_t *p,
                         char *errstr, size_t errstr_size);
/* After rt_pipeline_run() returned: lets the latency consumer read what is
 * left (until 1 s passes with nothing new), joins both threads, fills out
 * and frees the pacer. */
void rt_pace_join(rt_pace_t *pc, rt_pace_result_t *out);

/* Resident set size now and its peak (VmHWM), MiB; 0 when unknown. */
double rt_bench_rss_mb(void);
/* RSS split into anonymous (heap, arenas, RocksDB, caches) and file-backed
 * (binary and libraries, mapped SST files) pages, MiB, from
 * /proc/self/smaps_rollup; 0 when unknown. */
void rt_bench_rss_split(double *anon_mb, double *file_mb);
double rt_bench_hwm_mb(void);

typedef struct rt_decode_cmp {
        uint64_t records, bytes;
        double tern_ns, avro_ns; /* per record, best of the rounds */
} rt_decode_cmp_t;

/* Decodes the n records (concatenated in data, lens[i] bytes each) with
 * both decoders, rounds times each. */
tern_code_t rt_bench_decode(const tern_conf_t *conf, const uint8_t *data,
                            const uint32_t *lens, size_t n, int rounds,
                            rt_decode_cmp_t *out, char *errstr,
                            size_t errstr_size);

#endif
