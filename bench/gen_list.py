#!/usr/bin/env python3
"""gen_list.py - write a deterministic, realistic recipient list for the benchmarks.

usage: gen_list.py OUT.csv ROWS [--seed S]

Contract: the same ROWS and seed give the same bytes (for a given Python 3
version: it uses random.Random's documented random()/choices()). The file is
UTF-8, LF line ends, RFC 4180 quoting, header
    email,first_name,last_name,city,code
and mixes what a real consumer sign-up list holds:
  - a skewed domain mix: a few big providers (gmail/qq/163/outlook/yahoo-like
    names under .test) and a long log-uniform tail (d1.example ... d20000.example);
  - about 2% duplicates of an earlier address that differ only in case;
  - about 1% syntax errors (missing @, double dots, inner spaces, ...);
  - a few disposable (mailinator.com ...), role (info@ ...) and typo
    (gmial.com, qq.con ...) rows: one per thousand each;
  - a few IDN domains, blanks around some addresses;
  - Chinese and Latin names and cities, some quoted fields holding commas
    (and a rare doubled quote).
It does not: resolve anything, or promise exact counts (the shares are
probabilities; it prints what it actually wrote on stderr).
Only .test/.example domains are used, except the disposable and typo rows,
which must name real domains for the rules to apply (they are never mailed
or looked up: the benchmark runs with DNS off).
"""
import argparse
import csv
import random
import sys

# Big providers and their weight in percent of the non-tail rows: roughly the
# shape of a Chinese/Western consumer list (one giant, a few large, the rest small).
BIG = [("gmail.test", 30), ("qq.test", 18), ("163.test", 10), ("outlook.test", 8),
       ("yahoo.test", 5), ("126.test", 4), ("hotmail.test", 3), ("icloud.test", 2),
       ("sina.test", 2), ("foxmail.test", 2)]
# Share of rows whose domain comes from the long tail of small domains.
TAIL_SHARE = 0.20
# Number of distinct tail domains; drawn log-uniformly so d1..d9 are common and
# d10000+ rare, like company domains in a real list.
TAIL_DOMAINS = 20000

# Event shares (per row). Sum must stay well below 1.
P_DUP = 0.02       # repeat an earlier address with different case
P_SYNTAX = 0.01    # an address no validator accepts
P_DISPOSABLE = 0.001
P_ROLE = 0.001
P_TYPO = 0.001
P_IDN = 0.0005
P_BLANKS = 0.005   # surrounding blanks, which both tools trim
P_QUOTED = 0.03    # a name or city holding a comma (so quoted on output)

# Rows generated and written at a time (part of the determinism contract:
# changing it changes the output for a given seed).
CHUNK = 65536
# Earlier addresses a duplicate may copy.
RECENT = 4096

DISPOSABLE = ["mailinator.com", "guerrillamail.com", "10minutemail.com", "mailinator.net"]
ROLES = ["info", "support", "sales", "admin", "webmaster", "marketing", "postmaster"]
TYPOS = ["gmial.com", "qq.con", "163.cm", "hotmial.com", "yaho.com", "gmail.con", "outlok.com"]
IDN = ["bücher.example", "例子.example", "münchen.example", "пример.example"]

# (display, ascii) pairs: the ascii form goes into local parts (pinyin for Chinese names).
FIRST = [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
         ("磊", "lei"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"),
         ("Wei", "wei"), ("Ming", "ming"), ("Anna", "anna"), ("John", "john"),
         ("Maria", "maria"), ("David", "david"), ("Sophie", "sophie"), ("Lukas", "lukas"),
         ("José", "jose"), ("Chloé", "chloe"), ("Mohammed", "mohammed"), ("Olga", "olga")]
LAST = [("张", "zhang"), ("王", "wang"), ("李", "li"), ("刘", "liu"), ("陈", "chen"),
        ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
        ("Smith", "smith"), ("Müller", "mueller"), ("García", "garcia"), ("Rossi", "rossi"),
        ("Dubois", "dubois"), ("Nguyen", "nguyen"), ("Kim", "kim"), ("O'Brien", "obrien")]
CITIES = ["上海", "北京", "深圳", "杭州", "广州", "成都", "Shanghai", "Beijing", "Berlin",
          "Austin", "Lyon", "Osaka", "São Paulo", "Zürich", "Kraków"]
# Fields holding the delimiter: the writer quotes them.
QUOTED_CITIES = ["Portland, OR", "北京市, 朝阳区", "Paris, 75011", "Austin, TX", "深圳, 南山区"]
QUOTED_LAST = ["Smith, Jr.", "King, III", '"Doc" Brown']


# Turn a good address into one that breaks RFC 5321 syntax, in one of the
# ways sign-up forms let through.
def break_address(rnd, local, dom):
    k = rnd.randrange(8)
    if k == 0:
        return local + dom                       # missing @
    if k == 1:
        return local.replace(".", "..", 1) if "." in local else local + "..x@" + dom
    if k == 2:
        return local[:2] + " " + local[2:] + "@" + dom   # inner space
    if k == 3:
        return local + "@" + dom.replace(".", "..", 1)   # empty domain label
    if k == 4:
        return local + "@@" + dom
    if k == 5:
        return local + "@"                       # no domain
    if k == 6:
        return "." + local + "@" + dom           # leading dot
    return local + "@" + dom.split(".")[0]       # dotless domain


# Change the case of an address so that only a case-insensitive comparison
# finds it (the address has letters at least in its domain).
def recase(rnd, addr):
    k = rnd.randrange(3)
    if k == 0:
        return addr.upper()
    local, _, dom = addr.partition("@")
    if k == 1:
        return local.capitalize() + "@" + dom.upper()
    return local.title() + "@" + dom if local.title() != local else local + "@" + dom.upper()


def main():
    ap = argparse.ArgumentParser(description="Write a realistic benchmark recipient CSV.")
    ap.add_argument("out")
    ap.add_argument("rows", type=int)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.rows < 0:
        ap.error("ROWS must be >= 0")

    rnd = random.Random(a.seed)
    big_names = [d for d, _ in BIG]
    big_w = [w for _, w in BIG]
    c_dup = P_DUP
    c_syn = c_dup + P_SYNTAX
    c_disp = c_syn + P_DISPOSABLE
    c_role = c_disp + P_ROLE
    c_typo = c_role + P_TYPO
    c_idn = c_typo + P_IDN
    c_blank = c_idn + P_BLANKS

    recent = []          # earlier good addresses, candidates for duplicates
    counts = dict(dup=0, syntax=0, disposable=0, role=0, typo=0, idn=0, blanks=0, quoted=0)
    with open(a.out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("email", "first_name", "last_name", "city", "code"))
        for start in range(0, a.rows, CHUNK):
            n = min(CHUNK, a.rows - start)
            # Draw most of the randomness per chunk: much faster than
            # per-row calls, and memory stays bounded for any ROWS.
            firsts = rnd.choices(FIRST, k=n)
            lasts = rnd.choices(LAST, k=n)
            cities = rnd.choices(CITIES, k=n)
            bigs = rnd.choices(big_names, big_w, k=n)
            pats = rnd.choices(range(5), [35, 25, 15, 15, 10], k=n)
            out = []
            for j in range(n):
                i = start + j
                fd, fa = firsts[j]
                ld, la = lasts[j]
                city = cities[j]
                e = rnd.random()
                if rnd.random() < TAIL_SHARE:
                    dom = "d%d.example" % int(TAIL_DOMAINS ** rnd.random())
                else:
                    dom = bigs[j]
                # The row number ends every local part and names hold no
                # digits, so two rows never share an address by accident.
                p = pats[j]
                if p == 0:
                    local = "%s.%s%d" % (fa, la, i)
                elif p == 1:
                    local = "%s%s%d" % (fa, la, i)
                elif p == 2:
                    local = "%s%s%d" % (fa[0], la, i)
                elif p == 3:
                    local = str(100000 + i)     # QQ-number style
                else:
                    local = "%s_%s.%d" % (la, fa, i)

                if e < c_dup and recent:
                    email = recase(rnd, recent[rnd.randrange(len(recent))])
                    counts["dup"] += 1
                elif e < c_syn:
                    email = break_address(rnd, local, dom)
                    counts["syntax"] += 1
                elif e < c_disp:
                    email = local + "@" + rnd.choice(DISPOSABLE)
                    counts["disposable"] += 1
                elif e < c_role:
                    email = rnd.choice(ROLES) + "@" + dom
                    counts["role"] += 1
                elif e < c_typo:
                    email = local + "@" + rnd.choice(TYPOS)
                    counts["typo"] += 1
                elif e < c_idn:
                    email = local + "@" + rnd.choice(IDN)
                    counts["idn"] += 1
                else:
                    email = local + "@" + dom
                    # Keep a bounded window of candidates: duplicates in real
                    # lists sit near each other (the same import done twice).
                    if len(recent) < RECENT:
                        recent.append(email)
                    else:
                        recent[i % RECENT] = email
                    if e < c_blank:
                        email = rnd.choice((" ", "  ", "\t", " \u3000")) + email + " "
                        counts["blanks"] += 1

                if e > 1 - P_QUOTED:
                    counts["quoted"] += 1
                    if e > 1 - P_QUOTED / 3:
                        ld = rnd.choice(QUOTED_LAST)
                    else:
                        city = rnd.choice(QUOTED_CITIES)
                out.append((email, fd, ld, city, "C%08d" % i))
            w.writerows(out)
    print("gen_list: %d rows to %s (seed %d): %s" % (
        a.rows, a.out, a.seed, " ".join("%s=%d" % kv for kv in counts.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
