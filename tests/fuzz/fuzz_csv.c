/*
 * fuzz_csv.c - libFuzzer harness for the streaming CSV reader
 * (lists/csv_reader.h).
 *
 * Input: byte 0 picks the encoding (bits 0-2: utf-8, gbk, gb18030, big5,
 * utf-16le, utf-16be, utf-16 (BOM), latin1) and the delimiter (bits 3-4:
 * ',', tab, ';', '|'); the rest is the file. The file is written to a
 * memfd and opened by its /proc/self/fd path, as the reader wants a path.
 * The fuzz build compiles the reader with CSV_READER_SMALL_CHUNKS (61-byte
 * reads, 67-byte iconv output), so short inputs cross many chunk
 * boundaries.
 * Properties: every field is valid UTF-8 of the stated length with a NUL
 * after it, in every encoding; a record flagged bad_encoding has a
 * detail; records are numbered 1, 2, ... after the header (row 0); after
 * an error (-1) every later call fails too; progress never passes the
 * file size; the reader ends (no record loop).
 */
#include "fuzz.h"

#include "csv_reader.h"
#include "utf8.h"

#include <sys/mman.h>
#include <unistd.h>

static const char *const encodings[8] = {
	"utf-8", "gbk", "gb18030", "big5", "utf-16le", "utf-16be", "utf-16",
	"latin1",
};
static const char delimiters[4] = { ',', '\t', ';', '|' };

/* Fields of one record: UTF-8, NUL after each, lens match. */
static void check_row(const struct csv_row *row)
{
	FZ_CHECK(row->nfields > 0, "record without fields");
	for (size_t i = 0; i < row->nfields; i++) {
		const unsigned char *s = (const unsigned char *)row->fields[i];

		FZ_CHECK(s != NULL, "field %zu NULL", i);
		FZ_CHECK(s[row->lens[i]] == '\0', "field %zu not NUL-terminated",
		         i);
		FZ_CHECK(utf8_check(s, row->lens[i]) == row->lens[i],
		         "field %zu of row %zu is not UTF-8", i, row->row);
	}
	if (row->bad_encoding)
		FZ_CHECK(row->detail[0] != '\0', "bad_encoding without detail");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct csv_reader_opts o;
	const struct csv_row *row;
	struct csv_reader *r;
	char err[512];
	size_t expect = 1, done, total;
	unsigned sel;
	int rc;

	if (size == 0)
		return 0;
	if (fd < 0) {
		fd = memfd_create("fuzz_csv", 0);
		FZ_CHECK(fd >= 0, "memfd_create");
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	sel = data[0];
	FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
	FZ_CHECK(pwrite(fd, data + 1, size - 1, 0) == (ssize_t)(size - 1),
	         "pwrite");
	memset(&o, 0, sizeof o);
	o.path = path;
	o.encoding = encodings[sel & 7];
	o.delimiter = delimiters[(sel >> 3) & 3];
	FZ_CHECK(csv_encoding_known(o.encoding), "%s unknown", o.encoding);

	r = csv_reader_open(&o, err, sizeof err);
	if (r == NULL) {
		FZ_CHECK(err[0] != '\0', "open failed without a message");
		return 0;
	}
	row = csv_reader_header(r);
	FZ_CHECK(row != NULL && row->row == 0, "header row");
	check_row(row);
	/* a record needs at least one byte: more than size records is a loop */
	while ((rc = csv_reader_next(r, &row, err, sizeof err)) == 1) {
		FZ_CHECK(row->row == expect, "row %zu, expected %zu", row->row,
		         expect);
		FZ_CHECK(expect <= size, "more records than bytes");
		check_row(row);
		expect++;
		csv_reader_progress(r, &done, &total);
		FZ_CHECK(done <= total, "progress %zu of %zu", done, total);
	}
	if (rc < 0) {
		FZ_CHECK(err[0] != '\0', "error without a message");
		FZ_CHECK(csv_reader_next(r, &row, err, sizeof err) == -1,
		         "a call after an error succeeded");
	} else {
		FZ_CHECK(rc == 0, "next returned %d", rc);
		csv_reader_progress(r, &done, &total);
		FZ_CHECK(done == total && total == size - 1,
		         "at the end: progress %zu of %zu, file %zu", done, total,
		         size - 1);
	}
	(void)csv_reader_hint(r);
	csv_reader_free(r);
	return 0;
}
