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
 *     U+FFFD, 0x80-0x9F as windows-1252), leading and trailing bytes up to
 *     0x20 removed, and tab / CR / LF inside removed (WHATWG URL parsing).
 *   - An href with a Mustache tag is counted in *untracked when its
 *     literal text before the first tag is, or could grow into, an
 *     http:// or https:// URL ("{{url}}", "https://x/?u={{id}}"); one
 *     such as "mailto:{{email}}" or "/p/{{id}}" is not counted.
 *   - The {{tracking_pixel}} tag that gets the pixel is the first one in
 *     text (not inside an HTML tag, a comment, script, style or other
 *     raw-text element, where an <img> would not show); any other is
 *     copied. With opens off every such tag is copied.
 *   - A replacement that the delimiters in force would not parse back as
 *     exactly one {{token}} tag (delimiters such as "/" or "n") is an
 *     error rather than a broken template.
 *
 * What it does not do: decode the URL beyond character references,
 * follow partials, or check that the output compiles (tmpl_compile()
 * does, with "token" among its names).
 */
#include "linktrack.h"

#include "buf.h"
#include "log.h"

#include <stdint.h>
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
		m->pixel = lt_ieq(p, (size_t)(q - p), "tracking_pixel") &&
		           memcmp(p, "tracking_pixel", 14) == 0;
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
 * delimiters parse it back as one tag; *roff, *rlen locate it. at is the
 * source offset (for the message). 0 or -1. */
static int lt_repl(struct lt *x, const struct lt_delims *d, const char *head,
                   const char *dir, const char *tail, size_t at,
                   size_t *roff, size_t *rlen)
{
	size_t off = x->repl.len, tok, cls, n;
	const char *r, *hit;

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
	/* The first open must be ours, its close right after "token", and
	 * no open may follow in the rest. */
	hit = memmem(r, n, d->open, d->olen);
	if (hit == r + tok) {
		hit = memmem(r + tok + d->olen, n - tok - d->olen, d->close,
		             d->clen);
		if (hit == r + cls &&
		    memmem(r + cls + d->clen, n - cls - d->clen, d->open,
		           d->olen) == NULL) {
			*roff = off;
			*rlen = n;
			return 0;
		}
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
	size_t roff, rlen;

	if (lt_repl(x, d, LT_PIXEL_HEAD, "/o/", LT_PIXEL_TAIL, start, &roff,
	            &rlen) < 0)
		return -1;
	x->pixel_done = 1;
	return lt_edit_add(x, start, end, roff, rlen);
}

/* ---- character references ----------------------------------------------- */

/* Named references decoded in URLs; legacy: also without ';'. */
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
		if (v[i] != '\t' && v[i] != '\n' && v[i] != '\r' &&
		    buf_putc(b, v[i]) < 0)
			return lt_oom(x);
		i++;
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

/* s[0, n) is an http(s) URL or the start of one. */
static int lt_may_be_http(const char *s, size_t n)
{
	if (lt_is_http(s, n))
		return 1;
	return (n < 7 && lt_ieq(s, n, "http://" + 7 - 7 + 0) == 0 &&
	        0) || (n < 8 && (lt_ieq(s, n, n <= 7 ? "" : "") || 1) &&
	        ((n <= 7 && lt_ieq(s, n, "") ) || 0)) || 0;
}

/* ---- HTML layer ---------------------------------------------------------- */

/* A start tag's href, as the attribute parser saw it. */
struct lt_href {
	int seen;               /* an href attribute was met (first wins) */
	int has_value;
	size_t v0, v1;          /* the value's span */
	size_t hole;            /* first Mustache tag in it; v1 when none */
	int notrack;            /* data-notrack attribute */
};

/* The first href of an <a>/<area> tag ending at 'end' is complete:
 * rewrite it, count it, or leave it. 0 or -1. */
static int lt_link(struct lt *x, const struct lt_href *h, size_t at)
{
	size_t roff, rlen, n;
	char num[32], *url;

	if (!h->seen || !h->has_value || h->notrack)
		return 0;
	if (h->hole < h->v1) {
		if (lt_decode(x, x->s + h->v0, h->hole - h->v0, 0) < 0)
			return -1;
		if (lt_may_be_http(x->scratch.data, x->scratch.len))
			(*x->untracked)++;
		return 0;
	}
	if (lt_decode(x, x->s + h->v0, h->v1 - h->v0, 1) < 0)
		return -1;
	if (!lt_is_http(x->scratch.data, x->scratch.len))
		return 0;
	n = x->links->n + 1;
	snprintf(num, sizeof(num), "/%zu", n);
	if (lt_repl(x, &x->d, "", "/c/", num, at, &roff, &rlen) < 0)
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
