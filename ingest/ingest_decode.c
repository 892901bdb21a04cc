/*
 * ingest_decode — the bounded, schema-specific decoder (design: the header).
 *
 * Set-up (first half of this file) walks Avro-C schemas once and compiles,
 * per writer schema, a prog_t: a flat table of the writer's types (tnode_t,
 * children by index so recursive types need no pointers) and one instruction
 * per writer field: the reader field it fills, with the action for each
 * union branch, or -1 to skip it.
 *
 * Decoding (second half) interprets that table over the input bytes with a
 * cursor that checks every length against the bytes that remain. It never
 * calls Avro-C and never allocates, so a hostile record costs at most its
 * own length in work (plus max_collection_items for zero-size items).
 */
#include "ingest_decode.h"

#include <avro.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_jwalk.h"

/* Bounds on what a trusted config may ask for: recursion depth of the
 * skipper is max_depth, so keep the C stack use small whatever is set. */
#define DEPTH_HARD_MAX  1024
#define SCHEMA_FILE_MAX (1024 * 1024)
#define ACT_BAD         0xff /* writer branch the reader field cannot take */

/* ---------------------------------------------------------------------- */
/* The reader side: the tern_event_t fields a reader schema may name.      */

typedef enum rf {
        RF_EVENT_ID,
        RF_USER_ID,
        RF_ITEM_ID,
        RF_CATEGORY_ID,
        RF_EVENT_TYPE,
        RF_TS_MS,
        RF_PRICE,
        RF_QUANTITY,
        RF_IMPRESSION_ID,
        RF_CAMPAIGN_ID,
        RF_CONTEXT,
        RF__CNT
} rf_t;

typedef enum rclass {
        RC_STR,
        RC_ENUM,
        RC_LONG,
        RC_DOUBLE,
        RC_INT,
        RC_MAP
} rclass_t;

/* core: tern cannot work without it, so it may be neither nullable nor
 * absent from the reader schema. */
static const struct {
        const char *name;
        rclass_t cls;
        int core;
} rf_defs[RF__CNT] = {
    [RF_EVENT_ID] = {"event_id", RC_STR, 1},
    [RF_USER_ID] = {"user_id", RC_STR, 1},
    [RF_ITEM_ID] = {"item_id", RC_STR, 0},
    [RF_CATEGORY_ID] = {"category_id", RC_STR, 0},
    [RF_EVENT_TYPE] = {"event_type", RC_ENUM, 1},
    [RF_TS_MS] = {"ts_ms", RC_LONG, 1},
    [RF_PRICE] = {"price", RC_DOUBLE, 0},
    [RF_QUANTITY] = {"quantity", RC_INT, 0},
    [RF_IMPRESSION_ID] = {"impression_id", RC_STR, 0},
    [RF_CAMPAIGN_ID] = {"campaign_id", RC_STR, 0},
    [RF_CONTEXT] = {"context", RC_MAP, 0},
};

static int rf_lookup(const char *name) {
        for (int i = 0; i < RF__CNT; i++)
                if (!strcmp(rf_defs[i].name, name))
                        return i;
        return -1;
}

/* ---------------------------------------------------------------------- */
/* The writer side: compiled programs.                                     */

typedef enum tn_kind {
        TN_NULL,
        TN_BOOL,
        TN_INT,
        TN_LONG,
        TN_FLOAT,
        TN_DOUBLE,
        TN_BYTES,
        TN_STRING,
        TN_FIXED,
        TN_ENUM,
        TN_RECORD,
        TN_ARRAY,
        TN_MAP,
        TN_UNION,
        TN__CNT
} tn_kind_t;

static const char *const tn_names[TN__CNT] = {
    "null",   "boolean", "int",  "long",   "float", "double", "bytes",
    "string", "fixed",   "enum", "record", "array", "map",    "union"};

typedef struct tnode {
        uint8_t kind; /* tn_kind_t */
        uint32_t n;   /* record fields, union branches, enum symbols */
        uint32_t sub; /* record/union: first kid; array/map: item node;
                       * enum: first entry in syms/symmap */
        int64_t size; /* fixed */
} tnode_t;

typedef struct wfield {
        char *name;
        uint32_t node;
        int rf;       /* reader field filled, -1 = skip the value */
        uint8_t *act; /* per union branch (one entry if not a union): the
                       * branch's tn_kind_t, or ACT_BAD */
} wfield_t;

typedef struct memo {
        avro_schema_t s;
        uint32_t node;
} memo_t;

typedef struct prog {
        int32_t id; /* Confluent schema id, -1 for RAW */
        wfield_t *fields;
        uint32_t n_fields;
        tnode_t *nodes;
        uint32_t n_nodes, cap_nodes;
        uint32_t *kids;
        uint32_t n_kids, cap_kids;
        char **syms;    /* writer enum symbols, for messages */
        int8_t *symmap; /* writer symbol -> tern_event_type_t, -1 unknown */
        uint32_t n_syms, cap_syms;
        memo_t *memo; /* set-up only: named types compiled so far */
        uint32_t n_memo, cap_memo;
} prog_t;

/* What a decoded event holds before the writer's fields are read: the
 * reader's declared defaults, else null / {} / zero. */
typedef struct evdef {
        tern_str_t str[RF__CNT]; /* RC_STR fields; ptr into dstr */
        tern_event_type_t type;
        int64_t ts_ms;
        int has_price, has_quantity;
        double price;
        int32_t quantity;
} evdef_t;

struct ingest_decoder {
        ingest_limits_t lim;
        ingest_wire_t wire;
        avro_schema_t reader;
        avro_schema_t renum; /* the reader's EventType (borrowed) */
        uint8_t rpresent[RF__CNT];
        uint8_t rnullable[RF__CNT];
        uint8_t rnull_first[RF__CNT]; /* union ["null", T]: default is null */
        uint8_t rdefault[RF__CNT];    /* the reader declares a default */
        evdef_t def;
        char *dstr[RF__CNT]; /* owned copies of string defaults */
        prog_t *raw;    /* RAW writer program; the reader's own by default */
        prog_t **progs; /* Confluent programs sorted by id */
        uint32_t n_progs, cap_progs;
};

void ingest_limits_default(ingest_limits_t *l) {
        l->max_record_bytes = 1024 * 1024;
        l->max_string_bytes = 64 * 1024;
        l->max_context_entries = 32;
        l->max_collection_items = 10000;
        l->max_depth = 32;
        l->ts_min_ms = 0;
        l->ts_max_ms = INT64_C(4102444800000); /* 2100-01-01 */
}

/* Grow a set-up array to hold `need` elements. */
static int vec_grow(void **arr, uint32_t *cap, uint32_t need, size_t elsz) {
        uint32_t ncap = *cap ? *cap : 8;
        void *p;
        if (need <= *cap)
                return 0;
        while (ncap < need)
                ncap *= 2;
        p = realloc(*arr, (size_t)ncap * elsz);
        if (!p)
                return -1;
        *arr = p;
        *cap = ncap;
        return 0;
}
#define VEC_GROW(arr, cap, need)                                               \
        vec_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

static void prog_destroy(prog_t *p) {
        if (!p)
                return;
        for (uint32_t i = 0; i < p->n_fields; i++) {
                free(p->fields[i].name);
                free(p->fields[i].act);
        }
        for (uint32_t i = 0; i < p->n_syms; i++)
                free(p->syms[i]);
        free(p->fields);
        free(p->nodes);
        free(p->kids);
        free(p->syms);
        free(p->symmap);
        free(p->memo);
        free(p);
}

/* Compile context: what node_compile() and friends share. */
typedef struct cctx {
        const ingest_decoder_t *dec;
        prog_t *p;
        char *errstr;
        size_t errstr_size;
} cctx_t;

static tern_code_t cc_nomem(cctx_t *cc) {
        return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_NOMEM,
                         "out of memory compiling a writer schema");
}

static int kind_of(avro_schema_t s) {
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return TN_NULL;
        case AVRO_BOOLEAN:
                return TN_BOOL;
        case AVRO_INT32:
                return TN_INT;
        case AVRO_INT64:
                return TN_LONG;
        case AVRO_FLOAT:
                return TN_FLOAT;
        case AVRO_DOUBLE:
                return TN_DOUBLE;
        case AVRO_BYTES:
                return TN_BYTES;
        case AVRO_STRING:
                return TN_STRING;
        case AVRO_FIXED:
                return TN_FIXED;
        case AVRO_ENUM:
                return TN_ENUM;
        case AVRO_RECORD:
                return TN_RECORD;
        case AVRO_ARRAY:
                return TN_ARRAY;
        case AVRO_MAP:
                return TN_MAP;
        case AVRO_UNION:
                return TN_UNION;
        default:
                return -1;
        }
}

static int memo_find(const prog_t *p, avro_schema_t s, uint32_t *node) {
        for (uint32_t i = 0; i < p->n_memo; i++) {
                if (p->memo[i].s == s) {
                        *node = p->memo[i].node;
                        return 1;
                }
        }
        return 0;
}

/* Append a node; named types are remembered BEFORE their children are
 * compiled so a recursive reference finds them. */
static tern_code_t node_new(cctx_t *cc, avro_schema_t s, int kind,
                            uint32_t *idx) {
        prog_t *p = cc->p;
        if (VEC_GROW(p->nodes, p->cap_nodes, p->n_nodes + 1))
                return cc_nomem(cc);
        *idx = p->n_nodes++;
        memset(&p->nodes[*idx], 0, sizeof(tnode_t));
        p->nodes[*idx].kind = (uint8_t)kind;
        if (kind != TN_RECORD && kind != TN_ENUM && kind != TN_FIXED)
                return TERN_OK;
        if (VEC_GROW(p->memo, p->cap_memo, p->n_memo + 1))
                return cc_nomem(cc);
        p->memo[p->n_memo].s = s;
        p->memo[p->n_memo++].node = *idx;
        return TERN_OK;
}

static tern_code_t node_compile(cctx_t *cc, avro_schema_t s, uint32_t depth,
                                uint32_t *out);

/* Record fields or union branches: n kids, contiguous from nodes[idx].sub. */
static tern_code_t kids_compile(cctx_t *cc, avro_schema_t s, uint32_t idx,
                                uint32_t depth) {
        prog_t *p = cc->p;
        int is_rec = avro_typeof(s) == AVRO_RECORD;
        size_t n =
            is_rec ? avro_schema_record_size(s) : avro_schema_union_size(s);
        uint32_t start = p->n_kids;
        tern_code_t code;
        if (n > UINT32_MAX / 2 ||
            VEC_GROW(p->kids, p->cap_kids, p->n_kids + (uint32_t)n))
                return cc_nomem(cc);
        p->n_kids += (uint32_t)n;
        p->nodes[idx].n = (uint32_t)n;
        p->nodes[idx].sub = start;
        for (size_t i = 0; i < n; i++) {
                avro_schema_t k =
                    is_rec ? avro_schema_record_field_get_by_index(s, (int)i)
                           : avro_schema_union_branch(s, (int)i);
                uint32_t kid;
                if ((code = node_compile(cc, k, depth + 1, &kid)))
                        return code;
                p->kids[start + i] = kid;
        }
        return TERN_OK;
}

/* Writer enum symbols; each is resolved by NAME against the reader's
 * EventType now, so decoding is one table lookup. */
static tern_code_t syms_compile(cctx_t *cc, avro_schema_t s, uint32_t idx) {
        prog_t *p = cc->p;
        int n = avro_schema_enum_number_of_symbols(s);
        if (n < 0 || VEC_GROW(p->syms, p->cap_syms, p->n_syms + (uint32_t)n))
                return cc_nomem(cc);
        /* symmap shares syms' capacity: grow it to the same size. */
        int8_t *m = realloc(p->symmap, (size_t)p->cap_syms);
        if (!m)
                return cc_nomem(cc);
        p->symmap = m;
        p->nodes[idx].n = (uint32_t)n;
        p->nodes[idx].sub = p->n_syms;
        for (int i = 0; i < n; i++) {
                const char *sym = avro_schema_enum_get(s, i);
                int t = -1;
                if (cc->dec->renum &&
                    avro_schema_enum_get_by_name(cc->dec->renum, sym) >= 0)
                        t = tern_event_type_parse(sym, strlen(sym));
                if (!(p->syms[p->n_syms] = strdup(sym)))
                        return cc_nomem(cc);
                p->symmap[p->n_syms++] = (int8_t)t;
        }
        return TERN_OK;
}

static tern_code_t node_compile(cctx_t *cc, avro_schema_t s, uint32_t depth,
                                uint32_t *out) {
        uint32_t idx = 0, item = 0;
        tern_code_t code;
        int kind;
        if (depth > DEPTH_HARD_MAX)
                return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_CONFIG,
                                 "writer schema nests deeper than %d",
                                 DEPTH_HARD_MAX);
        if (avro_typeof(s) == AVRO_LINK)
                s = avro_schema_link_target(s);
        if (memo_find(cc->p, s, out))
                return TERN_OK;
        if ((kind = kind_of(s)) < 0)
                return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_CONFIG,
                                 "writer schema has an unsupported type");
        if ((code = node_new(cc, s, kind, &idx)))
                return code;
        switch (kind) {
        case TN_RECORD:
        case TN_UNION:
                code = kids_compile(cc, s, idx, depth);
                break;
        case TN_ENUM:
                code = syms_compile(cc, s, idx);
                break;
        case TN_FIXED:
                cc->p->nodes[idx].size = avro_schema_fixed_size(s);
                break;
        case TN_ARRAY:
        case TN_MAP:
                code =
                    node_compile(cc,
                                 kind == TN_ARRAY ? avro_schema_array_items(s)
                                                  : avro_schema_map_values(s),
                                 depth + 1, &item);
                if (!code)
                        cc->p->nodes[idx].sub = item;
                break;
        }
        *out = idx;
        return code;
}

/* Can a writer value of node n be read into reader field rf? (Avro schema
 * resolution, with the promotions int->long, int/long/float->double and
 * bytes->string.) */
static int resolvable(const cctx_t *cc, int rf, const tnode_t *n) {
        rclass_t cls = rf_defs[rf].cls;
        switch (n->kind) {
        case TN_NULL:
                return cc->dec->rnullable[rf];
        case TN_STRING:
        case TN_BYTES:
                return cls == RC_STR;
        case TN_INT:
                return cls == RC_INT || cls == RC_LONG || cls == RC_DOUBLE;
        case TN_LONG:
                return cls == RC_LONG || cls == RC_DOUBLE;
        case TN_FLOAT:
        case TN_DOUBLE:
                return cls == RC_DOUBLE;
        case TN_ENUM:
                return cls == RC_ENUM;
        case TN_MAP: {
                uint8_t vk = cc->p->nodes[n->sub].kind;
                return cls == RC_MAP && (vk == TN_STRING || vk == TN_BYTES);
        }
        default:
                return 0;
        }
}

/* Decide, per union branch of the writer field, what decoding does. */
static tern_code_t field_bind(cctx_t *cc, wfield_t *f, uint8_t *bound) {
        const prog_t *p = cc->p;
        const tnode_t *n = &p->nodes[f->node];
        int is_union = n->kind == TN_UNION, any = 0;
        uint32_t nb = is_union ? n->n : 1;
        f->rf = rf_lookup(f->name);
        if (f->rf < 0 || !cc->dec->rpresent[f->rf])
                return (f->rf = -1), TERN_OK;
        if (bound[f->rf]++)
                return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_CONFIG,
                                 "writer schema has field %s twice", f->name);
        if (!(f->act = calloc(nb ? nb : 1, 1)))
                return cc_nomem(cc);
        for (uint32_t b = 0; b < nb; b++) {
                const tnode_t *bn =
                    is_union ? &p->nodes[p->kids[n->sub + b]] : n;
                int ok = resolvable(cc, f->rf, bn);
                f->act[b] = ok ? bn->kind : ACT_BAD;
                any |= ok;
        }
        if (!any)
                return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_CONFIG,
                                 "writer field %s (%s) cannot be read as the "
                                 "reader's field of that name",
                                 f->name, tn_names[n->kind]);
        return TERN_OK;
}

/* A reader field without a default (not nullable, not a map) must come
 * from every writer: refuse the writer schema now, not every event later. */
static tern_code_t required_check(cctx_t *cc, const uint8_t *bound) {
        const ingest_decoder_t *dec = cc->dec;
        for (int rf = 0; rf < RF__CNT; rf++) {
                if (!dec->rpresent[rf] || dec->rdefault[rf] ||
                    dec->rnullable[rf] || rf_defs[rf].cls == RC_MAP ||
                    bound[rf])
                        continue;
                return tern_errf(cc->errstr, cc->errstr_size, TERN_ERR_CONFIG,
                                 "writer schema lacks the required field %s "
                                 "(the reader has no default for it)",
                                 rf_defs[rf].name);
        }
        return TERN_OK;
}

static tern_code_t fields_compile(cctx_t *cc, avro_schema_t ws) {
        prog_t *p = cc->p;
        uint8_t bound[RF__CNT] = {0};
        const tnode_t *root = &p->nodes[0];
        tern_code_t code;
        if (!(p->fields = calloc(root->n ? root->n : 1, sizeof(wfield_t))))
                return cc_nomem(cc);
        for (uint32_t i = 0; i < root->n; i++) {
                wfield_t *f = &p->fields[p->n_fields++];
                f->node = p->kids[root->sub + i];
                f->name = strdup(avro_schema_record_field_name(ws, (int)i));
                if (!f->name)
                        return cc_nomem(cc);
                if ((code = field_bind(cc, f, bound)))
                        return code;
        }
        return required_check(cc, bound);
}

static tern_code_t schema_parse(const char *json, const char *what,
                                avro_schema_t *out, char *errstr,
                                size_t errstr_size) {
        if (!json)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "%s schema: no JSON given", what);
        if (avro_schema_from_json_length(json, strlen(json), out))
                /* avro_strerror() accumulates: copy it right away. */
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "%s schema: %s", what, avro_strerror());
        return TERN_OK;
}

/* Compile one writer schema into *out. */
static tern_code_t prog_compile(const ingest_decoder_t *dec, const char *json,
                                int32_t id, prog_t **out, char *errstr,
                                size_t errstr_size) {
        avro_schema_t ws = NULL;
        cctx_t cc = {dec, NULL, errstr, errstr_size};
        uint32_t root;
        tern_code_t code;
        *out = NULL;
        if ((code = schema_parse(json, "writer", &ws, errstr, errstr_size)))
                return code;
        if (avro_typeof(ws) != AVRO_RECORD) {
                code = tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "writer schema is a %s, not a record",
                                 avro_schema_type_name(ws));
                goto out;
        }
        if (!(cc.p = calloc(1, sizeof(*cc.p)))) {
                code = cc_nomem(&cc);
                goto out;
        }
        cc.p->id = id;
        if ((code = node_compile(&cc, ws, 0, &root)) ||
            (code = fields_compile(&cc, ws)))
                goto out;
        free(cc.p->memo); /* pointers into ws: useless once it is gone */
        cc.p->memo = NULL;
        cc.p->n_memo = cc.p->cap_memo = 0;
        *out = cc.p;
        cc.p = NULL;
out:
        prog_destroy(cc.p);
        avro_schema_decref(ws);
        return code;
}

/* ---------------------------------------------------------------------- */
/* Reader schema checks.                                                   */

static int reader_type_ok(rclass_t cls, avro_schema_t t) {
        switch (cls) {
        case RC_STR:
                return avro_typeof(t) == AVRO_STRING;
        case RC_ENUM:
                return avro_typeof(t) == AVRO_ENUM;
        case RC_LONG:
                return avro_typeof(t) == AVRO_INT64;
        case RC_DOUBLE:
                return avro_typeof(t) == AVRO_DOUBLE;
        case RC_INT:
                return avro_typeof(t) == AVRO_INT32;
        case RC_MAP:
                return avro_typeof(t) == AVRO_MAP &&
                       avro_typeof(avro_schema_map_values(t)) == AVRO_STRING;
        }
        return 0;
}

/* A reader field is T or a two-branch union of null and T (either order);
 * the union form is nullable and defaults to null. */
static tern_code_t reader_field(ingest_decoder_t *dec, int rf, avro_schema_t t,
                                char *errstr, size_t errstr_size) {
        avro_schema_t v = t;
        if (avro_typeof(t) == AVRO_UNION && avro_schema_union_size(t) == 2) {
                avro_schema_t b0 = avro_schema_union_branch(t, 0);
                avro_schema_t b1 = avro_schema_union_branch(t, 1);
                v = avro_typeof(b0) == AVRO_NULL ? b1 : b0;
                dec->rnullable[rf] = avro_typeof(b0) == AVRO_NULL ||
                                     avro_typeof(b1) == AVRO_NULL;
                dec->rnull_first[rf] = avro_typeof(b0) == AVRO_NULL;
        }
        if (!reader_type_ok(rf_defs[rf].cls, v) ||
            (dec->rnullable[rf] &&
             (rf_defs[rf].core || rf_defs[rf].cls == RC_MAP)))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "reader schema: field %s has a type tern "
                                 "cannot hold (%s)",
                                 rf_defs[rf].name, avro_schema_type_name(t));
        if (rf_defs[rf].cls == RC_ENUM)
                dec->renum = v;
        dec->rpresent[rf] = 1;
        return TERN_OK;
}

static tern_code_t reader_check(ingest_decoder_t *dec, char *errstr,
                                size_t errstr_size) {
        avro_schema_t r = dec->reader;
        tern_code_t code;
        if (avro_typeof(r) != AVRO_RECORD)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "reader schema is not a record");
        for (size_t i = 0; i < avro_schema_record_size(r); i++) {
                const char *name = avro_schema_record_field_name(r, (int)i);
                int rf = rf_lookup(name);
                if (rf < 0)
                        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                         "reader schema: field %s is not a "
                                         "tern event field",
                                         name);
                if ((code = reader_field(
                         dec, rf,
                         avro_schema_record_field_get_by_index(r, (int)i),
                         errstr, errstr_size)))
                        return code;
        }
        for (int rf = 0; rf < RF__CNT; rf++)
                if (rf_defs[rf].core && !dec->rpresent[rf])
                        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                         "reader schema lacks field %s",
                                         rf_defs[rf].name);
        return TERN_OK;
}

/* ---------------------------------------------------------------------- */
/* Reader defaults. Avro-C parses "default" but does not expose it, so the */
/* reader schema's JSON is walked once more for the top-level fields'      */
/* "default" values.                                                       */

static tern_code_t jw_bad(const jw_t *w, char *errstr, size_t errstr_size) {
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "reader schema: %s at byte %zu",
                         jw_error(w) ? jw_error(w) : "unexpected JSON",
                         w->err_at);
}

static tern_code_t default_bad(int rf, const char *want, char *errstr,
                               size_t errstr_size) {
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "reader schema: field %s: default must be %s",
                         rf_defs[rf].name, want);
}

static tern_code_t default_str(ingest_decoder_t *dec, int rf, jw_t *w,
                               char *errstr, size_t errstr_size) {
        size_t cap = (size_t)(w->end - w->p) + 1, len = 0;
        char *buf;
        if (cap > UINT32_MAX || !(buf = malloc(cap)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        if (jw_string(w, buf, cap, &len)) {
                free(buf);
                return jw_bad(w, errstr, errstr_size);
        }
        free(dec->dstr[rf]);
        dec->dstr[rf] = buf;
        dec->def.str[rf] = (tern_str_t){buf, (uint32_t)len};
        return TERN_OK;
}

static tern_code_t default_enum(ingest_decoder_t *dec, int rf, jw_t *w,
                                char *errstr, size_t errstr_size) {
        char sym[64];
        int t;
        if (jw_string(w, sym, sizeof(sym), NULL))
                return default_bad(rf, "a symbol of the enum", errstr,
                                   errstr_size);
        if (avro_schema_enum_get_by_name(dec->renum, sym) < 0 ||
            (t = tern_event_type_parse(sym, strlen(sym))) < 0)
                return default_bad(rf, "a symbol of the enum", errstr,
                                   errstr_size);
        dec->def.type = (tern_event_type_t)t;
        return TERN_OK;
}

static tern_code_t default_num(ingest_decoder_t *dec, int rf, jw_t *w,
                               char *errstr, size_t errstr_size) {
        rclass_t cls = rf_defs[rf].cls;
        double d = 0;
        int64_t i = 0;
        int is_int = 0;
        if (jw_number(w, &d, &i, &is_int) || (cls != RC_DOUBLE && !is_int) ||
            (cls == RC_INT && (i < INT32_MIN || i > INT32_MAX)))
                return default_bad(rf,
                                   cls == RC_DOUBLE ? "a number"
                                   : cls == RC_INT  ? "a 32-bit integer"
                                                    : "an integer",
                                   errstr, errstr_size);
        if (cls == RC_LONG) {
                dec->def.ts_ms = i;
        } else if (cls == RC_INT) {
                dec->def.has_quantity = 1;
                dec->def.quantity = (int32_t)i;
        } else {
                dec->def.has_price = 1;
                dec->def.price = d;
        }
        return TERN_OK;
}

/* The default's JSON is typed by the field's type, or by the union's
 * first branch (Avro's rule). */
static tern_code_t default_value(ingest_decoder_t *dec, int rf, jw_t *w,
                                 char *errstr, size_t errstr_size) {
        rclass_t cls = rf_defs[rf].cls;
        jw_kind_t k = jw_peek(w);
        uint32_t n = 0;
        char key[1];
        if (dec->rnull_first[rf])
                return k == JW_NULL && !jw_null(w)
                           ? TERN_OK
                           : default_bad(rf, "null (the union's first branch)",
                                         errstr, errstr_size);
        switch (cls) {
        case RC_STR:
                if (k != JW_STRING)
                        return default_bad(rf, "a string", errstr, errstr_size);
                return default_str(dec, rf, w, errstr, errstr_size);
        case RC_ENUM:
                return default_enum(dec, rf, w, errstr, errstr_size);
        case RC_LONG:
        case RC_INT:
        case RC_DOUBLE:
                return default_num(dec, rf, w, errstr, errstr_size);
        case RC_MAP:
                /* tern keeps context entries in the event, borrowing the
                 * record: only the empty map needs no storage. */
                if (k != JW_OBJECT || jw_object(w) ||
                    jw_member(w, &n, key, sizeof(key), NULL) != 0)
                        return default_bad(rf, "{} (the empty map)", errstr,
                                           errstr_size);
                return TERN_OK;
        }
        return TERN_ERR_CONFIG; /* not reached */
}

/* One element of "fields": its name and the span of its default. */
static tern_code_t field_default(ingest_decoder_t *dec, jw_t *w, char *errstr,
                                 size_t errstr_size) {
        char key[16], name[64] = "";
        const char *dstart = NULL, *dend = NULL;
        uint32_t n = 0;
        int r, rf;
        jw_t dw;
        tern_code_t code;
        if (jw_object(w))
                return jw_bad(w, errstr, errstr_size);
        while ((r = jw_member(w, &n, key, sizeof(key), NULL)) == 1) {
                if (!strcmp(key, "name")) {
                        if (jw_string(w, name, sizeof(name), NULL))
                                return jw_bad(w, errstr, errstr_size);
                        continue;
                }
                if (!strcmp(key, "default")) {
                        jw_peek(w); /* skips blanks: dstart at the value */
                        dstart = w->p;
                }
                if (jw_skip(w))
                        return jw_bad(w, errstr, errstr_size);
                if (!strcmp(key, "default"))
                        dend = w->p;
        }
        if (r < 0)
                return jw_bad(w, errstr, errstr_size);
        /* reader_check() has refused names that are no tern field */
        if (!dstart || (rf = rf_lookup(name)) < 0 || !dec->rpresent[rf])
                return TERN_OK;
        jw_init(&dw, dstart, (size_t)(dend - dstart));
        if ((code = default_value(dec, rf, &dw, errstr, errstr_size)))
                return code;
        dec->rdefault[rf] = 1;
        return TERN_OK;
}

static tern_code_t reader_defaults(ingest_decoder_t *dec, const char *json,
                                   char *errstr, size_t errstr_size) {
        jw_t w;
        char key[16];
        uint32_t n = 0, ni;
        int r;
        tern_code_t code;
        jw_init(&w, json, strlen(json));
        if (jw_object(&w))
                return jw_bad(&w, errstr, errstr_size);
        while ((r = jw_member(&w, &n, key, sizeof(key), NULL)) == 1) {
                if (strcmp(key, "fields") != 0) {
                        if (jw_skip(&w))
                                return jw_bad(&w, errstr, errstr_size);
                        continue;
                }
                if (jw_array(&w))
                        return jw_bad(&w, errstr, errstr_size);
                ni = 0;
                while ((r = jw_item(&w, &ni)) == 1)
                        if ((code =
                                 field_default(dec, &w, errstr, errstr_size)))
                                return code;
                if (r < 0)
                        return jw_bad(&w, errstr, errstr_size);
        }
        return r < 0 ? jw_bad(&w, errstr, errstr_size) : TERN_OK;
}

static tern_code_t limits_check(const ingest_limits_t *l, char *errstr,
                                size_t errstr_size) {
        const char *bad = NULL;
        if (l->max_context_entries > TERN_EVENT_MAX_CONTEXT)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "decoder limits: max_context_entries %u "
                                 "exceeds TERN_EVENT_MAX_CONTEXT (%d)",
                                 l->max_context_entries,
                                 TERN_EVENT_MAX_CONTEXT);
        if (l->max_record_bytes == 0)
                bad = "max_record_bytes must be at least 1";
        else if (l->max_string_bytes > UINT32_MAX)
                bad = "max_string_bytes must be below 4 GiB";
        else if (l->max_depth < 1 || l->max_depth > DEPTH_HARD_MAX)
                bad = "max_depth must be within [1, 1024]";
        else if (l->ts_min_ms > l->ts_max_ms)
                bad = "ts_min_ms is after ts_max_ms";
        if (bad)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "decoder limits: %s", bad);
        return TERN_OK;
}

/* ---------------------------------------------------------------------- */
/* Decoder set-up API.                                                     */

ingest_decoder_t *ingest_decoder_new(const char *reader_schema_json,
                                     const ingest_limits_t *limits,
                                     ingest_wire_t wire, char *errstr,
                                     size_t errstr_size) {
        ingest_decoder_t *dec = calloc(1, sizeof(*dec));
        const char *json = reader_schema_json ? reader_schema_json
                                              : ingest_behavior_event_schema;
        if (!dec) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (limits)
                dec->lim = *limits;
        else
                ingest_limits_default(&dec->lim);
        dec->wire = wire;
        if (limits_check(&dec->lim, errstr, errstr_size) ||
            schema_parse(json, "reader", &dec->reader, errstr, errstr_size) ||
            reader_check(dec, errstr, errstr_size) ||
            reader_defaults(dec, json, errstr, errstr_size) ||
            /* RAW records default to being written with the reader schema */
            prog_compile(dec, json, -1, &dec->raw, errstr, errstr_size)) {
                ingest_decoder_destroy(dec);
                return NULL;
        }
        return dec;
}

void ingest_decoder_destroy(ingest_decoder_t *dec) {
        if (!dec)
                return;
        prog_destroy(dec->raw);
        for (uint32_t i = 0; i < dec->n_progs; i++)
                prog_destroy(dec->progs[i]);
        free(dec->progs);
        for (int rf = 0; rf < RF__CNT; rf++)
                free(dec->dstr[rf]);
        if (dec->reader)
                avro_schema_decref(dec->reader);
        free(dec);
}

tern_code_t ingest_decoder_set_raw_schema(ingest_decoder_t *dec,
                                          const char *writer_json, char *errstr,
                                          size_t errstr_size) {
        prog_t *p;
        tern_code_t code =
            prog_compile(dec, writer_json, -1, &p, errstr, errstr_size);
        if (code)
                return code;
        prog_destroy(dec->raw);
        dec->raw = p;
        return TERN_OK;
}

/* Index of the first program with id >= id (binary search). */
static uint32_t prog_lower_bound(const ingest_decoder_t *dec, int32_t id) {
        uint32_t lo = 0, hi = dec->n_progs;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (dec->progs[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const prog_t *prog_find(const ingest_decoder_t *dec, int32_t id) {
        uint32_t i = prog_lower_bound(dec, id);
        return i < dec->n_progs && dec->progs[i]->id == id ? dec->progs[i]
                                                           : NULL;
}

tern_code_t ingest_decoder_add_schema(ingest_decoder_t *dec, int32_t id,
                                      const char *writer_json, char *errstr,
                                      size_t errstr_size) {
        prog_t *p;
        uint32_t i;
        tern_code_t code;
        if (id < 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                                 "schema id %" PRId32 " is negative", id);
        if ((code =
                 prog_compile(dec, writer_json, id, &p, errstr, errstr_size)))
                return code;
        i = prog_lower_bound(dec, id);
        if (i < dec->n_progs && dec->progs[i]->id == id) {
                /* Registry ids are immutable: the same schema again. */
                prog_destroy(dec->progs[i]);
                dec->progs[i] = p;
                return TERN_OK;
        }
        if (VEC_GROW(dec->progs, dec->cap_progs, dec->n_progs + 1)) {
                prog_destroy(p);
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory adding schema %" PRId32, id);
        }
        memmove(&dec->progs[i + 1], &dec->progs[i],
                (dec->n_progs - i) * sizeof(*dec->progs));
        dec->progs[i] = p;
        dec->n_progs++;
        return TERN_OK;
}

/* "<decimal id>.avsc" -> id; 0 for any other name. */
static int schema_file_id(const char *name, int32_t *id) {
        int64_t v = 0;
        const char *s = name;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (*s - '0');
                if (v > INT32_MAX)
                        return 0;
        }
        if (s == name || strcmp(s, ".avsc") != 0)
                return 0;
        *id = (int32_t)v;
        return 1;
}

/* Read a whole (small, trusted) file as a NUL-terminated string. */
static tern_code_t file_slurp(const char *path, char **out, char *errstr,
                              size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        char *buf = NULL;
        size_t n;
        tern_code_t code = TERN_OK;
        if (!fp)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "cannot open %s: %s", path, strerror(errno));
        if (!(buf = malloc(SCHEMA_FILE_MAX + 1))) {
                code = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory reading %s", path);
                goto out;
        }
        n = fread(buf, 1, SCHEMA_FILE_MAX + 1, fp);
        if (ferror(fp) || n > SCHEMA_FILE_MAX) {
                code = tern_errf(
                    errstr, errstr_size, TERN_ERR_IO, "cannot read %s: %s",
                    path, ferror(fp) ? "read error" : "larger than 1 MiB");
                goto out;
        }
        buf[n] = '\0';
        *out = buf;
        buf = NULL;
out:
        free(buf);
        fclose(fp);
        return code;
}

static tern_code_t schema_file_add(ingest_decoder_t *dec, const char *path,
                                   int32_t id, char *errstr,
                                   size_t errstr_size) {
        char *json = NULL, why[400];
        tern_code_t code = file_slurp(path, &json, errstr, errstr_size);
        if (code)
                return code;
        code = ingest_decoder_add_schema(dec, id, json, why, sizeof(why));
        if (code)
                tern_errf(errstr, errstr_size, code, "%s: %s", path, why);
        free(json);
        return code;
}

tern_code_t ingest_decoder_load_schema_dir(ingest_decoder_t *dec,
                                           const char *dir, char *errstr,
                                           size_t errstr_size) {
        DIR *d = opendir(dir);
        struct dirent *de;
        tern_code_t code = TERN_OK;
        if (!d)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "cannot open schema directory %s: %s", dir,
                                 strerror(errno));
        while (!code && (de = readdir(d))) {
                char path[4096];
                int32_t id;
                if (!schema_file_id(de->d_name, &id))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                code = schema_file_add(dec, path, id, errstr, errstr_size);
        }
        closedir(d);
        return code;
}

int ingest_decoder_has_schema(const ingest_decoder_t *dec, int32_t id) {
        return prog_find(dec, id) != NULL;
}

int ingest_confluent_id(const uint8_t *buf, size_t len, int32_t *id) {
        if (!buf || len < 5 || buf[0] != 0x00)
                return 0;
        *id = (int32_t)((uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
                        (uint32_t)buf[3] << 8 | buf[4]);
        return 1;
}

/* ---------------------------------------------------------------------- */
/* Decoding: a cursor that checks everything and says where it failed.     */

typedef struct dctx {
        const ingest_decoder_t *dec;
        const prog_t *p;
        const uint8_t *base, *pos, *end;
        const char *field;  /* writer field being read, for messages */
        const char *reason; /* overrides the class derived from the code */
        char *errstr;
        size_t errstr_size;
} dctx_t;

/* Format "field F: what (byte offset N)"; at == NULL: no offset. */
__attribute__((format(printf, 4, 5))) static tern_code_t
derr(dctx_t *c, tern_code_t code, const uint8_t *at, const char *fmt, ...) {
        char msg[256], where[64] = "";
        va_list ap;
        if (!c->errstr || !c->errstr_size)
                return code;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (at)
                snprintf(where, sizeof(where), " (byte offset %zu)",
                         (size_t)(at - c->base));
        if (c->field)
                snprintf(c->errstr, c->errstr_size, "field %s: %s%s", c->field,
                         msg, where);
        else
                snprintf(c->errstr, c->errstr_size, "%s%s", msg, where);
        return code;
}

static inline size_t left(const dctx_t *c) {
        return (size_t)(c->end - c->pos);
}

static tern_code_t rd_varint_slow(dctx_t *c, uint64_t *v) {
        const uint8_t *at = c->pos;
        uint64_t r = 0;
        for (int i = 0; i < 10; i++) {
                uint8_t b;
                if (c->pos >= c->end)
                        return derr(c, TERN_ERR_DECODE, at,
                                    "varint truncated after %d bytes", i);
                b = *c->pos++;
                if (i == 9 && (b & 0x80))
                        return derr(c, TERN_ERR_DECODE, at,
                                    "varint longer than 10 bytes");
                if (i == 9 && b > 1)
                        return derr(c, TERN_ERR_DECODE, at,
                                    "varint overflows 64 bits");
                r |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *v = r;
                        return TERN_OK;
                }
        }
        return TERN_ERR_DECODE; /* not reached */
}

/* Most varints in an event (lengths, branches, enum indexes) are one byte. */
static inline tern_code_t rd_varint(dctx_t *c, uint64_t *v) {
        if (c->pos < c->end && !(*c->pos & 0x80)) {
                *v = *c->pos++;
                return TERN_OK;
        }
        return rd_varint_slow(c, v);
}

static inline tern_code_t rd_long(dctx_t *c, int64_t *v) {
        uint64_t u = 0;
        tern_code_t code = rd_varint(c, &u);
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return code;
}

static tern_code_t rd_int(dctx_t *c, int32_t *v) {
        const uint8_t *at = c->pos;
        int64_t l;
        tern_code_t code = rd_long(c, &l);
        if (code)
                return code;
        if (l < INT32_MIN || l > INT32_MAX)
                return derr(c, TERN_ERR_DECODE, at,
                            "int %" PRId64 " out of the 32-bit range", l);
        *v = (int32_t)l;
        return TERN_OK;
}

static tern_code_t rd_skip(dctx_t *c, uint64_t n, const char *what) {
        if (n > left(c))
                return derr(c, TERN_ERR_DECODE, c->pos,
                            "%s of %" PRIu64 " bytes but %zu remain", what, n,
                            left(c));
        c->pos += n;
        return TERN_OK;
}

static tern_code_t rd_fixed(dctx_t *c, size_t n, const char *what,
                            const uint8_t **p) {
        *p = c->pos;
        return rd_skip(c, n, what);
}

static tern_code_t rd_double(dctx_t *c, double *v) {
        const uint8_t *p;
        uint64_t u = 0;
        tern_code_t code = rd_fixed(c, 8, "double", &p);
        if (code)
                return code;
        for (int i = 7; i >= 0; i--)
                u = u << 8 | p[i];
        memcpy(v, &u, 8);
        return TERN_OK;
}

static tern_code_t rd_float(dctx_t *c, float *v) {
        const uint8_t *p;
        uint32_t u = 0;
        tern_code_t code = rd_fixed(c, 4, "float", &p);
        if (code)
                return code;
        for (int i = 3; i >= 0; i--)
                u = u << 8 | p[i];
        memcpy(v, &u, 4);
        return TERN_OK;
}

/* Avro string/bytes: the length is checked against the bytes that remain
 * first (a broken record), then against max_string_bytes (a limit). */
static tern_code_t rd_str(dctx_t *c, const char *what, tern_str_t *out) {
        const uint8_t *at = c->pos;
        int64_t n;
        tern_code_t code = rd_long(c, &n);
        if (code)
                return code;
        if (n < 0)
                return derr(c, TERN_ERR_DECODE, at,
                            "negative %s length %" PRId64, what, n);
        if ((uint64_t)n > left(c))
                return derr(c, TERN_ERR_DECODE, at,
                            "%s length %" PRId64
                            " exceeds the %zu bytes that remain",
                            what, n, left(c));
        if ((uint64_t)n > c->dec->lim.max_string_bytes)
                return derr(c, TERN_ERR_LIMIT, at,
                            "%s length %" PRId64
                            " exceeds max_string_bytes %zu",
                            what, n, c->dec->lim.max_string_bytes);
        out->ptr = (const char *)c->pos;
        out->len = (uint32_t)n;
        c->pos += n;
        return TERN_OK;
}

static tern_code_t rd_branch(dctx_t *c, const tnode_t *u, uint32_t *b) {
        const uint8_t *at = c->pos;
        int64_t v;
        tern_code_t code = rd_long(c, &v);
        if (code)
                return code;
        if (v < 0 || v >= (int64_t)u->n)
                return derr(c, TERN_ERR_DECODE, at,
                            "union branch %" PRId64 " out of range (%u "
                            "branches)",
                            v, u->n);
        *b = (uint32_t)v;
        return TERN_OK;
}

/* One block header of an array or map: *count items; *size >= 0 when the
 * writer gave the block's byte size (negative count form), else -1. */
static tern_code_t rd_block(dctx_t *c, int64_t *count, int64_t *size) {
        const uint8_t *at = c->pos;
        tern_code_t code = rd_long(c, count);
        *size = -1;
        if (code || *count >= 0)
                return code;
        if (*count == INT64_MIN)
                return derr(c, TERN_ERR_DECODE, at, "block count overflows");
        *count = -*count;
        if ((code = rd_long(c, size)))
                return code;
        if (*size < 0 || (uint64_t)*size > left(c))
                return derr(c, TERN_ERR_DECODE, at,
                            "block byte size %" PRId64
                            " outside the %zu bytes that remain",
                            *size, left(c));
        return TERN_OK;
}

/* ---------------------------------------------------------------------- */
/* Skipping any writer type, bounded by depth, bytes and item counts.      */

static tern_code_t skip_value(dctx_t *c, uint32_t ni, uint32_t depth);

static tern_code_t skip_blocks(dctx_t *c, const tnode_t *n, uint32_t depth) {
        uint64_t total = 0;
        int is_map = n->kind == TN_MAP;
        for (;;) {
                const uint8_t *at = c->pos;
                int64_t count, size;
                tern_str_t key;
                tern_code_t code = rd_block(c, &count, &size);
                if (code || count == 0)
                        return code;
                /* every map entry has at least its key's length byte */
                if (is_map && (uint64_t)count > left(c))
                        return derr(c, TERN_ERR_DECODE, at,
                                    "map block count %" PRId64
                                    " exceeds the %zu bytes that remain",
                                    count, left(c));
                total += (uint64_t)count;
                if (total > c->dec->lim.max_collection_items)
                        return derr(c, TERN_ERR_LIMIT, at,
                                    "%s of %" PRIu64
                                    "+ items exceeds max_collection_items %u",
                                    tn_names[n->kind], total,
                                    c->dec->lim.max_collection_items);
                if (size >= 0) { /* the writer told us how far to jump */
                        c->pos += size;
                        continue;
                }
                for (int64_t i = 0; i < count; i++) {
                        if ((is_map && (code = rd_str(c, "map key", &key))) ||
                            (code = skip_value(c, n->sub, depth + 1)))
                                return code;
                }
        }
}

static tern_code_t skip_kids(dctx_t *c, const tnode_t *n, uint32_t depth) {
        const prog_t *p = c->p;
        tern_code_t code;
        for (uint32_t i = 0; i < n->n; i++)
                if ((code = skip_value(c, p->kids[n->sub + i], depth + 1)))
                        return code;
        return TERN_OK;
}

static tern_code_t skip_enum(dctx_t *c, const tnode_t *n) {
        const uint8_t *at = c->pos;
        int64_t v;
        tern_code_t code = rd_long(c, &v);
        if (!code && (v < 0 || v >= (int64_t)n->n))
                return derr(c, TERN_ERR_DECODE, at,
                            "enum index %" PRId64 " out of range (%u "
                            "symbols)",
                            v, n->n);
        return code;
}

static tern_code_t skip_value(dctx_t *c, uint32_t ni, uint32_t depth) {
        const tnode_t *n = &c->p->nodes[ni];
        uint64_t u;
        int32_t i32;
        uint32_t b;
        tern_str_t s;
        tern_code_t code;
        if (depth > c->dec->lim.max_depth)
                return derr(c, TERN_ERR_LIMIT, c->pos,
                            "nesting deeper than max_depth %u",
                            c->dec->lim.max_depth);
        switch (n->kind) {
        case TN_NULL:
                return TERN_OK;
        case TN_BOOL:
                return rd_skip(c, 1, "boolean");
        case TN_INT:
                return rd_int(c, &i32);
        case TN_LONG:
                return rd_varint(c, &u);
        case TN_FLOAT:
                return rd_skip(c, 4, "float");
        case TN_DOUBLE:
                return rd_skip(c, 8, "double");
        case TN_BYTES:
        case TN_STRING:
                return rd_str(c, tn_names[n->kind], &s);
        case TN_FIXED:
                return rd_skip(c, (uint64_t)n->size, "fixed");
        case TN_ENUM:
                return skip_enum(c, n);
        case TN_RECORD:
                return skip_kids(c, n, depth);
        case TN_ARRAY:
        case TN_MAP:
                return skip_blocks(c, n, depth);
        case TN_UNION:
                if ((code = rd_branch(c, n, &b)))
                        return code;
                return skip_value(c, c->p->kids[n->sub + b], depth);
        }
        return TERN_ERR_DECODE; /* not reached */
}

/* ---------------------------------------------------------------------- */
/* Reading into the event.                                                 */

static tern_str_t *ev_str(tern_event_t *ev, int rf) {
        switch (rf) {
        case RF_EVENT_ID:
                return &ev->event_id;
        case RF_USER_ID:
                return &ev->user_id;
        case RF_ITEM_ID:
                return &ev->item_id;
        case RF_CATEGORY_ID:
                return &ev->category_id;
        case RF_IMPRESSION_ID:
                return &ev->impression_id;
        default:
                return &ev->campaign_id;
        }
}

static void ev_set_null(tern_event_t *ev, int rf) {
        if (rf == RF_PRICE)
                ev->has_price = 0;
        else if (rf == RF_QUANTITY)
                ev->has_quantity = 0;
        else if (rf_defs[rf].cls == RC_STR)
                *ev_str(ev, rf) = TERN_STR_NULL;
}

/* Integer writer values: int->long, int/long->double promotions. */
static void ev_set_int(tern_event_t *ev, int rf, int64_t v) {
        if (rf == RF_TS_MS) {
                ev->ts_ms = v;
        } else if (rf == RF_PRICE) {
                ev->has_price = 1;
                ev->price = (double)v;
        } else { /* RF_QUANTITY: only an Avro int resolves to it */
                ev->has_quantity = 1;
                ev->quantity = (int32_t)v;
        }
}

/* Reader fields' defaults (evdef_t); the writer's fields overwrite them. */
static void ev_reset(tern_event_t *ev, const evdef_t *d) {
        ev->event_id = d->str[RF_EVENT_ID];
        ev->user_id = d->str[RF_USER_ID];
        ev->item_id = d->str[RF_ITEM_ID];
        ev->category_id = d->str[RF_CATEGORY_ID];
        ev->impression_id = d->str[RF_IMPRESSION_ID];
        ev->campaign_id = d->str[RF_CAMPAIGN_ID];
        ev->type = d->type;
        ev->ts_ms = d->ts_ms;
        ev->has_price = d->has_price;
        ev->has_quantity = d->has_quantity;
        ev->price = d->price;
        ev->quantity = d->quantity;
        ev->n_context = 0;
}

static tern_code_t enum_read(dctx_t *c, const tnode_t *n, tern_event_t *ev) {
        const uint8_t *at = c->pos;
        int64_t v;
        tern_code_t code = skip_enum(c, n);
        int t;
        if (code)
                return code;
        c->pos = at; /* re-read: skip_enum validated the varint */
        rd_long(c, &v);
        t = c->p->symmap[n->sub + (uint32_t)v];
        if (t < 0)
                return derr(c, TERN_ERR_INVALID, at,
                            "unknown enum symbol \"%s\"",
                            c->p->syms[n->sub + (uint32_t)v]);
        ev->type = (tern_event_type_t)t;
        return TERN_OK;
}

/* The context map: entries counted against max_context_entries as blocks
 * arrive, so a hostile count never drives a loop. */
static tern_code_t context_block(dctx_t *c, const uint8_t *at, int64_t count,
                                 tern_event_t *ev) {
        uint32_t lim = c->dec->lim.max_context_entries;
        tern_code_t code;
        /* each entry needs at least a key length and a value length byte */
        if ((uint64_t)count > left(c) / 2)
                return derr(c, TERN_ERR_DECODE, at,
                            "map block count %" PRId64
                            " exceeds the %zu bytes that remain",
                            count, left(c));
        if ((uint64_t)count > lim - ev->n_context)
                return derr(c, TERN_ERR_INVALID, at,
                            "too many context entries (more than %u)", lim);
        for (int64_t i = 0; i < count; i++) {
                uint32_t k = ev->n_context++;
                if ((code = rd_str(c, "map key", &ev->context_key[k])) ||
                    (code = rd_str(c, "map value", &ev->context_val[k])))
                        return code;
        }
        return TERN_OK;
}

static tern_code_t context_read(dctx_t *c, tern_event_t *ev) {
        for (;;) {
                const uint8_t *at = c->pos, *start;
                int64_t count, size;
                tern_code_t code = rd_block(c, &count, &size);
                if (code || count == 0)
                        return code;
                start = c->pos;
                if ((code = context_block(c, at, count, ev)))
                        return code;
                if (size >= 0 && c->pos - start != size)
                        return derr(c, TERN_ERR_DECODE, at,
                                    "map block of %" PRId64
                                    " bytes holds %zu bytes of entries",
                                    size, (size_t)(c->pos - start));
        }
}

/* Read one (non-union) writer value of node n into reader field rf; the
 * pair was checked resolvable at set-up. */
static tern_code_t value_read(dctx_t *c, int rf, const tnode_t *n,
                              tern_event_t *ev) {
        tern_code_t code;
        /* set on every successful read; initialised for gcc -O3, which
         * cannot see that through rd_int() */
        int32_t i32 = 0;
        int64_t i64 = 0;
        float f = 0;
        switch (n->kind) {
        case TN_NULL:
                ev_set_null(ev, rf);
                return TERN_OK;
        case TN_STRING:
        case TN_BYTES:
                return rd_str(c, tn_names[n->kind], ev_str(ev, rf));
        case TN_INT:
                if (!(code = rd_int(c, &i32)))
                        ev_set_int(ev, rf, i32);
                return code;
        case TN_LONG:
                if (!(code = rd_long(c, &i64)))
                        ev_set_int(ev, rf, i64);
                return code;
        case TN_FLOAT:
                if (!(code = rd_float(c, &f)))
                        ev->price = (double)f;
                ev->has_price = 1;
                return code;
        case TN_DOUBLE:
                ev->has_price = 1;
                return rd_double(c, &ev->price);
        case TN_ENUM:
                return enum_read(c, n, ev);
        case TN_MAP:
                return context_read(c, ev);
        }
        return TERN_ERR_DECODE; /* not reached: refused at set-up */
}

static tern_code_t field_run(dctx_t *c, const wfield_t *f, tern_event_t *ev) {
        const prog_t *p = c->p;
        const tnode_t *n = &p->nodes[f->node];
        const uint8_t *at = c->pos;
        uint32_t b = 0;
        tern_code_t code;
        c->field = f->name;
        if (f->rf < 0)
                return skip_value(c, f->node, 1);
        if (n->kind == TN_UNION) {
                if ((code = rd_branch(c, n, &b)))
                        return code;
                n = &p->nodes[p->kids[n->sub + b]];
        }
        if (f->act[b] == ACT_BAD)
                return derr(c, TERN_ERR_INVALID, at,
                            "a %s cannot be read into the reader's field",
                            tn_names[n->kind]);
        return value_read(c, f->rf, n, ev);
}

static tern_code_t prog_run(dctx_t *c, tern_event_t *ev) {
        tern_code_t code;
        ev_reset(ev, &c->dec->def);
        for (uint32_t i = 0; i < c->p->n_fields; i++)
                if ((code = field_run(c, &c->p->fields[i], ev)))
                        return code;
        c->field = NULL;
        if (c->pos != c->end)
                return derr(c, TERN_ERR_DECODE, c->pos,
                            "%zu trailing bytes after the record", left(c));
        return TERN_OK;
}

static tern_code_t event_validate(dctx_t *c, const tern_event_t *ev) {
        const ingest_limits_t *l = &c->dec->lim;
        c->field = NULL;
        if (ev->event_id.len == 0)
                return derr(c, TERN_ERR_INVALID, NULL, "event_id is empty");
        if (ev->user_id.len == 0)
                return derr(c, TERN_ERR_INVALID, NULL, "user_id is empty");
        if (ev->ts_ms < l->ts_min_ms || ev->ts_ms > l->ts_max_ms)
                return derr(c, TERN_ERR_INVALID, NULL,
                            "ts_ms %" PRId64 " outside [%" PRId64 ", %" PRId64
                            "]",
                            ev->ts_ms, l->ts_min_ms, l->ts_max_ms);
        return TERN_OK;
}

/* Size limit, wire format, schema id: pick the program, position after the
 * frame header. */
static tern_code_t frame_open(dctx_t *c, size_t len) {
        ingest_wire_t wire = c->dec->wire;
        int32_t id;
        if (len > c->dec->lim.max_record_bytes)
                return derr(c, TERN_ERR_LIMIT, NULL,
                            "record of %zu bytes exceeds max_record_bytes %zu",
                            len, c->dec->lim.max_record_bytes);
        if (wire == INGEST_WIRE_AUTO)
                wire = len > 0 && c->base[0] == 0x00 ? INGEST_WIRE_CONFLUENT
                                                     : INGEST_WIRE_RAW;
        if (wire == INGEST_WIRE_RAW) {
                c->p = c->dec->raw;
                return TERN_OK;
        }
        if (len < 1 || c->base[0] != 0x00) {
                c->reason = "bad_magic";
                return derr(c, TERN_ERR_DECODE, c->base,
                            "Confluent frame starts with 0x%02x, not 0x00",
                            len ? c->base[0] : 0);
        }
        if (len < 5)
                return derr(c, TERN_ERR_DECODE, NULL,
                            "Confluent frame of %zu bytes is shorter than its "
                            "5-byte header",
                            len);
        id = (int32_t)((uint32_t)c->base[1] << 24 | (uint32_t)c->base[2] << 16 |
                       (uint32_t)c->base[3] << 8 | c->base[4]);
        if (!(c->p = prog_find(c->dec, id)))
                return derr(c, TERN_ERR_NOT_FOUND, c->base + 1,
                            "unknown schema id %" PRId32, id);
        c->pos += 5;
        return TERN_OK;
}

static const char *reason_of(const dctx_t *c, tern_code_t code) {
        if (c->reason)
                return c->reason;
        switch (code) {
        case TERN_ERR_INVALID:
                return "invalid";
        case TERN_ERR_LIMIT:
                return "too_large";
        case TERN_ERR_NOT_FOUND:
                return "unknown_schema";
        default:
                return "decode";
        }
}

tern_code_t ingest_decode(const ingest_decoder_t *dec, const uint8_t *buf,
                          size_t len, tern_event_t *ev, const char **reason,
                          char *errstr, size_t errstr_size) {
        static const uint8_t empty[1];
        dctx_t c = {.dec = dec, .errstr = errstr, .errstr_size = errstr_size};
        tern_code_t code;
        c.base = c.pos = buf ? buf : empty;
        c.end = c.base + (buf ? len : 0);
        if (!(code = frame_open(&c, buf ? len : 0)) &&
            !(code = prog_run(&c, ev)))
                code = event_validate(&c, ev);
        if (reason)
                *reason = code ? reason_of(&c, code) : NULL;
        return code;
}
