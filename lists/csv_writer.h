/*
 * csv_writer.h - RFC 4180 CSV output written atomically.
 *
 * Contract: rows go to "<path>.tmp" (created with the given mode, e.g. 0600
 * because lists hold personal data); csv_writer_commit() flushes, fsyncs and
 * renames it to <path>. A writer freed without commit removes its temp
 * file, so a failed run never leaves a half-written clean.csv behind.
 * Output is comma-separated with LF line ends; a field is quoted when it
 * holds a comma, quote, CR or LF or starts/ends with a space; quotes are
 * doubled. Invalid UTF-8 in a field is written as U+FFFD so the output file
 * is always valid UTF-8.
 */
#ifndef EDM_CSV_WRITER_H
#define EDM_CSV_WRITER_H

#include <stddef.h>
#include <sys/types.h>

struct csv_writer;

/* Create <path>.tmp with 'mode'. NULL with a message in err on failure. */
struct csv_writer *csv_writer_open(const char *path, mode_t mode,
                                   char *err, size_t errlen);

/* Append one field to the current record. Returns 0 or -1 (errno set). */
int csv_writer_field(struct csv_writer *w, const char *s, size_t len);

/* End the current record. Returns 0 or -1 (errno set). */
int csv_writer_end(struct csv_writer *w);

/* Write a whole record (n fields) and end it. Returns 0 or -1. */
int csv_writer_row(struct csv_writer *w, const char *const *fields,
                   const size_t *lens, size_t n);

/* Flush, fsync, rename into place. Returns 0, or -1 with err filled. The
 * writer must still be freed. */
int csv_writer_commit(struct csv_writer *w, char *err, size_t errlen);

/* Free; removes the temp file unless committed. NULL is a no-op. */
void csv_writer_free(struct csv_writer *w);

#endif
