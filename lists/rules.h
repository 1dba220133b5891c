/*
 * rules.h - list-cleaning rules that need data: disposable domains, role
 * accounts, and typos of popular mailbox domains (I/O-free except for
 * rules_add_disposable_file()).
 *
 * The shipped lists live in data/ (disposable_domains.txt, role_accounts.txt,
 * popular_domains.txt, documented in docs/config.md) and are compiled into
 * the binary, so edm needs no install-time data path.
 *
 * Contract: every function takes a domain already normalised by
 * addr_parse() (lowercase ASCII, punycode) and never allocates on lookup.
 */
#ifndef EDM_RULES_H
#define EDM_RULES_H

#include <stddef.h>

struct rules;

/* Load the built-in lists. NULL on allocation failure. */
struct rules *rules_new(void);

/*
 * Add the domains of a file (one per line; blank lines and '#' comments
 * ignored; IDN allowed) to the disposable list. Returns 0, or -1 with
 * "path:line: reason" in err ("path: reason" when it cannot be opened).
 * Stops at the first bad line; the lines before it stay added.
 */
int rules_add_disposable_file(struct rules *r, const char *path,
                              char *err, size_t errlen);

/* 1 when the domain or one of its parent domains is disposable. */
int rules_is_disposable(const struct rules *r, const char *domain);

/* 1 when the local part (case-insensitive, "+tag" ignored) is a role
 * account such as postmaster or info. */
int rules_is_role(const struct rules *r, const char *local, size_t len);

/*
 * 1 when 'domain' is not a known mailbox domain but is a likely typo of a
 * popular one (small Damerau-Levenshtein distance on the name and the TLD,
 * see rules.c for the exact limits); the popular domain is written to
 * suggest[n], NUL-terminated (truncated if n is too small; ADDR_DOMAIN_MAX
 * + 1 always suffices; suggest may be NULL when n is 0). 0 otherwise.
 */
int rules_typo(const struct rules *r, const char *domain,
               char *suggest, size_t n);

/* Free; NULL is a no-op. */
void rules_free(struct rules *r);

#endif
