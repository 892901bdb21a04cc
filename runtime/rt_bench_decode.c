#include <avro.h>
#include <string.h>

#include "../ingest/ingest_decode.h"
#include "rt_bench.h"
#include "rt_cmd.h"
#include "rt_stages.h"

/* One pass of tern's decoder; -1 when a record fails (it must not). */
static int64_t pass_tern(const ingest_decoder_t *dec, const uint8_t *data,
                         const uint32_t *lens, size_t n, uint64_t *sink) {
        const uint8_t *at = data;
        int64_t t0 = rt_mono_ns();
        char errstr[256];
        for (size_t i = 0; i < n; i++) {
                tern_event_t ev;
                const char *reason = NULL;
                tern_event_clear(&ev);
                if (ingest_decode(dec, at, lens[i], &ev, &reason, errstr,
                                  sizeof(errstr)) != TERN_OK)
                        return -1;
                *sink += (uint64_t)ev.ts_ms + ev.user_id.len;
                at += lens[i];
        }
        return rt_mono_ns() - t0;
}

/* One pass of Avro-C's generic reader into one reused value, as an
 * application using Avro-C would decode a stream of records. */
static int64_t pass_avro(avro_value_t *v, const uint8_t *data,
                         const uint32_t *lens, size_t n, uint64_t *sink) {
        const uint8_t *at = data;
        avro_reader_t rd = avro_reader_memory((const char *)data, 1);
        int64_t t0 = rt_mono_ns();
        for (size_t i = 0; i < n; i++) {
                avro_value_t f;
                int64_t ts = 0;
                avro_reader_memory_set_source(rd, (const char *)at,
                                              (int64_t)lens[i]);
                if (avro_value_read(rd, v) ||
                    avro_value_get_by_name(v, "ts_ms", &f, NULL) ||
                    avro_value_get_long(&f, &ts)) {
                        avro_reader_free(rd);
                        return -1;
                }
                *sink += (uint64_t)ts;
                at += lens[i];
        }
        t0 = rt_mono_ns() - t0;
        avro_reader_free(rd);
        return t0;
}

tern_code_t rt_bench_decode(const tern_conf_t *conf, const uint8_t *data,
                            const uint32_t *lens, size_t n, int rounds,
                            rt_decode_cmp_t *out, char *errstr,
                            size_t errstr_size) {
        ingest_decoder_t *dec = rt_stages_decoder(conf, errstr, errstr_size);
        avro_schema_t schema = NULL;
        avro_value_iface_t *iface = NULL;
        avro_value_t v;
        int have_v = 0;
        uint64_t sink = 0;
        int64_t best_t = INT64_MAX, best_a = INT64_MAX;
        tern_code_t rc = TERN_OK;
        memset(out, 0, sizeof(*out));
        if (!dec)
                return TERN_ERR_CONFIG;
        if (avro_schema_from_json_length(ingest_behavior_event_schema,
                                         strlen(ingest_behavior_event_schema),
                                         &schema) ||
            !(iface = avro_generic_class_from_schema(schema)) ||
            avro_generic_value_new(iface, &v)) {
                rc = tern_errf(errstr, errstr_size, TERN_ERR_CONFIG, "avro: %s",
                               avro_strerror());
                goto out;
        }
        have_v = 1;
        for (int r = 0; r < rounds; r++) {
                int64_t t = pass_tern(dec, data, lens, n, &sink);
                int64_t a = pass_avro(&v, data, lens, n, &sink);
                if (t < 0 || a < 0) {
                        rc = tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                       "decode comparison: a record failed "
                                       "(%s)",
                                       t < 0 ? "tern" : avro_strerror());
                        goto out;
                }
                best_t = t < best_t ? t : best_t;
                best_a = a < best_a ? a : best_a;
        }
        out->records = n;
        for (size_t i = 0; i < n; i++)
                out->bytes += lens[i];
        out->tern_ns = n ? (double)best_t / (double)n : 0;
        out->avro_ns = n ? (double)best_a / (double)n : 0;
out:
        if (have_v)
                avro_value_decref(&v);
        if (iface)
                avro_value_iface_decref(iface);
        if (schema)
                avro_schema_decref(schema);
        ingest_decoder_destroy(dec);
        return rc;
}
