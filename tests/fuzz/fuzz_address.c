/*
 * fuzz_address.c - libFuzzer harness for the address validator
 * (lists/address.h).
 *
 * Input: the raw bytes of a CSV field; also given to
 * addr_domain_normalise() as a bare domain.
 * Properties of an accepted address: norm is "local@domain" with
 * strlen(norm) == len <= 254, the '@' at local_len (1..64), a domain of
 * 2+ LDH labels (1..63 octets, no '-' at either end, lowercase ASCII, not
 * all-digit TLD) of at most 253 octets; key is norm lowercased; parsing
 * norm again gives the same norm (normalising is idempotent), and so does
 * normalising its domain alone. A refusal always has a detail. The same
 * for addr_domain_normalise() on the whole input.
 */
#include "fuzz.h"

#include "address.h"

/* A normalised domain: LDH labels, lowercase, 2+ labels, TLD not digits. */
static void check_domain(const char *d, size_t n)
{
	size_t label = 0, labels = 1, i;
	int tld_digits = 1;

	FZ_CHECK(n >= 3 && n <= ADDR_DOMAIN_MAX, "domain length %zu", n);
	for (i = 0; i < n; i++) {
		char c = d[i];

		if (c == '.') {
			FZ_CHECK(label > 0 && d[i - 1] != '-', "label end at %zu", i);
			labels++;
			label = 0;
			tld_digits = 1;
			continue;
		}
		FZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		         c == '-', "domain byte 0x%02X", (unsigned char)c);
		FZ_CHECK(label > 0 || c != '-', "label starts with '-'");
		if (c < '0' || c > '9')
			tld_digits = 0;
		label++;
		FZ_CHECK(label <= 63, "label over 63");
	}
	FZ_CHECK(label > 0 && d[n - 1] != '-', "last label");
	FZ_CHECK(labels >= 2, "single label");
	FZ_CHECK(!tld_digits, "all-digit TLD");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a, b;
	char detail[256], dom[ADDR_DOMAIN_MAX + 1], dom2[ADDR_DOMAIN_MAX + 1];
	const char *in = (const char *)data;

	detail[0] = '\0';
	if (addr_parse(in, size, &a, detail, sizeof detail) == 0) {
		size_t dl;

		FZ_CHECK(strlen(a.norm) == a.len && strlen(a.key) == a.len &&
		         a.len <= ADDR_MAX, "len %zu", a.len);
		FZ_CHECK(a.local_len >= 1 && a.local_len <= ADDR_LOCAL_MAX &&
		         a.norm[a.local_len] == '@', "local_len %zu", a.local_len);
		FZ_CHECK(strchr(addr_domain(&a), '@') == NULL, "two '@'");
		dl = a.len - a.local_len - 1;
		check_domain(addr_domain(&a), dl);
		for (size_t i = 0; i < a.len; i++) {
			char c = a.norm[i];

			FZ_CHECK((unsigned char)c > 0x20 && (unsigned char)c < 0x7f,
			         "norm byte 0x%02X", (unsigned char)c);
			FZ_CHECK(a.key[i] == (c >= 'A' && c <= 'Z' ? c + 32 : c),
			         "key is not norm lowercased");
		}
		FZ_CHECK(addr_parse(a.norm, a.len, &b, detail, sizeof detail) == 0,
		         "norm [%s] refused: %s", a.norm, detail);
		FZ_CHECK(b.len == a.len && strcmp(a.norm, b.norm) == 0 &&
		         b.local_len == a.local_len, "not idempotent: [%s] -> [%s]",
		         a.norm, b.norm);
		FZ_CHECK(addr_domain_normalise(addr_domain(&a), dl, dom,
		                               sizeof dom, detail,
		                               sizeof detail) == 0 &&
		         strcmp(dom, addr_domain(&a)) == 0,
		         "domain [%s] -> [%s] (%s)", addr_domain(&a), dom, detail);
	} else {
		FZ_CHECK(detail[0] != '\0', "refusal without detail");
	}

	detail[0] = '\0';
	if (addr_domain_normalise(in, size, dom, sizeof dom, detail,
	                          sizeof detail) == 0) {
		size_t n = strlen(dom);

		check_domain(dom, n);
		FZ_CHECK(addr_domain_normalise(dom, n, dom2, sizeof dom2, detail,
		                               sizeof detail) == 0 &&
		         strcmp(dom, dom2) == 0, "domain not idempotent: [%s] -> "
		         "[%s] (%s)", dom, dom2, detail);
	} else {
		FZ_CHECK(detail[0] != '\0', "domain refusal without detail");
	}
	return 0;
}
