/*
 * test_classify.c - the bounce classifier (engine/classify.h) and the
 * `edm classify` command (campaign/classify_cmd.h): the reply corpus of
 * tests/fixtures/classify/replies.tsv (every provider and category), the
 * rules file format and its errors, user rules before shipped ones, the
 * enhanced-code and reply-code fallbacks, the reply splitter, and the
 * command's CSV, exit codes and messages (stdout/stderr captured).
 * Fixtures: tests/fixtures/classify/.
 */
#include "cunit_main.h"

#include "classify.h"
#include "classify_cmd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define FIX EDM_FIXTURES "/classify/"
/* The shipped rules file in the source tree (rule line numbers are checked
 * against it). */
#define SHIPPED EDM_FIXTURES "/../../data/bounce_rules.txt"
/* The corpus must stay big enough to mean something. */
#define CORPUS_MIN 60
/* Lines of data/bounce_rules.txt the corpus check can track. */
#define RULE_LINES_MAX 1024

/* ---- helpers ---- */

/* Read a whole file into a NUL-terminated string (NULL on failure). */
static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *data = NULL;
	long n;

	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) != NULL) {
		if (fread(data, 1, (size_t)n, fp) != (size_t)n) {
			free(data);
			data = NULL;
		} else {
			data[n] = '\0';
		}
	}
	fclose(fp);
	return data;
}

/* Write text to a new temporary file; its path in path[64]. 0 or -1. */
static int write_tmp(char path[64], const char *text)
{
	int fd;
	size_t len = strlen(text);

	snprintf(path, 64, "/tmp/edm-test-classify-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Split and classify one reply as written by a server. */
static void classify_line(const struct classifier *c, const char *reply,
                          struct classify_result *r)
{
	char enhanced[CLASSIFY_ENHANCED_MAX];
	char *text;
	int code;

	text = classify_cmd_split(reply, &code, enhanced);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	classify_reply(c, code, enhanced, text, r);
	free(text);
}

static int flags_match(const struct classify_result *r, const char *flags)
{
	int slow = strstr(flags, "slowdown") != NULL;
	int grey = strstr(flags, "greylist") != NULL;
	int quota = strstr(flags, "quota") != NULL;

	return r->slowdown == slow && r->greylist == grey && r->quota == quota;
}

/* ---- names ---- */

static void test_category_names(void)
{
	for (int i = 0; i < CAT_COUNT; i++) {
		const char *name = bounce_category_name((enum bounce_category)i);

		check(bounce_category_parse(name) == i, __LINE__,
		      "category %d '%s' does not parse back", i, name);
		check(i == CAT_NONE || strlen(name) > 0, __LINE__,
		      "category %d has no name", i);
	}
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_NONE), "");
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_BAD_MAILBOX), "bad-mailbox");
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_RATE_LIMITED), "rate-limited");
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_SENDER_AUTHENTICATION),
	                       "sender-authentication");
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_OTHER), "other");
	CU_ASSERT_STRING_EQUAL(bounce_category_name(CAT_COUNT), "unknown");
	CU_ASSERT_EQUAL(bounce_category_parse("none"), CAT_NONE);
	CU_ASSERT_EQUAL(bounce_category_parse("Bad-Mailbox"), CAT_BAD_MAILBOX);
	CU_ASSERT_EQUAL(bounce_category_parse("NO-ANSWER-FROM-HOST"),
	                CAT_NO_ANSWER_FROM_HOST);
	CU_ASSERT_EQUAL(bounce_category_parse("bad_mailbox"), -1);
	CU_ASSERT_EQUAL(bounce_category_parse("bad-mailbox "), -1);
	CU_ASSERT_EQUAL(bounce_category_parse(NULL), -1);
}

static void test_class_names(void)
{
	CU_ASSERT_STRING_EQUAL(bounce_class_name(BOUNCE_DELIVERED), "delivered");
	CU_ASSERT_STRING_EQUAL(bounce_class_name(BOUNCE_SOFT), "soft");
	CU_ASSERT_STRING_EQUAL(bounce_class_name(BOUNCE_HARD), "hard");
	CU_ASSERT_STRING_EQUAL(bounce_class_name((enum bounce_class)7), "unknown");
}

static void test_suppresses(void)
{
	for (int i = 0; i < CAT_COUNT; i++) {
		int want = i == CAT_BAD_MAILBOX || i == CAT_INACTIVE_MAILBOX ||
		           i == CAT_BAD_DOMAIN;

		check(bounce_category_suppresses((enum bounce_category)i) == want,
		      __LINE__, "suppresses(%s) should be %d",
		      bounce_category_name((enum bounce_category)i), want);
	}
}

/* ---- the corpus ---- */

/* Every corpus row: class, category and flags as expected; the corpus is
 * big enough, covers every category and class, and has an example for
 * every shipped rule (so a rule nobody can explain does not stay). */
static void test_corpus(void)
{
	char *data = slurp(FIX "replies.tsv"), *line, *save = NULL;
	char *shipped = slurp(SHIPPED);
	int seen_cat[CAT_COUNT] = { 0 }, seen_cls[3] = { 0 };
	unsigned char used[RULE_LINES_MAX] = { 0 };
	unsigned long n;
	struct classify_result r;
	struct classifier *c;
	char err[512];
	size_t rows = 0, lineno = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	c = classify_new(NULL, err, sizeof(err));
	check(c != NULL, __LINE__, "shipped rules: %s", err);
	if (c == NULL) {
		free(data);
		return;
	}
	for (line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *p = line;
		int i, cat;

		lineno++; /* blank lines are skipped by strtok_r: count is for
		             messages only */
		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (i = 0; i < 3; i++) {
			f[i] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		check(i == 3, __LINE__, "replies.tsv row %zu: needs 4 fields", lineno);
		if (i != 3)
			continue;
		f[3] = p;
		classify_line(c, f[3], &r);
		cat = bounce_category_parse(f[1]);
		check(cat >= 0, __LINE__, "replies.tsv row %zu: bad category %s",
		      lineno, f[1]);
		check(strcmp(bounce_class_name(r.cls), f[0]) == 0 &&
		      (int)r.category == cat && flags_match(&r, f[2]), __LINE__,
		      "replies.tsv row %zu: want %s/%s/%s, got %s/%s/%s%s (rule %s): %s",
		      lineno, f[0], f[1], f[2], bounce_class_name(r.cls),
		      bounce_category_name(r.category),
		      r.slowdown ? "slowdown" : "-", r.greylist ? "+greylist" : "",
		      r.rule, f[3]);
		if (strncmp(r.rule, "bounce_rules.txt:", 17) == 0 &&
		    (n = strtoul(r.rule + 17, NULL, 10)) < RULE_LINES_MAX)
			used[n] = 1;
		if (cat >= 0)
			seen_cat[cat]++;
		seen_cls[r.cls]++;
		rows++;
	}
	check(rows >= CORPUS_MIN, __LINE__, "corpus has %zu replies, want >= %d",
	      rows, CORPUS_MIN);
	for (int i = 0; i < CAT_COUNT; i++)
		check(seen_cat[i] > 0, __LINE__, "corpus has no %s reply",
		      i == CAT_NONE ? "delivered" :
		      bounce_category_name((enum bounce_category)i));
	for (int i = 0; i < 3; i++)
		check(seen_cls[i] > 0, __LINE__, "corpus has no %s reply",
		      bounce_class_name((enum bounce_class)i));
	/* every shipped rule has an example in the corpus */
	CU_ASSERT_PTR_NOT_NULL_FATAL(shipped);
	n = 0;
	for (line = shipped; *line != '\0'; ) {
		char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);

		n++;
		if (len > 0 && line[0] != '#')
			check(n < RULE_LINES_MAX && used[n], __LINE__,
			      "bounce_rules.txt:%lu has no reply in replies.tsv: %.60s",
			      n, line);
		line += len + (nl != NULL);
	}
	classify_free(c);
	free(shipped);
	free(data);
}

/* A shipped rule reports "bounce_rules.txt:N", and line N of the file in
 * the source tree is that rule. */
static void test_shipped_rule_lines(void)
{
	static const struct {
		const char *reply, *in_rule;
	} cases[] = {
		{ "550-5.1.1 The email account that you tried to reach does not exist.",
		  "account that you tried to reach does not exist" },
		{ "550 Ip frequency limited", "frequency limited" },
		{ "421 HL:ICC too many connections", "HL:ICC" },
		{ "450 4.2.0 Greylisted, see http://postgrey.example/", "gr[ae]y" },
	};
	char *file = slurp(SHIPPED), err[512];
	struct classifier *c = classify_new(NULL, err, sizeof(err));
	struct classify_result r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(file);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *p = file;
		unsigned want, n;
		char *nl, line[1024];

		classify_line(c, cases[i].reply, &r);
		check(strncmp(r.rule, "bounce_rules.txt:", 17) == 0, __LINE__,
		      "case %zu: rule %s", i, r.rule);
		want = (unsigned)strtoul(r.rule + 17, NULL, 10);
		for (n = 1; n < want && p != NULL; n++)
			p = (nl = strchr(p, '\n')) != NULL ? nl + 1 : NULL;
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		snprintf(line, sizeof(line), "%.*s",
		         (int)(strchr(p, '\n') != NULL ? strchr(p, '\n') - p
		                                        : (long)strlen(p)), p);
		check(strstr(line, cases[i].in_rule) != NULL, __LINE__,
		      "case %zu: %s is '%s', expected it to hold '%s'", i, r.rule,
		      line, cases[i].in_rule);
	}
	classify_free(c);
	free(file);
}

/* ---- user rules ---- */

static void test_user_rules_first(void)
{
	char err[512];
	struct classifier *c = classify_new(FIX "user.rules", err, sizeof(err));
	struct classify_result r;

	check(c != NULL, __LINE__, "user.rules: %s", err);
	if (c == NULL)
		return;
	/* shipped: bad-mailbox; the user's rule wins */
	classify_line(c, "550 5.1.1 User unknown at relay.example", &r);
	CU_ASSERT_EQUAL(r.category, CAT_POLICY_RELATED);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_HARD);
	CU_ASSERT_STRING_EQUAL(r.rule, FIX "user.rules:6");
	/* the user's rule does not match: shipped rules still apply */
	classify_line(c, "550 5.1.1 User unknown", &r);
	CU_ASSERT_EQUAL(r.category, CAT_BAD_MAILBOX);
	CU_ASSERT_EQUAL(strncmp(r.rule, "bounce_rules.txt:", 17), 0);
	/* a 550 made soft with slowdown */
	classify_line(c, "550 5.7.1 Please come back in an hour", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_RATE_LIMITED);
	CU_ASSERT_EQUAL(r.slowdown, 1);
	CU_ASSERT_EQUAL(r.greylist, 0);
	CU_ASSERT_STRING_EQUAL(r.rule, FIX "user.rules:8");
	/* delivered */
	classify_line(c, "554 5.0.0 message queued anyway", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_DELIVERED);
	CU_ASSERT_EQUAL(r.category, CAT_NONE);
	/* keep follows the code: 4xx soft, 5xx hard, no reply soft */
	classify_line(c, "452 Mailbox nearly full", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_QUOTA_ISSUES);
	classify_line(c, "552 mailbox nearly full", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_HARD);
	CU_ASSERT_EQUAL(r.category, CAT_QUOTA_ISSUES);
	classify_reply(c, 0, NULL, "mailbox nearly full", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_QUOTA_ISSUES);
	/* both flags */
	classify_line(c, "451 slow greylist", &r);
	CU_ASSERT_EQUAL(r.slowdown, 1);
	CU_ASSERT_EQUAL(r.greylist, 1);
	classify_free(c);
}

static void test_user_rules_bom(void)
{
	char err[512];
	struct classifier *c = classify_new(FIX "bom.rules", err, sizeof(err));
	struct classify_result r;

	check(c != NULL, __LINE__, "bom.rules: %s", err);
	if (c == NULL)
		return;
	classify_line(c, "550 the bom rule works", &r);
	CU_ASSERT_EQUAL(r.category, CAT_SPAM_RELATED);
	CU_ASSERT_STRING_EQUAL(r.rule, FIX "bom.rules:2");
	classify_free(c);
}

/* A bad rules file: NULL, and "file:line: what" in err. */
static void test_bad_rules(void)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *what;
	} cases[] = {
		{ "# c\nbad-mailboxx keep - user unknown\n", 2,
		  "unknown category 'bad-mailboxx'" },
		{ "bad-mailbox maybe - user unknown\n", 1, "unknown class 'maybe'" },
		{ "\n\nbad-mailbox keep slow user unknown\n", 3, "unknown flag 'slow'" },
		{ "rate-limited soft slowdown,grey x\n", 1, "unknown flag 'grey'" },
		{ "rate-limited soft slowdown, x\n", 1, "unknown flag ''" },
		{ "bad-mailbox keep -\n", 1, "expected a PATTERN after" },
		{ "bad-mailbox keep -    \t \n", 1, "expected a PATTERN after" },
		{ "bad-mailbox\n", 1, "the line ends after 1 field" },
		{ "bad-mailbox keep - (user unknown\n", 1,
		  "bad pattern at offset 13: missing closing parenthesis" },
		{ "ok keep - x\n", 1, "unknown category 'ok'" },
		{ "none keep - x\n", 1, "category none goes with class delivered" },
		{ "other delivered - x\n", 1, "category none goes with class delivered" },
		{ "rate-limited hard greylist x\n", 1, "greylist flag needs class soft" },
		{ "rate-limited keep greylist x\n", 1, "greylist flag needs class soft" },
		{ "other keep - a{2,1}\n", 1, "bad pattern at offset" },
	};
	char path[64], err[512], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct classifier *c;

		CU_ASSERT_FATAL(write_tmp(path, cases[i].text) == 0);
		err[0] = '\0';
		c = classify_new(path, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:%u: ", path, cases[i].line);
		check(c == NULL && strncmp(err, want, strlen(want)) == 0 &&
		      strstr(err, cases[i].what) != NULL, __LINE__,
		      "case %zu: want '%s...%s', got '%s'", i, want,
		      cases[i].what, err);
		classify_free(c);
		unlink(path);
	}
}

static void test_bad_rules_fixture(void)
{
	char err[512];
	struct classifier *c = classify_new(FIX "bad.rules", err, sizeof(err));

	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, FIX "bad.rules:4: bad pattern at offset ") == err &&
	      strstr(err, "missing closing parenthesis") != NULL, __LINE__,
	      "got '%s'", err);
	classify_free(c);
}

static void test_missing_rules_file(void)
{
	char err[512];
	struct classifier *c = classify_new(FIX "no-such.rules", err, sizeof(err));

	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, FIX "no-such.rules: cannot open") == err &&
	      strstr(err, strerror(ENOENT)) != NULL, __LINE__, "got '%s'", err);
	/* a directory opens but cannot be read */
	c = classify_new(FIX, err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, "cannot read") != NULL, __LINE__, "got '%s'", err);
	/* err may be NULL */
	CU_ASSERT_PTR_NULL(classify_new(FIX "no-such.rules", NULL, 0));
}

/* Case-insensitive both ways: the reply's case and the pattern's. */
static void test_case_insensitive(void)
{
	static const char *const replies[] = {
		"550 5.1.1 USER UNKNOWN", "550 5.1.1 User Unknown",
		"550 5.1.1 user unknown", "550 uSeR uNkNoWn",
	};
	char err[512];
	struct classifier *c = classify_new(FIX "user.rules", err, sizeof(err));
	struct classify_result r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < sizeof(replies) / sizeof(*replies); i++) {
		classify_line(c, replies[i], &r);
		check(r.category == CAT_BAD_MAILBOX && r.cls == BOUNCE_HARD,
		      __LINE__, "%s: got %s", replies[i],
		      bounce_category_name(r.category));
	}
	/* user.rules writes MAILBOX NEARLY FULL in capitals */
	classify_line(c, "452 mailbox nearly full", &r);
	CU_ASSERT_EQUAL(r.category, CAT_QUOTA_ISSUES);
	/* NetEase codes in lower case too */
	classify_line(c, "421 hl:icc too many", &r);
	CU_ASSERT_EQUAL(r.category, CAT_RATE_LIMITED);
	CU_ASSERT_EQUAL(r.slowdown, 1);
	classify_free(c);
}

/* ---- fallbacks ---- */

static void test_enhanced_fallback(void)
{
	static const struct {
		int code;
		const char *enhanced;
		enum bounce_class cls;
		enum bounce_category cat;
		int slowdown;
		const char *rule;
	} cases[] = {
		{ 550, "5.1.1", BOUNCE_HARD, CAT_BAD_MAILBOX, 0, "enhanced-code" },
		{ 450, "4.1.1", BOUNCE_SOFT, CAT_BAD_MAILBOX, 0, "enhanced-code" },
		{ 550, "5.1.2", BOUNCE_HARD, CAT_BAD_DOMAIN, 0, "enhanced-code" },
		{ 550, "5.1.10", BOUNCE_HARD, CAT_BAD_DOMAIN, 0, "enhanced-code" },
		{ 550, "5.1.0", BOUNCE_HARD, CAT_OTHER, 0, "enhanced-code" },
		{ 553, "5.1.7", BOUNCE_HARD, CAT_INVALID_SENDER, 0, "enhanced-code" },
		{ 553, "5.1.8", BOUNCE_HARD, CAT_INVALID_SENDER, 0, "enhanced-code" },
		{ 550, "5.2.1", BOUNCE_HARD, CAT_INACTIVE_MAILBOX, 0, "enhanced-code" },
		{ 452, "4.2.2", BOUNCE_SOFT, CAT_QUOTA_ISSUES, 0, "enhanced-code" },
		{ 552, "5.2.3", BOUNCE_HARD, CAT_MESSAGE_TOO_LARGE, 0, "enhanced-code" },
		{ 552, "5.3.4", BOUNCE_HARD, CAT_MESSAGE_TOO_LARGE, 0, "enhanced-code" },
		{ 451, "4.4.1", BOUNCE_SOFT, CAT_NO_ANSWER_FROM_HOST, 0, "enhanced-code" },
		{ 421, "4.4.2", BOUNCE_SOFT, CAT_BAD_CONNECTION, 0, "enhanced-code" },
		{ 554, "5.4.4", BOUNCE_HARD, CAT_ROUTING_ERRORS, 0, "enhanced-code" },
		{ 451, "4.4.5", BOUNCE_SOFT, CAT_RATE_LIMITED, 1, "enhanced-code" },
		{ 554, "5.4.6", BOUNCE_HARD, CAT_ROUTING_ERRORS, 0, "enhanced-code" },
		{ 451, "4.4.7", BOUNCE_SOFT, CAT_MESSAGE_EXPIRED, 0, "enhanced-code" },
		{ 554, "5.4.7", BOUNCE_HARD, CAT_MESSAGE_EXPIRED, 0, "enhanced-code" },
		{ 501, "5.5.2", BOUNCE_HARD, CAT_PROTOCOL_ERRORS, 0, "enhanced-code" },
		/* too many recipients: soft on 552 (RFC 5321 4.5.3.1.10) */
		{ 552, "5.5.3", BOUNCE_SOFT, CAT_RATE_LIMITED, 0, "enhanced-code" },
		{ 554, "5.6.0", BOUNCE_HARD, CAT_CONTENT_RELATED, 0, "enhanced-code" },
		{ 550, "5.7.1", BOUNCE_HARD, CAT_POLICY_RELATED, 0, "enhanced-code" },
		{ 450, "4.7.1", BOUNCE_SOFT, CAT_POLICY_RELATED, 0, "enhanced-code" },
		{ 535, "5.7.8", BOUNCE_HARD, CAT_BAD_CONFIGURATION, 0, "enhanced-code" },
		{ 550, "5.7.23", BOUNCE_HARD, CAT_SENDER_AUTHENTICATION, 0, "enhanced-code" },
		{ 550, "5.7.25", BOUNCE_HARD, CAT_SENDER_AUTHENTICATION, 0, "enhanced-code" },
		{ 550, "5.7.26", BOUNCE_HARD, CAT_SENDER_AUTHENTICATION, 0, "enhanced-code" },
		{ 550, "5.7.27", BOUNCE_HARD, CAT_INVALID_SENDER, 0, "enhanced-code" },
		{ 550, "5.7.509", BOUNCE_HARD, CAT_SENDER_AUTHENTICATION, 0, "enhanced-code" },
		{ 550, "5.7.17", BOUNCE_HARD, CAT_BAD_MAILBOX, 0, "enhanced-code" },
		/* the reply code decides the class, not the enhanced class */
		{ 550, "4.2.2", BOUNCE_HARD, CAT_QUOTA_ISSUES, 0, "enhanced-code" },
		{ 452, "5.2.2", BOUNCE_SOFT, CAT_QUOTA_ISSUES, 0, "enhanced-code" },
		/* no reply code: a 5.x.x enhanced code (edm's own "not sent"
		 * verdicts) is hard */
		{ 0, "4.4.1", BOUNCE_SOFT, CAT_NO_ANSWER_FROM_HOST, 0, "enhanced-code" },
		{ 0, "5.1.3", BOUNCE_HARD, CAT_BAD_MAILBOX, 0, "enhanced-code" },
		{ 0, "5.5.3", BOUNCE_SOFT, CAT_RATE_LIMITED, 0, "enhanced-code" },
		{ 0, "5.9.9", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 0, "2.1.5", BOUNCE_SOFT, CAT_OTHER, 0, "enhanced-code" },
		{ 0, "5.1", BOUNCE_SOFT, CAT_OTHER, 0, "reply-code" },
		/* unknown subject, or not an enhanced code: the reply code */
		{ 550, "5.9.9", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "5.0.0", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "5.1", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "3.1.1", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "5.1.1000", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "5.1.1 ", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "x.1.1", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
		{ 550, "", BOUNCE_HARD, CAT_OTHER, 0, "reply-code" },
	};
	char err[512];
	struct classifier *c = classify_new(NULL, err, sizeof(err));
	struct classify_result r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		/* a text no rule knows, so the codes decide */
		classify_reply(c, cases[i].code, cases[i].enhanced, "zzz qqq", &r);
		check(r.cls == cases[i].cls && r.category == cases[i].cat &&
		      r.slowdown == cases[i].slowdown && r.greylist == 0 &&
		      strcmp(r.rule, cases[i].rule) == 0, __LINE__,
		      "case %zu (%d %s): got %s/%s/%d by %s", i, cases[i].code,
		      cases[i].enhanced, bounce_class_name(r.cls),
		      bounce_category_name(r.category), r.slowdown, r.rule);
	}
	classify_free(c);
}

static void test_code_fallback(void)
{
	static const struct {
		int code;
		enum bounce_class cls;
		enum bounce_category cat;
	} cases[] = {
		{ 0, BOUNCE_SOFT, CAT_OTHER },
		{ 421, BOUNCE_SOFT, CAT_OTHER },
		{ 451, BOUNCE_SOFT, CAT_OTHER },
		{ 554, BOUNCE_HARD, CAT_OTHER },
		{ 550, BOUNCE_HARD, CAT_OTHER },
		{ 500, BOUNCE_HARD, CAT_PROTOCOL_ERRORS },
		{ 503, BOUNCE_HARD, CAT_PROTOCOL_ERRORS },
		{ 555, BOUNCE_HARD, CAT_PROTOCOL_ERRORS },
		{ 530, BOUNCE_HARD, CAT_BAD_CONFIGURATION },
		{ 535, BOUNCE_HARD, CAT_BAD_CONFIGURATION },
		{ 354, BOUNCE_SOFT, CAT_PROTOCOL_ERRORS },
		{ 999, BOUNCE_SOFT, CAT_PROTOCOL_ERRORS },
		{ -1, BOUNCE_SOFT, CAT_PROTOCOL_ERRORS },
		{ 250, BOUNCE_DELIVERED, CAT_NONE },
		{ 251, BOUNCE_DELIVERED, CAT_NONE },
	};
	char err[512];
	struct classifier *c = classify_new(NULL, err, sizeof(err));
	struct classify_result r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		classify_reply(c, cases[i].code, NULL, "zzz qqq", &r);
		check(r.cls == cases[i].cls && r.category == cases[i].cat &&
		      strcmp(r.rule, "reply-code") == 0 && !r.slowdown &&
		      !r.greylist, __LINE__, "code %d: got %s/%s by %s",
		      cases[i].code, bounce_class_name(r.cls),
		      bounce_category_name(r.category), r.rule);
	}
	/* no reply at all, NULL pointers */
	classify_reply(c, 0, NULL, NULL, &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_OTHER);
	classify_reply(c, 0, "", "", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_OTHER);
	/* code 0 with a cause the connection layer wrote */
	classify_reply(c, 0, NULL, "connect: Connection refused", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_BAD_CONNECTION);
	classify_reply(c, 0, NULL, "read: connection timed out", &r);
	CU_ASSERT_EQUAL(r.category, CAT_NO_ANSWER_FROM_HOST);
	/* a rule never turns a 2xx into a bounce */
	classify_reply(c, 250, "2.0.0", "Ok: user unknown spam blocked", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_DELIVERED);
	CU_ASSERT_EQUAL(r.category, CAT_NONE);
	/* "too many recipients" is soft on a 552 */
	classify_reply(c, 552, NULL, "Too many recipients", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_SOFT);
	CU_ASSERT_EQUAL(r.category, CAT_RATE_LIMITED);
	classify_free(c);
}

/* Without a classifier, only the fallbacks answer. */
static void test_null_classifier(void)
{
	struct classify_result r;

	classify_reply(NULL, 550, "5.1.1", "user unknown", &r);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_HARD);
	CU_ASSERT_EQUAL(r.category, CAT_BAD_MAILBOX);
	CU_ASSERT_STRING_EQUAL(r.rule, "enhanced-code");
	classify_reply(NULL, 550, NULL, "user unknown", &r);
	CU_ASSERT_EQUAL(r.category, CAT_OTHER);
	classify_free(NULL);
}

/* A reply longer than the stack buffer still matches (heap path), and the
 * text is matched to its end. */
static void test_long_reply(void)
{
	char err[512], *text;
	struct classifier *c = classify_new(NULL, err, sizeof(err));
	struct classify_result r;
	size_t n = 70000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	text = malloc(n + 32);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	memset(text, 'x', n);
	strcpy(text + n, " user unknown");
	classify_reply(c, 550, "5.0.0", text, &r);
	CU_ASSERT_EQUAL(r.category, CAT_BAD_MAILBOX);
	CU_ASSERT_EQUAL(r.cls, BOUNCE_HARD);
	free(text);
	classify_free(c);
}

/* A pattern with catastrophic backtracking hits the match limit: that rule
 * counts as no match, and the call returns quickly. */
static void test_match_limit(void)
{
	char path[64], err[512], *text;
	struct classifier *c;
	struct classify_result r;
	size_t n = 4000;
	time_t t0;

	CU_ASSERT_FATAL(write_tmp(path, "spam-related keep - ^\\d+ +((a|aa)+)+$\n") == 0);
	c = classify_new(path, err, sizeof(err));
	unlink(path);
	check(c != NULL, __LINE__, "%s", err);
	if (c == NULL)
		return;
	text = malloc(n + 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	memset(text, 'a', n);
	strcpy(text + n, "!");
	t0 = time(NULL);
	classify_reply(c, 550, NULL, text, &r);
	CU_ASSERT(time(NULL) - t0 < 20);
	CU_ASSERT_EQUAL(r.category, CAT_OTHER);
	CU_ASSERT_STRING_EQUAL(r.rule, "reply-code");
	/* and the same rule matches when it can */
	text[n] = '\0';
	classify_reply(c, 550, NULL, "aaaa", &r);
	CU_ASSERT_EQUAL(r.category, CAT_SPAM_RELATED);
	free(text);
	classify_free(c);
}

struct thread_arg {
	const struct classifier *c;
	int bad;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct classify_result r;

	for (int i = 0; i < 2000; i++) {
		classify_reply(a->c, 550, "5.1.1", "The email account that you "
		               "tried to reach does not exist", &r);
		a->bad += r.category != CAT_BAD_MAILBOX;
		classify_reply(a->c, 421, "4.7.0", "[TSS04] Messages from "
		               "192.0.2.1 temporarily deferred", &r);
		a->bad += r.category != CAT_RATE_LIMITED || !r.slowdown;
	}
	return NULL;
}

/* One classifier shared by several threads gives the same answers. */
static void test_threads(void)
{
	char err[512];
	struct classifier *c = classify_new(NULL, err, sizeof(err));
	struct thread_arg args[4];
	pthread_t th[4];

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 4; i++) {
		args[i].c = c;
		args[i].bad = 0;
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].bad, 0);
	}
	classify_free(c);
}

/* ---- the reply splitter ---- */

static void test_split(void)
{
	static const struct {
		const char *in;
		int code;
		const char *enhanced, *text;
	} cases[] = {
		{ "550-5.1.1 The email account", 550, "5.1.1", "The email account" },
		{ "550 5.1.1 The email account", 550, "5.1.1", "The email account" },
		{ "550 Mailbox not found", 550, "", "Mailbox not found" },
		{ "  421   4.7.650   rate limited  \r", 421, "4.7.650", "rate limited" },
		{ "550", 550, "", "" },
		{ "550-5.1.1", 550, "5.1.1", "" },
		{ "550\t5.1.1\ttab separated", 550, "5.1.1", "tab separated" },
		{ "user unknown", 0, "", "user unknown" },
		{ "5.1.1 user unknown", 0, "5.1.1", "user unknown" },
		{ "", 0, "", "" },
		{ "1234 not a code", 0, "", "1234 not a code" },
		{ "550x not a code", 0, "", "550x not a code" },
		{ "550 5.1.1x not enhanced", 550, "", "5.1.1x not enhanced" },
		{ "550 5.1234.1 not enhanced", 550, "", "5.1234.1 not enhanced" },
		{ "550 3.1.1 not enhanced", 550, "", "3.1.1 not enhanced" },
		{ "451 4.7.500 Server busy", 451, "4.7.500", "Server busy" },
		/* multi-line: joined, repeated prefixes dropped */
		{ "550-5.1.1 The email account that you tried to reach does\r\n"
		  "550-5.1.1 not exist. Please try\r\n"
		  "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser",
		  550, "5.1.1",
		  "The email account that you tried to reach does not exist. "
		  "Please try https://support.google.com/mail/?p=NoSuchUser" },
		{ "421-first\n\n421 second\n", 421, "", "first second" },
		/* a later line with another code keeps it as text */
		{ "550-one\n551 two", 550, "", "one 551 two" },
		{ "550-5.1.1 one\n550 5.2.2 two", 550, "5.1.1", "one 5.2.2 two" },
	};
	char enhanced[CLASSIFY_ENHANCED_MAX];
	char *text;
	int code;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		text = classify_cmd_split(cases[i].in, &code, enhanced);
		CU_ASSERT_PTR_NOT_NULL_FATAL(text);
		check(code == cases[i].code &&
		      strcmp(enhanced, cases[i].enhanced) == 0 &&
		      strcmp(text, cases[i].text) == 0, __LINE__,
		      "case %zu: got %d '%s' '%s'", i, code, enhanced, text);
		free(text);
	}
}

/* ---- the command ---- */

struct cmd_out {
	int rc;
	char *out, *err;
};

/* Run classify_cmd_main with stdout and stderr captured (and stdin from
 * in_text when not NULL). */
static struct cmd_out run_cmd(int argc, char **argv, const char *in_text)
{
	struct cmd_out r = { -1, NULL, NULL };
	FILE *fo = tmpfile(), *fe = tmpfile(), *fi = NULL;
	int so, se, si = -1;
	long n;

	CU_ASSERT_FATAL(fo != NULL && fe != NULL);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	if (in_text != NULL) {
		fi = tmpfile();
		CU_ASSERT_FATAL(fi != NULL);
		fputs(in_text, fi);
		fflush(fi);
		rewind(fi);
		si = dup(0);
		dup2(fileno(fi), 0);
		clearerr(stdin);
	}
	r.rc = classify_cmd_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	if (fi != NULL) {
		dup2(si, 0);
		close(si);
		clearerr(stdin);
		fclose(fi);
	}
	fseek(fo, 0, SEEK_END);
	n = ftell(fo);
	rewind(fo);
	r.out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (n > 0 && fread(r.out, 1, (size_t)n, fo) != (size_t)n)
		r.out[0] = '\0';
	fseek(fe, 0, SEEK_END);
	n = ftell(fe);
	rewind(fe);
	r.err = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (n > 0 && fread(r.err, 1, (size_t)n, fe) != (size_t)n)
		r.err[0] = '\0';
	fclose(fo);
	fclose(fe);
	return r;
}

static void cmd_out_free(struct cmd_out *r)
{
	free(r->out);
	free(r->err);
}

static void test_cmd_args(void)
{
	char *argv[] = {
		"classify",
		"550-5.1.1 The email account that you tried to reach does not exist",
		"550 Ip frequency limited",
		"try later, \"maybe\"",
		"250 2.0.0 OK",
		NULL,
	};
	struct cmd_out r = run_cmd(5, argv, NULL);

	CU_ASSERT_EQUAL(r.rc, 0);
	check(strcmp(r.out,
	             "code,enhanced,class,category,reply\n"
	             "550,5.1.1,hard,bad-mailbox,The email account that you tried to reach does not exist\n"
	             "550,,soft,rate-limited,Ip frequency limited\n"
	             ",,soft,other,\"try later, \"\"maybe\"\"\"\n"
	             "250,2.0.0,delivered,,OK\n") == 0, __LINE__,
	      "got:\n%s", r.out);
	CU_ASSERT_STRING_EQUAL(r.err, "");
	cmd_out_free(&r);
}

static void test_cmd_stdin(void)
{
	char *argv[] = { "classify", NULL };
	struct cmd_out r = run_cmd(1, argv,
	                           "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred\n"
	                           "\n"
	                           "   \r\n"
	                           "450 4.2.0 Greylisted, see http://postgrey.example/\r\n"
	                           "552 5.2.2 Mailbox full");

	CU_ASSERT_EQUAL(r.rc, 0);
	check(strcmp(r.out,
	             "code,enhanced,class,category,reply\n"
	             "421,4.7.0,soft,rate-limited,[TSS04] Messages from 192.0.2.1 temporarily deferred\n"
	             "450,4.2.0,soft,rate-limited,\"Greylisted, see http://postgrey.example/\"\n"
	             "552,5.2.2,hard,quota-issues,Mailbox full\n") == 0, __LINE__,
	      "got:\n%s", r.out);
	cmd_out_free(&r);
}

static void test_cmd_explain_and_rules(void)
{
	char *argv[] = {
		"classify", "--explain", "550 5.1.1 User unknown at relay.example",
		"--rules", FIX "user.rules", "451 4.7.1 Greylisting in action",
		"452 4.4.5 zzz", NULL,
	};
	struct cmd_out r = run_cmd(7, argv, NULL);
	char want[1024];

	CU_ASSERT_EQUAL(r.rc, 0);
	snprintf(want, sizeof(want),
	         "code,enhanced,class,category,reply,flags,rule\n"
	         "550,5.1.1,hard,policy-related,User unknown at relay.example,-,%suser.rules:6\n",
	         FIX);
	check(strncmp(r.out, want, strlen(want)) == 0, __LINE__, "got:\n%s", r.out);
	check(strstr(r.out, "\n451,4.7.1,soft,rate-limited,Greylisting in action,"
	                    "greylist,bounce_rules.txt:") != NULL, __LINE__,
	      "got:\n%s", r.out);
	check(strstr(r.out, "\n452,4.4.5,soft,rate-limited,zzz,slowdown,"
	                    "enhanced-code\n") != NULL, __LINE__, "got:\n%s", r.out);
	cmd_out_free(&r);
}

static void test_cmd_help(void)
{
	char *argv[] = { "classify", "--help", NULL };
	char *argv2[] = { "classify", "-h", NULL };
	struct cmd_out r = run_cmd(2, argv, NULL);

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Usage: edm classify"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "Examples:"));
	CU_ASSERT_STRING_EQUAL(r.out, classify_cmd_usage);
	cmd_out_free(&r);
	r = run_cmd(2, argv2, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(r.out, classify_cmd_usage);
	cmd_out_free(&r);
}

static void test_cmd_usage_errors(void)
{
	char *argv[] = { "classify", "--bogus", "550 x", NULL };
	char *argv2[] = { "classify", "--rules", NULL };
	struct cmd_out r = run_cmd(3, argv, NULL);

	CU_ASSERT_EQUAL(r.rc, EX_USAGE);
	CU_ASSERT_STRING_EQUAL(r.out, "");
	check(strncmp(r.err, "edm: error: classify: unknown option '--bogus'\n", 47) == 0 &&
	      strstr(r.err, "Usage: edm classify") != NULL, __LINE__,
	      "got:\n%s", r.err);
	cmd_out_free(&r);
	r = run_cmd(2, argv2, NULL);
	CU_ASSERT_EQUAL(r.rc, EX_USAGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "'--rules' needs a value"));
	cmd_out_free(&r);
}

static void test_cmd_bad_rules(void)
{
	char *argv[] = { "classify", "--rules", FIX "bad.rules", "550 x", NULL };
	char *argv2[] = { "classify", "--rules", FIX "no-such.rules", "550 x", NULL };
	struct cmd_out r = run_cmd(4, argv, NULL);

	CU_ASSERT_EQUAL(r.rc, EX_CONFIG);
	CU_ASSERT_STRING_EQUAL(r.out, "");
	check(strncmp(r.err, "edm: error: " FIX "bad.rules:4: bad pattern at offset ",
	              strlen("edm: error: " FIX "bad.rules:4: bad pattern at offset ")) == 0,
	      __LINE__, "got:\n%s", r.err);
	cmd_out_free(&r);
	r = run_cmd(4, argv2, NULL);
	CU_ASSERT_EQUAL(r.rc, EX_NOINPUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "no-such.rules: cannot open"));
	cmd_out_free(&r);
}

static const struct test_case tests[] = {
	{ "category_names", test_category_names },
	{ "class_names", test_class_names },
	{ "suppresses", test_suppresses },
	{ "corpus", test_corpus },
	{ "shipped_rule_lines", test_shipped_rule_lines },
	{ "user_rules_first", test_user_rules_first },
	{ "user_rules_bom", test_user_rules_bom },
	{ "bad_rules", test_bad_rules },
	{ "bad_rules_fixture", test_bad_rules_fixture },
	{ "missing_rules_file", test_missing_rules_file },
	{ "case_insensitive", test_case_insensitive },
	{ "enhanced_fallback", test_enhanced_fallback },
	{ "code_fallback", test_code_fallback },
	{ "null_classifier", test_null_classifier },
	{ "long_reply", test_long_reply },
	{ "match_limit", test_match_limit },
	{ "threads", test_threads },
	{ "split", test_split },
	{ "cmd_args", test_cmd_args },
	{ "cmd_stdin", test_cmd_stdin },
	{ "cmd_explain_and_rules", test_cmd_explain_and_rules },
	{ "cmd_help", test_cmd_help },
	{ "cmd_usage_errors", test_cmd_usage_errors },
	{ "cmd_bad_rules", test_cmd_bad_rules },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("classify", tests);
}
