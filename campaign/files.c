/*
 * files.c - private directories and atomically written private files
 * (contract in files.h).
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int files_mkdir_p(const char *path)
{
	char *p;
	int rc = 0;

	if (path[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if ((p = strdup(path)) == NULL)
		return -1;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

int files_write_private(const char *path, const void *data, size_t len)
{
	const char *d = data;
	char *tmp;
	size_t off = 0;
	int fd, saved;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -1;
	unlink(tmp); /* a stale temp file of an interrupted run */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail_free;
	if (fchmod(fd, 0600) < 0) /* the umask could only narrow it, but say it */
		goto fail_close;
	while (off < len) {
		ssize_t n = write(fd, d + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail_close;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail_unlink;
	}
	if (rename(tmp, path) < 0)
		goto fail_unlink;
	free(tmp);
	return 0;

fail_close:
	saved = errno;
	close(fd);
	errno = saved;
fail_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
fail_free:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}
