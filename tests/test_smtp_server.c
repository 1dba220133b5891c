/*
 * test_smtp_server.c - `edm sink`: the I/O-free SMTP server session
 * (engine/smtp_server.h), the Maildir writer (campaign/maildir.h) and the
 * command itself (campaign/sink.h).
 *
 * No sockets: sessions are driven with scripted client bytes, split every
 * way. sink_main() runs against the in-memory conn_listen() and
 * conn_listener_close() defined at the end of this file (one scripted
 * client per listener), so this binary is linked WITHOUT engine/conn.c.
 * Maildirs are written under a fresh mkdtemp() directory that is removed
 * afterwards.
 */
#include "cunit_main.h"

#include "buf.h"
#include "conn.h"
#include "maildir.h"
#include "sink.h"
#include "smtp_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- capturing messages ---- */

struct capture {
	int n;                   /* messages delivered */
	int fail;                /* 1: on_message returns -1 */
	const char *id;          /* id to write; NULL = "Q<n>" */
	struct buf from, rcpts, data, helo;
	size_t size;
	int authenticated;
	struct smtp_server *shutdown_on_msg; /* shut this session down */
};

static int cap_msg(void *arg, const struct smtp_server_msg *m, char *id,
                   size_t idlen)
{
	struct capture *c = arg;

	buf_reset(&c->from);
	buf_reset(&c->rcpts);
	buf_reset(&c->data);
	buf_reset(&c->helo);
	buf_puts(&c->from, m->from);
	for (size_t i = 0; i < m->nrcpts; i++)
		buf_printf(&c->rcpts, "%s%s", i ? "," : "", m->rcpts[i]);
	buf_append(&c->data, m->data, m->size);
	buf_puts(&c->helo, m->helo);
	c->size = m->size;
	c->authenticated = m->authenticated;
	if (c->shutdown_on_msg != NULL)
		smtp_server_shutdown(c->shutdown_on_msg);
	if (c->fail)
		return -1;
	c->n++;
	if (c->id != NULL)
		snprintf(id, idlen, "%s", c->id);
	else
		snprintf(id, idlen, "Q%d", c->n);
	return 0;
}

static void cap_free(struct capture *c)
{
	buf_free(&c->from);
	buf_free(&c->rcpts);
	buf_free(&c->data);
	buf_free(&c->helo);
}

static struct smtp_server *server(struct capture *c, size_t max_size,
                                  size_t max_rcpts)
{
	struct smtp_server_opts o = {
		.name = "sink.test",
		.limits = { .max_size = max_size, .max_rcpts = max_rcpts },
		.on_message = cap_msg,
		.arg = c,
	};

	return smtp_server_new(&o);
}

/* Feed in[0..n) in pieces of 'chunk' octets (0 = at once); replies to out.
 * Returns the last status. */
static int feed(struct smtp_server *s, const char *in, size_t n, size_t chunk,
                struct buf *out)
{
	int rc = SMTP_SERVER_GO_ON;

	if (chunk == 0)
		chunk = n ? n : 1;
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;

		rc = smtp_server_feed(s, in + i, k, out);
	}
	return rc;
}

static int feeds(struct smtp_server *s, const char *in, struct buf *out)
{
	return feed(s, in, strlen(in), 0, out);
}

#define EXPECT_OUT(out, want) \
	check(strcmp((out)->data ? (out)->data : "", (want)) == 0, __LINE__, \
	      "replies:\n%s\nwanted:\n%s", (out)->data ? (out)->data : "", (want))

static const char session_in[] =
	"EHLO client.test\r\n"
	"MAIL FROM:<news@example.test> BODY=8BITMIME\r\n"
	"RCPT TO:<a@example.test>\r\n"
	"RCPT TO:<b@example.test>\r\n"
	"DATA\r\n"
	"Subject: hi\r\n"
	"\r\n"
	"..leading dot\r\n"
	".x\r\n"
	"a line\r\n"
	"..\r\n"
	".\r\n"
	"QUIT\r\n";

static const char session_data[] =
	"Subject: hi\r\n"
	"\r\n"
	".leading dot\r\n"
	"x\r\n"
	"a line\r\n"
	".\r\n";

static const char ehlo_reply[] =
	"250-sink.test\r\n"
	"250-PIPELINING\r\n"
	"250-SIZE 52428800\r\n"
	"250-8BITMIME\r\n"
	"250-SMTPUTF8\r\n"
	"250-ENHANCEDSTATUSCODES\r\n"
	"250-AUTH PLAIN LOGIN\r\n"
	"250 HELP\r\n";

static const char session_out[] =
	"250-sink.test\r\n"
	"250-PIPELINING\r\n"
	"250-SIZE 52428800\r\n"
	"250-8BITMIME\r\n"
	"250-SMTPUTF8\r\n"
	"250-ENHANCEDSTATUSCODES\r\n"
	"250-AUTH PLAIN LOGIN\r\n"
	"250 HELP\r\n"
	"250 2.1.0 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"354 End data with <CR><LF>.<CR><LF>\r\n"
	"250 2.0.0 Ok: queued as Q1\r\n"
	"221 2.0.0 sink.test closing connection\r\n";

/* ---- the session ---- */

static void test_greeting(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	CU_ASSERT_EQUAL(smtp_server_greeting(s, &out), SMTP_SERVER_GO_ON);
	EXPECT_OUT(&out, "220 sink.test ESMTP edm sink\r\n");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

static void test_new_needs_callback(void)
{
	struct smtp_server_opts o = { .name = "x" };
	struct smtp_server *s;

	CU_ASSERT_PTR_NULL(smtp_server_new(&o));
	o.on_message = cap_msg;
	o.name = NULL;
	s = smtp_server_new(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	smtp_server_free(s);
	smtp_server_free(NULL);
}

static void test_session(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	CU_ASSERT_EQUAL(feeds(s, session_in, &out), SMTP_SERVER_CLOSE);
	EXPECT_OUT(&out, session_out);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_STRING_EQUAL(c.from.data, "news@example.test");
	CU_ASSERT_STRING_EQUAL(c.rcpts.data, "a@example.test,b@example.test");
	CU_ASSERT_STRING_EQUAL(c.helo.data, "client.test");
	CU_ASSERT_EQUAL(c.size, strlen(session_data));
	CU_ASSERT_STRING_EQUAL(c.data.data, session_data);
	CU_ASSERT_EQUAL(c.authenticated, 0);
	CU_ASSERT_EQUAL(smtp_server_messages(s), 1);
	/* after QUIT: nothing more, still closing */
	buf_reset(&out);
	CU_ASSERT_EQUAL(feeds(s, "NOOP\r\n", &out), SMTP_SERVER_CLOSE);
	CU_ASSERT_EQUAL(out.len, 0);
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

/* Every chunk size, and every single cut point, give the same result. */
static void test_every_split(void)
{
	size_t n = strlen(session_in);

	for (size_t chunk = 1; chunk <= n; chunk++) {
		struct capture c = { 0 };
		struct smtp_server *s = server(&c, 0, 0);
		struct buf out = { 0 };
		int rc = feed(s, session_in, n, chunk, &out);

		check(rc == SMTP_SERVER_CLOSE && out.data != NULL &&
		      strcmp(out.data, session_out) == 0 && c.n == 1 &&
		      strcmp(c.data.data, session_data) == 0, __LINE__,
		      "chunk %zu: rc %d replies %s", chunk, rc, out.data);
		smtp_server_free(s);
		buf_free(&out);
		cap_free(&c);
	}
	for (size_t cut = 0; cut <= n; cut++) {
		struct capture c = { 0 };
		struct smtp_server *s = server(&c, 0, 0);
		struct buf out = { 0 };

		smtp_server_feed(s, session_in, cut, &out);
		smtp_server_feed(s, session_in + cut, n - cut, &out);
		check(out.data != NULL && strcmp(out.data, session_out) == 0 &&
		      c.n == 1 && strcmp(c.data.data, session_data) == 0, __LINE__,
		      "cut at %zu: replies %s", cut, out.data);
		smtp_server_free(s);
		buf_free(&out);
		cap_free(&c);
	}
}

/* Two messages and a RSET pipelined in one chunk, answered in order. */
static void test_pipelining(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	feeds(s, "ehlo x\r\n"
	      "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\none\r\n.\r\n"
	      "RSET\r\n"
	      "mail from:<c@x>\r\nrcpt to:<d@y>\r\ndata\r\ntwo\r\n.\r\n"
	      "NOOP\r\n", &out);
	CU_ASSERT_EQUAL(c.n, 2);
	CU_ASSERT_STRING_EQUAL(c.from.data, "c@x");
	CU_ASSERT_STRING_EQUAL(c.rcpts.data, "d@y");
	CU_ASSERT_STRING_EQUAL(c.data.data, "two\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(out.data);
	CU_ASSERT_STRING_EQUAL(out.data + strlen(ehlo_reply),
	                       "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	                       "354 End data with <CR><LF>.<CR><LF>\r\n"
	                       "250 2.0.0 Ok: queued as Q1\r\n"
	                       "250 2.0.0 Ok\r\n"
	                       "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	                       "354 End data with <CR><LF>.<CR><LF>\r\n"
	                       "250 2.0.0 Ok: queued as Q2\r\n"
	                       "250 2.0.0 Ok\r\n");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

/* Message data cases: input after DATA, and the message kept. */
static void test_dot_stuffing(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ ".\r\n", "" },
		{ "a\r\n.\r\n", "a\r\n" },
		{ "..\r\n.\r\n", ".\r\n" },
		{ "...\r\n.\r\n", "..\r\n" },
		{ ". \r\n.\r\n", " \r\n" },
		{ "a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n" },
		/* a bare LF neither ends a line nor the message (no smuggling) */
		{ "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n" },
		{ "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n" },
		{ "a\n.\r\n.\r\n", "a\n.\r\n" },
		/* "." CR not followed by LF: the dot was stuffing, CR is data */
		{ ".\rx\r\n.\r\n", "\rx\r\n" },
		{ ".\r\r\n.\r\n", "\r\r\n" },
		{ "a\r\r\n.\r\n", "a\r\r\n" },
		{ "\r\n.\r\n", "\r\n" },
		{ "8bit \xc3\xa9\x00z\r\n.\r\n", NULL }, /* has a NUL: below */
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		for (size_t chunk = 0; chunk <= 3; chunk++) {
			struct capture c = { 0 };
			struct smtp_server *s = server(&c, 0, 0);
			struct buf out = { 0 };
			const char *in = cases[i].in;
			size_t n = cases[i].want ? strlen(in) : 14;

			feeds(s, "EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<r@x>\r\nDATA\r\n",
			      &out);
			feed(s, in, n, chunk, &out);
			if (cases[i].want != NULL)
				check(c.n == 1 && c.size == strlen(cases[i].want) &&
				      memcmp(c.data.data, cases[i].want, c.size) == 0,
				      __LINE__, "case %zu chunk %zu: n %d size %zu", i,
				      chunk, c.n, c.size);
			else
				check(c.n == 1 && c.size == 11 &&
				      memcmp(c.data.data, in, 11) == 0, __LINE__,
				      "case %zu chunk %zu: NUL/8-bit kept, size %zu", i,
				      chunk, c.size);
			smtp_server_free(s);
			buf_free(&out);
			cap_free(&c);
		}
	}
}

/* A reply after the EHLO, for short scripted exchanges. */
static void expect_after_ehlo(const char *in, const char *want, unsigned line)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	feeds(s, "EHLO x\r\n", &out);
	buf_reset(&out);
	feeds(s, in, &out);
	check(out.data != NULL && strcmp(out.data, want) == 0, line,
	      "input %s: got %s wanted %s", in, out.data, want);
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

static void test_sequence_errors(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	feeds(s, "MAIL FROM:<a@x>\r\n", &out);
	EXPECT_OUT(&out, "503 5.5.1 Error: send HELO/EHLO first\r\n");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);

	expect_after_ehlo("RCPT TO:<a@x>\r\n",
	                  "503 5.5.1 Error: need MAIL command\r\n", __LINE__);
	expect_after_ehlo("DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n",
	                  __LINE__);
	expect_after_ehlo("MAIL FROM:<a@x>\r\nDATA\r\n",
	                  "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n",
	                  __LINE__);
	expect_after_ehlo("MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n",
	                  "250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n",
	                  __LINE__);
	expect_after_ehlo("MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRSET\r\nDATA\r\n",
	                  "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"
	                  "503 5.5.1 Error: need MAIL command\r\n", __LINE__);
	/* EHLO again resets the transaction (RFC 5321 4.1.4) */
	expect_after_ehlo("MAIL FROM:<a@x>\r\nHELO y\r\nRCPT TO:<b@x>\r\n",
	                  "250 2.1.0 Ok\r\n250 sink.test\r\n"
	                  "503 5.5.1 Error: need MAIL command\r\n", __LINE__);
}

static void test_simple_commands(void)
{
	expect_after_ehlo("NOOP\r\n", "250 2.0.0 Ok\r\n", __LINE__);
	expect_after_ehlo("noop\n", "250 2.0.0 Ok\r\n", __LINE__);
	expect_after_ehlo("RSET\r\n", "250 2.0.0 Ok\r\n", __LINE__);
	expect_after_ehlo("VRFY someone\r\n",
	                  "252 2.0.0 Cannot VRFY user, but will accept message\r\n",
	                  __LINE__);
	expect_after_ehlo("VRFY\r\n", "501 5.5.4 Syntax: VRFY address\r\n",
	                  __LINE__);
	expect_after_ehlo("HELP\r\n", "214 2.0.0 edm sink accepts every message: "
	                  "EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH HELP\r\n",
	                  __LINE__);
	expect_after_ehlo("STARTTLS\r\n",
	                  "502 5.5.2 Error: command not recognized\r\n", __LINE__);
	expect_after_ehlo("BDAT 10 LAST\r\n",
	                  "502 5.5.2 Error: command not recognized\r\n", __LINE__);
	expect_after_ehlo("MAILX FROM:<a>\r\n",
	                  "502 5.5.2 Error: command not recognized\r\n", __LINE__);
	expect_after_ehlo("\r\n", "500 5.5.2 Error: bad syntax\r\n", __LINE__);
	expect_after_ehlo("EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n",
	                  __LINE__);
	expect_after_ehlo("HELO   \r\n", "501 5.5.4 Syntax: HELO hostname\r\n",
	                  __LINE__);
	expect_after_ehlo("DATA now\r\n", "501 5.5.4 Syntax: DATA\r\n", __LINE__);
	expect_after_ehlo("QUIT\r\n", "221 2.0.0 sink.test closing connection\r\n",
	                  __LINE__);
}

static void test_ehlo_size(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 1000, 0);
	struct buf out = { 0 };

	feeds(s, "EHLO x\r\n", &out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\r\n250-SIZE 1000\r\n"));
	/* a NUL in a command line */
	buf_reset(&out);
	feed(s, "NO\0OP\r\n", 7, 0, &out);
	EXPECT_OUT(&out, "500 5.5.2 Error: bad syntax\r\n");
	CU_ASSERT_PTR_NULL(strstr(out.data, "STARTTLS"));
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
	expect_after_ehlo("EHLO again\r\n", ehlo_reply, __LINE__);
}

static void test_paths(void)
{
	static const struct {
		const char *cmd, *reply, *from;
	} cases[] = {
		{ "MAIL FROM:<>", "250 2.1.0 Ok", "" },
		{ "MAIL FROM:<a@x>", "250 2.1.0 Ok", "a@x" },
		{ "mail from: <a@x>  ", "250 2.1.0 Ok", "a@x" },
		{ "MAIL FROM:a@x", "250 2.1.0 Ok", "a@x" },
		{ "MAIL FROM:<a@x> SIZE=100 BODY=8BITMIME SMTPUTF8 AUTH=<>",
		  "250 2.1.0 Ok", "a@x" },
		{ "MAIL FROM:<@relay.x,@r2.x:a@x>", "250 2.1.0 Ok", "a@x" },
		{ "MAIL FROM:<\"odd >\\\" name\"@x>", "250 2.1.0 Ok",
		  "\"odd >\\\" name\"@x" },
		{ "MAIL FROM:<j\xc3\xbcrgen@b\xc3\xbc.x>", "250 2.1.0 Ok",
		  "j\xc3\xbcrgen@b\xc3\xbc.x" },
		{ "MAIL FROM:<a@x", "501 5.5.4 Syntax: MAIL FROM:<address>", NULL },
		{ "MAIL FROM:<a@x>junk", "501 5.5.4 Syntax: MAIL FROM:<address>",
		  NULL },
		{ "MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>", NULL },
		{ "MAIL TO:<a@x>", "501 5.5.4 Syntax: MAIL FROM:<address>", NULL },
		{ "MAIL FROM:<@route>", "501 5.5.4 Syntax: MAIL FROM:<address>",
		  NULL },
		{ "MAIL FROM:<a@x> SIZE=12x", "501 5.5.4 Syntax: SIZE=number", NULL },
		{ "MAIL FROM:<a@x> SIZE=", "501 5.5.4 Syntax: SIZE=number", NULL },
		{ "MAIL FROM:<a@x> SIZE=99999999999999999999999",
		  "501 5.5.4 Syntax: SIZE=number", NULL },
		{ "MAIL FROM:<a@x> SIZE=52428801",
		  "552 5.3.4 Error: message size exceeds fixed limit", NULL },
		{ "MAIL FROM:<a@x> size=52428800", "250 2.1.0 Ok", "a@x" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct capture c = { 0 };
		struct smtp_server *s = server(&c, 0, 0);
		struct buf out = { 0 }, want = { 0 };

		feeds(s, "EHLO x\r\n", &out);
		buf_reset(&out);
		feeds(s, cases[i].cmd, &out);
		feeds(s, "\r\nRCPT TO:<r@x>\r\nDATA\r\n.\r\n", &out);
		buf_printf(&want, "%s\r\n", cases[i].reply);
		check(strncmp(out.data, want.data, want.len) == 0, __LINE__,
		      "case %zu (%s): got %s", i, cases[i].cmd, out.data);
		if (cases[i].from != NULL)
			check(c.n == 1 && strcmp(c.from.data, cases[i].from) == 0,
			      __LINE__, "case %zu: from %s", i, c.from.data);
		else
			check(c.n == 0, __LINE__, "case %zu: delivered", i);
		smtp_server_free(s);
		buf_free(&out);
		buf_free(&want);
		cap_free(&c);
	}
	expect_after_ehlo("MAIL FROM:<>\r\nRCPT TO:<>\r\n",
	                  "250 2.1.0 Ok\r\n501 5.5.4 Syntax: RCPT TO:<address>\r\n",
	                  __LINE__);
	expect_after_ehlo("MAIL FROM:<>\r\nRCPT <a@x>\r\n",
	                  "250 2.1.0 Ok\r\n501 5.5.4 Syntax: RCPT TO:<address>\r\n",
	                  __LINE__);
	expect_after_ehlo("MAIL FROM:<>\r\nrcpt to: Postmaster\r\n",
	                  "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", __LINE__);
}

static void test_max_rcpts(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 3);
	struct buf out = { 0 };

	feeds(s, "EHLO x\r\nMAIL FROM:<a@x>\r\n", &out);
	buf_reset(&out);
	feeds(s, "RCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nRCPT TO:<3@x>\r\n"
	      "RCPT TO:<4@x>\r\nDATA\r\nm\r\n.\r\n", &out);
	EXPECT_OUT(&out, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	           "452 4.5.3 Error: too many recipients\r\n"
	           "354 End data with <CR><LF>.<CR><LF>\r\n"
	           "250 2.0.0 Ok: queued as Q1\r\n");
	CU_ASSERT_STRING_EQUAL(c.rcpts.data, "1@x,2@x,3@x");
	/* the next transaction starts with none */
	buf_reset(&out);
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<5@x>\r\nDATA\r\nm\r\n.\r\n", &out);
	CU_ASSERT_STRING_EQUAL(c.rcpts.data, "5@x");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

/* The default of 1000 recipients per transaction. */
static void test_max_rcpts_default(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf in = { 0 }, out = { 0 };

	feeds(s, "EHLO x\r\nMAIL FROM:<a@x>\r\n", &out);
	for (int i = 0; i < 1001; i++)
		buf_printf(&in, "RCPT TO:<r%d@x>\r\n", i);
	buf_reset(&out);
	feed(s, in.data, in.len, 7, &out);
	CU_ASSERT_EQUAL(out.len, 1000 * strlen("250 2.1.5 Ok\r\n") +
	                strlen("452 4.5.3 Error: too many recipients\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "452 4.5.3"));
	smtp_server_free(s);
	buf_free(&in);
	buf_free(&out);
	cap_free(&c);
}

static void test_line_too_long(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf in = { 0 }, out = { 0 };

	feeds(s, "EHLO x\r\n", &out);
	/* exactly SMTP_SERVER_LINE_MAX octets with CRLF: accepted */
	buf_puts(&in, "NOOP ");
	while (in.len < SMTP_SERVER_LINE_MAX - 2)
		buf_putc(&in, 'a');
	buf_puts(&in, "\r\n");
	CU_ASSERT_EQUAL(in.len, SMTP_SERVER_LINE_MAX);
	buf_reset(&out);
	feed(s, in.data, in.len, 100, &out);
	EXPECT_OUT(&out, "250 2.0.0 Ok\r\n");
	/* one more: refused once, at its LF; the session goes on */
	buf_reset(&in);
	buf_puts(&in, "NOOP ");
	while (in.len < SMTP_SERVER_LINE_MAX - 1)
		buf_putc(&in, 'a');
	buf_puts(&in, "\r\nNOOP\r\n");
	buf_reset(&out);
	feed(s, in.data, in.len, 1000, &out);
	EXPECT_OUT(&out, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
	/* a huge line in many pieces: still one reply */
	buf_reset(&out);
	for (int i = 0; i < 100; i++)
		feeds(s, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &out);
	CU_ASSERT_EQUAL(out.len, 0);
	feeds(s, "\r\nQUIT\r\n", &out);
	EXPECT_OUT(&out, "500 5.5.2 Error: line too long\r\n"
	           "221 2.0.0 sink.test closing connection\r\n");
	smtp_server_free(s);
	buf_free(&in);
	buf_free(&out);
	cap_free(&c);
}

static void test_max_size(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 10, 0);
	struct buf out = { 0 };

	feeds(s, "EHLO x\r\n", &out);
	buf_reset(&out);
	/* exactly 10 octets after un-stuffing ("..." is 3 on the wire, 2 kept) */
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	      "...456789\r\n.\r\n", &out);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.size, 10);
	/* 11: refused after the final dot, nothing delivered */
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	      "123456789\r\n.\r\n", &out);
	CU_ASSERT_EQUAL(c.n, 1);
	/* much more, in pieces: still one refusal, then a normal message */
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n", &out);
	for (int i = 0; i < 50; i++)
		feeds(s, "0123456789abcdef\r\n", &out);
	feeds(s, ".\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nok\r\n.\r\n",
	      &out);
	EXPECT_OUT(&out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	           "354 End data with <CR><LF>.<CR><LF>\r\n"
	           "250 2.0.0 Ok: queued as Q1\r\n"
	           "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	           "354 End data with <CR><LF>.<CR><LF>\r\n"
	           "552 5.3.4 Error: message size exceeds fixed limit\r\n"
	           "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	           "354 End data with <CR><LF>.<CR><LF>\r\n"
	           "552 5.3.4 Error: message size exceeds fixed limit\r\n"
	           "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	           "354 End data with <CR><LF>.<CR><LF>\r\n"
	           "250 2.0.0 Ok: queued as Q2\r\n");
	CU_ASSERT_STRING_EQUAL(c.data.data, "ok\r\n");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

static void test_auth(void)
{
	/* PLAIN with an initial response ("\0user\0secret") */
	expect_after_ehlo("AUTH PLAIN AHVzZXIAc2VjcmV0\r\n",
	                  "235 2.7.0 Authentication successful\r\n", __LINE__);
	expect_after_ehlo("auth plain\r\nAHVzZXIAc2VjcmV0\r\n",
	                  "334 \r\n235 2.7.0 Authentication successful\r\n",
	                  __LINE__);
	expect_after_ehlo("AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0\r\n",
	                  "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
	                  "235 2.7.0 Authentication successful\r\n", __LINE__);
	expect_after_ehlo("AUTH LOGIN dXNlcg==\r\nc2VjcmV0\r\n",
	                  "334 UGFzc3dvcmQ6\r\n"
	                  "235 2.7.0 Authentication successful\r\n", __LINE__);
	expect_after_ehlo("AUTH LOGIN\r\n*\r\nNOOP\r\n",
	                  "334 VXNlcm5hbWU6\r\n"
	                  "501 5.7.0 Error: authentication cancelled\r\n"
	                  "250 2.0.0 Ok\r\n", __LINE__);
	expect_after_ehlo("AUTH CRAM-MD5\r\n",
	                  "504 5.5.4 Error: unsupported authentication mechanism "
	                  "(PLAIN and LOGIN are offered)\r\n", __LINE__);
	expect_after_ehlo("AUTH\r\n", "501 5.5.4 Syntax: AUTH mechanism\r\n",
	                  __LINE__);
	expect_after_ehlo("AUTH PLAIN AA==\r\nAUTH PLAIN AA==\r\n",
	                  "235 2.7.0 Authentication successful\r\n"
	                  "503 5.5.1 Error: already authenticated\r\n", __LINE__);
	expect_after_ehlo("MAIL FROM:<a@x>\r\nAUTH PLAIN AA==\r\n",
	                  "250 2.1.0 Ok\r\n"
	                  "503 5.5.1 Error: MAIL transaction in progress\r\n",
	                  __LINE__);
}

/* After AUTH the message says so; the callback never sees credentials. */
static void test_auth_message(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	feeds(s, "AUTH PLAIN AA==\r\n", &out);
	EXPECT_OUT(&out, "503 5.5.1 Error: send EHLO first\r\n");
	feeds(s, "EHLO x\r\nAUTH LOGIN\r\nc2VjcmV0\r\nc2VjcmV0\r\n"
	      "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nm\r\n.\r\n", &out);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.authenticated, 1);
	CU_ASSERT_PTR_NULL(strstr(c.data.data, "c2VjcmV0"));
	CU_ASSERT_PTR_NULL(strstr(c.from.data, "c2VjcmV0"));
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

static void test_store_failure(void)
{
	struct capture c = { .fail = 1 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	feeds(s, "EHLO x\r\n", &out);
	buf_reset(&out);
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nm\r\n.\r\n", &out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data,
	        "\r\n451 4.3.0 Error: could not store the message, try again "
	        "later\r\n"));
	/* the transaction is over: a new one works */
	c.fail = 0;
	buf_reset(&out);
	feeds(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nm\r\n.\r\n", &out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "250 2.0.0 Ok: queued as Q1\r\n"));
	CU_ASSERT_EQUAL(smtp_server_messages(s), 1);
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

/* Queue ids are printable ASCII in the reply; an empty one says none. */
static void test_queue_id(void)
{
	static const struct {
		const char *id, *reply;
	} cases[] = {
		{ "1700000000.42_1.host", "250 2.0.0 Ok: queued as 1700000000.42_1.host\r\n" },
		{ "a b\x01\xc3\xa9", "250 2.0.0 Ok: queued as a?b???\r\n" },
		{ "", "250 2.0.0 Ok: queued\r\n" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct capture c = { .id = cases[i].id };
		struct smtp_server *s = server(&c, 0, 0);
		struct buf out = { 0 };

		feeds(s, "EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n",
		      &out);
		buf_reset(&out);
		feeds(s, "m\r\n.\r\n", &out);
		check(strcmp(out.data, cases[i].reply) == 0, __LINE__,
		      "case %zu: %s", i, out.data);
		smtp_server_free(s);
		buf_free(&out);
		cap_free(&c);
	}
}

static void test_shutdown(void)
{
	struct capture c = { 0 };
	struct smtp_server *s = server(&c, 0, 0);
	struct buf out = { 0 };

	/* greeting after shutdown: 421 */
	smtp_server_shutdown(s);
	CU_ASSERT_EQUAL(smtp_server_greeting(s, &out), SMTP_SERVER_CLOSE);
	EXPECT_OUT(&out, "421 4.3.2 sink.test Service shutting down\r\n");
	CU_ASSERT_EQUAL(feeds(s, "EHLO x\r\n", &out), SMTP_SERVER_CLOSE);
	smtp_server_free(s);
	buf_free(&out);

	/* during DATA: the message is finished, then 421 to the next command,
	 * the rest of the pipelined input ignored */
	s = server(&c, 0, 0);
	c.shutdown_on_msg = s;
	feeds(s, "EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n", &out);
	buf_reset(&out);
	CU_ASSERT_EQUAL(feeds(s, "m\r\n.\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n",
	                      &out), SMTP_SERVER_CLOSE);
	EXPECT_OUT(&out, "250 2.0.0 Ok: queued as Q1\r\n"
	           "421 4.3.2 sink.test Service shutting down\r\n");
	smtp_server_free(s);
	buf_free(&out);

	/* QUIT is still answered 221 */
	c.shutdown_on_msg = NULL;
	s = server(&c, 0, 0);
	smtp_server_shutdown(s);
	CU_ASSERT_EQUAL(feeds(s, "QUIT\r\n", &out), SMTP_SERVER_CLOSE);
	EXPECT_OUT(&out, "221 2.0.0 sink.test closing connection\r\n");
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

static void test_error_limit(void)
{
	struct capture c = { 0 };
	struct smtp_server_opts o = {
		.name = "sink.test",
		.limits = { .max_errors = 3 },
		.on_message = cap_msg,
		.arg = &c,
	};
	struct smtp_server *s = smtp_server_new(&o);
	struct buf out = { 0 };

	/* HTTP spoken to the sink */
	CU_ASSERT_EQUAL(feeds(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\nNOOP\r\n",
	                      &out), SMTP_SERVER_CLOSE);
	EXPECT_OUT(&out, "502 5.5.2 Error: command not recognized\r\n"
	           "502 5.5.2 Error: command not recognized\r\n"
	           "500 5.5.2 Error: bad syntax\r\n"
	           "421 4.7.0 sink.test Error: too many errors\r\n");
	smtp_server_free(s);
	buf_free(&out);

	/* the default is 20; policy replies (552, 452) do not count */
	s = server(&c, 0, 0);
	for (int i = 0; i < 19; i++)
		feeds(s, "XYZZY\r\n", &out);
	CU_ASSERT_EQUAL(feeds(s, "EHLO x\r\nMAIL FROM:<a@x> SIZE=99999999999\r\n",
	                      &out), SMTP_SERVER_GO_ON);
	CU_ASSERT_EQUAL(feeds(s, "XYZZY\r\n", &out), SMTP_SERVER_CLOSE);
	smtp_server_free(s);
	buf_free(&out);
	cap_free(&c);
}

/* ---- temp directories ---- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *temp_dir(void)
{
	char tpl[] = "/tmp/edm-test-sink-XXXXXX";
	char *d = mkdtemp(tpl);

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	return strdup(d);
}

/* Read a whole file into b; 0 or -1. */
static int slurp(const char *path, struct buf *b)
{
	char chunk[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	buf_reset(b);
	if (f == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(b, chunk, n);
	fclose(f);
	if (b->data == NULL)
		buf_puts(b, "");
	return 0;
}

/* Number of entries (other than . and ..) in a directory; the last name
 * into name when given. */
static int count_dir(const char *path, struct buf *name)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL) {
			buf_reset(name);
			buf_puts(name, e->d_name);
		}
	}
	closedir(d);
	return n;
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return (unsigned)st.st_mode & 07777;
}

/* The host part of Maildir names, as the spec escapes it. */
static void escaped_host(struct buf *b)
{
	char h[256];

	if (gethostname(h, sizeof h) < 0 || h[0] == '\0')
		strcpy(h, "localhost");
	h[sizeof h - 1] = '\0';
	for (const char *p = h; *p; p++) {
		if (*p == '/')
			buf_puts(b, "\\057");
		else if (*p == ':')
			buf_puts(b, "\\072");
		else
			buf_putc(b, *p);
	}
}

/* ---- the Maildir ---- */

static void test_maildir_open(void)
{
	char *t = temp_dir();
	struct buf p = { 0 };
	char err[512] = "";
	struct maildir *md;

	buf_printf(&p, "%s/a/b/box", t);
	md = maildir_open(p.data, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT_STRING_EQUAL(maildir_path(md), p.data);
	CU_ASSERT_EQUAL(mode_of(p.data), 0700);
	for (const char *const *sub = (const char *const[]){ "tmp", "new", "cur",
	                                                    NULL }; *sub; sub++) {
		struct buf q = { 0 };

		buf_printf(&q, "%s/%s", p.data, *sub);
		check(mode_of(q.data) == 0700, __LINE__, "%s mode %o", q.data,
		      mode_of(q.data));
		buf_free(&q);
	}
	maildir_free(md);
	/* opening an existing Maildir again is fine */
	md = maildir_open(p.data, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(md);
	maildir_free(md);
	maildir_free(NULL);
	buf_free(&p);
	rm_rf(t);
	free(t);
}

static void test_maildir_open_errors(void)
{
	char *t = temp_dir();
	struct buf p = { 0 };
	char err[512] = "";
	int fd;

	/* a parent is a file */
	buf_printf(&p, "%s/file", t);
	fd = open(p.data, O_CREAT | O_WRONLY, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	buf_puts(&p, "/box");
	CU_ASSERT_PTR_NULL(maildir_open(p.data, err, sizeof err));
	check(strstr(err, "file/box") != NULL, __LINE__, "err: %s", err);
	/* new is a file */
	buf_reset(&p);
	buf_printf(&p, "%s/box2", t);
	mkdir(p.data, 0700);
	buf_puts(&p, "/new");
	fd = open(p.data, O_CREAT | O_WRONLY, 0600);
	close(fd);
	p.data[p.len - 4] = '\0';
	err[0] = '\0';
	CU_ASSERT_PTR_NULL(maildir_open(p.data, err, sizeof err));
	check(strstr(err, "box2/new") != NULL &&
	      strstr(err, "not a directory") != NULL, __LINE__, "err: %s", err);
	CU_ASSERT_PTR_NULL(maildir_open("", err, sizeof err));
	buf_free(&p);
	rm_rf(t);
	free(t);
}

static void test_maildir_deliver(void)
{
	static const char msg[] = "Subject: x\r\n\r\nbody \x00 with NUL\r\n";
	char *t = temp_dir();
	struct buf name = { 0 }, name2 = { 0 }, want = { 0 }, path = { 0 },
	           got = { 0 };
	char err[512] = "";
	struct maildir *md = maildir_open(t, err, sizeof err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT_EQUAL(maildir_deliver(md, msg, sizeof msg - 1, 1700000000,
	                                &name, err, sizeof err), 0);
	buf_printf(&want, "1700000000.%ld_1.", (long)getpid());
	escaped_host(&want);
	CU_ASSERT_STRING_EQUAL(name.data, want.data);
	buf_printf(&path, "%s/new/%s", t, name.data);
	CU_ASSERT_EQUAL_FATAL(slurp(path.data, &got), 0);
	CU_ASSERT_EQUAL(got.len, sizeof msg - 1);
	CU_ASSERT(memcmp(got.data, msg, sizeof msg - 1) == 0);
	CU_ASSERT_EQUAL(mode_of(path.data), 0600);
	buf_reset(&path);
	buf_printf(&path, "%s/tmp", t);
	CU_ASSERT_EQUAL(count_dir(path.data, NULL), 0);
	/* the next one has its own name */
	CU_ASSERT_EQUAL(maildir_deliver(md, "", 0, 1700000000, &name2, err,
	                                sizeof err), 0);
	CU_ASSERT(strcmp(name.data, name2.data) != 0);
	buf_reset(&path);
	buf_printf(&path, "%s/new", t);
	CU_ASSERT_EQUAL(count_dir(path.data, NULL), 2);
	maildir_free(md);
	buf_free(&name);
	buf_free(&name2);
	buf_free(&want);
	buf_free(&path);
	buf_free(&got);
	rm_rf(t);
	free(t);
}

/* A name already taken in new/ or tmp/ is skipped, never overwritten. */
static void test_maildir_collision(void)
{
	char *t = temp_dir();
	struct buf name = { 0 }, taken = { 0 }, got = { 0 }, host = { 0 };
	char err[512] = "";
	struct maildir *md = maildir_open(t, err, sizeof err);
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	escaped_host(&host);
	buf_printf(&taken, "%s/new/1700000000.%ld_1.%s", t, (long)getpid(),
	           host.data);
	fd = open(taken.data, O_CREAT | O_WRONLY, 0600);
	CU_ASSERT_FATAL(write(fd, "old", 3) == 3);
	close(fd);
	buf_reset(&taken);
	buf_printf(&taken, "%s/tmp/1700000000.%ld_2.%s", t, (long)getpid(),
	           host.data);
	fd = open(taken.data, O_CREAT | O_WRONLY, 0600);
	close(fd);
	CU_ASSERT_EQUAL(maildir_deliver(md, "new", 3, 1700000000, &name, err,
	                                sizeof err), 0);
	buf_reset(&taken);
	buf_printf(&taken, "1700000000.%ld_3.%s", (long)getpid(), host.data);
	CU_ASSERT_STRING_EQUAL(name.data, taken.data);
	buf_reset(&taken);
	buf_printf(&taken, "%s/new/1700000000.%ld_1.%s", t, (long)getpid(),
	           host.data);
	slurp(taken.data, &got);
	CU_ASSERT_STRING_EQUAL(got.data, "old");
	maildir_free(md);
	buf_free(&name);
	buf_free(&taken);
	buf_free(&got);
	buf_free(&host);
	rm_rf(t);
	free(t);
}

static void test_maildir_deliver_error(void)
{
	char *t = temp_dir();
	struct buf name = { 0 }, p = { 0 };
	char err[512] = "";
	struct maildir *md = maildir_open(t, err, sizeof err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	buf_printf(&p, "%s/tmp", t);
	CU_ASSERT_EQUAL_FATAL(rmdir(p.data), 0);
	CU_ASSERT_EQUAL(maildir_deliver(md, "x", 1, 1700000000, &name, err,
	                                sizeof err), -1);
	check(strstr(err, "/tmp/1700000000.") != NULL, __LINE__, "err: %s", err);
	CU_ASSERT_EQUAL(name.len, 0);
	maildir_free(md);
	buf_free(&name);
	buf_free(&p);
	rm_rf(t);
	free(t);
}

/* ---- the command, with an in-memory conn_listen ---- */

/* One scripted client per listener: a step sends bytes, or runs fn. */
struct step {
	const char *bytes;
	void (*fn)(void);
};

static struct {
	int fail;                /* conn_listen fails */
	const struct step *script;
	unsigned port;           /* reported as bound */
	char listened[300];      /* the hostport conn_listen got */
	struct buf replies;      /* everything the sink answered */
	int server_closed;       /* data() returned 1 */
	int listeners, closes;   /* conn_listen calls, close() calls */
} fake;

struct conn_listener {
	const struct conn_server_ops *ops;
	void *arg;
	void *state;             /* the client's session while open */
	uv_timer_t timer;
};

static void fake_free(uv_handle_t *h)
{
	free(h->data);
}

/* The client: runs the script in one loop iteration, as a real peer's
 * bytes would arrive in read callbacks. */
static void fake_client(uv_timer_t *t)
{
	struct conn_listener *l = t->data;
	struct buf out = { 0 };

	l->state = l->ops->open(l->arg, "127.0.0.1:40001", &out);
	for (const struct step *s = fake.script;
	     s != NULL && (s->bytes != NULL || s->fn != NULL); s++) {
		if (s->fn != NULL) {
			s->fn();
			continue;
		}
		if (l->state == NULL)
			continue; /* the server closed: nothing more is read */
		if (l->ops->data(l->state, s->bytes, strlen(s->bytes), &out) == 1) {
			fake.server_closed = 1;
			l->ops->close(l->state);
			fake.closes++;
			l->state = NULL;
		}
	}
	if (out.data != NULL)
		buf_append(&fake.replies, out.data, out.len);
	buf_free(&out);
}

int conn_listen(uv_loop_t *loop, const char *hostport,
                const struct conn_server_ops *ops, void *arg,
                struct conn_listener **out, unsigned *port_out,
                char *err, size_t errlen)
{
	struct conn_listener *l;

	snprintf(fake.listened, sizeof fake.listened, "%s", hostport);
	if (fake.fail) {
		snprintf(err, errlen, "address already in use");
		return -1;
	}
	l = calloc(1, sizeof *l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	l->ops = ops;
	l->arg = arg;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, fake_client, 0, 0);
	fake.listeners++;
	*out = l;
	if (port_out != NULL)
		*port_out = fake.port;
	return 0;
}

void conn_listener_close(struct conn_listener *l)
{
	if (l == NULL)
		return;
	if (l->state != NULL) {
		l->ops->close(l->state);
		fake.closes++;
		l->state = NULL;
	}
	uv_close((uv_handle_t *)&l->timer, fake_free);
}

/* Run sink_main with stdout and stderr captured. */
static int run_sink(char **argv, struct buf *out, struct buf *errout)
{
	char o_tpl[] = "/tmp/edm-test-sink-out-XXXXXX";
	char e_tpl[] = "/tmp/edm-test-sink-err-XXXXXX";
	int ofd = mkstemp(o_tpl), efd = mkstemp(e_tpl);
	int so, se, argc = 0, rc;

	CU_ASSERT_FATAL(ofd >= 0 && efd >= 0);
	while (argv[argc] != NULL)
		argc++;
	fflush(stdout);
	fflush(stderr);
	so = dup(STDOUT_FILENO);
	se = dup(STDERR_FILENO);
	dup2(ofd, STDOUT_FILENO);
	dup2(efd, STDERR_FILENO);
	rc = sink_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, STDOUT_FILENO);
	dup2(se, STDERR_FILENO);
	close(so);
	close(se);
	close(ofd);
	close(efd);
	slurp(o_tpl, out);
	slurp(e_tpl, errout);
	unlink(o_tpl);
	unlink(e_tpl);
	return rc;
}

static void fake_reset(const struct step *script)
{
	buf_free(&fake.replies);
	memset(&fake, 0, sizeof fake);
	fake.script = script;
	fake.port = 2525;
}

static void test_sink_help_and_usage(void)
{
	static const char *const bad[][4] = {
		{ "sink", "--bogus", NULL },
		{ "sink", "extra", NULL },
		{ "sink", "--count", "0", NULL },
		{ "sink", "--count", "x", NULL },
		{ "sink", "--max-size", "0", NULL },
		{ "sink", "--max-size", "3T", NULL },
		{ "sink", "--max-size", "3G", NULL },
		{ "sink", "--listen", "2525", NULL },
		{ "sink", "--listen", "::1:2525", NULL },
		{ "sink", "--listen", "127.0.0.1:65536", NULL },
		{ "sink", "--listen", "127.0.0.1:", NULL },
		{ "sink", "--listen", ":2525", NULL },
		{ "sink", "--listen", NULL },
		{ "sink", "--maildir", "", NULL },
	};
	struct buf out = { 0 }, err = { 0 };
	char *help[] = { "sink", "--help", NULL };

	fake_reset(NULL);
	CU_ASSERT_EQUAL(run_sink(help, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out.data, sink_usage);
	CU_ASSERT_PTR_NOT_NULL(strstr(sink_usage, "ANY username and"));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *argv[4];
		int rc;

		memcpy(argv, bad[i], sizeof argv);
		rc = run_sink(argv, &out, &err);
		check(rc == 64 && strstr(err.data, "Usage: edm sink") != NULL &&
		      strncmp(err.data, "edm: error: sink: ", 18) == 0, __LINE__,
		      "case %zu (%s %s): rc %d, stderr %.80s", i, bad[i][1],
		      bad[i][2] ? bad[i][2] : "", rc, err.data);
	}
	CU_ASSERT_EQUAL(fake.listeners, 0);
	buf_free(&out);
	buf_free(&err);
}

static void test_sink_refuses_remote(void)
{
	static const char *const remote[] = {
		"0.0.0.0:2525", "192.0.2.1:25", "[::]:2525", "example.test:2525",
	};
	struct buf out = { 0 }, err = { 0 };

	fake_reset(NULL);
	for (size_t i = 0; i < sizeof remote / sizeof *remote; i++) {
		char *argv[] = { "sink", "--listen", (char *)remote[i], NULL };
		int rc = run_sink(argv, &out, &err);

		check(rc == 64 && strstr(err.data, "--allow-remote") != NULL &&
		      strstr(err.data, remote[i]) != NULL, __LINE__,
		      "%s: rc %d, %s", remote[i], rc, err.data);
	}
	CU_ASSERT_EQUAL(fake.listeners, 0);
	buf_free(&out);
	buf_free(&err);
}

static void test_sink_listen_failure(void)
{
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 };
	char *argv[] = { "sink", "--listen", "[::1]:2526", "--maildir", NULL,
	                 NULL };

	buf_printf(&dir, "%s/md", t);
	argv[4] = dir.data;
	fake_reset(NULL);
	fake.fail = 1;
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 69);
	CU_ASSERT_STRING_EQUAL(fake.listened, "[::1]:2526");
	check(strstr(err.data, "cannot listen on [::1]:2526: address already in "
	             "use") != NULL, __LINE__, "stderr: %s", err.data);
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	rm_rf(t);
	free(t);
}

static void test_sink_maildir_failure(void)
{
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 };
	char *argv[] = { "sink", "--maildir", NULL, NULL };
	int fd;

	buf_printf(&dir, "%s/file", t);
	fd = open(dir.data, O_CREAT | O_WRONLY, 0600);
	close(fd);
	buf_puts(&dir, "/md");
	argv[2] = dir.data;
	fake_reset(NULL);
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 73);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.data, "file/md"));
	CU_ASSERT_EQUAL(fake.listeners, 0);
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	rm_rf(t);
	free(t);
}

static const char campaign_msg[] =
	"From: News <news@example.test>\r\n"
	"To: <reader@example.test>\r\n"
	"Subject: =?UTF-8?Q?Caf=C3=A9?= \"news\"\r\n"
	"\tfolded\r\n"
	"\r\n"
	".. stuffed line\r\n";

static const char campaign_wire[] =
	"From: News <news@example.test>\r\n"
	"To: <reader@example.test>\r\n"
	"Subject: =?UTF-8?Q?Caf=C3=A9?= \"news\"\r\n"
	"\tfolded\r\n"
	"\r\n"
	"... stuffed line\r\n"
	".\r\n";

static const struct step one_message[] = {
	{ "EHLO client.test\r\nAUTH PLAIN AHUAcGFzc3dvcmQ=\r\n", NULL },
	{ "MAIL FROM:<news@example.test>\r\nRCPT TO:<reader@example.test>\r\n"
	  "RCPT TO:<x\x01y@example.test>\r\nDATA\r\n", NULL },
	{ campaign_wire, NULL },
	{ "QUIT\r\n", NULL },
	{ NULL, NULL },
};

/* --count 1: one message saved byte for byte, one line, exit 0. */
static void test_sink_count(void)
{
	char *t = temp_dir();
	struct buf dir = { 0 }, pf = { 0 }, out = { 0 }, err = { 0 },
	           name = { 0 }, path = { 0 }, got = { 0 }, want = { 0 };
	char *argv[] = { "sink", "--listen", "localhost:0", "--maildir", NULL,
	                 "--count", "1", "--port-file", NULL, NULL };
	const char *p;

	buf_printf(&dir, "%s/md", t);
	buf_printf(&pf, "%s/port", t);
	argv[4] = dir.data;
	argv[8] = pf.data;
	fake_reset(one_message);
	fake.port = 40123;
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(fake.listened, "127.0.0.1:0");
	CU_ASSERT_EQUAL(fake.server_closed, 1);
	/* the message, byte for byte, dot-stuffing undone, nothing added */
	buf_printf(&path, "%s/new", dir.data);
	CU_ASSERT_EQUAL_FATAL(count_dir(path.data, &name), 1);
	buf_reset(&path);
	buf_printf(&path, "%s/new/%s", dir.data, name.data);
	CU_ASSERT_EQUAL_FATAL(slurp(path.data, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.data, campaign_msg);
	CU_ASSERT_EQUAL(mode_of(path.data), 0600);
	/* the client was told the file's name */
	buf_printf(&want, "250 2.0.0 Ok: queued as %s\r\n221 ", name.data);
	check(strstr(fake.replies.data, want.data) != NULL, __LINE__,
	      "replies: %s", fake.replies.data);
	CU_ASSERT_PTR_NOT_NULL(strstr(fake.replies.data, "\r\n235 2.7.0 "));
	/* the port file */
	slurp(pf.data, &got);
	CU_ASSERT_STRING_EQUAL(got.data, "40123\n");
	/* one stdout line */
	p = out.data;
	check(strlen(p) > 21 && p[4] == '-' && p[10] == 'T' && p[19] == 'Z' &&
	      p[20] == ' ', __LINE__, "time: %s", p);
	buf_reset(&want);
	buf_printf(&want, " from=<news@example.test> "
	           "to=<reader@example.test>,<x\\x01y@example.test> size=%zu "
	           "subject=\"=?UTF-8?Q?Caf=C3=A9?= \\x22news\\x22\\x09folded\" "
	           "file=%s/new/%s\n", strlen(campaign_msg), dir.data, name.data);
	check(strcmp(p + 20, want.data) == 0, __LINE__, "line: %s\nwant: %s",
	      p + 20, want.data);
	/* stderr: start line and summary */
	buf_reset(&want);
	buf_printf(&want, "edm sink: listening on 127.0.0.1:40123, saving to %s\n"
	           "edm sink: --count reached: 1 message saved (%zu bytes) from 1 "
	           "connection in %s\n", dir.data, strlen(campaign_msg), dir.data);
	check(strcmp(err.data, want.data) == 0, __LINE__, "stderr: %s\nwant: %s",
	      err.data, want.data);
	buf_free(&dir);
	buf_free(&pf);
	buf_free(&out);
	buf_free(&err);
	buf_free(&name);
	buf_free(&path);
	buf_free(&got);
	buf_free(&want);
	rm_rf(t);
	free(t);
}

static void send_sigint(void)
{
	raise(SIGINT);
}

/* --count 1 with a second message pipelined behind the first: the client
 * reads 250 for the first, 421 for the next MAIL. */
static void test_sink_count_drains(void)
{
	static const struct step script[] = {
		{ "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
		  "Subject: 1\r\n\r\none\r\n.\r\nMAIL FROM:<a@x>\r\n", NULL },
		{ NULL, NULL },
	};
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 }, path = { 0 };
	char *argv[] = { "sink", "-q", "--maildir", NULL, "--count", "1", NULL };

	buf_printf(&dir, "%s/md", t);
	argv[3] = dir.data;
	fake_reset(script);
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 0);
	check(strstr(fake.replies.data, "250 2.0.0 Ok: queued as ") != NULL &&
	      strstr(fake.replies.data, "\r\n421 4.3.2 ") != NULL, __LINE__,
	      "replies: %s", fake.replies.data);
	CU_ASSERT_EQUAL(fake.server_closed, 1);
	CU_ASSERT_EQUAL(out.len, 0); /* --quiet */
	CU_ASSERT_EQUAL(err.len, 0);
	buf_printf(&path, "%s/new", dir.data);
	CU_ASSERT_EQUAL(count_dir(path.data, NULL), 1);
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	buf_free(&path);
	rm_rf(t);
	free(t);
}

/* SIGINT stops at once: the open connection is closed, summary, exit 0. */
static void test_sink_sigint(void)
{
	static const struct step script[] = {
		{ "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
		  "No header\r\n.\r\n", NULL },
		{ NULL, send_sigint },
		{ NULL, NULL },
	};
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 };
	char *argv[] = { "sink", "--maildir", NULL, "--max-size", "1k", NULL };

	buf_printf(&dir, "%s/md", t);
	argv[2] = dir.data;
	fake_reset(script);
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(fake.listened, "127.0.0.1:2525");
	CU_ASSERT_EQUAL(fake.server_closed, 0);
	CU_ASSERT_EQUAL(fake.closes, 1); /* closed by conn_listener_close */
	check(strstr(out.data, " from=<> to=<b@x> size=11 subject=\"\" file=") !=
	      NULL, __LINE__, "stdout: %s", out.data);
	check(strstr(err.data, "edm sink: interrupted: 1 message saved (11 "
	             "bytes) from 1 connection in ") != NULL, __LINE__,
	      "stderr: %s", err.data);
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	rm_rf(t);
	free(t);
}

static char *failing_dir;

static void break_maildir(void)
{
	struct buf p = { 0 };

	buf_printf(&p, "%s/tmp", failing_dir);
	CU_ASSERT(rmdir(p.data) == 0);
	buf_free(&p);
}

/* A message that cannot be saved: 451 to the client, exit 73. */
static void test_sink_save_failure(void)
{
	static const struct step script[] = {
		{ NULL, break_maildir },
		{ "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
		  "x\r\n.\r\nQUIT\r\n", NULL },
		{ NULL, send_sigint },
		{ NULL, NULL },
	};
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 };
	char *argv[] = { "sink", "--maildir", NULL, NULL };

	buf_printf(&dir, "%s/md", t);
	argv[2] = dir.data;
	failing_dir = dir.data;
	fake_reset(script);
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 73);
	CU_ASSERT_PTR_NOT_NULL(strstr(fake.replies.data, "\r\n451 4.3.0 "));
	check(strstr(err.data, "a message from <a@x> (3 bytes) was not saved") !=
	      NULL && strstr(err.data, "0 messages saved") != NULL &&
	      strstr(err.data, "; 1 could not be saved") != NULL, __LINE__,
	      "stderr: %s", err.data);
	CU_ASSERT_EQUAL(out.len, 0);
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	rm_rf(t);
	free(t);
}

/* A long subject is cut at 80 octets, never inside a UTF-8 sequence. */
static void test_sink_long_subject(void)
{
	static const struct step script[] = {
		{ "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
		  "To: b@x\r\n"
		  "subject:   0123456789012345678901234567890123456789"
		  "012345678901234567890123456789012345678\xc3\xa9zzzz\r\n"
		  "Subject: second\r\n"
		  "\r\nx\r\n.\r\nQUIT\r\n", NULL },
		{ NULL, NULL },
	};
	char *t = temp_dir();
	struct buf dir = { 0 }, out = { 0 }, err = { 0 };
	char *argv[] = { "sink", "--maildir", NULL, "--count", "1",
	                 "--listen", "[::1]:0", NULL };

	buf_printf(&dir, "%s/md", t);
	argv[2] = dir.data;
	fake_reset(script);
	CU_ASSERT_EQUAL(run_sink(argv, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(fake.listened, "[::1]:0");
	check(strstr(out.data, "subject=\"0123456789012345678901234567890123456789"
	             "012345678901234567890123456789012345678...\" file=") !=
	      NULL, __LINE__, "stdout: %s", out.data);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.data, "listening on [::1]:2525"));
	buf_free(&dir);
	buf_free(&out);
	buf_free(&err);
	rm_rf(t);
	free(t);
}

static const struct test_case tests[] = {
	{ "greeting", test_greeting },
	{ "new_needs_callback", test_new_needs_callback },
	{ "session", test_session },
	{ "every_split", test_every_split },
	{ "pipelining", test_pipelining },
	{ "dot_stuffing", test_dot_stuffing },
	{ "sequence_errors", test_sequence_errors },
	{ "simple_commands", test_simple_commands },
	{ "ehlo_size", test_ehlo_size },
	{ "paths", test_paths },
	{ "max_rcpts", test_max_rcpts },
	{ "max_rcpts_default", test_max_rcpts_default },
	{ "line_too_long", test_line_too_long },
	{ "max_size", test_max_size },
	{ "auth", test_auth },
	{ "auth_message", test_auth_message },
	{ "store_failure", test_store_failure },
	{ "queue_id", test_queue_id },
	{ "shutdown", test_shutdown },
	{ "error_limit", test_error_limit },
	{ "maildir_open", test_maildir_open },
	{ "maildir_open_errors", test_maildir_open_errors },
	{ "maildir_deliver", test_maildir_deliver },
	{ "maildir_collision", test_maildir_collision },
	{ "maildir_deliver_error", test_maildir_deliver_error },
	{ "sink_help_and_usage", test_sink_help_and_usage },
	{ "sink_refuses_remote", test_sink_refuses_remote },
	{ "sink_listen_failure", test_sink_listen_failure },
	{ "sink_maildir_failure", test_sink_maildir_failure },
	{ "sink_count", test_sink_count },
	{ "sink_count_drains", test_sink_count_drains },
	{ "sink_sigint", test_sink_sigint },
	{ "sink_save_failure", test_sink_save_failure },
	{ "sink_long_subject", test_sink_long_subject },
	{ NULL, NULL },
};

int main(void)
{
	int rc = test_run("smtp_server", tests);

	buf_free(&fake.replies);
	return rc;
}
