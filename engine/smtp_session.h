/*
 * smtp_session.h - one SMTP client session (RFC 5321) as an I/O-free state
 * machine: server bytes in, client bytes and events out. engine/conn.c is
 * the only caller that owns a socket; tests drive the session with scripted
 * server bytes and no sockets.
 *
 * Life of a session:
 *   new -> (greeting) -> EHLO (HELO fallback on 5xx to EHLO) -> [STARTTLS ->
 *   SMTP_EV_STARTTLS, driver runs the TLS handshake, smtp_session_tls_done()
 *   -> EHLO again] -> [AUTH PLAIN|LOGIN] -> SMTP_EV_READY
 *   READY -> smtp_session_submit() -> MAIL/RCPT.../DATA (pipelined in one
 *   write when PIPELINING is offered) -> body -> "." [-> SMTP_EV_BODY_SENT:
 *   the next transaction may be staged behind the dot] -> SMTP_EV_TXN_DONE ->
 *   (RSET when the transaction failed) -> SMTP_EV_READY ... ->
 *   smtp_session_quit() -> QUIT -> SMTP_EV_CLOSED.
 * Any 421, EOF, protocol violation, timeout or reply over the caps ends the
 * session: an outstanding transaction gets SMTP_EV_TXN_DONE (every recipient
 * failed soft, with the 421 reply or a synthetic code 0 reply saying what
 * happened), then SMTP_EV_CLOSED.
 *
 * Contract:
 * - smtp_session_feed() takes every byte the server sent (any split, down to
 *   one byte at a time) and never keeps pointers into it.
 * - After smtp_session_feed()/submit()/quit()/tls_done()/timeout(), the
 *   driver drains events with smtp_session_event() until it returns 0, and
 *   writes smtp_session_output() bytes (then smtp_session_output_done()).
 * - Event pointers (reply text, results) stay valid until the next call of
 *   any smtp_session_* function other than smtp_session_event().
 * - On the 220 reply to STARTTLS, every byte the server sent after that
 *   reply (in the same feed or buffered) is discarded (CVE-2011-0411), the
 *   pre-TLS capabilities are forgotten, and SMTP_EV_STARTTLS is emitted; the
 *   driver must not feed plaintext again; after its handshake it calls
 *   smtp_session_tls_done(ok), and the session re-issues EHLO.
 * - Commands are at most 512 octets with CRLF (RFC 5321 4.5.3.1.4); a reply
 *   line over 4096 octets or a reply over 65536 octets is a protocol error
 *   that ends the session. Reply text is stored as valid UTF-8 (other bytes
 *   escaped as \xHH), lines of a multi-line reply joined by a single space
 *   after stripping each line's "NNN-"/"NNN " and the repeated enhanced code.
 * - AUTH payloads never appear in logs or transcripts (redacted).
 * - Timeouts: the session says how long it is willing to wait for what it is
 *   waiting for now (smtp_session_timeout_ms); the driver arms one timer and
 *   calls smtp_session_timeout() when it fires. A timeout bounds the whole
 *   reply, not the silence between its bytes (smtp_session_wait_seq).
 * What it does not do: sockets, TLS itself, DNS, retries, classification
 * (engine/classify.c decides what a reply means; the session only reports).
 */
#ifndef EDM_SMTP_SESSION_H
#define EDM_SMTP_SESSION_H

#include <stddef.h>

enum smtp_tls_mode {
	SMTP_TLS_NONE = 0,       /* never STARTTLS */
	SMTP_TLS_OPPORTUNISTIC,  /* STARTTLS when offered, else plaintext */
	SMTP_TLS_STARTTLS,       /* STARTTLS required: missing -> fail */
	SMTP_TLS_IMPLICIT,       /* the driver did TLS before the greeting */
};

/* Per-wait timeouts in ms (RFC 5321 4.5.3.2 defaults in docs/config.md).
 * 0 in any field = the default. dot is never below 600000 (RFC 1047). */
struct smtp_timeouts {
	unsigned greeting, ehlo, starttls, auth, mail, rcpt, data,
	         data_block, dot, rset, quit;
};

struct smtp_session_opts {
	const char *helo;          /* EHLO name (required) */
	enum smtp_tls_mode tls;
	const char *username;      /* NULL = no AUTH */
	const char *password;      /* copied; wiped on free */
	int allow_plaintext_auth;  /* AUTH without TLS only when 1 */
	int no_pipelining;         /* 1 = never pipeline (for benchmarks) */
	struct smtp_timeouts timeouts;
	const char *log_id;        /* "c12" for key=value logs, may be NULL */
};

/* Capabilities seen in the last EHLO (bit set). */
enum smtp_cap {
	SMTP_CAP_PIPELINING = 1u << 0,
	SMTP_CAP_SIZE = 1u << 1,
	SMTP_CAP_8BITMIME = 1u << 2,
	SMTP_CAP_SMTPUTF8 = 1u << 3,
	SMTP_CAP_STARTTLS = 1u << 4,
	SMTP_CAP_AUTH_PLAIN = 1u << 5,
	SMTP_CAP_AUTH_LOGIN = 1u << 6,
	SMTP_CAP_ENHANCEDSTATUSCODES = 1u << 7,
};

/* Which command a result came from. */
enum smtp_stage {
	SMTP_STAGE_CONNECT = 0,  /* greeting / before a session existed */
	SMTP_STAGE_GREETING,
	SMTP_STAGE_EHLO,
	SMTP_STAGE_STARTTLS,
	SMTP_STAGE_TLS,          /* handshake failed (driver said so) */
	SMTP_STAGE_AUTH,
	SMTP_STAGE_MAIL,
	SMTP_STAGE_RCPT,
	SMTP_STAGE_DATA,         /* reply to DATA (354 expected) */
	SMTP_STAGE_DOT,          /* reply to the final "." */
	SMTP_STAGE_RSET,
	SMTP_STAGE_QUIT,
	SMTP_STAGE_LOCAL,        /* refused before sending: SIZE, SMTPUTF8 */
};

/* Why a session ended (SMTP_EV_CLOSED). */
enum smtp_close {
	SMTP_CLOSE_QUIT = 0,     /* normal: QUIT answered or sent */
	SMTP_CLOSE_421,          /* server said 421 (reply has it) */
	SMTP_CLOSE_EOF,          /* server closed the connection */
	SMTP_CLOSE_TIMEOUT,      /* smtp_session_timeout() */
	SMTP_CLOSE_PROTOCOL,     /* garbage, oversize reply, out-of-sequence */
	SMTP_CLOSE_REJECTED,     /* 5xx/4xx greeting or EHLO+HELO refused */
	SMTP_CLOSE_NO_STARTTLS,  /* tls = starttls but not offered, or 454 */
	SMTP_CLOSE_TLS,          /* handshake failed (tls_done(0)) */
	SMTP_CLOSE_AUTH,         /* AUTH refused, or not possible (no TLS,
	                            no mechanism we speak) */
};

/* A parsed reply. code 0 = synthetic (no reply: EOF, timeout, local). */
struct smtp_reply {
	int code;
	char enhanced[16];       /* "5.1.1" or "" */
	const char *text;        /* UTF-8, single line, without code/enhanced */
	enum smtp_stage stage;
};

/* One recipient's result in a finished transaction. */
struct smtp_rcpt_result {
	int accepted;            /* 1 = the server took the message for it */
	struct smtp_reply reply; /* the reply that decided it: the RCPT reply
	                            when RCPT failed, else the MAIL/DATA/dot
	                            reply or the synthetic/421 one */
};

enum smtp_event_type {
	SMTP_EV_READY = 1,       /* idle: submit a transaction or quit */
	SMTP_EV_STARTTLS,        /* start the TLS handshake now */
	SMTP_EV_TXN_DONE,        /* the submitted transaction is over */
	SMTP_EV_CLOSED,          /* the session is over; close the socket */
	SMTP_EV_BODY_SENT,       /* the message and its "." are in the output:
	                            a transaction submitted now is staged
	                            behind them (PIPELINING only) */
};

struct smtp_event {
	enum smtp_event_type type;
	/* SMTP_EV_TXN_DONE: one result per recipient, in submit order */
	const struct smtp_rcpt_result *results;
	size_t nresults;
	/* SMTP_EV_CLOSED: why, and the reply that caused it (code 0 if none) */
	enum smtp_close close;
	struct smtp_reply reply;
};

/* A transaction: envelope plus message. The session copies what it needs
 * during smtp_session_submit(); the caller may free afterwards. */
struct smtp_txn {
	const char *mail_from;   /* address without <>; "" = null sender */
	const char *const *rcpts;
	size_t nrcpts;
	const char *data;        /* the message, CRLF, not dot-stuffed */
	size_t len;
	int needs_smtputf8;      /* envelope has non-ASCII */
	int eight_bit;           /* body has 8-bit bytes: BODY=8BITMIME */
};

struct smtp_session;

/* New session waiting for the greeting. NULL on allocation failure. */
struct smtp_session *smtp_session_new(const struct smtp_session_opts *o);

/* Free; wipes the password. NULL is a no-op. */
void smtp_session_free(struct smtp_session *s);

/* Server bytes (plaintext: after TLS decryption when TLS is on). */
void smtp_session_feed(struct smtp_session *s, const char *p, size_t n);

/* The server closed the connection. */
void smtp_session_eof(struct smtp_session *s);

/* The timer for smtp_session_timeout_ms() fired. */
void smtp_session_timeout(struct smtp_session *s);

/* How long to wait for the server now, ms; 0 = not waiting. */
unsigned smtp_session_timeout_ms(const struct smtp_session *s);

/* With tls = opportunistic, why this session went on in plaintext
 * ("STARTTLS not offered", "STARTTLS refused: 454 ..."); NULL otherwise. */
const char *smtp_session_plaintext_why(const struct smtp_session *s);

/* Changes whenever the session starts waiting for something new (a state
 * change, a complete reply). The driver restarts its timer only when this
 * or smtp_session_timeout_ms() changes, never merely because bytes
 * arrived: a server trickling a reply that never ends (or one byte a
 * minute) cannot hold the connection past the timeout. */
unsigned long smtp_session_wait_seq(const struct smtp_session *s);

/* The TLS handshake the driver ran after SMTP_EV_STARTTLS: ok 1/0. */
void smtp_session_tls_done(struct smtp_session *s, int ok);

/*
 * Start a transaction; only after SMTP_EV_READY, and not while an
 * SMTP_EV_TXN_DONE is still queued (its results would be freed). Returns
 * 0, or -1 when not ready. A message larger than the server's SIZE, or needing SMTPUTF8
 * the server lacks, finishes at once (SMTP_EV_TXN_DONE, stage LOCAL, code
 * 0, enhanced "5.3.4" / "5.6.7", nothing sent).
 */
int smtp_session_submit(struct smtp_session *s, const struct smtp_txn *t);

/*
 * Pipelining across messages (RFC 2920 3.1: message content may begin a
 * command group). Once the open transaction's body and "." are in the
 * output (SMTP_EV_BODY_SENT, then until its dot reply), with PIPELINING
 * offered and no QUIT asked for, smtp_session_submit() also takes ONE
 * more transaction: its MAIL, RCPT and DATA go out behind the dot, and
 * its replies are read after the dot reply, which then never triggers an
 * RSET (a dot reply ends a transaction either way). The open one's
 * SMTP_EV_TXN_DONE comes first, then the staged one runs as if submitted
 * at READY (no SMTP_EV_READY between them). A staged submit that would
 * be refused locally (SIZE, SMTPUTF8, a bad address) returns -1 and
 * changes nothing: submit it again after SMTP_EV_READY. When the session
 * ends early (421, EOF, timeout), both transactions get SMTP_EV_TXN_DONE,
 * in order. At most one message per session is ever past its final dot
 * without a reply, as without staging.
 * Returns 1 while a staged submit may be taken now.
 */
int smtp_session_can_stage(const struct smtp_session *s);

/* 1 while the session may still carry a transaction: not QUIT sent, not
 * closed (a 421, EOF or timeout closes it before the driver has drained
 * the events saying so). */
int smtp_session_usable(const struct smtp_session *s);

/* Send QUIT when idle (or close at once when nothing was said yet). */
void smtp_session_quit(struct smtp_session *s);

/* Next event: 1 and *ev filled, or 0 when none is queued. */
int smtp_session_event(struct smtp_session *s, struct smtp_event *ev);

/* Bytes to send now (plaintext: the driver encrypts when TLS is on). */
size_t smtp_session_output(const struct smtp_session *s, const char **p);

/* The driver took n bytes of the output. */
void smtp_session_output_done(struct smtp_session *s, size_t n);

/* Capabilities of the current EHLO; the server's SIZE (0 = none/unlimited). */
unsigned smtp_session_caps(const struct smtp_session *s);
unsigned long smtp_session_size_limit(const struct smtp_session *s);

/* 1 once TLS is on (implicit or after STARTTLS). */
int smtp_session_tls_active(const struct smtp_session *s);

/* Names for logs. */
const char *smtp_stage_name(enum smtp_stage st);
const char *smtp_close_name(enum smtp_close c);

#endif
