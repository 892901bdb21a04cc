#include "ingest_event.h"

const char *const tern_event_type_names[TERN_EV__CNT] = {
    "VIEW", "CLICK", "CART", "FAVORITE", "PURCHASE", "IMPRESSION"};

int tern_event_type_parse(const char *s, size_t len) {
        for (int t = 0; t < TERN_EV__CNT; t++) {
                const char *name = tern_event_type_names[t];
                if (strlen(name) == len && memcmp(name, s, len) == 0)
                        return t;
        }
        return -1;
}
