/*
 * test_journal.c - the send journal (campaign/journal.h), results.csv
 * lines (campaign/results.h) and the suppression log writer
 * (lists/suppress.h: suppress_append, read back by suppress_load).
 *
 * Every case works in its own directory under $TMPDIR (or /tmp), removed
 * at the end. Files are checked byte for byte against what the headers
 * document; lines of results.csv are also read back with libcsv, an
 * independent RFC 4180 parser.
 */
#include "cunit_main.h"

#include "address.h"
#include "buf.h"
#include "journal.h"
#include "results.h"
#include "strset.h"
#include "suppress.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FP1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define FP2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define CAMP "spring sale"
/* 2026-11-22T08:15:00Z */
#define NOW ((time_t)1795335300)

/* ---- helpers ---- */

/* A fresh private directory for one case. */
static void tdir_new(char *out, size_t n)
{
	const char *t = getenv("TMPDIR");

	snprintf(out, n, "%s/edm-test-journal-XXXXXX",
	         t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(out) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
		abort();
	}
}

static int tdir_rm_one(const char *p, const struct stat *st, int type,
                       struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

static void tdir_rm(const char *dir)
{
	nftw(dir, tdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file in a NUL-terminated malloc'd buffer (NULL if absent). */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = { 0 };
	char chunk[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.data == NULL)
		buf_puts(&b, "");
	if (len != NULL)
		*len = b.len;
	return b.data;
}

static void append_raw(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n)
		abort(); /* a test directory path never gets near PATH_MAX */
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static unsigned file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0;
}

/* A results line for row i (deterministic, varied). */
static void row_line(size_t i, struct buf *out)
{
	char email[64], mid[64];
	struct results_row r = {
		.time = NOW + (time_t)i,
		.email = email,
		.status = i % 3 ? "delivered" : "bounced",
		.code = i % 3 ? 250 : 550,
		.enhanced = i % 3 ? "2.0.0" : "5.1.1",
		.category = i % 3 ? NULL : "bad-mailbox",
		.reply = i % 3 ? "2.0.0 OK, queued as 4Xy" :
		                 "5.1.1 <x>: \"no such user\"\r\n  here",
		.attempts = 1 + (unsigned)(i % 2),
		.host = "mx1.example.com[127.0.0.2]:25",
		.source_ip = "192.0.2.1",
		.tls = "TLSv1.3",
		.message_id = mid,
		.queued_at = NOW - 60,
		.first_attempt_at = NOW - 30,
	};

	snprintf(email, sizeof email, "user%zu@example.com", i);
	snprintf(mid, sizeof mid, "<%zu.edm@example.com>", i);
	buf_reset(out);
	CU_ASSERT_FATAL(results_format(&r, out) == 0);
}

static struct journal *jopen(const char *dir, const char *fp, int force,
                             int *rc, char *err, size_t errlen)
{
	*rc = 12345;
	err[0] = '\0';
	return journal_open(dir, fp, CAMP, force, rc, err, errlen);
}

/* ---- results.h ---- */

static void test_results_time(void)
{
	char s[21];

	results_time(NOW, s);
	CU_ASSERT_STRING_EQUAL(s, "2026-11-22T08:15:00Z");
	results_time(1, s);
	CU_ASSERT_STRING_EQUAL(s, "1970-01-01T00:00:01Z");
	memset(s, 'x', sizeof s);
	results_time(0, s);
	CU_ASSERT_STRING_EQUAL(s, "");
	results_time(951782400, s); /* a leap day */
	CU_ASSERT_STRING_EQUAL(s, "2000-02-29T00:00:00Z");
	results_time(253402300799, s); /* the last second of 9999 */
	CU_ASSERT_STRING_EQUAL(s, "9999-12-31T23:59:59Z");
	results_time(253402300800, s); /* year 10000: does not fit */
	CU_ASSERT_STRING_EQUAL(s, "");
}

static void test_results_full_row(void)
{
	struct results_row r = {
		.time = NOW, .email = "ann@example.com", .status = "delivered",
		.code = 250, .enhanced = "2.0.0", .category = NULL,
		.reply = "2.0.0 Ok: queued as 4Xy", .attempts = 1,
		.host = "mx1.example.com[127.0.0.2]:25",
		.source_ip = "192.0.2.1", .tls = "TLSv1.3 unverified",
		.message_id = "<1.abc@example.com>", .queued_at = NOW - 60,
		.first_attempt_at = NOW - 30, .row = 42,
	};
	struct buf b = { 0 };

	buf_puts(&b, "prefix|");
	CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		"prefix|2026-11-22T08:15:00Z,ann@example.com,delivered,250,2.0.0,,"
		"2.0.0 Ok: queued as 4Xy,1,mx1.example.com[127.0.0.2]:25,"
		"192.0.2.1,TLSv1.3 unverified,<1.abc@example.com>,"
		"2026-11-22T08:14:00Z,2026-11-22T08:14:30Z,42");
	buf_free(&b);
}

static void test_results_empty_fields(void)
{
	struct results_row r = { .email = "a@example.com", .status = "skipped" };
	struct buf b = { 0 };

	CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
	/* 15 columns, numbers: code 0 is empty, attempts and row 0 are "0". */
	CU_ASSERT_STRING_EQUAL(b.data, ",a@example.com,skipped,,,,,0,,,,,,,0");
	buf_free(&b);
}

static void test_results_quoting(void)
{
	struct results_row r = {
		.email = "b@example.com", .status = "bounced", .code = 550,
		.reply = "550 5.1.1 \"b\" unknown,\r\nsee https://x.test/a",
		.tls = " none", .message_id = "trailing ", .attempts = 3,
	};
	struct buf b = { 0 };

	CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		",b@example.com,bounced,550,,,"
		"\"550 5.1.1 \"\"b\"\" unknown,  see https://x.test/a\",3,,,"
		"\" none\",\"trailing \",,,0");
	CU_ASSERT_PTR_NULL(strchr(b.data, '\n'));
	CU_ASSERT_PTR_NULL(strchr(b.data, '\r'));
	buf_free(&b);
}

/* CR/LF become spaces in every text field, not only the reply. */
static void test_results_one_line(void)
{
	struct results_row r = {
		.email = "c@example.com", .status = "bounced",
		.host = "mx\n1", .category = "a\rb", .message_id = "\n<x>",
	};
	struct buf b = { 0 };

	CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		",c@example.com,bounced,,,\"a b\",,0,\"mx 1\",,,\" <x>\",,,0");
	buf_free(&b);
}

static void test_results_injection_guard(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\"" },
		{ "+1+1", "'+1+1" },
		{ "-2+3", "'-2+3" },
		{ "@SUM(A1)", "'@SUM(A1)" },
		{ "\tx", "'\tx" },
		{ "=a,b", "\"'=a,b\"" },
		{ "=x ", "\"'=x \"" },
		{ "a=b", "a=b" },
		{ " =b", "\" =b\"" },
	};
	struct buf b = { 0 };

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct results_row r = { .email = "d@example.com",
		                         .status = "bounced",
		                         .reply = cases[i].in };
		char want[256];

		buf_reset(&b);
		snprintf(want, sizeof want, ",d@example.com,bounced,,,,%s,0,,,,,,,0",
		         cases[i].want);
		CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
		check(strcmp(b.data, want) == 0, __LINE__, "case %zu: got %s",
		      i, b.data);
	}
	/* The guard applies to email too (a legal address may start with
	 * '-' or '='), and to every other text field. */
	{
		struct results_row r = { .email = "-x@example.com",
		                         .status = "=1", .enhanced = "+5",
		                         .host = "@h", .code = -1 };

		buf_reset(&b);
		CU_ASSERT_EQUAL_FATAL(results_format(&r, &b), 0);
		/* code is a number: written bare, even negative. */
		CU_ASSERT_STRING_EQUAL(b.data,
			",'-x@example.com,'=1,-1,'+5,,,0,'@h,,,,,,0");
	}
	buf_free(&b);
}

/* libcsv field callback: collect fields into a NUL-separated buffer. */
static void csv_collect_field(void *s, size_t n, void *data)
{
	struct buf *b = data;

	buf_append(b, s, n);
	buf_putc(b, '\0');
}

/* Every line read back with libcsv gives the 14 fields, the guarded ones
 * with their ' and the rest unchanged (CR/LF as spaces). */
static void test_results_roundtrip_libcsv(void)
{
	const char *reply = "5.7.1 \"blocked\", see\r\nhttps://x.test/?a=1,b";
	struct results_row r = {
		.time = NOW, .email = "e@example.com", .status = "bounced",
		.code = 554, .enhanced = "5.7.1", .category = "policy",
		.reply = reply, .attempts = 2, .host = "=cmd|' /C calc'!A0",
		.tls = "none", .message_id = "<m@x>",
	};
	static const char *const want[14] = {
		"2026-11-22T08:15:00Z", "e@example.com", "bounced", "554",
		"5.7.1", "policy",
		"5.7.1 \"blocked\", see  https://x.test/?a=1,b", "2",
		"'=cmd|' /C calc'!A0", "", "none", "<m@x>", "", "",
	};
	struct csv_parser p;
	struct buf line = { 0 }, fields = { 0 };
	const char *f;
	size_t k;

	CU_ASSERT_EQUAL_FATAL(results_format(&r, &line), 0);
	CU_ASSERT_EQUAL_FATAL(csv_init(&p, CSV_STRICT), 0);
	CU_ASSERT_EQUAL(csv_parse(&p, line.data, line.len, csv_collect_field,
	                          NULL, &fields), line.len);
	csv_fini(&p, csv_collect_field, NULL, &fields);
	csv_free(&p);
	for (f = fields.data, k = 0; f != NULL && f < fields.data + fields.len;
	     f += strlen(f) + 1, k++) {
		if (k >= 14)
			break;
		check(strcmp(f, want[k]) == 0, __LINE__, "field %zu: '%s', want "
		      "'%s'", k, f, want[k]);
	}
	CU_ASSERT_EQUAL(k, 14);
	buf_free(&line);
	buf_free(&fields);
}

/* ---- journal: open ---- */

static void test_journal_fresh_open(void)
{
	char dir[PATH_MAX], out[PATH_MAX], p[PATH_MAX], err[512];
	struct journal *j;
	char *s;
	int rc;

	tdir_new(dir, sizeof dir);
	path_in(out, sizeof out, dir, "a/b/out"); /* mkdir -p */
	j = jopen(out, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(rc, JOURNAL_OK);
	CU_ASSERT_EQUAL(journal_resumed(j), 0);
	CU_ASSERT_EQUAL(journal_finals(j), 0);
	CU_ASSERT_EQUAL(journal_deferred(j), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 0, NULL), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 1000000, NULL), 0);
	CU_ASSERT_EQUAL(file_mode(out), 0700);

	path_in(p, sizeof p, out, "journal");
	CU_ASSERT_EQUAL(file_mode(p), 0600);
	s = slurp(p, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(strncmp(s, "E1 " FP1 " " CAMP " ", 3 + 64 + 13), 0);
	{
		/* ... then the current unix time and one newline. */
		char *end;
		long long t = strtoll(s + 3 + 64 + 13, &end, 10);

		CU_ASSERT(llabs(t - (long long)time(NULL)) < 60);
		CU_ASSERT_STRING_EQUAL(end, "\n");
	}
	free(s);

	path_in(p, sizeof p, out, "results.csv");
	CU_ASSERT_EQUAL(file_mode(p), 0600);
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s, RESULTS_HEADER "\n");
	free(s);
	path_in(p, sizeof p, out, "results.csv.tmp");
	CU_ASSERT_EQUAL(access(p, F_OK), -1);
	path_in(p, sizeof p, out, "lock");
	CU_ASSERT_EQUAL(file_mode(p), 0600);

	journal_close(j);
	journal_close(NULL);
	tdir_rm(dir);
}

static void test_journal_bad_args(void)
{
	char dir[PATH_MAX], err[512];
	int rc;

	tdir_new(dir, sizeof dir);
	CU_ASSERT_PTR_NULL(journal_open(dir, "", CAMP, 0, &rc, err, sizeof err));
	CU_ASSERT_EQUAL(rc, JOURNAL_ERR);
	CU_ASSERT_PTR_NULL(journal_open(dir, "ab cd", CAMP, 0, &rc, err,
	                                sizeof err));
	CU_ASSERT_PTR_NULL(journal_open(dir, FP1, "a\nb", 0, &rc, err,
	                                sizeof err));
	CU_ASSERT_PTR_NULL(journal_open(dir, FP1, "", 0, &rc, err, sizeof err));
	CU_ASSERT_EQUAL(rc, JOURNAL_ERR);
	tdir_rm(dir);
}

/* An out_dir that cannot be created: an error naming it. */
static void test_journal_bad_dir(void)
{
	char dir[PATH_MAX], file[PATH_MAX], out[PATH_MAX], err[512];
	int rc;

	tdir_new(dir, sizeof dir);
	path_in(file, sizeof file, dir, "plainfile");
	close(open(file, O_CREAT | O_WRONLY, 0600));
	path_in(out, sizeof out, file, "out");
	CU_ASSERT_PTR_NULL(jopen(out, FP1, 0, &rc, err, sizeof err));
	CU_ASSERT_EQUAL(rc, JOURNAL_ERR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, out));
	tdir_rm(dir);
}

/* ---- journal: records ---- */

static void test_journal_finals_and_deferrals(void)
{
	char dir[PATH_MAX], p[PATH_MAX], err[512], want[4096];
	struct journal_deferral d = { 1, NOW + 300, NOW, NOW - 10 }, got;
	struct buf l1 = { 0 }, l2 = { 0 };
	struct journal *j;
	char *s, *nl;
	int rc;

	tdir_new(dir, sizeof dir);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	row_line(1, &l1);
	row_line(3, &l2);

	CU_ASSERT_EQUAL(journal_final(j, 1, l1.data, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_defer(j, 2, &d, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 1, NULL), 1);
	CU_ASSERT_EQUAL(journal_row_state(j, 2, &got), 2);
	CU_ASSERT_EQUAL(got.attempts, 1);
	CU_ASSERT_EQUAL(got.next_retry, NOW + 300);
	CU_ASSERT_EQUAL(got.first_attempt, NOW);
	CU_ASSERT_EQUAL(got.queued_at, NOW - 10);
	/* A later D replaces, a later F removes. */
	d.attempts = 2;
	d.next_retry = NOW + 900;
	CU_ASSERT_EQUAL(journal_defer(j, 2, &d, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 2, &got), 2);
	CU_ASSERT_EQUAL(got.attempts, 2);
	CU_ASSERT_EQUAL(got.next_retry, NOW + 900);
	CU_ASSERT_EQUAL(journal_final(j, 2, l2.data, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 2, &got), 1);
	CU_ASSERT_EQUAL(journal_row_state(j, 3, NULL), 0);

	/* Refused: a second final, a deferral of a final row, a line break. */
	CU_ASSERT_EQUAL(journal_final(j, 1, l1.data, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "row 1"));
	CU_ASSERT_EQUAL(journal_defer(j, 2, &d, err, sizeof err), -1);
	CU_ASSERT_EQUAL(journal_final(j, 4, "a\nb", err, sizeof err), -1);
	CU_ASSERT_EQUAL(journal_row_state(j, 4, NULL), 0);
	CU_ASSERT_EQUAL(journal_final(j, 2000000000, "x", err, sizeof err), -1);
	CU_ASSERT_EQUAL(journal_sync(j), 0);

	/* The files, byte for byte (before close: each record is written at
	 * once, no buffering). */
	path_in(p, sizeof p, dir, "journal");
	s = slurp(p, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	nl = strchr(s, '\n');
	CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
	snprintf(want, sizeof want,
	         "F 1 %s\n"
	         "D 2 1 %lld %lld %lld\n"
	         "D 2 2 %lld %lld %lld\n"
	         "F 2 %s\n", l1.data,
	         (long long)NOW + 300, (long long)NOW, (long long)NOW - 10,
	         (long long)NOW + 900, (long long)NOW, (long long)NOW - 10,
	         l2.data);
	CU_ASSERT_STRING_EQUAL(nl + 1, want);
	free(s);
	path_in(p, sizeof p, dir, "results.csv");
	s = slurp(p, NULL);
	snprintf(want, sizeof want, RESULTS_HEADER "\n%s\n%s\n", l1.data,
	         l2.data);
	CU_ASSERT_STRING_EQUAL(s, want);
	free(s);

	journal_close(j);
	buf_free(&l1);
	buf_free(&l2);
	tdir_rm(dir);
}

/* Write a mixed history, close, reopen: the state and results.csv come
 * back exactly. Negative and zero times survive the text format. */
static void test_journal_reopen_resume(void)
{
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	struct journal_deferral d, got;
	struct buf l = { 0 };
	struct journal *j;
	char *before, *after;
	int rc;

	tdir_new(dir, sizeof dir);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	for (size_t row = 1; row <= 200; row++) {
		if (row % 4 == 0) {
			row_line(row, &l);
			CU_ASSERT_EQUAL(journal_final(j, row, l.data, err,
			                              sizeof err), 0);
		} else if (row % 4 == 1) {
			d.attempts = (unsigned)row;
			d.next_retry = NOW + (time_t)row;
			d.first_attempt = row == 1 ? -5 : 0;
			d.queued_at = NOW;
			CU_ASSERT_EQUAL(journal_defer(j, row, &d, err,
			                              sizeof err), 0);
		}
	}
	/* Deferred, then final: rows 5 and 9. */
	row_line(5, &l);
	CU_ASSERT_EQUAL(journal_final(j, 5, l.data, err, sizeof err), 0);
	row_line(9, &l);
	CU_ASSERT_EQUAL(journal_final(j, 9, l.data, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_finals(j), 0); /* counts are at open */
	journal_close(j);

	path_in(p, sizeof p, dir, "results.csv");
	before = slurp(p, NULL);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(rc, JOURNAL_OK);
	CU_ASSERT_EQUAL(journal_resumed(j), 1);
	CU_ASSERT_EQUAL(journal_finals(j), 52);
	CU_ASSERT_EQUAL(journal_deferred(j), 48);
	for (size_t row = 0; row <= 201; row++) {
		int want = row == 0 || row > 200 ? 0 :
		           row % 4 == 0 || row == 5 || row == 9 ? 1 :
		           row % 4 == 1 ? 2 : 0;
		int st = journal_row_state(j, row, &got);

		check(st == want, __LINE__, "row %zu: state %d, want %d", row,
		      st, want);
		if (st == 2)
			check(got.attempts == row &&
			      got.next_retry == NOW + (time_t)row &&
			      got.first_attempt == (row == 1 ? -5 : 0) &&
			      got.queued_at == NOW, __LINE__,
			      "row %zu: deferral %u %lld %lld %lld", row,
			      got.attempts, (long long)got.next_retry,
			      (long long)got.first_attempt,
			      (long long)got.queued_at);
	}
	after = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(after, before);
	free(after);

	/* Appending after a resume continues the same files. */
	row_line(2, &l);
	CU_ASSERT_EQUAL(journal_final(j, 2, l.data, err, sizeof err), 0);
	journal_close(j);
	after = slurp(p, NULL);
	CU_ASSERT_EQUAL(strncmp(after, before, strlen(before)), 0);
	CU_ASSERT_EQUAL(strlen(after), strlen(before) + l.len + 1);
	free(after);
	free(before);
	buf_free(&l);
	tdir_rm(dir);
}

/* A header alone (a run that wrote nothing) is not a resume. */
static void test_journal_header_only_not_resumed(void)
{
	char dir[PATH_MAX], err[512];
	struct journal *j;
	int rc;

	tdir_new(dir, sizeof dir);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	journal_close(j);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(journal_resumed(j), 0);
	journal_close(j);
	tdir_rm(dir);
}

/* results.csv is rebuilt from the journal: removed, damaged, or behind it
 * (a crash between the two writes). */
static void test_journal_results_rebuilt(void)
{
	char dir[PATH_MAX], p[PATH_MAX], jp[PATH_MAX], err[512], raw[4096];
	struct buf l = { 0 };
	struct journal *j;
	char *good, *s;
	int rc;

	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "results.csv");
	path_in(jp, sizeof jp, dir, "journal");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	for (size_t row = 1; row <= 5; row++) {
		row_line(row, &l);
		CU_ASSERT_EQUAL(journal_final(j, row, l.data, err, sizeof err), 0);
	}
	journal_close(j);
	good = slurp(p, NULL);

	/* Removed. */
	CU_ASSERT_EQUAL(unlink(p), 0);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	journal_close(j);
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s, good);
	free(s);

	/* Truncated mid-line, with junk appended. */
	CU_ASSERT_EQUAL(truncate(p, (off_t)strlen(good) / 2), 0);
	append_raw(p, "junk,junk\n");
	/* A stale temp file of an interrupted open. */
	path_in(raw, sizeof raw, dir, "results.csv.tmp");
	close(open(raw, O_CREAT | O_WRONLY, 0644));
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	journal_close(j);
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s, good);
	free(s);
	CU_ASSERT_EQUAL(access(raw, F_OK), -1);

	/* The journal got an F the results file never saw. */
	row_line(6, &l);
	snprintf(raw, sizeof raw, "F 6 %s\n", l.data);
	append_raw(jp, raw);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(journal_row_state(j, 6, NULL), 1);
	journal_close(j);
	s = slurp(p, NULL);
	CU_ASSERT_EQUAL(strncmp(s, good, strlen(good)), 0);
	CU_ASSERT_STRING_EQUAL(s + strlen(good), raw + 4);

	/* A duplicate F (never written by edm) does not duplicate the row. */
	append_raw(jp, "F 6 other,line\n");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	journal_close(j);
	free(good);
	good = s;
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s, good);
	free(s);
	free(good);
	buf_free(&l);
	tdir_rm(dir);
}

static void test_journal_torn_last_line(void)
{
	char dir[PATH_MAX], jp[PATH_MAX], err[512];
	struct journal_deferral d = { 1, NOW + 300, NOW, NOW };
	struct buf l = { 0 };
	struct journal *j;
	off_t size;
	char *s;
	int rc;

	tdir_new(dir, sizeof dir);
	path_in(jp, sizeof jp, dir, "journal");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	row_line(1, &l);
	CU_ASSERT_EQUAL(journal_final(j, 1, l.data, err, sizeof err), 0);
	CU_ASSERT_EQUAL(journal_defer(j, 2, &d, err, sizeof err), 0);
	journal_close(j);
	size = file_size(jp);

	/* A crash mid-write of row 3's F. */
	append_raw(jp, "F 3 2026-11-22T08:15:00Z,user3@exa");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(file_size(jp), size);
	CU_ASSERT_EQUAL(journal_row_state(j, 3, NULL), 0);
	CU_ASSERT_EQUAL(journal_row_state(j, 1, NULL), 1);
	CU_ASSERT_EQUAL(journal_row_state(j, 2, NULL), 2);
	/* The next record starts on a fresh line. */
	row_line(3, &l);
	CU_ASSERT_EQUAL(journal_final(j, 3, l.data, err, sizeof err), 0);
	journal_close(j);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(journal_row_state(j, 3, NULL), 1);
	CU_ASSERT_EQUAL(journal_finals(j), 2);
	journal_close(j);

	/* A torn D too (a number cut short would parse: must be cut). */
	size = file_size(jp);
	append_raw(jp, "D 7 1 17953");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(journal_row_state(j, 7, NULL), 0);
	CU_ASSERT_EQUAL(file_size(jp), size);
	journal_close(j);

	/* Only a torn header: the journal starts over. */
	CU_ASSERT_EQUAL(truncate(jp, 0), 0);
	append_raw(jp, "E1 " FP1 " spr");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(journal_resumed(j), 0);
	journal_close(j);
	s = slurp(jp, NULL);
	CU_ASSERT_EQUAL(strncmp(s, "E1 " FP1 " " CAMP " ", 3 + 64 + 13), 0);
	CU_ASSERT_EQUAL(strchr(s, '\n') - s + 1, (long)strlen(s));
	free(s);
	buf_free(&l);
	tdir_rm(dir);
}

static void test_journal_fingerprint_changed(void)
{
	char dir[PATH_MAX], jp[PATH_MAX], err[512];
	struct buf l = { 0 };
	struct journal *j;
	char *before, *after;
	int rc, headers = 0;

	tdir_new(dir, sizeof dir);
	path_in(jp, sizeof jp, dir, "journal");
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	row_line(1, &l);
	CU_ASSERT_EQUAL(journal_final(j, 1, l.data, err, sizeof err), 0);
	journal_close(j);
	before = slurp(jp, NULL);

	/* Refused, naming both fingerprints, and nothing is written. */
	j = jopen(dir, FP2, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NULL(j);
	CU_ASSERT_EQUAL(rc, JOURNAL_CHANGED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, FP1));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, FP2));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, jp));
	after = slurp(jp, NULL);
	CU_ASSERT_STRING_EQUAL(after, before);
	free(after);

	/* Forced: accepted, the state kept, a new header appended. */
	j = jopen(dir, FP2, 1, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(rc, JOURNAL_OK);
	CU_ASSERT_EQUAL(journal_row_state(j, 1, NULL), 1);
	CU_ASSERT_EQUAL(journal_resumed(j), 1);
	journal_close(j);
	after = slurp(jp, NULL);
	CU_ASSERT_EQUAL(strncmp(after, before, strlen(before)), 0);
	CU_ASSERT_EQUAL(strncmp(after + strlen(before), "E1 " FP2 " ", 67), 0);
	for (char *s = after; (s = strstr(s, "E1 ")) != NULL; s++)
		headers++;
	CU_ASSERT_EQUAL(headers, 2);
	free(after);

	/* The latest header wins: FP2 opens without force, FP1 does not. */
	j = jopen(dir, FP2, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(j);
	journal_close(j);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NULL(j);
	CU_ASSERT_EQUAL(rc, JOURNAL_CHANGED);
	/* Forcing the same fingerprint again adds no header. */
	j = jopen(dir, FP2, 1, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(j);
	journal_close(j);
	after = slurp(jp, NULL);
	headers = 0;
	for (char *s = after; (s = strstr(s, "E1 ")) != NULL; s++)
		headers++;
	CU_ASSERT_EQUAL(headers, 2);
	free(after);
	free(before);
	buf_free(&l);
	tdir_rm(dir);
}

static void test_journal_locked(void)
{
	char dir[PATH_MAX], err[512];
	struct journal *j, *j2;
	int rc;

	tdir_new(dir, sizeof dir);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	j2 = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NULL(j2);
	CU_ASSERT_EQUAL(rc, JOURNAL_LOCKED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/lock"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, dir));
	/* Even with force. */
	CU_ASSERT_PTR_NULL(jopen(dir, FP2, 1, &rc, err, sizeof err));
	CU_ASSERT_EQUAL(rc, JOURNAL_LOCKED);
	journal_close(j);
	/* Released at close. */
	j2 = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(j2);
	journal_close(j2);
	tdir_rm(dir);
}

/* A damaged line: an error naming journal:LINE, nothing changed. */
static void test_journal_garbage_line(void)
{
	static const char *const bad[] = {
		"X nonsense", "", "F", "F 5", "F abc x", "F -1 x", "F 5x y",
		"D 1 2 3", "D 1 2 3 4 5 6", "D 1 2 3 4 x", "D x 1 2 3 4",
		"D 1 -2 3 4 5", "D 1 2 3 4 5 ", "F 99999999999 x",
		"F 18446744073709551616 x", "E1", "E1 " FP1, "E1 " FP1 " c x",
		"E2 " FP1 " c 1", "f 1 x", " F 1 x", "F  1 x",
	};
	char dir[PATH_MAX], jp[PATH_MAX], err[512], line[256], want[PATH_MAX + 16];
	struct buf l = { 0 };
	struct journal *j;
	int rc;

	tdir_new(dir, sizeof dir);
	path_in(jp, sizeof jp, dir, "journal");
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *before, *after;

		unlink(jp);
		j = jopen(dir, FP1, 0, &rc, err, sizeof err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		row_line(1, &l);
		CU_ASSERT_EQUAL(journal_final(j, 1, l.data, err, sizeof err), 0);
		journal_close(j);
		snprintf(line, sizeof line, "%s\nF 2 x\n", bad[i]);
		append_raw(jp, line);
		before = slurp(jp, NULL);
		j = jopen(dir, FP1, 0, &rc, err, sizeof err);
		snprintf(want, sizeof want, "%s:3:", jp);
		check(j == NULL && rc == JOURNAL_ERR && strstr(err, want) != NULL,
		      __LINE__, "'%s': rc %d err %s", bad[i], rc, err);
		journal_close(j);
		after = slurp(jp, NULL);
		CU_ASSERT_STRING_EQUAL(after, before);
		free(before);
		free(after);
	}

	/* Not a journal at all: line 1. */
	unlink(jp);
	close(open(jp, O_CREAT | O_WRONLY, 0600));
	append_raw(jp, "F 1 x\n");
	CU_ASSERT_PTR_NULL(jopen(dir, FP1, 0, &rc, err, sizeof err));
	snprintf(want, sizeof want, "%s:1:", jp);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));

	/* A NUL byte inside a line. */
	unlink(jp);
	{
		int fd = open(jp, O_CREAT | O_WRONLY, 0600);
		static const char nul[] = "E1 " FP1 " c 1\nF 1 a\0b\n";

		CU_ASSERT(write(fd, nul, sizeof nul - 1) == sizeof nul - 1);
		close(fd);
	}
	CU_ASSERT_PTR_NULL(jopen(dir, FP1, 0, &rc, err, sizeof err));
	CU_ASSERT_EQUAL(rc, JOURNAL_ERR);
	snprintf(want, sizeof want, "%s:2:", jp);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	buf_free(&l);
	tdir_rm(dir);
}

/* Campaign names may hold spaces: the header still parses. */
static void test_journal_campaign_with_spaces(void)
{
	char dir[PATH_MAX], err[512];
	struct journal *j;
	int rc;

	tdir_new(dir, sizeof dir);
	j = journal_open(dir, FP1, "a  b c ", 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	journal_close(j);
	j = journal_open(dir, FP1, "other", 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(j);
	journal_close(j);
	tdir_rm(dir);
}

/* ---- journal: 100k rows ---- */

#define BIG_ROWS 100000

struct big_result {
	int ok;
	size_t finals, deferred;
	long rss_growth_kb;
	double open_s;
	size_t bad_row;
};

/* Resident set in KiB from /proc/self/statm. */
static long rss_kb(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* In a child (its peak RSS is its own): reopen and check the state. */
static void big_reopen_child(const char *dir, int wfd)
{
	struct big_result r = { 0 };
	struct journal_deferral d;
	struct rusage ru;
	struct journal *j;
	char err[512];
	long before = rss_kb();
	double t0 = mono_s();
	int rc;

	j = journal_open(dir, FP1, CAMP, 0, &rc, err, sizeof err);
	r.open_s = mono_s() - t0;
	if (j != NULL) {
		r.ok = 1;
		r.finals = journal_finals(j);
		r.deferred = journal_deferred(j);
		for (size_t row = 1; row <= BIG_ROWS + 1; row++) {
			int want = row > BIG_ROWS ? 0 : row % 10 == 0 ?
			           (row % 20 == 0 ? 1 : 2) : 1;
			int st = journal_row_state(j, row, &d);

			if (st != want || (st == 2 && d.attempts != row % 7)) {
				r.bad_row = row;
				break;
			}
		}
		journal_close(j);
	}
	getrusage(RUSAGE_SELF, &ru);
	r.rss_growth_kb = ru.ru_maxrss - before;
	if (write(wfd, &r, sizeof r) != sizeof r)
		_exit(2);
	_exit(0);
}

static void test_journal_100k_rows(void)
{
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	struct journal_deferral d = { 0, NOW, NOW, NOW };
	struct big_result r;
	struct buf l = { 0 };
	struct journal *j;
	double t0, write_s;
	char *before, *after;
	off_t jsize;
	int rc, fds[2], status;
	pid_t pid;

	tdir_new(dir, sizeof dir);
	j = jopen(dir, FP1, 0, &rc, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	t0 = mono_s();
	/* Every 10th row deferred; every 20th deferred then final. */
	for (size_t row = 1; row <= BIG_ROWS; row++) {
		if (row % 10 == 0) {
			d.attempts = (unsigned)(row % 7);
			d.next_retry = NOW + (time_t)row;
			CU_ASSERT_FATAL(journal_defer(j, row, &d, err,
			                              sizeof err) == 0);
			continue;
		}
		row_line(row, &l);
		CU_ASSERT_FATAL(journal_final(j, row, l.data, err,
		                              sizeof err) == 0);
	}
	for (size_t row = 20; row <= BIG_ROWS; row += 20) {
		row_line(row, &l);
		CU_ASSERT_FATAL(journal_final(j, row, l.data, err,
		                              sizeof err) == 0);
	}
	write_s = mono_s() - t0;
	journal_close(j);
	path_in(p, sizeof p, dir, "journal");
	jsize = file_size(p);
	path_in(p, sizeof p, dir, "results.csv");
	before = slurp(p, NULL);

	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		big_reopen_child(dir, fds[1]);
	}
	close(fds[1]);
	memset(&r, 0, sizeof r);
	CU_ASSERT_EQUAL(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
	close(fds[0]);
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	fprintf(stderr, "\n    100k rows: write %.2f s, journal %lld bytes, "
	        "reopen %.3f s, peak RSS growth %ld KiB\n", write_s,
	        (long long)jsize, r.open_s, r.rss_growth_kb);
	CU_ASSERT(r.ok);
	CU_ASSERT_EQUAL(r.finals, BIG_ROWS - BIG_ROWS / 20);
	CU_ASSERT_EQUAL(r.deferred, BIG_ROWS / 20);
	check(r.bad_row == 0, __LINE__, "row %zu has the wrong state",
	      r.bad_row);
	/* Quick: well under a second without sanitizers; 5 s leaves room
	 * for ASan and a loaded machine. */
	CU_ASSERT(r.open_s < 5.0);
	/* Memory-sane: the journal (~16 MB here) is streamed, not held. The
	 * state is a 12.5 KB bitmap and 5,000 deferrals; 8 MiB allows for
	 * the allocator, far below a slurp of the file. */
	check(r.rss_growth_kb < 8192 && r.rss_growth_kb < jsize / 1024 / 2,
	      __LINE__, "peak RSS grew by %ld KiB for a %lld-byte journal",
	      r.rss_growth_kb, (long long)jsize);
	after = slurp(p, NULL);
	CU_ASSERT_PTR_NOT_NULL(after);
	CU_ASSERT(after != NULL && before != NULL &&
	          strcmp(after, before) == 0);
	free(after);
	free(before);
	buf_free(&l);
	tdir_rm(dir);
}

/* ---- suppress_append ---- */

/* The comparison key addr_parse() gives an address. */
static int set_has_addr(const struct strset *set, const char *a)
{
	struct addr ad;

	if (addr_parse(a, strlen(a), &ad, NULL, 0) < 0)
		return 0;
	return strset_has(set, ad.key, ad.len);
}

static void test_suppress_append_format(void)
{
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	char *s;

	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "suppressed.csv");
	CU_ASSERT_EQUAL(suppress_append(p, "Ann@Example.com", "bad-mailbox",
	                                NOW, "spring", err, sizeof err), 0);
	CU_ASSERT_EQUAL(file_mode(p), 0600);
	CU_ASSERT_EQUAL(suppress_append(p, "bob@example.com", "complaint, ARF",
	                                0, CAMP, err, sizeof err), 0);
	CU_ASSERT_EQUAL(suppress_append(p, "-c@example.com", NULL, NOW,
	                                "a \"b\"\nc", err, sizeof err), 0);
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s,
		"email,reason,time,campaign\n"
		"Ann@Example.com,bad-mailbox,2026-11-22T08:15:00Z,spring\n"
		"bob@example.com,\"complaint, ARF\",,spring sale\n"
		"-c@example.com,,2026-11-22T08:15:00Z,\"a \"\"b\"\" c\"\n");
	free(s);
	CU_ASSERT_EQUAL(suppress_append(p, "", "x", NOW, "c", err, sizeof err),
	                -1);
	tdir_rm(dir);
}

static void test_suppress_append_roundtrip(void)
{
	static const char *const addrs[] = {
		"Ann@Example.com", "bob@example.com", "-c@example.com",
		"d.e+tag@sub.example.org", "=f@example.net",
	};
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	struct strset *set = strset_new();
	size_t skipped = 99;
	long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "suppressed.csv");
	for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++)
		CU_ASSERT_EQUAL(suppress_append(p, addrs[i], "bad-mailbox, x",
		                                NOW, CAMP, err, sizeof err), 0);
	/* Again: a duplicate row loads as one key. */
	CU_ASSERT_EQUAL(suppress_append(p, "ANN@example.COM", "complaint", NOW,
	                                CAMP, err, sizeof err), 0);
	n = suppress_load(set, p, &skipped, err, sizeof err);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(skipped, 0);
	for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++)
		check(set_has_addr(set, addrs[i]), __LINE__, "%s not loaded",
		      addrs[i]);
	CU_ASSERT_FALSE(set_has_addr(set, "zed@example.com"));
	strset_free(set);
	tdir_rm(dir);
}

/* An existing file keeps its format: a plain list gets the address, a
 * CSV a row in its own columns (filled by name); either reads back. */
static void test_suppress_append_existing_formats(void)
{
	static const struct {
		const char *before, *after;
	} cases[] = {
		{ "a@example.com\nb@example.com\n",
		  "a@example.com\nb@example.com\nx@example.com\n" },
		{ "# bounces\n\na@example.com",
		  "# bounces\n\na@example.com\nx@example.com\n" },
		{ "Name,EMAIL,Extra\nA,a@example.com,1\n",
		  "Name,EMAIL,Extra\nA,a@example.com,1\n,x@example.com,\n" },
		{ "campaign, Email ,reason\r\nc,a@example.com,r\r\n",
		  "campaign, Email ,reason\r\nc,a@example.com,r\r\n"
		  "\"spring, sale\",x@example.com,\"bad, mailbox\"\n" },
		{ "email\na@example.com\n", "email\na@example.com\nx@example.com\n" },
		/* Only blanks and comments: edm's header, as for a new file. */
		{ "# none yet\n\n",
		  "# none yet\n\n" SUPPRESS_LOG_HEADER "\n"
		  "x@example.com,\"bad, mailbox\",2026-11-22T08:15:00Z,"
		  "\"spring, sale\"\n" },
	};
	char dir[PATH_MAX], p[PATH_MAX], err[512];

	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "list.txt");
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct strset *set = strset_new();
		size_t skipped = 99;
		char *s;
		int fd;

		unlink(p);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		CU_ASSERT(write(fd, cases[i].before, strlen(cases[i].before)) ==
		          (ssize_t)strlen(cases[i].before));
		close(fd);
		CU_ASSERT_EQUAL(suppress_append(p, "x@example.com", "bad, mailbox",
		                                NOW, "spring, sale", err,
		                                sizeof err), 0);
		s = slurp(p, NULL);
		check(strcmp(s, cases[i].after) == 0, __LINE__,
		      "case %zu: got [%s]", i, s);
		free(s);
		CU_ASSERT(suppress_load(set, p, &skipped, err, sizeof err) >= 1);
		check(set_has_addr(set, "x@example.com") && skipped == 0,
		      __LINE__, "case %zu: not read back (skipped %zu)", i,
		      skipped);
		/* An existing file's mode is left alone. */
		CU_ASSERT_EQUAL(file_mode(p), 0644);
		strset_free(set);
	}
	CU_ASSERT_EQUAL(suppress_append(p, "a\nb@example.com", NULL, NOW, NULL,
	                                err, sizeof err), -1);
	tdir_rm(dir);
}

/* A log with a BOM, CRLF header and no final newline (edited by hand):
 * the row starts on a new line, in the header's columns. */
static void test_suppress_append_edited_log(void)
{
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	struct strset *set = strset_new();
	char *s;
	int fd;
	static const char log[] = "\xef\xbb\xbf" "Email,Reason,Time,Campaign\r\n"
	                          "a@example.com,x,,c";

	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "s.csv");
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	CU_ASSERT(write(fd, log, sizeof log - 1) == sizeof log - 1);
	close(fd);
	CU_ASSERT_EQUAL(suppress_append(p, "b@example.com", "y", 0, "c", err,
	                                sizeof err), 0);
	s = slurp(p, NULL);
	CU_ASSERT_STRING_EQUAL(s, "\xef\xbb\xbf" "Email,Reason,Time,Campaign\r\n"
	                       "a@example.com,x,,c\nb@example.com,y,,c\n");
	free(s);
	CU_ASSERT_EQUAL(suppress_load(set, p, NULL, err, sizeof err), 2);
	strset_free(set);
	tdir_rm(dir);
}

/* Writers in several processes never interleave rows (flock). */
static void test_suppress_append_concurrent(void)
{
	enum { PROCS = 4, ROWS = 100 };
	char dir[PATH_MAX], p[PATH_MAX], err[512];
	struct strset *set = strset_new();
	pid_t pids[PROCS];
	size_t skipped = 99;
	char *s, *line;
	int lines = 0;

	tdir_new(dir, sizeof dir);
	path_in(p, sizeof p, dir, "s.csv");
	for (int k = 0; k < PROCS; k++) {
		pids[k] = fork();
		CU_ASSERT_FATAL(pids[k] >= 0);
		if (pids[k] == 0) {
			char a[64];

			for (int i = 0; i < ROWS; i++) {
				snprintf(a, sizeof a, "p%d.r%d@example.com", k, i);
				if (suppress_append(p, a, "bad-mailbox", NOW,
				                    CAMP, err, sizeof err) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int st;

		waitpid(pids[k], &st, 0);
		CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	s = slurp(p, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (line = s; *line; line = strchr(line, '\n') + 1, lines++) {
		if (lines == 0) {
			CU_ASSERT_EQUAL(strncmp(line, SUPPRESS_LOG_HEADER "\n",
			                        27), 0);
			continue;
		}
		if (strncmp(line, "p", 1) != 0 ||
		    strstr(line, "@example.com,bad-mailbox,2026-11-22T08:15:00Z,"
		                 CAMP "\n") == NULL) {
			check(0, __LINE__, "line %d mangled", lines + 1);
			break;
		}
	}
	CU_ASSERT_EQUAL(lines, 1 + PROCS * ROWS);
	free(s);
	CU_ASSERT_EQUAL(suppress_load(set, p, &skipped, err, sizeof err),
	                PROCS * ROWS);
	CU_ASSERT_EQUAL(skipped, 0);
	strset_free(set);
	tdir_rm(dir);
}

static const struct test_case tests[] = {
	{ "results_time", test_results_time },
	{ "results_full_row", test_results_full_row },
	{ "results_empty_fields", test_results_empty_fields },
	{ "results_quoting", test_results_quoting },
	{ "results_one_line", test_results_one_line },
	{ "results_injection_guard", test_results_injection_guard },
	{ "results_roundtrip_libcsv", test_results_roundtrip_libcsv },
	{ "journal_fresh_open", test_journal_fresh_open },
	{ "journal_bad_args", test_journal_bad_args },
	{ "journal_bad_dir", test_journal_bad_dir },
	{ "journal_finals_and_deferrals", test_journal_finals_and_deferrals },
	{ "journal_reopen_resume", test_journal_reopen_resume },
	{ "journal_header_only_not_resumed", test_journal_header_only_not_resumed },
	{ "journal_results_rebuilt", test_journal_results_rebuilt },
	{ "journal_torn_last_line", test_journal_torn_last_line },
	{ "journal_fingerprint_changed", test_journal_fingerprint_changed },
	{ "journal_locked", test_journal_locked },
	{ "journal_garbage_line", test_journal_garbage_line },
	{ "journal_campaign_with_spaces", test_journal_campaign_with_spaces },
	{ "journal_100k_rows", test_journal_100k_rows },
	{ "suppress_append_format", test_suppress_append_format },
	{ "suppress_append_roundtrip", test_suppress_append_roundtrip },
	{ "suppress_append_existing_formats", test_suppress_append_existing_formats },
	{ "suppress_append_edited_log", test_suppress_append_edited_log },
	{ "suppress_append_concurrent", test_suppress_append_concurrent },
	{ 0 },
};

int main(void)
{
	return test_run("journal", tests);
}
