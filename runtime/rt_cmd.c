#include "rt_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../ingest/ingest_file.h"
#include "rt_log.h"

volatile sig_atomic_t rt_stop;
volatile sig_atomic_t rt_reload;

static void on_hup(int sig) {
        (void)sig;
        rt_reload = 1;
}

void rt_signals_install_reload(void) {
        struct sigaction sa = {0};
        sa.sa_handler = on_hup;
        /* The flag is polled between batches: nothing needs waking, and a
         * reload must not fail a system call (EINTR) on the way. */
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGHUP, &sa, NULL);
}

static void on_signal(int sig) {
        if (rt_stop) {
                /* Second signal: the user insists; state is safe (WAL). */
                signal(sig, SIG_DFL);
                raise(sig);
        }
        rt_stop = 1;
}

void rt_signals_install(void) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

int rt_overrides_add(rt_overrides_t *o, const char *assignment) {
        if (o->n >= (int)(sizeof(o->items) / sizeof(o->items[0]))) {
                fprintf(stderr, "tern: too many -X options\n");
                return -1;
        }
        o->items[o->n++] = assignment;
        return 0;
}

int rt_common_opt(rt_common_opts_t *co, int c, const char *arg) {
        switch (c) {
        case 'c':
                co->file = arg;
                return 1;
        case 'X':
                return rt_overrides_add(&co->ov, arg) ? -1 : 1;
        case RT_OPT_STATE_DIR:
                snprintf(co->state_dir_assignment,
                         sizeof(co->state_dir_assignment), "state.dir=%s", arg);
                return rt_overrides_add(&co->ov, co->state_dir_assignment) ? -1
                                                                           : 1;
        case RT_OPT_HTTP:
                if ((size_t)snprintf(
                        co->http_assignment, sizeof(co->http_assignment),
                        "http.listen=%s", arg) >= sizeof(co->http_assignment)) {
                        fprintf(stderr, "tern: --http: address too long\n");
                        return -1;
                }
                return rt_overrides_add(&co->ov, co->http_assignment) ? -1 : 1;
        default:
                return 0;
        }
}

tern_conf_t *rt_conf_reload(const rt_common_opts_t *co, char *errstr,
                            size_t errstr_size) {
        const rt_overrides_t *o = &co->ov;
        tern_conf_t *conf = conf_new();
        tern_code_t rc = TERN_OK;
        if (co->file)
                rc = conf_load_file(conf, co->file, errstr, errstr_size);
        for (int i = 0; rc == TERN_OK && i < o->n; i++)
                rc = conf_set_override(conf, o->items[i], errstr, errstr_size);
        if (rc == TERN_OK)
                rc = conf_finalize(conf, errstr, errstr_size);
        if (rc != TERN_OK) {
                conf_destroy(conf);
                return NULL;
        }
        return conf;
}

tern_conf_t *rt_conf_reload_cb(void *co, char *errstr, size_t errstr_size) {
        return rt_conf_reload(co, errstr, errstr_size);
}

tern_conf_t *rt_conf_load(const char *cmd, const rt_common_opts_t *co) {
        char errstr[1024];
        tern_conf_t *conf = rt_conf_reload(co, errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "tern %s: %s\n", cmd, errstr);
                return NULL;
        }
        rt_log_level = conf->log_level;
        rt_log_json = conf->log_format == 1;
        return conf;
}

int rt_input_args(const char *cmd, const char *input, const char *format,
                  int *fmt_out) {
        if (!input || !format) {
                fprintf(stderr, "tern %s: --input and --format are required\n",
                        cmd);
                return -1;
        }
        *fmt_out = ingest_format_parse(format);
        if (*fmt_out < 0) {
                fprintf(stderr, "tern %s: unknown format '%s' (one of %s)\n",
                        cmd, format, ingest_format_list());
                return -1;
        }
        if (access(input, R_OK) != 0) {
                fprintf(stderr, "tern %s: cannot read %s: %m\n", cmd, input);
                return -1;
        }
        return 0;
}

int64_t rt_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rt_mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rt_parse_i64(const char *s, int64_t *out) {
        char *end;
        long long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
                return -1;
        *out = v;
        return 0;
}
