/*
 * conn.c - sockets: outgoing SMTP connections (libuv TCP + engine/tls.c +
 * engine/smtp_session.c) and the listening server of `edm sink`.
 *
 * Client data flow:
 *   uv read -> [tls_feed/tls_read] -> smtp_session_feed -> pump():
 *   events -> scheduler callbacks; output -> [tls_write/tls_take] -> uv_write
 * pump() runs after every input (bytes, EOF, timer, submit, quit); it is
 * re-entrancy safe: a callback that submits or quits only marks work, the
 * outer pump loop picks it up. A connection is freed only from the close
 * callback of its last handle, never inside a nested callback (STYLE 5).
 * Every uv_write owns its buffer and frees it in its callback.
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
 * write_done (client and server side alike). */
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

static int net_write(struct conn *c, const void *p, size_t n)
{
	return write_copy((uv_stream_t *)&c->tcp, p, n);
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
	size_t n = smtp_session_output(c->s, &p);

	if (n == 0)
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
		unsigned ms = smtp_session_timeout_ms(c->s);
		if (ms > 0)
			uv_timer_start(&c->timer, on_timer, ms, 0);
		else
			uv_timer_stop(&c->timer);
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
		else if (n == UV_EOF) {
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

void conn_quit(struct conn *c)
{
	if (c->state == CS_CLOSING)
		return;
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

/* ---- the listening side (edm sink) ---- */

struct srv_conn {
	uv_tcp_t tcp;
	struct conn_listener *l;
	void *state;
	struct srv_conn *next, *prev;
	int closing;
};

struct conn_listener {
	uv_tcp_t tcp;
	const struct conn_server_ops *ops;
	void *arg;
	struct srv_conn *conns;
	int closing;
};

static void srv_conn_closed(uv_handle_t *h)
{
	struct srv_conn *sc = h->data;

	free(sc);
}

static void srv_conn_close(struct srv_conn *sc)
{
	if (sc->closing)
		return;
	sc->closing = 1;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		sc->l->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	sc->l->ops->close(sc->state);
	uv_close((uv_handle_t *)&sc->tcp, srv_conn_closed);
}

static void srv_shutdown_done(uv_shutdown_t *req, int status)
{
	struct srv_conn *sc = req->data;

	(void)status;
	free(req);
	srv_conn_close(sc);
}

/* Write what the handler produced; close after it when asked. */
static void srv_send(struct srv_conn *sc, struct buf *out, int close_after)
{
	/* a failed write shows up as a read error on this connection */
	(void)write_copy((uv_stream_t *)&sc->tcp, out->data, out->len);
	buf_reset(out);
	if (close_after) {
		uv_shutdown_t *req = malloc(sizeof(*req));
		uv_read_stop((uv_stream_t *)&sc->tcp);
		if (req == NULL || uv_shutdown(req, (uv_stream_t *)&sc->tcp,
		                               srv_shutdown_done) < 0) {
			free(req);
			srv_conn_close(sc);
		} else
			req->data = sc;
	}
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct srv_conn *sc = st->data;
	struct buf out = { 0 };

	if (n > 0 && !sc->closing) {
		int close_after = sc->l->ops->data(sc->state, b->base, (size_t)n, &out);
		srv_send(sc, &out, close_after);
	} else if (n < 0 && !sc->closing)
		srv_conn_close(sc);
	buf_free(&out);
	free(b->base);
}

static void srv_accept(uv_stream_t *server, int status)
{
	struct conn_listener *l = server->data;
	struct srv_conn *sc;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char peer[64] = "?";
	struct buf out = { 0 };

	if (status < 0 || l->closing)
		return;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return;
	uv_tcp_init(server->loop, &sc->tcp);
	sc->tcp.data = sc;
	sc->l = l;
	if (uv_accept(server, (uv_stream_t *)&sc->tcp) < 0) {
		sc->closing = 1;
		uv_close((uv_handle_t *)&sc->tcp, srv_conn_closed);
		return;
	}
	if (uv_tcp_getpeername(&sc->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, peer, sizeof(peer));
		else if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, peer, sizeof(peer));
	}
	sc->state = l->ops->open(l->arg, peer, &out);
	if (sc->state == NULL) {
		sc->closing = 1;
		uv_close((uv_handle_t *)&sc->tcp, srv_conn_closed);
		buf_free(&out);
		return;
	}
	sc->next = l->conns;
	if (l->conns)
		l->conns->prev = sc;
	l->conns = sc;
	uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, srv_read);
	srv_send(sc, &out, 0);
	buf_free(&out);
}

static void listener_closed(uv_handle_t *h)
{
	free(h->data);
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
	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&l->tcp, 128, srv_accept)) < 0) {
		l->closing = 1;
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
		return edm_errf(err, errlen, "cannot listen on %s: %s", hostport,
		                uv_strerror(rc));
	}
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

void conn_listener_close(struct conn_listener *l)
{
	if (l == NULL || l->closing)
		return;
	l->closing = 1;
	while (l->conns != NULL)
		srv_conn_close(l->conns);
	uv_close((uv_handle_t *)&l->tcp, listener_closed);
}
