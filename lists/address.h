/*
 * address.h - RFC 5321 mailbox syntax check and normalisation (I/O-free).
 *
 * Contract: addr_parse() takes the raw bytes of a CSV field (UTF-8, may carry
 * surrounding blanks: space, tab, CR, LF, U+00A0, U+3000; they are trimmed)
 * and decides whether it is a Mailbox usable on the public internet:
 *   - dot-atom local part (RFC 5322 atext), no leading/trailing/double dots,
 *     at most 64 octets; quoted local parts are refused (not usable in bulk);
 *     a non-ASCII local part (EAI) is refused with a detail saying it needs
 *     SMTPUTF8 end to end;
 *   - domain of at least 2 labels, LDH labels of 1..63 octets, no label
 *     starting or ending with '-', an alphabetic-looking TLD (not all digits),
 *     no address literals ([1.2.3.4]), no bare IPs, no dotless domains, no
 *     trailing dot; total domain at most 253 octets after IDNA;
 *   - internationalised domains (münchen.de) are converted to punycode with
 *     libidn2 (IDNA2008, non-transitional, NFC input), full-width dots
 *     (U+3002, U+FF0E, U+FF61) counting as '.'; domain lowercased;
 *   - the whole address at most 254 octets (RFC 5321 4.5.3.1.3 path 256
 *     minus the angle brackets).
 * It does no DNS; 'out' is fully owned by the caller. Nothing is allocated
 * on the ASCII path; a non-ASCII domain goes through libidn2, which
 * allocates a temporary that is freed before returning.
 */
#ifndef EDM_ADDRESS_H
#define EDM_ADDRESS_H

#include <stddef.h>

#define ADDR_MAX 254        /* RFC 5321: 256-octet path minus "<" ">" */
#define ADDR_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 253 /* RFC 1035 name length without the root dot */

struct addr {
	char norm[ADDR_MAX + 1]; /* "local@domain": local as given (trimmed),
	                            domain lowercased ASCII/punycode */
	char key[ADDR_MAX + 1];  /* norm lowercased: the comparison key for
	                            duplicates and suppression */
	size_t local_len;        /* octets before '@' in norm and key */
	size_t len;              /* strlen(norm) == strlen(key) */
};

/* Return the domain part of a parsed address (points into a->norm). */
#define addr_domain(a) ((a)->norm + (a)->local_len + 1)

/*
 * Parse and normalise 'len' bytes at 'in'. Returns 0 and fills *out when the
 * address is valid; returns -1 and writes a short human reason (e.g.
 * "local part ends with a dot", "domain has a single label") into
 * detail[dlen] otherwise. 'in' need not be NUL-terminated.
 */
int addr_parse(const char *in, size_t len, struct addr *out,
               char *detail, size_t dlen);

/*
 * Normalise a bare domain (as found in config data files): trim, lowercase,
 * IDNA to punycode, LDH check with the same rules as addr_parse(). Writes
 * the result to out[outlen]. Returns 0, or -1 with detail filled.
 */
int addr_domain_normalise(const char *in, size_t len, char *out,
                          size_t outlen, char *detail, size_t dlen);

#endif
