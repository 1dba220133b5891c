/*
 * fuzz_dkim_canon.c - libFuzzer harness for the DKIM canonicalisers and
 * signer (templates/dkim.h).
 *
 * edm signs relaxed/relaxed only, so the entry points are the relaxed
 * ones: dkim_canon_header() (one field) and dkim_canon_body() (a whole
 * body); "simple" is not implemented, hence not fuzzed.
 * Input: byte 0 bit 0 also signs with the RSA 1024 fixture key (else
 * Ed25519 only); the rest is used three ways: as one header field, as a
 * body, and as a whole message given to dkim_sign().
 * Properties: both canonicalisers agree with the straightforward reference
 * versions below (RFC 6376 3.4.2 and 3.4.4 with erratum 3133; a bare CR
 * or LF ends a line) and are idempotent; dkim_sign() refuses a message
 * without a header/body separator with a reason, and otherwise appends
 * one "DKIM-Signature:" field per key made of CRLF lines of at most 998
 * octets, continuation lines starting with a blank, the same bytes when
 * signed twice (both algorithms are deterministic).
 */
#include "fuzz.h"

#include "buf.h"
#include "dkim.h"

#ifndef EDM_FUZZ_FIXTURES
#error "EDM_FUZZ_FIXTURES (tests/fixtures) must be defined"
#endif

static struct dkim_key *keys[2];

static void free_keys(void)
{
	dkim_key_free(keys[0]);
	dkim_key_free(keys[1]);
}

static int wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Reference relaxed body canonicalisation, one line at a time. */
static void ref_body(const unsigned char *p, size_t n, struct buf *out)
{
	size_t i = 0, blank = 0;

	while (i < n) {
		size_t s = i, e, len;
		struct buf ln = { 0 };

		while (i < n && p[i] != '\r' && p[i] != '\n')
			i++;
		e = i;
		if (i < n)
			i += (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
		for (size_t k = s; k < e; k++) {
			if (wsp(p[k])) {
				while (k + 1 < e && wsp(p[k + 1]))
					k++;
				buf_putc(&ln, ' ');
			} else {
				buf_putc(&ln, (char)p[k]);
			}
		}
		len = ln.len;
		if (len > 0 && ln.data[len - 1] == ' ')
			len--;
		if (len == 0) {
			blank++;
		} else {
			for (; blank > 0; blank--)
				buf_puts(out, "\r\n");
			buf_append(out, ln.data, len);
			buf_puts(out, "\r\n");
		}
		buf_free(&ln);
	}
}

/* Reference relaxed header canonicalisation; -1 without name and colon. */
static int ref_header(const unsigned char *p, size_t n, struct buf *out)
{
	const unsigned char *colon = memchr(p, ':', n);
	size_t nl, k;
	int pending = 0, any = 0;

	if (colon == NULL)
		return -1;
	nl = (size_t)(colon - p);
	while (nl > 0 && wsp(p[nl - 1]))
		nl--;
	if (nl == 0)
		return -1;
	for (k = 0; k < nl; k++)
		buf_putc(out, (char)(p[k] >= 'A' && p[k] <= 'Z' ? p[k] + 32 : p[k]));
	buf_putc(out, ':');
	for (k = (size_t)(colon - p) + 1; k < n; k++) {
		if (p[k] == '\r' || p[k] == '\n')
			continue;
		if (wsp(p[k])) {
			pending = 1;
			continue;
		}
		if (pending && any)
			buf_putc(out, ' ');
		pending = 0;
		any = 1;
		buf_putc(out, (char)p[k]);
	}
	buf_puts(out, "\r\n");
	return 0;
}

static int same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 ||
	                            memcmp(a->data, b->data, a->len) == 0);
}

/* DKIM-Signature fields: CRLF lines <= 998, folded with a leading blank. */
static void check_sigs(const struct buf *b, size_t nkeys)
{
	size_t i = 0, fields = 0;

	while (i < b->len) {
		const char *ln = b->data + i;
		const char *lf = memchr(ln, '\n', b->len - i);
		size_t n;

		FZ_CHECK(lf != NULL && lf > ln && lf[-1] == '\r',
		         "signature line without CRLF");
		n = (size_t)(lf - ln) - 1;
		FZ_CHECK(n <= 998, "signature line of %zu", n);
		FZ_CHECK(memchr(ln, '\r', n) == NULL, "bare CR in signature");
		if (n >= 15 && memcmp(ln, "DKIM-Signature:", 15) == 0)
			fields++;
		else
			FZ_CHECK(n > 0 && wsp((unsigned char)ln[0]),
			         "signature line [%.*s]", (int)n, ln);
		i += n + 2;
	}
	FZ_CHECK(fields == nkeys, "%zu signatures for %zu keys", fields, nkeys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a = { 0 }, b = { 0 }, r = { 0 }, s1 = { 0 }, s2 = { 0 };
	const char *p = (const char *)data + 1;
	size_t n, nkeys;
	char err[512];
	int rc, rr;

	if (keys[0] == NULL) {
		keys[0] = dkim_key_load(EDM_FUZZ_FIXTURES "/dkim/ed25519.pem",
		                        "acme.example", "ed", err, sizeof err);
		keys[1] = dkim_key_load(EDM_FUZZ_FIXTURES "/dkim/rsa1024.pem",
		                        "acme.example", "rsa", err, sizeof err);
		FZ_CHECK(keys[0] != NULL && keys[1] != NULL, "keys: %s", err);
		atexit(free_keys);
	}
	if (size == 0)
		return 0;
	n = size - 1;
	nkeys = data[0] & 1 ? 2 : 1;

	/* header field */
	rc = dkim_canon_header(p, n, &a);
	rr = ref_header((const unsigned char *)p, n, &r);
	FZ_CHECK(rc == rr && same(&a, &r), "header canon differs from the "
	         "reference (%d/%d):\n[%s]\n[%s]", rc, rr,
	         a.data ? a.data : "", r.data ? r.data : "");
	if (rc == 0) {
		FZ_CHECK(dkim_canon_header(a.data, a.len - 2, &b) == 0 &&
		         same(&a, &b), "header canon not idempotent");
	}
	buf_reset(&a);
	buf_reset(&b);
	buf_reset(&r);

	/* body */
	FZ_CHECK(dkim_canon_body(p, n, &a) == 0, "body canon failed");
	ref_body((const unsigned char *)p, n, &r);
	FZ_CHECK(same(&a, &r), "body canon differs from the reference");
	FZ_CHECK(dkim_canon_body(a.data != NULL ? a.data : "", a.len, &b) == 0 &&
	         same(&a, &b),
	         "body canon not idempotent");

	/* the whole input as a message */
	rc = dkim_sign(keys, nkeys, p, n, 1767225600, &s1, err, sizeof err);
	if (rc != 0) {
		FZ_CHECK(rc == -1 && err[0] != '\0', "sign %d without reason", rc);
	} else {
		check_sigs(&s1, nkeys);
		FZ_CHECK(dkim_sign(keys, nkeys, p, n, 1767225600, &s2, err,
		                   sizeof err) == 0 && same(&s1, &s2),
		         "two signatures of one message differ");
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&r);
	buf_free(&s1);
	buf_free(&s2);
	return 0;
}
