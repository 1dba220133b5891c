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

static const struct cfg_key schema[] = {
	{ "campaign", "name", T_NAME, OFF(campaign.name), 0, 0, 0 },
	{ "campaign", "recipients", T_PATH, OFF(campaign.recipients), 0, 0, 0 },
	{ "campaign", "email_column", T_STRING, OFF(campaign.email_column), 0, 0, 0 },
	{ "campaign", "encoding", T_ENCODING, OFF(campaign.encoding), 0, 0, 0 },
	{ "campaign", "delimiter", T_DELIM, OFF(campaign.delimiter), 0, 0, 0 },
	{ "campaign", "suppression", T_PATH, OFF(campaign.suppression), 0, 0, 0 },
	{ "campaign", "out_dir", T_PATH, OFF(campaign.out_dir), 0, 0, 0 },
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
};

/* Key names that must never hold a secret directly. */
static const char *const secret_keys[] = {
	"password", "pass", "secret", "auth_password", "api_key", "token_secret",
};

/* Sections the schema knows, in documentation order. */
static const char *const sections[] = { "campaign", "validate", "message", "dkim" };

/* Sections that may repeat with a second word: [dkim ed25519]. */
static int section_takes_sub(const char *name)
{
	return strcmp(name, "dkim") == 0;
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
			         "[validate], [message], [dkim], [dkim NAME])",
			         s->name, *s->sub ? " " : "", s->sub,
			         hint ? " (did you mean [" : "", hint ? hint : "",
			         hint ? "]?)" : "");
			goto fail;
		}
		if (strcmp(s->name, "message") == 0)
			cfg->message.present = 1;
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
		if (strcmp(schema[i].section, "dkim") == 0)
			for (size_t j = 0; j < cfg->ndkim; j++)
				free(*(char **)((char *)&cfg->dkim[j] + schema[i].offset));
		else
			free(*(char **)((char *)cfg + schema[i].offset));
	}
	for (size_t j = 0; j < cfg->ndkim; j++)
		free(cfg->dkim[j].name);
	for (size_t j = 0; j < cfg->message.nattachments; j++)
		free(cfg->message.attachments[j]);
	free(cfg->message.attachments);
	ini_free(cfg->ini);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}
