/*
 * classify.h - what an SMTP reply means: class (delivered/soft/hard) and
 * bounce category, by PCRE2 rules (the one module owning that policy).
 *
 * Rules are matched against the string "CODE ENHANCED TEXT" (e.g.
 * "550 5.1.1 The email account that you tried to reach does not exist"; an
 * absent enhanced code leaves a single space: "550  Mailbox not found").
 * The user's rules file (config) is consulted first, then the shipped
 * data/bounce_rules.txt; in each, rules in file order, first match wins;
 * when nothing matches, the fallback is the RFC 3463 enhanced code
 * (x.1.1 bad-mailbox, x.2.2 quota-issues, ...), then the reply code
 * (2xx delivered, 4xx soft/other, 5xx hard/other). Patterns are compiled
 * once (JIT when available). The rule file format is documented in
 * docs/bounces.md.
 * Contract: a classifier is read-only after creation (safe to share).
 */
#ifndef EDM_CLASSIFY_H
#define EDM_CLASSIFY_H

#include <stddef.h>

enum bounce_class {
	BOUNCE_DELIVERED = 0,
	BOUNCE_SOFT,
	BOUNCE_HARD,
};

/* edm's categories (PowerMTA's names + rate-limited, sender-authentication,
 * message-too-large), in docs/bounces.md. */
enum bounce_category {
	CAT_NONE = 0,            /* delivered */
	CAT_BAD_MAILBOX,
	CAT_INACTIVE_MAILBOX,
	CAT_BAD_DOMAIN,
	CAT_QUOTA_ISSUES,
	CAT_SPAM_RELATED,
	CAT_VIRUS_RELATED,
	CAT_CONTENT_RELATED,
	CAT_MESSAGE_TOO_LARGE,
	CAT_POLICY_RELATED,
	CAT_SENDER_AUTHENTICATION,
	CAT_RATE_LIMITED,
	CAT_INVALID_SENDER,
	CAT_RELAYING_ISSUES,
	CAT_ROUTING_ERRORS,
	CAT_BAD_CONNECTION,
	CAT_NO_ANSWER_FROM_HOST,
	CAT_PROTOCOL_ERRORS,
	CAT_BAD_CONFIGURATION,
	CAT_MESSAGE_EXPIRED,
	CAT_OTHER,
	CAT_COUNT
};

struct classify_result {
	enum bounce_class cls;
	enum bounce_category category;
	int slowdown;          /* a "slow down" signal (throttle the domain) */
	int greylist;          /* greylisting: retry after >= 5 min, no cut */
	int quota;             /* the sender's own sending quota is spent (a
	                          relay account's daily or 15-minute quota):
	                          in relay mode every domain must wait */
	const char *rule;      /* "file:line" of the matching rule, or
	                          "enhanced-code"/"reply-code" fallback */
};

struct classifier;

/* Compile the shipped rules, and the user's file first when user_rules is
 * not NULL. NULL with "file:line: what" in err. */
struct classifier *classify_new(const char *user_rules, char *err,
                                size_t errlen);

/* NULL is a no-op. */
void classify_free(struct classifier *c);

/* Classify a reply; enhanced may be NULL or "". code 0 (no reply) is soft,
 * category other unless a rule says more. */
void classify_reply(const struct classifier *c, int code,
                    const char *enhanced, const char *text,
                    struct classify_result *out);

/* "bad-mailbox", ...; "" for CAT_NONE. */
const char *bounce_category_name(enum bounce_category cat);
/* "delivered" / "soft" / "hard". */
const char *bounce_class_name(enum bounce_class cls);
/* Parse a category name: the category, or -1. */
int bounce_category_parse(const char *name);
/* 1 for the categories whose hard bounces go to the suppression file
 * (bad-mailbox, inactive-mailbox, bad-domain). */
int bounce_category_suppresses(enum bounce_category cat);

#endif
