/*
 * config.c - campaign config schema: every section and key, its type, its
 * default, and where it lands in struct config.
 *
 * The schema table below is the single list of keys; docs/config.md must
 * list the same keys (tests/test_config.c checks that every key in the
 * table appears there). Adding a key: add a table row, a struct field, a
 * default in config_defaults(), and a docs entry.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv_reader.h"
#include "ini.h"
#include "log.h"
#include "throttle.h"

enum cfg_type {
	T_STRING,  /* any UTF-8 text */
	T_PATH,    /* a file name, made absolute against the config's dir */
	T_BOOL,    /* yes/no, true/false, on/off, 1/0 */
	T_KEEPREJ, /* keep | reject */
	T_UINT,    /* decimal, within [min, max] */
	T_DELIM,   /* , | tab | ; | "|" */
	T_NAME,    /* campaign name: no '/', no control characters */
	T_PATHLIST,/* comma-separated file names, each made absolute */
	T_ENCODING,/* a character encoding the CSV reader knows */
	T_DURATION,/* "300s", "5m", "24h", "4d", "500ms" -> unsigned ms, [min, max] */
	T_RATE,    /* "20/s", "10/m", "500/h", "50000/d" -> double per second */
	T_PERCENT, /* "10%" -> double fraction */
	T_DOUBLE,  /* a positive number (burst) */
	T_UINTU,   /* T_UINT into a field that may stay CFG_UNSET */
};

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	size_t offset;          /* into struct config, or into struct
	                           config_dkim for section "dkim" */
	unsigned min, max;      /* T_UINT */
	int multiline;          /* value may continue on indented lines */
};

#define OFF(field) offsetof(struct config, field)
#define DOFF(field) offsetof(struct config_dkim, field)
#define SOFF(field) offsetof(struct config_shape, field)
#define SEC(n) (n * 1000u)

static const struct cfg_key schema[] = {
	{ "campaign", "name", T_NAME, OFF(campaign.name), 0, 0, 0 },
	{ "campaign", "recipients", T_PATH, OFF(campaign.recipients), 0, 0, 0 },
	{ "campaign", "email_column", T_STRING, OFF(campaign.email_column), 0, 0, 0 },
	{ "campaign", "encoding", T_ENCODING, OFF(campaign.encoding), 0, 0, 0 },
	{ "campaign", "delimiter", T_DELIM, OFF(campaign.delimiter), 0, 0, 0 },
	{ "campaign", "suppression", T_PATH, OFF(campaign.suppression), 0, 0, 0 },
	{ "campaign", "out_dir", T_PATH, OFF(campaign.out_dir), 0, 0, 0 },
	{ "campaign", "report_columns", T_STRING, OFF(campaign.report_columns_s), 0, 0, 0 },
	{ "validate", "dns", T_BOOL, OFF(validate.dns), 0, 0, 0 },
	{ "validate", "resolver", T_STRING, OFF(validate.resolver), 0, 0, 0 },
	{ "validate", "role_accounts", T_KEEPREJ, OFF(validate.role_accounts), 0, 0, 0 },
	{ "validate", "disposable", T_KEEPREJ, OFF(validate.disposable), 0, 0, 0 },
	{ "validate", "typos", T_KEEPREJ, OFF(validate.typos), 0, 0, 0 },
	{ "validate", "disposable_domains", T_PATH, OFF(validate.disposable_domains), 0, 0, 0 },
	/* 100 ms..60 s: below 100 ms a loaded resolver looks dead; above a
	 * minute per try a validate run would stall for hours. */
	{ "validate", "dns_timeout_ms", T_UINT, OFF(validate.dns_timeout_ms), 100, 60000, 0 },
	{ "validate", "dns_tries", T_UINT, OFF(validate.dns_tries), 1, 10, 0 },
	{ "validate", "dns_concurrency", T_UINT, OFF(validate.dns_concurrency), 1, 1024, 0 },
	{ "message", "from", T_STRING, OFF(message.from), 0, 0, 0 },
	{ "message", "to_name", T_STRING, OFF(message.to_name), 0, 0, 0 },
	{ "message", "reply_to", T_STRING, OFF(message.reply_to), 0, 0, 0 },
	{ "message", "subject", T_STRING, OFF(message.subject), 0, 0, 0 },
	{ "message", "text", T_PATH, OFF(message.text), 0, 0, 0 },
	{ "message", "html", T_PATH, OFF(message.html), 0, 0, 0 },
	{ "message", "attachments", T_PATHLIST, OFF(message.attachments), 0, 0, 0 },
	{ "message", "headers", T_STRING, OFF(message.headers), 0, 0, 1 },
	{ "message", "feedback_id", T_STRING, OFF(message.feedback_id), 0, 0, 0 },
	{ "message", "unsubscribe_url", T_STRING, OFF(message.unsubscribe_url), 0, 0, 0 },
	{ "message", "unsubscribe_mailto", T_STRING, OFF(message.unsubscribe_mailto), 0, 0, 0 },
	{ "message", "strict_variables", T_BOOL, OFF(message.strict_variables), 0, 0, 0 },
	{ "dkim", "domain", T_STRING, DOFF(domain), 0, 0, 0 },
	{ "dkim", "selector", T_STRING, DOFF(selector), 0, 0, 0 },
	{ "dkim", "key", T_PATH, DOFF(key), 0, 0, 0 },
	{ "smtp", "mode", T_STRING, OFF(smtp.mode_s), 0, 0, 0 },
	{ "smtp", "relay", T_STRING, OFF(smtp.relay_s), 0, 0, 0 },
	{ "smtp", "tls", T_STRING, OFF(smtp.tls_s), 0, 0, 0 },
	{ "smtp", "tls_verify", T_BOOL, OFF(smtp.tls_verify), 0, 0, 0 },
	{ "smtp", "ca_file", T_PATH, OFF(smtp.ca_file), 0, 0, 0 },
	{ "smtp", "username", T_STRING, OFF(smtp.username), 0, 0, 0 },
	{ "smtp", "password_env", T_STRING, OFF(smtp.password_env), 0, 0, 0 },
	{ "smtp", "allow_plaintext_auth", T_BOOL, OFF(smtp.allow_plaintext_auth), 0, 0, 0 },
	{ "smtp", "return_path", T_STRING, OFF(smtp.return_path), 0, 0, 0 },
	{ "smtp", "helo", T_STRING, OFF(smtp.helo), 0, 0, 0 },
	{ "smtp", "source_ips", T_STRING, OFF(smtp.source_ips_s), 0, 0, 0 },
	{ "smtp", "max_connections", T_UINT, OFF(smtp.max_connections), 1, 10000, 0 },
	{ "smtp", "max_rate", T_RATE, OFF(smtp.max_rate), 0, 0, 0 },
	{ "smtp", "resolver", T_STRING, OFF(smtp.resolver), 0, 0, 0 },
	{ "smtp", "allow_private_mx", T_BOOL, OFF(smtp.allow_private_mx), 0, 0, 0 },
	{ "smtp", "mx_port", T_UINT, OFF(smtp.mx_port), 1, 65535, 0 },
	{ "smtp", "max_mx_hosts", T_UINT, OFF(smtp.max_mx_hosts), 1, 20, 0 },
	{ "smtp", "pipelining", T_BOOL, OFF(smtp.pipelining), 0, 0, 0 },
	{ "smtp", "pipeline_messages", T_BOOL, OFF(smtp.pipeline_messages), 0, 0, 0 },
	{ "smtp", "bounce_rules", T_PATH, OFF(smtp.bounce_rules), 0, 0, 0 },
	{ "smtp", "max_bounce_rate", T_PERCENT, OFF(smtp.max_bounce_rate), 0, 0, 0 },
	{ "smtp", "bounce_rate_window", T_UINT, OFF(smtp.bounce_rate_window), 10, 1000000, 0 },
	{ "smtp", "bounce_rate_min", T_UINT, OFF(smtp.bounce_rate_min), 1, 1000000, 0 },
	/* Timeouts: 1 s .. 1 h; the final dot never below 10 min (RFC 1047). */
	{ "smtp", "timeout_connect", T_DURATION, OFF(smtp.timeout_connect), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_greeting", T_DURATION, OFF(smtp.timeout_greeting), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_ehlo", T_DURATION, OFF(smtp.timeout_ehlo), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_starttls", T_DURATION, OFF(smtp.timeout_starttls), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_auth", T_DURATION, OFF(smtp.timeout_auth), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_mail", T_DURATION, OFF(smtp.timeout_mail), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_rcpt", T_DURATION, OFF(smtp.timeout_rcpt), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_data", T_DURATION, OFF(smtp.timeout_data), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_data_block", T_DURATION, OFF(smtp.timeout_data_block), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_dot", T_DURATION, OFF(smtp.timeout_dot), SEC(600), SEC(3600), 0 },
	{ "smtp", "timeout_rset", T_DURATION, OFF(smtp.timeout_rset), SEC(1), SEC(3600), 0 },
	{ "smtp", "timeout_quit", T_DURATION, OFF(smtp.timeout_quit), SEC(1), SEC(3600), 0 },
	/* Retries: 1 s .. 30 days (tests shorten them; RFC 5321 4.5.4.1
	 * suggests 4-5 days at most). */
	{ "smtp", "retry_for", T_DURATION, OFF(smtp.retry_for), SEC(1), SEC(30 * 86400), 0 },
	{ "smtp", "retry_first", T_DURATION, OFF(smtp.retry_first), SEC(1), SEC(86400), 0 },
	{ "smtp", "retry_max_interval", T_DURATION, OFF(smtp.retry_max_interval), SEC(1), SEC(7 * 86400), 0 },
	{ "smtp", "backoff_period", T_DURATION, OFF(smtp.backoff_period), SEC(1), SEC(86400), 0 },
	{ "smtp", "backoff_pause", T_DURATION, OFF(smtp.backoff_pause), 0, SEC(86400), 0 },
	{ "smtp", "dead_host_for", T_DURATION, OFF(smtp.dead_host_for), 0, SEC(86400), 0 },
	{ "smtp", "shutdown_grace", T_DURATION, OFF(smtp.shutdown_grace), 0, SEC(3600), 0 },
	{ "tracking", "base_url", T_STRING, OFF(tracking.base_url), 0, 0, 0 },
	{ "tracking", "listen", T_STRING, OFF(tracking.listen), 0, 0, 0 },
	{ "tracking", "trusted_proxies", T_STRING, OFF(tracking.trusted_proxies_s), 0, 0, 0 },
	{ "tracking", "secret_env", T_STRING, OFF(tracking.secret_env), 0, 0, 0 },
	{ "tracking", "opens", T_BOOL, OFF(tracking.opens), 0, 0, 0 },
	{ "tracking", "clicks", T_BOOL, OFF(tracking.clicks), 0, 0, 0 },
	{ "tracking", "scanner_window", T_DURATION, OFF(tracking.scanner_window), 0, SEC(3600), 0 },
	{ "domain", "connections", T_UINTU, SOFF(connections), 1, 10000, 0 },
	{ "domain", "rate", T_RATE, SOFF(rate), 0, 0, 0 },
	{ "domain", "burst", T_DOUBLE, SOFF(burst), 0, 0, 0 },
	{ "domain", "connect_rate", T_RATE, SOFF(connect_rate), 0, 0, 0 },
	{ "domain", "messages_per_connection", T_UINTU, SOFF(messages_per_connection), 1, 1000000, 0 },
	{ "domain", "daily_limit", T_UINTU, SOFF(daily_limit), 0, 100000000, 0 },
	{ "provider", "mx", T_STRING, SOFF(mx), 0, 0, 0 },
	{ "provider", "connections", T_UINTU, SOFF(connections), 1, 10000, 0 },
	{ "provider", "rate", T_RATE, SOFF(rate), 0, 0, 0 },
	{ "provider", "burst", T_DOUBLE, SOFF(burst), 0, 0, 0 },
	{ "provider", "connect_rate", T_RATE, SOFF(connect_rate), 0, 0, 0 },
	{ "provider", "messages_per_connection", T_UINTU, SOFF(messages_per_connection), 1, 1000000, 0 },
	{ "provider", "daily_limit", T_UINTU, SOFF(daily_limit), 0, 100000000, 0 },
};

/* Key names that must never hold a secret directly. */
static const char *const secret_keys[] = {
	"password", "pass", "secret", "auth_password", "api_key", "token_secret",
};

/* Sections the schema knows, in documentation order. */
static const char *const sections[] = { "campaign", "validate", "message", "dkim",
                                        "smtp", "tracking", "domain", "provider" };

/* Sections that may repeat with a second word: [dkim ed25519]. */
static int section_takes_sub(const char *name)
{
	return strcmp(name, "dkim") == 0 || strcmp(name, "domain") == 0 ||
	       strcmp(name, "provider") == 0;
}

/* Sections that need their second word. */
static int section_needs_sub(const char *name)
{
	return strcmp(name, "domain") == 0 || strcmp(name, "provider") == 0;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int cfg_fail(char *err, size_t errlen, const char *file, unsigned line,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "file:line: message". */
static int cfg_fail(char *err, size_t errlen, const char *file, unsigned line,
                    const char *fmt, ...)
{
	va_list ap;
	int n = line ? snprintf(err, errlen, "%s:%u: ", file, line)
	             : snprintf(err, errlen, "%s: ", file);

	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Optimal string alignment distance, for "did you mean" hints only. */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[32][32];

	if (la >= 32 || lb >= 32)
		return UINT_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

/* Closest known key of a section (or section name when section is NULL). */
static const char *closest(const char *section, const char *word)
{
	const char *best = NULL;
	unsigned bestd = 3; /* suggest only within 2 edits */

	if (section == NULL) {
		for (size_t i = 0; i < NELEM(sections); i++) {
			unsigned d = edit_distance(sections[i], word);
			if (d < bestd) {
				bestd = d;
				best = sections[i];
			}
		}
		return best;
	}
	for (size_t i = 0; i < NELEM(schema); i++) {
		if (strcmp(schema[i].section, section) != 0)
			continue;
		unsigned d = edit_distance(schema[i].key, word);
		if (d < bestd) {
			bestd = d;
			best = schema[i].key;
		}
	}
	return best;
}

static int known_section(const char *name)
{
	for (size_t i = 0; i < NELEM(sections); i++)
		if (strcmp(sections[i], name) == 0)
			return 1;
	return 0;
}

/* Make 'value' absolute against dir. Returns a new string. */
static char *path_resolve(const char *dir, const char *value)
{
	char *p;

	if (value[0] == '/')
		return strdup(value);
	if (asprintf(&p, "%s/%s", dir, value) < 0)
		return NULL;
	return p;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < NELEM(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* attachments = a.pdf, b.png: split at commas, trim, make absolute. */
static int set_pathlist(struct config *cfg, const struct cfg_key *k,
                        const struct ini_entry *e, char *err, size_t errlen)
{
	const char *v = e->value;
	struct config_message *m = &cfg->message;

	(void)k; /* the only list is [message] attachments */
	while (*v != '\0') {
		const char *comma = strchr(v, ','), *end = comma ? comma : v + strlen(v);
		const char *a = v;
		char *item, *path, **list;

		while (a < end && (*a == ' ' || *a == '\t'))
			a++;
		while (end > a && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == a)
			return cfg_fail(err, errlen, cfg->path, e->line,
			                "%s: empty file name in the list", e->key);
		item = strndup(a, (size_t)(end - a));
		path = item ? path_resolve(cfg->dir, item) : NULL;
		free(item);
		list = path ? realloc(m->attachments, (m->nattachments + 1) * sizeof(*list)) : NULL;
		if (list == NULL) {
			free(path);
			return cfg_fail(err, errlen, cfg->path, e->line, "out of memory");
		}
		list[m->nattachments++] = path;
		m->attachments = list;
		v = comma ? comma + 1 : end + strlen(end);
	}
	return 0;
}

/* Store one value into the config according to its schema row. */
static int config_set(struct config *cfg, void *obj, const struct cfg_key *k,
                      const struct ini_entry *e, char *err, size_t errlen)
{
	char *base = (char *)obj + k->offset;
	const char *v = e->value;
	const char *f = cfg->path;

	if (e->continued && !k->multiline)
		return cfg_fail(err, errlen, f, e->lines[e->nlines > 1 ? 1 : 0],
		                "this indented line continues '%s' (line %u), which "
		                "takes one line; remove the indentation",
		                k->key, e->line);
	switch (k->type) {
	case T_NAME:
		if (*v == '\0')
			return cfg_fail(err, errlen, f, e->line, "%s: empty campaign name", k->key);
		for (const char *p = v; *p; p++)
			if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
				return cfg_fail(err, errlen, f, e->line,
				                "%s: '%s' may not contain '/' or control characters "
				                "(it names the output directory)", k->key, v);
		/* fall through */
	case T_ENCODING:
		if (k->type == T_ENCODING && !csv_encoding_known(v))
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' is not an encoding iconv knows (utf-8, gbk, "
			                "gb18030, big5, utf-16, latin1, ...; `iconv -l` lists all)",
			                k->key, v);
		/* fall through */
	case T_STRING: {
		char **dst = (char **)base;
		free(*dst);
		if ((*dst = strdup(v)) == NULL)
			return cfg_fail(err, errlen, f, e->line, "out of memory");
		return 0;
	}
	case T_PATH: {
		char **dst = (char **)base;
		if (*v == '\0')
			return cfg_fail(err, errlen, f, e->line, "%s: empty file name", k->key);
		free(*dst);
		if ((*dst = path_resolve(cfg->dir, v)) == NULL)
			return cfg_fail(err, errlen, f, e->line, "out of memory");
		return 0;
	}
	case T_PATHLIST:
		return set_pathlist(cfg, k, e, err, errlen);
	case T_BOOL:
		if (parse_bool(v, (int *)base) < 0)
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' is not yes or no", k->key, v);
		return 0;
	case T_KEEPREJ:
		if (strcmp(v, "keep") == 0)
			*(enum cfg_keep_reject *)base = CFG_KEEP;
		else if (strcmp(v, "reject") == 0)
			*(enum cfg_keep_reject *)base = CFG_REJECT;
		else
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' must be keep or reject", k->key, v);
		return 0;
	case T_UINT: {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 ||
		    n < k->min || n > k->max)
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' must be a whole number from %u to %u",
			                k->key, v, k->min, k->max);
		*(unsigned *)base = (unsigned)n;
		return 0;
	}
	case T_UINTU:
	case T_DURATION: {
		unsigned ms;
		if (k->type == T_UINTU) {
			struct cfg_key k2 = *k;
			k2.type = T_UINT;
			return config_set(cfg, obj, &k2, e, err, errlen);
		}
		if (config_parse_duration_ms(v, &ms) < 0 || ms < k->min || ms > k->max)
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' must be a duration from %us to %us "
			                "(e.g. 300s, 5m, 24h, 4d)", k->key, v,
			                k->min / 1000, k->max / 1000);
		*(unsigned *)base = ms;
		return 0;
	}
	case T_RATE:
		if (throttle_parse_rate(v, (double *)base) < 0)
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' is not a rate: write N/s, N/m, N/h or N/d "
			                "(e.g. 20/s, 600/m), or 0 for no limit", k->key, v);
		return 0;
	case T_PERCENT:
	case T_DOUBLE: {
		char *end;
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (k->type == T_PERCENT && *end == '%')
			end++;
		if (end == v || *end != '\0' || errno != 0 || !(d >= 0) ||
		    (k->type == T_PERCENT && d > 100) || (k->type == T_DOUBLE && d > 1e9))
			return cfg_fail(err, errlen, f, e->line,
			                k->type == T_PERCENT
			                ? "%s: '%s' must be a percentage from 0%% to 100%% (e.g. 10%%)"
			                : "%s: '%s' must be a positive number", k->key, v);
		*(double *)base = k->type == T_PERCENT ? d / 100.0 : d;
		return 0;
	}
	case T_DELIM:
		if (strcmp(v, ",") == 0 || strcmp(v, "comma") == 0)
			*base = ',';
		else if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0 ||
		         strcmp(v, "\t") == 0)
			*base = '\t';
		else if (strcmp(v, ";") == 0 || strcmp(v, "semicolon") == 0)
			*base = ';';
		else if (strcmp(v, "|") == 0 || strcmp(v, "pipe") == 0)
			*base = '|';
		else
			return cfg_fail(err, errlen, f, e->line,
			                "%s: '%s' must be one of , tab ; | "
			                "(write ; in quotes: \";\")", k->key, v);
		return 0;
	}
	return cfg_fail(err, errlen, f, e->line, "%s: internal: bad schema type", k->key);
}

int config_parse_duration_ms(const char *v, unsigned *ms)
{
	char *end;
	double d, mul = 1000;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || errno != 0 || !(d >= 0) || *v == '-' || *v == '+')
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else if (strcmp(end, "d") == 0)
		mul = 86400000;
	else
		return -1;
	d *= mul;
	if (d > (double)UINT_MAX)
		return -1;
	*ms = (unsigned)(d + 0.5);
	return 0;
}

/* Documented defaults (docs/config.md); paths depend on the config dir. */
static int config_defaults(struct config *cfg)
{
	const char *slash = strrchr(cfg->path, '/');
	const char *base = slash ? slash + 1 : cfg->path;
	const char *dot = strrchr(base, '.');
	size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);

	cfg->campaign.name = strndup(base, n);
	cfg->campaign.email_column = strdup("email");
	cfg->campaign.encoding = strdup("utf-8");
	cfg->campaign.delimiter = ',';
	cfg->validate.dns = 1;
	cfg->validate.role_accounts = CFG_KEEP;
	cfg->validate.disposable = CFG_REJECT;
	cfg->validate.typos = CFG_REJECT;
	/* 2 s x 2 tries: a healthy resolver answers in milliseconds; two tries
	 * ride out one lost UDP datagram without stalling a run on a dead one. */
	cfg->validate.dns_timeout_ms = 2000;
	cfg->validate.dns_tries = 2;
	/* 64 domains in flight: enough to hide round trips, few enough not to
	 * look like a flood to a small resolver. */
	cfg->validate.dns_concurrency = 64;
	/* [smtp] defaults: docs/config.md says why for each. */
	cfg->smtp.tls_verify = -1;
	cfg->smtp.max_connections = 100;
	cfg->smtp.mx_port = 25;
	cfg->smtp.max_mx_hosts = 5;
	cfg->smtp.pipelining = 1;
	cfg->smtp.pipeline_messages = 1;
	cfg->smtp.max_bounce_rate = 0.10;
	cfg->smtp.bounce_rate_window = 1000;
	cfg->smtp.bounce_rate_min = 100;
	/* RFC 5321 4.5.3.2 client timeouts; connect 30 s like Postfix's
	 * smtp_connect_timeout (a dead host must not hold a slot long). */
	cfg->smtp.timeout_connect = SEC(30);
	cfg->smtp.timeout_greeting = SEC(300);
	cfg->smtp.timeout_ehlo = SEC(300);
	cfg->smtp.timeout_starttls = SEC(120);
	cfg->smtp.timeout_auth = SEC(120);
	cfg->smtp.timeout_mail = SEC(300);
	cfg->smtp.timeout_rcpt = SEC(300);
	cfg->smtp.timeout_data = SEC(120);
	cfg->smtp.timeout_data_block = SEC(180);
	cfg->smtp.timeout_dot = SEC(600);
	cfg->smtp.timeout_rset = SEC(120);
	cfg->smtp.timeout_quit = SEC(60);
	/* Retry for a day (bulk mail is stale after that), first retry after
	 * 5 min (greylisting passes at >= 5 min), backoff doubling to 1 h. */
	cfg->smtp.retry_for = SEC(86400);
	cfg->smtp.retry_first = SEC(300);
	cfg->smtp.retry_max_interval = SEC(3600);
	/* One halving per minute per domain, a minute's pause after it. */
	cfg->smtp.backoff_period = SEC(60);
	cfg->smtp.backoff_pause = SEC(60);
	/* A host that refused a connection is skipped for 5 min. */
	cfg->smtp.dead_host_for = SEC(300);
	/* In-flight transactions get 30 s to finish after SIGINT/SIGTERM. */
	cfg->smtp.shutdown_grace = SEC(30);
	/* [tracking]: opens and clicks on once the section is written. */
	cfg->tracking.opens = 1;
	cfg->tracking.clicks = 1;
	cfg->tracking.scanner_window = SEC(10);
	if (cfg->campaign.name == NULL || cfg->campaign.email_column == NULL ||
	    cfg->campaign.encoding == NULL)
		return -1;
	return 0;
}

/* The directory of 'path', absolute. */
static char *config_dir(const char *path)
{
	char *copy = strdup(path), *slash, *dir = NULL;

	if (copy == NULL)
		return NULL;
	slash = strrchr(copy, '/');
	if (slash == copy)
		dir = strdup("/");
	else if (slash != NULL) {
		*slash = '\0';
		dir = realpath(copy, NULL);
	} else
		dir = realpath(".", NULL);
	free(copy);
	return dir;
}

/* Line of the first [name] header, 0 when the section is absent. */
static unsigned section_line(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ini->nsections; i++)
		if (strcmp(cfg->ini->sections[i].name, name) == 0)
			return cfg->ini->sections[i].line;
	return 0;
}

/* Split a blank- or comma-separated word list into a new array,
 * lowercased unless keep_case. */
static int split_list(const char *v, char ***out, size_t *n, int keep_case)
{
	*out = NULL;
	*n = 0;
	while (*v != '\0') {
		size_t len;
		char **p;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		len = strcspn(v, " \t,");
		if (len == 0)
			break;
		p = realloc(*out, (*n + 1) * sizeof(*p));
		if (p == NULL)
			return -1;
		*out = p;
		if ((p[*n] = strndup(v, len)) == NULL)
			return -1;
		for (char *c = p[*n]; *c && !keep_case; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		(*n)++;
		v += len;
	}
	return 0;
}

static int split_words(const char *v, char ***out, size_t *n)
{
	return split_list(v, out, n, 0);
}

static void shapes_free(struct config_shape *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].npatterns; j++)
			free(v[i].patterns[j]);
		free(v[i].patterns);
		free(v[i].name);
		free(v[i].mx);
	}
	free(v);
}

/* A new [domain ...] or [provider ...] with every limit unset. */
static int shape_add(struct config *cfg, const struct ini_section *s,
                     char *err, size_t errlen)
{
	int dom = strcmp(s->name, "domain") == 0;
	struct config_shape **v = dom ? &cfg->domains : &cfg->providers;
	size_t *n = dom ? &cfg->ndomains : &cfg->nproviders;
	struct config_shape *p = realloc(*v, (*n + 1) * sizeof(**v)), *sh;

	if (p == NULL)
		return cfg_fail(err, errlen, cfg->path, s->line, "out of memory");
	*v = p;
	sh = &p[(*n)++];
	memset(sh, 0, sizeof(*sh));
	sh->line = s->line;
	sh->connections = sh->messages_per_connection = sh->daily_limit = CFG_UNSET;
	sh->rate = sh->burst = sh->connect_rate = -1;
	if ((sh->name = strdup(s->sub)) == NULL)
		return cfg_fail(err, errlen, cfg->path, s->line, "out of memory");
	if (dom && split_words(s->sub, &sh->patterns, &sh->npatterns) < 0)
		return cfg_fail(err, errlen, cfg->path, s->line, "out of memory");
	for (size_t i = 0; i < sh->npatterns; i++) {
		const char *w = sh->patterns[i], *star = strchr(w, '*');
		if (star != NULL && !(star == w && (w[1] == '\0' || w[1] == '.') &&
		                      strchr(w + 1, '*') == NULL))
			return cfg_fail(err, errlen, cfg->path, s->line,
			                "[%s %s]: '%s' is not a domain pattern: write a "
			                "domain (gmail.com), *.suffix (*.edu) or *",
			                s->name, s->sub, w);
	}
	return 0;
}

static struct config_shape *shape_find(struct config *cfg, const char *section,
                                       const char *sub)
{
	int dom = strcmp(section, "domain") == 0;
	struct config_shape *v = dom ? cfg->domains : cfg->providers;
	size_t n = dom ? cfg->ndomains : cfg->nproviders;

	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, sub) == 0)
			return &v[i];
	return NULL;
}

static int parse_tls(const char *v, enum cfg_tls *t)
{
	static const char *const names[] = { "none", "opportunistic", "starttls", "implicit" };

	for (size_t i = 0; i < NELEM(names); i++)
		if (strcmp(v, names[i]) == 0) {
			*t = (enum cfg_tls)i;
			return 0;
		}
	return -1;
}

/* "host[:port]" or "[v6]:port" into a relay; port 25 when absent. */
static int parse_hostport(const char *w, struct config_relay *r)
{
	const char *colon;
	size_t hl;
	char *end;
	unsigned long port = 25;

	if (*w == '[') {
		const char *rb = strchr(w, ']');
		if (rb == NULL)
			return -1;
		hl = (size_t)(rb - w - 1);
		r->host = strndup(w + 1, hl);
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (rb[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(w, ':');
		hl = colon ? (size_t)(colon - w) : strlen(w);
		r->host = strndup(w, hl);
	}
	if (r->host == NULL || hl == 0)
		return -1;
	if (colon != NULL) {
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno || port == 0 || port > 65535)
			return -1;
	}
	r->port = (unsigned)port;
	return 0;
}

/* [smtp]: mode, relays, TLS per relay, source IPs; provider patterns. */
static int check_smtp(struct config *cfg, char *err, size_t errlen)
{
	struct config_smtp *m = &cfg->smtp;
	char **words = NULL;
	size_t nw = 0;
	int rc = -1;

	if (m->mode_s == NULL)
		m->mode = m->relay_s ? CFG_MODE_RELAY : CFG_MODE_MX;
	else if (strcmp(m->mode_s, "relay") == 0)
		m->mode = CFG_MODE_RELAY;
	else if (strcmp(m->mode_s, "mx") == 0)
		m->mode = CFG_MODE_MX;
	else
		return cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "mode"),
		                "[smtp] mode: '%s' must be relay (through your provider's "
		                "server) or mx (straight to each domain's MX hosts)", m->mode_s);
	if (m->tls_s != NULL) {
		if (parse_tls(m->tls_s, &m->tls) < 0)
			return cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "tls"),
			                "[smtp] tls: '%s' must be starttls, implicit, "
			                "opportunistic or none", m->tls_s);
		m->tls_set = 1;
	} else
		m->tls = CFG_TLS_OPPORTUNISTIC; /* mx mode: RFC 7435 */
	if (m->mode == CFG_MODE_RELAY && m->relay_s == NULL && m->present)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "smtp"),
		                "[smtp] mode = relay needs relay = host:port (e.g. "
		                "relay = smtp.example.com:465)");
	if (m->mode == CFG_MODE_MX && m->relay_s != NULL)
		return cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "relay"),
		                "[smtp] relay is only used with mode = relay (mode is mx)");
	if (m->relay_s != NULL) {
		if (split_words(m->relay_s, &words, &nw) < 0 || nw == 0)
			goto bad_relay;
		m->relays = calloc(nw, sizeof(*m->relays));
		if (m->relays == NULL)
			goto bad_relay;
		for (size_t i = 0; i < nw; i++) {
			struct config_relay *r = &m->relays[m->nrelays++];
			if (parse_hostport(words[i], r) < 0)
				goto bad_relay;
			/* implicit TLS on 465 (RFC 8314), STARTTLS elsewhere */
			r->tls = m->tls_set ? m->tls
			       : r->port == 465 ? CFG_TLS_IMPLICIT : CFG_TLS_STARTTLS;
		}
	}
	if (m->source_ips_s != NULL) {
		for (size_t i = 0; i < nw; i++)
			free(words[i]);
		free(words);
		words = NULL;
		if (split_words(m->source_ips_s, &words, &nw) < 0 || nw == 0)
			goto bad_ips;
		m->source_ips = calloc(nw, sizeof(*m->source_ips));
		if (m->source_ips == NULL)
			goto bad_ips;
		for (size_t i = 0; i < nw; i++) {
			struct config_source_ip *ip = &m->source_ips[m->nsource_ips++];
			char *eq = strchr(words[i], '=');
			if (eq == NULL || eq == words[i] || eq[1] == '\0')
				goto bad_ips;
			ip->ip = strndup(words[i], (size_t)(eq - words[i]));
			ip->helo = strdup(eq + 1);
			if (ip->ip == NULL || ip->helo == NULL)
				goto bad_ips;
		}
	}
	/* errors from here on still own 'words' (relay or source_ips
	 * list): leave through out (a leak found by tests/fuzz/fuzz_config) */
	if (m->password_env != NULL && m->username == NULL) {
		rc = cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "password_env"),
		              "[smtp] password_env is set but username is not: AUTH "
		              "needs both");
		goto out;
	}
	for (size_t i = 0; i < cfg->nproviders; i++) {
		struct config_shape *p = &cfg->providers[i];
		if (p->mx == NULL || split_words(p->mx, &p->patterns, &p->npatterns) < 0 ||
		    p->npatterns == 0) {
			rc = cfg_fail(err, errlen, cfg->path, p->line,
			              "[provider %s] needs mx = the MX host patterns it covers "
			              "(e.g. mx = *.google.com *.googlemail.com)", p->name);
			goto out;
		}
	}
	rc = 0;
	goto out;
bad_relay:
	rc = cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "relay"),
	              "[smtp] relay: '%s' must be host:port[, host:port...] "
	              "(e.g. smtp.example.com:465)", m->relay_s);
	goto out;
bad_ips:
	rc = cfg_fail(err, errlen, cfg->path, config_line(cfg, "smtp", "source_ips"),
	              "[smtp] source_ips: '%s' must be IP=helo.name[, IP=helo.name...] "
	              "(e.g. 192.0.2.10=mail1.acme.example)", m->source_ips_s);
out:
	for (size_t i = 0; i < nw; i++)
		free(words[i]);
	free(words);
	return rc;
}

/* Required keys of [message] and [dkim] (their meaning is checked when
 * templates/message.c compiles them). */
static int check_message(struct config *cfg, char *err, size_t errlen)
{
	struct config_message *m = &cfg->message;

	for (size_t i = 0; i < cfg->ndkim; i++) {
		struct config_dkim *d = &cfg->dkim[i];
		const char *missing = d->domain == NULL ? "domain"
		                    : d->selector == NULL ? "selector"
		                    : d->key == NULL ? "key" : NULL;
		if (missing != NULL)
			return cfg_fail(err, errlen, cfg->path, d->line,
			                "[dkim%s%s] needs %s (domain, selector and key "
			                "are required)", *d->name ? " " : "", d->name,
			                missing);
	}
	if (!m->present)
		return 0;
	if (m->from == NULL)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "message"),
		                "[message] from is required (e.g. from = \"Acme <news@acme.example>\")");
	if (m->subject == NULL)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "message"),
		                "[message] subject is required");
	if (m->text == NULL && m->html == NULL)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "message"),
		                "[message] needs a body: text = FILE, html = FILE, or both");
	return 0;
}

/* [tracking] base_url's shape: http(s)://host[:port][/path] with nothing
 * a template or an HTML attribute could mistake. */
static int check_base_url(const char *u)
{
	const char *host = strncmp(u, "https://", 8) == 0 ? u + 8
	                 : strncmp(u, "http://", 7) == 0 ? u + 7 : NULL;
	size_t n = strlen(u);

	if (host == NULL || *host == '\0' || *host == '/' || n > 512 ||
	    u[n - 1] == '/')
		return -1;
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f ||
		    strchr("\"'<>{}|\\^`?#&", *c) != NULL)
			return -1;
	return 0;
}

/* [tracking] and report_columns: lists split, base_url and listen checked. */
static int check_tracking(struct config *cfg, char *err, size_t errlen)
{
	struct config_tracking *t = &cfg->tracking;

	if (cfg->campaign.report_columns_s != NULL &&
	    split_list(cfg->campaign.report_columns_s, &cfg->campaign.report_columns,
	               &cfg->campaign.nreport_columns, 1) < 0)
		return edm_errf(err, errlen, "out of memory");
	if (!t->present)
		return 0;
	if (t->base_url == NULL)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "tracking"),
		                "[tracking] base_url is required: the public address of "
		                "`edm track` that goes into messages (e.g. base_url = "
		                "https://t.acme.example)");
	if (check_base_url(t->base_url) < 0)
		return cfg_fail(err, errlen, cfg->path, config_line(cfg, "tracking", "base_url"),
		                "[tracking] base_url: '%s' must be http(s)://host[:port][/path] "
		                "without a trailing '/', query, quotes or braces",
		                t->base_url);
	if (cfg->campaign.suppression == NULL)
		return cfg_fail(err, errlen, cfg->path, section_line(cfg, "tracking"),
		                "[tracking] needs [campaign] suppression = FILE: "
		                "one-click unsubscribes are written there, and "
		                "edm send and edm validate read it");
	if (t->listen == NULL && (t->listen = strdup("127.0.0.1:8080")) == NULL)
		return edm_errf(err, errlen, "out of memory");
	if (t->secret_env == NULL && (t->secret_env = strdup("EDM_TRACKING_SECRET")) == NULL)
		return edm_errf(err, errlen, "out of memory");
	if (t->trusted_proxies_s != NULL &&
	    split_list(t->trusted_proxies_s, &t->trusted_proxies,
	               &t->ntrusted_proxies, 0) < 0)
		return edm_errf(err, errlen, "out of memory");
	return 0;
}

int config_tracking_secret(const struct config *cfg, const char **secret,
                           size_t *len, char *err, size_t errlen)
{
	const char *name = cfg->tracking.secret_env ? cfg->tracking.secret_env
	                                            : "EDM_TRACKING_SECRET";
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		return edm_errf(err, errlen, "%s: [tracking] is on but $%s is not set: "
		                "export %s=\"$(openssl rand -hex 32)\" (keep it: tokens "
		                "in sent messages need the same secret)",
		                config_where((struct config *)cfg, "tracking", "secret_env"),
		                name, name);
	if (strlen(v) < CONFIG_TRACKING_SECRET_MIN)
		return edm_errf(err, errlen, "%s: $%s is %zu bytes; the tracking secret "
		                "needs at least %d (openssl rand -hex 32)",
		                config_where((struct config *)cfg, "tracking", "secret_env"),
		                name, strlen(v), CONFIG_TRACKING_SECRET_MIN);
	*secret = v;
	*len = strlen(v);
	return 0;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((cfg->path = strdup(path)) == NULL || (cfg->dir = config_dir(path)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	if (config_defaults(cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((cfg->ini = ini_load(path, err, errlen)) == NULL)
		goto fail;

	for (size_t i = 0; i < cfg->ini->nsections; i++) {
		const struct ini_section *s = &cfg->ini->sections[i];
		if (!known_section(s->name) ||
		    (*s->sub != '\0' && !section_takes_sub(s->name))) {
			const char *hint = closest(NULL, s->name);
			cfg_fail(err, errlen, path, s->line,
			         "unknown section [%s%s%s]%s%s%s (known: [campaign], "
			         "[validate], [message], [dkim], [dkim NAME], [smtp], [tracking], "
			         "[domain DOMAINS], [provider NAME])",
			         s->name, *s->sub ? " " : "", s->sub,
			         hint ? " (did you mean [" : "", hint ? hint : "",
			         hint ? "]?)" : "");
			goto fail;
		}
		if (section_needs_sub(s->name) && *s->sub == '\0') {
			cfg_fail(err, errlen, path, s->line,
			         strcmp(s->name, "domain") == 0
			         ? "[domain] needs the recipient domains it shapes: "
			           "[domain gmail.com googlemail.com] or [domain *.edu]"
			         : "[provider] needs a name: [provider google]");
			goto fail;
		}
		if (strcmp(s->name, "domain") == 0 || strcmp(s->name, "provider") == 0) {
			if (shape_add(cfg, s, err, errlen) < 0)
				goto fail;
		}
		if (strcmp(s->name, "smtp") == 0)
			cfg->smtp.present = 1;
		if (strcmp(s->name, "message") == 0)
			cfg->message.present = 1;
		if (strcmp(s->name, "tracking") == 0)
			cfg->tracking.present = 1;
		if (strcmp(s->name, "dkim") == 0) {
			struct config_dkim *d;
			if (cfg->ndkim == CONFIG_MAX_DKIM) {
				cfg_fail(err, errlen, path, s->line,
				         "more than %d [dkim] sections", CONFIG_MAX_DKIM);
				goto fail;
			}
			d = &cfg->dkim[cfg->ndkim++];
			d->line = s->line;
			if ((d->name = strdup(s->sub)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	for (size_t i = 0; i < cfg->ini->n; i++) {
		const struct ini_entry *e = &cfg->ini->entries[i];
		const struct cfg_key *k = NULL;

		for (size_t j = 0; j < NELEM(secret_keys); j++)
			if (strcmp(e->key, secret_keys[j]) == 0) {
				cfg_fail(err, errlen, path, e->line,
				         "[%s] %s: secrets never live in the config file; "
				         "put it in an environment variable and name that "
				         "variable here (e.g. password_env = EDM_SMTP_PASSWORD)",
				         e->section, e->key);
				goto fail;
			}
		for (size_t j = 0; j < NELEM(schema); j++)
			if (strcmp(schema[j].section, e->section) == 0 &&
			    strcmp(schema[j].key, e->key) == 0)
				k = &schema[j];
		if (k == NULL) {
			const char *hint = closest(e->section, e->key);
			cfg_fail(err, errlen, path, e->line,
			         "unknown key '%s' in [%s]%s%s%s (docs/config.md lists every key)",
			         e->key, e->section, hint ? " (did you mean '" : "",
			         hint ? hint : "", hint ? "'?)" : "");
			goto fail;
		}
		void *obj = cfg;
		if (strcmp(e->section, "dkim") == 0)
			for (size_t j = 0; j < cfg->ndkim; j++)
				if (strcmp(cfg->dkim[j].name, e->sub) == 0)
					obj = &cfg->dkim[j];
		if (strcmp(e->section, "domain") == 0 ||
		    strcmp(e->section, "provider") == 0)
			obj = shape_find(cfg, e->section, e->sub);
		if (config_set(cfg, obj, k, e, err, errlen) < 0)
			goto fail;
	}

	if (cfg->campaign.recipients == NULL) {
		cfg_fail(err, errlen, path, section_line(cfg, "campaign"),
		         "[campaign] recipients is required: the recipient CSV "
		         "(e.g. recipients = list.csv)");
		goto fail;
	}
	if (check_message(cfg, err, errlen) < 0)
		goto fail;
	if (check_smtp(cfg, err, errlen) < 0)
		goto fail;
	if (check_tracking(cfg, err, errlen) < 0)
		goto fail;
	if (*cfg->campaign.email_column == '\0') {
		cfg_fail(err, errlen, path, config_line(cfg, "campaign", "email_column"),
		         "[campaign] email_column may not be empty");
		goto fail;
	}
	if (cfg->campaign.out_dir == NULL) {
		if (asprintf(&cfg->campaign.out_dir, "%s/%s.out", cfg->dir,
		             cfg->campaign.name) < 0) {
			cfg->campaign.out_dir = NULL;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return cfg;

fail:
	config_free(cfg);
	return NULL;
}

const char *config_where(struct config *cfg, const char *section,
                         const char *key)
{
	static char buf[PATH_MAX + 32];
	unsigned line = config_line(cfg, section, key);

	if (line > 0)
		snprintf(buf, sizeof(buf), "%s:%u", cfg->path, line);
	else
		snprintf(buf, sizeof(buf), "%s", cfg->path);
	return buf;
}

const unsigned *config_lines(const struct config *cfg, const char *section,
                             const char *key, size_t *n)
{
	for (size_t i = 0; cfg->ini != NULL && i < cfg->ini->n; i++) {
		const struct ini_entry *e = &cfg->ini->entries[i];
		if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0) {
			*n = e->nlines;
			return e->lines;
		}
	}
	*n = 0;
	return NULL;
}

int config_schema_key(size_t i, const char **section, const char **key)
{
	if (i >= NELEM(schema))
		return -1;
	*section = schema[i].section;
	*key = schema[i].key;
	return 0;
}

unsigned config_line(const struct config *cfg, const char *section,
                     const char *key)
{
	for (size_t i = 0; cfg->ini != NULL && i < cfg->ini->n; i++) {
		const struct ini_entry *e = &cfg->ini->entries[i];
		if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
			return e->line;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NELEM(schema); i++) {
		if (schema[i].type != T_PATH && schema[i].type != T_STRING &&
		    schema[i].type != T_NAME && schema[i].type != T_ENCODING)
			continue;
		if (strcmp(schema[i].section, "domain") == 0 ||
		    strcmp(schema[i].section, "provider") == 0)
			continue;
		if (strcmp(schema[i].section, "dkim") == 0)
			for (size_t j = 0; j < cfg->ndkim; j++)
				free(*(char **)((char *)&cfg->dkim[j] + schema[i].offset));
		else
			free(*(char **)((char *)cfg + schema[i].offset));
	}
	for (size_t j = 0; j < cfg->ndkim; j++)
		free(cfg->dkim[j].name);
	for (size_t j = 0; j < cfg->smtp.nrelays; j++)
		free(cfg->smtp.relays[j].host);
	free(cfg->smtp.relays);
	for (size_t j = 0; j < cfg->smtp.nsource_ips; j++) {
		free(cfg->smtp.source_ips[j].ip);
		free(cfg->smtp.source_ips[j].helo);
	}
	free(cfg->smtp.source_ips);
	shapes_free(cfg->domains, cfg->ndomains);
	shapes_free(cfg->providers, cfg->nproviders);
	for (size_t j = 0; j < cfg->message.nattachments; j++)
		free(cfg->message.attachments[j]);
	free(cfg->message.attachments);
	for (size_t j = 0; j < cfg->campaign.nreport_columns; j++)
		free(cfg->campaign.report_columns[j]);
	free(cfg->campaign.report_columns);
	for (size_t j = 0; j < cfg->tracking.ntrusted_proxies; j++)
		free(cfg->tracking.trusted_proxies[j]);
	free(cfg->tracking.trusted_proxies);
	ini_free(cfg->ini);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}
