/*
 * test_dsn.c - the report parser (engine/dsn.h): one case per fixture of
 * tests/fixtures/dsn/ (RFC 3464 DSNs from Postfix, Gmail and Exchange, a
 * base64 delivery-status part, a delay, the text bounces of Postfix, Exim,
 * qmail, Exchange, Gmail, QQ and NetEase, ARF reports with the whole
 * original and with its headers only, auto-replies in English and Chinese,
 * garbage, a report nested in a gateway's multipart, ordinary mail), each
 * checking every field the parser extracts; then one case per rule (reply
 * splitting, dates, folding, RFC 2047, MIME damage, limits, strings made
 * valid UTF-8) and the robustness cases: every fixture cut at every byte
 * offset, random bytes and bit-flipped fixtures, each report's strings
 * checked (run under ASan+UBSan: no crash, no leak).
 */
#include "cunit_main.h"

#include "dsn.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX EDM_FIXTURES "/dsn/"

static const char *const fixtures[] = {
	"arf_abuse.eml", "arf_headers.eml", "autoreply_en.eml", "autoreply_zh.eml",
	"b64_status.eml", "delayed.eml", "exchange_ndr.eml", "exchange_text.eml",
	"exim.eml", "exim_delay.eml", "garbage.eml", "gmail.eml", "gmail_text.eml",
	"nested.eml", "netease.eml", "plain_mail.eml", "postfix_dsn.eml",
	"postfix_text.eml", "qmail.eml", "qq.eml",
};
#define NFIX (sizeof(fixtures) / sizeof(*fixtures))

#define VERP "bounces+kbjzgtbvvdyjzaltqxeakqtwp4wa@acme.example"

/* ---- helpers ---- */

/* Read a fixture (NULL on failure; *len its size). */
static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *fp;
	char *data = NULL;
	long n;

	snprintf(path, sizeof(path), FIX "%s", name);
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) != NULL) {
		if (fread(data, 1, (size_t)n, fp) != (size_t)n) {
			free(data);
			data = NULL;
		} else {
			data[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(fp);
	return data;
}

/* Parse a fixture into r; 0 or -1 (with a CUnit failure). */
static int parse_fixture(const char *name, struct dsn_report *r)
{
	size_t len = 0;
	char *data = slurp(name, &len);
	int rc;

	check(data != NULL, __LINE__, "cannot read fixture %s", name);
	if (data == NULL)
		return -1;
	rc = dsn_parse(data, len, NULL, r);
	check(rc == 0, __LINE__, "%s: dsn_parse returned %d", name, rc);
	free(data);
	return rc;
}

/* Parse a C string. */
static void parse_str(const char *msg, struct dsn_report *r)
{
	int rc = dsn_parse(msg, strlen(msg), NULL, r);

	check(rc == 0, __LINE__, "dsn_parse returned %d", rc);
}

/* Equal strings, NULL only equal to NULL. */
static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A string check that names the expression and both values. */
static void check_str_at(const char *got, const char *want, const char *expr,
                         unsigned line)
{
	check(same(got, want), line, "%s: got '%s', want '%s'", expr,
	      got ? got : "(null)", want ? want : "(null)");
}
#define check_str(got, want) check_str_at((got), (want), #got, __LINE__)
#define check_int(got, want) \
	check((long long)(got) == (long long)(want), __LINE__, "%s: got %lld, want %lld", \
	      #got, (long long)(got), (long long)(want))

/* 1 when the report's to list holds a. */
static int has_to(const struct dsn_report *r, const char *a)
{
	for (size_t i = 0; i < r->nto; i++)
		if (strcmp(r->to[i], a) == 0)
			return 1;
	return 0;
}

/* ---- one case per fixture ---- */

static void test_postfix_dsn(void)
{
	struct dsn_report r;
	const struct dsn_rcpt *x;

	if (parse_fixture("postfix_dsn.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_RFC3464);
	check_str(r.message_id, "20261103001507.4XyZ1k2mN3@relay.acme.example");
	check_str(r.subject, "Undelivered Mail Returned to Sender");
	check_str(r.from, "MAILER-DAEMON@relay.acme.example");
	check_int(r.date, 1793664907);   /* 2026-11-03 00:15:07 UTC */
	check_int(r.nto, 1);             /* To and Delivered-To, once */
	check(has_to(&r, VERP), __LINE__, "VERP address in to");
	check_str(r.reporting_mta, "relay.acme.example");
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		x = &r.rcpts[0];
		check_str(x->final_rcpt, "alice@example.com");
		check_str(x->orig_rcpt, "alice@example.com");
		check_int(x->action, DSN_ACTION_FAILED);
		check_str(x->status, "5.1.1");
		check_int(x->code, 550);
		check_str(x->enhanced, "5.1.1");
		check_str(x->text, "<alice@example.com>: Recipient address rejected: "
		          "User unknown in virtual mailbox table");
		check_str(x->diagnostic, "smtp; 550 5.1.1 <alice@example.com>: Recipient "
		          "address rejected: User unknown in virtual mailbox table");
		check_str(x->remote_mta, "mx.example.com");
	}
	check_int(r.has_original, 1);
	check_str(r.orig_message_id, "edm.1.3f2a9c0d11b7e845@acme.example");
	check_int(r.norig_to, 1);
	if (r.norig_to == 1)
		check_str(r.orig_to[0], "alice@example.com");
	check_str(r.orig_return_path, VERP);
	check_str(r.feedback_type, NULL);
	check_str(r.auto_reason, NULL);   /* Auto-Submitted, but a bounce */
	check_int(r.truncated, 0);
	check_int(r.damaged, 0);
	dsn_report_free(&r);
}

static void test_b64_status(void)
{
	struct dsn_report r;

	if (parse_fixture("b64_status.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_RFC3464);
	check_str(r.reporting_mta, "mta.example.net");
	check_int(r.nrcpts, 2);
	if (r.nrcpts == 2) {
		check_str(r.rcpts[0].final_rcpt, "bob@example.net");
		check_int(r.rcpts[0].action, DSN_ACTION_FAILED);
		check_str(r.rcpts[0].status, "5.2.2");   /* comment dropped */
		check_int(r.rcpts[0].code, 552);
		check_str(r.rcpts[0].text, "Mailbox full: quota exceeded");
		check_str(r.rcpts[1].final_rcpt, "bob2@example.net");
		check_int(r.rcpts[1].action, DSN_ACTION_DELIVERED);
		check_str(r.rcpts[1].status, "2.0.0");
		check_str(r.rcpts[1].diagnostic, NULL);
		check_str(r.rcpts[1].text, "");
	}
	check_str(r.orig_message_id, "edm.2.0b1c2d3e4f506172@acme.example");
	check_int(r.norig_to, 1);
	if (r.norig_to == 1)
		check_str(r.orig_to[0], "bob@example.net");
	check(has_to(&r, "bounces@acme.example"), __LINE__, "to");
	dsn_report_free(&r);
}

static void test_delayed(void)
{
	struct dsn_report r;

	if (parse_fixture("delayed.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "dan@example.org");
		check_int(r.rcpts[0].action, DSN_ACTION_DELAYED);
		check_str(r.rcpts[0].status, "4.4.1");
		check_int(r.rcpts[0].code, 0);   /* X-Postfix type, no reply */
		check_str(r.rcpts[0].text, "connect to mx.example.org[192.0.2.7]:25: "
		          "Connection timed out");
		check_str(r.rcpts[0].diagnostic, "X-Postfix; connect to "
		          "mx.example.org[192.0.2.7]:25: Connection timed out");
	}
	check_str(r.orig_message_id, "edm.4.aa00bb11cc22dd33@acme.example");
	dsn_report_free(&r);
}

static void test_postfix_text(void)
{
	struct dsn_report r;

	if (parse_fixture("postfix_text.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_POSTFIX);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		const struct dsn_rcpt *x = &r.rcpts[0];
		check_str(x->final_rcpt, "carol@example.org");
		check_int(x->action, DSN_ACTION_FAILED);
		check_int(x->code, 550);
		check_str(x->status, "5.1.1");
		/* the folded continuation that starts with the address too */
		check_str(x->text, "<carol@example.org>: Recipient address rejected: "
		          "User unknown (in reply to RCPT TO command)");
	}
	check_str(r.orig_message_id, "edm.3.1122334455667788@acme.example");
	check_str(r.orig_return_path, "bounces@acme.example");
	dsn_report_free(&r);
}

static void test_exim(void)
{
	struct dsn_report r;

	if (parse_fixture("exim.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_EXIM);
	check_int(r.nrcpts, 1);   /* X-Failed-Recipients and the text: once */
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "dave@example.net");
		check_int(r.rcpts[0].action, DSN_ACTION_FAILED);
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].enhanced, "5.2.1");
		check_str(r.rcpts[0].text, "The email account that you tried to reach is disabled.");
	}
	check(has_to(&r, "bounces@acme.example"), __LINE__, "Envelope-to");
	check_str(r.orig_message_id, "edm.5.5566778899aabbcc@acme.example");
	dsn_report_free(&r);
}

static void test_exim_delay(void)
{
	struct dsn_report r;

	if (parse_fixture("exim_delay.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_EXIM);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "paul@example.com");
		check_int(r.rcpts[0].action, DSN_ACTION_DELAYED);
		check_int(r.rcpts[0].code, 451);
		check_str(r.rcpts[0].status, "4.7.1");
		check_str(r.rcpts[0].text, "Greylisting in action, please come back later");
	}
	check_int(r.has_original, 0);
	check_str(r.orig_message_id, NULL);
	dsn_report_free(&r);
}

static void test_qmail(void)
{
	struct dsn_report r;

	if (parse_fixture("qmail.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_QMAIL);
	check_str(r.message_id, NULL);   /* qmail writes none */
	check_int(r.date, 1793693820);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "erin@example.com");
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].status, "5.1.1");
		check_str(r.rcpts[0].text, "<erin@example.com>... User unknown");
	}
	check_str(r.orig_message_id, "edm.6.99aa88bb77cc66dd@acme.example");
	check_int(r.norig_to, 1);
	dsn_report_free(&r);
}

static void test_exchange_ndr(void)
{
	struct dsn_report r;

	if (parse_fixture("exchange_ndr.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_RFC3464);
	check_str(r.reporting_mta, "AM0PR01MB1234.eurprd01.prod.outlook.com");
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "frank@contoso.example");
		check_str(r.rcpts[0].status, "5.1.10");
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].enhanced, "5.1.10");
		check_str(r.rcpts[0].text, "RESOLVER.ADR.RecipientNotFound; Recipient "
		          "not found by SMTP address lookup");
	}
	check_str(r.orig_message_id, "edm.7.0fedcba987654321@acme.example");
	dsn_report_free(&r);
}

static void test_exchange_text(void)
{
	struct dsn_report r;

	if (parse_fixture("exchange_text.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_EXCHANGE);
	check_int(r.nrcpts, 1);   /* named twice: one recipient */
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "grace@contoso.example");
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].enhanced, "5.1.1");
		check_str(r.rcpts[0].text, "RESOLVER.ADR.RecipNotFound; not found ##");
	}
	check_str(r.orig_message_id, "edm.8.1029384756abcdef@acme.example");
	check_int(r.norig_to, 1);
	if (r.norig_to == 1)
		check_str(r.orig_to[0], "grace@contoso.example");
	dsn_report_free(&r);
}

static void test_gmail(void)
{
	struct dsn_report r;

	if (parse_fixture("gmail.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_RFC3464);
	check_int(r.damaged, 0);   /* three levels of multipart */
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		const struct dsn_rcpt *x = &r.rcpts[0];
		check_str(x->final_rcpt, "heidi@gmail.com");
		check_int(x->code, 550);
		check_str(x->enhanced, "5.1.1");
		/* a multi-line reply: repeated codes dropped */
		check_str(x->text, "The email account that you tried to reach does not exist. "
		          "Please try double-checking the recipient's email address for typos "
		          "or unnecessary spaces. For more information, go to "
		          "https://support.google.com/mail/?p=NoSuchUser a1si1234567.89 - gsmtp");
		check_str(x->remote_mta, "gmail-smtp-in.l.google.com");
		check(x->diagnostic != NULL && strchr(x->diagnostic, '\n') == NULL,
		      __LINE__, "diagnostic on one line");
	}
	check_str(r.orig_message_id, "edm.9.7766554433221100@acme.example");
	check(has_to(&r, VERP), __LINE__, "VERP in to");
	dsn_report_free(&r);
}

static void test_gmail_text(void)
{
	struct dsn_report r;

	if (parse_fixture("gmail_text.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_GMAIL);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "ivan@example.org");
		check_int(r.rcpts[0].action, DSN_ACTION_FAILED);
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].text, "<ivan@example.org>... User unknown");
	}
	check_str(r.orig_message_id, "edm.10.0123456789abcdef@acme.example");
	dsn_report_free(&r);
}

static void test_qq(void)
{
	struct dsn_report r;

	if (parse_fixture("qq.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_QQ);
	check_str(r.subject, "系统退信");   /* RFC 2047, GB2312 */
	check_int(r.nrcpts, 1);   /* the sender's address is not a recipient */
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "judy@qq.com");
		check_int(r.rcpts[0].action, DSN_ACTION_FAILED);
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].enhanced, "");
		check_str(r.rcpts[0].status, "5.0.0");   /* from the reply code */
		/* HTML entities decoded; the reply after a full-width colon */
		check_str(r.rcpts[0].text, "Mailbox not found. http://service.mail.qq.com/"
		          "cgi-bin/help?subtype=1&&id=20022&&no=1000728");
	}
	check_int(r.has_original, 0);
	check_str(r.orig_message_id, NULL);
	check(has_to(&r, VERP), __LINE__, "VERP in to");
	dsn_report_free(&r);
}

static void test_netease(void)
{
	struct dsn_report r;

	if (parse_fixture("netease.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_NETEASE);
	check_str(r.subject, "系统退信 /Systems bounce");
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "kate@163.com");
		check_int(r.rcpts[0].code, 550);
		check_str(r.rcpts[0].text, "User not found: kate@163.com");
	}
	check_str(r.orig_message_id, "edm.11.a1b2c3d4e5f60718@acme.example");
	dsn_report_free(&r);
}

static void test_arf_abuse(void)
{
	struct dsn_report r;

	if (parse_fixture("arf_abuse.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_ARF);
	check_int(r.format, DSN_FMT_ARF);
	check_str(r.feedback_type, "abuse");
	check_str(r.reporting_mta, "mail.example.net");
	check_str(r.message_id, "20261105174036.fbl-abuse-1@mail.example.net");
	check_int(r.date, 1793914836);   /* -0400 */
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "leo@example.net");
		check_int(r.rcpts[0].action, DSN_ACTION_NONE);
	}
	check_int(r.has_original, 1);
	check_str(r.orig_message_id, "edm.12.feedc0ffee123456@acme.example");
	check_str(r.orig_return_path, VERP);
	check_str(r.orig_list_unsubscribe, "<https://t.acme.example/u/AAAAAAwxyzABCDEFGHIJKLM>, "
	          "<mailto:unsubscribe@acme.example>");
	check(has_to(&r, "fbl@acme.example"), __LINE__, "to");
	dsn_report_free(&r);
}

static void test_arf_headers(void)
{
	struct dsn_report r;

	if (parse_fixture("arf_headers.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_ARF);
	check_str(r.feedback_type, "fraud");
	check_int(r.nrcpts, 0);   /* no Original-Rcpt-To */
	check_int(r.has_original, 1);
	check_str(r.orig_message_id, "edm.13.0011223344556677@acme.example");
	check_int(r.norig_to, 1);
	if (r.norig_to == 1)
		check_str(r.orig_to[0], "mia@example.com");
	dsn_report_free(&r);
}

static void test_autoreply_en(void)
{
	struct dsn_report r;

	if (parse_fixture("autoreply_en.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_AUTOREPLY);
	check_str(r.auto_reason, "Auto-Submitted: auto-replied");
	check_int(r.nrcpts, 0);
	dsn_report_free(&r);
}

static void test_autoreply_zh(void)
{
	struct dsn_report r;

	if (parse_fixture("autoreply_zh.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_AUTOREPLY);
	check_str(r.subject, "自动回复：春季特卖");
	check_str(r.auto_reason, "X-Autoreply");
	dsn_report_free(&r);
}

static void test_garbage(void)
{
	struct dsn_report r;

	if (parse_fixture("garbage.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_GARBAGE);
	check_int(r.nrcpts, 0);
	check_str(r.message_id, NULL);
	dsn_report_free(&r);
}

static void test_nested(void)
{
	struct dsn_report r;

	if (parse_fixture("nested.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_RFC3464);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "oscar@example.org");
		check_str(r.rcpts[0].status, "5.7.1");
		check_str(r.rcpts[0].text, "Message rejected as spam by Content Filtering");
	}
	check_int(r.has_original, 0);
	dsn_report_free(&r);
}

static void test_plain_mail(void)
{
	struct dsn_report r;

	if (parse_fixture("plain_mail.eml", &r) < 0)
		return;
	check_int(r.kind, DSN_KIND_OTHER);
	check_int(r.nrcpts, 0);
	check_str(r.message_id, "quinn-reply-1@example.com");
	check_str(r.auto_reason, NULL);
	dsn_report_free(&r);
}

/* ---- rules ---- */

static void test_split_reply(void)
{
	static const struct {
		const char *in;
		int code;
		const char *enh, *text;
	} cases[] = {
		{ "550 5.1.1 User unknown", 550, "5.1.1", "User unknown" },
		{ "550-5.1.1 one\n550-5.1.1 two\n550 5.1.1 three", 550, "5.1.1", "one two three" },
		{ "550 Mailbox not found", 550, "", "Mailbox not found" },
		{ "5.7.1 Relaying denied", 0, "5.7.1", "Relaying denied" },
		{ "  Host unknown  ", 0, "", "Host unknown" },
		{ "452 4.2.2 full\n  more text", 452, "4.2.2", "full more text" },
		{ "550 5.1.10 RESOLVER.ADR.RecipientNotFound", 550, "5.1.10",
		  "RESOLVER.ADR.RecipientNotFound" },
		{ "550 5.1.1. odd", 550, "", "5.1.1. odd" },   /* not a code */
		{ "", 0, "", "" },
	};
	char enh[DSN_CODE_MAX], text[256];
	int code;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		dsn_split_reply(cases[i].in, &code, enh, text, sizeof(text));
		check(code == cases[i].code && strcmp(enh, cases[i].enh) == 0 &&
		      strcmp(text, cases[i].text) == 0, __LINE__,
		      "case %zu: got %d '%s' '%s'", i, code, enh, text);
	}
	/* truncated to the buffer */
	dsn_split_reply("550 5.1.1 abcdefghij", &code, enh, text, 5);
	check_str(text, "abcd");
}

static void test_parse_date(void)
{
	static const struct {
		const char *in;
		long long t;
	} ok[] = {
		{ "Tue, 3 Nov 2026 08:15:07 +0800 (CST)", 1793664907 },
		{ "3 Nov 2026 08:17:00 -0000", 1793693820 },
		{ "Thu, 5 Nov 2026 17:40:36 EDT", 1793914836 },
		{ "Sat, 01 Jan 00 00:00:00 GMT", 946684800 },
		{ "Fri, 31 Dec 1999 23:59:60 +0000", 946684800 },
		{ "Mon, 29 Feb 2016 12:00 UT", 1456747200 },
	};
	static const char *const bad[] = {
		"", "yesterday", "Tue, 3 Nov", "3 Foo 2026 08:00:00 +0000",
		"32 Nov 2026 08:00:00 +0000", "3 Nov 2026 25:00:00 +0000",
		"3 Nov 2026 08:00:00 +08", "Tuesday 3 Nov 2026",
	};
	time_t t;

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		int rc = dsn_parse_date(ok[i].in, &t);
		check(rc == 0 && (long long)t == ok[i].t, __LINE__, "'%s': rc %d t %lld",
		      ok[i].in, rc, (long long)t);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		check(dsn_parse_date(bad[i], &t) < 0, __LINE__, "'%s' parsed", bad[i]);
	check(dsn_parse_date(NULL, &t) < 0, __LINE__, "NULL parsed");
}

static void test_folding_and_rfc2047(void)
{
	struct dsn_report r;

	parse_str("From: a@example.com\r\n"
	          "Subject: =?UTF-8?Q?Out_of?=\r\n"
	          "  =?UTF-8?B?IG9mZmljZQ==?= until\r\n"
	          "\tMonday =?bogus\r\n"
	          "Message-ID:\r\n <folded@example.com>\r\n"
	          "\r\nbody\r\n", &r);
	/* blanks between encoded words vanish, others stay; a broken word
	 * is kept as written */
	check_str(r.subject, "Out of office until Monday =?bogus");
	check_str(r.message_id, "folded@example.com");
	check_int(r.kind, DSN_KIND_AUTOREPLY);
	check_str(r.auto_reason, "Subject: out of office");
	dsn_report_free(&r);
}

static void test_autoreply_signals(void)
{
	static const struct {
		const char *hdrs, *why;
	} cases[] = {
		{ "Precedence: auto_reply\n", "Precedence: auto_reply" },
		{ "X-Autorespond: yes\n", "X-Autorespond" },
		{ "Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated" },
		{ "Subject: =?UTF-8?B?6Ieq5Yqo5Zue5aSNOiBIaQ==?=\n", "Subject: 自动回复" },
		{ "Subject: Out of Office: Spring sale\n", "Subject: out of office" },
		{ "Auto-Submitted: no\nSubject: Hello\n", NULL },
		{ "Precedence: bulk\n", NULL },
	};
	struct dsn_report r;
	char msg[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(msg, sizeof(msg), "From: x@example.com\nTo: news@acme.example\n%s\nHi\n",
		         cases[i].hdrs);
		parse_str(msg, &r);
		check(same(r.auto_reason, cases[i].why) &&
		      r.kind == (cases[i].why ? DSN_KIND_AUTOREPLY : DSN_KIND_OTHER),
		      __LINE__, "case %zu: kind %s reason %s", i, dsn_kind_name(r.kind),
		      r.auto_reason ? r.auto_reason : "(null)");
		dsn_report_free(&r);
	}
}

static void test_action_from_status(void)
{
	struct dsn_report r;

	parse_str("From: MAILER-DAEMON@x.example\nSubject: report\n"
	          "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	          "--b\nContent-Type: message/delivery-status\n\n"
	          "Reporting-MTA: dns; x.example\n\n"
	          "Final-Recipient: rfc822; a@example.com\nStatus: 5.1.2\n\n"
	          "Final-Recipient: rfc822; b@example.com\nStatus: 4.4.7\n\n"
	          "Final-Recipient: rfc822; c@example.com\nAction: relayed\nStatus: 2.0.0\n"
	          "--b--\n", &r);
	check_int(r.nrcpts, 3);
	if (r.nrcpts == 3) {
		check_int(r.rcpts[0].action, DSN_ACTION_FAILED);
		check_int(r.rcpts[1].action, DSN_ACTION_DELAYED);
		check_int(r.rcpts[2].action, DSN_ACTION_RELAYED);
	}
	dsn_report_free(&r);
}

static void test_qp_delivery_status_and_b64_original(void)
{
	struct dsn_report r;

	parse_str("From: postmaster@x.example\nSubject: Undeliverable\n"
	          "Content-Type: multipart/report; report-type=delivery-status;\n"
	          " boundary=\"q p\"\n\n"
	          "--q p\nContent-Type: message/delivery-status\n"
	          "Content-Transfer-Encoding: quoted-printable\n\n"
	          "Final-Recipient: rfc822; a=40example.com\n"
	          "Action: failed\nDiagnostic-Code: smtp; 550 5.1.1 long=\n line=3D=\n"
	          "end\n"
	          "--q p\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
	          "TWVzc2FnZS1JRDogPGVkbS4xLmFiY0BhY21lLmV4YW1wbGU+ClRvOiBhQGV4YW1wbGUuY29tCgpoaQo=\n"
	          "--q p--\n", &r);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "a@example.com");
		check_str(r.rcpts[0].text, "long line=end");
		check_str(r.rcpts[0].status, "5.1.1");   /* from the diagnostic */
	}
	check_str(r.orig_message_id, "edm.1.abc@acme.example");
	dsn_report_free(&r);
}

static void test_global_delivery_status(void)
{
	struct dsn_report r;

	parse_str("From: mailer-daemon@x.example\nSubject: Undelivered\n"
	          "Content-Type: multipart/report; report-type=global-delivery-status; boundary=g\n\n"
	          "--g\nContent-Type: message/global-delivery-status\n\n"
	          "Final-Recipient: utf-8; 用户@例子.example.com\n"
	          "Original-Recipient: rfc822; user@xn--fsqu00a.example.com\n"
	          "Action: failed\nStatus: 5.1.1\n"
	          "--g--\n", &r);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		/* a non-ASCII address is not read; the ASCII one is */
		check_str(r.rcpts[0].final_rcpt, NULL);
		check_str(r.rcpts[0].orig_rcpt, "user@xn--fsqu00a.example.com");
	}
	dsn_report_free(&r);
}

static void test_mime_damage(void)
{
	struct dsn_report r;

	/* no close delimiter: the last part still counts */
	parse_str("From: MAILER-DAEMON@x.example\nSubject: x\n"
	          "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	          "--b\nContent-Type: message/delivery-status\n\n"
	          "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n", &r);
	check_int(r.damaged, 1);
	check_int(r.nrcpts, 1);
	dsn_report_free(&r);

	/* no boundary parameter: nothing to split, mail from a daemon with
	 * nothing readable is an unreadable bounce */
	parse_str("From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n"
	          "Content-Type: multipart/report; report-type=delivery-status\n\n"
	          "--b\nFinal-Recipient: rfc822; a@example.com\n", &r);
	check_int(r.damaged, 1);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 0);
	dsn_report_free(&r);

	/* a boundary that is the prefix of a line is not a delimiter */
	parse_str("From: a@x.example\nSubject: x\n"
	          "Content-Type: multipart/mixed; boundary=ab\n\n"
	          "--ab\nContent-Type: text/plain\n\n--abc is text\n--ab--\n", &r);
	check_int(r.damaged, 0);
	check_int(r.kind, DSN_KIND_OTHER);
	dsn_report_free(&r);
}

static void test_mdn_is_other(void)
{
	struct dsn_report r;

	parse_str("Return-Path: <>\nFrom: a@example.com\nSubject: Read: Spring sale\n"
	          "Content-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n"
	          "--m\nContent-Type: message/disposition-notification\n\n"
	          "Final-Recipient: rfc822; a@example.com\nDisposition: manual-action/MDN-sent-manually; displayed\n"
	          "--m--\n", &r);
	check_int(r.kind, DSN_KIND_OTHER);
	dsn_report_free(&r);
}

static void test_text_bounce_rules(void)
{
	struct dsn_report r;

	/* a null sender without auto-reply signs is a bounce; prose numbers
	 * are not replies; the reporter's own addresses are not recipients */
	parse_str("Return-Path: <>\nFrom: robot@mx.example\nTo: bounces@acme.example\n"
	          "Subject: Notice\n\n"
	          "We handled over 500 messages for you today.\n"
	          "Contact postmaster@mx.example for help.\n\n"
	          "<zoe@example.com>:\n"
	          "Sorry, no mailbox here by that name. (#5.1.1)\n", &r);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.format, DSN_FMT_TEXT);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].final_rcpt, "zoe@example.com");
		check_int(r.rcpts[0].code, 0);
		check_str(r.rcpts[0].status, "5.1.1");   /* qmail's (#5.1.1) */
		check_str(r.rcpts[0].text, "Sorry, no mailbox here by that name. (#5.1.1)");
	}
	dsn_report_free(&r);

	/* no code at all: the class the report states */
	parse_str("From: MAILER-DAEMON@mx.example\nSubject: Undeliverable\n\n"
	          "ann@example.com\nThe mailbox is closed.\n", &r);
	check_int(r.nrcpts, 1);
	if (r.nrcpts == 1) {
		check_str(r.rcpts[0].status, "5.0.0");
		check_str(r.rcpts[0].text, "The mailbox is closed.");
	}
	dsn_report_free(&r);

	/* a reply before any address belongs to every recipient */
	parse_str("From: MAILER-DAEMON@mx.example\nSubject: failure notice\n"
	          "X-Failed-Recipients: a@example.com, b@example.com\n\n"
	          "Remote host said: 554 5.7.1 Rejected by policy\n", &r);
	check_int(r.nrcpts, 2);
	if (r.nrcpts == 2) {
		check_int(r.rcpts[0].code, 554);
		check_int(r.rcpts[1].code, 554);
		check_str(r.rcpts[1].text, "Rejected by policy");
	}
	dsn_report_free(&r);

	/* a bounce subject with nothing readable: a DSN without recipients */
	parse_str("From: MAILER-DAEMON@mx.example\nSubject: Returned mail\n\nSorry.\n", &r);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 0);
	dsn_report_free(&r);
}

static void test_from_line_and_garbage_headers(void)
{
	struct dsn_report r;

	parse_str("From MAILER-DAEMON Tue Nov  3 08:15:07 2026\n"
	          "From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n"
	          "X-Failed-Recipients: a@example.com\n\n550 5.1.1 unknown\n", &r);
	check_int(r.kind, DSN_KIND_DSN);
	check_int(r.nrcpts, 1);
	dsn_report_free(&r);

	/* fields, but none a mail message has */
	parse_str("foo: bar\nbaz: qux\n\nbody\n", &r);
	check_int(r.kind, DSN_KIND_GARBAGE);
	dsn_report_free(&r);
	parse_str("", &r);
	check_int(r.kind, DSN_KIND_GARBAGE);
	dsn_report_free(&r);
	parse_str("\n\nSubject: late\n", &r);
	check_int(r.kind, DSN_KIND_GARBAGE);
	dsn_report_free(&r);
	check(dsn_parse(NULL, 10, NULL, &r) == 0 && r.kind == DSN_KIND_GARBAGE,
	      __LINE__, "NULL input");
	dsn_report_free(&r);
}

static void test_limits(void)
{
	struct dsn_limits lim;
	struct dsn_report r;
	struct buf_s { char *p; size_t n, cap; } b = { 0 };
	char line[160];

	dsn_limits_default(&lim);
	check_int(lim.max_bytes, 10u << 20);
	check_int(lim.max_depth, 8);
	check_int(lim.max_rcpts, 100);

	/* truncation: only max_bytes are parsed, and it says so */
	{
		const char *m = "From: a@example.com\nSubject: x\n\nbody body body\n";
		struct dsn_limits small = lim;
		small.max_bytes = 20;
		check(dsn_parse(m, strlen(m), &small, &r) == 0, __LINE__, "parse");
		check_int(r.truncated, 1);
		dsn_report_free(&r);
	}

	/* 150 recipient blocks: max_rcpts kept, damaged */
	b.cap = 1 << 16;
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return;
	b.n = (size_t)snprintf(b.p, b.cap, "From: MAILER-DAEMON@x.example\n"
	                       "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	                       "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n");
	for (int i = 0; i < 150; i++) {
		int n = snprintf(line, sizeof(line), "Final-Recipient: rfc822; r%d@example.com\n"
		                 "Action: failed\nStatus: 5.1.1\n\n", i);
		memcpy(b.p + b.n, line, (size_t)n);
		b.n += (size_t)n;
	}
	memcpy(b.p + b.n, "--b--\n", 6);
	b.n += 6;
	check(dsn_parse(b.p, b.n, &lim, &r) == 0, __LINE__, "parse");
	check_int(r.nrcpts, 100);
	check_int(r.damaged, 1);
	dsn_report_free(&r);

	/* 60 nested multiparts around a delivery-status part: the depth
	 * limit stops the walk, nothing overflows */
	b.n = (size_t)snprintf(b.p, b.cap, "From: MAILER-DAEMON@x.example\n"
	                       "Content-Type: multipart/mixed; boundary=n0\n\n");
	for (int i = 1; i < 60; i++)
		b.n += (size_t)snprintf(b.p + b.n, b.cap - b.n,
		                        "--n%d\nContent-Type: multipart/mixed; boundary=n%d\n\n",
		                        i - 1, i);
	b.n += (size_t)snprintf(b.p + b.n, b.cap - b.n,
	                        "--n59\nContent-Type: message/delivery-status\n\n"
	                        "Final-Recipient: rfc822; deep@example.com\nAction: failed\n");
	check(dsn_parse(b.p, b.n, &lim, &r) == 0, __LINE__, "parse");
	check_int(r.damaged, 1);
	check_int(r.nrcpts, 0);
	dsn_report_free(&r);

	/* a text bounce naming 120 addresses: 100 kept, and the replies of
	 * the others are nobody's (not the last kept one's) */
	b.n = (size_t)snprintf(b.p, b.cap, "From: MAILER-DAEMON@x.example\n"
	                       "Subject: failure notice\n\n");
	for (int i = 0; i < 120 && b.n + 128 < b.cap; i++)
		b.n += (size_t)snprintf(b.p + b.n, b.cap - b.n,
		                        "u%d@example.com\n550 5.1.1 unknown %d\n\n", i, i);
	check(dsn_parse(b.p, b.n, &lim, &r) == 0, __LINE__, "parse");
	check_int(r.nrcpts, 100);
	check_int(r.damaged, 1);
	if (r.nrcpts == 100)
		check_str(r.rcpts[99].text, "unknown 99");
	dsn_report_free(&r);

	/* 2000 empty parts: the parts limit stops the walk */
	b.n = (size_t)snprintf(b.p, b.cap, "From: a@x.example\n"
	                       "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < 2000 && b.n + 32 < b.cap; i++)
		b.n += (size_t)snprintf(b.p + b.n, b.cap - b.n, "--p\n\nx\n");
	check(dsn_parse(b.p, b.n, &lim, &r) == 0, __LINE__, "parse");
	check_int(r.damaged, 1);
	dsn_report_free(&r);
	free(b.p);
}

static void test_names(void)
{
	check_str(dsn_kind_name(DSN_KIND_DSN), "dsn");
	check_str(dsn_kind_name(DSN_KIND_ARF), "arf");
	check_str(dsn_kind_name(DSN_KIND_AUTOREPLY), "auto-reply");
	check_str(dsn_kind_name(DSN_KIND_OTHER), "other");
	check_str(dsn_kind_name(DSN_KIND_GARBAGE), "garbage");
	check_str(dsn_format_name(DSN_FMT_QQ), "qq");
	check_str(dsn_format_name(DSN_FMT_NONE), "");
	check_str(dsn_format_name((enum dsn_format)99), "");
	check_str(dsn_action_name(DSN_ACTION_DELAYED), "delayed");
	check_str(dsn_action_name(DSN_ACTION_NONE), "");
	dsn_report_free(NULL);   /* a no-op */
}

/* ---- robustness ---- */

/* 1 when s is NULL or one line of valid UTF-8. */
static int good_str(const char *s)
{
	return s == NULL || (utf8_check((const unsigned char *)s, strlen(s)) == strlen(s) &&
	                     strpbrk(s, "\r\n") == NULL);
}

/* Every string of the report is NULL or one line of valid UTF-8, and the
 * counts are within the limits; 1 when so. */
static int report_ok(const struct dsn_report *r)
{
	int ok = good_str(r->message_id) && good_str(r->subject) && good_str(r->from) &&
	         good_str(r->reporting_mta) && good_str(r->orig_message_id) &&
	         good_str(r->orig_return_path) && good_str(r->orig_list_unsubscribe) &&
	         good_str(r->feedback_type) && good_str(r->auto_reason) &&
	         r->nrcpts <= 100 && r->nto <= 32 && r->norig_to <= 32;

	for (size_t i = 0; i < r->nto; i++)
		ok &= good_str(r->to[i]);
	for (size_t i = 0; i < r->norig_to; i++)
		ok &= good_str(r->orig_to[i]);
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *x = &r->rcpts[i];
		ok &= good_str(x->final_rcpt) && good_str(x->orig_rcpt) &&
		      good_str(x->diagnostic) && x->text != NULL && good_str(x->text) &&
		      good_str(x->remote_mta) && x->code >= 0 && x->code <= 599 &&
		      memchr(x->status, '\0', DSN_CODE_MAX) != NULL &&
		      memchr(x->enhanced, '\0', DSN_CODE_MAX) != NULL;
	}
	return ok;
}

/* Bytes that are not UTF-8 and bare CRs come out as one valid line. */
static void test_strings_sanitized(void)
{
	struct dsn_report r;

	parse_str("From: MAILER-DAEMON@x.example\nSubject: Undeliverable \xff\xfe caf\xc3\xa9\n"
	          "Message-ID: <a\x80" "b@x.example>\n"
	          "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	          "--b\nContent-Type: message/delivery-status\n\n"
	          "Final-Recipient: rfc822; a@example.com\nAction: failed\n"
	          "Diagnostic-Code: smtp; 550 5.1.1 bad \xe4\xb8 user\x01" "here\n--b--\n", &r);
	check(report_ok(&r), __LINE__, "report strings");
	check_str(r.subject, "Undeliverable ?? café");
	check_str(r.message_id, "a?b@x.example");
	if (r.nrcpts == 1)
		check_str(r.rcpts[0].text, "bad ?? user here");
	dsn_report_free(&r);

	parse_str("From: MAILER-DAEMON@x.example\nSubject: failure notice\n"
	          "Content-Type: text/plain; charset=utf-8\n\n"
	          "<a@example.com>:\nRemote host said: 550 5.1.1 no\rsuch user\xc0" "\n", &r);
	check(report_ok(&r), __LINE__, "report strings");
	if (r.nrcpts == 1)
		check_str(r.rcpts[0].text, "no such user?");
	dsn_report_free(&r);
}

/* Every fixture cut at every byte offset: parse, no crash, no leak; the
 * parse of the whole file is the last. */
static void test_truncated_everywhere(void)
{
	size_t total = 0;

	for (size_t i = 0; i < NFIX; i++) {
		size_t len = 0;
		char *data = slurp(fixtures[i], &len);
		check(data != NULL, __LINE__, "read %s", fixtures[i]);
		if (data == NULL)
			continue;
		for (size_t cut = 0; cut <= len; cut++) {
			/* a fresh heap copy, so ASan sees a read past the cut */
			char *p = malloc(cut ? cut : 1);
			struct dsn_report r;
			if (p == NULL)
				break;
			memcpy(p, data, cut);
			if (dsn_parse(p, cut, NULL, &r) == 0)
				total++;
			if (!report_ok(&r))
				check(0, __LINE__, "%s cut at %zu: a bad string", fixtures[i], cut);
			dsn_report_free(&r);
			free(p);
		}
		free(data);
	}
	check(total > 10000, __LINE__, "only %zu parses", total);
}

/* Random bytes and bit-flipped fixtures. */
static void test_random_input(void)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	char buf[4096];

	for (int round = 0; round < 400; round++) {
		struct dsn_report r;
		size_t n = (size_t)(round * 37 % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[i] = (char)(s & 0xff);
		}
		check(dsn_parse(buf, n, NULL, &r) == 0 && report_ok(&r), __LINE__,
		      "round %d", round);
		dsn_report_free(&r);
	}
	for (size_t i = 0; i < NFIX; i++) {
		size_t len = 0;
		char *data = slurp(fixtures[i], &len);
		if (data == NULL || len == 0) {
			free(data);
			continue;
		}
		for (int round = 0; round < 200; round++) {
			struct dsn_report r;
			char *p = malloc(len);
			if (p == NULL)
				break;
			memcpy(p, data, len);
			for (int k = 0; k < 8; k++) {
				s ^= s << 13;
				s ^= s >> 7;
				s ^= s << 17;
				p[s % len] ^= (char)(1u << (s >> 32 & 7));
			}
			check(dsn_parse(p, len, NULL, &r) == 0 && report_ok(&r), __LINE__,
			      "%s round %d", fixtures[i], round);
			dsn_report_free(&r);
			free(p);
		}
		free(data);
	}
}

static const struct test_case tests[] = {
	{ "postfix_dsn", test_postfix_dsn },
	{ "b64_status", test_b64_status },
	{ "delayed", test_delayed },
	{ "postfix_text", test_postfix_text },
	{ "exim", test_exim },
	{ "exim_delay", test_exim_delay },
	{ "qmail", test_qmail },
	{ "exchange_ndr", test_exchange_ndr },
	{ "exchange_text", test_exchange_text },
	{ "gmail", test_gmail },
	{ "gmail_text", test_gmail_text },
	{ "qq", test_qq },
	{ "netease", test_netease },
	{ "arf_abuse", test_arf_abuse },
	{ "arf_headers", test_arf_headers },
	{ "autoreply_en", test_autoreply_en },
	{ "autoreply_zh", test_autoreply_zh },
	{ "garbage", test_garbage },
	{ "nested", test_nested },
	{ "plain_mail", test_plain_mail },
	{ "split_reply", test_split_reply },
	{ "parse_date", test_parse_date },
	{ "folding_and_rfc2047", test_folding_and_rfc2047 },
	{ "autoreply_signals", test_autoreply_signals },
	{ "action_from_status", test_action_from_status },
	{ "qp_status_b64_original", test_qp_delivery_status_and_b64_original },
	{ "global_delivery_status", test_global_delivery_status },
	{ "mime_damage", test_mime_damage },
	{ "mdn_is_other", test_mdn_is_other },
	{ "text_bounce_rules", test_text_bounce_rules },
	{ "from_line_and_garbage", test_from_line_and_garbage_headers },
	{ "limits", test_limits },
	{ "names", test_names },
	{ "strings_sanitized", test_strings_sanitized },
	{ "truncated_everywhere", test_truncated_everywhere },
	{ "random_input", test_random_input },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("dsn", tests);
}
