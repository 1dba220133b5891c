/*
 * track.h - `edm track CONFIG [CONFIG...]`: the HTTP server that the
 * tracking links of sent messages point at ([tracking] base_url).
 *
 *   GET/HEAD /o/TOKEN.gif   a 1x1 transparent GIF, never cached; an open
 *   GET/HEAD /c/TOKEN/N     302 to link N of the campaign's HTML template
 *                           (the URL comes from the template, never from
 *                           the request); a click
 *   GET/HEAD /u/TOKEN       a page with an "Unsubscribe" button (records
 *                           nothing: link scanners fetch pages)
 *   POST /u/TOKEN           List-Unsubscribe=One-Click (RFC 8058, the
 *                           mailbox provider's button, or the page's
 *                           button): the address goes into the
 *                           suppression file, then 200; idempotent
 *   anything else           404
 * A token that is forged, altered, of another campaign or of a row past
 * the list is a 404 and records nothing. Events go to OUT_DIR/events.csv
 * of the token's campaign (campaign/events.h); several CONFIGs are
 * several campaigns served by one process.
 *
 * Contract: track_main() parses its own options (argv[0] is "track"),
 * runs until SIGTERM/SIGINT (graceful: no new connections, requests in
 * progress answered) and returns a sysexits(3) code: 0 stopped by a
 * signal; 64 usage; 65 the recipient list cannot be read; 66 a missing
 * file; 69 cannot listen; 71 event loop or signal setup failed; 73
 * OUT_DIR/events.csv cannot be created; 78 a config error (no [tracking]
 * section, secret unset or short, bad trusted_proxies, configs that
 * disagree on listen, an HTML template the link rewriter cannot read).
 *
 * Memory: per campaign, the recipient list's addresses (row -> address:
 * tokens carry only the row, and every event and unsubscribe must name
 * the address), so it grows with the list, about the address length plus
 * 5 bytes per row; a bit per row for the unsubscribed; the link table.
 * Per process, at most 100,000 recent click records (scanner detection).
 * Per connection, the request being parsed (engine/http.h limits).
 *
 * The HTTP protocol is engine/http.c, sockets engine/conn.c, tokens
 * templates/token.c, links templates/linktrack.c.
 */
#ifndef EDM_TRACK_H
#define EDM_TRACK_H

/* The text of `edm track --help`. */
extern const char track_usage[];

/* The `edm track` command. */
int track_main(int argc, char **argv);

#endif
