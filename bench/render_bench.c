/*
 * render_bench.c - how fast one core turns recipient rows into complete
 * messages: CSV parsing, address parsing, templates, MIME and (when the
 * config has [dkim]) signing, with the output thrown away.
 *
 * usage: render_bench CONFIG [--rows N] [--sample FILE]
 *
 * It loads CONFIG, opens its recipient CSV and compiles the message factory
 * (setup, not timed), then for every data row (or the first N) does what
 * `edm preview --all` and `edm send` do per recipient: csv_reader_next(),
 * addr_parse() of the address column, message_render() into one reused
 * struct buf. The message is discarded; a checksum of the lengths is
 * printed so the compiler cannot drop the work. Only that loop is timed:
 * CPU time of the process (CLOCK_PROCESS_CPUTIME_ID; the program has one
 * thread, so this is the cost on one core, whatever else the machine is
 * doing) and wall time (CLOCK_MONOTONIC). One machine-readable line goes to
 * stdout:
 *
 *   rows=N wall_s=S cpu_s=S msgs_per_s_cpu=R msgs_per_s_wall=R bytes=B
 *   skipped=K failed=F checksum=X
 *
 * rows counts rendered messages; skipped counts rows that could not be sent
 * (wrong field count, bad encoding, bad address: what `edm validate`
 * rejects); failed counts rows whose render failed (the first error is
 * printed on stderr). --sample FILE writes the first rendered message to
 * FILE, to check by eye what was measured (QP soft breaks, encoded words,
 * signatures).
 *
 * Exit status: 0 when the loop ran (even with failed rows: the line says
 * how many), 1 when setup or the CSV failed, 2 for bad usage.
 * What it does not do: threads, network, DNS, writing the messages
 * anywhere, or judge the numbers (bench/render.sh does).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "buf.h"
#include "config.h"
#include "csv_reader.h"
#include "message.h"
#include "recipients.h"

static const char usage[] =
	"usage: render_bench CONFIG [--rows N] [--sample FILE]\n"
	"  renders every recipient row of CONFIG (or the first N) and discards\n"
	"  the messages; prints rows=.. wall_s=.. cpu_s=.. msgs_per_s_cpu=..\n";

/* Seconds on 'clock' as a double (ns resolution is plenty for a loop of
 * seconds). */
static double clock_now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse a positive whole number; 0 when it is not one. */
static size_t parse_count(const char *s)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || n == 0)
		return 0;
	return (size_t)n;
}

/* Write the first rendered message for inspection. 0 or -1. */
static int sample_write(const char *path, const struct buf *b)
{
	FILE *fp = fopen(path, "wb");

	if (fp == NULL)
		return -1;
	if (fwrite(b->data, 1, b->len, fp) != b->len) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

int main(int argc, char **argv)
{
	struct message_scratch scratch = { 0 };
	struct message_factory *f = NULL;
	struct csv_reader *reader = NULL;
	struct config *cfg = NULL;
	struct buf out = { 0 };
	const struct csv_row *r;
	const char *config_path = NULL, *sample = NULL;
	size_t max_rows = 0, email_col, ncols;
	size_t rows = 0, skipped = 0, failed = 0;
	uint64_t bytes = 0, checksum = 0;
	double wall0, cpu0, wall, cpu;
	char err[1024], detail[512];
	time_t now = time(NULL);
	int rc = 1, next = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
			if ((max_rows = parse_count(argv[++i])) == 0) {
				fprintf(stderr, "render_bench: --rows '%s': expected a "
				        "positive number\n%s", argv[i], usage);
				return 2;
			}
		} else if (strcmp(argv[i], "--sample") == 0 && i + 1 < argc) {
			sample = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && config_path == NULL) {
			config_path = argv[i];
		} else {
			fprintf(stderr, "render_bench: unexpected argument '%s'\n%s",
			        argv[i], usage);
			return 2;
		}
	}
	if (config_path == NULL) {
		fputs(usage, stderr);
		return 2;
	}

	/* Setup: not timed (a campaign does it once). */
	if ((cfg = config_load(config_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "render_bench: %s\n", err);
		goto out;
	}
	if (!cfg->message.present) {
		fprintf(stderr, "render_bench: %s has no [message] section\n", config_path);
		goto out;
	}
	if ((reader = recipients_open(cfg, &email_col, &rc)) == NULL) {
		rc = 1; /* recipients_open printed why */
		goto out;
	}
	rc = 1;
	ncols = csv_reader_header(reader)->nfields;
	f = message_factory_new(cfg, csv_reader_header(reader), email_col, err,
	                        sizeof(err));
	if (f == NULL) {
		fprintf(stderr, "render_bench: %s\n", err);
		goto out;
	}

	/* The measured loop: read, parse, render, discard. */
	wall0 = clock_now(CLOCK_MONOTONIC);
	cpu0 = clock_now(CLOCK_PROCESS_CPUTIME_ID);
	while ((max_rows == 0 || rows + skipped + failed < max_rows) &&
	       (next = csv_reader_next(reader, &r, err, sizeof(err))) == 1) {
		struct addr a;
		int mrc;

		if (recipients_row_problem(r, ncols, email_col, &a, detail, sizeof(detail)) != NULL) {
			skipped++;
			continue;
		}
		buf_reset(&out);
		mrc = message_render(f, r, &a, now, &scratch, &out, err, sizeof(err));
		if (mrc != 0) {
			if (failed++ == 0)
				fprintf(stderr, "render_bench: row %zu: %s\n", r->row, err);
			continue;
		}
		rows++;
		bytes += out.len;
		/* Lengths and one content byte each: cheap, and depends on the
		 * whole render. */
		checksum = checksum * 31 + out.len + (unsigned char)out.data[out.len / 2];
		if (sample != NULL && rows == 1 && sample_write(sample, &out) < 0)
			fprintf(stderr, "render_bench: --sample %s: %s\n", sample,
			        strerror(errno));
	}
	cpu = clock_now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	wall = clock_now(CLOCK_MONOTONIC) - wall0;
	if (next < 0) {
		fprintf(stderr, "render_bench: %s\n", err);
		goto out;
	}

	printf("rows=%zu wall_s=%.3f cpu_s=%.3f msgs_per_s_cpu=%.0f "
	       "msgs_per_s_wall=%.0f bytes=%llu skipped=%zu failed=%zu "
	       "checksum=%llx\n",
	       rows, wall, cpu, cpu > 0 ? (double)rows / cpu : 0.0,
	       wall > 0 ? (double)rows / wall : 0.0, (unsigned long long)bytes,
	       skipped, failed, (unsigned long long)checksum);
	rc = 0;
out:
	buf_free(&out);
	message_scratch_free(&scratch);
	message_factory_free(f);
	csv_reader_free(reader);
	config_free(cfg);
	return rc;
}
