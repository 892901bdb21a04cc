#include "rt_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rt_log.h"

#define CONNECTION_LIMIT   32
#define CONNECTION_TIMEOUT 10 /* seconds idle before a connection is closed */

struct rt_http {
        struct MHD_Daemon *daemon;
        rt_metrics_t *metrics;
        int port;
};

static const char *const PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8";
static const char *const JSON_TYPE = "application/json";
static const char *const TEXT_TYPE = "text/plain; charset=utf-8";

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *type, const tern_buf_t *body) {
        struct MHD_Response *resp;
        enum MHD_Result ret;
        if (body->overflow) {
                static const char msg[] = "response too large\n";
                resp = MHD_create_response_from_buffer(
                    sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                type = TEXT_TYPE;
        } else {
                resp = MHD_create_response_from_buffer(body->len, body->data,
                                                       MHD_RESPMEM_MUST_COPY);
        }
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                        "GET, HEAD");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* The snapshot is ~30 KiB: on the heap, not the server thread's stack. */
static unsigned int metrics_page(rt_metrics_t *m, tern_buf_t *body) {
        rt_metrics_snap_t *s = malloc(sizeof(*s));
        if (!s) {
                tern_buf_printf(body, "out of memory\n");
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        rt_metrics_read(m, s);
        rt_metrics_format(s, body);
        free(s);
        return MHD_HTTP_OK;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
        rt_http_t *h = cls;
        tern_buf_t body;
        unsigned int status;
        const char *type = JSON_TYPE;
        enum MHD_Result ret;
        (void)version;
        (void)upload_data;
        (void)con_cls;
        *upload_data_size = 0; /* a body is never read */
        tern_buf_init(&body, RT_HTTP_BODY_MAX);
        if (strcmp(method, MHD_HTTP_METHOD_GET) &&
            strcmp(method, MHD_HTTP_METHOD_HEAD)) {
                tern_buf_printf(&body, "only GET and HEAD\n");
                status = MHD_HTTP_METHOD_NOT_ALLOWED;
                type = TEXT_TYPE;
        } else if (!strcmp(url, "/metrics")) {
                status = metrics_page(h->metrics, &body);
                type = PROM_TYPE;
        } else if (!strcmp(url, "/healthz")) {
                status = (unsigned)rt_metrics_healthz(h->metrics, &body);
        } else if (!strcmp(url, "/readyz")) {
                status = (unsigned)rt_metrics_readyz(h->metrics, &body);
        } else {
                tern_buf_printf(&body,
                                "not found: try /metrics, /healthz, /readyz\n");
                status = MHD_HTTP_NOT_FOUND;
                type = TEXT_TYPE;
        }
        ret = reply(conn, status, type, &body);
        tern_buf_free(&body);
        return ret;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        size_t len;
        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
                msg[--len] = 0;
        RT_LOG(RT_LOG_WARN, "http", "%s", msg);
}

/* "host:port" -> host and port strings ("[v6]" loses its brackets; an
 * empty host means every interface). conf_finalize checked the shape. */
static int split_listen(const char *listen, char *host, size_t hsize,
                        const char **port) {
        const char *colon = strrchr(listen, ':');
        size_t hlen;
        if (!colon)
                return -1;
        *port = colon + 1;
        hlen = (size_t)(colon - listen);
        if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
                listen++;
                hlen -= 2;
        }
        if (hlen >= hsize)
                return -1;
        memcpy(host, listen, hlen);
        host[hlen] = 0;
        return 0;
}

static struct addrinfo *resolve(const char *listen, char *errstr,
                                size_t errstr_size) {
        struct addrinfo hints = {0}, *ai = NULL;
        char host[256];
        const char *port;
        int rc;
        if (split_listen(listen, host, sizeof(host), &port)) {
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "http.listen: expected host:port (got '%s')", listen);
                return NULL;
        }
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
        if (rc) {
                tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                          "http.listen %s: %s", listen, gai_strerror(rc));
                return NULL;
        }
        return ai;
}

static void log_listening(const struct addrinfo *ai, int port) {
        char host[NI_MAXHOST];
        int v6 = ai->ai_family == AF_INET6;
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL,
                        0, NI_NUMERICHOST))
                snprintf(host, sizeof(host), "?");
        /* Whatever log.level says: this line is how a caller that asked
         * for port 0 learns the port. */
        rt_log_write(RT_LOG_INFO, "http", NULL, -1, -1,
                     "listening on %s%s%s:%d (/metrics, /healthz, /readyz)",
                     v6 ? "[" : "", host, v6 ? "]" : "", port);
}

rt_http_t *rt_http_start(const char *listen, rt_metrics_t *m, char *errstr,
                         size_t errstr_size) {
        struct addrinfo *ai = resolve(listen, errstr, errstr_size);
        const union MHD_DaemonInfo *info;
        unsigned int flags =
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
        rt_http_t *h;
        if (!ai)
                return NULL;
        if (!(h = calloc(1, sizeof(*h)))) {
                freeaddrinfo(ai);
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM, "out of memory");
                return NULL;
        }
        h->metrics = m;
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* The logger first: MHD complains about options before it. */
        h->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT,
            MHD_OPTION_END);
        if (!h->daemon) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO,
                          "http.listen %s: cannot listen (address in use or "
                          "not local?)",
                          listen);
                goto fail;
        }
        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? (int)info->port : 0;
        log_listening(ai, h->port);
        freeaddrinfo(ai);
        return h;
fail:
        freeaddrinfo(ai);
        rt_http_stop(h);
        return NULL;
}

int rt_http_port(const rt_http_t *h) {
        return h->port;
}

void rt_http_stop(rt_http_t *h) {
        if (!h)
                return;
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        free(h);
}

int rt_http_open(const tern_conf_t *conf, rt_metrics_t **m, rt_http_t **h) {
        char errstr[512];
        *m = NULL;
        *h = NULL;
        if (!conf->http_listen || !*conf->http_listen)
                return 0;
        if (!(*m = rt_metrics_new(conf->http_stall_seconds))) {
                RT_LOG(RT_LOG_ERROR, "http", "out of memory");
                return -1;
        }
        if (!(*h = rt_http_start(conf->http_listen, *m, errstr,
                                 sizeof(errstr)))) {
                RT_LOG(RT_LOG_ERROR, "http", "%s", errstr);
                rt_metrics_destroy(*m);
                *m = NULL;
                return -1;
        }
        return 0;
}

void rt_http_close(rt_http_t *h, rt_metrics_t *m) {
        rt_http_stop(h);
        rt_metrics_destroy(m);
}
