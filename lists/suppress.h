/*
 * suppress.h - the campaign's suppression list (addresses never to mail).
 *
 * File format read: either a CSV whose header has an "email" column (any
 * case; other columns ignored, so bounce/unsubscribe logs with extra columns
 * work), or one address per line (blank lines and lines starting with '#'
 * ignored). UTF-8. Addresses are normalised with addr_parse() and stored by
 * their comparison key; unparsable lines are counted and skipped (they could
 * never match a valid recipient anyway).
 */
#ifndef EDM_SUPPRESS_H
#define EDM_SUPPRESS_H

#include <stddef.h>
#include <time.h>

struct strset;

/* The header suppress_append() writes: an "email" column, so
 * suppress_load() reads the file back as a CSV. */
#define SUPPRESS_LOG_HEADER "email,reason,time,campaign"

/*
 * Add every address of 'path' to 'set' (keys as addr_parse() makes them).
 * A missing file is an error (-1, "path: No such file..." in err): the
 * config named it, so its absence is a mistake. Returns the number of
 * addresses added, or -1. *skipped (may be NULL) gets the unparsable count.
 */
long suppress_load(struct strset *set, const char *path, size_t *skipped,
                   char *err, size_t errlen);

/*
 * Append an address to the suppression file at 'path', so addresses that
 * bounced hard or complained are never mailed again: suppress_load() reads
 * it back.
 * A new or empty file (or one of blank and '#' lines only) gets the header
 * SUPPRESS_LOG_HEADER and the row "email,reason,time,campaign" (time as UTC
 * ISO 8601, "2026-11-22T08:15:00Z"; empty for 0). An existing file keeps
 * its format, detected as suppress_load() detects it: a CSV with an email
 * column gets a row with as many fields as its header, the email in that
 * column and reason/time/campaign in columns of those names (any case) if
 * it has them, the rest empty; a plain list gets the address alone. A last
 * line without a line end gets one first.
 * The file is opened O_RDWR|O_APPEND|O_CREAT (mode 0600 when created; read
 * access is for the format check) and locked with flock(LOCK_EX) while
 * the row is written, so concurrent edm runs never interleave rows; one
 * write(2) per row, then fsync. Fields are RFC 4180-quoted when needed and
 * CR/LF become spaces; there is no spreadsheet formula guard here, as edm
 * reads this file back and a leading ' would spoil the address. reason and
 * campaign may be NULL (empty fields). 0, or -1 with err naming the path.
 */
int suppress_append(const char *path, const char *email, const char *reason,
                    time_t when, const char *campaign, char *err,
                    size_t errlen);

/*
 * A suppression file followed while a campaign runs (`edm track` and
 * `edm ingest` append to it): suppress_watch_poll() adds the addresses of
 * the complete lines appended since the last poll to 'set', reading the
 * file the way suppress_load() does (format decided by its first line).
 * The first poll reads the whole file and fails (-1) when it is missing;
 * later polls treat a missing file as unchanged. A file that shrank or was
 * replaced (other inode) is read again from the start. Returns the number
 * of addresses new to the set, or -1 with err.
 */
struct suppress_watch;
struct suppress_watch *suppress_watch_new(const char *path);
long suppress_watch_poll(struct suppress_watch *w, struct strset *set,
                         char *err, size_t errlen);
void suppress_watch_free(struct suppress_watch *w);

#endif
