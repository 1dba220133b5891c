/*
 * test_smtp_reply.c - the SMTP reply parser (engine/smtp_reply.h): lines
 * and multi-line replies from every byte split, enhanced status codes,
 * text sanitising, the line and reply caps, malformed input.
 */
#include "cunit_main.h"

#include "smtp_reply.h"

#include <stdlib.h>
#include <string.h>

/* Parse one reply from s fed in pieces of at most 'step' bytes (0 = all
 * at once). Returns the status; the reply text is copied to text. */
static int parse_steps(const char *s, size_t n, size_t step, int *code,
                       char *enh, char *text, size_t tcap, size_t *consumed)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	char err[200] = "";
	size_t off = 0, used, k;
	int rc = SMTP_REPLY_MORE;

	smtp_reply_parser_init(&p);
	while (off < n) {
		k = step == 0 || n - off < step ? n - off : step;
		rc = smtp_reply_parse(&p, s + off, k, &used, &r, err, sizeof err);
		off += used;
		if (rc != SMTP_REPLY_MORE)
			break;
	}
	if (rc == SMTP_REPLY_DONE) {
		*code = r.code;
		snprintf(enh, 16, "%s", r.enhanced);
		snprintf(text, tcap, "%s", r.text);
	} else if (rc == SMTP_REPLY_ERROR) {
		snprintf(text, tcap, "%s", err);
	}
	*consumed = off;
	smtp_reply_parser_free(&p);
	return rc;
}

/* One reply parsed whole: code, enhanced, text as expected. in is a
 * string literal (it may hold NUL bytes). */
#define expect_reply(line, in, code, enh, text) \
	expect_reply_n(line, in, sizeof(in) - 1, code, enh, text)
static void expect_reply_n(unsigned line, const char *in, size_t n, int code,
                           const char *enh, const char *text)
{
	char e[16] = "", t[8192] = "";
	size_t used;
	int c = -1;
	int rc = parse_steps(in, n, 0, &c, e, t, sizeof t, &used);

	check(rc == SMTP_REPLY_DONE, line, "status %d for [%s] (%s)", rc, in, t);
	check(c == code, line, "code %d, want %d", c, code);
	check(strcmp(e, enh) == 0, line, "enhanced [%s], want [%s]", e, enh);
	check(strcmp(t, text) == 0, line, "text [%s], want [%s]", t, text);
	check(used == n, line, "used %zu of %zu", used, n);
}

static void test_single_line(void)
{
	expect_reply(__LINE__, "250 OK\r\n", 250, "", "OK");
	expect_reply(__LINE__, "220\r\n", 220, "", "");
	expect_reply(__LINE__, "354 End data with <CR><LF>.<CR><LF>\r\n", 354,
	             "", "End data with <CR><LF>.<CR><LF>");
	/* bare LF ends a line too; trailing blanks are trimmed */
	expect_reply(__LINE__, "250 fine  \n", 250, "", "fine");
}

static void test_multi_line_join(void)
{
	expect_reply(__LINE__,
	             "550-5.1.1 The email account that you tried to reach does\r\n"
	             "550-5.1.1 not exist. Please try\r\n"
	             "550 5.1.1 double-checking. x1si gsmtp\r\n",
	             550, "5.1.1", "The email account that you tried to reach "
	             "does not exist. Please try double-checking. x1si gsmtp");
	/* empty continuation lines add no double space */
	expect_reply(__LINE__, "250-first\r\n250-\r\n250 last\r\n", 250, "",
	             "first last");
	/* a different enhanced code on a later line stays in the text */
	expect_reply(__LINE__, "451-4.7.1 a\r\n451 4.3.0 b\r\n", 451, "4.7.1",
	             "a 4.3.0 b");
}

static void test_enhanced_codes(void)
{
	expect_reply(__LINE__, "550 5.1.1 user unknown\r\n", 550, "5.1.1",
	             "user unknown");
	expect_reply(__LINE__, "250 2.0.0\r\n", 250, "2.0.0", "");
	expect_reply(__LINE__, "451 4.7.650 rate limited\r\n", 451, "4.7.650",
	             "rate limited");
	expect_reply(__LINE__, "550 5.7.509 DMARC\r\n", 550, "5.7.509", "DMARC");
	expect_reply(__LINE__, "550 5.1.1\tx\r\n", 550, "5.1.1", "x");
	/* class must match the reply code's first digit */
	expect_reply(__LINE__, "550 4.1.1 x\r\n", 550, "", "4.1.1 x");
	/* class 3 does not exist in RFC 3463 */
	expect_reply(__LINE__, "354 3.0.0 go\r\n", 354, "", "3.0.0 go");
	/* more than three digits, or glued text, is no code */
	expect_reply(__LINE__, "550 5.1.1234 x\r\n", 550, "", "5.1.1234 x");
	expect_reply(__LINE__, "550 5.1.1x y\r\n", 550, "", "5.1.1x y");
	expect_reply(__LINE__, "550 5.1 y\r\n", 550, "", "5.1 y");
	expect_reply(__LINE__, "550 Mailbox not found\r\n", 550, "",
	             "Mailbox not found");
}

static void test_enhanced_parse_direct(void)
{
	char out[16];

	CU_ASSERT_EQUAL(smtp_enhanced_parse("5.1.1 x", 7, 550, out), 5);
	CU_ASSERT_STRING_EQUAL(out, "5.1.1");
	CU_ASSERT_EQUAL(smtp_enhanced_parse("4.7.650", 7, 0, out), 7);
	CU_ASSERT_STRING_EQUAL(out, "4.7.650");
	CU_ASSERT_EQUAL(smtp_enhanced_parse("4.7.650", 7, 550, NULL), 0);
	CU_ASSERT_EQUAL(smtp_enhanced_parse("2.0", 3, 250, NULL), 0);
	CU_ASSERT_EQUAL(smtp_enhanced_parse("6.0.0", 5, 0, NULL), 0);
	CU_ASSERT_EQUAL(smtp_enhanced_parse("5..1", 4, 0, NULL), 0);
}

/* The same multi-line reply fed in two pieces at every split point and one
 * byte at a time gives the same result. */
static void test_every_split(void)
{
	static const char in[] =
		"452-4.2.2 The email account that you tried to reach is over\r\n"
		"452-4.2.2 quota. Please direct\r\n"
		"452 4.2.2 the recipient to support. caf\xc3\xa9\r\n";
	const char *want = "The email account that you tried to reach is over "
	                   "quota. Please direct the recipient to support. "
	                   "caf\xc3\xa9";
	size_t n = sizeof in - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		struct smtp_reply_parser p;
		struct smtp_reply r;
		char err[200];
		size_t used1 = 0, used2 = 0;
		int rc1, rc2 = SMTP_REPLY_MORE;

		smtp_reply_parser_init(&p);
		rc1 = smtp_reply_parse(&p, in, cut, &used1, &r, err, sizeof err);
		if (rc1 == SMTP_REPLY_MORE)
			rc2 = smtp_reply_parse(&p, in + cut, n - cut, &used2, &r,
			                       err, sizeof err);
		check((cut < n && rc1 == SMTP_REPLY_MORE && used1 == cut &&
		       rc2 == SMTP_REPLY_DONE && used2 == n - cut) ||
		      (cut == n && rc1 == SMTP_REPLY_DONE), __LINE__,
		      "cut %zu: rc %d/%d used %zu/%zu", cut, rc1, rc2, used1,
		      used2);
		if (rc1 == SMTP_REPLY_DONE || rc2 == SMTP_REPLY_DONE) {
			check(r.code == 452 && strcmp(r.enhanced, "4.2.2") == 0 &&
			      strcmp(r.text, want) == 0, __LINE__,
			      "cut %zu: %d %s [%s]", cut, r.code, r.enhanced,
			      r.text);
		}
		smtp_reply_parser_free(&p);
	}
	{
		int code = 0;
		char e[16], t[512];
		size_t used;

		CU_ASSERT_EQUAL(parse_steps(in, n, 1, &code, e, t, sizeof t,
		                            &used), SMTP_REPLY_DONE);
		CU_ASSERT_EQUAL(code, 452);
		CU_ASSERT_STRING_EQUAL(t, want);
	}
}

/* Two replies in one buffer: the parser stops after the first. */
static void test_stops_after_reply(void)
{
	static const char in[] = "250 one\r\n251 two\r\n";
	struct smtp_reply_parser p;
	struct smtp_reply r;
	char err[200];
	size_t used;

	smtp_reply_parser_init(&p);
	CU_ASSERT_EQUAL(smtp_reply_parse(&p, in, sizeof in - 1, &used, &r, err,
	                                 sizeof err), SMTP_REPLY_DONE);
	CU_ASSERT_EQUAL(used, 9);
	CU_ASSERT_EQUAL(r.code, 250);
	CU_ASSERT_EQUAL(smtp_reply_parse(&p, in + used, sizeof in - 1 - used,
	                                 &used, &r, err, sizeof err),
	                SMTP_REPLY_DONE);
	CU_ASSERT_EQUAL(r.code, 251);
	CU_ASSERT_STRING_EQUAL(r.text, "two");
	smtp_reply_parser_free(&p);
}

static void test_lines_kept(void)
{
	static const char in[] = "250-mx.example\r\n250-SIZE 100\r\n250 8BITMIME\r\n";
	struct smtp_reply_parser p;
	struct smtp_reply r;
	char err[200];
	size_t used, len;
	const char *l;

	smtp_reply_parser_init(&p);
	CU_ASSERT_EQUAL(smtp_reply_parse(&p, in, sizeof in - 1, &used, &r, err,
	                                 sizeof err), SMTP_REPLY_DONE);
	l = smtp_reply_lines(&p, &len);
	CU_ASSERT_EQUAL(len, strlen("mx.example\nSIZE 100\n8BITMIME\n"));
	CU_ASSERT_NSTRING_EQUAL(l, "mx.example\nSIZE 100\n8BITMIME\n", len);
	CU_ASSERT_STRING_EQUAL(r.text, "mx.example SIZE 100 8BITMIME");
	smtp_reply_parser_free(&p);
}

static void test_sanitise(void)
{
	/* Latin-1 e-acute, valid Chinese, a control char, an overlong '/',
	 * a lone continuation byte, a truncated 3-byte sequence */
	expect_reply(__LINE__,
	             "550 caf\xe9 \xe4\xbd\xa0\xe5\xa5\xbd \x01 \xc0\xaf \x80 "
	             "\xe4\xbd!\r\n", 550, "",
	             "caf\\xE9 \xe4\xbd\xa0\xe5\xa5\xbd \\x01 \\xC0\\xAF \\x80 "
	             "\\xE4\\xBD!");
	/* a NUL and a bare CR inside a line, DEL */
	expect_reply(__LINE__, "550 a\0b\rc\x7f\r\n", 550, "",
	             "a\\x00b\\x0Dc\\x7F");
}

static void test_line_cap(void)
{
	char *in = malloc(SMTP_REPLY_LINE_MAX + 64), e[16], t[256];
	size_t used;
	int code = 0, rc;

	if (in == NULL) {
		CU_FAIL("out of memory");
		return;
	}
	/* exactly 4096 octets with the CRLF: accepted */
	memcpy(in, "250 ", 4);
	memset(in + 4, 'a', SMTP_REPLY_LINE_MAX - 6);
	memcpy(in + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
	rc = parse_steps(in, SMTP_REPLY_LINE_MAX, 0, &code, e, t, sizeof t,
	                 &used);
	CU_ASSERT_EQUAL(rc, SMTP_REPLY_DONE);
	/* one more: error, however it is split, without waiting for the LF */
	memcpy(in, "250 ", 4);
	memset(in + 4, 'a', SMTP_REPLY_LINE_MAX - 5);
	memcpy(in + SMTP_REPLY_LINE_MAX - 1, "\r\n", 2);
	rc = parse_steps(in, SMTP_REPLY_LINE_MAX + 1, 0, &code, e, t, sizeof t,
	                 &used);
	CU_ASSERT_EQUAL(rc, SMTP_REPLY_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "reply line over 4096 bytes"));
	rc = parse_steps(in, SMTP_REPLY_LINE_MAX - 1, 1000, &code, e, t,
	                 sizeof t, &used);
	CU_ASSERT_EQUAL(rc, SMTP_REPLY_MORE);
	rc = parse_steps(in, SMTP_REPLY_LINE_MAX + 1, 1000, &code, e, t,
	                 sizeof t, &used);
	CU_ASSERT_EQUAL(rc, SMTP_REPLY_ERROR);
	free(in);
}

static void test_reply_cap(void)
{
	/* 17 lines of 4000 octets: 68000 > 65536 */
	size_t ln = 4000, n = 17 * ln, used;
	char *in = malloc(n), e[16], t[256];
	int code = 0;

	for (size_t i = 0; i < 17; i++) {
		char *l = in + i * ln;

		memcpy(l, i == 16 ? "250 " : "250-", 4);
		memset(l + 4, 'x', ln - 6);
		memcpy(l + ln - 2, "\r\n", 2);
	}
	CU_ASSERT_EQUAL(parse_steps(in, n, 0, &code, e, t, sizeof t, &used),
	                SMTP_REPLY_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "reply over 65536 bytes"));
	/* 16 of them fit */
	memcpy(in + 15 * ln, "250 ", 4);
	CU_ASSERT_EQUAL(parse_steps(in, 16 * ln, 0, &code, e, t, sizeof t,
	                            &used), SMTP_REPLY_DONE);
	free(in);
}

static void expect_error(unsigned line, const char *in, const char *what)
{
	char e[16], t[512] = "";
	size_t used;
	int code = 0;
	int rc = parse_steps(in, strlen(in), 0, &code, e, t, sizeof t, &used);

	check(rc == SMTP_REPLY_ERROR && strstr(t, what) != NULL, line,
	      "[%s]: rc %d, err [%s], want [%s]", in, rc, t, what);
}

static void test_malformed(void)
{
	expect_error(__LINE__, "hello\r\n", "malformed reply line \"hello\"");
	expect_error(__LINE__, "25\r\n", "malformed");
	expect_error(__LINE__, "2500 x\r\n", "malformed");
	expect_error(__LINE__, "650 x\r\n", "malformed");
	expect_error(__LINE__, "150 x\r\n", "malformed");
	expect_error(__LINE__, "25a x\r\n", "malformed");
	expect_error(__LINE__, "250_x\r\n", "malformed");
	expect_error(__LINE__, "\r\n", "malformed");
	expect_error(__LINE__, "250-a\r\n251 b\r\n",
	             "different codes (250, then 251)");
}

static const struct test_case tests[] = {
	{ "single_line", test_single_line },
	{ "multi_line_join", test_multi_line_join },
	{ "enhanced_codes", test_enhanced_codes },
	{ "enhanced_parse_direct", test_enhanced_parse_direct },
	{ "every_split", test_every_split },
	{ "stops_after_reply", test_stops_after_reply },
	{ "lines_kept", test_lines_kept },
	{ "sanitise", test_sanitise },
	{ "line_cap", test_line_cap },
	{ "reply_cap", test_reply_cap },
	{ "malformed", test_malformed },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("smtp_reply", tests);
}
