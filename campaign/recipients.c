/*
 * recipients.c - open the recipient CSV with the header checks every
 * command needs (contract in recipients.h).
 */
#include "recipients.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "csv_reader.h"
#include "log.h"

int recipients_is_utf8(const struct config *cfg)
{
	const char *enc = cfg->campaign.encoding;

	return strcasecmp(enc, "utf-8") == 0 || strcasecmp(enc, "utf8") == 0;
}

void recipients_encoding_error(struct config *cfg, struct csv_reader *r,
                               const char *why)
{
	const char *hint = csv_reader_hint(r);

	edm_error("%s: %s is not valid UTF-8 (%s); the whole list would be "
	          "rejected. Set the file's encoding in [campaign] at %s%s%s%s",
	          cfg->campaign.recipients, why, cfg->campaign.encoding,
	          config_where(cfg, "campaign", "encoding"),
	          hint ? ": encoding = " : " (e.g. encoding = gbk for Excel on Chinese Windows)",
	          hint ? hint : "", hint ? "?" : "");
}

/* The address column: exact name first, then case-insensitive and
 * trimmed (Excel users write "Email " or "EMAIL"). */
static int find_column(const struct csv_row *h, const char *want)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcmp(h->fields[i], want) == 0)
			return (int)i;
	for (size_t i = 0; i < h->nfields; i++) {
		const char *s = h->fields[i];
		size_t n = h->lens[i];
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == strlen(want) && strncasecmp(s, want, n) == 0)
			return (int)i;
	}
	return -1;
}

/* "no column" error listing the columns that are there. */
static void no_column_error(struct config *cfg, const struct csv_row *h)
{
	char cols[512];
	int n = 0;

	cols[0] = '\0';
	for (size_t i = 0; i < h->nfields && n >= 0 && (size_t)n < sizeof(cols); i++)
		n += snprintf(cols + n, sizeof(cols) - (size_t)n, "%s\"%s\"",
		              i ? ", " : "", h->fields[i]);
	edm_error("%s: no column \"%s\" in the header row (columns: %s); "
	          "name the address column with email_column in [campaign] (%s)%s",
	          cfg->campaign.recipients, cfg->campaign.email_column, cols,
	          config_where(cfg, "campaign", "email_column"),
	          h->nfields == 1 && cfg->campaign.delimiter == ',' &&
	          (strchr(h->fields[0], ';') || strchr(h->fields[0], '\t'))
	          ? "; the header looks ;- or tab-separated: set delimiter" : "");
}

struct csv_reader *recipients_open(struct config *cfg, size_t *email_col,
                                   int *rc)
{
	struct csv_reader_opts ro = {
		.path = cfg->campaign.recipients,
		.encoding = cfg->campaign.encoding,
		.delimiter = cfg->campaign.delimiter,
	};
	const struct csv_row *h;
	struct csv_reader *r;
	char err[1024];
	int col;

	if (access(ro.path, R_OK) < 0) {
		edm_error("%s: %s (named by recipients at %s)", ro.path,
		          strerror(errno), config_where(cfg, "campaign", "recipients"));
		*rc = EX_NOINPUT;
		return NULL;
	}
	if ((r = csv_reader_open(&ro, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		*rc = EX_DATAERR;
		return NULL;
	}
	h = csv_reader_header(r);
	if (h->bad_encoding && recipients_is_utf8(cfg)) {
		recipients_encoding_error(cfg, r, "its header row");
		goto fail;
	}
	if ((col = find_column(h, cfg->campaign.email_column)) < 0) {
		no_column_error(cfg, h);
		goto fail;
	}
	*email_col = (size_t)col;
	return r;

fail:
	csv_reader_free(r);
	*rc = EX_DATAERR;
	return NULL;
}

const char *recipients_row_problem(const struct csv_row *r, size_t ncols,
                                   size_t email_col, struct addr *a,
                                   char *detail, size_t dlen)
{
	if (r->nfields != ncols) {
		snprintf(detail, dlen, "expected %zu fields, got %zu", ncols, r->nfields);
		return "malformed";
	}
	if (r->bad_encoding) {
		snprintf(detail, dlen, "%s", r->detail);
		return "encoding";
	}
	if (addr_parse(r->fields[email_col], r->lens[email_col], a, detail, dlen) < 0)
		return "syntax";
	return NULL;
}
