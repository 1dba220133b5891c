/*
 * log.h - messages for people (errors, warnings) and key=value logs.
 *
 * edm_error()/edm_warn() print "edm: error: ..." / "edm: warning: ..." on
 * stderr: sentences for the person at the terminal, which say what was
 * wrong, where (file:line, row, key) and what to do. log_kv() prints one
 * machine-greppable line "edm level=info event=NAME k=v ..." on stderr when
 * the level is enabled (EDM_LOG=debug|info|warn|error, default warn).
 * Never pass passwords or AUTH payloads to either.
 */
#ifndef EDM_LOG_H
#define EDM_LOG_H

#include <stddef.h>
#include <stdio.h>

enum edm_log_level {
	EDM_LOG_ERROR = 0,
	EDM_LOG_WARN,
	EDM_LOG_INFO,
	EDM_LOG_DEBUG,
};

void edm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void edm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Format a message into err[errlen] when the caller gave a buffer (err may
 * be NULL or errlen 0: then nothing is written). Always returns -1, so
 * error paths can say `return edm_errf(err, errlen, "...")`. The one
 * helper every I/O-free module uses for its error strings.
 */
int edm_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set the level; log_init() reads EDM_LOG from the environment. */
void log_set_level(enum edm_log_level level);
void log_init(void);
int log_enabled(enum edm_log_level level);

/* Also write log_kv lines up to 'level' to f (with a time=), whatever
 * EDM_LOG says (edm send's OUT_DIR/send.log); NULL stops. */
void log_set_file(FILE *f, enum edm_log_level level);

/* "edm level=L event=EVENT " followed by the formatted key=value pairs. */
void log_kv(enum edm_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
