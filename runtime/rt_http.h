/*
 * rt_http — the HTTP endpoint of run, demo and replay, on libmicrohttpd:
 *   GET /metrics  Prometheus text format 0.0.4 (rt_metrics_format)
 *   GET /healthz  200 while the processing loop comes round, else 503
 *   GET /readyz   200 once state is open, partitions are assigned and the
 *                 first poll is done; 503 before, and again while stopping
 * HEAD is answered like GET without a body; other methods get 405, other
 * paths 404. Bodies are built in a bounded buffer (RT_HTTP_BODY_MAX).
 *
 * libmicrohttpd runs its own thread (MHD_USE_INTERNAL_POLLING_THREAD,
 * epoll): it reads only the rt_metrics_t's published snapshot and atomics,
 * never the pipeline's objects, so a slow scrape cannot slow the loop.
 *
 * Ownership: the rt_metrics_t is borrowed and must outlive the server.
 */
#ifndef RT_HTTP_H
#define RT_HTTP_H

#include <stddef.h>

#include "../common/tern_err.h"
#include "../conf/conf.h"
#include "rt_metrics.h"

#define RT_HTTP_BODY_MAX (1u << 20)

typedef struct rt_http rt_http_t;

/* listen: "host:port" (http.listen; port 0 = any free port). Logs
 * "listening on HOST:PORT" at info level, and prints that line whatever
 * log.level says: tests and scripts read the port from it. */
rt_http_t *rt_http_start(const char *listen, rt_metrics_t *m, char *errstr,
                         size_t errstr_size);
/* The port actually bound. */
int rt_http_port(const rt_http_t *h);
/* Stops the thread and closes the socket; NULL is fine. */
void rt_http_stop(rt_http_t *h);

/* What run, demo and replay share: with http.listen set, a new
 * rt_metrics_t and a started server in *m and *h; without, both NULL.
 * Returns -1 (the reason logged) when the endpoint cannot start. */
int rt_http_open(const tern_conf_t *conf, rt_metrics_t **m, rt_http_t **h);
/* Stops the server, then frees the metrics (after the pipeline is gone). */
void rt_http_close(rt_http_t *h, rt_metrics_t *m);

#endif
