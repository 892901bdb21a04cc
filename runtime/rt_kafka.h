/*
 * rt_kafka — librdkafka client configs built from tern's config, and the
 * embedded Kafka-protocol broker (librdkafka's mock cluster).
 *
 * Client configs: kafka.properties apply to both clients, then
 * kafka.consumer / kafka.producer. tern's own requirements are set last and
 * win: the consumer never commits or stores offsets by itself (tern stores
 * them in RocksDB with the state) and the producer is idempotent.
 */
#ifndef RT_KAFKA_H
#define RT_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "../conf/conf.h"

/* brokers: NULL = conf->brokers. Returns NULL with errstr on a bad property. */
rd_kafka_conf_t *rt_kafka_consumer_conf(const tern_conf_t *conf,
                                        const char *brokers, char *errstr,
                                        size_t errstr_size);
rd_kafka_conf_t *rt_kafka_producer_conf(const tern_conf_t *conf,
                                        const char *brokers, char *errstr,
                                        size_t errstr_size);

/* The embedded broker. Keeps at most ~5 MiB per partition (older data is
 * dropped silently; librdkafka 2.0.2's mock has no setting for it): feed
 * it while consuming. */
typedef struct rt_broker rt_broker_t;

/* Brokers of the embedded cluster that `tern demo` and `tern replay` run.
 * Three were chosen when a commit on one mock broker waited ~25-50 ms for
 * its outputs; that wait was Nagle on the mock's sockets (rt_broker_new()
 * now sets TCP_NODELAY) and flush()'s 10 ms slices (sink_producer.c). One
 * broker has one thread and one connection per client to serve, like the
 * bench's. */
#define RT_BROKER_EMBEDDED 1
rt_broker_t *rt_broker_new(int broker_cnt, char *errstr, size_t errstr_size);
void rt_broker_destroy(rt_broker_t *b);
const char *rt_broker_bootstraps(const rt_broker_t *b);
int rt_broker_create_topic(rt_broker_t *b, const char *topic, int partitions,
                           char *errstr, size_t errstr_size);
/* tern's topics: input and recommendations with input_partitions, the
 * dead-letter and control topics with one. */
int rt_broker_create_topics(rt_broker_t *b, const tern_conf_t *conf,
                            int input_partitions, char *errstr,
                            size_t errstr_size);
/* The mock cluster, for fault injection in tests. */
struct rd_kafka_mock_cluster_s *rt_broker_mock(rt_broker_t *b);

#endif
