/*
 * smtp_session.c - one SMTP client session as an I/O-free state machine
 * (contract in smtp_session.h).
 *
 * Shape (curl's lib/smtp.c): one state enum, one setter (state_set) with a
 * names table so every transition is logged at debug level, and for each
 * command a send step plus an on_<state>() handler for its reply. The state
 * is always the command whose reply comes next; with PIPELINING, MAIL, every
 * RCPT and DATA leave in one write and the replies are walked in order
 * (RFC 2920 3.1): MAIL -> RCPT x n -> DATA.
 *
 * Decisions the header leaves open:
 * - A command that would exceed 512 octets (RFC 5321 4.5.3.1.4), or an
 *   address holding a control character, '<' or '>' (it would corrupt or
 *   inject commands), is never sent: a recipient gets stage LOCAL, code 0,
 *   enhanced "5.1.3" and the others go ahead; a bad sender fails the whole
 *   transaction the same way with "5.1.7". If no recipient is left nothing
 *   is sent and TXN_DONE + READY follow at once. smtp_session_submit()
 *   returns -1 only when not ready, on a malformed smtp_txn (no recipients,
 *   NULL pointers) or when out of memory.
 * - SIZE=n is the message size after line-end normalisation, without
 *   dot-stuffing (RFC 1870 3). BODY=8BITMIME is added when the message is
 *   8-bit and the server offers 8BITMIME; when it does not, the message is
 *   sent as is (converting it is the MIME layer's job).
 * - Greeting 4xx/5xx (other than 421), EHLO and HELO refused, STARTTLS
 *   required but missing/refused, AUTH refused or impossible, and a failed
 *   RSET end the session politely: QUIT is sent and SMTP_EV_CLOSED follows
 *   its reply (or EOF/timeout), with the reason and reply that caused it.
 *   421, EOF, timeouts, protocol errors and a failed TLS handshake close at
 *   once: pending output is dropped and nothing more is sent.
 * - smtp_session_quit() during the handshake or a transaction is honoured
 *   at the next idle point (QUIT instead of SMTP_EV_READY); before the
 *   greeting or during the TLS handshake it closes at once.
 * - data_block applies while the body is still in the output buffer (not
 *   yet taken by the driver), dot once it is all taken.
 * - An unexpected reply while idle is a protocol error, except 421 (idle
 *   disconnect notice); EOF or 421 while idle carry stage CONNECT.
 * What it does not do: sockets, TLS, timers, retries, classification.
 */
#include "smtp_session.h"

#include "buf.h"
#include "log.h"
#include "smtp_reply.h"
#include "utf8.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 5321 4.5.3.2 client timeouts, ms. */
#define TO_GREETING 300000u   /* 4.5.3.2.1: initial 220, 5 min */
#define TO_EHLO 300000u       /* not in 4.5.3.2; like MAIL: 5 min */
#define TO_STARTTLS 120000u   /* no mailbox work behind it: like DATA init */
#define TO_AUTH 120000u       /* may query a user database; 2 min */
#define TO_MAIL 300000u       /* 4.5.3.2.2: 5 min */
#define TO_RCPT 300000u       /* 4.5.3.2.3: 5 min */
#define TO_DATA 120000u       /* 4.5.3.2.4: DATA initiation, 2 min */
#define TO_DATA_BLOCK 180000u /* 4.5.3.2.5: each data block, 3 min */
#define TO_DOT 600000u        /* 4.5.3.2.6: 10 min; also a floor, since a
                                 lost reply here duplicates mail (RFC 1047) */
#define TO_RSET 120000u       /* cheap command, like DATA init: 2 min */
#define TO_QUIT 60000u        /* nothing depends on the answer: 1 min */

/* RFC 5321 4.5.3.1.4: command line including CRLF. */
#define CMD_MAX 512
/* Events one call can queue: at most TXN_DONE + READY/CLOSED or
 * STARTTLS; eight leaves room for a driver that drains late. */
#define EVQ_MAX 8

/* This is the only way the session moves: state_set(). */
enum smtp_state {
	ST_GREETING = 0,  /* waiting for the 220 */
	ST_EHLO,          /* EHLO sent */
	ST_HELO,          /* HELO sent (EHLO got 5xx) */
	ST_STARTTLS,      /* STARTTLS sent */
	ST_TLS,           /* 220 to STARTTLS: the driver runs the handshake */
	ST_AUTH_PLAIN,    /* AUTH PLAIN <initial response> sent */
	ST_AUTH_LOGIN,    /* AUTH LOGIN sent, 334 expected */
	ST_AUTH_USER,     /* user name sent, 334 expected */
	ST_AUTH_PASS,     /* password sent, 235 expected */
	ST_READY,         /* idle */
	ST_MAIL,          /* reply to MAIL next */
	ST_RCPT,          /* reply to RCPT sent[pos] next */
	ST_DATA,          /* reply to DATA next */
	ST_DOT,           /* body and "." sent */
	ST_DOT_DISCARD,   /* lone "." after 354 with no recipient */
	ST_RSET,          /* RSET sent after a failed transaction */
	ST_QUIT,          /* QUIT sent; closing with quit_reason */
	ST_CLOSED,        /* SMTP_EV_CLOSED emitted */
};

static const char *const state_names[] = {
	[ST_GREETING] = "greeting",
	[ST_EHLO] = "ehlo",
	[ST_HELO] = "helo",
	[ST_STARTTLS] = "starttls",
	[ST_TLS] = "tls",
	[ST_AUTH_PLAIN] = "auth-plain",
	[ST_AUTH_LOGIN] = "auth-login",
	[ST_AUTH_USER] = "auth-user",
	[ST_AUTH_PASS] = "auth-pass",
	[ST_READY] = "ready",
	[ST_MAIL] = "mail",
	[ST_RCPT] = "rcpt",
	[ST_DATA] = "data",
	[ST_DOT] = "dot",
	[ST_DOT_DISCARD] = "dot-discard",
	[ST_RSET] = "rset",
	[ST_QUIT] = "quit",
	[ST_CLOSED] = "closed",
};

static const char *const stage_names[] = {
	[SMTP_STAGE_CONNECT] = "connect",
	[SMTP_STAGE_GREETING] = "greeting",
	[SMTP_STAGE_EHLO] = "ehlo",
	[SMTP_STAGE_STARTTLS] = "starttls",
	[SMTP_STAGE_TLS] = "tls",
	[SMTP_STAGE_AUTH] = "auth",
	[SMTP_STAGE_MAIL] = "mail",
	[SMTP_STAGE_RCPT] = "rcpt",
	[SMTP_STAGE_DATA] = "data",
	[SMTP_STAGE_DOT] = "dot",
	[SMTP_STAGE_RSET] = "rset",
	[SMTP_STAGE_QUIT] = "quit",
	[SMTP_STAGE_LOCAL] = "local",
};

static const char *const close_names[] = {
	[SMTP_CLOSE_QUIT] = "quit",
	[SMTP_CLOSE_421] = "421",
	[SMTP_CLOSE_EOF] = "eof",
	[SMTP_CLOSE_TIMEOUT] = "timeout",
	[SMTP_CLOSE_PROTOCOL] = "protocol",
	[SMTP_CLOSE_REJECTED] = "rejected",
	[SMTP_CLOSE_NO_STARTTLS] = "no-starttls",
	[SMTP_CLOSE_TLS] = "tls",
	[SMTP_CLOSE_AUTH] = "auth",
};

/* One transaction's state. */
struct txn {
	int open;
	int pipelined;
	int mail_failed;
	struct smtp_rcpt_result *results;
	unsigned char *decided;    /* result final */
	unsigned char *rcpt_ok;    /* RCPT got 2xx */
	size_t nresults;
	size_t naccepted;          /* RCPT 2xx count */
	size_t *sent;              /* indices of recipients given to RCPT */
	size_t *rcpt_off;          /* their command offsets in rcpt_cmds */
	size_t nsent, pos;         /* pos: whose RCPT reply comes next */
	struct buf mail_cmd, rcpt_cmds, body;
};

struct smtp_session {
	enum smtp_state state;
	char *helo;
	char *username;            /* NULL = no AUTH */
	char *password;            /* wiped on free */
	char *log_id;
	enum smtp_tls_mode tls_mode;
	int allow_plaintext_auth;
	int no_pipelining;
	struct smtp_timeouts to;   /* effective values, ms */

	int tls_active;
	unsigned caps;
	unsigned long size_limit;

	struct smtp_reply_parser parser;
	unsigned long wait_seq;    /* see smtp_session_wait_seq() */
	char plain_why[160];       /* opportunistic TLS skipped: why */
	struct buf out;            /* bytes for the driver from out_off on */
	size_t out_off;
	int out_wipe;              /* out holds credentials: wipe when taken */

	struct smtp_event evq[EVQ_MAX];
	unsigned ev_head, ev_count;

	char **pool;               /* stable reply texts for events */
	size_t npool, pool_cap;

	int quit_requested;        /* quit() while busy: QUIT when idle */
	enum smtp_close quit_reason;
	struct smtp_reply quit_reply;  /* cause when quit_reason != QUIT */

	/* t: the transaction whose replies come next (t.open from submit to
	 * SMTP_EV_TXN_DONE); next: one staged behind t's final dot (RFC 2920
	 * pipelining across messages, see smtp_session_submit); done: the
	 * last finished one, whose results an event may still point at (freed
	 * at the next submit, as is the pool up to pool_release) */
	struct txn t, next, done;
	int staged;                /* next holds a transaction */
	size_t pool_release;       /* pool[0..pool_release) belongs to done */
};

static int stage_ok(const struct smtp_session *s);
static void staged_take_over(struct smtp_session *s);

/* ---- small helpers ---- */

/* memset that the compiler may not drop. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

/* A copy of text that lives until the next submit or free. */
static const char *keep(struct smtp_session *s, const char *text)
{
	char **np, *d;

	if (s->npool == s->pool_cap) {
		size_t cap = s->pool_cap ? s->pool_cap * 2 : 8;

		if ((np = realloc(s->pool, cap * sizeof *np)) == NULL)
			return "(out of memory)";
		s->pool = np;
		s->pool_cap = cap;
	}
	if ((d = dupstr(text)) == NULL)
		return "(out of memory)";
	s->pool[s->npool++] = d;
	return d;
}

static void pool_clear(struct smtp_session *s)
{
	for (size_t i = 0; i < s->npool; i++)
		free(s->pool[i]);
	s->npool = 0;
}

/* r with a stable copy of its text and the given stage. */
static struct smtp_reply reply_kept(struct smtp_session *s,
                                    const struct smtp_reply *r,
                                    enum smtp_stage st)
{
	struct smtp_reply k = *r;

	k.text = keep(s, r->text != NULL ? r->text : "");
	k.stage = st;
	return k;
}

/* A synthetic (code 0) reply. */
static struct smtp_reply synth(struct smtp_session *s, enum smtp_stage st,
                               const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct smtp_reply synth(struct smtp_session *s, enum smtp_stage st,
                               const char *enhanced, const char *fmt, ...)
{
	struct smtp_reply r;
	char text[512];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	/* a long reply quoted here may be cut inside a UTF-8 character:
	 * drop the cut one, texts are UTF-8 (found by fuzz_smtp_session) */
	n = strlen(text);
	text[utf8_check((const unsigned char *)text, n)] = '\0';
	memset(&r, 0, sizeof r);
	snprintf(r.enhanced, sizeof r.enhanced, "%s", enhanced);
	r.text = keep(s, text);
	r.stage = st;
	return r;
}

/* One transcript line at debug level, quotes and controls escaped. */
static void log_line(const struct smtp_session *s, char dir,
                     const char *text, size_t n)
{
	char q[640];
	size_t i, j = 0;

	if (!log_enabled(EDM_LOG_DEBUG))
		return;
	for (i = 0; i < n && j + 6 < sizeof q; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\') {
			q[j++] = '\\';
			q[j++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			j += (size_t)snprintf(q + j, sizeof q - j, "\\x%02X", c);
		} else {
			q[j++] = (char)c;
		}
	}
	q[j] = '\0';
	log_kv(EDM_LOG_DEBUG, "smtp_transcript", "id=%s line=\"%c: %s%s\"",
	       s->log_id, dir, q, i < n ? "..." : "");
}

/* Log a received reply. */
static void log_reply(const struct smtp_session *s, const struct smtp_reply *r)
{
	char line[600];

	if (!log_enabled(EDM_LOG_DEBUG))
		return;
	snprintf(line, sizeof line, "%d%s%s %s", r->code,
	         r->enhanced[0] ? " " : "", r->enhanced, r->text);
	log_line(s, 'S', line, strlen(line));
}

/* This is the ONLY way to change the session's state. */
static void state_set(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_kv(EDM_LOG_DEBUG, "smtp_state", "id=%s from=%s to=%s", s->log_id,
	       state_names[s->state], state_names[st]);
	s->state = st;
	s->wait_seq++;
}

/* Which stage the awaited reply belongs to. */
static enum smtp_stage stage_of(enum smtp_state st)
{
	switch (st) {
	case ST_GREETING: return SMTP_STAGE_GREETING;
	case ST_EHLO:
	case ST_HELO: return SMTP_STAGE_EHLO;
	case ST_STARTTLS: return SMTP_STAGE_STARTTLS;
	case ST_TLS: return SMTP_STAGE_TLS;
	case ST_AUTH_PLAIN:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS: return SMTP_STAGE_AUTH;
	case ST_MAIL: return SMTP_STAGE_MAIL;
	case ST_RCPT: return SMTP_STAGE_RCPT;
	case ST_DATA: return SMTP_STAGE_DATA;
	case ST_DOT:
	case ST_DOT_DISCARD: return SMTP_STAGE_DOT;
	case ST_RSET: return SMTP_STAGE_RSET;
	case ST_QUIT: return SMTP_STAGE_QUIT;
	case ST_READY:
	case ST_CLOSED: break;
	}
	return SMTP_STAGE_CONNECT;
}

/* The command whose reply is awaited, for messages. */
static const char *command_of(enum smtp_state st)
{
	switch (st) {
	case ST_EHLO: return "EHLO";
	case ST_HELO: return "HELO";
	case ST_STARTTLS: return "STARTTLS";
	case ST_AUTH_PLAIN:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS: return "AUTH";
	case ST_MAIL: return "MAIL";
	case ST_RCPT: return "RCPT";
	case ST_DATA: return "DATA";
	case ST_DOT:
	case ST_DOT_DISCARD: return "end of data";
	case ST_RSET: return "RSET";
	case ST_QUIT: return "QUIT";
	default: break;
	}
	return "?";
}

/* Queue an event; overflow means the driver stopped draining (a bug). */
static void ev_push(struct smtp_session *s, const struct smtp_event *ev)
{
	if (s->ev_count == EVQ_MAX)
		abort();
	s->evq[(s->ev_head + s->ev_count) % EVQ_MAX] = *ev;
	s->ev_count++;
}

static void ev_simple(struct smtp_session *s, enum smtp_event_type type)
{
	struct smtp_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev_push(s, &ev);
}

/* Append raw bytes to the output. */
static void out_append(struct smtp_session *s, const char *p, size_t n)
{
	if (s->out_off > 0 && s->out_off == s->out.len) {
		buf_reset(&s->out);
		s->out_off = 0;
	}
	/* on allocation failure the command is lost and the reply timeout
	 * ends the session: no partial command is ever sent */
	if (buf_append(&s->out, p, n) < 0)
		log_kv(EDM_LOG_ERROR, "smtp_oom", "id=%s bytes=%zu", s->log_id, n);
}

/* Send one command line (CRLF added); shown replaces it in the log. */
static void send_cmd(struct smtp_session *s, const char *line,
                     const char *shown)
{
	size_t n = strlen(line);
	char tmp[CMD_MAX + 16];

	if (shown != NULL)
		log_line(s, 'C', shown, strlen(shown));
	else
		log_line(s, 'C', line, n);
	if (n + 2 <= sizeof tmp) {
		memcpy(tmp, line, n);
		memcpy(tmp + n, "\r\n", 2);
		out_append(s, tmp, n + 2);
	} else {
		out_append(s, line, n);
		out_append(s, "\r\n", 2);
	}
}

/* Drop pending output (wiping credentials). */
static void out_drop(struct smtp_session *s)
{
	if (s->out_wipe && s->out.data != NULL)
		wipe(s->out.data, s->out.len);
	s->out_wipe = 0;
	buf_reset(&s->out);
	s->out_off = 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 (RFC 4648, padded) of p[0..n) appended to b. 0 or -1. */
static int b64_append(struct buf *b, const unsigned char *p, size_t n)
{
	char q[4];
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		q[0] = b64_alphabet[p[i] >> 2];
		q[1] = b64_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		q[2] = b64_alphabet[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		q[3] = b64_alphabet[p[i + 2] & 63];
		if (buf_append(b, q, 4) < 0)
			return -1;
	}
	if (i < n) {
		q[0] = b64_alphabet[p[i] >> 2];
		if (i + 1 < n) {
			q[1] = b64_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			q[2] = b64_alphabet[(p[i + 1] & 15) << 2];
		} else {
			q[1] = b64_alphabet[(p[i] & 3) << 4];
			q[2] = '=';
		}
		q[3] = '=';
		if (buf_append(b, q, 4) < 0)
			return -1;
	}
	return 0;
}

/* Send "prefix base64(secret)" logged as "shown"; every copy is wiped. */
static void send_secret(struct smtp_session *s, const char *prefix,
                        const unsigned char *secret, size_t n,
                        const char *shown)
{
	struct buf b = { 0 };

	if (buf_puts(&b, prefix) == 0 && b64_append(&b, secret, n) == 0 &&
	    buf_append(&b, "\r\n", 2) == 0) {
		log_line(s, 'C', shown, strlen(shown));
		out_append(s, b.data, b.len);
		s->out_wipe = 1;
	} else {
		log_kv(EDM_LOG_ERROR, "smtp_oom", "id=%s what=auth", s->log_id);
	}
	if (b.data != NULL)
		wipe(b.data, b.cap);
	buf_free(&b);
}

/* ---- closing ---- */

/* t is over: SMTP_EV_TXN_DONE with its results. */
static void txn_done_event(struct smtp_session *s)
{
	struct smtp_event ev;

	s->t.open = 0;
	memset(&ev, 0, sizeof ev);
	ev.type = SMTP_EV_TXN_DONE;
	ev.results = s->t.results;
	ev.nresults = s->t.nresults;
	ev_push(s, &ev);
}

/* Every recipient not yet decided fails with r; SMTP_EV_TXN_DONE. */
static void txn_fail_open(struct smtp_session *s, const struct smtp_reply *r)
{
	for (size_t i = 0; i < s->t.nresults; i++) {
		if (s->t.decided[i])
			continue;
		s->t.results[i].accepted = 0;
		s->t.results[i].reply = *r;
		s->t.decided[i] = 1;
	}
	txn_done_event(s);
}

/* End now: no more bytes to or from the server. r has a stable text. */
static void close_now(struct smtp_session *s, enum smtp_close why,
                      const struct smtp_reply *r)
{
	struct smtp_event ev;

	if (s->t.open)
		txn_fail_open(s, r);
	if (s->staged) {
		/* the staged one fails the same way (its commands were sent
		 * or queued, its message never) */
		staged_take_over(s);
		txn_fail_open(s, r);
	}
	out_drop(s);
	smtp_reply_parser_reset(&s->parser);
	log_kv(EDM_LOG_DEBUG, "smtp_close", "id=%s reason=%s stage=%s code=%d",
	       s->log_id, close_names[why], stage_names[r->stage], r->code);
	state_set(s, ST_CLOSED);
	memset(&ev, 0, sizeof ev);
	ev.type = SMTP_EV_CLOSED;
	ev.close = why;
	ev.reply = *r;
	ev_push(s, &ev);
}

/* End politely: QUIT, then SMTP_EV_CLOSED with why and cause. */
static void close_quit(struct smtp_session *s, enum smtp_close why,
                       const struct smtp_reply *cause)
{
	s->quit_reason = why;
	if (cause != NULL)
		s->quit_reply = *cause;
	send_cmd(s, "QUIT", NULL);
	state_set(s, ST_QUIT);
}

/* The QUIT exchange is over (r: its reply or what ended it). */
static void quit_finish(struct smtp_session *s, const struct smtp_reply *r)
{
	if (s->quit_reason == SMTP_CLOSE_QUIT)
		close_now(s, SMTP_CLOSE_QUIT, r);
	else
		close_now(s, s->quit_reason, &s->quit_reply);
}

/* Idle again: SMTP_EV_READY, or QUIT when the driver asked for it. */
static void go_ready(struct smtp_session *s)
{
	if (s->quit_requested) {
		close_quit(s, SMTP_CLOSE_QUIT, NULL);
		return;
	}
	state_set(s, ST_READY);
	ev_simple(s, SMTP_EV_READY);
}

/* ---- handshake ---- */

static void send_ehlo(struct smtp_session *s, const char *verb,
                      enum smtp_state st)
{
	char line[CMD_MAX];

	snprintf(line, sizeof line, "%s %s", verb, s->helo);
	send_cmd(s, line, NULL);
	state_set(s, st);
}

/* Does the keyword kw start ln[0..n), followed by end, space or '='? */
static int keyword(const char *ln, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && strncasecmp(ln, kw, k) == 0 &&
	       (n == k || ln[k] == ' ' || ln[k] == '=');
}

/* Capabilities from the EHLO reply's lines (RFC 5321 4.1.1.1). */
static void parse_caps(struct smtp_session *s)
{
	size_t len, n, i;
	const char *p = smtp_reply_lines(&s->parser, &len), *end = p + len;
	const char *nl, *ln, *tok;
	int first = 1;

	s->caps = 0;
	s->size_limit = 0;
	for (; p < end; p = nl + 1, first = 0) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		if (first)
			continue; /* "domain greeting" */
		ln = p;
		n = (size_t)(nl - p);
		if (keyword(ln, n, "PIPELINING")) {
			s->caps |= SMTP_CAP_PIPELINING;
		} else if (keyword(ln, n, "8BITMIME")) {
			s->caps |= SMTP_CAP_8BITMIME;
		} else if (keyword(ln, n, "SMTPUTF8")) {
			s->caps |= SMTP_CAP_SMTPUTF8;
		} else if (keyword(ln, n, "STARTTLS")) {
			s->caps |= SMTP_CAP_STARTTLS;
		} else if (keyword(ln, n, "ENHANCEDSTATUSCODES")) {
			s->caps |= SMTP_CAP_ENHANCEDSTATUSCODES;
		} else if (keyword(ln, n, "SIZE")) {
			unsigned long v = 0;

			s->caps |= SMTP_CAP_SIZE;
			for (i = 5; i < n && ln[i] >= '0' && ln[i] <= '9'; i++) {
				unsigned d = (unsigned)(ln[i] - '0');

				v = v > (ULONG_MAX - d) / 10 ? ULONG_MAX : v * 10 + d;
			}
			s->size_limit = v;
		} else if (keyword(ln, n, "AUTH")) {
			/* "AUTH PLAIN LOGIN" or the pre-RFC "AUTH=PLAIN LOGIN" */
			for (i = 4; i < n;) {
				while (i < n && (ln[i] == ' ' || ln[i] == '='))
					i++;
				tok = ln + i;
				while (i < n && ln[i] != ' ')
					i++;
				if (keyword(tok, (size_t)(ln + i - tok), "PLAIN"))
					s->caps |= SMTP_CAP_AUTH_PLAIN;
				else if (keyword(tok, (size_t)(ln + i - tok), "LOGIN"))
					s->caps |= SMTP_CAP_AUTH_LOGIN;
			}
		}
	}
}

/* AUTH when a user name is set, else ready. */
static void auth_step(struct smtp_session *s)
{
	struct smtp_reply r;
	struct buf raw = { 0 };
	size_t ul, pl;

	if (s->username == NULL) {
		go_ready(s);
		return;
	}
	if (!s->tls_active && !s->allow_plaintext_auth) {
		r = synth(s, SMTP_STAGE_AUTH, "", "AUTH not attempted: TLS is "
		          "not active and plaintext AUTH is not allowed");
		close_quit(s, SMTP_CLOSE_AUTH, &r);
		return;
	}
	if (s->caps & SMTP_CAP_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd, as the RFC 4954
		 * initial response */
		ul = strlen(s->username);
		pl = strlen(s->password);
		if (buf_reserve(&raw, ul + pl + 2) == 0) {
			raw.data[0] = '\0';
			memcpy(raw.data + 1, s->username, ul);
			raw.data[1 + ul] = '\0';
			memcpy(raw.data + 2 + ul, s->password, pl);
			raw.len = ul + pl + 2;
			send_secret(s, "AUTH PLAIN ", (unsigned char *)raw.data,
			            raw.len, "AUTH PLAIN <redacted>");
			wipe(raw.data, raw.cap);
		}
		buf_free(&raw);
		state_set(s, ST_AUTH_PLAIN);
	} else if (s->caps & SMTP_CAP_AUTH_LOGIN) {
		send_cmd(s, "AUTH LOGIN", NULL);
		state_set(s, ST_AUTH_LOGIN);
	} else {
		r = synth(s, SMTP_STAGE_AUTH, "", "AUTH not attempted: the "
		          "server offers no mechanism edm speaks (PLAIN, LOGIN)");
		close_quit(s, SMTP_CLOSE_AUTH, &r);
	}
}

/* After a successful EHLO/HELO: STARTTLS when wanted, then AUTH. */
static void after_ehlo(struct smtp_session *s)
{
	struct smtp_reply r;

	if (!s->tls_active && (s->tls_mode == SMTP_TLS_OPPORTUNISTIC ||
	                       s->tls_mode == SMTP_TLS_STARTTLS)) {
		if (s->caps & SMTP_CAP_STARTTLS) {
			send_cmd(s, "STARTTLS", NULL);
			state_set(s, ST_STARTTLS);
			return;
		}
		if (s->tls_mode == SMTP_TLS_OPPORTUNISTIC)
			snprintf(s->plain_why, sizeof(s->plain_why),
			         "STARTTLS not offered");
		if (s->tls_mode == SMTP_TLS_STARTTLS) {
			/* never send mail in plaintext when TLS is required */
			r = synth(s, SMTP_STAGE_EHLO, "", "STARTTLS required but "
			          "not offered by the server");
			close_quit(s, SMTP_CLOSE_NO_STARTTLS, &r);
			return;
		}
	}
	auth_step(s);
}

static void on_greeting(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		send_ehlo(s, "EHLO", ST_EHLO);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		/* RFC 5321 3.1: after a 554 greeting the server waits for QUIT */
		k = reply_kept(s, r, SMTP_STAGE_GREETING);
		close_quit(s, SMTP_CLOSE_REJECTED, &k);
	} else {
		k = synth(s, SMTP_STAGE_GREETING, "", "protocol error: "
		          "unexpected greeting %d %s", r->code, r->text);
		close_now(s, SMTP_CLOSE_PROTOCOL, &k);
	}
}

static void on_ehlo(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		parse_caps(s);
		after_ehlo(s);
	} else if (r->code / 100 == 5) {
		/* 500/502/504/550: an RFC 821 server; HELO, no extensions */
		send_ehlo(s, "HELO", ST_HELO);
	} else {
		k = reply_kept(s, r, SMTP_STAGE_EHLO);
		close_quit(s, SMTP_CLOSE_REJECTED, &k);
	}
}

static void on_helo(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		s->caps = 0;
		s->size_limit = 0;
		after_ehlo(s);
	} else {
		k = reply_kept(s, r, SMTP_STAGE_EHLO);
		close_quit(s, SMTP_CLOSE_REJECTED, &k);
	}
}

static void on_starttls(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		/* RFC 3207 4.2 and CVE-2011-0411: drop whatever followed the
		 * 220 (smtp_session_feed stops reading in ST_TLS) and every
		 * pre-TLS capability */
		smtp_reply_parser_reset(&s->parser);
		s->caps = 0;
		s->size_limit = 0;
		state_set(s, ST_TLS);
		ev_simple(s, SMTP_EV_STARTTLS);
	} else if (s->tls_mode == SMTP_TLS_STARTTLS) {
		k = reply_kept(s, r, SMTP_STAGE_STARTTLS);
		close_quit(s, SMTP_CLOSE_NO_STARTTLS, &k);
	} else {
		/* opportunistic: go on in plaintext */
		snprintf(s->plain_why, sizeof(s->plain_why), "STARTTLS refused: %d %.120s",
		         r->code, r->text);
		auth_step(s);
	}
}

/* AUTH PLAIN answered, or the last step of AUTH LOGIN. */
static void on_auth_final(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		go_ready(s);
	} else {
		k = reply_kept(s, r, SMTP_STAGE_AUTH);
		close_quit(s, SMTP_CLOSE_AUTH, &k);
	}
}

/* A 334 in AUTH LOGIN: send the user name, then the password. */
static void on_auth_login(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code != 334) {
		k = reply_kept(s, r, SMTP_STAGE_AUTH);
		close_quit(s, SMTP_CLOSE_AUTH, &k);
	} else if (s->state == ST_AUTH_LOGIN) {
		send_secret(s, "", (const unsigned char *)s->username,
		            strlen(s->username), "<redacted user name>");
		state_set(s, ST_AUTH_USER);
	} else {
		send_secret(s, "", (const unsigned char *)s->password,
		            strlen(s->password), "<redacted password>");
		state_set(s, ST_AUTH_PASS);
	}
}

/* ---- transactions ---- */

/* Release the transaction's storage (results included). */
static void txn_free(struct txn *x)
{
	free(x->results);
	free(x->decided);
	free(x->rcpt_ok);
	free(x->sent);
	free(x->rcpt_off);
	buf_free(&x->mail_cmd);
	buf_free(&x->rcpt_cmds);
	buf_free(&x->body);
	memset(x, 0, sizeof *x);
}

/* Free what finished transactions left for their events: the done slot
 * and the reply texts kept before the last hand-over (submit only: event
 * pointers stay valid until the driver's next call). */
static void done_release(struct smtp_session *s)
{
	txn_free(&s->done);
	if (s->pool_release > 0) {
		for (size_t i = 0; i < s->pool_release; i++)
			free(s->pool[i]);
		memmove(s->pool, s->pool + s->pool_release,
		        (s->npool - s->pool_release) * sizeof *s->pool);
		s->npool -= s->pool_release;
		s->pool_release = 0;
	}
}

/* t is over and its TXN_DONE queued: the staged transaction becomes t
 * (its MAIL reply comes next). t's results stay in done for the event. */
static void staged_take_over(struct smtp_session *s)
{
	txn_free(&s->done);
	s->done = s->t;
	s->t = s->next;
	memset(&s->next, 0, sizeof s->next);
	s->staged = 0;
	s->pool_release = s->npool;
}

/* The transaction is over: TXN_DONE, then RSET or ready. */
static void txn_finish(struct smtp_session *s, int need_rset)
{
	txn_done_event(s);
	buf_free(&s->t.body);
	if (need_rset) {
		send_cmd(s, "RSET", NULL);
		state_set(s, ST_RSET);
	} else {
		go_ready(s);
	}
}

/* Send RCPT for sent[i]. */
static void send_rcpt(struct smtp_session *s, size_t i)
{
	const char *p = s->t.rcpt_cmds.data + s->t.rcpt_off[i];
	size_t n = s->t.rcpt_off[i + 1] - s->t.rcpt_off[i];

	log_line(s, 'C', p, n - 2);
	out_append(s, p, n);
}

static void send_data(struct smtp_session *s)
{
	send_cmd(s, "DATA", NULL);
	state_set(s, ST_DATA);
}

static void on_mail(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 != 2) {
		/* RFC 2920 3.1: after a failed MAIL the RCPT replies are not
		 * recipient verdicts; every recipient gets the MAIL reply */
		s->t.mail_failed = 1;
		k = reply_kept(s, r, SMTP_STAGE_MAIL);
		for (size_t i = 0; i < s->t.nresults; i++) {
			if (s->t.decided[i])
				continue;
			s->t.results[i].reply = k;
			s->t.decided[i] = 1;
		}
		if (!s->t.pipelined) {
			txn_finish(s, 1);
			return;
		}
	} else if (!s->t.pipelined) {
		send_rcpt(s, 0);
	}
	s->t.pos = 0;
	state_set(s, ST_RCPT);
}

static void on_rcpt(struct smtp_session *s, const struct smtp_reply *r)
{
	size_t idx = s->t.sent[s->t.pos];

	if (!s->t.mail_failed) {
		s->t.results[idx].reply = reply_kept(s, r, SMTP_STAGE_RCPT);
		if (r->code / 100 == 2) {
			s->t.rcpt_ok[idx] = 1;
			s->t.naccepted++;
		} else {
			s->t.decided[idx] = 1;
		}
	}
	s->t.pos++;
	if (s->t.pos < s->t.nsent) {
		if (!s->t.pipelined)
			send_rcpt(s, s->t.pos);
	} else if (s->t.pipelined) {
		state_set(s, ST_DATA);
	} else if (s->t.naccepted > 0) {
		send_data(s);
	} else {
		txn_finish(s, 1);
	}
}

static void on_data(struct smtp_session *s, const struct smtp_reply *r)
{
	char shown[80];
	struct smtp_reply k;

	if (r->code / 100 == 3) {
		if (!s->t.mail_failed && s->t.naccepted > 0) {
			snprintf(shown, sizeof shown, "<message, %zu bytes with "
			         "the final dot>", s->t.body.len);
			log_line(s, 'C', shown, strlen(shown));
			if (s->out_off == s->out.len && !s->out_wipe) {
				/* nothing else pending: hand the body over
				 * instead of copying it (it is not needed
				 * after this) */
				struct buf t = s->out;

				s->out = s->t.body;
				s->t.body = t;
				buf_reset(&s->t.body);
				s->out_off = 0;
			} else {
				out_append(s, s->t.body.data, s->t.body.len);
			}
			state_set(s, ST_DOT);
			if (stage_ok(s))
				ev_simple(s, SMTP_EV_BODY_SENT);
		} else {
			/* RFC 2920 3.1: no recipient, yet 354: end the
			 * (empty) data at once and ignore its reply */
			send_cmd(s, ".", NULL);
			state_set(s, ST_DOT_DISCARD);
		}
		return;
	}
	if (!s->t.mail_failed) {
		k = reply_kept(s, r, SMTP_STAGE_DATA);
		for (size_t i = 0; i < s->t.nresults; i++) {
			if (s->t.rcpt_ok[i] && !s->t.decided[i]) {
				s->t.results[i].reply = k;
				s->t.decided[i] = 1;
			}
		}
	}
	txn_finish(s, 1);
}

static void on_dot(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k = reply_kept(s, r, SMTP_STAGE_DOT);
	int ok = r->code / 100 == 2;

	for (size_t i = 0; i < s->t.nresults; i++) {
		if (s->t.rcpt_ok[i] && !s->t.decided[i]) {
			s->t.results[i].reply = k;
			s->t.results[i].accepted = ok;
			s->t.decided[i] = 1;
		}
	}
	if (s->staged) {
		/* the next transaction's MAIL, RCPT and DATA went behind this
		 * dot: their replies follow. A dot reply ends the transaction
		 * either way (RFC 5321 4.1.1.4), so no RSET, which would now
		 * reset the next one. */
		txn_done_event(s);
		staged_take_over(s);
		state_set(s, ST_MAIL);
		return;
	}
	txn_finish(s, !ok);
}

static void on_rset(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (r->code / 100 == 2) {
		go_ready(s);
	} else {
		/* the server's idea of the session no longer matches ours */
		k = reply_kept(s, r, SMTP_STAGE_RSET);
		close_quit(s, SMTP_CLOSE_PROTOCOL, &k);
	}
}

/* One complete reply from the server, in the state that awaited it. */
static void handle_reply(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_reply k;

	if (s->state == ST_QUIT) {
		k = reply_kept(s, r, SMTP_STAGE_QUIT);
		quit_finish(s, &k);
		return;
	}
	if (r->code == 421) {
		/* RFC 5321 3.8: the server is closing the channel */
		k = reply_kept(s, r, stage_of(s->state));
		close_now(s, SMTP_CLOSE_421, &k);
		return;
	}
	switch (s->state) {
	case ST_GREETING: on_greeting(s, r); break;
	case ST_EHLO: on_ehlo(s, r); break;
	case ST_HELO: on_helo(s, r); break;
	case ST_STARTTLS: on_starttls(s, r); break;
	case ST_AUTH_PLAIN:
	case ST_AUTH_PASS: on_auth_final(s, r); break;
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER: on_auth_login(s, r); break;
	case ST_MAIL: on_mail(s, r); break;
	case ST_RCPT: on_rcpt(s, r); break;
	case ST_DATA: on_data(s, r); break;
	case ST_DOT: on_dot(s, r); break;
	case ST_DOT_DISCARD: txn_finish(s, 1); break;
	case ST_RSET: on_rset(s, r); break;
	case ST_READY:
		k = synth(s, SMTP_STAGE_CONNECT, "", "protocol error: "
		          "unexpected reply while idle: %d %s", r->code, r->text);
		close_now(s, SMTP_CLOSE_PROTOCOL, &k);
		break;
	case ST_TLS:
	case ST_QUIT:
	case ST_CLOSED:
		break;
	}
}

/* ---- public API ---- */

/* 0 in a field = the default. */
static unsigned pick(unsigned v, unsigned dflt)
{
	return v != 0 ? v : dflt;
}

/* 1 when the EHLO name is a non-empty run of printable non-space ASCII. */
static int helo_ok(const char *h)
{
	if (h == NULL || *h == '\0' || strlen(h) > 255)
		return 0;
	for (; *h != '\0'; h++)
		if ((unsigned char)*h <= 0x20 || (unsigned char)*h >= 0x7f)
			return 0;
	return 1;
}

struct smtp_session *smtp_session_new(const struct smtp_session_opts *o)
{
	struct smtp_session *s;
	const struct smtp_timeouts *t;

	if (o == NULL || !helo_ok(o->helo))
		return NULL;
	t = &o->timeouts;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	smtp_reply_parser_init(&s->parser);
	s->tls_mode = o->tls;
	s->tls_active = o->tls == SMTP_TLS_IMPLICIT;
	s->allow_plaintext_auth = o->allow_plaintext_auth;
	s->no_pipelining = o->no_pipelining;
	s->to.greeting = pick(t->greeting, TO_GREETING);
	s->to.ehlo = pick(t->ehlo, TO_EHLO);
	s->to.starttls = pick(t->starttls, TO_STARTTLS);
	s->to.auth = pick(t->auth, TO_AUTH);
	s->to.mail = pick(t->mail, TO_MAIL);
	s->to.rcpt = pick(t->rcpt, TO_RCPT);
	s->to.data = pick(t->data, TO_DATA);
	s->to.data_block = pick(t->data_block, TO_DATA_BLOCK);
	s->to.dot = t->dot > TO_DOT ? t->dot : TO_DOT;
	s->to.rset = pick(t->rset, TO_RSET);
	s->to.quit = pick(t->quit, TO_QUIT);
	if ((s->helo = dupstr(o->helo)) == NULL ||
	    (s->log_id = dupstr(o->log_id != NULL ? o->log_id : "-")) == NULL)
		goto fail;
	if (o->username != NULL) {
		if ((s->username = dupstr(o->username)) == NULL ||
		    (s->password = dupstr(o->password != NULL ? o->password
		                                              : "")) == NULL)
			goto fail;
	}
	s->state = ST_GREETING;
	return s;

fail:
	smtp_session_free(s);
	return NULL;
}

void smtp_session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	txn_free(&s->t);
	txn_free(&s->next);
	txn_free(&s->done);
	pool_clear(s);
	free(s->pool);
	out_drop(s);
	buf_free(&s->out);
	smtp_reply_parser_free(&s->parser);
	if (s->password != NULL) {
		wipe(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->username);
	free(s->helo);
	free(s->log_id);
	free(s);
}

void smtp_session_feed(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_reply r, k;
	char err[200];
	size_t used;
	int rc;

	/* in ST_TLS nothing may be read: plaintext after the 220 to
	 * STARTTLS is a man in the middle's (CVE-2011-0411) */
	while (n > 0 && s->state != ST_CLOSED && s->state != ST_TLS) {
		rc = smtp_reply_parse(&s->parser, p, n, &used, &r, err,
		                      sizeof err);
		p += used;
		n -= used;
		if (rc == SMTP_REPLY_ERROR) {
			log_kv(EDM_LOG_DEBUG, "smtp_protocol", "id=%s state=%s",
			       s->log_id, state_names[s->state]);
			k = synth(s, stage_of(s->state), "", "%s", err);
			if (s->state == ST_QUIT)
				quit_finish(s, &k);
			else
				close_now(s, SMTP_CLOSE_PROTOCOL, &k);
			return;
		}
		if (rc == SMTP_REPLY_MORE)
			return;
		r.stage = stage_of(s->state);
		log_reply(s, &r);
		s->wait_seq++; /* a whole reply: the next one has its own time */
		handle_reply(s, &r);
	}
}

void smtp_session_eof(struct smtp_session *s)
{
	struct smtp_reply k;

	switch (s->state) {
	case ST_CLOSED:
		return;
	case ST_GREETING:
		k = synth(s, SMTP_STAGE_GREETING, "", "connection closed by "
		          "server before the greeting");
		break;
	case ST_READY:
		k = synth(s, SMTP_STAGE_CONNECT, "", "connection closed by "
		          "server while idle");
		break;
	case ST_TLS:
		k = synth(s, SMTP_STAGE_TLS, "", "connection closed by server "
		          "during the TLS handshake");
		break;
	default:
		k = synth(s, stage_of(s->state), "", "connection closed by "
		          "server after %s", command_of(s->state));
		break;
	}
	if (s->state == ST_QUIT)
		quit_finish(s, &k);
	else
		close_now(s, SMTP_CLOSE_EOF, &k);
}

void smtp_session_timeout(struct smtp_session *s)
{
	struct smtp_reply k;
	unsigned ms = smtp_session_timeout_ms(s);
	char span[32];

	if (ms == 0)
		return; /* not waiting: a stale timer */
	if (ms % 1000 == 0)
		snprintf(span, sizeof span, "%u s", ms / 1000);
	else
		snprintf(span, sizeof span, "%u ms", ms);
	if (s->state == ST_GREETING)
		k = synth(s, SMTP_STAGE_GREETING, "", "timeout waiting for the "
		          "greeting (%s)", span);
	else
		k = synth(s, stage_of(s->state), "", "timeout waiting for reply "
		          "to %s (%s)", command_of(s->state), span);
	if (s->state == ST_QUIT)
		quit_finish(s, &k);
	else
		close_now(s, SMTP_CLOSE_TIMEOUT, &k);
}

const char *smtp_session_plaintext_why(const struct smtp_session *s)
{
	return !s->tls_active && s->plain_why[0] ? s->plain_why : NULL;
}

unsigned long smtp_session_wait_seq(const struct smtp_session *s)
{
	return s->wait_seq;
}

unsigned smtp_session_timeout_ms(const struct smtp_session *s)
{
	switch (s->state) {
	case ST_GREETING: return s->to.greeting;
	case ST_EHLO:
	case ST_HELO: return s->to.ehlo;
	case ST_STARTTLS: return s->to.starttls;
	case ST_AUTH_PLAIN:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS: return s->to.auth;
	case ST_MAIL: return s->to.mail;
	case ST_RCPT: return s->to.rcpt;
	case ST_DATA: return s->to.data;
	case ST_DOT:
		/* the body still waits in our buffer: a data block is due */
		return s->out_off < s->out.len ? s->to.data_block : s->to.dot;
	case ST_DOT_DISCARD: return s->to.dot;
	case ST_RSET: return s->to.rset;
	case ST_QUIT: return s->to.quit;
	case ST_TLS:
	case ST_READY:
	case ST_CLOSED: break;
	}
	return 0;
}

void smtp_session_tls_done(struct smtp_session *s, int ok)
{
	struct smtp_reply k;

	if (s->state != ST_TLS)
		return;
	if (!ok) {
		k = synth(s, SMTP_STAGE_TLS, "", "TLS handshake failed");
		close_now(s, SMTP_CLOSE_TLS, &k);
		return;
	}
	s->tls_active = 1;
	/* RFC 3207 4.2: forget what was learnt in plaintext, ask again */
	send_ehlo(s, "EHLO", ST_EHLO);
}

/* 1 when addr may go between <> in a command. */
static int address_ok(const char *addr)
{
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
	return 1;
}

/*
 * 16 octets at a time with the compilers' generic vectors (GCC and clang:
 * SSE2 on x86-64, NEON on arm64, plain code elsewhere); comparisons give
 * 0xff or 0 per octet.
 */
typedef unsigned char body_v16 __attribute__((vector_size(16)));

/* Index of the first nonzero octet of a comparison result, or 16. */
static inline size_t body_v16_first(body_v16 m)
{
	uint64_t a, b;

	memcpy(&a, &m, 8);
	memcpy(&b, (const unsigned char *)&m + 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (a != 0)
		return (size_t)__builtin_ctzll(a) / 8;
	if (b != 0)
		return 8 + (size_t)__builtin_ctzll(b) / 8;
	return 16;
#else
	if ((a | b) == 0)
		return 16;
	for (size_t j = 0; j < 16; j++)
		if (m[j] != 0)
			return j;
	return 16;
#endif
}

/* Whether position i of d[0..n) needs the slow path: a CR not followed
 * by LF, an LF at i + 1 not preceded by CR, or an LF followed by '.'. */
static inline int body_irregular(const unsigned char *d, size_t i, size_t n)
{
	int next_lf = i + 1 < n && d[i + 1] == '\n';

	return (d[i] == '\r') != next_lf ||
	       (d[i] == '\n' && i + 1 < n && d[i + 1] == '.');
}

/* First irregular position (body_irregular) in d[i..n), or n. */
static size_t body_scan(const unsigned char *d, size_t i, size_t n)
{
	for (; n - i >= 17; i += 16) {
		body_v16 x, y;
		size_t j;

		memcpy(&x, d + i, sizeof(x));
		memcpy(&y, d + i + 1, sizeof(y));
		j = body_v16_first(((body_v16)(x == '\r') ^ (body_v16)(y == '\n')) |
		                   ((body_v16)(x == '\n') & (body_v16)(y == '.')));
		if (j < 16)
			return i + j;
	}
	for (; i < n; i++)
		if (body_irregular(d, i, n))
			return i;
	return n;
}

/*
 * The rest of a line from d[i] the careful way (the loop body of the plain
 * octet-by-octet writer): a '.' at a line start doubled, the text to the
 * next CR or LF copied, that line end (CR, LF or CRLF) written as CRLF.
 * Returns the next position, or (size_t)-1 when out of memory; *bol says
 * whether that position starts a line.
 */
static size_t body_line(struct buf *b, const unsigned char *d, size_t i,
                        size_t n, int *bol, size_t *stuffed)
{
	size_t run;

	if (*bol && d[i] == '.') {
		if (buf_putc(b, '.') < 0)
			return (size_t)-1;
		(*stuffed)++;
	}
	for (run = i; run < n && d[run] != '\r' && d[run] != '\n'; run++)
		;
	if (buf_append(b, d + i, run - i) < 0)
		return (size_t)-1;
	*bol = 0;
	if (run == n)
		return n;
	if (buf_append(b, "\r\n", 2) < 0)
		return (size_t)-1;
	*bol = 1;
	return run + (d[run] == '\r' && run + 1 < n && d[run + 1] == '\n' ? 2 : 1);
}

/*
 * The message as it goes after 354: bare CR and bare LF become CRLF
 * (SMTP smuggling, CVE-2023-51764), lines starting with '.' get another
 * (RFC 5321 4.5.2), a final CRLF is ensured, then ".\r\n". *size is the
 * RFC 1870 size: normalised, without the stuffing and the final dot.
 * A rendered message is CRLF throughout with a handful of lines starting
 * with '.', so it is copied in runs found 16 octets at a time, and only
 * the odd line goes octet by octet.
 */
static int body_build(struct buf *b, const char *data, size_t n, size_t *size)
{
	const unsigned char *d = (const unsigned char *)data;
	size_t i = 0, k, stuffed = 0;
	int bol = 1;

	if (buf_reserve(b, n + n / 32 + 8) < 0)
		return -1;
	while (i < n) {
		/* a '.', CR or LF at a line start is the slow path's: the
		 * scan below looks at what follows a position, not at it */
		if (bol && (d[i] == '.' || d[i] == '\r' || d[i] == '\n')) {
			if ((i = body_line(b, d, i, n, &bol, &stuffed)) == (size_t)-1)
				return -1;
			continue;
		}
		k = body_scan(d, i, n);
		/* an LF found at k ends a good CRLF (k - 1 is its CR, else
		 * k - 1 would have been found): the line after it needs care.
		 * Otherwise k - 1, if copied, is not a CR: body_line() never
		 * starts in the middle of a CRLF. */
		if (k < n && d[k] == '\n')
			k++;
		if (k > i) {
			if (buf_append(b, d + i, k - i) < 0)
				return -1;
			bol = d[k - 1] == '\n';
			i = k;
		}
		if (i < n &&
		    (i = body_line(b, d, i, n, &bol, &stuffed)) == (size_t)-1)
			return -1;
	}
	if (!bol && buf_append(b, "\r\n", 2) < 0)
		return -1;
	*size = b->len - stuffed;
	return buf_append(b, ".\r\n", 3);
}

/* Every recipient fails with the same local reply. */
static void fail_all_local(struct smtp_session *s, const struct smtp_reply *k)
{
	for (size_t i = 0; i < s->t.nresults; i++) {
		s->t.results[i].reply = *k;
		s->t.decided[i] = 1;
	}
}

/* Build t into s->t and queue its commands. stage: s->t is a fresh slot
 * the caller parked the open transaction away from; nothing may be
 * refused locally then (-1: submit it again once ready), and the state
 * stays ST_DOT. */
static int txn_start(struct smtp_session *s, const struct smtp_txn *t, int stage)
{
	struct smtp_reply k;
	char line[CMD_MAX + 64];
	size_t size, i;
	int n, local = 0;

	if (!stage) {
		txn_free(&s->t);
		txn_free(&s->done);
		pool_clear(s);
		s->pool_release = 0;
	}
	s->t.nresults = t->nrcpts;
	s->t.results = calloc(t->nrcpts, sizeof *s->t.results);
	s->t.decided = calloc(t->nrcpts, 1);
	s->t.rcpt_ok = calloc(t->nrcpts, 1);
	s->t.sent = calloc(t->nrcpts, sizeof *s->t.sent);
	s->t.rcpt_off = calloc(t->nrcpts + 1, sizeof *s->t.rcpt_off);
	if (s->t.results == NULL || s->t.decided == NULL || s->t.rcpt_ok == NULL ||
	    s->t.sent == NULL || s->t.rcpt_off == NULL ||
	    body_build(&s->t.body, t->data, t->len, &size) < 0)
		goto nomem;
	s->t.open = 1;

	/* refusals decided here, before a byte is sent */
	n = snprintf(line, sizeof line, "MAIL FROM:<%s>", t->mail_from);
	if (s->caps & SMTP_CAP_SIZE)
		n = snprintf(line, sizeof line, "MAIL FROM:<%s> SIZE=%zu",
		             t->mail_from, size);
	if (t->eight_bit && (s->caps & SMTP_CAP_8BITMIME) && n > 0 &&
	    (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - (size_t)n, " BODY=8BITMIME");
	if (t->needs_smtputf8 && n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - (size_t)n, " SMTPUTF8");
	if (t->needs_smtputf8 && !(s->caps & SMTP_CAP_SMTPUTF8)) {
		k = synth(s, SMTP_STAGE_LOCAL, "5.6.7", "not sent: the message "
		          "needs SMTPUTF8 and the server does not offer it");
		local = 1;
	} else if (!address_ok(t->mail_from)) {
		k = synth(s, SMTP_STAGE_LOCAL, "5.1.7", "not sent: the sender "
		          "address contains a control character, '<' or '>'");
		local = 1;
	} else if (n < 0 || (size_t)n + 2 > CMD_MAX) {
		k = synth(s, SMTP_STAGE_LOCAL, "5.1.7", "not sent: the MAIL "
		          "command would exceed %d octets (RFC 5321 4.5.3.1.4)",
		          CMD_MAX);
		local = 1;
	} else if ((s->caps & SMTP_CAP_SIZE) && s->size_limit > 0 &&
	           size > s->size_limit) {
		k = synth(s, SMTP_STAGE_LOCAL, "5.3.4", "not sent: message size "
		          "%zu bytes exceeds the server's SIZE limit of %lu bytes",
		          size, s->size_limit);
		local = 1;
	}
	if (local && stage)
		goto refuse;
	if (local) {
		fail_all_local(s, &k);
		txn_finish(s, 0);
		return 0;
	}
	if (buf_puts(&s->t.mail_cmd, line) < 0)
		goto nomem;
	for (i = 0; i < t->nrcpts; i++) {
		const char *a = t->rcpts[i];

		n = snprintf(line, sizeof line, "RCPT TO:<%s>\r\n", a);
		if (!address_ok(a) || n < 0 || (size_t)n > CMD_MAX) {
			if (stage)
				goto refuse;
			s->t.results[i].reply = synth(s, SMTP_STAGE_LOCAL, "5.1.3",
				"not sent: the recipient address is longer than a "
				"%d-octet command allows or contains a control "
				"character, '<' or '>'", CMD_MAX);
			s->t.decided[i] = 1;
			continue;
		}
		if (buf_append(&s->t.rcpt_cmds, line, (size_t)n) < 0)
			goto nomem;
		s->t.sent[s->t.nsent++] = i;
		s->t.rcpt_off[s->t.nsent] = s->t.rcpt_cmds.len;
	}
	if (s->t.nsent == 0) {
		txn_finish(s, 0);
		return 0;
	}

	s->t.pipelined = (s->caps & SMTP_CAP_PIPELINING) && !s->no_pipelining;
	send_cmd(s, s->t.mail_cmd.data, NULL);
	if (s->t.pipelined) {
		/* RFC 2920 3.1: MAIL, every RCPT and DATA in one write */
		for (i = 0; i < s->t.nsent; i++)
			send_rcpt(s, i);
		send_cmd(s, "DATA", NULL);
	}
	if (!stage)
		state_set(s, ST_MAIL);
	return 0;

nomem:
refuse:
	txn_free(&s->t);
	return -1;
}

/* May a transaction go behind the final dot of the open one now? */
static int stage_ok(const struct smtp_session *s)
{
	/* (t.pipelined: PIPELINING offered and not turned off) */
	return s->state == ST_DOT && s->t.open && s->t.pipelined && !s->staged &&
	       !s->quit_requested;
}

int smtp_session_can_stage(const struct smtp_session *s)
{
	return stage_ok(s);
}

int smtp_session_usable(const struct smtp_session *s)
{
	return s->state != ST_QUIT && s->state != ST_CLOSED;
}

/* A TXN_DONE not yet taken by the driver points at t and the pool. */
static int txn_done_queued(const struct smtp_session *s)
{
	for (unsigned i = 0; i < s->ev_count; i++)
		if (s->evq[(s->ev_head + i) % EVQ_MAX].type == SMTP_EV_TXN_DONE)
			return 1;
	return 0;
}

int smtp_session_submit(struct smtp_session *s, const struct smtp_txn *t)
{
	struct txn cur;
	int rc;

	if (t == NULL || t->nrcpts == 0 || t->rcpts == NULL || t->mail_from == NULL ||
	    (t->data == NULL && t->len > 0))
		return -1;
	for (size_t i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i] == NULL)
			return -1;
	if (s->state == ST_READY)
		return txn_done_queued(s) ? -1 : txn_start(s, t, 0);
	if (!stage_ok(s))
		return -1;
	/* RFC 2920 3.1: message content may begin a command group, so the
	 * next MAIL, RCPT and DATA may follow the final dot in one write */
	done_release(s);
	cur = s->t;
	memset(&s->t, 0, sizeof s->t);
	rc = txn_start(s, t, 1);
	s->next = s->t;
	s->t = cur;
	if (rc < 0) {
		txn_free(&s->next);
		return -1;
	}
	s->staged = 1;
	return 0;
}

void smtp_session_quit(struct smtp_session *s)
{
	struct smtp_reply k;

	switch (s->state) {
	case ST_READY:
		close_quit(s, SMTP_CLOSE_QUIT, NULL);
		break;
	case ST_GREETING:
		k = synth(s, SMTP_STAGE_CONNECT, "", "closed before the greeting");
		close_now(s, SMTP_CLOSE_QUIT, &k);
		break;
	case ST_TLS:
		k = synth(s, SMTP_STAGE_TLS, "", "closed during the TLS "
		          "handshake");
		close_now(s, SMTP_CLOSE_QUIT, &k);
		break;
	case ST_QUIT:
	case ST_CLOSED:
		break;
	default:
		s->quit_requested = 1;
		break;
	}
}

int smtp_session_event(struct smtp_session *s, struct smtp_event *ev)
{
	if (s->ev_count == 0)
		return 0;
	*ev = s->evq[s->ev_head];
	s->ev_head = (s->ev_head + 1) % EVQ_MAX;
	s->ev_count--;
	return 1;
}

size_t smtp_session_output(const struct smtp_session *s, const char **p)
{
	*p = s->out.data != NULL ? s->out.data + s->out_off : "";
	return s->out.len - s->out_off;
}

void smtp_session_output_done(struct smtp_session *s, size_t n)
{
	if (n > s->out.len - s->out_off)
		n = s->out.len - s->out_off;
	s->out_off += n;
	if (s->out_off == s->out.len)
		out_drop(s);
}

unsigned smtp_session_caps(const struct smtp_session *s)
{
	return s->caps;
}

unsigned long smtp_session_size_limit(const struct smtp_session *s)
{
	return s->size_limit;
}

int smtp_session_tls_active(const struct smtp_session *s)
{
	return s->tls_active;
}

const char *smtp_stage_name(enum smtp_stage st)
{
	if ((unsigned)st >= sizeof stage_names / sizeof *stage_names)
		return "?";
	return stage_names[st];
}

const char *smtp_close_name(enum smtp_close c)
{
	if ((unsigned)c >= sizeof close_names / sizeof *close_names)
		return "?";
	return close_names[c];
}
