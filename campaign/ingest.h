/*
 * ingest.h - `edm ingest CONFIG [SOURCE...]`: read the reports that come
 * back after sending (asynchronous bounces, delay warnings, complaint
 * reports) from an mbox file, a Maildir or standard input, match each to
 * the campaign's recipient row, and record what they say: rows in
 * OUT_DIR/events.csv (bounce, delayed, complaint) and, for hard bounces of
 * the suppressing categories and every complaint, the address in the
 * suppression file. docs/ingest.md describes matching, effects and the
 * formats read (engine/dsn.h parses them).
 *
 * campaign/main.c dispatches "ingest" to ingest_main() and shows
 * ingest_usage for `edm help ingest`.
 * Contract: running it again on the same messages changes nothing (each
 * report's ref, its Message-ID or the SHA-256 of its bytes, is in
 * events.csv once recorded). Sources are only read, never changed.
 */
#ifndef EDM_INGEST_H
#define EDM_INGEST_H

extern const char ingest_usage[];

/* argv[0] is "ingest". Returns a sysexits(3) code: 0 done, 64 usage,
 * 65 a SOURCE that is not mail at all, 66 a missing SOURCE (or CONFIG),
 * 74 an I/O error, 78 a config error. */
int ingest_main(int argc, char **argv);

#endif
