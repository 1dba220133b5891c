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
	char *report_columns_s;  /* raw report_columns */
	char **report_columns;   /* CSV columns `edm report` carries, as written */
	size_t nreport_columns;
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

/* [smtp]: how edm sends (engine/ reads these; docs/config.md has the
 * defaults and why). */
enum cfg_smtp_mode {
	CFG_MODE_RELAY = 0,
	CFG_MODE_MX,
};

enum cfg_tls {
	CFG_TLS_NONE = 0,
	CFG_TLS_OPPORTUNISTIC,
	CFG_TLS_STARTTLS,
	CFG_TLS_IMPLICIT,
};

struct config_relay {
	char *host;
	unsigned port;
	enum cfg_tls tls;        /* the [smtp] tls, or its per-port default */
};

struct config_source_ip {
	char *ip;                /* numeric IPv4/IPv6 */
	char *helo;              /* its EHLO name (PTR must match) */
};

struct config_smtp {
	int present;
	char *mode_s;            /* raw; parsed into mode */
	enum cfg_smtp_mode mode;
	char *relay_s;
	struct config_relay *relays;
	size_t nrelays;
	char *tls_s;             /* NULL = the mode's/port's default */
	int tls_set;             /* tls written explicitly */
	enum cfg_tls tls;        /* for mx mode (relays carry their own) */
	int tls_verify;          /* -1 unset: yes for relays, no for MX */
	char *ca_file;
	char *username;
	char *password_env;
	int allow_plaintext_auth;
	char *return_path;       /* NULL = the From address */
	char *helo;              /* NULL = host name or From domain */
	char *source_ips_s;
	struct config_source_ip *source_ips;
	size_t nsource_ips;
	unsigned max_connections;
	double max_rate;         /* msgs/s, 0 = unlimited */
	char *resolver;
	int allow_private_mx;
	unsigned mx_port;        /* 25; tests point MX delivery elsewhere */
	unsigned max_mx_hosts;   /* hosts tried per attempt */
	int pipelining;
	int pipeline_messages;   /* stage the next message behind the dot */
	char *bounce_rules;      /* user rules file or NULL */
	double max_bounce_rate;  /* fraction, 0 = off */
	unsigned bounce_rate_window, bounce_rate_min;
	/* durations in ms */
	unsigned timeout_connect, timeout_greeting, timeout_ehlo,
	         timeout_starttls, timeout_auth, timeout_mail, timeout_rcpt,
	         timeout_data, timeout_data_block, timeout_dot, timeout_rset,
	         timeout_quit;
	unsigned retry_for, retry_first, retry_max_interval;
	unsigned backoff_period, backoff_pause, dead_host_for;
	unsigned shutdown_grace;
};

/* [domain PATTERNS...] and [provider NAME]: shaping limits. A field left
 * unwritten holds CFG_UNSET (unsigned) or a negative value (double), so
 * the shipped defaults and wider patterns can fill it in. */
#define CFG_UNSET 0xffffffffu
struct config_shape {
	char *name;              /* the section's second word(s) */
	char **patterns;         /* domain: from the name; provider: mx = */
	size_t npatterns;
	char *mx;                /* provider only: raw mx = value */
	unsigned line;
	unsigned connections;
	double rate;             /* msgs/s */
	double burst;
	double connect_rate;     /* new connections/s */
	unsigned messages_per_connection;
	unsigned daily_limit;
};

/* [tracking]: opens, clicks and one-click unsubscribes through `edm track`
 * (present = the section is written; base_url is then required). */
struct config_tracking {
	int present;
	char *base_url;          /* "https://t.acme.example[/prefix]", no
	                            trailing '/', no query, no braces/quotes */
	char *listen;            /* "host:port" for edm track; default
	                            127.0.0.1:8080 */
	char *trusted_proxies_s; /* raw */
	char **trusted_proxies;  /* numeric IPs or CIDR prefixes (lowercased) */
	size_t ntrusted_proxies;
	char *secret_env;        /* default EDM_TRACKING_SECRET */
	int opens;               /* default 1: 1x1 pixel in the HTML part */
	int clicks;              /* default 1: rewrite http(s) links */
	unsigned scanner_window; /* ms (default 10 s): clicks this soon after
	                            the message's first event, on several links,
	                            are flagged machine=1 */
};

/* The minimum length of the tracking secret (bytes of the env value). */
#define CONFIG_TRACKING_SECRET_MIN 32

struct config {
	char *path;   /* the config file as given */
	char *dir;    /* its directory, absolute */
	struct ini *ini;
	struct config_campaign campaign;
	struct config_validate validate;
	struct config_message message;
	struct config_dkim dkim[CONFIG_MAX_DKIM];
	size_t ndkim;
	struct config_smtp smtp;
	struct config_tracking tracking;
	struct config_shape *domains;    /* [domain ...] in file order */
	size_t ndomains;
	struct config_shape *providers;  /* [provider ...] in file order */
	size_t nproviders;
};

/* "300s", "5m", "24h", "4d", "500ms", or bare seconds -> ms. 0 or -1
 * (also -1 past UINT_MAX ms, about 49 days). */
int config_parse_duration_ms(const char *v, unsigned *ms);

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

/*
 * The tracking secret from the environment variable [tracking] secret_env:
 * 0 with *secret and *len pointing into the environment, or -1 with err saying
 * which variable is unset or shorter than CONFIG_TRACKING_SECRET_MIN and
 * how to make one ("openssl rand -hex 32").
 */
int config_tracking_secret(const struct config *cfg, const char **secret,
                           size_t *len, char *err, size_t errlen);

/* Free; NULL is a no-op. */
void config_free(struct config *cfg);

#endif
