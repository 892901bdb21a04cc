/*
 * feat_engine — applies events to the mirrored state and commits it: the
 * user mirror (profile + window, loaded on first touch, one Put per dirty
 * user per CF at commit) and the event path that drives feat_cooc.
 *
 * An event first loads everything it will touch (user, item, the window
 * items it pairs with) and reserves table room; only then does it change
 * anything, so a failed load leaves the engine exactly as it was.
 */
#include "feat_int.h"

#include <math.h>
#include <stdlib.h>

#define USERS_MIN ((size_t)1 << 12)

void feat_conf_default(feat_conf_t *c) {
        memset(c, 0, sizeof(*c));
        c->window_items = 20;
        c->window_seconds = 3600;
        for (int i = 0; i < TERN_EV__CNT; i++)
                c->type_weight[i] = 1;
        c->type_weight[TERN_EV_IMPRESSION] = 0;
        c->session_gap_seconds = 1800;
        c->gap_ewma_alpha = 0.2;
        c->affinity_half_life_seconds = 7 * 24 * 3600;
        c->affinity_top_k = 10;
        c->recent_items = 50;
        c->top_neighbors = 32;
        c->trending_size = 100;
        c->max_cached_users = 200000;
        c->max_cached_user_bytes = (uint64_t)512 << 20;
        c->max_cached_pairs = 20000000;
        c->max_cached_items = 1000000;
        c->pair_filter_bytes = (uint64_t)16 << 20;
}

static tern_code_t conf_check(const feat_conf_t *c, char *errstr,
                              size_t errstr_size) {
        const int64_t ten_years = 10LL * 366 * 24 * 3600;
        const char *bad = NULL;
        for (int i = 0; i < TERN_EV__CNT; i++)
                if (c->type_weight[i] < 0 || c->type_weight[i] > 1000000)
                        bad = "type weights must be within 0..1000000";
        if (c->window_items < 1 || c->window_items > 1024)
                bad = "window_items must be within 1..1024";
        else if (c->window_seconds < 0 || c->window_seconds > ten_years)
                bad = "window_seconds must be within 0..10 years";
        else if (c->session_gap_seconds < 0 ||
                 c->session_gap_seconds > ten_years)
                bad = "session_gap_seconds must be within 0..10 years";
        else if (!(c->gap_ewma_alpha > 0.0 && c->gap_ewma_alpha <= 1.0))
                bad = "gap_ewma_alpha must be within (0, 1]";
        else if (c->affinity_half_life_seconds < 1 ||
                 c->affinity_half_life_seconds > ten_years)
                bad = "affinity_half_life_seconds must be within 1s..10 years";
        else if (c->affinity_top_k > 1024 || c->recent_items > 1024)
                bad = "affinity_top_k and recent_items must be at most 1024";
        else if (c->top_neighbors > 4096 || c->trending_size > 100000)
                bad = "top_neighbors <= 4096 and trending_size <= 100000";
        if (!bad)
                return TERN_OK;
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG, "features: %s",
                         bad);
}

/* ---- user mirror ---- */

static uint32_t user_hash(int32_t partition, const char *s, uint32_t len) {
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)partition;
        for (uint32_t i = 0; i < len; i++) {
                h ^= (uint8_t)s[i];
                h *= 1099511628211ULL;
        }
        return (uint32_t)(h ^ (h >> 32));
}

static feat_uslot_t *user_slot(feat_users_t *us, uint32_t h, int32_t partition,
                               const char *s, uint32_t len) {
        for (size_t i = h & us->mask;; i = (i + 1) & us->mask) {
                feat_uslot_t *sl = &us->slots[i];
                const feat_uuser_t *u = sl->u;
                if (!u ||
                    (sl->hash == h && u->pub.partition == partition &&
                     u->pub.user_len == len && !memcmp(u->user_id, s, len)))
                        return sl;
        }
}

static int users_resize(feat_users_t *us, size_t cap) {
        feat_uslot_t *old = us->slots;
        size_t old_cap = old ? us->mask + 1 : 0;
        if (!(us->slots = calloc(cap, sizeof(*us->slots)))) {
                us->slots = old;
                return -1;
        }
        us->mask = cap - 1;
        for (size_t i = 0; i < old_cap; i++) {
                size_t j;
                if (!old[i].u)
                        continue;
                for (j = old[i].hash & us->mask; us->slots[j].u;
                     j = (j + 1) & us->mask)
                        ;
                us->slots[j] = old[i];
        }
        free(old);
        return 0;
}

static void users_free(feat_users_t *us) {
        for (size_t i = 0; us->slots && i <= us->mask; i++)
                feat_user_free(us->slots[i].u);
        free(us->slots);
        us->slots = NULL;
        us->n = 0;
        us->bytes = 0;
        us->n_dirty = 0;
}

static int users_init(feat_users_t *us) {
        us->mask = 0;
        return users_resize(us, USERS_MIN);
}

/* Reads both records of a user; an absent user starts empty. */
static tern_code_t user_load(feat_engine_t *eng, feat_uuser_t *u, char *errstr,
                             size_t errstr_size) {
        int pfound, wfound;
        tern_code_t code;
        feat_key_user(&eng->key, u->pub.partition, u->user_id, u->pub.user_len);
        code = feat_store_get(eng->st, FEAT_CF_PROFILE, eng->key.data,
                              eng->key.len, &eng->val, &pfound, errstr,
                              errstr_size);
        if (!code)
                code = feat_store_get(eng->st, FEAT_CF_WINDOW, eng->key.data,
                                      eng->key.len, &eng->val2, &wfound, errstr,
                                      errstr_size);
        if (code)
                return code;
        return feat_user_decode(u, pfound ? eng->val.data : NULL, eng->val.len,
                                wfound ? eng->val2.data : NULL, eng->val2.len,
                                errstr, errstr_size);
}

static tern_code_t user_get(feat_engine_t *eng, int32_t partition,
                            tern_str_t id, feat_uuser_t **out, char *errstr,
                            size_t errstr_size) {
        feat_users_t *us = &eng->users;
        uint32_t h = user_hash(partition, id.ptr, id.len);
        feat_uslot_t *slot = user_slot(us, h, partition, id.ptr, id.len);
        feat_uuser_t *u;
        tern_code_t code;
        if ((*out = slot->u)) {
                slot->stamp = eng->tick;
                return TERN_OK;
        }
        if ((us->n + 1) * 4 > (us->mask + 1) * 3) {
                if (users_resize(us, (us->mask + 1) * 2))
                        goto nomem;
                slot = user_slot(us, h, partition, id.ptr, id.len);
        }
        if (!(u = feat_user_new(&eng->conf, us->pool, partition, id.ptr,
                                id.len)))
                goto nomem;
        if ((code = user_load(eng, u, errstr, errstr_size))) {
                feat_user_free(u);
                return code;
        }
        slot->u = *out = u;
        slot->hash = h;
        slot->stamp = eng->tick;
        us->n++;
        us->bytes += feat_user_bytes(u);
        return TERN_OK;
nomem:
        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                         "out of memory loading a user");
}

static int user_mark_dirty(feat_users_t *us, feat_uuser_t *u) {
        if (u->dirty)
                return 0;
        if (us->n_dirty == us->cap_dirty) {
                size_t nc = us->cap_dirty ? us->cap_dirty * 2 : 1024;
                feat_uuser_t **g = realloc(us->dirty, nc * sizeof(*g));
                if (!g)
                        return -1;
                us->dirty = g;
                us->cap_dirty = nc;
        }
        us->dirty[us->n_dirty++] = u;
        u->dirty = 1;
        return 0;
}

/* ---- new / destroy ---- */

static tern_code_t engine_alloc(feat_engine_t *eng, char *errstr,
                                size_t errstr_size) {
        uint32_t nb = eng->conf.top_neighbors;
        eng->cap_nb_out =
            nb > eng->conf.trending_size ? nb : eng->conf.trending_size;
        eng->nb_out =
            calloc(2 * (size_t)eng->cap_nb_out + 2, sizeof(*eng->nb_out));
        eng->tmp_ids =
            calloc(eng->conf.window_items + 1, sizeof(*eng->tmp_ids));
        eng->tmp_slots =
            calloc(eng->conf.window_items + 1, sizeof(*eng->tmp_slots));
        eng->batch = feat_batch_new();
        eng->landing = feat_batch_new();
        tern_buf_init(&eng->key, 2 * FEAT_ID_MAX + 16);
        tern_buf_init(&eng->val, (size_t)64 << 20);
        tern_buf_init(&eng->val2, (size_t)64 << 20);
        eng->users.pool = tern_pool_new();
        if (!eng->nb_out || !eng->tmp_ids || !eng->tmp_slots || !eng->batch ||
            !eng->landing || !eng->users.pool || users_init(&eng->users))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        return feat_cooc_init(eng, errstr, errstr_size);
}

feat_engine_t *feat_engine_new(feat_store_t *st, const feat_conf_t *conf,
                               char *errstr, size_t errstr_size) {
        feat_engine_t *eng;
        if (!st || !conf) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "features: no store or configuration");
                return NULL;
        }
        if (conf_check(conf, errstr, errstr_size))
                return NULL;
        if (!(eng = calloc(1, sizeof(*eng)))) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        eng->st = st;
        eng->conf = *conf;
        if (engine_alloc(eng, errstr, errstr_size)) {
                feat_engine_destroy(eng);
                return NULL;
        }
        return eng;
}

void feat_engine_destroy(feat_engine_t *eng) {
        if (!eng)
                return;
        feat_cooc_destroy(eng);
        users_free(&eng->users);
        tern_pool_destroy(eng->users.pool);
        free(eng->users.dirty);
        feat_store_write_end(eng->st, NULL, 0); /* before the batch goes */
        feat_batch_destroy(eng->batch);
        feat_batch_destroy(eng->landing);
        free(eng->nb_out);
        free(eng->tmp_ids);
        free(eng->tmp_slots);
        tern_buf_free(&eng->key);
        tern_buf_free(&eng->val);
        tern_buf_free(&eng->val2);
        free(eng->lru);
        free(eng);
}

/* ---- apply ---- */

/* t - ts <= T ms, without overflow for any pair of times. */
static int in_window(int64_t t, int64_t ts, int64_t t_ms) {
        int64_t d;
        if (__builtin_sub_overflow(t, ts, &d))
                return t < ts;
        return d <= t_ms;
}

/* Resolves and loads the window items the event pairs with into tmp_ids;
 * loads the event's item. Nothing is changed yet. */
static tern_code_t counted_prepare(feat_engine_t *eng, feat_uuser_t *u,
                                   const tern_event_t *ev, uint32_t *iid,
                                   uint32_t *n_ids, char *errstr,
                                   size_t errstr_size) {
        uint32_t n = 0;
        int64_t t_ms = eng->conf.window_seconds * 1000;
        tern_code_t code;
        *iid = feat_item_intern(eng, ev->item_id.ptr, ev->item_id.len);
        if (*iid == FEAT_NONE)
                goto nomem;
        if ((code = feat_item_load_n(eng, *iid, errstr, errstr_size)) ||
            (code = feat_item_load_top(eng, *iid, errstr, errstr_size)))
                return code;
        for (uint32_t k = 0; k < u->pub.n_window; k++) {
                const feat_item_ts_t *e = &u->window[k];
                uint32_t jid;
                if (!in_window(ev->ts_ms, e->ts_ms, t_ms))
                        continue;
                if (!feat_item_cached(&eng->cooc, u->win_iid[k],
                                      u->win_gen[k])) {
                        jid = feat_item_intern(eng, e->item, e->len);
                        if (jid == FEAT_NONE)
                                goto nomem;
                        u->win_iid[k] = jid;
                        u->win_gen[k] = eng->cooc.items[jid].gen;
                }
                if ((jid = u->win_iid[k]) == *iid)
                        continue;
                if ((code = feat_item_load_top(eng, jid, errstr, errstr_size)))
                        return code;
                eng->tmp_ids[n++] = jid;
        }
        *n_ids = n;
        if (feat_cooc_reserve(eng, n))
                goto nomem;
        for (uint32_t k = 0; k < n; k++)
                if ((code = feat_cooc_resolve(eng, *iid, eng->tmp_ids[k],
                                              eng->conf.type_weight[ev->type],
                                              &eng->tmp_slots[k], errstr,
                                              errstr_size)))
                        return code;
        return TERN_OK;
nomem:
        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                         "out of memory applying an event");
}

static tern_code_t apply_counted(feat_engine_t *eng, feat_uuser_t *u,
                                 const tern_event_t *ev, char *errstr,
                                 size_t errstr_size) {
        int64_t w = eng->conf.type_weight[ev->type];
        uint32_t iid = 0, n = 0;
        tern_code_t code;
        int pos;
        code = counted_prepare(eng, u, ev, &iid, &n, errstr, errstr_size);
        if (code)
                return code;
        pos = feat_window_find(u, &eng->cooc, iid, ev->item_id.ptr,
                               ev->item_id.len);
        if (feat_window_touch(u, &eng->conf, pos, eng->cooc.items[iid].gen, iid,
                              ev->item_id.ptr, ev->item_id.len, ev->ts_ms,
                              (uint8_t)ev->type))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory applying an event");
        for (uint32_t k = 0; k < n; k++)
                feat_cooc_add(eng, eng->tmp_slots[k], w);
        feat_item_add_n(eng, iid, w);
        eng->stats.counted++;
        return TERN_OK;
}

static tern_code_t event_check(const tern_event_t *ev, int32_t *partition,
                               char *errstr, size_t errstr_size) {
        *partition = ev->src_partition < 0 ? 0 : ev->src_partition;
        if (!ev->user_id.ptr || ev->user_id.len > FEAT_ID_MAX)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "features: event without a usable user_id");
        if ((unsigned)ev->type >= TERN_EV__CNT)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "features: unknown event type %d",
                                 (int)ev->type);
        if (*partition > 0xffff)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "features: partition %d out of range",
                                 (int)*partition);
        if ((ev->item_id.ptr && ev->item_id.len > FEAT_ID_MAX) ||
            (ev->category_id.ptr && ev->category_id.len > FEAT_ID_MAX))
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "features: item or category id too long");
        return TERN_OK;
}

tern_code_t feat_engine_apply(feat_engine_t *eng, const tern_event_t *ev,
                              int *counted, const feat_user_t **user,
                              char *errstr, size_t errstr_size) {
        feat_uuser_t *u;
        int32_t partition;
        int is_counted;
        uint64_t bytes_before;
        tern_code_t code;
        if (counted)
                *counted = 0;
        eng->tick++;
        if ((code = event_check(ev, &partition, errstr, errstr_size)) ||
            (code = user_get(eng, partition, ev->user_id, &u, errstr,
                             errstr_size)))
                return code;
        bytes_before = feat_user_bytes(u);
        if (user_mark_dirty(&eng->users, u)) {
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
                goto out;
        }
        is_counted = ev->item_id.ptr && eng->conf.type_weight[ev->type] > 0;
        if (is_counted &&
            (code = apply_counted(eng, u, ev, errstr, errstr_size)))
                goto out;
        if (feat_profile_update(u, &eng->conf, ev)) {
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory updating a profile");
                goto out;
        }
        eng->stats.events++;
        if (counted)
                *counted = is_counted;
        if (user)
                *user = &u->pub;
out: /* a failed update may have grown the user too */
        eng->users.bytes += feat_user_bytes(u) - bytes_before;
        return code;
}

/* ---- reads ---- */

/* The input partitions named in the offsets CF (where user state can be). */
static uint32_t stored_partitions(feat_store_t *st, int32_t *out,
                                  uint32_t max) {
        feat_iter_t *it = feat_iter_new(st, FEAT_CF_OFFSETS, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        uint32_t n = 0;
        while (it && n < max && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                tern_rd_t rd;
                if (klen < 5)
                        continue;
                tern_rd_init(&rd, k + klen - 4, 4);
                out[n++] = (int32_t)tern_rd_u32be(&rd);
        }
        feat_iter_destroy(it);
        if (n == 0)
                out[n++] = 0;
        return n;
}

tern_code_t feat_engine_user(feat_engine_t *eng, const char *user, uint32_t len,
                             int32_t partition, const feat_user_t **out,
                             char *errstr, size_t errstr_size) {
        int32_t parts[1024];
        uint32_t n =
            partition >= 0 ? 1 : stored_partitions(eng->st, parts, 1024);
        tern_str_t id = {user, len};
        if (partition >= 0)
                parts[0] = partition;
        for (uint32_t i = 0; i < n; i++) {
                feat_uuser_t *u;
                int found = 0;
                tern_code_t code;
                feat_key_user(&eng->key, parts[i], user, len);
                code = feat_store_get(eng->st, FEAT_CF_PROFILE, eng->key.data,
                                      eng->key.len, &eng->val, &found, errstr,
                                      errstr_size);
                if (code)
                        return code;
                if (!found)
                        continue;
                if ((code =
                         user_get(eng, parts[i], id, &u, errstr, errstr_size)))
                        return code;
                *out = &u->pub;
                return TERN_OK;
        }
        return tern_errf(errstr, errstr_size, TERN_ERR_NOT_FOUND,
                         "user %.*s not in the state", (int)len, user);
}

int64_t feat_engine_item_n(feat_engine_t *eng, const char *item, uint32_t len,
                           char *errstr, size_t errstr_size) {
        uint32_t id = feat_item_intern(eng, item, len);
        if (id == FEAT_NONE) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return -1;
        }
        if (feat_item_load_n(eng, id, errstr, errstr_size))
                return -1;
        return eng->cooc.items[id].n;
}

static double similarity(int64_t c, int64_t ni, int64_t nj) {
        if (ni <= 0 || nj <= 0)
                return 0.0;
        return (double)c / sqrt((double)ni * (double)nj);
}

tern_code_t feat_engine_top_neighbors(feat_engine_t *eng, const char *item,
                                      uint32_t len, const feat_neighbor_t **out,
                                      uint32_t *n_out, char *errstr,
                                      size_t errstr_size) {
        uint32_t id = feat_item_intern(eng, item, len);
        const feat_item_t *it;
        tern_code_t code;
        *n_out = 0;
        *out = eng->nb_out;
        if (id == FEAT_NONE)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if ((code = feat_item_load_n(eng, id, errstr, errstr_size)) ||
            (code = feat_item_load_top(eng, id, errstr, errstr_size)))
                return code;
        it = &eng->cooc.items[id];
        /* Loading n(j) leaves the item table where it is. Most neighbours
         * are loaded already: test that here, not in a call each. */
        for (uint32_t i = 0; i < it->n_top; i++) {
                uint32_t j = it->top[i].id;
                if (!eng->cooc.items[j].n_loaded &&
                    (code = feat_item_load_n(eng, j, errstr, errstr_size)))
                        return code;
        }
        for (uint32_t i = 0; i < it->n_top; i++) {
                const feat_item_t *j = &eng->cooc.items[it->top[i].id];
                feat_neighbor_t *o = &eng->nb_out[i];
                o->item = j->id;
                o->len = j->len;
                o->hash = j->hash;
                o->c = it->top[i].c;
                o->n = j->n;
                o->score = similarity(o->c, it->n, j->n);
        }
        *n_out = it->n_top;
        return TERN_OK;
}

void feat_engine_trending(feat_engine_t *eng, const feat_neighbor_t **out,
                          uint32_t *n_out) {
        feat_neighbor_t *o = eng->nb_out + eng->cap_nb_out + 1;
        for (uint32_t i = 0; i < eng->cooc.n_trend; i++) {
                const feat_item_t *it = &eng->cooc.items[eng->cooc.trend[i].id];
                o[i].item = it->id;
                o[i].len = it->len;
                o[i].hash = it->hash;
                o[i].c = o[i].n = it->n;
                o[i].score = (double)it->n;
        }
        *out = o;
        *n_out = eng->cooc.n_trend;
}

/* ---- user eviction ----
 *
 * Past max_cached_users or max_cached_user_bytes after a commit (every
 * user clean, in the store), the least recently used users go until the
 * rest are within 90% of each bound: the k-th oldest age is the limit,
 * every user older than it goes and as many of those exactly at it as
 * make k. For the byte bound every user at the limit goes: which of a tie
 * go is slot order, not the order their bytes were counted in. Without
 * memory for the order, users go in slot order. The slot array keeps its
 * size (RSS stays flat); a deletion shifts the rest of its probe run
 * back, as in feat_cooc.c. */

/* Empties slot i (backward shift). */
static void user_delete(feat_users_t *us, size_t i) {
        size_t m = us->mask;
        for (size_t j = (i + 1) & m; us->slots[j].u; j = (j + 1) & m) {
                size_t home = us->slots[j].hash & m;
                if (((j - home) & m) >= ((j - i) & m)) {
                        us->slots[i] = us->slots[j];
                        i = j;
                }
        }
        us->slots[i].u = NULL;
        us->n--;
}

/* How many of the least recently used users (eng->lru, sorted, n keys
 * whose payloads are slots) must go to bring their bytes down to keep. */
static size_t users_to_shed_bytes(const feat_engine_t *eng, size_t n,
                                  uint64_t keep) {
        const feat_users_t *us = &eng->users;
        uint64_t bytes = us->bytes;
        size_t k = 0;
        for (; k < n && bytes > keep; k++)
                bytes -= feat_user_bytes(us->slots[(uint32_t)eng->lru[k]].u);
        return k;
}

/* How many users go, *k: at least the count bound's and as many as the
 * byte bound needs; the age of the k-th least recently used (*limit) and
 * how many at exactly that age go (*at_limit). -1: no memory for the
 * order (*limit 0, *at_limit *k: any users go). */
static int users_age_limit(feat_engine_t *eng, size_t *k, uint32_t *limit,
                           size_t *at_limit) {
        feat_users_t *us = &eng->users;
        uint64_t max_bytes = eng->conf.max_cached_user_bytes;
        size_t n = 0, first, by_bytes;
        *limit = 0;
        *at_limit = *k;
        if (feat_lru_room(eng, us->n) || us->mask > UINT32_MAX)
                return -1;
        for (size_t i = 0; i <= us->mask; i++)
                if (us->slots[i].u)
                        eng->lru[n++] = feat_lru_key(
                            eng->tick, us->slots[i].stamp, (uint32_t)i);
        feat_lru_sort(eng, n);
        if (max_bytes && us->bytes > max_bytes) {
                by_bytes =
                    users_to_shed_bytes(eng, n, max_bytes - max_bytes / 10);
                while (by_bytes > *k && by_bytes < n &&
                       feat_lru_age(eng->lru[by_bytes]) ==
                           feat_lru_age(eng->lru[by_bytes - 1]))
                        by_bytes++; /* the whole tie */
                if (by_bytes > *k)
                        *k = by_bytes;
        }
        if (*k == 0)
                return 0;
        *limit = feat_lru_age(eng->lru[*k - 1]);
        for (first = *k - 1;
             first > 0 && feat_lru_age(eng->lru[first - 1]) == *limit; first--)
                ;
        *at_limit = *k - first;
        return 0;
}

static int users_over_bound(const feat_engine_t *eng) {
        const feat_conf_t *c = &eng->conf;
        return eng->users.n > c->max_cached_users ||
               (c->max_cached_user_bytes &&
                eng->users.bytes > c->max_cached_user_bytes);
}

static void users_evict(feat_engine_t *eng) {
        feat_users_t *us = &eng->users;
        uint64_t bound = eng->conf.max_cached_users;
        uint64_t max_bytes = eng->conf.max_cached_user_bytes;
        /* in slot order (no memory for the order), until bytes are down */
        uint64_t keep = max_bytes ? max_bytes - max_bytes / 10 : UINT64_MAX;
        size_t k = 0, at_limit;
        uint32_t limit;
        if (!users_over_bound(eng))
                return;
        if (us->n > bound)
                k = us->n - (size_t)(bound - bound / 10);
        if (users_age_limit(eng, &k, &limit, &at_limit) == 0)
                keep = UINT64_MAX; /* k counts the byte bound's users */
        for (size_t i = 0; i <= us->mask && (k || us->bytes > keep); i++)
                while (us->slots[i].u && (k || us->bytes > keep)) {
                        uint32_t age = eng->tick - us->slots[i].stamp;
                        if (age < limit || (age == limit && !at_limit))
                                break;
                        at_limit -= age == limit;
                        us->bytes -= feat_user_bytes(us->slots[i].u);
                        feat_user_free(us->slots[i].u);
                        user_delete(us, i);
                        eng->stats.users_evicted++;
                        k -= k > 0;
                }
}

/* ---- commit ---- */

static tern_code_t flush_users(feat_engine_t *eng, char *errstr,
                               size_t errstr_size) {
        feat_users_t *us = &eng->users;
        for (size_t i = 0; i < us->n_dirty; i++) {
                feat_uuser_t *u = us->dirty[i];
                feat_key_user(&eng->key, u->pub.partition, u->user_id,
                              u->pub.user_len);
                if (feat_profile_encode(u, &eng->val) ||
                    feat_window_encode(u, &eng->val2))
                        return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                         "user record too large");
                feat_batch_put(eng->batch, eng->st, FEAT_CF_PROFILE,
                               eng->key.data, eng->key.len, eng->val.data,
                               eng->val.len);
                feat_batch_put(eng->batch, eng->st, FEAT_CF_WINDOW,
                               eng->key.data, eng->key.len, eng->val2.data,
                               eng->val2.len);
                u->dirty = 0;
                eng->stats.users_written++;
        }
        us->n_dirty = 0;
        return TERN_OK;
}

/* After a failed commit the mirrors hold changes the store does not:
 * forget them all, so the engine matches the last committed state. */
static void engine_reset(feat_engine_t *eng) {
        users_free(&eng->users);
        if (users_init(&eng->users) == 0)
                feat_cooc_reset(eng, NULL, 0);
}

int feat_engine_add_writer(feat_engine_t *eng, const feat_writer_t *w) {
        if (eng->n_writers >= FEAT_MAX_WRITERS)
                return -1;
        eng->writers[eng->n_writers++] = *w;
        return 0;
}

static void writers_done(feat_engine_t *eng, int written) {
        for (uint32_t i = 0; i < eng->n_writers; i++)
                if (eng->writers[i].done)
                        eng->writers[i].done(eng->writers[i].opaque, written);
}

/* Everything changed since the last commit, plus offsets, into
 * eng->batch. */
static tern_code_t build_batch(feat_engine_t *eng, const feat_offset_t *offsets,
                               uint32_t n_offsets, char *errstr,
                               size_t errstr_size) {
        tern_code_t code;
        feat_batch_clear(eng->batch);
        if ((code = flush_users(eng, errstr, errstr_size)) ||
            (code = feat_cooc_flush(eng, eng->batch, errstr, errstr_size)))
                return code;
        for (uint32_t i = 0; i < eng->n_writers; i++)
                if ((code = eng->writers[i].write(eng->writers[i].opaque,
                                                  eng->st, eng->batch, errstr,
                                                  errstr_size)))
                        return code;
        for (uint32_t i = 0; i < n_offsets; i++)
                feat_batch_offset_put(eng->batch, eng->st, offsets[i].topic,
                                      offsets[i].partition,
                                      offsets[i].next_offset);
        return TERN_OK;
}

/* A batch that could not be built or written: the mirrors hold changes
 * the store does not, so the engine goes back to the store. */
static tern_code_t commit_failed(feat_engine_t *eng, tern_code_t code) {
        feat_batch_clear(eng->batch);
        writers_done(eng, 0);
        engine_reset(eng);
        return code;
}

tern_code_t feat_engine_commit(feat_engine_t *eng, const feat_offset_t *offsets,
                               uint32_t n_offsets, char *errstr,
                               size_t errstr_size) {
        tern_code_t code;
        if ((code = feat_engine_commit_end(eng, errstr, errstr_size)) ||
            (code =
                 build_batch(eng, offsets, n_offsets, errstr, errstr_size)) ||
            (code = feat_store_write(eng->st, eng->batch, errstr, errstr_size)))
                return commit_failed(eng, code);
        feat_batch_clear(eng->batch);
        writers_done(eng, 1);
        eng->stats.commits++;
        feat_cooc_committed(eng);
        users_evict(eng);
        return TERN_OK;
}

/* A cache past its bound evicts after the commit, which needs every entry
 * clean and in the store: that commit is written in place. */
static int over_bounds(feat_engine_t *eng) {
        if (users_over_bound(eng) || feat_cooc_over_bound(eng))
                return 1;
        for (uint32_t i = 0; i < eng->n_writers; i++)
                if (eng->writers[i].over_bound &&
                    eng->writers[i].over_bound(eng->writers[i].opaque))
                        return 1;
        return 0;
}

/* Why the write may run while the next batch is applied: every key it
 * writes is still in a mirror (users, items and pairs, the writers' own)
 * until the write has landed, since only a commit written in place evicts,
 * so nothing reads such a key back from the store meanwhile. The writers
 * hear done(1) when the batch is built: the batch holds their bytes. */
tern_code_t feat_engine_commit_begin(feat_engine_t *eng,
                                     const feat_offset_t *offsets,
                                     uint32_t n_offsets, int *landed,
                                     char *errstr, size_t errstr_size) {
        feat_batch_t *built;
        tern_code_t code;
        *landed = 1;
        if ((code = feat_engine_commit_end(eng, errstr, errstr_size)))
                return code;
        if (over_bounds(eng))
                return feat_engine_commit(eng, offsets, n_offsets, errstr,
                                          errstr_size);
        if ((code =
                 build_batch(eng, offsets, n_offsets, errstr, errstr_size)) ||
            (code = feat_store_write_begin(eng->st, eng->batch, errstr,
                                           errstr_size)))
                return commit_failed(eng, code);
        writers_done(eng, 1);
        built = eng->batch;
        eng->batch = eng->landing;
        eng->landing = built;
        eng->in_flight = 1;
        *landed = 0;
        return TERN_OK;
}

tern_code_t feat_engine_commit_end(feat_engine_t *eng, char *errstr,
                                   size_t errstr_size) {
        tern_code_t code;
        if (!eng->in_flight)
                return TERN_OK;
        eng->in_flight = 0;
        code = feat_store_write_end(eng->st, errstr, errstr_size);
        feat_batch_clear(eng->landing);
        if (code) {
                engine_reset(eng);
                return code;
        }
        eng->stats.commits++;
        return TERN_OK;
}

void feat_engine_stats(const feat_engine_t *eng, feat_stats_t *out) {
        *out = eng->stats;
        out->cached_users = eng->users.n;
        out->cached_user_bytes = eng->users.bytes;
        out->cached_items = eng->cooc.n_items - eng->cooc.n_free;
        out->cached_pairs = eng->cooc.n_pairs;
        out->cached_top_lists = eng->cooc.n_top_loaded;
}
