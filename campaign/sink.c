/*
 * sink.c - the `edm sink` command (contract in sink.h).
 *
 * One uv loop: conn_listen() accepts connections and drives one
 * smtp_server session per connection through struct conn_server_ops; each
 * accepted message is written to the Maildir synchronously from the
 * session's on_message callback (a local sink has one client at a time in
 * practice, and fsync per message is what makes "250" mean "on disk").
 *
 * Stopping: SIGINT/SIGTERM close the listener and every connection at
 * once. --count N drains instead: after the Nth message every session
 * answers its next command (QUIT aside) with 421 and new connections get a
 * 421 greeting, so the client that sent the Nth message still reads its
 * 250; the sink stops when the last connection is gone, or after
 * SINK_DRAIN_MS. Stopping never happens inside a conn callback: it is
 * deferred to a timer callback.
 *
 * From engine/conn.h it uses only struct conn_server_ops, conn_listen()
 * and conn_listener_close(). It does not time out idle clients (that is
 * conn.c's business, if anyone's) and never relays anything.
 */
#include "sink.h"

#include "buf.h"
#include "conn.h"
#include "files.h"
#include "log.h"
#include "maildir.h"
#include "smtp_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SINK_LISTEN_DEFAULT "127.0.0.1:2525"
#define SINK_MAILDIR_DEFAULT "./edm-sink.maildir"
/* After --count is reached, how long connections may take to QUIT: edm's
 * own client quits as soon as its queue is empty; 5 s is ample for it and
 * bounds a script's wait on a client that never quits. */
#define SINK_DRAIN_MS 5000
/* --max-size ceiling: the whole message is held in memory. */
#define SINK_MAX_SIZE_CAP ((unsigned long long)2 * 1024 * 1024 * 1024)
/* The Subject printed per message is cut at this many octets. */
#define SINK_SUBJECT_MAX 80

const char sink_usage[] =
	"Usage: edm sink [options]\n"
	"\n"
	"Run a local SMTP server that accepts every message and saves it, byte\n"
	"for byte, as a file in a Maildir, so a whole campaign can be sent to it\n"
	"and the results opened in a mail client (mutt -f DIR, or any Maildir\n"
	"reader). Nothing is relayed. One line per message on stdout:\n"
	"  TIME from=<SENDER> to=<RCPT>,... size=N subject=\"...\" file=DIR/new/NAME\n"
	"(TIME in UTC; the Subject is the raw header value, cut at 80 octets,\n"
	"control characters, \\ and \" written as \\xHH).\n"
	"\n"
	"Send a campaign to it with [smtp] mode = relay, relay = 127.0.0.1:2525,\n"
	"tls = none. AUTH PLAIN and LOGIN are offered and ANY username and\n"
	"password is accepted, and neither stored nor logged, so a relay's\n"
	"settings work unchanged (with allow_plaintext_auth = yes: no TLS here).\n"
	"\n"
	"Options:\n"
	"  --listen HOST:PORT  where to listen (default " SINK_LISTEN_DEFAULT ");\n"
	"                      port 0 picks a free port (see --port-file)\n"
	"  --allow-remote      allow a HOST that is not loopback (127.0.0.0/8,\n"
	"                      ::1, localhost). The sink accepts anything from\n"
	"                      anyone who can connect: never on a public address\n"
	"  --maildir DIR       where to save (default " SINK_MAILDIR_DEFAULT ");\n"
	"                      DIR, DIR/tmp, DIR/new, DIR/cur are created mode 0700,\n"
	"                      messages are files of mode 0600 in DIR/new\n"
	"  --max-size BYTES    largest message accepted (default 50M; K, M, G\n"
	"                      suffixes; messages are held in memory, at most 2G)\n"
	"  --count N           exit after N messages were saved (for scripts)\n"
	"  --port-file FILE    write the port listened on to FILE (mode 0600)\n"
	"  -q, --quiet         no per-message lines, no start or summary line\n"
	"  -h, --help          this text\n"
	"\n"
	"Stop with Ctrl-C (SIGINT) or SIGTERM; a summary goes to stderr.\n"
	"\n"
	"Exit status: 0 stopped by a signal or after --count messages; 64 usage;\n"
	"69 cannot listen on the address (in use, no permission, not an address\n"
	"of this host); 71 the event loop or signal handling could not be set up;\n"
	"73 the Maildir or the port file cannot be created, or a message could\n"
	"not be saved (the client was told 451 and may retry).\n";

struct sink_conn;

struct sink {
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t timer;        /* drain grace, or a deferred stop */
	int have_sigint, have_sigterm, have_timer;
	struct conn_listener *listener;
	struct maildir *md;
	char name[256];          /* host name in the greeting */
	struct smtp_server_limits limits;
	unsigned long count;     /* --count, 0 = run until a signal */
	int quiet;
	struct sink_conn *conns; /* open connections */
	unsigned nconns;
	unsigned long connections, messages, failed;
	unsigned long long bytes;
	int draining, stopping;
	const char *why;         /* for the summary */
};

struct sink_conn {
	struct sink *sink;
	struct smtp_server *srv;
	struct sink_conn *prev, *next;
	char peer[80];
};

/* ---- output ---- */

/* Append s[0..n) with control characters (and, when quoted, '"' and
 * '\\') written as \xHH; other octets, UTF-8 included, as they are. */
static void put_escaped(struct buf *b, const char *s, size_t n, int quoted)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (quoted && (c == '"' || c == '\\')))
			buf_printf(b, "\\x%02X", c);
		else
			buf_putc(b, (char)c);
	}
}

/*
 * The raw value of the first Subject header of msg, unfolded (RFC 5322
 * 2.2.3: a CRLF before whitespace is removed), leading whitespace and the
 * line end dropped. 0 when found, -1 when there is none.
 */
static int find_subject(const char *msg, size_t len, struct buf *out)
{
	size_t pos = 0;
	int in_subject = 0;

	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - msg) : len;
		size_t next = nl != NULL ? end + 1 : len;
		size_t l = end - pos;

		if (l > 0 && msg[pos + l - 1] == '\r')
			l--;
		if (in_subject) {
			if (l == 0 || (msg[pos] != ' ' && msg[pos] != '\t'))
				return 0;
			buf_append(out, msg + pos, l);
		} else if (l == 0) {
			return -1; /* the end of the header section */
		} else if (l >= 8 && strncasecmp(msg + pos, "Subject:", 8) == 0) {
			size_t v = pos + 8;

			while (v < pos + l && (msg[v] == ' ' || msg[v] == '\t'))
				v++;
			buf_append(out, msg + v, pos + l - v);
			in_subject = 1;
		}
		pos = next;
	}
	return in_subject ? 0 : -1;
}

/* Print the line of one saved message on stdout. */
static void print_message(const struct smtp_server_msg *m, time_t now,
                          const char *dir, const char *name)
{
	struct buf line = { 0 }, subj = { 0 };
	char ts[32];
	struct tm tm;
	size_t cut;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_printf(&line, "%s from=<", ts);
	put_escaped(&line, m->from, strlen(m->from), 0);
	buf_puts(&line, "> to=");
	for (size_t i = 0; i < m->nrcpts; i++) {
		buf_puts(&line, i > 0 ? ",<" : "<");
		put_escaped(&line, m->rcpts[i], strlen(m->rcpts[i]), 0);
		buf_putc(&line, '>');
	}
	buf_printf(&line, " size=%zu subject=\"", m->size);
	find_subject(m->data, m->size, &subj);
	cut = subj.len;
	if (cut > SINK_SUBJECT_MAX) {
		cut = SINK_SUBJECT_MAX;
		/* not in the middle of a UTF-8 sequence */
		while (cut > 0 && ((unsigned char)subj.data[cut] & 0xc0) == 0x80)
			cut--;
	}
	put_escaped(&line, subj.data != NULL ? subj.data : "", cut, 1);
	if (cut < subj.len)
		buf_puts(&line, "...");
	buf_printf(&line, "\" file=%s/new/%s\n", dir, name);
	if (line.data != NULL) {
		fwrite(line.data, 1, line.len, stdout);
		fflush(stdout); /* a script reading a pipe sees each line now */
	}
	buf_free(&subj);
	buf_free(&line);
}

/* ---- stopping ---- */

static void on_close_handle(uv_handle_t *h)
{
	(void)h;
}

/* Close the listener (and so every connection) and our handles; uv_run
 * returns once they are closed. */
static void sink_stop(struct sink *sk)
{
	if (sk->stopping)
		return;
	sk->stopping = 1;
	conn_listener_close(sk->listener);
	sk->listener = NULL;
	if (sk->have_sigint && !uv_is_closing((uv_handle_t *)&sk->sigint))
		uv_close((uv_handle_t *)&sk->sigint, on_close_handle);
	if (sk->have_sigterm && !uv_is_closing((uv_handle_t *)&sk->sigterm))
		uv_close((uv_handle_t *)&sk->sigterm, on_close_handle);
	if (sk->have_timer && !uv_is_closing((uv_handle_t *)&sk->timer))
		uv_close((uv_handle_t *)&sk->timer, on_close_handle);
}

static void on_signal(uv_signal_t *h, int signo)
{
	struct sink *sk = h->data;

	sk->why = signo == SIGINT ? "interrupted" : "terminated";
	sink_stop(sk);
}

static void on_timer(uv_timer_t *t)
{
	sink_stop(t->data);
}

/* --count reached: finish politely (see the file comment). */
static void sink_drain(struct sink *sk)
{
	sk->draining = 1;
	sk->why = "--count reached";
	for (struct sink_conn *c = sk->conns; c != NULL; c = c->next)
		smtp_server_shutdown(c->srv);
	uv_timer_start(&sk->timer, on_timer, sk->nconns > 0 ? SINK_DRAIN_MS : 0, 0);
}

/* ---- the sessions ---- */

/* smtp_server's on_message: save, print, count. */
static int on_message(void *arg, const struct smtp_server_msg *m, char *id,
                      size_t idlen)
{
	struct sink_conn *c = arg;
	struct sink *sk = c->sink;
	struct buf name = { 0 };
	time_t now = time(NULL);
	char err[1024];

	if (maildir_deliver(sk->md, m->data, m->size, now, &name, err,
	                    sizeof err) < 0) {
		struct buf from = { 0 };

		put_escaped(&from, m->from, strlen(m->from), 0);
		edm_error("sink: a message from <%s> (%zu bytes) was not saved, the "
		          "client was told to retry: %s",
		          from.data != NULL ? from.data : "", m->size, err);
		buf_free(&from);
		buf_free(&name);
		sk->failed++;
		return -1;
	}
	snprintf(id, idlen, "%s", name.data);
	sk->messages++;
	sk->bytes += m->size;
	log_kv(EDM_LOG_INFO, "sink_message", "peer=%s size=%zu nrcpt=%zu file=%s",
	       c->peer, m->size, m->nrcpts, name.data);
	if (!sk->quiet)
		print_message(m, now, maildir_path(sk->md), name.data);
	buf_free(&name);
	if (sk->count > 0 && sk->messages >= sk->count && !sk->draining)
		sink_drain(sk);
	return 0;
}

static void *sink_conn_open(void *arg, const char *peer, struct buf *out)
{
	struct sink *sk = arg;
	struct sink_conn *c = calloc(1, sizeof *c);
	struct smtp_server_opts o = {
		.name = sk->name,
		.limits = sk->limits,
		.on_message = on_message,
		.arg = c,
	};

	if (c == NULL)
		return NULL;
	if ((c->srv = smtp_server_new(&o)) == NULL) {
		free(c);
		return NULL;
	}
	c->sink = sk;
	snprintf(c->peer, sizeof c->peer, "%s", peer != NULL ? peer : "-");
	if (sk->draining || sk->stopping)
		smtp_server_shutdown(c->srv); /* greeted with 421 */
	smtp_server_greeting(c->srv, out);
	c->next = sk->conns;
	if (sk->conns != NULL)
		sk->conns->prev = c;
	sk->conns = c;
	sk->nconns++;
	sk->connections++;
	log_kv(EDM_LOG_INFO, "sink_connect", "peer=%s", c->peer);
	return c;
}

static int sink_conn_data(void *state, const char *p, size_t n,
                          struct buf *out)
{
	struct sink_conn *c = state;

	return smtp_server_feed(c->srv, p, n, out);
}

static void sink_conn_close(void *state)
{
	struct sink_conn *c = state;
	struct sink *sk = c->sink;

	log_kv(EDM_LOG_INFO, "sink_disconnect", "peer=%s messages=%lu", c->peer,
	       smtp_server_messages(c->srv));
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		sk->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	sk->nconns--;
	smtp_server_free(c->srv);
	free(c);
	/* the last client quit after --count: stop, but not inside conn's
	 * callback */
	if (sk->draining && sk->nconns == 0 && !sk->stopping)
		uv_timer_start(&sk->timer, on_timer, 0, 0);
}

static const struct conn_server_ops sink_ops = {
	.open = sink_conn_open,
	.data = sink_conn_data,
	.close = sink_conn_close,
};

/* ---- options ---- */

/* A whole decimal number with an optional K, M or G (x1024) suffix;
 * 0 and *v, or -1. */
static int parse_size(const char *s, unsigned long long *v)
{
	unsigned long long n = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (ULLONG_MAX - 9) / 10)
			return -1;
		n = n * 10 + (unsigned)(*p - '0');
	}
	switch (*p) {
	case 'k': case 'K': mult = 1024ull; p++; break;
	case 'm': case 'M': mult = 1024ull * 1024; p++; break;
	case 'g': case 'G': mult = 1024ull * 1024 * 1024; p++; break;
	default: break;
	}
	if (*p != '\0' || n > ULLONG_MAX / mult)
		return -1;
	*v = n * mult;
	return 0;
}

/* Split "HOST:PORT" or "[V6]:PORT" into host (without brackets) and port.
 * 0, or -1 when malformed. */
static int split_hostport(const char *s, char *host, size_t hostlen,
                          unsigned *port)
{
	const char *h, *hend, *colon;
	unsigned long long p;

	if (s[0] == '[') {
		h = s + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		h = s;
		if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':'))
			return -1; /* a bare IPv6 address needs [brackets] */
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (colon[1] == '\0' || strlen(colon + 1) > 5 ||
	    parse_size(colon + 1, &p) < 0 || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1) || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

/* 127.0.0.0/8, ::1, ::ffff:127.x.x.x or "localhost". */
static int is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return strcasecmp(host, "localhost") == 0;
}

/* A usage error: what was wrong, then the usage, on stderr. */
static int usage_error(const char *fmt, const char *arg)
{
	fputs("edm: error: sink: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n\n", stderr);
	fputs(sink_usage, stderr);
	return EX_USAGE;
}

struct sink_opts {
	const char *listen, *maildir, *port_file;
	unsigned long long max_size;
	unsigned long count;
	int quiet, allow_remote;
};

/* Parse argv into o. -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, struct sink_opts *o)
{
	enum { OPT_LISTEN = 256, OPT_MAILDIR, OPT_MAX_SIZE, OPT_COUNT,
	       OPT_PORT_FILE, OPT_ALLOW_REMOTE };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "maildir", required_argument, NULL, OPT_MAILDIR },
		{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "port-file", required_argument, NULL, OPT_PORT_FILE },
		{ "allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long n;
	int c;

	opterr = 0;
	optind = 0; /* GNU: start afresh, so sink_main can run more than once */
	while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_MAILDIR:
			if (optarg[0] == '\0')
				return usage_error("--maildir needs a directory%s", "");
			o->maildir = optarg;
			break;
		case OPT_MAX_SIZE:
			if (parse_size(optarg, &n) < 0 || n < 1 || n > SINK_MAX_SIZE_CAP)
				return usage_error("--max-size '%s': expected a number of "
				                   "bytes from 1 to 2G (K, M, G suffixes)",
				                   optarg);
			o->max_size = n;
			break;
		case OPT_COUNT:
			if (parse_size(optarg, &n) < 0 || strspn(optarg, "0123456789") !=
			    strlen(optarg) || n < 1 || n > ULONG_MAX)
				return usage_error("--count '%s': expected a number of "
				                   "messages from 1", optarg);
			o->count = (unsigned long)n;
			break;
		case OPT_PORT_FILE:
			if (optarg[0] == '\0')
				return usage_error("--port-file needs a file name%s", "");
			o->port_file = optarg;
			break;
		case OPT_ALLOW_REMOTE:
			o->allow_remote = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			fputs(sink_usage, stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s' (sink takes options "
		                   "only)", argv[optind]);
	return -1;
}

/* ---- the command ---- */

int sink_main(int argc, char **argv)
{
	struct sink_opts o = {
		.listen = SINK_LISTEN_DEFAULT,
		.maildir = SINK_MAILDIR_DEFAULT,
		.max_size = SMTP_SERVER_MAX_SIZE_DEFAULT,
	};
	struct sink sk;
	char host[256], hostport[300], shown[300], err[1024];
	unsigned port = 0, bound = 0;
	int rc, uvrc;

	if ((rc = parse_options(argc, argv, &o)) >= 0)
		return rc;
	if (split_hostport(o.listen, host, sizeof host, &port) < 0)
		return usage_error("--listen '%s': expected HOST:PORT, e.g. "
		                   "127.0.0.1:2525 or [::1]:2525", o.listen);
	if (!is_loopback(host) && !o.allow_remote) {
		edm_error("sink: refusing to listen on %s: it is not a loopback "
		          "address, and the sink accepts every message from anyone "
		          "who can connect; add --allow-remote if that is really "
		          "meant", o.listen);
		return EX_USAGE;
	}
	/* conn_listen gets a numeric address: "localhost" is 127.0.0.1 */
	if (strcasecmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (strchr(host, ':') != NULL)
		snprintf(hostport, sizeof hostport, "[%s]:%u", host, port);
	else
		snprintf(hostport, sizeof hostport, "%s:%u", host, port);

	memset(&sk, 0, sizeof sk);
	sk.quiet = o.quiet;
	sk.count = o.count;
	sk.limits.max_size = (size_t)o.max_size;
	sk.why = "stopped";
	if (gethostname(sk.name, sizeof sk.name - 1) < 0 || sk.name[0] == '\0')
		snprintf(sk.name, sizeof sk.name, "localhost");
	if ((sk.md = maildir_open(o.maildir, err, sizeof err)) == NULL) {
		edm_error("sink: %s", err);
		return EX_CANTCREAT;
	}
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return */
	if ((uvrc = uv_loop_init(&sk.loop)) < 0) {
		edm_error("sink: cannot start the event loop: %s", uv_strerror(uvrc));
		maildir_free(sk.md);
		return EX_OSERR;
	}
	rc = 0;
	if ((uvrc = uv_signal_init(&sk.loop, &sk.sigint)) == 0)
		sk.have_sigint = 1;
	if (uvrc == 0 && (uvrc = uv_signal_init(&sk.loop, &sk.sigterm)) == 0)
		sk.have_sigterm = 1;
	if (uvrc == 0 && (uvrc = uv_timer_init(&sk.loop, &sk.timer)) == 0)
		sk.have_timer = 1;
	sk.sigint.data = sk.sigterm.data = sk.timer.data = &sk;
	if (uvrc == 0)
		uvrc = uv_signal_start(&sk.sigint, on_signal, SIGINT);
	if (uvrc == 0)
		uvrc = uv_signal_start(&sk.sigterm, on_signal, SIGTERM);
	if (uvrc < 0) {
		edm_error("sink: cannot set up signal handling: %s",
		          uv_strerror(uvrc));
		rc = EX_OSERR;
		goto stop;
	}
	if (conn_listen(&sk.loop, hostport, &sink_ops, &sk, &sk.listener, &bound,
	                err, sizeof err) < 0) {
		edm_error("sink: cannot listen on %s: %s", hostport, err);
		rc = EX_UNAVAILABLE;
		goto stop;
	}
	if (strchr(host, ':') != NULL)
		snprintf(shown, sizeof shown, "[%s]:%u", host, bound);
	else
		snprintf(shown, sizeof shown, "%s:%u", host, bound);
	if (o.port_file != NULL) {
		char num[16];
		int len = snprintf(num, sizeof num, "%u\n", bound);

		if (files_write_private(o.port_file, num, (size_t)len) < 0) {
			edm_error("sink: cannot write the port file %s: %s",
			          o.port_file, strerror(errno));
			rc = EX_CANTCREAT;
			goto stop;
		}
	}
	if (!o.quiet)
		fprintf(stderr, "edm sink: listening on %s, saving to %s\n", shown,
		        o.maildir);
	uv_run(&sk.loop, UV_RUN_DEFAULT);
	if (!o.quiet) {
		fprintf(stderr, "edm sink: %s: %lu message%s saved (%llu bytes) from "
		        "%lu connection%s in %s", sk.why, sk.messages,
		        sk.messages == 1 ? "" : "s", sk.bytes, sk.connections,
		        sk.connections == 1 ? "" : "s", o.maildir);
		if (sk.failed > 0)
			fprintf(stderr, "; %lu could not be saved", sk.failed);
		fputc('\n', stderr);
	}
	rc = sk.failed > 0 ? EX_CANTCREAT : 0;

stop:
	sink_stop(&sk);
	uv_run(&sk.loop, UV_RUN_DEFAULT);
	if ((uvrc = uv_loop_close(&sk.loop)) < 0)
		edm_warn("sink: event loop not empty at exit: %s", uv_strerror(uvrc));
	maildir_free(sk.md);
	return rc;
}
