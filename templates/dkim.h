/*
 * dkim.h - DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), relaxed/relaxed canonicalisation, OpenSSL.
 *
 * Contract: keys are loaded once (dkim_key_load) and are read-only after,
 * so dkim_sign() may run on several threads at once with the same keys.
 * Each key keeps a pool of signing contexts, one per thread signing at
 * the same moment, each with its own copy of the private key (taken and
 * given back under a mutex; freed by dkim_key_free(), which must not run
 * while a dkim_sign() with that key does). dkim_sign() takes the
 * finished message (CRLF, as mime_build() makes it) and appends one
 * "DKIM-Signature: ..." header per key (folded, CRLF-terminated) to 'out';
 * the caller puts them in front of the message. The body hash is computed
 * once per call and shared by all signatures.
 *
 * Signed headers (h=): from, to, subject, date, message-id, mime-version,
 * content-type, reply-to, feedback-id, list-unsubscribe,
 * list-unsubscribe-post, cc, in-reply-to, references — each name listed
 * once more than it occurs in the message ("oversigning"), so a copy added
 * in transit breaks the signature; names that do not occur are listed
 * once, which signs their absence. Never an l= tag (it would let anyone
 * append content); t= is the signing time; no x=.
 * I/O-free except dkim_key_load() and dkim_keygen().
 */
#ifndef EDM_DKIM_H
#define EDM_DKIM_H

#include <stddef.h>
#include <time.h>

struct buf;
struct dkim_key;

enum dkim_alg {
	DKIM_RSA_SHA256 = 0,
	DKIM_ED25519_SHA256 = 1,
};

/*
 * Load a PEM private key (PKCS#8 or traditional RSA) for d=domain,
 * s=selector. RSA under 1024 bits is refused (RFC 8301), and over 4096
 * (RFC 8301 verifiers need not handle more); other key types, encrypted
 * keys (no passphrase prompt) and non-LDH domain/selector are refused;
 * the domain is kept lowercased. NULL with "path: reason" in err.
 */
struct dkim_key *dkim_key_load(const char *pem_path, const char *domain,
                               const char *selector, char *err,
                               size_t errlen);

enum dkim_alg dkim_key_alg(const struct dkim_key *k);
int dkim_key_bits(const struct dkim_key *k);      /* RSA modulus bits; 256 for Ed25519 */
const char *dkim_key_domain(const struct dkim_key *k);

/*
 * Sign msg[len] with each of keys[0..nkeys-1] at time 'now'; append the
 * DKIM-Signature headers to out. 0, or -1 with a reason in err (message
 * without a header/body separator, OpenSSL failure).
 */
int dkim_sign(struct dkim_key *const *keys, size_t nkeys, const char *msg,
              size_t len, time_t now, struct buf *out, char *err,
              size_t errlen);

/*
 * Generate a key: type "rsa" (bits >= 1024, default 2048) or "ed25519";
 * write it as PKCS#8 PEM to out_path, created 0600 (refusing to overwrite
 * an existing file); append the DNS TXT record to publish
 * ("SELECTOR._domainkey.DOMAIN. IN TXT \"v=DKIM1; k=rsa; p=...\"", split
 * into 255-octet strings, one newline-terminated line) to 'record'.
 * bits is ignored for ed25519; RSA takes 1024..4096. On failure nothing
 * is left on disk or in record. 0, or -1 with err.
 */
int dkim_keygen(const char *type, int bits, const char *out_path,
                const char *domain, const char *selector,
                struct buf *record, char *err, size_t errlen);

/* Free; NULL is a no-op. */
void dkim_key_free(struct dkim_key *k);

/* Exposed for tests: relaxed header canonicalisation of one header field
 * (name:value with folding; the result ends in CRLF; -1 without a name
 * and colon) and relaxed body canonicalisation of a whole body
 * (RFC 6376 3.4.2, 3.4.4; a bare CR or LF counts as a line end, as SMTP
 * will send it as CRLF), appended to out. */
int dkim_canon_header(const char *field, size_t len, struct buf *out);
int dkim_canon_body(const char *body, size_t len, struct buf *out);

#endif
