#!/usr/bin/python3
"""smtp_peer.py - a scripted SMTP server on loopback for edm's integration tests.

Built on aiosmtpd (Debian: python3-aiosmtpd; run with /usr/bin/python3).
It plays a receiving MX or a submission server whose replies a test script
chooses: rejected and greylisted recipients, 421 on a chosen command, a
connection dropped after the final dot (RFC 1047's "was it delivered?"
window), STARTTLS or implicit TLS, AUTH PLAIN/LOGIN, a per-connection
message limit. Every accepted message is stored byte for byte.

usage: smtp_peer.py [--listen 127.0.0.1:PORT] [--hostname NAME]
                    [--starttls CERT KEY [--require-starttls] [--inject-after-starttls TEXT]
                     | --implicit-tls CERT KEY]
                    [--auth USER:PASS [--auth-plaintext]] [--script FILE]
                    [--maildir DIR] [--size-limit N] [--max-seconds S] [--verbose]

Contract:
  * When listening, the first stdout line is "port=N" (flushed); nothing
    else is written to stdout.
  * SIGTERM or SIGINT: close the listener and every connection, exit 0.
    --max-seconds S (default 600) is a safety net: exit 0 after S seconds.
    Bad arguments or a bad --script: a message on stderr, exit 2.
  * --maildir DIR: each accepted message (2xx reply to the dot) becomes
    DIR/NNNNNN.eml, numbered from 000001 (after the highest number already
    there), holding exactly the bytes received after dot-unstuffing. It is
    written to a dot-file and renamed, so it appears complete or not at
    all. Then one JSON line is appended to DIR/log.jsonl:
      {"file": "000001.eml", "mail_from": ..., "rcpts": [...], "bytes": N,
       "tls": bool, "auth": user-or-null, "peer": [ip, port],
       "helo": ..., "mail_options": [...], "conn": C, "msg_in_conn": K}
    (conn numbers connections from 1; msg_in_conn counts messages whose
    final dot was received on that connection, from 1.) The line is one
    write(2) of a complete line made before the reply is sent; a reader
    racing the server must ignore a last line without "\\n" (peers.py does).
    log.jsonl is appended, not rewritten through tmp+rename, because a
    rewrite per message is quadratic in a long run.
  * Replies in the script may span lines ("550-5.1.1 first\\n550 5.1.1
    last"); each line must look like an SMTP reply line, else exit 2.
    "<addr>" in a rcpt or mail reply becomes the address in angle brackets.
    Any reply whose last line starts "421 " is sent and then the
    connection is closed, as real servers do.

Script (--script FILE, JSON; every key optional):
  "rcpt": {"substring": "550 5.1.1 <addr>: user unknown", ...}
        the first rule (file order) whose substring occurs in the RCPT
        address gives the reply; the recipient is not added.
  "mail": "REPLY" or {"substring": "REPLY", ...}
        reply to every MAIL FROM, or to those whose sender contains substring.
  "data_after": "REPLY" or {"substring": "REPLY", ...}
        reply to the final dot with REPLY instead of "250 OK" (for a
        mapping: when any accepted recipient contains substring). A 2xx
        REPLY still stores the message; any other does not.
  "greylist_once": ["substring", ...]
        the first RCPT of a matching address (exact address, remembered
        across connections for the life of the process) gets
        "450 4.2.0 Greylisted, try again later"; later ones go on to the
        other rules. "rcpt" rules are checked first.
  "disconnect_in_data": ["substring", ...]
        when the message for a matching accepted recipient has been
        received, drop the connection without replying to the dot; the
        message is not stored.
  "max_messages_per_conn": N
        after N messages (final dot received) on one connection, the next
        MAIL FROM gets "max_messages_reply" (default "421 4.7.0 Too many
        messages in one connection", which closes the connection).

--inject-after-starttls TEXT (with --starttls): a man in the middle's
reply injection (CVE-2011-0411, "NO STARTTLS"). The "220 Ready to start
TLS" reply and TEXT go out in one write, before the TLS handshake, so a
client reads them together: TEXT's lines (separated by a backslash-n, as
typed inside single quotes in the shell) each end with CRLF, e.g.
'250 injected\\n550 5.7.1 injected'. A client that keeps those bytes takes
them for replies inside the TLS session (or feeds them to its TLS engine);
one that follows RFC 3207 throws them away. Each injection is noted on
stderr ("smtp_peer: conn=N injected K bytes after the 220 to STARTTLS").

Protocol, as aiosmtpd 1.4.3 does it (not faked): EHLO advertises SIZE,
8BITMIME, SMTPUTF8, STARTTLS (with --starttls, before TLS), AUTH PLAIN LOGIN
(with --auth, after TLS or with --auth-plaintext), HELP; no PIPELINING (aiosmtpd
does not advertise it, though it reads pipelined commands in order) and no
ENHANCEDSTATUSCODES. Bytes received before STARTTLS's handshake are thrown
away (RFC 3207, CVE-2011-0411). With --auth every MAIL needs AUTH first
("530 5.7.0 Authentication required"); bad credentials get "535 5.7.8
Authentication credentials invalid"; AUTH without TLS gets "538 5.7.11".

What it does not do: relay, parse messages, DSN, CHUNKING/BDAT, or a
scripted greeting; fault injection below the SMTP layer (bad replies, stalls,
half-open TCP) belongs to tests/fault_server.
"""
import argparse
import asyncio
import collections
import json
import logging
import os
import re
import signal
import ssl
import sys
import traceback
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, TLSSetupException

GREYLIST_REPLY = "450 4.2.0 Greylisted, try again later"
MAX_MESSAGES_REPLY = "421 4.7.0 Too many messages in one connection"
# What aiosmtpd 1.4.3 answers to STARTTLS before the handshake.
STARTTLS_READY = "220 Ready to start TLS"
# 32 MiB, aiosmtpd's own default; advertised as SIZE.
DEFAULT_SIZE_LIMIT = 33554432
REPLY_LINE = re.compile(r"^[2-5][0-9][0-9]([ -].*)?$")
SCRIPT_KEYS = {"rcpt", "mail", "data_after", "greylist_once", "disconnect_in_data",
               "max_messages_per_conn", "max_messages_reply"}

VERBOSE = False


def note(msg):
    """One line on stderr when --verbose."""
    if VERBOSE:
        print("smtp_peer: " + msg, file=sys.stderr, flush=True)


class ScriptError(Exception):
    pass


def parse_reply(text, where):
    """Validate a scripted reply; return it with CRLF between lines."""
    if not isinstance(text, str):
        raise ScriptError(f"{where}: reply must be a string")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ScriptError(f"{where}: empty reply")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if not REPLY_LINE.match(line) or line[:3] != lines[0][:3]:
            raise ScriptError(f"{where}: not an SMTP reply line: {line!r}")
        if len(line) > 3 and line[3] != (" " if last else "-"):
            raise ScriptError(f"{where}: line {i + 1} must use '{' ' if last else '-'}'"
                              f" after the code: {line!r}")
    return "\r\n".join(lines)


def parse_rules(value, where, allow_plain):
    """A {substring: reply} mapping (or, if allowed, one reply for all) -> list of pairs."""
    if allow_plain and isinstance(value, str):
        return [("", parse_reply(value, where))]
    if not isinstance(value, dict):
        raise ScriptError(f"{where}: expected an object of substring: reply"
                          + (" or one reply string" if allow_plain else ""))
    return [(k, parse_reply(v, f"{where}[{k!r}]")) for k, v in value.items()]


def parse_substrings(value, where):
    """A list of non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ScriptError(f"{where}: expected a list of non-empty strings")
    return list(value)


class Script:
    """The --script rules, validated at start so a typo fails loudly."""

    def __init__(self, data):
        if not isinstance(data, dict):
            raise ScriptError("the script must be a JSON object")
        unknown = set(data) - SCRIPT_KEYS
        if unknown:
            raise ScriptError(f"unknown script keys: {', '.join(sorted(unknown))}")
        self.rcpt = parse_rules(data.get("rcpt", {}), "rcpt", False)
        self.mail = parse_rules(data.get("mail", {}), "mail", True)
        self.data_after = parse_rules(data.get("data_after", {}), "data_after", True)
        self.greylist_once = parse_substrings(data.get("greylist_once", []), "greylist_once")
        self.disconnect_in_data = parse_substrings(data.get("disconnect_in_data", []),
                                                   "disconnect_in_data")
        n = data.get("max_messages_per_conn")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ScriptError("max_messages_per_conn: expected a positive integer")
        self.max_messages = n
        self.max_messages_reply = parse_reply(data.get("max_messages_reply", MAX_MESSAGES_REPLY),
                                              "max_messages_reply")


def first_match(rules, text):
    """The reply of the first (substring, reply) rule whose substring is in text."""
    for sub, reply in rules:
        if sub in text:
            return reply
    return None


def with_addr(reply, address):
    """Put the address, in angle brackets, where the reply says <addr>."""
    return reply.replace("<addr>", f"<{address}>")


def is_2xx(reply):
    """Whether a reply accepts (2yz)."""
    return reply.startswith("2")


class Maildir:
    """Stores accepted messages: NNNNNN.eml by tmp+rename, then a log.jsonl line."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.seq = 0
        for name in os.listdir(path):
            m = re.fullmatch(r"([0-9]{6,})\.eml", name)
            if m:
                self.seq = max(self.seq, int(m.group(1)))
        self.log_fd = os.open(os.path.join(path, "log.jsonl"),
                              os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def store(self, content, meta):
        """Write one message and its log line; return the file name."""
        self.seq += 1
        name = f"{self.seq:06d}.eml"
        tmp = os.path.join(self.path, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(content)
        os.rename(tmp, os.path.join(self.path, name))
        line = (json.dumps(dict(file=name, **meta)) + "\n").encode("ascii")
        # One write of the whole line (O_APPEND): a reader sees whole lines
        # except, at worst, a last one still being written.
        n = os.write(self.log_fd, line)
        while n < len(line):
            n += os.write(self.log_fd, line[n:])
        return name


class PeerSMTP(SMTP):
    """aiosmtpd's SMTP with per-connection state and close-after-421."""

    def __init__(self, handler, conn_id, conns, inject=None, **kwargs):
        # aiosmtpd 1.4.3 keeps command_size_limits in a class attribute that
        # every instance clears and EHLO bumps: shared between concurrent
        # connections. Give each connection its own.
        self.command_size_limits = collections.defaultdict(
            lambda x=SMTP.command_size_limit: x)
        super().__init__(handler, **kwargs)
        self.conn_id = conn_id
        self.messages_done = 0
        self._conns = conns
        self._inject = inject  # bytes sent with the 220 to STARTTLS, or None

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self._conns.add(self)
            note(f"conn={self.conn_id} connect peer={self.session.peer}")

    def connection_lost(self, error):
        self._conns.discard(self)
        note(f"conn={self.conn_id} closed")
        super().connection_lost(error)

    def uses_tls(self):
        t = self.transport
        return t is not None and t.get_extra_info("ssl_object") is not None

    async def push(self, status):
        if (self._inject is not None and status == STARTTLS_READY
                and not self.uses_tls()):
            # The 220 and the injected bytes in one write, as a man in the
            # middle would send them; aiosmtpd switches the transport to TLS
            # right after this returns.
            self._writer.write(status.encode("ascii") + b"\r\n" + self._inject)
            await self._writer.drain()
            print(f"smtp_peer: conn={self.conn_id} injected {len(self._inject)} bytes "
                  "after the 220 to STARTTLS", file=sys.stderr, flush=True)
            return
        await super().push(status)
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if text.rsplit("\r\n", 1)[-1].startswith("421 ") and self.transport is not None:
            note(f"conn={self.conn_id} closing after {text!r}")
            self.transport.close()


class Handler:
    """The aiosmtpd handler: applies the script, checks AUTH, stores messages.

    All state shared between connections (greylist memory, maildir counter)
    lives here and is touched only from the one event-loop thread. No
    attribute may start with "auth_" or "handle_": aiosmtpd would take it
    for an AUTH mechanism or a command hook.
    """

    def __init__(self, script, maildir, credentials):
        self.script = script
        self.maildir = maildir
        self.credentials = credentials  # (user, password) or None
        self.greylisted = set()

    def check_login(self, server, session, envelope, mechanism, auth_data):
        """aiosmtpd authenticator: the one configured USER:PASS."""
        user = auth_data.login.decode("utf-8", "surrogateescape")
        password = auth_data.password.decode("utf-8", "surrogateescape")
        ok = self.credentials is not None and (user, password) == self.credentials
        note(f"conn={server.conn_id} auth {mechanism} user={user!r} ok={ok}")
        if ok:
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.credentials is None:
            # aiosmtpd lists AUTH even with no way to log in; a receiving MX
            # without AUTH does not.
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        s = self.script
        if s.max_messages is not None and server.messages_done >= s.max_messages:
            return s.max_messages_reply
        reply = first_match(s.mail, address)
        if reply is not None:
            return with_addr(reply, address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = first_match(self.script.rcpt, address)
        if reply is not None:
            return with_addr(reply, address)
        if address not in self.greylisted and any(
                sub in address for sub in self.script.greylist_once):
            self.greylisted.add(address)
            return GREYLIST_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        server.messages_done += 1
        rcpts = envelope.rcpt_tos
        if any(sub in r for r in rcpts for sub in self.script.disconnect_in_data):
            note(f"conn={server.conn_id} dropping the connection at the final dot")
            server.transport.abort()
            # connection_lost() cancels this coroutine; nothing gets replied.
            await asyncio.sleep(30)
            return "421 4.3.0 smtp_peer: the connection should have been dropped"
        reply = "250 OK"
        for sub, r in self.script.data_after:
            if any(sub in x for x in rcpts):
                reply = r
                break
        if is_2xx(reply) and self.maildir is not None:
            meta = {
                "mail_from": envelope.mail_from,
                "rcpts": list(rcpts),
                "bytes": len(envelope.original_content),
                "tls": server.uses_tls(),
                "auth": session.auth_data if session.authenticated else None,
                "peer": list(session.peer[:2]) if session.peer else None,
                "helo": session.host_name,
                "mail_options": list(envelope.mail_options),
                "conn": server.conn_id,
                "msg_in_conn": server.messages_done,
            }
            name = self.maildir.store(envelope.original_content, meta)
            note(f"conn={server.conn_id} stored {name}")
        return reply

    async def handle_exception(self, error):
        if isinstance(error, TLSSetupException):
            print(f"smtp_peer: STARTTLS handshake failed: {error.__cause__!r}",
                  file=sys.stderr, flush=True)
            return "454 4.7.0 TLS handshake failed"
        # A bug here, not a client's fault: a traceback, so that peers.py,
        # which fails a test whose peer printed one, notices.
        traceback.print_exception(error)
        return "451 4.3.0 smtp_peer internal error"


def tls_context(cert, key, broken=False):
    """Server-side TLS context: the given chain, no client certificates.
    broken: TLS 1.1 at most, which no client with a TLS 1.2 floor (edm)
    can agree on: every handshake fails with a protocol_version alert."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if broken:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def loop_exception(loop, context):
    """Quiet one-liners for network trouble, a traceback for anything else."""
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
        note(f"{context.get('message', '')}: {exc!r}")
        return
    loop.default_exception_handler(context)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Scripted SMTP server for edm's integration tests.")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="address to listen on; port 0 picks a free one (default %(default)s)")
    p.add_argument("--hostname", default="smtp-peer.test",
                   help="name in the greeting and EHLO reply (default %(default)s)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"), help="offer STARTTLS")
    tls.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"),
                     help="TLS from the first byte (port 465 style)")
    p.add_argument("--broken-tls", action="store_true",
                   help="offer TLS that no modern client can use (TLS 1.1 at most): "
                        "every handshake fails")
    p.add_argument("--require-starttls", action="store_true",
                   help="refuse mail commands before STARTTLS (530)")
    p.add_argument("--inject-after-starttls", metavar="TEXT",
                   help="send TEXT's lines ('\\n' between them, CRLF after each) "
                        "right after the 220 to STARTTLS, in the same write, before "
                        "the handshake (CVE-2011-0411)")
    p.add_argument("--auth", metavar="USER:PASS", help="require AUTH PLAIN/LOGIN with these")
    p.add_argument("--auth-plaintext", action="store_true",
                   help="allow AUTH without TLS (default: only under TLS)")
    p.add_argument("--script", metavar="FILE", help="JSON rules (see the file's docstring)")
    p.add_argument("--maildir", metavar="DIR", help="store accepted messages here")
    p.add_argument("--size-limit", type=int, default=DEFAULT_SIZE_LIMIT, metavar="N",
                   help="SIZE limit in bytes, 0 for none (default %(default)s)")
    p.add_argument("--max-seconds", type=float, default=600.0, metavar="S",
                   help="exit after S seconds (default %(default)s)")
    p.add_argument("--verbose", action="store_true", help="log the SMTP dialogue to stderr")
    a = p.parse_args(argv)
    if a.require_starttls and not a.starttls:
        p.error("--require-starttls needs --starttls")
    a.inject = None
    if a.inject_after_starttls is not None:
        if not a.starttls:
            p.error("--inject-after-starttls needs --starttls")
        if a.inject_after_starttls == "":
            p.error("--inject-after-starttls: empty TEXT")
        a.inject = b"".join(line.encode("utf-8") + b"\r\n"
                            for line in a.inject_after_starttls.split("\\n"))
    host, sep, port = a.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        p.error(f"--listen: expected HOST:PORT, got {a.listen!r}")
    a.host, a.port = host.strip("[]"), int(port)
    if a.auth is not None:
        user, sep, password = a.auth.partition(":")
        if not sep or not user:
            p.error("--auth: expected USER:PASS")
        a.credentials = (user, password)
    else:
        a.credentials = None
    if a.size_limit < 0 or a.max_seconds <= 0:
        p.error("--size-limit must be >= 0 and --max-seconds > 0")
    try:
        a.rules = Script({})
        if a.script:
            with open(a.script, encoding="utf-8") as f:
                a.rules = Script(json.load(f))
    except (OSError, ValueError, ScriptError) as e:
        p.error(f"--script {a.script}: {e}")
    return a


async def serve(a):
    """Listen, print the port, serve until a signal or --max-seconds."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception)
    starttls_ctx = tls_context(*a.starttls, broken=a.broken_tls) if a.starttls else None
    implicit_ctx = tls_context(*a.implicit_tls, broken=a.broken_tls) if a.implicit_tls else None
    maildir = Maildir(a.maildir) if a.maildir else None
    handler = Handler(a.rules, maildir, a.credentials)
    conns = set()
    counter = [0]

    def factory():
        counter[0] += 1
        return PeerSMTP(
            handler, counter[0], conns, inject=a.inject, loop=loop, hostname=a.hostname,
            enable_SMTPUTF8=True,  # as aiosmtpd's Controller does
            data_size_limit=a.size_limit or None,
            tls_context=starttls_ctx, require_starttls=a.require_starttls,
            auth_required=a.credentials is not None,
            # Implicit TLS satisfies "AUTH only under TLS", but aiosmtpd
            # only knows about STARTTLS.
            auth_require_tls=not (a.auth_plaintext or implicit_ctx),
            auth_exclude_mechanism=None if a.credentials else ["LOGIN", "PLAIN"],
            authenticator=handler.check_login if a.credentials else None)

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
    server = await loop.create_server(factory, a.host, a.port, ssl=implicit_ctx,
                                      reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"port={port}\n")
    sys.stdout.flush()
    note(f"listening on {a.host}:{port}")
    try:
        why = await asyncio.wait_for(stop, a.max_seconds)
        note(f"signal {why}: exiting")
    except asyncio.TimeoutError:
        print(f"smtp_peer: --max-seconds {a.max_seconds:g} reached, exiting",
              file=sys.stderr, flush=True)
    server.close()
    for c in list(conns):
        # A TLS transport closed twice has dropped its SSL protocol, and
        # abort() would then raise (Python 3.11 sslproto): skip closing ones.
        if c.transport is not None and not c.transport.is_closing():
            c.transport.abort()
    await server.wait_closed()
    await asyncio.sleep(0)


def main(argv=None):
    global VERBOSE
    a = parse_args(argv)
    VERBOSE = a.verbose
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="smtp_peer: %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every command at INFO (AUTH payloads masked) and a
    # deprecation warning on every successful AUTH.
    logging.getLogger("mail.log").setLevel(logging.INFO if a.verbose else logging.ERROR)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    try:
        asyncio.run(serve(a))
    except OSError as e:
        print(f"smtp_peer: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
