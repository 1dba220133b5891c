/*
 * log.c - human messages and key=value logs on stderr (contract in log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int log_enabled(enum edm_log_level level)
{
	return level <= current;
}

void log_kv(enum edm_log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	fprintf(stderr, "edm level=%s event=%s ", level_names[level], event);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
