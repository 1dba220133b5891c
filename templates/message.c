/*
 * message.c - compile [message]/[dkim] once, render per recipient
 * (contract in message.h).
 *
 * Per row: fill the value table (CSV fields + built-ins), render the small
 * templates (subject, names, headers, unsubscribe URL) and the bodies into
 * per-thread scratch buffers, hand them to mime_build(), then sign with
 * every DKIM key and emit signatures + message.
 */
#include "message.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>

#include "address.h"
#include "config.h"
#include "csv_reader.h"
#include "dkim.h"
#include "log.h"
#include "mime.h"
#include "linktrack.h"
#include "tmpl.h"
#include "token.h"

enum builtin {
	B_EMAIL,
	B_CAMPAIGN,
	B_ROW,
	B_MESSAGE_ID,
	B_UNSUBSCRIBE_URL,
	B_TRACKING_PIXEL,
	B_DATE,
	B_TOKEN,
	B_COUNT
};

static const char *const builtin_names[B_COUNT] = {
	"email", "campaign", "row", "message_id", "unsubscribe_url",
	"tracking_pixel", "date", "token",
};

/* Header names [message] headers may not set: edm writes them itself, or
 * they have their own key, or they must never come from a template. */
static const char *const reserved_headers[] = {
	"from", "to", "cc", "bcc", "subject", "date", "message-id",
	"mime-version", "dkim-signature", "return-path", "reply-to",
	"feedback-id", "sender", "received",
};

/* A templated extra header: its checked name and compiled value. */
struct msg_header {
	char *name;
	struct tmpl *value;
};

struct message_factory {
	struct config *cfg;
	const char **names;          /* CSV header names, then built-ins */
	size_t nnames, ncols, email_col;
	size_t builtin_idx[B_COUNT]; /* index into names; ncols.. or a column */
	int builtin_own[B_COUNT];    /* 1 when the built-in supplies the value */

	struct tmpl *subject, *from_name, *to_name, *text, *html,
	            *feedback_id, *unsub_url;
	struct msg_header *headers;
	size_t nheaders;
	char *from_addr, *from_domain, *reply_to, *unsub_mailto;
	struct mime_attachment **atts;
	size_t natts;
	struct dkim_key *keys[CONFIG_MAX_DKIM];
	size_t nkeys;
	int strict;
	/* [tracking]: links of the HTML template, and the token key once
	 * message_factory_set_secret() gave it */
	int tracking;
	struct link_table links;
	size_t untracked;
	struct token_key *tkey;
};

/* Read a whole template file (templates are small; bounded at 10 MB). */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *data = NULL;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > 10 * 1024 * 1024) {
		snprintf(err, errlen, "%s: not a template file (larger than 10 MB?)", path);
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: read failed", path);
		free(data);
		data = NULL;
		goto out;
	}
	data[st.st_size] = '\0';
	*len = (size_t)st.st_size;
out:
	fclose(f);
	return data;
}

/* Compile a config value as a template, errors at "config:line" (line 0:
 * the key's own line). */
static struct tmpl *compile_value_at(struct message_factory *f, const char *key,
                                     unsigned line, const char *src,
                                     enum tmpl_mode mode, char *err,
                                     size_t errlen)
{
	struct tmpl_names names = { f->names, f->nnames };
	struct tmpl_opts o = {
		.mode = mode,
		.file = f->cfg->path,
		.first_line = line ? line : config_line(f->cfg, "message", key),
		.partials_dir = f->cfg->dir,
	};
	struct tmpl *t;

	if (o.first_line == 0)
		o.first_line = 1;
	t = tmpl_compile(src, strlen(src), &o, &names, err, errlen);
	if (t == NULL) {
		/* Say which key the error is in: "c.ini:7: ... (in subject)". */
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (in [message] %s)", key);
	}
	return t;
}

static struct tmpl *compile_value(struct message_factory *f, const char *key,
                                  const char *src, enum tmpl_mode mode,
                                  char *err, size_t errlen)
{
	return compile_value_at(f, key, 0, src, mode, err, errlen);
}

/* Compile a template file (text or html), partials from its directory. */
static struct tmpl *compile_file(struct message_factory *f, const char *path,
                                 enum tmpl_mode mode, const char *key,
                                 char *err, size_t errlen)
{
	struct tmpl_names names = { f->names, f->nnames };
	char *dir = strdup(path), *slash;
	struct tmpl_opts o = { .mode = mode, .file = path, .first_line = 1 };
	struct tmpl *t = NULL;
	size_t len;
	char *src;

	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	o.partials_dir = dir;
	src = read_file(path, &len, err, errlen);
	if (src == NULL) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (named by %s at %s)", key,
		         config_where(f->cfg, "message", key));
	} else if (mode == TMPL_HTML && f->tracking &&
	           (f->cfg->tracking.clicks || f->cfg->tracking.opens)) {
		struct linktrack_opts lo = {
			.base_url = f->cfg->tracking.base_url,
			.clicks = f->cfg->tracking.clicks,
			.opens = f->cfg->tracking.opens,
		};
		char *tracked = NULL;
		size_t tlen = 0;
		if (linktrack_rewrite(src, len, &lo, &tracked, &tlen, &f->links,
		                      &f->untracked, err, errlen) < 0) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (in %s)", path);
		} else {
			t = tmpl_compile(tracked, tlen, &o, &names, err, errlen);
		}
		free(tracked);
	} else {
		t = tmpl_compile(src, len, &o, &names, err, errlen);
	}
	free(src);
	free(dir);
	return t;
}

/* Build the name table: CSV header, then built-ins not shadowed by it. */
static int build_names(struct message_factory *f, const struct csv_row *h,
                       size_t email_col)
{
	f->names = calloc(h->nfields + B_COUNT, sizeof(*f->names));
	if (f->names == NULL)
		return -1;
	for (size_t i = 0; i < h->nfields; i++)
		f->names[i] = h->fields[i];
	f->ncols = f->nnames = h->nfields;
	f->email_col = email_col;
	for (int b = 0; b < B_COUNT; b++) {
		size_t j;
		for (j = 0; j < h->nfields; j++)
			if (strcmp(h->fields[j], builtin_names[b]) == 0)
				break;
		if (j < h->nfields) {
			f->builtin_idx[b] = j; /* the CSV column wins */
			continue;
		}
		f->builtin_idx[b] = f->nnames++;
		f->names[f->builtin_idx[b]] = builtin_names[b];
		f->builtin_own[b] = 1;
	}
	return 0;
}

/* "Acme 商城 <news@acme.example>" or "news@acme.example". */
static int parse_from(struct message_factory *f, char *err, size_t errlen)
{
	const char *v = f->cfg->message.from, *lt = strrchr(v, '<');
	char name[1024] = "", detail[128];
	struct addr a;
	const char *addr = v;
	size_t alen = strlen(v);

	if (lt != NULL) {
		const char *gt = strchr(lt, '>');
		size_t n = (size_t)(lt - v);
		if (gt == NULL || gt[1] != '\0') {
			snprintf(err, errlen, "%s: from: expected \"Name <address>\" or an address",
			         config_where(f->cfg, "message", "from"));
			return -1;
		}
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n >= sizeof(name)) {
			snprintf(err, errlen, "%s: from: display name too long",
			         config_where(f->cfg, "message", "from"));
			return -1;
		}
		memcpy(name, v, n);
		name[n] = '\0';
		addr = lt + 1;
		alen = (size_t)(gt - addr);
	}
	if (addr_parse(addr, alen, &a, detail, sizeof(detail)) < 0) {
		snprintf(err, errlen, "%s: from: '%.*s' is not a usable address: %s",
		         config_where(f->cfg, "message", "from"), (int)alen, addr, detail);
		return -1;
	}
	if ((f->from_addr = strdup(a.norm)) == NULL ||
	    (f->from_domain = strdup(addr_domain(&a))) == NULL)
		return -1;
	if (name[0] != '\0' &&
	    (f->from_name = compile_value(f, "from", name, TMPL_TEXT, err, errlen)) == NULL)
		return -1;
	return 0;
}

/* An optional address key (reply_to, unsubscribe_mailto). */
static int parse_addr_key(struct message_factory *f, const char *key,
                          const char *v, char **out, char *err, size_t errlen)
{
	struct addr a;
	char detail[128];

	if (v == NULL)
		return 0;
	if (strncasecmp(v, "mailto:", 7) == 0)
		v += 7;
	if (addr_parse(v, strlen(v), &a, detail, sizeof(detail)) < 0) {
		snprintf(err, errlen, "%s: %s: '%s' is not a usable address: %s",
		         config_where(f->cfg, "message", key), key, v, detail);
		return -1;
	}
	return (*out = strdup(a.norm)) == NULL ? -1 : 0;
}

/* headers = "Name: value" lines; names checked, values compiled. */
static int parse_headers(struct message_factory *f, char *err, size_t errlen)
{
	const char *v = f->cfg->message.headers;
	size_t nlines, idx = 0;
	const unsigned *lines = config_lines(f->cfg, "message", "headers", &nlines);
	unsigned line;

	while (v != NULL && *v != '\0') {
		const char *nl = strchr(v, '\n'), *end = nl ? nl : v + strlen(v);
		const char *colon = memchr(v, ':', (size_t)(end - v));
		struct msg_header *h;
		char *value;

		line = idx < nlines ? lines[idx] : 0;
		if (colon == NULL || colon == v) {
			snprintf(err, errlen, "%s:%u: headers: expected 'Name: value', got '%.*s'",
			         f->cfg->path, line, (int)(end - v), v);
			return -1;
		}
		for (const char *p = v; p < colon; p++)
			if (*p <= ' ' || *p > '~') {
				snprintf(err, errlen, "%s:%u: headers: invalid header name '%.*s'",
				         f->cfg->path, line, (int)(colon - v), v);
				return -1;
			}
		for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(*reserved_headers); i++)
			if ((size_t)(colon - v) == strlen(reserved_headers[i]) &&
			    strncasecmp(v, reserved_headers[i], (size_t)(colon - v)) == 0) {
				snprintf(err, errlen, "%s:%u: headers: %.*s cannot be set here "
				         "(edm writes it, or it has its own key in [message])",
				         f->cfg->path, line, (int)(colon - v), v);
				return -1;
			}
		if ((colon - v >= 8 && strncasecmp(v, "content-", 8) == 0) ||
		    (colon - v >= 16 && strncasecmp(v, "list-unsubscribe", 16) == 0)) {
			snprintf(err, errlen, "%s:%u: headers: %.*s cannot be set here "
			         "(edm writes it)", f->cfg->path, line, (int)(colon - v), v);
			return -1;
		}
		h = realloc(f->headers, (f->nheaders + 1) * sizeof(*h));
		if (h == NULL)
			return -1;
		f->headers = h;
		h = &f->headers[f->nheaders];
		h->name = strndup(v, (size_t)(colon - v));
		const char *val = colon + 1;
		while (val < end && (*val == ' ' || *val == '\t'))
			val++; /* "Name: value": the blank is the separator */
		value = strndup(val, (size_t)(end - val));
		if (h->name == NULL || value == NULL) {
			free(h->name);
			free(value);
			return -1;
		}
		f->nheaders++;
		h->value = compile_value_at(f, "headers", line, value, TMPL_TEXT,
		                            err, errlen);
		free(value);
		if (h->value == NULL)
			return -1;
		v = nl ? nl + 1 : end;
		idx++;
	}
	return 0;
}

/* Load the DKIM keys and warn about what receivers will not like. */
static int load_keys(struct message_factory *f, char *err, size_t errlen)
{
	int rsa = 0;

	for (size_t i = 0; i < f->cfg->ndkim; i++) {
		struct config_dkim *d = &f->cfg->dkim[i];
		struct dkim_key *k = dkim_key_load(d->key, d->domain, d->selector,
		                                   err, errlen);
		size_t dl = strlen(d->domain), fl = strlen(f->from_domain);

		if (k == NULL) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " ([dkim%s%s] at %s:%u)",
			         *d->name ? " " : "", d->name, f->cfg->path, d->line);
			return -1;
		}
		f->keys[f->nkeys++] = k;
		if (dkim_key_alg(k) == DKIM_RSA_SHA256) {
			rsa = 1;
			if (dkim_key_bits(k) < 2048)
				edm_warn("%s: RSA key of %d bits; RFC 8301 recommends 2048 "
				         "(receivers may stop accepting shorter keys)",
				         d->key, dkim_key_bits(k));
		}
		/* DMARC relaxed alignment: d= and the From domain must share the
		 * organisational domain; approximated as one being the other or
		 * a subdomain of it. */
		if (!(dl == fl && strcasecmp(d->domain, f->from_domain) == 0) &&
		    !(fl > dl && f->from_domain[fl - dl - 1] == '.' &&
		      strcasecmp(f->from_domain + fl - dl, d->domain) == 0) &&
		    !(dl > fl && d->domain[dl - fl - 1] == '.' &&
		      strcasecmp(d->domain + dl - fl, f->from_domain) == 0))
			edm_warn("[dkim%s%s] domain = %s does not align with the From "
			         "domain %s: DMARC will not pass on this signature",
			         *d->name ? " " : "", d->name, d->domain, f->from_domain);
	}
	if (f->nkeys > 0 && !rsa)
		edm_warn("only Ed25519 DKIM keys are configured; many receivers do not "
		         "verify Ed25519 yet (RFC 8463): add an RSA [dkim] section too");
	return 0;
}

struct message_factory *message_factory_new(struct config *cfg,
                                            const struct csv_row *header,
                                            size_t email_col, char *err,
                                            size_t errlen)
{
	struct config_message *m = &cfg->message;
	struct message_factory *f = calloc(1, sizeof(*f));

	if (f == NULL)
		goto nomem;
	if (!m->present) {
		snprintf(err, errlen, "%s: no [message] section: from, subject and "
		         "text or html are needed (docs/config.md)", cfg->path);
		free(f);
		return NULL;
	}
	f->cfg = cfg;
	f->strict = m->strict_variables;
	f->tracking = cfg->tracking.present;
	if (build_names(f, header, email_col) < 0)
		goto nomem;
	err[0] = '\0';
	if (parse_from(f, err, errlen) < 0 ||
	    parse_addr_key(f, "reply_to", m->reply_to, &f->reply_to, err, errlen) < 0 ||
	    parse_addr_key(f, "unsubscribe_mailto", m->unsubscribe_mailto,
	                   &f->unsub_mailto, err, errlen) < 0)
		goto fail;
	if ((f->subject = compile_value(f, "subject", m->subject, TMPL_TEXT, err, errlen)) == NULL)
		goto fail;
	if (m->to_name != NULL &&
	    (f->to_name = compile_value(f, "to_name", m->to_name, TMPL_TEXT, err, errlen)) == NULL)
		goto fail;
	if (m->feedback_id != NULL &&
	    (f->feedback_id = compile_value(f, "feedback_id", m->feedback_id, TMPL_TEXT, err, errlen)) == NULL)
		goto fail;
	if (m->unsubscribe_url != NULL) {
		if (strncmp(m->unsubscribe_url, "https://", 8) != 0) {
			snprintf(err, errlen, "%s: unsubscribe_url must be an https:// URL "
			         "(RFC 8058 one-click needs https)",
			         config_where(cfg, "message", "unsubscribe_url"));
			goto fail;
		}
		if ((f->unsub_url = compile_value(f, "unsubscribe_url", m->unsubscribe_url,
		                                  TMPL_URL, err, errlen)) == NULL)
			goto fail;
		if (f->builtin_own[B_UNSUBSCRIBE_URL] &&
		    tmpl_uses(f->unsub_url, f->builtin_idx[B_UNSUBSCRIBE_URL])) {
			snprintf(err, errlen, "%s: unsubscribe_url cannot refer to itself",
			         config_where(cfg, "message", "unsubscribe_url"));
			goto fail;
		}
	}
	if (parse_headers(f, err, errlen) < 0)
		goto fail;
	if (m->text != NULL &&
	    (f->text = compile_file(f, m->text, TMPL_TEXT, "text", err, errlen)) == NULL)
		goto fail;
	if (m->html != NULL &&
	    (f->html = compile_file(f, m->html, TMPL_HTML, "html", err, errlen)) == NULL)
		goto fail;
	if (m->nattachments > 0 &&
	    (f->atts = calloc(m->nattachments, sizeof(*f->atts))) == NULL)
		goto nomem;
	for (size_t i = 0; i < m->nattachments; i++) {
		if ((f->atts[i] = mime_attachment_load(m->attachments[i], err, errlen)) == NULL) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (named by attachments at %s)",
			         config_where(cfg, "message", "attachments"));
			goto fail;
		}
		f->natts++;
	}
	if (load_keys(f, err, errlen) < 0)
		goto fail;
	if (f->untracked > 0)
		edm_warn("%s: %zu link%s with a template variable in the URL %s not "
		         "click-tracked (the target differs per recipient)",
		         m->html, f->untracked, f->untracked == 1 ? "" : "s",
		         f->untracked == 1 ? "is" : "are");
	return f;

nomem:
	snprintf(err, errlen, "out of memory");
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	message_factory_free(f);
	return NULL;
}

/* SHA-256 fetched once for the process: SHA256() fetches the algorithm
 * from the provider store (a lookup under a lock) on every call. */
static EVP_MD *msgid_md;
static pthread_once_t msgid_once = PTHREAD_ONCE_INIT;

static void msgid_md_fetch(void)
{
	msgid_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void message_id_make(const char *campaign, size_t row, const char *addr_key,
                     const char *domain, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t clen = strlen(campaign), alen = strlen(addr_key), len, k;
	unsigned char md[EVP_MAX_MD_SIZE];
	char in[1024], id[64], rowbuf[24];
	int rlen = 0;

	/* Deterministic: the same campaign, row and address always give the
	 * same id (bounces are matched by it); 64 bits of hash keep ids of
	 * different campaigns apart. Written by hand: snprintf with eight
	 * %02x cost more than the hash. */
	do {
		id[rlen++] = (char)('0' + row % 10);
		row /= 10;
	} while (row > 0);
	for (int i = 0; i < rlen; i++)
		rowbuf[i] = id[rlen - 1 - i];
	len = clen + 1 + (size_t)rlen + 1 + alen;
	if (len >= sizeof(in)) {
		/* cut where snprintf cut it, for the same ids as before */
		len = (size_t)snprintf(in, sizeof(in), "%s%c%.*s%c%s", campaign,
		                       0, rlen, rowbuf, 0, addr_key);
		if (len >= sizeof(in))
			len = sizeof(in) - 1;
	} else {
		memcpy(in, campaign, clen);
		in[clen] = '\0';
		memcpy(in + clen + 1, rowbuf, (size_t)rlen);
		in[clen + 1 + (size_t)rlen] = '\0';
		memcpy(in + clen + 2 + (size_t)rlen, addr_key, alen);
	}
	pthread_once(&msgid_once, msgid_md_fetch);
	if (msgid_md == NULL ||
	    EVP_Digest(in, len, md, NULL, msgid_md, NULL) != 1)
		SHA256((const unsigned char *)in, len, md);
	memcpy(id, "edm.", 4);
	k = 4;
	memcpy(id + k, rowbuf, (size_t)rlen);
	k += (size_t)rlen;
	id[k++] = '.';
	for (int i = 0; i < 8; i++) {
		id[k++] = hex[md[i] >> 4];
		id[k++] = hex[md[i] & 15];
	}
	id[k++] = '@';
	/* "id@domain" cut to n - 1 octets, as snprintf did */
	if (n == 0)
		return;
	len = strlen(domain);
	if (k > n - 1)
		k = n - 1;
	memcpy(out, id, k);
	if (len > n - 1 - k)
		len = n - 1 - k;
	memcpy(out + k, domain, len);
	out[k + len] = '\0';
}

int message_factory_set_secret(struct message_factory *f, const void *secret,
                               size_t len, char *err, size_t errlen)
{
	struct token_key *k = token_key_new(secret, len, f->cfg->campaign.name);

	if (k == NULL)
		return edm_errf(err, errlen, "out of memory");
	token_key_free(f->tkey);
	f->tkey = k;
	return 0;
}

int message_factory_tracking_init(struct message_factory *f, char *err,
                                   size_t errlen)
{
	const char *rp = f->cfg->smtp.return_path, *secret;
	size_t len;

	if (!f->tracking && (rp == NULL || strstr(rp, "{{token}}") == NULL))
		return 0;
	if (config_tracking_secret(f->cfg, &secret, &len, err, errlen) < 0)
		return -1;
	if (f->tracking && strncmp(f->cfg->tracking.base_url, "https://", 8) != 0)
		edm_warn("%s: [tracking] base_url is not https: Gmail and Yahoo ignore "
		         "a one-click List-Unsubscribe URL that is not https (RFC 8058)",
		         config_where(f->cfg, "tracking", "base_url"));
	return message_factory_set_secret(f, secret, len, err, errlen);
}

const struct token_key *message_token_key(const struct message_factory *f)
{
	return f->tkey;
}

const struct link_table *message_links(const struct message_factory *f)
{
	return &f->links;
}

void message_id(const struct message_factory *f, size_t row,
                const struct addr *to, char *out, size_t n)
{
	message_id_make(f->cfg->campaign.name, row, to->key, f->from_domain, out, n);
}

/* Render 't' into 'out' (reset first); NULL templates render empty. */
static int render(const struct tmpl *t, const struct tmpl_values *v,
                  int strict, struct buf *out, char *err, size_t errlen)
{
	int rc;

	buf_reset(out);
	if (t == NULL)
		return 0;
	rc = tmpl_render(t, v, strict, out, err, errlen);
	return rc == TMPL_EMPTY ? MESSAGE_TEMPLATE : rc;
}

/* Make room for the per-row value table and header table in scratch. */
static int scratch_grow(const struct message_factory *f,
                        struct message_scratch *s)
{
	if (s->nvals < f->nnames) {
		const char **v = realloc(s->vals, f->nnames * sizeof(*v));
		size_t *l = v ? realloc(s->lens, f->nnames * sizeof(*l)) : NULL;
		if (v != NULL)
			s->vals = v;
		if (l == NULL)
			return -1;
		s->lens = l;
		s->nvals = f->nnames;
	}
	if (s->nhdrs < f->nheaders) {
		size_t *o = realloc(s->hdr_off, f->nheaders * sizeof(*o));
		struct mime_header *m = o ? realloc(s->mhdrs, f->nheaders * sizeof(*m)) : NULL;
		if (o != NULL)
			s->hdr_off = o;
		if (m == NULL)
			return -1;
		s->mhdrs = m;
		s->nhdrs = f->nheaders;
	}
	return 0;
}

/* Percent-encode bytes that may not appear in a URL (RFC 3986): values
 * from the CSV land inside unsubscribe_url unescaped by Mustache. */
static int url_sanitise(struct buf *b, struct buf *tmp)
{
	static const char hex[] = "0123456789ABCDEF";

	buf_reset(tmp);
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' ||
		    c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}') {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			if (buf_append(tmp, e, 3) < 0)
				return -1;
		} else if (buf_putc(tmp, (char)c) < 0) {
			return -1;
		}
	}
	buf_reset(b);
	return buf_append(b, tmp->data, tmp->len);
}

/* Render every template of the row into the scratch buffers. */
static int render_all(const struct message_factory *f, const struct csv_row *csv,
                      const struct addr *to, time_t now,
                      struct message_scratch *s, char *err, size_t errlen,
                      int bodies)
{
	struct tmpl_values v;
	char rowbuf[24], date[16];
	struct tm tm;
	int rc;

	if (scratch_grow(f, s) < 0)
		return edm_errf(err, errlen, "out of memory");
	v.vals = s->vals;
	v.lens = s->lens;
	for (size_t i = 0; i < f->ncols; i++) {
		s->vals[i] = i < csv->nfields ? csv->fields[i] : NULL;
		s->lens[i] = i < csv->nfields ? csv->lens[i] : 0;
	}
	/* The address column renders normalised, whatever its name. */
	s->vals[f->email_col] = to->norm;
	s->lens[f->email_col] = to->len;
	message_id(f, csv->row, to, s->msgid, sizeof(s->msgid));
	s->token[0] = '\0';
	if (f->tkey != NULL && token_make(f->tkey, csv->row, s->token) < 0)
		return edm_errf(err, errlen, "row %zu: no tracking token for this row "
		                "number", csv->row);
	buf_reset(&s->track_unsub);
	if (f->tracking &&
	    buf_printf(&s->track_unsub, "%s/u/%s", f->cfg->tracking.base_url,
	               s->token) < 0)
		return edm_errf(err, errlen, "out of memory");
	snprintf(rowbuf, sizeof(rowbuf), "%zu", csv->row);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	const char *bv[B_COUNT] = {
		[B_EMAIL] = to->norm,
		[B_CAMPAIGN] = f->cfg->campaign.name,
		[B_ROW] = rowbuf,
		[B_MESSAGE_ID] = s->msgid,
		[B_UNSUBSCRIBE_URL] = "",
		[B_TRACKING_PIXEL] = "",
		[B_DATE] = date,
		[B_TOKEN] = s->token,
	};
	for (int b = 0; b < B_COUNT; b++)
		if (f->builtin_own[b]) {
			s->vals[f->builtin_idx[b]] = bv[b];
			s->lens[f->builtin_idx[b]] = strlen(bv[b]);
		}
	/* Always strict: a one-click link with a hole in it unsubscribes
	 * nobody, and receivers hold that against the sender. */
	if ((rc = render(f->unsub_url, &v, 1, &s->unsub_url, err, errlen)) != 0)
		return rc;
	if (f->unsub_url != NULL && url_sanitise(&s->unsub_url, &s->tmp) < 0)
		return edm_errf(err, errlen, "out of memory");
	if (f->builtin_own[B_UNSUBSCRIBE_URL]) {
		/* the config's own URL, else edm track's with tracking on */
		const struct buf *u = f->unsub_url != NULL || !f->tracking
		                    ? &s->unsub_url : &s->track_unsub;
		s->vals[f->builtin_idx[B_UNSUBSCRIBE_URL]] = u->data ? u->data : "";
		s->lens[f->builtin_idx[B_UNSUBSCRIBE_URL]] = u->len;
	}
	if ((rc = render(f->subject, &v, f->strict, &s->subject, err, errlen)) != 0 ||
	    (rc = render(f->from_name, &v, f->strict, &s->from_name, err, errlen)) != 0 ||
	    (rc = render(f->to_name, &v, f->strict, &s->to_name, err, errlen)) != 0 ||
	    (rc = render(f->feedback_id, &v, f->strict, &s->feedback_id, err, errlen)) != 0)
		return rc;
	/* Extra header values back to back in hdrs, found by offset (a NUL
	 * inside one value can only cut that value short). */
	buf_reset(&s->hdrs);
	for (size_t i = 0; i < f->nheaders; i++) {
		if ((rc = render(f->headers[i].value, &v, f->strict, &s->tmp, err, errlen)) != 0)
			return rc;
		s->hdr_off[i] = s->hdrs.len;
		if (buf_append(&s->hdrs, s->tmp.data ? s->tmp.data : "", s->tmp.len) < 0 ||
		    buf_putc(&s->hdrs, '\0') < 0)
			return edm_errf(err, errlen, "out of memory");
	}
	if (!bodies && !f->strict)
		return 0;
	if ((rc = render(f->text, &v, f->strict, &s->text, err, errlen)) != 0 ||
	    (rc = render(f->html, &v, f->strict, &s->html, err, errlen)) != 0)
		return rc;
	return 0;
}

/* Trim blanks (a to_name of "{{first}} {{last}}" with both empty). */
static const char *trimmed(struct buf *b)
{
	size_t i = 0;

	if (b->data == NULL || b->len == 0)
		return NULL;
	while (b->len > 0 && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
		b->data[--b->len] = '\0';
	while (i < b->len && (b->data[i] == ' ' || b->data[i] == '\t'))
		i++;
	return b->data[i] != '\0' ? b->data + i : NULL;
}

int message_check(const struct message_factory *f, const struct csv_row *csv,
                  const struct addr *to, struct message_scratch *s,
                  char *err, size_t errlen)
{
	return render_all(f, csv, to, 0, s, err, errlen, 0);
}

int message_render(const struct message_factory *f, const struct csv_row *csv,
                   const struct addr *to, time_t now,
                   struct message_scratch *s, struct buf *out,
                   char *err, size_t errlen)
{
	int rc;

	if (f->tracking && f->tkey == NULL)
		return edm_errf(err, errlen, "internal: [tracking] is on but the "
		                "secret was not loaded");
	if ((rc = render_all(f, csv, to, now, s, err, errlen, 1)) != 0)
		return rc;
	for (size_t i = 0; i < f->nheaders; i++) {
		s->mhdrs[i].name = f->headers[i].name;
		s->mhdrs[i].value = s->hdrs.data + s->hdr_off[i];
	}
	struct mime_message mm = {
		.from_name = trimmed(&s->from_name),
		.from_addr = f->from_addr,
		.to_name = trimmed(&s->to_name),
		.to_addr = to->norm,
		.reply_to = f->reply_to,
		.subject = s->subject.data ? s->subject.data : "",
		.message_id = s->msgid,
		.date = now,
		.text = f->text ? s->text.data : NULL,
		.text_len = s->text.len,
		.html = f->html ? s->html.data : NULL,
		.html_len = s->html.len,
		/* List-Unsubscribe: edm track's URL whenever tracking is on */
		.unsub_url = f->tracking ? s->track_unsub.data
		           : f->unsub_url ? s->unsub_url.data : NULL,
		.unsub_mailto = f->unsub_mailto,
		.unsub_http_ok = f->tracking,
		.feedback_id = trimmed(&s->feedback_id),
		.headers = s->mhdrs,
		.nheaders = f->nheaders,
		.atts = f->atts,
		.natts = f->natts,
	};
	buf_reset(&s->mime);
	if (mime_build(&mm, &s->mime, err, errlen) < 0)
		return -1;
	if (f->nkeys > 0 &&
	    dkim_sign((struct dkim_key *const *)f->keys, f->nkeys, s->mime.data,
	              s->mime.len, now, out, err, errlen) < 0)
		return -1;
	return buf_append(out, s->mime.data, s->mime.len);
}

const char *message_from_addr(const struct message_factory *f)
{
	return f->from_addr;
}

void message_scratch_free(struct message_scratch *s)
{
	buf_free(&s->subject);
	buf_free(&s->from_name);
	buf_free(&s->to_name);
	buf_free(&s->text);
	buf_free(&s->html);
	buf_free(&s->feedback_id);
	buf_free(&s->unsub_url);
	buf_free(&s->track_unsub);
	buf_free(&s->hdrs);
	buf_free(&s->mime);
	buf_free(&s->tmp);
	free(s->vals);
	free(s->lens);
	free(s->hdr_off);
	free(s->mhdrs);
	memset(s, 0, sizeof(*s));
}

void message_factory_free(struct message_factory *f)
{
	if (f == NULL)
		return;
	tmpl_free(f->subject);
	tmpl_free(f->from_name);
	tmpl_free(f->to_name);
	tmpl_free(f->text);
	tmpl_free(f->html);
	tmpl_free(f->feedback_id);
	tmpl_free(f->unsub_url);
	link_table_free(&f->links);
	token_key_free(f->tkey);
	for (size_t i = 0; i < f->nheaders; i++) {
		free(f->headers[i].name);
		tmpl_free(f->headers[i].value);
	}
	free(f->headers);
	for (size_t i = 0; i < f->natts; i++)
		mime_attachment_free(f->atts[i]);
	free(f->atts);
	for (size_t i = 0; i < f->nkeys; i++)
		dkim_key_free(f->keys[i]);
	free(f->from_addr);
	free(f->from_domain);
	free(f->reply_to);
	free(f->unsub_mailto);
	free(f->names);
	free(f);
}
