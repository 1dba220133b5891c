/*
 * tls.c - an I/O-free TLS engine over OpenSSL memory BIOs (contract in
 * tls.h; the model is tlsuv's src/openssl/engine.c).
 *
 * Each connection owns one SSL and two memory BIOs: rbio holds ciphertext
 * the driver fed from the network, wbio collects ciphertext for the
 * network (SSL_set_bio(ssl, rbio, wbio); the SSL owns both). Memory BIOs
 * grow on demand, so OpenSSL never reports WANT_WRITE and every write
 * completes at once; WANT_READ means "feed me more ciphertext".
 *
 * Verification: a client always builds and checks the server's chain and
 * name (the default store or ca_file, SSL_set1_host or the IP address).
 * With verify on, SSL_VERIFY_PEER makes a failure fatal; with verify off,
 * SSL_VERIFY_NONE lets the handshake finish and OpenSSL still records the
 * outcome, which SSL_get_verify_result() reports for tls_verified().
 *
 * Errors: OpenSSL's error queue is per thread, so every call clears it
 * first and drains it after a failure; the first (root-cause) entry
 * becomes a sentence in t->err. A fatal failure is sticky: later calls
 * return TLS_ERR with the same sentence. Any alert OpenSSL generated is
 * left in wbio for the driver to send.
 *
 * Threads: no global state; one tls object must be used by one thread at
 * a time, and a config is shared only between connections on one thread.
 * What it does not do: sockets, timers, session resumption, client
 * certificates, renegotiation (disabled), certificate generation.
 */
#include "tls.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_config {
	SSL_CTX *ctx;
	int server;
	int verify;
};

struct tls {
	SSL *ssl;
	BIO *rbio;          /* network -> engine; owned by ssl */
	BIO *wbio;          /* engine -> network; owned by ssl */
	int server;
	int done;           /* handshake complete */
	int failed;         /* fatal error; err says why */
	int closed;         /* peer's close_notify read */
	char err[256];
};

/* Set t->err from a format (does not mark the engine failed). */
static void tls_seterr(struct tls *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void tls_seterr(struct tls *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof t->err, fmt, ap);
	va_end(ap);
}

/* The reason text of an OpenSSL error code, never NULL. */
static const char *reason_text(unsigned long e, char *buf, size_t len)
{
	const char *r;

	if (e == 0)
		return "unknown error";
	r = ERR_reason_error_string(e);
	if (r != NULL)
		return r;
	ERR_error_string_n(e, buf, len);
	return buf;
}

/* The first queued OpenSSL error as text into buf; clears the queue. */
static const char *queue_text(char *buf, size_t len)
{
	char tmp[128];
	unsigned long e = ERR_get_error();

	snprintf(buf, len, "%s", reason_text(e, tmp, sizeof tmp));
	ERR_clear_error();
	return buf;
}

/*
 * Turn a failed SSL_do_handshake/SSL_read/SSL_write (return value ret,
 * SSL_get_error code) into t->err, mark the engine failed and drain the
 * error queue. `what` names the operation ("TLS handshake failed").
 */
static int tls_fail(struct tls *t, const char *what, int code)
{
	char tmp[128];
	unsigned long e = ERR_get_error();
	long vr;
	int eofish;

	eofish = code == SSL_ERROR_SYSCALL ||
	         (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	          ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
	if (!t->done && (eofish || code == SSL_ERROR_ZERO_RETURN)) {
		tls_seterr(t, "peer closed during handshake");
	} else if (eofish) {
		tls_seterr(t, "peer closed the connection without "
		           "close_notify");
	} else if (!t->server && e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	           ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	           (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
		tls_seterr(t, "certificate verify failed: %s",
		           X509_verify_cert_error_string(vr));
	} else {
		tls_seterr(t, "%s: %s", what, reason_text(e, tmp, sizeof tmp));
	}
	ERR_clear_error();
	t->failed = 1;
	return TLS_ERR;
}

/* A new context for either side: TLS 1.2 minimum, no renegotiation. */
static SSL_CTX *ctx_new(int server, char *err, size_t errlen)
{
	char tmp[160];
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL) {
		edm_errf(err, errlen, "cannot create TLS context: %s",
		         queue_text(tmp, sizeof tmp));
		return NULL;
	}
	/* TLS 1.0 and 1.1 are deprecated (RFC 8996). */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		edm_errf(err, errlen, "cannot set the TLS minimum version: %s",
		         queue_text(tmp, sizeof tmp));
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Renegotiation would make a write wait for the peer, breaking the
	 * "tls_write encrypts everything at once" contract. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* Free the 34 KB record buffers of idle connections: a bulk sender
	 * holds many connections that mostly wait for SMTP replies. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* Check that path can be opened for reading, with errno's sentence. */
static int readable(const char *what, const char *path, char *err,
                    size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return edm_errf(err, errlen, "cannot read %s %s: %s", what,
		                path, strerror(errno));
	fclose(f);
	return 0;
}

/* Client config: verify 1 = chain + host name; ca_file NULL = system. */
struct tls_config *tls_config_client(int verify, const char *ca_file,
                                     char *err, size_t errlen)
{
	struct tls_config *c;
	char tmp[160];

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	c->verify = verify != 0;
	c->ctx = ctx_new(0, err, errlen);
	if (c->ctx == NULL)
		goto fail_config;
	/* The store is loaded even without verify so that tls_verified()
	 * can say whether the certificate would have passed. */
	if (ca_file != NULL) {
		if (readable("CA file", ca_file, err, errlen) < 0)
			goto fail_ctx;
		if (!SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL)) {
			edm_errf(err, errlen, "cannot load CA file %s: %s",
			         ca_file, queue_text(tmp, sizeof tmp));
			goto fail_ctx;
		}
	} else if (!SSL_CTX_set_default_verify_paths(c->ctx)) {
		edm_errf(err, errlen, "cannot load the system CA store: %s",
		         queue_text(tmp, sizeof tmp));
		goto fail_ctx;
	}
	SSL_CTX_set_verify(c->ctx, c->verify ? SSL_VERIFY_PEER :
	                   SSL_VERIFY_NONE, NULL);
	return c;

fail_ctx:
	SSL_CTX_free(c->ctx);
fail_config:
	free(c);
	return NULL;
}

/* Server config from PEM files: certificate chain and private key. */
struct tls_config *tls_config_server(const char *cert_file,
                                     const char *key_file,
                                     char *err, size_t errlen)
{
	struct tls_config *c;
	char tmp[160];
	unsigned long e;
	int ok;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		edm_errf(err, errlen, "out of memory");
		return NULL;
	}
	c->server = 1;
	c->ctx = ctx_new(1, err, errlen);
	if (c->ctx == NULL)
		goto fail_config;
	if (readable("certificate file", cert_file, err, errlen) < 0 ||
	    readable("key file", key_file, err, errlen) < 0)
		goto fail_ctx;
	if (!SSL_CTX_use_certificate_chain_file(c->ctx, cert_file)) {
		edm_errf(err, errlen, "cannot load certificate %s: %s",
		         cert_file, queue_text(tmp, sizeof tmp));
		goto fail_ctx;
	}
	/* OpenSSL already compares the key with the certificate here. */
	ERR_clear_error();
	ok = SSL_CTX_use_PrivateKey_file(c->ctx, key_file, SSL_FILETYPE_PEM);
	e = ERR_peek_error();
	if (!ok && !(ERR_GET_LIB(e) == ERR_LIB_X509 &&
	             ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)) {
		edm_errf(err, errlen, "cannot load private key %s: %s",
		         key_file, queue_text(tmp, sizeof tmp));
		goto fail_ctx;
	}
	if (!ok || !SSL_CTX_check_private_key(c->ctx)) {
		edm_errf(err, errlen,
		         "private key %s does not match certificate %s: %s",
		         key_file, cert_file, queue_text(tmp, sizeof tmp));
		goto fail_ctx;
	}
	return c;

fail_ctx:
	SSL_CTX_free(c->ctx);
fail_config:
	free(c);
	return NULL;
}

void tls_config_free(struct tls_config *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

/* Is s an IPv4 or IPv6 literal (without brackets)? */
static int is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/*
 * Client side: the verification target and SNI. "[::1]" is taken as the
 * IPv6 literal; a trailing dot of a DNS name is dropped (RFC 6066 3: SNI
 * carries no trailing dot, and certificates never name one).
 */
static void set_peer_name(struct tls *t, const char *hostname)
{
	char name[256];
	size_t n = strlen(hostname);
	X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);

	if (n >= 2 && hostname[0] == '[' && hostname[n - 1] == ']') {
		hostname++;
		n -= 2;
	} else if (n > 1 && hostname[n - 1] == '.') {
		n--;
	}
	if (n == 0 || n >= sizeof name) {
		tls_seterr(t, "invalid TLS host name \"%.*s\"",
		           (int)(n < 64 ? n : 64), hostname);
		t->failed = 1;
		return;
	}
	memcpy(name, hostname, n);
	name[n] = '\0';
	ERR_clear_error();
	if (is_ip_literal(name)) {
		/* RFC 6066 3: literal IP addresses are not sent in SNI. */
		if (!X509_VERIFY_PARAM_set1_ip_asc(param, name))
			goto fail;
		return;
	}
	X509_VERIFY_PARAM_set_hostflags(param,
	                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (!SSL_set1_host(t->ssl, name) ||
	    !SSL_set_tlsext_host_name(t->ssl, name))
		goto fail;
	return;

fail:
	tls_seterr(t, "invalid TLS host name \"%s\"", name);
	ERR_clear_error();
	t->failed = 1;
}

/* A connection on config c; NULL only when out of memory. An invalid
 * host name yields an engine whose handshake fails with a reason. */
struct tls *tls_new(struct tls_config *c, const char *hostname)
{
	struct tls *t;

	t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->server = c->server;
	ERR_clear_error();
	t->ssl = SSL_new(c->ctx);
	if (t->ssl == NULL)
		goto fail_tls;
	t->rbio = BIO_new(BIO_s_mem());
	if (t->rbio == NULL)
		goto fail_ssl;
	t->wbio = BIO_new(BIO_s_mem());
	if (t->wbio == NULL)
		goto fail_rbio;
	/* An empty rbio means "retry later", not end of file. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	if (t->server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (hostname != NULL)
			set_peer_name(t, hostname);
	}
	return t;

fail_rbio:
	BIO_free(t->rbio);
fail_ssl:
	SSL_free(t->ssl);
fail_tls:
	ERR_clear_error();
	free(t);
	return NULL;
}

void tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);       /* frees both BIOs */
	free(t);
}

/* Ciphertext from the network into rbio, in int-sized pieces. */
int tls_feed(struct tls *t, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		int w = BIO_write(t->rbio, s, chunk);

		if (w <= 0) {
			ERR_clear_error();
			tls_seterr(t, "out of memory buffering TLS input");
			return TLS_ERR;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* End of file from the network: an empty rbio now reads as EOF. */
void tls_feed_eof(struct tls *t)
{
	BIO_set_mem_eof_return(t->rbio, 0);
}

/* Advance the handshake. */
int tls_handshake(struct tls *t)
{
	int r, code;

	if (t->failed)
		return TLS_ERR;
	if (t->done)
		return TLS_OK;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->done = 1;
		return TLS_OK;
	}
	code = SSL_get_error(t->ssl, r);
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		return TLS_WANT;
	return tls_fail(t, "TLS handshake failed", code);
}

/* Encrypt all n bytes into wbio. */
int tls_write(struct tls *t, const void *p, size_t n)
{
	const char *s = p;
	size_t w;

	if (t->failed)
		return TLS_ERR;
	if (!t->done) {
		tls_seterr(t, "TLS write before the handshake completed");
		return TLS_ERR;
	}
	while (n > 0) {
		ERR_clear_error();
		if (!SSL_write_ex(t->ssl, s, n, &w))
			return tls_fail(t, "TLS write failed",
			                SSL_get_error(t->ssl, 0));
		s += w;
		n -= w;
	}
	return TLS_OK;
}

/* Decrypt what rbio holds into buf. */
ssize_t tls_read(struct tls *t, void *buf, size_t cap)
{
	size_t got;
	int code;

	if (t->failed)
		return TLS_ERR;
	if (t->closed)
		return -TLS_CLOSED;
	if (!t->done) {
		tls_seterr(t, "TLS read before the handshake completed");
		return TLS_ERR;
	}
	if (cap == 0)
		return 0;
	if (cap > SSIZE_MAX)
		cap = SSIZE_MAX;
	ERR_clear_error();
	if (SSL_read_ex(t->ssl, buf, cap, &got))
		return (ssize_t)got;
	code = SSL_get_error(t->ssl, 0);
	switch (code) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->closed = 1;
		return -TLS_CLOSED;
	default:
		return tls_fail(t, "TLS read failed", code);
	}
}

size_t tls_pending(const struct tls *t)
{
	return BIO_ctrl_pending(t->wbio);
}

/* Move up to cap bytes of ciphertext out of wbio. */
size_t tls_take(struct tls *t, void *buf, size_t cap)
{
	int r;

	if (cap == 0)
		return 0;
	r = BIO_read(t->wbio, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	return r > 0 ? (size_t)r : 0;
}

/* close_notify into wbio; nothing to send before the handshake is done
 * or after a fatal error (OpenSSL already queued its alert). */
void tls_shutdown(struct tls *t)
{
	if (t->failed || !t->done)
		return;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

const char *tls_version(const struct tls *t)
{
	return t->done ? SSL_get_version(t->ssl) : "";
}

const char *tls_cipher(const struct tls *t)
{
	return t->done ? SSL_get_cipher_name(t->ssl) : "";
}

/* Client only: a peer certificate was presented and the chain and name
 * checks passed (OpenSSL records the result even with SSL_VERIFY_NONE). */
int tls_verified(const struct tls *t)
{
	if (t->server || !t->done)
		return 0;
	return SSL_get0_peer_certificate(t->ssl) != NULL &&
	       SSL_get_verify_result(t->ssl) == X509_V_OK;
}

const char *tls_sni(const struct tls *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *tls_error(const struct tls *t)
{
	return t->err;
}
