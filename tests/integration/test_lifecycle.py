#!/usr/bin/python3
"""A campaign's whole life on loopback: send -> track -> ingest -> report -> validate.

usage: test_lifecycle.py EDM [unittest arguments]

One campaign with [tracking] on and a VERP return path is sent through the
scripted aiosmtpd relay (smtp_peer.py), which stores every message. The
test then behaves like the recipients and their providers:
  - it reads the delivered messages with Python's email package and takes
    the pixel, link and unsubscribe URLs out of them (never builds them);
  - fetches them from a running `edm track` with Debian's curl;
  - writes the asynchronous bounces and the complaint a provider would
    send (RFC 3464 DSNs, one matched by the VERP envelope sender, one by
    the original Message-ID; an RFC 5965 ARF report) and feeds them to
    `edm ingest`;
  - runs `edm report` and checks report.csv cell by cell;
  - runs `edm validate` again: the unsubscribed, hard-bounced and
    complaining addresses are now rejected as `suppressed`.
A second case shows that a running `edm send` picks up an unsubscribe made
while it sends: the recipient is never mailed.
"""
import base64
import csv
import email
import email.policy
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers  # noqa: E402

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
SECRET = "lifecycle-test-secret-0123456789abcdef"
ENV = dict(os.environ, EDM_TRACKING_SECRET=SECRET)
CURL = shutil.which("curl") or "/usr/bin/curl"
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

BODY_HTML = """<html><body>
<p>Hi {{first_name|friend}},</p>
<p><a href="https://shop.example/sale?utm=1&amp;c=spring">Spring sale</a></p>
<p><a href="https://shop.example/new">New arrivals</a></p>
<p><a href="mailto:help@acme.example">Write to us</a></p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>
</body></html>
"""
BODY_TXT = "Hi {{first_name|friend}}, the spring sale is on.\nUnsubscribe: {{unsubscribe_url}}\n"


def token_raw(campaign, row):
    rb = row.to_bytes(5, "big")
    mac = hmac.new(SECRET.encode(), b"edm-token-1\0" + campaign.encode() + b"\0" + rb,
                   hashlib.sha256).digest()[:12]
    return rb + mac


def token_b64(campaign, row):
    return base64.urlsafe_b64encode(token_raw(campaign, row)).decode().rstrip("=")


def token_b32(campaign, row):
    return base64.b32encode(token_raw(campaign, row)).decode().rstrip("=").lower()


def curl(*args):
    """Run curl; return (http status, body bytes)."""
    p = subprocess.run([CURL, "-s", "-o", "-", "-w", "\n%{http_code}", "-A", HUMAN_UA,
                        "--max-time", "10"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code or 0), body


def slurp(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


class Campaign:
    def __init__(self, tc, rows, track_port, relay_port, domain_rate=None):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="edm-life-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "out")
        self.cfg = os.path.join(self.dir, "c.ini")
        self.supp = os.path.join(self.dir, "suppress.csv")
        self.base = f"http://127.0.0.1:{track_port}"
        with open(self.supp, "w"):
            pass
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["email", "first_name", "city"])
            w.writerows(rows)
        for name, text in (("body.html", BODY_HTML), ("body.txt", BODY_TXT)):
            with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        cfg = ("[campaign]\nname = life\nrecipients = list.csv\nout_dir = out\n"
               "suppression = suppress.csv\nreport_columns = city\n"
               "[validate]\ndns = no\n"
               "[message]\nfrom = Acme <news@acme.example>\n"
               "subject = {{first_name|friend}}, spring sale\n"
               "text = body.txt\nhtml = body.html\n"
               "[tracking]\n"
               f"base_url = {self.base}\nlisten = 127.0.0.1:{track_port}\n"
               "secret_env = EDM_TRACKING_SECRET\n"
               # the test clicks within a second of delivery, which the
               # scanner rules would call a machine: off here (they have
               # their own tests in test_report.c and test_track.py)
               "scanner_window = 0\n"
               "[smtp]\nmode = relay\n"
               f"relay = 127.0.0.1:{relay_port}\ntls = none\n"
               "return_path = bounces+{{token}}@acme.example\n"
               "retry_first = 1s\nretry_max_interval = 2s\nretry_for = 20s\n"
               "timeout_connect = 5s\n"
               "[domain *]\nconnections = 2\n")
        if domain_rate:
            cfg += f"rate = {domain_rate}\nmessages_per_connection = 1\n"
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(cfg)

    def edm(self, *args, expect=0, timeout=120, inp=None):
        p = subprocess.run([EDM] + list(args), input=inp, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=ENV, timeout=timeout, check=False)
        if expect is not None:
            self.tc.assertEqual(p.returncode, expect,
                                "edm %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                                % (" ".join(args), p.returncode,
                                   p.stdout.decode(errors="replace"),
                                   p.stderr.decode(errors="replace")))
        return p

    def start_track(self):
        p = subprocess.Popen([EDM, "track", self.cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=ENV)
        self.tc.addCleanup(self._stop, p)
        deadline = time.monotonic() + 10
        line = b""
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if b"listening on" in line or not line:
                break
        self.tc.assertIn(b"listening on", line, "edm track did not start")
        return p

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for s in (p.stdout, p.stderr):
            if s is not None:
                s.close()


def dsn(to, final_rcpt, status, diag, orig_headers=None, msgid="<dsn-1@relay.example>"):
    """An RFC 3464 report as a relay's MAILER-DAEMON writes it (Postfix's shape)."""
    b = "=_dsn_boundary_1"
    parts = [
        "From: Mail Delivery System <MAILER-DAEMON@relay.example>",
        f"To: {to}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Message-ID: {msgid}",
        "Date: Sun, 29 Nov 2026 10:00:00 +0000",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{b}"',
        "",
        f"--{b}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host relay.example.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        f"--{b}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; relay.example",
        "",
        f"Final-Recipient: rfc822; {final_rcpt}",
        "Action: failed",
        f"Status: {status}",
        "Remote-MTA: dns; mx.example.net",
        f"Diagnostic-Code: smtp; {diag}",
        "",
    ]
    if orig_headers:
        parts += [f"--{b}", "Content-Type: text/rfc822-headers", "", orig_headers, ""]
    parts += [f"--{b}--", ""]
    return "\r\n".join(parts).encode()


def arf(original, rcpt, msgid="<arf-1@fbl.example>"):
    """An RFC 5965 abuse report with the original message."""
    b = "=_arf_boundary_1"
    head = "\r\n".join([
        "From: fbl@fbl.example",
        "To: abuse@acme.example",
        "Subject: FW: spring sale",
        f"Message-ID: {msgid}",
        "Date: Sun, 29 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{b}"',
        "",
        f"--{b}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is an email abuse report for an email message received from IP 127.0.0.1.",
        "",
        f"--{b}",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: FBL/1.0",
        "Version: 1",
        f"Original-Rcpt-To: <{rcpt}>",
        "Source-IP: 127.0.0.1",
        "",
        f"--{b}",
        "Content-Type: message/rfc822",
        "Content-Disposition: inline",
        "",
        "",
    ]).encode()
    return head + original.rstrip(b"\r\n") + f"\r\n\r\n--{b}--\r\n".encode()


class LifecycleTest(unittest.TestCase):
    ROWS = [
        ("ann@example.com", "Ann", "上海"),      # opens, clicks twice
        ("bob@example.com", "Bob", "Beijing"),   # clicks only (image blocked)
        ("cat@example.com", "Cat", "Hangzhou"),  # one-click unsubscribe
        ("dan@example.com", "Dan", "Shenzhen"),  # async bounce, VERP match
        ("eve@example.com", "Eve", "Chengdu"),   # async bounce, Message-ID match
        ("fay@example.com", "=cmd|' /C calc'!A0", "Wuhan"),  # complaint (ARF)
        ("gus@example.com", "Gus", "Xi'an"),     # nothing happens
    ]

    def test_send_track_ingest_report_validate(self):
        track_port = peers.free_port()
        with peers.smtp_peer() as relay:
            c = Campaign(self, self.ROWS, track_port, relay.port)
            c.edm("send", "--no-progress", c.cfg)
            msgs = relay.messages()
        self.assertEqual(len(msgs), len(self.ROWS))
        res = {r["email"]: r for r in read_csv(os.path.join(c.out, "results.csv"))}
        self.assertEqual({r["status"] for r in res.values()}, {"delivered"})

        # What each recipient got: envelope sender, headers and URLs.
        got = {}
        for rec, raw in msgs:
            m = email.message_from_bytes(raw, policy=email.policy.default)
            rcpt = rec["rcpts"][0]
            row = int(res[rcpt]["row"])
            self.assertEqual(rec["mail_from"],
                             f"bounces+{token_b32('life', row)}@acme.example")
            html = m.get_body(("html",)).get_content()
            tok = token_b64("life", row)
            self.assertIn(f'src="{c.base}/o/{tok}.gif"', html)
            self.assertIn(f'href="{c.base}/c/{tok}/1"', html)
            self.assertIn(f'href="{c.base}/c/{tok}/2"', html)
            self.assertIn('href="mailto:help@acme.example"', html)
            self.assertIn(f'href="{c.base}/u/{tok}"', html)
            self.assertEqual(m["List-Unsubscribe"], f"<{c.base}/u/{tok}>")
            self.assertEqual(m["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            got[rcpt] = dict(row=row, msg=m, raw=raw, html=html,
                             pixel=re.search(r'src="([^"]+\.gif)"', html).group(1),
                             links=re.findall(r'href="(http[^"]+/c/[^"]+)"', html),
                             unsub=m["List-Unsubscribe"].strip("<>"))

        track = c.start_track()
        a, b, cat = got["ann@example.com"], got["bob@example.com"], got["cat@example.com"]
        status, body = curl(a["pixel"])
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"GIF8"))
        # Ann clicks the sale link, then (after the scanner window would
        # matter) nothing else; Bob clicks the second link.
        status, _ = curl("-D", "-", a["links"][0])
        self.assertEqual(status, 302)
        p = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{redirect_url}", "-A",
                            HUMAN_UA, b["links"][1]], stdout=subprocess.PIPE, check=True)
        self.assertEqual(p.stdout.decode(), "https://shop.example/new")
        p = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{redirect_url}", "-A",
                            HUMAN_UA, a["links"][0]], stdout=subprocess.PIPE, check=True)
        self.assertEqual(p.stdout.decode(), "https://shop.example/sale?utm=1&c=spring")
        # Google's image proxy fetches Gus's pixel: a machine open.
        g = got["gus@example.com"]
        status, _ = curl("-A", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                         "(via ggpht.com GoogleImageProxy)", g["pixel"])
        self.assertEqual(status, 200)
        # A forged token is refused and records nothing.
        forged = a["pixel"].replace("/o/", "/o/x")
        self.assertEqual(curl(forged)[0], 404)
        # Cat presses the provider's unsubscribe button: RFC 8058 one-click.
        status, _ = curl("-X", "POST", "-d", "List-Unsubscribe=One-Click", cat["unsub"])
        self.assertEqual(status, 200)
        status, _ = curl("-X", "POST", "-d", "List-Unsubscribe=One-Click", cat["unsub"])
        self.assertEqual(status, 200, "a second unsubscribe is answered the same")
        Campaign._stop(track)
        self.assertEqual(track.returncode, 0)

        # The relay's bounces and a complaint, a week later.
        d, e, f = got["dan@example.com"], got["eve@example.com"], got["fay@example.com"]
        mbox = os.path.join(c.dir, "bounces.mbox")
        with open(mbox, "wb") as fh:
            for raw in (dsn(f"bounces+{token_b32('life', d['row'])}@acme.example",
                            "dan@example.com", "5.1.1",
                            "550 5.1.1 <dan@example.com>: Recipient address rejected: "
                            "User unknown", msgid="<dsn-dan@relay.example>"),
                        dsn("postmaster@acme.example", "eve@example.com", "5.1.1",
                            "550-5.1.1 The email account that you tried to reach does "
                            "not exist.", msgid="<dsn-eve@relay.example>",
                            orig_headers=f"From: news@acme.example\nTo: eve@example.com\n"
                                         f"Message-ID: {e['msg']['Message-ID']}\n"
                                         "Subject: spring sale\n")):
                fh.write(b"From MAILER-DAEMON Sun Nov 22 10:00:00 2026\n")
                fh.write(raw.replace(b"\nFrom ", b"\n>From ") + b"\n")
        c.edm("ingest", c.cfg, mbox)
        c.edm("ingest", c.cfg, "-", inp=arf(f["raw"], "fay@example.com"))
        # Idempotent: the same reports again change nothing.
        before = slurp(os.path.join(c.out, "events.csv"))
        # header, 6 tracking events (2 opens, 3 clicks, 1 unsubscribe), 2 bounces, 1 complaint
        self.assertEqual(before.count("\n"), 10, before)
        c.edm("ingest", c.cfg, mbox)
        self.assertEqual(slurp(os.path.join(c.out, "events.csv")), before)

        c.edm("report", c.cfg)
        rep = {r["email"]: r for r in read_csv(os.path.join(c.out, "report.csv"))}
        self.assertEqual(len(rep), len(self.ROWS))
        want = {  # email: status, category, opened, opens, clicked, clicks, unsubscribed, async
            "ann@example.com": ("delivered", "", "1", "1", "1", "2", "0", "0"),
            "bob@example.com": ("delivered", "", "0", "0", "1", "1", "0", "0"),
            "cat@example.com": ("delivered", "", "0", "0", "0", "0", "1", "0"),
            "dan@example.com": ("bounced", "bad-mailbox", "0", "0", "0", "0", "0", "1"),
            "eve@example.com": ("bounced", "bad-mailbox", "0", "0", "0", "0", "0", "1"),
            "fay@example.com": ("complained", "", "0", "0", "0", "0", "0", "0"),
            "gus@example.com": ("delivered", "", "0", "0", "0", "0", "0", "0"),
        }
        cols = ("status", "category", "opened", "opens", "clicked", "clicks",
                "unsubscribed", "async")
        for addr, w in want.items():
            r = rep[addr]
            self.assertEqual(tuple(r[k] for k in cols), w, f"{addr}: {r}")
            self.assertEqual(r["sent_at"], res[addr]["time"], addr)
            self.assertEqual(r["city"], dict((x[0], x[2]) for x in self.ROWS)[addr], addr)
        self.assertEqual(rep["ann@example.com"]["city"], "上海")
        self.assertNotEqual(rep["ann@example.com"]["first_open_at"], "")
        self.assertEqual(rep["gus@example.com"]["machine_opens"], "1")
        self.assertEqual(rep["ann@example.com"]["machine_clicks"], "0")
        self.assertTrue(os.path.exists(os.path.join(c.out, "report.html")))

        # The suppression file learned from track and ingest.
        supp = {r["email"] for r in read_csv(c.supp)}
        self.assertEqual(supp, {"cat@example.com", "dan@example.com", "eve@example.com",
                                "fay@example.com"})
        c.edm("validate", c.cfg, expect=None)
        rej = {r["email"]: r for r in read_csv(os.path.join(c.out, "rejects.csv"))}
        for addr in supp:
            self.assertEqual(rej[addr]["reason"], "suppressed", addr)
        self.assertNotIn("ann@example.com", rej)

    def test_secret_required(self):
        """send, preview, track refuse to start without the secret or with a short one."""
        c = Campaign(self, self.ROWS[:1], peers.free_port(), peers.free_port())
        for env in ({}, {"EDM_TRACKING_SECRET": "short"}):
            e = {k: v for k, v in os.environ.items() if k != "EDM_TRACKING_SECRET"}
            e.update(env)
            for argv in (["send", "--no-progress", c.cfg], ["preview", c.cfg],
                         ["track", c.cfg]):
                p = subprocess.run([EDM] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=e, timeout=30, check=False)
                self.assertEqual(p.returncode, 78, (argv, env, p.stderr))
                self.assertIn(b"EDM_TRACKING_SECRET", p.stderr, (argv, env))
        self.assertFalse(os.path.exists(os.path.join(c.out, "results.csv")))

    def test_unsubscribe_while_sending(self):
        """A running send picks up an unsubscribe within a second: never mailed."""
        rows = [(f"u{i}@example.com", f"U{i}", "x") for i in range(1, 7)]
        track_port = peers.free_port()
        with peers.smtp_peer() as relay:
            c = Campaign(self, rows, track_port, relay.port, domain_rate="1/s")
            track = c.start_track()
            sender = subprocess.Popen([EDM, "send", "--no-progress", c.cfg],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
            self.addCleanup(Campaign._stop, sender)
            deadline = time.monotonic() + 20
            while not relay.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(relay.log(), "nothing delivered yet")
            # The last row unsubscribes (from an earlier campaign's link).
            status, _ = curl("-X", "POST", "-d", "List-Unsubscribe=One-Click",
                             f"{c.base}/u/{token_b64('life', 6)}")
            self.assertEqual(status, 200)
            out, err = sender.communicate(timeout=60)
            self.assertEqual(sender.returncode, 0, err.decode(errors="replace"))
            rcpts = [r["rcpts"][0] for r in relay.log()]
            Campaign._stop(track)
        self.assertNotIn("u6@example.com", rcpts)
        res = {r["email"]: r for r in read_csv(os.path.join(c.out, "results.csv"))}
        self.assertEqual(res["u6@example.com"]["status"], "suppressed")
        self.assertEqual(len(rcpts), 5)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
