/*
 * utf8.c - UTF-8 validation (RFC 3629 section 4 byte ranges).
 *
 * The ASCII fast path checks eight bytes at a time, since recipient lists
 * are mostly ASCII and this runs on every field of a million-row file.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid sequence at s[i], or 0 if it is invalid (RFC 3629 §4). */
static size_t utf8_seq_len(const unsigned char *s, size_t len, size_t i)
{
	unsigned char c = s[i];
	size_t n = len - i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return n >= 2 && (s[i + 1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned char lo = 0x80, hi = 0xBF;

		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
		if (n < 3 || s[i + 1] < lo || s[i + 1] > hi ||
		    (s[i + 2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned char lo = 0x80, hi = 0xBF;

		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
		if (n < 4 || s[i + 1] < lo || s[i + 1] > hi ||
		    (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

size_t utf8_check(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		if (len - i >= 8) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if ((w & 0x8080808080808080ULL) == 0) {
				i += 8;
				continue;
			}
		}
		size_t n = utf8_seq_len(s, len, i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

size_t utf8_invalid_len(const char *str, size_t len, size_t off)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = off + 1;

	/* Swallow continuation bytes that belong to the broken sequence. */
	while (i < len && (s[i] & 0xC0) == 0x80 && i - off < 4)
		i++;
	return i - off;
}
