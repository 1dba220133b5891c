/*
 * fuzz_dsn.c - libFuzzer harness for the DSN / ARF / text-bounce /
 * auto-reply parser (engine/dsn.h).
 *
 * Input: byte 0 bit 0 small limits (512 bytes, depth 2, 4 parts, 2
 * recipients, 2 addresses, 128 bytes of text, 64-byte fields; else the
 * defaults); the rest is one returned message.
 * Properties (the header's contract): dsn_parse() returns 0 on any input;
 * every string of the report is NULL or NUL-terminated valid UTF-8 on one
 * line (no CR or LF); recipients and address lists stay within the
 * limits; a status or enhanced code is "" or RFC 3463 syntax
 * ("c.sss.ddd", class 2, 4 or 5); kind, format and action are in range
 * and have names; truncated is set exactly when the input is longer than
 * max_bytes; parsing the same bytes again gives the same report;
 * dsn_report_free() releases everything (LeakSanitizer). dsn_split_reply()
 * and dsn_parse_date() also run on the first line of the input.
 */
#include "fuzz.h"

#include "buf.h"
#include "dsn.h"
#include "utf8.h"

/* A report string: NULL, or UTF-8 on one line. */
static void check_str(const char *s, const char *what, struct buf *d)
{
	size_t n;

	if (s == NULL) {
		buf_puts(d, "-|");
		return;
	}
	n = strlen(s);
	FZ_CHECK(utf8_check((const unsigned char *)s, n) == n,
	         "%s is not UTF-8", what);
	FZ_CHECK(strpbrk(s, "\r\n") == NULL, "%s has a line break: [%s]",
	         what, s);
	buf_puts(d, s);
	buf_putc(d, '|');
}

/* "" or class.subject.detail with 1..3 digit parts, class 2, 4 or 5. */
static void check_code(const char *c, const char *what)
{
	size_t i = 1, k;

	FZ_CHECK(memchr(c, '\0', DSN_CODE_MAX) != NULL, "%s unterminated", what);
	if (c[0] == '\0')
		return;
	FZ_CHECK(c[0] == '2' || c[0] == '4' || c[0] == '5', "%s [%s]", what, c);
	for (int part = 0; part < 2; part++) {
		FZ_CHECK(c[i] == '.', "%s [%s]", what, c);
		i++;
		for (k = 0; c[i] >= '0' && c[i] <= '9'; i++, k++)
			;
		FZ_CHECK(k >= 1 && k <= 3, "%s [%s]", what, c);
	}
	FZ_CHECK(c[i] == '\0', "%s [%s]", what, c);
}

/* Check a report and write its digest to d. */
static void check_report(const struct dsn_report *r,
                         const struct dsn_limits *l, struct buf *d)
{
	FZ_CHECK(r->kind >= DSN_KIND_OTHER && r->kind <= DSN_KIND_GARBAGE,
	         "kind %d", (int)r->kind);
	FZ_CHECK(r->format >= DSN_FMT_NONE && r->format <= DSN_FMT_TEXT,
	         "format %d", (int)r->format);
	FZ_CHECK(dsn_kind_name(r->kind) != NULL &&
	         dsn_format_name(r->format) != NULL, "names");
	FZ_CHECK(r->nrcpts <= l->max_rcpts, "%zu recipients", r->nrcpts);
	FZ_CHECK(r->nto <= l->max_addrs && r->norig_to <= l->max_addrs,
	         "%zu to, %zu original to", r->nto, r->norig_to);
	buf_printf(d, "%d/%d/%lld/%d/%d/%d|", (int)r->kind, (int)r->format,
	           (long long)r->date, r->has_original, r->truncated,
	           r->damaged);
	check_str(r->message_id, "message_id", d);
	check_str(r->subject, "subject", d);
	check_str(r->from, "from", d);
	check_str(r->reporting_mta, "reporting_mta", d);
	check_str(r->orig_message_id, "orig_message_id", d);
	check_str(r->orig_return_path, "orig_return_path", d);
	check_str(r->orig_list_unsubscribe, "orig_list_unsubscribe", d);
	check_str(r->feedback_type, "feedback_type", d);
	check_str(r->auto_reason, "auto_reason", d);
	for (size_t i = 0; i < r->nto; i++)
		check_str(r->to[i], "to", d);
	for (size_t i = 0; i < r->norig_to; i++)
		check_str(r->orig_to[i], "orig_to", d);
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *p = &r->rcpts[i];

		FZ_CHECK(p->action >= DSN_ACTION_NONE &&
		         p->action <= DSN_ACTION_EXPANDED &&
		         dsn_action_name(p->action) != NULL, "action %d",
		         (int)p->action);
		check_code(p->status, "status");
		check_code(p->enhanced, "enhanced");
		FZ_CHECK(p->code >= 0 && p->code <= 999, "code %d", p->code);
		FZ_CHECK(p->text != NULL, "text NULL");
		buf_printf(d, "%d/%s/%d/%s|", (int)p->action, p->status, p->code,
		           p->enhanced);
		check_str(p->final_rcpt, "final_rcpt", d);
		check_str(p->orig_rcpt, "orig_rcpt", d);
		check_str(p->diagnostic, "diagnostic", d);
		check_str(p->text, "text", d);
		check_str(p->remote_mta, "remote_mta", d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_limits small = { 512, 2, 4, 2, 2, 128, 64 }, dflt;
	const struct dsn_limits *l;
	struct dsn_report r1, r2;
	struct buf d1 = { 0 }, d2 = { 0 };
	char enh[DSN_CODE_MAX], text[256], line[512];
	const uint8_t *lf;
	size_t n, ll;
	int code;
	time_t t;

	if (size == 0)
		return 0;
	dsn_limits_default(&dflt);
	l = data[0] & 1 ? &small : &dflt;
	data++;
	n = size - 1;

	memset(&r1, 0, sizeof r1);
	memset(&r2, 0, sizeof r2);
	FZ_CHECK(dsn_parse(data, n, l, &r1) == 0, "dsn_parse failed");
	check_report(&r1, l, &d1);
	FZ_CHECK(r1.truncated == (n > l->max_bytes), "truncated %d for %zu "
	         "of %zu bytes", r1.truncated, n, l->max_bytes);
	FZ_CHECK(dsn_parse(data, n, l, &r2) == 0, "second dsn_parse failed");
	check_report(&r2, l, &d2);
	FZ_CHECK(d1.len == d2.len && memcmp(d1.data, d2.data, d1.len) == 0,
	         "two parses differ");
	dsn_report_free(&r1);
	dsn_report_free(&r2);
	dsn_report_free(NULL);

	/* the helpers on the first line */
	lf = n > 0 ? memchr(data, '\n', n) : NULL;
	ll = lf != NULL ? (size_t)(lf - data) : n;
	if (ll >= sizeof line)
		ll = sizeof line - 1;
	memcpy(line, data, ll);
	line[ll] = '\0';
	dsn_split_reply(line, &code, enh, text, sizeof text);
	check_code(enh, "split enhanced");
	FZ_CHECK(strlen(text) < sizeof text, "text overflow");
	(void)dsn_parse_date(line, &t);
	buf_free(&d1);
	buf_free(&d2);
	return 0;
}
