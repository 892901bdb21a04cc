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
        int32_t schema_id;                      /* -1 = raw */
        int64_t row_spacing_ms, click_delay_ms; /* replay.* */
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
        f->row_spacing_ms = conf->replay_row_spacing_ms;
        f->click_delay_ms = conf->replay_click_delay_ms;
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

/* One file's events; *stopped when throttle asked to stop. */
static tern_code_t feed_one(rt_feed_t *f, ingest_file_t *in, const char *path,
                            rt_feed_throttle_fn throttle, void *opaque,
                            uint64_t *bad_lines, int *stopped, char *errstr,
                            size_t errstr_size) {
        for (;;) {
                tern_event_t ev;
                char why[512];
                tern_code_t rc;
                if (throttle && throttle(opaque, f->sent)) {
                        *stopped = 1;
                        return TERN_OK;
                }
                tern_event_clear(&ev);
                rc = ingest_file_next(in, &ev, why, sizeof(why));
                if (rc == TERN_ERR_NOT_FOUND)
                        return TERN_OK;
                if (rc == TERN_ERR_DECODE) {
                        if ((*bad_lines)++ < 20)
                                RT_LOG(RT_LOG_WARN, "feed", "%s: skipped: %s",
                                       path, why);
                        continue;
                }
                if (rc != TERN_OK)
                        return tern_errf(errstr, errstr_size, rc, "%s", why);
                rc = rt_feed_event(f, &ev, errstr, errstr_size);
                if (rc != TERN_OK)
                        return rc;
        }
}

static void log_early_clicks(const ingest_file_t *in, const char *path) {
        if (ingest_file_clicks_early(in))
                RT_LOG(RT_LOG_WARN, "feed",
                       "%s: %llu clicks fed ahead of their event time (more "
                       "than %d waiting: replay.click_delay_ms spans too many "
                       "rows)",
                       path, (unsigned long long)ingest_file_clicks_early(in),
                       INGEST_CLICK_QUEUE_MAX);
}

tern_code_t rt_feed_files(rt_feed_t *f, const char *const *paths,
                          size_t n_paths, ingest_format_t fmt,
                          rt_feed_throttle_fn throttle, void *opaque,
                          uint64_t *bad_lines, char *errstr,
                          size_t errstr_size) {
        ingest_file_opts_t fo = {.click_delay_ms = f->click_delay_ms,
                                 .row_spacing_ms = f->row_spacing_ms};
        ingest_file_t *prev = NULL;
        tern_code_t rc = TERN_OK;
        int stopped = 0;
        *bad_lines = 0;
        for (size_t i = 0; i < n_paths && rc == TERN_OK && !stopped; i++) {
                ingest_file_t *in;
                fo.file_index = (uint32_t)i;
                fo.more_files = i + 1 < n_paths;
                in = ingest_file_open(paths[i], fmt, &fo, errstr, errstr_size);
                if (!in) {
                        rc = TERN_ERR_IO;
                        break;
                }
                if (prev) /* clicks still waiting go out among these rows */
                        ingest_file_take_clicks(in, prev);
                ingest_file_destroy(prev);
                prev = in;
                rc = feed_one(f, in, paths[i], throttle, opaque, bad_lines,
                              &stopped, errstr, errstr_size);
                log_early_clicks(in, paths[i]);
                /* the next file continues this one's row clock */
                fo.first_row = ingest_file_rows(in);
        }
        ingest_file_destroy(prev);
        return rc;
}

tern_code_t rt_feed_file(rt_feed_t *f, const char *path, ingest_format_t fmt,
                         rt_feed_throttle_fn throttle, void *opaque,
                         uint64_t *bad_lines, char *errstr,
                         size_t errstr_size) {
        return rt_feed_files(f, &path, 1, fmt, throttle, opaque, bad_lines,
                             errstr, errstr_size);
}
