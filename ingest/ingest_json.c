#include "ingest_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ingest_jwalk.h"

/* A cursor over one line. The first failure wins: later calls only return
 * -1, so a handler may chain reads and check once. */
typedef struct jrd {
        char *p;
        char *end;
        const char *start;
        const char *err;
        const char *err_at;
} jrd_t;

static int jfail(jrd_t *r, const char *why) {
        if (!r->err) {
                r->err = why;
                r->err_at = r->p;
        }
        return -1;
}

static void jws(jrd_t *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
                                 *r->p == '\n' || *r->p == '\r'))
                r->p++;
}

/* Skip whitespace and report whether the next byte is c (not consumed). */
static int jpeek(jrd_t *r, char c) {
        jws(r);
        return r->p < r->end && *r->p == c;
}

static int jexpect(jrd_t *r, char c, const char *why) {
        if (!jpeek(r, c))
                return jfail(r, why);
        r->p++;
        return 0;
}

/* An escape after the backslash, decoded at *w (ingest_jwalk's rules;
 * never longer than its input, so in place is safe). */
static int jescape(jrd_t *r, char **w) {
        uint32_t cp;
        size_t used;
        const char *why;
        int byte;
        char c;
        if (r->p >= r->end)
                return jfail(r, "unterminated string");
        c = *r->p++;
        if (c == 'u') {
                if ((why = jw_unicode_escape(r->p, r->end, &cp, &used)))
                        return jfail(r, why);
                r->p += used;
                *w += jw_utf8(cp, *w);
                return 0;
        }
        if ((byte = jw_escape_byte(c)) < 0)
                return jfail(r, "bad escape in string");
        *(*w)++ = (char)byte;
        return 0;
}

/* A string at r->p, decoded in place; out borrows the line. */
static int jstring(jrd_t *r, tern_str_t *out) {
        char *w, *s;
        if (jexpect(r, '"', "expected a string"))
                return -1;
        s = w = r->p;
        while (r->p < r->end) {
                char c = *r->p++;
                if (c == '"') {
                        out->ptr = s;
                        out->len = (uint32_t)(w - s);
                        return 0;
                }
                if ((unsigned char)c < 0x20)
                        return jfail(r, "control character in string");
                if (c != '\\')
                        *w++ = c;
                else if (jescape(r, &w))
                        return -1;
        }
        return jfail(r, "unterminated string");
}

static int jliteral(jrd_t *r, const char *lit) {
        size_t n = strlen(lit);
        if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n))
                return jfail(r, "bad literal");
        r->p += n;
        return 0;
}

/* 1 and consumed when the next value is null. */
static int jnull(jrd_t *r) {
        if (!jpeek(r, 'n'))
                return 0;
        return jliteral(r, "null") ? -1 : 1;
}

/* The text of a number, checked against JSON's grammar. */
static int jnumber(jrd_t *r, const char **s, size_t *n) {
        char *p;
        jws(r);
        p = r->p;
        if (p < r->end && *p == '-')
                p++;
        if (p >= r->end || *p < '0' || *p > '9')
                return jfail(r, "expected a number");
        while (p < r->end && ((*p >= '0' && *p <= '9') || *p == '.' ||
                              *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
                p++;
        *s = r->p;
        *n = (size_t)(p - r->p);
        r->p = p;
        return 0;
}

static int jdouble(jrd_t *r, double *out) {
        char tmp[64], *e;
        const char *s;
        size_t n;
        if (jnumber(r, &s, &n))
                return -1;
        if (n >= sizeof(tmp))
                return jfail(r, "number too long");
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        *out = strtod(tmp, &e);
        if (e != tmp + n || errno == ERANGE)
                return jfail(r, "bad number");
        return 0;
}

/* Plain digits up to 18 of them: exact, no detour through a double. */
static int exact_int(const char *s, size_t n, int64_t *out) {
        int neg = n > 0 && s[0] == '-';
        int64_t v = 0;
        if (n - (size_t)neg > 18 || n == (size_t)neg)
                return -1;
        for (size_t i = (size_t)neg; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = neg ? -v : v;
        return 0;
}

/* An integer; 1.5e12-style spellings are fine when the value is whole. */
static int jint64(jrd_t *r, int64_t lo, int64_t hi, int64_t *out) {
        char *save;
        const char *s;
        size_t n;
        double d;
        jws(r);
        save = r->p;
        if (jnumber(r, &s, &n))
                return -1;
        if (exact_int(s, n, out) == 0) {
                if (*out < lo || *out > hi)
                        return jfail(r, "integer out of range");
                return 0;
        }
        r->p = save;
        if (jdouble(r, &d))
                return -1;
        if (d != d || d < (double)lo || d > (double)hi ||
            d != (double)(int64_t)d)
                return jfail(r, "not an integer in range");
        *out = (int64_t)d;
        return 0;
}

static int jskip(jrd_t *r, int depth);

static int jskip_container(jrd_t *r, int depth, char close) {
        tern_str_t key;
        r->p++;
        if (jpeek(r, close)) {
                r->p++;
                return 0;
        }
        for (;;) {
                if (close == '}' &&
                    (jstring(r, &key) || jexpect(r, ':', "expected ':'")))
                        return -1;
                if (jskip(r, depth + 1))
                        return -1;
                if (jpeek(r, close)) {
                        r->p++;
                        return 0;
                }
                if (jexpect(r, ',', "expected ',' or a closing bracket"))
                        return -1;
        }
}

/* Skip any value; depth bounds recursion on hostile nesting. */
static int jskip(jrd_t *r, int depth) {
        tern_str_t s;
        const char *t;
        size_t n;
        if (depth > INGEST_JSON_MAX_DEPTH)
                return jfail(r, "nesting too deep");
        jws(r);
        if (r->p >= r->end)
                return jfail(r, "expected a value");
        switch (*r->p) {
        case '{':
                return jskip_container(r, depth, '}');
        case '[':
                return jskip_container(r, depth, ']');
        case '"':
                return jstring(r, &s);
        case 't':
                return jliteral(r, "true");
        case 'f':
                return jliteral(r, "false");
        case 'n':
                return jliteral(r, "null");
        default:
                return jnumber(r, &t, &n);
        }
}

/* Avro's JSON encoding wraps a union branch: {"string": "x"}. Returns 1
 * when such a wrapper was opened (close it with junion_close). */
static int junion_open(jrd_t *r) {
        tern_str_t branch;
        if (!jpeek(r, '{'))
                return 0;
        r->p++;
        if (jstring(r, &branch) || jexpect(r, ':', "expected ':'"))
                return -1;
        return 1;
}

static int junion_close(jrd_t *r, int opened) {
        if (opened != 1)
                return opened;
        return jexpect(r, '}', "expected '}' closing a union");
}

static int jfield_str(jrd_t *r, tern_str_t *out) {
        int u, rc;
        if ((rc = jnull(r)))
                return rc < 0 ? -1 : (*out = TERN_STR_NULL, 0);
        if ((u = junion_open(r)) < 0)
                return -1;
        if (jstring(r, out))
                return -1;
        return junion_close(r, u);
}

/* A nullable number; *has set when a value was there. */
static int jfield_num(jrd_t *r, int is_int, int64_t lo, int64_t hi, int64_t *iv,
                      double *dv, int *has) {
        int u, rc;
        if ((rc = jnull(r)))
                return rc < 0 ? -1 : (*has = 0, 0);
        if ((u = junion_open(r)) < 0)
                return -1;
        if (is_int ? jint64(r, lo, hi, iv) : jdouble(r, dv))
                return -1;
        *has = 1;
        return junion_close(r, u);
}

static int jevent_type(jrd_t *r, tern_event_t *ev, int *seen) {
        tern_str_t s;
        int t;
        if (jstring(r, &s))
                return -1;
        t = tern_event_type_parse(s.ptr, s.len);
        if (t < 0)
                return jfail(r, "unknown event_type");
        ev->type = (tern_event_type_t)t;
        *seen = 1;
        return 0;
}

static int jcontext(jrd_t *r, tern_event_t *ev) {
        tern_str_t k, v;
        int rc;
        if ((rc = jnull(r)))
                return rc < 0 ? -1 : 0;
        if (jexpect(r, '{', "context must be an object"))
                return -1;
        if (jpeek(r, '}'))
                return (r->p++, 0);
        for (;;) {
                if (jstring(r, &k) || jexpect(r, ':', "expected ':'") ||
                    jstring(r, &v))
                        return -1;
                if (ev->n_context >= TERN_EVENT_MAX_CONTEXT)
                        return jfail(r, "more than " TERN_EVENT_MAX_CONTEXT_STR
                                        " context entries");
                ev->context_key[ev->n_context] = k;
                ev->context_val[ev->n_context++] = v;
                if (jpeek(r, '}'))
                        return (r->p++, 0);
                if (jexpect(r, ',', "expected ',' or '}' in context"))
                        return -1;
        }
}

#define KEY_IS(k, lit)                                                         \
        ((k).len == sizeof(lit) - 1 && memcmp((k).ptr, lit, (k).len) == 0)

static int jfield(jrd_t *r, tern_str_t key, tern_event_t *ev, int *seen) {
        int64_t iv = 0;
        int has = 0;
        if (KEY_IS(key, "event_id"))
                return jfield_str(r, &ev->event_id);
        if (KEY_IS(key, "user_id"))
                return jfield_str(r, &ev->user_id);
        if (KEY_IS(key, "item_id"))
                return jfield_str(r, &ev->item_id);
        if (KEY_IS(key, "category_id"))
                return jfield_str(r, &ev->category_id);
        if (KEY_IS(key, "impression_id"))
                return jfield_str(r, &ev->impression_id);
        if (KEY_IS(key, "campaign_id"))
                return jfield_str(r, &ev->campaign_id);
        if (KEY_IS(key, "event_type"))
                return jevent_type(r, ev, seen);
        if (KEY_IS(key, "context"))
                return jcontext(r, ev);
        if (KEY_IS(key, "ts_ms"))
                return jfield_num(r, 1, INT64_MIN / 2, INT64_MAX / 2,
                                  &ev->ts_ms, NULL, &has);
        if (KEY_IS(key, "price"))
                return jfield_num(r, 0, 0, 0, NULL, &ev->price, &ev->has_price);
        if (KEY_IS(key, "quantity")) {
                if (jfield_num(r, 1, INT32_MIN, INT32_MAX, &iv, NULL,
                               &ev->has_quantity))
                        return -1;
                ev->quantity = (int32_t)iv;
                return 0;
        }
        return jskip(r, 2);
}

static int jobject(jrd_t *r, tern_event_t *ev, int *seen) {
        tern_str_t key;
        if (jexpect(r, '{', "expected a JSON object"))
                return -1;
        if (jpeek(r, '}'))
                return (r->p++, 0);
        for (;;) {
                if (jstring(r, &key) || jexpect(r, ':', "expected ':'") ||
                    jfield(r, key, ev, seen))
                        return -1;
                if (jpeek(r, '}'))
                        return (r->p++, 0);
                if (jexpect(r, ',', "expected ',' or '}'"))
                        return -1;
        }
}

tern_code_t ingest_json_event(char *line, size_t len, tern_event_t *ev,
                              char *errstr, size_t errstr_size) {
        jrd_t r = {line, line + len, line, NULL, NULL};
        int seen_type = 0;
        tern_event_clear(ev);
        if (jobject(&r, ev, &seen_type) == 0) {
                jws(&r);
                if (r.p != r.end)
                        jfail(&r, "trailing bytes after the object");
                else if (!seen_type)
                        jfail(&r, "no event_type");
        }
        if (!r.err)
                return TERN_OK;
        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE, "column %zu: %s",
                         (size_t)(r.err_at - r.start) + 1, r.err);
}
