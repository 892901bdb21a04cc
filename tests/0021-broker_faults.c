/* TERN_TEST_LABEL: e2e */
/*
 * 0021-broker_faults: broker faults injected mid-stream with the mock
 * cluster's own tools; tern keeps going or stops with a fatal error, and
 * after recovery (and a restart where it stopped) its state digest and
 * stored offset equal those of a run on the same input without faults.
 *
 * Every case: a fresh 3-broker mock cluster, one input partition (exact
 * digest comparisons need one: the global models depend on how partitions
 * interleave) led by broker 1 and every output topic led by broker 2, so an
 * error pushed on broker 2's Produce stack reaches the pipeline's producer
 * and not the test's feeder. The first half of the input is fed and
 * committed, the fault is injected, the second half is fed (from a thread:
 * it may wait for the brokers), the fault is healed, and the pipeline runs
 * until the whole input is committed or a fatal error stops it.
 *
 * Each case prints one line: the fault, how many injected errors the
 * brokers actually returned, the outcome (kept going / fatal + message) and
 * the wall time. A group join takes ~3 s, so a case takes 3-12 s.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../features/feat_engine.h"
#include "../ingest/ingest_gen.h"
#include "../runtime/rt_feed.h"
#include "../runtime/rt_kafka.h"
#include "../runtime/rt_pipeline.h"
#include "../runtime/rt_stages.h"
#include "test.h"
#include "test_conf.h"

#define N_EVENTS 600
#define HALF     (N_EVENTS / 2)
#define BROKERS  3
#define IN_LEAD  1 /* leader of the input partition */
#define OUT_LEAD 2 /* leader of every output partition */

/* The mock's ApiKey constants are private. */
#define API_PRODUCE      0
#define API_FETCH        1
#define API_OFFSETCOMMIT 8
#define API_OFFSETFETCH  9

static const char *const base_overrides[] = {
    "batch.max_events=50", "batch.delivery_timeout_ms=4000",
    "kafka.session_timeout_ms=6000", "log.level=error",
    "kafka.producer.message.timeout.ms=3000",
    /* The faults are injected cluster-wide: a control-topic consumer would
     * take some of the fetch errors meant for the input. */
    "topics.control=", NULL};

static tern_conf_t *test_conf(const char *state_dir, const char *const *extra) {
        return test_conf_new(state_dir, base_overrides, extra);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the cluster ---- */

static rt_broker_t *cluster_new(const tern_conf_t *conf) {
        char errstr[512];
        rt_broker_t *b = rt_broker_new(BROKERS, errstr, sizeof(errstr));
        const char *outputs[] = {
            conf->topic_recommendations, conf->topic_dead_letter,
            conf->topic_ctr_scores,      conf->topic_churn_scores,
            conf->topic_churn_alerts,    conf->topic_model_alerts};
        if (!b || rt_broker_create_topics(b, conf, 1, errstr, sizeof(errstr))) {
                fprintf(stderr, "cluster: %s\n", errstr);
                rt_broker_destroy(b);
                return NULL;
        }
        rd_kafka_mock_partition_set_leader(rt_broker_mock(b), conf->topic_input,
                                           0, IN_LEAD);
        for (size_t i = 0; i < sizeof(outputs) / sizeof(*outputs); i++)
                rd_kafka_mock_partition_set_leader(rt_broker_mock(b),
                                                   outputs[i], 0, OUT_LEAD);
        return b;
}

/* Push errs on one broker's stack for ApiKey (broker < 0: all brokers). */
static void push_errors(rt_broker_t *b, int broker, int16_t api, size_t n,
                        const rd_kafka_resp_err_t *errs) {
        for (int id = 1; id <= BROKERS; id++)
                if (broker < 0 || broker == id)
                        for (size_t i = 0; i < n; i++)
                                rd_kafka_mock_broker_push_request_error_rtts(
                                    rt_broker_mock(b), id, api, 1, errs[i], 0);
}

static size_t errors_left(rt_broker_t *b, int16_t api) {
        size_t total = 0;
        for (int id = 1; id <= BROKERS; id++) {
                size_t cnt = 0;
                rd_kafka_mock_broker_error_stack_cnt(rt_broker_mock(b), id, api,
                                                     &cnt);
                total += cnt;
        }
        return total;
}

/* ---- input: the same seeded stream in every case ---- */

typedef struct feeder {
        const tern_conf_t *conf;
        const char *brokers;
        ingest_gen_t *gen;
        int n;
        int rc;
        char errstr[512];
} feeder_t;

static void *feed_events(void *arg) {
        feeder_t *f = arg;
        rt_feed_t *feed = rt_feed_new(f->conf, f->brokers, f->conf->topic_input,
                                      NULL, f->errstr, sizeof(f->errstr));
        f->rc = feed == NULL;
        for (int i = 0; i < f->n && !f->rc; i++) {
                tern_event_t ev;
                tern_event_clear(&ev);
                ingest_gen_next(f->gen, &ev);
                f->rc = rt_feed_event(feed, &ev, f->errstr,
                                      sizeof(f->errstr)) != TERN_OK;
        }
        if (!f->rc)
                f->rc = rt_feed_flush(feed, 60000, f->errstr,
                                      sizeof(f->errstr)) != TERN_OK;
        rt_feed_destroy(feed);
        return NULL;
}

static ingest_gen_t *gen_new(void) {
        ingest_gen_conf_t gc;
        ingest_gen_conf_default(&gc);
        gc.users = 50;
        gc.items = 200;
        return ingest_gen_new(&gc);
}

/* ---- the pipeline in a thread ---- */

typedef struct runner {
        rt_pipeline_t *p;
        tern_code_t rc;
        char errstr[1024];
} runner_t;

static void *run_thread(void *arg) {
        runner_t *r = arg;
        r->rc = rt_pipeline_run(r->p, r->errstr, sizeof(r->errstr));
        return NULL;
}

/* Waits until the pipeline's committed (or consumed) position reaches
 * target or it has stopped; 0 when reached. */
static int wait_for(rt_pipeline_t *p, const volatile int *stopped, int consumed,
                    int64_t target, double timeout_s) {
        double end = now_s() + timeout_s;
        while (now_s() < end && !*stopped) {
                int64_t at = consumed ? rt_pipeline_position(p, 0)
                                      : rt_pipeline_committed(p, 0);
                if (at >= target)
                        return 0;
                usleep(10000);
        }
        return -1;
}

/* ---- one case ---- */

typedef struct fault {
        const char *name;
        const char *const *overrides; /* NULL-terminated, or NULL */
        /* Injected once the first half is committed (or, with
         * after_consumed, once the pipeline has consumed that much of the
         * second half: outputs are then in flight). */
        void (*inject)(rt_broker_t *b);
        void (*heal)(rt_broker_t *b);
        void (*prepare)(rt_broker_t *b); /* at the first half, or NULL */
        int16_t api; /* whose error stack to count, -1 = none */
        int64_t after_consumed;
        int hold_ms;     /* the fault lasts at least this long */
        int expect;      /* 0 keeps going, 1 fatal, -1 either */
        const char *msg; /* a fatal error's message contains this */
} fault_t;

typedef struct outcome {
        char digest[4096];
        int64_t stored;
        int fatal;
        char errstr[1024];
        size_t injected_left;
        double seconds;
} outcome_t;

static tern_code_t read_digest(const tern_conf_t *conf, outcome_t *out,
                               char *errstr, size_t size) {
        tern_buf_t buf;
        tern_code_t rc;
        feat_store_t *st = rt_stages_store(conf, NULL, 1, errstr, size);
        if (!st)
                return TERN_ERR_STATE;
        tern_buf_init(&buf, sizeof(out->digest) - 1);
        rc = feat_inspect_digest_json(st, &buf, errstr, size);
        if (rc == TERN_OK)
                snprintf(out->digest, sizeof(out->digest), "%.*s", (int)buf.len,
                         (const char *)buf.data);
        tern_buf_free(&buf);
        feat_store_close(st);
        return rc;
}

/* A restart after a fatal stop: a new pipeline on the same state, no
 * fault, until the whole input is committed. */
static tern_code_t restart(const tern_conf_t *conf, const char *brokers,
                           char *errstr, size_t size) {
        tern_code_t rc;
        rt_pipeline_t *p = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf, .brokers = brokers}, errstr,
            size);
        if (!p)
                return TERN_ERR_KAFKA;
        rt_pipeline_drain_at(p, 0, N_EVENTS);
        rc = rt_pipeline_run(p, errstr, size);
        rt_pipeline_destroy(p);
        return rc;
}

static int run_case(const fault_t *f, outcome_t *out) {
        char *dir = test_tmpdir("bfault"), errstr[1024];
        tern_conf_t *conf = test_conf(dir, f ? f->overrides : NULL);
        rt_broker_t *b = cluster_new(conf);
        feeder_t fd = {.conf = conf, .n = HALF};
        runner_t r = {0};
        pthread_t pt, ft;
        volatile int stopped = 0;
        double t0 = now_s();
        int rc = -1;
        memset(out, 0, sizeof(*out));
        if (!b)
                goto done;
        fd.brokers = rt_broker_bootstraps(b);
        fd.gen = gen_new();
        feed_events(&fd);
        if (fd.rc) {
                fprintf(stderr, "feed: %s\n", fd.errstr);
                goto done;
        }
        r.p = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf, .brokers = fd.brokers}, errstr,
            sizeof(errstr));
        if (!r.p) {
                fprintf(stderr, "pipeline: %s\n", errstr);
                goto done;
        }
        rt_pipeline_drain_at(r.p, 0, N_EVENTS);
        pthread_create(&pt, NULL, run_thread, &r);
        if (wait_for(r.p, &stopped, 0, HALF, 60))
                fprintf(stderr, "  first half not committed in 60 s\n");
        if (f && f->prepare)
                f->prepare(b);
        if (f && f->inject && !f->after_consumed)
                f->inject(b);
        pthread_create(&ft, NULL, feed_events, &fd);
        if (f && f->inject && f->after_consumed > 0) {
                wait_for(r.p, &stopped, 1, HALF + f->after_consumed, 60);
                f->inject(b);
        }
        if (f && f->inject && f->after_consumed < 0) {
                pthread_join(ft, NULL); /* the feeder must not see it */
                f->inject(b);
        }
        if (f && f->hold_ms)
                usleep((useconds_t)f->hold_ms * 1000);
        out->injected_left = f && f->api >= 0 ? errors_left(b, f->api) : 0;
        if (f && f->heal)
                f->heal(b);
        if (!f || f->after_consumed >= 0)
                pthread_join(ft, NULL);
        pthread_join(pt, NULL);
        rt_pipeline_destroy(r.p);
        if (fd.rc) {
                fprintf(stderr, "feed: %s\n", fd.errstr);
                goto done;
        }
        out->fatal = r.rc != TERN_OK;
        snprintf(out->errstr, sizeof(out->errstr), "%s", r.errstr);
        if (out->fatal &&
            restart(conf, fd.brokers, errstr, sizeof(errstr)) != TERN_OK) {
                fprintf(stderr, "restart: %s\n", errstr);
                goto done;
        }
        if (read_digest(conf, out, errstr, sizeof(errstr)) != TERN_OK) {
                fprintf(stderr, "digest: %s\n", errstr);
                goto done;
        }
        {
                feat_store_t *st =
                    rt_stages_store(conf, NULL, 1, errstr, sizeof(errstr));
                int found = 0;
                if (st) {
                        feat_store_offset_get(st, conf->topic_input, 0,
                                              &out->stored, &found, errstr,
                                              sizeof(errstr));
                        feat_store_close(st);
                }
        }
        out->seconds = now_s() - t0;
        rc = 0;
done:
        if (fd.gen)
                ingest_gen_destroy(fd.gen);
        rt_broker_destroy(b);
        conf_destroy(conf);
        free(dir);
        return rc;
}

/* ---- the faults ---- */

static void fetch_transient(rt_broker_t *b) {
        static const rd_kafka_resp_err_t e[] = {
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT};
        rd_kafka_mock_push_request_errors_array(rt_broker_mock(b), API_FETCH,
                                                sizeof(e) / sizeof(*e), e);
}

static void fetch_out_of_range(rt_broker_t *b) {
        static const rd_kafka_resp_err_t e[] = {
            RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE};
        push_errors(b, IN_LEAD, API_FETCH, 1, e);
}

static void slow_outputs(rt_broker_t *b) {
        rd_kafka_mock_broker_set_rtt(rt_broker_mock(b), OUT_LEAD, 1500);
}

/* Produce errors go on the whole cluster (the feeder may take some of the
 * retriable ones: it retries them as the pipeline does). */
static void produce_transient(rt_broker_t *b) {
        static const rd_kafka_resp_err_t e[] = {
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS};
        rd_kafka_mock_push_request_errors_array(rt_broker_mock(b), API_PRODUCE,
                                                sizeof(e) / sizeof(*e), e);
}

static void produce_refused(rt_broker_t *b) {
        rd_kafka_resp_err_t e[64];
        for (size_t i = 0; i < 64; i++)
                e[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        rd_kafka_mock_push_request_errors_array(rt_broker_mock(b), API_PRODUCE,
                                                64, e);
}

static void produce_heal(rt_broker_t *b) {
        rd_kafka_mock_clear_request_errors(rt_broker_mock(b), API_PRODUCE);
        rd_kafka_mock_broker_set_rtt(rt_broker_mock(b), OUT_LEAD, 0);
}

static void offset_errors(rt_broker_t *b) {
        static const rd_kafka_resp_err_t commit[] = {
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID};
        static const rd_kafka_resp_err_t fetch[] = {
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS};
        push_errors(b, -1, API_OFFSETCOMMIT, sizeof(commit) / sizeof(*commit),
                    commit);
        push_errors(b, -1, API_OFFSETFETCH, sizeof(fetch) / sizeof(*fetch),
                    fetch);
}

static void all_down(rt_broker_t *b) {
        for (int id = 1; id <= BROKERS; id++)
                rd_kafka_mock_broker_set_down(rt_broker_mock(b), id);
}

static void all_up(rt_broker_t *b) {
        for (int id = 1; id <= BROKERS; id++) {
                rd_kafka_mock_broker_set_up(rt_broker_mock(b), id);
                rd_kafka_mock_broker_set_rtt(rt_broker_mock(b), id, 0);
        }
}

static void all_slow(rt_broker_t *b) {
        for (int id = 1; id <= BROKERS; id++)
                rd_kafka_mock_broker_set_rtt(rt_broker_mock(b), id, 250);
}

static const char *const long_timeouts[] = {
    "kafka.producer.message.timeout.ms=20000",
    "batch.delivery_timeout_ms=25000", NULL};

static outcome_t reference;

static void check(const fault_t *f) {
        static outcome_t o;
        TEST_EQ_INT(run_case(f, &o), 0);
        printf("  %-27s %-10s %5.1f s", f->name,
               o.fatal ? "FATAL" : "kept going", o.seconds);
        if (f->api >= 0)
                printf(", %zu injected errors unused", o.injected_left);
        printf("%s%s\n", o.fatal ? ": " : "", o.fatal ? o.errstr : "");
        TEST_ASSERT(f->expect < 0 || o.fatal == f->expect,
                    "%s: expected %s, got %s: %s", f->name,
                    f->expect ? "a fatal stop" : "to keep going",
                    o.fatal ? "a fatal stop" : "no error", o.errstr);
        TEST_ASSERT(!o.fatal || (f->msg && strstr(o.errstr, f->msg)),
                    "%s: fatal message \"%s\" lacks \"%s\"", f->name, o.errstr,
                    f->msg ? f->msg : "(no fatal expected)");
        TEST_EQ_INT(o.stored, N_EVENTS);
        TEST_EQ_STR(o.digest, reference.digest);
}

static void reference_run(void) {
        TEST_EQ_INT(run_case(NULL, &reference), 0);
        TEST_EQ_INT(reference.stored, N_EVENTS);
        TEST_ASSERT(reference.digest[0], "no digest");
        printf("  reference: %s (%.1f s)\n", reference.digest,
               reference.seconds);
}

static void fetch_errors_retried(void) {
        check(&(fault_t){"fetch transient x6", NULL, fetch_transient, NULL,
                         NULL, -1, 0, 500, 0, NULL});
}

static void fetch_out_of_range_fatal(void) {
        check(&(fault_t){"fetch offset out of range", NULL, fetch_out_of_range,
                         NULL, NULL, API_FETCH, 0, 0, 1,
                         "out of the log's range"});
}

static void produce_errors_retried(void) {
        check(&(fault_t){"produce transient x6", NULL, produce_transient,
                         produce_heal, NULL, -1, 0, 1000, 0, NULL});
}

static void produce_refused_fatal(void) {
        check(&(fault_t){"produce refused x64", NULL, produce_refused,
                         produce_heal, slow_outputs, -1, -1, 3000, 1,
                         "uthorization"});
}

static void offset_commit_errors(void) {
        check(&(fault_t){"offsetcommit/fetch x5/x2", NULL, offset_errors, NULL,
                         NULL, API_OFFSETCOMMIT, 0, 1000, 0, NULL});
}

static void all_down_short(void) {
        check(&(fault_t){"all brokers down 3 s", long_timeouts, all_down,
                         all_up, NULL, -1, 0, 3000, 0, NULL});
}

/* Outputs slowed to 1.5 s a request, so some are in flight when every
 * broker goes down for longer than message.timeout.ms (3 s). */
static void all_down_past_timeout(void) {
        check(&(fault_t){"down 6 s, outputs in flight", NULL, all_down, all_up,
                         slow_outputs, -1, 10, 6000, 1, "not delivered"});
}

static void slow_brokers(void) {
        check(&(fault_t){"all brokers rtt 250 ms", long_timeouts, all_slow,
                         all_up, NULL, -1, 0, 2000, 0, NULL});
}

TEST_MAIN(TEST_CASE(reference_run), TEST_CASE(fetch_errors_retried),
          TEST_CASE(fetch_out_of_range_fatal),
          TEST_CASE(produce_errors_retried), TEST_CASE(produce_refused_fatal),
          TEST_CASE(offset_commit_errors), TEST_CASE(all_down_short),
          TEST_CASE(all_down_past_timeout), TEST_CASE(slow_brokers));
