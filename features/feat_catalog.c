#include "feat_catalog.h"

#include <stdlib.h>
#include <string.h>

#include "../common/tern_pool.h"

#define CAT_PREFIX     "cat"
#define CAT_PREFIX_LEN 4 /* "cat\0" */
#define CAT_VERSION    1

/* One allocation per entry: [item][category], not NUL-terminated, from
 * the catalog's pool (entries live for minutes: common/tern_pool.h). */
typedef struct entry {
        char *mem;
        uint32_t len, clen;
        uint64_t hash;
        uint64_t seen; /* the catalog's tick at the last observe or get */
        int dirty;
} entry_t;

struct feat_catalog {
        feat_store_t *st;
        entry_t *slots;
        uint64_t cap, n;  /* cap: power of two, load <= 1/2 */
        uint64_t max;     /* entries kept after a commit */
        uint64_t tick;    /* unique, increasing: orders entries by use */
        int partial;      /* the store holds items memory does not */
        uint32_t *dirty;  /* slot indexes changed since the last commit */
        tern_pool_t *mem; /* the entries' bytes */
        uint64_t n_dirty, dirty_cap;
        feat_catalog_stats_t st_;
        tern_buf_t key, val;
};

static uint64_t hash_of(const char *s, uint32_t len) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (uint32_t i = 0; i < len; i++)
                h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
        return h;
}

static void entry_release(feat_catalog_t *c, entry_t *e) {
        tern_pool_free(c->mem, e->mem, (size_t)e->len + e->clen + 1);
}

static entry_t *slot_of(const feat_catalog_t *c, const char *item, uint32_t len,
                        uint64_t h) {
        uint64_t mask = c->cap - 1;
        for (uint64_t i = h & mask;; i = (i + 1) & mask) {
                entry_t *e = &c->slots[i];
                if (!e->mem || (e->hash == h && e->len == len &&
                                !memcmp(e->mem, item, len)))
                        return e;
        }
}

/* Moves every entry into a table of cap slots, dropping (and freeing)
 * those seen at or before drop_upto (0: none). */
static int rehash(feat_catalog_t *c, uint64_t cap, uint64_t drop_upto) {
        entry_t *old = c->slots;
        uint64_t old_cap = c->cap;
        entry_t *slots = calloc(cap, sizeof(*slots));
        if (!slots)
                return -1;
        c->slots = slots;
        c->cap = cap;
        for (uint64_t i = 0; i < old_cap; i++) {
                if (!old[i].mem)
                        continue;
                if (old[i].seen <= drop_upto) {
                        entry_release(c, &old[i]);
                        c->n--;
                        c->st_.evicted++;
                        continue;
                }
                *slot_of(c, old[i].mem, old[i].len, old[i].hash) = old[i];
        }
        free(old);
        /* Slot indexes moved: re-list the dirty entries. */
        c->n_dirty = 0;
        for (uint64_t i = 0; i < cap; i++)
                if (slots[i].mem && slots[i].dirty)
                        c->dirty[c->n_dirty++] = (uint32_t)i;
        return 0;
}

static int grow(feat_catalog_t *c) {
        return rehash(c, c->cap ? c->cap * 2 : 1024, 0);
}

static int mark_dirty(feat_catalog_t *c, entry_t *e) {
        if (e->dirty)
                return 0;
        if (c->n_dirty == c->dirty_cap) {
                uint64_t cap = c->dirty_cap ? c->dirty_cap * 2 : 1024;
                uint32_t *d = realloc(c->dirty, cap * sizeof(*d));
                if (!d)
                        return -1;
                c->dirty = d;
                c->dirty_cap = cap;
        }
        e->dirty = 1;
        c->dirty[c->n_dirty++] = (uint32_t)(e - c->slots);
        return 0;
}

static int put(feat_catalog_t *c, const char *item, uint32_t len,
               const char *cat, uint32_t clen, int dirty) {
        uint64_t h = hash_of(item, len);
        entry_t *e;
        char *mem;
        /* grow() re-lists the same dirty entries: the list has room. */
        if ((c->n + 1) * 2 > c->cap && grow(c))
                return -1;
        e = slot_of(c, item, len, h);
        if (e->mem && e->clen == clen && !memcmp(e->mem + len, cat, clen)) {
                e->seen = ++c->tick;
                return 0; /* unchanged: the common case */
        }
        if (!(mem = tern_pool_alloc(c->mem, (size_t)len + clen + 1)))
                return -1;
        memcpy(mem, item, len);
        memcpy(mem + len, cat, clen);
        if (!e->mem)
                c->n++;
        else
                entry_release(c, e);
        e->mem = mem;
        e->len = len;
        e->clen = clen;
        e->hash = h;
        e->seen = ++c->tick;
        return dirty ? mark_dirty(c, e) : 0;
}

void feat_catalog_observe(feat_catalog_t *c, const char *item, uint32_t len,
                          const char *category, uint32_t clen) {
        if (!item || !category || !len || !clen || len > FEAT_CATALOG_MAX_ID ||
            clen > FEAT_CATALOG_MAX_ID)
                return;
        /* Out of memory: the item keeps its old category (boosts are a
         * best effort for items tern cannot remember). */
        (void)put(c, item, len, category, clen, 1);
}

static void key_of(feat_catalog_t *c, const char *item, uint32_t len) {
        tern_buf_reset(&c->key);
        tern_buf_append(&c->key, CAT_PREFIX, CAT_PREFIX_LEN);
        tern_buf_append(&c->key, item, len);
}

/* An item memory does not hold: the store may (it was dropped, or did
 * not fit at load). Kept in memory as a clean entry once read. */
static const char *get_stored(feat_catalog_t *c, const char *item, uint32_t len,
                              uint32_t *clen) {
        char errstr[256];
        int found = 0;
        uint32_t vlen;
        if (len > FEAT_CATALOG_MAX_ID)
                return NULL;
        c->st_.store_reads++;
        key_of(c, item, len);
        if (feat_store_get(c->st, FEAT_CF_META, c->key.data, c->key.len,
                           &c->val, &found, errstr,
                           sizeof(errstr)) != TERN_OK) {
                c->st_.read_errors++;
                return NULL;
        }
        if (!found || c->val.len < 2 || c->val.data[0] != CAT_VERSION)
                return NULL;
        vlen = (uint32_t)c->val.len - 1;
        if (put(c, item, len, (const char *)c->val.data + 1, vlen, 0) == 0)
                return feat_catalog_get(c, item, len, clen);
        *clen = vlen; /* out of memory: answer from the read buffer */
        return (const char *)c->val.data + 1;
}

const char *feat_catalog_get(feat_catalog_t *c, const char *item, uint32_t len,
                             uint32_t *clen) {
        entry_t *e = slot_of(c, item, len, hash_of(item, len));
        if (!e->mem)
                return c->partial ? get_stored(c, item, len, clen) : NULL;
        e->seen = ++c->tick;
        *clen = e->clen;
        return e->mem + e->len;
}

void feat_catalog_stats(const feat_catalog_t *c, feat_catalog_stats_t *out) {
        *out = c->st_;
        out->size = c->n;
}

/* ---- persistence ---- */

static tern_code_t cat_write(void *opaque, feat_store_t *st, feat_batch_t *b,
                             char *errstr, size_t errstr_size) {
        feat_catalog_t *c = opaque;
        tern_buf_t val;
        (void)errstr;
        (void)errstr_size;
        tern_buf_init(&val, 2 * FEAT_CATALOG_MAX_ID);
        for (uint64_t i = 0; i < c->n_dirty; i++) {
                const entry_t *e = &c->slots[c->dirty[i]];
                key_of(c, e->mem, e->len);
                tern_buf_reset(&val);
                tern_buf_put_u8(&val, CAT_VERSION);
                tern_buf_append(&val, e->mem + e->len, e->clen);
                feat_batch_put(b, st, FEAT_CF_META, c->key.data, c->key.len,
                               val.data, val.len);
        }
        tern_buf_free(&val);
        return TERN_OK;
}

static int seen_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Over the bound with every entry in the store: drop the least recently
 * seen down to 7/8 of it. Out of memory: tried again at the next commit. */
static void evict(feat_catalog_t *c) {
        uint64_t keep = c->max - c->max / 8, drop = c->n - keep, cap = 1024;
        uint64_t *seen = malloc(c->n * sizeof(*seen)), k = 0, cut;
        if (!seen)
                return;
        for (uint64_t i = 0; i < c->cap; i++)
                if (c->slots[i].mem)
                        seen[k++] = c->slots[i].seen;
        qsort(seen, k, sizeof(*seen), seen_cmp);
        cut = seen[drop - 1]; /* ticks are unique: exactly drop entries */
        free(seen);
        while (cap < 2 * keep)
                cap *= 2;
        if (rehash(c, cap, cut) == 0)
                c->partial = 1;
}

static int cat_over_bound(void *opaque) {
        const feat_catalog_t *c = opaque;
        return c->n > c->max;
}

static void cat_done(void *opaque, int written) {
        feat_catalog_t *c = opaque;
        if (!written)
                return; /* the pipeline stops */
        for (uint64_t i = 0; i < c->n_dirty; i++)
                c->slots[c->dirty[i]].dirty = 0;
        c->n_dirty = 0;
        if (cat_over_bound(c))
                evict(c);
}

static tern_code_t load(feat_catalog_t *c, char *errstr, size_t errstr_size) {
        feat_iter_t *it =
            feat_iter_new(c->st, FEAT_CF_META, CAT_PREFIX, CAT_PREFIX_LEN);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t rc;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "catalog: out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                if (c->n >= c->max) {
                        c->partial = 1; /* the rest is read on demand */
                        break;
                }
                if (vlen < 2 || v[0] != CAT_VERSION || klen <= CAT_PREFIX_LEN ||
                    klen - CAT_PREFIX_LEN > FEAT_CATALOG_MAX_ID)
                        continue;
                if (put(c, (const char *)k + CAT_PREFIX_LEN,
                        (uint32_t)(klen - CAT_PREFIX_LEN), (const char *)v + 1,
                        (uint32_t)(vlen - 1), 0)) {
                        feat_iter_destroy(it);
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "catalog: out of memory");
                }
        }
        rc = feat_iter_status(it, "reading the item catalog", errstr,
                              errstr_size);
        feat_iter_destroy(it);
        return rc;
}

feat_catalog_t *feat_catalog_new(feat_store_t *st, feat_engine_t *eng,
                                 uint64_t max_items, char *errstr,
                                 size_t errstr_size) {
        feat_catalog_t *c = calloc(1, sizeof(*c));
        if (!c) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "catalog: out of memory");
                return NULL;
        }
        c->st = st;
        c->max = max_items ? max_items : UINT64_MAX;
        tern_buf_init(&c->key, CAT_PREFIX_LEN + FEAT_CATALOG_MAX_ID);
        tern_buf_init(&c->val, 1 + FEAT_CATALOG_MAX_ID);
        if (!(c->mem = tern_pool_new()) || grow(c)) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "catalog: out of memory");
                goto fail;
        }
        if (load(c, errstr, errstr_size) != TERN_OK)
                goto fail;
        if (eng && feat_engine_add_writer(
                       eng, &(feat_writer_t){cat_write, cat_done, c,
                                             cat_over_bound}) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                          "catalog: no room for another commit writer");
                goto fail;
        }
        return c;
fail:
        feat_catalog_destroy(c);
        return NULL;
}

void feat_catalog_destroy(feat_catalog_t *c) {
        if (!c)
                return;
        for (uint64_t i = 0; i < c->cap; i++)
                if (c->slots[i].mem)
                        entry_release(c, &c->slots[i]);
        tern_pool_destroy(c->mem);
        free(c->slots);
        free(c->dirty);
        tern_buf_free(&c->key);
        tern_buf_free(&c->val);
        free(c);
}
