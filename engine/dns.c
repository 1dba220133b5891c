/*
 * dns.c - "can this domain receive mail?" with c-ares driven by libuv.
 *
 * Contract (see dns.h): dns_mail_lookup() answers from a per-object cache
 * or queues the domain and returns DNS_PENDING; the caller runs the loop and
 * asks again. Each domain is resolved once: MX (RFC 5321 5.1), and when the
 * domain exists but has no MX, A then AAAA (the "implicit MX"). A single MX
 * whose host is the root "." is a null MX (RFC 7505) and means no mail.
 * Only NXDOMAIN and "exists but has no mail host" are DNS_NOMAIL; every
 * resolver failure (timeout, SERVFAIL, REFUSED, unreachable server) is
 * DNS_UNVERIFIED, because the resolver's trouble is not the recipient's.
 *
 * How it runs: c-ares owns the sockets; its sock-state callback tells us
 * which socket to watch and we keep one uv_poll_t per socket, plus one
 * uv_timer_t that fires when ares_timeout() says the next retry or timeout
 * is due. There are no user callbacks: results land in the cache, so no
 * caller code ever runs inside a c-ares callback.
 *
 * Lifetime: dns_free() destroys the channel (c-ares answers every
 * outstanding query with ARES_EDESTRUCTION, which we ignore), frees the
 * cache and closes the handles; the struct itself is freed by the last
 * close callback, so the caller must run the loop afterwards.
 *
 * What it does not do: IDN conversion or syntax checks (the caller passes a
 * normalised ASCII domain), MX host address resolution, TTL expiry (a
 * campaign is short-lived; the cache lives as long as the object), logging.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 2 s per try: a healthy resolver answers within tens of milliseconds, and
 * a recursive lookup that takes longer than 2 s is usually lost, not slow.
 * c-ares doubles the timeout on each round over the server list, so with
 * DNS_DEFAULT_TRIES and one server a silent resolver costs 2 + 4 = 6 s per
 * query (MX, then maybe A and AAAA), spent in parallel across domains. */
#define DNS_DEFAULT_TIMEOUT_MS 2000
/* Two tries: one retransmission rides out a single lost UDP datagram
 * without doubling the wait on a resolver that is really down. */
#define DNS_DEFAULT_TRIES 2
/*
 * 64 domains in flight: c-ares multiplexes them over one UDP socket, so
 * 64 answers (~32 KB at 512 bytes each) fit easily in a default socket
 * receive buffer and none is dropped in a burst; it stays well under the
 * concurrency local resolvers allow per client (dnsmasq forwards at most
 * 150 queries at once by default) so we do not trip rate limits; and at a
 * 50 ms round trip it still gives ~1,000 lookups a second, far more than
 * a mail campaign needs.
 */
#define DNS_DEFAULT_MAX_INFLIGHT 64
/* Initial hash buckets; doubled whenever entries outnumber buckets. */
#define DNS_HASH_INITIAL 64

/* Where an entry is in its life. */
enum dns_state {
	DNS_STATE_QUEUED,    /* in the FIFO, no query sent */
	DNS_STATE_INFLIGHT,  /* a c-ares query is outstanding */
	DNS_STATE_DONE,      /* verdict and detail are final */
};

/* Which query of the MX -> A -> AAAA chain is outstanding. */
enum dns_stage {
	DNS_STAGE_MX,
	DNS_STAGE_A,
	DNS_STAGE_AAAA,
};

/* One cached domain. Plain memory, freed by dns_free(). */
struct dns_entry {
	struct dns_entry *hnext;   /* hash chain */
	struct dns_entry *qnext;   /* FIFO of queued entries */
	struct dns *d;
	enum dns_state state;
	enum dns_stage stage;
	enum dns_verdict verdict;
	const char *detail;        /* static text (literal or ares_strerror) */
	char domain[];
};

/* One watched c-ares socket. Freed in its uv_close callback. */
struct dns_poll {
	uv_poll_t handle;
	struct dns_poll *next;
	struct dns *d;
	ares_socket_t fd;
};

struct dns {
	uv_loop_t *loop;
	ares_channel channel;
	uv_timer_t timer;
	struct dns_poll *polls;    /* sockets c-ares asked us to watch */
	unsigned handles_open;     /* timer + polls not yet through uv_close */

	struct dns_entry **buckets;
	size_t nbuckets;           /* power of two */
	size_t nentries;

	struct dns_entry *qhead, *qtail;
	size_t queued;
	size_t inflight;
	size_t max_inflight;

	int closing;               /* dns_free() started: ignore callbacks */
	int pumping;               /* dns_queue_pump() is on the stack */
};

static void dns_queue_pump(struct dns *d);

/* FNV-1a over the ASCII-lowercased name, so "Example.TEST" and
 * "example.test" share one entry (DNS names are case-insensitive, RFC 4343). */
static size_t dns_hash(const char *s)
{
	size_t h = (size_t)14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= (size_t)1099511628211ULL;
	}
	return h;
}

/* The cached entry for 'domain', or NULL. */
static struct dns_entry *dns_cache_find(const struct dns *d,
                                        const char *domain)
{
	struct dns_entry *e;

	e = d->buckets[dns_hash(domain) & (d->nbuckets - 1)];
	for (; e != NULL; e = e->hnext)
		if (strcasecmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

/* Double the bucket array; on allocation failure keep the old one (longer
 * chains are slower, not wrong). */
static void dns_cache_grow(struct dns *d)
{
	size_t n = d->nbuckets * 2, i;
	struct dns_entry **b;

	b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (i = 0; i < d->nbuckets; i++) {
		struct dns_entry *e = d->buckets[i], *next;

		for (; e != NULL; e = next) {
			size_t k = dns_hash(e->domain) & (n - 1);

			next = e->hnext;
			e->hnext = b[k];
			b[k] = e;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
}

/* New queued entry for 'domain', in the cache and at the FIFO tail. */
static struct dns_entry *dns_cache_add(struct dns *d, const char *domain)
{
	size_t len = strlen(domain), k;
	struct dns_entry *e;

	e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->domain, domain, len + 1);
	e->d = d;
	e->state = DNS_STATE_QUEUED;
	e->verdict = DNS_PENDING;

	if (d->nentries >= d->nbuckets)
		dns_cache_grow(d);
	k = dns_hash(domain) & (d->nbuckets - 1);
	e->hnext = d->buckets[k];
	d->buckets[k] = e;
	d->nentries++;

	if (d->qtail != NULL)
		d->qtail->qnext = e;
	else
		d->qhead = e;
	d->qtail = e;
	d->queued++;
	return e;
}

/* Free every cache entry (dns_free, after the channel is gone). */
static void dns_cache_clear(struct dns *d)
{
	size_t i;

	for (i = 0; i < d->nbuckets; i++) {
		struct dns_entry *e = d->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			free(e);
		}
	}
	free(d->buckets);
	d->buckets = NULL;
	d->nbuckets = 0;
	d->nentries = 0;
	d->qhead = d->qtail = NULL;
	d->queued = 0;
}

/* Last handle closed after dns_free(): now the struct can go. */
static void dns_handle_closed(struct dns *d)
{
	d->handles_open--;
	if (d->closing && d->handles_open == 0) {
		free(d);
		ares_library_cleanup();
	}
}

static void dns_timer_close_cb(uv_handle_t *h)
{
	dns_handle_closed(h->data);
}

static void dns_poll_close_cb(uv_handle_t *h)
{
	struct dns_poll *p = h->data;
	struct dns *d = p->d;

	free(p);
	dns_handle_closed(d);
}

static void dns_timer_arm(struct dns *d);

/* A retransmission or timeout is due: let c-ares expire queries. */
static void dns_timer_cb(uv_timer_t *t)
{
	struct dns *d = t->data;

	/* No socket is ready: this only runs c-ares' timeout processing. */
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_queue_pump(d);
	dns_timer_arm(d);
}

/* Re-arm the timer for c-ares' next retransmission or timeout; stop it when
 * nothing is outstanding. */
static void dns_timer_arm(struct dns *d)
{
	struct timeval tv, *tvp;
	uint64_t ms;

	if (d->closing)
		return;
	tvp = ares_timeout(d->channel, NULL, &tv);
	if (tvp == NULL) {
		uv_timer_stop(&d->timer);
		return;
	}
	/* Round up: waking a little late is harmless, waking early only
	 * spins the loop once more for nothing. The loop's cached clock may
	 * be stale after a long iteration; refresh it so the delay counts
	 * from now, like c-ares' own clock. */
	ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
	uv_update_time(d->loop);
	uv_timer_start(&d->timer, dns_timer_cb, ms, 0);
}

/* A watched socket is ready (or failed): let c-ares read/write it. */
static void dns_poll_cb(uv_poll_t *h, int status, int events)
{
	struct dns_poll *p = h->data;
	struct dns *d = p->d;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	if (d->closing)
		return;
	if (status < 0) {
		/* Let c-ares hit the error itself and fail over. */
		rfd = wfd = p->fd;
	} else {
		if (events & UV_READABLE)
			rfd = p->fd;
		if (events & UV_WRITABLE)
			wfd = p->fd;
	}
	ares_process_fd(d->channel, rfd, wfd);
	dns_queue_pump(d);
	dns_timer_arm(d);
}

/* c-ares opened, changed or closed socket 's': mirror it with a uv_poll_t.
 * Also called from ares_destroy() for each socket it closes. */
static void dns_sock_state_cb(void *data, ares_socket_t s, int readable,
                              int writable)
{
	struct dns *d = data;
	struct dns_poll *p, **pp;
	int events = 0;

	for (pp = &d->polls; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->fd == s)
			break;
	p = *pp;

	if (!readable && !writable) {
		if (p == NULL)
			return;
		*pp = p->next;
		uv_poll_stop(&p->handle);
		uv_close((uv_handle_t *)&p->handle, dns_poll_close_cb);
		return;
	}
	if (d->closing)
		return;
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return;     /* the query will time out: UNVERIFIED */
		if (uv_poll_init_socket(d->loop, &p->handle, s) != 0) {
			free(p);
			return;
		}
		p->handle.data = p;
		p->d = d;
		p->fd = s;
		p->next = d->polls;
		d->polls = p;
		d->handles_open++;
	}
	if (readable)
		events |= UV_READABLE;
	if (writable)
		events |= UV_WRITABLE;
	uv_poll_start(&p->handle, events, dns_poll_cb);
}

/* Final verdict for a domain; frees its in-flight slot. */
static void dns_entry_finish(struct dns_entry *e, enum dns_verdict v,
                             const char *detail)
{
	e->verdict = v;
	e->detail = detail;
	e->state = DNS_STATE_DONE;
	e->d->inflight--;
}

/* Resolver trouble -> DNS_UNVERIFIED with a short reason. */
static void dns_entry_unverified(struct dns_entry *e, int status)
{
	const char *why;

	switch (status) {
	case ARES_ETIMEOUT:
		why = "timeout";
		break;
	case ARES_ESERVFAIL:
		why = "SERVFAIL";
		break;
	case ARES_EREFUSED:
		why = "REFUSED";
		break;
	default:
		why = ares_strerror(status);  /* static strings */
		break;
	}
	dns_entry_finish(e, DNS_UNVERIFIED, why);
}

static void dns_query_cb(void *arg, int status, int timeouts,
                         unsigned char *abuf, int alen);

/* Send the query for the entry's current stage. c-ares may call the
 * callback before returning (e.g. no usable socket). */
static void dns_entry_send(struct dns_entry *e)
{
	static const int types[] = {
		[DNS_STAGE_MX] = ns_t_mx,
		[DNS_STAGE_A] = ns_t_a,
		[DNS_STAGE_AAAA] = ns_t_aaaa,
	};

	/* ares_query, not ares_search: never append search domains. */
	ares_query(e->d->channel, e->domain, ns_c_in, types[e->stage],
	           dns_query_cb, e);
}

/* MX answer: null MX (RFC 7505 3) is exactly one MX whose exchange is the
 * root; c-ares 1.18 expands the root name to "" (checked against dnsmasq's
 * "MX 0 ."), we also accept "." in case another version keeps the dot. */
static void dns_entry_mx_answer(struct dns_entry *e, const unsigned char *abuf,
                                int alen)
{
	struct ares_mx_reply *mx = NULL;
	int r;

	r = ares_parse_mx_reply(abuf, alen, &mx);
	if (r == ARES_ENODATA || (r == ARES_SUCCESS && mx == NULL)) {
		/* An answer with no MX in it, e.g. only a CNAME to a name
		 * without MX: c-ares 1.18 returns success and an empty list. */
		e->stage = DNS_STAGE_A;
		dns_entry_send(e);
		return;
	}
	if (r != ARES_SUCCESS) {
		dns_entry_unverified(e, r);
		return;
	}
	if (mx->next == NULL &&
	    (mx->host[0] == '\0' || strcmp(mx->host, ".") == 0))
		dns_entry_finish(e, DNS_NOMAIL, "null MX (RFC 7505)");
	else
		dns_entry_finish(e, DNS_OK, "MX");
	ares_free_data(mx);
}

/* A or AAAA answer: does it really hold an address of that family? (The
 * answer section may hold only a CNAME.) ARES_SUCCESS with *found set, or
 * a c-ares error for a malformed answer. */
static int dns_answer_has_addr(enum dns_stage stage, const unsigned char *abuf,
                               int alen, int *found)
{
	struct hostent *he = NULL;
	int r;

	*found = 0;
	if (stage == DNS_STAGE_A)
		r = ares_parse_a_reply(abuf, alen, &he, NULL, NULL);
	else
		r = ares_parse_aaaa_reply(abuf, alen, &he, NULL, NULL);
	if (r == ARES_ENODATA)
		return ARES_SUCCESS;
	if (r != ARES_SUCCESS)
		return r;
	*found = he->h_addr_list[0] != NULL;
	ares_free_hostent(he);
	return ARES_SUCCESS;
}

/* One query of the MX -> A -> AAAA chain finished (RFC 5321 5.1: no MX
 * but an address record means the domain is its own mail host). */
static void dns_query_cb(void *arg, int status, int timeouts,
                         unsigned char *abuf, int alen)
{
	struct dns_entry *e = arg;
	int r, found;

	(void)timeouts;
	/* ares_destroy() in dns_free(): the cache is about to go, and
	 * nothing may be sent on a dying channel. */
	if (status == ARES_EDESTRUCTION || e->d->closing)
		return;

	switch (e->stage) {
	case DNS_STAGE_MX:
		if (status == ARES_SUCCESS)
			dns_entry_mx_answer(e, abuf, alen);
		else if (status == ARES_ENOTFOUND)
			dns_entry_finish(e, DNS_NOMAIL, "NXDOMAIN");
		else if (status == ARES_ENODATA) {
			e->stage = DNS_STAGE_A;
			dns_entry_send(e);
		} else
			dns_entry_unverified(e, status);
		break;
	case DNS_STAGE_A:
	case DNS_STAGE_AAAA:
		if (status == ARES_SUCCESS) {
			r = dns_answer_has_addr(e->stage, abuf, alen, &found);
			if (r != ARES_SUCCESS) {
				dns_entry_unverified(e, r);
				break;
			}
			if (found) {
				dns_entry_finish(e, DNS_OK,
				                 e->stage == DNS_STAGE_A ?
				                 "A (implicit MX)" :
				                 "AAAA (implicit MX)");
				break;
			}
		} else if (status != ARES_ENODATA && status != ARES_ENOTFOUND) {
			dns_entry_unverified(e, status);
			break;
		}
		if (e->stage == DNS_STAGE_A) {
			/* NODATA, or NXDOMAIN racing a zone change: try AAAA. */
			e->stage = DNS_STAGE_AAAA;
			dns_entry_send(e);
		} else {
			dns_entry_finish(e, DNS_NOMAIL, "no MX and no A/AAAA");
		}
		break;
	}
}

/* Start queued lookups while there is room in flight. Re-entrant calls
 * (c-ares may answer inside ares_query) return at once; the outer loop
 * picks up the freed slots, so the stack never grows with the queue. */
static void dns_queue_pump(struct dns *d)
{
	if (d->pumping || d->closing)
		return;
	d->pumping = 1;
	while (d->qhead != NULL && d->inflight < d->max_inflight) {
		struct dns_entry *e = d->qhead;

		d->qhead = e->qnext;
		if (d->qhead == NULL)
			d->qtail = NULL;
		e->qnext = NULL;
		d->queued--;
		e->state = DNS_STATE_INFLIGHT;
		e->stage = DNS_STAGE_MX;
		d->inflight++;
		dns_entry_send(e);
	}
	d->pumping = 0;
}

/* Parse a decimal port 1..65535 spanning [s, end). */
static int dns_port_valid(const char *s, const char *end)
{
	unsigned long v = 0;

	if (s == end || end - s > 5)
		return 0;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	return v >= 1 && v <= 65535;
}

/* One "IPv4:port" or "[IPv6]:port" item spanning [s, end). c-ares takes
 * only literal addresses here (no host names: resolving the resolver would
 * need a resolver). */
static int dns_server_valid(const char *s, const char *end)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *colon;
	size_t hl;

	if (s < end && *s == '[') {
		const char *rb = memchr(s, ']', (size_t)(end - s));

		if (rb == NULL || rb + 1 >= end || rb[1] != ':')
			return 0;
		hl = (size_t)(rb - s - 1);
		if (hl == 0 || hl >= sizeof(host))
			return 0;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		return inet_pton(AF_INET6, host, addr) == 1 &&
		       dns_port_valid(rb + 2, end);
	}
	colon = memchr(s, ':', (size_t)(end - s));
	if (colon == NULL)
		return 0;
	hl = (size_t)(colon - s);
	if (hl == 0 || hl >= sizeof(host))
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	return inet_pton(AF_INET, host, addr) == 1 &&
	       dns_port_valid(colon + 1, end);
}

/* Check every comma-separated item of 'servers' before c-ares sees it, so
 * a typo gets a message naming the item instead of "ARES_EBADSTR". */
static int dns_servers_check(const char *servers, char *err, size_t errlen)
{
	const char *s = servers;

	for (;;) {
		const char *end = strchr(s, ',');

		if (end == NULL)
			end = s + strlen(s);
		if (!dns_server_valid(s, end)) {
			snprintf(err, errlen, "resolver '%.*s': expected host:port "
			         "(IPv4 or [IPv6] address, port 1-65535)",
			         (int)(end - s > 200 ? 200 : end - s), s);
			return -1;
		}
		if (*end == '\0')
			return 0;
		s = end + 1;
	}
}

/* Validate the servers string, then set up the cache and a c-ares channel
 * whose sockets are reported to dns_sock_state_cb(). */
struct dns *dns_new(uv_loop_t *loop, const struct dns_opts *o,
                    char *err, size_t errlen)
{
	static const struct dns_opts defaults;
	struct ares_options ao;
	struct dns *d;
	int r, optmask;

	if (o == NULL)
		o = &defaults;
	if (o->servers != NULL && dns_servers_check(o->servers, err, errlen) < 0)
		return NULL;

	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "resolver: out of memory");
		return NULL;
	}
	d->loop = loop;
	d->max_inflight = o->max_inflight ? o->max_inflight
	                                  : DNS_DEFAULT_MAX_INFLIGHT;
	d->nbuckets = DNS_HASH_INITIAL;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (d->buckets == NULL) {
		snprintf(err, errlen, "resolver: out of memory");
		goto fail_buckets;
	}

	r = ares_library_init(ARES_LIB_INIT_ALL);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(r));
		goto fail_library;
	}

	memset(&ao, 0, sizeof(ao));
	/*
	 * NOSEARCH/NOALIASES: the domain is what it is, no search list or
	 * HOSTALIASES. NOCHECKRESP: without it c-ares 1.18 takes a SERVFAIL,
	 * REFUSED or NOTIMP answer for a dead server, tries the next one and
	 * finally reports ARES_ECONNREFUSED ("Could not contact DNS
	 * servers"), losing the reason; with it the answer reaches us as
	 * ARES_ESERVFAIL / ARES_EREFUSED. The cost: no failover to a second
	 * listed server on such an answer (timeouts still fail over); the
	 * domain ends DNS_UNVERIFIED, which never rejects anyone.
	 */
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES |
	           ARES_FLAG_NOCHECKRESP;
	ao.timeout = o->timeout_ms == 0 ? DNS_DEFAULT_TIMEOUT_MS
	             : o->timeout_ms > INT_MAX ? INT_MAX : (int)o->timeout_ms;
	ao.tries = o->tries == 0 ? DNS_DEFAULT_TRIES
	           : o->tries > INT_MAX ? INT_MAX : (int)o->tries;
	ao.sock_state_cb = dns_sock_state_cb;
	ao.sock_state_cb_data = d;
	optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	          ARES_OPT_SOCK_STATE_CB;
	r = ares_init_options(&d->channel, &ao, optmask);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(r));
		goto fail_channel;
	}
	if (o->servers != NULL) {
		r = ares_set_servers_ports_csv(d->channel, o->servers);
		if (r != ARES_SUCCESS) {
			snprintf(err, errlen, "resolver '%s': %s", o->servers,
			         ares_strerror(r));
			goto fail_servers;
		}
	}

	uv_timer_init(loop, &d->timer);   /* cannot fail */
	d->timer.data = d;
	d->handles_open = 1;
	return d;

fail_servers:
	ares_destroy(d->channel);
fail_channel:
	ares_library_cleanup();
fail_library:
	free(d->buckets);
fail_buckets:
	free(d);
	return NULL;
}

/* Cache hit, or a new entry queued and the queue pumped. */
enum dns_verdict dns_mail_lookup(struct dns *d, const char *domain,
                                 const char **detail)
{
	struct dns_entry *e;

	e = dns_cache_find(d, domain);
	if (e == NULL) {
		e = dns_cache_add(d, domain);
		if (e == NULL) {
			/* Out of memory: not the recipient's fault. */
			if (detail != NULL)
				*detail = "out of memory";
			return DNS_UNVERIFIED;
		}
		dns_queue_pump(d);
		dns_timer_arm(d);
	}
	if (e->state != DNS_STATE_DONE)
		return DNS_PENDING;
	if (detail != NULL)
		*detail = e->detail;
	return e->verdict;
}

size_t dns_pending(const struct dns *d)
{
	return d->queued + d->inflight;
}

/* Cancel everything and start closing the handles; the last close callback
 * frees 'd' (see dns_handle_closed). */
void dns_free(struct dns *d)
{
	struct dns_poll *p;

	if (d == NULL)
		return;
	d->closing = 1;
	/* Answers every query with ARES_EDESTRUCTION and closes each socket
	 * through dns_sock_state_cb, which closes its poll handle. */
	ares_destroy(d->channel);
	d->channel = NULL;
	/* Any poll c-ares did not report closed (it should not happen). */
	while ((p = d->polls) != NULL) {
		d->polls = p->next;
		uv_poll_stop(&p->handle);
		uv_close((uv_handle_t *)&p->handle, dns_poll_close_cb);
	}
	dns_cache_clear(d);
	d->inflight = 0;
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, dns_timer_close_cb);
}
