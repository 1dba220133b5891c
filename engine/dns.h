/*
 * dns.h - "can this domain receive mail?" over c-ares on a libuv loop.
 *
 * Contract: dns_mail_lookup() answers from its cache or starts the lookup
 * and returns DNS_PENDING; the caller runs the loop (uv_run ONCE) and asks
 * again. Each domain is looked up once per dns object; at most
 * opts.max_inflight domains are in flight, the rest wait in a FIFO.
 * Rules (RFC 5321 5.1, RFC 7505):
 *   MX records present      -> DNS_OK (unless the only MX is "0 ." : null
 *                              MX -> DNS_NOMAIL)
 *   NXDOMAIN                -> DNS_NOMAIL
 *   NOERROR, no MX (NODATA) -> look up A, then AAAA; either present -> OK,
 *                              neither -> DNS_NOMAIL
 *   timeout, SERVFAIL, REFUSED, other errors -> DNS_UNVERIFIED (never a
 *                              reject: the resolver's trouble is not the
 *                              recipient's)
 * The only module besides engine/conn.c that owns sockets (through
 * c-ares); it never writes to stdout/stderr.
 *
 * dns_route_lookup() is the send engine's side (mx mode: deliver straight
 * to each recipient domain's MX hosts): the MX hosts of a domain in
 * delivery order, each with its IPv4 and IPv6 addresses, handed to a
 * callback. It shares the channel and the loop with dns_mail_lookup() but
 * not the cache: every call is one fresh lookup (keeping routes per
 * domain is the caller's business).
 */
#ifndef EDM_DNS_H
#define EDM_DNS_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

enum dns_verdict {
	DNS_PENDING = 0,
	DNS_OK,
	DNS_NOMAIL,
	DNS_UNVERIFIED,
};

struct dns_opts {
	const char *servers;    /* "127.0.0.1:5353[,host:port...]"; NULL =
	                           the system resolver (/etc/resolv.conf) */
	unsigned timeout_ms;    /* per try; 0 = default 2000 */
	unsigned tries;         /* 0 = default 2 */
	unsigned max_inflight;  /* 0 = default 64 */
};

struct dns;

/* New resolver on 'loop'. NULL with a message in err (e.g. a bad servers
 * string) on failure. */
struct dns *dns_new(uv_loop_t *loop, const struct dns_opts *o,
                    char *err, size_t errlen);

/*
 * Verdict for 'domain' (normalised, ASCII). Returns DNS_PENDING and starts
 * or queues the lookup when not yet known. When the verdict is final,
 * *detail (may be NULL) points at a short static-lifetime text such as
 * "NXDOMAIN", "null MX (RFC 7505)", "no MX and no A/AAAA", "timeout",
 * "SERVFAIL"; for DNS_OK "MX", "A (implicit MX)" or "AAAA (implicit MX)";
 * valid until dns_free().
 */
enum dns_verdict dns_mail_lookup(struct dns *d, const char *domain,
                                 const char **detail);

/* Lookups started or queued and not yet answered. */
size_t dns_pending(const struct dns *d);

/*
 * Cancel outstanding lookups and close every handle. The caller must run
 * the loop afterwards (uv_run DEFAULT) so the close callbacks free the
 * memory. NULL is a no-op, and so is a second call before the loop has run
 * (e.g. from a route callback that dns_free() itself invoked).
 * Every route lookup whose callback has not run yet gets it now, before
 * dns_free() returns, with DNS_ROUTE_TEMPFAIL "cancelled" (see
 * dns_route_lookup for what such a callback may do). dns_free() may be
 * called from inside a route callback.
 */
void dns_free(struct dns *d);

/* ---- MX routing for the send engine (RFC 5321 5.1, RFC 7505) ---- */

enum dns_route_status {
	DNS_ROUTE_OK = 0,       /* hosts[] holds at least one host */
	DNS_ROUTE_NOMAIL,       /* the domain takes no mail: bounce */
	DNS_ROUTE_TEMPFAIL,     /* resolver trouble: try again later */
};

struct dns_route_host {
	const char *name;       /* MX host name, or the domain itself for an
	                           implicit MX */
	unsigned pref;          /* MX preference; 0 for an implicit MX */
	int implicit;           /* 1 = no MX records: A/AAAA fallback
	                           (RFC 5321 5.1) */
	size_t naddrs;          /* >= 1 */
	const struct sockaddr_storage *addrs;  /* IPv4 (from A) first, then
	                           IPv6 (from AAAA), each in the order the
	                           resolver gave; port 0. IPv4 first because
	                           a bulk sender's reverse DNS and reputation
	                           are usually set up for IPv4, and receivers
	                           judge mail over IPv6 more strictly; the
	                           caller may reorder */
};

struct dns_route {
	enum dns_route_status status;
	/* Static text, never NULL. OK: "MX" or "implicit MX". NOMAIL:
	 * "NXDOMAIN", "null MX (RFC 7505)", "no MX and no A/AAAA", or c-ares'
	 * text for a name it cannot even encode (a label over 63 octets).
	 * TEMPFAIL: "SERVFAIL", "REFUSED", "timeout", "MX hosts have no
	 * addresses", "out of memory", "cancelled", or c-ares' own text for
	 * other resolver errors. */
	const char *detail;
	size_t nhosts;          /* 0 unless DNS_ROUTE_OK */
	const struct dns_route_host *hosts;  /* by ascending preference, in
	                           random order among equal preferences */
};

/* The answer for one dns_route_lookup(); 'r' and everything it points to
 * are valid only during the call (copy what you keep). */
typedef void (*dns_route_cb)(void *arg, const struct dns_route *r);

/*
 * Find where mail for 'domain' (normalised, ASCII) goes, and call cb(arg,
 * route) exactly once with the answer. Returns 0, or -1 when out of memory
 * or after dns_free() (then cb is never called).
 * The callback always runs later, from the loop (never before this
 * returns, never inside c-ares), except for the "cancelled" call made by
 * dns_free(). From a callback the caller may start new route lookups,
 * ask dns_mail_lookup() and call dns_free(); from a "cancelled" callback
 * only dns_free() (a no-op then) and lookups that fail at once (-1,
 * DNS_PENDING) are possible.
 * Rules:
 *   MX records              -> OK: the hosts by preference, shuffled among
 *                              equal preferences (spreads load as RFC 5321
 *                              5.1 asks); each host's A and AAAA looked up;
 *                              hosts with no address are dropped, and if
 *                              none is left -> TEMPFAIL "MX hosts have no
 *                              addresses"; a host listed twice keeps its
 *                              lowest preference
 *   null MX ("0 ." alone)   -> NOMAIL (RFC 7505); a "." among real MX
 *                              records is ignored
 *   NXDOMAIN                -> NOMAIL
 *   NOERROR, no MX (NODATA) -> implicit MX: the domain's own A/AAAA as one
 *                              host with implicit = 1; no address ->
 *                              NOMAIL, unless the A or AAAA query failed
 *                              (-> TEMPFAIL)
 *   SERVFAIL, REFUSED, timeout, other errors on the MX query -> TEMPFAIL,
 *                              never a fallback to A
 * A CNAME (the domain's or an MX host's) is followed as the resolver's
 * answer gives it. No /etc/hosts, no search list.
 * Pacing: route lookups put at most opts.max_inflight queries on the wire
 * (queries, not domains: one lookup costs the MX query, then A and AAAA
 * per host); the address queries of lookups already started go before the
 * MX query of the next one, and lookups wait in a FIFO. This budget is
 * counted apart from dns_mail_lookup()'s max_inflight domains, so the two
 * together may have up to 2 * max_inflight queries out.
 */
int dns_route_lookup(struct dns *d, const char *domain, dns_route_cb cb,
                     void *arg);

/* Route lookups whose callback has not run yet (queued, in flight, or
 * answered and waiting for the loop to deliver). */
size_t dns_route_pending(const struct dns *d);

/*
 * 1 when 'sa' is not a public unicast address, i.e. a place a bulk sender
 * should not deliver to: IPv4 0/8 (unspecified, "this network"), 10/8,
 * 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
 * 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 (multicast),
 * 240/4 (reserved, broadcast); IPv6 anything outside 2000::/3 (::, ::1,
 * ULA fc00::/7, link-local fe80::/10, multicast, ...), 2001:db8::/32 and
 * 3fff::/20 (documentation), 2001:2::/48 (benchmarking); for v4-mapped
 * ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d and 6to4 2002:AABB:CCDD:: the
 * embedded IPv4 address decides. 1 also for NULL and any other family.
 * 0 otherwise. Pure function, no DNS.
 */
int dns_addr_is_private(const struct sockaddr *sa);

#endif
