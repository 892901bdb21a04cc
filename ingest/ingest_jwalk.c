/*
 * ingest_jwalk — bounded JSON pull reader (design: the header).
 */
#include "ingest_jwalk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int jw_fail(jw_t *w, const char *why) {
        if (!w->err) {
                w->err = why;
                w->err_at = (size_t)(w->p - w->start);
        }
        return -1;
}

void jw_init(jw_t *w, const char *text, size_t len) {
        memset(w, 0, sizeof(*w));
        w->p = w->start = text;
        w->end = text + len;
}

const char *jw_error(const jw_t *w) {
        return w->err;
}

static void jw_ws(jw_t *w) {
        while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' ||
                                 *w->p == '\n' || *w->p == '\r'))
                w->p++;
}

jw_kind_t jw_peek(jw_t *w) {
        if (w->err)
                return JW_END;
        jw_ws(w);
        if (w->p >= w->end)
                return JW_END;
        switch (*w->p) {
        case 'n':
                return JW_NULL;
        case 't':
        case 'f':
                return JW_BOOL;
        case '"':
                return JW_STRING;
        case '{':
                return JW_OBJECT;
        case '[':
                return JW_ARRAY;
        default:
                return (*w->p == '-' || (*w->p >= '0' && *w->p <= '9'))
                           ? JW_NUMBER
                           : JW_END;
        }
}

static int jw_char(jw_t *w, char c, const char *why) {
        jw_ws(w);
        if (w->err || w->p >= w->end || *w->p != c)
                return jw_fail(w, why);
        w->p++;
        return 0;
}

static int jw_word(jw_t *w, const char *word) {
        size_t n = strlen(word);
        if (w->err || (size_t)(w->end - w->p) < n || memcmp(w->p, word, n))
                return jw_fail(w, "bad literal");
        w->p += n;
        return 0;
}

static int jw_open(jw_t *w, char c, const char *why) {
        if (jw_char(w, c, why))
                return -1;
        if (++w->depth > JW_MAX_DEPTH)
                return jw_fail(w, "nesting too deep");
        return 0;
}

int jw_object(jw_t *w) {
        return jw_open(w, '{', "expected an object");
}

int jw_array(jw_t *w) {
        return jw_open(w, '[', "expected an array");
}

/* Shared by jw_member and jw_item: the closing byte ends the container,
 * a comma must separate items after the first. */
static int jw_next(jw_t *w, uint32_t *n, char close) {
        jw_ws(w);
        if (w->err || w->p >= w->end)
                return jw_fail(w, "unterminated object or array");
        if (*w->p == close) {
                w->p++;
                w->depth--;
                return 0;
        }
        if (*n > 0 && jw_char(w, ',', "expected ','"))
                return -1;
        (*n)++;
        return 1;
}

int jw_member(jw_t *w, uint32_t *n, char *key, size_t cap, size_t *key_len) {
        int r = jw_next(w, n, '}');
        if (r != 1)
                return r;
        if (jw_peek(w) != JW_STRING)
                return jw_fail(w, "expected a key");
        if (jw_string(w, key, cap, key_len) &&
            strcmp(w->err, "string too long") == 0) {
                /* A long key is no key we look for: skip its value. */
                w->err = NULL;
                key[0] = '\0';
        }
        if (w->err || jw_char(w, ':', "expected ':'"))
                return -1;
        return 1;
}

int jw_item(jw_t *w, uint32_t *n) {
        return jw_next(w, n, ']');
}

static int hex4(const char *p, uint32_t *out) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t)(c - 'A' + 10);
                else
                        return -1;
        }
        *out = v;
        return 0;
}

size_t jw_utf8(uint32_t cp, char *out) {
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

const char *jw_unicode_escape(const char *p, const char *end, uint32_t *cp,
                              size_t *used) {
        uint32_t hi, lo;
        if (end - p < 4 || hex4(p, &hi))
                return "bad \\u escape";
        *used = 4;
        *cp = hi;
        if (hi >= 0xdc00 && hi <= 0xdfff)
                return "lone low surrogate in \\u escape";
        if (hi < 0xd800 || hi > 0xdbff)
                return NULL;
        if (end - p < 10 || p[4] != '\\' || p[5] != 'u' || hex4(p + 6, &lo) ||
            lo < 0xdc00 || lo > 0xdfff)
                return "unpaired high surrogate in \\u escape";
        *used = 10;
        *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
        return NULL;
}

int jw_escape_byte(char c) {
        static const char from[] = "\"\\/bfnrt";
        static const char to[] = "\"\\/\b\f\n\r\t";
        const char *hit = c ? strchr(from, c) : NULL;
        return hit ? to[hit - from] : -1;
}

/* Append up to 4 bytes; counts what would be written even past cap so a
 * too-long string is still walked to its end. */
typedef struct sbuf {
        char *out;
        size_t cap, len;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
        if (b->out && b->len + n < b->cap)
                memcpy(b->out + b->len, s, n);
        b->len += n;
}

static int jw_escape(jw_t *w, sbuf_t *b) {
        char u[4], c;
        uint32_t cp;
        size_t used;
        const char *why;
        int byte;
        if (w->p >= w->end)
                return jw_fail(w, "unterminated string");
        c = *w->p++;
        if (c == 'u') {
                if ((why = jw_unicode_escape(w->p, w->end, &cp, &used)))
                        return jw_fail(w, why);
                w->p += used;
                sb_put(b, u, jw_utf8(cp, u));
                return 0;
        }
        if ((byte = jw_escape_byte(c)) < 0)
                return jw_fail(w, "bad escape");
        u[0] = (char)byte;
        sb_put(b, u, 1);
        return 0;
}

/* Walk a string; with b->out == NULL it is only skipped. */
static int jw_str_walk(jw_t *w, sbuf_t *b) {
        if (jw_char(w, '"', "expected a string"))
                return -1;
        for (;;) {
                const char *run = w->p;
                while (w->p < w->end && *w->p != '"' && *w->p != '\\' &&
                       (unsigned char)*w->p >= 0x20)
                        w->p++;
                sb_put(b, run, (size_t)(w->p - run));
                if (w->p >= w->end)
                        return jw_fail(w, "unterminated string");
                if ((unsigned char)*w->p < 0x20)
                        return jw_fail(w, "control character in string");
                if (*w->p++ == '"')
                        return 0;
                if (jw_escape(w, b))
                        return -1;
        }
}

int jw_string(jw_t *w, char *out, size_t cap, size_t *len) {
        sbuf_t b = {out, cap, 0};
        if (jw_str_walk(w, &b))
                return -1;
        if (len)
                *len = b.len;
        if (!cap || b.len >= cap) {
                if (cap)
                        out[0] = '\0';
                return jw_fail(w, "string too long");
        }
        out[b.len] = '\0';
        return 0;
}

int jw_number(jw_t *w, double *d, int64_t *i, int *is_int) {
        char tmp[64], *e;
        size_t n = 0;
        int integer = 1;
        jw_ws(w);
        while (w->p + n < w->end && n < sizeof(tmp) - 1 &&
               strchr("+-0123456789.eE", w->p[n])) {
                if (strchr(".eE", w->p[n]))
                        integer = 0;
                tmp[n] = w->p[n];
                n++;
        }
        tmp[n] = '\0';
        if (!n || n == sizeof(tmp) - 1)
                return jw_fail(w, "bad number");
        errno = 0;
        *d = strtod(tmp, &e);
        if (*e || !isfinite(*d))
                return jw_fail(w, "bad number");
        *is_int = 0;
        if (integer) {
                long long v;
                errno = 0;
                v = strtoll(tmp, &e, 10);
                if (!*e && errno == 0) {
                        *i = (int64_t)v;
                        *is_int = 1;
                }
        }
        w->p += n;
        return 0;
}

int jw_null(jw_t *w) {
        jw_ws(w);
        return jw_word(w, "null");
}

int jw_bool(jw_t *w, int *v) {
        jw_ws(w);
        *v = w->p < w->end && *w->p == 't';
        return jw_word(w, *v ? "true" : "false");
}

int jw_skip(jw_t *w) {
        sbuf_t none = {NULL, 0, 0};
        double d;
        int64_t i;
        int b;
        uint32_t n = 0;
        char key[1];
        switch (jw_peek(w)) {
        case JW_NULL:
                return jw_null(w);
        case JW_BOOL:
                return jw_bool(w, &b);
        case JW_NUMBER:
                return jw_number(w, &d, &i, &b);
        case JW_STRING:
                return jw_str_walk(w, &none);
        case JW_OBJECT:
                if (jw_object(w))
                        return -1;
                while ((b = jw_member(w, &n, key, sizeof(key), NULL)) == 1)
                        if (jw_skip(w))
                                return -1;
                return b;
        case JW_ARRAY:
                if (jw_array(w))
                        return -1;
                while ((b = jw_item(w, &n)) == 1)
                        if (jw_skip(w))
                                return -1;
                return b;
        default:
                return jw_fail(w, "expected a value");
        }
}
