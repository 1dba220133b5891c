/*
 * test_dns.c - engine/dns.c against a real dnsmasq on loopback.
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

/*
 * A fake DNS server on 127.0.0.1:<ephemeral>: counts the queries it gets
 * and, when 'rcode' >= 0, answers each with that RCODE and no records (the
 * query echoed back with QR set, so c-ares accepts it as the reply).
 */
struct fake_dns {
	uv_udp_t udp;
	int rcode;                 /* -1: never answer */
	unsigned queries;
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

	(void)flags;
	if (n < 12 || from == NULL)
		return;
	f->queries++;
	if (f->rcode < 0)
		return;
	p[2] = (unsigned char)(p[2] | 0x80);                 /* QR */
	p[3] = (unsigned char)(0x80 | (f->rcode & 0x0f));    /* RA, RCODE */
	memset(p + 6, 0, 6);                                 /* AN, NS, AR */
	out = uv_buf_init(b->base, (unsigned)n);
	uv_udp_try_send(u, &out, 1, from);
}

/* Start the fake server; 0 or a libuv error. */
static int fake_start(uv_loop_t *loop, struct fake_dns *f, int rcode)
{
	struct sockaddr_in sa;
	int len = sizeof(sa), r;

	memset(f, 0, sizeof(*f));
	f->rcode = rcode;
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
	{ 0 },
};

int main(void)
{
	if (test_server() == NULL)
		return 1;
	return test_run("dns", tests);
}
