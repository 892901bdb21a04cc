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

char *feat_strdup_n(const char *s, uint32_t len) {
        char *d = malloc((size_t)len + 1);
        if (!d)
                return NULL;
        if (len)
                memcpy(d, s, len);
        d[len] = '\0';
        return d;
}

void feat_user_sync_pub(feat_uuser_t *u) {
        u->pub.user_id = u->user_id;
        u->pub.window = u->window;
        u->pub.profile.affinity = u->aff;
        u->pub.profile.recent = u->recent;
}

feat_uuser_t *feat_user_new(const feat_conf_t *conf, int32_t partition,
                            const char *user, uint32_t len) {
        feat_uuser_t *u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->cap_window = conf->window_items;
        u->cap_recent = conf->recent_items;
        u->cap_aff = conf->affinity_top_k + 1; /* insert, then evict */
        u->user_id = feat_strdup_n(user, len);
        u->window = calloc(u->cap_window + 1, sizeof(*u->window));
        u->win_iid = calloc(u->cap_window + 1, sizeof(*u->win_iid));
        u->win_epoch = calloc(u->cap_window + 1, sizeof(*u->win_epoch));
        u->recent = calloc(u->cap_recent + 1, sizeof(*u->recent));
        u->aff = calloc(u->cap_aff, sizeof(*u->aff));
        if (!u->user_id || !u->window || !u->win_iid || !u->win_epoch ||
            !u->recent || !u->aff) {
                feat_user_free(u);
                return NULL;
        }
        u->pub.user_len = len;
        u->pub.partition = partition;
        feat_user_sync_pub(u);
        return u;
}

void feat_user_free(feat_uuser_t *u) {
        if (!u)
                return;
        for (uint32_t i = 0; i < u->pub.n_window; i++)
                free((char *)u->window[i].item);
        for (uint32_t i = 0; i < u->pub.profile.n_recent; i++)
                free((char *)u->recent[i].item);
        for (uint32_t i = 0; i < u->pub.profile.n_affinity; i++)
                free((char *)u->aff[i].category);
        free(u->window);
        free(u->win_iid);
        free(u->win_epoch);
        free(u->recent);
        free(u->aff);
        free(u->user_id);
        free(u);
}

/* ---- codec ---- */

static int put_items(tern_buf_t *out, const feat_item_ts_t *v, uint32_t n) {
        tern_buf_put_varint(out, n);
        for (uint32_t i = 0; i < n; i++) {
                tern_buf_put_str(out, v[i].item, v[i].len);
                tern_buf_put_long(out, v[i].ts_ms);
                tern_buf_put_u8(out, v[i].type);
        }
        return out->overflow ? -1 : 0;
}

int feat_profile_encode(const feat_uuser_t *u, tern_buf_t *out) {
        const feat_profile_t *p = &u->pub.profile;
        tern_buf_reset(out);
        tern_buf_put_u8(out, FEAT_REC_VERSION);
        for (int i = 0; i < TERN_EV__CNT; i++)
                tern_buf_put_varint(out, p->events[i]);
        tern_buf_put_double(out, p->spend);
        tern_buf_put_varint(out, p->units);
        tern_buf_put_long(out, p->first_ts_ms);
        tern_buf_put_long(out, p->last_ts_ms);
        tern_buf_put_double(out, p->gap_ewma_ms);
        tern_buf_put_varint(out, p->sessions);
        tern_buf_put_varint(out, p->n_affinity);
        for (uint32_t i = 0; i < p->n_affinity; i++) {
                tern_buf_put_str(out, u->aff[i].category, u->aff[i].len);
                tern_buf_put_double(out, u->aff[i].score);
                tern_buf_put_long(out, u->aff[i].ts_ms);
        }
        return put_items(out, u->recent, p->n_recent);
}

int feat_window_encode(const feat_uuser_t *u, tern_buf_t *out) {
        tern_buf_reset(out);
        tern_buf_put_u8(out, FEAT_REC_VERSION);
        return put_items(out, u->window, u->pub.n_window);
}

/* Reads a list of items, keeping the first cap (a smaller configured
 * size than the one that wrote the record truncates, oldest last). */
static int get_items(tern_rd_t *r, feat_item_ts_t *v, uint32_t *n,
                     uint32_t cap) {
        uint64_t cnt = tern_rd_varint(r);
        if (cnt > FEAT_LIST_MAX)
                return -1;
        for (uint64_t i = 0; i < cnt && !r->err; i++) {
                uint32_t len;
                const char *s = tern_rd_str(r, FEAT_ID_MAX, &len);
                int64_t ts = tern_rd_long(r);
                uint8_t type = tern_rd_u8(r);
                if (r->err || type >= TERN_EV__CNT)
                        return -1;
                if (*n >= cap)
                        continue;
                if (!(v[*n].item = feat_strdup_n(s, len)))
                        return -1;
                v[*n].len = len;
                v[*n].ts_ms = ts;
                v[*n].type = type;
                (*n)++;
        }
        return r->err ? -1 : 0;
}

static int get_affinities(tern_rd_t *r, feat_uuser_t *u) {
        feat_profile_t *p = &u->pub.profile;
        uint64_t cnt = tern_rd_varint(r);
        if (cnt > FEAT_LIST_MAX)
                return -1;
        for (uint64_t i = 0; i < cnt && !r->err; i++) {
                uint32_t len;
                const char *s = tern_rd_str(r, FEAT_ID_MAX, &len);
                double score = tern_rd_double(r);
                int64_t ts = tern_rd_long(r);
                if (r->err)
                        return -1;
                if (p->n_affinity + 1 >= u->cap_aff)
                        continue;
                if (!(u->aff[p->n_affinity].category = feat_strdup_n(s, len)))
                        return -1;
                u->aff[p->n_affinity].len = len;
                u->aff[p->n_affinity].score = score;
                u->aff[p->n_affinity].ts_ms = ts;
                p->n_affinity++;
        }
        return 0;
}

static int profile_decode(feat_uuser_t *u, const uint8_t *b, size_t len) {
        feat_profile_t *p = &u->pub.profile;
        tern_rd_t r;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return -1;
        for (int i = 0; i < TERN_EV__CNT; i++)
                p->events[i] = tern_rd_varint(&r);
        p->spend = tern_rd_double(&r);
        p->units = tern_rd_varint(&r);
        p->first_ts_ms = tern_rd_long(&r);
        p->last_ts_ms = tern_rd_long(&r);
        p->gap_ewma_ms = tern_rd_double(&r);
        p->sessions = (uint32_t)tern_rd_varint(&r);
        if (r.err || get_affinities(&r, u))
                return -1;
        if (get_items(&r, u->recent, &p->n_recent, u->cap_recent))
                return -1;
        return tern_rd_left(&r) ? -1 : 0;
}

static int window_decode(feat_uuser_t *u, const uint8_t *b, size_t len) {
        tern_rd_t r;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return -1;
        if (get_items(&r, u->window, &u->pub.n_window, u->cap_window))
                return -1;
        for (uint32_t i = 0; i < u->pub.n_window; i++)
                u->win_epoch[i] = 0; /* epochs start at 1: not cached */
        return tern_rd_left(&r) ? -1 : 0;
}

tern_code_t feat_user_decode(feat_uuser_t *u, const uint8_t *prof, size_t plen,
                             const uint8_t *win, size_t wlen, char *errstr,
                             size_t errstr_size) {
        const char *what = NULL;
        if (prof && profile_decode(u, prof, plen))
                what = feat_cf_names[FEAT_CF_PROFILE];
        else if (win && window_decode(u, win, wlen))
                what = feat_cf_names[FEAT_CF_WINDOW];
        if (!what)
                return TERN_OK;
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
                a = &u->aff[p->n_affinity];
                if (!(a->category = feat_strdup_n(cat.ptr, cat.len)))
                        return -1;
                a->len = cat.len;
                a->score = (double)w;
                a->ts_ms = t;
                p->n_affinity++;
        }
        aff_sort(u, hl);
        if (p->n_affinity > conf->affinity_top_k)
                free((char *)u->aff[--p->n_affinity].category);
        return 0;
}

/* Moves (or inserts) an item to the front of the recent list. */
static int recent_touch(feat_uuser_t *u, tern_str_t item, int64_t t,
                        uint8_t type) {
        feat_profile_t *p = &u->pub.profile;
        uint32_t pos = p->n_recent;
        const char *s;
        if (u->cap_recent == 0)
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
                if (!(s = feat_strdup_n(item.ptr, item.len)))
                        return -1;
                if (p->n_recent == u->cap_recent)
                        free((char *)u->recent[--p->n_recent].item);
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
