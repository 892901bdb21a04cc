/*
 * tern_buf — a growable byte buffer with a hard maximum, and a bounded reader.
 *
 * Writers: every append checks the maximum given at init; past it the append
 * fails, nothing is written and `overflow` stays set until tern_buf_reset().
 * The avro helpers write Avro binary encoding (zigzag varint longs,
 * length-prefixed strings, little-endian doubles); tern's state records use
 * the same primitives.
 *
 * Reader: a cursor over borrowed bytes. Every read checks the bytes that
 * remain; after the first failure `err` is set and every later read returns
 * zero values, so a caller may read a whole record and check `err` once.
 * Strings returned by tern_rd_str() borrow the reader's bytes.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tern_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        size_t max; /* hard limit on len */
        int overflow;
} tern_buf_t;

void tern_buf_init(tern_buf_t *b, size_t max);
void tern_buf_free(tern_buf_t *b);
static inline void tern_buf_reset(tern_buf_t *b) {
        b->len = 0;
        b->overflow = 0;
}
/* tern_buf_reserve()'s slow path: grow, or fail past the maximum. */
int tern_buf_grow(tern_buf_t *b, size_t n);
/* Make room for n more bytes; -1 past the maximum or on allocation failure.
 * Inline: the encoders call it for every field, and it almost always fits. */
static inline int tern_buf_reserve(tern_buf_t *b, size_t n) {
        if (!b->overflow && n <= b->cap - b->len && n <= b->max - b->len)
                return 0;
        return tern_buf_grow(b, n);
}
int tern_buf_append(tern_buf_t *b, const void *p, size_t n);
int tern_buf_put_u8(tern_buf_t *b, uint8_t v);
int tern_buf_put_u32be(tern_buf_t *b, uint32_t v);
int tern_buf_put_u64be(tern_buf_t *b, uint64_t v);
int tern_buf_put_float(tern_buf_t *b, float v);

/* The writers every encoder calls per field (varint, long, double,
 * string) are inline: when the buffer has room for the longest form they
 * store in place; otherwise the out-of-line _exact versions reserve
 * exactly what the value needs, so the bytes and the overflow point are
 * the same either way. */
int tern_buf_put_varint_exact(tern_buf_t *b, uint64_t v);
int tern_buf_put_double_exact(tern_buf_t *b, double v);
int tern_buf_put_str_exact(tern_buf_t *b, const char *s, size_t n);

static inline int tern_buf_room(const tern_buf_t *b, size_t n) {
        return !b->overflow && n <= b->cap - b->len && n <= b->max - b->len;
}

static inline uint8_t *tern_buf_varint_at(uint8_t *o, uint64_t v) {
        while (v >= 0x80) {
                *o++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *o++ = (uint8_t)v;
        return o;
}

/* Avro long (zigzag varint) at o; at most 10 bytes. */
static inline uint8_t *tern_buf_long_at(uint8_t *o, int64_t v) {
        return tern_buf_varint_at(o, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* Avro double (little-endian) at o: 8 bytes. */
static inline uint8_t *tern_buf_double_at(uint8_t *o, double v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Avro's order already: one store (the byte loop below was not
         * merged into one by the compiler: ~750 instructions per event) */
        memcpy(o, &v, 8);
#else
        uint64_t u;
        memcpy(&u, &v, 8);
        for (int i = 0; i < 8; i++) /* little-endian on any CPU */
                o[i] = (uint8_t)(u >> (8 * i));
#endif
        return o + 8;
}

/* Avro float (little-endian) at o: 4 bytes. */
static inline uint8_t *tern_buf_float_at(uint8_t *o, float v) {
        uint32_t u;
        memcpy(&u, &v, 4);
        for (int i = 0; i < 4; i++)
                o[i] = (uint8_t)(u >> (8 * i));
        return o + 4;
}

/* Avro string at o: at most 10 + n bytes. */
static inline uint8_t *tern_buf_str_at(uint8_t *o, const char *s, size_t n) {
        o = tern_buf_varint_at(o, (uint64_t)n << 1);
        if (n)
                memcpy(o, s, n);
        return o + n;
}

static inline int tern_buf_put_varint(tern_buf_t *b, uint64_t v) {
        if (!tern_buf_room(b, 10))
                return tern_buf_put_varint_exact(b, v);
        b->len = (size_t)(tern_buf_varint_at(b->data + b->len, v) - b->data);
        return 0;
}

/* Avro long (zigzag) */
static inline int tern_buf_put_long(tern_buf_t *b, int64_t v) {
        return tern_buf_put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline int tern_buf_put_double(tern_buf_t *b, double v) {
        if (!tern_buf_room(b, 8))
                return tern_buf_put_double_exact(b, v);
        tern_buf_double_at(b->data + b->len, v);
        b->len += 8;
        return 0;
}

/* Avro string */
static inline int tern_buf_put_str(tern_buf_t *b, const char *s, size_t n) {
        uint8_t *o;
        if (n > 1024 || !tern_buf_room(b, 10 + n))
                return tern_buf_put_str_exact(b, s, n);
        o = tern_buf_str_at(b->data + b->len, s, n);
        b->len = (size_t)(o - b->data);
        return 0;
}
int tern_buf_put_cstr(tern_buf_t *b, const char *s);
int tern_buf_printf(tern_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as the body of a JSON string (escaped, no quotes). */
int tern_buf_put_json_str(tern_buf_t *b, const char *s, size_t n);
/* A finite double as the shorter of %.15g and %.17g that reads back as v
 * (0.9, not 0.90000000000000002): for JSON a person reads. */
int tern_buf_put_num(tern_buf_t *b, double v);

typedef struct tern_rd {
        const uint8_t *p;
        const uint8_t *end;
        int err;
} tern_rd_t;

static inline void tern_rd_init(tern_rd_t *r, const void *p, size_t n) {
        r->p = (const uint8_t *)p;
        r->end = n ? r->p + n : r->p; /* an empty buffer's data may be NULL */
        r->err = 0;
}
static inline size_t tern_rd_left(const tern_rd_t *r) {
        return (size_t)(r->end - r->p);
}
uint8_t tern_rd_u8(tern_rd_t *r);
uint32_t tern_rd_u32be(tern_rd_t *r);
uint64_t tern_rd_u64be(tern_rd_t *r);
uint64_t tern_rd_varint(tern_rd_t *r); /* at most 10 bytes */
int64_t tern_rd_long(tern_rd_t *r);    /* Avro long (zigzag) */
double tern_rd_double(tern_rd_t *r);
float tern_rd_float(tern_rd_t *r);
/* Avro string/bytes: length then bytes, length checked against what remains
 * and against max_len. Returns a pointer into the reader's bytes. */
const char *tern_rd_str(tern_rd_t *r, size_t max_len, uint32_t *len_out);
const uint8_t *tern_rd_bytes(tern_rd_t *r, size_t n);

#endif
