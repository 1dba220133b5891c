/*
 * ini.h - the INI reader for campaign files (I/O-free core + a file loader).
 *
 * Grammar (docs/config.md has the user's version):
 *   - UTF-8 text, optional UTF-8 BOM, LF or CRLF line ends, no line length
 *     limit (Debian's libinih truncates at 200 bytes; a Chinese subject is
 *     easily 300).
 *   - A line whose first non-blank character is ';' or '#' is a comment.
 *   - "[name]" or "[name sub]" opens a section (sub: e.g. [dkim ed25519];
 *     it may hold several words and '*': [domain gmail.com *.edu]).
 *   - "key = value": key is [A-Za-z0-9_.-]+; the value is trimmed. In an
 *     unquoted value, a ';' preceded by a blank (or first in the value)
 *     starts an inline comment; '#' does so only at line start, so
 *     "Spring sale #2" keeps its "#2". A value starting with '"' runs to the
 *     closing '"' (\" and \\ are its only escapes) and the quotes are
 *     stripped; only blanks or a comment may follow it.
 *   - An indented line right after a key line continues its value; the
 *     parts are joined with "\n" (used by multi-line values like headers;
 *     config.c refuses continuations for every other key, so an indented
 *     key line is never silently swallowed). A blank line ends the value.
 *   - A key outside any section, a key given twice in a section, a section
 *     given twice, a line that is none of the above, and invalid UTF-8 are
 *     errors reported as "file:line: what".
 * What it does not do: know which sections and keys exist (config.c checks
 * that against its schema).
 */
#ifndef EDM_INI_H
#define EDM_INI_H

#include <stddef.h>

struct ini_entry {
	const char *section; /* "dkim" for [dkim ed25519] */
	const char *sub;     /* "ed25519", or "" */
	const char *key;
	const char *value;   /* unquoted, continuation lines joined by "\n" */
	unsigned line;       /* 1-based line of the key */
	unsigned section_line;
	int quoted;          /* 1 when the value was written in quotes */
	unsigned *lines;     /* line of each "\n"-separated part of value */
	size_t nlines;       /* parts in value (lines[] entries) */
	int continued;       /* 1 when continuation lines followed the key */
};

struct ini {
	char *file;              /* name used in messages */
	struct ini_entry *entries;
	size_t n;
	/* sections in file order, including empty ones */
	struct ini_section {
		const char *name, *sub;
		unsigned line;
	} *sections;
	size_t nsections;
};

/*
 * Parse buf[len]; 'file' names it in messages. Returns a new ini (free with
 * ini_free) or NULL with "file:line: reason" in err[errlen].
 */
struct ini *ini_parse(const char *buf, size_t len, const char *file,
                      char *err, size_t errlen);

/* Read and parse a file. NULL with a message naming the file on error. */
struct ini *ini_load(const char *path, char *err, size_t errlen);

/* Free; NULL is a no-op. */
void ini_free(struct ini *ini);

#endif
