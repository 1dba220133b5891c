/*
 * utf8.h - UTF-8 validation (RFC 3629), I/O-free.
 *
 * Contract: utf8_check() accepts exactly the well-formed UTF-8 of RFC 3629
 * (no overlong forms, no surrogates U+D800..DFFF, nothing above U+10FFFF).
 * It reads s[len] only and allocates nothing.
 */
#ifndef EDM_UTF8_H
#define EDM_UTF8_H

#include <stddef.h>

/*
 * Return len when s[len] is valid UTF-8, else the offset of the first byte
 * of the first invalid sequence.
 */
size_t utf8_check(const char *s, size_t len);

/*
 * Length of the invalid run starting at s[off] (a maximal prefix that is
 * not the start of a valid sequence; at least 1), for replacing it with one
 * U+FFFD the way WHATWG decoders do per invalid sequence.
 */
size_t utf8_invalid_len(const char *s, size_t len, size_t off);

#endif
