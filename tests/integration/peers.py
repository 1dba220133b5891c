"""peers.py - start and stop the integration tests' servers on loopback.

Standard library only; meant for /usr/bin/python3. Each context manager
starts one process listening on 127.0.0.1, waits until it answers, yields
an object describing it, and in `finally` stops it (SIGTERM, then SIGKILL
after 5 s) and waits for it. A process that is not ready within 10 s is
killed and a RuntimeError carries its stderr.

    with peers.smtp_peer("--script", path) as p:    # tests/integration/smtp_peer.py
        p.port, p.maildir, p.messages()
    with peers.smtp_sink("-h", "sink.test") as s:   # Postfix smtp-sink
        s.port, s.dump_dir
    with peers.fault_server(binary, *args) as f:    # prints "port=N" first
        f.port
    with peers.dnsmasq("--local=/test/", "--mx-host=a.test,mx.a.test,10") as d:
        d.port, d.addr                              # addr = "127.0.0.1:PORT"
    certs = peers.gen_test_certs(dir)               # runs tests/gen_test_certs.sh
    peers.dns_query(d.port, "a.test", "MX")         # tiny DNS client

smtp_peer also fails the test on the way out if the peer did not exit 0
on SIGTERM or printed a Python traceback (a bug in the peer, not in edm).

What it does not do: pick ports outside loopback, talk to any real
resolver, or install anything (smtp-sink missing -> SkipUnavailable).
"""
import contextlib
import json
import os
import pwd
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"  # has python3-aiosmtpd; the pyenv one on PATH does not
SMTP_PEER = os.path.join(HERE, "smtp_peer.py")
GEN_TEST_CERTS = os.path.join(TESTS, "gen_test_certs.sh")
SMTP_SINK = "/usr/sbin/smtp-sink"
DNSMASQ = "/usr/sbin/dnsmasq"
HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PORT_LINE = re.compile(rb"^port=([0-9]{1,5})\r?\n$")


class SkipUnavailable(Exception):
    """A peer program is not installed; callers may turn this into a skip."""


class Proc:
    """A child process with stderr in a temp file and stdout drained by a thread."""

    def __init__(self, argv, what, cwd=None):
        self.what = what
        self.argv = argv
        self.stderr_file = tempfile.TemporaryFile(prefix="edm-peer-stderr-")
        self.stdout_lines = []
        self.stderr_text = None  # set by stop(), which closes the file
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self.stderr_file, cwd=cwd, bufsize=0,
                                      start_new_session=True)

    def stderr(self):
        """Everything the process wrote to stderr so far, as text."""
        if self.stderr_text is not None:
            return self.stderr_text
        self.stderr_file.flush()
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode("utf-8", "replace")

    def fail(self, why):
        """Stop the process and raise a RuntimeError with its stderr."""
        rc = self.stop()
        raise RuntimeError(f"{self.what} ({' '.join(self.argv)}) {why} "
                           f"(exit status {rc}); its stderr:\n{self.stderr()}")

    def read_port_line(self, timeout=START_TIMEOUT):
        """Wait for a first stdout line "port=N"; return N."""
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.popen.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.fail(f"did not print port=N within {timeout:g} s")
                if not sel.select(left):
                    continue
                chunk = os.read(self.popen.stdout.fileno(), 4096)
                if not chunk:
                    self.fail("exited before printing port=N")
                buf += chunk
        line, _, rest = buf.partition(b"\n")
        m = PORT_LINE.match(line + b"\n")
        if not m or not 0 < int(m.group(1)) < 65536:
            self.fail(f"printed {line!r} as its first line, not port=N")
        self.drain_stdout(rest)
        return int(m.group(1))

    def drain_stdout(self, first=b""):
        """Keep reading stdout in a thread so the child never blocks on it."""
        pending = [first]

        def run():
            data = pending[0]
            while True:
                chunk = self.popen.stdout.read(4096)
                if not chunk:
                    break
                data += chunk
                *lines, data = data.split(b"\n")
                self.stdout_lines.extend(x.decode("utf-8", "replace") for x in lines)
            if data:
                self.stdout_lines.append(data.decode("utf-8", "replace"))

        self.reader = threading.Thread(target=run, daemon=True)
        self.reader.start()

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        """SIGTERM, SIGKILL after STOP_TIMEOUT; wait; return the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if getattr(self, "reader", None) is not None:
            self.reader.join(1)
        self.popen.stdout.close()
        if self.stderr_text is None:
            self.stderr_text = self.stderr()
            self.stderr_file.close()
        return self.popen.returncode


def free_port(udp_too=False):
    """A port on 127.0.0.1 free for TCP (and UDP) right now; racy by nature,
    so callers retry when the server then fails to bind it."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((HOST, 0))
            port = t.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class SmtpPeer:
    """A running smtp_peer.py."""

    def __init__(self, proc, port, maildir):
        self.proc = proc
        self.host = HOST
        self.port = port
        self.maildir = maildir

    def log(self):
        """The log.jsonl records so far (a half-written last line is ignored)."""
        try:
            with open(os.path.join(self.maildir, "log.jsonl"), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in data.split(b"\n")[:-1]]

    def messages(self):
        """[(record, message bytes)] for every stored message, in order."""
        out = []
        for rec in self.log():
            with open(os.path.join(self.maildir, rec["file"]), "rb") as f:
                out.append((rec, f.read()))
        return out

    def stderr(self):
        return self.proc.stderr()


@contextlib.contextmanager
def smtp_peer(*args, maildir=None, script=None):
    """Run smtp_peer.py on 127.0.0.1 with ARGS; yield a SmtpPeer.

    maildir: where to store messages (default: a temp dir removed afterwards).
    script: a dict written to a temp JSON file and passed as --script.
    """
    tmp = tempfile.mkdtemp(prefix="edm-smtp-peer-")
    try:
        if maildir is None:
            maildir = os.path.join(tmp, "maildir")
        argv = [PYTHON, SMTP_PEER, "--listen", f"{HOST}:0", "--maildir", maildir]
        if script is not None:
            path = os.path.join(tmp, "script.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(script, f)
            argv += ["--script", path]
        proc = Proc(argv + list(args), "smtp_peer.py")
        ok = False
        try:
            port = proc.read_port_line()
            yield SmtpPeer(proc, port, maildir)
            ok = True
        finally:
            rc = proc.stop()
            if ok and rc != 0:
                raise RuntimeError(f"smtp_peer.py exited with status {rc}; its stderr:\n"
                                   + proc.stderr())
            if ok and "Traceback" in proc.stderr():
                raise RuntimeError("smtp_peer.py printed a traceback; its stderr:\n"
                                   + proc.stderr())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wait_smtp_banner(proc, port, timeout=START_TIMEOUT):
    """Poll until something on 127.0.0.1:port sends a 220 greeting; QUIT it."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                banner = s.recv(512)
                if banner.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    s.recv(512)
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.fail(f"did not greet on port {port} within {timeout:g} s")
        time.sleep(0.05)


SinkInfo = namedtuple("SinkInfo", "host port dump_dir proc")


@contextlib.contextmanager
def smtp_sink(*args, dump_dir=None, backlog=128):
    """Run Postfix's smtp-sink on 127.0.0.1 with ARGS; yield a SinkInfo.

    dump_dir: if given, pass -d DIR/msg. so each transaction is dumped to
    DIR/msg.<hex> (made writable for the unprivileged user). As root, smtp-sink
    needs -u; "-u nobody" is added unless ARGS has -u.
    Raises SkipUnavailable when smtp-sink is not installed (package postfix).
    """
    if not os.access(SMTP_SINK, os.X_OK):
        raise SkipUnavailable(f"{SMTP_SINK} not found (Debian package postfix)")
    opts = list(args)
    if os.geteuid() == 0 and "-u" not in opts:
        opts = ["-u", "nobody"] + opts
    if dump_dir is not None:
        os.makedirs(dump_dir, exist_ok=True)
        if os.geteuid() == 0:
            user = opts[opts.index("-u") + 1]
            pw = pwd.getpwnam(user)
            os.chown(dump_dir, pw.pw_uid, pw.pw_gid)
        opts += ["-d", os.path.join(dump_dir, "msg.")]
    for attempt in range(5):
        port = free_port()
        proc = Proc([SMTP_SINK] + opts + [f"inet:{HOST}:{port}", str(backlog)], "smtp-sink")
        try:
            if not wait_smtp_banner(proc, port):
                if attempt < 4 and "in use" in proc.stderr():
                    continue  # lost the port race; try another
                proc.fail("exited at start")
            proc.drain_stdout()
            yield SinkInfo(HOST, port, dump_dir, proc)
            return
        finally:
            proc.stop()


ServerInfo = namedtuple("ServerInfo", "host port proc")


@contextlib.contextmanager
def fault_server(binary, *args):
    """Run tests/fault_server (path BINARY) with ARGS; it prints "port=N" first."""
    proc = Proc([binary] + list(args), os.path.basename(binary))
    try:
        port = proc.read_port_line()
        yield ServerInfo(HOST, port, proc)
    finally:
        proc.stop()


DnsInfo = namedtuple("DnsInfo", "host port addr proc")


@contextlib.contextmanager
def dnsmasq(*options):
    """Run dnsmasq on 127.0.0.1 at a free high port with OPTIONS
    (--local=/test/, --mx-host=..., --host-record=...); yield a DnsInfo.

    As tests/with_dnsmasq.sh does: --no-resolv (nothing goes upstream),
    --no-hosts, --conf-file=/dev/null, --log-queries (on stderr).
    """
    if not os.access(DNSMASQ, os.X_OK):
        raise RuntimeError(f"{DNSMASQ} not found (Debian package dnsmasq-base)")
    tmp = tempfile.mkdtemp(prefix="edm-dnsmasq-")
    try:
        for attempt in range(5):
            port = free_port(udp_too=True)
            argv = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                    f"--listen-address={HOST}", f"--port={port}",
                    f"--pid-file={os.path.join(tmp, 'dnsmasq.pid')}", "--conf-file=/dev/null",
                    "--log-queries"] + list(options)
            proc = Proc(argv, "dnsmasq")
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while True:
                    if not proc.alive():
                        break
                    try:
                        dns_query(port, "probe.invalid", "A", timeout=0.2)
                        break
                    except (OSError, ValueError):
                        time.sleep(0.05)
                    if time.monotonic() > deadline:
                        proc.fail(f"did not answer on UDP port {port} within "
                                  f"{START_TIMEOUT:g} s")
                if not proc.alive():
                    if attempt < 4 and "in use" in proc.stderr():
                        continue
                    proc.fail("exited at start")
                proc.drain_stdout()
                yield DnsInfo(HOST, port, f"{HOST}:{port}", proc)
                return
            finally:
                proc.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


Certs = namedtuple("Certs", "dir ca server_cert server_key wrong_cert wrong_key")


def gen_test_certs(directory):
    """Run tests/gen_test_certs.sh DIRECTORY; return the Certs it made.

    ca.pem signs server.pem/server.key (mx.test, localhost, 127.0.0.1) and
    wrong.pem/wrong.key (other.test). FileNotFoundError if the script is missing.
    """
    if not os.path.exists(GEN_TEST_CERTS):
        raise FileNotFoundError(GEN_TEST_CERTS)
    os.makedirs(directory, exist_ok=True)
    r = subprocess.run(["bash", GEN_TEST_CERTS, directory], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{GEN_TEST_CERTS} failed ({r.returncode}):\n{r.stderr}")
    c = Certs(directory, *(os.path.join(directory, n) for n in
                           ("ca.pem", "server.pem", "server.key", "wrong.pem", "wrong.key")))
    missing = [p for p in c[1:] if not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"{GEN_TEST_CERTS} did not write {', '.join(missing)}")
    return c


# --- a tiny DNS client (RFC 1035), for probing and checking dnsmasq -----------

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
DnsReply = namedtuple("DnsReply", "rcode answers")  # answers: [(name, type, data)]


def _read_name(msg, off):
    """Decode a possibly compressed name at off; return (name, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if jumps > 20:
                raise ValueError("DNS name compression loop")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
        elif n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        else:
            labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
            off += 1 + n


def dns_query(port, name, qtype="A", timeout=2.0):
    """Ask 127.0.0.1:port for NAME/QTYPE over UDP; return a DnsReply.

    data is a dotted IP for A/AAAA, (preference, host) for MX, the target
    for CNAME, raw bytes otherwise. OSError on timeout, ValueError on junk.
    """
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD, one question
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    q += b"\0" + struct.pack(">HH", QTYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((HOST, port))
        s.send(q)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            msg = s.recv(4096)
            if len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid:
                break
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if not flags & 0x8000:
        raise ValueError("DNS reply without the QR bit")
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    answers = []
    names = {v: k for k, v in QTYPES.items()}
    for _ in range(an):
        rname, off = _read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == 1:
            data = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            data = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 15:
            data = (struct.unpack(">H", rdata[:2])[0], _read_name(msg, off + 2)[0])
        elif rtype == 5:
            data = _read_name(msg, off)[0]
        else:
            data = rdata
        answers.append((rname, names.get(rtype, rtype), data))
        off += rdlen
    return DnsReply(RCODES.get(flags & 0xF, flags & 0xF), answers)
