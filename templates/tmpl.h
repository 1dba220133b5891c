/*
 * tmpl.h - Mustache templates: compile once, render per recipient
 * (I/O-free except for reading partials at compile time).
 *
 * Syntax: the Mustache spec (interpolation, sections, inverted sections,
 * comments, partials, set delimiters; standalone-line rules) over a flat
 * context: every variable is a string (a CSV column or a built-in); a
 * section {{#x}}...{{/x}} renders its body once when x is non-empty, an
 * inverted one {{^x}}...{{/x}} when x is empty. Dotted names and lists do
 * not exist here. edm's extension: {{name|default}} (also in {{{ }}} and
 * {{& }}) renders 'default' when name is empty.
 *
 * Contract:
 *   - Variable names are resolved at compile time against 'names'; an
 *     unknown name is a compile error naming file:line and the name, so a
 *     template that uses a column the CSV lacks fails before anything is
 *     sent.
 *   - Rendering walks the compiled node list and appends to a struct buf:
 *     no parsing, no allocation beyond the buffer's growth; cost is linear
 *     in the output size.
 *   - TMPL_HTML escapes {{x}} as HTML (& < > " '); TMPL_TEXT does not
 *     escape at all (headers and text parts). {{{x}}} and {{& x}} never
 *     escape.
 *   - A compiled template is immutable and may be rendered from several
 *     threads at once.
 */
#ifndef EDM_TMPL_H
#define EDM_TMPL_H

#include <stddef.h>

struct buf;
struct tmpl;

enum tmpl_mode {
	TMPL_TEXT = 0, /* no escaping */
	TMPL_HTML = 1, /* {{x}} is HTML-escaped */
	TMPL_URL = 2,  /* {{x}} is percent-encoded (RFC 3986: all but the
	                  unreserved A-Z a-z 0-9 - . _ ~), for values put into
	                  a URL such as unsubscribe_url ("?e={{email}}" with
	                  "ann+news@x" gives "?e=ann%2Bnews%40x") */
};

/* tmpl_render()'s result when strict mode finds an empty variable. */
#define TMPL_EMPTY (-2)

struct tmpl_names {
	const char *const *names; /* variable i is names[i] */
	size_t n;
};

struct tmpl_values {
	const char *const *vals;  /* vals[i] for names[i]; NULL means empty */
	const size_t *lens;       /* byte lengths (NULL vals: ignored); a
	                             0 length is empty too. lens NULL: the
	                             vals are C strings (strlen) */
};

struct tmpl_opts {
	enum tmpl_mode mode;
	const char *file;         /* for messages: "body.html" or "c.ini" */
	unsigned first_line;      /* line of src[0] in 'file' (1 for a file,
	                             the key's line for a config value) */
	const char *partials_dir; /* {{> name}} reads partials_dir/name, then
	                             name.mustache, name.html, name.txt;
	                             NULL: partials are an error */
};

/*
 * Compile src[len]. Returns the template, or NULL with
 * "file:line: what" in err (unknown variable: "file:line: {{frist_name}}:
 * no column 'frist_name' in the recipient list", unclosed section,
 * mismatched close tag, bad delimiter change, missing partial, partial
 * recursion deeper than 16).
 */
struct tmpl *tmpl_compile(const char *src, size_t len,
                          const struct tmpl_opts *o,
                          const struct tmpl_names *names,
                          char *err, size_t errlen);

/*
 * Append the rendering to 'out'. With strict set, a variable used without
 * a default and outside a section on that same variable that is empty
 * makes the render fail: returns TMPL_EMPTY with "file:line: first_name
 * is empty" in err (out may hold a partial rendering). Otherwise returns 0
 * (-1 only on allocation failure, err says so).
 */
int tmpl_render(const struct tmpl *t, const struct tmpl_values *v,
                int strict, struct buf *out, char *err, size_t errlen);

/* 1 when the template uses variable index i anywhere. */
int tmpl_uses(const struct tmpl *t, size_t i);

/* Free; NULL is a no-op. */
void tmpl_free(struct tmpl *t);

#endif
