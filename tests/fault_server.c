/*
 * fault_server.c - a small SMTP server that misbehaves on purpose, for the
 * integration tests and benchmarks of `edm send`.
 *
 * It stands beside real servers (Postfix smtp-sink, aiosmtpd) for what they
 * cannot do: chosen replies per recipient pattern, 421 in the middle of a
 * pipelined batch, replies written one byte at a time, a delayed round trip,
 * endless or enormous EHLO replies, a connection dropped in the RFC 1047
 * window, a stall after 354, and a log that counts deliveries exactly.
 * tests/fault_server.md documents every option; `fault_server --help` lists
 * them.
 *
 * Contract: it prints "port=N" as the first line on stdout once listening;
 * a --log line is written (and flushed) before the reply it reports is
 * sent, so a client that has read the reply can read the log; it exits 0 on
 * SIGTERM, SIGINT or after --max-seconds; bad client input never crashes
 * it and never grows memory without bound (command lines are capped, message
 * content is streamed to a file or only counted, unsent output pauses
 * reading).
 *
 * How it runs: one libuv loop; per connection a TCP handle, a timer that
 * releases delayed replies (later reused as the linger timeout), a timer
 * for --never-end and one for --split-delay-ms. Input is processed as it
 * arrives: every complete command line in order, then message content
 * through a byte-wise state machine that finds "<CRLF>.<CRLF>" and undoes
 * dot-stuffing. The replies to one
 * read are gathered and written together (one write), after --delay-ms.
 * Closing is graceful: after the last reply, shutdown (FIN), then read and
 * discard until the client closes, so a reply is never lost to a TCP reset.
 *
 * What it does not do: TLS (STARTTLS is only advertised and refused), AUTH,
 * BDAT/CHUNKING, SMTPUTF8, DSN, IPv6 scoped addresses, relaying, or queueing.
 * It is a test tool, not part of edm's library, so it uses sockets freely.
 */
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The brief caps command lines at 4096 octets (RFC 5321 4.5.3.1.4 asks
 * only 512, so real clients stay far below); longer lines get a 500. */
#define FS_CMD_MAX 4096
/* One read buffer per connection: 64 KiB is what libuv asks for anyway. */
#define FS_READ_BUF (64 * 1024)
/* Stop reading from a client while this much output is unsent (a client
 * that pipelines without reading replies cannot grow our memory). */
#define FS_OUT_HIGH (256 * 1024)
/* After our FIN, wait this long for the client's close before closing. */
#define FS_LINGER_MS 2000
/* --never-end: one continuation line per 100 ms (the brief). */
#define FS_TICK_MS 100
/* Postfix's smtpd_recipient_limit default; RFC 5321 4.5.3.1.8 needs 100. */
#define FS_DEFAULT_MAX_RCPTS 1000
#define FS_DEFAULT_MAX_SECONDS 600
#define FS_MAX_MAX_SECONDS 86400
#define FS_HOSTNAME "fault.test"
#define FS_DEFAULT_GREETING "220 " FS_HOSTNAME " ESMTP"
/* --huge-line: the shortest line that still holds "250 fault.test x\r\n",
 * and 1 GiB as a sanity cap. */
#define FS_HUGE_MIN 20
#define FS_HUGE_MAX (1024UL * 1024 * 1024)
/* Longest piece of client text copied into a reply, log or trace line. */
#define FS_ECHO_MAX 80

/* A reply as configured: wire form (CRLF after every line) and its code. */
struct fs_reply {
	char *wire;
	size_t len;
	int code;
};

/* --rcpt-reply PATTERN=REPLY */
struct fs_rcpt_rule {
	char *pattern;
	struct fs_reply reply;
};

/* Every option, with its default (set in opts_defaults()). */
struct fs_opts {
	const char *listen;
	int pipelining;
	int eightbitmime;
	int starttls;
	int have_size;
	unsigned long long size;
	unsigned long delay_ms;
	struct fs_rcpt_rule *rules;
	size_t nrules;
	struct fs_reply greeting, mail_reply, data_reply, dot_reply;
	int split_bytes;
	unsigned long split_delay_ms;
	size_t huge_line;
	int never_end;
	int stall_after_354;
	int drop_after_dot;
	long after421;		/* -1: off */
	int drop_after_rcpt;
	unsigned long max_rcpts;
	unsigned long max_seconds;
	int quiet;
	int verbose;
	const char *log_path;
	const char *maildir;
	int count_only;
	int lenient_eod;
	int sync_check;
	int dot_barrier;	/* the final dot is a barrier (a strict server) */
};

struct fs_sbuf {
	char *p;
	size_t len, cap;
};

/* Replies due at one time (--delay-ms), in a FIFO per connection. */
struct fs_batch {
	struct fs_batch *next;
	uint64_t due;
	size_t len;
	char data[];
};

/* A write request owns a copy of the bytes it writes. */
struct fs_wreq {
	uv_write_t req;
	size_t len;
	char data[];
};

enum fs_state {
	FS_ST_CMD,		/* reading command lines */
	FS_ST_DATA,		/* reading message content */
	FS_ST_NEVER_END,	/* dribbling an EHLO reply; input ignored */
	FS_ST_STALLED,		/* final dot never answered; input ignored */
	FS_ST_CLOSING,		/* last reply queued; close once it is written */
	FS_ST_LINGER,		/* FIN sent; discard input until EOF or timeout */
};

static const char *const fs_state_names[] = {
	[FS_ST_CMD] = "cmd",
	[FS_ST_DATA] = "data",
	[FS_ST_NEVER_END] = "never-end",
	[FS_ST_STALLED] = "stalled",
	[FS_ST_CLOSING] = "closing",
	[FS_ST_LINGER] = "linger",
};

/* Where the content parser is: see conn_feed_body(). */
enum fs_body {
	FS_B_BOL,	/* at the start of a line */
	FS_B_MID,	/* inside a line */
	FS_B_CR,	/* after a CR inside a line */
	FS_B_DOT,	/* after a '.' at the start of a line */
	FS_B_DOTCR,	/* after ".<CR>" at the start of a line */
};

struct fs_conn {
	uv_tcp_t tcp;
	uv_timer_t delay_timer;	/* due batches; then the linger timeout */
	uv_timer_t tick_timer;	/* --never-end lines */
	uv_timer_t split_timer;	/* --split-delay-ms pauses */
	uv_shutdown_t shut;
	struct fs_conn *prev, *next;
	unsigned long id;
	int handles_open;
	int aborting;		/* uv_close() called; freed by the last close cb */
	int failed;		/* out of memory while processing: abort */
	int peer_eof;
	int read_paused;
	enum fs_state state;

	/* Command line being assembled. */
	char line[FS_CMD_MAX + 2];
	size_t line_len;
	int line_too_long;

	/* Session and transaction. */
	int greeted;
	int no_service;		/* greeting was not 2xx: only QUIT works */
	int in_mail;
	char *mail_from;
	struct fs_sbuf rcpts;	/* "<a>,<b>" */
	unsigned long nrcpt_ok, nrcpt_tried;
	unsigned long messages;	/* accepted (2xx after the dot) */
	unsigned long ticks;

	/* Message content. */
	enum fs_body bst;
	unsigned long long body_bytes;
	int bare_lf, bare_cr;
	int early_body;		/* content arrived before 354 was written */
	FILE *mfile;
	char *mname;		/* file name under maildir/tmp and /new */
	int mfile_err;

	/*
	 * Output: cur gathers the replies to the input being processed; at
	 * the end it is committed, to out at once or to a batch due after
	 * --delay-ms; out holds due bytes not yet handed to the kernel.
	 */
	struct fs_sbuf cur;
	struct fs_sbuf out;
	size_t out_off;
	struct fs_batch *bhead, *btail;
	size_t batch_bytes;
	int wr_inflight;
	size_t inflight_len;
	/* A reply that must be read before the client may send more (RFC
	 * 2920 3.1: EHLO, DATA, QUIT, NOOP... end a group) is unsent. */
	int barrier_pending;

	char rbuf[FS_READ_BUF];
};

struct fs_server {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_signal_t sigterm, sigint;
	uv_timer_t deadline;
	int stopping;
	FILE *log;
	struct fs_conn *conns;
	unsigned long next_id;
	unsigned long file_seq;
	unsigned long queue_id;
	char *ehlo;		/* the EHLO reply, built once */
	size_t ehlo_len;
	char *huge;		/* the --huge-line reply */
	unsigned long nconn, nmsg, nrcpt_rejected;
	const char *exit_reason;
};

static struct fs_opts opt;
static struct fs_server srv;

static void conn_abort(struct fs_conn *c, const char *why);
static void conn_check_drained(struct fs_conn *c);
static void conn_flush(struct fs_conn *c);

/* Diagnostic on stderr unless --quiet. */
static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	if (opt.quiet)
		return;
	va_start(ap, fmt);
	fputs("fault_server: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Dialogue trace on stderr with --verbose. */
static void __attribute__((format(printf, 2, 3)))
trace(const struct fs_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (!opt.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "fault_server: conn=%lu ", c->id);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* One line to --log, flushed at once so a test sees it immediately. */
static void __attribute__((format(printf, 1, 2))) log_line(const char *fmt, ...)
{
	va_list ap;

	if (!srv.log)
		return;
	va_start(ap, fmt);
	vfprintf(srv.log, fmt, ap);
	va_end(ap);
	fputc('\n', srv.log);
	fflush(srv.log);
}

/* Append n bytes (keeping a NUL after them); 0 or -1 when out of memory. */
static int sbuf_add(struct fs_sbuf *b, const void *data, size_t n)
{
	if (n >= SIZE_MAX / 2 - b->len)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void sbuf_free(struct fs_sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * Copy client text for a reply, log or trace line: at most max bytes, every
 * byte outside printable ASCII turned into '?', so nothing can inject a
 * line and the log stays ASCII.
 */
static void sanitize(char *dst, size_t dstlen, const char *src, size_t n, size_t max)
{
	size_t i, k = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < n && i < max && k + 1 < dstlen; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[k++] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
	}
	dst[k] = '\0';
}

/* The code of a reply in wire form: its first three digits, or 0. */
static int reply_code(const char *wire, size_t len)
{
	if (len < 3 || wire[0] < '0' || wire[0] > '9' || wire[1] < '0' ||
	    wire[1] > '9' || wire[2] < '0' || wire[2] > '9')
		return 0;
	return (wire[0] - '0') * 100 + (wire[1] - '0') * 10 + (wire[2] - '0');
}

/* The single state setter, so every transition can be traced. */
static void conn_set_state(struct fs_conn *c, enum fs_state st)
{
	if (c->state == st)
		return;
	trace(c, "state %s -> %s", fs_state_names[c->state], fs_state_names[st]);
	c->state = st;
}

/* Pending output: due, in flight, and delayed (not the chunk in progress). */
static size_t conn_pending(const struct fs_conn *c)
{
	return (c->out.len - c->out_off) + c->inflight_len + c->batch_bytes;
}

/*
 * Queue one reply (wire form) after the others for this input. A 421
 * closes the connection once it is written, as real servers do.
 */
static void conn_reply(struct fs_conn *c, const char *wire, size_t len)
{
	if (opt.verbose) {
		char shown[FS_ECHO_MAX + 1];
		const char *eol = memchr(wire, '\r', len);
		size_t first = eol ? (size_t)(eol - wire) : len;

		sanitize(shown, sizeof(shown), wire, first, FS_ECHO_MAX);
		trace(c, "> %s%s (%zu bytes)", shown,
		      first > FS_ECHO_MAX ? "..." : "", len);
	}
	if (sbuf_add(&c->cur, wire, len) < 0)
		c->failed = 1;
	if (reply_code(wire, len) == 421 && c->state != FS_ST_LINGER)
		conn_set_state(c, FS_ST_CLOSING);
}

/* Queue a one-line reply built from a format (CRLF added). */
static void __attribute__((format(printf, 2, 3)))
conn_replyf(struct fs_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	conn_reply(c, buf, (size_t)n);
}

/* Queue a configured reply, or the default one-line text when not set. */
static int conn_reply_cfg(struct fs_conn *c, const struct fs_reply *r, const char *deflt)
{
	if (r->wire) {
		conn_reply(c, r->wire, r->len);
		return r->code;
	}
	conn_replyf(c, "%s", deflt);
	return reply_code(deflt, strlen(deflt));
}

/* --split-delay-ms has passed since the last byte: write the next. */
static void conn_split_cb(uv_timer_t *t)
{
	struct fs_conn *c = t->data;

	if (c->aborting)
		return;
	conn_flush(c);
	conn_check_drained(c);
}

/* A write finished: write what is due next (or pause, --split-delay-ms). */
static void conn_write_cb(uv_write_t *req, int status)
{
	struct fs_wreq *w = (struct fs_wreq *)req;
	struct fs_conn *c = req->data;

	c->wr_inflight = 0;
	c->inflight_len = 0;
	free(w);
	if (c->aborting)
		return;
	if (status < 0) {
		conn_abort(c, uv_err_name(status));
		return;
	}
	if (opt.split_bytes && opt.split_delay_ms && c->out.len > c->out_off) {
		uv_timer_start(&c->split_timer, conn_split_cb, opt.split_delay_ms, 0);
		return;
	}
	conn_flush(c);
	conn_check_drained(c);
}

/*
 * Hand due output to the kernel. Normally the bytes go in one write (tried
 * synchronously first, the rest through uv_write); with --split-bytes each
 * byte is its own uv_write, the next one issued from the previous one's
 * callback (after --split-delay-ms), so they leave in separate segments on
 * separate loop turns.
 */
static void conn_flush(struct fs_conn *c)
{
	struct fs_wreq *w;
	size_t n;
	uv_buf_t b;
	int r;

	if (c->aborting || c->wr_inflight || c->out.len == c->out_off ||
	    uv_is_active((uv_handle_t *)&c->split_timer))
		return;
	n = c->out.len - c->out_off;
	if (opt.split_bytes) {
		/* One byte now, the next from the split timer (a later loop
		 * turn, after --split-delay-ms). A byte the kernel took at once
		 * counts as handed over now, not in a write callback a loop
		 * turn later: a fast client may answer the last byte before
		 * that callback runs, and the pipelining check must not call
		 * that early. */
		n = 1;
		b = uv_buf_init(c->out.p + c->out_off, 1);
		r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (r < 0 && r != UV_EAGAIN) {
			conn_abort(c, uv_err_name(r));
			return;
		}
		if (r == 1) {
			c->out_off++;
			n = 0;
			if (c->out_off < c->out.len)
				uv_timer_start(&c->split_timer, conn_split_cb,
				               opt.split_delay_ms, 0);
		}
	} else {
		/* n fits: --huge-line is at most 1 GiB and reading pauses
		 * while more than FS_OUT_HIGH is unsent. */
		b = uv_buf_init(c->out.p + c->out_off, (unsigned int)n);
		r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (r < 0 && r != UV_EAGAIN) {
			conn_abort(c, uv_err_name(r));
			return;
		}
		if (r > 0) {
			c->out_off += (size_t)r;
			n -= (size_t)r;
		}
	}
	if (n > 0) {
		w = malloc(sizeof(*w) + n);
		if (!w) {
			conn_abort(c, "out of memory");
			return;
		}
		memcpy(w->data, c->out.p + c->out_off, n);
		w->len = n;
		w->req.data = c;
		b = uv_buf_init(w->data, (unsigned int)n);
		r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
		if (r < 0) {
			free(w);
			conn_abort(c, uv_err_name(r));
			return;
		}
		c->out_off += n;
		c->wr_inflight = 1;
		c->inflight_len = n;
	}
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
		/* Give back the memory of a --huge-line reply. */
		if (c->out.cap > FS_OUT_HIGH)
			sbuf_free(&c->out);
	}
}

/* Move the batches that are due into out and write them. */
static void conn_delay_cb(uv_timer_t *t)
{
	struct fs_conn *c = t->data;
	uint64_t now = uv_now(&srv.loop);

	if (c->aborting)
		return;
	while (c->bhead && c->bhead->due <= now) {
		struct fs_batch *b = c->bhead;

		if (sbuf_add(&c->out, b->data, b->len) < 0) {
			conn_abort(c, "out of memory");
			return;
		}
		c->bhead = b->next;
		if (!c->bhead)
			c->btail = NULL;
		c->batch_bytes -= b->len;
		free(b);
	}
	if (c->bhead)
		uv_timer_start(&c->delay_timer, conn_delay_cb, c->bhead->due - now, 0);
	conn_flush(c);
	conn_check_drained(c);
}

/*
 * The replies to one piece of input are complete: write them now, or keep
 * them as a batch due --delay-ms after the input arrived (the replies a
 * real server behind that round trip would send).
 */
static void conn_commit(struct fs_conn *c)
{
	struct fs_batch *b;

	if (c->aborting)
		return;
	if (c->cur.len > 0 && opt.delay_ms == 0) {
		if (c->out.len == c->out_off && c->out.cap <= c->cur.cap) {
			struct fs_sbuf t = c->out;

			c->out = c->cur;
			c->out_off = 0;
			c->cur = t;
			c->cur.len = 0;
		} else if (sbuf_add(&c->out, c->cur.p, c->cur.len) < 0) {
			conn_abort(c, "out of memory");
			return;
		}
		c->cur.len = 0;
		conn_flush(c);
	} else if (c->cur.len > 0) {
		b = malloc(sizeof(*b) + c->cur.len);
		if (!b) {
			conn_abort(c, "out of memory");
			return;
		}
		b->next = NULL;
		b->due = uv_now(&srv.loop) + opt.delay_ms;
		b->len = c->cur.len;
		memcpy(b->data, c->cur.p, c->cur.len);
		if (c->btail)
			c->btail->next = b;
		else
			c->bhead = b;
		c->btail = b;
		c->batch_bytes += b->len;
		c->cur.len = 0;
		if (c->cur.cap > FS_OUT_HIGH)
			sbuf_free(&c->cur);
		if (!uv_is_active((uv_handle_t *)&c->delay_timer))
			uv_timer_start(&c->delay_timer, conn_delay_cb, opt.delay_ms, 0);
	}
	if (c->aborting)
		return;
	if (!c->read_paused && conn_pending(c) > FS_OUT_HIGH &&
	    c->state != FS_ST_LINGER) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->read_paused = 1;
	}
	conn_check_drained(c);
}

/* The linger after our FIN has run out. */
static void conn_linger_cb(uv_timer_t *t)
{
	conn_abort(t->data, "linger timeout");
}

/* Our FIN is out: wait for the client to close (or time out). */
static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct fs_conn *c = req->data;

	if (c->aborting)
		return;
	if (status < 0 || c->peer_eof) {
		conn_abort(c, status < 0 ? uv_err_name(status) : "closed");
		return;
	}
	uv_timer_start(&c->delay_timer, conn_linger_cb, FS_LINGER_MS, 0);
}

/*
 * Everything queued has been handed to the kernel: the client may now send
 * again (clears the RFC 2920 barrier), reading resumes, and a closing
 * connection sends its FIN.
 */
static void conn_check_drained(struct fs_conn *c)
{
	int r;

	if (c->aborting || c->cur.len > 0 || conn_pending(c) > 0 || c->wr_inflight)
		return;
	c->barrier_pending = 0;
	if (c->read_paused && !c->peer_eof) {
		c->read_paused = 0;
		uv_read_start((uv_stream_t *)&c->tcp, NULL, NULL);
	}
	if (c->state != FS_ST_CLOSING)
		return;
	conn_set_state(c, FS_ST_LINGER);
	if (c->peer_eof) {
		conn_abort(c, "closed");
		return;
	}
	c->shut.data = c;
	r = uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, conn_shutdown_cb);
	if (r < 0)
		conn_abort(c, uv_err_name(r));
}

/* Forget the mail transaction (RSET, HELO/EHLO, after the dot). */
static void conn_reset_tx(struct fs_conn *c)
{
	free(c->mail_from);
	c->mail_from = NULL;
	c->in_mail = 0;
	c->rcpts.len = 0;
	if (c->rcpts.p)
		c->rcpts.p[0] = '\0';
	c->nrcpt_ok = c->nrcpt_tried = 0;
}

/* Close and remove the message file (no-op without one). */
static void msg_file_discard(struct fs_conn *c)
{
	char path[4096];

	if (c->mfile) {
		fclose(c->mfile);
		c->mfile = NULL;
	}
	if (c->mname) {
		/* After a delivery the tmp name is gone and unlink fails. */
		snprintf(path, sizeof(path), "%s/tmp/%s", opt.maildir, c->mname);
		unlink(path);
		free(c->mname);
		c->mname = NULL;
	}
}

/* Start a message file in maildir/tmp (no-op without --maildir). */
static void msg_file_open(struct fs_conn *c)
{
	char name[128], path[4096];

	c->mfile_err = 0;
	if (!opt.maildir)
		return;
	snprintf(name, sizeof(name), "%lld.P%ldQ%lu.fault", (long long)time(NULL),
		 (long)getpid(), ++srv.file_seq);
	snprintf(path, sizeof(path), "%s/tmp/%s", opt.maildir, name);
	c->mname = strdup(name);
	c->mfile = c->mname ? fopen(path, "wb") : NULL;
	if (!c->mfile) {
		note("conn=%lu cannot create %s: %s", c->id, path, strerror(errno));
		c->mfile_err = 1;
		free(c->mname);
		c->mname = NULL;
	}
}

/* Finish writing the message file; 0, or -1 on a write error. */
static int msg_file_close(struct fs_conn *c)
{
	int bad;

	if (!c->mfile)
		return c->mfile_err ? -1 : 0;
	bad = ferror(c->mfile);
	if (fclose(c->mfile) != 0)
		bad = 1;
	c->mfile = NULL;
	if (bad) {
		note("conn=%lu write error on %s/tmp/%s", c->id, opt.maildir, c->mname);
		c->mfile_err = 1;
	}
	return bad ? -1 : 0;
}

/* Deliver the closed message file: tmp/NAME -> new/NAME; 0 or -1. */
static int msg_file_deliver(struct fs_conn *c)
{
	char from[4096], to[4096];

	if (!c->mname)
		return opt.maildir ? -1 : 0;
	snprintf(from, sizeof(from), "%s/tmp/%s", opt.maildir, c->mname);
	snprintf(to, sizeof(to), "%s/new/%s", opt.maildir, c->mname);
	if (rename(from, to) < 0) {
		note("conn=%lu rename %s: %s", c->id, from, strerror(errno));
		unlink(from);
		return -1;
	}
	return 0;
}

/* The log line for a message that ended: KIND from=... rcpts=... ... */
static void log_msg(struct fs_conn *c, const char *kind, int code, int with_file)
{
	char codebuf[32] = "", filebuf[160] = "";

	if (code > 0)
		snprintf(codebuf, sizeof(codebuf), " code=%d", code);
	if (with_file && c->mname)
		snprintf(filebuf, sizeof(filebuf), " file=%s", c->mname);
	log_line("%s from=<%s> rcpts=%s bytes=%llu bare-lf=%d bare-cr=%d conn=%lu%s%s",
		 kind, c->mail_from ? c->mail_from : "", c->rcpts.p ? c->rcpts.p : "",
		 c->body_bytes, c->bare_lf, c->bare_cr, c->id, codebuf, filebuf);
}

/*
 * The final dot arrived: decide the outcome, log it, store the file, reply
 * (or not: --stall-after-354, --drop-after-dot).
 */
static void conn_end_data(struct fs_conn *c)
{
	char ok[64];
	int code, ferr;

	trace(c, "< (message content, %llu bytes after unstuffing, bare-lf=%d bare-cr=%d)",
	      c->body_bytes, c->bare_lf, c->bare_cr);
	conn_set_state(c, FS_ST_CMD);
	ferr = msg_file_close(c);
	if (opt.stall_after_354 || opt.drop_after_dot) {
		int stored = ferr == 0 && msg_file_deliver(c) == 0;

		log_msg(c, opt.stall_after_354 ? "msg-stalled" : "msg-dropped", 0, stored);
		conn_set_state(c, opt.stall_after_354 ? FS_ST_STALLED : FS_ST_CLOSING);
		goto done;
	}
	if (c->early_body) {
		conn_replyf(c, "554 5.5.0 Error: message content sent before the 354 reply");
		code = 554;
	} else if (ferr < 0) {
		conn_replyf(c, "451 4.3.0 Error: queue file write error");
		code = 451;
	} else if (opt.have_size && opt.size > 0 && c->body_bytes > opt.size) {
		conn_replyf(c, "552 5.3.4 Message size exceeds fixed limit");
		code = 552;
	} else {
		code = opt.dot_reply.wire ? opt.dot_reply.code : 250;
		if (code / 100 == 2 && msg_file_deliver(c) < 0) {
			conn_replyf(c, "451 4.3.0 Error: queue file write error");
			code = 451;
		} else {
			snprintf(ok, sizeof(ok), "250 2.0.0 Ok: queued as %lX", ++srv.queue_id);
			if (code / 100 == 2) {
				/* Log before the reply goes out (the contract). */
				c->messages++;
				srv.nmsg++;
				log_msg(c, "msg", code, 1);
			}
			conn_reply_cfg(c, &opt.dot_reply, ok);
		}
	}
	if (code / 100 != 2)
		log_msg(c, "msg-rejected", code, 0);
done:
	msg_file_discard(c);
	conn_reset_tx(c);
	/* --dot-barrier: a server stricter than RFC 2920 3.1, which lets
	 * message content begin a command group but not end one */
	if (opt.dot_barrier)
		c->barrier_pending = 1;
}

/* Count (and store) one byte of message content. */
static inline void body_emit(struct fs_conn *c, int ch)
{
	c->body_bytes++;
	if (c->mfile)
		putc_unlocked(ch, c->mfile);
}

/*
 * Feed message content; returns how many bytes were used (up to and
 * including the end-of-data line, or all of them). Lines end in CRLF only:
 * a bare LF or CR is content and is flagged (bare-lf/bare-cr in the log),
 * so "<LF>.<CR><LF>" does not end the message (SMTP smuggling). With
 * --lenient-eod a bare LF also ends a line, as at vulnerable servers.
 * A '.' starting a line is removed (RFC 5321 4.5.2) unless the line is
 * exactly "." (the end).
 */
static size_t conn_feed_body(struct fs_conn *c, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int ch = (unsigned char)p[i];

		switch (c->bst) {
		case FS_B_BOL:
			if (ch == '.') {
				c->bst = FS_B_DOT;
				continue;
			}
			break;
		case FS_B_MID:
			break;
		case FS_B_CR:
			if (ch == '\n') {
				body_emit(c, '\n');
				c->bst = FS_B_BOL;
				continue;
			}
			c->bare_cr = 1;
			break;
		case FS_B_DOT:
			if (ch == '\r') {
				c->bst = FS_B_DOTCR;
				continue;
			}
			if (ch == '\n' && opt.lenient_eod) {
				c->bare_lf = 1;
				conn_end_data(c);
				return i + 1;
			}
			break;		/* the stuffing dot is dropped */
		case FS_B_DOTCR:
			if (ch == '\n') {
				conn_end_data(c);
				return i + 1;
			}
			/* ".<CR>x": the dot was stuffing, the CR is bare. */
			body_emit(c, '\r');
			c->bare_cr = 1;
			break;
		}
		if (ch == '\r') {
			body_emit(c, '\r');
			c->bst = FS_B_CR;
		} else if (ch == '\n') {
			body_emit(c, '\n');
			c->bare_lf = 1;
			c->bst = opt.lenient_eod ? FS_B_BOL : FS_B_MID;
		} else {
			body_emit(c, ch);
			c->bst = FS_B_MID;
		}
	}
	return n;
}

/* DATA was accepted with 354: read content from now on. */
static void conn_begin_data(struct fs_conn *c)
{
	c->bst = FS_B_BOL;
	c->body_bytes = 0;
	c->bare_lf = c->bare_cr = 0;
	c->early_body = 0;
	msg_file_open(c);
	conn_set_state(c, FS_ST_DATA);
}

/*
 * Check a path's bytes: 0 when printable ASCII; otherwise queue the reply
 * (RFC 6531: non-ASCII needs SMTPUTF8, which we never advertise) and -1.
 */
static int check_path(struct fs_conn *c, const char *path, const char *bad_syntax)
{
	const unsigned char *p;

	for (p = (const unsigned char *)path; *p; p++) {
		if (*p > 0x7e) {
			conn_replyf(c, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
			return -1;
		}
		if (*p < 0x20 || *p == 0x7f) {
			conn_replyf(c, "%s", bad_syntax);
			return -1;
		}
	}
	return 0;
}

/*
 * Parse "<path> [params]" (spaces allowed before '<', as many servers do).
 * Points *path and *params into s, NUL-terminating in place; 0 or -1.
 */
static int parse_path(char *s, char **path, char **params)
{
	char *end;

	while (*s == ' ')
		s++;
	if (*s != '<')
		return -1;
	end = strchr(s + 1, '>');
	if (!end)
		return -1;
	*end = '\0';
	*path = s + 1;
	s = end + 1;
	if (*s != '\0' && *s != ' ')
		return -1;
	while (*s == ' ')
		s++;
	*params = s;
	return 0;
}

/* Check MAIL parameters; 0, or -1 after queueing the error reply. */
static int mail_params(struct fs_conn *c, char *params)
{
	char *save = NULL, *tok, shown[FS_ECHO_MAX + 1];

	for (tok = strtok_r(params, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (opt.have_size && strncasecmp(tok, "SIZE=", 5) == 0) {
			const char *d = tok + 5;
			unsigned long long v = 0;

			if (*d == '\0' || strlen(d) > 19 || strspn(d, "0123456789") != strlen(d)) {
				conn_replyf(c, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			v = strtoull(d, NULL, 10);
			if (opt.size > 0 && v > opt.size) {
				conn_replyf(c, "552 5.3.4 Message size exceeds fixed limit");
				return -1;
			}
		} else if (strcasecmp(tok, "BODY=7BIT") == 0 ||
			   (opt.eightbitmime && strcasecmp(tok, "BODY=8BITMIME") == 0)) {
			continue;
		} else {
			sanitize(shown, sizeof(shown), tok, strlen(tok), FS_ECHO_MAX);
			conn_replyf(c, "555 5.5.4 Unsupported option: %s", shown);
			return -1;
		}
	}
	return 0;
}

/* MAIL FROM:<path> [params] */
static void cmd_mail(struct fs_conn *c, char *arg)
{
	char *path, *params;
	int code;

	if (!c->greeted) {
		conn_replyf(c, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (c->in_mail) {
		conn_replyf(c, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (strncasecmp(arg, "FROM:", 5) != 0 || parse_path(arg + 5, &path, &params) < 0) {
		conn_replyf(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (check_path(c, path, "501 5.1.7 Bad sender address syntax") < 0 ||
	    mail_params(c, params) < 0)
		return;
	code = conn_reply_cfg(c, &opt.mail_reply, "250 2.1.0 Ok");
	if (code / 100 != 2)
		return;
	c->mail_from = strdup(path);
	if (!c->mail_from) {
		c->failed = 1;
		return;
	}
	c->in_mail = 1;
}

/* RCPT TO:<path>: --rcpt-reply rules, first match wins. */
static void cmd_rcpt(struct fs_conn *c, char *arg)
{
	char *path, *params, shown[FS_ECHO_MAX + 1];
	const struct fs_reply *r = NULL;
	size_t i;
	int code;

	if (!c->in_mail) {
		conn_replyf(c, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (strncasecmp(arg, "TO:", 3) != 0 || parse_path(arg + 3, &path, &params) < 0) {
		conn_replyf(c, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (*path == '\0') {
		conn_replyf(c, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (check_path(c, path, "501 5.1.3 Bad recipient address syntax") < 0)
		return;
	if (*params != '\0') {
		sanitize(shown, sizeof(shown), params, strlen(params), FS_ECHO_MAX);
		conn_replyf(c, "555 5.5.4 Unsupported option: %s", shown);
		return;
	}
	c->nrcpt_tried++;
	if (c->nrcpt_ok >= opt.max_rcpts) {
		code = 452;
	} else {
		for (i = 0; i < opt.nrules && !r; i++)
			if (strstr(path, opt.rules[i].pattern))
				r = &opt.rules[i].reply;
		code = r ? r->code : 250;
	}
	if (code / 100 == 2) {
		if ((c->rcpts.len && sbuf_add(&c->rcpts, ",", 1) < 0) ||
		    sbuf_add(&c->rcpts, "<", 1) < 0 ||
		    sbuf_add(&c->rcpts, path, strlen(path)) < 0 ||
		    sbuf_add(&c->rcpts, ">", 1) < 0)
			c->failed = 1;
		c->nrcpt_ok++;
	} else {
		/* Logged before the reply goes out (the contract). */
		log_line("rcpt-rejected <%s> %d conn=%lu", path, code, c->id);
		srv.nrcpt_rejected++;
	}
	if (r)
		conn_reply(c, r->wire, r->len);
	else if (code == 452)
		conn_replyf(c, "452 4.5.3 Error: too many recipients");
	else
		conn_replyf(c, "250 2.1.5 Ok");
}

/* DATA: sequence checks, then 354 (or --data-reply). */
static void cmd_data(struct fs_conn *c, const char *arg)
{
	int code;

	if (*arg != '\0') {
		conn_replyf(c, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!c->in_mail) {
		conn_replyf(c, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (c->nrcpt_ok == 0) {
		if (c->nrcpt_tried == 0)
			conn_replyf(c, "503 5.5.1 Error: need RCPT command");
		else
			conn_replyf(c, "554 5.5.1 Error: no valid recipients");
		return;
	}
	code = conn_reply_cfg(c, &opt.data_reply, "354 End data with <CR><LF>.<CR><LF>");
	if (code == 354)
		conn_begin_data(c);
}

/* One more line of the EHLO reply that never ends. */
static void conn_tick_cb(uv_timer_t *t)
{
	struct fs_conn *c = t->data;

	if (c->aborting || c->state != FS_ST_NEVER_END)
		return;
	/* A client that does not read gets no more lines until it does. */
	if (conn_pending(c) > FS_OUT_HIGH)
		return;
	conn_replyf(c, "250-" FS_HOSTNAME " never ends %lu", ++c->ticks);
	conn_commit(c);
}

/* EHLO/HELO: the extension list, or --huge-line / --never-end. */
static void cmd_hello(struct fs_conn *c, int ehlo, const char *arg)
{
	if (*arg == '\0') {
		conn_replyf(c, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
		return;
	}
	conn_reset_tx(c);
	c->greeted = 1;
	if (!ehlo) {
		conn_replyf(c, "250 " FS_HOSTNAME);
	} else if (opt.huge_line) {
		conn_reply(c, srv.huge, opt.huge_line);
	} else if (opt.never_end) {
		conn_replyf(c, "250-" FS_HOSTNAME);
		conn_set_state(c, FS_ST_NEVER_END);
		uv_timer_start(&c->tick_timer, conn_tick_cb, FS_TICK_MS, FS_TICK_MS);
	} else {
		conn_reply(c, srv.ehlo, srv.ehlo_len);
	}
}

enum fs_cmd {
	FS_CMD_EHLO, FS_CMD_HELO, FS_CMD_MAIL, FS_CMD_RCPT, FS_CMD_DATA,
	FS_CMD_RSET, FS_CMD_NOOP, FS_CMD_QUIT, FS_CMD_STARTTLS, FS_CMD_UNKNOWN,
};

static const struct {
	const char *name;
	enum fs_cmd cmd;
} fs_cmds[] = {
	{ "EHLO", FS_CMD_EHLO }, { "HELO", FS_CMD_HELO }, { "MAIL", FS_CMD_MAIL },
	{ "RCPT", FS_CMD_RCPT }, { "DATA", FS_CMD_DATA }, { "RSET", FS_CMD_RSET },
	{ "NOOP", FS_CMD_NOOP }, { "QUIT", FS_CMD_QUIT },
	{ "STARTTLS", FS_CMD_STARTTLS },
};

/* Reject a line we cannot use, and log it (smuggled text shows up here). */
static void conn_bad_command(struct fs_conn *c, const char *line, size_t len,
			     int code, const char *reply)
{
	char shown[FS_ECHO_MAX + 1];

	sanitize(shown, sizeof(shown), line, len, FS_ECHO_MAX);
	log_line("bad-command conn=%lu code=%d line=%s", c->id, code, shown);
	conn_replyf(c, "%s", reply);
}

/* One complete command line (line end removed, NUL-terminated). */
static void conn_command(struct fs_conn *c, char *line, size_t len)
{
	enum fs_cmd cmd = FS_CMD_UNKNOWN;
	char *arg, verb[16];
	size_t vlen, i;
	int barrier;

	if (opt.verbose) {
		char shown[FS_ECHO_MAX + 1];

		sanitize(shown, sizeof(shown), line, len, FS_ECHO_MAX);
		trace(c, "< %s%s", shown, len > FS_ECHO_MAX ? "..." : "");
	}
	if (memchr(line, '\0', len)) {
		conn_bad_command(c, line, len, 500, "500 5.5.2 Error: NUL character in command");
		c->barrier_pending = 1;
		return;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	vlen = strcspn(line, " ");
	arg = line + vlen;
	while (*arg == ' ')
		arg++;
	for (i = 0; i < sizeof(fs_cmds) / sizeof(fs_cmds[0]); i++)
		if (strlen(fs_cmds[i].name) == vlen && strncasecmp(line, fs_cmds[i].name, vlen) == 0)
			cmd = fs_cmds[i].cmd;
	sanitize(verb, sizeof(verb), line, vlen, sizeof(verb) - 1);
	/* RFC 2920 3.1: only RSET, MAIL and RCPT may be followed in a group. */
	barrier = !opt.pipelining ||
		  !(cmd == FS_CMD_MAIL || cmd == FS_CMD_RCPT || cmd == FS_CMD_RSET);

	if (opt.sync_check && c->barrier_pending) {
		log_line("sync-error conn=%lu cmd=%s", c->id, verb);
		conn_replyf(c, "503 5.5.0 Error: improper use of SMTP command pipelining");
		c->barrier_pending = 1;
		return;
	}
	if (opt.after421 >= 0 && c->messages >= (unsigned long)opt.after421) {
		conn_replyf(c, "421 4.7.0 too many");
		return;
	}
	if (c->no_service && cmd != FS_CMD_QUIT) {
		conn_replyf(c, "503 5.5.1 Error: no SMTP service here");
		c->barrier_pending |= barrier;
		return;
	}
	switch (cmd) {
	case FS_CMD_EHLO:
	case FS_CMD_HELO:
		cmd_hello(c, cmd == FS_CMD_EHLO, arg);
		break;
	case FS_CMD_MAIL:
		cmd_mail(c, arg);
		break;
	case FS_CMD_RCPT:
		cmd_rcpt(c, arg);
		/* --drop-after-rcpt: whatever the first RCPT reply was. */
		if (opt.drop_after_rcpt)
			conn_set_state(c, FS_ST_CLOSING);
		break;
	case FS_CMD_DATA:
		cmd_data(c, arg);
		break;
	case FS_CMD_RSET:
		conn_reset_tx(c);
		conn_replyf(c, "250 2.0.0 Ok");
		break;
	case FS_CMD_NOOP:
		conn_replyf(c, "250 2.0.0 Ok");
		break;
	case FS_CMD_QUIT:
		conn_replyf(c, "221 2.0.0 Bye");
		conn_set_state(c, FS_ST_CLOSING);
		break;
	case FS_CMD_STARTTLS:
	case FS_CMD_UNKNOWN:
		/* STARTTLS that was not advertised is not recognised. */
		if (cmd == FS_CMD_STARTTLS && opt.starttls)
			conn_replyf(c, "454 4.7.0 TLS not available");
		else if (len == 0)
			conn_bad_command(c, line, len, 500, "500 5.5.2 Error: bad syntax");
		else
			conn_bad_command(c, line, len, 502,
					 "502 5.5.2 Error: command not recognized");
		break;
	}
	c->barrier_pending |= barrier;
}

/*
 * Command mode: gather bytes into the line buffer up to each LF (a bare LF
 * is accepted as a line end; a CR before it is removed). Returns the bytes
 * used: up to and including one LF, or all of them.
 */
static size_t conn_feed_line(struct fs_conn *c, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) : n;
	size_t len;

	if (!c->line_too_long) {
		if (c->line_len + take > FS_CMD_MAX + 1) {
			c->line_too_long = 1;
		} else {
			memcpy(c->line + c->line_len, p, take);
			c->line_len += take;
		}
	}
	if (!nl)
		return n;
	len = c->line_len;
	if (len > 0 && c->line[len - 1] == '\r')
		len--;
	if (c->line_too_long || len > FS_CMD_MAX) {
		trace(c, "< (line longer than %d bytes)", FS_CMD_MAX);
		log_line("bad-command conn=%lu code=500 line=(longer than %d bytes)",
			 c->id, FS_CMD_MAX);
		conn_replyf(c, "500 5.5.2 line too long");
		c->barrier_pending = 1;
	} else {
		c->line[len] = '\0';
		conn_command(c, c->line, len);
	}
	c->line_len = 0;
	c->line_too_long = 0;
	return take + 1;
}

/* Process one piece of input in order, switching between lines and content. */
static void conn_feed(struct fs_conn *c, const char *p, size_t n)
{
	size_t used;

	while (n > 0 && !c->failed) {
		switch (c->state) {
		case FS_ST_CMD:
			used = conn_feed_line(c, p, n);
			break;
		case FS_ST_DATA:
			/* RFC 2920 3.1: content only after the 354 was read. */
			if (opt.sync_check && c->barrier_pending && !c->early_body) {
				c->early_body = 1;
				log_line("sync-error conn=%lu cmd=message-content", c->id);
			}
			used = conn_feed_body(c, p, n);
			break;
		default:
			return;	/* input ignored in the other states */
		}
		p += used;
		n -= used;
	}
}

/* libuv asks where to read: the connection's own buffer. */
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fs_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fs_conn *c = s->data;

	(void)buf;
	if (c->aborting)
		return;
	if (nread > 0) {
		if (c->state == FS_ST_CMD || c->state == FS_ST_DATA) {
			/* read boundaries show what the client wrote together
			 * (tests: a MAIL staged behind a final dot) */
			trace(c, "read %zd bytes", nread);
			conn_feed(c, c->rbuf, (size_t)nread);
			if (c->failed) {
				conn_abort(c, "out of memory");
				return;
			}
			conn_commit(c);
		}
		return;
	}
	if (nread == 0)
		return;
	if (nread != UV_EOF) {
		conn_abort(c, uv_err_name((int)nread));
		return;
	}
	/* EOF: deliver what is still queued (e.g. the 221 after a QUIT the
	 * client sent before half-closing), then close. */
	c->peer_eof = 1;
	uv_read_stop(s);
	if (c->state == FS_ST_DATA)
		trace(c, "eof in message content after %llu bytes", c->body_bytes);
	if (conn_pending(c) == 0 || c->state == FS_ST_LINGER ||
	    c->state == FS_ST_NEVER_END || c->state == FS_ST_STALLED) {
		conn_abort(c, "client closed");
		return;
	}
	conn_set_state(c, FS_ST_CLOSING);
	conn_check_drained(c);
}

/* One handle of the connection closed; the last one frees it. */
static void conn_close_cb(uv_handle_t *h)
{
	struct fs_conn *c = h->data;
	struct fs_batch *b;

	if (--c->handles_open > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	while ((b = c->bhead)) {
		c->bhead = b->next;
		free(b);
	}
	sbuf_free(&c->cur);
	sbuf_free(&c->out);
	sbuf_free(&c->rcpts);
	free(c->mail_from);
	free(c);
}

/* Close the connection now (safe anywhere: the free waits for libuv). */
static void conn_abort(struct fs_conn *c, const char *why)
{
	if (c->aborting)
		return;
	c->aborting = 1;
	if (!opt.quiet)
		note("conn=%lu close reason=%s state=%s messages=%lu", c->id, why,
		     fs_state_names[c->state], c->messages);
	msg_file_discard(c);
	c->handles_open = 4;
	uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
	uv_close((uv_handle_t *)&c->delay_timer, conn_close_cb);
	uv_close((uv_handle_t *)&c->tick_timer, conn_close_cb);
	uv_close((uv_handle_t *)&c->split_timer, conn_close_cb);
}

/* A client connected: accept, greet. */
static void on_connection(uv_stream_t *server, int status)
{
	struct fs_conn *c;
	struct sockaddr_storage ss;
	char host[64] = "?";
	int len = sizeof(ss), r;

	if (status < 0) {
		note("accept: %s", uv_strerror(status));
		return;
	}
	if (srv.stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		note("accept: out of memory");
		return;
	}
	uv_tcp_init(&srv.loop, &c->tcp);
	uv_timer_init(&srv.loop, &c->delay_timer);
	uv_timer_init(&srv.loop, &c->tick_timer);
	uv_timer_init(&srv.loop, &c->split_timer);
	c->tcp.data = c->delay_timer.data = c->tick_timer.data = c->split_timer.data = c;
	c->id = ++srv.next_id;
	c->next = srv.conns;
	if (srv.conns)
		srv.conns->prev = c;
	srv.conns = c;
	r = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		conn_abort(c, uv_err_name(r));
		return;
	}
	srv.nconn++;
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
		else
			uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
	}
	if (opt.verbose)
		trace(c, "open peer=%s", host);
	r = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
	if (r < 0) {
		conn_abort(c, uv_err_name(r));
		return;
	}
	/* RFC 5321 3.1: after a 554 greeting only QUIT is served (503). */
	if (conn_reply_cfg(c, &opt.greeting, FS_DEFAULT_GREETING) / 100 != 2)
		c->no_service = 1;
	c->barrier_pending = 1;
	conn_commit(c);
}

/* Close everything; the loop ends when the last handle is closed. */
static void server_stop(const char *why)
{
	struct fs_conn *c;

	if (srv.stopping)
		return;
	srv.stopping = 1;
	srv.exit_reason = why;
	for (c = srv.conns; c; c = c->next)
		conn_abort(c, why);
	uv_close((uv_handle_t *)&srv.listener, NULL);
	uv_close((uv_handle_t *)&srv.sigterm, NULL);
	uv_close((uv_handle_t *)&srv.sigint, NULL);
	uv_close((uv_handle_t *)&srv.deadline, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	server_stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_deadline(uv_timer_t *t)
{
	(void)t;
	server_stop("max-seconds");
}

/* Parse HOST:PORT or [V6HOST]:PORT; 0 or -1. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
	char host[128];
	const char *hend, *pstr;
	char *end;
	unsigned long port;

	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			return -1;
		s++;
		pstr = hend + 2;
	} else {
		hend = strrchr(s, ':');
		if (!hend)
			return -1;
		pstr = hend + 1;
	}
	if ((size_t)(hend - s) >= sizeof(host) || *pstr == '\0')
		return -1;
	memcpy(host, s, (size_t)(hend - s));
	host[hend - s] = '\0';
	errno = 0;
	port = strtoul(pstr, &end, 10);
	if (errno || *end != '\0' || port > 65535 || *pstr == '-')
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -1;
}

/* Build the EHLO and --huge-line replies once; 0 or -1. */
static int build_replies(void)
{
	struct fs_sbuf b = { 0 };
	char line[64];
	int bad = 0;

	bad |= sbuf_add(&b, "250-" FS_HOSTNAME "\r\n", strlen("250-" FS_HOSTNAME "\r\n"));
	if (opt.pipelining)
		bad |= sbuf_add(&b, "250-PIPELINING\r\n", 16);
	if (opt.have_size) {
		snprintf(line, sizeof(line), "250-SIZE %llu\r\n", opt.size);
		bad |= sbuf_add(&b, line, strlen(line));
	}
	if (opt.eightbitmime)
		bad |= sbuf_add(&b, "250-8BITMIME\r\n", 14);
	if (opt.starttls)
		bad |= sbuf_add(&b, "250-STARTTLS\r\n", 14);
	bad |= sbuf_add(&b, "250 ENHANCEDSTATUSCODES\r\n", 25);
	srv.ehlo = b.p;
	srv.ehlo_len = b.len;
	if (bad)
		return -1;
	if (opt.huge_line) {
		const char *head = "250 " FS_HOSTNAME " ";

		srv.huge = malloc(opt.huge_line);
		if (!srv.huge)
			return -1;
		memcpy(srv.huge, head, strlen(head));
		memset(srv.huge + strlen(head), 'x', opt.huge_line - strlen(head) - 2);
		memcpy(srv.huge + opt.huge_line - 2, "\r\n", 2);
	}
	return 0;
}

/*
 * Turn a REPLY argument into wire form: "\n" (backslash, n) or a real
 * newline separates lines, each line gets CRLF. It must start with a code
 * 200-599. 0, or -1 with a message printed.
 */
static int parse_reply(const char *what, const char *arg, struct fs_reply *r)
{
	struct fs_sbuf b = { 0 };
	const char *p;
	int bad = 0;

	if (arg[0] < '2' || arg[0] > '5' || arg[1] < '0' || arg[1] > '9' ||
	    arg[2] < '0' || arg[2] > '9') {
		fprintf(stderr, "fault_server: %s: a reply must start with a code 200-599: '%s'\n",
			what, arg);
		return -1;
	}
	for (p = arg; *p; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			bad |= sbuf_add(&b, "\r\n", 2);
			p++;
		} else if (*p == '\n') {
			bad |= sbuf_add(&b, "\r\n", 2);
		} else if (*p == '\r') {
			continue;
		} else {
			bad |= sbuf_add(&b, p, 1);
		}
	}
	bad |= sbuf_add(&b, "\r\n", 2);
	if (bad) {
		sbuf_free(&b);
		fprintf(stderr, "fault_server: out of memory\n");
		return -1;
	}
	free(r->wire);
	r->wire = b.p;
	r->len = b.len;
	r->code = reply_code(b.p, b.len);
	return 0;
}

/* Parse an unsigned decimal in [min, max]; 0 or -1 with a message. */
static int parse_num(const char *what, const char *s, unsigned long long min,
		     unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *s == '+' || errno || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "fault_server: --%s: expected a number %llu..%llu, got '%s'\n",
			what, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: fault_server [options]   (see tests/fault_server.md)\n"
	      "  --listen HOST:PORT       listen address (default 127.0.0.1:0 = any free port);\n"
	      "                           prints \"port=N\" on stdout once listening\n"
	      "  --pipelining / --no-pipelining   advertise PIPELINING (default on)\n"
	      "  --size N                 advertise SIZE N and enforce it (0: no limit)\n"
	      "  --starttls-advertise     advertise STARTTLS, answer it with 454\n"
	      "  --no-8bitmime            do not advertise 8BITMIME\n"
	      "  --delay-ms N             send the replies to each piece of input N ms later\n"
	      "  --rcpt-reply PAT=REPLY   RCPT addresses containing PAT get REPLY (repeatable)\n"
	      "  --mail-reply REPLY       reply to MAIL with REPLY\n"
	      "  --data-reply REPLY       reply to DATA with REPLY instead of 354\n"
	      "  --dot-reply REPLY        reply to the final dot with REPLY instead of 250\n"
	      "  --greeting REPLY         greeting (default \"" FS_DEFAULT_GREETING "\")\n"
	      "  --split-bytes            write replies one byte per write\n"
	      "  --split-delay-ms N       with --split-bytes, pause N ms between bytes\n"
	      "  --huge-line N            answer EHLO with one reply line of N bytes\n"
	      "  --never-end              answer EHLO with 250- lines forever (one per 100 ms)\n"
	      "  --stall-after-354        never answer the final dot\n"
	      "  --drop-after-dot         close without replying to the final dot\n"
	      "  --421-after N            after N accepted messages, answer 421 and close\n"
	      "  --drop-after-rcpt        close after the first RCPT reply\n"
	      "  --max-rcpts N            452 after N accepted recipients (default 1000)\n"
	      "  --lenient-eod            a bare LF also ends lines (like smuggling-prone servers)\n"
	      "  --no-sync-check          do not reject commands sent too early (RFC 2920)\n"
	      "  --dot-barrier            also reject (503) commands sent behind the final dot\n"
	      "  --max-seconds S          exit after S seconds (default 600)\n"
	      "  --log FILE               append one line per message / rejected recipient\n"
	      "  --maildir DIR            store each accepted message in DIR/new\n"
	      "  --count-only             store nothing (the default)\n"
	      "  --quiet / --verbose      no diagnostics / trace every command and reply\n"
	      "  REPLY: \"CODE text\"; \\n separates the lines of a multi-line reply\n",
	      f);
}

enum {
	OPT_LISTEN = 256, OPT_PIPELINING, OPT_NO_PIPELINING, OPT_SIZE, OPT_STARTTLS,
	OPT_NO_8BITMIME, OPT_DELAY, OPT_RCPT_REPLY, OPT_MAIL_REPLY, OPT_DATA_REPLY,
	OPT_DOT_REPLY, OPT_GREETING, OPT_SPLIT, OPT_SPLIT_DELAY, OPT_HUGE, OPT_NEVER_END, OPT_STALL,
	OPT_DROP_DOT, OPT_421_AFTER, OPT_DROP_RCPT, OPT_MAX_RCPTS, OPT_LENIENT,
	OPT_NO_SYNC, OPT_DOT_BARRIER, OPT_MAX_SECONDS, OPT_LOG, OPT_MAILDIR, OPT_COUNT_ONLY,
	OPT_QUIET, OPT_VERBOSE, OPT_HELP,
};

static const struct option fs_longopts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "pipelining", no_argument, NULL, OPT_PIPELINING },
	{ "no-pipelining", no_argument, NULL, OPT_NO_PIPELINING },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "starttls-advertise", no_argument, NULL, OPT_STARTTLS },
	{ "no-8bitmime", no_argument, NULL, OPT_NO_8BITMIME },
	{ "delay-ms", required_argument, NULL, OPT_DELAY },
	{ "rcpt-reply", required_argument, NULL, OPT_RCPT_REPLY },
	{ "mail-reply", required_argument, NULL, OPT_MAIL_REPLY },
	{ "data-reply", required_argument, NULL, OPT_DATA_REPLY },
	{ "dot-reply", required_argument, NULL, OPT_DOT_REPLY },
	{ "greeting", required_argument, NULL, OPT_GREETING },
	{ "split-bytes", no_argument, NULL, OPT_SPLIT },
	{ "split-delay-ms", required_argument, NULL, OPT_SPLIT_DELAY },
	{ "huge-line", required_argument, NULL, OPT_HUGE },
	{ "never-end", no_argument, NULL, OPT_NEVER_END },
	{ "stall-after-354", no_argument, NULL, OPT_STALL },
	{ "drop-after-dot", no_argument, NULL, OPT_DROP_DOT },
	{ "dot-barrier", no_argument, NULL, OPT_DOT_BARRIER },
	{ "421-after", required_argument, NULL, OPT_421_AFTER },
	{ "drop-after-rcpt", no_argument, NULL, OPT_DROP_RCPT },
	{ "max-rcpts", required_argument, NULL, OPT_MAX_RCPTS },
	{ "lenient-eod", no_argument, NULL, OPT_LENIENT },
	{ "no-sync-check", no_argument, NULL, OPT_NO_SYNC },
	{ "max-seconds", required_argument, NULL, OPT_MAX_SECONDS },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "maildir", required_argument, NULL, OPT_MAILDIR },
	{ "count-only", no_argument, NULL, OPT_COUNT_ONLY },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Add one --rcpt-reply PATTERN=REPLY; 0 or -1. */
static int add_rcpt_rule(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct fs_rcpt_rule *rules;
	struct fs_rcpt_rule rule = { 0 };

	if (!eq || eq == arg) {
		fprintf(stderr, "fault_server: --rcpt-reply: expected PATTERN=REPLY, got '%s'\n", arg);
		return -1;
	}
	if (parse_reply("--rcpt-reply", eq + 1, &rule.reply) < 0)
		return -1;
	rule.pattern = strndup(arg, (size_t)(eq - arg));
	rules = rule.pattern ? realloc(opt.rules, (opt.nrules + 1) * sizeof(*rules)) : NULL;
	if (!rules) {
		free(rule.pattern);
		free(rule.reply.wire);
		fprintf(stderr, "fault_server: out of memory\n");
		return -1;
	}
	opt.rules = rules;
	opt.rules[opt.nrules++] = rule;
	return 0;
}

/* Parse the command line into opt; 0 run, 1 done (help), -1 usage error. */
static int parse_options(int argc, char **argv)
{
	unsigned long long v;
	int ch;

	opt.listen = "127.0.0.1:0";
	opt.pipelining = 1;
	opt.eightbitmime = 1;
	opt.after421 = -1;
	opt.max_rcpts = FS_DEFAULT_MAX_RCPTS;
	opt.max_seconds = FS_DEFAULT_MAX_SECONDS;
	opt.sync_check = 1;
	while ((ch = getopt_long(argc, argv, "hqv", fs_longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_LISTEN: opt.listen = optarg; break;
		case OPT_PIPELINING: opt.pipelining = 1; break;
		case OPT_NO_PIPELINING: opt.pipelining = 0; break;
		case OPT_SIZE:
			if (parse_num("size", optarg, 0, ULLONG_MAX / 2, &v) < 0)
				return -1;
			opt.have_size = 1;
			opt.size = v;
			break;
		case OPT_STARTTLS: opt.starttls = 1; break;
		case OPT_NO_8BITMIME: opt.eightbitmime = 0; break;
		case OPT_DELAY:
			if (parse_num("delay-ms", optarg, 0, 3600 * 1000, &v) < 0)
				return -1;
			opt.delay_ms = (unsigned long)v;
			break;
		case OPT_RCPT_REPLY:
			if (add_rcpt_rule(optarg) < 0)
				return -1;
			break;
		case OPT_MAIL_REPLY:
			if (parse_reply("--mail-reply", optarg, &opt.mail_reply) < 0)
				return -1;
			break;
		case OPT_DATA_REPLY:
			if (parse_reply("--data-reply", optarg, &opt.data_reply) < 0)
				return -1;
			break;
		case OPT_DOT_REPLY:
			if (parse_reply("--dot-reply", optarg, &opt.dot_reply) < 0)
				return -1;
			break;
		case OPT_GREETING:
			if (parse_reply("--greeting", optarg, &opt.greeting) < 0)
				return -1;
			break;
		case OPT_SPLIT: opt.split_bytes = 1; break;
		case OPT_SPLIT_DELAY:
			if (parse_num("split-delay-ms", optarg, 0, 60 * 1000, &v) < 0)
				return -1;
			opt.split_delay_ms = (unsigned long)v;
			break;
		case OPT_HUGE:
			if (parse_num("huge-line", optarg, FS_HUGE_MIN, FS_HUGE_MAX, &v) < 0)
				return -1;
			opt.huge_line = (size_t)v;
			break;
		case OPT_NEVER_END: opt.never_end = 1; break;
		case OPT_STALL: opt.stall_after_354 = 1; break;
		case OPT_DROP_DOT: opt.drop_after_dot = 1; break;
		case OPT_421_AFTER:
			if (parse_num("421-after", optarg, 0, LONG_MAX, &v) < 0)
				return -1;
			opt.after421 = (long)v;
			break;
		case OPT_DROP_RCPT: opt.drop_after_rcpt = 1; break;
		case OPT_MAX_RCPTS:
			if (parse_num("max-rcpts", optarg, 1, ULONG_MAX, &v) < 0)
				return -1;
			opt.max_rcpts = (unsigned long)v;
			break;
		case OPT_LENIENT: opt.lenient_eod = 1; break;
		case OPT_NO_SYNC: opt.sync_check = 0; break;
		case OPT_DOT_BARRIER: opt.dot_barrier = 1; break;
		case OPT_MAX_SECONDS:
			if (parse_num("max-seconds", optarg, 1, FS_MAX_MAX_SECONDS, &v) < 0)
				return -1;
			opt.max_seconds = (unsigned long)v;
			break;
		case OPT_LOG: opt.log_path = optarg; break;
		case OPT_MAILDIR: opt.maildir = optarg; break;
		case OPT_COUNT_ONLY: opt.count_only = 1; break;
		case 'q':
		case OPT_QUIET: opt.quiet = 1; break;
		case 'v':
		case OPT_VERBOSE: opt.verbose = 1; break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fault_server: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (opt.count_only && opt.maildir) {
		fprintf(stderr, "fault_server: --count-only and --maildir conflict\n");
		return -1;
	}
	if (opt.huge_line && opt.never_end) {
		fprintf(stderr, "fault_server: --huge-line and --never-end conflict\n");
		return -1;
	}
	if (opt.stall_after_354 && opt.drop_after_dot) {
		fprintf(stderr, "fault_server: --stall-after-354 and --drop-after-dot conflict\n");
		return -1;
	}
	if (opt.quiet)
		opt.verbose = 0;
	return 0;
}

/* mkdir that accepts an existing directory; 0 or -1. */
static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0777) == 0 || errno == EEXIST)
		return 0;
	fprintf(stderr, "fault_server: mkdir %s: %s\n", path, strerror(errno));
	return -1;
}

/* Open the log, create the maildir, listen, announce the port; 0 or -1. */
static int server_start(void)
{
	struct sockaddr_storage ss;
	char path[4096];
	int len = sizeof(ss), r, port;
	static const char *const sub[] = { "tmp", "new", "cur" };
	size_t i;

	if (parse_listen(opt.listen, &ss) < 0) {
		fprintf(stderr, "fault_server: --listen: expected HOST:PORT, got '%s'\n", opt.listen);
		return -1;
	}
	if (build_replies() < 0) {
		fprintf(stderr, "fault_server: out of memory\n");
		return -1;
	}
	if (opt.log_path) {
		srv.log = fopen(opt.log_path, "a");
		if (!srv.log) {
			fprintf(stderr, "fault_server: --log %s: %s\n", opt.log_path, strerror(errno));
			return -1;
		}
	}
	if (opt.maildir) {
		if (mkdir_ok(opt.maildir) < 0)
			return -1;
		for (i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/%s", opt.maildir, sub[i]);
			if (mkdir_ok(path) < 0)
				return -1;
		}
	}
	r = uv_tcp_bind(&srv.listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv.listener, 1024, on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&ss, &len);
	if (r < 0) {
		fprintf(stderr, "fault_server: listen on %s: %s\n", opt.listen, uv_strerror(r));
		return -1;
	}
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_timer_start(&srv.deadline, on_deadline, (uint64_t)opt.max_seconds * 1000, 0);
	printf("port=%d\n", port);
	fflush(stdout);
	note("listening on port %d", port);
	return 0;
}

/* Free what the options and server_start() allocated. */
static void free_all(void)
{
	size_t i;

	for (i = 0; i < opt.nrules; i++) {
		free(opt.rules[i].pattern);
		free(opt.rules[i].reply.wire);
	}
	free(opt.rules);
	free(opt.greeting.wire);
	free(opt.mail_reply.wire);
	free(opt.data_reply.wire);
	free(opt.dot_reply.wire);
	free(srv.ehlo);
	free(srv.huge);
	if (srv.log)
		fclose(srv.log);
}

/* A few hundred connections need more than the usual 1024 descriptors. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	int rc = parse_options(argc, argv);

	if (rc != 0) {
		free_all();
		return rc > 0 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (uv_loop_init(&srv.loop) < 0) {
		fprintf(stderr, "fault_server: uv_loop_init failed\n");
		free_all();
		return 1;
	}
	uv_tcp_init(&srv.loop, &srv.listener);
	uv_signal_init(&srv.loop, &srv.sigterm);
	uv_signal_init(&srv.loop, &srv.sigint);
	uv_timer_init(&srv.loop, &srv.deadline);
	rc = server_start();
	if (rc < 0)
		server_stop("startup failed");
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	if (rc == 0)
		note("exit reason=%s connections=%lu messages=%lu rcpt-rejected=%lu",
		     srv.exit_reason ? srv.exit_reason : "?", srv.nconn, srv.nmsg,
		     srv.nrcpt_rejected);
	uv_loop_close(&srv.loop);
	free_all();
	return rc < 0 ? 1 : 0;
}
