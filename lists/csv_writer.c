/*
 * csv_writer.c - RFC 4180 CSV output written atomically.
 *
 * Purpose: write clean.csv / rejects.csv / results so that a reader never
 * sees half a file: rows go to "<path>.tmp" through our own buffer and
 * write(2); commit flushes, fsyncs, renames over <path> and fsyncs the
 * directory so the rename itself survives a crash. Freeing an uncommitted
 * writer unlinks the temp file.
 *
 * Format (RFC 4180 section 2, with LF line ends as every consumer accepts):
 * a field is quoted when it holds ',', '"', CR or LF, or starts or ends with
 * a space (so tools that trim unquoted fields keep the spaces); quotes are
 * doubled. A record made of one empty field is written as "" so it is not
 * mistaken for a blank line (which readers skip). Invalid UTF-8 is written
 * as U+FFFD, one per run of bad bytes, so the output is always valid UTF-8.
 *
 * What it does not do: choose columns, or write BOMs or CRLF.
 */
#include "csv_writer.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 256 KiB output buffer: a million-row clean.csv is ~200 write(2) calls. */
#define WRITER_BUF_SIZE (256 * 1024)

struct csv_writer {
	int fd;
	char *path;
	char *tmp;
	unsigned char *buf;
	size_t len;
	size_t nfields;    /* fields in the current record so far */
	int first_empty;   /* the record's first field was written empty */
	int created;       /* tmp exists on disk: unlink it unless committed */
	int committed;
};

/* write(2) all of b[0..n), retrying short writes and EINTR. */
static int writer_write_all(int fd, const unsigned char *b, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(fd, b, n > SSIZE_MAX ? SSIZE_MAX : n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Write out the buffer. */
static int writer_flush(struct csv_writer *w)
{
	if (w->len == 0)
		return 0;
	if (writer_write_all(w->fd, w->buf, w->len) < 0)
		return -1;
	w->len = 0;
	return 0;
}

/* Append bytes, flushing when the buffer fills; big pieces bypass it. */
static int writer_put(struct csv_writer *w, const void *p, size_t n)
{
	if (WRITER_BUF_SIZE - w->len < n) {
		if (writer_flush(w) < 0)
			return -1;
		if (n >= WRITER_BUF_SIZE)
			return writer_write_all(w->fd, p, n);
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static int writer_putc(struct csv_writer *w, unsigned char c)
{
	if (w->len == WRITER_BUF_SIZE && writer_flush(w) < 0)
		return -1;
	w->buf[w->len++] = c;
	return 0;
}

/* Create <path>.tmp with exactly 'mode' (0600 for personal data). */
struct csv_writer *csv_writer_open(const char *path, mode_t mode,
                                   char *err, size_t errlen)
{
	struct csv_writer *w;
	size_t plen = strlen(path);

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto fail_oom;
	w->fd = -1;
	w->path = strdup(path);
	w->tmp = malloc(plen + sizeof(".tmp"));
	w->buf = malloc(WRITER_BUF_SIZE);
	if (w->path == NULL || w->tmp == NULL || w->buf == NULL)
		goto fail_oom;
	memcpy(w->tmp, path, plen);
	memcpy(w->tmp + plen, ".tmp", sizeof(".tmp"));

	w->fd = open(w->tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode);
	if (w->fd < 0) {
		snprintf(err, errlen, "%s: %s", w->tmp, strerror(errno));
		goto fail;
	}
	w->created = 1;
	/* the umask may have narrowed (or a stale file widened) the mode */
	if (fchmod(w->fd, mode) < 0) {
		snprintf(err, errlen, "%s: chmod: %s", w->tmp, strerror(errno));
		goto fail;
	}
	return w;

fail_oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	csv_writer_free(w);
	return NULL;
}

/* Whether a field needs quotes (see the file comment for the rules). */
static int writer_needs_quotes(const unsigned char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	if (s[0] == ' ' || s[n - 1] == ' ')
		return 1;
	for (i = 0; i < n; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			return 1;
	return 0;
}

/* Write field bytes: quotes doubled when quoting, invalid UTF-8 runs as
 * one U+FFFD each. */
static int writer_put_body(struct csv_writer *w, const unsigned char *s,
                           size_t n, int quoted)
{
	size_t i = 0, start = 0, k;

	/* The common case: nothing to double, valid UTF-8 (the reader has
	 * checked it), one bulk copy with the word-at-a-time validator. */
	if (!quoted && utf8_check(s, n) == n)
		return writer_put(w, s, n);
	while (i < n) {
		if (s[i] < 0x80 && !(quoted && s[i] == '"')) {
			i++;
			continue;
		}
		/* here s[i] is a quote (k = 1) or starts a multibyte
		 * sequence (k = 2..4, or 0 when invalid) */
		k = s[i] == '"' ? 1 : utf8_seq_len(s + i, n - i);
		if (k > 1) {
			i += k;
			continue;
		}
		if (writer_put(w, s + start, i - start) < 0)
			return -1;
		if (k == 1) { /* a quote inside a quoted field */
			if (writer_put(w, "\"\"", 2) < 0)
				return -1;
			i++;
		} else {
			if (writer_put(w, "\xEF\xBF\xBD", 3) < 0)
				return -1;
			while (i < n && s[i] >= 0x80 &&
			       utf8_seq_len(s + i, n - i) == 0)
				i++;
		}
		start = i;
	}
	return writer_put(w, s + start, n - start);
}

/* Append one field, quoted only when the rules in the file comment say. */
int csv_writer_field(struct csv_writer *w, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	int quoted = writer_needs_quotes(u, len);

	if (w->nfields > 0 && writer_putc(w, ',') < 0)
		return -1;
	if (w->nfields == 0)
		w->first_empty = len == 0;
	w->nfields++;
	if (quoted && writer_putc(w, '"') < 0)
		return -1;
	if (writer_put_body(w, u, len, quoted) < 0)
		return -1;
	if (quoted && writer_putc(w, '"') < 0)
		return -1;
	return 0;
}

int csv_writer_end(struct csv_writer *w)
{
	/* one empty field would be a blank line, which readers skip */
	if (w->nfields == 1 && w->first_empty && writer_put(w, "\"\"", 2) < 0)
		return -1;
	w->nfields = 0;
	return writer_putc(w, '\n');
}

int csv_writer_row(struct csv_writer *w, const char *const *fields,
                   const size_t *lens, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (csv_writer_field(w, fields[i], lens[i]) < 0)
			return -1;
	return csv_writer_end(w);
}

/* fsync the directory holding 'path' so the rename is durable. */
static int writer_dir_sync(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Flush, fsync, close, rename over the final name, then sync the
 * directory. A record left open is ended first. */
int csv_writer_commit(struct csv_writer *w, char *err, size_t errlen)
{
	if (w->committed)
		return 0;
	if (w->nfields > 0 && csv_writer_end(w) < 0)
		goto fail_io;
	if (writer_flush(w) < 0)
		goto fail_io;
	if (fsync(w->fd) < 0)
		goto fail_io;
	if (close(w->fd) < 0) {
		w->fd = -1;
		goto fail_io;
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) < 0) {
		snprintf(err, errlen, "rename %s -> %s: %s", w->tmp, w->path,
		         strerror(errno));
		return -1;
	}
	w->committed = 1;
	/* the data is safe; a failed directory sync only weakens durability
	 * of the name, so it is not reported as a failed commit */
	(void)writer_dir_sync(w->path);
	return 0;

fail_io:
	snprintf(err, errlen, "%s: %s", w->tmp, strerror(errno));
	return -1;
}

void csv_writer_free(struct csv_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->created && !w->committed)
		unlink(w->tmp);
	free(w->buf);
	free(w->tmp);
	free(w->path);
	free(w);
}
