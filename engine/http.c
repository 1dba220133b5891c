/*
 * http.c - HTTP/1.1 server side over libhttp-parser (contract in http.h).
 *
 * Data flow: http_session_feed() appends to 'in'; http_session_next()
 * runs the parser over 'in' and the parser's callbacks copy what is kept
 * (target, five header values, body) into per-request buffers. The
 * parser is paused in on_message_complete, so exactly one request comes
 * out per call and the bytes of a pipelined next request stay in 'in'.
 *
 * Limits and errors do not depend on how the bytes were split: the
 * parser finds a bad byte at that byte, and this module decides only on
 * whole things (a head complete or over max_head, a field name or value
 * as far as it has arrived, the body so far).
 * The head limit is exact: empty lines before a request are skipped here,
 * so the parser's first byte is the request's first byte, and while the
 * head is incomplete the parser is never given more bytes than the limit
 * has room for. When those bytes are used up and on_headers_complete has
 * not run, the head is longer than the limit (431), however the bytes
 * were split.
 *
 * The per-request buffers are reset, not freed, between requests: a
 * keep-alive connection allocates nothing once they have grown.
 */
#include "http.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

/* The header fields kept; everything else is counted and skipped. */
enum hdr {
	H_HOST = 0,
	H_UA,
	H_XFF,
	H_CTYPE,
	H_CONN,
	H_COUNT
};

static const char *const hdr_names[H_COUNT] = {
	"host", "user-agent", "x-forwarded-for", "content-type", "connection",
};

/* Fields that are comma-separated lists (RFC 9110 5.3: several lines of
 * one field are one list) */
static const int hdr_is_list[H_COUNT] = { 0, 0, 1, 0, 1 };

enum hs_state {
	HS_IDLE = 0,  /* between requests */
	HS_HEAD,      /* request line and header fields */
	HS_BODY,      /* after on_headers_complete */
	HS_DONE,      /* after the last request (keep_alive 0) */
	HS_ERROR,
};

struct http_session {
	http_parser p;
	struct http_limits lim;
	enum hs_state state;
	struct buf in;             /* fed bytes; in_pos..len not parsed yet */
	size_t in_pos;
	struct buf url, name, body, parts;
	struct buf hv[H_COUNT];    /* values of the kept header fields */
	unsigned have[H_COUNT];    /* times each was seen */
	int cur;                   /* field whose value is arriving, -1 none */
	size_t val_start;          /* where that value starts in hv[cur] */
	int in_value;              /* the last header callback was a value */
	unsigned nheaders;
	size_t head_len;           /* head bytes given to the parser */
	int complete;              /* on_message_complete ran */
	int keep_alive;
	int status;                /* error status, 0 = none */
	const char *why;
};

static const char *bstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

/* Record an error for the callbacks (the parser then stops with a
 * callback error) and for http_session_next. Returns -1. */
static int hs_fail(struct http_session *s, int status, const char *why)
{
	if (s->status == 0) {
		s->status = status;
		s->why = why;
	}
	return -1;
}

/* The value of the kept field in progress is complete: drop trailing
 * blanks (the parser drops the leading ones). */
static void end_value(struct http_session *s)
{
	struct buf *b;

	if (!s->in_value || s->cur < 0)
		return;
	b = &s->hv[s->cur];
	while (b->len > s->val_start &&
	       (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
		b->len--;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_session *s = p->data;

	return buf_append(&s->url, at, n) < 0 ? hs_fail(s, 500, "out of memory") : 0;
}

/* RFC 9110 5.6.2: tchar (the parser library, as Debian builds it, also
 * lets blanks through) */
static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_session *s = p->data;

	/* a field name after a value (or the first one) starts a new field;
	 * otherwise this is more of a name split between reads */
	if (s->in_value || s->nheaders == 0) {
		end_value(s);
		s->in_value = 0;
		s->cur = -1;
		buf_reset(&s->name);
		s->nheaders++; /* checked once the head is complete */
	}
	/* RFC 9112 5.1: whitespace before the colon MUST be refused (400) */
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)at[i]))
			return hs_fail(s, 400, "bad character in a header field name");
	return buf_append(&s->name, at, n) < 0 ? hs_fail(s, 500, "out of memory") : 0;
}

/* The kept field a name stands for, or -1. */
static int hdr_lookup(const struct buf *name)
{
	for (int i = 0; i < H_COUNT; i++)
		if (name->len == strlen(hdr_names[i]) &&
		    strncasecmp(name->data, hdr_names[i], name->len) == 0)
			return i;
	return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_session *s = p->data;
	struct buf *b;

	if (!s->in_value) {
		s->in_value = 1;
		s->cur = hdr_lookup(&s->name);
		if (s->cur == H_HOST && s->have[H_HOST] > 0)
			return hs_fail(s, 400, "Host sent twice");
		if (s->cur >= 0 && s->have[s->cur] > 0 && !hdr_is_list[s->cur])
			s->cur = -1; /* the first value stays */
		if (s->cur >= 0) {
			b = &s->hv[s->cur];
			if (s->have[s->cur]++ > 0 && buf_append(b, ", ", 2) < 0)
				return hs_fail(s, 500, "out of memory");
			s->val_start = b->len;
		}
	}
	if (s->cur < 0)
		return 0;
	b = &s->hv[s->cur];
	/* leading blanks of a value split across reads */
	while (b->len == s->val_start && n > 0 && (*at == ' ' || *at == '\t')) {
		at++;
		n--;
	}
	return buf_append(b, at, n) < 0 ? hs_fail(s, 500, "out of memory") : 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_session *s = p->data;

	end_value(s);
	s->in_value = 0;
	s->cur = -1;
	s->state = HS_BODY;
	/* the field count is judged here, not as fields arrive: a field the
	 * parser refuses (400) must not turn into a 431 when the bytes happen
	 * to be split before its bad character (memory is bounded by
	 * max_head all the same) */
	if (s->nheaders > s->lim.max_headers)
		return hs_fail(s, 431, "too many header fields");
	if (p->http_major != 1)
		return hs_fail(s, 505, "HTTP version other than 1.x");
	/* RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request
	 * without Host */
	if (p->http_minor >= 1 && s->have[H_HOST] == 0)
		return hs_fail(s, 400, "no Host header field");
	/* a declared body over the limit is refused before it is read */
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
	    p->content_length > s->lim.max_body)
		return hs_fail(s, 413, "request body too large");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_session *s = p->data;

	if (n > s->lim.max_body - s->body.len)
		return hs_fail(s, 413, "request body too large");
	return buf_append(&s->body, at, n) < 0 ? hs_fail(s, 500, "out of memory") : 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_session *s = p->data;

	s->complete = 1;
	/* after an Upgrade or CONNECT the bytes are another protocol */
	s->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

struct http_session *http_session_new(const struct http_limits *lim)
{
	struct http_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (lim != NULL) {
		s->lim = *lim;
	} else {
		s->lim.max_head = HTTP_HEAD_MAX_DEFAULT;
		s->lim.max_body = HTTP_BODY_MAX_DEFAULT;
		s->lim.max_headers = HTTP_HEADERS_MAX_DEFAULT;
	}
	s->cur = -1;
	return s;
}

int http_session_feed(struct http_session *s, const char *p, size_t n)
{
	if (s->state == HS_ERROR || s->state == HS_DONE)
		return 0; /* nothing more is read on this connection */
	if (s->in_pos == s->in.len) {
		buf_reset(&s->in);
		s->in_pos = 0;
	}
	if (buf_append(&s->in, p, n) < 0) {
		hs_fail(s, 500, "out of memory");
		s->state = HS_ERROR;
		return -1;
	}
	return 0;
}

/* Reset the per-request state for a request whose first byte is next. */
static void start_request(struct http_session *s)
{
	buf_reset(&s->url);
	buf_reset(&s->name);
	buf_reset(&s->body);
	buf_reset(&s->parts);
	for (int i = 0; i < H_COUNT; i++) {
		buf_reset(&s->hv[i]);
		s->have[i] = 0;
	}
	s->cur = -1;
	s->in_value = 0;
	s->nheaders = 0;
	s->head_len = 0;
	s->complete = 0;
	s->keep_alive = 0;
	http_parser_init(&s->p, HTTP_REQUEST);
	s->p.data = s;
	s->state = HS_HEAD;
}

static enum http_verb verb_of(unsigned m)
{
	switch (m) {
	case HTTP_GET: return HTTP_VERB_GET;
	case HTTP_HEAD: return HTTP_VERB_HEAD;
	case HTTP_POST: return HTTP_VERB_POST;
	default: return HTTP_VERB_OTHER;
	}
}

/* Split the request-target into path and query (in 'parts') and fill
 * *req. 0 or -1 (ENOMEM). */
static int fill_request(struct http_session *s, struct http_request *req)
{
	struct http_parser_url u;
	size_t path_off = 0, query_off = 0;
	int has_path = 0, has_query = 0, rc = 0;

	memset(req, 0, sizeof(*req));
	http_parser_url_init(&u);
	if (http_parser_parse_url(bstr(&s->url), s->url.len,
	                          s->p.method == HTTP_CONNECT, &u) == 0) {
		if ((u.field_set & (1 << UF_PATH)) &&
		    s->url.data[u.field_data[UF_PATH].off] == '/') {
			rc |= buf_append(&s->parts, s->url.data + u.field_data[UF_PATH].off,
			                 u.field_data[UF_PATH].len);
			has_path = 1;
		} else if (u.field_set & (1 << UF_HOST) && s->p.method != HTTP_CONNECT) {
			rc |= buf_putc(&s->parts, '/'); /* RFC 9112 3.2.2 */
			has_path = 1;
		}
		rc |= buf_putc(&s->parts, '\0');
		if (u.field_set & (1 << UF_QUERY)) {
			query_off = s->parts.len;
			rc |= buf_append(&s->parts, s->url.data + u.field_data[UF_QUERY].off,
			                 u.field_data[UF_QUERY].len);
			rc |= buf_putc(&s->parts, '\0');
			has_query = 1;
		}
	}
	if (rc != 0)
		return -1;
	req->verb = verb_of(s->p.method);
	req->method = http_method_str((enum http_method)s->p.method);
	req->target = bstr(&s->url);
	req->path = has_path ? s->parts.data + path_off : NULL;
	req->query = has_query ? s->parts.data + query_off : NULL;
	req->http_major = s->p.http_major;
	req->http_minor = s->p.http_minor;
	req->host = s->have[H_HOST] ? bstr(&s->hv[H_HOST]) : NULL;
	req->user_agent = s->have[H_UA] ? bstr(&s->hv[H_UA]) : NULL;
	req->x_forwarded_for = s->have[H_XFF] ? bstr(&s->hv[H_XFF]) : NULL;
	req->content_type = s->have[H_CTYPE] ? bstr(&s->hv[H_CTYPE]) : NULL;
	req->connection = s->have[H_CONN] ? bstr(&s->hv[H_CONN]) : NULL;
	req->body = bstr(&s->body);
	req->body_len = s->body.len;
	req->keep_alive = s->keep_alive;
	return 0;
}

/* Stop for good with status. */
static int session_error(struct http_session *s, int status, const char *why)
{
	hs_fail(s, status, why);
	s->state = HS_ERROR;
	return HTTP_NEXT_ERROR;
}

int http_session_next(struct http_session *s, struct http_request *req)
{
	for (;;) {
		size_t avail, chunk, n;
		enum http_errno e;
		int was_head;

		if (s->state == HS_ERROR)
			return HTTP_NEXT_ERROR;
		if (s->state == HS_DONE)
			return HTTP_NEXT_MORE;
		if (s->state == HS_IDLE) {
			/* RFC 9112 2.2: empty lines before a request-line are
			 * ignored (robustness for clients that add a CRLF after
			 * a POST body) */
			while (s->in_pos < s->in.len &&
			       (s->in.data[s->in_pos] == '\r' || s->in.data[s->in_pos] == '\n'))
				s->in_pos++;
			if (s->in_pos == s->in.len)
				return HTTP_NEXT_MORE;
			start_request(s);
		}
		avail = s->in.len - s->in_pos;
		if (avail == 0)
			return HTTP_NEXT_MORE; /* (the parser reads len 0 as EOF) */
		chunk = avail;
		was_head = s->state == HS_HEAD;
		if (was_head && chunk > s->lim.max_head - s->head_len)
			chunk = s->lim.max_head - s->head_len;
		n = http_parser_execute(&s->p, &settings, s->in.data + s->in_pos, chunk);
		s->in_pos += n;
		e = HTTP_PARSER_ERRNO(&s->p);
		if (s->complete && s->status == 0) {
			http_parser_pause(&s->p, 0);
			s->state = s->keep_alive ? HS_IDLE : HS_DONE;
			if (fill_request(s, req) < 0)
				return session_error(s, 500, "out of memory");
			return HTTP_NEXT_REQUEST;
		}
		if (s->status != 0)
			return session_error(s, s->status, s->why);
		if (e != HPE_OK)
			return session_error(s, e == HPE_HEADER_OVERFLOW ? 431 : 400,
			                     http_errno_description(e));
		if (n != chunk)
			return session_error(s, 400, "parser stopped early");
		if (was_head && s->state == HS_HEAD) {
			s->head_len += n;
			if (s->head_len >= s->lim.max_head)
				return session_error(s, 431, "request head too large");
		}
	}
}

int http_session_error(const struct http_session *s, const char **why)
{
	if (why != NULL)
		*why = s->why != NULL ? s->why : "";
	return s->state == HS_ERROR ? s->status : 0;
}

int http_session_busy(const struct http_session *s)
{
	return s->state == HS_HEAD || s->state == HS_BODY ||
	       (s->state == HS_IDLE && s->in_pos < s->in.len);
}

void http_session_free(struct http_session *s)
{
	if (s == NULL)
		return;
	buf_free(&s->in);
	buf_free(&s->url);
	buf_free(&s->name);
	buf_free(&s->body);
	buf_free(&s->parts);
	for (int i = 0; i < H_COUNT; i++)
		buf_free(&s->hv[i]);
	free(s);
}

/* ---- responses ---- */

void http_date(time_t t, char out[HTTP_DATE_LEN])
{
	/* the names are fixed by RFC 9110 5.6.7, whatever the locale */
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;

	gmtime_r(&t, &tm);
	/* (the modulos only tell the compiler the widths) */
	snprintf(out, HTTP_DATE_LEN, "%s, %02u %s %04u %02u:%02u:%02u GMT",
	         days[(unsigned)tm.tm_wday % 7], (unsigned)tm.tm_mday % 100,
	         months[(unsigned)tm.tm_mon % 12],
	         (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)tm.tm_hour % 100,
	         (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
}

const char *http_reason(int status)
{
	const char *r = http_status_str((enum http_status)status);

	return r[0] == '<' ? "Unknown" : r; /* the library says "<unknown>" */
}

int http_response_write(struct buf *out, const struct http_response *r)
{
	int rc = 0;

	rc |= buf_printf(out, "HTTP/1.1 %d %s\r\n", r->status, http_reason(r->status));
	if (r->date != NULL)
		rc |= buf_printf(out, "Date: %s\r\n", r->date);
	if (r->content_type != NULL)
		rc |= buf_printf(out, "Content-Type: %s\r\n", r->content_type);
	if (r->location != NULL)
		rc |= buf_printf(out, "Location: %s\r\n", r->location);
	if (r->no_store)
		rc |= buf_puts(out, "Cache-Control: no-store, no-cache, must-revalidate, "
		               "max-age=0, private\r\nPragma: no-cache\r\nExpires: 0\r\n");
	if (r->headers != NULL)
		rc |= buf_puts(out, r->headers);
	rc |= buf_printf(out, "Content-Length: %zu\r\n", r->body_len);
	if (!r->keep_alive)
		rc |= buf_puts(out, "Connection: close\r\n");
	else if (r->http_minor == 0)
		rc |= buf_puts(out, "Connection: keep-alive\r\n");
	rc |= buf_puts(out, "\r\n");
	if (!r->head_only && r->body_len > 0)
		rc |= buf_append(out, r->body, r->body_len);
	return rc ? -1 : 0;
}

int http_response_error(struct buf *out, int status, const char *date)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	struct http_response r = {
		.status = status,
		.content_type = "text/plain; charset=utf-8",
		.body = body,
		.body_len = (size_t)n,
		.keep_alive = 0,
		.http_minor = 1,
		.date = date,
	};

	return http_response_write(out, &r);
}

/* ---- forms ---- */

/* 1 when the media type of a Content-Type value is 'type' (case-
 * insensitive, parameters and blanks ignored). */
static int media_type_is(const char *ctype, const char *type)
{
	size_t n = strlen(type);

	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	if (strncasecmp(ctype, type, n) != 0)
		return 0;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

/*
 * The parameter 'pname' of a header value v[n] ("type; a=b; c=\"d\""):
 * 1 with its value (quoted-string unquoted, RFC 9110 5.6.4) in out, 0 when
 * absent or longer than outlen - 1.
 */
static int header_param(const char *v, size_t n, const char *pname,
                        char *out, size_t outlen)
{
	size_t i = 0, plen = strlen(pname);

	while (i < n) {
		size_t name_start, name_end, o = 0;
		int match, too_long = 0;

		/* to the next ';' outside quotes */
		while (i < n && v[i] != ';') {
			if (v[i] == '"') {
				for (i++; i < n && v[i] != '"'; i++)
					if (v[i] == '\\')
						i++;
			}
			i++;
		}
		if (i >= n)
			return 0;
		i++;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		name_start = i;
		while (i < n && v[i] != '=' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
			i++;
		name_end = i;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i >= n || v[i] != '=')
			continue;
		i++;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		match = name_end - name_start == plen &&
		        strncasecmp(v + name_start, pname, plen) == 0;
		if (i < n && v[i] == '"') {
			for (i++; i < n && v[i] != '"'; i++) {
				if (v[i] == '\\' && i + 1 < n)
					i++;
				if (o + 1 < outlen)
					out[o++] = v[i];
				else
					too_long = 1;
			}
			if (i < n)
				i++; /* the closing quote */
		} else {
			for (; i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t'; i++) {
				if (o + 1 < outlen)
					out[o++] = v[i];
				else
					too_long = 1;
			}
		}
		if (match) {
			out[o] = '\0';
			return !too_long;
		}
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1 when s[n], urlencoded-decoded, equals want. */
static int urlenc_equals(const char *s, size_t n, const char *want)
{
	size_t i = 0, w = 0, wl = strlen(want);

	while (i < n) {
		char c = s[i];
		int h, l;

		if (c == '+') {
			c = ' ';
			i++;
		} else if (c == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		           (l = hexval(s[i + 2])) >= 0) {
			c = (char)(h << 4 | l);
			i += 3;
		} else {
			i++;
		}
		if (w >= wl || want[w] != c)
			return 0;
		w++;
	}
	return w == wl;
}

/* application/x-www-form-urlencoded */
static int urlenc_has(const char *body, size_t len, const char *name,
                      const char *value)
{
	size_t i = 0;

	while (i <= len) {
		const char *amp = memchr(body + i, '&', len - i);
		size_t end = amp != NULL ? (size_t)(amp - body) : len;
		const char *eq = memchr(body + i, '=', end - i);
		size_t nend = eq != NULL ? (size_t)(eq - body) : end;
		size_t vstart = eq != NULL ? nend + 1 : end;

		if (end > i && urlenc_equals(body + i, nend - i, name) &&
		    urlenc_equals(body + vstart, end - vstart, value))
			return 1;
		if (amp == NULL)
			break;
		i = end + 1;
	}
	return 0;
}

/* multipart/form-data (RFC 7578, delimiters as in RFC 2046 5.1.1). */
static int multipart_has(const char *body, size_t len, const char *boundary,
                         const char *name, const char *value)
{
	char delim[80];
	size_t dl, pos;
	const char *p;

	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* the first delimiter may open the body (no preamble) */
	if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
		pos = dl - 2;
	else if ((p = memmem(body, len, delim, dl)) != NULL)
		pos = (size_t)(p - body) + dl;
	else
		return 0;
	for (;;) {
		size_t hdr_end, content, content_end;
		int named = 0;

		if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-')
			return 0; /* the close delimiter */
		while (pos < len && (body[pos] == ' ' || body[pos] == '\t'))
			pos++;
		if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
			return 0;
		pos += 2;
		/* the part's header fields, up to an empty line */
		if (len - pos >= 2 && body[pos] == '\r' && body[pos + 1] == '\n') {
			hdr_end = pos;
			content = pos + 2;
		} else if ((p = memmem(body + pos, len - pos, "\r\n\r\n", 4)) != NULL) {
			hdr_end = (size_t)(p - body) + 2;
			content = hdr_end + 2;
		} else {
			return 0;
		}
		while (pos < hdr_end) {
			const char *eol = memmem(body + pos, hdr_end - pos, "\r\n", 2);
			size_t le = eol != NULL ? (size_t)(eol - body) : hdr_end;
			static const char cd[] = "content-disposition:";
			char pname[128];

			if (le - pos >= sizeof(cd) - 1 &&
			    strncasecmp(body + pos, cd, sizeof(cd) - 1) == 0) {
				const char *v = body + pos + sizeof(cd) - 1;
				size_t vn = le - pos - (sizeof(cd) - 1);

				while (vn > 0 && (*v == ' ' || *v == '\t')) {
					v++;
					vn--;
				}
				if (vn >= 9 && strncasecmp(v, "form-data", 9) == 0 &&
				    (vn == 9 || v[9] == ';' || v[9] == ' ') &&
				    header_param(v, vn, "name", pname, sizeof(pname)) &&
				    strcmp(pname, name) == 0)
					named = 1;
			}
			pos = le + 2;
		}
		p = memmem(body + content, len - content, delim, dl);
		if (p == NULL)
			return 0;
		content_end = (size_t)(p - body);
		if (named && content_end - content == strlen(value) &&
		    memcmp(body + content, value, content_end - content) == 0)
			return 1;
		pos = content_end + dl;
	}
}

int http_form_has(const char *ctype, const char *body, size_t len,
                  const char *name, const char *value)
{
	char boundary[72]; /* RFC 2046 5.1.1: 1 to 70 characters */

	if (ctype == NULL || media_type_is(ctype, "application/x-www-form-urlencoded"))
		return urlenc_has(body, len, name, value);
	if (!media_type_is(ctype, "multipart/form-data"))
		return -1;
	if (!header_param(ctype, strlen(ctype), "boundary", boundary, sizeof(boundary)) ||
	    boundary[0] == '\0')
		return -1;
	return multipart_has(body, len, boundary, name, value);
}
