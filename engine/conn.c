/*
 * conn.c - sockets: outgoing SMTP connections (libuv TCP + engine/tls.c +
 * engine/smtp_session.c) and the listening server of `edm sink` and
 * `edm track`.
 *
 * Client data flow:
 *   uv read -> [tls_feed/tls_read] -> smtp_session_feed -> pump():
 *   events -> scheduler callbacks; output -> [tls_write/tls_take] -> uv_write
 * pump() runs after every input (bytes, EOF, timer, submit, quit); it is
 * re-entrancy safe: a callback that submits or quits only marks work, the
 * outer pump loop picks it up. A connection is freed only from the close
 * callback of its last handle, never inside a nested callback (STYLE 5).
 * Every uv_write owns its buffer and frees it in its callback.
 *
 * Server data flow: accept (or, at the connection cap, leave the
 * connection to libuv until one closes) -> open(); uv read -> data() ->
 * replies queued; after each data() the idle or request timer is armed
 * from busy() and whether a reply was written. Every end but a network
 * error is graceful (srv_finish): the handler's close() runs at once,
 * the replies drain, the write side is shut, and input is discarded until
 * EOF or the linger time. A srv_conn is freed from its last handle's
 * close callback, the listener when its owner, its handle and every
 * srv_conn are gone.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tls.h"

enum cstate {
	CS_CONNECTING = 0,
	CS_TLS_HANDSHAKE,   /* implicit TLS or after STARTTLS */
	CS_SESSION,
	CS_CLOSING,
};

static const char *const cstate_names[] = {
	"connecting", "tls-handshake", "session", "closing",
};

struct conn {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	int handles;              /* open handles; free at 0 */
	enum cstate state;
	struct smtp_session *s;
	struct tls *tls;
	struct tls_config *tls_config;
	enum smtp_tls_mode tls_mode;
	int tls_on;
	char tls_desc[48];
	char host[256];
	char peer[340];
	const struct conn_client_ops *ops;
	void *arg;
	void *data;
	int in_pump, again;
	int held;                 /* conn_hold(): session output not written */
	unsigned wait_ms;          /* session timer armed for (0: not armed) */
	unsigned long wait_seq;
	int greeted;
	int ended;                /* closed() called */
	struct conn_end_info end;
	char end_text[600];
	unsigned connect_timeout_ms;
	unsigned long id;
	int pending_fail;         /* conn_open failed: report from the timer */
};

static unsigned long conn_ids;

/* This is the ONLY way to change a connection's state. */
static void conn_state(struct conn *c, enum cstate st)
{
	if (log_enabled(EDM_LOG_DEBUG))
		log_kv(EDM_LOG_DEBUG, "conn-state", "conn=%lu from=%s to=%s", c->id,
		       cstate_names[c->state], cstate_names[st]);
	c->state = st;
}

static void handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles == 0) {
		smtp_session_free(c->s);
		tls_free(c->tls);
		free(c);
	}
}

/* Report the end once, then close the handles. */
static void conn_finish(struct conn *c, enum conn_end end, const char *text)
{
	if (c->state == CS_CLOSING)
		return;
	conn_state(c, CS_CLOSING);
	if (!c->ended) {
		c->ended = 1;
		c->end.end = end;
		c->end.greeted = c->greeted;
		if (text != NULL) {
			snprintf(c->end_text, sizeof(c->end_text), "%s", text);
			c->end.text = c->end_text;
		}
		c->ops->closed(c->arg, c, &c->end);
	}
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

/* Queue n bytes on a stream; the request owns its copy and frees it in
 * write_done. */
static int write_copy(uv_stream_t *st, const void *p, size_t n)
{
	uv_write_t *w;
	uv_buf_t b;

	if (n == 0)
		return 0;
	w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return -1;
	memcpy(w + 1, p, n);
	b = uv_buf_init((char *)(w + 1), (unsigned)n);
	if (uv_write(w, st, &b, 1, write_done) < 0) {
		free(w);
		return -1;
	}
	return 0;
}

/* Write at once what the socket takes (uv_try_write: no request, no copy,
 * no poll change; it refuses while earlier writes are queued, so order is
 * kept), and queue a copy of the rest. A write error is left to uv_write
 * and the read side, so a reply the server sent before closing (a 421)
 * is still read and counts. */
static int net_write(struct conn *c, const void *p, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	int w;

	if (n == 0)
		return 0;
	w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (w == (int)n)
		return 0;
	if (w < 0) /* EAGAIN; an error shows again in uv_write, as before */
		w = 0;
	return write_copy((uv_stream_t *)&c->tcp, (const char *)p + w, n - (size_t)w);
}

/* Move the TLS engine's ciphertext to the socket. */
static int flush_tls(struct conn *c)
{
	char buf[16384];
	size_t n;

	while (c->tls != NULL && (n = tls_take(c->tls, buf, sizeof(buf))) > 0)
		if (net_write(c, buf, n) < 0)
			return -1;
	return 0;
}

static void on_timer(uv_timer_t *t);
static void pump(struct conn *c);

/* Session output -> (TLS) -> socket. */
static int flush_session(struct conn *c)
{
	const char *p;
	size_t n;

	if (c->held)
		return 0;
	if ((n = smtp_session_output(c->s, &p)) == 0)
		return 0;
	if (c->tls_on) {
		if (tls_write(c->tls, p, n) != TLS_OK || flush_tls(c) < 0)
			return -1;
	} else if (net_write(c, p, n) < 0)
		return -1;
	smtp_session_output_done(c->s, n);
	return 0;
}

static void tls_set_desc(struct conn *c)
{
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s%s", tls_version(c->tls),
	         tls_verified(c->tls) ? "" : " unverified");
}

/* Start a handshake (implicit TLS, or after the 220 to STARTTLS). */
static int start_tls(struct conn *c)
{
	c->tls = tls_new(c->tls_config, c->host);
	if (c->tls == NULL)
		return -1;
	conn_state(c, CS_TLS_HANDSHAKE);
	if (tls_handshake(c->tls) == TLS_ERR)
		return -1;
	/* the handshake is bounded by the connect timeout */
	uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
	c->wait_ms = 0; /* the next pump re-arms for the session */
	return flush_tls(c);
}

/* Drain session events and output; the one place events are delivered. */
static void pump(struct conn *c)
{
	struct smtp_event ev;

	if (c->in_pump) {
		c->again = 1;
		return;
	}
	c->in_pump = 1;
	do {
		c->again = 0;
		while (c->state != CS_CLOSING && smtp_session_event(c->s, &ev)) {
			switch (ev.type) {
			case SMTP_EV_READY:
				c->greeted = 1;
				c->held = 0; /* nothing left to hold for */
				if (flush_session(c) < 0)
					goto neterr;
				c->ops->ready(c->arg, c);
				break;
			case SMTP_EV_STARTTLS:
				if (flush_session(c) < 0 || start_tls(c) < 0) {
					smtp_session_tls_done(c->s, 0);
					c->again = 1;
				}
				break;
			case SMTP_EV_TXN_DONE:
				c->ops->txn_done(c->arg, c, ev.results, ev.nresults);
				break;
			case SMTP_EV_BODY_SENT:
				if (c->ops->body_sent != NULL)
					c->ops->body_sent(c->arg, c);
				break;
			case SMTP_EV_CLOSED:
				flush_session(c);
				c->end.close = ev.close;
				c->end.reply = ev.reply;
				c->end.text = ev.reply.text;
				conn_finish(c, CONN_END_SESSION, ev.reply.text);
				break;
			}
		}
		if (c->state == CS_CLOSING)
			break;
		if (flush_session(c) < 0)
			goto neterr;
	} while (c->again);
	c->in_pump = 0;
	if (c->state != CS_CLOSING) {
		/* (re)arm only for something new to wait for: bytes that do not
		 * complete a reply do not buy the server more time */
		unsigned ms = smtp_session_timeout_ms(c->s);
		unsigned long seq = smtp_session_wait_seq(c->s);
		if (ms == 0) {
			uv_timer_stop(&c->timer);
			c->wait_ms = 0;
		} else if (ms != c->wait_ms || seq != c->wait_seq ||
		           !uv_is_active((uv_handle_t *)&c->timer)) {
			uv_timer_start(&c->timer, on_timer, ms, 0);
			c->wait_ms = ms;
			c->wait_seq = seq;
		}
	}
	return;
neterr:
	c->in_pump = 0;
	conn_finish(c, CONN_END_NETWORK, "write to the server failed");
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->pending_fail) {
		conn_finish(c, CONN_END_REFUSED, c->end_text);
		return;
	}
	if (c->state == CS_CONNECTING) {
		conn_finish(c, CONN_END_CONNECT_TIMEOUT, "connect timed out");
		return;
	}
	if (c->state == CS_TLS_HANDSHAKE) {
		if (c->tls_mode == SMTP_TLS_IMPLICIT) {
			conn_finish(c, CONN_END_TLS, "TLS handshake timed out");
			return;
		}
		log_kv(EDM_LOG_INFO, "tls-failed", "conn=%lu host=%s error=timeout",
		       c->id, c->host);
		conn_state(c, CS_SESSION);
		smtp_session_tls_done(c->s, 0);
		pump(c);
		return;
	}
	smtp_session_timeout(c->s);
	pump(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	b->base = malloc(65536);
	b->len = b->base ? 65536 : 0;
}

/* Ciphertext arrived: advance the handshake or decrypt into the session. */
static void tls_input(struct conn *c, const char *p, size_t n)
{
	char plain[16384];
	ssize_t r;

	if (tls_feed(c->tls, p, n) != 0) {
		conn_finish(c, CONN_END_NETWORK, "out of memory");
		return;
	}
	if (c->state == CS_TLS_HANDSHAKE) {
		int h = tls_handshake(c->tls);
		if (flush_tls(c) < 0) {
			conn_finish(c, CONN_END_NETWORK, "write to the server failed");
			return;
		}
		if (h == TLS_WANT)
			return;
		if (h == TLS_ERR) {
			char why[600];
			snprintf(why, sizeof(why), "TLS handshake with %s failed: %s",
			         c->host, tls_error(c->tls));
			if (c->tls_mode == SMTP_TLS_IMPLICIT) {
				conn_finish(c, CONN_END_TLS, why);
				return;
			}
			log_kv(EDM_LOG_INFO, "tls-failed", "conn=%lu host=%s error=\"%s\"",
			       c->id, c->host, tls_error(c->tls));
			smtp_session_tls_done(c->s, 0);
			conn_state(c, CS_SESSION);
			pump(c);
			return;
		}
		c->tls_on = 1;
		tls_set_desc(c);
		conn_state(c, CS_SESSION);
		if (c->tls_mode != SMTP_TLS_IMPLICIT)
			smtp_session_tls_done(c->s, 1);
		pump(c);
	}
	while (c->state == CS_SESSION &&
	       (r = tls_read(c->tls, plain, sizeof(plain))) > 0) {
		smtp_session_feed(c->s, plain, (size_t)r);
		pump(c);
	}
	if (c->state == CS_SESSION && flush_tls(c) < 0)
		conn_finish(c, CONN_END_NETWORK, "write to the server failed");
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = st->data;

	if (n > 0 && c->state != CS_CLOSING) {
		if (c->tls != NULL)
			tls_input(c, b->base, (size_t)n);
		else {
			smtp_session_feed(c->s, b->base, (size_t)n);
			pump(c);
		}
	} else if (n < 0 && c->state != CS_CLOSING) {
		if (c->state == CS_TLS_HANDSHAKE && c->tls_mode == SMTP_TLS_IMPLICIT)
			conn_finish(c, CONN_END_TLS, "server closed the connection during the TLS handshake");
		else if (c->state == CS_TLS_HANDSHAKE) {
			/* after STARTTLS: a failed handshake (the server gave up
			 * without an alert), not an ordinary drop; the session
			 * decides (starttls: stop; opportunistic: fallback) */
			log_kv(EDM_LOG_INFO, "tls-failed", "conn=%lu host=%s error=\"closed during the handshake\"",
			       c->id, c->host);
			conn_state(c, CS_SESSION);
			smtp_session_tls_done(c->s, 0);
			pump(c);
			if (c->state != CS_CLOSING)
				conn_finish(c, CONN_END_TLS, "server closed the connection during the TLS handshake");
		} else if (n == UV_EOF) {
			smtp_session_eof(c->s);
			pump(c);
			/* the session reports EOF as CLOSED; make sure we close */
			if (c->state != CS_CLOSING)
				conn_finish(c, CONN_END_NETWORK, "connection closed by server");
		} else {
			char why[128];
			snprintf(why, sizeof(why), "connection error: %s", uv_strerror((int)n));
			smtp_session_eof(c->s);
			pump(c);
			if (c->state != CS_CLOSING)
				conn_finish(c, CONN_END_NETWORK, why);
		}
	}
	free(b->base);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (c->state == CS_CLOSING)
		return;
	if (status < 0) {
		char why[600];
		snprintf(why, sizeof(why), "connect to %s failed: %s", c->peer,
		         uv_strerror(status));
		conn_finish(c, CONN_END_REFUSED, why);
		return;
	}
	uv_timer_stop(&c->timer);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_finish(c, CONN_END_NETWORK, "cannot read from the socket");
		return;
	}
	if (c->tls_mode == SMTP_TLS_IMPLICIT) {
		if (start_tls(c) < 0) {
			conn_finish(c, CONN_END_TLS, "cannot start TLS");
			return;
		}
		return;
	}
	conn_state(c, CS_SESSION);
	pump(c);
}

/* "host[addr]:port" for results and logs. */
static void make_peer(struct conn *c, const struct sockaddr *sa)
{
	char ip[64] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		uv_ip4_name(a, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		uv_ip6_name(a, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	snprintf(c->peer, sizeof(c->peer), "%.255s[%.63s]:%u", c->host, ip, port);
}

struct conn *conn_open(uv_loop_t *loop, const struct conn_target *t,
                       const struct conn_client_ops *ops, void *arg)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct smtp_session_opts so = t->session;
	int rc;

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->ops = ops;
	c->arg = arg;
	c->id = ++conn_ids;
	c->tls_mode = t->tls;
	c->tls_config = t->tls_config;
	c->connect_timeout_ms = t->connect_timeout_ms ? t->connect_timeout_ms : 30000;
	snprintf(c->host, sizeof(c->host), "%s", t->host);
	snprintf(c->tls_desc, sizeof(c->tls_desc), "none");
	make_peer(c, t->addr);
	so.tls = t->tls;
	c->s = smtp_session_new(&so);
	if (c->s == NULL) {
		free(c);
		return NULL;
	}
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	c->tcp.data = c->timer.data = c->creq.data = c;
	c->handles = 2;
	if (t->source_ip != NULL) {
		struct sockaddr_storage src;
		if (uv_ip4_addr(t->source_ip, 0, (struct sockaddr_in *)&src) != 0 &&
		    uv_ip6_addr(t->source_ip, 0, (struct sockaddr_in6 *)&src) != 0)
			rc = UV_EINVAL;
		else
			rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
		if (rc < 0)
			goto fail;
	}
	rc = uv_tcp_connect(&c->creq, &c->tcp, t->addr, on_connect);
	if (rc < 0)
		goto fail;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
	c->wait_ms = 0; /* the next pump re-arms for the session */
	return c;
fail:
	/* closed() must not run before the caller has the pointer: report
	 * from the timer on the next loop turn */
	snprintf(c->end_text, sizeof(c->end_text), "connect to %s failed: %s",
	         c->peer, uv_strerror(rc));
	c->pending_fail = 1;
	uv_timer_start(&c->timer, on_timer, 0, 0);
	return c;
}

int conn_submit(struct conn *c, const struct smtp_txn *t)
{
	if (c->state != CS_SESSION || smtp_session_submit(c->s, t) < 0)
		return -1;
	pump(c);
	return 0;
}

void conn_hold(struct conn *c)
{
	if (c->state == CS_SESSION)
		c->held = 1;
}

void conn_release(struct conn *c)
{
	if (!c->held)
		return;
	c->held = 0;
	if (c->state != CS_CLOSING)
		pump(c);
}

unsigned conn_caps(const struct conn *c)
{
	return c->s != NULL ? smtp_session_caps(c->s) : 0;
}

int conn_can_stage(const struct conn *c)
{
	return c->state == CS_SESSION && c->s != NULL && smtp_session_can_stage(c->s);
}

int conn_open_session(const struct conn *c)
{
	return c->state == CS_SESSION && c->s != NULL && smtp_session_usable(c->s);
}

void conn_quit(struct conn *c)
{
	if (c->state == CS_CLOSING)
		return;
	c->held = 0;
	smtp_session_quit(c->s);
	pump(c);
}

void conn_abort(struct conn *c)
{
	if (c->state != CS_CLOSING)
		conn_finish(c, CONN_END_NETWORK, "closed by edm (shutting down)");
}

const char *conn_tls_desc(const struct conn *c)
{
	return c->tls_on ? c->tls_desc : "none";
}

const char *conn_plaintext_why(const struct conn *c)
{
	return c->s != NULL ? smtp_session_plaintext_why(c->s) : NULL;
}

const char *conn_peer(const struct conn *c)
{
	return c->peer;
}

void conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

void *conn_data(const struct conn *c)
{
	return c->data;
}

/* ---- the listening side (edm sink, edm track) ---- */

/*
 * When the handler is done with a connection (it asked to close, the
 * peer sent EOF, a timeout, a graceful stop), the replies are written,
 * the write side is shut down, and input is read and thrown away until
 * the peer closes: closing a socket with unread input makes the kernel
 * send a reset, which can destroy a reply the client has not read yet
 * (the "lingering close" of RFC 9112 9.6). 2 s is ample for a client to
 * read a short reply and close; the bytes thrown away are capped too.
 */
#define SRV_LINGER_MS 2000
#define SRV_LINGER_BYTES (256 * 1024)
/* A peer that sends (pipelines) without reading the replies: reading
 * pauses while more than this is queued for it, so its replies cannot
 * grow without bound; 1 MiB is thousands of small replies. */
#define SRV_WRITE_QUEUE_MAX (1024 * 1024)

struct srv_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;        /* idle or request timeout, then the linger */
	struct conn_listener *l;
	void *state;             /* the handler's; NULL once it is done */
	struct srv_conn *next, *prev;
	char peer[64];
	int handles;             /* open handles; freed at 0 */
	int closing;             /* uv_close called */
	int finishing;           /* handler done: replies drain, then linger */
	int shut_done;           /* the shutdown request completed */
	int eof;                 /* the peer closed its side */
	int busy;                /* the handler holds an unfinished request */
	int paused;              /* reading paused: write queue full */
	size_t discarded;        /* bytes thrown away while lingering */
};

struct conn_listener {
	uv_tcp_t tcp;
	const struct conn_server_ops *ops;
	void *arg;
	struct conn_server_limits lim;
	struct srv_conn *conns;  /* accepted and not closing */
	unsigned nconns;
	unsigned live;           /* owner + listening handle + srv_conns:
	                            freed at 0 */
	int listening;           /* the listening handle is open */
	int released;            /* conn_listener_close() was called */
	int draining;            /* conn_listener_shutdown() was called */
	int pending;             /* a connection waits for uv_accept (cap) */
};

static void srv_accept_one(struct conn_listener *l);

static void listener_unref(struct conn_listener *l)
{
	if (--l->live == 0)
		free(l);
}

static void srv_handle_closed(uv_handle_t *h)
{
	struct srv_conn *sc = h->data;
	struct conn_listener *l = sc->l;

	if (--sc->handles == 0) {
		free(sc);
		listener_unref(l);
	}
}

/* The handler is done with the connection: its close() runs now. */
static void srv_detach(struct srv_conn *sc)
{
	void *st = sc->state;

	if (st != NULL) {
		sc->state = NULL;
		sc->l->ops->close(st);
	}
}

/* Close at once (pending writes are cancelled). */
static void srv_conn_close(struct srv_conn *sc)
{
	struct conn_listener *l = sc->l;

	if (sc->closing)
		return;
	sc->closing = 1;
	srv_detach(sc);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		l->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	l->nconns--;
	uv_timer_stop(&sc->timer);
	uv_close((uv_handle_t *)&sc->timer, srv_handle_closed);
	uv_close((uv_handle_t *)&sc->tcp, srv_handle_closed);
	/* a connection held back by the cap may come in now */
	if (l->pending && l->listening &&
	    (l->lim.max_conns == 0 || l->nconns < l->lim.max_conns)) {
		l->pending = 0;
		srv_accept_one(l);
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void srv_write_done(uv_write_t *w, int status)
{
	struct srv_conn *sc = w->data;

	free(w);
	if (sc->closing)
		return;
	if (status < 0) {
		srv_conn_close(sc);
		return;
	}
	if (sc->paused && !sc->eof &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&sc->tcp) == 0) {
		sc->paused = 0;
		if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, srv_read) < 0)
			srv_conn_close(sc);
	}
}

/* Queue what the handler produced (the request owns its copy). 0, or
 * -1 when the connection had to be closed. */
static int srv_send(struct srv_conn *sc, struct buf *out)
{
	uv_write_t *w;
	uv_buf_t b;

	if (out->len == 0 || sc->closing)
		return sc->closing ? -1 : 0;
	w = malloc(sizeof(*w) + out->len);
	if (w == NULL) {
		srv_conn_close(sc);
		return -1;
	}
	memcpy(w + 1, out->data, out->len);
	b = uv_buf_init((char *)(w + 1), (unsigned)out->len);
	w->data = sc;
	if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, srv_write_done) < 0) {
		free(w);
		srv_conn_close(sc);
		return -1;
	}
	return 0;
}

static void srv_timer(uv_timer_t *t);

/*
 * (Re)arm the connection's timer after the handler ran: a request in
 * progress keeps the deadline it got when it started, unless a reply was
 * written since (a client pipelining steadily is making progress); an
 * idle connection gets idle_ms from now.
 */
static void srv_arm(struct srv_conn *sc, int busy, int answered)
{
	const struct conn_server_limits *lim = &sc->l->lim;
	unsigned ms;

	if (busy && sc->busy && !answered)
		return;
	sc->busy = busy;
	ms = busy ? lim->request_ms : lim->idle_ms;
	if (ms > 0)
		uv_timer_start(&sc->timer, srv_timer, ms, 0);
	else
		uv_timer_stop(&sc->timer);
}

static void srv_shutdown_done(uv_shutdown_t *req, int status)
{
	struct srv_conn *sc = req->data;

	free(req);
	if (sc->closing)
		return;
	sc->shut_done = 1;
	if (status < 0 || sc->eof)
		srv_conn_close(sc);
}

/* End gracefully: the handler's close() now, replies written, write side
 * shut, input discarded until EOF or the linger time. */
static void srv_finish(struct srv_conn *sc)
{
	uv_shutdown_t *req;

	if (sc->closing || sc->finishing)
		return;
	sc->finishing = 1;
	sc->busy = 0;
	srv_detach(sc);
	req = malloc(sizeof(*req));
	if (req == NULL || uv_shutdown(req, (uv_stream_t *)&sc->tcp,
	                               srv_shutdown_done) < 0) {
		free(req);
		srv_conn_close(sc);
		return;
	}
	req->data = sc;
	if (!sc->eof && sc->paused) {
		sc->paused = 0;
		if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, srv_read) < 0) {
			srv_conn_close(sc);
			return;
		}
	}
	uv_timer_start(&sc->timer, srv_timer, SRV_LINGER_MS, 0);
}

static void srv_timer(uv_timer_t *t)
{
	struct srv_conn *sc = t->data;
	struct buf out = { 0 };

	if (sc->closing)
		return;
	if (sc->finishing) {
		srv_conn_close(sc); /* the linger is over */
		return;
	}
	log_kv(EDM_LOG_DEBUG, "conn-server-timeout", "peer=%s busy=%d", sc->peer,
	       sc->busy);
	if (sc->l->ops->timeout != NULL && sc->state != NULL) {
		sc->l->ops->timeout(sc->state, &out);
		if (srv_send(sc, &out) < 0) {
			buf_free(&out);
			return;
		}
	}
	buf_free(&out);
	srv_finish(sc);
}

/* Bytes from the peer for the handler. */
static void srv_input(struct srv_conn *sc, const char *p, size_t n)
{
	struct conn_listener *l = sc->l;
	struct buf out = { 0 };
	int close_after, busy, answered;

	close_after = l->ops->data(sc->state, p, n, &out);
	answered = out.len > 0;
	if (srv_send(sc, &out) < 0) {
		buf_free(&out);
		return;
	}
	buf_free(&out);
	busy = l->ops->busy != NULL ? l->ops->busy(sc->state) : 0;
	if (close_after || (l->draining && !busy)) {
		srv_finish(sc);
		return;
	}
	srv_arm(sc, busy, answered);
	if (uv_stream_get_write_queue_size((uv_stream_t *)&sc->tcp) > SRV_WRITE_QUEUE_MAX) {
		uv_read_stop((uv_stream_t *)&sc->tcp);
		sc->paused = 1;
	}
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct srv_conn *sc = st->data;

	if (sc->closing) {
		/* nothing */
	} else if (n > 0 && sc->finishing) {
		sc->discarded += (size_t)n;
		if (sc->discarded > SRV_LINGER_BYTES)
			srv_conn_close(sc);
	} else if (n > 0) {
		srv_input(sc, b->base, (size_t)n);
	} else if (n == UV_EOF) {
		sc->eof = 1;
		uv_read_stop(st);
		if (!sc->finishing)
			srv_finish(sc);   /* write what was answered, then close */
		else if (sc->shut_done)
			srv_conn_close(sc);
	} else if (n < 0) {
		srv_conn_close(sc);
	}
	free(b->base);
}

/* The numeric address of the peer; an IPv4-mapped IPv6 address (a
 * dual-stack listener) as plain IPv4. */
static void srv_peer_name(uv_tcp_t *tcp, char *peer, size_t len)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);

	snprintf(peer, len, "?");
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		uv_ip4_name((struct sockaddr_in *)&ss, peer, len);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
			const unsigned char *b = a6->sin6_addr.s6_addr + 12;
			snprintf(peer, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		} else {
			uv_ip6_name(a6, peer, len);
		}
	}
}

/* Accept the connection libuv holds and start its handler. */
static void srv_accept_one(struct conn_listener *l)
{
	struct srv_conn *sc = calloc(1, sizeof(*sc));
	struct buf out = { 0 };

	if (sc == NULL) {
		l->pending = 1; /* libuv keeps it; the next close retries */
		return;
	}
	uv_tcp_init(l->tcp.loop, &sc->tcp);
	uv_timer_init(l->tcp.loop, &sc->timer);
	sc->tcp.data = sc->timer.data = sc;
	sc->handles = 2;
	sc->l = l;
	l->live++;
	if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&sc->tcp) < 0)
		goto fail;
	srv_peer_name(&sc->tcp, sc->peer, sizeof(sc->peer));
	sc->state = l->ops->open(l->arg, sc->peer, &out);
	if (sc->state == NULL)
		goto fail;
	sc->next = l->conns;
	if (l->conns)
		l->conns->prev = sc;
	l->conns = sc;
	l->nconns++;
	if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, srv_read) < 0) {
		buf_free(&out);
		srv_conn_close(sc);
		return;
	}
	if (srv_send(sc, &out) == 0)
		srv_arm(sc, 0, 0);
	buf_free(&out);
	return;
fail:
	buf_free(&out);
	sc->closing = 1;
	uv_close((uv_handle_t *)&sc->timer, srv_handle_closed);
	uv_close((uv_handle_t *)&sc->tcp, srv_handle_closed);
}

static void srv_accept(uv_stream_t *server, int status)
{
	struct conn_listener *l = server->data;

	if (status < 0 || !l->listening)
		return;
	if (l->lim.max_conns > 0 && l->nconns >= l->lim.max_conns) {
		/* not accepted: libuv holds it and stops accepting until a
		 * connection closes (srv_conn_close); the rest wait in the
		 * kernel's backlog */
		l->pending = 1;
		return;
	}
	srv_accept_one(l);
}

static void listener_closed(uv_handle_t *h)
{
	listener_unref(h->data);
}

int conn_listen(uv_loop_t *loop, const char *hostport,
                const struct conn_server_ops *ops, void *arg,
                struct conn_listener **out, unsigned *port_out,
                char *err, size_t errlen)
{
	struct conn_listener *l;
	struct sockaddr_storage ss;
	char host[128];
	const char *colon = strrchr(hostport, ':');
	unsigned long port;
	char *end;
	int rc, len = sizeof(ss);

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		return edm_errf(err, errlen, "'%s' is not HOST:PORT", hostport);
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port > 65535)
		return edm_errf(err, errlen, "'%s': bad port", hostport);
	if (hostport[0] == '[' && colon > hostport + 1 && colon[-1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport - 2), hostport + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
		return edm_errf(err, errlen, "'%s' is not a numeric IP address", host);
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return edm_errf(err, errlen, "out of memory");
	l->ops = ops;
	l->arg = arg;
	l->live = 2; /* the owner and the listening handle */
	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&l->tcp, 128, srv_accept)) < 0) {
		l->live = 1;
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
		return edm_errf(err, errlen, "cannot listen on %s: %s", hostport,
		                uv_strerror(rc));
	}
	l->listening = 1;
	if (port_out != NULL) {
		*port_out = 0;
		if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
			*port_out = ntohs(ss.ss_family == AF_INET
			                  ? ((struct sockaddr_in *)&ss)->sin_port
			                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	*out = l;
	return 0;
}

void conn_listener_set_limits(struct conn_listener *l,
                              const struct conn_server_limits *lim)
{
	l->lim = *lim;
}

unsigned conn_listener_count(const struct conn_listener *l)
{
	return l->nconns;
}

/* Close the listening handle (no more connections). */
static void listener_stop(struct conn_listener *l)
{
	if (!l->listening)
		return;
	l->listening = 0;
	l->pending = 0; /* libuv closes a held connection with the handle */
	uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

void conn_listener_shutdown(struct conn_listener *l)
{
	struct srv_conn *sc, *next;

	if (l == NULL || l->released || l->draining)
		return;
	l->draining = 1;
	listener_stop(l);
	for (sc = l->conns; sc != NULL; sc = next) {
		next = sc->next;
		if (!sc->busy)
			srv_finish(sc);
	}
}

void conn_listener_close(struct conn_listener *l)
{
	if (l == NULL || l->released)
		return;
	l->released = 1;
	listener_stop(l);
	while (l->conns != NULL)
		srv_conn_close(l->conns);
	listener_unref(l);
}
