/*
 * tls.h - an I/O-free TLS engine over OpenSSL memory BIOs (the tlsuv
 * model): ciphertext from the network in, ciphertext for the network out,
 * plaintext in and out. It never touches a socket or the event loop; the
 * driver (engine/conn.c) moves bytes. Tests connect a client engine to a
 * server engine in memory.
 *
 * Contract:
 * - tls_config_* objects hold an SSL_CTX; create once, share between
 *   connections on one thread; free after every tls made from them.
 * - A client tls with verify on checks the chain (system store, or ca_file)
 *   and the host name (SSL_set1_host); failure makes the handshake fail with
 *   a reason in tls_error() ("certificate verify failed: Hostname mismatch").
 *   With verify off the handshake succeeds and tls_verified() tells whether
 *   the certificate would have passed (recorded in results).
 * - TLS 1.2 minimum. SNI is sent when hostname is a name (not an IP).
 * - Every call that may produce ciphertext (handshake, write, read: key
 *   updates, alerts) leaves it in the engine: after each call the driver
 *   sends tls_pending() bytes taken with tls_take().
 * What it does not do: sockets, timers, certificate generation.
 */
#ifndef EDM_TLS_H
#define EDM_TLS_H

#include <stddef.h>
#include <sys/types.h>

enum tls_status {
	TLS_OK = 0,         /* done (handshake complete / call succeeded) */
	TLS_WANT = 1,       /* needs more ciphertext from the peer */
	TLS_CLOSED = 2,     /* the peer sent close_notify */
	TLS_ERR = -1,       /* failed: tls_error() says why */
};

struct tls_config;
struct tls;

/* Client config: verify 1 = chain + host name; ca_file NULL = the system
 * store. NULL with err on failure (e.g. unreadable ca_file). */
struct tls_config *tls_config_client(int verify, const char *ca_file,
                                     char *err, size_t errlen);

/* Server config from PEM files (for `edm sink` and tests). */
struct tls_config *tls_config_server(const char *cert_file,
                                     const char *key_file,
                                     char *err, size_t errlen);

/* NULL is a no-op. */
void tls_config_free(struct tls_config *c);

/* A connection in client mode (hostname: SNI and verification target) or
 * in server mode (config from tls_config_server, hostname NULL). NULL only
 * when out of memory: an unusable host name fails the handshake instead. */
struct tls *tls_new(struct tls_config *c, const char *hostname);

/* NULL is a no-op. */
void tls_free(struct tls *t);

/* Ciphertext received from the network. 0, or TLS_ERR on allocation
 * failure. */
int tls_feed(struct tls *t, const void *p, size_t n);

/* The network reached end of file (the peer closed the TCP connection).
 * Afterwards a handshake waiting for data fails ("peer closed during
 * handshake") and a read with nothing left fails ("peer closed the
 * connection without close_notify"). */
void tls_feed_eof(struct tls *t);

/* Advance the handshake: TLS_OK when complete, TLS_WANT, or TLS_ERR. */
int tls_handshake(struct tls *t);

/* Encrypt n plaintext bytes (all of them). TLS_OK or TLS_ERR. Writing
 * (or reading) before the handshake completed is refused with TLS_ERR and
 * a reason, without breaking the connection. */
int tls_write(struct tls *t, const void *p, size_t n);

/* Decrypt into buf: the byte count (> 0), 0 when nothing is available
 * until more ciphertext arrives, -TLS_CLOSED (-2) on close_notify, or
 * TLS_ERR (-1). */
ssize_t tls_read(struct tls *t, void *buf, size_t cap);

/* Ciphertext waiting to go to the network. */
size_t tls_pending(const struct tls *t);

/* Move up to cap bytes of pending ciphertext into buf; returns the count. */
size_t tls_take(struct tls *t, void *buf, size_t cap);

/* Send close_notify (ciphertext then pending). Nothing is sent before the
 * handshake completed or after a failure (OpenSSL queued its alert). */
void tls_shutdown(struct tls *t);

/* After the handshake: "TLSv1.3", cipher name, whether the peer's
 * certificate verified (chain and host name) even when not required. */
const char *tls_version(const struct tls *t);
const char *tls_cipher(const struct tls *t);
int tls_verified(const struct tls *t);

/* The SNI host name: in server mode as the client sent it (once its hello
 * has been read), in client mode as sent; NULL when none (IP literals). */
const char *tls_sni(const struct tls *t);

/* The last error, a sentence (never NULL; "" when none). */
const char *tls_error(const struct tls *t);

#endif
