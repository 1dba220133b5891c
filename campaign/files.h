/*
 * files.h - the two file-system chores every command shares: private
 * directories and private files (recipient data is personal data).
 */
#ifndef EDM_FILES_H
#define EDM_FILES_H

#include <stddef.h>

/* mkdir -p: create 'path' and missing parents with mode 0700. 0, or -1
 * with errno set (EINVAL for an empty path). */
int files_mkdir_p(const char *path);

/*
 * Write data[len] to 'path' atomically with mode exactly 0600: a new
 * "<path>.tmp" (O_EXCL, so a planted file or symlink is never followed),
 * fsync, rename over 'path'. 0, or -1 with errno set (the temp file is
 * removed).
 */
int files_write_private(const char *path, const void *data, size_t len);

#endif
