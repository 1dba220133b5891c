/*
 * linktrack.c - click and open tracking over the HTML template's source
 * (contract in linktrack.h).
 *
 * One forward pass over the bytes, two layers:
 *   - Mustache: tags are found exactly as tmpl.c finds them (memmem of
 *     the open delimiter; the kind byte after it picks the close mark:
 *     "}" + close for {{{x}}}, "=" + close for {{=a b=}}, close otherwise),
 *     wherever they are, including inside HTML comments, <script> and
 *     attribute values, since tmpl.c knows nothing of HTML. Set-delimiter
 *     tags are parsed with tmpl.c's rules and change the delimiters for
 *     the rest of the source. To the HTML layer a Mustache tag is an
 *     opaque hole: no HTML token (a tag name, "-->", "</script") is
 *     recognised across one, and a hole inside an attribute name or value
 *     taints it (a name with a hole is never href or data-notrack; an href
 *     value with one is "holds a Mustache tag").
 *   - HTML: a small HTML5-tokenizer subset: text, start and end tags with
 *     double-, single- and un-quoted attribute values (names compared
 *     case-insensitively, first of duplicate attributes wins as in
 *     browsers), <!-- comments --> (also <!--> and --!>), bogus comments
 *     (<!DOCTYPE ...>, <?...>, </ followed by a non-letter) and the
 *     raw-text elements whose content is not markup (script, style, xmp,
 *     iframe, noembed, noframes, textarea, title; plaintext to the end).
 * Nothing is written while scanning: the pass records edits (an href value
 * span and its replacement, the pixel tag span, the </body> insertion
 * point) and the output is assembled once at the end, copying every other
 * byte. An <a>/<area> tag without its closing '>' (the input ends first)
 * gets no edit. Cost is linear in the input: every byte is looked at a
 * bounded number of times, and the next open delimiter is searched once
 * from the end of each Mustache tag.
 *
 * Choices the header leaves open:
 *   - The link table gets the URL as a browser would follow it: character
 *     references decoded (HTML5 attribute rules: named ones from a short
 *     list, the legacy ones also without ';' unless followed by '=',
 *     numeric ones with or without ';', 0 / surrogates / past U+10FFFF as
 *     U+FFFD, 0x80-0x9F as windows-1252), a NUL byte as U+FFFD, leading
 *     and trailing bytes up to 0x20 removed, and tab / CR / LF inside
 *     removed (WHATWG URL parsing), so the table holds C strings.
 *   - An href with a Mustache tag is counted in *untracked when its
 *     literal text before the first tag is, or could grow into, an
 *     http:// or https:// URL ("{{url}}", "https://x/?u={{id}}"); one
 *     such as "mailto:{{email}}" or "/p/{{id}}" is not counted.
 *   - The {{tracking_pixel}} tag that gets the pixel is the first one in
 *     text (not inside an HTML tag, a comment, script, style or other
 *     raw-text element, where an <img> would not show); any other is
 *     copied. With opens off every such tag is copied.
 *   - Errors (-1) are: allocation failure, a set-delimiter tag that is
 *     not closed or that tmpl.c would refuse ("line N: ..."), and a
 *     replacement that the delimiters in force would not parse back as
 *     exactly one {{token}} tag (delimiters such as "/" or "n"), rather
 *     than a broken template. Any other unclosed Mustache tag runs to the
 *     end of the input, which is copied (tmpl_compile() reports it).
 *   - *links and *untracked are overwritten, not freed first; on error
 *     they are empty and *out is NULL.
 *
 * What it does not do: decode the URL beyond character references,
 * follow partials, or check that the output compiles (tmpl_compile()
 * does, with "token" among its names).
 */
#include "linktrack.h"

#include "buf.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Delimiters tmpl.c accepts are at most this long (TMPL_DELIM_MAX). */
#define LT_DELIM_MAX 16

/* The pixel, around BASE/o/{{token}}.gif. */
#define LT_PIXEL_HEAD "<img src=\""
#define LT_PIXEL_TAIL ".gif\" width=\"1\" height=\"1\" alt=\"\" " \
	"style=\"display:block;border:0;width:1px;height:1px\">"

struct lt_delims {
	char open[LT_DELIM_MAX + 1];
	char close[LT_DELIM_MAX + 1];
	char close3[LT_DELIM_MAX + 2]; /* "}" + close: ends {{{x}}} */
	char closeq[LT_DELIM_MAX + 2]; /* "=" + close: ends {{=a b=}} */
	size_t olen, clen;
};

/* Replace src[start, end) by repl[roff, roff + rlen). */
struct lt_edit {
	size_t start, end, roff, rlen;
};

struct lt {
	const char *s;
	size_t len;
	const struct linktrack_opts *o;
	const char *base;
	struct lt_delims d;
	size_t tag;             /* start of the next Mustache tag; len: none */
	struct lt_edit *ed;
	size_t ned, ced;
	struct buf repl;        /* replacement texts */
	struct buf scratch;     /* decoded URLs */
	struct link_table *links;
	size_t linkcap;
	size_t *untracked;
	int pixel_done;         /* the pixel tag was replaced */
	int have_body;          /* a </body> was seen in text */
	size_t body;            /* where the last one starts */
	struct lt_delims body_d; /* the delimiters in force there */
	char *err;
	size_t errlen;
};

/* A Mustache tag, as lt_mustache() consumed it. */
struct lt_mtag {
	size_t ts, te;
	int pixel;              /* a {{tracking_pixel}} interpolation */
};

/* ---- small helpers ------------------------------------------------------ */

/* HTML whitespace (tab, LF, FF, CR, space). */
static int lt_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* Blanks as tmpl.c trims them. */
static int lt_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lt_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int lt_alnum(char c)
{
	return lt_alpha(c) || (c >= '0' && c <= '9');
}

static char lt_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* p[0, n) equals the lowercase word w, ignoring ASCII case. */
static int lt_ieq(const char *p, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || lt_lower(p[i]) != w[i])
			return 0;
	return w[n] == '\0';
}

/* k bytes at p lie before the next Mustache tag (and so inside the
 * input): an HTML token may be recognised there. */
static int lt_fits(const struct lt *x, size_t p, size_t k)
{
	return p <= x->tag && k <= x->tag - p;
}

/* 1-based line of offset off, for messages. */
static unsigned lt_line(const struct lt *x, size_t off)
{
	unsigned line = 1;
	const char *p = x->s, *end = x->s + off, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		line++;
		p = nl + 1;
	}
	return line;
}

/* At most 40 bytes of a tag for a message. */
static int lt_quote_len(size_t n)
{
	return n > 40 ? 40 : (int)n;
}

/* ---- Mustache layer ----------------------------------------------------- */

static void lt_delims_set(struct lt_delims *d, const char *o, size_t olen,
                          const char *c, size_t clen)
{
	memcpy(d->open, o, olen);
	d->open[olen] = '\0';
	d->olen = olen;
	memcpy(d->close, c, clen);
	d->close[clen] = '\0';
	d->clen = clen;
	d->close3[0] = '}';
	memcpy(d->close3 + 1, c, clen + 1);
	d->closeq[0] = '=';
	memcpy(d->closeq + 1, c, clen + 1);
}

/* {{=open close=}} body [p, q): two blank-separated delimiters of 1 to
 * LT_DELIM_MAX bytes, as tmpl.c wants them. 0 or -1. */
static int lt_delims_parse(struct lt_delims *d, const char *p, const char *q)
{
	const char *o, *oe, *c, *ce;

	while (p < q && lt_blank(*p))
		p++;
	while (q > p && lt_blank(q[-1]))
		q--;
	o = p;
	while (p < q && !lt_blank(*p))
		p++;
	oe = p;
	while (p < q && lt_blank(*p))
		p++;
	c = p;
	while (p < q && !lt_blank(*p))
		p++;
	ce = p;
	if (oe == o || ce == c || p != q ||
	    (size_t)(oe - o) > LT_DELIM_MAX || (size_t)(ce - c) > LT_DELIM_MAX)
		return -1;
	lt_delims_set(d, o, (size_t)(oe - o), c, (size_t)(ce - c));
	return 0;
}

/* Find the next open delimiter at or after 'from'. */
static void lt_next_tag(struct lt *x, size_t from)
{
	const char *hit = NULL;

	if (from < x->len)
		hit = memmem(x->s + from, x->len - from, x->d.open, x->d.olen);
	x->tag = hit != NULL ? (size_t)(hit - x->s) : x->len;
}

/* Consume the Mustache tag at x->tag into *m. A tag that is never closed
 * runs to the end of the input (tmpl_compile() will say so), except a
 * set-delimiter tag: then nothing after it can be followed. 0 or -1. */
static int lt_mustache(struct lt *x, struct lt_mtag *m)
{
	size_t ts = x->tag, cs = ts + x->d.olen, ce, mlen = x->d.clen;
	const char *mark = x->d.close, *hit = NULL, *p, *q;
	int kind = cs < x->len ? (unsigned char)x->s[cs] : 0;

	m->ts = ts;
	m->pixel = 0;
	switch (kind) {
	case '{':
		mark = x->d.close3;
		mlen++;
		cs++;
		break;
	case '=':
		mark = x->d.closeq;
		mlen++;
		cs++;
		break;
	case '#': case '^': case '/': case '!': case '>': case '&':
		cs++;
		break;
	default:
		kind = 0;
		break;
	}
	if (cs <= x->len)
		hit = memmem(x->s + cs, x->len - cs, mark, mlen);
	if (hit == NULL) {
		if (kind == '=')
			return edm_errf(x->err, x->errlen, "line %u: %.*s: "
			                "set-delimiter tag not closed (no '%s' "
			                "after it)", lt_line(x, ts),
			                lt_quote_len(x->len - ts), x->s + ts,
			                mark);
		m->te = x->len;
		x->tag = x->len;
		return 0;
	}
	ce = (size_t)(hit - x->s);
	m->te = ce + mlen;
	p = x->s + cs;
	q = x->s + ce;
	if (kind == '=') {
		if (lt_delims_parse(&x->d, p, q) < 0)
			return edm_errf(x->err, x->errlen, "line %u: %.*s: bad "
			                "delimiter change", lt_line(x, ts),
			                lt_quote_len(m->te - ts), x->s + ts);
	} else if (kind == 0 || kind == '{' || kind == '&') {
		while (p < q && lt_blank(*p))
			p++;
		while (q > p && lt_blank(q[-1]))
			q--;
		/* Names are case-sensitive in tmpl.c. */
		m->pixel = q - p == 14 && memcmp(p, "tracking_pixel", 14) == 0;
	}
	lt_next_tag(x, m->te);
	return 0;
}

/* ---- edits and replacements --------------------------------------------- */

static int lt_oom(struct lt *x)
{
	return edm_errf(x->err, x->errlen, "out of memory");
}

/* Record an edit (edits arrive in source order). 0 or -1. */
static int lt_edit_add(struct lt *x, size_t start, size_t end, size_t roff,
                       size_t rlen)
{
	if (x->ned == x->ced) {
		size_t cap = x->ced ? x->ced * 2 : 16;
		struct lt_edit *e = realloc(x->ed, cap * sizeof(*e));

		if (e == NULL)
			return lt_oom(x);
		x->ed = e;
		x->ced = cap;
	}
	x->ed[x->ned].start = start;
	x->ed[x->ned].end = end;
	x->ed[x->ned].roff = roff;
	x->ed[x->ned].rlen = rlen;
	x->ned++;
	return 0;
}

/* Append head BASE/<dir>/<open>token<close> tail to x->repl and check the
 * delimiters parse it back as one tag where it replaces src[start, end):
 * with up to olen - 1 source bytes on each side, since an open delimiter
 * may also straddle an edge ("1\"" after link 1 and its closing quote:
 * found by tests/fuzz/fuzz_linktrack). *roff, *rlen locate it. at is the
 * source offset (for the message). 0 or -1. */
static int lt_repl(struct lt *x, const struct lt_delims *d, const char *head,
                   const char *dir, const char *tail, size_t at,
                   size_t start, size_t end, size_t *roff, size_t *rlen)
{
	size_t off = x->repl.len, tok, cls, n, pre, post;
	struct buf c = { 0 };
	const char *r, *hit;
	int ok = 0;

	if (buf_puts(&x->repl, head) < 0 || buf_puts(&x->repl, x->base) < 0 ||
	    buf_puts(&x->repl, dir) < 0)
		return lt_oom(x);
	tok = x->repl.len - off;
	if (buf_append(&x->repl, d->open, d->olen) < 0 ||
	    buf_puts(&x->repl, "token") < 0)
		return lt_oom(x);
	cls = x->repl.len - off;
	if (buf_append(&x->repl, d->close, d->clen) < 0 ||
	    buf_puts(&x->repl, tail) < 0)
		return lt_oom(x);
	n = x->repl.len - off;
	r = x->repl.data + off;
	/* The replacement with its neighbours: the first open must be ours,
	 * its close right after "token", and no open may follow. */
	pre = start < d->olen - 1 ? start : d->olen - 1;
	post = x->len - end < d->olen - 1 ? x->len - end : d->olen - 1;
	if (buf_append(&c, x->s + start - pre, pre) < 0 ||
	    buf_append(&c, r, n) < 0 ||
	    buf_append(&c, x->s + end, post) < 0) {
		buf_free(&c);
		return lt_oom(x);
	}
	hit = memmem(c.data, c.len, d->open, d->olen);
	if (hit == c.data + pre + tok) {
		hit = memmem(hit + d->olen, c.len - pre - tok - d->olen, d->close,
		             d->clen);
		ok = hit == c.data + pre + cls &&
		     memmem(hit + d->clen, c.len - pre - cls - d->clen, d->open,
		            d->olen) == NULL;
	}
	buf_free(&c);
	if (ok) {
		*roff = off;
		*rlen = n;
		return 0;
	}
	return edm_errf(x->err, x->errlen, "line %u: the delimiters in force "
	                "(%s %s) cannot carry the tracking %stoken%s tag in "
	                "\"%.*s\"", lt_line(x, at), d->open, d->close, d->open,
	                d->close, lt_quote_len(n), r);
}

/* The pixel replacing src[start, end) (end == start: inserted there). */
static int lt_pixel(struct lt *x, const struct lt_delims *d, size_t start,
                    size_t end)
{
	size_t roff = 0, rlen = 0;

	if (lt_repl(x, d, LT_PIXEL_HEAD, "/o/", LT_PIXEL_TAIL, start, start,
	            end, &roff, &rlen) < 0)
		return -1;
	x->pixel_done = 1;
	return lt_edit_add(x, start, end, roff, rlen);
}

/* ---- character references ----------------------------------------------- */

/* Named references decoded in URLs (HTML5 names, case-sensitive); legacy:
 * also recognised without the ';'. */
static const struct {
	const char *name;
	const char *utf8;
	int legacy;
} lt_entities[] = {
	{ "amp", "&", 1 },
	{ "lt", "<", 1 },
	{ "gt", ">", 1 },
	{ "quot", "\"", 1 },
	{ "apos", "'", 0 },
	{ "nbsp", "\xC2\xA0", 1 },
	{ "AMP", "&", 1 },
	{ "LT", "<", 1 },
	{ "GT", ">", 1 },
	{ "QUOT", "\"", 1 },
};

/* HTML5: numeric references 0x80-0x9F mean windows-1252 (0: unchanged). */
static const uint16_t lt_cp1252[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* Append code point cp as UTF-8 (invalid ones as U+FFFD). 0 or -1. */
static int lt_put_utf8(struct buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp >= 0x80 && cp <= 0x9F && lt_cp1252[cp - 0x80] != 0)
		cp = lt_cp1252[cp - 0x80];
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* The reference at s[i] == '&' (s[0, n)): append its text to b and
 * return the bytes it took; 0 when it is no reference (the caller copies
 * the '&'). -1 on allocation failure. */
static long lt_charref(const char *s, size_t n, size_t i, struct buf *b)
{
	size_t j = i + 1, k;

	if (j < n && s[j] == '#') {
		uint32_t cp = 0;
		int hex = 0, digits = 0;

		j++;
		if (j < n && (s[j] == 'x' || s[j] == 'X')) {
			hex = 1;
			j++;
		}
		for (; j < n; j++) {
			char c = s[j];
			uint32_t v;

			if (c >= '0' && c <= '9')
				v = (uint32_t)(c - '0');
			else if (hex && lt_lower(c) >= 'a' && lt_lower(c) <= 'f')
				v = (uint32_t)(lt_lower(c) - 'a' + 10);
			else
				break;
			digits = 1;
			/* Saturate: anything past U+10FFFF is U+FFFD. */
			cp = cp > 0x10FFFF ? cp : cp * (hex ? 16 : 10) + v;
		}
		if (!digits)
			return 0;
		if (j < n && s[j] == ';')
			j++;
		if (lt_put_utf8(b, cp) < 0)
			return -1;
		return (long)(j - i);
	}
	while (j < n && lt_alnum(s[j]))
		j++;
	for (k = 0; k < sizeof(lt_entities) / sizeof(lt_entities[0]); k++) {
		const char *name = lt_entities[k].name;
		size_t nl = strlen(name);

		if (j - i - 1 != nl || memcmp(s + i + 1, name, nl) != 0)
			continue;
		if (j < n && s[j] == ';')
			j++;
		else if (!lt_entities[k].legacy || (j < n && s[j] == '='))
			return 0;
		if (buf_puts(b, lt_entities[k].utf8) < 0)
			return -1;
		return (long)(j - i);
	}
	return 0;
}

/* Decode v[0, n) into x->scratch the way a browser reads an href: the
 * references decoded, tab/CR/LF dropped, and (trim) leading and trailing
 * bytes up to 0x20 removed (otherwise leading ones only). 0 or -1. */
static int lt_decode(struct lt *x, const char *v, size_t n, int trim)
{
	struct buf *b = &x->scratch;
	size_t i = 0, lead = 0;
	long took;

	buf_reset(b);
	if (buf_reserve(b, n) < 0)
		return lt_oom(x);
	while (i < n) {
		if (v[i] == '&') {
			if ((took = lt_charref(v, n, i, b)) < 0)
				return lt_oom(x);
			if (took > 0) {
				i += (size_t)took;
				continue;
			}
		}
		if (v[i] == '\0') {
			/* HTML5 reads a NUL in an attribute as U+FFFD. */
			if (buf_puts(b, "\xEF\xBF\xBD") < 0)
				return lt_oom(x);
		} else if (v[i] != '\t' && v[i] != '\n' && v[i] != '\r' &&
		           buf_putc(b, v[i]) < 0) {
			return lt_oom(x);
		}
		i++;
	}
	/* tab/CR/LF written as references (&#9; &#10; &#13;) are decoded
	 * before the URL parser drops them, so drop them here too: a CR or
	 * LF in the table would reach `edm track`'s Location header (found
	 * by tests/fuzz/fuzz_linktrack) */
	for (size_t r = 0, w = 0;; r++) {
		if (r == b->len) {
			b->len = w;
			break;
		}
		if (b->data[r] != '\t' && b->data[r] != '\n' && b->data[r] != '\r')
			b->data[w++] = b->data[r];
	}
	while (lead < b->len && (unsigned char)b->data[lead] <= 0x20)
		lead++;
	memmove(b->data, b->data + lead, b->len - lead);
	b->len -= lead;
	while (trim && b->len > 0 &&
	       (unsigned char)b->data[b->len - 1] <= 0x20)
		b->len--;
	b->data[b->len] = '\0';
	return 0;
}

/* s[0, n) starts with http:// or https://, any case. */
static int lt_is_http(const char *s, size_t n)
{
	return (n >= 7 && lt_ieq(s, 7, "http://")) ||
	       (n >= 8 && lt_ieq(s, 8, "https://"));
}

/* s[0, n) is w or a prefix of it, ignoring ASCII case (w lowercase). */
static int lt_iprefix(const char *s, size_t n, const char *w)
{
	size_t i;

	if (n > strlen(w))
		return 0;
	for (i = 0; i < n; i++)
		if (lt_lower(s[i]) != w[i])
			return 0;
	return 1;
}

/* s[0, n) is an http(s) URL or the start of one. */
static int lt_may_be_http(const char *s, size_t n)
{
	return lt_is_http(s, n) || lt_iprefix(s, n, "http://") ||
	       lt_iprefix(s, n, "https://");
}

/* ---- HTML layer ---------------------------------------------------------- */

/* A start tag's first href, as the attribute parser saw it. */
struct lt_href {
	int seen;               /* an href attribute was met (first wins) */
	int has_value;
	size_t v0, v1;          /* the value's span */
	size_t hole;            /* first Mustache tag in it; v1 when none */
	int notrack;            /* a data-notrack attribute */
	struct lt_delims d;     /* the delimiters in force at the value */
};

/* 1 when the href is nothing but {{unsubscribe_url}} (any brace style,
 * blanks): edm track's own link, not a click to count as untracked. */
static int lt_is_unsub(const struct lt *x, const struct lt_href *h)
{
	const char *p = x->s + h->v0, *e = x->s + h->v1;
	static const char name[] = "unsubscribe_url";

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if ((size_t)(e - p) < h->d.olen + h->d.clen ||
	    memcmp(p, h->d.open, h->d.olen) != 0 ||
	    memcmp(e - h->d.clen, h->d.close, h->d.clen) != 0)
		return 0;
	p += h->d.olen;
	e -= h->d.clen;
	if (p < e && (*p == '{' || *p == '&'))
		p++;
	if (e > p && e[-1] == '}')
		e--;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return (size_t)(e - p) == sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0;
}

/* The tag starting at 'at' was an <a>/<area> with h: rewrite its href,
 * count it, or leave it. 0 or -1. */
static int lt_link(struct lt *x, const struct lt_href *h, size_t at)
{
	size_t roff = 0, rlen = 0, n;
	char num[32], *url;

	if (!h->seen || !h->has_value || h->notrack)
		return 0;
	if (h->hole < h->v1) {
		if (lt_decode(x, x->s + h->v0, h->hole - h->v0, 0) < 0)
			return -1;
		if (lt_may_be_http(x->scratch.data, x->scratch.len) &&
		    !lt_is_unsub(x, h))
			(*x->untracked)++;
		return 0;
	}
	if (lt_decode(x, x->s + h->v0, h->v1 - h->v0, 1) < 0)
		return -1;
	if (!lt_is_http(x->scratch.data, x->scratch.len))
		return 0;
	n = x->links->n + 1;
	snprintf(num, sizeof(num), "/%zu", n);
	if (lt_repl(x, &h->d, "", "/c/", num, at, h->v0, h->v1, &roff,
	            &rlen) < 0)
		return -1;
	if (x->links->n == x->linkcap) {
		size_t cap = x->linkcap ? x->linkcap * 2 : 16;
		char **u = realloc(x->links->urls, cap * sizeof(*u));

		if (u == NULL)
			return lt_oom(x);
		x->links->urls = u;
		x->linkcap = cap;
	}
	if ((url = malloc(x->scratch.len + 1)) == NULL)
		return lt_oom(x);
	memcpy(url, x->scratch.data, x->scratch.len + 1);
	x->links->urls[x->links->n++] = url;
	return lt_edit_add(x, h->v0, h->v1, roff, rlen);
}

/* Elements whose content is text, not markup, up to their end tag
 * (HTML5 raw text and RCDATA; plaintext never ends). */
static const char *const lt_rawtext[] = {
	"script", "style", "xmp", "iframe", "noembed", "noframes",
	"textarea", "title", "plaintext",
};

/* Skip Mustache tags and bytes until the end tag </name (followed by a
 * blank, '/' or '>'). Its '<' into *next (len: none). 0 or -1. */
static int lt_raw(struct lt *x, size_t p, const char *name, size_t *next)
{
	size_t nl = strlen(name);
	struct lt_mtag m;
	char c;

	while (p < x->len) {
		if (p == x->tag) {
			if (lt_mustache(x, &m) < 0)
				return -1;
			p = m.te;
			continue;
		}
		if (x->s[p] == '<' && strcmp(name, "plaintext") != 0 &&
		    lt_fits(x, p, nl + 3) && x->s[p + 1] == '/' &&
		    lt_ieq(x->s + p + 2, nl, name)) {
			c = x->s[p + 2 + nl];
			if (lt_ws(c) || c == '/' || c == '>')
				break;
		}
		p++;
	}
	*next = p < x->len ? p : x->len;
	return 0;
}

/* <!-- at p - 4: skip to after -->, --!> (or the empty <!--> and
 * <!--->), or the end. 0 or -1. */
static int lt_comment(struct lt *x, size_t p, size_t *next)
{
	struct lt_mtag m;

	if (lt_fits(x, p, 1) && x->s[p] == '>') {
		*next = p + 1;
		return 0;
	}
	if (lt_fits(x, p, 2) && x->s[p] == '-' && x->s[p + 1] == '>') {
		*next = p + 2;
		return 0;
	}
	while (p < x->len) {
		if (p == x->tag) {
			if (lt_mustache(x, &m) < 0)
				return -1;
			p = m.te;
			continue;
		}
		if (x->s[p] == '-' && lt_fits(x, p, 3) && x->s[p + 1] == '-') {
			if (x->s[p + 2] == '>') {
				*next = p + 3;
				return 0;
			}
			if (lt_fits(x, p, 4) && x->s[p + 2] == '!' &&
			    x->s[p + 3] == '>') {
				*next = p + 4;
				return 0;
			}
		}
		p++;
	}
	*next = x->len;
	return 0;
}

/* A bogus comment (<!DOCTYPE, <?xml, </3) from p: skip to after the next
 * '>' or the end. 0 or -1. */
static int lt_bogus(struct lt *x, size_t p, size_t *next)
{
	struct lt_mtag m;

	while (p < x->len) {
		if (p == x->tag) {
			if (lt_mustache(x, &m) < 0)
				return -1;
			p = m.te;
			continue;
		}
		if (x->s[p++] == '>') {
			*next = p;
			return 0;
		}
	}
	*next = x->len;
	return 0;
}

enum lt_attr_state {
	LT_BEFORE_NAME,
	LT_NAME,
	LT_AFTER_NAME,
	LT_BEFORE_VALUE,
	LT_DQ,
	LT_SQ,
	LT_UNQ,
	LT_AFTER_QUOTED,
};

/*
 * The start or end tag whose '<' is at p0 (a letter follows "<" or "</"):
 * parse its attributes (HTML5 tokenizer states), then act on an <a> or
 * <area> start tag, a </body> end tag, or a raw-text element. *next is
 * the byte after the tag (after the raw text for script and the like), or
 * the end of the input for a tag that never closes. 0 or -1.
 */
static int lt_tag(struct lt *x, size_t p0, size_t *next)
{
	enum lt_attr_state st = LT_BEFORE_NAME;
	struct lt_href h;
	struct lt_delims bd;
	struct lt_mtag m;
	const char *raw = NULL;
	size_t p, n0, nlen, a0 = 0, v0 = 0, hole = 0, i;
	int end = x->s[p0 + 1] == '/', is_link, is_body, cur_href = 0;
	int ataint = 0, vtaint = 0;
	char c;

	memset(&h, 0, sizeof(h));
	p = n0 = p0 + 1 + (size_t)end;
	while (p < x->tag && !lt_ws(x->s[p]) && x->s[p] != '/' &&
	       x->s[p] != '>')
		p++;
	nlen = p - n0;
	/* A name running into a Mustache tag is not known here. */
	if (p == x->tag) {
		is_link = is_body = 0;
	} else {
		is_link = !end && (lt_ieq(x->s + n0, nlen, "a") ||
		                   lt_ieq(x->s + n0, nlen, "area"));
		is_body = end && lt_ieq(x->s + n0, nlen, "body");
		for (i = 0; !end && i < sizeof(lt_rawtext) / sizeof(*lt_rawtext);
		     i++)
			if (lt_ieq(x->s + n0, nlen, lt_rawtext[i]))
				raw = lt_rawtext[i];
	}
	if (is_body)
		bd = x->d;

	while (p < x->len) {
		if (p == x->tag) {
			if (lt_mustache(x, &m) < 0)
				return -1;
			p = m.te;
			switch (st) {
			case LT_BEFORE_NAME:
			case LT_AFTER_NAME:
			case LT_AFTER_QUOTED:
				/* An attribute whose name we cannot know. */
				cur_href = 0;
				a0 = m.ts;
				ataint = 1;
				st = LT_NAME;
				break;
			case LT_NAME:
				ataint = 1;
				break;
			case LT_BEFORE_VALUE:
				v0 = hole = m.ts;
				vtaint = 1;
				st = LT_UNQ;
				break;
			case LT_DQ:
			case LT_SQ:
			case LT_UNQ:
				if (!vtaint)
					hole = m.ts;
				vtaint = 1;
				break;
			}
			continue;
		}
		c = x->s[p];
		switch (st) {
		case LT_AFTER_QUOTED:
			/* Anything but a blank, '/' or '>' starts the next
			 * attribute (a parse error browsers accept). */
			if (!lt_ws(c) && c != '/' && c != '>') {
				st = LT_BEFORE_NAME;
				continue;
			}
			/* fall through */
		case LT_BEFORE_NAME:
			if (c == '>')
				goto done;
			if (!lt_ws(c) && c != '/') {
				cur_href = 0;
				a0 = p;
				ataint = 0;
				st = LT_NAME;
			} else {
				st = LT_BEFORE_NAME;
			}
			p++;
			break;
		case LT_NAME:
			if (!lt_ws(c) && c != '/' && c != '=' && c != '>') {
				p++;
				break;
			}
			if (!ataint && lt_ieq(x->s + a0, p - a0, "data-notrack"))
				h.notrack = 1;
			if (!ataint && !h.seen && lt_ieq(x->s + a0, p - a0, "href"))
				cur_href = h.seen = 1;
			if (c == '>')
				goto done;
			st = c == '=' ? LT_BEFORE_VALUE : c == '/' ?
			     LT_BEFORE_NAME : LT_AFTER_NAME;
			p++;
			break;
		case LT_AFTER_NAME:
			if (c == '>')
				goto done;
			if (c == '=') {
				st = LT_BEFORE_VALUE;
			} else if (c == '/') {
				st = LT_BEFORE_NAME;
			} else if (!lt_ws(c)) {
				cur_href = 0;
				a0 = p;
				ataint = 0;
				st = LT_NAME;
			}
			p++;
			break;
		case LT_BEFORE_VALUE:
			if (c == '>')
				goto done; /* a missing value: empty */
			vtaint = 0;
			if (c == '"' || c == '\'') {
				v0 = p + 1;
				st = c == '"' ? LT_DQ : LT_SQ;
			} else if (!lt_ws(c)) {
				v0 = p;
				st = LT_UNQ;
			}
			p++;
			break;
		case LT_DQ:
		case LT_SQ:
		case LT_UNQ:
			if (st == LT_DQ ? c != '"' : st == LT_SQ ? c != '\'' :
			    !lt_ws(c) && c != '>') {
				p++;
				break;
			}
			if (cur_href) {
				h.has_value = 1;
				h.v0 = v0;
				h.v1 = p;
				h.hole = vtaint ? hole : p;
				h.d = x->d;
				cur_href = 0;
			}
			if (st == LT_UNQ) {
				if (c == '>')
					goto done;
				st = LT_BEFORE_NAME;
			} else {
				st = LT_AFTER_QUOTED;
			}
			p++;
			break;
		}
	}
	/* The input ended inside the tag: browsers drop it, so do we. */
	*next = x->len;
	return 0;
done:
	*next = p + 1;
	if (is_link && x->o->clicks && lt_link(x, &h, p0) < 0)
		return -1;
	if (is_body) {
		x->have_body = 1;
		x->body = p0;
		x->body_d = bd;
	}
	if (raw != NULL)
		return lt_raw(x, p + 1, raw, next);
	return 0;
}

/* The whole source, in text state; Mustache tags in text may be the
 * pixel's place. 0 or -1. */
static int lt_scan(struct lt *x)
{
	struct lt_mtag m;
	const char *hit;
	size_t p = 0;
	int rc = 0;
	char c;

	while (p < x->len && rc == 0) {
		if (p == x->tag) {
			if (lt_mustache(x, &m) < 0)
				return -1;
			if (m.pixel && x->o->opens && !x->pixel_done)
				rc = lt_pixel(x, &x->d, m.ts, m.te);
			p = m.te;
			continue;
		}
		if (x->s[p] != '<') {
			hit = memchr(x->s + p, '<', x->tag - p);
			p = hit != NULL ? (size_t)(hit - x->s) : x->tag;
			continue;
		}
		if (!lt_fits(x, p, 2)) {
			p++; /* '<' before a Mustache tag or at the end: text */
			continue;
		}
		c = x->s[p + 1];
		if (c == '!' && lt_fits(x, p, 4) && x->s[p + 2] == '-' &&
		    x->s[p + 3] == '-')
			rc = lt_comment(x, p + 4, &p);
		else if (c == '!' || c == '?')
			rc = lt_bogus(x, p + 2, &p);
		else if (lt_alpha(c))
			rc = lt_tag(x, p, &p);
		else if (c != '/' || !lt_fits(x, p, 3))
			p++;
		else if (lt_alpha(x->s[p + 2]))
			rc = lt_tag(x, p, &p);
		else if (x->s[p + 2] == '>')
			p += 3; /* "</>" is dropped */
		else
			rc = lt_bogus(x, p + 2, &p);
	}
	return rc;
}

/* ---- public API ----------------------------------------------------------- */

/* The output: the source with every edit applied, in order. 0 or -1. */
static int lt_assemble(struct lt *x, char **out, size_t *outlen)
{
	struct buf b = { 0 };
	size_t pos = 0, i;

	if (buf_reserve(&b, x->len + x->repl.len) < 0)
		return lt_oom(x);
	/* Room was reserved for everything: the appends cannot fail. */
	for (i = 0; i < x->ned; i++) {
		const struct lt_edit *e = &x->ed[i];

		buf_append(&b, x->s + pos, e->start - pos);
		buf_append(&b, x->repl.data + e->roff, e->rlen);
		pos = e->end;
	}
	buf_append(&b, x->s + pos, x->len - pos);
	*out = b.data;
	*outlen = b.len;
	return 0;
}

int linktrack_rewrite(const char *src, size_t len,
                      const struct linktrack_opts *o, char **out,
                      size_t *outlen, struct link_table *links,
                      size_t *untracked, char *err, size_t errlen)
{
	struct lt x;
	size_t i;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	links->urls = NULL;
	links->n = 0;
	*untracked = 0;
	if (!o->clicks && !o->opens) {
		if ((*out = malloc(len + 1)) == NULL)
			return edm_errf(err, errlen, "out of memory");
		if (len > 0)
			memcpy(*out, src, len);
		(*out)[len] = '\0';
		*outlen = len;
		return 0;
	}
	memset(&x, 0, sizeof(x));
	x.s = src;
	x.len = len;
	x.o = o;
	x.base = o->base_url != NULL ? o->base_url : "";
	x.links = links;
	x.untracked = untracked;
	x.err = err;
	x.errlen = errlen;
	lt_delims_set(&x.d, "{{", 2, "}}", 2);
	lt_next_tag(&x, 0);

	if (lt_scan(&x) < 0)
		goto out;
	if (o->opens && !x.pixel_done) {
		if (x.have_body ? lt_pixel(&x, &x.body_d, x.body, x.body) :
		    lt_pixel(&x, &x.d, len, len))
			goto out;
		/* The insertion is the one edit that may be out of order. */
		for (i = x.ned - 1; i > 0 && x.ed[i - 1].start > x.ed[i].start;
		     i--) {
			struct lt_edit t = x.ed[i];

			x.ed[i] = x.ed[i - 1];
			x.ed[i - 1] = t;
		}
	}
	rc = lt_assemble(&x, out, outlen);
out:
	if (rc < 0) {
		link_table_free(links);
		*untracked = 0;
	}
	free(x.ed);
	buf_free(&x.repl);
	buf_free(&x.scratch);
	return rc;
}

void link_table_free(struct link_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->urls[i]);
	free(t->urls);
	t->urls = NULL;
	t->n = 0;
}
