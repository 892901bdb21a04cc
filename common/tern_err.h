/*
 * tern_err — error codes and the caller's error buffer.
 *
 * Every fallible function in tern returns a tern_code_t and, on failure,
 * writes one sentence into the caller's errstr (errstr_size bytes, always
 * NUL-terminated when errstr_size > 0). The runtime wraps codes into a
 * tern_err_t that also says whether retrying can help (retriable) or the
 * process must drain and stop (fatal). The FIRST error is kept: later
 * tern_err_set() calls on an error that is already set are ignored.
 */
#ifndef TERN_ERR_H
#define TERN_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum tern_code {
        TERN_OK = 0,
        TERN_ERR_INVALID_ARG, /* a caller passed something impossible */
        TERN_ERR_CONFIG,      /* configuration refused */
        TERN_ERR_DECODE,      /* input bytes are not a valid record */
        TERN_ERR_INVALID,     /* decoded, but the event breaks a rule */
        TERN_ERR_LIMIT,       /* a configured maximum would be exceeded */
        TERN_ERR_NOT_FOUND,   /* key, schema id, file absent */
        TERN_ERR_IO,          /* file system */
        TERN_ERR_STATE,       /* RocksDB */
        TERN_ERR_KAFKA,       /* librdkafka */
        TERN_ERR_NOMEM,
        TERN_ERR__CNT
} tern_code_t;

#define TERN_ERR_F_RETRIABLE 0x1
#define TERN_ERR_F_FATAL     0x2

typedef struct tern_err {
        tern_code_t code;
        int flags; /* TERN_ERR_F_* */
        char msg[512];
} tern_err_t;

const char *tern_code_name(tern_code_t code);

/* Format into errstr; returns code so callers can `return tern_errf(...)`. */
tern_code_t tern_errf(char *errstr, size_t errstr_size, tern_code_t code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets err only if it holds no error yet (the first error wins). */
void tern_err_set(tern_err_t *err, tern_code_t code, int flags, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static inline int tern_err_is_set(const tern_err_t *err) {
        return err->code != TERN_OK;
}

#endif
