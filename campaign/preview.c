/*
 * preview.c - `edm preview`: the complete message of one row (or of every
 * row, one .eml each), exactly as `edm send` would hand it to SMTP before
 * dot-stuffing: DKIM signatures, headers, CRLF body.
 *
 * It reads the recipient CSV the same way validate does, so row N here is
 * row N in rejects.csv. Rows that cannot be sent (malformed, bad encoding,
 * unusable address) are reported, not rendered.
 */
#include "preview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "csv_reader.h"
#include "files.h"
#include "log.h"
#include "message.h"
#include "recipients.h"

/* Render one row into out; prints the error and returns a sysexits code. */
static int render_row(struct message_factory *f, struct config *cfg,
                      const struct csv_row *r, const struct addr *a,
                      time_t now, struct message_scratch *s, struct buf *out)
{
	char err[1024];
	int rc = message_render(f, r, a, now, s, out, err, sizeof(err));

	if (rc == MESSAGE_TEMPLATE) {
		edm_error("%s: row %zu: %s (strict_variables = yes at %s)",
		          cfg->campaign.recipients, r->row, err,
		          config_where(cfg, "message", "strict_variables"));
		return EX_DATAERR;
	}
	if (rc < 0) {
		edm_error("%s: row %zu: %s", cfg->campaign.recipients, r->row, err);
		return EX_DATAERR;
	}
	return 0;
}

int preview_run(struct config *cfg, const struct preview_opts *o)
{
	struct message_scratch scratch = { 0 };
	struct message_factory *f = NULL;
	struct csv_reader *reader;
	struct buf out = { 0 };
	const struct csv_row *r;
	size_t email_col, ncols, written = 0, skipped = 0;
	char err[1024], detail[512];
	time_t now = o->now ? o->now : time(NULL);
	int rc = 0, found = 0;

	if (!cfg->message.present) {
		edm_error("%s: no [message] section: preview needs from, subject and "
		          "text or html (docs/config.md)", cfg->path);
		return EX_CONFIG;
	}
	if ((reader = recipients_open(cfg, &email_col, &rc)) == NULL)
		return rc;
	ncols = csv_reader_header(reader)->nfields;
	f = message_factory_new(cfg, csv_reader_header(reader), email_col, err, sizeof(err));
	if (f == NULL) {
		edm_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (message_factory_tracking_init(f, err, sizeof(err)) < 0) {
		edm_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (o->all && files_mkdir_p(o->out_dir) < 0) {
		edm_error("%s: cannot create: %s", o->out_dir, strerror(errno));
		rc = EX_CANTCREAT;
		goto out;
	}
	while ((rc = csv_reader_next(reader, &r, err, sizeof(err))) == 1) {
		struct addr a;
		const char *why;

		if (!o->all && r->row != o->row)
			continue;
		found = 1;
		why = recipients_row_problem(r, ncols, email_col, &a, detail, sizeof(detail));
		if (why != NULL) {
			if (!o->all) {
				edm_error("%s: row %zu cannot be sent (%s: %s); `edm validate` "
				          "rejects it", cfg->campaign.recipients, r->row, why, detail);
				rc = EX_DATAERR;
				goto out;
			}
			edm_warn("row %zu skipped: %s: %s", r->row, why, detail);
			skipped++;
			continue;
		}
		buf_reset(&out);
		if ((rc = render_row(f, cfg, r, &a, now, &scratch, &out)) != 0) {
			if (!o->all)
				goto out;
			skipped++;
			rc = 0;
			continue;
		}
		if (o->all) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/row-%06zu.eml", o->out_dir, r->row);
			if (files_write_private(path, out.data, out.len) < 0) {
				edm_error("%s: %s", path, strerror(errno));
				rc = EX_CANTCREAT;
				goto out;
			}
			written++;
			continue;
		}
		if (o->out != NULL) {
			if (files_write_private(o->out, out.data, out.len) < 0) {
				edm_error("%s: %s", o->out, strerror(errno));
				rc = EX_CANTCREAT;
				goto out;
			}
		} else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
			edm_error("writing the message to stdout: %s", strerror(errno));
			rc = EX_IOERR;
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		edm_error("%s", err);
		rc = EX_DATAERR;
		goto out;
	}
	rc = 0;
	if (!o->all && !found) {
		edm_error("%s: no row %zu (rows are numbered from 1, the header not "
		          "counted)", cfg->campaign.recipients, o->row);
		rc = EX_DATAERR;
	} else if (o->all) {
		printf("edm preview: %zu messages written to %s/ (row-NNNNNN.eml), %zu rows skipped\n",
		       written, o->out_dir, skipped);
	}
out:
	buf_free(&out);
	message_scratch_free(&scratch);
	message_factory_free(f);
	csv_reader_free(reader);
	return rc;
}
