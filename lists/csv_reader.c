/*
 * csv_reader.c - streaming recipient CSV reader (libcsv + iconv).
 *
 * Purpose: turn a recipient file of any size and any common spreadsheet
 * encoding into a stream of UTF-8 records, one at a time, with bad bytes
 * flagged per record instead of aborting the run.
 *
 * How: the file is read in RAW_CHUNK pieces with read(2). For a non-UTF-8
 * encoding each piece is converted to UTF-8 by iconv *before* parsing (the
 * only safe order for UTF-16, whose ASCII bytes come with NULs; harmless for
 * GB18030/Big5, whose trail bytes never collide with ',', '"', CR or LF).
 * A sequence cut by the chunk boundary (EINVAL) is carried to the next
 * piece; an invalid sequence (EILSEQ) becomes the byte 0xFF, which is never
 * valid UTF-8, so the per-field check below flags the record, and one code
 * unit is skipped (one byte; two for UTF-16 so the rest stays aligned).
 * libcsv (in its lenient mode, with space trimming switched off) pushes
 * fields and records through callbacks; they are appended to one reusable
 * arena (bytes + field table + record queue), and csv_reader_next() pops
 * records from it. The arena is compacted when the queue empties, so
 * memory is one chunk's worth of records plus the largest record, with no
 * malloc per field once the arena has grown.
 *
 * Every field is checked as UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF); each run of invalid bytes is replaced by U+FFFD
 * and the record is flagged bad_encoding with a detail naming the first bad
 * field.
 *
 * Two malformations stop the reader with an error instead of a record: a
 * quote still open at end of file, and a record over CSV_RECORD_MAX (both
 * mean an unbalanced quote swallowed the rest of the file, and a "record"
 * made of thousands of lines would only confuse the caller).
 *
 * What it does not do: judge field counts (a record is handed out with as
 * many fields as it has), trim whitespace, interpret header names, or guess
 * the encoding of a whole file (csv_reader_hint() only looks at the first
 * bad field of a utf-8 campaign).
 */
#include "csv_reader.h"
#include "log.h"
#include "utf8.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 64 KiB per read(2): large enough that syscalls cost nothing next to
 * parsing (a 50 MB list is ~800 reads), small enough to bound the record
 * queue (one chunk's worth of records) to a few hundred KiB. The fuzz
 * build (tests/fuzz/meson.build) defines CSV_READER_SMALL_CHUNKS so that
 * its inputs of a few KB cross many read and iconv chunk boundaries. */
#ifdef CSV_READER_SMALL_CHUNKS
#define RAW_CHUNK 61
#else
#define RAW_CHUNK (64 * 1024)
#endif
/* Longest incomplete multibyte sequence iconv can leave at a chunk end:
 * GB18030 and UTF-16 surrogate pairs need 4; 16 covers any stateless
 * charset iconv knows. */
#define RAW_CARRY_MAX 16
/* iconv output piece; E2BIG just means "parse this and go on", so the size
 * only trades calls for memory. */
#ifdef CSV_READER_SMALL_CHUNKS
#define CONV_CHUNK 67
#else
#define CONV_CHUNK (128 * 1024)
#endif
/* A recipient record is a few hundred bytes; a record over 1 MiB is almost
 * always an unbalanced quote swallowing the rest of the file. Stop with an
 * error that says so rather than hold the whole file in memory. */
#define CSV_RECORD_MAX (1024 * 1024)
/* libcsv grows its field buffer linearly by this step (default 128). */
#define LIBCSV_BLK_SIZE (16 * 1024)
/* Raw bytes of the first bad field kept for csv_reader_hint(). */
#define HINT_RAW_MAX 256
/* Header name shown in a detail; longer names are cut (at a character
 * boundary) so the detail fits struct csv_row.detail. */
#define DETAIL_NAME_MAX 40
/* Bad bytes listed in a detail ("bytes 0xD5 0xC5 ..."). */
#define DETAIL_BYTES_MAX 8
/* libcsv's parser state for "inside a field" (libcsv.c FIELD_BEGUN); with
 * quoted set it means an open quote, used to catch one left open at EOF. */
#define LIBCSV_FIELD_BEGUN 2

/* The byte iconv EILSEQ is replaced by: never valid UTF-8 (RFC 3629 s1). */
#define ENC_MARKER 0xFF

#define NO_DETAIL SIZE_MAX

struct csv_fref {
	size_t off; /* into arena bytes */
	size_t len;
};

struct csv_qrec {
	size_t first;  /* index of the first field in the field table */
	size_t n;      /* number of fields */
	size_t detail; /* offset of the NUL-terminated detail, or NO_DETAIL */
};

struct csv_reader {
	int fd;
	char *path;
	char *enc_label;   /* the encoding as declared, for messages */
	iconv_t cd;        /* (iconv_t)-1: UTF-8 input, no conversion */
	size_t unit;       /* bytes skipped per invalid sequence */
	int utf8;          /* declared utf-8: hints apply */
	struct csv_parser parser;
	int parser_init;

	unsigned char *raw;   /* RAW_CARRY_MAX + RAW_CHUNK */
	size_t raw_carry;     /* incomplete sequence kept at raw[0..] */
	size_t raw_pending;   /* bytes read at open, not yet fed */
	unsigned char *conv;  /* CONV_CHUNK */
	int bom_pending;      /* first output bytes not yet checked for BOM */
	int eof;              /* csv_fini done: nothing more will be queued */
	int failed;           /* sticky error */
	size_t done, total;

	/* arena: bytes of completed fields, field table, record queue */
	char *buf;
	size_t blen, bcap;
	struct csv_fref *f;
	size_t nf, fcap;
	struct csv_qrec *q;
	size_t qhead, qlen, qcap;
	/* the record being built by libcsv callbacks */
	size_t cur_first;     /* its first field in f[] */
	size_t cur_byte;      /* its first byte in buf */
	int cur_bad;
	char cur_detail[sizeof(((struct csv_row *)0)->detail)];
	int oom;

	/* hand-out view of the last popped record */
	const char **ptrs;
	size_t *lens;
	size_t pcap;
	struct csv_row out;
	size_t rows;

	/* header (row 0), deep copy */
	int have_header;
	struct csv_row hdr;
	char *hdr_buf;
	const char **hdr_ptrs;
	size_t *hdr_lens;

	/* first bad field of a utf-8 campaign */
	int hint_done;
	const char *hint;
};

/* ---- messages ------------------------------------------------------- */

/* Copy at most max bytes of a UTF-8 name without cutting a character. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* ---- encodings ------------------------------------------------------ */

struct enc_alias {
	const char *alias; /* lowercase, without '-', '_' and spaces */
	const char *iconv; /* NULL: UTF-8, read without conversion */
};

/* What people type in a campaign file, mapped to what glibc iconv wants.
 * gbk/gb2312/cp936 files are read as GB18030, their superset, so one stray
 * newer character does not fail the row; "unicode" is what Excel calls its
 * UTF-16LE-with-BOM "Unicode text" export. */
static const struct enc_alias enc_aliases[] = {
	{"", NULL},
	{"utf8", NULL},
	{"gbk", "GB18030"},
	{"gb2312", "GB18030"},
	{"cp936", "GB18030"},
	{"ms936", "GB18030"},
	{"windows936", "GB18030"},
	{"euccn", "GB18030"},
	{"gb18030", "GB18030"},
	{"big5", "BIG5"},
	{"utf16", "UTF-16"},
	{"unicode", "UTF-16"},
	{"latin1", "ISO-8859-1"},
	{"l1", "ISO-8859-1"},
	{"iso88591", "ISO-8859-1"},
	{NULL, NULL},
};

/* Map a declared encoding to an iconv name; *is_utf8 set for UTF-8. */
static const char *enc_map(const char *name, int *is_utf8)
{
	char key[32];
	size_t k = 0;
	const struct enc_alias *a;

	*is_utf8 = 0;
	if (name == NULL) {
		*is_utf8 = 1;
		return NULL;
	}
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '-' || *p == '_' || *p == ' ')
			continue;
		if (k + 1 >= sizeof(key))
			return name; /* long names: pass through to iconv */
		key[k++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	}
	key[k] = '\0';
	for (a = enc_aliases; a->alias != NULL; a++)
		if (strcmp(a->alias, key) == 0) {
			*is_utf8 = a->iconv == NULL;
			return a->iconv;
		}
	return name;
}

/* Code unit size of an iconv charset: 2 for UTF-16/UCS-2, 4 for
 * UTF-32/UCS-4, else 1. An invalid sequence is skipped one unit at a time
 * (skipping one byte of UTF-16 would shift every character after it), and
 * wide charsets legitimately start with FF FE / FE FF and hold NULs. */
static size_t enc_unit(const char *iconv_name)
{
	char low[64];
	size_t i;

	if (iconv_name == NULL)
		return 1;
	for (i = 0; iconv_name[i] != '\0' && i + 1 < sizeof(low); i++)
		low[i] = (char)((iconv_name[i] >= 'A' && iconv_name[i] <= 'Z')
		                ? iconv_name[i] + 32 : iconv_name[i]);
	low[i] = '\0';
	if (strstr(low, "32") != NULL || strstr(low, "ucs4") != NULL ||
	    strstr(low, "ucs-4") != NULL)
		return 4;
	if (strstr(low, "16") != NULL || strstr(low, "ucs2") != NULL ||
	    strstr(low, "ucs-2") != NULL || strstr(low, "unicode") != NULL)
		return 2;
	return 1;
}

/* Whether s decodes completely in 'charset' (hint probing only). A
 * sequence cut at the end is accepted when the input was truncated. */
static int enc_decodes(const char *charset, const unsigned char *s, size_t n,
                       int truncated)
{
	iconv_t cd;
	char out[4 * HINT_RAW_MAX + 16];
	char *in = (char *)s, *op = out;
	size_t inleft = n, outleft = sizeof(out), rc;
	int ok;

	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return 0;
	rc = iconv(cd, &in, &inleft, &op, &outleft);
	ok = rc != (size_t)-1 || (errno == EINVAL && truncated);
	iconv_close(cd);
	return ok;
}

/* ---- arena ---------------------------------------------------------- */

/* Make room for 'need' more bytes in the arena. */
static int arena_reserve(struct csv_reader *r, size_t need)
{
	size_t cap;
	char *nb;

	if (r->bcap - r->blen >= need)
		return 0;
	cap = r->bcap ? r->bcap : RAW_CHUNK;
	while (cap - r->blen < need)
		cap *= 2;
	nb = realloc(r->buf, cap);
	if (nb == NULL)
		return -1;
	r->buf = nb;
	r->bcap = cap;
	return 0;
}

/* Append a field entry. */
static int arena_field_push(struct csv_reader *r, size_t off, size_t len)
{
	if (r->nf == r->fcap) {
		size_t cap = r->fcap ? 2 * r->fcap : 1024;
		struct csv_fref *nf = realloc(r->f, cap * sizeof(*nf));

		if (nf == NULL)
			return -1;
		r->f = nf;
		r->fcap = cap;
	}
	r->f[r->nf].off = off;
	r->f[r->nf].len = len;
	r->nf++;
	return 0;
}

/* Drop consumed records: move the record in progress to the arena start.
 * Only called when the queue is empty, so no handed-out record is moved
 * while the caller may still hold it (the contract ends its life here). */
static void arena_compact(struct csv_reader *r)
{
	size_t nmove = r->nf - r->cur_first, i;

	if (r->cur_first > 0)
		memmove(r->f, r->f + r->cur_first, nmove * sizeof(*r->f));
	for (i = 0; i < nmove; i++)
		r->f[i].off -= r->cur_byte;
	if (r->cur_byte > 0)
		memmove(r->buf, r->buf + r->cur_byte, r->blen - r->cur_byte);
	r->blen -= r->cur_byte;
	r->nf = nmove;
	r->cur_first = 0;
	r->cur_byte = 0;
	r->qhead = r->qlen = 0;
}

/* ---- libcsv callbacks ------------------------------------------------ */

/* Whitespace is data: libcsv would otherwise trim spaces and tabs from
 * unquoted fields (and eat a TAB delimiter's empty fields). */
static int reader_no_space(unsigned char c)
{
	(void)c;
	return 0;
}

/* "field N (name)" for details; just "field N" when the header has no
 * name for it (or while the header itself is being read). */
static void reader_field_label(const struct csv_reader *r, size_t i,
                               char *out, size_t outlen)
{
	size_t n;

	if (r->have_header && i < r->hdr.nfields && r->hdr.lens[i] > 0) {
		n = utf8_cut(r->hdr.fields[i], r->hdr.lens[i], DETAIL_NAME_MAX);
		snprintf(out, outlen, "field %zu (%.*s)", i + 1, (int)n,
		         r->hdr.fields[i]);
	} else {
		snprintf(out, outlen, "field %zu", i + 1);
	}
}

/* Whether every multibyte pair in s lies in the GB2312 double-byte area
 * (lead A1-F7, trail A1-FE), where nearly all simplified-Chinese names
 * are. Big5 puts about 40% of its characters on trail bytes 40-7E. */
static int enc_all_gb2312(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (i + 1 >= n || s[i] < 0xA1 || s[i] > 0xF7 || s[i + 1] < 0xA1 ||
		    s[i + 1] > 0xFE)
			return 0;
		i += 2;
	}
	return 1;
}

/* Remember the first bad field's raw bytes and work out the hint. Every
 * valid Big5 pair is also valid GB18030 (glibc maps all of its two-byte
 * codes), so "decodes as GB18030" alone would never say big5: GB2312-only
 * bytes say gbk, then Big5, then any GB18030. */
static void reader_hint_note(struct csv_reader *r, const unsigned char *s,
                             size_t n)
{
	size_t k = n < HINT_RAW_MAX ? n : HINT_RAW_MAX;

	if (r->hint_done || !r->utf8)
		return;
	r->hint_done = 1;
	if (enc_all_gb2312(s, k) && enc_decodes("GB18030", s, k, k < n))
		r->hint = "gbk";
	else if (enc_decodes("BIG5", s, k, k < n))
		r->hint = "big5";
	else if (enc_decodes("GB18030", s, k, k < n))
		r->hint = "gbk";
}

/* First bad field of the record: write the detail. */
static void reader_detail_set(struct csv_reader *r, size_t fi,
                              const unsigned char *s, size_t n, size_t bad)
{
	char label[DETAIL_NAME_MAX + 32];
	char bytes[DETAIL_BYTES_MAX * 5 + 8];
	size_t end, i, k = 0;

	reader_field_label(r, fi, label, sizeof(label));
	if (r->cd != (iconv_t)-1) {
		snprintf(r->cur_detail, sizeof(r->cur_detail),
		         "%s: bytes invalid in %s", label, r->enc_label);
		return;
	}
	end = utf8_bad_run_end(s, n, bad);
	for (i = bad; i < end && i - bad < DETAIL_BYTES_MAX; i++)
		k += (size_t)snprintf(bytes + k, sizeof(bytes) - k, "%s0x%02X",
		                      i > bad ? " " : "", s[i]);
	if (end - bad > DETAIL_BYTES_MAX)
		snprintf(bytes + k, sizeof(bytes) - k, " ...");
	snprintf(r->cur_detail, sizeof(r->cur_detail),
	         "%s: byte%s %s %s not valid utf-8", label,
	         end - bad > 1 ? "s" : "", bytes, end - bad > 1 ? "are" : "is");
}

/* libcsv field callback: validate, copy into the arena (U+FFFD for each
 * run of invalid bytes), and note the first bad field of the record. */
static void reader_on_field(void *data, size_t n, void *ctx)
{
	struct csv_reader *r = ctx;
	const unsigned char *s = data;
	size_t fi = r->nf - r->cur_first, bad, i, end, off;
	char *d;

	if (r->oom)
		return;
	if (s == NULL)
		n = 0;
	bad = n > 0 ? utf8_check(s, n) : 0;
	/* worst case: every other byte a one-byte bad run -> 2x, plus NUL */
	if (arena_reserve(r, bad == n ? n + 1 : 3 * n + 1) < 0)
		goto oom;
	off = r->blen;
	d = r->buf + off;
	if (bad == n) {
		if (n > 0)
			memcpy(d, s, n);
		d += n;
	} else {
		if (!r->cur_bad) {
			r->cur_bad = 1;
			reader_detail_set(r, fi, s, n, bad);
		}
		reader_hint_note(r, s, n);
		memcpy(d, s, bad);
		d += bad;
		i = bad;
		while (i < n) {
			end = utf8_bad_run_end(s, n, i);
			if (end > i) {
				memcpy(d, "\xEF\xBF\xBD", 3);
				d += 3;
				i = end;
				continue;
			}
			end = i + utf8_seq_len(s + i, n - i);
			while (end < n && utf8_seq_len(s + end, n - end) > 0)
				end += utf8_seq_len(s + end, n - end);
			memcpy(d, s + i, end - i);
			d += end - i;
			i = end;
		}
	}
	*d = '\0';
	if (arena_field_push(r, off, (size_t)(d - (r->buf + off))) < 0)
		goto oom;
	r->blen = (size_t)(d - r->buf) + 1;
	return;
oom:
	r->oom = 1;
}

/* Deep copy of the first record as the header (row 0). */
static int reader_header_take(struct csv_reader *r, const struct csv_qrec *q)
{
	size_t bytes = 0, i, off = 0;

	for (i = 0; i < q->n; i++)
		bytes += r->f[q->first + i].len + 1;
	r->hdr_buf = malloc(bytes ? bytes : 1);
	r->hdr_ptrs = malloc((q->n ? q->n : 1) * sizeof(*r->hdr_ptrs));
	r->hdr_lens = malloc((q->n ? q->n : 1) * sizeof(*r->hdr_lens));
	if (r->hdr_buf == NULL || r->hdr_ptrs == NULL || r->hdr_lens == NULL)
		return -1;
	for (i = 0; i < q->n; i++) {
		const struct csv_fref *fr = &r->f[q->first + i];

		memcpy(r->hdr_buf + off, r->buf + fr->off, fr->len + 1);
		r->hdr_ptrs[i] = r->hdr_buf + off;
		r->hdr_lens[i] = fr->len;
		off += fr->len + 1;
	}
	r->hdr.row = 0;
	r->hdr.nfields = q->n;
	r->hdr.fields = r->hdr_ptrs;
	r->hdr.lens = r->hdr_lens;
	r->hdr.bad_encoding = q->detail != NO_DETAIL;
	if (q->detail != NO_DETAIL)
		snprintf(r->hdr.detail, sizeof(r->hdr.detail), "%s",
		         r->buf + q->detail);
	r->have_header = 1;
	return 0;
}

/* libcsv end-of-record callback: queue the record. The first one becomes
 * the header at once, so details of the records that follow it in the same
 * chunk can name their fields. */
static void reader_on_record(int c, void *ctx)
{
	struct csv_reader *r = ctx;
	struct csv_qrec rec;
	size_t dlen;

	(void)c;
	if (r->oom)
		return;
	rec.first = r->cur_first;
	rec.n = r->nf - r->cur_first;
	rec.detail = NO_DETAIL;
	if (r->cur_bad) {
		dlen = strlen(r->cur_detail) + 1;
		if (arena_reserve(r, dlen) < 0)
			goto oom;
		memcpy(r->buf + r->blen, r->cur_detail, dlen);
		rec.detail = r->blen;
		r->blen += dlen;
	}
	r->cur_first = r->nf;
	r->cur_byte = r->blen;
	r->cur_bad = 0;
	if (!r->have_header) {
		if (reader_header_take(r, &rec) < 0)
			goto oom;
		return;
	}
	if (r->qlen == r->qcap) {
		size_t cap = r->qcap ? 2 * r->qcap : 256;
		struct csv_qrec *nq = realloc(r->q, cap * sizeof(*nq));

		if (nq == NULL)
			goto oom;
		r->q = nq;
		r->qcap = cap;
	}
	r->q[r->qlen++] = rec;
	return;
oom:
	r->oom = 1;
}

/* ---- feeding -------------------------------------------------------- */

/* Row number of the record libcsv is working on (for error messages). */
static size_t reader_row_next(const struct csv_reader *r)
{
	return r->rows + (r->qlen - r->qhead) + 1;
}

/* Hand UTF-8 bytes to libcsv; strips a BOM at the very start. */
static int reader_parse(struct csv_reader *r, const unsigned char *s,
                        size_t n, char *err, size_t errlen)
{
	if (n == 0)
		return 0;
	if (r->bom_pending) {
		/* iconv emits U+FEFF whole, and the first UTF-8 chunk holds
		 * at least 3 bytes unless the file is shorter */
		r->bom_pending = 0;
		if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
	}
	if (csv_parse(&r->parser, s, n, reader_on_field, reader_on_record,
	              r) != n) {
		edm_errf(err, errlen, "%s: csv parser: %s", r->path,
		            csv_strerror(csv_error(&r->parser)));
		return -1;
	}
	if (r->oom) {
		edm_errf(err, errlen, "%s: out of memory", r->path);
		return -1;
	}
	if ((r->blen - r->cur_byte) + r->parser.entry_pos > CSV_RECORD_MAX) {
		edm_errf(err, errlen,
		            "%s: row %zu: record longer than %d KiB "
		            "(a quote left open?)", r->path,
		            reader_row_next(r), CSV_RECORD_MAX / 1024);
		return -1;
	}
	return 0;
}

/* Convert raw[0..n) to UTF-8 and parse it. Incomplete trailing sequences
 * are kept in raw[] for the next chunk (or become a marker at EOF);
 * invalid ones become ENC_MARKER and one code unit (a byte; two for
 * UTF-16) is skipped. */
static int reader_convert(struct csv_reader *r, size_t n, int at_eof,
                          char *err, size_t errlen)
{
	static const unsigned char marker[1] = {ENC_MARKER};
	char *in = (char *)r->raw, *out;
	size_t inleft = n, outleft, rc;
	int e;

	r->raw_carry = 0;
	while (inleft > 0) {
		out = (char *)r->conv;
		outleft = CONV_CHUNK;
		rc = iconv(r->cd, &in, &inleft, &out, &outleft);
		e = errno;
		if (reader_parse(r, r->conv, (size_t)(out - (char *)r->conv),
		                 err, errlen) < 0)
			return -1;
		if (rc != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		if (e == EINVAL && !at_eof && inleft <= RAW_CARRY_MAX) {
			memmove(r->raw, in, inleft);
			r->raw_carry = inleft;
			break;
		}
		if (e == EINVAL && at_eof) {
			/* dangling incomplete sequence: one marker */
			if (reader_parse(r, marker, 1, err, errlen) < 0)
				return -1;
			break;
		}
		if (e == EILSEQ || e == EINVAL) {
			size_t skip = r->unit < inleft ? r->unit : inleft;

			if (reader_parse(r, marker, 1, err, errlen) < 0)
				return -1;
			in += skip;
			inleft -= skip;
			continue;
		}
		edm_errf(err, errlen, "%s: iconv from %s: %s", r->path,
		            r->enc_label, strerror(e));
		return -1;
	}
	if (at_eof) {
		out = (char *)r->conv;
		outleft = CONV_CHUNK;
		iconv(r->cd, NULL, NULL, &out, &outleft);
		if (reader_parse(r, r->conv, (size_t)(out - (char *)r->conv),
		                 err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* read(2) until 'len' bytes or end of file. */
static ssize_t reader_read_full(int fd, unsigned char *b, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, b + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Finish parsing at end of file. An open quote here means the rest of the
 * file was swallowed into one field: an error, not a record. */
static int reader_finish(struct csv_reader *r, char *err, size_t errlen)
{
	if (r->parser.pstate == LIBCSV_FIELD_BEGUN && r->parser.quoted) {
		edm_errf(err, errlen,
		            "%s: row %zu: quoted field not closed at end of "
		            "file (unbalanced \")", r->path, reader_row_next(r));
		return -1;
	}
	csv_fini(&r->parser, reader_on_field, reader_on_record, r);
	r->eof = 1;
	if (r->oom) {
		edm_errf(err, errlen, "%s: out of memory", r->path);
		return -1;
	}
	return 0;
}

/* Read and parse one chunk (the bytes read at open first). */
static int reader_feed(struct csv_reader *r, char *err, size_t errlen)
{
	ssize_t n;
	size_t have;

	if (r->raw_pending > 0) {
		n = (ssize_t)r->raw_pending;
		r->raw_pending = 0;
	} else {
		n = reader_read_full(r->fd, r->raw + r->raw_carry, RAW_CHUNK);
		if (n < 0) {
			edm_errf(err, errlen, "%s: read: %s", r->path,
			            strerror(errno));
			return -1;
		}
		r->done += (size_t)n;
	}
	have = r->raw_carry + (size_t)n;
	if (r->cd == (iconv_t)-1) {
		if (reader_parse(r, r->raw, have, err, errlen) < 0)
			return -1;
	} else if (have > 0 &&
	           reader_convert(r, have, n == 0, err, errlen) < 0) {
		return -1;
	}
	if (n == 0)
		return reader_finish(r, err, errlen);
	return 0;
}

/* ---- open / checks ------------------------------------------------- */

/* Refuse a byte order mark that contradicts the declared encoding. */
static int reader_bom_check(struct csv_reader *r, const char *iconv_name,
                            size_t n, char *err, size_t errlen)
{
	const unsigned char *b = r->raw;
	int wide = enc_unit(iconv_name) > 1;

	if (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) ||
	               (b[0] == 0xFE && b[1] == 0xFF)) && !wide) {
		edm_errf(err, errlen,
		            "%s: looks like UTF-16 (BOM %02X %02X); set "
		            "encoding = utf-16", r->path, b[0], b[1]);
		return -1;
	}
	if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF &&
	    !r->utf8) {
		edm_errf(err, errlen,
		            "%s: starts with a UTF-8 byte order mark but "
		            "encoding = %s; set encoding = utf-8", r->path,
		            r->enc_label);
		return -1;
	}
	if (wide && n > 0 && memchr(b, 0, n) == NULL) {
		edm_errf(err, errlen,
		            "%s: encoding = %s but the file has no NUL bytes, so "
		            "it is not UTF-16/32 text; set encoding = utf-8?",
		            r->path, r->enc_label);
		return -1;
	}
	return 0;
}

/* Open the file and its converter, read the first chunk, check the BOM,
 * and parse until the header record is complete. */
struct csv_reader *csv_reader_open(const struct csv_reader_opts *o,
                                   char *err, size_t errlen)
{
	struct csv_reader *r;
	const char *iconv_name;
	struct stat st;
	ssize_t n;
	char delim = o->delimiter != '\0' ? o->delimiter : ',';

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		edm_errf(err, errlen, "%s: out of memory", o->path);
		return NULL;
	}
	r->fd = -1;
	r->cd = (iconv_t)-1;
	r->bom_pending = 1;
	r->path = strdup(o->path);
	r->enc_label = strdup(o->encoding != NULL && o->encoding[0] != '\0'
	                      ? o->encoding : "utf-8");
	r->raw = malloc(RAW_CARRY_MAX + RAW_CHUNK);
	if (r->path == NULL || r->enc_label == NULL || r->raw == NULL) {
		edm_errf(err, errlen, "%s: out of memory", o->path);
		goto fail;
	}

	if (delim == '"' || delim == '\r' || delim == '\n') {
		edm_errf(err, errlen, "%s: 0x%02X cannot be the delimiter",
		            o->path, (unsigned char)delim);
		goto fail;
	}
	iconv_name = enc_map(o->encoding, &r->utf8);
	r->unit = enc_unit(iconv_name);
	if (iconv_name != NULL) {
		r->cd = iconv_open("UTF-8", iconv_name);
		if (r->cd == (iconv_t)-1) {
			edm_errf(err, errlen,
			            "%s: unknown encoding \"%s\" (common ones: "
			            "utf-8, gbk, big5, utf-16, latin1; or any "
			            "name `iconv -l` lists)", o->path,
			            o->encoding);
			goto fail;
		}
		r->conv = malloc(CONV_CHUNK);
		if (r->conv == NULL) {
			edm_errf(err, errlen, "%s: out of memory", o->path);
			goto fail;
		}
	}

	r->fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		edm_errf(err, errlen, "%s: %s", o->path, strerror(errno));
		goto fail;
	}
	if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
		r->total = (size_t)st.st_size;

	n = reader_read_full(r->fd, r->raw, RAW_CHUNK);
	if (n < 0) {
		edm_errf(err, errlen, "%s: read: %s", o->path,
		            strerror(errno));
		goto fail;
	}
	r->done = (size_t)n;
	r->raw_pending = (size_t)n;
	if (reader_bom_check(r, iconv_name, (size_t)n, err, errlen) < 0)
		goto fail;

	if (csv_init(&r->parser, 0) != 0) {
		edm_errf(err, errlen, "%s: out of memory", o->path);
		goto fail;
	}
	r->parser_init = 1;
	csv_set_delim(&r->parser, (unsigned char)delim);
	csv_set_space_func(&r->parser, reader_no_space);
	csv_set_blk_size(&r->parser, LIBCSV_BLK_SIZE);

	while (!r->have_header && !r->eof)
		if (reader_feed(r, err, errlen) < 0)
			goto fail;
	if (!r->have_header) {
		edm_errf(err, errlen, "%s: empty file, no header row",
		            o->path);
		goto fail;
	}
	return r;

fail:
	csv_reader_free(r);
	return NULL;
}

const struct csv_row *csv_reader_header(const struct csv_reader *r)
{
	return &r->hdr;
}

/* Pop the next queued record, reading chunks until one is complete. */
int csv_reader_next(struct csv_reader *r, const struct csv_row **row,
                    char *err, size_t errlen)
{
	const struct csv_qrec *q;
	size_t i;

	if (r->failed) {
		edm_errf(err, errlen, "%s: reader stopped after an error",
		            r->path);
		return -1;
	}
	while (r->qhead == r->qlen) {
		if (r->eof)
			return 0;
		arena_compact(r);
		if (reader_feed(r, err, errlen) < 0) {
			r->failed = 1;
			return -1;
		}
	}
	q = &r->q[r->qhead++];
	if (q->n > r->pcap) {
		size_t cap = q->n * 2;
		const char **np;
		size_t *nl;

		np = realloc(r->ptrs, cap * sizeof(*np));
		if (np != NULL)
			r->ptrs = np;
		nl = realloc(r->lens, cap * sizeof(*nl));
		if (nl != NULL)
			r->lens = nl;
		if (np == NULL || nl == NULL) {
			edm_errf(err, errlen, "%s: out of memory", r->path);
			r->failed = 1;
			return -1;
		}
		r->pcap = cap;
	}
	for (i = 0; i < q->n; i++) {
		r->ptrs[i] = r->buf + r->f[q->first + i].off;
		r->lens[i] = r->f[q->first + i].len;
	}
	r->out.row = ++r->rows;
	r->out.nfields = q->n;
	r->out.fields = r->ptrs;
	r->out.lens = r->lens;
	r->out.bad_encoding = q->detail != NO_DETAIL;
	if (q->detail != NO_DETAIL)
		snprintf(r->out.detail, sizeof(r->out.detail), "%s",
		         r->buf + q->detail);
	else
		r->out.detail[0] = '\0';
	*row = &r->out;
	return 1;
}

const char *csv_reader_hint(const struct csv_reader *r)
{
	return r->utf8 ? r->hint : NULL;
}

void csv_reader_progress(const struct csv_reader *r, size_t *done,
                         size_t *total)
{
	if (done != NULL)
		*done = r->done;
	if (total != NULL)
		*total = r->total;
}

void csv_reader_free(struct csv_reader *r)
{
	if (r == NULL)
		return;
	if (r->parser_init)
		csv_free(&r->parser);
	if (r->fd >= 0)
		close(r->fd);
	if (r->cd != (iconv_t)-1)
		iconv_close(r->cd);
	free(r->hdr_lens);
	free(r->hdr_ptrs);
	free(r->hdr_buf);
	free(r->lens);
	free(r->ptrs);
	free(r->q);
	free(r->f);
	free(r->buf);
	free(r->conv);
	free(r->raw);
	free(r->enc_label);
	free(r->path);
	free(r);
}

int csv_encoding_known(const char *name)
{
	int utf8;
	const char *iconv_name = enc_map(name, &utf8);
	iconv_t cd;

	if (utf8)
		return 1;
	cd = iconv_open("UTF-8", iconv_name);
	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}
