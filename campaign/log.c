/*
 * log.c - human messages and key=value logs on stderr (contract in log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum edm_log_level current = EDM_LOG_WARN;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void say(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "edm: %s: ", what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void edm_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("error", fmt, ap);
	va_end(ap);
}

void edm_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("warning", fmt, ap);
	va_end(ap);
}

int edm_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void log_set_level(enum edm_log_level level)
{
	current = level;
}

void log_init(void)
{
	const char *v = getenv("EDM_LOG");

	for (size_t i = 0; v != NULL && i < sizeof(level_names) / sizeof(*level_names); i++)
		if (strcmp(v, level_names[i]) == 0)
			current = (enum edm_log_level)i;
}

static FILE *log_file;
static enum edm_log_level file_level = EDM_LOG_INFO;

void log_set_file(FILE *f, enum edm_log_level level)
{
	log_file = f;
	file_level = level;
}

int log_enabled(enum edm_log_level level)
{
	return level <= current || (log_file != NULL && level <= file_level);
}

void log_kv(enum edm_log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (level <= current) {
		fprintf(stderr, "edm level=%s event=%s ", level_names[level], event);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	if (log_file != NULL && level <= file_level) {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(log_file, "time=%s level=%s event=%s ", ts, level_names[level], event);
		va_start(ap, fmt);
		vfprintf(log_file, fmt, ap);
		va_end(ap);
		fputc('\n', log_file);
	}
}
