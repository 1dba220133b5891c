/*
 * message.h - a campaign's message factory: everything of [message] and
 * [dkim] compiled once (templates, attachments, DKIM keys), then the
 * complete message of any recipient row rendered on demand.
 *
 * Variables a template may use: the recipient CSV's header names, plus the
 * built-ins below (a CSV column with the same name wins; the address
 * column always renders the normalised address):
 *   email            the recipient's address, normalised (trimmed,
 *                    punycode domain); the address column itself also
 *                    renders normalised, whatever its name
 *   campaign         [campaign] name
 *   row              the data row number (1-based)
 *   message_id       the Message-ID without angle brackets
 *   unsubscribe_url  the rendered [message] unsubscribe_url
 *   tracking_pixel   empty (with [tracking] opens, the HTML template's
 *                    {{tracking_pixel}} is replaced by the pixel before
 *                    compiling: templates/linktrack.h)
 *   date             the sending date, YYYY-MM-DD (UTC)
 *   token            the recipient's tracking token (templates/token.h),
 *                    empty without [tracking] / the secret
 *
 * With [tracking]: the HTML template's links and pixel are rewritten at
 * creation (linktrack.h), unsubscribe_url defaults to BASE/u/<token>, and
 * List-Unsubscribe always points there; message_factory_set_secret() must
 * be called before message_render() (message_check() does not need it).
 *
 * Contract: message_factory_new() either returns a factory whose every
 * template compiled against the CSV header, every attachment and key
 * loaded, or NULL with "file:line: what" in err. Rendering reads the
 * factory only, so one factory may serve several threads, each with its
 * own struct message_scratch. Warnings (weak or misaligned DKIM keys) go
 * to stderr once, at creation.
 */
#ifndef EDM_MESSAGE_H
#define EDM_MESSAGE_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "mime.h"

struct addr;
struct config;
struct csv_row;
struct message_factory;

/* Per-thread reusable buffers: zero-initialise, free with
 * message_scratch_free(). */
struct message_scratch {
	struct buf subject, from_name, to_name, text, html, feedback_id,
	           unsub_url, track_unsub, hdrs, mime, tmp;
	char msgid[512];      /* this row's Message-ID */
	char token[32];       /* this row's token (TOKEN_MAX) */
	const char **vals;    /* per-variable values, grown on the heap */
	size_t *lens;
	size_t nvals;
	size_t *hdr_off;      /* offset of each extra header's value in hdrs */
	struct mime_header *mhdrs;
	size_t nhdrs;
};

/* Returned by message_render()/message_check() when strict_variables
 * rejects the row (reason "template"). */
#define MESSAGE_TEMPLATE (-2)

/*
 * Compile the config's [message] and [dkim] sections against the CSV
 * header; email_col is the address column. NULL with err on failure.
 */
struct message_factory *message_factory_new(struct config *cfg,
                                            const struct csv_row *header,
                                            size_t email_col, char *err,
                                            size_t errlen);

/*
 * Render row 'row' (its fields in 'csv', its parsed address in 'to') into
 * out (appended): the whole message, DKIM signatures first, CRLF line ends,
 * as it goes over SMTP before dot-stuffing. 'now' is the Date. Returns 0,
 * MESSAGE_TEMPLATE with "file:line: VAR is empty" in err, or -1 with err.
 */
int message_render(const struct message_factory *f, const struct csv_row *csv,
                   const struct addr *to, time_t now,
                   struct message_scratch *s, struct buf *out,
                   char *err, size_t errlen);

/*
 * Render only the templates (no MIME, no DKIM; the bodies only under
 * strict_variables), as `edm validate` does to find rows that cannot be
 * sent. 0, MESSAGE_TEMPLATE or -1. unsubscribe_url is always strict: a
 * row whose unsubscribe link would have an empty variable cannot be sent.
 */
int message_check(const struct message_factory *f, const struct csv_row *csv,
                  const struct addr *to, struct message_scratch *s,
                  char *err, size_t errlen);

/* The Message-ID of a row (without brackets) into out[n]: deterministic
 * per campaign, row and address, so bounces can be matched later. */
void message_id(const struct message_factory *f, size_t row,
                const struct addr *to, char *out, size_t n);

/*
 * The same without a factory (edm ingest matches reports by it):
 * "edm.<row>.<16 hex>@<domain>" where the hex is the first 64 bits of
 * SHA-256(campaign NUL row-in-decimal NUL addr_key), addr_key being the
 * recipient's lowercased address (struct addr key) and domain the From
 * address's domain.
 */
void message_id_make(const char *campaign, size_t row, const char *addr_key,
                     const char *domain, char *out, size_t n);

/* Load the tracking secret (needed with [tracking] before rendering):
 * tokens are HMACs of campaign and row under it. 0 or -1 with err. */
int message_factory_set_secret(struct message_factory *f, const void *secret,
                               size_t len, char *err, size_t errlen);

/* What edm send and edm preview call after creating the factory: with
 * [tracking] on or {{token}} in [smtp] return_path, load the secret from
 * the environment (config_tracking_secret: -1 with err when unset or
 * short) and set it; otherwise nothing. 0 or -1. */
int message_factory_tracking_init(struct message_factory *f, char *err,
                                  size_t errlen);

/* The token key (NULL before message_factory_set_secret). */
struct token_key;
const struct token_key *message_token_key(const struct message_factory *f);

/* The click-tracked links of the HTML template (empty without tracking). */
struct link_table;
const struct link_table *message_links(const struct message_factory *f);

/* Envelope sender candidates: the From address (ASCII). */
const char *message_from_addr(const struct message_factory *f);

void message_scratch_free(struct message_scratch *s);

/* Free; NULL is a no-op. */
void message_factory_free(struct message_factory *f);

#endif
