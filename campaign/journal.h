/*
 * journal.h - the send journal: the durable record of every recipient
 * outcome, so `edm send` can be killed at any moment and resumed.
 *
 * File: OUT_DIR/journal (0600), append-only text, one record per line,
 * written with one write(2) per record before the outcome counts (no stdio
 * buffering); fsync every JOURNAL_SYNC_EVERY records or JOURNAL_SYNC_MS,
 * whichever first, and at close (docs/reports.md explains the window).
 *   E1 <fingerprint> <campaign> <unix-time>       first line (header)
 *   F <row> <results.csv line>                    final outcome of a row
 *   D <row> <attempts> <next-retry> <first-attempt> <queued-at>
 *                                                 deferral (soft failure)
 * A torn last line (a crash mid-write) is cut off at open.
 * A lock (flock on OUT_DIR/lock, held while open) stops two sends of one
 * campaign at once.
 * On open the journal is read back into a compact state: a bit per final
 * row, and a hash map of the rows currently deferred (removed when final).
 * Memory: O(rows/8) + O(deferred).
 * results.csv is rebuilt from the F lines at open (atomically), so a crash
 * between the journal write and the results write loses nothing. Its lines
 * are therefore buffered: written when JOURNAL_RESULTS_BUF bytes are
 * pending and at every sync (so at most JOURNAL_SYNC_MS behind the
 * journal while sending, and complete after journal_sync/journal_close).
 */
#ifndef EDM_JOURNAL_H
#define EDM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JOURNAL_SYNC_EVERY 256
#define JOURNAL_SYNC_MS 1000
#define JOURNAL_RESULTS_BUF 32768

struct journal;

enum journal_open_rc {
	JOURNAL_OK = 0,
	JOURNAL_ERR = -1,        /* I/O error; err says what and where */
	JOURNAL_LOCKED = -2,     /* another edm send holds the lock */
	JOURNAL_CHANGED = -3,    /* fingerprint differs (list or config
	                            changed): refuse unless force */
};

/*
 * Open (create when absent) OUT_DIR/journal, take the lock, check the
 * fingerprint (a hex string; force = 1 accepts a different one and
 * records the new one), load the state, rebuild OUT_DIR/results.csv from
 * it. *rc gets a journal_open_rc. NULL on failure with err.
 */
struct journal *journal_open(const char *out_dir, const char *fingerprint,
                             const char *campaign, int force, int *rc,
                             char *err, size_t errlen);

/* 1 when the journal already had records (this run is a resume). */
int journal_resumed(const struct journal *j);

struct journal_deferral {
	unsigned attempts;
	time_t next_retry;
	time_t first_attempt;
	time_t queued_at;
};

/* State of a row from previous runs: 1 final, 0 unknown (never tried or
 * in flight at a crash), 2 deferred (*d filled). */
int journal_row_state(const struct journal *j, size_t row,
                      struct journal_deferral *d);

/* Counts loaded at open (finals per status are not kept: only totals). */
size_t journal_finals(const struct journal *j);
size_t journal_deferred(const struct journal *j);

/*
 * Record a final outcome: csv_line is the results.csv line for the row
 * (without newline; results.c formats it). Appends to the journal (one
 * write), then to the results.csv buffer. 0 or -1 (err).
 */
int journal_final(struct journal *j, size_t row, const char *csv_line,
                  char *err, size_t errlen);

/* Record a deferral. 0 or -1. */
int journal_defer(struct journal *j, size_t row,
                  const struct journal_deferral *d, char *err, size_t errlen);

/* fsync now if anything was written since the last one. */
int journal_sync(struct journal *j);

/* Sync, unlock, close. NULL is a no-op. */
void journal_close(struct journal *j);

#endif
