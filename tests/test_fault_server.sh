#!/bin/bash
#
# test_fault_server.sh - check tests/fault_server mode by mode with Python's
# smtplib and raw sockets (standard library only).
#
# Usage: tests/test_fault_server.sh PATH/TO/fault_server
#
# Each case starts the server on 127.0.0.1 (port 0, read back from its
# "port=N" line) with a --log file, runs a short Python session that asserts
# the replies and the log, then stops the server with SIGTERM and requires
# exit status 0 (so a build with -fsanitize=address also fails on leaks).
# Servers are always killed at exit (trap). Exit status: 0 when every case
# passed, 1 otherwise. Nothing leaves loopback.

set -u

if [ "$#" -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/fault_server" >&2
	exit 2
fi
FS=$1
PY=/usr/bin/python3
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/edm-fault.XXXXXX") || exit 1
SPID=
PORT=
FAILS=0
PASSES=0

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ -n "$SPID" ]; then
		kill -TERM "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME [OPTIONS...]: sets SPID and PORT; 0 or 1.
start_server() {
	local name=$1 out first
	shift
	out=$TMPD/$name.out
	"$FS" --listen 127.0.0.1:0 --max-seconds 120 --log "$TMPD/$name.log" "$@" \
		>"$out" 2>"$TMPD/$name.err" </dev/null &
	SPID=$!
	for _ in $(seq 1 100); do
		if [ -s "$out" ]; then
			first=$(head -n 1 "$out")
			case $first in
			port=[0-9]*)
				PORT=${first#port=}
				return 0
				;;
			esac
		fi
		if ! kill -0 "$SPID" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	echo "server '$name' did not print port=N; stdout: $(cat "$out")" >&2
	return 1
}

# stop_server: SIGTERM, and the exit status must be 0.
stop_server() {
	local rc
	kill -TERM "$SPID" 2>/dev/null
	wait "$SPID"
	rc=$?
	SPID=
	return "$rc"
}

# run NAME [OPTIONS...] < PYTHON: one case.
run() {
	local name=$1 ok=1
	shift
	if ! start_server "$name" "$@"; then
		ok=0
	else
		if ! env PORT="$PORT" LOG="$TMPD/$name.log" TMPD="$TMPD" \
			PYTHONPATH="$TMPD" timeout 120 "$PY" -; then
			ok=0
		fi
		if ! stop_server; then
			echo "server '$name' did not exit with status 0" >&2
			ok=0
		fi
	fi
	if [ "$ok" -eq 1 ]; then
		PASSES=$((PASSES + 1))
		echo "ok - $name"
	else
		FAILS=$((FAILS + 1))
		echo "FAIL - $name (server options: $*); server stderr:"
		tail -n 40 "$TMPD/$name.err" 2>/dev/null
		[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
		SPID=
	fi
}

# Helpers shared by the Python sessions.
cat >"$TMPD/fsh.py" <<'EOF'
import os, re, smtplib, socket, time

PORT = int(os.environ["PORT"])
LOG = os.environ["LOG"]


class Raw:
    """A bare SMTP client socket that reads replies line by line."""

    def __init__(self, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
        self.buf = b""
        self.recvs = 0

    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)

    def fill(self):
        d = self.s.recv(1 << 20)
        self.recvs += 1
        if not d:
            return False
        self.buf += d
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                return None
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln.decode("latin-1")

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            ln = self.line()
            assert ln is not None, "connection closed in a reply; got %r" % lines
            lines.append(ln)
            if ln[3:4] != "-":
                return int(ln[:3]), lines

    def code(self):
        return self.reply()[0]

    def eof(self):
        """True when the server closed (no bytes left and EOF)."""
        if self.buf:
            return False
        try:
            return not self.fill()
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def greeted(timeout=5.0):
    r = Raw(timeout)
    assert r.code() == 220
    return r


def log_lines():
    try:
        with open(LOG, encoding="ascii", errors="replace") as f:
            return [l.rstrip("\n") for l in f]
    except FileNotFoundError:
        return []


def msgs(kind="msg"):
    return [l for l in log_lines() if l.split(" ", 1)[0] == kind]


def field(line, name):
    m = re.search(r"(?:^| )" + re.escape(name) + r"=(\S*)", line)
    return m.group(1) if m else None


def smtp(timeout=5.0):
    return smtplib.SMTP("127.0.0.1", PORT, timeout=timeout)
EOF

# ---------------------------------------------------------------- default
run default --maildir "$TMPD/default.md" <<'EOF'
import email, os, smtplib
from email import policy
from fsh import *

# smtplib: features, one message with a leading-dot line, stored unstuffed.
s = smtp()
code, text = s.ehlo("client.test")
assert code == 250, (code, text)
for ext in ("pipelining", "8bitmime", "enhancedstatuscodes"):
    assert s.has_extn(ext), ext
assert not s.has_extn("size") and not s.has_extn("starttls")
body = "Subject: dots\r\nX-Test: 1\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"
assert s.sendmail("from@a.test", ["to1@b.test", "to2@b.test"], body) == {}
assert s.noop()[0] == 250
assert s.rset()[0] == 250
assert s.docmd("VRFY x")[0] == 502
assert s.quit()[0] == 221
m = msgs()
assert len(m) == 1, m
assert m[0].startswith("msg from=<from@a.test> rcpts=<to1@b.test>,<to2@b.test> bytes="), m
assert field(m[0], "bytes") == str(len(body)), (m[0], len(body))
assert field(m[0], "bare-lf") == "0" and field(m[0], "code") == "250"
name = field(m[0], "file")
path = os.path.join(os.environ["TMPD"], "default.md", "new", name)
raw = open(path, "rb").read()
assert raw == body.encode(), raw
msg = email.message_from_bytes(raw, policy=policy.default)
assert msg["Subject"] == "dots"
assert msg.get_content() == ".leading dot\r\n..two dots\r\nend\r\n", repr(msg.get_content())

# Sequence and syntax errors.
r = greeted()
r.send("MAIL FROM:<a@a.test>\r\n")
assert r.code() == 503                      # no EHLO yet
r.send("EHLO c.test\r\n")
assert r.reply()[1][-1] == "250 ENHANCEDSTATUSCODES"
r.send("RCPT TO:<x@b.test>\r\n")
assert r.code() == 503                      # no MAIL
r.send("MAIL FROM:<a@a.test> SMTPUTF8\r\n")
assert r.code() == 555
r.send("MAIL FROM:a@a.test\r\n")
assert r.code() == 501
r.send("MAIL FROM:<j\u00f6@a.test>\r\n".encode())
assert r.code() == 553                      # no SMTPUTF8 advertised
r.send("MAIL FROM:<a\x01@a.test>\r\n")
assert r.code() == 501
r.send("MAIL FROM:<>\r\n")
assert r.code() == 250                      # null sender
r.send("DATA\r\n")
assert r.code() == 503                      # no RCPT
r.send("RCPT TO:<>\r\n")
assert r.code() == 501
r.send("\r\n")
assert r.code() == 500
r.send("X" * 5000 + "\r\n")
assert r.reply() == (500, ["500 5.5.2 line too long"])
r.send("NO\x00OP\r\n")
assert r.code() == 500
r.send("NOOP\n")                            # bare LF is a line end
assert r.code() == 250
r.send("QUIT\r\n")
assert r.code() == 221 and r.eof()
r.close()

# Pipelining: MAIL/RCPT/RCPT/DATA in one write, replies in order; then
# the content, the dot and QUIT in one write (RFC 2920 allows both).
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<p@a.test>\r\nRCPT TO:<p1@b.test>\r\nRCPT TO:<p2@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(4)] == [250, 250, 250, 354]
r.send("Subject: p\r\n\r\nhi\r\n.\r\nQUIT\r\n")
assert r.code() == 250 and r.code() == 221 and r.eof()
r.close()
assert len(msgs()) == 2

# RFC 2920 3.1: a command after EHLO in the same write is too early, and
# so is message content sent with DATA (before the 354).
r = greeted()
r.send("EHLO c.test\r\nNOOP\r\n")
assert r.code() == 250
assert r.reply() == (503, ["503 5.5.0 Error: improper use of SMTP command pipelining"])
r.send("MAIL FROM:<e@a.test>\r\nRCPT TO:<e@b.test>\r\nDATA\r\nSubject: early\r\n\r\nx\r\n.\r\n")
assert [r.code() for _ in range(4)] == [250, 250, 354, 554]
r.close()
assert any(l.startswith("sync-error ") and "cmd=NOOP" in l for l in log_lines())
assert any("cmd=message-content" in l for l in log_lines())
assert len(msgs("msg-rejected")) == 1

# Smuggling: "<LF>.<CR><LF>" does not end DATA here; the bare LF is flagged
# and the would-be command stays in the body. Exactly one more message.
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<s@a.test>\r\nRCPT TO:<s@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(3)] == [250, 250, 354]
r.send("Subject: smuggle\r\n\r\nhello\n.\r\nMAIL FROM:<evil@x.test>\r\n\r\n.\r\n")
assert r.code() == 250
r.send("QUIT\r\n")
assert r.code() == 221
r.close()
m = msgs()
assert len(m) == 3, m
assert field(m[2], "bare-lf") == "1" and field(m[2], "bare-cr") == "0", m[2]
raw = open(os.path.join(os.environ["TMPD"], "default.md", "new", field(m[2], "file")), "rb").read()
assert b"hello\n.\r\nMAIL FROM:<evil@x.test>\r\n" in raw, raw
assert not any("evil" in l for l in log_lines() if not l.startswith("msg "))
EOF

# ------------------------------------------------------------- rcpt-reply
run rcpt-reply --rcpt-reply 'bad=550 5.1.1 User unknown' \
	--rcpt-reply 'full=452 4.2.2 Mailbox full' \
	--rcpt-reply 'slow=421 4.7.0 Try later' \
	--rcpt-reply 'multi=550-5.7.1 first line\n550 5.7.1 last line' --max-rcpts 3 <<'EOF'
import smtplib
from fsh import *

s = smtp()
refused = s.sendmail("f@a.test", ["good@b.test", "bad@b.test", "full@b.test", "multi@b.test"],
                     "Subject: r\r\n\r\nx\r\n")
assert refused == {
    "bad@b.test": (550, b"5.1.1 User unknown"),
    "full@b.test": (452, b"4.2.2 Mailbox full"),
    "multi@b.test": (550, b"5.7.1 first line\n5.7.1 last line"),
}, refused
# --max-rcpts 3: the fourth accepted recipient gets 452.
s.mail("f@a.test")
codes = [s.rcpt("ok%d@b.test" % i)[0] for i in range(4)]
assert codes == [250, 250, 250, 452], codes
s.rset()
s.quit()
m = msgs()
assert len(m) == 1 and "rcpts=<good@b.test> " in m[0], m
rej = [l for l in log_lines() if l.startswith("rcpt-rejected ")]
assert [l.split()[1:3] for l in rej] == [["<bad@b.test>", "550"], ["<full@b.test>", "452"],
                                         ["<multi@b.test>", "550"], ["<ok3@b.test>", "452"]], rej

# A 421 reply closes the connection after it is sent.
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<slow@b.test>\r\nRCPT TO:<good@b.test>\r\n")
assert r.code() == 250
assert r.reply() == (421, ["421 4.7.0 Try later"])
assert r.eof()
r.close()
EOF

# -------------------------------------------------------------- 421-after
run 421-after --421-after 2 <<'EOF'
import smtplib
from fsh import *

# smtplib: two messages go through, the third MAIL gets 421.
s = smtp()
for i in range(2):
    assert s.sendmail("f@a.test", ["t@b.test"], "Subject: %d\r\n\r\nx\r\n" % i) == {}
try:
    s.sendmail("f@a.test", ["t@b.test"], "Subject: 3\r\n\r\nx\r\n")
    raise AssertionError("third message accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 421, e

# Raw, pipelined: the dot of message 2 and the next batch in one write;
# the 421 lands in the middle of the batch and nothing after it is answered.
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(3)] == [250, 250, 354]
r.send("Subject: 1\r\n\r\nx\r\n.\r\nMAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(4)] == [250, 250, 250, 354]
r.send("Subject: 2\r\n\r\nx\r\n.\r\nMAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nDATA\r\n")
assert r.code() == 250
assert r.reply() == (421, ["421 4.7.0 too many"])
assert r.eof()
r.close()
assert len(msgs()) == 4, msgs()
EOF

# ------------------------------------------------------ split-bytes + delay
run split-bytes --split-bytes <<'EOF'
import smtplib
from fsh import *

# Unpaced: one byte per write, as fast as the loop turns.
s = smtp()
assert s.ehlo("c.test")[0] == 250 and s.has_extn("pipelining")
assert s.sendmail("f@a.test", ["t@b.test"], "Subject: s\r\n\r\nx\r\n") == {}
assert s.quit()[0] == 221
assert len(msgs()) == 1
EOF

run split-delay --split-bytes --split-delay-ms 2 --delay-ms 100 <<'EOF'
import smtplib, time
from fsh import *

# smtplib reassembles replies that arrive one byte per write.
t0 = time.monotonic()
s = smtp()
assert time.monotonic() - t0 >= 0.09          # the greeting is delayed too
t0 = time.monotonic()
code, text = s.ehlo("c.test")
assert time.monotonic() - t0 >= 0.09
assert code == 250 and s.has_extn("pipelining"), text
assert s.sendmail("f@a.test", ["t@b.test"], "Subject: s\r\n\r\nx\r\n") == {}
assert s.quit()[0] == 221
assert len(msgs()) == 1

# Raw: the replies to a pipelined batch come back after one delay, and in
# many more pieces than replies (each byte is its own write, 2 ms apart).
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
before = r.recvs
t0 = time.monotonic()
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nRSET\r\n")
codes = [r.code() for _ in range(3)]
dt = time.monotonic() - t0
assert codes == [250, 250, 250], codes
# 42 bytes: the delay, then at least 41 pauses of 2 ms.
assert 0.18 <= dt < 2.0, dt
assert r.recvs - before >= 10, r.recvs - before
r.close()
EOF

# ------------------------------------------------------------ delay alone
run delay --delay-ms 200 <<'EOF'
import time
from fsh import *

r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
t0 = time.monotonic()
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nDATA\r\n")
assert r.code() == 250
t1 = time.monotonic()
assert r.code() == 250 and r.code() == 354
t2 = time.monotonic()
assert t1 - t0 >= 0.19, t1 - t0          # one round trip for the batch...
assert t2 - t1 < 0.1, t2 - t1            # ...not one per command
r.close()
EOF

# ---------------------------------------------------------- drop-after-dot
run drop-after-dot --drop-after-dot <<'EOF'
import smtplib
from fsh import *

s = smtp()
try:
    s.sendmail("f@a.test", ["t@b.test"], "Subject: d\r\n\r\nx\r\n")
    raise AssertionError("no disconnect")
except smtplib.SMTPServerDisconnected:
    pass
assert msgs() == [] and len(msgs("msg-dropped")) == 1, log_lines()
EOF

# --------------------------------------------------------- stall-after-354
run stall --stall-after-354 <<'EOF'
import smtplib, socket
from fsh import *

s = smtp(timeout=1.0)
try:
    s.sendmail("f@a.test", ["t@b.test"], "Subject: d\r\n\r\nx\r\n")
    raise AssertionError("the dot was answered")
except smtplib.SMTPServerDisconnected as e:
    # smtplib reports its read timeout this way.
    assert "timed out" in str(e), e
s.close()
assert msgs() == [] and len(msgs("msg-stalled")) == 1, log_lines()
EOF

# --------------------------------------------------------------- huge-line
run huge-line --huge-line 1048576 <<'EOF'
from fsh import *

r = greeted()
r.send("EHLO c.test\r\n")
ln = r.line()
assert len(ln) + 2 == 1048576 and ln.startswith("250 fault.test xxx"), len(ln)
r.send("QUIT\r\n")
assert r.code() == 221
r.close()
EOF

# --------------------------------------------------------------- never-end
run never-end --never-end <<'EOF'
import socket, time
from fsh import *

r = greeted()
r.send("EHLO c.test\r\n")
lines = []
end = time.monotonic() + 0.55
r.s.settimeout(0.05)
while time.monotonic() < end:
    try:
        ln = r.line()
    except socket.timeout:
        continue
    assert ln is not None
    lines.append(ln)
assert len(lines) >= 4, lines
assert all(l.startswith("250-") for l in lines), lines
r.close()
# The server lives on.
r = greeted()
r.close()
EOF

# ----------------------------------- no-pipelining, size, starttls, 8bitmime
run options --no-pipelining --size 1000 --starttls-advertise --no-8bitmime <<'EOF'
import smtplib
from fsh import *

s = smtp()
s.ehlo("c.test")
assert not s.has_extn("pipelining") and not s.has_extn("8bitmime")
assert s.has_extn("starttls") and s.esmtp_features["size"] == "1000"
try:
    s.starttls()
    raise AssertionError("STARTTLS accepted")
except smtplib.SMTPResponseException as e:
    assert e.smtp_code == 454 and e.smtp_error == b"4.7.0 TLS not available", e
# smtplib sends SIZE=n because SIZE is advertised.
try:
    s.sendmail("f@a.test", ["t@b.test"], "Subject: big\r\n\r\n" + "x" * 2000 + "\r\n")
    raise AssertionError("oversized message accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 552, e
assert s.mail("f@a.test", ["BODY=8BITMIME"])[0] == 555
assert s.sendmail("f@a.test", ["t@b.test"], "Subject: small\r\n\r\nx\r\n") == {}
s.quit()

r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
# Without PIPELINING every command must wait for the previous reply.
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\n")
assert r.code() == 250 and r.code() == 503
r.send("RCPT TO:<t@b.test>\r\n")
assert r.code() == 250
# Over the size limit without a SIZE parameter: refused at the dot.
r.send("DATA\r\n")
assert r.code() == 354
r.send("Subject: big\r\n\r\n" + "y" * 1500 + "\r\n.\r\n")
assert r.code() == 552
r.close()
assert len(msgs()) == 1 and len(msgs("msg-rejected")) == 1, log_lines()
EOF

# ------------------------------------------------------ configured replies
run mail-reply --mail-reply '451 4.3.2 Try again later' <<'EOF'
import smtplib
from fsh import *

s = smtp()
try:
    s.sendmail("f@a.test", ["t@b.test"], "x\r\n")
    raise AssertionError("MAIL accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 451 and e.smtp_error == b"4.3.2 Try again later", e
# Pipelined RCPT after a refused MAIL is a sequence error, not a verdict.
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<f@a.test>\r\nRCPT TO:<t@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(3)] == [451, 503, 503]
r.close()
assert not any(l.startswith("rcpt-rejected") for l in log_lines())
EOF

run data-reply --data-reply '554 5.7.1 Go away' <<'EOF'
import smtplib
from fsh import *

s = smtp()
try:
    s.sendmail("f@a.test", ["t@b.test"], "x\r\n")
    raise AssertionError("DATA accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 554, e
s.quit()
assert msgs() == []
EOF

run dot-reply --dot-reply '550 5.7.1 Looks like spam' <<'EOF'
import smtplib
from fsh import *

s = smtp()
try:
    s.sendmail("f@a.test", ["t@b.test"], "x\r\n")
    raise AssertionError("message accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550 and e.smtp_error == b"5.7.1 Looks like spam", e
s.quit()
assert msgs() == [] and field(msgs("msg-rejected")[0], "code") == "550", log_lines()
EOF

run greeting-554 --greeting '554 5.3.2 No service' <<'EOF'
import smtplib
from fsh import *

try:
    smtp()
    raise AssertionError("connected")
except smtplib.SMTPConnectError as e:
    assert e.smtp_code == 554, e
r = Raw()
assert r.code() == 554
r.send("EHLO c.test\r\n")
assert r.code() == 503
r.send("QUIT\r\n")
assert r.code() == 221 and r.eof()
EOF

run greeting-421 --greeting '421 4.3.2 Busy' <<'EOF'
from fsh import *

r = Raw()
assert r.reply() == (421, ["421 4.3.2 Busy"]) and r.eof()
EOF

# -------------------------------------------------------- drop-after-rcpt
run drop-after-rcpt --drop-after-rcpt <<'EOF'
import smtplib
from fsh import *

s = smtp()
try:
    s.sendmail("f@a.test", ["t@b.test"], "x\r\n")
    raise AssertionError("no disconnect")
except smtplib.SMTPServerDisconnected:
    pass
assert msgs() == []
EOF

# ------------------------------------------------------------ lenient-eod
run lenient-eod --lenient-eod <<'EOF'
from fsh import *

# Like a server open to SMTP smuggling: "<LF>.<CR><LF>" ends the message
# and the text after it runs as commands.
r = greeted()
r.send("EHLO c.test\r\n")
r.reply()
r.send("MAIL FROM:<s@a.test>\r\nRCPT TO:<s@b.test>\r\nDATA\r\n")
assert [r.code() for _ in range(3)] == [250, 250, 354]
r.send("Subject: smuggle\r\n\r\nhello\n.\r\nMAIL FROM:<evil@x.test>\r\n")
assert r.code() == 250 and r.code() == 250
r.close()
m = msgs()
assert len(m) == 1 and field(m[0], "bare-lf") == "1", m
# "..x" after a bare LF is unstuffed too (the bare LF ends the line).
r = greeted()
r.send("HELO c.test\r\n")
assert r.code() == 250
r.send("MAIL FROM:<s@a.test>\r\n")
assert r.code() == 250
r.send("RCPT TO:<s@b.test>\r\n")
assert r.code() == 250
r.send("DATA\r\n")
assert r.code() == 354
r.send("a\n..b\r\n.\n")
assert r.code() == 250
r.close()
assert field(msgs()[1], "bytes") == str(len("a\n.b\r\n")), msgs()
EOF

# ------------------------------------------------------ garbage, many clients
run garbage-and-load --quiet --maildir "$TMPD/load.md" <<'EOF'
import random, smtplib, socket, threading
from fsh import *

rng = random.Random(1234)
# Garbage: random bytes, long lines, NULs, bare CRs, half-finished DATA.
def garbage(i):
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        for _ in range(20):
            kind = rng.randrange(5)
            if kind == 0:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
            elif kind == 1:
                data = b"A" * rng.randrange(4000, 70000)
            elif kind == 2:
                data = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + b"\r.\r\n\x00" * 50
            elif kind == 3:
                data = b"\r\n" * rng.randrange(1, 2000)
            else:
                data = b"." * 10 + b"\n.\n\r\r\n.\r"
            s.sendall(data)
        s.close()
    except OSError:
        pass
for i in range(30):
    garbage(i)

# Load: 300 clients at once, one message each.
N = 300
errors = []
barrier = threading.Barrier(N)
def client(i):
    try:
        barrier.wait(timeout=30)
        s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
        s.sendmail("f%d@a.test" % i, ["t%d@b.test" % i], "Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        s.quit()
    except Exception as e:
        errors.append((i, repr(e)))
threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors[:5]
good = [l for l in msgs() if field(l, "from").startswith("<f")]
assert len(good) == N, len(good)
assert len(set(field(l, "file") for l in good)) == N
# Still alive and sane.
s = smtp()
assert s.noop()[0] == 250
s.quit()
EOF

# ------------------------------------------------------------- max-seconds
echo_case() {
	if [ "$1" -eq 0 ]; then
		PASSES=$((PASSES + 1))
		echo "ok - $2"
	else
		FAILS=$((FAILS + 1))
		echo "FAIL - $2"
	fi
}
start_time=$SECONDS
if start_server max-seconds --max-seconds 1; then
	wait "$SPID"
	rc=$?
	SPID=
	elapsed=$((SECONDS - start_time))
	[ "$rc" -eq 0 ] && [ "$elapsed" -le 5 ]
	echo_case $? "max-seconds (rc=$rc, ${elapsed}s)"
else
	echo_case 1 "max-seconds (did not start)"
fi

# Bad options are refused with status 2 and no port line.
bad=0
for args in "--rcpt-reply nopattern" "--dot-reply hello" "--size -1" \
	"--huge-line 5" "--listen nonsense" "--bogus" "--max-seconds 0"; do
	# shellcheck disable=SC2086  # split on purpose
	out=$("$FS" $args 2>/dev/null </dev/null)
	rc=$?
	if [ "$args" = "--listen nonsense" ]; then
		want=1
	else
		want=2
	fi
	if [ "$rc" -ne "$want" ] || [ -n "$out" ]; then
		echo "  '$args': status $rc (want $want), stdout '$out'"
		bad=1
	fi
done
echo_case "$bad" "bad options refused"

echo "# $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
