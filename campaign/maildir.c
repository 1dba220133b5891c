/*
 * maildir.c - Maildir delivery for `edm sink` (contract in maildir.h).
 *
 * The classic delivery: a unique name, the file written in tmp/ with
 * O_EXCL, fsync, rename into new/. The name is unique per host (host
 * name), process (pid) and delivery (counter); an existing name in tmp/ or
 * new/ (a restarted sink that got the same pid within the same second)
 * only moves the counter on.
 */
#include "maildir.h"

#include "files.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names tried per delivery before giving up: a clash needs another writer
 * with our host name and pid in the same second, so 100 is plenty. */
#define NAME_ATTEMPTS 100

struct maildir {
	char *dir;
	char host[512];          /* escaped host name */
	long pid;
	unsigned long counter;   /* names made by this handle */
};

/* Create dir/sub (mode 0700) unless it is already a directory. */
static int make_subdir(const char *dir, const char *sub, char *err,
                       size_t errlen)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s/%s", dir, sub) < 0)
		return edm_errf(err, errlen, "out of memory");
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		rc = edm_errf(err, errlen, "cannot create the Maildir directory %s: %s",
		              path, strerror(errno));
	else if (stat(path, &st) < 0)
		rc = edm_errf(err, errlen, "cannot use the Maildir directory %s: %s",
		              path, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = edm_errf(err, errlen, "cannot use %s as a Maildir directory: "
		              "it exists and is not a directory", path);
	free(path);
	return rc;
}

/* The host name for unique names, "/" and ":" escaped as the Maildir
 * spec says (they would break the path and the info part). */
static void host_name(char *out, size_t outlen)
{
	char h[256];
	size_t o = 0;

	if (gethostname(h, sizeof h) < 0 || h[0] == '\0')
		snprintf(h, sizeof h, "localhost");
	h[sizeof h - 1] = '\0';
	for (const char *p = h; *p != '\0' && o + 5 < outlen; p++) {
		if (*p == '/' || *p == ':') {
			o += (size_t)snprintf(out + o, outlen - o, "\\%03o",
			                      (unsigned)(unsigned char)*p);
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

struct maildir *maildir_open(const char *dir, char *err, size_t errlen)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	struct maildir *md;

	if (dir == NULL || dir[0] == '\0') {
		edm_errf(err, errlen, "the Maildir directory name is empty");
		return NULL;
	}
	if (files_mkdir_p(dir) < 0) {
		edm_errf(err, errlen, "cannot create the Maildir directory %s: %s",
		         dir, strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
		if (make_subdir(dir, subs[i], err, errlen) < 0)
			return NULL;
	if ((md = calloc(1, sizeof *md)) == NULL ||
	    (md->dir = strdup(dir)) == NULL) {
		free(md);
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	host_name(md->host, sizeof md->host);
	md->pid = (long)getpid();
	return md;
}

void maildir_free(struct maildir *md)
{
	if (md == NULL)
		return;
	free(md->dir);
	free(md);
}

const char *maildir_path(const struct maildir *md)
{
	return md->dir;
}

/* Write all of data to fd, retrying short writes and EINTR. */
static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int maildir_deliver(struct maildir *md, const void *data, size_t len,
                    time_t now, struct buf *name, char *err, size_t errlen)
{
	struct buf base = { 0 }, tmp = { 0 }, dst = { 0 };
	struct stat st;
	int fd = -1, rc = -1, saved;

	for (int attempt = 0; ; attempt++) {
		if (attempt == NAME_ATTEMPTS) {
			edm_errf(err, errlen, "no unique file name in %s/tmp after %d "
			         "attempts", md->dir, NAME_ATTEMPTS);
			goto out;
		}
		md->counter++;
		buf_reset(&base);
		buf_reset(&tmp);
		buf_reset(&dst);
		if (buf_printf(&base, "%lld.%ld_%lu.%s", (long long)now, md->pid,
		               md->counter, md->host) < 0 ||
		    buf_printf(&tmp, "%s/tmp/%s", md->dir, base.data) < 0 ||
		    buf_printf(&dst, "%s/new/%s", md->dir, base.data) < 0 ||
		    buf_reserve(name, base.len) < 0) {
			edm_errf(err, errlen, "out of memory");
			goto out;
		}
		if (lstat(dst.data, &st) == 0)
			continue;
		fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST) {
			edm_errf(err, errlen, "cannot create %s: %s", tmp.data,
			         strerror(errno));
			goto out;
		}
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		edm_errf(err, errlen, "cannot write %s: %s", tmp.data,
		         strerror(errno));
		goto fail_close;
	}
	if (close(fd) < 0) {
		fd = -1;
		edm_errf(err, errlen, "cannot write %s: %s", tmp.data,
		         strerror(errno));
		goto fail_unlink;
	}
	fd = -1;
	if (rename(tmp.data, dst.data) < 0) {
		edm_errf(err, errlen, "cannot move %s to %s: %s", tmp.data,
		         dst.data, strerror(errno));
		goto fail_unlink;
	}
	buf_append(name, base.data, base.len); /* reserved above: no failure */
	rc = 0;
	goto out;

fail_close:
	saved = errno;
	close(fd);
	errno = saved;
fail_unlink:
	unlink(tmp.data);
out:
	buf_free(&base);
	buf_free(&tmp);
	buf_free(&dst);
	return rc;
}
