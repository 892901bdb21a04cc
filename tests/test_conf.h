/*
 * test_conf — a pipeline config for the in-process tests (0009, 0021,
 * 0025): the built-in defaults, then each "key=value" override of the
 * NULL-terminated lists in order (a bad one is reported on stderr, the
 * test's own checks then fail), and state.dir set to the test's directory.
 * Header-only: the harness library links tern_common alone.
 * The caller owns the config (conf_destroy()).
 */
#ifndef TEST_CONF_H
#define TEST_CONF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"

static inline void test_conf_apply(tern_conf_t *conf,
                                   const char *const *overrides) {
        char errstr[512];
        for (; overrides && *overrides; overrides++)
                if (conf_set_override(conf, *overrides, errstr, sizeof(errstr)))
                        fprintf(stderr, "override %s: %s\n", *overrides,
                                errstr);
}

static inline tern_conf_t *test_conf_new(const char *state_dir,
                                         const char *const *overrides,
                                         const char *const *more) {
        tern_conf_t *conf = conf_new();
        test_conf_apply(conf, overrides);
        test_conf_apply(conf, more);
        free(conf->state_dir);
        conf->state_dir = strdup(state_dir);
        return conf;
}

#endif
