/*
 * test_dkim.c - DKIM canonicalisation, signing, key loading and key
 * generation (templates/dkim.h).
 *
 * Signatures are checked here with OpenSSL's EVP_DigestVerify over data
 * this file rebuilds from the signed message (header selection bottom-up,
 * RFC 6376 5.4.2), and independently by python3-dkim: when EDM_DKIM_OUT_DIR
 * is set, test_export writes signed messages, their TXT records and a
 * manifest there for tests/integration/dkim_verify.py (driven by
 * tests/integration/dkim_check.sh). Fixture keys are test keys only
 * (tests/fixtures/dkim/README).
 */
#include "cunit_main.h"

#include "buf.h"
#include "dkim.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define FIX EDM_FIXTURES "/dkim/"
#define NOW ((time_t)1700000000)
#define DOMAIN "example.test"

/* ---- messages ---- */

static const char msg_plain[] =
	"From: Sender <news@example.test>\r\n"
	"To: Reader <reader@example.test>\r\n"
	"Subject: Hello\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <1@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"List-Unsubscribe: <https://example.test/u/1>\r\n"
	"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	"Feedback-ID: c1:edm\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: 7bit\r\n"
	"\r\n"
	"Hello reader.\r\n"
	"\r\n"
	"-- \r\n"
	"Unsubscribe: https://example.test/u/1\r\n";

static const char msg_reply_to[] =
	"From: Sender <news@example.test>\r\n"
	"To: Reader <reader@example.test>\r\n"
	"Reply-To: help@example.test\r\n"
	"Subject: Hello again\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <2@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"Hello.\r\n";

/* Multipart with a Chinese subject (RFC 2047) and base64 UTF-8 parts:
 * "你好，世界 — 本周新闻". */
static const char msg_chinese[] =
	"From: =?UTF-8?B?5paw6Ze75a6k?= <news@example.test>\r\n"
	"To: reader@example.test\r\n"
	"Subject: =?UTF-8?B?5L2g5aW977yM5LiW55WMIOKAlCDmnKzlkajmlrDpl7s=?=\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <zh-3@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative;\r\n"
	" boundary=\"=_edm_b1\"\r\n"
	"\r\n"
	"--=_edm_b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"5Lqy54ix55qE6K+76ICF77yaDQoNCui/meaYr+acrOWRqOeahOaWsOmXu+aRmOimgeOAguaEn+iw\r\n"
	"ouaCqOeahOiuoumYhe+8gQ0K\r\n"
	"\r\n"
	"--=_edm_b1\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PHA+5Lqy54ix55qE6K+76ICF77yaPC9wPjxwPui/meaYr+acrOWRqOeahOaWsOmXu+aRmOimgeOA\r\n"
	"gjwvcD4NCg==\r\n"
	"\r\n"
	"--=_edm_b1--\r\n";

/* Folded headers with odd spacing; body lines with trailing WSP and
 * WSP-only lines at the end. */
static const char msg_folded[] =
	"From: Sender <news@example.test>\r\n"
	"To: First <a@example.test>,\r\n"
	"\tSecond <b@example.test>,\r\n"
	"  Third <c@example.test>\r\n"
	"Subject:   A rather long subject line   that has been folded\r\n"
	"\tacross two lines   with\t odd   spacing   \r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <4@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain;\r\n"
	"    charset=us-ascii\r\n"
	"\r\n"
	"Line one   \r\n"
	"Line\t\ttwo \t\r\n"
	"   \r\n"
	"  indented    words\r\n"
	"   \r\n"
	"\t\r\n"
	"\r\n";

/* Repeated fields (two Cc, two References): the bottom-up selection of
 * RFC 6376 5.4.2 and the count+1 oversigning both matter here. */
static const char msg_dup[] =
	"From: Sender <news@example.test>\r\n"
	"To: reader@example.test\r\n"
	"Cc: one@example.test\r\n"
	"References: <a@example.test>\r\n"
	"Subject: Duplicates\r\n"
	"Cc: two@example.test\r\n"
	"References: <b@example.test>\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <5@example.test>\r\n"
	"\r\n"
	"Body.\r\n";

/* ---- helpers ---- */

static struct dkim_key *key_load(const char *file, const char *selector)
{
	char err[512] = "";
	struct dkim_key *k = dkim_key_load(file, DOMAIN, selector, err,
	                                   sizeof(err));
	if (k == NULL)
		fprintf(stderr, "key_load %s: %s\n", file, err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	return k;
}

static EVP_PKEY *pkey_read(const char *file)
{
	FILE *fp = fopen(file, "r");
	EVP_PKEY *pk;

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	pk = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	return pk;
}

static int canon_header_str(const char *field, struct buf *out)
{
	return dkim_canon_header(field, strlen(field), out);
}

/* Canonical body as a NUL-terminated heap string (caller frees). */
static char *canon_body_str(const char *body, size_t len)
{
	struct buf b = { 0 };

	CU_ASSERT_EQUAL_FATAL(dkim_canon_body(body, len, &b), 0);
	if (b.data == NULL)
		return strdup("");
	return b.data;
}

/* Reference body canonicalisation, written the slow obvious way from
 * RFC 6376 3.4.4 (for CRLF-only input): lines split on CRLF; WSP at each
 * line end removed; WSP runs collapsed; trailing empty lines dropped. */
static char *canon_body_ref(const char *body, size_t len)
{
	char *out = malloc(len * 2 + 3);
	size_t o = 0, keep = 0, i = 0;

	while (i < len) {
		size_t j = i, e;
		int wsp = 0;

		while (j < len && !(body[j] == '\r' && j + 1 < len && body[j + 1] == '\n'))
			j++;
		e = j;
		while (e > i && (body[e - 1] == ' ' || body[e - 1] == '\t'))
			e--;
		for (size_t k = i; k < e; k++) {
			if (body[k] == ' ' || body[k] == '\t') {
				wsp = 1;
				continue;
			}
			if (wsp)
				out[o++] = ' ';
			wsp = 0;
			out[o++] = body[k];
		}
		out[o++] = '\r';
		out[o++] = '\n';
		if (e > i)
			keep = o;   /* end of the last non-empty line */
		i = j < len ? j + 2 : len;
	}
	out[keep] = '\0';
	return out;
}

/* Every line of s (CRLF-separated) is at most 78 octets, and every line
 * after the first starts with WSP (a continuation). */
static int header_lines_ok(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n') {
			if (i - start > 78)
				return 0;
			if (start > 0 && s[start] != ' ' && s[start] != '\t')
				return 0;
			start = i + 2;
		}
	}
	return start == len;
}

/* Unfolded value of tag 'name' in a DKIM-Signature field (whitespace
 * removed), or "" if absent. */
static void sig_tag(const char *sig, size_t len, const char *name, char *out,
                    size_t outlen)
{
	char *flat = malloc(len + 1);
	size_t n = 0, nl = strlen(name);
	const char *colon = memchr(sig, ':', len);

	out[0] = '\0';
	CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
	for (const char *p = colon + 1; p < sig + len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			flat[n++] = *p;
	flat[n] = '\0';
	for (char *t = strtok(flat, ";"); t != NULL; t = strtok(NULL, ";")) {
		if (strncmp(t, name, nl) == 0 && t[nl] == '=') {
			snprintf(out, outlen, "%s", t + nl + 1);
			break;
		}
	}
	free(flat);
}

struct field {
	const char *p;
	size_t len;
};

/* Split a CRLF message header into fields; returns the count and sets
 * *body. */
static size_t split_fields(const char *msg, size_t len, struct field *f,
                           size_t max, const char **body)
{
	size_t n = 0;
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		CU_ASSERT_PTR_NOT_NULL_FATAL(eol);
		if (eol == p) {
			*body = p + 2;
			return n;
		}
		if (*p == ' ' || *p == '\t') {
			f[n - 1].len = (size_t)(eol + 2 - f[n - 1].p);
		} else {
			CU_ASSERT_FATAL(n < max);
			f[n].p = p;
			f[n].len = (size_t)(eol + 2 - p);
			n++;
		}
		p = eol + 2;
	}
	CU_FAIL_FATAL("no header/body separator");
	return 0;
}

static int field_is(const struct field *f, const char *name)
{
	size_t nl = strlen(name);
	return f->len > nl && strncasecmp(f->p, name, nl) == 0 &&
	       f->p[nl] == ':';
}

/*
 * Verify one DKIM-Signature field 'sig' over 'msg' with the public half
 * of 'pub': the body hash, and the signature over the h= fields picked
 * bottom-up plus the signature field with b= emptied, no final CRLF.
 * 1 valid, 0 not.
 */
static int verify_sig(const char *sig, size_t siglen, const char *msg,
                      size_t msglen, EVP_PKEY *pub)
{
	struct field f[256];
	int used[256] = { 0 };
	const char *body = NULL;
	size_t nf = split_fields(msg, msglen, f, 256, &body);
	char a[64], h[1024], bh[128], b[1024], *bodyc, *hlist;
	unsigned char dig[32], sigbin[1024], bhcalc[64];
	struct buf data = { 0 };
	const char *bpos = NULL;
	EVP_MD_CTX *md;
	int ok = 0, siglen_bin;

	sig_tag(sig, siglen, "a", a, sizeof(a));
	sig_tag(sig, siglen, "h", h, sizeof(h));
	sig_tag(sig, siglen, "bh", bh, sizeof(bh));
	sig_tag(sig, siglen, "b", b, sizeof(b));

	/* body hash */
	bodyc = canon_body_str(body, msglen - (size_t)(body - msg));
	EVP_Digest(bodyc, strlen(bodyc), dig, NULL, EVP_sha256(), NULL);
	free(bodyc);
	EVP_EncodeBlock(bhcalc, dig, 32);
	if (strcmp((char *)bhcalc, bh) != 0)
		return 0;

	/* signed header fields, bottom-up per name */
	hlist = strdup(h);
	for (char *name = strtok(hlist, ":"); name != NULL;
	     name = strtok(NULL, ":")) {
		for (size_t j = nf; j-- > 0;) {
			if (!used[j] && field_is(&f[j], name)) {
				used[j] = 1;
				CU_ASSERT_EQUAL(dkim_canon_header(f[j].p, f[j].len, &data), 0);
				break;
			}
		}
	}
	free(hlist);
	/* the signature field with b= emptied: b= is the last tag */
	for (const char *p = sig; p + 3 < sig + siglen; p++)
		if ((p[0] == ' ' || p[0] == ';') && p[1] == 'b' && p[2] == '=')
			bpos = p + 3;
	CU_ASSERT_PTR_NOT_NULL_FATAL(bpos);
	CU_ASSERT_EQUAL(dkim_canon_header(sig, (size_t)(bpos - sig), &data), 0);
	data.len -= 2;  /* RFC 6376 3.7: without the trailing CRLF */
	CU_ASSERT_EQUAL(memcmp(data.data + data.len - 2, "b=", 2), 0);

	siglen_bin = EVP_DecodeBlock(sigbin, (unsigned char *)b, (int)strlen(b));
	if (siglen_bin < 0)
		goto done;
	/* EVP_DecodeBlock counts '=' padding as zero bytes */
	for (size_t i = strlen(b); i > 0 && b[i - 1] == '='; i--)
		siglen_bin--;
	md = EVP_MD_CTX_new();
	if (strcmp(a, "rsa-sha256") == 0) {
		ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
		     EVP_DigestVerify(md, sigbin, (size_t)siglen_bin,
		                      (unsigned char *)data.data, data.len) == 1;
	} else if (strcmp(a, "ed25519-sha256") == 0) {
		/* RFC 8463: Ed25519 over the SHA-256 of the data */
		EVP_Digest(data.data, data.len, dig, NULL, EVP_sha256(), NULL);
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, pub) == 1 &&
		     EVP_DigestVerify(md, sigbin, (size_t)siglen_bin, dig, 32) == 1;
	}
	EVP_MD_CTX_free(md);
done:
	buf_free(&data);
	return ok;
}

/* Sign msg with keys, then return in *sigs the signature fields and in
 * *full the signed message (signatures + msg). */
static void sign_msg(struct dkim_key *const *keys, size_t n, const char *msg,
                     struct buf *sigs, struct buf *full)
{
	char err[256] = "";
	int rc = dkim_sign(keys, n, msg, strlen(msg), NOW, sigs, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "dkim_sign: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	if (full != NULL) {
		buf_append(full, sigs->data, sigs->len);
		buf_puts(full, msg);
	}
}

/* Start and length of the i-th DKIM-Signature field in sigs. */
static void sig_nth(const struct buf *sigs, int i, const char **p, size_t *len)
{
	const char *s = sigs->data, *end = sigs->data + sigs->len, *next;

	for (;;) {
		CU_ASSERT_EQUAL_FATAL(strncmp(s, "DKIM-Signature:", 15), 0);
		next = s + 1;
		while (next < end && strncmp(next, "\r\nDKIM-Signature:", 17) != 0)
			next++;
		if (next < end)
			next += 2;
		if (i-- == 0)
			break;
		CU_ASSERT_FATAL(next < end);
		s = next;
	}
	*p = s;
	*len = (size_t)(next - s);
}

/* ---- canonicalisation ---- */

/* RFC 6376 3.4.5, the example of relaxed canonicalisation. */
static void test_canon_rfc_example(void)
{
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
	struct buf h = { 0 };
	char *c;

	CU_ASSERT_EQUAL(canon_header_str("A: X\r\n", &h), 0);
	CU_ASSERT_EQUAL(canon_header_str("B : Y\t\r\n\tZ  \r\n", &h), 0);
	CU_ASSERT_STRING_EQUAL(h.data, "a:X\r\nb:Y Z\r\n");
	buf_free(&h);

	c = canon_body_str(body, strlen(body));
	CU_ASSERT_STRING_EQUAL(c, " C\r\nD E\r\n");
	free(c);
}

static void test_canon_header_edges(void)
{
	struct buf h = { 0 };

	CU_ASSERT_EQUAL(canon_header_str("SUBJECT:Hi", &h), 0);
	CU_ASSERT_STRING_EQUAL(h.data, "subject:Hi\r\n");
	buf_reset(&h);
	CU_ASSERT_EQUAL(canon_header_str("X-Empty: \t \r\n", &h), 0);
	CU_ASSERT_STRING_EQUAL(h.data, "x-empty:\r\n");
	buf_reset(&h);
	CU_ASSERT_EQUAL(canon_header_str("To: a@x.test,\r\n\t b@x.test ,\r\n  c@x.test\r\n", &h), 0);
	CU_ASSERT_STRING_EQUAL(h.data, "to:a@x.test, b@x.test , c@x.test\r\n");
	buf_reset(&h);
	/* a colon inside the value stays; only the first separates */
	CU_ASSERT_EQUAL(canon_header_str("Feedback-ID :  c1 : edm  ", &h), 0);
	CU_ASSERT_STRING_EQUAL(h.data, "feedback-id:c1 : edm\r\n");
	buf_reset(&h);
	CU_ASSERT_EQUAL(canon_header_str("no colon here\r\n", &h), -1);
	CU_ASSERT_EQUAL(canon_header_str(": no name\r\n", &h), -1);
	CU_ASSERT_EQUAL(h.len, 0);
	buf_free(&h);
}

static void test_canon_body_edges(void)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "" },                          /* erratum 3133: stays empty */
		{ "\r\n", "" },
		{ "\r\n\r\n\r\n", "" },
		{ " \r\n\t\r\n  \t \r\n", "" },      /* lone WSP lines are empty */
		{ " \t ", "" },
		{ "abc", "abc\r\n" },                /* CRLF added */
		{ "abc \t", "abc\r\n" },
		{ "a  b", "a b\r\n" },
		{ "  lead", " lead\r\n" },
		{ "A\r\n \t \r\nB\r\n", "A\r\n\r\nB\r\n" },  /* inner WSP line kept empty */
		{ " \r\nX\r\n", "\r\nX\r\n" },
		{ "A\r\n\r\n\r\nB\r\n\r\n", "A\r\n\r\n\r\nB\r\n" },
		{ "A\nB \n\n", "A\r\nB\r\n" },      /* bare LF: SMTP sends CRLF */
		{ "A\rB\r", "A\r\nB\r\n" },         /* bare CR likewise */
		{ "x\t\r\n\t\r\n", "x\r\n" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *c = canon_body_str(v[i].in, strlen(v[i].in));
		if (strcmp(c, v[i].out) != 0)
			fprintf(stderr, "canon body case %zu: got \"%s\"\n", i, c);
		CU_ASSERT_STRING_EQUAL(c, v[i].out);
		free(c);
	}
}

/* Random CRLF bodies, bigger than the canonicaliser's 4 KB stage buffer,
 * against the slow reference above. */
static void test_canon_body_random(void)
{
	static const char *const atoms[] = { "a", "b", " ", "\t", "\r\n", "xyz" };
	unsigned seed = 12345;

	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)(rand_r(&seed) % 12000), len = 0;
		char *body = malloc(n * 3 + 1), *got, *want;

		for (size_t i = 0; i < n; i++) {
			const char *a = atoms[rand_r(&seed) % 6];
			memcpy(body + len, a, strlen(a));
			len += strlen(a);
		}
		body[len] = '\0';
		got = canon_body_str(body, len);
		want = canon_body_ref(body, len);
		CU_ASSERT_STRING_EQUAL(got, want);
		free(got);
		free(want);
		free(body);
	}
}

/* Bodies like mime_build() writes: CRLF lines of plain text, most of them
 * longer than the canonicaliser's 16-octet scan step, a few with WSP runs,
 * tabs, trailing blanks, blank-only or empty lines, and trailing empty
 * lines; against the slow reference above. */
static void test_canon_body_long_lines(void)
{
	static const char *const odd[] = { "  ", "\t", " \t ", " " };
	unsigned seed = 4242;

	for (int round = 0; round < 300; round++) {
		size_t lines = (size_t)(rand_r(&seed) % 60), cap = lines * 320 + 16;
		char *body = malloc(cap), *got, *want;
		size_t len = 0;

		for (size_t l = 0; l < lines; l++) {
			size_t n = (size_t)(rand_r(&seed) % 300);
			int kind = rand_r(&seed) % 10;

			for (size_t i = 0; i < n; i++)
				body[len++] = (i % 7 == 6) ? ' ' :
				              (char)('a' + (i + l) % 26);
			if (kind == 0 && n > 0) {        /* odd WSP inside */
				const char *o = odd[rand_r(&seed) % 4];
				size_t at = (size_t)rand_r(&seed) % n;
				memmove(body + len - n + at + strlen(o),
				        body + len - n + at, n - at);
				memcpy(body + len - n + at, o, strlen(o));
				len += strlen(o);
			} else if (kind == 1) {          /* trailing WSP */
				body[len++] = ' ';
				body[len++] = '\t';
			}
			body[len++] = '\r';
			body[len++] = '\n';
		}
		for (int k = rand_r(&seed) % 3; k > 0; k--) {
			body[len++] = '\r';
			body[len++] = '\n';
		}
		body[len] = '\0';
		got = canon_body_str(body, len);
		want = canon_body_ref(body, len);
		CU_ASSERT_STRING_EQUAL(got, want);
		free(got);
		free(want);
		free(body);
	}
}

/* ---- keys ---- */

static void test_key_load(void)
{
	struct dkim_key *k;
	char err[512];

	k = key_load(FIX "rsa2048.pem", "s2048");
	CU_ASSERT_EQUAL(dkim_key_alg(k), DKIM_RSA_SHA256);
	CU_ASSERT_EQUAL(dkim_key_bits(k), 2048);
	CU_ASSERT_STRING_EQUAL(dkim_key_domain(k), DOMAIN);
	dkim_key_free(k);

	k = key_load(FIX "rsa1024.pem", "s1024");
	CU_ASSERT_EQUAL(dkim_key_bits(k), 1024);
	dkim_key_free(k);

	k = key_load(FIX "rsa2048_traditional.pem", "s2048");
	CU_ASSERT_EQUAL(dkim_key_bits(k), 2048);
	dkim_key_free(k);

	k = key_load(FIX "ed25519.pem", "sed");
	CU_ASSERT_EQUAL(dkim_key_alg(k), DKIM_ED25519_SHA256);
	CU_ASSERT_EQUAL(dkim_key_bits(k), 256);
	dkim_key_free(k);

	/* the domain is kept lowercased; a selector may have dots */
	k = dkim_key_load(FIX "ed25519.pem", "Mail.Example.TEST", "2024.q1", err,
	                  sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_STRING_EQUAL(dkim_key_domain(k), "mail.example.test");
	dkim_key_free(k);

	dkim_key_free(NULL);
}

static void test_key_load_refused(void)
{
	static const struct {
		const char *file, *domain, *selector, *msg;
	} v[] = {
		{ FIX "rsa512.pem", DOMAIN, "s", FIX "rsa512.pem: RSA key of 512 bits "
		  "is too weak (RFC 8301 requires at least 1024; use 2048)" },
		{ FIX "ec_p256.pem", DOMAIN, "s", "unsupported key type EC" },
		{ FIX "ed25519_pub.pem", DOMAIN, "s", "no usable private key" },
		{ FIX "rsa2048_encrypted.pem", DOMAIN, "s", "no usable private key" },
		{ FIX "README", DOMAIN, "s", "no usable private key" },
		{ FIX "missing.pem", DOMAIN, "s", "cannot open" },
		{ FIX "ed25519.pem", "exa mple.test", "s", "domain \"exa mple.test\"" },
		{ FIX "ed25519.pem", "-bad.test", "s", "is not a DNS name" },
		{ FIX "ed25519.pem", "bad-.test", "s", "is not a DNS name" },
		{ FIX "ed25519.pem", "a..test", "s", "is not a DNS name" },
		{ FIX "ed25519.pem", "example.test.", "s", "is not a DNS name" },
		{ FIX "ed25519.pem", "", "s", "is not a DNS name" },
		{ FIX "ed25519.pem", "b\xc3\xbc" "cher.test", "s", "xn--" },
		{ FIX "ed25519.pem", DOMAIN, "s_1", "selector \"s_1\"" },
		{ FIX "ed25519.pem", DOMAIN, "", "selector" },
		{ FIX "ed25519.pem", DOMAIN,
		  "a123456789012345678901234567890123456789012345678901234567890123",
		  "selector" },   /* a 64-octet label */
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char err[512] = "";
		struct dkim_key *k = dkim_key_load(v[i].file, v[i].domain,
		                                   v[i].selector, err, sizeof(err));
		CU_ASSERT_PTR_NULL(k);
		dkim_key_free(k);
		if (strstr(err, v[i].msg) == NULL)
			fprintf(stderr, "case %zu: err \"%s\"\n", i, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, v[i].msg));
	}
	/* the weak-key message is exactly as documented */
	{
		char err[512] = "";
		CU_ASSERT_PTR_NULL(dkim_key_load(FIX "rsa512.pem", DOMAIN, "s", err,
		                                 sizeof(err)));
		CU_ASSERT_STRING_EQUAL(err, v[0].msg);
	}
}

/* ---- signing ---- */

static void test_sign_format(void)
{
	struct dkim_key *keys[2];
	struct buf sigs = { 0 };
	const char *s;
	size_t len;
	char t[64], c[64], d[64], sel[64], v[16], bh[64], b[1024];

	keys[0] = key_load(FIX "rsa2048.pem", "s2048");
	keys[1] = key_load(FIX "ed25519.pem", "sed");
	sign_msg(keys, 2, msg_plain, &sigs, NULL);
	CU_ASSERT_EQUAL(sigs.data[sigs.len - 1], '\n');
	for (int i = 0; i < 2; i++) {
		sig_nth(&sigs, i, &s, &len);
		CU_ASSERT(header_lines_ok(s, len));
	}
	CU_ASSERT_PTR_NULL(strstr(sigs.data, " l="));
	CU_ASSERT_PTR_NULL(strstr(sigs.data, ";l="));
	CU_ASSERT_PTR_NULL(strstr(sigs.data, " x="));

	sig_nth(&sigs, 0, &s, &len);
	CU_ASSERT_EQUAL(strncmp(s, "DKIM-Signature: v=1; a=rsa-sha256; "
	                           "c=relaxed/relaxed; d=example.test; s=s2048;",
	                        strlen("DKIM-Signature: v=1; a=rsa-sha256; "
	                               "c=relaxed/relaxed; d=example.test; s=s2048;")), 0);
	sig_tag(s, len, "v", v, sizeof(v));
	sig_tag(s, len, "c", c, sizeof(c));
	sig_tag(s, len, "d", d, sizeof(d));
	sig_tag(s, len, "s", sel, sizeof(sel));
	sig_tag(s, len, "t", t, sizeof(t));
	sig_tag(s, len, "bh", bh, sizeof(bh));
	sig_tag(s, len, "b", b, sizeof(b));
	CU_ASSERT_STRING_EQUAL(v, "1");
	CU_ASSERT_STRING_EQUAL(c, "relaxed/relaxed");
	CU_ASSERT_STRING_EQUAL(d, DOMAIN);
	CU_ASSERT_STRING_EQUAL(sel, "s2048");
	CU_ASSERT_STRING_EQUAL(t, "1700000000");
	CU_ASSERT_EQUAL(strlen(bh), 44);
	CU_ASSERT_EQUAL(strlen(b), 344);    /* 256 octets in base64 */
	/* tag order v a c d s t h bh b */
	CU_ASSERT(strstr(s, "t=") < strstr(s, "h=") &&
	          strstr(s, "h=") < strstr(s, "bh=") &&
	          strstr(s, "bh=") < strstr(s, " b="));

	sig_nth(&sigs, 1, &s, &len);
	CU_ASSERT_EQUAL(strncmp(s, "DKIM-Signature: v=1; a=ed25519-sha256; ", 39), 0);
	sig_tag(s, len, "b", b, sizeof(b));
	CU_ASSERT_EQUAL(strlen(b), 88);     /* 64 octets in base64 */
	{
		char bh2[64];
		sig_tag(s, len, "bh", bh2, sizeof(bh2));
		CU_ASSERT_STRING_EQUAL(bh, bh2);  /* one body hash for both */
	}
	buf_free(&sigs);
	dkim_key_free(keys[0]);
	dkim_key_free(keys[1]);
}

static void test_sign_oversign(void)
{
	struct dkim_key *k = key_load(FIX "ed25519.pem", "sed");
	struct buf sigs = { 0 };
	char h[1024];

	sign_msg(&k, 1, msg_plain, &sigs, NULL);
	sig_tag(sigs.data, sigs.len, "h", h, sizeof(h));
	CU_ASSERT_STRING_EQUAL(h,
		"from:from:to:to:subject:subject:date:date:message-id:message-id:"
		"mime-version:mime-version:content-type:content-type:reply-to:"
		"feedback-id:feedback-id:list-unsubscribe:list-unsubscribe:"
		"list-unsubscribe-post:list-unsubscribe-post:cc:in-reply-to:"
		"references");
	buf_reset(&sigs);

	sign_msg(&k, 1, msg_reply_to, &sigs, NULL);
	sig_tag(sigs.data, sigs.len, "h", h, sizeof(h));
	CU_ASSERT_STRING_EQUAL(h,
		"from:from:to:to:subject:subject:date:date:message-id:message-id:"
		"mime-version:mime-version:content-type:content-type:reply-to:"
		"reply-to:feedback-id:list-unsubscribe:list-unsubscribe-post:cc:"
		"in-reply-to:references");
	buf_reset(&sigs);

	sign_msg(&k, 1, msg_dup, &sigs, NULL);
	sig_tag(sigs.data, sigs.len, "h", h, sizeof(h));
	CU_ASSERT_PTR_NOT_NULL(strstr(h, ":cc:cc:cc:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(h, ":references:references:references"));
	buf_free(&sigs);
	dkim_key_free(k);
}

/* Each signature verifies with the fixture's public key, for every test
 * message; a changed body, an added From or Reply-To, or a wrong key
 * fails. */
static void test_sign_verify(void)
{
	static const char *const msgs[] = { msg_plain, msg_reply_to, msg_chinese,
	                                    msg_folded, msg_dup };
	struct dkim_key *keys[3];
	EVP_PKEY *pub[3];

	keys[0] = key_load(FIX "rsa2048.pem", "s2048");
	keys[1] = key_load(FIX "ed25519.pem", "sed");
	keys[2] = key_load(FIX "rsa1024.pem", "s1024");
	pub[0] = pkey_read(FIX "rsa2048.pem");
	pub[1] = pkey_read(FIX "ed25519.pem");
	pub[2] = pkey_read(FIX "rsa1024.pem");

	for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
		struct buf sigs = { 0 };
		sign_msg(keys, 3, msgs[m], &sigs, NULL);
		for (int i = 0; i < 3; i++) {
			const char *s;
			size_t len;
			sig_nth(&sigs, i, &s, &len);
			CU_ASSERT_EQUAL(verify_sig(s, len, msgs[m], strlen(msgs[m]),
			                           pub[i]), 1);
			/* the other key does not verify it */
			CU_ASSERT_EQUAL(verify_sig(s, len, msgs[m], strlen(msgs[m]),
			                           pub[(i + 1) % 3]), 0);
		}
		buf_free(&sigs);
	}

	/* tampering */
	{
		struct buf sigs = { 0 }, t = { 0 };
		const char *s;
		size_t len;
		char *body;

		sign_msg(keys, 2, msg_plain, &sigs, NULL);
		for (int i = 0; i < 2; i++) {
			sig_nth(&sigs, i, &s, &len);
			/* body changed */
			buf_reset(&t);
			buf_puts(&t, msg_plain);
			body = strstr(t.data, "Hello reader");
			body[0] = 'J';
			CU_ASSERT_EQUAL(verify_sig(s, len, t.data, t.len, pub[i]), 0);
			/* a second From on top: the oversigned from:from catches it */
			buf_reset(&t);
			buf_puts(&t, "From: Evil <evil@example.test>\r\n");
			buf_puts(&t, msg_plain);
			CU_ASSERT_EQUAL(verify_sig(s, len, t.data, t.len, pub[i]), 0);
			/* an added Reply-To, absent when signed */
			buf_reset(&t);
			buf_puts(&t, "Reply-To: evil@example.test\r\n");
			buf_puts(&t, msg_plain);
			CU_ASSERT_EQUAL(verify_sig(s, len, t.data, t.len, pub[i]), 0);
			/* an unsigned header added: still valid */
			buf_reset(&t);
			buf_puts(&t, "Received: from x by y; Tue, 14 Nov 2023\r\n");
			buf_puts(&t, msg_plain);
			CU_ASSERT_EQUAL(verify_sig(s, len, t.data, t.len, pub[i]), 1);
		}
		buf_free(&t);
		buf_free(&sigs);
	}
	for (int i = 0; i < 3; i++) {
		dkim_key_free(keys[i]);
		EVP_PKEY_free(pub[i]);
	}
}

/* More header fields than dkim_sign() indexes on its stack (64): the
 * index moves to the heap and the signature still verifies. */
static void test_sign_many_headers(void)
{
	struct dkim_key *k = key_load(FIX "ed25519.pem", "sed");
	EVP_PKEY *pub = pkey_read(FIX "ed25519.pem");
	struct buf msg = { 0 }, sigs = { 0 };
	char h[1024];

	for (int i = 0; i < 150; i++)
		buf_printf(&msg, "Received: hop %d\r\n", i);
	buf_puts(&msg, "To: late@example.test\r\n");  /* after the 64th */
	buf_puts(&msg, msg_plain);
	sign_msg(&k, 1, msg.data, &sigs, NULL);
	sig_tag(sigs.data, sigs.len, "h", h, sizeof(h));
	CU_ASSERT_PTR_NOT_NULL(strstr(h, ":to:to:to:"));  /* both To counted */
	CU_ASSERT_EQUAL(verify_sig(sigs.data, sigs.len, msg.data, msg.len, pub), 1);
	buf_free(&msg);
	buf_free(&sigs);
	EVP_PKEY_free(pub);
	dkim_key_free(k);
}

/* Deterministic signatures (PKCS#1 v1.5 and Ed25519 both are): the same
 * input signs the same, another t= signs differently. */
static void test_sign_deterministic(void)
{
	struct dkim_key *keys[2];
	struct buf a = { 0 }, b = { 0 };
	char err[256];

	keys[0] = key_load(FIX "rsa2048.pem", "s2048");
	keys[1] = key_load(FIX "ed25519.pem", "sed");
	sign_msg(keys, 2, msg_chinese, &a, NULL);
	sign_msg(keys, 2, msg_chinese, &b, NULL);
	CU_ASSERT_EQUAL(a.len, b.len);
	CU_ASSERT_STRING_EQUAL(a.data, b.data);
	buf_reset(&b);
	CU_ASSERT_EQUAL(dkim_sign(keys, 2, msg_chinese, strlen(msg_chinese),
	                          NOW + 1, &b, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "t=1700000001;"));
	CU_ASSERT(strcmp(a.data, b.data) != 0);
	buf_free(&a);
	buf_free(&b);
	dkim_key_free(keys[0]);
	dkim_key_free(keys[1]);
}

static void test_sign_errors(void)
{
	static const char *const bad[] = {
		"From: a@example.test\r\nSubject: no body separator\r\n",
		"From: a@example.test\r\nSubject: x",
		"",
		" continuation first\r\nFrom: a@example.test\r\n\r\nbody\r\n",
		"From: a@example.test\r\nno colon line\r\n\r\nbody\r\n",
	};
	struct dkim_key *k = key_load(FIX "ed25519.pem", "sed");
	struct buf out = { 0 };

	buf_puts(&out, "keep");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		CU_ASSERT_EQUAL(dkim_sign(&k, 1, bad[i], strlen(bad[i]), NOW, &out,
		                          err, sizeof(err)), -1);
		CU_ASSERT(err[0] != '\0');
		CU_ASSERT_STRING_EQUAL(out.data, "keep");   /* out untouched */
	}
	/* no keys: nothing to do */
	CU_ASSERT_EQUAL(dkim_sign(&k, 0, msg_plain, strlen(msg_plain), NOW, &out,
	                          NULL, 0), 0);
	CU_ASSERT_EQUAL(out.len, 4);
	/* header-only message with an empty body still signs */
	CU_ASSERT_EQUAL(dkim_sign(&k, 1, "From: a@example.test\r\n\r\n", 24, NOW,
	                          &out, NULL, 0), 0);
	CU_ASSERT(out.len > 4);
	buf_free(&out);
	dkim_key_free(k);
}

/* Many threads signing with the same keys get exactly the single-thread
 * result (dkim.h: keys are read-only, contexts are per call). */
struct thread_arg {
	struct dkim_key **keys;
	const char *expect;
	int bad;
};

static void *sign_thread(void *p)
{
	struct thread_arg *a = p;
	struct buf out = { 0 };

	for (int i = 0; i < 40; i++) {
		buf_reset(&out);
		if (dkim_sign(a->keys, 2, msg_folded, strlen(msg_folded), NOW, &out,
		              NULL, 0) != 0 || strcmp(out.data, a->expect) != 0)
			a->bad++;
	}
	buf_free(&out);
	return NULL;
}

static void test_sign_threads(void)
{
	struct dkim_key *keys[2];
	struct thread_arg args[4];
	pthread_t th[4];
	struct buf ref = { 0 };

	keys[0] = key_load(FIX "rsa2048.pem", "s2048");
	keys[1] = key_load(FIX "ed25519.pem", "sed");
	sign_msg(keys, 2, msg_folded, &ref, NULL);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ keys, ref.data, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, sign_thread,
		                                     &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].bad, 0);
	}
	buf_free(&ref);
	dkim_key_free(keys[0]);
	dkim_key_free(keys[1]);
}

/* ---- key generation ---- */

static char tmpdir[] = "/tmp/edm-dkim-XXXXXX";

static const char *tmp_path(const char *name)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Concatenated content of the quoted strings of a record line; checks
 * each string is at most 255 octets. */
static void record_text(const char *rec, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p = strstr(rec, " IN TXT ");

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	while ((p = strchr(p, '"')) != NULL) {
		const char *q = strchr(p + 1, '"');
		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT((size_t)(q - p - 1) <= 255);
		CU_ASSERT_FATAL(n + (size_t)(q - p - 1) < outlen);
		memcpy(out + n, p + 1, (size_t)(q - p - 1));
		n += (size_t)(q - p - 1);
		p = q + 1;
	}
	out[n] = '\0';
}

static void test_keygen_rsa(void)
{
	struct buf rec = { 0 };
	char err[512] = "", txt[2048], before[4096];
	const char *path = tmp_path("rsa.pem");
	const unsigned char *der;
	unsigned char derbuf[1024];
	struct dkim_key *k;
	EVP_PKEY *pub, *priv;
	struct stat st;
	FILE *fp;
	size_t n;
	int dlen;

	CU_ASSERT_EQUAL_FATAL(dkim_keygen("rsa", 0, path, DOMAIN, "gen", &rec, err,
	                                  sizeof(err)), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	k = key_load(path, "gen");
	CU_ASSERT_EQUAL(dkim_key_bits(k), 2048);  /* the default */
	dkim_key_free(k);
	fp = fopen(path, "r");
	n = fread(before, 1, sizeof(before) - 1, fp);
	before[n] = '\0';
	fclose(fp);
	CU_ASSERT_PTR_NOT_NULL(strstr(before, "-----BEGIN PRIVATE KEY-----"));

	CU_ASSERT_EQUAL(strncmp(rec.data, "gen._domainkey.example.test. IN TXT \"",
	                        37), 0);
	CU_ASSERT_EQUAL(rec.data[rec.len - 1], '\n');
	record_text(rec.data, txt, sizeof(txt));
	CU_ASSERT_EQUAL(strncmp(txt, "v=DKIM1; k=rsa; p=", 18), 0);
	CU_ASSERT(strlen(txt) > 255);   /* so it really was split */
	/* p= is the DER SubjectPublicKeyInfo of the saved key */
	dlen = EVP_DecodeBlock(derbuf, (unsigned char *)txt + 18,
	                       (int)strlen(txt + 18));
	CU_ASSERT_FATAL(dlen > 0);
	der = derbuf;
	pub = d2i_PUBKEY(NULL, &der, dlen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
	priv = pkey_read(path);
	CU_ASSERT_EQUAL(EVP_PKEY_eq(pub, priv), 1);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);

	/* never overwrites */
	buf_reset(&rec);
	CU_ASSERT_EQUAL(dkim_keygen("rsa", 1024, path, DOMAIN, "gen", &rec, err,
	                            sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "will not overwrite"));
	CU_ASSERT_EQUAL(rec.len, 0);
	fp = fopen(path, "r");
	n = fread(txt, 1, sizeof(txt) - 1, fp);
	txt[n] = '\0';
	fclose(fp);
	CU_ASSERT_STRING_EQUAL(txt, before);
	unlink(path);

	/* explicit size */
	CU_ASSERT_EQUAL_FATAL(dkim_keygen("rsa", 1024, path, DOMAIN, "gen", &rec,
	                                  err, sizeof(err)), 0);
	k = key_load(path, "gen");
	CU_ASSERT_EQUAL(dkim_key_bits(k), 1024);
	dkim_key_free(k);
	unlink(path);
	buf_free(&rec);
}

static void test_keygen_ed25519(void)
{
	struct buf rec = { 0 };
	char err[512] = "", txt[512];
	const char *path = tmp_path("ed.pem");
	unsigned char raw[64], want[32];
	size_t wantlen = sizeof(want);
	struct dkim_key *k;
	EVP_PKEY *priv;
	int n;

	CU_ASSERT_EQUAL_FATAL(dkim_keygen("ed25519", 0, path, DOMAIN, "ed.2024",
	                                  &rec, err, sizeof(err)), 0);
	k = key_load(path, "ed.2024");
	CU_ASSERT_EQUAL(dkim_key_alg(k), DKIM_ED25519_SHA256);
	dkim_key_free(k);
	CU_ASSERT_EQUAL(strncmp(rec.data, "ed.2024._domainkey.example.test. IN TXT "
	                        "\"v=DKIM1; k=ed25519; p=", 63), 0);
	record_text(rec.data, txt, sizeof(txt));
	/* RFC 8463 4.2: p= is the raw 32-octet key, not an SPKI */
	CU_ASSERT_EQUAL(strlen(txt + 22), 44);
	n = EVP_DecodeBlock(raw, (unsigned char *)txt + 22, 44);
	CU_ASSERT_EQUAL(n, 33);   /* 32 + one '=' padding byte counted */
	priv = pkey_read(path);
	CU_ASSERT_EQUAL(EVP_PKEY_get_raw_public_key(priv, want, &wantlen), 1);
	CU_ASSERT_EQUAL(memcmp(raw, want, 32), 0);
	EVP_PKEY_free(priv);
	unlink(path);
	buf_free(&rec);
}

static void test_keygen_refused(void)
{
	static const struct {
		const char *type;
		int bits;
		const char *domain, *selector, *msg;
	} v[] = {
		{ "rsa", 512, DOMAIN, "s", "out of range" },
		{ "rsa", 8192, DOMAIN, "s", "out of range" },
		{ "dsa", 0, DOMAIN, "s", "unknown key type" },
		{ NULL, 0, DOMAIN, "s", "unknown key type" },
		{ "ed25519", 0, "bad domain", "s", "is not a DNS name" },
		{ "ed25519", 0, DOMAIN, "bad/sel", "is not a DNS name" },
	};
	const char *path = tmp_path("refused.pem");

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct buf rec = { 0 };
		char err[512] = "";
		CU_ASSERT_EQUAL(dkim_keygen(v[i].type, v[i].bits, path, v[i].domain,
		                            v[i].selector, &rec, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, v[i].msg));
		CU_ASSERT_EQUAL(access(path, F_OK), -1);   /* no file left */
		CU_ASSERT_EQUAL(rec.len, 0);
	}
	/* an unwritable place */
	{
		struct buf rec = { 0 };
		char err[512] = "";
		CU_ASSERT_EQUAL(dkim_keygen("ed25519", 0, "/nonexistent/dir/k.pem",
		                            DOMAIN, "s", &rec, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot create"));
	}
}

/* ---- export for python3-dkim (tests/integration/dkim_check.sh) ---- */

static FILE *manifest;
static const char *outdir;

static void write_file(const char *name, const char *data, size_t len)
{
	char path[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT_EQUAL(fwrite(data, 1, len, fp), len);
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

/* The TXT record of a fixture key, computed here with OpenSSL (not by
 * dkim.c), in the zone-file form dkim_keygen() writes. */
static void record_of(const char *pem, const char *selector, struct buf *rec)
{
	EVP_PKEY *pk = pkey_read(pem);
	unsigned char *der = NULL, raw[32];
	char b64[1024];
	size_t rawlen = sizeof(raw);
	char txt[1200];
	int is_ed = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519;

	if (is_ed) {
		CU_ASSERT_EQUAL_FATAL(EVP_PKEY_get_raw_public_key(pk, raw, &rawlen), 1);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
	} else {
		int n = i2d_PUBKEY(pk, &der);
		CU_ASSERT_FATAL(n > 0 && n < 700);
		EVP_EncodeBlock((unsigned char *)b64, der, n);
		OPENSSL_free(der);
	}
	snprintf(txt, sizeof(txt), "v=DKIM1; k=%s; p=%s", is_ed ? "ed25519" : "rsa",
	         b64);
	buf_printf(rec, "%s._domainkey.%s. IN TXT", selector, DOMAIN);
	for (size_t off = 0; off < strlen(txt); off += 255)
		buf_printf(rec, " \"%.255s\"", txt + off);
	buf_putc(rec, '\n');
	EVP_PKEY_free(pk);
}

static void export_msg(const char *name, const char *expect,
                       const char *records, struct dkim_key *const *keys,
                       size_t n, const char *msg)
{
	struct buf sigs = { 0 }, full = { 0 };

	sign_msg(keys, n, msg, &sigs, &full);
	write_file(name, full.data, full.len);
	fprintf(manifest, "%s %s %s %zu\n", expect, records, name, n);
	buf_free(&sigs);
	buf_free(&full);
}

static void test_export(void)
{
	struct dkim_key *rsa, *ed, *rsa1k, *both[2], *gen[2];
	struct buf rec = { 0 }, sigs = { 0 }, full = { 0 }, t = { 0 };
	char path[1024], err[512] = "";
	const char *body;

	outdir = getenv("EDM_DKIM_OUT_DIR");
	if (outdir == NULL || outdir[0] == '\0')
		return;  /* only under tests/integration/dkim_check.sh */
	snprintf(path, sizeof(path), "%s/manifest", outdir);
	manifest = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(manifest);
	fprintf(manifest, "# expect records message signatures\n");

	rsa = key_load(FIX "rsa2048.pem", "s2048");
	ed = key_load(FIX "ed25519.pem", "sed");
	rsa1k = key_load(FIX "rsa1024.pem", "s1024");
	both[0] = rsa;
	both[1] = ed;

	record_of(FIX "rsa2048.pem", "s2048", &rec);
	record_of(FIX "ed25519.pem", "sed", &rec);
	record_of(FIX "rsa1024.pem", "s1024", &rec);
	write_file("fixtures.zone", rec.data, rec.len);
	buf_reset(&rec);
	/* a wrong key for s2048 (the 1024-bit one's public half) */
	{
		struct buf w = { 0 };
		record_of(FIX "rsa1024.pem", "s2048", &w);
		write_file("wrong.zone", w.data, w.len);
		buf_free(&w);
	}

	export_msg("rsa2048.eml", "pass", "fixtures.zone", &rsa, 1, msg_plain);
	export_msg("ed25519.eml", "pass", "fixtures.zone", &ed, 1, msg_plain);
	export_msg("rsa1024.eml", "pass", "fixtures.zone", &rsa1k, 1, msg_reply_to);
	export_msg("both.eml", "pass", "fixtures.zone", both, 2, msg_plain);
	export_msg("chinese_multipart.eml", "pass", "fixtures.zone", both, 2,
	           msg_chinese);
	export_msg("folded_ws.eml", "pass", "fixtures.zone", both, 2, msg_folded);
	export_msg("duplicates.eml", "pass", "fixtures.zone", both, 2, msg_dup);
	export_msg("wrong_key.eml", "fail", "wrong.zone", &rsa, 1, msg_plain);

	/* keys and records made by dkim_keygen() itself */
	snprintf(path, sizeof(path), "%s/gen_rsa.pem", outdir);
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(dkim_keygen("rsa", 2048, path, DOMAIN, "genrsa", &rec,
	                                  err, sizeof(err)), 0);
	gen[0] = key_load(path, "genrsa");
	snprintf(path, sizeof(path), "%s/gen_ed.pem", outdir);
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(dkim_keygen("ed25519", 0, path, DOMAIN, "gened", &rec,
	                                  err, sizeof(err)), 0);
	gen[1] = key_load(path, "gened");
	write_file("keygen.zone", rec.data, rec.len);
	export_msg("keygen.eml", "pass", "keygen.zone", gen, 2, msg_chinese);

	/* tampered copies of both.eml */
	sign_msg(both, 2, msg_plain, &sigs, &full);
	body = strstr(full.data, "\r\n\r\n") + 4;
	buf_append(&t, full.data, (size_t)(body - full.data));
	buf_puts(&t, "Hello reader!\r\n");   /* body changed after signing */
	buf_puts(&t, body + strlen("Hello reader.\r\n"));
	write_file("tampered_body.eml", t.data, t.len);
	fprintf(manifest, "fail fixtures.zone tampered_body.eml 2\n");

	buf_reset(&t);
	buf_puts(&t, "From: Evil <evil@example.test>\r\n");
	buf_append(&t, full.data, full.len);
	write_file("tampered_from.eml", t.data, t.len);
	fprintf(manifest, "fail fixtures.zone tampered_from.eml 2\n");

	/* python3-dkim always re-adds from to h= (its bug#644046), so From
	 * alone does not prove oversigning: a second Subject, and a Reply-To
	 * where none was, must break the signatures too */
	buf_reset(&t);
	buf_append(&t, sigs.data, sigs.len);
	buf_puts(&t, "Subject: Changed\r\n");
	buf_puts(&t, msg_plain);
	write_file("tampered_subject.eml", t.data, t.len);
	fprintf(manifest, "fail fixtures.zone tampered_subject.eml 2\n");

	buf_reset(&t);
	buf_append(&t, sigs.data, sigs.len);
	buf_puts(&t, "Reply-To: evil@example.test\r\n");
	buf_puts(&t, msg_plain);
	write_file("tampered_reply_to.eml", t.data, t.len);
	fprintf(manifest, "fail fixtures.zone tampered_reply_to.eml 2\n");

	/* what relaxed canonicalisation must survive in transit: re-spaced
	 * headers, a Received on top, trailing WSP and blank lines */
	buf_reset(&t);
	buf_puts(&t, "Received: from relay.example.test by mx.example.test;\r\n"
	             "\tTue, 14 Nov 2023 22:13:21 +0000\r\n");
	buf_append(&t, sigs.data, sigs.len);
	{
		const char *m = msg_plain, *subj = strstr(m, "Subject: Hello\r\n");
		const char *b = strstr(m, "Hello reader.\r\n");
		buf_append(&t, m, (size_t)(subj - m));
		buf_puts(&t, "Subject:    Hello \t\r\n");
		buf_append(&t, subj + 16, (size_t)(b - subj - 16));
		buf_puts(&t, "Hello   reader. \t\r\n");
		buf_puts(&t, b + strlen("Hello reader.\r\n"));
		buf_puts(&t, "\r\n  \r\n\r\n");
	}
	write_file("relaxed_transit.eml", t.data, t.len);
	fprintf(manifest, "pass fixtures.zone relaxed_transit.eml 2\n");

	CU_ASSERT_EQUAL(fclose(manifest), 0);
	buf_free(&t);
	buf_free(&sigs);
	buf_free(&full);
	buf_free(&rec);
	dkim_key_free(gen[0]);
	dkim_key_free(gen[1]);
	dkim_key_free(rsa);
	dkim_key_free(ed);
	dkim_key_free(rsa1k);
}

static const struct test_case tests[] = {
	{ "canon_rfc_example", test_canon_rfc_example },
	{ "canon_header_edges", test_canon_header_edges },
	{ "canon_body_edges", test_canon_body_edges },
	{ "canon_body_random", test_canon_body_random },
	{ "canon_body_long_lines", test_canon_body_long_lines },
	{ "key_load", test_key_load },
	{ "key_load_refused", test_key_load_refused },
	{ "sign_format", test_sign_format },
	{ "sign_oversign", test_sign_oversign },
	{ "sign_verify", test_sign_verify },
	{ "sign_many_headers", test_sign_many_headers },
	{ "sign_deterministic", test_sign_deterministic },
	{ "sign_errors", test_sign_errors },
	{ "sign_threads", test_sign_threads },
	{ "keygen_rsa", test_keygen_rsa },
	{ "keygen_ed25519", test_keygen_ed25519 },
	{ "keygen_refused", test_keygen_refused },
	{ "export", test_export },
	{ 0 },
};

int main(void)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 125;
	}
	rc = test_run("dkim", tests);
	rmdir(tmpdir);
	return rc;
}
