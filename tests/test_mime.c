/*
 * test_mime.c - unit tests for templates/mime.c and templates/html2text.c.
 *
 * Everything the test reads back is decoded by its own small decoders
 * (base64, quoted-printable, RFC 2047 B words, a MIME splitter that turns a
 * message into a structure string such as
 * "mixed(alternative(plain,related(html,png)),pdf)"), never by the code
 * under test. Every message built here also passes the output invariants:
 * CRLF only, no line over 998 octets, header lines within 78 where the
 * value can be folded, 7-bit clean.
 *
 * Covered: encoded-words (ASCII passthrough, 300-octet Chinese subject at
 * many start columns, 1..4-octet characters, forced encoding of "=?" and of
 * words too long for a line, controls), folding of plain ASCII, display
 * names (atoms, quoted strings with escapes, encoded), quoted-printable
 * vectors and a randomised round trip, 7bit/QP choice, the message
 * structures, attachments (types, base64 lines, RFC 2231 names with
 * continuations, load errors), header injection, SMTP smuggling sequences,
 * List-Unsubscribe(-Post), Feedback-ID, dates, deterministic boundaries,
 * error paths, html_to_text (links, entities, lists, br/p, dropped
 * script/style, whitespace, pre, tables, deep and huge documents).
 *
 * With EDM_MIME_EML_DIR set, test "eml_export" also writes NAME.eml +
 * NAME.json pairs there for tests/integration/check_mime.py (Python's email
 * package as an independent parser).
 */
#include "buf.h"
#include "html2text.h"
#include "mime.h"
#include "utf8.h"

#include "cunit_main.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIME_DIR EDM_FIXTURES "/mime/"
#define T_DATE 1795316752 /* Sun, 22 Nov 2026 03:05:52 +0000 */

/* ---- independent decoders ------------------------------------------- */

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Base64 decode, CR and LF ignored; -1 on any other non-alphabet octet or
 * bad padding. */
static int b64_decode(const char *s, size_t n, struct buf *out)
{
	unsigned acc = 0, bits = 0, pad = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64_val(c)) < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_putc(out, (char)((acc >> bits) & 0xff)) < 0)
				return -1;
		}
	}
	return pad > 2 ? -1 : 0;
}

static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 2045 6.7: uppercase only from an encoder */
}

/* Quoted-printable decode (RFC 2045 6.7); -1 on a malformed '=' */
static int qp_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '=') {
			if (buf_putc(out, s[i]) < 0)
				return -1;
			continue;
		}
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 >= n || hexv((unsigned char)s[i + 1]) < 0 ||
		    hexv((unsigned char)s[i + 2]) < 0)
			return -1;
		if (buf_putc(out, (char)(hexv((unsigned char)s[i + 1]) * 16 +
		                         hexv((unsigned char)s[i + 2]))) < 0)
			return -1;
		i += 2;
	}
	return 0;
}

/* Bare CR, bare LF and CRLF all made CRLF (what every body must become). */
static void crlf_normalise(const char *s, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			buf_append(out, "\r\n", 2);
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
		} else if (s[i] == '\n') {
			buf_append(out, "\r\n", 2);
		} else {
			buf_putc(out, s[i]);
		}
	}
}

/* ---- output invariants ---------------------------------------------- */

/* CRLF only, every line at most 'max' octets; 7-bit when 'seven'. Returns
 * the longest line. */
static size_t check_lines(const char *s, size_t n, size_t max, int seven,
                          unsigned line, const char *what)
{
	size_t i, col = 0, longest = 0;
	int bad_eol = 0, high = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				bad_eol++;
			continue;
		}
		if (s[i] == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				bad_eol++;
			if (col > longest)
				longest = col;
			col = 0;
			continue;
		}
		high += (unsigned char)s[i] >= 0x80;
		col++;
	}
	if (col > longest)
		longest = col;
	check(bad_eol == 0, line, "%s: %d bare CR or LF", what, bad_eol);
	check(longest <= max, line, "%s: longest line %zu > %zu", what,
	      longest, max);
	if (seven)
		check(high == 0, line, "%s: %d octets >= 0x80", what, high);
	return longest;
}

/* Length of the header section including its final CRLF, or 0. */
static size_t header_len(const char *s, size_t n)
{
	const char *e = memmem(s, n, "\r\n\r\n", 4);

	return e != NULL ? (size_t)(e - s) + 2 : 0;
}

/* Lines of the header section that start with 'prefix' (any case). */
static int header_count(const char *msg, const char *prefix)
{
	size_t hl = header_len(msg, strlen(msg)), i, k = strlen(prefix);
	int count = 0;

	for (i = 0; i < hl; i++)
		if ((i == 0 || msg[i - 1] == '\n') &&
		    strncasecmp(msg + i, prefix, k) == 0)
			count++;
	return count;
}

/* The unfolded value of field 'name' in hdr[0..hl) (CRLF before a space
 * removed, RFC 5322 3.2.2), malloc'd, or NULL. */
static char *header_get(const char *hdr, size_t hl, const char *name)
{
	size_t k = strlen(name), i, j;
	struct buf v = {0};

	for (i = 0; i < hl; i++) {
		if ((i != 0 && hdr[i - 1] != '\n') ||
		    strncasecmp(hdr + i, name, k) != 0 || hdr[i + k] != ':')
			continue;
		for (j = i + k + 1; j < hl && hdr[j] == ' '; j++)
			;
		for (; j < hl; j++) {
			if (hdr[j] == '\r' && j + 2 < hl && hdr[j + 1] == '\n' &&
			    (hdr[j + 2] == ' ' || hdr[j + 2] == '\t')) {
				j++;
				continue;
			}
			if (hdr[j] == '\r')
				break;
			buf_putc(&v, hdr[j]);
		}
		if (v.data == NULL)
			buf_puts(&v, "");
		return v.data;
	}
	return NULL;
}

/*
 * Decode an unfolded header value made only of B encoded-words separated
 * by spaces; every word must be at most 75 octets and decode to whole
 * UTF-8 characters. Returns the number of words, -1 when malformed.
 */
static int ew_decode(const char *v, struct buf *out, unsigned line)
{
	int words = 0;

	while (*v != '\0') {
		const char *end;
		struct buf w = {0};
		size_t tl;

		while (*v == ' ')
			v++;
		if (*v == '\0')
			break;
		end = strchr(v, ' ');
		tl = end != NULL ? (size_t)(end - v) : strlen(v);
		if (tl < 12 || strncmp(v, "=?UTF-8?B?", 10) != 0 ||
		    strncmp(v + tl - 2, "?=", 2) != 0) {
			check(0, line, "not an encoded-word: %.*s", (int)tl, v);
			return -1;
		}
		check(tl <= 75, line, "encoded-word of %zu octets", tl);
		if (b64_decode(v + 10, tl - 12, &w) < 0) {
			check(0, line, "bad base64 in %.*s", (int)tl, v);
			return -1;
		}
		check(w.len > 0 && utf8_check((const unsigned char *)w.data,
		                              w.len) == w.len, line,
		      "word %.*s holds a split character", (int)tl, v);
		buf_append(out, w.data != NULL ? w.data : "", w.len);
		buf_free(&w);
		words++;
		v += tl;
	}
	return words;
}

/* ---- a small MIME splitter ------------------------------------------ */

struct leaf {
	char type[80];       /* "text/plain", "image/png", ... */
	char *hdr;           /* header section (own copy) */
	size_t hlen;
	const char *body;    /* into the message */
	size_t blen;
};

struct tree {
	char shape[512];     /* e.g. "mixed(alternative(plain,html),pdf)" */
	struct leaf leaves[16];
	int nleaves;
	int ok;
};

/* A parameter value (quoted or not) of a Content-Type, into dst. */
static int ct_param(const char *ct, const char *param, char *dst, size_t dl)
{
	const char *p = ct;
	size_t k = strlen(param), i = 0;

	while ((p = strstr(p, param)) != NULL) {
		if (p > ct && (p[-1] == ';' || p[-1] == ' ') && p[k] == '=') {
			p += k + 1;
			if (*p == '"')
				for (p++; *p != '\0' && *p != '"' && i + 1 < dl; p++)
					dst[i++] = *p;
			else
				for (; *p != '\0' && *p != ';' && *p != ' ' &&
				       i + 1 < dl; p++)
					dst[i++] = *p;
			dst[i] = '\0';
			return 0;
		}
		p += k;
	}
	return -1;
}

/* Describe the entity s[0..n) into t (recursive over multiparts). */
static void tree_entity(struct tree *t, const char *s, size_t n, int depth)
{
	size_t hl = header_len(s, n), sl;
	char *ct, bnd[128], sub[64];
	const char *body, *end, *p;
	char delim[140];
	int first = 1;

	if (hl == 0 || depth > 8) {
		t->ok = 0;
		return;
	}
	ct = header_get(s, hl, "Content-Type");
	if (ct == NULL) {
		t->ok = 0;
		return;
	}
	body = s + hl + 2;
	end = s + n;
	if (strncmp(ct, "multipart/", 10) != 0) {
		struct leaf *l;
		const char *slash = strchr(ct, '/');

		sl = strcspn(slash + 1, "; ");
		snprintf(t->shape + strlen(t->shape),
		         sizeof t->shape - strlen(t->shape), "%.*s", (int)sl,
		         slash + 1);
		if (t->nleaves < 16) {
			l = &t->leaves[t->nleaves++];
			snprintf(l->type, sizeof l->type, "%.*s",
			         (int)strcspn(ct, "; "), ct);
			l->hdr = strndup(s, hl);
			l->hlen = hl;
			l->body = body;
			l->blen = (size_t)(end - body);
		}
		free(ct);
		return;
	}
	sl = strcspn(ct + 10, "; ");
	snprintf(sub, sizeof sub, "%.*s", (int)sl, ct + 10);
	if (ct_param(ct, "boundary", bnd, sizeof bnd) < 0) {
		t->ok = 0;
		free(ct);
		return;
	}
	free(ct);
	snprintf(t->shape + strlen(t->shape), sizeof t->shape - strlen(t->shape),
	         "%s(", sub);
	snprintf(delim, sizeof delim, "--%s", bnd);
	/* no preamble: the body starts with the first delimiter */
	if ((size_t)(end - body) < strlen(delim) ||
	    strncmp(body, delim, strlen(delim)) != 0) {
		t->ok = 0;
		return;
	}
	p = body;
	for (;;) {
		const char *start, *next;
		char tail[150];

		p += strlen(delim);
		if (p + 2 <= end && p[0] == '-' && p[1] == '-')
			break; /* close delimiter */
		if (p + 2 > end || p[0] != '\r' || p[1] != '\n') {
			t->ok = 0;
			return;
		}
		start = p + 2;
		snprintf(tail, sizeof tail, "\r\n%s", delim);
		next = memmem(start, (size_t)(end - start), tail, strlen(tail));
		if (next == NULL) {
			t->ok = 0;
			return;
		}
		if (!first)
			strncat(t->shape, ",", sizeof t->shape - strlen(t->shape) - 1);
		first = 0;
		tree_entity(t, start, (size_t)(next - start), depth + 1);
		p = next + 2;
	}
	strncat(t->shape, ")", sizeof t->shape - strlen(t->shape) - 1);
}

static void tree_parse(struct tree *t, const char *msg, size_t n)
{
	memset(t, 0, sizeof *t);
	t->ok = 1;
	tree_entity(t, msg, n, 0);
}

static void tree_free(struct tree *t)
{
	int i;

	for (i = 0; i < t->nleaves; i++)
		free(t->leaves[i].hdr);
}

/* The i-th leaf of a type, or NULL. */
static const struct leaf *tree_leaf(const struct tree *t, const char *type,
                                    int nth)
{
	int i;

	for (i = 0; i < t->nleaves; i++)
		if (strcasecmp(t->leaves[i].type, type) == 0 && nth-- == 0)
			return &t->leaves[i];
	return NULL;
}

/* Decoded body of a leaf per its Content-Transfer-Encoding. */
static int leaf_decode(const struct leaf *l, struct buf *out)
{
	char *cte = header_get(l->hdr, l->hlen, "Content-Transfer-Encoding");
	int rc;

	if (cte != NULL && strcasecmp(cte, "quoted-printable") == 0)
		rc = qp_decode(l->body, l->blen, out);
	else if (cte != NULL && strcasecmp(cte, "base64") == 0)
		rc = b64_decode(l->body, l->blen, out);
	else
		rc = buf_append(out, l->body, l->blen);
	if (out->data == NULL)
		buf_puts(out, "");
	free(cte);
	return rc;
}

/* ---- building messages ---------------------------------------------- */

static struct mime_message base_msg(void)
{
	struct mime_message m;

	memset(&m, 0, sizeof m);
	m.from_name = "ACME News";
	m.from_addr = "news@acme.example";
	m.to_name = "Jane Doe";
	m.to_addr = "jane@example.test";
	m.subject = "Spring offers";
	m.message_id = "20261122.0001@acme.example";
	m.date = T_DATE;
	m.text = "Hello Jane,\nour spring offers are here.\n";
	m.text_len = strlen(m.text);
	return m;
}

/* mime_build() into out, asserting success and the output invariants:
 * CRLF only, 7-bit, lines <= 998, header lines <= hmax. */
static int build_ok_max(const struct mime_message *m, struct buf *out,
                        size_t hmax, unsigned line)
{
	char err[256] = "";
	size_t hl;

	buf_reset(out);
	if (mime_build(m, out, err, sizeof err) != 0) {
		check(0, line, "mime_build failed: %s", err);
		return -1;
	}
	check_lines(out->data, out->len, 998, 1, line, "message");
	hl = header_len(out->data, out->len);
	check(hl > 0, line, "no header/body separator");
	check_lines(out->data, hl, hmax, 1, line, "header section");
	check(out->len >= 2 && out->data[out->len - 2] == '\r' &&
	      out->data[out->len - 1] == '\n', line, "message ends in CRLF");
	return 0;
}

/* The same with header lines <= 78: every value here can be folded. */
static int build_ok(const struct mime_message *m, struct buf *out,
                    unsigned line)
{
	return build_ok_max(m, out, 78, line);
}

/* mime_build() expected to fail with 'want' in the reason, leaving out
 * as it was. */
static void build_fail(const struct mime_message *m, const char *want,
                       unsigned line)
{
	struct buf out = {0};
	char err[256] = "";
	int rc;

	buf_puts(&out, "KEEP");
	rc = mime_build(m, &out, err, sizeof err);
	check(rc == -1, line, "mime_build refused (rc %d)", rc);
	check(strstr(err, want) != NULL, line, "reason \"%s\" contains \"%s\"",
	      err, want);
	check(out.len == 4 && strcmp(out.data, "KEEP") == 0, line,
	      "output untouched on failure: \"%.40s\"", out.data);
	buf_free(&out);
}

static struct mime_attachment *att_load(const char *path, unsigned line)
{
	char err[256] = "";
	struct mime_attachment *a = mime_attachment_load(path, err, sizeof err);

	check(a != NULL, line, "load %s: %s", path, err);
	return a;
}

/* Whole file into a buf (test side). */
static int slurp(const char *path, struct buf *b)
{
	char tmp[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return -1;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(b, tmp, n);
	fclose(f);
	if (b->data == NULL)
		buf_puts(b, "");
	return 0;
}

static char tmpdir[64];

/* A private temp dir for files created by the tests (removed at exit). */
static const char *tdir(void)
{
	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/edm-test-mime-XXXXXX");
		if (mkdtemp(tmpdir) == NULL)
			return "/nonexistent";
	}
	return tmpdir;
}

static void tdir_cleanup(void)
{
	char cmd[128];

	if (tmpdir[0] != '\0' && strncmp(tmpdir, "/tmp/edm-test-mime-", 19) == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

/* Create tdir()/name with content; returns the path (static storage). */
static const char *tfile(const char *name, const char *content, size_t n)
{
	static char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tdir(), name);
	if ((f = fopen(path, "wb")) != NULL) {
		fwrite(content, 1, n, f);
		fclose(f);
	}
	return path;
}

/* ---- encoded-words and folding --------------------------------------- */

static void test_ew_ascii(void)
{
	static const char *const cases[] = {
		"Hello, world", "Spring offers: 50% off!", "a", " lead", "x  y",
		"trail ", "(comment-like) <angle> \"quotes\"",
	};
	struct buf b = {0};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		buf_reset(&b);
		CU_ASSERT_EQUAL(mime_encode_words(&b, cases[i], strlen(cases[i]),
		                                  9), 0);
		check(b.data != NULL && strcmp(b.data, cases[i]) == 0, __LINE__,
		      "ASCII \"%s\" passes through, got \"%s\"", cases[i],
		      b.data != NULL ? b.data : "(null)");
	}
	buf_reset(&b);
	CU_ASSERT_EQUAL(mime_encode_words(&b, "", 0, 9), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	/* exactly 78 with "Subject: " (9 + 69): no fold; one more: fold */
	{
		char s[80];

		memset(s, 'a', sizeof s);
		memcpy(s + 30, " ", 1);
		buf_reset(&b);
		buf_puts(&b, "Subject: ");
		mime_encode_words(&b, s, 69, 9);
		check(b.len == 78 && strstr(b.data, "\r\n") == NULL, __LINE__,
		      "78-octet line unfolded (%zu)", b.len);
		buf_reset(&b);
		buf_puts(&b, "Subject: ");
		mime_encode_words(&b, s, 70, 9);
		check(strstr(b.data, "\r\n a") != NULL && b.len == 81, __LINE__,
		      "79-octet line folded at its space: \"%s\"", b.data);
	}
	buf_free(&b);
}

/* Encode 'text' after a 'col'-octet prefix, check lines <= 78, words
 * whole and <= 75, and that decoding gives the text back. */
static void ew_roundtrip(const char *text, size_t len, size_t col,
                         unsigned line)
{
	struct buf b = {0}, dec = {0};
	char *unf;
	size_t i;

	for (i = 0; i < col; i++)
		buf_putc(&b, i + 1 == col ? ':' : 'H');
	buf_puts(&b, ""); /* col may be 0 */
	CU_ASSERT_EQUAL(mime_encode_words(&b, text, len, col), 0);
	check_lines(b.data, b.len, 78, 1, line, "encoded header");
	for (i = 0; i + 2 < b.len; i++)
		if (b.data[i] == '\r')
			check(b.data[i + 2] == ' ' && b.data[i + 3] != ' ',
			      line, "continuation line starts with one space");
	/* unfold: drop the prefix and every CRLF */
	buf_append(&dec, "", 0);
	unf = calloc(1, b.len + 1);
	{
		size_t j = 0;

		for (i = col; i < b.len; i++)
			if (b.data[i] != '\r' && b.data[i] != '\n')
				unf[j++] = b.data[i];
	}
	check(ew_decode(unf, &dec, line) > 0, line, "encoded-words at col %zu",
	      col);
	check(dec.len == len && memcmp(dec.data, text, len) == 0, line,
	      "col %zu: decoded %zu octets equal the %zu input", col, dec.len,
	      len);
	free(unf);
	buf_free(&b);
	buf_free(&dec);
}

static void test_ew_cjk(void)
{
	static const size_t cols[] = {0, 1, 9, 10, 13, 40, 60, 62, 63, 64, 65,
	                              66, 70, 77, 78};
	char s[400], mix[600];
	size_t n = 0, i, k;

	/* 100 distinct CJK ideographs, 300 octets */
	for (i = 0; i < 100; i++) {
		unsigned cp = 0x4e00 + (unsigned)i * 97;

		s[n++] = (char)(0xe0 | (cp >> 12));
		s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[n++] = (char)(0x80 | (cp & 0x3f));
	}
	CU_ASSERT_EQUAL(n, 300);
	for (i = 0; i < sizeof cols / sizeof cols[0]; i++)
		ew_roundtrip(s, n, cols[i], __LINE__);
	/* 1-, 2-, 3- and 4-octet characters at every phase */
	for (k = 0; k < 4; k++) {
		size_t m = 0, r;

		for (r = 0; r < k; r++)
			mix[m++] = 'a';
		for (r = 0; r < 40; r++) {
			memcpy(mix + m, "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80z", 10);
			m += 10;
		}
		for (i = 0; i < sizeof cols / sizeof cols[0]; i++)
			ew_roundtrip(mix, m, cols[i], __LINE__);
	}
	/* the Subject line of a real message */
	{
		struct mime_message m = base_msg();
		struct buf out = {0}, dec = {0};
		char *v;

		s[n] = '\0';
		m.subject = s;
		if (build_ok(&m, &out, __LINE__) == 0) {
			v = header_get(out.data, header_len(out.data, out.len),
			               "Subject");
			check(v != NULL && ew_decode(v, &dec, __LINE__) >= 7,
			      __LINE__, "subject split in >= 7 words");
			check(dec.len == n && memcmp(dec.data, s, n) == 0,
			      __LINE__, "subject decodes to the input");
			check(header_count(out.data, "Subject:") == 1, __LINE__,
			      "one Subject line");
			free(v);
		}
		buf_free(&out);
		buf_free(&dec);
	}
}

static void test_ew_fold_ascii(void)
{
	struct buf b = {0}, unf = {0};
	char s[400];
	size_t n = 0, i;

	while (n < 250) {
		static const char *const w[] = {"spring", "offers", "for",
		                                "everyone", "this", "week"};
		const char *x = w[n % 6];

		memcpy(s + n, x, strlen(x));
		n += strlen(x);
		s[n++] = ' ';
		if (n % 7 == 0)
			s[n++] = ' '; /* some double spaces */
	}
	s[n++] = 'z';
	s[n] = '\0';
	buf_puts(&b, "Subject: ");
	CU_ASSERT_EQUAL(mime_encode_words(&b, s, n, 9), 0);
	check_lines(b.data, b.len, 78, 1, __LINE__, "folded subject");
	check(strstr(b.data, "=?") == NULL, __LINE__, "plain ASCII not encoded");
	check(strstr(b.data, "\r\n") != NULL, __LINE__, "long subject folded");
	for (i = 0; i < b.len; i++) {
		if (b.data[i] == '\r') {
			check(b.data[i + 2] == ' ' && b.data[i + 3] != ' ',
			      __LINE__, "fold before the last space of a run");
			check(i > 0 && b.data[i - 1] != '\n', __LINE__,
			      "no empty line");
			i++;
			continue;
		}
		buf_putc(&unf, b.data[i]);
	}
	check(unf.len == n + 9 && memcmp(unf.data + 9, s, n) == 0, __LINE__,
	      "unfolding gives the subject back");
	buf_free(&b);
	buf_free(&unf);
}

static void test_ew_forced(void)
{
	struct buf b = {0}, dec = {0};
	char *big;

	/* would be read as an encoded-word if written plain */
	buf_puts(&b, "Subject: ");
	mime_encode_words(&b, "win =?utf-8?q?x?= now", 21, 9);
	check(strncmp(b.data + 9, "=?UTF-8?B?", 10) == 0, __LINE__,
	      "\"=?\" forces encoding: %s", b.data);
	ew_decode(b.data + 9, &dec, __LINE__);
	check(dec.data != NULL && strcmp(dec.data, "win =?utf-8?q?x?= now") == 0,
	      __LINE__, "decodes back");
	/* a word too long for 998 octets */
	big = malloc(1201);
	memset(big, 'w', 1200);
	big[1200] = '\0';
	ew_roundtrip(big, 1200, 9, __LINE__);
	free(big);
	/* controls become spaces, both plain and encoded */
	buf_reset(&b);
	mime_encode_words(&b, "a\r\nb\tc\x01" "d\x7f", 9, 9);
	check(strcmp(b.data, "a  b c d ") == 0, __LINE__,
	      "controls made spaces: \"%s\"", b.data);
	buf_reset(&b);
	buf_reset(&dec);
	mime_encode_words(&b, "\xe4\xb8\xad\r\nBcc: x", 11, 0);
	check(strpbrk(b.data, "\r\n") == NULL, __LINE__, "short: one line");
	ew_decode(b.data, &dec, __LINE__);
	check(dec.data != NULL && strcmp(dec.data, "\xe4\xb8\xad  Bcc: x") == 0,
	      __LINE__, "encoded controls decode as spaces");
	buf_free(&b);
	buf_free(&dec);
}

/* ---- display names --------------------------------------------------- */

static void test_display_names(void)
{
	static const struct {
		const char *name, *want; /* want: the unfolded To value */
	} cases[] = {
		{"Jane Doe", "Jane Doe <jane@example.test>"},
		{NULL, "jane@example.test"},
		{"", "jane@example.test"},
		{"  \r\n ", "jane@example.test"},
		{"  Jane  ", "Jane <jane@example.test>"},
		{"Doe, Jane", "\"Doe, Jane\" <jane@example.test>"},
		{"J. Doe", "\"J. Doe\" <jane@example.test>"},
		{"a@b", "\"a@b\" <jane@example.test>"},
		{"Jane \"JD\" \\ Doe",
		 "\"Jane \\\"JD\\\" \\\\ Doe\" <jane@example.test>"},
		{"<evil@x.example>", "\"<evil@x.example>\" <jane@example.test>"},
		{"semi;colon:", "\"semi;colon:\" <jane@example.test>"},
	};
	struct mime_message m = base_msg();
	struct buf out = {0}, dec = {0};
	size_t i;
	char *v;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.to_name = cases[i].name;
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		v = header_get(out.data, header_len(out.data, out.len), "To");
		check(v != NULL && strcmp(v, cases[i].want) == 0, __LINE__,
		      "To for \"%s\": got \"%s\" want \"%s\"",
		      cases[i].name != NULL ? cases[i].name : "(null)",
		      v != NULL ? v : "(none)", cases[i].want);
		free(v);
	}
	/* non-ASCII: encoded-words, then the address */
	m.to_name = "张三";
	if (build_ok(&m, &out, __LINE__) == 0) {
		v = header_get(out.data, header_len(out.data, out.len), "To");
		check(v != NULL && strcmp(v, "=?UTF-8?B?5byg5LiJ?= "
		                          "<jane@example.test>") == 0, __LINE__,
		      "To 张三: %s", v != NULL ? v : "(none)");
		free(v);
	}
	/* long names fold (lines <= 78 checked by build_ok) and keep text */
	m.to_name = "Jane Alexandra Beatrice Catherine Doe-Smith of the "
	            "Example Test Department, Head Office";
	m.from_name = "这是一个非常长的发件人名称，用来测试发件人显示名的折行";
	if (build_ok(&m, &out, __LINE__) == 0) {
		v = header_get(out.data, header_len(out.data, out.len), "To");
		check(v != NULL && strcmp(v, "\"Jane Alexandra Beatrice "
		      "Catherine Doe-Smith of the Example Test Department, "
		      "Head Office\" <jane@example.test>") == 0, __LINE__,
		      "long quoted To unfolds: %s", v != NULL ? v : "(none)");
		free(v);
		v = header_get(out.data, header_len(out.data, out.len), "From");
		if (v != NULL) {
			char *lt = strstr(v, " <news@acme.example>");

			check(lt != NULL && lt[20] == '\0', __LINE__,
			      "From ends with the address: %s", v);
			if (lt != NULL)
				*lt = '\0';
			ew_decode(v, &dec, __LINE__);
			check(dec.data != NULL && strcmp(dec.data, m.from_name) == 0,
			      __LINE__, "long From name decodes back");
		}
		free(v);
	}
	buf_free(&out);
	buf_free(&dec);
}

/* ---- quoted-printable ------------------------------------------------ */

static void test_qp_vectors(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{"a=b", 3, "a=3Db"},
		{"end \nx", 6, "end=20\r\nx"},
		{"tab\t\r\nx", 7, "tab=09\r\nx"},
		{"end ", 4, "end=20"},
		{"mid space", 9, "mid space"},
		{"caf\xc3\xa9", 5, "caf=C3=A9"},
		{".dot\n.\n", 7, ".dot\r\n.\r\n"},
		{"From me", 7, "From me"},
		{"a\rb\nc\r\nd", 8, "a\r\nb\r\nc\r\nd"},
		{"a\n.\r\nb", 6, "a\r\n.\r\nb"},
		{"a\r.\rb", 5, "a\r\n.\r\nb"},
		{"\r\r\n\n", 4, "\r\n\r\n\r\n"},
		{"x\0y", 3, "x=00y"},
		{"\x7f", 1, "=7F"},
		{"", 0, ""},
	};
	struct buf b = {0};
	char line[200];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		buf_reset(&b);
		CU_ASSERT_EQUAL(mime_qp(&b, cases[i].in, cases[i].len), 0);
		check(b.len == strlen(cases[i].want) &&
		      memcmp(b.data != NULL ? b.data : "", cases[i].want, b.len) == 0,
		      __LINE__, "QP case %zu: got \"%s\" want \"%s\"", i,
		      b.data != NULL ? b.data : "", cases[i].want);
	}
	/* a line of exactly 76 stays whole; 77 gets a soft break at 75+'=' */
	memset(line, 'a', sizeof line);
	buf_reset(&b);
	mime_qp(&b, line, 76);
	check(b.len == 76 && memchr(b.data, '=', b.len) == NULL, __LINE__,
	      "76-octet line unbroken");
	buf_reset(&b);
	memcpy(line + 76, "\nb", 2);
	mime_qp(&b, line, 78);
	check(b.len == 79 && memcmp(b.data + 76, "\r\nb", 3) == 0, __LINE__,
	      "76 then hard break unbroken");
	buf_reset(&b);
	memset(line, 'a', sizeof line);
	mime_qp(&b, line, 77);
	check(b.len == 75 + 3 + 2 && memcmp(b.data + 75, "=\r\naa", 5) == 0,
	      __LINE__, "77 octets: soft break after 75 (%s)", b.data);
	/* a triplet that does not fit is moved whole to the next line */
	buf_reset(&b);
	line[74] = '=';
	mime_qp(&b, line, 80);
	check(memcmp(b.data + 74, "=\r\n=3D", 6) == 0, __LINE__,
	      "triplet not split: %.90s", b.data);
	/* a space as 76th octet before the line end is encoded, so moved */
	buf_reset(&b);
	memset(line, 'a', sizeof line);
	line[75] = ' ';
	mime_qp(&b, line, 76);
	check(b.len == 75 + 3 + 3 && memcmp(b.data + 75, "=\r\n=20", 6) == 0,
	      __LINE__, "trailing space at 76: %s", b.data);
	/* a space at 76 that is not last: soft break before it */
	buf_reset(&b);
	mime_qp(&b, line, 80);
	check(memcmp(b.data + 75, "=\r\n aaaa", 8) == 0, __LINE__,
	      "inner space at 76: %.90s", b.data);
	/* appends */
	buf_reset(&b);
	buf_puts(&b, "KEEP");
	mime_qp(&b, "=", 1);
	check(strcmp(b.data, "KEEP=3D") == 0, __LINE__, "appends: %s", b.data);
	buf_free(&b);
}

/* Check a QP encoding as RFC 2045 6.7 requires and decode it. */
static void qp_check(const char *in, size_t n, unsigned line)
{
	struct buf enc = {0}, dec = {0}, want = {0};
	size_t i, col = 0;
	int bad = 0;

	mime_qp(&enc, in, n);
	buf_puts(&enc, "");
	check_lines(enc.data, enc.len, 76, 1, line, "QP");
	for (i = 0; i < enc.len; i++) {
		unsigned char c = (unsigned char)enc.data[i];

		if (c == '\r') {
			if (i > 0 && (enc.data[i - 1] == ' ' ||
			              enc.data[i - 1] == '\t'))
				bad++; /* white space before a line end */
			col = 0;
			i++;
			continue;
		}
		if (c != '\t' && (c < 0x20 || c > 0x7e))
			bad++;
		col++;
	}
	if (enc.len > 0 && (enc.data[enc.len - 1] == ' ' ||
	                    enc.data[enc.len - 1] == '\t'))
		bad++;
	check(bad == 0, line, "%d octets break the QP rules", bad);
	check(qp_decode(enc.data, enc.len, &dec) == 0, line, "QP decodes");
	crlf_normalise(in, n, &want);
	buf_puts(&want, "");
	buf_puts(&dec, "");
	check(dec.len == want.len && memcmp(dec.data, want.data, dec.len) == 0,
	      line, "QP round trip of %zu octets", n);
	(void)col;
	buf_free(&enc);
	buf_free(&dec);
	buf_free(&want);
}

static void test_qp_random(void)
{
	static const char *const pieces[] = {
		"a", "Z", " ", "\t", "=", ".", "\r", "\n", "\r\n", "\xc3\xa9",
		"\xe4\xb8\xad", "~", "\x01", "\xff", "=_", "  ", "word",
	};
	unsigned long long x = 0x9e3779b97f4a7c15ull;
	char buf[4000];
	int round;

	for (round = 0; round < 300; round++) {
		size_t n = 0, target;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		target = (size_t)(x >> 33) % 3000;
		while (n < target) {
			const char *p;
			size_t k;

			x = x * 6364136223846793005ull + 1442695040888963407ull;
			/* mostly letters, so long lines happen */
			k = (x >> 40) % 64;
			p = k < sizeof pieces / sizeof pieces[0] ? pieces[k] : "b";
			if (n + strlen(p) >= sizeof buf)
				break;
			memcpy(buf + n, p, strlen(p));
			n += strlen(p);
		}
		qp_check(buf, n, __LINE__);
	}
}

/* ---- message headers -------------------------------------------------- */

static void test_headers_golden(void)
{
	struct mime_message m = base_msg();
	struct buf out = {0};
	static const char want[] =
		"From: ACME News <news@acme.example>\r\n"
		"To: Jane Doe <jane@example.test>\r\n"
		"Reply-To: help@acme.example\r\n"
		"Subject: Spring offers\r\n"
		"Date: Sun, 22 Nov 2026 03:05:52 +0000\r\n"
		"Message-ID: <20261122.0001@acme.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"List-Unsubscribe: <https://acme.example/u/abc>\r\n"
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
		"Feedback-ID: spring:acme:edm\r\n"
		"X-Campaign: spring-2026\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"Hello Jane,\r\nour spring offers are here.\r\n";
	struct mime_header hd[] = {{"X-Campaign", "spring-2026"}};

	m.reply_to = "help@acme.example";
	m.unsub_url = "https://acme.example/u/abc";
	m.feedback_id = "spring:acme:edm";
	m.headers = hd;
	m.nheaders = 1;
	if (build_ok(&m, &out, __LINE__) == 0)
		check(strcmp(out.data, want) == 0, __LINE__,
		      "golden message:\n%s", out.data);
	buf_free(&out);
}

static void test_dates(void)
{
	static const struct {
		time_t t;
		const char *want;
	} cases[] = {
		{T_DATE, "Sun, 22 Nov 2026 03:05:52 +0000"},
		{951868799, "Tue, 29 Feb 2000 23:59:59 +0000"},
		{0, "Thu, 01 Jan 1970 00:00:00 +0000"},
		{4102444800LL, "Fri, 01 Jan 2100 00:00:00 +0000"},
	};
	struct mime_message m = base_msg();
	struct buf out = {0};
	size_t i;
	char *v;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.date = cases[i].t;
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		v = header_get(out.data, header_len(out.data, out.len), "Date");
		check(v != NULL && strcmp(v, cases[i].want) == 0, __LINE__,
		      "Date %lld: got \"%s\" want \"%s\"", (long long)cases[i].t,
		      v != NULL ? v : "(none)", cases[i].want);
		free(v);
	}
	m.date = (time_t)400000000000LL; /* year ~12,700 */
	build_fail(&m, "date", __LINE__);
	buf_free(&out);
}

static void test_unsubscribe(void)
{
	struct mime_message m = base_msg();
	struct buf out = {0};
	char *v, *hdr;

	m.unsub_url = "http://acme.example/u/1";
	build_fail(&m, "https", __LINE__);
	m.unsub_url = "ftp://acme.example/u/1";
	build_fail(&m, "https", __LINE__);
	m.unsub_url = "https://";
	build_fail(&m, "https", __LINE__);

	/* https only: both headers */
	m.unsub_url = "HTTPS://acme.example/u/1";
	if (build_ok(&m, &out, __LINE__) == 0) {
		hdr = out.data;
		v = header_get(hdr, header_len(hdr, out.len), "List-Unsubscribe");
		check(v != NULL && strcmp(v, "<HTTPS://acme.example/u/1>") == 0,
		      __LINE__, "url only: %s", v != NULL ? v : "(none)");
		free(v);
		check(header_count(hdr, "List-Unsubscribe-Post: "
		                   "List-Unsubscribe=One-Click\r\n") == 1,
		      __LINE__, "Post header with an https URL");
	}
	/* mailto only: no Post header (RFC 8058 needs an https URI) */
	m.unsub_url = NULL;
	m.unsub_mailto = "unsub@acme.example?subject=unsubscribe";
	if (build_ok(&m, &out, __LINE__) == 0) {
		v = header_get(out.data, header_len(out.data, out.len),
		               "List-Unsubscribe");
		check(v != NULL && strcmp(v, "<mailto:unsub@acme.example?"
		                          "subject=unsubscribe>") == 0, __LINE__,
		      "mailto only: %s", v != NULL ? v : "(none)");
		free(v);
		check(header_count(out.data, "List-Unsubscribe-Post:") == 0,
		      __LINE__, "no Post header without an https URL");
	}
	/* both, long enough to fold; injection attempts percent-encoded */
	m.unsub_url = "https://unsubscribe.acme.example/u/0123456789abcdef"
	              "0123456789abcdef?x=1\r\nBcc: x@evil.example";
	m.unsub_mailto = "unsub+0123456789@acme.example>, <https://evil.example";
	/* the URL is one unbreakable token longer than 78 */
	if (build_ok_max(&m, &out, 998, __LINE__) == 0) {
		check(strstr(out.data, "List-Unsubscribe: <https://") != NULL &&
		      strstr(out.data, "Bcc:%20x@evil.example>,\r\n <mailto:")
		      != NULL, __LINE__, "folded after the comma only");
		v = header_get(out.data, header_len(out.data, out.len),
		               "List-Unsubscribe");
		check(v != NULL && strcmp(v, "<https://unsubscribe.acme.example"
		      "/u/0123456789abcdef0123456789abcdef?x=1%0D%0ABcc:%20"
		      "x@evil.example>, <mailto:unsub+0123456789@acme.example"
		      "%3E,%20%3Chttps://evil.example>") == 0, __LINE__,
		      "both: %s", v != NULL ? v : "(none)");
		free(v);
		check(header_count(out.data, "Bcc:") == 0, __LINE__, "no Bcc");
		check(header_count(out.data, "List-Unsubscribe-Post:") == 1,
		      __LINE__, "Post header");
	}
	/* neither: no header at all; empty strings count as absent */
	m.unsub_url = "";
	m.unsub_mailto = NULL;
	if (build_ok(&m, &out, __LINE__) == 0)
		check(header_count(out.data, "List-Unsubscribe") == 0, __LINE__,
		      "no List-Unsubscribe without targets");
	/* Feedback-ID only when given */
	check(strstr(out.data, "Feedback-ID") == NULL, __LINE__,
	      "no Feedback-ID by default");
	m.feedback_id = "c1:acme\r\nBcc: x@evil.example";
	if (build_ok(&m, &out, __LINE__) == 0) {
		v = header_get(out.data, header_len(out.data, out.len),
		               "Feedback-ID");
		check(v != NULL && strcmp(v, "c1:acme  Bcc: x@evil.example") == 0,
		      __LINE__, "Feedback-ID: %s", v != NULL ? v : "(none)");
		free(v);
		check(header_count(out.data, "Bcc:") == 0, __LINE__, "no Bcc");
	}
	buf_free(&out);
}

/* ---- injection and smuggling ----------------------------------------- */

static void test_injection(void)
{
	static const char *const evil[] = {
		"Hi\r\nBcc: x@evil.example", "Hi\nBcc: x@evil.example",
		"Hi\rBcc: x@evil.example", "Hi\r\n\r\nBcc: x@evil.example",
		"\xe4\xbd\xa0\xe5\xa5\xbd\r\nBcc: x@evil.example",
	};
	struct mime_message m;
	struct buf out = {0};
	size_t i;

	for (i = 0; i < sizeof evil / sizeof evil[0]; i++) {
		struct mime_header hd[] = {
			{"X-Campaign", evil[i]},
			{"X-Other", "ok"},
		};

		m = base_msg();
		m.subject = evil[i];
		m.to_name = evil[i];
		m.from_name = evil[i];
		m.headers = hd;
		m.nheaders = 2;
		m.feedback_id = evil[i];
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		check(header_count(out.data, "Subject:") == 1, __LINE__,
		      "case %zu: exactly one Subject line", i);
		check(header_count(out.data, "Bcc:") == 0, __LINE__,
		      "case %zu: no Bcc line", i);
		check(header_count(out.data, "To:") == 1 &&
		      header_count(out.data, "From:") == 1 &&
		      header_count(out.data, "X-Campaign:") == 1 &&
		      header_count(out.data, "X-Other: ok\r\n") == 1, __LINE__,
		      "case %zu: headers intact", i);
	}
	/* addresses are refused rather than mended */
	{
		static const char *const bad[] = {
			"a@b.example\r\nBcc: x@evil.example", "a b@c.example",
			"a@b.example>", "<a@b.example", "\xe5\xbc\xa0@b.example",
			"a@b.example,x@evil.example", "", "no-at.example",
			"a@b@c.example", "a\t@b.example", "a@b.example;",
		};

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			m = base_msg();
			m.to_addr = bad[i];
			build_fail(&m, "to address", __LINE__);
			m = base_msg();
			m.from_addr = bad[i];
			build_fail(&m, "from address", __LINE__);
			if (bad[i][0] != '\0') {
				m = base_msg();
				m.reply_to = bad[i];
				build_fail(&m, "reply-to", __LINE__);
			}
		}
		m = base_msg();
		m.to_addr = NULL;
		build_fail(&m, "to address", __LINE__);
	}
	/* field names of extra headers */
	{
		static const char *const badnames[] = {
			"X-A\r\nBcc", "X A", "X:A", "", "X-\xc3\xa9",
			("X-0123456789012345678901234567890123456789012345678901"
			 "23456789012345678901234"),
		};

		for (i = 0; i < sizeof badnames / sizeof badnames[0]; i++) {
			struct mime_header hd[] = {{badnames[i], "v"}};

			m = base_msg();
			m.headers = hd;
			m.nheaders = 1;
			build_fail(&m, "extra header 0", __LINE__);
		}
	}
	/* the message-id */
	{
		static const char *const badids[] = {
			"a b@c.example", "a@c.example>\r\nBcc: x", "<a@c.example>",
			"nodomain", "", "a@", "\xe5\xbc\xa0@c.example",
		};

		for (i = 0; i < sizeof badids / sizeof badids[0]; i++) {
			m = base_msg();
			m.message_id = badids[i];
			build_fail(&m, "message-id", __LINE__);
		}
	}
	buf_free(&out);
}

static void test_smuggling(void)
{
	static const char *const bodies[] = {
		"a\n.\r\nb\r.\rc\r\n.\nd", /* 7bit path */
		"\xc3\xa9\n.\r\nb\r.\rc\r\n.\nd", /* QP path */
	};
	struct mime_message m = base_msg();
	struct buf out = {0}, dec = {0}, want = {0};
	struct tree t;
	size_t i;

	for (i = 0; i < 2; i++) {
		m.text = bodies[i];
		m.text_len = strlen(bodies[i]);
		m.html = bodies[i];
		m.html_len = strlen(bodies[i]);
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		/* build_ok checked: no bare CR or LF anywhere */
		tree_parse(&t, out.data, out.len);
		check(t.ok && strcmp(t.shape, "alternative(plain,html)") == 0,
		      __LINE__, "shape %s", t.shape);
		buf_reset(&want);
		crlf_normalise(bodies[i], strlen(bodies[i]), &want);
		buf_puts(&want, "");
		if (tree_leaf(&t, "text/plain", 0) != NULL) {
			buf_reset(&dec);
			leaf_decode(tree_leaf(&t, "text/plain", 0), &dec);
			check(strcmp(dec.data, want.data) == 0, __LINE__,
			      "body %zu normalised to CRLF lines", i);
		}
		if (tree_leaf(&t, "text/html", 0) != NULL) {
			buf_reset(&dec);
			leaf_decode(tree_leaf(&t, "text/html", 0), &dec);
			check(strcmp(dec.data, want.data) == 0, __LINE__,
			      "html %zu normalised to CRLF lines", i);
		}
		tree_free(&t);
	}
	/* text only, 7bit: the lines are there verbatim, as CRLF lines */
	m = base_msg();
	m.text = "x\n.\r\ny\r.\rz";
	m.text_len = strlen(m.text);
	if (build_ok(&m, &out, __LINE__) == 0)
		check(strstr(out.data, "\r\n\r\nx\r\n.\r\ny\r\n.\r\nz\r\n") != NULL,
		      __LINE__, "7bit body normalised: %s", out.data);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&want);
}

/* ---- bodies and structure --------------------------------------------- */

static void test_text_encoding(void)
{
	static const struct {
		const char *text;
		const char *cte;
	} cases[] = {
		{"plain ascii\nshort lines\n", "7bit"},
		{"caf\xc3\xa9 au lait, a mostly ASCII line\n", "quoted-printable"},
		{"tab\tis fine\n", "7bit"},
		{"a=b is fine\n", "7bit"},
		{"but =_ is not\n", "quoted-printable"},
		{"bell\x07\n", "quoted-printable"},
		{"", "7bit"},
		{NULL, NULL}, /* 76 and 77 octet lines, filled below */
		{NULL, NULL},
		/* mostly non-ASCII: base64 is smaller than QP */
		{"\xe5\x8f\x8c\xe5\x8d\x81\xe4\xb8\x80 50% off\n\xe5\xa4\xa7\xe4\xbf\x83\n",
		 "base64"},
		{"caf\xc3\xa9\n", "base64"},
	};
	char l76[80], l77[81];
	struct mime_message m = base_msg();
	struct buf out = {0}, dec = {0}, want = {0};
	struct tree t;
	size_t i;

	memset(l76, 'x', 76);
	l76[76] = '\0';
	memset(l77, 'x', 77);
	l77[77] = '\0';
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *text = cases[i].text, *cte = cases[i].cte;
		char *v;

		if (i == 7) {
			text = l76;
			cte = "7bit";
		} else if (i == 8) {
			text = l77;
			cte = "quoted-printable";
		}
		m.text = text;
		m.text_len = strlen(text);
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		tree_parse(&t, out.data, out.len);
		check(t.ok && strcmp(t.shape, "plain") == 0, __LINE__,
		      "text only is one part: %s", t.shape);
		v = header_get(out.data, header_len(out.data, out.len),
		               "Content-Transfer-Encoding");
		check(v != NULL && strcmp(v, cte) == 0, __LINE__,
		      "case %zu: %s, want %s", i, v != NULL ? v : "(none)", cte);
		free(v);
		v = header_get(out.data, header_len(out.data, out.len),
		               "Content-Type");
		check(v != NULL && strcmp(v, "text/plain; charset=utf-8") == 0,
		      __LINE__, "charset=utf-8 always: %s", v ? v : "(none)");
		free(v);
		if (t.nleaves == 1) {
			buf_reset(&dec);
			buf_reset(&want);
			leaf_decode(&t.leaves[0], &dec);
			crlf_normalise(text, strlen(text), &want);
			buf_puts(&want, "");
			/* a text without a final newline gets one at the end
			 * of a single-part message */
			if (want.len > 0 && want.data[want.len - 1] != '\n')
				buf_puts(&want, "\r\n");
			check(strcmp(dec.data, want.data) == 0, __LINE__,
			      "case %zu decodes back", i);
		}
		tree_free(&t);
	}
	buf_free(&out);
	buf_free(&dec);
	buf_free(&want);
}

static void test_structures(void)
{
	struct mime_attachment *png = att_load(MIME_DIR "logo.png", __LINE__);
	struct mime_attachment *pdf = att_load(MIME_DIR "report.pdf", __LINE__);
	struct mime_attachment *txt = att_load(MIME_DIR "条款.txt", __LINE__);
	struct mime_attachment *atts[3] = {png, pdf, txt};
	static const char html_cid[] =
		"<p>Hello <b>Jane</b></p><img src=\"cid:logo.png\" alt=\"\">";
	static const char html_nocid[] =
		"<p>Hello</p><img src=\"cid:logo.png.bak\"><img src=\"cid:logo\">"
		"<img src=\"logo.png\">";
	struct {
		const char *text, *html;
		size_t natts, first;
		const char *shape;
	} cases[] = {
		{"t\n", NULL, 0, 0, "plain"},
		{NULL, "<p>Hi</p>", 0, 0, "alternative(plain,html)"},
		{"t\n", "<p>Hi</p>", 0, 0, "alternative(plain,html)"},
		{"t\n", NULL, 1, 1, "mixed(plain,pdf)"},
		{"t\n", NULL, 1, 0, "mixed(plain,png)"}, /* no HTML: no cid */
		{"t\n", "<p>Hi</p>", 1, 1, "mixed(alternative(plain,html),pdf)"},
		{"t\n", html_cid, 1, 0, "alternative(plain,related(html,png))"},
		{"t\n", html_cid, 3, 0,
		 "mixed(alternative(plain,related(html,png)),pdf,plain)"},
		{NULL, html_cid, 2, 0,
		 "mixed(alternative(plain,related(html,png)),pdf)"},
		{"t\n", html_nocid, 1, 0, "mixed(alternative(plain,html),png)"},
	};
	struct mime_message m = base_msg();
	struct buf out = {0}, dec = {0}, file = {0};
	struct tree t;
	size_t i;

	if (png == NULL || pdf == NULL || txt == NULL)
		goto done;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.text = cases[i].text;
		m.text_len = m.text != NULL ? strlen(m.text) : 0;
		m.html = cases[i].html;
		m.html_len = m.html != NULL ? strlen(m.html) : 0;
		m.atts = atts + cases[i].first;
		m.natts = cases[i].natts;
		if (build_ok(&m, &out, __LINE__) < 0)
			continue;
		tree_parse(&t, out.data, out.len);
		check(t.ok && strcmp(t.shape, cases[i].shape) == 0, __LINE__,
		      "case %zu: shape %s, want %s", i, t.shape, cases[i].shape);
		tree_free(&t);
	}

	/* a name that cannot be a Content-ID stays a plain attachment */
	{
		struct mime_attachment *sp = att_load(tfile("my logo.png", "x", 1),
		                                      __LINE__);

		m.text = "t\n";
		m.text_len = 2;
		m.html = "<img src=\"cid:my logo.png\">";
		m.html_len = strlen(m.html);
		m.atts = &sp;
		m.natts = sp != NULL ? 1 : 0;
		if (sp != NULL && build_ok(&m, &out, __LINE__) == 0) {
			tree_parse(&t, out.data, out.len);
			check(strcmp(t.shape, "mixed(alternative(plain,html),png)")
			      == 0 && strstr(out.data, "Content-ID") == NULL,
			      __LINE__, "\"my logo.png\" not inline: %s", t.shape);
			tree_free(&t);
		}
		mime_attachment_free(sp);
	}

	/* the details of the richest case */
	m.text = "t\n";
	m.text_len = 2;
	m.html = html_cid;
	m.html_len = strlen(html_cid);
	m.atts = atts;
	m.natts = 3;
	if (build_ok(&m, &out, __LINE__) == 0) {
		const struct leaf *l;
		char *v;

		tree_parse(&t, out.data, out.len);
		l = tree_leaf(&t, "image/png", 0);
		if (l != NULL) {
			v = header_get(l->hdr, l->hlen, "Content-ID");
			check(v != NULL && strcmp(v, "<logo.png>") == 0, __LINE__,
			      "Content-ID %s", v != NULL ? v : "(none)");
			free(v);
			v = header_get(l->hdr, l->hlen, "Content-Disposition");
			check(v != NULL && strcmp(v, "inline; filename=\"logo.png\"")
			      == 0, __LINE__, "inline disposition: %s",
			      v != NULL ? v : "(none)");
			free(v);
			check_lines(l->body, l->blen, 76, 1, __LINE__, "base64");
			buf_reset(&dec);
			buf_reset(&file);
			leaf_decode(l, &dec);
			slurp(MIME_DIR "logo.png", &file);
			check(dec.len == file.len &&
			      memcmp(dec.data, file.data, dec.len) == 0, __LINE__,
			      "png decodes to the file");
		}
		l = tree_leaf(&t, "application/pdf", 0);
		if (l != NULL) {
			v = header_get(l->hdr, l->hlen, "Content-Disposition");
			check(v != NULL && strcmp(v, "attachment; "
			      "filename=\"report.pdf\"") == 0, __LINE__,
			      "attachment disposition: %s", v != NULL ? v : "(none)");
			free(v);
			v = header_get(l->hdr, l->hlen, "Content-Type");
			check(v != NULL && strcmp(v, "application/pdf; "
			      "name=\"report.pdf\"") == 0, __LINE__,
			      "pdf type: %s", v != NULL ? v : "(none)");
			free(v);
			check(header_get(l->hdr, l->hlen, "Content-ID") == NULL,
			      __LINE__, "no Content-ID on an attachment");
			buf_reset(&dec);
			buf_reset(&file);
			leaf_decode(l, &dec);
			slurp(MIME_DIR "report.pdf", &file);
			check(dec.len == file.len &&
			      memcmp(dec.data, file.data, dec.len) == 0, __LINE__,
			      "pdf decodes to the file");
			check_lines(l->body, l->blen, 76, 1, __LINE__, "base64");
		}
		/* text first, HTML last in the alternative */
		check(strstr(t.shape, "alternative(plain,") != NULL, __LINE__,
		      "text part first");
		tree_free(&t);
	}

	/* HTML only: the generated text part */
	m.text = NULL;
	m.html = "<html><head><title>X</title></head><body><p>Hello "
	         "&amp; welcome</p><p><a href=\"https://acme.example/s\">Shop"
	         "</a></p></body></html>";
	m.html_len = strlen(m.html);
	m.natts = 0;
	if (build_ok(&m, &out, __LINE__) == 0) {
		const struct leaf *l;

		tree_parse(&t, out.data, out.len);
		l = tree_leaf(&t, "text/plain", 0);
		if (l != NULL) {
			buf_reset(&dec);
			leaf_decode(l, &dec);
			check(strcmp(dec.data, "Hello & welcome\r\n\r\nShop "
			             "(https://acme.example/s)\r\n") == 0, __LINE__,
			      "generated text: \"%s\"", dec.data);
		}
		tree_free(&t);
	}
done:
	mime_attachment_free(png);
	mime_attachment_free(pdf);
	mime_attachment_free(txt);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&file);
}

static void test_boundaries(void)
{
	struct mime_attachment *pdf = att_load(MIME_DIR "report.pdf", __LINE__);
	struct mime_attachment *png = att_load(MIME_DIR "logo.png", __LINE__);
	struct mime_attachment *atts[2] = {pdf, png};
	struct mime_message m = base_msg();
	struct buf a = {0}, b = {0};
	char bnd[3][128];
	const char *p;
	int i = 0;

	if (pdf == NULL || png == NULL)
		goto done;
	m.html = "<img src=\"cid:logo.png\">";
	m.html_len = strlen(m.html);
	m.atts = atts;
	m.natts = 2;
	build_ok(&m, &a, __LINE__);
	build_ok(&m, &b, __LINE__);
	check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, __LINE__,
	      "equal input, equal output");
	/* three levels, three distinct boundaries, each with "=_" */
	for (p = a.data; i < 3 && (p = strstr(p, "boundary=\"")) != NULL; i++) {
		p += 10;
		snprintf(bnd[i], sizeof bnd[i], "%.*s", (int)strcspn(p, "\""), p);
		check(strstr(bnd[i], "=_") != NULL, __LINE__,
		      "boundary %s has =_", bnd[i]);
	}
	check(i == 3, __LINE__, "three boundaries");
	if (i == 3)
		check(strcmp(bnd[0], bnd[1]) != 0 && strcmp(bnd[1], bnd[2]) != 0 &&
		      strcmp(bnd[0], bnd[2]) != 0, __LINE__, "distinct per level");
	/* another message-id: other boundaries */
	m.message_id = "20261122.0002@acme.example";
	build_ok(&m, &b, __LINE__);
	check(i == 3 && strstr(b.data, bnd[0]) == NULL, __LINE__,
	      "boundary depends on the message-id");
done:
	mime_attachment_free(pdf);
	mime_attachment_free(png);
	buf_free(&a);
	buf_free(&b);
}

/* ---- attachments ------------------------------------------------------- */

/* Percent-decode an RFC 2231 value up to ';' or the end; -1 on octets
 * that may not appear unencoded. */
static int pct_decode(const char *p, struct buf *out)
{
	for (; *p != '\0' && *p != ';'; p++) {
		if (*p == '%' && hexv((unsigned char)p[1]) >= 0 &&
		    hexv((unsigned char)p[2]) >= 0) {
			buf_putc(out, (char)(hexv((unsigned char)p[1]) * 16 +
			                     hexv((unsigned char)p[2])));
			p += 2;
		} else if (*p == '%' || *p == ' ' || *p == '"') {
			return -1;
		} else {
			buf_putc(out, *p);
		}
	}
	return 0;
}

/* Reassemble filename*0*=...; filename*1*=... (or filename*=) from a
 * Content-Disposition value and percent-decode it. */
static int rfc2231_name(const char *v, struct buf *out)
{
	const char *p = strstr(v, "filename*=UTF-8''");
	char key[32];
	int seg;

	if (p != NULL)
		return pct_decode(p + 17, out);
	for (seg = 0;; seg++) {
		snprintf(key, sizeof key, "filename*%d*=%s", seg,
		         seg == 0 ? "UTF-8''" : "");
		if ((p = strstr(v, key)) == NULL)
			return seg > 0 ? 0 : -1;
		if (pct_decode(p + strlen(key), out) < 0)
			return -1;
	}
}

static void test_rfc2231(void)
{
	struct mime_attachment *a;
	struct mime_message m = base_msg();
	struct buf out = {0}, name = {0};
	struct tree t;
	const struct leaf *l;
	char *v, longname[300];
	size_t i, n = 0;

	a = att_load(MIME_DIR "条款.txt", __LINE__);
	if (a != NULL) {
		m.atts = &a;
		m.natts = 1;
		if (build_ok(&m, &out, __LINE__) == 0) {
			tree_parse(&t, out.data, out.len);
			l = tree_leaf(&t, "text/plain", 1);
			check(l != NULL, __LINE__, "attachment part present (%s)",
			      t.shape);
			if (l != NULL) {
				v = header_get(l->hdr, l->hlen,
				               "Content-Disposition");
				check(v != NULL && strcmp(v, "attachment; filename*="
				      "UTF-8''%E6%9D%A1%E6%AC%BE.txt") == 0,
				      __LINE__, "RFC 2231 filename: %s",
				      v != NULL ? v : "(none)");
				free(v);
				v = header_get(l->hdr, l->hlen, "Content-Type");
				check(v != NULL && strcmp(v, "text/plain; charset=utf-8;"
				      " name=\"=?UTF-8?B?5p2h5qy+LnR4dA==?=\"") == 0,
				      __LINE__, "RFC 2047 name fallback: %s",
				      v != NULL ? v : "(none)");
				free(v);
			}
			tree_free(&t);
		}
		mime_attachment_free(a);
	}
	/* a long Chinese name: continuations of whole characters */
	for (i = 0; i < 40; i++) {
		memcpy(longname + n, "\xe5\x90\x88\xe5\x90\x8c", 6); /* 合同 */
		n += 6;
	}
	memcpy(longname + n, " v2.pdf", 8);
	tfile(longname, "%PDF-1.4\n", 9);
	{
		char path[1024];

		snprintf(path, sizeof path, "%s/%s", tdir(), longname);
		a = att_load(path, __LINE__);
	}
	if (a != NULL) {
		m.atts = &a;
		m.natts = 1;
		if (build_ok(&m, &out, __LINE__) == 0) {
			tree_parse(&t, out.data, out.len);
			l = tree_leaf(&t, "application/pdf", 0);
			check(l != NULL, __LINE__, "pdf part (%s)", t.shape);
			if (l != NULL) {
				check_lines(l->hdr, l->hlen, 78, 1, __LINE__,
				            "attachment headers");
				v = header_get(l->hdr, l->hlen,
				               "Content-Disposition");
				check(v != NULL && strstr(v, "filename*1*=") != NULL,
				      __LINE__, "continuations: %s", v ? v : "");
				buf_reset(&name);
				check(v != NULL && rfc2231_name(v, &name) == 0 &&
				      name.len == strlen(longname) &&
				      memcmp(name.data, longname, name.len) == 0,
				      __LINE__, "segments reassemble the name");
				/* each segment decodes to whole characters */
				for (i = 0; v != NULL; i++) {
					char key[32];
					const char *p;
					struct buf seg = {0};

					snprintf(key, sizeof key, "filename*%zu*=%s",
					         i, i == 0 ? "UTF-8''" : "");
					if ((p = strstr(v, key)) == NULL)
						break;
					p += strlen(key);
					for (; *p != ';' && *p != '\0'; p++)
						if (*p == '%') {
							buf_putc(&seg, (char)(hexv(
							    (unsigned char)p[1]) * 16 +
							    hexv((unsigned char)p[2])));
							p += 2;
						} else {
							buf_putc(&seg, *p);
						}
					check(seg.len > 0 && utf8_check(
					      (const unsigned char *)seg.data,
					      seg.len) == seg.len, __LINE__,
					      "segment %zu whole characters", i);
					buf_free(&seg);
				}
				free(v);
			}
			tree_free(&t);
		}
		mime_attachment_free(a);
	}
	/* ASCII name with a quote and a backslash: quoted-string */
	a = att_load(tfile("a\"b\\c.txt", "x", 1), __LINE__);
	if (a != NULL) {
		m.atts = &a;
		m.natts = 1;
		if (build_ok(&m, &out, __LINE__) == 0) {
			check(strstr(out.data, "Content-Disposition: attachment;\r\n"
			             " filename=\"a\\\"b\\\\c.txt\"\r\n") != NULL,
			      __LINE__, "escaped filename");
		}
		mime_attachment_free(a);
	}
	/* a control character in a file name never reaches a header */
	a = att_load(tfile("x\ry.txt", "x", 1), __LINE__);
	if (a != NULL) {
		m.atts = &a;
		m.natts = 1;
		if (build_ok(&m, &out, __LINE__) == 0)
			check(strstr(out.data, "filename=\"x_y.txt\"") != NULL,
			      __LINE__, "control in file name replaced");
		mime_attachment_free(a);
	}
	buf_free(&out);
	buf_free(&name);
}

static void test_attachment_load(void)
{
	static const struct {
		const char *name, *content, *type;
	} cases[] = {
		{"a.PNG", "x", "image/png; name=\"a.PNG\""},
		{"b.jpeg", "x", "image/jpeg; name=\"b.jpeg\""},
		{"c.txt", "caf\xc3\xa9", "text/plain; charset=utf-8; name=\"c.txt\""},
		{"d.txt", "caf\xe9", "text/plain; name=\"d.txt\""}, /* latin-1 */
		{"e.csv", "a,b\n", "text/csv; charset=utf-8; name=\"e.csv\""},
		{"f.bin", "x", "application/octet-stream; name=\"f.bin\""},
		{"noext", "x", "application/octet-stream; name=\"noext\""},
		{".hidden", "x", "application/octet-stream; name=\".hidden\""},
		{"g.xlsx", "x", "application/vnd.openxmlformats-officedocument."
		                "spreadsheetml.sheet; name=\"g.xlsx\""},
		{"h.ics", "x", "text/calendar; charset=utf-8; name=\"h.ics\""},
		{"empty.pdf", "", "application/pdf; name=\"empty.pdf\""},
	};
	struct mime_message m = base_msg();
	struct mime_attachment *a;
	struct buf out = {0}, dec = {0};
	char err[256];
	struct tree t;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		a = att_load(tfile(cases[i].name, cases[i].content,
		                   strlen(cases[i].content)), __LINE__);
		if (a == NULL)
			continue;
		m.atts = &a;
		m.natts = 1;
		if (build_ok(&m, &out, __LINE__) == 0) {
			tree_parse(&t, out.data, out.len);
			check(t.ok && t.nleaves == 2, __LINE__, "two parts: %s",
			      t.shape);
			if (t.nleaves == 2) {
				char *v = header_get(t.leaves[1].hdr,
				                     t.leaves[1].hlen, "Content-Type");

				check(v != NULL && strcmp(v, cases[i].type) == 0,
				      __LINE__, "%s: %s", cases[i].name,
				      v != NULL ? v : "(none)");
				free(v);
				buf_reset(&dec);
				leaf_decode(&t.leaves[1], &dec);
				check(strcmp(dec.data, cases[i].content) == 0,
				      __LINE__, "%s content", cases[i].name);
			}
			tree_free(&t);
		}
		mime_attachment_free(a);
	}
	/* a bigger file: many base64 lines of 76 */
	{
		char big[5000];

		for (i = 0; i < sizeof big; i++)
			big[i] = (char)(i * 7 + (i >> 8));
		a = att_load(tfile("big.zip", big, sizeof big), __LINE__);
		if (a != NULL) {
			m.atts = &a;
			m.natts = 1;
			if (build_ok(&m, &out, __LINE__) == 0) {
				tree_parse(&t, out.data, out.len);
				if (t.nleaves == 2) {
					size_t longest = check_lines(t.leaves[1].body,
					    t.leaves[1].blen, 76, 1, __LINE__, "b64");

					check(longest == 76, __LINE__, "76-char lines");
					buf_reset(&dec);
					leaf_decode(&t.leaves[1], &dec);
					check(dec.len == sizeof big &&
					      memcmp(dec.data, big, sizeof big) == 0,
					      __LINE__, "5000 octets round trip");
				}
				tree_free(&t);
			}
			mime_attachment_free(a);
		}
	}
	/* errors name the path */
	err[0] = '\0';
	a = mime_attachment_load(MIME_DIR "missing.pdf", err, sizeof err);
	check(a == NULL && strstr(err, "missing.pdf") != NULL &&
	      strstr(err, strerror(ENOENT)) != NULL, __LINE__,
	      "missing file: %s", err);
	mime_attachment_free(a);
	err[0] = '\0';
	a = mime_attachment_load(MIME_DIR, err, sizeof err);
	check(a == NULL && strstr(err, "fixtures/mime") != NULL, __LINE__,
	      "directory refused: %s", err);
	mime_attachment_free(a);
	mime_attachment_free(NULL);
	buf_free(&out);
	buf_free(&dec);
}

static void test_errors(void)
{
	struct mime_message m = base_msg();
	struct buf out = {0};
	char err[256];

	m.text = NULL;
	build_fail(&m, "no text and no HTML", __LINE__);
	/* an empty text is a body */
	m.text = "";
	m.text_len = 0;
	if (build_ok(&m, &out, __LINE__) == 0)
		check(out.len > 4 && memcmp(out.data + out.len - 4,
		                            "\r\n\r\n", 4) == 0,
		      __LINE__, "empty body after the blank line");
	/* NULL subject: an empty Subject header, still exactly one */
	m.subject = NULL;
	if (build_ok(&m, &out, __LINE__) == 0)
		check(header_count(out.data, "Subject:") == 1, __LINE__,
		      "Subject header even when NULL");
	/* appends after what out holds */
	buf_reset(&out);
	buf_puts(&out, "DKIM: x\r\n");
	m = base_msg();
	CU_ASSERT_EQUAL(mime_build(&m, &out, err, sizeof err), 0);
	check(strncmp(out.data, "DKIM: x\r\nFrom: ", 15) == 0, __LINE__,
	      "mime_build appends");
	/* errlen 0 and NULL err are fine */
	m.text = NULL;
	CU_ASSERT_EQUAL(mime_build(&m, &out, NULL, 0), -1);
	buf_free(&out);
}

/* ---- html_to_text ----------------------------------------------------- */

static char *h2t(const char *html)
{
	struct buf b = {0};

	if (html_to_text(html, strlen(html), &b) != 0) {
		buf_free(&b);
		return NULL;
	}
	if (b.data == NULL)
		buf_puts(&b, "");
	return b.data;
}

static void test_html2text_cases(void)
{
	static const struct {
		const char *html, *want;
	} cases[] = {
		{"<p>one</p><p>two<br>three</p>", "one\n\ntwo\nthree\n"},
		{"<a href=\"https://x.example/p\">Shop now</a>",
		 "Shop now (https://x.example/p)\n"},
		{"<a href=\"https://x.example/\">https://x.example/</a>",
		 "https://x.example/\n"},
		{"<a href=\"https://x.example/\">https://x.example</a>",
		 "https://x.example\n"},
		{"<a href=\" https://x.example/a\n\">  <img src=x>  </a>",
		 "https://x.example/a\n"},
		{"<a href=\"mailto:help@x.example?subject=hi\">Write us</a>",
		 "Write us (help@x.example)\n"},
		{"<a href=\"mailto:help@x.example\">help@x.example</a>",
		 "help@x.example\n"},
		{"<a href=\"javascript:alert(1)\">Click</a>", "Click\n"},
		{"<a href=\"JavaScript:alert(1)\"></a>x", "x\n"},
		{"<a href=\"#top\">Top</a>", "Top\n"},
		{"<a>no href</a>", "no href\n"},
		{"<p>Link: <a href=\"https://x.example/a\">here</a>.</p>",
		 "Link: here (https://x.example/a).\n"},
		{"<p>Fish &amp; chips &lt;b&gt; caf&eacute; &#20013;&#x6587; "
		 "&quot;q&quot;</p>", "Fish & chips <b> caf\xc3\xa9 \xe4\xb8\xad"
		 "\xe6\x96\x87 \"q\"\n"},
		{"a&nbsp;&nbsp;b", "a b\n"},
		{"pre&zwnj;&nbsp;&zwnj;&nbsp;&zwnj;header", "pre header\n"},
		{"<ul><li>one</li><li>two</li></ul>", "- one\n- two\n"},
		{"<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>",
		 "- a\n  - b\n- c\n"},
		{"<p>before</p><ol><li>x</li></ol><p>after</p>",
		 "before\n\n- x\n\nafter\n"},
		{"<html><head><title>T</title><style>p{color:red}</style>"
		 "<script>var x=1;</script></head><body>Hi<script>evil()"
		 "</script><style>.a{}</style><noscript>ns</noscript>!</body>"
		 "</html>", "Hi!\n"},
		{"  lots   of\n\n  space  ", "lots of space\n"},
		{"<pre>a  b\n  c</pre>after", "a  b\n  c\n\nafter\n"},
		{"<div>a</div><div>b</div>", "a\nb\n"},
		{"<h1>Title</h1>text", "Title\n\ntext\n"},
		{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr>"
		 "</table>", "a b\nc\n"},
		{"", ""},
		{"<p></p><br><br><div> </div>", ""},
		{"<!-- comment -->x<!-- y -->", "x\n"},
		{"<p>\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c"
		 "</p>", "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7"
		 "\x95\x8c\n"},
		{"a<br>b<br><br>c", "a\nb\n\nc\n"},
		{"<b>bold</b> and <i>it</i>", "bold and it\n"},
		{"<<<>>>&&&;;<", "<<<>>>&&&;;<\n"},
		{"x<p>", "x\n"},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = h2t(cases[i].html);

		check(got != NULL && strcmp(got, cases[i].want) == 0, __LINE__,
		      "html_to_text(\"%s\") = \"%s\", want \"%s\"",
		      cases[i].html, got != NULL ? got : "(fail)",
		      cases[i].want);
		free(got);
	}
	/* appends to what the buffer holds */
	{
		struct buf b = {0};

		buf_puts(&b, "KEEP|");
		CU_ASSERT_EQUAL(html_to_text("<p>x</p>", 8, &b), 0);
		check(strcmp(b.data, "KEEP|x\n") == 0, __LINE__, "appends: %s",
		      b.data);
		buf_free(&b);
	}
}

/* Nested n deep around a marker word; returns the malloc'd text or NULL. */
static char *h2t_nested(size_t n, const char *open, const char *close)
{
	struct buf html = {0};
	char *got;
	size_t i;

	for (i = 0; i < n; i++)
		buf_puts(&html, open);
	buf_puts(&html, "deepword");
	for (i = 0; i < n; i++)
		buf_puts(&html, close);
	got = h2t(html.data);
	buf_free(&html);
	return got;
}

static void test_html2text_hostile(void)
{
	struct buf html = {0};
	char *got;
	size_t i, count;
	const char *p;

	got = h2t_nested(10000, "<div>", "</div>");
	check(got != NULL && strcmp(got, "deepword\n") == 0, __LINE__,
	      "10000 nested divs: \"%.40s\"", got != NULL ? got : "(fail)");
	free(got);
	/* far past gumbo's quadratic zone: finishes (pieces), text kept */
	got = h2t_nested(100000, "<div>", "</div>");
	check(got != NULL && strstr(got, "deepword") != NULL, __LINE__,
	      "100000 nested divs");
	free(got);
	got = h2t_nested(3000, "<ul><li>", "</li></ul>");
	check(got != NULL && strstr(got, "- deepword\n") != NULL, __LINE__,
	      "3000 nested lists");
	free(got);
	got = h2t_nested(20000, "<span><b><i>", "</i></b></span>");
	check(got != NULL && strcmp(got, "deepword\n") == 0, __LINE__,
	      "nested inline elements");
	free(got);
	/* 6000 paragraphs (12000 tags, two pieces): all there, in order */
	for (i = 0; i < 6000; i++)
		buf_printf(&html, "<p>%zu</p>", i);
	got = h2t(html.data);
	check(got != NULL, __LINE__, "6000 paragraphs");
	if (got != NULL) {
		char want[32];

		for (i = 0, p = got, count = 0; i < 6000; i++) {
			snprintf(want, sizeof want, "%zu\n", i);
			if (strncmp(p, want, strlen(want)) != 0)
				break;
			p += strlen(want);
			if (i + 1 < 6000 && *p++ != '\n')
				break;
			count++;
		}
		check(count == 6000 && *p == '\0', __LINE__,
		      "paragraphs in order across pieces (%zu)", count);
	}
	free(got);
	/* a script holding many tags at a piece boundary stays dropped */
	buf_reset(&html);
	for (i = 0; i < 9990; i++)
		buf_puts(&html, "<b>");
	buf_puts(&html, "A<script>");
	for (i = 0; i < 100; i++)
		buf_puts(&html, "<b>js</b>");
	buf_puts(&html, "</script>B<style><p>css</p></style>C<!--");
	for (i = 0; i < 100; i++)
		buf_puts(&html, "<p>comment</p>");
	buf_puts(&html, "-->D");
	got = h2t(html.data);
	check(got != NULL && strcmp(got, "ABCD\n") == 0, __LINE__,
	      "raw text never split: \"%.60s\"", got != NULL ? got : "(fail)");
	free(got);
	/* a NUL inside the input and unterminated constructs */
	{
		struct buf b = {0};

		CU_ASSERT_EQUAL(html_to_text("a\0b<p", 5, &b), 0);
		CU_ASSERT_EQUAL(html_to_text("<script>never ends", 18, &b), 0);
		CU_ASSERT_EQUAL(html_to_text("<!-- never ends", 15, &b), 0);
		CU_ASSERT_EQUAL(html_to_text("<a href='", 9, &b), 0);
		buf_free(&b);
	}
	buf_free(&html);
}

/* ---- .eml export for tests/integration/check_mime.py ------------------ */

static void json_str(FILE *f, const char *s);

/* A display name as a reader should see it: controls made spaces (what
 * mime.c promises), outer spaces trimmed (phrase syntax drops them). */
static void json_name(FILE *f, const char *s)
{
	char tmp[512];
	size_t i, a = 0, n;

	snprintf(tmp, sizeof tmp, "%s", s != NULL ? s : "");
	n = strlen(tmp);
	for (i = 0; i < n; i++)
		if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
			tmp[i] = ' ';
	while (a < n && tmp[a] == ' ')
		a++;
	while (n > a && tmp[n - 1] == ' ')
		n--;
	tmp[n] = '\0';
	json_str(f, tmp + a);
}

/* A JSON string literal (UTF-8 passes through). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

struct eml_att {
	const char *path, *filename, *cid; /* cid NULL: attachment */
};

/* Write dir/name.eml and dir/name.json with the expectations. */
static void eml_write(const char *dir, const char *name,
                      const struct mime_message *m, const char *want_subject,
                      const char *want_text, const char *want_structure,
                      const struct eml_att *atts, size_t natts)
{
	char path[1024];
	struct buf out = {0};
	FILE *f;
	size_t i;

	if (build_ok(m, &out, __LINE__) < 0)
		return;
	snprintf(path, sizeof path, "%s/%s.eml", dir, name);
	f = fopen(path, "wb");
	check(f != NULL, __LINE__, "write %s", path);
	if (f == NULL)
		goto done;
	fwrite(out.data, 1, out.len, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/%s.json", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		goto done;
	fputs("{\n  \"subject\": ", f);
	json_str(f, want_subject);
	fputs(",\n  \"from_name\": ", f);
	json_name(f, m->from_name);
	fputs(",\n  \"from_addr\": ", f);
	json_str(f, m->from_addr);
	fputs(",\n  \"to_name\": ", f);
	json_name(f, m->to_name);
	fputs(",\n  \"to\": ", f);
	json_str(f, m->to_addr);
	fputs(",\n  \"text\": ", f);
	json_str(f, want_text);
	fputs(",\n  \"html\": ", f);
	if (m->html != NULL)
		json_str(f, m->html);
	else
		fputs("null", f);
	fputs(",\n  \"structure\": ", f);
	json_str(f, want_structure);
	fputs(",\n  \"attachments\": [", f);
	for (i = 0; i < natts; i++) {
		fputs(i > 0 ? ",\n    {" : "\n    {", f);
		fputs("\"path\": ", f);
		json_str(f, atts[i].path);
		fputs(", \"filename\": ", f);
		json_str(f, atts[i].filename);
		fputs(", \"cid\": ", f);
		if (atts[i].cid != NULL)
			json_str(f, atts[i].cid);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputs("]\n}\n", f);
	fclose(f);
done:
	buf_free(&out);
}

static void test_eml_export(void)
{
	const char *dir = getenv("EDM_MIME_EML_DIR");
	struct mime_attachment *png, *pdf, *txt, *lng = NULL;
	struct mime_attachment *atts[4];
	struct mime_message m;
	char lpath[1024], lname[200];
	size_t n = 0, i;

	if (dir == NULL || dir[0] == '\0')
		return; /* only for the integration check */
	png = att_load(MIME_DIR "logo.png", __LINE__);
	pdf = att_load(MIME_DIR "report.pdf", __LINE__);
	txt = att_load(MIME_DIR "条款.txt", __LINE__);
	for (i = 0; i < 30; i++) {
		memcpy(lname + n, "\xe5\x90\x88\xe5\x90\x8c", 6); /* 合同 */
		n += 6;
	}
	memcpy(lname + n, "-2026.pdf", 10);
	snprintf(lpath, sizeof lpath, "%s/%s", dir, lname);
	{
		FILE *f = fopen(lpath, "wb");

		if (f != NULL) {
			fputs("%PDF-1.4\n% long name\n", f);
			fclose(f);
			lng = att_load(lpath, __LINE__);
		}
	}
	if (png == NULL || pdf == NULL || txt == NULL || lng == NULL)
		goto done;

	/* 1: text only, Chinese subject and names */
	m = base_msg();
	m.from_name = "某某科技有限公司 市场部";
	m.to_name = "张三";
	m.subject = "春季促销：全场五折，仅限本周！我们为您准备了精选商品，"
	            "欢迎选购。这是一个很长的主题行，用来测试折行。";
	m.text = "张三，您好：\n\n春季促销开始了，全场五折。\n"
	         "A very long ASCII line that goes well past seventy-six "
	         "characters so that quoted-printable soft breaks are needed.\n"
	         "退订请回复 TD。\n";
	m.text_len = strlen(m.text);
	eml_write(dir, "text_cjk", &m, m.subject, m.text, "text/plain", NULL, 0);

	/* 2: HTML only, text generated */
	m = base_msg();
	m.to_name = "Doe, Jane \"JD\"";
	m.subject = "Plain ASCII subject that is long enough to be folded at "
	            "whitespace by the header writer, twice over";
	m.text = NULL;
	m.html = "<html><head><title>t</title><style>p{}</style></head><body>"
	         "<h1>欢迎</h1><p>Hello &amp; welcome, <b>Jane</b>.</p>"
	         "<ul><li>一</li><li>two</li></ul>"
	         "<p><a href=\"https://acme.example/shop\">Shop</a></p>"
	         "<script>evil()</script></body></html>";
	m.html_len = strlen(m.html);
	eml_write(dir, "html_only", &m, m.subject,
	          "欢迎\n\nHello & welcome, Jane.\n\n- 一\n- two\n\n"
	          "Shop (https://acme.example/shop)\n",
	          "multipart/alternative(text/plain,text/html)", NULL, 0);

	/* 3: text + HTML + inline image + attachments (Chinese names) */
	m = base_msg();
	m.to_name = "李四";
	m.subject = "您的合同 / your contract";
	m.text = "请查收附件。\nPlease find the files attached.\n";
	m.text_len = strlen(m.text);
	m.html = "<p>请查收附件。</p><img src=\"cid:logo.png\" alt=\"logo\">";
	m.html_len = strlen(m.html);
	atts[0] = png;
	atts[1] = pdf;
	atts[2] = txt;
	atts[3] = lng;
	m.atts = atts;
	m.natts = 4;
	m.unsub_url = "https://acme.example/u/1";
	{
		const struct eml_att ea[] = {
			{MIME_DIR "logo.png", "logo.png", "<logo.png>"},
			{MIME_DIR "report.pdf", "report.pdf", NULL},
			{MIME_DIR "条款.txt", "条款.txt", NULL},
			{lpath, lname, NULL},
		};

		eml_write(dir, "full", &m, m.subject, m.text,
		          "multipart/mixed(multipart/alternative(text/plain,"
		          "multipart/related(text/html,image/png)),"
		          "application/pdf,text/plain,application/pdf)", ea, 4);
	}

	/* 4: injection attempts */
	{
		struct mime_header hd[] = {{"X-Campaign",
		                            "c1\r\nBcc: x@evil.example"}};

		m = base_msg();
		m.subject = "Hi\r\nBcc: x@evil.example";
		m.headers = hd;
		m.nheaders = 1;
		m.text = "a\n.\r\nb\r.\rc\n";
		m.text_len = strlen(m.text);
		m.to_name = "Jane\r\nBcc: x@evil.example";
		eml_write(dir, "injection", &m, "Hi  Bcc: x@evil.example",
		          "a\n.\nb\n.\nc\n", "text/plain", NULL, 0);
	}
done:
	mime_attachment_free(png);
	mime_attachment_free(pdf);
	mime_attachment_free(txt);
	mime_attachment_free(lng);
}

static const struct test_case tests[] = {
	{"ew_ascii", test_ew_ascii},
	{"ew_cjk", test_ew_cjk},
	{"ew_fold_ascii", test_ew_fold_ascii},
	{"ew_forced", test_ew_forced},
	{"display_names", test_display_names},
	{"qp_vectors", test_qp_vectors},
	{"qp_random", test_qp_random},
	{"headers_golden", test_headers_golden},
	{"dates", test_dates},
	{"unsubscribe", test_unsubscribe},
	{"injection", test_injection},
	{"smuggling", test_smuggling},
	{"text_encoding", test_text_encoding},
	{"structures", test_structures},
	{"boundaries", test_boundaries},
	{"rfc2231", test_rfc2231},
	{"attachment_load", test_attachment_load},
	{"errors", test_errors},
	{"html2text_cases", test_html2text_cases},
	{"html2text_hostile", test_html2text_hostile},
	{"eml_export", test_eml_export},
	{0},
};

int main(void)
{
	int rc = test_run("mime", tests);

	tdir_cleanup();
	return rc;
}
