/*
 * validate.c - `edm validate`: stream the list, decide every row, write
 * clean.csv / rejects.csv (contract in validate.h).
 *
 * Data flow: csv_reader (bytes -> UTF-8 records) -> local checks
 * (address syntax, dedup, suppression, disposable, role, typo) -> the row
 * window -> writers. Rows that pass every local check and need a DNS
 * answer wait in the window (a FIFO) until engine/dns has a verdict for
 * their domain; rows leave the window strictly in file order. When the
 * window is empty and a row's verdict is final, it is written straight
 * from the reader's buffer with no copy (the --no-dns fast path).
 */
#include "validate.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "address.h"
#include "config.h"
#include "csv_reader.h"
#include "csv_writer.h"
#include "dns.h"
#include "files.h"
#include "log.h"
#include "message.h"
#include "recipients.h"
#include "rules.h"
#include "strset.h"
#include "suppress.h"

const char *const validate_reason_names[VR_COUNT] = {
	[VR_KEEP] = "keep",
	[VR_MALFORMED] = "malformed",
	[VR_ENCODING] = "encoding",
	[VR_SYNTAX] = "syntax",
	[VR_DUPLICATE] = "duplicate",
	[VR_SUPPRESSED] = "suppressed",
	[VR_DISPOSABLE] = "disposable",
	[VR_ROLE] = "role",
	[VR_TYPO] = "typo",
	[VR_TEMPLATE] = "template",
	[VR_NO_MAIL] = "no-mail",
};

/* Rows waiting for DNS. 8192 rows of a typical 100-byte record is ~1 MB:
 * far more than the 64 domains in flight can hold up at once, small enough
 * to be irrelevant next to the dedup set. */
#define WINDOW_ROWS 8192

/* The "first rows" of a utf-8 campaign judged for a wrong encoding. */
#define ENCODING_PROBE_ROWS 20

/* Progress refresh on a TTY. */
#define PROGRESS_EVERY_NS 250000000L

/* Per-domain verdicts of the data rules (disposable, typo), computed once
 * per distinct domain: a list has a few thousand domains for a million
 * rows, and the typo rule's edit distances are the costliest check. */
struct domverdict {
	char *domain;         /* NULL: empty slot */
	int disposable;
	char *suggest;        /* typo suggestion or NULL */
};

struct domcache {
	struct domverdict *slots;
	size_t cap, n;        /* cap a power of two, kept under 50% full */
};

/* A row held in the window: its fields copied, its verdict maybe pending. */
struct wrow {
	size_t row;
	size_t nfields;
	char *buf;           /* fields, each NUL-terminated, back to back */
	size_t bufcap;
	size_t *lens;        /* nfields entries */
	size_t lenscap;
	const char **fields; /* pointers into buf, rebuilt after copy */
	enum validate_reason reason;
	int pending;         /* waiting for DNS on 'domain' */
	char domain[ADDR_DOMAIN_MAX + 1];
	char detail[512];
	char suggestion[ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1];
};

struct validate {
	struct config *cfg;
	const struct validate_opts *opts;
	struct csv_reader *reader;
	size_t ncols;        /* header field count */
	size_t email_col;
	struct csv_writer *clean, *rejects;
	struct rules *rules;
	struct strset *seen, *suppressed;
	uv_loop_t loop;
	int loop_ready;
	struct dns *dns;
	struct domcache domains;
	struct buf detail;           /* rejects.csv detail being composed */
	struct message_factory *msg; /* with [message] strict_variables */
	struct message_scratch scratch;

	struct wrow *win;    /* ring of WINDOW_ROWS */
	size_t head, count;

	size_t rows, bad_encoding;
	size_t counts[VR_COUNT];
	size_t unverified;
	struct timespec start, last_progress;
	int progress_shown;
	char *clean_path, *rejects_path;
};

/* FNV-1a: short domain names, few thousand of them. */
static size_t dom_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* The cached verdicts for 'domain', computed on first sight; NULL on ENOMEM. */
static const struct domverdict *domain_verdict(struct validate *v, const char *domain)
{
	struct domcache *c = &v->domains;
	struct domverdict *e;
	char sug[ADDR_DOMAIN_MAX + 1];
	size_t i;

	if (c->n * 2 >= c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		struct domverdict *ns = calloc(ncap, sizeof(*ns));
		if (ns == NULL)
			return NULL;
		for (size_t j = 0; j < c->cap; j++) {
			if (c->slots[j].domain == NULL)
				continue;
			for (i = dom_hash(c->slots[j].domain) & (ncap - 1); ns[i].domain;
			     i = (i + 1) & (ncap - 1))
				;
			ns[i] = c->slots[j];
		}
		free(c->slots);
		c->slots = ns;
		c->cap = ncap;
	}
	for (i = dom_hash(domain) & (c->cap - 1); c->slots[i].domain != NULL;
	     i = (i + 1) & (c->cap - 1))
		if (strcmp(c->slots[i].domain, domain) == 0)
			return &c->slots[i];
	e = &c->slots[i];
	if ((e->domain = strdup(domain)) == NULL)
		return NULL;
	e->disposable = rules_is_disposable(v->rules, domain);
	e->suggest = NULL;
	if (rules_typo(v->rules, domain, sug, sizeof(sug)) &&
	    (e->suggest = strdup(sug)) == NULL) {
		free(e->domain);
		e->domain = NULL;
		return NULL;
	}
	c->n++;
	return e;
}

static void domcache_free(struct domcache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		free(c->slots[i].domain);
		free(c->slots[i].suggest);
	}
	free(c->slots);
}

/* Monotonic nanoseconds between two timespecs. */
static long long ts_diff_ns(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
}

/* Write one output record of the original columns (padded to the header
 * width so every line of rejects.csv has the same shape). */
static int write_fields(struct csv_writer *w, const char *const *fields,
                        const size_t *lens, size_t n, size_t ncols)
{
	for (size_t i = 0; i < ncols; i++)
		if (csv_writer_field(w, i < n ? fields[i] : "", i < n ? lens[i] : 0) < 0)
			return -1;
	return 0;
}

/* Emit one decided row to clean.csv or rejects.csv. */
static int emit(struct validate *v, size_t row, const char *const *fields,
                const size_t *lens, size_t n, enum validate_reason reason,
                const char *detail, const char *suggestion)
{
	char num[32];

	v->counts[reason]++;
	if (reason == VR_KEEP)
		return csv_writer_row(v->clean, fields, lens, n < v->ncols ? n : v->ncols);
	if (write_fields(v->rejects, fields, lens, n, v->ncols) < 0)
		return -1;
	/* A row wider than the header: its extra fields go into the detail,
	 * whole, so rejects.csv keeps every byte of it. */
	buf_reset(&v->detail);
	if (buf_puts(&v->detail, detail) < 0)
		return -1;
	for (size_t i = v->ncols; i < n; i++)
		if (buf_puts(&v->detail, i == v->ncols ? "; extra: " : " | ") < 0 ||
		    buf_append(&v->detail, fields[i], lens[i]) < 0)
			return -1;
	snprintf(num, sizeof(num), "%zu", row);
	if (csv_writer_field(v->rejects, validate_reason_names[reason],
	                     strlen(validate_reason_names[reason])) < 0 ||
	    csv_writer_field(v->rejects, v->detail.data, v->detail.len) < 0 ||
	    csv_writer_field(v->rejects, suggestion, strlen(suggestion)) < 0 ||
	    csv_writer_field(v->rejects, num, strlen(num)) < 0)
		return -1;
	return csv_writer_end(v->rejects);
}

/* Copy a reader row into a window slot (buffers reused across laps). */
static int wrow_fill(struct wrow *w, const struct csv_row *r)
{
	size_t total = 0, off = 0;

	for (size_t i = 0; i < r->nfields; i++)
		total += r->lens[i] + 1;
	if (total > w->bufcap) {
		char *b = realloc(w->buf, total);
		if (b == NULL)
			return -1;
		w->buf = b;
		w->bufcap = total;
	}
	if (r->nfields > w->lenscap) {
		size_t *l = realloc(w->lens, r->nfields * sizeof(*l));
		const char **f = realloc(w->fields, r->nfields * sizeof(*f));
		if (l != NULL)
			w->lens = l;
		if (f != NULL)
			w->fields = f;
		if (l == NULL || f == NULL)
			return -1;
		w->lenscap = r->nfields;
	}
	for (size_t i = 0; i < r->nfields; i++) {
		memcpy(w->buf + off, r->fields[i], r->lens[i] + 1);
		w->fields[i] = w->buf + off;
		w->lens[i] = r->lens[i];
		off += r->lens[i] + 1;
	}
	w->nfields = r->nfields;
	w->row = r->row;
	return 0;
}

/*
 * Apply the DNS verdict for 'domain' to a kept row: 1 when decided (reason
 * and detail updated for no-mail, unverified counted), 0 while the lookup
 * is still pending (dns_mail_lookup starts it on first ask).
 */
static int apply_dns(struct validate *v, const char *domain,
                     enum validate_reason *reason, char *detail, size_t dlen)
{
	const char *why = NULL;

	switch (dns_mail_lookup(v->dns, domain, &why)) {
	case DNS_PENDING:
		return 0;
	case DNS_NOMAIL:
		*reason = VR_NO_MAIL;
		snprintf(detail, dlen, "%s: %s", domain, why ? why : "no mail host");
		return 1;
	case DNS_UNVERIFIED:
		v->unverified++;
		return 1;
	case DNS_OK:
		break;
	}
	return 1;
}

/* Settle a window row from the DNS cache; 1 when decided. */
static int wrow_settle(struct validate *v, struct wrow *w)
{
	if (w->pending &&
	    apply_dns(v, w->domain, &w->reason, w->detail, sizeof(w->detail)))
		w->pending = 0;
	return !w->pending;
}

/* Write out every decided row at the head of the window, in order. */
static int window_drain(struct validate *v)
{
	while (v->count > 0) {
		struct wrow *w = &v->win[v->head];

		if (!wrow_settle(v, w))
			return 0;
		if (emit(v, w->row, w->fields, w->lens, w->nfields, w->reason,
		         w->detail, w->suggestion) < 0)
			return -1;
		v->head = (v->head + 1) % WINDOW_ROWS;
		v->count--;
	}
	return 0;
}

/* Run the loop until the head row is decided (the window is full). */
static int window_wait_head(struct validate *v)
{
	while (v->count > 0 && !wrow_settle(v, &v->win[v->head])) {
		if (dns_pending(v->dns) == 0) {
			/* Cannot happen: a pending row always has a lookup in
			 * flight. Keep the row rather than hang. */
			log_kv(EDM_LOG_ERROR, "dns_stuck", "domain=%s",
			       v->win[v->head].domain);
			v->win[v->head].pending = 0;
			v->unverified++;
			break;
		}
		uv_run(&v->loop, UV_RUN_ONCE);
	}
	return window_drain(v);
}

/* Show "rows, percent, rate" on stderr when it is a terminal. */
static void progress(struct validate *v, int final)
{
	struct timespec now;
	size_t done, total;
	double secs;

	if (!v->opts->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && ts_diff_ns(&v->last_progress, &now) < PROGRESS_EVERY_NS)
		return;
	v->last_progress = now;
	secs = (double)ts_diff_ns(&v->start, &now) / 1e9;
	csv_reader_progress(v->reader, &done, &total);
	fprintf(stderr, "\r  validating: %zu rows", v->rows);
	if (total > 0)
		fprintf(stderr, ", %3.0f%%", 100.0 * (double)done / (double)total);
	if (secs > 0)
		fprintf(stderr, ", %.0f rows/s", (double)v->rows / secs);
	if (v->dns != NULL)
		fprintf(stderr, ", %zu DNS lookups pending", dns_pending(v->dns));
	fprintf(stderr, "   ");
	if (final)
		fprintf(stderr, "\r%60s\r", "");
	v->progress_shown = 1;
}

/*
 * Local checks for one row, in reason order. Fills reason/detail/
 * suggestion; for a kept row that needs DNS, copies its domain to
 * 'domain'. Returns 0, -1 on allocation failure, or -2 when the message
 * factory failed for another reason (already reported).
 */
static int check_row(struct validate *v, const struct csv_row *r,
                     enum validate_reason *reason, char *detail, size_t dlen,
                     char *suggestion, size_t slen, char *domain)
{
	const struct domverdict *dv;
	struct addr a;
	const char *dom;
	int added;

	*reason = VR_KEEP;
	detail[0] = suggestion[0] = domain[0] = '\0';
	if (r->nfields != v->ncols) {
		/* emit() appends the extra fields themselves */
		int n = snprintf(detail, dlen, "expected %zu fields, got %zu",
		                 v->ncols, r->nfields);
		for (size_t i = 0; i < r->nfields; i++)
			if (memchr(r->fields[i], '\n', r->lens[i]) != NULL) {
				if (n > 0 && (size_t)n < dlen)
					snprintf(detail + n, dlen - (size_t)n,
					         " (a field spans lines: an unbalanced quote?)");
				break;
			}
		*reason = VR_MALFORMED;
		return 0;
	}
	if (r->bad_encoding) {
		v->bad_encoding++;
		snprintf(detail, dlen, "%s", r->detail);
		*reason = VR_ENCODING;
		return 0;
	}
	for (size_t i = 0; i < r->nfields; i++)
		if (memchr(r->fields[i], '\0', r->lens[i]) != NULL) {
			/* NUL has no place in text: a UTF-16 file read as UTF-8,
			 * or binary junk; never let it reach a header. */
			snprintf(detail, dlen, "field %zu contains a NUL byte "
			         "(a UTF-16 file? set encoding = utf-16)", i + 1);
			*reason = VR_ENCODING;
			return 0;
		}
	if (addr_parse(r->fields[v->email_col], r->lens[v->email_col], &a,
	               detail, dlen) < 0) {
		*reason = VR_SYNTAX;
		return 0;
	}
	dom = addr_domain(&a);
	added = strset_add(v->seen, a.key, a.len);
	if (added < 0)
		return -1;
	if (added == 0) {
		snprintf(detail, dlen, "%s appears earlier in the file", a.key);
		*reason = VR_DUPLICATE;
		return 0;
	}
	if (v->suppressed != NULL && strset_has(v->suppressed, a.key, a.len)) {
		snprintf(detail, dlen, "in %s", v->cfg->campaign.suppression);
		*reason = VR_SUPPRESSED;
		return 0;
	}
	if ((dv = domain_verdict(v, dom)) == NULL)
		return -1;
	if (v->cfg->validate.disposable == CFG_REJECT && dv->disposable) {
		snprintf(detail, dlen, "%s is a disposable-mail domain", dom);
		*reason = VR_DISPOSABLE;
		return 0;
	}
	if (v->cfg->validate.role_accounts == CFG_REJECT &&
	    rules_is_role(v->rules, a.norm, a.local_len)) {
		snprintf(detail, dlen, "%.*s is a role account, not a person",
		         (int)a.local_len, a.norm);
		*reason = VR_ROLE;
		return 0;
	}
	if (v->cfg->validate.typos == CFG_REJECT && dv->suggest != NULL) {
		snprintf(detail, dlen, "%s looks like a typo of %s", dom, dv->suggest);
		snprintf(suggestion, slen, "%.*s@%s", (int)a.local_len, a.norm, dv->suggest);
		*reason = VR_TYPO;
		return 0;
	}
	if (v->msg != NULL) {
		int rc = message_check(v->msg, r, &a, &v->scratch, detail, dlen);
		if (rc == MESSAGE_TEMPLATE) {
			*reason = VR_TEMPLATE;
			return 0;
		}
		if (rc < 0) {
			edm_error("%s: row %zu: %s", v->cfg->campaign.recipients,
			          r->row, detail);
			return -2;
		}
		detail[0] = '\0';
	}
	if (v->dns != NULL)
		memcpy(domain, dom, strlen(dom) + 1);
	return 0;
}

/* Decide one reader row: write it now, or park it in the window when it
 * waits for DNS or rows before it still do (output keeps file order). */
static int handle_row(struct validate *v, const struct csv_row *r)
{
	enum validate_reason reason;
	char detail[512], suggestion[ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	struct wrow *w;
	int decided;

	int rc = check_row(v, r, &reason, detail, sizeof(detail), suggestion,
	                   sizeof(suggestion), domain);
	if (rc < 0)
		return rc;
	decided = domain[0] == '\0' ||
	          apply_dns(v, domain, &reason, detail, sizeof(detail));
	if (decided && v->count == 0)
		return emit(v, r->row, r->fields, r->lens, r->nfields, reason,
		            detail, suggestion);
	if (v->count == WINDOW_ROWS) {
		log_kv(EDM_LOG_DEBUG, "window_full", "row=%zu rows=%d dns_pending=%zu",
		       r->row, WINDOW_ROWS, dns_pending(v->dns));
		if (window_wait_head(v) < 0)
			return -1;
	}
	w = &v->win[(v->head + v->count) % WINDOW_ROWS];
	if (wrow_fill(w, r) < 0)
		return -1;
	w->reason = reason;
	w->pending = !decided;
	memcpy(w->domain, domain, sizeof(domain));
	memcpy(w->detail, detail, sizeof(detail));
	memcpy(w->suggestion, suggestion, sizeof(suggestion));
	v->count++;
	return window_drain(v);
}

/* rejects.csv header: the original columns, then ours; a name that
 * collides with an input column gets an "edm_" prefix. */
static int write_rejects_header(struct validate *v, const struct csv_row *h)
{
	static const char *const extra[] = { "reason", "detail", "suggestion", "row" };
	char name[64];

	if (write_fields(v->rejects, h->fields, h->lens, h->nfields, h->nfields) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(extra) / sizeof(*extra); i++) {
		int clash = 0;
		for (size_t j = 0; j < h->nfields; j++)
			if (strcasecmp(h->fields[j], extra[i]) == 0)
				clash = 1;
		snprintf(name, sizeof(name), "%s%s", clash ? "edm_" : "", extra[i]);
		if (csv_writer_field(v->rejects, name, strlen(name)) < 0)
			return -1;
	}
	return csv_writer_end(v->rejects);
}

static void print_summary(struct validate *v, double secs)
{
	size_t rejected = v->rows - v->counts[VR_KEEP];

	if (v->opts->quiet)
		return;
	printf("edm validate: campaign %s: %zu rows in %.2f s\n",
	       v->cfg->campaign.name, v->rows, secs);
	printf("  %-12s %10zu\n", "kept", v->counts[VR_KEEP]);
	printf("  %-12s %10zu\n", "rejected", rejected);
	for (int i = VR_MALFORMED; i < VR_COUNT; i++)
		printf("    %-10s %10zu\n", validate_reason_names[i], v->counts[i]);
	if (v->dns != NULL)
		printf("  %-12s %10zu  (kept: DNS timeout, SERVFAIL or REFUSED "
		       "for their domains)\n", "unverified", v->unverified);
	else
		printf("  %-12s %10s  (%s)\n", "dns", "off",
		       v->opts->no_dns ? "--no-dns" : "dns = no");
	printf("  clean.csv    %s\n", v->clean_path);
	printf("  rejects.csv  %s\n", v->rejects_path);
}

/* Load rules, suppression and DNS; returns a sysexits code. */
static int setup_checks(struct validate *v)
{
	struct config *cfg = v->cfg;
	char err[1024];

	if ((v->rules = rules_new()) == NULL || (v->seen = strset_new()) == NULL) {
		edm_error("out of memory");
		return EX_OSERR;
	}
	if (cfg->validate.disposable_domains != NULL &&
	    rules_add_disposable_file(v->rules, cfg->validate.disposable_domains,
	                              err, sizeof(err)) < 0) {
		edm_error("%s (named by disposable_domains at %s)", err,
		          config_where(cfg, "validate", "disposable_domains"));
		return access(cfg->validate.disposable_domains, R_OK) < 0 ? EX_NOINPUT : EX_DATAERR;
	}
	if (cfg->campaign.suppression != NULL) {
		size_t skipped = 0;
		if ((v->suppressed = strset_new()) == NULL) {
			edm_error("out of memory");
			return EX_OSERR;
		}
		if (suppress_load(v->suppressed, cfg->campaign.suppression,
		                  &skipped, err, sizeof(err)) < 0) {
			edm_error("%s (named by suppression at %s)", err,
			          config_where(cfg, "campaign", "suppression"));
			return access(cfg->campaign.suppression, R_OK) < 0 ? EX_NOINPUT : EX_DATAERR;
		}
		if (skipped > 0)
			edm_warn("%s: %zu lines are not valid addresses and were ignored",
			         cfg->campaign.suppression, skipped);
	}
	if (cfg->validate.dns && !v->opts->no_dns) {
		struct dns_opts dopts = {
			.servers = v->opts->resolver ? v->opts->resolver
			                             : cfg->validate.resolver,
			.timeout_ms = cfg->validate.dns_timeout_ms,
			.tries = cfg->validate.dns_tries,
			.max_inflight = cfg->validate.dns_concurrency,
		};
		if (uv_loop_init(&v->loop) < 0) {
			edm_error("cannot start the event loop");
			return EX_OSERR;
		}
		v->loop_ready = 1;
		if ((v->dns = dns_new(&v->loop, &dopts, err, sizeof(err))) == NULL) {
			edm_error("%s: %s", v->opts->resolver ? "--resolver"
			          : config_where(cfg, "validate", "resolver"), err);
			return EX_CONFIG;
		}
	}
	return 0;
}

/* Open the reader (header checked), then the writers. */
static int setup_io(struct validate *v)
{
	struct config *cfg = v->cfg;
	const char *out_dir = v->opts->out_dir ? v->opts->out_dir : cfg->campaign.out_dir;
	const struct csv_row *h;
	char err[1024];
	int rc;

	if ((v->reader = recipients_open(cfg, &v->email_col, &rc)) == NULL)
		return rc;
	h = csv_reader_header(v->reader);
	v->ncols = h->nfields;
	/* Templates are compiled and rendered for every row (bodies only under
	 * strict_variables): a template that uses a column the CSV lacks is an
	 * error before anything is sent, and a row that cannot render is a
	 * reject now rather than a failure mid-send. */
	if (cfg->message.present) {
		v->msg = message_factory_new(cfg, h, v->email_col, err, sizeof(err));
		if (v->msg == NULL) {
			edm_error("%s", err);
			return EX_CONFIG;
		}
	}

	if (files_mkdir_p(out_dir) < 0) {
		edm_error("%s: cannot create the output directory: %s (out_dir at %s, or --out-dir)",
		          out_dir, strerror(errno), config_where(cfg, "campaign", "out_dir"));
		return EX_CANTCREAT;
	}
	if (asprintf(&v->clean_path, "%s/clean.csv", out_dir) < 0 ||
	    asprintf(&v->rejects_path, "%s/rejects.csv", out_dir) < 0) {
		edm_error("out of memory");
		return EX_OSERR;
	}
	if ((v->clean = csv_writer_open(v->clean_path, 0600, err, sizeof(err))) == NULL ||
	    (v->rejects = csv_writer_open(v->rejects_path, 0600, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return EX_CANTCREAT;
	}
	if (csv_writer_row(v->clean, h->fields, h->lens, h->nfields) < 0 ||
	    write_rejects_header(v, h) < 0) {
		edm_error("%s: write failed: %s", out_dir, strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* The main pass; returns a sysexits code. */
static int validate_pass(struct validate *v)
{
	int utf8 = recipients_is_utf8(v->cfg);
	const struct csv_row *r;
	char err[1024];
	int rc;

	while ((rc = csv_reader_next(v->reader, &r, err, sizeof(err))) == 1) {
		v->rows++;
		if ((rc = handle_row(v, r)) < 0) {
			if (rc == -2)        /* reported where it happened */
				return EX_SOFTWARE;
			edm_error("writing %s: %s", v->clean_path, strerror(errno));
			return EX_IOERR;
		}
		if (utf8 && v->rows == ENCODING_PROBE_ROWS &&
		    v->bad_encoding * 2 > v->rows) {
			recipients_encoding_error(v->cfg, v->reader, "most of its first rows");
			return EX_DATAERR;
		}
		if ((v->rows & 1023) == 0) {
			if (v->loop_ready)
				uv_run(&v->loop, UV_RUN_NOWAIT);
			progress(v, 0);
		}
	}
	if (rc < 0) {
		edm_error("%s", err);
		return EX_DATAERR;
	}
	while (v->count > 0)
		if (window_wait_head(v) < 0) {
			edm_error("writing %s: %s", v->clean_path, strerror(errno));
			return EX_IOERR;
		}
	if (v->rows > 0 && v->bad_encoding * 2 > v->rows) {
		if (utf8)
			recipients_encoding_error(v->cfg, v->reader, "most of the file");
		else
			edm_error("%s: %zu of %zu rows are not valid %s; is that the "
			          "file's encoding? (encoding at %s)",
			          v->cfg->campaign.recipients, v->bad_encoding, v->rows,
			          v->cfg->campaign.encoding,
			          config_where(v->cfg, "campaign", "encoding"));
		return EX_DATAERR;
	}
	return 0;
}

int validate_run(struct config *cfg, const struct validate_opts *o)
{
	struct validate v = { .cfg = cfg, .opts = o };
	struct timespec end;
	char err[1024];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &v.start);
	v.last_progress = v.start;
	if ((v.win = calloc(WINDOW_ROWS, sizeof(*v.win))) == NULL) {
		edm_error("out of memory");
		return EX_OSERR;
	}
	if ((rc = setup_checks(&v)) != 0 || (rc = setup_io(&v)) != 0)
		goto out;
	rc = validate_pass(&v);
	progress(&v, 1);
	if (rc != 0)
		goto out;
	if (csv_writer_commit(v.clean, err, sizeof(err)) < 0 ||
	    csv_writer_commit(v.rejects, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		rc = EX_IOERR;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	print_summary(&v, (double)ts_diff_ns(&v.start, &end) / 1e9);
	log_kv(EDM_LOG_INFO, "validate_done", "campaign=%s rows=%zu kept=%zu unverified=%zu",
	       cfg->campaign.name, v.rows, v.counts[VR_KEEP], v.unverified);
out:
	csv_writer_free(v.clean);
	csv_writer_free(v.rejects);
	csv_reader_free(v.reader);
	if (v.dns != NULL)
		dns_free(v.dns);
	if (v.loop_ready) {
		uv_run(&v.loop, UV_RUN_DEFAULT);
		uv_loop_close(&v.loop);
	}
	domcache_free(&v.domains);
	buf_free(&v.detail);
	message_factory_free(v.msg);
	message_scratch_free(&v.scratch);
	strset_free(v.seen);
	strset_free(v.suppressed);
	rules_free(v.rules);
	for (size_t i = 0; i < WINDOW_ROWS; i++) {
		free(v.win[i].buf);
		free(v.win[i].lens);
		free(v.win[i].fields);
	}
	free(v.win);
	free(v.clean_path);
	free(v.rejects_path);
	return rc;
}
