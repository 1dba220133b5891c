/*
 * classify_cmd.c - `edm classify [--rules FILE] [--explain] [REPLY...]`.
 *
 * Classifies each REPLY argument, or without arguments each non-blank line
 * of stdin, with engine/classify.c (the user's rules file first, then the
 * shipped rules) and prints one CSV record per reply:
 *     code,enhanced,class,category,reply[,flags,rule]
 * (RFC 4180: a field is quoted when it holds a comma, quote, CR or LF or
 * starts or ends with a space; quotes are doubled). code is empty when the
 * reply had none (code 0); reply is the text after the codes.
 *
 * It does not: read DSN files (pipe their Diagnostic-Code lines in), load
 * the campaign config (pass its bounce_rules with --rules), or guard the
 * CSV against spreadsheet formulas (it is a diagnostic, not a report).
 */
#include "classify_cmd.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "classify.h"

const char classify_cmd_usage[] =
	"Usage: edm classify [--rules FILE] [--explain] [REPLY...]\n"
	"\n"
	"Say what SMTP replies mean to edm: the class (delivered, soft = retry,\n"
	"hard = give up) and the bounce category, by the rules `edm send` uses.\n"
	"Each REPLY argument is one reply; without arguments, each line of\n"
	"standard input is one. A reply is written as servers write it:\n"
	"\"550-5.1.1 The email account ... does not exist\", \"550 Mailbox not\n"
	"found\"; the reply code and the enhanced code may be left out (no code\n"
	"= no reply from the server, code 0). An argument of several lines is\n"
	"one multi-line reply.\n"
	"\n"
	"Prints CSV with the header code,enhanced,class,category,reply.\n"
	"\n"
	"Options:\n"
	"  --rules FILE   try the rules in FILE before the shipped ones (the\n"
	"                 format is in docs/bounces.md; the config's\n"
	"                 [smtp] bounce_rules is such a file)\n"
	"  --explain      add the columns flags (slowdown, greylist, quota) and rule\n"
	"                 (the FILE:LINE that matched, or enhanced-code /\n"
	"                 reply-code when no rule did)\n"
	"  -h, --help     this text\n"
	"\n"
	"Examples:\n"
	"  edm classify '550-5.1.1 The email account that you tried to reach does not exist'\n"
	"  edm classify --explain '550 Ip frequency limited'\n"
	"  edm classify --rules my_rules.txt < replies.txt\n"
	"  sed -n 's/^Diagnostic-Code: *smtp; *//p' bounces/*.eml | edm classify\n"
	"\n"
	"Exit status: 0 done; 64 a usage error; 66 the rules file is missing;\n"
	"74 cannot read stdin or write stdout; 78 the rules file has an error\n"
	"(reported as FILE:LINE: what).\n";

static int split_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int split_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of an enhanced code at p[0..len) ("5.1.1": class 2/4/5, subject
 * and detail of 1-3 digits) followed by a blank or the end; 0 if none. */
static size_t split_enhanced_len(const char *p, size_t len)
{
	size_t i = 0, n;
	int part;

	if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') ||
	    p[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && split_is_digit(p[i]) && n < 3; n++)
			i++;
		if (n == 0 || (i < len && split_is_digit(p[i])))
			return 0;
		if (part == 0) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len || split_is_blank(p[i]) ? i : 0;
}

/* 3 when p[0..len) starts with a reply code ("550" then '-', a blank or
 * the end), else 0. */
static size_t split_code_len(const char *p, size_t len)
{
	if (len < 3 || !split_is_digit(p[0]) || !split_is_digit(p[1]) ||
	    !split_is_digit(p[2]))
		return 0;
	if (len > 3 && p[3] != '-' && !split_is_blank(p[3]))
		return 0;
	return 3;
}

char *classify_cmd_split(const char *reply, int *code,
                         char enhanced[CLASSIFY_ENHANCED_MAX])
{
	const char *p = reply, *nl, *s;
	size_t len, n, outlen = 0;
	char first_code[4] = "";
	int first = 1;
	char *out;

	*code = 0;
	enhanced[0] = '\0';
	if ((out = malloc(strlen(reply) + 1)) == NULL)
		return NULL;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		s = p;
		p += len + (nl != NULL);
		while (len > 0 && split_is_blank(*s)) {
			s++;
			len--;
		}
		while (len > 0 && split_is_blank(s[len - 1]))
			len--;
		if (len == 0)
			continue;
		/* the reply code: read on the first line, dropped when a later
		 * line repeats it */
		n = split_code_len(s, len);
		if (n > 0 && (first || memcmp(s, first_code, 3) == 0)) {
			if (first) {
				memcpy(first_code, s, 3);
				*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 +
				        (s[2] - '0');
			}
			n += n < len; /* the '-' or blank after it */
			s += n;
			len -= n;
			while (len > 0 && split_is_blank(*s)) {
				s++;
				len--;
			}
		}
		/* the enhanced code, likewise */
		n = split_enhanced_len(s, len);
		if (n > 0 && n < CLASSIFY_ENHANCED_MAX &&
		    (first ? 1 : (strlen(enhanced) == n &&
		                  memcmp(s, enhanced, n) == 0))) {
			if (first) {
				memcpy(enhanced, s, n);
				enhanced[n] = '\0';
			}
			s += n;
			len -= n;
			while (len > 0 && split_is_blank(*s)) {
				s++;
				len--;
			}
		}
		first = 0;
		if (len == 0)
			continue;
		if (outlen > 0)
			out[outlen++] = ' ';
		memcpy(out + outlen, s, len);
		outlen += len;
	}
	out[outlen] = '\0';
	return out;
}

/* One CSV field, quoted when RFC 4180 needs it (or a leading/trailing
 * space would be lost by a reader that trims). */
static void csv_field(FILE *out, const char *s, int last)
{
	size_t len = strlen(s);

	if (strpbrk(s, ",\"\r\n") != NULL ||
	    (len > 0 && (s[0] == ' ' || s[len - 1] == ' '))) {
		fputc('"', out);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	} else {
		fputs(s, out);
	}
	fputc(last ? '\n' : ',', out);
}

/* Classify one reply and print its record. 0, or -1 on ENOMEM. */
static int classify_one(const struct classifier *c, const char *reply,
                        int explain)
{
	char enhanced[CLASSIFY_ENHANCED_MAX], codebuf[16];
	struct classify_result r;
	const char *flags;
	char flagbuf[40];
	char *text;
	int code;

	if ((text = classify_cmd_split(reply, &code, enhanced)) == NULL)
		return -1;
	classify_reply(c, code, enhanced, text, &r);
	if (code > 0)
		snprintf(codebuf, sizeof(codebuf), "%d", code);
	else
		codebuf[0] = '\0';
	csv_field(stdout, codebuf, 0);
	csv_field(stdout, enhanced, 0);
	csv_field(stdout, bounce_class_name(r.cls), 0);
	csv_field(stdout, bounce_category_name(r.category), 0);
	csv_field(stdout, text, !explain);
	if (explain) {
		snprintf(flagbuf, sizeof(flagbuf), "%s%s%s%s%s",
		         r.slowdown ? "slowdown" : "",
		         r.slowdown && (r.greylist || r.quota) ? "," : "",
		         r.greylist ? "greylist" : "",
		         r.greylist && r.quota ? "," : "",
		         r.quota ? "quota" : "");
		flags = flagbuf[0] ? flagbuf : "-";
		csv_field(stdout, flags, 0);
		csv_field(stdout, r.rule, 1);
	}
	free(text);
	return 0;
}

/* Classify every non-blank line of stdin. 0 or a sysexits code. */
static int classify_stdin(const struct classifier *c, int explain)
{
	char *line = NULL;
	size_t cap = 0, i;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		for (i = 0; i < (size_t)n && (split_is_blank(line[i]) ||
		                              line[i] == '\n'); i++)
			;
		if (i == (size_t)n)
			continue;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (classify_one(c, line, explain) < 0) {
			edm_error("classify: out of memory");
			rc = EX_OSERR;
			break;
		}
	}
	if (rc == 0 && ferror(stdin)) {
		edm_error("classify: cannot read standard input: %s",
		          strerror(errno));
		rc = EX_IOERR;
	}
	free(line);
	return rc;
}

int classify_cmd_main(int argc, char **argv)
{
	enum { OPT_RULES = 256, OPT_EXPLAIN };
	static const struct option longopts[] = {
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "explain", no_argument, NULL, OPT_EXPLAIN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rules = NULL;
	struct classifier *c;
	char err[1024];
	int ch, explain = 0, rc = 0;

	opterr = 0;
	optind = 0; /* glibc: a full reset, so the function can run twice */
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_RULES:
			rules = optarg;
			break;
		case OPT_EXPLAIN:
			explain = 1;
			break;
		case 'h':
			fputs(classify_cmd_usage, stdout);
			return 0;
		case ':':
			edm_error("classify: option '%s' needs a value (see edm classify --help)",
			          argv[optind - 1]);
			return EX_USAGE;
		default:
			edm_error("classify: unknown option '%s'", argv[optind - 1]);
			fputs(classify_cmd_usage, stderr);
			return EX_USAGE;
		}
	}
	if ((c = classify_new(rules, err, sizeof(err))) == NULL) {
		edm_error("%s", err);
		return rules != NULL && access(rules, R_OK) < 0 ? EX_NOINPUT
		                                                : EX_CONFIG;
	}
	fputs(explain ? "code,enhanced,class,category,reply,flags,rule\n"
	              : "code,enhanced,class,category,reply\n", stdout);
	if (optind < argc) {
		for (int i = optind; i < argc && rc == 0; i++) {
			if (classify_one(c, argv[i], explain) < 0) {
				edm_error("classify: out of memory");
				rc = EX_OSERR;
			}
		}
	} else {
		rc = classify_stdin(c, explain);
	}
	classify_free(c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		edm_error("classify: cannot write standard output: %s",
		          strerror(errno));
		if (rc == 0)
			rc = EX_IOERR;
	}
	return rc;
}
