/*
 * feat_window — the per-user window: the last window_items distinct items
 * of the user's counted events, most recent first (feat_engine.h has the
 * definition). Each entry caches its interned item id together with the
 * item slot's gen, so the fast path pairs a window without hashing its
 * strings again; an evicted item changes its slot's gen and the cache
 * misses once (feat_item_cached).
 */
#include "feat_int.h"

#include <stdlib.h>

int feat_window_find(const feat_uuser_t *u, const feat_cooc_t *c, uint32_t iid,
                     const char *item, uint32_t len) {
        for (uint32_t i = 0; i < u->pub.n_window; i++) {
                if (feat_item_cached(c, u->win_iid[i], u->win_gen[i])) {
                        if (u->win_iid[i] == iid)
                                return (int)i;
                        continue;
                }
                if (u->window[i].len == len &&
                    !memcmp(u->window[i].item, item, len))
                        return (int)i;
        }
        return -1;
}

/* Entries [0, pos) move down one slot. */
static void window_shift(feat_uuser_t *u, uint32_t pos) {
        memmove(&u->window[1], &u->window[0], pos * sizeof(*u->window));
        memmove(&u->win_iid[1], &u->win_iid[0], pos * sizeof(*u->win_iid));
        memmove(&u->win_gen[1], &u->win_gen[0], pos * sizeof(*u->win_gen));
}

int feat_window_touch(feat_uuser_t *u, const feat_conf_t *conf, int pos,
                      uint32_t gen, uint32_t iid, const char *item,
                      uint32_t len, int64_t ts, uint8_t type) {
        const char *s;
        (void)conf;
        if (u->max_window == 0)
                return 0;
        if (pos >= 0) {
                s = u->window[pos].item;
        } else {
                uint32_t n = u->pub.n_window;
                if (feat_user_room(u, n < u->max_window ? n + 1 : n, 0, 0, len))
                        return -1;
                s = feat_user_add_id(u, item, len);
                if (u->pub.n_window == u->max_window)
                        u->pub.n_window--; /* the oldest drops out */
                pos = (int)u->pub.n_window++;
        }
        window_shift(u, (uint32_t)pos);
        u->window[0].item = s;
        u->window[0].len = len;
        u->window[0].ts_ms = ts;
        u->window[0].type = type;
        u->win_iid[0] = iid;
        u->win_gen[0] = gen;
        return 0;
}
