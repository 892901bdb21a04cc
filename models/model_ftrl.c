/*
 * model_ftrl — FTRL-Proximal over hashed binary features; the math and the
 * record formats are in model_ftrl.h.
 *
 * Layout: one 32-byte, 32-aligned coord_t per coordinate holding z, n and
 * the cached w and sqrt(n), so predict costs one cache line per feature
 * and no sqrt or division (the DESIGN budget is ~0.75 us per example at 32
 * features, memory-latency bound). The caches are pure functions of (z, n),
 * recomputed with the same expressions after each change and on decode:
 * the floating-point result never depends on whether a model was restored.
 */
#include "model_ftrl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#define FTRL_REC_VERSION 1

typedef struct coord {
        double z, n;
        double w;      /* cache: weight(z, sqrt_n) */
        double sqrt_n; /* cache: sqrt(n) */
} coord_t;

struct model_ftrl {
        model_ftrl_conf_t conf;
        uint32_t mask; /* 2^bits - 1 */
        uint64_t size; /* 2^bits coordinates */
        coord_t *coord;
        void *coord_mem; /* what calloc returned (coord is aligned in it) */
        uint64_t updates;
        uint32_t pages;
        uint64_t *dirty_bits; /* one bit per page */
        uint32_t n_dirty;
        uint32_t *dirty_list; /* filled by model_ftrl_dirty_pages() */
};

void model_ftrl_conf_default(model_ftrl_conf_t *c) {
        c->alpha = 0.05;
        c->beta = 1.0;
        c->l1 = 1.0;
        c->l2 = 1.0;
        c->bits = 20;
}

static tern_code_t conf_check(const model_ftrl_conf_t *c, char *errstr,
                              size_t errstr_size) {
        if (!(c->alpha > 0) || !isfinite(c->alpha))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ftrl alpha must be a positive number "
                                 "(got %g)",
                                 c->alpha);
        if (!(c->beta >= 0) || !isfinite(c->beta) || !(c->l1 >= 0) ||
            !isfinite(c->l1) || !(c->l2 >= 0) || !isfinite(c->l2))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ftrl beta, l1 and l2 must be numbers >= 0 "
                                 "(got %g, %g, %g)",
                                 c->beta, c->l1, c->l2);
        if (c->bits < MODEL_FTRL_MIN_BITS || c->bits > MODEL_FTRL_MAX_BITS)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ftrl bits must be between %u and %u "
                                 "(got %u)",
                                 MODEL_FTRL_MIN_BITS, MODEL_FTRL_MAX_BITS,
                                 c->bits);
        return TERN_OK;
}

/* Hashed features touch the whole space in random order: left to first
 * touch, each new 4 KiB page costs a fault on the event path (on a VM,
 * tens of microseconds: most of an impression's scoring cost early in a
 * replay). So the coordinates live in 2 MiB-aligned memory, asked for in
 * huge pages, and are written once here; up to 1 GiB, that is. */
#define COORD_ALIGN  (2u << 20)
#define PREFAULT_MAX (1ull << 30)
static int coords_alloc(model_ftrl_t *m) {
        size_t bytes = m->size * sizeof(coord_t);
        size_t rounded = (bytes + COORD_ALIGN - 1) / COORD_ALIGN * COORD_ALIGN;
        if (posix_memalign(&m->coord_mem, COORD_ALIGN, rounded))
                return -1;
#ifdef MADV_HUGEPAGE
        madvise(m->coord_mem, rounded, MADV_HUGEPAGE);
#endif
        if (rounded <= PREFAULT_MAX) {
                memset(m->coord_mem, 0, rounded);
        } else {
                /* too large to keep resident up front: zero by mapping */
                free(m->coord_mem);
                m->coord_mem = calloc(1, bytes + 32);
                if (!m->coord_mem)
                        return -1;
        }
        m->coord = (coord_t *)(((uintptr_t)m->coord_mem + 31) & ~(uintptr_t)31);
        return 0;
}

model_ftrl_t *model_ftrl_new(const model_ftrl_conf_t *c, char *errstr,
                             size_t errstr_size) {
        model_ftrl_t *m;
        if (conf_check(c, errstr, errstr_size) != TERN_OK)
                return NULL;
        m = calloc(1, sizeof(*m));
        if (!m)
                goto nomem;
        m->conf = *c;
        m->size = (uint64_t)1 << c->bits;
        m->mask = (uint32_t)(m->size - 1);
        m->pages =
            (uint32_t)((m->size + MODEL_FTRL_PAGE - 1) / MODEL_FTRL_PAGE);
        if (coords_alloc(m))
                goto nomem;
        m->dirty_bits = calloc((m->pages + 63) / 64, sizeof(uint64_t));
        m->dirty_list = calloc(m->pages, sizeof(uint32_t));
        if (!m->coord_mem || !m->dirty_bits || !m->dirty_list)
                goto nomem;
        return m;
nomem:
        model_ftrl_destroy(m);
        tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                  "ftrl: cannot allocate 2^%u coordinates", c->bits);
        return NULL;
}

void model_ftrl_destroy(model_ftrl_t *m) {
        if (!m)
                return;
        free(m->coord_mem);
        free(m->dirty_bits);
        free(m->dirty_list);
        free(m);
}

const model_ftrl_conf_t *model_ftrl_conf(const model_ftrl_t *m) {
        return &m->conf;
}

static inline double weight(const model_ftrl_conf_t *c, double z,
                            double sqrt_n) {
        if (fabs(z) <= c->l1)
                return 0.0;
        return -(z - copysign(c->l1, z)) /
               ((c->beta + sqrt_n) / c->alpha + c->l2);
}

static inline void coord_set(const model_ftrl_conf_t *conf, coord_t *c,
                             double z, double n) {
        c->z = z;
        c->n = n;
        c->sqrt_n = sqrt(n);
        c->w = weight(conf, z, c->sqrt_n);
}

int model_ftrl_set_params(model_ftrl_t *m, double alpha, double beta, double l1,
                          double l2) {
        if (!(alpha > 0) || !isfinite(alpha) || !(beta >= 0) ||
            !isfinite(beta) || !(l1 >= 0) || !isfinite(l1) || !(l2 >= 0) ||
            !isfinite(l2))
                return -1;
        if (m->conf.alpha == alpha && m->conf.beta == beta &&
            m->conf.l1 == l1 && m->conf.l2 == l2)
                return 0;
        m->conf.alpha = alpha;
        m->conf.beta = beta;
        m->conf.l1 = l1;
        m->conf.l2 = l2;
        for (uint64_t i = 0; i < m->size; i++)
                if (m->coord[i].n != 0 || m->coord[i].z != 0)
                        m->coord[i].w =
                            weight(&m->conf, m->coord[i].z, m->coord[i].sqrt_n);
        return 0;
}

double model_ftrl_predict(const model_ftrl_t *m, const uint32_t *idx,
                          uint32_t n) {
        const coord_t *c = m->coord;
        uint32_t mask = m->mask;
        double s = 0.0;
        for (uint32_t k = 0; k < n; k++)
                s += c[idx[k] & mask].w;
        if (s > MODEL_FTRL_MAX_MARGIN)
                s = MODEL_FTRL_MAX_MARGIN;
        else if (s < -MODEL_FTRL_MAX_MARGIN)
                s = -MODEL_FTRL_MAX_MARGIN;
        return 1.0 / (1.0 + exp(-s));
}

double model_ftrl_margin(const model_ftrl_t *m, const uint32_t *idx,
                         uint32_t n) {
        double s = 0.0;
        for (uint32_t k = 0; k < n; k++)
                s += m->coord[idx[k] & m->mask].w;
        return s;
}

void model_ftrl_prefetch(const model_ftrl_t *m, const uint32_t *idx,
                         uint32_t n) {
        for (uint32_t k = 0; k < n; k++)
                __builtin_prefetch(&m->coord[idx[k] & m->mask]);
}

double model_ftrl_sigmoid(double margin) {
        if (margin > MODEL_FTRL_MAX_MARGIN)
                margin = MODEL_FTRL_MAX_MARGIN;
        else if (margin < -MODEL_FTRL_MAX_MARGIN)
                margin = -MODEL_FTRL_MAX_MARGIN;
        return 1.0 / (1.0 + exp(-margin));
}

static inline void mark_dirty(model_ftrl_t *m, uint32_t i) {
        uint32_t page = i / MODEL_FTRL_PAGE;
        uint64_t bit = (uint64_t)1 << (page & 63);
        if (!(m->dirty_bits[page >> 6] & bit)) {
                m->dirty_bits[page >> 6] |= bit;
                m->n_dirty++;
        }
}

void model_ftrl_update(model_ftrl_t *m, const uint32_t *idx, uint32_t n,
                       double p, int y) {
        const model_ftrl_conf_t *conf = &m->conf;
        double g = p - (y ? 1.0 : 0.0), g2 = g * g;
        /* The coordinates are scattered over the table: start every cache
         * miss before the sqrt/division work, which would otherwise keep
         * only a few of them in flight. */
        for (uint32_t k = 0; k < n; k++)
                __builtin_prefetch(&m->coord[idx[k] & m->mask], 1);
        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = idx[k] & m->mask;
                coord_t *c = &m->coord[i];
                double n_new = c->n + g2;
                double sqrt_new = sqrt(n_new);
                double sigma = (sqrt_new - c->sqrt_n) / conf->alpha;
                c->z = c->z + g - sigma * c->w;
                c->n = n_new;
                c->sqrt_n = sqrt_new;
                c->w = weight(conf, c->z, sqrt_new);
                mark_dirty(m, i);
        }
        m->updates++;
}

uint64_t model_ftrl_updates(const model_ftrl_t *m) {
        return m->updates;
}

double model_ftrl_weight(const model_ftrl_t *m, uint32_t i) {
        return m->coord[i & m->mask].w;
}

void model_ftrl_coord(const model_ftrl_t *m, uint32_t i, double *z, double *n) {
        const coord_t *c = &m->coord[i & m->mask];
        *z = c->z;
        *n = c->n;
}

uint32_t model_ftrl_pages(const model_ftrl_t *m) {
        return m->pages;
}

uint32_t model_ftrl_dirty_pages(const model_ftrl_t *m, const uint32_t **out) {
        uint32_t k = 0;
        /* dirty_list is model memory reached through a pointer: filling it
         * leaves the model itself unchanged. */
        for (uint32_t w = 0; k < m->n_dirty && w < (m->pages + 63) / 64; w++) {
                uint64_t bits = m->dirty_bits[w];
                while (bits) {
                        int b = __builtin_ctzll(bits);
                        m->dirty_list[k++] = w * 64 + (uint32_t)b;
                        bits &= bits - 1;
                }
        }
        *out = m->dirty_list;
        return k;
}

void model_ftrl_clear_dirty(model_ftrl_t *m) {
        memset(m->dirty_bits, 0, (m->pages + 63) / 64 * sizeof(uint64_t));
        m->n_dirty = 0;
}

/* ---- pages ---- */

static uint32_t page_len(const model_ftrl_t *m, uint32_t page) {
        uint64_t first = (uint64_t)page * MODEL_FTRL_PAGE;
        uint64_t left = m->size - first;
        return left < MODEL_FTRL_PAGE ? (uint32_t)left : MODEL_FTRL_PAGE;
}

/* Non-zero bit patterns, so a -0.0 would be kept and restored as such. */
static int dbl_nonzero(double v) {
        uint64_t u;
        memcpy(&u, &v, sizeof(u));
        return u != 0;
}

static int coord_touched(const coord_t *c) {
        return dbl_nonzero(c->z) || dbl_nonzero(c->n);
}

int model_ftrl_page_is_zero(const model_ftrl_t *m, uint32_t page) {
        const coord_t *c;
        uint32_t len;
        if (page >= m->pages)
                return 1;
        c = &m->coord[(size_t)page * MODEL_FTRL_PAGE];
        len = page_len(m, page);
        for (uint32_t k = 0; k < len; k++)
                if (coord_touched(&c[k]))
                        return 0;
        return 1;
}

void model_ftrl_page_encode(const model_ftrl_t *m, uint32_t page,
                            tern_buf_t *out) {
        const coord_t *c;
        uint32_t len, count = 0;
        int64_t prev = -1;
        if (page >= m->pages)
                return;
        c = &m->coord[(size_t)page * MODEL_FTRL_PAGE];
        len = page_len(m, page);
        for (uint32_t k = 0; k < len; k++)
                count += (uint32_t)coord_touched(&c[k]);
        tern_buf_put_u8(out, FTRL_REC_VERSION);
        tern_buf_put_varint(out, page);
        tern_buf_put_varint(out, count);
        for (uint32_t k = 0; k < len; k++) {
                if (!coord_touched(&c[k]))
                        continue;
                tern_buf_put_varint(out, (uint64_t)((int64_t)k - prev - 1));
                tern_buf_put_double(out, c[k].z);
                tern_buf_put_double(out, c[k].n);
                prev = k;
        }
}

void model_ftrl_page_clear(model_ftrl_t *m, uint32_t page) {
        if (page >= m->pages)
                return;
        memset(&m->coord[(size_t)page * MODEL_FTRL_PAGE], 0,
               page_len(m, page) * sizeof(coord_t));
}

typedef struct page_vals {
        double z[MODEL_FTRL_PAGE], n[MODEL_FTRL_PAGE];
} page_vals_t;

/* Parse a page record into v (zeros where absent); checks everything. */
static tern_code_t page_parse(const model_ftrl_t *m, uint32_t page,
                              const void *b, size_t blen, page_vals_t *v,
                              char *errstr, size_t errstr_size) {
        tern_rd_t r;
        uint32_t len = page_len(m, page);
        uint64_t count, stored_page, off;
        int64_t prev = -1;
        memset(v, 0, sizeof(*v));
        tern_rd_init(&r, b, blen);
        if (tern_rd_u8(&r) != FTRL_REC_VERSION)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl page %u: unknown record version", page);
        stored_page = tern_rd_varint(&r);
        count = tern_rd_varint(&r);
        if (!r.err && stored_page != page)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl page %u: record is of page %llu", page,
                                 (unsigned long long)stored_page);
        if (!r.err && count > len)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl page %u: %llu entries for %u "
                                 "coordinates",
                                 page, (unsigned long long)count, len);
        for (uint64_t k = 0; k < count && !r.err; k++) {
                uint64_t gap = tern_rd_varint(&r);
                double z = tern_rd_double(&r), n = tern_rd_double(&r);
                if (r.err)
                        break;
                off = (uint64_t)(prev + 1) + (gap < len ? gap : len);
                if (off >= len)
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "ftrl page %u: offset out of range",
                                         page);
                if (!isfinite(z) || !isfinite(n) || n < 0)
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "ftrl page %u: bad value at offset "
                                         "%llu",
                                         page, (unsigned long long)off);
                v->z[off] = z;
                v->n[off] = n;
                prev = (int64_t)off;
        }
        if (r.err || tern_rd_left(&r))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl page %u: record %s", page,
                                 r.err ? "truncated" : "has trailing bytes");
        return TERN_OK;
}

tern_code_t model_ftrl_page_decode(model_ftrl_t *m, uint32_t page,
                                   const void *v, size_t len, char *errstr,
                                   size_t errstr_size) {
        page_vals_t *vals;
        coord_t *c;
        tern_code_t code;
        if (page >= m->pages)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl page %u: the model has %u pages", page,
                                 m->pages);
        vals = malloc(sizeof(*vals)); /* 8 KiB: not on the stack */
        if (!vals)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "ftrl page %u: out of memory", page);
        code = page_parse(m, page, v, len, vals, errstr, errstr_size);
        if (code == TERN_OK) {
                c = &m->coord[(size_t)page * MODEL_FTRL_PAGE];
                for (uint32_t k = 0; k < page_len(m, page); k++)
                        coord_set(&m->conf, &c[k], vals->z[k], vals->n[k]);
        }
        free(vals);
        return code;
}

/* ---- header ---- */

void model_ftrl_header_encode(const model_ftrl_t *m, tern_buf_t *out) {
        tern_buf_put_u8(out, FTRL_REC_VERSION);
        tern_buf_put_u8(out, (uint8_t)m->conf.bits);
        tern_buf_put_varint(out, MODEL_FTRL_PAGE);
        tern_buf_put_double(out, m->conf.alpha);
        tern_buf_put_double(out, m->conf.beta);
        tern_buf_put_double(out, m->conf.l1);
        tern_buf_put_double(out, m->conf.l2);
        tern_buf_put_varint(out, m->updates);
}

tern_code_t model_ftrl_header_decode(model_ftrl_t *m, const void *v, size_t len,
                                     char *errstr, size_t errstr_size) {
        tern_rd_t r;
        model_ftrl_conf_t s;
        const model_ftrl_conf_t *c = &m->conf;
        uint64_t page, updates;
        tern_rd_init(&r, v, len);
        if (tern_rd_u8(&r) != FTRL_REC_VERSION)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl header: unknown record version");
        s.bits = tern_rd_u8(&r);
        page = tern_rd_varint(&r);
        s.alpha = tern_rd_double(&r);
        s.beta = tern_rd_double(&r);
        s.l1 = tern_rd_double(&r);
        s.l2 = tern_rd_double(&r);
        updates = tern_rd_varint(&r);
        if (r.err || tern_rd_left(&r))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "ftrl header: record %s",
                                 r.err ? "truncated" : "has trailing bytes");
        /* Exact comparison: the stored (z, n) are only meaningful under
         * the settings they were learned with. */
        if (s.bits != c->bits || page != MODEL_FTRL_PAGE ||
            s.alpha != c->alpha || s.beta != c->beta || s.l1 != c->l1 ||
            s.l2 != c->l2)
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_CONFIG,
                    "the stored CTR model was learned with bits=%u alpha=%.17g "
                    "beta=%.17g l1=%.17g l2=%.17g (page %llu) but the config "
                    "says bits=%u alpha=%.17g beta=%.17g l1=%.17g l2=%.17g "
                    "(page %u): restore those settings or start from a new "
                    "state directory",
                    s.bits, s.alpha, s.beta, s.l1, s.l2,
                    (unsigned long long)page, c->bits, c->alpha, c->beta, c->l1,
                    c->l2, MODEL_FTRL_PAGE);
        m->updates = updates;
        return TERN_OK;
}
