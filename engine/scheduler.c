/*
 * scheduler.c - where and when: domain queues, shapes, connections, outcomes.
 * docs/SCHEDULER.md is the design note this file implements; read it first.
 *
 * Data: items (one recipient row each) live in their domain's memory FIFO,
 * in the domain's spill chain on disk, in the deferred heap (waiting for a
 * retry), or on a connection (rendering / in the SMTP transaction).
 * Control: sched_kick() schedules one dispatch pass per loop turn; the pass
 * opens connections and hands items to idle ones; a connection finishing a
 * message takes the next one of its domain directly.
 */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "classify.h"
#include "config.h"
#include "conn.h"
#include "csv_reader.h"
#include "dns.h"
#include "journal.h"
#include "log.h"
#include "message.h"
#include "results.h"
#include "suppress.h"
#include "token.h"
#include "throttle.h"
#include "tls.h"

/* Items of one domain kept in memory before spilling: enough to keep its
 * connections busy between refills. */
#define DOM_MEM_CAP 256
/* Items in memory over all domains (~300 bytes each: ~6 MB). */
#define MEM_ITEMS_CAP 20000
/* Deferred items in memory (the retry heap); more wait in the spill file
 * (the cold chain), so a list that is deferred wholesale (greylisting, a
 * receiver throttling everyone) does not grow memory with the list.
 * EDM_TEST_DEFER_MEM_CAP overrides it (tests). */
#define DEFER_MEM_CAP 20000
/* The cold chain is read back when its earliest retry is due (or the heap
 * has room), at most once per this many seconds: each pass reads it all. */
#define COLD_SCAN_EVERY_S 10
/* A connection holds at most three messages: the one its session works
 * on and, when the server offers PIPELINING, one staged behind that one's
 * final dot and one rendered ahead to be staged behind the next dot. Only
 * the first can be past its dot without a reply, so a crash still repeats
 * at most one message per connection. */
#define CONN_MSGS 3
#define MAX_TARGETS 32

/* ---- items ---- */

struct item {
	struct item *next;
	struct sdom *dom;
	size_t row;
	unsigned attempts;
	time_t first_attempt, queued_at, next_retry;
	uint32_t nfields, bloblen;
	size_t heap_idx;
	char blob[];          /* email NUL field0 NUL field1 NUL ... */
};

/* ---- shapes ---- */

struct shape_src {
	unsigned conns;
	struct tbucket rate, connect;
	struct tdaily daily;
	struct twindow win;
};

/* A daily_limit count of an earlier run today (OUT_DIR/daily). */
struct daily_saved {
	char key[128];
	unsigned src;
	uint64_t count;
};

struct shape {
	char name[128];
	unsigned connections, mpc;
	double rate, burst, connect_rate;
	unsigned daily;
	struct shape_src *src;     /* one per source IP */
	struct shape *next;        /* all shapes (for freeing) */
	struct shape *hnext;       /* hash chain by name */
};

#define SHAPE_BUCKETS 4096

/* ---- targets (hosts) ---- */

struct target {
	char host[256];
	struct sockaddr_storage addr;
	int tls;                   /* enum smtp_tls_mode */
	uint64_t dead_until;
	uint64_t plain_until;      /* opportunistic TLS failed: plaintext
	                              until then (ms) */
	int no_stage;              /* refused a MAIL behind the dot (503) */
};

enum route_state { ROUTE_NONE = 0, ROUTE_PENDING, ROUTE_OK };

/* ---- domains ---- */

struct sdom {
	char *name;
	struct shape *shape, *provider;
	struct item *head, *tail;
	size_t nmem;
	off_t spill_head, spill_tail;
	size_t nspill;
	size_t remaining;          /* mem + spill + deferred + on connections */
	size_t busy;               /* items on connections */
	unsigned nconns, nconnecting;
	struct sconn *idle;
	enum route_state route;
	struct target *targets;    /* relay mode: points at the shared ones */
	size_t ntargets;
	int own_targets;
	uint64_t backoff_until;    /* route failure backoff (ms) */
	unsigned route_failures;
	time_t fail_since;
	int last_cat;
	char last_err[512];
	int paused;
	uint64_t wake_at;
	int in_runnable;
	struct sdom *hnext;        /* hash chain */
	struct sdom *rnext;        /* runnable list */
};

/* SC_PARKED: relay mode, its domain has nothing ready; the next dispatch
 * pass hands it to a domain that needs a connection, or QUITs it. */
enum sc_state { SC_CONNECTING = 0, SC_IDLE, SC_RENDERING, SC_BUSY, SC_QUITTING, SC_PARKED };

/* One message of a connection: rendered on the thread pool, then submitted
 * (at READY, or staged behind the previous one's dot). */
enum smsg_state { MSG_FREE = 0, MSG_RENDERING, MSG_READY, MSG_SUBMITTED };

struct smsg {
	struct sconn *sc;
	enum smsg_state st;
	int staged;                /* submitted behind the previous dot */
	struct item *item;
	uv_work_t work;
	struct buf msg;
	int render_rc;
	char render_err[256];
	char msgid[300];
	char mail_from[600];       /* VERP: this recipient's envelope sender */
};

struct sconn {
	struct sched *s;
	struct conn *c;
	struct sdom *d;
	unsigned src;
	size_t target;
	enum sc_state st;
	unsigned sent;             /* messages assigned (messages_per_connection) */
	struct smsg m[CONN_MSGS];
	struct smsg *q[CONN_MSGS]; /* the messages in use, oldest first: those
	                              submitted (the session's transaction and
	                              at most one staged behind its dot), then
	                              at most one rendering or rendered */
	unsigned nq;
	int body_sent;             /* the newest submitted one's body is out: the
	                              next may be staged behind its dot */
	struct sconn *next_idle;
	int closed;                /* conn gone while a render ran, or while
	                              conn_submit() or conn_release() ran
	                              (in_call) */
	int in_call;               /* inside conn_submit() or conn_release()
	                              (both may write): cb_closed must not
	                              free */
	uint64_t started_ms;
	struct sconn *all_prev, *all_next; /* every open connection */
};

struct scratch_slot {
	struct message_scratch sc;
	struct scratch_slot *next;
};

struct sched {
	struct sched_opts o;
	const struct config_smtp *smtp;
	uv_loop_t *loop;
	uv_timer_t timer;          /* earliest wake-up */
	uv_idle_t kick;            /* one dispatch pass per loop turn */
	uv_timer_t grace;
	int kicked, stopping, input_done, ended, closed_handles;
	struct sdom **htab;
	size_t hcap, ndoms;
	struct sdom *runnable;
	struct shape *shapes;
	struct shape *shape_hash[SHAPE_BUCKETS];
	size_t nsrc;
	struct item **heap;
	size_t nheap, heapcap;
	size_t mem_items;
	struct sconn *all_conns;   /* every open connection (for the grace end) */
	struct sconn *parked;      /* relay mode: idle, domain-less (next_idle) */
	struct daily_saved *daily_saved; /* today's counts of an earlier run */
	size_t ndaily_saved;
	time_t daily_reset;        /* --no-wait end: when a daily cap resets */
	int spill_fd;
	size_t defer_mem_cap;      /* DEFER_MEM_CAP unless a test says */
	off_t cold_head, cold_tail;/* deferred items on disk (-1: none) */
	size_t ncold;
	time_t cold_min;           /* their earliest next_retry */
	time_t cold_scanned;       /* last pass over the chain */
	off_t spill_end;           /* logical end: spill_wbase + spill_wlen */
	char *spill_w;             /* write-behind buffer (SPILL_BUF) */
	size_t spill_wlen;
	off_t spill_wbase;         /* file offset of spill_w[0] = flushed size */
	char *spill_r;             /* read-ahead cache (SPILL_BUF) */
	size_t spill_rlen;
	off_t spill_rbase;
	struct target *relay_targets;
	size_t nrelay_targets;
	unsigned conns;            /* open or connecting, all domains */
	struct tbucket global_rate;
	struct twindow_policy winpol; /* from [smtp] backoff_*, set once */
	unsigned src_rr;
	pthread_mutex_t scratch_lock;
	struct scratch_slot *scratch_free;
	/* bounce-rate window: ring of the last N finals, 1 = hard bounce */
	unsigned char *ring;
	size_t ring_n, ring_pos, ring_fill, ring_hard;
	struct sched_stats st;
	struct buf line;
	size_t sent_test;
};

static void sched_kick(struct sched *s);
static void dispatch(struct sched *s);
static void conn_next(struct sched *s, struct sconn *sc);
static void maybe_end(struct sched *s);

static uint64_t now_ms(struct sched *s)
{
	uv_update_time(s->loop);
	return uv_now(s->loop);
}

/* Wall-clock ms since the epoch: daily caps count UTC days (uv_now is a
 * monotonic clock with an arbitrary origin). */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* r in [0, 1) for the retry jitter (throttle_retry_delay). */
static double jitter_r(void)
{
	return (double)rand() / ((double)RAND_MAX + 1);
}

/* ---- shapes: shipped defaults and [domain] sections ---- */

/*
 * Shipped limits for the big receivers (docs/config.md has the table and
 * the sources: KumoMTA's shaping defaults, the receivers' published rules,
 * NetEase's HL:ICC / MI:DMC codes). -1 / CFG_UNSET = inherit from "*".
 */
struct shipped_shape {
	const char *patterns;
	unsigned connections, mpc;
	double rate;
};
static const struct shipped_shape shipped[] = {
	/* KumoMTA's default for any destination: 10 connections, 100
	 * messages per connection, 100 msg/s. */
	{ "*", 10, 100, 100 },
	{ "gmail.com googlemail.com", 5, 50, 20 },
	{ "outlook.com hotmail.com live.com msn.com", 5, 50, 20 },
	{ "yahoo.com ymail.com aol.com", 5, 20, 10 },
	{ "icloud.com me.com mac.com", 10, 5, 10 },
	/* QQ publishes no numbers and blocks per IP for minutes to a day:
	 * start low. */
	{ "qq.com foxmail.com vip.qq.com", 2, 20, 2 },
	/* NetEase: HL:ICC (concurrency), MI:DMC (messages per connection). */
	{ "163.com 126.com yeah.net", 2, 10, 2 },
};

/* 3 = exact, 2+len = *.suffix, 1 = "*"; 0 = no match. */
static size_t pattern_score(const char *pat, const char *domain)
{
	size_t pl, dl;

	if (strcmp(pat, "*") == 0)
		return 1;
	if (pat[0] == '*' && pat[1] == '.') {
		pl = strlen(pat + 1);
		dl = strlen(domain);
		if (dl > pl && strcasecmp(domain + dl - pl, pat + 1) == 0)
			return 2 + pl;
		return 0;
	}
	return strcasecmp(pat, domain) == 0 ? 100000 : 0;
}

static size_t words_score(const char *words, const char *domain)
{
	char buf[256];
	size_t best = 0;

	while (*words) {
		size_t n = strcspn(words, " ");
		if (n > 0 && n < sizeof(buf)) {
			memcpy(buf, words, n);
			buf[n] = '\0';
			size_t sc = pattern_score(buf, domain);
			if (sc > best)
				best = sc;
		}
		words += n;
		while (*words == ' ')
			words++;
	}
	return best;
}

static uint64_t hash_str(const char *p);

static struct shape *shape_get(struct sched *s, const char *key)
{
	for (struct shape *sh = s->shape_hash[hash_str(key) % SHAPE_BUCKETS]; sh; sh = sh->hnext)
		if (strcmp(sh->name, key) == 0)
			return sh;
	return NULL;
}

/* Make a shape with its per-source counters. */
static struct shape *shape_make(struct sched *s, const char *key, unsigned conns,
                                unsigned mpc, double rate, double burst,
                                double connect_rate, unsigned daily)
{
	struct shape *sh = calloc(1, sizeof(*sh));
	uint64_t now = now_ms(s);

	if (sh == NULL || (sh->src = calloc(s->nsrc, sizeof(*sh->src))) == NULL) {
		free(sh);
		return NULL;
	}
	snprintf(sh->name, sizeof(sh->name), "%s", key);
	sh->connections = conns;
	sh->mpc = mpc;
	sh->rate = rate;
	sh->burst = burst;
	sh->connect_rate = connect_rate;
	sh->daily = daily;
	for (size_t i = 0; i < s->nsrc; i++) {
		tbucket_init(&sh->src[i].rate, rate, burst, now);
		/* a burst of one connection per allowed connection, so a
		 * campaign starts with its full width at once */
		tbucket_init(&sh->src[i].connect, connect_rate,
		             conns > connect_rate ? conns : 0, now);
		sh->src[i].daily.limit = daily;
		twindow_init(&sh->src[i].win);
	}
	for (size_t i = 0; daily && i < s->ndaily_saved; i++) {
		const struct daily_saved *ds = &s->daily_saved[i];
		if (ds->src < s->nsrc && strcmp(ds->key, sh->name) == 0) {
			sh->src[ds->src].daily.day = (int64_t)(wall_ms() / 86400000);
			sh->src[ds->src].daily.count = ds->count;
		}
	}
	sh->next = s->shapes;
	s->shapes = sh;
	sh->hnext = s->shape_hash[hash_str(sh->name) % SHAPE_BUCKETS];
	s->shape_hash[hash_str(sh->name) % SHAPE_BUCKETS] = sh;
	return sh;
}

/*
 * OUT_DIR/daily: the daily_limit counts of today, so a run stopped with
 * --no-wait (or by a signal) and started again the same UTC day does not
 * get a fresh allowance. One line per shape and source IP with a count:
 * "<utc-day> <source-index> <count> <shape key>". Read at start (lines of
 * other days are ignored), rewritten (temp file + rename) at sched_free.
 * A kill -9 loses the counts of that run: the cap may then be exceeded by
 * what that run sent.
 */
static void daily_load(struct sched *s)
{
	FILE *f;
	char line[256];
	long long today = (long long)(wall_ms() / 86400000);

	if (s->o.daily_path == NULL || (f = fopen(s->o.daily_path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		long long day;
		unsigned src;
		unsigned long long count;
		int off = 0;
		struct daily_saved *ds;
		size_t kl;

		if (sscanf(line, "%lld %u %llu %n", &day, &src, &count, &off) != 3 ||
		    off == 0 || day != today)
			continue;
		kl = strcspn(line + off, "\n");
		if (kl == 0 || kl >= sizeof(ds->key))
			continue;
		ds = realloc(s->daily_saved, (s->ndaily_saved + 1) * sizeof(*ds));
		if (ds == NULL)
			break;
		s->daily_saved = ds;
		ds += s->ndaily_saved++;
		memcpy(ds->key, line + off, kl);
		ds->key[kl] = '\0';
		ds->src = src;
		ds->count = count;
	}
	fclose(f);
}

static void daily_save(struct sched *s)
{
	char tmp[4200];
	FILE *f;
	int64_t today = (int64_t)(wall_ms() / 86400000);
	int any = 0;

	if (s->o.daily_path == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->o.daily_path);
	if ((f = fopen(tmp, "w")) == NULL)
		goto fail;
	for (struct shape *sh = s->shapes; sh; sh = sh->next)
		for (size_t i = 0; sh->daily && i < s->nsrc; i++)
			if (sh->src[i].daily.day == today && sh->src[i].daily.count > 0) {
				fprintf(f, "%lld %zu %llu %s\n", (long long)today, i,
				        (unsigned long long)sh->src[i].daily.count, sh->name);
				any = 1;
			}
	if (fclose(f) != 0)
		goto fail;
	if (!any) {
		unlink(tmp);
		unlink(s->o.daily_path);
		return;
	}
	if (rename(tmp, s->o.daily_path) == 0)
		return;
fail:
	log_kv(EDM_LOG_WARN, "daily-save", "path=%s error=\"%s\"", s->o.daily_path,
	       strerror(errno));
}

/* ms until the domain may send on source IP src as far as its daily caps
 * go (its own and its provider's); 0 = now. */
static uint64_t daily_wait_ms(const struct sdom *d, size_t src, uint64_t wall)
{
	uint64_t w = tdaily_wait_ms(&d->shape->src[src].daily, wall);

	if (d->provider) {
		uint64_t pw = tdaily_wait_ms(&d->provider->src[src].daily, wall);
		if (pw > w)
			w = pw;
	}
	return w;
}

/* 0 when the domain may still send today on some source IP; else the
 * wall-clock ms when its daily caps (its own and its provider's) reset. */
static uint64_t daily_capped_until(const struct sched *s, const struct sdom *d)
{
	uint64_t wall = wall_ms(), first = UINT64_MAX;

	for (size_t i = 0; i < s->nsrc; i++) {
		uint64_t w = daily_wait_ms(d, i, wall);
		if (w == 0)
			return 0;
		if (wall + w < first)
			first = wall + w;
	}
	return first;
}

/* The shape of a recipient domain: the best [domain] section, filled in
 * from the shipped entry and the "*" defaults. */
static struct shape *shape_for(struct sched *s, const char *domain)
{
	const struct config *cfg = s->o.cfg;
	const struct config_shape *user = NULL, *ustar = NULL;
	const struct shipped_shape *ship = &shipped[0];
	size_t ubest = 0, sbest = 1;
	char key[200];

	for (size_t i = 0; i < cfg->ndomains; i++) {
		const struct config_shape *c = &cfg->domains[i];
		for (size_t j = 0; j < c->npatterns; j++) {
			size_t sc = pattern_score(c->patterns[j], domain);
			if (sc == 1)
				ustar = c;
			if (sc > ubest) {
				ubest = sc;
				user = c;
			}
		}
	}
	for (size_t i = 1; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		size_t sc = words_score(shipped[i].patterns, domain);
		if (sc > sbest) {
			sbest = sc;
			ship = &shipped[i];
		}
	}
	/* The more specific of user and shipped names the shape. A section
	 * that lists domains by name is one budget for all of them ([domain
	 * gmail.com googlemail.com]); a wildcard (*, *.edu) gives each
	 * domain it matches its own budget with those limits, as KumoMTA's
	 * and PowerMTA's per-destination defaults do. */
	int by_name = (user != NULL && ubest >= sbest) ? ubest == 100000 : sbest == 100000;
	if (user != NULL && ubest >= sbest)
		snprintf(key, sizeof(key), "domain:%.60s", user->name);
	else
		snprintf(key, sizeof(key), "shipped:%.60s", ship->patterns);
	if (!by_name) {
		size_t kl = strlen(key);
		snprintf(key + kl, sizeof(key) - kl, "@%.80s", domain);
	}
	struct shape *sh = shape_get(s, key);
	if (sh != NULL)
		return sh;

	const struct config_shape *u = (user != NULL && ubest >= sbest) ? user : NULL;
	unsigned conns = ship->connections, mpc = ship->mpc, daily = 0;
	double rate = ship->rate, burst = 0, crate = 100.0 / 60;
	/* a user "*" section overrides the shipped "*" only */
	if (ship == &shipped[0] && ustar != NULL) {
		if (ustar->connections != CFG_UNSET) conns = ustar->connections;
		if (ustar->messages_per_connection != CFG_UNSET) mpc = ustar->messages_per_connection;
		if (ustar->daily_limit != CFG_UNSET) daily = ustar->daily_limit;
		if (ustar->rate >= 0) rate = ustar->rate;
		if (ustar->burst >= 0) burst = ustar->burst;
		if (ustar->connect_rate >= 0) crate = ustar->connect_rate;
	}
	if (u != NULL) {
		if (u->connections != CFG_UNSET) conns = u->connections;
		if (u->messages_per_connection != CFG_UNSET) mpc = u->messages_per_connection;
		if (u->daily_limit != CFG_UNSET) daily = u->daily_limit;
		if (u->rate >= 0) rate = u->rate;
		if (u->burst >= 0) burst = u->burst;
		if (u->connect_rate >= 0) crate = u->connect_rate;
	}
	return shape_make(s, key, conns, mpc, rate, burst, crate, daily);
}

/* [provider] whose mx patterns match the domain's first MX host. */
static struct shape *provider_for(struct sched *s, const char *mxhost)
{
	const struct config *cfg = s->o.cfg;

	for (size_t i = 0; i < cfg->nproviders; i++) {
		const struct config_shape *p = &cfg->providers[i];
		for (size_t j = 0; j < p->npatterns; j++)
			if (pattern_score(p->patterns[j], mxhost) > 1 ||
			    strcmp(p->patterns[j], "*") == 0) {
				char key[160];
				snprintf(key, sizeof(key), "provider:%s", p->name);
				struct shape *sh = shape_get(s, key);
				if (sh != NULL)
					return sh;
				sh = shape_make(s, key,
				                p->connections != CFG_UNSET ? p->connections : 10000,
				                p->messages_per_connection != CFG_UNSET ? p->messages_per_connection : 1000000,
				                p->rate >= 0 ? p->rate : 0, p->burst >= 0 ? p->burst : 0,
				                p->connect_rate >= 0 ? p->connect_rate : 0,
				                p->daily_limit != CFG_UNSET ? p->daily_limit : 0);
				/* without a connections cap, the connect bucket starts
				 * with one second's worth, not 10000 */
				if (sh != NULL && p->connections == CFG_UNSET && p->connect_rate > 0)
					for (size_t k = 0; k < s->nsrc; k++)
						tbucket_init(&sh->src[k].connect, p->connect_rate, 0,
						             now_ms(s));
				return sh;
			}
	}
	return NULL;
}

/* ---- domains ---- */

static uint64_t hash_str(const char *p)
{
	uint64_t h = 1469598103934665603ull;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static struct sdom *dom_get(struct sched *s, const char *name)
{
	uint64_t h = hash_str(name);
	struct sdom *d;

	for (d = s->htab[h & (s->hcap - 1)]; d; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	if (s->ndoms * 2 >= s->hcap) {
		size_t cap = s->hcap * 2;
		struct sdom **t = calloc(cap, sizeof(*t));
		if (t == NULL)
			return NULL;
		for (size_t i = 0; i < s->hcap; i++)
			for (struct sdom *x = s->htab[i], *nx; x; x = nx) {
				nx = x->hnext;
				size_t k = hash_str(x->name) & (cap - 1);
				x->hnext = t[k];
				t[k] = x;
			}
		free(s->htab);
		s->htab = t;
		s->hcap = cap;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->name = strdup(name)) == NULL) {
		free(d);
		return NULL;
	}
	d->spill_head = d->spill_tail = -1;
	d->shape = shape_for(s, name);
	if (d->shape == NULL) {
		free(d->name);
		free(d);
		return NULL;
	}
	if (s->o.cfg->smtp.mode == CFG_MODE_RELAY || s->o.dry_run) {
		d->targets = s->relay_targets;
		d->ntargets = s->nrelay_targets;
		d->route = ROUTE_OK;
	}
	size_t k = h & (s->hcap - 1);
	d->hnext = s->htab[k];
	s->htab[k] = d;
	s->ndoms++;
	return d;
}

static void runnable_add(struct sched *s, struct sdom *d)
{
	if (d->in_runnable)
		return;
	d->in_runnable = 1;
	d->rnext = s->runnable;
	s->runnable = d;
}

/* ---- spill ---- */

/* One record of the spill file: a domain's spilled row or a cold deferred
 * one (the same format; each chain links its records by 'next'). */
struct spill_hdr {
	int64_t next;
	uint64_t row, dom;         /* dom: the struct sdom (lives as long) */
	uint32_t attempts, nfields, bloblen, pad;
	int64_t first_attempt, queued_at, next_retry;
};

/*
 * The spill file is written through a write-behind buffer and read through
 * a read-ahead cache, both SPILL_BUF bytes, so a spilled row costs a
 * fraction of a system call instead of five: records are appended in file
 * order, a domain's previous record (the link to patch) is nearly always
 * still in the write buffer, and a domain's records lie a few KB apart, so
 * one read-ahead serves many. A record never straddles the flushed end: it
 * is either wholly in the buffer or wholly in the file.
 */
#define SPILL_BUF 65536

static int spill_flush(struct sched *s)
{
	if (s->spill_wlen == 0)
		return 0;
	if (pwrite(s->spill_fd, s->spill_w, s->spill_wlen, s->spill_wbase) !=
	    (ssize_t)s->spill_wlen)
		return -1;
	s->spill_wbase += (off_t)s->spill_wlen;
	s->spill_wlen = 0;
	return 0;
}

/* Append one record (header then blob) at spill_end. */
static int spill_append(struct sched *s, const void *h, size_t hn,
                        const void *blob, size_t bn)
{
	if (s->spill_wlen + hn + bn > SPILL_BUF && spill_flush(s) < 0)
		return -1;
	if (hn + bn > SPILL_BUF) { /* a huge row: straight to the file */
		if (pwrite(s->spill_fd, h, hn, s->spill_wbase) != (ssize_t)hn ||
		    pwrite(s->spill_fd, blob, bn, s->spill_wbase + (off_t)hn) != (ssize_t)bn)
			return -1;
		s->spill_wbase += (off_t)(hn + bn);
	} else {
		memcpy(s->spill_w + s->spill_wlen, h, hn);
		memcpy(s->spill_w + s->spill_wlen + hn, blob, bn);
		s->spill_wlen += hn + bn;
	}
	s->spill_end = s->spill_wbase + (off_t)s->spill_wlen;
	return 0;
}

/* Overwrite n bytes at off (a link field), wherever they are now. */
static int spill_patch(struct sched *s, off_t off, const void *p, size_t n)
{
	if (off >= s->spill_wbase) {
		memcpy(s->spill_w + (off - s->spill_wbase), p, n);
		return 0;
	}
	if (pwrite(s->spill_fd, p, n, off) != (ssize_t)n)
		return -1;
	if (off >= s->spill_rbase && off + (off_t)n <= s->spill_rbase + (off_t)s->spill_rlen)
		memcpy(s->spill_r + (off - s->spill_rbase), p, n);
	return 0;
}

/* Read n bytes at off from the buffer, the cache or the file. */
static int spill_read(struct sched *s, off_t off, void *p, size_t n)
{
	ssize_t got;

	if (off >= s->spill_wbase) {
		memcpy(p, s->spill_w + (off - s->spill_wbase), n);
		return 0;
	}
	if (off >= s->spill_rbase && off + (off_t)n <= s->spill_rbase + (off_t)s->spill_rlen) {
		memcpy(p, s->spill_r + (off - s->spill_rbase), n);
		return 0;
	}
	if (n > SPILL_BUF)
		return pread(s->spill_fd, p, n, off) == (ssize_t)n ? 0 : -1;
	got = pread(s->spill_fd, s->spill_r,
	            (size_t)(s->spill_wbase - off) < SPILL_BUF ?
	            (size_t)(s->spill_wbase - off) : SPILL_BUF, off);
	if (got < (ssize_t)n) {
		s->spill_rlen = 0;
		return -1;
	}
	s->spill_rbase = off;
	s->spill_rlen = (size_t)got;
	memcpy(p, s->spill_r, n);
	return 0;
}

/* The spill file exists (created on first use, unlinked at once). */
static int spill_open(struct sched *s)
{
	if (s->spill_fd >= 0)
		return 0;
	s->spill_fd = open(s->o.spill_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->spill_fd < 0)
		return -1;
	unlink(s->o.spill_path); /* temporary: gone when we exit */
	s->spill_w = malloc(SPILL_BUF);
	s->spill_r = malloc(SPILL_BUF);
	if (s->spill_w == NULL || s->spill_r == NULL)
		return -1;
	return 0;
}

/* Append it to the chain *head..*tail (and free it). 0 or -1. */
static int spill_chain_put(struct sched *s, struct item *it, off_t *head, off_t *tail)
{
	struct spill_hdr h = { -1, it->row, (uint64_t)(uintptr_t)it->dom, it->attempts,
	                       it->nfields, it->bloblen, 0, it->first_attempt,
	                       it->queued_at, it->next_retry };
	off_t at;

	if (spill_open(s) < 0)
		return -1;
	at = s->spill_end;
	if (spill_append(s, &h, sizeof(h), it->blob, it->bloblen) < 0)
		return -1;
	if (*tail >= 0) {
		int64_t nx = at;
		if (spill_patch(s, *tail, &nx, sizeof(nx)) < 0)
			return -1;
	} else {
		*head = at;
	}
	*tail = at;
	free(it);
	return 0;
}

/* The item of the record at 'at' whose header h was read: NULL on error. */
static struct item *spill_item_load(struct sched *s, off_t at, const struct spill_hdr *h)
{
	struct item *it = calloc(1, sizeof(*it) + h->bloblen);

	if (it == NULL)
		return NULL;
	if (spill_read(s, at + (off_t)sizeof(*h), it->blob, h->bloblen) < 0) {
		free(it);
		return NULL;
	}
	it->dom = (struct sdom *)(uintptr_t)h->dom;
	it->row = h->row;
	it->attempts = h->attempts;
	it->nfields = h->nfields;
	it->bloblen = h->bloblen;
	it->first_attempt = h->first_attempt;
	it->queued_at = h->queued_at;
	it->next_retry = h->next_retry;
	return it;
}

static int spill_put(struct sched *s, struct sdom *d, struct item *it)
{
	if (spill_chain_put(s, it, &d->spill_head, &d->spill_tail) < 0)
		return -1;
	d->nspill++;
	return 0;
}

static struct item *spill_get(struct sched *s, struct sdom *d)
{
	struct spill_hdr h;
	struct item *it;

	if (d->nspill == 0)
		return NULL;
	if (spill_read(s, d->spill_head, &h, sizeof(h)) < 0 ||
	    (it = spill_item_load(s, d->spill_head, &h)) == NULL)
		return NULL;
	d->spill_head = h.next;
	if (--d->nspill == 0)
		d->spill_head = d->spill_tail = -1;
	return it;
}

/* ---- cold deferred items (spill file, one unsorted chain) ---- */

static int cold_put(struct sched *s, struct item *it)
{
	time_t retry = it->next_retry;

	if (spill_chain_put(s, it, &s->cold_head, &s->cold_tail) < 0)
		return -1;
	if (s->ncold == 0 || retry < s->cold_min)
		s->cold_min = retry;
	s->ncold++;
	return 0;
}

static int heap_push(struct sched *s, struct item *it);

/* A deferred item waits for its retry: in the heap, or on disk when the
 * heap holds defer_mem_cap already. 0 or -1 (out of memory, disk). */
static int defer_push(struct sched *s, struct item *it)
{
	if (s->nheap >= s->defer_mem_cap) {
		if (s->ncold == 0)
			log_kv(EDM_LOG_INFO, "deferred-spill", "in_memory=%zu reason=\"more "
			       "deferred recipients wait in the spill file\"", s->nheap);
		return cold_put(s, it);
	}
	return heap_push(s, it);
}

/* Read the cold chain: due items (and, while the heap has room, others)
 * join the heap and are unlinked from the chain in place (their records
 * become garbage in the file, which is unlinked and goes at exit); the
 * rest stay where they are, nothing is rewritten. 0 or -1. */
static int cold_scan(struct sched *s, time_t now)
{
	off_t prev = -1, at = s->cold_head;
	time_t min = 0;

	s->cold_scanned = now;
	while (at >= 0) {
		struct spill_hdr h;
		struct item *it;

		if (spill_read(s, at, &h, sizeof(h)) < 0)
			return -1;
		if (h.next_retry > now && s->nheap >= s->defer_mem_cap) {
			if (min == 0 || h.next_retry < min)
				min = h.next_retry;
			prev = at;
			at = h.next;
			continue;
		}
		if ((it = spill_item_load(s, at, &h)) == NULL)
			return -1;
		if (heap_push(s, it) < 0) {
			free(it);
			return -1;
		}
		/* unlink: the previous record (or the head) skips this one */
		if (prev < 0) {
			s->cold_head = h.next;
		} else {
			int64_t nx = h.next;
			if (spill_patch(s, prev, &nx, sizeof(nx)) < 0)
				return -1;
		}
		if (at == s->cold_tail)
			s->cold_tail = prev;
		s->ncold--;
		at = h.next;
	}
	s->cold_min = min;
	return 0;
}

/* When the cold chain should be read next (0: empty). */
static time_t cold_due(const struct sched *s)
{
	time_t at;

	if (s->ncold == 0)
		return 0;
	at = s->cold_min;
	if (s->nheap < s->defer_mem_cap / 2 && at > s->cold_scanned)
		at = s->cold_scanned; /* room in the heap: now */
	/* no more often than the shortest retry interval either */
	time_t every = COLD_SCAN_EVERY_S;
	if (s->smtp->retry_first / 1000 < (uint64_t)every)
		every = s->smtp->retry_first >= 1000 ? (time_t)(s->smtp->retry_first / 1000) : 1;
	if (at < s->cold_scanned + every)
		at = s->cold_scanned + every;
	return at;
}

/* ---- domain queue ---- */

static void q_push(struct sched *s, struct sdom *d, struct item *it)
{
	it->next = NULL;
	if (d->tail)
		d->tail->next = it;
	else
		d->head = it;
	d->tail = it;
	d->nmem++;
	s->mem_items++;
}

/* Next ready item of the domain (refilled from the spill chain). */
static struct item *q_pop(struct sched *s, struct sdom *d)
{
	struct item *it = d->head;

	if (it == NULL && d->nspill > 0) {
		while (d->nmem < DOM_MEM_CAP / 2 && d->nspill > 0) {
			struct item *x = spill_get(s, d);
			if (x == NULL)
				break;
			q_push(s, d, x);
		}
		it = d->head;
	}
	if (it == NULL)
		return NULL;
	d->head = it->next;
	if (d->head == NULL)
		d->tail = NULL;
	d->nmem--;
	s->mem_items--;
	return it;
}

static size_t ready_count(const struct sdom *d)
{
	return d->nmem + d->nspill;
}

/* ---- deferred heap (by next_retry) ---- */

static void heap_swap(struct sched *s, size_t a, size_t b)
{
	struct item *t = s->heap[a];
	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->heap_idx = a;
	s->heap[b]->heap_idx = b;
}

static int heap_push(struct sched *s, struct item *it)
{
	size_t i;

	if (s->nheap == s->heapcap) {
		size_t cap = s->heapcap ? s->heapcap * 2 : 256;
		struct item **h = realloc(s->heap, cap * sizeof(*h));
		if (h == NULL)
			return -1;
		s->heap = h;
		s->heapcap = cap;
	}
	i = s->nheap++;
	s->heap[i] = it;
	it->heap_idx = i;
	while (i > 0 && s->heap[(i - 1) / 2]->next_retry > s->heap[i]->next_retry) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct item *heap_pop(struct sched *s)
{
	struct item *top;
	size_t i = 0;

	if (s->nheap == 0)
		return NULL;
	top = s->heap[0];
	s->heap[0] = s->heap[--s->nheap];
	s->heap[0]->heap_idx = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->nheap && s->heap[l]->next_retry < s->heap[m]->next_retry)
			m = l;
		if (r < s->nheap && s->heap[r]->next_retry < s->heap[m]->next_retry)
			m = r;
		if (m == i)
			break;
		heap_swap(s, i, m);
		i = m;
	}
	return top;
}

/* ---- outcomes ---- */

static const char *item_email(const struct item *it)
{
	return it->blob;
}

/* The ring of the last finals for max_bounce_rate. */
static void bounce_window(struct sched *s, int hard)
{
	const struct config_smtp *m = s->smtp;

	if (s->ring == NULL || s->o.journal == NULL)
		return;
	if (s->ring_fill == s->ring_n)
		s->ring_hard -= s->ring[s->ring_pos];
	else
		s->ring_fill++;
	s->ring[s->ring_pos] = (unsigned char)hard;
	s->ring_hard += (size_t)hard;
	s->ring_pos = (s->ring_pos + 1) % s->ring_n;
	if (s->ring_fill >= m->bounce_rate_min && m->max_bounce_rate > 0 &&
	    (double)s->ring_hard / (double)s->ring_fill > m->max_bounce_rate &&
	    !s->stopping) {
		s->st.end = SCHED_END_BOUNCE_RATE;
		snprintf(s->st.end_detail, sizeof(s->st.end_detail),
		         "%zu of the last %zu recipients bounced hard (over "
		         "max_bounce_rate = %.0f%%): the campaign stopped to protect "
		         "your sender reputation. Clean the list (edm validate), or "
		         "raise [smtp] max_bounce_rate, then resume with the same command",
		         s->ring_hard, s->ring_fill, m->max_bounce_rate * 100);
		s->stopping = 1;
	}
}

struct outcome {
	const char *status;         /* delivered bounced expired skipped */
	int code;
	const char *enhanced, *category, *reply, *host, *src, *tls, *msgid;
};

/* Write a final outcome (journal + results.csv) and free the item. */
static void final(struct sched *s, struct item *it, const struct outcome *o)
{
	struct results_row r = { 0 };
	char err[256];

	r.time = time(NULL);
	r.email = item_email(it);
	r.status = o->status;
	r.code = o->code;
	r.enhanced = o->enhanced;
	r.category = o->category;
	r.reply = o->reply;
	r.attempts = it->attempts;
	r.host = o->host;
	r.source_ip = o->src;
	r.tls = o->tls;
	r.message_id = o->msgid;
	r.queued_at = it->queued_at;
	r.first_attempt_at = it->first_attempt;
	r.row = it->row;
	if (s->o.journal != NULL) {
		buf_reset(&s->line);
		if (results_format(&r, &s->line) < 0 ||
		    journal_final(s->o.journal, it->row, s->line.data, err, sizeof(err)) < 0) {
			s->st.end = SCHED_END_ERROR;
			snprintf(s->st.end_detail, sizeof(s->st.end_detail), "%s", err);
			s->stopping = 1;
		}
	} else if (s->o.test_to == NULL)
		log_kv(EDM_LOG_INFO, "outcome", "row=%zu status=%s code=%d", it->row,
		       o->status, o->code);
	/* hard bounces that say the address is dead are never mailed again,
	 * whoever decided them (an SMTP reply, or DNS for bad-domain) */
	if (strcmp(o->status, "bounced") == 0 && o->category != NULL &&
	    s->o.suppress_path != NULL && s->o.journal != NULL) {
		int cat = bounce_category_parse(o->category);
		if (cat >= 0 && bounce_category_suppresses((enum bounce_category)cat) &&
		    suppress_append(s->o.suppress_path, item_email(it), o->category,
		                    time(NULL), s->o.cfg->campaign.name, err, sizeof(err)) < 0)
			edm_warn("%s", err);
	}
	if (strcmp(o->status, "delivered") == 0) {
		s->st.delivered++;
		bounce_window(s, 0);
	} else if (strcmp(o->status, "bounced") == 0) {
		s->st.bounced++;
		bounce_window(s, 1);
	} else if (strcmp(o->status, "expired") == 0)
		s->st.expired++;
	else
		s->st.skipped++;
	it->dom->remaining--;
	free(it);
}

/* Soft failure: retry later, or expire past retry_for. */
static void defer(struct sched *s, struct item *it, const struct outcome *o,
                  int greylist)
{
	const struct config_smtp *m = s->smtp;
	time_t now = time(NULL);
	uint64_t delay = throttle_retry_delay(it->attempts ? it->attempts : 1,
	                                      m->retry_first, m->retry_max_interval,
	                                      0.2, jitter_r());
	char err[256];

	if (greylist && delay < 300000 && m->retry_first >= 300000)
		delay = 300000;
	if (it->first_attempt == 0)
		it->first_attempt = now;
	if (s->o.test_to != NULL) {
		struct outcome ex = *o;
		ex.status = "expired";
		final(s, it, &ex);
		return;
	}
	if ((uint64_t)(now - it->first_attempt) * 1000 + delay > m->retry_for) {
		struct outcome ex = *o;
		char why[700];
		snprintf(why, sizeof(why), "retries ran out after %u attempts; last: %s",
		         it->attempts, o->reply ? o->reply : "");
		ex.status = "expired";
		ex.category = "message-expired";
		ex.reply = why;
		final(s, it, &ex);
		return;
	}
	it->next_retry = now + (time_t)((delay + 999) / 1000);
	if (s->o.journal != NULL) {
		struct journal_deferral jd = { it->attempts, it->next_retry,
		                               it->first_attempt, it->queued_at };
		if (journal_defer(s->o.journal, it->row, &jd, err, sizeof(err)) < 0) {
			s->st.end = SCHED_END_ERROR;
			snprintf(s->st.end_detail, sizeof(s->st.end_detail), "%s", err);
			s->stopping = 1;
		}
	}
	log_kv(EDM_LOG_INFO, "deferred", "row=%zu domain=%s attempts=%u retry_in=%llus code=%d category=%s",
	       it->row, it->dom->name, it->attempts, (unsigned long long)((delay + 999) / 1000),
	       o->code, o->category ? o->category : "");
	if (defer_push(s, it) < 0) {
		s->st.end = SCHED_END_ERROR;
		snprintf(s->st.end_detail, sizeof(s->st.end_detail), "cannot keep a "
		         "deferred recipient (row %zu): out of memory or %s: %s", it->row,
		         s->o.spill_path, strerror(errno));
		s->stopping = 1;
		free(it);
	}
	sched_kick(s);
}

/* Sender-side trouble: stop the campaign (relay) or pause the domain. */
static void breaker(struct sched *s, struct sdom *d, const char *why)
{
	if (s->smtp->mode == CFG_MODE_RELAY || d == NULL) {
		if (!s->stopping || s->st.end == SCHED_END_DONE) {
			s->st.end = SCHED_END_CONFIG;
			snprintf(s->st.end_detail, sizeof(s->st.end_detail), "%s", why);
		}
		s->stopping = 1;
		log_kv(EDM_LOG_ERROR, "campaign-stopped", "reason=\"%s\"", why);
	} else if (!d->paused) {
		d->paused = 1;
		snprintf(d->last_err, sizeof(d->last_err), "%s", why);
		log_kv(EDM_LOG_WARN, "domain-paused", "domain=%s reason=\"%s\"", d->name, why);
		size_t n = strlen(s->st.paused);
		if (n + strlen(d->name) + 3 < sizeof(s->st.paused))
			snprintf(s->st.paused + n, sizeof(s->st.paused) - n, "%s%s",
			         n ? ", " : "", d->name);
	}
}

/* Relay mode, the sender's quota is spent: stop starting transactions and
 * end with SCHED_END_PAUSED (exit 75: resume later), nobody bounced. */
static void quota_stop(struct sched *s, const char *why)
{
	if (s->stopping)
		return;
	s->st.end = SCHED_END_PAUSED;
	snprintf(s->st.end_detail, sizeof(s->st.end_detail), "%.500s", why);
	s->stopping = 1;
	log_kv(EDM_LOG_ERROR, "campaign-paused", "reason=\"%s\"", why);
}

/* Put an item back at the front of its domain: nothing was decided. */
static void requeue(struct sched *s, struct item *it)
{
	struct sdom *d = it->dom;

	it->next = d->head;
	d->head = it;
	if (d->tail == NULL)
		d->tail = it;
	d->nmem++;
	s->mem_items++;
}

static int is_sender_side(int cat)
{
	return cat == CAT_INVALID_SENDER || cat == CAT_SENDER_AUTHENTICATION ||
	       cat == CAT_BAD_CONFIGURATION || cat == CAT_RELAYING_ISSUES;
}

static void msg_release(struct smsg *m)
{
	m->item = NULL;
	m->st = MSG_FREE;
}

/* A transaction's result for the message m on sc. */
static void on_result(struct sched *s, struct sconn *sc, struct smsg *m,
                      const struct smtp_rcpt_result *r)
{
	struct item *it = m->item;
	struct sdom *d = sc->d;
	struct outcome o = { 0 };
	struct classify_result cr;

	msg_release(m);
	d->busy--;
	s->st.attempts++;
	o.code = r->reply.code;
	o.enhanced = r->reply.enhanced;
	o.reply = r->reply.text;
	o.host = conn_peer(sc->c);
	o.src = s->smtp->nsource_ips ? s->smtp->source_ips[sc->src].ip : NULL;
	o.tls = conn_tls_desc(sc->c);
	o.msgid = m->msgid;
	if (r->accepted) {
		o.status = "delivered";
		final(s, it, &o);
		if (twindow_success(&d->shape->src[sc->src].win, &s->winpol)) {
			/* the rate follows the window back up, as it followed it
			 * down on the slow-down */
			struct shape_src *ss = &d->shape->src[sc->src];
			tbucket_set_rate(&ss->rate, d->shape->rate * ss->win.factor, now_ms(s));
			log_kv(EDM_LOG_INFO, "window", "shape=%s factor=%.3f change=grow",
			       d->shape->name, ss->win.factor);
		}
		return;
	}
	classify_reply(s->o.cls, r->reply.code, r->reply.enhanced, r->reply.text, &cr);
	o.category = bounce_category_name(cr.category);
	if (cr.slowdown) {
		struct shape_src *ss = &d->shape->src[sc->src];
		if (twindow_slowdown(&ss->win, &s->winpol, now_ms(s))) {
			tbucket_set_rate(&ss->rate, d->shape->rate * ss->win.factor, now_ms(s));
			log_kv(EDM_LOG_WARN, "window", "shape=%s factor=%.3f change=halve reply=\"%d %s\"",
			       d->shape->name, ss->win.factor, r->reply.code, r->reply.enhanced);
		}
	}
	if (is_sender_side((int)cr.category) && r->reply.stage != SMTP_STAGE_RCPT) {
		char why[600];
		snprintf(why, sizeof(why), "%s refused our %s: %d %s %s (category %s)",
		         conn_peer(sc->c), smtp_stage_name(r->reply.stage), r->reply.code,
		         r->reply.enhanced, r->reply.text, o.category);
		requeue(s, it);
		breaker(s, d, why);
		return;
	}
	if (cr.quota && s->smtp->mode == CFG_MODE_RELAY && cr.cls == BOUNCE_SOFT) {
		/* The relay account's own quota: every recipient would get the
		 * same answer, so stop before retrying the list through it. */
		char why[600];
		snprintf(why, sizeof(why), "the relay's sending quota is used up (%s answered "
		         "%d %s %s); run the same command again once it resets (NetEase: "
		         "15 minutes, Gmail/Workspace and most providers: the next day)",
		         conn_peer(sc->c), r->reply.code, r->reply.enhanced, r->reply.text);
		defer(s, it, &o, 0);
		quota_stop(s, why);
		return;
	}
	if (cr.cls == BOUNCE_HARD) {
		o.status = "bounced";
		final(s, it, &o);
		return;
	}
	if (cr.cls == BOUNCE_DELIVERED) {
		/* a rule said a non-2xx means delivered: trust it */
		o.status = "delivered";
		final(s, it, &o);
		return;
	}
	defer(s, it, &o, cr.greylist);
}

/* ---- rendering on the thread pool ---- */

static struct message_scratch *scratch_take(struct sched *s)
{
	struct scratch_slot *sl;

	pthread_mutex_lock(&s->scratch_lock);
	sl = s->scratch_free;
	if (sl != NULL)
		s->scratch_free = sl->next;
	pthread_mutex_unlock(&s->scratch_lock);
	if (sl == NULL)
		sl = calloc(1, sizeof(*sl));
	return sl ? &sl->sc : NULL;
}

static void scratch_give(struct sched *s, struct message_scratch *m)
{
	struct scratch_slot *sl = (struct scratch_slot *)m;

	pthread_mutex_lock(&s->scratch_lock);
	sl->next = s->scratch_free;
	s->scratch_free = sl;
	pthread_mutex_unlock(&s->scratch_lock);
}

/* Render one item into m->msg (worker thread: touches only m and the
 * read-only factory). */
static int render_item(struct sched *s, struct smsg *mm, struct item *it)
{
	const char *fields[256];
	size_t lens[256];
	struct csv_row row = { 0 };
	struct addr a;
	const char *p = it->blob + strlen(it->blob) + 1;
	struct message_scratch *m;
	char why[128];
	int rc;

	if (it->nfields > 256)
		return edm_errf(mm->render_err, sizeof(mm->render_err), "too many columns");
	for (uint32_t i = 0; i < it->nfields; i++) {
		fields[i] = p;
		lens[i] = strlen(p);
		p += lens[i] + 1;
	}
	row.row = it->row;
	row.nfields = it->nfields;
	row.fields = fields;
	row.lens = lens;
	if (addr_parse(it->blob, strlen(it->blob), &a, why, sizeof(why)) < 0)
		return edm_errf(mm->render_err, sizeof(mm->render_err), "%s", why);
	buf_reset(&mm->msg);
	m = scratch_take(s);
	if (m == NULL)
		return edm_errf(mm->render_err, sizeof(mm->render_err), "out of memory");
	rc = message_render(s->o.mf, &row, &a, time(NULL), m, &mm->msg,
	                    mm->render_err, sizeof(mm->render_err));
	/* the id message_render() computed (a render that failed early may
	 * not have one: compute it then) */
	if (rc == 0 && m->msgid[0] != '\0') {
		size_t l = strnlen(m->msgid, sizeof(mm->msgid) - 1);

		memcpy(mm->msgid, m->msgid, l);
		mm->msgid[l] = '\0';
	} else {
		message_id(s->o.mf, it->row, &a, mm->msgid, sizeof(mm->msgid));
	}
	scratch_give(s, m);
	return rc;
}

static void work_render(uv_work_t *w)
{
	struct smsg *m = w->data;

	m->render_rc = render_item(m->sc->s, m, m->item);
}

static void conn_free(struct sconn *sc)
{
	for (int i = 0; i < CONN_MSGS; i++)
		buf_free(&sc->m[i].msg);
	free(sc);
}

static void q_remove(struct sconn *sc, struct smsg *m)
{
	for (unsigned i = 0; i < sc->nq; i++)
		if (sc->q[i] == m) {
			memmove(&sc->q[i], &sc->q[i + 1], (sc->nq - i - 1) * sizeof(sc->q[0]));
			sc->nq--;
			return;
		}
}

/* The first message not yet handed to the session, or NULL. */
static struct smsg *q_unsent(const struct sconn *sc)
{
	for (unsigned i = 0; i < sc->nq; i++)
		if (sc->q[i]->st != MSG_SUBMITTED)
			return sc->q[i];
	return NULL;
}

static int any_rendering(const struct sconn *sc)
{
	for (int i = 0; i < CONN_MSGS; i++)
		if (sc->m[i].st == MSG_RENDERING)
			return 1;
	return 0;
}

/* After a call that may close the connection (conn_submit, conn_release:
 * cb_closed then only marks sc closed) or a render that found it closed:
 * 0, or -2 when it is closed, sc being freed unless a render still
 * points at it (touch nothing of sc then). */
static int sc_left(struct sconn *sc)
{
	if (!sc->closed)
		return 0;
	if (!any_rendering(sc))
		conn_free(sc);
	return -2;
}

/* Give a message that was not sent back to its domain's queue. */
static void msg_requeue(struct sched *s, struct sconn *sc, struct smsg *m)
{
	struct item *it = m->item;

	if (m->st == MSG_SUBMITTED)
		it->attempts--; /* no TXN_DONE: nothing was decided */
	msg_release(m);
	sc->d->busy--;
	/* not sent: it does not count against the connection or --limit */
	if (sc->sent > 0)
		sc->sent--;
	if (s->o.test_to && s->sent_test > 0)
		s->sent_test--;
	requeue(s, it);
	q_remove(sc, m);
}

/* Every message not handed to the session and not rendering goes back (a
 * render still running comes back through after_render or cb_closed). */
static void requeue_unsent(struct sched *s, struct sconn *sc)
{
	for (int i = 0; i < CONN_MSGS; i++)
		if (sc->m[i].st == MSG_READY)
			msg_requeue(s, sc, &sc->m[i]);
}

/* Hand the rendered message to the session: at READY, or staged behind
 * the dot of the one before. 0; -1 when the session did not take it
 * (nothing changed); -2 when the connection closed meanwhile (sc is gone:
 * touch nothing of it). */
static int msg_submit(struct sched *s, struct sconn *sc, struct smsg *m, int staged)
{
	struct item *it = m->item;
	const char *rcpt;
	struct smtp_txn t = { 0 };

	rcpt = s->o.test_to ? s->o.test_to : item_email(it);
	t.mail_from = s->o.mail_from;
	if (s->o.verp_key != NULL) {
		char tok[TOKEN_MAX];
		if (token_make_b32(s->o.verp_key, it->row, tok) == 0) {
			snprintf(m->mail_from, sizeof(m->mail_from), "%s%s%s",
			         s->o.verp_prefix, tok, s->o.verp_suffix);
			t.mail_from = m->mail_from;
		}
	}
	t.rcpts = &rcpt;
	t.nrcpts = 1;
	t.data = m->msg.data;
	t.len = m->msg.len;
	for (const unsigned char *p = (const unsigned char *)rcpt; *p; p++)
		if (*p >= 0x80)
			t.needs_smtputf8 = 1;
	/* Marked submitted first: conn_submit() may deliver events before it
	 * returns (a local refusal's TXN_DONE and READY: m and its item are
	 * then done with), or close the connection (a failed write: cb_closed
	 * runs, and frees sc once this call is over). */
	time_t first = it->first_attempt;
	int rc;

	m->staged = staged;
	m->st = MSG_SUBMITTED;
	if (it->first_attempt == 0)
		it->first_attempt = time(NULL);
	it->attempts++;
	sc->in_call++;
	rc = conn_submit(sc->c, &t);
	sc->in_call--;
	if (rc < 0 && m->st == MSG_SUBMITTED && m->item == it) {
		/* not taken (nothing happened): as it was */
		m->st = MSG_READY;
		m->staged = 0;
		it->attempts--;
		it->first_attempt = first;
	}
	if (sc_left(sc) < 0)
		return -2;
	return rc < 0 ? -1 : 0;
}

static void render_ahead(struct sched *s, struct sconn *sc);
static void unpark(struct sched *s, struct sconn *sc);
static struct item *pop_sendable(struct sched *s, struct sdom *d);

/* The session is READY and the oldest message is rendered: submit it, or
 * (stopping, paused) give it back and let the connection go. */
static void submit_cur(struct sched *s, struct sconn *sc)
{
	struct smsg *m = sc->q[0];
	int rc = -1;

	sc->st = SC_BUSY;
	if (!s->stopping && !sc->d->paused && (rc = msg_submit(s, sc, m, 0)) == -2)
		return;
	if (rc < 0) {
		requeue_unsent(s, sc);
		sched_kick(s);
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
		return;
	}
	render_ahead(s, sc);
}

/* The last body's dot is queued and a message may be staged behind it
 * now. (Stopping, paused: READY gives the next one back; a session that
 * went on to READY already: READY submits it.) */
static int may_stage(const struct sched *s, const struct sconn *sc)
{
	return sc->body_sent && sc->c != NULL && !s->stopping && !sc->d->paused &&
	       !sc->d->targets[sc->target].no_stage && conn_can_stage(sc->c);
}

/* Let a body held by cb_body_sent go (a no-op when none is held). 0, or
 * -2 when the write closed the connection (sc is gone). */
static int release_hold(struct sconn *sc)
{
	if (sc->c == NULL)
		return 0;
	sc->in_call++;
	conn_release(sc->c);
	sc->in_call--;
	return sc_left(sc);
}

/* Stage the message rendered ahead behind the last body's dot, when it
 * may go; then render the one after it; then let a held body go, with
 * the staged commands in the same write. 0, or -2 when the connection
 * closed meanwhile (sc is gone). */
static int stage_next(struct sched *s, struct sconn *sc)
{
	struct smsg *m = q_unsent(sc);

	if (m != NULL && m->st == MSG_READY && may_stage(s, sc)) {
		int rc = msg_submit(s, sc, m, 1);
		if (rc == -2)
			return -2;
		if (rc == 0) {
			sc->body_sent = 0;
			render_ahead(s, sc);
		}
	}
	return release_hold(sc);
}

/* The oldest message went away before it was submitted: if the session
 * waits at READY, go on with the next one or ask conn_next(). */
static void cur_gone(struct sched *s, struct sconn *sc)
{
	if (sc->st != SC_RENDERING)
		return;
	if (sc->nq == 0) {
		sc->st = SC_IDLE;
		conn_next(s, sc);
	} else if (sc->q[0]->st == MSG_READY) {
		submit_cur(s, sc);
	}
}

/* A render ended. A body held for it (cb_body_sent) goes now whatever came
 * of the render: with the message staged behind its dot when it could be
 * (stage_next), else alone. */
static void after_render(uv_work_t *w, int status)
{
	struct smsg *m = w->data;
	struct sconn *sc = m->sc;
	struct sched *s = sc->s;

	if (sc->closed || status < 0) {
		/* the connection died meanwhile: nothing was sent */
		msg_requeue(s, sc, m);
		if (sc_left(sc) == 0 && release_hold(sc) == 0)
			cur_gone(s, sc);
		sched_kick(s);
		return;
	}
	if (m->render_rc != 0) {
		struct outcome o = { .status = "skipped", .category = "template",
		                     .reply = m->render_err };
		struct item *it = m->item;

		msg_release(m);
		sc->d->busy--;
		q_remove(sc, m);
		final(s, it, &o);
		if (release_hold(sc) < 0)
			return;
		if (sc->st == SC_RENDERING)
			cur_gone(s, sc);
		else
			render_ahead(s, sc);
		return;
	}
	m->st = MSG_READY;
	if (m == sc->q[0] && sc->st == SC_RENDERING)
		submit_cur(s, sc);
	else
		stage_next(s, sc);
}

/* Start rendering it into a free slot of the connection, queued last; 0 or
 * -1 (the item is back in its queue). */
static int start_render(struct sched *s, struct sconn *sc, struct item *it)
{
	struct smsg *m = NULL;

	for (int i = 0; i < CONN_MSGS && m == NULL; i++)
		if (sc->m[i].st == MSG_FREE)
			m = &sc->m[i];
	if (m == NULL || sc->nq == CONN_MSGS) {
		requeue(s, it);
		return -1;
	}
	if (s->o.test_to)
		s->sent_test++;
	sc->d->busy++;
	sc->sent++;
	m->sc = sc;
	m->item = it;
	m->st = MSG_RENDERING;
	m->staged = 0;
	m->work.data = m;
	if (uv_queue_work(s->loop, &m->work, work_render, after_render) < 0) {
		msg_release(m);
		sc->d->busy--;
		requeue(s, it);
		return -1;
	}
	sc->q[sc->nq++] = m;
	return 0;
}

/* ---- connections ---- */

/* May this domain send one more message now (every bucket)? Takes the
 * tokens when yes; else sets *wait to the ms until it may. */
static int take_message_token(struct sched *s, struct sdom *d, unsigned src,
                              uint64_t now, uint64_t *wait)
{
	struct shape_src *ss = &d->shape->src[src];
	struct shape_src *ps = d->provider ? &d->provider->src[src] : NULL;
	uint64_t w = tbucket_wait_ms(&ss->rate, now), wall = 0;

	if (twindow_paused(&ss->win, now)) {
		uint64_t pw = ss->win.paused_until - now;
		if (pw > w)
			w = pw;
	}
	if (ps != NULL && tbucket_wait_ms(&ps->rate, now) > w)
		w = tbucket_wait_ms(&ps->rate, now);
	if (tbucket_wait_ms(&s->global_rate, now) > w)
		w = tbucket_wait_ms(&s->global_rate, now);
	if (ss->daily.limit || (ps != NULL && ps->daily.limit)) {
		uint64_t dw;
		wall = wall_ms();
		if ((dw = daily_wait_ms(d, src, wall)) > w)
			w = dw;
	}
	if (w > 0) {
		*wait = w;
		return 0;
	}
	tbucket_take(&ss->rate, now);
	if (ps != NULL) {
		tbucket_take(&ps->rate, now);
		if (ps->daily.limit)
			tdaily_take(&ps->daily, wall);
	}
	tbucket_take(&s->global_rate, now);
	if (ss->daily.limit)
		tdaily_take(&ss->daily, wall);
	return 1;
}

static void on_timer(uv_timer_t *t);

static void arm_timer(struct sched *s, uint64_t at)
{
	uint64_t now = now_ms(s);
	uint64_t in = at > now ? at - now : 0;

	if (uv_is_active((uv_handle_t *)&s->timer) &&
	    uv_timer_get_due_in(&s->timer) <= in)
		return;
	uv_timer_start(&s->timer, on_timer, in, 0);
}

/* The domain has nothing ready (or is paused): QUIT the connections parked
 * waiting for a token, or they would hold their slots (and keep edm from
 * ending) until the server drops them. */
static void quit_list(struct sconn **head)
{
	while (*head) {
		struct sconn *sc = *head;
		*head = sc->next_idle;
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
	}
}

static void quit_idle_domain(struct sdom *d)
{
	quit_list(&d->idle);
}

/* May the connection take one more message at all (not stopping, its
 * domain not paused, messages_per_connection and --limit not reached)? */
static int conn_may_take(const struct sched *s, const struct sconn *sc)
{
	const struct sdom *d = sc->d;

	return !s->stopping && !d->paused && sc->sent < d->shape->mpc &&
	       !(d->provider && sc->sent >= d->provider->mpc) &&
	       !(s->o.test_to && s->o.limit && s->sent_test >= s->o.limit);
}

/* Give the connection its next item, or let it go. */
static void conn_next(struct sched *s, struct sconn *sc)
{
	struct sdom *d = sc->d;
	uint64_t wait = 0, now;
	struct item *it;

	if (!conn_may_take(s, sc)) {
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
		return;
	}
	if (ready_count(d) == 0) {
		quit_idle_domain(d);
		if (s->smtp->mode == CFG_MODE_RELAY) {
			/* the relay takes any domain's mail: keep the session
			 * (TCP, TLS, AUTH) for a domain that needs one */
			sc->st = SC_PARKED;
			sc->next_idle = s->parked;
			s->parked = sc;
			sched_kick(s);
			return;
		}
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
		return;
	}
	now = now_ms(s);
	if (!take_message_token(s, d, sc->src, now, &wait)) {
		/* wait idle for the token (short waits only); one waiter per
		 * domain is enough: a second would only hold a connection slot
		 * other domains may need */
		if (wait > 2000 || d->idle != NULL) {
			sc->st = SC_QUITTING;
			conn_quit(sc->c);
		} else {
			sc->st = SC_IDLE;
			sc->next_idle = d->idle;
			d->idle = sc;
		}
		d->wake_at = now + wait;
		arm_timer(s, now + wait);
		return;
	}
	it = pop_sendable(s, d);
	if (it == NULL) {
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
		return;
	}
	sc->st = SC_RENDERING;
	if (start_render(s, sc, it) < 0) {
		sc->st = SC_QUITTING;
		conn_quit(sc->c);
	}
}

/* Pop the domain's next item that is not suppressed (those get their
 * final row here); NULL when none. */
static struct item *pop_sendable(struct sched *s, struct sdom *d)
{
	struct item *it = q_pop(s, d);

	while (it != NULL && s->o.is_suppressed != NULL &&
	       s->o.is_suppressed(s->o.arg, item_email(it))) {
		struct outcome o = {
			.status = "suppressed", .category = "suppressed",
			.reply = "suppressed while the campaign ran (unsubscribe, "
			         "complaint or bounce)",
		};
		final(s, it, &o);
		it = q_pop(s, d);
	}
	return it;
}

/* cur was just submitted: render the connection's next message now, so
 * that it can go behind cur's final dot (PIPELINING) instead of a round
 * trip later. Only what conn_next() would do at READY without waiting:
 * no token now, nothing ahead. */
static void render_ahead(struct sched *s, struct sconn *sc)
{
	struct sdom *d = sc->d;
	uint64_t wait;
	struct item *it;

	if (sc->nq == 0 || sc->nq >= CONN_MSGS || q_unsent(sc) != NULL ||
	    sc->c == NULL || !conn_open_session(sc->c) ||
	    !s->smtp->pipelining || !s->smtp->pipeline_messages ||
	    d->targets[sc->target].no_stage ||
	    !(conn_caps(sc->c) & SMTP_CAP_PIPELINING) ||
	    !conn_may_take(s, sc) || ready_count(d) == 0)
		return;
	if (!take_message_token(s, d, sc->src, now_ms(s), &wait))
		return;
	if ((it = pop_sendable(s, d)) == NULL)
		return;
	start_render(s, sc, it);
}

static void cb_ready(void *arg, struct conn *c)
{
	struct sconn *sc = conn_data(c);

	(void)arg;
	if (sc->st == SC_CONNECTING) {
		const char *why = conn_plaintext_why(c);
		sc->d->nconnecting--;
		sc->d->route_failures = 0;
		sc->d->fail_since = 0;
		if (why != NULL) /* a downgrade shows in the log, not only in results */
			log_kv(EDM_LOG_INFO, "tls-plaintext", "domain=%s host=\"%s\" reason=\"%s\"",
			       sc->d->name, conn_peer(c), why);
	}
	sc->body_sent = 0;
	if (sc->nq == 0) {
		sc->st = SC_IDLE;
		conn_next(sc->s, sc);
	} else if (sc->q[0]->st == MSG_READY) {
		submit_cur(sc->s, sc);
	} else {
		sc->st = SC_RENDERING; /* after_render submits it */
	}
}

static void cb_txn_done(void *arg, struct conn *c, const struct smtp_rcpt_result *r,
                        size_t n)
{
	struct sconn *sc = conn_data(c);
	struct smsg *m = sc->nq > 0 ? sc->q[0] : NULL;

	(void)arg;
	if (m == NULL || m->st != MSG_SUBMITTED)
		return;
	sc->body_sent = 0; /* that was this one's body */
	if (n == 0) {
		msg_requeue(sc->s, sc, m);
	} else if (m->staged && r[0].reply.stage == SMTP_STAGE_MAIL && r[0].reply.code == 503) {
		/* RFC 2920 3.1 lets message content begin a command group,
		 * but this server took the MAIL behind the dot for improper
		 * pipelining: no more of that to it; the recipient goes again
		 * (this was no attempt at delivering it) */
		struct target *t = &sc->d->targets[sc->target];
		if (!t->no_stage)
			log_kv(EDM_LOG_WARN, "pipeline-refused", "domain=%s host=\"%s\" reply=\"%d %s %s\"",
			       sc->d->name, conn_peer(c), r[0].reply.code, r[0].reply.enhanced,
			       r[0].reply.text);
		t->no_stage = 1;
		msg_requeue(sc->s, sc, m);
		sched_kick(sc->s);
		return;
	} else {
		q_remove(sc, m);
		on_result(sc->s, sc, m, &r[0]);
	}
	render_ahead(sc->s, sc);
}

static void cb_body_sent(void *arg, struct conn *c)
{
	struct sconn *sc = conn_data(c);
	struct smsg *m;

	(void)arg;
	sc->body_sent = 1;
	if (stage_next(sc->s, sc) < 0)
		return;
	/* The next message is still rendering (signing, most likely): hold
	 * this body until it is done and staged behind the dot, so the two
	 * leave in one write and the server answers both in one (one round
	 * trip and one wake-up per message on each side, not two). The
	 * connection would wait for that render anyway; after_render lets
	 * the body go whatever comes of it. */
	if (sc->body_sent && (m = q_unsent(sc)) != NULL && m->st == MSG_RENDERING &&
	    may_stage(sc->s, sc))
		conn_hold(c);
}

static void idle_remove(struct sdom *d, struct sconn *sc)
{
	for (struct sconn **p = &d->idle; *p; p = &(*p)->next_idle)
		if (*p == sc) {
			*p = sc->next_idle;
			return;
		}
}

/* Category of a connection that ended before or outside a transaction. */
static int conn_category(const struct conn_end_info *e, const struct classifier *cls,
                         int *sender_side)
{
	struct classify_result cr;

	*sender_side = 0;
	switch (e->end) {
	case CONN_END_REFUSED:
	case CONN_END_NETWORK:
		return CAT_BAD_CONNECTION;
	case CONN_END_CONNECT_TIMEOUT:
		return CAT_NO_ANSWER_FROM_HOST;
	case CONN_END_TLS:
		*sender_side = 1;
		return CAT_BAD_CONFIGURATION;
	case CONN_END_SESSION:
		break;
	}
	switch (e->close) {
	case SMTP_CLOSE_TIMEOUT:
		return CAT_NO_ANSWER_FROM_HOST;
	case SMTP_CLOSE_EOF:
		return CAT_BAD_CONNECTION;
	case SMTP_CLOSE_PROTOCOL:
		return CAT_PROTOCOL_ERRORS;
	case SMTP_CLOSE_NO_STARTTLS:
	case SMTP_CLOSE_TLS:
	case SMTP_CLOSE_AUTH:
		*sender_side = 1;
		return CAT_BAD_CONFIGURATION;
	case SMTP_CLOSE_REJECTED:
	case SMTP_CLOSE_421:
		classify_reply(cls, e->reply.code, e->reply.enhanced, e->reply.text, &cr);
		return (int)cr.category;
	case SMTP_CLOSE_QUIT:
		break;
	}
	return CAT_OTHER;
}

static void cb_closed(void *arg, struct conn *c, const struct conn_end_info *e)
{
	struct sconn *sc = conn_data(c);
	struct sched *s = sc->s;
	struct sdom *d = sc->d;
	int sender_side = 0, cat;

	(void)arg;
	if (sc->all_prev)
		sc->all_prev->all_next = sc->all_next;
	else
		s->all_conns = sc->all_next;
	if (sc->all_next)
		sc->all_next->all_prev = sc->all_prev;
	sc->all_prev = sc->all_next = NULL;
	s->conns--;
	d->nconns--;
	d->shape->src[sc->src].conns--;
	if (d->provider)
		d->provider->src[sc->src].conns--;
	if (sc->st == SC_CONNECTING)
		d->nconnecting--;
	if (sc->st == SC_IDLE)
		idle_remove(d, sc);
	if (sc->st == SC_PARKED)
		unpark(s, sc);
	if (!e->greeted && sc->st == SC_CONNECTING) {
		struct target *t = &d->targets[sc->target];
		cat = conn_category(e, s->o.cls, &sender_side);
		log_kv(EDM_LOG_WARN, "connect-failed", "domain=%s host=\"%s\" category=%s reason=\"%s\"",
		       d->name, conn_peer(c), bounce_category_name((enum bounce_category)cat),
		       e->text ? e->text : "");
		if (t->tls == SMTP_TLS_OPPORTUNISTIC && !sched_tls_verify(s->smtp) &&
		    (e->end == CONN_END_TLS || e->close == SMTP_CLOSE_TLS ||
		     e->reply.stage == SMTP_STAGE_TLS)) {
			/* RFC 7435 / Postfix's "may": TLS that was offered but
			 * fails is not worth a bounce; the host gets plaintext
			 * connections for a while (results say tls=none). Not
			 * with tls_verify = yes: that asked for authenticated
			 * TLS, and a fallback would be a downgrade. */
			uint64_t span = s->smtp->dead_host_for > 3600000 ? s->smtp->dead_host_for
			                                               : 3600000;
			t->plain_until = now_ms(s) + span;
			log_kv(EDM_LOG_WARN, "tls-fallback", "domain=%s host=\"%s\" reason=\"%s\" "
			       "plaintext_for_s=%llu", d->name, conn_peer(c), e->text ? e->text : "",
			       (unsigned long long)(span / 1000));
		} else if (sender_side && (e->close == SMTP_CLOSE_AUTH || t->tls == SMTP_TLS_STARTTLS ||
		                           t->tls == SMTP_TLS_IMPLICIT)) {
			char why[700];
			snprintf(why, sizeof(why), "%s: %s (category %s; check [smtp] tls, "
			         "username, password_env)", conn_peer(c),
			         e->text && *e->text ? e->text : smtp_close_name(e->close),
			         bounce_category_name((enum bounce_category)cat));
			breaker(s, d, why);
		} else if (e->close == SMTP_CLOSE_REJECTED && e->reply.code >= 500 &&
		           cat == CAT_SPAM_RELATED) {
			char why[700];
			snprintf(why, sizeof(why), "%s refused us at the greeting: %d %s",
			         conn_peer(c), e->reply.code, e->reply.text);
			breaker(s, d, why);
		} else {
			t->dead_until = now_ms(s) + s->smtp->dead_host_for;
			d->last_cat = cat;
			snprintf(d->last_err, sizeof(d->last_err), "%s",
			         e->text && *e->text ? e->text : "connection failed");
			/* every target dead: the domain backs off */
			size_t alive = 0;
			for (size_t i = 0; i < d->ntargets; i++)
				if (d->targets[i].dead_until <= now_ms(s))
					alive++;
			if (alive == 0) {
				d->route_failures++;
				if (d->fail_since == 0)
					d->fail_since = time(NULL);
				d->backoff_until = now_ms(s) +
					throttle_retry_delay(d->route_failures, s->smtp->retry_first,
					                     s->smtp->retry_max_interval, 0.2,
					                     jitter_r());
				if (s->smtp->dead_host_for > 0 && d->backoff_until < now_ms(s) + 1000)
					d->backoff_until = now_ms(s) + 1000;
				for (size_t i = 0; i < d->ntargets; i++)
					if (d->targets[i].dead_until > d->backoff_until)
						d->targets[i].dead_until = d->backoff_until;
			}
		}
	}
	/* messages not sent, or sent without an answer (no TXN_DONE):
	 * back to the queue; a render still running requeues its own and
	 * frees the connection */
	for (int i = 0; i < CONN_MSGS; i++)
		if (sc->m[i].st == MSG_READY || sc->m[i].st == MSG_SUBMITTED)
			msg_requeue(s, sc, &sc->m[i]);
	if (any_rendering(sc) || sc->in_call) {
		sc->closed = 1;
		sc->c = NULL;
	} else {
		conn_free(sc);
	}
	runnable_add(s, d);
	sched_kick(s);
}

static const struct conn_client_ops client_ops = {
	cb_ready, cb_txn_done, cb_closed, cb_body_sent,
};

/* Open one connection for the domain; 0 or -1. */
static int open_conn(struct sched *s, struct sdom *d, unsigned src, uint64_t now)
{
	const struct config_smtp *m = s->smtp;
	struct conn_target t = { 0 };
	struct sconn *sc;
	size_t ti = d->ntargets;

	for (size_t i = 0; i < d->ntargets; i++)
		if (d->targets[i].dead_until <= now) {
			ti = i;
			break;
		}
	if (ti == d->ntargets)
		return -1;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return -1;
	sc->s = s;
	sc->d = d;
	sc->src = src;
	sc->target = ti;
	sc->st = SC_CONNECTING;
	sc->started_ms = now;
	t.addr = (const struct sockaddr *)&d->targets[ti].addr;
	t.host = d->targets[ti].host;
	t.source_ip = m->nsource_ips ? m->source_ips[src].ip : NULL;
	t.tls = (enum smtp_tls_mode)d->targets[ti].tls;
	if (t.tls == SMTP_TLS_OPPORTUNISTIC && d->targets[ti].plain_until > now)
		t.tls = SMTP_TLS_NONE;
	t.tls_config = sched_tls_verify(m) ? s->o.tls_verify : s->o.tls_noverify;
	t.connect_timeout_ms = m->timeout_connect;
	t.session.helo = m->nsource_ips ? m->source_ips[src].helo : s->o.helo;
	t.session.username = m->username;
	t.session.password = s->o.password;
	t.session.allow_plaintext_auth = m->allow_plaintext_auth;
	t.session.no_pipelining = !m->pipelining;
	t.session.timeouts = (struct smtp_timeouts){ m->timeout_greeting, m->timeout_ehlo,
		m->timeout_starttls, m->timeout_auth, m->timeout_mail, m->timeout_rcpt,
		m->timeout_data, m->timeout_data_block, m->timeout_dot, m->timeout_rset,
		m->timeout_quit };
	sc->c = conn_open(s->loop, &t, &client_ops, s);
	if (sc->c == NULL) {
		conn_free(sc);
		return -1;
	}
	conn_set_data(sc->c, sc);
	sc->all_next = s->all_conns;
	if (s->all_conns)
		s->all_conns->all_prev = sc;
	s->all_conns = sc;
	s->conns++;
	d->nconns++;
	d->nconnecting++;
	d->shape->src[src].conns++;
	if (d->provider)
		d->provider->src[src].conns++;
	return 0;
}

/* ---- MX routes ---- */

struct route_req {
	struct sched *s;
	struct sdom *d;
};

static void fail_domain_items(struct sched *s, struct sdom *d, const char *status,
                              const char *category, const char *reply)
{
	struct item *it;
	struct outcome o = { .status = status, .category = category, .reply = reply };

	while ((it = q_pop(s, d)) != NULL)
		final(s, it, &o);
}

static void on_route(void *arg, const struct dns_route *r)
{
	struct route_req *rq = arg;
	struct sched *s = rq->s;
	struct sdom *d = rq->d;
	const struct config_smtp *m = s->smtp;
	size_t n = 0, hosts = 0;

	free(rq);
	d->route = ROUTE_NONE;
	if (r->status == DNS_ROUTE_NOMAIL) {
		char why[300];
		snprintf(why, sizeof(why), "%s cannot receive mail: %s", d->name, r->detail);
		fail_domain_items(s, d, "bounced", "bad-domain", why);
		d->route = ROUTE_OK; /* nothing to send; further items fail too */
		d->ntargets = 0;
		d->last_cat = CAT_BAD_DOMAIN;
		snprintf(d->last_err, sizeof(d->last_err), "%s", why);
		sched_kick(s);
		maybe_end(s);
		return;
	}
	if (r->status == DNS_ROUTE_OK) {
		d->targets = calloc(MAX_TARGETS, sizeof(*d->targets));
		d->own_targets = 1;
		for (size_t h = 0; d->targets && h < r->nhosts && hosts < m->max_mx_hosts; h++) {
			const struct dns_route_host *rh = &r->hosts[h];
			int used = 0;
			for (size_t a = 0; a < rh->naddrs && n < MAX_TARGETS; a++) {
				const struct sockaddr *sa = (const struct sockaddr *)&rh->addrs[a];
				if (!m->allow_private_mx && dns_addr_is_private(sa))
					continue;
				struct target *t = &d->targets[n++];
				snprintf(t->host, sizeof(t->host), "%s", rh->name);
				memcpy(&t->addr, &rh->addrs[a], sizeof(t->addr));
				if (sa->sa_family == AF_INET)
					((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)m->mx_port);
				else
					((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)m->mx_port);
				t->tls = (int)sched_tls_mode(m->tls);
				used = 1;
			}
			hosts += (size_t)used;
		}
		d->ntargets = n;
		if (n > 0) {
			d->route = ROUTE_OK;
			d->provider = provider_for(s, d->targets[0].host);
			runnable_add(s, d);
			sched_kick(s);
			return;
		}
		free(d->targets);
		d->targets = NULL;
		d->own_targets = 0;
		snprintf(d->last_err, sizeof(d->last_err), "the MX hosts of %s resolve only "
		         "to private or loopback addresses (set [smtp] allow_private_mx = yes "
		         "if that is intended)", d->name);
	} else
		snprintf(d->last_err, sizeof(d->last_err), "DNS lookup of %s failed: %s",
		         d->name, r->detail);
	/* temporary: back off and look again */
	d->last_cat = CAT_ROUTING_ERRORS;
	d->route_failures++;
	if (d->fail_since == 0)
		d->fail_since = time(NULL);
	d->backoff_until = now_ms(s) + throttle_retry_delay(d->route_failures, m->retry_first,
	                                                    m->retry_max_interval, 0.2, 0.5);
	log_kv(EDM_LOG_WARN, "route-failed", "domain=%s reason=\"%s\"", d->name, d->last_err);
	runnable_add(s, d);
	sched_kick(s);
}

/* ---- dispatch ---- */

struct prio {
	struct sdom *d;
	double key;
};

static int prio_cmp(const void *a, const void *b)
{
	const struct prio *x = a, *y = b;

	return x->key < y->key ? 1 : x->key > y->key ? -1 : 0;
}

/* Expire a failing domain's items once retry_for has run out. */
static void expire_domain(struct sched *s, struct sdom *d)
{
	char why[600];

	snprintf(why, sizeof(why), "retries ran out; last: %s", d->last_err);
	struct item *it;
	struct outcome o = { .status = "expired", .category = "message-expired", .reply = why };
	while ((it = q_pop(s, d)) != NULL) {
		if (it->first_attempt == 0)
			it->first_attempt = d->fail_since;
		final(s, it, &o);
	}
}

/* Messages d may send from src now by its rate buckets (domain, provider,
 * global), taking none: UINT_MAX when none binds. */
static unsigned message_tokens(const struct sched *s, const struct sdom *d,
                               unsigned src, uint64_t now)
{
	unsigned n = tbucket_whole(&d->shape->src[src].rate, now), k;

	if (d->provider && (k = tbucket_whole(&d->provider->src[src].rate, now)) < n)
		n = k;
	if ((k = tbucket_whole(&s->global_rate, now)) < n)
		n = k;
	return n;
}

static void unpark(struct sched *s, struct sconn *sc)
{
	for (struct sconn **p = &s->parked; *p; p = &(*p)->next_idle)
		if (*p == sc) {
			*p = sc->next_idle;
			return;
		}
}

/* Relay mode: give d a parked connection whose source IP d's limits allow
 * one more on (no new TCP/TLS/AUTH, no connect token: it is not a new
 * connection). 1 when one was handed over. */
static int adopt_parked(struct sched *s, struct sdom *d, uint64_t now)
{
	for (struct sconn *sc = s->parked; sc; sc = sc->next_idle) {
		unsigned src = sc->src;
		struct shape_src *ss = &d->shape->src[src];
		struct sdom *od = sc->d;

		/* (a move within one shape or provider changes no count) */
		if ((od->shape != d->shape &&
		     ss->conns >= twindow_scale(&ss->win, d->shape->connections)) ||
		    twindow_paused(&ss->win, now) ||
		    (d->provider && d->provider != od->provider &&
		     d->provider->src[src].conns >=
		     twindow_scale(&d->provider->src[src].win, d->provider->connections)))
			continue;
		/* only with a message token for it now: conn_next() would
		 * QUIT it otherwise, and a later domain may use it */
		if (message_tokens(s, d, src, now) == 0)
			continue;
		unpark(s, sc);
		od->nconns--;
		od->shape->src[src].conns--;
		if (od->provider)
			od->provider->src[src].conns--;
		d->nconns++;
		ss->conns++;
		if (d->provider)
			d->provider->src[src].conns++;
		sc->d = d;
		sc->st = SC_IDLE;
		runnable_add(s, od);
		conn_next(s, sc);
		return 1;
	}
	return 0;
}

static void quit_parked(struct sched *s)
{
	quit_list(&s->parked);
}

/* Connections that will take d's ready work without another one: those
 * connecting, and one for the idle ones (they wait for a token). */
static unsigned conns_coming(const struct sdom *d)
{
	return d->nconnecting + (d->idle ? 1 : 0);
}

static void dispatch_domain(struct sched *s, struct sdom *d, uint64_t now,
                            uint64_t *next_wake)
{
	const struct config_smtp *m = s->smtp;

	if (d->paused || ready_count(d) == 0) {
		quit_idle_domain(d);
		return;
	}
	if (d->route == ROUTE_OK && d->ntargets == 0 && d->last_cat == CAT_BAD_DOMAIN) {
		fail_domain_items(s, d, "bounced", "bad-domain", d->last_err);
		return;
	}
	if (d->backoff_until > now) {
		if (d->fail_since && (uint64_t)(time(NULL) - d->fail_since) * 1000 > m->retry_for) {
			expire_domain(s, d);
			return;
		}
		if (d->backoff_until < *next_wake)
			*next_wake = d->backoff_until;
		return;
	}
	if (d->route == ROUTE_NONE) {
		struct route_req *rq = malloc(sizeof(*rq));
		if (rq == NULL)
			return;
		rq->s = s;
		rq->d = d;
		d->route = ROUTE_PENDING;
		if (dns_route_lookup(s->o.dns, d->name, on_route, rq) < 0) {
			free(rq);
			d->route = ROUTE_NONE;
		}
		return;
	}
	if (d->route != ROUTE_OK)
		return;
	/* idle connections first (token waits) */
	while (d->idle != NULL && ready_count(d) > 0) {
		struct sconn *sc = d->idle;
		d->idle = sc->next_idle;
		conn_next(s, sc);
		if (sc->st == SC_IDLE)
			break; /* still waiting for a token */
	}
	/* relay sessions other domains left idle first */
	while (s->parked != NULL &&
	       ready_count(d) > conns_coming(d) &&
	       adopt_parked(s, d, now))
		;
	/* open more connections while there is unassigned work */
	while (ready_count(d) > conns_coming(d) &&
	       s->conns < m->max_connections) {
		unsigned src = s->src_rr++ % (unsigned)s->nsrc;
		struct shape_src *ss = &d->shape->src[src];
		unsigned limit = twindow_scale(&ss->win, d->shape->connections);
		if (ss->conns >= limit)
			break;
		if (d->provider && d->provider->src[src].conns >=
		    twindow_scale(&d->provider->src[src].win, d->provider->connections))
			break;
		if (twindow_paused(&ss->win, now)) {
			if (ss->win.paused_until < *next_wake)
				*next_wake = ss->win.paused_until;
			break;
		}
		uint64_t w = tbucket_wait_ms(&ss->connect, now);
		if (d->provider &&
		    tbucket_wait_ms(&d->provider->src[src].connect, now) > w)
			w = tbucket_wait_ms(&d->provider->src[src].connect, now);
		if (w > 0) {
			if (now + w < *next_wake)
				*next_wake = now + w;
			break;
		}
		/* a new connection is worth its handshake only with a message
		 * token for it: the ones connecting or waiting take the tokens
		 * there are first (else a rate-bound domain opens a connection
		 * per message, each QUIT when it finds no token) */
		if (message_tokens(s, d, src, now) <= conns_coming(d)) {
			double r = ss->rate.rate > 0 ? ss->rate.rate : 1;
			uint64_t at = now + (uint64_t)(1000.0 / r) + 1;
			if (at < *next_wake)
				*next_wake = at;
			break;
		}
		tbucket_take(&ss->connect, now);
		if (d->provider)
			tbucket_take(&d->provider->src[src].connect, now);
		if (open_conn(s, d, src, now) < 0) {
			/* every target dead: wait for the first to come back */
			uint64_t first = UINT64_MAX;
			for (size_t i = 0; i < d->ntargets; i++)
				if (d->targets[i].dead_until < first)
					first = d->targets[i].dead_until;
			if (first != UINT64_MAX && first < *next_wake)
				*next_wake = first;
			break;
		}
	}
	if (d->wake_at > now && d->wake_at < *next_wake)
		*next_wake = d->wake_at;
}

/* Dry run: render every ready item on this thread, count, drop. */
static void dispatch_dry(struct sched *s)
{
	struct sconn tsc = { 0 };
	struct smsg tmp = { 0 };

	tsc.s = s;
	tmp.sc = &tsc;
	for (struct sdom *d = s->runnable; d; d = d->rnext) {
		struct item *it;
		while ((it = q_pop(s, d)) != NULL) {
			if (render_item(s, &tmp, it) == 0) {
				s->st.dry_rendered++;
				s->st.dry_bytes += tmp.msg.len;
			} else
				s->st.skipped++;
			d->remaining--;
			free(it);
		}
	}
	buf_free(&tmp.msg);
}

static void dispatch(struct sched *s)
{
	uint64_t now = now_ms(s), next_wake = UINT64_MAX;
	time_t tnow = time(NULL);
	struct item *it;
	struct prio *pv = NULL;
	size_t n = 0, cap = 0;

	/* due retries back to their domains (the cold ones through the heap) */
	if (s->ncold > 0 && !s->stopping && cold_due(s) <= tnow && cold_scan(s, tnow) < 0) {
		s->st.end = SCHED_END_ERROR;
		snprintf(s->st.end_detail, sizeof(s->st.end_detail), "cannot read deferred "
		         "recipients back from %s: %s", s->o.spill_path, strerror(errno));
		s->stopping = 1;
	}
	while (s->nheap > 0 && s->heap[0]->next_retry <= tnow && !s->stopping) {
		it = heap_pop(s);
		q_push(s, it->dom, it);
		runnable_add(s, it->dom);
	}
	if (s->o.dry_run) {
		dispatch_dry(s);
		maybe_end(s);
		return;
	}
	if (s->stopping) {
		quit_parked(s);
		maybe_end(s);
		return;
	}
	/* collect runnable domains, drop the ones with nothing to do */
	struct sdom **pp = &s->runnable;
	while (*pp) {
		struct sdom *d = *pp;
		if (ready_count(d) == 0 && d->route != ROUTE_PENDING) {
			d->in_runnable = 0;
			*pp = d->rnext;
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct prio *np = realloc(pv, cap * sizeof(*pv));
			if (np == NULL)
				break;
			pv = np;
		}
		double rate = d->shape->rate > 0 ? d->shape->rate : d->shape->connections * 50.0;
		pv[n].d = d;
		pv[n].key = (double)d->remaining / rate;
		n++;
		pp = &d->rnext;
	}
	if (n > 1)
		qsort(pv, n, sizeof(*pv), prio_cmp);
	for (size_t i = 0; i < n; i++)
		dispatch_domain(s, pv[i].d, now, &next_wake);
	free(pv);
	/* parked relay sessions no domain took: not needed now */
	quit_parked(s);
	if (s->nheap > 0) {
		uint64_t at = now + (uint64_t)(s->heap[0]->next_retry - tnow) * 1000;
		if (at < next_wake)
			next_wake = at;
	}
	if (s->ncold > 0) {
		time_t due = cold_due(s);
		uint64_t at = now + (due > tnow ? (uint64_t)(due - tnow) * 1000 : 0);
		if (at < next_wake)
			next_wake = at;
	}
	if (next_wake != UINT64_MAX)
		arm_timer(s, next_wake);
	maybe_end(s);
}

static void on_timer(uv_timer_t *t)
{
	struct sched *s = t->data;

	dispatch(s);
}

static void on_kick(uv_idle_t *h)
{
	struct sched *s = h->data;

	uv_idle_stop(h);
	s->kicked = 0;
	dispatch(s);
}

static void sched_kick(struct sched *s)
{
	if (!s->kicked && !s->ended) {
		s->kicked = 1;
		uv_idle_start(&s->kick, on_kick);
	}
}

/* ---- the end ---- */

static size_t total_remaining(const struct sched *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->hcap; i++)
		for (struct sdom *d = s->htab[i]; d; d = d->hnext)
			n += d->remaining;
	return n;
}

static void close_handles(struct sched *s)
{
	if (s->closed_handles)
		return;
	s->closed_handles = 1;
	uv_timer_stop(&s->timer);
	uv_timer_stop(&s->grace);
	uv_idle_stop(&s->kick);
	uv_close((uv_handle_t *)&s->timer, NULL);
	uv_close((uv_handle_t *)&s->grace, NULL);
	uv_close((uv_handle_t *)&s->kick, NULL);
}

static void maybe_end(struct sched *s)
{
	size_t rem;
	int active = 0;

	if (s->ended || !s->input_done)
		return;
	if (s->conns > 0)
		return;
	rem = total_remaining(s);
	if (s->stopping) {
		/* wait for renders to come back (busy counts) */
		for (size_t i = 0; i < s->hcap; i++)
			for (struct sdom *d = s->htab[i]; d; d = d->hnext)
				if (d->busy || d->route == ROUTE_PENDING)
					active = 1;
		if (active)
			return;
		if (s->st.end == SCHED_END_DONE)
			s->st.end = SCHED_END_STOPPED;
		goto end;
	}
	if (rem == 0) {
		s->st.end = SCHED_END_DONE;
		goto end;
	}
	/* something can still happen: work ready in a non-paused domain, a
	 * route pending, a backoff or a retry ahead */
	size_t paused = 0;
	uint64_t capped_until = 0;
	for (size_t i = 0; i < s->hcap; i++)
		for (struct sdom *d = s->htab[i]; d; d = d->hnext) {
			if (d->remaining == 0)
				continue;
			if (d->paused) {
				paused += d->remaining;
				continue;
			}
			if (d->busy || d->route == ROUTE_PENDING)
				active = 1;
			else if (ready_count(d) > 0) {
				uint64_t until = daily_capped_until(s, d);
				if (until == 0)
					active = 1;
				else if (capped_until == 0 || until < capped_until)
					capped_until = until;
			}
		}
	if (active)
		return;
	if (paused == rem) {
		s->st.end = SCHED_END_PAUSED;
		snprintf(s->st.end_detail, sizeof(s->st.end_detail),
		         "%zu recipients wait in paused domains (%s)", paused, s->st.paused);
		goto end;
	}
	if ((s->nheap > 0 || s->ncold > 0 || capped_until > 0) && s->o.no_wait) {
		s->st.end = SCHED_END_WAITING;
		s->daily_reset = (time_t)(capped_until / 1000);
		goto end;
	}
	return;
end:
	s->ended = 1;
	close_handles(s);
	if (s->o.done)
		s->o.done(s->o.arg);
}

/* QUIT every idle connection (busy ones finish their transaction). */
static void quit_idle(struct sched *s)
{
	quit_parked(s);
	for (size_t i = 0; i < s->hcap; i++)
		for (struct sdom *d = s->htab[i]; d; d = d->hnext)
			quit_idle_domain(d);
}

/* shutdown_grace is over: every connection still open (busy with a slow
 * or stalled server, or idle) is closed now. Their recipients stay pending, with no record
 * (nothing was decided), so a resume sends them again; one whose final
 * dot was already sent may then arrive twice (RFC 1047). */
static void on_grace(uv_timer_t *t)
{
	struct sched *s = t->data;
	unsigned aborted = 0, in_flight = 0, open = s->conns;

	for (struct sconn *sc = s->all_conns, *nx; sc; sc = nx) {
		nx = sc->all_next;
		if (sc->c == NULL)
			continue;
		aborted++;
		for (int i = 0; i < CONN_MSGS; i++)
			if (sc->m[i].st == MSG_SUBMITTED) {
				in_flight++;
				break;
			}
		conn_abort(sc->c);
	}
	log_kv(EDM_LOG_WARN, "grace-over", "connections=%u aborted=%u in_flight=%u",
	       open, aborted, in_flight);
	s->st.end = SCHED_END_STOPPED;
}

/* ---- public ---- */

enum smtp_tls_mode sched_tls_mode(enum cfg_tls t)
{
	switch (t) {
	case CFG_TLS_NONE:
		return SMTP_TLS_NONE;
	case CFG_TLS_STARTTLS:
		return SMTP_TLS_STARTTLS;
	case CFG_TLS_IMPLICIT:
		return SMTP_TLS_IMPLICIT;
	case CFG_TLS_OPPORTUNISTIC:
		break;
	}
	return SMTP_TLS_OPPORTUNISTIC;
}

int sched_tls_verify(const struct config_smtp *m)
{
	/* relays: verify unless tls_verify = no; MX hosts (RFC 7435):
	 * only when tls_verify = yes is written */
	return m->mode == CFG_MODE_RELAY ? m->tls_verify != 0 : m->tls_verify == 1;
}

struct sched *sched_new(const struct sched_opts *o, char *err, size_t errlen)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	s->loop = o->loop;
	s->smtp = &o->cfg->smtp;
	s->spill_fd = -1;
	s->cold_head = s->cold_tail = -1;
	s->defer_mem_cap = DEFER_MEM_CAP;
	{
		const char *v = getenv("EDM_TEST_DEFER_MEM_CAP");
		if (v != NULL && atoi(v) > 0)
			s->defer_mem_cap = (size_t)atoi(v);
	}
	s->nsrc = s->smtp->nsource_ips ? s->smtp->nsource_ips : 1;
	s->hcap = 1024;
	s->htab = calloc(s->hcap, sizeof(*s->htab));
	pthread_mutex_init(&s->scratch_lock, NULL);
	daily_load(s);
	if (s->htab == NULL)
		goto oom;
	if (s->smtp->max_bounce_rate > 0) {
		s->ring_n = s->smtp->bounce_rate_window;
		s->ring = calloc(s->ring_n, 1);
		if (s->ring == NULL)
			goto oom;
	}
	if (o->nrelays > 0) {
		s->relay_targets = calloc(o->nrelays, sizeof(*s->relay_targets));
		if (s->relay_targets == NULL)
			goto oom;
		for (size_t i = 0; i < o->nrelays; i++) {
			snprintf(s->relay_targets[i].host, sizeof(s->relay_targets[i].host),
			         "%s", o->relays[i].host);
			s->relay_targets[i].addr = o->relays[i].addr;
			s->relay_targets[i].tls = o->relays[i].tls;
		}
		s->nrelay_targets = o->nrelays;
	}
	uv_timer_init(s->loop, &s->timer);
	uv_timer_init(s->loop, &s->grace);
	uv_idle_init(s->loop, &s->kick);
	s->timer.data = s->grace.data = s->kick.data = s;
	tbucket_init(&s->global_rate, s->smtp->max_rate, 0, now_ms(s));
	/* grow back by a quarter every 50 deliveries (docs/SCHEDULER.md) */
	s->winpol = (struct twindow_policy){ s->smtp->backoff_period,
	                                     s->smtp->backoff_pause, 50 };
	return s;
oom:
	edm_errf(err, errlen, "out of memory");
	sched_free(s);
	return NULL;
}

int sched_add(struct sched *s, const struct csv_row *row, const struct addr *a,
              const struct journal_deferral *jd, char *err, size_t errlen)
{
	size_t bl = a->len + 1;
	struct sdom *d;
	struct item *it;
	char *p;

	for (size_t i = 0; i < row->nfields; i++)
		bl += row->lens[i] + 1;
	it = calloc(1, sizeof(*it) + bl);
	if (it == NULL)
		return edm_errf(err, errlen, "out of memory");
	p = it->blob;
	memcpy(p, a->norm, a->len + 1);
	p += a->len + 1;
	for (size_t i = 0; i < row->nfields; i++) {
		memcpy(p, row->fields[i], row->lens[i]);
		p[row->lens[i]] = '\0';
		p += row->lens[i] + 1;
	}
	it->row = row->row;
	it->nfields = (uint32_t)row->nfields;
	it->bloblen = (uint32_t)bl;
	it->queued_at = time(NULL);
	d = dom_get(s, addr_domain(a));
	if (d == NULL) {
		free(it);
		return edm_errf(err, errlen, "out of memory");
	}
	it->dom = d;
	d->remaining++;
	s->st.added++;
	if (jd != NULL) {
		it->attempts = jd->attempts;
		it->first_attempt = jd->first_attempt;
		it->queued_at = jd->queued_at ? jd->queued_at : it->queued_at;
		it->next_retry = jd->next_retry;
		if (it->next_retry > time(NULL)) {
			if (defer_push(s, it) < 0)
				return edm_errf(err, errlen, "cannot keep a deferred recipient "
				                "(row %zu): out of memory or %s: %s", it->row,
				                s->o.spill_path, strerror(errno));
			sched_kick(s);
			return 0;
		}
	}
	if (d->nspill > 0 || d->nmem >= DOM_MEM_CAP || s->mem_items >= MEM_ITEMS_CAP) {
		if (spill_put(s, d, it) < 0)
			return edm_errf(err, errlen, "%s: cannot write the spill file: %s",
			                s->o.spill_path, strerror(errno));
	} else
		q_push(s, d, it);
	runnable_add(s, d);
	sched_kick(s);
	return 0;
}

void sched_input_done(struct sched *s)
{
	s->input_done = 1;
	sched_kick(s);
}

void sched_stop(struct sched *s)
{
	if (s->ended)
		return;
	if (!s->stopping) {
		s->stopping = 1;
		if (s->st.end == SCHED_END_DONE)
			s->st.end = SCHED_END_STOPPED;
		uv_timer_start(&s->grace, on_grace, s->smtp->shutdown_grace, 0);
	}
	quit_idle(s);
	sched_kick(s);
}

void sched_stats(const struct sched *s, struct sched_stats *out)
{
	*out = s->st;
	out->deferred_now = s->nheap + s->ncold;
	out->connections = s->conns;
	out->pending = total_remaining(s);
	out->next_retry = s->nheap ? s->heap[0]->next_retry : 0;
	if (s->ncold > 0 && (out->next_retry == 0 || s->cold_min < out->next_retry))
		out->next_retry = s->cold_min;
	if (s->daily_reset > 0 && (out->next_retry == 0 || s->daily_reset < out->next_retry))
		out->next_retry = s->daily_reset;
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	daily_save(s);
	free(s->daily_saved);
	for (size_t i = 0; i < s->hcap && s->htab; i++)
		for (struct sdom *d = s->htab[i], *nx; d; d = nx) {
			nx = d->hnext;
			for (struct item *it = d->head, *in; it; it = in) {
				in = it->next;
				free(it);
			}
			if (d->own_targets)
				free(d->targets);
			free(d->name);
			free(d);
		}
	for (size_t i = 0; i < s->nheap; i++)
		free(s->heap[i]);
	free(s->heap);
	free(s->htab);
	for (struct shape *sh = s->shapes, *nx; sh; sh = nx) {
		nx = sh->next;
		free(sh->src);
		free(sh);
	}
	while (s->scratch_free) {
		struct scratch_slot *sl = s->scratch_free;
		s->scratch_free = sl->next;
		message_scratch_free(&sl->sc);
		free(sl);
	}
	pthread_mutex_destroy(&s->scratch_lock);
	if (s->spill_fd >= 0)
		close(s->spill_fd);
	free(s->spill_w);
	free(s->spill_r);
	free(s->relay_targets);
	free(s->ring);
	buf_free(&s->line);
	free(s);
}
