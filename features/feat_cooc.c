/*
 * feat_cooc — item co-occurrence: interned item ids, the pair-count table,
 * each item's exact top neighbours, the exact global trending list and the
 * pending merges of the current batch.
 *
 * The store holds one counter per pair (feat_store.h) and, per item, the
 * members of its exact top list (a "top record", rewritten at the commit
 * after its membership changed). An item leaving memory writes its record
 * with the counts ("counted"), so that loading it back is one read; its
 * first increment after that load rewrites the record without them, in
 * the same batch, since the counts would no longer be the store's.
 * Otherwise a load reads the members' counts, a point lookup each.
 * Neither grows with an item's number of partners.
 *
 * Memory is bounded by entries, not by items' degrees: a loaded item holds
 * its top list and a bound f, and the pair table holds entries for some
 * pairs, each with c(a,b) exactly ("known") or an upper bound of it. For a
 * loaded item a, every pair (a,x) with x outside top(a) is in an entry or
 * has c(a,x) <= f(a); f(a) == 0 says such pairs do not exist, so a missing
 * entry means 0. A load sets f to the last member's count when the list is
 * full (no other pair can beat it), else 0.
 *
 * Exactness: increments only touch items whose top is loaded, and counts
 * only grow. Before an increment, feat_cooc_resolve() gives the pair an
 * entry; when only a bound is known and that bound plus the increment
 * could enter either item's top list, it reads the count from the store,
 * unless the pair filter shows the pair was never incremented (count 0).
 * So an increment either knows its count, and moves both top lists
 * exactly as if every pair were in memory, or provably moves neither.
 * A count leaving memory raises f: an evicted entry's count (bound) and a
 * neighbour pushed out of a top list without an entry. The same argument
 * keeps trending exact, starting from the list stored with the last
 * commit.
 *
 * This file is the whole co-occurrence interface: feat_cooc_add() takes the
 * increments and feat_item_load_top()/the top lists serve the reads, so
 * either side can later be fed from a repartition topic instead.
 */
#include "feat_int.h"

#include <stdio.h>
#include <stdlib.h>

#define ISLOTS_MIN   1024u
#define PSLOTS_MIN   ((size_t)1 << 14)
#define TRENDING_KEY "trending"
/* meta record [u8 version][varint k]: this layout, and the smallest
 * top_neighbors any top record may have been written with */
#define LAYOUT_KEY     "cooc_layout"
#define LAYOUT_VERSION 2
/* top record: [u8 version][varint k][u8 counted][varint n] n x {Avro
 * string member, Avro long count if counted}, members in id order
 * (top_encode). Counted: the counts are the store's and the list is the
 * item's exact top list (written when the item leaves memory, and gone
 * with its first increment after a load); else the members are the exact
 * list's and their counts are read from the pair counters. */
#define TOP_VERSION 1

/* MurmurHash3's 64-bit finalizer: every input bit moves every output bit. */
static uint64_t mix64(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}

static size_t pair_hash(uint32_t a, uint32_t b) {
        return (size_t)mix64(((uint64_t)a << 32) | b);
}

static int push_u32(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x) {
        if (*n == *cap) {
                uint32_t nc = *cap ? *cap * 2 : 256;
                uint32_t *g = realloc(*v, nc * sizeof(**v));
                if (!g)
                        return -1;
                *v = g;
                *cap = nc;
        }
        (*v)[(*n)++] = x;
        return 0;
}

static int push_size(size_t **v, size_t *n, size_t *cap, size_t x) {
        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 1024;
                size_t *g = realloc(*v, nc * sizeof(**v));
                if (!g)
                        return -1;
                *v = g;
                *cap = nc;
        }
        (*v)[(*n)++] = x;
        return 0;
}

static tern_code_t bad_counter(feat_cf_t cf, const uint8_t *k, size_t klen,
                               char *errstr, size_t errstr_size);

/* ---- interning ----
 *
 * An item id indexes items[]; islots (open addressing, linear probing)
 * maps the string to it. An evicted item's slot goes to free_ids and is
 * handed out again, with its gen changed so that users' cached ids of the
 * old item miss (feat_item_cached); deleting from islots shifts the rest
 * of the probe run back, so probes stay as short as if the item had never
 * been there. */

static uint32_t items_live(const feat_cooc_t *c) {
        return c->n_items - c->n_free;
}

static int islots_resize(feat_cooc_t *c, uint32_t cap) {
        uint32_t *s = malloc((size_t)cap * sizeof(*s));
        if (!s)
                return -1;
        memset(s, 0xff, (size_t)cap * sizeof(*s));
        for (uint32_t id = 0; id < c->n_items; id++) {
                uint32_t i = c->items[id].hash & (cap - 1);
                if (!c->items[id].id)
                        continue;
                while (s[i] != FEAT_NONE)
                        i = (i + 1) & (cap - 1);
                s[i] = id;
        }
        free(c->islots);
        c->islots = s;
        c->imask = cap - 1;
        return 0;
}

uint32_t feat_item_lookup(feat_engine_t *eng, const char *s, uint32_t len) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t h = feat_id_hash(s, len);
        for (uint32_t i = h & c->imask;; i = (i + 1) & c->imask) {
                uint32_t id = c->islots[i];
                const feat_item_t *it;
                if (id == FEAT_NONE)
                        return FEAT_NONE;
                it = &c->items[id];
                if (it->hash == h && it->len == len && !memcmp(it->id, s, len))
                        return id;
        }
}

static int items_room(feat_cooc_t *c) {
        if ((uint64_t)(items_live(c) + 1) * 4 > (uint64_t)(c->imask + 1) * 3 &&
            islots_resize(c, (c->imask + 1) * 2))
                return -1;
        if (c->n_free)
                return 0;
        if (c->n_items == c->cap_items) {
                uint32_t nc = c->cap_items ? c->cap_items * 2 : 1024;
                feat_item_t *g = realloc(c->items, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->items = g;
                c->cap_items = nc;
        }
        return c->n_items >= FEAT_NONE - 1 ? -1 : 0;
}

/* A slot for a new item: a freed one (its gen changed when it was freed)
 * or a fresh one, whose gen is above every gen given before. */
static uint32_t item_slot_take(feat_cooc_t *c) {
        uint32_t id, gen;
        if (c->n_free) {
                id = c->free_ids[--c->n_free];
                gen = c->items[id].gen;
        } else {
                id = c->n_items++;
                gen = c->gen_max + 1 ? c->gen_max + 1 : 1;
        }
        memset(&c->items[id], 0, sizeof(c->items[id]));
        c->items[id].gen = gen;
        if (gen > c->gen_max)
                c->gen_max = gen;
        return id;
}

/* Interns without marking a use (items met as someone's partner). */
static uint32_t item_intern(feat_engine_t *eng, const char *s, uint32_t len) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t id = feat_item_lookup(eng, s, len), i;
        feat_item_t *it;
        char *copy;
        if (id != FEAT_NONE)
                return id;
        if (items_room(c) || !(copy = tern_pool_alloc(c->pool, len + 1)))
                return FEAT_NONE;
        if (len)
                memcpy(copy, s, len);
        copy[len] = '\0';
        id = item_slot_take(c);
        it = &c->items[id];
        it->id = copy;
        it->len = len;
        it->hash = feat_id_hash(s, len);
        it->stamp = eng->tick;
        for (i = it->hash & c->imask; c->islots[i] != FEAT_NONE;
             i = (i + 1) & c->imask)
                ;
        c->islots[i] = id;
        return id;
}

uint32_t feat_item_intern(feat_engine_t *eng, const char *s, uint32_t len) {
        uint32_t id = item_intern(eng, s, len);
        if (id != FEAT_NONE)
                eng->cooc.items[id].stamp = eng->tick;
        return id;
}

/* Removes id from islots, moving later entries of its probe run back
 * into the hole when their home slot allows it (backward shift). */
static void islot_delete(feat_cooc_t *c, uint32_t id) {
        uint32_t m = c->imask, i = c->items[id].hash & m;
        while (c->islots[i] != id)
                i = (i + 1) & m;
        for (uint32_t j = (i + 1) & m; c->islots[j] != FEAT_NONE;
             j = (j + 1) & m) {
                uint32_t home = c->items[c->islots[j]].hash & m;
                if (((j - home) & m) >= ((j - i) & m)) {
                        c->islots[i] = c->islots[j];
                        i = j;
                }
        }
        c->islots[i] = FEAT_NONE;
}

/* Its entries leave with the pair sweep; its top list goes now. */
static void item_unload(feat_cooc_t *c, feat_item_t *it) {
        if (it->top_loaded)
                c->n_top_loaded--;
        it->top_loaded = 0;
        it->n_top = 0;
        it->f = 0;
        tern_pool_free(c->pool, it->top, c->top_bytes);
        it->top = NULL;
}

/* Frees an item no pair, top list or trending entry names; free_ids must
 * have room (cooc_evict reserves it). */
static void item_free(feat_cooc_t *c, uint32_t id) {
        feat_item_t *it = &c->items[id];
        islot_delete(c, id);
        item_unload(c, it);
        tern_pool_free(c->pool, it->id, (size_t)it->len + 1);
        it->id = NULL;
        it->n_loaded = 0;
        if (++it->gen == 0)
                it->gen = 1;
        if (it->gen > c->gen_max)
                c->gen_max = it->gen;
        c->free_ids[c->n_free++] = id;
}

/* ---- top lists ---- */

/* (c1, id1) sorts before (c2, id2): count desc, then id bytes asc. */
static int top_beats(const feat_cooc_t *c, int64_t c1, uint32_t id1, int64_t c2,
                     uint32_t id2) {
        const feat_item_t *a, *b;
        if (c1 != c2)
                return c1 > c2;
        a = &c->items[id1];
        b = &c->items[id2];
        return feat_id_cmp(a->id, a->len, b->id, b->len) < 0;
}

/* Raises id's count from c_old (0: not a member) to c_new in the exact
 * top-k list. Returns 0 if the list did not change, 1 if a member moved,
 * 2 if id entered; *out (when given) is then the entry it pushed out, c 0
 * if none. */
static int top_raise(const feat_cooc_t *c, feat_top_t *top, uint32_t *n,
                     uint32_t k, uint32_t id, int64_t c_old, int64_t c_new,
                     feat_top_t *out) {
        uint32_t pos = *n;
        int entered = 0;
        if (out)
                out->c = 0;
        if (k == 0)
                return 0;
        /* Full list: only an entry at least as good as the last can be in
         * it, so most increments skip the search. */
        if (c_old > 0 &&
            (*n < k || !top_beats(c, top[*n - 1].c, top[*n - 1].id, c_old, id)))
                for (uint32_t i = 0; i < *n; i++)
                        if (top[i].id == id) {
                                pos = i;
                                break;
                        }
        if (pos == *n) {
                entered = 1;
                if (*n < k)
                        (*n)++;
                else if (top_beats(c, c_new, id, top[k - 1].c, top[k - 1].id)) {
                        pos = k - 1;
                        if (out)
                                *out = top[pos];
                } else
                        return 0;
        }
        top[pos].id = id;
        top[pos].c = c_new;
        for (; pos > 0 && top_beats(c, top[pos].c, top[pos].id, top[pos - 1].c,
                                    top[pos - 1].id);
             pos--) {
                feat_top_t t = top[pos];
                top[pos] = top[pos - 1];
                top[pos - 1] = t;
        }
        return entered ? 2 : 1;
}

/* ---- pair filter ----
 *
 * Past the entry bound, a loaded item's f is above 0, so nearly every
 * increment of a pair without an entry could enter a tail item's top list
 * (one ending in counts of 1 or 2) and needed its count read from the
 * store; most such pairs were never seen before. The filter answers
 * "never incremented" without a read: built from every stored pair at the
 * first eviction (the store then holds every count: that commit was
 * written in place), then given every increment. Bits are never cleared,
 * so a pair it rules out has a stored count of 0 and nothing pending or in
 * flight; a false positive only costs the read. One 64-bit word per pair
 * (4 bits in it): one cache miss per increment. Keyed by the ids' string
 * hashes, so it outlives interned ids. */

#define PFILT_BITS 4

static uint64_t pfilt_mix(uint32_t ha, uint32_t hb) {
        return mix64(ha < hb ? ((uint64_t)ha << 32) | hb
                             : ((uint64_t)hb << 32) | ha);
}

/* The word and the bits of a pair: the word from the low bits, 4 bit
 * positions from the high 24. */
static uint64_t pfilt_bits(uint64_t x) {
        uint64_t m = 0;
        for (int i = 0; i < PFILT_BITS; i++)
                m |= (uint64_t)1 << ((x >> (40 + 6 * i)) & 63);
        return m;
}

static void pfilt_add(feat_cooc_t *c, uint32_t ha, uint32_t hb) {
        uint64_t x = pfilt_mix(ha, hb);
        c->pfilt[x & c->pfilt_mask] |= pfilt_bits(x);
}

/* 0: (a,b) was never incremented; 1: it may have been, or no filter. */
static int pfilt_may_have(const feat_cooc_t *c, uint32_t a, uint32_t b) {
        uint64_t x, m;
        if (!c->pfilt)
                return 1;
        x = pfilt_mix(c->items[a].hash, c->items[b].hash);
        m = pfilt_bits(x);
        return (c->pfilt[x & c->pfilt_mask] & m) == m;
}

/* Every stored pair (one scan of the pair keys); on failure there is no
 * filter (reads as before). */
static void pfilt_build(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        size_t words = 1;
        feat_iter_t *it;
        const uint8_t *k, *v, *a, *b;
        size_t klen, vlen;
        uint32_t alen, blen;
        int bad = 0;
        char *err = NULL;
        c->pfilt_tried = 1;
        if (eng->conf.pair_filter_bytes < 8)
                return;
        while (words * 2 <= eng->conf.pair_filter_bytes / 8)
                words *= 2;
        if (!(c->pfilt = calloc(words, sizeof(*c->pfilt))) ||
            !(it = feat_iter_new(eng->st, FEAT_CF_COOC, NULL, 0))) {
                free(c->pfilt);
                c->pfilt = NULL;
                return;
        }
        c->pfilt_mask = words - 1;
        while (!bad && feat_iter_next(it, &k, &klen, &v, &vlen)) {
                if (feat_key_cooc_split(k, klen, &a, &alen, &b, &blen)) {
                        bad = 1;
                        break;
                }
                pfilt_add(c, feat_id_hash((const char *)a, alen),
                          feat_id_hash((const char *)b, blen));
        }
        if (!bad && (err = feat_iter_error(it)))
                bad = 1;
        if (bad) {
                free(c->pfilt);
                c->pfilt = NULL;
        }
        free(err);
        feat_iter_destroy(it);
        eng->stats.pair_filter_builds += c->pfilt != NULL;
}

/* ---- pair table ---- */

static feat_pair_t *pair_slot(feat_cooc_t *c, uint32_t a, uint32_t b) {
        size_t i = pair_hash(a, b) & c->pmask;
        for (;; i = (i + 1) & c->pmask) {
                feat_pair_t *p = &c->pslots[i];
                if (p->a == FEAT_NONE || (p->a == a && p->b == b))
                        return p;
        }
}

/* Empties slot i and shifts the rest of its probe run back (as
 * islot_delete); the pending list must be empty (slots move). */
static void pair_delete(feat_cooc_t *c, size_t i) {
        size_t m = c->pmask;
        feat_pair_t *s = c->pslots;
        c->items[s[i].a].deg--;
        c->items[s[i].b].deg--;
        for (size_t j = (i + 1) & m; s[j].a != FEAT_NONE; j = (j + 1) & m) {
                size_t home = pair_hash(s[j].a, s[j].b) & m;
                if (((j - home) & m) >= ((j - i) & m)) {
                        s[i] = s[j];
                        i = j;
                }
        }
        s[i].a = FEAT_NONE;
        c->n_pairs--;
}

static int pairs_resize(feat_cooc_t *c, size_t cap) {
        feat_pair_t *old = c->pslots;
        size_t old_cap = old ? c->pmask + 1 : 0;
        feat_pair_t *s = malloc(cap * sizeof(*s));
        if (!s)
                return -1;
        for (size_t i = 0; i < cap; i++)
                s[i].a = FEAT_NONE;
        c->pslots = s;
        c->pmask = cap - 1;
        c->n_dirty_pairs = 0;
        for (size_t i = 0; i < old_cap; i++) {
                feat_pair_t *p;
                if (old[i].a == FEAT_NONE)
                        continue;
                p = pair_slot(c, old[i].a, old[i].b);
                *p = old[i];
                /* Slot indexes changed: rebuild the pending list. */
                if (p->pend &&
                    push_size(&c->dirty_pairs, &c->n_dirty_pairs,
                              &c->cap_dirty_pairs, (size_t)(p - s))) {
                        free(old);
                        return -2; /* pending merges lost: caller resets */
                }
        }
        free(old);
        return 0;
}

static int reserve_lists(feat_cooc_t *c, uint32_t more) {
        size_t want = c->n_dirty_pairs + more;
        if (want > c->cap_dirty_pairs) {
                size_t nc = want * 2;
                size_t *g = realloc(c->dirty_pairs, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->dirty_pairs = g;
                c->cap_dirty_pairs = nc;
        }
        if (c->n_dirty_items + 1 > c->cap_dirty_items) {
                uint32_t nc = c->cap_dirty_items ? c->cap_dirty_items * 2 : 256;
                uint32_t *g = realloc(c->dirty_items, nc * sizeof(*g));
                if (!g)
                        return -1;
                c->dirty_items = g;
                c->cap_dirty_items = nc;
        }
        /* each pair may give both its items a new member */
        if ((uint64_t)c->n_dirty_tops + 2ull * more > c->cap_dirty_tops) {
                uint64_t nc = ((uint64_t)c->n_dirty_tops + 2ull * more) * 2;
                uint32_t *g;
                if (nc > UINT32_MAX ||
                    !(g = realloc(c->dirty_tops, nc * sizeof(*g))))
                        return -1;
                c->dirty_tops = g;
                c->cap_dirty_tops = (uint32_t)nc;
        }
        return 0;
}

/* Room for `more` new pairs and pending entries (and one pending item), so
 * the increments that follow cannot fail half-way through an event. */
int feat_cooc_reserve(feat_engine_t *eng, uint32_t more) {
        feat_cooc_t *c = &eng->cooc;
        size_t cap = c->pmask + 1;
        if (reserve_lists(c, more))
                return -1;
        if ((c->n_pairs + more) * 4 <= cap * 3)
                return 0;
        while ((c->n_pairs + more) * 4 > cap * 3)
                cap *= 2;
        return pairs_resize(c, cap);
}

/* The entry of (a, b), NULL if none. */
static feat_pair_t *pair_find(feat_cooc_t *c, uint32_t a, uint32_t b) {
        feat_pair_t *p = pair_slot(c, a < b ? a : b, a < b ? b : a);
        return p->a == FEAT_NONE ? NULL : p;
}

/* Fills the empty slot p; room was reserved. */
static void pair_insert(feat_engine_t *eng, feat_pair_t *p, uint32_t a,
                        uint32_t b, int64_t cnt, int known) {
        feat_cooc_t *c = &eng->cooc;
        p->a = a < b ? a : b;
        p->b = a < b ? b : a;
        p->c = cnt;
        p->pend = 0;
        p->stamp = eng->tick;
        p->flushed = 0;
        p->known = (uint32_t)known;
        c->n_pairs++;
        c->items[a].deg++;
        c->items[b].deg++;
}

/* The entry's count is now exactly cnt. */
static void pair_set_known(feat_pair_t *p, int64_t cnt) {
        p->c = cnt;
        p->known = 1;
}

static const feat_top_t *top_find(const feat_item_t *it, uint32_t id) {
        for (uint32_t i = 0; i < it->n_top; i++)
                if (it->top[i].id == id)
                        return &it->top[i];
        return NULL;
}

/* c(a,b) of a pair without an entry: exact (returns 1) from a top list or
 * a side whose f is 0, else its upper bound min(f(a), f(b)). */
static int absent_count(const feat_cooc_t *c, uint32_t a, uint32_t b,
                        int64_t *cnt) {
        const feat_item_t *ia = &c->items[a], *ib = &c->items[b];
        const feat_top_t *t;
        if ((t = top_find(ia, b)) || (t = top_find(ib, a))) {
                *cnt = t->c;
                return 1;
        }
        *cnt = ia->f < ib->f ? ia->f : ib->f;
        return *cnt == 0;
}

/* A pair whose count is only bounded is in neither top list; could a
 * count of ub put `other` into it's top list? */
static int may_enter(const feat_engine_t *eng, uint32_t id, uint32_t other,
                     int64_t ub) {
        const feat_cooc_t *c = &eng->cooc;
        const feat_item_t *it = &c->items[id];
        uint32_t k = eng->conf.top_neighbors;
        if (k == 0)
                return 0;
        if (it->n_top < k)
                return 1;
        return top_beats(c, ub, other, it->top[k - 1].c, it->top[k - 1].id);
}

/* c(x, y) in the store, 0 if absent; c->key is then the pair's key. */
static tern_code_t stored_count(feat_engine_t *eng, uint32_t x, uint32_t y,
                                int64_t *cnt, char *errstr,
                                size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        const feat_item_t *ix = &c->items[x], *iy = &c->items[y];
        int found;
        tern_code_t code;
        *cnt = 0;
        feat_key_cooc(&c->key, ix->id, ix->len, iy->id, iy->len);
        if (c->key.overflow)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "cooc read: cannot build the key");
        code = feat_store_get(eng->st, FEAT_CF_COOC, c->key.data, c->key.len,
                              &c->cnt_val, &found, errstr, errstr_size);
        if (code || !found)
                return code;
        if (c->cnt_val.len != 8)
                return bad_counter(FEAT_CF_COOC, c->key.data, c->key.len,
                                   errstr, errstr_size);
        *cnt = feat_counter_decode(c->cnt_val.data, 8);
        return TERN_OK;
}

/* Makes the entry known: the stored count plus what is not stored yet.
 * The pair's last flush may be in the batch in flight: wait for that to
 * land. */
static tern_code_t pair_read(feat_engine_t *eng, feat_pair_t *p, char *errstr,
                             size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        int64_t cnt;
        tern_code_t code;
        if (eng->in_flight && p->flushed == c->seq) {
                feat_store_write_wait(eng->st);
                eng->stats.pair_read_waits++;
        }
        if ((code = stored_count(eng, p->a, p->b, &cnt, errstr, errstr_size)))
                return code;
        pair_set_known(p, cnt + p->pend);
        eng->stats.pair_reads++;
        return TERN_OK;
}

tern_code_t feat_cooc_resolve(feat_engine_t *eng, uint32_t a, uint32_t b,
                              int64_t w, size_t *slot, char *errstr,
                              size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        feat_pair_t *p = pair_slot(c, a < b ? a : b, a < b ? b : a);
        *slot = (size_t)(p - c->pslots);
        if (p->a == FEAT_NONE) {
                int64_t cnt;
                int known = absent_count(c, a, b, &cnt);
                pair_insert(eng, p, a, b, cnt, known);
        }
        p->stamp = eng->tick;
        if (p->known)
                return TERN_OK;
        if (!may_enter(eng, a, b, p->c + w) && !may_enter(eng, b, a, p->c + w))
                return TERN_OK;
        if (!pfilt_may_have(c, a, b)) {
                pair_set_known(p, p->pend); /* never incremented */
                eng->stats.pair_filter_zeros++;
                return TERN_OK;
        }
        return pair_read(eng, p, errstr, errstr_size);
}

/* id's top record is written at the next commit; once per commit. Room
 * for a commit's increments is reserved (feat_cooc_reserve); a load may
 * grow the list. */
static int top_mark_dirty(feat_cooc_t *c, uint32_t id) {
        if (c->items[id].top_dirty)
                return 0;
        if (push_u32(&c->dirty_tops, &c->n_dirty_tops, &c->cap_dirty_tops, id))
                return -1;
        c->items[id].top_dirty = 1;
        return 0;
}

/* id's top list after c(id, other) went from c_old to c_new (known); a
 * neighbour pushed out without an entry of its own raises f. The top
 * record to write goes in dirty_tops (room reserved by
 * feat_cooc_reserve). */
static void top_move(feat_engine_t *eng, uint32_t id, uint32_t other,
                     int64_t c_old, int64_t c_new) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        feat_top_t out;
        int moved = top_raise(c, it->top, &it->n_top, eng->conf.top_neighbors,
                              other, c_old, c_new, &out);
        /* A new member changes the record; a member's new count changes a
         * counted one, which stops being the store's. Other increments
         * leave both true: a non-member stays within the bound. */
        if (moved == 2 || (moved && it->rec_counted))
                top_mark_dirty(c, id);
        if (moved)
                it->rec_counted = 0;
        if (moved && out.c > it->f && !pair_find(c, id, out.id))
                it->f = out.c;
}

void feat_cooc_add(feat_engine_t *eng, size_t slot, int64_t w) {
        feat_cooc_t *c = &eng->cooc;
        feat_pair_t *p = &c->pslots[slot];
        int64_t old = p->c;
        p->c += w;
        if (p->pend == 0)
                push_size(&c->dirty_pairs, &c->n_dirty_pairs,
                          &c->cap_dirty_pairs, (size_t)(p - c->pslots));
        p->pend += w;
        eng->stats.pair_increments++;
        if (c->pfilt)
                pfilt_add(c, c->items[p->a].hash, c->items[p->b].hash);
        /* unknown: resolved to move neither list */
        if (!p->known)
                return;
        top_move(eng, p->a, p->b, old, p->c);
        top_move(eng, p->b, p->a, old, p->c);
}

void feat_item_add_n(feat_engine_t *eng, uint32_t id, int64_t w) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        int64_t old = it->n;
        it->n += w;
        it->n_pending += w;
        if (!it->n_dirty) {
                it->n_dirty = 1;
                push_u32(&c->dirty_items, &c->n_dirty_items,
                         &c->cap_dirty_items, id);
        }
        if (top_raise(c, c->trend, &c->n_trend, eng->conf.trending_size, id,
                      old, it->n, NULL))
                c->trend_dirty = 1;
}

/* ---- loading from the store ---- */

void feat_key_printable(const uint8_t *k, size_t klen, char *out,
                        size_t out_size) {
        size_t o = 0;
        for (size_t i = 0; i < klen && o + 5 < out_size; i++) {
                if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
                        out[o++] = (char)k[i];
                else
                        o += (size_t)snprintf(out + o, out_size - o, "\\x%02x",
                                              k[i]);
        }
        if (out_size)
                out[o < out_size ? o : out_size - 1] = '\0';
}

static tern_code_t bad_counter(feat_cf_t cf, const uint8_t *k, size_t klen,
                               char *errstr, size_t errstr_size) {
        char pk[256];
        feat_key_printable(k, klen, pk, sizeof(pk));
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "undecodable %s counter at key \"%s\"",
                         feat_cf_names[cf], pk);
}

tern_code_t feat_item_load_n(feat_engine_t *eng, uint32_t id, char *errstr,
                             size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        int found;
        tern_code_t code;
        if (it->n_loaded)
                return TERN_OK;
        code = feat_store_get(eng->st, FEAT_CF_ITEM, it->id, it->len, &c->val,
                              &found, errstr, errstr_size);
        if (code)
                return code;
        if (found && c->val.len != 8)
                return bad_counter(FEAT_CF_ITEM, (const uint8_t *)it->id,
                                   it->len, errstr, errstr_size);
        it->n = found ? feat_counter_decode(c->val.data, 8) : 0;
        it->n_loaded = 1;
        return TERN_OK;
}

/* ---- top records ---- */

/* One member of id's stored top list with its count (the entry's, when it
 * has one that is known: id's pairs have no increment outside the store
 * while its top is not loaded; else the record's, counted >= 0, or the
 * store's) into the top list, k + 1 long. */
static tern_code_t load_member(feat_engine_t *eng, uint32_t id, const char *m,
                               uint32_t mlen, int64_t counted, char *errstr,
                               size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t mid = item_intern(eng, m, mlen);
        feat_item_t *it;
        feat_pair_t *p;
        int64_t cnt = counted;
        tern_code_t code;
        if (mid == FEAT_NONE)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory loading a top list");
        if (mid == id)
                return TERN_OK;
        p = pair_find(c, id, mid);
        if (p && p->known)
                cnt = p->c;
        else if (counted < 0 &&
                 (code = stored_count(eng, id, mid, &cnt, errstr, errstr_size)))
                return code;
        if (p && !p->known)
                pair_set_known(p, cnt + p->pend);
        it = &c->items[id];
        if (cnt > 0)
                top_raise(c, it->top, &it->n_top, eng->conf.top_neighbors + 1,
                          mid, 0, cnt, NULL);
        return TERN_OK;
}

/* id's top list from its record (none: no pairs yet). A record kept
 * with k' members was full when it holds k' of them: then no other pair
 * beats its last member, so f is that member's count (or the best count
 * cut off when k is smaller now). */
static tern_code_t load_top_record(feat_engine_t *eng, uint32_t id,
                                   char *errstr, size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t k = eng->conf.top_neighbors;
        uint64_t k_rec, n;
        feat_item_t *it = &c->items[id];
        tern_rd_t r;
        int found, counted;
        tern_code_t code;
        code = feat_store_get(eng->st, FEAT_CF_TOP, it->id, it->len, &c->val,
                              &found, errstr, errstr_size);
        it->rec_counted = !found; /* no record: no pairs, nothing to redo */
        if (code || !found)
                return code;
        tern_rd_init(&r, c->val.data, c->val.len);
        if (tern_rd_u8(&r) != TOP_VERSION)
                goto bad;
        k_rec = tern_rd_varint(&r);
        counted = tern_rd_u8(&r);
        n = tern_rd_varint(&r);
        if (counted > 1)
                goto bad;
        if (r.err || n > k_rec || n > tern_rd_left(&r))
                goto bad;
        if (n == k_rec && k_rec < k)
                return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "top record of \"%.*s\" holds %llu "
                                 "neighbours, fewer than "
                                 "features.top_neighbors (%u)",
                                 (int)(it->len > 200 ? 200 : it->len), it->id,
                                 (unsigned long long)k_rec, k);
        for (uint64_t i = 0; i < n; i++) {
                uint32_t mlen;
                const char *m = tern_rd_str(&r, FEAT_ID_MAX, &mlen);
                int64_t cnt = counted ? tern_rd_long(&r) : -1;
                if (r.err || (counted && cnt <= 0))
                        goto bad;
                if ((code = load_member(eng, id, m, mlen, cnt, errstr,
                                        errstr_size)))
                        return code;
        }
        if (tern_rd_left(&r))
                goto bad;
        it = &c->items[id];
        if (it->n_top > k) {
                it->n_top = k;
                it->f = it->top[k].c;
        } else if (n == k_rec && it->n_top > 0)
                it->f = it->top[it->n_top - 1].c;
        eng->stats.top_loads++;
        eng->stats.top_loads_counted += (uint64_t)counted;
        it->rec_counted = (uint8_t)(counted && k_rec == k);
        /* Kept with another k, the record would not stay true: a partner
         * below the list that did not enter it would not rewrite it, and
         * the next load would bound it by what the record says about the
         * old k. Rewritten with this k at the next commit. */
        if (k_rec != k && top_mark_dirty(c, id))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        return TERN_OK;
bad:
        it = &c->items[id]; /* interning may have moved the items */
        return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                         "undecodable top record of \"%.*s\"",
                         (int)(it->len > 200 ? 200 : it->len), it->id);
}

tern_code_t feat_item_load_top(feat_engine_t *eng, uint32_t id, char *errstr,
                               size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        feat_item_t *it = &c->items[id];
        tern_code_t code;
        it->stamp = eng->tick;
        if (it->top_loaded)
                return TERN_OK;
        if (!it->top && !(it->top = tern_pool_alloc(c->pool, c->top_bytes)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        it->n_top = 0;
        it->f = 0;
        if ((code = load_top_record(eng, id, errstr, errstr_size))) {
                c->items[id].n_top = 0; /* not loaded: nothing half-read */
                return code;
        }
        c->items[id].top_loaded = 1;
        c->n_top_loaded++;
        return TERN_OK;
}

/* The top record of a loaded item: its members in id order, so the
 * record says which they are, not how they ranked at that commit (the
 * store is the same whichever commits a stream is cut into). */
static int top_encode(feat_engine_t *eng, const feat_item_t *it, int counted,
                      tern_buf_t *out) {
        feat_cooc_t *c = &eng->cooc;
        const feat_top_t **m = c->members;
        uint32_t n = it->n_top;
        for (uint32_t i = 0; i < n; i++) {
                const feat_top_t *v = &it->top[i];
                const feat_item_t *vi = &c->items[v->id];
                uint32_t j = i;
                for (; j > 0; j--) {
                        const feat_item_t *mi = &c->items[m[j - 1]->id];
                        if (feat_id_cmp(vi->id, vi->len, mi->id, mi->len) >= 0)
                                break;
                        m[j] = m[j - 1];
                }
                m[j] = v;
        }
        tern_buf_reset(out);
        tern_buf_put_u8(out, TOP_VERSION);
        tern_buf_put_varint(out, eng->conf.top_neighbors);
        tern_buf_put_u8(out, (uint8_t)counted);
        tern_buf_put_varint(out, n);
        for (uint32_t i = 0; i < n; i++) {
                const feat_item_t *mi = &c->items[m[i]->id];
                tern_buf_put_str(out, mi->id, mi->len);
                if (counted)
                        tern_buf_put_long(out, m[i]->c);
        }
        return out->overflow ? -1 : 0;
}

/* ---- trending record: u8 version, varint size, varint n, {str, long} ---- */

static int trending_encode(const feat_engine_t *eng, tern_buf_t *out) {
        const feat_cooc_t *c = &eng->cooc;
        tern_buf_reset(out);
        tern_buf_put_u8(out, FEAT_REC_VERSION);
        tern_buf_put_varint(out, eng->conf.trending_size);
        tern_buf_put_varint(out, c->n_trend);
        for (uint32_t i = 0; i < c->n_trend; i++) {
                const feat_item_t *it = &c->items[c->trend[i].id];
                tern_buf_put_str(out, it->id, it->len);
                tern_buf_put_long(out, c->trend[i].c);
        }
        return out->overflow ? -1 : 0;
}

static int trending_add(feat_engine_t *eng, const char *s, uint32_t len,
                        int64_t n) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t id = item_intern(eng, s, len);
        if (id == FEAT_NONE)
                return -1;
        c->items[id].n = n;
        c->items[id].n_loaded = 1;
        top_raise(c, c->trend, &c->n_trend, eng->conf.trending_size, id, 0, n,
                  NULL);
        return 0;
}

/* 1: loaded; 0: no usable record (absent or another trending_size). */
static int trending_decode(feat_engine_t *eng, const uint8_t *b, size_t len) {
        tern_rd_t r;
        uint64_t size, n;
        tern_rd_init(&r, b, len);
        if (tern_rd_u8(&r) != FEAT_REC_VERSION)
                return -1;
        size = tern_rd_varint(&r);
        n = tern_rd_varint(&r);
        if (r.err || n > size)
                return -1;
        if (size != eng->conf.trending_size)
                return 0;
        for (uint64_t i = 0; i < n; i++) {
                uint32_t slen;
                const char *s = tern_rd_str(&r, FEAT_ID_MAX, &slen);
                int64_t cnt = tern_rd_long(&r);
                if (r.err || trending_add(eng, s, slen, cnt))
                        return -1;
        }
        return tern_rd_left(&r) ? -1 : 1;
}

/* Exact trending from a full scan of the item CF: for a store written with
 * another trending_size (or none yet). Items met are interned, then
 * evicted past the bound at the next commit. */
static tern_code_t trending_rebuild(feat_engine_t *eng, char *errstr,
                                    size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(eng->st, FEAT_CF_ITEM, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t code = TERN_OK;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                int64_t n = feat_counter_decode(v, vlen);
                if (vlen != 8) {
                        code = bad_counter(FEAT_CF_ITEM, k, klen, errstr,
                                           errstr_size);
                        goto out;
                }
                if (n > 0 && klen <= FEAT_ID_MAX &&
                    trending_add(eng, (const char *)k, (uint32_t)klen, n)) {
                        code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
                        goto out;
                }
        }
        code = feat_iter_status(it, "cooc scan", errstr, errstr_size);
        eng->cooc.trend_dirty = 1;
out:
        feat_iter_destroy(it);
        return code;
}

static tern_code_t trending_load(feat_engine_t *eng, char *errstr,
                                 size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        int found, r = 0;
        tern_code_t code;
        code = feat_store_get(eng->st, FEAT_CF_META, TRENDING_KEY,
                              strlen(TRENDING_KEY), &c->val, &found, errstr,
                              errstr_size);
        if (code)
                return code;
        if (found && (r = trending_decode(eng, c->val.data, c->val.len)) < 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "undecodable meta record \"%s\"",
                                 TRENDING_KEY);
        if (r == 1)
                return TERN_OK;
        c->n_trend = 0;
        return trending_rebuild(eng, errstr, errstr_size);
}

/* ---- commit ---- */

/* One merge per pending pair. */
static int flush_pairs(feat_engine_t *eng, feat_batch_t *b) {
        feat_cooc_t *c = &eng->cooc;
        int r = 0;
        c->seq = (c->seq + 1) & 0x7fffffffu;
        for (size_t i = 0; i < c->n_dirty_pairs; i++) {
                feat_pair_t *p = &c->pslots[c->dirty_pairs[i]];
                const feat_item_t *x = &c->items[p->a], *y = &c->items[p->b];
                if (!p->pend)
                        continue;
                feat_key_cooc(&c->key, x->id, x->len, y->id, y->len);
                if (c->key.overflow)
                        r = -1;
                else
                        feat_batch_merge_add(b, eng->st, FEAT_CF_COOC,
                                             c->key.data, c->key.len, p->pend);
                eng->stats.merges_written++;
                p->pend = 0;
                p->flushed = c->seq;
        }
        c->n_dirty_pairs = 0;
        return r;
}

/* The top record of every item whose membership changed. */
static int flush_tops(feat_engine_t *eng, feat_batch_t *b) {
        feat_cooc_t *c = &eng->cooc;
        int r = 0;
        for (uint32_t i = 0; i < c->n_dirty_tops; i++) {
                feat_item_t *it = &c->items[c->dirty_tops[i]];
                it->top_dirty = 0;
                if (!it->top_loaded)
                        continue; /* its record is the store's */
                if (top_encode(eng, it, 0, &c->val))
                        r = -1;
                else
                        feat_batch_put(b, eng->st, FEAT_CF_TOP, it->id, it->len,
                                       c->val.data, c->val.len);
                eng->stats.top_records_written++;
        }
        c->n_dirty_tops = 0;
        return r;
}

static void flush_items(feat_engine_t *eng, feat_batch_t *b) {
        feat_cooc_t *c = &eng->cooc;
        for (uint32_t i = 0; i < c->n_dirty_items; i++) {
                feat_item_t *it = &c->items[c->dirty_items[i]];
                if (it->n_pending)
                        feat_batch_merge_add(b, eng->st, FEAT_CF_ITEM, it->id,
                                             it->len, it->n_pending);
                it->n_pending = 0;
                it->n_dirty = 0;
                eng->stats.merges_written++;
        }
        c->n_dirty_items = 0;
}

tern_code_t feat_cooc_flush(feat_engine_t *eng, feat_batch_t *b, char *errstr,
                            size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        if (flush_pairs(eng, b) || flush_tops(eng, b))
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "cannot encode a co-occurrence record");
        flush_items(eng, b);
        if (c->layout_dirty) {
                tern_buf_reset(&c->val);
                tern_buf_put_u8(&c->val, LAYOUT_VERSION);
                tern_buf_put_varint(&c->val, eng->conf.top_neighbors);
                feat_batch_put(b, eng->st, FEAT_CF_META, LAYOUT_KEY,
                               strlen(LAYOUT_KEY), c->val.data, c->val.len);
                c->layout_dirty = 0;
        }
        if (!c->trend_dirty)
                return TERN_OK;
        if (trending_encode(eng, &c->val))
                return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                 "trending record too large");
        feat_batch_put(b, eng->st, FEAT_CF_META, TRENDING_KEY,
                       strlen(TRENDING_KEY), c->val.data, c->val.len);
        c->trend_dirty = 0;
        return TERN_OK;
}

/* ---- eviction ----
 *
 * After a commit nothing is pending and nothing is in flight (a commit
 * past a bound is written in place): every count in memory is in the
 * store, so any entry may go and come back exactly.
 *
 Past max_cached_items loaded items (top lists), the least recently used
 * are unloaded (top list and f dropped) down to 90% of it. Past
 * max_cached_pairs items, loaded or not, the same happens until the items
 * nothing names any more (no entry, not loaded, not in a loaded top list,
 * not trending) can be freed, oldest first, down to 90% of that bound.
 * Either way, entries whose two items are both unloaded leave the table.
 * Items in memory that are not loaded are thus bounded by the loaded
 * ones' top lists and the entries. Past max_cached_pairs entries, the
 * least recently used entries
 * leave, down to 90%, each raising f of a loaded side it was not a top
 * neighbour of. The tables keep their size: RSS stays flat, and the next
 * batch refills the same slots.
 */

/* Loaded items: max_cached_items, within the pairs' bound. */
static uint64_t loaded_bound(const feat_engine_t *eng) {
        uint64_t items = eng->conf.max_cached_items,
                 pairs = eng->conf.max_cached_pairs;
        return items && items < pairs ? items : pairs;
}

int feat_cooc_over_bound(const feat_engine_t *eng) {
        const feat_cooc_t *c = &eng->cooc;
        uint64_t pairs = eng->conf.max_cached_pairs;
        return c->n_pairs > pairs || items_live(c) > pairs ||
               c->n_top_loaded > loaded_bound(eng);
}

/* Items a list names stay: the trending list and loaded top lists (whose
 * members need not have an entry). Marked before freeing. */
static void keep_named(feat_cooc_t *c) {
        for (uint32_t i = 0; i < c->n_trend; i++)
                c->items[c->trend[i].id].keep = 1;
        for (uint32_t id = 0; id < c->n_items; id++) {
                const feat_item_t *it = &c->items[id];
                if (it->id && it->top_loaded)
                        for (uint32_t k = 0; k < it->n_top; k++)
                                c->items[it->top[k].id].keep = 1;
        }
}

static void keep_none(feat_cooc_t *c) {
        for (uint32_t id = 0; id < c->n_items; id++)
                c->items[id].keep = 0;
}

/* Live item ids in eng->lru, least recently used first; NULL (no memory
 * for the order): the caller goes by id. */
static const uint64_t *items_by_age(feat_engine_t *eng, size_t *n) {
        feat_cooc_t *c = &eng->cooc;
        *n = 0;
        if (feat_lru_room(eng, items_live(c)))
                return NULL;
        for (uint32_t id = 0; id < c->n_items; id++)
                if (c->items[id].id)
                        eng->lru[(*n)++] =
                            feat_lru_key(eng->tick, c->items[id].stamp, id);
        feat_lru_sort(eng, *n);
        return eng->lru;
}

static uint32_t order_id(const uint64_t *order, size_t i) {
        return order ? (uint32_t)order[i] : (uint32_t)i;
}

/* Unloads up to want loaded items, oldest first; the number unloaded. */
/* The counted record of an item leaving memory, into the batch the
 * eviction writes; nothing is pending (eviction follows a commit written
 * in place), so its list and counts are the store's. */
static void record_counted(feat_engine_t *eng, feat_item_t *it) {
        feat_cooc_t *c = &eng->cooc;
        if (it->rec_counted || it->top_dirty)
                return;
        if (top_encode(eng, it, 1, &c->val))
                return; /* the uncounted record stays: loads read counts */
        feat_batch_put(eng->batch, eng->st, FEAT_CF_TOP, it->id, it->len,
                       c->val.data, c->val.len);
        it->rec_counted = 1;
        eng->stats.top_records_written++;
}

static size_t unload_oldest(feat_engine_t *eng, const uint64_t *order, size_t n,
                            uint64_t want) {
        feat_cooc_t *c = &eng->cooc;
        size_t k = 0;
        for (size_t i = 0; i < n && k < want; i++) {
                feat_item_t *it = &c->items[order_id(order, i)];
                if (!it->id || !it->top_loaded)
                        continue;
                record_counted(eng, it);
                item_unload(c, it);
                k++;
        }
        return k;
}

/* Writes the counted records the unloads put in the engine's (empty)
 * batch. A failed write leaves the uncounted ones, which stay true. */
static void records_write(feat_engine_t *eng) {
        char err[256];
        if (!feat_batch_count(eng->batch))
                return;
        if (feat_store_write(eng->st, eng->batch, err, sizeof(err)))
                eng->stats.top_record_write_errors++;
        feat_batch_clear(eng->batch);
}

/* Ids of the items whose stored record is not counted (a scan of the
 * top CF), appended to ids as {u32 len, bytes}. */
static tern_code_t uncounted_ids(feat_engine_t *eng, tern_buf_t *ids,
                                 char *errstr, size_t errstr_size) {
        feat_iter_t *it = feat_iter_new(eng->st, FEAT_CF_TOP, NULL, 0);
        const uint8_t *k, *v;
        size_t klen, vlen;
        tern_code_t code;
        if (!it)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        while (feat_iter_next(it, &k, &klen, &v, &vlen)) {
                tern_rd_t r;
                tern_rd_init(&r, v, vlen);
                tern_rd_u8(&r);
                tern_rd_varint(&r);
                if (tern_rd_u8(&r) == 0 && !r.err && klen <= FEAT_ID_MAX) {
                        tern_buf_put_u32be(ids, (uint32_t)klen);
                        tern_buf_append(ids, k, klen);
                }
        }
        code = feat_iter_status(it, "top scan", errstr, errstr_size);
        feat_iter_destroy(it);
        if (!code && ids->overflow)
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        return code;
}

/* A stored item's counted record: loaded (counts read), then unloaded
 * again as an eviction would. */
static tern_code_t record_count_stored(feat_engine_t *eng, const char *s,
                                       uint32_t len, char *errstr,
                                       size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t id = item_intern(eng, s, len);
        tern_code_t code;
        if (id == FEAT_NONE)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if (c->items[id].top_loaded)
                return TERN_OK; /* written from memory */
        if ((code = feat_item_load_top(eng, id, errstr, errstr_size)))
                return code;
        if (c->items[id].top_dirty) { /* kept with another k: pushed last */
                c->items[id].top_dirty = 0;
                c->n_dirty_tops--;
        }
        record_counted(eng, &c->items[id]);
        item_unload(c, &c->items[id]);
        return TERN_OK;
}

tern_code_t feat_engine_write_top_records(feat_engine_t *eng, char *errstr,
                                          size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        tern_buf_t ids;
        tern_rd_t r;
        tern_code_t code;
        if (eng->in_flight || c->n_dirty_pairs || c->n_dirty_tops)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "top records: commit first");
        feat_batch_clear(eng->batch);
        for (uint32_t id = 0; id < c->n_items; id++)
                if (c->items[id].id && c->items[id].top_loaded)
                        record_counted(eng, &c->items[id]);
        tern_buf_init(&ids, (size_t)1 << 30);
        code = uncounted_ids(eng, &ids, errstr, errstr_size);
        tern_rd_init(&r, ids.data, ids.len);
        while (!code && tern_rd_left(&r)) {
                uint32_t len = tern_rd_u32be(&r);
                const char *s = (const char *)tern_rd_bytes(&r, len);
                code = r.err ? tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                         "top scan: bad id list")
                             : record_count_stored(eng, s, len, errstr,
                                                   errstr_size);
        }
        tern_buf_free(&ids);
        if (!code)
                code =
                    feat_store_write(eng->st, eng->batch, errstr, errstr_size);
        /* on failure rec_counted may claim records the store lacks: that
         * only skips a counted write at an unload */
        feat_batch_clear(eng->batch);
        return code;
}

/* Deletes the entries that `gone` says go, in slot order while more than
 * keep are left, first raising f of each of its loaded items that does
 * not have the other as a top neighbour. A sweep starts where the last
 * one stopped: always starting at slot 0 emptied the table's start and
 * left its end nearly full, in runs of hundreds of entries that every
 * lookup of an absent pair walked (soak: half the loop's CPU). A deletion
 * may shift a later entry into slot i: look at i again. */
static uint64_t pairs_sweep(feat_engine_t *eng,
                            int (*gone)(const feat_engine_t *,
                                        const feat_pair_t *, uint32_t),
                            uint32_t min_age, uint64_t keep) {
        feat_cooc_t *c = &eng->cooc;
        uint64_t n = 0;
        size_t i = c->sweep_at & c->pmask;
        for (size_t seen = 0; seen <= c->pmask && c->n_pairs > keep;
             seen++, i = (i + 1) & c->pmask)
                while (c->pslots[i].a != FEAT_NONE && c->n_pairs > keep &&
                       gone(eng, &c->pslots[i], min_age)) {
                        const feat_pair_t *p = &c->pslots[i];
                        feat_item_t *ia = &c->items[p->a],
                                    *ib = &c->items[p->b];
                        if (ia->top_loaded && p->c > ia->f &&
                            !top_find(ia, p->b))
                                ia->f = p->c;
                        if (ib->top_loaded && p->c > ib->f &&
                            !top_find(ib, p->a))
                                ib->f = p->c;
                        pair_delete(c, i);
                        n++;
                }
        c->sweep_at = i;
        return n;
}

static int both_unloaded(const feat_engine_t *eng, const feat_pair_t *p,
                         uint32_t min_age) {
        (void)min_age;
        return !eng->cooc.items[p->a].top_loaded &&
               !eng->cooc.items[p->b].top_loaded;
}

static int older_than(const feat_engine_t *eng, const feat_pair_t *p,
                      uint32_t min_age) {
        return eng->tick - p->stamp >= min_age;
}

/* Dropping p raises no f: every loaded side either has the other in its
 * top list or already bounds p's count. */
static int side_free(const feat_cooc_t *c, uint32_t id, uint32_t other,
                     int64_t cnt) {
        const feat_item_t *it = &c->items[id];
        return !it->top_loaded || cnt <= it->f || top_find(it, other);
}

static int older_and_free(const feat_engine_t *eng, const feat_pair_t *p,
                          uint32_t min_age) {
        const feat_cooc_t *c = &eng->cooc;
        return older_than(eng, p, min_age) && side_free(c, p->a, p->b, p->c) &&
               side_free(c, p->b, p->a, p->c);
}

static uint64_t free_oldest(feat_cooc_t *c, const uint64_t *order, size_t n,
                            uint64_t low) {
        uint64_t k = 0;
        for (size_t i = 0; i < n && items_live(c) > low; i++) {
                uint32_t id = order_id(order, i);
                const feat_item_t *it = &c->items[id];
                if (it->id && !it->top_loaded && !it->deg && !it->keep) {
                        item_free(c, id);
                        k++;
                }
        }
        return k;
}

/* Loaded items down to loaded_low and items down to low: unload the
 * oldest, drop the entries that served only them, free what nothing
 * names. Entries shared with items still loaded keep theirs alive: when
 * a round frees too few, the next one unloads twice as many. */
static void items_evict(feat_engine_t *eng, uint64_t loaded_low, uint64_t low) {
        feat_cooc_t *c = &eng->cooc;
        const uint64_t *order;
        size_t n;
        order = items_by_age(eng, &n);
        if (!order)
                n = c->n_items;
        for (unsigned round = 0;
             c->n_top_loaded > loaded_low || items_live(c) > low; round++) {
                uint64_t want = c->n_top_loaded > loaded_low
                                    ? c->n_top_loaded - loaded_low
                                    : 0,
                         live = items_live(c) > low
                                    ? (uint64_t)(items_live(c) - low)
                                          << (round < 16 ? round : 16)
                                    : 0;
                size_t k =
                    unload_oldest(eng, order, n, want > live ? want : live);
                eng->stats.items_unloaded += k;
                eng->stats.pairs_evicted +=
                    pairs_sweep(eng, both_unloaded, 0, 0);
                keep_named(c);
                eng->stats.items_evicted += free_oldest(c, order, n, low);
                keep_none(c);
                if (!k)
                        break; /* nothing loaded: what is left is kept */
        }
}

/* The age (ticks since last use) at which about `drop` of the entries are
 * at least that old, from a sample of up to 4096 slots spread over the
 * table: sorting every entry would cost more than the eviction. */
static uint32_t age_cut(feat_engine_t *eng, uint64_t drop) {
        feat_cooc_t *c = &eng->cooc;
        size_t slots = c->pmask + 1, step = slots / 4096 ? slots / 4096 : 1;
        size_t n = 0, at;
        if (feat_lru_room(eng, 4096))
                return 0;
        for (size_t i = 0; i < slots && n < 4096; i += step)
                if (c->pslots[i].a != FEAT_NONE)
                        eng->lru[n++] = eng->tick - c->pslots[i].stamp;
        if (!n)
                return 0;
        feat_lru_sort(eng, n);
        at = (size_t)((double)drop / (double)c->n_pairs * (double)n);
        at = n - (at < 1 ? 1 : at < n ? at : n);
        return (uint32_t)eng->lru[at];
}

/* Entries down to low, least recently used first: each round cuts at the
 * age a new sample gives for what is still too many; a cut that freed
 * nothing (entries older than it are all gone) moves to half its age.
 * Entries whose loss raises no bound go first, down to half the cut's
 * age: a raised f makes later increments read counts back. */
static void pairs_evict(feat_engine_t *eng, uint64_t low) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t cut = UINT32_MAX;
        while (c->n_pairs > low) {
                uint32_t sampled = age_cut(eng, c->n_pairs - low);
                cut = sampled < cut ? sampled : cut / 2;
                /* many entries share a tick (one load inserts a whole
                 * list): stop at low, not at the end of the cut's age */
                eng->stats.pairs_evicted +=
                    pairs_sweep(eng, older_and_free, cut / 2, low);
                eng->stats.pairs_evicted +=
                    pairs_sweep(eng, older_than, cut, low);
                if (!cut)
                        break;
        }
}

static void cooc_evict(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        uint64_t pairs = eng->conf.max_cached_pairs, loaded = loaded_bound(eng);
        uint64_t low = pairs - pairs / 10, loaded_low = loaded - loaded / 10;
        if (!feat_cooc_over_bound(eng))
                return;
        /* free_ids: room for every id, so freeing never fails */
        if (c->cap_free < c->n_items) {
                uint32_t *g = realloc(c->free_ids, c->n_items * sizeof(*g));
                if (!g)
                        return; /* over the bound until memory comes back */
                c->free_ids = g;
                c->cap_free = c->n_items;
        }
        if (c->n_top_loaded > loaded_low || items_live(c) > low)
                items_evict(eng, loaded_low, low);
        if (c->n_pairs > low && !c->pfilt_tried)
                pfilt_build(eng);
        pairs_evict(eng, low);
        /* entries gone may leave unloaded items nothing names */
        if (items_live(c) > low)
                items_evict(eng, loaded_low, low);
        records_write(eng);
}

void feat_engine_pair_table_stats(const feat_engine_t *eng,
                                  feat_table_stats_t *out) {
        const feat_cooc_t *c = &eng->cooc;
        uint64_t sum = 0, run = 0;
        memset(out, 0, sizeof(*out));
        out->slots = c->pmask + 1;
        for (size_t i = 0; i <= c->pmask; i++) {
                const feat_pair_t *p = &c->pslots[i];
                uint64_t d;
                if (p->a == FEAT_NONE) {
                        run = 0;
                        continue;
                }
                d = (i - (pair_hash(p->a, p->b) & c->pmask)) & c->pmask;
                sum += d;
                out->entries++;
                if (d > out->max_displacement)
                        out->max_displacement = d;
                if (++run > out->longest_run)
                        out->longest_run = run;
        }
        out->mean_displacement =
            out->entries ? (double)sum / (double)out->entries : 0;
}

/* ---- mirror lifetime ---- */

static void items_free(feat_cooc_t *c) {
        for (uint32_t i = 0; i < c->n_items; i++) {
                tern_pool_free(c->pool, c->items[i].id,
                               (size_t)c->items[i].len + 1);
                tern_pool_free(c->pool, c->items[i].top, c->top_bytes);
        }
        tern_pool_destroy(c->pool);
        c->pool = NULL;
        free(c->items);
        free(c->islots);
        free(c->pslots);
        free(c->free_ids);
        free(c->pfilt);
        c->pfilt = NULL;
        c->pfilt_tried = 0;
        c->items = NULL;
        c->islots = NULL;
        c->pslots = NULL;
        c->free_ids = NULL;
        c->n_items = c->cap_items = 0;
        c->n_free = c->cap_free = 0;
        c->n_top_loaded = 0;
        c->n_pairs = 0;
        c->n_dirty_items = 0;
        c->n_dirty_pairs = 0;
        c->n_dirty_tops = 0;
}

static int tables_init(feat_cooc_t *c) {
        c->imask = 0;
        if (islots_resize(c, ISLOTS_MIN))
                return -1;
        c->pmask = 0;
        return pairs_resize(c, PSLOTS_MIN) ? -1 : 0;
}

void feat_cooc_committed(feat_engine_t *eng) {
        cooc_evict(eng);
}

/* The store's co-occurrence is in this layout, kept with at least
 * top_neighbors members per top record; a store without the layout
 * record holds no co-occurrence yet, or an older tern's. */
static tern_code_t layout_check(feat_engine_t *eng, char *errstr,
                                size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t k = eng->conf.top_neighbors;
        const uint8_t *kk, *v;
        size_t klen, vlen;
        feat_iter_t *it;
        tern_rd_t r;
        uint64_t k_stored;
        uint8_t version;
        int found, any;
        tern_code_t code = feat_store_get(eng->st, FEAT_CF_META, LAYOUT_KEY,
                                          strlen(LAYOUT_KEY), &c->val, &found,
                                          errstr, errstr_size);
        if (code)
                return code;
        if (!found) {
                if (!(it = feat_iter_new(eng->st, FEAT_CF_COOC, NULL, 0)))
                        return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                         "out of memory");
                /* An older tern's lists may still be merge operands,
                 * which the add operator fails to merge: an error here
                 * says the same as a key. */
                any = feat_iter_next(it, &kk, &klen, &v, &vlen);
                code = feat_iter_status(it, "cooc scan", errstr, errstr_size);
                feat_iter_destroy(it);
                if (code) {
                        char why[256];
                        snprintf(why, sizeof(why), "%s", errstr);
                        code = tern_errf(
                            errstr, errstr_size, TERN_ERR_STATE,
                            "the state store's co-occurrence cannot be read "
                            "(%s), as happens with an older tern's layout "
                            "(pair lists); start from an empty state "
                            "directory and replay the input topics",
                            why);
                } else if (any)
                        code = tern_errf(
                            errstr, errstr_size, TERN_ERR_STATE,
                            "the state store holds co-occurrence counts in "
                            "an older tern's layout (pair lists); start "
                            "from an empty state directory and replay the "
                            "input topics");
                c->layout_dirty = 1;
                return code;
        }
        tern_rd_init(&r, c->val.data, c->val.len);
        version = tern_rd_u8(&r);
        k_stored = tern_rd_varint(&r);
        if (r.err || tern_rd_left(&r))
                return tern_errf(errstr, errstr_size, TERN_ERR_STATE,
                                 "undecodable meta record \"%s\"", LAYOUT_KEY);
        if (version != LAYOUT_VERSION)
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_STATE,
                    "the state store's co-occurrence is in layout %u, this "
                    "tern reads layout %u; start from an empty state "
                    "directory and replay the input topics",
                    (unsigned)version, (unsigned)LAYOUT_VERSION);
        if (k > k_stored)
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_STATE,
                    "features.top_neighbors is %u, but this state's top "
                    "lists were kept with %llu: set it to at most %llu, or "
                    "start from an empty state directory",
                    k, (unsigned long long)k_stored,
                    (unsigned long long)k_stored);
        c->layout_dirty = k < k_stored;
        return TERN_OK;
}

tern_code_t feat_cooc_init(feat_engine_t *eng, char *errstr,
                           size_t errstr_size) {
        feat_cooc_t *c = &eng->cooc;
        uint32_t gen_max = c->gen_max;
        tern_code_t code;
        memset(c, 0, sizeof(*c));
        c->gen_max = gen_max; /* users' cached ids must never match again */
        tern_buf_init(&c->key, 2 * FEAT_ID_MAX + 16);
        tern_buf_init(&c->val, (size_t)64 << 20);
        tern_buf_init(&c->cnt_val, 64);
        c->trend = calloc(eng->conf.trending_size + 1, sizeof(*c->trend));
        c->members = calloc(eng->conf.top_neighbors + 1, sizeof(*c->members));
        c->pool = tern_pool_new();
        c->top_bytes =
            ((size_t)eng->conf.top_neighbors + 1) * sizeof(feat_top_t);
        if (!c->trend || !c->members || !c->pool || tables_init(c))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if ((code = layout_check(eng, errstr, errstr_size)))
                return code;
        return trending_load(eng, errstr, errstr_size);
}

void feat_cooc_destroy(feat_engine_t *eng) {
        feat_cooc_t *c = &eng->cooc;
        items_free(c);
        free(c->dirty_items);
        free(c->dirty_pairs);
        free(c->dirty_tops);
        free(c->members);
        free(c->trend);
        c->dirty_items = NULL;
        c->dirty_pairs = NULL;
        c->dirty_tops = NULL;
        c->members = NULL;
        c->trend = NULL;
        c->cap_dirty_items = 0;
        c->cap_dirty_pairs = 0;
        c->cap_dirty_tops = 0;
        tern_buf_free(&c->key);
        tern_buf_free(&c->val);
        tern_buf_free(&c->cnt_val);
}

tern_code_t feat_cooc_reset(feat_engine_t *eng, char *errstr,
                            size_t errstr_size) {
        feat_cooc_destroy(eng);
        return feat_cooc_init(eng, errstr, errstr_size);
}
