/*
 * classify.c - what an SMTP reply means: delivered / soft / hard, a bounce
 * category, and the "slow down" and greylisting signals (classify.h).
 *
 * Order of decision for one reply (docs/bounces.md has the full story):
 *   1. 2xx is delivered, category none: no rule is consulted (a 250 whose
 *      text says "spam" is still an accepted message, RFC 5321 4.2.1).
 *   2. The rules, matched against "CODE ENHANCED TEXT": the user's file
 *      first, then the shipped data/bounce_rules.txt (compiled in as
 *      edm_data_bounce_rules by scripts/embed.py); first match wins.
 *   3. The RFC 3463 enhanced code (class.subject.detail) by a table.
 *   4. The reply code: 4xx soft, 5xx hard, code 0 (no reply) soft, with
 *      the few codes that say what went wrong (50x syntax, 53x AUTH).
 * In steps 3 and 4, and for "keep" rules, the class follows the reply code
 * (not the enhanced code's class digit), except "too many recipients",
 * always soft (RFC 5321 4.5.3.1.10); with no reply code (0) a 5.x.x
 * enhanced code is hard: the session's local "not sent" verdicts.
 *
 * Contract: patterns are compiled once, JIT-compiled when the platform has
 * a JIT (silently interpreted otherwise). A classifier is read-only after
 * classify_new(): classify_reply() may run on many threads with the same
 * classifier, since every call makes its own PCRE2 match data (one small
 * allocation) and the shared match context is never modified. A match
 * that hits the match limit counts as no match for that rule.
 * Patterns match bytes: a non-ASCII literal matches its UTF-8 bytes, and
 * case-insensitivity is for ASCII letters.
 *
 * classify_reply() with a NULL classifier answers from the fallbacks
 * alone (steps 1, 3 and 4).
 *
 * What it does not do: parse multi-line replies (the session joins them),
 * look at DSNs (RFC 3464) or decide retries and suppression; the scheduler
 * (engine/scheduler.c) turns the verdict into an action.
 */
#include "classify.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* The shipped rules, generated from data/bounce_rules.txt (lists/data.h
 * declares the other data lists; this one is only read here). */
extern const char edm_data_bounce_rules[];

/* The name shipped rules report in "file:line". */
#define CLASSIFY_SHIPPED_NAME "bounce_rules.txt"
/* A rule's class that follows the reply code: 5xx hard, else soft. */
#define CLASSIFY_KEEP (-1)
#define CLASSIFY_F_SLOWDOWN 1u
#define CLASSIFY_F_GREYLIST 2u
#define CLASSIFY_F_QUOTA 4u
/* PCRE2 match limit per rule: far above what the shipped rules need on a
 * 64 KiB reply (the session's cap), low enough that a user's pattern with
 * nested quantifiers cannot stall the sender (PCRE2's default is 10^7). */
#define CLASSIFY_MATCH_LIMIT 1000000
/* "CODE ENHANCED TEXT" is built on the stack up to this size (replies are
 * rarely over a few hundred bytes); longer ones are allocated. */
#define CLASSIFY_SUBJECT_STACK 1024
/* Longest field name in a rule line (categories are at most 21 bytes). */
#define CLASSIFY_FIELD_MAX 32

struct classify_rule {
	pcre2_code *re;
	char *where;                  /* "file:line" */
	enum bounce_category category;
	int cls;                      /* enum bounce_class or CLASSIFY_KEEP */
	unsigned flags;               /* CLASSIFY_F_* */
};

struct classifier {
	struct classify_rule *rules;
	size_t n, cap;
	pcre2_match_context *mctx;
};

/* Indexed by enum bounce_category. */
static const char *const category_names[CAT_COUNT] = {
	[CAT_NONE] = "",
	[CAT_BAD_MAILBOX] = "bad-mailbox",
	[CAT_INACTIVE_MAILBOX] = "inactive-mailbox",
	[CAT_BAD_DOMAIN] = "bad-domain",
	[CAT_QUOTA_ISSUES] = "quota-issues",
	[CAT_SPAM_RELATED] = "spam-related",
	[CAT_VIRUS_RELATED] = "virus-related",
	[CAT_CONTENT_RELATED] = "content-related",
	[CAT_MESSAGE_TOO_LARGE] = "message-too-large",
	[CAT_POLICY_RELATED] = "policy-related",
	[CAT_SENDER_AUTHENTICATION] = "sender-authentication",
	[CAT_RATE_LIMITED] = "rate-limited",
	[CAT_INVALID_SENDER] = "invalid-sender",
	[CAT_RELAYING_ISSUES] = "relaying-issues",
	[CAT_ROUTING_ERRORS] = "routing-errors",
	[CAT_BAD_CONNECTION] = "bad-connection",
	[CAT_NO_ANSWER_FROM_HOST] = "no-answer-from-host",
	[CAT_PROTOCOL_ERRORS] = "protocol-errors",
	[CAT_BAD_CONFIGURATION] = "bad-configuration",
	[CAT_MESSAGE_EXPIRED] = "message-expired",
	[CAT_OTHER] = "other",
};

static const char *const class_names[] = {
	[BOUNCE_DELIVERED] = "delivered",
	[BOUNCE_SOFT] = "soft",
	[BOUNCE_HARD] = "hard",
};

/*
 * RFC 3463 / RFC 5248 (IANA registry) enhanced codes: subject.detail ->
 * category. detail -1 is the subject's default. 'soft' forces the class
 * soft whatever the reply code. Subjects not listed fall through to the
 * reply code.
 */
struct enhanced_entry {
	int subject, detail;
	enum bounce_category category;
	int soft;
	unsigned flags;
};

static const struct enhanced_entry enhanced_table[] = {
	/* 1 addressing */
	{ 1, 1, CAT_BAD_MAILBOX, 0, 0 },        /* bad destination mailbox */
	{ 1, 2, CAT_BAD_DOMAIN, 0, 0 },         /* bad destination system */
	{ 1, 3, CAT_BAD_MAILBOX, 0, 0 },        /* bad mailbox syntax */
	{ 1, 6, CAT_BAD_MAILBOX, 0, 0 },        /* moved, no forwarding */
	{ 1, 7, CAT_INVALID_SENDER, 0, 0 },     /* bad sender mailbox syntax */
	{ 1, 8, CAT_INVALID_SENDER, 0, 0 },     /* bad sender's system */
	{ 1, 10, CAT_BAD_DOMAIN, 0, 0 },        /* null MX (RFC 7505) */
	/* x.1.0 and x.1.4 stay "other": servers use 5.1.0 for sender
	 * refusals too, and a wrong bad-mailbox suppresses a good address. */
	{ 1, -1, CAT_OTHER, 0, 0 },
	/* 2 mailbox */
	{ 2, 1, CAT_INACTIVE_MAILBOX, 0, 0 },   /* disabled */
	{ 2, 2, CAT_QUOTA_ISSUES, 0, 0 },       /* full */
	{ 2, 3, CAT_MESSAGE_TOO_LARGE, 0, 0 },  /* over the length limit */
	{ 2, -1, CAT_OTHER, 0, 0 },
	/* 3 mail system */
	{ 3, 1, CAT_QUOTA_ISSUES, 0, 0 },       /* mail system full */
	{ 3, 2, CAT_BAD_CONNECTION, 0, 0 },     /* not accepting messages */
	{ 3, 3, CAT_PROTOCOL_ERRORS, 0, 0 },    /* feature not supported */
	{ 3, 4, CAT_MESSAGE_TOO_LARGE, 0, 0 },  /* message too big */
	{ 3, 5, CAT_ROUTING_ERRORS, 0, 0 },     /* misconfigured ("loops
	                                           back to myself") */
	{ 3, -1, CAT_OTHER, 0, 0 },
	/* 4 network and routing */
	{ 4, 1, CAT_NO_ANSWER_FROM_HOST, 0, 0 },
	{ 4, 2, CAT_BAD_CONNECTION, 0, 0 },
	{ 4, 5, CAT_RATE_LIMITED, 0, CLASSIFY_F_SLOWDOWN }, /* congestion */
	{ 4, 7, CAT_MESSAGE_EXPIRED, 0, 0 },
	{ 4, -1, CAT_ROUTING_ERRORS, 0, 0 },    /* x.4.0, 3, 4, 6: DNS,
	                                           routes, loops */
	/* 5 protocol; x.5.3 too many recipients is a throttle, soft even on
	 * 552 (RFC 5321 4.5.3.1.10) */
	{ 5, 3, CAT_RATE_LIMITED, 1, 0 },
	{ 5, -1, CAT_PROTOCOL_ERRORS, 0, 0 },
	/* 6 content */
	{ 6, -1, CAT_CONTENT_RELATED, 0, 0 },
	/* 7 security and policy */
	{ 7, 4, CAT_BAD_CONFIGURATION, 0, 0 },  /* security not supported */
	{ 7, 5, CAT_BAD_CONFIGURATION, 0, 0 },  /* cryptographic failure */
	{ 7, 6, CAT_BAD_CONFIGURATION, 0, 0 },  /* algorithm not supported */
	{ 7, 7, CAT_CONTENT_RELATED, 0, 0 },    /* integrity failure */
	{ 7, 8, CAT_BAD_CONFIGURATION, 0, 0 },  /* AUTH credentials invalid */
	{ 7, 9, CAT_BAD_CONFIGURATION, 0, 0 },  /* AUTH mechanism too weak */
	{ 7, 10, CAT_BAD_CONFIGURATION, 0, 0 }, /* encryption needed */
	{ 7, 11, CAT_BAD_CONFIGURATION, 0, 0 }, /* encryption required */
	{ 7, 12, CAT_BAD_CONFIGURATION, 0, 0 }, /* password transition */
	{ 7, 13, CAT_BAD_CONFIGURATION, 0, 0 }, /* our AUTH account disabled */
	{ 7, 14, CAT_BAD_CONFIGURATION, 0, 0 }, /* trust relationship */
	{ 7, 16, CAT_MESSAGE_TOO_LARGE, 0, 0 }, /* too big for priority */
	{ 7, 17, CAT_BAD_MAILBOX, 0, 0 },       /* owner changed (RFC 7293) */
	{ 7, 18, CAT_BAD_DOMAIN, 0, 0 },        /* domain owner changed */
	{ 7, 19, CAT_OTHER, 0, 0 },             /* RRVS not completed */
	{ 7, 20, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* no passing DKIM */
	{ 7, 21, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* no acceptable DKIM */
	{ 7, 22, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* no author DKIM */
	{ 7, 23, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* SPF failed */
	{ 7, 24, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* SPF error */
	{ 7, 25, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* reverse DNS */
	{ 7, 26, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* several checks */
	{ 7, 27, CAT_INVALID_SENDER, 0, 0 },    /* sender has null MX */
	{ 7, 28, CAT_RATE_LIMITED, 0, CLASSIFY_F_SLOWDOWN }, /* mail flood */
	{ 7, 29, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* ARC failed */
	{ 7, 30, CAT_BAD_CONFIGURATION, 0, 0 }, /* REQUIRETLS needed */
	{ 7, 509, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* Microsoft: DMARC */
	{ 7, 515, CAT_SENDER_AUTHENTICATION, 0, 0 }, /* Microsoft: auth level */
	{ 7, -1, CAT_POLICY_RELATED, 0, 0 },    /* x.7.0-3, 15: refused */
};

const char *bounce_category_name(enum bounce_category cat)
{
	if ((int)cat < 0 || cat >= CAT_COUNT)
		return "unknown";
	return category_names[cat];
}

const char *bounce_class_name(enum bounce_class cls)
{
	if ((int)cls < 0 || cls > BOUNCE_HARD)
		return "unknown";
	return class_names[cls];
}

/* "" and "none" are CAT_NONE; names are case-insensitive. */
int bounce_category_parse(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcasecmp(name, "none") == 0)
		return CAT_NONE;
	for (int i = 0; i < CAT_COUNT; i++)
		if (strcasecmp(name, category_names[i]) == 0)
			return i;
	return -1;
}

int bounce_category_suppresses(enum bounce_category cat)
{
	return cat == CAT_BAD_MAILBOX || cat == CAT_INACTIVE_MAILBOX ||
	       cat == CAT_BAD_DOMAIN;
}

static int classify_is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
	       ch == '\v' || ch == '\f';
}

/* Next whitespace-separated field of p[0..*len): its start and length, and
 * p/len advanced past it. 0 when there is none. */
static int classify_field(const char **p, size_t *len, const char **f,
                          size_t *flen)
{
	while (*len > 0 && classify_is_blank(**p)) {
		(*p)++;
		(*len)--;
	}
	if (*len == 0)
		return 0;
	*f = *p;
	while (*len > 0 && !classify_is_blank(**p)) {
		(*p)++;
		(*len)--;
	}
	*flen = (size_t)(*p - *f);
	return 1;
}

/* Copy a field into out[CLASSIFY_FIELD_MAX] for messages and lookups
 * (truncated: a longer field is unknown anyway). */
static const char *classify_field_str(const char *f, size_t flen,
                                      char out[CLASSIFY_FIELD_MAX])
{
	if (flen >= CLASSIFY_FIELD_MAX)
		flen = CLASSIFY_FIELD_MAX - 1;
	memcpy(out, f, flen);
	out[flen] = '\0';
	return out;
}

/* Parse the flags field: "-" or a comma-separated list of slowdown,
 * greylist and quota. 0, or -1 with the unknown word in bad. */
static int classify_parse_flags(const char *f, size_t flen, unsigned *flags,
                                char bad[CLASSIFY_FIELD_MAX])
{
	const char *end = f + flen, *comma;
	size_t n;

	*flags = 0;
	if (flen == 1 && f[0] == '-')
		return 0;
	while (f <= end) {
		comma = memchr(f, ',', (size_t)(end - f));
		n = comma != NULL ? (size_t)(comma - f) : (size_t)(end - f);
		if (n == 8 && strncasecmp(f, "slowdown", 8) == 0) {
			*flags |= CLASSIFY_F_SLOWDOWN;
		} else if (n == 8 && strncasecmp(f, "greylist", 8) == 0) {
			*flags |= CLASSIFY_F_GREYLIST;
		} else if (n == 5 && strncasecmp(f, "quota", 5) == 0) {
			*flags |= CLASSIFY_F_QUOTA;
		} else {
			classify_field_str(f, n, bad);
			return -1;
		}
		if (comma == NULL)
			break;
		f = comma + 1;
	}
	return 0;
}

/* Append a rule slot; NULL on ENOMEM. */
static struct classify_rule *classify_rule_add(struct classifier *c)
{
	struct classify_rule *r;
	size_t cap;

	if (c->n == c->cap) {
		cap = c->cap != 0 ? c->cap * 2 : 64;
		r = realloc(c->rules, cap * sizeof(*r));
		if (r == NULL)
			return NULL;
		c->rules = r;
		c->cap = cap;
	}
	r = &c->rules[c->n];
	memset(r, 0, sizeof(*r));
	return r;
}

/*
 * Parse and compile one non-blank, non-comment rule line (without its
 * line end): "CATEGORY CLASS FLAGS PATTERN". 0, or -1 with
 * "file:line: what" in err.
 */
static int classify_parse_rule(struct classifier *c, const char *line,
                               size_t len, const char *file,
                               unsigned lineno, char *err, size_t errlen)
{
	char name[CLASSIFY_FIELD_MAX], msg[256];
	const char *f[3], *pat;
	size_t flen[3], patlen;
	struct classify_rule *r;
	PCRE2_SIZE erroff;
	unsigned flags;
	int cat, cls, errcode, i;

	for (i = 0; i < 3; i++)
		if (!classify_field(&line, &len, &f[i], &flen[i]))
			return edm_errf(err, errlen,
			                "%s:%u: expected CATEGORY CLASS FLAGS PATTERN, "
			                "the line ends after %d field%s",
			                file, lineno, i, i == 1 ? "" : "s");
	while (len > 0 && classify_is_blank(*line)) {
		line++;
		len--;
	}
	while (len > 0 && classify_is_blank(line[len - 1]))
		len--;
	pat = line;
	patlen = len;
	if (patlen == 0)
		return edm_errf(err, errlen, "%s:%u: expected a PATTERN after "
		                "CATEGORY CLASS FLAGS", file, lineno);

	cat = bounce_category_parse(classify_field_str(f[0], flen[0], name));
	if (cat < 0 || flen[0] >= CLASSIFY_FIELD_MAX)
		return edm_errf(err, errlen,
		                "%s:%u: unknown category '%s' (docs/bounces.md "
		                "lists them: bad-mailbox, inactive-mailbox, "
		                "bad-domain, quota-issues, spam-related, ...)",
		                file, lineno, name);
	classify_field_str(f[1], flen[1], name);
	if (strcasecmp(name, "soft") == 0)
		cls = BOUNCE_SOFT;
	else if (strcasecmp(name, "hard") == 0)
		cls = BOUNCE_HARD;
	else if (strcasecmp(name, "delivered") == 0)
		cls = BOUNCE_DELIVERED;
	else if (strcasecmp(name, "keep") == 0)
		cls = CLASSIFY_KEEP;
	else
		return edm_errf(err, errlen, "%s:%u: unknown class '%s' "
		                "(expected soft, hard, delivered or keep)",
		                file, lineno, name);
	if (classify_parse_flags(f[2], flen[2], &flags, name) < 0)
		return edm_errf(err, errlen, "%s:%u: unknown flag '%s' "
		                "(expected slowdown, greylist, quota, several "
		                "joined by commas, or -)", file, lineno, name);
	if ((cat == CAT_NONE) != (cls == BOUNCE_DELIVERED))
		return edm_errf(err, errlen, "%s:%u: category none goes with "
		                "class delivered, and only with it", file, lineno);
	if ((flags & CLASSIFY_F_GREYLIST) && cls != BOUNCE_SOFT)
		return edm_errf(err, errlen, "%s:%u: the greylist flag needs "
		                "class soft (greylisting asks for a retry)",
		                file, lineno);

	if ((r = classify_rule_add(c)) == NULL)
		return edm_errf(err, errlen, "%s:%u: out of memory", file, lineno);
	r->re = pcre2_compile((PCRE2_SPTR)pat, patlen, PCRE2_CASELESS,
	                      &errcode, &erroff, NULL);
	if (r->re == NULL) {
		if (pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg,
		                            sizeof(msg)) < 0)
			snprintf(msg, sizeof(msg), "error %d", errcode);
		return edm_errf(err, errlen, "%s:%u: bad pattern at offset %zu: %s",
		                file, lineno, (size_t)erroff, msg);
	}
	/* Without a JIT (some platforms, or SELinux forbidding executable
	 * memory) pcre2_match interprets the pattern: slower, same result. */
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
	if (asprintf(&r->where, "%s:%u", file, lineno) < 0) {
		pcre2_code_free(r->re);
		return edm_errf(err, errlen, "%s:%u: out of memory", file, lineno);
	}
	r->category = (enum bounce_category)cat;
	r->cls = cls;
	r->flags = flags;
	c->n++;
	return 0;
}

/* Handle one line of a rules file (any line end already cut): skip blank
 * and '#' lines, parse the rest. 0 or -1 with err. */
static int classify_line(struct classifier *c, const char *line, size_t len,
                         const char *file, unsigned lineno, char *err,
                         size_t errlen)
{
	size_t i = 0;

	while (i < len && classify_is_blank(line[i]))
		i++;
	if (i == len || line[i] == '#')
		return 0;
	return classify_parse_rule(c, line + i, len - i, file, lineno, err,
	                           errlen);
}

/* Load rules from a NUL-terminated text (the embedded file). */
static int classify_load_text(struct classifier *c, const char *text,
                              const char *name, char *err, size_t errlen)
{
	const char *nl;
	unsigned lineno = 0;
	size_t len;

	while (*text != '\0') {
		lineno++;
		nl = strchr(text, '\n');
		len = nl != NULL ? (size_t)(nl - text) : strlen(text);
		if (classify_line(c, text, len, name, lineno, err, errlen) < 0)
			return -1;
		text += len + (nl != NULL);
	}
	return 0;
}

/* Load rules from a file; a UTF-8 BOM at its start is skipped. */
static int classify_load_file(struct classifier *c, const char *path,
                              char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	FILE *fp;
	int rc = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return edm_errf(err, errlen, "%s: cannot open the bounce rules: %s",
		                path, strerror(errno));
	while ((n = getline(&line, &cap, fp)) >= 0) {
		const char *s = line;

		lineno++;
		if (lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
		if (n > 0 && s[n - 1] == '\n')
			n--;
		if ((rc = classify_line(c, s, (size_t)n, path, lineno, err,
		                        errlen)) < 0)
			break;
	}
	if (rc == 0 && ferror(fp))
		rc = edm_errf(err, errlen, "%s: cannot read the bounce rules: %s",
		              path, strerror(errno));
	free(line);
	fclose(fp);
	return rc;
}

struct classifier *classify_new(const char *user_rules, char *err,
                                size_t errlen)
{
	struct classifier *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	if ((c->mctx = pcre2_match_context_create(NULL)) == NULL) {
		edm_errf(err, errlen, "out of memory");
		goto fail;
	}
	pcre2_set_match_limit(c->mctx, CLASSIFY_MATCH_LIMIT);
	if (user_rules != NULL &&
	    classify_load_file(c, user_rules, err, errlen) < 0)
		goto fail;
	if (classify_load_text(c, edm_data_bounce_rules, CLASSIFY_SHIPPED_NAME,
	                       err, errlen) < 0)
		goto fail;
	return c;

fail:
	classify_free(c);
	return NULL;
}

void classify_free(struct classifier *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		pcre2_code_free(c->rules[i].re);
		free(c->rules[i].where);
	}
	free(c->rules);
	pcre2_match_context_free(c->mctx);
	free(c);
}

/* The class a reply code means by itself: 2xx delivered, 5xx hard, the
 * rest (4xx, 0 = no reply, nonsense codes) soft, so it is retried. */
static enum bounce_class classify_code_class(int code)
{
	if (code >= 200 && code <= 299)
		return BOUNCE_DELIVERED;
	if (code >= 500 && code <= 599)
		return BOUNCE_HARD;
	return BOUNCE_SOFT;
}

/* Parse 1-3 digits at *p into *v, advancing *p. 0 or -1. */
static int classify_digits(const char **p, int *v)
{
	int n = 0;

	*v = 0;
	while (**p >= '0' && **p <= '9' && n < 3) {
		*v = *v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n > 0 && !(**p >= '0' && **p <= '9') ? 0 : -1;
}

/* Parse an enhanced code "C.SSS.DDD" (RFC 3463: class 2, 4 or 5, subject
 * and detail of 1 to 3 digits), the whole string. 0 or -1. */
static int classify_enhanced_parse(const char *s, int *subject, int *detail)
{
	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return -1;
	if (s[1] != '.')
		return -1;
	s += 2;
	if (classify_digits(&s, subject) < 0 || *s != '.')
		return -1;
	s++;
	if (classify_digits(&s, detail) < 0 || *s != '\0')
		return -1;
	return 0;
}

/* The class of the reply itself, which "keep" rules and the enhanced
 * table follow: from the reply code; with no reply code (0), a valid
 * 5.x.x enhanced code is hard (edm's own "not sent" verdicts carry one),
 * anything else soft. */
static enum bounce_class classify_base_class(int code, const char *enhanced)
{
	int subject, detail;

	if (code == 0 && enhanced[0] == '5' &&
	    classify_enhanced_parse(enhanced, &subject, &detail) == 0)
		return BOUNCE_HARD;
	return classify_code_class(code);
}

/* Step 3: the enhanced-code table. 1 when it decided. */
static int classify_by_enhanced(int code, const char *enhanced,
                                struct classify_result *out)
{
	const struct enhanced_entry *e, *def = NULL;
	int subject, detail;
	size_t i;

	if (classify_enhanced_parse(enhanced, &subject, &detail) < 0)
		return 0;
	for (i = 0; i < sizeof(enhanced_table) / sizeof(*enhanced_table); i++) {
		e = &enhanced_table[i];
		if (e->subject != subject)
			continue;
		if (e->detail == detail) {
			def = e;
			break;
		}
		if (e->detail == -1)
			def = e;
	}
	if (def == NULL)
		return 0;
	out->cls = def->soft ? BOUNCE_SOFT : classify_base_class(code, enhanced);
	out->category = def->category;
	out->slowdown = (def->flags & CLASSIFY_F_SLOWDOWN) != 0;
	out->greylist = 0;
	out->quota = 0;
	out->rule = "enhanced-code";
	return 1;
}

/* Step 4: the reply code alone (RFC 5321 4.2.2 and RFC 4954 6 for the
 * codes that name a cause). */
static void classify_by_code(int code, const char *enhanced,
                             struct classify_result *out)
{
	out->cls = classify_base_class(code, enhanced);
	out->rule = "reply-code";
	if (code == 0)
		out->category = CAT_OTHER;
	else if (code < 200 || (code >= 300 && code <= 399) || code > 599)
		out->category = CAT_PROTOCOL_ERRORS; /* not a final reply */
	else if ((code >= 500 && code <= 504) || code == 555)
		out->category = CAT_PROTOCOL_ERRORS; /* syntax, sequence */
	else if (code == 530 || code == 534 || code == 535 || code == 538)
		out->category = CAT_BAD_CONFIGURATION; /* AUTH / TLS (RFC 4954) */
	else
		out->category = CAT_OTHER;
}

/* Step 2: the rules, in order. 1 when one matched. */
static int classify_by_rules(const struct classifier *c, int code,
                             const char *enhanced, const char *text,
                             struct classify_result *out)
{
	char stack[CLASSIFY_SUBJECT_STACK], *subject = stack;
	pcre2_match_data *md;
	const struct classify_rule *r = NULL;
	int len, found = 0;
	size_t i;

	if (c == NULL || c->n == 0)
		return 0;
	len = snprintf(stack, sizeof(stack), "%d %s %s", code, enhanced, text);
	if (len < 0)
		return 0;
	if ((size_t)len >= sizeof(stack)) {
		if ((subject = malloc((size_t)len + 1)) == NULL)
			return 0; /* out of memory: the fallbacks still answer */
		snprintf(subject, (size_t)len + 1, "%d %s %s", code, enhanced,
		         text);
	}
	/* One pair is enough: only "did it match" matters (a pattern with
	 * groups then returns 0, which is still a match). */
	if ((md = pcre2_match_data_create(1, NULL)) == NULL)
		goto out;
	for (i = 0; i < c->n; i++) {
		r = &c->rules[i];
		if (pcre2_match(r->re, (PCRE2_SPTR)subject, (PCRE2_SIZE)len, 0, 0,
		                md, c->mctx) >= 0) {
			found = 1;
			break;
		}
	}
	pcre2_match_data_free(md);
	if (found) {
		out->cls = r->cls == CLASSIFY_KEEP
		           ? classify_base_class(code, enhanced)
		           : (enum bounce_class)r->cls;
		out->category = r->category;
		out->slowdown = (r->flags & CLASSIFY_F_SLOWDOWN) != 0;
		out->greylist = (r->flags & CLASSIFY_F_GREYLIST) != 0;
		out->quota = (r->flags & CLASSIFY_F_QUOTA) != 0;
		out->rule = r->where;
	}
out:
	if (subject != stack)
		free(subject);
	return found;
}

void classify_reply(const struct classifier *c, int code,
                    const char *enhanced, const char *text,
                    struct classify_result *out)
{
	memset(out, 0, sizeof(*out));
	if (enhanced == NULL)
		enhanced = "";
	if (text == NULL)
		text = "";
	if (code >= 200 && code <= 299) {
		out->cls = BOUNCE_DELIVERED;
		out->category = CAT_NONE;
		out->rule = "reply-code";
		return;
	}
	if (classify_by_rules(c, code, enhanced, text, out))
		return;
	if (classify_by_enhanced(code, enhanced, out))
		return;
	classify_by_code(code, enhanced, out);
}
