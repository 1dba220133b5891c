/*
 * send.h - `edm send`: the campaign's lifecycle around the scheduler
 * (engine/scheduler.h): config checks, the journal (resume), reading the
 * list with the no-DNS checks of validate, signals, progress, summary.
 */
#ifndef EDM_SEND_H
#define EDM_SEND_H

#include <stddef.h>

struct config;

struct send_opts {
	int dry_run;          /* render everything, connect nowhere, no journal */
	const char *test_to;  /* send to this address instead, no journal */
	size_t limit;         /* with test_to: the first N messages (default 1) */
	int no_wait;          /* exit 75 when only deferred recipients remain */
	int force;            /* accept a changed list/config on resume */
	int quiet;            /* no summary */
	int progress;         /* live line on stderr (a TTY) */
	const char *resolver; /* overrides [smtp] resolver */
};

/* Run the campaign; returns a sysexits code (docs/edm.1 lists them). */
int send_run(struct config *cfg, const struct send_opts *o);

#endif
