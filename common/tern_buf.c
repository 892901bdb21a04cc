#include "tern_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tern_buf_init(tern_buf_t *b, size_t max) {
        memset(b, 0, sizeof(*b));
        b->max = max;
}

void tern_buf_free(tern_buf_t *b) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

int tern_buf_grow(tern_buf_t *b, size_t n) {
        size_t want, cap;
        uint8_t *grown;
        if (b->overflow)
                return -1;
        if (n > b->max || b->len > b->max - n) {
                b->overflow = 1;
                return -1;
        }
        want = b->len + n;
        if (want <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 64;
        while (cap < want)
                cap = cap > b->max / 2 ? b->max : cap * 2;
        grown = realloc(b->data, cap);
        if (!grown) {
                b->overflow = 1;
                return -1;
        }
        b->data = grown;
        b->cap = cap;
        return 0;
}

int tern_buf_append(tern_buf_t *b, const void *p, size_t n) {
        if (tern_buf_reserve(b, n))
                return -1;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int tern_buf_put_u8(tern_buf_t *b, uint8_t v) {
        if (tern_buf_reserve(b, 1))
                return -1;
        b->data[b->len++] = v;
        return 0;
}

int tern_buf_put_u32be(tern_buf_t *b, uint32_t v) {
        uint8_t o[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
                        (uint8_t)(v >> 8), (uint8_t)v};
        return tern_buf_append(b, o, 4);
}

int tern_buf_put_u64be(tern_buf_t *b, uint64_t v) {
        uint8_t o[8];
        for (int i = 0; i < 8; i++)
                o[i] = (uint8_t)(v >> (56 - 8 * i));
        return tern_buf_append(b, o, 8);
}

/* The fixed-size and varint writers store in place after one reserve of
 * exactly their size: the same bytes, and the same overflow point, as an
 * append of a staged copy. */
int tern_buf_put_varint_exact(tern_buf_t *b, uint64_t v) {
        size_t n = 1;
        uint8_t *o;
        for (uint64_t t = v; t >= 0x80; t >>= 7)
                n++;
        if (tern_buf_reserve(b, n))
                return -1;
        o = b->data + b->len;
        while (v >= 0x80) {
                *o++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *o = (uint8_t)v;
        b->len += n;
        return 0;
}

int tern_buf_put_double_exact(tern_buf_t *b, double v) {
        uint64_t u;
        uint8_t *o;
        memcpy(&u, &v, 8);
        if (tern_buf_reserve(b, 8))
                return -1;
        o = b->data + b->len;
        for (int i = 0; i < 8; i++)
                o[i] = (uint8_t)(u >> (8 * i));
        b->len += 8;
        return 0;
}

int tern_buf_put_float(tern_buf_t *b, float v) {
        if (tern_buf_reserve(b, 4))
                return -1;
        tern_buf_float_at(b->data + b->len, v);
        b->len += 4;
        return 0;
}

int tern_buf_put_str_exact(tern_buf_t *b, const char *s, size_t n) {
        if (tern_buf_put_long(b, (int64_t)n))
                return -1;
        return tern_buf_append(b, s, n);
}

int tern_buf_put_cstr(tern_buf_t *b, const char *s) {
        return tern_buf_put_str(b, s, strlen(s));
}

int tern_buf_printf(tern_buf_t *b, const char *fmt, ...) {
        va_list ap;
        int n;
        char small[256];
        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -1;
        if ((size_t)n < sizeof(small))
                return tern_buf_append(b, small, (size_t)n);
        if (tern_buf_reserve(b, (size_t)n + 1))
                return -1;
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

int tern_buf_put_num(tern_buf_t *b, double v) {
        char s[32];
        snprintf(s, sizeof(s), "%.15g", v);
        if (strtod(s, NULL) != v)
                snprintf(s, sizeof(s), "%.17g", v);
        return tern_buf_printf(b, "%s", s);
}

int tern_buf_put_json_str(tern_buf_t *b, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        size_t run = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[6];
                size_t esc_len = 2;
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                if (tern_buf_append(b, s + run, i - run))
                        return -1;
                run = i + 1;
                esc[0] = '\\';
                switch (c) {
                case '"':
                        esc[1] = '"';
                        break;
                case '\\':
                        esc[1] = '\\';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        esc[1] = 'u';
                        esc[2] = '0';
                        esc[3] = '0';
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 15];
                        esc_len = 6;
                }
                if (tern_buf_append(b, esc, esc_len))
                        return -1;
        }
        return tern_buf_append(b, s + run, n - run);
}

static int rd_need(tern_rd_t *r, size_t n) {
        if (r->err || tern_rd_left(r) < n) {
                r->err = 1;
                return -1;
        }
        return 0;
}

uint8_t tern_rd_u8(tern_rd_t *r) {
        if (rd_need(r, 1))
                return 0;
        return *r->p++;
}

uint32_t tern_rd_u32be(tern_rd_t *r) {
        uint32_t v;
        if (rd_need(r, 4))
                return 0;
        v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
            (uint32_t)r->p[2] << 8 | r->p[3];
        r->p += 4;
        return v;
}

uint64_t tern_rd_u64be(tern_rd_t *r) {
        uint64_t v = 0;
        if (rd_need(r, 8))
                return 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | r->p[i];
        r->p += 8;
        return v;
}

uint64_t tern_rd_varint(tern_rd_t *r) {
        uint64_t v = 0;
        for (int shift = 0; shift < 70; shift += 7) {
                uint8_t c;
                if (rd_need(r, 1))
                        return 0;
                c = *r->p++;
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80))
                        return v;
        }
        r->err = 1; /* more than 10 bytes: not a varint */
        return 0;
}

int64_t tern_rd_long(tern_rd_t *r) {
        uint64_t u = tern_rd_varint(r);
        return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

double tern_rd_double(tern_rd_t *r) {
        uint64_t u = 0;
        double v;
        if (rd_need(r, 8))
                return 0;
        for (int i = 7; i >= 0; i--)
                u = u << 8 | r->p[i];
        r->p += 8;
        memcpy(&v, &u, 8);
        return v;
}

float tern_rd_float(tern_rd_t *r) {
        uint32_t u = 0;
        float v;
        if (rd_need(r, 4))
                return 0;
        for (int i = 3; i >= 0; i--)
                u = u << 8 | r->p[i];
        r->p += 4;
        memcpy(&v, &u, 4);
        return v;
}

const char *tern_rd_str(tern_rd_t *r, size_t max_len, uint32_t *len_out) {
        int64_t n = tern_rd_long(r);
        const char *s;
        *len_out = 0;
        if (r->err)
                return NULL;
        if (n < 0 || (uint64_t)n > max_len || (uint64_t)n > tern_rd_left(r) ||
            n > UINT32_MAX) {
                r->err = 1;
                return NULL;
        }
        s = (const char *)r->p;
        r->p += n;
        *len_out = (uint32_t)n;
        return s;
}

const uint8_t *tern_rd_bytes(tern_rd_t *r, size_t n) {
        const uint8_t *p;
        if (rd_need(r, n))
                return NULL;
        p = r->p;
        r->p += n;
        return p;
}
