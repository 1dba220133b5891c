/*
 * classify_cmd.h - `edm classify`: what edm makes of SMTP replies, by the
 * same rules `edm send` uses (engine/classify.h), as CSV on stdout.
 *
 * campaign/main.c dispatches "classify" to classify_cmd_main() and shows
 * classify_cmd_usage for `edm help classify`. The reply splitter is public
 * so the tests read their corpus the way the command reads its input.
 */
#ifndef EDM_CLASSIFY_CMD_H
#define EDM_CLASSIFY_CMD_H

#include <stddef.h>

/* Room for an enhanced code "5.123.456" and its NUL. */
#define CLASSIFY_ENHANCED_MAX 16

extern const char classify_cmd_usage[];

/* argv[0] is "classify". Returns a sysexits(3) code: 0 done, 64 usage,
 * 66 missing rules file, 74 I/O error, 78 bad rules file. */
int classify_cmd_main(int argc, char **argv);

/*
 * Split a reply as people paste it: "550-5.1.1 text", "550 5.1.1 text",
 * "550 text", "5.1.1 text" or bare text, leading and trailing blanks
 * ignored. *code gets the 3-digit reply code (0 when absent), enhanced the
 * RFC 3463 code ("" when absent). Several lines (LF or CRLF) are one
 * multi-line reply: joined by one space, each later line's repeated
 * "CODE-"/"CODE " and enhanced code dropped, as the SMTP session does.
 * Returns the text (malloc'd, the caller frees), or NULL on ENOMEM.
 */
char *classify_cmd_split(const char *reply, int *code,
                         char enhanced[CLASSIFY_ENHANCED_MAX]);

#endif
