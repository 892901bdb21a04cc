/*
 * feat_profile — the user record: allocation, the profile and window
 * record codecs, and the per-event profile update (counts, spend, times,
 * sessions, decayed category affinities, recent distinct items).
 *
 * Profile record v1 (FEAT_CF_PROFILE), tern_buf primitives:
 *   u8 version, varint events[TERN_EV__CNT], double spend, varint units,
 *   long first_ts_ms, long last_ts_ms, double gap_ewma_ms, varint sessions,
 *   varint n_affinity, {str category, double score, long ts_ms}...,
 *   varint n_recent, {str item, long ts_ms, u8 type}...
 * Window record v1 (FEAT_CF_WINDOW):
 *   u8 version, varint n, {str item, long ts_ms, u8 type}...
 * Doubles are stored bit-exact, so a user reloaded from the store computes
 * exactly what the in-memory copy would have.
 */
#include "feat_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- user memory ----
 *
 * The body of a user is one block:
 *   window[cw] recent[cr] aff[ca] win_iid[cw] win_gen[cw] arena[cb]
 * Lists start small and grow up to their configured limits, so the many
 * users seen once or twice stay small. Id strings are appended to the
 * arena and never freed one by one (an evicted entry just leaves its bytes
 * behind); when the arena or a list is full, the body is rebuilt with the
 * live strings packed, at least twice their size, so appends are amortised
 * O(1) and the arena stays within a few times the live bytes, which the
 * list limits bound. A new user costs one allocation (its first body
 * comes with the record) and no entry ever costs an allocation or a free.
 * A user read back from RocksDB gets lists as long as its records' and an
 * arena of their bytes (feat_user_decode), not the doubled sizes of
 * growth. Records and bodies come from the engine's pool of users
 * (common/tern_pool.h): they live for minutes among RocksDB's blocks.
 */

/* Most users are seen a few times: start with room for about that. */
#define USER_FIRST_ENTRIES 2u
#define USER_FIRST_BYTES   32u

void feat_user_sync_pub(feat_uuser_t *u) {
        u->pub.user_id = u->user_id;
        u->pub.window = u->window;
        u->pub.profile.affinity = u->aff;
        u->pub.profile.recent = u->recent;
}

static size_t body_size(uint32_t cw, uint32_t cr, uint32_t ca, uint32_t cb) {
        return ((size_t)cw + cr) * sizeof(feat_item_ts_t) +
               (size_t)ca * sizeof(feat_affinity_t) +
               (size_t)cw * 2 * sizeof(uint32_t) + cb;
}

const char *feat_user_add_id(feat_uuser_t *u, const char *s, uint32_t len) {
        char *d = u->arena + u->arena_len;
        if (len)
                memcpy(d, s, len);
        u->arena_len += len;
        return d;
}

/* Copies an old list's strings into the (new) arena. A recent entry naming
 * the same bytes as an old window entry shares the window's new copy. */
static void pack_items(feat_uuser_t *u, feat_item_ts_t *v, uint32_t n,
                       const feat_item_ts_t *old_win, uint32_t n_win) {
        for (uint32_t i = 0; i < n; i++) {
                const char *s = NULL;
                for (uint32_t k = 0; k < n_win && !s; k++)
                        if (old_win[k].item == v[i].item)
                                s = u->window[k].item;
                v[i].item = s ? s : feat_user_add_id(u, v[i].item, v[i].len);
        }
}

/* Moves everything into a new body with the given capacities: at `body`
 * (the first one, allocated with the user) or a fresh block. */
static int user_rebuild(feat_uuser_t *u, uint32_t cw, uint32_t cr, uint32_t ca,
                        uint32_t cb, char *body) {
        const feat_profile_t *p = &u->pub.profile;
        int inline_body = body != NULL;
        feat_item_ts_t *win, *rec;
        feat_affinity_t *aff;
        uint32_t *iid;
        size_t old_size =
            body_size(u->cap_window, u->cap_recent, u->cap_aff, u->arena_cap);
        if (!body &&
            !(body = tern_pool_alloc(u->pool, body_size(cw, cr, ca, cb))))
                return -1;
        win = (feat_item_ts_t *)(void *)body;
        rec = win + cw;
        aff = (feat_affinity_t *)(void *)(rec + cr);
        iid = (uint32_t *)(void *)(aff + ca);
        if (u->body) { /* a new user has nothing to copy */
                memcpy(win, u->window, u->pub.n_window * sizeof(*win));
                memcpy(rec, u->recent, p->n_recent * sizeof(*rec));
                memcpy(aff, u->aff, p->n_affinity * sizeof(*aff));
                memcpy(iid, u->win_iid, u->pub.n_window * sizeof(*iid));
                memcpy(iid + cw, u->win_gen, u->pub.n_window * sizeof(*iid));
        }
        u->arena = (char *)(iid + 2 * (size_t)cw);
        u->arena_len = 0;
        u->arena_cap = cb;
        {
                const feat_item_ts_t *old_win = u->window;
                u->window = win;
                pack_items(u, win, u->pub.n_window, NULL, 0);
                pack_items(u, rec, p->n_recent, old_win, u->pub.n_window);
        }
        for (uint32_t i = 0; i < p->n_affinity; i++)
                aff[i].category =
                    feat_user_add_id(u, aff[i].category, aff[i].len);
        if (!u->body_inline)
                tern_pool_free(u->pool, u->body, old_size);
        u->body = body;
        u->body_inline = (uint8_t)inline_body;
        u->recent = rec;
        u->aff = aff;
        u->win_iid = iid;
        u->win_gen = iid + cw;
        u->cap_window = cw;
        u->cap_recent = cr;
        u->cap_aff = ca;
        feat_user_sync_pub(u);
        return 0;
}

/* A capacity of at least need (at most max), doubling to amortise. */
static uint32_t grown(uint32_t cap, uint32_t need, uint32_t max) {
        uint64_t c = cap;
        if (need <= cap)
                return cap;
        c = c * 2 > need ? c * 2 : need;
        return c < max ? (uint32_t)c : max;
}

static uint32_t live_bytes(const feat_uuser_t *u) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < u->pub.n_window; i++)
                n += u->window[i].len;
        for (uint32_t i = 0; i < u->pub.profile.n_recent; i++)
                n += u->recent[i].len;
        for (uint32_t i = 0; i < u->pub.profile.n_affinity; i++)
                n += u->aff[i].len;
        return n;
}

int feat_user_room(feat_uuser_t *u, uint32_t n_window, uint32_t n_recent,
                   uint32_t n_aff, uint32_t bytes) {
        uint64_t cb;
        if (n_window <= u->cap_window && n_recent <= u->cap_recent &&
            n_aff <= u->cap_aff && bytes <= u->arena_cap - u->arena_len)
                return 0;
        cb = 2 * ((uint64_t)live_bytes(u) + bytes);
        if (cb < u->arena_cap && bytes <= u->arena_cap - u->arena_len)
                cb = u->arena_cap; /* only a list grows */
        if (cb < USER_FIRST_BYTES)
                cb = USER_FIRST_BYTES;
        if (cb > UINT32_MAX)
                return -1;
        return user_rebuild(u, grown(u->cap_window, n_window, u->max_window),
                            grown(u->cap_recent, n_recent, u->max_recent),
                            grown(u->cap_aff, n_aff, u->max_aff), (uint32_t)cb,
                            NULL);
}

static uint32_t first_cap(uint32_t max) {
        return max < USER_FIRST_ENTRIES ? max : USER_FIRST_ENTRIES;
}

/* Where the first body starts in the record's allocation. */
static size_t record_size(uint32_t id_len) {
        return (sizeof(feat_uuser_t) + (size_t)id_len + 1 + 7) & ~(size_t)7;
}

/* As held in the pool, rounded up to the slots' classes. */
size_t feat_user_bytes(const feat_uuser_t *u) {
        size_t rec = tern_pool_slot_bytes(
            u->pool,
            record_size(u->pub.user_len) +
                body_size(first_cap(u->max_window), first_cap(u->max_recent),
                          first_cap(u->max_aff), USER_FIRST_BYTES));
        if (u->body_inline)
                return rec;
        return rec + tern_pool_slot_bytes(
                         u->pool, body_size(u->cap_window, u->cap_recent,
                                            u->cap_aff, u->arena_cap));
}

/* One allocation: the record, its id, then the first body. */
feat_uuser_t *feat_user_new(const feat_conf_t *conf, tern_pool_t *pool,
                            int32_t partition, const char *user, uint32_t len) {
        uint32_t cw = first_cap(conf->window_items);
        uint32_t cr = first_cap(conf->recent_items);
        uint32_t ca = first_cap(conf->affinity_top_k + 1);
        size_t off = record_size(len);
        feat_uuser_t *u = tern_pool_calloc(
            pool, off + body_size(cw, cr, ca, USER_FIRST_BYTES));
        if (!u)
                return NULL;
        u->pool = pool;
        u->max_window = conf->window_items;
        u->max_recent = conf->recent_items;
        u->max_aff = conf->affinity_top_k + 1; /* insert, then evict */
        if (len)
                memcpy(u->user_id, user, len);
        u->pub.user_len = len;
        u->pub.partition = partition;
        u->body_inline = 1; /* nothing to free yet */
        user_rebuild(u, cw, cr, ca, USER_FIRST_BYTES, (char *)u + off);
        return u;
}

void feat_user_free(feat_uuser_t *u) {
        size_t first;
        if (!u)
                return;
        first = body_size(first_cap(u->max_window), first_cap(u->max_recent),
                          first_cap(u->max_aff), USER_FIRST_BYTES);
        if (!u->body_inline)
                tern_pool_free(u->pool, u->body,
                               body_size(u->cap_window, u->cap_recent,
                                         u->cap_aff, u->arena_cap));
        tern_pool_free(u->pool, u, record_size(u->pub.user_len) + first);
}

/* ---- codec ---- */

/* The encoders reserve the record's upper bound once and store every
 * field through a pointer: a tern_buf_put_* call per field, each
 * checking room, cost about half of the state build's user records. The
 * bytes are tern_buf's (varint, zigzag long, little-endian double,
 * length-prefixed string). The bound exceeds the record by under 30
 * bytes an entry; records stay far below the engine's 64 MiB buffers
 * (lists of at most 1024 entries, ids of at most FEAT_ID_MAX bytes: under
 * 9 MB), so a failed reserve means no memory, as a failed put did. */
#define VARINT_MAX 10

/* The most bytes put_items() stores. */
static size_t items_bound(const feat_item_ts_t *v, uint32_t n) {
        size_t b = VARINT_MAX + (size_t)n * (2 * VARINT_MAX + 1);
        for (uint32_t i = 0; i < n; i++)
                b += v[i].len;
        return b;
}

static uint8_t *put_items(uint8_t *o, const feat_item_ts_t *v, uint32_t n) {
        o = tern_buf_varint_at(o, n);
        for (uint32_t i = 0; i < n; i++) {
                o = tern_buf_str_at(o, v[i].item, v[i].len);
                o = tern_buf_long_at(o, v[i].ts_ms);
                *o++ = v[i].type;
        }
        return o;
}

static size_t profile_bound(const feat_uuser_t *u) {
        const feat_profile_t *p = &u->pub.profile;
        size_t b = 1 + VARINT_MAX * (TERN_EV__CNT + 6) + 2 * 8;
        b += (size_t)p->n_affinity * (2 * VARINT_MAX + 8);
        for (uint32_t i = 0; i < p->n_affinity; i++)
                b += u->aff[i].len;
        return b + items_bound(u->recent, p->n_recent);
}

int feat_profile_encode(const feat_uuser_t *u, tern_buf_t *out) {
        const feat_profile_t *p = &u->pub.profile;
        uint8_t *o;
        tern_buf_reset(out);
        if (tern_buf_reserve(out, profile_bound(u)))
                return -1; /* overflow set */
        o = out->data;
        *o++ = FEAT_REC_VERSION;
        for (int i = 0; i < TERN_EV__CNT; i++)
                o = tern_buf_varint_at(o, p->events[i]);
        o = tern_buf_double_at(o, p->spend);
        o = tern_buf_varint_at(o, p->units);
        o = tern_buf_long_at(o, p->first_ts_ms);
        o = tern_buf_long_at(o, p->last_ts_ms);
        o = tern_buf_double_at(o, p->gap_ewma_ms);
        o = tern_buf_varint_at(o, p->sessions);
        o = tern_buf_varint_at(o, p->n_affinity);
        for (uint32_t i = 0; i < p->n_affinity; i++) {
                o = tern_buf_str_at(o, u->aff[i].category, u->aff[i].len);
                o = tern_buf_double_at(o, u->aff[i].score);
                o = tern_buf_long_at(o, u->aff[i].ts_ms);
        }
        o = put_items(o, u->recent, p->n_recent);
        out->len = (size_t)(o - out->data);
        return 0;
}

int feat_window_encode(const feat_uuser_t *u, tern_buf_t *out) {
        uint8_t *o;
        tern_buf_reset(out);
        if (tern_buf_reserve(out,
                             1 + items_bound(u->window, u->pub.n_window))) {
                out->overflow = 1;
                return -1;
        }
        o = out->data;
        *o++ = FEAT_REC_VERSION;
        o = put_items(o, u->window, u->pub.n_window);
        out->len = (size_t)(o - out->data);
        return 0;
}

/* What the decoders return besides 0: a record that does not parse, or
 * no memory for what it holds (a different error for the caller). */
#define DECODE_BAD   (-1)
#define DECODE_NOMEM (-2)

/* Grows lists to exact sizes, leaving the arena's: decoding knows each
 * list's length before its first entry, so one rebuild sizes it. */
static int lists_reserve(feat_uuser_t *u, uint32_t cw, uint32_t cr,
                         uint32_t ca) {
        if (cw <= u->cap_window && cr <= u->cap_recent && ca <= u->cap_aff)
                return 0;
        return user_rebuild(u, cw > u->cap_window ? cw : u->cap_window,
                            cr > u->cap_recent ? cr : u->cap_recent,
                            ca > u->cap_aff ? ca : u->cap_aff, u->arena_cap,
                            NULL);
}

/* Reads a list of items, keeping the first max (a smaller configured
 * size than the one that wrote the record truncates, oldest last). The
 * caller reserved the arena bytes; the list is sized once, here. */
static int get_items(tern_rd_t *r, feat_uuser_t *u, int window) {
        uint64_t cnt = tern_rd_varint(r);
        uint32_t max = window ? u->max_window : u->max_recent;
        uint32_t *n = window ? &u->pub.n_window : &u->pub.profile.n_recent;
        uint32_t keep;
        if (cnt > FEAT_LIST_MAX)
                return DECODE_BAD;
        keep = cnt < max ? (uint32_t)cnt : max;
        if (lists_reserve(u, window ? keep : 0, window ? 0 : keep, 0))
                return DECODE_NOMEM;
        for (uint64_t i = 0; i < cnt && !r->err; i++) {
                uint32_t len;
                const char *s = tern_rd_str(r, FEAT_ID_MAX, &len);
                int64_t ts = tern_rd_long(r);
                uint8_t type = tern_rd_u8(r);
                feat_item_ts_t *v;
                if (r->err || type >= TERN_EV__CNT)
                        return DECODE_BAD;
                if (*n >= max)
                        continue;
                if (feat_user_room(u, window ? *n + 1 : 0, window ? 0 : *n + 1,
                                   0, len))
                        return DECODE_NOMEM;
                v = window ? &u->window[*n] : &u->recent[*n];
                v->item = feat_user_add_id(u, s, len);
                v->len = len;
                v->ts_ms = ts;
                v->type = type;
                (*n)++;
        }
        return r->err ? DECODE_BAD : 0;
}

static int get_affinities(tern_rd_t *r, feat_uuser_t *u) {
        feat_profile_t *p = &u->pub.profile;
        uint64_t cnt = tern_rd_varint(r);
        /* A full list keeps the slot an update inserts into before it
         * evicts (max_aff is top_k + 1), or the user's next new category
         * would rebuild its body. */
        uint32_t room = cnt + 1 >= u->max_aff ? u->max_aff : (uint32_t)cnt;
        if (cnt > FEAT_LIST_MAX)
                return DECODE_BAD;
        if (lists_reserve(u, 0, 0, room))
                return DECODE_NOMEM;
        for (uint64_t i = 0; i < cnt && !r->err; i++) {
                uint32_t len;
                const char *s = tern_rd_str(r, FEAT_ID_MAX, &len);
                double score = tern_rd_double(r);
                int64_t ts = tern_rd_long(r);
                feat_affinity_t *a;
                if (r->err)
                        return DECODE_BAD;
                if (p->n_affinity + 1 >= u->max_aff)
                        continue;
                if (feat_user_room(u, 0, 0, p->n_affinity + 1, len))
                        return DECODE_NOMEM;
                a = &u->aff[p->n_affinity++];
                a->category = feat_user_add_id(u, s, len);
                a->len = len;
                a->score = score;
                a->ts_ms = ts;
        }
        return 0;
}

static int profile_decode(feat_uuser_t *u, const uint8_t *b, size_t len) {
        feat_profile_t *p = &u->pub.profile;
        tern_rd_t r;
        int rc;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return DECODE_BAD;
        for (int i = 0; i < TERN_EV__CNT; i++)
                p->events[i] = tern_rd_varint(&r);
        p->spend = tern_rd_double(&r);
        p->units = tern_rd_varint(&r);
        p->first_ts_ms = tern_rd_long(&r);
        p->last_ts_ms = tern_rd_long(&r);
        p->gap_ewma_ms = tern_rd_double(&r);
        p->sessions = (uint32_t)tern_rd_varint(&r);
        if (r.err)
                return DECODE_BAD;
        if ((rc = get_affinities(&r, u)) || (rc = get_items(&r, u, 0)))
                return rc;
        return tern_rd_left(&r) ? DECODE_BAD : 0;
}

static int window_decode(feat_uuser_t *u, const uint8_t *b, size_t len) {
        tern_rd_t r;
        int rc;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return DECODE_BAD;
        if ((rc = get_items(&r, u, 1)))
                return rc;
        for (uint32_t i = 0; i < u->pub.n_window; i++) {
                u->win_iid[i] = FEAT_NONE;
                u->win_gen[i] = 0; /* gens start at 1: not cached */
        }
        return tern_rd_left(&r) ? DECODE_BAD : 0;
}

tern_code_t feat_user_decode(feat_uuser_t *u, const uint8_t *prof, size_t plen,
                             const uint8_t *win, size_t wlen, char *errstr,
                             size_t errstr_size) {
        const char *what = NULL;
        uint64_t bytes = (prof ? plen : 0) + (win ? wlen : 0);
        int rc = 0;
        /* The records' sizes bound the id bytes they hold, so the arena
         * takes just that. It took twice that, and lists grew by doubling,
         * so a user read back from RocksDB was ~1.5x one never evicted
         * (0004's full user: 5.8 KiB against 3.9): memory rose for as long as
         * more of the cached users were read-back ones (a soak's heap profile:
         * +13.5 MiB of bodies from 18 to 30 minutes, 15k users cached). */
        if (bytes > UINT32_MAX ||
            (bytes > u->arena_cap &&
             user_rebuild(u, u->cap_window, u->cap_recent, u->cap_aff,
                          (uint32_t)bytes, NULL)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory loading a user");
        if (prof && (rc = profile_decode(u, prof, plen)))
                what = feat_cf_names[FEAT_CF_PROFILE];
        else if (win && (rc = window_decode(u, win, wlen)))
                what = feat_cf_names[FEAT_CF_WINDOW];
        if (!what)
                return TERN_OK;
        if (rc == DECODE_NOMEM)
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_NOMEM,
                    "out of memory decoding the %s record of user \"%.*s\" "
                    "(partition %d)",
                    what, (int)(u->pub.user_len > 200 ? 200 : u->pub.user_len),
                    u->user_id, (int)u->pub.partition);
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "undecodable %s record for user \"%.*s\" "
                         "(partition %d)",
                         what,
                         (int)(u->pub.user_len > 200 ? 200 : u->pub.user_len),
                         u->user_id, (int)u->pub.partition);
}

/* ---- update ---- */

static double decay(double score, int64_t dt_ms, int64_t half_life_ms) {
        return score * exp2(-(double)dt_ms / (double)half_life_ms);
}

/* Order of affinities: score decayed to ref desc, then category bytes. */
static int aff_before(const feat_affinity_t *a, const feat_affinity_t *b,
                      int64_t ref, int64_t hl) {
        double sa = decay(a->score, ref - a->ts_ms, hl);
        double sb = decay(b->score, ref - b->ts_ms, hl);
        if (sa != sb)
                return sa > sb;
        return feat_id_cmp(a->category, a->len, b->category, b->len) < 0;
}

static void aff_sort(feat_uuser_t *u, int64_t hl) {
        uint32_t n = u->pub.profile.n_affinity;
        int64_t ref = INT64_MIN;
        for (uint32_t i = 0; i < n; i++)
                if (u->aff[i].ts_ms > ref)
                        ref = u->aff[i].ts_ms;
        for (uint32_t i = 1; i < n; i++) {
                feat_affinity_t x = u->aff[i];
                uint32_t j = i;
                for (; j > 0 && aff_before(&x, &u->aff[j - 1], ref, hl); j--)
                        u->aff[j] = u->aff[j - 1];
                u->aff[j] = x;
        }
}

/* Adds w to a category's affinity, both decayed to the later of the two
 * times (an out-of-order event adds its weight already decayed). */
static int aff_add(feat_uuser_t *u, const feat_conf_t *conf, tern_str_t cat,
                   int64_t w, int64_t t) {
        feat_profile_t *p = &u->pub.profile;
        int64_t hl = conf->affinity_half_life_seconds * 1000;
        feat_affinity_t *a = NULL;
        if (conf->affinity_top_k == 0)
                return 0;
        for (uint32_t i = 0; i < p->n_affinity && !a; i++)
                if (u->aff[i].len == cat.len &&
                    !memcmp(u->aff[i].category, cat.ptr, cat.len))
                        a = &u->aff[i];
        if (a && t >= a->ts_ms) {
                a->score = decay(a->score, t - a->ts_ms, hl) + (double)w;
                a->ts_ms = t;
        } else if (a) {
                a->score += decay((double)w, a->ts_ms - t, hl);
        } else {
                if (feat_user_room(u, 0, 0, p->n_affinity + 1, cat.len))
                        return -1;
                a = &u->aff[p->n_affinity];
                a->category = feat_user_add_id(u, cat.ptr, cat.len);
                a->len = cat.len;
                a->score = (double)w;
                a->ts_ms = t;
                p->n_affinity++;
        }
        aff_sort(u, hl);
        if (p->n_affinity > conf->affinity_top_k)
                p->n_affinity--; /* its bytes stay in the arena */
        return 0;
}

/* Moves (or inserts) an item to the front of the recent list. A new
 * entry shares the bytes of window[0] when it names the same item (the
 * counted event that just moved it there). */
static int recent_touch(feat_uuser_t *u, tern_str_t item, int64_t t,
                        uint8_t type) {
        feat_profile_t *p = &u->pub.profile;
        uint32_t pos = p->n_recent;
        const char *s;
        if (u->max_recent == 0)
                return 0;
        for (uint32_t i = 0; i < p->n_recent; i++)
                if (u->recent[i].len == item.len &&
                    !memcmp(u->recent[i].item, item.ptr, item.len)) {
                        pos = i;
                        break;
                }
        if (pos < p->n_recent) {
                s = u->recent[pos].item;
        } else {
                int shared = u->pub.n_window && u->window[0].len == item.len &&
                             !memcmp(u->window[0].item, item.ptr, item.len);
                uint32_t n =
                    p->n_recent < u->max_recent ? p->n_recent + 1 : p->n_recent;
                if (feat_user_room(u, 0, n, 0, shared ? 0 : item.len))
                        return -1;
                s = shared ? u->window[0].item
                           : feat_user_add_id(u, item.ptr, item.len);
                if (p->n_recent == u->max_recent)
                        p->n_recent--; /* the oldest drops out */
                pos = p->n_recent++;
        }
        memmove(&u->recent[1], &u->recent[0], pos * sizeof(*u->recent));
        u->recent[0].item = s;
        u->recent[0].len = item.len;
        u->recent[0].ts_ms = t;
        u->recent[0].type = (uint8_t)type;
        return 0;
}

static void profile_times(feat_profile_t *p, const feat_conf_t *conf,
                          uint64_t total, int64_t t) {
        int64_t gap;
        if (total == 0) {
                p->first_ts_ms = p->last_ts_ms = t;
                p->sessions = 1;
                return;
        }
        /* An out-of-order event is a zero gap: it never opens a session. */
        gap = t > p->last_ts_ms ? t - p->last_ts_ms : 0;
        if (total == 1)
                p->gap_ewma_ms = (double)gap;
        else
                p->gap_ewma_ms = conf->gap_ewma_alpha * (double)gap +
                                 (1.0 - conf->gap_ewma_alpha) * p->gap_ewma_ms;
        if (gap > conf->session_gap_seconds * 1000)
                p->sessions++;
        if (t < p->first_ts_ms)
                p->first_ts_ms = t;
        if (t > p->last_ts_ms)
                p->last_ts_ms = t;
}

int feat_profile_update(feat_uuser_t *u, const feat_conf_t *conf,
                        const tern_event_t *ev) {
        feat_profile_t *p = &u->pub.profile;
        uint64_t total = 0;
        int64_t w = conf->type_weight[ev->type];
        for (int i = 0; i < TERN_EV__CNT; i++)
                total += p->events[i];
        profile_times(p, conf, total, ev->ts_ms);
        p->events[ev->type]++;
        if (ev->type == TERN_EV_PURCHASE) {
                int32_t q = ev->has_quantity ? ev->quantity : 1;
                if (q < 0)
                        q = 0;
                p->units += (uint64_t)q;
                if (ev->has_price && isfinite(ev->price))
                        p->spend += ev->price * (double)q;
        }
        if (ev->category_id.ptr && w > 0 &&
            aff_add(u, conf, ev->category_id, w, ev->ts_ms))
                return -1;
        if (ev->item_id.ptr &&
            recent_touch(u, ev->item_id, ev->ts_ms, (uint8_t)ev->type))
                return -1;
        return 0;
}
