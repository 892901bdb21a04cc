/* rt_control_parse — strict validation of control records (rt_control.h):
 * a flat JSON object reader and the op table. Shared by the pipeline and
 * `tern control`, so what the CLI accepts is what tern applies. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ingest/ingest_jwalk.h"
#include "rt_control.h"

#define MAX_MEMBERS 16

typedef enum jtype { J_STR, J_NUM, J_BOOL, J_NULL } jtype_t;

typedef struct member {
        char key[64];
        jtype_t type;
        char *str; /* J_STR: decoded, NUL-terminated (in the scratch) */
        uint32_t len;
        double num;
        int integral; /* J_NUM written without fraction or exponent */
        int used;
} member_t;

typedef struct jreader {
        const char *p, *end;
        char *scratch; /* decoded strings */
        size_t scratch_len, scratch_cap;
        const char *err;
} jreader_t;

static void skip_ws(jreader_t *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
                                 *r->p == '\n' || *r->p == '\r'))
                r->p++;
}

/* One escape at r->p (the backslash) appended to out, decoded by
 * ingest_jwalk (never longer than the escape's text). \u0000 is refused:
 * ids are C strings. */
static int read_escape(jreader_t *r, char *out, size_t *n) {
        uint32_t cp;
        size_t used;
        int byte;
        const char *why;
        if (r->end - r->p < 2)
                return r->err = "unterminated string", -1;
        if (r->p[1] != 'u') {
                if ((byte = jw_escape_byte(r->p[1])) < 0)
                        return r->err = "bad escape in a string", -1;
                out[(*n)++] = (char)byte;
                r->p += 2;
                return 0;
        }
        if ((why = jw_unicode_escape(r->p + 2, r->end, &cp, &used)))
                return r->err = why, -1;
        if (cp == 0)
                return r->err = "\\u0000 in a string", -1;
        *n += jw_utf8(cp, out + *n);
        r->p += 2 + used;
        return 0;
}

/* A string at r->p (the opening quote) decoded into the scratch. Escaped
 * output never exceeds the input, so the scratch (sized to the record)
 * always has room. */
static char *read_string(jreader_t *r, uint32_t *len) {
        char *out = r->scratch + r->scratch_len;
        size_t n = 0;
        r->p++;
        while (r->p < r->end && *r->p != '"') {
                unsigned char c = (unsigned char)*r->p;
                if (c < 0x20)
                        return r->err = "control character in a string", NULL;
                if (c != '\\') {
                        out[n++] = (char)c;
                        r->p++;
                        continue;
                }
                if (read_escape(r, out, &n))
                        return NULL;
        }
        if (r->p >= r->end)
                return r->err = "unterminated string", NULL;
        r->p++;
        out[n] = '\0';
        r->scratch_len += n + 1;
        *len = (uint32_t)n;
        return out;
}

/* JSON's number grammar exactly, then strtod. */
static int read_number(jreader_t *r, member_t *m) {
        const char *s = r->p;
        char buf[64];
        m->integral = 1;
        if (r->p < r->end && *r->p == '-')
                r->p++;
        if (r->p >= r->end || !isdigit((unsigned char)*r->p))
                return r->err = "bad number", -1;
        if (*r->p == '0' && r->end - r->p > 1 &&
            isdigit((unsigned char)r->p[1]))
                return r->err = "bad number (leading zero)", -1;
        while (r->p < r->end && isdigit((unsigned char)*r->p))
                r->p++;
        if (r->p < r->end && *r->p == '.') {
                m->integral = 0;
                r->p++;
                if (r->p >= r->end || !isdigit((unsigned char)*r->p))
                        return r->err = "bad number", -1;
                while (r->p < r->end && isdigit((unsigned char)*r->p))
                        r->p++;
        }
        if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
                m->integral = 0;
                r->p++;
                if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
                        r->p++;
                if (r->p >= r->end || !isdigit((unsigned char)*r->p))
                        return r->err = "bad number", -1;
                while (r->p < r->end && isdigit((unsigned char)*r->p))
                        r->p++;
        }
        if ((size_t)(r->p - s) >= sizeof(buf))
                return r->err = "number too long", -1;
        memcpy(buf, s, (size_t)(r->p - s));
        buf[r->p - s] = '\0';
        m->num = strtod(buf, NULL);
        if (!isfinite(m->num))
                return r->err = "number out of range", -1;
        return 0;
}

static int read_literal(jreader_t *r, const char *word) {
        size_t n = strlen(word);
        if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
                return r->err =
                           "expected a string, number, true, false or null",
                       -1;
        r->p += n;
        return 0;
}

static int read_value(jreader_t *r, member_t *m) {
        if (r->p >= r->end)
                return r->err = "unexpected end", -1;
        switch (*r->p) {
        case '"':
                m->type = J_STR;
                return (m->str = read_string(r, &m->len)) ? 0 : -1;
        case 't':
                m->type = J_BOOL;
                m->num = 1;
                return read_literal(r, "true");
        case 'f':
                m->type = J_BOOL;
                m->num = 0;
                return read_literal(r, "false");
        case 'n':
                m->type = J_NULL;
                return read_literal(r, "null");
        case '{':
        case '[':
                return r->err = "nested objects and arrays are not accepted",
                       -1;
        default:
                m->type = J_NUM;
                return read_number(r, m);
        }
}

/* The members of one flat object; the whole input must be that object. */
static int read_object(jreader_t *r, member_t *mem, uint32_t *n) {
        *n = 0;
        skip_ws(r);
        if (r->p >= r->end || *r->p != '{')
                return r->err = "not a JSON object", -1;
        r->p++;
        skip_ws(r);
        if (r->p < r->end && *r->p == '}') {
                r->p++;
                goto tail;
        }
        for (;;) {
                member_t *m;
                char *key;
                uint32_t klen;
                skip_ws(r);
                if (r->p >= r->end || *r->p != '"')
                        return r->err = "expected a key", -1;
                if (!(key = read_string(r, &klen)))
                        return -1;
                if (*n == MAX_MEMBERS)
                        return r->err = "too many keys", -1;
                if (klen >= sizeof(mem[0].key))
                        return r->err = "key too long", -1;
                for (uint32_t i = 0; i < *n; i++)
                        if (!strcmp(mem[i].key, key))
                                return r->err = "duplicate key", -1;
                m = &mem[(*n)++];
                memset(m, 0, sizeof(*m));
                memcpy(m->key, key, klen + 1);
                skip_ws(r);
                if (r->p >= r->end || *r->p != ':')
                        return r->err = "expected ':'", -1;
                r->p++;
                skip_ws(r);
                if (read_value(r, m))
                        return -1;
                skip_ws(r);
                if (r->p < r->end && *r->p == ',') {
                        r->p++;
                        continue;
                }
                if (r->p < r->end && *r->p == '}') {
                        r->p++;
                        break;
                }
                return r->err = "expected ',' or '}'", -1;
        }
tail:
        skip_ws(r);
        if (r->p != r->end)
                return r->err = "trailing bytes after the object", -1;
        return 0;
}

/* ---- the op table ---- */

/* Blend first: `tern control --blend SIM,CTR` fills entries 0 and 1. */
const rt_control_field_t rt_control_fields[RT_CONTROL_N_FIELDS] = {
    {"blend", NULL, "similarity_weight", "recommendations.similarity_weight",
     "similarity-weight"},
    {"blend", NULL, "ctr_weight", "recommendations.ctr_weight", "ctr-weight"},
    {"churn", NULL, "alert_threshold", "churn.alert_threshold",
     "churn-threshold"},
    {"churn", NULL, "alert_rearm_threshold", "churn.alert_rearm_threshold",
     "churn-rearm"},
    {"churn", NULL, "alert_cooldown_days", "churn.alert_cooldown_days",
     "churn-cooldown-days"},
    {"model", "ctr", "alpha", "ctr.alpha", "ctr-alpha"},
    {"model", "ctr", "beta", "ctr.beta", "ctr-beta"},
    {"model", "ctr", "l1", "ctr.l1", "ctr-l1"},
    {"model", "ctr", "l2", "ctr.l2", "ctr-l2"},
    {"model", "churn", "learning_rate", "churn.learning_rate",
     "churn-learning-rate"},
    {"model", "churn", "l2", "churn.l2", "churn-l2"},
};

static const char *const op_names[] = {"boost", "unboost", "block", "unblock",
                                       "blend", "churn",   "model"};

#define BAD(...)                                                               \
        return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG, __VA_ARGS__)

static member_t *take(member_t *mem, uint32_t n, const char *key) {
        for (uint32_t i = 0; i < n; i++)
                if (!strcmp(mem[i].key, key)) {
                        mem[i].used = 1;
                        return &mem[i];
                }
        return NULL;
}

static tern_code_t take_id(member_t *mem, uint32_t n, rt_control_op_t *op,
                           int category_ok, const char *op_name, char *errstr,
                           size_t errstr_size) {
        member_t *item = take(mem, n, "item");
        member_t *cat = category_ok ? take(mem, n, "category") : NULL;
        member_t *m = item ? item : cat;
        if (item && cat)
                BAD("%s: give \"item\" or \"category\", not both", op_name);
        if (!m)
                BAD("%s: \"item\"%s is required", op_name,
                    category_ok ? " or \"category\"" : "");
        if (m->type != J_STR)
                BAD("%s: %s: expected a string", op_name, m->key);
        if (m->len == 0 || m->len > MODEL_BOOST_MAX_ID)
                BAD("%s: %s: must be 1 to %d bytes (got %u)", op_name, m->key,
                    MODEL_BOOST_MAX_ID, m->len);
        op->target = m == item ? MODEL_BOOST_ITEM : MODEL_BOOST_CATEGORY;
        memcpy(op->id, m->str, m->len + 1);
        op->id_len = m->len;
        return TERN_OK;
}

static tern_code_t parse_boost(member_t *mem, uint32_t n, rt_control_op_t *op,
                               char *errstr, size_t errstr_size) {
        member_t *f = take(mem, n, "factor"), *u = take(mem, n, "until_ts_ms");
        tern_code_t rc = take_id(mem, n, op, 1, "boost", errstr, errstr_size);
        if (rc != TERN_OK)
                return rc;
        if (!f)
                BAD("boost: \"factor\" is required");
        if (f->type != J_NUM)
                BAD("boost: factor: expected a number");
        if (!(f->num > 0) || f->num > 1000)
                BAD("boost: factor: must be above 0 and at most 1000 (got %g)",
                    f->num);
        op->factor = f->num;
        op->until_ts_ms = MODEL_BOOST_FOREVER;
        if (u && u->type != J_NULL) {
                if (u->type != J_NUM || !u->integral)
                        BAD("boost: until_ts_ms: expected an integer (event "
                            "time, ms) or null");
                if (u->num < 0 || u->num > 9e15)
                        BAD("boost: until_ts_ms: must be between 0 and 9e15 "
                            "(got %.17g)",
                            u->num);
                op->until_ts_ms = (int64_t)u->num;
        }
        return TERN_OK;
}

static tern_code_t parse_set(member_t *mem, uint32_t n, const char *op_name,
                             rt_control_op_t *op, char *errstr,
                             size_t errstr_size) {
        const char *model = NULL;
        if (!strcmp(op_name, "model")) {
                member_t *m = take(mem, n, "model");
                if (!m || m->type != J_STR ||
                    (strcmp(m->str, "ctr") && strcmp(m->str, "churn"))) {
                        /* which keys are known depends on the model */
                        for (uint32_t i = 0; i < n; i++)
                                mem[i].used = 1;
                        BAD("model: \"model\" must be \"ctr\" or "
                            "\"churn\"");
                }
                model = m->str;
        }
        for (size_t i = 0; i < RT_CONTROL_N_FIELDS; i++) {
                member_t *m;
                int live;
                if (strcmp(rt_control_fields[i].op, op_name) ||
                    (model && strcmp(rt_control_fields[i].model, model)) ||
                    !(m = take(mem, n, rt_control_fields[i].key)))
                        continue;
                if (m->type != J_NUM)
                        BAD("%s: %s: expected a number", op_name, m->key);
                live = conf_live_find(rt_control_fields[i].path);
                if (live < 0)
                        BAD("%s: %s is not live in this build", op_name,
                            rt_control_fields[i].path);
                if (conf_live_check((size_t)live, m->num, errstr,
                                    errstr_size) != TERN_OK)
                        return TERN_ERR_INVALID_ARG;
                op->sets[op->n_sets].live = (size_t)live;
                op->sets[op->n_sets++].value = m->num;
        }
        if (!op->n_sets)
                BAD("%s%s%s: give at least one value to set", op_name,
                    model ? " " : "", model ? model : "");
        return TERN_OK;
}

static tern_code_t parse_members(member_t *mem, uint32_t n, rt_control_op_t *op,
                                 char *errstr, size_t errstr_size) {
        member_t *o = take(mem, n, "op");
        const char *name;
        tern_code_t rc;
        int k = -1;
        if (!o)
                BAD("\"op\" is required");
        if (o->type != J_STR)
                BAD("op: expected a string");
        for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
                if (!strcmp(op_names[i], o->str))
                        k = (int)i;
        if (k < 0)
                BAD("op: unknown op \"%.64s\" (boost, unboost, block, unblock, "
                    "blend, churn, model)",
                    o->str);
        name = op_names[k];
        for (int a = 0; a < 2; a++) {
                const char *audit = a ? "by" : "id";
                member_t *m = take(mem, n, audit);
                if (m && (m->type != J_STR || m->len > RT_CONTROL_MAX_AUDIT))
                        BAD("%s: expected a string of at most %d bytes", audit,
                            RT_CONTROL_MAX_AUDIT);
        }
        op->kind = k < RT_CTL_SET ? (rt_control_kind_t)k : RT_CTL_SET;
        switch (op->kind) {
        case RT_CTL_BOOST:
                rc = parse_boost(mem, n, op, errstr, errstr_size);
                break;
        case RT_CTL_UNBOOST:
                rc = take_id(mem, n, op, 1, name, errstr, errstr_size);
                break;
        case RT_CTL_BLOCK:
        case RT_CTL_UNBLOCK:
                rc = take_id(mem, n, op, 0, name, errstr, errstr_size);
                break;
        default:
                rc = parse_set(mem, n, name, op, errstr, errstr_size);
        }
        /* An unknown key explains more than what it left missing. */
        for (uint32_t i = 0; i < n; i++)
                if (!mem[i].used)
                        BAD("%s: unknown key \"%s\"", name, mem[i].key);
        return rc;
}

tern_code_t rt_control_parse(const char *json, size_t len, rt_control_op_t *op,
                             char *errstr, size_t errstr_size) {
        member_t mem[MAX_MEMBERS];
        uint32_t n;
        /* Decoded strings never outgrow their text; plus a NUL each (keys
         * and values of at most MAX_MEMBERS + 1 members). */
        jreader_t r = {json, json + len, NULL, 0, len + 4 * MAX_MEMBERS, NULL};
        tern_code_t rc;
        memset(op, 0, sizeof(*op));
        if (!json || len == 0)
                BAD("empty record");
        if (len > RT_CONTROL_MAX_RECORD)
                BAD("record of %zu bytes (at most %u)", len,
                    RT_CONTROL_MAX_RECORD);
        if (!(r.scratch = malloc(r.scratch_cap)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if (read_object(&r, mem, &n))
                rc = tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                               "not a valid control record: %s at byte %zu",
                               r.err, (size_t)(r.p - json));
        else
                rc = parse_members(mem, n, op, errstr, errstr_size);
        free(r.scratch);
        return rc;
}

/* A new entry must leave the stored live state within its bound. */
static tern_code_t boost_room(const rt_control_op_t *op,
                              model_boost_kind_t kind,
                              const model_boost_t *boosts, char *errstr,
                              size_t errstr_size) {
        if (model_boost_get(boosts, kind, op->id, op->id_len) ||
            model_boost_encoded_max(boosts) + op->id_len +
                    MODEL_BOOST_ENTRY_OVERHEAD <=
                RT_CONTROL_MAX_BOOSTS)
                return TERN_OK;
        return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                         "boosts and blocks would take more than %u MiB of "
                         "stored state: unboost or unblock first",
                         RT_CONTROL_MAX_BOOSTS >> 20);
}

tern_code_t rt_control_apply_op(const rt_control_op_t *op, tern_conf_t *live,
                                model_boost_t *boosts, char *errstr,
                                size_t errstr_size) {
        model_boost_kind_t kind =
            op->kind == RT_CTL_BLOCK ? MODEL_BOOST_BLOCKED : op->target;
        if ((op->kind == RT_CTL_BOOST || op->kind == RT_CTL_BLOCK) &&
            boost_room(op, kind, boosts, errstr, errstr_size) != TERN_OK)
                return TERN_ERR_LIMIT;
        switch (op->kind) {
        case RT_CTL_BOOST:
                if (model_boost_set(boosts, op->target, op->id, op->id_len,
                                    op->factor, op->until_ts_ms))
                        return tern_errf(
                            errstr, errstr_size, TERN_ERR_LIMIT,
                            "boost: the table of %s boosts is full (%d)",
                            op->target == MODEL_BOOST_ITEM ? "item"
                                                           : "category",
                            MODEL_BOOST_MAX_ENTRIES);
                return TERN_OK;
        case RT_CTL_UNBOOST:
                model_boost_remove(boosts, op->target, op->id, op->id_len);
                return TERN_OK;
        case RT_CTL_BLOCK:
                if (model_boost_set(boosts, MODEL_BOOST_BLOCKED, op->id,
                                    op->id_len, 0, 0))
                        return tern_errf(errstr, errstr_size, TERN_ERR_LIMIT,
                                         "block: the block list is full (%d)",
                                         MODEL_BOOST_MAX_ENTRIES);
                return TERN_OK;
        case RT_CTL_UNBLOCK:
                model_boost_remove(boosts, MODEL_BOOST_BLOCKED, op->id,
                                   op->id_len);
                return TERN_OK;
        case RT_CTL_SET:
                /* Every value was range-checked by the parser. */
                for (uint32_t i = 0; i < op->n_sets; i++)
                        if (conf_live_set(live, op->sets[i].live,
                                          op->sets[i].value, errstr,
                                          errstr_size) != TERN_OK)
                                return TERN_ERR_INVALID_ARG;
                return TERN_OK;
        }
        return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                         "unknown op");
}
