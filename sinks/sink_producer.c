/*
 * sink_producer — one idempotent librdkafka producer for every output topic,
 * plus the --emit file writer.
 *
 * Topics: a handful per process (recommendations, scores, alerts, dead
 * letter), so topic handles live in a small array searched linearly. Each
 * topic is allocated on its own and never moves: its address is the
 * per-message opaque, and the delivery report finds its counters (and the
 * producer) through it. That way the conf's own opaque, log_cb and error_cb
 * stay the runtime's.
 *
 * Threads: delivery reports run inside rd_kafka_poll()/rd_kafka_flush(), i.e.
 * in whichever thread calls sink_producer_poll()/_flush()/_send(); the
 * producer is meant for one thread, so the counters need no lock.
 *
 * Failure: the first failed delivery (or an idempotence fatal error) is kept
 * and the producer stays failed — every later send and flush returns it. A
 * lost output means the batch that caused it must not be committed, and the
 * runtime treats that as fatal (drain and stop), so there is no "clear".
 */
#include "sink_producer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#define SINK_RETRY_POLL_MS 10

struct sink_topic {
        sink_producer_t *p;
        uint32_t idx; /* into p->counts */
        char *name;
        rd_kafka_topic_t *rkt;
        FILE *emit; /* NULL until the first record when emitting */
};

struct sink_producer {
        rd_kafka_t *rk;
        char *emit_dir; /* NULL: no emit files */
        struct sink_topic **topics;
        sink_topic_count_t *counts; /* parallel to topics */
        uint32_t n_topics, cap;
        int failed;
        char fail_msg[512];
};

static void sink_fail(sink_producer_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sink_fail(sink_producer_t *p, const char *fmt, ...) {
        va_list ap;
        if (p->failed)
                return; /* the first failure wins */
        p->failed = 1;
        va_start(ap, fmt);
        vsnprintf(p->fail_msg, sizeof(p->fail_msg), fmt, ap);
        va_end(ap);
}

static void sink_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                       void *opaque) {
        struct sink_topic *t = m->_private;
        sink_topic_count_t *c = &t->p->counts[t->idx];
        (void)rk;
        (void)opaque;
        if (!m->err) {
                c->delivered++;
                return;
        }
        c->failed++;
        sink_fail(t->p, "delivery to topic \"%s\" [%d] failed: %s (%s)",
                  t->name, (int)m->partition, rd_kafka_err2str(m->err),
                  rd_kafka_err2name(m->err));
}

/* An idempotent producer raises a fatal error when it can no longer
 * guarantee ordering without duplicates; nothing it sends after that
 * counts, so it is kept like a delivery failure. */
static void sink_check_fatal(sink_producer_t *p) {
        char reason[256];
        rd_kafka_resp_err_t err;
        if (p->failed)
                return;
        err = rd_kafka_fatal_error(p->rk, reason, sizeof(reason));
        if (err)
                sink_fail(p, "producer fatal error %s: %s",
                          rd_kafka_err2name(err), reason);
}

static tern_code_t sink_failed(sink_producer_t *p, char *errstr,
                               size_t errstr_size) {
        return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA, "%s",
                         p->fail_msg);
}

/* Create ------------------------------------------------------------------ */

static tern_code_t sink_conf_set(rd_kafka_conf_t *conf, const char *name,
                                 const char *value, char *errstr,
                                 size_t errstr_size) {
        char why[256];
        if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) ==
            RD_KAFKA_CONF_OK)
                return TERN_OK;
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "producer: %s=%s refused: %s", name, value, why);
}

/* The emit directory is created if missing (one level), so
 * `replay --emit out/` works on a fresh path. */
static tern_code_t sink_emit_dir(const char *dir, char *errstr,
                                 size_t errstr_size) {
        struct stat st;
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "emit directory %s: %s", dir, strerror(errno));
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "emit directory %s: not a directory", dir);
        return TERN_OK;
}

static tern_code_t sink_new_rk(sink_producer_t *p, rd_kafka_conf_t *conf,
                               char *errstr, size_t errstr_size) {
        char why[512];
        tern_code_t rc;
        rc = sink_conf_set(conf, "enable.idempotence", "true", errstr,
                           errstr_size);
        if (rc)
                return rc;
        rd_kafka_conf_set_dr_msg_cb(conf, sink_dr_cb);
        p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        if (!p->rk)
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "producer: %s", why);
        return TERN_OK;
}

sink_producer_t *sink_producer_new(rd_kafka_conf_t *conf, const char *emit_dir,
                                   char *errstr, size_t errstr_size) {
        sink_producer_t *p = calloc(1, sizeof(*p));
        if (!p) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "producer: out of memory");
                goto fail;
        }
        if (emit_dir && *emit_dir) {
                if (sink_emit_dir(emit_dir, errstr, errstr_size))
                        goto fail;
                p->emit_dir = strdup(emit_dir);
                if (!p->emit_dir) {
                        tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                  "producer: out of memory");
                        goto fail;
                }
        }
        if (sink_new_rk(p, conf, errstr, errstr_size))
                goto fail;
        return p; /* conf now belongs to p->rk */

fail:
        rd_kafka_conf_destroy(conf);
        sink_producer_destroy(p);
        return NULL;
}

void sink_producer_destroy(sink_producer_t *p) {
        if (!p)
                return;
        for (uint32_t i = 0; i < p->n_topics; i++)
                rd_kafka_topic_destroy(p->topics[i]->rkt);
        /* rk goes before the topic structs: they are its messages' opaques */
        if (p->rk)
                rd_kafka_destroy(p->rk);
        for (uint32_t i = 0; i < p->n_topics; i++) {
                if (p->topics[i]->emit)
                        fclose(p->topics[i]->emit);
                free(p->topics[i]->name);
                free(p->topics[i]);
        }
        free(p->topics);
        free(p->counts);
        free(p->emit_dir);
        free(p);
}

/* Topics ------------------------------------------------------------------ */

static int sink_grow(sink_producer_t *p) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        struct sink_topic **topics;
        sink_topic_count_t *counts;
        topics = realloc(p->topics, cap * sizeof(*topics));
        if (!topics)
                return -1;
        p->topics = topics;
        counts = realloc(p->counts, cap * sizeof(*counts));
        if (!counts)
                return -1;
        p->counts = counts;
        p->cap = cap;
        return 0;
}

static tern_code_t sink_topic_add(sink_producer_t *p, const char *name,
                                  struct sink_topic **out, char *errstr,
                                  size_t errstr_size) {
        struct sink_topic *t;
        if (p->n_topics == p->cap && sink_grow(p))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "producer: out of memory");
        t = calloc(1, sizeof(*t));
        if (!t || !(t->name = strdup(name)))
                goto nomem;
        t->rkt = rd_kafka_topic_new(p->rk, name, NULL);
        if (!t->rkt) {
                free(t->name);
                free(t);
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "topic \"%s\": %s", name,
                                 rd_kafka_err2str(rd_kafka_last_error()));
        }
        t->p = p;
        t->idx = p->n_topics;
        p->topics[p->n_topics] = t;
        p->counts[p->n_topics] = (sink_topic_count_t){.topic = t->name};
        p->n_topics++;
        *out = t;
        return TERN_OK;

nomem:
        free(t);
        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                         "producer: out of memory");
}

static tern_code_t sink_topic_get(sink_producer_t *p, const char *name,
                                  struct sink_topic **out, char *errstr,
                                  size_t errstr_size) {
        for (uint32_t i = 0; i < p->n_topics; i++) {
                if (strcmp(p->topics[i]->name, name) == 0) {
                        *out = p->topics[i];
                        return TERN_OK;
                }
        }
        return sink_topic_add(p, name, out, errstr, errstr_size);
}

/* Emit files ------------------------------------------------------------ */

/* Topic names become file names: anything outside [A-Za-z0-9._-] (a '/'
 * above all) is replaced, so a name cannot leave the emit directory. */
static void sink_sanitize(const char *name, char *out, size_t out_size) {
        size_t i;
        for (i = 0; name[i] && i + 1 < out_size; i++) {
                char c = name[i];
                int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                         c == '-';
                out[i] = ok ? c : '_';
        }
        out[i] = '\0';
}

/* A process killed while writing leaves a partial last line; the record it
 * held is re-emitted by the resumed run (outputs are at least once), so the
 * torn tail is cut back to the last complete line before appending. */
static int sink_emit_cut_torn_tail(FILE *f) {
        off_t end, keep;
        int c = EOF;
        if (fseeko(f, 0, SEEK_END) || (end = ftello(f)) <= 0)
                return 0;
        for (keep = end; keep > 0; keep--) {
                if (fseeko(f, keep - 1, SEEK_SET) || (c = getc(f)) == EOF)
                        return -1;
                if (c == '\n')
                        break;
        }
        if (keep == end)
                return 0;
        return ftruncate(fileno(f), keep);
}

static tern_code_t sink_emit_open(sink_producer_t *p, struct sink_topic *t,
                                  char *errstr, size_t errstr_size) {
        char file[256], path[4096];
        sink_sanitize(t->name, file, sizeof(file));
        snprintf(path, sizeof(path), "%s/%s.jsonl", p->emit_dir, file);
        t->emit = fopen(path, "a+");
        if (!t->emit || sink_emit_cut_torn_tail(t->emit)) {
                if (t->emit)
                        fclose(t->emit);
                t->emit = NULL;
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "emit file %s: %s", path, strerror(errno));
        }
        return TERN_OK;
}

static tern_code_t sink_emit_write(struct sink_topic *t, const char *json,
                                   size_t json_len, char *errstr,
                                   size_t errstr_size) {
        if (fwrite(json, 1, json_len, t->emit) != json_len ||
            putc('\n', t->emit) == EOF)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "emit file for topic \"%s\": %s", t->name,
                                 strerror(errno));
        return TERN_OK;
}

static tern_code_t sink_emit_flush(sink_producer_t *p, char *errstr,
                                   size_t errstr_size) {
        for (uint32_t i = 0; i < p->n_topics; i++) {
                struct sink_topic *t = p->topics[i];
                if (t->emit && fflush(t->emit) != 0)
                        return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                         "emit file for topic \"%s\": %s",
                                         t->name, strerror(errno));
        }
        return TERN_OK;
}

/* Send ------------------------------------------------------------------ */

static int64_t sink_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A full local queue is back-pressure, not an error: serve delivery reports
 * (which frees queue space) and try again until the deadline. */
static tern_code_t sink_produce(sink_producer_t *p, struct sink_topic *t,
                                const void *key, size_t klen, const void *val,
                                size_t vlen, int timeout_ms, char *errstr,
                                size_t errstr_size) {
        int64_t deadline = sink_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
        rd_kafka_resp_err_t err;
        for (;;) {
                /* F_COPY: payload and key are the caller's, borrowed */
                if (rd_kafka_produce(t->rkt, RD_KAFKA_PARTITION_UA,
                                     RD_KAFKA_MSG_F_COPY, (void *)val, vlen,
                                     key, klen, t) == 0)
                        return TERN_OK;
                err = rd_kafka_last_error();
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                    (timeout_ms >= 0 && sink_now_ms() >= deadline))
                        break;
                rd_kafka_poll(p->rk, SINK_RETRY_POLL_MS);
        }
        return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                         "produce to topic \"%s\" failed: %s", t->name,
                         rd_kafka_err2str(err));
}

tern_code_t sink_producer_send(sink_producer_t *p, const char *topic,
                               const void *key, size_t klen, const void *val,
                               size_t vlen, const char *json, size_t json_len,
                               int timeout_ms, char *errstr,
                               size_t errstr_size) {
        struct sink_topic *t = NULL;
        tern_code_t rc;
        if (!topic || !*topic || (p->emit_dir && !json))
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_INVALID_ARG, "send: %s",
                    !topic || !*topic ? "no topic"
                                      : "emit needs the JSON form");
        sink_check_fatal(p);
        if (p->failed)
                return sink_failed(p, errstr, errstr_size);
        rc = sink_topic_get(p, topic, &t, errstr, errstr_size);
        if (rc)
                return rc;
        /* open before producing, so an unwritable emit dir loses nothing */
        if (p->emit_dir && !t->emit &&
            (rc = sink_emit_open(p, t, errstr, errstr_size)))
                return rc;
        rc = sink_produce(p, t, key, klen, val, vlen, timeout_ms, errstr,
                          errstr_size);
        if (rc)
                return rc;
        p->counts[t->idx].sent++;
        if (p->emit_dir)
                return sink_emit_write(t, json, json_len, errstr, errstr_size);
        return TERN_OK;
}

void sink_producer_poll(sink_producer_t *p) {
        rd_kafka_poll(p->rk, 0);
}

/* rd_kafka_flush() (librdkafka 2.0.2) waits for delivery reports in slices
 * of up to 10 ms and a slice does not end when the last report arrives:
 * every commit paid up to 10 ms after its outputs were delivered. Slices of
 * 1 ms keep flush()'s linger override (each call sets it again) and bound
 * that wait to 1 ms. */
#define SINK_FLUSH_SLICE_MS 1

static rd_kafka_resp_err_t sink_flush_sliced(rd_kafka_t *rk, int timeout_ms) {
        int64_t deadline = sink_now_ms() + timeout_ms; /* < 0: no limit */
        rd_kafka_resp_err_t err;
        do
                err = rd_kafka_flush(rk, SINK_FLUSH_SLICE_MS);
        while (err == RD_KAFKA_RESP_ERR__TIMED_OUT &&
               (timeout_ms < 0 || sink_now_ms() < deadline));
        return err;
}

tern_code_t sink_producer_flush(sink_producer_t *p, int timeout_ms,
                                char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err = sink_flush_sliced(p->rk, timeout_ms);
        tern_code_t rc = sink_emit_flush(p, errstr, errstr_size);
        sink_check_fatal(p);
        if (p->failed) /* the lost output outranks a file error */
                return sink_failed(p, errstr, errstr_size);
        /* a timeout is not sticky: the messages are still in flight */
        if (err)
                return tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                                 "flush: %d message(s) not delivered after "
                                 "%d ms: %s",
                                 rd_kafka_outq_len(p->rk), timeout_ms,
                                 rd_kafka_err2str(err));
        return rc;
}

uint32_t sink_producer_counts(const sink_producer_t *p,
                              const sink_topic_count_t **out) {
        *out = p->counts;
        return p->n_topics;
}
