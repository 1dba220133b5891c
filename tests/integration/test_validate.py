#!/usr/bin/python3
"""`edm validate` end to end: fixture campaigns in a temp dir, the real
binary, outputs read back with Python's csv module (an independent parser).

usage: test_validate.py EDM WITH_DNSMASQ
Re-runs itself under tests/with_dnsmasq.sh so the DNS cases talk to a real
dnsmasq on a loopback port (EDM_TEST_DNS); no real resolver is ever asked:
every run passes --no-dns or --resolver.
"""
import csv
import io
import os
import stat
import subprocess
import sys
import tempfile
import unittest

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
WRAPPER = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "tests/with_dnsmasq.sh"

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CONFIG = 64, 65, 66, 78


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


class Campaign:
    """A temp dir holding a config, a recipient file and friends."""

    def __init__(self, tc, rows=None, raw=None, config_extra="", campaign_extra="",
                 header="email,first_name,city"):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="edm-validate-")
        tc.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        self.out = os.path.join(self.dir, "out")
        if raw is None:
            raw = (header + "\n" + "".join(r + "\n" for r in rows)).encode("utf-8")
        self.write("list.csv", raw)
        self.write("c.ini", ("[campaign]\nname = t\nrecipients = list.csv\nout_dir = out\n"
                             + campaign_extra + "[validate]\n" + config_extra).encode())

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))

    def run(self, *args, dns=False, expect=0, env=None):
        argv = [EDM, "validate", "--no-progress"]
        if dns:
            argv += ["--resolver", os.environ["EDM_TEST_DNS"]]
        else:
            argv += ["--no-dns"]
        argv += list(args) + [os.path.join(self.dir, "c.ini")]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **(env or {})))
        self.tc.assertEqual(p.returncode, expect,
                            "exit %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr))
        return p

    def clean(self):
        return read_csv(os.path.join(self.out, "clean.csv"))

    def rejects(self):
        return read_csv(os.path.join(self.out, "rejects.csv"))

    def reasons(self):
        """{row number: (reason, detail, suggestion)} from rejects.csv."""
        rows = self.rejects()
        h = rows[0]
        i = h.index("reason")
        return {int(r[i + 3]): (r[i], r[i + 1], r[i + 2]) for r in rows[1:]}


class TestReasons(unittest.TestCase):
    ROWS = [
        "ann@acme.example,Ann,Paris",                 # 1 keep
        "broken,row",                                 # 2 malformed (2 fields)
        "not-an-address,Bob,Rome",                    # 3 syntax
        "ANN@Acme.Example,Ann2,Paris",                # 4 duplicate of 1
        "blocked@acme.example,Bl,X",                  # 5 suppressed
        "x@mailinator.com,Dis,X",                     # 6 disposable
        "info@acme.example,Role,X",                   # 7 role (reject)
        "carl@gmial.com,Carl,X",                      # 8 typo
        "  dora@shop.example  ,Dora,X",               # 9 keep (trimmed)
        "a..b@acme.example,Dots,X",                   # 10 syntax
        '"eve@acme.example","Eve ""E"", Jr.","Line1\nLine2"',  # 11 keep (quoted)
        "fred@acme.example,Fred,X,extra1,extra2",     # 12 malformed (5 fields)
        "用户@acme.example,EAI,X",                    # 13 syntax (SMTPUTF8)
        "gus@1.2.3.4,IP,X",                           # 14 syntax
        "hal@qq.con,Hal,X",                           # 15 typo
        "Ivy@Sub.Mailinator.com,Dis2,X",              # 16 disposable (subdomain)
    ]

    def test_every_reason_in_order(self):
        c = Campaign(self, self.ROWS, config_extra="role_accounts = reject\n",
                     campaign_extra="suppression = sup.txt\n")
        c.write("sup.txt", "# suppressed\nBLOCKED@acme.example\n")
        p = c.run()
        got = c.reasons()
        want = {2: "malformed", 3: "syntax", 4: "duplicate", 5: "suppressed",
                6: "disposable", 7: "role", 8: "typo", 10: "syntax", 12: "malformed",
                13: "syntax", 14: "syntax", 15: "typo", 16: "disposable"}
        self.assertEqual({k: v[0] for k, v in got.items()}, want)
        self.assertEqual(got[8][2], "carl@gmail.com")
        self.assertEqual(got[15][2], "hal@qq.com")
        self.assertIn("SMTPUTF8", got[13][1])
        self.assertIn("expected 3 fields, got 5", got[12][1])
        self.assertIn("extra1", got[12][1])  # nothing of the row is lost
        clean = c.clean()
        self.assertEqual(clean[0], ["email", "first_name", "city"])
        # kept rows verbatim, original order, quoted fields intact
        self.assertEqual(clean[1:], [["ann@acme.example", "Ann", "Paris"],
                                     ["  dora@shop.example  ", "Dora", "X"],
                                     ["eve@acme.example", 'Eve "E", Jr.', "Line1\nLine2"]])
        rej = c.rejects()
        self.assertEqual(rej[0], ["email", "first_name", "city", "reason", "detail",
                                  "suggestion", "row"])
        # every row accounted for exactly once
        self.assertEqual(len(clean) - 1 + len(rej) - 1, len(self.ROWS))
        for name in ("clean.csv", "rejects.csv"):
            mode = stat.S_IMODE(os.stat(os.path.join(c.out, name)).st_mode)
            self.assertEqual(mode, 0o600, name)
        self.assertFalse([f for f in os.listdir(c.out) if f.endswith(".tmp")])
        self.assertRegex(p.stdout, r"kept\s+3\b")
        self.assertRegex(p.stdout, r"rejected\s+13\b")
        self.assertRegex(p.stdout, r"syntax\s+4\b")
        self.assertRegex(p.stdout, r"typo\s+2\b")

    def test_keep_settings(self):
        c = Campaign(self, ["info@acme.example,R,X", "x@mailinator.com,D,X",
                            "carl@gmial.com,T,X"],
                     config_extra="role_accounts = keep\ndisposable = keep\ntypos = keep\n")
        c.run()
        self.assertEqual(len(c.clean()), 4)
        self.assertEqual(len(c.rejects()), 1)

    def test_role_kept_by_default(self):
        c = Campaign(self, ["info@acme.example,R,X"])
        c.run()
        self.assertEqual(len(c.clean()), 2)

    def test_idn_duplicates(self):
        c = Campaign(self, ["anna@münchen.example,A,X", "Anna@XN--MNCHEN-3YA.example,B,X",
                            "anna@MÜNCHEN.example,C,X"])
        c.run()
        self.assertEqual({k: v[0] for k, v in c.reasons().items()},
                         {2: "duplicate", 3: "duplicate"})

    def test_column_collision_and_email_column(self):
        c = Campaign(self, ["x,bad,1", "ok@acme.example,fine,2"],
                     header="Name,Reason,row", campaign_extra="")
        # the address column is named differently: error first
        p = c.run(expect=EX_DATAERR)
        self.assertIn('no column "email"', p.stderr)
        self.assertIn('"Name", "Reason", "row"', p.stderr)
        c2 = Campaign(self, ["x,bad,1", "ok@acme.example,fine,2"],
                      header="E-Mail ,reason,row", campaign_extra="email_column = e-mail\n")
        c2.run()
        self.assertEqual(c2.rejects()[0], ["E-Mail ", "reason", "row", "edm_reason",
                                           "detail", "suggestion", "edm_row"])

    def test_crlf_bom_and_quoted_newlines_numbering(self):
        raw = ("\ufeffemail,note\r\n"
               "a@acme.example,\"multi\r\nline\"\r\n"
               "bad,x\r\n"
               "\r\n"
               "b@acme.example,ok\r\n"
               "worse,y").encode("utf-8")
        c = Campaign(self, raw=raw)
        c.run()
        self.assertEqual(c.clean()[0], ["email", "note"])
        self.assertEqual(c.clean()[1], ["a@acme.example", "multi\r\nline"])
        got = c.reasons()
        # the quoted line break does not start a row; the blank line is skipped
        self.assertEqual(sorted(got), [2, 4])

    def test_out_dir_override_and_rerun(self):
        c = Campaign(self, ["a@acme.example,A,X"])
        other = os.path.join(c.dir, "elsewhere", "deep")
        c.run("--out-dir", other)
        self.assertTrue(os.path.exists(os.path.join(other, "clean.csv")))
        self.assertEqual(stat.S_IMODE(os.stat(other).st_mode), 0o700)
        c.run("--out-dir", other)  # a second run replaces the outputs
        self.assertEqual(len(read_csv(os.path.join(other, "clean.csv"))), 2)

    def test_suppression_csv_format(self):
        c = Campaign(self, ["a@acme.example,A,X", "b@acme.example,B,X"],
                     campaign_extra="suppression = unsub.csv\n")
        c.write("unsub.csv", "time,Email,why\n2026-01-01,B@ACME.example,unsubscribe\n")
        c.run()
        self.assertEqual({k: v[0] for k, v in c.reasons().items()}, {2: "suppressed"})


class TestEncodings(unittest.TestCase):
    NAMES = ["张伟", "王芳", "李娜", "刘洋"]

    def gbk_file(self, bad_row=None):
        lines = ["email,姓名,城市"]
        for i, n in enumerate(self.NAMES):
            lines.append("u%d@acme.example,%s,深圳" % (i, n))
        data = b"".join(l.encode("gbk") + b"\r\n" for l in lines)
        if bad_row is not None:
            # a lone GBK lead byte followed by ASCII: invalid in GBK/GB18030
            data += b"bad@acme.example,\x81,x\r\n"
        return data

    def test_gbk_round_trip(self):
        c = Campaign(self, raw=self.gbk_file(bad_row=5), campaign_extra="encoding = gbk\n")
        c.run()
        clean = c.clean()
        self.assertEqual(clean[0], ["email", "姓名", "城市"])
        self.assertEqual([r[1] for r in clean[1:]], self.NAMES)
        self.assertEqual({k: v[0] for k, v in c.reasons().items()}, {5: "encoding"})

    def test_utf8_campaign_given_gbk_stops_with_hint(self):
        c = Campaign(self, raw=self.gbk_file())
        p = c.run(expect=EX_DATAERR)
        self.assertIn("encoding = gbk?", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(c.out, "clean.csv")))
        self.assertFalse(os.path.exists(os.path.join(c.out, "clean.csv.tmp")))

    def test_some_bad_utf8_rows_are_rejected_not_fatal(self):
        rows = ["u%d@acme.example,N%d,X" % (i, i) for i in range(30)]
        raw = ("email,name,city\n" + "\n".join(rows) + "\n").encode() + b"v@acme.example,\xd5\xc5,X\n"
        c = Campaign(self, raw=raw)
        c.run()
        got = c.reasons()
        self.assertEqual({k: v[0] for k, v in got.items()}, {31: "encoding"})
        self.assertIn("0xD5", got[31][1])
        # rejects.csv stays valid UTF-8 (read_csv decodes strictly)
        self.assertIn("\ufffd", c.rejects()[1][1])

    def test_excel_unicode_text_utf16(self):
        text = "email\t姓名\r\nu1@acme.example\t张伟\r\nu2@acme.example\t王芳\r\n"
        c = Campaign(self, raw=b"\xff\xfe" + text.encode("utf-16-le"),
                     campaign_extra="encoding = utf-16\ndelimiter = tab\n")
        c.run()
        self.assertEqual([r[1] for r in c.clean()[1:]], ["张伟", "王芳"])

    def test_big5(self):
        c = Campaign(self, raw="email,name\nu1@acme.example,陳大文\n".encode("big5"),
                     campaign_extra="encoding = big5\n")
        c.run()
        self.assertEqual(c.clean()[1][1], "陳大文")


class TestErrors(unittest.TestCase):
    def test_missing_recipients(self):
        c = Campaign(self, ["a@acme.example,A,X"])
        os.unlink(os.path.join(c.dir, "list.csv"))
        p = c.run(expect=EX_NOINPUT)
        self.assertIn("list.csv", p.stderr)
        self.assertIn("c.ini:3", p.stderr)  # the key that named it

    def test_missing_config(self):
        p = subprocess.run([EDM, "validate", "/nonexistent/c.ini"], capture_output=True, text=True)
        self.assertEqual(p.returncode, EX_NOINPUT)
        self.assertIn("/nonexistent/c.ini", p.stderr)

    def test_bad_config(self):
        c = Campaign(self, ["a@acme.example,A,X"], config_extra="role_acounts = reject\n")
        p = c.run(expect=EX_CONFIG)
        self.assertIn("c.ini:6: unknown key 'role_acounts'", p.stderr)
        self.assertIn("role_accounts", p.stderr)

    def test_missing_suppression(self):
        c = Campaign(self, ["a@acme.example,A,X"], campaign_extra="suppression = nope.csv\n")
        p = c.run(expect=EX_NOINPUT)
        self.assertIn("nope.csv", p.stderr)

    def test_usage(self):
        p = subprocess.run([EDM, "validate", "--bogus", "x.ini"], capture_output=True, text=True)
        self.assertEqual(p.returncode, EX_USAGE)
        p = subprocess.run([EDM, "validate"], capture_output=True, text=True)
        self.assertEqual(p.returncode, EX_USAGE)
        p = subprocess.run([EDM, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(p.returncode, EX_USAGE)
        for argv in ([EDM, "--help"], [EDM, "validate", "--help"], [EDM, "help", "validate"]):
            p = subprocess.run(argv, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0)
            self.assertIn("Usage: edm", p.stdout)

    def test_semicolon_header_hint(self):
        c = Campaign(self, raw=b"email;name\na@acme.example;A\n")
        p = c.run(expect=EX_DATAERR)
        self.assertIn("set delimiter", p.stderr)


@unittest.skipUnless(os.environ.get("EDM_TEST_DNS"), "needs tests/with_dnsmasq.sh")
class TestDns(unittest.TestCase):
    def test_no_mail_reasons(self):
        rows = ["a@good.test,A,X",          # 1 MX
                "b@nxdomain.test,B,X",      # 2 NXDOMAIN
                "c@nullmx.test,C,X",        # 3 null MX
                "d@aonly.test,D,X",         # 4 no MX, has A: keep
                "e@nomail.test,E,X",        # 5 exists, no MX/A/AAAA
                "f@acme.example,F,X",       # 6 MX
                "g@refused.test,G,X",       # 7 REFUSED: unverified, kept
                "h@nxdomain.test,H,X"]      # 8 same domain again: cached
        c = Campaign(self, rows, config_extra="dns_timeout_ms = 500\ndns_tries = 1\n")
        p = c.run(dns=True)
        got = c.reasons()
        self.assertEqual({k: v[0] for k, v in got.items()},
                         {2: "no-mail", 3: "no-mail", 5: "no-mail", 8: "no-mail"})
        self.assertIn("NXDOMAIN", got[2][1])
        self.assertIn("null MX", got[3][1])
        self.assertEqual([r[0] for r in c.clean()[1:]],
                         ["a@good.test", "d@aonly.test", "f@acme.example", "g@refused.test"])
        self.assertRegex(p.stdout, r"unverified\s+1\b")

    def test_order_kept_across_window(self):
        # More rows than the DNS window (8192), half of them on distinct
        # domains (each a real lookup, NXDOMAIN, at most 64 in flight) so
        # parsing outruns DNS and the window fills and wraps; the other half
        # on cached domains. Output order must equal input order exactly.
        doms = ["good.test", "aonly.test", "acme.example"]
        rows = []
        for i in range(20000):
            dom = "n%d.test" % i if i % 2 else doms[i % 3]
            rows.append("u%05d@%s,N,X" % (i, dom))
        c = Campaign(self, rows)
        p = c.run(dns=True, env={"EDM_LOG": "debug"})
        self.assertIn("event=window_full", p.stderr)  # the window did fill
        clean = [r[0] for r in c.clean()[1:]]
        want = [r.split(",")[0] for i, r in enumerate(rows) if i % 2 == 0]
        self.assertEqual(clean, want)
        rej = c.reasons()
        self.assertEqual(list(rej), list(range(2, 20001, 2)))  # file order
        self.assertEqual({v[0] for v in rej.values()}, {"no-mail"})

    def test_dns_off_in_config(self):
        c = Campaign(self, ["b@nxdomain.test,B,X"], config_extra="dns = no\n")
        p = c.run(dns=True)  # --resolver given, but dns = no wins
        self.assertEqual(len(c.clean()), 2)
        self.assertIn("dns = no", p.stdout)


if __name__ == "__main__":
    if not os.environ.get("EDM_TEST_DNS") and not os.environ.get("EDM_NO_WRAP"):
        os.environ["EDM_NO_WRAP"] = "1"
        os.execv(WRAPPER, [WRAPPER, sys.executable, os.path.abspath(__file__), EDM, WRAPPER])
    unittest.main(argv=[sys.argv[0], "-v"])
