/* rt_control — the live state, its record in the store, the control
 * consumer and SIGHUP reloads (see rt_control.h). Validation is in
 * rt_control_parse.c. */
#include "rt_control.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../features/feat_catalog.h"
#include "../sinks/sink_records.h"
#include "rt_cmd.h"
#include "rt_kafka.h"
#include "rt_log.h"

#define CTL_KEY         "control"
#define CTL_REC_VERSION 1
#define CTL_MAX_PARTS   256
#define CTL_LAST_MAX    (RT_CONTROL_MAX_RECORD + 1024)
#define CTL_DLQ_RAW_MAX (512u << 10)
#define CTL_PROBE_NS    (5 * 1000000000LL) /* look for the topic again */
#define CTL_POLL_MAX    10000 /* records applied per batch boundary */

typedef struct pending {
        size_t live;
        double value;
} pending_t;

struct rt_control {
        tern_conf_t *live;
        tern_conf_t *base; /* the file (and -X) as last read */
        feat_store_t *st;
        feat_catalog_t *catalog;
        feat_catalog_stats_t cat_seen; /* catalog figures already logged */
        model_boost_t *boosts;
        rt_emit_t emit;
        rt_control_hooks_t hooks;
        model_nb_source_t *src, inner; /* the wired source and the original */
        pending_t *pending;            /* file changes found at load */
        size_t n_pending;
        /* the control consumer */
        rd_kafka_t *rk;
        int assigned, missing_logged;
        int64_t next_probe_ns;
        int64_t next[CTL_MAX_PARTS]; /* next offset per partition, -1 none */
        uint64_t applied, rejected, reloads;
        tern_buf_t last;   /* JSON of the last applied change, may be empty */
        int32_t last_part; /* the last applied record's; -1 not known */
        int64_t last_offset;
        int dirty;
        tern_buf_t rec, val, json;
};

/* ---- hooks into the ranking ---- */

static tern_code_t fwd_neighbors(void *opaque, const char *item, uint32_t len,
                                 const feat_neighbor_t **out, uint32_t *n_out,
                                 char *errstr, size_t errstr_size) {
        rt_control_t *ctl = opaque;
        return ctl->inner.top_neighbors(ctl->inner.opaque, item, len, out,
                                        n_out, errstr, errstr_size);
}

static void fwd_trending(void *opaque, const feat_neighbor_t **out,
                         uint32_t *n_out) {
        rt_control_t *ctl = opaque;
        ctl->inner.trending(ctl->inner.opaque, out, n_out);
}

static int hook_blocked(void *opaque, const char *item, uint32_t len) {
        rt_control_t *ctl = opaque;
        return model_boost_blocked(ctl->boosts, item, len) ||
               (ctl->inner.blocked &&
                ctl->inner.blocked(ctl->inner.opaque, item, len));
}

static double hook_boost(void *opaque, const char *item, uint32_t len,
                         int64_t now_ms) {
        rt_control_t *ctl = opaque;
        uint32_t clen = 0;
        const char *cat = model_boost_count(ctl->boosts, MODEL_BOOST_CATEGORY)
                              ? feat_catalog_get(ctl->catalog, item, len, &clen)
                              : NULL;
        return model_boost_factor(ctl->boosts, item, len, cat, clen, now_ms);
}

/* The hooks cost a lookup per candidate: wired only while there is
 * something to look up. */
static void rewire(rt_control_t *ctl) {
        model_nb_source_t *s = ctl->src;
        if (!s)
                return;
        *s = ctl->inner;
        s->opaque = ctl;
        s->top_neighbors = fwd_neighbors;
        s->trending = fwd_trending;
        s->blocked = model_boost_count(ctl->boosts, MODEL_BOOST_BLOCKED) ||
                             ctl->inner.blocked
                         ? hook_blocked
                         : NULL;
        s->boost = model_boost_count(ctl->boosts, MODEL_BOOST_ITEM) ||
                           model_boost_count(ctl->boosts, MODEL_BOOST_CATEGORY)
                       ? hook_boost
                       : NULL;
}

/* ---- the stored record ---- */

static void encode(const rt_control_t *ctl, tern_buf_t *out) {
        size_t n_live = conf_live_count();
        uint32_t n_parts = 0;
        tern_buf_put_u8(out, CTL_REC_VERSION);
        tern_buf_put_varint(out, (uint64_t)ctl->live->config_version);
        tern_buf_put_varint(out, ctl->applied);
        tern_buf_put_varint(out, ctl->rejected);
        tern_buf_put_varint(out, ctl->reloads);
        tern_buf_put_varint(out, n_live);
        for (size_t i = 0; i < n_live; i++) {
                tern_buf_put_cstr(out, conf_live_path(i));
                tern_buf_put_double(out, conf_live_get(ctl->base, i));
                tern_buf_put_double(out, conf_live_get(ctl->live, i));
        }
        model_boost_encode(ctl->boosts, out);
        tern_buf_put_cstr(out, ctl->live->topic_control);
        for (int i = 0; i < CTL_MAX_PARTS; i++)
                n_parts += ctl->next[i] >= 0;
        tern_buf_put_varint(out, n_parts);
        for (int i = 0; i < CTL_MAX_PARTS; i++)
                if (ctl->next[i] >= 0) {
                        tern_buf_put_varint(out, (uint64_t)i);
                        tern_buf_put_varint(out, (uint64_t)ctl->next[i]);
                }
        tern_buf_put_str(out, (const char *)ctl->last.data, ctl->last.len);
}

static tern_code_t note_pending(rt_control_t *ctl, size_t live, double v) {
        pending_t *p = realloc(ctl->pending, (ctl->n_pending + 1) * sizeof(*p));
        if (!p)
                return TERN_ERR_NOMEM;
        ctl->pending = p;
        p[ctl->n_pending++] = (pending_t){live, v};
        return TERN_OK;
}

/* One stored live key: the stored value wins unless the file's value
 * changed since it was stored (then the file's is applied at start). */
static void restore_live(rt_control_t *ctl, const char *path, uint32_t plen,
                         double base, double live) {
        char name[256];
        int i;
        if (plen >= sizeof(name))
                return;
        memcpy(name, path, plen);
        name[plen] = '\0';
        if ((i = conf_live_find(name)) < 0)
                return; /* no longer live: the file's value stands */
        if (conf_live_set(ctl->live, (size_t)i, live, NULL, 0) != TERN_OK)
                return; /* out of today's range: the file's value stands */
        if (base != conf_live_get(ctl->base, (size_t)i))
                note_pending(ctl, (size_t)i,
                             conf_live_get(ctl->base, (size_t)i));
}

/* Where the last applied control record was, read back from the stored
 * last change (accepted() writes it first thing). Not known when the last
 * change was a SIGHUP reload. */
static void last_place(rt_control_t *ctl) {
        char head[128];
        int part;
        long long off;
        size_t n =
            ctl->last.len < sizeof(head) - 1 ? ctl->last.len : sizeof(head) - 1;
        memcpy(head, ctl->last.data ? (const char *)ctl->last.data : "", n);
        head[n] = '\0';
        if (sscanf(head,
                   "{\"origin\":\"control\",\"partition\":%d,"
                   "\"offset\":%lld",
                   &part, &off) == 2 &&
            part >= 0 && off >= 0) {
                ctl->last_part = part;
                ctl->last_offset = off;
        }
}

static tern_code_t decode(rt_control_t *ctl, const uint8_t *v, size_t len,
                          char *errstr, size_t errstr_size) {
        tern_rd_t r;
        uint64_t n, version;
        uint32_t slen;
        const char *s;
        tern_code_t rc;
        tern_rd_init(&r, v, len);
        if (tern_rd_u8(&r) != CTL_REC_VERSION)
                goto bad;
        version = tern_rd_varint(&r);
        ctl->applied = tern_rd_varint(&r);
        ctl->rejected = tern_rd_varint(&r);
        ctl->reloads = tern_rd_varint(&r);
        n = tern_rd_varint(&r);
        if (r.err || n > 4096)
                goto bad;
        for (uint64_t i = 0; i < n && !r.err; i++) {
                const char *path = tern_rd_str(&r, 255, &slen);
                double base = tern_rd_double(&r), live = tern_rd_double(&r);
                if (!r.err)
                        restore_live(ctl, path, slen, base, live);
        }
        if (r.err || (rc = model_boost_decode(ctl->boosts, &r, errstr,
                                              errstr_size)) != TERN_OK)
                goto bad;
        s = tern_rd_str(&r, 4096, &slen);
        n = tern_rd_varint(&r);
        if (r.err || n > CTL_MAX_PARTS)
                goto bad;
        for (uint64_t i = 0; i < n; i++) {
                uint64_t part = tern_rd_varint(&r), next = tern_rd_varint(&r);
                /* Offsets of another control topic do not apply. */
                if (!r.err && part < CTL_MAX_PARTS &&
                    strlen(ctl->live->topic_control) == slen &&
                    !memcmp(s, ctl->live->topic_control, slen))
                        ctl->next[part] = (int64_t)next;
        }
        s = tern_rd_str(&r, CTL_LAST_MAX, &slen);
        if (r.err || tern_rd_left(&r))
                goto bad;
        tern_buf_append(&ctl->last, s, slen);
        last_place(ctl);
        ctl->live->config_version = (int64_t)version;
        return TERN_OK;
bad:
        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                         "the stored live control record is malformed");
}

static tern_code_t ctl_write(void *opaque, feat_store_t *st, feat_batch_t *b,
                             char *errstr, size_t errstr_size) {
        rt_control_t *ctl = opaque;
        if (!ctl->dirty)
                return TERN_OK;
        tern_buf_reset(&ctl->rec);
        encode(ctl, &ctl->rec);
        if (ctl->rec.overflow)
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "live control record larger than %u bytes",
                                 RT_CONTROL_MAX_STATE);
        feat_batch_put(b, st, FEAT_CF_META, CTL_KEY, strlen(CTL_KEY),
                       ctl->rec.data, ctl->rec.len);
        return TERN_OK;
}

static void ctl_done(void *opaque, int written) {
        rt_control_t *ctl = opaque;
        if (written)
                ctl->dirty = 0;
}

/* ---- lifecycle ---- */

static rt_control_t *ctl_alloc(tern_conf_t *live, const tern_conf_t *base,
                               feat_store_t *st) {
        rt_control_t *ctl = calloc(1, sizeof(*ctl));
        if (!ctl)
                return NULL;
        ctl->live = live;
        ctl->base = conf_copy(base);
        ctl->st = st;
        ctl->boosts = model_boost_new();
        for (int i = 0; i < CTL_MAX_PARTS; i++)
                ctl->next[i] = -1;
        ctl->last_part = -1;
        ctl->last_offset = -1;
        tern_buf_init(&ctl->last, CTL_LAST_MAX);
        tern_buf_init(&ctl->rec, RT_CONTROL_MAX_STATE);
        tern_buf_init(&ctl->val, CTL_DLQ_RAW_MAX + 4096);
        tern_buf_init(&ctl->json, 2 * CTL_DLQ_RAW_MAX + 4096);
        if (!ctl->base || !ctl->boosts) {
                rt_control_destroy(ctl);
                return NULL;
        }
        return ctl;
}

static tern_code_t load(rt_control_t *ctl, char *errstr, size_t errstr_size) {
        int found = 0;
        tern_code_t rc =
            feat_store_get(ctl->st, FEAT_CF_META, CTL_KEY, strlen(CTL_KEY),
                           &ctl->rec, &found, errstr, errstr_size);
        if (rc != TERN_OK || !found)
                return rc;
        return decode(ctl, ctl->rec.data, ctl->rec.len, errstr, errstr_size);
}

rt_control_t *rt_control_new(tern_conf_t *live, const tern_conf_t *base,
                             feat_store_t *st, feat_engine_t *eng, char *errstr,
                             size_t errstr_size) {
        rt_control_t *ctl = ctl_alloc(live, base, st);
        if (!ctl) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "control: out of memory");
                return NULL;
        }
        if (load(ctl, errstr, errstr_size) != TERN_OK)
                goto fail;
        /* Inspection (no engine) needs no catalog. */
        if (eng && !(ctl->catalog = feat_catalog_new(
                         st, eng, (uint64_t)live->max_cached_items, errstr,
                         errstr_size)))
                goto fail;
        if (eng && feat_engine_add_writer(
                       eng, &(feat_writer_t){ctl_write, ctl_done, ctl}) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                          "control: no room for another commit writer");
                goto fail;
        }
        return ctl;
fail:
        rt_control_destroy(ctl);
        return NULL;
}

void rt_control_destroy(rt_control_t *ctl) {
        if (!ctl)
                return;
        if (ctl->rk) {
                rd_kafka_consumer_close(ctl->rk);
                rd_kafka_destroy(ctl->rk);
        }
        feat_catalog_destroy(ctl->catalog);
        model_boost_destroy(ctl->boosts);
        conf_destroy(ctl->base);
        free(ctl->pending);
        tern_buf_free(&ctl->last);
        tern_buf_free(&ctl->rec);
        tern_buf_free(&ctl->val);
        tern_buf_free(&ctl->json);
        free(ctl);
}

/* ---- changes ---- */

static void push_live(rt_control_t *ctl) {
        if (ctl->hooks.apply_live)
                ctl->hooks.apply_live(ctl->hooks.opaque, ctl->live);
}

/* A change of live keys from the file (at start or on SIGHUP). */
static void file_change(rt_control_t *ctl, const char *origin,
                        const size_t *keys, size_t n) {
        char line[2048];
        size_t len = 0;
        ctl->live->config_version++;
        ctl->dirty = 1;
        tern_buf_reset(&ctl->last);
        tern_buf_printf(&ctl->last, "{\"origin\":\"%s\",\"file\":\"", origin);
        tern_buf_put_json_str(
            &ctl->last, ctl->live->source ? ctl->live->source : "",
            ctl->live->source ? strlen(ctl->live->source) : 0);
        tern_buf_printf(&ctl->last, "\",\"config_version\":%lld,\"set\":{",
                        (long long)ctl->live->config_version);
        line[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                double v = conf_live_get(ctl->live, keys[i]);
                tern_buf_printf(&ctl->last, "%s\"%s\":", i ? "," : "",
                                conf_live_path(keys[i]));
                tern_buf_put_num(&ctl->last, v);
                if (len < sizeof(line))
                        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                                " %s=%g",
                                                conf_live_path(keys[i]), v);
        }
        tern_buf_printf(&ctl->last, "}}");
        push_live(ctl);
        RT_LOG(RT_LOG_INFO, "control", "%s: applied%s; config_version %lld",
               origin, line, (long long)ctl->live->config_version);
}

typedef struct reload_ctx {
        rt_control_t *ctl;
        const tern_conf_t *file;
        size_t keys[64];
        size_t n;
} reload_ctx_t;

static void on_diff(void *opaque, const char *path, int live) {
        reload_ctx_t *rc = opaque;
        int i = live ? conf_live_find(path) : -1;
        const char *file = rc->file->source ? rc->file->source : "(defaults)";
        if (i < 0) {
                RT_LOG(RT_LOG_WARN, "control",
                       "SIGHUP: %s changed in %s but cannot change while tern "
                       "runs: refused, the running value stays (restart to "
                       "apply it)",
                       path, file);
                return;
        }
        double v = conf_live_get(rc->file, (size_t)i);
        conf_live_set(rc->ctl->live, (size_t)i, v, NULL, 0);
        conf_live_set(rc->ctl->base, (size_t)i, v, NULL, 0);
        if (rc->n < sizeof(rc->keys) / sizeof(rc->keys[0]))
                rc->keys[rc->n++] = (size_t)i;
}

void rt_control_reload(rt_control_t *ctl, const tern_conf_t *file) {
        reload_ctx_t rc = {ctl, file, {0}, 0};
        conf_diff(ctl->base, file, on_diff, &rc);
        ctl->reloads++;
        ctl->dirty = 1;
        if (!rc.n) {
                RT_LOG(RT_LOG_INFO, "control",
                       "SIGHUP: %s: no live key changed; config_version %lld",
                       file->source ? file->source : "(defaults)",
                       (long long)ctl->live->config_version);
                return;
        }
        file_change(ctl, "sighup", rc.keys, rc.n);
}

static void dead_letter(rt_control_t *ctl, const rd_kafka_message_t *msg,
                        const char *error) {
        rd_kafka_timestamp_type_t ts_type;
        sink_dead_letter_t d = {
            .raw = msg->payload ? msg->payload : (const void *)"",
            .raw_len = msg->len > CTL_DLQ_RAW_MAX ? CTL_DLQ_RAW_MAX : msg->len,
            .error = error,
            .reason = "control",
            .source = {ctl->live->topic_control, msg->partition, msg->offset},
            .failed_at = rd_kafka_message_timestamp(msg, &ts_type),
            .config_version = ctl->live->config_version, /* unchanged */
        };
        ctl->rejected++;
        RT_LOG_AT(RT_LOG_WARN, "control", ctl->live->topic_control,
                  msg->partition, msg->offset, "rejected, dead-lettered: %s",
                  error);
        if (!ctl->emit.send)
                return;
        tern_buf_reset(&ctl->val);
        tern_buf_reset(&ctl->json);
        sink_dead_letter_avro(&d, &ctl->val);
        if (ctl->emit.want_json)
                sink_dead_letter_json(&d, &ctl->json);
        ctl->emit.send(ctl->emit.opaque, ctl->live->topic_dead_letter, msg->key,
                       msg->key_len, &ctl->val,
                       ctl->emit.want_json ? &ctl->json : NULL);
}

static void accepted(rt_control_t *ctl, const rd_kafka_message_t *msg,
                     const rt_control_op_t *op) {
        ctl->live->config_version++;
        ctl->applied++;
        ctl->last_part = msg->partition;
        ctl->last_offset = msg->offset;
        tern_buf_reset(&ctl->last);
        tern_buf_printf(&ctl->last,
                        "{\"origin\":\"control\",\"partition\":%d,"
                        "\"offset\":%lld,\"config_version\":%lld,\"record\":",
                        (int)msg->partition, (long long)msg->offset,
                        (long long)ctl->live->config_version);
        tern_buf_append(&ctl->last, msg->payload, msg->len);
        tern_buf_printf(&ctl->last, "}");
        if (op->kind == RT_CTL_SET)
                push_live(ctl);
        else
                rewire(ctl);
        RT_LOG_AT(
            RT_LOG_INFO, "control", ctl->live->topic_control, msg->partition,
            msg->offset, "applied %.*s; config_version %lld",
            (int)(msg->len > 512 ? 512 : msg->len), (const char *)msg->payload,
            (long long)ctl->live->config_version);
}

static void handle_record(rt_control_t *ctl, const rd_kafka_message_t *msg) {
        rt_control_op_t op;
        char errstr[512];
        tern_code_t rc = rt_control_parse(msg->payload, msg->len, &op, errstr,
                                          sizeof(errstr));
        if (rc == TERN_OK)
                rc = rt_control_apply_op(&op, ctl->live, ctl->boosts, errstr,
                                         sizeof(errstr));
        if (rc == TERN_OK)
                accepted(ctl, msg, &op);
        else
                dead_letter(ctl, msg, errstr);
        if (msg->partition >= 0 && msg->partition < CTL_MAX_PARTS)
                ctl->next[msg->partition] = msg->offset + 1;
        ctl->dirty = 1;
}

/* ---- the control consumer ---- */

/* Assign every partition of the control topic, each from its stored
 * offset. 0 when assigned; -1 when the topic is not there (yet). */
static int assign_all(rt_control_t *ctl) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t =
            rd_kafka_topic_new(ctl->rk, ctl->live->topic_control, NULL);
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        int n;
        if (!t)
                return -1;
        err = rd_kafka_metadata(ctl->rk, 0, t, &md, 2000);
        rd_kafka_topic_destroy(t);
        if (err || md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt <= 0) {
                if (!ctl->missing_logged++)
                        RT_LOG(RT_LOG_WARN, "control",
                               "control topic %s not available (%s): looking "
                               "again every %llds",
                               ctl->live->topic_control,
                               rd_kafka_err2str(err ? err : md->topics[0].err),
                               CTL_PROBE_NS / 1000000000LL);
                if (md)
                        rd_kafka_metadata_destroy(md);
                return -1;
        }
        n = md->topics[0].partition_cnt;
        if (n > CTL_MAX_PARTS) {
                RT_LOG(RT_LOG_WARN, "control",
                       "control topic %s has %d partitions: reading the "
                       "first %d",
                       ctl->live->topic_control, n, CTL_MAX_PARTS);
                n = CTL_MAX_PARTS;
        }
        rd_kafka_metadata_destroy(md);
        parts = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++)
                rd_kafka_topic_partition_list_add(parts,
                                                  ctl->live->topic_control, i)
                    ->offset = ctl->next[i] >= 0 ? ctl->next[i]
                                                 : RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(ctl->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err)
                return -1;
        RT_LOG(RT_LOG_INFO, "control",
               "reading control topic %s (%d partition%s), config_version %lld",
               ctl->live->topic_control, n, n == 1 ? "" : "s",
               (long long)ctl->live->config_version);
        return 0;
}

static tern_code_t open_consumer(rt_control_t *ctl, const char *brokers,
                                 char *errstr, size_t errstr_size) {
        char group[1024];
        rd_kafka_conf_t *kc =
            rt_kafka_consumer_conf(ctl->live, brokers, errstr, errstr_size);
        if (!kc)
                return TERN_ERR_CONFIG;
        /* Never joins nor commits (manual assignment, offsets in the
         * state): its own group id keeps it apart from the input group. */
        snprintf(group, sizeof(group), "%s.control", ctl->live->group_id);
        if (rd_kafka_conf_set(kc, "group.id", group, errstr, errstr_size) ||
            rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", errstr,
                              errstr_size) ||
            rd_kafka_conf_set(kc, "fetch.wait.max.ms", "50", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(kc);
                return TERN_ERR_CONFIG;
        }
        ctl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size);
        if (!ctl->rk)
                return TERN_ERR_KAFKA;
        rd_kafka_poll_set_consumer(ctl->rk);
        ctl->assigned = assign_all(ctl) == 0;
        ctl->next_probe_ns = rt_mono_ns() + CTL_PROBE_NS;
        return TERN_OK;
}

tern_code_t rt_control_start(rt_control_t *ctl, const char *brokers,
                             const rt_emit_t *emit, const rt_control_hooks_t *h,
                             model_nb_source_t *src, char *errstr,
                             size_t errstr_size) {
        ctl->emit = *emit;
        ctl->hooks = *h;
        ctl->src = src;
        ctl->inner = *src;
        if (ctl->n_pending) {
                size_t keys[64], n = 0;
                for (size_t i = 0; i < ctl->n_pending && n < 64; i++) {
                        conf_live_set(ctl->live, ctl->pending[i].live,
                                      ctl->pending[i].value, NULL, 0);
                        keys[n++] = ctl->pending[i].live;
                }
                file_change(ctl, "file changed while tern was stopped", keys,
                            n);
                ctl->n_pending = 0;
        }
        rewire(ctl);
        if (!*ctl->live->topic_control) {
                RT_LOG(RT_LOG_INFO, "control",
                       "topics.control is empty: no control topic, live "
                       "changes by SIGHUP only");
                return TERN_OK;
        }
        return open_consumer(ctl, brokers, errstr, errstr_size);
}

/* The catalog's bound is not silent: its first eviction and any failed
 * store read (a category boost missed) are logged. */
static void catalog_log(rt_control_t *ctl) {
        feat_catalog_stats_t s;
        if (!ctl->catalog)
                return;
        feat_catalog_stats(ctl->catalog, &s);
        if (s.evicted && !ctl->cat_seen.evicted)
                RT_LOG(RT_LOG_INFO, "control",
                       "item catalog over state.max_cached_items (%lld): the "
                       "least recently seen items leave memory, category "
                       "boosts read theirs from the state",
                       (long long)ctl->live->max_cached_items);
        if (s.read_errors > ctl->cat_seen.read_errors)
                RT_LOG(RT_LOG_WARN, "control",
                       "item catalog: %llu state read(s) failed: those items "
                       "got no category boost",
                       (unsigned long long)(s.read_errors -
                                            ctl->cat_seen.read_errors));
        ctl->cat_seen = s;
}

uint32_t rt_control_poll(rt_control_t *ctl) {
        uint32_t n = 0;
        catalog_log(ctl);
        if (!ctl->rk)
                return 0;
        if (!ctl->assigned) {
                if (rt_mono_ns() < ctl->next_probe_ns)
                        return 0;
                ctl->next_probe_ns = rt_mono_ns() + CTL_PROBE_NS;
                if (!(ctl->assigned = assign_all(ctl) == 0))
                        return 0;
        }
        while (n < CTL_POLL_MAX) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(ctl->rk, 0);
                if (!msg)
                        break;
                if (msg->err) {
                        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                RT_LOG(RT_LOG_WARN, "control", "consumer: %s",
                                       rd_kafka_message_errstr(msg));
                } else {
                        handle_record(ctl, msg);
                        n++;
                }
                rd_kafka_message_destroy(msg);
        }
        return n;
}

int rt_control_dirty(const rt_control_t *ctl) {
        return ctl && ctl->dirty;
}

void rt_control_on_event(rt_control_t *ctl, const tern_event_t *ev) {
        if (ctl->catalog && ev->item_id.ptr && ev->category_id.ptr)
                feat_catalog_observe(ctl->catalog, ev->item_id.ptr,
                                     ev->item_id.len, ev->category_id.ptr,
                                     ev->category_id.len);
}

void rt_control_stats(const rt_control_t *ctl, rt_control_stats_t *out) {
        out->applied = ctl->applied;
        out->rejected = ctl->rejected;
        out->reloads = ctl->reloads;
        out->config_version = ctl->live->config_version;
        out->last_partition = ctl->last_part;
        out->last_offset = ctl->last_offset;
}

/* ---- documents ---- */

/* The values of one set op (and model), named as a record names them. */
static void json_values(tern_buf_t *out, const tern_conf_t *c, const char *op,
                        const char *model) {
        int first = 1;
        tern_buf_printf(out, "{");
        for (size_t i = 0; i < RT_CONTROL_N_FIELDS; i++) {
                const rt_control_field_t *f = &rt_control_fields[i];
                int k = conf_live_find(f->path);
                if (strcmp(f->op, op) || (model && strcmp(f->model, model)))
                        continue;
                tern_buf_printf(out, "%s\"%s\":", first ? "" : ",", f->key);
                tern_buf_put_num(out,
                                 k >= 0 ? conf_live_get(c, (size_t)k) : 0.0);
                first = 0;
        }
        tern_buf_printf(out, "}");
}

static void json_boosts(tern_buf_t *out, const model_boost_t *b,
                        model_boost_kind_t kind) {
        tern_buf_printf(out, "[");
        for (uint32_t i = 0; i < model_boost_count(b, kind); i++) {
                const model_boost_entry_t *e = model_boost_at(b, kind, i);
                tern_buf_printf(out, "%s", i ? "," : "");
                if (kind == MODEL_BOOST_BLOCKED) {
                        tern_buf_printf(out, "\"");
                        tern_buf_put_json_str(out, e->id, e->len);
                        tern_buf_printf(out, "\"");
                        continue;
                }
                tern_buf_printf(out, "{\"id\":\"");
                tern_buf_put_json_str(out, e->id, e->len);
                tern_buf_printf(out, "\",\"factor\":");
                tern_buf_put_num(out, e->factor);
                tern_buf_printf(out, ",\"until_ts_ms\":");
                if (e->until_ts_ms == MODEL_BOOST_FOREVER)
                        tern_buf_printf(out, "null}");
                else
                        tern_buf_printf(out, "%lld}",
                                        (long long)e->until_ts_ms);
        }
        tern_buf_printf(out, "]");
}

void rt_control_json(const rt_control_t *ctl, tern_buf_t *out) {
        int first = 1;
        tern_buf_printf(out, "{\"config_version\":%lld,\"blend\":",
                        (long long)ctl->live->config_version);
        json_values(out, ctl->live, "blend", NULL);
        tern_buf_printf(out, ",\"churn\":");
        json_values(out, ctl->live, "churn", NULL);
        tern_buf_printf(out, ",\"model\":{\"ctr\":");
        json_values(out, ctl->live, "model", "ctr");
        tern_buf_printf(out, ",\"churn\":");
        json_values(out, ctl->live, "model", "churn");
        tern_buf_printf(out, "},\"boosts\":{\"items\":");
        json_boosts(out, ctl->boosts, MODEL_BOOST_ITEM);
        tern_buf_printf(out, ",\"categories\":");
        json_boosts(out, ctl->boosts, MODEL_BOOST_CATEGORY);
        tern_buf_printf(out, "},\"blocked\":");
        json_boosts(out, ctl->boosts, MODEL_BOOST_BLOCKED);
        tern_buf_printf(out, ",\"control\":{\"topic\":\"");
        tern_buf_put_json_str(out, ctl->live->topic_control,
                              strlen(ctl->live->topic_control));
        tern_buf_printf(out, "\",\"offsets\":[");
        for (int i = 0; i < CTL_MAX_PARTS; i++)
                if (ctl->next[i] >= 0) {
                        tern_buf_printf(out,
                                        "%s{\"partition\":%d,\"next_offset\":"
                                        "%lld}",
                                        first ? "" : ",", i,
                                        (long long)ctl->next[i]);
                        first = 0;
                }
        tern_buf_printf(
            out,
            "]},\"applied\":%llu,\"rejected\":%llu,\"reloads\":%llu,"
            "\"last\":",
            (unsigned long long)ctl->applied, (unsigned long long)ctl->rejected,
            (unsigned long long)ctl->reloads);
        if (ctl->last.len)
                tern_buf_append(out, ctl->last.data, ctl->last.len);
        else
                tern_buf_printf(out, "null");
        tern_buf_printf(out, "}");
}

tern_code_t rt_control_inspect_json(const tern_conf_t *conf, feat_store_t *st,
                                    tern_buf_t *out, char *errstr,
                                    size_t errstr_size) {
        tern_conf_t *live = conf_copy(conf);
        rt_control_t *ctl =
            live ? rt_control_new(live, conf, st, NULL, errstr, errstr_size)
                 : NULL;
        if (!ctl) {
                conf_destroy(live);
                return live ? TERN_ERR_STATE : TERN_ERR_NOMEM;
        }
        rt_control_json(ctl, out);
        rt_control_destroy(ctl);
        conf_destroy(live);
        return TERN_OK;
}
