/*
 * test_dns.c - engine/dns.c against a real dnsmasq on loopback: the
 * validator's verdicts (dns_mail_lookup), the send engine's MX routes
 * (dns_route_lookup) and dns_addr_is_private (no DNS at all).
 *
 * Run through tests/with_dnsmasq.sh, which starts dnsmasq with the fixture
 * world documented at the top of that script and exports
 * EDM_TEST_DNS=127.0.0.1:PORT. Cases dnsmasq cannot produce quickly
 * (SERVFAIL, NOTIMP, silence, a closed port) use a tiny UDP responder on
 * the test's own loop, or a bound socket that is never read. Nothing leaves
 * 127.0.0.1, and no real resolver is ever asked.
 */
#include "cunit_main.h"
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Upper bound for any wait in these tests: dnsmasq answers in microseconds,
 * so 5 s means something hangs. */
#define WAIT_NS (5ULL * 1000 * 1000 * 1000)

/* EDM_TEST_DNS, or NULL after reporting how to get it. */
static const char *test_server(void)
{
	const char *s = getenv("EDM_TEST_DNS");

	if (s == NULL || *s == '\0') {
		fprintf(stderr, "test_dns: EDM_TEST_DNS is not set; run me as "
		        "tests/with_dnsmasq.sh build/tests/test_dns\n");
		return NULL;
	}
	return s;
}

/* A dns object on 'loop' talking to 'servers' (default: the dnsmasq). */
static struct dns *dns_open(uv_loop_t *loop, const char *servers,
                            unsigned timeout_ms, unsigned tries,
                            unsigned max_inflight)
{
	struct dns_opts o = { 0 };
	char err[256] = "";
	struct dns *d;

	o.servers = servers != NULL ? servers : test_server();
	if (o.servers == NULL)
		return NULL;
	o.timeout_ms = timeout_ms;
	o.tries = tries;
	o.max_inflight = max_inflight;
	d = dns_new(loop, &o, err, sizeof(err));
	if (d == NULL)
		fprintf(stderr, "dns_new(%s): %s\n", o.servers, err);
	return d;
}

/* Ask until the verdict is final, running the loop once between asks (the
 * way the validator uses the module). */
static enum dns_verdict wait_verdict(uv_loop_t *loop, struct dns *d,
                                     const char *domain, const char **detail)
{
	uint64_t deadline = uv_hrtime() + WAIT_NS;
	enum dns_verdict v;

	while ((v = dns_mail_lookup(d, domain, detail)) == DNS_PENDING &&
	       uv_hrtime() < deadline)
		uv_run(loop, UV_RUN_ONCE);
	return v;
}

/* Run the loop until nothing is pending (or the deadline passes). */
static void wait_idle(uv_loop_t *loop, struct dns *d)
{
	uint64_t deadline = uv_hrtime() + WAIT_NS;

	while (dns_pending(d) > 0 && uv_hrtime() < deadline)
		uv_run(loop, UV_RUN_ONCE);
}

static void run_for_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop for about 'ms' milliseconds. */
static void run_for(uv_loop_t *loop, unsigned ms)
{
	uv_timer_t t;
	int done = 0;

	uv_timer_init(loop, &t);
	t.data = &done;
	uv_timer_start(&t, run_for_cb, ms, 0);
	while (!done)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* dns_free, then let the close callbacks run; the loop must end up with no
 * handle left (a leaked uv_poll_t or timer makes uv_loop_close fail). */
static void dns_close_all(uv_loop_t *loop, struct dns *d)
{
	dns_free(d);
	uv_run(loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(loop), 0);
}

/* fake_dns.rcode_addr: answer A/AAAA like everything else. */
#define FAKE_SAME (-2)

/*
 * A fake DNS server on 127.0.0.1:<ephemeral>: counts the queries it gets
 * (and notes their QTYPEs) and, when 'rcode' >= 0, answers each with that
 * RCODE and no records (the query echoed back with QR set, so c-ares
 * accepts it as the reply). A/AAAA queries get 'rcode_addr' instead when
 * set; with 'mx_hosts' > 0 every MX query gets NOERROR and that many
 * records "MX 10 mxK.<qname>". With 'a_after_aaaa', A queries get
 * "A 192.0.2.1" and AAAA queries "AAAA 2001:db8::1", and each A answer is
 * held back until the next AAAA answer has gone out.
 */
#define FAKE_QTYPES 64
struct fake_dns {
	uv_udp_t udp;
	int rcode;                 /* -1: never answer */
	int rcode_addr;            /* for A/AAAA queries; FAKE_SAME = rcode */
	int mx_hosts;
	int a_after_aaaa;
	unsigned char held[512];   /* an A answer waiting for an AAAA one */
	size_t held_len;
	struct sockaddr_in held_to;
	unsigned queries;
	int qtypes[FAKE_QTYPES];   /* of the first queries, in order */
	char addr[32];             /* "127.0.0.1:PORT" for dns_opts.servers */
	char buf[1024];
};

static void fake_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct fake_dns *f = h->data;

	(void)hint;
	*b = uv_buf_init(f->buf, sizeof(f->buf));
}

static void fake_recv_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                         const struct sockaddr *from, unsigned flags)
{
	struct fake_dns *f = u->data;
	unsigned char *p = (unsigned char *)b->base;
	uv_buf_t out;

	int rcode = f->rcode, qtype = -1, k;
	ssize_t i = 12;

	(void)flags;
	if (n < 12 || from == NULL)
		return;
	/* QTYPE follows the QNAME's labels. */
	while (i < n && p[i] != 0)
		i += 1 + p[i];
	if (i + 4 < n)
		qtype = p[i + 1] << 8 | p[i + 2];
	if (f->queries < FAKE_QTYPES)
		f->qtypes[f->queries] = qtype;
	f->queries++;
	if (f->rcode_addr != FAKE_SAME && (qtype == 1 || qtype == 28))
		rcode = f->rcode_addr;
	if ((f->mx_hosts > 0 && qtype == 15) ||
	    (f->a_after_aaaa && (qtype == 1 || qtype == 28)))
		rcode = 0;
	if (rcode < 0)
		return;
	p[2] = (unsigned char)(p[2] | 0x80);                 /* QR */
	p[3] = (unsigned char)(0x80 | (rcode & 0x0f));       /* RA, RCODE */
	memset(p + 6, 0, 6);                                 /* AN, NS, AR */
	if (f->mx_hosts > 0 && qtype == 15 &&
	    i + 5 + 20 * f->mx_hosts <= (ssize_t)sizeof(f->buf)) {
		/* Drop anything after the question (an EDNS OPT record). */
		n = i + 5;
		p[7] = (unsigned char)f->mx_hosts;           /* ANCOUNT */
		for (k = 1; k <= f->mx_hosts && k <= 9; k++) {
			static const unsigned char rr[] = {
				0xc0, 12,              /* owner: the QNAME */
				0, 15, 0, 1,           /* MX, IN */
				0, 0, 0, 60,           /* TTL */
				0, 8,                  /* RDLENGTH */
				0, 10,                 /* preference */
				3, 'm', 'x', '0',      /* "mxK" ... */
				0xc0, 12,              /* ... "." QNAME */
			};

			memcpy(p + n, rr, sizeof(rr));
			p[n + 17] = (unsigned char)('0' + k);
			n += (ssize_t)sizeof(rr);
		}
	}
	if (f->a_after_aaaa && (qtype == 1 || qtype == 28) &&
	    i + 5 + 28 <= (ssize_t)sizeof(f->held) &&
	    from->sa_family == AF_INET) {
		static const unsigned char a[] = { 192, 0, 2, 1 };
		static const unsigned char aaaa[] = {
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 1,
		};
		unsigned len = qtype == 1 ? 4 : 16;
		unsigned char rr[12] = { 0xc0, 12, 0, 0, 0, 1, 0, 0, 0, 60 };

		n = i + 5;
		p[7] = 1;                                    /* ANCOUNT */
		rr[3] = (unsigned char)qtype;
		rr[11] = (unsigned char)len;
		memcpy(p + n, rr, sizeof(rr));
		memcpy(p + n + 12, qtype == 1 ? a : aaaa, len);
		n += 12 + (ssize_t)len;
		if (qtype == 1) {
			memcpy(f->held, p, (size_t)n);
			f->held_len = (size_t)n;
			memcpy(&f->held_to, from, sizeof(f->held_to));
			return;
		}
	}
	out = uv_buf_init(b->base, (unsigned)n);
	uv_udp_try_send(u, &out, 1, from);
	if (qtype == 28 && f->held_len > 0) {
		out = uv_buf_init((char *)f->held, (unsigned)f->held_len);
		uv_udp_try_send(u, &out, 1,
		                (const struct sockaddr *)&f->held_to);
		f->held_len = 0;
	}
}

/* Start the fake server; 0 or a libuv error. */
static int fake_start(uv_loop_t *loop, struct fake_dns *f, int rcode)
{
	struct sockaddr_in sa;
	int len = sizeof(sa), r;

	memset(f, 0, sizeof(*f));
	f->rcode = rcode;
	f->rcode_addr = FAKE_SAME;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_udp_init(loop, &f->udp);
	f->udp.data = f;
	r = uv_udp_bind(&f->udp, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_udp_getsockname(&f->udp, (struct sockaddr *)&sa, &len);
	if (r == 0)
		r = uv_udp_recv_start(&f->udp, fake_alloc_cb, fake_recv_cb);
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u",
	         (unsigned)ntohs(sa.sin_port));
	return r;
}

static void fake_stop(struct fake_dns *f)
{
	uv_close((uv_handle_t *)&f->udp, NULL);
}

/* A plain UDP socket bound on 127.0.0.1:<ephemeral> and never read: the
 * perfect silent resolver. Returns the fd, the port in *port. */
static int silent_socket(unsigned *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* The fixture world of tests/with_dnsmasq.sh and what each name must give. */
static const struct {
	const char *domain;
	enum dns_verdict verdict;
	const char *detail;
} world[] = {
	{ "good.test", DNS_OK, "MX" },
	{ "multimx.test", DNS_OK, "MX" },
	{ "cnamemx.test", DNS_OK, "MX" },
	{ "aonly.test", DNS_OK, "A (implicit MX)" },
	{ "cnamea.test", DNS_OK, "A (implicit MX)" },
	{ "aaaaonly.test", DNS_OK, "AAAA (implicit MX)" },
	{ "nullmx.test", DNS_NOMAIL, "null MX (RFC 7505)" },
	{ "nxdomain.test", DNS_NOMAIL, "NXDOMAIN" },
	{ "mx1.nxdomain.test", DNS_NOMAIL, "NXDOMAIN" },
	{ "nomail.test", DNS_NOMAIL, "no MX and no A/AAAA" },
	{ "refused.test", DNS_UNVERIFIED, "REFUSED" },
	{ "acme.example", DNS_OK, "MX" },
	{ "shop.example", DNS_OK, "MX" },
	{ "aonly.example", DNS_OK, "A (implicit MX)" },
	{ "nullmx.example", DNS_NOMAIL, "null MX (RFC 7505)" },
	{ "nosuch.example", DNS_NOMAIL, "NXDOMAIN" },
	{ "refused.example", DNS_UNVERIFIED, "REFUSED" },
};
#define WORLD_N (sizeof(world) / sizeof(world[0]))

/* Each fixture domain alone, asked the way the validator asks. */
static void test_verdicts_one_by_one(void)
{
	uv_loop_t loop;
	struct dns *d;
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < WORLD_N; i++) {
		const char *detail = NULL;
		enum dns_verdict v;

		v = wait_verdict(&loop, d, world[i].domain, &detail);
		CU_ASSERT_EQUAL(v, world[i].verdict);
		CU_ASSERT_PTR_NOT_NULL(detail);
		if (detail != NULL)
			CU_ASSERT_STRING_EQUAL(detail, world[i].detail);
		if (v != world[i].verdict || detail == NULL ||
		    strcmp(detail, world[i].detail) != 0)
			fprintf(stderr, "\n  %s: verdict %d detail '%s', want "
			        "%d '%s'\n", world[i].domain, (int)v,
			        detail ? detail : "(null)",
			        (int)world[i].verdict, world[i].detail);
		CU_ASSERT_EQUAL(dns_pending(d), 0);
	}
	dns_close_all(&loop, d);
}

/* All fixture domains at once: every one is pending, then all resolve. */
static void test_verdicts_concurrent(void)
{
	uv_loop_t loop;
	struct dns *d;
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < WORLD_N; i++)
		CU_ASSERT_EQUAL(dns_mail_lookup(d, world[i].domain, NULL),
		                DNS_PENDING);
	CU_ASSERT_EQUAL(dns_pending(d), WORLD_N);
	wait_idle(&loop, d);
	CU_ASSERT_EQUAL(dns_pending(d), 0);
	for (i = 0; i < WORLD_N; i++) {
		const char *detail = NULL;

		CU_ASSERT_EQUAL(dns_mail_lookup(d, world[i].domain, &detail),
		                world[i].verdict);
		CU_ASSERT_PTR_NOT_NULL(detail);
		if (detail != NULL)
			CU_ASSERT_STRING_EQUAL(detail, world[i].detail);
	}
	dns_close_all(&loop, d);
}

/* A resolved domain answers from the cache with no loop run, also when
 * spelled in another case; a NULL detail pointer is allowed. */
static void test_cached(void)
{
	uv_loop_t loop;
	struct dns *d;
	const char *detail = NULL, *again = NULL;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "nullmx.test", &detail),
	                DNS_NOMAIL);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "nullmx.test", &again), DNS_NOMAIL);
	CU_ASSERT_PTR_EQUAL(again, detail);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "NullMX.TEST", &again), DNS_NOMAIL);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "nullmx.test", NULL), DNS_NOMAIL);
	CU_ASSERT_EQUAL(dns_pending(d), 0);
	/* A new name is not in the cache. */
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "good.test", NULL), DNS_PENDING);
	CU_ASSERT_EQUAL(dns_pending(d), 1);
	dns_close_all(&loop, d);
}

/* A domain asked for repeatedly while pending is sent only once. */
static void test_asked_once(void)
{
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	const char *detail = NULL;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, 5 /* REFUSED */), 0);
	d = dns_open(&loop, f.addr, 1000, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "once.test", NULL), DNS_PENDING);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "once.test", NULL), DNS_PENDING);
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "ONCE.test", NULL), DNS_PENDING);
	CU_ASSERT_EQUAL(dns_pending(d), 1);
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "once.test", &detail),
	                DNS_UNVERIFIED);
	CU_ASSERT_EQUAL(f.queries, 1);
	CU_ASSERT_PTR_NOT_NULL(detail);
	if (detail != NULL)
		CU_ASSERT_STRING_EQUAL(detail, "REFUSED");
	CU_ASSERT_EQUAL(dns_mail_lookup(d, "once.test", NULL), DNS_UNVERIFIED);
	CU_ASSERT_EQUAL(f.queries, 1);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* max_inflight = 2 with 20 domains: everything resolves, and the verdicts
 * add up. */
static void test_max_inflight_all_resolve(void)
{
	static const char *const names[] = {
		"good.test", "aonly.test", "aaaaonly.test", "acme.example",
		"shop.example", "multimx.test", "cnamea.test", "nullmx.test",
		"nomail.test", "refused.test",
	};
	size_t nnames = sizeof(names) / sizeof(names[0]);
	unsigned ok = 0, nomail = 0, unverified = 0, other = 0;
	uv_loop_t loop;
	struct dns *d;
	char name[64];
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	/* 10 fixture names + 10 unknown ones (NXDOMAIN) = 20 distinct. */
	for (i = 0; i < 20; i++) {
		const char *n = names[i % nnames];

		if (i >= nnames) {
			snprintf(name, sizeof(name), "n%zu.nxdomain.test", i);
			n = name;
		}
		CU_ASSERT_EQUAL(dns_mail_lookup(d, n, NULL), DNS_PENDING);
	}
	CU_ASSERT_EQUAL(dns_pending(d), 20);
	wait_idle(&loop, d);
	CU_ASSERT_EQUAL(dns_pending(d), 0);
	for (i = 0; i < 20; i++) {
		const char *n = names[i % nnames];

		if (i >= nnames) {
			snprintf(name, sizeof(name), "n%zu.nxdomain.test", i);
			n = name;
		}
		switch (dns_mail_lookup(d, n, NULL)) {
		case DNS_OK: ok++; break;
		case DNS_NOMAIL: nomail++; break;
		case DNS_UNVERIFIED: unverified++; break;
		default: other++; break;
		}
	}
	CU_ASSERT_EQUAL(ok, 7);
	CU_ASSERT_EQUAL(nomail, 2 + 10);
	CU_ASSERT_EQUAL(unverified, 1);
	CU_ASSERT_EQUAL(other, 0);
	dns_close_all(&loop, d);
}

/* max_inflight = 2 really caps the queries on the wire: a server that never
 * answers sees exactly 2 while 20 lookups are pending. Then dns_free with
 * lookups in flight and queued must neither crash nor leak. */
static void test_max_inflight_caps_wire(void)
{
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	char name[64];
	int i;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, -1), 0);
	d = dns_open(&loop, f.addr, 5000, 1, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "slow%d.test", i);
		CU_ASSERT_EQUAL(dns_mail_lookup(d, name, NULL), DNS_PENDING);
	}
	run_for(&loop, 300);
	CU_ASSERT_EQUAL(f.queries, 2);
	CU_ASSERT_EQUAL(dns_pending(d), 20);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* Default max_inflight (64) with a silent server: 100 lookups put exactly
 * 64 queries on the wire. */
static void test_default_max_inflight(void)
{
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	char name[64];
	int i;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, -1), 0);
	d = dns_open(&loop, f.addr, 5000, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "slow%d.test", i);
		CU_ASSERT_EQUAL(dns_mail_lookup(d, name, NULL), DNS_PENDING);
	}
	run_for(&loop, 300);
	CU_ASSERT_EQUAL(f.queries, 64);
	CU_ASSERT_EQUAL(dns_pending(d), 100);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* A resolver that never answers: UNVERIFIED "timeout" after ~200 ms. */
static void test_timeout(void)
{
	uv_loop_t loop;
	struct dns *d;
	const char *detail = NULL;
	char servers[32];
	unsigned port = 0;
	uint64_t t0, ms;
	int fd;

	uv_loop_init(&loop);
	fd = silent_socket(&port);
	CU_ASSERT_FATAL(fd >= 0);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
	d = dns_open(&loop, servers, 200, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	t0 = uv_hrtime();
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "good.test", &detail),
	                DNS_UNVERIFIED);
	ms = (uv_hrtime() - t0) / 1000000;
	CU_ASSERT_PTR_NOT_NULL(detail);
	if (detail != NULL)
		CU_ASSERT_STRING_EQUAL(detail, "timeout");
	CU_ASSERT(ms >= 150);
	CU_ASSERT(ms < 1000);
	dns_close_all(&loop, d);
	close(fd);
}

/* SERVFAIL and another RCODE (NOTIMP) from the fake server. */
static void test_servfail_notimp(void)
{
	static const struct {
		int rcode;
		int ares_status;
		const char *detail;
	} cases[] = {
		{ 2, ARES_ESERVFAIL, "SERVFAIL" },
		{ 4, ARES_ENOTIMP, NULL },        /* ares_strerror text */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want = cases[i].detail ? cases[i].detail
		                   : ares_strerror(cases[i].ares_status);
		const char *detail = NULL;
		uv_loop_t loop;
		struct fake_dns f;
		struct dns *d;

		uv_loop_init(&loop);
		CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, cases[i].rcode), 0);
		d = dns_open(&loop, f.addr, 1000, 2, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL(wait_verdict(&loop, d, "good.test", &detail),
		                DNS_UNVERIFIED);
		CU_ASSERT_PTR_NOT_NULL(detail);
		if (detail != NULL)
			CU_ASSERT_STRING_EQUAL(detail, want);
		/* An answer is an answer: no second try (tries = 2 is for
		 * silence), see ARES_FLAG_NOCHECKRESP in dns.c. */
		CU_ASSERT_EQUAL(f.queries, 1);
		fake_stop(&f);
		dns_close_all(&loop, d);
	}
}

/* A closed loopback port: the ICMP "port unreachable" ends the lookup fast
 * with c-ares' own text, long before the 2 s timeout. */
static void test_connection_refused(void)
{
	uv_loop_t loop;
	struct dns *d;
	const char *detail = NULL;
	char servers[32];
	unsigned port = 0;
	uint64_t t0, ms;
	int fd;

	fd = silent_socket(&port);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);      /* now nothing listens there */
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
	uv_loop_init(&loop);
	d = dns_open(&loop, servers, 2000, 2, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	t0 = uv_hrtime();
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "good.test", &detail),
	                DNS_UNVERIFIED);
	ms = (uv_hrtime() - t0) / 1000000;
	CU_ASSERT_PTR_NOT_NULL(detail);
	if (detail != NULL)
		CU_ASSERT_STRING_EQUAL(detail,
		                       ares_strerror(ARES_ECONNREFUSED));
	CU_ASSERT(ms < 1000);
	dns_close_all(&loop, d);
}

/* Bad servers strings: NULL and a message naming the bad item. */
static void test_bad_servers(void)
{
	static const struct {
		const char *servers;
		const char *item;
	} bad[] = {
		{ "", "''" },
		{ "127.0.0.1", "'127.0.0.1'" },
		{ "localhost:53", "'localhost:53'" },
		{ "127.0.0.1:0", "'127.0.0.1:0'" },
		{ "127.0.0.1:65536", "'127.0.0.1:65536'" },
		{ "127.0.0.1:5x", "'127.0.0.1:5x'" },
		{ "127.0.0.1:", "'127.0.0.1:'" },
		{ ":53", "':53'" },
		{ "127.0.0.1:53,", "''" },
		{ "127.0.0.1:53,1.2.3:53", "'1.2.3:53'" },
		{ "::1:53", "'::1:53'" },
		{ "[::1]53", "'[::1]53'" },
		{ "[::1]:", "'[::1]:'" },
		{ "[nope]:53", "'[nope]:53'" },
	};
	uv_loop_t loop;
	struct dns *d;
	size_t i;

	uv_loop_init(&loop);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dns_opts o = { 0 };
		char err[256] = "";

		o.servers = bad[i].servers;
		d = dns_new(&loop, &o, err, sizeof(err));
		CU_ASSERT_PTR_NULL(d);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected host:port"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].item));
		if (d != NULL || strstr(err, bad[i].item) == NULL)
			fprintf(stderr, "\n  servers '%s': err '%s'\n",
			        bad[i].servers, err);
		dns_free(d);
	}
	/* Good ones, IPv6 included, and the system resolver (NULL: reads
	 * /etc/resolv.conf, sends nothing). */
	{
		struct dns_opts o = { 0 };
		char err[256] = "";

		o.servers = "127.0.0.1:53,[::1]:5353";
		d = dns_new(&loop, &o, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL(d);
		dns_free(d);
		o.servers = NULL;
		d = dns_new(&loop, &o, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL(d);
		dns_free(d);
	}
	dns_free(NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
}

/* dns_free right after queueing (nothing run yet) and after the queries
 * are on the wire to dnsmasq: no crash, no leaked handle (ASan: no leak). */
static void test_free_in_flight(void)
{
	uv_loop_t loop;
	struct dns *d;
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < WORLD_N; i++)
		dns_mail_lookup(d, world[i].domain, NULL);
	CU_ASSERT_EQUAL(dns_pending(d), WORLD_N);
	dns_close_all(&loop, d);

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < WORLD_N; i++)
		dns_mail_lookup(d, world[i].domain, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);   /* some answered, some still out */
	CU_ASSERT(dns_pending(d) > 0);
	dns_close_all(&loop, d);
}

static void watchdog_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
	uv_stop(t->loop);
}

/* Once every lookup is answered the dns object must not keep the loop
 * alive: a caller's uv_run(DEFAULT) has to return. */
static void test_idle_loop_ends(void)
{
	uv_loop_t loop;
	uv_timer_t watchdog;
	struct dns *d;
	int hung = 0;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "aaaaonly.test", NULL), DNS_OK);
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "good.test", NULL), DNS_OK);

	uv_timer_init(&loop, &watchdog);
	watchdog.data = &hung;
	uv_timer_start(&watchdog, watchdog_cb, 2000, 0);
	uv_unref((uv_handle_t *)&watchdog);   /* fires only if else is alive */
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(hung, 0);
	uv_close((uv_handle_t *)&watchdog, NULL);
	dns_close_all(&loop, d);
}

/* ---- MX routes (dns_route_lookup) ---- */

#define GOT_MAX_HOSTS 8
#define GOT_MAX_ADDRS 4

struct got_host {
	char name[128];
	unsigned pref;
	int implicit;
	size_t naddrs;
	char addrs[GOT_MAX_ADDRS][INET6_ADDRSTRLEN];
};

/*
 * What one route callback saw, copied out (the struct it gets dies with
 * the call), plus what the callback should do: free a dns object, or
 * start another lookup.
 */
struct got {
	int calls;
	int returned;              /* dns_route_lookup() had returned */
	int early;                 /* the callback ran before that */
	char bad[160];             /* first malformed thing seen, or "" */
	enum dns_route_status status;
	char detail[64];
	size_t nhosts;
	struct got_host hosts[GOT_MAX_HOSTS];

	struct dns *free_d;        /* dns_free() this from the callback */
	struct dns *chain_d;       /* start chain_domain on chain_d ... */
	const char *chain_domain;
	struct got *chain_got;     /* ... reporting to chain_got */
	int chain_ret;             /* what that dns_route_lookup returned */
};

/* Note the first malformed thing in g->bad. */
static void got_bad(struct got *g, const char *what, size_t i)
{
	if (g->bad[0] == '\0')
		snprintf(g->bad, sizeof(g->bad), "%s (host %zu)", what, i);
}

/* Copy one address out; check its family order and zero port. */
static void got_addr(struct got *g, size_t i, struct got_host *h,
                     const struct sockaddr_storage *ss, int *seen6)
{
	char *out = h->addrs[h->naddrs];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		if (*seen6)
			got_bad(g, "IPv4 after IPv6", i);
		if (sin->sin_port != 0)
			got_bad(g, "port not 0", i);
		inet_ntop(AF_INET, &sin->sin_addr, out, INET6_ADDRSTRLEN);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		*seen6 = 1;
		if (sin6->sin6_port != 0)
			got_bad(g, "port not 0", i);
		inet_ntop(AF_INET6, &sin6->sin6_addr, out, INET6_ADDRSTRLEN);
	} else {
		got_bad(g, "unknown address family", i);
		snprintf(out, INET6_ADDRSTRLEN, "?");
	}
	h->naddrs++;
}

/* The route callback: copy everything, check the struct's invariants,
 * then do what the test asked (dns_free, a chained lookup). */
static void got_cb(void *arg, const struct dns_route *r)
{
	struct got *g = arg;
	size_t i, j;

	g->calls++;
	if (!g->returned)
		g->early = 1;
	g->status = r->status;
	if (r->detail == NULL)
		got_bad(g, "NULL detail", 0);
	snprintf(g->detail, sizeof(g->detail), "%s",
	         r->detail != NULL ? r->detail : "");
	if ((r->status == DNS_ROUTE_OK) != (r->nhosts > 0))
		got_bad(g, "nhosts does not match the status", r->nhosts);
	if (r->nhosts > 0 && r->hosts == NULL)
		got_bad(g, "NULL hosts", 0);
	if (r->nhosts > GOT_MAX_HOSTS)
		got_bad(g, "too many hosts for the test", r->nhosts);
	g->nhosts = 0;
	for (i = 0; r->hosts != NULL && i < r->nhosts && i < GOT_MAX_HOSTS;
	     i++) {
		const struct dns_route_host *rh = &r->hosts[i];
		struct got_host *h = &g->hosts[g->nhosts++];
		int seen6 = 0;

		snprintf(h->name, sizeof(h->name), "%s",
		         rh->name != NULL ? rh->name : "(null)");
		h->pref = rh->pref;
		h->implicit = rh->implicit;
		h->naddrs = 0;
		if (i > 0 && rh->pref < r->hosts[i - 1].pref)
			got_bad(g, "preference order", i);
		if (rh->naddrs == 0 || rh->addrs == NULL)
			got_bad(g, "host without addresses", i);
		if (rh->naddrs > GOT_MAX_ADDRS)
			got_bad(g, "too many addresses for the test", i);
		for (j = 0; rh->addrs != NULL && j < rh->naddrs &&
		     j < GOT_MAX_ADDRS; j++)
			got_addr(g, i, h, &rh->addrs[j], &seen6);
	}
	if (g->free_d != NULL)
		dns_free(g->free_d);
	if (g->chain_d != NULL) {
		memset(g->chain_got, 0, sizeof(*g->chain_got));
		g->chain_ret = dns_route_lookup(g->chain_d, g->chain_domain,
		                                got_cb, g->chain_got);
		g->chain_got->returned = 1;
	}
}

/* dns_route_lookup into a cleared 'g'; its return value. */
static int route_start(struct dns *d, const char *domain, struct got *g)
{
	int r;

	memset(g, 0, sizeof(*g));
	r = dns_route_lookup(d, domain, got_cb, g);
	g->returned = 1;
	return r;
}

/* Run the loop until no route lookup is pending (or the deadline). */
static void route_wait_idle(uv_loop_t *loop, struct dns *d)
{
	uint64_t deadline = uv_hrtime() + WAIT_NS;

	while (dns_route_pending(d) > 0 && uv_hrtime() < deadline)
		uv_run(loop, UV_RUN_ONCE);
}

/* One lookup, run to its answer. */
static void route_wait(uv_loop_t *loop, struct dns *d, const char *domain,
                       struct got *g)
{
	uint64_t deadline = uv_hrtime() + WAIT_NS;

	CU_ASSERT_EQUAL(route_start(d, domain, g), 0);
	while (g->calls == 0 && uv_hrtime() < deadline)
		uv_run(loop, UV_RUN_ONCE);
}

/* Order-free text of a route's hosts: "PREF NAME[*] ADDR ADDR; ..." sorted
 * by preference then name ('*' marks an implicit MX); addresses in the
 * order given (IPv4 first is checked by got_cb). */
static void got_describe(const struct got *g, char *out, size_t outlen)
{
	size_t idx[GOT_MAX_HOSTS], i, j, len = 0;

	for (i = 0; i < g->nhosts; i++)
		idx[i] = i;
	for (i = 1; i < g->nhosts; i++)         /* insertion sort */
		for (j = i; j > 0; j--) {
			const struct got_host *a = &g->hosts[idx[j - 1]];
			const struct got_host *b = &g->hosts[idx[j]];
			size_t t;

			if (a->pref < b->pref || (a->pref == b->pref &&
			    strcmp(a->name, b->name) <= 0))
				break;
			t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	out[0] = '\0';
	for (i = 0; i < g->nhosts && len < outlen; i++) {
		const struct got_host *h = &g->hosts[idx[i]];

		len += (size_t)snprintf(out + len, outlen - len, "%s%u %s%s",
		                        i > 0 ? "; " : "", h->pref, h->name,
		                        h->implicit ? "*" : "");
		for (j = 0; j < h->naddrs && len < outlen; j++)
			len += (size_t)snprintf(out + len, outlen - len, " %s",
			                        h->addrs[j]);
	}
}

/* The fixture world's routes (tests/with_dnsmasq.sh). */
static const struct {
	const char *domain;
	enum dns_route_status status;
	const char *detail;
	const char *hosts;         /* got_describe() text */
} routes[] = {
	{ "good.test", DNS_ROUTE_OK, "MX", "10 mx1.good.test 127.0.0.2" },
	{ "acme.example", DNS_ROUTE_OK, "MX",
	  "10 mail.acme.example 127.0.0.4" },
	{ "prefs.test", DNS_ROUTE_OK, "MX",
	  "10 a.prefs.test 127.0.1.1; 20 b.prefs.test 127.0.1.2; "
	  "20 c.prefs.test 127.0.1.3; 20 d.prefs.test 127.0.1.4; "
	  "30 e.prefs.test 127.0.1.5" },
	{ "dual.test", DNS_ROUTE_OK, "MX", "10 mx.dual.test 127.0.0.7 fd00::7" },
	{ "halfdead.test", DNS_ROUTE_OK, "MX",
	  "20 mx.halfdead.test 127.0.0.9" },
	{ "alias.test", DNS_ROUTE_OK, "MX", "10 mx.alias.test 127.0.0.2" },
	{ "cnamemx.test", DNS_ROUTE_OK, "MX", "10 mx1.good.test 127.0.0.2" },
	{ "dupmx.test", DNS_ROUTE_OK, "MX", "10 mx1.good.test 127.0.0.2" },
	{ "mixnull.test", DNS_ROUTE_OK, "MX", "10 mx1.good.test 127.0.0.2" },
	{ "aonly.test", DNS_ROUTE_OK, "implicit MX", "0 aonly.test* 127.0.0.3" },
	{ "aaaaonly.test", DNS_ROUTE_OK, "implicit MX",
	  "0 aaaaonly.test* ::1" },
	{ "dualonly.test", DNS_ROUTE_OK, "implicit MX",
	  "0 dualonly.test* 127.0.0.8 fd00::8" },
	{ "cnamea.test", DNS_ROUTE_OK, "implicit MX",
	  "0 cnamea.test* 127.0.0.3" },
	{ "aonly.example", DNS_ROUTE_OK, "implicit MX",
	  "0 aonly.example* 127.0.0.6" },
	{ "nullmx.test", DNS_ROUTE_NOMAIL, "null MX (RFC 7505)", "" },
	{ "nullmx.example", DNS_ROUTE_NOMAIL, "null MX (RFC 7505)", "" },
	{ "nxdomain.test", DNS_ROUTE_NOMAIL, "NXDOMAIN", "" },
	{ "nosuch.example", DNS_ROUTE_NOMAIL, "NXDOMAIN", "" },
	{ "nomail.test", DNS_ROUTE_NOMAIL, "no MX and no A/AAAA", "" },
	{ "refused.test", DNS_ROUTE_TEMPFAIL, "REFUSED", "" },
	{ "multimx.test", DNS_ROUTE_TEMPFAIL, "MX hosts have no addresses", "" },
	{ "badmx.test", DNS_ROUTE_TEMPFAIL, "MX hosts have no addresses", "" },
};
#define ROUTES_N (sizeof(routes) / sizeof(routes[0]))

/* g holds exactly one well-formed answer equal to routes[i]. */
static void route_check(size_t i, const struct got *g)
{
	char desc[512];

	got_describe(g, desc, sizeof(desc));
	check(g->calls == 1, __LINE__, "%s: %d calls", routes[i].domain,
	      g->calls);
	check(!g->early, __LINE__, "%s: callback before dns_route_lookup "
	      "returned", routes[i].domain);
	check(g->bad[0] == '\0', __LINE__, "%s: %s", routes[i].domain, g->bad);
	check(g->status == routes[i].status, __LINE__, "%s: status %d, want %d",
	      routes[i].domain, (int)g->status, (int)routes[i].status);
	check(strcmp(g->detail, routes[i].detail) == 0, __LINE__,
	      "%s: detail '%s', want '%s'", routes[i].domain, g->detail,
	      routes[i].detail);
	check(strcmp(desc, routes[i].hosts) == 0, __LINE__,
	      "%s: hosts '%s', want '%s'", routes[i].domain, desc,
	      routes[i].hosts);
}

/* Each fixture domain alone. */
static void test_routes_one_by_one(void)
{
	uv_loop_t loop;
	struct dns *d;
	struct got g;
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < ROUTES_N; i++) {
		route_wait(&loop, d, routes[i].domain, &g);
		route_check(i, &g);
		CU_ASSERT_EQUAL(dns_route_pending(d), 0);
	}
	dns_close_all(&loop, d);
}

/* All fixture domains at once, with the default limit and with
 * max_inflight = 2 (then most wait in the FIFO); route lookups do not show
 * in dns_pending(), which counts mail lookups only. */
static void test_routes_concurrent(void)
{
	static const unsigned limits[] = { 0, 2 };
	static struct got g[ROUTES_N];
	size_t i, k;

	for (k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		uv_loop_t loop;
		struct dns *d;

		uv_loop_init(&loop);
		d = dns_open(&loop, NULL, 0, 0, limits[k]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		for (i = 0; i < ROUTES_N; i++)
			CU_ASSERT_EQUAL(route_start(d, routes[i].domain,
			                            &g[i]), 0);
		CU_ASSERT_EQUAL(dns_route_pending(d), ROUTES_N);
		CU_ASSERT_EQUAL(dns_pending(d), 0);
		route_wait_idle(&loop, d);
		CU_ASSERT_EQUAL(dns_route_pending(d), 0);
		for (i = 0; i < ROUTES_N; i++)
			route_check(i, &g[i]);
		dns_close_all(&loop, d);
	}
}

/* prefs.test: a (10) always first, e (30) always last, b/c/d (20) in the
 * middle in random order: over 60 lookups each of b, c, d comes first
 * among them at least once (a fixed or rotating-free order would fail;
 * the chance that a fair shuffle fails is 3 * (2/3)^60 ~ 1e-10). */
static void test_route_shuffle(void)
{
	enum { N = 60 };
	static struct got g[N];
	unsigned first[3] = { 0, 0, 0 };
	uv_loop_t loop;
	struct dns *d;
	size_t i, j;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < N; i++)
		CU_ASSERT_EQUAL(route_start(d, "prefs.test", &g[i]), 0);
	route_wait_idle(&loop, d);
	for (i = 0; i < N; i++) {
		unsigned seen = 0;

		check(g[i].calls == 1 && g[i].status == DNS_ROUTE_OK &&
		      g[i].nhosts == 5, __LINE__, "lookup %zu: %d calls, "
		      "status %d '%s', %zu hosts", i, g[i].calls,
		      (int)g[i].status, g[i].detail, g[i].nhosts);
		if (g[i].nhosts != 5)
			continue;
		CU_ASSERT_STRING_EQUAL(g[i].hosts[0].name, "a.prefs.test");
		CU_ASSERT_STRING_EQUAL(g[i].hosts[4].name, "e.prefs.test");
		for (j = 1; j <= 3; j++) {
			const char *n = g[i].hosts[j].name;

			CU_ASSERT_EQUAL(g[i].hosts[j].pref, 20);
			if (strlen(n) == 12 && n[0] >= 'b' && n[0] <= 'd' &&
			    strcmp(n + 1, ".prefs.test") == 0)
				seen |= 1u << (n[0] - 'b');
		}
		CU_ASSERT_EQUAL(seen, 7);     /* b, c, d each once */
		first[g[i].hosts[1].name[0] - 'b' < 3 ?
		      g[i].hosts[1].name[0] - 'b' : 0]++;
	}
	for (j = 0; j < 3; j++)
		check(first[j] > 0, __LINE__, "%c.prefs.test never first of "
		      "the pref-20 hosts in %d lookups (%u/%u/%u)",
		      (int)('b' + j), N, first[0], first[1], first[2]);
	dns_close_all(&loop, d);
}

/* SERVFAIL on the MX query: TEMPFAIL, and no A/AAAA fallback (one query
 * on the wire). */
static void test_route_servfail_no_fallback(void)
{
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	struct got g;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, 2 /* SERVFAIL */), 0);
	d = dns_open(&loop, f.addr, 1000, 2, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	route_wait(&loop, d, "good.test", &g);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_TEMPFAIL);
	CU_ASSERT_STRING_EQUAL(g.detail, "SERVFAIL");
	CU_ASSERT_EQUAL(g.nhosts, 0);
	run_for(&loop, 50);
	CU_ASSERT_EQUAL(f.queries, 1);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* NODATA for MX, then the implicit MX's A/AAAA: all NODATA -> NOMAIL after
 * exactly MX + A + AAAA; SERVFAIL on A/AAAA -> TEMPFAIL, not NOMAIL. */
static void test_route_implicit_via_fake(void)
{
	static const struct {
		int rcode_addr;
		enum dns_route_status status;
		const char *detail;
	} cases[] = {
		{ 0, DNS_ROUTE_NOMAIL, "no MX and no A/AAAA" },
		{ 2, DNS_ROUTE_TEMPFAIL, "SERVFAIL" },
		{ 5, DNS_ROUTE_TEMPFAIL, "REFUSED" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uv_loop_t loop;
		struct fake_dns f;
		struct dns *d;
		struct got g;

		uv_loop_init(&loop);
		CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, 0), 0);
		f.rcode_addr = cases[i].rcode_addr;
		d = dns_open(&loop, f.addr, 1000, 1, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		route_wait(&loop, d, "nodata.test", &g);
		CU_ASSERT_EQUAL(g.calls, 1);
		check(g.status == cases[i].status &&
		      strcmp(g.detail, cases[i].detail) == 0, __LINE__,
		      "A/AAAA rcode %d: %d '%s', want %d '%s'",
		      cases[i].rcode_addr, (int)g.status, g.detail,
		      (int)cases[i].status, cases[i].detail);
		CU_ASSERT_EQUAL(f.queries, 3);
		fake_stop(&f);
		dns_close_all(&loop, d);
	}
}

/* A resolver that never answers: TEMPFAIL "timeout" after ~200 ms. */
static void test_route_timeout(void)
{
	uv_loop_t loop;
	struct dns *d;
	struct got g;
	char servers[32];
	unsigned port = 0;
	uint64_t t0, ms;
	int fd;

	uv_loop_init(&loop);
	fd = silent_socket(&port);
	CU_ASSERT_FATAL(fd >= 0);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
	d = dns_open(&loop, servers, 200, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	t0 = uv_hrtime();
	route_wait(&loop, d, "good.test", &g);
	ms = (uv_hrtime() - t0) / 1000000;
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_TEMPFAIL);
	CU_ASSERT_STRING_EQUAL(g.detail, "timeout");
	CU_ASSERT(ms >= 150);
	CU_ASSERT(ms < 1000);
	dns_close_all(&loop, d);
	close(fd);
}

/* A name c-ares cannot encode fails inside ares_query(), synchronously;
 * the callback still comes later, from the loop, and says NOMAIL. */
static void test_route_never_synchronous(void)
{
	char name[128];
	uv_loop_t loop;
	struct dns *d;
	struct got g;

	memset(name, 'x', 64);                 /* a 64-octet label */
	strcpy(name + 64, ".test");
	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(route_start(d, name, &g), 0);
	CU_ASSERT_EQUAL(g.calls, 0);
	CU_ASSERT_EQUAL(dns_route_pending(d), 1);
	uv_run(&loop, UV_RUN_ONCE);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.early, 0);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_NOMAIL);
	CU_ASSERT_STRING_EQUAL(g.detail, ares_strerror(ARES_EBADNAME));
	CU_ASSERT_EQUAL(dns_route_pending(d), 0);
	dns_close_all(&loop, d);
}

/* max_inflight = 2 caps route lookups on the wire, counted apart from mail
 * lookups (2 + 2 queries to a silent server); dns_free() then calls every
 * pending route callback once with TEMPFAIL "cancelled" before it
 * returns, and never again. */
static void test_route_paced_then_cancelled(void)
{
	enum { N = 10 };
	static struct got g[N];
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	char name[64];
	int i;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, -1), 0);
	d = dns_open(&loop, f.addr, 5000, 1, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "slow%d.test", i);
		CU_ASSERT_EQUAL(route_start(d, name, &g[i]), 0);
	}
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "mail%d.test", i);
		CU_ASSERT_EQUAL(dns_mail_lookup(d, name, NULL), DNS_PENDING);
	}
	run_for(&loop, 300);
	CU_ASSERT_EQUAL(f.queries, 4);
	CU_ASSERT_EQUAL(dns_route_pending(d), N);
	CU_ASSERT_EQUAL(dns_pending(d), 3);
	for (i = 0; i < N; i++)
		CU_ASSERT_EQUAL(g[i].calls, 0);

	dns_free(d);
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(g[i].calls, 1);
		CU_ASSERT_EQUAL(g[i].status, DNS_ROUTE_TEMPFAIL);
		CU_ASSERT_STRING_EQUAL(g[i].detail, "cancelled");
		CU_ASSERT_EQUAL(g[i].nhosts, 0);
	}
	fake_stop(&f);
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	for (i = 0; i < N; i++)
		CU_ASSERT_EQUAL(g[i].calls, 1);
}

/* Route pacing counts queries, not domains, and finishes what it started
 * first: with max_inflight = 2, three lookups of 5-MX domains whose hosts
 * never answer put exactly 4 queries on the wire: MX, MX, then two
 * address queries of the first two lookups (not the third lookup's MX). */
static void test_route_paces_queries(void)
{
	static struct got g[3];
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;
	int i;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, -1), 0);
	f.mx_hosts = 5;
	d = dns_open(&loop, f.addr, 5000, 1, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(route_start(d, "one.test", &g[0]), 0);
	CU_ASSERT_EQUAL(route_start(d, "two.test", &g[1]), 0);
	CU_ASSERT_EQUAL(route_start(d, "three.test", &g[2]), 0);
	run_for(&loop, 300);
	CU_ASSERT_EQUAL(f.queries, 4);
	CU_ASSERT_EQUAL(f.qtypes[0], 15);
	CU_ASSERT_EQUAL(f.qtypes[1], 15);
	for (i = 2; i < 4; i++)
		check(f.qtypes[i] == 1 || f.qtypes[i] == 28, __LINE__,
		      "query %d: type %d, want A or AAAA", i, f.qtypes[i]);
	CU_ASSERT_EQUAL(dns_route_pending(d), 3);
	dns_free(d);
	for (i = 0; i < 3; i++)
		CU_ASSERT_STRING_EQUAL(g[i].detail, "cancelled");
	fake_stop(&f);
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
}

/* The fake's MX records end to end: 5 equal hosts, of which none has an
 * address (NXDOMAIN) -> TEMPFAIL after all 10 address queries. */
static void test_route_fake_mx_no_addresses(void)
{
	struct got g;
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, 3 /* NXDOMAIN */), 0);
	f.mx_hosts = 5;
	d = dns_open(&loop, f.addr, 1000, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	route_wait(&loop, d, "five.test", &g);
	check(g.bad[0] == '\0', __LINE__, "%s", g.bad);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_TEMPFAIL);
	CU_ASSERT_STRING_EQUAL(g.detail, "MX hosts have no addresses");
	CU_ASSERT_EQUAL(f.queries, 11);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* IPv4 addresses come first even when the AAAA answer arrives before the
 * A answer (the fake holds A back). */
static void test_route_ipv4_first(void)
{
	struct got g;
	uv_loop_t loop;
	struct fake_dns f;
	struct dns *d;

	uv_loop_init(&loop);
	CU_ASSERT_EQUAL_FATAL(fake_start(&loop, &f, -1), 0);
	f.mx_hosts = 1;
	f.a_after_aaaa = 1;
	d = dns_open(&loop, f.addr, 1000, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	route_wait(&loop, d, "order.test", &g);
	check(g.bad[0] == '\0', __LINE__, "%s", g.bad);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_OK);
	CU_ASSERT_EQUAL_FATAL(g.nhosts, 1);
	CU_ASSERT_STRING_EQUAL(g.hosts[0].name, "mx1.order.test");
	CU_ASSERT_EQUAL(g.hosts[0].naddrs, 2);
	CU_ASSERT_STRING_EQUAL(g.hosts[0].addrs[0], "192.0.2.1");
	CU_ASSERT_STRING_EQUAL(g.hosts[0].addrs[1], "2001:db8::1");
	/* The answers really came AAAA first: the A query was sent first. */
	CU_ASSERT_EQUAL(f.queries, 3);
	CU_ASSERT_EQUAL(f.qtypes[1], 1);
	fake_stop(&f);
	dns_close_all(&loop, d);
}

/* dns_free() with route lookups queued (nothing run), then with some in
 * flight and some answered-but-undelivered: every callback exactly once,
 * all before dns_free() returns; no leak (ASan). */
static void test_route_free_in_flight(void)
{
	static struct got g[ROUTES_N];
	int pass;
	size_t i;

	for (pass = 0; pass < 3; pass++) {
		unsigned cancelled = 0;
		uv_loop_t loop;
		struct dns *d;

		uv_loop_init(&loop);
		d = dns_open(&loop, NULL, 0, 0, 4);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		for (i = 0; i < ROUTES_N; i++)
			route_start(d, routes[i].domain, &g[i]);
		for (i = 0; i < (size_t)pass; i++)
			uv_run(&loop, UV_RUN_NOWAIT);
		if (pass > 0)
			CU_ASSERT(dns_route_pending(d) > 0);
		dns_free(d);
		for (i = 0; i < ROUTES_N; i++) {
			CU_ASSERT_EQUAL(g[i].calls, 1);
			if (strcmp(g[i].detail, "cancelled") == 0)
				cancelled++;
			else
				route_check(i, &g[i]);
		}
		CU_ASSERT(cancelled > 0);
		if (pass == 0)
			CU_ASSERT_EQUAL(cancelled, ROUTES_N);
		uv_run(&loop, UV_RUN_DEFAULT);
		CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	}
}

/* A callback that calls dns_free(): the lookups still queued get
 * "cancelled" (from inside that callback); their own dns_free() is then a
 * no-op and a new lookup fails; the loop still ends clean. */
static void test_route_free_in_callback(void)
{
	static struct got g[3], chained;
	uv_loop_t loop;
	struct dns *d;
	size_t i;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(route_start(d, "good.test", &g[0]), 0);
	CU_ASSERT_EQUAL(route_start(d, "aonly.test", &g[1]), 0);
	CU_ASSERT_EQUAL(route_start(d, "nullmx.test", &g[2]), 0);
	g[0].free_d = d;
	g[1].free_d = d;               /* second dns_free: no-op */
	g[2].chain_d = d;              /* lookup on a closing object */
	g[2].chain_domain = "good.test";
	g[2].chain_got = &chained;
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(g[i].calls, 1);
	CU_ASSERT_EQUAL(g[0].status, DNS_ROUTE_OK);
	CU_ASSERT_STRING_EQUAL(g[1].detail, "cancelled");
	CU_ASSERT_STRING_EQUAL(g[2].detail, "cancelled");
	CU_ASSERT_EQUAL(g[2].chain_ret, -1);
	CU_ASSERT_EQUAL(chained.calls, 0);
}

/* A callback that starts the next lookup: it is answered too, later. */
static void test_route_lookup_in_callback(void)
{
	static struct got g, chained;
	uv_loop_t loop;
	struct dns *d;
	uint64_t deadline = uv_hrtime() + WAIT_NS;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(route_start(d, "good.test", &g), 0);
	g.chain_d = d;
	g.chain_domain = "dualonly.test";
	g.chain_got = &chained;
	while ((g.calls == 0 || chained.calls == 0) && uv_hrtime() < deadline)
		uv_run(&loop, UV_RUN_ONCE);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_OK);
	CU_ASSERT_EQUAL(g.chain_ret, 0);
	CU_ASSERT_EQUAL(chained.calls, 1);
	CU_ASSERT_EQUAL(chained.early, 0);
	CU_ASSERT_EQUAL(chained.status, DNS_ROUTE_OK);
	CU_ASSERT_EQUAL(chained.nhosts, 1);
	CU_ASSERT_EQUAL(chained.hosts[0].naddrs, 2);
	CU_ASSERT_EQUAL(chained.hosts[0].implicit, 1);
	CU_ASSERT_EQUAL(dns_route_pending(d), 0);
	dns_close_all(&loop, d);
}

/* Routes and verdicts on one object do not disturb each other, and once
 * all is answered the object does not keep uv_run(DEFAULT) alive. */
static void test_route_and_mail_idle_loop_ends(void)
{
	static struct got g;
	uv_loop_t loop;
	uv_timer_t watchdog;
	struct dns *d;
	const char *detail = NULL;
	int hung = 0;

	uv_loop_init(&loop);
	d = dns_open(&loop, NULL, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(route_start(d, "dual.test", &g), 0);
	CU_ASSERT_EQUAL(wait_verdict(&loop, d, "dual.test", &detail), DNS_OK);
	CU_ASSERT_STRING_EQUAL(detail, "MX");
	route_wait_idle(&loop, d);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.status, DNS_ROUTE_OK);

	uv_timer_init(&loop, &watchdog);
	watchdog.data = &hung;
	uv_timer_start(&watchdog, watchdog_cb, 2000, 0);
	uv_unref((uv_handle_t *)&watchdog);
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(hung, 0);
	uv_close((uv_handle_t *)&watchdog, NULL);
	dns_close_all(&loop, d);
}

/* dns_addr_is_private over a table of IPv4 and IPv6 addresses, edges of
 * each range included; NULL and AF_UNIX count as private. */
static void test_addr_is_private(void)
{
	static const struct {
		const char *addr;
		int priv;
	} cases[] = {
		{ "0.0.0.0", 1 }, { "0.255.255.255", 1 },
		{ "1.0.0.0", 0 }, { "8.8.8.8", 0 },
		{ "9.255.255.255", 0 }, { "10.0.0.0", 1 },
		{ "10.255.255.255", 1 }, { "11.0.0.0", 0 },
		{ "100.63.255.255", 0 }, { "100.64.0.0", 1 },
		{ "100.127.255.255", 1 }, { "100.128.0.0", 0 },
		{ "126.255.255.255", 0 }, { "127.0.0.1", 1 },
		{ "127.255.255.255", 1 }, { "128.0.0.0", 0 },
		{ "169.253.255.255", 0 }, { "169.254.0.1", 1 },
		{ "169.255.0.0", 0 }, { "172.15.255.255", 0 },
		{ "172.16.0.0", 1 }, { "172.31.255.255", 1 },
		{ "172.32.0.0", 0 }, { "192.0.0.8", 1 },
		{ "192.0.1.1", 0 }, { "192.0.2.1", 1 },
		{ "192.88.99.1", 0 }, { "192.167.255.255", 0 },
		{ "192.168.1.1", 1 }, { "192.169.0.0", 0 },
		{ "198.17.255.255", 0 }, { "198.18.0.0", 1 },
		{ "198.19.255.255", 1 }, { "198.20.0.0", 0 },
		{ "198.51.100.7", 1 }, { "203.0.113.9", 1 },
		{ "203.0.114.1", 0 }, { "223.255.255.255", 0 },
		{ "224.0.0.1", 1 }, { "239.255.255.255", 1 },
		{ "240.0.0.1", 1 }, { "255.255.255.255", 1 },
		{ "::", 1 }, { "::1", 1 }, { "::2", 1 },
		{ "::127.0.0.1", 1 },             /* IPv4-compatible */
		{ "::ffff:127.0.0.1", 1 }, { "::ffff:10.1.2.3", 1 },
		{ "::ffff:100.64.0.1", 1 }, { "::ffff:8.8.8.8", 0 },
		{ "64:ff9b::192.168.0.1", 1 }, { "64:ff9b::8.8.4.4", 0 },
		{ "64:ff9b:1::1", 1 }, { "100::1", 1 },
		{ "1fff:ffff::1", 1 }, { "2000::1", 0 },
		{ "2001:4860:4860::8888", 0 }, { "2a00:1450:4001::1b", 0 },
		{ "2001:db8::1", 1 }, { "2001:db9::1", 0 },
		{ "2001:2::1", 1 }, { "2001:2:1::1", 0 },
		{ "2002:0a00:0001::1", 1 }, { "2002:0808:0808::1", 0 },
		{ "3fff::1", 1 }, { "3fff:0fff::1", 1 }, { "3fff:1000::1", 0 },
		{ "3ffe::1", 0 }, { "4000::1", 1 },
		{ "fbff::1", 1 }, { "fc00::1", 1 }, { "fd12:3456::1", 1 },
		{ "fe80::1", 1 }, { "febf::1", 1 }, { "fec0::1", 1 },
		{ "ff02::1", 1 }, { "ffff:ffff::1", 1 },
	};
	struct sockaddr_un un;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		int got;

		memset(&ss, 0, sizeof(ss));
		if (strchr(cases[i].addr, ':') != NULL) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			sin6->sin6_family = AF_INET6;
			CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, cases[i].addr,
			                                &sin6->sin6_addr), 1);
		} else {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(25);
			CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, cases[i].addr,
			                                &sin->sin_addr), 1);
		}
		got = dns_addr_is_private((const struct sockaddr *)&ss);
		check(got == cases[i].priv, __LINE__, "%s: %d, want %d",
		      cases[i].addr, got, cases[i].priv);
	}
	CU_ASSERT_EQUAL(dns_addr_is_private(NULL), 1);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	CU_ASSERT_EQUAL(dns_addr_is_private((const struct sockaddr *)&un), 1);
}

static const struct test_case tests[] = {
	{ "verdicts_one_by_one", test_verdicts_one_by_one },
	{ "verdicts_concurrent", test_verdicts_concurrent },
	{ "cached", test_cached },
	{ "asked_once", test_asked_once },
	{ "max_inflight_all_resolve", test_max_inflight_all_resolve },
	{ "max_inflight_caps_wire", test_max_inflight_caps_wire },
	{ "default_max_inflight", test_default_max_inflight },
	{ "timeout", test_timeout },
	{ "servfail_notimp", test_servfail_notimp },
	{ "connection_refused", test_connection_refused },
	{ "bad_servers", test_bad_servers },
	{ "free_in_flight", test_free_in_flight },
	{ "idle_loop_ends", test_idle_loop_ends },
	{ "routes_one_by_one", test_routes_one_by_one },
	{ "routes_concurrent", test_routes_concurrent },
	{ "route_shuffle", test_route_shuffle },
	{ "route_servfail_no_fallback", test_route_servfail_no_fallback },
	{ "route_implicit_via_fake", test_route_implicit_via_fake },
	{ "route_timeout", test_route_timeout },
	{ "route_never_synchronous", test_route_never_synchronous },
	{ "route_paced_then_cancelled", test_route_paced_then_cancelled },
	{ "route_paces_queries", test_route_paces_queries },
	{ "route_fake_mx_no_addresses", test_route_fake_mx_no_addresses },
	{ "route_ipv4_first", test_route_ipv4_first },
	{ "route_free_in_flight", test_route_free_in_flight },
	{ "route_free_in_callback", test_route_free_in_callback },
	{ "route_lookup_in_callback", test_route_lookup_in_callback },
	{ "route_and_mail_idle_loop_ends", test_route_and_mail_idle_loop_ends },
	{ "addr_is_private", test_addr_is_private },
	{ 0 },
};

int main(void)
{
	if (test_server() == NULL)
		return 1;
	return test_run("dns", tests);
}
