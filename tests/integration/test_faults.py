#!/usr/bin/python3
"""`edm send` against servers that misbehave or attack (issue 6).

usage: test_faults.py EDM FAULT_SERVER [unittest arguments, e.g. TestDotWindow]

The fault-injection and security cases that test_send.py does not already
cover (it has: replies split into single bytes, 421 after every third
message, a wrong-host certificate, opportunistic TLS falling back after a
failed handshake, STARTTLS required but not offered). Every case runs the
real edm binary against a real server on 127.0.0.1 (tests/fault_server,
tests/integration/smtp_peer.py) with short timeouts and retries, then checks
what edm says happened (exit status as docs/edm.1 gives it, results.csv,
OUT_DIR/send.log) against what the server says it received (fault_server's
--log and --verbose trace, smtp_peer's log.jsonl and stored messages parsed
by Python's email package). "Nothing lost" means: every recipient has
exactly one row in results.csv, or none and stays pending for a resume, as
docs/reports.md says.

Three cases found edm bugs when they were written (reply timeouts re-armed
by every byte; a handshake closed after STARTTLS taken for a network
error; no log line for an opportunistic session left in plaintext); they
are fixed, and the cases say what the fix guarantees.

The campaign helpers (Campaign, results.csv reading, fault_server log
parsing) are test_send.py's, imported from it: test_send takes the same
EDM and FAULT_SERVER arguments from sys.argv when imported.
"""
import csv
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
import test_send  # noqa: E402  (reads EDM and FAULT_SERVER from sys.argv[1:3])
from test_send import (SMTP_BASE, Campaign, SendCase, emails, fault_lines,  # noqa: E402
                       fault_log, parse, wait_for)

EDM, FAULT = test_send.EDM, test_send.FAULT
EX_TEMPFAIL, EX_CONFIG = test_send.EX_TEMPFAIL, test_send.EX_CONFIG

# The longest retry interval of SMTP_BASE with its +20 % jitter: edm may
# decide a recipient's fate up to this long after retry_for ran out.
RETRY_MAX_S = 2 * 1.2
assert SMTP_BASE["retry_max_interval"] == "2s"
# Scheduling, process start and (ASan) slowness on a shared 2-core machine.
SLACK_S = 4.0

KV = re.compile(r'([A-Za-z_][\w-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def send_log(c):
    """OUT_DIR/send.log as a list of {key: value} dicts, quotes removed."""
    out = []
    try:
        with open(os.path.join(c.out, "send.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                d = {k: v[1:-1] if v.startswith('"') else v for k, v in KV.findall(line)}
                d["_line"] = line
                out.append(d)
    except FileNotFoundError:
        pass
    return out


def log_events(c, event):
    return [d for d in send_log(c) if d.get("event") == event]


def journal_finals(c):
    """The F (final outcome) records of OUT_DIR/journal."""
    try:
        with open(os.path.join(c.out, "journal"), encoding="utf-8", errors="replace") as f:
            return [x for x in f if x.startswith("F ")]
    except FileNotFoundError:
        return []


# fault_server --verbose: "fault_server: conn=N < COMMAND LINE"
FS_TRACE_IN = re.compile(r"^fault_server: conn=\d+ < (\S*)", re.M)


def fault_commands(fs):
    """The command verbs fault_server (run with --verbose) received, in order."""
    return [v.upper() for v in FS_TRACE_IN.findall(fs.proc.stderr())]


# smtp_peer --verbose (aiosmtpd's mail.log): "('127.0.0.1', 5) >> b'mail FROM:<..>'"
PEER_TRACE_IN = re.compile(r">> b['\"](\w*)", re.M)


def peer_commands(peer):
    return [v.upper() for v in PEER_TRACE_IN.findall(peer.stderr())]


def write_list(c, header, rows):
    """Replace the campaign's list.csv. Every field quoted: Python's csv
    module leaves a field with a lone CR unquoted when the line terminator
    is LF, and an unquoted CR ends a record (RFC 4180)."""
    with open(c.path("list.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
        w.writerow(header)
        w.writerows(rows)


class FaultCase(SendCase):
    def fault(self, *args, verbose=False, maildir=False):
        """A fault_server context manager with a --log (and --maildir) in a
        temp dir; returns (cm, log path, maildir path or None)."""
        tmp = tempfile.mkdtemp(prefix="edm-faults-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log = os.path.join(tmp, "log")
        opts = ["--verbose" if verbose else "--quiet", "--log", log]
        md = None
        if maildir:
            md = os.path.join(tmp, "maildir")
            opts += ["--maildir", md]
        return peers.fault_server(FAULT, *opts, *args), log, md

    def timed_run(self, c, *args, **kw):
        t0 = time.monotonic()
        p = c.run(*args, **kw)
        return p, time.monotonic() - t0

    def run_rss(self, c, timeout):
        """Run edm send; return (exit status, its peak RSS in KiB, seconds).
        os.wait4 gives this one child's rusage (RUSAGE_CHILDREN would mix
        in the servers)."""
        t0 = time.monotonic()
        p = subprocess.Popen(c.argv([]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() - t0 > timeout:
                p.kill()
                os.wait4(p.pid, 0)
                p.returncode = -9
                self.fail(f"edm send did not end within {timeout:g} s")
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        return p.returncode, ru.ru_maxrss, time.monotonic() - t0

    def assert_final_once(self, c, rcpts):
        """Every recipient has exactly one row, nobody else has one."""
        rows = c.by_email()
        self.assertEqual(sorted(rows), sorted(rcpts))
        self.assertEqual(len(journal_finals(c)), len(rcpts))
        return rows

    def assert_pending(self, c, rcpts):
        """No recipient has a final outcome: all wait for a resume."""
        rows = c.results()
        self.assertEqual([r for r in rows if r["email"] in rcpts], [],
                         "these recipients must stay pending")
        self.assertEqual(journal_finals(c), [])

    def assert_expired(self, row, reply_re):
        self.assertEqual((row["status"], row["category"]), ("expired", "message-expired"), row)
        self.assertEqual(row["code"], "", row)
        self.assertRegex(row["reply"], reply_re)


# ---------------------------------------------------------------------------
class TestReplyFaults(FaultCase):
    """Replies cut into bytes, too long, never ending; 421 inside a batch."""

    def test_split_bytes_multiline_verdicts(self):
        """Multi-line 550 and 452 RCPT replies written one byte per TCP
        segment (1 ms apart): reassembled into the exact reply text, the
        550 bounces at once, the 452 is retried until retry_for (3 s) runs
        out, the others are delivered once. (test_send.py's split case has
        only single-line 2xx verdicts.)"""
        rej = ("550-5.1.1 The email account that you tried to reach does not exist.\\n"
               "550 5.1.1 Please try double-checking the recipient's email address")
        full = ("452-4.2.2 The email account that you tried to reach is over quota.\\n"
                "452 4.2.2 Please direct the recipient to the help page")
        ok = ["ok1@a.example", "ok2@b.example", "ok3@a.example"]
        rcpts = ok + ["nouser@a.example", "full@b.example"]
        cm, log, _ = self.fault("--split-bytes", "--split-delay-ms", "1", "--pipelining",
                                "--rcpt-reply", "nouser=" + rej, "--rcpt-reply", "full=" + full)
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"retry_for": "3s"})
            p, took = self.timed_run(c, timeout=60)
        rows = self.assert_final_once(c, rcpts)
        for e in ok:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "1")
        r = rows["nouser@a.example"]
        self.assertEqual((r["status"], r["code"], r["enhanced"], r["category"], r["attempts"]),
                         ("bounced", "550", "5.1.1", "bad-mailbox", "1"), r)
        self.assertEqual(r["reply"], "The email account that you tried to reach does not "
                                     "exist. Please try double-checking the recipient's "
                                     "email address")
        r = rows["full@b.example"]
        self.assertEqual((r["status"], r["category"]), ("expired", "message-expired"), r)
        self.assertIn("over quota. Please direct the recipient to the help page", r["reply"])
        self.assertGreaterEqual(int(r["attempts"]), 2, r)
        self.assertLess(took, 3 + RETRY_MAX_S + SLACK_S + 3)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in ok}))
        rej_lines = Counter(x.split()[1].strip("<>") for x in fault_lines(log, "rcpt-rejected"))
        self.assertEqual(rej_lines, Counter({"nouser@a.example": 1,
                                             "full@b.example": int(r["attempts"])}))
        self.assertEqual(fault_lines(log, "sync-error"), [])
        self.assertIn("delivered 3, bounced 1, expired 1", p.stdout)

    def test_huge_reply_line(self):
        """EHLO answered by one 1 MiB line: a protocol error once the line
        passes 4096 octets (engine/smtp_reply.h), the connection is dropped
        before a transaction (connect-failed, category protocol-errors, the
        host dead for dead_host_for), retried, and the recipients expire
        after retry_for (3 s) with the reason; attempts 0 (no transaction
        was tried). Peak memory stays that of a normal run: the line is
        never buffered."""
        rcpts = ["a@a.example", "b@a.example"]
        smtp = {"retry_for": "3s"}
        with self.fault()[0] as fs:
            base = Campaign(self, rcpts, port=fs.port, smtp=smtp)
            rc, base_rss, _ = self.run_rss(base, 60)
            self.assertEqual(rc, 0)
        cm, log, _ = self.fault("--huge-line", "1048576")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp=smtp)
            rc, rss, took = self.run_rss(c, 60)
        self.assertEqual(rc, 0, "every recipient has a final outcome: exit 0")
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_expired(rows[e], r"protocol error: reply line over 4096")
            self.assertEqual(rows[e]["attempts"], "0", rows[e])
        self.assertLess(took, 3 + RETRY_MAX_S + SLACK_S)
        failed = log_events(c, "connect-failed")
        self.assertGreaterEqual(len(failed), 2, "not retried")
        for ev in failed:
            self.assertEqual(ev["category"], "protocol-errors", ev["_line"])
            self.assertIn(f":{fs.port}", ev["host"])
        self.assertEqual(fault_log(log), Counter())
        # 1 MiB buffered even once would show; 1 MiB is the bound
        self.assertLess(rss - base_rss, 1024,
                        f"peak RSS {rss} KiB against {base_rss} KiB for a normal run")
        sys.stderr.write(f"[huge line: peak RSS {rss} KiB, normal run {base_rss} KiB] ")

    # The reply timeouts are deadlines for the whole reply: bytes that do
    # not complete it do not re-arm the timer (smtp_session_wait_seq).
    def test_never_ending_reply(self):
        """A multi-line EHLO reply that never ends (a line every 100 ms) is
        cut by timeout_ehlo (2 s), whatever trickles in meanwhile; the
        recipients expire after retry_for (3 s)."""
        rcpts = ["a@a.example", "b@a.example"]
        cm, log, _ = self.fault("--never-end")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port,
                         smtp={"retry_for": "3s", "timeout_ehlo": "2s"})
            bound = 3 + 2 + RETRY_MAX_S + SLACK_S
            p, took = self.timed_run(c, timeout=bound)
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_expired(rows[e], r"timeout|protocol error")
        for ev in log_events(c, "connect-failed"):
            self.assertIn(ev["category"], ("no-answer-from-host", "protocol-errors"),
                          ev["_line"])
        self.assertEqual(fault_log(log), Counter())

    def test_421_mid_pipelined_batch(self):
        """--421-after 1 with PIPELINING: each connection takes one message,
        then the next MAIL/RCPT/DATA batch, written in one piece, gets a 421
        to its MAIL and the connection closes with RCPT and DATA unanswered.
        Every recipient is delivered in the end, exactly once; none is
        taken for delivered or bounced from an unanswered command."""
        rcpts = emails(5, ["a.example", "b.example"])
        cm, log, _ = self.fault("--pipelining", "--421-after", "1", "--delay-ms", "20")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port,
                         domain={"connections": "2", "messages_per_connection": "10"})
            p, took = self.timed_run(c, timeout=90)
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        # one message per connection: the 421 cut every connection
        conns = Counter(re.search(r" conn=(\d+)", x).group(1) for x in fault_lines(log, "msg"))
        self.assertEqual([n for n in conns.values() if n > 1], [])
        self.assertEqual(fault_lines(log, "sync-error"), [])
        # a recipient whose batch met the 421 was deferred and tried again
        self.assertGreater(max(int(r["attempts"]) for r in rows.values()), 1,
                           "no batch was cut by the 421")
        for ev in log_events(c, "deferred"):
            self.assertEqual(ev["code"], "421", ev["_line"])
        self.assertIn("delivered 5", p.stdout)


# ---------------------------------------------------------------------------
FS_TRACE = re.compile(r"^fault_server: conn=\d+ (read \d+ bytes|< \S+)", re.M)


def staged_reads(fs):
    """How many of fault_server's reads (--verbose) held the end of a
    message followed by the next MAIL: the client wrote the next
    transaction behind the final dot (pipeline_messages)."""
    n, seen_content = 0, False
    for what in FS_TRACE.findall(fs.proc.stderr()):
        if what.startswith("read "):
            seen_content = False
        elif what == "< (message":
            seen_content = True
        elif seen_content and what.upper() == "< MAIL":
            n += 1
            seen_content = False
    return n


class TestPipelineMessages(FaultCase):
    """[smtp] pipeline_messages: the next message's MAIL, RCPT and DATA go
    behind the final dot (RFC 2920 3.1), against a server that checks the
    pipelining rules (fault_server's default sync check), and against one
    stricter than the RFC that refuses it (--dot-barrier)."""

    RCPTS = [f"p{i:02d}@a.example" for i in range(12)]
    # one connection, so every message after the first can be staged; the
    # server answers each read 50 ms late, so the next message is rendered
    # long before the dot reply comes back
    SMTP = {"max_connections": "1"}
    DOMAIN = {"connections": "1"}

    def run_case(self, *fs_args, smtp=None):
        cm, log, _ = self.fault("--delay-ms", "50", *fs_args, verbose=True)
        with cm as fs:
            c = Campaign(self, self.RCPTS, port=fs.port, smtp={**self.SMTP, **(smtp or {})},
                         domain=self.DOMAIN)
            p = c.run(timeout=60)
            staged = staged_reads(fs)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.assert_final_once(c, self.RCPTS)
        for e in self.RCPTS:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "1", rows[e])
        self.assertEqual(fault_log(log), Counter({e: 1 for e in self.RCPTS}))
        return c, log, staged

    def test_staged_behind_dot(self):
        """Every message after the first goes behind the previous dot (one
        read holds the end of one message and the next MAIL), the server's
        pipelining check finds nothing wrong, each recipient is delivered
        once with one attempt."""
        c, log, staged = self.run_case()
        self.assertGreaterEqual(staged, len(self.RCPTS) - 2)
        self.assertEqual(fault_lines(log, "sync-error"), [])
        self.assertEqual(log_events(c, "pipeline-refused"), [])

    def slow_render_case(self, rows, message_extra="", bodies=None):
        """rows (tuples or emails) sent over one connection to a server
        that answers at once, so that the next message renders slower than
        the server answers: each message signed with an RSA-4096 key
        (milliseconds per signature), or with bodies = (text, html)
        templates slow to render. Returns (campaign, fault log, staged
        reads)."""
        cm, log, _ = self.fault(verbose=True)
        with cm as fs:
            c = Campaign(self, rows, port=fs.port, smtp=self.SMTP, domain=self.DOMAIN)
            text = c.config_text().replace("[message]\n", "[message]\n" + message_extra, 1)
            if bodies is None:
                subprocess.run([EDM, "dkim", "keygen", "--domain", "acme.example",
                                "--selector", "s1", "--bits", "4096", "--out",
                                c.path("dkim.pem")], check=True, stdout=subprocess.DEVNULL)
                text += "[dkim]\ndomain = acme.example\nselector = s1\nkey = dkim.pem\n"
            else:
                for name, body in zip(("body.txt", "body.html"), bodies):
                    with open(c.path(name), "w", encoding="utf-8") as f:
                        f.write(body)
            c.write_config(text)
            p = c.run(timeout=120)
            staged = staged_reads(fs)
        self.assertEqual(p.returncode, 0, p.stderr)
        return c, log, staged

    def test_body_held_for_slow_render(self):
        """Each body is held until the next message is rendered and leaves
        in one write with its MAIL, RCPT and DATA (without the hold the
        next MAIL waits for the dot reply and nothing is staged); the
        server finds no pipelining error and each recipient is delivered
        once with one attempt."""
        c, log, staged = self.slow_render_case(self.RCPTS)
        rows = self.assert_final_once(c, self.RCPTS)
        for e in self.RCPTS:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "1", rows[e])
        self.assertEqual(fault_log(log), Counter({e: 1 for e in self.RCPTS}))
        self.assertGreaterEqual(staged, len(self.RCPTS) - 2)
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_held_body_goes_when_next_render_fails(self):
        """The last row fails to render (strict variables: its city is empty)
        after a slow text part, so the body before it is held for that
        render: the held body goes alone when the render fails (no later
        render comes to release it; left held, the data-block timeout would
        end the connection and the message go a second time). The row is
        skipped, every other recipient delivered once at the first attempt,
        and the bodies before it went out with the next MAIL."""
        rcpts = self.RCPTS[:6]
        rows = [(e, "Li", "" if e == rcpts[-1] else "Xi'an") for e in rcpts]
        text = "Hi {{first_name}},\n" + "{{first_name}} {{first_name}}\n" * 40000
        c, log, staged = self.slow_render_case(rows, "strict_variables = yes\n",
                                               bodies=(text, "<p>{{city}}</p>\n"))
        res = self.assert_final_once(c, rcpts)
        for e in rcpts[:-1]:
            self.assert_delivered(res[e], e)
            self.assertEqual(res[e]["attempts"], "1", res[e])
        self.assertEqual((res[rcpts[-1]]["status"], res[rcpts[-1]]["category"]),
                         ("skipped", "template"), res[rcpts[-1]])
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts[:-1]}))
        self.assertGreaterEqual(staged, len(rcpts) - 3)
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_off(self):
        """pipeline_messages = no: the next MAIL waits for the dot reply."""
        _, log, staged = self.run_case(smtp={"pipeline_messages": "no"})
        self.assertEqual(staged, 0)
        self.assertEqual(fault_lines(log, "sync-error"), [])

    def test_server_refuses_mail_behind_dot(self):
        """A server that treats the dot as a barrier answers the staged MAIL
        (and its RCPT and DATA) with 503: edm logs pipeline-refused once,
        sends that recipient again at once (no bounce, no extra attempt) and
        stages nothing more to that host."""
        c, log, staged = self.run_case("--dot-barrier")
        self.assertEqual(staged, 1)
        errs = fault_lines(log, "sync-error")
        self.assertTrue(errs and all("cmd=MAIL" in e or "cmd=RCPT" in e or "cmd=DATA" in e
                                     for e in errs), errs)
        self.assertEqual(sum("cmd=MAIL" in e for e in errs), 1, errs)
        ev = log_events(c, "pipeline-refused")
        self.assertEqual(len(ev), 1, ev)
        self.assertRegex(ev[0]["reply"], r"^503 5\.5\.0 ")


# ---------------------------------------------------------------------------
class TestConnectionUse(FaultCase):
    """No handshake edm does not need: in relay mode a session whose domain
    has nothing left is handed to a domain that needs one, and a connection
    opens only with a message token for it."""

    def test_session_moves_between_domains(self):
        """12 recipients over 4 domains, one connection per domain,
        max_connections = 2: every message goes over at most 2 sessions (a
        connection per domain needs 4), each recipient delivered once."""
        rcpts = [f"r{i}@d{i % 4}.example" for i in range(12)]
        cm, log, _ = self.fault("--delay-ms", "20")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"max_connections": "2"},
                         domain={"connections": "1"})
            p = c.run(timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(rows[e], e)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        conns = {re.search(r" conn=(\d+)", x).group(1) for x in fault_lines(log, "msg")}
        self.assertLessEqual(len(conns), 2, conns)


    def test_rate_bound_domain_opens_no_connection_per_message(self):
        """A domain limited to 2 messages/s with 5 connections allowed: a
        connection opens only with a message token for it, so 12 messages
        use 2 connections (the 2-token burst), not one handshake per
        message (each new one found no token and quit: 12 before)."""
        rcpts = [f"r{i}@a.example" for i in range(12)]
        cm, log, _ = self.fault()
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"mode": "relay"},
                         domain={"connections": "5", "rate": "2/s"})
            p = c.run(timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        conns = {re.search(r" conn=(\d+)", x).group(1) for x in fault_lines(log, "msg")}
        self.assertLessEqual(len(conns), 3, conns)


    def test_local_refusals_on_one_connection(self):
        """Messages over the server's SIZE are refused by edm before a byte
        is sent (5.3.4): the session answers the submit at once, inside the
        call (the case a review found freed memory in), for the first
        message of the connection and between others, one connection,
        pipelining across messages on. Each gets one row; the others are
        delivered once."""
        ok = [f"ok{i}@a.example" for i in range(4)]
        big = ["big0@a.example", "big1@a.example"]
        name = "x" * 9000  # in the subject and To: the message passes 10,000 bytes
        rows = [(big[0], name, ""), ok[0], ok[1], (big[1], name, ""), ok[2], ok[3]]
        cm, log, _ = self.fault("--size", "10000")
        with cm as fs:
            c = Campaign(self, rows, port=fs.port, smtp={"max_connections": "1"},
                         domain={"connections": "1"})
            c.run(expect=None, timeout=60)
        rows = self.assert_final_once(c, ok + big)
        for e in ok:
            self.assert_delivered(rows[e], e)
        for e in big:
            self.assertEqual((rows[e]["status"], rows[e]["enhanced"]), ("bounced", "5.3.4"),
                             rows[e])
        self.assertEqual(fault_log(log), Counter({e: 1 for e in ok}))


# ---------------------------------------------------------------------------
class TestColdDeferred(FaultCase):
    """Deferred recipients beyond the in-memory retry heap wait in the spill
    file (EDM_TEST_DEFER_MEM_CAP lowers the 20,000 of a real run to 4)."""

    def test_deferred_overflow_to_disk_and_back(self):
        """30 recipients, every RCPT answered 452: all are deferred, 26 of
        them past the heap's 4 go to disk; each comes back for its retries
        (attempts >= 2) and expires once retry_for (4 s) is over; each
        recipient gets exactly one row, and --no-wait mid-way counts the
        ones on disk as deferred."""
        rcpts = [f"c{i:02d}@a.example" for i in range(30)]
        env = {"EDM_TEST_DEFER_MEM_CAP": "4"}
        cm, log, _ = self.fault("--rcpt-reply", "c=452 4.2.2 mailbox full")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"retry_for": "4s"})
            p = c.run("--no-wait", expect=EX_TEMPFAIL, env=env, timeout=60)
            self.assertIn("30 recipients wait for a retry", p.stderr)
            p = c.run(env=env, timeout=60)
        self.assertTrue(log_events(c, "deferred-spill"))
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            r = rows[e]
            self.assertEqual((r["status"], r["category"]), ("expired", "message-expired"), r)
            self.assertIn("mailbox full", r["reply"])
            self.assertGreaterEqual(int(r["attempts"]), 2, r)
        tries = Counter(x.split()[1].strip("<>") for x in fault_lines(log, "rcpt-rejected"))
        self.assertEqual(sorted(tries), sorted(rcpts))
        self.assertTrue(all(n >= 2 for n in tries.values()), tries)


# ---------------------------------------------------------------------------
class TestDotWindow(FaultCase):
    """RFC 1047: the final dot was sent and its reply never comes."""

    def stalled_send(self, log, fs, rcpts, grace="2s"):
        """Start edm send against a --stall-after-354 server; return the
        Popen once the server holds every message unanswered."""
        c = Campaign(self, rcpts, port=fs.port, smtp={"shutdown_grace": grace})
        p = c.start()
        stalled = wait_for(lambda: len(fault_lines(log, "msg-stalled")) >= len(rcpts), 20)
        self.assertTrue(stalled, "the server never received the messages")
        self.assertIsNone(p.poll())
        return c, p

    def test_stall_after_354_sigterm_grace_then_resume(self):
        """SIGTERM while the server sits on the final dots: edm waits
        shutdown_grace (2 s) for the replies, then closes the connections
        and exits 75; the recipients have no outcome (grace-over counts them
        in_flight), so the resume against a working server sends them
        again: the RFC 1047 duplicate docs/reports.md warns of, with the
        same Message-ID on both copies."""
        rcpts = ["a@a.example", "b@b.example"]
        cm, log, md = self.fault("--stall-after-354", maildir=True)
        with cm as fs:
            c, p = self.stalled_send(log, fs, rcpts, grace="2s")
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                out, err = p.communicate(timeout=2 + SLACK_S)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)  # the documented "stop at once"
                p.communicate(timeout=10)
                self.fail(f"edm send still ran {2 + SLACK_S:g} s after SIGTERM "
                          "with shutdown_grace = 2s")
            took = time.monotonic() - t0
        self.assertEqual(p.returncode, EX_TEMPFAIL, err)
        self.assertGreaterEqual(took, 2 * 0.9, "did not give the messages their grace")
        self.assertIn("resume", err)
        self.assert_pending(c, rcpts)
        grace = log_events(c, "grace-over")
        self.assertEqual(len(grace), 1, send_log(c))
        self.assertEqual(grace[0]["in_flight"], str(len(rcpts)), grace[0]["_line"])
        stalled = Counter(re.search(r"rcpts=<([^>]*)>", x).group(1)
                          for x in fault_lines(log, "msg-stalled"))
        self.assertEqual(stalled, Counter({e: 1 for e in rcpts}))
        self.assertEqual(fault_log(log), Counter())
        first_ids = {}
        for x in fault_lines(log, "msg-stalled"):
            rcpt = re.search(r"rcpts=<([^>]*)>", x).group(1)
            name = re.search(r" file=(\S+)", x).group(1)
            with open(os.path.join(md, "new", name), "rb") as f:
                first_ids[rcpt] = str(parse(f.read())["Message-ID"]).strip("<> ")
        # the resume, against a server that answers (a new relay: --force)
        cm2, log2, _ = self.fault()
        with cm2 as fs2:
            c.smtp["relay"] = f"127.0.0.1:{fs2.port}"
            c.write_config()
            c.run("--force", timeout=60)
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["message_id"], first_ids[e])
        self.assertEqual(fault_log(log2), Counter({e: 1 for e in rcpts}))

    def test_stall_after_354_second_signal(self):
        """A second SIGTERM during the stall stops at once (exit 75, "second
        signal"), without waiting for shutdown_grace (30 s here); nothing is
        recorded for the messages in flight."""
        rcpts = ["a@a.example"]
        cm, log, _ = self.fault("--stall-after-354")
        with cm as fs:
            c, p = self.stalled_send(log, fs, rcpts, grace="30s")
            p.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the first signal handled: finishing in-flight messages
            self.assertIsNone(p.poll())
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=10)
            took = time.monotonic() - t0
        self.assertEqual(p.returncode, EX_TEMPFAIL, err)
        self.assertLess(took, 3, "a second signal must stop at once")
        self.assertIn("second signal", err)
        self.assert_pending(c, rcpts)
        self.assertEqual(len(fault_lines(log, "msg-stalled")), 1)

    def test_drop_after_dot_retried_until_expired(self):
        """The server takes each message and drops the connection before
        answering the dot. edm cannot know it was delivered: a soft failure
        (bad-connection), retried on a new connection each time; the server
        keeps dropping, so after retry_for (4 s) the recipients expire. Every
        attempt edm counts is a copy the server received (msg-dropped)."""
        rcpts = ["a@a.example", "b@b.example"]
        cm, log, _ = self.fault("--drop-after-dot")
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp={"retry_for": "4s"})
            p, took = self.timed_run(c, timeout=60)
        rows = self.assert_final_once(c, rcpts)
        dropped = Counter(re.search(r"rcpts=<([^>]*)>", x).group(1)
                          for x in fault_lines(log, "msg-dropped"))
        deferred = Counter(ev["row"] for ev in log_events(c, "deferred"))
        for e in rcpts:
            r = rows[e]
            self.assert_expired(r, r"^retries ran out after (\d+) attempts; last: connection "
                                   r"closed by server after end of data$")
            n = int(r["attempts"])
            self.assertEqual(r["reply"].split()[4], str(n))
            self.assertGreaterEqual(n, 2, r)
            self.assertEqual(dropped[e], n, f"{e}: {n} attempts, {dropped[e]} copies received")
            self.assertEqual(deferred[r["row"]], n - 1)
        for ev in log_events(c, "deferred"):
            self.assertEqual((ev["code"], ev["category"]), ("0", "bad-connection"), ev["_line"])
        self.assertEqual(fault_log(log), Counter())
        self.assertLess(took, 4 + RETRY_MAX_S + SLACK_S)
        self.assertIn("expired 2", p.stdout)


# ---------------------------------------------------------------------------
class TestStartTLS(FaultCase):
    """Handshake failure, 454, stripping, injected plaintext (RFC 3207,
    CVE-2011-0411, "NO STARTTLS")."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="edm-faults-certs-")
        cls.certs = peers.gen_test_certs(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def tls(self, mode, **kw):
        d = {"tls": mode, "ca_file": self.certs.ca}
        d.update(kw)
        return d

    def assert_stopped_for_tls(self, c, p, port):
        """tls = starttls and no TLS: exit 78, a bad-configuration stop
        naming the relay, every recipient pending."""
        self.assertIn(f"127.0.0.1[127.0.0.1]:{port}", p.stderr)
        self.assertIn("bad-configuration", p.stderr)
        failed = log_events(c, "connect-failed")
        self.assertGreaterEqual(len(failed), 1)
        self.assertTrue(all(ev["category"] == "bad-configuration" for ev in failed), failed)
        self.assertGreaterEqual(len(log_events(c, "campaign-stopped")), 1)
        self.assert_pending(c, [r[0] for r in c.rows])

    def broken_tls_run(self, **smtp):
        """edm send with tls = starttls against a peer that offers STARTTLS
        but can only do TLS 1.1 (its handshake fails; Python's server then
        closes without an alert). Returns (campaign, process, peer, commands
        the peer saw)."""
        rcpts = emails(3, ["a.example"])
        smtp = dict(self.tls("starttls"), **smtp)
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--broken-tls", "--verbose") as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=smtp)
            p = c.run(expect=None, timeout=3 + RETRY_MAX_S + SLACK_S + 5)
            time.sleep(0.2)
            cmds = peer_commands(peer)
            self.assertEqual(peer.log(), [])
        self.assertIn("STARTTLS handshake failed", peer.stderr())
        return c, p, peer, cmds

    def test_handshake_failure_starttls_never_plaintext(self):
        """tls = starttls and the handshake fails: the connection is never
        used in plaintext (no MAIL, RCPT, DATA or AUTH reaches the server,
        nothing is delivered), and no recipient is lost: each is pending or
        has one expired row. (What edm should do instead of retrying is the
        next test.)"""
        c, p, peer, cmds = self.broken_tls_run(retry_for="3s")
        self.assertIn(p.returncode, (0, EX_CONFIG), p.stderr)
        self.assertGreaterEqual(cmds.count("STARTTLS"), 1, cmds)
        self.assertEqual([x for x in cmds if x in ("MAIL", "RCPT", "DATA", "AUTH")], [],
                         f"commands sent in plaintext: {cmds}")
        rows = c.by_email()
        self.assertLessEqual(set(rows), {r[0] for r in c.rows})
        for r in rows.values():
            self.assertEqual((r["status"], r["category"], r["tls"]),
                             ("expired", "message-expired", ""), r)
            self.assertIn("TLS handshake", r["reply"])

    # A server that closes during the handshake after STARTTLS (no alert)
    # is a TLS failure, as for implicit TLS (engine/conn.c on_read).
    def test_handshake_failure_starttls_stops_campaign(self):
        """tls = starttls, the handshake fails: a sender-side failure, so the
        campaign stops (78, bad-configuration) with the recipients pending;
        fixed (a server with working TLS), the resume delivers each once."""
        # (retry_for 3 s only bounds the run while the bug is there)
        c, p, peer, cmds = self.broken_tls_run(retry_for="3s")
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assert_stopped_for_tls(c, p, peer.port)
        rcpts = [r[0] for r in c.rows]
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--require-starttls") as peer2:
            c.smtp["relay"] = f"127.0.0.1:{peer2.port}"
            c.write_config()
            c.run("--force", timeout=60)
            log = peer2.log()
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertRegex(rows[e]["tls"], r"^TLSv1\.[23]$")
        self.assertEqual(Counter(r for rec in log for r in rec["rcpts"]),
                         Counter({e: 1 for e in rcpts}))

    def starttls_454(self, mode, **kw):
        """A run against fault_server --starttls-advertise (STARTTLS offered,
        then "454 4.7.0 TLS not available") or, with strip=True, a server
        that does not offer it (a man in the middle stripped it)."""
        strip = kw.pop("strip", False)
        rcpts = emails(3, ["a.example", "b.example"])
        args = [] if strip else ["--starttls-advertise"]
        cm, log, _ = self.fault(*args, verbose=True)
        with cm as fs:
            c = Campaign(self, rcpts, port=fs.port, smtp=self.tls(mode, **kw))
            p = c.run(expect=None, timeout=60)
            time.sleep(0.2)
            cmds = fault_commands(fs)
        return c, p, fs, log, cmds

    def test_454_starttls_required_no_plaintext(self):
        """tls = starttls and STARTTLS answered 454: exit 78, no MAIL sent."""
        c, p, fs, log, cmds = self.starttls_454("starttls")
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("STARTTLS", cmds)
        self.assertEqual([x for x in cmds if x in ("MAIL", "RCPT", "DATA", "AUTH")], [],
                         f"commands sent in plaintext: {cmds}")
        self.assertIn("TLS not available", p.stderr)
        self.assert_stopped_for_tls(c, p, fs.port)
        self.assertEqual(fault_log(log), Counter())

    def test_stripped_starttls_required_no_plaintext(self):
        """tls = starttls and no STARTTLS in the EHLO reply: exit 78 and not
        one MAIL command (test_send.py checks that no message was stored;
        this checks the commands the server saw)."""
        c, p, fs, log, cmds = self.starttls_454("starttls", strip=True)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertNotIn("STARTTLS", cmds)
        self.assertEqual([x for x in cmds if x in ("MAIL", "RCPT", "DATA", "AUTH")], [],
                         f"commands sent in plaintext: {cmds}")
        self.assert_stopped_for_tls(c, p, fs.port)
        self.assertEqual(fault_log(log), Counter())

    def check_opportunistic_plaintext(self, c, p, log, cmds):
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.assert_final_once(c, [r[0] for r in c.rows])
        for e, r in rows.items():
            self.assert_delivered(r, e)
            self.assertEqual(r["tls"], "none", r)
        self.assertEqual(fault_log(log), Counter({r[0]: 1 for r in c.rows}))
        self.assertIn("MAIL", cmds)

    def test_454_opportunistic_plaintext(self):
        """tls = opportunistic: STARTTLS answered 454, the session goes on in
        plaintext (RFC 7435); results.csv says tls none."""
        c, p, fs, log, cmds = self.starttls_454("opportunistic", tls_verify="no")
        self.check_opportunistic_plaintext(c, p, log, cmds)
        self.assertIn("STARTTLS", cmds)
        self.assertLess(cmds.index("STARTTLS"), cmds.index("MAIL"))

    def test_stripped_opportunistic_plaintext(self):
        c, p, fs, log, cmds = self.starttls_454("opportunistic", tls_verify="no", strip=True)
        self.check_opportunistic_plaintext(c, p, log, cmds)
        self.assertNotIn("STARTTLS", cmds)

    # A session that goes on in plaintext under tls = opportunistic logs a
    # tls-plaintext line with the host and why (the scheduler's cb_ready).
    def test_opportunistic_plaintext_is_logged(self):
        """send.log has a key=value line naming the host whenever an
        opportunistic session goes on in plaintext (454 or not offered)."""
        for strip in (False, True):
            c, p, fs, log, cmds = self.starttls_454("opportunistic", tls_verify="no",
                                                    strip=strip)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = [ev["_line"] for ev in send_log(c)
                     if re.search(r"tls|plain", ev.get("event", ""), re.I)
                     and f":{fs.port}" in ev["_line"]]
            self.assertTrue(lines, f"strip={strip}: no line about the plaintext session in "
                                   "send.log")

    def test_plaintext_injected_after_220_is_discarded(self):
        """CVE-2011-0411: replies a man in the middle writes right after the
        "220 Ready to start TLS", before the handshake, must be thrown away.
        Were they kept, they would answer the commands sent inside TLS (the
        550 would bounce someone, the 250s would shift every later reply);
        were they fed to the TLS engine, the handshake would fail. edm
        delivers everything over verified TLS, on the connection that got
        the injection, and no injected text shows anywhere."""
        rcpts = emails(3, ["a.example"])
        inject = ("250 injected-1\\n250-injected-2\\n250 PIPELINING\\n"
                  "550 5.1.1 injected-3 user unknown\\n354 injected-4")
        with peers.smtp_peer("--starttls", self.certs.server_cert, self.certs.server_key,
                             "--require-starttls", "--inject-after-starttls", inject) as peer:
            c = Campaign(self, rcpts, port=peer.port, smtp=self.tls("starttls"),
                         domain={"connections": "1"})
            c.run(timeout=60)
            log = peer.log()
            injections = re.findall(r"conn=(\d+) injected (\d+) bytes", peer.stderr())
        self.assertTrue(injections, "the peer injected nothing")
        rows = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(rows[e], e)
            self.assertEqual(rows[e]["attempts"], "1")
            self.assertRegex(rows[e]["tls"], r"^TLSv1\.[23]$")
            self.assertNotIn("injected", rows[e]["reply"])
        self.assertEqual(Counter(r for rec in log for r in rec["rcpts"]),
                         Counter({e: 1 for e in rcpts}))
        self.assertTrue(all(rec["tls"] for rec in log), log)
        # every message went over a connection that got the injection
        self.assertLessEqual({str(rec["conn"]) for rec in log}, {n for n, _ in injections})
        with open(os.path.join(c.out, "send.log"), encoding="utf-8") as f:
            self.assertNotIn("injected", f.read())
        with open(os.path.join(c.out, "results.csv"), encoding="utf-8") as f:
            self.assertNotIn("injected", f.read())


# ---------------------------------------------------------------------------
class TestInjection(FaultCase):
    """SMTP smuggling through the body, header injection through every
    templated header: list data must never become protocol or headers."""

    def test_smtp_smuggling_lenient_eod(self):
        """CSV values and template text holding <LF>.<CR><LF>, <CR>.<CR>,
        <LF>.<LF>, <CR><LF>.<CR><LF> and bare CR/LF, followed by SMTP
        commands, against a server that also ends DATA at a bare LF
        (--lenient-eod, as servers open to CVE-2023-51764). Exactly one
        message per recipient, every line end CRLF (bare-lf=0 bare-cr=0),
        no smuggled command executed or even seen (no bad-command lines),
        and the text arrives whole as content."""
        rows = [
            ("ann@a.example", "Ann\n.\r\nMAIL FROM:<csv1@evil.test>\r\n"
                              "RCPT TO:<victim1@evil.test>\r\nDATA\r\n",
             "Paris\r.\rMAIL FROM:<csv2@evil.test>\r"),
            ("bob@b.example", "Bob\r\n.\r\nRSET\r\nMAIL FROM:<csv3@evil.test>\r\n",
             "Lyon\n.\nQUIT\n"),
            ("cy@a.example", "Cy\r\n..\r\n.\r\n", "\r\n.\r\nNOOP csv4\r\n"),
            ("di@b.example", "", ""),
        ]
        rcpts = [r[0] for r in rows]
        cm, log, md = self.fault("--lenient-eod", "--pipelining", maildir=True)
        with cm as fs:
            c = Campaign(self, rows, port=fs.port)
            write_list(c, ["email", "first_name", "city"], rows)
            with open(c.path("body.txt"), "wb") as f:
                f.write(b"Hi {{first_name|friend}},\n.\r\nMAIL FROM:<tmpl1@evil.test>\r\n"
                        b"\r.\rRCPT TO:<tmpl2@evil.test>\r\n.\nDATA\n"
                        b"in {{city|your city}}\r\n.\r\nQUIT\r\nend\n")
            c.write_config()
            c.run(timeout=60)
        res = self.assert_final_once(c, rcpts)
        for e in rcpts:
            self.assert_delivered(res[e], e)
        self.assertEqual(fault_log(log), Counter({e: 1 for e in rcpts}))
        msgs = fault_lines(log, "msg")
        self.assertEqual(len(msgs), len(rcpts))
        for x in msgs:
            self.assertRegex(x, r"^msg from=<news@acme\.example> rcpts=<[^>,]*> ")
            self.assertIn(" bare-lf=0 bare-cr=0 ", x)
        for word in ("bad-command", "sync-error", "rcpt-rejected", "msg-rejected"):
            self.assertEqual(fault_lines(log, word), [], word)
        with open(log, encoding="ascii", errors="replace") as f:
            self.assertNotIn("evil.test", f.read())
        for x in msgs:
            rcpt = re.search(r"rcpts=<([^>]*)>", x).group(1)
            with open(os.path.join(md, "new", re.search(r" file=(\S+)", x).group(1)),
                      "rb") as f:
                raw = f.read()
            self.assertIsNone(re.search(rb"\r(?!\n)|(?<!\r)\n", raw), "a bare CR or LF")
            text = parse(raw).get_body(("plain",)).get_content()
            self.assertIn("MAIL FROM:<tmpl1@evil.test>", text, rcpt)
            self.assertIn("RCPT TO:<tmpl2@evil.test>", text, rcpt)
            self.assertTrue(text.rstrip().endswith("end"), (rcpt, text[-80:]))
            first, city = {r[0]: r[1:] for r in rows}[rcpt]
            for part in (first + city).replace("\r", "\n").split("\n"):
                if part.strip(". "):
                    self.assertIn(part, text, rcpt)

    def test_header_injection(self):
        """CR, LF, CRLF, a blank line, a fold and other control characters,
        each followed by a header, in every templated header (From's name,
        To's name, Subject, an extra header, Feedback-ID, the unsubscribe
        URL) and in the address itself. Each stored message has the same
        header names as a clean row's, no Bcc or other injected header, its
        one real recipient in To and in the envelope; the address with a
        CRLF is skipped (syntax) and no RCPT for it ever reaches the server."""
        payloads = ["\r\nBcc: {t}@evil.test", "\nBcc: {t}@evil.test", "\rBcc: {t}@evil.test",
                    "\r\n\r\nInjected-Body: {t}", "\r\n X-Folded: {t}",
                    "\x0bBcc: {t}\x0c@evil.test\x1b", "张伟\r\nBcc: {t}@evil.test"]
        cols = ["email", "first_name", "city", "sender", "subj", "tag", "fbid", "unsub"]
        data = [["clean@a.example", "Ann", "Paris", "Acme", "Spring", "t0", "f0", "u0"]]
        for i, pl in enumerate(payloads, 1):
            v = "v" + pl.format(t=f"inj{i}")
            data.append([f"r{i}@{'ab'[i % 2]}.example"] + [v] * (len(cols) - 1))
        bad_addr = "victim@a.example\r\nRCPT TO:<evil@evil.test>"
        data.append([bad_addr, "x", "x", "x", "x", "x", "x", "x"])
        real = [r[0] for r in data[:-1]]
        cm, log, md = self.fault(maildir=True)
        with cm as fs:
            c = Campaign(self, [], port=fs.port)
            write_list(c, cols, data)
            t = c.config_text()
            head, rest = t.split("[message]\n", 1)
            tail = rest.split("[smtp]\n", 1)[1]
            c.write_config(head + "[message]\n"
                           'from = "{{sender}} <news@acme.example>"\n'
                           "to_name = {{first_name}}\n"
                           "subject = {{subj}}\n"
                           "text = body.txt\nhtml = body.html\n"
                           "headers = X-Tag: {{tag}}\n"
                           "  X-City: {{{city}}}\n"
                           "feedback_id = {{fbid}}:acme:edm\n"
                           "unsubscribe_url = https://u.acme.example/u/{{{unsub}}}\n"
                           "[smtp]\n" + tail)
            c.run(timeout=60)
        rows = c.results()
        self.assertEqual(len(rows), len(data))
        skipped = [r for r in rows if r["status"] == "skipped"]
        self.assertEqual(len(skipped), 1, rows)
        self.assertEqual((skipped[0]["category"], skipped[0]["row"]), ("syntax", str(len(data))))
        self.assertNotIn("\r", skipped[0]["email"] + skipped[0]["reply"])
        res = {r["email"]: r for r in rows if r["status"] != "skipped"}
        self.assertEqual(sorted(res), sorted(real))
        for e in real:
            self.assert_delivered(res[e], e)
        # the envelope: one message per real recipient, itself alone
        self.assertEqual(fault_log(log), Counter({e: 1 for e in real}))
        for word in ("bad-command", "sync-error", "rcpt-rejected"):
            self.assertEqual(fault_lines(log, word), [], word)
        with open(log, encoding="ascii", errors="replace") as f:
            self.assertNotIn("evil", f.read())
        msgs = {}
        for x in fault_lines(log, "msg"):
            rcpt = re.search(r"rcpts=<([^>]*)>", x).group(1)
            with open(os.path.join(md, "new", re.search(r" file=(\S+)", x).group(1)),
                      "rb") as f:
                msgs[rcpt] = f.read()
        clean = parse(msgs["clean@a.example"])
        names = sorted(k.lower() for k in clean.keys())
        for h in ("x-tag", "x-city", "feedback-id", "list-unsubscribe", "to", "from", "subject"):
            self.assertIn(h, names)
        for i, e in enumerate(real[1:], 1):
            raw = msgs[e]
            m = parse(raw)
            self.assertEqual(m.defects, [], e)
            self.assertEqual(sorted(k.lower() for k in m.keys()), names, e)
            hdr, _, _ = raw.partition(b"\r\n\r\n")
            self.assertIsNone(re.search(rb"(?im)^(bcc|injected-body|x-folded):", hdr), e)
            self.assertNotIn(b"\x0b", hdr)
            self.assertNotIn(b"\x1b", hdr)
            self.assertEqual([a.addr_spec for a in m["To"].addresses], [e])
            self.assertEqual([a.addr_spec for a in m["From"].addresses], ["news@acme.example"])
            # the text is kept, on one line, as the header's value
            self.assertIn(f"inj{i}", str(m["Subject"]), e)
            self.assertIn(f"inj{i}", str(m["X-Tag"]), e)
            for h in ("Subject", "X-Tag", "X-City", "Feedback-ID", "List-Unsubscribe", "To",
                      "From"):
                self.assertNotRegex(str(m[h]), r"[\r\n]", (e, h))


if __name__ == "__main__":
    for prog in (EDM, FAULT):
        if not os.access(prog, os.X_OK):
            sys.exit(f"{prog}: not an executable (usage: test_faults.py EDM FAULT_SERVER)")
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
