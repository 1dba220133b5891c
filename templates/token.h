/*
 * token.h - per-recipient tokens: campaign + row, authenticated.
 *
 * A token names one recipient of one campaign without a lookup table: the
 * data row number (40 bits, big-endian) followed by the first 96 bits of
 * HMAC-SHA256(secret, "edm-token-1" NUL campaign NUL row). 17 bytes, sent
 * as URL-safe base64 without padding (23 characters, tracking URLs and
 * {{token}}) or as lowercase base32 (28 characters, VERP local parts,
 * which some MTAs case-fold). The campaign is inside the MAC, not the
 * token: a token of another campaign (or under another secret) fails the
 * check like a forged one.
 *
 * Contract: a key is immutable after token_key_new() and may be used from
 * several threads at once. token_check() compares MACs in constant time
 * and accepts exactly the two encodings token_make*() produce (base32 in
 * either case). Rows are 1 .. 2^40-1.
 * What it does not do: read the secret (config_tracking_secret() does) or
 * know about URLs.
 */
#ifndef EDM_TOKEN_H
#define EDM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_RAW_LEN 17
#define TOKEN_MAC_LEN 12
#define TOKEN_B64_LEN 23
#define TOKEN_B32_LEN 28
#define TOKEN_MAX 32          /* buffer size for either encoding + NUL */
#define TOKEN_ROW_MAX ((UINT64_C(1) << 40) - 1)

struct token_key;

/* A key for 'campaign' under 'secret' (len bytes). NULL on allocation
 * failure. */
struct token_key *token_key_new(const void *secret, size_t len,
                                const char *campaign);

/* The campaign the key was made for. */
const char *token_key_campaign(const struct token_key *k);

/* The base64url token of 'row' into out (NUL-terminated, TOKEN_B64_LEN
 * characters). 0, or -1 when row is 0 or past TOKEN_ROW_MAX. */
int token_make(const struct token_key *k, uint64_t row, char out[TOKEN_MAX]);

/* The same token in lowercase base32 (TOKEN_B32_LEN characters). */
int token_make_b32(const struct token_key *k, uint64_t row,
                   char out[TOKEN_MAX]);

/* 0 and *row when s[len] is a genuine token of this key's campaign (either
 * encoding); -1 otherwise (wrong length, bad character, bad MAC). */
int token_check(const struct token_key *k, const char *s, size_t len,
                uint64_t *row);

/* Free; NULL is a no-op. */
void token_key_free(struct token_key *k);

#endif
