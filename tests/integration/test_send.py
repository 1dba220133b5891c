#!/usr/bin/python3
"""`edm send` end to end against real servers on loopback.

usage: test_send.py EDM FAULT_SERVER [unittest arguments, e.g. TestTLS]

Every case builds a campaign in its own temp dir (config, recipient list,
the bodies of tests/fixtures/send), starts the servers it needs through
peers.py (Postfix smtp-sink, the scripted aiosmtpd peer smtp_peer.py,
tests/fault_server, dnsmasq) and runs the real edm binary. What edm says
happened (exit status, stderr, OUT_DIR/results.csv read with Python's csv
module) is checked against what the servers say they received
(fault_server --log lines, smtp_peer's log.jsonl and stored messages parsed
by Python's email package, smtp-sink's dump files). Nothing leaves
127.0.0.1: relays are loopback ports, MX lookups go to a loopback dnsmasq.

Configs use short retry intervals and timeouts ([smtp] retry_first = 1s,
retry_max_interval = 2s, timeout_* of seconds) so the whole file runs in
well under three minutes.
"""
import csv
import email
import email.policy
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers  # noqa: E402

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
FAULT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "build/tests/fault_server"
FIXTURES = os.path.join(HERE, "..", "fixtures", "send")
EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 65, 75, 78

RESULTS_COLUMNS = ["time", "email", "status", "code", "enhanced", "category", "reply",
                   "attempts", "host", "source_ip", "tls", "message_id", "queued_at",
                   "first_attempt_at", "row"]

# [smtp] keys every test starts from: fast retries, short timeouts.
SMTP_BASE = {
    "mode": "relay",
    "tls": "none",
    "retry_first": "1s",
    "retry_max_interval": "2s",
    "retry_for": "60s",
    "dead_host_for": "1s",
    "timeout_connect": "2s",
    "timeout_greeting": "10s",
    "timeout_ehlo": "10s",
    "timeout_starttls": "10s",
    "timeout_auth": "10s",
    "timeout_mail": "10s",
    "timeout_rcpt": "10s",
    "timeout_data": "10s",
    "timeout_data_block": "10s",
    "timeout_rset": "10s",
    "timeout_quit": "5s",
    "backoff_period": "1s",
    "backoff_pause": "1s",
    "shutdown_grace": "10s",
    "max_bounce_rate": "0%",   # the bounce cases must not trip the breaker
}
# [domain *]: no message rate limit, connections opened at once.
DOMAIN_BASE = {
    "connections": "4",
    "messages_per_connection": "100",
    "rate": "0",
    "connect_rate": "1000/s",
}

FAULT_MSG = re.compile(r"^msg from=<[^>]*> rcpts=(\S*) ")


def fault_log(path):
    """Counter of addresses in the `msg` lines (accepted messages) of a
    fault_server --log file."""
    c = Counter()
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                m = FAULT_MSG.match(line)
                if m:
                    for a in m.group(1).split(","):
                        c[a.strip("<>")] += 1
    except FileNotFoundError:
        pass
    return c


def fault_lines(path, word):
    """The log lines of fault_server starting with WORD."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return [x for x in f if x.split(" ", 1)[0] == word]
    except FileNotFoundError:
        return []


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def wait_for(pred, timeout, step=0.02):
    """Poll PRED until true or TIMEOUT seconds; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class Campaign:
    """A temp dir with c.ini, list.csv and the fixture bodies."""

    def __init__(self, tc, rows, port=None, smtp=None, domain=None,
                 subject="{{first_name|friend}}, spring sale 50% off"):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="edm-send-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "out")
        self.cfg = os.path.join(self.dir, "c.ini")
        self.procs = []
        tc.addCleanup(self._reap)
        for name in os.listdir(FIXTURES):
            shutil.copy(os.path.join(FIXTURES, name), self.dir)
        self.rows = [r if isinstance(r, tuple) else (r, "", "") for r in rows]
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8",
                  newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["email", "first_name", "city"])
            w.writerows(self.rows)
        self.smtp = dict(SMTP_BASE)
        if port is not None:
            self.smtp["relay"] = f"127.0.0.1:{port}"
        self.smtp.update(smtp or {})
        self.domain = dict(DOMAIN_BASE)
        self.domain.update(domain or {})
        self.subject = subject
        self.write_config()

    def _reap(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for s in (p.stdout, p.stderr):
                if s is not None:
                    s.close()

    def config_text(self, smtp=True):
        t = ("[campaign]\nname = spring\nrecipients = list.csv\nout_dir = out\n"
             "[validate]\ndns = no\n"
             "[message]\n"
             'from = "Acme 商城 <news@acme.example>"\n'
             "to_name = {{first_name}}\n"
             "subject = " + self.subject + "\n"
             "text = body.txt\nhtml = body.html\n")
        if smtp:
            t += "[smtp]\n" + "".join(f"{k} = {v}\n" for k, v in self.smtp.items()
                                      if v is not None)
        t += "[domain *]\n" + "".join(f"{k} = {v}\n" for k, v in self.domain.items()
                                     if v is not None)
        return t

    def write_config(self, text=None):
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(self.config_text() if text is None else text)

    def path(self, name):
        return os.path.join(self.dir, name)

    def argv(self, args):
        return [EDM, "send", "--no-progress"] + list(args) + [self.cfg]

    def run(self, *args, expect=0, env=None, timeout=120):
        """Run edm send ARGS c.ini; check the exit status unless expect is None."""
        argv = self.argv(args)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)
        try:
            out, err = p.communicate(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            hung = True
        if hung:
            self.tc.fail("edm send %s did not end within %g s; its stdout:\n%s\n"
                         "the end of its stderr:\n%s"
                         % (" ".join(args), timeout, out[-3000:], err[-6000:]))
        p = subprocess.CompletedProcess(argv, p.returncode, out, err)
        if expect is not None:
            self.tc.assertEqual(p.returncode, expect,
                                "edm send %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                                % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def start(self, *args, env=None):
        """Start edm send in the background; the Popen is killed at cleanup."""
        p = subprocess.Popen(self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        return p

    def results(self):
        """results.csv as a list of dicts (the header checked)."""
        with open(os.path.join(self.out, "results.csv"), newline="", encoding="utf-8") as f:
            r = csv.DictReader(f)
            rows = list(r)
            self.tc.assertEqual(r.fieldnames, RESULTS_COLUMNS)
        return rows

    def by_email(self):
        """{email: row} from results.csv, checking one row per email."""
        rows = self.results()
        c = Counter(r["email"] for r in rows)
        dup = [e for e, n in c.items() if n > 1]
        self.tc.assertEqual(dup, [], "emails with more than one row in results.csv")
        return {r["email"]: r for r in rows}

    def exists(self, name):
        return os.path.exists(os.path.join(self.out, name))


def emails(n, domains, prefix="user"):
    """n addresses spread over the domains, in order."""
    return [f"{prefix}{i}@{domains[i % len(domains)]}" for i in range(n)]


class SendCase(unittest.TestCase):
    maxDiff = 4000

    def assert_delivered(self, row, email_addr=None):
        self.assertEqual(row["status"], "delivered", row)
        self.assertTrue(row["code"].startswith("2"), row)
        self.assertEqual(row["category"], "", row)
        self.assertRegex(row["message_id"], r"^[^<>\s]+@acme\.example$", row)
        if email_addr is not None:
            self.assertEqual(row["email"], email_addr)


# ---------------------------------------------------------------------------
class TestVolume(SendCase):
    def test_smtp_sink_2000_recipients_20_connections(self):
        """2,000 recipients over 5 domains through Postfix's smtp-sink with up to
        20 connections: every one delivered exactly once."""
        domains = ["a.example", "b.example", "c.example", "d.example", "e.example"]
        rcpts = emails(2000, domains)
        tmp = tempfile.mkdtemp(prefix="edm-sink-dump-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # smtp-sink runs as nobody when we are root: it must reach the dump
        # dir through this one (mkdtemp makes it 0700), or it dies at the
        # first MAIL ("open ...: Permission denied")
        os.chmod(tmp, 0o755)
        dump = os.path.join(tmp, "dump")
        try:
            sink_cm = peers.smtp_sink("-h", "sink.test", dump_dir=dump)
            sink = sink_cm.__enter__()
        except peers.SkipUnavailable as e:
            self.skipTest(str(e))
        try:
            c = Campaign(self, rcpts, port=sink.port,
                         smtp={"max_connections": "20"},
                         domain={"connections": "4", "messages_per_connection": "50"})
            t0 = time.monotonic()
            p = c.run()
            took = time.monotonic() - t0
            self.assertIn("delivered 2000", p.stdout)
        finally:
            sink_cm.__exit__(None, None, None)
        rows = c.by_email()
        self.assertEqual(len(c.results()), 2000)
        self.assertEqual(set(rows), set(rcpts))
        for e, r in rows.items():
            self.assert_delivered(r, e)
            self.assertEqual(r["code"], "250")
            self.assertEqual(r["attempts"], "1")
            self.assertEqual(r["tls"], "none")
            self.assertEqual(r["host"], f"127.0.0.1[127.0.0.1]:{sink.port}")
        ids = [r["message_id"] for r in rows.values()]
        self.assertEqual(len(set(ids)), 2000, "message ids are not unique")
        # what the sink received: one dump file per transaction, each with
        # its envelope recipients as X-Rcpt-Args headers
        got = Counter()
        msgids = {}
        for name in os.listdir(dump):
            with open(os.path.join(dump, name), "rb") as f:
                raw = f.read()
            rcpt = re.findall(rb"^X-Rcpt-Args: <([^>]*)>", raw, re.M)
            self.assertEqual(len(rcpt), 1, name)
            addr = rcpt[0].decode()
            got[addr] += 1
            m = re.search(rb"^Message-ID: <([^>]*)>", raw, re.M | re.I)
            msgids[addr] = m.group(1).decode() if m else None
        self.assertEqual(sum(got.values()), 2000)
        self.assertEqual(set(got), set(rcpts))
        self.assertEqual([a for a, n in got.items() if n != 1], [])
        for a in rcpts:
            self.assertEqual(msgids[a], rows[a]["message_id"], a)
        sys.stderr.write(f"[volume: 2000 messages in {took:.1f} s] ")


# ---------------------------------------------------------------------------
class TestScriptedReplies(SendCase):
    def test_bounce_defer_expire_greylist(self):
        """550 5.1.1 bounces and suppresses; 452 4.2.2 defers then expires;
        greylisting passes on the retry; the rest is delivered once."""
        rcpts = ["ok1@a.example", "ok2@b.example", "nouser@a.example",
                 "full@b.example", "grey@a.example", "grey2@c.example", "ok3@c.example"]
        script = {
            "rcpt": {"nouser": "550 5.1.1 <addr>: Recipient address rejected: User unknown",
                     "full": "452 4.2.2 <addr>: Mailbox full"},
            "greylist_once": ["grey"],
        }
        with peers.smtp_peer(script=script) as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp={"retry_for": "5s"})
            t0 = time.monotonic()
            p = c.run()
            took = time.monotonic() - t0
            log = peer.log()
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        got = Counter(r for rec in log for r in rec["rcpts"])
        for e in ("ok1@a.example", "ok2@b.example", "ok3@c.example"):
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "1")
        # bounced: bad-mailbox, one attempt
        r = rows["nouser@a.example"]
        self.assertEqual((r["status"], r["code"], r["enhanced"], r["category"]),
                         ("bounced", "550", "5.1.1", "bad-mailbox"), r)
        self.assertEqual(r["attempts"], "1")
        self.assertIn("User unknown", r["reply"])
        # deferred until retry_for (5 s) ran out
        r = rows["full@b.example"]
        self.assertEqual((r["status"], r["category"]), ("expired", "message-expired"), r)
        self.assertGreater(int(r["attempts"]), 1, r)
        self.assertIn("Mailbox full", r["reply"])
        # edm gives up when the next retry would land past retry_for, so the
        # end may come one retry interval (2 s + 20 % jitter) and one
        # whole-second rounding before the 5 s; not sooner
        self.assertGreaterEqual(took, 5 - 2.4 - 1.0, "expired long before retry_for ran out")
        # greylisted once, delivered on the retry (retry_first = 1s: no 5 min floor)
        for e in ("grey@a.example", "grey2@c.example"):
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "2", rows[e])
        # the server: each delivered recipient exactly once, nothing else
        self.assertEqual(got, Counter({e: 1 for e in rcpts
                                       if e not in ("nouser@a.example", "full@b.example")}))
        self.assertIn("delivered 5, bounced 1, expired 1", p.stdout)
        # the hard bounce went to OUT_DIR/suppress.csv ...
        with open(os.path.join(c.out, "suppress.csv"), encoding="utf-8") as f:
            sup = f.read()
        self.assertIn("nouser@a.example", sup)
        for e in rcpts:
            if e != "nouser@a.example":
                self.assertNotIn(e, sup)
        # ... which a later validate with suppression = that file honours
        c2 = os.path.join(c.dir, "v.ini")
        with open(c2, "w", encoding="utf-8") as f:
            f.write("[campaign]\nname = again\nrecipients = list.csv\nout_dir = vout\n"
                    "suppression = out/suppress.csv\n[validate]\ndns = no\n")
        v = subprocess.run([EDM, "validate", "--no-dns", "--no-progress", c2],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(v.returncode, 0, v.stderr)
        with open(os.path.join(c.dir, "vout", "rejects.csv"), newline="",
                  encoding="utf-8") as f:
            rej = {r["email"]: r["reason"] for r in csv.DictReader(f)}
        self.assertEqual(rej, {"nouser@a.example": "suppressed"})
        # and a resume of the finished campaign sends nothing again
        with peers.smtp_peer() as peer2:
            c.smtp["relay"] = f"127.0.0.1:{peer2.port}"
            c.write_config()
            # the journal's fingerprint covers the config: a changed one is
            # refused (65) unless --force
            p = c.run(expect=EX_DATAERR)
            self.assertIn("--force", p.stderr)
            c.run("--force")
            self.assertEqual(peer2.log(), [])
        self.assertEqual(len(c.results()), len(rcpts))

    def test_421_rate_limit_deferred_then_delivered(self):
        """A 421 "rate limit" after each connection's first message defers the
        next one; it is delivered on a later connection, exactly once."""
        rcpts = emails(8, ["a.example"])
        script = {"max_messages_per_conn": 1,
                  "max_messages_reply": "421 4.7.0 rate limit exceeded, slow down"}
        with peers.smtp_peer(script=script) as peer:
            c = Campaign(self, rcpts, port=peer.port,
                         domain={"connections": "2", "messages_per_connection": "10"})
            p = c.run(timeout=120)
            log = peer.log()
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        got = Counter(r for rec in log for r in rec["rcpts"])
        self.assertEqual(got, Counter({e: 1 for e in rcpts}))
        # one message per connection: the server closed every one with a 421
        self.assertTrue(all(rec["msg_in_conn"] == 1 for rec in log), log)
        self.assertGreater(max(int(r["attempts"]) for r in rows.values()), 1,
                           "no recipient was deferred by the 421")
        self.assertIn("delivered 8", p.stdout)

    def test_sender_authentication_stops_campaign(self):
        """550 5.7.26 after the dot (DMARC/SPF/DKIM failure) is the sender's
        problem: exit 78, and the recipients stay pending (not bounced)."""
        rcpts = emails(6, ["a.example", "b.example"])
        script = {"data_after": "550 5.7.26 This mail is unauthenticated, which poses a "
                                "security risk to the sender and Gmail users"}
        with peers.smtp_peer(script=script) as peer:
            c = Campaign(self, rcpts, port=peer.port)
            p = c.run(expect=EX_CONFIG)
            self.assertEqual(peer.log(), [])
        self.assertIn("5.7.26", p.stderr)
        self.assertIn("resume", p.stderr)
        rows = c.results()
        self.assertEqual([r for r in rows if r["email"] in rcpts], [],
                         "recipients of a sender-side refusal must stay pending")
        self.assertFalse(c.exists("suppress.csv"),
                         "nothing may be suppressed for a sender-side refusal")
        # fixed (here: a server that accepts): the resume delivers them all
        with peers.smtp_peer() as peer2:
            c.smtp["relay"] = f"127.0.0.1:{peer2.port}"
            c.write_config()
            c.run("--force")
            log = peer2.log()
        self.assertEqual(Counter(r for rec in log for r in rec["rcpts"]),
                         Counter({e: 1 for e in rcpts}))
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)


# ---------------------------------------------------------------------------
class TestMessages(SendCase):
    def test_messages_parse_and_match_results(self):
        """Every stored message parses (policy default); From, To, Subject
        decode to what the config and row say; Message-ID is results.csv's."""
        rows = [("zhang.wei@a.example", "伟", "深圳"),
                ("eve@b.example", "Eve", "Lyon"),
                ("bob@c.example", "", ""),
                ("ann@a.example", "Ann-Marie Ö", "Zürich")]
        with peers.smtp_peer() as peer:
            c = Campaign(self, rows, port=peer.port,
                         subject="{{first_name|朋友}}，春季大促 · spring sale 50% off")
            c.run()
            msgs = peer.messages()
        res = c.by_email()
        self.assertEqual(len(msgs), 4)
        seen = set()
        for rec, raw in msgs:
            self.assertEqual(len(rec["rcpts"]), 1)
            rcpt = rec["rcpts"][0]
            seen.add(rcpt)
            first, city = {r[0]: r[1:] for r in rows}[rcpt]
            self.assertEqual(rec["mail_from"], "news@acme.example")
            m = parse(raw)
            self.assertEqual(m.defects, [])
            self.assertEqual(m["From"].addresses[0].display_name, "Acme 商城")
            self.assertEqual(m["From"].addresses[0].addr_spec, "news@acme.example")
            self.assertEqual(m["To"].addresses[0].addr_spec, rcpt)
            if first:
                self.assertEqual(m["To"].addresses[0].display_name, first)
            self.assertEqual(str(m["Subject"]),
                             f"{first or '朋友'}，春季大促 · spring sale 50% off")
            mid = str(m["Message-ID"]).strip()
            self.assertEqual(mid, "<" + res[rcpt]["message_id"] + ">")
            text = m.get_body(("plain",)).get_content()
            self.assertIn(f"Hi {first or 'friend'},", text)
            self.assertIn(f"50% off everything in {city or 'your city'}.", text)
            html = m.get_body(("html",)).get_content()
            self.assertIn(f"<h1>Hi {first or 'friend'}!</h1>", html)
        self.assertEqual(seen, {r[0] for r in rows})


# ---------------------------------------------------------------------------
class TestTLS(SendCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="edm-send-certs-")
        cls.certs = peers.gen_test_certs(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def tls_smtp(self, mode="starttls", **kw):
        d = {"tls": mode, "ca_file": self.certs.ca}
        d.update(kw)
        return d

    def test_starttls_delivered(self):
        rcpts = emails(3, ["a.example"])
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--require-starttls") as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=self.tls_smtp())
            c.run()
            log = peer.log()
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertTrue(rows[e]["tls"].startswith("TLS"), rows[e])
            self.assertNotIn("unverified", rows[e]["tls"])
        self.assertEqual(len(log), 3)
        self.assertTrue(all(rec["tls"] for rec in log), log)

    def test_starttls_wrong_certificate(self):
        """The server's certificate is for other.test, the relay is 127.0.0.1:
        verification fails, exit 78, nothing delivered."""
        rcpts = emails(3, ["a.example"])
        with peers.smtp_peer("--starttls", self.certs.wrong_cert, self.certs.wrong_key,
                             "--require-starttls") as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=self.tls_smtp())
            p = c.run(expect=EX_CONFIG)
            self.assertEqual(peer.log(), [])
        self.assertIn(f"127.0.0.1[127.0.0.1]:{peer.port}", p.stderr)
        self.assertEqual(c.results(), [])

    def test_opportunistic_tls_failure_falls_back_to_plaintext(self):
        """tls = opportunistic without verification (the mx-mode default,
        RFC 7435): a STARTTLS handshake that fails (the server offers only
        TLS 1.1) is no reason to bounce; the host gets plaintext, results
        say none. (With tls_verify = yes there is no fallback: see docs.)"""
        rcpts = emails(3, ["a.example"])
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--broken-tls") as peer:
            c = Campaign(self, rcpts, port=peer.port,
                         smtp=self.tls_smtp("opportunistic", tls_verify="no"))
            p = c.run()
            log = peer.log()
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["tls"], "none", rows[e])
        self.assertEqual(len(log), 3)
        self.assertFalse(any(rec["tls"] for rec in log), log)
        with open(os.path.join(c.out, "send.log"), encoding="utf-8") as f:
            self.assertIn("tls-fallback", p.stderr + f.read())

    def test_starttls_required_but_not_offered(self):
        """tls = starttls against a server without STARTTLS: exit 78 and not a
        byte of mail in plaintext."""
        rcpts = emails(3, ["a.example"])
        with peers.smtp_peer() as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=self.tls_smtp())
            p = c.run(expect=EX_CONFIG)
            self.assertEqual(peer.log(), [])
        self.assertRegex(p.stderr, r"(?i)starttls")
        self.assertEqual(c.results(), [])

    def test_auth_ok(self):
        rcpts = emails(2, ["a.example"])
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--auth", "edm-user:s3cret pass") as peer:
            c = Campaign(self, rcpts, port=peer.port,
                         smtp=self.tls_smtp(username="edm-user",
                                            password_env="EDM_TEST_SEND_PW"))
            c.run(env={"EDM_TEST_SEND_PW": "s3cret pass"})
            log = peer.log()
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        self.assertEqual(len(log), 2)
        self.assertTrue(all(rec["auth"] == "edm-user" and rec["tls"] for rec in log), log)

    def test_auth_wrong_password(self):
        rcpts = emails(2, ["a.example"])
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--auth", "edm-user:s3cret") as peer:
            c = Campaign(self, rcpts, port=peer.port,
                         smtp=self.tls_smtp(username="edm-user",
                                            password_env="EDM_TEST_SEND_PW"))
            p = c.run(expect=EX_CONFIG, env={"EDM_TEST_SEND_PW": "Wr0ng-pa55"})
            self.assertEqual(peer.log(), [])
        self.assertIn(f"127.0.0.1[127.0.0.1]:{peer.port}", p.stderr)
        self.assertRegex(p.stderr, r"(?i)535|auth")
        self.assertNotIn("Wr0ng-pa55", p.stderr, "the password must not be printed")
        self.assertEqual(c.results(), [])

    def test_implicit_tls(self):
        rcpts = emails(3, ["a.example", "b.example"])
        with peers.smtp_peer("--implicit-tls", self.certs.server_cert,
                             self.certs.server_key) as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=self.tls_smtp("implicit"))
            c.run()
            log = peer.log()
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertTrue(rows[e]["tls"].startswith("TLS"), rows[e])
        self.assertEqual(len(log), 3)


# ---------------------------------------------------------------------------
class TestFaultServer(SendCase):
    def fault(self, *args):
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        return peers.fault_server(FAULT, "--quiet", "--log", log, *args), log

    def test_pipelining_rcpt_reply(self):
        rcpts = emails(30, ["a.example", "b.example"]) + \
            ["bad1@a.example", "bad2@b.example", "bad3@a.example"]
        cm, log = self.fault("--pipelining", "--rcpt-reply", "bad=550 5.1.1 no such user")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port)
            c.run()
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            if e.startswith("bad"):
                self.assertEqual((rows[e]["status"], rows[e]["code"], rows[e]["category"]),
                                 ("bounced", "550", "bad-mailbox"), rows[e])
            else:
                self.assert_delivered(rows[e], e)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts if not e.startswith("bad")}))
        self.assertEqual(len(fault_lines(log, "rcpt-rejected")), 3)
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_split_bytes(self):
        rcpts = emails(20, ["a.example", "b.example"])
        cm, log = self.fault("--split-bytes", "--split-delay-ms", "1")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port)
            c.run()
        rows = c.by_email()
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_421_after_3(self):
        """421 after every third message of a connection: the next transaction
        is cut before its dot, so nothing of it was delivered; everything is
        delivered in the end, each address exactly once."""
        rcpts = emails(40, ["a.example", "b.example"])
        cm, log = self.fault("--421-after", "3")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port,
                         domain={"connections": "3", "messages_per_connection": "10"})
            c.run(timeout=150)
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        got = fault_log(log)
        self.assertEqual(got, Counter({e: 1 for e in rcpts}))
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_relay_quota_stops_without_bouncing(self):
        """The relay says the account's sending quota is spent (NetEase's
        MI:SFQ, on the fourth recipient): the campaign stops with 75 and
        says why; nobody is bounced; the rest stay pending; the resume
        (quota reset: a normal server) delivers them, each once."""
        rcpts = [f"u{i}@a.example" for i in range(1, 9)]
        cm, log = self.fault("--rcpt-reply", "u4@=451 MI:SFQ Sender exceeded its 15-minute quota")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port,
                         domain={"connections": "1"}, smtp={"retry_first": "1s"})
            r = c.run(expect=EX_TEMPFAIL, timeout=60)
        self.assertIn("sending quota is used up", r.stderr)
        self.assertIn("MI:SFQ", r.stderr)
        rows = c.by_email()
        self.assertEqual(set(rows), {"u1@a.example", "u2@a.example", "u3@a.example"})
        got = fault_log(log)
        self.assertEqual(got, Counter({e: 1 for e in rcpts[:3]}))
        log2 = log + "2"
        with peers.fault_server(FAULT, "--quiet", "--log", log2) as fs2:
            c.smtp["relay"] = f"127.0.0.1:{fs2.port}"
            c.write_config()
            c.run("--force", timeout=60)
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        self.assertEqual(fault_log(log2), Counter({e: 1 for e in rcpts[3:]}))


# ---------------------------------------------------------------------------
class TestMX(SendCase):
    def dns(self):
        return peers.dnsmasq("--local=/test/",
                             "--mx-host=a.test,mx1.a.test,10",
                             "--mx-host=b.test,mx1.b.test,10",
                             "--host-record=mx1.a.test,127.0.0.1",
                             "--host-record=mx1.b.test,127.0.0.1")

    def mx_smtp(self, dns, port, **kw):
        d = {"mode": "mx", "relay": None, "resolver": dns.addr, "mx_port": str(port),
             "allow_private_mx": "yes", "tls": "none"}
        d.update(kw)
        return d

    def test_mx_mode(self):
        rcpts = ["x1@a.test", "x2@a.test", "y1@b.test", "y2@b.test",
                 "z1@nxdomain.test", "z2@nxdomain.test"]
        cm_log = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, cm_log, True)
        log = os.path.join(cm_log, "log")
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet", "--log", log) as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port))
            c.run()
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts[:4]:
            self.assert_delivered(rows[e], e)
            dom = e.split("@")[1]
            self.assertEqual(rows[e]["host"], f"mx1.{dom}[127.0.0.1]:{fs.port}")
        for e in rcpts[4:]:
            self.assertEqual((rows[e]["status"], rows[e]["category"]),
                             ("bounced", "bad-domain"), rows[e])
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts[:4]}))

    def test_mx_bad_domain_suppressed(self):
        """A bad-domain hard bounce (NXDOMAIN) goes to the suppression file,
        as `edm send --help` and docs/bounces.md say."""
        rcpts = ["x1@a.test", "z1@nxdomain.test", "z2@nxdomain.test"]
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet") as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port))
            c.run()
        rows = c.by_email()
        self.assertEqual(rows["z1@nxdomain.test"]["category"], "bad-domain")
        path = os.path.join(c.out, "suppress.csv")
        self.assertTrue(os.path.exists(path), "no OUT_DIR/suppress.csv after bad-domain bounces")
        with open(path, encoding="utf-8") as f:
            sup = f.read()
        self.assertIn("z1@nxdomain.test", sup)
        self.assertIn("z2@nxdomain.test", sup)
        self.assertNotIn("x1@a.test", sup)

    def test_mx_private_not_allowed(self):
        """Without allow_private_mx, MX hosts on loopback are not used: the
        domain's recipients expire after retry_for with the reason."""
        rcpts = ["x1@a.test", "y1@b.test"]
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet", "--log", log) as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port, allow_private_mx=None,
                                                        retry_for="3s"))
            c.run(timeout=60)
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assertEqual((rows[e]["status"], rows[e]["category"]),
                             ("expired", "message-expired"), rows[e])
            self.assertIn("allow_private_mx", rows[e]["reply"])
            self.assertEqual(rows[e]["code"], "")
        self.assertEqual(fault_log(log), Counter())

    def test_provider_daily_limit_persists_and_no_wait(self):
        """A [provider] daily_limit caps all its domains together; with
        --no-wait the run ends with 75 and says when to run again; the count
        is kept in OUT_DIR/daily, so running again the same day sends
        nothing more."""
        rcpts = ["x1@a.test", "x2@a.test", "x3@a.test", "y1@b.test", "y2@b.test", "y3@b.test"]
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet", "--log", log) as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port))
            c.write_config(c.config_text() + "[provider all]\nmx = *\ndaily_limit = 3\n")
            for run in (1, 2):
                t0 = time.monotonic()
                r = c.run("--no-wait", expect=EX_TEMPFAIL, timeout=60)
                self.assertLess(time.monotonic() - t0, 30, f"run {run} waited for the cap")
                self.assertIn("daily_limit", r.stderr)
                self.assertRegex(r.stderr, r"run the same command again after \d{4}-\d\d-\d\dT00:00:00Z")
                self.assertEqual(sum(fault_log(log).values()), 3, f"run {run}")
                self.assertEqual(len(c.results()), 3)
        with open(os.path.join(c.out, "daily"), encoding="ascii") as f:
            lines = f.read().split("\n")
        self.assertIn(" 0 3 provider:all", lines[0])

    def test_domain_daily_limit_per_wildcard_domain(self):
        """[domain *] daily_limit = 2 gives each domain its own cap of 2."""
        rcpts = ["x1@a.test", "x2@a.test", "x3@a.test", "y1@b.test", "y2@b.test", "y3@b.test"]
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet", "--log", log) as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port),
                         domain={"daily_limit": "2"})
            c.run("--no-wait", expect=EX_TEMPFAIL, timeout=60)
        got = fault_log(log)
        self.assertEqual(sum(v for k, v in got.items() if k.endswith("@a.test")), 2, got)
        self.assertEqual(sum(v for k, v in got.items() if k.endswith("@b.test")), 2, got)

    def test_provider_connect_rate(self):
        """[provider] connect_rate = 2/s over two domains, one message per
        connection: 6 connections take at least 1.5 s (2 at once, then one
        every 0.5 s); without the provider's limit they open at once."""
        rcpts = ["x1@a.test", "x2@a.test", "x3@a.test", "y1@b.test", "y2@b.test", "y3@b.test"]
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with self.dns() as dns, peers.fault_server(FAULT, "--quiet", "--log", log) as fs:
            c = Campaign(self, rcpts, smtp=self.mx_smtp(dns, fs.port),
                         domain={"messages_per_connection": "1"})
            c.write_config(c.config_text() + "[provider all]\nmx = *\nconnect_rate = 2/s\n")
            t0 = time.monotonic()
            c.run(timeout=60)
            took = time.monotonic() - t0
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        conns = {re.search(r" conn=(\d+)", x).group(1) for x in fault_lines(log, "msg")}
        self.assertEqual(len(conns), 6)
        self.assertGreaterEqual(took, 1.5)


# ---------------------------------------------------------------------------
class TestModes(SendCase):
    def test_dry_run(self):
        rcpts = emails(25, ["a.example", "b.example"])
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with peers.fault_server(FAULT, "--log", log) as fs:
            c = Campaign(self, rcpts, port=fs.port)
            p = c.run("--dry-run")
            self.assertIn("25 messages rendered", p.stdout)
            self.assertFalse(c.exists("journal"))
            self.assertFalse(c.exists("results.csv"))
        self.assertEqual(fault_log(log), Counter())
        # its exit summary: not even a connection
        self.assertRegex(fs.proc.stderr(), r"exit reason=\S+ connections=0 ")

    def test_test_to_limit(self):
        rcpts = emails(10, ["a.example", "b.example"])
        with peers.smtp_peer() as peer:
            c = Campaign(self, rcpts, port=peer.port)
            c.run("--test-to", "qa@check.example", "--limit", "2", timeout=20)
            msgs = peer.messages()
        self.assertEqual(len(msgs), 2)
        for rec, raw in msgs:
            self.assertEqual(rec["rcpts"], ["qa@check.example"])
            self.assertEqual(str(parse(raw)["Subject"]), "friend, spring sale 50% off")
        self.assertFalse(c.exists("journal"))
        self.assertFalse(c.exists("results.csv"))


# ---------------------------------------------------------------------------
class TestResume(SendCase):
    def test_sigkill_resume_and_lock(self):
        """kill -9 in the middle, run again until done: every recipient in
        results.csv once, server-side duplicates at most one per connection.
        A second send while the first runs is refused with 75 (lock)."""
        rcpts = emails(500, ["a.example", "b.example", "c.example"])
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with peers.fault_server(FAULT, "--quiet", "--log", log, "--delay-ms", "20") as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"max_connections": "5"},
                         domain={"connections": "5", "messages_per_connection": "1000"})
            p1 = c.start()
            self.assertTrue(wait_for(lambda: c.exists("journal"), 10), "no journal")
            p2 = c.run(expect=EX_TEMPFAIL)
            self.assertRegex(p2.stderr, r"another edm send")
            time.sleep(0.5)
            # (a slow machine: wait for the first deliveries)
            wait_for(lambda: sum(fault_log(log).values()) > 0, 10)
            before = sum(fault_log(log).values())
            self.assertIsNone(p1.poll(), "the first send ended too early for the test")
            p1.send_signal(signal.SIGKILL)
            p1.wait()
            self.assertGreater(before, 0, "nothing was sent in 0.5 s")
            self.assertLess(before, 500, "everything was sent before the kill")
            for _ in range(5):
                p = c.run(expect=None)
                self.assertIn(p.returncode, (0, EX_TEMPFAIL), p.stderr)
                if p.returncode == 0:
                    break
            self.assertEqual(p.returncode, 0)
            self.assertIn("resuming", p.stderr)
        rows = c.by_email()
        self.assertEqual(len(c.results()), 500)
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        got = fault_log(log)
        self.assertEqual(set(got), set(rcpts))
        dups = {a: n for a, n in got.items() if n > 1}
        self.assertTrue(all(n == 2 for n in dups.values()), dups)
        self.assertLessEqual(len(dups), 5, f"more duplicates than connections: {dups}")

    def test_sigterm_stops_and_resumes(self):
        rcpts = emails(20, ["a.example", "b.example"])
        tmp = tempfile.mkdtemp(prefix="edm-fault-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        with peers.fault_server(FAULT, "--quiet", "--log", log, "--delay-ms", "200") as fs:
            c = Campaign(self, rcpts, port=fs.port,
                         domain={"connections": "3", "messages_per_connection": "100"})
            p1 = c.start()
            time.sleep(0.5)
            # at least one message on its way, so the stop has something to
            # finish and the second run is a resume
            self.assertTrue(wait_for(lambda: sum(fault_log(log).values()) > 0, 10),
                            "nothing sent within 10 s")
            self.assertIsNone(p1.poll())
            p1.send_signal(signal.SIGTERM)
            out, err = p1.communicate(timeout=30)
            self.assertEqual(p1.returncode, EX_TEMPFAIL, err)
            self.assertIn("resume", err)
            first = c.results()
            self.assertGreater(len(first), 0, "the message in flight was not finished")
            self.assertLess(len(first), 20)
            for r in first:
                self.assert_delivered(r)
            p = c.run()
            self.assertIn("resuming", p.stderr)
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        # a graceful stop finishes what is in flight: no duplicates at all
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))


# ---------------------------------------------------------------------------
class TestRelayDown(SendCase):
    def test_relay_down_expires_within_retry_for(self):
        """The relay refuses every connection: every recipient expires
        (message-expired, the connect error as the reason) once retry_for has
        run out, give or take one retry interval, whatever its domain."""
        rcpts = emails(100, ["a.example", "b.example", "c.example", "d.example",
                             "e.example"])
        port = peers.free_port()  # nothing listens there
        c = Campaign(self, rcpts, port=port, smtp={"retry_for": "5s"})
        t0 = time.monotonic()
        c.run(timeout=90)
        took = time.monotonic() - t0
        rows = c.by_email()
        self.assertEqual(set(rows), set(rcpts))
        for e in rcpts:
            self.assertEqual((rows[e]["status"], rows[e]["category"]),
                             ("expired", "message-expired"), rows[e])
            self.assertIn("refused", rows[e]["reply"])
        # retry_for 5 s + at most one backoff (retry_max_interval 2 s + 20 %)
        # + scheduling slack
        self.assertLess(took, 5 + 2.4 + 2.0,
                        f"the last recipients expired {took:.1f} s after the start "
                        "with retry_for = 5s")


# ---------------------------------------------------------------------------
class TestBadConfig(SendCase):
    def test_no_smtp_section(self):
        c = Campaign(self, ["a@a.example"], port=1)
        c.write_config(c.config_text(smtp=False))
        p = c.run(expect=EX_CONFIG)
        self.assertIn(c.cfg, p.stderr)
        self.assertIn("[smtp]", p.stderr)
        self.assertFalse(c.exists("journal"))

    def test_bad_relay(self):
        c = Campaign(self, ["a@a.example"], smtp={"relay": "127.0.0.1:notaport"})
        p = c.run(expect=EX_CONFIG)
        text = c.config_text()
        line = text.split("\n").index("relay = 127.0.0.1:notaport") + 1
        self.assertIn(f"{c.cfg}:{line}:", p.stderr)
        self.assertIn("127.0.0.1:notaport", p.stderr)

    def test_password_env_unset(self):
        c = Campaign(self, ["a@a.example"], port=1,
                     smtp={"username": "u", "password_env": "EDM_TEST_SEND_UNSET_PW"})
        env = dict(os.environ)
        env.pop("EDM_TEST_SEND_UNSET_PW", None)
        p = subprocess.run(c.argv([]), capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("EDM_TEST_SEND_UNSET_PW", p.stderr)
        line = c.config_text().split("\n").index("password_env = EDM_TEST_SEND_UNSET_PW") + 1
        self.assertIn(f"{c.cfg}:{line}", p.stderr)
        self.assertFalse(c.exists("journal"))

    def test_bad_mode_and_tls(self):
        for key, value in (("mode", "smarthost"), ("tls", "maybe")):
            c = Campaign(self, ["a@a.example"], port=1, smtp={key: value})
            p = c.run(expect=EX_CONFIG)
            line = c.config_text().split("\n").index(f"{key} = {value}") + 1
            self.assertIn(f"{c.cfg}:{line}:", p.stderr)
            self.assertIn(value, p.stderr)


if __name__ == "__main__":
    for prog in (EDM, FAULT):
        if not os.access(prog, os.X_OK):
            sys.exit(f"{prog}: not an executable (usage: test_send.py EDM FAULT_SERVER)")
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
