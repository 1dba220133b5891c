/*
 * http.h - the server side of HTTP/1.1 (RFC 9112) as an I/O-free engine:
 * bytes in, complete requests out, and a response builder. `edm track`
 * drives it from engine/conn.c; the tests feed it bytes directly.
 *
 * Parsing is libhttp-parser's (Debian libhttp-parser-dev 2.9): a streaming
 * callback parser, so a request may arrive split at any byte and several
 * pipelined requests may arrive in one read; they come out one at a time,
 * in order. On top of the parser this module enforces the limits (data,
 * see struct http_limits) and keeps only what the tracking server reads:
 * method, request-target (path and query), the header fields Host,
 * User-Agent, X-Forwarded-For, Content-Type and Connection, and the body.
 *
 * Contract: feed bytes with http_session_feed(), then call
 * http_session_next() until it returns HTTP_NEXT_MORE (wants more bytes)
 * or HTTP_NEXT_ERROR (answer http_session_error()'s status with
 * http_response_error() and close: the stream cannot be resynchronised).
 * A request whose keep_alive is 0 is the last one: answer it and close
 * (the session parses nothing after it). The input held between calls is
 * at most what one feed brought, so memory per session is bounded by the
 * limits and the caller's read size.
 * Header limits are exact and do not depend on how bytes were split:
 * the head (request line through the blank line; empty lines before a
 * request are skipped, RFC 9112 2.2) may be max_head bytes, not one more.
 *
 * What it does not do: sockets, timers (conn.c times idle and unfinished
 * requests; http_session_busy() says which), TLS, HTTP/2, 100-continue
 * (clients go on after their own timeout, RFC 9110 10.1.1), percent-
 * decoding of the path, or compression. The response builder writes no
 * Date of its own: the caller passes one (http_date()) so this stays a
 * pure function of its input.
 */
#ifndef EDM_HTTP_H
#define EDM_HTTP_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

/* Request line + header fields: 8 KB is what nginx and Apache allow by
 * default for one header line, and ample for tracking requests (the
 * longest field real clients send here is a User-Agent of a few hundred
 * bytes, or cookies that a tracking domain never sets). */
#define HTTP_HEAD_MAX_DEFAULT 8192
/* Request body: the only body edm reads is an unsubscribe form
 * ("List-Unsubscribe=One-Click", RFC 8058, or its multipart form), a few
 * hundred bytes at most. */
#define HTTP_BODY_MAX_DEFAULT 4096
/* Header fields: browsers send 10-20; 64 leaves room for proxies. */
#define HTTP_HEADERS_MAX_DEFAULT 64

struct http_limits {
	size_t max_head;      /* request line through the blank line */
	size_t max_body;      /* decoded body (Content-Length or chunked) */
	unsigned max_headers; /* header fields */
};

/* The methods the tracking server tells apart. */
enum http_verb {
	HTTP_VERB_OTHER = 0,
	HTTP_VERB_GET,
	HTTP_VERB_HEAD,
	HTTP_VERB_POST,
};

/*
 * One complete request. Every pointer points into the session and stays
 * valid until the next http_session_next() or http_session_free(); every
 * string is NUL-terminated. Header values have surrounding blanks
 * removed; X-Forwarded-For and Connection sent several times are joined
 * with ", " (RFC 9110 5.3); a repeated User-Agent or Content-Type keeps
 * its first value.
 */
struct http_request {
	enum http_verb verb;
	const char *method;          /* "GET", "PROPFIND", ... */
	const char *target;          /* the request-target as sent */
	const char *path;            /* its path ("/o/x.gif"); for the
	                                absolute-form the path part, "/" when
	                                empty; NULL for "*" and authority-form */
	const char *query;           /* after '?', or NULL (none or empty) */
	unsigned http_major, http_minor;
	const char *host;            /* NULL when absent (for each header) */
	const char *user_agent;
	const char *x_forwarded_for;
	const char *content_type;
	const char *connection;
	const char *body;            /* "" when there was none */
	size_t body_len;
	int keep_alive;              /* 0: answer, then close (Connection:
	                                close, HTTP/1.0 without keep-alive,
	                                Upgrade, CONNECT) */
};

enum {
	HTTP_NEXT_ERROR = -1,
	HTTP_NEXT_MORE = 0,
	HTTP_NEXT_REQUEST = 1,
};

struct http_session;

/* A session for one connection; NULL lim = the defaults. NULL on
 * allocation failure. */
struct http_session *http_session_new(const struct http_limits *lim);

/* Hand over n bytes from the peer (copied). 0, or -1 on allocation
 * failure (the session is then in error, status 500). */
int http_session_feed(struct http_session *s, const char *p, size_t n);

/*
 * Parse what was fed: HTTP_NEXT_REQUEST with *req filled, HTTP_NEXT_MORE
 * when the next request is not complete yet (or the connection is done:
 * after a request with keep_alive 0), HTTP_NEXT_ERROR when the input is
 * malformed or over a limit (and on every call after that).
 */
int http_session_next(struct http_session *s, struct http_request *req);

/*
 * The status to answer after HTTP_NEXT_ERROR: 400 malformed (or a
 * missing or repeated Host in HTTP/1.1, RFC 9112 3.2), 413 body over
 * max_body, 431 head over max_head or more than max_headers fields,
 * 500 out of memory, 505 an HTTP major version other than 1; 0 when
 * there was no error. *why (may be NULL) gets a short reason for logs.
 */
int http_session_error(const struct http_session *s, const char **why);

/* 1 while part of a request has arrived and the rest has not (the
 * caller's request timer runs), 0 between requests (the idle timer). */
int http_session_busy(const struct http_session *s);

/* Free; NULL is a no-op. */
void http_session_free(struct http_session *s);

/* ---- responses ---- */

/* IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT". */
#define HTTP_DATE_LEN 30  /* 29 characters and the NUL */
void http_date(time_t t, char out[HTTP_DATE_LEN]);

/* The reason phrase of a status ("Not Found"); "Unknown" for codes the
 * parser library does not name. */
const char *http_reason(int status);

struct http_response {
	int status;
	const char *content_type;  /* NULL: no Content-Type */
	const char *location;      /* Location, or NULL; the caller makes
	                              sure it has no CR, LF or NUL */
	int no_store;              /* Cache-Control: no-store, no-cache,
	                              must-revalidate, max-age=0, private;
	                              Pragma: no-cache; Expires: 0 (so every
	                              view of a pixel comes back here) */
	const char *headers;       /* more "Name: value\r\n" lines, or NULL */
	const void *body;          /* body_len bytes (sent unless head_only) */
	size_t body_len;
	/* how to send it */
	int head_only;             /* a HEAD request: the headers of the GET
	                              response, Content-Length included,
	                              without the body (RFC 9110 9.3.2) */
	int keep_alive;            /* 0: "Connection: close" */
	unsigned http_minor;       /* the request's: HTTP/1.0 clients are told
	                              "Connection: keep-alive" when it is */
	const char *date;          /* http_date() text, or NULL: no Date */
};

/* Append the response (status line "HTTP/1.1 ...", headers in a fixed
 * order, Content-Length always, then the body) to out. 0 or -1 (ENOMEM). */
int http_response_write(struct buf *out, const struct http_response *r);

/* The answer after HTTP_NEXT_ERROR: 'status' with a one-line text body
 * and "Connection: close". 0 or -1. */
int http_response_error(struct buf *out, int status, const char *date);

/*
 * 1 when a form body holds the field name=value exactly, 0 when it does
 * not, -1 when the content type is neither form type (or a multipart body
 * has no boundary). ctype NULL or application/x-www-form-urlencoded: '&'-
 * separated pairs, '+' and %XX decoded (WHATWG URL "urlencoded parser");
 * multipart/form-data (RFC 7578): the part whose Content-Disposition is
 * form-data with that name and whose content is that value. For RFC 8058
 * one-click unsubscribes: name "List-Unsubscribe", value "One-Click".
 */
int http_form_has(const char *ctype, const char *body, size_t len,
                  const char *name, const char *value);

#endif
