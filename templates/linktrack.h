/*
 * linktrack.h - click and open tracking, applied to the HTML template's
 * source once, before it is compiled (I/O-free: bytes in, bytes out).
 *
 * Clicks: the href of every <a> and <area> tag whose value is an absolute
 * http:// or https:// URL (scheme case-insensitive, surrounding blanks
 * ignored) becomes BASE/c/<token>/<N>, where <token> is the Mustache tag
 * {{token}} written with the delimiters in force at that point (set
 * delimiter tags {{=<% %>=}} are followed) and N is the link's number,
 * 1-based, in source order. The original URL, with HTML character
 * references decoded (&amp; -> &, &#38; -> &, &#x26; -> &), goes into the
 * link table at index N-1; `edm track` redirects to it, never to anything
 * taken from the request. Left alone: links with a data-notrack attribute
 * (any value), mailto:/tel:/relative/# links, hrefs that contain a
 * Mustache tag (their target differs per recipient: counted in
 * *untracked so the caller can warn), anything inside <!-- comments -->,
 * <script>, <style> or a Mustache tag, attributes other than href
 * (data-href, title="...href=..." etc.), and text outside tags.
 *
 * Opens: the first {{tracking_pixel}} tag (also {{{tracking_pixel}}} and
 * {{& tracking_pixel}}, any inner blanks, current delimiters) is replaced
 * by the pixel <img src="BASE/o/<token>.gif" width="1" height="1" alt=""
 * style="display:block;border:0;width:1px;height:1px"> (with the {{token}}
 * tag as above); without one, the pixel goes right before the last
 * </body> (case-insensitive), or at the very end when there is none.
 *
 * Contract: the output is a Mustache template source again; everything
 * not named above is copied byte for byte (entities, comments,
 * whitespace, malformed markup). Running it with clicks and opens off
 * returns a copy. base_url is trusted (config.c checked its shape).
 * What it does not do: follow partials ({{> x}} is copied: links inside
 * partials are not tracked), touch the text part.
 */
#ifndef EDM_LINKTRACK_H
#define EDM_LINKTRACK_H

#include <stddef.h>

struct linktrack_opts {
	const char *base_url;  /* "https://t.acme.example" (no trailing /) */
	int clicks;            /* rewrite links */
	int opens;             /* insert the pixel */
};

/* The tracked links of one template: urls[i] is link i+1. */
struct link_table {
	char **urls;
	size_t n;
};

/*
 * Rewrite src[len]. 0 with *out (malloc'd, NUL-terminated, *outlen bytes),
 * links filled (may be empty) and *untracked set to the number of http(s)
 * links skipped because their href holds a Mustache tag; -1 with err only
 * on allocation failure or a template the rewriter cannot follow (an
 * unterminated set-delimiter tag: "line N: ...").
 */
int linktrack_rewrite(const char *src, size_t len,
                      const struct linktrack_opts *o, char **out,
                      size_t *outlen, struct link_table *links,
                      size_t *untracked, char *err, size_t errlen);

/* Free the urls (the struct itself is the caller's); NULL-safe. */
void link_table_free(struct link_table *t);

#endif
