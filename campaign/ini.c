/*
 * ini.c - the campaign INI reader (grammar in ini.h and docs/config.md).
 *
 * Written by hand because Debian's libinih truncates lines at 200 bytes,
 * does not give the handler a line number and keeps quotes. The parser is
 * a single pass over a buffer: no line length limit, every error carries
 * file:line. ini_load() is the only function that touches the file system.
 */
#include "ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* A config file larger than this is surely a mistake (a CSV named as the
 * config?): refuse it rather than parse megabytes of noise. */
#define INI_MAX_FILE (16u * 1024 * 1024)

struct ini_builder {
	struct ini *ini;
	size_t cap, scap;
	const char *section, *sub; /* current section, NULL before the first */
	unsigned section_line;
	struct ini_entry *last;    /* entry a continuation line extends */
	char *err;
	size_t errlen;
	unsigned line;
};

static int ini_fail(struct ini_builder *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record "file:line: message" and return -1. */
static int ini_fail(struct ini_builder *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(b->err, b->errlen, "%s:%u: ", b->ini->file, b->line);
	if (n < 0 || (size_t)n >= b->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static char *dup_range(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Trim blanks at both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*s)[*n - 1]))
		(*n)--;
}

/* Length of an unquoted value up to an inline comment: a ';' first in
 * the value or after a blank. '#' is left alone: "Spring sale #2". */
static size_t unquoted_len(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == ';' && (i == 0 || is_blank(s[i - 1])))
			return i;
	return n;
}

/*
 * Parse the value part of a key line: quoted or not. On success *out is a
 * new string and *quoted says which form it had.
 */
static int parse_value(struct ini_builder *b, const char *s, size_t n,
                       char **out, int *quoted)
{
	trim(&s, &n);
	*quoted = 0;
	if (n > 0 && s[0] == '"') {
		char *v = malloc(n), *w = v;
		size_t i;

		if (v == NULL)
			return ini_fail(b, "out of memory");
		for (i = 1; i < n && s[i] != '"'; i++) {
			if (s[i] == '\\' && i + 1 < n &&
			    (s[i + 1] == '"' || s[i + 1] == '\\'))
				i++;
			*w++ = s[i];
		}
		if (i >= n) {
			free(v);
			return ini_fail(b, "unterminated quoted value (a '\"' is missing)");
		}
		*w = '\0';
		/* After the closing quote: blanks, then nothing or a comment. */
		for (i++; i < n && is_blank(s[i]); i++)
			;
		if (i < n && s[i] != ';' && s[i] != '#') {
			free(v);
			return ini_fail(b, "text after the closing quote: '%.*s' "
			                "(quote the whole value, or start a comment with ';')",
			                (int)(n - i), s + i);
		}
		*out = v;
		*quoted = 1;
		return 0;
	}
	n = unquoted_len(s, n); /* s is trimmed: a leading ';' is a comment */
	trim(&s, &n);
	*out = dup_range(s, n);
	return *out == NULL ? ini_fail(b, "out of memory") : 0;
}

/* "[name]" or "[name sub]". */
static int parse_section(struct ini_builder *b, const char *s, size_t n)
{
	const char *end = memchr(s, ']', n), *name, *sub;
	size_t nn, sn, rest;

	if (end == NULL)
		return ini_fail(b, "section header without ']'");
	rest = n - (size_t)(end - s) - 1;
	const char *tail = end + 1;
	trim(&tail, &rest);
	if (rest > 0 && tail[0] != ';' && tail[0] != '#')
		return ini_fail(b, "text after section header: '%.*s'", (int)rest, tail);
	name = s + 1;
	nn = (size_t)(end - name);
	trim(&name, &nn);
	for (sn = 0; sn < nn && !is_blank(name[sn]); sn++)
		;
	sub = name + sn;
	size_t subn = nn - sn;
	trim(&sub, &subn);
	nn = sn;
	if (nn == 0)
		return ini_fail(b, "empty section name");
	for (size_t i = 0; i < nn; i++)
		if (!is_key_char(name[i]))
			return ini_fail(b, "invalid character in section name '%.*s'",
			                (int)nn, name);
	/* The sub part may list several words and wildcards:
	 * [domain gmail.com googlemail.com], [domain *.edu]. */
	for (size_t i = 0; i < subn; i++)
		if (!is_key_char(sub[i]) && sub[i] != '*' && !is_blank(sub[i]))
			return ini_fail(b, "invalid section '[%.*s]': use [name] or [name sub]",
			                (int)(end - s - 1), s + 1);

	struct ini *ini = b->ini;
	for (size_t i = 0; i < ini->nsections; i++)
		if (strlen(ini->sections[i].name) == nn &&
		    memcmp(ini->sections[i].name, name, nn) == 0 &&
		    strlen(ini->sections[i].sub) == subn &&
		    memcmp(ini->sections[i].sub, sub, subn) == 0)
			return ini_fail(b, "section [%.*s] given twice (first at line %u)",
			                (int)(end - s - 1), s + 1, ini->sections[i].line);
	if (ini->nsections == b->scap) {
		size_t cap = b->scap ? b->scap * 2 : 8;
		void *p = realloc(ini->sections, cap * sizeof(*ini->sections));
		if (p == NULL)
			return ini_fail(b, "out of memory");
		ini->sections = p;
		b->scap = cap;
	}
	char *nm = dup_range(name, nn), *sb = dup_range(sub, subn);
	if (nm == NULL || sb == NULL) {
		free(nm);
		free(sb);
		return ini_fail(b, "out of memory");
	}
	ini->sections[ini->nsections].name = nm;
	ini->sections[ini->nsections].sub = sb;
	ini->sections[ini->nsections].line = b->line;
	ini->nsections++;
	b->section = nm;
	b->sub = sb;
	b->section_line = b->line;
	b->last = NULL;
	return 0;
}

/* "key = value". */
static int parse_key(struct ini_builder *b, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n), *key = s;
	size_t kn;
	struct ini *ini = b->ini;

	if (eq == NULL)
		return ini_fail(b, "expected 'key = value', '[section]' or a comment, got '%.*s'",
		                (int)(n > 60 ? 60 : n), s);
	kn = (size_t)(eq - s);
	trim(&key, &kn);
	if (kn == 0)
		return ini_fail(b, "missing key before '='");
	for (size_t i = 0; i < kn; i++)
		if (!is_key_char(key[i]))
			return ini_fail(b, "invalid key '%.*s' (keys are letters, digits, '_', '-', '.')",
			                (int)kn, key);
	if (b->section == NULL)
		return ini_fail(b, "key '%.*s' outside any section (start with e.g. [campaign])",
		                (int)kn, key);
	for (size_t i = 0; i < ini->n; i++) {
		struct ini_entry *e = &ini->entries[i];
		if (e->section == b->section && strlen(e->key) == kn &&
		    memcmp(e->key, key, kn) == 0)
			return ini_fail(b, "key '%.*s' given twice in [%s%s%s] (first at line %u)",
			                (int)kn, key, b->section, *b->sub ? " " : "",
			                b->sub, e->line);
	}
	if (ini->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		void *p = realloc(ini->entries, cap * sizeof(*ini->entries));
		if (p == NULL)
			return ini_fail(b, "out of memory");
		ini->entries = p;
		b->cap = cap;
	}
	struct ini_entry *e = &ini->entries[ini->n];
	char *value, *k;
	if (parse_value(b, eq + 1, (size_t)(s + n - eq - 1), &value, &e->quoted) < 0)
		return -1;
	k = dup_range(key, kn);
	if (k == NULL) {
		free(value);
		return ini_fail(b, "out of memory");
	}
	if ((e->lines = malloc(sizeof(*e->lines))) == NULL) {
		free(value);
		free(k);
		return ini_fail(b, "out of memory");
	}
	e->lines[0] = b->line;
	e->nlines = 1;
	e->continued = 0;
	e->section = b->section;
	e->sub = b->sub;
	e->key = k;
	e->value = value;
	e->line = b->line;
	e->section_line = b->section_line;
	ini->n++;
	/* Quoted values are complete; only unquoted ones may continue. */
	b->last = e->quoted ? NULL : e;
	return 0;
}

/* An indented line after a key line: append "\n" + text to its value. */
static int parse_continuation(struct ini_builder *b, const char *s, size_t n)
{
	struct ini_entry *e = b->last;
	size_t old = strlen(e->value);
	unsigned *lines;
	char *v;

	n = unquoted_len(s, n);
	trim(&s, &n);
	e->continued = 1;
	if (old == 0) {
		/* "headers =" then indented lines: the first part is here */
		e->lines[0] = b->line;
	} else {
		lines = realloc(e->lines, (e->nlines + 1) * sizeof(*lines));
		if (lines == NULL)
			return ini_fail(b, "out of memory");
		e->lines = lines;
		e->lines[e->nlines++] = b->line;
	}
	v = realloc((char *)e->value, old + n + 2);
	if (v == NULL)
		return ini_fail(b, "out of memory");
	if (old > 0)
		v[old++] = '\n';
	memcpy(v + old, s, n);
	v[old + n] = '\0';
	e->value = v;
	return 0;
}

static int parse_line(struct ini_builder *b, const char *s, size_t n)
{
	const char *t = s;
	size_t tn = n;
	int indented = n > 0 && is_blank(s[0]);

	trim(&t, &tn);
	if (tn == 0) {
		b->last = NULL; /* a blank line ends a multi-line value */
		return 0;
	}
	if (t[0] == ';' || t[0] == '#')
		return 0;
	if (indented && b->last != NULL)
		return parse_continuation(b, t, tn);
	if (t[0] == '[')
		return parse_section(b, t, tn);
	return parse_key(b, t, tn);
}

struct ini *ini_parse(const char *buf, size_t len, const char *file,
                      char *err, size_t errlen)
{
	struct ini_builder b = { .err = err, .errlen = errlen };
	size_t pos = 0, bad;

	b.ini = calloc(1, sizeof(*b.ini));
	if (b.ini == NULL || (b.ini->file = strdup(file)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len, n = end - pos;

		b.line++;
		if (n > 0 && buf[pos + n - 1] == '\r')
			n--;
		if ((bad = utf8_check((const unsigned char *)buf + pos, n)) != n) {
			ini_fail(&b, "not valid UTF-8 at column %zu (byte 0x%02X); "
			         "save the file as UTF-8", bad + 1,
			         (unsigned char)buf[pos + bad]);
			goto fail;
		}
		if (memchr(buf + pos, '\0', n) != NULL) {
			ini_fail(&b, "NUL byte in line");
			goto fail;
		}
		if (parse_line(&b, buf + pos, n) < 0)
			goto fail;
		pos = end + 1;
	}
	return b.ini;

fail:
	ini_free(b.ini);
	return NULL;
}

struct ini *ini_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct ini *ini = NULL;
	char *buf = NULL;
	long size;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out_close;
	}
	if ((unsigned long)size > INI_MAX_FILE) {
		snprintf(err, errlen, "%s: %ld bytes is too large for a config file",
		         path, size);
		goto out_close;
	}
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out_close;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		snprintf(err, errlen, "%s: read error", path);
		goto out_free;
	}
	ini = ini_parse(buf, (size_t)size, path, err, errlen);
out_free:
	free(buf);
out_close:
	fclose(f);
	return ini;
}

void ini_free(struct ini *ini)
{
	if (ini == NULL)
		return;
	for (size_t i = 0; i < ini->n; i++) {
		free((char *)ini->entries[i].key);
		free((char *)ini->entries[i].value);
		free(ini->entries[i].lines);
	}
	for (size_t i = 0; i < ini->nsections; i++) {
		free((char *)ini->sections[i].name);
		free((char *)ini->sections[i].sub);
	}
	free(ini->entries);
	free(ini->sections);
	free(ini->file);
	free(ini);
}
