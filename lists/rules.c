/*
 * rules.c - disposable domains, role accounts and popular-domain typos.
 *
 * The three shipped lists (data/NAME.txt, compiled in as edm_data_* by
 * scripts/embed.py) are parsed once by rules_new() into hash sets; the
 * lookups then only hash and compare, and never allocate.
 *
 * Typo rule (rules_typo). A domain is split into a NAME and a TLD: the TLD
 * is the last label, or the last two labels when the domain has at least
 * three and the second-to-last is one of co/com/net/org/ac/gov/edu (so
 * yahoo.co.uk is name "yahoo", tld "co.uk"; gmail.co is "gmail" + "co").
 * This small rule stands in for the public-suffix list, which would be a
 * large data dependency for a heuristic. The input is compared with every
 * suggestion target of data/popular_domains.txt:
 *     cost = DL(name, target name) + DL(tld, target tld)
 * where DL is the optimal-string-alignment Damerau-Levenshtein distance
 * over bytes (insert, delete, substitute, swap two adjacent bytes). A
 * target matches when DL(tld) <= RULES_TLD_MAX and cost <= RULES_COST_SHORT
 * for a name of at most RULES_SHORT_NAME bytes (qq, 163, aol: one edit
 * reaches a lot of real domains), RULES_COST_LONG otherwise. The lowest
 * cost wins; a tie goes to the target listed first (most popular). Known
 * domains (every entry of popular_domains.txt) are never typos. Entry
 * prefixes in that file: none = full target, '~' = TLD-only target (the
 * name must match exactly), '=' = known only (see the file's header).
 *
 * It does not: resolve anything (a typo domain may well exist in DNS), know
 * the public-suffix list, or judge local parts beyond the role list.
 */
#include "rules.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "data.h"
#include "strset.h"

/* Names of at most 4 bytes (qq, 163, sina, aol) allow 1 edit in all: with
 * 2, "126" would reach "163" and two-letter names reach every other
 * two-letter domain. */
#define RULES_SHORT_NAME 4
#define RULES_COST_SHORT 1
/* Longer names allow 2 edits in all: covers one slip in the name plus one
 * in the TLD (gmial.con), the common cases in sign-up forms, while google
 * stays far from gmail. */
#define RULES_COST_LONG 2
/* A TLD may differ by one edit (con, cm, co for com); two would turn every
 * .de or .fr into a .com typo. */
#define RULES_TLD_MAX 1
/* Longest string the distance is computed for: a domain (RFC 1035). */
#define RULES_DL_MAX ADDR_DOMAIN_MAX

/* One suggestion target; the text points into edm_data_popular_domains. */
struct rules_target {
	const char *domain;
	size_t len;
	size_t name_len; /* domain[0 .. name_len) is the name */
	const char *tld;
	size_t tld_len;
	int tld_only;    /* '~' entry: the name must match exactly */
};

struct rules {
	struct strset *disposable;
	struct strset *role;
	struct strset *known;
	struct rules_target *targets;
	size_t ntargets;
};

static inline char rules_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline int rules_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Trim ASCII whitespace from both ends of s[*len]; returns the new start. */
static const char *rules_trim(const char *s, size_t *len)
{
	while (*len > 0 && rules_is_space(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && rules_is_space(s[*len - 1]))
		(*len)--;
	return s;
}

/* Next entry of an embedded list: advance *pos past one line and return it
 * trimmed in *entry and *len, skipping blank and '#' lines. 0 at the end. */
static int rules_entry_next(const char **pos, const char **entry,
                            size_t *len)
{
	const char *p = *pos, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		*len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		*entry = rules_trim(p, len);
		p += (nl != NULL) ? (size_t)(nl - p) + 1 : strlen(p);
		if (*len > 0 && (*entry)[0] != '#') {
			*pos = p;
			return 1;
		}
	}
	*pos = p;
	return 0;
}

/* Add every entry of an embedded list to 'set', lowercased, without its
 * '=' or '~' prefix. Entries longer than a domain cannot match a normalised
 * input and are skipped (the data is checked by tests/test_rules.c). -1 on
 * ENOMEM. */
static int rules_set_load(struct strset *set, const char *text)
{
	char buf[RULES_DL_MAX + 1];
	const char *e;
	size_t len, i;

	while (rules_entry_next(&text, &e, &len)) {
		if (e[0] == '=' || e[0] == '~') {
			e++;
			len--;
		}
		if (len == 0 || len > RULES_DL_MAX)
			continue;
		for (i = 0; i < len; i++)
			buf[i] = rules_lower(e[i]);
		if (strset_add(set, buf, len) < 0)
			return -1;
	}
	return 0;
}

/* Split a domain into name and TLD (see the file comment). -1 when it has
 * no dot, or an empty name or TLD. */
static int rules_split(const char *d, size_t len, size_t *name_len,
                       const char **tld, size_t *tld_len)
{
	static const char *const second_level[] = {
		"co", "com", "net", "org", "ac", "gov", "edu", NULL
	};
	const char *last = NULL, *prev = NULL, *label;
	size_t i, n;

	for (i = 0; i < len; i++) {
		if (d[i] == '.') {
			prev = last;
			last = d + i;
		}
	}
	if (last == NULL)
		return -1;
	*tld = last + 1;
	if (prev != NULL) {
		label = prev + 1;
		n = (size_t)(last - label);
		for (i = 0; second_level[i] != NULL; i++) {
			if (strlen(second_level[i]) == n &&
			    memcmp(second_level[i], label, n) == 0) {
				*tld = label;
				break;
			}
		}
	}
	*tld_len = len - (size_t)(*tld - d);
	*name_len = (size_t)(*tld - d) - 1;
	return (*name_len > 0 && *tld_len > 0) ? 0 : -1;
}

/* Parse popular_domains.txt: every entry into 'known', the ones without a
 * leading '=' into the targets array, in file order. -1 on ENOMEM. */
static int rules_targets_load(struct rules *r)
{
	const char *pos = edm_data_popular_domains, *e;
	struct rules_target *t;
	size_t len, n = 0;

	if (rules_set_load(r->known, edm_data_popular_domains) < 0)
		return -1;
	while (rules_entry_next(&pos, &e, &len))
		if (e[0] != '=')
			n++;
	r->targets = calloc(n > 0 ? n : 1, sizeof *r->targets);
	if (r->targets == NULL)
		return -1;
	pos = edm_data_popular_domains;
	while (rules_entry_next(&pos, &e, &len)) {
		if (e[0] == '=')
			continue;
		t = &r->targets[r->ntargets];
		t->tld_only = e[0] == '~';
		if (t->tld_only) {
			e++;
			len--;
		}
		if (len > RULES_DL_MAX ||
		    rules_split(e, len, &t->name_len, &t->tld, &t->tld_len) < 0)
			continue;
		t->domain = e;
		t->len = len;
		r->ntargets++;
	}
	return 0;
}

struct rules *rules_new(void)
{
	struct rules *r;

	r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->disposable = strset_new();
	r->role = strset_new();
	r->known = strset_new();
	if (r->disposable == NULL || r->role == NULL || r->known == NULL)
		goto fail;
	if (rules_set_load(r->disposable, edm_data_disposable_domains) < 0)
		goto fail;
	if (rules_set_load(r->role, edm_data_role_accounts) < 0)
		goto fail;
	if (rules_targets_load(r) < 0)
		goto fail;
	return r;

fail:
	rules_free(r);
	return NULL;
}

/* Read an operator's extra disposable list. '#' starts a comment anywhere
 * on a line ('#' cannot occur in a domain); a UTF-8 BOM on the first line
 * is skipped (files saved by Windows editors). Every domain goes through
 * addr_domain_normalise() so IDN entries match the punycode addr_parse()
 * produces. Stops at the first bad line. */
int rules_add_disposable_file(struct rules *r, const char *path,
                              char *err, size_t errlen)
{
	char dom[ADDR_DOMAIN_MAX + 1], detail[128];
	char *line = NULL, *hash;
	const char *s;
	size_t cap = 0, len, lineno = 0;
	ssize_t got;
	FILE *f;
	int rc = -1;

	f = fopen(path, "r");
	if (f == NULL) {
		edm_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = getline(&line, &cap, f)) != -1) {
		lineno++;
		s = line;
		len = (size_t)got;
		if (lineno == 1 && len >= 3 &&
		    memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			len -= 3;
		}
		hash = memchr(s, '#', len);
		if (hash != NULL)
			len = (size_t)(hash - s);
		s = rules_trim(s, &len);
		if (len == 0)
			continue;
		if (addr_domain_normalise(s, len, dom, sizeof dom, detail,
		                          sizeof detail) < 0) {
			edm_errf(err, errlen, "%s:%zu: %s", path, lineno,
			          detail);
			goto done;
		}
		if (strset_add(r->disposable, dom, strlen(dom)) < 0) {
			edm_errf(err, errlen, "%s:%zu: out of memory", path,
			          lineno);
			goto done;
		}
	}
	if (ferror(f)) {
		edm_errf(err, errlen, "%s:%zu: read error: %s", path,
		          lineno + 1, strerror(errno));
		goto done;
	}
	rc = 0;

done:
	free(line);
	fclose(f);
	return rc;
}

/* Check the domain, then each parent that still has a dot: a bare TLD is
 * never looked up, so a stray "com" in a list cannot match everything. */
int rules_is_disposable(const struct rules *r, const char *domain)
{
	const char *p = domain, *dot;
	size_t len = strlen(domain);

	while ((dot = memchr(p, '.', len)) != NULL) {
		if (strset_has(r->disposable, p, len))
			return 1;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	return 0;
}

/* The "+tag" of subaddressing (RFC 5233) is cut so sales+eu@ is sales@;
 * the compare is case-insensitive because role mailboxes are, in
 * practice, case-insensitive everywhere (RFC 5321 2.4 allows it). */
int rules_is_role(const struct rules *r, const char *local, size_t len)
{
	char buf[ADDR_LOCAL_MAX];
	size_t i;

	for (i = 0; i < len && local[i] != '+'; i++) {
		if (i == sizeof buf)
			return 0;
		buf[i] = rules_lower(local[i]);
	}
	if (i == 0)
		return 0;
	return strset_has(r->role, buf, i);
}

/* Optimal-string-alignment distance between a[la] and b[lb], computed only
 * as far as needed: returns limit + 1 as soon as the distance is known to
 * exceed 'limit'. Three rolling rows; a row's minimum never decreases from
 * one row to the next, so once it passes the limit the answer is known. */
static size_t rules_dl(const char *a, size_t la, const char *b, size_t lb,
                       size_t limit)
{
	size_t rows[3][RULES_DL_MAX + 1];
	size_t *pp = rows[0], *p = rows[1], *c = rows[2], *tmp;
	size_t i, j, v, rowmin;

	if ((la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	if (la > RULES_DL_MAX || lb > RULES_DL_MAX)
		return limit + 1;
	for (j = 0; j <= lb; j++)
		p[j] = j;
	for (i = 1; i <= la; i++) {
		c[0] = i;
		rowmin = i;
		for (j = 1; j <= lb; j++) {
			v = p[j - 1] + (a[i - 1] != b[j - 1]);
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < rowmin)
				rowmin = v;
		}
		if (rowmin > limit)
			return limit + 1;
		tmp = pp;
		pp = p;
		p = c;
		c = tmp;
	}
	return p[lb] > limit ? limit + 1 : p[lb];
}

int rules_typo(const struct rules *r, const char *domain, char *suggest,
               size_t n)
{
	const struct rules_target *t, *best = NULL;
	const char *tld;
	size_t len = strlen(domain), name_len, tld_len, i, limit, tmax, nmax;
	size_t dt, dn;
	size_t best_cost = (size_t)-1, copy;

	if (len == 0 || strset_has(r->known, domain, len))
		return 0;
	if (rules_split(domain, len, &name_len, &tld, &tld_len) < 0)
		return 0;
	for (i = 0; i < r->ntargets; i++) {
		t = &r->targets[i];
		limit = t->name_len <= RULES_SHORT_NAME ? RULES_COST_SHORT
		                                         : RULES_COST_LONG;
		/* Only a strictly cheaper match may replace the best so far:
		 * ties stay with the earlier, more popular target. */
		if (best != NULL) {
			if (best_cost == 0)
				break;
			if (best_cost - 1 < limit)
				limit = best_cost - 1;
		}
		tmax = limit < RULES_TLD_MAX ? limit : RULES_TLD_MAX;
		dt = rules_dl(tld, tld_len, t->tld, t->tld_len, tmax);
		if (dt > tmax)
			continue;
		nmax = t->tld_only ? 0 : limit - dt;
		dn = rules_dl(domain, name_len, t->domain, t->name_len, nmax);
		if (dn > nmax)
			continue;
		best = t;
		best_cost = dn + dt;
	}
	if (best == NULL)
		return 0;
	if (suggest != NULL && n > 0) {
		copy = best->len < n - 1 ? best->len : n - 1;
		memcpy(suggest, best->domain, copy);
		suggest[copy] = '\0';
	}
	return 1;
}

void rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	strset_free(r->disposable);
	strset_free(r->role);
	strset_free(r->known);
	free(r->targets);
	free(r);
}
