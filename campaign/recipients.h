/*
 * recipients.h - open a campaign's recipient CSV the way every command
 * does: the reader with the configured encoding and delimiter, the header
 * checked (encoding, address column), errors printed for the user.
 */
#ifndef EDM_RECIPIENTS_H
#define EDM_RECIPIENTS_H

#include <stddef.h>

struct config;
struct csv_reader;

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

/* 1 when the campaign's encoding names UTF-8. */
int recipients_is_utf8(const struct config *cfg);

#endif
