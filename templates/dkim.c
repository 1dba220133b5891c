/*
 * dkim.c - DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), relaxed/relaxed canonicalisation, OpenSSL 3 EVP APIs only.
 *
 * Contract (see dkim.h): the key material and everything derived from it at
 * load time is immutable, so dkim_sign() may run on many threads with the
 * same keys. The one mutable part is each key's pool of signers: a signer
 * is a private copy of the key (EVP_PKEY_dup: its own RSA blinding state
 * and Montgomery caches, so threads do not contend on the key's locks: four
 * threads signing with one shared RSA key made 6-14% fewer signatures than
 * with a copy each) with its signing and digest contexts set up once, plus
 * scratch buffers.
 * A call takes a signer under the key's mutex (held for a pointer swap),
 * uses it alone and gives it back; the pool grows to the number of threads
 * that sign at the same time and is freed with the key.
 *
 * The body is canonicalised without copying in the usual case: mime_build()
 * output is already relaxed-canonical except for a few lines (WSP runs,
 * tabs), so a 16-octet-wide scan finds the lines that need rewriting, those
 * go through a small stack buffer, and the runs between them are handed to
 * SHA-256 in place. Line ends: CRLF, and also a bare CR or LF, count as one
 * line end, because the SMTP layer turns every bare CR and LF into CRLF
 * before sending (DOMAIN.md, SMTP smuggling) and the receiver verifies what
 * it got.
 *
 * What it does not do: verify signatures (tests use python3-dkim for that),
 * simple canonicalisation, rsa-sha1 (RFC 8301 forbids it), l= (lets anyone
 * append content), x=, i=, z=, encrypted key files, or IDN U-labels in d=/s=
 * (pass the A-label xn--... form).
 */
#include "dkim.h"
#include "log.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* RFC 5322 2.1.1: header lines SHOULD stay within 78 octets before CRLF. */
#define DKIM_FOLD_WIDTH 78
/* RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits. */
#define DKIM_RSA_MIN_BITS 1024
/* RFC 8301 3.2: signers SHOULD use at least 2048 bits. */
#define DKIM_RSA_DEFAULT_BITS 2048
/* RFC 8301 3.2: verifiers need only handle keys up to 4096 bits, so a
 * bigger key risks signatures nobody can check (and a TXT record that
 * some DNS providers cannot hold). */
#define DKIM_RSA_MAX_BITS 4096
/* Largest signature we make: RSA-4096 is 512 octets, Ed25519 64. */
#define DKIM_SIG_MAX (DKIM_RSA_MAX_BITS / 8)
/* RFC 1035 3.3.14: one TXT character-string holds at most 255 octets. */
#define DKIM_TXT_CHUNK 255
/* RFC 1035 2.3.4: a name is at most 253 characters in text form, a label
 * at most 63. */
#define DKIM_NAME_MAX 253
#define DKIM_LABEL_MAX 63
/* Canonical bytes gathered before each digest update: big enough that the
 * EVP call overhead is noise, small enough to live on the stack. */
#define DKIM_STAGE_SIZE 4096
/* Runs shorter than this are copied to the stage rather than passed on
 * in place: below it an EVP_DigestUpdate call costs more than the copy. */
#define DKIM_DIRECT_MIN 64
/* Header fields indexed on the stack; a message with more (mime_build()
 * writes about 15) falls back to the heap. */
#define DKIM_HDR_STACK 64
/* SHA-256 output, and its base64 form (44 characters + NUL). */
#define DKIM_SHA256_LEN 32
#define DKIM_BH_B64_LEN 45

/* dkim.h: the header fields we sign, in h= order. */
#define DKIM_NAME(s) { s, sizeof(s) - 1 }
static const struct {
	const char *name;
	size_t len;
} dkim_signed[] = {
	DKIM_NAME("from"), DKIM_NAME("to"), DKIM_NAME("subject"),
	DKIM_NAME("date"), DKIM_NAME("message-id"), DKIM_NAME("mime-version"),
	DKIM_NAME("content-type"), DKIM_NAME("reply-to"),
	DKIM_NAME("feedback-id"), DKIM_NAME("list-unsubscribe"),
	DKIM_NAME("list-unsubscribe-post"), DKIM_NAME("cc"),
	DKIM_NAME("in-reply-to"), DKIM_NAME("references"),
};
#define DKIM_NSIGNED (sizeof(dkim_signed) / sizeof(dkim_signed[0]))

/*
 * One thread's signing kit for a key (see the file comment): taken from the
 * key's pool for one dkim_sign() call, then given back.
 */
struct dkim_signer {
	struct dkim_signer *next;  /* free list */
	EVP_PKEY *pkey;            /* this signer's copy of the key */
	EVP_PKEY_CTX *rsa;         /* RSA: past EVP_PKEY_sign_init, PKCS#1
	                              v1.5 with SHA-256; EVP_PKEY_sign() may be
	                              called on it again and again */
	EVP_MD_CTX *ed0;           /* Ed25519: just past DigestSignInit, never
	                              used itself: each signature runs on a copy
	                              (newer OpenSSL releases refuse a second
	                              EVP_DigestSign on one context) */
	EVP_MD_CTX *edc;           /* Ed25519: that copy */
	EVP_MD_CTX *md;            /* SHA-256 of the body and the headers */
	struct buf hdata;          /* canonical signed header fields */
	struct buf sdata;          /* canonical DKIM-Signature field */
};

struct dkim_key {
	EVP_PKEY *pkey;      /* private key, read-only after load */
	EVP_MD *sha256;      /* fetched once: a fetch per message costs a
	                        method-store lookup under a lock */
	enum dkim_alg alg;
	int bits;
	char domain[DKIM_NAME_MAX + 1];   /* lowercased */
	char selector[DKIM_NAME_MAX + 1]; /* lowercased */
	/* "DKIM-Signature: v=1; a=...; c=relaxed/relaxed; d=...; s=...;"
	 * folded as dkim_sig_prefix() would fold it, made once at load;
	 * prefix_col is the column its last line ends at. */
	char *prefix;
	size_t prefix_len;
	size_t prefix_col;
	pthread_mutex_t lock;        /* guards idle */
	struct dkim_signer *idle;    /* signers not in use */
};

/* One header field of the message being signed. */
struct dkim_hdr {
	const char *p;      /* start of the name */
	size_t len;         /* through the final line end */
	size_t namelen;     /* name without WSP before the colon */
	int sig;            /* index in dkim_signed[], or -1: not signed */
};

/*
 * Where canonical bytes go: a stage buffer flushed into a digest or a buf.
 * 'failed' latches the first error so the canonicalisers stay branch-light.
 */
struct dkim_sink {
	int (*write)(void *ctx, const unsigned char *p, size_t n);
	void *ctx;
	size_t n;
	int failed;
	unsigned char stage[DKIM_STAGE_SIZE];
};

/* Byte classes for the canonicalisers: 0 ordinary, 1 WSP, 2 CR or LF. */
static const unsigned char dkim_class[256] = {
	[' '] = 1, ['\t'] = 1, ['\r'] = 2, ['\n'] = 2,
};

/*
 * 16 octets at a time with the compilers' generic vectors (GCC and clang:
 * SSE2 on x86-64, NEON on arm64, plain code elsewhere). Comparisons give
 * 0xff or 0 per octet.
 */
typedef unsigned char dkim_v16 __attribute__((vector_size(16)));

static inline dkim_v16 dkim_v16_load(const unsigned char *p)
{
	dkim_v16 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Index of the first nonzero octet of m, or 16 when there is none. */
static inline size_t dkim_v16_first(dkim_v16 m)
{
	uint64_t a, b;

	memcpy(&a, &m, 8);
	memcpy(&b, (const unsigned char *)&m + 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (a != 0)
		return (size_t)__builtin_ctzll(a) / 8;
	if (b != 0)
		return 8 + (size_t)__builtin_ctzll(b) / 8;
	return 16;
#else
	if ((a | b) == 0)
		return 16;
	for (size_t j = 0; j < 16; j++)
		if (m[j] != 0)
			return j;
	return 16;
#endif
}

/* The newest OpenSSL error as text (for messages), then clear this
 * thread's error queue so it does not leak into unrelated calls. */
static const char *dkim_ssl_reason(char *tmp, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(tmp, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, tmp, len);
	ERR_clear_error();
	return tmp;
}

/* ---- canonical byte sink ---- */

static void dkim_sink_init(struct dkim_sink *s,
                           int (*write)(void *, const unsigned char *, size_t),
                           void *ctx)
{
	s->write = write;
	s->ctx = ctx;
	s->n = 0;
	s->failed = 0;
}

static void dkim_sink_flush(struct dkim_sink *s)
{
	if (s->n > 0 && !s->failed && s->write(s->ctx, s->stage, s->n) < 0)
		s->failed = 1;
	s->n = 0;
}

/* Append n bytes, staging small writes and passing big ones straight on. */
static inline void dkim_sink_put(struct dkim_sink *s, const void *p, size_t n)
{
	if (n > sizeof(s->stage) - s->n) {
		dkim_sink_flush(s);
		if (n >= sizeof(s->stage)) {
			if (!s->failed && s->write(s->ctx, p, n) < 0)
				s->failed = 1;
			return;
		}
	}
	memcpy(s->stage + s->n, p, n);
	s->n += n;
}

static inline void dkim_sink_putc(struct dkim_sink *s, unsigned char c)
{
	if (s->n == sizeof(s->stage))
		dkim_sink_flush(s);
	s->stage[s->n++] = c;
}

/* Pass n bytes on in place (after what is staged), unless they are so few
 * that copying them is cheaper than another digest call. */
static void dkim_sink_direct(struct dkim_sink *s, const void *p, size_t n)
{
	if (n < DKIM_DIRECT_MIN) {
		dkim_sink_put(s, p, n);
		return;
	}
	dkim_sink_flush(s);
	if (!s->failed && s->write(s->ctx, p, n) < 0)
		s->failed = 1;
}

static int dkim_write_buf(void *ctx, const unsigned char *p, size_t n)
{
	return buf_append(ctx, p, n);
}

static int dkim_write_digest(void *ctx, const unsigned char *p, size_t n)
{
	return EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -1;
}

/* ---- canonicalisation (RFC 6376 3.4) ---- */

/* Copy in one go the run at p that is canonical already: ordinary bytes
 * and lone SPs before an ordinary byte, i.e. usually the rest of the line.
 * p points at an ordinary byte. */
static inline const unsigned char *dkim_canon_run(const unsigned char *p,
                                                  const unsigned char *end)
{
	const unsigned char *q = p + 1;

	for (;;) {
		if (q < end && dkim_class[*q] == 0)
			q++;
		else if (q + 1 < end && *q == ' ' && dkim_class[q[1]] == 0)
			q += 2;
		else
			return q;
	}
}

/*
 * Relaxed body canonicalisation, RFC 6376 3.4.4 with erratum 3133 (an
 * empty body stays empty), octet by octet: WSP at line ends dropped, WSP
 * runs become one SP, empty lines at the end dropped, CRLF added after a
 * last line that lacks one. Empty lines are counted, not written, until
 * content follows. Trailing WSP of a last line without line end is dropped
 * too: SMTP will send that line with a CRLF, and the receiver then strips
 * that WSP. Used for the last line with content and what follows it.
 */
static void dkim_canon_body_tail(struct dkim_sink *s, const unsigned char *p,
                                 const unsigned char *end)
{
	size_t blank = 0;   /* empty lines held back */
	int wsp = 0;        /* a WSP run is pending */
	int content = 0;    /* this line has written content */

	while (p < end) {
		unsigned char c = *p;
		const unsigned char *q;

		switch (dkim_class[c]) {
		case 1:
			wsp = 1;
			p++;
			continue;
		case 2:
			p += (c == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
			if (content)
				dkim_sink_put(s, "\r\n", 2);
			else
				blank++;
			content = 0;
			wsp = 0;
			continue;
		default:
			break;
		}
		if (!content) {
			for (; blank > 0; blank--)
				dkim_sink_put(s, "\r\n", 2);
			content = 1;
		}
		if (wsp) {
			dkim_sink_putc(s, ' ');
			wsp = 0;
		}
		q = dkim_canon_run(p, end);
		dkim_sink_put(s, p, (size_t)(q - p));
		p = q;
	}
	if (content)
		dkim_sink_put(s, "\r\n", 2);
}

/*
 * One line from p (a line start) through its line end, which must exist
 * before end, canonicalised and ended with CRLF even when it comes out
 * empty: the caller knows content follows, so no empty line is dropped.
 * Returns the start of the next line.
 */
static const unsigned char *dkim_canon_line(struct dkim_sink *s,
                                            const unsigned char *p,
                                            const unsigned char *end)
{
	int wsp = 0;

	while (p < end) {
		unsigned char c = *p;
		const unsigned char *q;

		if (dkim_class[c] == 1) {
			wsp = 1;
			p++;
			continue;
		}
		if (dkim_class[c] == 2) {
			p += (c == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
			break;
		}
		if (wsp) {
			dkim_sink_putc(s, ' ');
			wsp = 0;
		}
		q = dkim_canon_run(p, end);
		dkim_sink_put(s, p, (size_t)(q - p));
		p = q;
	}
	dkim_sink_put(s, "\r\n", 2);
	return p;
}

/* Whether position p (p[1] must be readable) breaks the "already
 * canonical" rule: a tab, an SP before WSP or a line end, a CR not
 * followed by LF, or an LF at p + 1 not preceded by a CR. */
static inline int dkim_irregular(const unsigned char *p)
{
	return p[0] == '\t' || (p[0] == ' ' && p[1] <= ' ') ||
	       ((p[0] == '\r') != (p[1] == '\n'));
}

/* First position in [p, t) that is irregular (dkim_irregular), or t; t[0]
 * must be readable. Sixteen positions per step. */
static const unsigned char *dkim_body_scan(const unsigned char *p,
                                           const unsigned char *t)
{
	for (; t - p >= 16; p += 16) {
		dkim_v16 x = dkim_v16_load(p), y = dkim_v16_load(p + 1);
		dkim_v16 m = (dkim_v16)(x == '\t') |
		             ((dkim_v16)(x == ' ') & (dkim_v16)(y <= ' ')) |
		             ((dkim_v16)(x == '\r') ^ (dkim_v16)(y == '\n'));
		size_t j = dkim_v16_first(m);

		if (j < 16)
			return p + j;
	}
	for (; p < t; p++)
		if (dkim_irregular(p))
			return p;
	return t;
}

/*
 * Relaxed body canonicalisation (see dkim_canon_body_tail for the rules).
 * Everything before the line holding the last ordinary byte is whole
 * lines followed by content, where no empty line is dropped: there a line
 * with CRLF, no tab and no SP before WSP or a line end is canonical as it
 * stands, and mime_build() writes almost only such lines. Runs of them go
 * on in place; the other lines, and the tail, are rewritten.
 */
static void dkim_canon_body_into(struct dkim_sink *s, const unsigned char *p,
                                 size_t len)
{
	const unsigned char *end, *last, *t, *clean, *k, *ls;

	if (len == 0)
		return;  /* (p may be NULL then) */
	end = last = p + len;
	while (last > p && dkim_class[last[-1]] != 0)
		last--;
	if (last == p)
		return;  /* only WSP and line ends: the body is empty */
	for (t = last - 1; t > p && dkim_class[t[-1]] != 2; t--)
		;
	/* [p, t) ends with a line end and t[0] is neither CR nor LF */
	clean = p;
	while (p < t) {
		if (*p == '\n') {
			/* at a line start (p == start of body, or right after
			 * a line end dkim_canon_line consumed): a bare LF */
			ls = p;
		} else {
			k = dkim_body_scan(p, t);
			if (k == t)
				break;
			/* the line to rewrite: an LF at k ends a good line
			 * (k[-1] is CR, or k - 1 would have been found), so
			 * the bad one is the next */
			ls = *k == '\n' ? k + 1 : k;
			while (ls > p && dkim_class[ls[-1]] != 2)
				ls--;
		}
		dkim_sink_direct(s, clean, (size_t)(ls - clean));
		p = clean = dkim_canon_line(s, ls, end);
	}
	dkim_sink_direct(s, clean, (size_t)(t - clean));
	dkim_canon_body_tail(s, t, end);
}

/* Length of the field name before the colon, without trailing WSP;
 * 0 if there is no colon or no name. */
static size_t dkim_field_namelen(const char *f, size_t len)
{
	const char *colon = memchr(f, ':', len);
	size_t n;

	if (colon == NULL)
		return 0;
	n = (size_t)(colon - f);
	while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\t'))
		n--;
	return n;
}

/*
 * Relaxed header canonicalisation, RFC 6376 3.4.2: name lowercased, value
 * unfolded (every CR and LF removed), WSP runs to one SP, WSP around the
 * colon and at the end of the value removed. 'crlf' ends the result with
 * CRLF (signed header fields) or not (the DKIM-Signature field itself,
 * RFC 6376 3.7). -1 if the field has no name and colon.
 */
static int dkim_canon_header_into(struct dkim_sink *s, const char *f,
                                  size_t len, int crlf)
{
	size_t namelen = dkim_field_namelen(f, len);
	const unsigned char *p, *end = (const unsigned char *)f + len;
	int wsp = 0, any = 0;

	if (namelen == 0)
		return -1;
	for (size_t i = 0; i < namelen; i++) {
		unsigned char c = (unsigned char)f[i];
		dkim_sink_putc(s, (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c);
	}
	dkim_sink_putc(s, ':');
	p = memchr(f, ':', len);
	for (p++; p < end;) {
		const unsigned char *q;

		if (dkim_class[*p] != 0) {
			/* WSP; or CR, LF of a fold (unfolding: the WSP after
			 * it is what remains) */
			wsp |= dkim_class[*p] == 1;
			p++;
			continue;
		}
		if (wsp && any)
			dkim_sink_putc(s, ' ');
		wsp = 0;
		any = 1;
		for (q = p + 1; q < end && dkim_class[*q] == 0; q++)
			;
		dkim_sink_put(s, p, (size_t)(q - p));
		p = q;
	}
	if (crlf)
		dkim_sink_put(s, "\r\n", 2);
	return 0;
}

/* dkim.h: one relaxed header field appended to out, with CRLF. */
int dkim_canon_header(const char *field, size_t len, struct buf *out)
{
	struct dkim_sink s;

	dkim_sink_init(&s, dkim_write_buf, out);
	if (dkim_canon_header_into(&s, field, len, 1) < 0)
		return -1;
	dkim_sink_flush(&s);
	return s.failed ? -1 : 0;
}

/* dkim.h: a whole relaxed-canonical body appended to out. */
int dkim_canon_body(const char *body, size_t len, struct buf *out)
{
	struct dkim_sink s;

	dkim_sink_init(&s, dkim_write_buf, out);
	dkim_canon_body_into(&s, (const unsigned char *)body, len);
	dkim_sink_flush(&s);
	return s.failed ? -1 : 0;
}

/* ---- names ---- */

/*
 * Check a domain or selector: LDH labels (RFC 5321 sub-domain, which
 * RFC 6376 3.5 uses for d= and s=) separated by dots, each 1..63
 * characters and neither starting nor ending with a hyphen. Copies it
 * lowercased to out[DKIM_NAME_MAX + 1]. 0 or -1.
 */
static int dkim_name_check(const char *name, char *out)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > DKIM_NAME_MAX)
		return -1;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > DKIM_LABEL_MAX ||
			    name[i - 1] == '-')
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		           (c >= 'A' && c <= 'Z') || c == '-') {
			if (c == '-' && label == 0)
				return -1;
			label++;
		} else {
			return -1;
		}
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
	}
	return 0;
}

/* Validate d= and s= for key load and keygen; the full record name
 * "s._domainkey.d" must fit in a DNS name too. */
static int dkim_names_check(const char *domain, const char *selector,
                            char *dom_out, char *sel_out, const char *where,
                            char *err, size_t errlen)
{
	static const char hint[] = "letters, digits and hyphens in dot-separated "
	                           "labels; an IDN domain in its xn-- form";

	if (domain == NULL || dkim_name_check(domain, dom_out) < 0) {
		edm_errf(err, errlen, "%s: domain \"%s\" is not a DNS name (%s)",
		         where, domain ? domain : "", hint);
		return -1;
	}
	if (selector == NULL || dkim_name_check(selector, sel_out) < 0) {
		edm_errf(err, errlen, "%s: selector \"%s\" is not a DNS name (%s)",
		         where, selector ? selector : "", hint);
		return -1;
	}
	if (strlen(selector) + strlen("._domainkey.") + strlen(domain) >
	    DKIM_NAME_MAX) {
		edm_errf(err, errlen, "%s: %s._domainkey.%s is longer than a DNS "
		         "name may be (%d)", where, selector, domain, DKIM_NAME_MAX);
		return -1;
	}
	return 0;
}

/* ---- keys ---- */

static struct dkim_signer *dkim_signer_new(const struct dkim_key *k);
static void dkim_signer_free(struct dkim_signer *g);
static int dkim_prefix_make(struct dkim_key *k);

/* Refuse to prompt on the terminal for a passphrase: an encrypted key
 * simply fails to load with a clear message. */
static int dkim_no_passphrase(char *pw, int size, int rwflag, void *u)
{
	(void)pw;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* dkim.h: load and check a PEM private key for d=domain, s=selector. */
struct dkim_key *dkim_key_load(const char *pem_path, const char *domain,
                               const char *selector, char *err,
                               size_t errlen)
{
	struct dkim_key *k;
	char why[256];
	FILE *fp;
	BIO *bio;
	int id, rc;

	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		edm_errf(err, errlen, "%s: out of memory", pem_path);
		return NULL;
	}
	if (dkim_names_check(domain, selector, k->domain, k->selector, pem_path,
	                     err, errlen) < 0)
		goto fail_key;
	fp = fopen(pem_path, "r");
	if (fp == NULL) {
		edm_errf(err, errlen, "%s: cannot open: %s", pem_path,
		         strerror(errno));
		goto fail_key;
	}
	bio = BIO_new_fp(fp, BIO_NOCLOSE);
	if (bio != NULL)
		k->pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase,
		                                  NULL);
	BIO_free(bio);
	fclose(fp);
	if (k->pkey == NULL) {
		edm_errf(err, errlen, "%s: no usable private key (need an "
		         "unencrypted PEM private key, PKCS#8 or RSA): %s",
		         pem_path, dkim_ssl_reason(why, sizeof(why)));
		goto fail_key;
	}
	id = EVP_PKEY_get_base_id(k->pkey);
	if (id == EVP_PKEY_RSA) {
		k->alg = DKIM_RSA_SHA256;
		k->bits = EVP_PKEY_get_bits(k->pkey);
		if (k->bits < DKIM_RSA_MIN_BITS) {
			edm_errf(err, errlen, "%s: RSA key of %d bits is too weak "
			         "(RFC 8301 requires at least %d; use %d)", pem_path,
			         k->bits, DKIM_RSA_MIN_BITS, DKIM_RSA_DEFAULT_BITS);
			goto fail_pkey;
		}
		if (k->bits > DKIM_RSA_MAX_BITS) {
			edm_errf(err, errlen, "%s: RSA key of %d bits is too big "
			         "(RFC 8301 verifiers need only handle up to %d; "
			         "use %d)", pem_path, k->bits, DKIM_RSA_MAX_BITS,
			         DKIM_RSA_DEFAULT_BITS);
			goto fail_pkey;
		}
	} else if (id == EVP_PKEY_ED25519) {
		k->alg = DKIM_ED25519_SHA256;
		k->bits = 256;
	} else {
		const char *name = EVP_PKEY_get0_type_name(k->pkey);
		edm_errf(err, errlen, "%s: unsupported key type %s (DKIM signs "
		         "with RSA (rsa-sha256) or Ed25519 (ed25519-sha256))",
		         pem_path, name ? name : "unknown");
		goto fail_pkey;
	}
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (k->sha256 == NULL) {
		edm_errf(err, errlen, "%s: cannot set up signing: %s", pem_path,
		         dkim_ssl_reason(why, sizeof(why)));
		goto fail_pkey;
	}
	if ((rc = pthread_mutex_init(&k->lock, NULL)) != 0) {
		edm_errf(err, errlen, "%s: cannot set up signing: %s", pem_path,
		         strerror(rc));
		goto fail_md;
	}
	/* One signer now: a key OpenSSL cannot sign with fails here, with
	 * the path, rather than on the first message. */
	k->idle = dkim_signer_new(k);
	if (k->idle == NULL) {
		edm_errf(err, errlen, "%s: cannot set up signing: %s", pem_path,
		         dkim_ssl_reason(why, sizeof(why)));
		goto fail_lock;
	}
	if (dkim_prefix_make(k) < 0) {
		edm_errf(err, errlen, "%s: out of memory", pem_path);
		goto fail_signer;
	}
	return k;

fail_signer:
	dkim_signer_free(k->idle);
fail_lock:
	pthread_mutex_destroy(&k->lock);
fail_md:
	EVP_MD_free(k->sha256);
fail_pkey:
	EVP_PKEY_free(k->pkey);
fail_key:
	free(k);
	return NULL;
}

enum dkim_alg dkim_key_alg(const struct dkim_key *k)
{
	return k->alg;
}

int dkim_key_bits(const struct dkim_key *k)
{
	return k->bits;
}

const char *dkim_key_domain(const struct dkim_key *k)
{
	return k->domain;
}

/* dkim.h: free the key and its signers (none may be in use). */
void dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	while (k->idle != NULL) {
		struct dkim_signer *g = k->idle;

		k->idle = g->next;
		dkim_signer_free(g);
	}
	pthread_mutex_destroy(&k->lock);
	free(k->prefix);
	EVP_MD_free(k->sha256);
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* ---- signers ---- */

/* A signer for k: its own copy of the key and contexts (see the file
 * comment). NULL on failure (the OpenSSL error queue says why). */
static struct dkim_signer *dkim_signer_new(const struct dkim_key *k)
{
	struct dkim_signer *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	/* A private copy: its own blinding and Montgomery caches. When a
	 * provider cannot copy the key, share it (slower, still correct). */
	g->pkey = EVP_PKEY_dup(k->pkey);
	if (g->pkey == NULL) {
		ERR_clear_error();
		if (EVP_PKEY_up_ref(k->pkey) != 1)
			goto fail;
		g->pkey = k->pkey;
	}
	g->md = EVP_MD_CTX_new();
	if (g->md == NULL)
		goto fail;
	if (k->alg == DKIM_RSA_SHA256) {
		g->rsa = EVP_PKEY_CTX_new_from_pkey(NULL, g->pkey, NULL);
		if (g->rsa == NULL || EVP_PKEY_sign_init(g->rsa) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(g->rsa, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(g->rsa, k->sha256) != 1)
			goto fail;
	} else {
		g->ed0 = EVP_MD_CTX_new();
		g->edc = EVP_MD_CTX_new();
		if (g->ed0 == NULL || g->edc == NULL ||
		    EVP_DigestSignInit_ex(g->ed0, NULL, NULL, NULL, NULL, g->pkey,
		                          NULL) != 1)
			goto fail;
	}
	return g;

fail:
	dkim_signer_free(g);
	return NULL;
}

/* Free a signer; NULL is a no-op. */
static void dkim_signer_free(struct dkim_signer *g)
{
	if (g == NULL)
		return;
	buf_free(&g->hdata);
	buf_free(&g->sdata);
	EVP_MD_CTX_free(g->edc);
	EVP_MD_CTX_free(g->ed0);
	EVP_MD_CTX_free(g->md);
	EVP_PKEY_CTX_free(g->rsa);
	EVP_PKEY_free(g->pkey);
	free(g);
}

/* An idle signer of k, or a new one when all are busy. NULL on failure. */
static struct dkim_signer *dkim_signer_take(struct dkim_key *k)
{
	struct dkim_signer *g;

	pthread_mutex_lock(&k->lock);
	g = k->idle;
	if (g != NULL)
		k->idle = g->next;
	pthread_mutex_unlock(&k->lock);
	return g != NULL ? g : dkim_signer_new(k);
}

/* Give a signer back to k's pool; NULL is a no-op. */
static void dkim_signer_give(struct dkim_key *k, struct dkim_signer *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	g->next = k->idle;
	k->idle = g;
	pthread_mutex_unlock(&k->lock);
}

/* ---- signing ---- */

/* Is this a line end at p? Its length (CRLF 2, bare CR or LF 1) or 0. */
static size_t dkim_eol(const char *p, const char *end)
{
	if (*p == '\n')
		return 1;
	if (*p == '\r')
		return (p + 1 < end && p[1] == '\n') ? 2 : 1;
	return 0;
}

/* The first CR or LF in [p, end), or end. */
static const char *dkim_find_eol(const char *p, const char *end)
{
	const unsigned char *u = (const unsigned char *)p;
	const unsigned char *e = (const unsigned char *)end;

	for (; e - u >= 16; u += 16) {
		dkim_v16 x = dkim_v16_load(u);
		size_t j = dkim_v16_first((dkim_v16)(x == '\r') |
		                          (dkim_v16)(x == '\n'));

		if (j < 16)
			return (const char *)u + j;
	}
	for (; u < e && *u != '\r' && *u != '\n'; u++)
		;
	return (const char *)u;
}

/* Index in dkim_signed[] of a field name, or -1 when it is not signed. */
static int dkim_signed_index(const char *name, size_t len)
{
	for (size_t i = 0; i < DKIM_NSIGNED; i++)
		if (dkim_signed[i].len == len &&
		    strncasecmp(name, dkim_signed[i].name, len) == 0)
			return (int)i;
	return -1;
}

/*
 * Split the header block into fields (RFC 5322 2.2: a line starting with
 * WSP continues the previous field). Sets *body to the first byte after
 * the empty separator line. Fields go to hdrs[], grown on the heap past
 * 'cap' (then *heap is set and the caller frees it). Count, or -1.
 */
static long dkim_headers_parse(const char *msg, size_t len,
                               struct dkim_hdr **hdrs, size_t cap, int *heap,
                               const char **body, char *err, size_t errlen)
{
	const char *p = msg, *end = msg + len;
	size_t n = 0;

	while (p < end) {
		const char *line = p;
		size_t eol;

		p = dkim_find_eol(p, end);
		if (p == end)
			break;  /* a last line without line end: no separator */
		eol = dkim_eol(p, end);
		p += eol;
		if (p - eol == line) {  /* empty line: end of header */
			*body = p;
			return (long)n;
		}
		if (*line == ' ' || *line == '\t') {
			if (n == 0) {
				edm_errf(err, errlen, "message starts with a "
				         "continuation line");
				return -1;
			}
			(*hdrs)[n - 1].len = (size_t)(p - (*hdrs)[n - 1].p);
			continue;
		}
		if (n == cap) {
			struct dkim_hdr *h;
			cap *= 2;
			if (*heap) {
				h = realloc(*hdrs, cap * sizeof(*h));
			} else {
				h = malloc(cap * sizeof(*h));
				if (h != NULL)
					memcpy(h, *hdrs, n * sizeof(*h));
			}
			if (h == NULL) {
				edm_errf(err, errlen, "out of memory");
				return -1;
			}
			*hdrs = h;
			*heap = 1;
		}
		(*hdrs)[n].p = line;
		(*hdrs)[n].len = (size_t)(p - line);
		(*hdrs)[n].namelen = dkim_field_namelen(line, (size_t)(p - line));
		if ((*hdrs)[n].namelen == 0) {
			edm_errf(err, errlen, "header line %zu has no field name "
			         "and colon", n + 1);
			return -1;
		}
		(*hdrs)[n].sig = dkim_signed_index(line, (*hdrs)[n].namelen);
		n++;
	}
	edm_errf(err, errlen, "message has no empty line between header and "
	         "body");
	return -1;
}

/* Header folder: appends tokens, breaking the line with CRLF SP before a
 * token that would pass DKIM_FOLD_WIDTH (unless the line is still empty:
 * one token longer than a line is left long rather than looping). */
struct dkim_fold {
	struct buf *out;
	size_t col;
	int failed;
};

static void dkim_fold_put(struct dkim_fold *f, const char *s, size_t n,
                          int space)
{
	if (f->col + (space ? 1 : 0) + n > DKIM_FOLD_WIDTH && f->col > 1) {
		f->failed |= buf_append(f->out, "\r\n ", 3) < 0;
		f->col = 1;
	} else if (space) {
		f->failed |= buf_putc(f->out, ' ') < 0;
		f->col++;
	}
	f->failed |= buf_append(f->out, s, n) < 0;
	f->col += n;
}

/* A base64 value split across lines wherever the line is full: FWS may
 * appear anywhere in b= (RFC 6376 3.5, base64string), verifiers drop it. */
static void dkim_fold_base64(struct dkim_fold *f, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = f->col < DKIM_FOLD_WIDTH ? DKIM_FOLD_WIDTH - f->col : 0;
		size_t k;

		if (room == 0) {
			f->failed |= buf_append(f->out, "\r\n ", 3) < 0;
			f->col = 1;
			continue;
		}
		k = n < room ? n : room;
		f->failed |= buf_append(f->out, s, k) < 0;
		f->col += k;
		s += k;
		n -= k;
	}
}

/* The key's constant start of every DKIM-Signature field, folded: the
 * tags v a c d s (RFC 6376 3.5). 0 or -1. */
static int dkim_prefix_make(struct dkim_key *k)
{
	char tag[DKIM_NAME_MAX + 16];
	struct buf b = { 0 };
	struct dkim_fold f = { &b, strlen("DKIM-Signature:"), 0 };
	int n;

	f.failed = buf_puts(&b, "DKIM-Signature:") < 0;
	dkim_fold_put(&f, "v=1;", 4, 1);
	if (k->alg == DKIM_RSA_SHA256)
		dkim_fold_put(&f, "a=rsa-sha256;", 13, 1);
	else
		dkim_fold_put(&f, "a=ed25519-sha256;", 17, 1);
	dkim_fold_put(&f, "c=relaxed/relaxed;", 18, 1);
	n = snprintf(tag, sizeof(tag), "d=%s;", k->domain);
	dkim_fold_put(&f, tag, (size_t)n, 1);
	n = snprintf(tag, sizeof(tag), "s=%s;", k->selector);
	dkim_fold_put(&f, tag, (size_t)n, 1);
	if (f.failed) {
		buf_free(&b);
		return -1;
	}
	k->prefix = b.data;
	k->prefix_len = b.len;
	k->prefix_col = f.col;
	return 0;
}

/* Everything dkim_sign() computes once per message, shared by the keys. */
struct dkim_msg {
	const struct dkim_hdr *hdrs;
	size_t nhdrs;
	size_t count[DKIM_NSIGNED];   /* occurrences of each signed name */
	char bh[DKIM_BH_B64_LEN];
	struct buf *hdata;            /* canonical signed header fields */
};

/*
 * RFC 6376 5.4 and 5.4.2: the signed header fields in h= order. Each name
 * is listed count+1 times; the i-th listing of a name takes the i-th
 * occurrence from the bottom, and the extra listing matches nothing (it
 * signs "no further instance"), which is what oversigning means.
 */
static int dkim_headers_hash_data(struct dkim_msg *m)
{
	struct dkim_sink s;

	buf_reset(m->hdata);
	dkim_sink_init(&s, dkim_write_buf, m->hdata);
	for (size_t i = 0; i < DKIM_NSIGNED; i++) {
		size_t j = m->nhdrs;

		if (m->count[i] == 0)
			continue;
		while (j-- > 0) {
			const struct dkim_hdr *h = &m->hdrs[j];

			if (h->sig == (int)i)
				dkim_canon_header_into(&s, h->p, h->len, 1);
		}
	}
	dkim_sink_flush(&s);
	return s.failed ? -1 : 0;
}

/* bh=: base64 of SHA-256 over the relaxed-canonical body (RFC 6376 3.7). */
static int dkim_body_hash(struct dkim_msg *m, const struct dkim_key *k,
                          const char *body, size_t len, EVP_MD_CTX *md)
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int diglen = 0;
	struct dkim_sink s;

	if (EVP_DigestInit_ex2(md, k->sha256, NULL) != 1)
		return -1;
	dkim_sink_init(&s, dkim_write_digest, md);
	dkim_canon_body_into(&s, (const unsigned char *)body, len);
	dkim_sink_flush(&s);
	if (s.failed || EVP_DigestFinal_ex(md, dig, &diglen) != 1 ||
	    diglen != DKIM_SHA256_LEN)
		return -1;
	EVP_EncodeBlock((unsigned char *)m->bh, dig, (int)diglen);
	return 0;
}

/* Decimal digits of v into tag (no NUL); their count. */
static size_t dkim_utoa(char *tag, unsigned long long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (i = 0; i < n; i++)
		tag[i] = tmp[n - 1 - i];
	return n;
}

/*
 * Write the DKIM-Signature field up to and including "b=" to out (folded)
 * and its canonical form (RFC 6376 3.7: the field as it will appear, b=
 * empty, no trailing CRLF) to sdata. Tag order: v a c d s t h bh b.
 */
static int dkim_sig_prefix(const struct dkim_msg *m, const struct dkim_key *k,
                           time_t now, struct buf *out, struct buf *sdata,
                           struct dkim_fold *f)
{
	size_t start = out->len, t;
	char tag[DKIM_BH_B64_LEN + 8];
	struct dkim_sink s;

	f->out = out;
	f->failed = buf_append(out, k->prefix, k->prefix_len) < 0;
	f->col = k->prefix_col;
	memcpy(tag, "t=", 2);
	if (now < 0) {  /* not before 1970 in practice; keep it exact */
		tag[2] = '-';
		t = 3 + dkim_utoa(tag + 3, 0ULL - (unsigned long long)now);
	} else {
		t = 2 + dkim_utoa(tag + 2, (unsigned long long)now);
	}
	tag[t++] = ';';
	dkim_fold_put(f, tag, t, 1);
	for (size_t i = 0, first = 1; i < DKIM_NSIGNED; i++) {
		for (size_t c = 0; c <= m->count[i]; c++) {
			int last = i == DKIM_NSIGNED - 1 && c == m->count[i];

			t = 0;
			if (first) {
				memcpy(tag, "h=", 2);
				t = 2;
			}
			memcpy(tag + t, dkim_signed[i].name, dkim_signed[i].len);
			t += dkim_signed[i].len;
			tag[t++] = last ? ';' : ':';
			dkim_fold_put(f, tag, t, first);
			first = 0;
		}
	}
	memcpy(tag, "bh=", 3);
	memcpy(tag + 3, m->bh, DKIM_BH_B64_LEN - 1);
	tag[3 + DKIM_BH_B64_LEN - 1] = ';';
	dkim_fold_put(f, tag, 3 + DKIM_BH_B64_LEN, 1);
	dkim_fold_put(f, "b=", 2, 1);
	if (f->failed)
		return -1;
	buf_reset(sdata);
	dkim_sink_init(&s, dkim_write_buf, sdata);
	dkim_canon_header_into(&s, out->data + start, out->len - start, 0);
	dkim_sink_flush(&s);
	return s.failed ? -1 : 0;
}

/*
 * The signature over hdata || sdata. rsa-sha256: RSASSA-PKCS1-v1_5 with
 * SHA-256 (RFC 6376 3.3.1) of the data, signed as a digest (what
 * EVP_DigestSign does inside, without copying a context per message).
 * ed25519-sha256: PureEdDSA over the SHA-256 digest of the same data
 * (RFC 8463 3), i.e. the data is hashed first and Ed25519 signs the
 * 32-octet digest. 0 or -1.
 */
static int dkim_sig_compute(const struct buf *hdata, const struct buf *sdata,
                            const struct dkim_key *k, struct dkim_signer *g,
                            unsigned char *sig, size_t *siglen)
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int diglen = 0;

	if (EVP_PKEY_get_size(g->pkey) > (int)*siglen)
		return -1;
	if (EVP_DigestInit_ex2(g->md, k->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(g->md, hdata->data, hdata->len) != 1 ||
	    EVP_DigestUpdate(g->md, sdata->data, sdata->len) != 1 ||
	    EVP_DigestFinal_ex(g->md, dig, &diglen) != 1)
		return -1;
	if (k->alg == DKIM_RSA_SHA256)
		return EVP_PKEY_sign(g->rsa, sig, siglen, dig, diglen) == 1 ? 0 : -1;
	if (EVP_MD_CTX_copy_ex(g->edc, g->ed0) != 1 ||
	    EVP_DigestSign(g->edc, sig, siglen, dig, diglen) != 1)
		return -1;
	return 0;
}

/* dkim.h: one DKIM-Signature field per key, appended to out. */
int dkim_sign(struct dkim_key *const *keys, size_t nkeys, const char *msg,
              size_t len, time_t now, struct buf *out, char *err,
              size_t errlen)
{
	struct dkim_hdr stack_hdrs[DKIM_HDR_STACK], *hdrs = stack_hdrs;
	unsigned char sig[DKIM_SIG_MAX];
	char sig64[(DKIM_SIG_MAX + 2) / 3 * 4 + 1];
	struct dkim_msg m = { 0 };
	struct dkim_signer *g0 = NULL;
	size_t out_len0 = out->len;
	const char *body = NULL;
	char why[256];
	int heap = 0, rc = -1;
	long n;

	if (nkeys == 0)
		return 0;
	n = dkim_headers_parse(msg, len, &hdrs, DKIM_HDR_STACK, &heap, &body,
	                       err, errlen);
	if (n < 0)
		goto done;
	m.hdrs = hdrs;
	m.nhdrs = (size_t)n;
	for (size_t j = 0; j < m.nhdrs; j++)
		if (hdrs[j].sig >= 0)
			m.count[hdrs[j].sig]++;
	g0 = dkim_signer_take(keys[0]);
	if (g0 == NULL) {
		edm_errf(err, errlen, "signing for d=%s s=%s: %s",
		         keys[0]->domain, keys[0]->selector,
		         dkim_ssl_reason(why, sizeof(why)));
		goto done;
	}
	if (dkim_body_hash(&m, keys[0], body, len - (size_t)(body - msg),
	                   g0->md) < 0) {
		edm_errf(err, errlen, "body hash: %s",
		         dkim_ssl_reason(why, sizeof(why)));
		goto done;
	}
	m.hdata = &g0->hdata;
	if (dkim_headers_hash_data(&m) < 0) {
		edm_errf(err, errlen, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nkeys; i++) {
		struct dkim_key *k = keys[i];
		struct dkim_signer *g = i == 0 ? g0 : dkim_signer_take(k);
		struct dkim_fold f;
		size_t siglen = sizeof(sig);
		int bad;

		if (g == NULL) {
			edm_errf(err, errlen, "signing for d=%s s=%s: %s", k->domain,
			         k->selector, dkim_ssl_reason(why, sizeof(why)));
			goto done;
		}
		if (dkim_sig_prefix(&m, k, now, out, &g->sdata, &f) < 0) {
			if (g != g0)
				dkim_signer_give(k, g);
			edm_errf(err, errlen, "out of memory");
			goto done;
		}
		bad = dkim_sig_compute(m.hdata, &g->sdata, k, g, sig, &siglen) < 0;
		if (g != g0)
			dkim_signer_give(k, g);
		if (bad) {
			edm_errf(err, errlen, "signing for d=%s s=%s: %s", k->domain,
			         k->selector, dkim_ssl_reason(why, sizeof(why)));
			goto done;
		}
		EVP_EncodeBlock((unsigned char *)sig64, sig, (int)siglen);
		dkim_fold_base64(&f, sig64, (siglen + 2) / 3 * 4);
		if (f.failed || buf_append(out, "\r\n", 2) < 0) {
			edm_errf(err, errlen, "out of memory");
			goto done;
		}
	}
	rc = 0;

done:
	if (rc < 0 && out->data != NULL) {
		out->len = out_len0;
		out->data[out->len] = '\0';
	}
	dkim_signer_give(keys[0], g0);
	if (heap)
		free(hdrs);
	return rc;
}

/* ---- key generation ---- */

/* Write all of p[n] to fd. 0 or -1 (errno set). */
static int dkim_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The TXT record text "v=DKIM1; k=...; p=..." (RFC 6376 3.6.1): for RSA p=
 * is the DER SubjectPublicKeyInfo, for Ed25519 the raw 32-octet public key
 * (RFC 8463 4.2), base64 either way. Appended to txt. 0 or -1.
 */
static int dkim_txt_text(EVP_PKEY *pkey, int rsa, struct buf *txt)
{
	unsigned char raw[32], *der = NULL;
	const unsigned char *pub;
	size_t publen;
	char *b64;
	int dlen = 0, rc = -1;

	if (rsa) {
		dlen = i2d_PUBKEY(pkey, &der);
		if (dlen <= 0)
			return -1;
		pub = der;
		publen = (size_t)dlen;
	} else {
		publen = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &publen) != 1)
			return -1;
		pub = raw;
	}
	b64 = malloc((publen + 2) / 3 * 4 + 1);
	if (b64 != NULL) {
		EVP_EncodeBlock((unsigned char *)b64, pub, (int)publen);
		rc = buf_printf(txt, "v=DKIM1; k=%s; p=%s", rsa ? "rsa" : "ed25519",
		                b64);
	}
	free(b64);
	OPENSSL_free(der);
	return rc;
}

/* The zone-file line: the TXT text as quoted strings of at most 255
 * octets each (RFC 1035 3.3.14; receivers concatenate them, RFC 6376
 * 3.6.2.2), on one line, newline-terminated. */
static int dkim_txt_record(const char *sel, const char *dom,
                           const struct buf *txt, struct buf *record)
{
	int failed = buf_printf(record, "%s._domainkey.%s. IN TXT", sel, dom) < 0;

	for (size_t off = 0; off < txt->len; off += DKIM_TXT_CHUNK) {
		size_t k = txt->len - off < DKIM_TXT_CHUNK ? txt->len - off
		                                          : DKIM_TXT_CHUNK;
		failed |= buf_puts(record, " \"") < 0;
		failed |= buf_append(record, txt->data + off, k) < 0;
		failed |= buf_putc(record, '"') < 0;
	}
	failed |= buf_putc(record, '\n') < 0;
	return failed ? -1 : 0;
}

/* dkim.h: make a key, save it 0600 as PKCS#8 PEM, describe its record. */
int dkim_keygen(const char *type, int bits, const char *out_path,
                const char *domain, const char *selector,
                struct buf *record, char *err, size_t errlen)
{
	char dom[DKIM_NAME_MAX + 1], sel[DKIM_NAME_MAX + 1], why[256];
	size_t record_len0 = record->len;
	struct buf txt = { 0 };
	EVP_PKEY *pkey = NULL;
	BIO *mem = NULL;
	char *pem;
	long pemlen;
	int rsa, fd, rc = -1;

	if (type != NULL && strcmp(type, "rsa") == 0) {
		rsa = 1;
		if (bits == 0)
			bits = DKIM_RSA_DEFAULT_BITS;
		if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
			edm_errf(err, errlen, "%s: RSA key size %d out of range "
			         "(RFC 8301: %d to %d bits; use %d)", out_path, bits,
			         DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS,
			         DKIM_RSA_DEFAULT_BITS);
			return -1;
		}
	} else if (type != NULL && strcmp(type, "ed25519") == 0) {
		rsa = 0;  /* bits is meaningless: Ed25519 keys are 256 bits */
	} else {
		edm_errf(err, errlen, "%s: unknown key type \"%s\" (rsa or "
		         "ed25519)", out_path, type ? type : "");
		return -1;
	}
	if (dkim_names_check(domain, selector, dom, sel, out_path, err,
	                     errlen) < 0)
		return -1;

	/* Claim the path first: a slow RSA generation should not end in
	 * "exists", and O_EXCL refuses to replace a key someone published. */
	fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		edm_errf(err, errlen, "%s: cannot create%s: %s", out_path,
		         errno == EEXIST ? " (will not overwrite a key)" : "",
		         strerror(errno));
		return -1;
	}
	pkey = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
	           : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL) {
		edm_errf(err, errlen, "%s: key generation failed: %s", out_path,
		         dkim_ssl_reason(why, sizeof(why)));
		goto fail_file;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(mem, pkey, NULL, NULL, 0, NULL,
	                                  NULL) != 1) {
		edm_errf(err, errlen, "%s: cannot encode the key: %s", out_path,
		         dkim_ssl_reason(why, sizeof(why)));
		goto fail_file;
	}
	pemlen = BIO_get_mem_data(mem, &pem);
	if (pemlen <= 0 || dkim_write_all(fd, pem, (size_t)pemlen) < 0 ||
	    fsync(fd) < 0) {
		edm_errf(err, errlen, "%s: cannot write: %s", out_path,
		         strerror(errno));
		goto fail_file;
	}
	if (close(fd) < 0) {
		fd = -1;
		edm_errf(err, errlen, "%s: cannot write: %s", out_path,
		         strerror(errno));
		goto fail_file;
	}
	fd = -1;
	if (dkim_txt_text(pkey, rsa, &txt) < 0 ||
	    dkim_txt_record(sel, dom, &txt, record) < 0) {
		record->len = record_len0;
		if (record->data != NULL)
			record->data[record->len] = '\0';
		edm_errf(err, errlen, "%s: cannot make the DNS record: %s",
		         out_path, dkim_ssl_reason(why, sizeof(why)));
		goto fail_file;
	}
	rc = 0;
	goto done;

fail_file:
	if (fd >= 0)
		close(fd);
	unlink(out_path);
done:
	buf_free(&txt);
	BIO_free(mem);
	EVP_PKEY_free(pkey);
	return rc;
}
