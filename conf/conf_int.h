/* conf_int.h — the property table shared by the loader and the doc writers. */
#ifndef CONF_INT_H
#define CONF_INT_H

#include <stddef.h>

#include "conf.h"

typedef enum conf_prop_type {
        CP_STR,      /* char * */
        CP_INT,      /* int64_t, bounded by min/max */
        CP_DBL,      /* double, bounded by min/max */
        CP_BOOL,     /* int */
        CP_ENUM,     /* int: index into symbols */
        CP_MAP,      /* conf_map_t of free-form string properties */
        CP_TYPE_INT, /* int64_t[TERN_EV__CNT], keyed by event type */
        CP_TYPE_DBL  /* double[TERN_EV__CNT], keyed by event type */
} conf_prop_type_t;

typedef struct conf_prop {
        const char *path; /* "section.key" */
        conf_prop_type_t type;
        size_t offset;
        double min, max;
        const char *def; /* default, as YAML text */
        const char *const *symbols;
        const char *doc;
        unsigned flags; /* CONF_F_* */
} conf_prop_t;

/* Live control: the key may change while tern runs (SIGHUP re-reads the
 * file, the control topic sets it); shown as "live" in the docs. Only
 * CP_DBL keys are live (conf_live_* in conf.h). */
#define CONF_F_LIVE 1u

typedef struct conf_section {
        const char *name;
        const char *doc;
} conf_section_t;

extern const conf_prop_t conf_props[];
extern const size_t conf_props_cnt;
extern const conf_section_t conf_sections[];
extern const size_t conf_sections_cnt;

const conf_prop_t *conf_prop_find(const char *path);
const char *conf_prop_type_name(conf_prop_type_t type);
/* "an integer", "a map of strings": for "expected ..." messages. */
const char *conf_prop_type_expected(conf_prop_type_t type);

/* Where a value came from, for messages. */
typedef struct conf_where {
        const char *file;       /* NULL for -X */
        int line, column;       /* 1-based */
        const char *assignment; /* the -X text */
} conf_where_t;

/* Set a scalar property (or one entry of a map/type map when key != NULL). */
tern_code_t conf_prop_set(tern_conf_t *conf, const conf_prop_t *prop,
                          const char *key, const char *value,
                          const conf_where_t *where, char *errstr,
                          size_t errstr_size);
/* Format "file:line:col: path: " or "-X assignment: " into buf. */
void conf_where_format(const conf_where_t *where, const char *path, char *buf,
                       size_t size);
/* Free what conf owns, not conf itself. */
void conf_clear(tern_conf_t *conf);

#endif
