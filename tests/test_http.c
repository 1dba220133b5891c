/*
 * test_http.c - the HTTP/1.1 server engine (engine/http.h): requests fed
 * as bytes, split at every byte boundary, pipelined, over every limit and
 * malformed; the response builder byte for byte; form bodies.
 *
 * Each input is run through a "transcript": one line per request (method,
 * path, query, the kept headers, body, keep-alive) and a last line with
 * the error status, so splitting the same bytes differently must give the
 * same transcript.
 */
#include "cunit_main.h"

#include "buf.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- transcripts ---- */

static void put_field(struct buf *t, const char *v)
{
	buf_puts(t, v != NULL ? v : "-");
	buf_putc(t, '|');
}

/* Drain the session into t: a line per request, then "more" or
 * "error STATUS". Returns the last next() result. */
static int drain(struct http_session *s, struct buf *t)
{
	struct http_request r;
	int rc;

	while ((rc = http_session_next(s, &r)) == HTTP_NEXT_REQUEST) {
		put_field(t, r.method);
		put_field(t, r.path);
		put_field(t, r.query);
		put_field(t, r.host);
		put_field(t, r.user_agent);
		put_field(t, r.x_forwarded_for);
		put_field(t, r.content_type);
		put_field(t, r.connection);
		buf_printf(t, "%zu:", r.body_len);
		buf_append(t, r.body, r.body_len);
		buf_printf(t, "|ka=%d|v=%u.%u\n", r.keep_alive, r.http_major, r.http_minor);
	}
	return rc;
}

/* The transcript of in[len] fed in pieces: cut at each offset of cuts
 * (ascending, ncuts of them), or one byte at a time when bytewise.
 * Malloc'd string, caller frees. */
static char *transcript_cuts(const struct http_limits *lim, const char *in,
                             size_t len, const size_t *cuts, size_t ncuts,
                             int bytewise)
{
	struct http_session *s = http_session_new(lim);
	struct buf t = { 0 };
	size_t pos = 0, c = 0;
	int rc = HTTP_NEXT_MORE;

	while (pos < len) {
		size_t end = bytewise ? pos + 1 : c < ncuts ? cuts[c++] : len;

		if (end > len)
			end = len;
		http_session_feed(s, in + pos, end - pos);
		rc = drain(s, &t);
		pos = end;
	}
	if (rc == HTTP_NEXT_ERROR) {
		const char *why;
		buf_printf(&t, "error %d", http_session_error(s, &why));
	} else {
		buf_printf(&t, "more busy=%d", http_session_busy(s));
	}
	http_session_free(s);
	return t.data;
}

static char *transcript(const struct http_limits *lim, const char *in)
{
	return transcript_cuts(lim, in, strlen(in), NULL, 0, 0);
}

/* Check that every way of splitting 'in' in two, and byte by byte, gives
 * the transcript of the whole, and that the whole is 'want'. */
static void check_splits(const struct http_limits *lim, const char *in,
                         const char *want, unsigned line)
{
	size_t len = strlen(in);
	char *whole = transcript(lim, in), *t;

	check(strcmp(whole, want) == 0, line, "whole: got\n%s\nwant\n%s", whole, want);
	for (size_t k = 1; k < len; k++) {
		t = transcript_cuts(lim, in, len, &k, 1, 0);
		check(strcmp(t, whole) == 0, line, "split at %zu: got\n%s\nwant\n%s", k, t, whole);
		free(t);
	}
	t = transcript_cuts(lim, in, len, NULL, 0, 1);
	check(strcmp(t, whole) == 0, line, "byte by byte: got\n%s\nwant\n%s", t, whole);
	free(t);
	free(whole);
}

/* Check the transcript of the whole only. */
static void check_whole(const struct http_limits *lim, const char *in,
                        const char *want, unsigned line)
{
	char *t = transcript(lim, in);

	check(strcmp(t, want) == 0, line, "input %.60s...: got\n%s\nwant\n%s", in, t, want);
	free(t);
}

/* ---- requests ---- */

static void test_simple_get(void)
{
	check_splits(NULL,
		"GET /o/abc.gif HTTP/1.1\r\nHost: t.example\r\n"
		"User-Agent: Mozilla/5.0\r\n\r\n",
		"GET|/o/abc.gif|-|t.example|Mozilla/5.0|-|-|-|0:|ka=1|v=1.1\n"
		"more busy=0", __LINE__);
}

static void test_query_and_fragment_free_path(void)
{
	check_whole(NULL, "GET /c/tok/3?utm=a&b=c HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET|/c/tok/3|utm=a&b=c|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	/* an empty query is no query */
	check_whole(NULL, "GET /u/x? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET|/u/x|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_absolute_form(void)
{
	check_whole(NULL, "GET http://t.example:8080/c/tok/1?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n",
		"GET|/c/tok/1|x=1|t.example|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	check_whole(NULL, "GET http://t.example HTTP/1.1\r\nHost: t.example\r\n\r\n",
		"GET|/|-|t.example|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_asterisk_form_has_no_path(void)
{
	check_whole(NULL, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS|-|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_verbs(void)
{
	struct http_session *s = http_session_new(NULL);
	struct http_request r;
	static const char in[] =
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
		"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
		"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n";
	static const enum http_verb want[] = {
		HTTP_VERB_GET, HTTP_VERB_HEAD, HTTP_VERB_POST, HTTP_VERB_OTHER,
	};

	http_session_feed(s, in, strlen(in));
	for (size_t i = 0; i < 4; i++) {
		int rc = http_session_next(s, &r);
		check(rc == HTTP_NEXT_REQUEST && r.verb == want[i], __LINE__,
		      "request %zu: rc %d verb %d", i, rc, rc == 1 ? (int)r.verb : -1);
	}
	check(http_session_next(s, &r) == HTTP_NEXT_MORE, __LINE__, "then more");
	http_session_free(s);
}

static void test_header_names_case_and_blanks(void)
{
	check_splits(NULL,
		"GET / HTTP/1.1\r\nhOsT:   h.example  \r\nUSER-AGENT:\tcurl/8 \t\r\n"
		"content-TYPE: text/plain\r\nX-Other: ignored\r\n\r\n",
		"GET|/|-|h.example|curl/8|-|text/plain|-|0:|ka=1|v=1.1\nmore busy=0",
		__LINE__);
}

static void test_empty_header_value(void)
{
	check_splits(NULL,
		"GET / HTTP/1.1\r\nX-Empty:\r\nUser-Agent:\r\nHost: h\r\n\r\n",
		"GET|/|-|h||-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_list_headers_joined(void)
{
	check_splits(NULL,
		"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
		"Connection: keep-alive\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3 \r\n"
		"Connection: x-foo\r\n\r\n",
		"GET|/|-|h|-|1.1.1.1, 2.2.2.2, 3.3.3.3|-|keep-alive, x-foo|0:|ka=1|v=1.1\n"
		"more busy=0", __LINE__);
}

static void test_singletons_keep_first(void)
{
	check_whole(NULL,
		"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: first\r\nUser-Agent: second\r\n"
		"Content-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
		"GET|/|-|h|first|-|a/b|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_host_rules(void)
{
	/* RFC 9112 3.2: HTTP/1.1 needs exactly one Host */
	check_whole(NULL, "GET / HTTP/1.1\r\n\r\n", "error 400", __LINE__);
	check_whole(NULL, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "error 400", __LINE__);
	/* HTTP/1.0 does not */
	check_whole(NULL, "GET / HTTP/1.0\r\n\r\n",
		"GET|/|-|-|-|-|-|-|0:|ka=0|v=1.0\nmore busy=0", __LINE__);
}

static void test_keep_alive_rules(void)
{
	check_whole(NULL, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET|/|-|h|-|-|-|close|0:|ka=0|v=1.1\nmore busy=0", __LINE__);
	check_whole(NULL, "GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n",
		"GET|/|-|h|-|-|-|Close|0:|ka=0|v=1.1\nmore busy=0", __LINE__);
	check_whole(NULL, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET|/|-|-|-|-|-|keep-alive|0:|ka=1|v=1.0\nmore busy=0", __LINE__);
	check_whole(NULL, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
		"GET|/|-|-|-|-|-|Keep-Alive|0:|ka=1|v=1.0\nmore busy=0", __LINE__);
	/* an Upgrade the server ignores still ends the connection */
	check_whole(NULL, "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
		"Upgrade: h2c\r\n\r\n",
		"GET|/|-|h|-|-|-|Upgrade|0:|ka=0|v=1.1\nmore busy=0", __LINE__);
}

static void test_nothing_after_last_request(void)
{
	/* bytes after a Connection: close request are not parsed */
	check_splits(NULL,
		"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
		"GET /b HTTP/1.1\r\nHost: h\r\n\r\nGARBAGE",
		"GET|/a|-|h|-|-|-|close|0:|ka=0|v=1.1\nmore busy=0", __LINE__);
}

static void test_pipelined_in_order(void)
{
	check_splits(NULL,
		"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
		"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
		"Content-Length: 26\r\n\r\nList-Unsubscribe=One-Click"
		"\r\n" /* a stray CRLF after a body is skipped (RFC 9112 2.2) */
		"HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n"
		"GET /4 HTTP/1.0\r\n\r\n",
		"GET|/1|-|h|-|-|-|-|0:|ka=1|v=1.1\n"
		"POST|/2|-|h|-|-|application/x-www-form-urlencoded|-|26:List-Unsubscribe=One-Click|ka=1|v=1.1\n"
		"HEAD|/3|-|h|-|-|-|-|0:|ka=1|v=1.1\n"
		"GET|/4|-|-|-|-|-|-|0:|ka=0|v=1.0\n"
		"more busy=0", __LINE__);
}

static void test_pipelined_many(void)
{
	struct buf in = { 0 }, want = { 0 };
	char *t;

	for (int i = 0; i < 200; i++) {
		buf_printf(&in, "GET /o/%d.gif HTTP/1.1\r\nHost: h\r\n\r\n", i);
		buf_printf(&want, "GET|/o/%d.gif|-|h|-|-|-|-|0:|ka=1|v=1.1\n", i);
	}
	buf_puts(&want, "more busy=0");
	t = transcript(NULL, in.data);
	check(strcmp(t, want.data) == 0, __LINE__, "200 pipelined requests");
	free(t);
	buf_free(&in);
	buf_free(&want);
}

static void test_leading_empty_lines_skipped(void)
{
	check_splits(NULL, "\r\n\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET|/|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
}

static void test_busy(void)
{
	struct http_session *s = http_session_new(NULL);
	struct http_request r;
	static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";

	check(http_session_busy(s) == 0, __LINE__, "new session idle");
	http_session_feed(s, "\r\n", 2);
	check(http_session_next(s, &r) == HTTP_NEXT_MORE && !http_session_busy(s),
	      __LINE__, "an empty line is not a request");
	http_session_feed(s, "PO", 2);
	check(http_session_next(s, &r) == HTTP_NEXT_MORE && http_session_busy(s),
	      __LINE__, "partial request line");
	http_session_feed(s, head + 2, strlen(head) - 2);
	check(http_session_next(s, &r) == HTTP_NEXT_MORE && http_session_busy(s),
	      __LINE__, "head done, body to come");
	http_session_feed(s, "ab", 2);
	check(http_session_next(s, &r) == HTTP_NEXT_MORE && http_session_busy(s),
	      __LINE__, "partial body");
	http_session_feed(s, "cdeGET", 6);
	check(http_session_next(s, &r) == HTTP_NEXT_REQUEST && r.body_len == 5 &&
	      memcmp(r.body, "abcde", 5) == 0, __LINE__, "the request");
	check(http_session_busy(s), __LINE__, "pipelined bytes held");
	check(http_session_next(s, &r) == HTTP_NEXT_MORE && http_session_busy(s),
	      __LINE__, "next request started");
	http_session_feed(s, " / HTTP/1.1\r\nHost: h\r\n\r\n", 24);
	check(http_session_next(s, &r) == HTTP_NEXT_REQUEST && !http_session_busy(s),
	      __LINE__, "second request, then idle");
	http_session_free(s);
}

/* ---- limits ---- */

/* A GET whose head is exactly 'size' bytes (padded with an X-Pad field). */
static char *head_of_size(size_t size, const char *crlfs)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	size_t fixed = strlen(pre) + 4, pad = size - fixed;
	struct buf b = { 0 };

	buf_puts(&b, crlfs);
	buf_puts(&b, pre);
	for (size_t i = 0; i < pad; i++)
		buf_putc(&b, 'p');
	buf_puts(&b, "\r\n\r\n");
	return b.data;
}

static void test_head_limit_default_exact(void)
{
	char *ok = head_of_size(HTTP_HEAD_MAX_DEFAULT, "");
	char *over = head_of_size(HTTP_HEAD_MAX_DEFAULT + 1, "");
	char *t;

	check(strlen(ok) == HTTP_HEAD_MAX_DEFAULT, __LINE__, "fixture size");
	t = transcript(NULL, ok);
	check(strncmp(t, "GET|/|", 6) == 0, __LINE__, "8192-byte head accepted: %.40s", t);
	free(t);
	t = transcript(NULL, over);
	check(strcmp(t, "error 431") == 0, __LINE__, "8193-byte head: %.40s", t);
	free(t);
	/* byte by byte gives the same */
	t = transcript_cuts(NULL, over, strlen(over), NULL, 0, 1);
	check(strcmp(t, "error 431") == 0, __LINE__, "8193 bytewise: %.40s", t);
	free(t);
	t = transcript_cuts(NULL, ok, strlen(ok), NULL, 0, 1);
	check(strncmp(t, "GET|/|", 6) == 0, __LINE__, "8192 bytewise: %.40s", t);
	free(t);
	free(ok);
	free(over);
}

static void test_head_limit_every_split(void)
{
	struct http_limits lim = { .max_head = 64, .max_body = 16, .max_headers = 8 };
	char *ok = head_of_size(64, "\r\n\r\n"), *over = head_of_size(65, "\r\n");

	/* the empty lines before the request do not count */
	check_splits(&lim, ok, "GET|/|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	check_splits(&lim, over, "error 431", __LINE__);
	free(ok);
	free(over);
}

static void test_head_limit_request_line(void)
{
	struct http_limits lim = { .max_head = 32, .max_body = 16, .max_headers = 8 };

	check_splits(&lim, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n",
		"error 431", __LINE__);
	/* a head over the limit fails as soon as the limit is passed, without
	 * waiting for the end of the line */
	check_whole(&lim, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "error 431", __LINE__);
}

static void test_header_count_limit(void)
{
	struct buf in = { 0 };
	char *t;

	buf_puts(&in, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < HTTP_HEADERS_MAX_DEFAULT; i++)
		buf_printf(&in, "X-%d: v\r\n", i);
	buf_puts(&in, "\r\n");
	t = transcript(NULL, in.data);
	check(strncmp(t, "GET|/|", 6) == 0, __LINE__, "64 fields accepted: %.40s", t);
	free(t);
	in.len -= 2;
	buf_puts(&in, "X-65: v\r\n\r\n");
	t = transcript(NULL, in.data);
	check(strcmp(t, "error 431") == 0, __LINE__, "65 fields: %s", t);
	free(t);
	buf_free(&in);
}

static void test_header_count_every_split(void)
{
	struct http_limits lim = { .max_head = 1024, .max_body = 16, .max_headers = 3 };

	check_splits(&lim, "GET / HTTP/1.1\r\nHost: h\r\nAaaaa: 1\r\nBbbbb: 2\r\n\r\n",
		"GET|/|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	check_splits(&lim, "GET / HTTP/1.1\r\nHost: h\r\nAaaaa: 1\r\nBbbbb: 2\r\nC: 3\r\n\r\n",
		"error 431", __LINE__);
}

/* A field past the count that the parser refuses is a 400 however the
 * bytes are split (found by tests/fuzz/fuzz_http.c: a split inside the
 * bad name used to give 431). */
static void test_header_count_vs_bad_field(void)
{
	struct http_limits lim = { .max_head = 1024, .max_body = 16, .max_headers = 2 };

	check_splits(&lim, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nBadName\r: x\r\n\r\n",
		"error 400", __LINE__);
	check_splits(&lim, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: x\x7fy\r\n\r\n",
		"error 400", __LINE__);
}

static void test_body_limit_content_length(void)
{
	struct http_limits lim = { .max_head = 1024, .max_body = 8, .max_headers = 8 };

	check_splits(&lim, "POST /u/x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678",
		"POST|/u/x|-|h|-|-|-|-|8:12345678|ka=1|v=1.1\nmore busy=0", __LINE__);
	/* refused at the end of the head, before any body byte */
	check_whole(&lim, "POST /u/x HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n",
		"error 413", __LINE__);
	check_whole(&lim, "POST /u/x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n",
		"error 413", __LINE__);
}

static void test_body_limit_default(void)
{
	struct buf in = { 0 };
	char *t;

	buf_printf(&in, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n",
	           HTTP_BODY_MAX_DEFAULT);
	for (int i = 0; i < HTTP_BODY_MAX_DEFAULT; i++)
		buf_putc(&in, 'b');
	t = transcript(NULL, in.data);
	check(strncmp(t, "POST|/|", 7) == 0 && strstr(t, "|4096:bbbb") != NULL, __LINE__,
	      "4096-byte body accepted: %.60s", t);
	free(t);
	buf_reset(&in);
	buf_printf(&in, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n",
	           HTTP_BODY_MAX_DEFAULT + 1);
	t = transcript(NULL, in.data);
	check(strcmp(t, "error 413") == 0, __LINE__, "4097: %s", t);
	free(t);
	buf_free(&in);
}

static void test_body_limit_chunked(void)
{
	struct http_limits lim = { .max_head = 1024, .max_body = 8, .max_headers = 8 };

	check_splits(&lim,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3;ext=1\r\nabc\r\n5\r\ndefgh\r\n0\r\nTrailer: x\r\n\r\n"
		"GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST|/|-|h|-|-|-|-|8:abcdefgh|ka=1|v=1.1\n"
		"GET|/next|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	check_splits(&lim,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nabcde\r\n4\r\nfghi\r\n0\r\n\r\n",
		"error 413", __LINE__);
}

static void test_body_zero_limit(void)
{
	struct http_limits lim = { .max_head = 1024, .max_body = 0, .max_headers = 8 };

	check_whole(&lim, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"POST|/|-|h|-|-|-|-|0:|ka=1|v=1.1\nmore busy=0", __LINE__);
	check_whole(&lim, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
		"error 413", __LINE__);
}

/* ---- malformed input ---- */

static void test_malformed_400(void)
{
	static const char *const bad[] = {
		"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.x\r\nHost: h\r\n\r\n",
		"GET / FOO/1.1\r\nHost: h\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\rX\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost h\r\n\r\n",
		"GET / HTTP/1.1\r\nBad Name: v\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : h\r\n\r\n", /* RFC 9112 5.1 */
		"GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f" "b\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = transcript(NULL, bad[i]);
		check(strcmp(t, "error 400") == 0, __LINE__, "case %zu: %s", i, t);
		free(t);
	}
}

static void test_malformed_every_split(void)
{
	check_splits(NULL, "GET / HTTP/1.1\r\nHost: h\r\n\r\nG@T / HTTP/1.1\r\n\r\n",
		"GET|/|-|h|-|-|-|-|0:|ka=1|v=1.1\nerror 400", __LINE__);
}

static void test_version_505(void)
{
	check_whole(NULL, "GET / HTTP/2.0\r\nHost: h\r\n\r\n", "error 505", __LINE__);
	check_whole(NULL, "GET / HTTP/0.9\r\nHost: h\r\n\r\n", "error 505", __LINE__);
}

static void test_error_is_sticky(void)
{
	struct http_session *s = http_session_new(NULL);
	struct http_request r;
	const char *why = NULL;

	http_session_feed(s, "BAD\x01\r\n", 6);
	check(http_session_next(s, &r) == HTTP_NEXT_ERROR, __LINE__, "error");
	check(http_session_error(s, &why) == 400 && why != NULL && why[0] != '\0',
	      __LINE__, "status 400 with a reason");
	http_session_feed(s, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27);
	check(http_session_next(s, &r) == HTTP_NEXT_ERROR, __LINE__, "still an error");
	check(http_session_busy(s) == 0, __LINE__, "not busy after an error");
	http_session_free(s);
	http_session_free(NULL);
}

static void test_no_error_status_when_fine(void)
{
	struct http_session *s = http_session_new(NULL);

	check(http_session_error(s, NULL) == 0, __LINE__, "no error");
	http_session_free(s);
}

/* ---- responses ---- */

static void test_http_date(void)
{
	char d[HTTP_DATE_LEN];

	http_date(784111777, d);
	check(strcmp(d, "Sun, 06 Nov 1994 08:49:37 GMT") == 0, __LINE__, "%s", d);
	http_date(0, d);
	check(strcmp(d, "Thu, 01 Jan 1970 00:00:00 GMT") == 0, __LINE__, "%s", d);
	http_date(1795000000, d);
	check(strcmp(d, "Wed, 18 Nov 2026 11:06:40 GMT") == 0, __LINE__, "%s", d);
}

static void test_reason(void)
{
	check(strcmp(http_reason(200), "OK") == 0, __LINE__, "200");
	check(strcmp(http_reason(302), "Found") == 0, __LINE__, "302");
	check(strcmp(http_reason(431), "Request Header Fields Too Large") == 0, __LINE__, "431");
	check(strcmp(http_reason(999), "Unknown") == 0, __LINE__, "999");
}

static void test_response_bytes(void)
{
	struct buf out = { 0 };
	struct http_response r = {
		.status = 200,
		.content_type = "image/gif",
		.no_store = 1,
		.body = "GIF89a",
		.body_len = 6,
		.keep_alive = 1,
		.http_minor = 1,
		.date = "Sun, 06 Nov 1994 08:49:37 GMT",
	};

	check(http_response_write(&out, &r) == 0, __LINE__, "write");
	check(out.data != NULL && strcmp(out.data,
		"HTTP/1.1 200 OK\r\n"
		"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Content-Type: image/gif\r\n"
		"Cache-Control: no-store, no-cache, must-revalidate, max-age=0, private\r\n"
		"Pragma: no-cache\r\n"
		"Expires: 0\r\n"
		"Content-Length: 6\r\n"
		"\r\n"
		"GIF89a") == 0, __LINE__, "got %s", out.data);
	buf_free(&out);
}

static void test_response_head_and_connection(void)
{
	struct buf out = { 0 };
	struct http_response r = {
		.status = 302,
		.location = "https://example.com/a?b=1&c=2",
		.headers = "X-A: 1\r\n",
		.body = "moved",
		.body_len = 5,
		.head_only = 1,
		.keep_alive = 1,
		.http_minor = 0,
	};

	http_response_write(&out, &r);
	check(strcmp(out.data,
		"HTTP/1.1 302 Found\r\n"
		"Location: https://example.com/a?b=1&c=2\r\n"
		"X-A: 1\r\n"
		"Content-Length: 5\r\n"
		"Connection: keep-alive\r\n"
		"\r\n") == 0, __LINE__, "HEAD, HTTP/1.0 keep-alive: %s", out.data);
	buf_reset(&out);
	r.head_only = 0;
	r.keep_alive = 0;
	r.http_minor = 1;
	r.location = NULL;
	r.headers = NULL;
	http_response_write(&out, &r);
	check(strcmp(out.data,
		"HTTP/1.1 302 Found\r\n"
		"Content-Length: 5\r\n"
		"Connection: close\r\n"
		"\r\nmoved") == 0, __LINE__, "close: %s", out.data);
	buf_free(&out);
}

static void test_response_error(void)
{
	struct buf out = { 0 };

	http_response_error(&out, 431, NULL);
	check(strcmp(out.data,
		"HTTP/1.1 431 Request Header Fields Too Large\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Length: 36\r\n"
		"Connection: close\r\n"
		"\r\n"
		"431 Request Header Fields Too Large\n") == 0, __LINE__, "%s", out.data);
	buf_free(&out);
}

/* ---- forms ---- */

#define LU "List-Unsubscribe"
#define OC "One-Click"

static void test_form_urlencoded(void)
{
	static const struct {
		const char *ctype, *body;
		int want;
	} cases[] = {
		{ "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", 1 },
		{ NULL, "List-Unsubscribe=One-Click", 1 },
		{ "Application/X-WWW-Form-Urlencoded; charset=UTF-8", "a=b&List-Unsubscribe=One-Click&c", 1 },
		{ "application/x-www-form-urlencoded", "List%2DUnsubscribe=One%2dClick", 1 },
		{ "application/x-www-form-urlencoded", "&&List-Unsubscribe=One-Click&", 1 },
		{ "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click2", 0 },
		{ "application/x-www-form-urlencoded", "List-Unsubscribe=One+Click", 0 },
		{ "application/x-www-form-urlencoded", "List-Unsubscribe", 0 },
		{ "application/x-www-form-urlencoded", "List-Unsubscribe=", 0 },
		{ "application/x-www-form-urlencoded", "", 0 },
		{ "application/x-www-form-urlencoded", "List-Unsubscribe=One-Clic%", 0 },
		{ "application/x-www-form-urlencoded", "XList-Unsubscribe=One-Click", 0 },
		{ "text/plain", "List-Unsubscribe=One-Click", -1 },
		{ "application/x-www-form-urlencodedx", "List-Unsubscribe=One-Click", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = http_form_has(cases[i].ctype, cases[i].body,
		                        strlen(cases[i].body), LU, OC);
		check(got == cases[i].want, __LINE__, "case %zu: got %d want %d", i, got,
		      cases[i].want);
	}
	check(http_form_has(NULL, "a+b=c%20d", 9, "a b", "c d") == 1, __LINE__, "+ and %%20");
}

static void test_form_multipart(void)
{
	static const char curl_body[] =
		"--------------------------d74496d66958873e\r\n"
		"Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n"
		"\r\n"
		"One-Click\r\n"
		"--------------------------d74496d66958873e--\r\n";
	static const char two_parts[] =
		"preamble\r\n"
		"--b1\r\n"
		"content-disposition: form-data; name=other\r\n"
		"\r\n"
		"One-Click\r\n"
		"--b1  \r\n"
		"Content-Type: text/plain\r\n"
		"Content-Disposition: FORM-DATA; name=List-Unsubscribe\r\n"
		"\r\n"
		"One-Click\r\n"
		"--b1--";
	static const char filename_only[] =
		"--b1\r\n"
		"Content-Disposition: form-data; filename=\"List-Unsubscribe\"\r\n"
		"\r\n"
		"One-Click\r\n"
		"--b1--\r\n";
	static const char wrong_value[] =
		"--b1\r\n"
		"Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n"
		"\r\n"
		"One-Click\r\n\r\n"
		"--b1--\r\n";
	static const char truncated[] =
		"--b1\r\n"
		"Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n"
		"\r\n"
		"One-Click";

	check(http_form_has("multipart/form-data; boundary=------------------------d74496d66958873e",
	                    curl_body, strlen(curl_body), LU, OC) == 1, __LINE__, "curl -F");
	check(http_form_has("multipart/form-data; charset=x; boundary=\"b1\"",
	                    two_parts, strlen(two_parts), LU, OC) == 1, __LINE__, "second part");
	check(http_form_has("multipart/form-data; boundary=b1",
	                    two_parts, strlen(two_parts), "other", OC) == 1, __LINE__, "first part");
	check(http_form_has("multipart/form-data; boundary=b1",
	                    filename_only, strlen(filename_only), LU, OC) == 0, __LINE__,
	      "filename is not name");
	check(http_form_has("multipart/form-data; boundary=b1",
	                    wrong_value, strlen(wrong_value), LU, OC) == 0, __LINE__,
	      "content must be exact");
	check(http_form_has("multipart/form-data; boundary=b1",
	                    truncated, strlen(truncated), LU, OC) == 0, __LINE__, "truncated");
	check(http_form_has("multipart/form-data; boundary=b2",
	                    filename_only, strlen(filename_only), LU, OC) == 0, __LINE__,
	      "other boundary");
	check(http_form_has("multipart/form-data", curl_body, strlen(curl_body), LU, OC) == -1,
	      __LINE__, "no boundary");
	check(http_form_has("multipart/form-data; boundary=\"\"", curl_body,
	                    strlen(curl_body), LU, OC) == -1, __LINE__, "empty boundary");
}

static const struct test_case tests[] = {
	{ "simple_get", test_simple_get },
	{ "query", test_query_and_fragment_free_path },
	{ "absolute_form", test_absolute_form },
	{ "asterisk_form", test_asterisk_form_has_no_path },
	{ "verbs", test_verbs },
	{ "header_names_case_and_blanks", test_header_names_case_and_blanks },
	{ "empty_header_value", test_empty_header_value },
	{ "list_headers_joined", test_list_headers_joined },
	{ "singletons_keep_first", test_singletons_keep_first },
	{ "host_rules", test_host_rules },
	{ "keep_alive_rules", test_keep_alive_rules },
	{ "nothing_after_last_request", test_nothing_after_last_request },
	{ "pipelined_in_order", test_pipelined_in_order },
	{ "pipelined_many", test_pipelined_many },
	{ "leading_empty_lines", test_leading_empty_lines_skipped },
	{ "busy", test_busy },
	{ "head_limit_default_exact", test_head_limit_default_exact },
	{ "head_limit_every_split", test_head_limit_every_split },
	{ "head_limit_request_line", test_head_limit_request_line },
	{ "header_count_limit", test_header_count_limit },
	{ "header_count_every_split", test_header_count_every_split },
	{ "header_count_vs_bad_field", test_header_count_vs_bad_field },
	{ "body_limit_content_length", test_body_limit_content_length },
	{ "body_limit_default", test_body_limit_default },
	{ "body_limit_chunked", test_body_limit_chunked },
	{ "body_zero_limit", test_body_zero_limit },
	{ "malformed_400", test_malformed_400 },
	{ "malformed_every_split", test_malformed_every_split },
	{ "version_505", test_version_505 },
	{ "error_is_sticky", test_error_is_sticky },
	{ "no_error_status", test_no_error_status_when_fine },
	{ "http_date", test_http_date },
	{ "reason", test_reason },
	{ "response_bytes", test_response_bytes },
	{ "response_head_and_connection", test_response_head_and_connection },
	{ "response_error", test_response_error },
	{ "form_urlencoded", test_form_urlencoded },
	{ "form_multipart", test_form_multipart },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("http", tests);
}
