/*
 * fuzz_linktrack.c - libFuzzer harness for the click/open tracking
 * rewriter (templates/linktrack.h).
 *
 * Input: byte 0: bit 0 clicks, bit 1 opens, bit 2 a base URL with a path
 * prefix; the rest is an HTML template source.
 * Properties: on success the output is NUL-terminated at outlen; with
 * clicks and opens off it is a copy of the input; every link in the table
 * is an http(s) URL without tab, CR, LF or NUL; when the source compiles
 * as a template (tmpl_compile() over the names below), so does the
 * output, since the rewrite must hand tmpl.c a valid template again; when
 * the source has no delimiter change and does not mention the tracking
 * host, the output holds one BASE/c/{{token}}/ per link and, with opens
 * on, exactly one pixel BASE/o/{{token}}.gif (none with opens off). On
 * failure: a message, *out NULL and an empty table.
 */
#include "fuzz.h"

#include "buf.h"
#include "linktrack.h"
#include "tmpl.h"

#include <strings.h>

static const char *const names[] = {
	"email", "first_name", "token", "tracking_pixel", "unsubscribe_url",
	"x",
};

/* 1 when src[len] compiles as an HTML template over names[]. */
static int compiles(const char *src, size_t len, char *err, size_t errlen)
{
	struct tmpl_opts o = { TMPL_HTML, "t.html", 1, NULL };
	struct tmpl_names nm = { names, sizeof names / sizeof names[0] };
	struct tmpl *t = tmpl_compile(src, len, &o, &nm, err, errlen);

	tmpl_free(t);
	return t != NULL;
}

/* Occurrences of needle in hay[n]. */
static size_t count(const char *hay, size_t n, const char *needle)
{
	size_t k = 0, nl = strlen(needle);
	const char *p = hay, *end = hay + n;

	while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		k++;
		p += nl;
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linktrack_opts o;
	struct link_table links = { (char **)"x", 99 }; /* overwritten */
	const char *src = (const char *)data + 1;
	char *out = (char *)"x", err[512], e2[512];
	size_t outlen = 7, n, untracked = 99;
	int rc;

	if (size == 0)
		return 0;
	n = size - 1;
	o.clicks = data[0] & 1;
	o.opens = !!(data[0] & 2);
	o.base_url = data[0] & 4 ? "https://t.acme.example/track" :
	                           "https://t.acme.example";
	err[0] = '\0';
	rc = linktrack_rewrite(src, n, &o, &out, &outlen, &links, &untracked,
	                       err, sizeof err);
	if (rc != 0) {
		FZ_CHECK(rc == -1 && err[0] != '\0' && out == NULL &&
		         links.n == 0 && links.urls == NULL,
		         "failure %d [%s] left output", rc, err);
		return 0;
	}
	FZ_CHECK(out != NULL && out[outlen] == '\0', "output not terminated");
	if (!o.clicks && !o.opens)
		FZ_CHECK(outlen == n && memcmp(out, src, n) == 0,
		         "clicks and opens off changed the source");
	if (!o.clicks)
		FZ_CHECK(links.n == 0, "links without clicks");
	for (size_t i = 0; i < links.n; i++) {
		const char *u = links.urls[i];

		FZ_CHECK(u != NULL && (strncasecmp(u, "http://", 7) == 0 ||
		         strncasecmp(u, "https://", 8) == 0),
		         "link %zu [%s]", i, u ? u : "NULL");
		FZ_CHECK(strpbrk(u, "\t\r\n") == NULL, "link %zu has tab/CR/LF",
		         i);
	}
	if (compiles(src, n, err, sizeof err))
		FZ_CHECK(compiles(out, outlen, e2, sizeof e2),
		         "the source compiles, the output does not: %s", e2);
	if (memmem(src, n, "{{=", 3) == NULL &&
	    memmem(src, n, "t.acme.example", 14) == NULL) {
		char want[128];

		snprintf(want, sizeof want, "%s/c/{{token}}/", o.base_url);
		FZ_CHECK(count(out, outlen, want) == links.n,
		         "%zu rewritten hrefs for %zu links",
		         count(out, outlen, want), links.n);
		snprintf(want, sizeof want, "%s/o/{{token}}.gif", o.base_url);
		FZ_CHECK(count(out, outlen, want) == (size_t)o.opens,
		         "%zu pixels with opens %d", count(out, outlen, want),
		         o.opens);
	}
	free(out);
	link_table_free(&links);
	return 0;
}
