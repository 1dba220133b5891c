/*
 * fuzz_mime.c - libFuzzer harness for the MIME builder (templates/mime.h)
 * with hostile field values.
 *
 * Input: byte 0 flags which optional parts exist (bit 0 HTML, bit 1 text,
 * bit 2 unsubscribe URL, bit 3 unsubscribe mailto, bit 4 Feedback-ID, bit
 * 5 an attachment, bit 6 Reply-To, bit 7 two extra headers); byte 1
 * bits 0-2 pick the Date (inside and outside 1900..9999, and time_t
 * extremes), bit 3 an http:// unsubscribe URL with unsub_http_ok; then
 * 0xFF-separated pieces: from name, to name, subject, text, HTML,
 * unsubscribe URL (after "https://" or "http://"), mailto, Feedback-ID,
 * Reply-To, header name 1, value 1, name 2, value 2, attachment file
 * name, attachment content. The attachment is written to a private temp
 * directory under that name ('/' becomes '_') and loaded with
 * mime_attachment_load(); HTML holding "cid:NAME" makes it inline.
 * Properties of a built message: only CRLF line ends (no bare CR or LF),
 * no line over 998 octets, 7-bit without NUL or controls other than TAB;
 * the header block holds exactly the expected fields (From, To, Subject,
 * Date, Message-ID, MIME-Version, Content-Type, the optional ones given,
 * the extra headers by name) and nothing else: no injected header line;
 * every part's header block holds only Content-* fields; every line
 * starting with "--=_edm_" is a delimiter of a declared boundary, and each
 * declared boundary is closed exactly once. A refused message leaves out
 * as it was and says why.
 */
#include "fuzz.h"

#include "buf.h"
#include "mime.h"

#include <limits.h>
#include <strings.h>
#include <unistd.h>

#define MAXB 3 /* boundaries: mixed, alternative, related */

static char dir[256];

static void cleanup(void)
{
	rmdir(dir);
}

struct want {
	const char *names[16];   /* expected top-level fields, with repeats */
	size_t n;
};

struct scan {
	const char *p;           /* the message */
	size_t len, pos;         /* pos: start of the current line */
	char bnd[MAXB][80];      /* declared boundaries */
	size_t nb;
	unsigned closed[MAXB];
};

/* The current line (without CRLF) and advance; 0 at the end. */
static int next_line(struct scan *s, const char **ln, size_t *n)
{
	const char *lf;

	if (s->pos >= s->len)
		return 0;
	*ln = s->p + s->pos;
	lf = memchr(*ln, '\n', s->len - s->pos);
	FZ_CHECK(lf != NULL, "message does not end with CRLF");
	*n = (size_t)(lf - *ln);
	FZ_CHECK(*n > 0 && (*ln)[*n - 1] == '\r', "bare LF at %zu", s->pos);
	(*n)--;
	FZ_CHECK(memchr(*ln, '\r', *n) == NULL, "bare CR at %zu", s->pos);
	FZ_CHECK(*n <= 998, "line of %zu octets at %zu", *n, s->pos);
	s->pos += *n + 2;
	return 1;
}

/* Note a boundary="..." parameter seen in a header block. */
static void declare_boundaries(struct scan *s, const char *ln, size_t n)
{
	const char *b = ln, *q;

	/* the parameter, not the same letters inside another one's quoted
	 * value (an attachment named oboundary=) */
	for (;;) {
		b = memmem(b, (size_t)(ln + n - b), "boundary=\"", 10);
		if (b == NULL)
			return;
		if (b > ln && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == ';'))
			break;
		b++;
	}
	b += 10;
	q = memchr(b, '"', (size_t)(ln + n - b));
	FZ_CHECK(q != NULL && q > b && (size_t)(q - b) < sizeof s->bnd[0],
	         "boundary parameter in [%.*s]", (int)n, ln);
	FZ_CHECK(s->nb < MAXB, "more than %d boundaries", MAXB);
	memcpy(s->bnd[s->nb], b, (size_t)(q - b));
	s->bnd[s->nb][q - b] = '\0';
	s->nb++;
}

/*
 * A header block up to its blank line. top: the message header, names
 * counted against *w (removed as they are seen); else a part header
 * (Content-* only).
 */
static void header_block(struct scan *s, struct want *w, int top)
{
	static const char *const part_ok[] = {
		"Content-Type", "Content-Transfer-Encoding", "Content-ID",
		"Content-Disposition",
	};
	const char *ln, *colon;
	size_t n, cte = 0;
	int in_ct = 0;

	for (;;) {
		FZ_CHECK(next_line(s, &ln, &n), "header block not ended");
		if (n == 0)
			break;
		if (ln[0] == ' ' || ln[0] == '\t') {
			if (in_ct)
				declare_boundaries(s, ln, n);
			continue;
		}
		colon = memchr(ln, ':', n);
		FZ_CHECK(colon != NULL && colon > ln, "header line without a "
		         "name: [%.*s]", (int)n, ln);
		in_ct = (size_t)(colon - ln) == 12 &&
		        strncasecmp(ln, "Content-Type", 12) == 0;
		if (in_ct)
			declare_boundaries(s, ln, n);
		if (!top) {
			size_t i;

			for (i = 0; i < 4; i++)
				if (strlen(part_ok[i]) == (size_t)(colon - ln) &&
				    strncasecmp(ln, part_ok[i], (size_t)(colon - ln)) == 0)
					break;
			FZ_CHECK(i < 4, "part header [%.*s]", (int)n, ln);
			continue;
		}
		if ((size_t)(colon - ln) == 25 &&
		    strncasecmp(ln, "Content-Transfer-Encoding", 25) == 0 &&
		    cte++ == 0)
			continue; /* once, for a single-part message */
		{
			size_t i;

			for (i = 0; i < w->n; i++)
				if (w->names[i] != NULL &&
				    strlen(w->names[i]) == (size_t)(colon - ln) &&
				    strncasecmp(ln, w->names[i],
				                (size_t)(colon - ln)) == 0)
					break;
			FZ_CHECK(i < w->n, "unexpected header line [%.*s]", (int)n,
			         ln);
			w->names[i] = NULL;
		}
	}
	if (top)
		for (size_t i = 0; i < w->n; i++)
			FZ_CHECK(w->names[i] == NULL, "header %s missing",
			         w->names[i]);
}

/* The whole message: header, then body lines and part headers. */
static void check_message(const char *p, size_t len, struct want *w)
{
	struct scan s;
	const char *ln;
	size_t n;

	memset(&s, 0, sizeof s);
	s.p = p;
	s.len = len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		FZ_CHECK(c < 0x80 && (c >= 0x20 || c == '\r' || c == '\n' ||
		         c == '\t') && c != 0x7f, "byte 0x%02X at %zu", c, i);
	}
	header_block(&s, w, 1);
	while (next_line(&s, &ln, &n)) {
		size_t i;

		if (n < 2 || ln[0] != '-' || ln[1] != '-')
			continue;
		for (i = 0; i < s.nb; i++) {
			size_t bl = strlen(s.bnd[i]);

			if (n == bl + 2 && memcmp(ln + 2, s.bnd[i], bl) == 0) {
				FZ_CHECK(!s.closed[i], "delimiter after close");
				header_block(&s, NULL, 0);
				break;
			}
			if (n == bl + 4 && memcmp(ln + 2, s.bnd[i], bl) == 0 &&
			    ln[n - 1] == '-' && ln[n - 2] == '-') {
				s.closed[i]++;
				break;
			}
		}
		if (i == s.nb)
			FZ_CHECK(n < 8 || memcmp(ln, "--=_edm_", 8) != 0,
			         "stray boundary line [%.*s]", (int)n, ln);
	}
	for (size_t i = 0; i < s.nb; i++)
		FZ_CHECK(s.closed[i] == 1, "boundary %s closed %u times",
		         s.bnd[i], s.closed[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const time_t dates[8] = {
		1767225600,            /* 2026-01-01 */
		0,
		-2208988800LL,         /* 1900-01-01 */
		253402300799LL,        /* 9999-12-31 23:59:59 */
		253402300800LL,        /* 10000-01-01: refused */
		-2208988801LL,         /* 1899: refused */
		LLONG_MAX,
		LLONG_MIN,
	};
	struct fz f = { data, size };
	struct mime_message m;
	struct mime_header hdrs[2];
	struct mime_attachment *att = NULL;
	struct want w;
	struct buf out = { 0 };
	char *pc[15], err[512], path[600], url[4096];
	size_t lens[15];
	unsigned flags, dsel;
	int rc;

	if (dir[0] == '\0') {
		fz_tempdir(dir, sizeof dir, "mime");
		atexit(cleanup);
	}
	flags = fz_byte(&f);
	dsel = fz_byte(&f);
	for (size_t i = 0; i < 15; i++)
		pc[i] = fz_str(&f, &lens[i]);

	memset(&m, 0, sizeof m);
	m.from_name = pc[0];
	m.from_addr = "news@acme.example";
	m.to_name = pc[1];
	m.to_addr = "ann@example.com";
	m.subject = pc[2];
	m.message_id = "20260101.abc@acme.example";
	m.date = dates[dsel & 7];
	if (flags & 2) {
		m.text = pc[3];
		m.text_len = lens[3];
	}
	if (flags & 1) {
		m.html = pc[4];
		m.html_len = lens[4];
	}
	/* byte 1 bit 3: an http:// URL, allowed (edm track on http) */
	m.unsub_http_ok = !!(dsel & 8);
	snprintf(url, sizeof url, "%s://%s", dsel & 8 ? "http" : "https",
	         pc[5]);
	if (flags & 4)
		m.unsub_url = url;
	if (flags & 8)
		m.unsub_mailto = pc[6];
	if (flags & 16)
		m.feedback_id = pc[7];
	if (flags & 64)
		m.reply_to = pc[8];
	hdrs[0].name = pc[9];
	hdrs[0].value = pc[10];
	hdrs[1].name = pc[11];
	hdrs[1].value = pc[12];
	if (flags & 128) {
		m.headers = hdrs;
		m.nheaders = 2;
	}
	/* a file name is what precedes a NUL; not empty, ".", ".." */
	if ((flags & 32) && strlen(pc[13]) > 0 && strlen(pc[13]) <= 255 &&
	    strcmp(pc[13], ".") != 0 && strcmp(pc[13], "..") != 0) {
		FILE *af;

		for (char *c = pc[13]; *c; c++)
			if (*c == '/')
				*c = '_';
		snprintf(path, sizeof path, "%s/%s", dir, pc[13]);
		af = fopen(path, "wb");
		FZ_CHECK(af != NULL, "fopen [%s]", path);
		FZ_CHECK(fwrite(pc[14], 1, lens[14], af) == lens[14] &&
		         fclose(af) == 0, "write attachment");
		att = mime_attachment_load(path, err, sizeof err);
		FZ_CHECK(att != NULL, "attachment [%s]: %s", path, err);
		unlink(path);
		m.atts = (struct mime_attachment *const *)&att;
		m.natts = 1;
	}

	buf_puts(&out, "x");
	err[0] = '\0';
	rc = mime_build(&m, &out, err, sizeof err);
	if (rc != 0) {
		FZ_CHECK(rc == -1 && err[0] != '\0', "refusal %d [%s]", rc, err);
		FZ_CHECK(out.len == 1 && out.data[1] == '\0', "out changed on "
		         "failure");
		goto done;
	}
	memset(&w, 0, sizeof w);
	w.names[w.n++] = "From";
	w.names[w.n++] = "To";
	w.names[w.n++] = "Subject";
	w.names[w.n++] = "Date";
	w.names[w.n++] = "Message-ID";
	w.names[w.n++] = "MIME-Version";
	w.names[w.n++] = "Content-Type";
	if (m.reply_to != NULL && m.reply_to[0] != '\0')
		w.names[w.n++] = "Reply-To";
	if ((m.unsub_url != NULL && m.unsub_url[0] != '\0') ||
	    (m.unsub_mailto != NULL && m.unsub_mailto[0] != '\0'))
		w.names[w.n++] = "List-Unsubscribe";
	if (m.unsub_url != NULL && m.unsub_url[0] != '\0')
		w.names[w.n++] = "List-Unsubscribe-Post";
	if (m.feedback_id != NULL && m.feedback_id[0] != '\0')
		w.names[w.n++] = "Feedback-ID";
	for (size_t i = 0; i < m.nheaders; i++)
		w.names[w.n++] = m.headers[i].name;
	check_message(out.data + 1, out.len - 1, &w);
done:
	mime_attachment_free(att);
	buf_free(&out);
	for (size_t i = 0; i < 15; i++)
		free(pc[i]);
	return 0;
}
