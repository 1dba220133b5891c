/*
 * smtp_reply.c - incremental parser of SMTP replies (contract in
 * smtp_reply.h).
 *
 * Bytes are copied into the current line until its LF arrives (never past
 * SMTP_REPLY_LINE_MAX); each complete line is checked, its text sanitised
 * and appended, and the reply is returned at its last line. Nothing here
 * allocates per byte: the three buffers keep their storage between replies.
 */
#include "smtp_reply.h"

#include "log.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof *p);
}

void smtp_reply_parser_reset(struct smtp_reply_parser *p)
{
	buf_reset(&p->line);
	buf_reset(&p->text);
	buf_reset(&p->lines);
	p->total = 0;
	p->code = 0;
	p->enhanced[0] = '\0';
	p->done = 0;
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->text);
	buf_free(&p->lines);
	smtp_reply_parser_init(p);
}

const char *smtp_reply_lines(const struct smtp_reply_parser *p, size_t *len)
{
	*len = p->lines.len;
	return p->lines.data != NULL ? p->lines.data : "";
}

/* 1..3 digits at s[*i..n); advances *i. 0 when there are none or more. */
static int digits_1_3(const char *s, size_t n, size_t *i)
{
	size_t start = *i;

	while (*i < n && s[*i] >= '0' && s[*i] <= '9' && *i - start < 4)
		(*i)++;
	return *i > start && *i - start <= 3;
}

size_t smtp_enhanced_parse(const char *s, size_t n, int code, char *out)
{
	size_t i = 1;

	if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return 0;
	if (code != 0 && s[0] - '0' != code / 100)
		return 0;
	if (s[1] != '.')
		return 0;
	i = 2;
	if (!digits_1_3(s, n, &i) || i >= n || s[i] != '.')
		return 0;
	i++;
	if (!digits_1_3(s, n, &i))
		return 0;
	if (i < n && s[i] != ' ' && s[i] != '\t')
		return 0;
	if (out != NULL) {
		memcpy(out, s, i);
		out[i] = '\0';
	}
	return i;
}

int smtp_text_sanitise(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run, len;
	char esc[5];

	while (i < n) {
		/* copy the longest run that needs no escaping in one append */
		run = i;
		while (run < n) {
			if (u[run] < 0x80) {
				if (u[run] < 0x20 || u[run] == 0x7f)
					break;
				run++;
				continue;
			}
			len = utf8_seq_len(u + run, n - run);
			if (len == 0)
				break;
			run += len;
		}
		if (run > i && buf_append(b, s + i, run - i) < 0)
			return -1;
		i = run;
		if (i < n) {
			snprintf(esc, sizeof esc, "\\x%02X", u[i]);
			if (buf_append(b, esc, 4) < 0)
				return -1;
			i++;
		}
	}
	return 0;
}

/* A short, sanitised quote of a bad line for an error message. */
static void quote_line(char *dst, size_t cap, const char *s, size_t n)
{
	struct buf b = { 0 };

	if (n > 40)
		n = 40;
	if (smtp_text_sanitise(&b, s, n) < 0 || b.data == NULL)
		snprintf(dst, cap, "?");
	else
		snprintf(dst, cap, "%s", b.data);
	buf_free(&b);
}

/* Append one line's text to the joined text: trimmed, one space apart. */
static int join_text(struct smtp_reply_parser *p, const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	if (p->text.len > 0 && buf_putc(&p->text, ' ') < 0)
		return -1;
	return smtp_text_sanitise(&p->text, s, n);
}

/*
 * One complete line (raw, LF included). 1 when it was the last line of the
 * reply, 0 when more follow, -1 on a protocol error (err filled).
 */
static int take_line(struct smtp_reply_parser *p, const char *raw, size_t n,
                     char *err, size_t errlen)
{
	char q[200];
	const char *t;
	size_t len = n - 1, tn, e;
	int code, last;

	p->total += n;
	if (p->total > SMTP_REPLY_MAX)
		return edm_errf(err, errlen, "protocol error: reply over %d bytes",
		                SMTP_REPLY_MAX);
	if (len > 0 && raw[len - 1] == '\r')
		len--;
	if (len < 3 || raw[0] < '2' || raw[0] > '5' ||
	    raw[1] < '0' || raw[1] > '9' || raw[2] < '0' || raw[2] > '9' ||
	    (len > 3 && raw[3] != ' ' && raw[3] != '-')) {
		quote_line(q, sizeof q, raw, len);
		return edm_errf(err, errlen,
		                "protocol error: malformed reply line \"%s\"", q);
	}
	code = (raw[0] - '0') * 100 + (raw[1] - '0') * 10 + (raw[2] - '0');
	if (p->code != 0 && code != p->code)
		return edm_errf(err, errlen,
		                "protocol error: reply lines with different codes "
		                "(%d, then %d)", p->code, code);
	last = len == 3 || raw[3] == ' ';
	t = raw + (len > 3 ? 4 : 3);
	tn = len > 3 ? len - 4 : 0;
	if (smtp_text_sanitise(&p->lines, t, tn) < 0 ||
	    buf_putc(&p->lines, '\n') < 0)
		goto nomem;
	if (p->code == 0) {
		p->code = code;
		e = smtp_enhanced_parse(t, tn, code, p->enhanced);
	} else if (p->enhanced[0] != '\0' &&
	           tn >= strlen(p->enhanced) &&
	           memcmp(t, p->enhanced, strlen(p->enhanced)) == 0 &&
	           smtp_enhanced_parse(t, tn, code, NULL) == strlen(p->enhanced)) {
		e = strlen(p->enhanced);
	} else {
		e = 0;
	}
	if (join_text(p, t + e, tn - e) < 0)
		goto nomem;
	return last;

nomem:
	return edm_errf(err, errlen, "out of memory reading a reply");
}

int smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t n,
                     size_t *used, struct smtp_reply *out,
                     char *err, size_t errlen)
{
	const char *lf;
	size_t off = 0, take;
	int r;

	if (p->done)
		smtp_reply_parser_reset(p);
	*used = 0;
	while (off < n) {
		lf = memchr(data + off, '\n', n - off);
		take = lf != NULL ? (size_t)(lf - (data + off)) + 1 : n - off;
		if (p->line.len + take > SMTP_REPLY_LINE_MAX) {
			*used = off;
			return edm_errf(err, errlen,
			                "protocol error: reply line over %d bytes",
			                SMTP_REPLY_LINE_MAX);
		}
		if (buf_append(&p->line, data + off, take) < 0) {
			*used = off;
			return edm_errf(err, errlen, "out of memory reading a reply");
		}
		off += take;
		if (lf == NULL)
			break;
		r = take_line(p, p->line.data, p->line.len, err, errlen);
		buf_reset(&p->line);
		if (r < 0) {
			*used = off;
			return SMTP_REPLY_ERROR;
		}
		if (r == 1) {
			*used = off;
			out->code = p->code;
			memcpy(out->enhanced, p->enhanced, sizeof out->enhanced);
			out->text = p->text.data != NULL ? p->text.data : "";
			p->done = 1;
			return SMTP_REPLY_DONE;
		}
	}
	*used = off;
	return SMTP_REPLY_MORE;
}
