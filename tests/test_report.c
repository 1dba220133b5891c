/*
 * test_report.c - `edm report`'s computation and writers (campaign/
 * report.h): status precedence, the machine rules for opens and clicks,
 * the summary counts and tables, the timeline buckets, report.csv lines
 * (formula guard, UTF-8, CRLF), report_columns errors, HTML escaping of
 * hostile data, and the fixture campaign (tests/fixtures/report) read
 * with the same readers `edm report` uses.
 *
 * Everything but the fixture case works on values in memory; the HTML is
 * checked by scanning every tag it has against the short list of tags
 * the writer emits, so an unescaped <script> or <img> from data fails.
 */
#include "cunit_main.h"

#include "buf.h"
#include "csv_reader.h"
#include "events.h"
#include "report.h"
#include "results.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIX EDM_FIXTURES "/report/"
/* 2026-11-22T08:00:00Z */
#define T0 ((time_t)1795334400)
#define W10 10000u   /* the default scanner_window, 10 s */

/* ---- helpers ---- */

static void add_res(struct report *r, size_t row, const char *status,
                    time_t t, int code, const char *cat, unsigned line)
{
	struct results_row res = {
		.time = t, .status = status, .code = code, .category = cat,
		.row = row, .email = "x@example.com",
	};

	check(report_add_result(r, &res) == 0, line, "add_result row %zu %s",
	      row, status);
}

static void add_ev(struct report *r, const char *type, size_t row, time_t t,
                   unsigned link, const char *url, int machine,
                   const char *cat, const char *status, unsigned line)
{
	struct event ev = {
		.time = t, .type = type, .row = row, .link_id = link, .url = url,
		.machine = machine, .category = cat, .status = status,
		.email = "x@example.com",
	};

	check(report_add_event(r, &ev) == 0, line, "add_event row %zu %s", row, type);
}

/* The line of one row, with a plain address. */
static struct report_line row_of(struct report *r, size_t row, const char *email)
{
	struct report_line l;

	CU_ASSERT_EQUAL_FATAL(report_row(r, row, email, strlen(email), &l), 0);
	return l;
}

static int streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* ---- status ---- */

static void test_status_from_results(void)
{
	static const char *const st[] = { "delivered", "bounced", "expired",
	                                  "suppressed", "skipped" };
	static const enum report_status want[] = { REPORT_DELIVERED, REPORT_BOUNCED,
		REPORT_EXPIRED, REPORT_SUPPRESSED, REPORT_SKIPPED };
	struct report *r = report_new(W10, 10);
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (size_t i = 0; i < 5; i++)
		add_res(r, i + 1, st[i], T0 + (time_t)i, i == 0 ? 250 : i == 1 ? 550 : 0,
		        i == 0 ? NULL : i == 1 ? "bad-mailbox" : i == 2 ? "message-expired" :
		        i == 3 ? "suppressed" : "syntax", __LINE__);
	CU_ASSERT_EQUAL(report_finish(r), 0);
	for (size_t i = 0; i < 5; i++) {
		l = row_of(r, i + 1, "a@example.com");
		check(l.status == want[i], __LINE__, "row %zu: status %s", i + 1,
		      report_status_name(l.status));
		check(streq(report_status_name(l.status), st[i]), __LINE__, "name %s",
		      report_status_name(l.status));
		/* sent_at is the time of a delivered row only */
		check(l.sent_at == (i == 0 ? T0 : 0), __LINE__, "row %zu sent_at %lld",
		      i + 1, (long long)l.sent_at);
		CU_ASSERT_EQUAL(l.async, 0);
	}
	l = row_of(r, 6, "b@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_PENDING);
	CU_ASSERT_STRING_EQUAL(report_status_name(l.status), "pending");
	CU_ASSERT_STRING_EQUAL(l.code, "");
	CU_ASSERT_STRING_EQUAL(l.category, "");
	report_free(r);
}

static void test_status_codes_categories(void)
{
	struct report *r = report_new(W10, 10);
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "bounced", T0, 550, "bad-mailbox", __LINE__);
	add_res(r, 2, "expired", T0, 451, "message-expired", __LINE__);
	add_res(r, 3, "delivered", T0, 250, NULL, __LINE__);
	/* a later line for the same row wins (a rebuilt results.csv) */
	add_res(r, 4, "expired", T0, 421, "message-expired", __LINE__);
	add_res(r, 4, "delivered", T0 + 60, 250, "", __LINE__);
	CU_ASSERT_EQUAL(report_finish(r), 0);
	l = row_of(r, 1, "a@example.com");
	CU_ASSERT_STRING_EQUAL(l.code, "550");
	CU_ASSERT_STRING_EQUAL(l.category, "bad-mailbox");
	l = row_of(r, 2, "a@example.com");
	CU_ASSERT_STRING_EQUAL(l.code, "451");
	CU_ASSERT_STRING_EQUAL(l.category, "message-expired");
	l = row_of(r, 3, "a@example.com");
	CU_ASSERT_STRING_EQUAL(l.code, "250");
	CU_ASSERT_STRING_EQUAL(l.category, "");
	l = row_of(r, 4, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_DELIVERED);
	CU_ASSERT_EQUAL(l.sent_at, T0 + 60);
	report_free(r);
}

static void test_status_async_bounce(void)
{
	struct report *r = report_new(W10, 10);
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
	add_ev(r, "bounce", 1, T0 + 600, 0, NULL, 0, "inactive-mailbox", "5.2.1", __LINE__);
	/* the first bounce is kept */
	add_ev(r, "bounce", 1, T0 + 700, 0, NULL, 0, "quota-issues", "5.2.2", __LINE__);
	/* a bounce event on a row that bounced at once changes nothing */
	add_res(r, 2, "bounced", T0, 550, "bad-mailbox", __LINE__);
	add_ev(r, "bounce", 2, T0 + 600, 0, NULL, 0, "spam-related", "5.7.1", __LINE__);
	/* nor on a pending, expired or skipped row */
	add_ev(r, "bounce", 3, T0 + 600, 0, NULL, 0, "bad-mailbox", "5.1.1", __LINE__);
	add_res(r, 4, "expired", T0, 451, "message-expired", __LINE__);
	add_ev(r, "bounce", 4, T0 + 600, 0, NULL, 0, "bad-mailbox", "5.1.1", __LINE__);
	CU_ASSERT_EQUAL(report_finish(r), 0);

	l = row_of(r, 1, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_BOUNCED);
	CU_ASSERT_EQUAL(l.async, 1);
	CU_ASSERT_STRING_EQUAL(l.category, "inactive-mailbox");
	CU_ASSERT_STRING_EQUAL(l.code, "5.2.1");
	CU_ASSERT_EQUAL(l.sent_at, T0);   /* it was delivered first */
	l = row_of(r, 2, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_BOUNCED);
	CU_ASSERT_EQUAL(l.async, 0);
	CU_ASSERT_STRING_EQUAL(l.category, "bad-mailbox");
	CU_ASSERT_STRING_EQUAL(l.code, "550");
	l = row_of(r, 3, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_PENDING);
	CU_ASSERT_EQUAL(l.async, 0);
	l = row_of(r, 4, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_EXPIRED);
	CU_ASSERT_STRING_EQUAL(l.code, "451");
	report_free(r);
}

static void test_status_complaint(void)
{
	/* complaint before or after a bounce event: complained either way */
	for (int order = 0; order < 2; order++) {
		struct report *r = report_new(W10, 10);
		struct report_line l;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		/* events before results: the order of the calls must not matter */
		if (order == 0) {
			add_ev(r, "complaint", 1, T0 + 60, 0, NULL, 0, "abuse", NULL, __LINE__);
			add_ev(r, "bounce", 1, T0 + 90, 0, NULL, 0, "spam-related", "5.7.1", __LINE__);
		} else {
			add_ev(r, "bounce", 1, T0 + 90, 0, NULL, 0, "spam-related", "5.7.1", __LINE__);
			add_ev(r, "complaint", 1, T0 + 60, 0, NULL, 0, "abuse", NULL, __LINE__);
		}
		add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
		/* a complaint for a suppressed row is ignored */
		add_res(r, 2, "suppressed", T0, 0, "suppressed", __LINE__);
		add_ev(r, "complaint", 2, T0 + 60, 0, NULL, 0, "abuse", NULL, __LINE__);
		CU_ASSERT_EQUAL(report_finish(r), 0);
		l = row_of(r, 1, "a@example.com");
		check(l.status == REPORT_COMPLAINED, __LINE__, "order %d: %s", order,
		      report_status_name(l.status));
		CU_ASSERT_STRING_EQUAL(l.category, "abuse");
		CU_ASSERT_STRING_EQUAL(l.code, "250");
		CU_ASSERT_EQUAL(l.async, 0);
		CU_ASSERT_EQUAL(l.sent_at, T0);
		l = row_of(r, 2, "b@example.com");
		CU_ASSERT_EQUAL(l.status, REPORT_SUPPRESSED);
		report_free(r);
	}
}

static void test_status_delayed_and_unknown(void)
{
	struct report *r = report_new(W10, 10);
	struct event ev = { .time = T0, .type = "forward", .row = 1 };
	struct results_row res = { .time = T0, .status = "deferred", .row = 1 };
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
	add_ev(r, "delayed", 1, T0 + 60, 0, NULL, 0, NULL, "4.4.7", __LINE__);
	add_ev(r, "delayed", 2, T0 + 60, 0, NULL, 0, NULL, "4.4.7", __LINE__);
	CU_ASSERT_EQUAL(report_add_event(r, &ev), 1);        /* unknown type */
	ev.type = "open";
	ev.row = 0;
	CU_ASSERT_EQUAL(report_add_event(r, &ev), 1);        /* no row */
	ev.row = 11;
	CU_ASSERT_EQUAL(report_add_event(r, &ev), 1);        /* past the end */
	CU_ASSERT_EQUAL(report_add_result(r, &res), 1);      /* unknown status */
	res.status = "delivered";
	res.row = 12;
	CU_ASSERT_EQUAL(report_add_result(r, &res), 1);      /* past the end */
	CU_ASSERT_EQUAL(report_finish(r), 0);
	l = row_of(r, 1, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_DELIVERED);
	CU_ASSERT_EQUAL(l.opens + l.clicks + l.machine_opens + l.machine_clicks, 0);
	l = row_of(r, 2, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_PENDING);
	{
		const struct report_summary *s = report_summary(r);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL(s->ignored, 3);
		CU_ASSERT_EQUAL(s->past_end, 2);
		CU_ASSERT_EQUAL(s->nbuckets, 0);
	}
	report_free(r);
}

/* ---- opens ---- */

static void test_opens(void)
{
	struct report *r = report_new(W10, 10);
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
	/* a proxy open right at sending is machine; only machine=1 decides */
	add_ev(r, "open", 1, T0 + 1, 0, NULL, 1, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 7200, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3, 0, NULL, 0, NULL, NULL, __LINE__);  /* human, early */
	add_ev(r, "open", 1, T0 + 3600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 2, T0 + 3600, 0, NULL, 1, NULL, NULL, __LINE__);
	add_ev(r, "unsubscribe", 2, T0 + 3700, 0, NULL, 0, NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL(report_finish(r), 0);
	l = row_of(r, 1, "a@example.com");
	CU_ASSERT_EQUAL(l.opens, 3);
	CU_ASSERT_EQUAL(l.machine_opens, 1);
	CU_ASSERT_EQUAL(l.first_open_at, T0 + 3);
	CU_ASSERT_EQUAL(l.unsubscribed, 0);
	l = row_of(r, 2, "a@example.com");
	CU_ASSERT_EQUAL(l.opens, 0);
	CU_ASSERT_EQUAL(l.machine_opens, 1);
	CU_ASSERT_EQUAL(l.first_open_at, 0);
	CU_ASSERT_EQUAL(l.unsubscribed, 1);
	report_free(r);
}

/* ---- clicks: the machine rules ---- */

struct click_case {
	const char *name;
	unsigned window;
	const char *status;      /* of row 1 */
	struct { int dt; unsigned link; int machine; } c[6];  /* dt from T0 */
	size_t n;
	unsigned want_human, want_machine;
	int want_first;          /* dt of the first human click, -1 none */
};

static const struct click_case click_cases[] = {
	{ "flagged by edm track", W10, "delivered",
	  { { 3600, 1, 1 }, { 3700, 1, 0 } }, 2, 1, 1, 3700 },
	{ "within the window of sending", W10, "delivered",
	  { { 5, 1, 0 }, { 3600, 1, 0 } }, 2, 1, 1, 3600 },
	{ "at the window's edge", W10, "delivered",
	  { { 10, 1, 0 } }, 1, 0, 1, -1 },
	{ "just past the window", W10, "delivered",
	  { { 11, 1, 0 } }, 1, 1, 0, 11 },
	{ "before sending", W10, "delivered",
	  { { -30, 1, 0 } }, 1, 0, 1, -1 },
	{ "not delivered: no send time", W10, "bounced",
	  { { 5, 1, 0 } }, 1, 1, 0, 5 },
	{ "pending: no send time", W10, NULL,
	  { { 5, 1, 0 } }, 1, 1, 0, 5 },
	{ "two links within the window: both", W10, "delivered",
	  { { 600, 1, 0 }, { 609, 2, 0 } }, 2, 0, 2, -1 },
	{ "two links out of order in the file", W10, "delivered",
	  { { 609, 2, 0 }, { 600, 1, 0 } }, 2, 0, 2, -1 },
	{ "two links 11 s apart: people", W10, "delivered",
	  { { 600, 1, 0 }, { 611, 2, 0 } }, 2, 2, 0, 600 },
	{ "the same link twice quickly: a double click", W10, "delivered",
	  { { 600, 1, 0 }, { 601, 1, 0 } }, 2, 2, 0, 600 },
	{ "a burst of three, and a later click", W10, "delivered",
	  { { 600, 1, 0 }, { 601, 1, 0 }, { 602, 2, 0 }, { 605, 3, 0 }, { 4000, 2, 0 } },
	  5, 1, 4, 4000 },
	{ "a later link near an early burst click only", W10, "delivered",
	  { { 600, 1, 0 }, { 615, 1, 0 }, { 624, 2, 0 } }, 3, 1, 2, 600 },
	{ "window 0 turns the time rules off", 0, "delivered",
	  { { 1, 1, 0 }, { 1, 2, 0 }, { 2, 3, 1 } }, 3, 2, 1, 1 },
};

static void test_click_rules(void)
{
	for (size_t k = 0; k < sizeof(click_cases) / sizeof(*click_cases); k++) {
		const struct click_case *c = &click_cases[k];
		struct report *r = report_new(c->window, 5);
		struct report_line l;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		if (c->status != NULL)
			add_res(r, 1, c->status, T0, 250, NULL, __LINE__);
		for (size_t i = 0; i < c->n; i++)
			add_ev(r, "click", 1, T0 + c->c[i].dt, c->c[i].link,
			       "https://acme.example/x", c->c[i].machine, NULL, NULL, __LINE__);
		CU_ASSERT_EQUAL(report_finish(r), 0);
		l = row_of(r, 1, "a@example.com");
		check(l.clicks == c->want_human && l.machine_clicks == c->want_machine,
		      __LINE__, "%s: human %u (want %u), machine %u (want %u)", c->name,
		      l.clicks, c->want_human, l.machine_clicks, c->want_machine);
		check(l.first_click_at == (c->want_first < 0 ? 0 : T0 + c->want_first),
		      __LINE__, "%s: first click %lld", c->name,
		      (long long)l.first_click_at);
		report_free(r);
	}
}

/* Clicks of other rows never make a burst. */
static void test_click_rows_apart(void)
{
	struct report *r = report_new(W10, 5);
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_ev(r, "click", 1, T0 + 600, 1, "https://a.example/1", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 2, T0 + 601, 2, "https://a.example/2", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 3, T0 + 602, 1, "https://a.example/1", 0, NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL(report_finish(r), 0);
	for (size_t row = 1; row <= 3; row++) {
		l = row_of(r, row, "a@example.com");
		check(l.clicks == 1 && l.machine_clicks == 0, __LINE__, "row %zu", row);
	}
	/* adding after finish is refused */
	{
		struct event ev = { .time = T0, .type = "click", .row = 1, .link_id = 1 };
		CU_ASSERT_EQUAL(report_add_event(r, &ev), 1);
	}
	report_free(r);
}

/* ---- the summary ---- */

/* A small campaign with every status. */
static struct report *campaign(void)
{
	struct report *r = report_new(W10, 20);

	if (r == NULL)
		return NULL;
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);          /* a.com */
	add_res(r, 2, "delivered", T0, 250, NULL, __LINE__);          /* a.com */
	add_res(r, 3, "bounced", T0, 550, "bad-mailbox", __LINE__);   /* a.com */
	add_res(r, 4, "delivered", T0, 250, NULL, __LINE__);          /* b.com */
	add_res(r, 5, "expired", T0, 451, "message-expired", __LINE__); /* b.com */
	add_res(r, 6, "suppressed", T0, 0, "suppressed", __LINE__);
	add_res(r, 7, "skipped", T0, 0, "syntax", __LINE__);
	/* 8 pending */
	add_res(r, 9, "delivered", T0, 250, NULL, __LINE__);          /* c.com */
	add_res(r, 10, "delivered", T0, 250, NULL, __LINE__);         /* c.com */
	add_res(r, 11, "bounced", T0, 550, NULL, __LINE__);           /* c.com, no category */
	add_ev(r, "bounce", 9, T0 + 100, 0, NULL, 0, "bad-mailbox", "5.1.1", __LINE__);
	add_ev(r, "complaint", 10, T0 + 100, 0, NULL, 0, "abuse", NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 7200, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 2, T0 + 5, 0, NULL, 1, NULL, NULL, __LINE__);
	add_ev(r, "open", 4, T0 + 3700, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 10, T0 + 3800, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 1, T0 + 3610, 1, "https://acme.example/a", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 1, T0 + 7210, 1, "https://acme.example/a", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 4, T0 + 3710, 2, "https://acme.example/b", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 4, T0 + 9000, 1, "https://acme.example/a", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 2, T0 + 4, 2, "https://acme.example/b", 0, NULL, NULL, __LINE__);
	add_ev(r, "unsubscribe", 4, T0 + 9100, 0, NULL, 0, NULL, NULL, __LINE__);
	return r;
}

static const char *const campaign_emails[] = {
	"ann@a.com", "bo@a.com", "cy@a.com", "di@b.com", "ed@b.com",
	"fi@b.com", "not an address", "gu@b.com", "hu@c.com", "io@c.com",
	"ja@C.COM",
};

static void run_rows(struct report *r)
{
	for (size_t i = 0; i < sizeof(campaign_emails) / sizeof(*campaign_emails); i++)
		(void)row_of(r, i + 1, campaign_emails[i]);
}

static void test_summary_counts(void)
{
	struct report *r = campaign();
	const struct report_summary *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	run_rows(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(s->recipients, 11);
	CU_ASSERT_EQUAL(s->sent, 8);           /* 1 2 3 4 5 9 10 11 */
	CU_ASSERT_EQUAL(s->delivered, 4);      /* 1 2 4 10 (complained) */
	CU_ASSERT_EQUAL(s->bounced, 3);        /* 3 11 and 9 (async) */
	CU_ASSERT_EQUAL(s->async_bounced, 1);
	CU_ASSERT_EQUAL(s->expired, 1);
	CU_ASSERT_EQUAL(s->pending, 1);
	CU_ASSERT_EQUAL(s->suppressed, 1);
	CU_ASSERT_EQUAL(s->skipped, 1);
	CU_ASSERT_EQUAL(s->complained, 1);
	CU_ASSERT_EQUAL(s->sent, s->delivered + s->bounced + s->expired);
	CU_ASSERT_EQUAL(s->opened, 3);         /* 1 4 10 */
	CU_ASSERT_EQUAL(s->opened_any, 4);     /* + 2 (machine) */
	CU_ASSERT_EQUAL(s->clicked, 2);        /* 1 4 */
	CU_ASSERT_EQUAL(s->clicked_any, 3);    /* + 2 (within the window) */
	CU_ASSERT_EQUAL(s->unsubscribed, 1);
	CU_ASSERT_EQUAL(s->opens, 4);
	CU_ASSERT_EQUAL(s->machine_opens, 1);
	CU_ASSERT_EQUAL(s->clicks, 4);
	CU_ASSERT_EQUAL(s->machine_clicks, 1);
	CU_ASSERT_EQUAL(s->ignored, 0);
	CU_ASSERT_EQUAL(s->past_end, 0);
	/* bounced by category: most first, then by name; none -> other */
	CU_ASSERT_EQUAL_FATAL(s->ncategories, 2);
	CU_ASSERT_STRING_EQUAL(s->categories[0].name, "bad-mailbox");
	CU_ASSERT_EQUAL(s->categories[0].n, 2);
	CU_ASSERT_STRING_EQUAL(s->categories[1].name, "other");
	CU_ASSERT_EQUAL(s->categories[1].n, 1);
	report_free(r);
}

static void test_summary_domains_links(void)
{
	struct report *r = campaign();
	const struct report_summary *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	run_rows(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	/* sent rows only, by sent then name; ja@C.COM counts as c.com */
	CU_ASSERT_EQUAL_FATAL(s->ndomains, 3);
	CU_ASSERT_EQUAL(s->ndomains_total, 3);
	CU_ASSERT_STRING_EQUAL(s->domains[0].domain, "a.com");
	CU_ASSERT_EQUAL(s->domains[0].sent, 3);
	CU_ASSERT_EQUAL(s->domains[0].delivered, 2);
	CU_ASSERT_EQUAL(s->domains[0].bounced, 1);
	CU_ASSERT_EQUAL(s->domains[0].opened, 1);
	CU_ASSERT_STRING_EQUAL(s->domains[1].domain, "c.com");
	CU_ASSERT_EQUAL(s->domains[1].sent, 3);
	CU_ASSERT_EQUAL(s->domains[1].delivered, 1);
	CU_ASSERT_EQUAL(s->domains[1].bounced, 2);
	CU_ASSERT_EQUAL(s->domains[1].opened, 1);
	CU_ASSERT_STRING_EQUAL(s->domains[2].domain, "b.com");
	CU_ASSERT_EQUAL(s->domains[2].sent, 2);
	CU_ASSERT_EQUAL(s->domains[2].delivered, 1);
	CU_ASSERT_EQUAL(s->domains[2].opened, 1);
	/* links: human clicks, unique rows; link 2's click by row 2 was
	 * within the window of sending */
	CU_ASSERT_EQUAL_FATAL(s->nlinks, 2);
	CU_ASSERT_EQUAL(s->links[0].link_id, 1);
	CU_ASSERT_STRING_EQUAL(s->links[0].url, "https://acme.example/a");
	CU_ASSERT_EQUAL(s->links[0].clicks, 3);
	CU_ASSERT_EQUAL(s->links[0].unique, 2);
	CU_ASSERT_EQUAL(s->links[1].link_id, 2);
	CU_ASSERT_EQUAL(s->links[1].clicks, 1);
	CU_ASSERT_EQUAL(s->links[1].unique, 1);
	report_free(r);
}

/* More than 20 domains and 10 links: the tables keep the top ones. */
static void test_summary_top_limits(void)
{
	struct report *r = report_new(W10, 100);
	const struct report_summary *s;
	char email[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* domain dK gets K+1 rows (rows numbered in order) */
	size_t row = 0;
	for (int k = 0; k < 25 && row < 90; k++)
		for (int j = 0; j <= k % 4; j++)
			add_res(r, ++row, "delivered", T0, 250, NULL, __LINE__);
	for (unsigned link = 1; link <= 12; link++)
		for (unsigned j = 0; j < link; j++)
			add_ev(r, "click", j + 1, T0 + 3600 + link * 60, link,
			       "https://acme.example/l", 0, NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	row = 0;
	for (int k = 0; k < 25; k++)
		for (int j = 0; j <= k % 4; j++) {
			snprintf(email, sizeof(email), "u%d@d%02d.example", j, k);
			(void)row_of(r, ++row, email);
		}
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(s->ndomains_total, 25);
	CU_ASSERT_EQUAL_FATAL(s->ndomains, REPORT_TOP_DOMAINS);
	for (size_t i = 1; i < s->ndomains; i++)
		check(s->domains[i - 1].sent > s->domains[i].sent ||
		      (s->domains[i - 1].sent == s->domains[i].sent &&
		       strcmp(s->domains[i - 1].domain, s->domains[i].domain) < 0),
		      __LINE__, "domain order at %zu", i);
	CU_ASSERT_EQUAL(s->domains[0].sent, 4);
	CU_ASSERT_STRING_EQUAL(s->domains[0].domain, "d03.example");
	CU_ASSERT_EQUAL(s->nlinks_total, 12);
	CU_ASSERT_EQUAL_FATAL(s->nlinks, REPORT_TOP_LINKS);
	CU_ASSERT_EQUAL(s->links[0].link_id, 12);
	CU_ASSERT_EQUAL(s->links[0].clicks, 12);
	CU_ASSERT_EQUAL(s->links[9].link_id, 3);
	report_free(r);
}

/* ---- the timeline ---- */

static void test_timeline_hours(void)
{
	struct report *r = report_new(W10, 10);
	const struct report_summary *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3 * 3600 + 5, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3 * 3600 + 50, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3600, 0, NULL, 1, NULL, NULL, __LINE__);   /* machine */
	add_ev(r, "click", 1, T0 + 3 * 3600 + 60, 1, "u", 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 1, T0 + 2, 1, "u", 0, NULL, NULL, __LINE__);      /* machine */
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	(void)row_of(r, 1, "a@example.com");
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(s->bucket_secs, 3600);
	CU_ASSERT_EQUAL_FATAL(s->nbuckets, 4);   /* 08:00 .. 11:00, gaps filled */
	CU_ASSERT_EQUAL(s->timeline[0].start, T0);
	CU_ASSERT_EQUAL(s->timeline[0].opens, 1);
	CU_ASSERT_EQUAL(s->timeline[1].opens + s->timeline[2].opens, 0);
	CU_ASSERT_EQUAL(s->timeline[3].start, T0 + 3 * 3600);
	CU_ASSERT_EQUAL(s->timeline[3].opens, 2);
	CU_ASSERT_EQUAL(s->timeline[3].clicks, 1);
	CU_ASSERT_EQUAL(s->timeline[0].clicks, 0);
	report_free(r);
}

static void test_timeline_days(void)
{
	struct report *r = report_new(W10, 10);
	const struct report_summary *s;
	size_t opens = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* exactly 3 days of span stays hourly */
	add_ev(r, "open", 1, T0, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 1, T0 + 3 * 86400, 0, NULL, 0, NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(s->bucket_secs, 3600);
	CU_ASSERT_EQUAL(s->nbuckets, 73);
	report_free(r);

	/* beyond 3 days: per day, on UTC midnights */
	CU_ASSERT_PTR_NOT_NULL_FATAL((r = report_new(W10, 10)));
	add_ev(r, "open", 1, T0 + 3600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "open", 2, T0 + 5 * 86400, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 2, T0 + 5 * 86400 + 60, 4, "u", 0, NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(s->bucket_secs, 86400);
	CU_ASSERT_EQUAL_FATAL(s->nbuckets, 6);
	CU_ASSERT_EQUAL(s->timeline[0].start, T0 - 8 * 3600);  /* 2026-11-22T00:00Z */
	for (size_t i = 0; i < s->nbuckets; i++)
		opens += s->timeline[i].opens;
	CU_ASSERT_EQUAL(opens, 2);
	CU_ASSERT_EQUAL(s->timeline[5].clicks, 1);
	report_free(r);
}

/* ---- report.csv ---- */

static void test_csv_line_guard(void)
{
	struct report_line l = {
		.row = 1, .status = REPORT_BOUNCED, .email = "-x@example.com  ",
		.email_len = 14, .category = "=HYPERLINK(\"http://e.example\")",
		.code = "5.2.1", .sent_at = T0, .first_open_at = T0 + 60, .opens = 2,
		.clicks = 0, .machine_clicks = 3, .async = 1, .unsubscribed = 1,
	};
	const char *fields[] = { "=cmd|' /C calc'!A0", "+1 555", "@SUM(A1)",
	                         "line\nbreak", "\tTab", "王小明", "bad \xff\xfe utf8",
	                         "a, b" };
	struct buf b = { 0 };

	CU_ASSERT_EQUAL(report_csv_line(&b, &l, fields, 8, 0), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		"'-x@example.com,bounced,\"'=HYPERLINK(\"\"http://e.example\"\")\",5.2.1,"
		"2026-11-22T08:00:00Z,1,2,2026-11-22T08:01:00Z,0,0,,1,1,0,3,"
		"'=cmd|' /C calc'!A0,'+1 555,'@SUM(A1),\"line break\",'\tTab,王小明,"
		"bad \xEF\xBF\xBD utf8,\"a, b\"\n");
	buf_reset(&b);
	/* CRLF for Excel; nothing else changes */
	l.email = "ann@example.com";
	l.email_len = strlen(l.email);
	l.status = REPORT_PENDING;
	l.category = l.code = "";
	l.sent_at = l.first_open_at = 0;
	l.opens = l.machine_clicks = 0;
	l.async = l.unsubscribed = 0;
	CU_ASSERT_EQUAL(report_csv_line(&b, &l, NULL, 0, 1), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "ann@example.com,pending,,,,0,0,,0,0,,0,0,0,0\r\n");
	buf_free(&b);
}

static void test_csv_header(void)
{
	const char *names[] = { "name", "Status", "=evil", "city" };
	struct buf b = { 0 };

	CU_ASSERT_EQUAL(report_csv_header(&b, names, 4, 1), 0);
	CU_ASSERT_STRING_EQUAL(b.data, REPORT_HEADER ",name,list_Status,'=evil,city\r\n");
	buf_reset(&b);
	CU_ASSERT_EQUAL(report_csv_header(&b, NULL, 0, 0), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		"email,status,category,code,sent_at,opened,opens,first_open_at,clicked,"
		"clicks,first_click_at,unsubscribed,async,machine_opens,machine_clicks\n");
	buf_free(&b);
}

/* The address as the list has it, blanks (also U+00A0, U+3000) trimmed. */
static void test_row_email_trim(void)
{
	struct report *r = report_new(W10, 5);
	const char raw[] = "\xC2\xA0 ann@example.com\t\xE3\x80\x80";
	struct report_line l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	CU_ASSERT_EQUAL_FATAL(report_row(r, 1, raw, strlen(raw), &l), 0);
	CU_ASSERT_EQUAL(l.email_len, strlen("ann@example.com"));
	CU_ASSERT_NSTRING_EQUAL(l.email, "ann@example.com", l.email_len);
	CU_ASSERT_EQUAL_FATAL(report_row(r, 2, "   ", 3, &l), 0);
	CU_ASSERT_EQUAL(l.email_len, 0);
	report_free(r);
}

/* ---- report_columns ---- */

static void test_columns_resolve(void)
{
	const char *const hf[] = { "email", " First Name", "city", "Plan " };
	const size_t hl[] = { 5, 11, 4, 5 };
	struct csv_row h = { .row = 0, .nfields = 4, .fields = hf, .lens = hl };
	char *ok[] = { "city", "first name", "PLAN", "email" };
	char *bad[] = { "city", "segment" };
	size_t idx[4];
	char err[512];

	CU_ASSERT_EQUAL(report_columns_resolve(&h, ok, 4, idx, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(idx[0], 2);
	CU_ASSERT_EQUAL(idx[1], 1);
	CU_ASSERT_EQUAL(idx[2], 3);
	CU_ASSERT_EQUAL(idx[3], 0);
	err[0] = '\0';
	CU_ASSERT_EQUAL(report_columns_resolve(&h, bad, 2, idx, err, sizeof(err)), -1);
	check(strstr(err, "report_columns") != NULL && strstr(err, "\"segment\"") != NULL &&
	      strstr(err, "\"email\", \" First Name\", \"city\", \"Plan \"") != NULL,
	      __LINE__, "error: %s", err);
	CU_ASSERT_EQUAL(report_columns_resolve(&h, NULL, 0, idx, err, sizeof(err)), 0);
}

/* ---- report.html ---- */

/* 1 when every tag in html is one the writer emits (nothing from data
 * became markup), and no attribute loads anything. */
static int html_tags_ok(const char *html, char *bad, size_t badlen)
{
	static const char *const allowed[] = {
		"!DOCTYPE", "html", "head", "meta", "title", "style", "body", "main",
		"header", "p", "h1", "h2", "h3", "div", "section", "svg", "text",
		"tspan", "rect", "line", "g", "table", "thead", "tbody", "tr", "th",
		"td", "span", "footer", NULL,
	};
	const char *p = html;

	while ((p = strchr(p, '<')) != NULL) {
		char name[16];
		size_t n = 0;
		int ok = 0;
		const char *end;

		p++;
		if (*p == '/')
			p++;
		while (n < sizeof(name) - 1 && (isalnum((unsigned char)*p) || *p == '!'))
			name[n++] = *p++;
		name[n] = '\0';
		for (size_t i = 0; allowed[i] != NULL; i++)
			ok |= strcmp(name, allowed[i]) == 0;
		end = strchr(p, '>');
		if (!ok || end == NULL) {
			snprintf(bad, badlen, "tag <%s", name);
			return 0;
		}
		/* attributes of our tags: none that fetch or run */
		for (const char *a = p; a < end; a++)
			if (strncasecmp(a, "src=", 4) == 0 || strncasecmp(a, "href", 4) == 0 ||
			    strncasecmp(a, " on", 3) == 0 || strncasecmp(a, "url(", 4) == 0) {
				snprintf(bad, badlen, "attribute in <%s: %.20s", name, a);
				return 0;
			}
	}
	return 1;
}

static void test_html_escaping(void)
{
	struct report *r = report_new(W10, 10);
	const struct report_summary *s;
	struct buf b = { 0 };
	char bad[128] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "delivered", T0, 250, NULL, __LINE__);
	add_res(r, 2, "delivered", T0, 250, NULL, __LINE__);
	add_res(r, 3, "bounced", T0, 550, "<script>alert('cat')</script>", __LINE__);
	add_ev(r, "bounce", 2, T0 + 60, 0, NULL, 0, "<img src=x onerror=alert(1)>",
	       "5.0.0", __LINE__);
	add_ev(r, "open", 1, T0 + 3600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 1, T0 + 3700, 7,
	       "https://acme.example/<script>alert(\"u\")</script>?a='b'&c=d\x01", 0,
	       NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	(void)row_of(r, 1, "ann@example.com");
	(void)row_of(r, 2, "<script>@example.com");
	(void)row_of(r, 3, "x@<b>.example");
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(report_html(&b, s, "spring <script>sale</script>", T0), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
	check(html_tags_ok(b.data, bad, sizeof(bad)), __LINE__, "html: %s", bad);
	CU_ASSERT_PTR_NULL(strstr(b.data, "<script"));
	CU_ASSERT_PTR_NULL(strstr(b.data, "<img"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "spring &lt;script&gt;sale&lt;/script&gt;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "&lt;img src=x onerror=alert(1)&gt;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "&lt;script&gt;alert(&#39;cat&#39;)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data,
		"https://acme.example/&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;"
		"?a=&#39;b&#39;&amp;c=d\xEF\xBF\xBD"));
	CU_ASSERT_PTR_NULL(strstr(b.data, "url("));
	/* no script, and a CSP that would block one anyway */
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Content-Security-Policy"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "default-src 'none'"));
	/* the sections people look for */
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Delivery funnel"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Bounces by category"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Opens and clicks over time"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Top links"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "<svg"));
	buf_free(&b);
	report_free(r);
}

static void test_html_empty(void)
{
	struct report *r = report_new(W10, 10);
	const struct report_summary *s;
	struct buf b = { 0 };
	char bad[128] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	(void)row_of(r, 1, "ann@example.com");
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_EQUAL(report_html(&b, s, "empty", T0), 0);
	check(html_tags_ok(b.data, bad, sizeof(bad)), __LINE__, "html: %s", bad);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "No bounces."));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "No opens or clicks recorded yet."));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Nothing sent yet."));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "No clicks recorded yet."));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "1 recipient has no outcome yet"));
	buf_free(&b);
	report_free(r);
}

/* The summary on a terminal: control characters from data are '?'. */
static void test_print(void)
{
	struct report *r = report_new(W10, 10);
	const struct report_summary *s;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	add_res(r, 1, "bounced", T0, 550, "evil\x1b[2Jcat", __LINE__);
	add_res(r, 2, "delivered", T0, 250, NULL, __LINE__);
	add_ev(r, "open", 2, T0 + 3600, 0, NULL, 0, NULL, NULL, __LINE__);
	add_ev(r, "click", 2, T0 + 3660, 1, "https://a.example/\x07\xC2\x9b", 0,
	       NULL, NULL, __LINE__);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	(void)row_of(r, 1, "a@example.com");
	(void)row_of(r, 2, "b@example.com");
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));
	CU_ASSERT_PTR_NOT_NULL_FATAL((f = open_memstream(&out, &len)));
	report_print(f, s, "spring");
	fclose(f);
	CU_ASSERT_PTR_NULL(strchr(out, '\x1b'));
	CU_ASSERT_PTR_NULL(strchr(out, '\x07'));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "evil?[2Jcat"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "https://a.example/??"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "edm report: campaign spring: 2 recipients"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  sent                    2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  click-to-open      100.0%"));
	free(out);
	report_free(r);
}

/* ---- the fixture campaign, read as edm report reads it ---- */

static int fixture_event(void *arg, const struct event *ev)
{
	return report_add_event(arg, ev) < 0;
}

static void test_fixture(void)
{
	struct csv_reader_opts o = { .path = FIX "list.csv" };
	struct csv_reader *rd;
	const struct csv_row *row;
	const struct report_summary *s;
	struct report *r = report_new(W10, 16);
	struct report_line l[17];
	char emails[17][64] = { "" };
	char err[512];
	int got;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(report_load_results(r, FIX "results.csv", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(events_read(FIX "events.csv", fixture_event, r, err,
	                                  sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(report_finish(r), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL((rd = csv_reader_open(&o, err, sizeof(err))));
	while ((got = csv_reader_next(rd, &row, err, sizeof(err))) == 1 && row->row <= 16) {
		struct report_line *x = &l[row->row];

		CU_ASSERT_EQUAL(report_row(r, row->row, row->fields[0], row->lens[0], x), 0);
		/* the address points into the reader's record: keep a copy */
		snprintf(emails[row->row], sizeof(emails[0]), "%.*s", (int)x->email_len,
		         x->email);
	}
	CU_ASSERT_EQUAL(got, 0);
	csv_reader_free(rd);
	CU_ASSERT_PTR_NOT_NULL_FATAL((s = report_summary(r)));

	CU_ASSERT_EQUAL(l[1].opens, 2);
	CU_ASSERT_EQUAL(l[1].clicks, 2);
	CU_ASSERT_EQUAL(l[3].clicks, 1);             /* burst of 2 + a later one */
	CU_ASSERT_EQUAL(l[3].machine_clicks, 2);
	CU_ASSERT_EQUAL(l[3].machine_opens, 1);
	CU_ASSERT_EQUAL(l[4].machine_clicks, 1);     /* 5 s after sending */
	CU_ASSERT_EQUAL(l[4].unsubscribed, 1);
	CU_ASSERT_EQUAL(l[5].status, REPORT_BOUNCED);
	CU_ASSERT_EQUAL(l[5].async, 1);
	CU_ASSERT_STRING_EQUAL(l[5].code, "5.2.1");
	CU_ASSERT_EQUAL(l[6].status, REPORT_COMPLAINED);
	CU_ASSERT_EQUAL(l[10].status, REPORT_PENDING);
	CU_ASSERT_EQUAL(l[11].machine_clicks, 1);
	CU_ASSERT_EQUAL(l[11].machine_opens, 1);
	CU_ASSERT_STRING_EQUAL(emails[13], "lee@example.com");
	CU_ASSERT_STRING_EQUAL(emails[12], "-kim@example.com");
	/* the guard of events.csv is gone (report.csv puts it back) */
	CU_ASSERT_STRING_EQUAL(l[15].category, "=HYPERLINK(\"http://evil.example\",\"x\")");
	CU_ASSERT_STRING_EQUAL(l[14].category, "<img src=x onerror=alert(1)>");
	CU_ASSERT_EQUAL(l[16].status, REPORT_SKIPPED);
	CU_ASSERT_STRING_EQUAL(l[16].category, "malformed");

	CU_ASSERT_EQUAL(s->recipients, 16);
	CU_ASSERT_EQUAL(s->sent, 12);
	CU_ASSERT_EQUAL(s->delivered, 7);
	CU_ASSERT_EQUAL(s->bounced, 4);
	CU_ASSERT_EQUAL(s->async_bounced, 2);
	CU_ASSERT_EQUAL(s->complained, 2);
	CU_ASSERT_EQUAL(s->opened, 5);
	CU_ASSERT_EQUAL(s->opened_any, 6);
	CU_ASSERT_EQUAL(s->clicked, 3);
	CU_ASSERT_EQUAL(s->clicked_any, 5);
	CU_ASSERT_EQUAL(s->past_end, 2);   /* row 40 in both files */
	CU_ASSERT_EQUAL(s->ignored, 3);    /* torn line, no row, type forward */
	CU_ASSERT_EQUAL(s->bucket_secs, 3600);
	CU_ASSERT_EQUAL(s->nbuckets, 6);
	report_free(r);
}

/* Reading results.csv: columns by name, the guard stripped, a torn last
 * line and a file without a row column. */
static void test_load_results(void)
{
	char path[] = "/tmp/edm-test-report-XXXXXX";
	struct report *r = report_new(W10, 10);
	struct report_line l;
	char err[512];
	FILE *f;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FATAL((fd = mkstemp(path)) >= 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL((f = fdopen(fd, "w")));
	/* columns in another order, one unknown */
	fputs("row,extra,category,status,time,code\n"
	      "1,x,'=odd,bounced,2026-11-22T08:00:00Z,550\n"
	      "2,,,delivered,2026-11-22T08:00:05Z,250\n"
	      "3,,,deliv", f);
	fclose(f);
	CU_ASSERT_EQUAL(report_load_results(r, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(report_finish(r), 0);
	l = row_of(r, 1, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_BOUNCED);
	CU_ASSERT_STRING_EQUAL(l.category, "=odd");
	CU_ASSERT_STRING_EQUAL(l.code, "550");
	l = row_of(r, 2, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_DELIVERED);
	CU_ASSERT_EQUAL(l.sent_at, T0 + 5);
	l = row_of(r, 3, "a@example.com");
	CU_ASSERT_EQUAL(l.status, REPORT_PENDING);
	report_free(r);

	CU_ASSERT_PTR_NOT_NULL_FATAL((r = report_new(W10, 10)));
	CU_ASSERT_PTR_NOT_NULL_FATAL((f = fopen(path, "w")));
	fputs("time,status\n2026-11-22T08:00:00Z,delivered\n", f);
	fclose(f);
	err[0] = '\0';
	CU_ASSERT_EQUAL(report_load_results(r, path, err, sizeof(err)), -1);
	check(strstr(err, "no \"row\" column") != NULL, __LINE__, "err: %s", err);
	unlink(path);
	err[0] = '\0';
	CU_ASSERT_EQUAL(report_load_results(r, path, err, sizeof(err)), -1);
	check(strstr(err, path) != NULL, __LINE__, "err: %s", err);
	report_free(r);
	report_free(NULL);
}

static const struct test_case tests[] = {
	{ "status_from_results", test_status_from_results },
	{ "status_codes_categories", test_status_codes_categories },
	{ "status_async_bounce", test_status_async_bounce },
	{ "status_complaint", test_status_complaint },
	{ "status_delayed_and_unknown", test_status_delayed_and_unknown },
	{ "opens", test_opens },
	{ "click_rules", test_click_rules },
	{ "click_rows_apart", test_click_rows_apart },
	{ "summary_counts", test_summary_counts },
	{ "summary_domains_links", test_summary_domains_links },
	{ "summary_top_limits", test_summary_top_limits },
	{ "timeline_hours", test_timeline_hours },
	{ "timeline_days", test_timeline_days },
	{ "csv_line_guard", test_csv_line_guard },
	{ "csv_header", test_csv_header },
	{ "row_email_trim", test_row_email_trim },
	{ "columns_resolve", test_columns_resolve },
	{ "html_escaping", test_html_escaping },
	{ "html_empty", test_html_empty },
	{ "print", test_print },
	{ "fixture", test_fixture },
	{ "load_results", test_load_results },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("report", tests);
}
