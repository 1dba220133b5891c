/*
 * smtp_server.h - one SMTP server session (RFC 5321) as an I/O-free state
 * machine: the client's bytes in, reply bytes and "message complete"
 * callbacks out. It is the protocol core of `edm sink`, the local capture
 * server that accepts every message; engine/conn.c owns the socket and
 * campaign/sink.c stores the messages.
 *
 * Life of a session:
 *   new -> smtp_server_greeting() ("220 NAME ESMTP edm sink")
 *   -> EHLO/HELO -> [AUTH PLAIN|LOGIN] -> MAIL FROM -> RCPT TO ... -> DATA
 *   -> 354 -> message -> CRLF.CRLF -> on_message() -> "250 2.0.0 Ok:
 *   queued as ID" -> MAIL ... -> QUIT -> 221, close.
 *
 * Contract:
 * - smtp_server_feed() takes every byte the client sent, in any split
 *   (down to one byte at a time), and never keeps pointers into it. Many
 *   commands in one chunk (PIPELINING, RFC 2920) are answered in order; the
 *   replies are appended to 'out', which the driver writes. The bytes after
 *   a DATA that got 354 are message data, even in the same chunk.
 * - Commands: EHLO, HELO, MAIL FROM:<path> [params], RCPT TO:<path>, DATA,
 *   RSET, NOOP, QUIT, VRFY (252), HELP, AUTH. Anything else is "502 5.5.2";
 *   a command out of order "503 5.5.1"; a malformed one "501 5.5.4"; a
 *   line longer than SMTP_SERVER_LINE_MAX "500 5.5.2" (the rest of that
 *   line is discarded, never buffered). Command lines end with CRLF; a bare
 *   LF is accepted there. After limits.max_errors protocol error replies
 *   (500..504) the session says 421 and closes (a peer that speaks no
 *   SMTP); policy refusals (452, 552) do not count.
 * - EHLO offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
 *   AUTH PLAIN LOGIN and HELP; never STARTTLS (the sink is for loopback).
 * - AUTH PLAIN and AUTH LOGIN (with or without an initial response) accept
 *   ANY credentials with 235, so a campaign configured with a relay's
 *   username and password runs unchanged against the sink. The credentials
 *   are never stored, logged or passed on: the line buffer holding them is
 *   wiped after each AUTH line. ("*" cancels, RFC 4954: 501 5.7.0.)
 * - MAIL params: SIZE=n larger than limits.max_size is refused (552 5.3.4);
 *   other params (BODY=, SMTPUTF8, AUTH=, ...) are accepted and ignored.
 *   Paths without angle brackets are tolerated; a source route
 *   "<@a,@b:user@c>" is dropped (RFC 5321 4.1.1.3 says ignore it).
 * - RCPT: any address is accepted; more than limits.max_rcpts in one
 *   transaction get 452 4.5.3 (the client sends the rest later).
 * - Message data ends at CRLF "." CRLF only (a bare LF never ends it or
 *   starts a line, so no SMTP smuggling); a leading "." of a line (after
 *   CRLF) is removed (RFC 5321 4.5.2). The message is otherwise kept byte
 *   for byte. More than limits.max_size octets: 552 5.3.4 after the final
 *   "." (the excess is read and dropped, not stored).
 * - Per accepted message on_message() runs once, synchronously inside
 *   smtp_server_feed(); its pointers are valid only during the call. It
 *   returns 0 (stored: 250 "queued as" the id it wrote) or -1 (not stored:
 *   451 4.3.0, the client will retry).
 * - smtp_server_feed() returns SMTP_SERVER_CLOSE when the connection must
 *   be closed once 'out' is written (QUIT, 421, out of memory); every
 *   later call returns SMTP_SERVER_CLOSE and adds nothing.
 * What it does not do: sockets, timeouts (the driver closes idle peers),
 * TLS, storage (the on_message callback stores), DSN, BDAT/CHUNKING.
 */
#ifndef EDM_SMTP_SERVER_H
#define EDM_SMTP_SERVER_H

#include <stddef.h>

#include "buf.h"

/* 4096 octets per command line counting CRLF: eight times RFC 5321's 512
 * (4.5.3.1.4), room for long AUTH PLAIN responses and SMTPUTF8 paths,
 * yet a bound on what a peer can make us buffer before its LF. */
#define SMTP_SERVER_LINE_MAX 4096
/* 50 MiB: above what any mailbox provider accepts (Gmail 25 MB after
 * base64 growth, Outlook 35 MB), so a campaign that passes here is not
 * refused for size by the sink first. Messages are held in memory. */
#define SMTP_SERVER_MAX_SIZE_DEFAULT ((size_t)50 * 1024 * 1024)
/* 1000 recipients per transaction: ten times RFC 5321's minimum of 100
 * (4.5.3.1.8), Postfix's smtpd_recipient_limit default. */
#define SMTP_SERVER_MAX_RCPTS_DEFAULT 1000
/* 20 error replies, then 421: Postfix's smtpd_hard_error_limit. */
#define SMTP_SERVER_MAX_ERRORS_DEFAULT 20

/* Limits of one session; 0 in any field = the default above. */
struct smtp_server_limits {
	size_t max_size;         /* octets per message, after un-stuffing */
	size_t max_rcpts;        /* RCPT TO per transaction */
	unsigned max_errors;     /* 500..504 replies before 421 */
};

/* One accepted message, as on_message() sees it. */
struct smtp_server_msg {
	const char *helo;        /* the EHLO/HELO argument */
	const char *from;        /* reverse-path without <>; "" = null sender */
	const char *const *rcpts;  /* forward-paths without <>, in RCPT order */
	size_t nrcpts;
	const char *data;        /* the message: dot-stuffing undone, without
	                            the final ".\r\n"; NUL-terminated after
	                            size (the NUL is not part of it) */
	size_t size;
	int authenticated;       /* 1 after AUTH (no name is kept) */
};

/*
 * Store one message. Return 0 when stored, after writing a printable
 * ASCII queue id (NUL-terminated) into id[idlen] for the reply "250 2.0.0
 * Ok: queued as ID" (left empty: "250 2.0.0 Ok: queued"); -1 when it could
 * not be stored (451 4.3.0). Must not call smtp_server_* on this session
 * other than smtp_server_shutdown().
 */
typedef int (*smtp_server_msg_fn)(void *arg, const struct smtp_server_msg *m,
                                  char *id, size_t idlen);

struct smtp_server_opts {
	const char *name;        /* host name in 220/250/221; NULL = localhost */
	struct smtp_server_limits limits;
	smtp_server_msg_fn on_message;  /* required */
	void *arg;               /* passed to on_message */
};

/* What smtp_server_feed() wants from the driver. */
enum smtp_server_status {
	SMTP_SERVER_GO_ON = 0,   /* keep reading */
	SMTP_SERVER_CLOSE = 1,   /* write 'out', then close the connection */
};

struct smtp_server;

/* A new session (opts are copied). NULL on allocation failure or without
 * on_message. */
struct smtp_server *smtp_server_new(const struct smtp_server_opts *o);

/* Free the session and any partial message. NULL is a no-op. */
void smtp_server_free(struct smtp_server *s);

/* Append the greeting: "220 NAME ESMTP edm sink", or "421 4.3.2 NAME
 * Service shutting down" after smtp_server_shutdown() (the next feed then
 * returns SMTP_SERVER_CLOSE). Returns enum smtp_server_status. */
int smtp_server_greeting(struct smtp_server *s, struct buf *out);

/* Consume the client's bytes p[0..n), append the replies to out. Returns
 * enum smtp_server_status. */
int smtp_server_feed(struct smtp_server *s, const char *p, size_t n,
                     struct buf *out);

/* The server is going away: the next command other than QUIT is answered
 * "421 4.3.2 NAME Service shutting down" and the session closes. A message
 * being received (after 354) is finished and delivered first. */
void smtp_server_shutdown(struct smtp_server *s);

/* Messages accepted (on_message returned 0) in this session. */
unsigned long smtp_server_messages(const struct smtp_server *s);

#endif
