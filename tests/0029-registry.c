/*
 * 0029-registry: the Schema Registry client (ingest_registry), reader
 * defaults (ingest_decode) and schema evolution through the runtime's
 * lookup (rt_schemas), against a small HTTP server on loopback started by
 * the test (a thread; it counts requests and can be slow, failing or
 * gone).
 *
 * Records of evolved writer schemas are written with Avro-C's generic
 * writer, not tern's encoder.
 */
#include <arpa/inet.h>
#include <avro.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest/ingest_decode.h"
#include "ingest/ingest_encode.h"
#include "ingest/ingest_jwalk.h"
#include "ingest/ingest_registry.h"
#include "runtime/rt_schemas.h"
#include "test.h"
#include "test_avro.h"

/* ---------------------------------------------------------------------- */
/* The loopback registry.                                                  */

#define ROUTES_MAX 16

typedef struct route {
        int32_t id;
        int status;
        char *body;
} route_t;

typedef struct srv {
        int fd, port;
        pthread_t th;
        atomic_int stop, requests, delay_ms;
        route_t routes[ROUTES_MAX];
        int n_routes;
        pthread_mutex_t mu;
        char last_auth[256];
        char last_path[256];
} srv_t;

/* {"schema": "<json as a JSON string>"} */
static char *answer_of(const char *schema) {
        size_t n = strlen(schema);
        char *out = malloc(2 * n + 32), *w = out;
        w += sprintf(w, "{\"id\":0,\"schema\":\"");
        for (const char *p = schema; *p; p++) {
                if (*p == '"' || *p == '\\')
                        *w++ = '\\';
                *w++ = *p;
        }
        strcpy(w, "\"}");
        return out;
}

static void srv_route(srv_t *s, int32_t id, int status, const char *body) {
        pthread_mutex_lock(&s->mu);
        s->routes[s->n_routes++] = (route_t){id, status, strdup(body)};
        pthread_mutex_unlock(&s->mu);
}

static void srv_schema(srv_t *s, int32_t id, const char *schema) {
        char *body = answer_of(schema);
        srv_route(s, id, 200, body);
        free(body);
}

static void srv_answer(srv_t *s, int c, const char *req) {
        const char *auth = strstr(req, "Authorization: ");
        char path[256] = "";
        int32_t id = -1;
        int status = 404;
        const char *body = "{\"error_code\":40403,\"message\":\"Schema not "
                           "found\"}";
        char head[256];
        sscanf(req, "GET %255s", path);
        sscanf(path, "/schemas/ids/%d", &id);
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_path, sizeof(s->last_path), "%s", path);
        s->last_auth[0] = '\0';
        if (auth)
                sscanf(auth + 15, "%255[^\r]", s->last_auth);
        for (int i = 0; i < s->n_routes; i++)
                if (s->routes[i].id == id) {
                        status = s->routes[i].status;
                        body = s->routes[i].body;
                }
        pthread_mutex_unlock(&s->mu);
        if (atomic_load(&s->delay_ms))
                usleep((useconds_t)atomic_load(&s->delay_ms) * 1000);
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 status, strlen(body));
        /* the client may have given up (timeout): no SIGPIPE */
        if (send(c, head, strlen(head), MSG_NOSIGNAL) < 0 ||
            send(c, body, strlen(body), MSG_NOSIGNAL) < 0)
                return;
}

static void *srv_main(void *opaque) {
        srv_t *s = opaque;
        while (!atomic_load(&s->stop)) {
                struct pollfd pf = {s->fd, POLLIN, 0};
                char req[8192];
                size_t n = 0;
                ssize_t got;
                int c;
                if (poll(&pf, 1, 50) <= 0)
                        continue;
                if ((c = accept(s->fd, NULL, NULL)) < 0)
                        continue;
                while (n < sizeof(req) - 1 &&
                       (got = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
                        n += (size_t)got;
                        req[n] = '\0';
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[n] = '\0';
                atomic_fetch_add(&s->requests, 1);
                srv_answer(s, c, req);
                close(c);
        }
        return NULL;
}

static srv_t *srv_start(void) {
        srv_t *s = calloc(1, sizeof(*s));
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        pthread_mutex_init(&s->mu, NULL);
        s->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) ||
            listen(s->fd, 16) ||
            getsockname(s->fd, (struct sockaddr *)&a, &len))
                abort();
        s->port = ntohs(a.sin_port);
        pthread_create(&s->th, NULL, srv_main, s);
        return s;
}

static void srv_stop(srv_t *s) {
        atomic_store(&s->stop, 1);
        pthread_join(s->th, NULL);
        close(s->fd);
        for (int i = 0; i < s->n_routes; i++)
                free(s->routes[i].body);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void) {
        srv_t *s = srv_start();
        int port = s->port;
        srv_stop(s);
        return port;
}

static void url_of(int port, char *buf, size_t size) {
        snprintf(buf, size, "http://127.0.0.1:%d/", port);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* Schemas and records.                                                    */

#define BASE_FIELDS                                                            \
        "{\"name\":\"event_id\",\"type\":\"string\"},"                         \
        "{\"name\":\"user_id\",\"type\":\"string\"},"

#define EVENT_TYPE                                                             \
        "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"VIEW\","     \
        "\"CLICK\",\"CART\",\"FAVORITE\",\"PURCHASE\",\"IMPRESSION\"]}"

/* Adds "coupon" (not in the reader: skipped), drops category_id,
 * impression_id, campaign_id, quantity and context (reader defaults),
 * ts_ms as int (-> long), price as float (-> double), EventType symbols
 * reordered (resolved by name). */
static const char evolved[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":[" BASE_FIELDS
    "{\"name\":\"coupon\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"event_type\",\"type\":{\"type\":\"enum\",\"name\":"
    "\"EventType\",\"symbols\":[\"PURCHASE\",\"CART\",\"VIEW\",\"CLICK\","
    "\"FAVORITE\",\"IMPRESSION\"]}},"
    "{\"name\":\"ts_ms\",\"type\":\"int\"},"
    "{\"name\":\"price\",\"type\":\"float\"}"
    "]}";

/* ts_ms became a string: cannot be read as the reader's long. */
static const char incompatible[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":[" BASE_FIELDS "{\"name\":\"event_type\",\"type\":" EVENT_TYPE
    "},"
    "{\"name\":\"ts_ms\",\"type\":\"string\"}]}";

/* A reader with declared defaults that are not null. */
static const char reader_with_defaults[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":[" BASE_FIELDS
    "{\"name\":\"item_id\",\"type\":\"string\",\"default\":\"no-item\"},"
    "{\"name\":\"category_id\",\"type\":[\"string\",\"null\"],"
    " \"default\":\"c\\u00e9\"},"
    "{\"name\":\"event_type\",\"default\":\"CLICK\",\"type\":" EVENT_TYPE "},"
    "{\"name\":\"ts_ms\",\"type\":\"long\"},"
    "{\"name\":\"price\",\"type\":[\"double\",\"null\"],\"default\":9.5},"
    "{\"name\":\"quantity\",\"type\":\"int\",\"default\":3},"
    "{\"name\":\"campaign_id\",\"type\":[\"null\",\"string\"],"
    " \"default\":null},"
    "{\"name\":\"context\",\"type\":{\"type\":\"map\",\"values\":\"string\"},"
    " \"default\":{}}"
    "]}";

/* A writer with only the fields the reader has no default for. */
static const char minimal[] =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tern\","
    "\"fields\":[" BASE_FIELDS "{\"name\":\"ts_ms\",\"type\":\"long\"}]}";

/* Confluent frame: 0x00, id (big-endian), then the Avro body. */
static size_t aw_frame(aw_t *a, int32_t id, uint8_t *out, size_t cap) {
        size_t len;
        out[0] = 0;
        out[1] = (uint8_t)(id >> 24);
        out[2] = (uint8_t)(id >> 16);
        out[3] = (uint8_t)(id >> 8);
        out[4] = (uint8_t)id;
        if (aw_end(a, out + 5, cap - 5, &len))
                abort();
        return 5 + len;
}

static void set_enum(avro_value_t *rec, const char *sym) {
        avro_value_t f = fld(rec, "event_type");
        avro_schema_t es = avro_value_get_schema(&f);
        avro_value_set_enum(&f, avro_schema_enum_get_by_name(es, sym));
}

static size_t evolved_record(int32_t id, uint8_t *out, size_t cap) {
        aw_t a;
        avro_value_t f;
        if (aw_begin(&a, evolved))
                abort();
        set_str(&a.v, "event_id", "e1");
        set_str(&a.v, "user_id", "u1");
        set_opt_str(&a.v, "coupon", "SALE10");
        set_opt_str(&a.v, "item_id", "i9");
        set_enum(&a.v, "CART");
        f = fld(&a.v, "ts_ms");
        avro_value_set_int(&f, 1700000000);
        f = fld(&a.v, "price");
        avro_value_set_float(&f, 2.5f);
        return aw_frame(&a, id, out, cap);
}

static size_t minimal_record(int32_t id, uint8_t *out, size_t cap) {
        aw_t a;
        avro_value_t f;
        if (aw_begin(&a, minimal))
                abort();
        set_str(&a.v, "event_id", "e2");
        set_str(&a.v, "user_id", "u2");
        f = fld(&a.v, "ts_ms");
        avro_value_set_long(&f, 1700000000123LL);
        return aw_frame(&a, id, out, cap);
}

/* A record as `tern produce` writes it: id 1, the built-in schema. */
static void builtin_record(tern_buf_t *b) {
        tern_event_t e;
        tern_event_clear(&e);
        e.event_id = tern_str_c("x");
        e.user_id = tern_str_c("u");
        e.ts_ms = 5;
        tern_buf_init(b, 4096);
        ingest_encode_event(&e, 1, b);
}

static int str_is(tern_str_t s, const char *want) {
        return want ? s.ptr && s.len == strlen(want) &&
                          !memcmp(s.ptr, want, s.len)
                    : s.ptr == NULL;
}

static ingest_registry_t *registry(const char *url, const char *cache,
                                   const char *dir, int64_t retry_ms) {
        char err[512];
        ingest_registry_conf_t rc = {.url = url,
                                     .timeout_ms = 2000,
                                     .connect_timeout_ms = 1000,
                                     .retry_ms = retry_ms,
                                     .cache_dir = cache,
                                     .schema_dir = dir};
        ingest_registry_t *r = ingest_registry_new(&rc, err, sizeof(err));
        if (!r)
                fprintf(stderr, "  registry: %s\n", err);
        return r;
}

/* Entries of dir other than . and .. */
static int dir_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;
        if (!d)
                return -1;
        while ((e = readdir(d)))
                n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
        closedir(d);
        return n;
}

static void write_file(const char *dir, const char *name, const char *text) {
        char path[4200];
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
}

/* ---------------------------------------------------------------------- */
/* JSON and the registry's answer.                                         */

static void jwalk_bounds(void) {
        char deep[2 * JW_MAX_DEPTH + 8], s[8];
        jw_t w;
        size_t n = 0;
        for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
                deep[n++] = '[';
        for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
                deep[n++] = ']';
        jw_init(&w, deep, n);
        TEST_ASSERT(jw_skip(&w) < 0 && strstr(jw_error(&w), "deep"), "%s",
                    jw_error(&w) ? jw_error(&w) : "accepted");
        jw_init(&w, "\"abcdefgh\"", 10);
        TEST_ASSERT(jw_string(&w, s, sizeof(s), NULL) < 0, "no overflow");
        jw_init(&w, "{\"a\":1,,}", 9);
        TEST_ASSERT(jw_skip(&w) < 0, "double comma accepted");
        jw_init(&w, "{\"a\":[1,{\"b\":null}],\"c\":\"x\\\"\"}", 30);
        TEST_EQ_INT(jw_skip(&w), 0);
        /* escapes (shared with ingest_json): a surrogate pair joined, a
         * lone low surrogate and a bad letter refused */
        jw_init(&w, "\"\\ud83d\\ude00\\t\"", 16);
        TEST_EQ_INT(jw_string(&w, s, sizeof(s), &n), 0);
        TEST_EQ_STR(s, "\xf0\x9f\x98\x80\t");
        jw_init(&w, "\"\\udc00\"", 8);
        TEST_ASSERT(jw_skip(&w) < 0 && strstr(jw_error(&w), "lone low"),
                    "lone low surrogate accepted");
        jw_init(&w, "\"\\x\"", 4);
        TEST_ASSERT(jw_skip(&w) < 0 && strstr(jw_error(&w), "bad escape"),
                    "bad escape accepted");
}

static void answer_parsing(void) {
        char err[256], *schema = NULL;
        const char ok[] = "{\"subject\":\"x\",\"schema\":\"{\\\"type\\\":"
                          "\\\"string\\\",\\\"doc\\\":\\\"\\u00e9\\\\n\\\"}\","
                          "\"version\":1}";
        TEST_EQ_INT(ingest_registry_parse_answer(ok, strlen(ok), &schema, err,
                                                 sizeof(err)),
                    TERN_OK);
        TEST_EQ_STR(schema, "{\"type\":\"string\",\"doc\":\"\xc3\xa9\\n\"}");
        free(schema);
        TEST_EQ_INT(ingest_registry_parse_answer(
                        "{\"schemaType\":\"PROTOBUF\",\"schema\":\"x\"}", 40,
                        &schema, err, sizeof(err)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(err, "PROTOBUF"), "%s", err);
        TEST_EQ_INT(ingest_registry_parse_answer("{\"id\":3}", 8, &schema, err,
                                                 sizeof(err)),
                    TERN_ERR_IO);
        TEST_EQ_INT(ingest_registry_parse_answer("<html>", 6, &schema, err,
                                                 sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(schema == NULL, "schema set on failure");
}

/* ---------------------------------------------------------------------- */
/* The registry client.                                                    */

static void fetch_and_caches(void) {
        srv_t *s = srv_start();
        char url[64], *state = test_tmpdir("0029-cache"), cache[4200],
                      path[4300], err[512];
        const char *json, *from;
        ingest_registry_stats_t st;
        ingest_registry_t *r;
        struct stat sb;
        url_of(s->port, url, sizeof(url));
        snprintf(cache, sizeof(cache), "%s/schemas", state);
        srv_schema(s, 7, evolved);
        r = registry(url, cache, NULL, 60000);
        TEST_ASSERT(r, "registry");
        TEST_EQ_INT(ingest_registry_get(r, 7, &json, &from, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_STR(from, "registry");
        TEST_EQ_STR(json, evolved);
        TEST_EQ_STR(s->last_path, "/schemas/ids/7");
        /* the same id again: memory, no second request */
        TEST_EQ_INT(ingest_registry_get(r, 7, &json, &from, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_STR(from, "memory");
        TEST_EQ_INT(atomic_load(&s->requests), 1);
        ingest_registry_stats(r, &st);
        TEST_EQ_INT(st.requests, 1);
        TEST_EQ_INT(st.from_memory, 1);
        snprintf(path, sizeof(path), "%s/7.avsc", cache);
        TEST_ASSERT(stat(path, &sb) == 0 &&
                        (size_t)sb.st_size == strlen(evolved),
                    "disk cache %s", path);
        /* renamed into place: no temporary file left beside it */
        TEST_EQ_INT(dir_entries(cache), 1);
        TEST_EQ_INT(st.cache_write_failed, 0);
        ingest_registry_destroy(r);
        srv_stop(s);

        /* the cache directory gone after set-up: the schema is still
         * served, the failed write counted and explained */
        {
                char gone[4300];
                snprintf(gone, sizeof(gone), "%s/gone", state);
                s = srv_start();
                url_of(s->port, url, sizeof(url));
                srv_schema(s, 8, minimal);
                r = registry(url, gone, NULL, 60000);
                TEST_EQ_INT(rmdir(gone), 0);
                TEST_EQ_STR(ingest_registry_cache_error(r), "");
                TEST_EQ_INT(
                    ingest_registry_get(r, 8, &json, &from, err, sizeof(err)),
                    TERN_OK);
                TEST_EQ_STR(from, "registry");
                ingest_registry_stats(r, &st);
                TEST_EQ_INT(st.cache_write_failed, 1);
                TEST_ASSERT(strstr(ingest_registry_cache_error(r), gone), "%s",
                            ingest_registry_cache_error(r));
                ingest_registry_destroy(r);
                srv_stop(s);
        }

        /* a base URL too long for the request buffer: refused, not cut */
        {
                char *lng = malloc(4096);
                ingest_registry_conf_t rc = {.url = lng};
                memset(lng, 'a', 4095);
                memcpy(lng, "http://", 7);
                lng[4095] = '\0';
                TEST_ASSERT(!ingest_registry_new(&rc, err, sizeof(err)) &&
                                strstr(err, "URL longer"),
                            "long URL: %s", err);
                free(lng);
        }

        /* a cache "directory" that is a file would fail every write:
         * refused at set-up */
        write_file(state, "plain", "x");
        snprintf(path, sizeof(path), "%s/plain", state);
        {
                ingest_registry_conf_t rc = {.url = url, .cache_dir = path};
                TEST_ASSERT(!ingest_registry_new(&rc, err, sizeof(err)) &&
                                strstr(err, "cache directory"),
                            "file as cache dir: %s", err);
        }

        /* restart with the registry gone: the disk cache answers */
        url_of(dead_port(), url, sizeof(url));
        r = registry(url, cache, NULL, 60000);
        TEST_EQ_INT(ingest_registry_get(r, 7, &json, &from, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_STR(from, "cache");
        TEST_EQ_STR(json, evolved);
        ingest_registry_stats(r, &st);
        TEST_EQ_INT(st.requests, 0);
        ingest_registry_destroy(r);
        free(state);
}

static void auth_header(void) {
        srv_t *s = srv_start();
        char url[64], err[512];
        const char *json;
        ingest_registry_conf_t rc = {.url = url, .auth = "alice:s3cret"};
        ingest_registry_t *r;
        url_of(s->port, url, sizeof(url));
        srv_schema(s, 3, minimal);
        r = ingest_registry_new(&rc, err, sizeof(err));
        TEST_ASSERT(r, "%s", err);
        TEST_EQ_INT(ingest_registry_get(r, 3, &json, NULL, err, sizeof(err)),
                    TERN_OK);
        /* base64("alice:s3cret") */
        TEST_EQ_STR(s->last_auth, "Basic YWxpY2U6czNjcmV0");
        ingest_registry_destroy(r);
        srv_stop(s);
}

static void not_found_and_negative_cache(void) {
        srv_t *s = srv_start();
        char url[64], err[512];
        const char *json;
        ingest_registry_t *r;
        url_of(s->port, url, sizeof(url));
        r = registry(url, NULL, NULL, 300);
        TEST_EQ_INT(ingest_registry_get(r, 42, &json, NULL, err, sizeof(err)),
                    TERN_ERR_NOT_FOUND);
        TEST_ASSERT(strstr(err, "404") && strstr(err, "Schema not found") &&
                        strstr(err, "not retriable"),
                    "%s", err);
        /* within the retry interval: no request */
        TEST_EQ_INT(ingest_registry_get(r, 42, &json, NULL, err, sizeof(err)),
                    TERN_ERR_NOT_FOUND);
        TEST_ASSERT(strstr(err, "not asked again"), "%s", err);
        TEST_EQ_INT(atomic_load(&s->requests), 1);
        /* after it: asked again, and now the registry has it */
        srv_schema(s, 42, minimal);
        usleep(350 * 1000);
        TEST_EQ_INT(ingest_registry_get(r, 42, &json, NULL, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_INT(atomic_load(&s->requests), 2);
        /* a server error is retriable */
        srv_route(s, 43, 500, "{\"error_code\":50001,\"message\":\"boom\"}");
        TEST_EQ_INT(ingest_registry_get(r, 43, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "HTTP 500: boom") && strstr(err, "retriable"),
                    "%s", err);
        /* a 404 that is not the registry's "schema not found" (a wrong
         * URL, a proxy's page) says nothing about the id: retriable */
        srv_route(s, 44, 404, "<html>Not Found</html>");
        TEST_EQ_INT(ingest_registry_get(r, 44, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "HTTP 404 without") &&
                        strstr(err, "(retriable"),
                    "%s", err);
        srv_route(s, 45, 401, "{\"error_code\":401,\"message\":\"no\"}");
        TEST_EQ_INT(ingest_registry_get(r, 45, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "HTTP 401: no (check "
                                "input.schema_registry_auth)"),
                    "%s", err);
        ingest_registry_destroy(r);
        srv_stop(s);
}

static void down_timeout_and_fallback(void) {
        srv_t *s;
        char url[64], err[512], *dir = test_tmpdir("0029-dir");
        const char *json, *from;
        ingest_registry_conf_t rc = {.url = url, .timeout_ms = 300};
        ingest_registry_t *r;
        int64_t t0;
        /* nothing listens: retriable, quickly */
        url_of(dead_port(), url, sizeof(url));
        r = registry(url, NULL, dir, 60000);
        TEST_EQ_INT(ingest_registry_get(r, 9, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "(retriable") &&
                        strstr(err, "not in input.schema_dir"),
                    "%s", err);
        ingest_registry_destroy(r);
        /* ... the schema directory has it: local fallback */
        write_file(dir, "9.avsc", minimal);
        r = registry(url, NULL, dir, 60000);
        TEST_EQ_INT(ingest_registry_get(r, 9, &json, &from, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_STR(from, "schema_dir");
        TEST_EQ_STR(json, minimal);
        ingest_registry_destroy(r);
        /* a registry slower than the timeout */
        s = srv_start();
        url_of(s->port, url, sizeof(url));
        srv_schema(s, 5, minimal);
        atomic_store(&s->delay_ms, 1500);
        r = ingest_registry_new(&rc, err, sizeof(err));
        t0 = now_ms();
        TEST_EQ_INT(ingest_registry_get(r, 5, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(now_ms() - t0 < 1200, "took %lld ms",
                    (long long)(now_ms() - t0));
        TEST_ASSERT(strstr(err, "imeout") || strstr(err, "timed out"), "%s",
                    err);
        ingest_registry_destroy(r);
        srv_stop(s);
        free(dir);
}

static void answer_too_large(void) {
        srv_t *s = srv_start();
        char url[64], err[512];
        const char *json;
        ingest_registry_conf_t rc = {.url = url, .max_response_bytes = 64};
        ingest_registry_t *r;
        url_of(s->port, url, sizeof(url));
        srv_schema(s, 4, evolved);
        r = ingest_registry_new(&rc, err, sizeof(err));
        TEST_EQ_INT(ingest_registry_get(r, 4, &json, NULL, err, sizeof(err)),
                    TERN_ERR_IO);
        TEST_ASSERT(strstr(err, "larger than 64 bytes"), "%s", err);
        ingest_registry_destroy(r);
        srv_stop(s);
}

/* ---------------------------------------------------------------------- */
/* Reader defaults.                                                        */

static void reader_defaults(void) {
        char err[512];
        uint8_t buf[512];
        size_t len;
        tern_event_t ev;
        const char *reason;
        ingest_decoder_t *d = ingest_decoder_new(
            reader_with_defaults, NULL, INGEST_WIRE_AUTO, err, sizeof(err));
        TEST_ASSERT(d, "%s", err);
        TEST_EQ_INT(ingest_decoder_add_schema(d, 2, minimal, err, sizeof(err)),
                    TERN_OK);
        len = minimal_record(2, buf, sizeof(buf));
        tern_event_clear(&ev);
        TEST_EQ_INT(ingest_decode(d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
        TEST_ASSERT(str_is(ev.user_id, "u2"), "user");
        TEST_ASSERT(str_is(ev.item_id, "no-item"), "item default");
        TEST_ASSERT(str_is(ev.category_id, "c\xc3\xa9"), "category default");
        TEST_ASSERT(str_is(ev.campaign_id, NULL), "campaign default null");
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_EQ_INT(ev.ts_ms, 1700000000123LL);
        TEST_ASSERT(ev.has_price && ev.price == 9.5, "price default");
        TEST_ASSERT(ev.has_quantity && ev.quantity == 3, "quantity default");
        TEST_EQ_INT(ev.n_context, 0);
        /* the evolved writer has item_id: it wins over the default */
        TEST_EQ_INT(ingest_decoder_add_schema(d, 7, evolved, err, sizeof(err)),
                    TERN_OK);
        len = evolved_record(7, buf, sizeof(buf));
        TEST_EQ_INT(ingest_decode(d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
        TEST_ASSERT(str_is(ev.item_id, "i9"), "item");
        TEST_EQ_INT(ev.type, TERN_EV_CART);
        TEST_ASSERT(ev.has_quantity && ev.quantity == 3, "quantity default");
        ingest_decoder_destroy(d);

        /* the built-in reader has no default for event_type */
        d = ingest_decoder_new(NULL, NULL, INGEST_WIRE_AUTO, err, sizeof(err));
        TEST_EQ_INT(ingest_decoder_add_schema(d, 2, minimal, err, sizeof(err)),
                    TERN_ERR_CONFIG);
        TEST_ASSERT(strstr(err, "lacks the required field event_type"), "%s",
                    err);
        ingest_decoder_destroy(d);
}

static void reader_defaults_refused(void) {
        static const char *const bad[][2] = {
            /* null-first union: the default must be null */
            {"{\"name\":\"item_id\",\"type\":[\"null\",\"string\"],"
             "\"default\":\"x\"}",
             "item_id: default must be null"},
            {"{\"name\":\"quantity\",\"type\":\"int\",\"default\":1.5}",
             "quantity: default must be a 32-bit integer"},
            {"{\"name\":\"quantity\",\"type\":\"int\",\"default\":"
             "4294967296}",
             "32-bit"},
            {"{\"name\":\"price\",\"type\":\"double\",\"default\":\"1\"}",
             "price: default must be a number"},
            {"{\"name\":\"context\",\"type\":{\"type\":\"map\",\"values\":"
             "\"string\"},\"default\":{\"a\":\"b\"}}",
             "the empty map"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char json[2048], err[512];
                ingest_decoder_t *d;
                snprintf(json, sizeof(json),
                         "{\"type\":\"record\",\"name\":\"E\",\"fields\":["
                         "%s{\"name\":\"event_type\",\"type\":%s,"
                         "\"default\":\"VIEW\"},"
                         "{\"name\":\"ts_ms\",\"type\":\"long\"},%s]}",
                         BASE_FIELDS, EVENT_TYPE, bad[i][0]);
                d = ingest_decoder_new(json, NULL, INGEST_WIRE_AUTO, err,
                                       sizeof(err));
                TEST_ASSERT(!d && strstr(err, bad[i][1]),
                            "case %zu accepted or wrong message: %s", i,
                            d ? "(accepted)" : err);
        }
}

/* ---------------------------------------------------------------------- */
/* Evolution through the runtime's lookup.                                 */

static tern_conf_t *conf_for(const char *url, const char *state,
                             const char *dir) {
        tern_conf_t *c = conf_new();
        free(c->schema_registry_url);
        c->schema_registry_url = strdup(url);
        free(c->state_dir);
        c->state_dir = strdup(state);
        free(c->schema_dir);
        c->schema_dir = strdup(dir ? dir : "");
        c->schema_registry_timeout_ms = 1000;
        c->schema_registry_retry_ms = 60000;
        return c;
}

static tern_code_t decode_via(rt_schemas_t *rs, ingest_decoder_t *d,
                              const uint8_t *buf, size_t len, tern_event_t *ev,
                              const char **reason, char *err, size_t size) {
        tern_code_t rc = ingest_decode(d, buf, len, ev, reason, err, size);
        if (rc == TERN_ERR_NOT_FOUND)
                rc = rt_schemas_decode_again(rs, d, buf, len, ev, reason, err,
                                             size);
        return rc;
}

static void evolution_via_registry(void) {
        srv_t *s = srv_start();
        char url[64], err[512], *state = test_tmpdir("0029-evo");
        uint8_t buf[512];
        size_t len;
        tern_event_t ev;
        const char *reason = NULL;
        ingest_registry_stats_t st;
        tern_conf_t *conf;
        rt_schemas_t *rs = NULL;
        ingest_decoder_t *d;
        url_of(s->port, url, sizeof(url));
        srv_schema(s, 11, evolved);
        srv_schema(s, 12, incompatible);
        conf = conf_for(url, state, NULL);
        d = ingest_decoder_new(NULL, NULL, INGEST_WIRE_AUTO, err, sizeof(err));
        TEST_EQ_INT(rt_schemas_new(conf, NULL, &rs, err, sizeof(err)), TERN_OK);
        TEST_ASSERT(rs, "no registry");
        len = evolved_record(11, buf, sizeof(buf));
        tern_event_clear(&ev);
        TEST_EQ_INT(decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
        TEST_ASSERT(str_is(ev.item_id, "i9"), "item");
        TEST_ASSERT(str_is(ev.category_id, NULL), "category default null");
        TEST_ASSERT(str_is(ev.campaign_id, NULL), "campaign default null");
        TEST_EQ_INT(ev.type, TERN_EV_CART);          /* enum by name */
        TEST_EQ_INT(ev.ts_ms, 1700000000);           /* int -> long */
        TEST_ASSERT(ev.has_price && ev.price == 2.5, /* float -> double */
                    "price %g", ev.price);
        TEST_ASSERT(!ev.has_quantity && ev.n_context == 0, "defaults");
        /* the same id again: decoded without another request */
        TEST_EQ_INT(decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
        TEST_EQ_INT(atomic_load(&s->requests), 1);
        /* incompatible writer: refused with its reason, asked once */
        len = minimal_record(12, buf, sizeof(buf));
        for (int i = 0; i < 2; i++) {
                TEST_EQ_INT(
                    decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_ERR_CONFIG);
                TEST_EQ_STR(reason, "incompatible_schema");
                TEST_ASSERT(strstr(err, "schema id 12") &&
                                strstr(err, "ts_ms") &&
                                strstr(err, "not retriable"),
                            "%s", err);
        }
        TEST_EQ_INT(atomic_load(&s->requests), 2);
        /* an id the registry does not have */
        len = minimal_record(13, buf, sizeof(buf));
        TEST_EQ_INT(decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_STR(reason, "unknown_schema");
        /* id 1 not in the registry: tern's built-in schema */
        {
                tern_buf_t b;
                builtin_record(&b);
                TEST_EQ_INT(decode_via(rs, d, b.data, b.len, &ev, &reason, err,
                                       sizeof(err)),
                            TERN_OK);
                tern_buf_free(&b);
        }
        rt_schemas_stats(rs, &st);
        TEST_EQ_INT(st.from_registry, 2);
        rt_schemas_destroy(rs);
        ingest_decoder_destroy(d);
        srv_stop(s);

        /* restart with the registry down: id 11 from the disk cache, an
         * unknown id is retriable, and another id is in schema_dir */
        {
                char dead[64], *dir = test_tmpdir("0029-evo-dir");
                write_file(dir, "14.avsc", evolved);
                url_of(dead_port(), dead, sizeof(dead));
                conf_destroy(conf);
                conf = conf_for(dead, state, dir);
                d = ingest_decoder_new(NULL, NULL, INGEST_WIRE_AUTO, err,
                                       sizeof(err));
                TEST_EQ_INT(rt_schemas_new(conf, NULL, &rs, err, sizeof(err)),
                            TERN_OK);
                len = evolved_record(11, buf, sizeof(buf));
                TEST_EQ_INT(
                    decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
                len = evolved_record(14, buf, sizeof(buf));
                TEST_EQ_INT(
                    decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_OK);
                len = evolved_record(15, buf, sizeof(buf));
                TEST_EQ_INT(
                    decode_via(rs, d, buf, len, &ev, &reason, err, sizeof(err)),
                    TERN_ERR_IO);
                TEST_EQ_STR(reason, "schema_unavailable");
                /* id 1 with the registry down: not the built-in schema
                 * (the registry's id 1 may be another), retriable */
                {
                        tern_buf_t b;
                        builtin_record(&b);
                        TEST_EQ_INT(decode_via(rs, d, b.data, b.len, &ev,
                                               &reason, err, sizeof(err)),
                                    TERN_ERR_IO);
                        TEST_EQ_STR(reason, "schema_unavailable");
                        TEST_ASSERT(!ingest_decoder_has_schema(d, 1),
                                    "id 1 bound during the outage");
                        tern_buf_free(&b);
                }
                rt_schemas_stats(rs, &st);
                TEST_EQ_INT(st.from_cache, 1);
                TEST_EQ_INT(st.from_schema_dir, 1);
                rt_schemas_destroy(rs);
                ingest_decoder_destroy(d);
                free(dir);
        }
        conf_destroy(conf);
        free(state);
}

TEST_MAIN(TEST_CASE(jwalk_bounds), TEST_CASE(answer_parsing),
          TEST_CASE(fetch_and_caches), TEST_CASE(auth_header),
          TEST_CASE(not_found_and_negative_cache),
          TEST_CASE(down_timeout_and_fallback), TEST_CASE(answer_too_large),
          TEST_CASE(reader_defaults), TEST_CASE(reader_defaults_refused),
          TEST_CASE(evolution_via_registry));
