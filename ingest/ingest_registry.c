/*
 * ingest_registry — Schema Registry client with caches (design: the
 * header).
 */
#include "ingest_registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest_jwalk.h"

#define SCHEMA_FILE_MAX (1024 * 1024)
#define MSG_MAX         300
#define URL_MAX         2048

typedef struct entry {
        int32_t id;
        char *json;        /* NULL: a remembered failure */
        tern_code_t code;  /* the failure's code */
        char msg[MSG_MAX]; /* the failure's message */
        int64_t retry_at;  /* monotonic ms: ask again from then on */
} entry_t;

struct ingest_registry {
        char *url, *auth, *cache_dir, *schema_dir;
        int64_t timeout_ms, connect_timeout_ms, retry_ms;
        size_t max_response;
        CURL *curl;
        int curl_global; /* curl_global_init() succeeded: undo it */
        entry_t *entries;
        uint32_t n_entries, cap_entries;
        uint32_t evict_next; /* table full: the slot reused next */
        ingest_registry_stats_t st;
        char cache_err[MSG_MAX]; /* the last failed disk-cache write */
};

/* A body larger than the bound stops the transfer (write callback returns
 * less than it was given -> CURLE_WRITE_ERROR). */
typedef struct body {
        char *data;
        size_t len, max;
        int overflow;
} body_t;

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s) {
        return s && *s ? strdup(s) : NULL;
}

/* The cache directory, made if missing; something else of that name
 * would fail every cache write later, so it is refused now. */
static int cache_dir_make(const char *dir) {
        struct stat sb;
        if (mkdir(dir, 0755) == 0)
                return 0;
        if (errno != EEXIST || stat(dir, &sb) != 0)
                return -1;
        if (!S_ISDIR(sb.st_mode)) {
                errno = ENOTDIR;
                return -1;
        }
        return 0;
}

ingest_registry_t *ingest_registry_new(const ingest_registry_conf_t *conf,
                                       char *errstr, size_t errstr_size) {
        ingest_registry_t *r;
        if (!conf->url || !*conf->url) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "schema registry: no URL");
                return NULL;
        }
        /* the request URL is built in a fixed buffer: a longer base
         * would be cut and ask some other path */
        if (strlen(conf->url) > URL_MAX - sizeof("/schemas/ids/-2147483648")) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "schema registry: URL longer than %zu bytes",
                          URL_MAX - sizeof("/schemas/ids/-2147483648"));
                return NULL;
        }
        if (!(r = calloc(1, sizeof(*r))))
                goto nomem;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO,
                          "schema registry: libcurl initialisation failed");
                free(r);
                return NULL;
        }
        r->curl_global = 1;
        r->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 5000;
        r->connect_timeout_ms = conf->connect_timeout_ms > 0
                                    ? conf->connect_timeout_ms
                                    : r->timeout_ms;
        r->retry_ms = conf->retry_ms > 0 ? conf->retry_ms : 0;
        r->max_response = conf->max_response_bytes
                              ? conf->max_response_bytes
                              : INGEST_REGISTRY_RESPONSE_MAX;
        r->url = strdup(conf->url);
        r->auth = dup_or_null(conf->auth);
        r->cache_dir = dup_or_null(conf->cache_dir);
        r->schema_dir = dup_or_null(conf->schema_dir);
        r->curl = curl_easy_init();
        if (!r->url || !r->curl || (conf->auth && *conf->auth && !r->auth) ||
            (conf->cache_dir && *conf->cache_dir && !r->cache_dir) ||
            (conf->schema_dir && *conf->schema_dir && !r->schema_dir))
                goto nomem;
        /* Trailing slashes would make "//schemas/ids/N". */
        for (size_t n = strlen(r->url); n > 0 && r->url[n - 1] == '/'; n--)
                r->url[n - 1] = '\0';
        if (r->cache_dir && cache_dir_make(r->cache_dir) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO,
                          "schema registry: cannot create cache directory "
                          "%s: %s",
                          r->cache_dir, strerror(errno));
                ingest_registry_destroy(r);
                return NULL;
        }
        return r;
nomem:
        ingest_registry_destroy(r);
        tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                  "schema registry: out of memory");
        return NULL;
}

void ingest_registry_destroy(ingest_registry_t *r) {
        if (!r)
                return;
        if (r->curl)
                curl_easy_cleanup(r->curl);
        /* curl_global_init() counts its callers: the last cleanup frees */
        if (r->curl_global)
                curl_global_cleanup();
        for (uint32_t i = 0; i < r->n_entries; i++)
                free(r->entries[i].json);
        free(r->entries);
        free(r->url);
        free(r->auth);
        free(r->cache_dir);
        free(r->schema_dir);
        free(r);
}

void ingest_registry_stats(const ingest_registry_t *r,
                           ingest_registry_stats_t *out) {
        *out = r->st;
}

const char *ingest_registry_cache_error(const ingest_registry_t *r) {
        return r->cache_err;
}

/* ---- the answer ---- */

tern_code_t ingest_registry_parse_answer(const char *body, size_t len,
                                         char **schema, char *errstr,
                                         size_t errstr_size) {
        jw_t w;
        char key[32], type[32] = "AVRO", *out = NULL;
        uint32_t n = 0;
        int r;
        *schema = NULL;
        jw_init(&w, body, len);
        if (jw_object(&w))
                goto bad;
        while ((r = jw_member(&w, &n, key, sizeof(key), NULL)) == 1) {
                if (!strcmp(key, "schema") && !out) {
                        /* unescaping never grows the text */
                        if (!(out = malloc(len + 1)))
                                return tern_errf(errstr, errstr_size,
                                                 TERN_ERR_NOMEM,
                                                 "out of memory");
                        if (jw_string(&w, out, len + 1, NULL))
                                goto bad;
                } else if (!strcmp(key, "schemaType")) {
                        if (jw_string(&w, type, sizeof(type), NULL))
                                goto bad;
                } else if (jw_skip(&w)) {
                        goto bad;
                }
        }
        if (r < 0)
                goto bad;
        if (!out) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO,
                          "answer has no \"schema\" string");
                return TERN_ERR_IO;
        }
        if (strcmp(type, "AVRO") != 0) {
                free(out);
                return tern_errf(errstr, errstr_size, TERN_ERR_CONFIG,
                                 "schema type %s, not AVRO", type);
        }
        *schema = out;
        return TERN_OK;
bad:
        free(out);
        return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                         "answer is not JSON of the expected shape: %s at "
                         "byte %zu",
                         jw_error(&w) ? jw_error(&w) : "unexpected value",
                         w.err_at);
}

/* Confluent's "schema not found" error code, which tells a registry's 404
 * for an id from the 404 of a wrong URL (a proxy, another service). */
#define ERROR_CODE_SCHEMA_NOT_FOUND 40403

/* The "error_code" and "message" of an error answer
 * ({"error_code":40403,"message":...}): 0 and "" when absent. */
static void error_answer(const body_t *b, int64_t *ecode, char *out,
                         size_t cap) {
        jw_t w;
        char key[16];
        uint32_t n = 0;
        double d;
        int is_int = 0;
        *ecode = 0;
        out[0] = '\0';
        jw_init(&w, b->data ? b->data : "", b->len);
        if (jw_object(&w))
                return;
        while (jw_member(&w, &n, key, sizeof(key), NULL) == 1) {
                if (!strcmp(key, "message") && jw_peek(&w) == JW_STRING) {
                        if (jw_string(&w, out, cap, NULL))
                                out[0] = '\0';
                } else if (!strcmp(key, "error_code") &&
                           jw_peek(&w) == JW_NUMBER) {
                        if (jw_number(&w, &d, ecode, &is_int) || !is_int)
                                *ecode = 0;
                } else if (jw_skip(&w)) {
                        return;
                }
        }
}

/* ---- HTTP ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque) {
        body_t *b = opaque;
        size_t n = size * nmemb;
        char *grown;
        if (n > b->max - b->len) {
                b->overflow = 1;
                return 0;
        }
        if (!(grown = realloc(b->data, b->len + n + 1)))
                return 0;
        b->data = grown;
        memcpy(b->data + b->len, ptr, n);
        b->len += n;
        b->data[b->len] = '\0';
        return n;
}

static void http_setup(ingest_registry_t *r, const char *url, body_t *b) {
        CURL *c = r->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)r->connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "tern/" TERN_VERSION);
        if (r->auth) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERPWD, r->auth);
        }
}

/* A non-200 answer. Only the registry's own "schema not found" means the
 * id does not exist (not retriable); any other 404 is a URL that is no
 * Schema Registry, which a fixed configuration cures (retriable). */
static tern_code_t http_error(long status, int64_t ecode, const char *why,
                              char *errstr, size_t errstr_size) {
        const char *sep = *why ? ": " : "";
        if (status == 404 && ecode == ERROR_CODE_SCHEMA_NOT_FOUND)
                return tern_errf(errstr, errstr_size, TERN_ERR_NOT_FOUND,
                                 "HTTP 404%s%s", sep, why);
        if (status == 404)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "HTTP 404 without the registry's error "
                                 "code %d%s%s (is "
                                 "input.schema_registry_url a Schema "
                                 "Registry?)",
                                 ERROR_CODE_SCHEMA_NOT_FOUND, sep, why);
        if (status == 401 || status == 403)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "HTTP %ld%s%s (check "
                                 "input.schema_registry_auth)",
                                 status, sep, why);
        return tern_errf(errstr, errstr_size, TERN_ERR_IO, "HTTP %ld%s%s",
                         status, sep, why);
}

/* GET {url}/schemas/ids/{id}; *json on success (caller frees). */
static tern_code_t http_fetch(ingest_registry_t *r, int32_t id, char **json,
                              char *errstr, size_t errstr_size) {
        char url[URL_MAX], why[MSG_MAX];
        body_t b = {NULL, 0, r->max_response, 0};
        struct curl_slist *hdr = NULL;
        long status = 0;
        int64_t ecode;
        CURLcode cc;
        tern_code_t code;
        snprintf(url, sizeof(url), "%s/schemas/ids/%" PRId32, r->url, id);
        http_setup(r, url, &b);
        hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry."
                                     "v1+json, application/json");
        curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdr);
        r->st.requests++;
        cc = curl_easy_perform(r->curl);
        curl_slist_free_all(hdr);
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        if (b.overflow)
                code =
                    tern_errf(errstr, errstr_size, TERN_ERR_IO,
                              "answer larger than %zu bytes", r->max_response);
        else if (cc != CURLE_OK)
                code = tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s",
                                 curl_easy_strerror(cc));
        else if (status != 200) {
                error_answer(&b, &ecode, why, sizeof(why));
                code = http_error(status, ecode, why, errstr, errstr_size);
        } else
                code = ingest_registry_parse_answer(b.data ? b.data : "", b.len,
                                                    json, errstr, errstr_size);
        free(b.data);
        return code;
}

/* ---- files ---- */

/* A whole (small) file; TERN_ERR_NOT_FOUND when it does not exist. */
static tern_code_t file_read(const char *path, char **out, char *errstr,
                             size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        char *buf;
        size_t n;
        if (!fp)
                return tern_errf(errstr, errstr_size,
                                 errno == ENOENT ? TERN_ERR_NOT_FOUND
                                                 : TERN_ERR_IO,
                                 "%s: %s", path, strerror(errno));
        if (!(buf = malloc(SCHEMA_FILE_MAX + 1))) {
                fclose(fp);
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "out of memory");
        }
        n = fread(buf, 1, SCHEMA_FILE_MAX + 1, fp);
        if (ferror(fp) || n > SCHEMA_FILE_MAX) {
                fclose(fp);
                free(buf);
                return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                 "%s: unreadable or larger than 1 MiB", path);
        }
        fclose(fp);
        buf[n] = '\0';
        *out = buf;
        return TERN_OK;
}

/* All of buf, through short writes and signals. */
static int write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0)
                                errno = EIO; /* no progress, no errno */
                        return -1;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

/* The rename is only durable once the directory entry is on disk. */
static int dir_sync(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
        if (fd < 0)
                return -1;
        rc = fsync(fd);
        close(fd);
        return rc;
}

/* dir/<id>.avsc written as a temp file, fsynced, renamed, the directory
 * fsynced: a crash leaves the old state or the whole new file, never a
 * torn one. */
static tern_code_t cache_write(const ingest_registry_t *r, int32_t id,
                               const char *json, char *errstr,
                               size_t errstr_size) {
        char path[4200], tmp[4300];
        int fd;
        snprintf(path, sizeof(path), "%s/%" PRId32 ".avsc", r->cache_dir, id);
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s: %s",
                                 tmp, strerror(errno));
        /* close() reports late write errors (NFS, quota): check it too */
        if (write_all(fd, json, strlen(json)) != 0 || fsync(fd) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s: %s", tmp,
                          strerror(errno));
                close(fd);
                unlink(tmp);
                return TERN_ERR_IO;
        }
        if (close(fd) != 0 || rename(tmp, path) != 0) {
                tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s: %s", path,
                          strerror(errno));
                unlink(tmp);
                return TERN_ERR_IO;
        }
        if (dir_sync(r->cache_dir) != 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_IO, "%s: %s",
                                 r->cache_dir, strerror(errno));
        return TERN_OK;
}

static tern_code_t dir_read(const char *dir, int32_t id, char **json,
                            char *errstr, size_t errstr_size) {
        char path[4200];
        if (!dir)
                return TERN_ERR_NOT_FOUND;
        snprintf(path, sizeof(path), "%s/%" PRId32 ".avsc", dir, id);
        return file_read(path, json, errstr, errstr_size);
}

/* ---- the id table ---- */

static entry_t *entry_find(ingest_registry_t *r, int32_t id) {
        for (uint32_t i = 0; i < r->n_entries; i++)
                if (r->entries[i].id == id)
                        return &r->entries[i];
        return NULL;
}

/* The entry for id, made if needed. A full table reuses its slots in
 * turn: a forgotten id is only looked up again. NULL when out of memory. */
static entry_t *entry_get(ingest_registry_t *r, int32_t id) {
        entry_t *e = entry_find(r, id);
        if (e)
                return e;
        if (r->n_entries >= INGEST_REGISTRY_MAX_IDS) {
                e = &r->entries[r->evict_next++ % INGEST_REGISTRY_MAX_IDS];
                free(e->json);
        } else {
                if (r->n_entries == r->cap_entries) {
                        uint32_t cap = r->cap_entries ? r->cap_entries * 2 : 16;
                        entry_t *grown =
                            realloc(r->entries, cap * sizeof(entry_t));
                        if (!grown)
                                return NULL;
                        r->entries = grown;
                        r->cap_entries = cap;
                }
                e = &r->entries[r->n_entries++];
        }
        memset(e, 0, sizeof(*e));
        e->id = id;
        return e;
}

/* ---- lookup ---- */

/* Steps 2-4 of the lookup order; *from says which answered. */
static tern_code_t lookup_slow(ingest_registry_t *r, int32_t id, char **json,
                               const char **from, char *errstr,
                               size_t errstr_size) {
        char why[MSG_MAX], local[MSG_MAX];
        tern_code_t code, lc;
        if (dir_read(r->cache_dir, id, json, why, sizeof(why)) == TERN_OK) {
                *from = "cache";
                r->st.from_cache++;
                return TERN_OK;
        }
        code = http_fetch(r, id, json, why, sizeof(why));
        if (code == TERN_OK) {
                *from = "registry";
                r->st.from_registry++;
                /* Not fatal: the schema is in memory; only a restart
                 * with the registry down would miss it. */
                if (r->cache_dir && cache_write(r, id, *json, local,
                                                sizeof(local)) != TERN_OK) {
                        r->st.cache_write_failed++;
                        snprintf(r->cache_err, sizeof(r->cache_err), "%s",
                                 local);
                }
                return TERN_OK;
        }
        lc = dir_read(r->schema_dir, id, json, local, sizeof(local));
        if (lc == TERN_OK) {
                *from = "schema_dir";
                r->st.from_schema_dir++;
                return TERN_OK;
        }
        return tern_errf(
            errstr, errstr_size, code,
            "schema id %" PRId32 ": registry %s: %s; %s%s", id, r->url, why,
            r->schema_dir ? "not in input.schema_dir" : "no input.schema_dir",
            code == TERN_ERR_NOT_FOUND
                ? " (not retriable: the registry does not have "
                  "it)"
            : code == TERN_ERR_IO ? " (retriable: the registry could not be "
                                    "asked)"
                                  : " (not retriable)");
}

tern_code_t ingest_registry_get(ingest_registry_t *r, int32_t id,
                                const char **json, const char **from,
                                char *errstr, size_t errstr_size) {
        entry_t *e = entry_find(r, id);
        const char *src = "memory";
        char *found = NULL, msg[MSG_MAX];
        tern_code_t code;
        if (e && e->json) {
                r->st.from_memory++;
                *json = e->json;
                if (from)
                        *from = src;
                return TERN_OK;
        }
        if (e && mono_ms() < e->retry_at) {
                r->st.failed++;
                r->st.failed_cached++;
                return tern_errf(errstr, errstr_size, e->code,
                                 "%s [not asked again for %" PRId64 " ms]",
                                 e->msg, e->retry_at - mono_ms());
        }
        code = lookup_slow(r, id, &found, &src, msg, sizeof(msg));
        if (code != TERN_OK) {
                r->st.failed++;
                if ((e = entry_get(r, id))) {
                        e->code = code;
                        snprintf(e->msg, sizeof(e->msg), "%s", msg);
                        e->retry_at = mono_ms() + r->retry_ms;
                }
                return tern_errf(errstr, errstr_size, code, "%s", msg);
        }
        if (!(e = entry_get(r, id))) {
                free(found);
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "schema registry: out of memory");
        }
        e->json = found;
        *json = found;
        if (from)
                *from = src;
        return TERN_OK;
}
