/*
 * html2text.h - a readable text/plain rendering of an HTML part (libgumbo),
 * for messages given only an HTML body: a lone HTML part scores as spam.
 *
 * Contract: tags are dropped; <br> and block elements (p, div, h1-h6, li,
 * tr, table, blockquote, pre...) give line breaks, paragraphs a blank line;
 * links become "text (url)" (just the URL when the text is the URL;
 * a mailto: link shows its address; javascript: targets are dropped);
 * list items get "- "; entities are decoded (the parser does that);
 * script, style, head and title content is dropped; runs of whitespace
 * collapse to one space outside <pre>. Output is UTF-8 with LF line ends.
 * I/O-free; allocates only inside the parser and 'out'.
 */
#ifndef EDM_HTML2TEXT_H
#define EDM_HTML2TEXT_H

#include <stddef.h>

struct buf;

/* Append the text rendering of html[len] to out. 0, or -1 on ENOMEM. */
int html_to_text(const char *html, size_t len, struct buf *out);

#endif
