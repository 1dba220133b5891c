/*
 * test_smtp_session.c - the I/O-free SMTP client session
 * (engine/smtp_session.h), driven by scripted server bytes: no sockets.
 *
 * A small driver (struct drv) plays engine/conn.c: after every call it
 * takes the session's output as one chunk and drains its events, copying
 * what the tests look at (event pointers die at the next call).
 */
#include "cunit_main.h"

#include "buf.h"
#include "log.h"
#include "smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HELO "client.example"

struct res {
	int accepted;
	int code;
	enum smtp_stage stage;
	char enh[16];
	char text[600];
};

struct drv {
	struct smtp_session *s;
	struct buf out;          /* output taken by the last pump */
	size_t nchunks;          /* non-empty output chunks taken by it */
	char evs[128];           /* event names of the last pump, ',' apart */
	struct res res[8];       /* results of the last TXN_DONE */
	size_t nres;
	struct res res1[8];      /* results of the first TXN_DONE of the pump */
	size_t nres1, ntxn;      /* ... and how many TXN_DONE it drained */
	int closed;
	enum smtp_close close;
	struct res close_reply;
	int leave_output;        /* 1: do not take output (data_block test) */
};

static const char *ev_name(enum smtp_event_type t)
{
	switch (t) {
	case SMTP_EV_READY: return "READY";
	case SMTP_EV_STARTTLS: return "STARTTLS";
	case SMTP_EV_TXN_DONE: return "TXN_DONE";
	case SMTP_EV_CLOSED: return "CLOSED";
	case SMTP_EV_BODY_SENT: return "BODY_SENT";
	}
	return "?";
}

static void copy_reply(struct res *d, const struct smtp_reply *r)
{
	d->code = r->code;
	d->stage = r->stage;
	snprintf(d->enh, sizeof d->enh, "%s", r->enhanced);
	snprintf(d->text, sizeof d->text, "%s", r->text != NULL ? r->text : "");
}

/* Take the output and drain the events, as the driver would. */
static void pump(struct drv *d)
{
	struct smtp_event ev;
	const char *p;
	size_t n;

	buf_reset(&d->out);
	d->nchunks = 0;
	d->evs[0] = '\0';
	d->ntxn = 0;
	if (!d->leave_output && (n = smtp_session_output(d->s, &p)) > 0) {
		buf_append(&d->out, p, n);
		d->nchunks++;
		smtp_session_output_done(d->s, n);
	}
	while (smtp_session_event(d->s, &ev)) {
		if (d->evs[0] != '\0')
			strcat(d->evs, ",");
		strcat(d->evs, ev_name(ev.type));
		if (ev.type == SMTP_EV_TXN_DONE) {
			d->nres = ev.nresults;
			for (size_t i = 0; i < ev.nresults && i < 8; i++) {
				d->res[i].accepted = ev.results[i].accepted;
				copy_reply(&d->res[i], &ev.results[i].reply);
			}
			if (d->ntxn++ == 0) {
				memcpy(d->res1, d->res, sizeof d->res);
				d->nres1 = d->nres;
			}
		} else if (ev.type == SMTP_EV_CLOSED) {
			d->closed = 1;
			d->close = ev.close;
			copy_reply(&d->close_reply, &ev.reply);
		}
	}
	/* the session hands out a single contiguous chunk per call */
	if (!d->leave_output)
		CU_ASSERT_EQUAL(smtp_session_output(d->s, &p), 0);
}

static void feedn(struct drv *d, const char *p, size_t n)
{
	smtp_session_feed(d->s, p, n);
	pump(d);
}

static void feed(struct drv *d, const char *p)
{
	feedn(d, p, strlen(p));
}

static void opts_init(struct smtp_session_opts *o)
{
	memset(o, 0, sizeof *o);
	o->helo = HELO;
	o->tls = SMTP_TLS_NONE;
	o->log_id = "t1";
}

static void drv_start(struct drv *d, const struct smtp_session_opts *o)
{
	memset(d, 0, sizeof *d);
	d->s = smtp_session_new(o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d->s);
}

static void drv_end(struct drv *d)
{
	smtp_session_free(d->s);
	buf_free(&d->out);
}

/* Output of the last step is exactly want (NUL-free). */
#define expect_out(d, want) expect_out_at(d, want, __LINE__)
static void expect_out_at(struct drv *d, const char *want, unsigned line)
{
	const char *got = d->out.data != NULL ? d->out.data : "";

	check(d->out.len == strlen(want) && memcmp(got, want, d->out.len) == 0,
	      line, "output [%s], want [%s]", got, want);
}

#define expect_evs(d, want) \
	check(strcmp((d)->evs, want) == 0, __LINE__, "events [%s], want [%s]", \
	      (d)->evs, want)

#define expect_res(d, i, acc, cd, st, en) \
	check((d)->res[i].accepted == (acc) && (d)->res[i].code == (cd) && \
	      (d)->res[i].stage == (st) && strcmp((d)->res[i].enh, en) == 0, \
	      __LINE__, "result %d: accepted %d code %d stage %s enh [%s] " \
	      "text [%s]", (int)(i), (d)->res[i].accepted, (d)->res[i].code, \
	      smtp_stage_name((d)->res[i].stage), (d)->res[i].enh, \
	      (d)->res[i].text)

#define expect_close(d, why, cd, st) \
	check((d)->closed && (d)->close == (why) && \
	      (d)->close_reply.code == (cd) && (d)->close_reply.stage == (st), \
	      __LINE__, "closed %d why %s code %d stage %s text [%s]", \
	      (d)->closed, smtp_close_name((d)->close), \
	      (d)->close_reply.code, smtp_stage_name((d)->close_reply.stage), \
	      (d)->close_reply.text)

/* Greeting and EHLO with the given capability lines ("" = none): READY. */
static void handshake(struct drv *d, const char *caps)
{
	char ehlo[1024];

	pump(d);
	expect_out(d, "");
	feed(d, "220 mx.example ESMTP\r\n");
	expect_out(d, "EHLO " HELO "\r\n");
	snprintf(ehlo, sizeof ehlo, "250%smx.example hello\r\n%s",
	         caps[0] ? "-" : " ", caps);
	feed(d, ehlo);
}

static void start_ready(struct drv *d, const char *caps)
{
	struct smtp_session_opts o;

	opts_init(&o);
	drv_start(d, &o);
	handshake(d, caps);
	expect_evs(d, "READY");
	expect_out(d, "");
}

static struct smtp_txn txn1(const char *from, const char *const *rcpts,
                            size_t n, const char *data)
{
	struct smtp_txn t;

	memset(&t, 0, sizeof t);
	t.mail_from = from;
	t.rcpts = rcpts;
	t.nrcpts = n;
	t.data = data;
	t.len = strlen(data);
	return t;
}

static int submit(struct drv *d, const struct smtp_txn *t)
{
	int rc = smtp_session_submit(d->s, t);

	pump(d);
	return rc;
}

/* ---- handshake ---- */

static void test_ehlo_caps(void)
{
	struct drv d;

	start_ready(&d, "250-PIPELINING\r\n250-SIZE 35882577\r\n"
	                "250-8BITMIME\r\n250-smtputf8\r\n250-STARTTLS\r\n"
	                "250-AUTH LOGIN PLAIN XOAUTH2\r\n"
	                "250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n");
	CU_ASSERT_EQUAL(smtp_session_caps(d.s),
	                SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME |
	                SMTP_CAP_SMTPUTF8 | SMTP_CAP_STARTTLS |
	                SMTP_CAP_AUTH_PLAIN | SMTP_CAP_AUTH_LOGIN |
	                SMTP_CAP_ENHANCEDSTATUSCODES);
	CU_ASSERT_EQUAL(smtp_session_size_limit(d.s), 35882577ul);
	CU_ASSERT_EQUAL(smtp_session_tls_active(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 0);
	drv_end(&d);

	/* the old "AUTH=" form; SIZE without a number; look-alike keywords
	 * and the greeting line are not capabilities */
	start_ready(&d, "250-AUTH=LOGIN\r\n250-SIZE\r\n250-PIPELININGX\r\n"
	                "250 X-STARTTLS\r\n");
	CU_ASSERT_EQUAL(smtp_session_caps(d.s),
	                SMTP_CAP_AUTH_LOGIN | SMTP_CAP_SIZE);
	CU_ASSERT_EQUAL(smtp_session_size_limit(d.s), 0);
	drv_end(&d);

	start_ready(&d, "");
	CU_ASSERT_EQUAL(smtp_session_caps(d.s), 0);
	drv_end(&d);
}

static void test_helo_fallback(void)
{
	static const char *const refusals[] = {
		"500 5.5.1 command unrecognized\r\n", "502 not implemented\r\n",
		"504 no\r\n", "550 no\r\n",
	};

	for (size_t i = 0; i < 4; i++) {
		struct smtp_session_opts o;
		struct drv d;

		opts_init(&o);
		drv_start(&d, &o);
		feed(&d, "220 old.example SMTP\r\n");
		expect_out(&d, "EHLO " HELO "\r\n");
		feed(&d, refusals[i]);
		expect_out(&d, "HELO " HELO "\r\n");
		expect_evs(&d, "");
		CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
		feed(&d, "250 old.example\r\n");
		expect_evs(&d, "READY");
		CU_ASSERT_EQUAL(smtp_session_caps(d.s), 0);
		drv_end(&d);
	}
}

static void test_helo_refused(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	drv_start(&d, &o);
	feed(&d, "220 x\r\n");
	feed(&d, "502 no\r\n");
	feed(&d, "501 5.5.4 bad HELO\r\n");
	expect_out(&d, "QUIT\r\n");
	expect_evs(&d, "");
	feed(&d, "221 bye\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_REJECTED, 501, SMTP_STAGE_EHLO);
	CU_ASSERT_STRING_EQUAL(d.close_reply.text, "bad HELO");
	drv_end(&d);

	/* 4xx to EHLO: no HELO, rejected */
	opts_init(&o);
	drv_start(&d, &o);
	feed(&d, "220 x\r\n");
	feed(&d, "451 4.3.0 later\r\n");
	expect_out(&d, "QUIT\r\n");
	smtp_session_eof(d.s);
	pump(&d);
	expect_close(&d, SMTP_CLOSE_REJECTED, 451, SMTP_STAGE_EHLO);
	drv_end(&d);
}

static void test_greeting_rejected(void)
{
	static const char *const greetings[] = {
		"554 5.7.1 no SMTP service here\r\n",
		"554-mx.example\r\n554 blocked\r\n",
		"450 busy\r\n",
	};

	for (size_t i = 0; i < 3; i++) {
		struct smtp_session_opts o;
		struct drv d;

		opts_init(&o);
		drv_start(&d, &o);
		feed(&d, greetings[i]);
		expect_out(&d, "QUIT\r\n");
		expect_evs(&d, "");
		CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 60000);
		feed(&d, "221 bye\r\n");
		expect_evs(&d, "CLOSED");
		expect_close(&d, SMTP_CLOSE_REJECTED, i < 2 ? 554 : 450,
		             SMTP_STAGE_GREETING);
		drv_end(&d);
	}
}

static void test_greeting_421(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	drv_start(&d, &o);
	feed(&d, "421 4.7.0 too many connections\r\n");
	expect_out(&d, "");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_421, 421, SMTP_STAGE_GREETING);
	CU_ASSERT_STRING_EQUAL(d.close_reply.enh, "4.7.0");
	CU_ASSERT_STRING_EQUAL(d.close_reply.text, "too many connections");
	/* closed: everything after is ignored */
	feed(&d, "220 late\r\n");
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 0);
	drv_end(&d);
}

/* A multi-line EHLO reply split at every byte boundary. */
static void test_ehlo_every_split(void)
{
	static const char ehlo[] =
		"250-mx.example at your service, [192.0.2.1]\r\n"
		"250-SIZE 157286400\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
		"250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
		"250-AUTH PLAIN\r\n250 SMTPUTF8\r\n";
	size_t n = sizeof ehlo - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		struct smtp_session_opts o;
		struct drv d;
		char evs1[128];

		opts_init(&o);
		drv_start(&d, &o);
		feed(&d, "220 mx ESMTP\r\n");
		feedn(&d, ehlo, cut);
		snprintf(evs1, sizeof evs1, "%s", d.evs);
		feedn(&d, ehlo + cut, n - cut);
		check(strcmp(evs1, cut == n ? "READY" : "") == 0 &&
		      strcmp(d.evs, cut == n ? "" : "READY") == 0, __LINE__,
		      "cut %zu: events [%s] then [%s]", cut, evs1, d.evs);
		check(smtp_session_caps(d.s) == (SMTP_CAP_SIZE |
		      SMTP_CAP_8BITMIME | SMTP_CAP_STARTTLS |
		      SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_PIPELINING |
		      SMTP_CAP_AUTH_PLAIN | SMTP_CAP_SMTPUTF8) &&
		      smtp_session_size_limit(d.s) == 157286400ul, __LINE__,
		      "cut %zu: caps %#x size %lu", cut, smtp_session_caps(d.s),
		      smtp_session_size_limit(d.s));
		drv_end(&d);
	}
}

/* ---- transactions ---- */

static void test_pipelined_happy(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "Subject: x\r\n\r\nHello\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	CU_ASSERT_EQUAL(submit(&d, &t), 0);
	CU_ASSERT_EQUAL(d.nchunks, 1);
	expect_out(&d, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), -1); /* busy */
	feed(&d, "250 2.1.0 ok\r\n");
	expect_out(&d, "");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	feed(&d, "250 2.1.5 ok\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 120000);
	feed(&d, "354 go ahead\r\n");
	expect_out(&d, "Subject: x\r\n\r\nHello\r\n.\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 600000);
	expect_evs(&d, "BODY_SENT");
	feed(&d, "250 2.0.0 OK 1700000000 queued as ABC\r\n");
	expect_out(&d, "");
	expect_evs(&d, "TXN_DONE,READY");
	CU_ASSERT_EQUAL(d.nres, 1);
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "2.0.0");
	CU_ASSERT_STRING_EQUAL(d.res[0].text, "OK 1700000000 queued as ABC");
	drv_end(&d);
}

/* All the pipelined replies in one feed, and byte by byte. */
static void test_pipelined_one_feed(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	static const char replies[] = "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n";

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct smtp_txn t = txn1("a@b", rc, 2, "x");
		struct drv d;
		struct buf all = { 0 };

		start_ready(&d, "250 PIPELINING\r\n");
		submit(&d, &t);
		if (bytewise) {
			for (size_t i = 0; i < sizeof replies - 1; i++) {
				feedn(&d, replies + i, 1);
				buf_append(&all, d.out.data, d.out.len);
			}
		} else {
			feed(&d, replies);
			buf_append(&all, d.out.data, d.out.len);
		}
		check(all.len == 6 && memcmp(all.data, "x\r\n.\r\n", 6) == 0,
		      __LINE__, "bytewise %d: body [%s]", bytewise,
		      all.data ? all.data : "");
		feed(&d, "250 ok\r\n");
		expect_evs(&d, "TXN_DONE,READY");
		expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
		expect_res(&d, 1, 0, 550, SMTP_STAGE_RCPT, "5.1.1");
		buf_free(&all);
		drv_end(&d);
	}
}

static void test_mail_failed_pipelined(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "x\r\n");
	struct drv d;

	start_ready(&d, "250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n"
	               "DATA\r\n");
	feed(&d, "550 5.7.1 sender denied\r\n503 5.5.1 need MAIL\r\n");
	expect_evs(&d, "");
	expect_out(&d, "");
	feed(&d, "250 2.1.5 ok?\r\n503 5.5.1 no valid recipients\r\n");
	expect_out(&d, "RSET\r\n");
	expect_evs(&d, "TXN_DONE");
	CU_ASSERT_EQUAL(d.nres, 2);
	expect_res(&d, 0, 0, 550, SMTP_STAGE_MAIL, "5.7.1");
	expect_res(&d, 1, 0, 550, SMTP_STAGE_MAIL, "5.7.1");
	CU_ASSERT_STRING_EQUAL(d.res[1].text, "sender denied");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 120000);
	feed(&d, "250 2.0.0 flushed\r\n");
	expect_evs(&d, "READY");
	drv_end(&d);

	/* a server that answers DATA with 354 anyway gets a lone dot */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "550 no\r\n503 no\r\n503 no\r\n354 go\r\n");
	expect_out(&d, ".\r\n");
	expect_evs(&d, "");
	feed(&d, "554 no transaction\r\n");
	expect_out(&d, "RSET\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_MAIL, "");
	expect_res(&d, 1, 0, 550, SMTP_STAGE_MAIL, "");
	drv_end(&d);
}

static void test_all_rcpt_failed_354(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "secret body\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n550 5.1.1 unknown c\r\n451 4.2.1 later e\r\n"
	         "354 go\r\n");
	expect_out(&d, ".\r\n"); /* never the body */
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 600000);
	feed(&d, "554 5.5.1 no valid recipients\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "RSET\r\n");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_RCPT, "5.1.1");
	expect_res(&d, 1, 0, 451, SMTP_STAGE_RCPT, "4.2.1");
	CU_ASSERT_STRING_EQUAL(d.res[0].text, "unknown c");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "READY");
	drv_end(&d);
}

static void test_partial_rcpt_failure(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n");
	expect_out(&d, "hi\r\n.\r\n");
	feed(&d, "250 2.0.0 queued\r\n");
	expect_evs(&d, "TXN_DONE,READY"); /* no RSET: it succeeded */
	expect_out(&d, "");
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "2.0.0");
	expect_res(&d, 1, 0, 550, SMTP_STAGE_RCPT, "5.1.1");
	drv_end(&d);
}

static void test_data_refused(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n"
	         "554 5.7.1 no data for you\r\n");
	expect_out(&d, "RSET\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_res(&d, 0, 0, 554, SMTP_STAGE_DATA, "5.7.1");
	expect_res(&d, 1, 0, 452, SMTP_STAGE_RCPT, "4.5.3");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "READY");
	drv_end(&d);
}

static void test_dot_refused(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	feed(&d, "554 5.7.1 spam\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "RSET\r\n");
	expect_res(&d, 0, 0, 554, SMTP_STAGE_DOT, "5.7.1");
	/* a failed RSET ends the session */
	feed(&d, "500 what\r\n");
	expect_out(&d, "QUIT\r\n");
	feed(&d, "221 bye\r\n");
	expect_close(&d, SMTP_CLOSE_PROTOCOL, 500, SMTP_STAGE_RSET);
	drv_end(&d);
}

static void test_421_mid_pipeline(void)
{
	static const char *const rc[] = { "c@d", "e@f", "g@h" };
	struct smtp_txn t = txn1("a@b", rc, 3, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n"
	         "421 4.7.0 [TSS04] deferred\r\n354 never read\r\n");
	expect_evs(&d, "TXN_DONE,CLOSED");
	expect_out(&d, "");
	expect_res(&d, 0, 0, 421, SMTP_STAGE_RCPT, "4.7.0");
	expect_res(&d, 1, 0, 550, SMTP_STAGE_RCPT, "5.1.1");
	expect_res(&d, 2, 0, 421, SMTP_STAGE_RCPT, "4.7.0");
	CU_ASSERT_STRING_EQUAL(d.res[2].text, "[TSS04] deferred");
	expect_close(&d, SMTP_CLOSE_421, 421, SMTP_STAGE_RCPT);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), -1);
	drv_end(&d);

	/* 421 to the final dot */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	feed(&d, "421 4.4.2 timeout\r\n");
	expect_evs(&d, "TXN_DONE,CLOSED");
	for (int i = 0; i < 3; i++)
		expect_res(&d, i, 0, 421, SMTP_STAGE_DOT, "4.4.2");
	drv_end(&d);

	/* 421 while idle (idle disconnect) */
	start_ready(&d, "");
	feed(&d, "421 4.4.2 idle too long\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_421, 421, SMTP_STAGE_CONNECT);
	drv_end(&d);
}

static void test_552_too_many_recipients(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n552 5.5.3 too many recipients\r\n"
	         "354 go\r\n250 ok\r\n");
	expect_evs(&d, "BODY_SENT,TXN_DONE,READY");
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
	expect_res(&d, 1, 0, 552, SMTP_STAGE_RCPT, "5.5.3");
	CU_ASSERT_STRING_EQUAL(d.res[1].text, "too many recipients");
	drv_end(&d);
}

/* ---- pipelining across messages (staged transactions) ---- */

#define STAGE_CMDS(from, to) "MAIL FROM:<" from ">\r\nRCPT TO:<" to ">\r\nDATA\r\n"

/* A's body is out: B goes behind the dot, its replies follow A's. */
static void test_stage_happy(void)
{
	static const char *const ra[] = { "c@d" }, *const rb[] = { "e@f" };
	struct smtp_txn a = txn1("a@b", ra, 1, "A\r\n");
	struct smtp_txn b = txn1("a@b", rb, 1, "B\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 0);
	submit(&d, &a);
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &b), -1); /* not yet */
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	expect_out(&d, "A\r\n.\r\n");
	expect_evs(&d, "BODY_SENT");
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 1);
	CU_ASSERT_EQUAL(submit(&d, &b), 0);
	expect_out(&d, STAGE_CMDS("a@b", "e@f"));
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &a), -1); /* one at most */
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 600000);
	/* A's dot reply and B's three in one read */
	feed(&d, "250 2.0.0 queued A\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	expect_evs(&d, "TXN_DONE,BODY_SENT");
	CU_ASSERT_EQUAL(d.nres1, 1);
	check(d.res1[0].accepted == 1 && d.res1[0].code == 250 &&
	      d.res1[0].stage == SMTP_STAGE_DOT &&
	      strcmp(d.res1[0].text, "queued A") == 0, __LINE__,
	      "A: %d %d [%s]", d.res1[0].accepted, d.res1[0].code, d.res1[0].text);
	expect_out(&d, "B\r\n.\r\n");
	feed(&d, "250 2.0.0 queued B\r\n");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "2.0.0");
	CU_ASSERT_STRING_EQUAL(d.res[0].text, "queued B");
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "QUIT\r\n");
	drv_end(&d);
}

/* Many messages staged back to back, replies one byte at a time: each
 * TXN_DONE in order, with its own reply text. */
static void test_stage_chain_bytewise(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "x\r\n");
	struct drv d;
	char want[64];
	size_t done = 0;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	for (int i = 0; i < 50; i++) {
		char rep[96];

		CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), 0);
		snprintf(rep, sizeof rep, "250 queued %d\r\n250 ok\r\n250 ok\r\n354 go\r\n", i);
		for (size_t k = 0; rep[k] != '\0'; k++) {
			feedn(&d, rep + k, 1);
			if (d.ntxn > 0) {
				snprintf(want, sizeof want, "queued %d", i);
				check(d.res[0].accepted && strcmp(d.res[0].text, want) == 0,
				      __LINE__, "txn %d: [%s]", i, d.res[0].text);
				done++;
			}
		}
	}
	CU_ASSERT_EQUAL(done, 50);
	feed(&d, "250 last\r\n");
	expect_evs(&d, "TXN_DONE,READY");
	drv_end(&d);
}

/* A PIPELINING session with a's body and dot out and b staged behind. */
static void start_staged(struct drv *d, const struct smtp_txn *a,
                         const struct smtp_txn *b)
{
	start_ready(d, "250 PIPELINING\r\n");
	submit(d, a);
	feed(d, "250 ok\r\n250 ok\r\n354 go\r\n");
	CU_ASSERT_EQUAL(submit(d, b), 0);
}

/* A refused at the dot: no RSET (it would reset B); B goes on. */
static void test_stage_dot_refused(void)
{
	static const char *const ra[] = { "c@d" }, *const rb[] = { "e@f" };
	struct smtp_txn a = txn1("a@b", ra, 1, "A\r\n");
	struct smtp_txn b = txn1("a@b", rb, 1, "B\r\n");
	struct drv d;

	start_staged(&d, &a, &b);
	feed(&d, "554 5.7.1 spam\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "");
	expect_res(&d, 0, 0, 554, SMTP_STAGE_DOT, "5.7.1");
	/* B's recipient refused, DATA refused: B's own RSET */
	feed(&d, "250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_RCPT, "5.1.1");
	expect_out(&d, "RSET\r\n");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "READY");
	drv_end(&d);
}

/* 421, EOF or a timeout while B is staged: both fail soft, in order. */
static void test_stage_session_ends(void)
{
	static const char *const ra[] = { "c@d" }, *const rb[] = { "e@f" };
	struct smtp_txn a = txn1("a@b", ra, 1, "A\r\n");
	struct smtp_txn b = txn1("a@b", rb, 1, "B\r\n");
	struct drv d;

	for (int how = 0; how < 4; how++) {
		start_staged(&d, &a, &b);
		if (how == 0) {
			feed(&d, "421 4.4.2 bye\r\n");
		} else if (how == 1) {
			smtp_session_eof(d.s);
			pump(&d);
		} else if (how == 2) {
			smtp_session_timeout(d.s);
			pump(&d);
		} else {
			/* A delivered, then 421 to B's MAIL */
			feed(&d, "250 ok\r\n");
			expect_evs(&d, "TXN_DONE");
			expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
			feed(&d, "421 4.7.0 too fast\r\n");
		}
		if (how < 3) {
			expect_evs(&d, "TXN_DONE,TXN_DONE,CLOSED");
			check(d.nres1 == 1 && d.res1[0].accepted == 0 &&
			      d.res1[0].code == d.res[0].code, __LINE__,
			      "how %d: A %d/%d B %d", how, d.res1[0].accepted,
			      d.res1[0].code, d.res[0].code);
		} else {
			expect_evs(&d, "TXN_DONE,CLOSED");
		}
		check(d.res[0].accepted == 0 && d.closed, __LINE__, "how %d: B %d closed %d",
		      how, d.res[0].accepted, d.closed);
		expect_out(&d, "");
		drv_end(&d);
	}
}

/* What must not be staged: no PIPELINING, a QUIT asked for, a message
 * the session would refuse locally (it is submitted again at READY). */
static void test_stage_refused(void)
{
	static const char *const rc[] = { "c@d" }, *const bad[] = { "e<f" };
	struct smtp_txn a = txn1("a@b", rc, 1, "A\r\n");
	struct smtp_txn big = txn1("a@b", rc, 1, "0123456789012345678901234567890123456789");
	struct smtp_txn badr = txn1("a@b", bad, 1, "B\r\n");
	struct smtp_session_opts o;
	struct drv d;

	/* no PIPELINING: no BODY_SENT, no staging */
	start_ready(&d, "250 SIZE 1000\r\n");
	submit(&d, &a);
	feed(&d, "250 ok\r\n");
	feed(&d, "250 ok\r\n");
	feed(&d, "354 go\r\n");
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &a), -1);
	drv_end(&d);

	/* pipelining turned off in the options */
	opts_init(&o);
	o.no_pipelining = 1;
	drv_start(&d, &o);
	handshake(&d, "250 PIPELINING\r\n");
	submit(&d, &a);
	feed(&d, "250 ok\r\n");
	feed(&d, "250 ok\r\n");
	feed(&d, "354 go\r\n");
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &a), -1);
	drv_end(&d);

	/* over SIZE, or a bad address: -1, nothing sent; after READY the
	 * same submit fails it locally as usual */
	start_ready(&d, "250-PIPELINING\r\n250 SIZE 20\r\n");
	submit(&d, &a);
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	CU_ASSERT_EQUAL(submit(&d, &big), -1);
	expect_out(&d, "");
	CU_ASSERT_EQUAL(submit(&d, &badr), -1);
	expect_out(&d, "");
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 1);
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE,READY");
	CU_ASSERT_EQUAL(submit(&d, &big), 0);
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_LOCAL, "5.3.4");
	drv_end(&d);

	/* the 354 and the dot reply in one read (a server that answers
	 * before it has the body): BODY_SENT, TXN_DONE and READY queued at
	 * once; while that TXN_DONE is queued nothing may be submitted (it
	 * would free the results the event points at), staged or not */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &a);
	smtp_session_feed(d.s, "250 ok\r\n250 ok\r\n354 go\r\n250 early\r\n", 35);
	CU_ASSERT_EQUAL(smtp_session_can_stage(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &a), -1);
	pump(&d);
	expect_evs(&d, "BODY_SENT,TXN_DONE,READY");
	CU_ASSERT_STRING_EQUAL(d.res[0].text, "early");
	CU_ASSERT_EQUAL(submit(&d, &a), 0);
	drv_end(&d);

	/* quit() before the body: no BODY_SENT; quit() after a staged
	 * submit: the staged one still runs, then QUIT */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &a);
	smtp_session_quit(d.s);
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &a), -1);
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "QUIT\r\n");
	drv_end(&d);

	start_staged(&d, &a, &a);
	smtp_session_quit(d.s);
	feed(&d, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "A\r\n.\r\n");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "QUIT\r\n");
	drv_end(&d);
}

static void test_no_pipelining(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("", rc, 2, "hi\r\n");
	struct smtp_session_opts o;
	struct drv d;

	/* the server offers it, the option refuses it */
	opts_init(&o);
	o.no_pipelining = 1;
	drv_start(&d, &o);
	handshake(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<>\r\n");
	feed(&d, "250 ok\r\n");
	expect_out(&d, "RCPT TO:<c@d>\r\n");
	feed(&d, "550 no\r\n");
	expect_out(&d, "RCPT TO:<e@f>\r\n");
	feed(&d, "250 ok\r\n");
	expect_out(&d, "DATA\r\n");
	feed(&d, "354 go\r\n");
	expect_out(&d, "hi\r\n.\r\n");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_RCPT, "");
	expect_res(&d, 1, 1, 250, SMTP_STAGE_DOT, "");

	/* MAIL fails: no RCPT, RSET */
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<>\r\n");
	feed(&d, "451 4.3.0 try later\r\n");
	expect_out(&d, "RSET\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_res(&d, 0, 0, 451, SMTP_STAGE_MAIL, "4.3.0");
	expect_res(&d, 1, 0, 451, SMTP_STAGE_MAIL, "4.3.0");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "READY");

	/* every RCPT fails: no DATA, RSET */
	submit(&d, &t);
	feed(&d, "250 ok\r\n");
	feed(&d, "550 no\r\n");
	feed(&d, "551 no\r\n");
	expect_out(&d, "RSET\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_RCPT, "");
	expect_res(&d, 1, 0, 551, SMTP_STAGE_RCPT, "");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "READY");
	drv_end(&d);
}

static void test_several_messages(void)
{
	static const char *const rc1[] = { "c@d" };
	static const char *const rc2[] = { "e@f", "g@h" };
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	for (int round = 0; round < 3; round++) {
		char body[64];
		struct smtp_txn t;

		snprintf(body, sizeof body, "message %d\r\n", round);
		t = txn1("a@b", round % 2 ? rc2 : rc1, round % 2 ? 2 : 1, body);
		CU_ASSERT_EQUAL(submit(&d, &t), 0);
		expect_out(&d, round % 2 ?
		           "MAIL FROM:<a@b>\r\nRCPT TO:<e@f>\r\nRCPT TO:<g@h>\r\n"
		           "DATA\r\n" :
		           "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
		feed(&d, round % 2 ? "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" :
		                     "250 ok\r\n250 ok\r\n354 go\r\n");
		strcat(body, ".\r\n");
		expect_out(&d, body);
		feed(&d, "250 queued\r\n");
		expect_evs(&d, "TXN_DONE,READY");
		CU_ASSERT_EQUAL(d.nres, round % 2 ? 2u : 1u);
		expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
	}
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "QUIT\r\n");
	feed(&d, "221 2.0.0 bye\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_QUIT, 221, SMTP_STAGE_QUIT);
	drv_end(&d);
}

static void test_mail_params(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "caf\xc3\xa9\n");
	struct drv d;

	start_ready(&d, "250-SIZE 1000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
	t.eight_bit = 1;
	t.needs_smtputf8 = 1;
	submit(&d, &t);
	/* SIZE counts the normalised message (7 bytes), no final dot */
	expect_out(&d, "MAIL FROM:<a@b> SIZE=7 BODY=8BITMIME SMTPUTF8\r\n");
	drv_end(&d);

	/* 8-bit without 8BITMIME: no BODY parameter, no SIZE without SIZE */
	start_ready(&d, "250 SMTPUTF8\r\n");
	t.needs_smtputf8 = 0;
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<a@b>\r\n");
	drv_end(&d);
}

static void test_size_exceeded(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "0123456789\r\n");
	struct drv d;

	start_ready(&d, "250-PIPELINING\r\n250 SIZE 10\r\n");
	CU_ASSERT_EQUAL(submit(&d, &t), 0);
	expect_out(&d, "");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_LOCAL, "5.3.4");
	expect_res(&d, 1, 0, 0, SMTP_STAGE_LOCAL, "5.3.4");
	CU_ASSERT_PTR_NOT_NULL(strstr(d.res[0].text, "12 bytes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d.res[0].text, "10 bytes"));
	/* exactly at the limit is fine */
	t = txn1("a@b", rc, 1, "01234567\r\n");
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nDATA\r\n");
	drv_end(&d);
}

static void test_smtputf8_missing(void)
{
	static const char *const rc[] = { "\xe7\x94\xa8\xe6\x88\xb7@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "x\r\n");
	struct drv d;

	start_ready(&d, "250 8BITMIME\r\n");
	t.needs_smtputf8 = 1;
	submit(&d, &t);
	expect_out(&d, "");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_LOCAL, "5.6.7");
	drv_end(&d);
}

static void test_bad_addresses(void)
{
	char long_rcpt[600];
	const char *rc[3];
	struct smtp_txn t;
	struct drv d;

	memset(long_rcpt, 'x', 500);
	strcpy(long_rcpt + 500, "@d");
	rc[0] = "ok@d";
	rc[1] = long_rcpt;
	rc[2] = "evil@d>\r\nRSET";
	t = txn1("a@b", rc, 3, "x\r\n");
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	expect_out(&d, "MAIL FROM:<a@b>\r\nRCPT TO:<ok@d>\r\nDATA\r\n");
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
	expect_res(&d, 1, 0, 0, SMTP_STAGE_LOCAL, "5.1.3");
	expect_res(&d, 2, 0, 0, SMTP_STAGE_LOCAL, "5.1.3");

	/* only bad recipients: nothing sent */
	t = txn1("a@b", rc + 1, 2, "x\r\n");
	submit(&d, &t);
	expect_out(&d, "");
	expect_evs(&d, "TXN_DONE,READY");

	/* a bad sender fails every recipient */
	t = txn1("a@b\r\nDATA", rc, 1, "x\r\n");
	submit(&d, &t);
	expect_out(&d, "");
	expect_evs(&d, "TXN_DONE,READY");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_LOCAL, "5.1.7");
	t = txn1(long_rcpt, rc, 1, "x\r\n");
	submit(&d, &t);
	expect_out(&d, "");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_LOCAL, "5.1.7");

	/* malformed transactions are refused */
	t = txn1("a@b", rc, 0, "x");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), -1);
	t = txn1("a@b", NULL, 1, "x");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), -1);
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, NULL), -1);
	drv_end(&d);
}

/* Body normalisation and dot-stuffing: exact bytes on the wire. */
static void test_body_normalise(void)
{
	static const struct {
		const char *in, *wire;
	} cases[] = {
		{ "", ".\r\n" },
		{ "x\r\n", "x\r\n.\r\n" },
		{ "x", "x\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ ".hidden\r\n..two\r\nok.\r\n", "..hidden\r\n...two\r\nok.\r\n.\r\n" },
		/* SMTP smuggling: <LF>.<CR><LF> and <CR>.<CR> must not end DATA */
		{ "a\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\r\n.\nb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\n\nb\r\r\nc", "a\r\n\r\nb\r\n\r\nc\r\n.\r\n" },
		{ "\r\n.\r\n", "\r\n..\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
	};
	static const char *const rc[] = { "c@d" };

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct smtp_txn t = txn1("a@b", rc, 1, cases[i].in);
		struct drv d;
		const char *p;
		size_t ends = 0;

		start_ready(&d, "250 PIPELINING\r\n");
		submit(&d, &t);
		feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
		check(d.out.len == strlen(cases[i].wire) &&
		      memcmp(d.out.data, cases[i].wire, d.out.len) == 0,
		      __LINE__, "case %zu: wire [%s]", i,
		      d.out.data ? d.out.data : "");
		/* exactly one end of data, at the very end, for any server
		 * reading "\r\n.\r\n" (or a leading ".\r\n") */
		for (p = d.out.data; (p = strstr(p, "\r\n.\r\n")) != NULL; p++)
			ends++;
		if (d.out.len >= 3 && memcmp(d.out.data, ".\r\n", 3) == 0)
			ends++;
		check(ends == 1, __LINE__, "case %zu: %zu ends", i, ends);
		CU_ASSERT_PTR_NULL(strstr(d.out.data, "\n.\n"));
		CU_ASSERT_PTR_NULL(strstr(d.out.data, "\r.\r"));
		drv_end(&d);
	}
}

/* The rule test_body_normalise shows, octet by octet: the expected wire
 * bytes for any body. */
static void body_wire_ref(const char *d, size_t n, struct buf *w)
{
	int bol = 1;

	for (size_t i = 0; i < n;) {
		if (bol && d[i] == '.')
			buf_putc(w, '.');
		bol = 0;
		if (d[i] == '\r' || d[i] == '\n') {
			i += (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n') ? 2 : 1;
			buf_append(w, "\r\n", 2);
			bol = 1;
		} else {
			buf_putc(w, d[i++]);
		}
	}
	if (!bol)
		buf_append(w, "\r\n", 2);
	buf_append(w, ".\r\n", 3);
}

/* Long bodies (the normaliser copies 16 octets at a time): dots, bare CR
 * and bare LF at every offset around the block edges. */
static void test_body_normalise_long(void)
{
	static const char *const odd[] = { ".", "\r", "\n", "\r\n.", "\n.",
	                                   "\r.", "..", "\r\r\n", "\n\n" };
	static const char *const rc[] = { "c@d" };
	char in[200];

	for (size_t at = 0; at < 40; at++)
		for (size_t o = 0; o < sizeof odd / sizeof *odd; o++) {
			struct buf want = { 0 };
			struct smtp_txn t;
			struct drv d;
			size_t n = 0;

			/* CRLF lines of 23 octets, then the odd piece at 'at' */
			while (n < 120) {
				for (int k = 0; k < 23; k++)
					in[n++] = (char)('a' + k);
				in[n++] = '\r';
				in[n++] = '\n';
			}
			memmove(in + at + strlen(odd[o]), in + at, n - at);
			memcpy(in + at, odd[o], strlen(odd[o]));
			n += strlen(odd[o]);
			in[n] = '\0';
			body_wire_ref(in, n, &want);
			t = txn1("a@b", rc, 1, in);
			start_ready(&d, "250 PIPELINING\r\n");
			submit(&d, &t);
			feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
			check(d.out.len == want.len &&
			      memcmp(d.out.data, want.data, want.len) == 0,
			      __LINE__, "odd piece %zu at %zu", o, at);
			drv_end(&d);
			buf_free(&want);
		}
}

static void test_eof(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "hi\r\n");
	struct drv d;

	/* EOF mid-DATA (body sent, waiting for the dot reply) */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n");
	feed(&d, "25"); /* a partial reply is no reply */
	smtp_session_eof(d.s);
	pump(&d);
	expect_evs(&d, "TXN_DONE,CLOSED");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_DOT, "");
	CU_ASSERT_STRING_EQUAL(d.res[0].text,
	                       "connection closed by server after end of data");
	expect_res(&d, 1, 0, 550, SMTP_STAGE_RCPT, "");
	expect_close(&d, SMTP_CLOSE_EOF, 0, SMTP_STAGE_DOT);
	drv_end(&d);

	/* EOF right after DATA */
	start_ready(&d, "");
	submit(&d, &t);
	feed(&d, "250 ok\r\n");
	feed(&d, "250 ok\r\n");
	feed(&d, "250 ok\r\n");
	expect_out(&d, "DATA\r\n");
	smtp_session_eof(d.s);
	pump(&d);
	expect_evs(&d, "TXN_DONE,CLOSED");
	CU_ASSERT_STRING_EQUAL(d.res[0].text,
	                       "connection closed by server after DATA");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_DATA, "");
	expect_res(&d, 1, 0, 0, SMTP_STAGE_DATA, "");
	drv_end(&d);

	/* EOF before the greeting, and while idle */
	{
		struct smtp_session_opts o;

		opts_init(&o);
		drv_start(&d, &o);
		smtp_session_eof(d.s);
		pump(&d);
		expect_evs(&d, "CLOSED");
		expect_close(&d, SMTP_CLOSE_EOF, 0, SMTP_STAGE_GREETING);
		drv_end(&d);
	}
	start_ready(&d, "");
	smtp_session_eof(d.s);
	pump(&d);
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_EOF, 0, SMTP_STAGE_CONNECT);
	smtp_session_eof(d.s); /* a second EOF: nothing */
	pump(&d);
	expect_evs(&d, "");
	drv_end(&d);
}

static void test_oversize_line(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	char *big = malloc(5000);
	struct drv d;

	memcpy(big, "250-", 4);
	memset(big + 4, 'y', 4996);
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feedn(&d, big, 2000);
	expect_evs(&d, "");
	feedn(&d, big + 2000, 3000); /* no LF yet: the cap still trips */
	expect_evs(&d, "TXN_DONE,CLOSED");
	expect_close(&d, SMTP_CLOSE_PROTOCOL, 0, SMTP_STAGE_MAIL);
	CU_ASSERT_STRING_EQUAL(d.close_reply.text,
	                       "protocol error: reply line over 4096 bytes");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_MAIL, "");
	expect_out(&d, "");
	free(big);
	drv_end(&d);
}

static void test_protocol_errors(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct drv d;

	/* garbage during a transaction */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\nHTTP/1.1 400 Bad Request\r\n");
	expect_evs(&d, "TXN_DONE,CLOSED");
	expect_close(&d, SMTP_CLOSE_PROTOCOL, 0, SMTP_STAGE_RCPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.close_reply.text, "malformed"));
	drv_end(&d);

	/* an unsolicited reply while idle */
	start_ready(&d, "");
	feed(&d, "250 surprise\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_PROTOCOL, 0, SMTP_STAGE_CONNECT);
	drv_end(&d);

	/* greeting with a 3xx code */
	{
		struct smtp_session_opts o;

		opts_init(&o);
		drv_start(&d, &o);
		feed(&d, "354 what\r\n");
		expect_close(&d, SMTP_CLOSE_PROTOCOL, 0, SMTP_STAGE_GREETING);
		drv_end(&d);
	}
}

/* Reply texts reach results sanitised, with the enhanced code split. */
static void test_reply_text_in_results(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	feed(&d, "250 ok\r\n550-5.7.1 [1.2.3.4] blocked caf\xe9\r\n"
	         "550 5.7.1 see https://example/\x01\r\n503 no\r\n");
	expect_res(&d, 0, 0, 550, SMTP_STAGE_RCPT, "5.7.1");
	CU_ASSERT_STRING_EQUAL(d.res[0].text,
	                       "[1.2.3.4] blocked caf\\xE9 see https://example/\\x01");
	drv_end(&d);
}

/* ---- TLS ---- */

static void test_starttls_required_absent(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_STARTTLS;
	drv_start(&d, &o);
	handshake(&d, "250-PIPELINING\r\n250 8BITMIME\r\n");
	expect_out(&d, "QUIT\r\n");
	expect_evs(&d, "");
	CU_ASSERT_EQUAL(smtp_session_submit(d.s, &t), -1);
	feed(&d, "221 bye\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_NO_STARTTLS, 0, SMTP_STAGE_EHLO);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.close_reply.text, "STARTTLS"));
	drv_end(&d);

	/* HELO servers have no STARTTLS either */
	drv_start(&d, &o);
	feed(&d, "220 x\r\n");
	feed(&d, "500 eh?\r\n");
	feed(&d, "250 x\r\n");
	expect_out(&d, "QUIT\r\n");
	smtp_session_eof(d.s);
	pump(&d);
	expect_close(&d, SMTP_CLOSE_NO_STARTTLS, 0, SMTP_STAGE_EHLO);
	drv_end(&d);
}

static void test_starttls_refused(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_STARTTLS;
	drv_start(&d, &o);
	handshake(&d, "250 STARTTLS\r\n");
	expect_out(&d, "STARTTLS\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 120000);
	feed(&d, "454 4.7.0 TLS not available\r\n");
	expect_out(&d, "QUIT\r\n");
	feed(&d, "221 bye\r\n");
	expect_close(&d, SMTP_CLOSE_NO_STARTTLS, 454, SMTP_STAGE_STARTTLS);
	drv_end(&d);

	/* opportunistic: go on in plaintext */
	o.tls = SMTP_TLS_OPPORTUNISTIC;
	drv_start(&d, &o);
	handshake(&d, "250-STARTTLS\r\n250 PIPELINING\r\n");
	expect_out(&d, "STARTTLS\r\n");
	feed(&d, "454 4.7.0 TLS not available\r\n");
	expect_evs(&d, "READY");
	expect_out(&d, "");
	CU_ASSERT_EQUAL(smtp_session_tls_active(d.s), 0);
	CU_ASSERT(smtp_session_caps(d.s) & SMTP_CAP_PIPELINING);
	CU_ASSERT_STRING_EQUAL(smtp_session_plaintext_why(d.s),
	                       "STARTTLS refused: 454 TLS not available");
	drv_end(&d);

	/* opportunistic without the offer: plaintext at once */
	drv_start(&d, &o);
	handshake(&d, "250 PIPELINING\r\n");
	expect_evs(&d, "READY");
	CU_ASSERT_STRING_EQUAL(smtp_session_plaintext_why(d.s), "STARTTLS not offered");
	drv_end(&d);

	/* no TLS wanted: nothing to report */
	o.tls = SMTP_TLS_NONE;
	drv_start(&d, &o);
	handshake(&d, "250 STARTTLS\r\n");
	CU_ASSERT_PTR_NULL(smtp_session_plaintext_why(d.s));
	drv_end(&d);
}

/* A reply's timeout is a deadline: bytes that do not complete it leave
 * wait_seq alone (the driver does not re-arm); a complete reply or a new
 * state moves it. */
static void test_wait_seq(void)
{
	struct smtp_session_opts o;
	struct drv d;
	unsigned long seq;

	opts_init(&o);
	drv_start(&d, &o);
	pump(&d);
	seq = smtp_session_wait_seq(d.s);
	feed(&d, "220 mx.example ESMTP\r\n");
	CU_ASSERT_NOT_EQUAL(smtp_session_wait_seq(d.s), seq);
	seq = smtp_session_wait_seq(d.s);
	for (int i = 0; i < 50; i++) {
		feed(&d, "250-mx.example trickle\r\n");
		CU_ASSERT_EQUAL(smtp_session_wait_seq(d.s), seq);
	}
	feed(&d, "250-PIPE");
	CU_ASSERT_EQUAL(smtp_session_wait_seq(d.s), seq);
	feed(&d, "LINING\r\n250 8BITMIME\r\n");
	CU_ASSERT_NOT_EQUAL(smtp_session_wait_seq(d.s), seq);
	expect_evs(&d, "READY");
	drv_end(&d);
}

static void test_starttls_ok(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_STARTTLS;
	drv_start(&d, &o);
	handshake(&d, "250-STARTTLS\r\n250 SIZE 100\r\n");
	feed(&d, "220 2.0.0 ready to start TLS\r\n");
	expect_evs(&d, "STARTTLS");
	expect_out(&d, "");
	CU_ASSERT_EQUAL(smtp_session_caps(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_size_limit(d.s), 0);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 0);
	smtp_session_tls_done(d.s, 1);
	pump(&d);
	expect_out(&d, "EHLO " HELO "\r\n");
	CU_ASSERT_EQUAL(smtp_session_tls_active(d.s), 1);
	/* no STARTTLS again, even when offered again */
	feed(&d, "250-mx\r\n250-STARTTLS\r\n250 SIZE 200\r\n");
	expect_evs(&d, "READY");
	expect_out(&d, "");
	CU_ASSERT_EQUAL(smtp_session_size_limit(d.s), 200);
	drv_end(&d);

	/* handshake failure */
	drv_start(&d, &o);
	handshake(&d, "250 STARTTLS\r\n");
	feed(&d, "220 go\r\n");
	smtp_session_tls_done(d.s, 0);
	pump(&d);
	expect_evs(&d, "CLOSED");
	expect_out(&d, "");
	expect_close(&d, SMTP_CLOSE_TLS, 0, SMTP_STAGE_TLS);
	drv_end(&d);
}

/* CVE-2011-0411: bytes after the 220 (same feed, or fed before the
 * handshake) are never read as replies. */
static void test_starttls_injection(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_STARTTLS;
	drv_start(&d, &o);
	handshake(&d, "250 STARTTLS\r\n");
	expect_out(&d, "STARTTLS\r\n");
	feed(&d, "220 go ahead\r\n250-injected\r\n250-PIPELINING\r\n"
	         "250 AUTH PLAIN\r\n250 2.1.0 fake MAIL ok\r\n421 fake\r\n25");
	expect_evs(&d, "STARTTLS");
	expect_out(&d, "");
	/* a driver that feeds plaintext anyway is ignored too */
	feed(&d, "0 more fake\r\n");
	expect_evs(&d, "");
	smtp_session_tls_done(d.s, 1);
	pump(&d);
	expect_out(&d, "EHLO " HELO "\r\n");
	expect_evs(&d, "");
	/* the first reply read now answers EHLO: no leftovers */
	feed(&d, "250-mx.example\r\n250 SIZE 5000\r\n");
	expect_evs(&d, "READY");
	CU_ASSERT_EQUAL(smtp_session_caps(d.s), SMTP_CAP_SIZE);
	drv_end(&d);
}

static void test_implicit_tls(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_IMPLICIT;
	drv_start(&d, &o);
	CU_ASSERT_EQUAL(smtp_session_tls_active(d.s), 1);
	handshake(&d, "250 STARTTLS\r\n");
	expect_evs(&d, "READY");
	expect_out(&d, "");
	drv_end(&d);
}

/* ---- AUTH ---- */

/* Read everything written to stderr while fn runs at debug level. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/edm-smtp-logXXXXXX";
	int fd = mkstemp(path), saved;
	char *text = NULL;
	long n;
	FILE *f;

	CU_ASSERT_FATAL(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	log_set_level(EDM_LOG_DEBUG);
	fn(arg);
	log_set_level(EDM_LOG_WARN);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	if ((f = fopen(path, "rb")) != NULL) {
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		text = calloc(1, (size_t)n + 1);
		if (fread(text, 1, (size_t)n, f) != (size_t)n)
			text[0] = '\0';
		fclose(f);
	}
	unlink(path);
	return text;
}

static void auth_plain_run(void *arg)
{
	struct drv *d = arg;
	struct smtp_session_opts o;

	opts_init(&o);
	o.tls = SMTP_TLS_IMPLICIT;
	o.username = "user";
	o.password = "pass";
	drv_start(d, &o);
	handshake(d, "250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n");
	/* base64("\0user\0pass") */
	expect_out(d, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
	expect_evs(d, "");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d->s), 120000);
	feed(d, "235 2.7.0 Authentication successful\r\n");
	expect_evs(d, "READY");
}

static void test_auth_plain(void)
{
	struct drv d;
	char *log = capture_stderr(auth_plain_run, &d);

	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "C: AUTH PLAIN <redacted>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "C: EHLO " HELO));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "S: 235 2.7.0 Authentication"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "from=auth-plain to=ready"));
	CU_ASSERT_PTR_NULL(strstr(log, "AHVzZXIAcGFzcw"));
	CU_ASSERT_PTR_NULL(strstr(log, "pass"));
	free(log);
	drv_end(&d);
}

static void auth_login_run(void *arg)
{
	struct drv *d = arg;
	struct smtp_session_opts o;

	opts_init(&o);
	o.tls = SMTP_TLS_NONE;
	o.allow_plaintext_auth = 1;
	o.username = "user";
	o.password = "secretpw";
	drv_start(d, &o);
	handshake(d, "250 AUTH=LOGIN\r\n");
	expect_out(d, "AUTH LOGIN\r\n");
	feed(d, "334 VXNlcm5hbWU6\r\n");
	expect_out(d, "dXNlcg==\r\n");
	feed(d, "334 UGFzc3dvcmQ6\r\n");
	expect_out(d, "c2VjcmV0cHc=\r\n");
	expect_evs(d, "");
	feed(d, "235 ok\r\n");
	expect_evs(d, "READY");
}

static void test_auth_login(void)
{
	struct drv d;
	char *log = capture_stderr(auth_login_run, &d);

	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "C: AUTH LOGIN"));
	CU_ASSERT_PTR_NULL(strstr(log, "dXNlcg"));
	CU_ASSERT_PTR_NULL(strstr(log, "c2VjcmV0cHc"));
	CU_ASSERT_PTR_NULL(strstr(log, "secretpw"));
	free(log);
	drv_end(&d);
}

static void test_auth_refused_without_tls(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_OPPORTUNISTIC;
	o.username = "user";
	o.password = "pass";
	drv_start(&d, &o);
	handshake(&d, "250 AUTH PLAIN\r\n");
	expect_out(&d, "QUIT\r\n"); /* never the credentials */
	expect_evs(&d, "");
	feed(&d, "221 bye\r\n");
	expect_close(&d, SMTP_CLOSE_AUTH, 0, SMTP_STAGE_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.close_reply.text, "TLS is not active"));
	drv_end(&d);

	/* TLS on but no mechanism we speak */
	o.tls = SMTP_TLS_IMPLICIT;
	drv_start(&d, &o);
	handshake(&d, "250 AUTH CRAM-MD5 XOAUTH2\r\n");
	expect_out(&d, "QUIT\r\n");
	smtp_session_timeout(d.s);
	pump(&d);
	expect_close(&d, SMTP_CLOSE_AUTH, 0, SMTP_STAGE_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.close_reply.text, "PLAIN, LOGIN"));
	drv_end(&d);
}

static void test_auth_failed(void)
{
	struct smtp_session_opts o;
	struct drv d;

	opts_init(&o);
	o.tls = SMTP_TLS_IMPLICIT;
	o.username = "user";
	o.password = "wrong";
	drv_start(&d, &o);
	handshake(&d, "250 AUTH PLAIN\r\n");
	feed(&d, "535 5.7.8 Authentication credentials invalid\r\n");
	expect_out(&d, "QUIT\r\n");
	feed(&d, "221 bye\r\n");
	expect_close(&d, SMTP_CLOSE_AUTH, 535, SMTP_STAGE_AUTH);
	CU_ASSERT_STRING_EQUAL(d.close_reply.enh, "5.7.8");
	drv_end(&d);

	/* LOGIN refused at the user name */
	drv_start(&d, &o);
	handshake(&d, "250 AUTH LOGIN\r\n");
	feed(&d, "334 VXNlcm5hbWU6\r\n");
	feed(&d, "535 no\r\n");
	expect_out(&d, "QUIT\r\n");
	feed(&d, "221 bye\r\n");
	expect_close(&d, SMTP_CLOSE_AUTH, 535, SMTP_STAGE_AUTH);
	drv_end(&d);
}

/* ---- timeouts and quit ---- */

static void test_timeout_values(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct smtp_session_opts o;
	struct drv d;

	/* defaults */
	opts_init(&o);
	drv_start(&d, &o);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	feed(&d, "220 x\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	feed(&d, "250 x\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 0);
	submit(&d, &t);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	feed(&d, "250 ok\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 300000);
	feed(&d, "250 ok\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 120000);
	feed(&d, "354 go\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 600000);
	feed(&d, "250 ok\r\n");
	smtp_session_quit(d.s);
	pump(&d);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 60000);
	drv_end(&d);

	/* configured; dot never below 600000 */
	opts_init(&o);
	o.timeouts.greeting = 1000;
	o.timeouts.ehlo = 2000;
	o.timeouts.mail = 3000;
	o.timeouts.rcpt = 4000;
	o.timeouts.data = 5000;
	o.timeouts.data_block = 6000;
	o.timeouts.dot = 7000;
	o.timeouts.rset = 8000;
	o.timeouts.quit = 9000;
	drv_start(&d, &o);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 1000);
	feed(&d, "220 x\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 2000);
	feed(&d, "250 x\r\n");
	submit(&d, &t);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 3000);
	feed(&d, "250 ok\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 4000);
	feed(&d, "250 ok\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 5000);
	/* the body not yet taken by the driver: data_block */
	d.leave_output = 1;
	feed(&d, "354 go\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 6000);
	d.leave_output = 0;
	pump(&d);
	expect_out(&d, "hi\r\n.\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 600000);
	feed(&d, "451 later\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 8000);
	feed(&d, "250 ok\r\n");
	smtp_session_quit(d.s);
	pump(&d);
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 9000);
	drv_end(&d);

	opts_init(&o);
	o.timeouts.dot = 700000;
	drv_start(&d, &o);
	handshake(&d, "");
	submit(&d, &t);
	feed(&d, "250 ok\r\n");
	feed(&d, "250 ok\r\n");
	feed(&d, "354 go\r\n");
	CU_ASSERT_EQUAL(smtp_session_timeout_ms(d.s), 700000);
	drv_end(&d);
}

static void test_timeout_fires(void)
{
	static const char *const rc[] = { "c@d", "e@f" };
	struct smtp_txn t = txn1("a@b", rc, 2, "hi\r\n");
	struct smtp_session_opts o;
	struct drv d;

	start_ready(&d, "250 PIPELINING\r\n");
	smtp_session_timeout(d.s); /* idle: a stale timer does nothing */
	pump(&d);
	expect_evs(&d, "");
	submit(&d, &t);
	feed(&d, "250 ok\r\n250 ok\r\n");
	smtp_session_timeout(d.s);
	pump(&d);
	expect_evs(&d, "TXN_DONE,CLOSED");
	expect_res(&d, 0, 0, 0, SMTP_STAGE_RCPT, "");
	expect_res(&d, 1, 0, 0, SMTP_STAGE_RCPT, "");
	CU_ASSERT_STRING_EQUAL(d.res[1].text,
	                       "timeout waiting for reply to RCPT (300 s)");
	expect_close(&d, SMTP_CLOSE_TIMEOUT, 0, SMTP_STAGE_RCPT);
	drv_end(&d);

	opts_init(&o);
	o.timeouts.greeting = 1500;
	drv_start(&d, &o);
	smtp_session_timeout(d.s);
	pump(&d);
	expect_close(&d, SMTP_CLOSE_TIMEOUT, 0, SMTP_STAGE_GREETING);
	CU_ASSERT_STRING_EQUAL(d.close_reply.text,
	                       "timeout waiting for the greeting (1500 ms)");
	drv_end(&d);
}

static void test_quit(void)
{
	static const char *const rc[] = { "c@d" };
	struct smtp_txn t = txn1("a@b", rc, 1, "hi\r\n");
	struct smtp_session_opts o;
	struct drv d;

	/* before the greeting: nothing said, close at once */
	opts_init(&o);
	drv_start(&d, &o);
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_QUIT, 0, SMTP_STAGE_CONNECT);
	drv_end(&d);

	/* EOF instead of the 221 is a normal end too */
	start_ready(&d, "");
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "QUIT\r\n");
	expect_evs(&d, "");
	smtp_session_eof(d.s);
	pump(&d);
	expect_close(&d, SMTP_CLOSE_QUIT, 0, SMTP_STAGE_QUIT);
	drv_end(&d);

	/* during a transaction: QUIT once it is over, instead of READY */
	start_ready(&d, "250 PIPELINING\r\n");
	submit(&d, &t);
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "");
	feed(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
	feed(&d, "250 ok\r\n");
	expect_evs(&d, "TXN_DONE");
	expect_out(&d, "QUIT\r\n");
	expect_res(&d, 0, 1, 250, SMTP_STAGE_DOT, "");
	feed(&d, "221 bye\r\n");
	expect_evs(&d, "CLOSED");
	expect_close(&d, SMTP_CLOSE_QUIT, 221, SMTP_STAGE_QUIT);
	drv_end(&d);

	/* during the handshake */
	opts_init(&o);
	drv_start(&d, &o);
	feed(&d, "220 x\r\n");
	smtp_session_quit(d.s);
	pump(&d);
	expect_out(&d, "");
	feed(&d, "250 x\r\n");
	expect_out(&d, "QUIT\r\n");
	expect_evs(&d, "");
	drv_end(&d);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(smtp_stage_name(SMTP_STAGE_CONNECT), "connect");
	CU_ASSERT_STRING_EQUAL(smtp_stage_name(SMTP_STAGE_RCPT), "rcpt");
	CU_ASSERT_STRING_EQUAL(smtp_stage_name(SMTP_STAGE_DOT), "dot");
	CU_ASSERT_STRING_EQUAL(smtp_stage_name(SMTP_STAGE_LOCAL), "local");
	CU_ASSERT_STRING_EQUAL(smtp_stage_name((enum smtp_stage)99), "?");
	CU_ASSERT_STRING_EQUAL(smtp_close_name(SMTP_CLOSE_QUIT), "quit");
	CU_ASSERT_STRING_EQUAL(smtp_close_name(SMTP_CLOSE_421), "421");
	CU_ASSERT_STRING_EQUAL(smtp_close_name(SMTP_CLOSE_NO_STARTTLS),
	                       "no-starttls");
	CU_ASSERT_STRING_EQUAL(smtp_close_name(SMTP_CLOSE_AUTH), "auth");
	CU_ASSERT_STRING_EQUAL(smtp_close_name((enum smtp_close)99), "?");
	for (int i = SMTP_STAGE_CONNECT; i <= SMTP_STAGE_LOCAL; i++)
		CU_ASSERT_STRING_NOT_EQUAL(smtp_stage_name((enum smtp_stage)i), "?");
	for (int i = SMTP_CLOSE_QUIT; i <= SMTP_CLOSE_AUTH; i++)
		CU_ASSERT_STRING_NOT_EQUAL(smtp_close_name((enum smtp_close)i), "?");
}

static void test_new_checks(void)
{
	struct smtp_session_opts o;

	opts_init(&o);
	o.helo = NULL;
	CU_ASSERT_PTR_NULL(smtp_session_new(&o));
	o.helo = "";
	CU_ASSERT_PTR_NULL(smtp_session_new(&o));
	o.helo = "bad\r\nname";
	CU_ASSERT_PTR_NULL(smtp_session_new(&o));
	o.helo = "two words";
	CU_ASSERT_PTR_NULL(smtp_session_new(&o));
	CU_ASSERT_PTR_NULL(smtp_session_new(NULL));
	smtp_session_free(NULL);
}

static const struct test_case tests[] = {
	{ "ehlo_caps", test_ehlo_caps },
	{ "helo_fallback", test_helo_fallback },
	{ "helo_refused", test_helo_refused },
	{ "greeting_rejected", test_greeting_rejected },
	{ "greeting_421", test_greeting_421 },
	{ "ehlo_every_split", test_ehlo_every_split },
	{ "pipelined_happy", test_pipelined_happy },
	{ "stage_happy", test_stage_happy },
	{ "stage_chain_bytewise", test_stage_chain_bytewise },
	{ "stage_dot_refused", test_stage_dot_refused },
	{ "stage_session_ends", test_stage_session_ends },
	{ "stage_refused", test_stage_refused },
	{ "pipelined_one_feed", test_pipelined_one_feed },
	{ "mail_failed_pipelined", test_mail_failed_pipelined },
	{ "all_rcpt_failed_354", test_all_rcpt_failed_354 },
	{ "partial_rcpt_failure", test_partial_rcpt_failure },
	{ "data_refused", test_data_refused },
	{ "dot_refused", test_dot_refused },
	{ "421_mid_pipeline", test_421_mid_pipeline },
	{ "552_too_many_recipients", test_552_too_many_recipients },
	{ "no_pipelining", test_no_pipelining },
	{ "several_messages", test_several_messages },
	{ "mail_params", test_mail_params },
	{ "size_exceeded", test_size_exceeded },
	{ "smtputf8_missing", test_smtputf8_missing },
	{ "bad_addresses", test_bad_addresses },
	{ "body_normalise", test_body_normalise },
	{ "body_normalise_long", test_body_normalise_long },
	{ "eof", test_eof },
	{ "oversize_line", test_oversize_line },
	{ "protocol_errors", test_protocol_errors },
	{ "reply_text_in_results", test_reply_text_in_results },
	{ "starttls_required_absent", test_starttls_required_absent },
	{ "starttls_refused", test_starttls_refused },
	{ "wait_seq", test_wait_seq },
	{ "starttls_ok", test_starttls_ok },
	{ "starttls_injection", test_starttls_injection },
	{ "implicit_tls", test_implicit_tls },
	{ "auth_plain", test_auth_plain },
	{ "auth_login", test_auth_login },
	{ "auth_refused_without_tls", test_auth_refused_without_tls },
	{ "auth_failed", test_auth_failed },
	{ "timeout_values", test_timeout_values },
	{ "timeout_fires", test_timeout_fires },
	{ "quit", test_quit },
	{ "names", test_names },
	{ "new_checks", test_new_checks },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("smtp_session", tests);
}
