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
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
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
	"  help       show the help of a command (edm help validate)\n"
	"\n"
	"Options:\n"
	"  -h, --help      this text\n"
	"  -V, --version   print the version\n"
	"\n"
	"CONFIG is the campaign's INI file; docs/config.md lists every key.\n"
	"preview, send, track and report are planned and not in this version.\n"
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
	while ((c = getopt_long(argc, argv, "+:qh", longopts, NULL)) != -1) {
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

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "validate", cmd_validate, usage_validate },
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
		if (strcmp(argv[1], "preview") == 0 || strcmp(argv[1], "send") == 0 ||
		    strcmp(argv[1], "track") == 0 || strcmp(argv[1], "report") == 0)
			edm_error("'%s' is planned but not in this version of edm", argv[1]);
		else
			edm_error("no command '%s' (see edm --help)", argv[1]);
		return EX_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
