/*
 * dsn.h - what a message that came back to the sender says: an RFC 3464
 * delivery status notification, an RFC 5965 (ARF) complaint report, one
 * of the plain-text bounces MTAs and big providers still send, an RFC 3834
 * auto-reply, or none of these (I/O-free: the bytes of one message in, a
 * struct out; `edm ingest` does the reading, matching and recording).
 *
 * What it reads:
 *   - MIME (RFC 2045/2046) with its own small walker: header folding,
 *     Content-Type parameters (quoted, comments), base64 and
 *     quoted-printable bodies, nested multiparts, message/rfc822 parts
 *     (also when wrongly base64-encoded), RFC 2047 encoded words in the
 *     Subject, and the charsets of text parts (GB18030/GBK/GB2312, Big5,
 *     ISO-8859-x, ... through iconv into UTF-8).
 *   - multipart/report; report-type=delivery-status: the per-message
 *     fields (Reporting-MTA, Gmail's X-Original-Message-ID) and every
 *     per-recipient block (Final-Recipient, Original-Recipient, Action,
 *     Status, Diagnostic-Code, Remote-MTA), 7bit or base64, also
 *     message/global-delivery-status (RFC 6533). A Diagnostic-Code of type
 *     smtp is a reply and is split into code, enhanced code and text (a
 *     multi-line "550-5.1.1 ..." reply is joined as the SMTP session joins
 *     it). A block without Action gets one from its Status class.
 *   - multipart/report; report-type=feedback-report: Feedback-Type and
 *     every Original-Rcpt-To (as recipients, action none).
 *   - the original message (message/rfc822, text/rfc822-headers, or the
 *     copy after a text bounce's separator line): its Message-ID, To,
 *     Return-Path and List-Unsubscribe.
 *   - text bounces, when a message that looks like a bounce (null sender,
 *     MAILER-DAEMON/postmaster, X-Failed-Recipients, a bounce subject in
 *     English or Chinese) has no delivery-status part: Postfix, Exim,
 *     qmail, Exchange/Outlook NDRs, Gmail's mailer-daemon texts, QQ and
 *     NetEase (Chinese, HTML or text): each failed address and the reply
 *     or reason that follows it; "delayed" wording makes them delayed.
 *   - auto-replies: Auto-Submitted other than "no", X-Autoreply,
 *     X-Autorespond, Precedence: auto_reply, and "Out of Office" /
 *     "Automatic reply" / "自动回复" style subjects. A bounce is never an
 *     auto-reply (bounces carry Auto-Submitted too).
 *
 * Contract: dsn_parse() never fails on bad input: garbage is
 * DSN_KIND_GARBAGE, a damaged MIME structure is read as far as it makes
 * sense (damaged = 1). Everything is bounded by struct dsn_limits (bytes
 * parsed, nesting depth, parts, recipients, text scanned); input past
 * max_bytes is ignored (truncated = 1). Every string of the report lives
 * in the report (freed by dsn_report_free()), is NUL-terminated valid
 * UTF-8 on one line (bytes that are not UTF-8 after charset conversion
 * become '?', control characters spaces), and may be NULL when absent.
 * Parsing is deterministic. Addresses are as written
 * (angle brackets, "rfc822;" and comments removed), not normalised.
 * What it does not do: decide whose message it was (tokens, Message-IDs:
 * campaign/ingest.c), classify replies (engine/classify.c), or read files.
 */
#ifndef EDM_DSN_H
#define EDM_DSN_H

#include <stddef.h>
#include <time.h>

/* Room for an enhanced status code "5.123.456" and its NUL. */
#define DSN_CODE_MAX 16

enum dsn_kind {
	DSN_KIND_OTHER = 0,   /* mail, but no report and no auto-reply */
	DSN_KIND_DSN,         /* a delivery report: RFC 3464 or a text bounce */
	DSN_KIND_ARF,         /* an RFC 5965 feedback (complaint) report */
	DSN_KIND_AUTOREPLY,   /* vacation, out of office, autoresponder */
	DSN_KIND_GARBAGE,     /* not a mail message at all (no header) */
};

/* Which reader understood a DSN. */
enum dsn_format {
	DSN_FMT_NONE = 0,
	DSN_FMT_RFC3464,      /* a delivery-status part (any MTA) */
	DSN_FMT_ARF,          /* a feedback-report part */
	DSN_FMT_POSTFIX,      /* text bounces by their wording: */
	DSN_FMT_EXIM,
	DSN_FMT_QMAIL,
	DSN_FMT_EXCHANGE,
	DSN_FMT_GMAIL,
	DSN_FMT_QQ,
	DSN_FMT_NETEASE,
	DSN_FMT_TEXT,         /* some other text bounce */
};

enum dsn_action {
	DSN_ACTION_NONE = 0,  /* not given (ARF recipients) */
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
};

/* One recipient of a report. */
struct dsn_rcpt {
	const char *final_rcpt;   /* Final-Recipient address (or the address a
	                             text bounce names), NULL if none */
	const char *orig_rcpt;    /* Original-Recipient address or NULL */
	enum dsn_action action;
	char status[DSN_CODE_MAX];/* Status "5.1.1" (valid RFC 3463 syntax) or
	                             from the diagnostic; "" if none */
	const char *diagnostic;   /* Diagnostic-Code as one line ("smtp; 550
	                             5.1.1 ..."), the reply of a text bounce,
	                             or NULL */
	int code;                 /* reply code in the diagnostic, 0 if none */
	char enhanced[DSN_CODE_MAX]; /* enhanced code in the diagnostic, "" */
	const char *text;         /* the diagnostic after its codes ("" when
	                             there is no diagnostic) */
	const char *remote_mta;   /* Remote-MTA without its type, or NULL */
};

struct dsn_report {
	enum dsn_kind kind;
	enum dsn_format format;
	const char *message_id;   /* the report's own Message-ID, no <> */
	const char *subject;      /* decoded (RFC 2047), UTF-8 */
	const char *from;         /* the From address */
	time_t date;              /* the Date field, 0 when absent/unreadable */
	/* Where the report was sent: To, Cc, Delivered-To, X-Original-To,
	 * Envelope-To, X-Envelope-To (a VERP address is one of them), in that
	 * order, without repeats. */
	const char **to;
	size_t nto;
	const char *reporting_mta;
	struct dsn_rcpt *rcpts;
	size_t nrcpts;
	/* The original message, when included (or named): */
	int has_original;
	const char *orig_message_id; /* no <> */
	const char **orig_to;
	size_t norig_to;
	const char *orig_return_path;
	const char *orig_list_unsubscribe;
	/* ARF */
	const char *feedback_type;   /* lowercased: abuse, fraud, ... */
	/* Auto-reply: the field or subject that said so. */
	const char *auto_reason;
	int truncated;               /* input longer than max_bytes */
	int damaged;                 /* MIME errors read around, limits hit */
	struct dsn_arena *arena;     /* owns every string above */
};

/* Bounds of one parse (the defaults and why in dsn_limits_default()). */
struct dsn_limits {
	size_t max_bytes;      /* bytes of the message looked at */
	unsigned max_depth;    /* nesting of multiparts / message parts */
	unsigned max_parts;    /* MIME parts visited in all */
	size_t max_rcpts;      /* recipients kept */
	size_t max_addrs;      /* addresses kept per address list */
	size_t max_text;       /* bytes of explanation text scanned */
	size_t max_field;      /* bytes of one header field kept */
};

/* Fill the defaults. */
void dsn_limits_default(struct dsn_limits *lim);

/*
 * Parse msg[len] (one message, CRLF or LF line ends, no mbox From_ line:
 * one at the start is skipped) into *out, which the caller zeroes or
 * reuses after dsn_report_free(). lim NULL = the defaults. 0, or -1 when
 * memory ran out (out is then empty). The caller frees with
 * dsn_report_free() in both cases.
 */
int dsn_parse(const void *msg, size_t len, const struct dsn_limits *lim,
              struct dsn_report *out);

/* Free what the report holds and zero it; NULL is a no-op. */
void dsn_report_free(struct dsn_report *r);

/*
 * Split a reply as a Diagnostic-Code carries it (after "smtp;"), or a
 * line of a text bounce: "550 5.1.1 text", "550-5.1.1 text", "550 text",
 * "5.1.1 text" or bare text; lines of a multi-line reply separated by LF
 * are joined with one space, each repeated "CODE-"/"CODE " and enhanced
 * code dropped. *code gets the reply code (0 when absent), enhanced the
 * enhanced code ("" when absent); the text goes to text[textlen]
 * (truncated to fit, NUL-terminated).
 */
void dsn_split_reply(const char *s, int *code, char enhanced[DSN_CODE_MAX],
                     char *text, size_t textlen);

/* RFC 5322 date ("Tue, 3 Nov 2026 08:15:00 +0800 (CST)", obsolete zone
 * names too) into *t (UTC). 0 or -1. */
int dsn_parse_date(const char *s, time_t *t);

/* "dsn", "arf", "auto-reply", "other", "garbage". */
const char *dsn_kind_name(enum dsn_kind k);
/* "rfc3464", "arf", "postfix", "exim", "qmail", "exchange", "gmail", "qq",
 * "netease", "text", "" for none. */
const char *dsn_format_name(enum dsn_format f);
/* "failed", "delayed", "delivered", "relayed", "expanded", "" for none. */
const char *dsn_action_name(enum dsn_action a);

#endif
