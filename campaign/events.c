/*
 * events.c - OUT_DIR/events.csv, appended by several processes, read back
 * by `edm report` and `edm ingest` (contract in events.h).
 *
 * Writing: each line is formatted in memory, then written with one
 * write(2) on an O_APPEND descriptor, so lines from `edm track` and
 * `edm ingest` running at once never interleave (the header is written
 * under flock by whoever finds the file empty).
 * Reading: libcsv, columns found by their header names.
 */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "buf.h"
#include "log.h"
#include "results.h"

struct events {
	int fd;
	char *path;
	struct buf line;
};

/* Write all of p[n] (one write(2) unless interrupted). 0 or -1. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct events *events_open(const char *out_dir, char *err, size_t errlen)
{
	struct events *e = calloc(1, sizeof(*e));
	struct stat st;

	if (e == NULL) {
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	e->fd = -1;
	if (asprintf(&e->path, "%s/events.csv", out_dir) < 0) {
		e->path = NULL;
		edm_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (mkdir(out_dir, 0700) < 0 && errno != EEXIST) {
		edm_errf(err, errlen, "%s: %s", out_dir, strerror(errno));
		goto fail;
	}
	e->fd = open(e->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (e->fd < 0) {
		edm_errf(err, errlen, "%s: %s", e->path, strerror(errno));
		goto fail;
	}
	/* The header goes in once, by whoever finds the file empty. */
	if (flock(e->fd, LOCK_EX) < 0 || fstat(e->fd, &st) < 0) {
		edm_errf(err, errlen, "%s: %s", e->path, strerror(errno));
		goto fail;
	}
	if (st.st_size == 0 && write_all(e->fd, EVENTS_HEADER "\n",
	                                 sizeof(EVENTS_HEADER)) < 0) {
		edm_errf(err, errlen, "%s: %s", e->path, strerror(errno));
		flock(e->fd, LOCK_UN);
		goto fail;
	}
	flock(e->fd, LOCK_UN);
	return e;
fail:
	events_close(e);
	return NULL;
}

/* Format one line with its newline into b. 0 or -1. */
static int events_format(const struct event *ev, struct buf *b)
{
	char t[21];
	int rc = 0;

	results_time(ev->time, t);
	rc |= buf_puts(b, t);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->type);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->email);
	rc |= buf_putc(b, ',');
	if (ev->row != 0)
		rc |= buf_printf(b, "%" PRIu64, ev->row);
	rc |= buf_putc(b, ',');
	if (ev->link_id != 0)
		rc |= buf_printf(b, "%u", ev->link_id);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->url);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->ip);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->user_agent);
	rc |= buf_printf(b, ",%d,", ev->machine ? 1 : 0);
	rc |= results_field(b, ev->category);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->status);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->detail);
	rc |= buf_putc(b, ',');
	rc |= results_field(b, ev->ref);
	rc |= buf_putc(b, '\n');
	return rc ? -1 : 0;
}

int events_append(struct events *e, const struct event *ev, int durable,
                  char *err, size_t errlen)
{
	int rc = 0;

	buf_reset(&e->line);
	if (events_format(ev, &e->line) < 0)
		return edm_errf(err, errlen, "out of memory");
	/* One write(2) with O_APPEND: Linux holds the inode lock for the
	 * whole write to a regular file, so lines of other processes never
	 * interleave with it and no flock round trip is needed per event
	 * (edm track appends one per request). */
	if (write_all(e->fd, e->line.data, e->line.len) < 0 ||
	    (durable && fdatasync(e->fd) < 0))
		rc = edm_errf(err, errlen, "%s: %s", e->path, strerror(errno));
	return rc;
}

const char *events_path(const struct events *e)
{
	return e->path;
}

void events_close(struct events *e)
{
	if (e == NULL)
		return;
	if (e->fd >= 0)
		close(e->fd);
	buf_free(&e->line);
	free(e->path);
	free(e);
}

/* ---- reading ---- */

enum ev_col {
	C_TIME, C_TYPE, C_EMAIL, C_ROW, C_LINK, C_URL, C_IP, C_UA, C_MACHINE,
	C_CATEGORY, C_STATUS, C_DETAIL, C_REF, C_COUNT
};

static const char *const col_names[C_COUNT] = {
	"time", "type", "email", "row", "link_id", "url", "ip", "user_agent",
	"machine", "category", "status", "detail", "ref",
};

struct rd {
	int (*cb)(void *, const struct event *);
	void *arg;
	int map[64];        /* file column -> enum ev_col, -1 unknown */
	size_t ncols, field, line;
	struct buf fields;  /* the current row's fields, NUL-separated */
	size_t off[C_COUNT];
	int have[C_COUNT];
	int stop;
};

/* "2026-11-22T08:15:00Z" -> time_t (UTC); 0 when malformed. */
static time_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

	return end != NULL && *end == '\0' ? timegm(&tm) : 0;
}

/* A formula-guarded field comes back without its '. */
static const char *unguard(const char *s)
{
	if (s[0] == '\'' && (s[1] == '=' || s[1] == '+' || s[1] == '-' ||
	                     s[1] == '@' || s[1] == '\t' || s[1] == '\r'))
		return s + 1;
	return s;
}

static void rd_field(void *s, size_t n, void *data)
{
	struct rd *r = data;
	size_t i = r->field++;

	if (r->line == 0) {
		if (i < sizeof(r->map) / sizeof(r->map[0])) {
			r->map[i] = -1;
			for (int c = 0; c < C_COUNT; c++)
				if (strlen(col_names[c]) == n && memcmp(col_names[c], s, n) == 0)
					r->map[i] = c;
			r->ncols = i + 1;
		}
		return;
	}
	if (i >= r->ncols || r->map[i] < 0)
		return;
	r->off[r->map[i]] = r->fields.len;
	r->have[r->map[i]] = 1;
	buf_append(&r->fields, s, n);
	buf_putc(&r->fields, '\0');
}

static void rd_row(int c, void *data)
{
	struct rd *r = data;
	struct event ev = { 0 };
	const char *v[C_COUNT];

	(void)c;
	if (r->line++ == 0 || r->stop) {
		r->field = 0;
		return;
	}
	for (int k = 0; k < C_COUNT; k++)
		v[k] = r->have[k] && r->fields.data ? unguard(r->fields.data + r->off[k]) : "";
	ev.time = parse_time(v[C_TIME]);
	ev.type = v[C_TYPE];
	ev.email = v[C_EMAIL];
	ev.row = strtoull(v[C_ROW], NULL, 10);
	ev.link_id = (unsigned)strtoul(v[C_LINK], NULL, 10);
	ev.url = v[C_URL];
	ev.ip = v[C_IP];
	ev.user_agent = v[C_UA];
	ev.machine = strcmp(v[C_MACHINE], "1") == 0;
	ev.category = v[C_CATEGORY];
	ev.status = v[C_STATUS];
	ev.detail = v[C_DETAIL];
	ev.ref = v[C_REF];
	r->stop = r->cb(r->arg, &ev);
	buf_reset(&r->fields);
	memset(r->have, 0, sizeof(r->have));
	r->field = 0;
}

int events_read(const char *path,
                int (*cb)(void *arg, const struct event *ev), void *arg,
                char *err, size_t errlen)
{
	struct csv_parser p;
	struct rd r = { .cb = cb, .arg = arg };
	char chunk[65536];
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = 0;

	if (f == NULL)
		return errno == ENOENT ? 0 : edm_errf(err, errlen, "%s: %s", path,
		                                      strerror(errno));
	if (csv_init(&p, CSV_APPEND_NULL) != 0) {
		fclose(f);
		return edm_errf(err, errlen, "out of memory");
	}
	while (!r.stop && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (csv_parse(&p, chunk, n, rd_field, rd_row, &r) != n) {
			rc = edm_errf(err, errlen, "%s: %s", path,
			              csv_strerror(csv_error(&p)));
			break;
		}
	if (rc == 0 && ferror(f))
		rc = edm_errf(err, errlen, "%s: read error", path);
	if (rc == 0 && !r.stop)
		csv_fini(&p, rd_field, rd_row, &r);
	csv_free(&p);
	fclose(f);
	buf_free(&r.fields);
	if (rc == 0 && r.stop)
		return r.stop;
	return rc;
}
