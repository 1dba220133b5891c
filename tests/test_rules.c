/*
 * test_rules.c - strset (lists/strset.c) and the data rules (lists/rules.c):
 * the hash set under growth and odd bytes, the shipped data files' shape,
 * disposable / role / typo verdicts, and extra disposable list files.
 * Fixtures: tests/fixtures/rules/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "data.h"
#include "rules.h"
#include "strset.h"

#define FIX EDM_FIXTURES "/rules/"
/* Enough entries to force many table doublings and several arena blocks. */
#define BIG_N 100000

/* Iterate the entries of an embedded list (as the reader in rules.c must:
 * trimmed, skipping blank and '#' lines). Returns 0 at the end. */
static int data_next(const char **pos, char *out, size_t outlen)
{
	const char *p = *pos, *nl, *s, *e;
	size_t len;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		e = nl != NULL ? nl : p + strlen(p);
		s = p;
		p = nl != NULL ? nl + 1 : e;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s &&
		       (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (s == e || *s == '#')
			continue;
		len = (size_t)(e - s);
		if (len >= outlen)
			len = outlen - 1;
		memcpy(out, s, len);
		out[len] = '\0';
		*pos = p;
		return 1;
	}
	*pos = p;
	return 0;
}

/* A lowercase LDH domain of at least two labels, no empty label. */
static int is_lower_domain(const char *d)
{
	size_t labels = 1, lablen = 0;
	const char *p;

	if (*d == '\0')
		return 0;
	for (p = d; *p != '\0'; p++) {
		if (*p == '.') {
			if (lablen == 0)
				return 0;
			labels++;
			lablen = 0;
		} else if ((*p >= 'a' && *p <= 'z') ||
		           (*p >= '0' && *p <= '9') || *p == '-') {
			lablen++;
		} else {
			return 0;
		}
	}
	return lablen > 0 && labels >= 2;
}

/* ---- strset ---- */

static void test_strset_basic(void)
{
	struct strset *s = strset_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(strset_count(s), 0);
	CU_ASSERT_EQUAL(strset_has(s, "a", 1), 0);
	CU_ASSERT_EQUAL(strset_add(s, "alice@example.test", 18), 1);
	CU_ASSERT_EQUAL(strset_add(s, "alice@example.test", 18), 0);
	CU_ASSERT_EQUAL(strset_has(s, "alice@example.test", 18), 1);
	/* A prefix or an extension of a member is not a member. */
	CU_ASSERT_EQUAL(strset_has(s, "alice@example.tes", 17), 0);
	CU_ASSERT_EQUAL(strset_has(s, "alice@example.test2", 19), 0);
	/* Only len bytes count, not the NUL terminator. */
	CU_ASSERT_EQUAL(strset_has(s, "alice@example.testXYZ", 18), 1);
	CU_ASSERT_EQUAL(strset_count(s), 1);
	/* The empty string is a string like any other. */
	CU_ASSERT_EQUAL(strset_has(s, "", 0), 0);
	CU_ASSERT_EQUAL(strset_add(s, "", 0), 1);
	CU_ASSERT_EQUAL(strset_add(s, "", 0), 0);
	CU_ASSERT_EQUAL(strset_has(s, "", 0), 1);
	CU_ASSERT_EQUAL(strset_count(s), 2);
	strset_free(s);
	strset_free(NULL);
}

/* The set copies: the caller's buffer may be overwritten after add. */
static void test_strset_copies(void)
{
	struct strset *s = strset_new();
	char buf[32];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	strcpy(buf, "bob@example.test");
	CU_ASSERT_EQUAL(strset_add(s, buf, strlen(buf)), 1);
	memset(buf, 'x', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	CU_ASSERT_EQUAL(strset_has(s, "bob@example.test", 16), 1);
	CU_ASSERT_EQUAL(strset_has(s, buf, 16), 0);
	strset_free(s);
}

static void test_strset_nul_bytes(void)
{
	struct strset *s = strset_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(strset_add(s, "a\0b", 3), 1);
	CU_ASSERT_EQUAL(strset_add(s, "a\0c", 3), 1);
	CU_ASSERT_EQUAL(strset_add(s, "a", 1), 1);
	CU_ASSERT_EQUAL(strset_add(s, "a\0", 2), 1);
	CU_ASSERT_EQUAL(strset_add(s, "a\0\0", 3), 1);
	CU_ASSERT_EQUAL(strset_add(s, "\0", 1), 1);
	CU_ASSERT_EQUAL(strset_add(s, "\0\0\0\0\0\0\0\0\0", 9), 1);
	CU_ASSERT_EQUAL(strset_add(s, "a\0b", 3), 0);
	CU_ASSERT_EQUAL(strset_add(s, "\0", 1), 0);
	CU_ASSERT_EQUAL(strset_has(s, "a\0c", 3), 1);
	CU_ASSERT_EQUAL(strset_has(s, "a\0d", 3), 0);
	CU_ASSERT_EQUAL(strset_has(s, "\0\0", 2), 0);
	CU_ASSERT_EQUAL(strset_has(s, "\0\0\0\0\0\0\0\0", 8), 0);
	CU_ASSERT_EQUAL(strset_has(s, "\0\0\0\0\0\0\0\0\0", 9), 1);
	CU_ASSERT_EQUAL(strset_has(s, "", 0), 0);
	/* High bytes too. */
	CU_ASSERT_EQUAL(strset_add(s, "\xff\xfe\x80", 3), 1);
	CU_ASSERT_EQUAL(strset_has(s, "\xff\xfe\x80", 3), 1);
	CU_ASSERT_EQUAL(strset_has(s, "\xff\xfe\x81", 3), 0);
	CU_ASSERT_EQUAL(strset_count(s), 8);
	strset_free(s);
}

/* Fill with BIG_N distinct short keys and BIG_N keys sharing a 200-byte
 * prefix (differing only at the end, past many hash words), then check
 * every member, duplicates and absent neighbours. */
static void test_strset_growth(void)
{
	struct strset *s = strset_new();
	char prefix[201], buf[256];
	size_t i, new_short = 0, new_long = 0, dups = 0, miss = 0, extra = 0;
	int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(prefix, 'p', 200);
	prefix[200] = '\0';
	for (i = 0; i < BIG_N; i++) {
		n = snprintf(buf, sizeof buf, "user%zu@example.test", i);
		new_short += strset_add(s, buf, (size_t)n) == 1;
		n = snprintf(buf, sizeof buf, "%s%zu", prefix, i);
		new_long += strset_add(s, buf, (size_t)n) == 1;
	}
	CU_ASSERT_EQUAL(new_short, BIG_N);
	CU_ASSERT_EQUAL(new_long, BIG_N);
	CU_ASSERT_EQUAL(strset_count(s), 2 * BIG_N);
	for (i = 0; i < BIG_N; i++) {
		n = snprintf(buf, sizeof buf, "user%zu@example.test", i);
		dups += strset_add(s, buf, (size_t)n) == 0;
		miss += strset_has(s, buf, (size_t)n) != 1;
		n = snprintf(buf, sizeof buf, "%s%zu", prefix, i);
		dups += strset_add(s, buf, (size_t)n) == 0;
		miss += strset_has(s, buf, (size_t)n) != 1;
		/* Never added: other numbers, other suffix, shorter prefix. */
		n = snprintf(buf, sizeof buf, "user%zu@example.test",
		             i + BIG_N);
		extra += strset_has(s, buf, (size_t)n);
		n = snprintf(buf, sizeof buf, "user%zu@example.tesT", i);
		extra += strset_has(s, buf, (size_t)n);
		n = snprintf(buf, sizeof buf, "%.199s%zu", prefix, i);
		extra += strset_has(s, buf, (size_t)n);
	}
	CU_ASSERT_EQUAL(dups, 2 * BIG_N);
	CU_ASSERT_EQUAL(miss, 0);
	CU_ASSERT_EQUAL(extra, 0);
	CU_ASSERT_EQUAL(strset_count(s), 2 * BIG_N);
	strset_free(s);
}

/* A string larger than an arena block, and small ones around it. */
static void test_strset_huge_string(void)
{
	size_t big = (size_t)3 << 20;
	struct strset *s = strset_new();
	char *p = malloc(big);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 'z', big);
	CU_ASSERT_EQUAL(strset_add(s, "before", 6), 1);
	CU_ASSERT_EQUAL(strset_add(s, p, big), 1);
	CU_ASSERT_EQUAL(strset_add(s, "after", 5), 1);
	CU_ASSERT_EQUAL(strset_add(s, p, big), 0);
	CU_ASSERT_EQUAL(strset_has(s, p, big - 1), 0);
	p[big - 1] = 'y';
	CU_ASSERT_EQUAL(strset_has(s, p, big), 0);
	CU_ASSERT_EQUAL(strset_add(s, p, big), 1);
	CU_ASSERT_EQUAL(strset_has(s, "before", 6), 1);
	CU_ASSERT_EQUAL(strset_has(s, "after", 5), 1);
	CU_ASSERT_EQUAL(strset_count(s), 4);
	free(p);
	strset_free(s);
}

/* ---- shipped data ---- */

static const char *const required_disposable[] = {
	"mailinator.com", "guerrillamail.com", "10minutemail.com",
	"yopmail.com", "temp-mail.org", "guerrillamail.net",
	"guerrillamail.org", "guerrillamail.biz", "sharklasers.com", "grr.la",
	"yopmail.fr", "yopmail.net", "trashmail.com", "dispostable.com",
	"maildrop.cc", "getnada.com", "throwawaymail.com", "tempmail.com",
	"fakeinbox.com", "mailnesia.com", "mintemail.com", "mohmal.com",
	"emailondeck.com", "33mail.com", "spamgourmet.com", NULL
};

static const char *const required_roles[] = {
	"admin", "administrator", "postmaster", "hostmaster", "webmaster",
	"abuse", "noreply", "no-reply", "info", "support", "sales", "marketing",
	"contact", "help", "billing", "office", "hr", "jobs", "careers",
	"press", "security", "root", "mailer-daemon", "newsletter",
	"donotreply", "do-not-reply", "list", "team", "service", "enquiries",
	NULL
};

static const char *const required_popular[] = {
	"gmail.com", "googlemail.com", "hotmail.com", "outlook.com",
	"live.com", "msn.com", "yahoo.com", "icloud.com", "me.com", "mac.com",
	"aol.com", "qq.com", "163.com", "126.com", "yeah.net", "sina.com",
	"sina.cn", "sohu.com", "foxmail.com", "aliyun.com", "139.com",
	"189.cn", "vip.qq.com", "vip.163.com", "188.com", "tom.com",
	"21cn.com", "gmx.com", "gmx.de", "web.de", "mail.com", "mail.ru",
	"yandex.ru", "protonmail.com", "proton.me", "zoho.com",
	"hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it",
	"hotmail.es", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.co.jp",
	"yahoo.com.tw", "yahoo.com.hk", "live.cn", "live.ca", "live.co.uk",
	"outlook.fr", "outlook.de", "ymail.com", "rocketmail.com",
	"naver.com", "daum.net", "hanmail.net", "comcast.net", "verizon.net",
	"att.net", "orange.fr", "free.fr", "laposte.net", "libero.it",
	"t-online.de", NULL
};

/* Count entries of an embedded list that pass 'ok', and all entries. */
static size_t data_count(const char *text, int (*ok)(const char *),
                         size_t *total, int strip_eq)
{
	char e[300];
	const char *pos = text;
	size_t good = 0;

	*total = 0;
	while (data_next(&pos, e, sizeof e)) {
		(*total)++;
		if (strip_eq && (e[0] == '=' || e[0] == '~'))
			good += ok(e + 1) ? 1 : 0;
		else
			good += ok(e) ? 1 : 0;
	}
	return good;
}

static int in_list(const char *text, const char *want)
{
	char e[300];
	const char *pos = text;

	while (data_next(&pos, e, sizeof e))
		if (strcmp(e[0] == '=' || e[0] == '~' ? e + 1 : e, want) == 0)
			return 1;
	return 0;
}

static int is_role_text(const char *e)
{
	const char *p;

	for (p = e; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return p != e;
}

static void test_data_files(void)
{
	size_t total, good, i;

	good = data_count(edm_data_disposable_domains, is_lower_domain, &total,
	                  0);
	CU_ASSERT(total >= 150);
	CU_ASSERT_EQUAL(good, total);
	good = data_count(edm_data_role_accounts, is_role_text, &total, 0);
	CU_ASSERT(total >= 30);
	CU_ASSERT_EQUAL(good, total);
	good = data_count(edm_data_popular_domains, is_lower_domain, &total, 1);
	CU_ASSERT(total >= 60);
	CU_ASSERT_EQUAL(good, total);
	for (i = 0; required_disposable[i] != NULL; i++)
		if (!in_list(edm_data_disposable_domains,
		             required_disposable[i]))
			CU_FAIL(required_disposable[i]);
	for (i = 0; required_roles[i] != NULL; i++)
		if (!in_list(edm_data_role_accounts, required_roles[i]))
			CU_FAIL(required_roles[i]);
	for (i = 0; required_popular[i] != NULL; i++)
		if (!in_list(edm_data_popular_domains, required_popular[i]))
			CU_FAIL(required_popular[i]);
	/* The files carry a comment header. */
	CU_ASSERT_EQUAL(edm_data_disposable_domains[0], '#');
	CU_ASSERT_EQUAL(edm_data_role_accounts[0], '#');
	CU_ASSERT_EQUAL(edm_data_popular_domains[0], '#');
}

/* ---- disposable ---- */

static void test_disposable(void)
{
	struct rules *r = rules_new();
	char e[300];
	const char *pos = edm_data_disposable_domains;
	size_t i, missed = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; required_disposable[i] != NULL; i++)
		if (rules_is_disposable(r, required_disposable[i]) != 1)
			CU_FAIL(required_disposable[i]);
	/* Every shipped entry is loaded, not just the required ones. */
	while (data_next(&pos, e, sizeof e))
		missed += rules_is_disposable(r, e) != 1;
	CU_ASSERT_EQUAL(missed, 0);
	/* Parents match, at any depth. */
	CU_ASSERT_EQUAL(rules_is_disposable(r, "sub.mailinator.com"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "a.b.c.yopmail.fr"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "x.grr.la"), 1);
	/* Not disposable: real providers, lookalikes, suffix-but-not-parent,
	 * the bare TLD and a longer TLD. */
	CU_ASSERT_EQUAL(rules_is_disposable(r, "gmail.com"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "example.test"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "xmailinator.com"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "mailinator.co"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "mailinator.com.example"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "mailinator"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "com"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "la"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, ""), 0);
	rules_free(r);
	rules_free(NULL);
}

/* ---- role ---- */

static int role(const struct rules *r, const char *local)
{
	return rules_is_role(r, local, strlen(local));
}

static void test_role(void)
{
	struct rules *r = rules_new();
	char long_local[80];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; required_roles[i] != NULL; i++)
		if (role(r, required_roles[i]) != 1)
			CU_FAIL(required_roles[i]);
	/* Case and subaddress tags are ignored. */
	CU_ASSERT_EQUAL(role(r, "ADMIN"), 1);
	CU_ASSERT_EQUAL(role(r, "Info"), 1);
	CU_ASSERT_EQUAL(role(r, "PostMaster"), 1);
	CU_ASSERT_EQUAL(role(r, "sales+eu"), 1);
	CU_ASSERT_EQUAL(role(r, "Support+a+b"), 1);
	CU_ASSERT_EQUAL(role(r, "no-reply+"), 1);
	/* Only len bytes are read. */
	CU_ASSERT_EQUAL(rules_is_role(r, "infoxyz", 4), 1);
	CU_ASSERT_EQUAL(rules_is_role(r, "info", 3), 0);
	/* People and near-misses. */
	CU_ASSERT_EQUAL(role(r, "john"), 0);
	CU_ASSERT_EQUAL(role(r, "john.smith"), 0);
	CU_ASSERT_EQUAL(role(r, "adminx"), 0);
	CU_ASSERT_EQUAL(role(r, "xadmin"), 0);
	CU_ASSERT_EQUAL(role(r, "info.sales"), 0);
	CU_ASSERT_EQUAL(role(r, "john+info"), 0);
	CU_ASSERT_EQUAL(role(r, "+info"), 0);
	CU_ASSERT_EQUAL(role(r, ""), 0);
	/* An over-long local part is simply not a role. */
	memset(long_local, 'a', sizeof long_local - 1);
	long_local[sizeof long_local - 1] = '\0';
	CU_ASSERT_EQUAL(role(r, long_local), 0);
	rules_free(r);
}

/* ---- typo ---- */

struct typo_case {
	const char *in;
	const char *want;
};

static const struct typo_case typos[] = {
	{ "gmial.com", "gmail.com" },
	{ "gmai.com", "gmail.com" },
	{ "gmail.con", "gmail.com" },
	{ "gmail.co", "gmail.com" },
	{ "gmail.cm", "gmail.com" },
	{ "hotmial.com", "hotmail.com" },
	{ "hotmail.co", "hotmail.com" },
	{ "yaho.com", "yahoo.com" },
	{ "outlok.com", "outlook.com" },
	{ "qq.con", "qq.com" },
	{ "163.cm", "163.com" },
	{ "l63.com", "163.com" },
	{ "126.con", "126.com" },
	{ "foxmial.com", "foxmail.com" },
	{ "icloud.co", "icloud.com" },
	{ "gmial.con", "gmail.com" },      /* cost 2: one in name, one in tld */
	{ "yahoo.co.uj", "yahoo.co.uk" },  /* two-label tld */
	{ "yahoo.com.tq", "yahoo.com.tw" },
	{ "hotmail.fe", "hotmail.fr" },    /* tie fr/de: fr is listed first */
	{ "hotmial.fe", "hotmail.fr" },    /* same tie, at the cost-2 limit */
	{ "ymial.com", "ymail.com" },      /* ymail (1) beats gmail (2) */
	{ "mail.co", "mail.com" },         /* mail (1) beats gmail (2) */
	/* '~' TLD-only targets still get their TLD slips. */
	{ "aol.con", "aol.com" },
	{ "me.con", "me.com" },
	{ "live.co", "live.com" },
	{ "msn.cm", "msn.com" },
	{ "qq.co", "qq.com" },
	{ NULL, NULL }
};

static const char *const not_typos[] = {
	"hotmail.fr", "yahoo.de", "live.cn", "live.ca", "mail.com", "gmx.com",
	"me.com", "mac.com", "qq.com", "163.com", "126.com", "sina.cn",
	"example.test", "acme.example", "company.com", "microsoft.com",
	"google.com", "outlook.cn", /* tld distance 2 */
	"gmail.de",                 /* tld distance 2 */
	"gmailing.com",             /* name distance 3 */
	"qqq.co",                   /* cost 2 on a short name */
	"129.cm",                   /* cost 2 on a short name */
	"ibm.com", "apple.com", "amazon.com", "github.com", "example.com",
	"bigcorp.example", "shop.example", "university.test", "bank.test",
	/* One name edit from a '~' TLD-only target. */
	"aon.com", "aoc.com", "gq.com", "qa.com", "max.com", "mi.com",
	"soho.com", "life.com", "gm.com", "ms.com",
	/* One TLD edit from a country-code entry: another real country. */
	"web.ee", "free.fm", "hotmail.dk", "yahoo.se", "yahoo.com.tr",
	"mail.ro",
	/* Real domains near a target, listed as known. */
	"cloud.com", "online.de",
	"gmail", "", ".", "a.b", NULL
};

static void test_typo_positive(void)
{
	struct rules *r = rules_new();
	char sug[256];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; typos[i].in != NULL; i++) {
		strcpy(sug, "unchanged");
		if (rules_typo(r, typos[i].in, sug, sizeof sug) != 1) {
			CU_FAIL(typos[i].in);
			continue;
		}
		if (strcmp(sug, typos[i].want) != 0) {
			fprintf(stderr, "\n  %s -> %s, want %s\n", typos[i].in,
			        sug, typos[i].want);
			CU_FAIL(typos[i].in);
		}
		/* ... and the other way: the suggestion is itself fine. */
		if (rules_typo(r, typos[i].want, sug, sizeof sug) != 0)
			CU_FAIL(typos[i].want);
	}
	rules_free(r);
}

static void test_typo_negative(void)
{
	struct rules *r = rules_new();
	char sug[256], e[300];
	const char *pos = edm_data_popular_domains;
	size_t i, known = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; not_typos[i] != NULL; i++) {
		strcpy(sug, "unchanged");
		if (rules_typo(r, not_typos[i], sug, sizeof sug) != 0) {
			fprintf(stderr, "\n  %s flagged as %s\n", not_typos[i],
			        sug);
			CU_FAIL(not_typos[i]);
		}
		CU_ASSERT_STRING_EQUAL(sug, "unchanged");
	}
	/* Every known domain, suggestion target or '=' known-only. */
	while (data_next(&pos, e, sizeof e)) {
		known++;
		if (rules_typo(r, e[0] == '=' || e[0] == '~' ? e + 1 : e, sug,
		               sizeof sug)) {
			fprintf(stderr, "\n  known %s flagged as %s\n", e, sug);
			CU_FAIL(e);
		}
	}
	CU_ASSERT(known >= 60);
	rules_free(r);
}

static void test_typo_buffer(void)
{
	struct rules *r = rules_new();
	char sug[4], longd[300];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* No buffer: only the verdict. */
	CU_ASSERT_EQUAL(rules_typo(r, "gmial.com", NULL, 0), 1);
	/* Short buffer: truncated and terminated. */
	CU_ASSERT_EQUAL(rules_typo(r, "gmial.com", sug, sizeof sug), 1);
	CU_ASSERT_STRING_EQUAL(sug, "gma");
	/* A maximal-length domain is handled (and not a typo). */
	memset(longd, 'a', 249);
	strcpy(longd + 249, ".com");
	CU_ASSERT_EQUAL(rules_typo(r, longd, NULL, 0), 0);
	rules_free(r);
}

/* ---- extra disposable files ---- */

static void test_disposable_file(void)
{
	struct rules *r = rules_new();
	char err[512];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "burner.example"), 0);
	strcpy(err, "untouched");
	CU_ASSERT_EQUAL_FATAL(rules_add_disposable_file(r,
	                      FIX "extra_disposable.txt", err, sizeof err), 0);
	CU_ASSERT_STRING_EQUAL(err, "untouched");
	CU_ASSERT_EQUAL(rules_is_disposable(r, "burner.example"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "mx.burner.example"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "spam-trap.test"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "throwaway.test"), 1);
	/* The IDN line is stored as its punycode (what addr_parse makes). */
	CU_ASSERT_EQUAL(rules_is_disposable(r, "xn--bcher-kva.example"), 1);
	/* Comments are not entries; built-ins are still there. */
	CU_ASSERT_EQUAL(rules_is_disposable(r, "trailing.comment"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "example"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "other.example"), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "mailinator.com"), 1);

	/* BOM and CRLF line ends. */
	CU_ASSERT_EQUAL(rules_add_disposable_file(r,
	                FIX "bom_disposable.txt", err, sizeof err), 0);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "bom-first.example"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "second.example"), 1);
	rules_free(r);
}

static void test_disposable_file_errors(void)
{
	struct rules *r = rules_new();
	const char *bad = FIX "bad_disposable.txt";
	const char *missing = FIX "no_such_file.txt";
	char err[512], want[512];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	err[0] = '\0';
	CU_ASSERT_EQUAL(rules_add_disposable_file(r, bad, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:5: ", bad);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT(strlen(err) > strlen(want)); /* a reason follows */
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "\n  got \"%s\"\n", err);
	/* Lines before the bad one were added, lines after it were not. */
	CU_ASSERT_EQUAL(rules_is_disposable(r, "good-one.example"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "good-two.example"), 1);
	CU_ASSERT_EQUAL(rules_is_disposable(r, "after-bad.example"), 0);

	err[0] = '\0';
	CU_ASSERT_EQUAL(rules_add_disposable_file(r, missing, err, sizeof err),
	                -1);
	snprintf(want, sizeof want, "%s: ", missing);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT(strlen(err) > strlen(want));
	/* No error buffer, or a tiny one: still -1, no overflow. */
	CU_ASSERT_EQUAL(rules_add_disposable_file(r, bad, NULL, 0), -1);
	CU_ASSERT_EQUAL(rules_add_disposable_file(r, bad, err, 4), -1);
	CU_ASSERT_EQUAL(strlen(err), 3);
	rules_free(r);
}

static const struct test_case tests[] = {
	{ "strset_basic", test_strset_basic },
	{ "strset_copies", test_strset_copies },
	{ "strset_nul_bytes", test_strset_nul_bytes },
	{ "strset_growth", test_strset_growth },
	{ "strset_huge_string", test_strset_huge_string },
	{ "data_files", test_data_files },
	{ "disposable", test_disposable },
	{ "role", test_role },
	{ "typo_positive", test_typo_positive },
	{ "typo_negative", test_typo_negative },
	{ "typo_buffer", test_typo_buffer },
	{ "disposable_file", test_disposable_file },
	{ "disposable_file_errors", test_disposable_file_errors },
	{ NULL, NULL }
};

int main(void)
{
	return test_run("rules", tests);
}
