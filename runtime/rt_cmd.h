/*
 * rt_cmd — the subcommands of the `tern` binary, and what they share:
 * loading the config from -c FILE and -X overrides (exit 2 on a config
 * error), the stop flag set by SIGINT/SIGTERM, and small parsers.
 */
#ifndef RT_CMD_H
#define RT_CMD_H

#include <signal.h>
#include <stdint.h>

#include "../conf/conf.h"

typedef struct rt_cmd {
        const char *name;
        const char *summary;
        int (*main)(int argc, char **argv);
} rt_cmd_t;

extern const rt_cmd_t rt_cmd_demo, rt_cmd_run, rt_cmd_broker, rt_cmd_produce,
    rt_cmd_replay, rt_cmd_inspect, rt_cmd_bench, rt_cmd_config;
extern const rt_cmd_t rt_cmd_control;

/* Exit codes. */
#define RT_EXIT_OK    0
#define RT_EXIT_FAIL  1 /* a runtime failure (broker, state, delivery) */
#define RT_EXIT_USAGE 2 /* bad arguments or config */

/* -X overrides collected while parsing arguments. */
typedef struct rt_overrides {
        const char *items[256];
        int n;
} rt_overrides_t;

/* Add one -X; returns -1 (with a message on stderr) when there are too many. */
int rt_overrides_add(rt_overrides_t *o, const char *assignment);

/* The options every config-reading command shares: -c FILE, -X key=value,
 * --state-dir DIR (sugar for -X state.dir=DIR), and on the commands that
 * list it, --http ADDR (sugar for -X http.listen=ADDR). */
#define RT_OPT_STATE_DIR 1000
#define RT_OPT_HTTP      1001
typedef struct rt_common_opts {
        const char *file;
        rt_overrides_t ov;
        char state_dir_assignment[4200];
        char http_assignment[300];
} rt_common_opts_t;

/* 1: c was a common option and is taken; 0: not a common option;
 * -1: bad (message printed). */
int rt_common_opt(rt_common_opts_t *co, int c, const char *arg);

/* Defaults, then FILE (if not NULL), then each -X, then the cross-key
 * checks. On error prints "tern CMD: <message>" and returns NULL. Also
 * applies log.level/log.format. */
tern_conf_t *rt_conf_load(const char *cmd, const rt_common_opts_t *co);

/* Set by SIGINT/SIGTERM (a second signal exits at once). */
extern volatile sig_atomic_t rt_stop;
void rt_signals_install(void);
/* Set by SIGHUP once rt_signals_install_reload() ran (tern run, demo):
 * the pipeline re-reads the config file between batches (rt_control.h). */
extern volatile sig_atomic_t rt_reload;
void rt_signals_install_reload(void);
/* The config again from co's file and -X (for SIGHUP): NULL with the
 * message in errstr, nothing printed, log settings untouched. */
tern_conf_t *rt_conf_reload(const rt_common_opts_t *co, char *errstr,
                            size_t errstr_size);
/* rt_pipeline_opts_t.reload for a command's rt_common_opts_t. */
tern_conf_t *rt_conf_reload_cb(void *co, char *errstr, size_t errstr_size);

/* Wall clock in ms / ns, for batching, progress and benchmarks only:
 * never for anything that ends up in state or outputs. */
int64_t rt_wall_ms(void);
int64_t rt_mono_ns(void);

/* --input PATH --format F of produce and replay: both given, a known
 * format, a readable file. Prints "tern CMD: ..." and returns -1 if not. */
int rt_input_args(const char *cmd, const char *input, const char *format,
                  int *fmt_out);

/* Strict decimal parse; -1 on anything else. */
int rt_parse_i64(const char *s, int64_t *out);

#endif
