/*
 * report.c - `edm report`: report.csv, report.html and the summary from
 * results.csv, events.csv and the recipient list (contract in report.h;
 * every column, number and rule is described in docs/reports.md).
 *
 * Flow: results.csv and events.csv are read into one small record per
 * row (struct rec, indexed by row number: results and event aggregates
 * must be held, the list cannot be re-read per event); clicks are kept
 * until report_finish() classifies them, since the machine rules need the
 * send time and the row's other clicks; then the list is streamed, and
 * each of its rows gives one report.csv line and is tallied into the
 * summary. Strings that repeat (codes, categories, URLs) are interned
 * once and held by id.
 *
 * report.csv is not written through csv_writer: every text field must go
 * through results_field() (the formula guard, which also does the RFC
 * 4180 quoting, so csv_writer would quote it again) and --excel needs a
 * BOM and CRLF, which csv_writer does not write. The file is written the
 * same way, though: "<path>.tmp" created 0600 with O_EXCL, fsync, rename.
 *
 * What it does not do: fetch anything, write anything but OUT_DIR/
 * report.csv and report.html, or change results.csv or events.csv.
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <csv.h>

#include "address.h"
#include "config.h"
#include "csv_reader.h"
#include "events.h"
#include "files.h"
#include "log.h"
#include "recipients.h"
#include "results.h"
#include "utf8.h"

const char report_usage[] =
	"Usage: edm report [--format csv|html|both] [--excel] CONFIG\n"
	"\n"
	"Report what became of every recipient and what the campaign did, from\n"
	"OUT_DIR/results.csv (edm send), OUT_DIR/events.csv (edm track, edm\n"
	"ingest) and the recipient list. Writes into OUT_DIR (mode 0600):\n"
	"  report.csv    one line per row of the list, in list order: the status\n"
	"                (delivered, bounced, expired, suppressed, skipped,\n"
	"                complained, pending), bounce category and code, send\n"
	"                time, opens, clicks, unsubscribe, then the list columns\n"
	"                named by [campaign] report_columns\n"
	"  report.html   one self-contained page to show people: delivery\n"
	"                funnel, bounces by category, opens and clicks over time,\n"
	"                the numbers, a per-domain table and the top links (no\n"
	"                script, nothing loaded from the network)\n"
	"and prints the summary. It may run while edm send is still sending:\n"
	"recipients without an outcome yet are pending.\n"
	"\n"
	"Opens and clicks count people. Opens by mail privacy proxies and\n"
	"prefetchers, and clicks by link scanners (within [tracking]\n"
	"scanner_window of sending, or on several links within it of each\n"
	"other) are counted apart, as machine opens and clicks.\n"
	"\n"
	"Options:\n"
	"  --format F   csv, html or both (default both)\n"
	"  --excel      report.csv for Excel: a UTF-8 BOM first and CRLF line\n"
	"               ends. The spreadsheet formula guard (a leading ' on a\n"
	"               field starting with = + - @) is always applied, with or\n"
	"               without --excel.\n"
	"  -h, --help   this text\n"
	"\n"
	"Exit status: 0 done; 64 a usage error; 65 results.csv, events.csv or the\n"
	"list cannot be read; 66 a missing config or list, or no results.csv yet\n"
	"(run edm send first); 73 the reports cannot be written; 78 a config\n"
	"error (also a report_columns name that is not in the list's header).\n";

/* ---- interned strings ---- */

/* Strings by id (id 0 is ""), with an open-addressing index. */
struct strmap {
	char **keys;
	size_t n, cap;
	uint32_t *slots;    /* id + 1; 0 = empty */
	size_t nslots;      /* a power of two, at least 2n */
};

/* FNV-1a 64. */
static uint64_t str_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Double the index and re-insert every id. 0 or -1. */
static int strmap_grow(struct strmap *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 64;
	uint32_t *slots = calloc(ns, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t id = 0; id < m->n; id++) {
		size_t i = str_hash(m->keys[id], strlen(m->keys[id])) & (ns - 1);
		while (slots[i] != 0)
			i = (i + 1) & (ns - 1);
		slots[i] = (uint32_t)id + 1;
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = ns;
	return 0;
}

/* The id of s[len], added when new (a NUL inside ends the key). -1 on
 * ENOMEM or past UINT32_MAX - 1 strings. */
static int64_t strmap_id(struct strmap *m, const char *s, size_t len)
{
	size_t i;
	char *k;

	len = strnlen(s, len);
	if ((m->n + 1) * 2 > m->nslots && strmap_grow(m) < 0)
		return -1;
	i = str_hash(s, len) & (m->nslots - 1);
	while (m->slots[i] != 0) {
		const char *key = m->keys[m->slots[i] - 1];
		if (strncmp(key, s, len) == 0 && key[len] == '\0')
			return m->slots[i] - 1;
		i = (i + 1) & (m->nslots - 1);
	}
	if (m->n >= UINT32_MAX - 1)
		return -1;
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 64;
		char **keys = realloc(m->keys, nc * sizeof(*keys));
		if (keys == NULL)
			return -1;
		m->keys = keys;
		m->cap = nc;
	}
	if ((k = strndup(s, len)) == NULL)
		return -1;
	m->keys[m->n] = k;
	m->slots[i] = (uint32_t)m->n + 1;
	return (int64_t)m->n++;
}

static void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- the report ---- */

enum rec_flag {
	F_BOUNCE = 1,     /* an async bounce event (first one kept) */
	F_COMPLAINT = 2,
	F_UNSUB = 4,
	F_EVENTS = 8,     /* any event at all (for past_end) */
};

/* One list row's results and event aggregates (52 bytes). Times are
 * seconds since 1970 in 32 bits (0 = none; good until 2106). */
struct rec {
	uint32_t result_at;
	uint32_t first_open, first_click;
	uint32_t opens, machine_opens, clicks, machine_clicks;
	uint32_t code, category;          /* results.csv, string ids */
	uint32_t ev_code, ev_category;    /* the async bounce */
	uint32_t cmp_category;            /* the complaint */
	uint8_t status;                   /* from results.csv; 0 pending */
	uint8_t flags;
};

struct click {
	size_t row;
	uint32_t time;
	unsigned link_id;
	int machine;
};

struct link {
	unsigned link_id;
	uint32_t url;      /* string id: the first URL seen for it */
	size_t clicks, unique;
};

struct hour {
	int64_t h;         /* time / 3600 */
	size_t opens, clicks;
};

struct dom_count {
	size_t sent, delivered, bounced, opened;
};

struct report {
	unsigned window_ms;
	size_t max_rows;
	struct strmap strs;
	uint32_t id_other;           /* "other": a bounce without category */
	struct rec *recs;
	size_t nrecs, caprecs;
	struct click *clicks;
	size_t nclicks, capclicks;
	struct link *links;          /* sorted by link_id */
	size_t nlinks, caplinks;
	struct hour *hours;          /* sorted by h */
	size_t nhours, caphours;
	int finished;
	/* tallies of report_row() */
	struct report_summary sum;
	size_t *cat_counts;          /* by string id */
	size_t ncat_counts;
	struct strmap doms;
	struct dom_count *domc;
	size_t capdomc;
	/* report_summary() output */
	struct report_count *out_cats;
	struct report_domain *out_doms;
	struct report_link *out_links;
	struct report_bucket *out_buckets;
};

static const char *const status_names[REPORT_STATUS_COUNT] = {
	"pending", "delivered", "bounced", "expired", "suppressed", "skipped",
	"complained",
};

const char *report_status_name(enum report_status s)
{
	return (unsigned)s < REPORT_STATUS_COUNT ? status_names[s] : "pending";
}

/* A results.csv status: 1..5, or 0 when it is not one of those. */
static int status_parse(const char *s)
{
	for (int i = REPORT_DELIVERED; i <= REPORT_SKIPPED; i++)
		if (s != NULL && strcmp(s, status_names[i]) == 0)
			return i;
	return 0;
}

/* time_t -> the 32-bit field; 0 when out of range. */
static uint32_t to_u32(time_t t)
{
	return t > 0 && (uint64_t)t <= UINT32_MAX ? (uint32_t)t : 0;
}

static void inc32(uint32_t *v)
{
	if (*v < UINT32_MAX)
		(*v)++;
}

static const char *str_of(const struct report *r, uint32_t id)
{
	return id < r->strs.n ? r->strs.keys[id] : "";
}

/* Intern a C string (NULL = ""). 0 or -1. */
static int intern(struct report *r, const char *s, uint32_t *id)
{
	int64_t v = strmap_id(&r->strs, s ? s : "", s ? strlen(s) : 0);

	if (v < 0)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

struct report *report_new(unsigned scanner_window_ms, size_t max_rows)
{
	struct report *r = calloc(1, sizeof(*r));
	uint32_t empty;

	if (r == NULL)
		return NULL;
	r->window_ms = scanner_window_ms;
	r->max_rows = max_rows;
	if (intern(r, "", &empty) < 0 || intern(r, "other", &r->id_other) < 0) {
		report_free(r);
		return NULL;
	}
	return r;
}

void report_free(struct report *r)
{
	if (r == NULL)
		return;
	strmap_free(&r->strs);
	strmap_free(&r->doms);
	free(r->recs);
	free(r->clicks);
	free(r->links);
	free(r->hours);
	free(r->cat_counts);
	free(r->domc);
	free(r->out_cats);
	free(r->out_doms);
	free(r->out_links);
	free(r->out_buckets);
	free(r);
}

/* Grow an array to hold at least 'need' elements of 'size'. 0 or -1. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t nc = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (nc < need) {
		if (nc > SIZE_MAX / 2 / size)
			return -1;
		nc *= 2;
	}
	if ((np = realloc(*p, nc * size)) == NULL)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

/* The record of 'row' (1..max_rows), created zeroed. NULL on ENOMEM. */
static struct rec *rec_get(struct report *r, size_t row)
{
	if (row > r->nrecs) {
		if (grow((void **)&r->recs, &r->caprecs, row, sizeof(*r->recs)) < 0)
			return NULL;
		memset(r->recs + r->nrecs, 0, (row - r->nrecs) * sizeof(*r->recs));
		r->nrecs = row;
	}
	return &r->recs[row - 1];
}

int report_add_result(struct report *r, const struct results_row *res)
{
	int st = status_parse(res->status);
	struct rec *rec;
	char code[16] = "";
	uint32_t code_id, cat_id;

	if (res->row > r->max_rows) {
		r->sum.past_end++;
		return 1;
	}
	if (st == 0 || res->row == 0) {
		r->sum.ignored++;
		return 1;
	}
	if (res->code > 0)
		snprintf(code, sizeof(code), "%d", res->code);
	if ((rec = rec_get(r, res->row)) == NULL || intern(r, code, &code_id) < 0 ||
	    intern(r, res->category, &cat_id) < 0)
		return -1;
	rec->status = (uint8_t)st;
	rec->result_at = to_u32(res->time);
	rec->code = code_id;
	rec->category = cat_id;
	return 0;
}

/* The timeline entry of the hour of t, created. NULL on ENOMEM. */
static struct hour *hour_get(struct report *r, uint32_t t)
{
	int64_t h = t / 3600;
	size_t lo = 0, hi = r->nhours;

	/* events come roughly in time order: try the last hour first */
	if (r->nhours > 0 && r->hours[r->nhours - 1].h == h)
		return &r->hours[r->nhours - 1];
	if (r->nhours > 0 && r->hours[r->nhours - 1].h < h)
		lo = r->nhours;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->hours[mid].h < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nhours && r->hours[lo].h == h)
		return &r->hours[lo];
	if (grow((void **)&r->hours, &r->caphours, r->nhours + 1, sizeof(*r->hours)) < 0)
		return NULL;
	memmove(r->hours + lo + 1, r->hours + lo, (r->nhours - lo) * sizeof(*r->hours));
	r->hours[lo] = (struct hour){ .h = h };
	r->nhours++;
	return &r->hours[lo];
}

/* The link entry of link_id, created with url. NULL on ENOMEM. */
static struct link *link_get(struct report *r, unsigned link_id, const char *url)
{
	size_t lo = 0, hi = r->nlinks;
	uint32_t url_id;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->links[mid].link_id < link_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nlinks && r->links[lo].link_id == link_id) {
		if (r->links[lo].url == 0 && url != NULL && *url != '\0') {
			if (intern(r, url, &url_id) < 0)
				return NULL;
			r->links[lo].url = url_id;
		}
		return &r->links[lo];
	}
	if (intern(r, url, &url_id) < 0 ||
	    grow((void **)&r->links, &r->caplinks, r->nlinks + 1, sizeof(*r->links)) < 0)
		return NULL;
	memmove(r->links + lo + 1, r->links + lo, (r->nlinks - lo) * sizeof(*r->links));
	r->links[lo] = (struct link){ .link_id = link_id, .url = url_id };
	r->nlinks++;
	return &r->links[lo];
}

int report_add_event(struct report *r, const struct event *ev)
{
	const char *type = ev->type ? ev->type : "";
	uint32_t t = to_u32(ev->time);
	struct rec *rec;
	struct hour *h;

	if (ev->row > r->max_rows && !r->finished) {
		r->sum.past_end++;
		return 1;
	}
	if (ev->row == 0 || r->finished ||
	    (strcmp(type, "open") != 0 && strcmp(type, "click") != 0 &&
	     strcmp(type, "unsubscribe") != 0 && strcmp(type, "bounce") != 0 &&
	     strcmp(type, "delayed") != 0 && strcmp(type, "complaint") != 0)) {
		r->sum.ignored++;
		return 1;
	}
	if ((rec = rec_get(r, (size_t)ev->row)) == NULL)
		return -1;
	rec->flags |= F_EVENTS;
	if (strcmp(type, "open") == 0) {
		if (ev->machine) {
			inc32(&rec->machine_opens);
			return 0;
		}
		inc32(&rec->opens);
		if (t != 0 && (rec->first_open == 0 || t < rec->first_open))
			rec->first_open = t;
		if (t != 0) {
			if ((h = hour_get(r, t)) == NULL)
				return -1;
			h->opens++;
		}
	} else if (strcmp(type, "click") == 0) {
		if (link_get(r, ev->link_id, ev->url) == NULL ||
		    grow((void **)&r->clicks, &r->capclicks, r->nclicks + 1,
		         sizeof(*r->clicks)) < 0)
			return -1;
		r->clicks[r->nclicks++] = (struct click){
			.row = (size_t)ev->row, .time = t, .link_id = ev->link_id,
			.machine = ev->machine != 0,
		};
	} else if (strcmp(type, "unsubscribe") == 0) {
		rec->flags |= F_UNSUB;
	} else if (strcmp(type, "bounce") == 0) {
		if (!(rec->flags & F_BOUNCE)) {
			if (intern(r, ev->status, &rec->ev_code) < 0 ||
			    intern(r, ev->category, &rec->ev_category) < 0)
				return -1;
			rec->flags |= F_BOUNCE;
		}
	} else if (strcmp(type, "complaint") == 0) {
		if (!(rec->flags & F_COMPLAINT)) {
			if (intern(r, ev->category, &rec->cmp_category) < 0)
				return -1;
			rec->flags |= F_COMPLAINT;
		}
	}
	/* delayed: noted (F_EVENTS) and nothing else */
	return 0;
}

/* ---- reading results.csv ---- */

enum res_col { R_TIME, R_STATUS, R_CODE, R_CATEGORY, R_ROW, R_COUNT };

static const char *const res_col_names[R_COUNT] = {
	"time", "status", "code", "category", "row",
};

struct res_rd {
	struct report *r;
	int map[64];          /* file column -> enum res_col, -1 unused */
	size_t ncols, field, line;
	struct buf fields;    /* the row's fields, NUL-separated */
	size_t off[R_COUNT];
	int have[R_COUNT];
	int oom;
};

/* "2026-11-22T08:15:00Z" -> time_t; 0 when malformed. */
static time_t parse_iso(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

	return end != NULL && *end == '\0' ? timegm(&tm) : 0;
}

/* One leading ' of the formula guard off (results.h). */
static const char *unguard(const char *s)
{
	if (s[0] == '\'' && (s[1] == '=' || s[1] == '+' || s[1] == '-' ||
	                     s[1] == '@' || s[1] == '\t' || s[1] == '\r'))
		return s + 1;
	return s;
}

static void res_field(void *s, size_t n, void *data)
{
	struct res_rd *d = data;
	size_t i = d->field++;

	if (d->line == 0) {
		if (i < sizeof(d->map) / sizeof(d->map[0])) {
			d->map[i] = -1;
			for (int c = 0; c < R_COUNT; c++)
				if (strlen(res_col_names[c]) == n &&
				    memcmp(res_col_names[c], s, n) == 0)
					d->map[i] = c;
			d->ncols = i + 1;
		}
		return;
	}
	if (i >= d->ncols || d->map[i] < 0)
		return;
	d->off[d->map[i]] = d->fields.len;
	d->have[d->map[i]] = 1;
	if (buf_append(&d->fields, s, n) < 0 || buf_putc(&d->fields, '\0') < 0)
		d->oom = 1;
}

static void res_row(int c, void *data)
{
	struct res_rd *d = data;
	struct results_row res = { 0 };
	const char *v[R_COUNT];
	char *end;

	(void)c;
	if (d->line++ == 0 || d->oom) {
		d->field = 0;
		return;
	}
	for (int k = 0; k < R_COUNT; k++)
		v[k] = d->have[k] && d->fields.data ? unguard(d->fields.data + d->off[k]) : "";
	res.time = parse_iso(v[R_TIME]);
	res.status = v[R_STATUS];
	res.code = (int)strtol(v[R_CODE], NULL, 10);
	res.category = v[R_CATEGORY];
	/* a torn last line (edm send writing now) has no row: ignored */
	errno = 0;
	res.row = strtoull(v[R_ROW], &end, 10);
	if (v[R_ROW][0] < '0' || v[R_ROW][0] > '9' || *end != '\0' || errno != 0)
		res.row = 0;
	if (report_add_result(d->r, &res) < 0)
		d->oom = 1;
	buf_reset(&d->fields);
	memset(d->have, 0, sizeof(d->have));
	d->field = 0;
}

int report_load_results(struct report *r, const char *path, char *err,
                        size_t errlen)
{
	struct res_rd d = { .r = r };
	struct csv_parser p;
	char chunk[65536];
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = 0;

	if (f == NULL)
		return edm_errf(err, errlen, "%s: %s", path, strerror(errno));
	if (csv_init(&p, CSV_APPEND_NULL) != 0) {
		fclose(f);
		return edm_errf(err, errlen, "out of memory");
	}
	while (!d.oom && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (csv_parse(&p, chunk, n, res_field, res_row, &d) != n) {
			rc = edm_errf(err, errlen, "%s: %s", path,
			              csv_strerror(csv_error(&p)));
			break;
		}
	if (rc == 0 && ferror(f))
		rc = edm_errf(err, errlen, "%s: read error", path);
	if (rc == 0 && !d.oom)
		csv_fini(&p, res_field, res_row, &d);
	if (rc == 0 && d.oom)
		rc = edm_errf(err, errlen, "%s: out of memory", path);
	if (rc == 0 && d.line > 0) {
		int found = 0;
		for (size_t i = 0; i < d.ncols; i++)
			found |= d.map[i] == R_ROW;
		if (!found)
			rc = edm_errf(err, errlen, "%s: no \"row\" column in the "
			              "header (written by an older edm send? run it "
			              "again to rebuild the file)", path);
	}
	csv_free(&p);
	fclose(f);
	buf_free(&d.fields);
	return rc;
}

/* ---- clicks: the machine rules ---- */

/* Clicks by row, then time (then link, for a stable order). */
static int click_cmp_time(const void *a, const void *b)
{
	const struct click *x = a, *y = b;

	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->link_id != y->link_id)
		return x->link_id < y->link_id ? -1 : 1;
	return 0;
}

/* One row's clicks by link, people's clicks first within a link. */
static int click_cmp_link(const void *a, const void *b)
{
	const struct click *x = a, *y = b;

	if (x->link_id != y->link_id)
		return x->link_id < y->link_id ? -1 : 1;
	return x->machine - y->machine;
}

/* |a - b| <= window, in seconds against milliseconds; never for an
 * unknown time (0). */
static int within(uint32_t a, uint32_t b, unsigned window_ms)
{
	uint64_t d = a > b ? (uint64_t)a - b : (uint64_t)b - a;

	return a != 0 && b != 0 && d * 1000 <= window_ms;
}

/*
 * Mark the machine clicks of one row's clicks c[0..n), sorted by time:
 * a click another link of the row was clicked within the window of (both
 * are marked). With the nearest different-link click on each side, found
 * in one pass each way, this is O(n): the nearest in index is the nearest
 * in time.
 */
static int mark_bursts(struct click *c, size_t n, unsigned window_ms)
{
	size_t *prev, *next;

	if (n < 2)
		return 0;
	if ((prev = malloc(2 * n * sizeof(*prev))) == NULL)
		return -1;
	next = prev + n;
	prev[0] = SIZE_MAX;
	for (size_t i = 1; i < n; i++)
		prev[i] = c[i - 1].link_id != c[i].link_id ? i - 1 : prev[i - 1];
	next[n - 1] = SIZE_MAX;
	for (size_t i = n - 1; i-- > 0;)
		next[i] = c[i + 1].link_id != c[i].link_id ? i + 1 : next[i + 1];
	for (size_t i = 0; i < n; i++)
		if ((prev[i] != SIZE_MAX && within(c[i].time, c[prev[i]].time, window_ms)) ||
		    (next[i] != SIZE_MAX && within(c[i].time, c[next[i]].time, window_ms)))
			c[i].machine = 1;
	free(prev);
	return 0;
}

/* Classify and tally one row's clicks c[0..n). 0 or -1. */
static int finish_row(struct report *r, struct click *c, size_t n)
{
	struct rec *rec = &r->recs[c[0].row - 1];
	uint32_t sent = rec->status == REPORT_DELIVERED ? rec->result_at : 0;
	struct link *l = NULL;
	struct hour *h;

	for (size_t i = 0; i < n; i++)
		if (r->window_ms != 0 && sent != 0 && c[i].time != 0 &&
		    (c[i].time <= sent || within(c[i].time, sent, r->window_ms)))
			c[i].machine = 1;
	if (r->window_ms != 0 && mark_bursts(c, n, r->window_ms) < 0)
		return -1;
	/* per link: human clicks first within each link, for "unique" */
	qsort(c, n, sizeof(*c), click_cmp_link);
	for (size_t i = 0; i < n; i++) {
		if (c[i].machine) {
			inc32(&rec->machine_clicks);
			continue;
		}
		inc32(&rec->clicks);
		if (c[i].time != 0 && (rec->first_click == 0 || c[i].time < rec->first_click))
			rec->first_click = c[i].time;
		if (c[i].time != 0) {
			if ((h = hour_get(r, c[i].time)) == NULL)
				return -1;
			h->clicks++;
		}
		if (l == NULL || l->link_id != c[i].link_id) {
			if ((l = link_get(r, c[i].link_id, NULL)) == NULL)
				return -1;
			l->unique++;
		}
		l->clicks++;
	}
	return 0;
}

int report_finish(struct report *r)
{
	size_t i = 0, j;

	if (r->finished)
		return 0;
	r->finished = 1;
	if (r->nclicks > 0)
		qsort(r->clicks, r->nclicks, sizeof(*r->clicks), click_cmp_time);
	while (i < r->nclicks) {
		for (j = i + 1; j < r->nclicks && r->clicks[j].row == r->clicks[i].row; j++)
			;
		if (finish_row(r, r->clicks + i, j - i) < 0)
			return -1;
		i = j;
	}
	/* the clicks are tallied: their memory goes back */
	free(r->clicks);
	r->clicks = NULL;
	r->nclicks = r->capclicks = 0;
	return 0;
}

/* ---- the rows ---- */

/* Length of a blank (space, tab, CR, LF, U+00A0, U+3000) at s[0..n). */
static size_t blank_at(const char *s, size_t n)
{
	if (n >= 1 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n'))
		return 1;
	if (n >= 2 && (unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0)
		return 2;
	if (n >= 3 && (unsigned char)s[0] == 0xE3 && (unsigned char)s[1] == 0x80 &&
	    (unsigned char)s[2] == 0x80)
		return 3;
	return 0;
}

/* Length of a blank ending at s[n). */
static size_t blank_before(const char *s, size_t n)
{
	if (n >= 1 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
	               s[n - 1] == '\n'))
		return 1;
	if (n >= 2 && blank_at(s + n - 2, 2) == 2)
		return 2;
	if (n >= 3 && blank_at(s + n - 3, 3) == 3)
		return 3;
	return 0;
}

/* Count a sent row into its domain's line. 0 or -1. */
static int tally_domain(struct report *r, const char *email, size_t len,
                        const struct report_line *l)
{
	struct addr a;
	char detail[128];
	const char *dom = "(invalid address)";
	struct dom_count *d;
	int64_t id;

	if (addr_parse(email, len, &a, detail, sizeof(detail)) == 0)
		dom = addr_domain(&a);
	if ((id = strmap_id(&r->doms, dom, strlen(dom))) < 0)
		return -1;
	if ((size_t)id >= r->capdomc) {
		size_t old = r->capdomc;
		if (grow((void **)&r->domc, &r->capdomc, (size_t)id + 1, sizeof(*r->domc)) < 0)
			return -1;
		memset(r->domc + old, 0, (r->capdomc - old) * sizeof(*r->domc));
	}
	d = &r->domc[id];
	d->sent++;
	if (l->status == REPORT_DELIVERED || l->status == REPORT_COMPLAINED)
		d->delivered++;
	if (l->status == REPORT_BOUNCED)
		d->bounced++;
	if (l->opens > 0)
		d->opened++;
	return 0;
}

int report_row(struct report *r, size_t row, const char *email, size_t len,
               struct report_line *out)
{
	static const struct rec none;
	const struct rec *rec = row >= 1 && row <= r->nrecs ? &r->recs[row - 1] : &none;
	struct report_summary *s = &r->sum;
	enum report_status base = (enum report_status)rec->status;
	uint32_t cat = rec->category;
	size_t k;

	memset(out, 0, sizeof(*out));
	out->row = row;
	while ((k = blank_at(email, len)) > 0) {
		email += k;
		len -= k;
	}
	while ((k = blank_before(email, len)) > 0)
		len -= k;
	out->email = email;
	out->email_len = len;
	out->status = base;
	out->code = str_of(r, rec->code);
	if (base == REPORT_DELIVERED) {
		out->sent_at = rec->result_at;
		if (rec->flags & F_COMPLAINT) {
			out->status = REPORT_COMPLAINED;
			cat = rec->cmp_category;
		} else if (rec->flags & F_BOUNCE) {
			out->status = REPORT_BOUNCED;
			out->async = 1;
			out->code = str_of(r, rec->ev_code);
			cat = rec->ev_category;
		}
	}
	out->category = str_of(r, cat);
	out->first_open_at = rec->first_open;
	out->first_click_at = rec->first_click;
	out->opens = rec->opens;
	out->clicks = rec->clicks;
	out->machine_opens = rec->machine_opens;
	out->machine_clicks = rec->machine_clicks;
	out->unsubscribed = (rec->flags & F_UNSUB) != 0;

	/* the summary */
	s->recipients++;
	switch (out->status) {
	case REPORT_PENDING: s->pending++; break;
	case REPORT_DELIVERED: s->delivered++; break;
	case REPORT_EXPIRED: s->expired++; break;
	case REPORT_SUPPRESSED: s->suppressed++; break;
	case REPORT_SKIPPED: s->skipped++; break;
	case REPORT_COMPLAINED: s->complained++; s->delivered++; break;
	case REPORT_BOUNCED:
		s->bounced++;
		s->async_bounced += out->async;
		if (cat == 0)
			cat = r->id_other;
		if (cat >= r->ncat_counts) {
			size_t old = r->ncat_counts;
			if (grow((void **)&r->cat_counts, &r->ncat_counts, (size_t)cat + 1,
			         sizeof(*r->cat_counts)) < 0)
				return -1;
			memset(r->cat_counts + old, 0, (r->ncat_counts - old) * sizeof(size_t));
		}
		r->cat_counts[cat]++;
		break;
	default: break;
	}
	s->opened += out->opens > 0;
	s->opened_any += out->opens > 0 || out->machine_opens > 0;
	s->clicked += out->clicks > 0;
	s->clicked_any += out->clicks > 0 || out->machine_clicks > 0;
	s->unsubscribed += out->unsubscribed;
	s->opens += out->opens;
	s->clicks += out->clicks;
	s->machine_opens += out->machine_opens;
	s->machine_clicks += out->machine_clicks;
	if (base == REPORT_DELIVERED || base == REPORT_BOUNCED || base == REPORT_EXPIRED) {
		s->sent++;
		if (tally_domain(r, email, len, out) < 0)
			return -1;
	}
	return 0;
}

/* ---- the summary ---- */

/* Categories: most first, then by name. */
static int count_cmp(const void *a, const void *b)
{
	const struct report_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Domains: most sent first, then by name. */
static int domain_cmp(const void *a, const void *b)
{
	const struct report_domain *x = a, *y = b;

	if (x->sent != y->sent)
		return x->sent > y->sent ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

/* Links: most clicks, then most unique clicks, then link number. */
static int link_cmp(const void *a, const void *b)
{
	const struct report_link *x = a, *y = b;

	if (x->clicks != y->clicks)
		return x->clicks > y->clicks ? -1 : 1;
	if (x->unique != y->unique)
		return x->unique > y->unique ? -1 : 1;
	return x->link_id < y->link_id ? -1 : x->link_id > y->link_id;
}

/* The start of the bucket holding t: hours and days on UTC boundaries,
 * weeks from Monday. */
static int64_t bucket_start(int64_t t, unsigned secs)
{
	int64_t off = secs == 604800 ? 4 * 86400 : 0; /* 1970-01-05 was a Monday */
	int64_t q = t - off;

	return (q >= 0 ? q / secs : -((-q + secs - 1) / secs)) * secs + off;
}

/* Fill the timeline from the hours with events. 0 or -1. */
static int build_timeline(struct report *r)
{
	struct report_summary *s = &r->sum;
	static const unsigned sizes[] = { 3600, 86400, 604800, 2592000, 31536000 };
	int64_t first, last, b0, b1;
	size_t k = 0, n;

	s->nbuckets = 0;
	s->bucket_secs = 3600;
	if (r->nhours == 0)
		return 0;
	first = r->hours[0].h * 3600;
	last = r->hours[r->nhours - 1].h * 3600;
	if (last - first > 3 * 86400)
		k = 1;
	for (;; k++) {
		b0 = bucket_start(first, sizes[k]);
		b1 = bucket_start(last, sizes[k]);
		n = (size_t)((b1 - b0) / sizes[k]) + 1;
		if (n <= 400 || k + 1 == sizeof(sizes) / sizeof(sizes[0]))
			break;
	}
	free(r->out_buckets);
	if ((r->out_buckets = calloc(n, sizeof(*r->out_buckets))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		r->out_buckets[i].start = (time_t)(b0 + (int64_t)i * sizes[k]);
	for (size_t i = 0; i < r->nhours; i++) {
		size_t b = (size_t)((bucket_start(r->hours[i].h * 3600, sizes[k]) - b0) / sizes[k]);
		if (b < n) {
			r->out_buckets[b].opens += r->hours[i].opens;
			r->out_buckets[b].clicks += r->hours[i].clicks;
		}
	}
	s->timeline = r->out_buckets;
	s->nbuckets = n;
	s->bucket_secs = sizes[k];
	return 0;
}

const struct report_summary *report_summary(struct report *r)
{
	struct report_summary *s = &r->sum;
	size_t n;

	free(r->out_cats);
	r->out_cats = NULL;
	n = 0;
	for (size_t i = 0; i < r->ncat_counts; i++)
		n += r->cat_counts[i] > 0;
	if (n > 0 && (r->out_cats = calloc(n, sizeof(*r->out_cats))) == NULL)
		return NULL;
	n = 0;
	for (size_t i = 0; i < r->ncat_counts; i++)
		if (r->cat_counts[i] > 0)
			r->out_cats[n++] = (struct report_count){ str_of(r, (uint32_t)i),
			                                          r->cat_counts[i] };
	if (n > 0)
		qsort(r->out_cats, n, sizeof(*r->out_cats), count_cmp);
	s->categories = r->out_cats;
	s->ncategories = n;

	free(r->out_doms);
	r->out_doms = NULL;
	n = r->doms.n;
	if (n > 0 && (r->out_doms = calloc(n, sizeof(*r->out_doms))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		r->out_doms[i] = (struct report_domain){
			r->doms.keys[i], r->domc[i].sent, r->domc[i].delivered,
			r->domc[i].bounced, r->domc[i].opened,
		};
	if (n > 0)
		qsort(r->out_doms, n, sizeof(*r->out_doms), domain_cmp);
	s->domains = r->out_doms;
	s->ndomains_total = n;
	s->ndomains = n < REPORT_TOP_DOMAINS ? n : REPORT_TOP_DOMAINS;

	free(r->out_links);
	r->out_links = NULL;
	n = 0;
	if (r->nlinks > 0 &&
	    (r->out_links = calloc(r->nlinks, sizeof(*r->out_links))) == NULL)
		return NULL;
	for (size_t i = 0; i < r->nlinks; i++)
		if (r->links[i].clicks > 0)
			r->out_links[n++] = (struct report_link){
				r->links[i].link_id, str_of(r, r->links[i].url),
				r->links[i].clicks, r->links[i].unique,
			};
	if (n > 0)
		qsort(r->out_links, n, sizeof(*r->out_links), link_cmp);
	s->links = r->out_links;
	s->nlinks_total = n;
	s->nlinks = n < REPORT_TOP_LINKS ? n : REPORT_TOP_LINKS;

	if (build_timeline(r) < 0)
		return NULL;
	return s;
}

/* ---- report_columns ---- */

/* The column named 'want': exact, else ignoring case and blanks. */
static int find_column(const struct csv_row *h, const char *want)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcmp(h->fields[i], want) == 0)
			return (int)i;
	for (size_t i = 0; i < h->nfields; i++) {
		const char *s = h->fields[i];
		size_t n = h->lens[i];

		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == strlen(want) && strncasecmp(s, want, n) == 0)
			return (int)i;
	}
	return -1;
}

int report_columns_resolve(const struct csv_row *header,
                           char *const *names, size_t n, size_t *idx,
                           char *err, size_t errlen)
{
	for (size_t k = 0; k < n; k++) {
		int c = find_column(header, names[k]);
		char cols[512];
		size_t used = 0;

		if (c >= 0) {
			idx[k] = (size_t)c;
			continue;
		}
		cols[0] = '\0';
		for (size_t i = 0; i < header->nfields && used < sizeof(cols); i++) {
			int w = snprintf(cols + used, sizeof(cols) - used, "%s\"%s\"",
			                 i ? ", " : "", header->fields[i]);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		return edm_errf(err, errlen, "[campaign] report_columns: no column "
		                "\"%s\" in the list's header row (columns: %s)",
		                names[k], cols);
	}
	return 0;
}

/* ---- report.csv ---- */

static const char *const our_columns[] = {
	"email", "status", "category", "code", "sent_at", "opened", "opens",
	"first_open_at", "clicked", "clicks", "first_click_at", "unsubscribed",
	"async", "machine_opens", "machine_clicks",
};

/* Append s[0..n) as valid UTF-8 (a run of bad bytes as one U+FFFD). */
static int put_utf8(struct buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t ok = utf8_check(u + i, n - i);

		if (buf_append(out, s + i, ok) < 0)
			return -1;
		i += ok;
		if (i < n) {
			if (buf_puts(out, "\xEF\xBF\xBD") < 0)
				return -1;
			i = utf8_bad_run_end(u, n, i);
		}
	}
	return 0;
}

/* A text field through results_field(), made valid UTF-8 first. */
static int put_text(struct buf *out, const char *s, size_t n)
{
	struct buf tmp = { 0 };
	int rc;

	if (s[n] == '\0' && utf8_check((const unsigned char *)s, n) == n)
		return results_field(out, s);
	if (put_utf8(&tmp, s, n) < 0 || buf_putc(&tmp, '\0') < 0) {
		buf_free(&tmp);
		return -1;
	}
	rc = results_field(out, tmp.data);
	buf_free(&tmp);
	return rc;
}

static int put_str(struct buf *out, const char *s)
{
	return put_text(out, s ? s : "", s ? strlen(s) : 0);
}

static int put_eol(struct buf *out, int crlf)
{
	return buf_puts(out, crlf ? "\r\n" : "\n");
}

int report_csv_header(struct buf *out, const char *const *names, size_t n,
                      int crlf)
{
	int rc = buf_puts(out, REPORT_HEADER);

	for (size_t k = 0; k < n && rc == 0; k++) {
		int clash = 0;

		for (size_t i = 0; i < sizeof(our_columns) / sizeof(*our_columns); i++)
			clash |= strcasecmp(names[k], our_columns[i]) == 0;
		rc |= buf_putc(out, ',');
		if (clash) {
			struct buf tmp = { 0 };
			rc |= buf_puts(&tmp, "list_");
			rc |= buf_puts(&tmp, names[k]);
			if (rc == 0)
				rc |= put_str(out, tmp.data);
			buf_free(&tmp);
		} else {
			rc |= put_str(out, names[k]);
		}
	}
	rc |= put_eol(out, crlf);
	return rc ? -1 : 0;
}

static int put_time(struct buf *out, time_t t)
{
	char s[21];

	results_time(t, s);
	return buf_puts(out, s);
}

int report_csv_line(struct buf *out, const struct report_line *l,
                    const char *const *fields, size_t n, int crlf)
{
	size_t mark = out->len;
	int rc = 0;

	rc |= put_text(out, l->email, l->email_len);
	rc |= buf_putc(out, ',');
	rc |= put_str(out, report_status_name(l->status));
	rc |= buf_putc(out, ',');
	rc |= put_str(out, l->category);
	rc |= buf_putc(out, ',');
	rc |= put_str(out, l->code);
	rc |= buf_putc(out, ',');
	rc |= put_time(out, l->sent_at);
	rc |= buf_printf(out, ",%d,%u,", l->opens > 0, l->opens);
	rc |= put_time(out, l->first_open_at);
	rc |= buf_printf(out, ",%d,%u,", l->clicks > 0, l->clicks);
	rc |= put_time(out, l->first_click_at);
	rc |= buf_printf(out, ",%d,%d,%u,%u", l->unsubscribed, l->async,
	                 l->machine_opens, l->machine_clicks);
	for (size_t k = 0; k < n; k++) {
		rc |= buf_putc(out, ',');
		rc |= put_str(out, fields[k]);
	}
	rc |= put_eol(out, crlf);
	if (rc != 0) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}

/* ---- numbers for people ---- */

/* "1,234,567" */
static void fmt_count(char out[32], size_t n)
{
	char tmp[32];
	int len = snprintf(tmp, sizeof(tmp), "%zu", n), j = 0;

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[j++] = ',';
		out[j++] = tmp[i];
	}
	out[j] = '\0';
}

/* "12.3%", or 'none' when the base is 0. */
static void fmt_pct(char out[16], size_t num, size_t den, const char *none)
{
	if (den == 0)
		snprintf(out, 16, "%s", none);
	else
		snprintf(out, 16, "%.1f%%", 100.0 * (double)num / (double)den);
}

/* ---- report.html ---- */

/* Text for HTML: valid UTF-8, & < > " ' escaped, control characters as
 * U+FFFD (they have no business in a report). */
static int html_esc(struct buf *b, const char *s)
{
	struct buf tmp = { 0 };
	int rc = 0;

	if (s == NULL)
		return 0;
	if (put_utf8(&tmp, s, strlen(s)) < 0) {
		buf_free(&tmp);
		return -1;
	}
	for (size_t i = 0; i < tmp.len && rc == 0; i++) {
		unsigned char c = (unsigned char)tmp.data[i];

		switch (c) {
		case '&': rc = buf_puts(b, "&amp;"); break;
		case '<': rc = buf_puts(b, "&lt;"); break;
		case '>': rc = buf_puts(b, "&gt;"); break;
		case '"': rc = buf_puts(b, "&quot;"); break;
		case '\'': rc = buf_puts(b, "&#39;"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				rc = buf_puts(b, "\xEF\xBF\xBD");
			else
				rc = buf_putc(b, (char)c);
		}
	}
	buf_free(&tmp);
	return rc;
}

/* s cut to at most 'max' characters, with an ellipsis when cut. */
static int html_esc_cut(struct buf *b, const char *s, size_t max)
{
	size_t i = 0, chars = 0, n = strlen(s);
	char *cut;
	int rc;

	while (i < n && chars < max) {
		size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
		i += k ? k : 1;
		chars++;
	}
	if (i >= n)
		return html_esc(b, s);
	if ((cut = strndup(s, i)) == NULL)
		return -1;
	rc = html_esc(b, cut);
	free(cut);
	return rc | buf_puts(b, "\xE2\x80\xA6");
}

static const char *const months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	"Nov", "Dec",
};

/* A bucket's label for people: "Nov 22 08:00", "Nov 22", "Nov 2026". */
static void fmt_bucket(char out[32], time_t t, unsigned secs)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 32, "?");
		return;
	}
	if (secs < 86400)
		snprintf(out, 32, "%s %d %02d:00", months[tm.tm_mon], tm.tm_mday, tm.tm_hour);
	else if (secs < 2592000)
		snprintf(out, 32, "%s %d", months[tm.tm_mon], tm.tm_mday);
	else if (secs < 31536000)
		snprintf(out, 32, "%s %d", months[tm.tm_mon], tm.tm_year + 1900);
	else
		snprintf(out, 32, "%d", tm.tm_year + 1900);
}

static const char html_head[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	/* nothing to run and nothing to fetch, even if an escape were missed */
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	"style-src 'unsafe-inline'; img-src data:\">\n"
	"<meta name=\"referrer\" content=\"no-referrer\">\n";

static const char html_style[] =
	"<style>\n"
	":root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f4f5f7;"
	"--card:#fff;--blue:#2563eb;--green:#16a34a;--amber:#f59e0b;"
	"--red:#dc2626;--violet:#7c3aed;--slate:#64748b}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;background:var(--bg);color:var(--ink);"
	"font:14px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\","
	"\"Liberation Sans\",\"Helvetica Neue\",Arial,sans-serif}\n"
	"main{max-width:1080px;margin:0 auto;padding:32px 24px 40px}\n"
	"header{margin-bottom:20px}\n"
	"header .eyebrow{color:var(--muted);font-size:12px;text-transform:uppercase;"
	"letter-spacing:.08em;margin:0}\n"
	"h1{font-size:28px;line-height:1.2;margin:4px 0 6px;word-break:break-word}\n"
	"header .meta{color:var(--muted);margin:0}\n"
	".kpis{display:grid;grid-template-columns:repeat(7,1fr);gap:10px;margin:0 0 16px}\n"
	"@media (max-width:900px){.kpis{grid-template-columns:repeat(auto-fit,minmax(130px,1fr))}}\n"
	".kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;"
	"padding:12px 12px;border-top:3px solid var(--c,var(--slate))}\n"
	".kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;"
	"letter-spacing:.05em}\n"
	".kpi .value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;"
	"line-height:1.3}\n"
	".kpi .sub{color:var(--muted);font-size:11.5px;line-height:1.35}\n"
	".card{background:var(--card);border:1px solid var(--line);border-radius:10px;"
	"padding:18px 22px;margin:0 0 16px}\n"
	".card h2{font-size:16px;margin:0 0 2px}\n"
	".card .note{color:var(--muted);font-size:12px;margin:0 0 12px}\n"
	".grid2{display:grid;grid-template-columns:1fr 1fr;gap:28px;align-items:start}\n"
	".card h3{font-size:12px;color:var(--muted);text-transform:uppercase;"
	"letter-spacing:.05em;margin:8px 0 4px}\n"
	"td.note-c{color:var(--muted)}\n"
	"@media (max-width:760px){.grid2{grid-template-columns:1fr}}\n"
	"table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}\n"
	"th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);"
	"vertical-align:top}\n"
	"th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;"
	"letter-spacing:.04em}\n"
	"tr:last-child td{border-bottom:none}\n"
	".n{text-align:right;white-space:nowrap}\n"
	"td.url,td.dom{word-break:break-all}\n"
	".sub-row td:first-child{padding-left:26px;color:var(--muted)}\n"
	".empty{color:var(--muted);margin:8px 0}\n"
	"svg{display:block;width:100%;height:auto}\n"
	"svg text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\","
	"\"Liberation Sans\",Arial,sans-serif;font-size:13px;fill:var(--ink)}\n"
	"svg text.muted{fill:var(--muted);font-size:12px}\n"
	"footer{color:var(--muted);font-size:12px;margin-top:20px}\n"
	"footer p{margin:4px 0}\n"
	"@media print{body{background:#fff}.card,.kpi{break-inside:avoid}}\n"
	"</style>\n"
	"</head>\n";

/* One KPI card. */
static int html_kpi(struct buf *b, const char *color, const char *label,
                    size_t value, const char *sub)
{
	char n[32];
	int rc = 0;

	fmt_count(n, value);
	rc |= buf_printf(b, "<div class=\"kpi\" style=\"--c:%s\"><div class=\"label\">",
	                 color);
	rc |= html_esc(b, label);
	rc |= buf_printf(b, "</div><div class=\"value\">%s</div><div class=\"sub\">", n);
	rc |= html_esc(b, sub);
	rc |= buf_puts(b, "</div></div>\n");
	return rc;
}

/* The delivery funnel: sent -> delivered -> opened -> clicked, bars to
 * the scale of sent, each with its share of the step before. */
static int html_funnel(struct buf *b, const struct report_summary *s)
{
	const struct { const char *label, *color; size_t n, prev; const char *of; } st[4] = {
		{ "Sent", "var(--slate)", s->sent, 0, "" },
		{ "Delivered", "var(--green)", s->delivered, s->sent, "of sent" },
		{ "Opened", "var(--blue)", s->opened, s->delivered, "of delivered" },
		{ "Clicked", "var(--violet)", s->clicked, s->opened, "of opened" },
	};
	const double x0 = 120, width = 640;
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"funnel\"><h2>Delivery funnel</h2>"
	                  "<p class=\"note\">Each step as a share of the one before; "
	                  "opens and clicks by people (machine ones left out).</p>\n");
	rc |= buf_puts(b, "<svg viewBox=\"0 0 1000 184\" role=\"img\" "
	                  "aria-label=\"Delivery funnel\">\n");
	for (int i = 0; i < 4; i++) {
		double y = 6 + i * 44;
		double w = s->sent ? width * (double)st[i].n / (double)s->sent : 0;
		char n[32], pct[16];

		if (w > 0 && w < 3)
			w = 3;
		fmt_count(n, st[i].n);
		rc |= buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" "
		                 "font-weight=\"600\">%s</text>\n", x0 - 14, y + 22, st[i].label);
		rc |= buf_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"32\" "
		                 "rx=\"5\" fill=\"#f1f3f6\"/>\n", x0, y, width);
		if (w > 0)
			rc |= buf_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"32\" "
			                 "rx=\"5\" fill=\"%s\"/>\n", x0, y, w, st[i].color);
		rc |= buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\"><tspan font-weight=\"650\">%s</tspan>",
		                 x0 + width + 14, y + 22, n);
		if (i > 0) {
			fmt_pct(pct, st[i].n, st[i].prev, "\xE2\x80\x93");
			rc |= buf_printf(b, "<tspan class=\"muted\" dx=\"8\">%s %s</tspan>",
			                 pct, st[i].of);
		}
		rc |= buf_puts(b, "</text>\n");
	}
	rc |= buf_puts(b, "</svg></section>\n");
	return rc;
}

/* Bounces by category: horizontal bars. */
static int html_bounces(struct buf *b, const struct report_summary *s)
{
	size_t max = 0;
	const double x0 = 250, width = 620;
	char n0[32];
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"bounces\"><h2>Bounces by category</h2>");
	if (s->ncategories == 0)
		return rc | buf_puts(b, "<p class=\"empty\">No bounces.</p></section>\n");
	fmt_count(n0, s->async_bounced);
	rc |= buf_printf(b, "<p class=\"note\">At once or after delivery "
	                 "(%s after), by the categories of docs/bounces.md.</p>\n", n0);
	for (size_t i = 0; i < s->ncategories; i++)
		if (s->categories[i].n > max)
			max = s->categories[i].n;
	rc |= buf_printf(b, "<svg viewBox=\"0 0 1000 %zu\" role=\"img\" "
	                 "aria-label=\"Bounces by category\">\n", s->ncategories * 30 + 6);
	for (size_t i = 0; i < s->ncategories; i++) {
		double y = 4 + (double)i * 30;
		double w = width * (double)s->categories[i].n / (double)max;
		char n[32];

		fmt_count(n, s->categories[i].n);
		rc |= buf_puts(b, "<g><title>");
		rc |= html_esc(b, s->categories[i].name);
		rc |= buf_printf(b, ": %s</title>", n);
		rc |= buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">",
		                 x0 - 10, y + 17);
		rc |= html_esc_cut(b, s->categories[i].name, 32);
		rc |= buf_printf(b, "</text><rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" "
		                 "height=\"22\" rx=\"4\" fill=\"var(--red)\"/>",
		                 x0, y, w < 3 ? 3 : w);
		rc |= buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" font-weight=\"600\">%s</text></g>\n",
		                 x0 + (w < 3 ? 3 : w) + 8, y + 17, n);
	}
	rc |= buf_puts(b, "</svg></section>\n");
	return rc;
}

/* A round step for an axis from 0 to max with about 4 ticks. */
static size_t nice_step(size_t max)
{
	size_t raw = (max + 3) / 4, p = 1;

	if (raw <= 1)
		return 1;
	while (p * 10 <= raw)
		p *= 10;
	if (p >= raw)
		return p;
	if (2 * p >= raw)
		return 2 * p;
	if (5 * p >= raw)
		return 5 * p;
	return 10 * p;
}

/* Opens and clicks over time: paired columns per hour (or day). */
static int html_timeline(struct buf *b, const struct report_summary *s)
{
	const double x0 = 56, x1 = 984, y0 = 34, y1 = 232;
	size_t max = 0, step, top, every;
	double bw;
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"timeline\"><h2>Opens and clicks over time</h2>");
	if (s->nbuckets == 0)
		return rc | buf_puts(b, "<p class=\"empty\">No opens or clicks recorded yet.</p></section>\n");
	rc |= buf_printf(b, "<p class=\"note\">By people, per %s (UTC).</p>\n",
	                 s->bucket_secs == 3600 ? "hour" : s->bucket_secs == 86400 ? "day" :
	                 s->bucket_secs == 604800 ? "week" : s->bucket_secs == 2592000 ?
	                 "30 days" : "365 days");
	for (size_t i = 0; i < s->nbuckets; i++) {
		if (s->timeline[i].opens > max)
			max = s->timeline[i].opens;
		if (s->timeline[i].clicks > max)
			max = s->timeline[i].clicks;
	}
	step = nice_step(max);
	top = (max + step - 1) / step * step;
	if (top == 0)
		top = step;
	rc |= buf_puts(b, "<svg viewBox=\"0 0 1000 262\" role=\"img\" "
	                  "aria-label=\"Opens and clicks over time\">\n");
	/* legend */
	rc |= buf_printf(b, "<rect x=\"%.0f\" y=\"6\" width=\"12\" height=\"12\" rx=\"2\" "
	                 "fill=\"var(--blue)\"/><text x=\"%.0f\" y=\"17\">Opens</text>"
	                 "<rect x=\"%.0f\" y=\"6\" width=\"12\" height=\"12\" rx=\"2\" "
	                 "fill=\"var(--amber)\"/><text x=\"%.0f\" y=\"17\">Clicks</text>\n",
	                 x1 - 150, x1 - 132, x1 - 70, x1 - 52);
	for (size_t v = 0; v <= top; v += step) {
		double y = y1 - (y1 - y0) * (double)v / (double)top;
		char n[32];

		fmt_count(n, v);
		rc |= buf_printf(b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
		                 "stroke=\"%s\"/><text class=\"muted\" x=\"%.0f\" y=\"%.1f\" "
		                 "text-anchor=\"end\">%s</text>\n", x0, x1, y, y,
		                 v == 0 ? "#9ca3af" : "#eceef1", x0 - 8, y + 4, n);
	}
	bw = (x1 - x0) / (double)s->nbuckets;
	every = (s->nbuckets + 7) / 8;
	for (size_t i = 0; i < s->nbuckets; i++) {
		const struct report_bucket *k = &s->timeline[i];
		double x = x0 + (double)i * bw;
		double ho = (y1 - y0) * (double)k->opens / (double)top;
		double hc = (y1 - y0) * (double)k->clicks / (double)top;
		double cw = (bw * 0.76) / 2 > 26 ? 26 : (bw * 0.76) / 2;
		double gap = (bw - 2 * cw) / 2;
		char label[32];

		fmt_bucket(label, k->start, s->bucket_secs);
		if (k->opens > 0)
			rc |= buf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
			                 "fill=\"var(--blue)\"><title>%s: %zu open%s</title></rect>\n",
			                 x + gap, y1 - ho, cw, ho, label, k->opens,
			                 k->opens == 1 ? "" : "s");
		if (k->clicks > 0)
			rc |= buf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
			                 "fill=\"var(--amber)\"><title>%s: %zu click%s</title></rect>\n",
			                 x + gap + cw, y1 - hc, cw, hc, label, k->clicks,
			                 k->clicks == 1 ? "" : "s");
		if (i % every == 0)
			rc |= buf_printf(b, "<text class=\"muted\" x=\"%.1f\" y=\"%.0f\" "
			                 "text-anchor=\"middle\">%s</text>\n", x + bw / 2, y1 + 20, label);
	}
	rc |= buf_puts(b, "</svg></section>\n");
	return rc;
}

/* One row of the numbers table. */
static int html_num_row(struct buf *b, const char *cls, const char *label,
                        size_t n, const char *note)
{
	char v[32];
	int rc = 0;

	fmt_count(v, n);
	rc |= buf_printf(b, "<tr%s><td>", cls);
	rc |= html_esc(b, label);
	rc |= buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"note-c\">", v);
	rc |= html_esc(b, note);
	rc |= buf_puts(b, "</td></tr>\n");
	return rc;
}

/* The summary numbers. */
static int html_numbers(struct buf *b, const struct report_summary *s)
{
	char p[16], note[96], c[32];
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"numbers\"><h2>The numbers</h2>"
	                  "<div class=\"grid2\"><div><h3>Delivery</h3><table><tbody>\n");
	rc |= html_num_row(b, "", "Recipients", s->recipients, "rows in the list");
	rc |= html_num_row(b, "", "Sent", s->sent, "delivered + bounced + expired");
	fmt_pct(p, s->delivered, s->sent, "\xE2\x80\x93");
	snprintf(note, sizeof(note), "%s of sent", p);
	rc |= html_num_row(b, "", "Delivered", s->delivered, note);
	fmt_pct(p, s->bounced, s->sent, "\xE2\x80\x93");
	fmt_count(c, s->async_bounced);
	snprintf(note, sizeof(note), "%s of sent; %s after delivery", p, c);
	rc |= html_num_row(b, "", "Bounced", s->bounced, note);
	for (size_t i = 0; i < s->ncategories; i++)
		rc |= html_num_row(b, " class=\"sub-row\"", s->categories[i].name,
		                   s->categories[i].n, "");
	rc |= html_num_row(b, "", "Expired", s->expired, "deferred until retries ran out");
	rc |= html_num_row(b, "", "Pending", s->pending, "no outcome yet");
	rc |= html_num_row(b, "", "Suppressed", s->suppressed, "on the suppression list");
	rc |= html_num_row(b, "", "Skipped", s->skipped, "unusable rows");
	rc |= buf_puts(b, "</tbody></table></div><div><h3>Engagement</h3><table><tbody>\n");
	fmt_pct(p, s->complained, s->delivered, "\xE2\x80\x93");
	snprintf(note, sizeof(note), "%s of delivered", p);
	rc |= html_num_row(b, "", "Complaints", s->complained, note);
	fmt_pct(p, s->opened, s->delivered, "\xE2\x80\x93");
	fmt_count(c, s->opened_any);
	snprintf(note, sizeof(note), "%s of delivered; %s with machine opens", p, c);
	rc |= html_num_row(b, "", "Unique opens", s->opened, note);
	fmt_pct(p, s->clicked, s->delivered, "\xE2\x80\x93");
	fmt_count(c, s->clicked_any);
	snprintf(note, sizeof(note), "%s of delivered; %s with machine clicks", p, c);
	rc |= html_num_row(b, "", "Unique clicks", s->clicked, note);
	fmt_pct(p, s->clicked, s->opened, "\xE2\x80\x93");
	rc |= buf_printf(b, "<tr><td>Click-to-open rate</td><td class=\"n\">%s</td>"
	                 "<td class=\"note-c\">unique clicks / unique opens</td></tr>\n", p);
	fmt_pct(p, s->unsubscribed, s->delivered, "\xE2\x80\x93");
	snprintf(note, sizeof(note), "%s of delivered", p);
	rc |= html_num_row(b, "", "Unsubscribes", s->unsubscribed, note);
	rc |= html_num_row(b, "", "Machine opens", s->machine_opens,
	                   "privacy proxies, prefetching");
	rc |= html_num_row(b, "", "Machine clicks", s->machine_clicks, "link scanners");
	rc |= buf_puts(b, "</tbody></table></div></div></section>\n");
	return rc;
}

/* The per-domain table. */
static int html_domains(struct buf *b, const struct report_summary *s)
{
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"domains\"><h2>Domains</h2>");
	if (s->ndomains == 0)
		return rc | buf_puts(b, "<p class=\"empty\">Nothing sent yet.</p></section>\n");
	rc |= buf_printf(b, "<p class=\"note\">The %zu domains with the most messages sent "
	                 "(of %zu). Opened: share of delivered.</p>\n", s->ndomains,
	                 s->ndomains_total);
	rc |= buf_puts(b, "<table><thead><tr><th>Domain</th><th class=\"n\">Sent</th>"
	                  "<th class=\"n\">Delivered</th><th class=\"n\">Bounced</th>"
	                  "<th class=\"n\">Opened</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < s->ndomains; i++) {
		const struct report_domain *d = &s->domains[i];
		char n[32], p1[16], p2[16], p3[16];

		fmt_count(n, d->sent);
		fmt_pct(p1, d->delivered, d->sent, "\xE2\x80\x93");
		fmt_pct(p2, d->bounced, d->sent, "\xE2\x80\x93");
		fmt_pct(p3, d->opened, d->delivered, "\xE2\x80\x93");
		rc |= buf_puts(b, "<tr><td class=\"dom\">");
		rc |= html_esc(b, d->domain);
		rc |= buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
		                 "<td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
		                 n, p1, p2, p3);
	}
	rc |= buf_puts(b, "</tbody></table></section>\n");
	return rc;
}

/* The top links. URLs are text here, never links: the page loads and
 * points to nothing. */
static int html_links(struct buf *b, const struct report_summary *s)
{
	int rc = 0;

	rc |= buf_puts(b, "<section class=\"card\" id=\"links\"><h2>Top links</h2>");
	if (s->nlinks == 0)
		return rc | buf_puts(b, "<p class=\"empty\">No clicks recorded yet.</p></section>\n");
	rc |= buf_printf(b, "<p class=\"note\">The %zu most clicked links (of %zu), clicks "
	                 "by people.</p>\n", s->nlinks, s->nlinks_total);
	rc |= buf_puts(b, "<table><thead><tr><th class=\"n\">#</th><th>Link</th>"
	                  "<th class=\"n\">Clicks</th><th class=\"n\">Unique clicks</th>"
	                  "</tr></thead><tbody>\n");
	for (size_t i = 0; i < s->nlinks; i++) {
		char c[32], u[32];

		fmt_count(c, s->links[i].clicks);
		fmt_count(u, s->links[i].unique);
		rc |= buf_printf(b, "<tr><td class=\"n\">%u</td><td class=\"url\">",
		                 s->links[i].link_id);
		rc |= *s->links[i].url ? html_esc(b, s->links[i].url)
		                       : buf_puts(b, "<span class=\"empty\">(no URL recorded)</span>");
		rc |= buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
		                 c, u);
	}
	rc |= buf_puts(b, "</tbody></table></section>\n");
	return rc;
}

int report_html(struct buf *b, const struct report_summary *s,
                const char *campaign, time_t generated)
{
	char when[40], n[32], p[16], sub[64];
	struct tm tm;
	int rc = 0;

	if (gmtime_r(&generated, &tm) != NULL)
		snprintf(when, sizeof(when), "%s %d, %d %02d:%02d UTC", months[tm.tm_mon],
		         tm.tm_mday, tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
	else
		snprintf(when, sizeof(when), "?");
	rc |= buf_puts(b, html_head);
	rc |= buf_puts(b, "<title>Campaign report: ");
	rc |= html_esc(b, campaign);
	rc |= buf_puts(b, "</title>\n");
	rc |= buf_puts(b, html_style);
	rc |= buf_puts(b, "<body><main>\n<header><p class=\"eyebrow\">Campaign report</p><h1>");
	rc |= html_esc(b, campaign);
	fmt_count(n, s->recipients);
	rc |= buf_printf(b, "</h1><p class=\"meta\">%s recipients &middot; generated %s"
	                 "</p></header>\n", n, when);

	rc |= buf_puts(b, "<div class=\"kpis\">\n");
	fmt_pct(p, s->sent, s->recipients, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of recipients", p);
	rc |= html_kpi(b, "var(--slate)", "Sent", s->sent, sub);
	fmt_pct(p, s->delivered, s->sent, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of sent", p);
	rc |= html_kpi(b, "var(--green)", "Delivered", s->delivered, sub);
	fmt_pct(p, s->opened, s->delivered, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of delivered", p);
	rc |= html_kpi(b, "var(--blue)", "Opened", s->opened, sub);
	fmt_pct(p, s->clicked, s->delivered, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of delivered", p);
	rc |= html_kpi(b, "var(--violet)", "Clicked", s->clicked, sub);
	fmt_pct(p, s->bounced, s->sent, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of sent", p);
	rc |= html_kpi(b, "var(--red)", "Bounced", s->bounced, sub);
	fmt_pct(p, s->unsubscribed, s->delivered, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of delivered", p);
	rc |= html_kpi(b, "var(--amber)", "Unsubscribed", s->unsubscribed, sub);
	fmt_pct(p, s->complained, s->delivered, "\xE2\x80\x93");
	snprintf(sub, sizeof(sub), "%s of delivered", p);
	rc |= html_kpi(b, "#9f1239", "Complaints", s->complained, sub);
	rc |= buf_puts(b, "</div>\n");

	rc |= html_funnel(b, s);
	rc |= html_timeline(b, s);
	rc |= html_bounces(b, s);
	rc |= html_numbers(b, s);
	rc |= html_domains(b, s);
	rc |= html_links(b, s);

	fmt_count(n, s->machine_opens);
	fmt_count(sub, s->machine_clicks);
	rc |= buf_printf(b, "<footer><p>Opens and clicks count people: %s machine opens "
	                 "(mail privacy proxies, prefetching) and %s machine clicks (link "
	                 "scanners: within the scanner window of sending, or on several "
	                 "links at once) are left out of them.</p>", n, sub);
	fmt_count(n, s->pending);
	if (s->pending > 0)
		rc |= buf_printf(b, "<p>%s %s no outcome yet (pending): the campaign "
		                 "is still sending, or waiting for retries.</p>", n,
		                 s->pending == 1 ? "recipient has" : "recipients have");
	fmt_count(n, s->past_end);
	if (s->past_end > 0)
		rc |= buf_printf(b, "<p>%s lines of results.csv or events.csv name rows "
		                 "past the end of the list (was it edited after sending?) and "
		                 "are not counted.</p>", n);
	rc |= buf_puts(b, "<p>Made by edm report. Times are UTC.</p></footer>\n"
	                  "</main></body></html>\n");
	return rc ? -1 : 0;
}

/* ---- the summary on the terminal ---- */

/* s with control characters (C0, DEL, C1) as '?', so data cannot drive
 * the terminal. */
static void put_term(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f) {
			fputc('?', f);
		} else if (c == 0xC2 && (unsigned char)s[1] >= 0x80 &&
		           (unsigned char)s[1] <= 0x9f) {
			fputc('?', f);
			s++;
		} else {
			fputc(c, f);
		}
	}
}

void report_print(FILE *f, const struct report_summary *s, const char *campaign)
{
	char p[16], p2[16], p3[16];

	fputs("edm report: campaign ", f);
	put_term(f, campaign);
	fprintf(f, ": %zu recipients\n", s->recipients);
	fprintf(f, "  %-18s %6zu  (delivered + bounced + expired)\n", "sent", s->sent);
	fmt_pct(p, s->delivered, s->sent, "-");
	fprintf(f, "  %-18s %6zu  %s of sent\n", "delivered", s->delivered, p);
	fmt_pct(p, s->bounced, s->sent, "-");
	fprintf(f, "  %-18s %6zu  %s of sent; %zu after delivery\n", "bounced",
	        s->bounced, p, s->async_bounced);
	for (size_t i = 0; i < s->ncategories; i++) {
		fputs("    ", f);
		put_term(f, s->categories[i].name);
		fprintf(f, "%*s %6zu\n",
		        (int)(strlen(s->categories[i].name) < 16 ?
		              16 - strlen(s->categories[i].name) : 0), "",
		        s->categories[i].n);
	}
	fprintf(f, "  %-18s %6zu  (deferred until retries ran out)\n", "expired", s->expired);
	fprintf(f, "  %-18s %6zu  (no outcome yet)\n", "pending", s->pending);
	fprintf(f, "  %-18s %6zu\n", "suppressed", s->suppressed);
	fprintf(f, "  %-18s %6zu\n", "skipped", s->skipped);
	fmt_pct(p, s->complained, s->delivered, "-");
	fprintf(f, "  %-18s %6zu  %s of delivered\n", "complained", s->complained, p);
	fmt_pct(p, s->opened, s->delivered, "-");
	fprintf(f, "  %-18s %6zu  %s of delivered; %zu including machine opens\n",
	        "opened", s->opened, p, s->opened_any);
	fmt_pct(p, s->clicked, s->delivered, "-");
	fprintf(f, "  %-18s %6zu  %s of delivered; %zu including machine clicks\n",
	        "clicked", s->clicked, p, s->clicked_any);
	fmt_pct(p, s->clicked, s->opened, "-");
	fprintf(f, "  %-18s %6s  (unique clicks / unique opens)\n", "click-to-open", p);
	fmt_pct(p, s->unsubscribed, s->delivered, "-");
	fprintf(f, "  %-18s %6zu  %s of delivered\n", "unsubscribed", s->unsubscribed, p);
	fprintf(f, "  %-18s %6zu  (privacy proxies, prefetching: not in opened)\n",
	        "machine opens", s->machine_opens);
	fprintf(f, "  %-18s %6zu  (link scanners: not in clicked)\n", "machine clicks",
	        s->machine_clicks);

	if (s->ndomains > 0) {
		fprintf(f, "domains by sent (top %zu of %zu):\n", s->ndomains, s->ndomains_total);
		fprintf(f, "  %-32s %7s %10s %8s %8s\n", "domain", "sent", "delivered",
		        "bounced", "opened");
		for (size_t i = 0; i < s->ndomains; i++) {
			const struct report_domain *d = &s->domains[i];
			size_t len = strlen(d->domain);

			fmt_pct(p, d->delivered, d->sent, "-");
			fmt_pct(p2, d->bounced, d->sent, "-");
			fmt_pct(p3, d->opened, d->delivered, "-");
			fputs("  ", f);
			put_term(f, d->domain);
			fprintf(f, "%*s %7zu %10s %8s %8s\n", (int)(len < 32 ? 32 - len : 0), "",
			        d->sent, p, p2, p3);
		}
	}
	if (s->nlinks > 0) {
		fprintf(f, "links by clicks (top %zu of %zu):\n", s->nlinks, s->nlinks_total);
		fprintf(f, "  %6s %6s  %s\n", "clicks", "unique", "url");
		for (size_t i = 0; i < s->nlinks; i++) {
			fprintf(f, "  %6zu %6zu  ", s->links[i].clicks, s->links[i].unique);
			put_term(f, *s->links[i].url ? s->links[i].url : "(no URL recorded)");
			fputc('\n', f);
		}
	}
}

/* ---- the command ---- */

/* report.csv on its way: "<path>.tmp", renamed at commit. */
struct out_file {
	int fd;
	char *path, *tmp;
};

/* Create path.tmp 0600 (O_EXCL after removing a stale one, so a planted
 * symlink is never followed). 0, or -1 with errno. */
static int out_open(struct out_file *o, const char *path)
{
	o->fd = -1;
	o->tmp = NULL;
	o->path = NULL;
	if ((o->path = strdup(path)) == NULL || asprintf(&o->tmp, "%s.tmp", path) < 0) {
		o->tmp = NULL;
		return -1;
	}
	unlink(o->tmp);
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (o->fd < 0 || fchmod(o->fd, 0600) < 0)
		return -1;
	return 0;
}

/* Write the buffer out and empty it. 0, or -1 with errno. */
static int out_write(struct out_file *o, struct buf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(o->fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		off += (size_t)n;
	}
	buf_reset(b);
	return 0;
}

/* fsync, close, rename into place. 0, or -1 with errno. */
static int out_commit(struct out_file *o)
{
	int fd = o->fd;

	o->fd = -1;
	if (fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	if (close(fd) < 0 || rename(o->tmp, o->path) < 0)
		return -1;
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

/* Drop an uncommitted file; free the names. */
static void out_close(struct out_file *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp != NULL)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	o->fd = -1;
	o->tmp = o->path = NULL;
}

struct ev_ctx {
	struct report *r;
	int oom;
};

/* events_read() callback: one event into the report; stops on ENOMEM. */
static int on_event(void *arg, const struct event *ev)
{
	struct ev_ctx *c = arg;

	if (report_add_event(c->r, ev) < 0) {
		c->oom = 1;
		return 1;
	}
	return 0;
}

/* Stream the list into report.csv (when csv) and the summary. A sysexits
 * code. */
static int write_rows(struct config *cfg, struct report *r, struct csv_reader *rd,
                      size_t email_col, const size_t *idx, int csv, int excel,
                      const char *csv_path)
{
	size_t n = cfg->campaign.nreport_columns;
	const char **fields = calloc(n ? n : 1, sizeof(*fields));
	struct out_file o = { .fd = -1 };
	struct buf b = { 0 };
	const struct csv_row *row;
	struct report_line l;
	char err[1024];
	int rc = 0, got;

	if (fields == NULL) {
		edm_error("report: out of memory");
		return EX_OSERR;
	}
	if (csv) {
		if (out_open(&o, csv_path) < 0) {
			edm_error("%s: cannot create: %s", csv_path, strerror(errno));
			rc = EX_CANTCREAT;
			goto done;
		}
		/* the list's own names for its columns ("Plan" for plan) */
		for (size_t k = 0; k < n; k++)
			fields[k] = csv_reader_header(rd)->fields[idx[k]];
		if ((excel && buf_puts(&b, "\xEF\xBB\xBF") < 0) ||
		    report_csv_header(&b, fields, n, excel) < 0)
			goto oom;
	}
	while ((got = csv_reader_next(rd, &row, err, sizeof(err))) == 1) {
		const char *email = email_col < row->nfields ? row->fields[email_col] : "";
		size_t elen = email_col < row->nfields ? row->lens[email_col] : 0;

		if (report_row(r, row->row, email, elen, &l) < 0)
			goto oom;
		if (!csv)
			continue;
		for (size_t k = 0; k < n; k++)
			fields[k] = idx[k] < row->nfields ? row->fields[idx[k]] : "";
		if (report_csv_line(&b, &l, fields, n, excel) < 0)
			goto oom;
		if (b.len >= 65536 && out_write(&o, &b) < 0) {
			edm_error("%s: %s", o.tmp, strerror(errno));
			rc = EX_IOERR;
			goto done;
		}
	}
	if (got < 0) {
		edm_error("%s", err);
		rc = EX_DATAERR;
		goto done;
	}
	if (csv && (out_write(&o, &b) < 0 || out_commit(&o) < 0)) {
		edm_error("%s: %s", csv_path, strerror(errno));
		rc = EX_IOERR;
	}
	goto done;
oom:
	edm_error("report: out of memory");
	rc = EX_OSERR;
done:
	out_close(&o);
	buf_free(&b);
	free(fields);
	return rc;
}

/* The number of data rows of the list (the reader is then spent). A
 * sysexits code. */
static int count_rows(struct csv_reader *rd, size_t *n)
{
	const struct csv_row *row;
	char err[1024];
	int got;

	*n = 0;
	while ((got = csv_reader_next(rd, &row, err, sizeof(err))) == 1)
		*n = row->row;
	if (got < 0) {
		edm_error("%s", err);
		return EX_DATAERR;
	}
	return 0;
}

/* "dir/name", malloc'd; NULL on ENOMEM. */
static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Everything after the options: a sysexits code. */
static int report_run(struct config *cfg, int csv, int html, int excel)
{
	const char *out_dir = cfg->campaign.out_dir;
	char *results = NULL, *events = NULL, *csv_path = NULL, *html_path = NULL;
	struct csv_reader *rd = NULL;
	struct report *r = NULL;
	const struct report_summary *s;
	struct ev_ctx ec = { 0 };
	struct buf page = { 0 };
	size_t email_col = 0, *idx = NULL, max_rows = 0;
	char err[1024];
	int rc = 0;

	if ((results = path_in(out_dir, "results.csv")) == NULL ||
	    (events = path_in(out_dir, "events.csv")) == NULL ||
	    (csv_path = path_in(out_dir, "report.csv")) == NULL ||
	    (html_path = path_in(out_dir, "report.html")) == NULL) {
		edm_error("report: out of memory");
		rc = EX_OSERR;
		goto done;
	}
	if (access(results, R_OK) < 0) {
		if (errno == ENOENT)
			edm_error("%s: not found: campaign %s has no outcomes yet; run "
			          "edm send first", results, cfg->campaign.name);
		else
			edm_error("%s: %s", results, strerror(errno));
		rc = EX_NOINPUT;
		goto done;
	}
	if ((rd = recipients_open(cfg, &email_col, &rc)) == NULL)
		goto done;
	if ((idx = calloc(cfg->campaign.nreport_columns + 1, sizeof(*idx))) == NULL) {
		edm_error("report: out of memory");
		rc = EX_OSERR;
		goto done;
	}
	if (report_columns_resolve(csv_reader_header(rd), cfg->campaign.report_columns,
	                           cfg->campaign.nreport_columns, idx, err,
	                           sizeof(err)) < 0) {
		edm_error("%s: %s; the list is %s", config_where(cfg, "campaign",
		          "report_columns"), err, cfg->campaign.recipients);
		rc = EX_CONFIG;
		goto done;
	}
	/* A first pass counts the rows, so that lines naming rows past the
	 * end (an edited list) are left out of every number, the timeline
	 * included, and a corrupt row number cannot make us allocate. */
	if ((rc = count_rows(rd, &max_rows)) != 0)
		goto done;
	csv_reader_free(rd);
	if ((rd = recipients_open(cfg, &email_col, &rc)) == NULL)
		goto done;
	if ((r = report_new(cfg->tracking.scanner_window, max_rows)) == NULL) {
		edm_error("report: out of memory");
		rc = EX_OSERR;
		goto done;
	}
	if (report_load_results(r, results, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		rc = EX_DATAERR;
		goto done;
	}
	ec.r = r;
	if (events_read(events, on_event, &ec, err, sizeof(err)) != 0 || ec.oom) {
		if (ec.oom)
			edm_error("report: out of memory");
		else
			edm_error("%s", err);
		rc = ec.oom ? EX_OSERR : EX_DATAERR;
		goto done;
	}
	if (report_finish(r) < 0) {
		edm_error("report: out of memory");
		rc = EX_OSERR;
		goto done;
	}
	if ((rc = write_rows(cfg, r, rd, email_col, idx, csv, excel, csv_path)) != 0)
		goto done;
	if ((s = report_summary(r)) == NULL) {
		edm_error("report: out of memory");
		rc = EX_OSERR;
		goto done;
	}
	if (html) {
		if (report_html(&page, s, cfg->campaign.name, time(NULL)) < 0) {
			edm_error("report: out of memory");
			rc = EX_OSERR;
			goto done;
		}
		if (files_write_private(html_path, page.data, page.len) < 0) {
			edm_error("%s: cannot write: %s", html_path, strerror(errno));
			rc = EX_CANTCREAT;
			goto done;
		}
	}
	if (s->past_end > 0)
		edm_warn("%zu lines of results.csv or events.csv name rows past the end "
		         "of %s (was the list edited after sending?); they are not counted",
		         s->past_end, cfg->campaign.recipients);
	if (s->ignored > 0)
		log_kv(EDM_LOG_INFO, "report_ignored", "lines=%zu", s->ignored);
	report_print(stdout, s, cfg->campaign.name);
	if (csv)
		printf("  report.csv   %s\n", csv_path);
	if (html)
		printf("  report.html  %s\n", html_path);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		edm_error("report: cannot write standard output: %s", strerror(errno));
		rc = EX_IOERR;
	}
done:
	buf_free(&page);
	report_free(r);
	free(idx);
	csv_reader_free(rd);
	free(results);
	free(events);
	free(csv_path);
	free(html_path);
	return rc;
}

int report_main(int argc, char **argv)
{
	enum { OPT_FORMAT = 256, OPT_EXCEL };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "excel", no_argument, NULL, OPT_EXCEL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, csv = 1, html = 1, excel = 0, rc;
	struct config *cfg;
	char err[2048];

	opterr = 0;
	optind = 0; /* glibc: a full reset, so the function can run twice */
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_FORMAT:
			if (strcmp(optarg, "csv") == 0) {
				csv = 1;
				html = 0;
			} else if (strcmp(optarg, "html") == 0) {
				csv = 0;
				html = 1;
			} else if (strcmp(optarg, "both") == 0) {
				csv = html = 1;
			} else {
				edm_error("report: --format '%s': expected csv, html or both",
				          optarg);
				return EX_USAGE;
			}
			break;
		case OPT_EXCEL:
			excel = 1;
			break;
		case 'h':
			fputs(report_usage, stdout);
			return 0;
		case ':':
			edm_error("report: option '%s' needs a value (see edm report --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("report: unknown option '%s' (see edm report --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		edm_error("report: expected one CONFIG file, got %d arguments "
		          "(usage: edm report [options] CONFIG)", argc - optind);
		return EX_USAGE;
	}
	if (excel && !csv)
		edm_warn("report: --excel changes report.csv only, which --format html "
		         "does not write");
	if ((cfg = config_load(argv[optind], err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return access(argv[optind], R_OK) < 0 ? EX_NOINPUT : EX_CONFIG;
	}
	rc = report_run(cfg, csv, html, excel);
	config_free(cfg);
	return rc;
}
