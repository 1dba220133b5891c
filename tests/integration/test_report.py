#!/usr/bin/python3
"""`edm report` end to end: the fixture campaign (tests/fixtures/report) in a
temp dir, the real binary, report.csv read back with Python's csv module and
checked cell by cell, the summary on stdout number by number, and report.html
rendered by headless Chromium (a screenshot and the DOM it built).

usage: test_report.py EDM

The fixture covers every case: each status (pending included), async bounces
and complaints, delayed events, machine opens, the three machine click rules,
a Chinese name, formula-looking fields (=cmd, -kim@..., +Ned, a complaint
category =HYPERLINK(...)), hostile <script>/<img> in names, a URL and a
bounce category, a torn last results line, rows past the end of the list.
Chromium runs with a private profile and HOME in a temp dir, under a timeout.
"""
import csv
import html.parser
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

EDM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/edm"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "report"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CONFIG = 64, 65, 66, 78

HEADER = ["email", "status", "category", "code", "sent_at", "opened", "opens",
          "first_open_at", "clicked", "clicks", "first_click_at", "unsubscribed",
          "async", "machine_opens", "machine_clicks", "name", "city", "Plan"]

D = "2026-11-22T"
# One line per list row, in list order (tests/fixtures/report/list.csv).
EXPECTED = [
    # ann: 2 human opens, the same link twice 90 s apart (a double visit, human)
    ["ann@example.com", "delivered", "", "250", D + "08:00:01Z", "1", "2", D + "09:05:00Z",
     "1", "2", D + "09:06:00Z", "0", "0", "0", "0", "Ann", "Paris", "gold"],
    ["bob@example.net", "bounced", "bad-mailbox", "550", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Bob", "Rome, Italy", "silver"],
    # carl: a proxy open (machine=1); links 1 and 2 five seconds apart (a scanner:
    # both machine, and out of order in events.csv); link 1 again an hour later
    ["carl@example.com", "delivered", "", "250", D + "08:00:03Z", "1", "1", D + "12:00:00Z",
     "1", "1", D + "13:00:00Z", "0", "0", "1", "2", "王小明", "北京", "gold"],
    # dora: a click 5 s after sending (machine), an unsubscribe
    ["dora@example.org", "delivered", "", "250", D + "08:00:04Z", "1", "1", D + "08:30:00Z",
     "0", "0", "", "1", "0", "0", "1", "'=cmd|' /C calc'!A0", "Berlin", "free"],
    # eve: delivered, then an async bounce (edm ingest)
    ["eve@example.com", "bounced", "inactive-mailbox", "5.2.1", D + "08:00:05Z", "0", "0", "",
     "0", "0", "", "0", "1", "0", "0", '<script>alert("x")</script>', "Oslo", "free"],
    # fred: a complaint, then a bounce event: complained wins
    ["fred@example.net", "complained", "abuse", "250", D + "08:00:06Z", "1", "1", D + "09:00:00Z",
     "0", "0", "", "0", "0", "0", "0", "Fred", "Lyon", "silver"],
    # gus: expired (a delayed event changes nothing)
    ["gus@example.org", "expired", "message-expired", "451", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Gus", "Madrid", "free"],
    ["hal@example.com", "suppressed", "suppressed", "", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Hal", "Porto", "free"],
    ["not-an-address", "skipped", "syntax", "", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Nobody", "Nowhere", "free"],
    # ivy: no result yet, only a delayed event
    ["ivy@example.com", "pending", "", "", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Ivy", "Vienna", "gold"],
    # jo: a machine open and a click flagged machine=1 by edm track
    ["jo@example.org", "delivered", "", "250", D + "08:00:11Z", "0", "0", "", "0", "0", "",
     "0", "0", "1", "1", "Jo", "Prague", "free"],
    ["'-kim@example.com", "delivered", "", "250", D + "08:00:12Z", "1", "1", D + "11:00:00Z",
     "1", "1", D + "11:01:00Z", "0", "0", "0", "0", "Kim", "Seoul", "gold"],
    # lee: the list's "  lee@example.com " trimmed
    ["lee@example.com", "bounced", "spam-related", "554", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "Lee", "Tokyo", "free"],
    ["mia@example.org", "bounced", "<img src=x onerror=alert(1)>", "5.0.0", D + "08:00:14Z",
     "0", "0", "", "0", "0", "", "0", "1", "0", "0", "Mia", "Lima", "free"],
    ["ned@example.net", "complained", "'=HYPERLINK(\"http://evil.example\",\"x\")", "250",
     D + "08:00:15Z", "0", "0", "", "0", "0", "", "0", "0", "0", "0", "'+Ned", "Quito", "free"],
    # a malformed row: skipped; its missing columns empty
    ["broken", "skipped", "malformed", "", "", "0", "0", "", "0", "0", "",
     "0", "0", "0", "0", "", "", ""],
]

SUMMARY = {
    "sent": "12", "delivered": "7", "bounced": "4", "expired": "1", "pending": "1",
    "suppressed": "1", "skipped": "2", "complained": "2", "opened": "5", "clicked": "3",
    "click-to-open": "60.0%", "unsubscribed": "1", "machine opens": "2",
    "machine clicks": "4",
}
CATEGORIES = {"<img src=x onerror=alert(1)>": 1, "bad-mailbox": 1,
              "inactive-mailbox": 1, "spam-related": 1}
DOMAINS = [["example.com", "5", "60.0%", "40.0%", "100.0%"],
           ["example.org", "4", "50.0%", "25.0%", "50.0%"],
           ["example.net", "3", "66.7%", "33.3%", "50.0%"]]
HOSTILE_URL = 'https://acme.example/<script>alert(1)</script>?a="b"&c=d'
LINKS = [["3", "2", "https://acme.example/sale"], ["1", "1", HOSTILE_URL]]


class Campaign:
    """A copy of the fixture campaign in a temp dir (results and events in out/)."""

    def __init__(self, tc, cleanup=None):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="edm-report-")
        (cleanup or tc.addCleanup)(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out, 0o700)
        for name in ("c.ini", "list.csv"):
            shutil.copy(os.path.join(FIXTURES, name), self.dir)
        for name in ("results.csv", "events.csv"):
            shutil.copy(os.path.join(FIXTURES, name), self.out)
        self.config = os.path.join(self.dir, "c.ini")

    def path(self, name):
        return os.path.join(self.out, name)

    def run(self, *args, expect=0):
        p = subprocess.run([EDM, "report"] + list(args) + [self.config],
                           capture_output=True, text=True, timeout=120)
        self.tc.assertEqual(p.returncode, expect, "exit %d\nstdout:\n%s\nstderr:\n%s"
                            % (p.returncode, p.stdout, p.stderr))
        return p

    def report(self, encoding="utf-8"):
        with open(self.path("report.csv"), newline="", encoding=encoding) as f:
            return list(csv.reader(f))


class TestReportCsv(unittest.TestCase):
    def check_rows(self, rows):
        self.assertEqual(rows[0], HEADER)
        self.assertEqual(len(rows) - 1, len(EXPECTED), "one line per list row")
        for i, (got, want) in enumerate(zip(rows[1:], EXPECTED), start=1):
            self.assertEqual(len(got), len(HEADER), "row %d: %r" % (i, got))
            for col, g, w in zip(HEADER, got, want):
                with self.subTest(row=i, column=col):
                    self.assertEqual(g, w, "row %d (%s) column %s" % (i, want[0], col))

    def test_every_cell(self):
        c = Campaign(self)
        c.run()
        self.check_rows(c.report())
        with open(c.path("report.csv"), "rb") as f:
            raw = f.read()
        self.assertFalse(raw.startswith(b"\xef\xbb\xbf"), "no BOM without --excel")
        self.assertNotIn(b"\r\n", raw)
        self.assertTrue(raw.endswith(b"\n"))

    def test_private_and_atomic(self):
        c = Campaign(self)
        c.run()
        for name in ("report.csv", "report.html"):
            mode = stat.S_IMODE(os.stat(c.path(name)).st_mode)
            self.assertEqual(mode, 0o600, "%s mode %o" % (name, mode))
        self.assertEqual(sorted(os.listdir(c.out)),
                         ["events.csv", "report.csv", "report.html", "results.csv"])
        # a second run replaces the files with the same content
        with open(c.path("report.csv"), "rb") as f:
            first = f.read()
        c.run()
        with open(c.path("report.csv"), "rb") as f:
            self.assertEqual(f.read(), first)

    def test_excel(self):
        c = Campaign(self)
        c.run("--excel")
        with open(c.path("report.csv"), "rb") as f:
            raw = f.read()
        self.assertTrue(raw.startswith(b"\xef\xbb\xbfemail,status,"), raw[:20])
        lines = raw[3:].split(b"\r\n")
        self.assertEqual(lines[-1], b"", "the file ends with CRLF")
        self.assertEqual(len(lines) - 1, len(EXPECTED) + 1, "every line ends with CRLF")
        self.assertNotIn(b"\n", b"".join(lines), "no bare LF")
        self.check_rows(c.report(encoding="utf-8-sig"))

    def test_format_csv(self):
        c = Campaign(self)
        p = c.run("--format", "csv")
        self.assertTrue(os.path.exists(c.path("report.csv")))
        self.assertFalse(os.path.exists(c.path("report.html")))
        self.assertIn("report.csv", p.stdout)
        self.assertNotIn("report.html", p.stdout)
        self.assertIn("edm report: campaign spring-sale: 16 recipients", p.stdout)

    def test_format_html(self):
        c = Campaign(self)
        p = c.run("--format", "html")
        self.assertFalse(os.path.exists(c.path("report.csv")))
        self.assertTrue(os.path.exists(c.path("report.html")))
        self.assertIn("report.html", p.stdout)
        c.run("--format", "both")
        self.assertTrue(os.path.exists(c.path("report.csv")))

    def test_usage_errors(self):
        c = Campaign(self)
        p = c.run("--format", "pdf", expect=EX_USAGE)
        self.assertIn("csv, html or both", p.stderr)
        c.run("--bogus", expect=EX_USAGE)
        p = subprocess.run([EDM, "report"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, EX_USAGE)
        p = subprocess.run([EDM, "report", "--help"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--excel", p.stdout)
        self.assertIn("formula guard", p.stdout)
        self.assertIn("always applied", p.stdout)

    def test_missing_results(self):
        c = Campaign(self)
        os.unlink(c.path("results.csv"))
        p = c.run(expect=EX_NOINPUT)
        self.assertIn("run edm send first", p.stderr)
        self.assertFalse(os.path.exists(c.path("report.csv")))
        self.assertFalse(os.path.exists(c.path("report.html")))

    def test_missing_config_and_list(self):
        c = Campaign(self)
        p = subprocess.run([EDM, "report", os.path.join(c.dir, "nope.ini")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, EX_NOINPUT)
        os.unlink(os.path.join(c.dir, "list.csv"))
        p = c.run(expect=EX_NOINPUT)
        self.assertIn("list.csv", p.stderr)

    def test_unknown_report_column(self):
        c = Campaign(self)
        with open(c.config, encoding="utf-8") as f:
            text = f.read()
        with open(c.config, "w", encoding="utf-8") as f:
            f.write(text.replace("report_columns = name, city, PLAN",
                                 "report_columns = name, segment"))
        p = c.run(expect=EX_CONFIG)
        self.assertIn("report_columns", p.stderr)
        self.assertIn('"segment"', p.stderr)
        self.assertRegex(p.stderr, r"c\.ini:\d+")
        self.assertIn('"Plan"', p.stderr, "the columns that are there are listed")
        self.assertFalse(os.path.exists(c.path("report.csv")))

    def test_no_report_columns_no_events(self):
        c = Campaign(self)
        with open(c.config, encoding="utf-8") as f:
            text = f.read()
        with open(c.config, "w", encoding="utf-8") as f:
            f.write(text.replace("report_columns = name, city, PLAN\n", ""))
        os.unlink(c.path("events.csv"))
        c.run()
        rows = c.report()
        self.assertEqual(rows[0], HEADER[:15])
        by_email = {r[0]: r for r in rows[1:]}
        self.assertEqual(len(rows) - 1, len(EXPECTED))
        # without events: the results.csv status, nothing opened or clicked
        self.assertEqual(by_email["eve@example.com"][1:5],
                         ["delivered", "", "250", D + "08:00:05Z"])
        self.assertEqual(by_email["fred@example.net"][1], "delivered")
        for r in rows[1:]:
            self.assertEqual(r[5:], ["0", "0", "", "0", "0", "", "0", "0", "0", "0"], r[0])

    def test_bad_results(self):
        c = Campaign(self)
        with open(c.path("results.csv"), "w") as f:
            f.write('time,status\n"unterminated\n')
        p = c.run(expect=EX_DATAERR)
        self.assertIn("results.csv", p.stderr)


def parse_summary(text):
    """stdout -> (numbers by label, categories, domain rows, link rows)."""
    nums, cats, doms, links = {}, {}, [], []
    section = None
    for line in text.splitlines():
        if line.startswith("domains by sent"):
            section = "domains"
            continue
        if line.startswith("links by clicks"):
            section = "links"
            continue
        if line.startswith("  report."):
            continue
        if section == "domains":
            if not line.lstrip().startswith("domain "):
                doms.append(line.split())
            continue
        if section == "links":
            m = re.match(r"^\s+(\d+)\s+(\d+)  (.*)$", line)
            if m:
                links.append([m.group(1), m.group(2), m.group(3)])
            continue
        m = re.match(r"^    (.+?)\s+(\d+)$", line)
        if m:
            cats[m.group(1)] = int(m.group(2))
            continue
        m = re.match(r"^  ([a-z][a-z-]*(?: [a-z-]+)*)\s+(\d+(?:\.\d+)?%?)(.*)$", line)
        if m:
            nums[m.group(1)] = (m.group(2), m.group(3))
    return nums, cats, doms, links


class TestSummary(unittest.TestCase):
    def test_numbers(self):
        c = Campaign(self)
        p = c.run()
        out = p.stdout
        self.assertTrue(out.startswith("edm report: campaign spring-sale: 16 recipients\n"),
                        out)
        nums, cats, doms, links = parse_summary(out)
        self.assertEqual({k: v[0] for k, v in nums.items()}, SUMMARY)
        self.assertIn("58.3% of sent", nums["delivered"][1])
        self.assertIn("33.3% of sent; 2 after delivery", nums["bounced"][1])
        self.assertIn("71.4% of delivered; 6 including machine opens", nums["opened"][1])
        self.assertIn("42.9% of delivered; 5 including machine clicks", nums["clicked"][1])
        self.assertIn("14.3% of delivered", nums["unsubscribed"][1])
        self.assertIn("28.6% of delivered", nums["complained"][1])
        self.assertEqual(cats, CATEGORIES)
        self.assertEqual(doms, DOMAINS)
        self.assertEqual(links, LINKS)
        self.assertIn("report.csv   " + c.path("report.csv"), out)
        self.assertIn("report.html  " + c.path("report.html"), out)
        # results.csv and events.csv name row 40 of a 16-row list
        self.assertIn("2 lines of results.csv or events.csv name rows past the end", p.stderr)
        # the same numbers come out whatever the format
        self.assertEqual(c.run("--format", "csv").stdout.split("  report.")[0],
                         out.split("  report.")[0])


class TagCheck(html.parser.HTMLParser):
    """Every element and attribute of a page, for what must not be there."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.style = set(), [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        (self.style if self._in_style else self.text).append(data)


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "p",
                "h1", "h2", "h3", "div", "section", "svg", "text", "tspan", "rect", "line",
                "g", "table", "thead", "tbody", "tr", "th", "td", "span", "footer"}


def png_info(path):
    """(width, height, distinct byte values of the decompressed image data)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return width, height, len(set(zlib.decompress(idat)))


class TestHtml(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="edm-report-html-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.c = Campaign(cls, cleanup=cls.addClassCleanup)
        p = subprocess.run([EDM, "report", cls.c.config], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        cls.html_path = cls.c.path("report.html")
        with open(cls.html_path, encoding="utf-8") as f:
            cls.page = f.read()

    def chromium(self, *args):
        if not os.path.exists(CHROMIUM):
            self.skipTest("chromium is not installed")
        home = tempfile.mkdtemp(dir=self.tmp)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-extensions",
                "--user-data-dir=" + os.path.join(home, "profile")] + list(args) + [
                    "file://" + self.html_path]
        return subprocess.run(argv, capture_output=True, timeout=120,
                              env=dict(os.environ, HOME=home))

    def assertAll(self, haystack, needles):
        for n in needles:
            self.assertIn(n, haystack)

    def test_self_contained(self):
        t = TagCheck()
        t.feed(self.page)
        self.assertLessEqual(t.tags, ALLOWED_TAGS, "unexpected elements")
        for tag, k, v in t.attrs:
            self.assertNotIn(k, ("src", "href", "xlink:href", "action", "srcset"),
                             (tag, k, v))
            self.assertFalse(k.startswith("on"), (tag, k, v))
            if not (tag == "meta" and k == "content"):
                self.assertNotRegex(v, r"(?i)https?:|//|url\(", (tag, k, v))
        style = "".join(t.style)
        self.assertNotRegex(style, r"(?i)url\(|@import|https?:")
        self.assertIn("Content-Security-Policy", self.page)
        # the hostile data is there, as text
        text = "".join(t.text)
        self.assertIn(HOSTILE_URL, text)
        self.assertIn("<img src=x onerror=alert(1)>", text)
        self.assertNotIn("<script", self.page)
        self.assertNotIn("<img", self.page)

    def test_dom(self):
        p = self.chromium("--dump-dom")
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
        dom = p.stdout.decode("utf-8")
        self.assertIn("</html>", dom)
        t = TagCheck()
        t.feed(dom)
        self.assertLessEqual(t.tags, ALLOWED_TAGS, "the DOM gained elements")
        self.assertNotIn("script", t.tags)
        self.assertNotIn("img", t.tags)
        self.assertNotIn("<script", dom)
        text = " ".join(" ".join(t.text).split())
        self.assertAll(text, [
            "Campaign report", "spring-sale", "16 recipients",
            "Delivery funnel", "Opens and clicks over time", "Bounces by category",
            "The numbers", "Domains", "Top links",
            "Sent 12", "Delivered 7 58.3% of sent", "Opened 5 71.4% of delivered",
            "Clicked 3 42.9% of delivered", "Bounced 4 33.3% of sent",
            "Unsubscribed 1 14.3% of delivered", "Complaints 2 28.6% of delivered",
            "7 58.3% of sent", "5 71.4% of delivered", "3 60.0% of opened",
            "bad-mailbox", "inactive-mailbox", "spam-related",
            "<img src=x onerror=alert(1)>",
            "Click-to-open rate 60.0%", "Expired 1", "Pending 1", "Suppressed 1",
            "Skipped 2", "Unique opens 5", "Unique clicks 3", "Machine opens 2",
            "Machine clicks 4",
            "example.com 5 60.0% 40.0% 100.0%", "example.org 4 50.0% 25.0% 50.0%",
            "example.net 3 66.7% 33.3% 50.0%",
            "1 https://acme.example/sale 3 2", "3 " + HOSTILE_URL + " 1 1",
            "Nov 22 08:00", "per hour",
        ])

    def test_screenshot(self):
        png = os.path.join(self.tmp, "report.png")
        p = self.chromium("--screenshot=" + png, "--window-size=1200,2000",
                          "--hide-scrollbars")
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
        self.assertTrue(os.path.exists(png))
        self.assertGreater(os.path.getsize(png), 20000, "a near-empty screenshot")
        width, height, distinct = png_info(png)
        self.assertEqual((width, height), (1200, 2000))
        self.assertGreater(distinct, 100, "the page rendered next to nothing")
        if os.environ.get("EDM_REPORT_PNG"):  # to look at it
            shutil.copy(png, os.environ["EDM_REPORT_PNG"])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
