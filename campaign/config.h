/*
 * config.h - the campaign config: INI file -> typed structs, checked against
 * a schema of every section and key (docs/config.md documents each).
 *
 * Contract: config_load() either returns a complete config with every
 * default filled in and every path made absolute (relative paths are
 * relative to the config file's directory), or NULL with an error naming
 * file:line and the key. Unknown sections and keys are errors, with a
 * "did you mean" hint; so are secrets written in the file (a key named
 * password/secret: use password_env = NAME). The config owns all its
 * strings; config_free() releases them.
 * What it does not do: open the files the config names (callers do, and
 * use config_where() to say which key named them).
 */
#ifndef EDM_CONFIG_H
#define EDM_CONFIG_H

#include <stddef.h>

struct ini;

enum cfg_keep_reject {
	CFG_KEEP = 0,
	CFG_REJECT = 1,
};

struct config_campaign {
	char *name;          /* campaign id; default: config file name stem */
	char *recipients;    /* absolute path of the recipient CSV (required) */
	char *email_column;  /* header name of the address column ("email") */
	char *encoding;      /* iconv name or alias ("utf-8") */
	char delimiter;      /* ',', '\t', ';' or '|' */
	char *suppression;   /* absolute path or NULL */
	char *out_dir;       /* absolute; default <config dir>/<name>.out */
};

struct config_validate {
	int dns;                       /* MX checks on (default 1) */
	char *resolver;                /* "host:port[,...]" or NULL = system */
	enum cfg_keep_reject role_accounts; /* default keep */
	enum cfg_keep_reject disposable;    /* default reject */
	enum cfg_keep_reject typos;         /* default reject */
	char *disposable_domains;      /* extra list file, absolute, or NULL */
	unsigned dns_timeout_ms;       /* per try */
	unsigned dns_tries;
	unsigned dns_concurrency;      /* domains in flight */
};

/* [message]: the raw (uncompiled) templates and files of the message;
 * templates/message.c compiles them. Present when the section is. */
struct config_message {
	int present;
	char *from;              /* "Name <addr>" or addr; name part templated */
	char *to_name;           /* template or NULL */
	char *reply_to;          /* addr-spec or NULL */
	char *subject;           /* template (required) */
	char *text;              /* absolute path or NULL */
	char *html;              /* absolute path or NULL */
	char **attachments;      /* absolute paths */
	size_t nattachments;
	char *headers;           /* template lines "Name: value", "\n"-joined */
	char *feedback_id;       /* template or NULL */
	char *unsubscribe_url;   /* template or NULL */
	char *unsubscribe_mailto;/* addr-spec or NULL */
	int strict_variables;    /* default 0 */
};

/* [dkim] or [dkim NAME]: one signature each. */
#define CONFIG_MAX_DKIM 4
struct config_dkim {
	char *name;              /* "" for [dkim], else the NAME */
	char *domain;            /* d= */
	char *selector;          /* s= */
	char *key;               /* absolute path of the PEM private key */
	unsigned line;           /* line of the section header */
};

struct config {
	char *path;   /* the config file as given */
	char *dir;    /* its directory, absolute */
	struct ini *ini;
	struct config_campaign campaign;
	struct config_validate validate;
	struct config_message message;
	struct config_dkim dkim[CONFIG_MAX_DKIM];
	size_t ndkim;
};

/* Load and check 'path'. NULL with "file:line: key: reason" in err. */
struct config *config_load(const char *path, char *err, size_t errlen);

/*
 * "file:line" of the key in [section] (or "file" when the key was not
 * written and its default applies), for messages about the value's
 * meaning; points at a static buffer, valid until the next call (the
 * CLI is single-threaded).
 */
const char *config_where(struct config *cfg, const char *section,
                         const char *key);

/* The line of the key in [section] (first one for repeated sub-sections),
 * or 0 when the key was not written. */
unsigned config_line(const struct config *cfg, const char *section,
                     const char *key);

/* The line of each part of a multi-line value (continuation lines), *n
 * set to their count; NULL (and *n = 0) when the key was not written. */
const unsigned *config_lines(const struct config *cfg, const char *section,
                             const char *key, size_t *n);

/* The i-th key of the schema (for the documentation test): 0 and
 * section/key set, or -1 past the end. */
int config_schema_key(size_t i, const char **section, const char **key);

/* Free; NULL is a no-op. */
void config_free(struct config *cfg);

#endif
