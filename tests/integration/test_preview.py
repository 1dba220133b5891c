#!/usr/bin/python3
"""`edm preview` and `edm dkim keygen` end to end, checked by independent
implementations: Python's email package (policy.default) parses every
message, python3-dkim verifies every signature (RSA and Ed25519) against the
record `edm dkim keygen` printed. Also the `template` reason of validate.

usage: test_preview.py EDM
"""
import base64
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import dkim

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "preview")
EX_DATAERR, EX_CONFIG = 65, 78
DATE = "1795317917"  # pinned Date for reproducible output

ROWS = [
    # email, first_name, last_name, city, code
    ("zhang.wei@acme.example", "伟", "张", "深圳", "C001"),
    ("eve@acme.example", "Eve\r\nBcc: x@evil.example", "<b>Evil</b>", "A & B", "C002"),
    ("nobody@acme.example", "", "", "Lyon", "C003"),
    ("smuggle@acme.example", "Sam", "S", "line1\n.\r\nMAIL FROM:<x@evil.example>\r.\r", "C004"),
]


def csv_line(fields):
    out = []
    for f in fields:
        if any(c in f for c in ',"\r\n'):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out)


class Campaign:
    def __init__(self, tc, message_extra="", dkim_sections="", html=True, text=True,
                 rows=ROWS, subject="{{first_name|朋友}}, 双十一 50% off"):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="edm-preview-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        for name in os.listdir(FIXTURES):
            shutil.copy(os.path.join(FIXTURES, name), self.dir)
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8", newline="") as f:
            f.write("email,first_name,last_name,city,code\n")
            for r in rows:
                f.write(csv_line(r) + "\n")
        body = ("text = body.txt\n" if text else "") + ("html = body.html\n" if html else "")
        with open(os.path.join(self.dir, "c.ini"), "w", encoding="utf-8") as f:
            f.write("[campaign]\nname = spring\nrecipients = list.csv\nout_dir = out\n"
                    "[validate]\ndns = no\n"
                    "[message]\n"
                    'from = "Acme 商城 <news@acme.example>"\n'
                    "to_name = {{first_name}} {{last_name}}\n"
                    "reply_to = support@acme.example\n"
                    "subject = " + subject + "\n" + body +
                    "unsubscribe_url = https://acme.example/u?e={{email}}&c={{code}}\n"
                    "unsubscribe_mailto = unsubscribe@acme.example\n"
                    "feedback_id = {{campaign}}:acme:edm\n"
                    "headers = X-Campaign: {{campaign}}\n"
                    "  X-Customer: {{first_name}}\n" + message_extra + dkim_sections)

    def path(self, name):
        return os.path.join(self.dir, name)

    def edm(self, *args, expect=0):
        p = subprocess.run([EDM] + list(args), capture_output=True, timeout=60)
        self.tc.assertEqual(p.returncode, expect,
                            "edm %s: exit %d\n%s" % (" ".join(args), p.returncode,
                                                     p.stderr.decode(errors="replace")))
        return p

    def preview(self, row=1, expect=0):
        p = self.edm("preview", "--row", str(row), "--date", DATE, self.path("c.ini"),
                     expect=expect)
        return p.stdout

    def keygen(self, name, typ):
        p = self.edm("dkim", "keygen", "--domain", "acme.example", "--selector", name,
                     "--type", typ, "--out", self.path(name + ".pem"))
        out = p.stdout.decode()
        # the record: SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; ..." "..."
        m = re.search(r'IN\s+TXT\s+((?:"[^"]*"\s*)+)', out)
        self.tc.assertIsNotNone(m, out)
        return "".join(re.findall(r'"([^"]*)"', m.group(1))).encode()


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def lines_ok(tc, raw):
    """CRLF only, no line over 998 octets, 7-bit."""
    tc.assertNotRegex(raw, rb"[^\r]\n")
    tc.assertNotRegex(raw, rb"\r[^\n]")
    for line in raw.split(b"\r\n"):
        tc.assertLessEqual(len(line), 998)
    tc.assertTrue(all(b < 0x80 for b in raw), "message is not 7-bit")


class TestPreview(unittest.TestCase):
    def test_row1_parses_and_renders(self):
        c = Campaign(self)
        raw = c.preview(1)
        lines_ok(self, raw)
        m = parse(raw)
        self.assertEqual(str(m["Subject"]), "伟, 双十一 50% off")
        self.assertEqual(m["From"].addresses[0].display_name, "Acme 商城")
        self.assertEqual(m["From"].addresses[0].addr_spec, "news@acme.example")
        self.assertEqual(m["To"].addresses[0].display_name, "伟 张")
        self.assertEqual(m["To"].addresses[0].addr_spec, "zhang.wei@acme.example")
        self.assertEqual(str(m["Reply-To"]), "support@acme.example")
        self.assertEqual(str(m["MIME-Version"]), "1.0")
        self.assertEqual(str(m["X-Campaign"]), "spring")
        self.assertIn(b"\r\nX-Campaign: spring\r\n", raw)  # one blank after the colon
        self.assertEqual(str(m["Feedback-ID"]), "spring:acme:edm")
        self.assertEqual(str(m["List-Unsubscribe"]),
                         "<https://acme.example/u?e=zhang.wei%40acme.example&c=C001>, "
                         "<mailto:unsubscribe@acme.example>")
        self.assertEqual(str(m["List-Unsubscribe-Post"]), "List-Unsubscribe=One-Click")
        self.assertRegex(str(m["Message-ID"]), r"^<edm\.1\.[0-9a-f]{16}@acme\.example>$")
        self.assertEqual(m["Date"].datetime.timestamp(), int(DATE))
        text = m.get_body(("plain",)).get_content()
        self.assertIn("Hi 伟,", text)
        self.assertIn("50% off everything in 深圳.", text)
        self.assertIn("Acme 商城 · unsubscribe: https://acme.example/u?e=zhang.wei%40acme.example&c=C001", text)
        html = m.get_body(("html",)).get_content()
        self.assertIn("<h1>Hi 伟!</h1>", html)
        self.assertIn('href="https://acme.example/u?e=zhang.wei%40acme.example&amp;c=C001"', html)
        # the same row renders the same bytes (deterministic ids, boundaries)
        self.assertEqual(raw, c.preview(1))

    def test_attachments_and_inline_image(self):
        c = Campaign(self, message_extra="attachments = terms.txt, 条款.txt, logo.png\n")
        m = parse(c.preview(1))
        self.assertEqual(m.get_content_type(), "multipart/mixed")
        atts = {a.get_filename(): a.get_content() for a in m.iter_attachments()}
        self.assertEqual(atts.get("terms.txt"),
                         "Terms and conditions of the Acme spring sale.\n")
        self.assertEqual(atts.get("条款.txt"), "双十一活动条款：满100减50。\n")
        # logo.png is referenced as cid: in the HTML: inline, in multipart/related
        related = [p for p in m.walk() if p.get_content_type() == "multipart/related"]
        self.assertEqual(len(related), 1)
        imgs = [p for p in related[0].walk() if p.get_content_type() == "image/png"]
        self.assertEqual(len(imgs), 1)
        self.assertEqual(str(imgs[0]["Content-ID"]), "<logo.png>")
        with open(c.path("logo.png"), "rb") as f:
            self.assertEqual(imgs[0].get_content(), f.read())

    def test_header_injection_and_escaping(self):
        c = Campaign(self)
        raw = c.preview(2)
        lines_ok(self, raw)
        m = parse(raw)
        self.assertIsNone(m["Bcc"])
        self.assertNotIn(b"\r\nBcc:", raw.split(b"\r\n\r\n")[0])
        self.assertEqual(len(m.get_all("Subject")), 1)
        self.assertIn("Bcc: x@evil.example", str(m["Subject"]))  # kept as text, one line
        self.assertEqual(len(m.get_all("X-Customer")), 1)
        self.assertEqual(m["To"].addresses[0].addr_spec, "eve@acme.example")
        html = m.get_body(("html",)).get_content()
        self.assertIn("A &amp; B", html)  # HTML-escaped in the HTML part
        text = m.get_body(("plain",)).get_content()
        self.assertIn("in A & B.", text)  # not escaped in the text part

    def test_smuggling_normalised(self):
        c = Campaign(self)
        raw = c.preview(4)
        lines_ok(self, raw)  # every CR and LF paired
        text = parse(raw).get_body(("plain",)).get_content()
        self.assertIn("MAIL FROM:<x@evil.example>", text)

    def test_html_only_gets_text_part(self):
        c = Campaign(self, text=False)
        m = parse(c.preview(1))
        self.assertEqual(m.get_content_type(), "multipart/alternative")
        text = m.get_body(("plain",)).get_content()
        self.assertIn("Hi 伟!", text)
        self.assertIn("Unsubscribe (https://acme.example/u?e=zhang.wei%40acme.example&c=C001)", text)
        self.assertNotIn("<h1>", text)

    def test_text_only(self):
        c = Campaign(self, html=False)
        m = parse(c.preview(1))
        self.assertEqual(m.get_content_type(), "text/plain")
        self.assertIn("Hi 伟,", m.get_content())

    def test_message_ids_differ_per_row(self):
        c = Campaign(self)
        ids = {str(parse(c.preview(r))["Message-ID"]) for r in (1, 2, 3)}
        self.assertEqual(len(ids), 3)

    def test_all_writes_one_eml_per_row(self):
        c = Campaign(self)
        out = c.path("eml")
        p = c.edm("preview", "--all", "--out-dir", out, "--date", DATE, c.path("c.ini"))
        files = sorted(os.listdir(out))
        self.assertEqual(files, ["row-%06d.eml" % i for i in range(1, len(ROWS) + 1)])
        for name in files:
            with open(os.path.join(out, name), "rb") as f:
                parse(f.read())
            self.assertEqual(os.stat(os.path.join(out, name)).st_mode & 0o777, 0o600)
        self.assertIn(b"4 messages written", p.stdout)

    def test_errors(self):
        c = Campaign(self)
        p = c.edm("preview", "--row", "99", c.path("c.ini"), expect=EX_DATAERR)
        self.assertIn(b"no row 99", p.stderr)
        c2 = Campaign(self, subject="{{frist_name}} hello")
        p = c2.edm("preview", c2.path("c.ini"), expect=EX_CONFIG)
        self.assertRegex(p.stderr.decode(), r"c\.ini:\d+: \{\{frist_name\}\}: no column 'frist_name'")
        p = c2.edm("validate", "--no-dns", c2.path("c.ini"), expect=EX_CONFIG)
        self.assertIn(b"frist_name", p.stderr)
        c3 = Campaign(self)
        with open(c3.path("c.ini"), encoding="utf-8") as f:
            ini = f.read().replace("headers = X-Campaign:", "headers = Bcc: x@evil.example\n  X-Campaign:")
        with open(c3.path("c.ini"), "w", encoding="utf-8") as f:
            f.write(ini)
        p = c3.edm("preview", c3.path("c.ini"), expect=EX_CONFIG)
        self.assertIn(b"Bcc cannot be set here", p.stderr)

    def test_strict_variables(self):
        c = Campaign(self, message_extra="strict_variables = yes\n",
                     subject="Hello {{first_name}}")
        p = c.edm("preview", "--row", "3", c.path("c.ini"), expect=EX_DATAERR)
        self.assertIn(b"first_name is empty", p.stderr)
        c.edm("validate", "--no-dns", "--no-progress", c.path("c.ini"))
        with open(os.path.join(c.dir, "out", "rejects.csv"), encoding="utf-8") as f:
            rej = f.read()
        self.assertRegex(rej, r"nobody@acme\.example,.*,template,[^,]*first_name is empty,,3")
        # a default is never a strict failure
        c2 = Campaign(self, message_extra="strict_variables = yes\nto_name = {{last_name|x}}\n",
                      subject="Hello {{first_name|friend}}")
        with open(c2.path("c.ini"), encoding="utf-8") as f:
            ini = f.read().replace("to_name = {{first_name}} {{last_name}}\n", "")
        ini = ini.replace("  X-Customer: {{first_name}}\n", "")
        with open(c2.path("c.ini"), "w", encoding="utf-8") as f:
            f.write(ini)
        m = parse(c2.preview(3))
        self.assertEqual(str(m["Subject"]), "Hello friend")


class TestReviewFindings(unittest.TestCase):
    def test_options_after_config(self):
        c = Campaign(self)
        p = subprocess.run([EDM, "preview", c.path("c.ini"), "--row", "2", "--date", DATE],
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(parse(p.stdout)["To"].addresses[0].addr_spec, "eve@acme.example")
        p = subprocess.run([EDM, "validate", c.path("c.ini"), "--no-dns", "--no-progress"],
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_address_column_renders_normalised_and_url_encoded(self):
        rows = [("  Ann+News@Bücher.EXAMPLE ", "Ann", "A", "X", "C1")]
        c = Campaign(self, rows=rows)
        with open(c.path("list.csv"), "r+", encoding="utf-8") as f:
            data = f.read().replace("email,first_name", "Work Mail,first_name", 1)
            f.seek(0)
            f.write(data)
            f.truncate()
        with open(c.path("c.ini"), encoding="utf-8") as f:
            ini = f.read().replace("out_dir = out\n", "out_dir = out\nemail_column = work mail\n")
        with open(c.path("c.ini"), "w", encoding="utf-8") as f:
            f.write(ini)
        m = parse(c.preview(1))
        self.assertEqual(m["To"].addresses[0].addr_spec, "Ann+News@xn--bcher-kva.example")
        self.assertEqual(str(m["List-Unsubscribe"]).split(",")[0],
                         "<https://acme.example/u?e=Ann%2BNews%40xn--bcher-kva.example&c=C1>")

    def test_empty_variable_in_unsubscribe_url_is_a_reject(self):
        rows = ROWS[:1] + [("nocode@acme.example", "N", "C", "X", "")]
        c = Campaign(self, rows=rows)
        p = c.edm("preview", "--row", "2", c.path("c.ini"), expect=EX_DATAERR)
        self.assertIn(b"code is empty", p.stderr)
        c.edm("validate", "--no-dns", "--no-progress", c.path("c.ini"))
        with open(os.path.join(c.dir, "out", "rejects.csv"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"nocode@acme\.example,.*,template,.*code is empty,,2")

    def test_hash_in_subject_is_kept(self):
        c = Campaign(self, subject="Spring sale #2 ; a comment")
        self.assertEqual(str(parse(c.preview(1))["Subject"]), "Spring sale #2")

    def test_indented_key_is_an_error(self):
        c = Campaign(self, message_extra="feedback_id = x\n  reply_to = a@b.example\n")
        with open(c.path("c.ini"), encoding="utf-8") as f:
            ini = f.read().replace("feedback_id = {{campaign}}:acme:edm\n", "")
        with open(c.path("c.ini"), "w", encoding="utf-8") as f:
            f.write(ini)
        p = c.edm("preview", c.path("c.ini"), expect=EX_CONFIG)
        self.assertIn(b"continues 'feedback_id'", p.stderr)

    def test_malformed_extra_fields_kept_whole_and_nul_rejected(self):
        c = Campaign(self, rows=ROWS[:1])
        extra = ",".join("extra-field-%02d-%s" % (i, "x" * 40) for i in range(20))
        with open(c.path("list.csv"), "ab") as f:
            f.write(b"wide@acme.example,W,W,W,C9," + extra.encode() + b"\n")
            f.write(b"nul@acme.example,N\x00X,N,N,C8\n")
        c.edm("validate", "--no-dns", "--no-progress", c.path("c.ini"))
        import csv as csvmod
        with open(os.path.join(c.dir, "out", "rejects.csv"), encoding="utf-8", newline="") as f:
            rej = list(csvmod.reader(f))
        h = rej[0]
        wide = [r for r in rej if r[0] == "wide@acme.example"][0]
        self.assertEqual(wide[h.index("reason")], "malformed")
        for i in range(20):
            self.assertIn("extra-field-%02d-%s" % (i, "x" * 40), wide[h.index("detail")])
        nul = [r for r in rej if r[0] == "nul@acme.example"][0]
        self.assertEqual(nul[h.index("reason")], "encoding")
        self.assertIn("NUL", nul[h.index("detail")])

    def test_wide_csv_does_not_overflow_the_stack(self):
        c = Campaign(self, rows=[])
        ncol = 450000  # ~7 MB of value table: more than a thread's stack
        with open(c.path("list.csv"), "w", encoding="utf-8") as f:
            f.write("email,first_name,last_name,city,code" + ",x" * ncol + "\n")
            f.write("a@acme.example,A,B,C,D" + "," * ncol + "\n")
        m = parse(c.preview(1))
        self.assertEqual(m["To"].addresses[0].addr_spec, "a@acme.example")


class TestDkim(unittest.TestCase):
    def test_rsa_and_ed25519_verify(self):
        c = Campaign(self)
        rsa = c.keygen("s2026", "rsa")
        ed = c.keygen("e2026", "ed25519")
        self.assertIn(b"k=rsa", rsa)
        self.assertIn(b"k=ed25519", ed)
        self.assertEqual(os.stat(c.path("s2026.pem")).st_mode & 0o777, 0o600)
        with open(c.path("c.ini"), "a") as f:
            f.write("[dkim]\ndomain = acme.example\nselector = s2026\nkey = s2026.pem\n"
                    "[dkim ed25519]\ndomain = acme.example\nselector = e2026\nkey = e2026.pem\n")
        records = {b"s2026._domainkey.acme.example.": rsa,
                   b"e2026._domainkey.acme.example.": ed}

        def dnsfunc(name, timeout=5):
            return records.get(name)

        for row in (1, 2, 4):
            raw = c.preview(row)
            lines_ok(self, raw)
            sigs = parse(raw).get_all("DKIM-Signature")
            self.assertEqual(len(sigs), 2)
            for i in range(2):
                self.assertTrue(self._verify_nth(raw, i, dnsfunc), "row %d sig %d" % (row, i))
            for s in sigs:
                self.assertNotRegex(str(s), r"(^|;)\s*l=")
                h = re.search(r"h=([^;]*)", str(s).replace("\r\n", "").replace(" ", "")).group(1)
                names = h.lower().split(":")
                # oversigned: list-unsubscribe(-post) appear twice (once present)
                self.assertEqual(names.count("list-unsubscribe"), 2)
                self.assertEqual(names.count("list-unsubscribe-post"), 2)
                self.assertEqual(names.count("from"), 2)
        raw = c.preview(1)
        # tampering after signing breaks both signatures
        tampered = raw.replace(b"C001", b"C999")
        self.assertNotEqual(raw, tampered)
        self.assertFalse(dkim.verify(tampered, dnsfunc=dnsfunc))
        self.assertFalse(self._verify_nth(tampered, 1, dnsfunc))
        added = b"From: attacker@evil.example\r\n" + raw
        self.assertFalse(dkim.verify(added, dnsfunc=dnsfunc))

    @staticmethod
    def _verify_nth(raw, idx, dnsfunc):
        try:
            return dkim.DKIM(raw).verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            return False

    def test_weak_and_bad_keys(self):
        c = Campaign(self)
        c.edm("dkim", "keygen", "--domain", "acme.example", "--selector", "s",
              "--bits", "512", "--out", c.path("weak.pem"), expect=64)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:1024", "-out", c.path("k1024.pem")],
                       check=True, capture_output=True)
        with open(c.path("c.ini"), "a") as f:
            f.write("[dkim]\ndomain = other.example\nselector = k\nkey = k1024.pem\n")
        p = c.edm("preview", c.path("c.ini"))
        err = p.stderr.decode()
        self.assertIn("1024 bits", err)
        self.assertIn("does not align", err)
        # keygen never overwrites
        c.keygen("again", "rsa")
        c.edm("dkim", "keygen", "--domain", "acme.example", "--selector", "again",
              "--out", c.path("again.pem"), expect=73)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
