/*
 * rt_control — live control of a running pipeline: the control topic
 * (topics.control), SIGHUP reloads of the live YAML keys, and the live
 * configuration they build, stored with the state.
 *
 * CONTROL RECORDS are JSON objects (kcat can write them), validated
 * strictly by rt_control_parse() -- the same code `tern control` runs
 * before producing:
 *   {"op":"boost","item":I|"category":C,"factor":F[,"until_ts_ms":T]}
 *       0 < F <= 1000; until_ts_ms an event time in ms (absent or null:
 *       no end; in the past: accepted, already expired)
 *   {"op":"unboost","item":I|"category":C}
 *   {"op":"block","item":I}        {"op":"unblock","item":I}
 *   {"op":"blend"[,"similarity_weight":x][,"ctr_weight":y]}
 *   {"op":"churn"[,"alert_threshold":x][,"alert_rearm_threshold":y]
 *                [,"alert_cooldown_days":d]}
 *   {"op":"model","model":"ctr"[,"alpha":a][,"beta":b][,"l1":x][,"l2":y]}
 *   {"op":"model","model":"churn"[,"learning_rate":r][,"l2":y]}
 * plus optional "id" and "by" strings (audit, shown by inspect). Set ops
 * need at least one value; each value is checked against the property
 * table's min/max of its config key. Unknown ops or keys, wrong types,
 * duplicate keys, nesting: rejected. A rejected record goes to the
 * dead-letter topic (reason "control", the error, its source topic,
 * partition and offset), is counted, and changes nothing.
 *
 * ORDER AND ATOMICITY: every instance reads ALL partitions of the control
 * topic with its own consumer (manually assigned, no group), only between
 * batches: all records available then are applied at once, before the next
 * event. Each accepted record increments config_version (stamped on every
 * output record: rt_emit.h). The live state -- config_version, live key values,
 * boosts, blocks, the control offsets, the last applied change -- is one
 * record in the meta column family ("control"), written by a feature-engine
 * writer in the SAME WriteBatch as the batch's state and input offsets, so
 * a crash never separates them; after a restart the records past the
 * stored control offsets are read again.
 *
 * SIGHUP (rt_control_reload): the file is read again; a changed live key
 * (CONF_F_LIVE) is applied between batches like a control record (one
 * config_version increment for the reload); any other changed key is
 * refused with a log line naming the key and the file, and keeps its old
 * value. Latest change wins, per key: SIGHUP applies only the keys whose
 * value in the file changed since it was last read, so a value set on the
 * control topic stays until the file's value of that key changes. At a
 * restart the same rule holds: a stored live value wins unless the file's
 * value differs from the one stored with it (the file changed while tern
 * was down), in which case the file's value is applied (and counted as a
 * change).
 *
 * Ownership: rt_control_new() borrows the live config (the pipeline's own
 * mutable copy, whose live keys and config_version it changes), the store
 * and the engine; rt_control_start() borrows the emitter and the
 * neighbour source it wires its boost and block hooks into. One thread
 * (the pipeline's).
 */
#ifndef RT_CONTROL_H
#define RT_CONTROL_H

#include <stdint.h>

#include "../common/tern_buf.h"
#include "../common/tern_err.h"
#include "../conf/conf.h"
#include "../features/feat_engine.h"
#include "../models/model_boost.h"
#include "../models/model_recs.h"
#include "rt_emit.h"

#define RT_CONTROL_MAX_RECORD (64u << 10) /* larger records are rejected */
#define RT_CONTROL_MAX_SETS   8
#define RT_CONTROL_MAX_AUDIT  128 /* bytes of "id" and "by" */
/* The stored live state is one record of at most RT_CONTROL_MAX_STATE
 * bytes, the boosts and blocks at most RT_CONTROL_MAX_BOOSTS of it (the
 * rest: live keys, offsets, the last change). A boost or block that would
 * pass it is rejected (TERN_ERR_LIMIT, dead-lettered): accepted, it would
 * fail every commit, and the replay of the same record after a restart
 * would fail again. */
#define RT_CONTROL_MAX_STATE  (64u << 20)
#define RT_CONTROL_MAX_BOOSTS (RT_CONTROL_MAX_STATE - (1u << 20))

/* The values the set ops (blend, churn, model) set, in one table that the
 * validator, `tern control`'s flags and `tern inspect control` read: the
 * record's op (and model), its key, the config key it sets, the flag. */
typedef struct rt_control_field {
        const char *op, *model, *key, *path, *flag;
} rt_control_field_t;
#define RT_CONTROL_N_FIELDS 11
extern const rt_control_field_t rt_control_fields[RT_CONTROL_N_FIELDS];

typedef enum rt_control_kind {
        RT_CTL_BOOST = 0,
        RT_CTL_UNBOOST,
        RT_CTL_BLOCK,
        RT_CTL_UNBLOCK,
        RT_CTL_SET /* blend, churn, model: live key values */
} rt_control_kind_t;

typedef struct rt_control_op {
        rt_control_kind_t kind;
        model_boost_kind_t target; /* ITEM or CATEGORY */
        char id[MODEL_BOOST_MAX_ID + 1];
        uint32_t id_len;
        double factor;
        int64_t until_ts_ms; /* MODEL_BOOST_FOREVER when absent */
        uint32_t n_sets;
        struct {
                size_t live; /* conf_live_path(live) */
                double value;
        } sets[RT_CONTROL_MAX_SETS];
} rt_control_op_t;

/* Validate one record. TERN_OK and *op filled, or TERN_ERR_INVALID_ARG
 * with the reason (naming the key) in errstr. */
tern_code_t rt_control_parse(const char *json, size_t len, rt_control_op_t *op,
                             char *errstr, size_t errstr_size);

/* Apply a parsed op to a live config and a boost table; TERN_ERR_LIMIT
 * when a table is full or RT_CONTROL_MAX_BOOSTS would be passed (then
 * nothing changed). */
tern_code_t rt_control_apply_op(const rt_control_op_t *op, tern_conf_t *live,
                                model_boost_t *boosts, char *errstr,
                                size_t errstr_size);

typedef struct rt_control rt_control_t;

/* What the pipeline does when live key values change: push them into the
 * ranking and the models (the live config already holds them). */
typedef struct rt_control_hooks {
        void (*apply_live)(void *opaque, const tern_conf_t *live);
        void *opaque;
} rt_control_hooks_t;

/* Loads the stored live state into live (base: the config as read from
 * the file and -X, to tell which stored values the file overrides) and
 * registers the commit writer. No Kafka yet: build the models from live
 * after this. */
rt_control_t *rt_control_new(tern_conf_t *live, const tern_conf_t *base,
                             feat_store_t *st, feat_engine_t *eng, char *errstr,
                             size_t errstr_size);
void rt_control_destroy(rt_control_t *ctl);

/* Applies the file's changes found at load, wires src's boost and block
 * hooks, and opens the control consumer on brokers (NULL: the config's).
 * A control topic that does not exist yet is looked for again later. */
tern_code_t rt_control_start(rt_control_t *ctl, const char *brokers,
                             const rt_emit_t *emit, const rt_control_hooks_t *h,
                             model_nb_source_t *src, char *errstr,
                             size_t errstr_size);

/* Between batches: apply every control record available. Returns the
 * number of records read (accepted or not). */
uint32_t rt_control_poll(rt_control_t *ctl);
/* SIGHUP: file is the config just read from the file (and -X). */
void rt_control_reload(rt_control_t *ctl, const tern_conf_t *file);
/* The live state changed since the last commit (commit even without
 * events). */
int rt_control_dirty(const rt_control_t *ctl);
/* Every applied event: the item's category, for category boosts. */
void rt_control_on_event(rt_control_t *ctl, const tern_event_t *ev);

/* applied and rejected count control records and are kept with the
 * state (they survive restarts); last_partition and last_offset place the
 * last applied record (-1: none, or the last change was a SIGHUP reload
 * before this process started). */
typedef struct rt_control_stats {
        uint64_t applied, rejected, reloads;
        int64_t config_version;
        int32_t last_partition;
        int64_t last_offset;
} rt_control_stats_t;
void rt_control_stats(const rt_control_t *ctl, rt_control_stats_t *out);

/* The `tern inspect control` document of the live state. */
void rt_control_json(const rt_control_t *ctl, tern_buf_t *out);
/* The same read from a store (conf: defaults for what was never set). */
tern_code_t rt_control_inspect_json(const tern_conf_t *conf, feat_store_t *st,
                                    tern_buf_t *out, char *errstr,
                                    size_t errstr_size);

#endif
