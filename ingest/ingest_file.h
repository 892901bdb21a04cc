/*
 * ingest_file — read events from files for `tern replay` and `tern produce`.
 *
 * Formats (mappings in ../shared/data/MANIFEST.md):
 *   taobao-csv  user_id,item_id,category_id,behavior_type,timestamp(s)
 *               pv->VIEW fav->FAVORITE cart->CART buy->PURCHASE
 *   movielens   user \t item \t rating \t unix_ts; VIEW, rating in context;
 *               category = first genre when u.item sits beside the file
 *   cdnow       customer_id yyyymmdd n_cds dollars; PURCHASE at 00:00 UTC
 *   avazu-csv   header line; each row -> IMPRESSION (columns but id/click in
 *               context, impression_id = id) and, when click = 1, a CLICK
 *               answering it click_delay_ms later in event time
 *   criteo-tsv  Criteo Kaggle layout: label \t I1..I13 \t C1..C26, no
 *               header; each row -> IMPRESSION (features in context) and,
 *               when label = 1, a CLICK as for avazu-csv
 *   jsonl       one JSON object per line with the tern.BehaviorEvent field
 *               names (event_type as its symbol, context an object)
 *   avro        Avro object container file of tern.BehaviorEvent (Avro-C)
 * event_id, when the format has none, is "<format>:<line number>[:c]"
 * (also for a jsonl line without event_id); a file opened with
 * file_index k > 0 (the (k+1)-th of several inputs) uses
 * "<format>:<k+1>:<line number>[:c]", so ids stay unique across files.
 * Line numbers count every line, header and blank ones included; blank
 * lines are skipped silently.
 *
 * The row clock (avazu-csv, criteo-tsv: rows without a time of their own):
 * data row r of a file (0-based, bad rows counted) is at
 * base + (first_row + r) * row_spacing_ms, in file order. Pass the previous
 * file's ingest_file_rows() as first_row and several files continue one
 * clock. A labelled row's CLICK (ts = its IMPRESSION's + click_delay_ms) is
 * queued and returned in event-time order: before the first later row whose
 * ts is >= the click's, and at end of file the queue drains, unless the
 * file was opened with more_files: then the clicks still waiting at its
 * end stay queued for ingest_file_take_clicks(), which moves them to the
 * next file's reader, so they come out among its first rows. Clicks leave
 * the queue in the order of their rows (a FIFO: with a fixed delay and a
 * clock that does not go back that is ts order). The queue holds at most
 * INGEST_CLICK_QUEUE_MAX clicks: past that the oldest is returned at once,
 * ahead of its time (counted by ingest_file_clicks_early()); only a delay
 * longer than INGEST_CLICK_QUEUE_MAX rows does that.
 *
 * Details the pipeline sees:
 *   - lines are at most 1048576 bytes (CR LF or LF; the last line may lack
 *     its newline); a longer one is TERN_ERR_DECODE "line N: longer than
 *     1048576 bytes" and reading goes on after it.
 *   - movielens: context {"rating"}; category_id is the first genre's name
 *     (u.genre, else MovieLens' fixed list), null without u.item.
 *   - avazu-csv: a first line starting "id," is skipped (train.csv);
 *     user_id = device_id, or "ip:<device_ip>" for the anonymous device
 *     a99f214a; item_id = site_id, or app_id when site_id is 85f751fd (no
 *     site), category_id to match; 22 context entries; the row clock's
 *     base is the row's hour (YYMMDDHH, UTC). The CLICK keeps
 *     impression_id = id.
 *   - criteo-tsv: 40 TAB-separated fields. The data is anonymous: it has no
 *     user, item, time or campaign column, so user_id is the constant
 *     "criteo" (a user_id is required; every row is one anonymous
 *     audience, keyed to one partition), item_id, category_id and
 *     campaign_id are null, impression_id is "criteo:<line>" (with the
 *     file's "<k+1>:" before the line like event_id). Label must be 0 or 1.
 *     Context: I1..I13 (counts) as "b<floor(log2(v+1))>" for v >= 0 and
 *     "n<v>" for v < 0, C1..C26 (hashed categories) verbatim; an empty
 *     field has no entry (at most 39). The row clock's base is 2014-01-01
 *     00:00 UTC (the data carries no time).
 *   - A CLICK copies the IMPRESSION's user, item, category, impression_id
 *     and campaign (at most INGEST_CLICK_STR_MAX bytes together, else the
 *     row is a TERN_ERR_DECODE line error), has no context, and src_offset
 *     = its row's line.
 *   - jsonl: see ingest_json.h (nulls, unions as {"string": ...}, escapes).
 *   - avro: an empty container (no blocks) reads as zero events; a
 *     non-container is refused at open; a corrupt block is TERN_ERR_IO and
 *     ends the file (a container cannot resynchronise).
 *   - src_offset is the line (avro: record) number; src_topic and
 *     src_partition are left for the caller (NULL, -1).
 *
 * Ownership: the tern_event_t returned by ingest_file_next() borrows memory
 * owned by the reader; it is valid until the next call or destroy.
 * A line that cannot be parsed is not fatal: ingest_file_next() returns
 * TERN_ERR_DECODE with the file:line in errstr and the caller decides
 * (replay counts and skips it, like a dead letter).
 */
#ifndef INGEST_FILE_H
#define INGEST_FILE_H

#include <stdint.h>

#include "../common/tern_err.h"
#include "ingest_event.h"

typedef enum ingest_format {
        INGEST_FMT_TAOBAO_CSV,
        INGEST_FMT_MOVIELENS,
        INGEST_FMT_CDNOW,
        INGEST_FMT_AVAZU_CSV,
        INGEST_FMT_CRITEO_TSV,
        INGEST_FMT_JSONL,
        INGEST_FMT_AVRO,
        INGEST_FMT__CNT
} ingest_format_t;

/* -1 for an unknown name. Names as listed above. */
int ingest_format_parse(const char *name);
const char *ingest_format_name(ingest_format_t fmt);
/* "taobao-csv, movielens, ..." for help and error text. */
const char *ingest_format_list(void);

#define INGEST_CLICK_QUEUE_MAX 4096 /* clicks waiting for their time */
#define INGEST_CLICK_STR_MAX   4096 /* bytes of one queued click's ids */

/* NULL or all zero: the defaults. */
typedef struct ingest_file_opts {
        int64_t click_delay_ms; /* CLICK after its IMPRESSION; <= 0: 2000 */
        int64_t row_spacing_ms; /* row clock step; <= 0: 100 */
        uint64_t first_row;     /* row clock index of this file's first row */
        uint32_t file_index;    /* 0-based position among several inputs */
        int more_files; /* not the last input: keep waiting clicks at end */
} ingest_file_opts_t;

typedef struct ingest_file ingest_file_t;

ingest_file_t *ingest_file_open(const char *path, ingest_format_t fmt,
                                const ingest_file_opts_t *opts, char *errstr,
                                size_t errstr_size);
/* TERN_OK and *ev set; TERN_ERR_NOT_FOUND at end of file; TERN_ERR_DECODE
 * for a bad line (reading may go on); other codes are fatal (I/O). */
tern_code_t ingest_file_next(ingest_file_t *f, tern_event_t *ev, char *errstr,
                             size_t errstr_size);
/* Lines (or container records) consumed so far: the line of the event or
 * error just returned, except for a queued CLICK or a row held back behind
 * one (their src_offset has their own line). */
uint64_t ingest_file_line(const ingest_file_t *f);
/* first_row + the data rows read so far: the next file's first_row. */
uint64_t ingest_file_rows(const ingest_file_t *f);
/* Clicks returned ahead of their event time because the queue was full. */
uint64_t ingest_file_clicks_early(const ingest_file_t *f);
/* Move the clicks still waiting in from (at its end, opened with
 * more_files) to to (the next file of the same format, nothing read yet).
 * from can then be destroyed. */
void ingest_file_take_clicks(ingest_file_t *to, ingest_file_t *from);
void ingest_file_destroy(ingest_file_t *f);

#endif
