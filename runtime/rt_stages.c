#include "rt_stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *read_text_file(const char *path, char *errstr,
                            size_t errstr_size) {
        FILE *f = fopen(path, "rb");
        char *text;
        long size;
        if (!f) {
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG, "%s: %m", path);
                return NULL;
        }
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
        if (size < 0 || size > (1 << 20)) {
                fclose(f);
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "%s: not a schema file (size %ld)", path, size);
                return NULL;
        }
        text = malloc((size_t)size + 1);
        text[fread(text, 1, (size_t)size, f)] = '\0';
        fclose(f);
        return text;
}

void rt_stages_limits(const tern_conf_t *conf, ingest_limits_t *l) {
        ingest_limits_default(l);
        l->max_record_bytes = (size_t)conf->max_record_bytes;
        l->max_string_bytes = (size_t)conf->max_string_bytes;
        l->max_context_entries = (uint32_t)conf->max_context_entries;
        l->max_collection_items = (uint32_t)conf->max_collection_items;
        l->max_depth = (uint32_t)conf->max_depth;
        l->ts_min_ms = conf->ts_min_ms;
        l->ts_max_ms = conf->ts_max_ms;
}

ingest_decoder_t *rt_stages_decoder(const tern_conf_t *conf, char *errstr,
                                    size_t errstr_size) {
        ingest_limits_t limits;
        ingest_decoder_t *dec;
        char *writer = NULL;
        tern_code_t rc;
        rt_stages_limits(conf, &limits);
        dec =
            ingest_decoder_new(NULL, &limits, (ingest_wire_t)conf->wire_format,
                               errstr, errstr_size);
        if (!dec)
                return NULL;
        if (*conf->writer_schema) {
                writer =
                    read_text_file(conf->writer_schema, errstr, errstr_size);
                if (!writer)
                        goto fail;
        }
        rc = ingest_decoder_set_raw_schema(
            dec, writer ? writer : ingest_behavior_event_schema, errstr,
            errstr_size);
        /* With a Schema Registry, ids (1 too) are the registry's; the
         * schema directory is its last fallback (rt_schemas.h). */
        if (rc == TERN_OK && !*conf->schema_registry_url)
                rc = ingest_decoder_add_schema(
                    dec, 1, ingest_behavior_event_schema, errstr, errstr_size);
        if (rc == TERN_OK && *conf->schema_dir && !*conf->schema_registry_url)
                rc = ingest_decoder_load_schema_dir(dec, conf->schema_dir,
                                                    errstr, errstr_size);
        free(writer);
        if (rc == TERN_OK)
                return dec;
fail:
        ingest_decoder_destroy(dec);
        return NULL;
}

feat_store_t *rt_stages_store(const tern_conf_t *conf, const char *state_dir,
                              int read_only, char *errstr, size_t errstr_size) {
        char current[4200];
        feat_store_conf_t sc = {
            .dir = state_dir ? state_dir : conf->state_dir,
            .block_cache_mb = (size_t)conf->block_cache_mb,
            .write_buffer_mb = (size_t)conf->write_buffer_mb,
            .universal = conf->compaction == TERN_COMPACTION_UNIVERSAL,
            .sync = conf->sync_writes,
            .read_only = read_only,
        };
        /* Reading must not create: RocksDB's read-only open would make the
         * directory of a mistyped path. */
        snprintf(current, sizeof(current), "%s/CURRENT", sc.dir);
        if (read_only && access(current, F_OK) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_NOT_FOUND,
                          "no tern state in %s", sc.dir);
                return NULL;
        }
        return feat_store_open(&sc, errstr, errstr_size);
}

feat_engine_t *rt_stages_engine(const tern_conf_t *conf, feat_store_t *st,
                                char *errstr, size_t errstr_size) {
        feat_conf_t fc;
        feat_conf_default(&fc);
        fc.window_items = (uint32_t)conf->window_items;
        fc.window_seconds = conf->window_seconds;
        for (int t = 0; t < TERN_EV__CNT; t++)
                fc.type_weight[t] = (int32_t)conf->type_weight[t];
        fc.session_gap_seconds = conf->session_gap_seconds;
        fc.gap_ewma_alpha = conf->gap_ewma_alpha;
        fc.affinity_half_life_seconds = conf->affinity_half_life_seconds;
        fc.affinity_top_k = (uint32_t)conf->affinity_top_k;
        fc.recent_items = (uint32_t)conf->recent_items;
        fc.top_neighbors = (uint32_t)conf->top_neighbors;
        fc.trending_size = (uint32_t)conf->trending_size;
        fc.max_cached_users = (uint64_t)conf->max_cached_users;
        fc.max_cached_user_bytes = (uint64_t)conf->max_cached_users_mb << 20;
        fc.max_cached_pairs = (uint64_t)conf->max_cached_pairs;
        fc.max_cached_items = (uint64_t)conf->max_cached_items;
        fc.pair_filter_bytes = (uint64_t)conf->pair_filter_mb << 20;
        return feat_engine_new(st, &fc, errstr, errstr_size);
}

model_recs_t *rt_stages_recs(const tern_conf_t *conf) {
        model_recs_conf_t rc;
        model_recs_conf_default(&rc);
        rc.top_n = (uint32_t)conf->recs_top_n;
        rc.seed_items = (uint32_t)conf->recs_seed_items;
        rc.recency_half_life_seconds = conf->recs_recency_half_life_seconds;
        for (int t = 0; t < TERN_EV__CNT; t++)
                rc.type_boost[t] = conf->recs_type_boost[t];
        rc.similarity_weight = conf->recs_similarity_weight;
        rc.ctr_weight = conf->ctr_enabled ? conf->recs_ctr_weight : 0;
        rc.ctr_candidates = (uint32_t)conf->recs_ctr_candidates;
        return model_recs_new(&rc);
}

static tern_code_t neighbours_of(void *opaque, const char *item, uint32_t len,
                                 const feat_neighbor_t **out, uint32_t *n_out,
                                 char *errstr, size_t errstr_size) {
        return feat_engine_top_neighbors(opaque, item, len, out, n_out, errstr,
                                         errstr_size);
}

static void trending_of(void *opaque, const feat_neighbor_t **out,
                        uint32_t *n_out) {
        feat_engine_trending(opaque, out, n_out);
}

model_nb_source_t rt_stages_nb_source(feat_engine_t *eng) {
        model_nb_source_t src = {eng, neighbours_of, trending_of, NULL};
        return src;
}
