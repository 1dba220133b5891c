/*
 * test_linktrack.c - click and open tracking (templates/linktrack.h): which
 * hrefs are rewritten and which are left alone, the link table (character
 * references decoded), Mustache tags and set-delimiter tags followed as
 * tmpl.c follows them, the pixel's three placements, byte-for-byte
 * copying of everything else, errors, and hostile input (every truncation
 * of sample documents, generated junk, large pathological inputs) under
 * ASan. The rewritten sources are compiled with tmpl_compile() to show
 * they are still templates whose only new variable is `token`.
 */
#include "cunit_main.h"

#include "buf.h"
#include "linktrack.h"
#include "tmpl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BASE "https://t.acme.example"
#define C(n) BASE "/c/{{token}}/" #n
#define PIXEL_D(o, c) "<img src=\"" BASE "/o/" o "token" c ".gif\" " \
	"width=\"1\" height=\"1\" alt=\"\" " \
	"style=\"display:block;border:0;width:1px;height:1px\">"
#define PIXEL PIXEL_D("{{", "}}")

static char errbuf[512];

/* ---- helpers -------------------------------------------------------- */

struct res {
	int rc;
	char *out;
	size_t outlen;
	struct link_table links;
	size_t untracked;
};

/* Rewrite src[len] into r. */
static void run(struct res *r, const char *src, size_t len, int clicks,
                int opens)
{
	struct linktrack_opts o = { BASE, clicks, opens };

	errbuf[0] = '\0';
	r->rc = linktrack_rewrite(src, len, &o, &r->out, &r->outlen,
	                          &r->links, &r->untracked, errbuf,
	                          sizeof(errbuf));
}

static void res_free(struct res *r)
{
	free(r->out);
	r->out = NULL;
	link_table_free(&r->links);
}

/* Rewriting src gives want, 'untracked' skipped links, and the link table
 * is the NULL-terminated list of URLs that follows. */
static void expect(unsigned line, const char *src, int clicks, int opens,
                   const char *want, size_t untracked, ...)
{
	struct res r;
	const char *u;
	size_t i = 0;
	va_list ap;

	run(&r, src, strlen(src), clicks, opens);
	check(r.rc == 0, line, "line %u: rc %d (%s)", line, r.rc, errbuf);
	if (r.rc != 0)
		return;
	check(r.outlen == strlen(want) && memcmp(r.out, want, r.outlen) == 0,
	      line, "line %u:\n  src  %s\n  got  %s\n  want %s", line, src,
	      r.out, want);
	check(r.out[r.outlen] == '\0', line, "line %u: not terminated", line);
	check(r.untracked == untracked, line, "line %u: untracked %zu, want "
	      "%zu", line, r.untracked, untracked);
	va_start(ap, untracked);
	while ((u = va_arg(ap, const char *)) != NULL) {
		check(i < r.links.n && strcmp(r.links.urls[i], u) == 0, line,
		      "line %u: link %zu is '%s', want '%s'", line, i + 1,
		      i < r.links.n ? r.links.urls[i] : "(none)", u);
		i++;
	}
	va_end(ap);
	check(r.links.n == i, line, "line %u: %zu links, want %zu", line,
	      r.links.n, i);
	res_free(&r);
}

/* Clicks only. */
#define CL(src, want, untracked, ...) \
	expect(__LINE__, src, 1, 0, want, untracked, __VA_ARGS__)
/* Left exactly as is, no link, nothing untracked. */
#define SAME(src) expect(__LINE__, src, 1, 0, src, 0, NULL)
/* Opens only. */
#define OP(src, want) expect(__LINE__, src, 0, 1, want, 0, NULL)

/* Occurrences of needle in h[n]. */
static size_t count(const char *h, size_t n, const char *needle)
{
	size_t k = 0, nl = strlen(needle);
	const char *p = h, *end = h + n, *q;

	while ((q = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		k++;
		p = q + 1;
	}
	return k;
}

/* ---- which links ----------------------------------------------------- */

static void test_quoting(void)
{
	CL("<p><a href=\"https://shop.example/x?a=1\">Buy</a></p>",
	   "<p><a href=\"" C(1) "\">Buy</a></p>", 0,
	   "https://shop.example/x?a=1", NULL);
	CL("<a href='http://a.example/'>x</a>",
	   "<a href='" C(1) "'>x</a>", 0, "http://a.example/", NULL);
	CL("<a href=https://a.example/p>x</a>",
	   "<a href=" C(1) ">x</a>", 0, "https://a.example/p", NULL);
	CL("<a href=https://a.example/p class=b>x</a>",
	   "<a href=" C(1) " class=b>x</a>", 0, "https://a.example/p", NULL);
	/* Blanks around '=' and quotes of the other kind inside. */
	CL("<a class=\"x\"\n   href = \"https://a.example/it's\" >x</a>",
	   "<a class=\"x\"\n   href = \"" C(1) "\" >x</a>", 0,
	   "https://a.example/it's", NULL);
	CL("<a href='https://a.example/\"q\"'>x</a>",
	   "<a href='" C(1) "'>x</a>", 0, "https://a.example/\"q\"", NULL);
	/* '>' inside a quoted value does not end the tag. */
	CL("<a title=\"a>b\" href=\"https://a.example/\">x</a>",
	   "<a title=\"a>b\" href=\"" C(1) "\">x</a>", 0,
	   "https://a.example/", NULL);
	/* Self-closing slash, attributes after the value with no blank. */
	CL("<area shape=rect href=\"https://a.example/m\"/>",
	   "<area shape=rect href=\"" C(1) "\"/>", 0, "https://a.example/m",
	   NULL);
	CL("<a href=\"https://a.example/\"class=\"b\">x</a>",
	   "<a href=\"" C(1) "\"class=\"b\">x</a>", 0, "https://a.example/",
	   NULL);
	CL("<a/href=\"https://a.example/\">x</a>",
	   "<a/href=\"" C(1) "\">x</a>", 0, "https://a.example/", NULL);
}

static void test_case_and_blanks(void)
{
	CL("<A HREF=\"HTTPS://A.EXAMPLE/X\">x</A>",
	   "<A HREF=\"" C(1) "\">x</A>", 0, "HTTPS://A.EXAMPLE/X", NULL);
	CL("<AREA Href='Http://a.example/'>", "<AREA Href='" C(1) "'>", 0,
	   "Http://a.example/", NULL);
	CL("<a\thref=\"  https://a.example/p \n\">x</a>",
	   "<a\thref=\"" C(1) "\">x</a>", 0, "https://a.example/p", NULL);
	/* Tab and newlines inside are dropped as a browser does. */
	CL("<a href=\"https://a.example/lo\nng\tpath\">x</a>",
	   "<a href=\"" C(1) "\">x</a>", 0, "https://a.example/longpath",
	   NULL);
}

static void test_numbering(void)
{
	struct buf src = { 0 }, want = { 0 };
	struct res r;
	char u[64];
	int i;

	CL("<a href=\"https://a.example/1\">1</a><a href=\"/rel\">r</a>"
	   "<area href=\"http://b.example/2\"><a href=\"https://c.example/3\">",
	   "<a href=\"" C(1) "\">1</a><a href=\"/rel\">r</a>"
	   "<area href=\"" C(2) "\"><a href=\"" C(3) "\">", 0,
	   "https://a.example/1", "http://b.example/2", "https://c.example/3",
	   NULL);
	/* The same URL twice is two links. */
	CL("<a href=\"https://a.example/\"></a><a href=\"https://a.example/\">",
	   "<a href=\"" C(1) "\"></a><a href=\"" C(2) "\">", 0,
	   "https://a.example/", "https://a.example/", NULL);
	/* Many links: the table grows, numbers follow the source. */
	for (i = 1; i <= 300; i++) {
		buf_printf(&src, "<li><a href=\"https://a.example/%d\">%d</a>\n",
		           i, i);
		buf_printf(&want, "<li><a href=\"" BASE "/c/{{token}}/%d\">%d"
		           "</a>\n", i, i);
	}
	run(&r, src.data, src.len, 1, 0);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.links.n, 300);
	CU_ASSERT(r.outlen == want.len && memcmp(r.out, want.data, want.len) == 0);
	for (i = 1; i <= 300 && (size_t)i <= r.links.n; i++) {
		snprintf(u, sizeof(u), "https://a.example/%d", i);
		check(strcmp(r.links.urls[i - 1], u) == 0, __LINE__,
		      "link %d is %s", i, r.links.urls[i - 1]);
	}
	res_free(&r);
	buf_free(&src);
	buf_free(&want);
}

static void test_other_tags(void)
{
	SAME("<abbr href=\"https://a.example/\">x</abbr>");
	SAME("<address href=\"https://a.example/\">x</address>");
	SAME("<link rel=stylesheet href=\"https://a.example/s.css\">");
	SAME("<base href=\"https://a.example/\">");
	SAME("<img src=\"https://a.example/i.png\">");
	SAME("<ab href=\"https://a.example/\">");
	SAME("<areas href=\"https://a.example/\">");
	/* An end tag's attributes are never links. */
	SAME("</a href=\"https://a.example/\">");
	/* Not a tag: '<' not followed by a letter. */
	SAME("a < b href=\"https://a.example/\" <3 <=> < a href=\"https://a.example/\">");
}

static void test_notrack(void)
{
	SAME("<a data-notrack href=\"https://a.example/\">x</a>");
	SAME("<a href=\"https://a.example/\" data-notrack>x</a>");
	SAME("<a href=\"https://a.example/\" DATA-NoTrack=\"1\">x</a>");
	SAME("<a href=\"https://a.example/\" data-notrack=''>x</a>");
	SAME("<a href=https://a.example/ data-notrack>x</a>");
	SAME("<a href=\"https://a.example/?u={{id}}\" data-notrack>x</a>");
	/* Only that attribute name. */
	CL("<a data-notracking href=\"https://a.example/\" class=\"data-notrack\">",
	   "<a data-notracking href=\"" C(1) "\" class=\"data-notrack\">", 0,
	   "https://a.example/", NULL);
	/* Per tag. */
	CL("<a data-notrack href=\"https://a.example/1\"></a>"
	   "<a href=\"https://a.example/2\"></a>",
	   "<a data-notrack href=\"https://a.example/1\"></a>"
	   "<a href=\"" C(1) "\"></a>", 0, "https://a.example/2", NULL);
}

static void test_not_http(void)
{
	SAME("<a href=\"mailto:ann@example.com\">m</a>");
	SAME("<a href=\"tel:+15551234\">t</a>");
	SAME("<a href=\"/relative/path\">r</a>");
	SAME("<a href=\"page.html\">r</a>");
	SAME("<a href=\"#top\">#</a>");
	SAME("<a href=\"//a.example/x\">proto-relative</a>");
	SAME("<a href=\"ftp://a.example/\">f</a>");
	SAME("<a href=\"javascript:alert(1)\">j</a>");
	SAME("<a href=\"http:/a.example/\">one slash</a>");
	SAME("<a href=\"httpx://a.example/\">x</a>");
	SAME("<a href=\"https:\">x</a>");
	SAME("<a href=\"\">empty</a>");
	SAME("<a href>no value</a>");
	SAME("<a href=>no value</a>");
	SAME("<a name=\"x\">anchor</a>");
	/* A scheme spelled with a reference is still http. */
	CL("<a href=\"http&#58;//a.example/\">x</a>",
	   "<a href=\"" C(1) "\">x</a>", 0, "http://a.example/", NULL);
}

static void test_other_attributes(void)
{
	SAME("<a data-href=\"https://a.example/\">x</a>");
	SAME("<a title=\"href=https://a.example/\">x</a>");
	SAME("<a title='x href=\"https://a.example/\"'>x</a>");
	SAME("<a hreflang=\"en\" xhref=\"https://a.example/\">x</a>");
	SAME("<p>see href=\"https://a.example/\" and <b>https://a.example/</b></p>");
	/* Duplicate attributes: the first wins, as in browsers. */
	SAME("<a href=\"/local\" href=\"https://a.example/\">x</a>");
	SAME("<a href href=\"https://a.example/\">x</a>");
	CL("<a href=\"https://a.example/1\" HREF=\"https://a.example/2\">x</a>",
	   "<a href=\"" C(1) "\" HREF=\"https://a.example/2\">x</a>", 0,
	   "https://a.example/1", NULL);
}

static void test_comments(void)
{
	SAME("<!-- <a href=\"https://a.example/\">x</a> -->");
	SAME("<!--<a href=\"https://a.example/\">--!><p>");
	SAME("<!-- a -- b --- <a href=\"https://a.example/\"> ---->");
	/* <!--> and <!---> are whole (empty) comments. */
	CL("<!--><a href=\"https://a.example/1\"><!---><a href=\"https://a.example/2\">",
	   "<!--><a href=\"" C(1) "\"><!---><a href=\"" C(2) "\">", 0,
	   "https://a.example/1", "https://a.example/2", NULL);
	CL("<!-- x --><a href=\"https://a.example/\">",
	   "<!-- x --><a href=\"" C(1) "\">", 0, "https://a.example/", NULL);
	/* Conditional comments for Outlook are comments too. */
	SAME("<!--[if mso]><a href=\"https://a.example/\">v</a><![endif]-->");
	/* Bogus comments end at the first '>'. */
	CL("<!DOCTYPE html><?xml x?></3 x><a href=\"https://a.example/\">",
	   "<!DOCTYPE html><?xml x?></3 x><a href=\"" C(1) "\">", 0,
	   "https://a.example/", NULL);
	SAME("<!-- unterminated <a href=\"https://a.example/\">");
}

static void test_raw_text(void)
{
	SAME("<script>var s = '<a href=\"https://a.example/\">';</script>");
	SAME("<SCRIPT type=\"text/javascript\">x('<a href=https://a.example/>')"
	     "</SCRIPT >");
	SAME("<style>/* <a href=\"https://a.example/\"> */ a{}</style>");
	SAME("<title><a href=\"https://a.example/\"></title>");
	SAME("<textarea><a href=\"https://a.example/\"></textarea>");
	SAME("<script></scriptx><a href=\"https://a.example/\"></script>");
	SAME("<script>unterminated <a href=\"https://a.example/\">");
	SAME("<plaintext></plaintext><a href=\"https://a.example/\">");
	CL("<script>s=\"</p>\"</script><a href=\"https://a.example/\">",
	   "<script>s=\"</p>\"</script><a href=\"" C(1) "\">", 0,
	   "https://a.example/", NULL);
	CL("<style>p{}</style\n><a href=\"https://a.example/\">",
	   "<style>p{}</style\n><a href=\"" C(1) "\">", 0,
	   "https://a.example/", NULL);
	/* A tag named like one of them is not one. */
	CL("<scripts><a href=\"https://a.example/\">",
	   "<scripts><a href=\"" C(1) "\">", 0, "https://a.example/", NULL);
}

/* ---- Mustache --------------------------------------------------------- */

static void test_mustache_untracked(void)
{
	SAME("{{! <a href=\"https://a.example/\"> }}");
	SAME("{{{raw}}}<a {{attrs}}>x</a>");
	/* hrefs holding a tag: left, counted when they are http(s). */
	CL("<a href=\"https://a.example/?u={{id}}\">x</a>",
	   "<a href=\"https://a.example/?u={{id}}\">x</a>", 1, NULL);
	CL("<a href=\"{{url}}\">x</a>", "<a href=\"{{url}}\">x</a>", 1, NULL);
	CL("<a href={{url}}>x</a>", "<a href={{url}}>x</a>", 1, NULL);
	CL("<a href={{{url}}} class=b>x</a>", "<a href={{{url}}} class=b>x</a>",
	   1, NULL);
	CL("<a href=\"https://{{host}}/\">x</a>",
	   "<a href=\"https://{{host}}/\">x</a>", 1, NULL);
	CL("<a href=\"htt{{p}}://a.example/\">x</a>",
	   "<a href=\"htt{{p}}://a.example/\">x</a>", 1, NULL);
	CL("<a href=\" HTTPS:{{rest}}\">x</a>", "<a href=\" HTTPS:{{rest}}\">x</a>",
	   1, NULL);
	CL("<a href=\"{{#vip}}https://a.example/v{{/vip}}\">x</a>",
	   "<a href=\"{{#vip}}https://a.example/v{{/vip}}\">x</a>", 1, NULL);
	/* Not http(s) before the tag: not counted. */
	SAME("<a href=\"mailto:{{email}}\">x</a>");
	SAME("<a href=\"/p/{{id}}\">x</a>");
	SAME("<a href=\"#{{anchor}}\">x</a>");
	SAME("<a href=\"ftp://{{h}}\">x</a>");
	/* Mixed. */
	CL("<a href=\"{{u}}\"></a><a href=\"https://a.example/\"></a>"
	   "<a href='https://b.example/{{p}}'></a>",
	   "<a href=\"{{u}}\"></a><a href=\"" C(1) "\"></a>"
	   "<a href='https://b.example/{{p}}'></a>", 2, "https://a.example/",
	   NULL);
}

static void test_mustache_opaque(void)
{
	/* A tag is opaque: quotes and '>' inside it mean nothing to HTML. */
	CL("<a title=\"{{x|say \"hi\">}}\" href=\"https://a.example/\">",
	   "<a title=\"{{x|say \"hi\">}}\" href=\"" C(1) "\">", 0,
	   "https://a.example/", NULL);
	CL("<!-- {{x-->}} --><a href=\"https://a.example/\">",
	   "<!-- {{x-->}} --><a href=\"" C(1) "\">", 0, "https://a.example/",
	   NULL);
	/* Sections around links and attributes: still tracked. */
	CL("{{#vip}}<a href=\"https://a.example/vip\">v</a>{{/vip}}",
	   "{{#vip}}<a href=\"" C(1) "\">v</a>{{/vip}}", 0,
	   "https://a.example/vip", NULL);
	CL("<a {{#c}}class=\"x\"{{/c}} href=\"https://a.example/\">",
	   "<a {{#c}}class=\"x\"{{/c}} href=\"" C(1) "\">", 0,
	   "https://a.example/", NULL);
	/* A tag name or attribute name holding a tag is not known. */
	SAME("<{{t}} href=\"https://a.example/\">");
	SAME("<a{{x}} href=\"https://a.example/\">");
	SAME("<a {{n}}=\"https://a.example/\">");
	SAME("<a hr{{e}}f=\"https://a.example/\">");
	SAME("<a href{{x}}=\"https://a.example/\">");
	/* No HTML token across a tag. */
	SAME("<!-{{x}}- <a href=\"https://a.example/\"> -->");
	SAME("<script>x</scr{{y}}ipt><a href=\"https://a.example/\"></script>");
	/* A partial is copied; its links are not followed. */
	SAME("{{> footer}}");
	/* An unclosed tag runs to the end (tmpl_compile() reports it). */
	SAME("{{x <a href=\"https://a.example/\">");
}

static void test_delimiters(void)
{
	CL("{{=<% %>=}}<a href=\"https://a.example/\">{{x}}</a>",
	   "{{=<% %>=}}<a href=\"" BASE "/c/<%token%>/1\">{{x}}</a>", 0,
	   "https://a.example/", NULL);
	/* Changed and changed back. */
	CL("{{=<% %>=}}<a href=\"https://a.example/1\"><%={{ }}=%>"
	   "<a href=\"https://a.example/2\">",
	   "{{=<% %>=}}<a href=\"" BASE "/c/<%token%>/1\"><%={{ }}=%>"
	   "<a href=\"" C(2) "\">", 0, "https://a.example/1",
	   "https://a.example/2", NULL);
	/* New delimiters: {{ }} is text, <% %> are tags. */
	CL("{{=<% %>=}}<a href=\"https://a.example/{{x}}\">"
	   "<a href=\"https://b.example/<%x%>\">",
	   "{{=<% %>=}}<a href=\"" BASE "/c/<%token%>/1\">"
	   "<a href=\"https://b.example/<%x%>\">", 1,
	   "https://a.example/{{x}}", NULL);
	/* A change is followed wherever it is: tmpl.c knows no HTML. */
	CL("<!-- {{=[ ]=}} --><a href=\"https://a.example/\">",
	   "<!-- {{=[ ]=}} --><a href=\"" BASE "/c/[token]/1\">", 0,
	   "https://a.example/", NULL);
	CL("<script>{{= | | =}}</script><a href=\"https://a.example/\">",
	   "<script>{{= | | =}}</script><a href=\"" BASE "/c/|token|/1\">", 0,
	   "https://a.example/", NULL);
	/* Inside the tag itself, before or after the href. */
	CL("<a {{=<% %>=}} href=\"https://a.example/\">",
	   "<a {{=<% %>=}} href=\"" BASE "/c/<%token%>/1\">", 0,
	   "https://a.example/", NULL);
	CL("<a href=\"https://a.example/\" {{=<% %>=}}>",
	   "<a href=\"" C(1) "\" {{=<% %>=}}>", 0, "https://a.example/", NULL);
	/* The pixel follows them too, triple form included. */
	OP("{{=<% %>=}}<p><%{ tracking_pixel }%></p>",
	   "{{=<% %>=}}<p>" PIXEL_D("<%", "%>") "</p>");
	OP("{{=<% %>=}}<body></body>",
	   "{{=<% %>=}}<body>" PIXEL_D("<%", "%>") "</body>");
	OP("<body></body>{{=<% %>=}}",
	   "<body>" PIXEL "</body>{{=<% %>=}}");
	OP("{{=<% %>=}}", "{{=<% %>=}}" PIXEL_D("<%", "%>"));
	/* With <% %> in force, "<%" is a tag, never HTML. */
	CL("{{=<% %>=}}<%a href=\"https://a.example/\"%>",
	   "{{=<% %>=}}<%a href=\"https://a.example/\"%>", 0, NULL);
}

static void test_delimiter_errors(void)
{
	static const char *const bad[] = {
		"<p>\n\n{{=<% %> <a href=\"https://a.example/\">",
		"<p>\n\n{{=<%=}}",
		"<p>\n\n{{=a b c=}}",
		"<p>\n\n{{==}}",
		"<p>\n\n{{=12345678901234567 x=}}",
		"<p>\n\n<a title=\"{{=<% %>}}\">",
	};
	const char *src;
	struct res r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run(&r, bad[i], strlen(bad[i]), 1, 1);
		check(r.rc == -1 && r.out == NULL && r.links.n == 0 &&
		      r.links.urls == NULL, __LINE__, "case %zu: rc %d", i,
		      r.rc);
		check(strncmp(errbuf, "line 3: ", 8) == 0, __LINE__,
		      "case %zu: err '%s'", i, errbuf);
		res_free(&r);
	}
	/* Links already found are not kept on error. */
	src = "<a href=\"https://a.example/\">{{=x";
	run(&r, src, strlen(src), 1, 0);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(r.links.n, 0);
	CU_ASSERT_PTR_NULL(r.links.urls);
	CU_ASSERT_EQUAL(r.untracked, 0);
	res_free(&r);
	/* Delimiters that would not read {{token}} back are refused. */
	src = "{{=[ n=}}<a href=\"https://a.example/\">";
	run(&r, src, strlen(src), 1, 0);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "delimiters in force"));
	res_free(&r);
	src = "{{=/ |=}}<p>";
	run(&r, src, strlen(src), 0, 1);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "line 1: "));
	res_free(&r);
	/* With "/" as the open delimiter the URL holds an unclosed tag that
	 * runs to the end: the tag never ends, nothing is rewritten. */
	SAME("{{=/ |=}}<a href=\"https://a.example/\">");
}

/* ---- character references ------------------------------------------- */

static void test_entities(void)
{
	static const struct {
		const char *href, *url;
	} c[] = {
		{ "https://a.example/?a=1&amp;b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/?a=1&#38;b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/?a=1&#x26;b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/?a=1&#X26;b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/?a=1&AMP;b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/&lt;&gt;&quot;&apos;", "https://a.example/<>\"'" },
		{ "https://a.example/&nbsp;", "https://a.example/\xC2\xA0" },
		{ "https://a.example/&#65;&#x42;&#0067;", "https://a.example/ABC" },
		/* Numeric without ';'. */
		{ "https://a.example/&#65x", "https://a.example/Ax" },
		{ "https://a.example/&#x263a", "https://a.example/\xE2\x98\xBA" },
		{ "https://a.example/&#128512;", "https://a.example/\xF0\x9F\x98\x80" },
		/* windows-1252 range, invalid code points. */
		{ "https://a.example/&#128;", "https://a.example/\xE2\x82\xAC" },
		{ "https://a.example/&#0;", "https://a.example/\xEF\xBF\xBD" },
		{ "https://a.example/&#xD800;", "https://a.example/\xEF\xBF\xBD" },
		{ "https://a.example/&#x110000;", "https://a.example/\xEF\xBF\xBD" },
		{ "https://a.example/&#99999999999999999999;",
		  "https://a.example/\xEF\xBF\xBD" },
		/* Unknown or incomplete: kept literally. */
		{ "https://a.example/?a=1&b=2", "https://a.example/?a=1&b=2" },
		{ "https://a.example/?x=&copy;&foo;", "https://a.example/?x=&copy;&foo;" },
		{ "https://a.example/&#;&#x;&#xg;&", "https://a.example/&#;&#x;&#xg;&" },
		{ "https://a.example/&Amp;&apos", "https://a.example/&Amp;&apos" },
		/* Legacy names without ';', unless '=' or more letters follow. */
		{ "https://a.example/?a&amp b", "https://a.example/?a& b" },
		{ "https://a.example/?a=1&amp=2", "https://a.example/?a=1&amp=2" },
		{ "https://a.example/?a=1&ampx=2", "https://a.example/?a=1&ampx=2" },
		{ "https://a.example/?x&lt", "https://a.example/?x<" },
		/* Double-encoded stays single-decoded. */
		{ "https://a.example/?a&amp;amp;b", "https://a.example/?a&amp;b" },
		/* A reference can make the blanks that get trimmed. */
		{ "&#32;https://a.example/&#9;", "https://a.example/" },
	};
	char src[256], want[256];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(src, sizeof(src), "<a href=\"%s\">x</a>", c[i].href);
		snprintf(want, sizeof(want), "<a href=\"%s\">x</a>", C(1));
		expect(__LINE__, src, 1, 0, want, 0, c[i].url, NULL);
	}
}

static void test_nul_byte(void)
{
	static const char src[] = "<a href=\"https://a.example/\0x\">\0</a>";
	static const char want[] = "<a href=\"" C(1) "\">\0</a>";
	struct res r;

	run(&r, src, sizeof(src) - 1, 1, 0);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT(r.outlen == sizeof(want) - 1 &&
	          memcmp(r.out, want, r.outlen) == 0);
	CU_ASSERT_EQUAL_FATAL(r.links.n, 1);
	CU_ASSERT_STRING_EQUAL(r.links.urls[0], "https://a.example/\xEF\xBF\xBDx");
	res_free(&r);
}

/* ---- the pixel ------------------------------------------------------- */

static void test_pixel_tag(void)
{
	OP("<p>{{tracking_pixel}}</p>", "<p>" PIXEL "</p>");
	OP("<p>{{  tracking_pixel\t}}</p>", "<p>" PIXEL "</p>");
	OP("<p>{{{tracking_pixel}}}</p>", "<p>" PIXEL "</p>");
	OP("<p>{{{ tracking_pixel }}}</p>", "<p>" PIXEL "</p>");
	OP("<p>{{&tracking_pixel}}</p>", "<p>" PIXEL "</p>");
	OP("<p>{{& tracking_pixel }}</p>", "<p>" PIXEL "</p>");
	/* The first only; the tag wins over </body>. */
	OP("{{tracking_pixel}}<p>{{tracking_pixel}}</p></body>",
	   PIXEL "<p>{{tracking_pixel}}</p></body>");
	/* Not that variable. */
	OP("{{tracking_pixels}}{{Tracking_pixel}}{{tracking_pixel|x}}"
	   "{{#tracking_pixel}}{{/tracking_pixel}}{{! tracking_pixel}}",
	   "{{tracking_pixels}}{{Tracking_pixel}}{{tracking_pixel|x}}"
	   "{{#tracking_pixel}}{{/tracking_pixel}}{{! tracking_pixel}}" PIXEL);
	/* Only in text: in a comment, a tag or script it is copied and the
	 * pixel goes to the next place. */
	OP("<!-- {{tracking_pixel}} --><p>{{tracking_pixel}}</p>",
	   "<!-- {{tracking_pixel}} --><p>" PIXEL "</p>");
	OP("<td title=\"{{tracking_pixel}}\"><script>{{tracking_pixel}}"
	   "</script></body>",
	   "<td title=\"{{tracking_pixel}}\"><script>{{tracking_pixel}}"
	   "</script>" PIXEL "</body>");
	/* Opens off: the tag stays for the renderer. */
	CL("<p>{{tracking_pixel}}</p></body>", "<p>{{tracking_pixel}}</p></body>",
	   0, NULL);
}

static void test_pixel_body(void)
{
	OP("<html><body><p>x</p></body></html>",
	   "<html><body><p>x</p>" PIXEL "</body></html>");
	OP("<BODY>x</BODY >", "<BODY>x" PIXEL "</BODY >");
	OP("<body>x</Body\n>\n", "<body>x" PIXEL "</Body\n>\n");
	/* The last one. */
	OP("<body>a</body><body>b</body>end",
	   "<body>a</body><body>b" PIXEL "</body>end");
	/* Not one in a comment, script, attribute or a longer name. */
	OP("<body>x</body><!-- </body> --><script></body></script>"
	   "<p title=\"</body>\"></bodyx>",
	   "<body>x" PIXEL "</body><!-- </body> --><script></body></script>"
	   "<p title=\"</body>\"></bodyx>");
	/* No </body>: at the very end. */
	OP("<p>hello</p>\n", "<p>hello</p>\n" PIXEL);
	OP("", PIXEL);
	/* Links and pixel together. */
	expect(__LINE__, "<body><a href=\"https://a.example/\">x</a></body>",
	       1, 1, "<body><a href=\"" C(1) "\">x</a>" PIXEL "</body>", 0,
	       "https://a.example/", NULL);
	expect(__LINE__, "</body><a href=\"https://a.example/\">x</a>",
	       1, 1, PIXEL "</body><a href=\"" C(1) "\">x</a>", 0,
	       "https://a.example/", NULL);
}

/* ---- copying ---------------------------------------------------------- */

static void test_off_off_copy(void)
{
	static const char src[] = "<a href=\"https://a.example/\">{{=<% %>"
	                          "\0\xff</body>{{tracking_pixel}}";
	struct res r;

	run(&r, src, sizeof(src) - 1, 0, 0);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT(r.outlen == sizeof(src) - 1 &&
	          memcmp(r.out, src, r.outlen) == 0);
	CU_ASSERT_EQUAL(r.out[r.outlen], '\0');
	CU_ASSERT_EQUAL(r.links.n, 0);
	CU_ASSERT_EQUAL(r.untracked, 0);
	res_free(&r);
	run(&r, "", 0, 0, 0);
	CU_ASSERT(r.rc == 0 && r.outlen == 0 && r.out != NULL &&
	          r.out[0] == '\0');
	res_free(&r);
	link_table_free(NULL);
	/* On, but nothing to do. */
	SAME("");
	SAME("plain text, no markup & no links\r\n");
}

/* A document as pieces: each is copied, or (repl) replaced. The output
 * must be exactly the pieces' wants, so every byte outside the rewritten
 * values is shown to be copied. */
static void test_byte_for_byte(void)
{
	static const struct {
		const char *src, *want;
	} p[] = {
		{ "\xEF\xBB\xBF<!DOCTYPE html>\r\n<html lang=en>\r\n<head>\r\n", NULL },
		{ "<meta charset=\"utf-8\"><title>Hi &amp; <a href=x></title>\n", NULL },
		{ "<style>\n  a { color: #f00 }  /* <a href=\"https://no\"> */\n</style>\n", NULL },
		{ "</head>\n<BODY style='margin:0'>\n\t<table><tr><td>\n", NULL },
		{ "<!--[if mso]><v:roundrect href=\"https://no.example\"><![endif]-->", NULL },
		{ "Hello {{ first_name | friend }},   caf\xC3\xA9 &eacute; &#233;\n", NULL },
		{ "<a  class = \"btn\"  HREF = \"", NULL },
		{ "https://shop.example/p?a=1&amp;b=%20x#frag", C(1) },
		{ "\"  style=\"color:red\" >Shop</a>\n", NULL },
		{ "<a href='", NULL },
		{ " HTTP://Other.example/ ", C(2) },
		{ "' target=_blank>o</a> <a href=", NULL },
		{ "https://u.example/q", C(3) },
		{ ">u</a>\n<a href=\"mailto:x@y\">m</a> <a href=\"{{link}}\">l</a>\n", NULL },
		{ "{{#vip}}<area alt=\"\" href=\"", NULL },
		{ "http://vip.example/", C(4) },
		{ "\" />{{/vip}}{{! <a href=\"https://c.example\"> }}\n", NULL },
		{ "<p>&lt;a href=\"https://text.example/\"&gt; is text</p>\n", NULL },
		{ "<script>document.write('<a href=\"https://s.example\">')</script>\n", NULL },
		{ "<a data-notrack href=\"https://n.example/\">n</a>   \n\n", NULL },
		{ "  </td></tr></table>\n{{> footer}}\n", NULL },
		{ "", PIXEL },
		{ "</body>\n</html>\n\n", NULL },
	};
	static const char *const urls[] = {
		"https://shop.example/p?a=1&b=%20x#frag", "HTTP://Other.example/",
		"https://u.example/q", "http://vip.example/",
	};
	struct buf src = { 0 }, want = { 0 };
	struct res r;
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		buf_puts(&src, p[i].src);
		buf_puts(&want, p[i].want != NULL ? p[i].want : p[i].src);
	}
	run(&r, src.data, src.len, 1, 1);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	check(r.outlen == want.len && memcmp(r.out, want.data, want.len) == 0,
	      __LINE__, "got:\n%s", r.out);
	CU_ASSERT_EQUAL(r.untracked, 1);
	CU_ASSERT_EQUAL_FATAL(r.links.n, 4);
	for (i = 0; i < 4; i++)
		check(strcmp(r.links.urls[i], urls[i]) == 0, __LINE__,
		      "link %zu: %s", i + 1, r.links.urls[i]);
	res_free(&r);
	buf_free(&src);
	buf_free(&want);
}

/* ---- still a template -------------------------------------------------- */

static const char *const names_base[] = {
	"first_name", "link", "vip", "email", "tracking_pixel",
};
static const char *const names_tok[] = {
	"first_name", "link", "vip", "email", "tracking_pixel", "token",
};

static struct tmpl *compile(const char *src, size_t len,
                            const char *const *names, size_t n)
{
	struct tmpl_opts o = { TMPL_HTML, "body.html", 1, NULL };
	struct tmpl_names nm = { names, n };

	return tmpl_compile(src, len, &o, &nm, errbuf, sizeof(errbuf));
}

/* Rewrite src, compile before and after, render with token=TOK. */
static void compile_case(unsigned line, const char *src, const char *rendered)
{
	static const char *const vals[] = {
		"Ann", "https://l.example/?a=1", "1", "ann@example.com", "",
		"TOK",
	};
	struct tmpl_values v = { vals, NULL };
	struct buf b = { 0 };
	struct tmpl *t;
	struct res r;

	t = compile(src, strlen(src), names_base, 5);
	check(t != NULL, line, "line %u: source does not compile: %s", line,
	      errbuf);
	tmpl_free(t);
	run(&r, src, strlen(src), 1, 1);
	check(r.rc == 0, line, "line %u: rewrite: %s", line, errbuf);
	if (r.rc != 0)
		return;
	/* Without "token" among the names it fails, and names it. */
	t = compile(r.out, r.outlen, names_base, 5);
	check(t == NULL && strstr(errbuf, "'token'") != NULL, line,
	      "line %u: compiled without token: %s", line, errbuf);
	tmpl_free(t);
	t = compile(r.out, r.outlen, names_tok, 6);
	check(t != NULL, line, "line %u: output does not compile: %s\n%s",
	      line, errbuf, r.out);
	if (t != NULL) {
		check(tmpl_uses(t, 5), line, "line %u: token unused", line);
		check(tmpl_render(t, &v, 0, &b, errbuf, sizeof(errbuf)) == 0 &&
		      strcmp(b.data, rendered) == 0, line,
		      "line %u: rendered\n%s\nwant\n%s", line, b.data, rendered);
	}
	tmpl_free(t);
	buf_free(&b);
	res_free(&r);
}

#define RPIX(t) "<img src=\"" BASE "/o/" t ".gif\" width=\"1\" " \
	"height=\"1\" alt=\"\" " \
	"style=\"display:block;border:0;width:1px;height:1px\">"

static void test_compiles(void)
{
	compile_case(__LINE__,
	             "<body>\n<p>Hi {{first_name}},</p>\n"
	             "<a href=\"https://a.example/?x=1&amp;y=2\">a</a>\n"
	             "<a href=\"{{link}}\">l</a>\n"
	             "{{#vip}}\n<a href='http://v.example/'>v</a>\n{{/vip}}\n"
	             "</body>\n",
	             "<body>\n<p>Hi Ann,</p>\n"
	             "<a href=\"" BASE "/c/TOK/1\">a</a>\n"
	             "<a href=\"https://l.example/?a=1\">l</a>\n"
	             "<a href='" BASE "/c/TOK/2'>v</a>\n"
	             RPIX("TOK") "</body>\n");
	/* Changed delimiters: the new tags use them. */
	compile_case(__LINE__,
	             "{{=<% %>=}}<p><%first_name%> "
	             "<a href=https://a.example/>a</a></p><%{tracking_pixel}%>"
	             "<%={{ }}=%><a href=\"https://b.example/\">{{email}}</a>",
	             "<p>Ann <a href=" BASE "/c/TOK/1>a</a></p>" RPIX("TOK")
	             "<a href=\"" BASE "/c/TOK/2\">ann@example.com</a>");
	compile_case(__LINE__, "{{= [[ ]] =}}\n<a href=\"https://a.example/\">",
	             "<a href=\"" BASE "/c/TOK/1\">" RPIX("TOK"));
}

/* ---- hostile input ----------------------------------------------------- */

static const char sample[] =
	"<!DOCTYPE html><html><head><title>T &amp; t</title>\n"
	"<style>a{}</style><script>var a='<a href=\"https://x\">';</script>"
	"</head><body>\n<!-- c <a href=\"https://c\"> --><!--><!--->\n"
	"<a href=\"https://a.example/?a=1&amp;b=&#x32;\" class='x'>a</a>"
	"<A HREF='http://b.example/'>b</A><a href=https://c.example/u>c</a>"
	"<a data-notrack href=\"https://d\">d</a><area href=\"{{u}}\">"
	"{{#s}}<a title=\"{{t}}\" href=\"https://e.example/\">e</a>{{/s}}"
	"{{{raw}}}{{& amp}}{{! comm > }}{{tracking_pixel}}&#x26; &nbsp"
	"<a href=\"mailto:m\">m</a><a/href=x>\n</body></html>\n";

static const char sample_delims[] =
	"<body><a href=\"https://a.example/\">a</a>{{=<% %>=}}"
	"<a href='https://b.example/<%x%>'>b</a><%! c %><%={{ }}=%>"
	"<a href=https://c.example/>c</a>{{{tracking_pixel}}}</body>";

/* Every prefix of doc, in a buffer of exactly that size (ASan sees any
 * read past it), in all three modes. */
static void truncations(const char *doc, size_t len, int may_fail)
{
	struct res r;
	size_t k, pl = strlen(PIXEL);
	int mode;

	for (k = 0; k <= len; k++) {
		char *p = malloc(k > 0 ? k : 1);

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		memcpy(p, doc, k);
		for (mode = 1; mode <= 3; mode++) {
			run(&r, p, k, mode & 1, (mode & 2) != 0);
			if (r.rc != 0) {
				check(may_fail && r.rc == -1 && r.out == NULL &&
				      strncmp(errbuf, "line ", 5) == 0, __LINE__,
				      "prefix %zu mode %d: rc %d %s", k, mode,
				      r.rc, errbuf);
				res_free(&r);
				continue;
			}
			check(r.out[r.outlen] == '\0' &&
			      count(r.out, r.outlen, BASE "/c/") == r.links.n,
			      __LINE__, "prefix %zu mode %d", k, mode);
			/* Opens only, no pixel tag yet: the input plus the
			 * pixel, nothing else. */
			if (mode == 2 && !may_fail &&
			    memmem(p, k, "{{tracking_pixel}}", 18) == NULL) {
				const char *q = memmem(r.out, r.outlen, PIXEL, pl);
				size_t at = q != NULL ? (size_t)(q - r.out) : 0;

				check(q != NULL && r.outlen == k + pl &&
				      memcmp(r.out, p, at) == 0 &&
				      memcmp(r.out + at + pl, p + at, k - at) == 0,
				      __LINE__, "prefix %zu: pixel only", k);
			}
			res_free(&r);
		}
		free(p);
	}
}

static void test_truncated(void)
{
	truncations(sample, sizeof(sample) - 1, 0);
	truncations(sample_delims, sizeof(sample_delims) - 1, 1);
}

static void test_sample_result(void)
{
	struct res r;

	run(&r, sample, sizeof(sample) - 1, 1, 1);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.links.n, 4);
	CU_ASSERT_STRING_EQUAL(r.links.urls[0], "https://a.example/?a=1&b=2");
	CU_ASSERT_STRING_EQUAL(r.links.urls[1], "http://b.example/");
	CU_ASSERT_STRING_EQUAL(r.links.urls[2], "https://c.example/u");
	CU_ASSERT_STRING_EQUAL(r.links.urls[3], "https://e.example/");
	CU_ASSERT_EQUAL(r.untracked, 1);
	CU_ASSERT_EQUAL(count(r.out, r.outlen, PIXEL), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "{{! comm > }}" PIXEL "&#x26;"));
	res_free(&r);
	run(&r, sample_delims, sizeof(sample_delims) - 1, 1, 1);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.links.n, 2);
	CU_ASSERT_EQUAL(r.untracked, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, BASE "/c/{{token}}/2>c</a>" PIXEL
	                              "</body>"));
	res_free(&r);
}

/* Deterministic xorshift. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Junk made of the pieces that matter, checked for crashes, the
 * invariants, and that a source tmpl_compile() takes still compiles. */
static void test_generated(void)
{
	static const char *const piece[] = {
		"<", ">", "a", "A", "area", " ", "\n", "href", "=", "\"", "'",
		"https://x.example/", "&amp;", "&#", "x26", ";", "{{", "}}",
		"}", "{", "{{=<% %>=}}", "<%={{ }}=%>", "<%", "%>", "{{x}}",
		"{{{x}}}", "{{tracking_pixel}}", "{{#x}}", "{{/x}}", "{{!", "<!--",
		"-->", "-", "!", "<script>", "</script>", "</body>", "data-notrack",
		"/", "<a href=\"https://y.example/\">", "\0", "=}}",
	};
	static const char *const names[] = { "x", "tracking_pixel", "token" };
	struct tmpl_opts to = { TMPL_HTML, "g.html", 1, NULL };
	struct tmpl_names nm = { names, 3 };
	struct buf src = { 0 };
	struct tmpl *t;
	struct res r;
	uint32_t seed = 0x2545F491;
	size_t np = sizeof(piece) / sizeof(piece[0]), both = 0;
	int i, j, n;

	for (i = 0; i < 3000; i++) {
		buf_reset(&src);
		n = (int)(rnd(&seed) % 60);
		for (j = 0; j < n; j++) {
			const char *pc = piece[rnd(&seed) % np];

			buf_append(&src, pc, *pc ? strlen(pc) : 1);
		}
		run(&r, src.data, src.len, 1, 1);
		if (r.rc != 0) {
			check(r.rc == -1 && r.out == NULL && r.links.n == 0,
			      __LINE__, "case %d: rc %d", i, r.rc);
			res_free(&r);
			continue;
		}
		check(count(r.out, r.outlen, BASE "/c/") == r.links.n &&
		      count(r.out, r.outlen, BASE "/o/") == 1, __LINE__,
		      "case %d: %zu links", i, r.links.n);
		if ((t = tmpl_compile(src.data, src.len, &to, &nm, errbuf,
		                      sizeof(errbuf))) != NULL) {
			tmpl_free(t);
			both++;
			t = tmpl_compile(r.out, r.outlen, &to, &nm, errbuf,
			                 sizeof(errbuf));
			check(t != NULL, __LINE__, "case %d: %s\nsrc: %s\nout: %s",
			      i, errbuf, src.data, r.out);
			tmpl_free(t);
		}
		res_free(&r);
	}
	/* The generator must produce compilable sources at all. */
	check(both > 100, __LINE__, "only %zu compilable sources", both);
	buf_free(&src);
}

/* Large pathological inputs: each must finish (linear time) and keep the
 * byte count (clicks only, nothing trackable closes). */
static void test_large(void)
{
	static const char *const unit[] = {
		"<a href=\"https://x.example/\" ", /* a tag that never ends */
		"<a href=", "<!-", "<!--", "{{", "{{{x}}", "</", "<script>",
		"&#x", "<a href='https://x.example/&amp;&amp;", "<a{{x}}>",
		"{{x}}<", "<", "\"", "<area data-notrack ",
	};
	size_t n = 1 << 20, i, k;
	struct res r;

	for (k = 0; k < sizeof(unit) / sizeof(unit[0]); k++) {
		size_t ul = strlen(unit[k]), len = n / ul * ul;
		char *p = malloc(len);

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		for (i = 0; i < len; i += ul)
			memcpy(p + i, unit[k], ul);
		run(&r, p, len, 1, 0);
		check(r.rc == 0 && r.outlen == len &&
		      memcmp(r.out, p, len) == 0, __LINE__, "unit %zu", k);
		res_free(&r);
		free(p);
	}
	/* Many links, a long value full of references. */
	{
		struct buf b = { 0 };

		for (i = 0; i < 20000; i++)
			buf_puts(&b, "<a href=\"https://x.example/\">x</a>");
		buf_puts(&b, "<a href=\"https://x.example/");
		for (i = 0; i < 100000; i++)
			buf_puts(&b, "&amp;&#38;&x");
		buf_puts(&b, "\">");
		run(&r, b.data, b.len, 1, 1);
		CU_ASSERT_EQUAL(r.rc, 0);
		CU_ASSERT_EQUAL(r.links.n, 20001);
		if (r.links.n == 20001)
			CU_ASSERT_EQUAL(strlen(r.links.urls[20000]),
			                strlen("https://x.example/") + 400000);
		res_free(&r);
		buf_free(&b);
	}
}

static const struct test_case tests[] = {
	{ "quoting", test_quoting },
	{ "case_and_blanks", test_case_and_blanks },
	{ "numbering", test_numbering },
	{ "other_tags", test_other_tags },
	{ "notrack", test_notrack },
	{ "not_http", test_not_http },
	{ "other_attributes", test_other_attributes },
	{ "comments", test_comments },
	{ "raw_text", test_raw_text },
	{ "mustache_untracked", test_mustache_untracked },
	{ "mustache_opaque", test_mustache_opaque },
	{ "delimiters", test_delimiters },
	{ "delimiter_errors", test_delimiter_errors },
	{ "entities", test_entities },
	{ "nul_byte", test_nul_byte },
	{ "pixel_tag", test_pixel_tag },
	{ "pixel_body", test_pixel_body },
	{ "off_off_copy", test_off_off_copy },
	{ "byte_for_byte", test_byte_for_byte },
	{ "compiles", test_compiles },
	{ "truncated", test_truncated },
	{ "sample_result", test_sample_result },
	{ "generated", test_generated },
	{ "large", test_large },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("linktrack", tests);
}
