/*
 * tern-test-consume — the independent reader end-to-end tests use.
 *
 *   tern-test-consume -b BROKERS -t TOPIC [-s SCHEMA.avsc] [-n COUNT]
 *                     [-i IDLE_MS] [-p PARTITIONS]
 *
 * Reads every partition of TOPIC from the beginning (assign, no group
 * membership, nothing committed) and prints one JSON line per message:
 *   {"partition":P,"offset":O,"key":"...","value":<Avro JSON>}
 * The value is decoded with Avro-C's generic reader against SCHEMA (a
 * Confluent-framed value, 0x00 + 4-byte schema id, has the 5 bytes skipped
 * and "schema_id" added); "value_error" says why a value did not decode.
 * Without -s the value is printed as "value_base64". Avro-C's JSON cuts
 * bytes at the first NUL, so top-level bytes fields are also printed
 * exactly as base64: "value_bytes_base64":{"raw":"..."}.
 *
 * It deliberately shares no code with tern: it is the second opinion on
 * what tern wrote. Exit 0 after COUNT messages, or once every partition is
 * at its end and IDLE_MS (default 3000) passed with no new message; a
 * missing topic is 0 messages. Exit 1 on usage, broker or schema errors, or
 * when nothing at all happens for STALL_MS. The count goes to stderr.
 */
#include <avro.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STALL_MS 60000
/* Avro-C trusts lengths in the input; a corrupt value must not make this
 * tool allocate gigabytes, so one allocation is capped. */
#define AVRO_ALLOC_MAX (64 << 20)

struct opts {
        const char *brokers, *topic, *schema_path;
        long count; /* < 0: no limit */
        int idle_ms;
        int partitions; /* 0: from metadata */
};

struct reader {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        int ready;
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void) {
        fprintf(stderr,
                "usage: tern-test-consume -b BROKERS -t TOPIC "
                "[-s SCHEMA.avsc] [-n COUNT] [-i IDLE_MS] [-p PARTITIONS]\n");
        exit(1);
}

static void parse_opts(int argc, char **argv, struct opts *o) {
        int c;
        memset(o, 0, sizeof(*o));
        o->count = -1;
        o->idle_ms = 3000;
        while ((c = getopt(argc, argv, "b:t:s:n:i:p:h")) != -1) {
                switch (c) {
                case 'b':
                        o->brokers = optarg;
                        break;
                case 't':
                        o->topic = optarg;
                        break;
                case 's':
                        o->schema_path = optarg;
                        break;
                case 'n':
                        o->count = atol(optarg);
                        break;
                case 'i':
                        o->idle_ms = atoi(optarg);
                        break;
                case 'p':
                        o->partitions = atoi(optarg);
                        break;
                default:
                        usage();
                }
        }
        if (!o->brokers || !o->topic || optind != argc)
                usage();
}

/* Output helpers ---------------------------------------------------------- */

/* Control characters escaped; bytes >= 0x80 pass through (UTF-8 keys). */
static void put_json_str(const char *s, size_t n) {
        putchar('"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

static void put_base64(const unsigned char *p, size_t n) {
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        putchar('"');
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                v |= i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0;
                v |= i + 2 < n ? p[i + 2] : 0;
                putchar(b64[v >> 18]);
                putchar(b64[(v >> 12) & 63]);
                putchar(i + 1 < n ? b64[(v >> 6) & 63] : '=');
                putchar(i + 2 < n ? b64[v & 63] : '=');
        }
        putchar('"');
}

/* Avro ------------------------------------------------------------------ */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
        (void)ud;
        (void)osize;
        if (nsize == 0) {
                free(ptr);
                return NULL;
        }
        if (nsize > AVRO_ALLOC_MAX)
                return NULL;
        return realloc(ptr, nsize);
}

static char *read_file(const char *path, long *len_out) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long len;
        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) != 0)
                goto out;
        buf = malloc((size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                buf = NULL;
                goto out;
        }
        if (buf)
                buf[len] = '\0';
        *len_out = len;
out:
        fclose(f);
        return buf;
}

static int reader_init(struct reader *r, const char *path) {
        long len = 0;
        char *json = read_file(path, &len);
        int rc = -1;
        if (!json) {
                fprintf(stderr, "tern-test-consume: %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        if (avro_schema_from_json_length(json, (size_t)len, &r->schema)) {
                fprintf(stderr, "tern-test-consume: %s: %s\n", path,
                        avro_strerror());
                goto out;
        }
        r->iface = avro_generic_class_from_schema(r->schema);
        if (!r->iface || avro_generic_value_new(r->iface, &r->value)) {
                fprintf(stderr, "tern-test-consume: %s: %s\n", path,
                        avro_strerror());
                goto out;
        }
        r->ready = 1;
        rc = 0;
out:
        free(json);
        return rc;
}

static void reader_destroy(struct reader *r) {
        if (r->ready)
                avro_value_decref(&r->value);
        if (r->iface)
                avro_value_iface_decref(r->iface);
        if (r->schema)
                avro_schema_decref(r->schema);
}

/* Decode the whole of [p, p+n) into r->value; trailing bytes are an error,
 * which is what makes the framed/unframed guess safe. */
static int decode_exact(struct reader *r, const char *p, size_t n, char *err,
                        size_t err_size) {
        avro_reader_t rd = avro_reader_memory(p, (int64_t)n);
        char extra;
        int rc = -1;
        if (!rd) {
                snprintf(err, err_size, "out of memory");
                return -1;
        }
        avro_value_reset(&r->value);
        if (avro_value_read(rd, &r->value))
                snprintf(err, err_size, "%s", avro_strerror());
        else if (avro_read(rd, &extra, 1) == 0)
                snprintf(err, err_size, "trailing bytes after the record");
        else
                rc = 0;
        avro_reader_free(rd);
        return rc;
}

/* Framed first when the magic byte is there (the Confluent wire format),
 * the plain encoding otherwise or when the framed reading fails. */
static int decode_value(struct reader *r, const rd_kafka_message_t *m,
                        long *schema_id, char *err, size_t err_size) {
        const unsigned char *p = m->payload;
        *schema_id = -1;
        if (m->len >= 5 && p[0] == 0 &&
            decode_exact(r, (const char *)p + 5, m->len - 5, err, err_size) ==
                0) {
                *schema_id = (long)((uint32_t)p[1] << 24 | p[2] << 16 |
                                    p[3] << 8 | p[4]);
                return 0;
        }
        return decode_exact(r, (const char *)p, m->len, err, err_size);
}

/* avro_value_to_json() writes bytes as a C string, so a NUL byte cuts the
 * value short (a dead letter's raw bytes often hold one). Top-level bytes
 * fields are therefore repeated exactly, base64, in "value_bytes_base64". */
static void print_bytes_fields(avro_value_t *v) {
        size_t n = 0;
        int first = 1;
        if (avro_value_get_type(v) != AVRO_RECORD || avro_value_get_size(v, &n))
                return;
        for (size_t i = 0; i < n; i++) {
                avro_value_t f;
                const char *name = NULL;
                const void *buf = NULL;
                size_t len = 0;
                if (avro_value_get_by_index(v, i, &f, &name) ||
                    avro_value_get_type(&f) != AVRO_BYTES ||
                    avro_value_get_bytes(&f, &buf, &len))
                        continue;
                fputs(first ? ",\"value_bytes_base64\":{" : ",", stdout);
                first = 0;
                put_json_str(name, strlen(name));
                putchar(':');
                put_base64(buf, len);
        }
        if (!first)
                putchar('}');
}

static void print_value(struct reader *r, const rd_kafka_message_t *m) {
        char err[512];
        char *json = NULL;
        long schema_id;
        if (!r->ready) {
                fputs(",\"value_base64\":", stdout);
                put_base64(m->payload, m->len);
                return;
        }
        if (!m->payload || decode_value(r, m, &schema_id, err, sizeof(err))) {
                fputs(",\"value_error\":", stdout);
                if (!m->payload)
                        snprintf(err, sizeof(err), "null value");
                put_json_str(err, strlen(err));
                return;
        }
        if (avro_value_to_json(&r->value, 1, &json)) {
                /* copied at once: avro_strerror() keeps appending */
                snprintf(err, sizeof(err), "%s", avro_strerror());
                fputs(",\"value_error\":", stdout);
                put_json_str(err, strlen(err));
                return;
        }
        if (schema_id >= 0)
                printf(",\"schema_id\":%ld", schema_id);
        printf(",\"value\":%s", json);
        free(json);
        print_bytes_fields(&r->value);
}

static void print_message(struct reader *r, const rd_kafka_message_t *m) {
        printf("{\"partition\":%d,\"offset\":%lld,\"key\":", (int)m->partition,
               (long long)m->offset);
        if (m->key)
                put_json_str(m->key, m->key_len);
        else
                fputs("null", stdout);
        print_value(r, m);
        fputs("}\n", stdout);
}

/* Kafka ----------------------------------------------------------------- */

static rd_kafka_t *consumer_new(const struct opts *o) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512], group[64];
        rd_kafka_t *rk;
        /* assign() needs a group.id, but nothing joins or commits. */
        snprintf(group, sizeof(group), "tern-test-consume-%d", (int)getpid());
        if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "group.id", group, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "tern-test-consume: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "tern-test-consume: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
        }
        return rk;
}

/* Partition count from metadata; the topic may not exist yet when the
 * producer side is still starting, so unknown-topic is retried until the
 * idle time is over (then: 0 partitions). -1 on a broker error. */
static int partition_count(rd_kafka_t *rk, const struct opts *o) {
        int64_t give_up = now_ms() + (o->idle_ms > 5000 ? o->idle_ms : 5000);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
        int cnt = -1;
        for (;;) {
                const struct rd_kafka_metadata *md;
                rd_kafka_resp_err_t err =
                    rd_kafka_metadata(rk, 0, rkt, &md, 5000);
                if (!err) {
                        err = md->topic_cnt == 1
                                  ? md->topics[0].err
                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                        if (!err)
                                cnt = md->topics[0].partition_cnt;
                        rd_kafka_metadata_destroy(md);
                }
                if (!err && cnt > 0)
                        break;
                if (now_ms() >= give_up) {
                        if (err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
                            err != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC && err) {
                                fprintf(stderr,
                                        "tern-test-consume: metadata "
                                        "for %s: %s\n",
                                        o->topic, rd_kafka_err2str(err));
                                cnt = -1;
                        } else {
                                cnt = 0;
                        }
                        break;
                }
                usleep(200 * 1000);
        }
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

static int assign_all(rd_kafka_t *rk, const char *topic, int cnt) {
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(cnt);
        rd_kafka_resp_err_t err;
        for (int i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err)
                fprintf(stderr, "tern-test-consume: assign: %s\n",
                        rd_kafka_err2str(err));
        return err ? -1 : 0;
}

struct progress {
        long seen;
        int n_parts;
        char *at_eof; /* per partition */
        int64_t last_event;
};

static int all_at_eof(const struct progress *pr) {
        for (int i = 0; i < pr->n_parts; i++)
                if (!pr->at_eof[i])
                        return 0;
        return 1;
}

/* One poll; returns 1 when done, -1 on a fatal error, 0 to go on. */
static int consume_one(rd_kafka_t *rk, struct reader *r, const struct opts *o,
                       struct progress *pr) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        int64_t now = now_ms();
        int rc = 0;
        if (!m) {
                if (all_at_eof(pr) && now - pr->last_event >= o->idle_ms)
                        return 1;
                if (now - pr->last_event >= STALL_MS) {
                        fprintf(stderr,
                                "tern-test-consume: no progress "
                                "for %d ms\n",
                                STALL_MS);
                        return -1;
                }
                return 0;
        }
        pr->last_event = now;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < pr->n_parts)
                        pr->at_eof[m->partition] = 1;
        } else if (m->err) {
                fprintf(stderr, "tern-test-consume: %s\n",
                        rd_kafka_message_errstr(m));
                rc = rd_kafka_fatal_error(rk, NULL, 0) ? -1 : 0;
        } else {
                if (m->partition >= 0 && m->partition < pr->n_parts)
                        pr->at_eof[m->partition] = 0;
                print_message(r, m);
                pr->seen++;
                if (o->count >= 0 && pr->seen >= o->count)
                        rc = 1;
        }
        rd_kafka_message_destroy(m);
        return rc;
}

static int consume(rd_kafka_t *rk, struct reader *r, const struct opts *o,
                   int n_parts, long *seen) {
        struct progress pr = {.n_parts = n_parts, .last_event = now_ms()};
        int rc = 0;
        pr.at_eof = calloc((size_t)n_parts, 1);
        if (!pr.at_eof)
                return -1;
        if (o->count != 0)
                while ((rc = consume_one(rk, r, o, &pr)) == 0)
                        ;
        *seen = pr.seen;
        free(pr.at_eof);
        return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
        struct opts o;
        struct reader r = {0};
        rd_kafka_t *rk = NULL;
        long seen = 0;
        int n_parts, rc = 1;
        parse_opts(argc, argv, &o);
        avro_set_allocator(capped_alloc, NULL);
        if (o.schema_path && reader_init(&r, o.schema_path))
                goto out;
        if (!(rk = consumer_new(&o)))
                goto out;
        n_parts = o.partitions > 0 ? o.partitions : partition_count(rk, &o);
        if (n_parts < 0)
                goto out;
        if (n_parts == 0)
                fprintf(stderr, "tern-test-consume: topic %s does not exist\n",
                        o.topic);
        else if (assign_all(rk, o.topic, n_parts) ||
                 consume(rk, &r, &o, n_parts, &seen))
                goto out;
        rc = 0;
out:
        fflush(stdout);
        fprintf(stderr, "tern-test-consume: %ld messages from %s\n", seen,
                o.topic);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        reader_destroy(&r);
        return rc;
}
