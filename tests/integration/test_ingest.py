#!/usr/bin/python3
"""`edm ingest` end to end. Reports are built with Python's email package and
fed through an mbox (Python's mailbox module), a Maildir (new/ and cur/) and
standard input; VERP tokens (HMAC-SHA256, base32/base64url, per
templates/token.h) and edm Message-IDs (SHA-256, per message_id_make() in
templates/message.h) are computed here, independently of edm's C code.
Checked: events.csv rows (csv module), suppression rows, the summary, that
a second run adds nothing, that other campaigns' reports and auto-replies
are counted and ignored, the size bound, and the exit codes.

usage: test_ingest.py EDM
"""
import base64
import csv
import hashlib
import hmac
import mailbox
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_IOERR, EX_CONFIG = 64, 65, 66, 74, 78
SECRET = "s3cr3t-for-the-ingest-test-0123456789abcdef"
CAMPAIGN = "spring"
DOMAIN = "acme.example"
BASE_URL = "https://t.acme.example"

RECIPIENTS = [  # row = index + 1
    "alice@example.com",   # 1 VERP DSN, bad-mailbox -> suppressed
    "Bob@Example.NET",     # 2 Message-ID DSN (key lowercased), inactive -> suppressed
    "carol@example.org",   # 3 ARF abuse, matched by the original's Message-ID
    "dan@example.com",     # 4 delayed DSN, VERP case-folded by an MTA
    "erin@example.com",    # 5 VERP DSN naming no recipient: email from results.csv
    "frank@example.com",   # 6 ARF matched by its List-Unsubscribe token only
    "gina@example.com",    # 7 not bounced
]


def token_raw(campaign, row, secret=SECRET):
    rb = row.to_bytes(5, "big")
    mac = hmac.new(secret.encode(), b"edm-token-1\0" + campaign.encode() + b"\0" + rb,
                   hashlib.sha256).digest()
    return rb + mac[:12]


def token_b32(campaign, row, secret=SECRET):
    return base64.b32encode(token_raw(campaign, row, secret)).decode().rstrip("=").lower()


def token_b64(campaign, row, secret=SECRET):
    return base64.urlsafe_b64encode(token_raw(campaign, row, secret)).decode().rstrip("=")


def verp(campaign, row):
    return "bounces+%s@%s" % (token_b32(campaign, row), DOMAIN)


def message_id(campaign, row, addr):
    key = addr.lower()
    h = hashlib.sha256(("%s\0%d\0%s" % (campaign, row, key)).encode()).hexdigest()
    return "edm.%d.%s@%s" % (row, h[:16], DOMAIN)


def original(row, campaign=CAMPAIGN, extra=None, return_path=None):
    """The message edm sent to row (headers and a short body)."""
    m = EmailMessage()
    m["Return-Path"] = "<%s>" % (return_path or verp(campaign, row))
    m["From"] = "Acme <news@%s>" % DOMAIN
    m["To"] = RECIPIENTS[row - 1]
    m["Subject"] = "Spring sale"
    m["Message-ID"] = "<%s>" % message_id(campaign, row, RECIPIENTS[row - 1])
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content("Spring is here.\n")
    return m


def status_part(blocks, per_message=None):
    """message/delivery-status: the email package writes each block as a
    header block, blank lines between."""
    part = Message()
    part["Content-Type"] = "message/delivery-status"
    pm = Message()
    for k, v in (per_message or [("Reporting-MTA", "dns; relay.acme.example")]):
        pm[k] = v
    rcpts = []
    for fields in blocks:
        b = Message()
        for k, v in fields:
            b[k] = v
        rcpts.append(b)
    part.set_payload([pm] + rcpts)
    return part


def dsn(to, blocks, orig=None, headers_only=False, msgid=None, subject=None):
    m = MIMEMultipart("report", report_type="delivery-status")
    m["From"] = "MAILER-DAEMON@relay.acme.example (Mail Delivery System)"
    m["To"] = to
    m["Subject"] = subject or "Undelivered Mail Returned to Sender"
    m["Date"] = "Tue, 03 Nov 2026 08:15:07 +0800"
    if msgid:
        m["Message-ID"] = "<%s>" % msgid
    m["Auto-Submitted"] = "auto-replied"
    m.attach(MIMEText("This is the mail system at host relay.acme.example.\n"))
    m.attach(status_part(blocks))
    if orig is not None:
        if headers_only:
            hdrs = "".join("%s: %s\n" % (k, v) for k, v in orig.items())
            m.attach(MIMEText(hdrs, "rfc822-headers"))
        else:
            m.attach(MIMEMessage(orig))
    return m


def arf(orig, feedback_type="abuse", rcpt_to=None, msgid=None):
    m = MIMEMultipart("report", report_type="feedback-report")
    m["From"] = "abuse@isp.example"
    m["To"] = "fbl@%s" % DOMAIN
    m["Subject"] = "FW: Spring sale"
    m["Date"] = "Thu, 05 Nov 2026 17:40:36 -0400"
    if msgid:
        m["Message-ID"] = "<%s>" % msgid
    m.attach(MIMEText("This is an email abuse report.\n"))
    fb = Message()
    fb["Content-Type"] = "message/feedback-report"
    lines = "Feedback-Type: %s\nUser-Agent: ISP-FBL/1.0\nVersion: 1\n" % feedback_type
    if rcpt_to:
        lines += "Original-Rcpt-To: <%s>\n" % rcpt_to
    fb.set_payload(lines)
    m.attach(fb)
    m.attach(MIMEMessage(orig))
    return m


def autoreply():
    m = EmailMessage()
    m["From"] = "Gina <gina@example.com>"
    m["To"] = "news@%s" % DOMAIN
    m["Subject"] = "Automatic reply: Spring sale"
    m["Message-ID"] = "<oof-1@example.com>"
    m["Auto-Submitted"] = "auto-replied"
    m.set_content("I am out of the office until Monday.\n")
    return m


def summary(out):
    """The summary lines "label: N" as a dict (by-category in 'bounces_by')."""
    d = {}
    for line in out.splitlines():
        m = re.match(r"^([a-z -]+): (\d+)(?: \((.*)\))?$", line)
        if m:
            d[m.group(1)] = int(m.group(2))
            if m.group(1) == "bounces":
                d["bounces_by"] = dict((k, int(v)) for k, v in
                                       (x.rsplit(" ", 1) for x in m.group(3).split(", "))) \
                    if m.group(3) else {}
    return d


class Ingest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="edm-ingest-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)
        with open(self.path("list.csv"), "w") as f:
            f.write("email,name\n")
            for i, e in enumerate(RECIPIENTS):
                f.write("%s,N%d\n" % (e, i + 1))
        with open(self.path("body.txt"), "w") as f:
            f.write("Spring is here.\n")
        # results.csv as edm send writes it (the row column is what matters)
        with open(os.path.join(self.out, "results.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow("time,email,status,code,enhanced,category,reply,attempts,host,"
                       "source_ip,tls,message_id,queued_at,first_attempt_at,row".split(","))
            for i, e in enumerate(RECIPIENTS):
                w.writerow(["2026-11-03T00:15:00Z", e, "delivered", 250, "2.0.0", "",
                            "250 ok", 1, "relay", "", "none",
                            message_id(CAMPAIGN, i + 1, e), "", "", i + 1])
        self.write_config()
        self.env = dict(os.environ, EDM_TRACKING_SECRET=SECRET)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_config(self, smtp_extra="return_path = bounces+{{token}}@acme.example\n",
                     tracking=True, suppression=True):
        with open(self.path("c.ini"), "w") as f:
            f.write("[campaign]\nname = %s\nrecipients = list.csv\nout_dir = out\n" % CAMPAIGN)
            if suppression:
                f.write("suppression = suppress.csv\n")
            f.write("[message]\nfrom = Acme <news@%s>\nsubject = Spring sale\n"
                    "text = body.txt\n" % DOMAIN)
            f.write("[smtp]\nmode = relay\nrelay = 127.0.0.1:2525\n" + smtp_extra)
            if tracking:
                f.write("[tracking]\nbase_url = %s\n" % BASE_URL)

    def edm(self, *args, stdin=None, expect=0, env=None):
        p = subprocess.run([EDM, "ingest"] + list(args), input=stdin, capture_output=True,
                           timeout=120, env=env or self.env, cwd=self.dir)
        self.assertEqual(p.returncode, expect, "edm ingest %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), p.returncode, p.stdout.decode(errors="replace"),
                            p.stderr.decode(errors="replace")))
        return p.stdout.decode(), p.stderr.decode()

    def events(self):
        path = os.path.join(self.out, "events.csv")
        if not os.path.exists(path):
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def suppressed(self):
        path = self.path("suppress.csv")
        if not os.path.exists(path):
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    # ---- the reports ----

    def reports_mbox(self):
        """alice (VERP, bad-mailbox), bob (Message-ID, inactive), another
        campaign's VERP bounce."""
        alice = dsn(verp(CAMPAIGN, 1), [[
            ("Final-Recipient", "rfc822; alice@example.com"), ("Action", "failed"),
            ("Status", "5.1.1"), ("Remote-MTA", "dns; mx.example.com"),
            ("Diagnostic-Code", "smtp; 550 5.1.1 <alice@example.com>: Recipient address "
                                "rejected: User unknown")]],
            msgid="dsn-alice@relay.acme.example")
        # a body line starting with "From " (mbox quotes it; edm unquotes)
        alice.get_payload(0).set_payload("From here on: the mail system.\n")
        bob = dsn("bounces@%s" % DOMAIN, [[
            ("Final-Recipient", "rfc822; bob@example.net"), ("Action", "failed"),
            ("Status", "5.2.1"),
            ("Diagnostic-Code", "smtp; 550-5.2.1 The email account that you tried to "
                                "reach is disabled.")]],
            # the relay put its own envelope sender: no VERP anywhere
            orig=original(2, return_path="relay-bounces@relay.acme.example"),
            headers_only=True, msgid="dsn-bob@relay.acme.example")
        foreign = dsn(verp("autumn", 1), [[
            ("Final-Recipient", "rfc822; alice@example.com"), ("Action", "failed"),
            ("Status", "5.1.1")]], msgid="dsn-foreign-verp@relay.acme.example")
        return [alice, bob, foreign]

    def reports_maildir(self):
        """carol (ARF, Message-ID), dan (delayed, VERP upper-cased),
        another campaign's Message-ID, an auto-reply."""
        carol = arf(original(3), rcpt_to="carol@example.org", msgid="fbl-carol@isp.example")
        dan = dsn(verp(CAMPAIGN, 4).upper(), [[
            ("Final-Recipient", "rfc822; dan@example.com"), ("Action", "delayed"),
            ("Status", "4.4.1"),
            ("Diagnostic-Code", "X-Postfix; connect to mx.example.com[192.0.2.7]:25: "
                                "Connection timed out")]],
            msgid="dsn-dan@relay.acme.example", subject="Delayed Mail (still being retried)")
        foreign = dsn("bounces@%s" % DOMAIN, [[
            ("Final-Recipient", "rfc822; bob@example.net"), ("Action", "failed"),
            ("Status", "5.1.1")]], orig=original(2, campaign="autumn"),
            msgid="dsn-foreign-mid@relay.acme.example")
        return [carol, dan, foreign, autoreply()]

    def erin(self):
        """A VERP bounce whose status block names no recipient, no
        Message-ID: the ref is its SHA-256, the email comes from
        results.csv. Built once per test (the MIME boundary is random)."""
        if not hasattr(self, "_erin"):
            m = dsn(verp(CAMPAIGN, 5), [[
                ("Action", "failed"), ("Status", "5.2.2"),
                ("Diagnostic-Code", "smtp; 552 5.2.2 Mailbox full")]])
            # lines an mbox must quote (">From ") and edm unquote; no line
            # starting ">From " here: Python writes mboxo, where that is
            # ambiguous (edm reads mboxrd)
            m.get_payload(0).set_payload("From the mail system at relay.acme.example:\n"
                                         "\nFrom here on, nothing.\n")
            self._erin = m.as_bytes()
        return self._erin

    def frank(self):
        """An ARF whose original's Message-ID was rewritten by a gateway:
        only the List-Unsubscribe token says whose it was."""
        o = original(6, extra={"List-Unsubscribe": "<%s/u/%s>, <mailto:u@%s>"
                               % (BASE_URL, token_b64(CAMPAIGN, 6), DOMAIN)})
        o.replace_header("Message-ID", "<rewritten-by-gateway-1@isp.example>")
        o.replace_header("Return-Path", "<bounces@%s>" % DOMAIN)
        return arf(o, feedback_type="fraud", msgid="fbl-frank@isp.example").as_bytes()

    def write_sources(self):
        mb = mailbox.mbox(self.path("bounces.mbox"))
        for m in self.reports_mbox():
            mb.add(m)
        mb.close()
        md = mailbox.Maildir(self.path("Maildir"), create=True)
        keys = [md.add(m) for m in self.reports_maildir()]
        md.close()
        # one message read already (cur/, with flags)
        newp = os.path.join(self.path("Maildir"), "new", keys[1])
        os.rename(newp, os.path.join(self.path("Maildir"), "cur", keys[1] + ":2,S"))

    # ---- the tests ----

    def test_all_sources_and_idempotency(self):
        self.write_sources()
        out, err = self.edm("c.ini", self.path("bounces.mbox"), self.path("Maildir"))
        s = summary(out)
        self.assertEqual(s["messages read"], 7, out)
        self.assertEqual(s["bounces"], 2, out)
        self.assertEqual(s["bounces_by"], {"bad-mailbox": 1, "inactive-mailbox": 1}, out)
        self.assertEqual(s["delayed"], 1, out)
        self.assertEqual(s["complaints"], 1, out)
        self.assertEqual(s["auto-replies"], 1, out)
        self.assertEqual(s["not ours"], 2, out)
        self.assertEqual(s["unparsable"], 0, out)
        self.assertEqual(s["duplicates"], 0, out)
        self.assertEqual(s["suppressed addresses added"], 3, out)

        ev = {(e["type"], e["row"]): e for e in self.events()}
        self.assertEqual(len(self.events()), 4)
        a = ev[("bounce", "1")]
        self.assertEqual(a["email"], "alice@example.com")
        self.assertEqual(a["category"], "bad-mailbox")
        self.assertEqual(a["status"], "5.1.1")
        self.assertIn("User unknown", a["detail"])
        self.assertEqual(a["ref"], "dsn-alice@relay.acme.example")
        b = ev[("bounce", "2")]
        self.assertEqual(b["email"], "Bob@example.net")   # as sent, domain lowercased
        self.assertEqual(b["category"], "inactive-mailbox")
        self.assertEqual(b["status"], "5.2.1")
        self.assertEqual(b["ref"], "dsn-bob@relay.acme.example")
        c = ev[("complaint", "3")]
        self.assertEqual(c["email"], "carol@example.org")
        self.assertEqual(c["detail"], "abuse")
        self.assertEqual(c["ref"], "fbl-carol@isp.example")
        d = ev[("delayed", "4")]
        self.assertEqual(d["email"], "dan@example.com")
        self.assertEqual(d["status"], "4.4.1")
        self.assertEqual(d["category"], "no-answer-from-host")
        for e in self.events():
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        sup = {r["email"]: r for r in self.suppressed()}
        self.assertEqual(set(sup), {"alice@example.com", "Bob@example.net", "carol@example.org"})
        self.assertEqual(sup["alice@example.com"]["reason"], "bounce:bad-mailbox")
        self.assertEqual(sup["Bob@example.net"]["reason"], "bounce:inactive-mailbox")
        self.assertEqual(sup["carol@example.org"]["reason"], "complaint")
        self.assertEqual(sup["carol@example.org"]["campaign"], CAMPAIGN)

        # the same sources again: nothing changes
        with open(os.path.join(self.out, "events.csv"), "rb") as f:
            before_ev = f.read()
        with open(self.path("suppress.csv"), "rb") as f:
            before_sup = f.read()
        out, err = self.edm("c.ini", self.path("bounces.mbox"), self.path("Maildir"))
        s = summary(out)
        self.assertEqual(s["messages read"], 7, out)
        self.assertEqual(s["duplicates"], 4, out)
        self.assertEqual(s["bounces"] + s["delayed"] + s["complaints"], 0, out)
        self.assertEqual(s["not ours"], 2, out)
        self.assertEqual(s["auto-replies"], 1, out)
        self.assertEqual(s["suppressed addresses added"], 0, out)
        with open(os.path.join(self.out, "events.csv"), "rb") as f:
            self.assertEqual(f.read(), before_ev)
        with open(self.path("suppress.csv"), "rb") as f:
            self.assertEqual(f.read(), before_sup)
        # sources are only read
        self.assertEqual(len(os.listdir(os.path.join(self.path("Maildir"), "new"))), 3)

    def test_stdin_results_lookup_and_unsubscribe_token(self):
        out, _ = self.edm("c.ini", "-", stdin=self.erin())
        s = summary(out)
        self.assertEqual((s["messages read"], s["bounces"]), (1, 1), out)
        self.assertEqual(s["bounces_by"], {"quota-issues": 1}, out)
        self.assertEqual(s["suppressed addresses added"], 0, out)   # not a suppressing one
        e = self.events()[0]
        self.assertEqual((e["type"], e["row"], e["email"]), ("bounce", "5", "erin@example.com"))
        self.assertEqual(e["status"], "5.2.2")
        self.assertRegex(e["ref"], r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(e["ref"], "sha256:" + hashlib.sha256(self.erin()).hexdigest())
        # no SOURCE is standard input too; the same bytes are a duplicate
        out, _ = self.edm("c.ini", stdin=self.erin())
        self.assertEqual(summary(out)["duplicates"], 1, out)

        out, _ = self.edm("c.ini", "-", stdin=self.frank())
        s = summary(out)
        self.assertEqual(s["complaints"], 1, out)
        self.assertEqual(s["suppressed addresses added"], 1, out)
        e = self.events()[-1]
        self.assertEqual((e["type"], e["row"], e["email"], e["detail"]),
                         ("complaint", "6", "frank@example.com", "fraud"))
        self.assertEqual([r["email"] for r in self.suppressed()], ["frank@example.com"])
        self.assertEqual(len(self.events()), 2)

    def test_mbox_quoting_matches_stdin(self):
        """The ref of a report without Message-ID is the hash of its bytes:
        read from an mbox (From_ line, >From quoting, separator blank line)
        it must be the same as from stdin."""
        raw = self.erin()
        m = mailbox.mbox(self.path("one.mbox"))
        msg = mailbox.mboxMessage(raw)
        m.add(msg)
        m.add(autoreply())
        m.close()
        with open(self.path("one.mbox"), "rb") as f:
            data = f.read()
        self.assertIn(b"\n>From the mail system", data)   # quoted by mailbox
        self.assertIn(b"\n\n>From here on", data)
        out, _ = self.edm("c.ini", self.path("one.mbox"))
        s = summary(out)
        self.assertEqual((s["messages read"], s["bounces"], s["auto-replies"]), (2, 1, 1), out)
        out, _ = self.edm("c.ini", "-", stdin=raw)
        self.assertEqual(summary(out)["duplicates"], 1, out)

    def test_without_verp_message_id_still_matches(self):
        # no {{token}}, no [tracking]: no secret needed; Message-IDs match
        self.write_config(smtp_extra="", tracking=False)
        env = dict(os.environ)
        env.pop("EDM_TRACKING_SECRET", None)
        bob = dsn("bounces@%s" % DOMAIN, [[
            ("Final-Recipient", "rfc822; bob@example.net"), ("Action", "failed"),
            ("Status", "5.1.1"), ("Diagnostic-Code", "smtp; 550 5.1.1 user unknown")]],
            orig=original(2, return_path="bounces@acme.example"),
            msgid="dsn-bob-2@relay.acme.example").as_bytes()
        out, _ = self.edm("c.ini", "-", stdin=bob, env=env)
        self.assertEqual(summary(out)["bounces"], 1, out)
        alice = dsn(verp(CAMPAIGN, 1), [[
            ("Final-Recipient", "rfc822; alice@example.com"), ("Action", "failed"),
            ("Status", "5.1.1")]], msgid="dsn-alice-2@relay.acme.example").as_bytes()
        out, _ = self.edm("c.ini", "-", stdin=alice, env=env)
        self.assertEqual(summary(out)["not ours"], 1, out)   # VERP not configured

    def test_no_suppression_file_warns_once(self):
        self.write_config(tracking=False, suppression=False)
        self.write_sources()
        out, err = self.edm("c.ini", self.path("bounces.mbox"), self.path("Maildir"))
        s = summary(out)
        self.assertEqual(s["bounces"] + s["complaints"], 3, out)
        self.assertEqual(s["suppressed addresses added"], 0, out)
        self.assertEqual(err.count("suppression is not set"), 1, err)
        self.assertEqual(len(self.events()), 4)
        self.assertFalse(os.path.exists(self.path("suppress.csv")))

    def test_already_suppressed_not_added_again(self):
        with open(self.path("suppress.csv"), "w") as f:
            f.write("email,reason,time,campaign\nALICE@example.com,manual,,\n")
        self.write_sources()
        out, _ = self.edm("c.ini", self.path("bounces.mbox"))
        self.assertEqual(summary(out)["suppressed addresses added"], 1, out)   # bob only
        self.assertEqual([r["email"] for r in self.suppressed()],
                         ["ALICE@example.com", "Bob@example.net"])

    def test_size_bound(self):
        big = dsn(verp(CAMPAIGN, 1), [[
            ("Final-Recipient", "rfc822; alice@example.com"), ("Action", "failed"),
            ("Status", "5.1.1")]], msgid="dsn-big@relay.acme.example")
        big.attach(MIMEText("x" * 1000 + "\n", "plain"))
        raw = big.as_bytes() + b"y" * (11 << 20) + b"\n"
        out, err = self.edm("c.ini", "-", stdin=raw)
        s = summary(out)
        self.assertEqual((s["truncated"], s["bounces"]), (1, 1), out)
        self.assertIn("only the first 10485760 were parsed", err)
        out, err = self.edm("--max-size", "64K", "c.ini", "-", stdin=self.erin() + b"z" * 70000)
        self.assertEqual(summary(out)["truncated"], 1, out)
        self.assertIn("only the first 65536 were parsed", err)

    def test_exit_codes(self):
        out, _ = self.edm("--help")
        self.assertIn("Usage: edm ingest", out)
        self.edm(expect=EX_USAGE)
        self.edm("--bogus", "c.ini", expect=EX_USAGE)
        self.edm("--max-size", "1", "c.ini", expect=EX_USAGE)
        self.edm("missing.ini", "-", stdin=b"", expect=EX_NOINPUT)
        # a missing SOURCE; the others are still read
        out, err = self.edm("c.ini", self.path("nope.mbox"), "-", stdin=self.erin(),
                            expect=EX_NOINPUT)
        self.assertIn("nope.mbox", err)
        self.assertEqual(summary(out)["bounces"], 1, out)
        # not mail at all
        _, err = self.edm("c.ini", "-", stdin=b"\x89PNG\r\n\x1a\n\x00\x00binary", expect=EX_DATAERR)
        self.assertIn("not a mail message", err)
        self.edm("c.ini", "-", stdin=b"", expect=EX_DATAERR)
        os.mkdir(self.path("notmaildir"))
        self.edm("c.ini", self.path("notmaildir"), expect=EX_DATAERR)
        # an empty mbox is an empty mailbox
        open(self.path("empty.mbox"), "w").close()
        out, _ = self.edm("c.ini", self.path("empty.mbox"))
        self.assertEqual(summary(out)["messages read"], 0)
        # {{token}} without the secret; another tag; a broken config
        env = dict(os.environ)
        env.pop("EDM_TRACKING_SECRET", None)
        _, err = self.edm("c.ini", "-", stdin=self.erin(), env=env, expect=EX_CONFIG)
        self.assertIn("EDM_TRACKING_SECRET", err)
        self.write_config(smtp_extra="return_path = bounces+{{email}}@acme.example\n",
                          tracking=False)
        _, err = self.edm("c.ini", "-", stdin=self.erin(), expect=EX_CONFIG)
        self.assertIn("{{token}}", err)
        with open(self.path("c.ini"), "a") as f:
            f.write("[campaign]\nbogus_key = 1\n")
        self.edm("c.ini", "-", stdin=self.erin(), expect=EX_CONFIG)

    def test_io_errors(self):
        # dangling symlinks into a missing directory: opening them for
        # writing fails even for root
        os.symlink(self.path("nodir/suppress.csv"), self.path("suppress.csv"))
        _, err = self.edm("c.ini", "-", stdin=self.reports_mbox()[0].as_bytes(),
                          expect=EX_IOERR)
        self.assertIn("suppress.csv", err)
        self.assertEqual(self.events(), [])   # suppression comes first
        os.unlink(self.path("suppress.csv"))
        os.symlink(self.path("nodir/events.csv"), os.path.join(self.out, "events.csv"))
        _, err = self.edm("c.ini", "-", stdin=self.erin(), expect=EX_IOERR)
        self.assertIn("events.csv", err)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
