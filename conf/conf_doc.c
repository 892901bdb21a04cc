/*
 * conf_doc — everything generated from the property table: the defaults
 * (conf_new loads the generated example), the commented example config
 * (conf/tern.yaml), the README reference and the effective config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

#define FIELD(conf, prop, type)                                                \
        ((type *)((const char *)(conf) + (prop)->offset))

static void write_comment(FILE *out, const char *indent, const char *doc) {
        const char *line = doc;
        while (*line) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t)(nl - line) : strlen(line);
                fprintf(out, "%s# %.*s\n", indent, (int)n, line);
                line += n + (nl ? 1 : 0);
        }
}

static int in_section(const conf_prop_t *prop, const char *section) {
        size_t n = strlen(section);
        return !strncmp(prop->path, section, n) && prop->path[n] == '.';
}

void conf_write_example(FILE *out) {
        fprintf(out,
                "# tern configuration. Generated from the property table by\n"
                "# `tern config --example`: every key is optional and shown "
                "with its\n"
                "# default. Override one on any command line: -X "
                "section.key=value.\n");
        for (size_t s = 0; s < conf_sections_cnt; s++) {
                const conf_section_t *sec = &conf_sections[s];
                fprintf(out, "\n");
                write_comment(out, "", sec->doc);
                fprintf(out, "%s:\n", sec->name);
                for (size_t i = 0; i < conf_props_cnt; i++) {
                        const conf_prop_t *prop = &conf_props[i];
                        if (!in_section(prop, sec->name))
                                continue;
                        write_comment(out, "  ", prop->doc);
                        if (prop->flags & CONF_F_LIVE)
                                fprintf(out, "  # (live: SIGHUP or the control "
                                             "topic changes it while tern "
                                             "runs)\n");
                        fprintf(out, "  %s: %s\n",
                                prop->path + strlen(sec->name) + 1, prop->def);
                }
        }
}

static void md_escape_doc(FILE *out, const char *doc) {
        for (const char *p = doc; *p; p++) {
                if (*p == '\n')
                        fputc(' ', out);
                else if (*p == '|')
                        fputs("\\|", out);
                else
                        fputc(*p, out);
        }
}

void conf_write_reference(FILE *out) {
        fprintf(out, "| key | type | default | description |\n"
                     "|---|---|---|---|\n");
        for (size_t i = 0; i < conf_props_cnt; i++) {
                const conf_prop_t *prop = &conf_props[i];
                fprintf(out, "| `%s` | %s", prop->path,
                        conf_prop_type_name(prop->type));
                if (prop->type == CP_INT || prop->type == CP_DBL)
                        fprintf(out, " (%g..%g)", prop->min, prop->max);
                if (prop->flags & CONF_F_LIVE)
                        fprintf(out, ", live");
                fprintf(out, " | `%s` | ", prop->def);
                md_escape_doc(out, prop->doc);
                fprintf(out, " |\n");
        }
}

static void write_value(const tern_conf_t *conf, const conf_prop_t *prop,
                        FILE *out) {
        switch (prop->type) {
        case CP_STR:
                fprintf(out, "\"%s\"",
                        conf_is_secret(prop->path) &&
                                **FIELD(conf, prop, char *const)
                            ? "[redacted]"
                            : *FIELD(conf, prop, char *const));
                break;
        case CP_INT:
                fprintf(out, "%lld",
                        (long long)*FIELD(conf, prop, const int64_t));
                break;
        case CP_DBL:
                fprintf(out, "%g", *FIELD(conf, prop, const double));
                break;
        case CP_BOOL:
                fprintf(out, "%s",
                        *FIELD(conf, prop, const int) ? "true" : "false");
                break;
        case CP_ENUM:
                fprintf(out, "%s",
                        prop->symbols[*FIELD(conf, prop, const int)]);
                break;
        case CP_MAP: {
                const conf_map_t *m = FIELD(conf, prop, const conf_map_t);
                fprintf(out, "{");
                for (size_t k = 0; k < m->n; k++)
                        fprintf(out, "%s\"%s\": \"%s\"", k ? ", " : "",
                                m->kv[k].key,
                                conf_is_secret(m->kv[k].key) ? "[redacted]"
                                                             : m->kv[k].value);
                fprintf(out, "}");
                break;
        }
        case CP_TYPE_INT:
        case CP_TYPE_DBL:
                fprintf(out, "{");
                for (int t = 0; t < TERN_EV__CNT; t++) {
                        fprintf(out, "%s%s: ", t ? ", " : "",
                                tern_event_type_names[t]);
                        if (prop->type == CP_TYPE_INT)
                                fprintf(out, "%lld",
                                        (long long)FIELD(conf, prop,
                                                         const int64_t)[t]);
                        else
                                fprintf(out, "%g",
                                        FIELD(conf, prop, const double)[t]);
                }
                fprintf(out, "}");
                break;
        }
}

void conf_write_effective(const tern_conf_t *conf, FILE *out) {
        for (size_t s = 0; s < conf_sections_cnt; s++) {
                const conf_section_t *sec = &conf_sections[s];
                fprintf(out, "%s:\n", sec->name);
                for (size_t i = 0; i < conf_props_cnt; i++) {
                        const conf_prop_t *prop = &conf_props[i];
                        if (!in_section(prop, sec->name))
                                continue;
                        fprintf(out,
                                "  %s: ", prop->path + strlen(sec->name) + 1);
                        write_value(conf, prop, out);
                        fprintf(out, "\n");
                }
        }
}

tern_conf_t *conf_new(void) {
        tern_conf_t *conf = calloc(1, sizeof(*conf));
        char *text = NULL, errstr[512];
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        conf_write_example(mem);
        fclose(mem);
        /* Strings need a value before the first copy; the example sets all. */
        for (size_t i = 0; i < conf_props_cnt; i++)
                if (conf_props[i].type == CP_STR)
                        *(char **)((char *)conf + conf_props[i].offset) =
                            strdup("");
        if (conf_load_string(conf, "(defaults)", text, len, errstr,
                             sizeof(errstr)) != TERN_OK) {
                /* The table itself is wrong: a build that cannot start. */
                fprintf(stderr, "tern: built-in defaults refused: %s\n",
                        errstr);
                abort();
        }
        free(conf->source);
        conf->source = strdup("(defaults)");
        conf->config_version = 1;
        free(text);
        return conf;
}
