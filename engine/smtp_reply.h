/*
 * smtp_reply.h - the one SMTP reply layer: an incremental parser of
 * (multi-line) replies (RFC 5321 4.2) fed arbitrary byte splits.
 *
 * Contract:
 * - smtp_reply_parse() consumes bytes up to the end of the first complete
 *   reply and stops there (*used says how far), so the caller can act on
 *   each reply before the next one is read (STARTTLS must discard whatever
 *   follows the 220, CVE-2011-0411). It keeps its own copy of a partial line
 *   and never keeps pointers into the caller's bytes.
 * - A reply line is "NNN" followed by " " (last line), "-" (more lines
 *   follow) or the end of the line; the first digit is 2..5 and every line
 *   of one reply carries the same code (RFC 5321 4.2.1). Lines end with
 *   CRLF; a bare LF is accepted as a line end too (some servers send it and
 *   it is unambiguous here, unlike in a message body).
 * - Caps: a line may be at most SMTP_REPLY_LINE_MAX octets counting its
 *   CRLF, a reply at most SMTP_REPLY_MAX octets; more is a protocol error
 *   (the partial line is never buffered past the cap).
 * - The enhanced status code (RFC 3463 "class.subject.detail") is taken
 *   from the start of the first line's text when its class is 2, 4 or 5 and
 *   equals the reply code's first digit; the same code at the start of the
 *   following lines is dropped. The text is every line's text (after
 *   "NNN-"/"NNN " and the enhanced code), trimmed, joined by one space,
 *   stored as valid UTF-8: bytes that start no well-formed sequence and
 *   control characters are written as \xHH.
 * - After a parse error the parser must be reset before further use.
 * What it does not do: interpret codes (engine/classify.c), EHLO keywords
 * (engine/smtp_session.c reads smtp_reply_lines()).
 */
#ifndef EDM_SMTP_REPLY_H
#define EDM_SMTP_REPLY_H

#include "buf.h"
#include "smtp_session.h"

#include <stddef.h>

/* 4096 octets per line: eight times RFC 5321's 512 (4.5.3.1.5), room for
 * the long explanatory lines big receivers send, yet a bound on memory. */
#define SMTP_REPLY_LINE_MAX 4096
/* 65536 octets per reply: the longest EHLO or policy reply seen is a few
 * KB; anything near this is a broken or hostile server. */
#define SMTP_REPLY_MAX 65536

enum smtp_reply_status {
	SMTP_REPLY_ERROR = -1,   /* protocol error, err says what */
	SMTP_REPLY_MORE = 0,     /* everything consumed, no complete reply */
	SMTP_REPLY_DONE = 1,     /* a reply is in *out */
};

/* Zero-initialise with smtp_reply_parser_init(); the fields are private. */
struct smtp_reply_parser {
	struct buf line;         /* raw bytes of the line being received */
	struct buf text;         /* joined, sanitised text of this reply */
	struct buf lines;        /* each line's sanitised text + '\n' */
	size_t total;            /* raw octets of this reply so far */
	int code;                /* code of its first line; 0 = none yet */
	char enhanced[16];       /* "5.1.1" or "" */
	int done;                /* a reply was returned: start afresh */
};

/* Ready an empty parser. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);

/* Forget any partial line or reply (kept storage is reused). */
void smtp_reply_parser_reset(struct smtp_reply_parser *p);

/* Release the storage; the parser is empty again. */
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/*
 * Consume data[0..n) up to the end of the first complete reply. *used is
 * how many bytes were consumed (all of them unless DONE). On DONE, *out has
 * code, enhanced and text (out->stage is left for the caller); out->text
 * and smtp_reply_lines() stay valid until the next call on the parser. On
 * ERROR, err holds "protocol error: ...".
 */
int smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t n,
                     size_t *used, struct smtp_reply *out,
                     char *err, size_t errlen);

/* The lines of the reply last returned: each line's sanitised text after
 * "NNN-"/"NNN " (enhanced code not removed), each ending in '\n'. */
const char *smtp_reply_lines(const struct smtp_reply_parser *p, size_t *len);

/*
 * Length of the RFC 3463 enhanced status code at s[0..n) (followed by the
 * end, a space or a tab), whose class must be 2, 4 or 5 and, when code is
 * not 0, equal to code / 100; 0 when there is none. Copies it,
 * NUL-terminated, to out[16] when out is not NULL.
 */
size_t smtp_enhanced_parse(const char *s, size_t n, int code, char *out);

/* Append s[0..n) to b as valid UTF-8, control characters and bytes that
 * start no well-formed sequence escaped as \xHH. 0 or -1 (no memory). */
int smtp_text_sanitise(struct buf *b, const char *s, size_t n);

#endif
