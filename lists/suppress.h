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

struct strset;

/*
 * Add every address of 'path' to 'set' (keys as addr_parse() makes them).
 * A missing file is an error (-1, "path: No such file..." in err): the
 * config named it, so its absence is a mistake. Returns the number of
 * addresses added, or -1. *skipped (may be NULL) gets the unparsable count.
 */
long suppress_load(struct strset *set, const char *path, size_t *skipped,
                   char *err, size_t errlen);

#endif
