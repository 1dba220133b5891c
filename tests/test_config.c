/*
 * test_config.c - the INI reader (campaign/ini.c) and the config schema
 * (campaign/config.c): grammar, file:line errors, defaults, paths, and that
 * docs/config.md documents every key of the schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cunit_main.h"
#include "ini.h"

static char err[2048];

static struct ini *parse(const char *text)
{
	return ini_parse(text, strlen(text), "t.ini", err, sizeof(err));
}

static const char *get(const struct ini *ini, const char *section, const char *key)
{
	for (size_t i = 0; i < ini->n; i++)
		if (strcmp(ini->entries[i].section, section) == 0 &&
		    strcmp(ini->entries[i].key, key) == 0)
			return ini->entries[i].value;
	return NULL;
}

static void test_ini_basic(void)
{
	struct ini *ini = parse("; comment\n# another\n[campaign]\nname = spring-sale\n"
	                        "recipients=list.csv\n  \n[validate]\ndns = yes\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "campaign", "name"), "spring-sale");
	CU_ASSERT_STRING_EQUAL(get(ini, "campaign", "recipients"), "list.csv");
	CU_ASSERT_STRING_EQUAL(get(ini, "validate", "dns"), "yes");
	CU_ASSERT_EQUAL(ini->n, 3);
	CU_ASSERT_EQUAL(ini->entries[0].line, 4);
	CU_ASSERT_EQUAL(ini->entries[2].line, 8);
	CU_ASSERT_EQUAL(ini->nsections, 2);
	ini_free(ini);
}

static void test_ini_quotes_and_comments(void)
{
	struct ini *ini = parse(
		"[m]\n"
		"from = \"Acme 商城 <news@acme.example>\"   ; the sender\n"
		"a = value ; inline comment\n"
		"b = Spring sale #2 ; a comment\n"
		"c = semi;colon#hash kept\n"
		"d = \"quoted ; not a comment\"\n"
		"e = \"esc \\\"q\\\" and \\\\ back\"\n"
		"f =\n"
		"g = \"\"\n"
		"h = ; only a comment\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "from"), "Acme 商城 <news@acme.example>");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "a"), "value");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "b"), "Spring sale #2");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "c"), "semi;colon#hash kept");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "d"), "quoted ; not a comment");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "e"), "esc \"q\" and \\ back");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "f"), "");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "g"), "");
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "h"), "");
	CU_ASSERT_EQUAL(ini->entries[0].quoted, 1);
	CU_ASSERT_EQUAL(ini->entries[1].quoted, 0);
	ini_free(ini);
}

/* A value far past libinih's 200-byte line limit survives intact. */
static void test_ini_long_utf8_line(void)
{
	size_t n = 0;
	char *text = malloc(20000), *want = malloc(20000);
	const char *han = "双十一大促销";

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	want[0] = '\0';
	for (int i = 0; i < 400; i++)
		strcat(want, han);
	n = (size_t)sprintf(text, "[message]\nsubject = %s\n", want);
	CU_ASSERT(strlen(want) > 5000);
	struct ini *ini = ini_parse(text, n, "t.ini", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "message", "subject"), want);
	ini_free(ini);
	free(text);
	free(want);
}

static void test_ini_continuation(void)
{
	struct ini *ini = parse("[message]\nheaders = X-Campaign: {{campaign}} ; c\n"
	                        "  X-Mailer: edm\n\tX-Tag: a;b\n\nnext = 1\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "message", "headers"),
	                       "X-Campaign: {{campaign}}\nX-Mailer: edm\nX-Tag: a;b");
	CU_ASSERT_STRING_EQUAL(get(ini, "message", "next"), "1");
	CU_ASSERT_EQUAL_FATAL(ini->entries[0].nlines, 3);
	CU_ASSERT_EQUAL(ini->entries[0].lines[0], 2);
	CU_ASSERT_EQUAL(ini->entries[0].lines[1], 3);
	CU_ASSERT_EQUAL(ini->entries[0].lines[2], 4);
	CU_ASSERT(ini->entries[0].continued);
	CU_ASSERT(!ini->entries[1].continued);
	ini_free(ini);
	/* an empty first line: the first part is on the continuation line */
	ini = parse("[m]\nheaders =\n  A: 1\n  ; comment\n  B: 2\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "m", "headers"), "A: 1\nB: 2");
	CU_ASSERT_EQUAL_FATAL(ini->entries[0].nlines, 2);
	CU_ASSERT_EQUAL(ini->entries[0].lines[0], 3);
	CU_ASSERT_EQUAL(ini->entries[0].lines[1], 5);
	ini_free(ini);
}

static void test_ini_crlf_bom_sub(void)
{
	struct ini *ini = parse("\xEF\xBB\xBF[campaign]\r\nname = x\r\n[dkim ed25519]\r\nselector = s1\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
	CU_ASSERT_STRING_EQUAL(get(ini, "campaign", "name"), "x");
	CU_ASSERT_STRING_EQUAL(ini->entries[1].section, "dkim");
	CU_ASSERT_STRING_EQUAL(ini->entries[1].sub, "ed25519");
	CU_ASSERT_STRING_EQUAL(ini->entries[1].value, "s1");
	ini_free(ini);
}

/* Each error names file:line and what is wrong. */
static void expect_error(const char *text, const char *where, const char *what)
{
	struct ini *ini = parse(text);
	CU_ASSERT_PTR_NULL(ini);
	ini_free(ini);
	if (strstr(err, where) == NULL || strstr(err, what) == NULL) {
		fprintf(stderr, "\n  error was: %s\n  wanted: %s ... %s\n", err, where, what);
		CU_FAIL("error message");
	}
}

static void test_ini_errors(void)
{
	expect_error("name = x\n", "t.ini:1:", "outside any section");
	expect_error("[a]\nk = 1\nk = 2\n", "t.ini:3:", "given twice");
	expect_error("[a]\n[b]\n[a]\n", "t.ini:3:", "section [a] given twice");
	expect_error("[a]\njust words\n", "t.ini:2:", "expected 'key = value'");
	expect_error("[a\n", "t.ini:1:", "without ']'");
	expect_error("[a]\nk = \"open\n", "t.ini:2:", "unterminated");
	expect_error("[a]\nk = \"x\" y\n", "t.ini:2:", "after the closing quote");
	expect_error("[a]\nk = \xff\xfe\n", "t.ini:2:", "UTF-8");
	expect_error("[a]\n = v\n", "t.ini:2:", "missing key");
	expect_error("[a]\nbad key = v\n", "t.ini:2:", "invalid key");
}

/* Write a file under a fresh temp dir; returns its path (static buffer). */
static char tmpdir[256];

static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_config_defaults_and_paths(void)
{
	const char *p = write_file("spring.ini", "[campaign]\nrecipients = list.csv\n");
	struct config *cfg = config_load(p, err, sizeof(err));
	char want[600];

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.name, "spring");
	snprintf(want, sizeof(want), "%s/list.csv", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.recipients, want);
	snprintf(want, sizeof(want), "%s/spring.out", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.out_dir, want);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.email_column, "email");
	CU_ASSERT_STRING_EQUAL(cfg->campaign.encoding, "utf-8");
	CU_ASSERT_EQUAL(cfg->campaign.delimiter, ',');
	CU_ASSERT_PTR_NULL(cfg->campaign.suppression);
	CU_ASSERT_EQUAL(cfg->validate.dns, 1);
	CU_ASSERT_EQUAL(cfg->validate.role_accounts, CFG_KEEP);
	CU_ASSERT_EQUAL(cfg->validate.disposable, CFG_REJECT);
	CU_ASSERT_EQUAL(cfg->validate.typos, CFG_REJECT);
	CU_ASSERT_PTR_NULL(cfg->validate.resolver);
	config_free(cfg);
}

static void test_config_full(void)
{
	const char *p = write_file("full.ini",
		"[campaign]\n"
		"name = 双十一-sale\n"
		"recipients = /data/list.csv\n"
		"email_column = E-Mail\n"
		"encoding = gbk\n"
		"delimiter = tab\n"
		"suppression = sup/suppressed.csv\n"
		"out_dir = out\n"
		"[validate]\n"
		"dns = no\n"
		"resolver = 127.0.0.1:5353\n"
		"role_accounts = reject\n"
		"disposable = keep\n"
		"typos = keep\n"
		"dns_timeout_ms = 500\n");
	struct config *cfg = config_load(p, err, sizeof(err));
	char want[600];

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.name, "双十一-sale");
	CU_ASSERT_STRING_EQUAL(cfg->campaign.recipients, "/data/list.csv");
	CU_ASSERT_STRING_EQUAL(cfg->campaign.email_column, "E-Mail");
	CU_ASSERT_STRING_EQUAL(cfg->campaign.encoding, "gbk");
	CU_ASSERT_EQUAL(cfg->campaign.delimiter, '\t');
	snprintf(want, sizeof(want), "%s/sup/suppressed.csv", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.suppression, want);
	snprintf(want, sizeof(want), "%s/out", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->campaign.out_dir, want);
	CU_ASSERT_EQUAL(cfg->validate.dns, 0);
	CU_ASSERT_STRING_EQUAL(cfg->validate.resolver, "127.0.0.1:5353");
	CU_ASSERT_EQUAL(cfg->validate.role_accounts, CFG_REJECT);
	CU_ASSERT_EQUAL(cfg->validate.disposable, CFG_KEEP);
	CU_ASSERT_EQUAL(cfg->validate.typos, CFG_KEEP);
	CU_ASSERT_EQUAL(cfg->validate.dns_timeout_ms, 500);
	snprintf(want, sizeof(want), "%s:11", p);
	CU_ASSERT_STRING_EQUAL(config_where(cfg, "validate", "resolver"), want);
	config_free(cfg);
}

static void expect_config_error(const char *text, const char *what)
{
	const char *p = write_file("bad.ini", text);
	struct config *cfg = config_load(p, err, sizeof(err));

	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	if (strstr(err, what) == NULL) {
		fprintf(stderr, "\n  error was: %s\n  wanted: %s\n", err, what);
		CU_FAIL("config error message");
	}
}

static void test_config_errors(void)
{
	expect_config_error("[campaign]\nrecipent = l.csv\n",
	                    "bad.ini:2: unknown key 'recipent' in [campaign] (did you mean 'recipients'?)");
	expect_config_error("[campaign]\nrecipients = l.csv\n[valdate]\n",
	                    "bad.ini:3: unknown section [valdate] (did you mean [validate]?)");
	expect_config_error("[campaign]\nname = x\n", "recipients is required");
	expect_config_error("[campaign]\nrecipients = l.csv\n[validate]\ndns = maybe\n",
	                    "bad.ini:4: dns: 'maybe' is not yes or no");
	expect_config_error("[campaign]\nrecipients = l.csv\n[validate]\ntypos = drop\n",
	                    "bad.ini:4: typos: 'drop' must be keep or reject");
	expect_config_error("[campaign]\nrecipients = l.csv\ndelimiter = x\n",
	                    "bad.ini:3: delimiter:");
	expect_config_error("[campaign]\nrecipients = l.csv\nname = a/b\n",
	                    "bad.ini:3: name:");
	expect_config_error("[campaign]\nrecipients = l.csv\n[validate]\ndns_timeout_ms = 5\n",
	                    "bad.ini:4: dns_timeout_ms: '5' must be a whole number from 100 to 60000");
	expect_config_error("[campaign]\nrecipients = l.csv\npassword = hunter2\n",
	                    "bad.ini:3: [campaign] password: secrets never live in the config file");
	expect_config_error("[campaign]\nrecipients = l.csv\nname = x\n  out_dir = o\n",
	                    "bad.ini:4: this indented line continues 'name' (line 3)");
	expect_config_error("[campaign]\nrecipients = l.csv\nencoding = gbkk\n",
	                    "bad.ini:3: encoding: 'gbkk' is not an encoding iconv knows");
	expect_config_error("[campaign]\nrecipients = l.csv\n[message]\nfrom = a@b.example\n",
	                    "bad.ini:3: [message] subject is required");
	expect_config_error("[campaign]\nrecipients = a.csv\nrecipients = b.csv\n",
	                    "bad.ini:3: key 'recipients' given twice in [campaign] (first at line 2)");
	/* The secret must not be echoed back in the message. */
	CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
	expect_config_error("[campaign]\nrecipients = l.csv\n[dkim ed25519]\nselector = s\n",
	                    "bad.ini:3: [dkim ed25519] needs domain");
	expect_config_error("[campaign]\nrecipients = l.csv\n[validate extra]\n",
	                    "bad.ini:3: unknown section [validate extra]");
	expect_config_error("[campaign]\nrecipients = l.csv\n[message]\nfrom = a@b.example\n"
	                    "subject = s\n", "[message] needs a body");
	expect_config_error("[campaign]\nrecipients = l.csv\n[message]\nsubject = s\ntext = t\n",
	                    "[message] from is required");
	expect_config_error("[campaign]\nrecipients = l.csv\n[message]\nsubjet = s\n",
	                    "bad.ini:4: unknown key 'subjet' in [message] (did you mean 'subject'?)");

	CU_ASSERT_PTR_NULL(config_load("/nonexistent/edm.ini", err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/edm.ini"));
}

static void test_config_message_dkim(void)
{
	const char *p = write_file("msg.ini",
		"[campaign]\nrecipients = l.csv\n"
		"[message]\n"
		"from = \"Acme 商城 <news@acme.example>\"\n"
		"subject = {{first_name|朋友}}, 双十一 50% off\n"
		"text = body.txt\n"
		"attachments = terms.pdf , img/logo.png,/abs/x.zip\n"
		"headers = X-Campaign: {{campaign}}\n"
		"  X-Batch: 7\n"
		"strict_variables = yes\n"
		"[dkim]\ndomain = acme.example\nselector = s2026\nkey = keys/rsa.pem\n"
		"[dkim ed25519]\ndomain = acme.example\nselector = e2026\nkey = /k/ed.pem\n");
	struct config *cfg = config_load(p, err, sizeof(err));
	char want[600];

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT(cfg->message.present);
	CU_ASSERT_STRING_EQUAL(cfg->message.from, "Acme 商城 <news@acme.example>");
	CU_ASSERT_STRING_EQUAL(cfg->message.subject, "{{first_name|朋友}}, 双十一 50% off");
	CU_ASSERT_STRING_EQUAL(cfg->message.headers, "X-Campaign: {{campaign}}\nX-Batch: 7");
	CU_ASSERT_EQUAL(cfg->message.strict_variables, 1);
	CU_ASSERT_PTR_NULL(cfg->message.html);
	CU_ASSERT_EQUAL_FATAL(cfg->message.nattachments, 3);
	snprintf(want, sizeof(want), "%s/terms.pdf", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->message.attachments[0], want);
	snprintf(want, sizeof(want), "%s/img/logo.png", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->message.attachments[1], want);
	CU_ASSERT_STRING_EQUAL(cfg->message.attachments[2], "/abs/x.zip");
	CU_ASSERT_EQUAL_FATAL(cfg->ndkim, 2);
	CU_ASSERT_STRING_EQUAL(cfg->dkim[0].name, "");
	CU_ASSERT_STRING_EQUAL(cfg->dkim[0].selector, "s2026");
	snprintf(want, sizeof(want), "%s/keys/rsa.pem", tmpdir);
	CU_ASSERT_STRING_EQUAL(cfg->dkim[0].key, want);
	CU_ASSERT_STRING_EQUAL(cfg->dkim[1].name, "ed25519");
	CU_ASSERT_STRING_EQUAL(cfg->dkim[1].selector, "e2026");
	CU_ASSERT_STRING_EQUAL(cfg->dkim[1].key, "/k/ed.pem");
	CU_ASSERT_EQUAL(config_line(cfg, "message", "subject"), 5);
	CU_ASSERT_EQUAL(config_line(cfg, "message", "reply_to"), 0);
	config_free(cfg);
}

/* docs/config.md must document every key the schema accepts. */
/* [smtp], [domain ...], [provider ...]: typed values, defaults, errors. */
static void test_config_smtp(void)
{
	const char *p = write_file("smtp.ini",
		"[campaign]\nrecipients = l.csv\n"
		"[smtp]\n"
		"relay = smtp.qq.com:465, [::1]:587, backup.example\n"
		"username = news@acme.example\n"
		"password_env = QQ_AUTH_CODE\n"
		"source_ips = 127.0.0.2=mail1.acme.example, 127.0.0.3=mail2.acme.example\n"
		"max_rate = 600/m\n"
		"retry_for = 2d\n"
		"timeout_connect = 1500ms\n"
		"max_bounce_rate = 5%\n"
		"[domain gmail.com GoogleMail.com]\nconnections = 3\nrate = 20/s\n"
		"[domain *.edu]\ndaily_limit = 1000\n"
		"[provider google]\nmx = *.google.com *.googlemail.com\nconnections = 20\n");
	struct config *cfg = config_load(p, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	check(cfg != NULL, __LINE__, "%s", err);
	CU_ASSERT_EQUAL(cfg->smtp.mode, CFG_MODE_RELAY);
	CU_ASSERT_EQUAL_FATAL(cfg->smtp.nrelays, 3);
	CU_ASSERT_STRING_EQUAL(cfg->smtp.relays[0].host, "smtp.qq.com");
	CU_ASSERT_EQUAL(cfg->smtp.relays[0].port, 465);
	CU_ASSERT_EQUAL(cfg->smtp.relays[0].tls, CFG_TLS_IMPLICIT);  /* RFC 8314 */
	CU_ASSERT_STRING_EQUAL(cfg->smtp.relays[1].host, "::1");
	CU_ASSERT_EQUAL(cfg->smtp.relays[1].port, 587);
	CU_ASSERT_EQUAL(cfg->smtp.relays[1].tls, CFG_TLS_STARTTLS);
	CU_ASSERT_EQUAL(cfg->smtp.relays[2].port, 25);
	CU_ASSERT_EQUAL(cfg->smtp.tls_verify, -1);                   /* unset */
	CU_ASSERT_EQUAL_FATAL(cfg->smtp.nsource_ips, 2);
	CU_ASSERT_STRING_EQUAL(cfg->smtp.source_ips[1].ip, "127.0.0.3");
	CU_ASSERT_STRING_EQUAL(cfg->smtp.source_ips[1].helo, "mail2.acme.example");
	CU_ASSERT_DOUBLE_EQUAL(cfg->smtp.max_rate, 10.0, 1e-9);
	CU_ASSERT_EQUAL(cfg->smtp.retry_for, 2u * 86400 * 1000);
	CU_ASSERT_EQUAL(cfg->smtp.timeout_connect, 1500);
	CU_ASSERT_EQUAL(cfg->smtp.timeout_dot, 600000);              /* RFC 1047 */
	CU_ASSERT_EQUAL(cfg->smtp.retry_first, 300000);              /* greylisting */
	CU_ASSERT_DOUBLE_EQUAL(cfg->smtp.max_bounce_rate, 0.05, 1e-9);
	CU_ASSERT_EQUAL_FATAL(cfg->ndomains, 2);
	CU_ASSERT_EQUAL_FATAL(cfg->domains[0].npatterns, 2);
	CU_ASSERT_STRING_EQUAL(cfg->domains[0].patterns[1], "googlemail.com");
	CU_ASSERT_EQUAL(cfg->domains[0].connections, 3);
	CU_ASSERT_DOUBLE_EQUAL(cfg->domains[0].rate, 20.0, 1e-9);
	CU_ASSERT_EQUAL(cfg->domains[0].messages_per_connection, CFG_UNSET);
	CU_ASSERT(cfg->domains[0].burst < 0);
	CU_ASSERT_EQUAL(cfg->domains[1].daily_limit, 1000);
	CU_ASSERT_EQUAL_FATAL(cfg->nproviders, 1);
	CU_ASSERT_EQUAL(cfg->providers[0].npatterns, 2);
	CU_ASSERT_EQUAL(cfg->providers[0].connections, 20);
	config_free(cfg);

	/* mx mode by default when no relay is named; tls opportunistic */
	p = write_file("mx.ini", "[campaign]\nrecipients = l.csv\n[smtp]\nmx_port = 2525\n");
	cfg = config_load(p, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->smtp.mode, CFG_MODE_MX);
	CU_ASSERT_EQUAL(cfg->smtp.tls, CFG_TLS_OPPORTUNISTIC);
	CU_ASSERT_EQUAL(cfg->smtp.mx_port, 2525);
	config_free(cfg);

	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nmode = carrier-pigeon\n",
	                    "bad.ini:4: [smtp] mode: 'carrier-pigeon' must be relay");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nrelay = host:99999\n",
	                    "bad.ini:4: [smtp] relay: 'host:99999' must be host:port");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nmode = relay\n",
	                    "bad.ini:3: [smtp] mode = relay needs relay = host:port");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\ntls = maybe\n",
	                    "bad.ini:4: [smtp] tls: 'maybe' must be starttls");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nsource_ips = 1.2.3.4\n",
	                    "bad.ini:4: [smtp] source_ips: '1.2.3.4' must be IP=helo.name");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nmax_rate = fast\n",
	                    "bad.ini:4: max_rate: 'fast' is not a rate");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\ntimeout_dot = 60s\n",
	                    "bad.ini:4: timeout_dot: '60s' must be a duration from 600s");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nretry_for = soon\n",
	                    "bad.ini:4: retry_for: 'soon' must be a duration");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\nmax_bounce_rate = 150%\n",
	                    "bad.ini:4: max_bounce_rate: '150%' must be a percentage");
	expect_config_error("[campaign]\nrecipients = l.csv\n[smtp]\npassword_env = X\n",
	                    "bad.ini:4: [smtp] password_env is set but username is not");
	expect_config_error("[campaign]\nrecipients = l.csv\n[domain]\nconnections = 2\n",
	                    "bad.ini:3: [domain] needs the recipient domains");
	expect_config_error("[campaign]\nrecipients = l.csv\n[domain g*mail.com]\n",
	                    "bad.ini:3: [domain g*mail.com]: 'g*mail.com' is not a domain pattern");
	expect_config_error("[campaign]\nrecipients = l.csv\n[provider google]\nconnections = 2\n",
	                    "bad.ini:3: [provider google] needs mx =");
	expect_config_error("[campaign]\nrecipients = l.csv\n[domain qq.com]\nconections = 2\n",
	                    "bad.ini:4: unknown key 'conections' in [domain] (did you mean 'connections'?)");
}

static void test_config_documented(void)
{
	FILE *f = fopen(EDM_FIXTURES "/../../docs/config.md", "r");
	static char doc[200000];
	const char *section, *key;
	size_t n, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
	/* every key of the schema table itself, not a copy of it */
	for (i = 0; config_schema_key(i, &section, &key) == 0; i++) {
		char want[64], head[64];
		snprintf(want, sizeof(want), "| `%s` |", key);
		snprintf(head, sizeof(head), "## [%s]", section);
		const char *sec = strstr(doc, head);
		if (sec == NULL || strstr(sec, want) == NULL) {
			fprintf(stderr, "\n  docs/config.md lacks %s under %s\n", want, head);
			CU_FAIL("undocumented key");
		}
	}
	CU_ASSERT(i >= 31); /* the table is really there */
}

static const struct test_case tests[] = {
	{ "ini_basic", test_ini_basic },
	{ "config_smtp", test_config_smtp },
	{ "ini_quotes_and_comments", test_ini_quotes_and_comments },
	{ "ini_long_utf8_line", test_ini_long_utf8_line },
	{ "ini_continuation", test_ini_continuation },
	{ "ini_crlf_bom_sub", test_ini_crlf_bom_sub },
	{ "ini_errors", test_ini_errors },
	{ "config_defaults_and_paths", test_config_defaults_and_paths },
	{ "config_full", test_config_full },
	{ "config_errors", test_config_errors },
	{ "config_message_dkim", test_config_message_dkim },
	{ "config_documented", test_config_documented },
	{ NULL, NULL },
};

int main(void)
{
	char tmpl[] = "/tmp/edm-test-config-XXXXXX";
	int rc;

	if (mkdtemp(tmpl) == NULL)
		return 125;
	/* realpath: config.c makes paths absolute via realpath too. */
	if (realpath(tmpl, tmpdir) == NULL)
		return 125;
	rc = test_run("config", tests);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
