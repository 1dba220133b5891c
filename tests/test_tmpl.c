/*
 * test_tmpl.c - Mustache templates (tmpl.c): the Mustache spec cases that
 * make sense over a flat string context, edm's defaults, strict mode,
 * compile errors with file:line, partials (lookup order, indentation,
 * traversal refusal, recursion bound), escaping, and repeated renders of
 * one compiled template.
 *
 * The spec cases are transcribed from https://github.com/mustache/spec
 * (specs/interpolation, sections, inverted, comments, partials,
 * delimiters), rendered in TMPL_HTML mode as the spec escapes by default.
 * Data is flat: true becomes "1", false "", null a NULL value, numbers
 * their string form. Skipped, because this context has no such thing:
 *   interpolation: Dotted Names (all 9);
 *   sections: Context, Parent contexts, List Contexts, Deeply Nested
 *     Contexts, List, Empty List, Implicit Iterator (4), Dotted Names (3);
 *     "Variable test" is kept with {{.}} replaced by {{foo}};
 *   inverted: Context, List, Empty List, Dotted Names;
 *   partials: Failed Lookup (an error in edm, tested in
 *     test_partial_errors), Recursion (needs lists; any recursion is an
 *     error here, tested there too);
 *   the optional modules (~lambdas, ~inheritance, ~dynamic-names) and the
 *   newer list/object-only cases.
 * Spec partials are written to a private temp directory, one per case, so
 * each case shows the exact bytes; the partials used by the other tests
 * are checked in under tests/fixtures/tmpl/partials/.
 */
#include "cunit_main.h"
#include "buf.h"
#include "tmpl.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PDIR EDM_FIXTURES "/tmpl/partials"
#define CTX_MAX 16

static char tmpdir[64];
static char errbuf[512];
static struct buf out;

/* ---- helpers -------------------------------------------------------- */

/* A flat context: names[i] = vals[i] (NULL: no value). */
struct ctx {
	size_t n;
	const char *names[CTX_MAX];
	const char *vals[CTX_MAX];
	size_t lens[CTX_MAX];
	char keys[CTX_MAX][64];
};

/* Fill c from "key=value" strings (a bare "key" has a NULL value), up to a
 * NULL entry or CTX_MAX. Values point into the strings. */
static void ctx_init(struct ctx *c, const char *const *kv, size_t max)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < max && kv[i] != NULL; i++) {
		const char *eq = strchr(kv[i], '=');
		size_t kl = eq ? (size_t)(eq - kv[i]) : strlen(kv[i]);

		snprintf(c->keys[i], sizeof(c->keys[i]), "%.*s", (int)kl, kv[i]);
		c->names[i] = c->keys[i];
		c->vals[i] = eq ? eq + 1 : NULL;
		c->lens[i] = eq ? strlen(eq + 1) : 0;
	}
	c->n = i;
}

/* Set variable 'name' (must exist) to val (NULL allowed). */
static void ctx_set(struct ctx *c, const char *name, const char *val)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0) {
			c->vals[i] = val;
			c->lens[i] = val ? strlen(val) : 0;
			return;
		}
	fprintf(stderr, "ctx_set: no %s\n", name);
	exit(125);
}

/* Compile src over c's names; NULL with errbuf on failure. */
static struct tmpl *compile_full(const char *src, enum tmpl_mode mode,
                                 const char *file, unsigned first_line,
                                 const char *pdir, const struct ctx *c)
{
	struct tmpl_opts o = {mode, file, first_line, pdir};
	struct tmpl_names nm = {c->names, c->n};

	errbuf[0] = '\0';
	return tmpl_compile(src, strlen(src), &o, &nm, errbuf, sizeof(errbuf));
}

static struct tmpl *compile(const char *src, enum tmpl_mode mode,
                            const struct ctx *c)
{
	return compile_full(src, mode, "t.txt", 1, PDIR, c);
}

/* Render into the shared 'out' buffer (reset first). */
static int render(const struct tmpl *t, const struct ctx *c, int strict)
{
	struct tmpl_values v = {c->vals, c->lens};

	buf_reset(&out);
	errbuf[0] = '\0';
	return tmpl_render(t, &v, strict, &out, errbuf, sizeof(errbuf));
}

/* Equal strings and the buffer length agrees (no stray NUL). */
#define CHECK_OUT(want) do { \
	const char *w_ = (want); \
	int ok_ = out.data != NULL && strcmp(out.data, w_) == 0 && \
	          out.len == strlen(w_); \
	CU_ASSERT(ok_); \
	if (!ok_) \
		fprintf(stderr, "\n%s:%d: got [%s] want [%s]\n", __FILE__, \
		        __LINE__, out.data ? out.data : "(null)", w_); \
} while (0)

#define CHECK_ERR(want) do { \
	const char *w_ = (want); \
	int ok_ = strcmp(errbuf, w_) == 0; \
	CU_ASSERT(ok_); \
	if (!ok_) \
		fprintf(stderr, "\n%s:%d: err [%s] want [%s]\n", __FILE__, \
		        __LINE__, errbuf, w_); \
} while (0)

/* errbuf starts with 'prefix' and contains 'part'. */
#define CHECK_ERR_HAS(prefix, part) do { \
	const char *p_ = (prefix), *s_ = (part); \
	int ok_ = strncmp(errbuf, p_, strlen(p_)) == 0 && \
	          strstr(errbuf, s_) != NULL; \
	CU_ASSERT(ok_); \
	if (!ok_) \
		fprintf(stderr, "\n%s:%d: err [%s] want [%s...%s...]\n", \
		        __FILE__, __LINE__, errbuf, p_, s_); \
} while (0)

/* Compile and render in one go; 0 or -1 (errbuf says). */
static int run(const char *src, enum tmpl_mode mode, const struct ctx *c,
               int strict)
{
	struct tmpl *t = compile(src, mode, c);
	int rc;

	if (t == NULL)
		return -1;
	rc = render(t, c, strict);
	tmpl_free(t);
	return rc;
}

/* A fresh directory under the private temp directory. */
static const char *tmp_dir(void)
{
	static char path[128];
	static unsigned seq;

	if (tmpdir[0] == '\0') {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/edm_test_tmpl.XXXXXX");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(125);
		}
	}
	snprintf(path, sizeof(path), "%s/d%u", tmpdir, seq++);
	if (mkdir(path, 0700) < 0) {
		perror(path);
		exit(125);
	}
	return path;
}

static void write_file(const char *dir, const char *name, const char *data)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fputs(data, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(125);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- Mustache spec cases --------------------------------------------- */

struct spec_case {
	const char *name;
	const char *data[6];     /* "key=value"; bare "key": NULL value */
	const char *partials[3]; /* "name=content" */
	const char *tmpl;
	const char *expected;
};

/* Run a table of spec cases; each failure names its case. */
static void spec_run(const char *group, const struct spec_case *cs, size_t n)
{
	struct ctx c;
	struct tmpl *t;
	const char *dir;
	size_t i, k;
	int rc;

	for (i = 0; i < n; i++) {
		ctx_init(&c, cs[i].data, 6);
		dir = tmp_dir();
		for (k = 0; k < 3 && cs[i].partials[k] != NULL; k++) {
			const char *eq = strchr(cs[i].partials[k], '=');
			char name[64];

			snprintf(name, sizeof(name), "%.*s",
			         (int)(eq - cs[i].partials[k]), cs[i].partials[k]);
			write_file(dir, name, eq + 1);
		}
		t = compile_full(cs[i].tmpl, TMPL_HTML, "spec", 1, dir, &c);
		CU_ASSERT_PTR_NOT_NULL(t);
		if (t == NULL) {
			fprintf(stderr, "\n%s / %s: compile: %s\n", group,
			        cs[i].name, errbuf);
			continue;
		}
		rc = render(t, &c, 0);
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_STRING_EQUAL(out.data, cs[i].expected);
		if (rc != 0 || strcmp(out.data, cs[i].expected) != 0)
			fprintf(stderr, "\n%s / %s: got [%s] want [%s] %s\n",
			        group, cs[i].name, out.data, cs[i].expected,
			        errbuf);
		tmpl_free(t);
	}
}

#define SPEC_RUN(group, table) \
	spec_run(group, table, sizeof(table) / sizeof(table[0]))

static const struct spec_case spec_interpolation[] = {
	{"No Interpolation", {0}, {0},
	 "Hello from {Mustache}!\n", "Hello from {Mustache}!\n"},
	{"Basic Interpolation", {"subject=world"}, {0},
	 "Hello, {{subject}}!\n", "Hello, world!\n"},
	{"HTML Escaping", {"forbidden=& \" < >"}, {0},
	 "These characters should be HTML escaped: {{forbidden}}\n",
	 "These characters should be HTML escaped: &amp; &quot; &lt; &gt;\n"},
	{"Triple Mustache", {"forbidden=& \" < >"}, {0},
	 "These characters should not be HTML escaped: {{{forbidden}}}\n",
	 "These characters should not be HTML escaped: & \" < >\n"},
	{"Ampersand", {"forbidden=& \" < >"}, {0},
	 "These characters should not be HTML escaped: {{&forbidden}}\n",
	 "These characters should not be HTML escaped: & \" < >\n"},
	{"Basic Integer Interpolation", {"mph=85"}, {0},
	 "\"{{mph}} miles an hour!\"", "\"85 miles an hour!\""},
	{"Triple Mustache Integer Interpolation", {"mph=85"}, {0},
	 "\"{{{mph}}} miles an hour!\"", "\"85 miles an hour!\""},
	{"Ampersand Integer Interpolation", {"mph=85"}, {0},
	 "\"{{&mph}} miles an hour!\"", "\"85 miles an hour!\""},
	{"Basic Decimal Interpolation", {"power=1.21"}, {0},
	 "\"{{power}} jiggawatts!\"", "\"1.21 jiggawatts!\""},
	{"Triple Mustache Decimal Interpolation", {"power=1.21"}, {0},
	 "\"{{{power}}} jiggawatts!\"", "\"1.21 jiggawatts!\""},
	{"Ampersand Decimal Interpolation", {"power=1.21"}, {0},
	 "\"{{&power}} jiggawatts!\"", "\"1.21 jiggawatts!\""},
	/* Context misses: the column exists (else it is a compile error)
	 * but has no value. */
	{"Basic Context Miss Interpolation", {"cannot"}, {0},
	 "I ({{cannot}}) be seen!", "I () be seen!"},
	{"Triple Mustache Context Miss Interpolation", {"cannot"}, {0},
	 "I ({{{cannot}}}) be seen!", "I () be seen!"},
	{"Ampersand Context Miss Interpolation", {"cannot"}, {0},
	 "I ({{&cannot}}) be seen!", "I () be seen!"},
	{"Interpolation - Surrounding Whitespace", {"string=---"}, {0},
	 "| {{string}} |", "| --- |"},
	{"Triple Mustache - Surrounding Whitespace", {"string=---"}, {0},
	 "| {{{string}}} |", "| --- |"},
	{"Ampersand - Surrounding Whitespace", {"string=---"}, {0},
	 "| {{&string}} |", "| --- |"},
	{"Interpolation - Standalone", {"string=---"}, {0},
	 "  {{string}}\n", "  ---\n"},
	{"Triple Mustache - Standalone", {"string=---"}, {0},
	 "  {{{string}}}\n", "  ---\n"},
	{"Ampersand - Standalone", {"string=---"}, {0},
	 "  {{&string}}\n", "  ---\n"},
	{"Interpolation With Padding", {"string=---"}, {0},
	 "|{{ string }}|", "|---|"},
	{"Triple Mustache With Padding", {"string=---"}, {0},
	 "|{{{ string }}}|", "|---|"},
	{"Ampersand With Padding", {"string=---"}, {0},
	 "|{{& string }}|", "|---|"},
};

static const struct spec_case spec_sections[] = {
	{"Truthy", {"boolean=1"}, {0},
	 "\"{{#boolean}}This should be rendered.{{/boolean}}\"",
	 "\"This should be rendered.\""},
	{"Falsey", {"boolean="}, {0},
	 "\"{{#boolean}}This should not be rendered.{{/boolean}}\"", "\"\""},
	{"Null is falsey", {"null"}, {0},
	 "\"{{#null}}This should not be rendered.{{/null}}\"", "\"\""},
	{"Variable test ({{.}} -> {{foo}})", {"foo=bar"}, {0},
	 "\"{{#foo}}{{foo}} is {{foo}}{{/foo}}\"", "\"bar is bar\""},
	{"Strings Not Lists", {"section=123"}, {0},
	 "\"{{#section}}foo{{/section}}\"", "\"foo\""},
	{"Doubled", {"bool=1", "two=second"}, {0},
	 "{{#bool}}\n* first\n{{/bool}}\n* {{two}}\n{{#bool}}\n* third\n"
	 "{{/bool}}\n",
	 "* first\n* second\n* third\n"},
	{"Nested (Truthy)", {"bool=1"}, {0},
	 "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |",
	 "| A B C D E |"},
	{"Nested (Falsey)", {"bool="}, {0},
	 "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |", "| A  E |"},
	{"Context Misses", {"missing"}, {0},
	 "[{{#missing}}Found key 'missing'!{{/missing}}]", "[]"},
	{"Surrounding Whitespace", {"boolean=1"}, {0},
	 " | {{#boolean}}\t|\t{{/boolean}} | \n", " | \t|\t | \n"},
	{"Internal Whitespace", {"boolean=1"}, {0},
	 " | {{#boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n",
	 " |  \n  | \n"},
	{"Indented Inline Sections", {"boolean=1"}, {0},
	 " {{#boolean}}YES{{/boolean}}\n {{#boolean}}GOOD{{/boolean}}\n",
	 " YES\n GOOD\n"},
	{"Standalone Lines", {"boolean=1"}, {0},
	 "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line\n",
	 "| This Is\n|\n| A Line\n"},
	{"Indented Standalone Lines", {"boolean=1"}, {0},
	 "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line\n",
	 "| This Is\n|\n| A Line\n"},
	{"Standalone Line Endings", {"boolean=1"}, {0},
	 "|\r\n{{#boolean}}\r\n{{/boolean}}\r\n|", "|\r\n|"},
	{"Standalone Without Previous Line", {"boolean=1"}, {0},
	 "  {{#boolean}}\n#{{/boolean}}\n/", "#\n/"},
	{"Standalone Without Newline", {"boolean=1"}, {0},
	 "#{{#boolean}}\n/\n  {{/boolean}}", "#\n/\n"},
	{"Padding", {"boolean=1"}, {0},
	 "|{{# boolean }}={{/ boolean }}|", "|=|"},
};

static const struct spec_case spec_inverted[] = {
	{"Falsey", {"boolean="}, {0},
	 "\"{{^boolean}}This should be rendered.{{/boolean}}\"",
	 "\"This should be rendered.\""},
	{"Null", {"boolean"}, {0},
	 "\"{{^boolean}}This should be rendered.{{/boolean}}\"",
	 "\"This should be rendered.\""},
	{"Truthy", {"boolean=1"}, {0},
	 "\"{{^boolean}}This should not be rendered.{{/boolean}}\"", "\"\""},
	{"Truthy - Strings", {"string=rendered"}, {0},
	 "\"{{^string}}This should not be {{string}}.{{/string}}\"", "\"\""},
	{"Doubled", {"t=", "two=second"}, {0},
	 "{{^t}}\n* first\n{{/t}}\n* {{two}}\n{{^t}}\n* third\n{{/t}}\n",
	 "* first\n* second\n* third\n"},
	{"Nested (Falsey)", {"t="}, {0},
	 "| A {{^t}}B {{^t}}C{{/t}} D{{/t}} E |", "| A B C D E |"},
	{"Nested (Truthy)", {"t=1"}, {0},
	 "| A {{^t}}B {{^t}}C{{/t}} D{{/t}} E |", "| A  E |"},
	{"Context Misses", {"missing"}, {0},
	 "[{{^missing}}Found key 'missing'!{{/missing}}]",
	 "[Found key 'missing'!]"},
	{"Surrounding Whitespace", {"boolean="}, {0},
	 " | {{^boolean}}\t|\t{{/boolean}} | \n", " | \t|\t | \n"},
	{"Internal Whitespace", {"boolean="}, {0},
	 " | {{^boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n",
	 " |  \n  | \n"},
	{"Indented Inline Sections", {"boolean="}, {0},
	 " {{^boolean}}NO{{/boolean}}\n {{^boolean}}WAY{{/boolean}}\n",
	 " NO\n WAY\n"},
	{"Standalone Lines", {"boolean="}, {0},
	 "| This Is\n{{^boolean}}\n|\n{{/boolean}}\n| A Line\n",
	 "| This Is\n|\n| A Line\n"},
	{"Standalone Indented Lines", {"boolean="}, {0},
	 "| This Is\n  {{^boolean}}\n|\n  {{/boolean}}\n| A Line\n",
	 "| This Is\n|\n| A Line\n"},
	{"Standalone Line Endings", {"boolean="}, {0},
	 "|\r\n{{^boolean}}\r\n{{/boolean}}\r\n|", "|\r\n|"},
	{"Standalone Without Previous Line", {"boolean="}, {0},
	 "  {{^boolean}}\n^{{/boolean}}\n/", "^\n/"},
	{"Standalone Without Newline", {"boolean="}, {0},
	 "^{{^boolean}}\n/\n  {{/boolean}}", "^\n/\n"},
	{"Padding", {"boolean="}, {0},
	 "|{{^ boolean }}={{/ boolean }}|", "|=|"},
};

static const struct spec_case spec_comments[] = {
	{"Inline", {0}, {0},
	 "12345{{! Comment Block! }}67890", "1234567890"},
	{"Multiline", {0}, {0},
	 "12345{{!\n  This is a\n  multi-line comment...\n}}67890\n",
	 "1234567890\n"},
	{"Standalone", {0}, {0},
	 "Begin.\n{{! Comment Block! }}\nEnd.\n", "Begin.\nEnd.\n"},
	{"Indented Standalone", {0}, {0},
	 "Begin.\n  {{! Indented Comment Block! }}\nEnd.\n",
	 "Begin.\nEnd.\n"},
	{"Standalone Line Endings", {0}, {0},
	 "|\r\n{{! Standalone Comment }}\r\n|", "|\r\n|"},
	{"Standalone Without Previous Line", {0}, {0},
	 "  {{! I'm Still Standalone }}\n!", "!"},
	{"Standalone Without Newline", {0}, {0},
	 "!\n  {{! I'm Still Standalone }}", "!\n"},
	{"Multiline Standalone", {0}, {0},
	 "Begin.\n{{!\nSomething's going on here...\n}}\nEnd.\n",
	 "Begin.\nEnd.\n"},
	{"Indented Multiline Standalone", {0}, {0},
	 "Begin.\n  {{!\n    Something's going on here...\n  }}\nEnd.\n",
	 "Begin.\nEnd.\n"},
	{"Indented Inline", {0}, {0}, "  12 {{! 34 }}\n", "  12 \n"},
	{"Surrounding Whitespace", {0}, {0},
	 "12345 {{! Comment Block! }} 67890", "12345  67890"},
	{"Variable Name Collision", {"comment=1"}, {0},
	 "comments never show: >{{! comment }}<", "comments never show: ><"},
};

static const struct spec_case spec_partials[] = {
	{"Basic Behavior", {0}, {"text=from partial"},
	 "\"{{>text}}\"", "\"from partial\""},
	{"Context", {"text=content"}, {"partial=*{{text}}*"},
	 "\"{{>partial}}\"", "\"*content*\""},
	{"Surrounding Whitespace", {0}, {"partial=\t|\t"},
	 "| {{>partial}} |", "| \t|\t |"},
	{"Inline Indentation", {"data=|"}, {"partial=>\n>"},
	 "  {{data}}  {{> partial}}\n", "  |  >\n>\n"},
	{"Standalone Line Endings", {0}, {"partial=>"},
	 "|\r\n{{>partial}}\r\n|", "|\r\n>|"},
	{"Standalone Without Previous Line", {0}, {"partial=>\n>"},
	 "  {{>partial}}\n>", "  >\n  >>"},
	{"Standalone Without Newline", {0}, {"partial=>\n>"},
	 ">\n  {{>partial}}", ">\n  >\n  >"},
	{"Standalone Indentation", {"content=<\n->"},
	 {"partial=|\n{{{content}}}a b{{{content}}}c\n|\n"},
	 "\\\n {{>partial}}\n/\n",
	 "\\\n |\n <\n->a b<\n->c\n |\n/\n"},
	{"Padding Whitespace", {"boolean=1"}, {"partial=[]"},
	 "|{{> partial }}|", "|[]|"},
};

static const struct spec_case spec_delimiters[] = {
	{"Pair Behavior", {"text=Hey!"}, {0},
	 "{{=<% %>=}}(<%text%>)", "(Hey!)"},
	{"Special Characters", {"text=It worked!"}, {0},
	 "({{=[ ]=}}[text])", "(It worked!)"},
	{"Sections", {"section=1", "data=I got interpolated."}, {0},
	 "[\n{{#section}}\n  {{data}}\n  |data|\n{{/section}}\n\n"
	 "{{= | | =}}\n|#section|\n  {{data}}\n  |data|\n|/section|\n]\n",
	 "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n"
	 "  I got interpolated.\n]\n"},
	{"Inverted Sections", {"section=", "data=I got interpolated."}, {0},
	 "[\n{{^section}}\n  {{data}}\n  |data|\n{{/section}}\n\n"
	 "{{= | | =}}\n|^section|\n  {{data}}\n  |data|\n|/section|\n]\n",
	 "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n"
	 "  I got interpolated.\n]\n"},
	{"Partial Inheritence", {"value=yes"}, {"include=.{{value}}."},
	 "[ {{>include}} ]\n{{= | | =}}\n[ |>include| ]\n",
	 "[ .yes. ]\n[ .yes. ]\n"},
	{"Post-Partial Behavior", {"value=yes"},
	 {"include=.{{value}}. {{= | | =}} .|value|."},
	 "[ {{>include}} ]\n[ .{{value}}.  .|value|. ]\n",
	 "[ .yes.  .yes. ]\n[ .yes.  .|value|. ]\n"},
	{"Surrounding Whitespace", {0}, {0}, "| {{=@ @=}} |", "|  |"},
	{"Outlying Whitespace (Inline)", {0}, {0},
	 " | {{=@ @=}}\n", " | \n"},
	{"Standalone Tag", {0}, {0},
	 "Begin.\n{{=@ @=}}\nEnd.\n", "Begin.\nEnd.\n"},
	{"Indented Standalone Tag", {0}, {0},
	 "Begin.\n  {{=@ @=}}\nEnd.\n", "Begin.\nEnd.\n"},
	{"Standalone Line Endings", {0}, {0},
	 "|\r\n{{= @ @ =}}\r\n|", "|\r\n|"},
	{"Standalone Without Previous Line", {0}, {0},
	 "  {{=@ @=}}\n=", "="},
	{"Standalone Without Newline", {0}, {0},
	 "=\n  {{=@ @=}}", "=\n"},
	{"Pair with Padding", {0}, {0}, "|{{= @   @ =}}|", "||"},
};

static void test_spec_interpolation(void)
{
	SPEC_RUN("interpolation", spec_interpolation);
}

static void test_spec_sections(void)
{
	SPEC_RUN("sections", spec_sections);
}

static void test_spec_inverted(void)
{
	SPEC_RUN("inverted", spec_inverted);
}

static void test_spec_comments(void)
{
	SPEC_RUN("comments", spec_comments);
}

static void test_spec_partials(void)
{
	SPEC_RUN("partials", spec_partials);
}

static void test_spec_delimiters(void)
{
	SPEC_RUN("delimiters", spec_delimiters);
}

/* ---- standalone and delimiter details beyond the spec tables ----------- */

static void test_standalone_more(void)
{
	static const char *const kv[] = {"a=1", "b=", "company=ACME", NULL};
	struct ctx c;
	char src[64];

	ctx_init(&c, kv, CTX_MAX);
	/* Two tags on a line: neither is standalone, the newline stays. */
	CU_ASSERT_EQUAL(run("x\n{{#a}}{{/a}}\ny", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("x\n\ny");
	/* Tabs count as indentation; CRLF after trailing blanks. */
	CU_ASSERT_EQUAL(run("x\r\n\t {{#a}} \t\r\ny\r\n\t{{/a}}\r\nz",
	                    TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("x\r\ny\r\nz");
	/* A lone CR is not a line end: not standalone. */
	CU_ASSERT_EQUAL(run("{{#a}}\ry{{/a}}", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("\ry");
	/* Text after the tag: not standalone. */
	CU_ASSERT_EQUAL(run("{{#a}} y\n{{/a}}", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT(" y\n");
	/* A standalone skipped section removes its lines too. */
	CU_ASSERT_EQUAL(run("x\n  {{#b}}\nhidden\n  {{/b}}\ny\n", TMPL_TEXT,
	                    &c, 0), 0);
	CHECK_OUT("x\ny\n");
	/* Indented standalone partial: every line of the partial, blank ones
	 * included, gets the indentation; the final newline adds no line. */
	CU_ASSERT_EQUAL(run("<pre>\n  {{> footer}}\n</pre>\n", TMPL_TEXT, &c,
	                    0), 0);
	CHECK_OUT("<pre>\n  --\n  ACME\n  \n  bye\n</pre>\n");
	/* Inline partial: no indentation. */
	CU_ASSERT_EQUAL(run("  x {{> footer}}", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("  x --\nACME\n\nbye\n");
	/* UTF-8 BOM dropped; a standalone tag right after it still counts. */
	snprintf(src, sizeof(src), "\xEF\xBB\xBF{{! c }}\nHi {{company}}");
	CU_ASSERT_EQUAL(run(src, TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("Hi ACME");
}

static void test_delimiters_more(void)
{
	static const char *const kv[] = {"x=<b>", "y=", NULL};
	struct ctx c;

	ctx_init(&c, kv, CTX_MAX);
	/* Every tag kind with custom delimiters, including {triple}. */
	CU_ASSERT_EQUAL(run("{{=<% %>=}}<%x%> <%{x}%> <%& x%><%! c %>"
	                    "<%#x%>[s]<%/x%><%^y%>[i]<%/y%> {{x}}"
	                    "<%={{ }}=%> {{x}}", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("&lt;b&gt; <b> <b>[s][i] {{x}} &lt;b&gt;");
	/* A default with custom delimiters. */
	CU_ASSERT_EQUAL(run("{{=[[ ]]=}}[[y|none]]", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("none");
	/* Bad changes are compile errors with the line. */
	CU_ASSERT_EQUAL(run("a\n{{=<% =}}", TMPL_TEXT, &c, 0), -1);
	CHECK_ERR_HAS("t.txt:2: {{=<% =}}: ", "bad delimiter");
	CU_ASSERT_EQUAL(run("{{= a b c =}}", TMPL_TEXT, &c, 0), -1);
	CHECK_ERR_HAS("t.txt:1: ", "bad delimiter");
	CU_ASSERT_EQUAL(run("{{=<<<<<<<<<<<<<<<<<<< >>=}}", TMPL_TEXT, &c, 0),
	                -1);
	CHECK_ERR_HAS("t.txt:1: ", "bad delimiter");
	CU_ASSERT_EQUAL(run("{{==}}", TMPL_TEXT, &c, 0), -1);
	CHECK_ERR_HAS("t.txt:1: ", "bad delimiter");
}

/* ---- edm extensions: defaults ------------------------------------------ */

static void test_defaults(void)
{
	static const char *const kv[] = {"first_name", "note", NULL};
	struct ctx c;
	struct tmpl *t;

	ctx_init(&c, kv, CTX_MAX);
	t = compile("Hi {{first_name|朋友}}!", TMPL_HTML, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	ctx_set(&c, "first_name", NULL); /* NULL value */
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Hi 朋友!");
	ctx_set(&c, "first_name", ""); /* empty value */
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Hi 朋友!");
	ctx_set(&c, "first_name", "Ann"); /* non-empty value */
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Hi Ann!");
	ctx_set(&c, "first_name", "李雷");
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Hi 李雷!");
	tmpl_free(t);

	/* HTML mode escapes a {{ }} default like a value; {{{ }}} and {{& }}
	 * never escape. */
	ctx_set(&c, "note", "");
	CU_ASSERT_EQUAL(run("{{note|<b>\"Tom\" & 'Jerry'</b>}}|"
	                    "{{{note|<i>&</i>}}}|{{& note|<u>}}",
	                    TMPL_HTML, &c, 1), 0);
	CHECK_OUT("&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;|"
	          "<i>&</i>|<u>");
	/* ... and so is the value when there is one. */
	ctx_set(&c, "note", "a<b");
	CU_ASSERT_EQUAL(run("{{note|<x>}}|{{{note|<x>}}}", TMPL_HTML, &c, 1),
	                0);
	CHECK_OUT("a&lt;b|a<b");
	/* TEXT mode never escapes a default. */
	ctx_set(&c, "note", NULL);
	CU_ASSERT_EQUAL(run("{{note|<b>&</b>}}", TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("<b>&</b>");
	/* Name and default are trimmed; inner spaces and further '|' stay. */
	CU_ASSERT_EQUAL(run("[{{ note | dear friend }}][{{note|a|b}}]",
	                    TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("[dear friend][a|b]");
	ctx_set(&c, "note", "N");
	CU_ASSERT_EQUAL(run("[{{ note | dear friend }}]", TMPL_TEXT, &c, 1),
	                0);
	CHECK_OUT("[N]");
	/* An empty default is still a default: empty output, no strict
	 * failure. */
	ctx_set(&c, "note", "");
	CU_ASSERT_EQUAL(run("[{{note|}}]", TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("[]");
	/* A '|' in a value is just a byte. */
	ctx_set(&c, "note", "x|y");
	CU_ASSERT_EQUAL(run("{{note|z}}", TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("x|y");
	/* A partial with a Chinese default, in HTML mode. */
	ctx_set(&c, "first_name", NULL);
	CU_ASSERT_EQUAL(run("{{> header}}", TMPL_HTML, &c, 1), 0);
	CHECK_OUT("<h1>Hello 朋友</h1>\n");
	ctx_set(&c, "first_name", "<Ann>");
	CU_ASSERT_EQUAL(run("{{> header}}", TMPL_HTML, &c, 1), 0);
	CHECK_OUT("<h1>Hello &lt;Ann&gt;</h1>\n");
	/* A section takes no default. */
	CU_ASSERT_PTR_NULL(compile("{{#note|x}}{{/note}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: {{#note|x}}: ", "no default");
}

/* ---- strict mode ---------------------------------------------------------- */

static void test_strict(void)
{
	static const char *const kv[] = {"first_name=Ann", "city=Paris",
	                                 "last_name=Lee", NULL};
	static const char src[] =
		"Dear {{first_name}},\n"       /* 1 */
		"{{#city}}\n"                  /* 2 */
		"From {{city}}.\n"             /* 3 */
		"{{/city}}\n"                  /* 4 */
		"Bye {{last_name}}\n";         /* 5 */
	struct ctx c;
	struct tmpl *t;

	ctx_init(&c, kv, CTX_MAX);
	t = compile_full(src, TMPL_TEXT, "body.txt", 1, NULL, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Dear Ann,\nFrom Paris.\nBye Lee\n");
	/* Empty city: only used inside its own section, so no failure. */
	ctx_set(&c, "city", "");
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("Dear Ann,\nBye Lee\n");
	/* Empty first_name: fails, naming the variable and its line. */
	ctx_set(&c, "first_name", "");
	CU_ASSERT_EQUAL(render(t, &c, 1), TMPL_EMPTY);
	CHECK_ERR("body.txt:1: first_name is empty");
	/* NULL is empty too; the first empty one is reported. */
	ctx_set(&c, "first_name", "Ann");
	ctx_set(&c, "last_name", NULL);
	CU_ASSERT_EQUAL(render(t, &c, 1), TMPL_EMPTY);
	CHECK_ERR("body.txt:5: last_name is empty");
	/* Not strict: renders the empty string. */
	CU_ASSERT_EQUAL(render(t, &c, 0), 0);
	CHECK_OUT("Dear Ann,\nBye \n");
	tmpl_free(t);

	/* Guarded inside {{#same}}, even nested in another section. */
	ctx_set(&c, "first_name", "");
	ctx_set(&c, "city", "Paris");
	CU_ASSERT_EQUAL(run("[{{#first_name}}Hi {{first_name}}"
	                    "{{#city}}{{first_name}}{{/city}}{{/first_name}}]",
	                    TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("[]");
	/* A section on another variable does not guard. */
	CU_ASSERT_EQUAL(run("x\n{{#city}}{{first_name}}{{/city}}", TMPL_TEXT,
	                    &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:2: first_name is empty");
	/* An inverted section on the same variable does not guard. */
	CU_ASSERT_EQUAL(run("{{^first_name}}Hi {{first_name}}{{/first_name}}",
	                    TMPL_TEXT, &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:1: first_name is empty");
	/* After the section closes, the guard is gone. */
	CU_ASSERT_EQUAL(run("{{#first_name}}{{/first_name}}\n{{first_name}}",
	                    TMPL_TEXT, &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:2: first_name is empty");
	/* A default prevents the failure; so does {{{ }}} with a default. */
	CU_ASSERT_EQUAL(run("{{first_name|friend}} {{{first_name|pal}}}",
	                    TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("friend pal");
	/* {{{x}}} and {{& x}} without a default are checked as well. */
	CU_ASSERT_EQUAL(run("{{{first_name}}}", TMPL_HTML, &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:1: first_name is empty");
	CU_ASSERT_EQUAL(run("{{& first_name}}", TMPL_HTML, &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:1: first_name is empty");
	/* A config value: lines count from first_line. */
	t = compile_full("Hello\n{{first_name}}", TMPL_TEXT, "c.ini", 12,
	                 NULL, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(render(t, &c, 1), TMPL_EMPTY);
	CHECK_ERR("c.ini:13: first_name is empty");
	tmpl_free(t);
	/* In a partial: the partial's file and line. */
	CU_ASSERT_EQUAL(run("a\nb\n{{> strict}}", TMPL_TEXT, &c, 1), TMPL_EMPTY);
	CHECK_ERR(PDIR "/strict.txt:2: first_name is empty");
	/* A partial inside {{#first_name}} is guarded. */
	ctx_set(&c, "first_name", "Bo");
	CU_ASSERT_EQUAL(run("{{#first_name}}{{> strict}}{{/first_name}}",
	                    TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("Line one\nHi Bo,\n");
}

/* ---- compile errors --------------------------------------------------- */

static void test_unknown_variable(void)
{
	static const char *const kv[] = {"first_name", "vip", NULL};
	struct ctx c;

	ctx_init(&c, kv, CTX_MAX);
	CU_ASSERT_PTR_NULL(compile_full("Hello\n\nDear {{frist_name}},\n",
	                                TMPL_HTML, "body.html", 1, NULL, &c));
	CHECK_ERR("body.html:3: {{frist_name}}: no column 'frist_name' in the "
	          "recipient list");
	/* A config value on line 12 of c.ini. */
	CU_ASSERT_PTR_NULL(compile_full("Hi {{frist_name}}", TMPL_TEXT,
	                                "c.ini", 12, NULL, &c));
	CHECK_ERR("c.ini:12: {{frist_name}}: no column 'frist_name' in the "
	          "recipient list");
	CU_ASSERT_PTR_NULL(compile_full("Hi\nthere {{frist_name}}", TMPL_TEXT,
	                                "c.ini", 12, NULL, &c));
	CHECK_ERR("c.ini:13: {{frist_name}}: no column 'frist_name' in the "
	          "recipient list");
	/* Padding, triple, ampersand, default: the tag is quoted as written,
	 * the name trimmed. */
	CU_ASSERT_PTR_NULL(compile("{{ frist_name }}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:1: {{ frist_name }}: no column 'frist_name' in the "
	          "recipient list");
	CU_ASSERT_PTR_NULL(compile("{{{frist_name}}}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:1: {{{frist_name}}}: no column 'frist_name' in the "
	          "recipient list");
	CU_ASSERT_PTR_NULL(compile("{{& frist_name|x}}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:1: {{& frist_name|x}}: no column 'frist_name' in the "
	          "recipient list");
	/* Names are case-sensitive. */
	CU_ASSERT_PTR_NULL(compile("{{First_name}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "no column 'First_name'");
	/* In sections and inverted sections. */
	CU_ASSERT_PTR_NULL(compile("x\n{{#vpi}}y{{/vpi}}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:2: {{#vpi}}: no column 'vpi' in the recipient list");
	CU_ASSERT_PTR_NULL(compile("x\n\n{{^ vpi }}y{{/vpi}}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:3: {{^ vpi }}: no column 'vpi' in the recipient "
	          "list");
	/* Line counting through a multi-line comment, standalone lines, CRLF
	 * and a multi-line tag. */
	CU_ASSERT_PTR_NULL(compile("{{!\n\n}}\r\n{{#vip}}\r\n{{/vip}}\r\n"
	                           "{{ first_name\n}} {{bad}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:7: {{bad}}", "no column 'bad'");
	/* In a partial: the partial's own file and line. */
	CU_ASSERT_PTR_NULL(compile_full("a\nb\nc {{> bad_line}}", TMPL_TEXT,
	                                "body.txt", 1, PDIR, &c));
	CHECK_ERR(PDIR "/bad_line.mustache:3: {{frist_name}}: no column "
	          "'frist_name' in the recipient list");
	/* Empty tags. */
	CU_ASSERT_PTR_NULL(compile("{{}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: {{}}", "empty tag");
	CU_ASSERT_PTR_NULL(compile("{{ |x}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "empty tag");
	CU_ASSERT_PTR_NULL(compile("{{#}}{{/}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: {{#}}", "without a name");
}

static void test_section_errors(void)
{
	static const char *const kv[] = {"a=1", "b=1", "first_name", NULL};
	struct ctx c;

	ctx_init(&c, kv, CTX_MAX);
	CU_ASSERT_PTR_NULL(compile("x\n{{#a}}\ny\n", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:2: {{#a}}: section not closed (no {{/a}} before the "
	          "end of the file)");
	CU_ASSERT_PTR_NULL(compile("{{#a}}\n{{^b}}\n", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:2: {{^b}}: ", "not closed");
	CU_ASSERT_PTR_NULL(compile("{{#a}}\n{{#b}}\n{{/a}}\n{{/b}}",
	                           TMPL_TEXT, &c));
	CHECK_ERR("t.txt:3: {{/a}}: closes 'a' but the open section is {{#b}} "
	          "(line 2)");
	CU_ASSERT_PTR_NULL(compile("x {{/a}}", TMPL_TEXT, &c));
	CHECK_ERR("t.txt:1: {{/a}}: no open section to close");
	CU_ASSERT_PTR_NULL(compile("{{#a}}{{/a}}{{/a}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: {{/a}}", "no open section");
	/* Unclosed in a partial: the partial's file and line. */
	CU_ASSERT_PTR_NULL(compile("x\n{{> unclosed}}\n", TMPL_TEXT, &c));
	CHECK_ERR_HAS(PDIR "/unclosed.mustache:2: {{#first_name}}",
	              "not closed");
	/* A section cannot close in another file. */
	CU_ASSERT_PTR_NULL(compile("{{#first_name}}{{> unclosed}}"
	                           "{{/first_name}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS(PDIR "/unclosed.mustache:2: ", "not closed");
	/* An unclosed tag. */
	CU_ASSERT_PTR_NULL(compile("Hi\n{{first_name,\nbye", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:2: {{first_name,", "not closed");
	CU_ASSERT_PTR_NULL(compile("{{{first_name}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "not closed");
	CU_ASSERT_PTR_NULL(compile("a {{", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "not closed");
}

/* ---- partials ----------------------------------------------------------- */

static void test_partial_lookup(void)
{
	static const char *const kv[] = {"x", NULL};
	struct ctx c;
	const char *dir;
	char path[256];
	struct tmpl *t;

	ctx_init(&c, kv, CTX_MAX);
	/* name, then name.mustache, name.html, name.txt. */
	CU_ASSERT_EQUAL(run("{{>a}} {{>b}} {{>c}} {{>d}}", TMPL_TEXT, &c, 0),
	                0);
	CHECK_OUT("a:plain b:mustache c:html d:txt");
	/* A directory with the bare name is passed over. */
	dir = tmp_dir();
	snprintf(path, sizeof(path), "%s/e", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
	write_file(dir, "e.txt", "e:txt");
	t = compile_full("[{{> e }}]", TMPL_TEXT, "t.txt", 1, dir, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(render(t, &c, 0), 0);
	CHECK_OUT("[e:txt]");
	tmpl_free(t);
}

static void test_partial_errors(void)
{
	static const char *const kv[] = {"x", NULL};
	struct ctx c;
	const char *dir;
	char name[32], body[64];
	int i;

	ctx_init(&c, kv, CTX_MAX);
	/* Missing partial. */
	CU_ASSERT_PTR_NULL(compile("a\n{{> nope }}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:2: {{> nope }}: ", "no partial 'nope' in "
	              PDIR);
	/* No partials directory. */
	CU_ASSERT_PTR_NULL(compile_full("{{> a}}", TMPL_TEXT, "t.txt", 1, NULL,
	                                &c));
	CHECK_ERR_HAS("t.txt:1: {{> a}}: ", "partials directory");
	/* Traversal: refused before any lookup, even where the target
	 * exists (../outside.mustache does). */
	CU_ASSERT_PTR_NULL(compile("{{> ../outside}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: {{> ../outside}}: ", "refused");
	CU_ASSERT_PTR_NULL(compile("{{>..}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "refused");
	CU_ASSERT_PTR_NULL(compile("{{> /etc/passwd}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "refused");
	CU_ASSERT_PTR_NULL(compile("{{> partials/a}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "refused");
	CU_ASSERT_PTR_NULL(compile("{{> ..\\outside}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "refused");
	CU_ASSERT_PTR_NULL(compile("{{> }}", TMPL_TEXT, &c));
	CHECK_ERR_HAS("t.txt:1: ", "without a name");
	/* A partial including itself stops at the depth bound. */
	CU_ASSERT_PTR_NULL(compile("{{> self}}", TMPL_TEXT, &c));
	CHECK_ERR_HAS(PDIR "/self.mustache:1: {{> self}}: ", "deeper than 16");

	/* A chain p1 -> p2 -> ... -> p17: 16 levels compile, 17 do not. */
	dir = tmp_dir();
	for (i = 1; i <= 17; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		if (i == 16)
			snprintf(body, sizeof(body), "%d.{{#x}}{{x}}{{/x}}", i);
		else
			snprintf(body, sizeof(body), "%d.{{> p%d}}", i, i + 1);
		write_file(dir, name, body);
	}
	write_file(dir, "p17", "17.");
	{
		struct tmpl *t = compile_full("{{> p1}}", TMPL_TEXT, "t.txt", 1,
		                              dir, &c);

		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		ctx_set(&c, "x", "X");
		CU_ASSERT_EQUAL(render(t, &c, 1), 0);
		CHECK_OUT("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.X");
		tmpl_free(t);
	}
	write_file(dir, "p16", "16.{{> p17}}");
	CU_ASSERT_PTR_NULL(compile_full("{{> p1}}", TMPL_TEXT, "t.txt", 1,
	                                dir, &c));
	snprintf(body, sizeof(body), "%s/p16:1: {{> p17}}: ", dir);
	CHECK_ERR_HAS(body, "deeper than 16");
}

/* ---- values ----------------------------------------------------------- */

static void test_values_literal(void)
{
	static const char *const kv[] = {"first_name", "x=1", NULL};
	struct ctx c;
	struct tmpl *t;

	ctx_init(&c, kv, CTX_MAX);
	/* Values are never parsed as templates. */
	ctx_set(&c, "first_name", "{{x}} {{#x}}y{{/x}} {{> a}} {{=| |=}}");
	CU_ASSERT_EQUAL(run("[{{first_name}}]", TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("[{{x}} {{#x}}y{{/x}} {{> a}} {{=| |=}}]");
	CU_ASSERT_EQUAL(run("[{{first_name}}]", TMPL_HTML, &c, 1), 0);
	CHECK_OUT("[{{x}} {{#x}}y{{/x}} {{&gt; a}} {{=| |=}}]");
	CU_ASSERT_EQUAL(run("[{{{first_name}}}]", TMPL_HTML, &c, 1), 0);
	CHECK_OUT("[{{x}} {{#x}}y{{/x}} {{> a}} {{=| |=}}]");
	/* CR/LF in a value pass through: header safety is MIME's job. */
	ctx_set(&c, "first_name", "Ann\r\nBcc: victim@example.test");
	CU_ASSERT_EQUAL(run("Subject: Hi {{first_name}}", TMPL_TEXT, &c, 1), 0);
	CHECK_OUT("Subject: Hi Ann\r\nBcc: victim@example.test");
	CU_ASSERT_EQUAL(run("<p>{{first_name}}</p>", TMPL_HTML, &c, 1), 0);
	CHECK_OUT("<p>Ann\r\nBcc: victim@example.test</p>");
	/* lens are used, not strlen. */
	t = compile("[{{first_name}}]", TMPL_TEXT, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	ctx_set(&c, "first_name", "abcdef");
	c.lens[0] = 3;
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("[abc]");
	/* A zero length is empty even with a non-NULL pointer. */
	c.lens[0] = 0;
	CU_ASSERT_EQUAL(render(t, &c, 1), TMPL_EMPTY);
	CHECK_ERR("t.txt:1: first_name is empty");
	/* lens NULL: the values are C strings. */
	{
		struct tmpl_values v = {c.vals, NULL};

		buf_reset(&out);
		CU_ASSERT_EQUAL(tmpl_render(t, &v, 1, &out, errbuf,
		                            sizeof(errbuf)), 0);
		CHECK_OUT("[abcdef]");
	}
	tmpl_free(t);
}

static void test_html_escape(void)
{
	static const char *const kv[] = {"v", NULL};
	struct ctx c;

	ctx_init(&c, kv, CTX_MAX);
	ctx_set(&c, "v", "& < > \" '");
	CU_ASSERT_EQUAL(run("{{v}}", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("&amp; &lt; &gt; &quot; &#39;");
	/* Runs between specials, specials at both ends, back to back. */
	ctx_set(&c, "v", "<a href=\"x?a=1&b='2'\">中文</a>&&");
	CU_ASSERT_EQUAL(run("{{v}}", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
	          "中文&lt;/a&gt;&amp;&amp;");
	/* Nothing else is touched. */
	ctx_set(&c, "v", "plain text; 100% {ok} \t\r\n");
	CU_ASSERT_EQUAL(run("{{v}}", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("plain text; 100% {ok} \t\r\n");
	/* TEXT mode and {{{ }}} / {{& }} never escape. */
	ctx_set(&c, "v", "& < > \" '");
	CU_ASSERT_EQUAL(run("{{v}}", TMPL_TEXT, &c, 0), 0);
	CHECK_OUT("& < > \" '");
	CU_ASSERT_EQUAL(run("{{{v}}}{{&v}}", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("& < > \" '& < > \" '");
	/* Literal template text is never escaped. */
	CU_ASSERT_EQUAL(run("<b>&amp;'\"</b>", TMPL_HTML, &c, 0), 0);
	CHECK_OUT("<b>&amp;'\"</b>");
}

/* ---- scale and reuse -------------------------------------------------- */

/* 10,000 distinct columns, each used once, plus sections every 100. */
static void test_large(void)
{
	enum { N = 10000 };
	char **names = calloc(N, sizeof(*names));
	const char **vals = calloc(N, sizeof(*vals));
	size_t *lens = calloc(N, sizeof(*lens));
	struct buf src = {0}, want = {0};
	struct tmpl_opts o = {TMPL_HTML, "big.html", 1, NULL};
	struct tmpl_names nm;
	struct tmpl_values v;
	struct tmpl *t;
	size_t i;
	int ok;

	CU_ASSERT_FATAL(names != NULL && vals != NULL && lens != NULL);
	for (i = 0; i < N; i++) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "col_%zu", i);
		names[i] = strdup(tmp);
		snprintf(tmp, sizeof(tmp), i % 3 ? "v%zu" : "<%zu>", i);
		vals[i] = strdup(tmp);
		if (i % 10 == 9) {
			free((char *)vals[i]);
			vals[i] = NULL; /* empty */
		}
		lens[i] = vals[i] ? strlen(vals[i]) : 0;
		if (i % 100 == 0)
			buf_printf(&src, "{{#col_%zu}}[%zu]{{/col_%zu}}\n", i, i,
			           i);
		buf_printf(&src, "%zu:{{col_%zu}};", i, i);
		/* Expected, built independently of the template engine. */
		if (i % 100 == 0)
			buf_printf(&want, vals[i] ? "[%zu]\n" : "\n", i);
		buf_printf(&want, "%zu:", i);
		if (vals[i] != NULL && i % 3 == 0)
			buf_printf(&want, "&lt;%zu&gt;", i);
		else if (vals[i] != NULL)
			buf_printf(&want, "v%zu", i);
		buf_puts(&want, ";");
	}
	nm.names = (const char *const *)names;
	nm.n = N;
	errbuf[0] = '\0';
	t = tmpl_compile(src.data, src.len, &o, &nm, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL(t);
	if (t != NULL) {
		v.vals = vals;
		v.lens = lens;
		buf_reset(&out);
		CU_ASSERT_EQUAL(tmpl_render(t, &v, 0, &out, errbuf,
		                            sizeof(errbuf)), 0);
		ok = out.len == want.len && memcmp(out.data, want.data,
		                                   want.len) == 0;
		CU_ASSERT(ok);
		for (i = 0, ok = 1; i < N; i++)
			ok &= tmpl_uses(t, i) == 1;
		CU_ASSERT(ok);
		CU_ASSERT_EQUAL(tmpl_uses(t, N), 0);
		/* Strict: col_9 is the first empty one, on line 1. */
		buf_reset(&out);
		CU_ASSERT_EQUAL(tmpl_render(t, &v, 1, &out, errbuf,
		                            sizeof(errbuf)), TMPL_EMPTY);
		CU_ASSERT_STRING_EQUAL(errbuf, "big.html:2: col_9 is empty");
		tmpl_free(t);
	} else {
		fprintf(stderr, "\nlarge: %s\n", errbuf);
	}
	for (i = 0; i < N; i++) {
		free(names[i]);
		free((char *)vals[i]);
	}
	free(names);
	free(vals);
	free(lens);
	buf_free(&src);
	buf_free(&want);
}

/* One compiled template, many renders with changing values (including
 * failed strict renders in between): each output depends only on its own
 * values. */
static void test_reuse(void)
{
	static const char *const kv[] = {"name", "vip", "level", "raw", NULL};
	struct ctx c;
	struct tmpl *t;
	char name[32], level[32], raw[32], want[256];
	size_t l;
	int i, rc, bad = 0;

	ctx_init(&c, kv, CTX_MAX);
	t = compile_full("Hi {{name|friend}}{{#vip}} (VIP {{level}}){{/vip}}"
	                 "{{^vip}} (regular){{/vip}}, {{{raw}}}\n", TMPL_HTML,
	                 "t.html", 1, NULL, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 3000; i++) {
		int strict = i % 7 == 0;

		snprintf(name, sizeof(name), "N<%d>", i);
		snprintf(level, sizeof(level), "L&%d", i);
		snprintf(raw, sizeof(raw), "<r%d>", i);
		ctx_set(&c, "name", i % 3 == 0 ? "" : i % 3 == 1 ? NULL : name);
		ctx_set(&c, "vip", i % 2 ? "y" : "");
		ctx_set(&c, "level", i % 5 == 0 ? "" : level);
		ctx_set(&c, "raw", raw);
		rc = render(t, &c, strict);
		if (strict && i % 2 && i % 5 == 0) {
			/* vip set, level empty: strict fails. */
			bad += rc != TMPL_EMPTY ||
			       strcmp(errbuf, "t.html:1: level is empty") != 0;
			continue;
		}
		/* The expectation, piece by piece. */
		if (i % 3 == 2)
			snprintf(want, sizeof(want), "Hi N&lt;%d&gt;", i);
		else
			snprintf(want, sizeof(want), "Hi friend");
		l = strlen(want);
		if (i % 2 && i % 5 == 0)
			snprintf(want + l, sizeof(want) - l, " (VIP )");
		else if (i % 2)
			snprintf(want + l, sizeof(want) - l, " (VIP L&amp;%d)", i);
		else
			snprintf(want + l, sizeof(want) - l, " (regular)");
		l = strlen(want);
		snprintf(want + l, sizeof(want) - l, ", <r%d>\n", i);
		if (rc != 0 || strcmp(out.data, want) != 0) {
			if (bad++ < 3)
				fprintf(stderr, "\nreuse %d: got [%s] want [%s]"
				        " %s\n", i, out.data, want, errbuf);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	tmpl_free(t);
}

static void test_uses(void)
{
	static const char *const kv[] = {"a", "b", "c", "d", "e", "first_name",
	                                 NULL};
	struct ctx c;
	struct tmpl *t;

	ctx_init(&c, kv, CTX_MAX);
	t = compile("{{a}} {{#b}}{{/b}} {{d|x}} {{> strict}}", TMPL_TEXT, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(tmpl_uses(t, 0), 1);  /* a: interpolation */
	CU_ASSERT_EQUAL(tmpl_uses(t, 1), 1);  /* b: section only */
	CU_ASSERT_EQUAL(tmpl_uses(t, 2), 0);  /* c: unused */
	CU_ASSERT_EQUAL(tmpl_uses(t, 3), 1);  /* d: with a default */
	CU_ASSERT_EQUAL(tmpl_uses(t, 4), 0);  /* e: unused */
	CU_ASSERT_EQUAL(tmpl_uses(t, 5), 1);  /* first_name: in the partial */
	CU_ASSERT_EQUAL(tmpl_uses(t, 6), 0);  /* out of range */
	tmpl_free(t);
	/* A comment naming a column does not use it. */
	t = compile("{{! a }}{{=| |=}}|b|", TMPL_TEXT, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(tmpl_uses(t, 0), 0);
	CU_ASSERT_EQUAL(tmpl_uses(t, 1), 1);
	tmpl_free(t);
}

static void test_empty_and_free(void)
{
	struct ctx c;
	struct tmpl *t;

	ctx_init(&c, (const char *const[]){NULL}, CTX_MAX);
	tmpl_free(NULL);
	t = compile("", TMPL_HTML, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(render(t, &c, 1), 0);
	CHECK_OUT("");
	CU_ASSERT_EQUAL(tmpl_uses(t, 0), 0);
	tmpl_free(t);
	/* Rendering appends: it does not reset the buffer. */
	t = compile("b", TMPL_TEXT, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	{
		struct tmpl_values v = {c.vals, c.lens};

		buf_reset(&out);
		buf_puts(&out, "a");
		CU_ASSERT_EQUAL(tmpl_render(t, &v, 0, &out, errbuf,
		                            sizeof(errbuf)), 0);
		CHECK_OUT("ab");
	}
	tmpl_free(t);
}

/*
 * Templates that compile to no node at all ("" or only comments and
 * delimiter changes) render to nothing in every mode, strict or not.
 * Regression for tests/fuzz/crashers/tmpl/crash-adc83b19...: the node
 * array is NULL then, and tmpl_render() computed NULL + 0 (undefined
 * behaviour; clang's -fsanitize=undefined reports it).
 */
static void test_no_nodes(void)
{
	static const char *const srcs[] = {
		"", "{{! only a comment }}", "{{=<% %>=}}", "{{! a }}{{=| |=}}",
	};
	static const enum tmpl_mode modes[] = { TMPL_TEXT, TMPL_HTML, TMPL_URL };
	struct ctx c;

	ctx_init(&c, (const char *const[]){"first_name", NULL}, CTX_MAX);
	for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++)
		for (size_t m = 0; m < 3; m++) {
			struct tmpl *t = compile(srcs[i], modes[m], &c);

			check(t != NULL, __LINE__, "[%s]: %s", srcs[i], errbuf);
			if (t == NULL)
				continue;
			buf_free(&out); /* a fresh, never-allocated buffer too */
			check(render(t, &c, 0) == 0 && out.len == 0, __LINE__,
			      "[%s] mode %zu: %s", srcs[i], m, errbuf);
			check(render(t, &c, 1) == 0 && out.len == 0, __LINE__,
			      "[%s] mode %zu strict: %s", srcs[i], m, errbuf);
			tmpl_free(t);
		}
}

/* TMPL_URL: {{x}} values percent-encoded, literals and {{{x}}} not. */
static void test_url_mode(void)
{
	static const char *const kv[] = { "email", "note", NULL };
	struct ctx c;

	ctx_init(&c, kv, CTX_MAX);
	ctx_set(&c, "email", "ann+news@b\xC3\xBC" "cher.example");
	ctx_set(&c, "note", "a b&c=d#e/f~g_h.i-j");
	CU_ASSERT_EQUAL(run("https://x.example/u?e={{email}}&n={{note}}", TMPL_URL, &c, 0), 0);
	CHECK_OUT("https://x.example/u?e=ann%2Bnews%40b%C3%BCcher.example"
	          "&n=a%20b%26c%3Dd%23e%2Ff~g_h.i-j");
	CU_ASSERT_EQUAL(run("{{{note}}}", TMPL_URL, &c, 0), 0);
	CHECK_OUT("a b&c=d#e/f~g_h.i-j");
	ctx_set(&c, "note", NULL);
	CU_ASSERT_EQUAL(run("[{{note|x y}}]", TMPL_URL, &c, 1), 0);
	CHECK_OUT("[x y]");
	CU_ASSERT_EQUAL(run("[{{note}}]", TMPL_URL, &c, 1), TMPL_EMPTY);
}

static const struct test_case tests[] = {
	{"spec_interpolation", test_spec_interpolation},
	{"spec_sections", test_spec_sections},
	{"spec_inverted", test_spec_inverted},
	{"spec_comments", test_spec_comments},
	{"spec_partials", test_spec_partials},
	{"spec_delimiters", test_spec_delimiters},
	{"standalone_more", test_standalone_more},
	{"delimiters_more", test_delimiters_more},
	{"defaults", test_defaults},
	{"strict", test_strict},
	{"unknown_variable", test_unknown_variable},
	{"section_errors", test_section_errors},
	{"partial_lookup", test_partial_lookup},
	{"partial_errors", test_partial_errors},
	{"values_literal", test_values_literal},
	{"html_escape", test_html_escape},
	{"large", test_large},
	{"reuse", test_reuse},
	{"uses", test_uses},
	{"url_mode", test_url_mode},
	{"empty_and_free", test_empty_and_free},
	{"no_nodes", test_no_nodes},
	{0},
};

int main(void)
{
	int rc = test_run("tmpl", tests);

	buf_free(&out);
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}
