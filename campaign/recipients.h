/*
 * recipients.h - open a campaign's recipient CSV the way every command
 * does: the reader with the configured encoding and delimiter, the header
 * checked (encoding, address column), errors printed for the user.
 */
#ifndef EDM_RECIPIENTS_H
#define EDM_RECIPIENTS_H

#include <stddef.h>

struct addr;
struct config;
struct csv_reader;
struct csv_row;

/*
 * Open [campaign] recipients. On success returns the reader (header read)
 * and the address column in *email_col. On failure prints what is wrong
 * (file, config key, columns found, encoding hint) and returns NULL with a
 * sysexits code in *rc: EX_NOINPUT (missing file) or EX_DATAERR.
 */
struct csv_reader *recipients_open(struct config *cfg, size_t *email_col,
                                   int *rc);

/* The hint message for a utf-8 campaign that is evidently not UTF-8;
 * 'why' says what was not valid ("its header row"). */
void recipients_encoding_error(struct config *cfg, struct csv_reader *r,
                               const char *why);

/*
 * Why a data row cannot be rendered or sent: "malformed", "encoding" or
 * "syntax" with a detail, or NULL with *a holding its parsed address.
 * (`edm validate` applies the full list of reasons; this is the minimum
 * every row that is rendered must pass.)
 */
const char *recipients_row_problem(const struct csv_row *r, size_t ncols,
                                   size_t email_col, struct addr *a,
                                   char *detail, size_t dlen);

/* 1 when the campaign's encoding names UTF-8. */
int recipients_is_utf8(const struct config *cfg);

#endif
