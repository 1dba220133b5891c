/*
 * smtp_server.c - one SMTP server session for `edm sink` (contract in
 * smtp_server.h).
 *
 * Two consumers share the input: line_consume() collects a command line
 * (up to its LF, never more than SMTP_SERVER_LINE_MAX octets) and hands it
 * to handle_line(); data_consume() runs the message-data state machine
 * (line start / mid-line / CR / "." / ".CR") that finds CRLF.CRLF and
 * removes dot-stuffing in any byte split. smtp_server_feed() alternates
 * between them as the session state says, so pipelined commands and the
 * message data after a 354 in the same chunk are handled in order.
 */
#include "smtp_server.h"

#include "log.h"

#include <stdarg.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Session states; change them only with set_state(). */
enum ss_state {
	SS_COMMAND = 0,          /* reading command lines */
	SS_AUTH_PLAIN,           /* "334 " sent, waiting for the response */
	SS_AUTH_LOGIN_USER,      /* "334 VXNlcm5hbWU6" sent */
	SS_AUTH_LOGIN_PASS,      /* "334 UGFzc3dvcmQ6" sent */
	SS_DATA,                 /* 354 sent, reading the message */
	SS_CLOSED,               /* QUIT, 421 or out of memory: nothing more */
};

static const char *const ss_names[] = {
	"command", "auth-plain", "auth-login-user", "auth-login-pass",
	"data", "closed",
};

/* Where the message-data scanner is, relative to line boundaries. */
enum ds_state {
	DS_BOL = 0,              /* at the start of a line (after CRLF) */
	DS_MID,                  /* inside a line */
	DS_CR,                   /* just after a CR */
	DS_DOT,                  /* a "." at the start of a line */
	DS_DOT_CR,               /* "." CR at the start of a line */
};

struct smtp_server {
	enum ss_state state;
	enum ds_state ds;
	char *name;
	struct smtp_server_limits lim;
	smtp_server_msg_fn on_message;
	void *arg;

	struct buf line;         /* the command line being received */
	int line_too_long;       /* dropping bytes up to the next LF */
	int oom;                 /* a reply could not be buffered: close */

	char *helo;              /* NULL until EHLO/HELO */
	int authenticated;
	int shutting_down;
	unsigned errors;         /* protocol error replies so far */
	unsigned long messages;  /* accepted in this session */

	/* the transaction */
	char *from;              /* NULL until MAIL */
	char **rcpts;
	size_t nrcpts, rcpt_cap;
	struct buf body;         /* the message (only while within max_size) */
	size_t size;             /* octets received, also past max_size */
	int body_oom;            /* the body could not be buffered */
};

/* A body buffer larger than this is released after its transaction rather
 * than kept for the next message: an idle connection holds little. */
#define BODY_KEEP_MAX ((size_t)1024 * 1024)

/* This is the ONLY way to change the session state. */
static void set_state(struct smtp_server *s, enum ss_state st)
{
	if (s->state != st && log_enabled(EDM_LOG_DEBUG))
		log_kv(EDM_LOG_DEBUG, "smtp_server_state", "from=%s to=%s",
		       ss_names[s->state], ss_names[st]);
	s->state = st;
}

/* Append one reply line (CRLF added); remember a failed append. Replies
 * are short; one longer than the scratch buffer is cut (never its CRLF). */
static void reply(struct smtp_server *s, struct buf *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply(struct smtp_server *s, struct buf *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->oom = 1;
		return;
	}
	if ((size_t)n > sizeof line - 3)
		n = (int)(sizeof line - 3);
	memcpy(line + n, "\r\n", 2);
	if (buf_append(out, line, (size_t)n + 2) < 0)
		s->oom = 1;
}

/* Wipe and empty the line buffer (it may have held AUTH credentials). */
static void line_wipe(struct smtp_server *s)
{
	if (s->line.data != NULL)
		explicit_bzero(s->line.data, s->line.len);
	buf_reset(&s->line);
}

/* A protocol error reply (500..504): counted, 421 and close at the cap. */
static void error_reply(struct smtp_server *s, struct buf *out,
                        const char *text)
{
	reply(s, out, "%s", text);
	if (++s->errors >= s->lim.max_errors) {
		reply(s, out, "421 4.7.0 %s Error: too many errors", s->name);
		set_state(s, SS_CLOSED);
	}
}

/* Forget the transaction (MAIL, RCPTs, message); keep HELO and AUTH. */
static void txn_reset(struct smtp_server *s)
{
	free(s->from);
	s->from = NULL;
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	s->nrcpts = 0;
	if (s->body.cap > BODY_KEEP_MAX)
		buf_free(&s->body);
	else
		buf_reset(&s->body);
	s->size = 0;
	s->body_oom = 0;
}

struct smtp_server *smtp_server_new(const struct smtp_server_opts *o)
{
	struct smtp_server *s;

	if (o->on_message == NULL)
		return NULL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	/* 255: the longest domain (RFC 5321 4.5.3.1.2); replies stay short */
	s->name = strndup(o->name != NULL ? o->name : "localhost", 255);
	if (s->name == NULL) {
		free(s);
		return NULL;
	}
	s->lim = o->limits;
	if (s->lim.max_size == 0)
		s->lim.max_size = SMTP_SERVER_MAX_SIZE_DEFAULT;
	if (s->lim.max_rcpts == 0)
		s->lim.max_rcpts = SMTP_SERVER_MAX_RCPTS_DEFAULT;
	if (s->lim.max_errors == 0)
		s->lim.max_errors = SMTP_SERVER_MAX_ERRORS_DEFAULT;
	s->on_message = o->on_message;
	s->arg = o->arg;
	return s;
}

void smtp_server_free(struct smtp_server *s)
{
	if (s == NULL)
		return;
	txn_reset(s);
	free(s->rcpts);
	buf_free(&s->body);
	line_wipe(s);
	buf_free(&s->line);
	free(s->helo);
	free(s->name);
	free(s);
}

void smtp_server_shutdown(struct smtp_server *s)
{
	s->shutting_down = 1;
}

unsigned long smtp_server_messages(const struct smtp_server *s)
{
	return s->messages;
}

/* Close the session when a reply could not be buffered. */
static int status(struct smtp_server *s)
{
	if (s->oom)
		set_state(s, SS_CLOSED);
	return s->state == SS_CLOSED ? SMTP_SERVER_CLOSE : SMTP_SERVER_GO_ON;
}

int smtp_server_greeting(struct smtp_server *s, struct buf *out)
{
	if (s->shutting_down) {
		reply(s, out, "421 4.3.2 %s Service shutting down", s->name);
		set_state(s, SS_CLOSED);
	} else {
		reply(s, out, "220 %s ESMTP edm sink", s->name);
	}
	return status(s);
}

/* ---- paths and parameters ---- */

/*
 * Parse a path at a ("<addr>", "<>", or a bare address) into a new string
 * *addr (without <> and without a source route); *rest points after it.
 * 0, -1 for a syntax error, -2 out of memory.
 */
static int parse_path(const char *a, int allow_empty, char **addr,
                      const char **rest)
{
	const char *start, *end, *after;

	while (*a == ' ')
		a++;
	if (*a == '<') {
		const char *q = a + 1;
		int quoted = 0;

		for (; *q != '\0'; q++) {
			if (quoted) {
				if (*q == '\\' && q[1] != '\0')
					q++;
				else if (*q == '"')
					quoted = 0;
			} else if (*q == '"') {
				quoted = 1;
			} else if (*q == '>') {
				break;
			}
		}
		if (*q != '>')
			return -1;
		start = a + 1;
		end = q;
		after = q + 1;
	} else {
		start = a;
		end = a + strcspn(a, " ");
		after = end;
		if (start == end)
			return -1;
	}
	if (*after != '\0' && *after != ' ')
		return -1;
	/* "<@a,@b:user@c>": RFC 5321 4.1.1.3, servers SHOULD ignore routes */
	if (start < end && *start == '@') {
		const char *colon = memchr(start, ':', (size_t)(end - start));
		if (colon == NULL)
			return -1;
		start = colon + 1;
	}
	if (start == end && !allow_empty)
		return -1;
	if ((*addr = strndup(start, (size_t)(end - start))) == NULL)
		return -2;
	*rest = after;
	return 0;
}

/* Check the MAIL parameters in p: NULL when fine, else the reply to give
 * (only SIZE= is looked at; RFC 1870 says refuse a declared size over the
 * limit at MAIL). */
static const char *check_mail_params(const struct smtp_server *s,
                                     const char *p)
{
	while (*p != '\0') {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
			unsigned long long v = 0;
			size_t i;

			for (i = 5; i < len; i++) {
				unsigned d = (unsigned)(p[i] - '0');

				if (p[i] < '0' || p[i] > '9' || v > (ULLONG_MAX - d) / 10)
					return "501 5.5.4 Syntax: SIZE=number";
				v = v * 10 + d;
			}
			if (v > s->lim.max_size)
				return "552 5.3.4 Error: message size exceeds fixed limit";
		} else if (len == 5 && strncasecmp(p, "SIZE=", 5) == 0) {
			return "501 5.5.4 Syntax: SIZE=number";
		}
		p += len;
	}
	return NULL;
}

/* ---- commands ---- */

/* EHLO: remember the name, reset the transaction, list the extensions. */
static void cmd_ehlo(struct smtp_server *s, const char *args, struct buf *out)
{
	char *h;

	if (*args == '\0') {
		error_reply(s, out, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	if ((h = strdup(args)) == NULL) {
		s->oom = 1;
		return;
	}
	free(s->helo);
	s->helo = h;
	txn_reset(s); /* RFC 5321 4.1.4: EHLO resets like RSET */
	reply(s, out, "250-%s\r\n"
	      "250-PIPELINING\r\n"
	      "250-SIZE %zu\r\n"
	      "250-8BITMIME\r\n"
	      "250-SMTPUTF8\r\n"
	      "250-ENHANCEDSTATUSCODES\r\n"
	      "250-AUTH PLAIN LOGIN\r\n"
	      "250 HELP", s->name, s->lim.max_size);
}

/* HELO: like EHLO without the extension list (RFC 5321 4.1.1.1). */
static void cmd_helo(struct smtp_server *s, const char *args, struct buf *out)
{
	char *h;

	if (*args == '\0') {
		error_reply(s, out, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	if ((h = strdup(args)) == NULL) {
		s->oom = 1;
		return;
	}
	free(s->helo);
	s->helo = h;
	txn_reset(s);
	reply(s, out, "250 %s", s->name);
}

/* MAIL FROM:<path> [params]: start a transaction after EHLO/HELO. */
static void cmd_mail(struct smtp_server *s, const char *args, struct buf *out)
{
	const char *rest, *bad;
	char *addr;
	int rc;

	if (s->helo == NULL) {
		error_reply(s, out, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->from != NULL) {
		error_reply(s, out, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (strncasecmp(args, "FROM:", 5) != 0 ||
	    (rc = parse_path(args + 5, 1, &addr, &rest)) == -1) {
		error_reply(s, out, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (rc < 0) {
		s->oom = 1;
		return;
	}
	if ((bad = check_mail_params(s, rest)) != NULL) {
		free(addr);
		if (bad[0] == '5' && bad[1] == '0')
			error_reply(s, out, bad);
		else
			reply(s, out, "%s", bad);
		return;
	}
	s->from = addr;
	reply(s, out, "250 2.1.0 Ok");
}

/* RCPT TO:<path>: any address, up to max_rcpts per transaction. */
static void cmd_rcpt(struct smtp_server *s, const char *args, struct buf *out)
{
	const char *rest;
	char *addr;
	int rc;

	if (s->from == NULL) {
		error_reply(s, out, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (strncasecmp(args, "TO:", 3) != 0 ||
	    (rc = parse_path(args + 3, 0, &addr, &rest)) == -1) {
		error_reply(s, out, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (rc < 0) {
		s->oom = 1;
		return;
	}
	if (s->nrcpts >= s->lim.max_rcpts) {
		free(addr);
		reply(s, out, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (s->nrcpts == s->rcpt_cap) {
		size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		char **r = realloc(s->rcpts, cap * sizeof *r);

		if (r == NULL) {
			free(addr);
			reply(s, out, "452 4.3.1 Error: insufficient system storage");
			return;
		}
		s->rcpts = r;
		s->rcpt_cap = cap;
	}
	s->rcpts[s->nrcpts++] = addr;
	reply(s, out, "250 2.1.5 Ok");
}

/* DATA: 354 and switch to message data once MAIL and a RCPT were given. */
static void cmd_data(struct smtp_server *s, const char *args, struct buf *out)
{
	if (*args != '\0') {
		error_reply(s, out, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->from == NULL) {
		error_reply(s, out, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpts == 0) {
		error_reply(s, out, "503 5.5.1 Error: need RCPT command");
		return;
	}
	buf_reset(&s->body);
	s->size = 0;
	s->body_oom = 0;
	s->ds = DS_BOL;
	reply(s, out, "354 End data with <CR><LF>.<CR><LF>");
	set_state(s, SS_DATA);
}

static void cmd_rset(struct smtp_server *s, const char *args, struct buf *out)
{
	(void)args;
	txn_reset(s);
	reply(s, out, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_server *s, const char *args, struct buf *out)
{
	(void)args;
	reply(s, out, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_server *s, const char *args, struct buf *out)
{
	(void)args;
	reply(s, out, "221 2.0.0 %s closing connection", s->name);
	set_state(s, SS_CLOSED);
}

/* VRFY: never says whether an address exists. */
static void cmd_vrfy(struct smtp_server *s, const char *args, struct buf *out)
{
	if (*args == '\0') {
		error_reply(s, out, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3: 252 when the server will not say */
	reply(s, out, "252 2.0.0 Cannot VRFY user, but will accept message");
}

static void cmd_help(struct smtp_server *s, const char *args, struct buf *out)
{
	(void)args;
	reply(s, out, "214 2.0.0 edm sink accepts every message: EHLO HELO MAIL "
	      "RCPT DATA RSET NOOP QUIT VRFY AUTH HELP");
}

/* AUTH PLAIN|LOGIN [initial-response]: any credentials are accepted and
 * never kept (the line is wiped by line_consume()). */
static void cmd_auth(struct smtp_server *s, const char *args, struct buf *out)
{
	size_t mlen = strcspn(args, " ");
	const char *resp = args + mlen;

	while (*resp == ' ')
		resp++;
	if (s->helo == NULL) {
		error_reply(s, out, "503 5.5.1 Error: send EHLO first");
	} else if (s->authenticated) {
		error_reply(s, out, "503 5.5.1 Error: already authenticated");
	} else if (s->from != NULL) {
		error_reply(s, out, "503 5.5.1 Error: MAIL transaction in progress");
	} else if (mlen == 0) {
		error_reply(s, out, "501 5.5.4 Syntax: AUTH mechanism");
	} else if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		if (*resp != '\0') {
			s->authenticated = 1;
			reply(s, out, "235 2.7.0 Authentication successful");
		} else {
			reply(s, out, "334 ");
			set_state(s, SS_AUTH_PLAIN);
		}
	} else if (mlen == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		if (*resp != '\0') {
			reply(s, out, "334 UGFzc3dvcmQ6"); /* "Password:" */
			set_state(s, SS_AUTH_LOGIN_PASS);
		} else {
			reply(s, out, "334 VXNlcm5hbWU6"); /* "Username:" */
			set_state(s, SS_AUTH_LOGIN_USER);
		}
	} else {
		error_reply(s, out, "504 5.5.4 Error: unsupported authentication "
		            "mechanism (PLAIN and LOGIN are offered)");
	}
}

/* A line answering a 334 challenge. */
static void auth_continue(struct smtp_server *s, const char *line,
                          size_t len, struct buf *out)
{
	if (len == 1 && line[0] == '*') { /* RFC 4954 4: the client cancels */
		reply(s, out, "501 5.7.0 Error: authentication cancelled");
		set_state(s, SS_COMMAND);
	} else if (s->state == SS_AUTH_LOGIN_USER) {
		reply(s, out, "334 UGFzc3dvcmQ6");
		set_state(s, SS_AUTH_LOGIN_PASS);
	} else {
		s->authenticated = 1;
		reply(s, out, "235 2.7.0 Authentication successful");
		set_state(s, SS_COMMAND);
	}
}

static const struct {
	const char *verb;
	void (*fn)(struct smtp_server *s, const char *args, struct buf *out);
} commands[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo },
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "QUIT", cmd_quit },
	{ "VRFY", cmd_vrfy },
	{ "HELP", cmd_help },
	{ "AUTH", cmd_auth },
};

/* One complete line (without its CRLF or LF), NUL-terminated at len. */
static void handle_line(struct smtp_server *s, char *line, size_t len,
                        struct buf *out)
{
	size_t vlen;
	char *args;

	if (s->state != SS_COMMAND) {
		auth_continue(s, line, len, out);
		return;
	}
	if (memchr(line, '\0', len) != NULL || len == 0) {
		error_reply(s, out, "500 5.5.2 Error: bad syntax");
		return;
	}
	vlen = strcspn(line, " ");
	args = line + vlen;
	while (*args == ' ')
		args++;
	/* trailing spaces are not part of any argument */
	while (len > (size_t)(args - line) && line[len - 1] == ' ')
		line[--len] = '\0';
	if (s->shutting_down && !(vlen == 4 && strncasecmp(line, "QUIT", 4) == 0)) {
		reply(s, out, "421 4.3.2 %s Service shutting down", s->name);
		set_state(s, SS_CLOSED);
		return;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
		if (vlen == 4 && strncasecmp(line, commands[i].verb, 4) == 0) {
			commands[i].fn(s, args, out);
			return;
		}
	}
	error_reply(s, out, "502 5.5.2 Error: command not recognized");
}

/* Consume command bytes up to and including the next LF. */
static size_t line_consume(struct smtp_server *s, const char *p, size_t n,
                           struct buf *out)
{
	const char *lf = memchr(p, '\n', n);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
	size_t content = lf != NULL ? take - 1 : take;
	size_t len;

	if (!s->line_too_long) {
		/* the line with its LF may be SMTP_SERVER_LINE_MAX octets */
		if (s->line.len + content >= SMTP_SERVER_LINE_MAX) {
			s->line_too_long = 1;
			line_wipe(s);
		} else if (buf_append(&s->line, p, content) < 0) {
			s->oom = 1;
			return take;
		}
	}
	if (lf == NULL)
		return take;
	if (s->line_too_long) {
		s->line_too_long = 0;
		if (s->state != SS_COMMAND)
			set_state(s, SS_COMMAND); /* an AUTH exchange fails */
		error_reply(s, out, "500 5.5.2 Error: line too long");
		return take;
	}
	len = s->line.len;
	if (len > 0 && s->line.data[len - 1] == '\r')
		s->line.data[--len] = '\0';
	handle_line(s, s->line.data != NULL ? s->line.data : (char *)"", len,
	            out);
	/* AUTH lines carry credentials: no command line outlives its reply */
	line_wipe(s);
	return take;
}

/* ---- message data ---- */

/* Add message octets; past max_size only count them. */
static void body_append(struct smtp_server *s, const char *p, size_t n)
{
	s->size = n > SIZE_MAX - s->size ? SIZE_MAX : s->size + n;
	if (s->size > s->lim.max_size) {
		if (s->body.cap > 0)
			buf_free(&s->body);
		return;
	}
	if (s->body_oom)
		return;
	if (buf_append(&s->body, p, n) < 0) {
		s->body_oom = 1;
		buf_free(&s->body);
	}
}

/* The final "." arrived: hand the message over and answer. */
static void data_done(struct smtp_server *s, struct buf *out)
{
	if (s->size > s->lim.max_size) {
		reply(s, out, "552 5.3.4 Error: message size exceeds fixed limit");
	} else if (s->body_oom) {
		reply(s, out, "452 4.3.1 Error: insufficient system storage");
	} else {
		struct smtp_server_msg m = {
			.helo = s->helo,
			.from = s->from,
			.rcpts = (const char *const *)s->rcpts,
			.nrcpts = s->nrcpts,
			.data = s->body.data != NULL ? s->body.data : "",
			.size = s->size,
			.authenticated = s->authenticated,
		};
		char id[256] = "";

		if (s->on_message(s->arg, &m, id, sizeof id) == 0) {
			s->messages++;
			id[sizeof id - 1] = '\0';
			for (char *c = id; *c != '\0'; c++)
				if (*c < 0x21 || *c > 0x7e)
					*c = '?';
			if (id[0] != '\0')
				reply(s, out, "250 2.0.0 Ok: queued as %s", id);
			else
				reply(s, out, "250 2.0.0 Ok: queued");
		} else {
			reply(s, out, "451 4.3.0 Error: could not store the message, "
			      "try again later");
		}
	}
	txn_reset(s);
	set_state(s, SS_COMMAND);
}

/* Consume message data up to and including the final CRLF.CRLF. */
static size_t data_consume(struct smtp_server *s, const char *p, size_t n,
                           struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		switch (s->ds) {
		case DS_MID: {
			const char *cr = memchr(p + i, '\r', n - i);
			size_t run = cr != NULL ? (size_t)(cr - (p + i)) + 1 : n - i;

			body_append(s, p + i, run);
			i += run;
			if (cr != NULL)
				s->ds = DS_CR;
			break;
		}
		case DS_CR:
			body_append(s, &c, 1);
			i++;
			if (c == '\n')
				s->ds = DS_BOL;
			else if (c != '\r')
				s->ds = DS_MID;
			break;
		case DS_BOL:
			i++;
			if (c == '.') {
				s->ds = DS_DOT;
				break;
			}
			body_append(s, &c, 1);
			s->ds = c == '\r' ? DS_CR : DS_MID;
			break;
		case DS_DOT:
			if (c == '\r') {
				i++;
				s->ds = DS_DOT_CR;
			} else {
				/* the dot was stuffing: drop it, c is ordinary data */
				s->ds = DS_MID;
			}
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				data_done(s, out);
				return i + 1;
			}
			/* "." CR x: the dot was stuffing, the CR is data; x is
			 * read again after a CR */
			body_append(s, "\r", 1);
			s->ds = DS_CR;
			break;
		}
	}
	return i;
}

int smtp_server_feed(struct smtp_server *s, const char *p, size_t n,
                     struct buf *out)
{
	size_t i = 0;

	while (i < n && s->state != SS_CLOSED && !s->oom) {
		if (s->state == SS_DATA)
			i += data_consume(s, p + i, n - i, out);
		else
			i += line_consume(s, p + i, n - i, out);
	}
	return status(s);
}
