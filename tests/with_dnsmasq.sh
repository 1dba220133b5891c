#!/bin/bash
#
# with_dnsmasq.sh - run a command against a throw-away dnsmasq on loopback.
#
# Usage: tests/with_dnsmasq.sh CMD [ARGS...]
#
# Starts dnsmasq on 127.0.0.1 at a free random high port holding the
# fixture world below, exports EDM_TEST_DNS=127.0.0.1:PORT to CMD, runs it,
# stops dnsmasq (also on SIGINT/SIGTERM/SIGHUP) and exits with CMD's status.
# dnsmasq's log (every query) goes to a temp file that is printed to stderr
# when CMD fails. Handy by hand too:
#     tests/with_dnsmasq.sh sh -c 'dig @127.0.0.1 -p "${EDM_TEST_DNS#*:}" mx good.test'
#
# Nothing ever leaves loopback: --no-resolv means no upstream servers, and
# names outside the local zones are answered REFUSED by dnsmasq itself.
# Needs bash (for /dev/udp and $RANDOM) and dnsmasq (Debian: dnsmasq-base);
# it does not need dig or python.
#
# The fixture world (checked with dnsmasq 2.90; keep tests in sync):
#   good.test        MX 10 mx1.good.test            -> OK "MX"
#   mx1.good.test    A 127.0.0.2
#   multimx.test     MX 10 mx1.multimx.test, MX 20 mx2.multimx.test -> OK
#   aonly.test       A 127.0.0.3, no MX (NODATA)    -> OK "A (implicit MX)"
#   aaaaonly.test    AAAA ::1, no MX, no A          -> OK "AAAA (implicit MX)"
#   nullmx.test      MX 0 .   (RFC 7505 null MX)    -> NOMAIL "null MX ..."
#   nomail.test      TXT only: NOERROR but no MX/A/AAAA
#                                                   -> NOMAIL "no MX and no A/AAAA"
#   cnamemx.test     CNAME good.test   (MX answer = CNAME + MX) -> OK "MX"
#   cnamea.test      CNAME aonly.test  (MX answer = CNAME only) -> OK "A ..."
#   refused.test     REFUSED (--server=/refused.test/# with no upstream)
#                                                   -> UNVERIFIED "REFUSED"
#   any other *.test NXDOMAIN (--local=/test/), e.g. nxdomain.test
#                                                   -> NOMAIL "NXDOMAIN"
#   acme.example     MX 10 mail.acme.example; mail.acme.example A 127.0.0.4
#   shop.example     MX 10 mx.shop.example;   mx.shop.example   A 127.0.0.5
#   aonly.example    A 127.0.0.6, no MX
#   nullmx.example   MX 0 .
#   refused.example  REFUSED
#   any other *.example NXDOMAIN (--local=/example/)
#   anything else    REFUSED (not a local zone, no upstream)
# Routes (dns_route_lookup):
#   prefs.test       MX 10 a.prefs.test, MX 20 b/c/d.prefs.test, MX 30
#                    e.prefs.test; a..e A 127.0.1.1 .. 127.0.1.5
#   dual.test        MX 10 mx.dual.test; mx.dual.test A 127.0.0.7 and
#                    AAAA fd00::7
#   dualonly.test    A 127.0.0.8 and AAAA fd00::8, no MX (implicit MX)
#   halfdead.test    MX 10 gone.halfdead.test (no address), MX 20
#                    mx.halfdead.test A 127.0.0.9
#   badmx.test       MX 10 mx.refused.test (its A/AAAA are REFUSED)
#   alias.test       MX 10 mx.alias.test; mx.alias.test CNAME mx1.good.test
#   dupmx.test       MX 10 and MX 20 both mx1.good.test
#   mixnull.test     MX 0 . and MX 10 mx1.good.test (breaks RFC 7505)
#   (multimx.test's two MX hosts have no address records at all)
# SERVFAIL is not in this world: dnsmasq only gives it for upstream trouble,
# and a forward to a dead loopback port just times out (3 s+), so the unit
# test answers SERVFAIL from its own tiny responder instead.

set -u

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

DNSMASQ=
for c in /usr/sbin/dnsmasq /sbin/dnsmasq "$(command -v dnsmasq 2>/dev/null)"; do
	if [ -n "$c" ] && [ -x "$c" ]; then
		DNSMASQ=$c
		break
	fi
done
if [ -z "$DNSMASQ" ]; then
	# Not a skip (77): CI installs dnsmasq-base, so a missing one is a
	# broken environment and must fail loudly.
	echo "$0: dnsmasq not found (install the Debian package dnsmasq-base)" >&2
	exit 1
fi

# The records, one option per line (see the table above); the commas are
# dnsmasq's syntax, not array separators.
# shellcheck disable=SC2054
FIXTURES=(
	--local=/test/
	--local=/example/
	--mx-host=good.test,mx1.good.test,10
	--host-record=mx1.good.test,127.0.0.2
	--mx-host=multimx.test,mx1.multimx.test,10
	--mx-host=multimx.test,mx2.multimx.test,20
	--host-record=aonly.test,127.0.0.3
	--host-record=aaaaonly.test,::1
	--mx-host=nullmx.test,.,0
	--txt-record=nomail.test,no-mail-here
	--cname=cnamemx.test,good.test
	--cname=cnamea.test,aonly.test
	--server=/refused.test/#
	--mx-host=acme.example,mail.acme.example,10
	--host-record=mail.acme.example,127.0.0.4
	--mx-host=shop.example,mx.shop.example,10
	--host-record=mx.shop.example,127.0.0.5
	--host-record=aonly.example,127.0.0.6
	--mx-host=nullmx.example,.,0
	--server=/refused.example/#
	--mx-host=prefs.test,a.prefs.test,10
	--mx-host=prefs.test,b.prefs.test,20
	--mx-host=prefs.test,c.prefs.test,20
	--mx-host=prefs.test,d.prefs.test,20
	--mx-host=prefs.test,e.prefs.test,30
	--host-record=a.prefs.test,127.0.1.1
	--host-record=b.prefs.test,127.0.1.2
	--host-record=c.prefs.test,127.0.1.3
	--host-record=d.prefs.test,127.0.1.4
	--host-record=e.prefs.test,127.0.1.5
	--mx-host=dual.test,mx.dual.test,10
	--host-record=mx.dual.test,127.0.0.7,fd00::7
	--host-record=dualonly.test,127.0.0.8,fd00::8
	--mx-host=halfdead.test,gone.halfdead.test,10
	--mx-host=halfdead.test,mx.halfdead.test,20
	--host-record=mx.halfdead.test,127.0.0.9
	--mx-host=badmx.test,mx.refused.test,10
	--mx-host=alias.test,mx.alias.test,10
	--cname=mx.alias.test,mx1.good.test
	--mx-host=dupmx.test,mx1.good.test,10
	--mx-host=dupmx.test,mx1.good.test,20
	--mx-host=mixnull.test,.,0
	--mx-host=mixnull.test,mx1.good.test,10
)

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/edm-dnsmasq.XXXXXX") || exit 1
LOG=$TMPD/dnsmasq.log
DNSMASQ_PID=
CMD_PID=

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ -n "$CMD_PID" ]; then
		kill -TERM "$CMD_PID" 2>/dev/null
		wait "$CMD_PID" 2>/dev/null
	fi
	if [ -n "$DNSMASQ_PID" ]; then
		kill -TERM "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
	fi
	rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# True when something answers a DNS query (MX good.test, id "AB") on
# 127.0.0.1:$1 within a second. bash's /dev/udp gives a connected socket;
# reading one byte of the reply is enough.
dns_probe() {
	local b
	exec 3<>"/dev/udp/127.0.0.1/$1" || return 1
	printf 'AB\001\000\000\001\000\000\000\000\000\000\004good\004test\000\000\017\000\001' >&3
	read -r -t 1 -N 1 b <&3 2>/dev/null
	local r=$?
	exec 3<&-
	[ "$r" -eq 0 ] && [ "$b" = A ]
}

# Start dnsmasq on a random port; a port that is taken makes dnsmasq exit
# at once ("Address already in use"), so try a few.
start_dnsmasq() {
	local attempt port
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40001))
		"$DNSMASQ" --no-daemon --no-resolv --no-hosts --bind-interfaces \
			--listen-address=127.0.0.1 --port="$port" \
			--pid-file="$TMPD/dnsmasq.pid" --conf-file=/dev/null \
			--log-queries "${FIXTURES[@]}" >>"$LOG" 2>&1 </dev/null &
		DNSMASQ_PID=$!
		for _ in {1..30}; do
			if ! kill -0 "$DNSMASQ_PID" 2>/dev/null; then
				break
			fi
			if dns_probe "$port"; then
				PORT=$port
				return 0
			fi
			sleep 0.1
		done
		echo "$0: dnsmasq on port $port did not come up (attempt $attempt)" >>"$LOG"
		kill -TERM "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
		DNSMASQ_PID=
	done
	return 1
}

PORT=
if ! start_dnsmasq; then
	echo "$0: could not start dnsmasq on a loopback port; its log:" >&2
	cat "$LOG" >&2
	exit 1
fi

export EDM_TEST_DNS="127.0.0.1:$PORT"
# In the background so a signal to this script is handled at once (bash
# runs traps only after a foreground command ends); keep stdin explicitly.
"$@" <&0 &
CMD_PID=$!
wait "$CMD_PID"
status=$?
CMD_PID=
if [ "$status" -ne 0 ]; then
	echo "$0: '$*' exited with status $status; last 60 lines of the dnsmasq log:" >&2
	tail -n 60 "$LOG" >&2
fi
exit "$status"
