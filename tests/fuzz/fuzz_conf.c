/*
 * fuzz_conf: the YAML config loader and -X overrides on hostile input.
 * Every input must either load or fail with a message; a failed load must
 * leave the config as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        tern_conf_t *conf = conf_new();
        char errstr[1024], *text = malloc(size + 1);
        int64_t window_before = conf->window_items;
        memcpy(text, data, size);
        text[size] = '\0';
        if (conf_load_string(conf, "fuzz.yaml", text, size, errstr,
                             sizeof(errstr)) != TERN_OK) {
                if (!errstr[0] || conf->window_items != window_before)
                        abort();
        } else {
                conf_finalize(conf, errstr, sizeof(errstr));
        }
        /* The same bytes as one -X assignment. */
        conf_set_override(conf, text, errstr, sizeof(errstr));
        free(text);
        conf_destroy(conf);
        return 0;
}
