#include "rt_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/tern_buf.h"

int rt_log_level = RT_LOG_INFO;
int rt_log_json = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int rt_log_level_parse(const char *name) {
        for (int i = 0; i <= RT_LOG_DEBUG; i++)
                if (strcmp(name, level_names[i]) == 0)
                        return i;
        return -1;
}

static void log_text(rt_log_level_t level, const char *stage, const char *topic,
                     int32_t partition, int64_t offset, const char *msg) {
        char when[32];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        if (topic)
                fprintf(stderr, "%s.%03ld %-5s [%s] %s[%d]@%lld: %s\n", when,
                        now.tv_nsec / 1000000, level_names[level], stage, topic,
                        (int)partition, (long long)offset, msg);
        else
                fprintf(stderr, "%s.%03ld %-5s [%s] %s\n", when,
                        now.tv_nsec / 1000000, level_names[level], stage, msg);
}

static void log_json(rt_log_level_t level, const char *stage, const char *topic,
                     int32_t partition, int64_t offset, const char *msg) {
        tern_buf_t b;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        tern_buf_init(&b, 16384);
        tern_buf_printf(&b, "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"stage\":\"",
                        (long long)now.tv_sec, now.tv_nsec / 1000000,
                        level_names[level]);
        tern_buf_put_json_str(&b, stage, strlen(stage));
        if (topic) {
                tern_buf_printf(&b, "\",\"topic\":\"");
                tern_buf_put_json_str(&b, topic, strlen(topic));
                tern_buf_printf(&b, "\",\"partition\":%d,\"offset\":%lld",
                                (int)partition, (long long)offset);
                tern_buf_printf(&b, ",\"msg\":\"");
        } else {
                tern_buf_printf(&b, "\",\"msg\":\"");
        }
        tern_buf_put_json_str(&b, msg, strlen(msg));
        tern_buf_printf(&b, "\"}\n");
        if (!b.overflow)
                fwrite(b.data, 1, b.len, stderr);
        tern_buf_free(&b);
}

void rt_log_write(rt_log_level_t level, const char *stage, const char *topic,
                  int32_t partition, int64_t offset, const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (rt_log_json)
                log_json(level, stage, topic, partition, offset, msg);
        else
                log_text(level, stage, topic, partition, offset, msg);
}
