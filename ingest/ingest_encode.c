/*
 * ingest_encode — tern_event_t to Avro binary, field by field in the order
 * of conf/schemas/behavior_event.avsc. Nullable fields are ["null", T]
 * unions: branch 0 = null, branch 1 = the value.
 */
#include "ingest_encode.h"

/* A required string: a NULL one is written as "" (the decoder then refuses
 * it as empty, which is the honest outcome). */
static int put_req_str(tern_buf_t *b, tern_str_t s) {
        return tern_buf_put_str(b, s.ptr ? s.ptr : "", s.ptr ? s.len : 0);
}

static int put_opt_str(tern_buf_t *b, tern_str_t s) {
        if (!s.ptr)
                return tern_buf_put_long(b, 0);
        if (tern_buf_put_long(b, 1))
                return -1;
        return tern_buf_put_str(b, s.ptr, s.len);
}

static int put_context(tern_buf_t *b, const tern_event_t *ev) {
        if (ev->n_context > 0) {
                /* one block holding every entry, then the end marker */
                if (tern_buf_put_long(b, ev->n_context))
                        return -1;
                for (uint32_t i = 0; i < ev->n_context; i++)
                        if (put_req_str(b, ev->context_key[i]) ||
                            put_req_str(b, ev->context_val[i]))
                                return -1;
        }
        return tern_buf_put_long(b, 0);
}

static int put_event(tern_buf_t *b, const tern_event_t *ev) {
        if (put_req_str(b, ev->event_id) || put_req_str(b, ev->user_id) ||
            put_opt_str(b, ev->item_id) || put_opt_str(b, ev->category_id) ||
            tern_buf_put_long(b, ev->type) || tern_buf_put_long(b, ev->ts_ms))
                return -1;
        if (ev->has_price
                ? tern_buf_put_long(b, 1) || tern_buf_put_double(b, ev->price)
                : tern_buf_put_long(b, 0))
                return -1;
        if (ev->has_quantity
                ? tern_buf_put_long(b, 1) || tern_buf_put_long(b, ev->quantity)
                : tern_buf_put_long(b, 0))
                return -1;
        if (put_opt_str(b, ev->impression_id) ||
            put_opt_str(b, ev->campaign_id))
                return -1;
        return put_context(b, ev);
}

int ingest_encode_event(const tern_event_t *ev, int32_t schema_id,
                        tern_buf_t *out) {
        size_t start = out->len;
        if ((int)ev->type < 0 || ev->type >= TERN_EV__CNT ||
            ev->n_context > TERN_EVENT_MAX_CONTEXT)
                return -1;
        if (schema_id >= 0 && (tern_buf_put_u8(out, 0x00) ||
                               tern_buf_put_u32be(out, (uint32_t)schema_id)))
                goto fail;
        if (put_event(out, ev))
                goto fail;
        return 0;
fail:
        out->len = start; /* no half record; overflow stays set */
        return -1;
}
