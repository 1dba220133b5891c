/*
 * report.h - `edm report CONFIG [--format csv|html|both] [--excel]`: what
 * became of every recipient, and what the campaign did, from the files the
 * other commands wrote.
 *
 * Inputs: OUT_DIR/results.csv (edm send: one line per final outcome),
 * OUT_DIR/events.csv (edm track and edm ingest: opens, clicks,
 * unsubscribes, asynchronous bounces, delays, complaints) and the
 * recipient list itself, which drives the output: report.csv has one line
 * per data row of the list, in list order. docs/reports.md describes every
 * column, the summary, report.html and the machine rules.
 *
 * Contract: the computation is I/O-free and usable without files:
 *   r = report_new(scanner_window_ms, max_rows);
 *   report_add_result(r, ...) for every results.csv line (any order);
 *   report_add_event(r, ...)  for every events.csv line (any order);
 *   report_finish(r);         classifies clicks (machine rules below);
 *   report_row(r, row, ...)   once per list row, in list order: the
 *                             report.csv line, tallied into the summary;
 *   report_summary(r)         the totals and tables (after the last row).
 * Memory: one 52-byte record per list row (results and event aggregates),
 * the clicks until report_finish() (they need each other and the send
 * time), and one entry per distinct domain, link, category and hour with
 * events; the list itself is streamed by the caller.
 *
 * Machine rules (a click is machine when any holds; scanner_window 0
 * turns the two time rules off):
 *   - events.csv says machine=1 (edm track's proxy/prefetch/scanner test);
 *   - it comes within scanner_window of the row's send time (results.csv
 *     time of a delivered row), or before it;
 *   - the same row clicked a different link within scanner_window of it
 *     (a scanner following every link: both clicks are machine).
 * An open is machine only when events.csv says machine=1.
 *
 * Status: results.csv gives delivered, bounced, expired, suppressed or
 * skipped (the last line of a row wins); no line = pending. For a row
 * delivered per results.csv, a complaint event makes it complained, else
 * a bounce event makes it bounced with async=1 (the event's category, and
 * its enhanced status as the code). delayed events change nothing; bounce
 * and complaint events on rows that were not delivered are ignored.
 *
 * What it does not do: deduplicate events (an open counted twice by the
 * tracker is two opens), or look at the list's addresses beyond their
 * domain (the per-domain table).
 */
#ifndef EDM_REPORT_H
#define EDM_REPORT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"

struct csv_row;
struct event;
struct results_row;

extern const char report_usage[];

/* argv[0] is "report". Returns a sysexits(3) code: 0 done, 64 usage,
 * 65 unreadable results.csv, events.csv or list, 66 missing config, list
 * or results.csv ("run edm send first"), 73 cannot write the reports,
 * 78 config error (also an unknown report_columns name). */
int report_main(int argc, char **argv);

enum report_status {
	REPORT_PENDING = 0,
	REPORT_DELIVERED,
	REPORT_BOUNCED,
	REPORT_EXPIRED,
	REPORT_SUPPRESSED,
	REPORT_SKIPPED,
	REPORT_COMPLAINED,
	REPORT_STATUS_COUNT
};

/* "pending", "delivered", ... */
const char *report_status_name(enum report_status s);

/* The report.csv columns before the list's report_columns. */
#define REPORT_HEADER "email,status,category,code,sent_at,opened,opens," \
	"first_open_at,clicked,clicks,first_click_at,unsubscribed,async," \
	"machine_opens,machine_clicks"

struct report;

/* New report for a list of max_rows data rows: lines naming rows above
 * it are counted in past_end and otherwise ignored (so a corrupt row
 * number cannot allocate much either). NULL on ENOMEM. */
struct report *report_new(unsigned scanner_window_ms, size_t max_rows);

/* NULL is a no-op. */
void report_free(struct report *r);

/* One results.csv line (time, status, code, category and row are used).
 * 0 taken, 1 ignored (unknown status, row 0 or above max_rows), -1
 * ENOMEM. A later line for the same row replaces it. */
int report_add_result(struct report *r, const struct results_row *res);

/* One events.csv line. 0 taken, 1 ignored (unknown type, row 0 or above
 * max_rows), -1 ENOMEM. Call before report_finish(). */
int report_add_event(struct report *r, const struct event *ev);

/* Read OUT_DIR/results.csv into r: columns by header name, one leading '
 * of the formula guard stripped. 0, or -1 with "file: what" in err (a
 * missing file is an error here: the caller checks first). */
int report_load_results(struct report *r, const char *path, char *err,
                        size_t errlen);

/* Classify the clicks (machine rules), then aggregate them per row and
 * per link. Once, after the last add. 0 or -1 (ENOMEM). */
int report_finish(struct report *r);

/* One report.csv line. Strings stay valid until report_free(). */
struct report_line {
	size_t row;
	enum report_status status;
	const char *email;        /* the list's address field, blanks trimmed */
	size_t email_len;         /* (not NUL-terminated at email_len) */
	const char *category;     /* "" when none */
	const char *code;         /* "" when none */
	time_t sent_at;           /* 0 = empty */
	time_t first_open_at, first_click_at;
	unsigned opens, clicks;   /* human */
	unsigned machine_opens, machine_clicks;
	int unsubscribed;
	int async;                /* bounced after delivery (edm ingest) */
};

/*
 * The line of data row 'row' (1-based), whose address field is
 * email[len], and count it into the summary (its domain for the domain
 * table). Call once per list row, in order, after report_finish().
 * 0, or -1 on ENOMEM.
 */
int report_row(struct report *r, size_t row, const char *email, size_t len,
               struct report_line *out);

struct report_count {
	const char *name;
	size_t n;
};

struct report_domain {
	const char *domain;
	size_t sent, delivered, bounced, opened;  /* opened: human, unique */
};

struct report_link {
	unsigned link_id;
	const char *url;
	size_t clicks, unique;                    /* human */
};

struct report_bucket {
	time_t start;
	size_t opens, clicks;                     /* human */
};

#define REPORT_TOP_DOMAINS 20
#define REPORT_TOP_LINKS 10

struct report_summary {
	size_t recipients;      /* list rows */
	size_t sent;            /* attempted: delivered + bounced + expired */
	size_t delivered;       /* accepted and not bounced after (complaints
	                           included: they were delivered) */
	size_t bounced;         /* at once or after delivery */
	size_t async_bounced;   /* of which after delivery */
	size_t expired, pending, suppressed, skipped, complained;
	size_t opened;          /* rows with a human open */
	size_t opened_any;      /* rows with any open, machine included */
	size_t clicked;         /* rows with a human click */
	size_t clicked_any;
	size_t unsubscribed;
	size_t opens, clicks, machine_opens, machine_clicks;  /* events */
	size_t ignored;         /* results/events lines not used: unknown
	                           status or type, no row */
	size_t past_end;        /* results/events lines naming rows past the
	                           list's last row (an edited list?) */
	const struct report_count *categories;   /* bounced by category, */
	size_t ncategories;                      /* most first */
	const struct report_domain *domains;     /* top REPORT_TOP_DOMAINS */
	size_t ndomains, ndomains_total;         /* by sent */
	const struct report_link *links;         /* top REPORT_TOP_LINKS */
	size_t nlinks, nlinks_total;             /* by clicks */
	const struct report_bucket *timeline;    /* human opens and clicks */
	size_t nbuckets;
	unsigned bucket_secs;   /* 3600; 86400 when the span exceeds 3 days;
	                           604800 beyond 400 days */
};

/* The totals and tables, after the last report_row(). NULL on ENOMEM.
 * Valid until the next call or report_free(). */
const struct report_summary *report_summary(struct report *r);

/*
 * Resolve [campaign] report_columns in the list's header: exact name,
 * else ignoring case and surrounding blanks. idx[n] gets the field
 * numbers. 0, or -1 with an error naming report_columns and listing the
 * header's columns in err.
 */
int report_columns_resolve(const struct csv_row *header,
                           char *const *names, size_t n, size_t *idx,
                           char *err, size_t errlen);

/* The header line of report.csv with the list's columns after ours (a
 * list column named like one of ours gets a "list_" prefix); LF, or CRLF
 * with crlf. Every name through results_field(). 0 or -1. */
int report_csv_header(struct buf *out, const char *const *names,
                      size_t n, int crlf);

/* One report.csv line with the n list fields after ours: text through
 * results_field() (formula guard), invalid UTF-8 as U+FFFD, numbers and
 * times bare. 0 or -1. */
int report_csv_line(struct buf *out, const struct report_line *l,
                    const char *const *fields, size_t n, int crlf);

/* report.html: one self-contained page (inline CSS and SVG, no script,
 * no URL to fetch, a CSP forbidding both), every value HTML-escaped.
 * 0 or -1. */
int report_html(struct buf *out, const struct report_summary *s,
                const char *campaign, time_t generated);

/* The summary for the terminal (control characters in data shown as
 * '?'). */
void report_print(FILE *f, const struct report_summary *s,
                  const char *campaign);

#endif
