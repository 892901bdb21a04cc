/*
 * rt_stages — build each stage's object from the config. The one place
 * where config keys become stage settings.
 */
#ifndef RT_STAGES_H
#define RT_STAGES_H

#include "../conf/conf.h"
#include "../features/feat_engine.h"
#include "../ingest/ingest_decode.h"
#include "../models/model_recs.h"

ingest_decoder_t *rt_stages_decoder(const tern_conf_t *conf, char *errstr,
                                    size_t errstr_size);
/* state_dir NULL = conf->state_dir. */
feat_store_t *rt_stages_store(const tern_conf_t *conf, const char *state_dir,
                              int read_only, char *errstr, size_t errstr_size);
feat_engine_t *rt_stages_engine(const tern_conf_t *conf, feat_store_t *st,
                                char *errstr, size_t errstr_size);
model_recs_t *rt_stages_recs(const tern_conf_t *conf);
void rt_stages_limits(const tern_conf_t *conf, ingest_limits_t *l);
/* The feature engine as the recommender's neighbour source. */
model_nb_source_t rt_stages_nb_source(feat_engine_t *eng);

#endif
