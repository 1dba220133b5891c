/*
 * csv_reader.h - streaming recipient CSV reader (libcsv + iconv).
 *
 * Contract: reads a CSV file in fixed-size chunks and hands out one record at
 * a time (pull API); memory is bounded by the largest record, never by the
 * file size. Handles RFC 4180 quoting (delimiters, doubled quotes and line
 * breaks inside quoted fields), CRLF or LF line ends, a UTF-8 BOM, and any
 * input encoding iconv knows (gbk is read as GB18030, its superset; utf-16
 * honours its BOM). Every field handed out is UTF-8; bytes that are invalid
 * in the declared encoding never reach the caller as text: the record is
 * flagged bad_encoding with a detail, and its fields carry U+FFFD in place
 * of the bad bytes (so they can be written out without mangling the file).
 *
 * Fields are not trimmed (whitespace is data). Blank lines between records
 * are skipped and not numbered. The first record is the header.
 *
 * What it does not do: decide what a bad record means (the caller rejects
 * it), or look at the header names beyond handing them out.
 */
#ifndef EDM_CSV_READER_H
#define EDM_CSV_READER_H

#include <stddef.h>

struct csv_reader;

struct csv_reader_opts {
	const char *path;     /* file to read */
	const char *encoding; /* iconv name or alias; NULL or "utf-8" = UTF-8 */
	char delimiter;       /* ',', '\t', ';' or '|'; 0 means ',' */
};

struct csv_row {
	size_t row;               /* 1-based data record number; 0 = header */
	size_t nfields;
	const char *const *fields; /* NUL-terminated UTF-8 strings */
	const size_t *lens;        /* byte length of each field */
	int bad_encoding;          /* 1: some bytes were invalid in the
	                              declared encoding */
	char detail[160];          /* when bad_encoding: which field and
	                              bytes, e.g. "field 2 (name): bytes
	                              0xD5 0xC5 are not valid utf-8" */
};

/*
 * Open 'o->path' and read its header record. Returns NULL with a message
 * naming the file in err[errlen] when the file cannot be opened, is empty,
 * the encoding is unknown to iconv, or a BOM contradicts the declared
 * encoding (a UTF-16 BOM in a utf-8 campaign: hint "encoding = utf-16?").
 */
struct csv_reader *csv_reader_open(const struct csv_reader_opts *o,
                                   char *err, size_t errlen);

/* The header record (row 0); valid until csv_reader_free(). */
const struct csv_row *csv_reader_header(const struct csv_reader *r);

/*
 * Next data record. Returns 1 and points *row at it (valid until the next
 * call), 0 at end of file, -1 on an I/O or parser error (message in err,
 * with the row number for a quote left open at end of file or a record
 * over 1 MiB, both signs of an unbalanced quote). After -1 every further
 * call fails too.
 */
int csv_reader_next(struct csv_reader *r, const struct csv_row **row,
                    char *err, size_t errlen);

/*
 * An encoding hint for a utf-8 campaign whose records are not valid UTF-8,
 * judged from the raw bytes of the first bad field: "gbk" when they are
 * GB2312 double-byte characters, "big5" when they are not but decode as
 * Big5, "gbk" when they decode only as GB18030, otherwise NULL. (Every
 * Big5 pair is also a valid GB18030 pair, hence the GB2312 test first.)
 * NULL too when no record was bad or the campaign declared another
 * encoding.
 */
const char *csv_reader_hint(const struct csv_reader *r);

/* Bytes consumed so far and the file size (for progress); size 0 if unknown. */
void csv_reader_progress(const struct csv_reader *r, size_t *done, size_t *total);

/* 1 when 'name' (with the reader's aliases: gbk, utf-16, latin1, ...)
 * is an encoding the reader can decode, else 0. For config checks. */
int csv_encoding_known(const char *name);

/* Close the file and free everything; NULL is a no-op. */
void csv_reader_free(struct csv_reader *r);

#endif
