/*
 * maildir.h - deliver messages into a Maildir (https://cr.yp.to/proto/
 * maildir.html), the store `edm sink` writes and mail clients (mutt,
 * neomutt, aerc, Evolution, Claws) open directly.
 *
 * Contract:
 * - maildir_open() creates DIR (and missing parents), DIR/tmp, DIR/new and
 *   DIR/cur with mode 0700; existing directories are used as they are.
 * - maildir_deliver() writes the message bytes exactly as given (no
 *   Return-Path, Delivered-To or other header is added) to
 *   DIR/tmp/NAME (O_EXCL, mode 0600: messages are personal data), fsyncs
 *   it and renames it to DIR/new/NAME, so a reader never sees a partial
 *   message. NAME is "<time>.<pid>_<counter>.<host>" (the original Maildir
 *   unique name; host with "/" and ":" written as "\057" and "\072").
 * - Synchronous: meant for the sink's loop thread, one message at a time.
 * What it does not do: read or list messages, set flags (":2,"), quotas.
 */
#ifndef EDM_MAILDIR_H
#define EDM_MAILDIR_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

struct maildir;

/* Create (if needed) and open the Maildir at dir. NULL with err on failure
 * (which directory, and the system's reason). */
struct maildir *maildir_open(const char *dir, char *err, size_t errlen);

/* Free the handle (the directory stays). NULL is a no-op. */
void maildir_free(struct maildir *md);

/* The directory, as given to maildir_open(). */
const char *maildir_path(const struct maildir *md);

/*
 * Deliver data[0..len) with the unique name made from 'now'. 0 and the
 * file's base name appended to *name (the file is maildir_path()/new/NAME),
 * or -1 with err (nothing is left in tmp/).
 */
int maildir_deliver(struct maildir *md, const void *data, size_t len,
                    time_t now, struct buf *name, char *err, size_t errlen);

#endif
