/*
 * sink_producer — the idempotent Kafka producer for every output topic, and
 * the --emit file writer.
 *
 * sink_producer_new() takes ownership of conf (an rd_kafka_conf_t with the
 * user's pass-through properties already set) and forces
 * enable.idempotence=true. Payload and key are copied. Delivery reports are
 * served by sink_producer_poll()/sink_producer_flush(); the FIRST delivery
 * failure is kept, and sink_producer_flush() returns it (TERN_ERR_KAFKA) so
 * the runtime refuses to commit the batch whose outputs were lost.
 * Once a delivery has failed the producer STAYS failed: every later send
 * and flush returns that first failure (the runtime treats it as fatal:
 * drain and stop). A flush timeout is not sticky.
 *
 * The producer sets only enable.idempotence and the delivery report
 * callback on conf; the conf's opaque, log_cb and error_cb stay the
 * caller's. Delivery reports run in the thread that calls send, poll or
 * flush: use one producer from one thread.
 *
 * Emit: when an emit directory is set, every produced record's JSON form is
 * also appended as one line to DIR/<topic>.jsonl (files opened lazily in
 * append mode, flushed at sink_producer_flush(); characters of the topic
 * name outside [A-Za-z0-9._-] become '_'; DIR is created if missing).
 */
#ifndef SINK_PRODUCER_H
#define SINK_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/tern_err.h"

typedef struct sink_producer sink_producer_t;

sink_producer_t *sink_producer_new(rd_kafka_conf_t *conf, const char *emit_dir,
                                   char *errstr, size_t errstr_size);
void sink_producer_destroy(sink_producer_t *p);

/* Queue one record. json may be NULL when no emit dir is set. A full local
 * queue is waited out (polling) up to timeout_ms (< 0: no limit). */
tern_code_t sink_producer_send(sink_producer_t *p, const char *topic,
                               const void *key, size_t klen, const void *val,
                               size_t vlen, const char *json, size_t json_len,
                               int timeout_ms, char *errstr,
                               size_t errstr_size);
void sink_producer_poll(sink_producer_t *p);
/* Wait until everything queued is delivered (or failed). */
tern_code_t sink_producer_flush(sink_producer_t *p, int timeout_ms,
                                char *errstr, size_t errstr_size);

typedef struct sink_topic_count {
        const char *topic;
        uint64_t sent, delivered, failed;
} sink_topic_count_t;
/* Per-topic counters, valid until the next send. */
uint32_t sink_producer_counts(const sink_producer_t *p,
                              const sink_topic_count_t **out);

#endif
