/*
 * utf8.c - UTF-8 validation (RFC 3629 section 4 byte ranges).
 *
 * The ASCII fast path checks eight bytes at a time, since recipient lists
 * are mostly ASCII and this runs on every field of a million-row file.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0; /* continuation byte or overlong 2-byte lead */
	if (c < 0xE0)
		return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xE0 && s[1] < 0xA0) || /* overlong */
		    (c == 0xED && s[1] > 0x9F))   /* surrogates */
			return 0;
		return 3;
	}
	if (c < 0xF5) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xF0 && s[1] < 0x90) || /* overlong */
		    (c == 0xF4 && s[1] > 0x8F))   /* above U+10FFFF */
			return 0;
		return 4;
	}
	return 0;
}

size_t utf8_check(const unsigned char *s, size_t n)
{
	size_t i = 0, k;
	uint64_t v;

	while (i < n) {
		while (i + 8 <= n) {
			memcpy(&v, s + i, 8);
			if (v & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = utf8_seq_len(s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

size_t utf8_bad_run_end(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && utf8_seq_len(s + i, n - i) == 0)
		i++;
	return i;
}
