/*
 * conn.h - the only module that touches sockets (besides c-ares inside
 * engine/dns.c): outgoing SMTP client connections driven by
 * engine/smtp_session.c and engine/tls.c, and a listening server for
 * `edm sink` and `edm track` driven by an I/O-free handler (with optional
 * timeouts, a connection cap and a graceful stop).
 *
 * Contract: every callback runs on the loop thread. Handles are freed only
 * in their uv_close callbacks; a conn is never freed inside a nested
 * callback (it is flagged and freed after the dispatcher returns).
 */
#ifndef EDM_CONN_H
#define EDM_CONN_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "smtp_session.h"

struct tls_config;

/* ---- client side (edm send) ---- */

/* How a client connection ended. */
enum conn_end {
	CONN_END_SESSION = 0,    /* the SMTP session ended: see close/reply */
	CONN_END_REFUSED,        /* connect failed (refused, unreachable) */
	CONN_END_CONNECT_TIMEOUT,/* no TCP connection within the timeout */
	CONN_END_NETWORK,        /* read/write error (reset) */
	CONN_END_TLS,            /* implicit TLS handshake failed */
};

struct conn_end_info {
	enum conn_end end;
	enum smtp_close close;   /* CONN_END_SESSION */
	struct smtp_reply reply; /* the reply that ended it (code 0: none) */
	const char *text;        /* a sentence for results/logs */
	int greeted;             /* 1 once the session reached READY */
};

struct conn;

struct conn_client_ops {
	/* Idle and greeted: call conn_submit() or conn_quit() (now or later). */
	void (*ready)(void *arg, struct conn *c);
	/* The submitted transaction ended. */
	void (*txn_done)(void *arg, struct conn *c,
	                 const struct smtp_rcpt_result *r, size_t n);
	/* The connection is over; c is freed after this returns. */
	void (*closed)(void *arg, struct conn *c, const struct conn_end_info *e);
	/* Optional (NULL: not told): the submitted message and its final dot
	 * are queued; conn_submit() now stages the next transaction behind
	 * them (pipelining across messages, smtp_session.h). Not called
	 * unless the server offers PIPELINING. */
	void (*body_sent)(void *arg, struct conn *c);
};

struct conn_target {
	const struct sockaddr *addr;     /* with the port set */
	const char *host;                /* name for SNI, verification, logs */
	const char *source_ip;           /* bind before connect, or NULL */
	enum smtp_tls_mode tls;
	struct tls_config *tls_config;   /* client config (verify or not) */
	unsigned connect_timeout_ms;
	struct smtp_session_opts session;/* copied */
};

/* Start connecting. NULL on allocation failure (nothing to close). */
struct conn *conn_open(uv_loop_t *loop, const struct conn_target *t,
                       const struct conn_client_ops *ops, void *arg);

/* Submit a transaction after ready(), or stage one after body_sent()
 * (until the open one's txn_done()). 0, or -1: not now (for a staged
 * submit: try again after ready()). */
int conn_submit(struct conn *c, const struct smtp_txn *t);

/* Hold the session's output (from body_sent(), while the next message is
 * still being made): nothing is written until conn_release(), so that the
 * next transaction staged meanwhile leaves in the same write as the final
 * dot (one segment and one reply per message instead of two). The hold
 * ends with conn_release(), conn_quit(), the session's next READY or the
 * connection's end; the caller must release it even when it stages
 * nothing. conn_release() writes what is pending, so a write error may
 * call closed() before it returns (inside a callback the write is left
 * to the pump that delivered it); a no-op when nothing is held. */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);

/* The session's capabilities (enum smtp_cap; 0 before EHLO). */
unsigned conn_caps(const struct conn *c);

/* 1 when conn_submit() now would stage behind the open transaction's dot
 * (smtp_session_can_stage). */
int conn_can_stage(const struct conn *c);

/* 1 while the connection may still carry a transaction (no QUIT sent, not
 * closing, even if the events saying so are not delivered yet). */
int conn_open_session(const struct conn *c);

/* Polite end: QUIT when idle. */
void conn_quit(struct conn *c);

/* Close now (shutdown): closed() still follows. */
void conn_abort(struct conn *c);

/* "TLSv1.3", "TLSv1.3 unverified", or "none". */
const char *conn_tls_desc(const struct conn *c);

/* Opportunistic TLS skipped on this connection: why; else NULL. */
const char *conn_plaintext_why(const struct conn *c);

/* "host[addr]:port" for results. */
const char *conn_peer(const struct conn *c);

/* The caller's per-connection pointer. */
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);

/* ---- server side (edm sink, edm track) ---- */

/* Per accepted connection: open() makes the handler's state and may put
 * a greeting into out (peer: the numeric address, an IPv4-mapped IPv6
 * address written as IPv4); data() gets the peer's bytes and appends its
 * reply bytes to out, returning 1 to close after out is written, 0 to go
 * on; close() frees the state: the handler is done (it asked to close,
 * the peer closed, a timeout, a stop), and no callback gets the state
 * after it. The socket itself may stay open a little longer: replies are
 * written, then the write side is shut down and input is discarded until
 * the peer closes (at most 2 s), so a reset cannot destroy a reply.
 * Optional (NULL = none): busy() says whether the handler holds an
 * unfinished request (which request_ms bounds; idle_ms bounds the time
 * between requests); timeout() runs when either limit is hit, before the
 * connection is closed, and may append last words (an HTTP 408) to out. */
struct conn_server_ops {
	void *(*open)(void *arg, const char *peer, struct buf *out);
	int (*data)(void *state, const char *p, size_t n, struct buf *out);
	void (*close)(void *state);
	int (*busy)(void *state);
	void (*timeout)(void *state, struct buf *out);
};

/* Limits of a listener's connections; all zero (the default) = none. */
struct conn_server_limits {
	unsigned max_conns;  /* open connections at once; past it new ones
	                        wait in the kernel's listen backlog until one
	                        closes */
	unsigned idle_ms;    /* close after this long with no request in
	                        progress (from accept or the last reply) */
	unsigned request_ms; /* an unfinished request must be complete this
	                        long after its first byte (or the last reply,
	                        for a client that pipelines) */
};

struct conn_listener;

/* Listen on "host:port" (port 0 = any free port). 0 and *out, or -1 with
 * err. *port_out (may be NULL) gets the bound port. */
int conn_listen(uv_loop_t *loop, const char *hostport,
                const struct conn_server_ops *ops, void *arg,
                struct conn_listener **out, unsigned *port_out,
                char *err, size_t errlen);

/* Set the limits (before the loop runs; copied). */
void conn_listener_set_limits(struct conn_listener *l,
                              const struct conn_server_limits *lim);

/* Connections open now (including those being closed). */
unsigned conn_listener_count(const struct conn_listener *l);

/* Graceful stop: no new connections; a connection between requests is
 * closed at once (after its replies are written), a busy one once its
 * request is answered (or its request_ms passes). l stays valid:
 * conn_listener_close() must still be called. NULL is a no-op. */
void conn_listener_shutdown(struct conn_listener *l);

/* Stop listening and close every accepted connection at once (their
 * close() callbacks run), and release l (do not use it afterwards); the
 * loop must run to free. NULL is a no-op. */
void conn_listener_close(struct conn_listener *l);

#endif
