/*
 * token.c - per-recipient tokens (contract in token.h).
 *
 * HMAC-SHA256 (RFC 2104) is computed from two SHA-256 contexts that have
 * already absorbed the padded key (ipad/opad): each token costs two
 * context copies and three compression calls, with no key schedule and no
 * provider fetch per call, so a render worker or the tracking server can
 * afford one per message or request.
 */
#include "token.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define TOKEN_LABEL "edm-token-1"

struct token_key {
	EVP_MD *md;
	EVP_MD_CTX *inner, *outer; /* after the ipad / opad block */
	char *campaign;
};

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

struct token_key *token_key_new(const void *secret, size_t len,
                                const char *campaign)
{
	struct token_key *k = calloc(1, sizeof(*k));
	unsigned char kb[64] = { 0 }, pad[64];
	unsigned int n;

	if (k == NULL)
		return NULL;
	if ((k->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (k->inner = EVP_MD_CTX_new()) == NULL ||
	    (k->outer = EVP_MD_CTX_new()) == NULL ||
	    (k->campaign = strdup(campaign)) == NULL)
		goto fail;
	/* A key longer than the block is hashed first (RFC 2104 2). */
	if (len > sizeof(kb)) {
		if (EVP_Digest(secret, len, kb, &n, k->md, NULL) != 1)
			goto fail;
	} else if (len > 0) {
		memcpy(kb, secret, len);
	}
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = kb[i] ^ 0x36;
	if (EVP_DigestInit_ex(k->inner, k->md, NULL) != 1 ||
	    EVP_DigestUpdate(k->inner, pad, sizeof(pad)) != 1)
		goto fail;
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = kb[i] ^ 0x5c;
	if (EVP_DigestInit_ex(k->outer, k->md, NULL) != 1 ||
	    EVP_DigestUpdate(k->outer, pad, sizeof(pad)) != 1)
		goto fail;
	OPENSSL_cleanse(kb, sizeof(kb));
	OPENSSL_cleanse(pad, sizeof(pad));
	return k;
fail:
	OPENSSL_cleanse(kb, sizeof(kb));
	token_key_free(k);
	return NULL;
}

const char *token_key_campaign(const struct token_key *k)
{
	return k->campaign;
}

/* raw[0..5) = row; raw[5..17) = its MAC. 0 or -1. */
static int token_raw(const struct token_key *k, uint64_t row,
                     unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	EVP_MD_CTX *c;
	int rc = -1;

	if (row == 0 || row > TOKEN_ROW_MAX)
		return -1;
	for (int i = 0; i < 5; i++)
		raw[i] = (unsigned char)(row >> (8 * (4 - i)));
	if ((c = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_MD_CTX_copy_ex(c, k->inner) == 1 &&
	    EVP_DigestUpdate(c, TOKEN_LABEL, sizeof(TOKEN_LABEL)) == 1 &&
	    EVP_DigestUpdate(c, k->campaign, strlen(k->campaign) + 1) == 1 &&
	    EVP_DigestUpdate(c, raw, 5) == 1 &&
	    EVP_DigestFinal_ex(c, md, &n) == 1 &&
	    EVP_MD_CTX_copy_ex(c, k->outer) == 1 &&
	    EVP_DigestUpdate(c, md, n) == 1 &&
	    EVP_DigestFinal_ex(c, md, &n) == 1) {
		memcpy(raw + 5, md, TOKEN_MAC_LEN);
		rc = 0;
	}
	EVP_MD_CTX_free(c);
	return rc;
}

int token_make(const struct token_key *k, uint64_t row, char out[TOKEN_MAX])
{
	unsigned char raw[TOKEN_RAW_LEN];
	size_t o = 0, i;

	if (token_raw(k, row, raw) < 0)
		return -1;
	/* 17 bytes: five full groups of three, then two bytes -> 3 chars. */
	for (i = 0; i + 3 <= TOKEN_RAW_LEN; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	{
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8;
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
	return 0;
}

int token_make_b32(const struct token_key *k, uint64_t row,
                   char out[TOKEN_MAX])
{
	unsigned char raw[TOKEN_RAW_LEN];
	unsigned acc = 0, bits = 0;
	size_t o = 0;

	if (token_raw(k, row, raw) < 0)
		return -1;
	for (size_t i = 0; i < TOKEN_RAW_LEN; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return 0;
}

/* Decode base64url (23 chars) into raw. 0 or -1. */
static int dec_b64(const char *s, unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned acc = 0, bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < TOKEN_B64_LEN; i++) {
		const char *p = s[i] ? strchr(b64url, s[i]) : NULL;
		if (p == NULL)
			return -1;
		acc = (acc << 6) | (unsigned)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			raw[o++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
		acc &= (1u << bits) - 1;
	}
	/* The two spare bits must be zero (one spelling per token). */
	return o == TOKEN_RAW_LEN && acc == 0 ? 0 : -1;
}

/* Decode base32 (28 chars, either case) into raw. 0 or -1. */
static int dec_b32(const char *s, unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned acc = 0, bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < TOKEN_B32_LEN; i++) {
		char c = s[i];
		const char *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '\0' || (p = strchr(b32, c)) == NULL)
			return -1;
		acc = (acc << 5) | (unsigned)(p - b32);
		bits += 5;
		if (bits >= 8) {
			raw[o++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
		acc &= (1u << bits) - 1;
	}
	return o == TOKEN_RAW_LEN && acc == 0 ? 0 : -1;
}

int token_check(const struct token_key *k, const char *s, size_t len,
                uint64_t *row)
{
	unsigned char raw[TOKEN_RAW_LEN], want[TOKEN_RAW_LEN];
	uint64_t r = 0;

	if (len == TOKEN_B64_LEN) {
		if (dec_b64(s, raw) < 0)
			return -1;
	} else if (len == TOKEN_B32_LEN) {
		if (dec_b32(s, raw) < 0)
			return -1;
	} else {
		return -1;
	}
	for (int i = 0; i < 5; i++)
		r = (r << 8) | raw[i];
	if (token_raw(k, r, want) < 0 ||
	    CRYPTO_memcmp(raw + 5, want + 5, TOKEN_MAC_LEN) != 0)
		return -1;
	*row = r;
	return 0;
}

void token_key_free(struct token_key *k)
{
	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->inner);
	EVP_MD_CTX_free(k->outer);
	EVP_MD_free(k->md);
	free(k->campaign);
	free(k);
}
