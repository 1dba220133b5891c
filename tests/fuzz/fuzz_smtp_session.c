/*
 * fuzz_smtp_session.c - libFuzzer harness for the SMTP client session
 * (engine/smtp_session.h), driven like engine/conn.c drives it but with
 * the fuzz input as the server.
 *
 * Input:
 *   byte 0: options: bits 0-1 TLS mode (none, opportunistic, starttls,
 *     implicit), bit 2 AUTH user set, bit 3 allow plaintext AUTH, bit 4 no
 *     pipelining, bit 5 the driver takes output in small pieces, bit 6
 *     short timeouts, bit 7 the driver stages the next transaction on
 *     SMTP_EV_BODY_SENT (pipelining across messages);
 *   byte 1: transaction shape: bits 0-2 recipients - 1, bit 3 SMTPUTF8
 *     needed, bit 4 8-bit body, bit 5 one recipient with a '<' or a
 *     control character, bits 6-7 body (plain, dots and bare CR/LF, 70 KB,
 *     one byte);
 *   then a script of operations, each a byte:
 *     0x00-0x7f feed the next (op + 1) bytes; 0x80-0x9f timeout;
 *     0xa0-0xbf TLS handshake done (ok = op & 1); 0xc0-0xcf quit;
 *     0xd0-0xdf submit (also when not ready: must be refused);
 *     0xe0-0xef EOF; 0xf0-0xff feed the bytes up to and including the
 *     next LF (so seeds read like a transcript).
 *   After each operation the driver takes the output and drains the
 *   events; on READY it submits the transaction (three times in all),
 *   then quits. At the end of the script it reports EOF.
 * Properties: events come in a legal order (nothing after CLOSED; one
 * TXN_DONE per accepted submit, before CLOSED, with one result per
 * recipient; STARTTLS only in a TLS mode; BODY_SENT only when a staged
 * submit may be taken, at most two transactions open); while the TLS handshake runs
 * (after STARTTLS, before tls_done) fed bytes produce no output and no
 * event (CVE-2011-0411); reply texts are valid UTF-8 without controls; an
 * accepted recipient has a 2xx reply to the dot; every command line the
 * session writes outside the message body is CRLF-terminated and at most
 * 512 octets; after EOF the session is closed.
 */
#include "fuzz.h"

#include "buf.h"
#include "smtp_session.h"
#include "utf8.h"

#define NTXN 3 /* transactions submitted per session, then QUIT */

struct drv {
	struct smtp_session *s;
	int piecewise;       /* take output a few bytes at a time */
	int tls_mode;
	int ready;           /* READY seen and nothing submitted since */
	int stage;           /* submit again on BODY_SENT */
	int body_sent;       /* BODY_SENT seen, nothing staged since */
	int in_tls;          /* STARTTLS seen, tls_done() not yet called */
	int closed;
	int in_body;         /* 354 seen: output is message data until ".\r\n" */
	size_t submitted, done;
	size_t nrcpts;
	struct buf line;     /* a partial output line (commands) */
	struct smtp_txn txn;
};

/* Reply text: UTF-8 without control characters. */
static void check_reply(const struct smtp_reply *r)
{
	size_t n;

	FZ_CHECK(r->text != NULL, "NULL reply text");
	n = strlen(r->text);
	FZ_CHECK(utf8_check((const unsigned char *)r->text, n) == n,
	         "reply text not UTF-8 at %zu of %zu: [%s]",
	         utf8_check((const unsigned char *)r->text, n), n, r->text);
	for (size_t i = 0; i < n; i++)
		FZ_CHECK((unsigned char)r->text[i] >= 0x20 && r->text[i] != 0x7f,
		         "control in reply text");
	FZ_CHECK(r->code == 0 || (r->code >= 200 && r->code <= 599),
	         "code %d", r->code);
	FZ_CHECK(r->stage >= SMTP_STAGE_CONNECT && r->stage <= SMTP_STAGE_LOCAL,
	         "stage %d", (int)r->stage);
}

/* Commands the session wrote: CRLF lines of at most 512 octets (RFC 5321
 * 4.5.3.1.4). The message body after DATA is skipped up to its ".\r\n". */
static void check_output(struct drv *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_putc(&d->line, p[i]);
		if (p[i] != '\n')
			continue;
		if (d->in_body) {
			if (d->line.len == 3 && memcmp(d->line.data, ".\r\n", 3) == 0)
				d->in_body = 0;
		} else {
			FZ_CHECK(d->line.len >= 2 &&
			         d->line.data[d->line.len - 2] == '\r',
			         "command without CRLF [%s]", d->line.data);
			FZ_CHECK(d->line.len <= 512, "command of %zu octets",
			         d->line.len);
			if (d->line.len == 6 && memcmp(d->line.data, "DATA\r\n", 6) == 0)
				d->in_body = 1;
		}
		buf_reset(&d->line);
	}
	if (!d->in_body)
		FZ_CHECK(d->line.len <= 512, "partial command over 512");
}

/* Take the output and drain the events, as engine/conn.c would. */
static void pump(struct drv *d)
{
	struct smtp_event ev;
	const char *p;
	size_t n;

	while ((n = smtp_session_output(d->s, &p)) > 0) {
		if (d->piecewise && n > 7)
			n = 7;
		FZ_CHECK(!d->closed, "output after CLOSED");
		check_output(d, p, n);
		smtp_session_output_done(d->s, n);
		if (!d->piecewise)
			break;
	}
	while (smtp_session_event(d->s, &ev)) {
		FZ_CHECK(!d->closed, "event %d after CLOSED", (int)ev.type);
		switch (ev.type) {
		case SMTP_EV_READY:
			FZ_CHECK(d->submitted == d->done, "READY mid-transaction");
			d->ready = 1;
			break;
		case SMTP_EV_STARTTLS:
			FZ_CHECK(d->tls_mode == SMTP_TLS_OPPORTUNISTIC ||
			         d->tls_mode == SMTP_TLS_STARTTLS,
			         "STARTTLS in mode %d", d->tls_mode);
			d->in_tls = 1;
			break;
		case SMTP_EV_TXN_DONE:
			FZ_CHECK(d->done < d->submitted, "TXN_DONE without submit");
			FZ_CHECK(ev.nresults == d->nrcpts, "%zu results for %zu",
			         ev.nresults, d->nrcpts);
			for (size_t i = 0; i < ev.nresults; i++) {
				const struct smtp_rcpt_result *r = &ev.results[i];

				check_reply(&r->reply);
				if (r->accepted)
					FZ_CHECK(r->reply.code / 100 == 2 &&
					         r->reply.stage == SMTP_STAGE_DOT,
					         "accepted with %d at %s",
					         r->reply.code,
					         smtp_stage_name(r->reply.stage));
			}
			d->done++;
			d->body_sent = 0;
			d->in_body = 0;
			buf_reset(&d->line);
			break;
		case SMTP_EV_BODY_SENT:
			FZ_CHECK(d->submitted == d->done + 1, "BODY_SENT with %zu open",
			         d->submitted - d->done);
			d->body_sent = 1;
			break;
		case SMTP_EV_CLOSED:
			FZ_CHECK(d->done == d->submitted, "CLOSED with a "
			         "transaction open");
			check_reply(&ev.reply);
			FZ_CHECK(smtp_close_name(ev.close) != NULL, "close name");
			d->closed = 1;
			d->ready = 0;
			break;
		default:
			FZ_CHECK(0, "unknown event %d", (int)ev.type);
		}
	}
}

/* Submit the transaction: taken when READY was seen; maybe taken (a
 * local refusal is -1) as a staged one while can_stage says so; refused
 * otherwise. */
static void submit(struct drv *d)
{
	int can = smtp_session_can_stage(d->s);
	int rc = smtp_session_submit(d->s, &d->txn);

	if (d->ready) {
		FZ_CHECK(rc == 0, "submit refused while ready");
		d->submitted++;
		d->ready = 0;
	} else if (can) {
		FZ_CHECK(d->submitted == d->done + 1, "can_stage with %zu open",
		         d->submitted - d->done);
		if (rc == 0) {
			d->submitted++;
			d->body_sent = 0;
			FZ_CHECK(!smtp_session_can_stage(d->s), "can_stage twice");
		}
	} else {
		FZ_CHECK(rc == -1, "submit taken while not ready");
	}
	FZ_CHECK(d->submitted - d->done <= 2, "%zu transactions open",
	         d->submitted - d->done);
}

/* Whatever the driver does between operations. */
static void step(struct drv *d)
{
	pump(d);
	if (d->stage && d->body_sent && !d->closed && d->submitted < NTXN) {
		submit(d);
		pump(d);
	}
	while (d->ready && !d->closed) {
		if (d->submitted < NTXN) {
			submit(d);
		} else {
			d->ready = 0;
			smtp_session_quit(d->s);
		}
		pump(d);
	}
}

/* Feed server bytes; during the TLS handshake nothing may come of them. */
static void feed(struct drv *d, const uint8_t *p, size_t n)
{
	const char *o;
	int was_tls = d->in_tls;

	smtp_session_feed(d->s, (const char *)p, n);
	if (was_tls) {
		struct smtp_event ev;

		FZ_CHECK(smtp_session_output(d->s, &o) == 0,
		         "output from bytes fed during the TLS handshake");
		FZ_CHECK(smtp_session_event(d->s, &ev) == 0,
		         "event from bytes fed during the TLS handshake");
	}
	step(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const rcpt_pool[8] = {
		"a@example.com", "b@example.net", "用户@例子.公司",
		"c@example.org", "d@example.com", "e@example.com",
		"f@example.com", "g@example.com",
	};
	const char *rcpts[8];
	struct smtp_session_opts o;
	struct fz f = { data, size };
	struct drv d;
	char *body = NULL;
	unsigned b0, b1;
	const uint8_t *p;
	size_t n;

	b0 = fz_byte(&f);
	b1 = fz_byte(&f);
	memset(&o, 0, sizeof o);
	memset(&d, 0, sizeof d);
	o.helo = "client.example";
	o.tls = (enum smtp_tls_mode)(b0 & 3);
	o.username = b0 & 4 ? "user@example.com" : NULL;
	o.password = "pa55w0rd";
	o.allow_plaintext_auth = !!(b0 & 8);
	o.no_pipelining = !!(b0 & 16);
	if (b0 & 64) {
		o.timeouts.greeting = 1000;
		o.timeouts.data_block = 5;
		o.timeouts.dot = 1; /* below the 600000 floor: raised */
	}
	o.log_id = "fz";
	d.piecewise = !!(b0 & 32);
	d.stage = !!(b0 & 128);
	d.tls_mode = (int)o.tls;

	d.nrcpts = (b1 & 7) + 1;
	for (size_t i = 0; i < d.nrcpts; i++)
		rcpts[i] = rcpt_pool[i];
	if (b1 & 32)
		rcpts[d.nrcpts - 1] = (b1 & 1) ? "x<y@example.com" : "x\r\ny@a.b";
	switch (b1 >> 6) {
	case 0:
		body = strdup("Subject: hi\r\n\r\nHello\r\n");
		break;
	case 1:
		body = strdup("Subject: dots\r\n\r\n.\r\n..\n.\r.\rx\n.\r\n");
		break;
	case 2:
		body = malloc(70000);
		if (body != NULL) {
			memset(body, 'x', 69999);
			for (size_t i = 70; i < 69999; i += 71)
				body[i] = '\n';
			body[69999] = '\0';
		}
		break;
	default:
		body = strdup(".");
		break;
	}
	if (body == NULL)
		abort();
	d.txn.mail_from = (b1 & 0x18) == 0x18 ? "" : "bounce@example.com";
	d.txn.rcpts = rcpts;
	d.txn.nrcpts = d.nrcpts;
	d.txn.data = body;
	d.txn.len = strlen(body);
	d.txn.needs_smtputf8 = !!(b1 & 8);
	d.txn.eight_bit = !!(b1 & 16);

	d.s = smtp_session_new(&o);
	FZ_CHECK(d.s != NULL, "smtp_session_new");
	FZ_CHECK(smtp_session_tls_active(d.s) == (o.tls == SMTP_TLS_IMPLICIT),
	         "tls_active at start");
	step(&d);
	while (f.n > 0 && !d.closed) {
		unsigned op = fz_byte(&f);

		if (op < 0x80) {
			n = fz_take(&f, op + 1, &p);
			feed(&d, p, n);
		} else if (op < 0xa0) {
			smtp_session_timeout(d.s);
			step(&d);
		} else if (op < 0xc0) {
			if (d.in_tls) {
				d.in_tls = 0;
				smtp_session_tls_done(d.s, op & 1);
				if (op & 1)
					FZ_CHECK(smtp_session_tls_active(d.s),
					         "TLS not active after tls_done(1)");
			} else {
				smtp_session_tls_done(d.s, op & 1); /* stale: ignored */
			}
			step(&d);
		} else if (op < 0xd0) {
			d.ready = 0;
			d.in_tls = 0; /* quit during the handshake closes at once */
			smtp_session_quit(d.s);
			step(&d);
		} else if (op < 0xe0) {
			submit(&d);
			step(&d);
		} else if (op < 0xf0) {
			break;
		} else {
			const uint8_t *lf = f.n > 0 ? memchr(f.p, '\n', f.n) : NULL;

			n = fz_take(&f, lf != NULL ? (size_t)(lf - f.p) + 1 : f.n, &p);
			feed(&d, p, n);
		}
		(void)smtp_session_timeout_ms(d.s);
		(void)smtp_session_caps(d.s);
		(void)smtp_session_size_limit(d.s);
	}
	if (!d.closed) {
		d.in_tls = 0;
		smtp_session_eof(d.s);
		step(&d);
		FZ_CHECK(d.closed, "not closed after EOF");
	}
	FZ_CHECK(d.done == d.submitted, "%zu transactions never finished",
	         d.submitted - d.done);
	FZ_CHECK(smtp_session_timeout_ms(d.s) == 0, "waiting after CLOSED");
	smtp_session_free(d.s);
	buf_free(&d.line);
	free(body);
	return 0;
}
