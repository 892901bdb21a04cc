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
 *   jsonl       one JSON object per line with the tern.BehaviorEvent field
 *               names (event_type as its symbol, context an object)
 *   avro        Avro object container file of tern.BehaviorEvent (Avro-C)
 * event_id, when the format has none, is "<format>:<line number>[:c]"
 * (also for a jsonl line without event_id). Line numbers count every line,
 * header and blank ones included; blank lines are skipped silently.
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
 *     site), category_id to match; 22 context entries; ts_ms = hour
 *     (YYMMDDHH, UTC) + data-row index * 100 ms. A click = 1 row's CLICK is
 *     returned by the very next call.
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
        INGEST_FMT_JSONL,
        INGEST_FMT_AVRO,
        INGEST_FMT__CNT
} ingest_format_t;

/* -1 for an unknown name. Names as listed above. */
int ingest_format_parse(const char *name);
const char *ingest_format_name(ingest_format_t fmt);
/* "taobao-csv, movielens, ..." for help and error text. */
const char *ingest_format_list(void);

typedef struct ingest_file_opts {
        int64_t click_delay_ms; /* avazu: CLICK after IMPRESSION; <= 0 means
                                 * the default, 5000 */
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
 * error just returned. */
uint64_t ingest_file_line(const ingest_file_t *f);
void ingest_file_destroy(ingest_file_t *f);

#endif
