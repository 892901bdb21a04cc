/*
 * model_ctr — cross parsing and the feature list of an impression (the
 * feature definitions are in model_ctr.h).
 *
 * Derived values (hour, day of week, profile buckets) have few values:
 * their own features F(hour, h) ... are hashed once into tables at
 * model_ctr_new(). A cross that reads one gets it formatted as a small
 * decimal string, so it reads it like any other field value.
 */
#include "model_ctr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_hash.h"

typedef enum field_kind {
        FK_USER,
        FK_ITEM,
        FK_CATEGORY,
        FK_CAMPAIGN,
        FK_HOUR,
        FK_DOW,
        FK_SESSIONS,
        FK_COUNT, /* + event type */
        FK_CONTEXT
} field_kind_t;

/* Lower-case event type names: the count_<type> features. */
static const char *const count_names[TERN_EV__CNT] = {
    "count_view",     "count_click",    "count_cart",
    "count_favorite", "count_purchase", "count_impression"};

typedef struct field_ref {
        field_kind_t kind;
        int type;         /* FK_COUNT: the event type */
        const char *name; /* into model_ctr_t.spec, not NUL-terminated */
        size_t len;
} field_ref_t;

typedef struct cross {
        field_ref_t a, b;
} cross_t;

/* bias, 4 ids, context, hour, dow, counts, sessions, crosses */
_Static_assert(1 + 4 + TERN_EVENT_MAX_CONTEXT + 2 + TERN_EV__CNT + 1 +
                       MODEL_CTR_MAX_CROSSES <=
                   MODEL_CTR_MAX_FEATURES,
               "MODEL_CTR_MAX_FEATURES too small");

/* floor(log2(1 + c)) of any uint64_t c: 0..64 */
#define BUCKETS 65

struct model_ctr {
        uint32_t bits;
        uint32_t n_cross;
        cross_t cross[MODEL_CTR_MAX_CROSSES];
        char *spec; /* copy of conf->crosses: names point into it */
        /* F(field, value) of the fields with few values, hashed once at
         * model_ctr_new(): hashing them took most of an example's cost. */
        uint32_t f_bias, f_hour[24], f_dow[7], f_sessions[BUCKETS],
            f_count[TERN_EV__CNT][BUCKETS];
};

static void fixed_features(model_ctr_t *m);

void model_ctr_conf_default(model_ctr_conf_t *c) {
        c->bits = 20;
        c->crosses = "user*category,placement*item";
}

static int name_is(const char *s, size_t n, const char *lit) {
        return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int name_chars_ok(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                      c == '.'))
                        return 0;
        }
        return 1;
}

static void field_resolve(field_ref_t *f) {
        static const struct {
                const char *name;
                field_kind_t kind;
        } fixed[] = {{"user", FK_USER},         {"item", FK_ITEM},
                     {"category", FK_CATEGORY}, {"campaign", FK_CAMPAIGN},
                     {"hour", FK_HOUR},         {"dow", FK_DOW},
                     {"sessions", FK_SESSIONS}};
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                if (name_is(f->name, f->len, fixed[i].name)) {
                        f->kind = fixed[i].kind;
                        return;
                }
        for (int t = 0; t < TERN_EV__CNT; t++)
                if (name_is(f->name, f->len, count_names[t])) {
                        f->kind = FK_COUNT;
                        f->type = t;
                        return;
                }
        f->kind = FK_CONTEXT;
}

static void trim(const char **s, size_t *n) {
        while (*n && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*n)--;
        }
        while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
                (*n)--;
}

/* Checks one side of a cross; the message names the whole cross. */
static tern_code_t side_check(const char *name, size_t n, const char *cr,
                              size_t cr_len, char *errstr, size_t errstr_size) {
        const char *why = NULL;
        if (n == 0)
                why = "an empty field name";
        else if (n > MODEL_CTR_MAX_NAME)
                why = "a field name longer than 64 bytes";
        else if (!name_chars_ok(name, n))
                why = "a field name with characters other than letters, "
                      "digits, '_', '-', '.'";
        else if (name_is(name, n, "bias"))
                why = "\"bias\", which is not a field";
        if (!why)
                return TERN_OK;
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "ctr cross \"%.*s\": %s (a cross is field*field, "
                         "fields: user, item, category, campaign, hour, dow, "
                         "sessions, count_<type> or a context key)",
                         (int)cr_len, cr, why);
}

static int same_name(const field_ref_t *x, const field_ref_t *y) {
        return x->len == y->len && memcmp(x->name, y->name, x->len) == 0;
}

/* Parses one "a*b" (s, n: trimmed, not NUL-terminated) into m. */
static tern_code_t cross_parse(model_ctr_t *m, const char *s, size_t n,
                               char *errstr, size_t errstr_size) {
        const char *star = memchr(s, '*', n);
        cross_t *c;
        tern_code_t code;
        if (!star || memchr(star + 1, '*', n - (size_t)(star + 1 - s)))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ctr cross \"%.*s\": must be two field names "
                                 "joined by one '*', e.g. user*category",
                                 (int)n, s);
        if (m->n_cross == MODEL_CTR_MAX_CROSSES)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ctr cross \"%.*s\": more than %d crosses",
                                 (int)n, s, MODEL_CTR_MAX_CROSSES);
        c = &m->cross[m->n_cross];
        c->a.name = s;
        c->a.len = (size_t)(star - s);
        c->b.name = star + 1;
        c->b.len = n - c->a.len - 1;
        trim(&c->a.name, &c->a.len);
        trim(&c->b.name, &c->b.len);
        if ((code =
                 side_check(c->a.name, c->a.len, s, n, errstr, errstr_size)) ||
            (code = side_check(c->b.name, c->b.len, s, n, errstr, errstr_size)))
                return code;
        if (same_name(&c->a, &c->b))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "ctr cross \"%.*s\": a field crossed with "
                                 "itself",
                                 (int)n, s);
        /* b*a carries the same information as a*b: counting it twice
         * would only double that feature's learning rate. */
        for (uint32_t k = 0; k < m->n_cross; k++)
                if ((same_name(&m->cross[k].a, &c->a) &&
                     same_name(&m->cross[k].b, &c->b)) ||
                    (same_name(&m->cross[k].a, &c->b) &&
                     same_name(&m->cross[k].b, &c->a)))
                        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                         "ctr cross \"%.*s\": listed twice",
                                         (int)n, s);
        field_resolve(&c->a);
        field_resolve(&c->b);
        m->n_cross++;
        return TERN_OK;
}

static tern_code_t crosses_parse(model_ctr_t *m, char *errstr,
                                 size_t errstr_size) {
        const char *p = m->spec, *end;
        size_t n;
        tern_code_t code;
        n = strlen(p);
        trim(&p, &n);
        if (n == 0)
                return TERN_OK; /* no crosses */
        end = p + n;
        while (p <= end) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                const char *s = p;
                size_t len = (size_t)((comma ? comma : end) - p);
                trim(&s, &len);
                if (len == 0)
                        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                         "ctr crosses \"%s\": an empty "
                                         "cross between commas",
                                         m->spec);
                if ((code = cross_parse(m, s, len, errstr, errstr_size)))
                        return code;
                if (!comma)
                        break;
                p = comma + 1;
        }
        return TERN_OK;
}

model_ctr_t *model_ctr_new(const model_ctr_conf_t *c, char *errstr,
                           size_t errstr_size) {
        model_ctr_t *m;
        if (c->bits < 1 || c->bits > MODEL_HASH_MAX_BITS) {
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "ctr bits must be between 1 and %d (got %u)",
                          MODEL_HASH_MAX_BITS, c->bits);
                return NULL;
        }
        m = calloc(1, sizeof(*m));
        if (!m || !(m->spec = strdup(c->crosses ? c->crosses : ""))) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "ctr: out of memory");
                goto fail;
        }
        m->bits = c->bits;
        if (crosses_parse(m, errstr, errstr_size) != TERN_OK)
                goto fail;
        fixed_features(m);
        return m;
fail:
        model_ctr_destroy(m);
        return NULL;
}

void model_ctr_destroy(model_ctr_t *m) {
        if (!m)
                return;
        free(m->spec);
        free(m);
}

uint32_t model_ctr_n_crosses(const model_ctr_t *m) {
        return m->n_cross;
}

void model_ctr_input_from_event(model_ctr_input_t *in, const tern_event_t *ev,
                                const feat_profile_t *profile) {
        in->user = ev->user_id;
        in->item = ev->item_id;
        in->category = ev->category_id;
        in->campaign = ev->campaign_id;
        in->n_context = ev->n_context;
        in->context_key = ev->context_key;
        in->context_val = ev->context_val;
        in->ts_ms = ev->ts_ms;
        in->profile = profile;
}

/* ---- features ---- */

typedef struct dec {
        char s[24];
        uint32_t len;
} dec_t;

/* Values computed once per example, as decimal strings. */
typedef struct derived {
        dec_t hour, dow, sessions, count[TERN_EV__CNT];
} derived_t;

static void dec_set(dec_t *d, uint64_t v) {
        char tmp[24];
        uint32_t n = 0;
        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        for (uint32_t i = 0; i < n; i++)
                d->s[i] = tmp[n - 1 - i];
        d->len = n;
}

/* floor(log2(1 + c)) */
static uint64_t log2_bucket(uint64_t c) {
        if (c == UINT64_MAX)
                return 64;
        return 63 - (uint64_t)__builtin_clzll(c + 1);
}

/* Hour of day (0..23) and day of week (0..6, Monday 0) of ts_ms, UTC. */
static void clock_fields(int64_t ts_ms, uint64_t *hour, uint64_t *dow) {
        const int64_t day_ms = 86400000;
        int64_t day = ts_ms / day_ms, rem = ts_ms % day_ms;
        if (rem < 0) { /* floor division for times before 1970 */
                rem += day_ms;
                day--;
        }
        *hour = (uint64_t)(rem / 3600000);
        /* 1970-01-01 was a Thursday: 3 with Monday = 0. */
        *dow = (uint64_t)(((day + 3) % 7 + 7) % 7);
}

static uint32_t fixed_one(const model_ctr_t *m, const char *field, uint64_t v) {
        dec_t d;
        dec_set(&d, v);
        return model_hash_feature(field, strlen(field), d.s, d.len, m->bits);
}

static void fixed_features(model_ctr_t *m) {
        m->f_bias = model_hash_feature("bias", 4, "", 0, m->bits);
        for (uint64_t v = 0; v < 24; v++)
                m->f_hour[v] = fixed_one(m, "hour", v);
        for (uint64_t v = 0; v < 7; v++)
                m->f_dow[v] = fixed_one(m, "dow", v);
        for (uint64_t v = 0; v < BUCKETS; v++) {
                m->f_sessions[v] = fixed_one(m, "sessions", v);
                for (int t = 0; t < TERN_EV__CNT; t++)
                        m->f_count[t][v] = fixed_one(m, count_names[t], v);
        }
}

static void derive(const model_ctr_input_t *in, derived_t *d) {
        uint64_t hour, dow;
        clock_fields(in->ts_ms, &hour, &dow);
        dec_set(&d->hour, hour);
        dec_set(&d->dow, dow);
        if (!in->profile)
                return;
        dec_set(&d->sessions, log2_bucket(in->profile->sessions));
        for (int t = 0; t < TERN_EV__CNT; t++)
                dec_set(&d->count[t], log2_bucket(in->profile->events[t]));
}

static uint32_t n_context(const model_ctr_input_t *in) {
        if (!in->context_key || !in->context_val)
                return 0;
        return in->n_context < TERN_EVENT_MAX_CONTEXT ? in->n_context
                                                      : TERN_EVENT_MAX_CONTEXT;
}

static tern_str_t context_lookup(const model_ctr_input_t *in, const char *key,
                                 size_t klen) {
        for (uint32_t i = 0; i < n_context(in); i++) {
                const tern_str_t *k = &in->context_key[i];
                if (k->ptr && k->len == klen && !memcmp(k->ptr, key, klen))
                        return in->context_val[i];
        }
        return TERN_STR_NULL;
}

static tern_str_t dec_str(const dec_t *d) {
        tern_str_t s = {d->s, d->len};
        return s;
}

/* The value of one cross side; ptr NULL when absent. */
static tern_str_t field_value(const field_ref_t *f, const model_ctr_input_t *in,
                              const derived_t *d) {
        switch (f->kind) {
        case FK_USER:
                return in->user;
        case FK_ITEM:
                return in->item;
        case FK_CATEGORY:
                return in->category;
        case FK_CAMPAIGN:
                return in->campaign;
        case FK_HOUR:
                return dec_str(&d->hour);
        case FK_DOW:
                return dec_str(&d->dow);
        case FK_SESSIONS:
                return in->profile ? dec_str(&d->sessions) : TERN_STR_NULL;
        case FK_COUNT:
                return in->profile ? dec_str(&d->count[f->type])
                                   : TERN_STR_NULL;
        case FK_CONTEXT:
                return context_lookup(in, f->name, f->len);
        }
        return TERN_STR_NULL;
}

static int is_derived(const field_ref_t *f) {
        return f->kind == FK_HOUR || f->kind == FK_DOW ||
               f->kind == FK_SESSIONS || f->kind == FK_COUNT;
}

static uint32_t add_field(const model_ctr_t *m, uint32_t *idx, uint32_t n,
                          const char *field, tern_str_t v) {
        if (!v.ptr)
                return n;
        idx[n] =
            model_hash_feature(field, strlen(field), v.ptr, v.len, m->bits);
        return n + 1;
}

uint32_t model_ctr_features(const model_ctr_t *m, const model_ctr_input_t *in,
                            uint32_t *idx) {
        derived_t d;
        uint32_t n = 0;
        uint64_t hour, dow;
        int derived = 0;
        clock_fields(in->ts_ms, &hour, &dow);
        idx[n++] = m->f_bias;
        n = add_field(m, idx, n, "user", in->user);
        n = add_field(m, idx, n, "item", in->item);
        n = add_field(m, idx, n, "category", in->category);
        n = add_field(m, idx, n, "campaign", in->campaign);
        for (uint32_t i = 0; i < n_context(in); i++) {
                tern_str_t k = in->context_key[i], v = in->context_val[i];
                if (k.ptr && v.ptr)
                        idx[n++] = model_hash_context(k.ptr, k.len, v.ptr,
                                                      v.len, m->bits);
        }
        idx[n++] = m->f_hour[hour];
        idx[n++] = m->f_dow[dow];
        if (in->profile) {
                for (int t = 0; t < TERN_EV__CNT; t++)
                        idx[n++] =
                            m->f_count[t][log2_bucket(in->profile->events[t])];
                idx[n++] = m->f_sessions[log2_bucket(in->profile->sessions)];
        }
        for (uint32_t k = 0; k < m->n_cross; k++) {
                const cross_t *c = &m->cross[k];
                tern_str_t va, vb;
                if (!derived && (is_derived(&c->a) || is_derived(&c->b))) {
                        derive(in, &d);
                        derived = 1;
                }
                va = field_value(&c->a, in, &d);
                vb = field_value(&c->b, in, &d);
                if (!va.ptr || !vb.ptr)
                        continue;
                idx[n++] = model_hash_cross(c->a.name, c->a.len, va.ptr, va.len,
                                            c->b.name, c->b.len, vb.ptr, vb.len,
                                            m->bits);
        }
        return n;
}

uint32_t model_ctr_item_features(const model_ctr_t *m,
                                 const model_ctr_input_t *in, uint32_t *idx) {
        derived_t d;
        uint32_t n = 0;
        int derived = 0;
        if (!in->item.ptr)
                return 0;
        n = add_field(m, idx, n, "item", in->item);
        for (uint32_t k = 0; k < m->n_cross; k++) {
                const cross_t *c = &m->cross[k];
                tern_str_t va, vb;
                if (c->a.kind != FK_ITEM && c->b.kind != FK_ITEM)
                        continue;
                /* the derived strings (hour, counts) cost more than the
                 * hash: only for crosses that read them */
                if (!derived && (is_derived(&c->a) || is_derived(&c->b))) {
                        derive(in, &d);
                        derived = 1;
                }
                va = field_value(&c->a, in, &d);
                vb = field_value(&c->b, in, &d);
                if (!va.ptr || !vb.ptr)
                        continue;
                idx[n++] = model_hash_cross(c->a.name, c->a.len, va.ptr, va.len,
                                            c->b.name, c->b.len, vb.ptr, vb.len,
                                            m->bits);
        }
        return n;
}

/* ---- many items for one input ---- */

/* An item cross with its other side resolved. */
typedef struct item_cross {
        const cross_t *c;
        int item_is_a;
        tern_str_t other; /* borrowed from the input, or own[] */
        char own[sizeof(((dec_t *)0)->s)];
} item_cross_t;

_Static_assert(MODEL_CTR_ITEM_MEMO_ID == 24, "item_index compares 3 words");

typedef struct memo_entry {
        uint64_t w[MODEL_CTR_ITEM_MEMO_ID / 8]; /* the id, zero-padded */
        uint32_t len;                           /* id length + 1; 0 = empty */
        uint32_t idx;
} memo_entry_t;

struct model_ctr_items {
        uint32_t n;
        item_cross_t cross[MODEL_CTR_MAX_CROSSES];
        memo_entry_t memo[MODEL_CTR_ITEM_MEMO];
};

model_ctr_items_t *model_ctr_items_new(void) {
        return calloc(1, sizeof(model_ctr_items_t));
}

void model_ctr_items_destroy(model_ctr_items_t *c) {
        free(c);
}

void model_ctr_items_prepare(const model_ctr_t *m, model_ctr_items_t *c,
                             const model_ctr_input_t *in) {
        derived_t d;
        int derived = 0;
        c->n = 0;
        for (uint32_t k = 0; k < m->n_cross; k++) {
                const cross_t *x = &m->cross[k];
                int item_is_a = x->a.kind == FK_ITEM;
                const field_ref_t *o = item_is_a ? &x->b : &x->a;
                item_cross_t *ic = &c->cross[c->n];
                if (!item_is_a && x->b.kind != FK_ITEM)
                        continue;
                if (!derived && is_derived(o)) {
                        derive(in, &d);
                        derived = 1;
                }
                ic->other = field_value(o, in, &d);
                if (!ic->other.ptr)
                        continue;    /* the cross is skipped for every item */
                if (is_derived(o)) { /* d is gone after this call */
                        memcpy(ic->own, ic->other.ptr, ic->other.len);
                        ic->other.ptr = ic->own;
                }
                ic->c = x;
                ic->item_is_a = item_is_a;
                c->n++;
        }
}

/* The id's 8-byte words, zero-padded; a word-wise hash of them. */
static inline uint32_t memo_slot(const uint64_t *w, uint32_t len) {
        uint64_t h = (uint64_t)len * 0x9e3779b97f4a7c15ULL;
        for (int i = 0; i < MODEL_CTR_ITEM_MEMO_ID / 8; i++)
                h = (h ^ w[i]) * 0xff51afd7ed558ccdULL;
        return (uint32_t)(h >> 40) & (MODEL_CTR_ITEM_MEMO - 1);
}

/* Inline copy and compare: ids are a few bytes, where the calls to
 * memcpy and memcmp cost more than the work. */
static uint32_t item_index(const model_ctr_t *m, model_ctr_items_t *c,
                           const char *item, uint32_t len) {
        uint64_t w[MODEL_CTR_ITEM_MEMO_ID / 8] = {0};
        uint8_t *wb = (uint8_t *)w;
        memo_entry_t *e;
        if (len > MODEL_CTR_ITEM_MEMO_ID)
                return model_hash_feature("item", 4, item, len, m->bits);
        for (uint32_t i = 0; i < len; i++)
                wb[i] = (uint8_t)item[i];
        e = &c->memo[memo_slot(w, len)];
        if (e->len != len + 1 || e->w[0] != w[0] || e->w[1] != w[1] ||
            e->w[2] != w[2]) {
                e->w[0] = w[0];
                e->w[1] = w[1];
                e->w[2] = w[2];
                e->len = len + 1;
                e->idx = model_hash_feature("item", 4, item, len, m->bits);
        }
        return e->idx;
}

uint32_t model_ctr_items_features(const model_ctr_t *m, model_ctr_items_t *c,
                                  const char *item, uint32_t len,
                                  uint32_t *idx) {
        uint32_t n = 0;
        if (!item)
                return 0;
        idx[n++] = item_index(m, c, item, len);
        for (uint32_t k = 0; k < c->n; k++) {
                const item_cross_t *ic = &c->cross[k];
                const cross_t *x = ic->c;
                tern_str_t va = {item, len}, vb = ic->other;
                if (!ic->item_is_a) {
                        va = ic->other;
                        vb = (tern_str_t){item, len};
                }
                idx[n++] = model_hash_cross(x->a.name, x->a.len, va.ptr, va.len,
                                            x->b.name, x->b.len, vb.ptr, vb.len,
                                            m->bits);
        }
        return n;
}
