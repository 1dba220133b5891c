/*
 * suppress.c - load a suppression list (addresses never to mail) into a set.
 *
 * Purpose: accept the files operators actually have: a plain list of
 * addresses, or a CSV export (unsubscribe log, bounce report, ESP export)
 * with an "email" column among others.
 *
 * Contract (see suppress.h): the file is streamed line by line with
 * getline(), so memory is bounded by the longest line plus the set itself.
 * A UTF-8 BOM is stripped. Leading blank lines and '#' comment lines are
 * skipped; the first other line decides the format: if, parsed as a
 * comma-separated CSV record (libcsv, RFC 4180 quoting), one of its fields
 * is "email" (any case, surrounding blanks ignored), the file is a CSV and
 * that column (the first such, if several) is used; otherwise every
 * non-blank, non-'#' line is one address. Each address goes through
 * addr_parse() and its key is added to the set; what does not parse is
 * counted in *skipped.
 *
 * What it does not do: other encodings than UTF-8, other CSV delimiters, or
 * comments inside a CSV after its header (a '#' row there is just a row
 * whose email field does not parse). Errors name the path, and the line
 * when one is to blame.
 */
#include "suppress.h"

#include "address.h"
#include "strset.h"

#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the current CSV record's email field turned out to be. */
enum suppress_email {
	SUPPRESS_EMAIL_NONE, /* the record ended before the email column */
	SUPPRESS_EMAIL_BAD,  /* present but addr_parse() refused it */
	SUPPRESS_EMAIL_OK,   /* parsed; key in ctx->addr */
};

struct suppress_ctx {
	struct strset *set;
	long added;      /* keys new to the set */
	size_t skipped;  /* non-blank entries addr_parse() refused */
	int nomem;       /* strset_add() failed: abort the load */
	/* header detection */
	int found;       /* the header has an email column */
	size_t col;      /* its index */
	/* CSV record state */
	size_t field;    /* index of the next field in the current record */
	int nonblank;    /* some field of the record has a non-blank byte */
	enum suppress_email email;
	struct addr addr;
};

/* 1 when s[n] holds nothing but ASCII blanks (space, tab, CR, LF). */
static int suppress_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

/* 1 when the line's first non-blank byte is '#': a comment. */
static int suppress_comment(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return s[i] == '#';
	return 0;
}

/* Add one parsed address's key to the set, counting it if new. */
static void suppress_add(struct suppress_ctx *c, const struct addr *a)
{
	int rc = strset_add(c->set, a->key, a->len);

	if (rc < 0)
		c->nomem = 1;
	else
		c->added += rc;
}

/* libcsv field callback for the header: note the first "email" column. */
static void suppress_header_field(void *s, size_t len, void *data)
{
	struct suppress_ctx *c = data;
	const char *p = s;

	while (len > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
	                   p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	if (!c->found && len == 5 && strncasecmp(p, "email", 5) == 0) {
		c->found = 1;
		c->col = c->field;
	}
	c->field++;
}

/* libcsv field callback for data rows: parse the email column. */
static void suppress_row_field(void *s, size_t len, void *data)
{
	struct suppress_ctx *c = data;

	if (!suppress_blank(s, len))
		c->nonblank = 1;
	if (c->field == c->col)
		c->email = addr_parse(s, len, &c->addr, NULL, 0) == 0
		                   ? SUPPRESS_EMAIL_OK : SUPPRESS_EMAIL_BAD;
	c->field++;
}

/* libcsv record callback for data rows: add the key or count a skip;
 * a record of blanks only (e.g. ",,") is ignored like a blank line. */
static void suppress_row_record(int term, void *data)
{
	struct suppress_ctx *c = data;

	(void)term;
	if (c->nonblank) {
		if (c->email == SUPPRESS_EMAIL_OK)
			suppress_add(c, &c->addr);
		else
			c->skipped++;
	}
	c->field = 0;
	c->nonblank = 0;
	c->email = SUPPRESS_EMAIL_NONE;
}

/*
 * Parse one line as a CSV header; sets c->found/c->col. Returns 0, or -1
 * when libcsv fails (only out of memory, as strict mode is off).
 */
static int suppress_header_parse(struct suppress_ctx *c, const char *line,
                                 size_t n)
{
	struct csv_parser hp;
	int rc = 0;

	if (csv_init(&hp, 0) != 0)
		return -1;
	c->field = 0;
	if (csv_parse(&hp, line, n, suppress_header_field, NULL, c) != n ||
	    csv_fini(&hp, suppress_header_field, NULL, c) != 0)
		rc = -1;
	csv_free(&hp);
	c->field = 0;
	return rc;
}

/* Load a suppression file into 'set' (see suppress.h for the contract). */
long suppress_load(struct strset *set, const char *path, size_t *skipped,
                   char *err, size_t errlen)
{
	enum { MODE_UNKNOWN, MODE_CSV, MODE_LINES } mode = MODE_UNKNOWN;
	struct suppress_ctx c;
	struct csv_parser parser;
	int parser_live = 0;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t got;
	long ret = -1;
	FILE *fp;

	memset(&c, 0, sizeof c);
	c.set = set;
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}

	for (;;) {
		const char *p;
		size_t n;

		errno = 0;
		got = getline(&line, &cap, fp);
		if (got < 0)
			break;
		lineno++;
		p = line;
		n = (size_t)got;
		if (lineno == 1 && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;
			n -= 3;
		}

		if (mode == MODE_UNKNOWN) {
			if (suppress_blank(p, n) || suppress_comment(p, n))
				continue;
			if (suppress_header_parse(&c, p, n) < 0) {
				snprintf(err, errlen, "%s:%zu: out of memory",
				         path, lineno);
				goto out;
			}
			if (c.found) {
				if (csv_init(&parser, 0) != 0) {
					snprintf(err, errlen, "%s: out of memory",
					         path);
					goto out;
				}
				parser_live = 1;
				mode = MODE_CSV;
				continue;
			}
			mode = MODE_LINES; /* and this line is an address */
		}

		if (mode == MODE_CSV) {
			if (csv_parse(&parser, p, n, suppress_row_field,
			              suppress_row_record, &c) != n) {
				snprintf(err, errlen, "%s:%zu: %s", path, lineno,
				         csv_strerror(csv_error(&parser)));
				goto out;
			}
		} else if (!suppress_blank(p, n) && !suppress_comment(p, n)) {
			if (addr_parse(p, n, &c.addr, NULL, 0) == 0)
				suppress_add(&c, &c.addr);
			else
				c.skipped++;
		}
		if (c.nomem) {
			snprintf(err, errlen, "%s:%zu: out of memory", path,
			         lineno);
			goto out;
		}
	}
	if (ferror(fp) || errno == ENOMEM) {
		snprintf(err, errlen, "%s: read error: %s", path,
		         strerror(errno != 0 ? errno : EIO));
		goto out;
	}
	if (parser_live) {
		/* A last record without a line end is only flushed here. */
		if (csv_fini(&parser, suppress_row_field, suppress_row_record,
		             &c) != 0) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno,
			         csv_strerror(csv_error(&parser)));
			goto out;
		}
		if (c.nomem) {
			snprintf(err, errlen, "%s:%zu: out of memory", path,
			         lineno);
			goto out;
		}
	}
	if (skipped != NULL)
		*skipped = c.skipped;
	ret = c.added;

out:
	if (parser_live)
		csv_free(&parser);
	free(line);
	fclose(fp);
	return ret;
}
