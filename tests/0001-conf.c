/*
 * 0001-conf: the config table, YAML loader and -X overrides — defaults,
 * exact error messages with file:line:column, atomic loading, redaction,
 * and conf/tern.yaml being exactly the generated example.
 */
/* TERN_TEST_LINK: tern_conf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "test.h"

static char errstr[1024];

static tern_code_t load(tern_conf_t *conf, const char *yaml) {
        errstr[0] = '\0';
        return conf_load_string(conf, "t.yaml", yaml, strlen(yaml), errstr,
                                sizeof(errstr));
}

/* Load into fresh defaults and return the error text ("" when it loaded). */
static const char *load_err(const char *yaml) {
        tern_conf_t *conf = conf_new();
        if (load(conf, yaml) == TERN_OK)
                errstr[0] = '\0';
        conf_destroy(conf);
        return errstr;
}

static const char *override_err(const char *assignment) {
        tern_conf_t *conf = conf_new();
        errstr[0] = '\0';
        if (conf_set_override(conf, assignment, errstr, sizeof(errstr)) ==
            TERN_OK)
                errstr[0] = '\0';
        conf_destroy(conf);
        return errstr;
}

static void defaults(void) {
        tern_conf_t *conf = conf_new();
        TEST_EQ_INT(conf->window_items, 20);
        TEST_EQ_INT(conf->window_seconds, 3600);
        TEST_EQ_INT(conf->type_weight[TERN_EV_VIEW], 1);
        TEST_EQ_INT(conf->type_weight[TERN_EV_IMPRESSION], 0);
        TEST_EQ_INT(conf->recs_top_n, 10);
        TEST_EQ_STR(conf->topic_input, "behavior-events");
        TEST_EQ_STR(conf->writer_schema, "");
        TEST_EQ_INT(conf->wire_format, 0);
        TEST_ASSERT(conf->recs_type_boost[TERN_EV_CART] == 3.0, "cart boost");
        TEST_EQ_INT(conf_finalize(conf, errstr, sizeof(errstr)), TERN_OK);
        conf_destroy(conf);
}

static void example_file_is_generated(void) {
        char *generated = NULL, path[4096];
        size_t len = 0;
        FILE *mem = open_memstream(&generated, &len), *f;
        char *on_disk;
        size_t disk_len;
        conf_write_example(mem);
        fclose(mem);
        snprintf(path, sizeof(path), "%s/conf/tern.yaml", TERN_SOURCE_DIR);
        f = fopen(path, "rb");
        TEST_ASSERT(f, "conf/tern.yaml missing");
        on_disk = calloc(1, len + 2);
        disk_len = fread(on_disk, 1, len + 1, f);
        fclose(f);
        TEST_ASSERT(disk_len == len && memcmp(on_disk, generated, len) == 0,
                    "conf/tern.yaml differs from `tern config --example`; "
                    "regenerate it");
        free(on_disk);
        free(generated);
}

static char *read_file(const char *rel, size_t *len) {
        char path[4096];
        FILE *f;
        char *text;
        long size;
        snprintf(path, sizeof(path), "%s/%s", TERN_SOURCE_DIR, rel);
        if (!(f = fopen(path, "rb")))
                return NULL;
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
        text = calloc(1, (size_t)size + 1);
        *len = fread(text, 1, (size_t)size, f);
        fclose(f);
        return text;
}

/* README's reference table is generated too: not written twice. */
static void readme_reference_is_generated(void) {
        static const char begin[] = "<!-- conf-reference:begin -->\n";
        char *generated = NULL, *readme, *start, *end;
        size_t len = 0, readme_len;
        FILE *mem = open_memstream(&generated, &len);
        conf_write_reference(mem);
        fclose(mem);
        readme = read_file("README.md", &readme_len);
        TEST_ASSERT(readme, "README.md missing");
        start = strstr(readme, begin);
        end = strstr(readme, "<!-- conf-reference:end -->");
        TEST_ASSERT(start && end, "README.md lacks the conf-reference markers");
        start += strlen(begin);
        TEST_ASSERT((size_t)(end - start) == len &&
                        memcmp(start, generated, len) == 0,
                    "README.md's configuration reference differs from `tern "
                    "config --reference`; regenerate it");
        free(readme);
        free(generated);
}

static void loads_values(void) {
        tern_conf_t *conf = conf_new();
        TEST_EQ_INT(load(conf, "features:\n"
                               "  window_items: 5\n"
                               "  type_weights: {PURCHASE: 3}\n"
                               "kafka:\n"
                               "  properties:\n"
                               "    security.protocol: ssl\n"
                               "log:\n"
                               "  level: debug\n"),
                    TERN_OK);
        TEST_EQ_INT(conf->window_items, 5);
        TEST_EQ_INT(conf->type_weight[TERN_EV_PURCHASE], 3);
        TEST_EQ_INT(conf->type_weight[TERN_EV_VIEW], 1);
        TEST_EQ_INT(conf->kafka_props.n, 1);
        TEST_EQ_STR(conf->kafka_props.kv[0].value, "ssl");
        TEST_EQ_INT(conf->log_level, 3);
        conf_destroy(conf);
}

static void error_messages(void) {
        TEST_EQ_STR(load_err("features:\n  window_itemz: 3\n"),
                    "t.yaml:2:3: features.window_itemz: unknown key");
        TEST_EQ_STR(load_err("features:\n  window_items: abc\n"),
                    "t.yaml:2:17: features.window_items: expected an integer "
                    "(got \"abc\")");
        TEST_EQ_STR(load_err("features:\n  window_items: 0\n"),
                    "t.yaml:2:17: features.window_items: must be between 1 and "
                    "1000 (got 0)");
        TEST_EQ_STR(load_err("features:\n  window_items:\n    a: 1\n"),
                    "t.yaml:3:5: features.window_items: expected an integer, "
                    "got a mapping");
        TEST_EQ_STR(load_err("featurez:\n  window_items: 3\n"),
                    "t.yaml:1:1: featurez: unknown section");
        TEST_EQ_STR(
            load_err("features:\n  window_items: 3\n  window_items: 4\n"),
            "t.yaml:3:3: features.window_items: duplicate key");
        TEST_EQ_STR(
            load_err("features:\n  type_weights: {BUY: 2}\n"),
            "t.yaml:2:18: features.type_weights.BUY: unknown event type "
            "(expected VIEW, CLICK, CART, FAVORITE, PURCHASE or "
            "IMPRESSION)");
        TEST_EQ_STR(load_err("state:\n  sync_writes: maybe\n"),
                    "t.yaml:2:16: state.sync_writes: expected true or false "
                    "(got \"maybe\")");
        TEST_EQ_STR(
            load_err("input:\n  wire_format: avro\n"),
            "t.yaml:2:16: input.wire_format: expected one of auto, raw, "
            "confluent (got \"avro\")");
        TEST_EQ_STR(
            load_err("kafka:\n  properties:\n    no.such.property: 1\n"),
            "t.yaml:3:5: kafka.properties.no.such.property: No such "
            "configuration property: \"no.such.property\"");
        TEST_EQ_STR(load_err("- a\n- b\n"),
                    "t.yaml:1:1: (top level): expected a mapping of sections");
}

static void syntax_errors(void) {
        const char *msg = load_err("features:\n  window_items: [1, 2\n");
        TEST_ASSERT(!strncmp(msg, "t.yaml:3:1: YAML syntax: ", 25), "%s", msg);
        msg = load_err("features:\n\twindow_items: 3\n");
        TEST_ASSERT(!strncmp(msg, "t.yaml:2:1: YAML syntax: ", 25), "%s", msg);
}

static void failed_load_changes_nothing(void) {
        tern_conf_t *conf = conf_new();
        /* The first key is valid, the second is not: nothing applies. */
        TEST_ASSERT(load(conf, "features:\n  window_items: 7\n  bogus: 1\n") ==
                        TERN_ERR_CONFIG,
                    "must fail");
        TEST_EQ_INT(conf->window_items, 20);
        /* A syntax error after valid values: nothing applies either. */
        TEST_ASSERT(load(conf, "features:\n  window_items: 7\n  x: [\n") ==
                        TERN_ERR_CONFIG,
                    "must fail");
        TEST_EQ_INT(conf->window_items, 20);
        conf_destroy(conf);
}

static void overrides(void) {
        tern_conf_t *conf = conf_new();
        TEST_EQ_INT(conf_set_override(conf, "features.window_items=5", errstr,
                                      sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(conf->window_items, 5);
        TEST_EQ_INT(conf_set_override(conf,
                                      "kafka.properties.sasl.username=bob",
                                      errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_STR(conf->kafka_props.kv[0].key, "sasl.username");
        TEST_EQ_INT(conf_set_override(conf, "features.type_weights.CART=4",
                                      errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(conf->type_weight[TERN_EV_CART], 4);
        conf_destroy(conf);
        TEST_EQ_STR(override_err("features.window_itemz=3"),
                    "-X features.window_itemz=3: unknown key");
        TEST_EQ_STR(override_err("features.window_items=2000"),
                    "-X features.window_items=2000: must be between 1 and 1000 "
                    "(got 2000)");
        TEST_EQ_STR(override_err("features.window_items"),
                    "-X features.window_items: expected key.path=value");
        TEST_EQ_STR(override_err("kafka.properties=x"),
                    "-X kafka.properties=x: kafka.properties is a map of "
                    "strings: set one entry as kafka.properties.NAME=value");
}

static void finalize_checks(void) {
        tern_conf_t *conf = conf_new();
        conf->ts_min_ms = 10;
        conf->ts_max_ms = 5;
        TEST_EQ_INT(conf_finalize(conf, errstr, sizeof(errstr)),
                    TERN_ERR_CONFIG);
        TEST_EQ_STR(errstr,
                    "input.ts_min_ms (10) must be below input.ts_max_ms (5)");
        conf_destroy(conf);
        conf = conf_new();
        TEST_EQ_INT(load(conf, "topics:\n  recommendations: behavior-events\n"),
                    TERN_OK);
        TEST_EQ_INT(conf_finalize(conf, errstr, sizeof(errstr)),
                    TERN_ERR_CONFIG);
        conf_destroy(conf);
}

static void secrets_redacted(void) {
        tern_conf_t *conf = conf_new();
        char *text = NULL;
        size_t len = 0;
        FILE *mem;
        TEST_EQ_INT(load(conf, "kafka:\n  properties:\n"
                               "    sasl.password: hunter2\n"
                               "    ssl.key.password: swordfish\n"),
                    TERN_OK);
        mem = open_memstream(&text, &len);
        conf_write_effective(conf, mem);
        fclose(mem);
        TEST_ASSERT(!strstr(text, "hunter2") && !strstr(text, "swordfish"),
                    "secret printed");
        TEST_ASSERT(strstr(text, "[redacted]"), "no redaction marker");
        free(text);
        conf_destroy(conf);
}

TEST_MAIN(TEST_CASE(defaults), TEST_CASE(example_file_is_generated),
          TEST_CASE(readme_reference_is_generated), TEST_CASE(loads_values),
          TEST_CASE(error_messages), TEST_CASE(syntax_errors),
          TEST_CASE(failed_load_changes_nothing), TEST_CASE(overrides),
          TEST_CASE(finalize_checks), TEST_CASE(secrets_redacted));
