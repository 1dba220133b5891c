/*
 * fuzz_tmpl.c - libFuzzer harness for the Mustache template compiler and
 * renderer (templates/tmpl.h).
 *
 * Input: byte 0: bits 0-1 mode (text, HTML, URL, HTML), bit 2 partials
 * from tests/fixtures/tmpl/partials (else partials are an error), bit 3
 * the second value set (empty and NULL values, so sections and strict
 * mode flip); the rest is the template source, compiled against a fixed
 * set of names (those of tests/fixtures and examples/).
 * Properties: a compile error says "file:line: ..."; a compiled
 * template renders with strict off (0), and twice to the
 * same bytes (it is immutable); strict on gives 0 or TMPL_EMPTY with
 * "... is empty"; a strict success renders what non-strict does; with
 * every value empty non-strict still succeeds; tmpl_uses() answers for
 * every name.
 */
#include "fuzz.h"

#include "buf.h"
#include "tmpl.h"

#ifndef EDM_FUZZ_FIXTURES
#error "EDM_FUZZ_FIXTURES (tests/fixtures) must be defined"
#endif

static const char *const names[] = {
	"email", "first_name", "last_name", "company", "city",
	"unsubscribe_url", "token", "tracking_pixel", "x", "名字",
};
#define NNAMES (sizeof names / sizeof names[0])

static const char *const vals_a[NNAMES] = {
	"ann+news@example.com", "Ann <b>&\"'", "O'Brien", "Acme & Sons",
	"上海", "https://t.example/u?e=a%40b&x=1", "tok_AbC-123",
	"<img src=x>", "{{x}}", "\xe5\x90\x8d\xff\xfe",
};
static const char *const vals_b[NNAMES] = {
	"a@b.c", "", NULL, " ", NULL, "", "t", NULL, "\r\n", "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum tmpl_mode modes[4] = {
		TMPL_TEXT, TMPL_HTML, TMPL_URL, TMPL_HTML,
	};
	static const char *const empty[NNAMES];
	struct tmpl_names nm = { names, NNAMES };
	struct tmpl_values v, ve = { empty, NULL };
	struct buf o1 = { 0 }, o2 = { 0 }, o3 = { 0 };
	struct tmpl_opts opts;
	struct tmpl *t;
	char err[512];
	unsigned sel;
	int rc;

	if (size == 0)
		return 0;
	sel = data[0];
	memset(&opts, 0, sizeof opts);
	opts.mode = modes[sel & 3];
	opts.file = "fuzz.tmpl";
	opts.first_line = 1;
	opts.partials_dir = sel & 4 ? EDM_FUZZ_FIXTURES "/tmpl/partials" : NULL;
	v.vals = sel & 8 ? vals_b : vals_a;
	v.lens = NULL;

	err[0] = '\0';
	t = tmpl_compile((const char *)data + 1, size - 1, &opts, &nm, err,
	                 sizeof err);
	if (t == NULL) {
		FZ_CHECK(strchr(err, ':') != NULL,
		         "compile error without file:line [%s]", err);
		return 0;
	}
	rc = tmpl_render(t, &v, 0, &o1, err, sizeof err);
	FZ_CHECK(rc == 0, "render failed: %d %s", rc, err);
	rc = tmpl_render(t, &v, 0, &o2, err, sizeof err);
	FZ_CHECK(rc == 0 && o1.len == o2.len &&
	         (o1.len == 0 || memcmp(o1.data, o2.data, o1.len) == 0),
	         "two renders differ");
	rc = tmpl_render(t, &v, 1, &o3, err, sizeof err);
	if (rc == TMPL_EMPTY)
		FZ_CHECK(strstr(err, " is empty") != NULL,
		         "strict error [%s]", err);
	else
		FZ_CHECK(rc == 0 && o3.len == o1.len &&
		         (o1.len == 0 || memcmp(o1.data, o3.data, o1.len) == 0),
		         "strict render %d differs", rc);
	buf_reset(&o3);
	rc = tmpl_render(t, &ve, 0, &o3, err, sizeof err);
	FZ_CHECK(rc == 0, "render with empty values failed: %s", err);
	for (size_t i = 0; i < NNAMES; i++) {
		int u = tmpl_uses(t, i);

		FZ_CHECK(u == 0 || u == 1, "tmpl_uses %d", u);
	}
	tmpl_free(t);
	buf_free(&o1);
	buf_free(&o2);
	buf_free(&o3);
	return 0;
}
