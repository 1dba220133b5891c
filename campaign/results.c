/*
 * results.c - format results.csv lines (contract in results.h).
 *
 * Each text field goes through one pipeline: CR and LF become spaces (a
 * line is always one physical line, which the journal relies on: it keeps
 * each line after "F <row> "); a field starting with = + - @ (or TAB/CR,
 * OWASP's list) gets a leading ' so a spreadsheet shows it as text instead
 * of running it as a formula; then RFC 4180 quoting when the field holds a
 * comma, a quote, CR/LF or leading/trailing blanks, quotes doubled.
 * Numbers (code, attempts) and times are written bare: they cannot start
 * with a formula character.
 *
 * What it does not do: validate UTF-8 (fields are copied byte for byte),
 * write files (journal.c does), or parse lines back.
 */
#include "results.h"

#include <string.h>

/* 1 for the bytes a spreadsheet reads as the start of a formula. */
static int results_formula_char(char c)
{
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' ||
	       c == '\r';
}

/* Append one text field (NULL = empty) with the guard and quoting. */
int results_field(struct buf *out, const char *s)
{
	size_t n, i;
	int quote = 0, guard;

	if (s == NULL || *s == '\0')
		return 0;
	n = strlen(s);
	guard = results_formula_char(s[0]);
	for (i = 0; i < n; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			quote = 1;
	/* Blanks at either end would be trimmed by many readers; the guard's
	 * ' comes first, so only a leading blank without a guard counts. */
	if ((!guard && (s[0] == ' ' || s[0] == '\t')) ||
	    s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
	    s[n - 1] == '\n')
		quote = 1;
	if (buf_reserve(out, n * 2 + 4) < 0)
		return -1;
	if (quote)
		buf_putc(out, '"');
	if (guard)
		buf_putc(out, '\'');
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\r' || c == '\n')
			c = ' ';
		if (c == '"')
			buf_putc(out, '"');
		buf_putc(out, c);
	}
	if (quote)
		buf_putc(out, '"');
	return 0;
}

/* Append a time field: ISO 8601 UTC, empty for 0. */
static int results_time_field(struct buf *out, time_t t)
{
	char s[21];

	results_time(t, s);
	return buf_puts(out, s);
}

/* One results.csv line, without the newline, appended to out. */
int results_format(const struct results_row *r, struct buf *out)
{
	size_t mark = out->len;
	int rc = 0;

	rc |= results_time_field(out, r->time);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->email);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->status);
	rc |= buf_putc(out, ',');
	if (r->code != 0)
		rc |= buf_printf(out, "%d", r->code);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->enhanced);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->category);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->reply);
	rc |= buf_printf(out, ",%u,", r->attempts);
	rc |= results_field(out, r->host);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->source_ip);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->tls);
	rc |= buf_putc(out, ',');
	rc |= results_field(out, r->message_id);
	rc |= buf_putc(out, ',');
	rc |= results_time_field(out, r->queued_at);
	rc |= buf_putc(out, ',');
	rc |= results_time_field(out, r->first_attempt_at);
	rc |= buf_printf(out, ",%zu", r->row);
	if (rc != 0) {
		/* Out of memory part-way: leave out as it was. */
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SSZ" in UTC; "" for 0 or a year beyond 4 digits. */
void results_time(time_t t, char out[21])
{
	struct tm tm;

	out[0] = '\0';
	if (t == 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		return;
	if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		out[0] = '\0';
}
