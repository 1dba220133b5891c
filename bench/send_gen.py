#!/usr/bin/env python3
"""send_gen.py - inputs of the delivery benchmark (bench/send.sh).

usage: send_gen.py list OUT.csv ROWS [--domains N]
       send_gen.py templates DIR

list: a recipient CSV, header email,first_name,last_name,city,code (the
five template variables), ASCII, LF line ends, every address distinct
(the row number ends the local part) and valid, so that every row is
delivered: the benchmark counts deliveries, not rejections. Row i goes to
domain d(i mod N + 1).example, so the N domains get equal shares,
interleaved (the scheduler sees all of them from the first slice on).
N = 1 puts every row on one domain.

templates: DIR/body.txt (~2 KB) and DIR/body.html (~3 KB) of ASCII prose
using {{first_name}} {{last_name}} {{city}} {{code}} {{email}} and the
{{unsubscribe_url}} built-in; one paragraph per line, longer than 76
characters, so quoted-printable soft breaks happen as in real mail.

Contract: the same arguments give the same bytes. It does not: use the
network, write anything but the named outputs (through a .tmp file and a
rename, so an interrupted run leaves no half file), or produce invalid,
duplicate or non-ASCII rows (bench/gen_list.py is the realistic, messy
list; this one measures delivery alone).
"""
import argparse
import os
import sys

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael",
         "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan",
         "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
        "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
        "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee"]
CITIES = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol",
          "Clinton", "Fairview", "Salem", "Madison", "Georgetown", "Arlington",
          "Ashland", "Dover", "Oxford", "Burlington", "Manchester", "Milton",
          "Newport", "Auburn", "Lexington"]

SENTENCES = [
    "Our spring collection has arrived and we picked a few things we think you will like.",
    "Every order this week ships free to {{city}} and arrives within three working days.",
    "Members save an extra ten percent at checkout when they use the code printed below.",
    "We restocked the linen shirts, the canvas backpacks and the ceramic coffee mugs.",
    "If something does not fit, returns are free for thirty days, no questions asked.",
    "Our shop in {{city}} now opens at eight in the morning on weekdays and nine on Saturdays.",
    "Thank you for being with us for another season, it means a lot to a small team.",
    "You can change which newsletters you receive at any time from your account page.",
]
CODE_LINE = "Your personal code is {{code}}, {{first_name}}."
STYLE = ('style="font-family:Arial,Helvetica,sans-serif;font-size:15px;'
         'line-height:1.6;color:#333333;margin:0 0 16px 0"')


# Write text to path through path.tmp and a rename.
def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


# Paragraphs of 3-5 sentences, the code line in the second one, while one
# more brings the body (head and tail included) closer to target bytes.
def body(target, wrap, head, tail):
    out = [head]
    size = len(head) + len(tail) + 2
    n = i = 0
    while True:
        k = 3 + n % 3
        p = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(k))
        i += k
        if n == 1:
            p = CODE_LINE + " " + p
        line = wrap(p)
        if n > 0 and abs(size + len(line) + 1 - target) >= abs(size - target):
            break
        out.append(line)
        size += len(line) + 1
        n += 1
    out.append(tail)
    return "\n".join(out) + "\n"


def templates(d):
    os.makedirs(d, exist_ok=True)
    text = body(2048, lambda p: p + "\n", "Hello {{first_name}} {{last_name}},\n",
                "\nThis message was sent to {{email}}.\n"
                "Unsubscribe with one click: {{unsubscribe_url}}")
    html = body(3072, lambda p: "<p " + STYLE + ">" + p + "</p>",
                '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Spring news</title></head>\n'
                '<body style="margin:0;padding:0;background:#f4f4f4">'
                '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
                '<tr><td align="center" style="padding:24px">\n'
                "<p " + STYLE + ">Hello {{first_name}} {{last_name}},</p>",
                "<p " + STYLE + '><a href="https://shop.example/offer?code={{code}}&amp;city={{city}}"'
                ' style="color:#0b57d0">See the offer</a></p>\n'
                '<p style="font-size:12px;color:#888888">This message was sent to {{email}}. '
                '<a href="{{unsubscribe_url}}" style="color:#888888">Unsubscribe</a></p>\n'
                "</td></tr></table></body></html>")
    for name, t in (("body.txt", text), ("body.html", html)):
        write_file(os.path.join(d, name), t)
        print("send_gen: %s/%s %d bytes" % (d, name, len(t)), file=sys.stderr)


def recipients(out, rows, domains):
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="") as f:
        f.write("email,first_name,last_name,city,code\n")
        chunk = []
        for i in range(1, rows + 1):
            fn = FIRST[i % 20]
            ln = LAST[(i // 20) % 20]
            chunk.append("%s.%s%d@d%d.example,%s,%s,%s,C%07d\n" % (
                fn.lower(), ln.lower(), i, i % domains + 1, fn, ln,
                CITIES[(i // 400) % 20], (i * 7919) % 10000000))
            if len(chunk) == 65536:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    os.replace(tmp, out)
    print("send_gen: %s: %d rows over %d domain(s)" % (out, rows, domains), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description="Inputs of bench/send.sh.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    li = sub.add_parser("list", help="write the recipient CSV")
    li.add_argument("out")
    li.add_argument("rows", type=int)
    li.add_argument("--domains", type=int, default=20)
    te = sub.add_parser("templates", help="write body.txt and body.html")
    te.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "list":
        if a.rows < 1 or a.domains < 1:
            ap.error("ROWS and --domains must be >= 1")
        recipients(a.out, a.rows, a.domains)
    else:
        templates(a.dir)


if __name__ == "__main__":
    main()
