#!/usr/bin/env python3
"""sched_gen.py - inputs and measurements of the scheduler benchmark
(bench/sched.sh).

usage: sched_gen.py mx PREFIX [options]        the many-domain campaign
       sched_gen.py stamp FIFO OUT             time-stamp a sink's log
       sched_gen.py analyse STAMPED TSV [options]   figures and bounds

mx: writes PREFIX.csv (the list), PREFIX.tsv (one line per domain: its
row count and shaping, what the bound is computed from), PREFIX.dns.conf
(dnsmasq records: every domain's MX) and PREFIX.shaping.ini (the
[domain ...] sections). The list: --rows rows over --domains domains,
  - big.example, the "gmail-like" one: --big-share of the rows,
    --big-rate msg/s, --big-conns connections;
  - slow1..slowK.example (--slow K) at --slow-rate msg/s each, each sized
    so that its own bound is --slow-frac of big.example's (they start
    late or share badly and they, not the big one, end last);
  - the rest, dN.example, at --tail-rate msg/s each (the [domain *]
    section, so each has its own budget), sized by a Zipf law (weight
    1/rank^--zipf, at least one row each): a few mid-sized domains and a
    long tail of one- and two-row ones;
  - with --throttled T, T more rows on throttled.example, whose MX is
    mx.throttled.test (127.0.0.2: the sink that answers every RCPT with
    421), on top of the others (their counts do not change).
Each domain gets its own [domain NAME] section only when its limits differ
from [domain *] (big, slow): a section naming several domains would make
them share one budget. Every MX host name points at 127.0.0.1 except
mx.throttled.test. Rows are shuffled with --seed (a real list is not sorted
by domain); addresses are distinct and valid, ASCII, the same five columns
as bench/send_gen.py's lists (its templates fit).

stamp: opens FIFO (blocks until the sink opens it for its log), and writes
every line read to OUT prefixed with the wall-clock time it was read
(seconds since the epoch, microseconds), flushing each line, until the
sink closes the FIFO. A sink that writes and flushes a line per delivery
(tests/fault_server --log) thus gives each delivery a time to ~1 ms, where
results.csv has seconds.

analyse: reads the stamped log (fault_server's "msg ... rcpts=<a@dom>"
lines) and the TSV, and prints key=value lines: deliveries counted and
expected (domains of --exclude left out of both), first and last delivery
relative to --start (the epoch time edm was started), the makespan (first
to last delivery), the lower bound max over domains of
max(0, count - burst) / rate (and (rows - burst) / --max-rate when given),
the domain that sets it, their ratio, and the domain that finished latest
relative to its own bound (last delivery since the first delivery of the
run over its bound, domains with a bound of at least 1 s).

Contract: the same arguments give the same bytes (mx). Nothing here uses
the network; outputs go through a .tmp file and a rename.
"""
import argparse
import os
import random
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

SINK_MX = "mx.sink.test"
THROTTLED_MX = "mx.throttled.test"
THROTTLED_DOMAIN = "throttled.example"


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def burst_of(rate):
    """edm's default bucket size: one second's worth, at least 1."""
    return max(rate, 1.0)


def fmt_rate(r):
    return ("%g" % r) + "/s"


def plan(a):
    """[(domain, count, rate, conns_or_None, group, mx)]"""
    big = int(round(a.big_share * a.rows))
    big_bound = max(0.0, big - burst_of(a.big_rate)) / a.big_rate
    slow = int(round(a.slow_rate * a.slow_frac * big_bound + burst_of(a.slow_rate)))
    ntail = a.domains - 1 - a.slow
    rest = a.rows - big - a.slow * slow
    if ntail < 1 or rest < ntail:
        sys.exit("sched_gen: %d rows do not fit: big %d, %d slow x %d, %d tail domains "
                 "need at least one row each" % (a.rows, big, a.slow, slow, ntail))
    w = [1.0 / (k ** a.zipf) for k in range(1, ntail + 1)]
    sw = sum(w)
    extra = rest - ntail
    share = [extra * x / sw for x in w]
    counts = [1 + int(s) for s in share]
    left = rest - sum(counts)
    # largest remainders get the rows rounding left over
    order = sorted(range(ntail), key=lambda i: (-(share[i] - int(share[i])), i))
    for i in order[:left]:
        counts[i] += 1
    out = [("big.example", big, a.big_rate, a.big_conns, "big", SINK_MX)]
    for k in range(1, a.slow + 1):
        out.append(("slow%d.example" % k, slow, a.slow_rate, None, "slow", SINK_MX))
    for k in range(ntail):
        out.append(("d%d.example" % (k + 1), counts[k], a.tail_rate, None, "tail", SINK_MX))
    if a.throttled > 0:
        out.append((THROTTLED_DOMAIN, a.throttled, a.tail_rate, None, "throttled", THROTTLED_MX))
    return out


def mx(a):
    p = plan(a)
    rng = random.Random(a.seed)
    doms = []
    for d, c, *_ in p:
        doms.extend([d] * c)
    rng.shuffle(doms)
    lines = ["email,first_name,last_name,city,code\n"]
    for i, d in enumerate(doms, 1):
        fn = FIRST[i % 20]
        ln = LAST[(i // 20) % 20]
        lines.append("%s.%s%d@%s,%s,%s,%s,C%07d\n" % (
            fn.lower(), ln.lower(), i, d, fn, ln, CITIES[(i // 400) % 20],
            (i * 7919) % 10000000))
    write_file(a.prefix + ".csv", "".join(lines))

    tsv = ["domain\tcount\trate\tburst\tgroup\tmx\n"]
    for d, c, r, _, g, m in p:
        tsv.append("%s\t%d\t%g\t%g\t%s\t%s\n" % (d, c, r, burst_of(r), g, m))
    write_file(a.prefix + ".tsv", "".join(tsv))

    dns = ["# written by bench/sched_gen.py: MX records of the scheduler benchmark\n",
           "local=/example/\n", "local=/test/\n",
           "host-record=%s,127.0.0.1\n" % SINK_MX]
    if a.throttled > 0:
        dns.append("host-record=%s,127.0.0.2\n" % THROTTLED_MX)
    for d, _, _, _, _, m in p:
        dns.append("mx-host=%s,%s,10\n" % (d, m))
    write_file(a.prefix + ".dns.conf", "".join(dns))

    sh = ["; written by bench/sched_gen.py: one budget per domain\n",
          "[domain *]\nconnections = %d\nrate = %s\n" % (a.tail_conns, fmt_rate(a.tail_rate)),
          "\n[domain big.example]\nconnections = %d\nrate = %s\n"
          "; at 100 per connection, 200/s would need 120 new connections a minute:\n"
          "; more than connect_rate's default 100/m\n"
          "messages_per_connection = 1000\n" % (a.big_conns, fmt_rate(a.big_rate))]
    for d, _, r, _, g, _ in p:
        if g == "slow":
            sh.append("\n[domain %s]\nrate = %s\n" % (d, fmt_rate(r)))
    write_file(a.prefix + ".shaping.ini", "".join(sh))

    tail = [c for d, c, r, _, g, _ in p if g == "tail"]
    print("sched_gen: %s.csv: %d rows, %d domains (big %d; %d slow x %d; %d tail domains, "
          "largest %d, %d with one row)%s" % (
              a.prefix, len(doms), len(p), p[0][1], a.slow, p[1][1] if a.slow else 0,
              len(tail), max(tail), sum(1 for c in tail if c == 1),
              "; throttled.example %d" % a.throttled if a.throttled else ""),
          file=sys.stderr)


def stamp(a):
    import time
    with open(a.fifo, "rb") as f, open(a.out, "w", encoding="ascii", errors="replace") as o:
        for raw in f:
            o.write("%.6f %s" % (time.time(), raw.decode("ascii", "replace")))
            o.flush()


def analyse(a):
    dom = {}
    with open(a.tsv, encoding="ascii") as f:
        next(f)
        for line in f:
            d, c, r, b, g, _ = line.rstrip("\n").split("\t")
            dom[d] = (int(c), float(r), float(b), g)
    excl = set(a.exclude or [])
    first_d, last_d, n_d = {}, {}, {}
    rejected = {}
    conn_dom, conn_last = {}, {}
    with open(a.stamped, encoding="ascii", errors="replace") as f:
        for line in f:
            t, _, rest = line.partition(" ")
            if rest.startswith("msg "):
                i = rest.find(" rcpts=<")
                if i < 0:
                    continue
                addr = rest[i + 8:rest.index(">", i)]
                d = addr.rpartition("@")[2].lower()
                t = float(t)
                j = rest.find(" conn=")
                if j >= 0:
                    c = rest[j + 6:].split()[0]
                    conn_dom[c] = d
                    conn_last[c] = t
                n_d[d] = n_d.get(d, 0) + 1
                first_d[d] = min(first_d.get(d, t), t)
                last_d[d] = max(last_d.get(d, t), t)
            elif rest.startswith("rcpt-rejected "):
                addr = rest.split()[1].strip("<>")
                d = addr.rpartition("@")[2].lower()
                rejected[d] = rejected.get(d, 0) + 1
    inc = [d for d in dom if dom[d][3] not in excl and d not in excl]
    expected = sum(dom[d][0] for d in inc)
    got = sum(n_d.get(d, 0) for d in inc)
    stray = sum(n for d, n in n_d.items() if d not in dom)
    out = {"delivered": got, "expected": expected, "stray": stray,
           "domains": len(inc)}
    bounds = {}
    for d in inc:
        c, r, b, _ = dom[d]
        bounds[d] = max(0.0, c - b) / r if r > 0 else 0.0
    bd = max(bounds, key=lambda d: (bounds[d], d))
    bound = bounds[bd]
    out["bound_domain"] = bd
    out["bound_domains_s"] = "%.3f" % bound
    if a.max_rate > 0:
        bg = max(0.0, expected - burst_of(a.max_rate)) / a.max_rate
        out["bound_global_s"] = "%.3f" % bg
        if bg > bound:
            bound, bd = bg, "max_rate"
    out["bound_s"] = "%.3f" % bound
    out["bound_by"] = bd
    seen = [d for d in inc if d in n_d]
    if seen:
        t0 = min(first_d[d] for d in seen)
        t1 = max(last_d[d] for d in seen)
        ms = t1 - t0
        out["first_s"] = "%.3f" % (t0 - a.start)
        out["last_s"] = "%.3f" % (t1 - a.start)
        out["makespan_s"] = "%.3f" % ms
        out["ratio"] = "%.3f" % (ms / bound if bound > 0 else 0)
        if a.end > a.start:
            out["wall_s"] = "%.3f" % (a.end - a.start)
            out["wall_ratio"] = "%.3f" % ((a.end - a.start) / bound if bound > 0 else 0)
        late = [(((last_d[d] - t0) / bounds[d]), d) for d in seen if bounds[d] >= 1.0]
        if late:
            r, d = max(late)
            out["latest_domain"] = d
            out["latest_ratio"] = "%.3f" % r
            out["latest_done_s"] = "%.3f" % (last_d[d] - t0)
            out["latest_bound_s"] = "%.3f" % bounds[d]
        last_dom = max(seen, key=lambda d: last_d[d])
        out["last_domain"] = last_dom
        for g in sorted({dom[d][3] for d in seen}):
            gl = [d for d in seen if dom[d][3] == g]
            out["group_%s_first_s" % g] = "%.3f" % (min(first_d[d] for d in gl) - t0)
            out["group_%s_last_s" % g] = "%.3f" % (max(last_d[d] for d in gl) - t0)
            out["group_%s_bound_s" % g] = "%.3f" % max(bounds[d] for d in gl)
    if a.lingering:
        # connections the sink still had open when it was stopped: whose
        # were they, and how long had they been idle when their domain
        # delivered its last message
        groups, idle = {}, {}
        with open(a.lingering, encoding="ascii") as f:
            for line in f:
                c = line.split()[0]
                d = conn_dom.get(c)
                g = dom[d][3] if d in dom else "no-message"
                groups[g] = groups.get(g, 0) + 1
                if d is not None:
                    idle.setdefault(g, []).append(last_d[d] - conn_last[c])
        out["lingering"] = sum(groups.values())
        # "big:9/28.1" = 9 connections of big.example's group, the median
        # of them idle for 28.1 s before their domain's last delivery
        out["lingering_groups"] = ",".join(
            "%s:%d%s" % (g, n, "/%.1f" % sorted(idle[g])[len(idle[g]) // 2] if g in idle else "")
            for g, n in sorted(groups.items())) or "-"
    for d in sorted(excl):
        if d in dom:
            out["excluded_%s_delivered" % d] = n_d.get(d, 0)
            out["excluded_%s_rcpt_rejected" % d] = rejected.get(d, 0)
    for k, v in out.items():
        print("%s=%s" % (k, v))


def main():
    ap = argparse.ArgumentParser(description="Inputs and measurements of bench/sched.sh.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mx", help="write the many-domain list, DNS records, shaping")
    m.add_argument("prefix")
    m.add_argument("--rows", type=int, default=15000)
    m.add_argument("--domains", type=int, default=1000)
    m.add_argument("--big-share", type=float, default=0.4)
    m.add_argument("--big-rate", type=float, default=200)
    m.add_argument("--big-conns", type=int, default=10)
    m.add_argument("--slow", type=int, default=5)
    m.add_argument("--slow-rate", type=float, default=5)
    m.add_argument("--slow-frac", type=float, default=0.9)
    m.add_argument("--tail-rate", type=float, default=50)
    m.add_argument("--tail-conns", type=int, default=3)
    m.add_argument("--zipf", type=float, default=1.0)
    m.add_argument("--throttled", type=int, default=0)
    m.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("stamp", help="time-stamp lines read from a FIFO")
    s.add_argument("fifo")
    s.add_argument("out")
    n = sub.add_parser("analyse", help="makespan and bounds from a stamped sink log")
    n.add_argument("stamped")
    n.add_argument("tsv")
    n.add_argument("--start", type=float, required=True)
    n.add_argument("--end", type=float, default=0)
    n.add_argument("--max-rate", type=float, default=0)
    n.add_argument("--exclude", action="append", help="a domain or group to leave out")
    n.add_argument("--lingering", help="file of 'conn messages' lines: connections left open")
    a = ap.parse_args()
    if a.cmd == "mx":
        if not (0 < a.big_share < 1) or a.big_rate <= 0 or a.slow_rate <= 0 or a.tail_rate <= 0 \
                or a.slow < 0 or a.domains < a.slow + 2 or a.rows < 1 or a.big_conns < 1 \
                or a.tail_conns < 1 or a.throttled < 0:
            ap.error("bad sizes or rates")
        mx(a)
    elif a.cmd == "stamp":
        stamp(a)
    else:
        analyse(a)


if __name__ == "__main__":
    main()
