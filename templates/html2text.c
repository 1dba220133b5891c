/*
 * html2text.c - text/plain rendering of an HTML part with libgumbo
 * (contract in html2text.h).
 *
 * Purpose: give an HTML-only message a readable text twin, so that
 * multipart/alternative carries both (a lone HTML part scores as spam).
 *
 * How: gumbo builds the tree (it decodes entities and repairs bad markup
 * as browsers do); a walk emits text with lazy separators: a collapsed
 * space or the newlines a block boundary asks for are only written in
 * front of the next visible text, so blocks never pile up blank lines and
 * the output has no leading or trailing blank lines.
 *
 * Hostile input, and what bounds it:
 *   - Depth: the walk keeps its own stack on the heap (no recursion), and
 *     gumbo's memory comes from an arena freed in one go, so its recursive
 *     gumbo_destroy_output() is never called (at ~100,000 nested <div>s it
 *     overflows a 1 MiB stack). Below H2T_DEPTH_MAX elements formatting
 *     stops (deeper elements are plain containers; their text still shows
 *     and script/style are still dropped).
 *   - Time: gumbo's tree builder scans its stack of open elements for many
 *     start tags, so deep nesting costs O(tags x depth): 100,000 nested
 *     <div>s took 27 s. The input is therefore parsed in pieces of at most
 *     H2T_PIECE_TAGS tags, cut in front of a tag (never inside a comment or
 *     script/style-like raw text), which bounds the cost per piece. Only
 *     structure that spans a cut (an open <pre>, <a> or list) is lost.
 *   - Memory: gumbo ignores allocation failure, so the arena longjmp()s out
 *     of the parser when malloc fails; everything gumbo allocated is in the
 *     arena, which is then freed, and -1 is returned.
 *
 * What it does not do: CSS (display:none preheaders still show), images
 * (their alt text is not shown), tables as grids (cells are separated by a
 * space, rows by a line break), numbered lists (every item gets "- "),
 * line wrapping (the MIME layer encodes long lines).
 */
#include "html2text.h"

#include "buf.h"

#include <gumbo.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Elements nested deeper than this are formatted as plain containers;
 * real mail nests a few dozen deep, so 256 is far beyond any layout. */
#define H2T_DEPTH_MAX 256
/*
 * Tags per gumbo parse. 10,000 fully nested <div>s parse in ~0.17 s (the
 * quadratic worst case) while ordinary newsletters, a few thousand tags
 * each, are always one piece.
 */
#define H2T_PIECE_TAGS 10000
#define H2T_CHUNK (64 * 1024) /* arena chunk: a 3 KB email needs ~100 KB */
#define H2T_INDENT_MAX 8      /* list nesting levels that add indentation */

/* ---- arena for gumbo ------------------------------------------------- */

struct h2t_chunk {
	struct h2t_chunk *next;
	size_t size;
	max_align_t data[];
};

struct h2t_arena {
	struct h2t_chunk *head;
	char *cur;
	size_t left;
	jmp_buf *oom; /* where to go when malloc fails */
};

/* gumbo's allocator: bump allocation, 16-octet aligned; big blocks get a
 * chunk of their own so the current chunk keeps its free space. */
static void *h2t_alloc(void *ud, size_t n)
{
	struct h2t_arena *a = ud;
	struct h2t_chunk *c;
	size_t size;
	void *p;

	n = n == 0 ? 16 : (n + 15) & ~(size_t)15;
	if (n <= a->left) {
		p = a->cur;
		a->cur += n;
		a->left -= n;
		return p;
	}
	size = n > H2T_CHUNK / 4 ? n : H2T_CHUNK;
	if (size > SIZE_MAX - sizeof *c ||
	    (c = malloc(sizeof *c + size)) == NULL)
		longjmp(*a->oom, 1);
	c->size = size;
	if (size == n && a->head != NULL) { /* keep the current chunk */
		c->next = a->head->next;
		a->head->next = c;
		return c->data;
	}
	c->next = a->head;
	a->head = c;
	a->cur = (char *)c->data + n;
	a->left = size - n;
	return c->data;
}

/* gumbo's deallocator: nothing; the arena is freed as a whole. */
static void h2t_dealloc(void *ud, void *p)
{
	(void)ud;
	(void)p;
}

/* Free every chunk and leave the arena empty. */
static void h2t_arena_free(struct h2t_arena *a)
{
	struct h2t_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->cur = NULL;
	a->left = 0;
}

/* ---- text emitter ---------------------------------------------------- */

struct h2t_frame {
	const GumboNode *node;
	unsigned next; /* index of the next child to visit */
};

struct h2t {
	struct buf *out;
	size_t base;        /* out->len when we started */
	unsigned nl_have;   /* '\n' at the end of our output */
	unsigned nl_want;   /* newlines owed before the next text */
	int space;          /* a collapsed space is owed */
	int started;        /* visible text was written */
	int last_ws;        /* our last octet was ' ' or '\n' */
	int rc;             /* -1 once an append failed */
	int pre;            /* inside <pre> (depth) */
	int lists;          /* ul/ol nesting */
	const GumboNode *link; /* the <a> being rendered, or NULL */
	size_t link_start;  /* out->len when it opened */
	struct h2t_frame *stack;
	size_t nstack, capstack;
	struct h2t_arena arena;
};

/* Append raw octets, keeping nl_have/last_ws in step. */
static void h2t_raw(struct h2t *h, const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	if (buf_append(h->out, s, n) < 0) {
		h->rc = -1;
		return;
	}
	for (i = n; i > 0 && s[i - 1] == '\n'; i--)
		;
	h->nl_have = i == 0 ? h->nl_have + (unsigned)n : (unsigned)(n - i);
	h->last_ws = s[n - 1] == ' ' || s[n - 1] == '\n';
}

/* Pay what is owed before visible text: the newlines a block boundary
 * asked for (none before the first text), or one collapsed space. */
static void h2t_flush(struct h2t *h)
{
	if (h->started && h->nl_want > h->nl_have) {
		while (h->nl_have < h->nl_want)
			h2t_raw(h, "\n", 1);
	} else if (h->started && h->space && !h->last_ws) {
		h2t_raw(h, " ", 1);
	}
	h->nl_want = 0;
	h->space = 0;
}

/* Visible text that must not be collapsed (a word, "- ", a URL). */
static void h2t_word(struct h2t *h, const char *s, size_t n)
{
	if (n == 0)
		return;
	h2t_flush(h);
	h2t_raw(h, s, n);
	h->started = 1;
}

/* Ask for at least k newlines before the next text. */
static void h2t_block(struct h2t *h, unsigned k)
{
	if (h->nl_want < k)
		h->nl_want = k;
	h->space = 0;
}

/* Length of a white-space character at s (ASCII white space, U+00A0
 * no-break space), or 0. */
static size_t h2t_ws_len(const unsigned char *s, size_t n)
{
	if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ||
	    s[0] == '\f')
		return 1;
	if (n >= 2 && s[0] == 0xc2 && s[1] == 0xa0)
		return 2;
	return 0;
}

/* Length of a zero-width character at s (U+200B..U+200D, U+FEFF: the
 * invisible padding of preheaders), or 0. */
static size_t h2t_zw_len(const unsigned char *s, size_t n)
{
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0x8b &&
	    s[2] <= 0x8d)
		return 3;
	if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
		return 3;
	return 0;
}

/* Text outside <pre>: white-space runs collapse to one (lazy) space,
 * zero-width characters vanish, the rest is written in runs. */
static void h2t_text(struct h2t *h, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), i = 0, j, k;

	while (i < n) {
		if ((k = h2t_ws_len(s + i, n - i)) > 0) {
			h->space = 1;
			i += k;
			continue;
		}
		if ((k = h2t_zw_len(s + i, n - i)) > 0) {
			i += k;
			continue;
		}
		for (j = i; j < n && h2t_ws_len(s + j, n - j) == 0 &&
		     h2t_zw_len(s + j, n - j) == 0; j++)
			;
		h2t_word(h, text + i, j - i);
		i = j;
	}
}

/* Text inside <pre>: as it is, line breaks included. */
static void h2t_pre_text(struct h2t *h, const char *text)
{
	size_t n = strlen(text);

	if (n == 0)
		return;
	if (!h->started) { /* no leading blank lines */
		while (*text == '\n') {
			text++;
			n--;
		}
		if (n == 0)
			return;
	}
	h2t_flush(h);
	h2t_raw(h, text, n);
	h->started = 1;
}

/* Elements whose content is never shown. */
static int h2t_skipped(GumboTag t)
{
	return t == GUMBO_TAG_SCRIPT || t == GUMBO_TAG_STYLE ||
	       t == GUMBO_TAG_HEAD || t == GUMBO_TAG_TITLE ||
	       t == GUMBO_TAG_NOSCRIPT || t == GUMBO_TAG_TEMPLATE ||
	       t == GUMBO_TAG_NOFRAMES || t == GUMBO_TAG_NOEMBED ||
	       t == GUMBO_TAG_IFRAME || t == GUMBO_TAG_OBJECT;
}

/* Newlines around an element: 2 for paragraph-like blocks, 1 for other
 * blocks, 0 for inline elements. */
static unsigned h2t_block_nl(const struct h2t *h, GumboTag t)
{
	switch (t) {
	case GUMBO_TAG_P:
	case GUMBO_TAG_H1:
	case GUMBO_TAG_H2:
	case GUMBO_TAG_H3:
	case GUMBO_TAG_H4:
	case GUMBO_TAG_H5:
	case GUMBO_TAG_H6:
	case GUMBO_TAG_PRE:
	case GUMBO_TAG_BLOCKQUOTE:
		return 2;
	case GUMBO_TAG_UL:
	case GUMBO_TAG_OL:
	case GUMBO_TAG_DL:
		return h->lists > 0 ? 1 : 2;
	case GUMBO_TAG_DIV:
	case GUMBO_TAG_LI:
	case GUMBO_TAG_TR:
	case GUMBO_TAG_TABLE:
	case GUMBO_TAG_CAPTION:
	case GUMBO_TAG_ADDRESS:
	case GUMBO_TAG_ARTICLE:
	case GUMBO_TAG_ASIDE:
	case GUMBO_TAG_CENTER:
	case GUMBO_TAG_DD:
	case GUMBO_TAG_DT:
	case GUMBO_TAG_DETAILS:
	case GUMBO_TAG_SUMMARY:
	case GUMBO_TAG_FIELDSET:
	case GUMBO_TAG_FIGURE:
	case GUMBO_TAG_FIGCAPTION:
	case GUMBO_TAG_FOOTER:
	case GUMBO_TAG_HEADER:
	case GUMBO_TAG_FORM:
	case GUMBO_TAG_HR:
	case GUMBO_TAG_MAIN:
	case GUMBO_TAG_NAV:
	case GUMBO_TAG_SECTION:
	case GUMBO_TAG_BODY:
		return 1;
	default:
		return 0;
	}
}

/* The URL of a link with HTML's trimming (leading/trailing white space
 * stripped; tab, CR, LF inside removed), into a fresh buffer. */
static int h2t_href(const GumboNode *a, struct buf *url)
{
	const GumboAttribute *at;
	const char *s;
	size_t n, i;

	at = gumbo_get_attribute(&a->v.element.attributes, "href");
	if (at == NULL)
		return 0;
	s = at->value;
	n = strlen(s);
	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
	                 *s == '\f')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	                 s[n - 1] == '\n' || s[n - 1] == '\r' ||
	                 s[n - 1] == '\f'))
		n--;
	for (i = 0; i < n; i++)
		if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r' &&
		    buf_putc(url, s[i]) < 0)
			return -1;
	return 0;
}

/*
 * Close a link: "text (url)"; only the URL when the text is empty or is
 * the URL; a mailto: shows its address; javascript:, vbscript:, data: and
 * in-page (#...) targets add nothing.
 */
static void h2t_link_end(struct h2t *h, const GumboNode *a)
{
	struct buf url = {0};
	const char *show, *text;
	size_t slen, tlen;
	unsigned want;

	if (h2t_href(a, &url) < 0) {
		h->rc = -1;
		goto done;
	}
	show = url.data != NULL ? url.data : "";
	slen = url.len;
	if (slen == 0 || show[0] == '#' ||
	    strncasecmp(show, "javascript:", 11) == 0 ||
	    strncasecmp(show, "vbscript:", 9) == 0 ||
	    strncasecmp(show, "data:", 5) == 0)
		goto done;
	if (strncasecmp(show, "mailto:", 7) == 0) {
		show += 7;
		slen = strcspn(show, "?");
		if (slen == 0)
			goto done;
	}
	/* the link text as written, without the separators before it (no
	 * output yet, e.g. a logo link first in the body: data is NULL, and
	 * NULL + 0 is undefined; found by tests/fuzz/fuzz_mime) */
	text = h->out->data != NULL ? h->out->data + h->link_start : "";
	tlen = h->out->len - h->link_start;
	while (tlen > 0 && (*text == ' ' || *text == '\n')) {
		text++;
		tlen--;
	}
	while (tlen > 0 && (text[tlen - 1] == ' ' || text[tlen - 1] == '\n'))
		tlen--;
	if (tlen == 0) {
		h2t_word(h, show, slen);
		goto done;
	}
	if ((tlen == slen && memcmp(text, show, slen) == 0) ||
	    (tlen + 1 == slen && show[slen - 1] == '/' &&
	     memcmp(text, show, tlen) == 0))
		goto done;
	/* " (url)" stays on the link's line even when a block inside the
	 * link already asked for a line break */
	want = h->nl_want;
	h->nl_want = 0;
	h->space = 1;
	h2t_word(h, "(", 1);
	h2t_raw(h, show, slen);
	h2t_raw(h, ")", 1);
	h->nl_want = want;
done:
	buf_free(&url);
}

/* Entering an element: separators, list markers, link start. Returns
 * whether to visit its children. */
static int h2t_enter(struct h2t *h, const GumboNode *node, size_t depth)
{
	GumboTag t = node->v.element.tag;
	unsigned k;

	if (h2t_skipped(t))
		return 0;
	if (depth > H2T_DEPTH_MAX)
		return 1;
	if ((k = h2t_block_nl(h, t)) > 0)
		h2t_block(h, k);
	switch (t) {
	case GUMBO_TAG_BR:
		if (h->started) {
			h2t_flush(h);
			h2t_raw(h, "\n", 1);
		}
		break;
	case GUMBO_TAG_PRE:
		h->pre++;
		break;
	case GUMBO_TAG_UL:
	case GUMBO_TAG_OL:
		h->lists++;
		break;
	case GUMBO_TAG_LI: {
		static const char pad[2 * H2T_INDENT_MAX] = "                ";
		int lv = h->lists > 0 ? h->lists - 1 : 0;

		if (lv > H2T_INDENT_MAX)
			lv = H2T_INDENT_MAX;
		h2t_flush(h);
		h->started = 1; /* the marker is text: owed newlines are paid */
		h2t_raw(h, pad, 2 * (size_t)lv);
		h2t_raw(h, "- ", 2);
		break;
	}
	case GUMBO_TAG_A:
		if (h->link == NULL) {
			h->link = node;
			h->link_start = h->out->len;
		}
		break;
	default:
		break;
	}
	return 1;
}

/* Leaving an element: the closing half of h2t_enter(). */
static void h2t_leave(struct h2t *h, const GumboNode *node, size_t depth)
{
	GumboTag t = node->v.element.tag;
	unsigned k;

	if (h2t_skipped(t) || depth > H2T_DEPTH_MAX)
		return;
	switch (t) {
	case GUMBO_TAG_PRE:
		h->pre--;
		break;
	case GUMBO_TAG_UL:
	case GUMBO_TAG_OL:
		h->lists--;
		break;
	case GUMBO_TAG_A:
		if (h->link == node) {
			h2t_link_end(h, node);
			h->link = NULL;
		}
		break;
	case GUMBO_TAG_TD:
	case GUMBO_TAG_TH:
		h->space = 1;
		break;
	default:
		break;
	}
	if ((k = h2t_block_nl(h, t)) > 0)
		h2t_block(h, k);
}

/* The children of a document, element or template node, or NULL. */
static const GumboVector *h2t_children(const GumboNode *n)
{
	if (n->type == GUMBO_NODE_DOCUMENT)
		return &n->v.document.children;
	if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE)
		return &n->v.element.children;
	return NULL;
}

/* Walk one parsed piece depth-first with the heap stack h->stack. */
static void h2t_walk(struct h2t *h, const GumboNode *doc)
{
	h->nstack = 0;
	h->pre = 0;
	h->lists = 0;
	h->link = NULL;
	if (h->capstack == 0) {
		if ((h->stack = malloc(64 * sizeof *h->stack)) == NULL) {
			h->rc = -1;
			return;
		}
		h->capstack = 64;
	}
	h->stack[h->nstack++] = (struct h2t_frame){doc, 0};
	while (h->nstack > 0 && h->rc == 0) {
		struct h2t_frame *f = &h->stack[h->nstack - 1];
		const GumboVector *kids = h2t_children(f->node);
		const GumboNode *c;

		if (kids == NULL || f->next >= kids->length) {
			if (f->node->type == GUMBO_NODE_ELEMENT)
				h2t_leave(h, f->node, h->nstack - 1);
			h->nstack--;
			continue;
		}
		c = kids->data[f->next++];
		switch (c->type) {
		case GUMBO_NODE_TEXT:
		case GUMBO_NODE_CDATA:
			if (h->pre > 0)
				h2t_pre_text(h, c->v.text.text);
			else
				h2t_text(h, c->v.text.text);
			break;
		case GUMBO_NODE_WHITESPACE:
			if (h->pre > 0)
				h2t_pre_text(h, c->v.text.text);
			else
				h->space = 1;
			break;
		case GUMBO_NODE_ELEMENT:
			if (!h2t_enter(h, c, h->nstack))
				break;
			if (h->nstack == h->capstack) {
				struct h2t_frame *ns;

				ns = realloc(h->stack,
				             2 * h->capstack * sizeof *ns);
				if (ns == NULL) {
					h->rc = -1;
					break;
				}
				h->stack = ns;
				h->capstack *= 2;
			}
			h->stack[h->nstack++] = (struct h2t_frame){c, 0};
			break;
		default: /* comments, templates, documents */
			break;
		}
	}
}

/* Parse one piece with gumbo in the arena and render it. -1 when malloc
 * failed inside gumbo or in the walk. */
static int h2t_piece(struct h2t *h, const char *s, size_t n)
{
	GumboOptions opt = kGumboDefaultOptions;
	GumboOutput *g;
	jmp_buf jb;

	opt.allocator = h2t_alloc;
	opt.deallocator = h2t_dealloc;
	opt.userdata = &h->arena;
	opt.max_errors = 0; /* we never look at parse errors */
	h->arena.oom = &jb;
	if (setjmp(jb) != 0) {
		h->arena.oom = NULL;
		h2t_arena_free(&h->arena);
		return -1;
	}
	g = gumbo_parse_with_options(&opt, s, n);
	h->arena.oom = NULL;
	h2t_walk(h, g->document);
	h2t_arena_free(&h->arena);
	return h->rc;
}

/* Case-insensitive "does s[0..n) start with the ASCII word w". */
static int h2t_starts(const char *s, size_t n, const char *w)
{
	size_t k = strlen(w);

	return n >= k && strncasecmp(s, w, k) == 0;
}

/* ASCII letter (what may follow '<' or "</" to open a tag). */
static int h2t_alpha(char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/*
 * End of the piece that starts at s[0]: in front of the tag that would be
 * the H2T_PIECE_TAGS-th, else n. Comments and the content of raw-text
 * elements (script, style, ...) are skipped whole, so no cut lands in
 * them; a '<' inside an attribute value may be miscounted, which only
 * moves the cut.
 */
static size_t h2t_piece_end(const char *s, size_t n)
{
	static const char *const raw[] = {
		"script", "style", "textarea", "title", "xmp", "iframe",
		"noembed", "noframes", "noscript", "plaintext",
	};
	size_t i = 0, tags = 0, r;
	const char *p;
	char c1;
	int start;

	while (i < n && (p = memchr(s + i, '<', n - i)) != NULL) {
		i = (size_t)(p - s);
		if (h2t_starts(s + i, n - i, "<!--")) {
			const char *e = memmem(s + i + 4, n - i - 4, "-->", 3);

			i = e != NULL ? (size_t)(e - s) + 3 : n;
			continue;
		}
		c1 = i + 1 < n ? s[i + 1] : '\0';
		start = h2t_alpha(c1);
		if (!start && !(c1 == '/' && i + 2 < n && h2t_alpha(s[i + 2]))) {
			i++; /* a '<' that opens no tag */
			continue;
		}
		if (tags++ >= H2T_PIECE_TAGS && i > 0)
			return i;
		i++;
		for (r = 0; start && r < sizeof raw / sizeof raw[0]; r++) {
			size_t k = strlen(raw[r]);
			char c;

			if (!h2t_starts(s + i, n - i, raw[r]))
				continue;
			c = i + k < n ? s[i + k] : '>';
			if (c != '>' && c != ' ' && c != '/' && c != '\t' &&
			    c != '\n' && c != '\r' && c != '\f')
				continue;
			/* skip to its end tag "</name" (or to the end) */
			for (i += k; i < n; i++)
				if (s[i] == '<' && i + 1 < n && s[i + 1] == '/' &&
				    h2t_starts(s + i + 2, n - i - 2, raw[r]))
					break;
			break;
		}
	}
	return n;
}

/* Text rendering of an HTML part (contract in html2text.h). */
int html_to_text(const char *html, size_t len, struct buf *out)
{
	struct h2t h;
	size_t off = 0, end;
	int rc = 0;

	memset(&h, 0, sizeof h);
	h.out = out;
	h.base = out->len;
	h.last_ws = 1;
	while (off < len && rc == 0) {
		end = off + h2t_piece_end(html + off, len - off);
		rc = h2t_piece(&h, html + off, end - off);
		off = end;
	}
	if (rc == 0 && h.started && h.nl_have == 0)
		h2t_raw(&h, "\n", 1);
	rc = rc != 0 ? rc : h.rc;
	free(h.stack);
	if (rc != 0 && out->data != NULL) {
		out->len = h.base;
		out->data[out->len] = '\0';
	}
	return rc;
}
