/*
 * fuzz_config.c - libFuzzer harness for the INI reader and the campaign
 * config (campaign/ini.h, campaign/config.h).
 *
 * Input: a campaign file. It is parsed with ini_parse() directly, then
 * written to DIR/c.ini (a private directory, fz_tempdir()) and loaded with
 * config_load() as `edm` would (config.c only names files; it opens none).
 * Properties of ini_parse(): NULL comes with "file:line: ..."; every entry
 * has a key of [A-Za-z0-9_.-], a section, valid UTF-8 without NUL in its
 * value, lines numbered from 1 and increasing within a value (one per
 * "\n"-joined part, none before the key's line), at or after its
 * section's line.
 * Properties of config_load(): NULL comes with a message naming the file;
 * a config has an absolute recipients path and out_dir, the dir it was
 * loaded from, and config_line()/config_lines() find every key written
 * (the first eight); config_free() releases everything (LeakSanitizer
 * checks).
 */
#include "fuzz.h"

#include "config.h"
#include "ini.h"
#include "utf8.h"

#include <unistd.h>

static char dir[256], path[300];

/* Remove the temp directory at exit. */
static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void check_ini(const struct ini *ini)
{
	for (size_t i = 0; i < ini->n; i++) {
		const struct ini_entry *e = &ini->entries[i];
		size_t vl = strlen(e->value), parts = 1;

		FZ_CHECK(e->key[0] != '\0', "empty key");
		for (const char *k = e->key; *k; k++)
			FZ_CHECK((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
			         (*k >= '0' && *k <= '9') || *k == '_' ||
			         *k == '.' || *k == '-', "key [%s]", e->key);
		FZ_CHECK(e->section != NULL && e->section[0] != '\0' &&
		         e->sub != NULL, "entry without a section");
		FZ_CHECK(utf8_check((const unsigned char *)e->value, vl) == vl,
		         "value not UTF-8");
		for (size_t j = 0; j < vl; j++)
			parts += e->value[j] == '\n';
		FZ_CHECK(e->nlines == parts, "%zu lines for %zu parts",
		         e->nlines, parts);
		FZ_CHECK(e->line >= 1 && e->line >= e->section_line,
		         "line %u, section line %u", e->line, e->section_line);
		/* an empty value on the key line leaves only the
		 * continuation lines as parts */
		FZ_CHECK(e->nlines == 0 || e->lines[0] >= e->line,
		         "first part line %u, key line %u", e->lines[0], e->line);
		for (size_t j = 1; j < e->nlines; j++)
			FZ_CHECK(e->lines[j] > e->lines[j - 1], "part lines");
		FZ_CHECK(e->continued || e->nlines <= 1, "%zu parts, not "
		         "continued", e->nlines);
	}
	for (size_t i = 0; i < ini->nsections; i++)
		FZ_CHECK(ini->sections[i].name[0] != '\0' &&
		         ini->sections[i].line >= 1, "section %zu", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *section, *key;
	struct config *cfg;
	struct ini *ini;
	char err[1024];
	FILE *f;

	if (dir[0] == '\0') {
		char *real;

		fz_tempdir(dir, sizeof dir, "config");
		/* config.c makes its dir absolute with realpath() */
		FZ_CHECK((real = realpath(dir, NULL)) != NULL, "realpath");
		snprintf(dir, sizeof dir, "%s", real);
		free(real);
		snprintf(path, sizeof path, "%s/c.ini", dir);
		atexit(cleanup);
	}

	err[0] = '\0';
	ini = ini_parse((const char *)data, size, "c.ini", err, sizeof err);
	if (ini == NULL)
		FZ_CHECK(strncmp(err, "c.ini:", 6) == 0, "ini error [%s]", err);
	else
		check_ini(ini);
	ini_free(ini);

	f = fopen(path, "wb");
	FZ_CHECK(f != NULL, "fopen %s", path);
	FZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "write");
	err[0] = '\0';
	cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		FZ_CHECK(strstr(err, "c.ini") != NULL, "config error [%s]", err);
		return 0;
	}
	FZ_CHECK(cfg->campaign.recipients != NULL &&
	         cfg->campaign.recipients[0] == '/', "recipients [%s]",
	         cfg->campaign.recipients ? cfg->campaign.recipients : "NULL");
	FZ_CHECK(cfg->campaign.out_dir != NULL &&
	         cfg->campaign.out_dir[0] == '/', "out_dir");
	FZ_CHECK(cfg->dir != NULL && strcmp(cfg->dir, dir) == 0, "dir [%s]",
	         cfg->dir ? cfg->dir : "NULL");
	FZ_CHECK(cfg->ndkim <= CONFIG_MAX_DKIM, "ndkim %zu", cfg->ndkim);
	/* every written key has a line (a few: the lookups are linear and
	 * would otherwise dominate the run time) */
	for (size_t i = 0; i < cfg->ini->n && i < 8; i++) {
		const struct ini_entry *e = &cfg->ini->entries[i];
		size_t n;

		FZ_CHECK(config_line(cfg, e->section, e->key) != 0,
		         "[%s] %s written but has no line", e->section, e->key);
		FZ_CHECK(config_where(cfg, e->section, e->key) != NULL, "where");
		FZ_CHECK(config_lines(cfg, e->section, e->key, &n) != NULL &&
		         n > 0, "[%s] %s: no part lines", e->section, e->key);
	}
	FZ_CHECK(config_schema_key(0, &section, &key) == 0 &&
	         config_where(cfg, section, key) != NULL, "schema key 0");
	config_free(cfg);
	return 0;
}
