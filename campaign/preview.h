/*
 * preview.h - `edm preview`: render the message of one row (stdout or a
 * file) or of every row (one .eml per row) without sending anything.
 */
#ifndef EDM_PREVIEW_H
#define EDM_PREVIEW_H

#include <stddef.h>
#include <time.h>

struct config;

struct preview_opts {
	size_t row;          /* data row, 1-based (default 1) */
	const char *out;     /* --out FILE, or NULL for stdout */
	int all;             /* --all: every row into out_dir */
	const char *out_dir; /* --out-dir DIR for --all */
	time_t now;          /* Date of the messages; 0 = now (tests pin it) */
};

/* Returns a sysexits code; errors on stderr. */
int preview_run(struct config *cfg, const struct preview_opts *o);

#endif
