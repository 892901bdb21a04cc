#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ingest/ingest_encode.h"
#include "../sinks/sink_schemas.h"
#include "rt_bench.h"
#include "rt_cmd.h"
#include "rt_kafka.h"
#include "rt_log.h"

/* Produce times of the last RING offsets of each partition: the latency
 * consumer trails the feeder by far less at the rates paced here. */
#define RING_BITS 15
#define RING      (1u << RING_BITS)
/* Outputs whose input's delivery report the feeder has not served yet wait
 * here, at most this many, for at most PENDING_NS. */
#define PENDING    4096
#define PENDING_NS 5000000000LL
/* Log-linear latency histogram over microseconds: exact below 64 us,
 * then 32 buckets per power of two (3% wide). */
#define HIST_BUCKETS 2048

typedef struct stamp {
        _Atomic int64_t offset; /* -1 = empty */
        _Atomic int64_t t_ns;
} stamp_t;

typedef struct hist {
        _Atomic uint64_t b[HIST_BUCKETS];
} hist_t;

typedef struct pending {
        int32_t partition;
        int64_t offset, recv_ns;
} pending_t;

struct rt_pace {
        rt_pace_opts_t o;
        rt_pipeline_t *pipeline;
        rd_kafka_t *producer, *consumer;
        pthread_t feeder_thr, reader_thr;
        int feeder_started, reader_started;
        stamp_t *ring; /* partitions * RING */
        _Atomic int64_t *end;
        _Atomic int feeding_done, pipeline_done;
        hist_t hist;     /* produce() -> recommendation received */
        hist_t hist_in;  /* produce() -> tern's poll returned the input */
        hist_t hist_out; /* tern's poll -> recommendation received */
        stamp_t *polled; /* partitions * RING: tern's poll time by offset */
        _Atomic uint64_t measured, unmatched;
        uint64_t sent;
        int64_t feed_ns;
        pending_t pending[PENDING];
        uint32_t n_pending;
        rt_pace_result_t *res; /* samples, written by the feeder */
        rt_pace_result_t own;
};

/* ---- histogram ---- */

static uint32_t hist_index(uint64_t us) {
        int msb, shift;
        if (us < 64)
                return (uint32_t)us;
        msb = 63 - __builtin_clzll(us);
        shift = msb - 5;
        if (shift > HIST_BUCKETS / 32 - 2)
                return HIST_BUCKETS - 1;
        return (uint32_t)(32 * shift + (us >> shift));
}

static double hist_value_us(uint32_t idx) {
        uint32_t shift, m;
        if (idx < 64)
                return idx;
        shift = idx / 32 - 1;
        m = idx - 32 * shift;
        return ((double)((uint64_t)m << shift)) +
               ((double)((uint64_t)1 << shift) - 1) / 2;
}

static double hist_quantile_ms(hist_t *h, double q) {
        uint64_t total = 0, seen = 0, want;
        for (uint32_t i = 0; i < HIST_BUCKETS; i++)
                total += atomic_load_explicit(&h->b[i], memory_order_relaxed);
        if (!total)
                return 0;
        want = (uint64_t)(q * (double)total);
        if (want >= total)
                want = total - 1;
        for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
                seen += atomic_load_explicit(&h->b[i], memory_order_relaxed);
                if (seen > want)
                        return hist_value_us(i) / 1000.0;
        }
        return 0;
}

static double hist_max_ms(hist_t *h) {
        for (uint32_t i = HIST_BUCKETS; i-- > 0;)
                if (atomic_load_explicit(&h->b[i], memory_order_relaxed))
                        return hist_value_us(i) / 1000.0;
        return 0;
}

/* ---- memory ---- */

static double proc_status_mb(const char *field) {
        char line[256];
        double kb = 0;
        size_t flen = strlen(field);
        FILE *f = fopen("/proc/self/status", "r");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, field, flen)) {
                        kb = strtod(line + flen, NULL);
                        break;
                }
        fclose(f);
        return kb / 1024.0;
}

double rt_bench_rss_mb(void) {
        return proc_status_mb("VmRSS:");
}

double rt_bench_hwm_mb(void) {
        return proc_status_mb("VmHWM:");
}

void rt_bench_rss_split(double *anon_mb, double *file_mb) {
        char line[256];
        double anon = 0, file = 0;
        FILE *f = fopen("/proc/self/smaps_rollup", "r");
        *anon_mb = *file_mb = 0;
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "Anonymous:", 10))
                        anon = strtod(line + 10, NULL);
                else if (!strncmp(line, "Pss_File:", 9))
                        file = strtod(line + 9, NULL);
        }
        fclose(f);
        *anon_mb = anon / 1024.0;
        *file_mb = file / 1024.0;
}

/* ---- feeder ---- */

/* ---- stamps by offset ---- */

static int ring_get(stamp_t *ring, int32_t part, int64_t off, int64_t *t_ns) {
        stamp_t *s = &ring[(size_t)part * RING + ((uint64_t)off & (RING - 1))];
        if (atomic_load_explicit(&s->offset, memory_order_acquire) != off)
                return -1;
        *t_ns = atomic_load_explicit(&s->t_ns, memory_order_relaxed);
        return atomic_load_explicit(&s->offset, memory_order_acquire) == off
                   ? 0
                   : -1;
}

/* Writers clear the offset first, readers check it before and after. */
static void ring_put(stamp_t *ring, int32_t part, int64_t off, int64_t t_ns) {
        stamp_t *s = &ring[(size_t)part * RING + ((uint64_t)off & (RING - 1))];
        atomic_store_explicit(&s->offset, -1, memory_order_release);
        atomic_store_explicit(&s->t_ns, t_ns, memory_order_relaxed);
        atomic_store_explicit(&s->offset, off, memory_order_release);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
        rt_pace_t *pc = opaque;
        (void)rk;
        if (m->err || m->partition < 0 || m->partition >= pc->o.partitions)
                return;
        ring_put(pc->ring, m->partition, m->offset,
                 (int64_t)(intptr_t)m->_private);
        if (m->offset + 1 > atomic_load(&pc->end[m->partition]))
                atomic_store(&pc->end[m->partition], m->offset + 1);
}

static void sleep_until(int64_t mono_ns) {
        int64_t d = mono_ns - rt_mono_ns();
        if (d > 20000) {
                struct timespec ts = {d / 1000000000, d % 1000000000};
                nanosleep(&ts, NULL);
        }
}

static void take_sample(rt_pace_t *pc, int64_t t0, uint64_t *last_sent,
                        int64_t *last_ns) {
        int64_t now = rt_mono_ns();
        rt_pace_sample_t s = {
            .t_s = (double)(now - t0) / 1e9,
            .rss_mb = rt_bench_rss_mb(),
            .eps = (double)(pc->sent - *last_sent) /
                   ((double)(now - *last_ns) / 1e9),
            .p99_ms = hist_quantile_ms(&pc->hist, 0.99),
        };
        rt_bench_rss_split(&s.anon_mb, &s.file_mb);
        if (pc->o.metrics) {
                rt_metrics_snap_t *m = malloc(sizeof(*m)); /* ~300 KiB */
                if (m) {
                        rt_metrics_read(pc->o.metrics, m);
                        s.memtables_mb =
                            (double)m->rocksdb_mem.memtables / 1048576.0;
                        s.block_cache_mb =
                            (double)m->rocksdb_mem.block_cache / 1048576.0;
                        s.table_readers_mb =
                            (double)m->rocksdb_mem.table_readers / 1048576.0;
                        s.heap_in_use_mb = (double)m->heap_in_use / 1048576.0;
                        s.heap_held_mb = (double)m->heap_held / 1048576.0;
                        s.main_held_mb = (double)m->heap_main_held / 1048576.0;
                        s.main_free_mb = (double)m->heap_main_free / 1048576.0;
                        s.other_held_mb =
                            (double)m->heap_other_held / 1048576.0;
                        s.other_free_mb =
                            (double)m->heap_other_free / 1048576.0;
                        s.pools_mb = (double)m->pool_bytes / 1048576.0;
                        s.malloc_trims = m->malloc_trims;
                        s.malloc_trim_ms = m->malloc_trim_seconds * 1e3;
                        s.l0_files = m->rocksdb_mem.l0_files_max;
                        s.sorted_runs = m->rocksdb_mem.sorted_runs_max;
                        s.compactions_running =
                            m->rocksdb_mem.compactions_running;
                        s.pending_compaction_mb =
                            m->rocksdb_mem.pending_compaction_bytes >> 20;
                        s.delayed_write_rate =
                            m->rocksdb_mem.delayed_write_rate;
                        s.cached_users = m->cached_users;
                        s.users_mb = (double)m->cached_user_bytes / 1048576.0;
                        s.cached_pairs = m->cached_pairs;
                        s.cached_items = m->cached_items;
                        s.cached_top_lists = m->cached_top_lists;
                        s.pairs_evicted = m->pairs_evicted;
                        s.pair_reads = m->pair_reads;
                        s.top_loads = m->top_loads;
                        s.pair_filter_zeros = m->pair_filter_zeros;
                        s.commits = m->engine_commits;
                        s.churn_users = m->churn_users;
                        s.churn_pending = m->churn_pending;
                        s.churn_timers = m->churn_timers;
                        for (uint32_t i = 0; i < m->n_lag; i++)
                                s.lag += m->lag[i].messages;
                        free(m);
                }
        }
        if (pc->res->n_samples < RT_PACE_MAX_SAMPLES)
                pc->res->samples[pc->res->n_samples++] = s;
        fprintf(
            stderr,
            "%s: t=%6.0f s  rss %7.1f MiB (anon %.1f file %.1f)  "
            "memtables %.1f  block-cache %.1f  table-readers %.1f  "
            "heap in use %.1f held %.1f MiB (trims %llu, %.1f ms)  arenas: "
            "main %.1f free %.1f, others %.1f free %.1f MiB  pools %.1f MiB  "
            "L0 files "
            "%llu  sorted runs "
            "%llu  compactions %llu  compaction owed %llu MiB  delayed "
            "writes %llu B/s  "
            "users %llu (%.1f MiB)  items %llu (%llu loaded)  pairs %llu "
            "(evicted "
            "%llu, read back %llu, %llu top lists loaded, %llu spared "
            "by the filter, in %llu commits)  "
            "churn cached %llu points %llu "
            "timers %llu  in %5.0f ev/s  lag %lld  recs %llu  "
            "p99 %.2f ms\n",
            pc->o.label, s.t_s, s.rss_mb, s.anon_mb, s.file_mb, s.memtables_mb,
            s.block_cache_mb, s.table_readers_mb, s.heap_in_use_mb,
            s.heap_held_mb, (unsigned long long)s.malloc_trims,
            s.malloc_trim_ms, s.main_held_mb, s.main_free_mb, s.other_held_mb,
            s.other_free_mb, s.pools_mb, (unsigned long long)s.l0_files,
            (unsigned long long)s.sorted_runs,
            (unsigned long long)s.compactions_running,
            (unsigned long long)s.pending_compaction_mb,
            (unsigned long long)s.delayed_write_rate,
            (unsigned long long)s.cached_users, s.users_mb,
            (unsigned long long)s.cached_items,
            (unsigned long long)s.cached_top_lists,
            (unsigned long long)s.cached_pairs,
            (unsigned long long)s.pairs_evicted,
            (unsigned long long)s.pair_reads, (unsigned long long)s.top_loads,
            (unsigned long long)s.pair_filter_zeros,
            (unsigned long long)s.commits, (unsigned long long)s.churn_users,
            (unsigned long long)s.churn_pending,
            (unsigned long long)s.churn_timers, s.eps, (long long)s.lag,
            (unsigned long long)atomic_load(&pc->measured), s.p99_ms);
        *last_sent = pc->sent;
        *last_ns = now;
}

/* stamp 0: a warm-up event, fed but not measured. */
static int feed_one(rt_pace_t *pc, tern_buf_t *buf, int stamp) {
        tern_event_t ev;
        tern_event_clear(&ev);
        ingest_gen_next(pc->o.gen, &ev);
        tern_buf_reset(buf);
        if (ingest_encode_event(&ev, pc->o.conf->wire_format == 2 ? 1 : -1,
                                buf))
                return -1;
        for (;;) {
                int64_t now = stamp ? rt_mono_ns() : 0;
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    pc->producer, RD_KAFKA_V_TOPIC(pc->o.input_topic),
                    RD_KAFKA_V_KEY((void *)ev.user_id.ptr, ev.user_id.len),
                    RD_KAFKA_V_VALUE(buf->data, buf->len),
                    RD_KAFKA_V_TIMESTAMP(ev.ts_ms),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)now),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return -1;
                rd_kafka_poll(pc->producer, 1);
        }
        pc->sent++;
        rd_kafka_poll(pc->producer, 0);
        return 0;
}

/* The pipeline joins its consumer group first (seconds on the embedded
 * broker): events fed before it is assigned would measure the join. */
static void wait_assigned(rt_pace_t *pc) {
        int64_t give_up = rt_mono_ns() + 60000000000LL;
        for (int i = 0; i < pc->o.partitions && !rt_stop; i++)
                while (rt_pipeline_resumed_from(pc->pipeline, i) < 0 &&
                       !rt_stop && rt_mono_ns() < give_up)
                        sleep_until(rt_mono_ns() + 10000000);
}

static void *feeder_main(void *arg) {
        rt_pace_t *pc = arg;
        tern_buf_t buf;
        int64_t t0, next_sample, last_ns;
        int64_t stop, warm_end;
        int64_t every = (int64_t)(pc->o.sample_every_s * 1e9);
        uint64_t last_sent = 0;
        double gap_ns = 1e9 / pc->o.rate;
        pthread_setname_np(pthread_self(), "bench:feed");
        wait_assigned(pc);
        t0 = last_ns = rt_mono_ns();
        warm_end = t0 + (int64_t)(pc->o.warmup_s * 1e9);
        stop = warm_end + (int64_t)(pc->o.seconds * 1e9);
        tern_buf_init(&buf, 1 << 20);
        next_sample = every > 0 ? t0 + every : INT64_MAX;
        if (every > 0)
                take_sample(pc, t0, &last_sent, &last_ns);
        while (!rt_stop && rt_mono_ns() < stop) {
                sleep_until(t0 + (int64_t)((double)pc->sent * gap_ns));
                if (feed_one(pc, &buf, rt_mono_ns() >= warm_end)) {
                        RT_LOG(RT_LOG_ERROR, "bench", "paced produce failed");
                        break;
                }
                if (rt_mono_ns() >= next_sample) {
                        take_sample(pc, t0, &last_sent, &last_ns);
                        next_sample += every;
                }
        }
        pc->feed_ns = rt_mono_ns() - t0;
        rd_kafka_flush(pc->producer, 60000);
        if (every > 0)
                take_sample(pc, t0, &last_sent, &last_ns);
        for (int i = 0; i < pc->o.partitions; i++)
                rt_pipeline_drain_at(pc->pipeline, i, atomic_load(&pc->end[i]));
        atomic_store(&pc->feeding_done, 1);
        tern_buf_free(&buf);
        return NULL;
}

/* ---- latency consumer ---- */

static int lookup(rt_pace_t *pc, int32_t part, int64_t off, int64_t *t_ns) {
        if (part < 0 || part >= pc->o.partitions || off < 0)
                return -1;
        return ring_get(pc->ring, part, off, t_ns);
}

/* The pipeline's poll observer (loop thread). */
static void on_polled(void *opaque, int32_t part, int64_t off,
                      int64_t mono_ns) {
        rt_pace_t *pc = opaque;
        if (part >= 0 && part < pc->o.partitions && off >= 0)
                ring_put(pc->polled, part, off, mono_ns);
}

static void hist_add(hist_t *h, int64_t ns) {
        uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
        atomic_fetch_add_explicit(&h->b[hist_index(us)], 1,
                                  memory_order_relaxed);
}

/* The legs need tern's poll time too; an input whose poll time was
 * overwritten in its ring slot counts in the total only. */
static void record(rt_pace_t *pc, int32_t part, int64_t off, int64_t sent_ns,
                   int64_t recv_ns) {
        int64_t polled_ns;
        hist_add(&pc->hist, recv_ns - sent_ns);
        atomic_fetch_add_explicit(&pc->measured, 1, memory_order_relaxed);
        if (ring_get(pc->polled, part, off, &polled_ns) || !polled_ns)
                return;
        hist_add(&pc->hist_in, polled_ns - sent_ns);
        hist_add(&pc->hist_out, recv_ns - polled_ns);
}

static void match(rt_pace_t *pc, int32_t part, int64_t off, int64_t recv_ns) {
        int64_t t_ns;
        if (!lookup(pc, part, off, &t_ns)) {
                if (t_ns)
                        record(pc, part, off, t_ns, recv_ns);
                return;
        }
        if (pc->n_pending < PENDING)
                pc->pending[pc->n_pending++] = (pending_t){part, off, recv_ns};
        else
                atomic_fetch_add(&pc->unmatched, 1);
}

static void retry_pending(rt_pace_t *pc, int give_up) {
        uint32_t kept = 0;
        int64_t now = rt_mono_ns();
        for (uint32_t i = 0; i < pc->n_pending; i++) {
                pending_t *q = &pc->pending[i];
                int64_t t_ns;
                if (!lookup(pc, q->partition, q->offset, &t_ns)) {
                        if (t_ns)
                                record(pc, q->partition, q->offset, t_ns,
                                       q->recv_ns);
                } else if (give_up || now - q->recv_ns > PENDING_NS)
                        atomic_fetch_add(&pc->unmatched, 1);
                else
                        pc->pending[kept++] = *q;
        }
        pc->n_pending = kept;
}

static int source_of(avro_value_t *v, const rd_kafka_message_t *m,
                     int32_t *part, int64_t *off) {
        avro_reader_t rd = avro_reader_memory(m->payload, (int64_t)m->len);
        avro_value_t f;
        int rc = avro_value_read(rd, v) ||
                 avro_value_get_by_name(v, "source_partition", &f, NULL) ||
                 avro_value_get_int(&f, part) ||
                 avro_value_get_by_name(v, "source_offset", &f, NULL) ||
                 avro_value_get_long(&f, off);
        avro_reader_free(rd);
        return rc;
}

static void *reader_main(void *arg) {
        rt_pace_t *pc = arg;
        avro_schema_t schema = NULL;
        avro_value_iface_t *iface = NULL;
        avro_value_t v;
        int64_t idle_since = 0;
        pthread_setname_np(pthread_self(), "bench:read");
        if (avro_schema_from_json_length(sink_recommendation_schema,
                                         strlen(sink_recommendation_schema),
                                         &schema) ||
            !(iface = avro_generic_class_from_schema(schema)) ||
            avro_generic_value_new(iface, &v)) {
                RT_LOG(RT_LOG_ERROR, "bench", "avro: %s", avro_strerror());
                goto out;
        }
        for (;;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(pc->consumer, 5);
                int64_t now = rt_mono_ns();
                if (m && !m->err) {
                        int32_t part;
                        int64_t off;
                        if (!source_of(&v, m, &part, &off))
                                match(pc, part, off, now);
                        idle_since = 0;
                }
                if (m)
                        rd_kafka_message_destroy(m);
                if (pc->n_pending)
                        retry_pending(pc, 0);
                if (!atomic_load(&pc->pipeline_done))
                        continue;
                if (m)
                        continue;
                if (!idle_since)
                        idle_since = now;
                else if (now - idle_since > 1000000000LL)
                        break;
        }
        retry_pending(pc, 1);
        avro_value_decref(&v);
out:
        if (iface)
                avro_value_iface_decref(iface);
        if (schema)
                avro_schema_decref(schema);
        return NULL;
}

/* ---- lifecycle ---- */

static rd_kafka_t *make_producer(rt_pace_t *pc, char *errstr, size_t size) {
        rd_kafka_conf_t *kc =
            rt_kafka_producer_conf(pc->o.conf, pc->o.brokers, errstr, size);
        char v[16];
        if (!kc)
                return NULL;
        snprintf(v, sizeof(v), "%d", pc->o.linger_ms);
        rd_kafka_conf_set(kc, "linger.ms", v, NULL, 0);
        rd_kafka_conf_set_opaque(kc, pc);
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        return rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, size);
}

static rd_kafka_t *make_consumer(rt_pace_t *pc, char *errstr, size_t size) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_t *rk;
        char v[16];
        rd_kafka_conf_set(kc, "bootstrap.servers", pc->o.brokers, NULL, 0);
        rd_kafka_conf_set(kc, "group.id", "bench-latency", NULL, 0);
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
        snprintf(v, sizeof(v), "%d", pc->o.fetch_wait_ms);
        rd_kafka_conf_set(kc, "fetch.wait.max.ms", v, NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, size);
        if (!rk)
                return NULL;
        rd_kafka_poll_set_consumer(rk);
        parts = rd_kafka_topic_partition_list_new(pc->o.partitions);
        for (int p = 0; p < pc->o.partitions; p++)
                rd_kafka_topic_partition_list_add(parts, pc->o.recs_topic, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        return rk;
}

static void pace_free(rt_pace_t *pc) {
        if (pc->consumer) {
                rd_kafka_consumer_close(pc->consumer);
                rd_kafka_destroy(pc->consumer);
        }
        if (pc->producer)
                rd_kafka_destroy(pc->producer);
        if (pc->pipeline)
                rt_pipeline_set_poll_observer(pc->pipeline, NULL, NULL);
        free(pc->ring);
        free(pc->polled);
        free(pc->end);
        free(pc);
}

rt_pace_t *rt_pace_start(const rt_pace_opts_t *o, rt_pipeline_t *p,
                         char *errstr, size_t errstr_size) {
        rt_pace_t *pc = calloc(1, sizeof(*pc));
        size_t slots = (size_t)o->partitions * RING;
        if (!pc)
                return NULL;
        pc->o = *o;
        pc->pipeline = p;
        pc->res = &pc->own;
        pc->ring = malloc(slots * sizeof(*pc->ring));
        pc->polled = malloc(slots * sizeof(*pc->polled));
        pc->end = calloc((size_t)o->partitions, sizeof(*pc->end));
        if (!pc->ring || !pc->polled || !pc->end) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "bench: memory");
                goto fail;
        }
        for (size_t i = 0; i < slots; i++) {
                atomic_init(&pc->ring[i].offset, -1);
                atomic_init(&pc->polled[i].offset, -1);
        }
        rt_pipeline_set_poll_observer(p, on_polled, pc);
        if (!(pc->producer = make_producer(pc, errstr, errstr_size)) ||
            !(pc->consumer = make_consumer(pc, errstr, errstr_size)))
                goto fail;
        if (pthread_create(&pc->reader_thr, NULL, reader_main, pc))
                goto fail_thread;
        pc->reader_started = 1;
        if (pthread_create(&pc->feeder_thr, NULL, feeder_main, pc))
                goto fail_thread;
        pc->feeder_started = 1;
        return pc;
fail_thread:
        tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "bench: threads");
        if (pc->reader_started) {
                atomic_store(&pc->pipeline_done, 1);
                pthread_join(pc->reader_thr, NULL);
        }
fail:
        pace_free(pc);
        return NULL;
}

void rt_pace_join(rt_pace_t *pc, rt_pace_result_t *out) {
        rt_pace_result_t *r = pc->res;
        pthread_join(pc->feeder_thr, NULL);
        atomic_store(&pc->pipeline_done, 1);
        pthread_join(pc->reader_thr, NULL);
        r->sent = pc->sent;
        r->measured = atomic_load(&pc->measured);
        r->unmatched = atomic_load(&pc->unmatched);
        r->achieved_eps = pc->feed_ns > 0
                              ? (double)pc->sent / ((double)pc->feed_ns / 1e9)
                              : 0;
        r->p50_ms = hist_quantile_ms(&pc->hist, 0.50);
        r->p99_ms = hist_quantile_ms(&pc->hist, 0.99);
        r->p999_ms = hist_quantile_ms(&pc->hist, 0.999);
        r->max_ms = hist_max_ms(&pc->hist);
        r->in_p50_ms = hist_quantile_ms(&pc->hist_in, 0.50);
        r->in_p99_ms = hist_quantile_ms(&pc->hist_in, 0.99);
        r->out_p50_ms = hist_quantile_ms(&pc->hist_out, 0.50);
        r->out_p99_ms = hist_quantile_ms(&pc->hist_out, 0.99);
        *out = *r;
        pace_free(pc);
}
