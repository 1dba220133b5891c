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
 */
#ifndef EDM_DNS_H
#define EDM_DNS_H

#include <stddef.h>
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

/* Cancel outstanding lookups and close every handle. The caller must run
 * the loop afterwards (uv_run DEFAULT) so the close callbacks free the
 * memory. NULL is a no-op. */
void dns_free(struct dns *d);

#endif
