/*
 * test_csv.c - csv_reader (RFC 4180 parsing, encodings, chunk boundaries,
 * errors) and csv_writer (quoting, U+FFFD, atomic commit, file mode).
 *
 * Inline cases are written to a private temp directory so each test shows
 * the exact bytes it feeds; the non-UTF-8 exports (GBK as Excel writes it,
 * GB18030, Big5, UTF-16LE "Unicode text", Latin-1) are checked-in fixtures
 * under tests/fixtures/csv/.
 */
#include "cunit_main.h"
#include "csv_reader.h"
#include "csv_writer.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX EDM_FIXTURES "/csv/"
#define CHUNK (64 * 1024) /* the reader's read size, for boundary cases */
#define FFFD "\xEF\xBF\xBD"

static char tmpdir[64];
static char errbuf[256];

/* ---- helpers -------------------------------------------------------- */

/* Path of a file in the private temp directory (created on first use). */
static const char *tmp_path(const char *name)
{
	static char path[256];

	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/edm_test_csv.XXXXXX");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(125);
		}
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Write bytes to a temp file and return its path. */
static const char *tmp_write(const char *name, const void *data, size_t len)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(125);
	}
	return path;
}

static struct csv_reader *open_file(const char *path, const char *enc,
                                    char delim)
{
	struct csv_reader_opts o = {path, enc, delim};

	errbuf[0] = '\0';
	return csv_reader_open(&o, errbuf, sizeof(errbuf));
}

/* Open a reader on inline bytes. */
static struct csv_reader *open_bytes(const void *data, size_t len,
                                     const char *enc, char delim)
{
	return open_file(tmp_write("in.csv", data, len), enc, delim);
}

#define open_str(s, enc, delim) open_bytes(s, sizeof(s) - 1, enc, delim)

/* Compare a record with the expected fields (NULL-terminated list). */
static int row_matches(const struct csv_row *row, const char *const *want,
                       int line)
{
	size_t n = 0, i;

	while (want[n] != NULL)
		n++;
	if (row->nfields != n) {
		fprintf(stderr, "\n  line %d: row %zu has %zu fields, want %zu\n",
		        line, row->row, row->nfields, n);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (row->lens[i] != strlen(want[i]) ||
		    memcmp(row->fields[i], want[i], row->lens[i]) != 0 ||
		    row->fields[i][row->lens[i]] != '\0') {
			fprintf(stderr, "\n  line %d: row %zu field %zu is "
			        "[%s], want [%s]\n", line, row->row, i + 1,
			        row->fields[i], want[i]);
			return 0;
		}
	}
	return 1;
}

/* Next record must be data row 'rowno' with exactly these fields. */
static const struct csv_row *next_is(struct csv_reader *r, size_t rowno,
                                     const char *const *want, int line)
{
	const struct csv_row *row = NULL;
	int rc = csv_reader_next(r, &row, errbuf, sizeof(errbuf));

	CU_ASSERT_EQUAL(rc, 1);
	if (rc != 1) {
		fprintf(stderr, "\n  line %d: next = %d (%s)\n", line, rc,
		        errbuf);
		return NULL;
	}
	CU_ASSERT_EQUAL(row->row, rowno);
	CU_ASSERT(row_matches(row, want, line));
	return row;
}

#define NEXT_IS(r, rowno, ...) \
	next_is(r, rowno, (const char *const[]){__VA_ARGS__, NULL}, __LINE__)
#define HEADER_IS(r, ...) \
	CU_ASSERT(row_matches(csv_reader_header(r), \
	                      (const char *const[]){__VA_ARGS__, NULL}, \
	                      __LINE__))

static void expect_eof(struct csv_reader *r)
{
	const struct csv_row *row;

	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), 0);
	/* and it stays at the end */
	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), 0);
}

/* Independent UTF-8 check (decode, then range-check the code point). */
static int valid_utf8(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k, j;
	uint32_t cp;

	while (i < n) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if ((u[i] & 0xE0) == 0xC0) {
			k = 2;
			cp = u[i] & 0x1F;
		} else if ((u[i] & 0xF0) == 0xE0) {
			k = 3;
			cp = u[i] & 0x0F;
		} else if ((u[i] & 0xF8) == 0xF0) {
			k = 4;
			cp = u[i] & 0x07;
		} else {
			return 0;
		}
		if (i + k > n)
			return 0;
		for (j = 1; j < k; j++) {
			if ((u[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (u[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k;
	}
	return 1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b != NULL) {
		b[n] = '\0';
		*len = (size_t)n;
	}
	return b;
}

/* Growable byte buffer for generated files. */
struct gbuf {
	char *p;
	size_t len, cap;
};

static void gb_add(struct gbuf *g, const void *s, size_t n)
{
	if (g->len + n > g->cap) {
		g->cap = (g->len + n) * 2;
		g->p = realloc(g->p, g->cap);
		if (g->p == NULL)
			exit(125);
	}
	memcpy(g->p + g->len, s, n);
	g->len += n;
}

static void gb_str(struct gbuf *g, const char *s)
{
	gb_add(g, s, strlen(s));
}

static void gb_fill(struct gbuf *g, char c, size_t n)
{
	while (n-- > 0)
		gb_add(g, &c, 1);
}

/* ---- reader: RFC 4180 ---------------------------------------------- */

static void test_rfc4180_quoting(void)
{
	struct csv_reader *r = open_str(
		"email,name,note\r\n"
		"a@example.test,\"Smith, John\",\"He said \"\"hi\"\"\"\r\n"
		"b@example.test,\"multi\nline\r\nnote\",x\r\n"
		"c@example.test,\"\",\"\"\"\"\r\n"
		"d@example.test,plain,\"a,b\"\"c\"\r\n",
		NULL, ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email", "name", "note");
	CU_ASSERT_EQUAL(csv_reader_header(r)->row, 0);
	NEXT_IS(r, 1, "a@example.test", "Smith, John", "He said \"hi\"");
	/* the quoted line breaks stay data and do not count as rows */
	NEXT_IS(r, 2, "b@example.test", "multi\nline\r\nnote", "x");
	NEXT_IS(r, 3, "c@example.test", "", "\"");
	NEXT_IS(r, 4, "d@example.test", "plain", "a,b\"c");
	expect_eof(r);
	CU_ASSERT_PTR_NULL(csv_reader_hint(r));
	csv_reader_free(r);
}

static void test_line_endings(void)
{
	struct csv_reader *r;

	/* LF only, no trailing newline */
	r = open_str("email,n\na@example.test,1\nb@example.test,2", NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "a@example.test", "1");
	NEXT_IS(r, 2, "b@example.test", "2");
	expect_eof(r);
	csv_reader_free(r);

	/* mixed CRLF / LF / bare CR, blank lines between and after */
	r = open_str("\r\nemail,n\r\na@example.test,1\n\n\r\n"
	             "b@example.test,2\rc@example.test,\"3\"\r\n\r\n\n",
	             NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email", "n");
	NEXT_IS(r, 1, "a@example.test", "1");
	NEXT_IS(r, 2, "b@example.test", "2");
	NEXT_IS(r, 3, "c@example.test", "3");
	expect_eof(r);
	csv_reader_free(r);

	/* quoted last field without a newline after it */
	r = open_str("email\n\"x@example.test\"", NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "x@example.test");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_utf8_bom_stripped(void)
{
	struct csv_reader *r = open_file(FIX "utf8_bom.csv", "utf-8", ',');
	const struct csv_row *h;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	h = csv_reader_header(r);
	CU_ASSERT_EQUAL(h->lens[0], 5);
	CU_ASSERT_STRING_EQUAL(h->fields[0], "email");
	NEXT_IS(r, 1, "a@example.test", "Zo\xC3\xAB");
	expect_eof(r);
	csv_reader_free(r);

	/* "UTF8" spelling, BOM followed directly by a one-field header */
	r = open_str("\xEF\xBB\xBF" "email\n", "UTF8", ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_spaces_and_empty_fields(void)
{
	struct csv_reader *r = open_str(
		"email,a,b\n"
		"  lead@example.test,trail  , in side \n"
		",,\n"
		"\tx@example.test\t,\" quoted \",\n"
		"   \n",
		NULL, ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "  lead@example.test", "trail  ", " in side ");
	NEXT_IS(r, 2, "", "", "");
	NEXT_IS(r, 3, "\tx@example.test\t", " quoted ", "");
	/* a line of spaces is data, not a blank line */
	NEXT_IS(r, 4, "   ");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_other_delimiters(void)
{
	struct csv_reader *r;

	r = open_str("email\tname\tnote\n"
	             "a@example.test\t Bob \tx, y\n"
	             "b@example.test\t\t\"tab\there\"\n",
	             NULL, '\t');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email", "name", "note");
	NEXT_IS(r, 1, "a@example.test", " Bob ", "x, y");
	NEXT_IS(r, 2, "b@example.test", "", "tab\there");
	expect_eof(r);
	csv_reader_free(r);

	r = open_str("email;name\r\nc@example.test;Doe, Jane\r\n"
	             "d@example.test;\"a;b\"\r\n", NULL, ';');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email", "name");
	NEXT_IS(r, 1, "c@example.test", "Doe, Jane");
	NEXT_IS(r, 2, "d@example.test", "a;b");
	expect_eof(r);
	csv_reader_free(r);

	r = open_str("email|name\ne@example.test|x,y;z\n", NULL, '|');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "e@example.test", "x,y;z");
	expect_eof(r);
	csv_reader_free(r);

	/* delimiter 0 means ',' */
	r = open_str("email,name\nf@example.test,a|b\n", NULL, '\0');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "f@example.test", "a|b");
	expect_eof(r);
	csv_reader_free(r);

	/* a quote or line break cannot delimit */
	r = open_str("email\n", NULL, '"');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "cannot be the delimiter"));
}

static void test_wrong_field_counts(void)
{
	struct csv_reader *r = open_str("email,name,city\n"
	                                "a@example.test\n"
	                                "b@example.test,B,C,extra,more\n"
	                                "c@example.test,C,Town\n",
	                                NULL, ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "a@example.test");
	NEXT_IS(r, 2, "b@example.test", "B", "C", "extra", "more");
	NEXT_IS(r, 3, "c@example.test", "C", "Town");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_header_only(void)
{
	struct csv_reader *r = open_str("email,name\n", NULL, ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	HEADER_IS(r, "email", "name");
	expect_eof(r);
	csv_reader_free(r);
}

/* ---- reader: encodings --------------------------------------------- */

static void test_gbk_excel(void)
{
	static const char *const aliases[] = {"gbk", "GBK", "gb2312",
	                                      "cp936", "GB18030", NULL};
	size_t i;

	for (i = 0; aliases[i] != NULL; i++) {
		struct csv_reader *r = open_file(FIX "gbk_excel.csv",
		                                 aliases[i], ',');

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		HEADER_IS(r, "邮箱", "姓名", "城市");
		NEXT_IS(r, 1, "zhang.wei@example.test", "张伟", "北京");
		NEXT_IS(r, 2, "wang.fang@example.test", "王芳", "上海");
		NEXT_IS(r, 3, "li.na@example.test", "李娜", "广州");
		expect_eof(r);
		CU_ASSERT_PTR_NULL(csv_reader_hint(r));
		csv_reader_free(r);
	}
}

static void test_gbk_bad_row(void)
{
	struct csv_reader *r = open_file(FIX "gbk_bad.csv", "gbk", ',');
	const struct csv_row *row;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	row = NEXT_IS(r, 1, "zhang.wei@example.test", "张伟", "北京");
	CU_ASSERT(row != NULL && !row->bad_encoding);
	/* exactly the 0x80 becomes U+FFFD; the characters around survive */
	row = NEXT_IS(r, 2, "wang.fang@example.test", "王" FFFD "芳", "上海");
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail,
	                       "field 2 (姓名): bytes invalid in gbk");
	row = NEXT_IS(r, 3, "li.na@example.test", "李娜", "广州");
	CU_ASSERT(row != NULL && !row->bad_encoding);
	CU_ASSERT(row != NULL && row->detail[0] == '\0');
	expect_eof(r);
	CU_ASSERT_PTR_NULL(csv_reader_hint(r));
	csv_reader_free(r);
}

static void test_gb18030_four_byte(void)
{
	struct csv_reader *r = open_file(FIX "gb18030_4byte.csv", "gbk", ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* U+20BB7 and U+3400 are 4-byte sequences in GB18030 */
	NEXT_IS(r, 1, "ji@example.test", "\xF0\xA0\xAE\xB7野家");
	NEXT_IS(r, 2, "qian@example.test", "\xE3\x90\x80丁");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_big5(void)
{
	struct csv_reader *r = open_file(FIX "big5.csv", "big5", ',');

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "chan@example.test", "陳大文");
	NEXT_IS(r, 2, "wong@example.test", "黃美玲");
	expect_eof(r);
	csv_reader_free(r);
}

static void test_utf16le_unicode_text(void)
{
	static const char *const encs[] = {"utf-16", "UTF16", "unicode",
	                                   "UTF-16LE", NULL};
	size_t i;

	for (i = 0; encs[i] != NULL; i++) {
		struct csv_reader *r = open_file(FIX "utf16le_excel.txt",
		                                 encs[i], '\t');

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		/* BOM gone whether iconv ate it (UTF-16) or not (UTF-16LE) */
		HEADER_IS(r, "email", "name", "note");
		NEXT_IS(r, 1, "zhang.wei@example.test", "张伟", "a, b");
		NEXT_IS(r, 2, "jose@example.test", "Jos\xC3\xA9", "");
		expect_eof(r);
		csv_reader_free(r);
	}
}

/* Append ASCII text as UTF-16LE. */
static void gb_utf16le(struct gbuf *g, const char *s)
{
	for (; *s != '\0'; s++) {
		gb_add(g, s, 1);
		gb_add(g, "", 1);
	}
}

static void test_utf16_lone_surrogate(void)
{
	struct gbuf g = {0};
	struct csv_reader *r;
	const struct csv_row *row;

	gb_add(&g, "\xFF\xFE", 2);
	gb_utf16le(&g, "email\tname\r\na@example.test\tx");
	gb_add(&g, "\x00\xD8", 2); /* U+D800 with no low surrogate */
	gb_utf16le(&g, "y\r\nb@example.test\tok\r\n");
	gb_add(&g, "c\x00@", 3);    /* odd byte count: cut at EOF */
	r = open_bytes(g.p, g.len, "utf-16", '\t');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	row = NEXT_IS(r, 1, "a@example.test", "x" FFFD "y");
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail,
	                       "field 2 (name): bytes invalid in utf-16");
	/* the code units after the bad one are still aligned */
	row = NEXT_IS(r, 2, "b@example.test", "ok");
	CU_ASSERT(row != NULL && !row->bad_encoding);
	row = NEXT_IS(r, 3, "c" FFFD);
	CU_ASSERT(row != NULL && row->bad_encoding);
	expect_eof(r);
	csv_reader_free(r);
	free(g.p);
}

static void test_latin1(void)
{
	static const char *const encs[] = {"latin1", "ISO-8859-1", NULL};
	size_t i;

	for (i = 0; encs[i] != NULL; i++) {
		struct csv_reader *r = open_file(FIX "latin1.csv", encs[i],
		                                 ',');

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		NEXT_IS(r, 1, "jose@example.test", "Jos\xC3\xA9");
		NEXT_IS(r, 2, "muller@example.test", "M\xC3\xBCller");
		expect_eof(r);
		csv_reader_free(r);
	}
}

static void test_utf8_campaign_fed_gbk(void)
{
	struct csv_reader *r = open_file(FIX "gbk_excel.csv", "utf-8", ',');
	const struct csv_row *h, *row;
	size_t i, n = 0;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	h = csv_reader_header(r);
	CU_ASSERT(h->bad_encoding);
	CU_ASSERT_EQUAL(h->nfields, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(h->detail, "field 1: bytes 0xD3 0xCA"));
	while ((rc = csv_reader_next(r, &row, errbuf, sizeof(errbuf))) == 1) {
		n++;
		CU_ASSERT(row->bad_encoding);
		CU_ASSERT_EQUAL(row->nfields, 3);
		/* the ASCII email is intact, names carry U+FFFD */
		CU_ASSERT_PTR_NOT_NULL(strstr(row->fields[0], "@example.test"));
		CU_ASSERT_PTR_NOT_NULL(strstr(row->fields[1], FFFD));
		for (i = 0; i < row->nfields; i++)
			CU_ASSERT(valid_utf8(row->fields[i], row->lens[i]));
		CU_ASSERT_PTR_NOT_NULL(strstr(row->detail, "field 2 ("));
		CU_ASSERT_PTR_NOT_NULL(strstr(row->detail,
		                              "are not valid utf-8"));
		if (n == 1)
			CU_ASSERT_PTR_NOT_NULL(strstr(row->detail,
			                              "bytes 0xD5 0xC5 are"));
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(csv_reader_hint(r));
	CU_ASSERT_STRING_EQUAL(csv_reader_hint(r), "gbk");
	csv_reader_free(r);
}

static void test_utf8_campaign_fed_big5(void)
{
	struct csv_reader *r = open_file(FIX "big5.csv", NULL, ',');
	const struct csv_row *row;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(!csv_reader_header(r)->bad_encoding);
	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), 1);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail,
	                       "field 2 (name): bytes 0xB3 0xAF 0xA4 "
	                       "are not valid utf-8");
	CU_ASSERT_PTR_NOT_NULL_FATAL(csv_reader_hint(r));
	CU_ASSERT_STRING_EQUAL(csv_reader_hint(r), "big5");
	csv_reader_free(r);
}

static void test_invalid_utf8(void)
{
	struct csv_reader *r = open_str(
		"email,name\n"
		"a@example.test,ab\xC0\xAF" "cd\n"          /* overlong '/' */
		"b@example.test,x\xE0\x80\xAF\n"            /* overlong 3-byte */
		"c@example.test,\xED\xA0\x80s\n"            /* surrogate D800 */
		"d@example.test,\xF4\x90\x80\x80\n"         /* U+110000 */
		"e@example.test,张\xE4\xB8,ok\n"            /* truncated */
		"f@example.test,\xED\x9F\xBF\xEE\x80\x80"
		"\xEF\xBF\xBF\xF4\x8F\xBF\xBF\n"            /* edges, valid */
		"g@example.test,\xFF\n",
		"utf-8", ',');
	const struct csv_row *row;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(!csv_reader_header(r)->bad_encoding);

	row = NEXT_IS(r, 1, "a@example.test", "ab" FFFD "cd");
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail, "field 2 (name): bytes 0xC0 "
	                       "0xAF are not valid utf-8");

	row = NEXT_IS(r, 2, "b@example.test", "x" FFFD);
	CU_ASSERT(row != NULL && row->bad_encoding);

	row = NEXT_IS(r, 3, "c@example.test", FFFD "s");
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail, "field 2 (name): bytes 0xED "
	                       "0xA0 0x80 are not valid utf-8");

	row = NEXT_IS(r, 4, "d@example.test", FFFD);
	CU_ASSERT(row != NULL && row->bad_encoding);

	row = NEXT_IS(r, 5, "e@example.test", "张" FFFD, "ok");
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT(row->bad_encoding);
	CU_ASSERT_STRING_EQUAL(row->detail, "field 2 (name): bytes 0xE4 "
	                       "0xB8 are not valid utf-8");

	/* U+D7FF, U+E000, U+FFFF, U+10FFFF are all fine */
	row = NEXT_IS(r, 6, "f@example.test",
	              "\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF");
	CU_ASSERT(row != NULL && !row->bad_encoding);

	row = NEXT_IS(r, 7, "g@example.test", FFFD);
	CU_ASSERT_FATAL(row != NULL);
	CU_ASSERT_STRING_EQUAL(row->detail, "field 2 (name): byte 0xFF is "
	                       "not valid utf-8");
	expect_eof(r);
	csv_reader_free(r);
}

/* ---- reader: chunk boundaries -------------------------------------- */

static void test_field_larger_than_chunk(void)
{
	struct gbuf g = {0};
	char *want;
	size_t prefix, i, flen = 200 * 1024, qpos;
	struct csv_reader *r;
	const struct csv_row *row;

	gb_str(&g, "email,note,z\n");
	gb_str(&g, "a@example.test,short,1\n");
	gb_str(&g, "b@example.test,\"");
	prefix = g.len;
	/* put an escaped quote pair across the first chunk boundary and a
	 * line break across the second */
	want = malloc(flen + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	qpos = CHUNK - 1 - prefix;
	for (i = 0; i < flen; i++)
		want[i] = (char)('a' + i % 26);
	want[qpos] = '"';
	want[2 * CHUNK - 2 - prefix] = '\n';
	want[flen] = '\0';
	for (i = 0; i < flen; i++) {
		if (want[i] == '"')
			gb_add(&g, "\"", 1);
		gb_add(&g, &want[i], 1);
	}
	CU_ASSERT_EQUAL(g.p[CHUNK - 1], '"');
	CU_ASSERT_EQUAL(g.p[CHUNK], '"');
	gb_str(&g, "\",2\n");
	gb_str(&g, "c@example.test,after,3\n");

	r = open_bytes(g.p, g.len, NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "a@example.test", "short", "1");
	CU_ASSERT_EQUAL_FATAL(csv_reader_next(r, &row, errbuf,
	                                      sizeof(errbuf)), 1);
	CU_ASSERT_EQUAL(row->row, 2);
	CU_ASSERT_EQUAL(row->nfields, 3);
	CU_ASSERT_EQUAL(row->lens[1], flen);
	CU_ASSERT(row->lens[1] == flen && memcmp(row->fields[1], want,
	                                         flen) == 0);
	CU_ASSERT_STRING_EQUAL(row->fields[2], "2");
	NEXT_IS(r, 3, "c@example.test", "after", "3");
	expect_eof(r);
	csv_reader_free(r);
	free(want);
	free(g.p);
}

/* Append a row whose name field puts 'ch' at file offset 'at'. */
static void put_char_at(struct gbuf *g, size_t at, const char *ch,
                        size_t chlen)
{
	gb_str(g, "q@example.test,");
	CU_ASSERT_FATAL(at >= g->len);
	gb_fill(g, 'a', at - g->len);
	gb_add(g, ch, chlen);
	gb_str(g, "\r\n");
}

static void test_multibyte_across_chunks(void)
{
	/* 张 in GBK, U+20BB7 in GB18030 (4 bytes), 张 in UTF-8 */
	static const char zhang_gbk[] = "\xD5\xC5";
	static const char ji_gb[] = "\x95\x34\xB2\x35";
	static const char zhang_u8[] = "\xE5\xBC\xA0";
	struct gbuf g = {0};
	struct csv_reader *r;
	const struct csv_row *row;
	size_t n = 0;
	int rc;

	gb_str(&g, "email,name\r\n");
	put_char_at(&g, CHUNK - 1, zhang_gbk, 2);         /* split 1+1 */
	put_char_at(&g, 2 * CHUNK - 2, ji_gb, 4);         /* split 2+2 */
	put_char_at(&g, 3 * CHUNK - 3, ji_gb, 4);         /* split 3+1 */
	r = open_bytes(g.p, g.len, "gbk", ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	while ((rc = csv_reader_next(r, &row, errbuf, sizeof(errbuf))) == 1) {
		const char *want = n == 0 ? "\xE5\xBC\xA0"
		                          : "\xF0\xA0\xAE\xB7";
		size_t wl = strlen(want);

		n++;
		CU_ASSERT(!row->bad_encoding);
		CU_ASSERT_EQUAL(row->nfields, 2);
		CU_ASSERT(row->lens[1] > wl &&
		          memcmp(row->fields[1] + row->lens[1] - wl, want,
		                 wl) == 0);
		CU_ASSERT(row->lens[1] > wl && row->fields[1][0] == 'a' &&
		          row->fields[1][row->lens[1] - wl - 1] == 'a');
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, 3);
	csv_reader_free(r);

	/* the same for UTF-8 input: a 3-byte character split 1+2 */
	g.len = 0;
	gb_str(&g, "email,name\r\n");
	put_char_at(&g, CHUNK - 1, zhang_u8, 3);
	r = open_bytes(g.p, g.len, "utf-8", ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(csv_reader_next(r, &row, errbuf,
	                                      sizeof(errbuf)), 1);
	CU_ASSERT(!row->bad_encoding);
	CU_ASSERT(row->lens[1] > 3 &&
	          memcmp(row->fields[1] + row->lens[1] - 3, zhang_u8, 3) == 0);
	expect_eof(r);
	csv_reader_free(r);

	/* a GBK file cut in the middle of a character: a marker at EOF */
	g.len = 0;
	gb_str(&g, "email,name\r\nz@example.test,ab\xD5");
	r = open_bytes(g.p, g.len, "gbk", ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	row = NEXT_IS(r, 1, "z@example.test", "ab" FFFD);
	CU_ASSERT(row != NULL && row->bad_encoding);
	expect_eof(r);
	csv_reader_free(r);
	free(g.p);
}

static void test_many_rows_and_progress(void)
{
	struct gbuf g = {0};
	struct csv_reader *r;
	const struct csv_row *row;
	size_t i, n = 0, done = 1, total = 0;
	char line[64];
	int rc, ok = 1;

	gb_str(&g, "email,i\n");
	for (i = 1; i <= 20000; i++) {
		snprintf(line, sizeof(line), "u%zu@example.test,%zu\n", i, i);
		gb_str(&g, line);
	}
	r = open_bytes(g.p, g.len, NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	csv_reader_progress(r, &done, &total);
	CU_ASSERT_EQUAL(total, g.len);
	CU_ASSERT(done > 0 && done <= total);
	while ((rc = csv_reader_next(r, &row, errbuf, sizeof(errbuf))) == 1) {
		n++;
		snprintf(line, sizeof(line), "u%zu@example.test", n);
		if (row->row != n || row->nfields != 2 ||
		    strcmp(row->fields[0], line) != 0 ||
		    (size_t)atol(row->fields[1]) != n)
			ok = 0;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, 20000);
	CU_ASSERT(ok);
	csv_reader_progress(r, &done, &total);
	CU_ASSERT_EQUAL(done, g.len);
	CU_ASSERT_EQUAL(total, g.len);
	csv_reader_free(r);
	free(g.p);
}

/* ---- reader: errors ------------------------------------------------- */

static void test_open_errors(void)
{
	struct csv_reader *r;
	const char *p;

	r = open_file(FIX "no_such_file.csv", NULL, ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, FIX "no_such_file.csv"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "No such file"));

	p = tmp_write("empty.csv", "", 0);
	r = open_file(p, NULL, ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, p));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "empty file, no header row"));

	/* blank lines and a lone BOM are no header either */
	r = open_str("\xEF\xBB\xBF\r\n\n\r\n", NULL, ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "empty file, no header row"));

	r = open_file(FIX "utf16le_excel.txt", "utf-8", '\t');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "utf16le_excel.txt"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "looks like UTF-16 (BOM FF FE)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "encoding = utf-16"));

	r = open_file(FIX "gbk_excel.csv", "klingon-8", ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "\"klingon-8\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "gbk"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "utf-16"));

	/* a UTF-8 BOM in a file declared gbk */
	r = open_file(FIX "utf8_bom.csv", "gbk", ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "encoding = utf-8"));

	/* declared utf-16 but plainly 8-bit text */
	r = open_file(FIX "latin1.csv", "utf-16", ',');
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "not UTF-16"));
}

static void test_unbalanced_quote(void)
{
	struct gbuf g = {0};
	struct csv_reader *r;
	const struct csv_row *row;

	r = open_str("email,name\na@example.test,ok\n"
	             "b@example.test,\"open\nc@example.test,x\n", NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	NEXT_IS(r, 1, "a@example.test", "ok");
	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "row 2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "not closed"));
	/* the error is sticky */
	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), -1);
	csv_reader_free(r);

	/* an open quote swallowing megabytes stops early with an error */
	gb_str(&g, "email,name\nb@example.test,\"");
	gb_fill(&g, 'x', 2 * 1024 * 1024);
	r = open_bytes(g.p, g.len, NULL, ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(csv_reader_next(r, &row, errbuf, sizeof(errbuf)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "row 1: record longer than"));
	csv_reader_free(r);
	free(g.p);
	csv_reader_free(NULL);
}

/* ---- writer --------------------------------------------------------- */

static void test_writer_quoting(void)
{
	static const char *const f[] = {
		"plain", "a,b", "say \"hi\"", "line\nbreak", "cr\rx",
		" lead", "trail ", "in ner", "", "\t",
	};
	static const char want[] =
		"plain,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\"cr\rx\","
		"\" lead\",\"trail \",in ner,,\t\n"
		"\"\"\n"
		",\n"
		"ab" FFFD "cd" FFFD ",\"x," FFFD "\"\"\",张" FFFD "\n";
	const char *path = tmp_path("quoting.csv");
	struct csv_writer *w;
	size_t lens[10], i, len = 0;
	char *got;

	for (i = 0; i < 10; i++)
		lens[i] = strlen(f[i]);
	w = csv_writer_open(path, 0600, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(csv_writer_row(w, f, lens, 10), 0);
	/* one empty field must not turn into a blank line */
	CU_ASSERT_EQUAL(csv_writer_field(w, "", 0), 0);
	CU_ASSERT_EQUAL(csv_writer_end(w), 0);
	CU_ASSERT_EQUAL(csv_writer_field(w, "", 0), 0);
	CU_ASSERT_EQUAL(csv_writer_field(w, "", 0), 0);
	CU_ASSERT_EQUAL(csv_writer_end(w), 0);
	/* invalid UTF-8: each bad run is one U+FFFD, inside quotes too */
	CU_ASSERT_EQUAL(csv_writer_field(w, "ab\xFF" "cd\xC0\xAF", 7), 0);
	CU_ASSERT_EQUAL(csv_writer_field(w, "x,\xED\xA0\x80\"", 6), 0);
	CU_ASSERT_EQUAL(csv_writer_field(w, "张\xE4\xB8", 5), 0);
	CU_ASSERT_EQUAL(csv_writer_end(w), 0);
	CU_ASSERT_EQUAL(csv_writer_commit(w, errbuf, sizeof(errbuf)), 0);
	csv_writer_free(w);

	got = slurp(path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_EQUAL(len, sizeof(want) - 1);
	CU_ASSERT(len == sizeof(want) - 1 && memcmp(got, want, len) == 0);
	CU_ASSERT(valid_utf8(got, len));
	if (len != sizeof(want) - 1 || memcmp(got, want, len) != 0)
		fprintf(stderr, "\n  got [%s]\n", got);
	free(got);
	unlink(path);
}

static void test_writer_mode(void)
{
	const char *path = tmp_path("mode.csv");
	char tmp[300];
	struct csv_writer *w;
	struct stat st;
	mode_t old;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* a permissive umask cannot widen 0600 ... */
	old = umask(0);
	w = csv_writer_open(path, 0600, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(stat(tmp, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	CU_ASSERT_EQUAL(csv_writer_row(w, (const char *const[]){"a"},
	                               (const size_t[]){1}, 1), 0);
	CU_ASSERT_EQUAL(csv_writer_commit(w, errbuf, sizeof(errbuf)), 0);
	csv_writer_free(w);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
	unlink(path);

	/* ... and a strict one cannot narrow 0640 */
	umask(077);
	w = csv_writer_open(path, 0640, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(csv_writer_commit(w, errbuf, sizeof(errbuf)), 0);
	csv_writer_free(w);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0640);
	umask(old);
	unlink(path);
}

static void test_writer_uncommitted(void)
{
	const char *path = tmp_path("keep.csv");
	char p[300], tmp[320];
	struct csv_writer *w;
	size_t len = 0;
	char *got;

	snprintf(p, sizeof(p), "%s", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	tmp_write("keep.csv", "old\n", 4);
	w = csv_writer_open(p, 0600, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(csv_writer_row(w, (const char *const[]){"new"},
	                               (const size_t[]){3}, 1), 0);
	CU_ASSERT_EQUAL(access(tmp, F_OK), 0);
	csv_writer_free(w);
	/* temp gone, the previous file untouched */
	CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
	got = slurp(p, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, "old\n");
	free(got);
	unlink(p);

	/* open fails in a missing directory, naming the path */
	w = csv_writer_open("/nonexistent-dir.test/out.csv", 0600, errbuf,
	                    sizeof(errbuf));
	CU_ASSERT_PTR_NULL(w);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "/nonexistent-dir.test/out.csv"));
	csv_writer_free(NULL);
}

static void test_writer_roundtrip(void)
{
	static const char *const rows[][4] = {
		{"email", "name", "note", "x"},
		{"a@example.test", "Smith, John", "said \"hi\"", ""},
		{"b@example.test", " spaced ", "multi\r\nline\n", ","},
		{"c@example.test", "张伟", "\"", "\t"},
		{"", "", "", ""},
	};
	const char *path = tmp_path("round.csv");
	char p[300];
	struct csv_writer *w;
	struct csv_reader *r;
	const struct csv_row *row;
	size_t lens[4], i, j, big = 300 * 1024;
	char *bigf;

	snprintf(p, sizeof(p), "%s", path);
	bigf = malloc(big + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bigf);
	/* quoted (leading comma) and written in one piece */
	for (i = 0; i < big; i++)
		bigf[i] = i == 0 ? ',' : (char)('a' + i % 26);
	bigf[big] = '\0';

	w = csv_writer_open(p, 0600, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	for (i = 0; i < 5; i++) {
		for (j = 0; j < 4; j++)
			lens[j] = strlen(rows[i][j]);
		CU_ASSERT_EQUAL(csv_writer_row(w, rows[i], lens, 4), 0);
	}
	/* one empty field, then a field bigger than the writer's buffer */
	CU_ASSERT_EQUAL(csv_writer_row(w, (const char *const[]){""},
	                               (const size_t[]){0}, 1), 0);
	CU_ASSERT_EQUAL(csv_writer_row(w, (const char *const[]){"z", bigf},
	                               (const size_t[]){1, big}, 2), 0);
	CU_ASSERT_EQUAL(csv_writer_commit(w, errbuf, sizeof(errbuf)), 0);
	csv_writer_free(w);

	r = open_file(p, "utf-8", ',');
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(row_matches(csv_reader_header(r),
	                      (const char *const[]){rows[0][0], rows[0][1],
	                                            rows[0][2], rows[0][3],
	                                            NULL}, __LINE__));
	for (i = 1; i < 5; i++) {
		row = next_is(r, i, (const char *const[]){rows[i][0],
		              rows[i][1], rows[i][2], rows[i][3], NULL},
		              __LINE__);
		CU_ASSERT(row != NULL && !row->bad_encoding);
	}
	NEXT_IS(r, 5, "");
	row = NULL;
	CU_ASSERT_EQUAL_FATAL(csv_reader_next(r, &row, errbuf,
	                                      sizeof(errbuf)), 1);
	CU_ASSERT_EQUAL(row->nfields, 2);
	CU_ASSERT(row->nfields == 2 && row->lens[1] == big &&
	          memcmp(row->fields[1], bigf, big) == 0);
	expect_eof(r);
	csv_reader_free(r);
	free(bigf);
	unlink(p);
}

static const struct test_case tests[] = {
	{"rfc4180_quoting", test_rfc4180_quoting},
	{"line_endings", test_line_endings},
	{"utf8_bom_stripped", test_utf8_bom_stripped},
	{"spaces_and_empty_fields", test_spaces_and_empty_fields},
	{"other_delimiters", test_other_delimiters},
	{"wrong_field_counts", test_wrong_field_counts},
	{"header_only", test_header_only},
	{"gbk_excel", test_gbk_excel},
	{"gbk_bad_row", test_gbk_bad_row},
	{"gb18030_four_byte", test_gb18030_four_byte},
	{"big5", test_big5},
	{"utf16le_unicode_text", test_utf16le_unicode_text},
	{"utf16_lone_surrogate", test_utf16_lone_surrogate},
	{"latin1", test_latin1},
	{"utf8_campaign_fed_gbk", test_utf8_campaign_fed_gbk},
	{"utf8_campaign_fed_big5", test_utf8_campaign_fed_big5},
	{"invalid_utf8", test_invalid_utf8},
	{"field_larger_than_chunk", test_field_larger_than_chunk},
	{"multibyte_across_chunks", test_multibyte_across_chunks},
	{"many_rows_and_progress", test_many_rows_and_progress},
	{"open_errors", test_open_errors},
	{"unbalanced_quote", test_unbalanced_quote},
	{"writer_quoting", test_writer_quoting},
	{"writer_mode", test_writer_mode},
	{"writer_uncommitted", test_writer_uncommitted},
	{"writer_roundtrip", test_writer_roundtrip},
	{0},
};

/* Remove the temp directory and whatever a failed test left in it. */
static void tmp_cleanup(void)
{
	DIR *d;
	struct dirent *e;
	char path[320];

	if (tmpdir[0] == '\0' || (d = opendir(tmpdir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

int main(void)
{
	int rc = test_run("csv", tests);

	tmp_cleanup();
	return rc;
}
