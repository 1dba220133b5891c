/*
 * data.h - the shipped data lists (the .txt files in data/), compiled in by
 * scripts/embed.py. Each is the file's text, NUL-terminated: one entry per
 * line, '#' comments and blank lines to be skipped by the reader.
 */
#ifndef EDM_DATA_H
#define EDM_DATA_H

extern const char edm_data_disposable_domains[];
extern const char edm_data_role_accounts[];
extern const char edm_data_popular_domains[];
extern const char edm_data_bounce_rules[];

#endif
