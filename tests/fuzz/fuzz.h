/*
 * fuzz.h - helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * A harness splits its input with a struct fz cursor: fz_byte() and
 * fz_u16() take control bytes from the front, fz_take() a length-prefixed
 * piece, fz_str() a NUL-terminated copy of one; all of them return zero
 * values once the input is used up, so every input is a valid script.
 * FZ_CHECK() is how a harness states a property of the output: on failure
 * it prints the condition and aborts, which libFuzzer reports as a crash
 * and saves the input.
 *
 * What it does not do: any module-specific decoding (each harness's
 * header comment says how it reads its input).
 */
#ifndef EDM_FUZZ_H
#define EDM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fz {
	const uint8_t *p;
	size_t n;
};

/* A broken property: say which, then abort (libFuzzer keeps the input). */
#define FZ_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, \
		        __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

/* Next control byte, 0 when the input is used up. */
static inline unsigned fz_byte(struct fz *f)
{
	if (f->n == 0)
		return 0;
	f->n--;
	return *f->p++;
}

/* Next two bytes as a little-endian number. */
static inline unsigned fz_u16(struct fz *f)
{
	unsigned lo = fz_byte(f);

	return lo | fz_byte(f) << 8;
}

/* Up to 'want' bytes (fewer at the end): *p points into the input. */
static inline size_t fz_take(struct fz *f, size_t want, const uint8_t **p)
{
	if (want > f->n)
		want = f->n;
	*p = f->p;
	f->p += want;
	f->n -= want;
	return want;
}

/* A piece up to the next 0xFF separator byte (or the end), as a malloc'd
 * NUL-terminated string (*len its length; it may hold NUL bytes, which
 * C-string APIs then see as its end). Never NULL unless out of memory. */
static inline char *fz_str(struct fz *f, size_t *len)
{
	const uint8_t *sep = f->n > 0 ? memchr(f->p, 0xFF, f->n) : NULL;
	size_t n = sep != NULL ? (size_t)(sep - f->p) : f->n;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, f->p, n);
	s[n] = '\0';
	f->p += n + (sep != NULL);
	f->n -= n + (sep != NULL);
	if (len != NULL)
		*len = n;
	return s;
}

/*
 * Make a private directory for a harness that needs files: under $TMPDIR
 * when set (scripts/fuzz.sh and run_corpus.sh point it at a directory
 * they remove, since a crashing run never cleans up), else on tmpfs
 * (/dev/shm: rewriting a file on ext4 costs a flush per run), else /tmp.
 * dir gets the path; aborts when none can be made.
 */
static inline void fz_tempdir(char *dir, size_t n, const char *tag)
{
	const char *bases[3] = { getenv("TMPDIR"), "/dev/shm", "/tmp" };

	for (size_t i = 0; i < 3; i++) {
		if (bases[i] == NULL || bases[i][0] == '\0')
			continue;
		if ((size_t)snprintf(dir, n, "%s/edm-fuzz-%s-XXXXXX", bases[i],
		                     tag) < n && mkdtemp(dir) != NULL)
			return;
	}
	FZ_CHECK(0, "no temporary directory for %s", tag);
}

#endif
