/*
 * test_avro — records written with Avro-C's generic writer, for the tests
 * that decode what another writer schema wrote (0002, 0029): build a
 * value of a schema with aw_begin(), set its fields, write it with
 * aw_end(), which also frees the value, its class and its schema.
 */
#ifndef TEST_AVRO_H
#define TEST_AVRO_H

#include <avro.h>
#include <stdint.h>
#include <string.h>

typedef struct aw {
        avro_schema_t s;
        avro_value_iface_t *iface;
        avro_value_t v;
} aw_t;

static inline int aw_begin(aw_t *a, const char *json) {
        if (avro_schema_from_json_length(json, strlen(json), &a->s))
                return -1;
        a->iface = avro_generic_class_from_schema(a->s);
        return avro_generic_value_new(a->iface, &a->v);
}

/* The Avro body into out[cap], its length in *len; 0 when it fit. */
static inline int aw_end(aw_t *a, uint8_t *out, size_t cap, size_t *len) {
        avro_writer_t w = avro_writer_memory((const char *)out, (int64_t)cap);
        int rc = avro_value_write(w, &a->v);
        *len = (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        avro_value_decref(&a->v);
        avro_value_iface_decref(a->iface);
        avro_schema_decref(a->s);
        return rc;
}

static inline avro_value_t fld(avro_value_t *rec, const char *name) {
        avro_value_t f = {0};
        avro_value_get_by_name(rec, name, &f, NULL);
        return f;
}

static inline void set_str(avro_value_t *rec, const char *name, const char *s) {
        avro_value_t f = fld(rec, name);
        avro_value_set_string(&f, s);
}

/* Union ["null", T]: branch 0 null, branch b the value. */
static inline avro_value_t set_branch(avro_value_t *rec, const char *name,
                                      int b) {
        avro_value_t f = fld(rec, name), br;
        avro_value_set_branch(&f, b, &br);
        if (b == 0)
                avro_value_set_null(&br);
        return br;
}

static inline void set_opt_str(avro_value_t *rec, const char *name,
                               const char *s) {
        avro_value_t br = set_branch(rec, name, s ? 1 : 0);
        if (s)
                avro_value_set_string(&br, s);
}

#endif
