/*
 * results.h - results.csv lines, one per recipient final outcome
 * (docs/reports.md documents every column). Times are UTC ISO 8601
 * ("2026-11-22T08:15:00Z"); empty when unknown.
 *
 * Columns: time,email,status,code,enhanced,category,reply,attempts,host,
 *          source_ip,tls,message_id,queued_at,first_attempt_at,row
 * status: delivered, bounced, expired, suppressed, skipped.
 * The reply is one line (CR/LF replaced by spaces); fields are quoted per
 * RFC 4180 when they contain a comma, quote or space-leading text, and a
 * field starting with = + - @ is prefixed with ' so spreadsheets do not
 * run it as a formula (CSV injection).
 * Precisely: every text field (all but time, code, attempts and the two
 * other times) has CR and LF replaced by spaces, so a line is always one
 * physical line (the journal stores it after "F <row> "); gets the ' guard
 * when its first byte is = + - @ TAB or CR; and is quoted when it holds
 * , " CR or LF or starts/ends with a blank, quotes doubled. The guard
 * applies to email too, consistently: "-x@example.com" is a legal address
 * and is written '-x@example.com, so a program reading results.csv back
 * strips one leading ' from a field that then starts with one of those
 * characters. code and attempts are numbers, written bare.
 */
#ifndef EDM_RESULTS_H
#define EDM_RESULTS_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

#define RESULTS_HEADER "time,email,status,code,enhanced,category,reply," \
	"attempts,host,source_ip,tls,message_id,queued_at,first_attempt_at,row"

struct results_row {
	time_t time;
	const char *email;
	const char *status;
	int code;                 /* 0 = none (empty field) */
	const char *enhanced;     /* may be NULL */
	const char *category;     /* may be NULL */
	const char *reply;        /* may be NULL */
	unsigned attempts;
	const char *host;         /* "mx1.example.com[127.0.0.2]:25" or NULL */
	const char *source_ip;    /* or NULL */
	const char *tls;          /* "TLSv1.3", "TLSv1.3 unverified", "none" */
	const char *message_id;
	time_t queued_at;         /* 0 = empty */
	time_t first_attempt_at;  /* 0 = empty */
	size_t row;               /* the data row (1-based) in the list */
};

/* Format one line (no newline) into out (appended). 0 or -1. */
int results_format(const struct results_row *r, struct buf *out);

/* Append one text field (NULL = empty) with the CR/LF, formula-guard and
 * quoting rules above (events.csv and report.csv use them too). */
int results_field(struct buf *out, const char *s);

/* "2026-11-22T08:15:00Z" into out[21]; "" for t == 0. */
void results_time(time_t t, char out[21]);

#endif
