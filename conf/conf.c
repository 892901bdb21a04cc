/* conf — setting, copying, checking and freeing a tern_conf_t. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_int.h"

#define FIELD(conf, prop, type) ((type *)((char *)(conf) + (prop)->offset))

/* The same names with an article, for "expected ..." messages. */
static const char *type_with_article(conf_prop_type_t type) {
        static const char *const names[] = {"a string",
                                            "an integer",
                                            "a number",
                                            "a boolean",
                                            "a name",
                                            "a map of strings",
                                            "a map of event type to integer",
                                            "a map of event type to number"};
        return names[type];
}

const char *conf_prop_type_expected(conf_prop_type_t type) {
        return type_with_article(type);
}

const char *conf_prop_type_name(conf_prop_type_t type) {
        static const char *const names[] = {"string",
                                            "integer",
                                            "number",
                                            "boolean",
                                            "enum",
                                            "map of strings",
                                            "map of event type to integer",
                                            "map of event type to number"};
        return names[type];
}

const conf_prop_t *conf_prop_find(const char *path) {
        for (size_t i = 0; i < conf_props_cnt; i++)
                if (!strcmp(conf_props[i].path, path))
                        return &conf_props[i];
        return NULL;
}

void conf_where_format(const conf_where_t *where, const char *path, char *buf,
                       size_t size) {
        if (where && where->file)
                snprintf(buf, size, "%s:%d:%d: %s: ", where->file, where->line,
                         where->column, path);
        else if (where && where->assignment) {
                /* Never echo a secret's value back. */
                const char *eq = strchr(where->assignment, '=');
                int klen = eq ? (int)(eq - where->assignment) : 0;
                if (eq && conf_is_secret(path))
                        snprintf(buf, size, "-X %.*s=[redacted]: ", klen,
                                 where->assignment);
                else
                        snprintf(buf, size, "-X %s: ", where->assignment);
        } else
                snprintf(buf, size, "%s: ", path);
}

#define CONF_ERR(...)                                                          \
        do {                                                                   \
                char where_buf[512], why[512];                                 \
                conf_where_format(where, full_path, where_buf,                 \
                                  sizeof(where_buf));                          \
                snprintf(why, sizeof(why), __VA_ARGS__);                       \
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG, "%s%s", \
                                 where_buf, why);                              \
        } while (0)

static int parse_int(const char *s, int64_t *out) {
        char *end;
        long long v;
        if (!*s)
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
                return -1;
        *out = v;
        return 0;
}

static int parse_dbl(const char *s, double *out) {
        char *end;
        double v;
        if (!*s)
                return -1;
        errno = 0;
        v = strtod(s, &end);
        if (errno || *end || !isfinite(v))
                return -1;
        *out = v;
        return 0;
}

static int parse_bool(const char *s, int *out) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
                if (!strcasecmp(s, yes[i]))
                        return *out = 1, 0;
                if (!strcasecmp(s, no[i]))
                        return *out = 0, 0;
        }
        return -1;
}

static void map_set(conf_map_t *m, const char *key, const char *value,
                    const conf_where_t *where) {
        conf_kv_t *kv = NULL;
        for (size_t i = 0; i < m->n; i++)
                if (!strcmp(m->kv[i].key, key))
                        kv = &m->kv[i];
        if (!kv) {
                m->kv = realloc(m->kv, (m->n + 1) * sizeof(*m->kv));
                kv = &m->kv[m->n++];
                kv->key = strdup(key);
        } else {
                free(kv->value);
        }
        kv->value = strdup(value);
        kv->line = where && where->file ? where->line : 0;
        kv->column = where && where->file ? where->column : 0;
}

/* librdkafka validates its own property names and values. */
static int kafka_prop_check(const char *key, const char *value, char *reason,
                            size_t size) {
        rd_kafka_conf_t *probe = rd_kafka_conf_new();
        int ok = rd_kafka_conf_set(probe, key, value, reason, size) ==
                 RD_KAFKA_CONF_OK;
        rd_kafka_conf_destroy(probe);
        return ok ? 0 : -1;
}

static tern_code_t set_map_entry(tern_conf_t *conf, const conf_prop_t *prop,
                                 const char *key, const char *value,
                                 const conf_where_t *where, char *errstr,
                                 size_t errstr_size) {
        char full_path[512];
        snprintf(full_path, sizeof(full_path), "%s.%s", prop->path, key);
        if (prop->type == CP_MAP) {
                char reason_buf[512];
                if (kafka_prop_check(key, value, reason_buf,
                                     sizeof(reason_buf)))
                        CONF_ERR("%s", reason_buf);
                map_set(FIELD(conf, prop, conf_map_t), key, value, where);
                return TERN_OK;
        }
        int type = tern_event_type_parse(key, strlen(key));
        if (type < 0)
                CONF_ERR("unknown event type (expected VIEW, CLICK, CART, "
                         "FAVORITE, PURCHASE or IMPRESSION)");
        if (prop->type == CP_TYPE_INT) {
                int64_t v;
                if (parse_int(value, &v))
                        CONF_ERR("expected an integer (got \"%s\")", value);
                if (v < prop->min || v > prop->max)
                        CONF_ERR("must be between %.0f and %.0f (got %lld)",
                                 prop->min, prop->max, (long long)v);
                FIELD(conf, prop, int64_t)[type] = v;
        } else {
                double v;
                if (parse_dbl(value, &v))
                        CONF_ERR("expected a number (got \"%s\")", value);
                if (v < prop->min || v > prop->max)
                        CONF_ERR("must be between %g and %g (got %g)",
                                 prop->min, prop->max, v);
                FIELD(conf, prop, double)[type] = v;
        }
        return TERN_OK;
}

static tern_code_t set_scalar(tern_conf_t *conf, const conf_prop_t *prop,
                              const char *value, const conf_where_t *where,
                              char *errstr, size_t errstr_size) {
        const char *full_path = prop->path;
        switch (prop->type) {
        case CP_STR: {
                char **field = FIELD(conf, prop, char *);
                free(*field);
                *field = strdup(value);
                return TERN_OK;
        }
        case CP_INT: {
                int64_t v;
                if (parse_int(value, &v))
                        CONF_ERR("expected an integer (got \"%s\")", value);
                if (v < prop->min || v > prop->max)
                        CONF_ERR("must be between %.0f and %.0f (got %lld)",
                                 prop->min, prop->max, (long long)v);
                *FIELD(conf, prop, int64_t) = v;
                return TERN_OK;
        }
        case CP_DBL: {
                double v;
                if (parse_dbl(value, &v))
                        CONF_ERR("expected a number (got \"%s\")", value);
                if (v < prop->min || v > prop->max)
                        CONF_ERR("must be between %g and %g (got %g)",
                                 prop->min, prop->max, v);
                *FIELD(conf, prop, double) = v;
                return TERN_OK;
        }
        case CP_BOOL:
                if (parse_bool(value, FIELD(conf, prop, int)))
                        CONF_ERR("expected true or false (got \"%s\")", value);
                return TERN_OK;
        case CP_ENUM:
                for (int i = 0; prop->symbols[i]; i++)
                        if (!strcmp(prop->symbols[i], value))
                                return *FIELD(conf, prop, int) = i, TERN_OK;
                {
                        char list[256] = "";
                        for (int i = 0; prop->symbols[i]; i++)
                                snprintf(list + strlen(list),
                                         sizeof(list) - strlen(list), "%s%s",
                                         i ? ", " : "", prop->symbols[i]);
                        CONF_ERR("expected one of %s (got \"%s\")", list,
                                 value);
                }
        default:
                CONF_ERR("expected %s, got a single value",
                         type_with_article(prop->type));
        }
}

tern_code_t conf_prop_set(tern_conf_t *conf, const conf_prop_t *prop,
                          const char *key, const char *value,
                          const conf_where_t *where, char *errstr,
                          size_t errstr_size) {
        if (key)
                return set_map_entry(conf, prop, key, value, where, errstr,
                                     errstr_size);
        return set_scalar(conf, prop, value, where, errstr, errstr_size);
}

static void map_free(conf_map_t *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->kv[i].key);
                free(m->kv[i].value);
        }
        free(m->kv);
        m->kv = NULL;
        m->n = 0;
}

static void map_copy(conf_map_t *dst, const conf_map_t *src) {
        dst->n = src->n;
        dst->kv = src->n ? calloc(src->n, sizeof(*dst->kv)) : NULL;
        for (size_t i = 0; i < src->n; i++) {
                dst->kv[i] = src->kv[i];
                dst->kv[i].key = strdup(src->kv[i].key);
                dst->kv[i].value = strdup(src->kv[i].value);
        }
}

tern_conf_t *conf_copy(const tern_conf_t *src) {
        tern_conf_t *dst = malloc(sizeof(*dst));
        *dst = *src;
        for (size_t i = 0; i < conf_props_cnt; i++) {
                const conf_prop_t *prop = &conf_props[i];
                if (prop->type == CP_STR) {
                        char *const *s = FIELD(src, prop, char *);
                        *FIELD(dst, prop, char *) = *s ? strdup(*s) : NULL;
                } else if (prop->type == CP_MAP) {
                        map_copy(FIELD(dst, prop, conf_map_t),
                                 FIELD(src, prop, conf_map_t));
                }
        }
        dst->source = src->source ? strdup(src->source) : NULL;
        return dst;
}

void conf_clear(tern_conf_t *conf) {
        for (size_t i = 0; i < conf_props_cnt; i++) {
                const conf_prop_t *prop = &conf_props[i];
                if (prop->type == CP_STR)
                        free(*FIELD(conf, prop, char *));
                else if (prop->type == CP_MAP)
                        map_free(FIELD(conf, prop, conf_map_t));
        }
        free(conf->source);
        conf->source = NULL;
}

void conf_destroy(tern_conf_t *conf) {
        if (!conf)
                return;
        conf_clear(conf);
        free(conf);
}

tern_code_t conf_set_override(tern_conf_t *conf, const char *assignment,
                              char *errstr, size_t errstr_size) {
        conf_where_t where = {.assignment = assignment};
        const char *eq = strchr(assignment, '=');
        char path[512];
        const conf_prop_t *prop = NULL;
        const char *key = NULL;
        if (!eq || eq == assignment ||
            (size_t)(eq - assignment) >= sizeof(path))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "-X %s: expected key.path=value", assignment);
        memcpy(path, assignment, (size_t)(eq - assignment));
        path[eq - assignment] = '\0';
        prop = conf_prop_find(path);
        if (!prop) {
                /* "kafka.properties.sasl.password": the longest table key
                 * that is a map, the rest is the map's key. */
                for (size_t i = 0; i < conf_props_cnt; i++) {
                        size_t n = strlen(conf_props[i].path);
                        if (conf_props[i].type >= CP_MAP &&
                            !strncmp(path, conf_props[i].path, n) &&
                            path[n] == '.' && path[n + 1]) {
                                prop = &conf_props[i];
                                key = path + n + 1;
                        }
                }
        }
        if (!prop)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "-X %s: unknown key", assignment);
        if (prop->type >= CP_MAP && !key)
                return tern_errf(
                    errstr, errstr_size, TERN_ERR_CONFIG,
                    "-X %s: %s is %s: set one entry as %s.NAME=value",
                    assignment, prop->path, type_with_article(prop->type),
                    prop->path);
        return conf_prop_set(conf, prop, key, eq + 1, &where, errstr,
                             errstr_size);
}

/* The security.protocol a client gets: its role's map wins over
 * kafka.properties, as in rt_kafka.c. NULL when unset (plaintext). */
static const char *client_protocol(const conf_map_t *common,
                                   const conf_map_t *role) {
        const char *proto = NULL;
        const conf_map_t *maps[] = {common, role};
        for (size_t m = 0; m < 2; m++)
                for (size_t i = 0; i < maps[m]->n; i++)
                        if (!strcmp(maps[m]->kv[i].key, "security.protocol"))
                                proto = maps[m]->kv[i].value;
        return proto;
}

/* http.listen: "" or host:port with a decimal port (0 = any free port);
 * an IPv6 host in brackets. Whether the host resolves is the endpoint's
 * business at start. */
static tern_code_t check_http(const tern_conf_t *conf, char *errstr,
                              size_t errstr_size) {
        const char *s = conf->http_listen, *colon = strrchr(s, ':');
        char *end;
        long port;
        if (!*s)
                return TERN_OK;
        if (!colon || !colon[1])
                goto bad;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || port < 0 || port > 65535 || colon[1] == '-' ||
            colon[1] == '+')
                goto bad;
        if (*s == '[' && (colon == s + 1 || colon[-1] != ']'))
                goto bad;
        if (*s != '[' && memchr(s, ':', (size_t)(colon - s)))
                goto bad; /* an IPv6 host needs brackets */
        return TERN_OK;
bad:
        return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                         "http.listen: expected host:port with a port from 0 "
                         "to 65535, e.g. 127.0.0.1:9464 or [::1]:9464 (got "
                         "'%s')",
                         s);
}

/* kafka.require_tls: both clients must encrypt, checked before any
 * connection so no credential is ever sent in clear. */
static tern_code_t check_tls(const tern_conf_t *conf, char *errstr,
                             size_t errstr_size) {
        const conf_map_t *roles[] = {&conf->consumer_props,
                                     &conf->producer_props};
        const char *names[] = {"consumer", "producer"};
        if (!conf->require_tls)
                return TERN_OK;
        for (size_t r = 0; r < 2; r++) {
                const char *p = client_protocol(&conf->kafka_props, roles[r]);
                if (!p || (strcasecmp(p, "ssl") && strcasecmp(p, "sasl_ssl")))
                        return tern_errf(
                            errstr, errstr_size, TERN_ERR_CONFIG,
                            "kafka.require_tls: the %s's security.protocol is "
                            "%s; set kafka.properties.security.protocol to "
                            "ssl or sasl_ssl, or kafka.require_tls to false",
                            names[r], p ? p : "unset (plaintext)");
        }
        return TERN_OK;
}

tern_code_t conf_finalize(tern_conf_t *conf, char *errstr, size_t errstr_size) {
        if (check_tls(conf, errstr, errstr_size) != TERN_OK)
                return TERN_ERR_CONFIG;
        if (check_http(conf, errstr, errstr_size) != TERN_OK)
                return TERN_ERR_CONFIG;
        if (conf->ts_min_ms >= conf->ts_max_ms)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "input.ts_min_ms (%lld) must be below "
                                 "input.ts_max_ms (%lld)",
                                 (long long)conf->ts_min_ms,
                                 (long long)conf->ts_max_ms);
        if (!*conf->state_dir)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "state.dir: must not be empty");
        if (!*conf->group_id)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "kafka.group_id: must not be empty");
        if (!*conf->topic_input || !*conf->topic_recommendations ||
            !*conf->topic_dead_letter)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "topics: input, recommendations and "
                                 "dead_letter must all be named");
        if (!strcmp(conf->topic_input, conf->topic_recommendations) ||
            !strcmp(conf->topic_input, conf->topic_dead_letter) ||
            !strcmp(conf->topic_input, conf->topic_ctr_scores))
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "topics.input must differ from the output "
                                 "topics (tern would consume its own output)");
        if (conf->recs_seed_items > conf->window_items)
                conf->recs_seed_items = conf->window_items;
        return TERN_OK;
}

int conf_is_secret(const char *property) {
        static const char *const markers[] = {"password", "secret",  "token",
                                              "key.pem",  "private", "auth"};
        for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
                if (strstr(property, markers[i]))
                        return 1;
        return 0;
}

/* ---- live keys ---- */

static const conf_prop_t *live_prop(size_t i) {
        for (size_t k = 0; k < conf_props_cnt; k++)
                if ((conf_props[k].flags & CONF_F_LIVE) && i-- == 0)
                        return &conf_props[k];
        return NULL;
}

size_t conf_live_count(void) {
        size_t n = 0;
        for (size_t k = 0; k < conf_props_cnt; k++)
                n += (conf_props[k].flags & CONF_F_LIVE) != 0;
        return n;
}

const char *conf_live_path(size_t i) {
        const conf_prop_t *prop = live_prop(i);
        return prop ? prop->path : NULL;
}

int conf_live_find(const char *path) {
        for (size_t i = 0; i < conf_live_count(); i++)
                if (!strcmp(conf_live_path(i), path))
                        return (int)i;
        return -1;
}

double conf_live_get(const tern_conf_t *conf, size_t i) {
        const conf_prop_t *prop = live_prop(i);
        return prop ? *FIELD(conf, prop, const double) : 0;
}

tern_code_t conf_live_check(size_t i, double v, char *errstr,
                            size_t errstr_size) {
        const conf_prop_t *prop = live_prop(i);
        if (!prop)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "no live key %zu", i);
        if (!isfinite(v) || v < prop->min || v > prop->max)
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "%s: must be between %g and %g (got %g)",
                                 prop->path, prop->min, prop->max, v);
        return TERN_OK;
}

tern_code_t conf_live_set(tern_conf_t *conf, size_t i, double v, char *errstr,
                          size_t errstr_size) {
        tern_code_t rc = conf_live_check(i, v, errstr, errstr_size);
        if (rc == TERN_OK)
                *FIELD(conf, live_prop(i), double) = v;
        return rc;
}

static int map_equal(const conf_map_t *a, const conf_map_t *b) {
        if (a->n != b->n)
                return 0;
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->kv[i].key, b->kv[i].key) ||
                    strcmp(a->kv[i].value, b->kv[i].value))
                        return 0;
        return 1;
}

static int prop_equal(const tern_conf_t *a, const tern_conf_t *b,
                      const conf_prop_t *prop) {
        switch (prop->type) {
        case CP_STR: {
                const char *x = *FIELD(a, prop, char *const);
                const char *y = *FIELD(b, prop, char *const);
                return !strcmp(x ? x : "", y ? y : "");
        }
        case CP_INT:
                return *FIELD(a, prop, const int64_t) ==
                       *FIELD(b, prop, const int64_t);
        case CP_DBL:
                return *FIELD(a, prop, const double) ==
                       *FIELD(b, prop, const double);
        case CP_BOOL:
        case CP_ENUM:
                return *FIELD(a, prop, const int) == *FIELD(b, prop, const int);
        case CP_MAP:
                return map_equal(FIELD(a, prop, const conf_map_t),
                                 FIELD(b, prop, const conf_map_t));
        case CP_TYPE_INT:
                return !memcmp(FIELD(a, prop, const int64_t),
                               FIELD(b, prop, const int64_t),
                               sizeof(int64_t) * TERN_EV__CNT);
        case CP_TYPE_DBL:
                for (int t = 0; t < TERN_EV__CNT; t++)
                        if (FIELD(a, prop, const double)[t] !=
                            FIELD(b, prop, const double)[t])
                                return 0;
                return 1;
        }
        return 0;
}

size_t conf_diff(const tern_conf_t *a, const tern_conf_t *b, conf_diff_fn fn,
                 void *opaque) {
        size_t n = 0;
        for (size_t i = 0; i < conf_props_cnt; i++) {
                if (prop_equal(a, b, &conf_props[i]))
                        continue;
                n++;
                if (fn)
                        fn(opaque, conf_props[i].path,
                           (conf_props[i].flags & CONF_F_LIVE) != 0);
        }
        return n;
}
