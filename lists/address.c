/*
 * address.c - RFC 5321 mailbox syntax check and normalisation (I/O-free).
 *
 * Purpose: decide whether one CSV field is an address we can put in RCPT TO
 * on the public internet, and produce its normalised form and comparison
 * key (see address.h for the rules).
 *
 * Contract: the ASCII path (nearly every real address) is one pass over the
 * bytes with a 256-entry class table, writes only into the caller's struct
 * and allocates nothing; libidn2 is called (and allocates) only when the
 * domain holds non-ASCII bytes. Every refusal carries a short lowercase
 * detail naming the problem; bytes that are not printable ASCII are shown as
 * 0xNN.
 *
 * What it does not do: DNS (does the domain exist, has it MX), role/typo/
 * disposable rules (rules.c), quoted local parts or address literals (legal
 * in RFC 5321 but useless and suspicious in a bulk list), EAI/SMTPUTF8
 * local parts (RFC 6531: every hop would need SMTPUTF8), case folding of the
 * local part in 'norm' (RFC 5321 2.4: only the receiving host may treat it
 * as case-insensitive; we fold it only in 'key').
 */
#include "address.h"
#include "log.h"

#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Longest UTF-8 domain handed to libidn2. The ACE result is at most 253
 * octets; a code point costs 1..4 UTF-8 octets and at least one punycode
 * digit, so 4 * 253 plus slack covers every domain that could pass. Longer
 * input is refused before conversion, which also bounds the stack buffer.
 */
#define ADDR_IDN_INPUT_MAX 1024

#define ADDR_LABEL_MAX 63 /* RFC 1035 2.3.4 */

/* Character classes: A = RFC 5322 atext only, B = atext and LDH (RFC 1035
 * 2.3.1 letter, digit, hyphen), o = neither. Non-ASCII bytes (0x80..0xff)
 * are in no class; the callers handle them before looking up. */
enum {
	ADDR_C_ATEXT = 1,
	ADDR_C_LDH = 2,
};
#define o 0
#define A ADDR_C_ATEXT
#define B (ADDR_C_ATEXT | ADDR_C_LDH)
static const unsigned char addr_class[256] = {
	o, o, o, o, o, o, o, o, o, o, o, o, o, o, o, o, /* 0x00..0x0f */
	o, o, o, o, o, o, o, o, o, o, o, o, o, o, o, o, /* 0x10..0x1f */
	o, A, o, A, A, A, A, A, o, o, A, A, o, B, o, A, /* ' '..'/' */
	B, B, B, B, B, B, B, B, B, B, o, o, o, A, o, A, /* '0'..'?' */
	o, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, /* '@'..'O' */
	B, B, B, B, B, B, B, B, B, B, B, o, o, o, A, A, /* 'P'..'_' */
	A, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, /* '`'..'o' */
	B, B, B, B, B, B, B, B, B, B, B, A, A, A, A, o, /* 'p'..0x7f */
	/* 0x80..0xff: zero */
};
#undef o
#undef A
#undef B

/* ASCII lowercase; other bytes unchanged (never locale-dependent). */
static inline unsigned char addr_lower(unsigned char c)
{
	return (unsigned char)(c - 'A') < 26 ? (unsigned char)(c + 32) : c;
}

/* Render one byte for a detail: 'x' when printable ASCII, else 0xNN. */
static const char *addr_byte_show(unsigned char c, char buf[8])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "0x%02X", c);
	return buf;
}

/*
 * Length of the blank at p[n] (0 when none): ASCII space, tab, CR, LF,
 * U+00A0 (no-break space, Excel exports) or U+3000 (ideographic space, CJK
 * input methods). Used for trimming and for naming blanks inside addresses.
 */
static size_t addr_blank_at(const unsigned char *p, size_t n)
{
	if (n >= 1 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' ||
	               p[0] == '\n'))
		return 1;
	if (n >= 2 && p[0] == 0xc2 && p[1] == 0xa0)
		return 2;
	if (n >= 3 && p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
		return 3;
	return 0;
}

/* Length of the blank ending at p[n] (the last bytes), 0 when none. */
static size_t addr_blank_before(const unsigned char *p, size_t n)
{
	if (n >= 1 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
	               p[n - 1] == '\r' || p[n - 1] == '\n'))
		return 1;
	if (n >= 2 && p[n - 2] == 0xc2 && p[n - 1] == 0xa0)
		return 2;
	if (n >= 3 && p[n - 3] == 0xe3 && p[n - 2] == 0x80 && p[n - 1] == 0x80)
		return 3;
	return 0;
}

/* Strip blanks at both ends of *p[*n] in place (pointer and length). */
static void addr_trim(const unsigned char **p, size_t *n)
{
	size_t k;

	while ((k = addr_blank_at(*p, *n)) > 0) {
		*p += k;
		*n -= k;
	}
	while ((k = addr_blank_before(*p, *n)) > 0)
		*n -= k;
}

/*
 * Length of an ideographic full stop at p[n] (0 when none): U+3002 "。",
 * U+FF0E "．", U+FF61 "｡". CJK input methods type these between labels;
 * UTS #46 maps them to '.', and we do it explicitly before IDNA.
 */
static size_t addr_wide_dot_at(const unsigned char *p, size_t n)
{
	if (n < 3)
		return 0;
	if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x82)
		return 3;
	if (p[0] == 0xef && p[1] == 0xbc && p[2] == 0x8e)
		return 3;
	if (p[0] == 0xef && p[1] == 0xbd && p[2] == 0xa1)
		return 3;
	return 0;
}

/* Name of a Unicode blank for details ("U+3000"), from its UTF-8 length. */
static const char *addr_blank_name(size_t k)
{
	return k == 2 ? "U+00A0 (no-break space)" : "U+3000 (ideographic space)";
}

/*
 * LDH check and lowercasing of an ASCII domain s[n] (RFC 1035 2.3.1 as
 * relaxed by RFC 1123 2.1: labels may start with a digit). Writes the
 * lowercased bytes to out while they fit in cap (out is not terminated) and
 * returns n, or -1 with a detail. A numeric TLD is refused: that is what a
 * bare IPv4 address looks like, and no TLD is all digits (RFC 3696 2).
 */
static int addr_ldh_check(const unsigned char *s, size_t n, char *out,
                          size_t cap, char *detail, size_t dlen)
{
	size_t i, start = 0, labels = 0;
	int digits_only = 1;
	char show[8];

	if (n == 0)
		return edm_errf(detail, dlen, "empty domain");
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '.') {
			if (i == 0)
				return edm_errf(detail, dlen,
				                 "domain starts with a dot");
			if (i == start)
				return edm_errf(detail, dlen,
				                 "consecutive dots in domain");
			if (s[i - 1] == '-')
				return edm_errf(detail, dlen,
				                 "label ends with a hyphen");
			if (i - start > ADDR_LABEL_MAX)
				return edm_errf(detail, dlen,
				                 "domain label longer than 63 octets");
			labels++;
			start = i + 1;
			digits_only = 1;
		} else if (!(addr_class[c] & ADDR_C_LDH)) {
			return edm_errf(detail, dlen,
			                 "invalid character %s in domain",
			                 addr_byte_show(c, show));
		} else if (c == '-') {
			if (i == start)
				return edm_errf(detail, dlen,
				                 "label starts with a hyphen");
			digits_only = 0;
		} else if (c > '9') {
			digits_only = 0;
		}
		if (i < cap)
			out[i] = (char)addr_lower(c);
	}
	if (start == n)
		return edm_errf(detail, dlen, "domain ends with a dot");
	if (s[n - 1] == '-')
		return edm_errf(detail, dlen, "label ends with a hyphen");
	if (n - start > ADDR_LABEL_MAX)
		return edm_errf(detail, dlen, "domain label longer than 63 octets");
	if (labels == 0)
		return edm_errf(detail, dlen, "domain has a single label");
	if (digits_only)
		return edm_errf(detail, dlen,
		                 "numeric top-level domain (bare IP?)");
	if (n > ADDR_DOMAIN_MAX)
		return edm_errf(detail, dlen, "domain longer than 253 octets");
	return (int)n;
}

/*
 * Convert a domain with non-ASCII bytes to its ACE form (RFC 5891, with the
 * UTS #46 non-transitional mapping so "ß" stays "ß" as IDNA2008 wants),
 * then LDH-check it into out[cap]. Full-width dots become '.' first; NUL
 * and Unicode blanks are refused here because libidn2 would either stop at
 * the NUL or give a vaguer reason.
 */
static int addr_idn_check(const unsigned char *s, size_t n, char *out,
                          size_t cap, char *detail, size_t dlen)
{
	char buf[ADDR_IDN_INPUT_MAX + 1];
	char *ace = NULL;
	size_t i, k, o = 0;
	int rc;

	if (n > ADDR_IDN_INPUT_MAX)
		return edm_errf(detail, dlen, "domain longer than 253 octets");
	for (i = 0; i < n; i += k) {
		if ((k = addr_wide_dot_at(s + i, n - i)) > 0) {
			buf[o++] = '.';
			continue;
		}
		if ((k = addr_blank_at(s + i, n - i)) > 0)
			return edm_errf(detail, dlen,
			                 "invalid character %s in domain",
			                 k == 1 ? "' '" : addr_blank_name(k));
		if (s[i] == 0)
			return edm_errf(detail, dlen,
			                 "invalid character 0x00 in domain");
		buf[o++] = (char)s[i];
		k = 1;
	}
	buf[o] = '\0';

	rc = idn2_to_ascii_8z(buf, &ace, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	if (rc != IDN2_OK) {
		edm_errf(detail, dlen, "invalid international domain: %s",
		          idn2_strerror(rc));
		goto fail_idn;
	}
	rc = addr_ldh_check((const unsigned char *)ace, strlen(ace), out, cap,
	                    detail, dlen);
fail_idn:
	idn2_free(ace);
	return rc < 0 ? -1 : rc;
}

/* Validate and normalise a trimmed domain into out[cap]; length or -1. */
static int addr_domain_check(const unsigned char *s, size_t n, char *out,
                             size_t cap, char *detail, size_t dlen)
{
	size_t i;

	if (n == 0)
		return edm_errf(detail, dlen, "empty domain");
	if (s[0] == '[')
		return edm_errf(detail, dlen,
		                 "address literals are not accepted");
	for (i = 0; i < n; i++)
		if (s[i] & 0x80)
			return addr_idn_check(s, n, out, cap, detail, dlen);
	return addr_ldh_check(s, n, out, cap, detail, dlen);
}

/*
 * Check a dot-atom local part (RFC 5322 3.2.3, RFC 5321 4.1.2 Dot-string)
 * and copy it as given into out. A non-ASCII byte means an EAI address
 * (RFC 6531), which only works if every hop speaks SMTPUTF8.
 */
static int addr_local_check(const unsigned char *s, size_t n, char *out,
                            char *detail, size_t dlen)
{
	size_t i, k;
	char show[8];

	if (n == 0)
		return edm_errf(detail, dlen, "empty local part");
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (addr_class[c] & ADDR_C_ATEXT)
			continue;
		if (c == '.') {
			if (i == 0)
				return edm_errf(detail, dlen,
				                 "local part starts with a dot");
			if (s[i - 1] == '.')
				return edm_errf(detail, dlen,
				                 "consecutive dots in local part");
			continue;
		}
		if (c & 0x80) {
			if ((k = addr_blank_at(s + i, n - i)) > 0)
				return edm_errf(detail, dlen,
				                 "invalid character %s in local part",
				                 addr_blank_name(k));
			return edm_errf(detail, dlen, "non-ASCII local part "
			                 "needs SMTPUTF8 end to end");
		}
		return edm_errf(detail, dlen,
		                 "invalid character %s in local part",
		                 addr_byte_show(c, show));
	}
	if (s[n - 1] == '.')
		return edm_errf(detail, dlen, "local part ends with a dot");
	if (n > ADDR_LOCAL_MAX)
		return edm_errf(detail, dlen,
		                 "local part longer than 64 octets");
	memcpy(out, s, n);
	return 0;
}

/* Full-width commercial at U+FF20 "＠" in UTF-8: a CJK IME typo for '@'. */
static const char addr_wide_at[] = "\xef\xbc\xa0";

/* Parse and normalise one address (see address.h for the rules). */
int addr_parse(const char *in, size_t len, struct addr *out,
               char *detail, size_t dlen)
{
	const unsigned char *p = (const unsigned char *)in;
	const unsigned char *at;
	size_t n = len, llen, i;
	int dom;

	addr_trim(&p, &n);
	if (n == 0)
		return edm_errf(detail, dlen, "empty address");
	if (p[0] == '"')
		return edm_errf(detail, dlen,
		                 "quoted local parts are not accepted");
	at = memchr(p, '@', n);
	if (at == NULL) {
		if (memmem(p, n, addr_wide_at, 3) != NULL)
			return edm_errf(detail, dlen, "missing @ (found "
			                 "full-width U+FF20 instead)");
		return edm_errf(detail, dlen, "missing @");
	}
	llen = (size_t)(at - p);
	if (memchr(at + 1, '@', n - llen - 1) != NULL)
		return edm_errf(detail, dlen, "more than one @");

	if (addr_local_check(p, llen, out->norm, detail, dlen) < 0)
		return -1;
	/* The local part fits (<= 64), so the domain has ADDR_MAX - llen
	 * bytes of norm left for itself and its terminator. */
	dom = addr_domain_check(at + 1, n - llen - 1, out->norm + llen + 1,
	                        ADDR_MAX - llen, detail, dlen);
	if (dom < 0)
		return -1;
	if (llen + 1 + (size_t)dom > ADDR_MAX)
		return edm_errf(detail, dlen, "address longer than 254 octets");

	out->norm[llen] = '@';
	out->local_len = llen;
	out->len = llen + 1 + (size_t)dom;
	out->norm[out->len] = '\0';
	for (i = 0; i < llen; i++)
		out->key[i] = (char)addr_lower((unsigned char)out->norm[i]);
	memcpy(out->key + llen, out->norm + llen, (size_t)dom + 2);
	return 0;
}

/* Normalise a bare domain with addr_parse()'s domain rules. */
int addr_domain_normalise(const char *in, size_t len, char *out,
                          size_t outlen, char *detail, size_t dlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = len;
	int dom;

	addr_trim(&p, &n);
	dom = addr_domain_check(p, n, out, outlen, detail, dlen);
	if (dom < 0)
		return -1;
	if ((size_t)dom >= outlen)
		return edm_errf(detail, dlen,
		                 "domain does not fit the output buffer");
	out[dom] = '\0';
	return 0;
}
