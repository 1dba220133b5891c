#!/usr/bin/python3
"""peer_email_validator.py - the Python peer of `edm validate --no-dns` for bench/validate.sh.

usage: /usr/bin/python3 bench/peer_email_validator.py RECIPIENTS.csv OUT_DIR

What it does (what a Python shop would write around Debian's
python3-email-validator): stream the CSV (UTF-8, a BOM dropped), take the
`email` column (header matched ignoring case and blanks), strip blanks, check
the syntax with email_validator.validate_email() with deliverability off
(no DNS), normalise (the validator's `email`: NFC, domain lowercased/IDN
form), drop case-insensitive duplicates of the normalised address, and write
OUT_DIR/clean.csv (kept rows, original columns) and OUT_DIR/rejects.csv
(original columns + reason, detail, row), both mode 0600 like edm's.

It passes test_environment=True: the benchmark list uses .test domains (RFC
6761), which email_validator otherwise refuses as special-use; the flag only
lifts that refusal (and DNS, which is off anyway), so every other syntax
rule still runs.

It does not: check disposable domains, role accounts, typos or suppression
(edm does), handle other encodings or delimiters, or look anything up.
Prints on stdout, one line each:
    peer: <rows> rows in <seconds> s = <rate> rows/s
    peer: kept=<n> rejected=<n> syntax=<n> duplicate=<n>
Exit status: 0, or 65 for a file without an email column, 66 if unreadable.
"""
import csv
import os
import sys
import time

from email_validator import EmailNotValidError, validate_email

EX_DATAERR = 65
EX_NOINPUT = 66


# Open PATH for writing with mode 0600: the lists hold personal data.
def open_private(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return open(fd, "w", encoding="utf-8", newline="")


# Index of the address column: exact "email" first, then ignoring case/blanks.
def email_index(header):
    if "email" in header:
        return header.index("email")
    for i, name in enumerate(header):
        if name.strip().lower() == "email":
            return i
    return -1


def main():
    if len(sys.argv) != 3:
        print("usage: peer_email_validator.py RECIPIENTS.csv OUT_DIR", file=sys.stderr)
        return 64
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, mode=0o700, exist_ok=True)
    t0 = time.monotonic()
    try:
        fin = open(src, newline="", encoding="utf-8-sig")
    except OSError as e:
        print("peer: %s: %s" % (src, e.strerror), file=sys.stderr)
        return EX_NOINPUT
    seen = set()
    rows = syntax = dups = 0
    with fin, open_private(os.path.join(out, "clean.csv")) as fc, \
            open_private(os.path.join(out, "rejects.csv")) as fr:
        rd = csv.reader(fin)
        header = next(rd, None)
        col = email_index(header or [])
        if col < 0:
            print("peer: %s: no email column" % src, file=sys.stderr)
            return EX_DATAERR
        wc = csv.writer(fc, lineterminator="\n")
        wr = csv.writer(fr, lineterminator="\n")
        wc.writerow(header)
        wr.writerow(header + ["reason", "detail", "row"])
        width = len(header)
        for row in rd:
            if not row:
                continue        # blank line: skipped, like edm
            rows += 1
            line = rows         # 1-based over data records, like edm's `row`
            if len(row) != width:
                syntax += 1
                wr.writerow(row + ["malformed", "%d fields" % len(row), line])
                continue
            try:
                v = validate_email(row[col].strip(), check_deliverability=False,
                                   test_environment=True)
            except EmailNotValidError as e:
                syntax += 1
                wr.writerow(row + ["syntax", str(e), line])
                continue
            key = v.email.lower()
            if key in seen:
                dups += 1
                wr.writerow(row + ["duplicate", "", line])
                continue
            seen.add(key)
            wc.writerow(row)
    secs = time.monotonic() - t0
    print("peer: %d rows in %.2f s = %.0f rows/s" % (rows, secs, rows / secs if secs > 0 else 0))
    print("peer: kept=%d rejected=%d syntax=%d duplicate=%d" % (
        rows - syntax - dups, syntax + dups, syntax, dups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
