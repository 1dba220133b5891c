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
 * suppress_append() writes the other side: addresses edm itself suppresses
 * (hard bounces, complaints), appended under flock(LOCK_EX) with one
 * write(2) per row and an fsync. A new file gets an
 * "email,reason,time,campaign" header and rows in those columns, so
 * suppress_load() reads it back as a CSV with an email column. An existing
 * file keeps its format, read the way suppress_load() reads it: a CSV gets
 * a row with the email (and reason, time, campaign where it has columns of
 * those names) in its own column order; a plain list gets the address
 * alone on a line.
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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Columns of an existing suppression CSV that suppress_append() fills,
 * by header name (first of each, any case); -1 = absent. */
struct suppress_cols {
	long email, reason, time, campaign;
	size_t n;        /* fields in the header */
};

/* libcsv field callback over a header: note the columns we can fill. */
static void suppress_cols_field(void *s, size_t len, void *data)
{
	static const char *const names[] = { "email", "reason", "time",
	                                     "campaign" };
	struct suppress_cols *c = data;
	long *slot[] = { &c->email, &c->reason, &c->time, &c->campaign };
	const char *p = s;

	while (len > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
	                   p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	for (size_t i = 0; i < 4; i++)
		if (*slot[i] < 0 && len == strlen(names[i]) &&
		    strncasecmp(p, names[i], len) == 0)
			*slot[i] = (long)c->n;
	c->n++;
}

/* What suppress_append() finds in the file it appends to. */
enum suppress_log_kind {
	SUPPRESS_LOG_NEW,    /* empty, or only blank and '#' lines: header */
	SUPPRESS_LOG_CSV,    /* a CSV with an email column: fill by name */
	SUPPRESS_LOG_LINES,  /* one address per line: the address alone */
};

/*
 * With the lock held, read the start of the file the way suppress_load()
 * does (BOM, then blank and '#' lines skipped, then the first line decides)
 * and say how to append to it: *kind, *cols for a CSV, *needs_nl when the
 * last byte is not a line end. 0, or -1 with err.
 */
static int suppress_log_probe(int fd, const char *path,
                              enum suppress_log_kind *kind,
                              struct suppress_cols *cols, int *needs_nl,
                              char *err, size_t errlen)
{
	struct csv_parser hp;
	struct stat st;
	char *line = NULL, last;
	size_t cap = 0, lineno = 0;
	ssize_t got;
	int dfd, rc = -1;
	FILE *fp;

	*kind = SUPPRESS_LOG_NEW;
	*needs_nl = 0;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	if (pread(fd, &last, 1, st.st_size - 1) != 1) {
		snprintf(err, errlen, "%s: read error", path);
		return -1;
	}
	*needs_nl = last != '\n';
	if ((dfd = dup(fd)) < 0 || lseek(dfd, 0, SEEK_SET) < 0 ||
	    (fp = fdopen(dfd, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	while ((got = getline(&line, &cap, fp)) > 0) {
		const char *q = line;
		size_t n = (size_t)got;

		if (++lineno == 1 && n >= 3 && memcmp(q, "\xef\xbb\xbf", 3) == 0) {
			q += 3;
			n -= 3;
		}
		if (suppress_blank(q, n) || suppress_comment(q, n))
			continue;
		memset(cols, 0, sizeof *cols);
		cols->email = cols->reason = cols->time = cols->campaign = -1;
		if (csv_init(&hp, 0) != 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		if (csv_parse(&hp, q, n, suppress_cols_field, NULL, cols) != n ||
		    csv_fini(&hp, suppress_cols_field, NULL, cols) != 0) {
			csv_free(&hp);
			snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
			goto out;
		}
		csv_free(&hp);
		*kind = cols->email >= 0 ? SUPPRESS_LOG_CSV : SUPPRESS_LOG_LINES;
		break;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(fp);
	return rc;
}

/* Append field s (NULL = empty) to p, RFC 4180-quoted when it holds
 * , " CR LF or blank ends, CR/LF turned into spaces. Returns the end.
 * p must have room for 2 * strlen(s) + 2 bytes. */
static char *suppress_put_field(char *p, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	int quote = 0;

	if (n == 0)
		return p;
	quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' ||
	        s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t';
	if (quote)
		*p++ = '"';
	for (size_t i = 0; i < n; i++) {
		char c = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];

		if (c == '"')
			*p++ = '"';
		*p++ = c;
	}
	if (quote)
		*p++ = '"';
	return p;
}

/* Append one suppression row (see suppress.h). */
int suppress_append(const char *path, const char *email, const char *reason,
                    time_t when, const char *campaign, char *err,
                    size_t errlen)
{
	char when_s[32] = "";
	enum suppress_log_kind kind;
	struct suppress_cols cols;
	struct tm tm;
	size_t cap, off = 0;
	char *row = NULL, *p;
	int fd, needs_nl, rc = -1;

	if (email == NULL || *email == '\0' || strpbrk(email, "\r\n") != NULL) {
		snprintf(err, errlen, "%s: empty or multi-line address", path);
		return -1;
	}
	if (when != 0 && gmtime_r(&when, &tm) != NULL)
		strftime(when_s, sizeof when_s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX) < 0) {
		snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
		goto out;
	}
	if (suppress_log_probe(fd, path, &kind, &cols, &needs_nl, err,
	                       errlen) < 0)
		goto out;
	if (kind != SUPPRESS_LOG_CSV) {
		cols.n = 4;
		cols.email = 0;
		cols.reason = 1;
		cols.time = 2;
		cols.campaign = 3;
	}

	/* Worst case: every byte a doubled quote, two quotes per field and
	 * a comma after each of the header's fields. */
	cap = sizeof SUPPRESS_LOG_HEADER + 2 + 2 * strlen(when_s) +
	      2 * strlen(email) + (reason ? 2 * strlen(reason) : 0) +
	      (campaign ? 2 * strlen(campaign) : 0) + 3 * cols.n + 16;
	if ((row = malloc(cap)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	p = row;
	if (needs_nl)
		*p++ = '\n';
	if (kind == SUPPRESS_LOG_NEW) {
		memcpy(p, SUPPRESS_LOG_HEADER "\n", sizeof SUPPRESS_LOG_HEADER);
		p += sizeof SUPPRESS_LOG_HEADER;
	}
	if (kind == SUPPRESS_LOG_LINES) {
		/* A plain list holds addresses only (suppress_load() reads
		 * each whole line as one). */
		memcpy(p, email, strlen(email));
		p += strlen(email);
	} else {
		for (long i = 0; i < (long)cols.n; i++) {
			if (i > 0)
				*p++ = ',';
			if (i == cols.email)
				p = suppress_put_field(p, email);
			else if (i == cols.reason)
				p = suppress_put_field(p, reason);
			else if (i == cols.time)
				p = suppress_put_field(p, when_s);
			else if (i == cols.campaign)
				p = suppress_put_field(p, campaign);
		}
	}
	*p++ = '\n';

	/* One write(2) per row; a short write continues where it stopped. */
	while (off < (size_t)(p - row)) {
		ssize_t w = write(fd, row + off, (size_t)(p - row) - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(row);
	close(fd); /* releases the lock */
	return rc;
}

/* ---- following a file that grows ---- */

struct suppress_watch {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t off;          /* bytes consumed: whole lines only */
	int polled;         /* the first poll happened */
	enum { W_UNKNOWN, W_CSV, W_LINES } mode;
	struct suppress_ctx c; /* CSV column (c.col) and per-line state */
};

struct suppress_watch *suppress_watch_new(const char *path)
{
	struct suppress_watch *w = calloc(1, sizeof(*w));

	if (w != NULL && (w->path = strdup(path)) == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

/* One complete line (with its LF) at p[n]; line 1 may start with a BOM. */
static int watch_line(struct suppress_watch *w, const char *p, size_t n,
                      int first)
{
	struct csv_parser lp;

	if (first && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		n -= 3;
	}
	if (w->mode == W_UNKNOWN) {
		if (suppress_blank(p, n) || suppress_comment(p, n))
			return 0;
		if (suppress_header_parse(&w->c, p, n) < 0)
			return -1;
		if (w->c.found) {
			w->mode = W_CSV;
			return 0;
		}
		w->mode = W_LINES;
	}
	if (w->mode == W_LINES) {
		if (!suppress_blank(p, n) && !suppress_comment(p, n)) {
			if (addr_parse(p, n, &w->c.addr, NULL, 0) == 0)
				suppress_add(&w->c, &w->c.addr);
			else
				w->c.skipped++;
		}
		return w->c.nomem ? -1 : 0;
	}
	/* CSV: addresses never hold a line end, so each line is a record. */
	if (csv_init(&lp, 0) != 0)
		return -1;
	w->c.field = 0;
	w->c.nonblank = 0;
	w->c.email = SUPPRESS_EMAIL_NONE;
	if (csv_parse(&lp, p, n, suppress_row_field, suppress_row_record, &w->c) != n ||
	    csv_fini(&lp, suppress_row_field, suppress_row_record, &w->c) != 0) {
		csv_free(&lp);
		return -1;
	}
	csv_free(&lp);
	return w->c.nomem ? -1 : 0;
}

long suppress_watch_poll(struct suppress_watch *w, struct strset *set,
                         char *err, size_t errlen)
{
	char chunk[65536];
	struct stat st;
	size_t have = 0;
	int fd;
	long rc = -1;

	fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!w->polled) {
			snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
			return -1;
		}
		return 0;
	}
	w->polled = 1;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto out;
	}
	if (st.st_dev != w->dev || st.st_ino != w->ino || st.st_size < w->off) {
		/* new file: start over */
		w->dev = st.st_dev;
		w->ino = st.st_ino;
		w->off = 0;
		w->mode = W_UNKNOWN;
		w->c.found = 0;
		w->c.col = 0;
	}
	w->c.set = set;
	w->c.added = 0;
	w->c.nomem = 0;
	while (w->off + (off_t)have < st.st_size) {
		ssize_t got = pread(fd, chunk + have, sizeof(chunk) - have,
		                    w->off + (off_t)have);
		size_t start = 0, total;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "%s: read error: %s", w->path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		total = have + (size_t)got;
		for (size_t i = 0; i < total; i++) {
			if (chunk[i] != '\n')
				continue;
			if (watch_line(w, chunk + start, i + 1 - start,
			               w->off == 0 && start == 0) < 0) {
				snprintf(err, errlen, "%s: out of memory", w->path);
				goto out;
			}
			start = i + 1;
		}
		if (start == 0 && total == sizeof(chunk)) {
			/* a 64 KB line: not an address; skip it whole */
			w->off += (off_t)total;
			have = 0;
			continue;
		}
		w->off += (off_t)start;
		have = total - start;
		memmove(chunk, chunk + start, have);
	}
	rc = w->c.added;
out:
	close(fd);
	return rc;
}

void suppress_watch_free(struct suppress_watch *w)
{
	if (w == NULL)
		return;
	free(w->path);
	free(w);
}
