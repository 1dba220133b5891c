/*
 * fuzz_http.c - libFuzzer harness for the tracking server's HTTP/1.1
 * request handling (engine/http.h): request parsing, the response
 * builder and the form reader.
 *
 * Input: byte 0: bit 0 small limits (head 256, body 32, 4 headers), bits
 * 1-7 the split (0: all in one feed; else feeds of 1..127 bytes, sizes
 * cycling through the input's first bytes); the rest is what a client
 * sent on one connection.
 * Properties: the requests (and the final error status) are the same
 * however the bytes are split (the header says the limits are exact);
 * every request has a method, a target, a verb matching the method, a
 * path starting with '/' (or NULL), a NUL-terminated body within
 * max_body; after an error the status is one of 400 413 431 500 505 and
 * every later call fails; after a request with keep_alive 0 nothing more
 * comes out. Each request is answered with http_response_write() (its
 * path echoed in Location, as a redirect would, after removing CR/LF/NUL)
 * and each error with http_response_error(): both give a status line,
 * CRLF header lines and a body of exactly Content-Length bytes (none for
 * HEAD). http_form_has() on each body answers -1, 0 or 1.
 */
#include "fuzz.h"

#include "buf.h"
#include "http.h"

/* A response: "HTTP/1.1 NNN ...", CRLF headers, blank line, body of
 * Content-Length bytes (0 sent when head_only). */
static void check_response(const struct buf *b, int head_only)
{
	const char *end = b->data + b->len, *p = b->data, *lf;
	long clen = -1;
	size_t body;

	FZ_CHECK(b->len > 12 && memcmp(p, "HTTP/1.1 ", 9) == 0,
	         "status line");
	for (;;) {
		lf = memchr(p, '\n', (size_t)(end - p));
		FZ_CHECK(lf != NULL && lf > p && lf[-1] == '\r',
		         "response line without CRLF");
		FZ_CHECK(memchr(p, '\r', (size_t)(lf - p) - 1) == NULL &&
		         memchr(p, '\0', (size_t)(lf - p)) == NULL,
		         "CR or NUL inside a response line");
		if (lf - p == 1)
			break;
		if ((size_t)(lf - p) > 16 &&
		    strncmp(p, "Content-Length: ", 16) == 0)
			clen = strtol(p + 16, NULL, 10);
		p = lf + 1;
	}
	body = (size_t)(end - (lf + 1));
	FZ_CHECK(clen >= 0, "no Content-Length");
	FZ_CHECK(head_only ? body == 0 : body == (size_t)clen,
	         "body %zu, Content-Length %ld", body, clen);
}

/* One request's digest, after checking it. */
static void take(const struct http_request *r, const struct http_limits *l,
                 struct buf *d)
{
	static const struct { const char *m; enum http_verb v; } verbs[] = {
		{ "GET", HTTP_VERB_GET }, { "HEAD", HTTP_VERB_HEAD },
		{ "POST", HTTP_VERB_POST },
	};
	enum http_verb want = HTTP_VERB_OTHER;
	const char *opt[] = { r->host, r->user_agent, r->x_forwarded_for,
	                      r->content_type, r->connection, r->query };

	FZ_CHECK(r->method != NULL && r->target != NULL, "method/target");
	for (size_t i = 0; i < 3; i++)
		if (strcmp(r->method, verbs[i].m) == 0)
			want = verbs[i].v;
	FZ_CHECK(r->verb == want, "verb %d for %s", (int)r->verb, r->method);
	FZ_CHECK(r->path == NULL || r->path[0] == '/', "path [%s]", r->path);
	FZ_CHECK(r->body != NULL && r->body[r->body_len] == '\0',
	         "body not terminated");
	FZ_CHECK(r->body_len <= l->max_body, "body %zu > %zu", r->body_len,
	         l->max_body);
	FZ_CHECK(r->http_major == 1, "HTTP/%u", r->http_major);
	buf_printf(d, "%s|%s|%s|%u.%u|%d|", r->method, r->target,
	           r->path ? r->path : "-", r->http_major, r->http_minor,
	           r->keep_alive);
	for (size_t i = 0; i < 6; i++)
		buf_printf(d, "%s|", opt[i] ? opt[i] : "-");
	buf_append(d, r->body, r->body_len);
	buf_puts(d, "#");
}

/* Answer a request as the tracking server might, and check the bytes. */
static void answer(const struct http_request *r)
{
	static const char pixel[] = "GIF89a\x01\x00\x01\x00";
	struct http_response resp;
	struct buf out = { 0 }, loc = { 0 };
	char date[HTTP_DATE_LEN];
	int has;

	http_date(1767225600, date);
	for (const char *c = r->path ? r->path : "/"; *c; c++)
		if (*c != '\r' && *c != '\n')
			buf_putc(&loc, *c);
	memset(&resp, 0, sizeof resp);
	resp.status = r->verb == HTTP_VERB_POST ? 200 : 302;
	resp.content_type = "image/gif";
	resp.location = loc.data != NULL ? loc.data : "/";
	resp.no_store = 1;
	resp.body = pixel;
	resp.body_len = sizeof pixel - 1;
	resp.head_only = r->verb == HTTP_VERB_HEAD;
	resp.keep_alive = r->keep_alive;
	resp.http_minor = r->http_minor;
	resp.date = date;
	FZ_CHECK(http_response_write(&out, &resp) == 0, "response");
	check_response(&out, resp.head_only);
	has = http_form_has(r->content_type, r->body, r->body_len,
	                    "List-Unsubscribe", "One-Click");
	FZ_CHECK(has >= -1 && has <= 1, "form_has %d", has);
	buf_free(&out);
	buf_free(&loc);
}

/*
 * Feed data[0..n) in pieces (sizes from sizes[], cycling; nsizes 0: all
 * at once), drain requests after each feed; the digest of every request
 * and of the end state goes to d.
 */
static void run(const char *data, size_t n, const uint8_t *sizes,
                size_t nsizes, const struct http_limits *l, int respond,
                struct buf *d)
{
	struct http_session *s = http_session_new(l);
	struct http_request r;
	size_t off = 0, k = 0, chunk;
	int rc = HTTP_NEXT_MORE, last = 0, status;
	const char *why = NULL;

	FZ_CHECK(s != NULL, "http_session_new");
	while (off < n && rc != HTTP_NEXT_ERROR) {
		chunk = n - off;
		if (nsizes > 0) {
			chunk = sizes[k++ % nsizes];
			if (chunk == 0)
				chunk = 1;
			if (chunk > n - off)
				chunk = n - off;
		}
		FZ_CHECK(http_session_feed(s, data + off, chunk) == 0, "feed");
		off += chunk;
		while ((rc = http_session_next(s, &r)) == HTTP_NEXT_REQUEST) {
			FZ_CHECK(!last, "a request after keep_alive 0");
			take(&r, l, d);
			if (respond)
				answer(&r);
			last = !r.keep_alive;
		}
		FZ_CHECK(rc == HTTP_NEXT_MORE || rc == HTTP_NEXT_ERROR,
		         "next %d", rc);
	}
	status = http_session_error(s, &why);
	if (rc == HTTP_NEXT_ERROR) {
		struct buf out = { 0 };

		FZ_CHECK(status == 400 || status == 413 || status == 431 ||
		         status == 500 || status == 505, "status %d", status);
		FZ_CHECK(why != NULL, "no reason");
		FZ_CHECK(http_session_next(s, &r) == HTTP_NEXT_ERROR,
		         "next after an error");
		FZ_CHECK(http_response_error(&out, status, NULL) == 0,
		         "error response");
		check_response(&out, 0);
		buf_free(&out);
		FZ_CHECK(http_reason(status) != NULL, "reason");
	} else {
		FZ_CHECK(status == 0, "status %d without an error", status);
	}
	buf_printf(d, "=%d/%d", rc, status);
	(void)http_session_busy(s);
	http_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits small = { 256, 32, 4 }, dflt = {
		HTTP_HEAD_MAX_DEFAULT, HTTP_BODY_MAX_DEFAULT,
		HTTP_HEADERS_MAX_DEFAULT,
	};
	const struct http_limits *l;
	struct buf whole = { 0 }, split = { 0 };
	uint8_t sizes[8];
	size_t ns;
	unsigned sel;

	if (size == 0)
		return 0;
	sel = data[0];
	l = sel & 1 ? &small : &dflt;
	data++;
	size--;
	run((const char *)data, size, NULL, 0, l, 1, &whole);
	ns = size < 8 ? size : 8;
	for (size_t i = 0; i < ns; i++)
		sizes[i] = (uint8_t)(sel >> 1 == 0 ? 1 : data[i] % (sel >> 1) + 1);
	if (ns == 0) {
		sizes[0] = 1;
		ns = 1;
	}
	run((const char *)data, size, sizes, ns, l, 0, &split);
	FZ_CHECK(whole.len == split.len &&
	         memcmp(whole.data, split.data, whole.len) == 0,
	         "split changed the result:\n[%s]\n[%s]", whole.data,
	         split.data);
	buf_free(&whole);
	buf_free(&split);
	return 0;
}
