/*
 * tmpl.c - Mustache templates over a flat string context: compile once,
 * render per recipient (contract in tmpl.h).
 *
 * Compilation turns the source into a flat array of nodes:
 *   TEXT    a run of literal bytes (offset + length into t->text, an owned
 *           arena holding every literal byte of the template and its
 *           partials; adjacent runs are merged, so comments, standalone
 *           lines and partial boundaries cost nothing at render time);
 *   VAR     a variable reference: column index, escape flag, strict-guard
 *           flag, and an optional default (stored in the arena already
 *           escaped for the template's mode);
 *   SECTION an (inverted) section on a column: when it must not render,
 *           rendering jumps to the node after its close tag.
 * A close tag produces no node. Partials are read and compiled inline at
 * compile time (same names, same mode, default delimiters), so rendering is
 * one forward walk with no lookups and no allocation beyond buffer growth.
 *
 * Mustache rules implemented (https://github.com/mustache/spec):
 * interpolation {{x}} {{{x}}} {{&x}} with in-tag whitespace; sections and
 * inverted sections with nesting; comments (multi-line); partials with the
 * standalone indentation rule (the tag's indentation is prepended to each
 * line of the partial's source before compiling it); set delimiters (for
 * the rest of the current file, never inherited by partials); standalone
 * lines ({{# ^ / ! > =}} alone on a line with blanks: the whole line,
 * newline included, disappears; LF and CRLF).
 *
 * edm's additions and departures:
 *   - {{x|default}} (also {{{x|default}}}, {{& x|default}}): the name and
 *     the default are trimmed; the default is every other byte after the
 *     first '|' up to the closing delimiter. In TMPL_HTML a {{ }} default is escaped
 *     like a value. A variable with a default never fails strict mode.
 *   - Unknown names, a missing partial, a partial nested deeper than
 *     TMPL_PARTIAL_DEPTH_MAX (so any recursive partial) are compile errors,
 *     not empty strings: a campaign must not go out with holes in it.
 *   - A partial name containing '/', '\\' or ".." is refused: partials come
 *     from partials_dir and nowhere else.
 *   - A UTF-8 BOM at the start of a template or partial is dropped (it
 *     would otherwise land in the middle of the message).
 *
 * What it does not do: lists, objects, dotted names, the implicit iterator
 * {{.}}, lambdas, inheritance ({{< }} {{$ }}), dynamic partial names. A
 * section renders its body at most once. Values are never parsed as
 * template text, and CR/LF in values are left alone (header safety is the
 * MIME layer's job).
 */
#include "tmpl.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Partials may nest this deep. Real templates use one or two levels (a
 * header and footer, maybe a signature inside the footer); since there are
 * no lists, a recursive partial can never terminate, and this bound turns
 * it into an error after a handful of levels. */
#define TMPL_PARTIAL_DEPTH_MAX 16

/* Longest delimiter {{=a b=}} accepts: real ones are 1 to 3 bytes (<% %>,
 * [[ ]], | |); a bound keeps the per-file delimiter state fixed-size. */
#define TMPL_DELIM_MAX 16

/* Largest partial file read. Gmail clips HTML bodies past 102 KB and most
 * providers refuse messages past 25 MB; a 4 MiB snippet is a mistake (a
 * binary picked by name), not a template. */
#define TMPL_PARTIAL_SIZE_MAX (4u << 20)

/* Largest compiled template: literal bytes and nodes. Nested partials that
 * include others several times multiply in size (2^16 copies at depth 16);
 * these bounds stop that long before memory runs out while leaving two
 * orders of magnitude over any real email body. */
#define TMPL_TEXT_MAX ((size_t)64 << 20)
#define TMPL_NODES_MAX ((size_t)4 << 20)

/* How much of a tag an error message quotes (up to its first newline). */
#define TMPL_QUOTE_MAX 60

enum tmpl_kind {
	TMPL_NODE_TEXT,
	TMPL_NODE_VAR,
	TMPL_NODE_SECTION,
};

#define TMPL_F_ESCAPE   0x01u /* VAR: HTML-escape the value */
#define TMPL_F_DEFAULT  0x02u /* VAR: off/len is the default */
#define TMPL_F_GUARDED  0x04u /* VAR: inside {{#same}}: never strict-empty */
#define TMPL_F_INVERTED 0x08u /* SECTION: {{^x}} */
#define TMPL_F_URL      0x10u /* VAR: percent-encode the value */

struct tmpl_node {
	unsigned char kind;  /* enum tmpl_kind */
	unsigned char flags; /* TMPL_F_* */
	unsigned file;       /* VAR: index in t->files, for strict errors */
	unsigned line;       /* VAR: line of the tag, for strict errors */
	size_t var;          /* VAR, SECTION: column index */
	size_t off, len;     /* TEXT: the bytes; VAR: the default */
	size_t jump;         /* SECTION: index of the node after its close */
};

struct tmpl {
	struct tmpl_node *nodes;
	size_t nnodes;
	char *text;           /* arena of literal bytes and defaults */
	size_t textlen;
	char **files;         /* files[0] is opts->file; then partial paths */
	size_t nfiles;
	char **names;         /* copies of the used column names (else NULL) */
	unsigned char *uses;  /* uses[i]: column i appears in the template */
	size_t nnames;
};

/* An open section, while its file is being compiled. */
struct tmpl_open {
	size_t var;
	size_t node;       /* its SECTION node */
	unsigned line;
	int inverted;
	const char *name;  /* as written, for messages (points into src) */
	size_t nlen;
};

/* Compiler state shared by the main template and its partials. */
struct tmpl_cc {
	struct tmpl *t;
	const struct tmpl_opts *o;
	const struct tmpl_names *names;
	size_t *nlens;       /* strlen of each name */
	size_t *hash;        /* open addressing: name index + 1, 0 is empty */
	size_t hmask;
	unsigned *guard;     /* per column: open {{#col}} sections around */
	size_t nodes_cap, text_cap, files_cap;
	int merge;           /* the last node is TEXT ending the arena */
	char *err;
	size_t errlen;
};

/* One file being compiled (the template itself or a partial). */
struct tmpl_unit {
	const char *src;
	size_t len;
	unsigned file;
	unsigned line;       /* line number at src[counted] */
	size_t counted;
	size_t begin;        /* 3 after a UTF-8 BOM, else 0 */
	int depth;
	char open[TMPL_DELIM_MAX + 1];
	char close[TMPL_DELIM_MAX + 1];
	char close3[TMPL_DELIM_MAX + 2]; /* "}" close: ends {{{x}}} */
	char closeq[TMPL_DELIM_MAX + 2]; /* "=" close: ends {{=a b=}} */
	size_t olen, clen;
};

/* Bytes an HTML entity adds over the character it replaces (0: none). */
static const unsigned char tmpl_html_extra[256] = {
	['&'] = 4, ['<'] = 3, ['>'] = 3, ['"'] = 5, ['\''] = 4,
};

static const char *const tmpl_html_entity[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
	['"'] = "&quot;", ['\''] = "&#39;",
};

/* Extra bytes HTML-escaping s[n] needs; 0 means it can be copied as is. */
static size_t tmpl_html_extra_len(const char *s, size_t n)
{
	size_t extra = 0, i;

	for (i = 0; i < n; i++)
		extra += tmpl_html_extra[(unsigned char)s[i]];
	return extra;
}

/* Write s[n] HTML-escaped at d (room checked by the caller): runs without
 * special characters are copied in bulk. Returns the end of the output. */
static char *tmpl_html_write(char *d, const char *s, size_t n)
{
	size_t i = 0, run;
	const char *e;

	while (i < n) {
		run = i;
		while (run < n && tmpl_html_extra[(unsigned char)s[run]] == 0)
			run++;
		memcpy(d, s + i, run - i);
		d += run - i;
		if (run == n)
			break;
		e = tmpl_html_entity[(unsigned char)s[run]];
		memcpy(d, e, tmpl_html_extra[(unsigned char)s[run]] + 1u);
		d += tmpl_html_extra[(unsigned char)s[run]] + 1u;
		i = run + 1;
	}
	return d;
}

/* Append s[n] HTML-escaped: one counting pass, one reservation, then a
 * plain copy when nothing needs escaping (the usual case for names). */
static int tmpl_html_append(struct buf *b, const char *s, size_t n)
{
	size_t extra = tmpl_html_extra_len(s, n);
	char *d;

	if (extra == 0)
		return buf_append(b, s, n);
	if (buf_reserve(b, n + extra) < 0)
		return -1;
	d = tmpl_html_write(b->data + b->len, s, n);
	b->len = (size_t)(d - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* ---- compile: errors and bookkeeping ----------------------------------- */

/* Format "file:line: what" into the caller's err. Always returns -1. */
static int tmpl_fail(struct tmpl_cc *cc, unsigned file, unsigned line,
                     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int tmpl_fail(struct tmpl_cc *cc, unsigned file, unsigned line,
                     const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cc->err == NULL || cc->errlen == 0)
		return -1;
	n = snprintf(cc->err, cc->errlen, "%s:%u: ", cc->t->files[file], line);
	if (n < 0 || (size_t)n >= cc->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(cc->err + n, cc->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Out of memory or over a size bound, without a source position. */
static int tmpl_fail_plain(struct tmpl_cc *cc, const char *what)
{
	if (cc->err != NULL && cc->errlen > 0)
		snprintf(cc->err, cc->errlen, "%s: %s", cc->t->files[0], what);
	return -1;
}

/* How many bytes of a tag at p[n] to quote in a message: up to the first
 * newline, at most TMPL_QUOTE_MAX. */
static int tmpl_quote_len(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	if (nl != NULL)
		n = (size_t)(nl - p);
	if (n > TMPL_QUOTE_MAX)
		n = TMPL_QUOTE_MAX;
	return (int)n;
}

/* Line number of src[pos]; positions are asked for in increasing order, so
 * the whole file is scanned for newlines once. */
static unsigned tmpl_line_at(struct tmpl_unit *u, size_t pos)
{
	const char *nl;

	while (u->counted < pos) {
		nl = memchr(u->src + u->counted, '\n', pos - u->counted);
		if (nl == NULL)
			break;
		u->line++;
		u->counted = (size_t)(nl - u->src) + 1;
	}
	if (u->counted < pos)
		u->counted = pos;
	return u->line;
}

/* Record a file name for messages; returns its index or -1. */
static long tmpl_file_add(struct tmpl_cc *cc, const char *name)
{
	struct tmpl *t = cc->t;
	char **nf, *copy;
	size_t cap;

	if (t->nfiles == cc->files_cap) {
		cap = cc->files_cap ? cc->files_cap * 2 : 4;
		if ((nf = realloc(t->files, cap * sizeof(*nf))) == NULL)
			return -1;
		t->files = nf;
		cc->files_cap = cap;
	}
	if ((copy = strdup(name)) == NULL)
		return -1;
	t->files[t->nfiles] = copy;
	return (long)t->nfiles++;
}

/* Make room for n more arena bytes; returns 0 or -1 (err set). */
static int tmpl_text_reserve(struct tmpl_cc *cc, size_t n)
{
	struct tmpl *t = cc->t;
	size_t cap;
	char *p;

	if (n > TMPL_TEXT_MAX - t->textlen)
		return tmpl_fail_plain(cc, "template too large (partials "
		                       "included too many times?)");
	if (t->textlen + n <= cc->text_cap)
		return 0;
	cap = cc->text_cap ? cc->text_cap : 1024;
	while (cap < t->textlen + n)
		cap *= 2;
	if ((p = realloc(t->text, cap)) == NULL)
		return tmpl_fail_plain(cc, "out of memory");
	t->text = p;
	cc->text_cap = cap;
	return 0;
}

/* A new zeroed node at the end of the array, or NULL (err set). */
static struct tmpl_node *tmpl_node_new(struct tmpl_cc *cc)
{
	struct tmpl *t = cc->t;
	struct tmpl_node *n;
	size_t cap;

	if (t->nnodes == TMPL_NODES_MAX) {
		tmpl_fail_plain(cc, "template too large (partials included "
		                "too many times?)");
		return NULL;
	}
	if (t->nnodes == cc->nodes_cap) {
		cap = cc->nodes_cap ? cc->nodes_cap * 2 : 64;
		if ((n = realloc(t->nodes, cap * sizeof(*n))) == NULL) {
			tmpl_fail_plain(cc, "out of memory");
			return NULL;
		}
		t->nodes = n;
		cc->nodes_cap = cap;
	}
	n = &t->nodes[t->nnodes++];
	memset(n, 0, sizeof(*n));
	return n;
}

/* Append literal bytes, extending the previous TEXT node when nothing
 * (a variable, a section boundary) stands between them. */
static int tmpl_text_emit(struct tmpl_cc *cc, const char *p, size_t n)
{
	struct tmpl *t = cc->t;
	struct tmpl_node *nd;

	if (n == 0)
		return 0;
	if (tmpl_text_reserve(cc, n) < 0)
		return -1;
	if (cc->merge) {
		nd = &t->nodes[t->nnodes - 1];
		nd->len += n;
	} else {
		if ((nd = tmpl_node_new(cc)) == NULL)
			return -1;
		nd->kind = TMPL_NODE_TEXT;
		nd->off = t->textlen;
		nd->len = n;
		cc->merge = 1;
	}
	memcpy(t->text + t->textlen, p, n);
	t->textlen += n;
	return 0;
}

/* FNV-1a: the name table is hashed once per compile. */
static size_t tmpl_hash(const char *p, size_t n)
{
	size_t h = (size_t)2166136261u, i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= (size_t)16777619u;
	}
	return h;
}

/* Index the names by hash (first of duplicate names wins). 0 or -1. */
static int tmpl_names_index(struct tmpl_cc *cc)
{
	size_t n = cc->names ? cc->names->n : 0, cap = 16, i, h;

	while (cap < n * 2)
		cap *= 2;
	cc->hash = calloc(cap, sizeof(*cc->hash));
	cc->nlens = calloc(n ? n : 1, sizeof(*cc->nlens));
	cc->guard = calloc(n ? n : 1, sizeof(*cc->guard));
	if (cc->hash == NULL || cc->nlens == NULL || cc->guard == NULL)
		return -1;
	cc->hmask = cap - 1;
	for (i = 0; i < n; i++) {
		const char *nm = cc->names->names[i];

		if (nm == NULL || nm[0] == '\0')
			continue; /* can never be named by a tag */
		cc->nlens[i] = strlen(nm);
		h = tmpl_hash(nm, cc->nlens[i]) & cc->hmask;
		while (cc->hash[h] != 0) {
			size_t j = cc->hash[h] - 1;

			if (cc->nlens[j] == cc->nlens[i] &&
			    memcmp(cc->names->names[j], nm, cc->nlens[i]) == 0)
				break;
			h = (h + 1) & cc->hmask;
		}
		if (cc->hash[h] == 0)
			cc->hash[h] = i + 1;
	}
	return 0;
}

/* Column index of name p[n], or (size_t)-1. */
static size_t tmpl_name_find(const struct tmpl_cc *cc, const char *p, size_t n)
{
	size_t h = tmpl_hash(p, n) & cc->hmask, j;

	while (cc->hash[h] != 0) {
		j = cc->hash[h] - 1;
		if (cc->nlens[j] == n && memcmp(cc->names->names[j], p, n) == 0)
			return j;
		h = (h + 1) & cc->hmask;
	}
	return (size_t)-1;
}

/* Mark column i used and keep a copy of its name for strict messages. */
static int tmpl_name_use(struct tmpl_cc *cc, size_t i)
{
	struct tmpl *t = cc->t;

	t->uses[i] = 1;
	if (t->names[i] == NULL &&
	    (t->names[i] = strdup(cc->names->names[i])) == NULL)
		return tmpl_fail_plain(cc, "out of memory");
	return 0;
}

static int tmpl_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim blanks from both ends of [*p, *q). */
static void tmpl_trim(const char **p, const char **q)
{
	while (*p < *q && tmpl_blank(**p))
		(*p)++;
	while (*q > *p && tmpl_blank((*q)[-1]))
		(*q)--;
}

/* Install delimiters (both already checked). */
static void tmpl_delims_set(struct tmpl_unit *u, const char *o, size_t olen,
                            const char *c, size_t clen)
{
	memcpy(u->open, o, olen);
	u->open[olen] = '\0';
	u->olen = olen;
	memcpy(u->close, c, clen);
	u->close[clen] = '\0';
	u->clen = clen;
	u->close3[0] = '}';
	memcpy(u->close3 + 1, c, clen + 1);
	u->closeq[0] = '=';
	memcpy(u->closeq + 1, c, clen + 1);
}

/* {{=open close=}}: exactly two blank-separated delimiters, neither longer
 * than TMPL_DELIM_MAX. 0 or -1 (the caller reports). */
static int tmpl_delims_parse(struct tmpl_unit *u, const char *p, const char *q)
{
	const char *o, *oe, *c, *ce;

	tmpl_trim(&p, &q);
	o = p;
	while (p < q && !tmpl_blank(*p))
		p++;
	oe = p;
	while (p < q && tmpl_blank(*p))
		p++;
	c = p;
	while (p < q && !tmpl_blank(*p))
		p++;
	ce = p;
	if (oe == o || ce == c || p != q)
		return -1;
	if ((size_t)(oe - o) > TMPL_DELIM_MAX ||
	    (size_t)(ce - c) > TMPL_DELIM_MAX)
		return -1;
	tmpl_delims_set(u, o, (size_t)(oe - o), c, (size_t)(ce - c));
	return 0;
}

static int tmpl_unit_compile(struct tmpl_cc *cc, const char *src, size_t len,
                             unsigned file, unsigned first_line, int depth);

/* Read a partial file whole into *out (*outlen). Returns 1 when read, 0
 * when there is no regular file by that name, -1 on error (err set). */
static int tmpl_partial_read(struct tmpl_cc *cc, const struct tmpl_unit *u,
                             unsigned line, const char *path, char **out,
                             size_t *outlen)
{
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return tmpl_fail(cc, u->file, line, "%s: %s", path,
		                 strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		tmpl_fail(cc, u->file, line, "%s: %s", path, strerror(errno));
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = 0;
		goto fail_fd;
	}
	if (st.st_size > (off_t)TMPL_PARTIAL_SIZE_MAX) {
		tmpl_fail(cc, u->file, line, "%s: partial larger than %u bytes",
		          path, TMPL_PARTIAL_SIZE_MAX);
		goto fail_fd;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		tmpl_fail(cc, u->file, line, "out of memory");
		goto fail_fd;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, data + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			tmpl_fail(cc, u->file, line, "%s: %s", path,
			          strerror(errno));
			goto fail_data;
		}
		if (r == 0)
			break; /* shrank while reading: take what is there */
		got += (size_t)r;
	}
	close(fd);
	*out = data;
	*outlen = got;
	return 1;

fail_data:
	free(data);
fail_fd:
	close(fd);
	return rc;
}

/* Prepend indent[ilen] to every line of src[len] (not to the empty rest
 * after a final newline): the spec's rule for a standalone partial tag.
 * Returns a new buffer or NULL. */
static char *tmpl_indent(const char *src, size_t len, const char *indent,
                         size_t ilen, size_t *outlen)
{
	size_t lines = 1, i, o = 0;
	char *out;

	for (i = 0; i < len; i++)
		lines += src[i] == '\n';
	if ((out = malloc(len + lines * ilen + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (i == 0 || src[i - 1] == '\n') {
			memcpy(out + o, indent, ilen);
			o += ilen;
		}
		out[o++] = src[i];
	}
	*outlen = o;
	return out;
}

/* {{> name}}: find partials_dir/name (then .mustache, .html, .txt) and
 * compile it in place, indented by indent[ilen] when the tag stood alone. */
static int tmpl_partial(struct tmpl_cc *cc, struct tmpl_unit *u,
                        unsigned line, const char *tag, size_t taglen,
                        const char *name, size_t nlen, const char *indent,
                        size_t ilen)
{
	static const char *const suffixes[] = {"", ".mustache", ".html",
	                                       ".txt"};
	const char *dir = cc->o->partials_dir;
	int q = tmpl_quote_len(tag, taglen), found = 0;
	char *path = NULL, *data = NULL, *ind;
	size_t plen, dlen = 0, k;
	long file;
	int rc = -1;

	if (nlen == 0)
		return tmpl_fail(cc, u->file, line, "%.*s: partial without a "
		                 "name", q, tag);
	if (memchr(name, '/', nlen) != NULL ||
	    memchr(name, '\\', nlen) != NULL ||
	    memchr(name, '\0', nlen) != NULL ||
	    memmem(name, nlen, "..", 2) != NULL)
		return tmpl_fail(cc, u->file, line, "%.*s: partial name refused "
		                 "(no '/', '\\' or '..': partials come from the "
		                 "partials directory only)", q, tag);
	if (dir == NULL)
		return tmpl_fail(cc, u->file, line, "%.*s: partials need a "
		                 "partials directory", q, tag);
	if (u->depth + 1 > TMPL_PARTIAL_DEPTH_MAX)
		return tmpl_fail(cc, u->file, line, "%.*s: partials nested "
		                 "deeper than %d (does a partial include "
		                 "itself?)", q, tag, TMPL_PARTIAL_DEPTH_MAX);
	plen = strlen(dir) + 1 + nlen + sizeof(".mustache");
	if ((path = malloc(plen)) == NULL)
		return tmpl_fail(cc, u->file, line, "out of memory");
	for (k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
		snprintf(path, plen, "%s/%.*s%s", dir, (int)nlen, name,
		         suffixes[k]);
		found = tmpl_partial_read(cc, u, line, path, &data, &dlen);
		if (found != 0)
			break;
	}
	if (found < 0)
		goto out_path;
	if (found == 0) {
		tmpl_fail(cc, u->file, line, "%.*s: no partial '%.*s' in %s "
		          "(tried %.*s, .mustache, .html, .txt)", q, tag,
		          (int)nlen, name, dir, (int)nlen, name);
		goto out_path;
	}
	if (ilen > 0) {
		if ((ind = tmpl_indent(data, dlen, indent, ilen, &dlen)) ==
		    NULL) {
			tmpl_fail(cc, u->file, line, "out of memory");
			goto out_data;
		}
		free(data);
		data = ind;
	}
	if ((file = tmpl_file_add(cc, path)) < 0) {
		tmpl_fail(cc, u->file, line, "out of memory");
		goto out_data;
	}
	rc = tmpl_unit_compile(cc, data, dlen, (unsigned)file, 1,
	                       u->depth + 1);
out_data:
	free(data);
out_path:
	free(path);
	return rc;
}

/* {{x}}, {{{x}}}, {{& x}}, with an optional |default: a VAR node. The
 * content is p..q, untrimmed. */
static int tmpl_var(struct tmpl_cc *cc, struct tmpl_unit *u, unsigned line,
                    const char *tag, size_t taglen, const char *p,
                    const char *q, int escape, int url)
{
	const char *bar = memchr(p, '|', (size_t)(q - p));
	const char *ne = bar ? bar : q, *d = NULL;
	int ql = tmpl_quote_len(tag, taglen);
	struct tmpl_node *nd;
	size_t i, dlen = 0, extra = 0;

	tmpl_trim(&p, &ne);
	if (p == ne)
		return tmpl_fail(cc, u->file, line, "%.*s: empty tag", ql, tag);
	if ((i = tmpl_name_find(cc, p, (size_t)(ne - p))) == (size_t)-1)
		return tmpl_fail(cc, u->file, line, "%.*s: no column '%.*s' in "
		                 "the recipient list", ql, tag, (int)(ne - p), p);
	if (tmpl_name_use(cc, i) < 0)
		return -1;
	if (bar != NULL) {
		const char *de = q;

		/* {{ name | friend }} reads as "friend": blanks around the
		 * default belong to the tag, like those around the name. */
		d = bar + 1;
		tmpl_trim(&d, &de);
		dlen = (size_t)(de - d);
		if (escape)
			extra = tmpl_html_extra_len(d, dlen);
		if (tmpl_text_reserve(cc, dlen + extra) < 0)
			return -1;
	}
	if ((nd = tmpl_node_new(cc)) == NULL)
		return -1;
	cc->merge = 0;
	nd->kind = TMPL_NODE_VAR;
	nd->var = i;
	nd->file = u->file;
	nd->line = line;
	if (escape)
		nd->flags |= TMPL_F_ESCAPE;
	if (url)
		nd->flags |= TMPL_F_URL;
	if (cc->guard[i] > 0)
		nd->flags |= TMPL_F_GUARDED;
	if (bar != NULL) {
		/* The default goes to the arena already escaped. */
		nd->flags |= TMPL_F_DEFAULT;
		nd->off = cc->t->textlen;
		nd->len = dlen + extra;
		if (escape)
			tmpl_html_write(cc->t->text + cc->t->textlen, d, dlen);
		else if (dlen > 0)
			memcpy(cc->t->text + cc->t->textlen, d, dlen);
		cc->t->textlen += dlen + extra;
	}
	return 0;
}

/* Grow the open-section stack by one; NULL (err set) on failure. */
static struct tmpl_open *tmpl_open_push(struct tmpl_cc *cc,
                                        struct tmpl_open **stack, size_t *n,
                                        size_t *cap)
{
	struct tmpl_open *s;
	size_t nc;

	if (*n == *cap) {
		nc = *cap ? *cap * 2 : 8;
		if ((s = realloc(*stack, nc * sizeof(*s))) == NULL) {
			tmpl_fail_plain(cc, "out of memory");
			return NULL;
		}
		*stack = s;
		*cap = nc;
	}
	return &(*stack)[(*n)++];
}

/* Compile one file (the template or a partial) into cc's node array.
 * Sections must close within the file that opens them; delimiters start as
 * {{ }} and changes last until the end of the file. */
static int tmpl_unit_compile(struct tmpl_cc *cc, const char *src, size_t len,
                             unsigned file, unsigned first_line, int depth)
{
	struct tmpl_unit u;
	struct tmpl_open *stack = NULL, *top;
	size_t nstack = 0, capstack = 0;
	size_t pos = 0, ts, cs, ce, te, ls, re, next, mlen, nlen;
	const char *mark, *hit, *p, *q;
	struct tmpl_node *nd;
	unsigned line;
	int kind, standalone, ql, rc = -1;

	memset(&u, 0, sizeof(u));
	u.src = src;
	u.len = len;
	u.file = file;
	u.line = first_line;
	u.depth = depth;
	tmpl_delims_set(&u, "{{", 2, "}}", 2);
	if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0)
		pos = u.counted = u.begin = 3;

	while (pos < len) {
		hit = memmem(src + pos, len - pos, u.open, u.olen);
		if (hit == NULL) {
			if (tmpl_text_emit(cc, src + pos, len - pos) < 0)
				goto out;
			break;
		}
		ts = (size_t)(hit - src);
		cs = ts + u.olen;
		line = tmpl_line_at(&u, ts);
		kind = cs < len ? (unsigned char)src[cs] : 0;
		mark = u.close;
		mlen = u.clen;
		switch (kind) {
		case '{':
			mark = u.close3;
			mlen = u.clen + 1;
			cs++;
			break;
		case '=':
			mark = u.closeq;
			mlen = u.clen + 1;
			cs++;
			break;
		case '#': case '^': case '/': case '!': case '>': case '&':
			cs++;
			break;
		default:
			kind = 0;
			break;
		}
		hit = cs <= len ? memmem(src + cs, len - cs, mark, mlen) : NULL;
		if (hit == NULL) {
			tmpl_fail(cc, file, line, "%.*s: tag not closed (no "
			          "'%s' after it)", tmpl_quote_len(src + ts,
			          len - ts), src + ts, mark);
			goto out;
		}
		ce = (size_t)(hit - src);
		te = ce + mlen;
		ql = tmpl_quote_len(src + ts, te - ts);

		/* Standalone: only blanks before the tag on its line and after
		 * it up to the line end (or the end of the file). */
		standalone = 0;
		ls = ts;
		next = te;
		if (kind != 0 && kind != '{' && kind != '&') {
			while (ls > pos && (src[ls - 1] == ' ' ||
			                    src[ls - 1] == '\t'))
				ls--;
			re = te;
			while (re < len && (src[re] == ' ' || src[re] == '\t'))
				re++;
			if (ls == u.begin || src[ls - 1] == '\n') {
				if (re == len) {
					standalone = 1;
					next = len;
				} else if (src[re] == '\n') {
					standalone = 1;
					next = re + 1;
				} else if (src[re] == '\r' && re + 1 < len &&
				           src[re + 1] == '\n') {
					standalone = 1;
					next = re + 2;
				}
			}
		}
		if (!standalone)
			ls = ts;
		if (tmpl_text_emit(cc, src + pos, ls - pos) < 0)
			goto out;

		p = src + cs;
		q = src + ce;
		switch (kind) {
		case '!':
			break;
		case '=':
			if (tmpl_delims_parse(&u, p, q) < 0) {
				tmpl_fail(cc, file, line, "%.*s: bad delimiter "
				          "change (want two delimiters of 1 to %d "
				          "non-blank bytes, as in {{=<%% %%>=}})",
				          ql, src + ts, TMPL_DELIM_MAX);
				goto out;
			}
			break;
		case '>':
			tmpl_trim(&p, &q);
			if (tmpl_partial(cc, &u, line, src + ts, te - ts, p,
			                 (size_t)(q - p), src + ls, ts - ls) < 0)
				goto out;
			break;
		case '#':
		case '^': {
			size_t i;

			tmpl_trim(&p, &q);
			nlen = (size_t)(q - p);
			if (nlen == 0) {
				tmpl_fail(cc, file, line, "%.*s: section without "
				          "a name", ql, src + ts);
				goto out;
			}
			if (memchr(p, '|', nlen) != NULL) {
				tmpl_fail(cc, file, line, "%.*s: a section takes "
				          "no default", ql, src + ts);
				goto out;
			}
			if ((i = tmpl_name_find(cc, p, nlen)) == (size_t)-1) {
				tmpl_fail(cc, file, line, "%.*s: no column "
				          "'%.*s' in the recipient list", ql,
				          src + ts, (int)nlen, p);
				goto out;
			}
			if (tmpl_name_use(cc, i) < 0)
				goto out;
			if ((top = tmpl_open_push(cc, &stack, &nstack,
			                          &capstack)) == NULL)
				goto out;
			if ((nd = tmpl_node_new(cc)) == NULL)
				goto out;
			cc->merge = 0;
			nd->kind = TMPL_NODE_SECTION;
			nd->var = i;
			nd->file = file;
			nd->line = line;
			if (kind == '^')
				nd->flags |= TMPL_F_INVERTED;
			else
				cc->guard[i]++;
			top->var = i;
			top->node = cc->t->nnodes - 1;
			top->line = line;
			top->inverted = kind == '^';
			top->name = p;
			top->nlen = nlen;
			break;
		}
		case '/':
			tmpl_trim(&p, &q);
			nlen = (size_t)(q - p);
			if (nstack == 0) {
				tmpl_fail(cc, file, line, "%.*s: no open section "
				          "to close", ql, src + ts);
				goto out;
			}
			top = &stack[nstack - 1];
			if (nlen != top->nlen || memcmp(p, top->name, nlen) != 0) {
				tmpl_fail(cc, file, line, "%.*s: closes '%.*s' "
				          "but the open section is {{%c%.*s}} "
				          "(line %u)", ql, src + ts, (int)nlen, p,
				          top->inverted ? '^' : '#',
				          (int)top->nlen, top->name, top->line);
				goto out;
			}
			cc->t->nodes[top->node].jump = cc->t->nnodes;
			if (!top->inverted)
				cc->guard[top->var]--;
			cc->merge = 0;
			nstack--;
			break;
		default: /* 0, '{', '&': interpolation */
			if (tmpl_var(cc, &u, line, src + ts, te - ts, p, q,
			             kind == 0 && cc->o->mode == TMPL_HTML,
			             kind == 0 && cc->o->mode == TMPL_URL) < 0)
				goto out;
			break;
		}
		pos = next;
	}
	if (nstack > 0) {
		top = &stack[nstack - 1];
		tmpl_fail(cc, file, top->line, "{{%c%.*s}}: section not closed "
		          "(no {{/%.*s}} before the end of the file)",
		          top->inverted ? '^' : '#', (int)top->nlen, top->name,
		          (int)top->nlen, top->name);
		goto out;
	}
	rc = 0;
out:
	free(stack);
	return rc;
}

/* ---- public API ---------------------------------------------------------- */

struct tmpl *tmpl_compile(const char *src, size_t len,
                          const struct tmpl_opts *o,
                          const struct tmpl_names *names,
                          char *err, size_t errlen)
{
	struct tmpl_cc cc;
	struct tmpl *t;
	size_t n = names ? names->n : 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&cc, 0, sizeof(cc));
	cc.o = o;
	cc.names = names;
	cc.err = err;
	cc.errlen = errlen;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail_nomem;
	cc.t = t;
	t->nnames = n;
	t->uses = calloc(n ? n : 1, 1);
	t->names = calloc(n ? n : 1, sizeof(*t->names));
	t->text = malloc(1); /* never NULL, even for an empty template */
	if (t->uses == NULL || t->names == NULL || t->text == NULL)
		goto fail_nomem;
	cc.text_cap = 1;
	if (tmpl_file_add(&cc, o->file ? o->file : "template") < 0)
		goto fail_nomem;
	if (tmpl_names_index(&cc) < 0)
		goto fail_nomem;
	if (tmpl_unit_compile(&cc, src, len, 0,
	                      o->first_line ? o->first_line : 1, 0) < 0)
		goto fail;
	free(cc.hash);
	free(cc.nlens);
	free(cc.guard);
	return t;

fail_nomem:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: out of memory",
		         o->file ? o->file : "template");
fail:
	free(cc.hash);
	free(cc.nlens);
	free(cc.guard);
	tmpl_free(t);
	return NULL;
}

/* Append s[n] percent-encoded: RFC 3986 unreserved bytes stay. */
static int tmpl_url_append(struct buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	if (buf_reserve(out, 3 * n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = hex[c >> 4];
			out->data[out->len++] = hex[c & 15];
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

/* The hot path: one forward walk over the nodes, appending to out. */
int tmpl_render(const struct tmpl *t, const struct tmpl_values *v,
                int strict, struct buf *out, char *err, size_t errlen)
{
	/* nodes is NULL when the template has none ("" or only comments),
	 * and NULL + 0 is undefined in C: found by tests/fuzz/fuzz_tmpl */
	const struct tmpl_node *nd = t->nodes;
	const struct tmpl_node *end = nd != NULL ? nd + t->nnodes : nd;
	const char *text = t->text, *s;
	size_t n;
	int rc;

	/* One reservation for the literal text covers most messages. */
	if (buf_reserve(out, t->textlen) < 0)
		goto fail_nomem;
	while (nd < end) {
		switch (nd->kind) {
		case TMPL_NODE_TEXT:
			if (buf_append(out, text + nd->off, nd->len) < 0)
				goto fail_nomem;
			nd++;
			break;
		case TMPL_NODE_VAR:
			s = v->vals[nd->var];
			n = s == NULL ? 0 : v->lens ? v->lens[nd->var] : strlen(s);
			if (n == 0) {
				if (nd->flags & TMPL_F_DEFAULT)
					rc = buf_append(out, text + nd->off,
					                nd->len);
				else if (strict && !(nd->flags & TMPL_F_GUARDED))
					goto fail_empty;
				else
					rc = 0;
			} else if (nd->flags & TMPL_F_ESCAPE) {
				rc = tmpl_html_append(out, s, n);
			} else if (nd->flags & TMPL_F_URL) {
				rc = tmpl_url_append(out, s, n);
			} else {
				rc = buf_append(out, s, n);
			}
			if (rc < 0)
				goto fail_nomem;
			nd++;
			break;
		default: /* TMPL_NODE_SECTION: enter iff empty == inverted */
			s = v->vals[nd->var];
			n = s == NULL ? 0 : v->lens ? v->lens[nd->var] : strlen(s);
			if ((n == 0) == !!(nd->flags & TMPL_F_INVERTED))
				nd++;
			else
				nd = t->nodes + nd->jump;
			break;
		}
	}
	return 0;

fail_empty:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s:%u: %s is empty", t->files[nd->file],
		         nd->line, t->names[nd->var]);
	return TMPL_EMPTY;
fail_nomem:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: out of memory", t->files[0]);
	return -1;
}

int tmpl_uses(const struct tmpl *t, size_t i)
{
	return i < t->nnames && t->uses[i];
}

void tmpl_free(struct tmpl *t)
{
	size_t i;

	if (t == NULL)
		return;
	if (t->names != NULL)
		for (i = 0; i < t->nnames; i++)
			free(t->names[i]);
	for (i = 0; i < t->nfiles; i++)
		free(t->files[i]);
	free(t->files);
	free(t->names);
	free(t->uses);
	free(t->text);
	free(t->nodes);
	free(t);
}
