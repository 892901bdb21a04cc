#include "rt_feed.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/tern_buf.h"
#include "../ingest/ingest_encode.h"
#include "rt_kafka.h"
#include "rt_log.h"

struct rt_feed {
        rd_kafka_t *rk;
        char *topic;
        int32_t schema_id; /* -1 = raw */
        tern_buf_t buf;
        uint64_t sent;
        _Atomic uint64_t failed;
        char first_error[512];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                        void *opaque) {
        rt_feed_t *f = opaque;
        (void)rk;
        if (!msg->err)
                return;
        if (atomic_fetch_add(&f->failed, 1) == 0)
                snprintf(f->first_error, sizeof(f->first_error), "%s",
                         rd_kafka_err2str(msg->err));
}

rt_feed_t *rt_feed_new(const tern_conf_t *conf, const char *brokers,
                       const char *topic, const char *compression, char *errstr,
                       size_t errstr_size) {
        rt_feed_t *f = calloc(1, sizeof(*f));
        rd_kafka_conf_t *kc =
            rt_kafka_producer_conf(conf, brokers, errstr, errstr_size);
        if (!kc)
                goto fail;
        if (compression)
                rd_kafka_conf_set(kc, "compression.codec", compression, NULL,
                                  0);
        rd_kafka_conf_set(kc, "linger.ms", "5", NULL, 0);
        rd_kafka_conf_set_opaque(kc, f);
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, errstr_size);
        if (!f->rk)
                goto fail;
        f->topic = strdup(topic);
        f->schema_id = conf->wire_format == 2 /* confluent */ ? 1 : -1;
        tern_buf_init(&f->buf, 1 << 20);
        return f;
fail:
        free(f);
        return NULL;
}

void rt_feed_destroy(rt_feed_t *f) {
        if (!f)
                return;
        rd_kafka_flush(f->rk, 10000);
        rd_kafka_destroy(f->rk);
        tern_buf_free(&f->buf);
        free(f->topic);
        free(f);
}

tern_code_t rt_feed_raw(rt_feed_t *f, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t ts_ms,
                        char *errstr, size_t errstr_size) {
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    f->rk, RD_KAFKA_V_TOPIC(f->topic),
                    RD_KAFKA_V_KEY((void *)key, klen),
                    RD_KAFKA_V_VALUE((void *)val, vlen),
                    RD_KAFKA_V_TIMESTAMP(ts_ms),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                         "produce to %s: %s", f->topic,
                                         rd_kafka_err2str(err));
                rd_kafka_poll(f->rk, 10);
        }
        f->sent++;
        rd_kafka_poll(f->rk, 0);
        return TERN_OK;
}

tern_code_t rt_feed_event(rt_feed_t *f, const tern_event_t *ev, char *errstr,
                          size_t errstr_size) {
        tern_buf_reset(&f->buf);
        if (ingest_encode_event(ev, f->schema_id, &f->buf))
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "event %.*s larger than 1 MiB encoded",
                                 (int)ev->event_id.len, ev->event_id.ptr);
        return rt_feed_raw(f, ev->user_id.ptr, ev->user_id.len, f->buf.data,
                           f->buf.len, ev->ts_ms, errstr, errstr_size);
}

tern_code_t rt_feed_flush(rt_feed_t *f, int timeout_ms, char *errstr,
                          size_t errstr_size) {
        rd_kafka_resp_err_t err = rd_kafka_flush(f->rk, timeout_ms);
        if (err)
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "flush to %s: %s", f->topic,
                                 rd_kafka_err2str(err));
        if (atomic_load(&f->failed))
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "%llu records to %s not delivered; first: %s",
                                 (unsigned long long)atomic_load(&f->failed),
                                 f->topic, f->first_error);
        return TERN_OK;
}

uint64_t rt_feed_sent(const rt_feed_t *f) {
        return f->sent;
}

uint64_t rt_feed_failed(const rt_feed_t *f) {
        return atomic_load(&f->failed);
}

tern_code_t rt_feed_file(rt_feed_t *f, const char *path, ingest_format_t fmt,
                         rt_feed_throttle_fn throttle, void *opaque,
                         uint64_t *bad_lines, char *errstr,
                         size_t errstr_size) {
        ingest_file_opts_t fo = {.click_delay_ms = 5000};
        ingest_file_t *in =
            ingest_file_open(path, fmt, &fo, errstr, errstr_size);
        tern_code_t rc = TERN_OK;
        *bad_lines = 0;
        if (!in)
                return TERN_ERR_IO;
        for (;;) {
                tern_event_t ev;
                char why[512];
                if (throttle && throttle(opaque, f->sent))
                        break;
                tern_event_clear(&ev);
                rc = ingest_file_next(in, &ev, why, sizeof(why));
                if (rc == TERN_ERR_NOT_FOUND) {
                        rc = TERN_OK;
                        break;
                }
                if (rc == TERN_ERR_DECODE) {
                        if ((*bad_lines)++ < 20)
                                RT_LOG(RT_LOG_WARN, "feed", "%s: skipped: %s",
                                       path, why);
                        continue;
                }
                if (rc != TERN_OK) {
                        tern_errf(errstr, errstr_size, rc, "%s", why);
                        break;
                }
                rc = rt_feed_event(f, &ev, errstr, errstr_size);
                if (rc != TERN_OK)
                        break;
        }
        ingest_file_destroy(in);
        return rc;
}
