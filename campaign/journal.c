/*
 * journal.c - the send journal and results.csv (contract in journal.h).
 *
 * Open: mkdir -p OUT_DIR; flock(LOCK_EX|LOCK_NB) on OUT_DIR/lock; open
 * OUT_DIR/journal O_APPEND; then one streaming pass (getline, so memory is
 * the longest line, not the file: a 1M-row journal is ~200 MB) that
 * parses every record, builds the state and writes each new final row's
 * results line to OUT_DIR/results.csv.tmp through a 64 KiB buffer. After
 * the pass: the latest E1 header's fingerprint is compared, a torn last
 * line is cut off (ftruncate), a header is appended when the journal is
 * new or force replaced the fingerprint, and results.csv.tmp is fsynced
 * and renamed over results.csv. Its descriptor stays open (O_APPEND) for
 * journal_final(), so after the rename it is results.csv itself.
 *
 * State: a bitmap of final rows (grown by doubling), and an open-addressing
 * hash map (linear probing, backward-shift deletion, so no tombstones)
 * from row to its latest deferral. A later F removes a row's deferral; a
 * later D replaces it; a D for a row already final is ignored, and so is
 * a second F for it (results.csv keeps the first), which the writer side
 * refuses anyway.
 *
 * Writes: each record is formatted in one buffer and written with one
 * write(2) (looping only on a short write or EINTR). When a write fails,
 * the file is truncated back to its size before the record, so a failed
 * append never leaves half a line in the middle of the journal; if even
 * that fails the journal refuses further records. fsync of both files
 * every JOURNAL_SYNC_EVERY records or JOURNAL_SYNC_MS (CLOCK_MONOTONIC),
 * checked at each record, and at journal_sync()/journal_close().
 *
 * What it does not do: format results lines (results.c), decide what a
 * resume does with the state (the scheduler), or remove OUT_DIR/lock at
 * close (unlinking a lock file races with the next opener; flock is
 * released with the descriptor, so a stale file is harmless).
 */
#include "journal.h"

#include "buf.h"
#include "files.h"
#include "log.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rows above this are refused: a billion-row list is beyond any campaign
 * edm is built for, and the bound keeps a corrupted row number from
 * asking for a huge bitmap (this one costs at most 125 MB). */
#define JOURNAL_MAX_ROW 1000000000UL
/* results.csv is rebuilt through a buffer flushed at 64 KiB: large writes
 * without holding the file in memory. */
#define JOURNAL_FLUSH_AT 65536
/* First hash table size (power of two); the table doubles past 70 % load
 * so linear probes stay short. */
#define JOURNAL_DMAP_INITIAL 64

struct journal_slot {
	size_t row;
	struct journal_deferral d;
	int used;
};

struct journal {
	char *jpath;          /* OUT_DIR/journal */
	char *rpath;          /* OUT_DIR/results.csv */
	char *lpath;          /* OUT_DIR/lock */
	int lock_fd, jfd, rfd;
	off_t jsize, rsize;   /* file sizes after the last complete record */
	int broken;           /* a failed write could not be undone */
	/* final rows */
	uint64_t *bits;
	size_t nwords;
	/* deferred rows */
	struct journal_slot *slots;
	size_t nslots, ndeferred;
	/* counts at open */
	size_t open_finals, open_deferred;
	int resumed;
	/* sync */
	unsigned unsynced;
	uint64_t last_sync_ms;
	struct buf line;      /* one record being formatted */
	struct buf rbuf;      /* results.csv lines not yet written */
};

/* CLOCK_MONOTONIC in ms. */
static uint64_t journal_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* write(2) all of p[n], looping on short writes and EINTR. 0 or -1. */
static int journal_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- final rows: a bitmap ---- */

static int journal_is_final(const struct journal *j, size_t row)
{
	size_t w = row / 64;

	return w < j->nwords && (j->bits[w] >> (row % 64) & 1);
}

/* Mark a row final, growing the bitmap by doubling. 0 or -1 (ENOMEM). */
static int journal_set_final(struct journal *j, size_t row)
{
	size_t w = row / 64;

	if (w >= j->nwords) {
		size_t n = j->nwords ? j->nwords * 2 : 1024;
		uint64_t *b;

		while (n <= w)
			n *= 2;
		if ((b = realloc(j->bits, n * sizeof *b)) == NULL)
			return -1;
		memset(b + j->nwords, 0, (n - j->nwords) * sizeof *b);
		j->bits = b;
		j->nwords = n;
	}
	j->bits[w] |= (uint64_t)1 << (row % 64);
	return 0;
}

/* ---- deferred rows: open addressing, linear probing ---- */

/* splitmix64's finaliser: consecutive rows spread over the table. */
static size_t journal_hash(size_t row)
{
	uint64_t x = row;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (size_t)(x ^ (x >> 31));
}

/* The slot holding row, or NULL. */
static struct journal_slot *journal_dmap_find(const struct journal *j,
                                              size_t row)
{
	size_t mask = j->nslots - 1, i;

	if (j->nslots == 0)
		return NULL;
	for (i = journal_hash(row) & mask; j->slots[i].used; i = (i + 1) & mask)
		if (j->slots[i].row == row)
			return &j->slots[i];
	return NULL;
}

/* Put into a table known to have room (no growth). */
static void journal_dmap_insert(struct journal_slot *slots, size_t nslots,
                                size_t row, const struct journal_deferral *d)
{
	size_t mask = nslots - 1, i;

	for (i = journal_hash(row) & mask; slots[i].used; i = (i + 1) & mask)
		;
	slots[i].used = 1;
	slots[i].row = row;
	slots[i].d = *d;
}

/* Add or replace row's deferral. 0 or -1 (ENOMEM). */
static int journal_dmap_put(struct journal *j, size_t row,
                            const struct journal_deferral *d)
{
	struct journal_slot *s = journal_dmap_find(j, row);

	if (s != NULL) {
		s->d = *d;
		return 0;
	}
	if ((j->ndeferred + 1) * 10 > j->nslots * 7) {
		size_t n = j->nslots ? j->nslots * 2 : JOURNAL_DMAP_INITIAL;
		struct journal_slot *t = calloc(n, sizeof *t);

		if (t == NULL)
			return -1;
		for (size_t i = 0; i < j->nslots; i++)
			if (j->slots[i].used)
				journal_dmap_insert(t, n, j->slots[i].row,
				                    &j->slots[i].d);
		free(j->slots);
		j->slots = t;
		j->nslots = n;
	}
	journal_dmap_insert(j->slots, j->nslots, row, d);
	j->ndeferred++;
	return 0;
}

/* Remove row's deferral if any, shifting later probes back into the
 * hole so every remaining entry stays reachable from its home slot. */
static void journal_dmap_del(struct journal *j, size_t row)
{
	struct journal_slot *s = journal_dmap_find(j, row);
	size_t mask, hole, i;

	if (s == NULL)
		return;
	mask = j->nslots - 1;
	hole = (size_t)(s - j->slots);
	j->slots[hole].used = 0;
	j->ndeferred--;
	for (i = (hole + 1) & mask; j->slots[i].used; i = (i + 1) & mask) {
		size_t home = journal_hash(j->slots[i].row) & mask;

		/* Movable when the hole lies on its probe path [home, i). */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			j->slots[hole] = j->slots[i];
			j->slots[i].used = 0;
			hole = i;
		}
	}
}

/* ---- parsing ---- */

/* Decimal digits into *v (no sign, no overflow); *pp after them. */
static int journal_parse_u64(const char **pp, uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*pp = p;
	*v = x;
	return 0;
}

/* A row number (<= JOURNAL_MAX_ROW). */
static int journal_parse_row(const char **pp, size_t *row)
{
	uint64_t v;

	if (journal_parse_u64(pp, &v) < 0 || v > JOURNAL_MAX_ROW)
		return -1;
	*row = (size_t)v;
	return 0;
}

/* " <time>" with an optional '-' (time_t is signed). */
static int journal_parse_time(const char **pp, time_t *t)
{
	const char *p = *pp;
	int neg = 0;
	uint64_t v;

	if (*p++ != ' ')
		return -1;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (journal_parse_u64(&p, &v) < 0 || v > (uint64_t)INT64_MAX)
		return -1;
	*t = neg ? -(time_t)v : (time_t)v;
	*pp = p;
	return 0;
}

/* "D <row> <attempts> <next-retry> <first-attempt> <queued-at>" after
 * the "D ". */
static int journal_parse_defer(const char *p, size_t *row,
                               struct journal_deferral *d)
{
	uint64_t a;

	if (journal_parse_row(&p, row) < 0 || *p++ != ' ' ||
	    journal_parse_u64(&p, &a) < 0 || a > 0xffffffffu ||
	    journal_parse_time(&p, &d->next_retry) < 0 ||
	    journal_parse_time(&p, &d->first_attempt) < 0 ||
	    journal_parse_time(&p, &d->queued_at) < 0 || *p != '\0')
		return -1;
	d->attempts = (unsigned)a;
	return 0;
}

/* "E1 <fingerprint> <campaign> <time>" after the "E1 ": the fingerprint
 * (copied to fp[fplen]) is the first word, the time the last, the
 * campaign (which may hold spaces) what lies between. */
static int journal_parse_header(const char *p, char *fp, size_t fplen)
{
	const char *sp = strchr(p, ' '), *last = strrchr(p, ' '), *t;
	uint64_t v;

	if (sp == NULL || sp == p || last == sp || (size_t)(sp - p) >= fplen)
		return -1;
	t = last + 1;
	if (journal_parse_u64(&t, &v) < 0 || *t != '\0')
		return -1;
	memcpy(fp, p, (size_t)(sp - p));
	fp[sp - p] = '\0';
	return 0;
}

/* ---- open ---- */

/* The longest fingerprint kept: a SHA-256 in hex is 64; room to spare. */
#define JOURNAL_FP_MAX 256

/* Reading state of the open pass. */
struct journal_load {
	struct journal *j;
	struct buf out;         /* results.csv.tmp bytes not yet written */
	char fp[JOURNAL_FP_MAX];/* latest header's fingerprint */
	int have_header;
	size_t records;
	off_t good;             /* bytes up to the end of the last full line */
	int torn;
	size_t lineno;
};

/* Apply one complete journal line (without its '\n'). 0, or -1 with err
 * (JOURNAL_ERR). */
static int journal_load_line(struct journal_load *L, const char *s,
                             char *err, size_t errlen)
{
	struct journal *j = L->j;
	struct journal_deferral d;
	const char *p;
	size_t row;

	if (strncmp(s, "E1 ", 3) == 0) {
		if (journal_parse_header(s + 3, L->fp, sizeof L->fp) < 0)
			goto bad;
		L->have_header = 1;
		return 0;
	}
	if (!L->have_header)
		return edm_errf(err, errlen, "%s:%zu: not an edm journal (the "
		                "first line is not an \"E1\" header)", j->jpath,
		                L->lineno);
	if (strncmp(s, "F ", 2) == 0) {
		p = s + 2;
		if (journal_parse_row(&p, &row) < 0 || *p++ != ' ')
			goto bad;
		L->records++;
		if (journal_is_final(j, row))
			return 0; /* the first F of a row wins */
		if (journal_set_final(j, row) < 0)
			goto nomem;
		journal_dmap_del(j, row);
		if (buf_puts(&L->out, p) < 0 || buf_putc(&L->out, '\n') < 0)
			goto nomem;
		return 0;
	}
	if (strncmp(s, "D ", 2) == 0) {
		if (journal_parse_defer(s + 2, &row, &d) < 0)
			goto bad;
		L->records++;
		if (!journal_is_final(j, row) && journal_dmap_put(j, row, &d) < 0)
			goto nomem;
		return 0;
	}
bad:
	return edm_errf(err, errlen, "%s:%zu: unreadable journal record (the "
	                "journal was edited or damaged; move it away to start "
	                "over)", j->jpath, L->lineno);
nomem:
	return edm_errf(err, errlen, "%s:%zu: out of memory", j->jpath,
	                L->lineno);
}

/* Write the buffered results bytes when enough (or 'all') are pending. */
static int journal_load_flush(struct journal_load *L, int all)
{
	if (L->out.len == 0 || (!all && L->out.len < JOURNAL_FLUSH_AT))
		return 0;
	if (journal_write_all(L->j->rfd, L->out.data, L->out.len) < 0)
		return -1;
	L->j->rsize += (off_t)L->out.len;
	buf_reset(&L->out);
	return 0;
}

/* Stream the journal: state, results.csv.tmp, torn-line detection. */
static int journal_load(struct journal_load *L, const char *tmppath,
                        char *err, size_t errlen)
{
	struct journal *j = L->j;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc = -1;
	FILE *fp;

	if ((fd = dup(j->jfd)) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    (fp = fdopen(fd, "r")) == NULL) {
		edm_errf(err, errlen, "%s: %s", j->jpath, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (errno = 0, (n = getline(&line, &cap, fp)) > 0) {
		if (line[n - 1] != '\n') {
			L->torn = 1; /* only the last line can lack one */
			break;
		}
		L->lineno++;
		line[n - 1] = '\0';
		if (strlen(line) != (size_t)n - 1) {
			edm_errf(err, errlen, "%s:%zu: unreadable journal record "
			         "(a NUL byte)", j->jpath, L->lineno);
			goto out;
		}
		if (journal_load_line(L, line, err, errlen) < 0)
			goto out;
		L->good += n;
		if (journal_load_flush(L, 0) < 0) {
			edm_errf(err, errlen, "%s: %s", tmppath, strerror(errno));
			goto out;
		}
	}
	if (ferror(fp)) {
		edm_errf(err, errlen, "%s: read error: %s", j->jpath,
		         strerror(errno ? errno : EIO));
		goto out;
	}
	if (journal_load_flush(L, 1) < 0) {
		edm_errf(err, errlen, "%s: %s", tmppath, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(fp);
	return rc;
}

/* A fingerprint is one printable word; a campaign name has no control
 * characters (both go on the header line). */
static int journal_check_args(const char *fp, const char *campaign,
                              char *err, size_t errlen)
{
	const char *p;

	if (*fp == '\0' || strlen(fp) >= JOURNAL_FP_MAX)
		return edm_errf(err, errlen, "journal: bad fingerprint length");
	for (p = fp; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return edm_errf(err, errlen, "journal: the fingerprint "
			                "may not contain blanks or control "
			                "characters");
	if (*campaign == '\0')
		return edm_errf(err, errlen, "journal: empty campaign name");
	for (p = campaign; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return edm_errf(err, errlen, "journal: the campaign name "
			                "may not contain control characters");
	return 0;
}

/* Append "E1 <fp> <campaign> <now>\n". 0 or -1 with err. */
static int journal_write_header(struct journal *j, const char *fp,
                                const char *campaign, char *err,
                                size_t errlen)
{
	buf_reset(&j->line);
	if (buf_printf(&j->line, "E1 %s %s %lld\n", fp, campaign,
	               (long long)time(NULL)) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->jpath);
	if (journal_write_all(j->jfd, j->line.data, j->line.len) < 0 ||
	    fsync(j->jfd) < 0)
		return edm_errf(err, errlen, "%s: %s", j->jpath, strerror(errno));
	j->jsize += (off_t)j->line.len;
	return 0;
}

/* fsync a directory so a rename in it is durable (best effort). */
static void journal_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* "dir/name" in a new string, or NULL. */
static char *journal_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Free everything; descriptors closed, lock released. */
static void journal_destroy(struct journal *j)
{
	if (j->rfd >= 0)
		close(j->rfd);
	if (j->jfd >= 0)
		close(j->jfd);
	if (j->lock_fd >= 0) {
		flock(j->lock_fd, LOCK_UN);
		close(j->lock_fd);
	}
	buf_free(&j->line);
	buf_free(&j->rbuf);
	free(j->bits);
	free(j->slots);
	free(j->jpath);
	free(j->rpath);
	free(j->lpath);
	free(j);
}

/* Open or create, lock, load, rebuild results.csv (see journal.h). */
struct journal *journal_open(const char *out_dir, const char *fingerprint,
                             const char *campaign, int force, int *rc,
                             char *err, size_t errlen)
{
	struct journal_load L;
	struct journal *j;
	char *tmppath = NULL;

	*rc = JOURNAL_ERR;
	memset(&L, 0, sizeof L);
	if (journal_check_args(fingerprint, campaign, err, errlen) < 0)
		return NULL;
	if (files_mkdir_p(out_dir) < 0) {
		edm_errf(err, errlen, "%s: cannot create the directory: %s",
		         out_dir, strerror(errno));
		return NULL;
	}
	if ((j = calloc(1, sizeof *j)) == NULL) {
		edm_errf(err, errlen, "journal: out of memory");
		return NULL;
	}
	j->lock_fd = j->jfd = j->rfd = -1;
	if ((j->jpath = journal_path(out_dir, "journal")) == NULL ||
	    (j->rpath = journal_path(out_dir, "results.csv")) == NULL ||
	    (j->lpath = journal_path(out_dir, "lock")) == NULL ||
	    (tmppath = journal_path(out_dir, "results.csv.tmp")) == NULL) {
		edm_errf(err, errlen, "journal: out of memory");
		goto fail;
	}

	/* The lock first: nothing is read or written while another run owns
	 * the directory. */
	j->lock_fd = open(j->lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		edm_errf(err, errlen, "%s: %s", j->lpath, strerror(errno));
		goto fail;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*rc = JOURNAL_LOCKED;
			edm_errf(err, errlen, "%s is locked: another edm send of "
			         "this campaign is running", j->lpath);
		} else {
			edm_errf(err, errlen, "%s: flock: %s", j->lpath,
			         strerror(errno));
		}
		goto fail;
	}
	j->jfd = open(j->jpath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (j->jfd < 0) {
		edm_errf(err, errlen, "%s: %s", j->jpath, strerror(errno));
		goto fail;
	}
	/* A stale temp file of an interrupted open is ours to replace;
	 * O_EXCL then never follows a planted file or symlink. */
	unlink(tmppath);
	j->rfd = open(tmppath, O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
	              O_CLOEXEC, 0600);
	if (j->rfd < 0) {
		edm_errf(err, errlen, "%s: %s", tmppath, strerror(errno));
		goto fail;
	}

	L.j = j;
	if (buf_puts(&L.out, RESULTS_HEADER "\n") < 0) {
		edm_errf(err, errlen, "journal: out of memory");
		goto fail_tmp;
	}
	if (journal_load(&L, tmppath, err, errlen) < 0)
		goto fail_tmp;

	if (L.have_header && strcmp(L.fp, fingerprint) != 0 && !force) {
		*rc = JOURNAL_CHANGED;
		edm_errf(err, errlen, "%s: the campaign's list or configuration "
		         "changed since this journal was started (fingerprint "
		         "%s, now %s); resume anyway with --force, or send to a "
		         "new out_dir", j->jpath, L.fp, fingerprint);
		goto fail_tmp;
	}
	j->jsize = L.good;
	if (L.torn) {
		if (ftruncate(j->jfd, L.good) < 0) {
			edm_errf(err, errlen, "%s: cannot cut the torn last "
			         "line: %s", j->jpath, strerror(errno));
			goto fail_tmp;
		}
		log_kv(EDM_LOG_WARN, "journal_torn", "path=%s line=%zu "
		       "action=truncated", j->jpath, L.lineno + 1);
	}
	if ((!L.have_header || strcmp(L.fp, fingerprint) != 0) &&
	    journal_write_header(j, fingerprint, campaign, err, errlen) < 0)
		goto fail_tmp;

	if (fsync(j->rfd) < 0 || rename(tmppath, j->rpath) < 0) {
		edm_errf(err, errlen, "%s: %s", j->rpath, strerror(errno));
		goto fail_tmp;
	}
	journal_sync_dir(out_dir);

	j->open_finals = 0;
	for (size_t w = 0; w < j->nwords; w++)
		j->open_finals += (size_t)__builtin_popcountll(j->bits[w]);
	j->open_deferred = j->ndeferred;
	j->resumed = L.records > 0;
	j->last_sync_ms = journal_now_ms();
	buf_free(&L.out);
	free(tmppath);
	*rc = JOURNAL_OK;
	return j;

fail_tmp:
	unlink(tmppath);
fail:
	buf_free(&L.out);
	free(tmppath);
	journal_destroy(j);
	return NULL;
}

int journal_resumed(const struct journal *j)
{
	return j->resumed;
}

int journal_row_state(const struct journal *j, size_t row,
                      struct journal_deferral *d)
{
	const struct journal_slot *s;

	if (journal_is_final(j, row))
		return 1;
	if ((s = journal_dmap_find(j, row)) == NULL)
		return 0;
	if (d != NULL)
		*d = s->d;
	return 2;
}

size_t journal_finals(const struct journal *j)
{
	return j->open_finals;
}

size_t journal_deferred(const struct journal *j)
{
	return j->open_deferred;
}

/* ---- writing ---- */

/* Append p[n] to fd whose complete size is *size; on failure cut the
 * file back to *size so no half record stays. 0 or -1 (errno kept). */
static int journal_append(struct journal *j, int fd, off_t *size,
                          const char *p, size_t n)
{
	int saved;

	if (journal_write_all(fd, p, n) == 0) {
		*size += (off_t)n;
		return 0;
	}
	saved = errno;
	if (ftruncate(fd, *size) < 0)
		j->broken = 1;
	errno = saved;
	return -1;
}

/* Count a record; fsync when the batch or the interval is full (which
 * also writes the buffered results.csv lines). */
static int journal_wrote(struct journal *j)
{
	j->unsynced++;
	if (j->unsynced >= JOURNAL_SYNC_EVERY ||
	    journal_now_ms() - j->last_sync_ms >= JOURNAL_SYNC_MS)
		return journal_sync(j);
	return 0;
}

/* Write the buffered results.csv lines (one write(2)). 0 or -1 (errno). */
static int journal_results_flush(struct journal *j)
{
	if (j->rbuf.len == 0)
		return 0;
	if (journal_append(j, j->rfd, &j->rsize, j->rbuf.data, j->rbuf.len) < 0)
		return -1;
	buf_reset(&j->rbuf);
	return 0;
}

/* Refuse records the journal could not hold. */
static int journal_check_row(struct journal *j, size_t row, char *err,
                             size_t errlen)
{
	if (j->broken)
		return edm_errf(err, errlen, "%s: an earlier write failed and "
		                "could not be undone; stop and resume", j->jpath);
	if (row > JOURNAL_MAX_ROW)
		return edm_errf(err, errlen, "%s: row %zu is beyond the journal's "
		                "limit of %lu rows", j->jpath, row,
		                JOURNAL_MAX_ROW);
	if (journal_is_final(j, row))
		return edm_errf(err, errlen, "%s: row %zu already has a final "
		                "outcome", j->jpath, row);
	return 0;
}

/* "F <row> <csv>\n" to the journal, then "<csv>\n" to results.csv. */
int journal_final(struct journal *j, size_t row, const char *csv_line,
                  char *err, size_t errlen)
{
	size_t prefix;

	if (journal_check_row(j, row, err, errlen) < 0)
		return -1;
	if (strchr(csv_line, '\n') != NULL)
		return edm_errf(err, errlen, "%s: row %zu: the results line "
		                "holds a line break", j->jpath, row);
	buf_reset(&j->line);
	if (buf_printf(&j->line, "F %zu ", row) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->jpath);
	prefix = j->line.len;
	if (buf_puts(&j->line, csv_line) < 0 || buf_putc(&j->line, '\n') < 0 ||
	    journal_set_final(j, row) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->jpath);
	if (journal_append(j, j->jfd, &j->jsize, j->line.data,
	                   j->line.len) < 0) {
		/* Not recorded: the row is not final after all. */
		j->bits[row / 64] &= ~((uint64_t)1 << (row % 64));
		return edm_errf(err, errlen, "%s: %s", j->jpath, strerror(errno));
	}
	journal_dmap_del(j, row);
	/* The journal has it; results.csv gets the line with the next flush
	 * (JOURNAL_RESULTS_BUF bytes, or the next sync: at most
	 * JOURNAL_SYNC_MS later). A results.csv failure is repaired by the
	 * rebuild at the next open, but the caller should still stop. */
	if (buf_append(&j->rbuf, j->line.data + prefix, j->line.len - prefix) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->rpath);
	if (j->rbuf.len >= JOURNAL_RESULTS_BUF && journal_results_flush(j) < 0)
		return edm_errf(err, errlen, "%s: %s", j->rpath, strerror(errno));
	if (journal_wrote(j) < 0)
		return edm_errf(err, errlen, "%s, %s: %s", j->jpath, j->rpath,
		                strerror(errno));
	return 0;
}

/* "D <row> <attempts> <next> <first> <queued>\n" to the journal. */
int journal_defer(struct journal *j, size_t row,
                  const struct journal_deferral *d, char *err, size_t errlen)
{
	if (journal_check_row(j, row, err, errlen) < 0)
		return -1;
	buf_reset(&j->line);
	if (buf_printf(&j->line, "D %zu %u %lld %lld %lld\n", row, d->attempts,
	               (long long)d->next_retry, (long long)d->first_attempt,
	               (long long)d->queued_at) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->jpath);
	if (journal_append(j, j->jfd, &j->jsize, j->line.data,
	                   j->line.len) < 0)
		return edm_errf(err, errlen, "%s: %s", j->jpath, strerror(errno));
	if (journal_wrote(j) < 0)
		return edm_errf(err, errlen, "%s: fsync: %s", j->jpath,
		                strerror(errno));
	/* Out of memory here leaves the file ahead of the map: the record
	 * is durable and the next open loads it. */
	if (journal_dmap_put(j, row, d) < 0)
		return edm_errf(err, errlen, "%s: out of memory", j->jpath);
	return 0;
}

/* Write the buffered results lines, then fsync both files if anything
 * was written since the last time. */
int journal_sync(struct journal *j)
{
	if (j->unsynced == 0)
		return 0;
	if (journal_results_flush(j) < 0 || fsync(j->jfd) < 0 || fsync(j->rfd) < 0)
		return -1;
	j->unsynced = 0;
	j->last_sync_ms = journal_now_ms();
	return 0;
}

/* Sync, unlock, close; NULL is a no-op. */
void journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (journal_sync(j) < 0)
		log_kv(EDM_LOG_ERROR, "journal_sync", "path=%s error=\"%s\"",
		       j->jpath, strerror(errno));
	journal_destroy(j);
}
