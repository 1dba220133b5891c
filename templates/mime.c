/*
 * mime.c - build one RFC 5322 / MIME message from rendered parts (contract
 * in mime.h).
 *
 * Purpose: turn the per-recipient rendered subject, text and HTML plus the
 * campaign's attachments into the exact octets handed to DATA: CRLF only,
 * 7-bit clean, no line over 998 octets, header lines folded at 78 where the
 * syntax allows, and no way for any input to add a header line.
 *
 * Contract and choices:
 *   - Header text that is not plain printable ASCII becomes RFC 2047
 *     encoded-words in UTF-8 with the B encoding: CJK text costs 4 octets
 *     per character in B against 9 in Q, B needs no per-character special
 *     cases, and every reader decodes it. The whole value is encoded (not
 *     just the non-ASCII words) and each word holds whole characters.
 *   - Plain ASCII values are folded at spaces (RFC 5322 3.2.2): a CRLF is
 *     put in front of an existing space, so unfolding gives back the input.
 *     An ASCII value that holds "=?" (would be read as an encoded-word) or
 *     a word too long for 998 octets is encoded instead.
 *   - In every header value CR, LF and the other C0 controls (and DEL)
 *     become spaces. Addresses and the message-id are refused instead when
 *     they hold controls, spaces, non-ASCII or '<' '>'. Unsubscribe URLs
 *     and mailto addresses are URIs, so there the same octets (and '"')
 *     are percent-encoded: a space would break the URI, and a CR or LF can
 *     no more get through than with the space rule.
 *   - Text bodies: bare CR, bare LF and CRLF all become CRLF before
 *     anything else (SMTP smuggling, CVE-2023-51764..6), then the part is
 *     7bit when it is printable ASCII with lines of at most 76 octets and
 *     no "=_" (the boundary marker); base64 when more than a sixth of its
 *     bytes are non-ASCII (a Chinese body: smaller and faster than QP);
 *     else quoted-printable (RFC 2045 6.7).
 *     Dot-stuffing is left to the SMTP layer.
 *   - Attachments are encoded once at load (base64, 76-character lines);
 *     their part headers are built once too, in the two forms we need
 *     (attachment, and inline with a Content-ID). Non-ASCII file names are
 *     written as Thunderbird does for the widest reach: RFC 2231
 *     filename*=UTF-8''... (with continuations when long) in
 *     Content-Disposition, and an RFC 2047 name="=?UTF-8?B?...?=" in
 *     Content-Type for readers without RFC 2231 (older Outlook).
 *   - Boundaries are "=_edm_" + a level tag (mix, rel, alt) + a 64-bit
 *     FNV-1a hash of the message-id: reproducible, distinct per level, and
 *     "=_" never occurs in quoted-printable or base64, while 7bit parts
 *     holding "=_" are sent as quoted-printable.
 *
 * What it does not do: dot-stuffing and the final "." (SMTP), DKIM
 * (dkim.c), validating or IDN-converting addresses (address.c; here they
 * are only refused when they could break the header), charset conversion
 * (input is UTF-8).
 */
#include "mime.h"
#include "log.h"

#include "buf.h"
#include "html2text.h"
#include "utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MIME_LINE_SOFT 78  /* RFC 5322 2.1.1 SHOULD, CRLF excluded */
#define MIME_LINE_HARD 998 /* RFC 5322 2.1.1 MUST, CRLF excluded */
#define MIME_TEXT_7BIT 76  /* longest 7bit body line we send as is: the QP
                              line length, so every body line stays <= 78 */
#define MIME_QP_LINE 76    /* RFC 2045 6.7 rule 5, soft '=' included */
#define MIME_B64_LINE 76   /* RFC 2045 6.8 */
#define MIME_B64_RAW (MIME_B64_LINE / 4 * 3) /* input octets per line */
#define MIME_EW_MAX 75     /* RFC 2047 2: longest encoded-word */
#define MIME_EW_OVERHEAD 12 /* "=?UTF-8?B?" + "?=" */
#define MIME_ADDR_MAX 254  /* RFC 5321 4.5.3.1.3 path minus the brackets */
#define MIME_ID_MAX 250    /* our ids are ~60 octets; a bound keeps the
                              Message-ID line (and Content-IDs) short */
#define MIME_URI_MAX 900   /* encoded URI, so " <uri>," fits in 998 */
#define MIME_NAME_RUN_MAX (MIME_LINE_HARD - MIME_ADDR_MAX - 32)
                           /* longest unbreakable run of a display name
                              written as atoms or a quoted string: the
                              line must still take '"' + " <addr>" */
#define MIME_HNAME_MAX 76  /* "Name: " plus one octet still fits in 78 */
#define MIME_FILENAME_MAX 255 /* NAME_MAX of every common file system */
#define MIME_RFC2231_SEG 54 /* percent-encoded octets per filename*N*=
                               segment: " filename*0*=UTF-8''" (20) + 54
                               + ";" stays within 78 */
/*
 * Largest attachment file. Gmail and Outlook.com refuse messages over 25 MB
 * and base64 adds a third, so 18 MiB of file is about the most that still
 * reaches them; anything bigger should be a link.
 */
#define MIME_ATT_MAX (18u << 20)

struct mime_attachment {
	char *name;        /* basename as on disk (UTF-8), for cid: matching */
	size_t name_len;
	int cid_ok;        /* name is usable inside Content-ID <...> */
	char *hdr_att;     /* part headers + blank line, as an attachment */
	size_t hdr_att_len;
	char *hdr_inl;     /* same, inline with Content-ID */
	size_t hdr_inl_len;
	char *body;        /* base64 lines joined by CRLF, none after the last */
	size_t body_len;
};

#define BUF_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

static const char mime_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char mime_hex[] = "0123456789ABCDEF";

/* The header-value view of a byte: controls (C0 and DEL) become spaces so
 * no value can end its line early. */
static inline unsigned char hdr_ch(unsigned char c)
{
	return (c < 0x20 || c == 0x7f) ? ' ' : c;
}

/* Base64 of src[0..n) (mapped through hdr_ch when 'map') into dst, which
 * has room for 4 * ceil(n / 3) octets. Returns the octets written. */
static size_t b64_encode(char *dst, const unsigned char *src, size_t n, int map)
{
	char *d = dst;
	unsigned a, b, c;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		a = map ? hdr_ch(src[i]) : src[i];
		b = map ? hdr_ch(src[i + 1]) : src[i + 1];
		c = map ? hdr_ch(src[i + 2]) : src[i + 2];
		d[0] = mime_b64[a >> 2];
		d[1] = mime_b64[((a & 3) << 4) | (b >> 4)];
		d[2] = mime_b64[((b & 15) << 2) | (c >> 6)];
		d[3] = mime_b64[c & 63];
		d += 4;
	}
	if (i < n) {
		a = map ? hdr_ch(src[i]) : src[i];
		b = i + 1 < n ? (map ? hdr_ch(src[i + 1]) : src[i + 1]) : 0;
		d[0] = mime_b64[a >> 2];
		d[1] = mime_b64[((a & 3) << 4) | (b >> 4)];
		d[2] = i + 1 < n ? mime_b64[(b & 15) << 2] : '=';
		d[3] = '=';
		d += 4;
	}
	return (size_t)(d - dst);
}

/*
 * Fold s[0..n) (mapped through hdr_ch) onto out, the current line already
 * holding 'col' octets: greedy, breaking only in front of a space that is
 * followed by a non-space (RFC 5322 3.2.2), so no line is whitespace only
 * and unfolding (removing the CRLFs) restores the input exactly. Spaces
 * at or before s[min] are never fold points (the one after "Name:").
 */
static int hdr_fold_plain(struct buf *out, const unsigned char *s, size_t n,
                          size_t col, size_t min)
{
	size_t ls = 0, last = 0, j, k;
	char *p;

	if (n > ((size_t)-1 - 16) / 3 || buf_reserve(out, n + n + 16) < 0)
		return -1;
	p = out->data + out->len;
	for (j = min + 1; j <= n; j++) {
		if (j < n && !(hdr_ch(s[j]) == ' ' && j + 1 < n &&
		               hdr_ch(s[j + 1]) != ' '))
			continue;
		if (col + (j - ls) > MIME_LINE_SOFT && last > ls) {
			for (k = ls; k < last; k++)
				*p++ = (char)hdr_ch(s[k]);
			*p++ = '\r';
			*p++ = '\n';
			ls = last;
			col = 0;
		}
		last = j;
	}
	for (k = ls; k < n; k++)
		*p++ = (char)hdr_ch(s[k]);
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

/*
 * How many octets of s[0..n), at most max, make whole UTF-8 characters:
 * the cut is moved back over continuation octets (at most 3, the longest
 * tail of a sequence). 0 when not even one character fits.
 */
static size_t ew_chunk(const unsigned char *s, size_t n, size_t max)
{
	size_t k;

	if (n <= max)
		return n;
	for (k = max; k > 0 && max - k < 3 && (s[k] & 0xc0) == 0x80; k--)
		;
	if ((s[k] & 0xc0) == 0x80) /* not UTF-8 here: cut anywhere */
		return max;
	return k;
}

/* Decide whether a header value can be written as folded plain text (1) or
 * needs encoded-words (0): printable ASCII (after hdr_ch), no "=?", and no
 * run between fold points longer than a line may be. */
static int hdr_plain_ok(const unsigned char *s, size_t n, size_t col)
{
	size_t i, seg = col;

	for (i = 0; i < n; i++) {
		unsigned char c = hdr_ch(s[i]);

		if (c >= 0x80)
			return 0;
		if (c == '=' && i + 1 < n && s[i + 1] == '?')
			return 0;
		if (c == ' ' && i > 0 && i + 1 < n && hdr_ch(s[i + 1]) != ' ')
			seg = 0; /* a fold point: the next line starts here */
		if (++seg > MIME_LINE_HARD)
			return 0;
	}
	return 1;
}

/* RFC 2047 encoded-words, B encoding, folded at 78 without splitting a
 * character (RFC 2047 5 and 2: words of at most 75 octets). */
static int hdr_encode_b(struct buf *out, const unsigned char *s, size_t n,
                        size_t col)
{
	size_t i = 0, room, max, take;
	int fresh = 1; /* nothing written on this line yet */
	char *p;

	/* Worst case: 3 octets per word in 12 + 4 + 3 (sep/CRLF) octets. */
	if (n > (size_t)-1 / 8 - 64 || buf_reserve(out, n * 7 + 64) < 0)
		return -1;
	p = out->data + out->len;
	while (i < n) {
		size_t need = fresh ? 0 : 1;

		room = MIME_LINE_SOFT > col + need + MIME_EW_OVERHEAD ?
		       MIME_LINE_SOFT - col - need - MIME_EW_OVERHEAD : 0;
		if (room > MIME_EW_MAX - MIME_EW_OVERHEAD)
			room = MIME_EW_MAX - MIME_EW_OVERHEAD;
		max = room / 4 * 3;
		take = max > 0 ? ew_chunk(s + i, n - i, max) : 0;
		if (take == 0) {
			if (col <= 1) /* a fresh continuation line: 45 octets
			                 always hold a whole character */
				take = max;
			else {
				memcpy(p, "\r\n ", 3);
				p += 3;
				col = 1;
				fresh = 1;
				continue;
			}
		}
		if (!fresh)
			*p++ = ' ';
		memcpy(p, "=?UTF-8?B?", 10);
		p += 10;
		p += b64_encode(p, s + i, take, 1);
		*p++ = '?';
		*p++ = '=';
		col += need + MIME_EW_OVERHEAD + (take + 2) / 3 * 4;
		i += take;
		fresh = 0;
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

/* Header value writer (contract in mime.h); no CRLF is added at the end. */
int mime_encode_words(struct buf *out, const char *text, size_t len, size_t col)
{
	const unsigned char *s = (const unsigned char *)text;

	if (len == 0)
		return 0;
	if (hdr_plain_ok(s, len, col))
		return hdr_fold_plain(out, s, len, col, 0);
	return hdr_encode_b(out, s, len, col);
}

/*
 * Re-fold the last line of the header that starts at out->data[start]
 * when it is longer than 78 octets (used after structured values such as
 * "name <addr>" were written unfolded). Only spaces are fold points.
 */
static int hdr_refold(struct buf *out, size_t start)
{
	char stack[1024], *tmp = stack;
	size_t ls = start, n, i, min = 0;
	const char *colon;
	int rc;

	for (i = out->len; i > start + 1; i--)
		if (out->data[i - 2] == '\r' && out->data[i - 1] == '\n') {
			ls = i;
			break;
		}
	n = out->len - ls;
	if (n <= MIME_LINE_SOFT)
		return 0;
	if (ls == start && (colon = memchr(out->data + ls, ':', n)) != NULL)
		min = (size_t)(colon - (out->data + ls)) + 1;
	if (n > sizeof stack && (tmp = malloc(n)) == NULL)
		return -1;
	memcpy(tmp, out->data + ls, n);
	out->len = ls;
	rc = hdr_fold_plain(out, (const unsigned char *)tmp, n, 0, min);
	if (tmp != stack)
		free(tmp);
	return rc;
}

/* An addr-spec we can put in a header: dot-atom@domain printable ASCII,
 * no space, no '<' '>' or other specials that would change the header's
 * structure. */
static int hdr_addr_ok(const char *a)
{
	size_t i, at = 0;

	if (a == NULL || a[0] == '\0')
		return 0;
	for (i = 0; a[i] != '\0'; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c))
			return 0;
		if (c == '@')
			at++;
	}
	return at == 1 && i <= MIME_ADDR_MAX && a[0] != '@' && a[i - 1] != '@';
}

/* RFC 5322 atext (3.2.3). */
static int hdr_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c > 0x20 && c < 0x7f && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/*
 * "Field: [display-name] <addr>" or "Field: addr", CRLF-terminated. The
 * name (trimmed) is written as atoms when it is plain words, as a quoted
 * string with \" and \\ when it holds specials (RFC 5322 3.2.4), as
 * encoded-words when it holds non-ASCII or "=?" (RFC 2047 5 (3)).
 */
static int hdr_mailbox(struct buf *out, const char *field, const char *name,
                       const char *addr)
{
	size_t start = out->len, n = 0, i, col;
	const unsigned char *s = (const unsigned char *)name;
	size_t run = 0;
	int rc = 0, quote = 0, encode = 0;

	rc |= buf_puts(out, field);
	rc |= BUF_LIT(out, ": ");
	if (name != NULL) {
		while (*s != '\0' && hdr_ch(*s) == ' ')
			s++;
		n = strlen((const char *)s);
		while (n > 0 && hdr_ch(s[n - 1]) == ' ')
			n--;
	}
	if (n == 0) {
		rc |= buf_puts(out, addr);
		rc |= BUF_LIT(out, "\r\n");
		return rc;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = hdr_ch(s[i]);

		if (c >= 0x80 || (c == '=' && i + 1 < n && s[i + 1] == '?'))
			encode = 1;
		else if (c != ' ' && !hdr_atext(c))
			quote = 1;
		/* an unbreakable run (escapes count twice) must leave room
		 * for " <addr>" within 998 octets, else encode it */
		run = c == ' ' ? 0 : run + 1 + (c == '"' || c == '\\');
		if (run > MIME_NAME_RUN_MAX)
			encode = 1;
	}
	col = out->len - start;
	if (encode) {
		rc |= hdr_encode_b(out, s, n, col);
	} else if (quote) {
		if (rc == 0 && buf_reserve(out, 2 * n + 2) == 0) {
			char *p = out->data + out->len;

			*p++ = '"';
			for (i = 0; i < n; i++) {
				unsigned char c = hdr_ch(s[i]);

				if (c == '"' || c == '\\')
					*p++ = '\\';
				*p++ = (char)c;
			}
			*p++ = '"';
			out->len = (size_t)(p - out->data);
			out->data[out->len] = '\0';
		} else {
			rc = -1;
		}
	} else {
		rc |= hdr_fold_plain(out, s, n, col, 0);
	}
	rc |= BUF_LIT(out, " <");
	rc |= buf_puts(out, addr);
	rc |= buf_putc(out, '>');
	if (rc == 0)
		rc = hdr_refold(out, start);
	rc |= BUF_LIT(out, "\r\n");
	return rc;
}

/* Append a URI with every octet that may not appear in one (controls,
 * space, non-ASCII, '<' '>' '"', RFC 3986 2) percent-encoded. */
static int hdr_uri_put(struct buf *out, const char *u)
{
	size_t n = strlen(u), i;
	char *p;

	if (buf_reserve(out, 3 * n) < 0)
		return -1;
	p = out->data + out->len;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"') {
			*p++ = '%';
			*p++ = mime_hex[c >> 4];
			*p++ = mime_hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

/* Percent-encoded length of a URI (see hdr_uri_put). */
static size_t hdr_uri_len(const char *u)
{
	size_t n = 0;

	for (; *u != '\0'; u++) {
		unsigned char c = (unsigned char)*u;

		n += (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' ||
		      c == '"') ? 3 : 1;
	}
	return n;
}

/* Two decimal digits of v (0..99) at d. */
static inline void put2(char *d, int v)
{
	d[0] = (char)('0' + v / 10);
	d[1] = (char)('0' + v % 10);
}

/* RFC 5322 3.3 date-time in UTC: "Sun, 22 Nov 2026 03:05:52 +0000"
 * (fixed width, written by hand: snprintf was a visible part of a
 * message's cost). */
static int hdr_date(struct buf *out, time_t t)
{
	static const char wday[] = "SunMonTueWedThuFriSat";
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char d[] = "Date: Www, DD Mmm YYYY HH:MM:SS +0000\r\n";
	struct tm tm;
	int year;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 1900)
		return -2;
	year = tm.tm_year + 1900;
	memcpy(d + 6, wday + 3 * tm.tm_wday, 3);
	put2(d + 11, tm.tm_mday);
	memcpy(d + 14, mon + 3 * tm.tm_mon, 3);
	put2(d + 18, year / 100);
	put2(d + 20, year % 100);
	put2(d + 23, tm.tm_hour);
	put2(d + 26, tm.tm_min);
	put2(d + 29, tm.tm_sec);
	return buf_append(out, d, sizeof(d) - 1);
}

/* ---- bodies ---------------------------------------------------------- */

/* Quoted-printable classes (RFC 2045 6.7): literal (33..126 but '='),
 * white space (literal unless last on a line), encoded, CR, LF. */
enum { QP_LIT = 0, QP_WS, QP_ENC, QP_CR, QP_LF };
#define L QP_LIT
#define W QP_WS
#define E QP_ENC
static const unsigned char qp_cls[256] = {
	E, E, E, E, E, E, E, E, E, W, QP_LF, E, E, QP_CR, E, E, /* 0x00 */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, /* 0x10 */
	W, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* ' '..'/' */
	L, L, L, L, L, L, L, L, L, L, L, L, L, E, L, L, /* '0'..'?' */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* '@'..'O' */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* 'P'..'_' */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* '`'..'o' */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, E, /* 'p'..0x7f */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, /* 0x80.. */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, /* ..0xff */
};
#undef L
#undef W
#undef E

#define SWAR_ONES 0x0101010101010101ull
#define SWAR_HIGH 0x8080808080808080ull

/* Nonzero when any of the 8 octets in x is outside 0x20..0x7e or is '='
 * (the octets the QP fast path may copy as they are, spaces included). */
static inline uint64_t swar_special(uint64_t x)
{
	uint64_t lt = (x - SWAR_ONES * 0x20) & ~x;        /* < 0x20 */
	uint64_t e = x ^ (SWAR_ONES * '=');
	uint64_t d = x ^ (SWAR_ONES * 0x7f);

	return (lt | ((e - SWAR_ONES) & ~e) | ((d - SWAR_ONES) & ~d) | x) &
	       SWAR_HIGH;
}

/*
 * 16 octets at a time with the compilers' generic vectors (GCC and clang:
 * SSE2 on x86-64, NEON on arm64, plain code elsewhere); comparisons give
 * 0xff or 0 per octet.
 */
typedef unsigned char mime_v16 __attribute__((vector_size(16)));

/* Index of the first nonzero octet of a comparison result, or 16. */
static inline size_t v16_first(mime_v16 m)
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

/* Index of the first octet of x that quoted-printable cannot copy as it
 * is on the fast path (outside 0x20..0x7e, or '='), or 16. */
static inline size_t qp_first_special(mime_v16 x)
{
	return v16_first((mime_v16)(x < 0x20) | (mime_v16)(x > 0x7e) |
	                 (mime_v16)(x == '='));
}

/* Quoted-printable body writer (contract in mime.h): one pass writing into
 * storage reserved for the worst case. Runs of octets that stand for
 * themselves are found 16 at a time and copied up to the line's room; the
 * octet after a run (line end, '=', non-ASCII, control, a space before a
 * line end, or the one that needs a soft break) goes through the table. */
int mime_qp(struct buf *out, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, col = 0, w;
	unsigned char c;
	int eol, enc;
	char *p;

	/* Worst case: 3 octets per input octet, plus "=\r\n" per 73. */
	if (len > ((size_t)-1 - 16) / 4 || buf_reserve(out, 3 * len + len / 8 + 16) < 0)
		return -1;
	p = out->data + out->len;
	while (i < len) {
		/* Fast path: the plain octets that still fit on the line
		 * (col < 75: the 76th column is for a soft break '='). */
		size_t room = col < MIME_QP_LINE - 1 ? MIME_QP_LINE - 1 - col : 0;
		size_t m = 0;

		/* Blocks are stored whole before they are checked: the
		 * reservation above leaves far more than 16 octets spare while
		 * 16 input octets remain, and whatever lies past the run is
		 * overwritten next. */
		while (m < room) {
			if (len - i - m >= 16) {
				mime_v16 x;
				size_t j;

				memcpy(&x, s + i + m, sizeof(x));
				memcpy(p + m, &x, sizeof(x));
				j = qp_first_special(x);
				m += j;
				if (j < 16)
					break;
			} else {
				while (i + m < len && s[i + m] >= 0x20 &&
				       s[i + m] <= 0x7e && s[i + m] != '=') {
					p[m] = (char)s[i + m];
					m++;
				}
				break;
			}
		}
		if (m > room)
			m = room;
		/* rule 3: a space before a line end is encoded, below */
		if (m > 0 && s[i + m - 1] == ' ' &&
		    (i + m == len || s[i + m] == '\r' || s[i + m] == '\n'))
			m--;
		p += m;
		i += m;
		col += m;
		if (i >= len)
			break;
		c = s[i];
		switch (qp_cls[c]) {
		case QP_CR:
			i += (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
			*p++ = '\r';
			*p++ = '\n';
			col = 0;
			continue;
		case QP_LF:
			i++;
			*p++ = '\r';
			*p++ = '\n';
			col = 0;
			continue;
		case QP_LIT:
			if (col < MIME_QP_LINE - 1) {
				*p++ = (char)c;
				col++;
				i++;
				continue;
			}
			enc = 0;
			break;
		case QP_WS:
			eol = i + 1 == len || s[i + 1] == '\r' || s[i + 1] == '\n';
			enc = eol; /* rule 3: no white space before a line end */
			break;
		default:
			enc = 1;
			break;
		}
		w = enc ? 3 : 1;
		if (col + w > MIME_QP_LINE - 1) {
			eol = i + 1 == len || s[i + 1] == '\r' || s[i + 1] == '\n';
			if (!eol || col + w > MIME_QP_LINE) {
				memcpy(p, "=\r\n", 3);
				p += 3;
				col = 0;
			}
		}
		if (enc) {
			p[0] = '=';
			p[1] = mime_hex[c >> 4];
			p[2] = mime_hex[c & 15];
			p += 3;
		} else {
			*p++ = (char)c;
		}
		col += w;
		i++;
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

/* Whether a text part must be quoted-printable: anything but printable
 * ASCII, tab and line ends, a line over 76 octets, or "=_" (which could
 * forge a boundary in a 7bit part). */
static int body_needs_qp(const unsigned char *s, size_t n)
{
	size_t i = 0, col = 0;

	while (i < n) {
		while (i + 8 <= n && col + 8 <= MIME_TEXT_7BIT) {
			uint64_t x;

			memcpy(&x, s + i, 8);
			if (swar_special(x) != 0)
				break;
			i += 8;
			col += 8;
		}
		if (i >= n)
			break;
		switch (qp_cls[s[i]]) {
		case QP_CR:
		case QP_LF:
			col = 0;
			i++;
			continue;
		case QP_ENC:
			if (s[i] != '=' || (i + 1 < n && s[i + 1] == '_'))
				return 1;
			break;
		default:
			break;
		}
		if (++col > MIME_TEXT_7BIT)
			return 1;
		i++;
	}
	return 0;
}

/* Copy a 7bit body with bare CR, bare LF and CRLF all made CRLF. */
static int body_copy_crlf(struct buf *out, const char *s, size_t n)
{
	size_t i, run;
	char *p;

	if (n > (size_t)-1 / 4 || buf_reserve(out, 2 * n) < 0)
		return -1;
	p = out->data + out->len;
	for (i = 0; i < n;) {
		for (run = i; run < n && s[run] != '\r' && s[run] != '\n'; run++)
			;
		memcpy(p, s + i, run - i);
		p += run - i;
		if (run >= n) {
			i = run;
			break;
		}
		i = run + ((s[run] == '\r' && run + 1 < n && s[run + 1] == '\n') ? 2 : 1);
		*p++ = '\r';
		*p++ = '\n';
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

/*
 * Whether base64 is the smaller encoding: quoted-printable spends 3 octets
 * on every non-ASCII byte, base64 4/3 on every byte, so base64 wins once
 * more than a sixth of the bytes are non-ASCII (a Chinese body is mostly
 * 3-byte characters: QP would double its size and its encoding time).
 */
static int body_wants_base64(const unsigned char *s, size_t n)
{
	size_t high = 0, i = 0;

	/* 16 bytes at a time: each octet's high bit (0 or 1) added into 16
	 * octet-wide counters, folded into 'high' before they can overflow
	 * (255 blocks) */
	while (n - i >= 16) {
		size_t blocks = (n - i) / 16 < 255 ? (n - i) / 16 : 255;
		mime_v16 acc = { 0 };
		uint64_t a, b;

		for (size_t k = 0; k < blocks; k++) {
			mime_v16 x;

			memcpy(&x, s + i + 16 * k, sizeof(x));
			acc += x >> 7;
		}
		i += 16 * blocks;
		memcpy(&a, &acc, 8);
		memcpy(&b, (const unsigned char *)&acc + 8, 8);
		/* the 16 counters (<= 255 each) added pairwise into four
		 * 16-bit lanes, and those by one multiply into the top lane */
		a = (a & 0x00ff00ff00ff00ffULL) + ((a >> 8) & 0x00ff00ff00ff00ffULL) +
		    (b & 0x00ff00ff00ff00ffULL) + ((b >> 8) & 0x00ff00ff00ff00ffULL);
		high += (size_t)((a * 0x0001000100010001ULL) >> 48);
	}
	for (; i < n; i++)
		high += s[i] >> 7;
	return high > n / 6;
}

/* Base64 of the text with line ends made CRLF first (RFC 2045 6.8: the
 * canonical form is encoded), in 76-character lines. */
static int body_base64(struct buf *out, const char *s, size_t n)
{
	struct buf canon = { 0 };
	size_t i, lines;
	char *p;
	int rc = -1;

	if (body_copy_crlf(&canon, s, n) < 0)
		goto out;
	lines = (canon.len + MIME_B64_RAW - 1) / MIME_B64_RAW;
	if (buf_reserve(out, (canon.len + 2) / 3 * 4 + 2 * lines) < 0)
		goto out;
	p = out->data + out->len;
	for (i = 0; i < canon.len; i += MIME_B64_RAW) {
		size_t take = canon.len - i < MIME_B64_RAW ? canon.len - i : MIME_B64_RAW;

		if (i > 0) {
			*p++ = '\r';
			*p++ = '\n';
		}
		p += b64_encode(p, (const unsigned char *)canon.data + i, take, 0);
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	rc = 0;
out:
	buf_free(&canon);
	return rc;
}

/* A text/plain or text/html leaf: headers, blank line, encoded body. */
static int part_text(struct buf *out, int html, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	int qp = body_needs_qp(u, n), b64 = qp && body_wants_base64(u, n);
	int rc = 0;

	rc |= html ? BUF_LIT(out, "Content-Type: text/html; charset=utf-8\r\n")
	           : BUF_LIT(out, "Content-Type: text/plain; charset=utf-8\r\n");
	if (b64) {
		rc |= BUF_LIT(out, "Content-Transfer-Encoding: base64\r\n\r\n");
		return rc | body_base64(out, s, n);
	}
	rc |= qp ? BUF_LIT(out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	         : BUF_LIT(out, "Content-Transfer-Encoding: 7bit\r\n\r\n");
	rc |= qp ? mime_qp(out, s, n) : body_copy_crlf(out, s, n);
	return rc;
}

/* The multipart header of one level: boundary on its own folded line so
 * the Content-Type line stays short whatever the subtype. */
static int part_multipart(struct buf *out, const char *sub, const char *bnd)
{
	int rc = 0;

	rc |= BUF_LIT(out, "Content-Type: multipart/");
	rc |= buf_puts(out, sub);
	rc |= BUF_LIT(out, ";\r\n boundary=\"");
	rc |= buf_puts(out, bnd);
	rc |= BUF_LIT(out, "\"\r\n\r\n");
	return rc;
}

/* "--boundary" CRLF opening the next body part (RFC 2046 5.1.1: the CRLF
 * in front belongs to the delimiter; 'first' has none, no preamble). */
static int part_delim(struct buf *out, const char *bnd, int first)
{
	int rc = 0;

	rc |= first ? 0 : BUF_LIT(out, "\r\n");
	rc |= BUF_LIT(out, "--");
	rc |= buf_puts(out, bnd);
	rc |= BUF_LIT(out, "\r\n");
	return rc;
}

/* The close delimiter "CRLF--boundary--" (no CRLF after: the enclosing
 * level or the message end adds it). */
static int part_close(struct buf *out, const char *bnd)
{
	int rc = 0;

	rc |= BUF_LIT(out, "\r\n--");
	rc |= buf_puts(out, bnd);
	rc |= BUF_LIT(out, "--");
	return rc;
}

/* An attachment leaf: prebuilt headers and base64 body. */
static int part_att(struct buf *out, const struct mime_attachment *a, int inl)
{
	int rc = 0;

	rc |= inl ? buf_append(out, a->hdr_inl, a->hdr_inl_len)
	          : buf_append(out, a->hdr_att, a->hdr_att_len);
	rc |= buf_append(out, a->body, a->body_len);
	return rc;
}

/* Whether html references "cid:NAME" exactly (the next octet cannot
 * continue the name), making the attachment inline. */
static int html_refs_cid(const char *html, size_t hlen,
                         const struct mime_attachment *a)
{
	const char *p = html, *end;

	/* text-only message: html is NULL, and NULL + 0 is undefined */
	if (!a->cid_ok || html == NULL)
		return 0;
	end = html + hlen;
	while ((size_t)(end - p) >= a->name_len + 4 &&
	       (p = memmem(p, (size_t)(end - p), "cid:", 4)) != NULL) {
		p += 4;
		if ((size_t)(end - p) >= a->name_len &&
		    memcmp(p, a->name, a->name_len) == 0 &&
		    (p + a->name_len == end ||
		     !(hdr_atext((unsigned char)p[a->name_len]) ||
		       p[a->name_len] == '.')))
			return 1;
	}
	return 0;
}

/* Boundary "=_edm_<level>_<16 hex of FNV-1a(message-id)>". */
static void mime_boundary(char *dst, const char *level, uint64_t h)
{
	int i;

	memcpy(dst, "=_edm_", 6);
	memcpy(dst + 6, level, 3);
	dst[9] = '_';
	for (i = 0; i < 16; i++)
		dst[10 + i] = mime_hex[(h >> (60 - 4 * i)) & 15];
	dst[26] = '\0';
}

/* Message-ID content: printable ASCII without space or angle brackets,
 * one '@' with something on each side (RFC 5322 3.6.4 msg-id). */
static int hdr_msgid_ok(const char *id)
{
	size_t i, at = 0;

	if (id == NULL || id[0] == '\0')
		return 0;
	for (i = 0; id[i] != '\0'; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
			return 0;
		at += c == '@';
	}
	return at == 1 && i <= MIME_ID_MAX && id[0] != '@' && id[i - 1] != '@';
}

/* Check every input that could break the header or has no valid form,
 * before writing anything. */
static int mime_check(const struct mime_message *m, char *err, size_t errlen)
{
	size_t i, j;

	if (m->text == NULL && m->html == NULL)
		return edm_errf(err, errlen, "message has no text and no HTML body");
	if (!hdr_addr_ok(m->from_addr))
		return edm_errf(err, errlen, "from address unusable in a header "
		                 "(empty, non-ASCII, space, control or specials)");
	if (!hdr_addr_ok(m->to_addr))
		return edm_errf(err, errlen, "to address unusable in a header "
		                 "(empty, non-ASCII, space, control or specials)");
	if (m->reply_to != NULL && m->reply_to[0] != '\0' &&
	    !hdr_addr_ok(m->reply_to))
		return edm_errf(err, errlen, "reply-to address unusable in a "
		                 "header (non-ASCII, space, control or specials)");
	if (!hdr_msgid_ok(m->message_id))
		return edm_errf(err, errlen, "message-id must be id@domain, "
		                 "printable ASCII without spaces or <>");
	if (m->unsub_url != NULL && m->unsub_url[0] != '\0') {
		/* https (RFC 8058); http only when the caller allows it (a
		 * [tracking] base_url on http, which edm warns about) */
		if (!((strncasecmp(m->unsub_url, "https://", 8) == 0 &&
		       m->unsub_url[8] != '\0') ||
		      (m->unsub_http_ok &&
		       strncasecmp(m->unsub_url, "http://", 7) == 0 &&
		       m->unsub_url[7] != '\0')))
			return edm_errf(err, errlen, "unsubscribe URL must be "
			                 "https:// (RFC 8058 one-click)");
		if (hdr_uri_len(m->unsub_url) > MIME_URI_MAX)
			return edm_errf(err, errlen, "unsubscribe URL longer than "
			                 "%u octets", MIME_URI_MAX);
	}
	if (m->unsub_mailto != NULL && m->unsub_mailto[0] != '\0' &&
	    hdr_uri_len(m->unsub_mailto) > MIME_URI_MAX)
		return edm_errf(err, errlen, "unsubscribe mailto longer than "
		                 "%u octets", MIME_URI_MAX);
	for (i = 0; i < m->nheaders; i++) {
		const char *nm = m->headers[i].name;

		if (nm == NULL || nm[0] == '\0')
			return edm_errf(err, errlen, "extra header %zu has no name", i);
		for (j = 0; nm[j] != '\0'; j++)
			if ((unsigned char)nm[j] <= 0x20 ||
			    (unsigned char)nm[j] >= 0x7f || nm[j] == ':')
				return edm_errf(err, errlen, "extra header %zu: "
				                 "invalid field name", i);
		if (j > MIME_HNAME_MAX)
			return edm_errf(err, errlen, "extra header %zu: field name "
			                 "longer than %u", i, MIME_HNAME_MAX);
	}
	for (i = 0; i < m->natts; i++)
		if (m->atts[i] == NULL)
			return edm_errf(err, errlen, "attachment %zu is NULL", i);
	return 0;
}

/* Everything up to (not including) the top-level Content-Type. */
static int mime_headers(const struct mime_message *m, struct buf *out)
{
	const char *subj = m->subject != NULL ? m->subject : "";
	int rc = 0;
	size_t i;

	rc |= hdr_mailbox(out, "From", m->from_name, m->from_addr);
	rc |= hdr_mailbox(out, "To", m->to_name, m->to_addr);
	if (m->reply_to != NULL && m->reply_to[0] != '\0')
		rc |= hdr_mailbox(out, "Reply-To", NULL, m->reply_to);
	rc |= BUF_LIT(out, "Subject: ");
	rc |= mime_encode_words(out, subj, strlen(subj), 9);
	rc |= BUF_LIT(out, "\r\n");
	if (rc == 0)
		rc = hdr_date(out, m->date);
	if (rc != 0)
		return rc;
	rc |= BUF_LIT(out, "Message-ID: <");
	rc |= buf_puts(out, m->message_id);
	rc |= BUF_LIT(out, ">\r\nMIME-Version: 1.0\r\n");
	if ((m->unsub_url != NULL && m->unsub_url[0] != '\0') ||
	    (m->unsub_mailto != NULL && m->unsub_mailto[0] != '\0')) {
		size_t start = out->len;
		int have_url = m->unsub_url != NULL && m->unsub_url[0] != '\0';

		rc |= BUF_LIT(out, "List-Unsubscribe: ");
		if (have_url) {
			rc |= buf_putc(out, '<');
			rc |= hdr_uri_put(out, m->unsub_url);
			rc |= buf_putc(out, '>');
		}
		if (m->unsub_mailto != NULL && m->unsub_mailto[0] != '\0') {
			rc |= have_url ? BUF_LIT(out, ", <mailto:")
			               : BUF_LIT(out, "<mailto:");
			rc |= hdr_uri_put(out, m->unsub_mailto);
			rc |= buf_putc(out, '>');
		}
		if (rc == 0)
			rc = hdr_refold(out, start);
		rc |= BUF_LIT(out, "\r\n");
		if (have_url) /* RFC 8058 3.1 */
			rc |= BUF_LIT(out, "List-Unsubscribe-Post: "
			              "List-Unsubscribe=One-Click\r\n");
	}
	if (m->feedback_id != NULL && m->feedback_id[0] != '\0') {
		rc |= BUF_LIT(out, "Feedback-ID: ");
		rc |= mime_encode_words(out, m->feedback_id,
		                        strlen(m->feedback_id), 13);
		rc |= BUF_LIT(out, "\r\n");
	}
	for (i = 0; i < m->nheaders; i++) {
		const char *v = m->headers[i].value != NULL ?
		                m->headers[i].value : "";

		rc |= buf_puts(out, m->headers[i].name);
		rc |= BUF_LIT(out, ": ");
		rc |= mime_encode_words(out, v, strlen(v),
		                        strlen(m->headers[i].name) + 2);
		rc |= BUF_LIT(out, "\r\n");
	}
	return rc;
}

/* The HTML side of the alternative: a text/html leaf, or multipart/related
 * holding it and the inline images. */
static int mime_html_side(const struct mime_message *m, struct buf *out,
                          const unsigned char *inl, size_t ninl,
                          const char *rel)
{
	int rc = 0;
	size_t i;

	if (ninl == 0)
		return part_text(out, 1, m->html, m->html_len);
	rc |= BUF_LIT(out, "Content-Type: multipart/related; type=\"text/html\";"
	              "\r\n boundary=\"");
	rc |= buf_puts(out, rel);
	rc |= BUF_LIT(out, "\"\r\n\r\n");
	rc |= part_delim(out, rel, 1);
	rc |= part_text(out, 1, m->html, m->html_len);
	for (i = 0; i < m->natts; i++)
		if (inl[i]) {
			rc |= part_delim(out, rel, 0);
			rc |= part_att(out, m->atts[i], 1);
		}
	rc |= part_close(out, rel);
	return rc;
}

/* Message builder (contract in mime.h). */
int mime_build(const struct mime_message *m, struct buf *out,
               char *err, size_t errlen)
{
	unsigned char inl_stack[64], *inl = inl_stack;
	char mix[32], alt[32], rel[32];
	struct buf gen = {0};
	const char *text = m->text;
	size_t text_len = m->text_len, start = out->len, i, ninl = 0, nmix = 0;
	uint64_t h = 0xcbf29ce484222325ull;
	const char *id;
	int rc;

	if (mime_check(m, err, errlen) < 0)
		return -1;
	for (id = m->message_id; *id != '\0'; id++) /* FNV-1a 64 */
		h = (h ^ (unsigned char)*id) * 0x100000001b3ull;
	mime_boundary(mix, "mix", h);
	mime_boundary(alt, "alt", h);
	mime_boundary(rel, "rel", h);
	if (m->natts > sizeof inl_stack &&
	    (inl = calloc(m->natts, 1)) == NULL)
		return edm_errf(err, errlen, "out of memory");
	for (i = 0; i < m->natts; i++) {
		inl[i] = (unsigned char)html_refs_cid(m->html, m->html_len,
		                                       m->atts[i]);
		ninl += inl[i];
		nmix += !inl[i];
	}
	rc = mime_headers(m, out);
	if (rc == -2) {
		rc = edm_errf(err, errlen, "date out of range");
		goto done;
	}
	if (rc == 0 && m->html != NULL && text == NULL) {
		/* A lone HTML part scores as spam: give it a text twin. */
		rc = html_to_text(m->html, m->html_len, &gen);
		text = gen.data != NULL ? gen.data : "";
		text_len = gen.len;
	}
	if (rc == 0 && nmix > 0) {
		rc |= part_multipart(out, "mixed", mix);
		rc |= part_delim(out, mix, 1);
	}
	if (rc == 0 && m->html == NULL) {
		rc |= part_text(out, 0, text, text_len);
	} else if (rc == 0) {
		rc |= part_multipart(out, "alternative", alt);
		rc |= part_delim(out, alt, 1);
		rc |= part_text(out, 0, text, text_len);
		rc |= part_delim(out, alt, 0);
		rc |= mime_html_side(m, out, inl, ninl, rel);
		rc |= part_close(out, alt);
	}
	if (rc == 0 && nmix > 0) {
		for (i = 0; i < m->natts; i++)
			if (!inl[i]) {
				rc |= part_delim(out, mix, 0);
				rc |= part_att(out, m->atts[i], 0);
			}
		rc |= part_close(out, mix);
	}
	if (rc == 0 && (out->len < 2 || out->data[out->len - 1] != '\n'))
		rc |= BUF_LIT(out, "\r\n");
	if (rc != 0)
		rc = edm_errf(err, errlen, "out of memory");
done:
	if (rc != 0 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	buf_free(&gen);
	if (inl != inl_stack)
		free(inl);
	return rc;
}

/* ---- attachments ----------------------------------------------------- */

/* Content-Type by file extension (mime.h lists them). */
static const char *att_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{"pdf", "application/pdf"},
		{"png", "image/png"},
		{"jpg", "image/jpeg"},
		{"jpeg", "image/jpeg"},
		{"gif", "image/gif"},
		{"webp", "image/webp"},
		{"svg", "image/svg+xml"},
		{"txt", "text/plain"},
		{"csv", "text/csv"},
		{"html", "text/html"},
		{"htm", "text/html"},
		{"zip", "application/zip"},
		{"doc", "application/msword"},
		{"docx", "application/vnd.openxmlformats-officedocument."
		         "wordprocessingml.document"},
		{"xls", "application/vnd.ms-excel"},
		{"xlsx", "application/vnd.openxmlformats-officedocument."
		         "spreadsheetml.sheet"},
		{"ppt", "application/vnd.ms-powerpoint"},
		{"pptx", "application/vnd.openxmlformats-officedocument."
		         "presentationml.presentation"},
		{"ics", "text/calendar"},
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot != NULL && dot != name)
		for (i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* RFC 2231 attribute-char (RFC 2045 token octets minus '*' '\'' '%'). */
static int att_attr_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("*'%()<>@,;:\\\"/[]?=", c);
}

/* One octet as %XX (RFC 2231 4 extended-other-values). */
static int att_pct_put(struct buf *b, unsigned char c)
{
	char t[3] = {'%', mime_hex[c >> 4], mime_hex[c & 15]};

	return buf_append(b, t, 3);
}

/*
 * Append the file-name parameter 'param' ("filename" or "name") on its own
 * folded line(s), starting with ";\r\n ". ASCII names: a quoted string.
 * Others: for "name", RFC 2047 words in a quoted string (the non-standard
 * form older Outlook reads); for "filename", RFC 2231 filename*= with
 * numbered continuations when long, each segment whole characters.
 */
static int att_param(struct buf *b, const char *param, const char *nm,
                     size_t n, int ascii)
{
	const unsigned char *s = (const unsigned char *)nm;
	size_t i, seg, k;
	int rc = 0;

	rc |= BUF_LIT(b, ";\r\n ");
	rc |= buf_puts(b, param);
	if (ascii) {
		rc |= BUF_LIT(b, "=\"");
		for (i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				rc |= buf_putc(b, '\\');
			rc |= buf_putc(b, (char)s[i]);
		}
		rc |= buf_putc(b, '"');
		return rc;
	}
	if (strcmp(param, "name") == 0) {
		rc |= BUF_LIT(b, "=\"");
		/* +1 keeps room for the closing quote on the first line */
		rc |= hdr_encode_b(b, s, n, 1 + strlen(param) + 2 + 1);
		rc |= buf_putc(b, '"');
		return rc;
	}
	/* Percent-encoded length decides between one line and continuations. */
	for (i = 0, k = 0; i < n; i++)
		k += att_attr_char(s[i]) ? 1 : 3;
	if (k + strlen(param) + 12 <= MIME_LINE_SOFT) {
		rc |= BUF_LIT(b, "*=UTF-8''");
		for (i = 0; i < n; i++) {
			if (att_attr_char(s[i]))
				rc |= buf_putc(b, (char)s[i]);
			else
				rc |= att_pct_put(b, s[i]);
		}
		return rc;
	}
	for (i = 0, seg = 0; i < n; seg++) {
		size_t used = 0;

		rc |= seg > 0 ? BUF_LIT(b, ";\r\n ") : 0;
		rc |= seg > 0 ? buf_puts(b, param) : 0;
		rc |= buf_printf(b, "*%zu*=%s", seg, seg == 0 ? "UTF-8''" : "");
		/* whole characters only: stop before a lead octet that would
		 * overflow the segment */
		while (i < n) {
			size_t clen = 1, cost;

			while (i + clen < n && (s[i + clen] & 0xc0) == 0x80 &&
			       clen < 4)
				clen++;
			for (k = 0, cost = 0; k < clen; k++)
				cost += att_attr_char(s[i + k]) ? 1 : 3;
			if (used > 0 && used + cost > MIME_RFC2231_SEG)
				break;
			for (k = 0; k < clen; k++, i++) {
				if (att_attr_char(s[i]))
					rc |= buf_putc(b, (char)s[i]);
				else
					rc |= att_pct_put(b, s[i]);
			}
			used += cost;
		}
	}
	return rc;
}

/* Build one form of the part headers (inline or attachment). */
static int att_headers(struct buf *b, const struct mime_attachment *a,
                       const char *disp_name, size_t dn, const char *type,
                       int text_utf8, int ascii, int inl)
{
	int rc = 0;

	rc |= BUF_LIT(b, "Content-Type: ");
	rc |= buf_puts(b, type);
	if (text_utf8)
		rc |= BUF_LIT(b, "; charset=utf-8");
	rc |= att_param(b, "name", disp_name, dn, ascii);
	rc |= BUF_LIT(b, "\r\nContent-Transfer-Encoding: base64\r\n");
	if (inl) {
		rc |= BUF_LIT(b, "Content-ID: <");
		rc |= buf_append(b, a->name, a->name_len);
		rc |= BUF_LIT(b, ">\r\nContent-Disposition: inline");
	} else {
		rc |= BUF_LIT(b, "Content-Disposition: attachment");
	}
	rc |= att_param(b, "filename", disp_name, dn, ascii);
	rc |= BUF_LIT(b, "\r\n\r\n");
	return rc;
}

/* Read a whole regular file of at most MIME_ATT_MAX octets. */
static char *att_read(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		edm_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		edm_errf(err, errlen, "%s: not a regular file", path);
		goto fail_file;
	}
	if ((uintmax_t)st.st_size > MIME_ATT_MAX) {
		edm_errf(err, errlen, "%s: larger than %u MiB (receivers refuse "
		          "messages over 25 MB)", path, MIME_ATT_MAX >> 20);
		goto fail_file;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		edm_errf(err, errlen, "%s: out of memory", path);
		goto fail_file;
	}
	got = fread(data, 1, (size_t)st.st_size + 1, f);
	if (ferror(f) || got > (size_t)st.st_size) {
		edm_errf(err, errlen, "%s: %s", path, ferror(f) ?
		          "read error" : "file grew while reading");
		goto fail_data;
	}
	fclose(f);
	*len = got;
	return data;

fail_data:
	free(data);
fail_file:
	fclose(f);
	return NULL;
}

/* Attachment loader (contract in mime.h). */
struct mime_attachment *mime_attachment_load(const char *path, char *err,
                                             size_t errlen)
{
	struct mime_attachment *a;
	struct buf h1 = {0}, h2 = {0};
	const char *base, *type;
	char *data, *disp = NULL;
	size_t len, i, o, nlines;
	int ascii = 1, text_utf8, rc = 0;

	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	if (base[0] == '\0') {
		edm_errf(err, errlen, "%s: no file name", path);
		return NULL;
	}
	if (strlen(base) > MIME_FILENAME_MAX) {
		edm_errf(err, errlen, "%s: file name longer than %u octets",
		          path, MIME_FILENAME_MAX);
		return NULL;
	}
	if ((data = att_read(path, &len, err, errlen)) == NULL)
		return NULL;
	if ((a = calloc(1, sizeof *a)) == NULL)
		goto fail_nomem;
	a->name_len = strlen(base);
	if ((a->name = strdup(base)) == NULL || (disp = strdup(base)) == NULL)
		goto fail_nomem;
	a->cid_ok = 1;
	for (i = 0; i < a->name_len; i++) {
		unsigned char c = (unsigned char)disp[i];

		if (c < 0x20 || c == 0x7f) /* never a control in a header */
			disp[i] = '_';
		ascii &= c < 0x80;
		a->cid_ok &= hdr_atext(c) || c == '.';
	}
	a->cid_ok &= a->name_len <= MIME_ID_MAX;
	/* base64: 76-character lines joined by CRLF */
	nlines = (len + MIME_B64_RAW - 1) / MIME_B64_RAW;
	a->body_len = (len + 2) / 3 * 4 + (nlines > 0 ? 2 * (nlines - 1) : 0);
	if ((a->body = malloc(a->body_len + 1)) == NULL)
		goto fail_nomem;
	for (i = 0, o = 0; i < len; i += MIME_B64_RAW) {
		size_t take = len - i < MIME_B64_RAW ? len - i : MIME_B64_RAW;

		if (i > 0) {
			a->body[o++] = '\r';
			a->body[o++] = '\n';
		}
		o += b64_encode(a->body + o, (const unsigned char *)data + i,
		                take, 0);
	}
	a->body[o] = '\0';
	type = att_type(base);
	text_utf8 = strncmp(type, "text/", 5) == 0 &&
	            utf8_check((const unsigned char *)data, len) == len;
	rc |= att_headers(&h1, a, disp, a->name_len, type, text_utf8, ascii, 0);
	rc |= att_headers(&h2, a, disp, a->name_len, type, text_utf8, ascii, 1);
	if (rc != 0)
		goto fail_nomem;
	a->hdr_att = h1.data;
	a->hdr_att_len = h1.len;
	a->hdr_inl = h2.data;
	a->hdr_inl_len = h2.len;
	free(disp);
	free(data);
	return a;

fail_nomem:
	edm_errf(err, errlen, "%s: out of memory", path);
	buf_free(&h1);
	buf_free(&h2);
	free(disp);
	mime_attachment_free(a);
	free(data);
	return NULL;
}

/* Free an attachment; NULL is a no-op. */
void mime_attachment_free(struct mime_attachment *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->hdr_att);
	free(a->hdr_inl);
	free(a->body);
	free(a);
}
