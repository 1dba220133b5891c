/*
 * fuzz_smtp_reply.c - libFuzzer harness for the SMTP reply parser
 * (engine/smtp_reply.h).
 *
 * Input: byte 0 picks how the rest is split (0: one feed; else chunks of
 * 1..255 bytes, the size cycling through the next bytes' values so splits
 * vary inside one input); the rest is what a server sent.
 * Properties:
 *   - the replies (code, enhanced code, text, lines) up to the first error
 *     are the same however the bytes are split;
 *   - every reply has a code 200..599, an enhanced code that is empty or
 *     of the reply's class, and text/lines that are valid UTF-8 without
 *     control characters (other than the '\n' ending each line);
 *   - *used never exceeds what was offered, and the parser makes progress;
 *   - after an error, a reset parser goes on with the rest (coverage of the
 *     resumed state; not compared).
 * smtp_enhanced_parse() and smtp_text_sanitise() are also run on the raw
 * input. Run: see scripts/fuzz.sh.
 */
#include "fuzz.h"

#include "buf.h"
#include "smtp_reply.h"
#include "utf8.h"

/* Text without control characters, valid UTF-8 ('\n' allowed if nl). */
static void check_text(const char *s, size_t n, int nl)
{
	FZ_CHECK(utf8_check((const unsigned char *)s, n) == n,
	         "invalid UTF-8 in reply text");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		FZ_CHECK(c >= 0x20 && c != 0x7f ? 1 : nl && c == '\n',
		         "control 0x%02X in reply text at %zu", c, i);
	}
}

/* Append one reply's digest to d after checking it. */
static void take_reply(struct smtp_reply_parser *p,
                       const struct smtp_reply *r, struct buf *d)
{
	size_t nlines, tl = strlen(r->text);
	const char *lines = smtp_reply_lines(p, &nlines);

	FZ_CHECK(r->code >= 200 && r->code <= 599, "code %d", r->code);
	if (r->enhanced[0] != '\0')
		FZ_CHECK(r->enhanced[0] - '0' == r->code / 100 &&
		         smtp_enhanced_parse(r->enhanced, strlen(r->enhanced),
		                             r->code, NULL) ==
		         strlen(r->enhanced),
		         "enhanced [%s] for %d", r->enhanced, r->code);
	check_text(r->text, tl, 0);
	check_text(lines, nlines, 1);
	FZ_CHECK(nlines > 0 && lines[nlines - 1] == '\n', "lines end");
	FZ_CHECK(tl == 0 || (r->text[0] != ' ' && r->text[tl - 1] != ' '),
	         "text not trimmed");
	buf_printf(d, "%d|%s|%s|", r->code, r->enhanced, r->text);
	buf_append(d, lines, nlines);
	buf_putc(d, '#');
}

/*
 * Parse data[0..n) fed in chunks (chunk 0 = all at once; else sizes from
 * sizes[] cycling). Until the first error the digest of every reply goes
 * to d; "E" marks the error; after it the parser is reset and the rest is
 * parsed for coverage only.
 */
static void run(const char *data, size_t n, const uint8_t *sizes,
                size_t nsizes, struct buf *d)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	struct buf scratch = { 0 };
	char err[256];
	size_t off = 0, k = 0, used, chunk, left;
	int rc, failed = 0;

	smtp_reply_parser_init(&p);
	while (off < n) {
		chunk = n - off;
		if (nsizes > 0) {
			size_t c = sizes[k++ % nsizes];

			chunk = c == 0 ? 1 : c;
			if (chunk > n - off)
				chunk = n - off;
		}
		left = chunk;
		while (left > 0) {
			memset(&r, 0, sizeof r);
			rc = smtp_reply_parse(&p, data + off, left, &used, &r,
			                      err, sizeof err);
			FZ_CHECK(used <= left, "used %zu > %zu", used, left);
			if (rc == SMTP_REPLY_ERROR) {
				FZ_CHECK(strncmp(err, "protocol error", 14) == 0 ||
				         strncmp(err, "out of memory", 13) == 0,
				         "error text [%s]", err);
				if (!failed)
					buf_puts(d, "E");
				failed = 1;
				smtp_reply_parser_reset(&p);
				/* an oversized line is not consumed: skip it */
				if (used == 0)
					used = 1;
			} else if (rc == SMTP_REPLY_DONE) {
				FZ_CHECK(used > 0, "DONE without progress");
				buf_reset(&scratch);
				take_reply(&p, &r, failed ? &scratch : d);
			} else {
				FZ_CHECK(rc == SMTP_REPLY_MORE && used == left,
				         "MORE must consume all (%zu of %zu)",
				         used, left);
			}
			off += used;
			left -= used;
		}
	}
	smtp_reply_parser_free(&p);
	buf_free(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = { 0 }, split = { 0 }, b = { 0 };
	char enh[16];
	uint8_t sel;

	if (size == 0)
		return 0;
	sel = data[0];
	data++;
	size--;
	run((const char *)data, size, NULL, 0, &whole);
	if (sel == 0) {
		/* one byte at a time */
		static const uint8_t one[] = { 1 };

		run((const char *)data, size, one, 1, &split);
	} else {
		uint8_t sizes[8];
		size_t ns = size < 8 ? size : 8;

		/* chunk sizes from the input itself, capped by sel */
		for (size_t i = 0; i < ns; i++)
			sizes[i] = (uint8_t)(data[i] % sel + 1);
		if (ns == 0) {
			sizes[0] = sel;
			ns = 1;
		}
		run((const char *)data, size, sizes, ns, &split);
	}
	FZ_CHECK(whole.len == split.len &&
	         (whole.len == 0 || memcmp(whole.data, split.data, whole.len) == 0),
	         "split changed the replies:\n[%s]\n[%s]",
	         whole.data != NULL ? whole.data : "",
	         split.data != NULL ? split.data : "");

	/* the helpers on raw bytes */
	for (int code = 0; code <= 500; code += 100)
		if (smtp_enhanced_parse((const char *)data, size, code, enh) > 0)
			FZ_CHECK(enh[0] == '2' || enh[0] == '4' || enh[0] == '5',
			         "enhanced class %c", enh[0]);
	FZ_CHECK(smtp_text_sanitise(&b, (const char *)data, size) == 0, "oom");
	check_text(b.data != NULL ? b.data : "", b.len, 0);
	buf_free(&b);
	buf_free(&whole);
	buf_free(&split);
	return 0;
}
