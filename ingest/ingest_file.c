#include "ingest_file.h"

#include <avro.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/tern_buf.h"
#include "ingest_json.h"

#define LINE_MAX_BYTES         1048576
#define READ_CHUNK             65536
#define AVRO_ARENA_MAX         (16u << 20)
#define ML_GENRES              19
#define ML_MAX_ITEM            (1u << 22)
#define AVAZU_COLS             24
#define AVAZU_ANON_DEVICE      "a99f214a" /* Avazu's shared "unknown device" */
#define AVAZU_NO_SITE          "85f751fd" /* Avazu's "not on a site: an app" */
#define CLICK_DELAY_DEFAULT_MS 2000
#define ROW_SPACING_DEFAULT_MS 100
#define CLICK_RING             (INGEST_CLICK_QUEUE_MAX + 1) /* + the overflow */
#define CRITEO_COLS            40
#define CRITEO_INTS            13
#define CRITEO_START_MS        1388534400000LL /* 2014-01-01 00:00 UTC */

static const char *const format_names[INGEST_FMT__CNT] = {
    "taobao-csv", "movielens", "cdnow", "avazu-csv",
    "criteo-tsv", "jsonl",     "avro"};

/* MovieLens 100k's genre list, used when u.genre is not beside u.data. */
static const char *const ml_genres_fixed[ML_GENRES] = {
    "unknown",   "Action",   "Adventure",   "Animation", "Children's",
    "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
    "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
    "Sci-Fi",    "Thriller", "War",         "Western"};

static const char *const avazu_cols[AVAZU_COLS] = {
    "id",         "click",        "hour",         "C1",
    "banner_pos", "site_id",      "site_domain",  "site_category",
    "app_id",     "app_domain",   "app_category", "device_id",
    "device_ip",  "device_model", "device_type",  "device_conn_type",
    "C14",        "C15",          "C16",          "C17",
    "C18",        "C19",          "C20",          "C21"};

static const char *const criteo_cols[CRITEO_COLS] = {
    "label", "I1",  "I2",  "I3",  "I4",  "I5",  "I6",  "I7",  "I8",  "I9",
    "I10",   "I11", "I12", "I13", "C1",  "C2",  "C3",  "C4",  "C5",  "C6",
    "C7",    "C8",  "C9",  "C10", "C11", "C12", "C13", "C14", "C15", "C16",
    "C17",   "C18", "C19", "C20", "C21", "C22", "C23", "C24", "C25", "C26"};

enum { LR_LINE, LR_EOF, LR_LONG, LR_IOERR };

/* The strings a queued CLICK keeps (its IMPRESSION's line is gone by the
 * time it is returned). */
enum {
        CS_EVENT_ID,
        CS_USER_ID,
        CS_ITEM_ID,
        CS_CATEGORY_ID,
        CS_IMPRESSION_ID,
        CS_CAMPAIGN_ID,
        CS__CNT
};
#define CS_NULL UINT32_MAX

typedef struct click {
        int64_t ts_ms;
        int64_t line;
        tern_buf_t mem; /* the strings, back to back; kept across reuse */
        uint32_t off[CS__CNT], len[CS__CNT]; /* off CS_NULL: null */
} click_t;

enum {
        AF_EVENT_ID,
        AF_USER_ID,
        AF_ITEM_ID,
        AF_CATEGORY_ID,
        AF_EVENT_TYPE,
        AF_TS_MS,
        AF_PRICE,
        AF_QUANTITY,
        AF_IMPRESSION_ID,
        AF_CAMPAIGN_ID,
        AF_CONTEXT,
        AF__CNT
};

static const char *const avro_field_names[AF__CNT] = {
    "event_id",      "user_id",     "item_id", "category_id",
    "event_type",    "ts_ms",       "price",   "quantity",
    "impression_id", "campaign_id", "context"};

#define AVRO_MAX_STRS (AF__CNT + 2 * TERN_EVENT_MAX_CONTEXT)

struct ingest_file {
        ingest_format_t fmt;
        int64_t click_delay_ms;
        int64_t row_spacing_ms;
        uint64_t first_row;
        uint32_t file_index;
        int more_files;
        char *path;
        uint64_t line; /* lines (avro: records) consumed */
        uint64_t rows; /* data rows of this file (the row clock) */
        char why[160]; /* reason of the last bad line */

        /* Text formats: one buffer holding at least one whole line. */
        FILE *fp;
        char *buf;
        size_t cap, pos, end, scanned;
        int eof;

        char event_id[64];
        char imp_id[64];
        char user[96];
        char ints[CRITEO_INTS][24]; /* criteo: bucketed I1..I13 */

        /* Labelled rows' CLICKs waiting for their event time: a FIFO ring
         * (clicks only, NULL for the other formats), the click last
         * returned, and a row held back while earlier clicks go first (its
         * strings still borrow the line buffer: no line is read while it
         * is held). */
        click_t *q;
        size_t q_head, q_len;
        click_t out;
        tern_event_t row;
        int row_held;
        uint64_t clicks_early;

        /* movielens: item id -> first genre (-1: none) */
        int8_t *genre_of;
        size_t n_genre_of;
        char genre[ML_GENRES][32];

        /* avro: one generic value reused for every record; strings copied
         * into the arena, fixed up once the arena stops growing. */
        avro_file_reader_t avro;
        avro_value_iface_t *iface;
        avro_value_t value;
        int has_value;
        int fidx[AF__CNT];
        tern_buf_t arena;
        tern_str_t *fix[AVRO_MAX_STRS];
        size_t fix_off[AVRO_MAX_STRS];
        int n_fix;
};

int ingest_format_parse(const char *name) {
        for (int i = 0; i < INGEST_FMT__CNT; i++)
                if (name && strcmp(name, format_names[i]) == 0)
                        return i;
        return -1;
}

const char *ingest_format_name(ingest_format_t fmt) {
        if ((int)fmt < 0 || fmt >= INGEST_FMT__CNT)
                return "unknown";
        return format_names[fmt];
}

const char *ingest_format_list(void) {
        return "taobao-csv, movielens, cdnow, avazu-csv, criteo-tsv, jsonl, "
               "avro";
}

uint64_t ingest_file_line(const ingest_file_t *f) {
        return f->line;
}

uint64_t ingest_file_rows(const ingest_file_t *f) {
        return f->first_row + f->rows;
}

uint64_t ingest_file_clicks_early(const ingest_file_t *f) {
        return f->clicks_early;
}

/* Avazu and Criteo: rows on the row clock, labelled ones with a CLICK. */
static int has_clicks(ingest_format_t fmt) {
        return fmt == INGEST_FMT_AVAZU_CSV || fmt == INGEST_FMT_CRITEO_TSV;
}

static int why(ingest_file_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int why(ingest_file_t *f, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->why, sizeof(f->why), fmt, ap);
        va_end(ap);
        return -1;
}

/*
 * Small field helpers. Lines are not NUL-terminated, so every number goes
 * through a length-checked copy or a digit loop.
 */

/* Split on sep; stores at most max fields, returns how many there were. */
static int split_sep(char *s, size_t n, char sep, tern_str_t *out, int max) {
        int cnt = 0;
        char *end = s + n, *p = s;
        for (;;) {
                char *q = memchr(p, sep, (size_t)(end - p));
                char *stop = q ? q : end;
                if (cnt < max)
                        out[cnt] = (tern_str_t){p, (uint32_t)(stop - p)};
                cnt++;
                if (!q)
                        return cnt;
                p = q + 1;
        }
}

/* Split on runs of blanks, ignoring leading and trailing ones. */
static int split_ws(char *s, size_t n, tern_str_t *out, int max) {
        int cnt = 0;
        size_t i = 0;
        while (i < n) {
                size_t st;
                while (i < n && (s[i] == ' ' || s[i] == '\t'))
                        i++;
                if (i == n)
                        break;
                st = i;
                while (i < n && s[i] != ' ' && s[i] != '\t')
                        i++;
                if (cnt < max)
                        out[cnt] = (tern_str_t){s + st, (uint32_t)(i - st)};
                cnt++;
        }
        return cnt;
}

static int parse_i64(tern_str_t s, int64_t *out) {
        int64_t v = 0;
        uint32_t i = 0;
        int neg = s.len > 0 && s.ptr[0] == '-';
        i = (uint32_t)neg;
        if (s.len == i || s.len - i > 18)
                return -1;
        for (; i < s.len; i++) {
                if (s.ptr[i] < '0' || s.ptr[i] > '9')
                        return -1;
                v = v * 10 + (s.ptr[i] - '0');
        }
        *out = neg ? -v : v;
        return 0;
}

static int parse_double(tern_str_t s, double *out) {
        char tmp[64], *e;
        if (s.len == 0 || s.len >= sizeof(tmp))
                return -1;
        memcpy(tmp, s.ptr, s.len);
        tmp[s.len] = '\0';
        errno = 0;
        *out = strtod(tmp, &e);
        return (e != tmp + s.len || errno || !isfinite(*out)) ? -1 : 0;
}

static int str_is(tern_str_t s, const char *lit) {
        size_t n = strlen(lit);
        return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no timegm(), so no dependence on TZ. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;
        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static int valid_date(int64_t y, int64_t m, int64_t d) {
        static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
                return 0;
        return !(m == 2 && d == 29 && !leap);
}

/* "<prefix>:<line>" for the first file, "<prefix>:<k+1>:<line>" for the
 * one at file_index k: unique across the files of one replay. */
static tern_str_t line_id(const ingest_file_t *f, const char *prefix, char *buf,
                          size_t size) {
        int n = f->file_index == 0 ? snprintf(buf, size, "%s:%llu", prefix,
                                              (unsigned long long)f->line)
                                   : snprintf(buf, size, "%s:%lu:%llu", prefix,
                                              (unsigned long)f->file_index + 1,
                                              (unsigned long long)f->line);
        return (tern_str_t){buf, (uint32_t)n};
}

static void set_event_id(ingest_file_t *f, tern_event_t *ev) {
        ev->event_id =
            line_id(f, format_names[f->fmt], f->event_id, sizeof(f->event_id));
}

/* The row clock: data row r of this file (counted before parsing, so a
 * bad row keeps its slot and later rows do not shift). */
static int64_t next_row_ts(ingest_file_t *f, int64_t base_ms) {
        uint64_t r = f->first_row + f->rows++;
        return base_ms + (int64_t)r * f->row_spacing_ms;
}

/*
 * Line reader: a buffer of one maximum line plus a read chunk, so a line
 * that fits is always returned in one piece and borrowed in place.
 */

static int lr_fill(ingest_file_t *f) {
        size_t n;
        if (f->pos > 0) {
                memmove(f->buf, f->buf + f->pos, f->end - f->pos);
                f->end -= f->pos;
                f->scanned -= f->pos;
                f->pos = 0;
        }
        n = fread(f->buf + f->end, 1, f->cap - f->end, f->fp);
        f->end += n;
        if (n == 0) {
                if (ferror(f->fp))
                        return -1;
                f->eof = 1;
        }
        return 0;
}

/* Drop the rest of an over-long line, up to and including its newline. */
static int lr_skip_rest(ingest_file_t *f) {
        for (;;) {
                char *nl = memchr(f->buf + f->pos, '\n', f->end - f->pos);
                if (nl) {
                        f->pos = f->scanned = (size_t)(nl + 1 - f->buf);
                        return LR_LONG;
                }
                f->pos = f->end = f->scanned = 0;
                if (f->eof)
                        return LR_LONG;
                if (lr_fill(f))
                        return LR_IOERR;
        }
}

static int lr_take(ingest_file_t *f, size_t stop, size_t skip, char **line,
                   size_t *len) {
        size_t n = stop - f->pos;
        *line = f->buf + f->pos;
        f->pos = f->scanned = stop + skip;
        f->line++;
        if (n > 0 && (*line)[n - 1] == '\r')
                n--;
        *len = n;
        return n > LINE_MAX_BYTES ? LR_LONG : LR_LINE;
}

static int lr_next(ingest_file_t *f, char **line, size_t *len) {
        for (;;) {
                char *nl =
                    memchr(f->buf + f->scanned, '\n', f->end - f->scanned);
                if (nl)
                        return lr_take(f, (size_t)(nl - f->buf), 1, line, len);
                f->scanned = f->end;
                /* +1: the limit counts the line without its CR */
                if (f->end - f->pos > LINE_MAX_BYTES + 1) {
                        f->line++;
                        return lr_skip_rest(f);
                }
                if (f->eof)
                        return f->pos == f->end
                                   ? LR_EOF
                                   : lr_take(f, f->end, 0, line, len);
                if (lr_fill(f))
                        return LR_IOERR;
        }
}

static int is_blank(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] != ' ' && s[i] != '\t')
                        return 0;
        return 1;
}

/*
 * Per-format line parsers: 0 and ev filled, or -1 with f->why set.
 */

static int parse_taobao(ingest_file_t *f, char *line, size_t len,
                        tern_event_t *ev) {
        static const char *const beh[] = {"pv", "fav", "cart", "buy"};
        static const tern_event_type_t types[] = {
            TERN_EV_VIEW, TERN_EV_FAVORITE, TERN_EV_CART, TERN_EV_PURCHASE};
        tern_str_t fl[5];
        int64_t ts;
        int n = split_sep(line, len, ',', fl, 5), t;
        if (n != 5)
                return why(f, "expected 5 comma-separated fields, got %d", n);
        for (t = 0; t < 4 && !str_is(fl[3], beh[t]); t++)
                ;
        if (t == 4)
                return why(f, "unknown behavior_type \"%.*s\"",
                           (int)(fl[3].len > 16 ? 16 : fl[3].len), fl[3].ptr);
        if (parse_i64(fl[4], &ts) || ts < 0 || ts > 100000000000LL)
                return why(f, "bad timestamp");
        ev->user_id = fl[0];
        ev->item_id = fl[1];
        ev->category_id = fl[2];
        ev->type = types[t];
        ev->ts_ms = ts * 1000;
        set_event_id(f, ev);
        return 0;
}

static int parse_movielens(ingest_file_t *f, char *line, size_t len,
                           tern_event_t *ev) {
        tern_str_t fl[4];
        int64_t ts, item;
        double rating;
        int n = split_ws(line, len, fl, 4);
        if (n != 4)
                return why(f, "expected 4 tab-separated fields, got %d", n);
        if (parse_double(fl[2], &rating))
                return why(f, "bad rating");
        if (parse_i64(fl[3], &ts) || ts < 0 || ts > 100000000000LL)
                return why(f, "bad timestamp");
        ev->user_id = fl[0];
        ev->item_id = fl[1];
        ev->type = TERN_EV_VIEW;
        ev->ts_ms = ts * 1000;
        if (f->genre_of && parse_i64(fl[1], &item) == 0 && item >= 0 &&
            (size_t)item < f->n_genre_of && f->genre_of[item] >= 0)
                ev->category_id = tern_str_c(f->genre[f->genre_of[item]]);
        ev->context_key[0] = tern_str_c("rating");
        ev->context_val[0] = fl[2];
        ev->n_context = 1;
        set_event_id(f, ev);
        return 0;
}

static int parse_cdnow(ingest_file_t *f, char *line, size_t len,
                       tern_event_t *ev) {
        tern_str_t fl[4];
        int64_t ymd, qty;
        double dollars;
        int n = split_ws(line, len, fl, 4);
        if (n != 4)
                return why(f, "expected 4 fields, got %d", n);
        if (fl[1].len != 8 || parse_i64(fl[1], &ymd) ||
            !valid_date(ymd / 10000, ymd / 100 % 100, ymd % 100))
                return why(f, "bad date (want yyyymmdd)");
        if (parse_i64(fl[2], &qty) || qty < 0 || qty > INT32_MAX)
                return why(f, "bad number of CDs");
        if (parse_double(fl[3], &dollars))
                return why(f, "bad dollar amount");
        ev->user_id = fl[0];
        ev->type = TERN_EV_PURCHASE;
        ev->ts_ms = days_from_civil(ymd / 10000, (unsigned)(ymd / 100 % 100),
                                    (unsigned)(ymd % 100)) *
                    86400000LL;
        ev->has_price = 1;
        ev->price = dollars;
        ev->has_quantity = 1;
        ev->quantity = (int32_t)qty;
        set_event_id(f, ev);
        return 0;
}

/* YYMMDDHH (UTC) -> ms since the epoch. */
static int avazu_hour(tern_str_t s, int64_t *ms) {
        int64_t v, y, m, d, h;
        if (s.len != 8 || parse_i64(s, &v))
                return -1;
        y = 2000 + v / 1000000;
        m = v / 10000 % 100;
        d = v / 100 % 100;
        h = v % 100;
        if (!valid_date(y, m, d) || h > 23)
                return -1;
        *ms =
            (days_from_civil(y, (unsigned)m, (unsigned)d) * 24 + h) * 3600000LL;
        return 0;
}

/* Who saw it: the device, or for Avazu's shared anonymous device id the
 * IP, which splits that one giant "user" into plausible people. */
static void avazu_user(ingest_file_t *f, const tern_str_t *fl,
                       tern_event_t *ev) {
        int n;
        if (!str_is(fl[11], AVAZU_ANON_DEVICE)) {
                ev->user_id = fl[11];
                return;
        }
        n = snprintf(f->user, sizeof(f->user), "ip:%.*s",
                     (int)(fl[12].len > 64 ? 64 : fl[12].len), fl[12].ptr);
        ev->user_id = (tern_str_t){f->user, (uint32_t)n};
}

/*
 * The click queue. A click copies its impression's strings into its slot's
 * own buffer; slots are recycled, buffers kept. The ring has one slot more
 * than INGEST_CLICK_QUEUE_MAX: a push that makes the queue too long makes
 * the oldest click due at once (click_due).
 */

static int click_put(click_t *c, int i, tern_str_t s) {
        if (!s.ptr) {
                c->off[i] = CS_NULL;
                c->len[i] = 0;
                return 0;
        }
        c->off[i] = (uint32_t)c->mem.len;
        c->len[i] = s.len;
        return tern_buf_append(&c->mem, s.ptr, s.len);
}

/* Queue the CLICK answering imp; -1 (f->why set) when its ids are too
 * long to keep. */
static int click_push(ingest_file_t *f, const tern_event_t *imp) {
        click_t *c = &f->q[(f->q_head + f->q_len) % CLICK_RING];
        const tern_str_t s[CS__CNT] = {imp->event_id,      imp->user_id,
                                       imp->item_id,       imp->category_id,
                                       imp->impression_id, imp->campaign_id};
        int bad = 0;
        if (f->q_len >= CLICK_RING) /* click_due pops after every push */
                return why(f, "click queue overrun");
        tern_buf_reset(&c->mem);
        for (int i = CS_EVENT_ID + 1; i < CS__CNT; i++)
                bad |= click_put(c, i, s[i]);
        /* the event id last, so that ":c" can follow it */
        bad |= click_put(c, CS_EVENT_ID, s[CS_EVENT_ID]);
        bad |= tern_buf_append(&c->mem, ":c", 2);
        if (bad)
                return why(f, "ids of a clicked row exceed %d bytes",
                           INGEST_CLICK_STR_MAX);
        c->len[CS_EVENT_ID] += 2;
        c->ts_ms = imp->ts_ms + f->click_delay_ms;
        c->line = (int64_t)f->line;
        if (++f->q_len > INGEST_CLICK_QUEUE_MAX)
                f->clicks_early++;
        return 0;
}

/* The oldest click goes before a row at row_ts (or at end of file). */
static int click_due(const ingest_file_t *f, int64_t row_ts) {
        return f->q_len > INGEST_CLICK_QUEUE_MAX ||
               (f->q_len > 0 && f->q[f->q_head].ts_ms <= row_ts);
}

static tern_str_t click_str(const click_t *c, int i) {
        if (c->off[i] == CS_NULL)
                return TERN_STR_NULL;
        return (tern_str_t){(const char *)c->mem.data + c->off[i], c->len[i]};
}

/* Return the oldest click: its slot is swapped into f->out, so its
 * strings live until the next call. */
static void click_pop(ingest_file_t *f, tern_event_t *ev) {
        click_t spare = f->out;
        f->out = f->q[f->q_head];
        f->q[f->q_head] = spare;
        f->q_head = (f->q_head + 1) % CLICK_RING;
        f->q_len--;
        tern_event_clear(ev);
        ev->type = TERN_EV_CLICK;
        ev->ts_ms = f->out.ts_ms;
        ev->event_id = click_str(&f->out, CS_EVENT_ID);
        ev->user_id = click_str(&f->out, CS_USER_ID);
        ev->item_id = click_str(&f->out, CS_ITEM_ID);
        ev->category_id = click_str(&f->out, CS_CATEGORY_ID);
        ev->impression_id = click_str(&f->out, CS_IMPRESSION_ID);
        ev->campaign_id = click_str(&f->out, CS_CAMPAIGN_ID);
        ev->src_offset = f->out.line;
}

void ingest_file_take_clicks(ingest_file_t *to, ingest_file_t *from) {
        click_t *ring = to->q;
        if (!to->q || !from->q || to->q_len > 0)
                return; /* not a click format, or to has begun */
        to->q = from->q;
        to->q_head = from->q_head;
        to->q_len = from->q_len;
        from->q = ring; /* empty; freed with from */
        from->q_head = from->q_len = 0;
}

static tern_code_t click_queue_new(ingest_file_t *f, char *errstr,
                                   size_t errstr_size) {
        if (!(f->q = calloc(CLICK_RING, sizeof(*f->q))))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "%s: out of memory", f->path);
        for (size_t i = 0; i < CLICK_RING; i++)
                tern_buf_init(&f->q[i].mem, INGEST_CLICK_STR_MAX);
        tern_buf_init(&f->out.mem, INGEST_CLICK_STR_MAX);
        return TERN_OK;
}

static void click_queue_free(ingest_file_t *f) {
        if (f->q)
                for (size_t i = 0; i < CLICK_RING; i++)
                        tern_buf_free(&f->q[i].mem);
        free(f->q);
        tern_buf_free(&f->out.mem);
}

static int parse_avazu(ingest_file_t *f, char *line, size_t len,
                       tern_event_t *ev) {
        tern_str_t fl[AVAZU_COLS];
        int64_t hour_ms, ts;
        int site = 0;
        int n = split_sep(line, len, ',', fl, AVAZU_COLS);
        ts = next_row_ts(f, 0);
        if (n != AVAZU_COLS)
                return why(f, "expected %d comma-separated fields, got %d",
                           AVAZU_COLS, n);
        if (!str_is(fl[1], "0") && !str_is(fl[1], "1"))
                return why(f, "click must be 0 or 1");
        if (avazu_hour(fl[2], &hour_ms))
                return why(f, "bad hour (want YYMMDDHH)");
        site = !str_is(fl[5], AVAZU_NO_SITE);
        ev->type = TERN_EV_IMPRESSION;
        ev->impression_id = fl[0];
        avazu_user(f, fl, ev);
        ev->item_id = site ? fl[5] : fl[8];
        ev->category_id = site ? fl[7] : fl[10];
        /* the hour, then the rows spread evenly in file order */
        ev->ts_ms = hour_ms + ts;
        for (int i = 2; i < AVAZU_COLS; i++) {
                ev->context_key[ev->n_context] = tern_str_c(avazu_cols[i]);
                ev->context_val[ev->n_context++] = fl[i];
        }
        set_event_id(f, ev);
        return fl[1].ptr[0] == '1' ? click_push(f, ev) : 0;
}

/* I1..I13 are counts (a few -1 or -2): bucket by magnitude, so a hashed
 * feature sees a handful of values instead of thousands. */
static int criteo_int(ingest_file_t *f, int col, tern_str_t s, char *out,
                      size_t size, tern_str_t *val) {
        int64_t v;
        int n, b = 0;
        if (parse_i64(s, &v))
                return why(f, "%s: not an integer", criteo_cols[col]);
        if (v < 0) {
                n = snprintf(out, size, "n%lld", (long long)v);
        } else {
                for (uint64_t x = (uint64_t)v + 1; x > 1; x >>= 1)
                        b++; /* floor(log2(v + 1)) */
                n = snprintf(out, size, "b%d", b);
        }
        *val = (tern_str_t){out, (uint32_t)n};
        return 0;
}

static int parse_criteo(ingest_file_t *f, char *line, size_t len,
                        tern_event_t *ev) {
        tern_str_t fl[CRITEO_COLS], val;
        int n = split_sep(line, len, '\t', fl, CRITEO_COLS);
        int64_t ts = next_row_ts(f, CRITEO_START_MS);
        if (n != CRITEO_COLS)
                return why(f, "expected %d tab-separated fields, got %d",
                           CRITEO_COLS, n);
        if (!str_is(fl[0], "0") && !str_is(fl[0], "1"))
                return why(f, "label must be 0 or 1");
        for (int i = 1; i < CRITEO_COLS; i++) {
                if (fl[i].len == 0)
                        continue; /* missing: no entry */
                val = fl[i];
                if (i <= CRITEO_INTS && criteo_int(f, i, fl[i], f->ints[i - 1],
                                                   sizeof(f->ints[0]), &val))
                        return -1;
                ev->context_key[ev->n_context] = tern_str_c(criteo_cols[i]);
                ev->context_val[ev->n_context++] = val;
        }
        ev->type = TERN_EV_IMPRESSION;
        ev->ts_ms = ts;
        /* anonymous data: one constant user, no item (see the header) */
        ev->user_id = tern_str_c("criteo");
        ev->impression_id = line_id(f, "criteo", f->imp_id, sizeof(f->imp_id));
        set_event_id(f, ev);
        return fl[0].ptr[0] == '1' ? click_push(f, ev) : 0;
}

static int parse_jsonl(ingest_file_t *f, char *line, size_t len,
                       tern_event_t *ev) {
        if (ingest_json_event(line, len, ev, f->why, sizeof(f->why)))
                return -1;
        if (!ev->event_id.ptr)
                set_event_id(f, ev);
        return 0;
}

typedef int(parse_fn_t)(ingest_file_t *f, char *line, size_t len,
                        tern_event_t *ev);

static parse_fn_t *const parsers[INGEST_FMT__CNT] = {
    [INGEST_FMT_TAOBAO_CSV] = parse_taobao,
    [INGEST_FMT_MOVIELENS] = parse_movielens,
    [INGEST_FMT_CDNOW] = parse_cdnow,
    [INGEST_FMT_AVAZU_CSV] = parse_avazu,
    [INGEST_FMT_CRITEO_TSV] = parse_criteo,
    [INGEST_FMT_JSONL] = parse_jsonl,
};

static tern_code_t text_next(ingest_file_t *f, tern_event_t *ev, char *errstr,
                             size_t errstr_size) {
        char *line;
        size_t len;
        for (;;) {
                int rc = lr_next(f, &line, &len);
                if (rc == LR_EOF)
                        return TERN_ERR_NOT_FOUND;
                if (rc == LR_IOERR)
                        return tern_errf(errstr, errstr_size, TERN_ERR_IO,
                                         "%s: read failed: %s", f->path,
                                         strerror(errno));
                if (rc == LR_LONG)
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "%s: line %llu: longer than %d bytes",
                                         f->path, (unsigned long long)f->line,
                                         LINE_MAX_BYTES);
                if (is_blank(line, len))
                        continue;
                /* train.csv has a header, dev.csv and test.csv do not */
                if (f->fmt == INGEST_FMT_AVAZU_CSV && f->line == 1 &&
                    len >= 3 && memcmp(line, "id,", 3) == 0)
                        continue;
                tern_event_clear(ev);
                if (parsers[f->fmt](f, line, len, ev))
                        return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                         "%s: line %llu: %s", f->path,
                                         (unsigned long long)f->line, f->why);
                ev->src_offset = (int64_t)f->line;
                return TERN_OK;
        }
}

/*
 * MovieLens genres: u.item (pipe-separated, latin-1) ends in 19 0/1 genre
 * flags; u.genre names them. Both are optional and read once at open.
 */

static FILE *open_beside(const char *path, const char *name) {
        char p[4096];
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (int)(slash - path) : 1;
        snprintf(p, sizeof(p), "%.*s/%s", dir_len, slash ? path : ".", name);
        return fopen(p, "r");
}

static void ml_load_genre_names(ingest_file_t *f) {
        FILE *fp = open_beside(f->path, "u.genre");
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        for (int i = 0; i < ML_GENRES; i++)
                snprintf(f->genre[i], sizeof(f->genre[i]), "%s",
                         ml_genres_fixed[i]);
        if (!fp)
                return;
        while ((n = getline(&line, &cap, fp)) > 0) {
                tern_str_t fl[2];
                int64_t idx;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        n--;
                if (split_sep(line, (size_t)n, '|', fl, 2) != 2 ||
                    parse_i64(fl[1], &idx) || idx < 0 || idx >= ML_GENRES ||
                    fl[0].len == 0 || fl[0].len >= sizeof(f->genre[0]))
                        continue;
                memcpy(f->genre[idx], fl[0].ptr, fl[0].len);
                f->genre[idx][fl[0].len] = '\0';
        }
        free(line);
        fclose(fp);
}

static int ml_set_genre(ingest_file_t *f, int64_t item, int genre) {
        if ((size_t)item >= f->n_genre_of) {
                size_t n = f->n_genre_of ? f->n_genre_of : 2048;
                int8_t *g;
                while (n <= (size_t)item)
                        n *= 2;
                if (!(g = realloc(f->genre_of, n)))
                        return -1;
                memset(g + f->n_genre_of, -1, n - f->n_genre_of);
                f->genre_of = g;
                f->n_genre_of = n;
        }
        f->genre_of[item] = (int8_t)genre;
        return 0;
}

/* One u.item line: "id|title|date|video date|url|flag*19". */
static int ml_item_line(ingest_file_t *f, char *line, size_t n) {
        tern_str_t fl[64];
        int64_t id;
        int cnt = split_sep(line, n, '|', fl, 64), g;
        if (cnt < ML_GENRES + 1 || cnt > 64 || parse_i64(fl[0], &id) ||
            id < 0 || id >= (int64_t)ML_MAX_ITEM)
                return 0; /* not an item line: ignore */
        for (g = 0; g < ML_GENRES; g++)
                if (str_is(fl[cnt - ML_GENRES + g], "1"))
                        return ml_set_genre(f, id, g);
        return 0;
}

static tern_code_t ml_load_items(ingest_file_t *f, char *errstr,
                                 size_t errstr_size) {
        FILE *fp = open_beside(f->path, "u.item");
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        tern_code_t rc = TERN_OK;
        if (!fp)
                return TERN_OK; /* no genres: category stays null */
        ml_load_genre_names(f);
        while ((n = getline(&line, &cap, fp)) > 0) {
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        n--;
                if (ml_item_line(f, line, (size_t)n)) {
                        rc = tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                       "%s: u.item: out of memory", f->path);
                        break;
                }
        }
        free(line);
        fclose(fp);
        return rc;
}

static tern_code_t text_open(ingest_file_t *f, char *errstr,
                             size_t errstr_size) {
        if (!(f->fp = fopen(f->path, "rb")))
                return tern_errf(errstr, errstr_size,
                                 errno == ENOENT ? TERN_ERR_NOT_FOUND
                                                 : TERN_ERR_IO,
                                 "%s: %s", f->path, strerror(errno));
        f->cap = LINE_MAX_BYTES + 2 + READ_CHUNK;
        if (!(f->buf = malloc(f->cap)))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "%s: out of memory", f->path);
        if (f->fmt == INGEST_FMT_MOVIELENS)
                return ml_load_items(f, errstr, errstr_size);
        return TERN_OK;
}

/*
 * Avro object container files, through Avro-C's generic value.
 */

/* Avro-C 1.11.1's avro_strerror() appends to text kept from earlier
 * failures: copy it into the caller's buffer at once, never keep it. */
static tern_code_t avro_err(char *errstr, size_t errstr_size, tern_code_t code,
                            const char *path, const char *what) {
        return tern_errf(errstr, errstr_size, code, "%s: %s: %s", path, what,
                         avro_strerror());
}

/* Check the container magic first: Avro-C leaks its readers when the
 * header is not a container's, and our message can be clearer. */
static tern_code_t avro_check_magic(ingest_file_t *f, char *errstr,
                                    size_t errstr_size) {
        char magic[4] = {0};
        FILE *fp = fopen(f->path, "rb");
        size_t n;
        if (!fp)
                return tern_errf(errstr, errstr_size,
                                 errno == ENOENT ? TERN_ERR_NOT_FOUND
                                                 : TERN_ERR_IO,
                                 "%s: %s", f->path, strerror(errno));
        n = fread(magic, 1, sizeof(magic), fp);
        fclose(fp);
        if (n != sizeof(magic) || memcmp(magic, "Obj\x01", 4) != 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "%s: not an Avro object container file "
                                 "(no \"Obj\\x01\" magic)",
                                 f->path);
        return TERN_OK;
}

static tern_code_t avro_open(ingest_file_t *f, char *errstr,
                             size_t errstr_size) {
        avro_schema_t schema;
        int rc = avro_check_magic(f, errstr, errstr_size);
        if (rc != TERN_OK)
                return (tern_code_t)rc;
        rc = avro_file_reader(f->path, &f->avro);
        if (rc == EOF) {
                /* a header and no block: an empty container, not an error */
                f->avro = NULL;
                f->eof = 1;
                return TERN_OK;
        }
        if (rc) {
                f->avro = NULL;
                return avro_err(errstr, errstr_size,
                                errno == ENOENT ? TERN_ERR_NOT_FOUND
                                                : TERN_ERR_IO,
                                f->path, "cannot open Avro container");
        }
        schema = avro_file_reader_get_writer_schema(f->avro);
        if (!is_avro_record(schema))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "%s: writer schema is not a record", f->path);
        for (int i = 0; i < AF__CNT; i++)
                f->fidx[i] = avro_schema_record_field_get_index(
                    schema, avro_field_names[i]);
        if (f->fidx[AF_EVENT_TYPE] < 0)
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "%s: writer schema has no event_type: not "
                                 "a tern.BehaviorEvent container",
                                 f->path);
        if (!(f->iface = avro_generic_class_from_schema(schema)) ||
            avro_generic_value_new(f->iface, &f->value))
                return avro_err(errstr, errstr_size, TERN_ERR_NOMEM, f->path,
                                "cannot create a value");
        f->has_value = 1;
        tern_buf_init(&f->arena, AVRO_ARENA_MAX);
        /* a non-NULL base, so an empty string never reads as null */
        if (tern_buf_reserve(&f->arena, 4096))
                return tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                                 "%s: out of memory", f->path);
        return TERN_OK;
}

/* The field's value with a union resolved: 0 a value, 1 null or not in the
 * writer schema, -1 error. */
static int av_field(ingest_file_t *f, int af, avro_value_t *out) {
        avro_value_t branch;
        if (f->fidx[af] < 0)
                return 1;
        if (avro_value_get_by_index(&f->value, (size_t)f->fidx[af], out, NULL))
                return why(f, "%s: cannot read", avro_field_names[af]);
        if (avro_value_get_type(out) == AVRO_UNION) {
                if (avro_value_get_current_branch(out, &branch))
                        return why(f, "%s: bad union", avro_field_names[af]);
                *out = branch;
        }
        return avro_value_get_type(out) == AVRO_NULL ? 1 : 0;
}

static int av_copy(ingest_file_t *f, const char *p, size_t n, tern_str_t *dst) {
        if (f->n_fix >= AVRO_MAX_STRS || n > UINT32_MAX ||
            tern_buf_append(&f->arena, p, n))
                return why(f, "record strings exceed %u bytes", AVRO_ARENA_MAX);
        f->fix[f->n_fix] = dst;
        f->fix_off[f->n_fix++] = f->arena.len - n;
        dst->len = (uint32_t)n;
        return 0;
}

/* A string from a string or bytes value (Avro-C counts the NUL in a
 * string's size). */
static int av_value_str(ingest_file_t *f, avro_value_t *v, const char *name,
                        tern_str_t *dst) {
        const void *p;
        const char *s;
        size_t n;
        if (avro_value_get_type(v) == AVRO_STRING) {
                if (avro_value_get_string(v, &s, &n))
                        return why(f, "%s: cannot read string", name);
                return av_copy(f, s, n ? n - 1 : 0, dst);
        }
        if (avro_value_get_type(v) == AVRO_BYTES) {
                if (avro_value_get_bytes(v, &p, &n))
                        return why(f, "%s: cannot read bytes", name);
                return av_copy(f, p, n, dst);
        }
        return why(f, "%s: not a string", name);
}

static int av_str(ingest_file_t *f, int af, tern_str_t *dst) {
        avro_value_t v;
        int rc = av_field(f, af, &v);
        if (rc)
                return rc < 0 ? -1 : (*dst = TERN_STR_NULL, 0);
        return av_value_str(f, &v, avro_field_names[af], dst);
}

static int av_num(ingest_file_t *f, int af, double *d, int64_t *l, int *has) {
        avro_value_t v;
        int32_t i32 = 0;
        float fl = 0;
        int rc = av_field(f, af, &v), bad = 0;
        *has = 0;
        if (rc)
                return rc < 0 ? -1 : 0;
        switch (avro_value_get_type(&v)) {
        case AVRO_INT32:
                bad = avro_value_get_int(&v, &i32);
                *l = i32;
                *d = i32;
                break;
        case AVRO_INT64:
                bad = avro_value_get_long(&v, l);
                *d = (double)*l;
                break;
        case AVRO_DOUBLE:
                bad = avro_value_get_double(&v, d);
                *l = (int64_t)*d;
                break;
        case AVRO_FLOAT:
                bad = avro_value_get_float(&v, &fl);
                *d = fl;
                *l = (int64_t)fl;
                break;
        default:
                return why(f, "%s: not a number", avro_field_names[af]);
        }
        if (bad)
                return why(f, "%s: cannot read", avro_field_names[af]);
        *has = 1;
        return 0;
}

static int av_event_type(ingest_file_t *f, tern_event_t *ev) {
        avro_value_t v;
        const char *sym = NULL;
        int idx, t;
        if (av_field(f, AF_EVENT_TYPE, &v))
                return why(f, "event_type: missing");
        if (avro_value_get_type(&v) != AVRO_ENUM ||
            avro_value_get_enum(&v, &idx) ||
            !(sym = avro_schema_enum_get(avro_value_get_schema(&v), idx)))
                return why(f, "event_type: not an enum symbol");
        /* by name: a writer may order the symbols differently */
        if ((t = tern_event_type_parse(sym, strlen(sym))) < 0)
                return why(f, "event_type: unknown symbol \"%.32s\"", sym);
        ev->type = (tern_event_type_t)t;
        return 0;
}

static int av_context(ingest_file_t *f, tern_event_t *ev) {
        avro_value_t map, elem;
        const char *key;
        size_t n;
        int rc = av_field(f, AF_CONTEXT, &map);
        if (rc)
                return rc < 0 ? -1 : 0;
        if (avro_value_get_type(&map) != AVRO_MAP ||
            avro_value_get_size(&map, &n))
                return why(f, "context: not a map");
        if (n > TERN_EVENT_MAX_CONTEXT)
                return why(f, "context: %zu entries, more than %d", n,
                           TERN_EVENT_MAX_CONTEXT);
        for (size_t i = 0; i < n; i++) {
                if (avro_value_get_by_index(&map, i, &elem, &key))
                        return why(f, "context: cannot read entry");
                if (av_copy(f, key, strlen(key), &ev->context_key[i]) ||
                    av_value_str(f, &elem, "context", &ev->context_val[i]))
                        return -1;
                ev->n_context = (uint32_t)i + 1;
        }
        return 0;
}

static int av_event(ingest_file_t *f, tern_event_t *ev) {
        static const int strs[] = {AF_EVENT_ID,      AF_USER_ID,
                                   AF_ITEM_ID,       AF_CATEGORY_ID,
                                   AF_IMPRESSION_ID, AF_CAMPAIGN_ID};
        tern_str_t *dst[] = {&ev->event_id,      &ev->user_id,
                             &ev->item_id,       &ev->category_id,
                             &ev->impression_id, &ev->campaign_id};
        double d = 0;
        int64_t l = 0;
        int has = 0;
        tern_buf_reset(&f->arena);
        f->n_fix = 0;
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                if (av_str(f, strs[i], dst[i]))
                        return -1;
        if (av_event_type(f, ev) || av_context(f, ev))
                return -1;
        if (av_num(f, AF_TS_MS, &d, &ev->ts_ms, &has) ||
            av_num(f, AF_PRICE, &ev->price, &l, &ev->has_price) ||
            av_num(f, AF_QUANTITY, &d, &l, &ev->has_quantity))
                return -1;
        ev->quantity = (int32_t)l;
        /* the arena has stopped growing: point the strings into it */
        for (int i = 0; i < f->n_fix; i++)
                f->fix[i]->ptr = (const char *)f->arena.data + f->fix_off[i];
        return 0;
}

static tern_code_t avro_next(ingest_file_t *f, tern_event_t *ev, char *errstr,
                             size_t errstr_size) {
        int rc;
        if (f->eof)
                return TERN_ERR_NOT_FOUND;
        rc = avro_file_reader_read_value(f->avro, &f->value);
        if (rc == EOF) {
                f->eof = 1;
                return TERN_ERR_NOT_FOUND;
        }
        if (rc) {
                /* a broken block cannot be resynchronised: stop here */
                f->eof = 1;
                return avro_err(errstr, errstr_size, TERN_ERR_IO, f->path,
                                "corrupt container");
        }
        f->line++;
        tern_event_clear(ev);
        if (av_event(f, ev))
                return tern_errf(errstr, errstr_size, TERN_ERR_DECODE,
                                 "%s: record %llu: %s", f->path,
                                 (unsigned long long)f->line, f->why);
        ev->src_offset = (int64_t)f->line;
        return TERN_OK;
}

ingest_file_t *ingest_file_open(const char *path, ingest_format_t fmt,
                                const ingest_file_opts_t *opts, char *errstr,
                                size_t errstr_size) {
        ingest_file_t *f;
        tern_code_t rc;
        if (!path || (int)fmt < 0 || fmt >= INGEST_FMT__CNT) {
                tern_errf(errstr, errstr_size, TERN_ERR_INVALID_ARG,
                          "ingest_file_open: no path or unknown format");
                return NULL;
        }
        if (!(f = calloc(1, sizeof(*f))) || !(f->path = strdup(path))) {
                free(f);
                tern_errf(errstr, errstr_size, TERN_ERR_NOMEM,
                          "%s: out of memory", path);
                return NULL;
        }
        f->fmt = fmt;
        f->click_delay_ms = opts && opts->click_delay_ms > 0
                                ? opts->click_delay_ms
                                : CLICK_DELAY_DEFAULT_MS;
        f->row_spacing_ms = opts && opts->row_spacing_ms > 0
                                ? opts->row_spacing_ms
                                : ROW_SPACING_DEFAULT_MS;
        f->first_row = opts ? opts->first_row : 0;
        f->file_index = opts ? opts->file_index : 0;
        f->more_files = opts ? opts->more_files : 0;
        rc = fmt == INGEST_FMT_AVRO ? avro_open(f, errstr, errstr_size)
                                    : text_open(f, errstr, errstr_size);
        if (rc == TERN_OK && has_clicks(fmt))
                rc = click_queue_new(f, errstr, errstr_size);
        if (rc != TERN_OK) {
                ingest_file_destroy(f);
                return NULL;
        }
        return f;
}

/* Rows with clicks: a row read while an earlier click is due is held back
 * and returned after it (and after any others due by then). */
static tern_code_t clicked_next(ingest_file_t *f, tern_event_t *ev,
                                char *errstr, size_t errstr_size) {
        tern_code_t rc;
        if (f->row_held) {
                if (click_due(f, f->row.ts_ms)) {
                        click_pop(f, ev);
                        return TERN_OK;
                }
                f->row_held = 0;
                *ev = f->row;
                return TERN_OK;
        }
        rc = text_next(f, ev, errstr, errstr_size);
        if (rc == TERN_ERR_NOT_FOUND && f->q_len > 0 && !f->more_files) {
                click_pop(f, ev); /* end of the last file: drain */
                return TERN_OK;
        }
        if (rc != TERN_OK || !click_due(f, ev->ts_ms))
                return rc;
        f->row = *ev;
        f->row_held = 1;
        click_pop(f, ev);
        return TERN_OK;
}

tern_code_t ingest_file_next(ingest_file_t *f, tern_event_t *ev, char *errstr,
                             size_t errstr_size) {
        if (has_clicks(f->fmt))
                return clicked_next(f, ev, errstr, errstr_size);
        if (f->fmt == INGEST_FMT_AVRO)
                return avro_next(f, ev, errstr, errstr_size);
        return text_next(f, ev, errstr, errstr_size);
}

void ingest_file_destroy(ingest_file_t *f) {
        if (!f)
                return;
        if (f->has_value)
                avro_value_decref(&f->value);
        if (f->iface)
                avro_value_iface_decref(f->iface);
        if (f->avro)
                avro_file_reader_close(f->avro);
        tern_buf_free(&f->arena);
        click_queue_free(f);
        if (f->fp)
                fclose(f->fp);
        free(f->buf);
        free(f->genre_of);
        free(f->path);
        free(f);
}
