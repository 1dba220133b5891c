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
 * is due. dns_mail_lookup() results land in the cache.
 *
 * Routes (dns_route_lookup, for the send engine): one request per call,
 * living on exactly one of three lists: queued (FIFO, no query sent yet),
 * active (its MX query, then A and AAAA of every MX host, or of the
 * domain itself for an implicit MX) and done (answer built, callback not
 * yet run). Route queries share a budget of max_inflight on the wire;
 * address queries of active requests wait in their own FIFO and go before
 * the MX query of a queued request. No caller code ever runs inside a
 * c-ares callback: a finished request moves to the done list, and the
 * dispatcher (the poll or timer callback, after ares_process_fd() has
 * returned, or a uv_idle_t for answers that came synchronously) runs the
 * callbacks and frees each request after its callback returns. Addresses
 * come from plain A and AAAA queries rather than ares_getaddrinfo(): that
 * never reads /etc/hosts, and keeps each family's status, so a SERVFAIL is
 * not mistaken for "no address".
 *
 * Lifetime: dns_free() destroys the channel (c-ares answers every
 * outstanding query with ARES_EDESTRUCTION, which we ignore), calls every
 * pending route callback with TEMPFAIL "cancelled", frees the cache and
 * closes the handles; the struct itself is freed by the last close
 * callback, so the caller must run the loop afterwards (and, until then,
 * a second dns_free() is a harmless no-op).
 *
 * What it does not do: IDN conversion or syntax checks (the caller passes a
 * normalised ASCII domain), route caching, TTL expiry (a campaign is
 * short-lived; the cache lives as long as the object), logging.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

/* Where a route request is in its life (which list holds it). */
enum dns_rstate {
	DNS_RSTATE_QUEUED,   /* d->rqueued: no query sent */
	DNS_RSTATE_ACTIVE,   /* d->ractive: MX or address queries out */
	DNS_RSTATE_DONE,     /* d->rdone: answer built, callback not yet run */
};

struct dns_route_req;
struct dns_rhost;

/* One A or AAAA query of one host: waits in d's address-query FIFO, then
 * is the c-ares argument. */
struct dns_rquery {
	struct dns_rquery *next;   /* in d->aqhead while not yet sent */
	struct dns_route_req *req;
	struct dns_rhost *host;
	int type;                  /* ns_t_a or ns_t_aaaa */
};

/* One candidate mail host while its addresses are looked up. */
struct dns_rhost {
	char *name;                /* owned */
	unsigned pref;
	struct sockaddr_storage *addrs;  /* owned; IPv4 first, then IPv6 */
	size_t naddrs, n4, cap;
	int failed;                /* c-ares status of a failed A/AAAA query
	                              (resolver trouble), else ARES_SUCCESS */
	struct dns_rquery q[2];    /* A, AAAA */
};

/* One dns_route_lookup() call, until its callback has returned. */
struct dns_route_req {
	struct dns_route_req *prev, *next;   /* in the list of its state */
	struct dns *d;
	dns_route_cb cb;
	void *arg;
	enum dns_rstate state;
	unsigned outstanding;      /* queries not yet answered (queued or
	                              on the wire) */
	int implicit;              /* the hosts are the domain itself */
	enum dns_route_status status;
	const char *detail;        /* static text */
	struct dns_rhost *hosts;   /* owned; sorted and shuffled */
	size_t nhosts;
	struct dns_route_host *out;  /* owned; the hosts with addresses */
	size_t nout;
	char domain[];
};

/* A doubly linked FIFO of route requests. */
struct dns_rlist {
	struct dns_route_req *head, *tail;
	size_t n;
};

struct dns {
	uv_loop_t *loop;
	ares_channel channel;
	uv_timer_t timer;
	uv_idle_t idle;            /* runs route callbacks answered outside
	                              the poll/timer dispatchers */
	struct dns_poll *polls;    /* sockets c-ares asked us to watch */
	unsigned handles_open;     /* timer + idle + polls not yet through
	                              uv_close */

	struct dns_entry **buckets;
	size_t nbuckets;           /* power of two */
	size_t nentries;

	struct dns_entry *qhead, *qtail;
	size_t queued;
	size_t inflight;
	size_t max_inflight;

	struct dns_rlist rqueued, ractive, rdone;
	struct dns_rquery *aqhead, *aqtail;  /* address queries not sent */
	size_t rqueries;           /* route queries on the wire */
	uint64_t rng;              /* splitmix64 state for MX shuffling */

	int closing;               /* dns_free() started: ignore callbacks */
	int pumping;               /* dns_queue_pump() is on the stack */
	int rpumping;              /* dns_route_pump() is on the stack */
	int delivering;            /* dns_route_deliver() is on the stack */
};

static void dns_queue_pump(struct dns *d);
static void dns_route_pump(struct dns *d);
static void dns_route_deliver(struct dns *d);

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

static void dns_idle_close_cb(uv_handle_t *h)
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
	dns_route_pump(d);
	dns_timer_arm(d);
	dns_route_deliver(d);   /* last: a callback may dns_free(d) */
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
	dns_route_pump(d);
	dns_timer_arm(d);
	dns_route_deliver(d);   /* last: a callback may dns_free(d) */
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

/* Short static text for a failed query's c-ares status. */
static const char *dns_status_text(int status)
{
	switch (status) {
	case ARES_ETIMEOUT:
		return "timeout";
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_EREFUSED:
		return "REFUSED";
	default:
		return ares_strerror(status);  /* static strings */
	}
}

/* Resolver trouble -> DNS_UNVERIFIED with a short reason. */
static void dns_entry_unverified(struct dns_entry *e, int status)
{
	dns_entry_finish(e, DNS_UNVERIFIED, dns_status_text(status));
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

/* Is this MX exchange the root, i.e. a null MX (RFC 7505 3)? c-ares 1.18
 * expands the root name to "" (checked against dnsmasq's "MX 0 ."); "." is
 * accepted in case another version keeps the dot. */
static int dns_mx_is_null(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

/* MX answer: null MX (RFC 7505 3) is exactly one MX whose exchange is the
 * root. */
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
	if (mx->next == NULL && dns_mx_is_null(mx->host))
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

/* ---- MX routes for the send engine (dns_route_lookup) ---- */

/* Append 'rq' to 'l'. */
static void dns_rlist_push(struct dns_rlist *l, struct dns_route_req *rq)
{
	rq->next = NULL;
	rq->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = rq;
	else
		l->head = rq;
	l->tail = rq;
	l->n++;
}

/* Unlink 'rq' from 'l'. */
static void dns_rlist_remove(struct dns_rlist *l, struct dns_route_req *rq)
{
	if (rq->prev != NULL)
		rq->prev->next = rq->next;
	else
		l->head = rq->next;
	if (rq->next != NULL)
		rq->next->prev = rq->prev;
	else
		l->tail = rq->prev;
	rq->prev = rq->next = NULL;
	l->n--;
}

/* The list that holds requests in state 'st'. */
static struct dns_rlist *dns_rlist_of(struct dns *d, enum dns_rstate st)
{
	switch (st) {
	case DNS_RSTATE_QUEUED:
		return &d->rqueued;
	case DNS_RSTATE_ACTIVE:
		return &d->ractive;
	case DNS_RSTATE_DONE:
		break;
	}
	return &d->rdone;
}

/* The only way to change a request's state: moves it to that state's
 * list. (Delivery and cancelling take a request off its list for good.) */
static void dns_route_set_state(struct dns_route_req *rq, enum dns_rstate st)
{
	dns_rlist_remove(dns_rlist_of(rq->d, rq->state), rq);
	rq->state = st;
	dns_rlist_push(dns_rlist_of(rq->d, st), rq);
}

/* Free a request that is on no list. */
static void dns_route_req_free(struct dns_route_req *rq)
{
	size_t i;

	for (i = 0; i < rq->nhosts; i++) {
		free(rq->hosts[i].name);
		free(rq->hosts[i].addrs);
	}
	free(rq->hosts);
	free(rq->out);
	free(rq);
}

/* Next pseudo-random number (splitmix64). It only spreads load over equal
 * MX preferences, so neither secrecy nor perfect uniformity matters. */
static uint64_t dns_rand(struct dns *d)
{
	uint64_t z = (d->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void dns_idle_cb(uv_idle_t *h)
{
	dns_route_deliver(h->data);
}

/* The answer is final: keep it and leave the callback to the dispatcher
 * (we may be inside c-ares, or inside dns_route_lookup()). Never called
 * once dns_free() has started. */
static void dns_route_finish(struct dns_route_req *rq,
                             enum dns_route_status st, const char *detail)
{
	rq->status = st;
	rq->detail = detail;
	rq->outstanding = 0;
	dns_route_set_state(rq, DNS_RSTATE_DONE);
	/* Runs the callbacks on the next loop iteration unless a poll or
	 * timer dispatcher gets there first (and stops it). */
	uv_idle_start(&rq->d->idle, dns_idle_cb);
}

/* Hand 'rq's answer, or 'st'/'detail' when cancelled, to its callback and
 * free the request once the callback returns. 'rq' is on no list. */
static void dns_route_call(struct dns_route_req *rq, enum dns_route_status st,
                           const char *detail)
{
	struct dns_route r;

	r.status = st;
	r.detail = detail;
	r.nhosts = st == DNS_ROUTE_OK ? rq->nout : 0;
	r.hosts = r.nhosts > 0 ? rq->out : NULL;
	rq->cb(rq->arg, &r);
	dns_route_req_free(rq);
}

/* Run the callback of every answered request, oldest first. Called only by
 * a dispatcher, never inside c-ares. A callback may start lookups (those
 * answered at once join the list and are delivered in this same pass) or
 * call dns_free(d): then stop, dns_free() has cancelled the rest and 'd'
 * stays allocated until its handles have closed. */
static void dns_route_deliver(struct dns *d)
{
	struct dns_route_req *rq;

	if (d->delivering || d->closing)
		return;
	d->delivering = 1;
	while (!d->closing && (rq = d->rdone.head) != NULL) {
		dns_rlist_remove(&d->rdone, rq);
		dns_route_call(rq, rq->status, rq->detail);
	}
	if (d->closing)
		return;
	d->delivering = 0;
	uv_idle_stop(&d->idle);
}

/* Add one address to 'h', IPv4 ones before IPv6 ones whatever order the
 * answers come in (dns.h says why). 0, or -1 when out of memory. */
static int dns_rhost_add(struct dns_rhost *h, int family, const void *addr)
{
	struct sockaddr_storage *ss;

	if (h->naddrs == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 4;

		ss = realloc(h->addrs, cap * sizeof(*ss));
		if (ss == NULL)
			return -1;
		h->addrs = ss;
		h->cap = cap;
	}
	if (family == AF_INET) {
		memmove(&h->addrs[h->n4 + 1], &h->addrs[h->n4],
		        (h->naddrs - h->n4) * sizeof(*h->addrs));
		ss = &h->addrs[h->n4++];
	} else {
		ss = &h->addrs[h->naddrs];
	}
	h->naddrs++;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
	}
	return 0;
}

/* Every address query is answered: the route is the hosts that have an
 * address, in the order already chosen (RFC 5321 5.1: a host without an
 * address cannot be tried, so it is skipped). */
static void dns_route_addrs_done(struct dns_route_req *rq)
{
	int failed = ARES_SUCCESS;
	size_t i, n = 0;

	for (i = 0; i < rq->nhosts; i++) {
		if (rq->hosts[i].naddrs > 0)
			n++;
		else if (failed == ARES_SUCCESS)
			failed = rq->hosts[i].failed;
	}
	if (n == 0) {
		if (!rq->implicit)
			dns_route_finish(rq, DNS_ROUTE_TEMPFAIL,
			                 "MX hosts have no addresses");
		else if (failed != ARES_SUCCESS)
			/* Not "no address": the resolver could not say. */
			dns_route_finish(rq, DNS_ROUTE_TEMPFAIL,
			                 dns_status_text(failed));
		else
			dns_route_finish(rq, DNS_ROUTE_NOMAIL,
			                 "no MX and no A/AAAA");
		return;
	}
	rq->out = calloc(n, sizeof(*rq->out));
	if (rq->out == NULL) {
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL, "out of memory");
		return;
	}
	for (i = 0; i < rq->nhosts; i++) {
		struct dns_rhost *h = &rq->hosts[i];
		struct dns_route_host *o;

		if (h->naddrs == 0)
			continue;
		o = &rq->out[rq->nout++];
		o->name = h->name;
		o->pref = h->pref;
		o->implicit = rq->implicit;
		o->naddrs = h->naddrs;
		o->addrs = h->addrs;
	}
	dns_route_finish(rq, DNS_ROUTE_OK, rq->implicit ? "implicit MX" : "MX");
}

/* One query of the request is answered; the last one builds the route. */
static void dns_route_query_done(struct dns_route_req *rq)
{
	if (--rq->outstanding == 0)
		dns_route_addrs_done(rq);
}

/* One A or AAAA answer for one host. NXDOMAIN and NODATA just mean "no
 * address of this family"; anything else is resolver trouble, remembered
 * in h->failed. */
static void dns_rhost_cb(void *arg, int status, int timeouts,
                         unsigned char *abuf, int alen)
{
	struct dns_rquery *q = arg;
	struct dns_route_req *rq = q->req;
	struct dns_rhost *h = q->host;
	int family = q->type == ns_t_a ? AF_INET : AF_INET6;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION || rq->d->closing)
		return;
	rq->d->rqueries--;
	if (status == ARES_SUCCESS) {
		struct hostent *he = NULL;
		char **ap;

		/* Both parsers follow a CNAME chain within the answer. */
		if (family == AF_INET)
			status = ares_parse_a_reply(abuf, alen, &he, NULL, NULL);
		else
			status = ares_parse_aaaa_reply(abuf, alen, &he, NULL,
			                               NULL);
		if (status == ARES_SUCCESS) {
			for (ap = he->h_addr_list; *ap != NULL; ap++)
				if (dns_rhost_add(h, family, *ap) < 0) {
					status = ARES_ENOMEM;
					break;
				}
			ares_free_hostent(he);
		}
	}
	if (status != ARES_SUCCESS && status != ARES_ENODATA &&
	    status != ARES_ENOTFOUND && h->failed == ARES_SUCCESS)
		h->failed = status;
	dns_route_query_done(rq);
}

/* Queue A and AAAA for every host; dns_route_pump() sends them (the
 * caller is always followed by a pump: it runs inside c-ares, under a
 * dispatcher or the pump itself). The caller holds one count in
 * rq->outstanding and drops it afterwards. */
static void dns_route_send_addrs(struct dns_route_req *rq)
{
	static const int types[2] = { ns_t_a, ns_t_aaaa };
	struct dns *d = rq->d;
	size_t i, k;

	for (i = 0; i < rq->nhosts; i++) {
		struct dns_rhost *h = &rq->hosts[i];

		for (k = 0; k < 2; k++) {
			struct dns_rquery *q = &h->q[k];

			q->next = NULL;
			q->req = rq;
			q->host = h;
			q->type = types[k];
			rq->outstanding++;
			if (d->aqtail != NULL)
				d->aqtail->next = q;
			else
				d->aqhead = q;
			d->aqtail = q;
		}
	}
}

/* By ascending preference (the order among equals is set afterwards). */
static int dns_rhost_cmp(const void *a, const void *b)
{
	const struct dns_rhost *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* Sort by preference and shuffle each run of equal preferences
 * (Fisher-Yates): RFC 5321 5.1 asks senders to spread their load over
 * equally preferred hosts. */
static void dns_route_order(struct dns_route_req *rq)
{
	size_t start, end, i, j;

	qsort(rq->hosts, rq->nhosts, sizeof(*rq->hosts), dns_rhost_cmp);
	for (start = 0; start < rq->nhosts; start = end) {
		for (end = start + 1; end < rq->nhosts &&
		     rq->hosts[end].pref == rq->hosts[start].pref; end++)
			;
		for (i = end - 1; i > start; i--) {
			struct dns_rhost t;

			/* Modulo bias over at most 65536 hosts is nil for
			 * this purpose. */
			j = start + (size_t)(dns_rand(rq->d) % (i - start + 1));
			t = rq->hosts[i];
			rq->hosts[i] = rq->hosts[j];
			rq->hosts[j] = t;
		}
	}
}

/* The request's hosts from the MX list: null MX entries dropped, a host
 * listed twice kept once with its lowest preference, then ordered. The
 * number of hosts, or -1 when out of memory. */
static int dns_route_hosts_from_mx(struct dns_route_req *rq,
                                   const struct ares_mx_reply *mx)
{
	const struct ares_mx_reply *m;
	size_t n = 0, i;

	for (m = mx; m != NULL; m = m->next)
		n++;
	rq->hosts = calloc(n, sizeof(*rq->hosts));
	if (rq->hosts == NULL)
		return -1;
	for (m = mx; m != NULL; m = m->next) {
		if (dns_mx_is_null(m->host))
			continue;
		for (i = 0; i < rq->nhosts; i++)
			if (strcasecmp(rq->hosts[i].name, m->host) == 0)
				break;
		if (i < rq->nhosts) {
			if (m->priority < rq->hosts[i].pref)
				rq->hosts[i].pref = m->priority;
			continue;
		}
		rq->hosts[i].name = strdup(m->host);
		if (rq->hosts[i].name == NULL)
			return -1;
		rq->hosts[i].pref = m->priority;
		rq->nhosts++;
	}
	dns_route_order(rq);
	return (int)rq->nhosts;
}

/* No MX (NODATA): the domain itself is the one host (RFC 5321 5.1). Holds
 * the MX query's count in rq->outstanding until every query is sent. */
static void dns_route_implicit(struct dns_route_req *rq)
{
	rq->implicit = 1;
	rq->hosts = calloc(1, sizeof(*rq->hosts));
	if (rq->hosts == NULL) {
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL, "out of memory");
		return;
	}
	rq->hosts[0].name = strdup(rq->domain);
	if (rq->hosts[0].name == NULL) {
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL, "out of memory");
		return;
	}
	rq->nhosts = 1;
	dns_route_send_addrs(rq);
	dns_route_query_done(rq);
}

/* The MX answer decides what comes next (rules in dns.h). */
static void dns_route_mx_cb(void *arg, int status, int timeouts,
                            unsigned char *abuf, int alen)
{
	struct dns_route_req *rq = arg;
	struct ares_mx_reply *mx = NULL;
	int r, n;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION || rq->d->closing)
		return;
	rq->d->rqueries--;
	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENODATA:
		dns_route_implicit(rq);
		return;
	case ARES_ENOTFOUND:
		dns_route_finish(rq, DNS_ROUTE_NOMAIL, "NXDOMAIN");
		return;
	case ARES_EBADNAME:
		/* Cannot be encoded as a DNS name (label over 63 octets,
		 * name over 255): no server could ever hold mail for it. */
		dns_route_finish(rq, DNS_ROUTE_NOMAIL, ares_strerror(status));
		return;
	default:
		/* SERVFAIL, REFUSED, timeout...: never guess with A. */
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL,
		                 dns_status_text(status));
		return;
	}

	r = ares_parse_mx_reply(abuf, alen, &mx);
	if (r == ARES_ENODATA || (r == ARES_SUCCESS && mx == NULL)) {
		/* No MX in the answer, e.g. only a CNAME to a name without
		 * MX (c-ares 1.18: success and an empty list). */
		dns_route_implicit(rq);
		return;
	}
	if (r != ARES_SUCCESS) {
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL, dns_status_text(r));
		return;
	}
	n = dns_route_hosts_from_mx(rq, mx);
	ares_free_data(mx);
	if (n < 0) {
		dns_route_finish(rq, DNS_ROUTE_TEMPFAIL, "out of memory");
		return;
	}
	if (n == 0) {
		/* Only null MX records (RFC 7505 3). */
		dns_route_finish(rq, DNS_ROUTE_NOMAIL, "null MX (RFC 7505)");
		return;
	}
	dns_route_send_addrs(rq);
	dns_route_query_done(rq);   /* the MX query's own count */
}

/*
 * Put route queries on the wire while fewer than max_inflight are out:
 * first the address queries of lookups already started (they finish
 * something), then the MX query of the next queued lookup. Counting
 * queries, not domains, matters here: one domain with 5 MX hosts costs 11
 * queries, and a burst of answers beyond the socket's receive buffer is
 * dropped and costs a 2 s retry. Re-entrant calls (c-ares may answer
 * inside ares_query) return at once, as in dns_queue_pump().
 */
static void dns_route_pump(struct dns *d)
{
	if (d->rpumping || d->closing)
		return;
	d->rpumping = 1;
	while (d->rqueries < d->max_inflight) {
		struct dns_rquery *q = d->aqhead;
		struct dns_route_req *rq;

		if (q != NULL) {
			d->aqhead = q->next;
			if (d->aqhead == NULL)
				d->aqtail = NULL;
			q->next = NULL;
			d->rqueries++;
			/* ares_query: no search list, no /etc/hosts. */
			ares_query(d->channel, q->host->name, ns_c_in, q->type,
			           dns_rhost_cb, q);
			continue;
		}
		rq = d->rqueued.head;
		if (rq == NULL)
			break;
		dns_route_set_state(rq, DNS_RSTATE_ACTIVE);
		rq->outstanding = 1;
		d->rqueries++;
		ares_query(d->channel, rq->domain, ns_c_in, ns_t_mx,
		           dns_route_mx_cb, rq);
	}
	d->rpumping = 0;
}

/* Queue a new request and pump; the answer comes through the dispatcher. */
int dns_route_lookup(struct dns *d, const char *domain, dns_route_cb cb,
                     void *arg)
{
	struct dns_route_req *rq;
	size_t len;

	if (d->closing)
		return -1;
	len = strlen(domain);
	rq = calloc(1, sizeof(*rq) + len + 1);
	if (rq == NULL)
		return -1;
	memcpy(rq->domain, domain, len + 1);
	rq->d = d;
	rq->cb = cb;
	rq->arg = arg;
	rq->state = DNS_RSTATE_QUEUED;
	dns_rlist_push(&d->rqueued, rq);
	dns_route_pump(d);
	dns_timer_arm(d);
	return 0;
}

size_t dns_route_pending(const struct dns *d)
{
	return d->rqueued.n + d->ractive.n + d->rdone.n;
}

/* 1 when the IPv4 address 'a' (host byte order) is not public unicast;
 * the ranges are those of RFC 6890's registry that are not globally
 * reachable, plus multicast and the reserved 240/4. */
static int dns_v4_private(uint32_t a)
{
	static const struct {
		uint32_t net;
		unsigned bits;
	} nets[] = {
		{ 0x00000000, 8 },    /* 0/8 "this network", incl. 0.0.0.0 */
		{ 0x0a000000, 8 },    /* 10/8 (RFC 1918) */
		{ 0x64400000, 10 },   /* 100.64/10 CGNAT (RFC 6598) */
		{ 0x7f000000, 8 },    /* 127/8 loopback */
		{ 0xa9fe0000, 16 },   /* 169.254/16 link-local (RFC 3927) */
		{ 0xac100000, 12 },   /* 172.16/12 (RFC 1918) */
		{ 0xc0000000, 24 },   /* 192.0.0/24 IETF protocol (RFC 6890) */
		{ 0xc0000200, 24 },   /* 192.0.2/24 TEST-NET-1 (RFC 5737) */
		{ 0xc0a80000, 16 },   /* 192.168/16 (RFC 1918) */
		{ 0xc6120000, 15 },   /* 198.18/15 benchmarking (RFC 2544) */
		{ 0xc6336400, 24 },   /* 198.51.100/24 TEST-NET-2 */
		{ 0xcb007100, 24 },   /* 203.0.113/24 TEST-NET-3 */
		{ 0xe0000000, 4 },    /* 224/4 multicast */
		{ 0xf0000000, 4 },    /* 240/4 reserved, broadcast */
	};
	size_t i;

	for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
		if ((a & (0xffffffffu << (32 - nets[i].bits))) == nets[i].net)
			return 1;
	return 0;
}

/* The IPv4 address stored big-endian at 'p'. */
static uint32_t dns_v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* See dns.h for the list. */
int dns_addr_is_private(const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};
	static const unsigned char nat64[12] = {
		0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	const unsigned char *b;

	if (sa == NULL)
		return 1;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		return dns_v4_private(ntohl(sin->sin_addr.s_addr));
	}
	if (sa->sa_family != AF_INET6)
		return 1;
	sin6 = (const struct sockaddr_in6 *)sa;
	b = sin6->sin6_addr.s6_addr;
	/* v4-mapped ::ffff:0:0/96 and NAT64 64:ff9b::/96 (RFC 6052): the
	 * IPv4 address inside is where the packets go. */
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return dns_v4_private(dns_v4_at(b + 12));
	/* Only 2000::/3 is allocated global unicast; everything else is
	 * ::, ::1, IPv4-compatible, fc00::/7, fe80::/10, fec0::/10, ff00::/8
	 * or unallocated. */
	if ((b[0] & 0xe0) != 0x20)
		return 1;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return 1;             /* 2001:db8::/32 documentation */
	if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0)
		return 1;             /* 3fff::/20 documentation (RFC 9637) */
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0x02 &&
	    b[4] == 0 && b[5] == 0)
		return 1;             /* 2001:2::/48 benchmarking (RFC 5180) */
	if (b[0] == 0x20 && b[1] == 0x02)
		return dns_v4_private(dns_v4_at(b + 2));  /* 6to4 (RFC 3056) */
	return 0;
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
	uv_idle_init(loop, &d->idle);     /* cannot fail */
	d->idle.data = d;
	d->handles_open = 2;
	/* Different shuffles per process and per object; not a secret. */
	d->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)d;
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
	struct dns_rlist *l;

	if (d == NULL || d->closing)
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
	/* Every route callback not yet run runs now with "cancelled",
	 * answered ones first, then in flight, then queued. A callback cannot
	 * add requests (dns_route_lookup fails once closing), so this ends. */
	for (;;) {
		struct dns_route_req *rq;

		l = d->rdone.head != NULL ? &d->rdone
		    : d->ractive.head != NULL ? &d->ractive
		    : d->rqueued.head != NULL ? &d->rqueued : NULL;
		if (l == NULL)
			break;
		rq = l->head;
		dns_rlist_remove(l, rq);
		dns_route_call(rq, DNS_ROUTE_TEMPFAIL, "cancelled");
	}
	d->aqhead = d->aqtail = NULL;   /* they lived in the freed requests */
	d->rqueries = 0;
	dns_cache_clear(d);
	d->inflight = 0;
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, dns_timer_close_cb);
	uv_idle_stop(&d->idle);
	uv_close((uv_handle_t *)&d->idle, dns_idle_close_cb);
}
