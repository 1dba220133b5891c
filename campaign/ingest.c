/*
 * ingest.c - `edm ingest CONFIG [SOURCE...]` (contract in ingest.h; the
 * user's side in docs/ingest.md).
 *
 * Reading: an mbox file (From_ separators after a blank line or at the
 * start, mboxrd ">From " unquoting, the separator's blank line not part of
 * the message), a Maildir (new/ then cur/, names in byte order, dotfiles
 * skipped), a single message file, or standard input ("-", one message: what
 * an MTA pipe alias hands over). Every message is read whole but only its
 * first --max-size bytes are kept and parsed (engine/dsn.c); its SHA-256
 * covers all of it (the ref of a report without a Message-ID).
 *
 * Matching a report to a recipient row, strongest first:
 *   1. VERP: an address the report was sent to (To, Delivered-To,
 *      X-Original-To, Envelope-To) or the original's Return-Path has the
 *      shape of [smtp] return_path with {{token}} in it, and the token
 *      checks out (token_check(): HMAC of this campaign under the secret).
 *   2. The tracking token of the original's List-Unsubscribe
 *      (BASE/u/<token>, complaints that quote the original) when
 *      [tracking] is on.
 *   3. The original's Message-ID "edm.<row>.<hex>@<from domain>", which
 *      must equal message_id_make() for that row and one of the addresses
 *      the report names (or the row's address in OUT_DIR/results.csv).
 * A token or Message-ID of another campaign does not verify: "not ours".
 *
 * Effects: one events.csv row per recipient (bounce, delayed, complaint),
 * classified by engine/classify.c exactly as live replies are; a hard
 * bounce of a suppressing category and every complaint append the address
 * to the suppression file (unless already there), suppression first so a
 * crash between the two writes repeats a harmless suppression rather than
 * losing one. The report's ref goes into events.csv with its rows, and a
 * ref already there makes the report a duplicate.
 */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "address.h"
#include "buf.h"
#include "classify.h"
#include "config.h"
#include "csv_reader.h"
#include "dsn.h"
#include "events.h"
#include "log.h"
#include "message.h"
#include "strset.h"
#include "suppress.h"
#include "token.h"

/* A report is one message: 10 MiB covers one that quotes an original with
 * attachments; past it the rest is read (for the hash) but not kept. */
#define INGEST_MAX_SIZE_DEFAULT (10u << 20)
/* The smallest --max-size: a report's header and delivery-status fit in
 * far less, but below 4 KiB nothing useful is left. */
#define INGEST_MAX_SIZE_MIN 4096
/* Piece of a line read at a time from an mbox (longer lines come in
 * several pieces; only a line's first piece is looked at for From_). */
#define LINE_PIECE 65536

const char ingest_usage[] =
	"Usage: edm ingest [options] CONFIG [SOURCE...]\n"
	"\n"
	"Read the reports that come back after sending and record them: delivery\n"
	"status notifications (RFC 3464) and the text bounces of Postfix, Exim,\n"
	"qmail, Exchange, Gmail, QQ and NetEase, delay warnings, and complaint\n"
	"reports (ARF, RFC 5965). Auto-replies are recognised and left alone.\n"
	"\n"
	"SOURCE is an mbox file, a Maildir directory (cur/ and new/), a file with\n"
	"one message, or - for one message on standard input (for an MTA alias:\n"
	"bounces: \"|edm ingest /path/c.ini -\"). No SOURCE reads standard input.\n"
	"Sources are only read.\n"
	"\n"
	"Each report is matched to its recipient row by the VERP token in the\n"
	"address it came back to ([smtp] return_path = bounces+{{token}}@...),\n"
	"by the unsubscribe token of a quoted original, or by the original's\n"
	"Message-ID; reports of other campaigns are counted and ignored.\n"
	"Writes OUT_DIR/events.csv (types bounce, delayed, complaint) and appends\n"
	"hard bounces (bad-mailbox, inactive-mailbox, bad-domain) and complaints\n"
	"to the [campaign] suppression file. Ingesting a report twice changes\n"
	"nothing. Prints a summary on standard output.\n"
	"\n"
	"Options:\n"
	"  --max-size SIZE   parse at most SIZE bytes of each message (default\n"
	"                    10M; K and M suffixes); the rest is read, not parsed\n"
	"  -q, --quiet       no summary\n"
	"  -h, --help        this text\n"
	"\n"
	"Environment: the [tracking] secret_env variable (default\n"
	"EDM_TRACKING_SECRET) when return_path holds {{token}}.\n"
	"\n"
	"Exit status: 0 done; 64 a usage error; 65 a SOURCE that is not mail at\n"
	"all; 66 a missing SOURCE or CONFIG; 74 cannot read a source or write\n"
	"events.csv or the suppression file; 78 a config error.\n";

struct counts {
	unsigned long read, bounces, delayed, complaints, autoreplies, other,
	              not_ours, unparsable, duplicates, truncated, suppressed;
	unsigned long by_cat[CAT_COUNT];
};

struct ingest {
	struct config *cfg;
	const char *campaign;
	char from_domain[ADDR_MAX + 1]; /* "" when [message] from is unset */
	char *verp_prefix, *verp_suffix; /* around {{token}}, or NULL */
	char *unsub_prefix;              /* "BASE/u/", or NULL */
	struct token_key *key;
	struct classifier *cls;
	struct strset *refs;             /* refs already in events.csv */
	struct strset *suppressed;       /* keys in the suppression file */
	struct events *events;           /* opened at the first event */
	char **row_email;                /* results.csv: row -> email */
	size_t nrow_email;
	int results_loaded;
	struct dsn_limits lim;
	int warned_nosupp;
	int fatal;                       /* an I/O error: stop reading */
	time_t now;
	struct counts n;
};

/* One message being read. */
struct msg {
	struct buf data;   /* at most lim.max_bytes of it */
	size_t total;      /* all its bytes */
	EVP_MD_CTX *sha;
};

/* ---- small helpers ---- */

/* ASCII-case-insensitive prefix test. */
static int ci_prefix(const char *s, size_t len, const char *p, size_t plen)
{
	return len >= plen && strncasecmp(s, p, plen) == 0;
}

/* Normalise an address: 0 and a filled *a, or -1. */
static int norm_addr(const char *s, struct addr *a)
{
	char detail[128];

	return s != NULL && addr_parse(s, strlen(s), a, detail, sizeof(detail)) == 0 ? 0 : -1;
}

/* "10M", "512K", "1048576" -> bytes. 0 or -1. */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'K' || *end == 'k') {
		v <<= 10;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		v <<= 20;
		end++;
	}
	if (*end != '\0' || v < INGEST_MAX_SIZE_MIN || v > (1ULL << 31))
		return -1;
	*out = (size_t)v;
	return 0;
}

/* ---- set-up ---- */

/* The From address's domain (as message.c reads [message] from). */
static void from_domain(const struct config *cfg, char out[ADDR_MAX + 1])
{
	const char *v = cfg->message.from, *lt, *gt;
	struct addr a;
	char detail[128];
	size_t len;

	out[0] = '\0';
	if (!cfg->message.present || v == NULL)
		return;
	len = strlen(v);
	if ((lt = strrchr(v, '<')) != NULL && (gt = strchr(lt, '>')) != NULL) {
		v = lt + 1;
		len = (size_t)(gt - v);
	}
	if (addr_parse(v, len, &a, detail, sizeof(detail)) == 0)
		snprintf(out, ADDR_MAX + 1, "%s", addr_domain(&a));
}

/*
 * Split [smtp] return_path around {{token}} ("{{ token }}" too). 1 when
 * it holds the token (prefix/suffix set), 0 when it holds no tag at all,
 * -1 when it holds another tag (not something ingest can match).
 */
static int verp_split(const char *rp, char **prefix, char **suffix)
{
	const char *open, *close, *t;
	size_t n;

	*prefix = *suffix = NULL;
	if (rp == NULL || (open = strstr(rp, "{{")) == NULL)
		return 0;
	if ((close = strstr(open, "}}")) == NULL)
		return -1;
	t = open + 2;
	n = (size_t)(close - t);
	while (n > 0 && (*t == ' ' || *t == '\t')) {
		t++;
		n--;
	}
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n != 5 || memcmp(t, "token", 5) != 0 || strstr(close + 2, "{{") != NULL)
		return -1;
	if ((*prefix = strndup(rp, (size_t)(open - rp))) == NULL ||
	    (*suffix = strdup(close + 2)) == NULL) {
		free(*prefix);
		*prefix = NULL;
		return -2;
	}
	return 1;
}

/* events_read() callback: remember every ref. */
static int collect_ref(void *arg, const struct event *ev)
{
	struct ingest *g = arg;

	if (ev->ref != NULL && ev->ref[0] != '\0' &&
	    strset_add(g->refs, ev->ref, strlen(ev->ref)) < 0)
		return -2;
	return 0;
}

/* ---- results.csv: the address of a row ---- */

/* A formula-guarded field comes back without its '. */
static const char *unguard(const char *s)
{
	if (s[0] == '\'' && (s[1] == '=' || s[1] == '+' || s[1] == '-' ||
	                     s[1] == '@' || s[1] == '\t' || s[1] == '\r'))
		return s + 1;
	return s;
}

/* Read OUT_DIR/results.csv once (row -> email); a missing file is an
 * empty map. */
static void results_load(struct ingest *g)
{
	struct csv_reader_opts o = { 0 };
	const struct csv_row *h, *row;
	struct csv_reader *r;
	char path[4096], err[512];
	size_t ce = (size_t)-1, cr = (size_t)-1;
	int rc;

	g->results_loaded = 1;
	snprintf(path, sizeof(path), "%s/results.csv", g->cfg->campaign.out_dir);
	if (access(path, F_OK) < 0)
		return;
	o.path = path;
	if ((r = csv_reader_open(&o, err, sizeof(err))) == NULL) {
		edm_warn("%s", err);
		return;
	}
	h = csv_reader_header(r);
	for (size_t i = 0; i < h->nfields; i++) {
		if (strcmp(h->fields[i], "email") == 0 && ce == (size_t)-1)
			ce = i;
		if (strcmp(h->fields[i], "row") == 0 && cr == (size_t)-1)
			cr = i;
	}
	if (ce == (size_t)-1 || cr == (size_t)-1) {
		edm_warn("%s: no email and row columns; cannot look rows up", path);
		csv_reader_free(r);
		return;
	}
	while ((rc = csv_reader_next(r, &row, err, sizeof(err))) == 1) {
		unsigned long long n;
		char *end;
		if (ce >= row->nfields || cr >= row->nfields)
			continue;
		n = strtoull(row->fields[cr], &end, 10);
		if (*end != '\0' || n == 0 || n > TOKEN_ROW_MAX)
			continue;
		if (n >= g->nrow_email) {
			size_t cap = g->nrow_email ? g->nrow_email : 1024;
			char **p;
			while (cap <= n)
				cap *= 2;
			if ((p = realloc(g->row_email, cap * sizeof(*p))) == NULL)
				break;
			memset(p + g->nrow_email, 0, (cap - g->nrow_email) * sizeof(*p));
			g->row_email = p;
			g->nrow_email = cap;
		}
		free(g->row_email[n]);   /* a later line (resume) wins */
		g->row_email[n] = strdup(unguard(row->fields[ce]));
	}
	if (rc < 0)
		edm_warn("%s", err);
	csv_reader_free(r);
}

/* The address results.csv has for row, or NULL. */
static const char *results_email(struct ingest *g, uint64_t row)
{
	if (!g->results_loaded)
		results_load(g);
	return row < g->nrow_email ? g->row_email[row] : NULL;
}

/* ---- matching ---- */

struct match {
	uint64_t row;
	const char *by;                 /* "verp", "unsubscribe", "message-id" */
	char email[ADDR_MAX + 1];       /* the verified address, or "" */
};

/* 1 and *row when addr is our VERP address with a genuine token, -1 when
 * it has the shape but not a token of ours, 0 when it is something else. */
static int match_verp(const struct ingest *g, const char *addr, uint64_t *row)
{
	size_t len, pl, sl;

	if (g->verp_prefix == NULL || g->key == NULL || addr == NULL)
		return 0;
	len = strlen(addr);
	pl = strlen(g->verp_prefix);
	sl = strlen(g->verp_suffix);
	/* MTAs may case-fold local parts: compare ignoring case */
	if (len <= pl + sl || !ci_prefix(addr, len, g->verp_prefix, pl) ||
	    strcasecmp(addr + len - sl, g->verp_suffix) != 0)
		return 0;
	return token_check(g->key, addr + pl, len - pl - sl, row) == 0 ? 1 : -1;
}

/* 1 and *row when the List-Unsubscribe value holds BASE/u/<our token>,
 * -1 when it holds the URL with a token that is not ours, 0 otherwise. */
static int match_unsub(const struct ingest *g, const char *v, uint64_t *row)
{
	size_t pl;
	const char *p;
	int seen = 0;

	if (g->unsub_prefix == NULL || g->key == NULL || v == NULL)
		return 0;
	pl = strlen(g->unsub_prefix);
	for (p = v; (p = strcasestr(p, g->unsub_prefix)) != NULL; p += pl) {
		const char *t = p + pl;
		size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
		seen = 1;
		if (token_check(g->key, t, n, row) == 0)
			return 1;
	}
	return seen ? -1 : 0;
}

/* Row of an edm Message-ID "edm.<row>.<16 hex>@...", or 0. */
static uint64_t msgid_row(const char *id)
{
	unsigned long long row;
	char *end;
	size_t i;

	if (id == NULL || strncasecmp(id, "edm.", 4) != 0 || id[4] < '1' || id[4] > '9')
		return 0;
	errno = 0;
	row = strtoull(id + 4, &end, 10);
	if (errno != 0 || *end != '.' || row > TOKEN_ROW_MAX)
		return 0;
	for (i = 1; i <= 16; i++)
		if (!((end[i] >= '0' && end[i] <= '9') || (end[i] >= 'a' && end[i] <= 'f') ||
		      (end[i] >= 'A' && end[i] <= 'F')))
			return 0;
	return end[17] == '@' ? (uint64_t)row : 0;
}

/* 1 when the Message-ID is the one edm made for row and candidate addr
 * (its normalised form into m->email). */
static int msgid_verify(const struct ingest *g, const char *id, uint64_t row,
                        const char *cand, struct match *m)
{
	char want[ADDR_MAX + 128];
	struct addr a;

	if (cand == NULL || norm_addr(cand, &a) < 0)
		return 0;
	message_id_make(g->campaign, (size_t)row, a.key, g->from_domain, want,
	                sizeof(want));
	if (strcasecmp(want, id) != 0)
		return 0;
	snprintf(m->email, sizeof(m->email), "%s", a.norm);
	return 1;
}

/* Whose report is this: 1 with *m filled, 0 when not ours. */
static int match_report(struct ingest *g, const struct dsn_report *r,
                        struct match *m)
{
	const char *id = r->orig_message_id;
	uint64_t row;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i <= r->nto; i++) {
		const char *a = i < r->nto ? r->to[i] : r->orig_return_path;
		if (match_verp(g, a, &row) == 1) {
			m->row = row;
			m->by = "verp";
			return 1;
		}
	}
	if (match_unsub(g, r->orig_list_unsubscribe, &row) == 1) {
		m->row = row;
		m->by = "unsubscribe";
		return 1;
	}
	if (g->from_domain[0] == '\0' || (row = msgid_row(id)) == 0)
		return 0;
	m->by = "message-id";
	m->row = row;
	/* the original's To first: the address exactly as edm sent it */
	for (size_t i = 0; i < r->norig_to; i++)
		if (msgid_verify(g, id, row, r->orig_to[i], m))
			return 1;
	for (size_t i = 0; i < r->nrcpts; i++)
		if (msgid_verify(g, id, row, r->rcpts[i].orig_rcpt, m) ||
		    msgid_verify(g, id, row, r->rcpts[i].final_rcpt, m))
			return 1;
	return msgid_verify(g, id, row, results_email(g, row), m);
}

/* ---- effects ---- */

/* Append one event (opening events.csv the first time). 0 or -1. */
static int record(struct ingest *g, const struct event *ev)
{
	char err[1024];

	if (g->events == NULL &&
	    (g->events = events_open(g->cfg->campaign.out_dir, err, sizeof(err))) == NULL) {
		edm_error("ingest: %s", err);
		g->fatal = EX_IOERR;
		return -1;
	}
	if (events_append(g->events, ev, 0, err, sizeof(err)) < 0) {
		edm_error("ingest: %s", err);
		g->fatal = EX_IOERR;
		return -1;
	}
	return 0;
}

/* Add an address to the suppression file unless it is there. 0 or -1. */
static int suppress(struct ingest *g, const char *email, const char *reason)
{
	const char *path = g->cfg->campaign.suppression;
	struct addr a;
	char err[1024];

	if (path == NULL) {
		if (!g->warned_nosupp)
			edm_warn("%s: [campaign] suppression is not set: bounces and "
			         "complaints are recorded in events.csv, but no address "
			         "can be suppressed", g->cfg->path);
		g->warned_nosupp = 1;
		return 0;
	}
	if (norm_addr(email, &a) < 0 || strset_has(g->suppressed, a.key, a.len))
		return 0;
	if (suppress_append(path, a.norm, reason, g->now, g->campaign, err,
	                    sizeof(err)) < 0) {
		edm_error("ingest: %s", err);
		g->fatal = EX_IOERR;
		return -1;
	}
	if (strset_add(g->suppressed, a.key, a.len) < 0) {
		g->fatal = EX_OSERR;
		return -1;
	}
	g->n.suppressed++;
	return 0;
}

/* The class and category of one recipient's failure, as the live session
 * would see its reply; the Status field decides when the reply does not. */
static void classify_rcpt(const struct ingest *g, const struct dsn_rcpt *x,
                          struct classify_result *res)
{
	struct classify_result r2;

	if (x->code == 0 && x->enhanced[0] == '\0') {
		/* no reply code: the Status (RFC 3463) is the only code */
		classify_reply(g->cls, 0, x->status, x->text, res);
		return;
	}
	classify_reply(g->cls, x->code, x->enhanced, x->text, res);
	if (strcmp(res->rule, "reply-code") == 0 && x->status[0] != '\0' &&
	    strcmp(x->status, x->enhanced) != 0) {
		classify_reply(g->cls, x->code, x->status, x->text, &r2);
		if (strcmp(r2.rule, "reply-code") != 0)
			*res = r2;
	}
}

/* The address to record for recipient x (NULL when none is known). */
static const char *rcpt_email(struct ingest *g, const struct dsn_report *r,
                              const struct dsn_rcpt *x, const struct match *m)
{
	if (m->email[0] != '\0')
		return m->email;
	if (x != NULL && x->orig_rcpt != NULL)
		return x->orig_rcpt;
	if (x != NULL && x->final_rcpt != NULL)
		return x->final_rcpt;
	if (r->norig_to > 0)
		return r->orig_to[0];
	return results_email(g, m->row);
}

/* Record the bounce/delay of one recipient. 0 or -1. */
static int record_rcpt(struct ingest *g, const struct dsn_report *r,
                       const struct dsn_rcpt *x, const struct match *m,
                       const char *ref, time_t when)
{
	struct classify_result res;
	struct event ev = { 0 };
	const char *email = rcpt_email(g, r, x, m), *cat;
	char reason[64];
	struct addr a;
	int delayed = x->action == DSN_ACTION_DELAYED;

	classify_rcpt(g, x, &res);
	if (res.category == CAT_NONE)
		res.category = CAT_OTHER;   /* a failure is never "delivered" */
	cat = bounce_category_name(res.category);
	if (email != NULL && norm_addr(email, &a) == 0)
		email = a.norm;
	if (!delayed && res.cls == BOUNCE_HARD &&
	    bounce_category_suppresses(res.category) && email != NULL) {
		snprintf(reason, sizeof(reason), "bounce:%s", cat);
		if (suppress(g, email, reason) < 0)
			return -1;
	}
	ev.time = when;
	ev.type = delayed ? "delayed" : "bounce";
	ev.email = email;
	ev.row = m->row;
	ev.category = cat;
	ev.status = x->status[0] ? x->status : x->enhanced;
	ev.detail = x->diagnostic != NULL ? x->diagnostic : x->text;
	ev.ref = ref;
	if (record(g, &ev) < 0)
		return -1;
	if (delayed) {
		g->n.delayed++;
	} else {
		g->n.bounces++;
		g->n.by_cat[res.category]++;
	}
	log_kv(EDM_LOG_INFO, "ingest_event", "type=%s row=%" PRIu64 " email=%s "
	       "category=%s class=%s status=%s rule=%s ref=%s", ev.type, m->row,
	       email ? email : "", cat, bounce_class_name(res.cls), ev.status,
	       res.rule, ref);
	return 0;
}

/* Record a complaint. 0 or -1. */
static int record_complaint(struct ingest *g, const struct dsn_report *r,
                            const struct dsn_rcpt *x, const struct match *m,
                            const char *ref, time_t when)
{
	struct event ev = { 0 };
	const char *email = rcpt_email(g, r, x, m);
	struct addr a;

	if (email != NULL && norm_addr(email, &a) == 0)
		email = a.norm;
	if (email != NULL && suppress(g, email, "complaint") < 0)
		return -1;
	ev.time = when;
	ev.type = "complaint";
	ev.email = email;
	ev.row = m->row;
	ev.detail = r->feedback_type;
	ev.ref = ref;
	if (record(g, &ev) < 0)
		return -1;
	g->n.complaints++;
	log_kv(EDM_LOG_INFO, "ingest_event", "type=complaint row=%" PRIu64
	       " email=%s feedback_type=%s ref=%s", m->row, email ? email : "",
	       r->feedback_type ? r->feedback_type : "", ref);
	return 0;
}

/*
 * Handle one message (its first bytes in data, total its full size, sha
 * its SHA-256). Sets *garbage when it is not mail at all. 0, or -1 after
 * a fatal error (g->fatal set).
 */
static int ingest_message(struct ingest *g, const char *data, size_t len,
                          size_t total, const unsigned char sha[32],
                          const char *where, int *garbage)
{
	struct dsn_report r;
	struct match m;
	char ref[1024];
	const char *result = "";
	size_t nfinal = 0;
	time_t when;
	int rc = 0, matched = 0;

	*garbage = 0;
	g->n.read++;
	if (total > len) {
		g->n.truncated++;
		edm_warn("%s: the message is %zu bytes; only the first %zu were parsed "
		         "(--max-size)", where, total, len);
	}
	if (dsn_parse(data, len, &g->lim, &r) < 0) {
		edm_error("ingest: %s: out of memory", where);
		g->fatal = EX_OSERR;
		return -1;
	}
	if (r.message_id != NULL && r.message_id[0] != '\0') {
		snprintf(ref, sizeof(ref), "%s", r.message_id);
	} else {
		static const char hex[] = "0123456789abcdef";
		memcpy(ref, "sha256:", 7);
		for (int i = 0; i < 32; i++) {
			ref[7 + 2 * i] = hex[sha[i] >> 4];
			ref[8 + 2 * i] = hex[sha[i] & 15];
		}
		ref[71] = '\0';
	}
	/* events time: when the report was written, else now */
	when = r.date > 0 && r.date <= g->now + 86400 ? r.date : g->now;
	for (size_t i = 0; i < r.nrcpts; i++)
		if (r.rcpts[i].action == DSN_ACTION_FAILED ||
		    r.rcpts[i].action == DSN_ACTION_DELAYED)
			nfinal++;

	if (strset_has(g->refs, ref, strlen(ref))) {
		g->n.duplicates++;
		result = "duplicate";
	} else if (r.kind == DSN_KIND_GARBAGE) {
		g->n.unparsable++;
		*garbage = 1;
		result = "not-mail";
	} else if (r.kind == DSN_KIND_AUTOREPLY) {
		g->n.autoreplies++;
		result = "auto-reply";
	} else if (r.kind == DSN_KIND_OTHER) {
		g->n.other++;
		result = "other";
	} else if (r.kind == DSN_KIND_DSN && r.nrcpts == 0) {
		g->n.unparsable++;
		result = "unreadable-bounce";
		edm_warn("%s: a bounce (%s) in which no recipient could be read",
		         where, ref);
	} else if (r.kind == DSN_KIND_DSN && nfinal == 0) {
		g->n.other++;   /* delivered / relayed / expanded: no bounce */
		result = "success-notice";
	} else if (!match_report(g, &r, &m)) {
		g->n.not_ours++;
		result = "not-ours";
	} else if (r.kind == DSN_KIND_DSN) {
		result = m.by;
		matched = 1;
		for (size_t i = 0; i < r.nrcpts && rc == 0; i++)
			if (r.rcpts[i].action == DSN_ACTION_FAILED ||
			    r.rcpts[i].action == DSN_ACTION_DELAYED)
				rc = record_rcpt(g, &r, &r.rcpts[i], &m, ref, when);
	} else {   /* ARF: one complaint per reported recipient, or one */
		result = m.by;
		matched = 1;
		if (r.nrcpts == 0)
			rc = record_complaint(g, &r, NULL, &m, ref, when);
		for (size_t i = 0; i < r.nrcpts && rc == 0; i++)
			rc = record_complaint(g, &r, &r.rcpts[i], &m, ref, when);
	}
	/* recorded: the ref now stands for this report (a second copy in
	 * this run is a duplicate too) */
	if (rc == 0 && matched && strset_add(g->refs, ref, strlen(ref)) < 0) {
		g->fatal = EX_OSERR;
		rc = -1;
	}
	log_kv(EDM_LOG_INFO, "ingest_message", "source=\"%s\" kind=%s format=%s ref=%s "
	       "result=%s", where, dsn_kind_name(r.kind), dsn_format_name(r.format),
	       ref, result);
	dsn_report_free(&r);
	return rc;
}

/* ---- sources ---- */

/* Begin a message: empty buffer, fresh hash. 0 or -1. */
static int msg_start(struct msg *mb)
{
	buf_reset(&mb->data);
	mb->total = 0;
	if (mb->sha == NULL && (mb->sha = EVP_MD_CTX_new()) == NULL)
		return -1;
	return EVP_DigestInit_ex(mb->sha, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* Add bytes to the message: all hashed, the first max_bytes kept. */
static int msg_add(const struct ingest *g, struct msg *mb, const char *p, size_t n)
{
	size_t keep = 0;

	if (mb->data.len < g->lim.max_bytes)
		keep = g->lim.max_bytes - mb->data.len < n ? g->lim.max_bytes - mb->data.len : n;
	mb->total += n;
	if (EVP_DigestUpdate(mb->sha, p, n) != 1)
		return -1;
	return keep > 0 ? buf_append(&mb->data, p, keep) : 0;
}

/* Hand the message over. 0 or -1 (fatal). */
static int msg_finish(struct ingest *g, struct msg *mb, const char *where,
                      int *garbage)
{
	unsigned char sha[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(mb->sha, sha, &n) != 1 || n != 32) {
		g->fatal = EX_SOFTWARE;
		return -1;
	}
	return ingest_message(g, mb->data.data ? mb->data.data : "", mb->data.len,
	                      mb->total, sha, where, garbage);
}

static void msg_free(struct msg *mb)
{
	buf_free(&mb->data);
	EVP_MD_CTX_free(mb->sha);
	mb->sha = NULL;
}

/* Read one piece of a line (up to and including '\n', at most cap bytes)
 * into p; its length, 0 at the end. NUL bytes are kept. */
static size_t read_piece(FILE *f, char *p, size_t cap)
{
	size_t n = 0;
	int ch;

	while (n < cap && (ch = getc_unlocked(f)) != EOF) {
		p[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	return n;
}

/*
 * One whole stream as one message (a file, a Maildir entry, stdin).
 * strict: a message that is not mail (or empty) is an error (65, the
 * SOURCE is unreadable as mail); otherwise a warning (a stray file in a
 * Maildir). Returns 0, 65, 74 on a read error, -1 after a fatal error.
 */
static int read_single(struct ingest *g, FILE *f, const char *where, int strict)
{
	struct msg mb = { 0 };
	char chunk[LINE_PIECE];
	size_t n;
	int garbage = 0, rc = 0;

	if (msg_start(&mb) < 0) {
		msg_free(&mb);
		g->fatal = EX_SOFTWARE;
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (msg_add(g, &mb, chunk, n) < 0) {
			g->fatal = EX_OSERR;
			msg_free(&mb);
			return -1;
		}
	if (ferror(f)) {
		edm_error("ingest: %s: read error: %s", where, strerror(errno));
		msg_free(&mb);
		return EX_IOERR;
	}
	if (msg_finish(g, &mb, where, &garbage) < 0) {
		rc = -1;
	} else if (garbage && strict) {
		edm_error("ingest: %s: %s", where, mb.total == 0 ? "empty: no message"
		          : "not a mail message (no header)");
		rc = EX_DATAERR;
	} else if (garbage) {
		edm_warn("%s: not a mail message (no header); skipped", where);
	}
	msg_free(&mb);
	return rc;
}

/* An mbox file (the caller checked it starts with "From "). 0, 74 on a
 * read error, -1 after a fatal error. */
static int read_mbox(struct ingest *g, FILE *f, const char *path)
{
	struct msg mb = { 0 };
	char *line = malloc(LINE_PIECE);
	char where[4200], blank[2];
	size_t n, nblank = 0;
	unsigned long msgno = 0;
	int bol = 1, prev_blank = 1, in_msg = 0, garbage, rc = 0;

	if (line == NULL || msg_start(&mb) < 0) {
		free(line);
		msg_free(&mb);
		g->fatal = EX_OSERR;
		return -1;
	}
	while (rc == 0 && (n = read_piece(f, line, LINE_PIECE)) > 0) {
		int at_bol = bol, whole_blank;
		const char *p = line;

		bol = line[n - 1] == '\n';
		if (at_bol && n >= 5 && memcmp(line, "From ", 5) == 0 && prev_blank) {
			if (in_msg) {
				snprintf(where, sizeof(where), "%s: message %lu", path, msgno);
				if (msg_finish(g, &mb, where, &garbage) < 0 || msg_start(&mb) < 0)
					rc = -1;
				else if (garbage)
					edm_warn("%s: not a mail message (no header); skipped", where);
			}
			in_msg = 1;
			msgno++;
			nblank = 0;
			prev_blank = 0;
			/* the rest of an over-long From_ line is skipped too */
			while (!bol && (n = read_piece(f, line, LINE_PIECE)) > 0)
				bol = line[n - 1] == '\n';
			continue;
		}
		if (!in_msg)
			continue;
		if (at_bol) {
			/* a blank line is held back: before a From_ line it is
			 * the separator's, not the message's */
			if (nblank > 0 && msg_add(g, &mb, blank, nblank) < 0)
				rc = -1;
			nblank = 0;
			whole_blank = bol && (n == 1 || (n == 2 && line[0] == '\r'));
			prev_blank = whole_blank;
			if (whole_blank) {
				memcpy(blank, line, n);
				nblank = n;
				continue;
			}
			/* mboxrd: ">From ", ">>From " ... lose one '>' */
			if (line[0] == '>') {
				size_t k = 0;
				while (k < n && line[k] == '>')
					k++;
				if (n - k >= 5 && memcmp(line + k, "From ", 5) == 0) {
					p++;
					n--;
				}
			}
		}
		if (rc == 0 && msg_add(g, &mb, p, n) < 0)
			rc = -1;
	}
	if (rc == 0 && ferror(f)) {
		edm_error("ingest: %s: read error: %s", path, strerror(errno));
		rc = EX_IOERR;
	}
	if (rc == 0 && in_msg) {
		snprintf(where, sizeof(where), "%s: message %lu", path, msgno);
		if (msg_finish(g, &mb, where, &garbage) < 0)
			rc = -1;
		else if (garbage)
			edm_warn("%s: not a mail message (no header); skipped", where);
	}
	if (rc == -1 && g->fatal == 0)
		g->fatal = EX_OSERR;
	free(line);
	msg_free(&mb);
	return rc;
}

/* qsort: file names in byte order (Maildir names start with the time). */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The messages of dir/sub (a Maildir's new or cur), in name order. */
static int read_maildir_sub(struct ingest *g, const char *dir, const char *sub)
{
	char path[4200];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : (edm_error("ingest: %s: %s", path, strerror(errno)),
		                              EX_IOERR);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **p = realloc(names, nc * sizeof(*p));
			if (p == NULL)
				break;
			names = p;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		FILE *f;
		int r;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, names[i]);
		if (rc < 0 || g->fatal || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((f = fopen(path, "rb")) == NULL) {
			edm_error("ingest: %s: %s", path, strerror(errno));
			if (rc == 0)
				rc = EX_IOERR;
			continue;
		}
		r = read_single(g, f, path, 0);   /* stray files are counted */
		fclose(f);
		if (r < 0)
			rc = -1;
		else if (r == EX_IOERR && rc == 0)
			rc = EX_IOERR;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* One SOURCE. 0, a sysexits code for this source, or -1 (fatal). */
static int read_source(struct ingest *g, const char *src)
{
	struct stat st;
	char head[5];
	size_t n;
	FILE *f;
	int rc;

	if (strcmp(src, "-") == 0)
		return read_single(g, stdin, "standard input", 1);
	if (stat(src, &st) < 0) {
		edm_error("ingest: %s: %s", src, strerror(errno));
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES ? EX_NOINPUT
		                                                               : EX_IOERR;
	}
	if (S_ISDIR(st.st_mode)) {
		char sub[4200];
		struct stat s2;
		int has_new, has_cur;
		snprintf(sub, sizeof(sub), "%s/new", src);
		has_new = stat(sub, &s2) == 0 && S_ISDIR(s2.st_mode);
		snprintf(sub, sizeof(sub), "%s/cur", src);
		has_cur = stat(sub, &s2) == 0 && S_ISDIR(s2.st_mode);
		if (!has_new && !has_cur) {
			edm_error("ingest: %s: a directory but not a Maildir (no cur/ or new/)", src);
			return EX_DATAERR;
		}
		rc = read_maildir_sub(g, src, "new");
		if (rc >= 0 && !g->fatal) {
			int r2 = read_maildir_sub(g, src, "cur");
			if (r2 < 0 || rc == 0)
				rc = r2;
		}
		return rc;
	}
	if ((f = fopen(src, "rb")) == NULL) {
		edm_error("ingest: %s: %s", src, strerror(errno));
		return errno == EACCES || errno == ENOENT ? EX_NOINPUT : EX_IOERR;
	}
	n = fread(head, 1, sizeof(head), f);
	if (n == 0 && !ferror(f)) {
		fclose(f);
		return 0;   /* an empty mailbox */
	}
	if (fseek(f, 0, SEEK_SET) < 0) {   /* a pipe: one message */
		edm_error("ingest: %s: cannot read a FIFO as a mailbox; use - for "
		          "standard input", src);
		fclose(f);
		return EX_DATAERR;
	}
	if (n == 5 && memcmp(head, "From ", 5) == 0)
		rc = read_mbox(g, f, src);
	else
		rc = read_single(g, f, src, 1);   /* one message in a file */
	fclose(f);
	return rc;
}

/* ---- the command ---- */

/* Print the summary on stdout. */
static void summary(const struct ingest *g)
{
	const struct counts *n = &g->n;
	int first = 1;

	printf("edm ingest: campaign %s\n", g->campaign);
	printf("messages read: %lu\n", n->read);
	printf("bounces: %lu", n->bounces);
	for (int c = 0; c < CAT_COUNT; c++)
		if (n->by_cat[c] > 0) {
			printf("%s%s %lu", first ? " (" : ", ",
			       bounce_category_name((enum bounce_category)c), n->by_cat[c]);
			first = 0;
		}
	printf("%s\n", first ? "" : ")");
	printf("delayed: %lu\n", n->delayed);
	printf("complaints: %lu\n", n->complaints);
	printf("auto-replies: %lu\n", n->autoreplies);
	printf("other mail: %lu\n", n->other);
	printf("not ours: %lu\n", n->not_ours);
	printf("unparsable: %lu\n", n->unparsable);
	printf("duplicates: %lu\n", n->duplicates);
	printf("truncated: %lu\n", n->truncated);
	printf("suppressed addresses added: %lu\n", n->suppressed);
}

/* Load the config and everything matching needs. 0 or a sysexits code. */
static int ingest_setup(struct ingest *g, const char *cfgpath)
{
	char err[2048], path[4200];
	const char *secret;
	size_t slen;
	int v;

	if ((g->cfg = config_load(cfgpath, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return access(cfgpath, R_OK) < 0 ? EX_NOINPUT : EX_CONFIG;
	}
	g->campaign = g->cfg->campaign.name;
	from_domain(g->cfg, g->from_domain);
	v = verp_split(g->cfg->smtp.return_path, &g->verp_prefix, &g->verp_suffix);
	if (v == -1) {
		edm_error("%s: return_path '%s': the only tag edm ingest can match is "
		          "{{token}} (e.g. bounces+{{token}}@%s)",
		          config_where(g->cfg, "smtp", "return_path"),
		          g->cfg->smtp.return_path,
		          g->from_domain[0] ? g->from_domain : "example.com");
		return EX_CONFIG;
	}
	if (v < -1)
		return EX_OSERR;
	if (v == 1 || g->cfg->tracking.present) {
		if (config_tracking_secret(g->cfg, &secret, &slen, err, sizeof(err)) == 0) {
			if ((g->key = token_key_new(secret, slen, g->campaign)) == NULL)
				return EX_OSERR;
		} else if (v == 1) {
			edm_error("%s: return_path holds {{token}}, and matching bounces "
			          "by it needs the tracking secret: %s",
			          config_where(g->cfg, "smtp", "return_path"), err);
			return EX_CONFIG;
		} else {
			edm_warn("%s (complaints cannot be matched by their unsubscribe "
			         "link; Message-IDs still work)", err);
		}
	}
	if (g->key != NULL && g->cfg->tracking.present && g->cfg->tracking.base_url &&
	    asprintf(&g->unsub_prefix, "%s/u/", g->cfg->tracking.base_url) < 0) {
		g->unsub_prefix = NULL;
		return EX_OSERR;
	}
	if (g->verp_prefix == NULL && g->from_domain[0] == '\0' && g->unsub_prefix == NULL) {
		edm_error("%s: nothing to match reports by: edm ingest needs [message] "
		          "from (Message-IDs carry its domain) or [smtp] return_path "
		          "with {{token}}", g->cfg->path);
		return EX_CONFIG;
	}
	if ((g->cls = classify_new(g->cfg->smtp.bounce_rules, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return g->cfg->smtp.bounce_rules && access(g->cfg->smtp.bounce_rules, R_OK) < 0
		       ? EX_NOINPUT : EX_CONFIG;
	}
	if ((g->refs = strset_new()) == NULL || (g->suppressed = strset_new()) == NULL)
		return EX_OSERR;
	snprintf(path, sizeof(path), "%s/events.csv", g->cfg->campaign.out_dir);
	if ((v = events_read(path, collect_ref, g, err, sizeof(err))) != 0) {
		edm_error("ingest: %s", v == -2 ? "out of memory" : err);
		return v == -2 ? EX_OSERR : EX_IOERR;
	}
	if (g->cfg->campaign.suppression != NULL &&
	    access(g->cfg->campaign.suppression, F_OK) == 0 &&
	    suppress_load(g->suppressed, g->cfg->campaign.suppression, NULL, err,
	                  sizeof(err)) < 0) {
		edm_error("ingest: %s", err);
		return EX_IOERR;
	}
	return 0;
}

static void ingest_free(struct ingest *g)
{
	events_close(g->events);
	strset_free(g->refs);
	strset_free(g->suppressed);
	classify_free(g->cls);
	token_key_free(g->key);
	for (size_t i = 0; i < g->nrow_email; i++)
		free(g->row_email[i]);
	free(g->row_email);
	free(g->verp_prefix);
	free(g->verp_suffix);
	free(g->unsub_prefix);
	config_free(g->cfg);
}

int ingest_main(int argc, char **argv)
{
	enum { OPT_MAX_SIZE = 256 };
	static const struct option longopts[] = {
		{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ingest g = { 0 };
	size_t max_size = INGEST_MAX_SIZE_DEFAULT;
	int ch, quiet = 0, rc = 0;

	opterr = 0;
	optind = 0; /* glibc: a full reset, so the function can run twice */
	while ((ch = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_MAX_SIZE:
			if (parse_size(optarg, &max_size) < 0) {
				edm_error("ingest: --max-size '%s': expected bytes from %d "
				          "to 2G, with an optional K or M suffix", optarg,
				          INGEST_MAX_SIZE_MIN);
				return EX_USAGE;
			}
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(ingest_usage, stdout);
			return 0;
		case ':':
			edm_error("ingest: option '%s' needs a value (see edm ingest --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("ingest: unknown option '%s' (see edm ingest --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		edm_error("ingest: expected a CONFIG file (usage: edm ingest [options] "
		          "CONFIG [SOURCE...])");
		return EX_USAGE;
	}
	dsn_limits_default(&g.lim);
	g.lim.max_bytes = max_size;
	g.now = time(NULL);
	if ((rc = ingest_setup(&g, argv[optind])) != 0) {
		ingest_free(&g);
		return rc;
	}
	if (optind + 1 >= argc) {
		rc = read_single(&g, stdin, "standard input", 1);
	} else {
		for (int i = optind + 1; i < argc && !g.fatal; i++) {
			int r = read_source(&g, argv[i]);
			if (r != 0 && rc == 0)
				rc = r;
		}
	}
	if (g.fatal)
		rc = g.fatal;
	else if (rc < 0)
		rc = EX_SOFTWARE;
	if (!quiet)
		summary(&g);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		edm_error("ingest: cannot write standard output: %s", strerror(errno));
		if (rc == 0)
			rc = EX_IOERR;
	}
	ingest_free(&g);
	return rc;
}
