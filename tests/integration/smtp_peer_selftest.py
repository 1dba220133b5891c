#!/usr/bin/python3
"""Self-test of smtp_peer.py and peers.py, driven by Python's smtplib.

Checks what edm's send tests rely on: scripted RCPT/MAIL/dot replies
(421 closes), greylist_once across connections, a drop at the final dot,
max_messages_per_conn, exact stored bytes and log.jsonl, STARTTLS and
implicit TLS with a CA the client trusts, plaintext injected after the 220
to STARTTLS (--inject-after-starttls, read back over a raw socket), AUTH PLAIN/LOGIN success and
failure, tens of concurrent connections, SIGTERM / --max-seconds exits,
script validation; and peers.py's dnsmasq (asked with its own tiny DNS
client), smtp-sink (skipped if Postfix is missing) and fault_server
(port-line parsing, exercised with stand-in commands).

Certificates come from tests/gen_test_certs.sh when it exists, else from
the openssl CLI here. Everything is on 127.0.0.1; runs in well under 60 s.

usage: smtp_peer_selftest.py [unittest options]; exit status 0 = all passed.
"""
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

CERTS = None


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


def openssl_certs(d):
    """The same files as tests/gen_test_certs.sh, from the openssl CLI (EC keys: fast)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
            "-days", "2", "-subj", "/CN=edm selftest CA")
    for name, cn, san in (("server", "mx.test", "DNS:mx.test,DNS:localhost,IP:127.0.0.1"),
                          ("wrong", "other.test", "DNS:other.test")):
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("req", "-new", *ec, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
                "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
                "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")
    return peers.Certs(d, *(os.path.join(d, n) for n in
                            ("ca.pem", "server.pem", "server.key", "wrong.pem", "wrong.key")))


def client_ctx(cafile):
    """A client context that trusts only CAFILE and checks the host name."""
    return ssl.create_default_context(cafile=cafile)


def smtp(p):
    s = smtplib.SMTP(p.host, p.port, timeout=10)
    s.ehlo("client.test")
    return s


def send(s, rcpt, body, sender="news@acme.test", mail_options=()):
    """MAIL, one RCPT, DATA on an open connection; assert 250 at every step."""
    assert s.mail(sender, list(mail_options))[0] == 250
    code, msg = s.rcpt(rcpt)
    assert code == 250, (code, msg)
    code, msg = s.data(body)
    assert code == 250, (code, msg)


def msg(n):
    return f"From: news@acme.test\r\nSubject: m{n}\r\n\r\nbody {n}\r\n".encode()


def assert_closed(tc, s):
    """The server has closed the connection: the next command cannot be answered."""
    with tc.assertRaises((smtplib.SMTPServerDisconnected, ConnectionError)):
        s.noop()


class SmtpPeerTest(unittest.TestCase):

    def test_greeting_and_ehlo(self):
        with peers.smtp_peer() as p:
            s = smtplib.SMTP(timeout=10)
            code, banner = s.connect(p.host, p.port)
            self.assertEqual(code, 220)
            self.assertTrue(banner.startswith(b"smtp-peer.test "), banner)
            code, _ = s.ehlo("client.test")
            self.assertEqual(code, 250)
            for ext in ("size", "8bitmime", "smtputf8"):
                self.assertTrue(s.has_extn(ext), ext)
            self.assertEqual(s.esmtp_features["size"], "33554432")
            for ext in ("pipelining", "starttls", "auth", "enhancedstatuscodes"):
                self.assertFalse(s.has_extn(ext), ext)
            self.assertEqual(s.quit()[0], 221)

    def test_rcpt_and_mail_rules(self):
        script = {
            "rcpt": {
                "unknown": "550 5.1.1 <addr>: user unknown",
                "gmail": "550-5.1.1 The email account that you tried to reach does not exist.\n"
                         "550 5.1.1 Please try double-checking the recipient's email address",
                "busy": "421 4.7.0 [TSS04] Messages temporarily deferred",
            },
            "mail": {"spoof": "553 5.7.2 [TSS09] sender refused"},
        }
        with peers.smtp_peer(script=script) as p:
            s = smtp(p)
            self.assertEqual(s.mail("spoof@evil.test"), (553, b"5.7.2 [TSS09] sender refused"))
            self.assertEqual(s.mail("news@acme.test")[0], 250)
            self.assertEqual(s.rcpt("bob@unknown.test"),
                             (550, b"5.1.1 <bob@unknown.test>: user unknown"))
            code, text = s.rcpt("x@gmail.test")
            self.assertEqual(code, 550)
            self.assertEqual(text, b"5.1.1 The email account that you tried to reach does not "
                                   b"exist.\n5.1.1 Please try double-checking the recipient's "
                                   b"email address")
            self.assertEqual(s.rcpt("alice@acme.test")[0], 250)
            self.assertEqual(s.data(msg(1))[0], 250)
            # 421: the reply, then the connection is gone.
            self.assertEqual(s.mail("news@acme.test")[0], 250)
            self.assertEqual(s.rcpt("a@busy.test"),
                             (421, b"4.7.0 [TSS04] Messages temporarily deferred"))
            assert_closed(self, s)
            recs = p.log()
            self.assertEqual(len(recs), 1)
            self.assertEqual(recs[0]["rcpts"], ["alice@acme.test"])

    def test_mail_rule_for_every_sender(self):
        with peers.smtp_peer(script={"mail": "421 4.7.650 rate limited due to IP reputation"}) as p:
            s = smtp(p)
            self.assertEqual(s.mail("a@acme.test")[0], 421)
            assert_closed(self, s)

    def test_greylist_once(self):
        with peers.smtp_peer(script={"greylist_once": ["grey"]}) as p:
            s = smtp(p)
            self.assertEqual(s.mail("news@acme.test")[0], 250)
            self.assertEqual(s.rcpt("bob@grey.test"),
                             (450, b"4.2.0 Greylisted, try again later"))
            self.assertEqual(s.rcpt("carol@acme.test")[0], 250)
            self.assertEqual(s.data(msg(1))[0], 250)
            s.quit()
            # A later attempt, on a new connection, passes; other greylisted
            # addresses are still greylisted once each.
            s = smtp(p)
            self.assertEqual(s.mail("news@acme.test")[0], 250)
            self.assertEqual(s.rcpt("bob@grey.test")[0], 250)
            self.assertEqual(s.rcpt("dave@grey.test")[0], 450)
            self.assertEqual(s.rcpt("dave@grey.test")[0], 250)
            self.assertEqual(s.data(msg(2))[0], 250)
            s.quit()
            self.assertEqual([r["rcpts"] for r in p.log()],
                             [["carol@acme.test"], ["bob@grey.test", "dave@grey.test"]])

    def test_disconnect_in_data(self):
        with peers.smtp_peer(script={"disconnect_in_data": ["drop"]}) as p:
            s = smtp(p)
            send(s, "ok@acme.test", msg(1))
            self.assertEqual(s.mail("news@acme.test")[0], 250)
            self.assertEqual(s.rcpt("x@drop.test")[0], 250)
            with self.assertRaises((smtplib.SMTPServerDisconnected, ConnectionError)):
                s.data(msg(2))
            s.close()
            # Not stored, and the server still serves others.
            s = smtp(p)
            send(s, "ok2@acme.test", msg(3))
            s.quit()
            self.assertEqual([r["rcpts"] for r in p.log()], [["ok@acme.test"], ["ok2@acme.test"]])

    def test_data_after(self):
        script = {"data_after": {"later": "451 4.3.0 Try again later",
                                 "queued": "250 2.0.0 Ok: queued as 4XyZ"}}
        with peers.smtp_peer(script=script) as p:
            s = smtp(p)
            for rcpt, want in (("a@later.test", (451, b"4.3.0 Try again later")),
                               ("b@queued.test", (250, b"2.0.0 Ok: queued as 4XyZ")),
                               ("c@plain.test", (250, b"OK"))):
                self.assertEqual(s.mail("news@acme.test")[0], 250)
                self.assertEqual(s.rcpt(rcpt)[0], 250)
                self.assertEqual(s.data(msg(rcpt)), want)
            s.quit()
            self.assertEqual([r["rcpts"] for r in p.log()], [["b@queued.test"], ["c@plain.test"]])

    def test_max_messages_per_conn(self):
        with peers.smtp_peer(script={"max_messages_per_conn": 2}) as p:
            s = smtp(p)
            send(s, "a@acme.test", msg(1))
            send(s, "b@acme.test", msg(2))
            self.assertEqual(s.mail("news@acme.test"),
                             (421, b"4.7.0 Too many messages in one connection"))
            assert_closed(self, s)
            s = smtp(p)
            send(s, "c@acme.test", msg(3))
            s.quit()
            self.assertEqual([(r["conn"], r["msg_in_conn"]) for r in p.log()],
                             [(1, 1), (1, 2), (2, 1)])

    def test_maildir_exact_bytes_and_log(self):
        body = ("From: =?utf-8?b?5byg5Lyf?= <news@acme.test>\r\n"
                "Subject: 双十一\r\n\r\n"
                ".leading dot\r\n..two dots\r\n.\r\n"   # a lone dot line inside the body
                "中文 body\r\n" + "x" * 998 + "\r\nend\r\n").encode("utf-8")
        with peers.smtp_peer() as p:
            s = smtp(p)
            send(s, "张伟@acme.test", body, sender="news@acme.test",
                 mail_options=["SMTPUTF8", "BODY=8BITMIME"])
            send(s, "second@acme.test", msg(2))
            s.quit()
            got = p.messages()
            self.assertEqual(len(got), 2)
            rec, data = got[0]
            self.assertEqual(data, body)
            self.assertEqual(rec["file"], "000001.eml")
            self.assertEqual(rec["bytes"], len(body))
            self.assertEqual(rec["mail_from"], "news@acme.test")
            self.assertEqual(rec["rcpts"], ["张伟@acme.test"])
            self.assertEqual(rec["mail_options"], ["SMTPUTF8", "BODY=8BITMIME"])
            self.assertIs(rec["tls"], False)
            self.assertIsNone(rec["auth"])
            self.assertEqual(rec["peer"][0], "127.0.0.1")
            self.assertEqual(rec["helo"], "client.test")
            self.assertEqual(got[1][0]["file"], "000002.eml")
            self.assertEqual(got[1][1], msg(2))
            self.assertEqual(sorted(os.listdir(p.maildir)),
                             ["000001.eml", "000002.eml", "log.jsonl"])

    def test_maildir_numbering_continues(self):
        d = tempfile.mkdtemp(prefix="edm-selftest-md-")
        self.addCleanup(shutil.rmtree, d, True)
        for _ in range(2):
            with peers.smtp_peer(maildir=d) as p:
                s = smtp(p)
                send(s, "a@acme.test", msg(1))
                s.quit()
        self.assertEqual([r["file"] for r in p.log()], ["000001.eml", "000002.eml"])

    def test_starttls(self):
        with peers.smtp_peer("--starttls", CERTS.server_cert, CERTS.server_key) as p:
            s = smtp(p)
            self.assertTrue(s.has_extn("starttls"))
            self.assertEqual(s.starttls(context=client_ctx(CERTS.ca))[0], 220)
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            send(s, "a@acme.test", msg(1))
            s.quit()
            # A client that trusts another CA refuses the certificate; the
            # peer shrugs that off and keeps serving.
            s = smtp(p)
            with self.assertRaises(ssl.SSLCertVerificationError):
                s.starttls(context=client_ctx(CERTS.wrong_cert))
            s.close()
            s = smtp(p)  # plaintext is still allowed without --require-starttls
            send(s, "b@acme.test", msg(2))
            s.quit()
            self.assertEqual([r["tls"] for r in p.log()], [True, False])

    def test_require_starttls(self):
        with peers.smtp_peer("--starttls", CERTS.server_cert, CERTS.server_key,
                             "--require-starttls") as p:
            s = smtp(p)
            self.assertEqual(s.mail("news@acme.test"),
                             (530, b"Must issue a STARTTLS command first"))
            s.starttls(context=client_ctx(CERTS.ca))
            s.ehlo("client.test")
            send(s, "a@acme.test", msg(1))
            s.quit()
            self.assertIs(p.log()[0]["tls"], True)

    def test_inject_after_starttls(self):
        """The 220 to STARTTLS and the injected lines arrive in one piece,
        before the handshake; a client that drops them (as RFC 3207 says)
        then completes TLS and delivers normally."""
        inject = "250-injected.test\\n250 injected PIPELINING\\n550 5.7.1 injected"
        want = (b"220 Ready to start TLS\r\n250-injected.test\r\n"
                b"250 injected PIPELINING\r\n550 5.7.1 injected\r\n")
        with peers.smtp_peer("--starttls", CERTS.server_cert, CERTS.server_key,
                             "--inject-after-starttls", inject) as p:
            with socket.create_connection((p.host, p.port), timeout=10) as raw:
                f = raw.makefile("rb", buffering=0)

                def reply():
                    lines = []
                    while not lines or lines[-1][3:4] != b" ":
                        lines.append(f.readline())
                    return b"".join(lines)

                self.assertTrue(reply().startswith(b"220 "))
                raw.sendall(b"EHLO client.test\r\n")
                self.assertIn(b"STARTTLS", reply())
                raw.sendall(b"STARTTLS\r\n")
                got = b""
                deadline = time.monotonic() + 10
                while len(got) < len(want) and time.monotonic() < deadline:
                    chunk = raw.recv(len(want) - len(got))
                    if not chunk:
                        break
                    got += chunk
                self.assertEqual(got, want)
                # the plaintext is thrown away; the handshake follows
                tls = client_ctx(CERTS.ca).wrap_socket(raw, server_hostname="localhost")
                tf = tls.makefile("rb", buffering=0)
                tls.sendall(b"EHLO client.test\r\n")
                lines = []
                while not lines or lines[-1][3:4] != b" ":
                    lines.append(tf.readline())
                self.assertTrue(lines[0].startswith(b"250-smtp-peer.test"), lines)
                self.assertFalse(any(b"injected" in x or b"STARTTLS" in x for x in lines), lines)
                for cmd, code in ((b"MAIL FROM:<news@acme.test>", b"250"),
                                  (b"RCPT TO:<a@acme.test>", b"250"),
                                  (b"DATA", b"354")):
                    tls.sendall(cmd + b"\r\n")
                    self.assertTrue(tf.readline().startswith(code), cmd)
                tls.sendall(msg(1) + b".\r\n")
                self.assertTrue(tf.readline().startswith(b"250"))
                tls.sendall(b"QUIT\r\n")
                self.assertTrue(tf.readline().startswith(b"221"))
                tls.close()
            rec = p.log()
            self.assertEqual([(r["rcpts"], r["tls"]) for r in rec], [(["a@acme.test"], True)])
            self.assertIn(f"conn=1 injected {len(want) - 24} bytes after the 220 to STARTTLS",
                          p.stderr())

    def test_auth_under_starttls(self):
        with peers.smtp_peer("--starttls", CERTS.server_cert, CERTS.server_key,
                             "--auth", "mailer:s3cr:et") as p:
            s = smtp(p)
            self.assertFalse(s.has_extn("auth"))
            self.assertEqual(s.docmd("AUTH", "PLAIN AG1haWxlcgBzM2NyOmV0")[0], 538)
            self.assertEqual(s.mail("news@acme.test")[0], 530)
            s.starttls(context=client_ctx(CERTS.ca))
            s.ehlo("client.test")
            self.assertEqual(sorted(s.esmtp_features["auth"].split()), ["LOGIN", "PLAIN"])
            self.assertEqual(s.mail("news@acme.test"),
                             (530, b"5.7.0 Authentication required"))
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login("mailer", "wrong")
            self.assertEqual(cm.exception.smtp_code, 535)
            self.assertEqual(cm.exception.smtp_error, b"5.7.8 Authentication credentials invalid")
            s.close()
            for mech in ("PLAIN", "LOGIN"):
                s = smtp(p)
                s.starttls(context=client_ctx(CERTS.ca))
                s.ehlo("client.test")
                s.user, s.password = "mailer", "s3cr:et"
                code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()))
                self.assertEqual((code, text), (235, b"2.7.0 Authentication successful"))
                send(s, f"{mech}@acme.test", msg(mech))
                s.quit()
            self.assertEqual([(r["auth"], r["tls"]) for r in p.log()],
                             [("mailer", True), ("mailer", True)])

    def test_auth_plaintext(self):
        with peers.smtp_peer("--auth", "u:p", "--auth-plaintext") as p:
            s = smtp(p)
            self.assertTrue(s.has_extn("auth"))
            self.assertEqual(s.login("u", "p")[0], 235)
            send(s, "a@acme.test", msg(1))
            s.quit()
            self.assertEqual((p.log()[0]["auth"], p.log()[0]["tls"]), ("u", False))

    def test_no_auth_configured(self):
        with peers.smtp_peer("--auth-plaintext") as p:
            s = smtp(p)
            self.assertFalse(s.has_extn("auth"))
            self.assertEqual(s.docmd("AUTH", "PLAIN AHUAcA==")[0], 504)
            send(s, "a@acme.test", msg(1))  # no AUTH needed
            s.quit()

    def test_implicit_tls(self):
        with peers.smtp_peer("--implicit-tls", CERTS.server_cert, CERTS.server_key,
                             "--auth", "mailer:pw") as p:
            s = smtplib.SMTP_SSL(p.host, p.port, timeout=10, context=client_ctx(CERTS.ca))
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            self.assertTrue(s.has_extn("auth"))
            self.assertEqual(s.login("mailer", "pw")[0], 235)
            send(s, "a@acme.test", msg(1))
            s.quit()
            with self.assertRaises(ssl.SSLCertVerificationError):
                smtplib.SMTP_SSL(p.host, p.port, timeout=10,
                                 context=client_ctx(CERTS.wrong_cert))
            # A plaintext client gets no greeting (TLS from the first byte).
            with socket.create_connection((p.host, p.port), timeout=10) as raw:
                raw.sendall(b"EHLO client.test\r\n")
                raw.settimeout(5)
                try:
                    first = raw.recv(100)
                except (ConnectionError, socket.timeout):
                    first = b""
                self.assertFalse(first.startswith(b"220"), first)
            rec = p.log()
            self.assertEqual(len(rec), 1)
            self.assertEqual((rec[0]["tls"], rec[0]["auth"]), (True, "mailer"))

    def test_concurrent_connections(self):
        nconn, nmsg = 30, 3
        errors = []

        def client(i):
            try:
                s = smtp(p)
                for j in range(nmsg):
                    send(s, f"r{i}.{j}@acme.test", f"Subject: {i}.{j}\r\n\r\n{i}.{j}\r\n".encode(),
                         sender=f"s{i}@acme.test")
                    time.sleep(0.01)
                s.quit()
            except Exception as e:  # reported below, in the main thread
                errors.append((i, repr(e)))

        with peers.smtp_peer(script={"greylist_once": ["nobody"]}) as p:
            threads = [threading.Thread(target=client, args=(i,)) for i in range(nconn)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            got = p.messages()
        self.assertEqual(len(got), nconn * nmsg)
        seen = {}
        for rec, data in got:
            i, j = rec["rcpts"][0][1:].split("@")[0].split(".")
            self.assertEqual(rec["mail_from"], f"s{i}@acme.test")
            self.assertEqual(data, f"Subject: {i}.{j}\r\n\r\n{i}.{j}\r\n".encode())
            self.assertEqual(rec["msg_in_conn"], int(j) + 1)
            seen.setdefault(rec["conn"], set()).add(i)
        self.assertEqual(len(seen), nconn)
        self.assertTrue(all(len(v) == 1 for v in seen.values()), seen)

    def test_command_limit_per_connection(self):
        # After EHLO, MAIL may be 512 + 26 (SIZE) + 10 (SMTPUTF8) octets
        # (RFC 1870, RFC 6531). aiosmtpd 1.4.3 keeps that limit in a class
        # attribute that a new connection resets; smtp_peer keeps it per
        # connection.
        line_arg = "FROM:<" + "a" * 489 + "@acme.test> SIZE=1000 SMTPUTF8"
        self.assertEqual(len("MAIL " + line_arg), 530)
        with peers.smtp_peer() as p:
            a = smtp(p)
            b = smtp(p)  # connects (and says EHLO) after a's EHLO
            c = smtplib.SMTP(p.host, p.port, timeout=10)  # HELO: 512 is the limit
            self.assertEqual(a.docmd("MAIL", line_arg), (250, b"OK"))
            self.assertEqual(b.docmd("MAIL", line_arg), (250, b"OK"))
            c.helo("client.test")
            self.assertEqual(c.docmd("MAIL", line_arg), (500, b"Command line too long"))
            for s in (a, b, c):
                s.quit()

    def test_sigterm_and_max_seconds(self):
        argv = [peers.PYTHON, peers.SMTP_PEER, "--listen", "127.0.0.1:0"]
        proc = peers.Proc(argv + ["--max-seconds", "0.5"], "smtp_peer.py")
        proc.read_port_line()
        self.assertEqual(proc.popen.wait(10), 0)
        self.assertIn("--max-seconds 0.5 reached", proc.stderr())
        proc.stop()
        # SIGTERM with a client connected mid-transaction: still exit 0.
        proc = peers.Proc(argv, "smtp_peer.py")
        try:
            port = proc.read_port_line()
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            s.ehlo("client.test")
            s.mail("news@acme.test")
            proc.popen.send_signal(signal.SIGTERM)
            self.assertEqual(proc.popen.wait(10), 0)
            s.close()
        finally:
            proc.stop()

    def test_bad_arguments(self):
        d = tempfile.mkdtemp(prefix="edm-selftest-")
        self.addCleanup(shutil.rmtree, d, True)
        cases = [
            ('{"rcpt": {"x": "550 ok"}, "rpct": {}}', "unknown script keys: rpct"),
            ('{"rcpt": {"x": "55 bad"}}', "not an SMTP reply line"),
            ('{"rcpt": {"x": "550 a\\n550 b"}}', "must use '-'"),
            ('{"data_after": "451-x\\n452 y"}', "not an SMTP reply line"),
            ('{"max_messages_per_conn": 0}', "positive integer"),
            ('{"greylist_once": "x"}', "list of non-empty strings"),
            ('[1]', "JSON object"),
            ('{', "Expecting"),
        ]
        for text, want in cases:
            path = os.path.join(d, "s.json")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([peers.PYTHON, peers.SMTP_PEER, "--script", path],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2, (text, r.stderr))
            self.assertIn(want, r.stderr, text)
            self.assertEqual(r.stdout, "")
        r = subprocess.run([peers.PYTHON, peers.SMTP_PEER, "--require-starttls"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([peers.PYTHON, peers.SMTP_PEER, "--inject-after-starttls", "250 x"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--inject-after-starttls needs --starttls", r.stderr)


class PeersHelperTest(unittest.TestCase):

    def test_dnsmasq(self):
        with peers.dnsmasq("--local=/test/", "--mx-host=good.test,mx1.good.test,10",
                           "--mx-host=good.test,mx2.good.test,20",
                           "--host-record=mx1.good.test,127.0.0.2",
                           "--host-record=aaaa.test,::1") as d:
            self.assertEqual(d.addr, f"127.0.0.1:{d.port}")
            r = peers.dns_query(d.port, "good.test", "MX")
            self.assertEqual(r.rcode, "NOERROR")
            self.assertEqual(sorted(a[2] for a in r.answers),
                             [(10, "mx1.good.test"), (20, "mx2.good.test")])
            self.assertEqual(peers.dns_query(d.port, "mx1.good.test", "A").answers,
                             [("mx1.good.test", "A", "127.0.0.2")])
            self.assertEqual(peers.dns_query(d.port, "aaaa.test", "AAAA").answers,
                             [("aaaa.test", "AAAA", "::1")])
            self.assertEqual(peers.dns_query(d.port, "nxdomain.test", "MX").rcode, "NXDOMAIN")
            self.assertEqual(peers.dns_query(d.port, "example.com", "MX").rcode, "REFUSED")
            self.assertIn("query[MX] good.test", d.proc.stderr())
        self.assertFalse(d.proc.alive())

    def test_smtp_sink(self):
        dump = tempfile.mkdtemp(prefix="edm-selftest-sink-")
        self.addCleanup(shutil.rmtree, dump, True)
        try:
            cm = peers.smtp_sink("-h", "sink.test", dump_dir=dump)
            sink = cm.__enter__()
        except peers.SkipUnavailable as e:
            self.skipTest(str(e))
        try:
            s = smtplib.SMTP(sink.host, sink.port, timeout=10)
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("pipelining"))
            self.assertEqual(s.sendmail("news@acme.test", ["a@acme.test", "b@acme.test"],
                                        msg(1)), {})
            s.quit()
        finally:
            cm.__exit__(None, None, None)
        self.assertFalse(sink.proc.alive())
        files = os.listdir(dump)
        self.assertEqual(len(files), 1, files)
        with open(os.path.join(dump, files[0]), "rb") as f:
            dumped = f.read()
        self.assertIn(b"X-Rcpt-Args: <b@acme.test>", dumped)
        self.assertIn(b"Subject: m1", dumped)

    def test_fault_server_port_line(self):
        # Any program printing "port=N" first will do; smtp_peer.py is one.
        with peers.fault_server(peers.PYTHON, peers.SMTP_PEER, "--listen", "127.0.0.1:0") as f:
            s = smtplib.SMTP(f.host, f.port, timeout=10)
            self.assertEqual(s.noop()[0], 250)
            s.quit()
        self.assertFalse(f.proc.alive())
        with self.assertRaisesRegex(RuntimeError, r"printed b'hello' as its first line"):
            with peers.fault_server("/bin/sh", "-c", "echo hello; sleep 30"):
                pass
        with self.assertRaisesRegex(RuntimeError, r"exited before printing(.|\n)*oops"):
            with peers.fault_server("/bin/sh", "-c", "echo oops >&2; exit 3"):
                pass

    def test_smtp_peer_failure_is_loud(self):
        with self.assertRaisesRegex(RuntimeError, r"exited before printing(.|\n)*No such file"):
            with peers.smtp_peer("--starttls", "/nonexistent.pem", "/nonexistent.key"):
                pass


def setUpModule():
    global CERTS
    d = tempfile.mkdtemp(prefix="edm-selftest-certs-")
    try:
        CERTS = peers.gen_test_certs(d)
    except FileNotFoundError:
        print(f"note: {peers.GEN_TEST_CERTS} not there; making certificates with openssl",
              file=sys.stderr)
        CERTS = openssl_certs(d)


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS.dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
