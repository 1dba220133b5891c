/*
 * dsn.c - reports that come back to the sender: DSN, ARF, text bounces,
 * auto-replies (contract in dsn.h).
 *
 * One pass over the message: the top header, then a MIME walk (its own
 * small RFC 2045/2046 walker, bounded by struct dsn_limits) that hands
 * delivery-status parts to the RFC 3464 reader, feedback-report parts to
 * the RFC 5965 reader, message/rfc822 and text/rfc822-headers parts to the
 * original-message reader, and collects the text/plain (else text/html)
 * explanation as UTF-8. Only when there is no report part does the text
 * scanner look at that explanation, and only when the message looks like a
 * bounce (sender, subject, X-Failed-Recipients): every MTA words its text
 * bounce differently, but all of them name the failed address on a line of
 * its own (or after a fixed phrase) and follow it with the remote reply, so
 * one scanner with a few per-format phrases reads them all.
 *
 * Memory: every string of the report is copied into an arena the report
 * owns (one free), and made one line of valid UTF-8 on the way in;
 * temporary decoded bodies are malloc'd and freed at once.
 * Nothing reads past msg[len]: every scan is bounded by an end pointer.
 */
#include "dsn.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"

/* Header fields kept per header block: real messages have 20-80 (a long
 * Received chain up to a few hundred); past this they are skipped. */
#define HDR_FIELDS_MAX 512
/* A reply a text bounce quotes: RFC 5321 4.5.3.1.5 allows 512 bytes per
 * line; a few lines of a multi-line reply fit in 4 KiB, the rest is not
 * a reply. */
#define REPLY_MAX 4096
/* Arena blocks: most reports need one. */
#define ARENA_BLOCK 16384

struct dsn_arena {
	struct dsn_arena *next;
	size_t used, cap;
	char data[];
};

void dsn_limits_default(struct dsn_limits *lim)
{
	/* A report carries at most the original message: edm's are well
	 * under 1 MB, 10 MB covers one with attachments and bounds memory. */
	lim->max_bytes = 10u << 20;
	/* Real reports nest 3 deep (mixed > report > rfc822 > alternative). */
	lim->max_depth = 8;
	/* A report has 3-5 parts; 256 stops a part bomb early. */
	lim->max_parts = 256;
	/* edm sends one recipient per message; RFC 5321 4.5.3.1.8 says 100
	 * recipients per transaction, so a report never needs more. */
	lim->max_rcpts = 100;
	/* To/Cc/Delivered-To lists of a bounce are short. */
	lim->max_addrs = 32;
	/* Bounce explanations are a few KB; HTML ones some tens. */
	lim->max_text = 256u << 10;
	/* Longer single fields are not header fields anyone writes. */
	lim->max_field = 16u << 10;
}

/* ---- the parse context ---- */

struct hfield {
	const char *name, *val;  /* into the message */
	size_t nlen, vlen;       /* vlen up to the end of its last line */
};

struct hdrs {
	struct hfield f[HDR_FIELDS_MAX];
	size_t n;
};

struct ctx {
	const struct dsn_limits *lim;
	struct dsn_report *r;
	unsigned parts;
	int oom;
	int have_ds, have_fb;      /* a delivery-status / feedback-report part */
	char report_type[48];      /* of the first multipart/report */
	struct buf text;           /* text/plain explanation, UTF-8 */
	struct buf html;           /* text/html explanation, tags stripped */
	size_t rcpt_cap;
};

/* ---- small helpers ---- */

static int lc(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int is_ws(int ch)
{
	return ch == ' ' || ch == '\t';
}

static int is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* s[len] starts with the literal lit, ignoring ASCII case. */
static int ci_prefix(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (len < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lc((unsigned char)s[i]) != lc((unsigned char)lit[i]))
			return 0;
	return 1;
}

/* s[len] equals lit, ignoring ASCII case. */
static int ci_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && ci_prefix(s, len, lit);
}

/* The first lit in h[hlen] ignoring ASCII case, or NULL. */
static const char *ci_find(const char *h, size_t hlen, const char *lit)
{
	size_t n = strlen(lit);

	if (n == 0 || hlen < n)
		return NULL;
	for (size_t i = 0; i + n <= hlen; i++)
		if (lc((unsigned char)h[i]) == lc((unsigned char)lit[0]) &&
		    ci_prefix(h + i, hlen - i, lit))
			return h + i;
	return NULL;
}

/* The line at p (up to end): its length without CR/LF in *len, the start
 * of the next line returned. */
static const char *line_next(const char *p, const char *end, size_t *len)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl != NULL ? nl : end;

	*len = (size_t)(e - p);
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	return nl != NULL ? nl + 1 : end;
}

/* Trim blanks (and CR) at both ends of s[*len]. */
static const char *trim(const char *s, size_t *len)
{
	while (*len > 0 && (is_ws((unsigned char)*s) || *s == '\r')) {
		s++;
		(*len)--;
	}
	while (*len > 0 && (is_ws((unsigned char)s[*len - 1]) || s[*len - 1] == '\r'))
		(*len)--;
	return s;
}

/* ---- the arena ---- */

/* n bytes from the report's arena; NULL (and c->oom) when out of memory. */
static char *arena_alloc(struct ctx *c, size_t n)
{
	struct dsn_arena *a = c->r->arena;

	if (a == NULL || a->cap - a->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if ((a = malloc(sizeof(*a) + cap)) == NULL) {
			c->oom = 1;
			return NULL;
		}
		a->next = c->r->arena;
		a->used = 0;
		a->cap = cap;
		c->r->arena = a;
	}
	a->used += n;
	return a->data + a->used - n;
}

/* Make s[len] a report string in place: every byte that starts no valid
 * UTF-8 sequence (RFC 3629, lists/utf8.h) becomes '?', control bytes
 * (CR, LF, NUL, ...) a space, so it is one line of valid UTF-8. */
static void sanitize(char *s, size_t len)
{
	size_t i = 0, k;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x80) {
			if (ch < 0x20 || ch == 0x7f)
				s[i] = ' ';
			i++;
		} else if ((k = utf8_seq_len((const unsigned char *)s + i, len - i)) > 0) {
			i += k;
		} else {
			s[i++] = '?';
		}
	}
}

/* A NUL-terminated, sanitized copy of s[len] in the arena (NULL when out
 * of memory): the only way strings get into a report. */
static const char *arena_strndup(struct ctx *c, const char *s, size_t len)
{
	char *p = arena_alloc(c, len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	sanitize(p, len);
	return p;
}

/* ---- header blocks ---- */

/* 1 when l[len] is "Name: ..." with a field name of printable ASCII
 * (blanks before the colon allowed: obsolete syntax). */
static int is_field_line(const char *l, size_t len, size_t *nlen)
{
	size_t i = 0;

	while (i < len && l[i] != ':') {
		unsigned char ch = (unsigned char)l[i];
		if (ch <= 32 || ch >= 127) {
			if (!is_ws(ch))
				return 0;
			/* blanks only between the name and the colon */
			size_t j = i;
			while (j < len && is_ws((unsigned char)l[j]))
				j++;
			if (j >= len || l[j] != ':' || i == 0)
				return 0;
			*nlen = i;
			return 1;
		}
		i++;
	}
	if (i == 0 || i >= len || i > 76)
		return 0;
	*nlen = i;
	return 1;
}

/*
 * Read the header block at p (up to end) into h; return where the body
 * starts (after the blank line; at a line that is not a field when the
 * blank line is missing). h->n == 0 when the first line is not a field.
 */
static const char *parse_headers(const char *p, const char *end,
                                 struct hdrs *h)
{
	int kept = 0;   /* the field being continued was stored */

	h->n = 0;
	while (p < end) {
		size_t len, nlen;
		const char *next = line_next(p, end, &len);

		if (len == 0)
			return next;
		if (is_ws((unsigned char)p[0])) {
			if (h->n == 0)
				return p;    /* a block cannot start folded */
			/* a continuation: the last field grows to this line */
			if (kept)
				h->f[h->n - 1].vlen = (size_t)(p + len - h->f[h->n - 1].val);
			p = next;
			continue;
		}
		if (!is_field_line(p, len, &nlen))
			return p;
		kept = h->n < HDR_FIELDS_MAX;
		if (kept) {
			struct hfield *f = &h->f[h->n++];
			const char *colon = memchr(p, ':', len);
			f->name = p;
			f->nlen = nlen;
			f->val = colon + 1;
			f->vlen = (size_t)(p + len - f->val);
		}
		p = next;
	}
	return p;
}

/* The i-th (0-based) field called name, or NULL. */
static const struct hfield *hget(const struct hdrs *h, const char *name,
                                 size_t i)
{
	for (size_t k = 0; k < h->n; k++)
		if (ci_eq(h->f[k].name, h->f[k].nlen, name) && i-- == 0)
			return &h->f[k];
	return NULL;
}

/*
 * The unfolded value of f into out (reset first), trimmed, at most
 * max_field bytes: folds become one space, or a LF when keep_lines (for
 * multi-line replies); control bytes become spaces. 0 or -1 (ENOMEM).
 */
static int hval_buf(const struct ctx *c, const struct hfield *f,
                    int keep_lines, struct buf *out)
{
	const char *s = f->val, *e = f->val + f->vlen;
	int space = 0;

	buf_reset(out);
	/* the output never outgrows the input (folds and controls shrink to
	 * one byte), so the appends below cannot fail */
	if (buf_reserve(out, f->vlen < c->lim->max_field ? f->vlen : c->lim->max_field) < 0)
		return -1;
	while (s < e && out->len < c->lim->max_field) {
		unsigned char ch = (unsigned char)*s++;
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			while (s < e && (is_ws((unsigned char)*s) || *s == '\r'))
				s++;
			if (keep_lines && out->len > 0) {
				while (out->len > 0 && out->data[out->len - 1] == ' ')
					out->len--;
				buf_putc(out, '\n');
				space = 0;
			} else {
				space = out->len > 0;
			}
			continue;
		}
		if (ch < 32 || ch == 127) {
			space = out->len > 0;
			continue;
		}
		if (ch == ' ') {
			space = out->len > 0;
			continue;
		}
		if (space && out->len > 0 && out->data[out->len - 1] != '\n')
			buf_putc(out, ' ');
		space = 0;
		buf_putc(out, (char)ch);
	}
	return 0;
}

/* The unfolded value of the first field called name, in the arena; NULL
 * when absent (or out of memory). */
static const char *hval(struct ctx *c, const struct hdrs *h, const char *name)
{
	const struct hfield *f = hget(h, name, 0);
	struct buf b = { 0 };
	const char *s = NULL;

	if (f == NULL)
		return NULL;
	if (hval_buf(c, f, 0, &b) == 0)
		s = arena_strndup(c, b.data ? b.data : "", b.len);
	else
		c->oom = 1;
	buf_free(&b);
	return s;
}

/* ---- Content-Type ---- */

struct ctype {
	char type[80];        /* "multipart/report", lowercased */
	char boundary[201];   /* RFC 2046: 1-70 characters; room for liars */
	char charset[41];
	char report_type[41];
};

/* Skip blanks and (nested) comments. */
static const char *skip_cfws(const char *s, const char *e)
{
	int depth = 0;

	while (s < e) {
		if (depth > 0) {
			if (*s == '\\' && s + 1 < e)
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			s++;
		} else if (*s == '(') {
			depth = 1;
			s++;
		} else if (is_ws((unsigned char)*s) || *s == '\r' || *s == '\n') {
			s++;
		} else {
			break;
		}
	}
	return s;
}

/* Copy at most cap-1 bytes of s[n] into out (lowercased when lower). */
static void copy_to(char *out, size_t cap, const char *s, size_t n, int lower)
{
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = lower ? (char)lc((unsigned char)s[i]) : s[i];
	out[n] = '\0';
}

/* Parse a Content-Type value v[vlen] (raw, may be folded). Absent or
 * unreadable: text/plain. */
static void parse_ctype(const char *v, size_t vlen, struct ctype *ct)
{
	const char *s, *e, *t;

	memset(ct, 0, sizeof(*ct));
	strcpy(ct->type, "text/plain");
	if (v == NULL)
		return;
	e = v + vlen;
	s = skip_cfws(v, e);
	t = s;
	while (s < e && *s != ';' && !is_ws((unsigned char)*s) && *s != '(' &&
	       *s != '\r' && *s != '\n')
		s++;
	if (s > t && memchr(t, '/', (size_t)(s - t)) != NULL)
		copy_to(ct->type, sizeof(ct->type), t, (size_t)(s - t), 1);
	while (s < e) {
		const char *name, *val;
		size_t nlen, vl;
		char tmp[256];

		while (s < e && *s != ';')
			s++;
		if (s >= e)
			break;
		s = skip_cfws(s + 1, e);
		name = s;
		while (s < e && *s != '=' && *s != ';' && !is_ws((unsigned char)*s))
			s++;
		nlen = (size_t)(s - name);
		s = skip_cfws(s, e);
		if (s >= e || *s != '=')
			continue;
		s = skip_cfws(s + 1, e);
		vl = 0;
		if (s < e && *s == '"') {
			for (s++; s < e && *s != '"'; s++) {
				if (*s == '\\' && s + 1 < e)
					s++;
				if (*s == '\r' || *s == '\n')
					continue;
				if (vl < sizeof(tmp) - 1)
					tmp[vl++] = *s;
			}
			if (s < e)
				s++;
		} else {
			val = s;
			while (s < e && *s != ';' && !is_ws((unsigned char)*s) &&
			       *s != '\r' && *s != '\n' && *s != '(')
				s++;
			vl = (size_t)(s - val) < sizeof(tmp) - 1 ? (size_t)(s - val)
			                                          : sizeof(tmp) - 1;
			memcpy(tmp, val, vl);
		}
		tmp[vl] = '\0';
		if (ci_eq(name, nlen, "boundary"))
			copy_to(ct->boundary, sizeof(ct->boundary), tmp, vl, 0);
		else if (ci_eq(name, nlen, "charset"))
			copy_to(ct->charset, sizeof(ct->charset), tmp, vl, 1);
		else if (ci_eq(name, nlen, "report-type"))
			copy_to(ct->report_type, sizeof(ct->report_type), tmp, vl, 1);
	}
}

/* ---- transfer encodings ---- */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

/* The Content-Transfer-Encoding (7bit, 8bit, binary, unknown: as is). */
static enum cte parse_cte(const struct hdrs *h)
{
	const struct hfield *f = hget(h, "Content-Transfer-Encoding", 0);
	size_t len;
	const char *v;

	if (f == NULL)
		return CTE_IDENTITY;
	len = f->vlen;
	v = trim(f->val, &len);
	if (ci_prefix(v, len, "base64"))
		return CTE_BASE64;
	if (ci_prefix(v, len, "quoted-printable"))
		return CTE_QP;
	return CTE_IDENTITY;
}

static int b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static int hex_val(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode base64 (junk skipped; '=' ends a group, so concatenated encodings
 * decode too) into out (appended). 0 or -1. */
static int b64_decode(const char *s, size_t len, struct buf *out)
{
	unsigned acc = 0, bits = 0;

	if (buf_reserve(out, len / 4 * 3 + 3) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_val((unsigned char)s[i]);
		if (s[i] == '=') {
			acc = 0;
			bits = 0;
			continue;
		}
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[out->len++] = (char)((acc >> bits) & 0xff);
		}
		acc &= (1u << bits) - 1;
	}
	out->data[out->len] = '\0';
	return 0;
}

/* Decode quoted-printable (RFC 2045 6.7; a bad '=' stays literal) into out
 * (appended). 0 or -1. */
static int qp_decode(const char *s, size_t len, struct buf *out)
{
	if (buf_reserve(out, len) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=') {
			size_t j = i + 1;
			int h1 = j < len ? hex_val((unsigned char)s[j]) : -1;
			int h2 = j + 1 < len ? hex_val((unsigned char)s[j + 1]) : -1;
			if (h1 >= 0 && h2 >= 0) {
				out->data[out->len++] = (char)(h1 << 4 | h2);
				i = j + 1;
				continue;
			}
			/* a soft line break: '=' blanks* CRLF (or the end) */
			while (j < len && is_ws((unsigned char)s[j]))
				j++;
			if (j < len && s[j] == '\r')
				j++;
			if (j >= len || s[j] == '\n') {
				i = j;
				continue;
			}
		}
		out->data[out->len++] = s[i];
	}
	out->data[out->len] = '\0';
	return 0;
}

/* The body decoded by its transfer encoding into out (reset first). */
static int decode_body(enum cte cte, const char *s, size_t len,
                       struct buf *out)
{
	buf_reset(out);
	if (cte == CTE_BASE64)
		return b64_decode(s, len, out);
	if (cte == CTE_QP)
		return qp_decode(s, len, out);
	return buf_append(out, s, len);
}

/* ---- charsets ---- */

/* The iconv name for a MIME charset: GB2312/GBK are read as GB18030, their
 * superset (mislabelled GBK mail is common). */
static const char *iconv_name(const char *cs)
{
	if (strcmp(cs, "gb2312") == 0 || strcmp(cs, "gbk") == 0 ||
	    strcmp(cs, "x-gbk") == 0 || strcmp(cs, "cp936") == 0 ||
	    strcmp(cs, "euc-cn") == 0 || strcmp(cs, "hz-gb-2312") == 0)
		return "GB18030";
	if (strcmp(cs, "ks_c_5601-1987") == 0)
		return "CP949";
	return cs;
}

/* 1 for the charsets whose bytes are copied as they are. */
static int charset_is_utf8(const char *cs)
{
	return cs[0] == '\0' || strcmp(cs, "utf-8") == 0 ||
	       strcmp(cs, "utf8") == 0 || strcmp(cs, "us-ascii") == 0 ||
	       strcmp(cs, "ascii") == 0;
}

/* Append s[len] in charset cs (lowercase) to out as UTF-8, at most max
 * bytes of output; an unknown charset is copied as is, an invalid byte
 * becomes U+FFFD. 0 or -1 (ENOMEM). */
static int to_utf8(const char *cs, const char *s, size_t len, struct buf *out,
                   size_t max)
{
	iconv_t cd;
	char *in = (char *)s;
	size_t inleft = len;

	if (out->len >= max)
		return 0;
	if (len > max - out->len && charset_is_utf8(cs))
		len = max - out->len;
	if (charset_is_utf8(cs) ||
	    (cd = iconv_open("UTF-8", iconv_name(cs))) == (iconv_t)-1)
		return buf_append(out, s, len < max - out->len ? len : max - out->len);
	while (inleft > 0 && out->len < max) {
		size_t room, before;
		char *o;

		if (buf_reserve(out, inleft * 2 + 16) < 0) {
			iconv_close(cd);
			return -1;
		}
		room = out->cap - out->len - 1;
		o = out->data + out->len;
		before = room;
		if (iconv(cd, &in, &inleft, &o, &room) == (size_t)-1) {
			out->len += before - room;
			if (errno == EILSEQ) {
				in++;
				inleft--;
				if (buf_puts(out, "\xef\xbf\xbd") < 0) {
					iconv_close(cd);
					return -1;
				}
				continue;
			}
			if (errno == E2BIG)
				continue;
			break; /* EINVAL: an incomplete sequence at the end */
		}
		out->len += before - room;
	}
	if (out->len > max) {
		/* back to a character boundary */
		out->len = max;
		while (out->len > 0 && ((unsigned char)out->data[out->len] & 0xc0) == 0x80)
			out->len--;
	}
	if (out->data != NULL)
		out->data[out->len] = '\0';
	iconv_close(cd);
	return 0;
}

/* ---- RFC 2047 encoded words ---- */

/* Decode the encoded words of an unfolded header value s into out (reset
 * first), UTF-8; blanks between two encoded words vanish (RFC 2047 6.2). */
static int rfc2047_decode(const char *s, struct buf *out, size_t max)
{
	struct buf raw = { 0 };
	const char *p = s, *gap = NULL;
	size_t gaplen = 0;
	int rc = 0;

	buf_reset(out);
	if (buf_reserve(out, 1) < 0)
		return -1;
	while (*p != '\0' && rc == 0) {
		const char *cs, *q, *txt, *eow;
		char csname[41], enc;

		if (!(p[0] == '=' && p[1] == '?')) {
			/* a run of blanks is held back: it vanishes between words */
			if (is_ws((unsigned char)*p)) {
				if (gap == NULL)
					gap = p;
				gaplen++;
				p++;
				continue;
			}
			if (gap != NULL) {
				rc |= buf_append(out, gap, gaplen);
				gap = NULL;
				gaplen = 0;
			}
			rc |= buf_putc(out, *p++);
			continue;
		}
		cs = p + 2;
		q = strchr(cs, '?');
		if (q == NULL || q[1] == '\0' || q[2] != '?' ||
		    (txt = q + 3, eow = strstr(txt, "?=")) == NULL ||
		    (size_t)(q - cs) >= sizeof(csname) || memchr(cs, ' ', (size_t)(q - cs))) {
			if (gap != NULL) {
				rc |= buf_append(out, gap, gaplen);
				gap = NULL;
				gaplen = 0;
			}
			rc |= buf_putc(out, *p++);
			continue;
		}
		copy_to(csname, sizeof(csname), cs, (size_t)(q - cs), 1);
		if (strchr(csname, '*') != NULL)   /* RFC 2231 language */
			*strchr(csname, '*') = '\0';
		enc = (char)lc((unsigned char)q[1]);
		buf_reset(&raw);
		if (enc == 'b') {
			rc |= b64_decode(txt, (size_t)(eow - txt), &raw);
		} else if (enc == 'q') {
			for (const char *t = txt; t < eow && rc == 0; t++) {
				int h1 = t + 1 < eow ? hex_val((unsigned char)t[1]) : -1;
				int h2 = t + 2 < eow ? hex_val((unsigned char)t[2]) : -1;
				if (*t == '_') {
					rc |= buf_putc(&raw, ' ');
				} else if (*t == '=' && h1 >= 0 && h2 >= 0) {
					rc |= buf_putc(&raw, (char)(h1 << 4 | h2));
					t += 2;
				} else {
					rc |= buf_putc(&raw, *t);
				}
			}
		} else {
			rc |= buf_putc(out, *p++);
			continue;
		}
		gap = NULL;    /* blanks between encoded words go */
		gaplen = 0;
		if (rc == 0 && raw.len > 0)
			rc |= to_utf8(csname, raw.data, raw.len, out, max);
		p = eow + 2;
	}
	if (gap != NULL)
		rc |= buf_append(out, gap, gaplen);
	buf_free(&raw);
	return rc ? -1 : 0;
}

/* ---- HTML to text ---- */

/* Append the UTF-8 encoding of code point cp. */
static int put_utf8(struct buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* The text of HTML s[len] (UTF-8) appended to out: tags dropped, block
 * ends as line ends, script/style skipped, common entities decoded. */
static int html_to_text(const char *s, size_t len, struct buf *out, size_t max)
{
	static const char *const breaks[] = {
		"br", "/p", "p", "/div", "div", "/tr", "/li", "li", "/h1", "/h2",
		"/h3", "/h4", "/table", "hr", "/title",
	};
	const char *e = s + len;
	int rc = 0;

	while (s < e && out->len < max && rc == 0) {
		if (*s == '<') {
			const char *t = s + 1, *gt;
			size_t n = 0;
			while (t + n < e && (t[n] == '/' || (lc((unsigned char)t[n]) >= 'a' &&
			                                      lc((unsigned char)t[n]) <= 'z') ||
			                     is_digit((unsigned char)t[n])))
				n++;
			if (ci_eq(t, n, "script") || ci_eq(t, n, "style")) {
				const char *close = ci_find(t, (size_t)(e - t),
				                            ci_eq(t, n, "script") ? "</script" : "</style");
				s = close != NULL ? close + 2 : e;
				continue;
			}
			if (n >= 3 && t[0] == '!' && t + 2 < e && t[1] == '-' && t[2] == '-') {
				const char *close = ci_find(t, (size_t)(e - t), "-->");
				s = close != NULL ? close + 3 : e;
				continue;
			}
			for (size_t i = 0; i < sizeof(breaks) / sizeof(*breaks); i++)
				if (ci_eq(t, n, breaks[i])) {
					rc |= buf_putc(out, '\n');
					break;
				}
			if (ci_eq(t, n, "td") || ci_eq(t, n, "/td") || ci_eq(t, n, "th"))
				rc |= buf_putc(out, ' ');
			gt = memchr(s, '>', (size_t)(e - s));
			s = gt != NULL ? gt + 1 : e;
			continue;
		}
		if (*s == '&') {
			const char *semi = memchr(s, ';', (size_t)(e - s) < 12 ? (size_t)(e - s) : 12);
			if (semi != NULL) {
				const char *nm = s + 1;
				size_t nl = (size_t)(semi - nm);
				unsigned long cp = 0;
				int ok = 1;
				if (nl > 1 && nm[0] == '#') {
					char *end;
					char num[12];
					copy_to(num, sizeof(num), nm + 1, nl - 1, 0);
					cp = (num[0] == 'x' || num[0] == 'X') ? strtoul(num + 1, &end, 16)
					                                       : strtoul(num, &end, 10);
					ok = *end == '\0' && end != num;
				} else if (ci_eq(nm, nl, "nbsp")) {
					cp = ' ';
				} else if (ci_eq(nm, nl, "lt")) {
					cp = '<';
				} else if (ci_eq(nm, nl, "gt")) {
					cp = '>';
				} else if (ci_eq(nm, nl, "amp")) {
					cp = '&';
				} else if (ci_eq(nm, nl, "quot")) {
					cp = '"';
				} else if (ci_eq(nm, nl, "apos")) {
					cp = '\'';
				} else {
					ok = 0;
				}
				if (ok) {
					rc |= put_utf8(out, cp);
					s = semi + 1;
					continue;
				}
			}
		}
		if (*s == '\r' || *s == '\n' || *s == '\t')
			rc |= buf_putc(out, ' ');
		else
			rc |= buf_putc(out, *s);
		s++;
	}
	return rc ? -1 : 0;
}

/* ---- addresses ---- */

/* RFC 5322 atext plus '.' (local parts). */
static int is_local_ch(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       is_digit(ch) || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", ch));
}

/* Domain characters: ASCII only, as MTAs report the envelope (punycode);
 * Chinese text often runs straight on after an address. */
static int is_domain_ch(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       is_digit(ch) || ch == '-' || ch == '.';
}

/*
 * The first address (local@domain.tld) in s[len]: 1 with its offset and
 * length, else 0. The local part may not start with a quote or '.', the
 * domain needs a dot; trailing dots are dropped.
 */
static int addr_find(const char *s, size_t len, size_t *off, size_t *alen)
{
	for (size_t at = 0; at < len; at++) {
		size_t b, e;
		int dot = 0;

		if (s[at] != '@')
			continue;
		b = at;
		while (b > 0 && is_local_ch((unsigned char)s[b - 1]))
			b--;
		while (b < at && (s[b] == '.' || s[b] == '\''))
			b++;
		e = at + 1;
		while (e < len && is_domain_ch((unsigned char)s[e])) {
			if (s[e] == '.')
				dot = 1;
			e++;
		}
		while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-'))
			e--;
		if (b == at || e == at + 1 || !dot || s[e - 1] == '.')
			continue;
		if (memchr(s + at + 1, '.', e - at - 1) == NULL)
			continue;
		*off = b;
		*alen = e - b;
		return 1;
	}
	return 0;
}

/* The address of a single-address field ("rfc822; a@b", "<a@b>",
 * "a@b (comment)"), in the arena; NULL when there is none. */
static const char *field_addr(struct ctx *c, const char *v)
{
	size_t len, off, alen;
	const char *semi, *lt;

	if (v == NULL)
		return NULL;
	len = strlen(v);
	semi = memchr(v, ';', len);
	lt = memchr(v, '<', len);
	if (semi != NULL && (lt == NULL || semi < lt)) {
		len -= (size_t)(semi + 1 - v);
		v = semi + 1;
	}
	if (!addr_find(v, len, &off, &alen))
		return NULL;
	return arena_strndup(c, v + off, alen);
}

/* The Message-ID in v ("<id@host>" or bare), without brackets. */
static const char *field_msgid(struct ctx *c, const char *v)
{
	const char *lt, *gt;
	size_t len;

	if (v == NULL)
		return NULL;
	lt = strchr(v, '<');
	if (lt != NULL && (gt = strchr(lt, '>')) != NULL && gt > lt + 1)
		return arena_strndup(c, lt + 1, (size_t)(gt - lt - 1));
	len = strlen(v);
	v = trim(v, &len);
	for (size_t i = 0; i < len; i++)
		if (is_ws((unsigned char)v[i]) || v[i] == '(') {
			len = i;
			break;
		}
	return len > 0 ? arena_strndup(c, v, len) : NULL;
}

/* Add s[len] to a list of addresses unless already there (ASCII case
 * ignored) or the list is full. */
static void list_add(struct ctx *c, const char ***list, size_t *n,
                     size_t *cap, const char *s, size_t len)
{
	const char *copy;

	for (size_t i = 0; i < *n; i++)
		if (ci_eq(s, len, (*list)[i]))
			return;
	if (*n >= c->lim->max_addrs) {
		c->r->damaged = 1;
		return;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		const char **p = realloc(*list, nc * sizeof(*p));
		if (p == NULL) {
			c->oom = 1;
			return;
		}
		*list = p;
		*cap = nc;
	}
	if ((copy = arena_strndup(c, s, len)) != NULL)
		(*list)[(*n)++] = copy;
}

/* Every address of the fields called name (all occurrences) into list. */
static void list_from_fields(struct ctx *c, const struct hdrs *h,
                             const char *name, const char ***list, size_t *n,
                             size_t *cap)
{
	const struct hfield *f;
	struct buf b = { 0 };

	for (size_t i = 0; (f = hget(h, name, i)) != NULL; i++) {
		size_t pos = 0, off, alen;
		if (hval_buf(c, f, 0, &b) < 0) {
			c->oom = 1;
			break;
		}
		while (b.data != NULL && pos < b.len &&
		       addr_find(b.data + pos, b.len - pos, &off, &alen)) {
			list_add(c, list, n, cap, b.data + pos + off, alen);
			pos += off + alen;
		}
	}
	buf_free(&b);
}

/* ---- status codes and replies ---- */

/* Length of an RFC 3463 code "C.SSS.DDD" at s[len] (class 2, 4 or 5)
 * followed by a non-digit, non-dot; 0 when none. */
static size_t enhanced_len(const char *s, size_t len)
{
	size_t i = 2;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		while (i < len && is_digit((unsigned char)s[i]) && n < 3) {
			i++;
			n++;
		}
		if (n == 0 || (i < len && is_digit((unsigned char)s[i])))
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && (s[i] == '.' || (lc((unsigned char)s[i]) >= 'a' &&
	                                lc((unsigned char)s[i]) <= 'z')))
		return 0;
	return i;
}

/* 3 when s[len] starts with a reply code 2xx-5xx followed by '-', a blank
 * or the end; else 0. */
static size_t code_len(const char *s, size_t len)
{
	if (len < 3 || s[0] < '2' || s[0] > '5' || !is_digit((unsigned char)s[1]) ||
	    !is_digit((unsigned char)s[2]))
		return 0;
	if (len > 3 && s[3] != '-' && !is_ws((unsigned char)s[3]))
		return 0;
	return 3;
}

void dsn_split_reply(const char *s, int *code, char enhanced[DSN_CODE_MAX],
                     char *text, size_t textlen)
{
	char first_code[4] = "";
	size_t o = 0;
	int first = 1;

	*code = 0;
	enhanced[0] = '\0';
	if (textlen > 0)
		text[0] = '\0';
	while (s != NULL && *s != '\0') {
		const char *nl = strchr(s, '\n');
		size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s), n;
		const char *l = trim(s, &len);

		s = nl != NULL ? nl + 1 : s + strlen(s);
		if (len == 0)
			continue;
		n = code_len(l, len);
		if (n > 0 && (first || memcmp(l, first_code, 3) == 0)) {
			if (first) {
				memcpy(first_code, l, 3);
				*code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
			}
			n += n < len;
			l += n;
			len -= n;
			l = trim(l, &len);
		}
		n = enhanced_len(l, len);
		if (n > 0 && n < DSN_CODE_MAX &&
		    (first || (strlen(enhanced) == n && memcmp(l, enhanced, n) == 0))) {
			if (first) {
				memcpy(enhanced, l, n);
				enhanced[n] = '\0';
			}
			l += n;
			len -= n;
			l = trim(l, &len);
		}
		first = 0;
		if (len == 0 || textlen == 0)
			continue;
		if (o > 0 && o + 1 < textlen)
			text[o++] = ' ';
		if (o + len >= textlen)
			len = textlen - 1 - o;
		memcpy(text + o, l, len);
		o += len;
		text[o] = '\0';
	}
}

/* ---- dates ---- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

/* Read a decimal number of at most max digits at *s. -1 when none. */
static long read_num(const char **s, int max)
{
	long v = 0;
	int n = 0;

	while (is_digit((unsigned char)**s) && n < max) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	return n > 0 ? v : -1;
}

int dsn_parse_date(const char *s, time_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct { const char *name; int min; } zones[] = {
		{ "ut", 0 }, { "gmt", 0 }, { "z", 0 }, { "utc", 0 },
		{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
		{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
	};
	long day, year, hh, mm, ss = 0;
	int mon = -1, zone = 0;
	const char *p = s;

	if (s == NULL)
		return -1;
	while (is_ws((unsigned char)*p))
		p++;
	if (!is_digit((unsigned char)*p)) {   /* day name */
		const char *comma = strchr(p, ',');
		if (comma == NULL || comma - p > 12)
			return -1;
		p = comma + 1;
	}
	while (is_ws((unsigned char)*p))
		p++;
	if ((day = read_num(&p, 2)) < 1 || day > 31)
		return -1;
	while (is_ws((unsigned char)*p) || *p == '-')
		p++;
	for (int i = 0; i < 12; i++)
		if (lc((unsigned char)p[0]) == months[i * 3] && p[0] != '\0' &&
		    lc((unsigned char)p[1]) == months[i * 3 + 1] && p[1] != '\0' &&
		    lc((unsigned char)p[2]) == months[i * 3 + 2])
			mon = i + 1;
	if (mon < 0)
		return -1;
	p += 3;
	while (*p != '\0' && !is_ws((unsigned char)*p) && *p != '-')
		p++;    /* "June", "Sept" */
	while (is_ws((unsigned char)*p) || *p == '-')
		p++;
	if ((year = read_num(&p, 4)) < 0)
		return -1;
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;   /* RFC 5322 4.3: 2- and 3-digit years */
	while (is_ws((unsigned char)*p))
		p++;
	if ((hh = read_num(&p, 2)) < 0 || hh > 23 || *p++ != ':' ||
	    (mm = read_num(&p, 2)) < 0 || mm > 59)
		return -1;
	if (*p == ':' && (p++, (ss = read_num(&p, 2)) < 0 || ss > 60))
		return -1;
	while (is_ws((unsigned char)*p))
		p++;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		const char *z = p + 1;
		long v = read_num(&z, 4);
		if (v < 0 || z - p != 5)
			return -1;
		zone = sign * (int)(v / 100 * 60 + v % 100);
	} else if (*p != '\0') {
		size_t n = 0;
		while (p[n] != '\0' && lc((unsigned char)p[n]) >= 'a' && lc((unsigned char)p[n]) <= 'z')
			n++;
		for (size_t i = 0; i < sizeof(zones) / sizeof(*zones); i++)
			if (ci_eq(p, n, zones[i].name))
				zone = zones[i].min;
	}
	*t = (time_t)((days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400L) +
	              hh * 3600 + mm * 60 + ss - zone * 60L);
	return 0;
}

/* ---- report building ---- */

/* A new zeroed recipient, or NULL when the limit is reached. */
static struct dsn_rcpt *rcpt_new(struct ctx *c)
{
	struct dsn_report *r = c->r;

	if (r->nrcpts >= c->lim->max_rcpts) {
		r->damaged = 1;
		return NULL;
	}
	if (r->nrcpts == c->rcpt_cap) {
		size_t nc = c->rcpt_cap ? c->rcpt_cap * 2 : 4;
		struct dsn_rcpt *p = realloc(r->rcpts, nc * sizeof(*p));
		if (p == NULL) {
			c->oom = 1;
			return NULL;
		}
		r->rcpts = p;
		c->rcpt_cap = nc;
	}
	memset(&r->rcpts[r->nrcpts], 0, sizeof(r->rcpts[0]));
	r->rcpts[r->nrcpts].text = "";
	return &r->rcpts[r->nrcpts++];
}

/* The value after "type;" (Remote-MTA: "dns; mx.example"), trimmed. */
static const char *after_type(struct ctx *c, const char *v)
{
	const char *semi;
	size_t len;

	if (v == NULL)
		return NULL;
	semi = strchr(v, ';');
	if (semi != NULL)
		v = semi + 1;
	len = strlen(v);
	v = trim(v, &len);
	return len > 0 ? arena_strndup(c, v, len) : NULL;
}

/* Status "5.1.1 (comment)" -> "5.1.1" when valid. */
static void status_copy(char out[DSN_CODE_MAX], const char *v)
{
	size_t len, n;

	out[0] = '\0';
	if (v == NULL)
		return;
	len = strlen(v);
	v = trim(v, &len);
	n = enhanced_len(v, len);
	if (n > 0 && n < DSN_CODE_MAX) {
		memcpy(out, v, n);
		out[n] = '\0';
	}
}

/* An Action value ("failed", "delayed (comment)", ...). */
static enum dsn_action action_parse(const char *v)
{
	static const struct { const char *name; enum dsn_action a; } names[] = {
		{ "failed", DSN_ACTION_FAILED }, { "delayed", DSN_ACTION_DELAYED },
		{ "delivered", DSN_ACTION_DELIVERED }, { "relayed", DSN_ACTION_RELAYED },
		{ "expanded", DSN_ACTION_EXPANDED },
	};
	size_t n = 0;

	if (v == NULL)
		return DSN_ACTION_NONE;
	while (v[n] != '\0' && !is_ws((unsigned char)v[n]) && v[n] != '(' && v[n] != ';')
		n++;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (ci_eq(v, n, names[i].name))
			return names[i].a;
	return DSN_ACTION_NONE;
}

/* Fill codes, text and status of x from a reply (lines separated by LF). */
static void rcpt_set_reply(struct ctx *c, struct dsn_rcpt *x, const char *reply)
{
	size_t cap = strlen(reply) + 1;
	char *text = arena_alloc(c, cap);

	if (text == NULL)
		return;
	dsn_split_reply(reply, &x->code, x->enhanced, text, cap);
	sanitize(text, strlen(text));
	x->text = text;
	if (x->status[0] == '\0' && x->enhanced[0] != '\0')
		memcpy(x->status, x->enhanced, DSN_CODE_MAX);
	if (x->status[0] == '\0' && x->code >= 400 && x->code <= 599)
		snprintf(x->status, DSN_CODE_MAX, "%d.0.0", x->code / 100);
}

/* The recipient fields of one delivery-status block (RFC 3464 2.3). */
static void ds_rcpt(struct ctx *c, const struct hdrs *h)
{
	struct dsn_rcpt *x = rcpt_new(c);
	const struct hfield *f;
	struct buf b = { 0 };

	if (x == NULL)
		return;
	x->final_rcpt = field_addr(c, hval(c, h, "Final-Recipient"));
	x->orig_rcpt = field_addr(c, hval(c, h, "Original-Recipient"));
	if (x->final_rcpt == NULL) /* Exchange's X-Display-Name neighbours */
		x->final_rcpt = field_addr(c, hval(c, h, "X-Actual-Recipient"));
	x->action = action_parse(hval(c, h, "Action"));
	status_copy(x->status, hval(c, h, "Status"));
	if ((x->remote_mta = after_type(c, hval(c, h, "Remote-MTA"))) != NULL) {
		/* "mx.example. (192.0.2.1, the server for ...)": the host */
		char *m = (char *)x->remote_mta;
		size_t n = strcspn(m, " \t(");
		while (n > 0 && m[n - 1] == '.')
			n--;
		m[n] = '\0';
	}
	if ((f = hget(h, "Diagnostic-Code", 0)) != NULL && hval_buf(c, f, 1, &b) < 0)
		c->oom = 1;
	else if (f != NULL && b.len > 0) {
		const char *v = b.data, *semi = strchr(v, ';');
		size_t tl = semi != NULL ? (size_t)(semi - v) : 0;
		/* "smtp; 550 ...": the type is a short word before ';' */
		if (semi != NULL && tl > 0 && tl < 20 && memchr(v, ' ', tl) == NULL)
			v = semi + 1;
		rcpt_set_reply(c, x, v);
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\n')
				b.data[i] = ' ';
		x->diagnostic = arena_strndup(c, b.data, b.len);
	}
	buf_free(&b);
	/* Action missing: the Status class says it (RFC 3464 requires
	 * Action; some gateways forget it). */
	if (x->action == DSN_ACTION_NONE)
		x->action = x->status[0] == '5' ? DSN_ACTION_FAILED
		          : x->status[0] == '4' ? DSN_ACTION_DELAYED
		          : x->status[0] == '2' ? DSN_ACTION_DELIVERED
		          : DSN_ACTION_FAILED;
}

/* Read a message/delivery-status body: the per-message block, then one
 * block per recipient, separated by blank lines. */
static void parse_delivery_status(struct ctx *c, const char *p, size_t len)
{
	const char *end = p + len;
	struct hdrs *h = malloc(sizeof(*h));

	if (h == NULL) {
		c->oom = 1;
		return;
	}
	c->have_ds = 1;
	while (p < end && !c->oom) {
		const char *next;
		size_t ll;

		line_next(p, end, &ll);
		if (ll == 0 || (trim(p, &ll), ll == 0)) {  /* blank lines between */
			p = line_next(p, end, &ll);
			continue;
		}
		next = parse_headers(p, end, h);
		if (h->n == 0) {   /* not a field: skip the line */
			c->r->damaged = 1;
			p = line_next(p, end, &ll);
			continue;
		}
		p = next;
		if (c->r->reporting_mta == NULL)
			c->r->reporting_mta = after_type(c, hval(c, h, "Reporting-MTA"));
		if (c->r->orig_message_id == NULL)   /* Gmail */
			c->r->orig_message_id = field_msgid(c, hval(c, h, "X-Original-Message-ID"));
		if (hget(h, "Final-Recipient", 0) || hget(h, "Original-Recipient", 0) ||
		    hget(h, "Action", 0) || hget(h, "Status", 0))
			ds_rcpt(c, h);
	}
	free(h);
}

/* Read a message/feedback-report body (RFC 5965 3.1). */
static void parse_feedback(struct ctx *c, const char *p, size_t len)
{
	struct hdrs *h = malloc(sizeof(*h));
	const char *v, *end = p + len;
	const struct hfield *f;
	struct buf b = { 0 };
	size_t ll;

	if (h == NULL) {
		c->oom = 1;
		return;
	}
	c->have_fb = 1;
	while (p < end && (line_next(p, end, &ll), trim(p, &ll), ll == 0))
		p = line_next(p, end, &ll);
	parse_headers(p, end, h);
	if ((v = hval(c, h, "Feedback-Type")) != NULL && c->r->feedback_type == NULL) {
		size_t n = 0;
		char *t;
		while (v[n] != '\0' && !is_ws((unsigned char)v[n]) && v[n] != ';')
			n++;
		if ((t = (char *)arena_strndup(c, v, n)) != NULL) {
			for (char *q = t; *q; q++)
				*q = (char)lc((unsigned char)*q);
			c->r->feedback_type = t;
		}
	}
	if (c->r->reporting_mta == NULL)
		c->r->reporting_mta = after_type(c, hval(c, h, "Reporting-MTA"));
	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass == 0 ? "Original-Rcpt-To" : "Removal-Recipient";
		for (size_t i = 0; (f = hget(h, name, i)) != NULL; i++) {
			struct dsn_rcpt *x;
			const char *a;
			if (hval_buf(c, f, 0, &b) < 0) {
				c->oom = 1;
				break;
			}
			if ((a = field_addr(c, b.data)) == NULL || (x = rcpt_new(c)) == NULL)
				continue;
			x->final_rcpt = a;
		}
	}
	buf_free(&b);
	free(h);
}

/* Read the header of the original message (the first one found). */
static void parse_original(struct ctx *c, const char *p, size_t len)
{
	struct hdrs *h;
	const char *end = p + len;
	size_t ll, cap = 0;

	if (c->r->has_original)
		return;
	while (p < end && (line_next(p, end, &ll), trim(p, &ll), ll == 0))
		p = line_next(p, end, &ll);
	if (p >= end)
		return;
	if ((h = malloc(sizeof(*h))) == NULL) {
		c->oom = 1;
		return;
	}
	parse_headers(p, end, h);
	if (h->n > 0) {
		c->r->has_original = 1;
		c->r->orig_message_id = field_msgid(c, hval(c, h, "Message-ID"));
		list_from_fields(c, h, "To", &c->r->orig_to, &c->r->norig_to, &cap);
		c->r->orig_return_path = field_addr(c, hval(c, h, "Return-Path"));
		c->r->orig_list_unsubscribe = hval(c, h, "List-Unsubscribe");
	}
	free(h);
}

/* ---- the MIME walk ---- */

static void walk_entity(struct ctx *c, const char *p, size_t len, unsigned depth);

/* Split a multipart body at its delimiter lines (RFC 2046 5.1.1) and walk
 * each part. */
static void walk_multipart(struct ctx *c, const char *body, size_t blen,
                           const char *boundary, unsigned depth)
{
	const char *p = body, *end = body + blen, *part = NULL;
	size_t bl = strlen(boundary);
	int closed = 0;

	while (p < end && !c->oom && c->parts <= c->lim->max_parts) {
		size_t len;
		const char *next = line_next(p, end, &len);

		if (len >= bl + 2 && p[0] == '-' && p[1] == '-' &&
		    memcmp(p + 2, boundary, bl) == 0) {
			const char *rest = p + 2 + bl;
			size_t rl = len - 2 - bl;
			int close = rl >= 2 && rest[0] == '-' && rest[1] == '-';
			if (close) {
				rest += 2;
				rl -= 2;
			}
			/* only blanks may follow: "--abc" is not "--abcd" */
			if ((trim(rest, &rl), rl == 0)) {
				if (part != NULL) {
					const char *pe = p;
					/* the line end before the delimiter is part of it */
					if (pe > part && pe[-1] == '\n')
						pe--;
					if (pe > part && pe[-1] == '\r')
						pe--;
					walk_entity(c, part, (size_t)(pe - part), depth + 1);
				}
				if (close) {
					closed = 1;
					break;
				}
				part = next;
			}
		}
		p = next;
	}
	if (part == NULL || !closed) {
		c->r->damaged = 1;     /* no delimiter, or no close delimiter */
		if (part != NULL && part < end && !closed && !c->oom &&
		    c->parts <= c->lim->max_parts)
			walk_entity(c, part, (size_t)(end - part), depth + 1);
	}
}

/* Add a text part's content (decoded, UTF-8) to the explanation. */
static void add_text(struct ctx *c, const struct ctype *ct, const char *s,
                     size_t len)
{
	int html = strcmp(ct->type, "text/html") == 0;
	struct buf *dst = html ? &c->html : &c->text;
	struct buf u = { 0 };

	if (dst->len >= c->lim->max_text)
		return;
	if (!html) {
		if (to_utf8(ct->charset, s, len, dst, c->lim->max_text) < 0 ||
		    buf_putc(dst, '\n') < 0)
			c->oom = 1;
		return;
	}
	if (to_utf8(ct->charset, s, len, &u, c->lim->max_text * 4) < 0 ||
	    (u.len > 0 && html_to_text(u.data, u.len, dst, c->lim->max_text) < 0) ||
	    buf_putc(dst, '\n') < 0)
		c->oom = 1;
	buf_free(&u);
}

/* Walk an entity's body given its parsed header. */
static void walk_body(struct ctx *c, const struct hdrs *h, const char *body,
                      size_t blen, unsigned depth)
{
	const struct hfield *f = hget(h, "Content-Type", 0);
	struct ctype ct;
	struct buf dec = { 0 };
	enum cte cte = parse_cte(h);
	const char *t;
	int kind = 0;   /* what reads the part: 1 status, 2 feedback, 3
	                   original, 4 text, 0 nothing */

	if (++c->parts > c->lim->max_parts || depth > c->lim->max_depth) {
		c->r->damaged = 1;
		return;
	}
	parse_ctype(f ? f->val : NULL, f ? f->vlen : 0, &ct);
	t = ct.type;
	if (strncmp(t, "multipart/", 10) == 0) {
		if (strcmp(t, "multipart/report") == 0 && c->report_type[0] == '\0')
			snprintf(c->report_type, sizeof(c->report_type), "%s",
			         ct.report_type[0] ? ct.report_type : "unknown");
		if (ct.boundary[0] == '\0') {
			c->r->damaged = 1;
			return;
		}
		walk_multipart(c, body, blen, ct.boundary, depth);
		return;
	}
	if (strcmp(t, "message/delivery-status") == 0 ||
	    strcmp(t, "message/global-delivery-status") == 0)
		kind = 1;
	else if (strcmp(t, "message/feedback-report") == 0)
		kind = 2;
	else if (strcmp(t, "message/rfc822") == 0 || strcmp(t, "message/global") == 0 ||
	         strcmp(t, "text/rfc822-headers") == 0 ||
	         strcmp(t, "message/rfc822-headers") == 0 ||
	         strcmp(t, "message/global-headers") == 0)
		kind = 3;
	else if (strcmp(t, "text/plain") == 0 || strcmp(t, "text/html") == 0)
		kind = c->text.len + c->html.len < 2 * c->lim->max_text ? 4 : 0;
	if (kind == 0)
		return;   /* attachments and the like: not decoded at all */
	if (decode_body(cte, body, blen, &dec) < 0) {
		c->oom = 1;
		buf_free(&dec);
		return;
	}
	if (dec.data != NULL) {
		if (kind == 1)
			parse_delivery_status(c, dec.data, dec.len);
		else if (kind == 2)
			parse_feedback(c, dec.data, dec.len);
		else if (kind == 3)
			parse_original(c, dec.data, dec.len);
		else
			add_text(c, &ct, dec.data, dec.len);
	}
	buf_free(&dec);
}

/* Parse the header of the entity at p, then walk its body. */
static void walk_entity(struct ctx *c, const char *p, size_t len, unsigned depth)
{
	struct hdrs *h = malloc(sizeof(*h));
	const char *body;

	if (h == NULL) {
		c->oom = 1;
		return;
	}
	body = parse_headers(p, p + len, h);
	walk_body(c, h, body, (size_t)(p + len - body), depth);
	free(h);
}

/* ---- text bounces ---- */

/* Phrases of the subject or From that make a message a bounce. */
static const char *const bounce_subjects[] = {
	"undeliver", "delivery status notification", "delivery failure",
	"delivery failed", "failure notice", "returned mail", "mail delivery failed",
	"delivery has failed", "could not be delivered", "non remis",
	"unzustellbar", "nicht zustellbar", "delivery delayed", "delayed mail",
	"warning: could not send", "mail system error", "returned to sender",
	"系统退信", "退信", "未能送达", "无法送达", "投递失败", "发送失败",
	"邮件延迟", "延迟投递",
};

/* Lines where the explanation stops and a copy of the original begins. */
static const char *const orig_separators[] = {
	"--- Below this line is a copy of the message",
	"--- Below the next line is a copy of the message",
	"--- Enclosed are the original headers of the message",
	"------ This is a copy of the message",
	"----- Original message -----",
	"----- Original Message -----",
	"Original message headers:",
	"Original Message Headers",
	"--- Original message follows",
	"----- Original message follows",
	"Original message follows.",
	"----- 原始邮件 -----",
	"原邮件信息",
	"以下是原邮件",
};

/* Quoted header lines that mean the original's header starts here. */
static const char *const orig_field_starts[] = {
	"Received: ", "Return-Path: ", "DKIM-Signature: ", "Message-ID: ",
	"Message-Id: ",
};

/* Phrases that put the failed address after them on the same line. */
static const char *const addr_leads[] = {
	"wasn't delivered to ", "was not delivered to ", "could not be delivered to ",
	"couldn't be delivered to ", "Recipient Address:", "Failed Recipient:",
	"Delivery to the following recipient failed: ", "收件人：", "收件人:",
	"收信人：", "收件人地址：", "无法发送到", "不能发送到", "发送到",
	"投递到", "failed to deliver to ",
};

/* Phrases of a warning about a delay, not a failure. */
static const char *const delay_phrases[] = {
	"has been delayed", "not yet been delivered", "will continue to try",
	"will retry", "will keep trying", "still trying", "this is a warning only",
	"delivery status notification (delay)", "delivery delayed", "delayed mail",
	"warning: could not send", "邮件延迟", "延迟投递", "暂时无法投递",
};

/* Phrases that say the failure is final (they beat a delay phrase). */
static const char *const final_phrases[] = {
	"failed permanently", "permanent error", "permanent failure",
	"i'm not going to try again", "giving up", "given up", "has failed",
	"could not be delivered", "wasn't delivered", "couldn't be delivered",
	"undeliverable",
};

/* Index of the first of n phrases found in s[len] (ASCII case ignored),
 * or -1. */
static int find_any(const char *s, size_t len, const char *const *ph, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ci_find(s, len, ph[i]) != NULL)
			return (int)i;
	return -1;
}

#define NELEM(a) (sizeof(a) / sizeof(*(a)))

/* 1 when the address should never be taken for a failed recipient: the
 * reporter's own mailboxes and the address the report was sent to. */
static int addr_ignored(const struct dsn_report *r, const char *a, size_t n)
{
	if (ci_prefix(a, n, "postmaster@") || ci_prefix(a, n, "mailer-daemon@") ||
	    ci_prefix(a, n, "mail-daemon@") || ci_prefix(a, n, "mailer_daemon@"))
		return 1;
	if (r->from != NULL && ci_eq(a, n, r->from))
		return 1;
	for (size_t i = 0; i < r->nto; i++)
		if (ci_eq(a, n, r->to[i]))
			return 1;
	return 0;
}

/*
 * The failed address a line names, if it is one: the line is the address
 * (in <>, quotes, followed by ':', '(', " on DATE", ','), or the address
 * follows a lead phrase. 1 with the address and where the rest of the line
 * starts (for "<a@b>: host x said: 550 ..."), else 0.
 */
static int line_addr(const char *l, size_t len, size_t *off, size_t *alen,
                     size_t *rest)
{
	size_t i = 0, o, n;

	while (i < len && (l[i] == '<' || l[i] == '\'' || l[i] == '"'))
		i++;
	if (addr_find(l + i, len - i, &o, &n) && o == 0) {
		size_t j = i + n;
		while (j < len && (l[j] == '>' || l[j] == '\'' || l[j] == '"'))
			j++;
		if (j == len || l[j] == ':' || l[j] == ',' || l[j] == '(' ||
		    ci_prefix(l + j, len - j, " (") || ci_prefix(l + j, len - j, " on ") ||
		    ci_prefix(l + j, len - j, " <")) {
			*off = i;
			*alen = n;
			*rest = j < len && l[j] == ':' ? j + 1 : j;
			return 1;
		}
	}
	for (size_t k = 0; k < NELEM(addr_leads); k++) {
		const char *p = ci_find(l, len, addr_leads[k]);
		if (p == NULL)
			continue;
		p += strlen(addr_leads[k]);
		if (addr_find(p, (size_t)(l + len - p), &o, &n)) {
			*off = (size_t)(p - l) + o;
			*alen = n;
			*rest = *off + n;
			return 1;
		}
	}
	return 0;
}

/* 1 when the reply code at l[i] may start a reply by what precedes it:
 * the line start, "said: ", "returned '", "#", "(", a quote, or a colon
 * (ASCII or the full-width "：" of Chinese texts), one blank allowed. */
static int reply_lead(const char *l, size_t i)
{
	size_t k = i;

	if (k == 0)
		return 1;
	if (l[k - 1] == '\'' || l[k - 1] == '#' || l[k - 1] == '(' || l[k - 1] == '"')
		return 1;
	if (is_ws((unsigned char)l[k - 1]))
		k--;
	if (k > 0 && l[k - 1] == ':')
		return 1;
	return k >= 3 && memcmp(l + k - 3, "\xef\xbc\x9a", 3) == 0;
}

/*
 * Where an SMTP reply starts in the line, or NULL: a code 2xx-5xx and a
 * blank or '-' followed by an enhanced code (anywhere after a blank), or
 * by a letter, '<', '[' or '#' where reply_lead() allows; or an enhanced
 * code at the line start. "over 500 recipients" in prose is no reply.
 */
static const char *line_reply(const char *l, size_t len)
{
	for (size_t i = 0; i + 3 <= len; i++) {
		const char *a;
		size_t al;

		if (i > 0 && !(is_ws((unsigned char)l[i - 1]) || reply_lead(l, i)))
			continue;
		if (code_len(l + i, len - i) == 0 || i + 4 >= len) {
			if (i == 0 && enhanced_len(l, len) > 0)
				return l;
			continue;
		}
		a = l + i + 4;
		al = len - i - 4;
		if (enhanced_len(a, al) > 0)
			return l + i;
		if (reply_lead(l, i) &&
		    ((lc((unsigned char)a[0]) >= 'a' && lc((unsigned char)a[0]) <= 'z') ||
		     a[0] == '<' || a[0] == '[' || a[0] == '#'))
			return l + i;
	}
	return NULL;
}

struct scan_rcpt {
	struct buf diag;     /* the reply, lines joined by LF */
	struct buf reason;   /* first descriptive line, when no reply */
	char qcode[DSN_CODE_MAX]; /* a qmail "(#5.1.1)" */
};

/* Set the text-bounce recipient x from what the scanner collected. */
static void scan_finish(struct ctx *c, struct dsn_rcpt *x, struct scan_rcpt *s,
                        struct buf *pending, int delayed)
{
	struct buf *d = s->diag.len > 0 ? &s->diag : pending;

	x->action = delayed ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED;
	if (d->len > 0) {
		char *line;
		/* a trailing quote of "returned '550 ...'" is not the reply's */
		while (d->len > 0 && (d->data[d->len - 1] == '\'' || d->data[d->len - 1] == ' '))
			d->data[--d->len] = '\0';
		rcpt_set_reply(c, x, d->data ? d->data : "");
		if ((line = (char *)arena_strndup(c, d->data ? d->data : "", d->len)) != NULL) {
			for (char *q = line; *q; q++)
				if (*q == '\n')
					*q = ' ';
			x->diagnostic = line;
		}
	} else if (s->reason.len > 0) {
		x->text = arena_strndup(c, s->reason.data, s->reason.len);
		x->diagnostic = x->text;
		if (x->text == NULL)
			x->text = "";
	}
	if (x->status[0] == '\0' && s->qcode[0] != '\0')
		memcpy(x->status, s->qcode, DSN_CODE_MAX);
	if (x->enhanced[0] == '\0' && s->qcode[0] != '\0')
		memcpy(x->enhanced, s->qcode, DSN_CODE_MAX);
	/* No code at all: the class the report itself states (a failure
	 * report is permanent, a warning temporary), as RFC 3464 2.3.4
	 * would have it; the category still needs the words. */
	if (x->status[0] == '\0')
		strcpy(x->status, delayed ? "4.0.0" : "5.0.0");
}

/* A qmail-style "(#5.1.1)" in the line into out. */
static void qmail_code(const char *l, size_t len, char out[DSN_CODE_MAX])
{
	const char *p = ci_find(l, len, "(#");
	size_t n;

	if (out[0] != '\0' || p == NULL)
		return;
	p += 2;
	n = enhanced_len(p, (size_t)(l + len - p));
	if (n > 0 && n < DSN_CODE_MAX) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

/* The format a text bounce is in, by its sender and wording. */
static enum dsn_format text_format(const struct ctx *c, const struct hdrs *top,
                                   const char *t, size_t tl)
{
	const char *from = c->r->from ? c->r->from : "";
	const char *dom = strrchr(from, '@');
	size_t dl;
	const struct hfield *f;

	dom = dom ? dom + 1 : "";
	dl = strlen(dom);
	if (ci_eq(dom, dl, "qq.com") || ci_eq(dom, dl, "foxmail.com") ||
	    ci_find(dom, dl, "exmail.qq.com") || ci_eq(dom, dl, "tencent.com"))
		return DSN_FMT_QQ;
	if (ci_eq(dom, dl, "163.com") || ci_eq(dom, dl, "126.com") ||
	    ci_eq(dom, dl, "yeah.net") || ci_eq(dom, dl, "188.com") ||
	    ci_find(dom, dl, "netease.com") || ci_eq(dom, dl, "vip.163.com"))
		return DSN_FMT_NETEASE;
	if (ci_find(t, tl, "qmail-send program") || ci_find(t, tl, "Hi. This is the qmail"))
		return DSN_FMT_QMAIL;
	for (size_t i = 0; (f = hget(top, "Received", i)) != NULL; i++)
		if (ci_find(f->val, f->vlen, "invoked for bounce"))
			return DSN_FMT_QMAIL;
	if (ci_eq(dom, dl, "googlemail.com") || ci_eq(dom, dl, "gmail.com") ||
	    ci_eq(dom, dl, "google.com") ||
	    ci_find(t, tl, "Delivery to the following recipient"))
		return DSN_FMT_GMAIL;
	if (hget(top, "X-MS-Exchange-Message-Is-Ndr", 0) ||
	    ci_find(t, tl, "Diagnostic information for administrators") ||
	    ci_find(t, tl, "Delivery has failed to these recipients") ||
	    ci_find(t, tl, "did not reach some or all of the intended recipients") ||
	    ci_find(t, tl, "Remote Server returned"))
		return DSN_FMT_EXCHANGE;
	if (hget(top, "X-Failed-Recipients", 0) ||
	    ci_find(t, tl, "created automatically by mail delivery software"))
		return DSN_FMT_EXIM;
	if (ci_find(t, tl, "This is the Postfix program") ||
	    ci_find(t, tl, "This is the mail system at host"))
		return DSN_FMT_POSTFIX;
	return DSN_FMT_TEXT;
}

/* Scan the explanation of a text bounce for failed addresses and their
 * replies (the recipients go into the report). */
static void scan_text(struct ctx *c, const struct hdrs *top)
{
	const struct buf *src = c->text.len > 0 ? &c->text : &c->html;
	const char *t = src->data ? src->data : "", *end = t + src->len, *p;
	size_t tl = src->len;
	struct scan_rcpt *sc = NULL;
	struct buf pending = { 0 };
	const struct hfield *f;
	int delayed, cur = -1, in_diag = 0, pending_open = 0, hit;

	/* The copy of the original: after a separator line, or where quoted
	 * header fields begin. */
	for (p = t; p < end; ) {
		size_t len;
		const char *next = line_next(p, end, &len), *l = p;
		size_t tlen = len;
		l = trim(l, &tlen);
		hit = 0;
		for (size_t i = 0; i < NELEM(orig_separators) && !hit; i++)
			hit = ci_prefix(l, tlen, orig_separators[i]);
		if (hit) {
			parse_original(c, next, (size_t)(end - next));
			end = p;
			break;
		}
		for (size_t i = 0; i < NELEM(orig_field_starts); i++)
			if (ci_prefix(p, len, orig_field_starts[i])) {
				parse_original(c, p, (size_t)(end - p));
				end = p;
				break;
			}
		if (end == p)
			break;
		p = next;
	}
	tl = (size_t)(end - t);
	c->r->format = text_format(c, top, t, tl);
	delayed = (find_any(t, tl, delay_phrases, NELEM(delay_phrases)) >= 0 ||
	           (c->r->subject && find_any(c->r->subject, strlen(c->r->subject),
	                                      delay_phrases, NELEM(delay_phrases)) >= 0)) &&
	          find_any(t, tl, final_phrases, NELEM(final_phrases)) < 0;

	/* Exim names them in a field. */
	for (size_t i = 0; (f = hget(top, "X-Failed-Recipients", i)) != NULL; i++) {
		struct buf b = { 0 };
		size_t pos = 0, off, alen;
		if (hval_buf(c, f, 0, &b) < 0) {
			c->oom = 1;
			break;
		}
		while (b.data != NULL && pos < b.len &&
		       addr_find(b.data + pos, b.len - pos, &off, &alen)) {
			struct dsn_rcpt *x = rcpt_new(c);
			if (x != NULL)
				x->final_rcpt = arena_strndup(c, b.data + pos + off, alen);
			pos += off + alen;
		}
		buf_free(&b);
	}
	if ((sc = calloc(c->lim->max_rcpts + 1, sizeof(*sc))) == NULL) {
		c->oom = 1;
		return;
	}
	for (p = t; p < end && !c->oom; ) {
		size_t len, off, alen, rest, n;
		const char *next = line_next(p, end, &len), *l = p, *rp;
		int indented = len > 0 && is_ws((unsigned char)p[0]);

		p = next;
		n = len;
		l = trim(l, &n);
		if (n == 0) {
			in_diag = 0;
			pending_open = 0;
			continue;
		}
		/* an indented line inside a reply continues it, even when it
		 * starts with an address (Postfix folds "said: 550 5.1.1" /
		 * "    <a@b>: Recipient address rejected ...") */
		if (!(indented && in_diag) && line_addr(l, n, &off, &alen, &rest) &&
		    !addr_ignored(c->r, l + off, alen)) {
			int k = -1;
			for (size_t i = 0; i < c->r->nrcpts; i++)
				if (c->r->rcpts[i].final_rcpt != NULL &&
				    ci_eq(l + off, alen, c->r->rcpts[i].final_rcpt))
					k = (int)i;
			if (k < 0) {
				struct dsn_rcpt *x = rcpt_new(c);
				if (x == NULL) {
					/* past max_rcpts: its lines belong to no one */
					cur = -2;
					in_diag = pending_open = 0;
					continue;
				}
				x->final_rcpt = arena_strndup(c, l + off, alen);
				k = (int)(c->r->nrcpts - 1);
			}
			cur = k;
			in_diag = 0;
			pending_open = 0;
			if (rest >= n)
				continue;
			l += rest;   /* "<a@b>: host x said: 550 ..." */
			n -= rest;
			l = trim(l, &n);
			indented = 0;
		}
		if (cur == -2)
			continue;
		if (cur >= 0)
			qmail_code(l, n, sc[cur].qcode);
		rp = line_reply(l, n);
		if (rp != NULL) {
			struct buf *d = cur >= 0 ? &sc[cur].diag : &pending;
			size_t rl = (size_t)(l + n - rp);
			int same = d->len >= 3 && rl >= 3 && memcmp(d->data, rp, 3) == 0;
			if (d->len + rl > REPLY_MAX) {
				in_diag = pending_open = 0;   /* long enough */
			} else if (d->len == 0 || (in_diag && same)) {
				if ((d->len > 0 && buf_putc(d, '\n') < 0) ||
				    buf_append(d, rp, rl) < 0)
					c->oom = 1;
				in_diag = cur >= 0;
				pending_open = cur < 0;
			}
			continue;
		}
		if ((in_diag || pending_open) && indented) {
			struct buf *d = in_diag ? &sc[cur].diag : &pending;
			if (d->len + n + 1 <= REPLY_MAX &&
			    (buf_putc(d, ' ') < 0 || buf_append(d, l, n) < 0))
				c->oom = 1;
			continue;
		}
		in_diag = 0;
		pending_open = 0;
		/* a reason line for recipients without a reply (300: a
		 * sentence, not a pasted message) */
		if (cur >= 0 && sc[cur].reason.len == 0 && sc[cur].diag.len == 0 &&
		    n < 300 && buf_append(&sc[cur].reason, l, n) < 0)
			c->oom = 1;
	}
	for (size_t i = 0; i < c->r->nrcpts && !c->oom; i++)
		scan_finish(c, &c->r->rcpts[i], &sc[i], &pending, delayed);
	for (size_t i = 0; i <= c->lim->max_rcpts; i++) {
		buf_free(&sc[i].diag);
		buf_free(&sc[i].reason);
	}
	free(sc);
	buf_free(&pending);
}

/* ---- auto-replies ---- */

static const char *const auto_subjects[] = {
	"out of office", "out of the office", "automatic reply", "auto reply",
	"autoreply", "auto-reply", "auto response", "autoresponse",
	"auto-response", "vacation", "away from my mail", "abwesenheitsnotiz",
	"réponse automatique", "respuesta automática", "risposta automatica",
	"自动回复", "自動回覆", "自动答复", "自動回復", "自动应答", "自動応答",
	"休假", "不在办公室",
};

/* Why the message is an auto-reply (in the arena), or NULL. */
static const char *auto_reason(struct ctx *c, const struct hdrs *h)
{
	const char *v;
	char why[160];
	int k;

	if ((v = hval(c, h, "Auto-Submitted")) != NULL && !ci_prefix(v, strlen(v), "no")) {
		snprintf(why, sizeof(why), "Auto-Submitted: %.100s", v);
		return arena_strndup(c, why, strlen(why));
	}
	if (hget(h, "X-Autoreply", 0))
		return "X-Autoreply";
	if (hget(h, "X-Autorespond", 0))
		return "X-Autorespond";
	if ((v = hval(c, h, "X-Autogenerated")) != NULL && ci_prefix(v, strlen(v), "reply"))
		return "X-Autogenerated: Reply";
	if ((v = hval(c, h, "Precedence")) != NULL && ci_prefix(v, strlen(v), "auto_reply"))
		return "Precedence: auto_reply";
	if (c->r->subject != NULL &&
	    (k = find_any(c->r->subject, strlen(c->r->subject), auto_subjects,
	                  NELEM(auto_subjects))) >= 0) {
		snprintf(why, sizeof(why), "Subject: %s", auto_subjects[k]);
		return arena_strndup(c, why, strlen(why));
	}
	return NULL;
}

/* 1 when the sender, subject or fields say "bounce". */
static int looks_like_bounce(struct ctx *c, const struct hdrs *h,
                             const char *from_raw)
{
	const char *from = c->r->from ? c->r->from : "";
	size_t fl = strlen(from);

	if (hget(h, "X-Failed-Recipients", 0) || hget(h, "X-MS-Exchange-Message-Is-Ndr", 0))
		return 1;
	if (ci_prefix(from, fl, "mailer-daemon@") || ci_prefix(from, fl, "postmaster@") ||
	    ci_prefix(from, fl, "mail-daemon@") || ci_prefix(from, fl, "mailer_daemon@"))
		return 1;
	if (from_raw != NULL && (ci_find(from_raw, strlen(from_raw), "mail delivery") ||
	                         ci_find(from_raw, strlen(from_raw), "mailer-daemon")))
		return 1;
	if (c->r->subject != NULL &&
	    find_any(c->r->subject, strlen(c->r->subject), bounce_subjects,
	             NELEM(bounce_subjects)) >= 0)
		return 1;
	return 0;
}

/* "Message-ID: <...>" quoted somewhere in the explanation (the original
 * was pasted without a separator we know). */
static void msgid_from_text(struct ctx *c)
{
	const struct buf *src = c->text.len > 0 ? &c->text : &c->html;
	const char *p = src->data, *end = p ? p + src->len : NULL;

	for (; p != NULL && p < end; ) {
		size_t len;
		const char *next = line_next(p, end, &len), *l = p;
		size_t n = len;
		l = trim(l, &n);
		if (ci_prefix(l, n, "Message-ID:")) {
			const char *v = arena_strndup(c, l + 11, n - 11);
			c->r->orig_message_id = field_msgid(c, v);
			return;
		}
		p = next;
	}
}

/* ---- the entry point ---- */

int dsn_parse(const void *msg, size_t len, const struct dsn_limits *lim,
              struct dsn_report *out)
{
	struct dsn_limits def;
	struct ctx c = { 0 };
	struct hdrs *h;
	const char *p = msg, *end, *body, *v, *from_raw;
	size_t cap = 0, ll;
	struct buf b = { 0 };
	int known = 0;

	memset(out, 0, sizeof(*out));
	if (lim == NULL) {
		dsn_limits_default(&def);
		lim = &def;
	}
	c.lim = lim;
	c.r = out;
	if (len > lim->max_bytes) {
		len = lim->max_bytes;
		out->truncated = 1;
	}
	if (p == NULL) {
		p = "";
		len = 0;
	}
	end = p + len;
	if ((h = malloc(sizeof(*h))) == NULL)
		return -1;
	/* an mbox From_ line is not part of the message */
	if (len >= 5 && memcmp(p, "From ", 5) == 0)
		p = line_next(p, end, &ll);
	body = parse_headers(p, end, h);
	for (size_t i = 0; i < h->n; i++) {
		static const char *const names[] = {
			"From", "To", "Subject", "Date", "Message-ID", "Received",
			"Return-Path", "Content-Type", "MIME-Version", "Delivered-To",
			"Sender", "Reply-To", "X-Original-To", "Envelope-To",
		};
		for (size_t k = 0; k < NELEM(names); k++)
			if (ci_eq(h->f[i].name, h->f[i].nlen, names[k]))
				known = 1;
	}
	if (h->n == 0 || !known) {
		out->kind = DSN_KIND_GARBAGE;
		free(h);
		return 0;
	}
	out->message_id = field_msgid(&c, hval(&c, h, "Message-ID"));
	if ((v = hval(&c, h, "Subject")) != NULL) {
		if (rfc2047_decode(v, &b, lim->max_field) == 0)
			out->subject = arena_strndup(&c, b.data ? b.data : "", b.len);
		else
			c.oom = 1;
	}
	from_raw = hval(&c, h, "From");
	out->from = field_addr(&c, from_raw);
	if (dsn_parse_date(hval(&c, h, "Date"), &out->date) < 0)
		out->date = 0;
	{
		static const char *const to_fields[] = {
			"To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To",
			"X-Envelope-To",
		};
		for (size_t i = 0; i < NELEM(to_fields); i++)
			list_from_fields(&c, h, to_fields[i], &out->to, &out->nto, &cap);
	}
	walk_body(&c, h, body, (size_t)(end - body), 0);

	if (c.oom)
		goto oom;
	if (c.have_fb || strcmp(c.report_type, "feedback-report") == 0) {
		out->kind = DSN_KIND_ARF;
		out->format = DSN_FMT_ARF;
	} else if (c.have_ds && out->nrcpts > 0) {
		out->kind = DSN_KIND_DSN;
		out->format = DSN_FMT_RFC3464;
	} else if (strcmp(c.report_type, "disposition-notification") == 0) {
		out->kind = DSN_KIND_OTHER;     /* a read receipt (RFC 8098) */
	} else {
		const char *why = auto_reason(&c, h);
		int bounce = c.have_ds || looks_like_bounce(&c, h, from_raw);
		/* A null sender is what bounces and auto-replies share: it
		 * counts as a bounce only without an auto-reply sign. */
		if (!bounce && why == NULL && (v = hval(&c, h, "Return-Path")) != NULL &&
		    strstr(v, "<>") != NULL)
			bounce = 1;
		if (bounce) {
			scan_text(&c, h);
			if (out->nrcpts == 0 && why != NULL && !c.have_ds) {
				out->kind = DSN_KIND_AUTOREPLY;
				out->auto_reason = why;
				out->format = DSN_FMT_NONE;
			} else {
				out->kind = DSN_KIND_DSN;
			}
		} else if (why != NULL) {
			out->kind = DSN_KIND_AUTOREPLY;
			out->auto_reason = why;
		} else {
			out->kind = DSN_KIND_OTHER;
		}
	}
	if (out->orig_message_id == NULL &&
	    (out->kind == DSN_KIND_DSN || out->kind == DSN_KIND_ARF))
		msgid_from_text(&c);
	if (c.oom)
		goto oom;
	free(h);
	buf_free(&b);
	buf_free(&c.text);
	buf_free(&c.html);
	return 0;
oom:
	free(h);
	buf_free(&b);
	buf_free(&c.text);
	buf_free(&c.html);
	dsn_report_free(out);
	return -1;
}

void dsn_report_free(struct dsn_report *r)
{
	struct dsn_arena *a, *next;

	if (r == NULL)
		return;
	for (a = r->arena; a != NULL; a = next) {
		next = a->next;
		free(a);
	}
	free(r->to);
	free(r->orig_to);
	free(r->rcpts);
	memset(r, 0, sizeof(*r));
}

const char *dsn_kind_name(enum dsn_kind k)
{
	switch (k) {
	case DSN_KIND_DSN:
		return "dsn";
	case DSN_KIND_ARF:
		return "arf";
	case DSN_KIND_AUTOREPLY:
		return "auto-reply";
	case DSN_KIND_GARBAGE:
		return "garbage";
	case DSN_KIND_OTHER:
		break;
	}
	return "other";
}

const char *dsn_format_name(enum dsn_format f)
{
	static const char *const names[] = {
		"", "rfc3464", "arf", "postfix", "exim", "qmail", "exchange",
		"gmail", "qq", "netease", "text",
	};

	return (unsigned)f < NELEM(names) ? names[f] : "";
}

const char *dsn_action_name(enum dsn_action a)
{
	static const char *const names[] = {
		"", "failed", "delayed", "delivered", "relayed", "expanded",
	};

	return (unsigned)a < NELEM(names) ? names[a] : "";
}
