/*
 * 0009-pipeline_faults: a delivery failure stops the commit of its batch.
 *
 * The embedded broker refuses every Produce (TOPIC_AUTHORIZATION_FAILED, a
 * non-retriable error) while the pipeline runs: the pipeline must stop with
 * a fatal error naming the lost outputs and commit neither state nor
 * offsets. Once the broker accepts writes again, a new pipeline on the
 * same state processes every event exactly once.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>

#include "../features/feat_engine.h"
#include "../ingest/ingest_gen.h"
#include "../runtime/rt_cmd.h"
#include "../runtime/rt_feed.h"
#include "../runtime/rt_kafka.h"
#include "../runtime/rt_pipeline.h"
#include "../runtime/rt_stages.h"
#include "test.h"
#include "test_conf.h"

#define N_EVENTS    300
#define PRODUCE_API 0 /* the mock's ApiKey constants are private */

static tern_conf_t *test_conf(const char *state_dir) {
        static const char *const overrides[] = {
            "batch.max_events=50",
            "batch.delivery_timeout_ms=3000",
            "kafka.session_timeout_ms=6000",
            "log.level=error",
            "kafka.producer.message.timeout.ms=2000",
            NULL};
        return test_conf_new(state_dir, overrides, NULL);
}

/* Per-user event counts of what was produced, to compare with the state. */
typedef struct produced {
        char user[N_EVENTS][32];
        int count[N_EVENTS];
        int n;
} produced_t;

static void note_user(produced_t *pr, const tern_event_t *ev) {
        for (int i = 0; i < pr->n; i++)
                if (strlen(pr->user[i]) == ev->user_id.len &&
                    !memcmp(pr->user[i], ev->user_id.ptr, ev->user_id.len)) {
                        pr->count[i]++;
                        return;
                }
        snprintf(pr->user[pr->n], 32, "%.*s", (int)ev->user_id.len,
                 ev->user_id.ptr);
        pr->count[pr->n++] = 1;
}

static int fill_input(const tern_conf_t *conf, const char *brokers,
                      produced_t *pr) {
        char errstr[512];
        ingest_gen_conf_t gc;
        ingest_gen_t *gen;
        rt_feed_t *feed = rt_feed_new(conf, brokers, conf->topic_input, NULL,
                                      errstr, sizeof(errstr));
        int rc = 0;
        if (!feed)
                return -1;
        ingest_gen_conf_default(&gc);
        gc.users = 50;
        gc.items = 200;
        gen = ingest_gen_new(&gc);
        for (int i = 0; i < N_EVENTS && !rc; i++) {
                tern_event_t ev;
                tern_event_clear(&ev);
                ingest_gen_next(gen, &ev);
                note_user(pr, &ev);
                rc =
                    rt_feed_event(feed, &ev, errstr, sizeof(errstr)) != TERN_OK;
        }
        if (!rc)
                rc = rt_feed_flush(feed, 30000, errstr, sizeof(errstr)) !=
                     TERN_OK;
        ingest_gen_destroy(gen);
        rt_feed_destroy(feed);
        return rc;
}

static tern_code_t run_pipeline(const tern_conf_t *conf, const char *brokers,
                                int64_t *stored, char *errstr, size_t size) {
        rt_pipeline_t *p = rt_pipeline_new(
            &(rt_pipeline_opts_t){.conf = conf, .brokers = brokers}, errstr,
            size);
        tern_code_t rc;
        if (!p)
                return TERN_ERR_KAFKA;
        rt_pipeline_drain_at(p, 0, N_EVENTS);
        rc = rt_pipeline_run(p, errstr, size);
        *stored = rt_pipeline_stored_offset(p, 0);
        rt_pipeline_destroy(p);
        return rc;
}

static void delivery_failure_commits_nothing(void) {
        static produced_t pr;
        char *dir = test_tmpdir("faults"), errstr[1024];
        tern_conf_t *conf = test_conf(dir);
        rt_broker_t *b = rt_broker_new(1, errstr, sizeof(errstr));
        rd_kafka_resp_err_t refuse[64];
        feat_store_t *st;
        feat_engine_t *eng;
        int64_t stored = -1;
        TEST_ASSERT(b, "%s", errstr);
        TEST_EQ_INT(rt_broker_create_topics(b, conf, 1, errstr, sizeof(errstr)),
                    0);
        TEST_EQ_INT(fill_input(conf, rt_broker_bootstraps(b), &pr), 0);

        for (size_t i = 0; i < 64; i++)
                refuse[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        rd_kafka_mock_push_request_errors_array(rt_broker_mock(b), PRODUCE_API,
                                                64, refuse);
        TEST_ASSERT(run_pipeline(conf, rt_broker_bootstraps(b), &stored, errstr,
                                 sizeof(errstr)) == TERN_ERR_KAFKA,
                    "the pipeline must stop on a delivery failure");
        /* Reported at the commit's flush, or by the next send once a
         * delivery report has failed (the first failure is sticky). */
        TEST_ASSERT(strstr(errstr, "not delivered") ||
                        strstr(errstr, "Topic authorization failed"),
                    "message: %s", errstr);
        TEST_EQ_INT(stored, 0); /* nothing committed: no state, no offsets */

        rd_kafka_mock_clear_request_errors(rt_broker_mock(b), PRODUCE_API);
        TEST_ASSERT(run_pipeline(conf, rt_broker_bootstraps(b), &stored, errstr,
                                 sizeof(errstr)) == TERN_OK,
                    "%s", errstr);
        TEST_EQ_INT(stored, N_EVENTS);

        /* Every produced event is in the state exactly once. */
        st = rt_stages_store(conf, NULL, 1, errstr, sizeof(errstr));
        TEST_ASSERT(st, "%s", errstr);
        eng = rt_stages_engine(conf, st, errstr, sizeof(errstr));
        for (int i = 0; i < pr.n; i++) {
                const feat_user_t *u;
                uint64_t total = 0;
                TEST_EQ_INT(feat_engine_user(eng, pr.user[i],
                                             (uint32_t)strlen(pr.user[i]), -1,
                                             &u, errstr, sizeof(errstr)),
                            TERN_OK);
                for (int t = 0; t < TERN_EV__CNT; t++)
                        total += u->profile.events[t];
                TEST_ASSERT(total == (uint64_t)pr.count[i],
                            "user %s: %llu events in state, %d produced",
                            pr.user[i], (unsigned long long)total, pr.count[i]);
        }
        feat_engine_destroy(eng);
        feat_store_close(st);
        rt_broker_destroy(b);
        conf_destroy(conf);
        free(dir);
}

TEST_MAIN(TEST_CASE(delivery_failure_commits_nothing));
