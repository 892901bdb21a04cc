/*
 * conf_yaml — load YAML into a tern_conf_t through the property table.
 *
 * The document is loaded whole (yaml_parser_load) before anything is
 * applied, and applied to a scratch copy that replaces the caller's config
 * only when every key passed: a syntax error late in a file never leaves a
 * half-applied config. libyaml marks are 0-based; messages are 1-based.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf_int.h"

typedef struct yaml_ctx {
        yaml_document_t *doc;
        const char *file;
        tern_conf_t *conf;
        char *errstr;
        size_t errstr_size;
} yaml_ctx_t;

static conf_where_t where_of(const yaml_ctx_t *y, const yaml_node_t *node) {
        conf_where_t w = {y->file, (int)node->start_mark.line + 1,
                          (int)node->start_mark.column + 1, NULL};
        return w;
}

static tern_code_t node_err(const yaml_ctx_t *y, const yaml_node_t *node,
                            const char *path, const char *reason) {
        return tern_errf(y->errstr, y->errstr_size, TERN_ERR_CONFIG,
                         "%s:%d:%d: %s: %s", y->file,
                         (int)node->start_mark.line + 1,
                         (int)node->start_mark.column + 1, path, reason);
}

static const char *shape_name(const yaml_node_t *node) {
        switch (node->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        default:
                return "a single value";
        }
}

static const char *scalar(const yaml_node_t *node) {
        return (const char *)node->data.scalar.value;
}

/* A key seen twice in one mapping is almost always a mistake. */
static const yaml_node_t *find_duplicate(yaml_document_t *doc,
                                         const yaml_node_pair_t *first,
                                         const yaml_node_pair_t *pair) {
        const yaml_node_t *key = yaml_document_get_node(doc, pair->key);
        for (const yaml_node_pair_t *p = first; p < pair; p++) {
                const yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k->type == YAML_SCALAR_NODE &&
                    key->type == YAML_SCALAR_NODE &&
                    !strcmp(scalar(k), scalar(key)))
                        return key;
        }
        return NULL;
}

static tern_code_t apply_map(yaml_ctx_t *y, const conf_prop_t *prop,
                             const yaml_node_t *value) {
        const yaml_node_pair_t *pair;
        for (pair = value->data.mapping.pairs.start;
             pair < value->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(y->doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(y->doc, pair->value);
                char path[512];
                conf_where_t w;
                tern_code_t rc;
                if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
                        return node_err(y, k->type != YAML_SCALAR_NODE ? k : v,
                                        prop->path,
                                        "expected name: value entries");
                snprintf(path, sizeof(path), "%s.%s", prop->path, scalar(k));
                if (find_duplicate(y->doc, value->data.mapping.pairs.start,
                                   pair))
                        return node_err(y, k, path, "duplicate key");
                w = where_of(y, k); /* an entry is reported where it starts */
                rc = conf_prop_set(y->conf, prop, scalar(k), scalar(v), &w,
                                   y->errstr, y->errstr_size);
                if (rc != TERN_OK)
                        return rc;
        }
        return TERN_OK;
}

static tern_code_t apply_key(yaml_ctx_t *y, const char *section,
                             const yaml_node_t *key, const yaml_node_t *value) {
        char path[512], reason[256];
        const conf_prop_t *prop;
        conf_where_t w;
        snprintf(path, sizeof(path), "%s.%s", section, scalar(key));
        prop = conf_prop_find(path);
        if (!prop)
                return node_err(y, key, path, "unknown key");
        if (prop->type >= CP_MAP) {
                if (value->type == YAML_SCALAR_NODE && !*scalar(value))
                        return TERN_OK; /* "key:" with nothing: keep default */
                if (value->type != YAML_MAPPING_NODE) {
                        snprintf(reason, sizeof(reason), "expected %s, got %s",
                                 conf_prop_type_expected(prop->type),
                                 shape_name(value));
                        return node_err(y, value, path, reason);
                }
                return apply_map(y, prop, value);
        }
        if (value->type != YAML_SCALAR_NODE) {
                snprintf(reason, sizeof(reason), "expected %s, got %s",
                         conf_prop_type_expected(prop->type),
                         shape_name(value));
                return node_err(y, value, path, reason);
        }
        w = where_of(y, value);
        return conf_prop_set(y->conf, prop, NULL, scalar(value), &w, y->errstr,
                             y->errstr_size);
}

static int section_known(const char *name) {
        for (size_t i = 0; i < conf_sections_cnt; i++)
                if (!strcmp(conf_sections[i].name, name))
                        return 1;
        return 0;
}

static tern_code_t apply_section(yaml_ctx_t *y, const yaml_node_t *key,
                                 const yaml_node_t *value) {
        const yaml_node_pair_t *pair;
        const char *section = scalar(key);
        if (!section_known(section))
                return node_err(y, key, section, "unknown section");
        if (value->type == YAML_SCALAR_NODE && !*scalar(value))
                return TERN_OK;
        if (value->type != YAML_MAPPING_NODE)
                return node_err(y, value, section,
                                "expected a mapping of keys");
        for (pair = value->data.mapping.pairs.start;
             pair < value->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(y->doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(y->doc, pair->value);
                tern_code_t rc;
                if (k->type != YAML_SCALAR_NODE)
                        return node_err(y, k, section, "keys must be names");
                if (find_duplicate(y->doc, value->data.mapping.pairs.start,
                                   pair)) {
                        char path[512];
                        snprintf(path, sizeof(path), "%s.%s", section,
                                 scalar(k));
                        return node_err(y, k, path, "duplicate key");
                }
                rc = apply_key(y, section, k, v);
                if (rc != TERN_OK)
                        return rc;
        }
        return TERN_OK;
}

static tern_code_t apply_document(yaml_ctx_t *y) {
        yaml_node_t *root = yaml_document_get_root_node(y->doc);
        const yaml_node_pair_t *pair;
        if (!root)
                return TERN_OK; /* empty file: all defaults */
        if (root->type == YAML_SCALAR_NODE && !*scalar(root))
                return TERN_OK;
        if (root->type != YAML_MAPPING_NODE)
                return node_err(y, root, "(top level)",
                                "expected a mapping of sections");
        for (pair = root->data.mapping.pairs.start;
             pair < root->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(y->doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(y->doc, pair->value);
                tern_code_t rc;
                if (k->type != YAML_SCALAR_NODE)
                        return node_err(y, k, "(top level)",
                                        "section names must be plain names");
                if (find_duplicate(y->doc, root->data.mapping.pairs.start,
                                   pair))
                        return node_err(y, k, scalar(k), "duplicate section");
                rc = apply_section(y, k, v);
                if (rc != TERN_OK)
                        return rc;
        }
        return TERN_OK;
}

static tern_code_t syntax_err(const yaml_parser_t *parser, const char *name,
                              char *errstr, size_t errstr_size) {
        const yaml_mark_t *mark = &parser->problem_mark;
        if (parser->context)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "%s:%d:%d: YAML syntax: %s %s", name,
                                 (int)mark->line + 1, (int)mark->column + 1,
                                 parser->problem ? parser->problem : "error",
                                 parser->context);
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "%s:%d:%d: YAML syntax: %s", name, (int)mark->line + 1,
                         (int)mark->column + 1,
                         parser->problem ? parser->problem : "error");
}

tern_code_t conf_load_string(tern_conf_t *conf, const char *name,
                             const char *yaml, size_t len, char *errstr,
                             size_t errstr_size) {
        yaml_parser_t parser;
        yaml_document_t doc;
        tern_conf_t *scratch;
        tern_code_t rc;
        yaml_ctx_t y;
        if (!yaml_parser_initialize(&parser))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "libyaml");
        yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
        if (!yaml_parser_load(&parser, &doc)) {
                rc = syntax_err(&parser, name, errstr, errstr_size);
                yaml_parser_delete(&parser);
                return rc;
        }
        scratch = conf_copy(conf);
        y = (yaml_ctx_t){&doc, name, scratch, errstr, errstr_size};
        rc = apply_document(&y);
        if (rc == TERN_OK) {
                free(scratch->source);
                scratch->source = strdup(name);
                conf_clear(conf);
                *conf = *scratch;
                free(scratch);
        } else {
                conf_destroy(scratch);
        }
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return rc;
}

tern_code_t conf_load_file(tern_conf_t *conf, const char *path, char *errstr,
                           size_t errstr_size) {
        FILE *f = fopen(path, "rb");
        char *text = NULL;
        size_t len = 0, cap = 0;
        tern_code_t rc;
        if (!f)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "%s: cannot open: %m", path);
        for (;;) {
                size_t n;
                if (len + 4096 > cap) {
                        if (cap >= (16u << 20)) {
                                fclose(f);
                                free(text);
                                return tern_errf(
                                    errstr, errstr_size, TERN_ERR_CONFIG,
                                    "%s: larger than 16 MiB", path);
                        }
                        cap = cap ? cap * 2 : 65536;
                        text = realloc(text, cap);
                }
                n = fread(text + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        fclose(f);
        rc = conf_load_string(conf, path, text ? text : "", len, errstr,
                              errstr_size);
        free(text);
        return rc;
}
