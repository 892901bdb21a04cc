#include "tern_err.h"

#include <stdio.h>

static const char *const code_names[TERN_ERR__CNT] = {
    [TERN_OK] = "ok",
    [TERN_ERR_INVALID_ARG] = "invalid argument",
    [TERN_ERR_CONFIG] = "configuration error",
    [TERN_ERR_DECODE] = "decode error",
    [TERN_ERR_INVALID] = "invalid event",
    [TERN_ERR_LIMIT] = "limit exceeded",
    [TERN_ERR_NOT_FOUND] = "not found",
    [TERN_ERR_IO] = "i/o error",
    [TERN_ERR_STATE] = "state store error",
    [TERN_ERR_KAFKA] = "kafka error",
    [TERN_ERR_NOMEM] = "out of memory",
};

const char *tern_code_name(tern_code_t code) {
        if ((int)code < 0 || code >= TERN_ERR__CNT)
                return "unknown error";
        return code_names[code];
}

tern_code_t tern_errf(char *errstr, size_t errstr_size, tern_code_t code,
                      const char *fmt, ...) {
        if (errstr && errstr_size > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return code;
}

void tern_err_set(tern_err_t *err, tern_code_t code, int flags, const char *fmt,
                  ...) {
        va_list ap;
        if (!err || err->code != TERN_OK)
                return;
        err->code = code;
        err->flags = flags;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
}
