/*
 * send.c - `edm send` (contract in send.h).
 *
 * Order of work: every check that can fail on the user's side runs before
 * the first connection (config, password, templates, rules, relays, the
 * journal's lock and fingerprint). Then one libuv loop runs the reader (an
 * idle handle feeding sched_add in slices), the scheduler, the progress
 * timer and the signal handlers, until the scheduler says done.
 */
#include "send.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "address.h"
#include "classify.h"
#include "config.h"
#include "csv_reader.h"
#include "dns.h"
#include "files.h"
#include "hset.h"
#include "journal.h"
#include "log.h"
#include "message.h"
#include "recipients.h"
#include "results.h"
#include "scheduler.h"
#include "strset.h"
#include "suppress.h"
#include "tls.h"

/* Rows read per loop turn: enough to keep up, small enough that a turn
 * never holds the connections' I/O back for long. */
#define READ_SLICE 2048

struct send {
	struct config *cfg;
	const struct send_opts *o;
	uv_loop_t loop;
	uv_idle_t reader_h;
	uv_timer_t progress_h;
	uv_signal_t sigint_h, sigterm_h;
	struct csv_reader *reader;
	size_t email_col, ncols;
	struct sched *sched;
	struct journal *journal;
	struct hset *seen;
	struct strset *suppressed;
	struct suppress_watch *watch[2]; /* the suppression files, followed */
	uv_timer_t watch_h;
	size_t watch_added;   /* addresses picked up while sending */
	struct buf line;
	int reading, done, failed, signals;
	size_t skipped_read, resumed_finals;
	size_t queued;        /* rows given to the scheduler */
	char err[512];
	struct timespec start;
	size_t last_final;
	double rate;
	struct timespec last_tick;
};

/* Scheduler hook, right before a recipient is rendered: suppressed since
 * it was queued (an unsubscribe or complaint arrived meanwhile)? */
static int is_suppressed(void *arg, const char *email)
{
	struct send *s = arg;
	struct addr a;

	return addr_parse(email, strlen(email), &a, NULL, 0) == 0 &&
	       strset_has(s->suppressed, a.key, a.len);
}

/* Every second: pick up what edm track / edm ingest appended to the
 * suppression files. */
static void on_watch(uv_timer_t *h)
{
	struct send *s = h->data;
	char err[512];

	for (int i = 0; i < 2; i++) {
		long n;
		if (s->watch[i] == NULL)
			continue;
		n = suppress_watch_poll(s->watch[i], s->suppressed, err, sizeof(err));
		if (n < 0)
			log_kv(EDM_LOG_WARN, "suppress-watch", "error=\"%s\"", err);
		else if (n > 0) {
			s->watch_added += (size_t)n;
			log_kv(EDM_LOG_INFO, "suppress-watch", "added=%ld", n);
		}
	}
}

/* SHA-256 of the config file and the recipient list, hex. */
static int fingerprint(const struct config *cfg, char out[65], char *err, size_t errlen)
{
	const char *files[2] = { cfg->path, cfg->campaign.recipients };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[32], buf[65536];
	unsigned hl = 0;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return edm_errf(err, errlen, "SHA-256 unavailable");
	}
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "rb");
		size_t n;
		if (f == NULL) {
			EVP_MD_CTX_free(md);
			return edm_errf(err, errlen, "%s: %s", files[i], strerror(errno));
		}
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			EVP_DigestUpdate(md, buf, n);
		fclose(f);
		EVP_DigestUpdate(md, "\0", 1);
	}
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	return 0;
}

/* A final outcome decided while reading (skipped/suppressed). */
static int read_final(struct send *s, const struct csv_row *r, const char *email,
                      const char *status, const char *category, const char *detail)
{
	struct results_row rr = { 0 };

	s->skipped_read++;
	if (s->journal == NULL)
		return 0;
	rr.time = time(NULL);
	rr.email = email;
	rr.status = status;
	rr.category = category;
	rr.reply = detail;
	rr.row = r->row;
	buf_reset(&s->line);
	if (results_format(&rr, &s->line) < 0)
		return edm_errf(s->err, sizeof(s->err), "out of memory");
	return journal_final(s->journal, r->row, s->line.data, s->err, sizeof(s->err));
}

/* One row: checks, journal state, then the scheduler. */
static int read_row(struct send *s, const struct csv_row *r)
{
	struct addr a;
	char detail[256];
	const char *why;
	struct journal_deferral jd;
	int st = 0, added;

	why = recipients_row_problem(r, s->ncols, s->email_col, &a, detail, sizeof(detail));
	if (why == NULL) {
		added = hset_add(s->seen, a.key, a.len);
		if (added < 0)
			return edm_errf(s->err, sizeof(s->err), "out of memory");
		if (added == 0) {
			why = "duplicate";
			snprintf(detail, sizeof(detail), "%.200s appears earlier in the file", a.key);
		}
	}
	if (s->journal != NULL) {
		st = journal_row_state(s->journal, r->row, &jd);
		if (st == 1) {
			s->resumed_finals++;
			return 0;
		}
	}
	if (why != NULL) {
		const char *email = r->nfields > s->email_col ? r->fields[s->email_col] : "";
		return read_final(s, r, email, "skipped", why, detail);
	}
	if (s->suppressed != NULL && strset_has(s->suppressed, a.key, a.len))
		return read_final(s, r, a.norm, "suppressed", "suppressed",
		                  s->cfg->campaign.suppression);
	s->queued++;
	return sched_add(s->sched, r, &a, st == 2 ? &jd : NULL, s->err, sizeof(s->err));
}

static void stop_reader(struct send *s)
{
	if (s->reading) {
		s->reading = 0;
		uv_idle_stop(&s->reader_h);
		sched_input_done(s->sched);
	}
}

static void on_read(uv_idle_t *h)
{
	struct send *s = h->data;
	const struct csv_row *r;

	for (int i = 0; i < READ_SLICE; i++) {
		int rc;
		/* --test-to: the first N sendable rows only */
		if (s->o->test_to != NULL && s->queued >= (s->o->limit ? s->o->limit : 1)) {
			stop_reader(s);
			return;
		}
		rc = csv_reader_next(s->reader, &r, s->err, sizeof(s->err));
		if (rc == 0) {
			stop_reader(s);
			return;
		}
		if (rc < 0 || read_row(s, r) < 0) {
			s->failed = 1;
			edm_error("%s", s->err);
			stop_reader(s);
			sched_stop(s->sched);
			return;
		}
	}
}

static double ts_sec(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* The live line: delivered/deferred/bounced/pending, msgs/s, ETA. */
static void progress_line(struct send *s, int final)
{
	struct sched_stats st;
	struct timespec now;
	size_t fin;
	char eta[32] = "-";

	if (!s->o->progress)
		return;
	sched_stats(s->sched, &st);
	clock_gettime(CLOCK_MONOTONIC, &now);
	fin = st.delivered + st.bounced + st.expired;
	double dt = ts_sec(&s->last_tick, &now);
	if (dt >= 1.0) {
		double r = (double)(fin - s->last_final) / dt;
		s->rate = s->rate == 0 ? r : 0.7 * s->rate + 0.3 * r;
		s->last_final = fin;
		s->last_tick = now;
	}
	if (s->rate > 0.5 && st.pending > 0) {
		double sec = (double)st.pending / s->rate;
		snprintf(eta, sizeof(eta), "%02d:%02d:%02d", (int)(sec / 3600),
		         (int)(sec / 60) % 60, (int)sec % 60);
	}
	fprintf(stderr, "\r\033[Kedm send: delivered %zu  deferred %zu  bounced %zu  "
	        "pending %zu  | %.0f msg/s  ETA %s  conns %zu%s%s",
	        st.delivered, st.deferred_now, st.bounced, st.pending,
	        s->rate, eta, st.connections, *st.paused ? "  paused: " : "", st.paused);
	if (st.pending > 0 && st.pending == st.deferred_now && st.next_retry) {
		char t[21];
		results_time(st.next_retry, t);
		fprintf(stderr, "  waiting for retries (next %s)", t);
	}
	if (final)
		fputc('\n', stderr);
}

static void on_progress(uv_timer_t *t)
{
	progress_line(t->data, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct send *s = h->data;

	if (++s->signals > 1) {
		edm_warn("second signal: stopping now; in-flight messages are "
		         "repeated on resume");
		if (s->journal)
			journal_sync(s->journal);
		_exit(EX_TEMPFAIL);
	}
	edm_warn("%s: finishing the messages in flight, then stopping (press "
	         "Ctrl-C again to stop at once)", signum == SIGINT ? "SIGINT" : "SIGTERM");
	stop_reader(s);
	sched_stop(s->sched);
}

static void on_done(void *arg)
{
	struct send *s = arg;

	s->done = 1;
	stop_reader(s);
	uv_close((uv_handle_t *)&s->reader_h, NULL);
	uv_timer_stop(&s->progress_h);
	uv_close((uv_handle_t *)&s->progress_h, NULL);
	uv_timer_stop(&s->watch_h);
	uv_close((uv_handle_t *)&s->watch_h, NULL);
	uv_close((uv_handle_t *)&s->sigint_h, NULL);
	uv_close((uv_handle_t *)&s->sigterm_h, NULL);
}

/* Resolve [smtp] relay host names (blocking, once, before sending). */
static int resolve_relays(struct config *cfg, struct sched_relay **out, char *err,
                          size_t errlen)
{
	struct config_smtp *m = &cfg->smtp;
	struct sched_relay *v = calloc(m->nrelays ? m->nrelays : 1, sizeof(*v));

	if (v == NULL)
		return edm_errf(err, errlen, "out of memory");
	for (size_t i = 0; i < m->nrelays; i++) {
		struct addrinfo hints = { 0 }, *ai = NULL;
		char port[8];
		int rc;

		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof(port), "%u", m->relays[i].port);
		rc = getaddrinfo(m->relays[i].host, port, &hints, &ai);
		if (rc != 0 || ai == NULL) {
			free(v);
			return edm_errf(err, errlen, "%s: [smtp] relay %s: %s",
			                config_where(cfg, "smtp", "relay"), m->relays[i].host,
			                gai_strerror(rc));
		}
		memcpy(&v[i].addr, ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(ai);
		v[i].host = m->relays[i].host;
		v[i].tls = (int)sched_tls_mode(m->relays[i].tls);
	}
	*out = v;
	return 0;
}

/* EHLO name: [smtp] helo, else this host's name if it is a FQDN, else the
 * From domain (a bare "localhost" is refused by many receivers). */
static void pick_helo(const struct config *cfg, const char *from, char *out, size_t n)
{
	char host[256];
	const char *at = strrchr(from, '@');

	if (cfg->smtp.helo != NULL) {
		snprintf(out, n, "%s", cfg->smtp.helo);
		return;
	}
	if (gethostname(host, sizeof(host)) == 0 && strchr(host, '.') != NULL) {
		snprintf(out, n, "%s", host);
		return;
	}
	snprintf(out, n, "%s", at ? at + 1 : "localhost");
}

static int end_code(const struct sched_stats *st, int failed)
{
	if (failed)
		return EX_SOFTWARE;
	switch (st->end) {
	case SCHED_END_DONE:
		return 0;
	case SCHED_END_WAITING:
	case SCHED_END_STOPPED:
	case SCHED_END_PAUSED:
		return EX_TEMPFAIL;
	case SCHED_END_CONFIG:
		return EX_CONFIG;
	case SCHED_END_BOUNCE_RATE:
		return EX_DATAERR;
	case SCHED_END_ERROR:
		return EX_IOERR;
	}
	return EX_SOFTWARE;
}

int send_run(struct config *cfg, const struct send_opts *o)
{
	struct send s = { 0 };
	struct sched_opts so = { 0 };
	struct sched_relay *relays = NULL;
	struct message_factory *mf = NULL;
	struct classifier *cls = NULL;
	struct dns *dns = NULL;
	struct tls_config *tv = NULL, *tn = NULL;
	char err[768], fp[65], spill[4096], suppress_path[4096], helo[256];
	char daily[4096];
	const char *password = NULL, *mail_from;
	char verp_prefix[320] = "", *verp_suffix = NULL, verp_probe[600];
	int rc = EX_SOFTWARE, jrc;
	struct sched_stats st;
	FILE *logf = NULL;

	s.cfg = cfg;
	s.o = o;
	if (!cfg->message.present) {
		edm_error("%s: edm send needs a [message] section (from, subject, "
		          "text/html): see docs/config.md", cfg->path);
		return EX_CONFIG;
	}
	if (!cfg->smtp.present && !o->dry_run) {
		edm_error("%s: edm send needs an [smtp] section: mode = relay with "
		          "relay = host:port, or mode = mx (see docs/config.md)", cfg->path);
		return EX_CONFIG;
	}
	if (cfg->smtp.username != NULL && !o->dry_run) {
		const char *var = cfg->smtp.password_env ? cfg->smtp.password_env : "EDM_SMTP_PASSWORD";
		password = getenv(var);
		if (password == NULL || *password == '\0') {
			edm_error("%s: [smtp] username is set but the environment variable "
			          "%s is empty: export %s=<password or authorization code>",
			          config_where(cfg, "smtp", "password_env"), var, var);
			return EX_CONFIG;
		}
	}
	if (o->test_to != NULL) {
		struct addr ta;
		char why[128];
		if (addr_parse(o->test_to, strlen(o->test_to), &ta, why, sizeof(why)) < 0) {
			edm_error("--test-to %s: %s", o->test_to, why);
			return EX_USAGE;
		}
	}
	if ((s.reader = recipients_open(cfg, &s.email_col, &rc)) == NULL)
		return rc;
	s.ncols = csv_reader_header(s.reader)->nfields;
	mf = message_factory_new(cfg, csv_reader_header(s.reader), s.email_col, err, sizeof(err));
	if (mf == NULL) {
		edm_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (message_factory_tracking_init(mf, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	cls = classify_new(cfg->smtp.bounce_rules, err, sizeof(err));
	if (cls == NULL) {
		edm_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	mail_from = cfg->smtp.return_path ? cfg->smtp.return_path : message_from_addr(mf);
	if (cfg->smtp.username && cfg->smtp.return_path &&
	    strcasecmp(cfg->smtp.return_path, cfg->smtp.username) != 0)
		edm_warn("%s: return_path %s differs from the login %s: QQ, 163 and "
		         "many other relays refuse MAIL FROM that is not the login",
		         config_where(cfg, "smtp", "return_path"), cfg->smtp.return_path,
		         cfg->smtp.username);
	if (strstr(mail_from, "{{token}}") != NULL) {
		/* VERP: bounces+{{token}}@acme.example; the probe checks that
		 * what it renders to is an address */
		const char *t = strstr(mail_from, "{{token}}");
		struct addr pa;
		char why[128];
		snprintf(verp_prefix, sizeof(verp_prefix), "%.*s", (int)(t - mail_from), mail_from);
		verp_suffix = (char *)t + strlen("{{token}}");
		snprintf(verp_probe, sizeof(verp_probe), "%s%s%s", verp_prefix,
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", verp_suffix);
		if (strstr(verp_suffix, "{{") != NULL ||
		    addr_parse(verp_probe, strlen(verp_probe), &pa, why, sizeof(why)) < 0) {
			edm_error("%s: [smtp] return_path = %s: {{token}} must sit in the "
			          "local part of one address (bounces+{{token}}@acme.example)",
			          config_where(cfg, "smtp", "return_path"), mail_from);
			rc = EX_CONFIG;
			goto out;
		}
		mail_from = verp_probe;
	}
	pick_helo(cfg, mail_from, helo, sizeof(helo));
	if (cfg->smtp.mode == CFG_MODE_RELAY && !o->dry_run &&
	    resolve_relays(cfg, &relays, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		rc = EX_NOHOST;
		goto out;
	}
	if (files_mkdir_p(cfg->campaign.out_dir) < 0) {
		edm_error("%s: cannot create the out dir: %s (from %s)", cfg->campaign.out_dir,
		          strerror(errno), config_where(cfg, "campaign", "out_dir"));
		rc = EX_CANTCREAT;
		goto out;
	}
	if (!o->dry_run && o->test_to == NULL) {
		if (fingerprint(cfg, fp, err, sizeof(err)) < 0) {
			edm_error("%s", err);
			rc = EX_NOINPUT;
			goto out;
		}
		s.journal = journal_open(cfg->campaign.out_dir, fp, cfg->campaign.name,
		                         o->force, &jrc, err, sizeof(err));
		if (s.journal == NULL) {
			if (jrc == JOURNAL_LOCKED) {
				edm_error("%s (another edm send of this campaign is running; "
				          "wait for it or stop it first)", err);
				rc = EX_TEMPFAIL;
			} else if (jrc == JOURNAL_CHANGED) {
				edm_error("%s: the recipient list or the config changed since "
				          "this campaign was started; resuming would mix two "
				          "campaigns. Use a new out_dir, or --force to resume "
				          "anyway (rows are matched by row number)", err);
				rc = EX_DATAERR;
			} else {
				edm_error("%s", err);
				rc = EX_IOERR;
			}
			goto out;
		}
		if (journal_resumed(s.journal) && !o->quiet)
			fprintf(stderr, "edm send: resuming %s: %zu recipients already final, "
			        "%zu deferred\n", cfg->campaign.name, journal_finals(s.journal),
			        journal_deferred(s.journal));
	}
	/* where hard bounces go: the campaign's suppression file, or
	 * OUT_DIR/suppress.csv when none is configured */
	if (cfg->campaign.suppression)
		snprintf(suppress_path, sizeof(suppress_path), "%s", cfg->campaign.suppression);
	else
		snprintf(suppress_path, sizeof(suppress_path), "%s/suppress.csv",
		         cfg->campaign.out_dir);
	if ((s.seen = hset_new()) == NULL || (s.suppressed = strset_new()) == NULL) {
		edm_error("out of memory");
		goto out;
	}
	{
		/* Followed while sending: edm track and edm ingest append
		 * unsubscribes, complaints and bounces to them. */
		const char *paths[2] = { cfg->campaign.suppression, suppress_path };
		for (int i = 0; i < 2; i++) {
			if (paths[i] == NULL || (i == 1 && paths[0] != NULL &&
			                         strcmp(paths[0], paths[1]) == 0))
				continue;
			/* OUT_DIR/suppress.csv: only edm send itself writes it
			 * (without [campaign] suppression); followed when it is
			 * there from an earlier run */
			if (i == 1 && access(paths[i], F_OK) != 0)
				continue;
			if ((s.watch[i] = suppress_watch_new(paths[i])) == NULL) {
				edm_error("out of memory");
				goto out;
			}
			if (suppress_watch_poll(s.watch[i], s.suppressed, err, sizeof(err)) < 0) {
				edm_error("%s (from %s)", err, config_where(cfg, "campaign", "suppression"));
				rc = EX_NOINPUT;
				goto out;
			}
		}
	}
	if (!o->dry_run && o->test_to == NULL) {
		char lp[4096];
		int fd;
		snprintf(lp, sizeof(lp), "%s/send.log", cfg->campaign.out_dir);
		fd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0 && (logf = fdopen(fd, "a")) != NULL) {
			setvbuf(logf, NULL, _IOLBF, 0);
			log_set_file(logf, EDM_LOG_INFO);
		} else if (fd >= 0)
			close(fd);
	}
	if (uv_loop_init(&s.loop) != 0) {
		edm_error("cannot start the event loop");
		goto out;
	}
	if (cfg->smtp.mode == CFG_MODE_MX && !o->dry_run) {
		struct dns_opts dopts = { 0 };
		dopts.servers = o->resolver ? o->resolver
		              : cfg->smtp.resolver ? cfg->smtp.resolver : cfg->validate.resolver;
		dopts.timeout_ms = cfg->validate.dns_timeout_ms;
		dopts.tries = cfg->validate.dns_tries;
		dopts.max_inflight = cfg->validate.dns_concurrency;
		dns = dns_new(&s.loop, &dopts, err, sizeof(err));
		if (dns == NULL) {
			edm_error("%s: [smtp] resolver: %s", config_where(cfg, "smtp", "resolver"), err);
			rc = EX_CONFIG;
			goto out_loop;
		}
	}
	if (!o->dry_run) {
		/* only the config connections use: loading the CA store is the
		 * costly part of start-up */
		if (sched_tls_verify(&cfg->smtp))
			tv = tls_config_client(1, cfg->smtp.ca_file, err, sizeof(err));
		else
			tn = tls_config_client(0, cfg->smtp.ca_file, err, sizeof(err));
		if (tv == NULL && tn == NULL) {
			edm_error("%s: [smtp] ca_file: %s", config_where(cfg, "smtp", "ca_file"), err);
			rc = EX_CONFIG;
			goto out_loop;
		}
	}
	snprintf(spill, sizeof(spill), "%s/.spill", cfg->campaign.out_dir);
	so.loop = &s.loop;
	so.cfg = cfg;
	so.mf = mf;
	so.cls = cls;
	so.journal = s.journal;
	so.dns = dns;
	so.tls_verify = tv;
	so.tls_noverify = tn;
	so.relays = relays;
	so.nrelays = cfg->smtp.mode == CFG_MODE_RELAY && relays ? cfg->smtp.nrelays : 0;
	so.password = password;
	so.mail_from = mail_from;
	if (verp_suffix != NULL) {
		so.verp_key = message_token_key(mf);
		so.verp_prefix = verp_prefix;
		so.verp_suffix = verp_suffix;
	}
	so.helo = helo;
	so.spill_path = spill;
	snprintf(daily, sizeof(daily), "%s/daily", cfg->campaign.out_dir);
	/* a dry run or a test send sends nothing that counts */
	so.daily_path = (o->dry_run || o->test_to) ? NULL : daily;
	so.suppress_path = suppress_path;
	so.test_to = o->test_to;
	so.limit = o->test_to ? (o->limit ? o->limit : 1) : 0;
	so.dry_run = o->dry_run;
	so.no_wait = o->no_wait;
	so.done = on_done;
	so.is_suppressed = is_suppressed;
	so.arg = &s;
	s.sched = sched_new(&so, err, sizeof(err));
	if (s.sched == NULL) {
		edm_error("%s", err);
		goto out_loop;
	}
	uv_idle_init(&s.loop, &s.reader_h);
	uv_timer_init(&s.loop, &s.progress_h);
	uv_timer_init(&s.loop, &s.watch_h);
	s.watch_h.data = &s;
	uv_timer_start(&s.watch_h, on_watch, 1000, 1000);
	uv_signal_init(&s.loop, &s.sigint_h);
	uv_signal_init(&s.loop, &s.sigterm_h);
	s.reader_h.data = s.progress_h.data = s.sigint_h.data = s.sigterm_h.data = &s;
	s.reading = 1;
	uv_idle_start(&s.reader_h, on_read);
	uv_signal_start(&s.sigint_h, on_signal, SIGINT);
	uv_signal_start(&s.sigterm_h, on_signal, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &s.start);
	s.last_tick = s.start;
	if (o->progress)
		uv_timer_start(&s.progress_h, on_progress, 500, 500);
	log_kv(EDM_LOG_INFO, "send-start", "campaign=%s mode=%s out_dir=%s",
	       cfg->campaign.name, cfg->smtp.mode == CFG_MODE_MX ? "mx" : "relay",
	       cfg->campaign.out_dir);
	uv_run(&s.loop, UV_RUN_DEFAULT);
	if (!s.done) {
		/* should not happen: the scheduler always calls done */
		edm_error("internal: the event loop ran dry before the campaign ended");
		s.failed = 1;
	}
	progress_line(&s, 1);
	sched_stats(s.sched, &st);
	if (s.journal)
		journal_sync(s.journal);
	rc = end_code(&st, s.failed);
	log_kv(EDM_LOG_INFO, "send-end", "campaign=%s delivered=%zu bounced=%zu expired=%zu "
	       "skipped=%zu pending=%zu exit=%d", cfg->campaign.name, st.delivered,
	       st.bounced, st.expired, st.skipped + s.skipped_read, st.pending, rc);
	if (!o->quiet) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double sec = ts_sec(&s.start, &now);
		if (o->dry_run)
			printf("edm send --dry-run: %zu messages rendered (%.1f MB), %zu rows "
			       "skipped; nothing was sent\n", st.dry_rendered,
			       (double)st.dry_bytes / 1e6, st.skipped + s.skipped_read);
		else {
			printf("edm send: %s: delivered %zu, bounced %zu, expired %zu, "
			       "skipped/suppressed %zu, still pending %zu (%.1f s, %.0f msg/s)\n",
			       cfg->campaign.name, st.delivered, st.bounced, st.expired,
			       st.skipped + s.skipped_read, st.pending, sec,
			       sec > 0 ? (double)(st.delivered + st.bounced) / sec : 0.0);
			if (s.journal)
				printf("results: %s/results.csv\n", cfg->campaign.out_dir);
		}
	}
	switch (st.end) {
	case SCHED_END_DONE:
		break;
	case SCHED_END_WAITING: {
		char t[21];
		results_time(st.next_retry, t);
		fprintf(stderr, "edm send: %zu recipients wait for a retry or for "
		        "a daily_limit to reset; run the same command again after "
		        "%s (UTC)\n", st.pending, t);
		break;
	}
	case SCHED_END_STOPPED:
		fprintf(stderr, "edm send: stopped; %zu recipients pending: resume "
		        "with the same command\n", st.pending);
		break;
	default:
		edm_error("%s; %zu recipients pending: resume with the same command "
		          "once fixed", *st.end_detail ? st.end_detail : "campaign stopped",
		          st.pending);
		break;
	}
out_loop:
	/* dns first: it may call the scheduler's route callbacks ("cancelled") */
	dns_free(dns);
	sched_free(s.sched);
	s.sched = NULL;
	uv_run(&s.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&s.loop) != 0)
		log_kv(EDM_LOG_DEBUG, "loop-close", "busy=1");
out:
	if (logf != NULL) {
		log_set_file(NULL, EDM_LOG_INFO);
		fclose(logf);
	}
	tls_config_free(tv);
	tls_config_free(tn);
	journal_close(s.journal);
	free(relays);
	classify_free(cls);
	message_factory_free(mf);
	csv_reader_free(s.reader);
	hset_free(s.seen);
	strset_free(s.suppressed);
	suppress_watch_free(s.watch[0]);
	suppress_watch_free(s.watch[1]);
	buf_free(&s.line);
	return rc;
}
