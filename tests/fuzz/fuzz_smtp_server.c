/*
 * fuzz_smtp_server.c - libFuzzer harness for the SMTP server session
 * (engine/smtp_server.h), the protocol core of `edm sink`, with the fuzz
 * input as the client.
 *
 * Input:
 *   byte 0: bit 0 small limits (max_size 64, max_rcpts 2, max_errors 3),
 *     bit 1 on_message fails (451);
 *   then a script of operations, each a byte:
 *     0x00-0xdf feed the next (op % 128 + 1) bytes; 0xe0-0xef
 *     smtp_server_shutdown(); 0xf0-0xff feed up to and including the next
 *     LF (seeds read like a transcript).
 * The script runs twice: as written, and with every feed split into
 * single bytes (shutdowns at the same offsets).
 * Properties: both runs give the same replies and the same messages;
 * replies are CRLF lines "NNN-text"/"NNN text", code 2xx..5xx, with a
 * multi-line reply keeping its code; once feed() says CLOSE, every later
 * feed says CLOSE and adds nothing; a message handed to on_message has
 * recipients (at most max_rcpts), a size within max_size and a NUL after
 * its data; each accepted message gets one "queued" 250.
 */
#include "fuzz.h"

#include "buf.h"
#include "smtp_server.h"

struct cap {
	struct buf digest;    /* every message, for the comparison */
	size_t max_size, max_rcpts;
	int fail;
	unsigned long accepted;
};

static int on_msg(void *arg, const struct smtp_server_msg *m, char *id,
                  size_t idlen)
{
	struct cap *c = arg;

	FZ_CHECK(m->nrcpts > 0 && m->nrcpts <= c->max_rcpts,
	         "%zu recipients", m->nrcpts);
	FZ_CHECK(m->size <= c->max_size, "message of %zu > %zu", m->size,
	         c->max_size);
	FZ_CHECK(m->data[m->size] == '\0', "data not NUL-terminated");
	FZ_CHECK(m->helo != NULL && m->from != NULL, "helo/from NULL");
	buf_printf(&c->digest, "[%s|%s|%d|", m->helo, m->from,
	           m->authenticated);
	for (size_t i = 0; i < m->nrcpts; i++)
		buf_printf(&c->digest, "%s,", m->rcpts[i]);
	buf_append(&c->digest, m->data, m->size);
	buf_puts(&c->digest, "]");
	if (c->fail)
		return -1;
	c->accepted++;
	FZ_CHECK(idlen > 0, "idlen 0");
	snprintf(id, idlen, "Q%lu", c->accepted);
	return 0;
}

/* Replies: CRLF lines, 3-digit code 2..5, same code within a reply. */
static void check_replies(const struct buf *out)
{
	size_t i = 0, n = out->len;
	int code = 0;

	while (i < n) {
		const char *ln = out->data + i;
		const char *lf = memchr(ln, '\n', n - i);
		size_t len;
		int c;

		FZ_CHECK(lf != NULL, "reply without LF");
		len = (size_t)(lf - ln) + 1;
		FZ_CHECK(len >= 6 && ln[len - 2] == '\r', "short or bare-LF "
		         "reply line");
		FZ_CHECK(memchr(ln, '\r', len - 2) == NULL, "CR inside a reply");
		FZ_CHECK(ln[0] >= '2' && ln[0] <= '5' && ln[1] >= '0' &&
		         ln[1] <= '9' && ln[2] >= '0' && ln[2] <= '9' &&
		         (ln[3] == ' ' || ln[3] == '-'), "reply line [%.*s]",
		         (int)len, ln);
		c = (ln[0] - '0') * 100 + (ln[1] - '0') * 10 + (ln[2] - '0');
		FZ_CHECK(code == 0 || code == c, "codes %d then %d", code, c);
		code = ln[3] == '-' ? c : 0;
		for (size_t k = 0; k < len - 2; k++)
			FZ_CHECK((unsigned char)ln[k] >= 0x20 &&
			         (unsigned char)ln[k] < 0x7f,
			         "non-printable byte in a reply");
		i += len;
	}
	FZ_CHECK(code == 0, "multi-line reply left open");
}

/* One run of the script; bytewise splits every feed into single bytes. */
static void run(const uint8_t *data, size_t size, int bytewise,
                struct buf *out, struct cap *c)
{
	struct smtp_server_opts o;
	struct smtp_server *s;
	struct fz f = { data, size };
	unsigned b0 = fz_byte(&f);
	int closed = 0, rc;
	const uint8_t *p;
	size_t n, before;

	memset(&o, 0, sizeof o);
	memset(c, 0, sizeof *c);
	o.name = "sink.test";
	if (b0 & 1) {
		o.limits.max_size = 64;
		o.limits.max_rcpts = 2;
		o.limits.max_errors = 3;
	}
	o.on_message = on_msg;
	o.arg = c;
	c->max_size = b0 & 1 ? 64 : SMTP_SERVER_MAX_SIZE_DEFAULT;
	c->max_rcpts = b0 & 1 ? 2 : SMTP_SERVER_MAX_RCPTS_DEFAULT;
	c->fail = !!(b0 & 2);
	s = smtp_server_new(&o);
	FZ_CHECK(s != NULL, "smtp_server_new");
	FZ_CHECK(smtp_server_greeting(s, out) == SMTP_SERVER_GO_ON, "greeting");
	while (f.n > 0) {
		unsigned op = fz_byte(&f);

		if (op >= 0xe0 && op < 0xf0) {
			smtp_server_shutdown(s);
			continue;
		}
		if (op < 0xe0) {
			n = fz_take(&f, op % 128 + 1, &p);
		} else {
			const uint8_t *lf = f.n > 0 ? memchr(f.p, '\n', f.n) : NULL;

			n = fz_take(&f, lf != NULL ? (size_t)(lf - f.p) + 1 : f.n,
			            &p);
		}
		for (size_t k = 0; k < n; k += bytewise ? 1 : n) {
			before = out->len;
			rc = smtp_server_feed(s, (const char *)p + k,
			                      bytewise ? 1 : n, out);
			if (closed)
				FZ_CHECK(rc == SMTP_SERVER_CLOSE &&
				         out->len == before,
				         "feed after CLOSE answered");
			if (rc == SMTP_SERVER_CLOSE)
				closed = 1;
		}
	}
	FZ_CHECK(smtp_server_messages(s) == c->accepted,
	         "messages() %lu, accepted %lu", smtp_server_messages(s),
	         c->accepted);
	smtp_server_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out1 = { 0 }, out2 = { 0 };
	struct cap c1, c2;
	size_t queued = 0;

	run(data, size, 0, &out1, &c1);
	run(data, size, 1, &out2, &c2);
	check_replies(&out1);
	FZ_CHECK(out1.len == out2.len &&
	         memcmp(out1.data, out2.data, out1.len) == 0,
	         "replies differ when fed byte by byte:\n%s\n---\n%s",
	         out1.data, out2.data);
	FZ_CHECK(c1.digest.len == c2.digest.len &&
	         (c1.digest.len == 0 ||
	          memcmp(c1.digest.data, c2.digest.data, c1.digest.len) == 0),
	         "messages differ when fed byte by byte");
	/* at a line start: the greeting is always first */
	for (const char *q = out1.data; (q = strstr(q, "\n250 2.0.0 Ok: queued"))
	     != NULL; q++)
		queued++;
	FZ_CHECK(queued == c1.accepted, "%zu queued replies for %lu messages",
	         queued, c1.accepted);
	buf_free(&out1);
	buf_free(&out2);
	buf_free(&c1.digest);
	buf_free(&c2.digest);
	return 0;
}
