#!/usr/bin/python3
"""`edm track` end to end on 127.0.0.1: the tracking server is started on
port 0 (the port is read from its start line), tokens are computed here
independently with hmac/hashlib as templates/token.h specifies, and requests
are made with Debian's curl, http.client and raw sockets (for what clients
do not do on purpose: pipelining, oversized heads, slow requests).

Checked: the pixel (GIF bytes, cache headers), clicks (302 to the template's
URL with character references decoded, events.csv), the unsubscribe page and
RFC 8058 one-click POSTs (urlencoded and multipart; events.csv and the
suppression file; idempotent, also across restarts), forged, altered and
foreign tokens (404, nothing recorded), limits (431, 413, 400), timeouts
(slowloris), keep-alive and pipelining, X-Forwarded-For from trusted and
untrusted peers, machine flags, the connection cap, several campaigns in one
process, refusals at start-up (78) and SIGTERM (exit 0, requests in progress
answered).

usage: test_track.py EDM
"""
import base64
import csv
import hashlib
import hmac
import html.parser
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "track")
CURL = "/usr/bin/curl"
SECRET = b"test-secret-0123456789abcdef-0123456789"  # >= 32 bytes
SECRET_ENV = "EDM_TEST_TRACK_SECRET"
CAMPAIGN = "spring-track"
OTHER = "autumn-track"
EX_CONFIG = 78
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c0000000001"
                    "0001000002024401003b")
LIST = {1: "alice@acme.example", 2: "Bob@acme.example", 4: "zhang.wei@acme.example",
        5: "carol@acme.example", 6: "dave@acme.example"}   # row 3 is not an address
START_TIMEOUT = 60   # ASan builds start slowly


def token(row, campaign=CAMPAIGN, secret=SECRET, b32=False):
    """templates/token.h: 5-byte row + HMAC-SHA256(secret, "edm-token-1" NUL
    campaign NUL row)[:12]; base64url without padding, or lowercase base32."""
    r = row.to_bytes(5, "big")
    mac = hmac.new(secret, b"edm-token-1\0" + campaign.encode() + b"\0" + r,
                   hashlib.sha256).digest()[:12]
    if b32:
        return base64.b32encode(r + mac).decode().rstrip("=").lower()
    return base64.urlsafe_b64encode(r + mac).decode().rstrip("=")


class LinkFinder(html.parser.HTMLParser):
    """The links linktrack.h tracks, found independently: href of <a> and
    <area>, absolute http(s), no data-notrack, no Mustache tag."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        href = a.get("href")
        if tag not in ("a", "area") or href is None or "data-notrack" in a:
            return
        href = href.strip()
        if "{{" in href or not re.match(r"(?i)https?://", href):
            return
        self.urls.append(href)


def expected_links():
    p = LinkFinder()
    with open(os.path.join(FIXTURES, "body.html"), encoding="utf-8") as f:
        p.feed(f.read())
    return p.urls


def location_of(url):
    """What the Location header must hold: the URL with bytes <= 0x20 and
    >= 0x7f percent-encoded."""
    return "".join(chr(b) if 0x20 < b < 0x7f else "%%%02X" % b for b in url.encode())


class Server:
    """A running `edm track`; stopped (and its exit checked) by stop()."""

    def __init__(self, tc, cwd, configs, opts=(), env=None):
        self.tc = tc
        e = dict(os.environ)
        e[SECRET_ENV] = SECRET.decode()
        e.pop("EDM_LOG", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([EDM, "track"] + list(opts) + list(configs), cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e)
        tc.addCleanup(self.kill)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(START_TIMEOUT):
            self.kill()
            tc.fail("edm track did not start:\n" + self.stderr())
        m = re.search(r"listening on (\S+):(\d+) \((\d+) campaigns?\)", self.lines[-1])
        tc.assertIsNotNone(m, self.stderr())
        self.host, self.port = m.group(1), int(m.group(2))
        tc.assertNotEqual(self.port, 0)

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if "listening on" in line:
                self.ready.set()
        self.ready.set()

    def stderr(self):
        return "".join(self.lines)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.tc.fail("edm track did not stop after signal %d" % sig)
        self.reader.join(5)
        self.tc.assertEqual(rc, 0, "edm track exit %d:\n%s" % (rc, self.stderr()))
        self.check_sanitizers()
        return rc

    def check_sanitizers(self):
        """An ASan/UBSan build reports on stderr (UBSan without changing the
        exit status)."""
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            self.tc.assertNotIn(bad, self.stderr())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


def curl(url, *args):
    """(status, headers lowercased, body) of one curl request."""
    p = subprocess.run([CURL, "-s", "-S", "-i", "--max-time", "20"] + list(args) + [url],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("curl %s failed: %s" % (url, p.stderr.decode()))
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class Raw:
    """A raw client socket with an HTTP/1.1 response reader."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        h, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = h.decode("iso-8859-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed_within(self, seconds):
        """True when the server closes (EOF) within seconds; bytes read on
        the way are kept."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.s], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            try:
                d = self.s.recv(65536)
            except ConnectionResetError:
                return True
            if not d:
                return True
            self.buf += d
        return False

    def close(self):
        self.s.close()


def get(port, path, ua="edm-test/1"):
    return "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: %s\r\n\r\n" % (
        path, port, ua)


class TrackTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="edm-track-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        for name in os.listdir(FIXTURES):
            shutil.copy(os.path.join(FIXTURES, name), self.dir)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def start(self, configs=("track.ini",), opts=(), env=None):
        return Server(self, self.dir, configs, opts, env)

    def events(self, out="out"):
        p = self.path(out, "events.csv")
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def suppressed(self, name="suppress.csv"):
        p = self.path(name)
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def write_config(self, name, text):
        with open(self.path(name), "w", encoding="utf-8") as f:
            f.write(text)

    def variant(self, name, old, new, src="track.ini"):
        with open(self.path(src), encoding="utf-8") as f:
            text = f.read()
        self.assertIn(old, text)
        self.write_config(name, text.replace(old, new))

    # ---- opens ----

    def test_pixel(self):
        srv = self.start()
        st, h, body = curl(srv.url("/o/%s.gif" % token(1)))
        self.assertEqual(st, 200)
        self.assertEqual(body, GIF)
        self.assertEqual(h["content-type"], "image/gif")
        self.assertEqual(h["content-length"], "43")
        self.assertIn("no-store", h["cache-control"])
        self.assertIn("no-cache", h["cache-control"])
        self.assertEqual(h["pragma"], "no-cache")
        self.assertIn("date", h)
        ev = self.events()
        self.assertEqual(len(ev), 1)
        e = ev[0]
        self.assertEqual((e["type"], e["email"], e["row"], e["ip"], e["machine"]),
                         ("open", LIST[1], "1", "127.0.0.1", "0"))
        self.assertTrue(e["user_agent"].startswith("curl/"), e["user_agent"])
        self.assertEqual((e["link_id"], e["url"]), ("", ""))
        self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # HEAD: the same headers, no body, recorded too
        st, h, body = curl(srv.url("/o/%s.gif" % token(2)), "-I")
        self.assertEqual((st, h["content-length"], body), (200, "43", b""))
        self.assertEqual(self.events()[-1]["email"], LIST[2])
        # the base32 spelling of a token is the same token
        st, _, body = curl(srv.url("/o/%s.gif" % token(4, b32=True).upper()))
        self.assertEqual((st, body), (200, GIF))
        self.assertEqual(self.events()[-1]["row"], "4")
        srv.stop()

    def test_machine_opens(self):
        srv = self.start()
        agents = [
            ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
             "(via ggpht.com GoogleImageProxy)", "1"),
            ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "1"),
            ("Mozilla/5.0", "1"),  # Apple Mail Privacy Protection
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko)", "0"),
            ("Barracuda Sentinel (EE)", "1"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 "
             "Thunderbird/115.5.0", "0"),
        ]
        for ua, _ in agents:
            st, _, _ = curl(srv.url("/o/%s.gif" % token(5)), "-A", ua)
            self.assertEqual(st, 200)
        ev = self.events()
        self.assertEqual([(e["user_agent"], e["machine"]) for e in ev], agents)
        srv.stop()

    def test_long_user_agent_cut_at_a_character(self):
        srv = self.start()
        ua = "Mozilla/5.0 x" + "é" * 400   # 813 bytes: byte 512 is inside an é
        st, _, _ = curl(srv.url("/o/%s.gif" % token(1)), "-A", ua)
        self.assertEqual(st, 200)
        srv.stop()
        got = self.events()[0]["user_agent"]   # the csv module decodes UTF-8
        self.assertTrue(ua.startswith(got))
        self.assertLessEqual(len(got.encode()), 512)
        self.assertEqual(len(got.encode()), 511)

    # ---- clicks ----

    def test_clicks_redirect_to_template_urls(self):
        links = expected_links()
        self.assertEqual(links, [
            "https://shop.acme.example/spring?utm_source=edm&utm_medium=email",
            "https://shop.acme.example/item/42",
            "http://blog.acme.example/post?a=1&b=2#top",
            "https://shop.acme.example/zh/春季",
        ])
        srv = self.start()
        for n, url in enumerate(links, 1):
            # one row per link: no scanner burst here
            st, h, _ = curl(srv.url("/c/%s/%d" % (token(n if n != 3 else 6), n)))
            self.assertEqual(st, 302, url)
            self.assertEqual(h["location"], location_of(url))
            self.assertIn("no-store", h["cache-control"])
        ev = self.events()
        self.assertEqual([(e["type"], e["link_id"], e["url"], e["machine"]) for e in ev],
                         [("click", str(n), u, "0") for n, u in enumerate(links, 1)])
        self.assertEqual([e["email"] for e in ev], [LIST[1], LIST[2], LIST[6], LIST[4]])
        srv.stop()

    def test_bad_link_ids(self):
        srv = self.start()
        t = token(1)
        for path in ("/c/%s/0" % t, "/c/%s/5" % t, "/c/%s/01" % t, "/c/%s/1x" % t,
                     "/c/%s/" % t, "/c/%s" % t, "/c/%s/1/2" % t, "/c/%s/-1" % t,
                     "/c/%s/99999999999" % t, "/c/%s/4" % token(1, OTHER)):
            st, _, _ = curl(srv.url(path))
            self.assertEqual(st, 404, path)
        self.assertEqual(self.events(), [])
        srv.stop()

    def test_scanner_burst_and_window(self):
        srv = self.start()
        t = token(1)
        for n in (1, 2, 3):           # a scanner follows every link at once
            self.assertEqual(curl(srv.url("/c/%s/%d" % (t, n)))[0], 302)
        t2 = token(2)
        for _ in range(2):            # the same link twice is a person
            self.assertEqual(curl(srv.url("/c/%s/1" % t2))[0], 302)
        t4 = token(4)
        self.assertEqual(curl(srv.url("/c/%s/1" % t4))[0], 302)
        time.sleep(2.5)               # scanner_window = 2s in track.ini
        self.assertEqual(curl(srv.url("/c/%s/2" % t4))[0], 302)
        ev = self.events()
        self.assertEqual([(e["row"], e["link_id"], e["machine"]) for e in ev], [
            ("1", "1", "0"), ("1", "2", "1"), ("1", "3", "1"),
            ("2", "1", "0"), ("2", "1", "0"),
            ("4", "1", "0"), ("4", "2", "0"),
        ])
        srv.stop()

    def test_scanner_user_agents(self):
        srv = self.start()
        agents = [
            ("Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) "
             "BingPreview/1.0b", "1"),
            ("python-requests/2.31.0", "1"),
            ("Go-http-client/1.1", "1"),
            ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "1"),
            ("mimecast-url-protect", "1"),
            ("curl/7.88.1", "0"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "0"),
        ]
        # always link 1: repeating a link is never a burst, so only the
        # user agent decides
        for row, (ua, _) in zip((1, 2, 4, 5, 6, 1, 2), agents):
            self.assertEqual(curl(srv.url("/c/%s/1" % token(row)), "-A", ua)[0], 302)
        ev = self.events()
        self.assertEqual([(e["user_agent"], e["machine"]) for e in ev], agents)
        srv.stop()

    # ---- unsubscribes ----

    def test_unsubscribe_page_records_nothing(self):
        srv = self.start()
        st, h, body = curl(srv.url("/u/%s" % token(2)))
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn("frame-ancestors 'none'", h["content-security-policy"])
        self.assertIn(b'<form method="post">', body)
        self.assertIn(b'name="List-Unsubscribe" value="One-Click"', body)
        st, h, body = curl(srv.url("/u/%s" % token(2)), "-I")
        self.assertEqual((st, body), (200, b""))
        self.assertEqual(self.events(), [])
        self.assertEqual(self.suppressed(), [])
        srv.stop()

    def test_one_click_unsubscribe_idempotent(self):
        srv = self.start()
        t = token(2)
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        hdrs = {"Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "Mozilla/5.0 (compatible; GoogleOneClick)"}
        c.request("POST", "/u/" + t, body="List-Unsubscribe=One-Click", headers=hdrs)
        r = c.getresponse()
        body = r.read()
        self.assertEqual(r.status, 200)
        self.assertIn(b"Unsubscribed", body)
        ev = self.events()
        self.assertEqual([(e["type"], e["email"], e["row"], e["machine"]) for e in ev],
                         [("unsubscribe", LIST[2], "2", "0")])
        sup = self.suppressed()
        self.assertEqual([(s["email"], s["reason"], s["campaign"]) for s in sup],
                         [(LIST[2], "unsubscribe", CAMPAIGN)])
        with open(self.path("suppress.csv"), encoding="utf-8") as f:
            self.assertEqual(f.readline(), "email,reason,time,campaign\n")
        # again, on the same connection: 200, nothing new
        c.request("POST", "/u/" + t, body="List-Unsubscribe=One-Click", headers=hdrs)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        c.close()
        # the browser form (curl -d) and multipart (curl -F) for other rows
        st, _, _ = curl(srv.url("/u/" + token(4)), "-d", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 200)
        st, _, _ = curl(srv.url("/u/" + token(5)), "-F", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 200)
        # not an unsubscribe: nothing written
        st, _, _ = curl(srv.url("/u/" + token(6)), "-d", "List-Unsubscribe=Yes")
        self.assertEqual(st, 400)
        st, _, _ = curl(srv.url("/u/" + token(6)), "-H", "Content-Type: text/plain",
                        "--data-binary", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 415)
        srv.stop()
        rows = [(e["type"], e["row"]) for e in self.events()]
        self.assertEqual(rows, [("unsubscribe", "2"), ("unsubscribe", "4"),
                                ("unsubscribe", "5")])
        self.assertEqual([s["email"] for s in self.suppressed()],
                         [LIST[2], LIST[4], LIST[5]])
        # a restart remembers (events.csv): still nothing new
        srv = self.start()
        st, _, _ = curl(srv.url("/u/" + t), "-d", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 200)
        srv.stop()
        self.assertEqual(len(self.events()), 3)
        self.assertEqual(len(self.suppressed()), 3)

    def test_unsubscribe_already_suppressed_address(self):
        # bounced earlier (in the suppression file): the event is recorded,
        # the address is not written twice
        with open(self.path("suppress.csv"), "w", encoding="utf-8") as f:
            f.write("email,reason,time,campaign\nDAVE@acme.example,hard,,x\n")
        srv = self.start()
        st, _, _ = curl(srv.url("/u/" + token(6)), "-d", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 200)
        srv.stop()
        self.assertEqual([e["type"] for e in self.events()], ["unsubscribe"])
        self.assertEqual(len(self.suppressed()), 1)

    # ---- tokens ----

    def test_forged_and_foreign_tokens(self):
        srv = self.start()
        good = token(1)
        altered = good[:-1] + ("A" if good[-1] != "A" else "B")
        flipped = token(1)[:3] + ("x" if good[3] != "x" else "y") + good[4:]
        paths = [
            "/o/%s.gif" % altered, "/o/%s.gif" % flipped,
            "/o/%s.gif" % token(1, secret=b"another-secret-0123456789abcdef-xyz"),
            "/o/%s.gif" % token(1, campaign=OTHER),       # not served here
            "/o/%s.gif" % token(1, campaign="spring-track2"),
            "/o/%s.gif" % token(3),                        # not an address
            "/o/%s.gif" % token(99),                       # past the list
            "/o/%s.gif" % good[:-1], "/o/%s.gif" % (good + "A"),
            "/o/%s.png" % good, "/o/%s" % good, "/o/%s.gif/x" % good,
            "/c/%s/1" % altered, "/u/%s" % altered, "/u/%s/x" % good,
            "/", "/favicon.ico", "/o/", "/x/%s.gif" % good,
        ]
        for p in paths:
            self.assertEqual(curl(srv.url(p))[0], 404, p)
        st, _, _ = curl(srv.url("/u/" + altered), "-d", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 404)
        st, _, _ = curl(srv.url("/o/%s.gif" % good), "-X", "POST")
        self.assertEqual(st, 404)
        st, _, _ = curl(srv.url("/o/%s.gif" % good), "-X", "DELETE")
        self.assertEqual(st, 404)
        self.assertEqual(self.events(), [])
        self.assertEqual(self.suppressed(), [])
        srv.stop()

    def test_two_campaigns_one_process(self):
        srv = self.start(configs=("track.ini", "other.ini"))
        self.assertIn("(2 campaigns)", srv.stderr())
        self.assertEqual(curl(srv.url("/o/%s.gif" % token(1)))[0], 200)
        self.assertEqual(curl(srv.url("/o/%s.gif" % token(2, OTHER)))[0], 200)
        # the GBK campaign has no HTML template: no links
        self.assertEqual(curl(srv.url("/c/%s/1" % token(2, OTHER)))[0], 404)
        st, _, _ = curl(srv.url("/u/" + token(1, OTHER)), "-d", "List-Unsubscribe=One-Click")
        self.assertEqual(st, 200)
        srv.stop()
        self.assertEqual([(e["type"], e["email"]) for e in self.events()],
                         [("open", LIST[1])])
        self.assertEqual([(e["type"], e["email"], e["row"]) for e in self.events("out-autumn")],
                         [("open", "han.meimei@acme.example", "2"),
                          ("unsubscribe", "li.lei@acme.example", "1")])
        self.assertEqual([s["email"] for s in self.suppressed("suppress-autumn.txt")],
                         ["li.lei@acme.example"])

    # ---- X-Forwarded-For ----

    def test_forwarded_for_from_trusted_proxy(self):
        srv = self.start()   # trusted: 127.0.0.1/32, 10.0.0.0/8, 2001:db8:ffff::/48
        cases = [
            ("203.0.113.9", "203.0.113.9"),
            ("203.0.113.9, 10.1.2.3", "203.0.113.9"),
            ("198.51.100.7, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
            ("198.51.100.7,203.0.113.9 ,  10.9.9.9,10.1.2.3", "203.0.113.9"),
            ("10.0.0.1", "10.0.0.1"),                 # every hop trusted
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:ffff::5, 2001:DB8:0:0::2", "2001:db8::2"),
            ("[2001:db8::3]:443", "2001:db8::3"),
            ("203.0.113.10:5555", "203.0.113.10"),
            ("::ffff:203.0.113.11", "203.0.113.11"),
            ("garbage", "127.0.0.1"),
            ("203.0.113.9, garbage", "127.0.0.1"),
            ("garbage, 203.0.113.12", "203.0.113.12"),
            ("", "127.0.0.1"),
        ]
        for xff, _ in cases:
            st, _, _ = curl(srv.url("/o/%s.gif" % token(1)), "-H", "X-Forwarded-For: " + xff)
            self.assertEqual(st, 200)
        # two X-Forwarded-For lines are one list
        raw = Raw(srv.port)
        raw.send(("GET /o/%s.gif HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.20\r\n"
                  "X-Forwarded-For: 10.0.0.9\r\nConnection: close\r\n\r\n" % token(1)).encode())
        self.assertEqual(raw.response()[0], 200)
        raw.close()
        ips = [e["ip"] for e in self.events()]
        self.assertEqual(ips, [ip for _, ip in cases] + ["203.0.113.20"])
        srv.stop()

    def test_forwarded_for_from_untrusted_peer_ignored(self):
        self.variant("t2.ini", "trusted_proxies = 127.0.0.1/32, 10.0.0.0/8, 2001:db8:ffff::/48",
                     "trusted_proxies = 10.0.0.0/8")
        srv = self.start(configs=("t2.ini",))
        st, _, _ = curl(srv.url("/o/%s.gif" % token(1)), "-H", "X-Forwarded-For: 203.0.113.9")
        self.assertEqual(st, 200)
        self.variant("t3.ini", "trusted_proxies = 127.0.0.1/32, 10.0.0.0/8, 2001:db8:ffff::/48\n", "")
        srv.stop()
        srv = self.start(configs=("t3.ini",))
        st, _, _ = curl(srv.url("/o/%s.gif" % token(1)), "-H", "X-Forwarded-For: 203.0.113.9")
        self.assertEqual(st, 200)
        srv.stop()
        self.assertEqual([e["ip"] for e in self.events()], ["127.0.0.1", "127.0.0.1"])

    # ---- HTTP: connections, limits, timeouts ----

    def test_keep_alive_many_requests_one_connection(self):
        srv = self.start()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        sock = None
        for path, want in [("/o/%s.gif" % token(1), 200), ("/c/%s/2" % token(1), 302),
                           ("/nothing", 404), ("/u/%s" % token(1), 200),
                           ("/o/%s.gif" % token(2), 200)]:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, want, path)
            self.assertIsNone(r.getheader("Connection"))
            if sock is None:
                sock = c.sock
            self.assertIs(c.sock, sock, "a new connection for " + path)
        c.close()
        # HTTP/1.0: closed unless keep-alive is asked for
        raw = Raw(srv.port)
        raw.send(("GET /o/%s.gif HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % token(1)).encode())
        st, h, body = raw.response()
        self.assertEqual((st, h.get("connection"), body), (200, "keep-alive", GIF))
        raw.send(("GET /o/%s.gif HTTP/1.0\r\n\r\n" % token(1)).encode())
        st, h, _ = raw.response()
        self.assertEqual((st, h.get("connection")), (200, "close"))
        self.assertTrue(raw.closed_within(5))
        raw.close()
        # HTTP/1.1 Connection: close
        raw = Raw(srv.port)
        raw.send((get(srv.port, "/nothing")[:-2] + "Connection: close\r\n\r\n").encode())
        st, h, _ = raw.response()
        self.assertEqual((st, h.get("connection")), (404, "close"))
        self.assertTrue(raw.closed_within(5))
        raw.close()
        self.assertEqual(len(self.events()), 5)
        srv.stop()

    def test_pipelined_requests_in_order(self):
        srv = self.start()
        raw = Raw(srv.port)
        reqs = (get(srv.port, "/o/%s.gif" % token(1)) + get(srv.port, "/missing") +
                get(srv.port, "/c/%s/1" % token(2)) +
                "HEAD /o/%s.gif HTTP/1.1\r\nHost: h\r\n\r\n" % token(4) +
                "POST /u/%s HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-"
                "urlencoded\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click" % token(5) +
                get(srv.port, "/u/%s" % token(6)))
        raw.send(reqs.encode())
        got = [raw.response()[0], raw.response()[0], raw.response()[0],
               raw.response(head=True), raw.response()[0], raw.response()[0]]
        self.assertEqual(got[:3], [200, 404, 302])
        self.assertEqual((got[3][0], got[3][1]["content-length"], got[3][2]), (200, "43", b""))
        self.assertEqual(got[4:], [200, 200])
        raw.close()
        self.assertEqual([(e["type"], e["row"]) for e in self.events()],
                         [("open", "1"), ("click", "2"), ("open", "4"), ("unsubscribe", "5")])
        srv.stop()

    def test_limits(self):
        srv = self.start()
        cases = [
            # head over 8 KB
            ("GET /o/x.gif HTTP/1.1\r\nHost: h\r\nX-Big: " + "a" * 9000 + "\r\n\r\n", 431),
            # more than 64 header fields
            ("GET / HTTP/1.1\r\nHost: h\r\n" +
             "".join("X-%d: v\r\n" % i for i in range(70)) + "\r\n", 431),
            # a request line longer than 8 KB
            ("GET /" + "a" * 9000 + " HTTP/1.1\r\nHost: h\r\n\r\n", 431),
            # body over 4 KB, refused before it is sent
            ("POST /u/%s HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" % token(1), 413),
            # malformed
            ("GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400),
            ("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),   # no Host
            ("GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
        ]
        for req, want in cases:
            raw = Raw(srv.port)
            raw.send(req.encode("latin-1"))
            st, h, _ = raw.response()
            self.assertEqual(st, want, req[:40])
            self.assertEqual(h.get("connection"), "close")
            self.assertTrue(raw.closed_within(5), req[:40])
            raw.close()
        # the 8192-byte head is fine
        head = "GET /o/%s.gif HTTP/1.1\r\nHost: h\r\nX-Pad: " % token(1)
        head += "p" * (8192 - len(head) - 4) + "\r\n\r\n"
        self.assertEqual(len(head), 8192)
        raw = Raw(srv.port)
        raw.send(head.encode())
        self.assertEqual(raw.response()[0], 200)
        raw.close()
        # a client that keeps sending after its 431 still gets the 431
        raw = Raw(srv.port)
        try:
            raw.send(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"z" * 200000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertEqual(raw.response()[0], 431)
        raw.close()
        self.assertEqual(len(self.events()), 1)
        srv.stop()

    def test_slowloris_closed(self):
        srv = self.start(opts=("--idle-timeout", "1s"))
        # an unfinished request, trickled: the deadline counts from its first byte
        raw = Raw(srv.port)
        t0 = time.monotonic()
        for ch in "GET /o/":
            raw.send(ch.encode())
            time.sleep(0.2)
        self.assertTrue(raw.closed_within(4), "slow request not closed")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 3.5)
        self.assertTrue(raw.buf.startswith(b"HTTP/1.1 408 "), raw.buf[:40])
        raw.close()
        # a connection that sends nothing
        raw = Raw(srv.port)
        t0 = time.monotonic()
        self.assertTrue(raw.closed_within(4))
        self.assertGreater(time.monotonic() - t0, 0.8)
        self.assertEqual(raw.buf, b"")
        raw.close()
        # keep-alive idle after a request: closed, without a 408
        raw = Raw(srv.port)
        raw.send(get(srv.port, "/o/%s.gif" % token(1)).encode())
        self.assertEqual(raw.response()[0], 200)
        self.assertTrue(raw.closed_within(4))
        self.assertEqual(raw.buf, b"")
        raw.close()
        srv.stop()

    def test_default_idle_timeout_is_longer(self):
        srv = self.start()
        raw = Raw(srv.port)
        raw.send(b"GET /o/")
        self.assertFalse(raw.closed_within(2.5), "closed before the 10 s default")
        raw.send(("%s.gif HTTP/1.1\r\nHost: h\r\n\r\n" % token(1)).encode())
        self.assertEqual(raw.response()[0], 200)
        raw.close()
        srv.stop()

    def test_connection_cap(self):
        srv = self.start(opts=("--max-connections", "2"))
        a, b = Raw(srv.port), Raw(srv.port)
        for r in (a, b):
            r.send(get(srv.port, "/missing").encode())
            self.assertEqual(r.response()[0], 404)
        c = Raw(srv.port)   # the kernel accepts; edm does not serve it yet
        c.send(get(srv.port, "/o/%s.gif" % token(1)).encode())
        r, _, _ = select.select([c.s], [], [], 1.0)
        self.assertEqual(r, [], "a third connection was served")
        a.close()
        self.assertEqual(c.response()[0], 200)
        for r in (b, c):
            r.close()
        srv.stop()

    # ---- start-up and stop ----

    def test_sigterm_finishes_requests_in_progress(self):
        srv = self.start()
        raw = Raw(srv.port)
        idle = Raw(srv.port)
        idle.send(get(srv.port, "/missing").encode())
        self.assertEqual(idle.response()[0], 404)
        half = get(srv.port, "/o/%s.gif" % token(1))
        raw.send(half[:20].encode())
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        self.assertTrue(idle.closed_within(5), "idle keep-alive connection not closed")
        time.sleep(0.3)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        raw.send(half[20:].encode())
        st, h, body = raw.response()
        self.assertEqual((st, h.get("connection"), body), (200, "close", GIF))
        self.assertTrue(raw.closed_within(5))
        raw.close()
        idle.close()
        self.assertEqual(srv.proc.wait(30), 0, srv.stderr())
        srv.reader.join(5)
        srv.check_sanitizers()
        self.assertIn("terminated", srv.stderr())
        self.assertEqual(len(self.events()), 1)

    def test_sigint_exits_0(self):
        srv = self.start()
        srv.stop(signal.SIGINT)
        self.assertIn("interrupted", srv.stderr())

    def run_edm(self, *args, env=None):
        e = dict(os.environ)
        e[SECRET_ENV] = SECRET.decode()
        if env is not None:
            e.update(env)
        e = {k: v for k, v in e.items() if v is not None}
        p = subprocess.run([EDM, "track"] + list(args), cwd=self.dir, env=e,
                           capture_output=True, timeout=60)
        for bad in (b"runtime error:", b"AddressSanitizer", b"LeakSanitizer"):
            self.assertNotIn(bad, p.stderr)
        return p

    def test_refusals_at_start(self):
        self.write_config("plain.ini", "[campaign]\nname = plain\nrecipients = list.csv\n")
        p = self.run_edm("plain.ini")
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(b"no [tracking] section", p.stderr)
        p = self.run_edm("track.ini", env={SECRET_ENV: None})
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(SECRET_ENV.encode(), p.stderr)
        p = self.run_edm("track.ini", env={SECRET_ENV: "short"})
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(b"at least 32", p.stderr)
        self.variant("badproxy.ini", "10.0.0.0/8", "10.0.0.0/33")
        p = self.run_edm("badproxy.ini")
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(b"10.0.0.0/33", p.stderr)
        self.variant("port.ini", "listen = 127.0.0.1:0", "listen = 127.0.0.1:1",
                     src="other.ini")
        p = self.run_edm("track.ini", "port.ini")
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(b"--listen", p.stderr)
        p = self.run_edm("track.ini", "track.ini")
        self.assertEqual(p.returncode, EX_CONFIG)
        p = self.run_edm()
        self.assertEqual(p.returncode, 64)
        p = self.run_edm("--listen", "nowhere", "track.ini")
        self.assertEqual(p.returncode, 64)
        p = self.run_edm("missing.ini")
        self.assertEqual(p.returncode, 66)
        p = self.run_edm("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"Usage: edm track", p.stdout)

    def test_listen_option_overrides_config(self):
        self.variant("fixed.ini", "listen = 127.0.0.1:0", "listen = 127.0.0.1:1")
        srv = self.start(configs=("fixed.ini",), opts=("--listen", "127.0.0.1:0"))
        self.assertEqual(srv.host, "127.0.0.1")
        self.assertNotEqual(srv.port, 1)
        self.assertEqual(curl(srv.url("/o/%s.gif" % token(1)))[0], 200)
        srv.stop()

    def test_ipv6_loopback(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        srv = self.start(opts=("--listen", "[::1]:0"))
        self.assertEqual(srv.host, "[::1]")
        st, _, _ = curl("http://[::1]:%d/o/%s.gif" % (srv.port, token(1)))
        self.assertEqual(st, 200)
        srv.stop()
        self.assertEqual(self.events()[0]["ip"], "::1")


if __name__ == "__main__":
    if not os.access(CURL, os.X_OK):
        print("test_track.py: %s not found (Debian package curl): skipped" % CURL)
        sys.exit(77)   # meson: skipped
    unittest.main(argv=sys.argv[:1], verbosity=2)
