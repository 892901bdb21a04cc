#include "ingest_gen.h"

#include <math.h>
#include <stdlib.h>

#define GEN_DEFAULT_START_MS 1794355200000LL /* 2026-11-11 00:00 UTC */
#define GEN_PENDING          256 /* recent impressions a click may answer */
#define GEN_CAMPAIGNS        64
#define GEN_SESSION_MEAN     8.0 /* events per session */
#define GEN_STAY_IN_CAT      0.8 /* chance a session event stays in its category */

typedef struct gen_user {
        uint32_t cat;      /* category of the current session */
        uint32_t left;     /* events left in the session */
        uint64_t imp;      /* most recent unclicked impression + 1, 0 none */
        uint32_t imp_item; /* the item that impression showed */
} gen_user_t;

struct ingest_gen {
        ingest_gen_conf_t c;
        uint64_t s[4]; /* xoshiro256** state */

        double *item_cdf;    /* Zipf CDF over popularity ranks */
        uint32_t *rank_item; /* rank -> item id (hot items scattered) */
        uint32_t *item_cat;  /* item id -> category, fixed */
        uint32_t *cat_start; /* categories + 1 offsets into cat_items */
        uint32_t *cat_items; /* items grouped by category, by rank */
        double *cat_cdf;     /* Zipf CDF within each category's segment */
        gen_user_t *users;

        uint32_t pend[GEN_PENDING]; /* users with a recent impression */
        uint32_t n_pend;
        uint64_t seq;
        uint64_t n_imp;
        double t_ms; /* event time since start; double keeps the mean */

        char event_id[24], user_id[16], item_id[16], category_id[16];
        char impression_id[24], campaign_id[16];
};

static const char *const devices[] = {"ios", "android", "web", "tablet"};
static const char *const channels[] = {"organic", "search", "push", "ad",
                                       "social"};
static const char *const placements[] = {"feed", "banner", "sidebar", "detail"};
/* The page an event of each type happens on, in tern_event_type_t order. */
static const char *const pages[TERN_EV__CNT] = {"item", "home",     "cart",
                                                "item", "checkout", "home"};

void ingest_gen_conf_default(ingest_gen_conf_t *c) {
        c->seed = 1;
        c->users = 100000;
        c->items = 50000;
        c->categories = 500;
        c->zipf_s = 1.1;
        c->start_ts_ms = GEN_DEFAULT_START_MS;
        c->mean_gap_ms = 2;
}

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(ingest_gen_t *g) {
        uint64_t *s = g->s;
        uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return r;
}

/* Uniform in [0, 1). */
static double rng_unit(ingest_gen_t *g) {
        return (double)(rng_next(g) >> 11) * 0x1.0p-53;
}

static uint32_t rng_below(ingest_gen_t *g, uint32_t n) {
        return (uint32_t)(((rng_next(g) >> 32) * (uint64_t)n) >> 32);
}

/* A stable per-id hash, independent of the event stream. */
static uint64_t id_hash(const ingest_gen_t *g, uint64_t id) {
        uint64_t x = g->c.seed ^ (id * 0xd6e8feb86659fd93ULL);
        return splitmix64(&x);
}

/* First index in cdf[0..n) whose value exceeds u. */
static uint32_t cdf_search(const double *cdf, uint32_t n, double u) {
        uint32_t lo = 0, hi = n - 1;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] > u)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return lo;
}

static uint32_t gcd32(uint32_t a, uint32_t b) {
        while (b) {
                uint32_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

static void build_item_zipf(ingest_gen_t *g) {
        uint32_t n = g->c.items, step = (uint32_t)(n * 0.618) + 1;
        double sum = 0;
        for (uint32_t r = 0; r < n; r++)
                sum += g->item_cdf[r] = pow((double)r + 1, -g->c.zipf_s);
        for (uint32_t r = 0; r < n; r++)
                g->item_cdf[r] =
                    (r ? g->item_cdf[r - 1] : 0) + g->item_cdf[r] / sum;
        g->item_cdf[n - 1] = 1.0;
        /* a stride coprime to n walks every id once: hot ids spread out */
        while (gcd32(step, n) != 1)
                step++;
        for (uint32_t r = 0; r < n; r++)
                g->rank_item[r] = (uint32_t)(((uint64_t)r * step) % n);
        for (uint32_t i = 0; i < n; i++)
                g->item_cat[i] = (uint32_t)(id_hash(g, i) % g->c.categories);
}

/* Items of each category in rank order, with the Zipf weights of their
 * global ranks renormalised within the category. */
static void build_cat_zipf(ingest_gen_t *g) {
        uint32_t n = g->c.items, nc = g->c.categories;
        for (uint32_t r = 0; r < n; r++)
                g->cat_start[g->item_cat[g->rank_item[r]] + 1]++;
        for (uint32_t c = 0; c < nc; c++)
                g->cat_start[c + 1] += g->cat_start[c];
        for (uint32_t r = 0; r < n; r++) {
                uint32_t c = g->item_cat[g->rank_item[r]];
                uint32_t at = g->cat_start[c]++;
                g->cat_items[at] = g->rank_item[r];
                g->cat_cdf[at] = pow((double)r + 1, -g->c.zipf_s);
        }
        /* the fill advanced every start to the next one's: shift back */
        for (uint32_t c = nc; c > 0; c--)
                g->cat_start[c] = g->cat_start[c - 1];
        g->cat_start[0] = 0;
        for (uint32_t c = 0; c < nc; c++) {
                uint32_t a = g->cat_start[c], b = g->cat_start[c + 1];
                double sum = 0, acc = 0;
                for (uint32_t i = a; i < b; i++)
                        sum += g->cat_cdf[i];
                for (uint32_t i = a; i < b; i++)
                        g->cat_cdf[i] = (acc += g->cat_cdf[i]) / sum;
                if (b > a)
                        g->cat_cdf[b - 1] = 1.0;
        }
}

static void conf_fill(ingest_gen_conf_t *c, const ingest_gen_conf_t *in) {
        ingest_gen_conf_default(c);
        if (!in)
                return;
        *c = *in;
        /* zero sizes make no shop: take the defaults */
        if (!c->users)
                c->users = 100000;
        if (!c->items)
                c->items = 50000;
        if (!c->categories)
                c->categories = 500;
        if (!(c->zipf_s > 0))
                c->zipf_s = 1.1;
        if (c->mean_gap_ms < 0)
                c->mean_gap_ms = 0;
}

ingest_gen_t *ingest_gen_new(const ingest_gen_conf_t *conf) {
        ingest_gen_t *g = calloc(1, sizeof(*g));
        uint64_t x;
        if (!g)
                return NULL;
        conf_fill(&g->c, conf);
        x = g->c.seed;
        for (int i = 0; i < 4; i++)
                g->s[i] = splitmix64(&x);
        g->item_cdf = malloc(sizeof(double) * g->c.items);
        g->rank_item = malloc(sizeof(uint32_t) * g->c.items);
        g->item_cat = malloc(sizeof(uint32_t) * g->c.items);
        g->cat_start = calloc((size_t)g->c.categories + 1, sizeof(uint32_t));
        g->cat_items = malloc(sizeof(uint32_t) * g->c.items);
        g->cat_cdf = malloc(sizeof(double) * g->c.items);
        g->users = calloc(g->c.users, sizeof(gen_user_t));
        if (!g->item_cdf || !g->rank_item || !g->item_cat || !g->cat_start ||
            !g->cat_items || !g->cat_cdf || !g->users) {
                ingest_gen_destroy(g);
                return NULL;
        }
        build_item_zipf(g);
        build_cat_zipf(g);
        return g;
}

void ingest_gen_destroy(ingest_gen_t *g) {
        if (!g)
                return;
        free(g->item_cdf);
        free(g->rank_item);
        free(g->item_cat);
        free(g->cat_start);
        free(g->cat_items);
        free(g->cat_cdf);
        free(g->users);
        free(g);
}

/* "<prefix><v>" without printf: this runs once per field per event. */
static tern_str_t fmt_id(char *buf, char prefix, uint64_t v) {
        char tmp[24];
        int n = 0, len = 0;
        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        if (prefix)
                buf[len++] = prefix;
        while (n)
                buf[len++] = tmp[--n];
        return (tern_str_t){buf, (uint32_t)len};
}

static uint32_t pick_item(ingest_gen_t *g) {
        return g->rank_item[cdf_search(g->item_cdf, g->c.items, rng_unit(g))];
}

static uint32_t pick_item_in(ingest_gen_t *g, uint32_t cat) {
        uint32_t a = g->cat_start[cat], n = g->cat_start[cat + 1] - a;
        return g->cat_items[a + cdf_search(g->cat_cdf + a, n, rng_unit(g))];
}

/* Density ~ 1/sqrt(x): some users are far busier than others, mildly. */
static uint32_t pick_user(ingest_gen_t *g) {
        double u = rng_unit(g);
        uint32_t i = (uint32_t)(u * u * g->c.users);
        return i < g->c.users ? i : g->c.users - 1;
}

/* A session opens on a popular item and mostly stays in its category. */
static uint32_t session_item(ingest_gen_t *g, gen_user_t *u) {
        uint32_t item;
        if (u->left == 0) {
                item = pick_item(g);
                u->cat = g->item_cat[item];
                u->left =
                    1 + (uint32_t)(-log1p(-rng_unit(g)) * GEN_SESSION_MEAN);
                u->left--;
                return item;
        }
        u->left--;
        if (rng_unit(g) < GEN_STAY_IN_CAT)
                return pick_item_in(g, u->cat);
        return pick_item(g);
}

static tern_event_type_t pick_type(ingest_gen_t *g) {
        /* VIEW 70, IMPRESSION 15, CLICK 5, CART 5, FAVORITE 3, PURCHASE 2 */
        uint32_t r = rng_below(g, 100);
        if (r < 70)
                return TERN_EV_VIEW;
        if (r < 85)
                return TERN_EV_IMPRESSION;
        if (r < 90)
                return TERN_EV_CLICK;
        if (r < 95)
                return TERN_EV_CART;
        if (r < 98)
                return TERN_EV_FAVORITE;
        return TERN_EV_PURCHASE;
}

static void remember_impression(ingest_gen_t *g, uint32_t user) {
        if (g->n_pend < GEN_PENDING)
                g->pend[g->n_pend++] = user;
        else
                g->pend[rng_below(g, GEN_PENDING)] = user;
}

/* A user with an unclicked recent impression, or UINT32_MAX. */
static uint32_t take_clicker(ingest_gen_t *g) {
        while (g->n_pend > 0) {
                uint32_t i = rng_below(g, g->n_pend), u = g->pend[i];
                g->pend[i] = g->pend[--g->n_pend];
                if (g->users[u].imp)
                        return u;
        }
        return UINT32_MAX;
}

static void set_ids(ingest_gen_t *g, tern_event_t *ev, uint32_t user,
                    uint32_t item) {
        ev->event_id = fmt_id(g->event_id, 'e', g->seq);
        ev->user_id = fmt_id(g->user_id, 'u', user);
        ev->item_id = fmt_id(g->item_id, 'i', item);
        ev->category_id = fmt_id(g->category_id, 'c', g->item_cat[item]);
}

static void set_context(ingest_gen_t *g, tern_event_t *ev, uint32_t user) {
        static const tern_str_t keys[4] = {
            {"device", 6}, {"channel", 7}, {"page", 4}, {"placement", 9}};
        /* organic half the time, search a fifth, the rest a tenth each */
        static const uint8_t channel_of[10] = {0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
        /* a user keeps a device */
        ev->context_val[0] = tern_str_c(devices[id_hash(g, user) % 4]);
        ev->context_val[1] = tern_str_c(channels[channel_of[rng_below(g, 10)]]);
        ev->context_val[2] = tern_str_c(pages[ev->type]);
        ev->context_val[3] = tern_str_c(placements[rng_below(g, 4)]);
        for (int i = 0; i < 4; i++)
                ev->context_key[i] = keys[i];
        ev->n_context = 4;
}

static void set_purchase(ingest_gen_t *g, tern_event_t *ev, uint32_t item) {
        /* price fixed by item, log-uniform 2..500 */
        double u = (double)(id_hash(g, item + 0x9e37ULL) >> 11) * 0x1.0p-53;
        double r = rng_unit(g);
        ev->has_price = 1;
        ev->price = round(exp(log(2.0) + u * log(250.0)) * 100) / 100;
        ev->has_quantity = 1;
        ev->quantity = 1 + (r < 0.15) + (r < 0.05);
}

static void set_impression(ingest_gen_t *g, tern_event_t *ev, uint32_t user,
                           uint32_t item) {
        gen_user_t *u = &g->users[user];
        u->imp = ++g->n_imp;
        u->imp_item = item;
        remember_impression(g, user);
        ev->impression_id = fmt_id(g->impression_id, 'm', u->imp - 1);
        ev->campaign_id = fmt_id(g->campaign_id, 'k', item % GEN_CAMPAIGNS);
}

/* The click answers the user's latest impression, at most once. */
static void set_click(ingest_gen_t *g, tern_event_t *ev, uint32_t user) {
        gen_user_t *u = &g->users[user];
        ev->impression_id = fmt_id(g->impression_id, 'm', u->imp - 1);
        ev->campaign_id =
            fmt_id(g->campaign_id, 'k', u->imp_item % GEN_CAMPAIGNS);
        u->imp = 0;
}

void ingest_gen_next(ingest_gen_t *g, tern_event_t *ev) {
        tern_event_type_t type = pick_type(g);
        uint32_t user = UINT32_MAX, item;
        tern_event_clear(ev);
        g->t_ms += -log1p(-rng_unit(g)) * (double)g->c.mean_gap_ms;
        ev->ts_ms = g->c.start_ts_ms + (int64_t)g->t_ms;
        if (type == TERN_EV_CLICK)
                user = take_clicker(g);
        if (user == UINT32_MAX) {
                /* no impression to answer yet: show one instead */
                if (type == TERN_EV_CLICK)
                        type = TERN_EV_IMPRESSION;
                user = pick_user(g);
                item = session_item(g, &g->users[user]);
        } else {
                item = g->users[user].imp_item;
        }
        ev->type = type;
        set_ids(g, ev, user, item);
        if (type == TERN_EV_IMPRESSION)
                set_impression(g, ev, user, item);
        else if (type == TERN_EV_CLICK)
                set_click(g, ev, user);
        else if (type == TERN_EV_PURCHASE)
                set_purchase(g, ev, item);
        set_context(g, ev, user);
        g->seq++;
}
