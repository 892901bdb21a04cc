#include "rt_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "../common/tern_pool.h"
#include "rt_cmd.h"
#include "rt_pipeline.h"

#define SIZE_EVERY_NS   1000000000LL /* RocksDB size: at most once a second */
#define IDLE_PUBLISH_NS 1000000000LL

const double rt_metrics_buckets[RT_METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct rt_metrics {
        int64_t stall_ns;
        /* The loop thread's own: where the next snapshot is built. */
        rt_metrics_src_t src;
        int bound;
        rt_metrics_snap_t work;
        int64_t published_ns, size_read_ns;
        /* Shared: the latest snapshot, under the mutex. */
        pthread_mutex_t lock;
        rt_metrics_snap_t shared;
        _Atomic int64_t beat_ns; /* monotonic, the loop's last round */
        _Atomic int phase;       /* rt_metrics_phase_t */
        _Atomic int unassigned;  /* a rebalance left no partition */
};

rt_metrics_t *rt_metrics_new(int64_t stall_seconds) {
        rt_metrics_t *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->stall_ns = stall_seconds * 1000000000LL;
        pthread_mutex_init(&m->lock, NULL);
        atomic_store(&m->beat_ns, rt_mono_ns());
        atomic_store(&m->phase, RT_PHASE_STARTING);
        return m;
}

void rt_metrics_destroy(rt_metrics_t *m) {
        if (!m)
                return;
        pthread_mutex_destroy(&m->lock);
        free(m);
}

/* ---- snapshot (loop thread) ---- */

static void copy_name(char *dst, const char *src) {
        snprintf(dst, RT_METRICS_NAME_MAX, "%s", src ? src : "");
}

static void collect_outputs(const rt_metrics_src_t *src, rt_metrics_snap_t *s) {
        const sink_topic_count_t *counts;
        uint32_t n = sink_producer_counts(src->producer, &counts);
        s->n_outputs = 0;
        for (uint32_t i = 0; i < n && i < RT_METRICS_MAX_TOPICS; i++) {
                copy_name(s->outputs[i].topic, counts[i].topic);
                s->outputs[i].delivered = counts[i].delivered;
                s->n_outputs++;
        }
}

/* Lag from the high watermark the consumer caches from each fetch
 * response (rd_kafka_get_watermark_offsets: no broker round trip). A
 * partition without a fetch yet has no watermark and is left out. */
static void collect_lag(const rt_metrics_src_t *src, const rt_pipeline_t *p,
                        rt_metrics_snap_t *s) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        s->n_lag = 0;
        if (rd_kafka_assignment(src->consumer, &parts) || !parts)
                return;
        for (int i = 0; i < parts->cnt && s->n_lag < RT_METRICS_MAX_LAG; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t lo, hi, pos = rt_pipeline_position(p, tp->partition);
                if (rd_kafka_get_watermark_offsets(src->consumer, tp->topic,
                                                   tp->partition, &lo, &hi) ||
                    hi < 0 || pos < 0)
                        continue;
                copy_name(s->lag_topic, tp->topic);
                s->lag[s->n_lag].partition = tp->partition;
                s->lag[s->n_lag].messages = hi > pos ? hi - pos : 0;
                s->n_lag++;
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

static void collect_models(const rt_metrics_src_t *src, rt_metrics_snap_t *s) {
        s->ctr.enabled = src->ctr != NULL;
        if (src->ctr) {
                const model_metrics_t *mm = rt_ctr_metrics(src->ctr);
                s->ctr.examples = mm->examples;
                s->ctr.logloss = model_metrics_logloss(mm);
                s->ctr.auc = model_metrics_auc(mm);
        }
        s->churn.enabled = src->churn != NULL;
        if (src->churn) {
                rt_churn_figures_t f;
                rt_churn_figures(src->churn, &f);
                /* model_churn_metrics() says 0 and 0.5 where nothing is
                 * known yet; a dashboard must not read that as perfect
                 * or random: NaN, like the CTR figures. */
                s->churn.examples = f.model.labelled;
                s->churn.logloss = f.model.labelled ? f.model.logloss : NAN;
                s->churn.auc =
                    f.model.positives && f.model.positives < f.model.labelled
                        ? f.model.auc
                        : NAN;
                s->drift_events = f.drifts;
                s->churn_alerts = f.alerts;
        }
}

static void collect_control(const rt_metrics_src_t *src, rt_metrics_snap_t *s) {
        s->registry = src->schemas != NULL;
        if (src->schemas)
                rt_schemas_stats(src->schemas, &s->schemas);
        s->control = src->control != NULL;
        if (src->control) {
                rt_control_stats_t cs;
                rt_control_stats(src->control, &cs);
                s->control_applied = cs.applied;
                s->control_rejected = cs.rejected;
                s->control_last_partition = cs.last_partition;
                s->control_last_offset = cs.last_offset;
        }
}

static void collect_memory(const rt_metrics_src_t *src, rt_metrics_snap_t *s) {
        feat_stats_t fs;
        feat_store_memory(src->store, &s->rocksdb_mem);
        if (src->churn) {
                rt_churn_figures_t f;
                rt_churn_figures(src->churn, &f);
                s->churn_users = f.users;
                s->churn_pending = f.pending;
                s->churn_timers = f.timers;
        }
        if (!src->engine)
                return;
        feat_engine_stats(src->engine, &fs);
        s->cached_users = fs.cached_users;
        s->cached_user_bytes = fs.cached_user_bytes;
        s->cached_items = fs.cached_items;
        s->cached_pairs = fs.cached_pairs;
        s->cached_top_lists = fs.cached_top_lists;
        s->pairs_evicted = fs.pairs_evicted;
        s->pair_reads = fs.pair_reads;
        s->top_loads = fs.top_loads;
        s->pair_filter_zeros = fs.pair_filter_zeros;
        s->engine_commits = fs.commits;
}

static void publish(rt_metrics_t *m, const rt_pipeline_t *p, int final) {
        rt_metrics_snap_t *s = &m->work;
        rt_pipeline_stats_t st;
        int64_t now = rt_mono_ns();
        if (!m->bound || !p) /* no pipeline: only the unit test's probes */
                return;
        rt_pipeline_stats(p, &st);
        s->records_in = st.records_in;
        memcpy(s->events_by_type, st.by_type, sizeof(s->events_by_type));
        s->dead_lettered = st.dead_lettered;
        s->batches = st.batches;
        s->malloc_trims = st.malloc_trims;
        s->malloc_trim_seconds = (double)st.malloc_trim_ns / 1e9;
        collect_outputs(&m->src, s);
        collect_lag(&m->src, p, s);
        collect_models(&m->src, s);
        collect_control(&m->src, s);
        if (final || now - m->size_read_ns >= SIZE_EVERY_NS) {
                s->rocksdb_bytes = feat_store_size_bytes(m->src.store);
                collect_memory(&m->src, s);
                m->size_read_ns = now;
        }
        s->config_version = rt_pipeline_config_version(p);
        m->published_ns = now;
        pthread_mutex_lock(&m->lock);
        m->shared = *s;
        pthread_mutex_unlock(&m->lock);
}

void rt_metrics_bind(rt_metrics_t *m, const rt_metrics_src_t *src) {
        if (!m)
                return;
        m->bound = src != NULL;
        if (src)
                m->src = *src;
        else
                memset(&m->src, 0, sizeof(m->src));
        atomic_store(&m->beat_ns, rt_mono_ns());
}

void rt_metrics_loop_start(rt_metrics_t *m, const rt_pipeline_t *p) {
        if (!m)
                return;
        atomic_store(&m->beat_ns, rt_mono_ns());
        publish(m, p, 1);
}

static int holds_partitions(rd_kafka_t *consumer) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        int n;
        if (!consumer || rd_kafka_assignment(consumer, &parts) || !parts)
                return 0;
        n = parts->cnt;
        rd_kafka_topic_partition_list_destroy(parts);
        return n > 0;
}

static int assigned(const rt_metrics_t *m) {
        return m->bound && holds_partitions(m->src.consumer);
}

void rt_metrics_rebalanced(rt_metrics_t *m, rd_kafka_t *consumer) {
        if (m)
                atomic_store(&m->unassigned, !holds_partitions(consumer));
}

/* Ready: the phase says so and a rebalance has not taken every partition
 * (a load balancer should send nothing to an instance that processes
 * nothing; an eager rebalance shows as a short 503 between revoke and
 * assign). */
static int is_ready(rt_metrics_t *m) {
        return rt_metrics_phase(m) == RT_PHASE_READY &&
               !atomic_load(&m->unassigned);
}

void rt_metrics_tick(rt_metrics_t *m, const rt_pipeline_t *p) {
        int64_t now;
        if (!m)
                return;
        now = rt_mono_ns();
        atomic_store(&m->beat_ns, now);
        /* The tick follows a poll, so "first poll done" holds here. */
        if (atomic_load(&m->phase) == RT_PHASE_STARTING && assigned(m))
                atomic_store(&m->phase, RT_PHASE_READY);
        if (now - m->published_ns >= IDLE_PUBLISH_NS)
                publish(m, p, 0);
}

void rt_metrics_committed(rt_metrics_t *m, const rt_pipeline_t *p,
                          int64_t took_ns) {
        double secs = (double)took_ns / 1e9;
        if (!m)
                return;
        for (int i = 0; i < RT_METRICS_BUCKETS; i++)
                if (secs <= rt_metrics_buckets[i])
                        m->work.commit_le[i]++;
        m->work.commit_count++;
        m->work.commit_seconds_sum += secs;
        atomic_store(&m->beat_ns, rt_mono_ns());
        publish(m, p, 0);
}

void rt_metrics_loop_stopping(rt_metrics_t *m) {
        if (m)
                atomic_store(&m->phase, RT_PHASE_STOPPING);
}

void rt_metrics_loop_stopped(rt_metrics_t *m, const rt_pipeline_t *p) {
        if (!m)
                return;
        publish(m, p, 1);
        atomic_store(&m->phase, RT_PHASE_STOPPED);
}

/* ---- reading (any thread) ---- */

rt_metrics_phase_t rt_metrics_phase(rt_metrics_t *m) {
        return (rt_metrics_phase_t)atomic_load(&m->phase);
}

#if defined(__GLIBC__)
/* One line of malloc_info's XML: <heap nr="N"> opens an arena, </heap>
 * closes it; inside, the free bytes are the "fast" and "rest" totals and
 * the held bytes "system current". The totals after the last arena (all
 * arenas) fall outside any heap and are skipped. */
static void arena_line(rt_metrics_snap_t *s, const char *line, int *nr) {
        unsigned long long size;
        int n;
        uint64_t *held, *free_bytes;
        if (sscanf(line, "<heap nr=\"%d\">", &n) == 1) {
                *nr = n;
                return;
        }
        if (!strncmp(line, "</heap>", 7)) {
                *nr = -1;
                return;
        }
        if (*nr < 0)
                return;
        held = *nr ? &s->heap_other_held : &s->heap_main_held;
        free_bytes = *nr ? &s->heap_other_free : &s->heap_main_free;
        if (sscanf(line, "<total type=\"fast\" count=\"%*u\" size=\"%llu\"",
                   &size) == 1 ||
            sscanf(line, "<total type=\"rest\" count=\"%*u\" size=\"%llu\"",
                   &size) == 1)
                *free_bytes += size;
        else if (sscanf(line, "<system type=\"current\" size=\"%llu\"",
                        &size) == 1)
                *held += size;
}

/* malloc_info locks each arena in turn, like mallinfo2; its XML is a few
 * KiB per arena. */
static void read_arenas(rt_metrics_snap_t *s) {
        char *xml = NULL, *line, *save = NULL;
        size_t len = 0;
        int nr = -1;
        FILE *f = open_memstream(&xml, &len);
        if (!f)
                return;
        if (malloc_info(0, f)) {
                fclose(f);
                free(xml);
                return;
        }
        fclose(f);
        for (line = strtok_r(xml, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                arena_line(s, line, &nr);
        s->heap_arenas = 1;
        free(xml);
}
#endif

/* On the reader's thread (a scrape, a bench sample), not the loop's:
 * mallinfo2 locks each arena in turn and walks its free chunks. */
static void read_heap(rt_metrics_snap_t *s) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
        struct mallinfo2 mi = mallinfo2();
        s->heap_known = 1;
        s->heap_in_use = (uint64_t)(mi.uordblks + mi.hblkhd);
        s->heap_held = (uint64_t)(mi.arena + mi.hblkhd);
        read_arenas(s);
#else
        (void)s;
#endif
}

void rt_metrics_read(rt_metrics_t *m, rt_metrics_snap_t *out) {
        pthread_mutex_lock(&m->lock);
        *out = m->shared;
        pthread_mutex_unlock(&m->lock);
        out->ready = is_ready(m);
        read_heap(out);
        out->pool_bytes = tern_pool_all_bytes();
}

static const char *const phase_names[] = {"starting", "ready", "stopping",
                                          "stopped"};

int rt_metrics_healthz(rt_metrics_t *m, tern_buf_t *body) {
        rt_metrics_phase_t ph = rt_metrics_phase(m);
        double idle = (double)(rt_mono_ns() - atomic_load(&m->beat_ns)) / 1e9;
        int ok = ph != RT_PHASE_STOPPED && idle * 1e9 <= (double)m->stall_ns;
        tern_buf_printf(body,
                        "{\"status\":\"%s\",\"phase\":\"%s\","
                        "\"seconds_since_loop\":%.3f}\n",
                        ok                       ? "ok"
                        : ph == RT_PHASE_STOPPED ? "stopped"
                                                 : "stalled",
                        phase_names[ph], idle);
        return ok ? 200 : 503;
}

int rt_metrics_readyz(rt_metrics_t *m, tern_buf_t *body) {
        rt_metrics_phase_t ph = rt_metrics_phase(m);
        /* A signal arrived: the loop sees it within one poll, a load
         * balancer should stop sending at once. */
        if (rt_stop && ph == RT_PHASE_READY)
                ph = RT_PHASE_STOPPING;
        if (ph == RT_PHASE_READY && !is_ready(m)) {
                tern_buf_printf(body, "{\"status\":\"unassigned\"}\n");
                return 503;
        }
        tern_buf_printf(body, "{\"status\":\"%s\"}\n", phase_names[ph]);
        return ph == RT_PHASE_READY ? 200 : 503;
}

/* ---- Prometheus text format 0.0.4 ---- */

typedef struct metric_def metric_def_t;
struct metric_def {
        const char *name, *type, *labels, *help;
        void (*emit)(const metric_def_t *d, const rt_metrics_snap_t *s,
                     tern_buf_t *out);
};

/* A label value: \, " and newline escaped. */
static void put_label(tern_buf_t *out, const char *v) {
        for (; *v; v++) {
                if (*v == '\\' || *v == '"')
                        tern_buf_printf(out, "\\%c", *v);
                else if (*v == '\n')
                        tern_buf_printf(out, "\\n");
                else
                        tern_buf_put_u8(out, (uint8_t)*v);
        }
}

/* Model figures as %.17g: equal to the replay summary's to the bit. */
static void put_double(tern_buf_t *out, double v) {
        if (isnan(v))
                tern_buf_printf(out, "NaN");
        else if (isinf(v))
                tern_buf_printf(out, v > 0 ? "+Inf" : "-Inf");
        else
                tern_buf_printf(out, "%.17g", v);
}

static void put_u64(tern_buf_t *out, const char *name, uint64_t v) {
        tern_buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void emit_records(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        put_u64(out, d->name, s->records_in);
}

static void emit_events(const metric_def_t *d, const rt_metrics_snap_t *s,
                        tern_buf_t *out) {
        for (int t = 0; t < TERN_EV__CNT; t++) {
                char lower[16];
                size_t i = 0;
                for (const char *c = tern_event_type_names[t];
                     *c && i < sizeof(lower) - 1; c++)
                        lower[i++] = (char)(*c - 'A' + 'a');
                lower[i] = 0;
                tern_buf_printf(out, "%s{type=\"%s\"} %llu\n", d->name, lower,
                                (unsigned long long)s->events_by_type[t]);
        }
}

static void emit_dead(const metric_def_t *d, const rt_metrics_snap_t *s,
                      tern_buf_t *out) {
        put_u64(out, d->name, s->dead_lettered);
}

static void emit_outputs(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        for (uint32_t i = 0; i < s->n_outputs; i++) {
                tern_buf_printf(out, "%s{topic=\"", d->name);
                put_label(out, s->outputs[i].topic);
                tern_buf_printf(out, "\"} %llu\n",
                                (unsigned long long)s->outputs[i].delivered);
        }
}

static void emit_batches(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        put_u64(out, d->name, s->batches);
}

static void emit_commit(const metric_def_t *d, const rt_metrics_snap_t *s,
                        tern_buf_t *out) {
        for (int i = 0; i < RT_METRICS_BUCKETS; i++)
                tern_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", d->name,
                                rt_metrics_buckets[i],
                                (unsigned long long)s->commit_le[i]);
        tern_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", d->name,
                        (unsigned long long)s->commit_count);
        tern_buf_printf(out, "%s_sum %.9g\n%s_count %llu\n", d->name,
                        s->commit_seconds_sum, d->name,
                        (unsigned long long)s->commit_count);
}

static void emit_lag(const metric_def_t *d, const rt_metrics_snap_t *s,
                     tern_buf_t *out) {
        for (uint32_t i = 0; i < s->n_lag; i++) {
                tern_buf_printf(out, "%s{topic=\"", d->name);
                put_label(out, s->lag_topic);
                tern_buf_printf(out, "\",partition=\"%d\"} %lld\n",
                                (int)s->lag[i].partition,
                                (long long)s->lag[i].messages);
        }
}

/* One sample per enabled model; which figure: 0 logloss, 1 auc. */
static void emit_model_gauge(const metric_def_t *d, const rt_metrics_snap_t *s,
                             tern_buf_t *out, int which) {
        const rt_metrics_model_t *models[2] = {&s->ctr, &s->churn};
        static const char *const names[2] = {"ctr", "churn"};
        for (int i = 0; i < 2; i++) {
                if (!models[i]->enabled)
                        continue;
                tern_buf_printf(out, "%s{model=\"%s\"} ", d->name, names[i]);
                put_double(out, which ? models[i]->auc : models[i]->logloss);
                tern_buf_put_u8(out, '\n');
        }
}

static void emit_logloss(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        emit_model_gauge(d, s, out, 0);
}

static void emit_auc(const metric_def_t *d, const rt_metrics_snap_t *s,
                     tern_buf_t *out) {
        emit_model_gauge(d, s, out, 1);
}

static void emit_examples(const metric_def_t *d, const rt_metrics_snap_t *s,
                          tern_buf_t *out) {
        if (s->ctr.enabled)
                tern_buf_printf(out, "%s{model=\"ctr\"} %llu\n", d->name,
                                (unsigned long long)s->ctr.examples);
        if (s->churn.enabled)
                tern_buf_printf(out, "%s{model=\"churn\"} %llu\n", d->name,
                                (unsigned long long)s->churn.examples);
}

static void emit_drift(const metric_def_t *d, const rt_metrics_snap_t *s,
                       tern_buf_t *out) {
        if (s->churn.enabled)
                tern_buf_printf(out, "%s{model=\"churn\"} %llu\n", d->name,
                                (unsigned long long)s->drift_events);
}

static void emit_alerts(const metric_def_t *d, const rt_metrics_snap_t *s,
                        tern_buf_t *out) {
        if (s->churn.enabled)
                put_u64(out, d->name, s->churn_alerts);
}

static void emit_rocksdb(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        put_u64(out, d->name, s->rocksdb_bytes);
}

static void emit_memory(const metric_def_t *d, const rt_metrics_snap_t *s,
                        tern_buf_t *out) {
        /* heap: only where malloc can say (glibc 2.33's mallinfo2). */
        const struct {
                const char *part;
                uint64_t bytes;
                int heap;
        } parts[] = {
            {"memtables", s->rocksdb_mem.memtables, 0},
            {"block_cache", s->rocksdb_mem.block_cache, 0},
            {"block_cache_pinned", s->rocksdb_mem.block_cache_pinned, 0},
            {"table_readers", s->rocksdb_mem.table_readers, 0},
            {"users", s->cached_user_bytes, 0},
            {"pools", s->pool_bytes, 0},
            {"heap_in_use", s->heap_in_use, 1},
            {"heap_held", s->heap_held, 1},
            {"heap_main_held", s->heap_main_held, 2},
            {"heap_main_free", s->heap_main_free, 2},
            {"heap_other_held", s->heap_other_held, 2},
            {"heap_other_free", s->heap_other_free, 2},
        };
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
                if (!parts[i].heap || (parts[i].heap == 1 && s->heap_known) ||
                    (parts[i].heap == 2 && s->heap_arenas))
                        tern_buf_printf(out, "%s{part=\"%s\"} %llu\n", d->name,
                                        parts[i].part,
                                        (unsigned long long)parts[i].bytes);
}

static void emit_trims(const metric_def_t *d, const rt_metrics_snap_t *s,
                       tern_buf_t *out) {
        put_u64(out, d->name, s->malloc_trims);
}

static void emit_trim_time(const metric_def_t *d, const rt_metrics_snap_t *s,
                           tern_buf_t *out) {
        tern_buf_printf(out, "%s %.9g\n", d->name, s->malloc_trim_seconds);
}

static void emit_config(const metric_def_t *d, const rt_metrics_snap_t *s,
                        tern_buf_t *out) {
        tern_buf_printf(out, "%s %lld\n", d->name,
                        (long long)s->config_version);
}

static void emit_schema_requests(const metric_def_t *d,
                                 const rt_metrics_snap_t *s, tern_buf_t *out) {
        if (s->registry)
                put_u64(out, d->name, s->schemas.requests);
}

/* Disjoint results: their sum is every lookup. */
static void emit_schema_lookups(const metric_def_t *d,
                                const rt_metrics_snap_t *s, tern_buf_t *out) {
        const ingest_registry_stats_t *st = &s->schemas;
        const struct {
                const char *result;
                uint64_t n;
        } rows[] = {
            {"memory", st->from_memory},
            {"cache", st->from_cache},
            {"registry", st->from_registry},
            {"schema_dir", st->from_schema_dir},
            {"failed", st->failed - st->failed_cached},
            {"failed_cached", st->failed_cached},
        };
        if (!s->registry)
                return;
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                tern_buf_printf(out, "%s{result=\"%s\"} %llu\n", d->name,
                                rows[i].result, (unsigned long long)rows[i].n);
}

static void emit_schema_cache(const metric_def_t *d, const rt_metrics_snap_t *s,
                              tern_buf_t *out) {
        if (s->registry)
                put_u64(out, d->name, s->schemas.cache_write_failed);
}

static void emit_control(const metric_def_t *d, const rt_metrics_snap_t *s,
                         tern_buf_t *out) {
        if (!s->control)
                return;
        tern_buf_printf(out, "%s{result=\"applied\"} %llu\n", d->name,
                        (unsigned long long)s->control_applied);
        tern_buf_printf(out, "%s{result=\"rejected\"} %llu\n", d->name,
                        (unsigned long long)s->control_rejected);
}

static void emit_control_offset(const metric_def_t *d,
                                const rt_metrics_snap_t *s, tern_buf_t *out) {
        if (s->control && s->control_last_partition >= 0)
                tern_buf_printf(out, "%s{partition=\"%d\"} %lld\n", d->name,
                                (int)s->control_last_partition,
                                (long long)s->control_last_offset);
}

static void emit_ready(const metric_def_t *d, const rt_metrics_snap_t *s,
                       tern_buf_t *out) {
        tern_buf_printf(out, "%s %d\n", d->name, s->ready ? 1 : 0);
}

static void emit_build(const metric_def_t *d, const rt_metrics_snap_t *s,
                       tern_buf_t *out) {
        (void)s;
        tern_buf_printf(out, "%s{version=\"%s\"} 1\n", d->name, TERN_VERSION);
}

/* THE table: the formatter and `tern config --metrics` both read it (and
 * test 0031 checks deploy/ against the latter). labels: the label names,
 * comma-separated, each followed by its values in parentheses when they
 * are a fixed set. */
static const metric_def_t metric_defs[] = {
    {"tern_records_in_total", "counter", "",
     "Kafka records consumed from the input topic.", emit_records},
    {"tern_events_in_total", "counter",
     "type (view, click, cart, favorite, purchase, impression)",
     "Events decoded and applied, by event type.", emit_events},
    {"tern_dead_lettered_total", "counter", "",
     "Input records sent to the dead-letter topic.", emit_dead},
    {"tern_outputs_total", "counter", "topic",
     "Output records delivered, by topic.", emit_outputs},
    {"tern_batches_total", "counter", "",
     "Batches committed (state and offsets in one RocksDB write).",
     emit_batches},
    {"tern_batch_commit_seconds", "histogram", "le",
     "Time to commit a batch: deliveries awaited, then the state write.",
     emit_commit},
    {"tern_consumer_lag", "gauge", "topic, partition",
     "Messages behind the partition's high watermark (cached from fetch "
     "responses).",
     emit_lag},
    {"tern_model_logloss", "gauge", "model (ctr, churn)",
     "Progressive validation logloss of the published scores (NaN until "
     "labels arrive).",
     emit_logloss},
    {"tern_model_auc", "gauge", "model (ctr, churn)",
     "Progressive validation AUC of the published scores (NaN until both "
     "classes are seen).",
     emit_auc},
    {"tern_model_examples_total", "counter", "model (ctr, churn)",
     "Labelled examples the model learned.", emit_examples},
    {"tern_drift_events_total", "counter", "model (churn)",
     "Drift detections (each published on model-alerts).", emit_drift},
    {"tern_churn_alerts_total", "counter", "", "Churn alerts published.",
     emit_alerts},
    {"tern_rocksdb_size_bytes", "gauge", "",
     "State size: SST files plus memtables, all column families.",
     emit_rocksdb},
    {"tern_memory_bytes", "gauge",
     "part (memtables, block_cache, block_cache_pinned, table_readers, "
     "users, pools, heap_in_use, heap_held, heap_main_held, heap_main_free, "
     "heap_other_held, heap_other_free)",
     "What holds memory: RocksDB's memtables, block cache (and its pinned "
     "part: index and filter blocks kept in it) and table readers, the "
     "cached users' records (their pool slots; all read at "
     "most once a second); the slabs of the pools that keep the loop's "
     "long-lived objects (users, item ids and top lists, catalog "
     "entries, churn records, pending impressions) out of malloc; malloc's "
     "bytes in use and held "
     "from the system (glibc 2.33+; held minus in use is freed but not "
     "returned); the arenas' part of held, and of it the free bytes, for "
     "the main arena (the loop's) and the others (without mmapped "
     "blocks). The parts overlap (RocksDB's memory is malloc's): do not "
     "sum them.",
     emit_memory},
    {"tern_malloc_trims_total", "counter", "",
     "Times the loop handed malloc's free pages back to the system "
     "(state.malloc_trim_seconds).",
     emit_trims},
    {"tern_malloc_trim_seconds_total", "counter", "",
     "Time those hand-backs took: the loop processes no events meanwhile, "
     "and threads that allocate wait.",
     emit_trim_time},
    {"tern_config_version", "gauge", "",
     "Configuration version stamped on outputs.", emit_config},
    {"tern_schema_registry_requests_total", "counter", "",
     "HTTP requests made to the Schema Registry (none without "
     "input.schema_registry_url).",
     emit_schema_requests},
    {"tern_schema_registry_lookups_total", "counter",
     "result (memory, cache, registry, schema_dir, failed, failed_cached)",
     "Writer schemas looked up for unknown ids, by where they were found; "
     "failed: nowhere, failed_cached: refused at once by the negative cache.",
     emit_schema_lookups},
    {"tern_schema_registry_cache_write_failures_total", "counter", "",
     "Schemas fetched from the registry but not written to the disk cache.",
     emit_schema_cache},
    {"tern_control_records_total", "counter", "result (applied, rejected)",
     "Control records applied or rejected (dead-lettered); kept with the "
     "state.",
     emit_control},
    {"tern_control_last_applied_offset", "gauge", "partition",
     "Offset of the last applied control record (absent until known).",
     emit_control_offset},
    {"tern_ready", "gauge", "", "1 while /readyz answers 200.", emit_ready},
    {"tern_build_info", "gauge", "version", "Always 1; the build's version.",
     emit_build},
};
#define METRIC_DEFS_CNT (sizeof(metric_defs) / sizeof(metric_defs[0]))

void rt_metrics_format(const rt_metrics_snap_t *s, tern_buf_t *out) {
        for (size_t i = 0; i < METRIC_DEFS_CNT; i++) {
                const metric_def_t *d = &metric_defs[i];
                tern_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name,
                                d->help, d->name, d->type);
                d->emit(d, s, out);
        }
}

void rt_metrics_write_reference(FILE *out) {
        fprintf(out, "| metric | type | labels | what |\n|---|---|---|---|\n");
        for (size_t i = 0; i < METRIC_DEFS_CNT; i++) {
                const metric_def_t *d = &metric_defs[i];
                fprintf(out, "| `%s` | %s | %s | %s |\n", d->name, d->type,
                        *d->labels ? d->labels : "-", d->help);
        }
}
