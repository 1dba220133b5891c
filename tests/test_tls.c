/*
 * test_tls.c - the memory-BIO TLS engine (engine/tls.h), with no sockets:
 * a client engine and a server engine are connected by moving ciphertext
 * between them in a loop.
 *
 * Certificates are made at start into a temporary directory by
 * tests/gen_test_certs.sh (openssl CLI): a test CA, a server certificate
 * for mx.test / localhost / 127.0.0.1, one for other.test from the same
 * CA, and a self-signed one for mx.test. The protocol-version tests use a
 * raw OpenSSL server (not our engine) so its versions can be capped.
 */
#include "cunit_main.h"

#include "tls.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define GEN_CERTS EDM_FIXTURES "/../gen_test_certs.sh"

/* Shorter than PATH_MAX so that certdir/name always fits. */
static char certdir[PATH_MAX - 64];

/* certdir/name into buf ("" if it does not fit). */
static const char *cert(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", certdir, name);

	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
	return buf;
}

/* Make the certificates once; 0 or -1. */
static int certs_make(void)
{
	char cmd[PATH_MAX * 2 + 64];
	const char *tmp = getenv("TMPDIR");

	snprintf(certdir, sizeof certdir, "%s/edm-tls-test.XXXXXX",
	         tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(certdir) == NULL) {
		perror("mkdtemp");
		certdir[0] = '\0';
		return -1;
	}
	snprintf(cmd, sizeof cmd, "sh '%s' '%s'", GEN_CERTS, certdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls: %s failed\n", cmd);
		return -1;
	}
	return 0;
}

/* Remove the certificate directory. */
static void certs_remove(void)
{
	static const char *const names[] = {
		"ca.pem", "ca.key", "server.pem", "server.key", "wrong.pem",
		"wrong.key", "self.pem", "self.key", "notpem.txt",
	};
	char path[PATH_MAX];

	if (certdir[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		unlink(cert(path, sizeof path, names[i]));
	rmdir(certdir);
}

/* ---- moving bytes ---- */

/* Move every pending ciphertext byte of from into to, step bytes at a
 * time; returns the count. */
static size_t move(struct tls *from, struct tls *to, size_t step)
{
	char buf[65536];
	size_t total = 0, n;

	if (step > sizeof buf)
		step = sizeof buf;
	while ((n = tls_take(from, buf, step)) > 0) {
		CU_ASSERT_EQUAL(tls_feed(to, buf, n), 0);
		total += n;
	}
	CU_ASSERT_EQUAL(tls_pending(from), 0);
	return total;
}

/* Drop every pending ciphertext byte of t. */
static void drain(struct tls *t)
{
	char buf[4096];

	while (tls_take(t, buf, sizeof buf) > 0)
		;
}

/* Run both handshakes, moving bytes, until neither wants more or nothing
 * moves; *rc / *rs get the last results. */
static void handshake_step(struct tls *c, struct tls *s, int *rc, int *rs,
                           size_t step)
{
	size_t moved;

	*rc = *rs = TLS_WANT;
	for (int i = 0; i < 100; i++) {
		if (*rc == TLS_WANT)
			*rc = tls_handshake(c);
		moved = move(c, s, step);
		if (*rs == TLS_WANT)
			*rs = tls_handshake(s);
		moved += move(s, c, step);
		if (*rc != TLS_WANT && *rs != TLS_WANT)
			return;
		if (moved == 0)
			return;
	}
}

/* Read everything t has (until 0 or an error) into buf; the byte count,
 * or the negative tls_read result if the first read failed. */
static ssize_t read_all(struct tls *t, char *buf, size_t cap, size_t chunk)
{
	size_t total = 0;
	ssize_t r;

	for (;;) {
		size_t want = cap - total < chunk ? cap - total : chunk;

		r = tls_read(t, buf + total, want);
		if (r <= 0)
			return total > 0 ? (ssize_t)total : r;
		total += (size_t)r;
		if (total == cap)
			return (ssize_t)total;
	}
}

/* ---- a client/server pair ---- */

struct pair {
	struct tls_config *cc, *sc;
	struct tls *c, *s;
	int rc, rs;
};

/* Configs and engines: client (verify, CA file name in certdir or NULL
 * for the system store, host) against a server with cert/key names. */
static int pair_open(struct pair *p, int verify, const char *ca,
                     const char *crt, const char *key, const char *host)
{
	char err[512], a[PATH_MAX], b[PATH_MAX];

	memset(p, 0, sizeof *p);
	p->cc = tls_config_client(verify, ca != NULL ?
	                          cert(a, sizeof a, ca) : NULL,
	                          err, sizeof err);
	check(p->cc != NULL, __LINE__, "client config: %s", err);
	p->sc = tls_config_server(cert(a, sizeof a, crt),
	                          cert(b, sizeof b, key), err, sizeof err);
	check(p->sc != NULL, __LINE__, "server config: %s", err);
	if (p->cc == NULL || p->sc == NULL)
		return -1;
	p->c = tls_new(p->cc, host);
	p->s = tls_new(p->sc, NULL);
	CU_ASSERT_PTR_NOT_NULL(p->c);
	CU_ASSERT_PTR_NOT_NULL(p->s);
	return p->c != NULL && p->s != NULL ? 0 : -1;
}

/* Open and run the handshake with whole-buffer moves. */
static int pair_connect(struct pair *p, int verify, const char *ca,
                        const char *crt, const char *key, const char *host)
{
	if (pair_open(p, verify, ca, crt, key, host) < 0)
		return -1;
	handshake_step(p->c, p->s, &p->rc, &p->rs, 65536);
	return 0;
}

static void pair_close(struct pair *p)
{
	tls_free(p->c);
	tls_free(p->s);
	tls_config_free(p->cc);
	tls_config_free(p->sc);
}

/* Both sides completed; print the errors when not. */
static void expect_ok(struct pair *p, unsigned line)
{
	check(p->rc == TLS_OK, line, "client handshake %d: %s", p->rc,
	      tls_error(p->c));
	check(p->rs == TLS_OK, line, "server handshake %d: %s", p->rs,
	      tls_error(p->s));
}

/* ---- handshakes and verification ---- */

static void test_handshake_ca_file(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 1);
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "TLSv1.3");
	CU_ASSERT_STRING_EQUAL(tls_version(p.s), "TLSv1.3");
	CU_ASSERT(strlen(tls_cipher(p.c)) > 0);
	CU_ASSERT_STRING_EQUAL(tls_cipher(p.c), tls_cipher(p.s));
	CU_ASSERT_STRING_EQUAL(tls_error(p.c), "");
	CU_ASSERT_STRING_EQUAL(tls_error(p.s), "");
	/* The server asked for no certificate: nothing to verify there. */
	CU_ASSERT_EQUAL(tls_verified(p.s), 0);
	/* Done stays done. */
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_OK);
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_OK);
	pair_close(&p);
}

static void test_before_handshake(void)
{
	struct pair p;
	char buf[16];

	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", "mx.test") == 0);
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "");
	CU_ASSERT_STRING_EQUAL(tls_cipher(p.c), "");
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	CU_ASSERT_STRING_EQUAL(tls_error(p.c), "");
	/* The server waits for a hello and has nothing to say. */
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_WANT);
	CU_ASSERT_EQUAL(tls_pending(p.s), 0);
	/* The client's first step produces its hello. */
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_WANT);
	CU_ASSERT(tls_pending(p.c) > 0);
	/* Writing or reading too early is refused, but not fatal. */
	CU_ASSERT_EQUAL(tls_write(p.c, "x", 1), TLS_ERR);
	CU_ASSERT(strstr(tls_error(p.c), "before the handshake") != NULL);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), TLS_ERR);
	CU_ASSERT(strstr(tls_error(p.s), "before the handshake") != NULL);
	handshake_step(p.c, p.s, &p.rc, &p.rs, 65536);
	expect_ok(&p, __LINE__);
	pair_close(&p);
}

static void test_small_takes(void)
{
	struct pair p;
	char buf[64];

	/* 5-byte pieces: records split across many feeds still parse. */
	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", "mx.test") == 0);
	handshake_step(p.c, p.s, &p.rc, &p.rs, 5);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_write(p.c, "EHLO client.test\r\n", 18), TLS_OK);
	move(p.c, p.s, 3);
	CU_ASSERT_EQUAL(read_all(p.s, buf, sizeof buf, sizeof buf), 18);
	CU_ASSERT(memcmp(buf, "EHLO client.test\r\n", 18) == 0);
	pair_close(&p);
}

static void test_hostname_mismatch_verify(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "wrong.pem",
	                             "wrong.key", "mx.test") == 0);
	CU_ASSERT_EQUAL(p.rc, TLS_ERR);
	check(strcmp(tls_error(p.c),
	             "certificate verify failed: hostname mismatch") == 0,
	      __LINE__, "error: %s", tls_error(p.c));
	/* The client's alert reached the server, which fails too. */
	CU_ASSERT_EQUAL(p.rs, TLS_ERR);
	check(strncmp(tls_error(p.s), "TLS handshake failed: ", 22) == 0 &&
	      strstr(tls_error(p.s), "alert") != NULL, __LINE__,
	      "server error: %s", tls_error(p.s));
	/* Failure is sticky. */
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_ERR);
	CU_ASSERT_EQUAL(tls_write(p.c, "x", 1), TLS_ERR);
	check(strstr(tls_error(p.c), "hostname mismatch") != NULL, __LINE__,
	      "error after: %s", tls_error(p.c));
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "");
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	pair_close(&p);
}

static void test_hostname_mismatch_noverify(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 0, "ca.pem", "wrong.pem",
	                             "wrong.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	CU_ASSERT_STRING_EQUAL(tls_error(p.c), "");
	pair_close(&p);
}

static void test_noverify_still_verifies(void)
{
	struct pair p;

	/* verify off, but the certificate is fine: tls_verified() says so. */
	CU_ASSERT_FATAL(pair_connect(&p, 0, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 1);
	pair_close(&p);
}

static void test_self_signed(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "self.pem",
	                             "self.key", "mx.test") == 0);
	CU_ASSERT_EQUAL(p.rc, TLS_ERR);
	check(strcmp(tls_error(p.c),
	             "certificate verify failed: self-signed certificate") == 0,
	      __LINE__, "error: %s", tls_error(p.c));
	CU_ASSERT_EQUAL(p.rs, TLS_ERR);
	pair_close(&p);

	CU_ASSERT_FATAL(pair_connect(&p, 0, "ca.pem", "self.pem",
	                             "self.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	pair_close(&p);
}

static void test_system_store(void)
{
	struct pair p;

	/* The test CA is not in the system store. */
	CU_ASSERT_FATAL(pair_connect(&p, 1, NULL, "server.pem", "server.key",
	                             "mx.test") == 0);
	CU_ASSERT_EQUAL(p.rc, TLS_ERR);
	check(strcmp(tls_error(p.c), "certificate verify failed: "
	             "unable to get local issuer certificate") == 0,
	      __LINE__, "error: %s", tls_error(p.c));
	pair_close(&p);

	CU_ASSERT_FATAL(pair_connect(&p, 0, NULL, "server.pem", "server.key",
	                             "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	pair_close(&p);
}

static void test_ip_literal(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "127.0.0.1") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 1);
	/* No SNI for an address (RFC 6066 3). */
	CU_ASSERT_PTR_NULL(tls_sni(p.s));
	CU_ASSERT_PTR_NULL(tls_sni(p.c));
	pair_close(&p);

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "127.0.0.2") == 0);
	CU_ASSERT_EQUAL(p.rc, TLS_ERR);
	check(strcmp(tls_error(p.c),
	             "certificate verify failed: IP address mismatch") == 0,
	      __LINE__, "error: %s", tls_error(p.c));
	pair_close(&p);

	/* A bracketed IPv6 literal: not in the certificate, and no SNI. */
	CU_ASSERT_FATAL(pair_connect(&p, 0, "ca.pem", "server.pem",
	                             "server.key", "[::1]") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 0);
	CU_ASSERT_PTR_NULL(tls_sni(p.s));
	pair_close(&p);
}

static void test_sni(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tls_sni(p.s));
	CU_ASSERT_STRING_EQUAL(tls_sni(p.s), "mx.test");
	pair_close(&p);

	/* A trailing dot (as DNS names come) is neither sent nor checked. */
	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "localhost.") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tls_sni(p.s));
	CU_ASSERT_STRING_EQUAL(tls_sni(p.s), "localhost");
	pair_close(&p);
}

static void test_no_hostname(void)
{
	struct pair p;

	/* No name: the chain alone is checked, and no SNI is sent. */
	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "wrong.pem",
	                             "wrong.key", NULL) == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_verified(p.c), 1);
	CU_ASSERT_PTR_NULL(tls_sni(p.s));
	pair_close(&p);
}

static void test_invalid_hostname(void)
{
	struct pair p;
	char name[300];

	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", name) == 0);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_ERR);
	CU_ASSERT(strncmp(tls_error(p.c), "invalid TLS host name", 21) == 0);
	CU_ASSERT_EQUAL(tls_pending(p.c), 0);
	pair_close(&p);
}

/* ---- application data ---- */

static void test_data_both_ways(void)
{
	static const char ehlo[] = "EHLO client.test\r\n";
	static const char reply[] = "250-mx.test\r\n250 SMTPUTF8\r\n";
	struct pair p;
	char buf[256];

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	/* Nothing to read yet: 0, not an error. */
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), 0);
	CU_ASSERT_EQUAL(tls_write(p.c, ehlo, strlen(ehlo)), TLS_OK);
	CU_ASSERT(tls_pending(p.c) > strlen(ehlo));
	move(p.c, p.s, 65536);
	CU_ASSERT_EQUAL(read_all(p.s, buf, sizeof buf, sizeof buf),
	                (ssize_t)strlen(ehlo));
	CU_ASSERT(memcmp(buf, ehlo, strlen(ehlo)) == 0);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), 0);

	CU_ASSERT_EQUAL(tls_write(p.s, reply, strlen(reply)), TLS_OK);
	move(p.s, p.c, 65536);
	CU_ASSERT_EQUAL(read_all(p.c, buf, sizeof buf, 7),
	                (ssize_t)strlen(reply));
	CU_ASSERT(memcmp(buf, reply, strlen(reply)) == 0);
	/* Zero-length calls are harmless. */
	CU_ASSERT_EQUAL(tls_write(p.c, "", 0), TLS_OK);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, 0), 0);
	pair_close(&p);
}

/* Deterministic bytes (xorshift32). */
static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		p[i] = (unsigned char)seed;
	}
}

static void test_large_payload(void)
{
	const size_t size = 1 << 20;
	unsigned char *src = malloc(size), *dst = malloc(size);
	struct pair p;
	size_t got = 0;
	ssize_t r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(src);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dst);
	fill(src, size, 12345);
	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);

	/* Client to server: 1 MB in 10,000-byte writes, moved and read as
	 * they go (the server reads in 3,000-byte bites). */
	for (size_t off = 0; off < size; off += 10000) {
		size_t n = size - off < 10000 ? size - off : 10000;

		CU_ASSERT_EQUAL_FATAL(tls_write(p.c, src + off, n), TLS_OK);
		move(p.c, p.s, 4096);
		r = read_all(p.s, (char *)dst + got, size - got, 3000);
		CU_ASSERT_FATAL(r >= 0);
		got += (size_t)r;
	}
	CU_ASSERT_EQUAL(got, size);
	CU_ASSERT(memcmp(src, dst, size) == 0);

	/* Server to client: 1 MB in one write, moved in one go. */
	fill(src, size, 777);
	memset(dst, 0, size);
	CU_ASSERT_EQUAL(tls_write(p.s, src, size), TLS_OK);
	CU_ASSERT(tls_pending(p.s) > size);
	move(p.s, p.c, 65536);
	r = read_all(p.c, (char *)dst, size, 65536);
	CU_ASSERT_EQUAL(r, (ssize_t)size);
	CU_ASSERT(memcmp(src, dst, size) == 0);
	CU_ASSERT_EQUAL(tls_read(p.c, dst, size), 0);
	pair_close(&p);
	free(src);
	free(dst);
}

/* ---- closing ---- */

static void test_close_notify(void)
{
	struct pair p;
	char buf[64];

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	/* Data before the close_notify is still delivered. */
	CU_ASSERT_EQUAL(tls_write(p.c, "QUIT\r\n", 6), TLS_OK);
	tls_shutdown(p.c);
	move(p.c, p.s, 65536);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), 6);
	CU_ASSERT(memcmp(buf, "QUIT\r\n", 6) == 0);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), -2);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), -TLS_CLOSED);
	CU_ASSERT_STRING_EQUAL(tls_error(p.s), "");
	/* The server answers with its own close_notify. */
	tls_shutdown(p.s);
	CU_ASSERT(tls_pending(p.s) > 0);
	move(p.s, p.c, 65536);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, sizeof buf), -2);
	pair_close(&p);
}

static void test_eof_during_handshake(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", "mx.test") == 0);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_WANT);
	drain(p.c);
	tls_feed_eof(p.c);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_ERR);
	CU_ASSERT_STRING_EQUAL(tls_error(p.c), "peer closed during handshake");
	/* A server whose client vanished after half a hello. */
	CU_ASSERT_EQUAL(tls_feed(p.s, "\x16\x03\x01", 3), 0);
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_WANT);
	tls_feed_eof(p.s);
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_ERR);
	CU_ASSERT_STRING_EQUAL(tls_error(p.s), "peer closed during handshake");
	pair_close(&p);
}

static void test_eof_without_close_notify(void)
{
	struct pair p;
	char buf[64];

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	CU_ASSERT_EQUAL(tls_write(p.s, "221 bye\r\n", 9), TLS_OK);
	move(p.s, p.c, 65536);
	tls_feed_eof(p.c);
	/* Buffered data first, then the truncation is an error. */
	CU_ASSERT_EQUAL(read_all(p.c, buf, sizeof buf, sizeof buf), 9);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, sizeof buf), TLS_ERR);
	CU_ASSERT_STRING_EQUAL(tls_error(p.c), "peer closed the connection "
	                       "without close_notify");
	pair_close(&p);
}

/* ---- garbage ---- */

static void test_garbage_handshake(void)
{
	static const char smtp[] = "220 mx.test ESMTP ready\r\n";
	struct pair p;

	/* A plaintext SMTP server where TLS was expected. */
	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", "mx.test") == 0);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_WANT);
	drain(p.c);
	CU_ASSERT_EQUAL(tls_feed(p.c, smtp, strlen(smtp)), 0);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_ERR);
	check(strcmp(tls_error(p.c),
	             "TLS handshake failed: wrong version number") == 0,
	      __LINE__, "error: %s", tls_error(p.c));
	/* A plaintext client talking to the TLS server. */
	CU_ASSERT_EQUAL(tls_feed(p.s, "EHLO client.test\r\n", 18), 0);
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_ERR);
	check(strncmp(tls_error(p.s), "TLS handshake failed: ", 22) == 0 &&
	      strlen(tls_error(p.s)) > 22, __LINE__, "server error: %s",
	      tls_error(p.s));
	pair_close(&p);
}

static void test_garbage_record(void)
{
	struct pair p;
	unsigned char rec[5 + 64];
	char buf[64];

	CU_ASSERT_FATAL(pair_connect(&p, 1, "ca.pem", "server.pem",
	                             "server.key", "mx.test") == 0);
	expect_ok(&p, __LINE__);
	/* A well-formed application-data record with random contents. */
	rec[0] = 0x17;
	rec[1] = 0x03;
	rec[2] = 0x03;
	rec[3] = 0;
	rec[4] = 64;
	fill(rec + 5, 64, 99);
	CU_ASSERT_EQUAL(tls_feed(p.c, rec, sizeof rec), 0);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, sizeof buf), TLS_ERR);
	check(strncmp(tls_error(p.c), "TLS read failed: ", 17) == 0 &&
	      strlen(tls_error(p.c)) > 17, __LINE__, "error: %s",
	      tls_error(p.c));
	/* An alert for the peer was produced; the error is sticky. */
	CU_ASSERT(tls_pending(p.c) > 0);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, sizeof buf), TLS_ERR);
	CU_ASSERT_EQUAL(tls_write(p.c, "x", 1), TLS_ERR);
	/* The server learns of it from the alert. */
	move(p.c, p.s, 65536);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof buf), TLS_ERR);
	check(strstr(tls_error(p.s), "alert") != NULL, __LINE__,
	      "server error: %s", tls_error(p.s));
	pair_close(&p);
}

/* ---- lifetime ---- */

static void test_free_mid_handshake(void)
{
	struct pair p;

	CU_ASSERT_FATAL(pair_open(&p, 1, "ca.pem", "server.pem",
	                          "server.key", "mx.test") == 0);
	CU_ASSERT_EQUAL(tls_handshake(p.c), TLS_WANT);
	move(p.c, p.s, 65536);
	CU_ASSERT_EQUAL(tls_handshake(p.s), TLS_WANT);
	CU_ASSERT(tls_pending(p.s) > 0);
	/* Free with ciphertext still queued in both directions; ASan's leak
	 * check is the assertion. */
	move(p.s, p.c, 65536);
	CU_ASSERT_EQUAL(tls_feed(p.s, "\x16\x03", 2), 0);
	tls_shutdown(p.c);      /* mid-handshake: nothing to send */
	pair_close(&p);
}

static void test_null_free(void)
{
	tls_free(NULL);
	tls_config_free(NULL);
	CU_PASS("NULL frees are no-ops");
}

/* ---- configuration errors ---- */

static void test_config_errors(void)
{
	char err[512], a[PATH_MAX], b[PATH_MAX];
	struct tls_config *c;
	FILE *f;

	err[0] = '\0';
	c = tls_config_client(1, "/nonexistent/ca.pem", err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, "/nonexistent/ca.pem") != NULL &&
	      strstr(err, "No such file") != NULL, __LINE__, "err: %s", err);

	/* A readable file without certificates. */
	f = fopen(cert(a, sizeof a, "notpem.txt"), "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("not a certificate\n", f);
	fclose(f);
	err[0] = '\0';
	c = tls_config_client(1, a, err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	check(strncmp(err, "cannot load CA file ", 20) == 0 &&
	      strstr(err, "notpem.txt: ") != NULL, __LINE__, "err: %s", err);

	err[0] = '\0';
	c = tls_config_server(cert(a, sizeof a, "server.pem"),
	                      cert(b, sizeof b, "missing.key"), err,
	                      sizeof err);
	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, "missing.key") != NULL, __LINE__, "err: %s", err);

	err[0] = '\0';
	c = tls_config_server(cert(a, sizeof a, "server.pem"),
	                      cert(b, sizeof b, "wrong.key"), err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	check(strstr(err, "does not match") != NULL, __LINE__, "err: %s", err);

	err[0] = '\0';
	c = tls_config_server(cert(a, sizeof a, "notpem.txt"),
	                      cert(b, sizeof b, "server.key"), err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	check(strncmp(err, "cannot load certificate ", 24) == 0, __LINE__,
	      "err: %s", err);

	/* NULL err is allowed. */
	CU_ASSERT_PTR_NULL(tls_config_client(1, "/nonexistent", NULL, 0));
}

/* ---- protocol versions, against a raw OpenSSL server ---- */

struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out;
};

/* A raw server on server.pem limited to [minv, maxv]. */
static int raw_open(struct raw *r, int minv, int maxv)
{
	char a[PATH_MAX], b[PATH_MAX];

	memset(r, 0, sizeof *r);
	r->ctx = SSL_CTX_new(TLS_server_method());
	if (r->ctx == NULL)
		return -1;
	/* Level 0 so that OpenSSL would really offer TLS 1.1. */
	SSL_CTX_set_security_level(r->ctx, 0);
	if (!SSL_CTX_set_min_proto_version(r->ctx, minv) ||
	    !SSL_CTX_set_max_proto_version(r->ctx, maxv) ||
	    !SSL_CTX_use_certificate_chain_file(r->ctx,
	                cert(a, sizeof a, "server.pem")) ||
	    !SSL_CTX_use_PrivateKey_file(r->ctx, cert(b, sizeof b,
	                "server.key"), SSL_FILETYPE_PEM))
		return -1;
	r->ssl = SSL_new(r->ctx);
	r->in = BIO_new(BIO_s_mem());
	r->out = BIO_new(BIO_s_mem());
	if (r->ssl == NULL || r->in == NULL || r->out == NULL)
		return -1;
	SSL_set_bio(r->ssl, r->in, r->out);
	SSL_set_accept_state(r->ssl);
	return 0;
}

static void raw_close(struct raw *r)
{
	if (r->ssl != NULL) {
		SSL_free(r->ssl);
	} else {
		BIO_free(r->in);
		BIO_free(r->out);
	}
	SSL_CTX_free(r->ctx);
	ERR_clear_error();
}

/* Handshake our client against the raw server; returns the client's
 * last result. */
static int raw_handshake(struct tls *c, struct raw *r)
{
	char buf[16384];
	int rc = TLS_WANT, n, moved;
	size_t k;

	for (int i = 0; i < 50 && rc == TLS_WANT; i++) {
		rc = tls_handshake(c);
		moved = 0;
		while ((k = tls_take(c, buf, sizeof buf)) > 0) {
			BIO_write(r->in, buf, (int)k);
			moved = 1;
		}
		SSL_do_handshake(r->ssl);
		while ((n = BIO_read(r->out, buf, sizeof buf)) > 0) {
			tls_feed(c, buf, (size_t)n);
			moved = 1;
		}
		if (!moved)
			break;
	}
	return rc;
}

static void test_tls12(void)
{
	char err[256], a[PATH_MAX];
	struct tls_config *cc;
	struct tls *c;
	struct raw r;

	cc = tls_config_client(1, cert(a, sizeof a, "ca.pem"), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cc);
	c = tls_new(cc, "mx.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FATAL(raw_open(&r, TLS1_2_VERSION, TLS1_2_VERSION) == 0);
	check(raw_handshake(c, &r) == TLS_OK, __LINE__, "error: %s",
	      tls_error(c));
	CU_ASSERT_STRING_EQUAL(tls_version(c), "TLSv1.2");
	CU_ASSERT_EQUAL(tls_verified(c), 1);
	CU_ASSERT_STRING_EQUAL(tls_cipher(c), SSL_get_cipher_name(r.ssl));
	tls_free(c);
	raw_close(&r);
	tls_config_free(cc);
}

static void test_tls11_refused(void)
{
	char err[256], a[PATH_MAX];
	struct tls_config *cc;
	struct tls *c;
	struct raw r;

	cc = tls_config_client(0, cert(a, sizeof a, "ca.pem"), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cc);
	c = tls_new(cc, "mx.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FATAL(raw_open(&r, TLS1_VERSION, TLS1_1_VERSION) == 0);
	CU_ASSERT_EQUAL(raw_handshake(c, &r), TLS_ERR);
	check(strncmp(tls_error(c), "TLS handshake failed: ", 22) == 0 &&
	      strstr(tls_error(c), "protocol version") != NULL, __LINE__,
	      "error: %s", tls_error(c));
	tls_free(c);
	raw_close(&r);
	tls_config_free(cc);
}

/* ---- threads ---- */

/* One full connection with its own configs; 1 on success. */
static void *thread_conn(void *arg)
{
	unsigned char out[65536], in[65536];
	struct pair p;
	int ok;

	(void)arg;
	if (pair_connect(&p, 1, "ca.pem", "server.pem", "server.key",
	                 "mx.test") < 0) {
		pair_close(&p);
		return (void *)0;
	}
	fill(out, sizeof out, 4242);
	ok = p.rc == TLS_OK && p.rs == TLS_OK && tls_verified(p.c) &&
	     tls_write(p.c, out, sizeof out) == TLS_OK;
	if (ok) {
		char buf[65536];
		size_t k;

		while ((k = tls_take(p.c, buf, sizeof buf)) > 0)
			tls_feed(p.s, buf, k);
		ok = read_all(p.s, (char *)in, sizeof in, sizeof in) ==
		     (ssize_t)sizeof in && memcmp(in, out, sizeof in) == 0;
	}
	pair_close(&p);
	return (void *)(intptr_t)ok;
}

static void test_threads(void)
{
	pthread_t th[4];
	void *res;

	for (int i = 0; i < 4; i++)
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, thread_conn,
		                               NULL) == 0);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_FATAL(pthread_join(th[i], &res) == 0);
		check(res == (void *)1, __LINE__, "thread %d failed", i);
	}
}

static const struct test_case tests[] = {
	{ "handshake_ca_file", test_handshake_ca_file },
	{ "before_handshake", test_before_handshake },
	{ "small_takes", test_small_takes },
	{ "hostname_mismatch_verify", test_hostname_mismatch_verify },
	{ "hostname_mismatch_noverify", test_hostname_mismatch_noverify },
	{ "noverify_still_verifies", test_noverify_still_verifies },
	{ "self_signed", test_self_signed },
	{ "system_store", test_system_store },
	{ "ip_literal", test_ip_literal },
	{ "sni", test_sni },
	{ "no_hostname", test_no_hostname },
	{ "invalid_hostname", test_invalid_hostname },
	{ "data_both_ways", test_data_both_ways },
	{ "large_payload", test_large_payload },
	{ "close_notify", test_close_notify },
	{ "eof_during_handshake", test_eof_during_handshake },
	{ "eof_without_close_notify", test_eof_without_close_notify },
	{ "garbage_handshake", test_garbage_handshake },
	{ "garbage_record", test_garbage_record },
	{ "free_mid_handshake", test_free_mid_handshake },
	{ "null_free", test_null_free },
	{ "config_errors", test_config_errors },
	{ "tls12", test_tls12 },
	{ "tls11_refused", test_tls11_refused },
	{ "threads", test_threads },
	{ 0 },
};

int main(void)
{
	int failed;

	if (certs_make() < 0) {
		certs_remove();
		return 1;
	}
	failed = test_run("tls", tests);
	certs_remove();
	return failed;
}
