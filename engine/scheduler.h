/*
 * scheduler.h - the delivery scheduler of `edm send`: domain queues, shaping,
 * connections, outcomes (docs/SCHEDULER.md is the design note).
 *
 * Contract: single-threaded on the caller's loop, except the rendering
 * which runs on libuv's thread pool. The caller (campaign/send.c) feeds
 * rows with sched_add() (the scheduler copies them; rows beyond its memory
 * budget go to a spill file), says sched_input_done() at the end of the
 * list, runs the loop, and reads sched_stats(). The scheduler writes every
 * outcome to the journal (unless dry-run / test-to) and appends hard
 * bounces of the suppressing categories to the suppression file. It calls
 * the done() callback once when nothing more can happen in this run.
 */
#ifndef EDM_SCHEDULER_H
#define EDM_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "smtp_session.h"

struct addr;
struct classifier;
struct config;
struct csv_row;
struct dns;
struct journal;
struct journal_deferral;
struct message_factory;
struct tls_config;

/* Why a run ended (sched_stats().end). */
enum sched_end {
	SCHED_END_DONE = 0,        /* every recipient has a final outcome */
	SCHED_END_WAITING,         /* only deferred recipients remain (--no-wait) */
	SCHED_END_STOPPED,         /* SIGINT/SIGTERM */
	SCHED_END_CONFIG,          /* a sender-side failure stopped it (AUTH,
	                              TLS, MAIL FROM): fix the config */
	SCHED_END_BOUNCE_RATE,     /* max_bounce_rate exceeded */
	SCHED_END_PAUSED,          /* only paused domains hold recipients */
	SCHED_END_ERROR,           /* I/O error (journal, spill) */
};

struct sched_relay {
	const char *host;          /* name for TLS verification and logs */
	struct sockaddr_storage addr; /* with the port */
	int tls;                   /* enum smtp_tls_mode */
};

struct sched_opts {
	uv_loop_t *loop;
	const struct config *cfg;
	const struct message_factory *mf;
	const struct classifier *cls;
	struct journal *journal;   /* NULL: dry run / test-to */
	struct dns *dns;           /* mx mode */
	struct tls_config *tls_verify, *tls_noverify;
	const struct sched_relay *relays; /* relay mode */
	size_t nrelays;
	const char *password;      /* AUTH, or NULL */
	const char *mail_from;     /* envelope sender */
	/* VERP: with verp_key set, the envelope sender of each recipient is
	 * verp_prefix + its lowercase base32 token + verp_suffix */
	const struct token_key *verp_key;
	const char *verp_prefix, *verp_suffix;
	const char *helo;          /* EHLO name when no source_ips */
	const char *spill_path;    /* temporary file for rows over budget */
	/* Optional: where today's daily_limit counts are kept between runs
	 * (read at sched_new, rewritten atomically at sched_free), or NULL */
	const char *daily_path;
	const char *suppress_path; /* where hard bounces go, or NULL */
	const char *test_to;       /* redirect every message here, or NULL */
	size_t limit;              /* with test_to: messages to send (0 = all) */
	int dry_run;
	int no_wait;
	void (*done)(void *arg);
	/* Optional: 1 when the address was suppressed after it was queued
	 * (checked right before each render); it ends as "suppressed". */
	int (*is_suppressed)(void *arg, const char *email);
	void *arg;
};

struct sched_stats {
	size_t added;              /* rows given to sched_add */
	size_t delivered, bounced, expired, skipped;
	size_t deferred_now;       /* waiting for a retry */
	size_t pending;            /* not yet final (incl. deferred, in flight) */
	size_t attempts;           /* transactions finished */
	size_t connections;        /* open now */
	size_t dry_rendered;       /* --dry-run: messages rendered */
	uint64_t dry_bytes;
	time_t next_retry;         /* earliest deferred retry, 0 = none */
	enum sched_end end;
	char end_detail[512];      /* a sentence for the user */
	char paused[256];          /* "qq.com, 163.com" */
};

struct sched;

struct sched *sched_new(const struct sched_opts *o, char *err, size_t errlen);

/*
 * Queue a row (already past syntax/duplicate/suppression checks): its
 * fields are copied; d (may be NULL) is the journal's deferral of an
 * earlier run. 0 or -1 (err).
 */
int sched_add(struct sched *s, const struct csv_row *row, const struct addr *a,
              const struct journal_deferral *d, char *err, size_t errlen);

/* No more rows will come. */
void sched_input_done(struct sched *s);

/* SIGINT/SIGTERM: finish in-flight transactions (grace period), then end. */
void sched_stop(struct sched *s);

/* Counters for the progress line and the summary. */
void sched_stats(const struct sched *s, struct sched_stats *out);

/* The session's TLS mode for a configured one. */
enum smtp_tls_mode sched_tls_mode(enum cfg_tls t);

/* 1 when connections of this config verify certificates (chain and host
 * name), so only that one client TLS config is needed. */
int sched_tls_verify(const struct config_smtp *m);

/* Free (after the loop has run dry). NULL is a no-op. */
void sched_free(struct sched *s);

#endif
