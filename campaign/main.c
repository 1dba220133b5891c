/*
 * main.c - the edm command line: git-style subcommands.
 *
 * Each subcommand parses its own options (getopt_long), loads the config
 * and hands over to its module; exit codes follow sysexits(3): 0 done,
 * 64 usage, 65 bad input data, 66 missing input, 73 cannot create output,
 * 78 bad config. Nothing here knows about CSV, DNS or SMTP.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "buf.h"
#include "dkim.h"
#include "files.h"
#include "ingest.h"
#include "log.h"
#include "classify_cmd.h"
#include "preview.h"
#include "report.h"
#include "send.h"
#include "sink.h"
#include "track.h"
#include "validate.h"

#ifndef EDM_VERSION
#define EDM_VERSION "0.1.0"
#endif

static const char usage_main[] =
	"edm - bulk email campaign sender\n"
	"\n"
	"Usage: edm <command> [options] CONFIG\n"
	"       edm <command> --help\n"
	"\n"
	"Commands:\n"
	"  validate   clean the recipient list by dry run: writes clean.csv and\n"
	"             rejects.csv (with a reason per row) into the out dir\n"
	"  preview    render the message of one row (or of every row) exactly as\n"
	"             it would be sent: headers, MIME parts, DKIM signatures\n"
	"  send       send the campaign: shaped SMTP delivery, retries, resume,\n"
	"             results.csv (edm send --help)\n"
	"  track      the tracking server: open pixels, click redirects and\n"
	"             one-click unsubscribes into OUT_DIR/events.csv\n"
	"  ingest     read bounce reports (DSN) and complaints (ARF) from mbox,\n"
	"             Maildir or stdin into events.csv and the suppression file\n"
	"  report     report.csv (one row per recipient: delivery, opens, clicks,\n"
	"             unsubscribes, bounces) and report.html for a campaign\n"
	"  classify   classify SMTP replies into bounce categories\n"
	"  sink       a local capture SMTP server for trying campaigns\n"
	"  dkim       DKIM keys: edm dkim keygen --domain D --selector S\n"
	"  help       show the help of a command (edm help validate)\n"
	"\n"
	"Options:\n"
	"  -h, --help      this text\n"
	"  -V, --version   print the version\n"
	"\n"
	"CONFIG is the campaign's INI file; docs/config.md lists every key.\n"
	"Environment: EDM_LOG=debug|info|warn|error sets the log level.\n";

static const char usage_validate[] =
	"Usage: edm validate [options] CONFIG\n"
	"\n"
	"Clean the campaign's recipient list without sending anything. Every row\n"
	"is kept or rejected with the first reason that applies, in this order:\n"
	"  malformed   wrong number of fields\n"
	"  encoding    bytes invalid in the declared encoding\n"
	"  syntax      not an address usable on the internet (RFC 5321)\n"
	"  duplicate   the same address earlier in the file (case-insensitive)\n"
	"  suppressed  in the suppression file\n"
	"  disposable  a disposable-mail domain        (disposable = reject)\n"
	"  role        a role account like info@       (role_accounts = reject)\n"
	"  typo        a typo of a popular domain      (typos = reject)\n"
	"  template    an empty variable in the templates\n"
	"              (with [message] strict_variables = yes)\n"
	"  no-mail     the domain cannot receive mail  (DNS: NXDOMAIN, null MX,\n"
	"              no MX and no A/AAAA)\n"
	"\n"
	"Writes OUT_DIR/clean.csv (kept rows, original columns) and\n"
	"OUT_DIR/rejects.csv (original columns + reason, detail, suggestion, row),\n"
	"both mode 0600, and prints a summary.\n"
	"\n"
	"Options:\n"
	"  --no-dns          skip the DNS (MX) checks\n"
	"  --out-dir DIR     write into DIR instead of [campaign] out_dir\n"
	"  --resolver H:P    ask this DNS server (e.g. 127.0.0.1:5353) instead of\n"
	"                    [validate] resolver or the system resolver\n"
	"  --no-progress     no progress line on a terminal\n"
	"  -q, --quiet       no summary\n"
	"  -h, --help        this text\n"
	"\n"
	"Exit status: 0 when the run completed (whatever was rejected); 65 for\n"
	"unusable input (no email column, wrong encoding), 66 for a missing file,\n"
	"73 when the outputs cannot be written, 78 for a config error.\n";

static const char usage_preview[] =
	"Usage: edm preview [options] CONFIG\n"
	"       edm preview --all --out-dir DIR CONFIG\n"
	"\n"
	"Render the complete message of one recipient row, as `edm send` would\n"
	"hand it to SMTP (before dot-stuffing): DKIM signatures, headers, MIME\n"
	"parts, CRLF line ends. Rows are numbered as in rejects.csv (1 = the\n"
	"first data row). Nothing is sent.\n"
	"\n"
	"Options:\n"
	"  --row N          the row to render (default 1)\n"
	"  --out FILE       write to FILE (mode 0600) instead of stdout\n"
	"  --all            render every row, one DIR/row-NNNNNN.eml each\n"
	"  --out-dir DIR    where --all writes (default: OUT_DIR/preview)\n"
	"  --date EPOCH     the Date of the messages, in seconds since 1970\n"
	"                   (default now; for reproducible output)\n"
	"  -h, --help       this text\n"
	"\n"
	"Exit status: 0 done; 65 the row cannot be rendered (malformed, bad\n"
	"encoding, unusable address, an empty variable under strict_variables);\n"
	"66 a missing file; 73 cannot write; 78 a config or template error.\n";

static const char usage_dkim[] =
	"Usage: edm dkim keygen --domain DOMAIN --selector SELECTOR --out KEY.pem\n"
	"                       [--type rsa|ed25519] [--bits N]\n"
	"\n"
	"Generate a DKIM private key (PKCS#8 PEM, mode 0600; an existing file is\n"
	"never overwritten) and print the DNS TXT record to publish at\n"
	"SELECTOR._domainkey.DOMAIN. RSA keys default to 2048 bits (RFC 8301:\n"
	"at least 1024). Ed25519 (RFC 8463) is compact but not verified by every\n"
	"receiver yet: sign with both (a [dkim] and a [dkim ed25519] section).\n"
	"\n"
	"Options:\n"
	"  --domain D       the signing domain (d=)\n"
	"  --selector S     the selector (s=)\n"
	"  --out FILE       where to write the private key\n"
	"  --type T         rsa (default) or ed25519\n"
	"  --bits N         RSA key size (default 2048)\n"
	"  -h, --help       this text\n";

/* Parse a whole decimal number; -1 when it is not one. */
static long long parse_number(const char *s)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0)
		return -1;
	return n;
}

/* Load CONFIG or report why not; returns NULL and sets *rc. */
static struct config *load_config(const char *path, int *rc)
{
	char err[2048];
	struct config *cfg = config_load(path, err, sizeof(err));

	if (cfg == NULL) {
		edm_error("%s", err);
		*rc = access(path, R_OK) < 0 ? EX_NOINPUT : EX_CONFIG;
	}
	return cfg;
}

static int cmd_validate(int argc, char **argv)
{
	enum { OPT_NO_DNS = 256, OPT_OUT_DIR, OPT_NO_PROGRESS, OPT_RESOLVER };
	static const struct option longopts[] = {
		{ "no-dns", no_argument, NULL, OPT_NO_DNS },
		{ "out-dir", required_argument, NULL, OPT_OUT_DIR },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "resolver", required_argument, NULL, OPT_RESOLVER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct validate_opts o = { .progress = isatty(STDERR_FILENO) };
	struct config *cfg;
	int c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NO_DNS:
			o.no_dns = 1;
			break;
		case OPT_OUT_DIR:
			o.out_dir = optarg;
			break;
		case OPT_RESOLVER:
			o.resolver = optarg;
			break;
		case OPT_NO_PROGRESS:
			o.progress = 0;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'h':
			fputs(usage_validate, stdout);
			return 0;
		case ':':
			edm_error("validate: option '%s' needs a value (see edm validate --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("validate: unknown option '%s' (see edm validate --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		edm_error("validate: expected one CONFIG file, got %d arguments "
		          "(usage: edm validate [options] CONFIG)", argc - optind);
		return EX_USAGE;
	}
	if ((cfg = load_config(argv[optind], &rc)) == NULL)
		return rc;
	rc = validate_run(cfg, &o);
	config_free(cfg);
	return rc;
}

static int cmd_preview(int argc, char **argv)
{
	enum { OPT_ROW = 256, OPT_OUT, OPT_ALL, OPT_OUT_DIR, OPT_DATE };
	static const struct option longopts[] = {
		{ "row", required_argument, NULL, OPT_ROW },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "out-dir", required_argument, NULL, OPT_OUT_DIR },
		{ "date", required_argument, NULL, OPT_DATE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct preview_opts o = { .row = 1 };
	char *default_dir = NULL;
	struct config *cfg;
	long long n;
	int c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ROW:
			if ((n = parse_number(optarg)) < 1) {
				edm_error("preview: --row '%s': expected a row number from 1", optarg);
				return EX_USAGE;
			}
			o.row = (size_t)n;
			break;
		case OPT_OUT:
			o.out = optarg;
			break;
		case OPT_ALL:
			o.all = 1;
			break;
		case OPT_OUT_DIR:
			o.out_dir = optarg;
			break;
		case OPT_DATE:
			if ((n = parse_number(optarg)) < 1) {
				edm_error("preview: --date '%s': expected seconds since 1970", optarg);
				return EX_USAGE;
			}
			o.now = (time_t)n;
			break;
		case 'h':
			fputs(usage_preview, stdout);
			return 0;
		case ':':
			edm_error("preview: option '%s' needs a value (see edm preview --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("preview: unknown option '%s' (see edm preview --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		edm_error("preview: expected one CONFIG file, got %d arguments "
		          "(usage: edm preview [options] CONFIG)", argc - optind);
		return EX_USAGE;
	}
	if (o.all && o.out != NULL) {
		edm_error("preview: --all writes one file per row into --out-dir; --out is for one row");
		return EX_USAGE;
	}
	if ((cfg = load_config(argv[optind], &rc)) == NULL)
		return rc;
	if (o.all && o.out_dir == NULL) {
		if (files_mkdir_p(cfg->campaign.out_dir) < 0) {
			edm_error("%s: cannot create: %s", cfg->campaign.out_dir, strerror(errno));
			config_free(cfg);
			return EX_CANTCREAT;
		}
		if (asprintf(&default_dir, "%s/preview", cfg->campaign.out_dir) < 0) {
			config_free(cfg);
			return EX_OSERR;
		}
		o.out_dir = default_dir;
	}
	rc = preview_run(cfg, &o);
	free(default_dir);
	config_free(cfg);
	return rc;
}

static int cmd_dkim(int argc, char **argv)
{
	enum { OPT_DOMAIN = 256, OPT_SELECTOR, OPT_OUT, OPT_TYPE, OPT_BITS };
	static const struct option longopts[] = {
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "selector", required_argument, NULL, OPT_SELECTOR },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "bits", required_argument, NULL, OPT_BITS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *out = NULL, *type = "rsa";
	struct buf record = { 0 };
	char err[1024];
	long long bits = 2048;
	int c;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage_dkim, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "keygen") != 0) {
		edm_error("dkim: expected 'keygen' (see edm dkim --help)");
		return EX_USAGE;
	}
	argc--;
	argv++;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DOMAIN:
			domain = optarg;
			break;
		case OPT_SELECTOR:
			selector = optarg;
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case OPT_TYPE:
			type = optarg;
			break;
		case OPT_BITS:
			if ((bits = parse_number(optarg)) < 1024 || bits > 4096) {
				edm_error("dkim keygen: --bits '%s': expected 1024 to 4096 "
				          "(RFC 8301: at least 1024; 2048 recommended)", optarg);
				return EX_USAGE;
			}
			break;
		case 'h':
			fputs(usage_dkim, stdout);
			return 0;
		case ':':
			edm_error("dkim keygen: option '%s' needs a value", argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("dkim keygen: unknown option '%s' (see edm dkim --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (domain == NULL || selector == NULL || out == NULL || optind != argc) {
		edm_error("dkim keygen: --domain, --selector and --out are required "
		          "(see edm dkim --help)");
		return EX_USAGE;
	}
	if (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0) {
		edm_error("dkim keygen: --type '%s': expected rsa or ed25519", type);
		return EX_USAGE;
	}
	if (dkim_keygen(type, (int)bits, out, domain, selector, &record, err,
	                sizeof(err)) < 0) {
		edm_error("dkim keygen: %s", err);
		buf_free(&record);
		return EX_CANTCREAT; /* keygen fails on the file, in practice */
	}
	printf("Private key written to %s (mode 0600). Publish this TXT record:\n\n%s\n",
	       out, record.data);
	buf_free(&record);
	return 0;
}

static const char usage_send[] =
	"Usage: edm send [options] CONFIG\n"
	"\n"
	"Send the campaign: every row of the recipient list is checked (syntax,\n"
	"duplicate, suppression), rendered (templates, MIME, DKIM) and delivered\n"
	"through [smtp] (a relay, or each domain's MX hosts), shaped per\n"
	"recipient domain ([domain ...] sections and shipped defaults), with\n"
	"4xx replies retried and every outcome classified into a bounce category.\n"
	"\n"
	"Writes OUT_DIR/results.csv (one row per recipient; docs/reports.md),\n"
	"OUT_DIR/journal (for resume) and appends hard bounces (bad-mailbox,\n"
	"inactive-mailbox, bad-domain) to the suppression file. Run the same\n"
	"command again to resume after a stop or crash: recipients with a final\n"
	"outcome are never sent again.\n"
	"\n"
	"Options:\n"
	"  --dry-run         render every message, connect nowhere, write no journal\n"
	"  --test-to ADDR    send the first message(s) to ADDR instead (no journal)\n"
	"  --limit N         with --test-to: how many messages (default 1)\n"
	"  --no-wait         when only deferred or daily-capped recipients remain,\n"
	"                    exit 75 and print when to run again, instead of waiting\n"
	"  --force           resume although the list or config changed\n"
	"  --resolver H:P    DNS server for MX lookups (mx mode)\n"
	"  --no-progress     no progress line on a terminal\n"
	"  -q, --quiet       no summary\n"
	"  -h, --help        this text\n"
	"\n"
	"Environment: the [smtp] password_env variable (default EDM_SMTP_PASSWORD)\n"
	"holds the password or authorization code when username is set.\n"
	"\n"
	"Exit status: 0 every recipient final; 75 stopped, paused or waiting for\n"
	"retries (resume with the same command); 65 bad list or bounce rate over\n"
	"max_bounce_rate; 66 missing input; 73 cannot create output; 78 bad\n"
	"config, or the server refused our AUTH/TLS/sender.\n";

static int cmd_send(int argc, char **argv)
{
	enum { OPT_DRY = 256, OPT_TEST_TO, OPT_LIMIT, OPT_NO_WAIT, OPT_FORCE,
	       OPT_RESOLVER, OPT_NO_PROGRESS };
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "test-to", required_argument, NULL, OPT_TEST_TO },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "resolver", required_argument, NULL, OPT_RESOLVER },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct send_opts o = { 0 };
	struct config *cfg;
	char err[1024];
	long long n;
	int c, rc, no_progress = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DRY:
			o.dry_run = 1;
			break;
		case OPT_TEST_TO:
			o.test_to = optarg;
			break;
		case OPT_LIMIT:
			if ((n = parse_number(optarg)) < 1) {
				edm_error("send: --limit '%s': expected a positive number", optarg);
				return EX_USAGE;
			}
			o.limit = (size_t)n;
			break;
		case OPT_NO_WAIT:
			o.no_wait = 1;
			break;
		case OPT_FORCE:
			o.force = 1;
			break;
		case OPT_RESOLVER:
			o.resolver = optarg;
			break;
		case OPT_NO_PROGRESS:
			no_progress = 1;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'h':
			fputs(usage_send, stdout);
			return 0;
		case ':':
			edm_error("send: option '%s' needs a value", argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("send: unknown option '%s' (see edm send --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (optind != argc - 1) {
		edm_error("send: expected exactly one CONFIG file (see edm send --help)");
		return EX_USAGE;
	}
	if (o.limit && o.test_to == NULL) {
		edm_error("send: --limit goes with --test-to");
		return EX_USAGE;
	}
	if (o.dry_run && o.test_to) {
		edm_error("send: --dry-run and --test-to exclude each other");
		return EX_USAGE;
	}
	o.progress = !no_progress && !o.quiet && isatty(STDERR_FILENO);
	if ((cfg = config_load(argv[optind], err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return access(argv[optind], R_OK) == 0 ? EX_CONFIG : EX_NOINPUT;
	}
	rc = send_run(cfg, &o);
	config_free(cfg);
	return rc;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "validate", cmd_validate, usage_validate },
	{ "preview", cmd_preview, usage_preview },
	{ "dkim", cmd_dkim, usage_dkim },
	{ "send", cmd_send, usage_send },
	{ "classify", classify_cmd_main, classify_cmd_usage },
	{ "report", report_main, report_usage },
	{ "track", track_main, track_usage },
	{ "ingest", ingest_main, ingest_usage },
	{ "sink", sink_main, sink_usage },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *cmd;

	log_init();
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("edm %s\n", EDM_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			fputs(usage_main, stdout);
			return 0;
		}
		if ((cmd = find_command(argv[2])) == NULL) {
			edm_error("no command '%s' (see edm --help)", argv[2]);
			return EX_USAGE;
		}
		fputs(cmd->usage, stdout);
		return 0;
	}
	if ((cmd = find_command(argv[1])) == NULL) {
		edm_error("no command '%s' (see edm --help)", argv[1]);
		return EX_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
