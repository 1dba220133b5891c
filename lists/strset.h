/*
 * strset.h - a set of byte strings (open addressing, arena-backed).
 *
 * Contract: the set copies every string it keeps into its own arena, so the
 * caller's buffers may be reused at once. Memory grows with the number of
 * distinct strings only (this is the one structure allowed to grow with the
 * list: the dedup set). Lookups are exact byte comparisons; callers
 * normalise (lowercase etc.) before adding. Strings may contain any byte.
 */
#ifndef EDM_STRSET_H
#define EDM_STRSET_H

#include <stddef.h>

struct strset;

/* New empty set; NULL on allocation failure. */
struct strset *strset_new(void);

/* Add s[len]. Returns 1 if it was new, 0 if already present, -1 on ENOMEM. */
int strset_add(struct strset *set, const char *s, size_t len);

/* 1 if s[len] is in the set, else 0. */
int strset_has(const struct strset *set, const char *s, size_t len);

/* Number of distinct strings held. */
size_t strset_count(const struct strset *set);

/* Free the set and its arena; NULL is a no-op. */
void strset_free(struct strset *set);

#endif
