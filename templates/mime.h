/*
 * mime.h - build one RFC 5322 / MIME message from rendered parts
 * (I/O-free except mime_attachment_load()).
 *
 * Output: CRLF line ends everywhere, no line over 998 octets (78 for
 * headers where folding allows), 7-bit clean (non-ASCII header text as RFC
 * 2047 encoded-words in UTF-8, never splitting a character; bodies 7bit
 * when they are short-lined ASCII, base64 when mostly non-ASCII (Chinese),
 * quoted-printable otherwise;
 * attachments base64). Bare CR or LF in any input is normalised to CRLF in
 * bodies; in header values every CR, LF and other control character becomes
 * a space (percent-encoded in the List-Unsubscribe URIs), so no input can
 * start a new header line (header injection).
 *
 * Structure: text only, HTML only (a text part is then generated from the
 * HTML, see html2text.h, giving multipart/alternative), or text + HTML as
 * multipart/alternative; with inline images (attachments with a Content-ID
 * referenced as cid: in the HTML) the HTML goes in multipart/related; with
 * other attachments the whole is wrapped in multipart/mixed. Boundaries
 * contain "=_", which cannot occur in quoted-printable or base64 output.
 *
 * Headers written, in this order: From, To, Reply-To, Subject, Date,
 * Message-ID, MIME-Version, List-Unsubscribe, List-Unsubscribe-Post
 * (RFC 8058, whenever an https unsubscribe URL is given), Feedback-ID, the
 * extra headers, Content-Type (+ Content-Transfer-Encoding). No Bcc, no
 * Return-Path (the envelope carries it).
 */
#ifndef EDM_MIME_H
#define EDM_MIME_H

#include <stddef.h>
#include <time.h>

struct buf;
struct mime_attachment;

struct mime_header {
	const char *name;   /* already checked by the caller: a valid,
	                       non-reserved field name */
	const char *value;  /* UTF-8; encoded/folded/sanitised here */
};

struct mime_message {
	const char *from_name;   /* display name (UTF-8) or NULL */
	const char *from_addr;   /* ASCII addr-spec */
	const char *to_name;     /* display name or NULL */
	const char *to_addr;     /* ASCII addr-spec (normalised) */
	const char *reply_to;    /* ASCII addr-spec or NULL */
	const char *subject;     /* UTF-8 */
	const char *message_id;  /* "id@domain", without angle brackets */
	time_t date;             /* Date: header, written in UTC (+0000) */
	const char *text;        /* text part (UTF-8) or NULL */
	size_t text_len;
	const char *html;        /* HTML part (UTF-8) or NULL */
	size_t html_len;
	const char *unsub_url;   /* https URL or NULL */
	const char *unsub_mailto;/* address (without mailto:) or NULL */
	int unsub_http_ok;       /* accept an http:// unsub_url too (edm track
	                            on http, which edm warns about) */
	const char *feedback_id; /* or NULL */
	const struct mime_header *headers; /* extra headers */
	size_t nheaders;
	struct mime_attachment *const *atts;
	size_t natts;
};

/*
 * Append the whole message (headers, blank line, body) to out. Returns 0,
 * or -1 with a reason in err (no body at all; a from/to/reply-to address
 * or message-id with non-ASCII, space, control characters or '<' '>'; an
 * unsubscribe URL that is not https; an extra header name that is not a
 * field name; a date outside the years 1900..9999; allocation failure). On failure out
 * is left as it was. err may be NULL.
 */
int mime_build(const struct mime_message *m, struct buf *out,
               char *err, size_t errlen);

/*
 * Load and base64-encode a file once (the encoded body is reused for every
 * message). The Content-Type comes from the extension (pdf, png, jpg/jpeg,
 * gif, webp, svg, txt, csv, html, zip, doc/docx, xls/xlsx, ppt/pptx, ics;
 * else application/octet-stream); the filename parameter is written per
 * RFC 2231 when it is not plain ASCII. When the HTML references
 * "cid:<basename>", mime_build() places it inline in multipart/related
 * with Content-ID <basename>. NULL with "path: reason" in err on failure.
 */
struct mime_attachment *mime_attachment_load(const char *path, char *err,
                                             size_t errlen);

/* Free; NULL is a no-op. */
void mime_attachment_free(struct mime_attachment *a);

/*
 * Helpers exposed for tests and for other headers (I/O-free):
 * mime_encode_words() appends 'text' as a header value starting at column
 * 'col' (after "Name: "): plain when it is printable ASCII, else RFC 2047
 * "=?UTF-8?B?...?=" words, folded with CRLF SP so no line exceeds 78
 * octets and no UTF-8 character is split (controls become spaces first;
 * no CRLF is added after the value). mime_qp() appends
 * quoted-printable (RFC 2045 6.7) of a UTF-8 text with lines normalised to
 * CRLF, soft breaks keeping lines at most 76 octets.
 */
int mime_encode_words(struct buf *out, const char *text, size_t len, size_t col);
int mime_qp(struct buf *out, const char *text, size_t len);

#endif
