/*
 * utf8.h - UTF-8 validation (RFC 3629), I/O-free.
 *
 * Contract: these accept exactly the well-formed UTF-8 of RFC 3629 section
 * 4 (no overlong forms, no surrogates U+D800..DFFF, nothing above
 * U+10FFFF). They read s[0..n) only and allocate nothing. The one
 * validator of the project: the CSV reader, the CSV writer and the INI
 * reader all use it.
 */
#ifndef EDM_UTF8_H
#define EDM_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed sequence starting at s[0], or 0 when the
 * bytes there do not start one. n > 0. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* n when s[0..n) is valid UTF-8, else the offset of the first byte of the
 * first invalid sequence. ASCII runs are checked eight bytes at a time. */
size_t utf8_check(const unsigned char *s, size_t n);

/* End of the run of bytes from s[i] on that start no valid sequence (a
 * run is replaced by one U+FFFD when sanitising). */
size_t utf8_bad_run_end(const unsigned char *s, size_t n, size_t i);

#endif
