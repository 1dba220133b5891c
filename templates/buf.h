/*
 * buf.h - a growable byte buffer (the output type of the renderers).
 *
 * Contract: a zeroed struct buf is a valid empty buffer. Appends grow the
 * storage geometrically, so building a message costs amortised O(size).
 * data is NUL-terminated after every successful append (the NUL is not
 * counted in len), so a buffer can be passed where a C string is wanted as
 * long as the content itself has no NUL. On allocation failure an append
 * returns -1 and leaves the buffer as it was. buf_free() releases storage
 * and re-zeroes; buf_reset() keeps the storage for reuse (the per-recipient
 * hot path allocates nothing once the buffers have grown).
 */
#ifndef EDM_BUF_H
#define EDM_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Make room for at least 'extra' more bytes. 0 or -1. */
int buf_reserve(struct buf *b, size_t extra);

/* Append n bytes. 0 or -1. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append a C string. 0 or -1. */
int buf_puts(struct buf *b, const char *s);

/* Append one byte. 0 or -1. */
int buf_putc(struct buf *b, char c);

/* Append printf-formatted text. 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Empty the buffer, keep its storage. */
void buf_reset(struct buf *b);

/* Release the storage; the buffer is empty and valid again. */
void buf_free(struct buf *b);

#endif
