/*
 * 0025-hostile_input: hostile records through the real pipeline are
 * dead-lettered with a reason, valid ones around them are applied, and
 * memory stays bounded.
 *
 * An embedded broker's input topic gets N_VALID generated events, then
 * raw records written with a plain librdkafka producer (message.max.bytes
 * raised so oversized ones reach the topic): oversized (1.2 MB, over
 * input.max_record_bytes = 1 MiB), garbage of 1,040,000 bytes (under that
 * limit, over the producer's message.max.bytes: its dead letter once
 * stopped the pipeline, "Message size too large"), a huge declared string
 * length (2^40), an unknown Confluent schema id, a wrong first byte on a framed
 * record, a truncated record, an empty payload. rt_pipeline runs until drained
 * with --emit, and the dead-letter jsonl is tallied by reason. Deep
 * nesting needs a recursive writer schema, which only the fuzz target
 * registers (tests/fuzz/fuzz_decode.c).
 *
 * (Few big records: the mock cluster keeps only a few MB per partition and
 * drops older data past that, which would look like lost input.)
 *
 * The peak RSS of this process is printed (getrusage) and must stay far
 * below the bytes that went in: nothing is allocated from a declared
 * length, and a dead letter carries at most input.max_record_bytes.
 */
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../conf/conf.h"
#include "../ingest/ingest_encode.h"
#include "../ingest/ingest_gen.h"
#include "../runtime/rt_kafka.h"
#include "../runtime/rt_pipeline.h"
#include "../runtime/rt_stages.h"
#include "test.h"
#include "test_conf.h"

#define N_VALID     300
#define N_EACH      50 /* of each small hostile kind */
#define N_OVERSIZED 2
#define NEAR_MAX    1040000      /* over the producer's 1,000,000 */
#define OVERSIZED   (1200 << 10) /* over 1 MiB */

enum {
        K_OVERSIZED,
        K_NEAR_MAX,
        K_HUGE_LEN,
        K_SCHEMA_ID,
        K_MAGIC,
        K_TRUNC,
        K_EMPTY,
        K__N
};

static tern_conf_t *test_conf(const char *state_dir) {
        static const char *const overrides[] = {"batch.max_events=100",
                                                "log.level=error", NULL};
        return test_conf_new(state_dir, overrides, NULL);
}

static void gen_event(ingest_gen_t *gen, tern_buf_t *out, int32_t id) {
        tern_event_t ev;
        tern_event_clear(&ev);
        ingest_gen_next(gen, &ev);
        tern_buf_reset(out);
        ingest_encode_event(&ev, id, out);
}

/* One hostile payload of kind k into out (a reused buffer). */
static void hostile(int k, ingest_gen_t *gen, tern_buf_t *out) {
        /* zigzag(2^40) as a varint: a string length no record can hold */
        static const uint8_t huge_len[] = {0x80, 0x80, 0x80, 0x80,
                                           0x80, 0x80, 0x02, 'x'};
        switch (k) {
        case K_OVERSIZED:
                tern_buf_reset(out);
                for (size_t i = 0; i < OVERSIZED; i++)
                        tern_buf_append(out, "A", 1);
                break;
        case K_NEAR_MAX: /* garbage just under max_record_bytes */
                tern_buf_reset(out);
                for (size_t i = 0; i < NEAR_MAX; i++)
                        tern_buf_append(out, "\xff", 1);
                break;
        case K_HUGE_LEN:
                tern_buf_reset(out);
                tern_buf_append(out, huge_len, sizeof(huge_len));
                break;
        case K_SCHEMA_ID:
                gen_event(gen, out, 999);
                break;
        case K_MAGIC: /* a framed record whose magic byte is not 0 */
                gen_event(gen, out, 1);
                out->data[0] = 0x07;
                break;
        case K_TRUNC:
                gen_event(gen, out, -1);
                out->len /= 2;
                break;
        default:
                tern_buf_reset(out);
        }
}

static int produce(const char *brokers, const char *topic, const void *p,
                   size_t len, rd_kafka_t *rk) {
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                    RD_KAFKA_V_VALUE((void *)p, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100);
        (void)brokers;
        return err ? -1 : 0;
}

/* N_VALID events, then every hostile kind; returns records written. */
static int fill_input(const tern_conf_t *conf, const char *brokers,
                      int *n_hostile) {
        char errstr[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_t *rk;
        ingest_gen_conf_t gc;
        ingest_gen_t *gen;
        tern_buf_t buf;
        int n = 0;
        rd_kafka_conf_set(kc, "bootstrap.servers", brokers, errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(kc, "message.max.bytes", "8000000", errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(kc, "enable.idempotence", "true", errstr,
                          sizeof(errstr));
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr))))
                return -1;
        ingest_gen_conf_default(&gc);
        gc.users = 50;
        gc.items = 200;
        gen = ingest_gen_new(&gc);
        tern_buf_init(&buf, 8 << 20);
        for (int i = 0; i < N_VALID; i++, n++) {
                gen_event(gen, &buf, -1);
                produce(brokers, conf->topic_input, buf.data, buf.len, rk);
        }
        *n_hostile = 0;
        for (int k = 0; k < K__N; k++) {
                int count =
                    k == K_OVERSIZED || k == K_NEAR_MAX ? N_OVERSIZED : N_EACH;
                for (int i = 0; i < count; i++, n++, (*n_hostile)++) {
                        hostile(k, gen, &buf);
                        produce(brokers, conf->topic_input, buf.data, buf.len,
                                rk);
                }
        }
        if (rd_kafka_flush(rk, 30000))
                n = -1;
        tern_buf_free(&buf);
        ingest_gen_destroy(gen);
        rd_kafka_destroy(rk);
        return n;
}

/* Dead letters by reason, from DIR/<dead-letter topic>.jsonl. */
static int tally(const char *dir, const char *topic, char reasons[][32],
                 int *counts, int max) {
        char path[2200], *line = NULL;
        size_t cap = 0;
        int n = 0;
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s.jsonl", dir, topic);
        if (!(f = fopen(path, "r")))
                return -1;
        while (getline(&line, &cap, f) > 0) {
                const char *r = strstr(line, "\"reason\":\"");
                char reason[32] = "";
                int j;
                if (r)
                        sscanf(r + 10, "%31[^\"]", reason);
                for (j = 0; j < n && strcmp(reasons[j], reason); j++)
                        ;
                if (j == n && n < max)
                        snprintf(reasons[n++], 32, "%s", reason);
                if (j < max)
                        counts[j]++;
        }
        free(line);
        fclose(f);
        return n;
}

static void hostile_records_dead_lettered(void) {
        char *dir = test_tmpdir("hostile"), errstr[1024], emit[1024];
        tern_conf_t *conf = test_conf(dir);
        rt_broker_t *b = rt_broker_new(1, errstr, sizeof(errstr));
        rt_pipeline_t *p;
        rt_pipeline_stats_t st;
        char reasons[16][32];
        int counts[16] = {0}, n_reasons, total, n_hostile = 0, sum = 0;
        struct rusage ru;
        TEST_ASSERT(b, "%s", errstr);
        TEST_EQ_INT(rt_broker_create_topics(b, conf, 1, errstr, sizeof(errstr)),
                    0);
        total = fill_input(conf, rt_broker_bootstraps(b), &n_hostile);
        TEST_EQ_INT(total, N_VALID + n_hostile);
        snprintf(emit, sizeof(emit), "%s/emit", dir);
        TEST_ASSERT(mkdir(emit, 0755) == 0, "mkdir %s", emit);
        p = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf,
                                  .brokers = rt_broker_bootstraps(b),
                                  .emit_dir = emit},
            errstr, sizeof(errstr));
        TEST_ASSERT(p, "%s", errstr);
        rt_pipeline_drain_at(p, 0, total);
        TEST_ASSERT(rt_pipeline_run(p, errstr, sizeof(errstr)) == TERN_OK, "%s",
                    errstr);
        rt_pipeline_stats(p, &st);
        TEST_EQ_INT(rt_pipeline_stored_offset(p, 0), total);
        rt_pipeline_destroy(p);
        fprintf(stderr, "  records_in %llu events_in %llu dead %llu\n",
                (unsigned long long)st.records_in,
                (unsigned long long)st.events_in,
                (unsigned long long)st.dead_lettered);
        TEST_EQ_INT(st.events_in, N_VALID);
        TEST_EQ_INT(st.dead_lettered, n_hostile);

        n_reasons = tally(emit, conf->topic_dead_letter, reasons, counts, 16);
        TEST_ASSERT(n_reasons > 0, "no dead-letter file in %s", emit);
        for (int j = 0; j < n_reasons; j++) {
                fprintf(stderr, "  dead-lettered %d as %s\n", counts[j],
                        reasons[j]);
                TEST_ASSERT(reasons[j][0], "a dead letter without a reason");
                sum += counts[j];
                if (!strcmp(reasons[j], "too_large"))
                        TEST_EQ_INT(counts[j], N_OVERSIZED);
                if (!strcmp(reasons[j], "unknown_schema"))
                        TEST_EQ_INT(counts[j], N_EACH);
        }
        TEST_EQ_INT(sum, n_hostile);
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "  %d hostile records of %d kinds (%d KiB over 1 MB), "
                "peak RSS %ld MiB\n",
                n_hostile, K__N,
                N_OVERSIZED * (int)((OVERSIZED + NEAR_MAX) >> 10),
                ru.ru_maxrss >> 10);
        /* Bounded: a few times the largest record, not the input. */
        TEST_ASSERT(ru.ru_maxrss >> 10 < 512, "peak RSS %ld MiB",
                    ru.ru_maxrss >> 10);
        rt_broker_destroy(b);
        conf_destroy(conf);
        free(dir);
}

TEST_MAIN(TEST_CASE(hostile_records_dead_lettered));
