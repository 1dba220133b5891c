/*
 * validate.h - `edm validate`: list cleaning by dry run.
 *
 * Streams the recipient CSV once, decides keep or reject for every row in
 * file order (reasons, first that applies: malformed, encoding, syntax,
 * duplicate, suppressed, disposable, role, typo, no-mail), and writes
 * clean.csv and rejects.csv (0600, atomically) into the out dir, plus a
 * summary on stdout. DNS checks run on a libuv loop through engine/dns
 * while parsing goes on; a bounded window of rows waits for its domains'
 * answers, so memory is bounded by the window and the dedup set, never by
 * the file.
 */
#ifndef EDM_VALIDATE_H
#define EDM_VALIDATE_H

#include <stdio.h>

struct config;

struct validate_opts {
	int no_dns;          /* --no-dns: skip MX checks whatever the config */
	const char *out_dir; /* --out-dir: overrides [campaign] out_dir */
	const char *resolver; /* --resolver: overrides [validate] resolver */
	int progress;        /* show a progress line on stderr (a TTY) */
	int quiet;           /* no summary on stdout */
};

/* Counts of one run, in reason order (also used by tests). */
enum validate_reason {
	VR_KEEP = 0,
	VR_MALFORMED,
	VR_ENCODING,
	VR_SYNTAX,
	VR_DUPLICATE,
	VR_SUPPRESSED,
	VR_DISPOSABLE,
	VR_ROLE,
	VR_TYPO,
	VR_TEMPLATE,
	VR_NO_MAIL,
	VR_COUNT
};

/* The exact reason words written to rejects.csv, indexed by the enum. */
extern const char *const validate_reason_names[VR_COUNT];

/*
 * Run the validation described by cfg. Returns a sysexits(3) code: 0 when
 * the run completed (whatever was rejected), EX_NOINPUT for a missing
 * input, EX_DATAERR for unusable input (no email column, wrong encoding),
 * EX_CANTCREAT when the outputs cannot be written, EX_CONFIG for a bad
 * setting found at run time. Errors go to stderr, the summary to stdout.
 */
int validate_run(struct config *cfg, const struct validate_opts *o);

#endif
