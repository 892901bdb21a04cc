/*
 * rt_feed — write events into an input topic: `tern produce`, and the
 * feeders of replay, demo and bench. Key = user_id, Kafka timestamp = the
 * event's ts_ms, value = Avro tern.BehaviorEvent (raw, or Confluent framed
 * with schema id 1 when input.wire_format is confluent). Files are read
 * with the replay.* keys of the config given to rt_feed_new() (the row
 * clock and click delay of avazu-csv and criteo-tsv).
 */
#ifndef RT_FEED_H
#define RT_FEED_H

#include <stdint.h>

#include "../conf/conf.h"
#include "../ingest/ingest_event.h"
#include "../ingest/ingest_file.h"

typedef struct rt_feed rt_feed_t;

/* Most --input files one `tern replay` or `tern produce` takes. */
#define RT_FEED_MAX_INPUTS 64

/* compression: NULL = none ("lz4", "zstd": the embedded broker keeps ~5 MiB
 * per partition, so compressed batches let it hold more). */
rt_feed_t *rt_feed_new(const tern_conf_t *conf, const char *brokers,
                       const char *topic, const char *compression, char *errstr,
                       size_t errstr_size);
void rt_feed_destroy(rt_feed_t *f);
tern_code_t rt_feed_event(rt_feed_t *f, const tern_event_t *ev, char *errstr,
                          size_t errstr_size);
/* Arbitrary bytes (tests and the demo's deliberately broken records). */
tern_code_t rt_feed_raw(rt_feed_t *f, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t ts_ms,
                        char *errstr, size_t errstr_size);
tern_code_t rt_feed_flush(rt_feed_t *f, int timeout_ms, char *errstr,
                          size_t errstr_size);
uint64_t rt_feed_sent(const rt_feed_t *f);
uint64_t rt_feed_failed(const rt_feed_t *f);

/* Feed whole files, in the given order, as one stream: one row clock
 * (each file starts where the previous one's rows ended) and event ids
 * unique across files (ingest_file.h: file_index). Before each event,
 * throttle(opaque, sent) may block for flow control; it returns nonzero to
 * stop early. Bad lines are logged with file:line, counted in *bad_lines
 * and skipped. The same paths in the same order give the same records in
 * the same order (a replay's resume depends on it). */
typedef int (*rt_feed_throttle_fn)(void *opaque, uint64_t sent);
tern_code_t rt_feed_files(rt_feed_t *f, const char *const *paths,
                          size_t n_paths, ingest_format_t fmt,
                          rt_feed_throttle_fn throttle, void *opaque,
                          uint64_t *bad_lines, char *errstr,
                          size_t errstr_size);
/* One file: rt_feed_files() with a single path. */
tern_code_t rt_feed_file(rt_feed_t *f, const char *path, ingest_format_t fmt,
                         rt_feed_throttle_fn throttle, void *opaque,
                         uint64_t *bad_lines, char *errstr, size_t errstr_size);
#endif
