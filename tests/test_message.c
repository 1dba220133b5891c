/*
 * test_message.c - the message factory (templates/message.h): built-in
 * variables, Message-IDs, compile errors with file:line, reserved headers,
 * strict variables, message_check, header injection, NUL bytes in values,
 * very wide CSVs, scratch reuse across rows and threads, DKIM signing and
 * key warnings.
 *
 * Each test writes a config (c.ini) and its template files into a fresh
 * mkdtemp directory, loads it with config_load(), builds the CSV header and
 * rows by hand (struct csv_row) and uses the public API only. Rendered
 * messages are taken apart with the small RFC 5322 helpers below (field
 * lookup with unfolding, quoted-printable and base64 body decoding), so
 * assertions compare exact header values and exact body lines.
 * Fixtures: tests/fixtures/message/ (a template file with a partial next
 * to it), tests/fixtures/dkim/ (test keys).
 */
#include "cunit_main.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "config.h"
#include "csv_reader.h"
#include "message.h"

#define FIX_DKIM EDM_FIXTURES "/dkim/"
#define FIX_MSG EDM_FIXTURES "/message/"

/* 2026-03-05 23:30:00 UTC: half an hour before midnight, so a local-time
 * date in any zone east of UTC would already say 2026-03-06. */
#define NOW ((time_t)1772753400)

/* Line numbers in the configs cfg_make() writes: from is on line 6, the
 * test's [message] lines start on line 7. */
#define FROM_LINE 6
#define MSG_LINE 7

static char err[8192];
static char tmpdir[64];

/* Diagnostics for a failed assertion, on stderr. (A function of our own,
 * not fprintf: under -fsanitize=undefined GCC 12 sees a NULL reach "%s"
 * on the sanitizer's own paths and -Werror=format-overflow stops the
 * build.) */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* ---- temp dir and files ---- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void tdir_rm(void)
{
	if (tmpdir[0] != '\0' && strncmp(tmpdir, "/tmp/edm-test-msg-", 18) == 0)
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

/* A fresh private dir per test (the previous one is removed, also when a
 * fatal assertion cut its test short). */
static void tdir_new(void)
{
	tdir_rm();
	snprintf(tmpdir, sizeof tmpdir, "/tmp/edm-test-msg-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		tmpdir[0] = '\0';
		CU_FAIL_FATAL("mkdtemp");
	}
}

/* tmpdir/name (static storage, valid until the next call). */
static const char *tpath(const char *name)
{
	static char p[2][512];
	static int which;

	which ^= 1;
	snprintf(p[which], sizeof p[which], "%s/%s", tmpdir, name);
	return p[which];
}

static void tfile(const char *name, const char *text)
{
	FILE *f = fopen(tpath(name), "wb");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) != NULL) {
		if (fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		} else {
			data[n] = '\0';
		}
	}
	fclose(f);
	return data;
}

/* ---- stderr capture (factory warnings) ---- */

static int saved_stderr = -1;

static void stderr_grab(void)
{
	int fd;

	fflush(stderr);
	saved_stderr = dup(2);
	fd = open(tpath("stderr.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(saved_stderr >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
}

/* Restore stderr; what was written meanwhile (malloc'd). */
static char *stderr_release(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	char *s = slurp(tpath("stderr.txt"));
	return s != NULL ? s : strdup("(stderr capture lost)");
}

/* ---- configs ---- */

struct cfgspec {
	const char *file;         /* default c.ini */
	const char *name;         /* [campaign] name, default spring */
	const char *email_column; /* default email */
	const char *from;         /* default "Acme <news@acme.example>" */
	const char *message;      /* [message] lines after from (line 7 on) */
	const char *tail;         /* sections after [message], after a blank line */
};

/* Write the config and load it; NULL with err (printed) on failure. */
static struct config *cfg_make(const struct cfgspec *c)
{
	struct config *cfg;
	char *text;
	int n;

	n = asprintf(&text,
	             "[campaign]\n"
	             "name = %s\n"
	             "recipients = list.csv\n"
	             "email_column = %s\n"
	             "[message]\n"
	             "from = %s\n"
	             "%s\n"
	             "%s%s",
	             c->name ? c->name : "spring",
	             c->email_column ? c->email_column : "email",
	             c->from ? c->from : "\"Acme <news@acme.example>\"",
	             c->message ? c->message : "subject = Hello\ntext = body.txt",
	             c->tail ? "\n" : "", c->tail ? c->tail : "");
	CU_ASSERT_FATAL(n > 0);
	tfile(c->file ? c->file : "c.ini", text);
	free(text);
	cfg = config_load(tpath(c->file ? c->file : "c.ini"), err, sizeof err);
	if (cfg == NULL)
		say("\n  config_load: %s\n", err);
	return cfg;
}

#define CFG(...) cfg_make(&(struct cfgspec){ __VA_ARGS__ })

/* ---- rows and addresses ---- */

/* A hand-built CSV record: fields copied by pointer, lengths by strlen
 * (a test may overwrite l[i] for a field holding a NUL). */
#define TROW_MAX 16
struct trow {
	struct csv_row r;
	const char *f[TROW_MAX];
	size_t l[TROW_MAX];
};

static struct csv_row *trow_set(struct trow *t, size_t row, size_t n,
                                const char *const *f)
{
	memset(t, 0, sizeof *t);
	if (n > TROW_MAX) { /* a mistake in this file; no CUnit call, as
	                       test_threads builds rows off the main thread */
		say("trow_set: %zu fields, TROW_MAX is %d\n", n, TROW_MAX);
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		t->f[i] = f[i];
		t->l[i] = strlen(f[i]);
	}
	t->r.row = row;
	t->r.nfields = n;
	t->r.fields = t->f;
	t->r.lens = t->l;
	return &t->r;
}

#define ROW(t, rownum, ...)                                               \
	trow_set(&(t), (rownum),                                          \
	         sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
	         (const char *[]){ __VA_ARGS__ })

static struct addr addr_of(const char *s)
{
	struct addr a;
	char detail[160];

	memset(&a, 0, sizeof a);
	if (addr_parse(s, strlen(s), &a, detail, sizeof detail) < 0) {
		say("\n  addr_parse(%s): %s\n", s, detail);
		CU_FAIL("addr_parse");
	}
	return a;
}

static struct message_factory *factory(struct config *cfg,
                                       const struct csv_row *h, size_t col)
{
	struct message_factory *f;

	err[0] = '\0';
	f = message_factory_new(cfg, h, col, err, sizeof err);
	if (f == NULL)
		say("\n  message_factory_new: %s\n", err);
	return f;
}

/* Expect message_factory_new() to refuse, with both substrings in err. */
static void expect_refused(struct config *cfg, const struct csv_row *h,
                           size_t col, const char *where, const char *what,
                           int line)
{
	struct message_factory *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	err[0] = '\0';
	f = message_factory_new(cfg, h, col, err, sizeof err);
	CU_ASSERT_PTR_NULL(f);
	if (f != NULL) {
		say("\n  line %d: factory accepted, wanted \"%s\"\n",
		        line, what);
		message_factory_free(f);
		return;
	}
	if (strstr(err, where) == NULL || strstr(err, what) == NULL) {
		say("\n  line %d: err \"%s\"\n  wanted \"%s\" and \"%s\"\n",
		        line, err, where, what);
		CU_FAIL("error text");
	}
}

#define EXPECT_REFUSED(cfg, h, col, loc, what) \
	expect_refused((cfg), (h), (col), (loc), (what), __LINE__)

/* "tmpdir/FILE:LINE:" as an error starts, or with colon 0 "tmpdir/FILE:LINE"
 * as an error names a place in parentheses. */
static const char *where(const char *file, unsigned line, int colon)
{
	static char b[4][600];
	static int which;

	which = (which + 1) % 4;
	snprintf(b[which], sizeof b[which], "%s/%s:%u%s", tmpdir, file, line,
	         colon ? ":" : "");
	return b[which];
}

#define at(file, line) where((file), (line), 1)
#define place(file, line) where((file), (line), 0)

#define ASSERT_RC(expr, want)                                               \
	do {                                                                \
		int rc_ = (expr);                                           \
		if (rc_ != (want))                                          \
			say("\n  %s:%d: rc %d (want %d): %s\n", \
			        __FILE__, __LINE__, rc_, (want), err);      \
		CU_ASSERT_EQUAL_FATAL(rc_, (want));                         \
	} while (0)

static int render(const struct message_factory *f, const struct csv_row *r,
                  const struct addr *a, struct message_scratch *s,
                  struct buf *out)
{
	buf_reset(out);
	err[0] = '\0';
	return message_render(f, r, a, NOW, s, out, err, sizeof err);
}

/* ---- reading a rendered message ---- */

/* Length of the header block, up to and including the CRLF that precedes
 * the empty line; 0 when there is no empty line. */
static size_t hdr_len(const char *m)
{
	const char *e = strstr(m, "\r\n\r\n");

	return e != NULL ? (size_t)(e - m) + 2 : 0;
}

/* Whether the header line at p is the field 'name' (optional blanks
 * before the colon, as obsolete syntax allows, count too). */
static int field_is(const char *p, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(p, name, n) != 0)
		return 0;
	p += n;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == ':';
}

/*
 * The idx-th field 'name' in the header block, unfolded (CRLF before a
 * continuation line removed) and trimmed, into val. Returns how many
 * fields of that name the header block has.
 */
static int hdr_nth(const char *m, const char *name, int idx, char *val, size_t n)
{
	const char *p = m, *end = m + hdr_len(m);
	int count = 0;

	if (n > 0)
		val[0] = '\0';
	while (p < end) {
		const char *eol = strstr(p, "\r\n");

		if (eol == NULL || eol >= end)
			break;
		if (*p != ' ' && *p != '\t' && field_is(p, name) && count++ == idx && n > 0) {
			const char *v = strchr(p, ':') + 1, *e = eol;
			size_t o = 0;

			for (;;) {
				for (; v < e && o + 1 < n; v++)
					val[o++] = *v;
				if (e + 2 < end && (e[2] == ' ' || e[2] == '\t')) {
					v = e + 2;
					e = strstr(v, "\r\n");
					continue;
				}
				break;
			}
			while (o > 0 && (val[o - 1] == ' ' || val[o - 1] == '\t'))
				o--;
			val[o] = '\0';
			size_t lead = strspn(val, " \t");
			memmove(val, val + lead, o - lead + 1);
		}
		p = eol + 2;
	}
	return count;
}

static int hdr_get(const char *m, const char *name, char *val, size_t n)
{
	return hdr_nth(m, name, 0, val, n);
}

/* The header value, or "(missing)" / "(N times)" when not exactly once. */
static const char *hdr1(const char *m, const char *name)
{
	static char v[4][4096];
	static int which;
	int n;

	which = (which + 1) % 4;
	n = hdr_get(m, name, v[which], sizeof v[which]);
	if (n == 0)
		return "(missing)";
	if (n > 1)
		snprintf(v[which], sizeof v[which], "(%d times)", n);
	return v[which];
}

static void assert_hdr(const char *m, const char *name, const char *want,
                       int line)
{
	const char *got = hdr1(m, name);

	if (strcmp(got, want) != 0)
		say("\n  line %d: %s: got \"%s\" want \"%s\"\n",
		        line, name, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

#define ASSERT_HDR(m, name, want) assert_hdr((m), (name), (want), __LINE__)

static int qp_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64_val(char c)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c != '\0' ? strchr(a, c) : NULL;

	return p != NULL ? (int)(p - a) : -1;
}

/* The body of a single-part message, decoded when its
 * Content-Transfer-Encoding is quoted-printable or base64 (malloc'd). */
static char *body_of(const char *m)
{
	size_t hl = hdr_len(m);
	const char *b = m + hl + 2;
	char cte[64];
	char *out, *o;

	CU_ASSERT_FATAL(hl > 0);
	hdr_get(m, "Content-Transfer-Encoding", cte, sizeof cte);
	if (strcasecmp(cte, "quoted-printable") != 0 && strcasecmp(cte, "base64") != 0)
		return strdup(b);
	o = out = malloc(strlen(b) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	if (strcasecmp(cte, "base64") == 0) {
		unsigned acc = 0;
		int bits = 0;

		for (; *b != '\0' && *b != '='; b++) {
			int v = b64_val(*b);
			if (v < 0)
				continue; /* line breaks */
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				*o++ = (char)((acc >> bits) & 0xff);
			}
		}
		*o = '\0';
		return out;
	}
	while (*b != '\0') {
		if (b[0] == '=' && b[1] == '\r' && b[2] == '\n') {
			b += 3;
		} else if (b[0] == '=' && qp_hex(b[1]) >= 0 && qp_hex(b[2]) >= 0) {
			*o++ = (char)(qp_hex(b[1]) * 16 + qp_hex(b[2]));
			b += 3;
		} else {
			*o++ = *b++;
		}
	}
	*o = '\0';
	return out;
}

/* Whether text has a line exactly equal to 'line' (CRLF line ends). */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len == n && memcmp(p, line, n) == 0)
			return 1;
		p = eol ? eol + 2 : NULL;
	}
	return 0;
}

#define ASSERT_LINE(text, line)                                             \
	do {                                                                \
		if (!has_line((text), (line)))                              \
			say("\n  %s:%d: no line \"%s\" in:\n%s\n", \
			        __FILE__, __LINE__, (line), (text));        \
		CU_ASSERT(has_line((text), (line)));                        \
	} while (0)

/* Every CR in the header block is followed by LF and every LF preceded
 * by CR: no bare line break a receiver could split a header on. */
static int hdr_crlf_clean(const char *m)
{
	size_t hl = hdr_len(m);

	for (size_t i = 0; i < hl; i++) {
		if (m[i] == '\r' && m[i + 1] != '\n')
			return 0;
		if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
			return 0;
	}
	return hl > 0;
}

/* ---- built-in variables ---- */

/* email, campaign, row, message_id, date (UTC), unsubscribe_url (rendered,
 * its {{x}} values percent-encoded), tracking_pixel (empty). */
static void test_builtins(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;
	char mid[512], want[1024];
	const char *tz = getenv("TZ");
	char *saved_tz = tz ? strdup(tz) : NULL;
	int rc;

	tdir_new();
	tfile("body.txt",
	      "email={{email}}\n"
	      "campaign={{campaign}}\n"
	      "row={{row}}\n"
	      "mid={{message_id}}\n"
	      "date={{date}}\n"
	      "unsub={{unsubscribe_url}}\n"
	      "pixel=[{{tracking_pixel}}]\n");
	struct config *cfg = CFG(.message =
		"subject = Row {{row}} of {{campaign}}\n"
		"text = body.txt\n"
		"unsubscribe_url = https://u.example/u?e={{email}}&t={{token}}&r={{{raw}}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "token", "raw");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);

	ROW(r, 42, " ann+news@Mail.EXAMPLE ", "a b&c/d", "x&y z");
	struct addr a = addr_of(r.f[0]);
	CU_ASSERT_STRING_EQUAL(a.norm, "ann+news@mail.example");

	/* 8 hours east of UTC: the local date is already the 6th. */
	setenv("TZ", "XXX-8", 1);
	tzset();
	rc = render(f, &r.r, &a, &s, &out);
	if (saved_tz != NULL)
		setenv("TZ", saved_tz, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved_tz);
	ASSERT_RC(rc, 0);

	char *body = body_of(out.data);
	message_id(f, 42, &a, mid, sizeof mid);
	ASSERT_LINE(body, "email=ann+news@mail.example");
	ASSERT_LINE(body, "campaign=spring");
	ASSERT_LINE(body, "row=42");
	snprintf(want, sizeof want, "mid=%s", mid);
	ASSERT_LINE(body, want);
	ASSERT_LINE(body, "date=2026-03-05");
	/* {{x}} percent-encoded; {{{raw}}} as is, except the blank no URL
	 * may hold */
	ASSERT_LINE(body, "unsub=https://u.example/u?e=ann%2Bnews%40mail.example"
	                  "&t=a%20b%26c%2Fd&r=x&y%20z");
	ASSERT_LINE(body, "pixel=[]");
	free(body);

	ASSERT_HDR(out.data, "Subject", "Row 42 of spring");
	ASSERT_HDR(out.data, "To", "ann+news@mail.example");
	ASSERT_HDR(out.data, "From", "Acme <news@acme.example>");
	ASSERT_HDR(out.data, "Date", "Thu, 05 Mar 2026 23:30:00 +0000");
	snprintf(want, sizeof want, "<%s>", mid);
	ASSERT_HDR(out.data, "Message-ID", want);
	ASSERT_HDR(out.data, "List-Unsubscribe",
	           "<https://u.example/u?e=ann%2Bnews%40mail.example"
	           "&t=a%20b%26c%2Fd&r=x&y%20z>");
	ASSERT_HDR(out.data, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
	CU_ASSERT_STRING_EQUAL(message_from_addr(f), "news@acme.example");

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* A CSV column named like a built-in wins; the address column still
 * renders normalised. */
static void test_column_wins(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt",
	      "date={{date}}\n"
	      "email=[{{email}}]\n"
	      "row={{row}}\n"
	      "campaign={{campaign}}\n"
	      "pixel={{tracking_pixel}}\n"
	      "unsub={{unsubscribe_url}}\n"
	      "addr={{addr}}\n");
	struct config *cfg = CFG(.email_column = "addr",
		.message = "subject = {{date}}\ntext = body.txt\n"
		           "unsubscribe_url = https://u.example/{{unsubscribe_url}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "addr", "date", "email", "row", "campaign", "tracking_pixel",
	    "unsubscribe_url");
	/* unsubscribe_url referring to the *column* of that name is no
	 * self-reference */
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 3, "  Ann@Bücher.EXAMPLE ", "tomorrow", " Other@X.example ", "seven",
	    "col-campaign", "px", "col/val");
	struct addr a = addr_of(r.f[0]);

	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	char *body = body_of(out.data);
	ASSERT_LINE(body, "date=tomorrow");
	ASSERT_LINE(body, "email=[ Other@X.example ]");
	ASSERT_LINE(body, "row=seven");
	ASSERT_LINE(body, "campaign=col-campaign");
	ASSERT_LINE(body, "pixel=px");
	ASSERT_LINE(body, "unsub=col/val");
	ASSERT_LINE(body, "addr=Ann@xn--bcher-kva.example");
	free(body);
	ASSERT_HDR(out.data, "Subject", "tomorrow");
	ASSERT_HDR(out.data, "List-Unsubscribe", "<https://u.example/col%2Fval>");
	ASSERT_HDR(out.data, "To", "Ann@xn--bcher-kva.example");

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* The address column renders normalised whatever its name ("Work Mail"),
 * in headers and bodies, and {{email}} gives the same. */
static void test_address_column_any_name(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "to={{Work Mail}}\nemail={{email}}\nfirst={{first}}\n");
	struct config *cfg = CFG(.email_column = "Work Mail",
		.message = "subject = For {{Work Mail}}\ntext = body.txt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "first", "Work Mail", "last");
	struct message_factory *f = factory(cfg, &h.r, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 1, "Ann", "  Ann@Bücher.EXAMPLE ", "Lee");
	struct addr a = addr_of(r.f[1]);

	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	char *body = body_of(out.data);
	ASSERT_LINE(body, "to=Ann@xn--bcher-kva.example");
	ASSERT_LINE(body, "email=Ann@xn--bcher-kva.example");
	ASSERT_LINE(body, "first=Ann");
	free(body);
	ASSERT_HDR(out.data, "Subject", "For Ann@xn--bcher-kva.example");
	ASSERT_HDR(out.data, "To", "Ann@xn--bcher-kva.example");

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* ---- Message-ID ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_message_id(void)
{
	struct trow h;
	char id1[512], id2[512], id3[512], small[10];
	struct message_scratch s = { 0 };
	struct buf out = { 0 };

	tdir_new();
	tfile("body.txt", "hi\n");
	struct config *c1 = CFG(.file = "a.ini");
	struct config *c1b = CFG(.file = "b.ini");
	struct config *c2 = CFG(.file = "c.ini", .name = "autumn");
	struct config *c3 = CFG(.file = "d.ini",
		.from = "\"Acme <news@Mail.ACME.example>\"");
	CU_ASSERT_FATAL(c1 && c1b && c2 && c3);
	ROW(h, 0, "email");
	struct message_factory *f1 = factory(c1, &h.r, 0);
	struct message_factory *f1b = factory(c1b, &h.r, 0);
	struct message_factory *f2 = factory(c2, &h.r, 0);
	struct message_factory *f3 = factory(c3, &h.r, 0);
	CU_ASSERT_FATAL(f1 && f1b && f2 && f3);
	struct addr ann = addr_of("ann@x.example"), bob = addr_of("bob@x.example");

	/* deterministic: same call twice, and another factory of the same
	 * campaign (a resumed run) */
	message_id(f1, 5, &ann, id1, sizeof id1);
	message_id(f1, 5, &ann, id2, sizeof id2);
	CU_ASSERT_STRING_EQUAL(id1, id2);
	message_id(f1b, 5, &ann, id2, sizeof id2);
	CU_ASSERT_STRING_EQUAL(id1, id2);
	/* ends in @<from domain>, and has something before it */
	CU_ASSERT(strlen(id1) > strlen("@acme.example"));
	CU_ASSERT_STRING_EQUAL(id1 + strlen(id1) - strlen("@acme.example"), "@acme.example");
	CU_ASSERT_PTR_NULL(strchr(id1, '<'));
	CU_ASSERT_PTR_NULL(strchr(id1, ' '));
	CU_ASSERT_EQUAL(strchr(id1, '@'), strrchr(id1, '@'));

	/* differs across rows, campaigns, addresses */
	message_id(f1, 6, &ann, id2, sizeof id2);
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2);
	message_id(f2, 5, &ann, id2, sizeof id2);
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2);
	message_id(f1, 5, &bob, id2, sizeof id2);
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2);

	/* the From domain, normalised */
	message_id(f3, 5, &ann, id3, sizeof id3);
	CU_ASSERT_STRING_EQUAL(id3 + strlen(id3) - strlen("@mail.acme.example"),
	                       "@mail.acme.example");
	CU_ASSERT_STRING_EQUAL(message_from_addr(f3), "news@mail.acme.example");

	/* a short buffer is truncated, never overrun */
	memset(small, 'Z', sizeof small);
	message_id(f1, 5, &ann, small, sizeof small);
	CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
	CU_ASSERT_EQUAL(strncmp(small, id1, sizeof small - 1), 0);

	/* 1000 rows x 2 addresses: all distinct */
	enum { N = 1000 };
	char **ids = calloc(2 * N, sizeof *ids);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
	for (size_t i = 0; i < 2 * N; i++) {
		ids[i] = malloc(512);
		message_id(f1, i / 2 + 1, i % 2 ? &bob : &ann, ids[i], 512);
	}
	qsort(ids, 2 * N, sizeof *ids, cmp_str);
	size_t dups = 0;
	for (size_t i = 1; i < 2 * N; i++)
		dups += strcmp(ids[i - 1], ids[i]) == 0;
	CU_ASSERT_EQUAL(dups, 0);
	for (size_t i = 0; i < 2 * N; i++)
		free(ids[i]);
	free(ids);

	/* the Message-ID header is the same id */
	struct trow r;
	ROW(r, 5, "ann@x.example");
	ASSERT_RC(render(f1, &r.r, &ann, &s, &out), 0);
	char want[600];
	snprintf(want, sizeof want, "<%s>", id1);
	ASSERT_HDR(out.data, "Message-ID", want);

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f1);
	message_factory_free(f1b);
	message_factory_free(f2);
	message_factory_free(f3);
	config_free(c1);
	config_free(c1b);
	config_free(c2);
	config_free(c3);
}

/* ---- compile errors ---- */

/* A name the CSV does not have, anywhere: NULL with file:line and the
 * name. */
static void test_unknown_columns(void)
{
	static const struct {
		const char *from, *message, *body, *html, *file;
		unsigned line;
		const char *what;
	} cases[] = {
		{ NULL, "subject = Hi {{frist}}\ntext = body.txt", "ok\n", NULL,
		  "c.ini", MSG_LINE, "frist" },
		{ NULL, "subject = Hi\ntext = body.txt", "line one\nHi {{nope}}\n", NULL,
		  "body.txt", 2, "nope" },
		{ NULL, "subject = Hi\nhtml = body.html", NULL, "<p>\n\n{{bad_html}}</p>\n",
		  "body.html", 3, "bad_html" },
		/* the header's own continuation line */
		{ NULL, "subject = Hi\ntext = body.txt\n"
		        "headers = X-A: {{email}}\n  X-B: {{missing}}", "ok\n", NULL,
		  "c.ini", MSG_LINE + 3, "missing" },
		{ NULL, "subject = Hi\ntext = body.txt\nto_name = {{gone}}", "ok\n", NULL,
		  "c.ini", MSG_LINE + 2, "gone" },
		{ NULL, "subject = Hi\ntext = body.txt\nfeedback_id = {{fid}}:x", "ok\n", NULL,
		  "c.ini", MSG_LINE + 2, "fid" },
		{ NULL, "subject = Hi\ntext = body.txt\n"
		        "unsubscribe_url = https://u.example/{{uid}}", "ok\n", NULL,
		  "c.ini", MSG_LINE + 2, "uid" },
		{ "\"{{nobody}} <news@acme.example>\"", "subject = Hi\ntext = body.txt",
		  "ok\n", NULL, "c.ini", FROM_LINE, "nobody" },
		{ NULL, "subject = {{#first}}open\ntext = body.txt", "ok\n", NULL,
		  "c.ini", MSG_LINE, "first" },
		{ NULL, "subject = Hi\ntext = body.txt", "a\nb\n{{> nothere}}\n", NULL,
		  "body.txt", 3, "nothere" },
	};
	struct trow h;

	ROW(h, 0, "email", "first");
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		tdir_new();
		if (cases[i].body != NULL)
			tfile("body.txt", cases[i].body);
		if (cases[i].html != NULL)
			tfile("body.html", cases[i].html);
		struct config *cfg = CFG(.from = cases[i].from, .message = cases[i].message);
		EXPECT_REFUSED(cfg, &h.r, 0, at(cases[i].file, cases[i].line),
		               cases[i].what);
		config_free(cfg);
	}
	/* and the same templates with the columns present compile */
	tdir_new();
	tfile("body.txt", "Hi {{nope}}\n");
	struct config *cfg = CFG(.message = "subject = Hi {{frist}}\ntext = body.txt\n"
	                                     "headers = X-B: {{missing}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "frist", "nope", "missing");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL(f);
	message_factory_free(f);
	config_free(cfg);
}

/* Headers edm writes itself (or that have their own key) are refused in
 * [message] headers, at the line of that header; others pass. */
static void test_reserved_headers(void)
{
	static const char *const reserved[] = {
		"Bcc", "bcc", "BCC", "Cc", "From", "To", "Subject", "Date",
		"Message-ID", "MIME-Version", "Reply-To", "Sender", "Received",
		"Return-Path", "Feedback-ID", "DKIM-Signature", "Content-Type",
		"content-transfer-encoding", "Content-Disposition",
		"List-Unsubscribe", "List-Unsubscribe-Post",
	};
	static const char *const bad_names[] = {
		"Bad Name: x", "X-Ümlaut: x", ": no name", "NoColonHere",
	};
	static const char *const allowed[] = {
		"X-Bcc-Note", "Contentious", "Ccx", "List-Id", "Precedence",
		"X-Mailer",
	};
	struct trow h;
	char msg[512];

	ROW(h, 0, "email");
	tdir_new();
	tfile("body.txt", "hi\n");
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
		snprintf(msg, sizeof msg, "subject = Hi\ntext = body.txt\n"
		         "headers = X-Ok: 1\n  %s: value", reserved[i]);
		struct config *cfg = CFG(.message = msg);
		EXPECT_REFUSED(cfg, &h.r, 0, at("c.ini", MSG_LINE + 3), reserved[i]);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		snprintf(msg, sizeof msg, "subject = Hi\ntext = body.txt\n"
		         "headers = X-Ok: 1\n  %s", bad_names[i]);
		struct config *cfg = CFG(.message = msg);
		EXPECT_REFUSED(cfg, &h.r, 0, at("c.ini", MSG_LINE + 3), "headers");
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
		struct message_scratch s = { 0 };
		struct buf out = { 0 };
		struct trow r;

		snprintf(msg, sizeof msg, "subject = Hi\ntext = body.txt\n"
		         "headers = X-Ok: 1\n  %s: v-{{row}}", allowed[i]);
		struct config *cfg = CFG(.message = msg);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		struct message_factory *f = factory(cfg, &h.r, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		ROW(r, 9, "ann@x.example");
		struct addr a = addr_of(r.f[0]);
		ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
		ASSERT_HDR(out.data, allowed[i], "v-9");
		ASSERT_HDR(out.data, "X-Ok", "1");
		/* "Name: value": one blank after the colon, the template's own */
		CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\r\nX-Ok: 1\r\n"));
		message_scratch_free(&s);
		buf_free(&out);
		message_factory_free(f);
		config_free(cfg);
	}
}

/* unsubscribe_url must be https and may not refer to itself; the other
 * address keys must be addresses. */
static void test_unsubscribe_errors(void)
{
	static const struct {
		const char *line, *what;
	} cases[] = {
		{ "unsubscribe_url = http://u.example/x?e={{email}}", "https" },
		{ "unsubscribe_url = u.example/x", "https" },
		{ "unsubscribe_url = https://u.example/{{unsubscribe_url}}", "itself" },
		{ "unsubscribe_url = https://u.example/{{#unsubscribe_url}}x{{/unsubscribe_url}}",
		  "itself" },
		{ "unsubscribe_url = https://u.example/{{{unsubscribe_url}}}", "itself" },
		{ "unsubscribe_mailto = not an address", "unsubscribe_mailto" },
		{ "unsubscribe_mailto = mailto:unsub@localhost", "unsubscribe_mailto" },
		{ "reply_to = help@", "reply_to" },
	};
	struct trow h;
	char msg[512];

	ROW(h, 0, "email");
	tdir_new();
	tfile("body.txt", "hi\n");
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(msg, sizeof msg, "subject = Hi\ntext = body.txt\n%s", cases[i].line);
		struct config *cfg = CFG(.message = msg);
		EXPECT_REFUSED(cfg, &h.r, 0, at("c.ini", MSG_LINE + 2), cases[i].what);
		config_free(cfg);
	}
}

/* A bad From is an error at the config's file:line; good ones give the
 * right From header and envelope address. */
static void test_from(void)
{
	static const char *const bad[] = {
		"\"Acme <not-an-address>\"",
		"news@localhost",
		"\"Acme <news@acme.example\"",
		"\"Acme <news@acme.example> trailing\"",
		"\"Acme <üser@acme.example>\"",
		"\"Acme <>\"",
		"\"Acme <news@1.2.3.4>\"",
	};
	static const struct {
		const char *from, *hdr, *addr;
	} good[] = {
		{ "news@acme.example", "news@acme.example", "news@acme.example" },
		{ "\"{{campaign}} News <news@acme.example>\"", "spring News <news@acme.example>",
		  "news@acme.example" },
		{ "\"Acme <ann@Bücher.example>\"", "Acme <ann@xn--bcher-kva.example>",
		  "ann@xn--bcher-kva.example" },
		{ "\"  Acme Shop   <news@acme.example>\"", "Acme Shop <news@acme.example>",
		  "news@acme.example" },
	};
	struct trow h, r;

	ROW(h, 0, "email");
	ROW(r, 1, "ann@x.example");
	struct addr a = addr_of(r.f[0]);
	tdir_new();
	tfile("body.txt", "hi\n");
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct config *cfg = CFG(.from = bad[i]);
		EXPECT_REFUSED(cfg, &h.r, 0, at("c.ini", FROM_LINE), "from");
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		struct message_scratch s = { 0 };
		struct buf out = { 0 };
		struct config *cfg = CFG(.from = good[i].from);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		struct message_factory *f = factory(cfg, &h.r, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		CU_ASSERT_STRING_EQUAL(message_from_addr(f), good[i].addr);
		ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
		ASSERT_HDR(out.data, "From", good[i].hdr);
		message_scratch_free(&s);
		buf_free(&out);
		message_factory_free(f);
		config_free(cfg);
	}
}

/* Files the config names that cannot be read: NULL, naming the file and
 * the key's file:line. */
static void test_missing_files(void)
{
	struct trow h;

	ROW(h, 0, "email");
	tdir_new();
	tfile("body.txt", "hi\n");
	struct config *cfg = CFG(.message = "subject = Hi\ntext = nothere.txt");
	EXPECT_REFUSED(cfg, &h.r, 0, "nothere.txt", place("c.ini", MSG_LINE + 1));
	config_free(cfg);
	cfg = CFG(.message = "subject = Hi\ntext = body.txt\nhtml = gone.html");
	EXPECT_REFUSED(cfg, &h.r, 0, "gone.html", place("c.ini", MSG_LINE + 2));
	config_free(cfg);
	cfg = CFG(.message = "subject = Hi\ntext = body.txt\nattachments = gone.pdf");
	EXPECT_REFUSED(cfg, &h.r, 0, "gone.pdf", place("c.ini", MSG_LINE + 2));
	config_free(cfg);
}

/* ---- strict variables ---- */

static void test_strict_variables(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "Dear {{first|friend}},\n"
	                  "{{#last}}L={{last}}{{/last}}\n"
	                  "X={{x}}\n");
	struct config *cfg = CFG(.message = "subject = Hi {{first}}\ntext = body.txt\n"
	                                     "strict_variables = yes");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first", "last", "x");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");
	char want[600];

	/* empty in the subject */
	ROW(r, 1, "ann@x.example", "", "Lee", "y");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), MESSAGE_TEMPLATE);
	snprintf(want, sizeof want, "%s first is empty", at("c.ini", MSG_LINE));
	CU_ASSERT_STRING_EQUAL(err, want);
	err[0] = '\0';
	CU_ASSERT_EQUAL(message_check(f, &r.r, &a, &s, err, sizeof err), MESSAGE_TEMPLATE);
	CU_ASSERT_STRING_EQUAL(err, want);

	/* empty in the body (message_check renders bodies when strict) */
	ROW(r, 2, "ann@x.example", "Ann", "", "");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), MESSAGE_TEMPLATE);
	snprintf(want, sizeof want, "%s x is empty", at("body.txt", 3));
	CU_ASSERT_STRING_EQUAL(err, want);
	err[0] = '\0';
	CU_ASSERT_EQUAL(message_check(f, &r.r, &a, &s, err, sizeof err), MESSAGE_TEMPLATE);
	CU_ASSERT_STRING_EQUAL(err, want);

	/* a missing field (short record) is empty too */
	ROW(r, 3, "ann@x.example", "Ann");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), MESSAGE_TEMPLATE);
	CU_ASSERT_STRING_EQUAL(err, want);

	/* defaults and sections make empty fine */
	ROW(r, 4, "ann@x.example", "Ann", "", "y");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	char *body = body_of(out.data);
	ASSERT_LINE(body, "Dear Ann,");
	ASSERT_LINE(body, "X=y");
	CU_ASSERT_PTR_NULL(strstr(body, "L="));
	free(body);
	message_factory_free(f);
	config_free(cfg);

	/* not strict: the same rows render, empty as empty */
	cfg = CFG(.message = "subject = Hi {{first}}\ntext = body.txt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 2, "ann@x.example", "", "", "");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	ASSERT_HDR(out.data, "Subject", "Hi");
	body = body_of(out.data);
	ASSERT_LINE(body, "Dear friend,");
	ASSERT_LINE(body, "X=");
	free(body);

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* An empty variable in unsubscribe_url fails the row even without
 * strict_variables, in render and in check. */
static void test_unsubscribe_always_strict(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;
	char want[600];

	tdir_new();
	tfile("body.txt", "Hi {{first}}\n");
	struct config *cfg = CFG(.message = "subject = Hi\ntext = body.txt\n"
	                                     "unsubscribe_url = https://u.example/u?t={{token}}&d={{d|none}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->message.strict_variables, 0);
	ROW(h, 0, "email", "first", "token", "d");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");

	ROW(r, 1, "ann@x.example", "", "", "");
	snprintf(want, sizeof want, "%s token is empty", at("c.ini", MSG_LINE + 2));
	ASSERT_RC(render(f, &r.r, &a, &s, &out), MESSAGE_TEMPLATE);
	CU_ASSERT_STRING_EQUAL(err, want);
	err[0] = '\0';
	CU_ASSERT_EQUAL(message_check(f, &r.r, &a, &s, err, sizeof err), MESSAGE_TEMPLATE);
	CU_ASSERT_STRING_EQUAL(err, want);

	/* with the token (and an empty body variable, not strict) it renders;
	 * a default counts as a value */
	ROW(r, 2, "ann@x.example", "", "t0k", "");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	ASSERT_HDR(out.data, "List-Unsubscribe", "<https://u.example/u?t=t0k&d=none>");

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* message_check renders the bodies only under strict_variables. */
static void test_check_bodies(void)
{
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "Hi {{first}}\n");
	tfile("body.html", "<p>Hi {{first}}</p>\n");
	struct config *cfg = CFG(.message = "subject = Hi\ntext = body.txt\nhtml = body.html");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");

	struct message_scratch s = { 0 };
	ROW(r, 1, "ann@x.example", "");
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	ROW(r, 2, "ann@x.example", "Ann");
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	/* nothing rendered into the body buffers of a fresh scratch */
	CU_ASSERT_EQUAL(s.text.len, 0);
	CU_ASSERT_EQUAL(s.html.len, 0);
	message_scratch_free(&s);
	message_factory_free(f);
	config_free(cfg);

	cfg = CFG(.message = "subject = Hi\ntext = body.txt\nhtml = body.html\n"
	                     "strict_variables = yes");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 1, "ann@x.example", "");
	CU_ASSERT_EQUAL(message_check(f, &r.r, &a, &s, err, sizeof err), MESSAGE_TEMPLATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, at("body.txt", 1)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "first is empty"));
	ROW(r, 2, "ann@x.example", "Ann");
	ASSERT_RC(message_check(f, &r.r, &a, &s, err, sizeof err), 0);
	message_scratch_free(&s);
	message_factory_free(f);
	config_free(cfg);
}

/* A text body that renders empty for a row is an empty body, the same
 * with a fresh scratch as with one that rendered other rows first. */
static void test_empty_body(void)
{
	struct message_scratch fresh = { 0 }, used = { 0 };
	struct buf a1 = { 0 }, a2 = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "{{first}}");
	struct config *cfg = CFG(.message = "subject = S\ntext = body.txt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");

	ROW(r, 1, "ann@x.example", "A long first name to leave in the scratch");
	ASSERT_RC(render(f, &r.r, &a, &used, &a2), 0);
	ROW(r, 2, "ann@x.example", "");
	ASSERT_RC(render(f, &r.r, &a, &fresh, &a1), 0);
	ASSERT_RC(render(f, &r.r, &a, &used, &a2), 0);
	CU_ASSERT_EQUAL(a1.len, a2.len);
	CU_ASSERT(a1.len == a2.len && memcmp(a1.data, a2.data, a1.len) == 0);
	char *body = body_of(a1.data);
	CU_ASSERT_STRING_EQUAL(body, "");
	free(body);

	message_scratch_free(&fresh);
	message_scratch_free(&used);
	buf_free(&a1);
	buf_free(&a2);
	message_factory_free(f);
	config_free(cfg);
}

/* ---- safety ---- */

/* A CSV value with line breaks in the From and To names, the subject,
 * Feedback-ID, the unsubscribe URL (raw too) and an extra header never
 * makes a header line of its own. */
static void test_header_injection(void)
{
	static const char *const evil[] = {
		"x\r\nBcc: a@evil.example",
		"x\nBcc: b@evil.example",
		"x\rBcc: c@evil.example",
		"\r\n\r\nBcc: d@evil.example",
		"x\r\nbcc : e@evil.example",
		"x\r\n\tBcc: f@evil.example",
		"\"x\\\"\r\nBcc: g@evil.example",
		"=?UTF-8?B?QmNjOg==?=\r\nBcc: h@evil.example",
		"中文\r\nBcc: i@evil.example",
	};
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "body\n");
	struct config *cfg = CFG(.from = "\"{{evil}} <news@acme.example>\"",
		.message = "subject = S {{evil}}\ntext = body.txt\n"
		           "to_name = {{evil}}\n"
		           "feedback_id = {{evil}}\n"
		           "unsubscribe_url = https://u.example/u?r={{{evil}}}&e={{evil}}\n"
		           "headers = X-Note: {{evil}}\n  X-After: ok");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "evil");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");
	char v[4096];

	for (size_t i = 0; i < sizeof evil / sizeof *evil; i++) {
		ROW(r, i + 1, "ann@x.example", evil[i]);
		ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
		int bcc = hdr_get(out.data, "Bcc", v, sizeof v);
		if (bcc != 0)
			say("\n  case %zu injected:\n%s\n", i, out.data);
		CU_ASSERT_EQUAL(bcc, 0);
		CU_ASSERT(hdr_crlf_clean(out.data));
		/* the header block is whole: nothing pushed into the body */
		CU_ASSERT_EQUAL(hdr_get(out.data, "To", v, sizeof v), 1);
		CU_ASSERT(strlen(v) > 15 &&
		          strcmp(v + strlen(v) - 15, "<ann@x.example>") == 0);
		CU_ASSERT_EQUAL(hdr_get(out.data, "From", v, sizeof v), 1);
		CU_ASSERT(strlen(v) > 19 &&
		          strcmp(v + strlen(v) - 19, "<news@acme.example>") == 0);
		CU_ASSERT_EQUAL(hdr_get(out.data, "Subject", v, sizeof v), 1);
		CU_ASSERT_EQUAL(hdr_get(out.data, "Feedback-ID", v, sizeof v), 1);
		CU_ASSERT_EQUAL(hdr_get(out.data, "List-Unsubscribe", v, sizeof v), 1);
		CU_ASSERT(strncmp(v, "<https://u.example/u?r=", 23) == 0 &&
		          strchr(v, ' ') == NULL);
		CU_ASSERT_EQUAL(hdr_get(out.data, "List-Unsubscribe-Post", v, sizeof v), 1);
		CU_ASSERT_EQUAL(hdr_get(out.data, "X-Note", v, sizeof v), 1);
		ASSERT_HDR(out.data, "X-After", "ok");
		CU_ASSERT_EQUAL(hdr_get(out.data, "Content-Type", v, sizeof v), 1);
		char *body = body_of(out.data);
		CU_ASSERT_STRING_EQUAL(body, "body\r\n");
		free(body);
	}
	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* A NUL byte inside one extra header's value cuts that value short; the
 * next extra header keeps its own value. */
static void test_header_nul(void)
{
	static const char with_nul[] = "left\0right";
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "body\n");
	struct config *cfg = CFG(.message = "subject = Hi\ntext = body.txt\n"
	                                     "headers = X-A: {{a}}\n  X-B: {{b}}\n  X-C: [{{b}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "a", "b");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 1, "ann@x.example", with_nul, "bee");
	r.l[1] = sizeof with_nul - 1;
	struct addr a = addr_of(r.f[0]);

	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_HDR(out.data, "X-A", "left");
	ASSERT_HDR(out.data, "X-B", "bee");
	ASSERT_HDR(out.data, "X-C", "[bee]");
	CU_ASSERT_PTR_NULL(strstr(out.data, "right"));

	/* the NUL in the last header's value */
	ROW(r, 2, "ann@x.example", "aye", with_nul);
	r.l[2] = sizeof with_nul - 1;
	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_HDR(out.data, "X-A", "aye");
	ASSERT_HDR(out.data, "X-B", "left");
	ASSERT_HDR(out.data, "X-C", "[left");
	CU_ASSERT_PTR_NULL(strstr(out.data, "right"));

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* ---- scale and reuse ---- */

/* 100,000 columns: the value tables live on the heap. */
static void test_many_columns(void)
{
	enum { N = 100000 };
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	char *hn = malloc((size_t)N * 8), *rv = malloc((size_t)N * 8);
	const char **hf = malloc(N * sizeof *hf), **rf = malloc(N * sizeof *rf);
	size_t *hl = malloc(N * sizeof *hl), *rl = malloc(N * sizeof *rl);

	CU_ASSERT_FATAL(hn && rv && hf && rf && hl && rl);
	tdir_new();
	tfile("body.txt", "a={{c50000}}\nb={{c99999}}\nc={{row}}\nd={{email}}\ne={{c1}}\n");
	struct config *cfg = CFG(.email_column = "c99999",
		.message = "subject = {{c0}} {{c99998}}\ntext = body.txt\nheaders = X-Last: {{c99997}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	for (size_t i = 0; i < N; i++) {
		hf[i] = hn + i * 8;
		snprintf(hn + i * 8, 8, "c%zu", i);
		hl[i] = strlen(hf[i]);
	}
	struct csv_row h = { .row = 0, .nfields = N, .fields = hf, .lens = hl };
	struct message_factory *f = factory(cfg, &h, N - 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);

	for (int round = 0; round < 2; round++) {
		char prefix = round ? 'w' : 'v';
		for (size_t i = 0; i < N; i++) {
			rf[i] = rv + i * 8;
			snprintf(rv + i * 8, 8, "%c%zu", prefix, i);
			rl[i] = strlen(rf[i]);
		}
		rf[N - 1] = round ? " Bob@Y.Example" : "ann@x.example";
		rl[N - 1] = strlen(rf[N - 1]);
		struct csv_row r = { .row = (size_t)round + 1, .nfields = N,
		                     .fields = rf, .lens = rl };
		struct addr a = addr_of(rf[N - 1]);
		char want[64];

		ASSERT_RC(render(f, &r, &a, &s, &out), 0);
		snprintf(want, sizeof want, "%c0 %c99998", prefix, prefix);
		ASSERT_HDR(out.data, "Subject", want);
		snprintf(want, sizeof want, "%c99997", prefix);
		ASSERT_HDR(out.data, "X-Last", want);
		char *body = body_of(out.data);
		snprintf(want, sizeof want, "a=%c50000", prefix);
		ASSERT_LINE(body, want);
		ASSERT_LINE(body, round ? "b=Bob@y.example" : "b=ann@x.example");
		ASSERT_LINE(body, round ? "c=2" : "c=1");
		ASSERT_LINE(body, round ? "d=Bob@y.example" : "d=ann@x.example");
		snprintf(want, sizeof want, "e=%c1", prefix);
		ASSERT_LINE(body, want);
		free(body);
		ASSERT_RC(message_check(f, &r, &a, &s, err, sizeof err), 0);
	}
	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
	free(hn);
	free(rv);
	free(hf);
	free(rf);
	free(hl);
	free(rl);
}

/* The fields of recipient i of the reuse tests: every third record is
 * short (the name and n fields missing), names vary in length. */
struct reuse_row {
	char email[64], name[128], n[16];
	struct trow t;
	struct addr a;
};

/* No CUnit calls here: test_threads runs it on several threads, and
 * CUnit's counters are not thread-safe. */
static int reuse_row_make(struct reuse_row *x, size_t i)
{
	char detail[160];

	snprintf(x->email, sizeof x->email, "user%zu@d%zu.example", i, i % 7);
	snprintf(x->n, sizeof x->n, "%zu", i);
	if (i % 3 == 1) {
		int k = (int)((i * 37) % 60);
		snprintf(x->name, sizeof x->name, "Name%zu Q%.*s", i, k,
		         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		ROW(x->t, i, x->email, x->name, x->n);
	} else if (i % 3 == 2) {
		x->name[0] = '\0';
		ROW(x->t, i, x->email, x->name, x->n);
	} else {
		x->name[0] = '\0';
		ROW(x->t, i, x->email);
	}
	return addr_parse(x->email, strlen(x->email), &x->a, detail, sizeof detail);
}

static struct config *reuse_config(void)
{
	tfile("body.txt", "to={{email}} n={{n}}\n");
	return CFG(.message = "subject = Row {{row}} n={{n}}\ntext = body.txt\n"
	                      "to_name = {{name}}\nheaders = X-N: {{n}}");
}

/* One scratch, 1000 different rows (long, empty and missing values, a
 * message_check of an unrelated row in between): every message has its
 * own To, Message-ID, Subject, header and body, nothing left over. */
static void test_scratch_reuse(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h;
	struct reuse_row x, other;
	char want[1024], mid[512];
	int bad = 0;

	tdir_new();
	struct config *cfg = reuse_config();
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "name", "n");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(reuse_row_make(&other, 99991), 0);
	snprintf(other.name, sizeof other.name, "%s", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ");

	for (size_t i = 1; i <= 1000 && bad < 5; i++) {
		int was_bad = 0;

		if (i % 10 == 0)
			ASSERT_RC(message_check(f, &other.t.r, &other.a, &s, err, sizeof err), 0);
		CU_ASSERT_EQUAL_FATAL(reuse_row_make(&x, i), 0);
		ASSERT_RC(render(f, &x.t.r, &x.a, &s, &out), 0);

		if (x.name[0] != '\0')
			snprintf(want, sizeof want, "%s <%s>", x.name, x.email);
		else
			snprintf(want, sizeof want, "%s", x.email);
		was_bad |= strcmp(hdr1(out.data, "To"), want) != 0;
		message_id(f, i, &x.a, mid, sizeof mid);
		snprintf(want, sizeof want, "<%s>", mid);
		was_bad |= strcmp(hdr1(out.data, "Message-ID"), want) != 0;
		snprintf(want, sizeof want, "Row %zu n=%s", i, i % 3 ? x.n : "");
		was_bad |= strcmp(hdr1(out.data, "Subject"), want) != 0;
		was_bad |= strcmp(hdr1(out.data, "X-N"), i % 3 ? x.n : "") != 0;
		char *body = body_of(out.data);
		snprintf(want, sizeof want, "to=%s n=%s\r\n", x.email, i % 3 ? x.n : "");
		was_bad |= strcmp(body, want) != 0;
		free(body);
		if (was_bad) {
			say("\n  row %zu rendered:\n%s\n", i, out.data);
			bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	message_scratch_free(&s);
	message_scratch_free(&s); /* a freed scratch is zeroed: freeing again is fine */
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* One factory, four threads, each with its own scratch: every message
 * equals the one rendered alone. */
enum { THREADS = 4, PER_THREAD = 150 };

struct thread_job {
	const struct message_factory *f;
	struct buf *ref;   /* reference renderings, index = row - 1 */
	size_t first;      /* first row */
	int mismatches;
	int failures;
};

static void *thread_render(void *arg)
{
	struct thread_job *j = arg;
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct reuse_row x;
	char e[512];

	for (size_t k = 0; k < THREADS * PER_THREAD; k++) {
		size_t i = (j->first + k) % (THREADS * PER_THREAD) + 1;

		buf_reset(&out);
		if (reuse_row_make(&x, i) < 0 ||
		    message_render(j->f, &x.t.r, &x.a, NOW, &s, &out, e, sizeof e) != 0) {
			j->failures++;
			continue;
		}
		if (out.len != j->ref[i - 1].len ||
		    memcmp(out.data, j->ref[i - 1].data, out.len) != 0)
			j->mismatches++;
	}
	message_scratch_free(&s);
	buf_free(&out);
	return NULL;
}

static void test_threads(void)
{
	struct message_scratch s = { 0 };
	struct buf ref[THREADS * PER_THREAD];
	struct thread_job jobs[THREADS];
	pthread_t tid[THREADS];
	struct reuse_row x;
	struct trow h;

	tdir_new();
	struct config *cfg = reuse_config();
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "name", "n");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	memset(ref, 0, sizeof ref);
	for (size_t i = 1; i <= THREADS * PER_THREAD; i++) {
		CU_ASSERT_EQUAL_FATAL(reuse_row_make(&x, i), 0);
		ASSERT_RC(render(f, &x.t.r, &x.a, &s, &ref[i - 1]), 0);
	}
	for (size_t t = 0; t < THREADS; t++) {
		jobs[t] = (struct thread_job){ .f = f, .ref = ref, .first = t * PER_THREAD };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[t], NULL, thread_render, &jobs[t]), 0);
	}
	for (size_t t = 0; t < THREADS; t++) {
		pthread_join(tid[t], NULL);
		CU_ASSERT_EQUAL(jobs[t].failures, 0);
		CU_ASSERT_EQUAL(jobs[t].mismatches, 0);
	}
	for (size_t i = 0; i < THREADS * PER_THREAD; i++)
		buf_free(&ref[i]);
	message_scratch_free(&s);
	message_factory_free(f);
	config_free(cfg);
}

/* ---- other keys wired through ---- */

/* to_name, reply_to, feedback_id, unsubscribe_mailto, extra headers, and
 * message_render appending to what out already holds. */
static void test_keys_wired(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("body.txt", "hi\n");
	struct config *cfg = CFG(.message =
		"subject = Hi\ntext = body.txt\n"
		"to_name = {{first}} {{last}}\n"
		"reply_to = Help@Acme.EXAMPLE\n"
		"feedback_id = {{campaign}}:acme\n"
		"unsubscribe_mailto = mailto:unsub@acme.example\n"
		"headers = X-Campaign: {{campaign}}\n  X-Row: {{row}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first", "last");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct addr a = addr_of("ann@x.example");

	ROW(r, 7, "ann@x.example", "Ann", "Lee");
	buf_reset(&out);
	buf_puts(&out, "KEEP");
	err[0] = '\0';
	ASSERT_RC(message_render(f, &r.r, &a, NOW, &s, &out, err, sizeof err), 0);
	CU_ASSERT_EQUAL(strncmp(out.data, "KEEPFrom: ", 10), 0);
	const char *m = out.data + 4;
	ASSERT_HDR(m, "To", "Ann Lee <ann@x.example>");
	ASSERT_HDR(m, "Reply-To", "Help@acme.example");
	ASSERT_HDR(m, "Feedback-ID", "spring:acme");
	ASSERT_HDR(m, "List-Unsubscribe", "<mailto:unsub@acme.example>");
	ASSERT_HDR(m, "List-Unsubscribe-Post", "(missing)"); /* no https URL */
	ASSERT_HDR(m, "X-Campaign", "spring");
	ASSERT_HDR(m, "X-Row", "7");

	/* a display name blank after rendering: none */
	ROW(r, 8, "ann@x.example", " ", "\t");
	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_HDR(out.data, "To", "ann@x.example");
	ASSERT_HDR(out.data, "X-Row", "8");

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* A template file reads partials from its own directory; config values
 * read them from the config's directory. */
static void test_partials(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;

	tdir_new();
	tfile("footer.txt", "-- WRONG footer from the config dir\n");
	tfile("subj.txt", "Offer for {{first}}");
	struct config *cfg = CFG(.message = "subject = {{> subj}}\ntext = " FIX_MSG "body.txt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 1, "ann@x.example", "Ann");
	struct addr a = addr_of(r.f[0]);

	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	ASSERT_HDR(out.data, "Subject", "Offer for Ann");
	char *body = body_of(out.data);
	ASSERT_LINE(body, "Hello Ann");
	ASSERT_LINE(body, "-- fixture footer for ann@x.example (spring)");
	CU_ASSERT_PTR_NULL(strstr(body, "WRONG"));
	free(body);

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* HTML body: {{x}} escaped, a text part generated next to it. */
static void test_html_body(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;
	char v[512];

	tdir_new();
	tfile("body.html", "<p>Hi {{first}}, {{{raw}}}</p>\n");
	struct config *cfg = CFG(.message = "subject = Hi\nhtml = body.html");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ROW(h, 0, "email", "first", "raw");
	struct message_factory *f = factory(cfg, &h.r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	ROW(r, 1, "ann@x.example", "<b>&", "<i>ok</i>");
	struct addr a = addr_of(r.f[0]);

	ASSERT_RC(render(f, &r.r, &a, &s, &out), 0);
	CU_ASSERT_EQUAL(hdr_get(out.data, "Content-Type", v, sizeof v), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "multipart/alternative"));
	/* text part first (RFC 2046 5.1.4: the preferred part last) */
	const char *text = strstr(out.data, "Content-Type: text/plain");
	const char *html = strstr(out.data, "Content-Type: text/html");
	CU_ASSERT_FATAL(text != NULL && html != NULL && text < html);
	/* in the HTML part {{first}} is escaped, {{{raw}}} is not */
	CU_ASSERT_PTR_NOT_NULL(strstr(html, "<p>Hi &lt;b&gt;&amp;, <i>ok</i></p>"));
	CU_ASSERT_PTR_NULL(strstr(html, "<b>&"));
	/* the generated text part reads the value as text again */
	char *tp = strndup(text, (size_t)(html - text));
	CU_ASSERT_PTR_NOT_NULL(strstr(tp, "Hi <b>&, ok"));
	CU_ASSERT_PTR_NULL(strstr(tp, "&lt;"));
	if (strstr(tp, "Hi <b>&, ok") == NULL)
		say("\n  message:\n%s\n", out.data);
	free(tp);

	message_scratch_free(&s);
	buf_free(&out);
	message_factory_free(f);
	config_free(cfg);
}

/* ---- DKIM ---- */

#define DKIM_RSA "[dkim]\ndomain = acme.example\nselector = rsa\nkey = " FIX_DKIM "rsa2048.pem\n"
#define DKIM_ED "[dkim ed]\ndomain = acme.example\nselector = ed\nkey = " FIX_DKIM "ed25519.pem\n"

/* Length of the leading DKIM-Signature fields (with continuation lines). */
static size_t dkim_prefix_len(const char *m, int *count)
{
	const char *p = m;

	*count = 0;
	while (strncasecmp(p, "DKIM-Signature:", 15) == 0) {
		(*count)++;
		do {
			const char *eol = strstr(p, "\r\n");
			if (eol == NULL)
				return strlen(m);
			p = eol + 2;
		} while (*p == ' ' || *p == '\t');
	}
	return (size_t)(p - m);
}

/* Signatures come first, one per [dkim] section; the message after them
 * is exactly the unsigned one. */
static void test_dkim_sign(void)
{
	struct message_scratch s = { 0 };
	struct buf out = { 0 }, plain = { 0 };
	struct trow h, r;
	char v[4096];
	int n;

	tdir_new();
	tfile("body.txt", "Hello {{first}}\n");
	struct config *c0 = CFG(.file = "plain.ini");
	struct config *c1 = CFG(.file = "one.ini", .tail = DKIM_RSA);
	struct config *c2 = CFG(.file = "two.ini", .tail = DKIM_RSA "\n" DKIM_ED);
	CU_ASSERT_FATAL(c0 && c1 && c2);
	CU_ASSERT_EQUAL(c2->ndkim, 2);
	ROW(h, 0, "email", "first");
	stderr_grab();
	struct message_factory *f0 = factory(c0, &h.r, 0);
	struct message_factory *f1 = factory(c1, &h.r, 0);
	struct message_factory *f2 = factory(c2, &h.r, 0);
	char *warn = stderr_release();
	CU_ASSERT_FATAL(f0 && f1 && f2);
	/* RSA 2048 + Ed25519, both aligned with From: nothing to warn about */
	if (warn[0] != '\0')
		say("\n  unexpected warnings: %s\n", warn);
	CU_ASSERT_STRING_EQUAL(warn, "");
	free(warn);
	ROW(r, 1, "ann@x.example", "Ann");
	struct addr a = addr_of(r.f[0]);

	ASSERT_RC(render(f0, &r.r, &a, &s, &plain), 0);
	CU_ASSERT_EQUAL(dkim_prefix_len(plain.data, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(hdr_get(plain.data, "DKIM-Signature", v, sizeof v), 0);

	ASSERT_RC(render(f1, &r.r, &a, &s, &out), 0);
	CU_ASSERT_EQUAL(strncmp(out.data, "DKIM-Signature:", 15), 0);
	size_t pl = dkim_prefix_len(out.data, &n);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(hdr_get(out.data, "DKIM-Signature", v, sizeof v), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "d=acme.example;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "s=rsa;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "a=rsa-sha256;"));
	CU_ASSERT_EQUAL(out.len - pl, plain.len);
	CU_ASSERT(out.len > pl && memcmp(out.data + pl, plain.data, plain.len) == 0);

	ASSERT_RC(render(f2, &r.r, &a, &s, &out), 0);
	CU_ASSERT_EQUAL(strncmp(out.data, "DKIM-Signature:", 15), 0);
	pl = dkim_prefix_len(out.data, &n);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(hdr_get(out.data, "DKIM-Signature", v, sizeof v), 2);
	int rsa = 0, ed = 0;
	for (int i = 0; i < 2; i++) {
		hdr_nth(out.data, "DKIM-Signature", i, v, sizeof v);
		CU_ASSERT_PTR_NOT_NULL(strstr(v, "d=acme.example;"));
		rsa += strstr(v, "a=rsa-sha256;") != NULL && strstr(v, "s=rsa;") != NULL;
		ed += strstr(v, "a=ed25519-sha256;") != NULL && strstr(v, "s=ed;") != NULL;
	}
	CU_ASSERT_EQUAL(rsa, 1);
	CU_ASSERT_EQUAL(ed, 1);
	CU_ASSERT_EQUAL(out.len - pl, plain.len);
	CU_ASSERT(out.len > pl && memcmp(out.data + pl, plain.data, plain.len) == 0);

	/* message_check does no signing and needs no keys at work */
	ASSERT_RC(message_check(f2, &r.r, &a, &s, err, sizeof err), 0);

	message_scratch_free(&s);
	buf_free(&out);
	buf_free(&plain);
	message_factory_free(f0);
	message_factory_free(f1);
	message_factory_free(f2);
	config_free(c0);
	config_free(c1);
	config_free(c2);
}

/* Warnings once at creation: an RSA-1024 key still loads; Ed25519 alone;
 * a d= that does not align with From. Unusable keys are errors naming
 * the [dkim] section's line. */
static void test_dkim_keys(void)
{
	static const struct {
		const char *tail;
		const char *warn; /* NULL: no warning expected */
		const char *from; /* NULL: news@acme.example */
	} ok[] = {
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "rsa1024.pem\n",
		  "1024", NULL },
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "ed25519.pem\n",
		  "Ed25519", NULL },
		{ "[dkim]\ndomain = other.example\nselector = s\nkey = " FIX_DKIM "rsa2048.pem\n",
		  "other.example", NULL },
		/* a label boundary matters: xacme.example is not acme.example */
		{ "[dkim]\ndomain = xacme.example\nselector = s\nkey = " FIX_DKIM "rsa2048.pem\n",
		  "align", NULL },
		/* a subdomain of the From domain aligns (relaxed) */
		{ "[dkim]\ndomain = mail.acme.example\nselector = s\nkey = " FIX_DKIM "rsa2048.pem\n",
		  NULL, NULL },
		{ "[dkim]\ndomain = ACME.example\nselector = s\nkey = " FIX_DKIM "rsa2048_traditional.pem\n",
		  NULL, NULL },
		/* and the other way round: From in a subdomain of d= aligns,
		 * From in a look-alike domain does not */
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "rsa2048.pem\n",
		  NULL, "news@mail.acme.example" },
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "rsa2048.pem\n",
		  "align", "news@xacme.example" },
	};
	static const struct {
		const char *tail, *what;
	} bad[] = {
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "rsa512.pem\n",
		  "rsa512.pem" },
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "ec_p256.pem\n",
		  "ec_p256.pem" },
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = " FIX_DKIM "rsa2048_encrypted.pem\n",
		  "rsa2048_encrypted.pem" },
		{ "[dkim]\ndomain = acme.example\nselector = s\nkey = nothere.pem\n",
		  "nothere.pem" },
	};
	struct message_scratch s = { 0 };
	struct buf out = { 0 };
	struct trow h, r;
	char v[4096];
	int n;

	tdir_new();
	tfile("body.txt", "hi\n");
	ROW(h, 0, "email");
	ROW(r, 1, "ann@x.example");
	struct addr a = addr_of(r.f[0]);
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		struct config *cfg = CFG(.tail = ok[i].tail, .from = ok[i].from);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		stderr_grab();
		struct message_factory *f = factory(cfg, &h.r, 0);
		char *warn = stderr_release();
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		const char *want = ok[i].warn;
		if (want != NULL) {
			if (strstr(warn, want) == NULL || strstr(warn, "warning") == NULL)
				say("\n  case %zu: stderr \"%s\", wanted \"%s\"\n",
				        i, warn, want);
			CU_ASSERT_PTR_NOT_NULL(strstr(warn, want));
			CU_ASSERT_PTR_NOT_NULL(strstr(warn, "warning"));
		} else {
			if (warn[0] != '\0')
				say("\n  case %zu: unexpected \"%s\"\n", i, warn);
			CU_ASSERT_STRING_EQUAL(warn, "");
		}
		free(warn);
		/* rendering warns no more, and signs */
		stderr_grab();
		int rc = render(f, &r.r, &a, &s, &out);
		warn = stderr_release();
		ASSERT_RC(rc, 0);
		CU_ASSERT_STRING_EQUAL(warn, "");
		free(warn);
		dkim_prefix_len(out.data, &n);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(hdr_get(out.data, "DKIM-Signature", v, sizeof v), 1);
		message_factory_free(f);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		/* message lines 7-8, a blank line 9: [dkim] is on line 10 */
		struct config *cfg = CFG(.tail = bad[i].tail);
		EXPECT_REFUSED(cfg, &h.r, 0, bad[i].what, "[dkim]");
		if (strstr(err, place("c.ini", MSG_LINE + 3)) == NULL)
			say("\n  case %zu: err \"%s\" lacks the [dkim] line\n", i, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, place("c.ini", MSG_LINE + 3)));
		config_free(cfg);
	}
	message_scratch_free(&s);
	buf_free(&out);
}

static void test_free_null(void)
{
	struct message_scratch s = { 0 };

	message_factory_free(NULL);
	message_scratch_free(&s);
	CU_ASSERT_PTR_NULL(s.vals);
	CU_ASSERT_EQUAL(s.nvals, 0);
}

static const struct test_case tests[] = {
	{ "builtins", test_builtins },
	{ "column_wins", test_column_wins },
	{ "address_column_any_name", test_address_column_any_name },
	{ "message_id", test_message_id },
	{ "unknown_columns", test_unknown_columns },
	{ "reserved_headers", test_reserved_headers },
	{ "unsubscribe_errors", test_unsubscribe_errors },
	{ "from", test_from },
	{ "missing_files", test_missing_files },
	{ "strict_variables", test_strict_variables },
	{ "unsubscribe_always_strict", test_unsubscribe_always_strict },
	{ "check_bodies", test_check_bodies },
	{ "empty_body", test_empty_body },
	{ "header_injection", test_header_injection },
	{ "header_nul", test_header_nul },
	{ "many_columns", test_many_columns },
	{ "scratch_reuse", test_scratch_reuse },
	{ "threads", test_threads },
	{ "keys_wired", test_keys_wired },
	{ "partials", test_partials },
	{ "html_body", test_html_body },
	{ "dkim_sign", test_dkim_sign },
	{ "dkim_keys", test_dkim_keys },
	{ "free_null", test_free_null },
	{ NULL, NULL },
};

int main(void)
{
	int rc = test_run("message", tests);

	tdir_rm();
	return rc;
}
