#include "rt_pipeline.h"

#include <librdkafka/rdkafka.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../features/feat_engine.h"
#include "../ingest/ingest_decode.h"
#include "../models/model_recs.h"
#include "../sinks/sink_producer.h"
#include "../sinks/sink_records.h"
#include "rt_churn.h"
#include "rt_cmd.h"
#include "rt_control.h"
#include "rt_ctr.h"
#include "rt_emit.h"
#include "rt_kafka.h"
#include "rt_log.h"
#include "rt_schemas.h"
#include "rt_metrics.h"
#include "rt_stages.h"

#define RECORD_BUF_MAX (8u << 20)

struct rt_pipeline {
        tern_conf_t *live; /* our copy; rt_control changes live keys */
        rt_control_t *control;
        tern_conf_t *(*reload)(void *opaque, char *errstr, size_t errstr_size);
        void *reload_opaque;
        rt_poll_observer_t *on_polled; /* NULL: none */
        void *polled_opaque;
        rd_kafka_t *consumer;
        sink_producer_t *producer;
        feat_store_t *store;
        feat_engine_t *engine;
        ingest_decoder_t *decoder;
        rt_schemas_t *schemas; /* NULL without a Schema Registry */
        model_recs_t *recs;
        model_nb_source_t nb_source;
        int emit;
        rt_emit_t emit_to; /* for the modules: CTR, churn */
        rt_ctr_t *ctr;     /* NULL when ctr.enabled is false */
        FILE *ctr_trace;
        rt_churn_t *churn; /* NULL when churn.enabled is false */
        /* NULL without an HTTP endpoint; borrowed (rt_metrics.h). */
        rt_metrics_t *metrics;

        /* The batch in progress. */
        uint64_t batch_events;
        int64_t batch_started_ns;
        int64_t batch_next[RT_MAX_PARTITIONS]; /* -1 = untouched */
        char *input_topic;
        /* The committed batch whose state RocksDB is still writing
         * (feat_engine_commit_begin): its offsets count once it landed. */
        feat_offset_t landing[RT_MAX_PARTITIONS];
        uint32_t n_landing;
        int landing_pending;
        int64_t landing_took_ns; /* the loop's part of that commit */

        tern_buf_t value_buf;
        tern_buf_t json_buf;
        tern_err_t fatal; /* the first fatal error */
        uint64_t dlq_logged;

        /* Read by other threads. */
        _Atomic int64_t position[RT_MAX_PARTITIONS];
        _Atomic int64_t committed[RT_MAX_PARTITIONS];
        _Atomic int64_t drain_end[RT_MAX_PARTITIONS];
        _Atomic int64_t resumed_from[RT_MAX_PARTITIONS];
        _Atomic int drain_targets;
        _Atomic uint64_t st_records, st_events, st_dlq, st_recs, st_batches;
        _Atomic uint64_t st_by_type[TERN_EV__CNT];
        _Atomic uint64_t st_commit_ns, st_commit_ns_max;
        _Atomic int64_t first_record_ns, last_commit_ns;
        /* Wall time per stage, summed (the loop is one thread). */
        _Atomic uint64_t ns_decode, ns_state, ns_recs, ns_produce, ns_flush,
            ns_write, ns_models;
        int64_t next_trim_ns; /* monotonic */
        _Atomic uint64_t st_trims, st_trim_ns;
};

#define STAGE_ADD(p, field, since)                                             \
        atomic_fetch_add_explicit(&(p)->field,                                 \
                                  (uint64_t)(rt_mono_ns() - (since)),          \
                                  memory_order_relaxed)

/* The models' time without the sends they make (those count as produce). */
static void models_add(struct rt_pipeline *p, int64_t since,
                       uint64_t produce_before) {
        uint64_t sent =
            atomic_load_explicit(&p->ns_produce, memory_order_relaxed) -
            produce_before;
        uint64_t took = (uint64_t)(rt_mono_ns() - since);
        atomic_fetch_add_explicit(&p->ns_models, took > sent ? took - sent : 0,
                                  memory_order_relaxed);
}

/* ---- stats and drain ---- */

void rt_pipeline_stats(const rt_pipeline_t *p, rt_pipeline_stats_t *out) {
        memset(out, 0, sizeof(*out));
        out->records_in = atomic_load(&p->st_records);
        out->events_in = atomic_load(&p->st_events);
        for (int t = 0; t < TERN_EV__CNT; t++)
                out->by_type[t] = atomic_load(&p->st_by_type[t]);
        out->dead_lettered = atomic_load(&p->st_dlq);
        out->recommendations = atomic_load(&p->st_recs);
        out->batches = atomic_load(&p->st_batches);
        out->commit_ns_total = atomic_load(&p->st_commit_ns);
        out->commit_ns_max = atomic_load(&p->st_commit_ns_max);
        out->first_record_ns = atomic_load(&p->first_record_ns);
        out->ns_decode = atomic_load(&p->ns_decode);
        out->ns_state = atomic_load(&p->ns_state);
        out->ns_recs = atomic_load(&p->ns_recs);
        out->ns_produce = atomic_load(&p->ns_produce);
        out->ns_flush = atomic_load(&p->ns_flush);
        out->ns_write = atomic_load(&p->ns_write);
        out->ns_models = atomic_load(&p->ns_models);
        out->last_commit_ns = atomic_load(&p->last_commit_ns);
        out->malloc_trims = atomic_load(&p->st_trims);
        out->malloc_trim_ns = atomic_load(&p->st_trim_ns);
}

int64_t rt_pipeline_config_version(const rt_pipeline_t *p) {
        return p->live->config_version;
}

void rt_pipeline_ctr_json(const rt_pipeline_t *p, tern_buf_t *out) {
        if (p->ctr)
                rt_ctr_json(p->ctr, out);
        else
                tern_buf_printf(out, "null");
}

void rt_pipeline_outputs_json(const rt_pipeline_t *p, char *buf, size_t size) {
        const sink_topic_count_t *counts;
        uint32_t n = sink_producer_counts(p->producer, &counts);
        size_t len = (size_t)snprintf(buf, size, "{");
        for (uint32_t i = 0; i < n && len < size; i++)
                len += (size_t)snprintf(
                    buf + len, size - len, "%s\"%s\":%llu", i ? "," : "",
                    counts[i].topic, (unsigned long long)counts[i].delivered);
        if (len < size)
                snprintf(buf + len, size - len, "}");
}

void rt_pipeline_churn_json(const rt_pipeline_t *p, tern_buf_t *out) {
        if (p->churn)
                rt_churn_json(p->churn, out);
        else
                tern_buf_printf(out, "null");
}

void rt_pipeline_drain_at(rt_pipeline_t *p, int32_t partition,
                          int64_t end_offset) {
        if (partition < 0 || partition >= RT_MAX_PARTITIONS)
                return;
        if (atomic_exchange(&p->drain_end[partition], end_offset) < 0)
                atomic_fetch_add(&p->drain_targets, 1);
}

int64_t rt_pipeline_position(const rt_pipeline_t *p, int32_t partition) {
        if (partition < 0 || partition >= RT_MAX_PARTITIONS)
                return -1;
        return atomic_load(&p->position[partition]);
}

int64_t rt_pipeline_stored_offset(rt_pipeline_t *p, int32_t partition) {
        char errstr[512];
        int64_t next = 0;
        int found = 0;
        if (feat_store_offset_get(p->store, p->input_topic, partition, &next,
                                  &found, errstr, sizeof(errstr)) != TERN_OK ||
            !found)
                return 0;
        return next;
}

int64_t rt_pipeline_resumed_from(const rt_pipeline_t *p, int32_t partition) {
        if (partition < 0 || partition >= RT_MAX_PARTITIONS)
                return -1;
        return atomic_load(&p->resumed_from[partition]);
}

int64_t rt_pipeline_committed(const rt_pipeline_t *p, int32_t partition) {
        if (partition < 0 || partition >= RT_MAX_PARTITIONS)
                return -1;
        return atomic_load(&p->committed[partition]);
}

static int drained(rt_pipeline_t *p) {
        if (atomic_load(&p->drain_targets) == 0)
                return 0;
        for (int i = 0; i < RT_MAX_PARTITIONS; i++) {
                int64_t end = atomic_load(&p->drain_end[i]);
                if (end >= 0 && atomic_load(&p->committed[i]) < end)
                        return 0;
        }
        return 1;
}

/* ---- commit ---- */

static tern_code_t commit_to_kafka(rt_pipeline_t *p, const feat_offset_t *offs,
                                   uint32_t n) {
        /* Kafka's committed offsets are only a monitoring copy (consumer
         * lag tools); tern resumes from the offsets stored in RocksDB. */
        rd_kafka_topic_partition_list_t *list;
        if (!n)
                return TERN_OK;
        list = rd_kafka_topic_partition_list_new((int)n);
        for (uint32_t i = 0; i < n; i++)
                rd_kafka_topic_partition_list_add(list, offs[i].topic,
                                                  offs[i].partition)
                    ->offset = offs[i].next_offset;
        rd_kafka_commit(p->consumer, list, 1 /* async */);
        rd_kafka_topic_partition_list_destroy(list);
        return TERN_OK;
}

/* The batch in flight has reached RocksDB (or failed: fatal): its offsets
 * are committed now. Waits for the write. */
static tern_code_t land_batch(rt_pipeline_t *p) {
        char errstr[1024];
        int64_t t0 = rt_mono_ns();
        tern_code_t rc;
        if (!p->landing_pending)
                return TERN_OK;
        p->landing_pending = 0;
        rc = feat_engine_commit_end(p->engine, errstr, sizeof(errstr));
        STAGE_ADD(p, ns_write, t0);
        if (rc != TERN_OK) {
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                             "state commit failed: %s", errstr);
                return rc;
        }
        for (uint32_t i = 0; i < p->n_landing; i++)
                atomic_store(&p->committed[p->landing[i].partition],
                             p->landing[i].next_offset);
        commit_to_kafka(p, p->landing, p->n_landing);
        atomic_fetch_add(&p->st_commit_ns, (uint64_t)p->landing_took_ns);
        if ((uint64_t)p->landing_took_ns > atomic_load(&p->st_commit_ns_max))
                atomic_store(&p->st_commit_ns_max,
                             (uint64_t)p->landing_took_ns);
        atomic_fetch_add(&p->st_batches, 1);
        atomic_store(&p->last_commit_ns, rt_mono_ns());
        rt_metrics_committed(p->metrics, p, p->landing_took_ns);
        return TERN_OK;
}

/* glibc keeps the memory freed in its arenas for reuse, and counts it in
 * RSS until it is. malloc_trim gives back the pages wholly free inside the
 * arenas (MADV_DONTNEED), not only the top; in a steady soak they were
 * back within 30 s, hence off by default (a process that should shrink
 * after a burst may want it). It locks each arena while it walks its free
 * chunks, and every thread that allocates meanwhile waits, hence at a
 * commit, once the previous batch has landed and before the next is
 * handed to the writer thread, and at most this often. */
static void trim_malloc(rt_pipeline_t *p) {
#if defined(__GLIBC__)
        int64_t every_ns = p->live->malloc_trim_seconds * 1000000000;
        int64_t started;
        if (!every_ns)
                return;
        started = rt_mono_ns();
        if (started < p->next_trim_ns)
                return; /* the first at the first commit */
        malloc_trim(0);
        p->next_trim_ns = started + every_ns;
        atomic_fetch_add(&p->st_trims, 1);
        STAGE_ADD(p, st_trim_ns, started);
#else
        (void)p;
#endif
}

/* Outputs delivered, then state and offsets handed to RocksDB's writer
 * thread in one batch; the loop goes on with the next batch meanwhile and
 * the batch lands at the next commit, when the loop is idle, or at once
 * when the engine wrote it in place (feat_engine_commit_begin). */
static tern_code_t commit_batch(rt_pipeline_t *p) {
        char errstr[1024];
        int64_t t0 = rt_mono_ns(), t1;
        int landed = 0;
        tern_code_t rc;
        if (tern_err_is_set(&p->fatal))
                return p->fatal.code;
        if (p->batch_events == 0 && !rt_control_dirty(p->control))
                return land_batch(p);
        rc = sink_producer_flush(p->producer, (int)p->live->delivery_timeout_ms,
                                 errstr, sizeof(errstr));
        STAGE_ADD(p, ns_flush, t0);
        if (rc != TERN_OK) {
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                             "outputs of the batch were not delivered, batch "
                             "not committed: %s",
                             errstr);
                return rc;
        }
        if ((rc = land_batch(p)) != TERN_OK)
                return rc;
        trim_malloc(p);
        p->n_landing = 0;
        for (int i = 0; i < RT_MAX_PARTITIONS; i++)
                if (p->batch_next[i] >= 0) {
                        p->landing[p->n_landing++] = (feat_offset_t){
                            p->input_topic, i, p->batch_next[i]};
                        p->batch_next[i] = -1;
                }
        t1 = rt_mono_ns();
        rc = feat_engine_commit_begin(p->engine, p->landing, p->n_landing,
                                      &landed, errstr, sizeof(errstr));
        STAGE_ADD(p, ns_write, t1);
        if (rc != TERN_OK) {
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                             "state commit failed: %s", errstr);
                return rc;
        }
        p->batch_events = 0;
        p->landing_pending = 1;
        p->landing_took_ns = rt_mono_ns() - t0;
        return landed ? land_batch(p) : TERN_OK;
}

/* Everything processed is in RocksDB when it returns (partitions revoked,
 * stopping, reading stored offsets). */
static tern_code_t commit_and_land(rt_pipeline_t *p) {
        tern_code_t rc = commit_batch(p);
        return rc != TERN_OK ? rc : land_batch(p);
}

/* ---- per message ---- */

static void note_offset(rt_pipeline_t *p, const rd_kafka_message_t *msg) {
        if (msg->partition < 0 || msg->partition >= RT_MAX_PARTITIONS)
                return;
        p->batch_next[msg->partition] = msg->offset + 1;
        atomic_store(&p->position[msg->partition], msg->offset + 1);
        if (p->batch_events++ == 0)
                p->batch_started_ns = rt_mono_ns();
}

static void send_record(rt_pipeline_t *p, const char *topic, const void *key,
                        size_t klen, const tern_buf_t *value,
                        const tern_buf_t *json) {
        char errstr[512];
        tern_code_t rc;
        if (value->overflow || (json && json->overflow)) {
                tern_err_set(&p->fatal, TERN_ERR_LIMIT, TERN_ERR_F_FATAL,
                             "output record for %s larger than %u bytes", topic,
                             RECORD_BUF_MAX);
                return;
        }
        int64_t t0 = rt_mono_ns();
        rc = sink_producer_send(
            p->producer, topic, key, klen, value->data, value->len,
            p->emit && json ? (const char *)json->data : NULL,
            p->emit && json ? json->len : 0, (int)p->live->delivery_timeout_ms,
            errstr, sizeof(errstr));
        STAGE_ADD(p, ns_produce, t0);
        if (rc != TERN_OK)
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL, "%s", errstr);
}

static void send_output(rt_pipeline_t *p, const char *topic, const void *key,
                        size_t klen) {
        send_record(p, topic, key, klen, &p->value_buf, &p->json_buf);
}

/* rt_emit_t.send for the modules (CTR, churn). */
static void emit_record(void *opaque, const char *topic, const void *key,
                        size_t klen, const tern_buf_t *value,
                        const tern_buf_t *json) {
        send_record(opaque, topic, key, klen, value, json);
}

/* A dead letter carries the raw record, but at most this many bytes of
 * it: the whole of a record near or over input.max_record_bytes (1 MiB)
 * made a dead letter over the producer's message.max.bytes (1,000,000),
 * its produce failed, the pipeline stopped and every restart met the same
 * record again. 512 KiB leaves room for the other fields. */
#define DLQ_RAW_MAX ((size_t)512 << 10)

static void dead_letter(rt_pipeline_t *p, const rd_kafka_message_t *msg,
                        const char *reason, const char *error) {
        rd_kafka_timestamp_type_t ts_type;
        char cut[768];
        sink_dead_letter_t d = {
            .raw = msg->payload ? msg->payload : (const void *)"",
            .raw_len = msg->len > DLQ_RAW_MAX ? DLQ_RAW_MAX : msg->len,
            .error = error,
            .reason = reason ? reason : "decode",
            .source = {p->input_topic, msg->partition, msg->offset},
            .failed_at = rd_kafka_message_timestamp(msg, &ts_type),
            .config_version = rt_pipeline_config_version(p),
        };
        if (msg->len > DLQ_RAW_MAX) {
                snprintf(cut, sizeof(cut), "%s (raw: first %zu of %zu bytes)",
                         error, DLQ_RAW_MAX, msg->len);
                d.error = cut;
        }
        if (p->dlq_logged++ < 3 || p->dlq_logged % 1000 == 0)
                RT_LOG_AT(RT_LOG_WARN, "ingest", p->input_topic, msg->partition,
                          msg->offset, "dead-lettered (%s): %s", d.reason,
                          error);
        tern_buf_reset(&p->value_buf);
        tern_buf_reset(&p->json_buf);
        sink_dead_letter_avro(&d, &p->value_buf);
        if (p->emit)
                sink_dead_letter_json(&d, &p->json_buf);
        send_output(p, p->live->topic_dead_letter, msg->key, msg->key_len);
        atomic_fetch_add(&p->st_dlq, 1);
}

static void publish_recs(rt_pipeline_t *p, const tern_event_t *ev,
                         const feat_user_t *user) {
        model_recs_result_t res;
        sink_scored_item_t items[MODEL_RECS_MAX_N];
        sink_recommendation_t rec;
        char errstr[512];
        int64_t t0 = rt_mono_ns();
        model_item_scorer_t scorer = {0};
        sink_model_version_t versions[1];
        uint32_t n_versions = 0;
        tern_code_t rc;
        if (p->ctr) {
                scorer = rt_ctr_scorer(p->ctr, ev, user);
                versions[n_versions++] =
                    (sink_model_version_t){"ctr", scorer.version};
        }
        rc = model_recs_compute_blend(p->recs, user, &p->nb_source, &scorer,
                                      &res, errstr, sizeof(errstr));
        if (rc != TERN_OK) {
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                             "recommendations: %s", errstr);
                return;
        }
        for (uint32_t i = 0; i < res.n; i++)
                items[i] = (sink_scored_item_t){
                    res.items[i].item, res.items[i].len, res.items[i].score};
        rec = (sink_recommendation_t){
            .user_id = ev->user_id.ptr,
            .user_len = ev->user_id.len,
            .n_items = res.n,
            .items = items,
            .strategy = res.strategy,
            .config_version = p->live->config_version,
            .n_models = n_versions,
            .models = versions,
            .source = {ev->src_topic, ev->src_partition, ev->src_offset},
            .generated_at = ev->ts_ms,
        };
        tern_buf_reset(&p->value_buf);
        tern_buf_reset(&p->json_buf);
        sink_recommendation_avro(&rec, &p->value_buf);
        if (p->emit)
                sink_recommendation_json(&rec, &p->json_buf);
        STAGE_ADD(p, ns_recs, t0);
        send_output(p, p->live->topic_recommendations, ev->user_id.ptr,
                    ev->user_id.len);
        atomic_fetch_add(&p->st_recs, 1);
}

static void process_message(rt_pipeline_t *p, const rd_kafka_message_t *msg) {
        tern_event_t ev;
        const char *reason = NULL;
        const feat_user_t *user = NULL;
        char errstr[512];
        int counted = 0;
        int64_t t0;
        uint64_t produce_before;
        tern_code_t rc;
        if (atomic_fetch_add(&p->st_records, 1) == 0)
                atomic_store(&p->first_record_ns, rt_mono_ns());
        tern_event_clear(&ev);
        t0 = rt_mono_ns();
        rc =
            ingest_decode(p->decoder, msg->payload, msg->payload ? msg->len : 0,
                          &ev, &reason, errstr, sizeof(errstr));
        if (rc == TERN_ERR_NOT_FOUND && p->schemas)
                rc = rt_schemas_decode_again(p->schemas, p->decoder,
                                             msg->payload,
                                             msg->payload ? msg->len : 0, &ev,
                                             &reason, errstr, sizeof(errstr));
        STAGE_ADD(p, ns_decode, t0);
        if (rc != TERN_OK) {
                dead_letter(p, msg, reason, errstr);
                note_offset(p, msg);
                return;
        }
        ev.src_topic = p->input_topic;
        ev.src_partition = msg->partition;
        ev.src_offset = msg->offset;
        t0 = rt_mono_ns();
        rc = feat_engine_apply(p->engine, &ev, &counted, &user, errstr,
                               sizeof(errstr));
        STAGE_ADD(p, ns_state, t0);
        if (rc != TERN_OK) {
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                             "state at %s[%d]@%lld: %s", p->input_topic,
                             (int)msg->partition, (long long)msg->offset,
                             errstr);
                return;
        }
        rt_control_on_event(p->control, &ev);
        t0 = rt_mono_ns();
        produce_before = atomic_load(&p->ns_produce);
        if (p->ctr) {
                rc = rt_ctr_on_event(p->ctr, &ev, user, errstr, sizeof(errstr));
                models_add(p, t0, produce_before);
                if (rc != TERN_OK) {
                        tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL,
                                     "ctr at %s[%d]@%lld: %s", p->input_topic,
                                     (int)msg->partition,
                                     (long long)msg->offset, errstr);
                        return;
                }
        }
        atomic_fetch_add(&p->st_events, 1);
        atomic_fetch_add(&p->st_by_type[ev.type], 1);
        if (counted && p->live->recs_top_n > 0)
                publish_recs(p, &ev, user);
        t0 = rt_mono_ns();
        produce_before = atomic_load(&p->ns_produce);
        if (p->churn && (rc = rt_churn_on_event(p->churn, &ev, user, errstr,
                                                sizeof(errstr))) != TERN_OK)
                tern_err_set(&p->fatal, rc, TERN_ERR_F_FATAL, "%s", errstr);
        models_add(p, t0, produce_before);
        note_offset(p, msg);
}

/* ---- consumer ---- */

static void assign_from_state(rt_pipeline_t *p, rd_kafka_t *rk,
                              rd_kafka_topic_partition_list_t *parts) {
        char errstr[512];
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t next = 0;
                int found = 0;
                if (feat_store_offset_get(p->store, tp->topic, tp->partition,
                                          &next, &found, errstr,
                                          sizeof(errstr)) != TERN_OK) {
                        tern_err_set(&p->fatal, TERN_ERR_STATE,
                                     TERN_ERR_F_FATAL,
                                     "reading stored offsets: %s", errstr);
                        found = 0;
                }
                tp->offset = found ? next : RD_KAFKA_OFFSET_BEGINNING;
                if (tp->partition >= 0 && tp->partition < RT_MAX_PARTITIONS) {
                        atomic_store(&p->committed[tp->partition],
                                     found ? next : 0);
                        atomic_store(&p->position[tp->partition],
                                     found ? next : 0);
                        if (atomic_load(&p->resumed_from[tp->partition]) < 0)
                                atomic_store(&p->resumed_from[tp->partition],
                                             found ? next : 0);
                }
                RT_LOG_AT(RT_LOG_INFO, "ingest", tp->topic, tp->partition,
                          found ? next : 0, "assigned, resuming %s",
                          found ? "from the offset stored with the state"
                                : "from the beginning (no stored offset)");
        }
        if (!strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE"))
                rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
                rd_kafka_assign(rk, parts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
        rt_pipeline_t *p = opaque;
        int cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                land_batch(p); /* the stored offsets must be the last ones */
                assign_from_state(p, rk, parts);
                rt_metrics_rebalanced(p->metrics, rk);
                return;
        }
        /* Revoked (or lost): what we processed of those partitions must be
         * committed before another instance may take them over. */
        commit_and_land(p);
        if (cooperative)
                rd_kafka_error_destroy(
                    rd_kafka_incremental_unassign(rk, parts));
        else
                rd_kafka_assign(rk, NULL);
        rt_metrics_rebalanced(p->metrics, rk); /* none left: not ready */
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque) {
        rt_pipeline_t *p = opaque;
        char fatal_reason[512];
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fatal_reason, sizeof(fatal_reason));
                tern_err_set(&p->fatal, TERN_ERR_KAFKA, TERN_ERR_F_FATAL,
                             "kafka: %s", fatal_reason);
                return;
        }
        /* Transient (broker down, transport): librdkafka retries. */
        RT_LOG(RT_LOG_WARN, "kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

static tern_code_t open_consumer(rt_pipeline_t *p, const rt_pipeline_opts_t *o,
                                 char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_resp_err_t err;
        rd_kafka_conf_t *kc =
            rt_kafka_consumer_conf(p->live, o->brokers, errstr, errstr_size);
        if (!kc)
                return TERN_ERR_CONFIG;
        if (o->group_id)
                rd_kafka_conf_set(kc, "group.id", o->group_id, NULL, 0);
        rd_kafka_conf_set_opaque(kc, p);
        rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
        rd_kafka_conf_set_error_cb(kc, on_kafka_error);
        p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size);
        if (!p->consumer)
                return TERN_ERR_KAFKA;
        rd_kafka_poll_set_consumer(p->consumer);
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, p->input_topic,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(p->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err)
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "subscribe to %s: %s", p->input_topic,
                                 rd_kafka_err2str(err));
        return TERN_OK;
}

/* ---- lifecycle ---- */

/* Live keys changed (control topic, SIGHUP): into the ranking and models. */
static void apply_live(void *opaque, const tern_conf_t *live) {
        rt_pipeline_t *p = opaque;
        model_recs_set_blend(p->recs, live->recs_similarity_weight,
                             p->ctr ? live->recs_ctr_weight : 0);
        if (p->ctr)
                rt_ctr_set_live(p->ctr, live);
        if (p->churn)
                rt_churn_set_live(p->churn, live);
}

static tern_code_t start_control(rt_pipeline_t *p, const rt_pipeline_opts_t *o,
                                 char *errstr, size_t errstr_size) {
        rt_control_hooks_t hooks = {apply_live, p};
        p->reload = o->reload;
        p->reload_opaque = o->reload_opaque;
        return rt_control_start(p->control, o->brokers, &p->emit_to, &hooks,
                                &p->nb_source, errstr, errstr_size);
}

/* Between batches: SIGHUP, then the control records available. */
static void between_batches(rt_pipeline_t *p) {
        if (rt_reload && p->reload) {
                char errstr[1024];
                tern_conf_t *file;
                rt_reload = 0;
                file = p->reload(p->reload_opaque, errstr, sizeof(errstr));
                if (file)
                        rt_control_reload(p->control, file);
                else
                        RT_LOG(RT_LOG_ERROR, "control",
                               "SIGHUP: %s: the running configuration stays",
                               errstr);
                conf_destroy(file);
        }
        rt_control_poll(p->control);
}

rt_pipeline_t *rt_pipeline_new(const rt_pipeline_opts_t *o, char *errstr,
                               size_t errstr_size) {
        rt_pipeline_t *p = calloc(1, sizeof(*p));
        rd_kafka_conf_t *pc;
        p->live = conf_copy(o->conf);
        p->input_topic = strdup(o->conf->topic_input);
        p->emit = o->emit_dir != NULL;
        p->emit_to =
            (rt_emit_t){emit_record, p, p->emit, &p->live->config_version};
        tern_buf_init(&p->value_buf, RECORD_BUF_MAX);
        tern_buf_init(&p->json_buf, RECORD_BUF_MAX);
        for (int i = 0; i < RT_MAX_PARTITIONS; i++) {
                p->batch_next[i] = -1;
                atomic_store(&p->position[i], -1);
                atomic_store(&p->committed[i], -1);
                atomic_store(&p->drain_end[i], -1);
                atomic_store(&p->resumed_from[i], -1);
        }
        p->decoder = rt_stages_decoder(o->conf, errstr, errstr_size);
        if (!p->decoder)
                goto fail;
        p->store =
            rt_stages_store(o->conf, o->state_dir, 0, errstr, errstr_size);
        if (!p->store)
                goto fail;
        if (rt_schemas_new(o->conf, o->state_dir, &p->schemas, errstr,
                           errstr_size) != TERN_OK)
                goto fail;
        p->engine = rt_stages_engine(o->conf, p->store, errstr, errstr_size);
        if (!p->engine)
                goto fail;
        /* The stored live config first: the models are built from it. */
        p->control = rt_control_new(p->live, o->conf, p->store, p->engine,
                                    errstr, errstr_size);
        if (!p->control)
                goto fail;
        p->recs = rt_stages_recs(p->live);
        if (o->ctr_trace && !(p->ctr_trace = fopen(o->ctr_trace, "w"))) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s: %m",
                          o->ctr_trace);
                goto fail;
        }
        if (o->conf->ctr_enabled &&
            !(p->ctr = rt_ctr_new(p->live, p->store, p->engine, &p->emit_to,
                                  p->ctr_trace, errstr, errstr_size)))
                goto fail;
        if (o->conf->churn_enabled &&
            !(p->churn = rt_churn_new(p->live, p->store, p->engine, &p->emit_to,
                                      errstr, errstr_size)))
                goto fail;
        p->nb_source = rt_stages_nb_source(p->engine);
        pc = rt_kafka_producer_conf(o->conf, o->brokers, errstr, errstr_size);
        if (!pc)
                goto fail;
        p->producer = sink_producer_new(pc, o->emit_dir, errstr, errstr_size);
        if (!p->producer)
                goto fail;
        if (start_control(p, o, errstr, errstr_size) != TERN_OK ||
            open_consumer(p, o, errstr, errstr_size) != TERN_OK)
                goto fail;
        p->metrics = o->metrics;
        rt_metrics_bind(p->metrics,
                        &(rt_metrics_src_t){p->consumer, p->producer, p->store,
                                            p->ctr, p->churn, p->control,
                                            p->schemas, p->engine});
        return p;
fail:
        rt_pipeline_destroy(p);
        return NULL;
}

void rt_pipeline_destroy(rt_pipeline_t *p) {
        if (!p)
                return;
        rt_metrics_bind(p->metrics, NULL);
        if (p->consumer) {
                rd_kafka_consumer_close(p->consumer);
                rd_kafka_destroy(p->consumer);
        }
        if (p->producer)
                sink_producer_destroy(p->producer);
        model_recs_destroy(p->recs);
        rt_ctr_destroy(p->ctr);
        if (p->ctr_trace)
                fclose(p->ctr_trace);
        rt_churn_destroy(p->churn);
        rt_control_destroy(p->control);
        feat_engine_destroy(p->engine);
        if (p->store)
                feat_store_close(p->store);
        ingest_decoder_destroy(p->decoder);
        rt_schemas_destroy(p->schemas);
        tern_buf_free(&p->value_buf);
        tern_buf_free(&p->json_buf);
        free(p->input_topic);
        conf_destroy(p->live);
        free(p);
}

void rt_pipeline_set_poll_observer(rt_pipeline_t *p, rt_poll_observer_t *fn,
                                   void *opaque) {
        p->on_polled = fn;
        p->polled_opaque = opaque;
}

static int batch_due(const rt_pipeline_t *p) {
        if (p->batch_events == 0)
                return 0;
        if (p->batch_events >= (uint64_t)p->live->batch_max_events)
                return 1;
        return rt_mono_ns() - p->batch_started_ns >=
               p->live->batch_max_ms * 1000000;
}

static void handle_consumer_error(rt_pipeline_t *p,
                                  const rd_kafka_message_t *msg) {
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                return;
        if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                /* The next offset to read is outside the log: retention
                 * removed data before tern read it, or the topic was
                 * recreated. Re-reading would count twice, skipping would
                 * lose: an operator must choose. */
                tern_err_set(&p->fatal, TERN_ERR_KAFKA, TERN_ERR_F_FATAL,
                             "%s [%d]: the next offset to read is out of the "
                             "log's range (%s): data was removed before tern "
                             "read it, or the topic was recreated; set "
                             "kafka.consumer.auto.offset.reset to earliest or "
                             "latest to choose where to resume",
                             p->input_topic, (int)msg->partition,
                             rd_kafka_message_errstr(msg));
                return;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__FATAL ||
            msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                RT_LOG(RT_LOG_WARN, "ingest", "consumer: %s",
                       rd_kafka_message_errstr(msg));
        else
                RT_LOG(RT_LOG_WARN, "ingest", "consumer: %s: %s",
                       rd_kafka_err2name(msg->err),
                       rd_kafka_message_errstr(msg));
}

tern_code_t rt_pipeline_run(rt_pipeline_t *p, char *errstr,
                            size_t errstr_size) {
        rt_metrics_loop_start(p->metrics, p);
        while (!rt_stop && !tern_err_is_set(&p->fatal)) {
                rd_kafka_message_t *msg;
                if (!p->batch_events)
                        between_batches(p);
                msg = rd_kafka_consumer_poll(
                    p->consumer,
                    p->batch_events || p->landing_pending ? 5 : 100);
                if (msg && !msg->err && p->on_polled)
                        p->on_polled(p->polled_opaque, msg->partition,
                                     msg->offset, rt_mono_ns());
                if (msg) {
                        if (msg->err)
                                handle_consumer_error(p, msg);
                        else
                                process_message(p, msg);
                        rd_kafka_message_destroy(msg);
                }
                /* Delivery reports: every 64 messages is often enough
                 * (the commit waits for all of them anyway). */
                if (!msg || (p->batch_events & 63) == 0) {
                        sink_producer_poll(p->producer);
                        rt_metrics_tick(p->metrics, p); /* liveness */
                }
                if (batch_due(p) ||
                    (!msg && (p->batch_events || rt_control_dirty(p->control))))
                        commit_batch(p);
                else if (!msg)
                        land_batch(p); /* idle: let the offsets count */
                if (!p->batch_events && drained(p))
                        break;
        }
        rt_metrics_loop_stopping(p->metrics);
        if (!tern_err_is_set(&p->fatal))
                commit_and_land(p);
        rt_metrics_loop_stopped(p->metrics, p);
        if (tern_err_is_set(&p->fatal))
                return tern_errf(errstr, errstr_size, p->fatal.code, "%s",
                                 p->fatal.msg);
        return TERN_OK;
}
