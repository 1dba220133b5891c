/*
 * test_address.c - unit tests for lists/address.c and lists/suppress.c.
 *
 * addr_parse(): accepted addresses with their exact normalised form and key
 * (IDNA conversion, lowercasing, trimming of ASCII and CJK blanks), refused
 * ones with the words their detail must contain (one case per rule), and
 * the octet limits at and just past each boundary. addr_domain_normalise():
 * the same domain rules plus the output-buffer contract.
 * suppress_load(): the fixtures in tests/fixtures/suppress/ (a CSV with an
 * "EMAIL" column and RFC 4180 quoting, a one-per-line list with BOM, CRLF,
 * comments and mixed case, BOM before a CSV header and before an address),
 * the counts it returns, and errors naming the path.
 * suppress lives in this binary because it is a thin layer over addr_parse()
 * and its main promise is that its keys are addr_parse()'s keys.
 */
#include "address.h"
#include "strset.h"
#include "suppress.h"

#include "cunit_main.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUPPRESS_DIR EDM_FIXTURES "/suppress/"

/* Structural invariants of a parsed address, computed independently:
 * lengths agree, '@' sits at local_len, key is norm with A-Z folded. */
static void check_invariants(const struct addr *a, unsigned line)
{
	size_t i;
	int folded = 1;

	check(strlen(a->norm) == a->len && strlen(a->key) == a->len, line,
	      "len %zu matches norm \"%s\" and key \"%s\"", a->len, a->norm,
	      a->key);
	check(a->local_len < a->len && a->norm[a->local_len] == '@' &&
	      strchr(a->norm, '@') == a->norm + a->local_len, line,
	      "local_len %zu points at the only '@' of \"%s\"", a->local_len,
	      a->norm);
	for (i = 0; i <= a->len && i < sizeof a->key; i++) {
		char c = a->norm[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (a->key[i] != c)
			folded = 0;
	}
	check(folded, line, "key \"%s\" is norm \"%s\" lowercased", a->key,
	      a->norm);
	check(a->len <= ADDR_MAX, line, "len %zu <= 254", a->len);
}

/* addr_parse(in[len]) must succeed with this norm (and key, if given). */
static void accept(const char *in, size_t len, const char *norm,
                   const char *key, unsigned line)
{
	struct addr a;
	char detail[128] = "";
	int rc;

	memset(&a, 0x5a, sizeof a);
	rc = addr_parse(in, len, &a, detail, sizeof detail);
	check(rc == 0, line, "addr_parse(\"%.*s\") accepted (detail: %s)",
	      (int)len, in, detail);
	if (rc != 0)
		return;
	check(strcmp(a.norm, norm) == 0, line,
	      "addr_parse(\"%.*s\") norm \"%s\" == \"%s\"", (int)len, in,
	      a.norm, norm);
	if (key != NULL)
		check(strcmp(a.key, key) == 0, line,
		      "addr_parse(\"%.*s\") key \"%s\" == \"%s\"", (int)len,
		      in, a.key, key);
	check_invariants(&a, line);
}

/* addr_parse(in[len]) must fail with a detail containing 'want'. */
static void refuse(const char *in, size_t len, const char *want,
                   unsigned line)
{
	struct addr a;
	char detail[128] = "";
	int rc;

	rc = addr_parse(in, len, &a, detail, sizeof detail);
	check(rc == -1, line, "addr_parse(\"%.*s\") refused (rc %d)",
	      (int)len, in, rc);
	check(strstr(detail, want) != NULL, line,
	      "addr_parse(\"%.*s\") detail \"%s\" mentions \"%s\"", (int)len,
	      in, detail, want);
}

/* String literals (sizeof keeps embedded NULs in the length). */
#define ACCEPT(in, norm) accept(in, sizeof(in) - 1, norm, NULL, __LINE__)
#define ACCEPT_KEY(in, norm, key) \
	accept(in, sizeof(in) - 1, norm, key, __LINE__)
#define REFUSE(in, want) refuse(in, sizeof(in) - 1, want, __LINE__)
/* Built strings. */
#define ACCEPT_S(in, norm) accept(in, strlen(in), norm, NULL, __LINE__)
#define REFUSE_S(in, want) refuse(in, strlen(in), want, __LINE__)

/* n copies of c, NUL-terminated, into buf (which must hold n + 1). */
static char *fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* A domain of exactly n octets: 63-octet labels 'aaa...', 'bbb...', ...
 * and a shorter last one (callers pick n so it has 2..63 octets). */
static char *domain_of(char *buf, size_t n)
{
	size_t i, label = 0;
	char c = 'a';

	for (i = 0; i < n; i++) {
		if (label == 63) {
			buf[i] = '.';
			label = 0;
			c++;
			continue;
		}
		buf[i] = c;
		label++;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- accepted -------------------------------------------------------- */

static void test_accept_plain(void)
{
	ACCEPT("bob@example.test", "bob@example.test");
	ACCEPT("first.last@example.test", "first.last@example.test");
	ACCEPT("bob+newsletter@example.test", "bob+newsletter@example.test");
	ACCEPT("a.b.c.d+x-y@example.test", "a.b.c.d+x-y@example.test");
	ACCEPT("1234567890@example.test", "1234567890@example.test");
	ACCEPT("x@mail.eu.corp.example.test", "x@mail.eu.corp.example.test");
	ACCEPT("x@my-host.example", "x@my-host.example");
	ACCEPT("x@3com.example", "x@3com.example");
	ACCEPT("x@123.example", "x@123.example"); /* only the TLD can't be numeric */
	ACCEPT("x@ab--cd.example", "x@ab--cd.example");
	ACCEPT("x@a.b1", "x@a.b1");
	ACCEPT("x@gmail.com", "x@gmail.com");
}

static void test_accept_atext_specials(void)
{
	/* Every RFC 5322 atext special, alone and all together. */
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
	char in[64], norm[64];
	size_t i;

	ACCEPT("!#$%&'*+-/=?^_`{|}~@example.test",
	       "!#$%&'*+-/=?^_`{|}~@example.test");
	for (i = 0; specials[i] != '\0'; i++) {
		snprintf(in, sizeof in, "a%cb@example.test", specials[i]);
		snprintf(norm, sizeof norm, "a%cb@example.test", specials[i]);
		ACCEPT_S(in, norm);
	}
}

static void test_accept_case(void)
{
	/* Domain lowercased in norm; local kept as given in norm, folded in
	 * key (RFC 5321 2.4). */
	ACCEPT_KEY("Bob@Example.TEST", "Bob@example.test", "bob@example.test");
	ACCEPT_KEY("BOB.Smith+Tag@EXAMPLE.TEST", "BOB.Smith+Tag@example.test",
	           "bob.smith+tag@example.test");
	ACCEPT_KEY("bob@example.test", "bob@example.test", "bob@example.test");
}

static void test_accept_trim(void)
{
	ACCEPT("  bob@example.test  ", "bob@example.test");
	ACCEPT("\tbob@example.test\r\n", "bob@example.test");
	ACCEPT("\r\n \t bob@example.test \t \r\n", "bob@example.test");
	/* U+3000 ideographic space and U+00A0 no-break space, either end,
	 * mixed with ASCII blanks. */
	ACCEPT("\xe3\x80\x80" "bob@example.test" "\xe3\x80\x80",
	       "bob@example.test");
	ACCEPT("\xc2\xa0" "bob@example.test" "\xc2\xa0", "bob@example.test");
	ACCEPT(" \xe3\x80\x80\xc2\xa0 bob@example.test\xc2\xa0 \xe3\x80\x80\r\n",
	       "bob@example.test");
	/* Input need not be NUL-terminated: only len bytes count. */
	accept("bob@example.testJUNK", 16, "bob@example.test", NULL, __LINE__);
	accept("bob@example.test@x", 16, "bob@example.test", NULL, __LINE__);
}

static void test_accept_idn(void)
{
	ACCEPT("hans@münchen.de", "hans@xn--mnchen-3ya.de");
	ACCEPT_KEY("Hans@MÜNCHEN.DE", "Hans@xn--mnchen-3ya.de",
	           "hans@xn--mnchen-3ya.de");
	/* Already punycode: plain LDH, passed through. */
	ACCEPT("hans@xn--mnchen-3ya.de", "hans@xn--mnchen-3ya.de");
	ACCEPT("x@XN--MNCHEN-3YA.DE", "x@xn--mnchen-3ya.de");
	/* IDNA2008 non-transitional: ß is kept, not mapped to "ss". */
	ACCEPT("x@straße.de", "x@xn--strae-oqa.de");
	/* CJK with the ASCII dot and each full-width dot (U+3002, U+FF0E,
	 * U+FF61) as label separator. */
	ACCEPT("user@例子.测试", "user@xn--fsqu00a.xn--0zwm56d");
	ACCEPT("user@例子。测试", "user@xn--fsqu00a.xn--0zwm56d");
	ACCEPT("user@例子．测试", "user@xn--fsqu00a.xn--0zwm56d");
	ACCEPT("user@例子｡测试", "user@xn--fsqu00a.xn--0zwm56d");
	ACCEPT("user@mail。例子。测试", "user@mail.xn--fsqu00a.xn--0zwm56d");
	/* ASCII labels with a full-width dot take the IDN path and come out
	 * plain. */
	ACCEPT("user@example。test", "user@example.test");
	ACCEPT_KEY("User@EXAMPLE.测试", "User@example.xn--0zwm56d",
	           "user@example.xn--0zwm56d");
	/* Trimming still applies around an IDN. */
	ACCEPT("\xe3\x80\x80user@例子。测试\xe3\x80\x80",
	       "user@xn--fsqu00a.xn--0zwm56d");
}

static void test_accept_limits(void)
{
	char local[80], dom[300], in[400], norm[400];

	/* 64-octet local part: the RFC 5321 4.5.3.1.1 maximum. */
	fill(local, 'l', 64);
	snprintf(in, sizeof in, "%s@example.test", local);
	ACCEPT_S(in, in);

	/* 63-octet labels, first and last. */
	fill(dom, 'd', 63);
	snprintf(in, sizeof in, "x@%s.test", dom);
	ACCEPT_S(in, in);
	snprintf(in, sizeof in, "x@example.%s", dom);
	ACCEPT_S(in, in);

	/* 254 octets in all: 64 + '@' + 189. */
	domain_of(dom, 189);
	CU_ASSERT_EQUAL(strlen(dom), 189);
	snprintf(in, sizeof in, "%s@%s", fill(local, 'l', 64), dom);
	CU_ASSERT_EQUAL(strlen(in), 254);
	ACCEPT_S(in, in);

	/* A 253-octet domain with a short local part is too long in total
	 * (255), but the domain itself is legal: see the normalise test. And
	 * uppercase in a maximal address still fits after lowercasing. */
	domain_of(dom, 189);
	for (size_t i = 0; dom[i] != '\0'; i++)
		if (dom[i] != '.')
			dom[i] = (char)(dom[i] - 'a' + 'A');
	snprintf(in, sizeof in, "%s@%s", fill(local, 'L', 64), dom);
	domain_of(dom, 189);
	snprintf(norm, sizeof norm, "%s@%s", local, dom);
	ACCEPT_S(in, norm);
}

/* ---- refused --------------------------------------------------------- */

static void test_refuse_empty(void)
{
	REFUSE("", "empty");
	REFUSE("   ", "empty");
	REFUSE("\t\r\n", "empty");
	REFUSE("\xe3\x80\x80\xc2\xa0", "empty");
	refuse(NULL, 0, "empty", __LINE__);
}

static void test_refuse_at(void)
{
	REFUSE("bobexample.test", "missing @");
	REFUSE("bob＠example.test", "U+FF20");
	REFUSE("bob@alice@example.test", "more than one @");
	REFUSE("bob@example.test@", "more than one @");
	REFUSE("@example.test", "empty local part");
	REFUSE("bob@", "empty domain");
	REFUSE("bob@   ", "empty domain");
	REFUSE("@", "empty local part");
}

static void test_refuse_local(void)
{
	char local[80], in[200];

	REFUSE(".bob@example.test", "local part starts with a dot");
	REFUSE("bob.@example.test", "local part ends with a dot");
	REFUSE("bo..b@example.test", "consecutive dots in local part");
	REFUSE(".@example.test", "local part starts with a dot");
	REFUSE("bob,smith@example.test", "invalid character ',' in local part");
	REFUSE("bob smith@example.test", "invalid character ' ' in local part");
	REFUSE("bob @example.test", "invalid character ' ' in local part");
	REFUSE("bob(x)@example.test", "invalid character '(' in local part");
	REFUSE("bob;@example.test", "invalid character ';' in local part");
	REFUSE("<bob@example.test>", "invalid character '<' in local part");
	REFUSE("bob\\x@example.test", "invalid character '\\' in local part");
	REFUSE("b\x01ob@example.test", "invalid character 0x01 in local part");
	REFUSE("b\x7fob@example.test", "invalid character 0x7F in local part");
	REFUSE("b\0ob@example.test", "invalid character 0x00 in local part");
	REFUSE("bob\xe3\x80\x80smith@example.test", "U+3000");
	REFUSE("bob\xc2\xa0smith@example.test", "U+00A0");
	REFUSE("\"a b\"@example.test", "quoted");
	REFUSE("\"a@b\"@example.test", "quoted");
	REFUSE("a\"b@example.test", "invalid character '\"' in local part");
	/* EAI (RFC 6531): needs SMTPUTF8 on every hop. */
	REFUSE("用户@example.test", "SMTPUTF8");
	REFUSE("josé@example.test", "SMTPUTF8");
	REFUSE("bob\xff@example.test", "SMTPUTF8");

	fill(local, 'l', 65);
	snprintf(in, sizeof in, "%s@example.test", local);
	REFUSE_S(in, "local part longer than 64 octets");
}

static void test_refuse_domain(void)
{
	REFUSE("bob@example", "domain has a single label");
	REFUSE("bob@localhost", "domain has a single label");
	REFUSE("bob@例子", "domain has a single label");
	REFUSE("bob@example.test.", "domain ends with a dot");
	REFUSE("bob@例子。测试。", "domain ends with a dot");
	REFUSE("bob@.example.test", "domain starts with a dot");
	REFUSE("bob@example..test", "consecutive dots in domain");
	REFUSE("bob@-example.test", "label starts with a hyphen");
	REFUSE("bob@mail.-example.test", "label starts with a hyphen");
	REFUSE("bob@example-.test", "label ends with a hyphen");
	REFUSE("bob@example.test-", "label ends with a hyphen");
	REFUSE("bob@example.-test", "label starts with a hyphen");
	REFUSE("bob@1.2.3.4", "numeric top-level domain (bare IP?)");
	REFUSE("bob@example.123", "numeric top-level domain");
	REFUSE("bob@[127.0.0.1]", "address literals are not accepted");
	REFUSE("bob@[IPv6:::1]", "address literals are not accepted");
	REFUSE("bob@exa_mple.test", "invalid character '_' in domain");
	REFUSE("bob@exa mple.test", "invalid character ' ' in domain");
	REFUSE("bob@example.test,", "invalid character ',' in domain");
	REFUSE("bob@exa\0mple.test", "invalid character 0x00 in domain");
	REFUSE("bob@exa\tmple.test", "invalid character 0x09 in domain");
	REFUSE("bob@例子\xe3\x80\x80测试.test", "U+3000");
	REFUSE("bob@例\0子.test", "invalid character 0x00 in domain");
}

static void test_refuse_idn(void)
{
	/* libidn2's own reasons come through after a common prefix. */
	REFUSE("bob@-x.测试", "invalid international domain");
	REFUSE("bob@-x.测试", "hyphen");
	REFUSE("bob@xn--zz.测试", "invalid international domain");
	REFUSE("bob@\xff\xfe.test", "invalid international domain");
	REFUSE("bob@例子.测试\xc3", "invalid international domain");
	/* After IDNA, the LDH rules still hold. */
	REFUSE("bob@例子。测_试", "'_'");
}

static void test_refuse_limits(void)
{
	char local[80], dom[300], in[400];

	/* 64-octet label. */
	fill(dom, 'd', 64);
	snprintf(in, sizeof in, "x@%s.test", dom);
	REFUSE_S(in, "domain label longer than 63 octets");
	snprintf(in, sizeof in, "x@example.%s", dom);
	REFUSE_S(in, "domain label longer than 63 octets");

	/* 255 octets in all: 64 + '@' + 190. */
	domain_of(dom, 190);
	snprintf(in, sizeof in, "%s@%s", fill(local, 'l', 64), dom);
	CU_ASSERT_EQUAL(strlen(in), 255);
	REFUSE_S(in, "address longer than 254 octets");
	/* ... and with the extra octet in the local part instead. */
	domain_of(dom, 189);
	snprintf(in, sizeof in, "%s@%s", fill(local, 'l', 65), dom);
	REFUSE_S(in, "local part longer than 64 octets");

	/* 254-octet domain. */
	domain_of(dom, 254);
	snprintf(in, sizeof in, "x@%s", dom);
	REFUSE_S(in, "domain longer than 253 octets");
	/* 253-octet domain: legal domain, but 255 in all. */
	domain_of(dom, 253);
	snprintf(in, sizeof in, "x@%s", dom);
	REFUSE_S(in, "address longer than 254 octets");
}

static void test_detail_buffer(void)
{
	struct addr a;
	char small[8];

	/* Truncated but terminated; NULL/0 detail is allowed. */
	memset(small, 'Z', sizeof small);
	CU_ASSERT_EQUAL(addr_parse("bob", 3, &a, small, sizeof small), -1);
	CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
	CU_ASSERT_EQUAL(strncmp(small, "missing", 7), 0);
	CU_ASSERT_EQUAL(addr_parse("bob", 3, &a, NULL, 0), -1);
	CU_ASSERT_EQUAL(addr_parse("bob@例子.测试", strlen("bob@例子.测试"),
	                           &a, NULL, 0), 0);
	CU_ASSERT_EQUAL(addr_parse("bob@-x.测试", strlen("bob@-x.测试"), &a,
	                           NULL, 0), -1);
}

/* ---- addr_domain_normalise ------------------------------------------- */

/* addr_domain_normalise(in) must give 'want' (or fail with 'err'). */
static void domain_case(const char *in, const char *want, const char *err,
                        unsigned line)
{
	char out[ADDR_DOMAIN_MAX + 1], detail[128] = "";
	int rc;

	memset(out, 'Z', sizeof out);
	rc = addr_domain_normalise(in, strlen(in), out, sizeof out, detail,
	                           sizeof detail);
	if (want != NULL) {
		check(rc == 0, line, "normalise(\"%s\") ok (detail: %s)", in,
		      detail);
		check(rc == 0 && strcmp(out, want) == 0, line,
		      "normalise(\"%s\") = \"%.*s\", want \"%s\"", in,
		      (int)sizeof out, out, want);
	} else {
		check(rc == -1, line, "normalise(\"%s\") refused", in);
		check(strstr(detail, err) != NULL, line,
		      "normalise(\"%s\") detail \"%s\" mentions \"%s\"", in,
		      detail, err);
	}
}
#define DOMAIN_OK(in, want) domain_case(in, want, NULL, __LINE__)
#define DOMAIN_BAD(in, err) domain_case(in, NULL, err, __LINE__)

static void test_domain_normalise(void)
{
	char dom[300], long_dom[1100];
	char out[16], detail[128];

	DOMAIN_OK("example.test", "example.test");
	DOMAIN_OK("  Example.TEST \r\n", "example.test");
	DOMAIN_OK("\xe3\x80\x80mail.example.test\xc2\xa0", "mail.example.test");
	DOMAIN_OK("münchen.de", "xn--mnchen-3ya.de");
	DOMAIN_OK("例子。测试", "xn--fsqu00a.xn--0zwm56d");
	DOMAIN_OK("XN--FSQU00A.xn--0zwm56d", "xn--fsqu00a.xn--0zwm56d");
	DOMAIN_BAD("", "empty domain");
	DOMAIN_BAD("  ", "empty domain");
	DOMAIN_BAD("localhost", "single label");
	DOMAIN_BAD("example.test.", "ends with a dot");
	DOMAIN_BAD("-example.test", "starts with a hyphen");
	DOMAIN_BAD("10.0.0.1", "numeric top-level domain");
	DOMAIN_BAD("[10.0.0.1]", "address literals");
	DOMAIN_BAD("bob@example.test", "invalid character '@' in domain");
	DOMAIN_BAD("-x.测试", "invalid international domain");

	/* 253 octets is the most a domain may have; 254 is refused. */
	domain_of(dom, 253);
	DOMAIN_OK(dom, dom);
	domain_of(dom, 254);
	DOMAIN_BAD(dom, "domain longer than 253 octets");
	/* A 96-character CJK label is too long once in punycode (libidn2
	 * says so); over 1024 octets of UTF-8 is refused before IDNA. */
	dom[0] = '\0';
	while (strlen(dom) < 288)
		strcat(dom, "例");
	strcat(dom, ".de");
	DOMAIN_BAD(dom, "invalid international domain");
	long_dom[0] = '\0';
	while (strlen(long_dom) < 1050)
		strcat(long_dom, "例");
	strcat(long_dom, ".de");
	DOMAIN_BAD(long_dom, "domain longer than 253 octets");

	/* Output buffer: the exact size fits, one less does not. */
	memset(out, 'Z', sizeof out);
	CU_ASSERT_EQUAL(addr_domain_normalise("Example.TEST", 12, out, 13,
	                                      detail, sizeof detail), 0);
	CU_ASSERT_STRING_EQUAL(out, "example.test");
	detail[0] = '\0';
	CU_ASSERT_EQUAL(addr_domain_normalise("Example.TEST", 12, out, 12,
	                                      detail, sizeof detail), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(detail, "output buffer"));
	CU_ASSERT_EQUAL(addr_domain_normalise("example.test", 12, out, 0,
	                                      detail, sizeof detail), -1);
	/* Not NUL-terminated input. */
	CU_ASSERT_EQUAL(addr_domain_normalise("a.testXYZ", 6, out, sizeof out,
	                                      detail, sizeof detail), 0);
	CU_ASSERT_STRING_EQUAL(out, "a.test");
}

/* ---- suppress_load --------------------------------------------------- */

/* 1 when 'addr' parses and its key is in the set. */
static int suppressed(const struct strset *set, const char *addr)
{
	struct addr a;

	if (addr_parse(addr, strlen(addr), &a, NULL, 0) != 0)
		return 0;
	return strset_has(set, a.key, a.len);
}

static void test_suppress_csv(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	n = suppress_load(set, SUPPRESS_DIR "unsubscribes.csv", &skipped, err,
	                  sizeof err);
	check(n == 6, __LINE__, "unsubscribes.csv: %ld added (err: %s)", n,
	      err);
	/* "not-an-address" and the one-field row "Short"; the ",," row and
	 * the blank line are not entries. */
	CU_ASSERT_EQUAL(skipped, 2);
	CU_ASSERT_EQUAL(strset_count(set), 6);
	/* Stored by key: any case of the address matches. */
	CU_ASSERT_TRUE(strset_has(set, "bob@example.test", 16));
	CU_ASSERT_TRUE(suppressed(set, "Bob@Example.TEST"));
	CU_ASSERT_TRUE(suppressed(set, "BOB@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "ann.lee@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "Carol@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "frank@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "grace@münchen.de"));
	CU_ASSERT_TRUE(strset_has(set, "grace@xn--mnchen-3ya.de", 23));
	/* The last record has no line end. */
	CU_ASSERT_TRUE(suppressed(set, "heidi@example.test"));
	/* Other columns are not addresses and were not added raw. */
	CU_ASSERT_FALSE(strset_has(set, "Smith, Bob", 10));
	CU_ASSERT_FALSE(strset_has(set, "2024-01-02", 10));
	CU_ASSERT_FALSE(strset_has(set, "Bob@Example.TEST", 16));
	CU_ASSERT_FALSE(suppressed(set, "dave@example.test"));

	/* Loading again adds nothing new. */
	n = suppress_load(set, SUPPRESS_DIR "unsubscribes.csv", NULL, err,
	                  sizeof err);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(strset_count(set), 6);
	strset_free(set);
}

static void test_suppress_lines(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	n = suppress_load(set, SUPPRESS_DIR "list.txt", &skipped, err,
	                  sizeof err);
	check(n == 4, __LINE__, "list.txt: %ld added (err: %s)", n, err);
	/* "not an address" only: the BOM'd first line is a comment, CR LF
	 * endings are blanks, "BOB@EXAMPLE.TEST" is a duplicate. */
	CU_ASSERT_EQUAL(skipped, 1);
	CU_ASSERT_EQUAL(strset_count(set), 4);
	CU_ASSERT_TRUE(suppressed(set, "alice@example.test"));
	CU_ASSERT_TRUE(strset_has(set, "alice@example.test", 18));
	CU_ASSERT_TRUE(suppressed(set, "Bob@Example.TEST"));
	CU_ASSERT_TRUE(strset_has(set, "bob@example.test", 16));
	CU_ASSERT_TRUE(suppressed(set, "carol@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "erin@例子.测试"));
	CU_ASSERT_TRUE(strset_has(set, "erin@xn--fsqu00a.xn--0zwm56d", 28));
	CU_ASSERT_FALSE(suppressed(set, "dave@example.test"));
	CU_ASSERT_FALSE(suppressed(set, "zoe@example.test"));
	strset_free(set);
}

static void test_suppress_bom(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	/* BOM right before an address. */
	n = suppress_load(set, SUPPRESS_DIR "bom_first.txt", &skipped, err,
	                  sizeof err);
	check(n == 1, __LINE__, "bom_first.txt: %ld added (err: %s)", n, err);
	CU_ASSERT_EQUAL(skipped, 0);
	CU_ASSERT_TRUE(suppressed(set, "zoe@example.test"));
	/* BOM right before a CSV header: still seen as "email". */
	n = suppress_load(set, SUPPRESS_DIR "bom.csv", &skipped, err,
	                  sizeof err);
	check(n == 1, __LINE__, "bom.csv: %ld added (err: %s)", n, err);
	CU_ASSERT_EQUAL(skipped, 0);
	CU_ASSERT_TRUE(suppressed(set, "user@example.test"));
	CU_ASSERT_EQUAL(strset_count(set), 2);
	strset_free(set);
}

static void test_suppress_commented_csv(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	/* Leading comment and blank line, then " Email " in column 2, and
	 * a row shorter than the header that still has the column. */
	n = suppress_load(set, SUPPRESS_DIR "commented.csv", &skipped, err,
	                  sizeof err);
	check(n == 2, __LINE__, "commented.csv: %ld added (err: %s)", n, err);
	CU_ASSERT_EQUAL(skipped, 0);
	CU_ASSERT_TRUE(suppressed(set, "x@example.test"));
	CU_ASSERT_TRUE(suppressed(set, "y@example.test"));
	CU_ASSERT_EQUAL(strset_count(set), 2);
	strset_free(set);
}

static void test_suppress_empty(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(suppress_load(set, SUPPRESS_DIR "empty.txt", &skipped,
	                              err, sizeof err), 0);
	CU_ASSERT_EQUAL(skipped, 0);
	CU_ASSERT_EQUAL(strset_count(set), 0);
	strset_free(set);
}

static void test_suppress_errors(void)
{
	struct strset *set = strset_new();
	char err[512] = "";
	size_t skipped = 999;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(suppress_load(set, SUPPRESS_DIR "missing.txt",
	                              &skipped, err, sizeof err), -1);
	check(strstr(err, SUPPRESS_DIR "missing.txt") != NULL &&
	      strstr(err, "No such file") != NULL, __LINE__,
	      "missing file error \"%s\" names the path and the reason", err);
	/* *skipped untouched on error. */
	CU_ASSERT_EQUAL(skipped, 999);

	/* A directory opens but cannot be read. */
	err[0] = '\0';
	CU_ASSERT_EQUAL(suppress_load(set, SUPPRESS_DIR, NULL, err,
	                              sizeof err), -1);
	check(strstr(err, SUPPRESS_DIR) != NULL, __LINE__,
	      "directory error \"%s\" names the path", err);
	CU_ASSERT_EQUAL(strset_count(set), 0);
	strset_free(set);
}

/* ---- suppress_watch ---------------------------------------------------- */

/* Append raw bytes to path. */
static void append(const char *path, const char *s)
{
	FILE *f = fopen(path, "ab");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(s, f);
	fclose(f);
}

/* A CSV suppression file followed as it grows: only complete lines are
 * read, each once; a replaced file is read from its start. */
static void test_suppress_watch_csv(void)
{
	char dir[] = "/tmp/edm-watch-XXXXXX", path[64], err[512] = "";
	struct strset *set = strset_new();
	struct suppress_watch *w;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.csv", dir);
	w = suppress_watch_new(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	/* the first poll wants the file */
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), -1);
	check(strstr(err, path) != NULL, __LINE__, "error \"%s\" names the file", err);
	append(path, "\xef\xbb\xbfreason,Email\nunsubscribe,a@example.com\n");
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 1);
	CU_ASSERT_TRUE(suppressed(set, "A@example.com"));
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 0);
	/* half a line waits for its end */
	append(path, "bounce,b@exa");
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 0);
	CU_ASSERT_FALSE(suppressed(set, "b@example.com"));
	append(path, "mple.com\ncomplaint,\"c@example.com\"\nx,not an address\n");
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 2);
	CU_ASSERT_TRUE(suppressed(set, "b@example.com"));
	CU_ASSERT_TRUE(suppressed(set, "c@example.com"));
	/* replaced by a plain list: read again from its start */
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 0);
	append(path, "# list\nd@example.com\na@example.com\n");
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 1);
	CU_ASSERT_TRUE(suppressed(set, "d@example.com"));
	CU_ASSERT_EQUAL(strset_count(set), 4);
	suppress_watch_free(w);
	suppress_watch_free(NULL);
	unlink(path);
	rmdir(dir);
	strset_free(set);
}

/* What suppress_append writes, a watcher reads (the edm track -> edm send
 * path), including into a file with a header written by someone else. */
static void test_suppress_watch_append(void)
{
	char dir[] = "/tmp/edm-watch-XXXXXX", path[64], err[512] = "";
	struct strset *set = strset_new();
	struct suppress_watch *w;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.csv", dir);
	append(path, "");
	w = suppress_watch_new(path);
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 0);
	CU_ASSERT_EQUAL(suppress_append(path, "Zed@Example.com", "unsubscribe", 1,
	                                "spring", err, sizeof err), 0);
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 1);
	CU_ASSERT_TRUE(suppressed(set, "zed@example.com"));
	CU_ASSERT_EQUAL(suppress_append(path, "y@example.com", "bounce:bad-mailbox", 2,
	                                "spring", err, sizeof err), 0);
	CU_ASSERT_EQUAL(suppress_watch_poll(w, set, err, sizeof err), 1);
	CU_ASSERT_TRUE(suppressed(set, "y@example.com"));
	suppress_watch_free(w);
	unlink(path);
	rmdir(dir);
	strset_free(set);
}

static const struct test_case tests[] = {
	{"accept_plain", test_accept_plain},
	{"accept_atext_specials", test_accept_atext_specials},
	{"accept_case", test_accept_case},
	{"accept_trim", test_accept_trim},
	{"accept_idn", test_accept_idn},
	{"accept_limits", test_accept_limits},
	{"refuse_empty", test_refuse_empty},
	{"refuse_at", test_refuse_at},
	{"refuse_local", test_refuse_local},
	{"refuse_domain", test_refuse_domain},
	{"refuse_idn", test_refuse_idn},
	{"refuse_limits", test_refuse_limits},
	{"detail_buffer", test_detail_buffer},
	{"domain_normalise", test_domain_normalise},
	{"suppress_csv", test_suppress_csv},
	{"suppress_lines", test_suppress_lines},
	{"suppress_bom", test_suppress_bom},
	{"suppress_commented_csv", test_suppress_commented_csv},
	{"suppress_empty", test_suppress_empty},
	{"suppress_errors", test_suppress_errors},
	{"suppress_watch_csv", test_suppress_watch_csv},
	{"suppress_watch_append", test_suppress_watch_append},
	{0},
};

int main(void)
{
	return test_run("address", tests);
}
