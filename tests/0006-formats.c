/*
 * 0006-formats — the replay file readers (every format, inline files and
 * the real data when ../shared/data is there) and the traffic generator.
 */
/* TERN_TEST_LINK: tern_ingest */
#include "test.h"

#include <avro.h>
#include <stdint.h>
#include <time.h>

#include "../ingest/ingest_file.h"
#include "../ingest/ingest_gen.h"

extern const char ingest_behavior_event_schema[];

/* Avro-C 1.11.1 (Debian libavro23) keeps one reference too many to the
 * writer schema it parses in avro_file_reader() once a generic class has
 * been built while the reader is open (about 13 KB per opened file, measured
 * with mallinfo2 outside tern). Nothing tern can release; suppress exactly
 * that allocation site so every other leak still fails the ASan run. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
        return "leak:avro_file_reader_fp\n";
}
/* libavro has no frame pointers: only the slow unwinder sees the frame the
 * suppression names. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return "fast_unwind_on_malloc=0";
}

static char errstr[512];

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Write bytes to dir/name; returns the path (static, one at a time). */
static const char *put_file(const char *dir, const char *name, const char *s,
                            size_t n) {
        static char path[4200];
        FILE *fp;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fp = fopen(path, "wb");
        if (!fp)
                return NULL;
        fwrite(s, 1, n, fp);
        fclose(fp);
        return path;
}

static const char *put_str(const char *dir, const char *name, const char *s) {
        return put_file(dir, name, s, strlen(s));
}

static int str_eq(tern_str_t s, const char *c) {
        if (!c)
                return s.ptr == NULL;
        return s.ptr && s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

static const char *or_null(const char *c) {
        return c ? c : "(null)";
}

#define TEST_STR(s, c)                                                         \
        TEST_ASSERT(str_eq((s), (c)), "got \"%.*s\"%s want \"%s\"",            \
                    (int)(s).len, (s).ptr ? (s).ptr : "",                      \
                    (s).ptr ? "" : " (null)", or_null(c))

static const char *ctx_get(const tern_event_t *ev, const char *key) {
        static char val[256];
        for (uint32_t i = 0; i < ev->n_context; i++)
                if (str_eq(ev->context_key[i], key)) {
                        snprintf(val, sizeof(val), "%.*s",
                                 (int)ev->context_val[i].len,
                                 ev->context_val[i].ptr);
                        return val;
                }
        return NULL;
}

static void test_format_names(void) {
        for (int i = 0; i < INGEST_FMT__CNT; i++) {
                const char *n = ingest_format_name((ingest_format_t)i);
                TEST_EQ_INT(ingest_format_parse(n), i);
                TEST_ASSERT(strstr(ingest_format_list(), n), "%s", n);
        }
        TEST_EQ_INT(ingest_format_parse("csv"), -1);
        TEST_ASSERT(!ingest_file_open("/nonexistent/x.csv",
                                      INGEST_FMT_TAOBAO_CSV, NULL, errstr,
                                      sizeof(errstr)),
                    "opened a missing file");
        TEST_ASSERT(strstr(errstr, "/nonexistent/x.csv"), "%s", errstr);
}

static void test_taobao(void) {
        char *dir = test_tmpdir("0006-taobao");
        const char *p = put_str(dir, "ub.csv",
                                "1,10,100,pv,1511658000\r\n"
                                "2,20,200,fav,1511658001\n"
                                "\n"
                                "3,30,300,jump,1511658002\n"
                                "4,40,400,buy,1511658003");
        ingest_file_t *f = ingest_file_open(p, INGEST_FMT_TAOBAO_CSV, NULL,
                                            errstr, sizeof(errstr));
        tern_event_t ev;
        free(dir);
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "taobao-csv:1");
        TEST_STR(ev.user_id, "1");
        TEST_STR(ev.item_id, "10");
        TEST_STR(ev.category_id, "100");
        TEST_EQ_INT(ev.type, TERN_EV_VIEW);
        TEST_EQ_INT(ev.ts_ms, 1511658000000LL);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_FAVORITE);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 4:") && strstr(errstr, "jump"), "%s",
                    errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "taobao-csv:5");
        TEST_STR(ev.category_id, "400");
        TEST_EQ_INT(ev.type, TERN_EV_PURCHASE);
        TEST_EQ_INT(ev.ts_ms, 1511658003000LL);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(ingest_file_line(f), 5);
        ingest_file_destroy(f);
}

/* A line one byte over the limit is reported and skipped; one exactly at
 * the limit (plus CR) is read. */
static void test_long_line(void) {
        char *dir = test_tmpdir("0006-long");
        const size_t max = 1048576;
        const char *head = "{\"event_type\":\"VIEW\",\"pad\":\"";
        const char *tail = "\"}";
        size_t body = max - strlen(head) - strlen(tail);
        char *s = malloc(3 * max), *w = s;
        ingest_file_t *f;
        tern_event_t ev;
        const char *p;
        w += sprintf(w, "{\"event_type\":\"CART\"}\n");
        w += sprintf(w, "%s", head);
        memset(w, 'x', body + 1); /* one over */
        w += body + 1;
        w += sprintf(w, "%s\n", tail);
        w += sprintf(w, "%s", head);
        memset(w, 'y', body); /* exactly max, CRLF */
        w += body;
        w += sprintf(w, "%s\r\n{\"event_type\":\"PURCHASE\"}", tail);
        p = put_file(dir, "long.jsonl", s, (size_t)(w - s));
        free(s);
        free(dir);
        f = ingest_file_open(p, INGEST_FMT_JSONL, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_CART);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 2: longer than 1048576 bytes"), "%s",
                    errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "jsonl:3");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_PURCHASE);
        TEST_STR(ev.event_id, "jsonl:4");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

static void test_movielens(void) {
        char *dir = test_tmpdir("0006-ml");
        char path[4200];
        ingest_file_t *f;
        tern_event_t ev;
        put_str(dir, "u.item",
                "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|"
                "0|0|0|0|0|0|0|0|0|0\n"
                "2|Caf\xe9 (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|"
                "0|0|0|0|0|0|1|0|0\r\n");
        put_str(dir, "u.genre",
                "unknown|0\nAction|1\nAdventure|2\n"
                "Animation|3\n\n");
        snprintf(path, sizeof(path), "%s/u.data", dir);
        put_str(dir, "u.data",
                "196\t1\t3\t881250949\n186\t2\t5\t891717742\n22\t9\t1\t1\n"
                "7\t1\tx\t1\n");
        f = ingest_file_open(path, INGEST_FMT_MOVIELENS, NULL, errstr,
                             sizeof(errstr));
        free(dir);
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.user_id, "196");
        TEST_STR(ev.item_id, "1");
        TEST_STR(ev.category_id, "Animation");
        TEST_EQ_INT(ev.type, TERN_EV_VIEW);
        TEST_EQ_INT(ev.ts_ms, 881250949000LL);
        TEST_EQ_STR(ctx_get(&ev, "rating"), "3");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.category_id, "Action");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.category_id, NULL); /* item 9 not in u.item */
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 4: bad rating"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

static void test_cdnow(void) {
        char *dir = test_tmpdir("0006-cdnow");
        const char *p = put_str(dir, "cd.txt",
                                " 00001 19970101  1   11.77\n"
                                " 00002 19970230  1   12.00\n"
                                " 00002 19980630  5   77.00");
        ingest_file_t *f =
            ingest_file_open(p, INGEST_FMT_CDNOW, NULL, errstr, sizeof(errstr));
        tern_event_t ev;
        free(dir);
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.user_id, "00001");
        TEST_STR(ev.item_id, NULL);
        TEST_EQ_INT(ev.type, TERN_EV_PURCHASE);
        TEST_EQ_INT(ev.ts_ms, 852076800000LL); /* 1997-01-01 UTC */
        TEST_ASSERT(ev.has_price && ev.price == 11.77, "%f", ev.price);
        TEST_ASSERT(ev.has_quantity && ev.quantity == 1, "%d", ev.quantity);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE); /* Feb 30th */
        TEST_ASSERT(strstr(errstr, "line 2: bad date"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "cdnow:3");
        TEST_EQ_INT(ev.ts_ms, 899164800000LL); /* 1998-06-30 UTC */
        TEST_EQ_INT(ev.quantity, 5);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

static const char avazu_header[] =
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,"
    "app_domain,app_category,device_id,device_ip,device_model,device_type,"
    "device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21\r\n";

static void test_avazu(void) {
        char *dir = test_tmpdir("0006-avazu");
        char text[4096];
        ingest_file_opts_t opts = {.click_delay_ms = 3000};
        ingest_file_t *f;
        tern_event_t ev;
        const char *p;
        snprintf(text, sizeof(text),
                 "%s"
                 "111,0,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,"
                 "7801e8d9,07d7df22,a99f214a,96809ac8,711ee120,1,0,15704,320,"
                 "50,1722,0,35,100084,79\r\n"
                 "222,1,14102100,1005,0,85f751fd,c4e18dd6,50e219e0,9c13b419,"
                 "2347f47a,f95efa07,d1b2c3e4,b3cf8def,8a4875bd,1,0,15704,320,"
                 "50,1722,0,35,100084,79\n"
                 "333,1,14102100,short\n"
                 "444,0,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,"
                 "7801e8d9,07d7df22,a99f214a,96809ac8,711ee120,1,0,15704,320,"
                 "50,1722,0,35,100084,79",
                 avazu_header);
        p = put_str(dir, "train.csv", text);
        free(dir);
        f = ingest_file_open(p, INGEST_FMT_AVAZU_CSV, &opts, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_IMPRESSION);
        TEST_STR(ev.event_id, "avazu-csv:2");
        TEST_STR(ev.impression_id, "111");
        TEST_STR(ev.user_id, "ip:96809ac8");
        TEST_STR(ev.item_id, "1fbe01fe");
        TEST_STR(ev.category_id, "28905ebd");
        TEST_EQ_INT(ev.ts_ms, 1413849600000LL); /* 2014-10-21 00:00 UTC */
        TEST_EQ_INT(ev.n_context, 22);
        TEST_EQ_STR(ctx_get(&ev, "C21"), "79");
        TEST_EQ_STR(ctx_get(&ev, "device_model"), "711ee120");
        TEST_ASSERT(!ctx_get(&ev, "id") && !ctx_get(&ev, "click"),
                    "id/click in context");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_IMPRESSION);
        TEST_STR(ev.user_id, "d1b2c3e4");
        TEST_STR(ev.item_id, "9c13b419"); /* app: no site */
        TEST_STR(ev.category_id, "f95efa07");
        TEST_EQ_INT(ev.ts_ms, 1413849600100LL);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 4:"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.impression_id, "444");
        TEST_EQ_INT(ev.ts_ms, 1413849600300LL); /* the bad row kept its slot */
        /* 222's click, 3 s after it: after every row, drained at the end */
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_STR(ev.event_id, "avazu-csv:3:c");
        TEST_STR(ev.impression_id, "222");
        TEST_STR(ev.user_id, "d1b2c3e4");
        TEST_STR(ev.item_id, "9c13b419");
        TEST_STR(ev.category_id, "f95efa07");
        TEST_STR(ev.campaign_id, NULL);
        TEST_EQ_INT(ev.n_context, 0);
        TEST_EQ_INT(ev.src_offset, 3);
        TEST_EQ_INT(ev.ts_ms, 1413849603100LL);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(ingest_file_rows(f), 4);
        TEST_EQ_INT(ingest_file_clicks_early(f), 0);
        ingest_file_destroy(f);
}

/*
 * Criteo and the row clock. crit_line() builds one Kaggle-layout row:
 * label, the 13 integer fields, then C1..C26 (NULL: all "68fd1e64").
 */
static const char *crit_line(const char *label, const char *const ints[13],
                             const char *cats) {
        static char line[1024];
        size_t n = (size_t)snprintf(line, sizeof(line), "%s", label);
        for (int i = 0; i < 13; i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "\t%s",
                                      ints && ints[i] ? ints[i] : "");
        for (int i = 0; i < 26; i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "\t%s",
                                      cats ? cats : "68fd1e64");
        snprintf(line + n, sizeof(line) - n, "\n");
        return line;
}

/* The events of a whole file, in order: "I<line>" for an impression (by its
 * src_offset), "C<line>" for a click, "E<line>" for a bad line. */
static int read_order(ingest_file_t *f, char *out, size_t size) {
        tern_event_t ev;
        tern_code_t rc;
        size_t n = 0;
        out[0] = '\0';
        while ((rc = ingest_file_next(f, &ev, errstr, sizeof(errstr))) !=
               TERN_ERR_NOT_FOUND) {
                if (rc != TERN_OK && rc != TERN_ERR_DECODE)
                        return -1;
                n += (size_t)snprintf(
                    out + n, size - n, "%s%c%lld", n ? " " : "",
                    rc == TERN_ERR_DECODE           ? 'E'
                    : ev.type == TERN_EV_IMPRESSION ? 'I'
                                                    : 'C',
                    rc == TERN_ERR_DECODE ? (long long)ingest_file_line(f)
                                          : (long long)ev.src_offset);
                if (n >= size)
                        return -1;
        }
        return 0;
}

#define CRITEO_T0 1388534400000LL /* 2014-01-01 00:00 UTC */

static void test_criteo(void) {
        static const char *const ints1[13] = {
            "1", "", "-1", "0", "7", "8", "1000000", "", "", "", "", "", "-2"};
        char *dir = test_tmpdir("0006-criteo");
        char text[8192];
        size_t n = 0;
        ingest_file_opts_t opts = {.click_delay_ms = 4000,
                                   .row_spacing_ms = 1000};
        ingest_file_t *f;
        tern_event_t ev;
        const char *p;
        /* 1: empty fields, negative ints; 2: a click; 3: a bad label;
         * 4: a bad integer; 5: 39 fields; 6: at the click's ts */
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s",
                              crit_line("0", ints1, ""));
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s",
                              crit_line("1", NULL, NULL));
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s",
                              crit_line("2", NULL, NULL));
        n += (size_t)snprintf(
            text + n, sizeof(text) - n, "%s",
            crit_line("0", (const char *const[13]){"x"}, NULL));
        n += (size_t)snprintf(text + n, sizeof(text) - n, "0\t1\t2\n");
        snprintf(text + n, sizeof(text) - n, "%s", crit_line("0", NULL, NULL));
        p = put_str(dir, "train.txt", text);
        free(dir);
        f = ingest_file_open(p, INGEST_FMT_CRITEO_TSV, &opts, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_IMPRESSION);
        TEST_STR(ev.event_id, "criteo-tsv:1");
        TEST_STR(ev.impression_id, "criteo:1");
        TEST_STR(ev.user_id, "criteo");
        TEST_STR(ev.item_id, NULL);
        TEST_STR(ev.category_id, NULL);
        TEST_STR(ev.campaign_id, NULL);
        TEST_EQ_INT(ev.ts_ms, CRITEO_T0);
        /* 7 integers given, no category */
        TEST_EQ_INT(ev.n_context, 7);
        TEST_EQ_STR(ctx_get(&ev, "I1"), "b1");
        TEST_ASSERT(!ctx_get(&ev, "I2"), "empty I2 has an entry");
        TEST_EQ_STR(ctx_get(&ev, "I3"), "n-1");
        TEST_EQ_STR(ctx_get(&ev, "I4"), "b0");
        TEST_EQ_STR(ctx_get(&ev, "I5"), "b3");
        TEST_EQ_STR(ctx_get(&ev, "I6"), "b3");
        TEST_EQ_STR(ctx_get(&ev, "I7"), "b19");
        TEST_EQ_STR(ctx_get(&ev, "I13"), "n-2");
        TEST_ASSERT(!ctx_get(&ev, "C1") && !ctx_get(&ev, "label"),
                    "see condition");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "criteo-tsv:2");
        TEST_EQ_INT(ev.ts_ms, CRITEO_T0 + 1000);
        TEST_EQ_INT(ev.n_context, 26);
        TEST_EQ_STR(ctx_get(&ev, "C26"), "68fd1e64");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 3: label must be 0 or 1"), "%s",
                    errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 4: I1: not an integer"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 5: expected 40 tab-separated fields, "
                                   "got 3"),
                    "%s", errstr);
        /* row 6 is at the click's ts (row 1 + 4 s): the click goes first */
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_STR(ev.event_id, "criteo-tsv:2:c");
        TEST_STR(ev.impression_id, "criteo:2");
        TEST_STR(ev.user_id, "criteo");
        TEST_STR(ev.item_id, NULL);
        TEST_EQ_INT(ev.n_context, 0);
        TEST_EQ_INT(ev.ts_ms, CRITEO_T0 + 5000);
        TEST_EQ_INT(ev.src_offset, 2);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_IMPRESSION);
        TEST_STR(ev.event_id, "criteo-tsv:6");
        TEST_EQ_INT(ev.ts_ms, CRITEO_T0 + 5000);
        TEST_EQ_INT(ev.src_offset, 6);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

/* A click leaves after the rows before its ts and before the rows at or
 * after it, whatever the rows in between (bad ones, other clicks). */
static void test_click_order(void) {
        static const struct {
                int64_t delay;
                const char *order;
        } cases[] = {
            /* rows 100 ms apart: 0 100 200 300 400 (bad: 500) 600 */
            {200, "I1 I2 C1 I3 C2 I4 I5 E6 C5 I7"}, /* ts equal: click */
            {201, "I1 I2 I3 C1 I4 C2 I5 E6 I7 C5"},
            {50, "I1 C1 I2 C2 I3 I4 I5 E6 C5 I7"},
            {10000, "I1 I2 I3 I4 I5 E6 I7 C1 C2 C5"},
        };
        char *dir = test_tmpdir("0006-click-order");
        char text[4096], got[256];
        const char *p;
        snprintf(text, sizeof(text), "%s", crit_line("1", NULL, NULL));
        strcat(text, crit_line("1", NULL, NULL));
        strcat(text, crit_line("0", NULL, NULL));
        strcat(text, crit_line("0", NULL, NULL));
        strcat(text, crit_line("1", NULL, NULL));
        strcat(text, "bad\n");
        strcat(text, crit_line("0", NULL, NULL));
        p = put_str(dir, "rows.tsv", text);
        free(dir);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ingest_file_opts_t o = {.click_delay_ms = cases[i].delay};
                ingest_file_t *f = ingest_file_open(p, INGEST_FMT_CRITEO_TSV,
                                                    &o, errstr, sizeof(errstr));
                TEST_ASSERT(f, "%s", errstr);
                TEST_ASSERT(read_order(f, got, sizeof(got)) == 0, "%s", errstr);
                ingest_file_destroy(f);
                TEST_ASSERT(!strcmp(got, cases[i].order),
                            "delay %lld: got \"%s\" want \"%s\"",
                            (long long)cases[i].delay, got, cases[i].order);
        }
}

/* Two files, one stream: the second continues the first's row clock and
 * line ids get its position; a click still waiting at the end of the first
 * comes out among the second's rows, in event-time order. */
static void test_clock_two_files(void) {
        char *dir = test_tmpdir("0006-two-files");
        char a[4096], b[4096];
        const char *row0 =
            ",14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,"
            "07d7df22,d1b2c3e4,96809ac8,711ee120,1,0,15704,320,50,1722,0,35,"
            "100084,79\n";
        ingest_file_opts_t o = {.click_delay_ms = 250};
        ingest_file_t *f1, *f2;
        tern_event_t ev;
        char p1[4200], p2[4200];
        const int64_t hour = 1413849600000LL;
        snprintf(a, sizeof(a), "%sa1,0%sa2,0%sa3,1%s", avazu_header, row0, row0,
                 row0);
        snprintf(b, sizeof(b), "b1,0%sb2,1%sb3,0%sb4,0%s", row0, row0, row0,
                 row0);
        snprintf(p1, sizeof(p1), "%s", put_str(dir, "train.csv", a));
        snprintf(p2, sizeof(p2), "%s", put_str(dir, "dev.csv", b));
        free(dir);
        o.more_files = 1;
        f1 = ingest_file_open(p1, INGEST_FMT_AVAZU_CSV, &o, errstr,
                              sizeof(errstr));
        TEST_ASSERT(f1, "%s", errstr);
        for (int i = 0; i < 3; i++) {
                TEST_EQ_INT(ingest_file_next(f1, &ev, errstr, sizeof(errstr)),
                            TERN_OK);
                TEST_EQ_INT(ev.type, TERN_EV_IMPRESSION);
                TEST_EQ_INT(ev.ts_ms, hour + i * 100);
        }
        /* a3's click (at 450) waits for the next file */
        TEST_EQ_INT(ingest_file_next(f1, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(ingest_file_rows(f1), 3);
        o.first_row = ingest_file_rows(f1);
        o.file_index = 1;
        o.more_files = 0;
        f2 = ingest_file_open(p2, INGEST_FMT_AVAZU_CSV, &o, errstr,
                              sizeof(errstr));
        TEST_ASSERT(f2, "%s", errstr);
        ingest_file_take_clicks(f2, f1);
        ingest_file_destroy(f1);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "avazu-csv:2:1");
        TEST_STR(ev.impression_id, "b1");
        TEST_EQ_INT(ev.ts_ms, hour + 300);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.impression_id, "b2");
        TEST_EQ_INT(ev.ts_ms, hour + 400);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_STR(ev.event_id, "avazu-csv:4:c"); /* the first file's line 4 */
        TEST_STR(ev.impression_id, "a3");
        TEST_EQ_INT(ev.ts_ms, hour + 450);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.impression_id, "b3");
        TEST_EQ_INT(ev.ts_ms, hour + 500);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.impression_id, "b4");
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_STR(ev.event_id, "avazu-csv:2:2:c");
        TEST_STR(ev.impression_id, "b2");
        TEST_EQ_INT(ev.ts_ms, hour + 650);
        TEST_EQ_INT(ingest_file_next(f2, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        TEST_EQ_INT(ingest_file_rows(f2), 7);
        ingest_file_destroy(f2);
}

/* Past INGEST_CLICK_QUEUE_MAX waiting clicks the oldest goes at once. */
static void test_click_queue_bound(void) {
        enum { ROWS = INGEST_CLICK_QUEUE_MAX + 904 };
        char *dir = test_tmpdir("0006-click-bound");
        char path[4200];
        ingest_file_opts_t o = {.click_delay_ms = 86400000,
                                .row_spacing_ms = 1};
        ingest_file_t *f;
        tern_event_t ev;
        long seen = 0, imps = 0, clicks = 0, next_click = 1;
        FILE *fp;
        snprintf(path, sizeof(path), "%s/many.tsv", dir);
        free(dir);
        fp = fopen(path, "w");
        TEST_ASSERT(fp, "%s", path);
        for (int i = 0; i < ROWS; i++)
                fputs(crit_line("1", NULL, ""), fp);
        fclose(fp);
        f = ingest_file_open(path, INGEST_FMT_CRITEO_TSV, &o, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        while (ingest_file_next(f, &ev, errstr, sizeof(errstr)) == TERN_OK) {
                seen++;
                if (ev.type == TERN_EV_IMPRESSION) {
                        TEST_EQ_INT(ev.src_offset, ++imps);
                        continue;
                }
                /* clicks in row order; the first one only when the queue
                 * overflows at row MAX + 1, then one before each row */
                TEST_EQ_INT(ev.src_offset, next_click++);
                clicks++;
                if (imps < ROWS)
                        TEST_EQ_INT(imps, INGEST_CLICK_QUEUE_MAX + clicks - 1);
                else
                        TEST_ASSERT(ev.ts_ms > CRITEO_T0 + ROWS,
                                    "a drained click is not late");
        }
        TEST_EQ_INT(imps, ROWS);
        TEST_EQ_INT(clicks, ROWS);
        TEST_EQ_INT(ingest_file_clicks_early(f), ROWS - INGEST_CLICK_QUEUE_MAX);
        ingest_file_destroy(f);
}

static void test_jsonl(void) {
        char *dir = test_tmpdir("0006-jsonl");
        const char *p = put_str(
            dir, "ev.jsonl",
            "{\"event_id\":\"e\\\"1\\\\\",\"user_id\":\"u\\u00e9\\ud83d"
            "\\ude00\\n\",\"item_id\":null,\"category_id\":{\"string\":\"c1\"},"
            "\"event_type\":\"PURCHASE\",\"ts_ms\":1700000000123,"
            "\"price\":12.5,\"quantity\":{\"int\":3},\"impression_id\":null,"
            "\"x\":{\"a\":[1,2,{\"b\":true}],\"c\":null},"
            "\"context\":{\"device\":\"ios\",\"page\":\"\"}}\r\n"
            "  {\"user_id\":\"u2\",\"event_type\":\"CLICK\",\"price\":null} \n"
            "{\"user_id\":\"u3\",\"event_type\":\"JUMP\"}\n"
            "{\"user_id\":\"u4\"}\n"
            "{\"user_id\":\"u5\",\"event_type\":\"VIEW\",\"x\":[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
            "]]]]]]]]]]]]]]]]]}\n"
            "{\"user_id\":\"bad\\ud800\",\"event_type\":\"VIEW\"}\n"
            "{\"event_type\":\"CART\"} trailing\n"
            "{\"event_type\":\"FAVORITE\",\"ts_ms\":1.7e12}");
        ingest_file_t *f =
            ingest_file_open(p, INGEST_FMT_JSONL, NULL, errstr, sizeof(errstr));
        tern_event_t ev;
        free(dir);
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "e\"1\\");
        TEST_STR(ev.user_id, "u\xc3\xa9\xf0\x9f\x98\x80\n");
        TEST_STR(ev.item_id, NULL);
        TEST_STR(ev.category_id, "c1");
        TEST_STR(ev.impression_id, NULL);
        TEST_STR(ev.campaign_id, NULL);
        TEST_EQ_INT(ev.type, TERN_EV_PURCHASE);
        TEST_EQ_INT(ev.ts_ms, 1700000000123LL);
        TEST_ASSERT(ev.has_price && ev.price == 12.5, "see condition");
        TEST_ASSERT(ev.has_quantity && ev.quantity == 3, "see condition");
        TEST_EQ_INT(ev.n_context, 2);
        TEST_EQ_STR(ctx_get(&ev, "device"), "ios");
        TEST_EQ_STR(ctx_get(&ev, "page"), "");
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.event_id, "jsonl:2"); /* none in the line */
        TEST_STR(ev.item_id, NULL);
        TEST_ASSERT(!ev.has_price, "see condition");
        TEST_EQ_INT(ev.type, TERN_EV_CLICK);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "line 3:") &&
                        strstr(errstr, "unknown event_type"),
                    "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "no event_type"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "nesting too deep"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "surrogate"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_DECODE);
        TEST_ASSERT(strstr(errstr, "trailing"), "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_EQ_INT(ev.ts_ms, 1700000000000LL);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

/* Set a nullable string field: branch 0 null, 1 string. */
static int av_set_opt(avro_value_t *rec, const char *name, const char *s) {
        avro_value_t field, branch;
        if (avro_value_get_by_name(rec, name, &field, NULL))
                return -1;
        if (!s)
                return avro_value_set_branch(&field, 0, &branch) ||
                       avro_value_set_null(&branch);
        return avro_value_set_branch(&field, 1, &branch) ||
               avro_value_set_string(&branch, s);
}

static int av_write_one(avro_file_writer_t w, avro_value_t *rec, int i) {
        avro_value_t f, b, e;
        char id[32], user[32];
        snprintf(id, sizeof(id), "av-%d", i);
        snprintf(user, sizeof(user), "user-%d", i);
        avro_value_reset(rec);
        if (avro_value_get_by_name(rec, "event_id", &f, NULL) ||
            avro_value_set_string(&f, id) ||
            avro_value_get_by_name(rec, "user_id", &f, NULL) ||
            avro_value_set_string(&f, user) ||
            av_set_opt(rec, "item_id", i % 2 ? "item-x" : NULL) ||
            av_set_opt(rec, "category_id", NULL) ||
            av_set_opt(rec, "impression_id", NULL) ||
            av_set_opt(rec, "campaign_id", i == 2 ? "" : NULL) ||
            avro_value_get_by_name(rec, "event_type", &f, NULL) ||
            avro_value_set_enum(&f, i % TERN_EV__CNT) ||
            avro_value_get_by_name(rec, "ts_ms", &f, NULL) ||
            avro_value_set_long(&f, 1700000000000LL + i) ||
            avro_value_get_by_name(rec, "price", &f, NULL) ||
            avro_value_set_branch(&f, i == 1, &b) ||
            (i == 1 ? avro_value_set_double(&b, 9.99)
                    : avro_value_set_null(&b)) ||
            avro_value_get_by_name(rec, "quantity", &f, NULL) ||
            avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b) ||
            avro_value_get_by_name(rec, "context", &f, NULL))
                return -1;
        for (int k = 0; k < i * 3 % 5; k++) {
                char key[16];
                snprintf(key, sizeof(key), "k%d", k);
                if (avro_value_add(&f, key, &e, NULL, NULL) ||
                    avro_value_set_string(&e, "v"))
                        return -1;
        }
        return avro_file_writer_append_value(w, rec);
}

static int av_write_file(const char *path, int n) {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t rec;
        avro_file_writer_t w;
        int rc = -1;
        if (avro_schema_from_json_length(ingest_behavior_event_schema,
                                         strlen(ingest_behavior_event_schema),
                                         &schema))
                return -1;
        iface = avro_generic_class_from_schema(schema);
        avro_generic_value_new(iface, &rec);
        if (avro_file_writer_create(path, schema, &w))
                goto out;
        rc = 0;
        for (int i = 0; i < n && rc == 0; i++)
                rc = av_write_one(w, &rec, i);
        avro_file_writer_close(w);
out:
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        return rc;
}

static void test_avro(void) {
        char *dir = test_tmpdir("0006-avro");
        char path[4200];
        ingest_file_t *f;
        tern_event_t ev;
        int n = 0;
        snprintf(path, sizeof(path), "%s/ev.avro", dir);
        free(dir);
        TEST_ASSERT(av_write_file(path, 5) == 0, "%s", avro_strerror());
        f = ingest_file_open(path, INGEST_FMT_AVRO, NULL, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        for (;;) {
                tern_code_t rc =
                    ingest_file_next(f, &ev, errstr, sizeof(errstr));
                char want[32];
                if (rc == TERN_ERR_NOT_FOUND)
                        break;
                TEST_ASSERT(rc == TERN_OK, "%s", errstr);
                snprintf(want, sizeof(want), "av-%d", n);
                TEST_STR(ev.event_id, want);
                TEST_STR(ev.item_id, n % 2 ? "item-x" : NULL);
                TEST_STR(ev.category_id, NULL);
                TEST_STR(ev.campaign_id, n == 2 ? "" : NULL);
                TEST_EQ_INT(ev.type, n % TERN_EV__CNT);
                TEST_EQ_INT(ev.ts_ms, 1700000000000LL + n);
                TEST_EQ_INT(ev.has_price, n == 1);
                TEST_ASSERT(n != 1 || ev.price == 9.99, "see condition");
                TEST_EQ_INT(ev.has_quantity, 0);
                TEST_EQ_INT(ev.n_context, n * 3 % 5); /* shrinks too */
                if (n * 3 % 5 > 0)
                        TEST_EQ_STR(ctx_get(&ev, "k0"), "v");
                n++;
        }
        TEST_EQ_INT(n, 5);
        TEST_EQ_INT(ingest_file_line(f), 5);
        ingest_file_destroy(f);
        /* not a container: a clean error, nothing leaked */
        f = ingest_file_open(TERN_SOURCE_DIR "/CMakeLists.txt", INGEST_FMT_AVRO,
                             NULL, errstr, sizeof(errstr));
        TEST_ASSERT(!f && strstr(errstr, "not an Avro object container"), "%s",
                    errstr);
        /* a container without records reads as empty */
        snprintf(path + strlen(path) - 7, 16, "/empty.avro");
        TEST_ASSERT(av_write_file(path, 0) == 0, "%s", avro_strerror());
        f = ingest_file_open(path, INGEST_FMT_AVRO, NULL, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)),
                    TERN_ERR_NOT_FOUND);
        ingest_file_destroy(f);
}

/* Read a whole real file; counts per type into by_type. */
static int read_all(const char *sub, ingest_format_t fmt, long *by_type,
                    long *bad, double *secs) {
        char path[4200];
        ingest_file_t *f;
        tern_event_t ev;
        tern_code_t rc;
        double t0 = now_s();
        long n = 0;
        snprintf(path, sizeof(path), "%s/%s", tern_test_data_dir(), sub);
        f = ingest_file_open(path, fmt, NULL, errstr, sizeof(errstr));
        if (!f)
                return -1;
        memset(by_type, 0, sizeof(long) * TERN_EV__CNT);
        *bad = 0;
        while ((rc = ingest_file_next(f, &ev, errstr, sizeof(errstr))) !=
               TERN_ERR_NOT_FOUND) {
                if (rc == TERN_ERR_DECODE) {
                        if ((*bad)++ < 3)
                                fprintf(stderr, "  %s\n", errstr);
                        continue;
                }
                if (rc != TERN_OK)
                        break;
                by_type[ev.type]++;
                n++;
        }
        ingest_file_destroy(f);
        *secs = now_s() - t0;
        printf("  %-45s %7ld events in %.3f s: %.2f M events/s\n", sub, n,
               *secs, n / *secs / 1e6);
        return rc == TERN_ERR_NOT_FOUND ? 0 : -1;
}

#define NEED_DATA()                                                            \
        do {                                                                   \
                if (!tern_test_data_dir())                                     \
                        TEST_SKIP("../shared/data not found (set "             \
                                  "TERN_DATA_DIR)");                           \
        } while (0)

static void test_real_taobao(void) {
        long t[TERN_EV__CNT], bad;
        double s;
        NEED_DATA();
        TEST_ASSERT(read_all("taobao_userbehavior_time_slice/UserBehavior.csv",
                             INGEST_FMT_TAOBAO_CSV, t, &bad, &s) == 0,
                    "%s", errstr);
        TEST_EQ_INT(bad, 0);
        TEST_EQ_INT(t[TERN_EV_VIEW], 85773);
        TEST_EQ_INT(t[TERN_EV_CART], 5292);
        TEST_EQ_INT(t[TERN_EV_FAVORITE], 2959);
        TEST_EQ_INT(t[TERN_EV_PURCHASE], 2144);
        TEST_EQ_INT(t[0] + t[1] + t[2] + t[3] + t[4] + t[5], 96168);
}

static void test_real_movielens(void) {
        long t[TERN_EV__CNT], bad;
        double s;
        NEED_DATA();
        TEST_ASSERT(read_all("movielens_100k/u.data", INGEST_FMT_MOVIELENS, t,
                             &bad, &s) == 0,
                    "%s", errstr);
        TEST_EQ_INT(bad, 0);
        TEST_EQ_INT(t[TERN_EV_VIEW], 100000);
}

static void test_real_movielens_genre(void) {
        char path[4200];
        ingest_file_t *f;
        tern_event_t ev;
        NEED_DATA();
        snprintf(path, sizeof(path), "%s/movielens_100k/u.data",
                 tern_test_data_dir());
        f = ingest_file_open(path, INGEST_FMT_MOVIELENS, NULL, errstr,
                             sizeof(errstr));
        TEST_ASSERT(f, "%s", errstr);
        /* first line: 196 242 3 881250949; item 242 is Kolya (Comedy) */
        TEST_EQ_INT(ingest_file_next(f, &ev, errstr, sizeof(errstr)), TERN_OK);
        TEST_STR(ev.item_id, "242");
        TEST_STR(ev.category_id, "Comedy");
        ingest_file_destroy(f);
}

static void test_real_cdnow(void) {
        long t[TERN_EV__CNT], bad;
        double s;
        NEED_DATA();
        TEST_ASSERT(read_all("cdnow/CDNOW_master.txt", INGEST_FMT_CDNOW, t,
                             &bad, &s) == 0,
                    "%s", errstr);
        TEST_EQ_INT(bad, 0);
        TEST_EQ_INT(t[TERN_EV_PURCHASE], 69659);
}

/* Rows with click = 1, counted independently of the reader. */
static long count_clicks(const char *sub) {
        char path[4200], line[4096];
        long n = 0;
        FILE *fp;
        snprintf(path, sizeof(path), "%s/%s", tern_test_data_dir(), sub);
        if (!(fp = fopen(path, "r")))
                return -1;
        while (fgets(line, sizeof(line), fp)) {
                char *c = strchr(line, ',');
                if (c && c[1] == '1' && c[2] == ',')
                        n++;
        }
        fclose(fp);
        return n;
}

static void test_real_avazu(void) {
        static const struct {
                const char *sub;
                long rows;
        } files[] = {{"avazu/train.csv", 8087},
                     {"avazu/dev.csv", 480},
                     {"avazu/test.csv", 432}};
        long t[TERN_EV__CNT], bad;
        double s;
        NEED_DATA();
        for (size_t i = 0; i < 3; i++) {
                long clicks = count_clicks(files[i].sub);
                TEST_ASSERT(read_all(files[i].sub, INGEST_FMT_AVAZU_CSV, t,
                                     &bad, &s) == 0,
                            "%s", errstr);
                TEST_EQ_INT(bad, 0);
                TEST_EQ_INT(t[TERN_EV_IMPRESSION], files[i].rows);
                TEST_ASSERT(clicks > 0, "%s: no clicks", files[i].sub);
                TEST_EQ_INT(t[TERN_EV_CLICK], clicks);
        }
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The evaluation's replay: train, then dev, then test, as one stream (as
 * rt_feed_files chains them): one clock, time never goes back, every click
 * after its impression and none early, event ids unique. */
static void test_real_avazu_stream(void) {
        static const char *const subs[] = {"avazu/train.csv", "avazu/dev.csv",
                                           "avazu/test.csv"};
        enum { MAX_EVENTS = 20000 };
        char **ids = calloc(MAX_EVENTS, sizeof(*ids));
        ingest_file_opts_t o = {0};
        ingest_file_t *prev = NULL;
        long imps = 0, clicks = 0, want_clicks = 0, n = 0, dup = 0;
        int64_t last_ts = 0;
        char path[4200];
        tern_event_t ev;
        tern_code_t rc;
        TEST_ASSERT(ids, "out of memory");
        if (!tern_test_data_dir()) {
                free(ids);
                TEST_SKIP("../shared/data not found (set TERN_DATA_DIR)");
        }
        for (size_t i = 0; i < 3; i++) {
                ingest_file_t *f;
                snprintf(path, sizeof(path), "%s/%s", tern_test_data_dir(),
                         subs[i]);
                o.file_index = (uint32_t)i;
                o.more_files = i < 2;
                f = ingest_file_open(path, INGEST_FMT_AVAZU_CSV, &o, errstr,
                                     sizeof(errstr));
                if (!f && i == 0) {
                        free(ids);
                        TEST_SKIP("%s", errstr); /* no avazu/ folder */
                }
                TEST_ASSERT(f, "%s", errstr);
                if (prev)
                        ingest_file_take_clicks(f, prev);
                ingest_file_destroy(prev);
                prev = f;
                want_clicks += count_clicks(subs[i]);
                while ((rc = ingest_file_next(f, &ev, errstr,
                                              sizeof(errstr))) == TERN_OK) {
                        TEST_ASSERT(ev.ts_ms >= last_ts && n < MAX_EVENTS,
                                    "%.*s: ts %lld after %lld",
                                    (int)ev.event_id.len, ev.event_id.ptr,
                                    (long long)ev.ts_ms, (long long)last_ts);
                        last_ts = ev.ts_ms;
                        ids[n++] = strndup(ev.event_id.ptr, ev.event_id.len);
                        imps += ev.type == TERN_EV_IMPRESSION;
                        clicks += ev.type == TERN_EV_CLICK;
                }
                TEST_EQ_INT(rc, TERN_ERR_NOT_FOUND);
                TEST_EQ_INT(ingest_file_clicks_early(f), 0);
                o.first_row = ingest_file_rows(f);
        }
        ingest_file_destroy(prev);
        TEST_EQ_INT(imps, 8087 + 480 + 432);
        TEST_EQ_INT(clicks, want_clicks);
        TEST_EQ_INT(o.first_row, 8999);
        /* 8999 rows 100 ms apart within 2014-10-21 00:00 UTC's hour */
        TEST_ASSERT(last_ts < 1413849600000LL + 3600000, "%lld",
                    (long long)last_ts);
        qsort(ids, (size_t)n, sizeof(*ids), cmp_str);
        for (long i = 1; i < n; i++)
                dup += !strcmp(ids[i - 1], ids[i]);
        for (long i = 0; i < n; i++)
                free(ids[i]);
        free(ids);
        TEST_EQ_INT(dup, 0);
}

static int ev_same(const tern_event_t *a, const tern_event_t *b) {
        if (!tern_str_eq(a->event_id, b->event_id) ||
            !tern_str_eq(a->user_id, b->user_id) ||
            !tern_str_eq(a->item_id, b->item_id) ||
            !tern_str_eq(a->category_id, b->category_id) ||
            !tern_str_eq(a->impression_id, b->impression_id) ||
            !tern_str_eq(a->campaign_id, b->campaign_id) ||
            a->type != b->type || a->ts_ms != b->ts_ms ||
            a->has_price != b->has_price || a->price != b->price ||
            a->has_quantity != b->has_quantity || a->quantity != b->quantity ||
            a->n_context != b->n_context)
                return 0;
        for (uint32_t i = 0; i < a->n_context; i++)
                if (!tern_str_eq(a->context_key[i], b->context_key[i]) ||
                    !tern_str_eq(a->context_val[i], b->context_val[i]))
                        return 0;
        return 1;
}

static void test_gen_determinism(void) {
        ingest_gen_conf_t c;
        ingest_gen_t *a, *b, *other;
        tern_event_t ea, eb, eo;
        int differ = 0;
        ingest_gen_conf_default(&c);
        c.seed = 42;
        a = ingest_gen_new(&c);
        b = ingest_gen_new(&c);
        c.seed = 43;
        other = ingest_gen_new(&c);
        TEST_ASSERT(a && b && other, "see condition");
        for (int i = 0; i < 10000; i++) {
                ingest_gen_next(a, &ea);
                ingest_gen_next(b, &eb);
                ingest_gen_next(other, &eo);
                if (!ev_same(&ea, &eb)) {
                        TEST_ASSERT(0, "event %d differs", i);
                }
                differ += !ev_same(&ea, &eo);
        }
        ingest_gen_destroy(a);
        ingest_gen_destroy(b);
        ingest_gen_destroy(other);
        TEST_ASSERT(differ > 9000, "seeds 42 and 43 agree on %d events",
                    10000 - differ);
}

/* Type mix, time, clicks answering an earlier impression by the user. */
static void test_gen_mix(void) {
        static const double want[TERN_EV__CNT] = {0.70, 0.05, 0.05,
                                                  0.03, 0.02, 0.15};
        enum { N = 200000 };
        ingest_gen_conf_t c;
        ingest_gen_t *g;
        tern_event_t ev;
        long n[TERN_EV__CNT] = {0}, top_item = 0;
        int64_t first = 0, last = 0;
        char(*imp_user)[16] = calloc(N, 16);
        double t0;
        ingest_gen_conf_default(&c);
        c.seed = 7;
        g = ingest_gen_new(&c);
        TEST_ASSERT(g && imp_user, "see condition");
        t0 = now_s();
        for (int i = 0; i < N; i++) {
                ingest_gen_next(g, &ev);
                n[ev.type]++;
                if (i == 0)
                        first = ev.ts_ms;
                TEST_ASSERT(ev.ts_ms >= last, "time went back");
                last = ev.ts_ms;
                TEST_ASSERT(ev.user_id.len && ev.item_id.len &&
                                ev.category_id.len && ev.n_context == 4,
                            "see condition");
                if (ev.type == TERN_EV_IMPRESSION || ev.type == TERN_EV_CLICK) {
                        /* not NUL-terminated: parse within len */
                        char num[24];
                        long id;
                        snprintf(num, sizeof(num), "%.*s",
                                 (int)ev.impression_id.len - 1,
                                 ev.impression_id.ptr + 1);
                        id = strtol(num, NULL, 10);
                        TEST_ASSERT(ev.impression_id.ptr[0] == 'm' && id < N,
                                    "%s", num);
                        if (ev.type == TERN_EV_IMPRESSION)
                                snprintf(imp_user[id], 16, "%.*s",
                                         (int)ev.user_id.len, ev.user_id.ptr);
                        else
                                TEST_ASSERT(str_eq(ev.user_id, imp_user[id]),
                                            "click by another user");
                }
                if (ev.type == TERN_EV_PURCHASE)
                        TEST_ASSERT(ev.has_price && ev.price >= 2 &&
                                        ev.quantity >= 1,
                                    "see condition");
                top_item += str_eq(ev.item_id, "i0");
        }
        printf("  generator: %.2f M events/s\n", N / (now_s() - t0) / 1e6);
        free(imp_user);
        ingest_gen_destroy(g);
        for (int t = 0; t < TERN_EV__CNT; t++)
                TEST_ASSERT(n[t] > (want[t] - 0.02) * N &&
                                n[t] < (want[t] + 0.02) * N,
                            "%s: %ld of %d", tern_event_type_names[t], n[t], N);
        /* mean gap 2 ms */
        TEST_ASSERT(last - first > 1.9 * N && last - first < 2.1 * N,
                    "span %lld ms", (long long)(last - first));
        /* the hottest item (rank 0 is item 0) gets a Zipf share */
        TEST_ASSERT(top_item > N / 50, "top item seen %ld times", top_item);
}

TEST_MAIN(TEST_CASE(test_format_names), TEST_CASE(test_taobao),
          TEST_CASE(test_long_line), TEST_CASE(test_movielens),
          TEST_CASE(test_cdnow), TEST_CASE(test_avazu), TEST_CASE(test_criteo),
          TEST_CASE(test_click_order), TEST_CASE(test_clock_two_files),
          TEST_CASE(test_click_queue_bound), TEST_CASE(test_jsonl),
          TEST_CASE(test_avro), TEST_CASE(test_real_taobao),
          TEST_CASE(test_real_movielens), TEST_CASE(test_real_movielens_genre),
          TEST_CASE(test_real_cdnow), TEST_CASE(test_real_avazu),
          TEST_CASE(test_real_avazu_stream), TEST_CASE(test_gen_determinism),
          TEST_CASE(test_gen_mix));
