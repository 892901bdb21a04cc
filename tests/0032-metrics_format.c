/*
 * 0032-metrics_format: the Prometheus text of a hand-built snapshot
 * (rt_metrics_format) — every family with # HELP and # TYPE, label values
 * escaped, a model that is off without samples, NaN for undefined
 * figures, cumulative histogram buckets, the Schema Registry's and the
 * control topic's counters (absent without either) — and the probes'
 * answers by phase, heartbeat and assignment (rt_metrics_healthz,
 * rt_metrics_readyz; a rebalance that leaves no partition is not ready).
 * The end-to-end counterpart, against a live replay, is 0028-metrics.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/rt_metrics.h"
#include "test.h"

static void format(const rt_metrics_snap_t *s, tern_buf_t *out) {
        tern_buf_init(out, 1 << 20);
        rt_metrics_format(s, out);
        tern_buf_put_u8(out, 0);
}

static int has_line(const tern_buf_t *b, const char *line) {
        const char *text = (const char *)b->data;
        size_t n = strlen(line);
        for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return 1;
        return 0;
}

static void test_format(void) {
        static rt_metrics_snap_t s;
        tern_buf_t b;
        memset(&s, 0, sizeof(s));
        s.records_in = 10;
        s.events_by_type[TERN_EV_CLICK] = 3;
        s.n_outputs = 1;
        snprintf(s.outputs[0].topic, sizeof(s.outputs[0].topic), "a\"b\\c");
        s.outputs[0].delivered = 7;
        s.commit_le[5] = 1; /* cumulative: one commit <= 0.05 s ... */
        for (int i = 6; i < RT_METRICS_BUCKETS; i++)
                s.commit_le[i] = 2; /* ... and the second <= 0.1 s */
        s.commit_count = 2;
        s.commit_seconds_sum = 0.125;
        s.n_lag = 2;
        snprintf(s.lag_topic, sizeof(s.lag_topic), "in");
        s.lag[0].partition = 0;
        s.lag[0].messages = 5;
        s.lag[1].partition = 3;
        s.churn = (rt_metrics_model_t){1, 4, 0.5, NAN};
        s.ready = 1;
        s.malloc_trims = 4;
        s.malloc_trim_seconds = 0.0025;
        format(&s, &b);
        TEST_ASSERT(!b.overflow, "overflow");
        TEST_ASSERT(has_line(&b, "tern_records_in_total 10"), "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_events_in_total{type=\"click\"} 3"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_outputs_total{topic=\"a\\\"b\\\\c\"} 7"),
                    "%s", b.data);
        TEST_ASSERT(
            has_line(&b, "tern_batch_commit_seconds_bucket{le=\"0.01\"} 0"),
            "%s", b.data);
        TEST_ASSERT(
            has_line(&b, "tern_batch_commit_seconds_bucket{le=\"0.05\"} 1"),
            "%s", b.data);
        TEST_ASSERT(
            has_line(&b, "tern_batch_commit_seconds_bucket{le=\"10\"} 2"), "%s",
            b.data);
        TEST_ASSERT(
            has_line(&b, "tern_batch_commit_seconds_bucket{le=\"+Inf\"} 2"),
            "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_batch_commit_seconds_sum 0.125"), "%s",
                    b.data);
        TEST_ASSERT(has_line(&b, "tern_batch_commit_seconds_count 2"), "%s",
                    b.data);
        TEST_ASSERT(
            has_line(&b, "tern_consumer_lag{topic=\"in\",partition=\"3\"} 0"),
            "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_model_auc{model=\"churn\"} NaN"), "%s",
                    b.data);
        TEST_ASSERT(has_line(&b, "tern_model_logloss{model=\"churn\"} 0.5"),
                    "%s", b.data);
        TEST_ASSERT(!strstr((const char *)b.data, "model=\"ctr\""),
                    "ctr is off but has samples: %s", b.data);
        TEST_ASSERT(has_line(&b, "tern_ready 1"), "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_malloc_trims_total 4"), "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_malloc_trim_seconds_total 0.0025"), "%s",
                    b.data);
        TEST_ASSERT(has_line(&b, "# TYPE tern_batch_commit_seconds histogram"),
                    "%s", b.data);
        TEST_ASSERT(!has_line(&b, "tern_schema_registry_requests_total 0") &&
                        !strstr((const char *)b.data,
                                "tern_schema_registry_lookups_total{"),
                    "no registry but samples: %s", b.data);
        TEST_ASSERT(
            !strstr((const char *)b.data, "tern_control_records_total{"),
            "no control but samples: %s", b.data);
        tern_buf_free(&b);
}

static void test_registry_and_control(void) {
        static rt_metrics_snap_t s;
        tern_buf_t b;
        memset(&s, 0, sizeof(s));
        s.registry = 1;
        s.schemas = (ingest_registry_stats_t){.requests = 4,
                                              .from_memory = 1,
                                              .from_cache = 2,
                                              .from_registry = 3,
                                              .from_schema_dir = 5,
                                              .failed = 9,
                                              .failed_cached = 7,
                                              .cache_write_failed = 1};
        s.control = 1;
        s.control_applied = 12;
        s.control_rejected = 2;
        s.control_last_partition = 1;
        s.control_last_offset = 41;
        format(&s, &b);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_requests_total 4"), "%s",
                    b.data);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"memory\"} 1"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"cache\"} 2"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"registry\"} 3"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"schema_dir\"} 5"),
                    "%s", b.data);
        /* failed and failed_cached are disjoint: 9 failures, 7 cached */
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"failed\"} 2"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_schema_registry_lookups_total{result="
                                 "\"failed_cached\"} 7"),
                    "%s", b.data);
        TEST_ASSERT(
            has_line(&b, "tern_schema_registry_cache_write_failures_total 1"),
            "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_control_records_total{result="
                                 "\"applied\"} 12"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_control_records_total{result="
                                 "\"rejected\"} 2"),
                    "%s", b.data);
        TEST_ASSERT(has_line(&b, "tern_control_last_applied_offset{partition="
                                 "\"1\"} 41"),
                    "%s", b.data);
        tern_buf_free(&b);
        /* No record applied yet: counters, but no offset. */
        s.control_last_partition = -1;
        format(&s, &b);
        TEST_ASSERT(has_line(&b, "tern_control_records_total{result="
                                 "\"applied\"} 12"),
                    "%s", b.data);
        TEST_ASSERT(
            !strstr((const char *)b.data, "tern_control_last_applied_offset{"),
            "%s", b.data);
        tern_buf_free(&b);
}

/* Every sample's family is announced by # HELP and # TYPE before it. */
static void test_help_and_type(void) {
        static rt_metrics_snap_t s;
        tern_buf_t b;
        char family[128] = "";
        int typed = 0, samples = 0;
        memset(&s, 0, sizeof(s));
        s.ctr.enabled = s.churn.enabled = 1;
        s.registry = s.control = 1;
        format(&s, &b);
        for (char *line = strtok((char *)b.data, "\n"); line;
             line = strtok(NULL, "\n")) {
                if (!strncmp(line, "# HELP ", 7)) {
                        sscanf(line + 7, "%127s", family);
                        typed = 0;
                } else if (!strncmp(line, "# TYPE ", 7)) {
                        TEST_ASSERT(!strncmp(line + 7, family, strlen(family)),
                                    "%s after HELP %s", line, family);
                        typed = 1;
                } else {
                        TEST_ASSERT(
                            typed && !strncmp(line, family, strlen(family)),
                            "sample '%s' outside its family %s", line, family);
                        samples++;
                }
        }
        TEST_ASSERT(samples > 20, "%d samples", samples);
        tern_buf_free(&b);
}

static void test_bounded(void) {
        static rt_metrics_snap_t s;
        tern_buf_t b;
        memset(&s, 0, sizeof(s));
        tern_buf_init(&b, 256);
        rt_metrics_format(&s, &b);
        TEST_ASSERT(b.overflow && b.len <= 256, "len %zu", b.len);
        tern_buf_free(&b);
}

static int probe(int (*fn)(rt_metrics_t *, tern_buf_t *), rt_metrics_t *m,
                 const char *status) {
        tern_buf_t b;
        int code;
        char want[64];
        tern_buf_init(&b, 4096);
        code = fn(m, &b);
        tern_buf_put_u8(&b, 0);
        snprintf(want, sizeof(want), "\"status\":\"%s\"", status);
        if (!strstr((const char *)b.data, want))
                code = -code;
        tern_buf_free(&b);
        return code;
}

static void test_probes(void) {
        rt_metrics_t *m = rt_metrics_new(1);
        TEST_ASSERT(m != NULL, "new");
        /* Every loop-thread call accepts NULL (no endpoint configured). */
        rt_metrics_tick(NULL, NULL);
        rt_metrics_committed(NULL, NULL, 5);
        rt_metrics_loop_stopping(NULL);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "starting"), 503);
        TEST_EQ_INT(probe(rt_metrics_healthz, m, "ok"), 200);
        usleep(1100 * 1000); /* no heartbeat for longer than stall_seconds */
        TEST_EQ_INT(probe(rt_metrics_healthz, m, "stalled"), 503);
        rt_metrics_loop_stopping(m);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "stopping"), 503);
        rt_metrics_loop_stopped(m, NULL); /* unbound: no snapshot taken */
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "stopped"), 503);
        TEST_EQ_INT(probe(rt_metrics_healthz, m, "stopped"), 503);
        rt_metrics_destroy(m);
}

/* A rebalance that takes every partition withdraws readiness; partitions
 * coming back restore it. A consumer without brokers: manual assignments
 * stand in for the rebalance callback's. */
static void test_unassigned(void) {
        char errstr[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *parts;
        rt_metrics_t *m = rt_metrics_new(60);
        rt_metrics_snap_t snap;
        TEST_ASSERT(m != NULL, "new");
        /* assign() needs a group, never joined without subscribe() */
        rd_kafka_conf_set(kc, "group.id", "t", NULL, 0);
        rd_kafka_conf_set(kc, "log_level", "0", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
        TEST_ASSERT(rk != NULL, "%s", errstr);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, "in", 0);
        rt_metrics_bind(m, &(rt_metrics_src_t){.consumer = rk});
        rt_metrics_tick(m, NULL);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "starting"), 503);
        rd_kafka_assign(rk, parts);
        rt_metrics_rebalanced(m, rk);
        rt_metrics_tick(m, NULL);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "ready"), 200);
        rd_kafka_assign(rk, NULL); /* revoked, nothing assigned instead */
        rt_metrics_rebalanced(m, rk);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "unassigned"), 503);
        rt_metrics_read(m, &snap);
        TEST_EQ_INT(snap.ready, 0);
        TEST_EQ_INT(probe(rt_metrics_healthz, m, "ok"), 200); /* alive */
        rd_kafka_assign(rk, parts);
        rt_metrics_rebalanced(m, rk);
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "ready"), 200);
        rt_metrics_read(m, &snap);
        TEST_EQ_INT(snap.ready, 1);
        rd_kafka_assign(rk, NULL);
        rt_metrics_rebalanced(m, rk);
        rt_metrics_loop_stopping(m); /* stopping wins over unassigned */
        TEST_EQ_INT(probe(rt_metrics_readyz, m, "stopping"), 503);
        rt_metrics_bind(m, NULL);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        rt_metrics_destroy(m);
}

TEST_MAIN(TEST_CASE(test_format), TEST_CASE(test_help_and_type),
          TEST_CASE(test_unassigned), TEST_CASE(test_registry_and_control),
          TEST_CASE(test_bounded), TEST_CASE(test_probes));
