/*
 * track.c - the `edm track` command (contract in track.h).
 *
 * One uv loop: conn_listen() accepts connections, each drives one
 * engine/http.c session through struct conn_server_ops; every request is
 * answered synchronously from data(), pipelined ones in order. Start-up
 * loads, per CONFIG: the config and its secret (token key), the link table
 * (templates/linktrack.c over the HTML template, clicks on: link N of the
 * template is the N-th tracked link whatever [tracking] clicks says now,
 * so links already in mailboxes keep working), the row -> address table of
 * the recipient list, the suppression file's addresses and the rows that
 * already unsubscribed (from events.csv), so a repeated unsubscribe writes
 * nothing.
 *
 * The client address: the peer's, unless the peer is in [tracking]
 * trusted_proxies; then X-Forwarded-For is read from the right, and the
 * client is the first address that is not itself a trusted proxy (each
 * trusted hop appended the address it saw; anything left of an untrusted
 * hop may be forged by the client).
 *
 * machine = 1 (kept in events.csv, flagged so reports can leave it out):
 *  - opens whose User-Agent contains "GoogleImageProxy" or "ggpht.com"
 *    (Gmail fetches images through its proxy, googleusercontent/ggpht),
 *    or "YahooMailProxy", or is exactly "Mozilla/5.0" (Apple Mail Privacy
 *    Protection prefetches every image at delivery with that bare UA);
 *  - opens and clicks whose User-Agent contains one of scanner_agents[]
 *    (case-insensitive): mail security gateways that follow every link to
 *    check it (Barracuda, Proofpoint, Mimecast, Microsoft's BingPreview /
 *    Safe Links...), link previewers and the HTTP libraries of scripts.
 *    curl is not on it: people use it (and so do the tests);
 *  - a click on a different link of the same token within [tracking]
 *    scanner_window of that token's previous click: a person clicks a link
 *    and reads; a scanner follows every link within seconds. The table of
 *    previous clicks keeps the last TRACK_CLICK_LRU tokens (least recently
 *    clicked dropped first). The first click of a burst cannot be known
 *    to be a scanner's when it is recorded, and clicking the same link
 *    again is not a burst.
 * Unsubscribes are never machine: they are a POST.
 *
 * It does not: terminate TLS (a reverse proxy does; trusted_proxies),
 * reload configs, notice edits of the recipient list after start-up, or
 * rotate events.csv.
 */
#include "track.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "address.h"
#include "buf.h"
#include "config.h"
#include "conn.h"
#include "csv_reader.h"
#include "events.h"
#include "http.h"
#include "linktrack.h"
#include "log.h"
#include "recipients.h"
#include "strset.h"
#include "suppress.h"
#include "token.h"

/* Keep-alive idle time and the time an unfinished request may take: a
 * tracking request is one small packet, so 10 s is generous for a slow
 * mobile link, and it bounds what a slowloris client can hold. */
#define TRACK_IDLE_MS_DEFAULT 10000
/* Connections at once: after a send, image proxies and scanners arrive
 * in bursts of a few hundred keep-alive connections; 4096 leaves headroom
 * at a few KB each, and is lowered to fit the file descriptor limit. */
#define TRACK_MAX_CONNS_DEFAULT 4096
/* Descriptors kept for everything but connections (events, logs, the
 * loop's own). */
#define TRACK_FD_RESERVE 64
/* Tokens whose last click is remembered for the scanner rule: 100,000
 * entries are 3.7 MB and cover every click of a big campaign's first
 * minutes, when scanners strike. */
#define TRACK_CLICK_LRU 100000
/* User-Agent text kept in events.csv (the head limit allows 8 KB; real
 * agents are under 300 bytes). */
#define TRACK_UA_MAX 512
/* Write errors of events.csv are reported at most this often (a full
 * disk would otherwise log every request). */
#define TRACK_ERROR_EVERY_S 60

const char track_usage[] =
	"Usage: edm track [options] CONFIG [CONFIG...]\n"
	"\n"
	"Serve the tracking links of one or more campaigns (each CONFIG needs a\n"
	"[tracking] section and its secret in the environment):\n"
	"  GET /o/TOKEN.gif    the open pixel (a 1x1 transparent GIF, not cached)\n"
	"  GET /c/TOKEN/N      a click: redirect to link N of the HTML template\n"
	"  GET /u/TOKEN        a page with an Unsubscribe button\n"
	"  POST /u/TOKEN       unsubscribe (RFC 8058 one-click, or the button):\n"
	"                      the address is added to [campaign] suppression\n"
	"Anything else, and any forged or foreign token, is a 404. Events are\n"
	"appended to OUT_DIR/events.csv of the token's campaign (docs/reports.md);\n"
	"opens by image proxies and clicks by link scanners are flagged\n"
	"machine=1. Put a TLS-terminating proxy in front for https and name it in\n"
	"[tracking] trusted_proxies so X-Forwarded-For is believed.\n"
	"\n"
	"Options:\n"
	"  --listen HOST:PORT       where to listen instead of [tracking] listen\n"
	"                           (port 0 picks a free port)\n"
	"  --idle-timeout DURATION  close a connection idle this long, or whose\n"
	"                           request is unfinished this long (default 10s)\n"
	"  --max-connections N      connections at once (default 4096, at most\n"
	"                           the file descriptor limit allows); more wait\n"
	"  -h, --help               this text\n"
	"\n"
	"When ready it prints \"edm track: listening on HOST:PORT (N campaigns)\"\n"
	"on stderr (with the port picked for port 0). Stop with SIGTERM or Ctrl-C:\n"
	"no new connections, requests in progress are answered, then it exits;\n"
	"a second signal closes every connection at once.\n"
	"\n"
	"Exit status: 0 stopped by a signal; 64 usage; 65 the recipient list\n"
	"cannot be read; 66 a missing file; 69 cannot listen; 71 the event loop\n"
	"or signal handling could not be set up; 73 OUT_DIR/events.csv cannot be\n"
	"created; 78 a config error (no [tracking] section, the secret unset or\n"
	"shorter than 32 bytes, bad trusted_proxies, configs that disagree on\n"
	"listen, an HTML template the link rewriter cannot read).\n";

/* A 1x1 transparent GIF89a: a 2-colour table, colour 0 transparent. */
static const unsigned char pixel_gif[] = {
	'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
	0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
	0x02, 0x02, 0x44, 0x01, 0x00,
	0x3b,
};

/* Substrings (any case) of the User-Agents of link scanners, previewers
 * and scripts; see the file comment. */
static const char *const scanner_agents[] = {
	"BingPreview",          /* Outlook.com / Microsoft link checks */
	"Safe Links", "SafeLinks", /* Microsoft Defender for Office 365 */
	"Barracuda",
	"Proofpoint",
	"Mimecast",
	"Trend Micro", "TrendMicro",
	"Symantec", "Forcepoint", "Sophos", "FireEye", "IronPort", "Zscaler",
	"Bitdefender",
	"facebookexternalhit", "Slackbot", "Twitterbot", "LinkedInBot",
	"WhatsApp", "Googlebot", "bingbot",
	"HeadlessChrome", "PhantomJS",
	"python-requests", "python-urllib", "aiohttp", "Go-http-client",
	"Java/", "Apache-HttpClient", "okhttp", "libwww-perl", "Wget",
};

/* ---- addresses ---- */

struct ipaddr {
	int v6;                  /* 0: IPv4 in b[0..4) */
	unsigned char b[16];
};

struct cidr {
	struct ipaddr a;
	unsigned bits;
};

/* Parse a numeric IPv4/IPv6 address s[n] (an IPv4-mapped IPv6 address
 * becomes IPv4). 0 or -1. */
static int ip_parse(const char *s, size_t n, struct ipaddr *a)
{
	char tmp[64];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, tmp, a->b) == 1)
		return 0;
	if (inet_pton(AF_INET6, tmp, a->b) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a->b)) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		return 0;
	}
	a->v6 = 1;
	return 0;
}

static void ip_format(const struct ipaddr *a, char *out, size_t len)
{
	if (inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->b, out, (socklen_t)len) == NULL)
		snprintf(out, len, "?");
}

/* "10.0.0.0/8", "::1", "fd00::/8". 0 or -1. */
static int cidr_parse(const char *s, struct cidr *c)
{
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	char *end;
	unsigned long bits;

	if (ip_parse(s, n, &c->a) < 0)
		return -1;
	c->bits = c->a.v6 ? 128 : 32;
	if (slash == NULL)
		return 0;
	errno = 0;
	bits = strtoul(slash + 1, &end, 10);
	if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno != 0 ||
	    bits > c->bits)
		return -1;
	c->bits = (unsigned)bits;
	return 0;
}

static int cidr_match(const struct cidr *c, const struct ipaddr *a)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (c->a.v6 != a->v6 || memcmp(c->a.b, a->b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((c->a.b[full] ^ a->b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* ---- the row -> address table ---- */

/*
 * The addresses of a campaign's recipient list, by data row: one arena of
 * NUL-terminated strings and a uint32 offset per row (a row that edm
 * would never mail holds ""). It grows with the list, which is why it is
 * this compact: tokens carry only the row, and every event needs the
 * address. The offsets limit the arena to 4 GiB.
 */
struct recips {
	char *arena;
	size_t len, cap;
	uint32_t *off;
	size_t n, ncap;
};

/* Append the address of the next row. 0 or -1. */
static int recips_add(struct recips *r, const char *s)
{
	size_t l = strlen(s) + 1;

	if (r->len + l > UINT32_MAX)
		return -1;
	if (r->n == r->ncap) {
		size_t nc = r->ncap ? r->ncap * 2 : 1024;
		uint32_t *o = realloc(r->off, nc * sizeof(*o));
		if (o == NULL)
			return -1;
		r->off = o;
		r->ncap = nc;
	}
	if (r->len + l > r->cap) {
		size_t nc = r->cap ? r->cap : 16384;
		char *a;
		while (nc < r->len + l)
			nc *= 2;
		if ((a = realloc(r->arena, nc)) == NULL)
			return -1;
		r->arena = a;
		r->cap = nc;
	}
	memcpy(r->arena + r->len, s, l);
	r->off[r->n++] = (uint32_t)r->len;
	r->len += l;
	return 0;
}

/* The address of data row 'row' (1-based), or NULL (past the list, or a
 * row that was never mailed). */
static const char *recips_get(const struct recips *r, uint64_t row)
{
	const char *s;

	if (row == 0 || row > r->n)
		return NULL;
	s = r->arena + r->off[row - 1];
	return s[0] != '\0' ? s : NULL;
}

static void recips_free(struct recips *r)
{
	free(r->arena);
	free(r->off);
}

/* ---- scanner bursts: the last click of recent tokens ---- */

#define CLK_NONE UINT32_MAX

struct clk {
	uint64_t key;            /* campaign << 40 | row */
	uint64_t ms;             /* loop time of the last click */
	uint32_t link;
	uint32_t hnext;          /* bucket chain */
	uint32_t prev, next;     /* LRU list, head = most recent */
};

struct clicks {
	struct clk *e;
	uint32_t *bucket;
	uint32_t n, cap, nbuckets;
	uint32_t head, tail;
};

static uint32_t clk_hash(const struct clicks *t, uint64_t key)
{
	return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (t->nbuckets - 1);
}

static void clk_unlink(struct clicks *t, uint32_t i)
{
	struct clk *e = &t->e[i];

	if (e->prev != CLK_NONE)
		t->e[e->prev].next = e->next;
	else
		t->head = e->next;
	if (e->next != CLK_NONE)
		t->e[e->next].prev = e->prev;
	else
		t->tail = e->prev;
}

static void clk_push_front(struct clicks *t, uint32_t i)
{
	t->e[i].prev = CLK_NONE;
	t->e[i].next = t->head;
	if (t->head != CLK_NONE)
		t->e[t->head].prev = i;
	t->head = i;
	if (t->tail == CLK_NONE)
		t->tail = i;
}

/*
 * Record a click of 'link' by 'key' at now_ms; 1 when it is a burst (a
 * different link than the token's previous click, within window_ms of
 * it), else 0 (also when the table cannot be allocated, and always with
 * window_ms 0: scanner_window = 0 turns the rule off).
 */
static int clicks_note(struct clicks *t, uint64_t key, uint32_t link,
                       uint64_t now_ms, unsigned window_ms)
{
	uint32_t h, i;
	int burst = 0;

	if (t->e == NULL) {
		t->cap = TRACK_CLICK_LRU;
		t->nbuckets = 1u << 17; /* >= cap: chains stay short */
		t->e = malloc((size_t)t->cap * sizeof(*t->e));
		t->bucket = malloc((size_t)t->nbuckets * sizeof(*t->bucket));
		if (t->e == NULL || t->bucket == NULL) {
			free(t->e);
			free(t->bucket);
			t->e = NULL;
			t->bucket = NULL;
			return 0;
		}
		memset(t->bucket, 0xff, (size_t)t->nbuckets * sizeof(*t->bucket));
		t->head = t->tail = CLK_NONE;
		t->n = 0;
	}
	h = clk_hash(t, key);
	for (i = t->bucket[h]; i != CLK_NONE; i = t->e[i].hnext)
		if (t->e[i].key == key)
			break;
	if (i != CLK_NONE) {
		burst = window_ms > 0 && t->e[i].link != link &&
		        now_ms - t->e[i].ms <= window_ms;
		clk_unlink(t, i);
	} else {
		if (t->n < t->cap) {
			i = t->n++;
		} else {
			/* reuse the least recently clicked entry */
			uint32_t *pp;
			i = t->tail;
			clk_unlink(t, i);
			for (pp = &t->bucket[clk_hash(t, t->e[i].key)]; *pp != i;
			     pp = &t->e[*pp].hnext)
				;
			*pp = t->e[i].hnext;
		}
		t->e[i].key = key;
		t->e[i].hnext = t->bucket[h];
		t->bucket[h] = i;
	}
	t->e[i].ms = now_ms;
	t->e[i].link = link;
	clk_push_front(t, i);
	return burst;
}

static void clicks_free(struct clicks *t)
{
	free(t->e);
	free(t->bucket);
}

/* ---- campaigns and the server ---- */

struct campaign {
	struct config *cfg;
	const char *name;
	struct token_key *key;
	struct events *events;
	struct link_table links;
	char **locations;        /* Location header value of each link */
	struct recips rcpt;
	unsigned char *unsub;    /* bit per row: unsubscribed */
	struct strset *suppressed; /* keys of the suppression file */
	struct cidr *proxies;
	size_t nproxies;
	time_t last_error;       /* last events.csv write error reported */
	unsigned long opens, clicks, unsubscribes;
};

struct track {
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	int have_sigint, have_sigterm;
	struct conn_listener *listener;
	struct campaign *c;
	size_t nc;
	struct clicks clicks;
	struct http_limits hlim;
	time_t date_t;
	char date[HTTP_DATE_LEN];
	int stopping;
	const char *why;
	unsigned long requests, not_found, bad;
};

struct track_conn {
	struct track *t;
	struct http_session *http;
	char peer[64];
};

/* The Date header text, remade once a second. */
static const char *track_date(struct track *t)
{
	time_t now = time(NULL);

	if (now != t->date_t) {
		t->date_t = now;
		http_date(now, t->date);
	}
	return t->date;
}

/* Case-insensitive substring. */
static int contains_ci(const char *hay, const char *needle)
{
	return hay != NULL && strcasestr(hay, needle) != NULL;
}

static int ua_is_scanner(const char *ua)
{
	if (ua == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(scanner_agents) / sizeof(scanner_agents[0]); i++)
		if (contains_ci(ua, scanner_agents[i]))
			return 1;
	return 0;
}

static int ua_is_image_proxy(const char *ua)
{
	return ua != NULL &&
	       (strstr(ua, "GoogleImageProxy") != NULL || strstr(ua, "ggpht.com") != NULL ||
	        strstr(ua, "YahooMailProxy") != NULL || strcmp(ua, "Mozilla/5.0") == 0);
}

static int is_trusted(const struct campaign *c, const struct ipaddr *a)
{
	for (size_t i = 0; i < c->nproxies; i++)
		if (cidr_match(&c->proxies[i], a))
			return 1;
	return 0;
}

/* One X-Forwarded-For element s[n] as an address: a bare IP, "IP:port"
 * for IPv4 or "[IPv6]:port". 0 or -1. */
static int xff_element(const char *s, size_t n, struct ipaddr *a)
{
	const char *c;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		return rb != NULL ? ip_parse(s + 1, (size_t)(rb - s - 1), a) : -1;
	}
	if (ip_parse(s, n, a) == 0)
		return 0;
	c = memchr(s, ':', n);
	if (c != NULL && memchr(c + 1, ':', n - (size_t)(c - s) - 1) == NULL)
		return ip_parse(s, (size_t)(c - s), a);
	return -1;
}

/* The client's address into out (see the file comment). */
static void client_ip(const struct campaign *c, const char *peer,
                      const char *xff, char *out, size_t len)
{
	struct ipaddr a;
	size_t end;

	snprintf(out, len, "%s", peer);
	if (xff == NULL || c->nproxies == 0 || ip_parse(peer, strlen(peer), &a) < 0 ||
	    !is_trusted(c, &a))
		return;
	/* the elements from right to left */
	for (end = strlen(xff);; end--) {
		size_t start = end, e = end;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		end = start;
		while (start < e && (xff[start] == ' ' || xff[start] == '\t'))
			start++;
		while (e > start && (xff[e - 1] == ' ' || xff[e - 1] == '\t'))
			e--;
		if (e > start) {
			/* a hop that wrote garbage: keep the last good address */
			if (xff_element(xff + start, e - start, &a) < 0)
				return;
			ip_format(&a, out, len);
			if (!is_trusted(c, &a))
				return;
		}
		if (end == 0)
			return; /* every hop trusted: the leftmost is the client */
	}
}

/* The campaign whose key made tok[n], with *row and its address; NULL
 * when no campaign's key did, or the row has no address. */
static struct campaign *find_token(struct track *t, const char *tok, size_t n,
                                   uint64_t *row, const char **email)
{
	for (size_t i = 0; i < t->nc; i++) {
		if (token_check(t->c[i].key, tok, n, row) == 0) {
			*email = recips_get(&t->c[i].rcpt, *row);
			return *email != NULL ? &t->c[i] : NULL;
		}
	}
	return NULL;
}

/* Append an event; a write error is reported (at most once a minute per
 * campaign for opens and clicks). 0 or -1. */
static int record(struct campaign *c, struct event *ev, int durable)
{
	char err[1024];

	if (events_append(c->events, ev, durable, err, sizeof(err)) == 0)
		return 0;
	if (durable || ev->time - c->last_error >= TRACK_ERROR_EVERY_S) {
		c->last_error = ev->time;
		edm_error("track: campaign %s: a %s was not recorded: %s", c->name,
		          ev->type, err);
	}
	return -1;
}

/* The event fields every route fills. */
static void event_init(struct event *ev, struct track_conn *tc,
                       struct campaign *c, const struct http_request *req,
                       const char *type, const char *email, uint64_t row,
                       char *ip, size_t iplen, char *ua, size_t ualen)
{
	memset(ev, 0, sizeof(*ev));
	client_ip(c, tc->peer, req->x_forwarded_for, ip, iplen);
	if (snprintf(ua, ualen, "%s", req->user_agent != NULL ? req->user_agent : "") >=
	    (int)ualen) {
		/* cut at a character boundary, not inside a UTF-8 sequence:
		 * back off while the first byte left out continues one */
		size_t n = ualen - 1;
		while (n > 0 && ((unsigned char)req->user_agent[n] & 0xc0) == 0x80)
			n--;
		ua[n] = '\0';
	}
	ev->time = time(NULL);
	ev->type = type;
	ev->email = email;
	ev->row = row;
	ev->ip = ip;
	ev->user_agent = ua;
}

/* Headers of the HTML pages: no framing (the button must not be
 * clickjacked), nothing loaded, no referrer. */
#define PAGE_HEADERS \
	"Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; " \
	"form-action 'self'; frame-ancestors 'none'\r\n" \
	"X-Frame-Options: DENY\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n"

#define PAGE_TOP \
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" \
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" \
	"<meta name=\"robots\" content=\"noindex\"><title>Unsubscribe</title></head>\n" \
	"<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em\">\n"

/* GET: the form posts the RFC 8058 body itself, to this same URL. */
static const char page_confirm[] = PAGE_TOP
	"<h1>Unsubscribe</h1>\n"
	"<p>Stop receiving these messages at this address?</p>\n"
	"<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" "
	"value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>\n"
	"</body></html>\n";

static const char page_done[] = PAGE_TOP
	"<h1>Unsubscribed</h1>\n"
	"<p>This address will receive no more of these messages.</p>\n"
	"</body></html>\n";

/* Answer 'status' with a one-line text body. */
static void reply_text(struct buf *out, struct http_response *r, int status)
{
	char body[96];

	r->status = status;
	r->content_type = "text/plain; charset=utf-8";
	r->body = body;
	r->body_len = (size_t)snprintf(body, sizeof(body), "%d %s\n", status,
	                               http_reason(status));
	http_response_write(out, r);
}

/* GET /o/TOKEN.gif */
static int route_open(struct track_conn *tc, const struct http_request *req,
                      const char *tok, struct http_response *r, struct buf *out)
{
	struct track *t = tc->t;
	size_t n = strlen(tok);
	struct campaign *c;
	const char *email;
	uint64_t row;
	struct event ev;
	char ip[64], ua[TRACK_UA_MAX + 1];

	if (n < 5 || strcmp(tok + n - 4, ".gif") != 0 ||
	    (c = find_token(t, tok, n - 4, &row, &email)) == NULL)
		return 404;
	event_init(&ev, tc, c, req, "open", email, row, ip, sizeof(ip), ua, sizeof(ua));
	ev.machine = ua_is_image_proxy(req->user_agent) || ua_is_scanner(req->user_agent);
	record(c, &ev, 0);
	c->opens++;
	log_kv(EDM_LOG_DEBUG, "track_open", "campaign=%s row=%" PRIu64 " ip=%s machine=%d",
	       c->name, row, ip, ev.machine);
	r->status = 200;
	r->content_type = "image/gif";
	r->no_store = 1;
	r->body = pixel_gif;
	r->body_len = sizeof(pixel_gif);
	http_response_write(out, r);
	return 0;
}

/* GET /c/TOKEN/N */
static int route_click(struct track_conn *tc, const struct http_request *req,
                       const char *rest, struct http_response *r, struct buf *out)
{
	struct track *t = tc->t;
	const char *slash = strchr(rest, '/'), *id;
	struct campaign *c;
	const char *email;
	unsigned long link = 0;
	uint64_t row;
	struct event ev;
	char ip[64], ua[TRACK_UA_MAX + 1];
	int burst;

	if (slash == NULL)
		return 404;
	id = slash + 1;
	/* 1 to 9 digits, no leading zero: one spelling per link */
	if (id[0] < '1' || id[0] > '9' || strlen(id) > 9 ||
	    strspn(id, "0123456789") != strlen(id))
		return 404;
	link = strtoul(id, NULL, 10);
	if ((c = find_token(t, rest, (size_t)(slash - rest), &row, &email)) == NULL ||
	    link > c->links.n)
		return 404;
	event_init(&ev, tc, c, req, "click", email, row, ip, sizeof(ip), ua, sizeof(ua));
	ev.link_id = (unsigned)link;
	ev.url = c->links.urls[link - 1];
	burst = clicks_note(&t->clicks, (uint64_t)(c - t->c) << 40 | row,
	                    (uint32_t)link, uv_now(&t->loop),
	                    c->cfg->tracking.scanner_window);
	ev.machine = ua_is_scanner(req->user_agent) || burst;
	record(c, &ev, 0);
	c->clicks++;
	log_kv(EDM_LOG_DEBUG, "track_click", "campaign=%s row=%" PRIu64 " link=%lu "
	       "ip=%s machine=%d", c->name, row, link, ip, ev.machine);
	r->status = 302;
	r->location = c->locations[link - 1];
	r->no_store = 1; /* every click comes back here */
	http_response_write(out, r);
	return 0;
}

/* The suppression-file key of an address as edm normalised it
 * (struct addr: the address lowercased). */
static void addr_key(const char *email, char *key, size_t len)
{
	size_t i;

	for (i = 0; email[i] != '\0' && i + 1 < len; i++)
		key[i] = (char)tolower((unsigned char)email[i]);
	key[i] = '\0';
}

/* Record an unsubscribe of row: suppression file, then the event (both
 * on disk before the answer). 0, or -1 (answer 500: the sender retries). */
static int unsubscribe(struct track_conn *tc, struct campaign *c,
                       const struct http_request *req, uint64_t row,
                       const char *email)
{
	char key[ADDR_MAX + 1], err[1024], ip[64], ua[TRACK_UA_MAX + 1];
	struct event ev;

	if (c->unsub[(row - 1) / 8] & (1u << ((row - 1) % 8)))
		return 0; /* done before: nothing new to write */
	event_init(&ev, tc, c, req, "unsubscribe", email, row, ip, sizeof(ip),
	           ua, sizeof(ua));
	addr_key(email, key, sizeof(key));
	if (!strset_has(c->suppressed, key, strlen(key))) {
		if (suppress_append(c->cfg->campaign.suppression, email, "unsubscribe",
		                    ev.time, c->name, err, sizeof(err)) < 0) {
			edm_error("track: campaign %s: unsubscribe of row %" PRIu64
			          " not recorded: %s", c->name, row, err);
			return -1;
		}
		if (strset_add(c->suppressed, key, strlen(key)) < 0)
			return -1;
	}
	if (record(c, &ev, 1) < 0)
		return -1;
	c->unsub[(row - 1) / 8] |= (unsigned char)(1u << ((row - 1) % 8));
	c->unsubscribes++;
	log_kv(EDM_LOG_INFO, "track_unsubscribe", "campaign=%s row=%" PRIu64 " ip=%s",
	       c->name, row, ip);
	return 0;
}

/* GET and POST /u/TOKEN */
static int route_unsub(struct track_conn *tc, const struct http_request *req,
                       const char *tok, struct http_response *r, struct buf *out)
{
	struct campaign *c;
	const char *email;
	uint64_t row;

	if ((c = find_token(tc->t, tok, strlen(tok), &row, &email)) == NULL)
		return 404;
	r->headers = PAGE_HEADERS;
	r->no_store = 1;
	r->content_type = "text/html; charset=utf-8";
	if (req->verb == HTTP_VERB_POST) {
		int f = http_form_has(req->content_type, req->body, req->body_len,
		                      "List-Unsubscribe", "One-Click");
		if (f < 0)
			return 415;
		if (f == 0)
			return 400;
		if (unsubscribe(tc, c, req, row, email) < 0)
			return 500;
		r->body = page_done;
		r->body_len = sizeof(page_done) - 1;
	} else {
		r->body = page_confirm;
		r->body_len = sizeof(page_confirm) - 1;
	}
	r->status = 200;
	http_response_write(out, r);
	return 0;
}

/* Route one request and append its answer. */
static void handle(struct track_conn *tc, const struct http_request *req,
                   int keep_alive, struct buf *out)
{
	struct track *t = tc->t;
	struct http_response r = {
		.head_only = req->verb == HTTP_VERB_HEAD,
		.keep_alive = keep_alive,
		.http_minor = req->http_minor,
		.date = track_date(t),
	};
	const char *p = req->path;
	int get = req->verb == HTTP_VERB_GET || req->verb == HTTP_VERB_HEAD;
	int status = 404;

	if (p == NULL)
		status = 404;
	else if (get && strncmp(p, "/o/", 3) == 0)
		status = route_open(tc, req, p + 3, &r, out);
	else if (get && strncmp(p, "/c/", 3) == 0)
		status = route_click(tc, req, p + 3, &r, out);
	else if ((get || req->verb == HTTP_VERB_POST) && strncmp(p, "/u/", 3) == 0)
		status = route_unsub(tc, req, p + 3, &r, out);
	if (status == 0)
		return;
	if (status == 404)
		t->not_found++;
	log_kv(EDM_LOG_DEBUG, "track_reject", "peer=%s method=%s status=%d", tc->peer,
	       req->method, status);
	r.headers = NULL;
	r.no_store = 0;
	r.location = NULL;
	reply_text(out, &r, status);
}

static void *tc_open(void *arg, const char *peer, struct buf *out)
{
	struct track *t = arg;
	struct track_conn *tc = calloc(1, sizeof(*tc));

	(void)out;
	if (tc == NULL)
		return NULL;
	if ((tc->http = http_session_new(&t->hlim)) == NULL) {
		free(tc);
		return NULL;
	}
	tc->t = t;
	snprintf(tc->peer, sizeof(tc->peer), "%s", peer != NULL ? peer : "?");
	return tc;
}

static int tc_data(void *state, const char *p, size_t n, struct buf *out)
{
	struct track_conn *tc = state;
	struct track *t = tc->t;
	struct http_request req;
	const char *why;
	int rc, status;

	http_session_feed(tc->http, p, n);
	while ((rc = http_session_next(tc->http, &req)) == HTTP_NEXT_REQUEST) {
		int keep = req.keep_alive && !t->stopping;

		t->requests++;
		handle(tc, &req, keep, out);
		if (!keep)
			return 1;
	}
	if (rc == HTTP_NEXT_ERROR) {
		status = http_session_error(tc->http, &why);
		t->bad++;
		log_kv(EDM_LOG_INFO, "track_bad_request", "peer=%s status=%d reason=\"%s\"",
		       tc->peer, status, why);
		http_response_error(out, status, track_date(t));
		return 1;
	}
	return 0;
}

static int tc_busy(void *state)
{
	struct track_conn *tc = state;

	return http_session_busy(tc->http);
}

/* Idle or request timeout: an unfinished request is told 408. */
static void tc_timeout(void *state, struct buf *out)
{
	struct track_conn *tc = state;

	if (http_session_busy(tc->http)) {
		log_kv(EDM_LOG_INFO, "track_timeout", "peer=%s", tc->peer);
		http_response_error(out, 408, track_date(tc->t));
	}
}

static void tc_close(void *state)
{
	struct track_conn *tc = state;

	http_session_free(tc->http);
	free(tc);
}

static const struct conn_server_ops track_ops = {
	.open = tc_open,
	.data = tc_data,
	.close = tc_close,
	.busy = tc_busy,
	.timeout = tc_timeout,
};

/* ---- start-up ---- */

/* Read a whole file. NULL with err. */
static char *read_whole(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b = { 0 };
	char chunk[65536];
	size_t n;

	if (f == NULL) {
		edm_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) < 0) {
			edm_errf(err, errlen, "out of memory");
			goto fail;
		}
	if (ferror(f)) {
		edm_errf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	if (buf_reserve(&b, 0) < 0) {
		edm_errf(err, errlen, "out of memory");
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.data;
fail:
	fclose(f);
	buf_free(&b);
	return NULL;
}

/* The Location of a link: the template's URL with control characters,
 * spaces and non-ASCII bytes percent-encoded (a header value must be
 * ASCII without CR/LF, RFC 9110 5.5; decoded entities may hold any). */
static char *make_location(const char *url)
{
	struct buf b = { 0 };

	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f)
			buf_printf(&b, "%%%02X", *p);
		else
			buf_putc(&b, (char)*p);
	}
	if (buf_reserve(&b, 0) < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* The link table of the campaign's HTML template. 0, or an exit code. */
static int load_links(struct campaign *c)
{
	const char *html = c->cfg->message.html;
	struct linktrack_opts o = {
		.base_url = c->cfg->tracking.base_url,
		.clicks = 1,
		.opens = 0,
	};
	char err[1024], *src, *outp = NULL;
	size_t len, outlen, untracked;

	if (html == NULL)
		return 0; /* a text-only campaign has no tracked links */
	if ((src = read_whole(html, &len, err, sizeof(err))) == NULL) {
		edm_error("%s (named by html at %s)", err,
		          config_where(c->cfg, "message", "html"));
		return EX_NOINPUT;
	}
	if (linktrack_rewrite(src, len, &o, &outp, &outlen, &c->links, &untracked,
	                      err, sizeof(err)) < 0) {
		edm_error("%s: %s", html, err);
		free(src);
		return EX_CONFIG;
	}
	free(outp);
	free(src);
	if (c->links.n > 0 &&
	    (c->locations = calloc(c->links.n, sizeof(*c->locations))) == NULL)
		return EX_OSERR;
	for (size_t i = 0; i < c->links.n; i++)
		if ((c->locations[i] = make_location(c->links.urls[i])) == NULL)
			return EX_OSERR;
	return 0;
}

/* The row -> address table. 0, or an exit code. */
static int load_recipients(struct campaign *c)
{
	struct csv_reader *r;
	const struct csv_row *row;
	size_t email_col, ncols;
	char err[1024], detail[256];
	struct addr a;
	int rc = 0, n;

	if ((r = recipients_open(c->cfg, &email_col, &rc)) == NULL)
		return rc;
	ncols = csv_reader_header(r)->nfields;
	while ((n = csv_reader_next(r, &row, err, sizeof(err))) == 1) {
		/* the address edm send used; a row it would skip has none */
		const char *why = recipients_row_problem(row, ncols, email_col, &a,
		                                         detail, sizeof(detail));
		while (c->rcpt.n + 1 < row->row && rc == 0)
			rc = recips_add(&c->rcpt, "") < 0 ? EX_OSERR : 0;
		if (rc == 0 && recips_add(&c->rcpt, why == NULL ? a.norm : "") < 0)
			rc = EX_OSERR;
		if (rc != 0) {
			edm_error("%s: out of memory reading the list",
			          c->cfg->campaign.recipients);
			break;
		}
	}
	if (n < 0) {
		edm_error("%s", err);
		rc = EX_DATAERR;
	}
	csv_reader_free(r);
	return rc;
}

/* events.csv callback: remember the rows that unsubscribed already. */
static int note_unsub(void *arg, const struct event *ev)
{
	struct campaign *c = arg;

	if (strcmp(ev->type, "unsubscribe") == 0 && ev->row >= 1 && ev->row <= c->rcpt.n)
		c->unsub[(ev->row - 1) / 8] |= (unsigned char)(1u << ((ev->row - 1) % 8));
	return 0;
}

/* events.csv, the suppression file and the unsubscribed rows. 0, or an
 * exit code. */
static int load_state(struct campaign *c)
{
	const char *sup = c->cfg->campaign.suppression;
	char err[1024];

	if ((c->events = events_open(c->cfg->campaign.out_dir, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return EX_CANTCREAT;
	}
	if ((c->unsub = calloc(c->rcpt.n / 8 + 1, 1)) == NULL ||
	    (c->suppressed = strset_new()) == NULL)
		return EX_OSERR;
	if (events_read(events_path(c->events), note_unsub, c, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		return EX_IOERR;
	}
	/* a suppression file not written yet is empty (suppress_append
	 * creates it) */
	if (sup != NULL && access(sup, F_OK) == 0 &&
	    suppress_load(c->suppressed, sup, NULL, err, sizeof(err)) < 0) {
		edm_error("%s (named by suppression at %s)", err,
		          config_where(c->cfg, "campaign", "suppression"));
		return EX_NOINPUT;
	}
	return 0;
}

/* Config, secret, key, proxies. 0, or an exit code. */
static int load_config(struct campaign *c, const char *path)
{
	char err[2048];
	const char *secret;
	size_t slen;

	if ((c->cfg = config_load(path, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return access(path, R_OK) < 0 ? EX_NOINPUT : EX_CONFIG;
	}
	c->name = c->cfg->campaign.name;
	if (!c->cfg->tracking.present) {
		edm_error("%s: no [tracking] section: edm track serves the links that "
		          "[tracking] puts into messages (base_url, listen, secret_env; "
		          "docs/config.md)", path);
		return EX_CONFIG;
	}
	if (config_tracking_secret(c->cfg, &secret, &slen, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		return EX_CONFIG;
	}
	if ((c->key = token_key_new(secret, slen, c->name)) == NULL)
		return EX_OSERR;
	if (c->cfg->tracking.ntrusted_proxies > 0 &&
	    (c->proxies = calloc(c->cfg->tracking.ntrusted_proxies,
	                         sizeof(*c->proxies))) == NULL)
		return EX_OSERR;
	for (size_t i = 0; i < c->cfg->tracking.ntrusted_proxies; i++) {
		const char *p = c->cfg->tracking.trusted_proxies[i];
		if (cidr_parse(p, &c->proxies[i]) < 0) {
			edm_error("%s: [tracking] trusted_proxies: '%s' is not an IP "
			          "address or CIDR prefix (e.g. 127.0.0.1, 10.0.0.0/8, "
			          "::1, fd00::/8)",
			          config_where(c->cfg, "tracking", "trusted_proxies"), p);
			return EX_CONFIG;
		}
		c->nproxies++;
	}
	return 0;
}

static void campaign_free(struct campaign *c)
{
	if (c->locations != NULL)
		for (size_t i = 0; i < c->links.n; i++)
			free(c->locations[i]);
	free(c->locations);
	link_table_free(&c->links);
	events_close(c->events);
	recips_free(&c->rcpt);
	free(c->unsub);
	strset_free(c->suppressed);
	free(c->proxies);
	token_key_free(c->key);
	config_free(c->cfg);
}

/* Split "HOST:PORT" or "[V6]:PORT". 0, or -1 when malformed. */
static int split_hostport(const char *s, char *host, size_t hostlen,
                          unsigned *port)
{
	const char *h, *hend, *colon;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		h = s + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		h = s;
		if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':'))
			return -1;
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || p > 65535)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = (unsigned)p;
	return 0;
}

/* The connection cap: the wanted one, lowered to what the descriptor
 * limit allows (the soft limit is raised towards the hard one first). */
static unsigned conn_cap(unsigned want)
{
	rlim_t need = (rlim_t)want + TRACK_FD_RESERVE;
	struct rlimit rl, up;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		up = rl;
		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
		              ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur > 2 * TRACK_FD_RESERVE
	       ? (unsigned)(rl.rlim_cur - TRACK_FD_RESERVE) : TRACK_FD_RESERVE;
}

/* ---- running ---- */

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_signal(uv_signal_t *h, int signo)
{
	struct track *t = h->data;

	if (!t->stopping) {
		/* graceful: the loop ends when the last connection is done */
		t->stopping = 1;
		t->why = signo == SIGINT ? "interrupted" : "terminated";
		conn_listener_shutdown(t->listener);
		uv_unref((uv_handle_t *)&t->sigint);
		uv_unref((uv_handle_t *)&t->sigterm);
		log_kv(EDM_LOG_INFO, "track_stopping", "signal=%d connections=%u", signo,
		       conn_listener_count(t->listener));
		return;
	}
	conn_listener_close(t->listener); /* a second signal: at once */
	t->listener = NULL;
}

/* A usage error: what was wrong, then the usage, on stderr. */
static int usage_error(const char *fmt, const char *arg)
{
	fputs("edm: error: track: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n\n", stderr);
	fputs(track_usage, stderr);
	return EX_USAGE;
}

struct track_opts {
	const char *listen;
	unsigned idle_ms;
	unsigned max_conns;
};

/* Parse argv into o; *first = the first CONFIG. -1 to go on, else the
 * exit code. */
static int parse_options(int argc, char **argv, struct track_opts *o, int *first)
{
	enum { OPT_LISTEN = 256, OPT_IDLE, OPT_MAX_CONNS };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long n;
	char *end;
	int c;

	opterr = 0;
	optind = 0; /* GNU: start afresh, so track_main can run more than once */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_IDLE:
			if (config_parse_duration_ms(optarg, &o->idle_ms) < 0 ||
			    o->idle_ms == 0 || o->idle_ms > 3600000)
				return usage_error("--idle-timeout '%s': expected a duration "
				                   "from 1ms to 1h (10s, 500ms)", optarg);
			break;
		case OPT_MAX_CONNS:
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
			    errno != 0 || n < 1 || n > 1000000)
				return usage_error("--max-connections '%s': expected a "
				                   "number from 1 to 1000000", optarg);
			o->max_conns = (unsigned)n;
			break;
		case 'h':
			fputs(track_usage, stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no CONFIG given%s", "");
	*first = optind;
	return -1;
}

/* The address to listen on: --listen, else the configs' [tracking]
 * listen (which must agree). 0, or an exit code. */
static int pick_listen(struct track *t, const struct track_opts *o,
                       char *host, size_t hostlen, unsigned *port)
{
	const char *l = o->listen;

	if (l == NULL) {
		l = t->c[0].cfg->tracking.listen;
		for (size_t i = 1; i < t->nc; i++)
			if (strcmp(t->c[i].cfg->tracking.listen, l) != 0) {
				edm_error("%s: [tracking] listen = %s, but %s says %s: one "
				          "edm track listens once; make them agree or give "
				          "--listen", t->c[i].cfg->path,
				          t->c[i].cfg->tracking.listen, t->c[0].cfg->path, l);
				return EX_CONFIG;
			}
	}
	if (split_hostport(l, host, hostlen, port) < 0) {
		if (o->listen != NULL)
			return usage_error("--listen '%s': expected HOST:PORT, e.g. "
			                   "127.0.0.1:8080 or [::1]:8080", l);
		edm_error("%s: [tracking] listen '%s': expected HOST:PORT, e.g. "
		          "127.0.0.1:8080 or [::1]:8080",
		          config_where(t->c[0].cfg, "tracking", "listen"), l);
		return EX_CONFIG;
	}
	if (strcasecmp(host, "localhost") == 0)
		snprintf(host, hostlen, "127.0.0.1");
	return 0;
}

int track_main(int argc, char **argv)
{
	struct track_opts o = {
		.idle_ms = TRACK_IDLE_MS_DEFAULT,
		.max_conns = TRACK_MAX_CONNS_DEFAULT,
	};
	struct track t;
	struct conn_server_limits lim;
	char host[256], hostport[300], err[1024];
	unsigned port = 0, bound = 0;
	int rc, uvrc, first = 0, loop_ok = 0;
	unsigned long opens = 0, clicks = 0, unsubs = 0;

	if ((rc = parse_options(argc, argv, &o, &first)) >= 0)
		return rc;
	memset(&t, 0, sizeof(t));
	t.why = "stopped";
	t.hlim.max_head = HTTP_HEAD_MAX_DEFAULT;
	t.hlim.max_body = HTTP_BODY_MAX_DEFAULT;
	t.hlim.max_headers = HTTP_HEADERS_MAX_DEFAULT;
	t.nc = (size_t)(argc - first);
	if ((t.c = calloc(t.nc, sizeof(*t.c))) == NULL)
		return EX_OSERR;
	rc = 0;
	for (size_t i = 0; i < t.nc && rc == 0; i++) {
		rc = load_config(&t.c[i], argv[first + (int)i]);
		for (size_t j = 0; j < i && rc == 0; j++)
			if (strcmp(t.c[j].name, t.c[i].name) == 0) {
				edm_error("%s and %s are both campaign '%s': a token names "
				          "its campaign, so each campaign can be served once "
				          "([campaign] name)", t.c[j].cfg->path,
				          t.c[i].cfg->path, t.c[i].name);
				rc = EX_CONFIG;
			}
	}
	if (rc == 0)
		rc = pick_listen(&t, &o, host, sizeof(host), &port);
	for (size_t i = 0; i < t.nc && rc == 0; i++) {
		if ((rc = load_links(&t.c[i])) == 0 &&
		    (rc = load_recipients(&t.c[i])) == 0)
			rc = load_state(&t.c[i]);
	}
	if (rc != 0)
		goto done;
	if (strchr(host, ':') != NULL)
		snprintf(hostport, sizeof(hostport), "[%s]:%u", host, port);
	else
		snprintf(hostport, sizeof(hostport), "%s:%u", host, port);

	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return */
	if ((uvrc = uv_loop_init(&t.loop)) < 0) {
		edm_error("track: cannot start the event loop: %s", uv_strerror(uvrc));
		rc = EX_OSERR;
		goto done;
	}
	loop_ok = 1;
	if ((uvrc = uv_signal_init(&t.loop, &t.sigint)) == 0)
		t.have_sigint = 1;
	if (uvrc == 0 && (uvrc = uv_signal_init(&t.loop, &t.sigterm)) == 0)
		t.have_sigterm = 1;
	t.sigint.data = t.sigterm.data = &t;
	if (uvrc == 0)
		uvrc = uv_signal_start(&t.sigint, on_signal, SIGINT);
	if (uvrc == 0)
		uvrc = uv_signal_start(&t.sigterm, on_signal, SIGTERM);
	if (uvrc < 0) {
		edm_error("track: cannot set up signal handling: %s", uv_strerror(uvrc));
		rc = EX_OSERR;
		goto done;
	}
	if (conn_listen(&t.loop, hostport, &track_ops, &t, &t.listener, &bound,
	                err, sizeof(err)) < 0) {
		edm_error("track: cannot listen on %s: %s", hostport, err);
		rc = EX_UNAVAILABLE;
		goto done;
	}
	lim.max_conns = conn_cap(o.max_conns);
	lim.idle_ms = o.idle_ms;
	lim.request_ms = o.idle_ms;
	conn_listener_set_limits(t.listener, &lim);
	if (strchr(host, ':') != NULL)
		snprintf(hostport, sizeof(hostport), "[%s]:%u", host, bound);
	else
		snprintf(hostport, sizeof(hostport), "%s:%u", host, bound);
	fprintf(stderr, "edm track: listening on %s (%zu campaign%s)\n", hostport,
	        t.nc, t.nc == 1 ? "" : "s");
	fflush(stderr);
	log_kv(EDM_LOG_INFO, "track_start", "listen=%s campaigns=%zu max_connections=%u "
	       "idle_ms=%u", hostport, t.nc, lim.max_conns, lim.idle_ms);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < t.nc; i++) {
		opens += t.c[i].opens;
		clicks += t.c[i].clicks;
		unsubs += t.c[i].unsubscribes;
	}
	fprintf(stderr, "edm track: %s: %lu request%s; %lu open%s, %lu click%s, "
	        "%lu unsubscribe%s, %lu not found, %lu malformed\n", t.why,
	        t.requests, t.requests == 1 ? "" : "s", opens, opens == 1 ? "" : "s",
	        clicks, clicks == 1 ? "" : "s", unsubs, unsubs == 1 ? "" : "s",
	        t.not_found, t.bad);

done:
	if (loop_ok) {
		conn_listener_close(t.listener);
		if (t.have_sigint)
			uv_close((uv_handle_t *)&t.sigint, on_handle_closed);
		if (t.have_sigterm)
			uv_close((uv_handle_t *)&t.sigterm, on_handle_closed);
		uv_run(&t.loop, UV_RUN_DEFAULT);
		if ((uvrc = uv_loop_close(&t.loop)) < 0)
			edm_warn("track: event loop not empty at exit: %s", uv_strerror(uvrc));
	}
	for (size_t i = 0; i < t.nc; i++)
		campaign_free(&t.c[i]);
	free(t.c);
	clicks_free(&t.clicks);
	return rc;
}
