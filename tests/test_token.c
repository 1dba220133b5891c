/*
 * test_token.c - per-recipient tokens (templates/token.h): round trips in
 * both encodings at the row bounds, refused rows, every one-character
 * change and bit flip rejected, other campaign / other secret rejected,
 * wrong lengths, base32 case-insensitivity, non-canonical spare bits, and
 * known answers computed here with OpenSSL's one-shot HMAC() (short,
 * block-sized, longer-than-a-block and NUL-holding secrets), decoded with
 * EVP_DecodeBlock and a bit-at-a-time base32 reader, so neither the MAC
 * nor the encodings are checked against token.c's own code. Also: one key
 * shared by several threads.
 */
#include "cunit_main.h"

#include "token.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SECRET "0123456789abcdef-tracking-secret"

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static const uint64_t rows[] = {
	1, 2, UINT64_C(1) << 32, TOKEN_ROW_MAX,
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static struct token_key *key(const char *campaign)
{
	struct token_key *k = token_key_new(SECRET, strlen(SECRET), campaign);

	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	return k;
}

/* ---- independent reference --------------------------------------------- */

/* The 17 raw bytes the token of row should carry: row (40 bits, big-
 * endian), then HMAC-SHA256(secret, "edm-token-1" NUL campaign NUL row)
 * cut to 12 bytes, by OpenSSL's one-shot HMAC(). */
static void expect_raw(const void *secret, size_t slen, const char *campaign,
                       uint64_t row, unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned char msg[256], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n = 0, cl = strlen(campaign);
	int i;

	CU_ASSERT_FATAL(12 + cl + 1 + 5 <= sizeof(msg));
	memcpy(msg, "edm-token-1", 12); /* with its NUL */
	n = 12;
	memcpy(msg + n, campaign, cl + 1);
	n += cl + 1;
	for (i = 0; i < 5; i++)
		raw[i] = msg[n + (size_t)i] = (unsigned char)(row >> (32 - 8 * i));
	n += 5;
	CU_ASSERT_PTR_NOT_NULL_FATAL(HMAC(EVP_sha256(), secret, (int)slen, msg,
	                                  n, md, &mdlen));
	CU_ASSERT_EQUAL_FATAL(mdlen, 32);
	memcpy(raw + 5, md, TOKEN_MAC_LEN);
}

/* base64url (23 chars) to 17 bytes through EVP_DecodeBlock (standard
 * alphabet, padded). 0 or -1. */
static int ref_b64(const char *t, unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned char std[25], out[18];
	int i;

	if (strlen(t) != TOKEN_B64_LEN)
		return -1;
	for (i = 0; i < TOKEN_B64_LEN; i++)
		std[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : (unsigned char)t[i];
	std[23] = '=';
	std[24] = '\0';
	if (EVP_DecodeBlock(out, std, 24) != 18)
		return -1;
	memcpy(raw, out, TOKEN_RAW_LEN);
	return 0;
}

/* base32 (28 chars) to 17 bytes, one bit at a time; the 4 spare bits
 * must be zero. 0 or -1. */
static int ref_b32(const char *t, unsigned char raw[TOKEN_RAW_LEN])
{
	unsigned char bits[TOKEN_B32_LEN * 5];
	size_t i, j;

	if (strlen(t) != TOKEN_B32_LEN)
		return -1;
	for (i = 0; i < TOKEN_B32_LEN; i++) {
		const char *p = strchr(b32, t[i]);

		if (t[i] == '\0' || p == NULL)
			return -1;
		for (j = 0; j < 5; j++)
			bits[i * 5 + j] = (unsigned char)(((p - b32) >> (4 - j)) & 1);
	}
	memset(raw, 0, TOKEN_RAW_LEN);
	for (i = 0; i < TOKEN_RAW_LEN * 8; i++)
		raw[i / 8] |= (unsigned char)(bits[i] << (7 - i % 8));
	for (; i < TOKEN_B32_LEN * 5; i++)
		if (bits[i] != 0)
			return -1;
	return 0;
}

/* token_make / token_make_b32 for (secret, campaign) give exactly the
 * reference bytes for each row. */
static void kat(unsigned line, const void *secret, size_t slen,
                const char *campaign)
{
	struct token_key *k = token_key_new(secret, slen, campaign);
	unsigned char want[TOKEN_RAW_LEN], got[TOKEN_RAW_LEN];
	char t[TOKEN_MAX];
	uint64_t row;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	for (i = 0; i < NROWS; i++) {
		expect_raw(secret, slen, campaign, rows[i], want);
		check(token_make(k, rows[i], t) == 0 && ref_b64(t, got) == 0 &&
		      memcmp(got, want, TOKEN_RAW_LEN) == 0, line,
		      "line %u: slen %zu row %zu: b64 %s", line, slen, i, t);
		check(token_check(k, t, strlen(t), &row) == 0 && row == rows[i],
		      line, "line %u: check b64", line);
		check(token_make_b32(k, rows[i], t) == 0 && ref_b32(t, got) == 0 &&
		      memcmp(got, want, TOKEN_RAW_LEN) == 0, line,
		      "line %u: slen %zu row %zu: b32 %s", line, slen, i, t);
		check(token_check(k, t, strlen(t), &row) == 0 && row == rows[i],
		      line, "line %u: check b32", line);
	}
	token_key_free(k);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_round_trip(void)
{
	struct token_key *k = key("spring-sale");
	char t[TOKEN_MAX];
	uint64_t row;
	size_t i, j;

	for (i = 0; i < NROWS; i++) {
		CU_ASSERT_EQUAL_FATAL(token_make(k, rows[i], t), 0);
		CU_ASSERT_EQUAL(strlen(t), TOKEN_B64_LEN);
		for (j = 0; j < TOKEN_B64_LEN; j++)
			CU_ASSERT_PTR_NOT_NULL(strchr(b64url, t[j]));
		row = 0;
		CU_ASSERT_EQUAL(token_check(k, t, TOKEN_B64_LEN, &row), 0);
		CU_ASSERT_EQUAL(row, rows[i]);

		CU_ASSERT_EQUAL_FATAL(token_make_b32(k, rows[i], t), 0);
		CU_ASSERT_EQUAL(strlen(t), TOKEN_B32_LEN);
		for (j = 0; j < TOKEN_B32_LEN; j++)
			CU_ASSERT_PTR_NOT_NULL(strchr(b32, t[j]));
		row = 0;
		CU_ASSERT_EQUAL(token_check(k, t, TOKEN_B32_LEN, &row), 0);
		CU_ASSERT_EQUAL(row, rows[i]);
	}
	/* Deterministic, and different per row. */
	{
		char a[TOKEN_MAX], b[TOKEN_MAX];

		CU_ASSERT_EQUAL(token_make(k, 7, a), 0);
		CU_ASSERT_EQUAL(token_make(k, 7, b), 0);
		CU_ASSERT_STRING_EQUAL(a, b);
		CU_ASSERT_EQUAL(token_make(k, 8, b), 0);
		CU_ASSERT_STRING_NOT_EQUAL(a, b);
	}
	CU_ASSERT_STRING_EQUAL(token_key_campaign(k), "spring-sale");
	token_key_free(k);
	token_key_free(NULL);
}

static void test_bad_rows(void)
{
	struct token_key *k = key("c");
	char t[TOKEN_MAX];

	CU_ASSERT_EQUAL(token_make(k, 0, t), -1);
	CU_ASSERT_EQUAL(token_make_b32(k, 0, t), -1);
	CU_ASSERT_EQUAL(token_make(k, TOKEN_ROW_MAX + 1, t), -1);
	CU_ASSERT_EQUAL(token_make_b32(k, TOKEN_ROW_MAX + 1, t), -1);
	CU_ASSERT_EQUAL(token_make(k, UINT64_MAX, t), -1);
	CU_ASSERT_EQUAL(token_make_b32(k, UINT64_MAX, t), -1);
	CU_ASSERT_EQUAL(TOKEN_ROW_MAX, UINT64_C(1099511627775));
	token_key_free(k);
}

/* A row-0 token with a valid MAC (built with the reference HMAC) is still
 * refused: row 0 does not exist. */
static void test_row_zero_forged(void)
{
	struct token_key *k = key("c");
	unsigned char raw[TOKEN_RAW_LEN];
	char t[TOKEN_MAX];
	uint64_t row;
	size_t i, o = 0;

	expect_raw(SECRET, strlen(SECRET), "c", 0, raw);
	for (i = 0; i + 3 <= TOKEN_RAW_LEN; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
		             raw[i + 2];
		t[o++] = b64url[v >> 18];
		t[o++] = b64url[(v >> 12) & 63];
		t[o++] = b64url[(v >> 6) & 63];
		t[o++] = b64url[v & 63];
	}
	{
		uint32_t v = (uint32_t)raw[15] << 16 | (uint32_t)raw[16] << 8;

		t[o++] = b64url[v >> 18];
		t[o++] = b64url[(v >> 12) & 63];
		t[o++] = b64url[(v >> 6) & 63];
	}
	t[o] = '\0';
	CU_ASSERT_EQUAL(o, TOKEN_B64_LEN);
	CU_ASSERT_EQUAL(token_check(k, t, o, &row), -1);
	/* The same construction for row 5 is accepted: the encoder above is
	 * right, so the refusal is about the row. */
	expect_raw(SECRET, strlen(SECRET), "c", 5, raw);
	{
		unsigned char got[TOKEN_RAW_LEN];
		char good[TOKEN_MAX];

		CU_ASSERT_EQUAL(token_make(k, 5, good), 0);
		CU_ASSERT(ref_b64(good, got) == 0 &&
		          memcmp(got, raw, TOKEN_RAW_LEN) == 0);
		CU_ASSERT_EQUAL(token_check(k, good, strlen(good), &row), 0);
	}
	token_key_free(k);
}

/* Every other character at every position, and every single-bit flip of
 * every character, must fail (none may decode to another valid token). */
static void tamper(struct token_key *k, const char *tok, const char *alpha)
{
	char t[TOKEN_MAX];
	size_t len = strlen(tok), i, a;
	uint64_t row = 0;
	int bit, fails = 0;

	for (i = 0; i < len; i++) {
		for (a = 0; alpha[a] != '\0'; a++) {
			if (alpha[a] == tok[i])
				continue;
			memcpy(t, tok, len + 1);
			t[i] = alpha[a];
			if (token_check(k, t, len, &row) == 0) {
				check(0, __LINE__, "%s accepted (pos %zu)", t, i);
				fails++;
			}
		}
		for (bit = 0; bit < 8; bit++) {
			memcpy(t, tok, len + 1);
			t[i] = (char)(t[i] ^ (1 << bit));
			/* Base32 takes either case: 0x20 on a letter is the
			 * same token. */
			if (alpha == b32 && bit == 5 && tok[i] >= 'a' &&
			    tok[i] <= 'z')
				continue;
			if (token_check(k, t, len, &row) == 0) {
				check(0, __LINE__, "bit %d at %zu accepted", bit, i);
				fails++;
			}
		}
	}
	CU_ASSERT_EQUAL(fails, 0);
}

static void test_tampered(void)
{
	struct token_key *k = key("spring-sale");
	char t[TOKEN_MAX];
	size_t i;

	for (i = 0; i < NROWS; i++) {
		CU_ASSERT_EQUAL_FATAL(token_make(k, rows[i], t), 0);
		tamper(k, t, b64url);
		CU_ASSERT_EQUAL_FATAL(token_make_b32(k, rows[i], t), 0);
		tamper(k, t, b32);
	}
	/* Characters of other alphabets. */
	CU_ASSERT_EQUAL_FATAL(token_make(k, 42, t), 0);
	for (i = 0; i < TOKEN_B64_LEN; i += 5) {
		char u[TOKEN_MAX];
		const char *bad = "+/=. \n";
		uint64_t row;

		for (; *bad; bad++) {
			memcpy(u, t, sizeof(u));
			u[i] = *bad;
			CU_ASSERT_EQUAL(token_check(k, u, TOKEN_B64_LEN, &row), -1);
		}
	}
	token_key_free(k);
}

static void test_other_campaign_or_secret(void)
{
	struct token_key *a = key("spring-sale"), *b = key("summer-sale");
	struct token_key *c = token_key_new(SECRET "x", strlen(SECRET) + 1,
	                                    "spring-sale");
	struct token_key *d = token_key_new("1123456789abcdef-tracking-secret",
	                                    strlen(SECRET), "spring-sale");
	struct token_key *e = key("spring-sale");
	/* NUL separates the campaign from the row: "spring-sal" + "e..."
	 * cannot collide. */
	struct token_key *f = key("spring-sal");
	char t[TOKEN_MAX];
	uint64_t row;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (i = 0; i < NROWS; i++) {
		CU_ASSERT_EQUAL_FATAL(token_make(a, rows[i], t), 0);
		CU_ASSERT_EQUAL(token_check(b, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(c, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(d, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(f, t, strlen(t), &row), -1);
		/* A new key for the same campaign and secret accepts it. */
		CU_ASSERT_EQUAL(token_check(e, t, strlen(t), &row), 0);
		CU_ASSERT_EQUAL(row, rows[i]);
		CU_ASSERT_EQUAL_FATAL(token_make_b32(a, rows[i], t), 0);
		CU_ASSERT_EQUAL(token_check(b, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(c, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(d, t, strlen(t), &row), -1);
		CU_ASSERT_EQUAL(token_check(e, t, strlen(t), &row), 0);
	}
	token_key_free(a);
	token_key_free(b);
	token_key_free(c);
	token_key_free(d);
	token_key_free(e);
	token_key_free(f);
}

static void test_wrong_lengths(void)
{
	struct token_key *k = key("c");
	char t[TOKEN_MAX], s[TOKEN_MAX], long_[64];
	uint64_t row = 99;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(token_make(k, 3, t), 0);
	CU_ASSERT_EQUAL_FATAL(token_make_b32(k, 3, s), 0);
	for (n = 0; n < TOKEN_B64_LEN; n++)
		CU_ASSERT_EQUAL(token_check(k, t, n, &row), -1);
	for (n = 0; n < TOKEN_B32_LEN; n++)
		if (n != TOKEN_B64_LEN)
			CU_ASSERT_EQUAL(token_check(k, s, n, &row), -1);
	/* A 23-byte prefix of a base32 token is no base64 token. */
	CU_ASSERT_EQUAL(token_check(k, s, TOKEN_B64_LEN, &row), -1);
	/* One byte more, whatever it is. */
	snprintf(long_, sizeof(long_), "%sA", t);
	CU_ASSERT_EQUAL(token_check(k, long_, TOKEN_B64_LEN + 1, &row), -1);
	snprintf(long_, sizeof(long_), "%sa", s);
	CU_ASSERT_EQUAL(token_check(k, long_, TOKEN_B32_LEN + 1, &row), -1);
	snprintf(long_, sizeof(long_), "%s%s", t, t);
	CU_ASSERT_EQUAL(token_check(k, long_, strlen(long_), &row), -1);
	/* The length given is what counts: a NUL inside fails. */
	memcpy(long_, t, TOKEN_B64_LEN + 1);
	long_[10] = '\0';
	CU_ASSERT_EQUAL(token_check(k, long_, TOKEN_B64_LEN, &row), -1);
	memcpy(long_, s, TOKEN_B32_LEN + 1);
	long_[27] = '\0';
	CU_ASSERT_EQUAL(token_check(k, long_, TOKEN_B32_LEN, &row), -1);
	CU_ASSERT_EQUAL(token_check(k, "", 0, &row), -1);
	CU_ASSERT_EQUAL(row, 99); /* untouched on failure */
	token_key_free(k);
}

static void test_b32_case(void)
{
	struct token_key *k = key("c");
	char t[TOKEN_MAX];
	uint64_t row;
	size_t i, j;

	for (i = 0; i < NROWS; i++) {
		CU_ASSERT_EQUAL_FATAL(token_make_b32(k, rows[i], t), 0);
		for (j = 0; t[j]; j++)
			if (t[j] >= 'a' && t[j] <= 'z')
				t[j] = (char)(t[j] - 'a' + 'A');
		row = 0;
		CU_ASSERT_EQUAL(token_check(k, t, TOKEN_B32_LEN, &row), 0);
		CU_ASSERT_EQUAL(row, rows[i]);
		/* Mixed case too. */
		for (j = 0; t[j]; j += 2)
			if (t[j] >= 'A' && t[j] <= 'Z')
				t[j] = (char)(t[j] - 'A' + 'a');
		CU_ASSERT_EQUAL(token_check(k, t, TOKEN_B32_LEN, &row), 0);
		CU_ASSERT_EQUAL(row, rows[i]);
	}
	/* base64 is case-sensitive: the same trick breaks it. */
	CU_ASSERT_EQUAL_FATAL(token_make(k, 1, t), 0);
	for (j = 0; t[j]; j++)
		if (t[j] >= 'a' && t[j] <= 'z')
			t[j] = (char)(t[j] - 'a' + 'A');
	CU_ASSERT_EQUAL(token_check(k, t, TOKEN_B64_LEN, &row), -1);
	token_key_free(k);
}

/* The last character carries spare bits (2 in base64, 4 in base32) that
 * must be zero: each other spelling of the same bytes is refused. */
static void test_spare_bits(void)
{
	struct token_key *k = key("c");
	char t[TOKEN_MAX], u[TOKEN_MAX];
	unsigned char raw[TOKEN_RAW_LEN];
	uint64_t row;
	size_t i;
	int v, s, accepted = 0;

	for (i = 0; i < NROWS; i++) {
		CU_ASSERT_EQUAL_FATAL(token_make(k, rows[i], t), 0);
		v = (int)(strchr(b64url, t[22]) - b64url);
		CU_ASSERT_EQUAL(v & 3, 0);
		for (s = 1; s < 4; s++) {
			memcpy(u, t, sizeof(u));
			u[22] = b64url[v | s];
			/* Same 17 bytes to a lenient decoder... */
			CU_ASSERT_EQUAL(ref_b64(u, raw), 0);
			/* ...but not to token_check. */
			accepted += token_check(k, u, TOKEN_B64_LEN, &row) == 0;
		}
		CU_ASSERT_EQUAL_FATAL(token_make_b32(k, rows[i], t), 0);
		v = (int)(strchr(b32, t[27]) - b32);
		CU_ASSERT_EQUAL(v & 15, 0);
		for (s = 1; s < 16; s++) {
			memcpy(u, t, sizeof(u));
			u[27] = b32[v | s];
			accepted += token_check(k, u, TOKEN_B32_LEN, &row) == 0;
		}
	}
	CU_ASSERT_EQUAL(accepted, 0);
	token_key_free(k);
}

static void test_known_answers(void)
{
	unsigned char block[64], longer[65], big[200], nul[9] = "ab\0cd\0ef";
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	memcpy(block, big, sizeof(block));
	memcpy(longer, big, sizeof(longer));
	kat(__LINE__, SECRET, strlen(SECRET), "spring-sale");
	kat(__LINE__, "k", 1, "c");
	kat(__LINE__, SECRET, strlen(SECRET), "");
	kat(__LINE__, SECRET, strlen(SECRET), "2024 Spring Sale / 50% off");
	/* Exactly one SHA-256 block, one byte over, far over (hashed
	 * first, RFC 2104 section 2). */
	kat(__LINE__, block, sizeof(block), "c");
	kat(__LINE__, longer, sizeof(longer), "c");
	kat(__LINE__, big, sizeof(big), "campaign-with-a-long-secret");
	/* The secret is bytes, NULs included. */
	kat(__LINE__, nul, 8, "c");
	/* An empty secret still gives an HMAC. */
	kat(__LINE__, "", 0, "c");
}

/* A long secret and its first 64 bytes are different keys; a long secret
 * and its SHA-256 are the same key (RFC 2104). */
static void test_long_secret(void)
{
	unsigned char big[100], h[32];
	unsigned int hl = 0;
	struct token_key *a, *b, *c;
	char t[TOKEN_MAX], u[TOKEN_MAX];
	uint64_t row;
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(255 - i);
	CU_ASSERT_EQUAL_FATAL(EVP_Digest(big, sizeof(big), h, &hl, EVP_sha256(),
	                                 NULL), 1);
	a = token_key_new(big, sizeof(big), "c");
	b = token_key_new(big, 64, "c");
	c = token_key_new(h, hl, "c");
	CU_ASSERT_FATAL(a != NULL && b != NULL && c != NULL);
	CU_ASSERT_EQUAL(token_make(a, 77, t), 0);
	CU_ASSERT_EQUAL(token_check(a, t, strlen(t), &row), 0);
	CU_ASSERT_EQUAL(row, 77);
	CU_ASSERT_EQUAL(token_check(b, t, strlen(t), &row), -1);
	CU_ASSERT_EQUAL(token_make(c, 77, u), 0);
	CU_ASSERT_STRING_EQUAL(t, u);
	token_key_free(a);
	token_key_free(b);
	token_key_free(c);
}

/* ---- one key, several threads ----------------------------------------- */

struct worker {
	const struct token_key *k;
	uint64_t base;
	int bad;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char t[TOKEN_MAX];
	uint64_t row, r;

	for (row = w->base; row < w->base + 500; row++) {
		if (token_make(w->k, row, t) != 0 ||
		    token_check(w->k, t, strlen(t), &r) != 0 || r != row)
			w->bad++;
		if (token_make_b32(w->k, row, t) != 0 ||
		    token_check(w->k, t, strlen(t), &r) != 0 || r != row)
			w->bad++;
		t[3] ^= 1;
		if (token_check(w->k, t, strlen(t), &r) == 0)
			w->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct token_key *k = key("threads");
	struct worker w[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		w[i].k = k;
		w[i].base = 1 + (uint64_t)i * 100000;
		w[i].bad = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].bad, 0);
	}
	token_key_free(k);
}

static const struct test_case tests[] = {
	{ "round_trip", test_round_trip },
	{ "bad_rows", test_bad_rows },
	{ "row_zero_forged", test_row_zero_forged },
	{ "tampered", test_tampered },
	{ "other_campaign_or_secret", test_other_campaign_or_secret },
	{ "wrong_lengths", test_wrong_lengths },
	{ "b32_case", test_b32_case },
	{ "spare_bits", test_spare_bits },
	{ "known_answers", test_known_answers },
	{ "long_secret", test_long_secret },
	{ "threads", test_threads },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("token", tests);
}
