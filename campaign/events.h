/*
 * events.h - OUT_DIR/events.csv: what happened to a message after it was
 * sent (opens, clicks, unsubscribes from `edm track`; asynchronous
 * bounces, delays and complaints from `edm ingest`). docs/reports.md
 * documents every column.
 *
 * Columns: time,type,email,row,link_id,url,ip,user_agent,machine,
 *          category,status,detail,ref
 *   time      UTC ISO 8601
 *   type      open | click | unsubscribe | bounce | delayed | complaint
 *   row       the recipient's data row (from the token or the match)
 *   link_id   click only (1-based link number in the HTML template)
 *   machine   1 for proxy/prefetch opens and scanner clicks, else 0
 *   category, status, detail: bounces/complaints (bounce category,
 *             enhanced status code, the Diagnostic-Code or feedback type)
 *   ref       what made the event unique for idempotent ingestion (the
 *             report's Message-ID or a hash of it); empty for tracking
 * Text fields go through results_field() (one physical line, formula
 * guard, RFC 4180 quoting).
 *
 * Contract: events_open() creates the file (0600) with its header when it
 * is new or empty. events_append() writes one whole line with one write(2)
 * on an O_APPEND descriptor (atomic against other appenders on Linux local
 * file systems), so `edm track` and `edm ingest` (several processes) can
 * append to the same file; with 'durable' it fdatasyncs before returning (unsubscribes: the answer to the
 * user comes after the record is on disk). events_read() streams the rows
 * of an events.csv back (unknown extra columns ignored, a missing file is
 * zero rows).
 * What it does not do: deduplicate (readers count what they need).
 */
#ifndef EDM_EVENTS_H
#define EDM_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define EVENTS_HEADER "time,type,email,row,link_id,url,ip,user_agent," \
	"machine,category,status,detail,ref"

struct event {
	time_t time;
	const char *type;
	const char *email;
	uint64_t row;          /* 0 = unknown (empty field) */
	unsigned link_id;      /* 0 = none (empty field) */
	const char *url;       /* NULL = empty, for all the text fields */
	const char *ip;
	const char *user_agent;
	int machine;
	const char *category;
	const char *status;
	const char *detail;
	const char *ref;
};

struct events;

/* Open (create) out_dir/events.csv for appending. NULL with err. */
struct events *events_open(const char *out_dir, char *err, size_t errlen);

/* Append one event; fsync first when durable. 0, or -1 with err. */
int events_append(struct events *e, const struct event *ev, int durable,
                  char *err, size_t errlen);

/* The path of the file. */
const char *events_path(const struct events *e);

/* Close; NULL is a no-op. */
void events_close(struct events *e);

/*
 * Call cb for every row of 'path' (fields point into a buffer valid for
 * the call only; a formula-guarded field comes back without its leading
 * '). cb returns 0 to go on, non-zero to stop (returned). 0 at the end,
 * -1 with err on a read error. A missing file is 0 with no calls.
 */
int events_read(const char *path,
                int (*cb)(void *arg, const struct event *ev), void *arg,
                char *err, size_t errlen);

#endif
