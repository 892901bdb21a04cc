/*
 * rt_log — leveled logging to stderr, text or JSON lines.
 *
 * RT_LOG() skips formatting entirely below the configured level. A line
 * names its stage and, where known, topic/partition/offset, so one line
 * says where in the flow something happened.
 */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdint.h>

typedef enum rt_log_level {
        RT_LOG_ERROR = 0,
        RT_LOG_WARN,
        RT_LOG_INFO,
        RT_LOG_DEBUG
} rt_log_level_t;

extern int rt_log_level;
extern int rt_log_json;

/* -1 for an unknown name ("error", "warn", "info", "debug"). */
int rt_log_level_parse(const char *name);

void rt_log_write(rt_log_level_t level, const char *stage, const char *topic,
                  int32_t partition, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define RT_LOG(level, stage, ...)                                              \
        do {                                                                   \
                if ((int)(level) <= rt_log_level)                              \
                        rt_log_write(level, stage, NULL, -1, -1, __VA_ARGS__); \
        } while (0)
#define RT_LOG_AT(level, stage, topic, partition, offset, ...)                 \
        do {                                                                   \
                if ((int)(level) <= rt_log_level)                              \
                        rt_log_write(level, stage, topic, partition, offset,   \
                                     __VA_ARGS__);                             \
        } while (0)

#endif
