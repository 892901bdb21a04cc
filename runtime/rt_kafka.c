#include "rt_kafka.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/tern_err.h"
#include "rt_log.h"

static int set(rd_kafka_conf_t *kc, const char *name, const char *value,
               char *errstr, size_t errstr_size) {
        char reason[512];
        if (rd_kafka_conf_set(kc, name, value, reason, sizeof(reason)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        /* librdkafka's reason may quote the value: never a secret's. */
        if (conf_is_secret(name))
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "kafka property %s: rejected (value redacted)", name);
        else
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "kafka property %s: %s", name, reason);
        return -1;
}

static int set_map(rd_kafka_conf_t *kc, const conf_map_t *m, char *errstr,
                   size_t errstr_size) {
        for (size_t i = 0; i < m->n; i++)
                if (set(kc, m->kv[i].key, m->kv[i].value, errstr, errstr_size))
                        return -1;
        return 0;
}

/* librdkafka's own lines through tern's logger: one format (text or JSON),
 * one level setting. Levels are syslog's. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *facility,
                      const char *message) {
        rt_log_level_t ours = level <= 3   ? RT_LOG_ERROR
                              : level == 4 ? RT_LOG_WARN
                              : level <= 6 ? RT_LOG_INFO
                                           : RT_LOG_DEBUG;
        RT_LOG(ours, "kafka", "%s: %s: %s", rd_kafka_name(rk), facility,
               message);
}

static rd_kafka_conf_t *base_conf(const tern_conf_t *conf, const char *brokers,
                                  const conf_map_t *role_props, char *errstr,
                                  size_t errstr_size) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(kc, kafka_log);
        if (set(kc, "bootstrap.servers", brokers ? brokers : conf->brokers,
                errstr, errstr_size) ||
            set(kc, "client.id", "tern", errstr, errstr_size) ||
            set_map(kc, &conf->kafka_props, errstr, errstr_size) ||
            set_map(kc, role_props, errstr, errstr_size)) {
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        return kc;
}

static int map_has(const conf_map_t *m, const char *key) {
        for (size_t i = 0; i < m->n; i++)
                if (!strcmp(m->kv[i].key, key))
                        return 1;
        return 0;
}

rd_kafka_conf_t *rt_kafka_consumer_conf(const tern_conf_t *conf,
                                        const char *brokers, char *errstr,
                                        size_t errstr_size) {
        char session[32];
        rd_kafka_conf_t *kc = base_conf(conf, brokers, &conf->consumer_props,
                                        errstr, errstr_size);
        if (!kc)
                return NULL;
        snprintf(session, sizeof(session), "%lld",
                 (long long)conf->session_timeout_ms);
        if (set(kc, "group.id", conf->group_id, errstr, errstr_size) ||
            set(kc, "session.timeout.ms", session, errstr, errstr_size) ||
            set(kc, "enable.auto.commit", "false", errstr, errstr_size) ||
            set(kc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
            set(kc, "enable.partition.eof", "false", errstr, errstr_size)) {
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        /* A stored offset out of the log's range must neither skip data nor
         * re-read it silently: unless the user chose a policy, it is an
         * error the pipeline stops on (rt_pipeline.c). */
        if (!map_has(&conf->kafka_props, "auto.offset.reset") &&
            !map_has(&conf->consumer_props, "auto.offset.reset") &&
            set(kc, "auto.offset.reset", "error", errstr, errstr_size)) {
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        return kc;
}

/* Outputs wait for librdkafka's linger before they are sent, and bidders
 * wait for them. librdkafka's default of 5 ms added ~4 ms to every output
 * (tern bench --seconds 40 --rate 500 --wait-ms 1: p50 9.1 -> 4.8 ms with
 * 0). But 0 sends a request per handful of outputs at full rate: process
 * CPU 34 us/event with 0, 25 with 1, 22 with 5 (tern bench --events
 * 100000, back to back), and the broker pays for every request. 1 ms
 * keeps most of both. kafka.producer or kafka.properties may set it. */
#define RT_OUTPUT_LINGER_MS "1"

static int producer_sets(const tern_conf_t *conf, const char *key) {
        return map_has(&conf->kafka_props, key) ||
               map_has(&conf->producer_props, key);
}

rd_kafka_conf_t *rt_kafka_producer_conf(const tern_conf_t *conf,
                                        const char *brokers, char *errstr,
                                        size_t errstr_size) {
        rd_kafka_conf_t *kc = base_conf(conf, brokers, &conf->producer_props,
                                        errstr, errstr_size);
        if (!kc)
                return NULL;
        if (set(kc, "enable.idempotence", "true", errstr, errstr_size) ||
            (!producer_sets(conf, "linger.ms") &&
             !producer_sets(conf, "queue.buffering.max.ms") &&
             set(kc, "linger.ms", RT_OUTPUT_LINGER_MS, errstr, errstr_size))) {
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        return kc;
}

struct rt_broker {
        rd_kafka_t *owner; /* the mock cluster lives on this handle */
        rd_kafka_mock_cluster_t *mock;
};

static int port_listed(const char *bootstraps, unsigned port) {
        for (const char *c = strchr(bootstraps, ':'); c; c = strchr(c + 1, ':'))
                if ((unsigned)strtoul(c + 1, NULL, 10) == port)
                        return 1;
        return 0;
}

/* librdkafka's mock broker leaves Nagle on for the connections it accepts.
 * When a client keeps three or more small requests in flight on one
 * connection (a producer with outputs on several partitions does: one
 * ProduceRequest per partition), the third response waits for the
 * client's delayed ACK, 40 ms on Linux: every commit of the pipeline waited
 * ~40-50 ms in the flush on one embedded broker (measured with librdkafka
 * 2.0.2; Kafka itself sets TCP_NODELAY). The mock offers no setting, but
 * its listening sockets live in this process and Linux copies TCP_NODELAY
 * from a listening socket to the sockets it accepts: find them by the
 * ports the cluster announces and set it there. Best effort: without it
 * the broker is only slower. */
static void broker_nodelay(const char *bootstraps) {
        long max_fd = sysconf(_SC_OPEN_MAX);
        int fixed = 0;
        if (max_fd < 0 || max_fd > 65536)
                max_fd = 65536;
        for (int fd = 0; fd < max_fd; fd++) {
                struct sockaddr_in sa;
                socklen_t len = sizeof(sa);
                int listening = 0, one = 1;
                socklen_t ilen = sizeof(listening);
                if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
                               &ilen) ||
                    !listening ||
                    getsockname(fd, (struct sockaddr *)&sa, &len) ||
                    sa.sin_family != AF_INET ||
                    !port_listed(bootstraps, ntohs(sa.sin_port)))
                        continue;
                if (!setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                                sizeof(one)))
                        fixed++;
        }
        if (!fixed)
                RT_LOG(RT_LOG_DEBUG, "kafka",
                       "embedded broker: no listening socket found for "
                       "TCP_NODELAY (%s)",
                       bootstraps);
}

rt_broker_t *rt_broker_new(int broker_cnt, char *errstr, size_t errstr_size) {
        rt_broker_t *b = calloc(1, sizeof(*b));
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char reason[512];
        rd_kafka_conf_set(kc, "log_level", "3", NULL, 0);
        b->owner = rd_kafka_new(RD_KAFKA_PRODUCER, kc, reason, sizeof(reason));
        if (!b->owner) {
                tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                          "embedded broker: %s", reason);
                free(b);
                return NULL;
        }
        b->mock = rd_kafka_mock_cluster_new(b->owner, broker_cnt);
        if (!b->mock) {
                tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                          "embedded broker: cannot start the mock cluster");
                rd_kafka_destroy(b->owner);
                free(b);
                return NULL;
        }
        broker_nodelay(rd_kafka_mock_cluster_bootstraps(b->mock));
        return b;
}

void rt_broker_destroy(rt_broker_t *b) {
        if (!b)
                return;
        rd_kafka_mock_cluster_destroy(b->mock);
        rd_kafka_destroy(b->owner);
        free(b);
}

const char *rt_broker_bootstraps(const rt_broker_t *b) {
        return rd_kafka_mock_cluster_bootstraps(b->mock);
}

int rt_broker_create_topic(rt_broker_t *b, const char *topic, int partitions,
                           char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(b->mock, topic, partitions, 1);
        if (err) {
                tern_errf(errstr, errstr_size, TERN_ERR_KAFKA,
                          "embedded broker: create topic %s: %s", topic,
                          rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

int rt_broker_create_topics(rt_broker_t *b, const tern_conf_t *conf,
                            int input_partitions, char *errstr,
                            size_t errstr_size) {
        return rt_broker_create_topic(b, conf->topic_input, input_partitions,
                                      errstr, errstr_size) ||
               rt_broker_create_topic(b, conf->topic_recommendations,
                                      input_partitions, errstr, errstr_size) ||
               rt_broker_create_topic(b, conf->topic_dead_letter, 1, errstr,
                                      errstr_size) ||
               rt_broker_create_topic(b, conf->topic_ctr_scores,
                                      input_partitions, errstr, errstr_size) ||
               rt_broker_create_topic(b, conf->topic_churn_scores,
                                      input_partitions, errstr, errstr_size) ||
               rt_broker_create_topic(b, conf->topic_churn_alerts,
                                      input_partitions, errstr, errstr_size) ||
               rt_broker_create_topic(b, conf->topic_model_alerts, 1, errstr,
                                      errstr_size) ||
               (*conf->topic_control &&
                rt_broker_create_topic(b, conf->topic_control, 1, errstr,
                                       errstr_size));
}

struct rd_kafka_mock_cluster_s *rt_broker_mock(rt_broker_t *b) {
        return b->mock;
}
