/*
 * ingest_jwalk — a small bounded pull reader over one JSON text, for the
 * few places that must look inside JSON that is not an event: the Schema
 * Registry's answer ({"schema": "<json string>"}) and the "default" values
 * of a reader schema's fields (Avro-C parses schemas but does not expose
 * field defaults).
 *
 * A cursor (jw_t) walks the text without building a tree and without
 * allocating: objects and arrays are iterated in place, any value can be
 * skipped, strings are unescaped into a caller's buffer. Nesting deeper
 * than JW_MAX_DEPTH fails, so a hostile text costs at most its length.
 * The first error wins: every later call returns -1, so a caller may
 * chain calls and look at jw_error() once.
 *
 * Ownership: the cursor borrows the text (not modified, need not be
 * NUL-terminated); it must outlive the cursor.
 */
#ifndef INGEST_JWALK_H
#define INGEST_JWALK_H

#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 64

typedef struct jw {
        const char *p, *end, *start;
        const char *err; /* first error, NULL while fine */
        size_t err_at;   /* byte offset of the first error */
        uint32_t depth;  /* open objects/arrays */
} jw_t;

/* Kinds of the next value, from its first byte. */
typedef enum jw_kind {
        JW_END = 0, /* no value here (end of text or a syntax error) */
        JW_NULL,
        JW_BOOL,
        JW_NUMBER,
        JW_STRING,
        JW_OBJECT,
        JW_ARRAY
} jw_kind_t;

void jw_init(jw_t *w, const char *text, size_t len);
jw_kind_t jw_peek(jw_t *w);
const char *jw_error(const jw_t *w);

/* Objects: jw_object(w) consumes '{'; then jw_member(w, &n, key, cap)
 * returns 1 with the next key unescaped into key (truncated keys compare
 * unequal: *key_len tells the real length) and the cursor on its value,
 * 0 after the closing '}', -1 on error. n counts members (start at 0). */
int jw_object(jw_t *w);
int jw_member(jw_t *w, uint32_t *n, char *key, size_t cap, size_t *key_len);
/* Arrays likewise: jw_array() then jw_item() -> 1 value follows, 0 end. */
int jw_array(jw_t *w);
int jw_item(jw_t *w, uint32_t *n);

/* Skip one value of any kind. */
int jw_skip(jw_t *w);
/* A string, unescaped (UTF-8) into out[cap] and NUL-terminated; -1 with
 * "string too long" when it does not fit. *len may be NULL. */
int jw_string(jw_t *w, char *out, size_t cap, size_t *len);
/* A number: *d always; *i and *is_int when it is an integer in int64. */
int jw_number(jw_t *w, double *d, int64_t *i, int *is_int);
int jw_null(jw_t *w);
int jw_bool(jw_t *w, int *v);

/* Escape decoding, shared with ingest_json (which unescapes in place).
 * jw_escape_byte: the byte of a one-letter escape (\" \\ \/ \b \f \n \r
 * \t, c is the letter), or -1. jw_unicode_escape: the code point of the
 * \uXXXX at p (just after "\u", up to end), a surrogate pair joined;
 * *used is the bytes read; NULL, or why it is bad. jw_utf8: cp as UTF-8
 * into out[4], returns the length; never more than the escape's bytes,
 * which keeps in-place decoding safe. */
int jw_escape_byte(char c);
const char *jw_unicode_escape(const char *p, const char *end, uint32_t *cp,
                              size_t *used);
size_t jw_utf8(uint32_t cp, char *out);

#endif
