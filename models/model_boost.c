#include "model_boost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BOOST_REC_VERSION 1

typedef struct table {
        model_boost_entry_t *e; /* sorted by id */
        uint32_t n, cap;
        size_t bytes; /* sum of len + MODEL_BOOST_ENTRY_OVERHEAD */
} table_t;

struct model_boost {
        table_t t[MODEL_BOOST__KINDS];
};

static int id_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen) {
        int c = memcmp(a, b, alen < blen ? alen : blen);
        if (c)
                return c;
        return alen < blen ? -1 : alen > blen;
}

/* Index of id, or -(insertion point) - 1. */
static int64_t find(const table_t *t, const char *id, uint32_t len) {
        int64_t lo = 0, hi = (int64_t)t->n - 1;
        while (lo <= hi) {
                int64_t mid = (lo + hi) / 2;
                int c = id_cmp(t->e[mid].id, t->e[mid].len, id, len);
                if (c == 0)
                        return mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid - 1;
        }
        return -lo - 1;
}

model_boost_t *model_boost_new(void) {
        return calloc(1, sizeof(model_boost_t));
}

static void table_clear(table_t *t) {
        for (uint32_t i = 0; i < t->n; i++)
                free((char *)t->e[i].id);
        t->n = 0;
        t->bytes = 0;
}

void model_boost_clear(model_boost_t *b) {
        for (int k = 0; k < MODEL_BOOST__KINDS; k++)
                table_clear(&b->t[k]);
}

void model_boost_destroy(model_boost_t *b) {
        if (!b)
                return;
        model_boost_clear(b);
        for (int k = 0; k < MODEL_BOOST__KINDS; k++)
                free(b->t[k].e);
        free(b);
}

int model_boost_set(model_boost_t *b, model_boost_kind_t kind, const char *id,
                    uint32_t len, double factor, int64_t until_ts_ms) {
        table_t *t = &b->t[kind];
        int64_t at = find(t, id, len);
        char *copy;
        if (len == 0 || len > MODEL_BOOST_MAX_ID)
                return -1;
        if (at >= 0) {
                t->e[at].factor = factor;
                t->e[at].until_ts_ms = until_ts_ms;
                return 0;
        }
        if (t->n >= MODEL_BOOST_MAX_ENTRIES)
                return -1;
        if (t->n == t->cap) {
                uint32_t cap = t->cap ? t->cap * 2 : 16;
                model_boost_entry_t *e = realloc(t->e, cap * sizeof(*e));
                if (!e)
                        return -1;
                t->e = e;
                t->cap = cap;
        }
        if (!(copy = malloc(len + 1)))
                return -1;
        memcpy(copy, id, len);
        copy[len] = '\0';
        at = -at - 1;
        memmove(&t->e[at + 1], &t->e[at],
                (t->n - (uint32_t)at) * sizeof(*t->e));
        t->e[at] = (model_boost_entry_t){copy, len, factor, until_ts_ms};
        t->n++;
        t->bytes += len + MODEL_BOOST_ENTRY_OVERHEAD;
        return 0;
}

int model_boost_remove(model_boost_t *b, model_boost_kind_t kind,
                       const char *id, uint32_t len) {
        table_t *t = &b->t[kind];
        int64_t at = find(t, id, len);
        if (at < 0)
                return 0;
        t->bytes -= t->e[at].len + MODEL_BOOST_ENTRY_OVERHEAD;
        free((char *)t->e[at].id);
        memmove(&t->e[at], &t->e[at + 1],
                (t->n - (uint32_t)at - 1) * sizeof(*t->e));
        t->n--;
        return 1;
}

uint32_t model_boost_count(const model_boost_t *b, model_boost_kind_t kind) {
        return b->t[kind].n;
}

const model_boost_entry_t *model_boost_at(const model_boost_t *b,
                                          model_boost_kind_t kind, uint32_t i) {
        return i < b->t[kind].n ? &b->t[kind].e[i] : NULL;
}

const model_boost_entry_t *model_boost_get(const model_boost_t *b,
                                           model_boost_kind_t kind,
                                           const char *id, uint32_t len) {
        int64_t at = find(&b->t[kind], id, len);
        return at >= 0 ? &b->t[kind].e[at] : NULL;
}

double model_boost_factor(const model_boost_t *b, const char *item,
                          uint32_t len, const char *category, uint32_t clen,
                          int64_t now_ms) {
        const model_boost_entry_t *e;
        double f = 1.0;
        if (b->t[MODEL_BOOST_ITEM].n &&
            (e = model_boost_get(b, MODEL_BOOST_ITEM, item, len)) &&
            now_ms < e->until_ts_ms)
                f *= e->factor;
        if (category && b->t[MODEL_BOOST_CATEGORY].n &&
            (e = model_boost_get(b, MODEL_BOOST_CATEGORY, category, clen)) &&
            now_ms < e->until_ts_ms)
                f *= e->factor;
        return f;
}

int model_boost_blocked(const model_boost_t *b, const char *item,
                        uint32_t len) {
        return b->t[MODEL_BOOST_BLOCKED].n &&
               find(&b->t[MODEL_BOOST_BLOCKED], item, len) >= 0;
}

size_t model_boost_encoded_max(const model_boost_t *b) {
        size_t n = 1; /* the version */
        for (int k = 0; k < MODEL_BOOST__KINDS; k++)
                n += 10 + b->t[k].bytes; /* varint count, entries */
        return n;
}

void model_boost_encode(const model_boost_t *b, tern_buf_t *out) {
        tern_buf_put_u8(out, BOOST_REC_VERSION);
        for (int k = 0; k < MODEL_BOOST__KINDS; k++) {
                const table_t *t = &b->t[k];
                tern_buf_put_varint(out, t->n);
                for (uint32_t i = 0; i < t->n; i++) {
                        tern_buf_put_str(out, t->e[i].id, t->e[i].len);
                        tern_buf_put_double(out, t->e[i].factor);
                        tern_buf_put_long(out, t->e[i].until_ts_ms);
                }
        }
}

tern_code_t model_boost_decode(model_boost_t *b, tern_rd_t *r, char *errstr,
                               size_t errstr_size) {
        model_boost_t *tmp = model_boost_new();
        tern_code_t rc = TERN_OK;
        if (!tmp)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "boosts: out of memory");
        if (tern_rd_u8(r) != BOOST_REC_VERSION)
                rc = TERN_ERR_DECODE;
        for (int k = 0; rc == TERN_OK && k < MODEL_BOOST__KINDS; k++) {
                uint64_t n = tern_rd_varint(r);
                if (r->err || n > MODEL_BOOST_MAX_ENTRIES)
                        rc = TERN_ERR_DECODE;
                for (uint64_t i = 0; rc == TERN_OK && i < n; i++) {
                        uint32_t len;
                        const char *id =
                            tern_rd_str(r, MODEL_BOOST_MAX_ID, &len);
                        double f = tern_rd_double(r);
                        int64_t until = tern_rd_long(r);
                        if (r->err || !isfinite(f) ||
                            model_boost_set(tmp, (model_boost_kind_t)k, id, len,
                                            f, until))
                                rc = TERN_ERR_DECODE;
                }
        }
        if (rc != TERN_OK) {
                model_boost_destroy(tmp);
                return tern_errf(errstr, errstr_size, rc,
                                 "boosts: malformed record");
        }
        model_boost_clear(b);
        for (int k = 0; k < MODEL_BOOST__KINDS; k++) {
                table_t swap = b->t[k];
                b->t[k] = tmp->t[k];
                tmp->t[k] = swap;
        }
        model_boost_destroy(tmp);
        return TERN_OK;
}
