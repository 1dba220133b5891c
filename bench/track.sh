#!/usr/bin/env bash
# track.sh - benchmark `edm track` with wrk on loopback: open-pixel requests
# with valid tokens, and the server's memory before and after.
#
# usage: bash bench/track.sh
# env:   BUILD=build-bench  meson build dir holding edm (default build-bench/;
#                           `meson setup --buildtype=release` when missing,
#                           `ninja edm` every run)
#        EDM=PATH           measure this binary instead (no build)
#        ROWS=10000         recipients (and distinct tokens) in the list
#        DURATION=10        seconds of the measured wrk run
#        THREADS=2          wrk threads
#        CONNS=100          wrk connections (keep-alive)
#        WARMUP=2           seconds of an unmeasured wrk run first
#        RUN_TIMEOUT=120    seconds after which edm or wrk is killed (fail)
#
# What it does, all in bench/work/ (gitignored):
#   - writes track-ROWS.csv (email,first_name: every address distinct) and
#     track-ROWS.tokens (one token per row, computed by a python3 snippet
#     from templates/token.h: the 5-byte row and HMAC-SHA256 of
#     "edm-token-1" NUL campaign NUL row, first 12 bytes, base64url);
#   - writes track-bench.ini ([tracking], a secret in
#     $EDM_BENCH_TRACK_SECRET, out dir track-bench.out, removed first);
#   - starts `edm track --listen 127.0.0.1:0` and reads the port from its
#     start line; RSS0 = its VmRSS then;
#   - wrk (Debian package wrk) with track.lua: each request is
#     GET /o/TOKEN.gif, cycling through the tokens (each wrk thread starts
#     at its own offset); WARMUP seconds first, then RSS1; DURATION seconds
#     measured, then RSS2;
#   - stops edm with SIGTERM (it must exit 0), checks that events.csv holds
#     an open for every request wrk counted, and removes the out dir (it
#     holds an events.csv line per request: about 100 MB);
#   - prints req/s, p50/p99 latency, non-2xx replies, socket errors and the
#     three RSS values with PASS/FAIL lines, and saves the report as
#     results-track-DATE.txt; track.log holds the server's stderr.
#
# Targets (issue 5): >= 20,000 req/s with 0 non-2xx and 0 socket errors
# (2 wrk threads, 100 connections, 10 s, loopback, 2-core machine: wrk and
# edm share the cores); flat memory: RSS2 - RSS1 under 1 MiB (the server
# keeps nothing per request; per connection only its parser state).
#
# Exit status: 0 whether the targets are met or not (it is a report, not a
# test); 1 when something failed to run (build, tools, edm, wrk, a missing
# event); 2 for bad usage.
# It does not: use the network beyond 127.0.0.1, write outside bench/work
# (except building BUILD), or need anything outside this repository.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
WRK=/usr/bin/wrk

TARGET_RPS=20000
TARGET_RSS_GROWTH_KB=1024

ROWS=${ROWS:-10000}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-100}
WARMUP=${WARMUP:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
BUILD=${BUILD:-build-bench}

die() { echo "track.sh: $*" >&2; exit 1; }
usage() {
	echo "usage: bash bench/track.sh  (ROWS, DURATION, THREADS, CONNS, RUN_TIMEOUT" \
		"positive integers, WARMUP an integer; BUILD a meson dir or EDM a binary)" >&2
	exit 2
}
[ $# -eq 0 ] || usage
for n in "$ROWS" "$DURATION" "$THREADS" "$CONNS" "$RUN_TIMEOUT"; do
	case $n in ''|*[!0-9]*|0) usage ;; esac
done
case $WARMUP in ''|*[!0-9]*) usage ;; esac
[ "$CONNS" -ge "$THREADS" ] || usage

# --- tools --------------------------------------------------------------------
[ -x "$WRK" ] || die "$WRK not found: install the Debian package 'wrk'"
for t in python3 timeout; do
	command -v "$t" >/dev/null || die "$t not found"
done

# --- build --------------------------------------------------------------------
mkdir -p "$WORK"
if [ -n "${EDM:-}" ]; then
	case $EDM in /*) ;; *) EDM=$PWD/$EDM ;; esac
	[ -x "$EDM" ] || die "EDM=$EDM is not an executable"
	BUILD_INFO="$EDM (given with EDM=; build type unknown)"
else
	case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
	(cd "$ROOT" && { [ -d "$BUILD/meson-info" ] || meson setup --buildtype=release "$BUILD"; } &&
		ninja -C "$BUILD" edm) >"$WORK/build.log" 2>&1 ||
		{ cat "$WORK/build.log" >&2; die "build failed (log: $WORK/build.log)"; }
	EDM=$BUILD/edm
	# shellcheck source=bench/lib.sh
	. "$(dirname "$0")/lib.sh"
	BUILD_INFO="$EDM: $(bench_build_info "$BUILD")"
fi

LOG=$WORK/track.log
RESULTS=$WORK/results-track-$(date +%Y%m%d-%H%M%S).txt
LIST=$WORK/track-$ROWS.csv
TOKENS=$WORK/track-$ROWS.tokens
CONF=$WORK/track-bench.ini
OUT=$WORK/track-bench.out
LUA=$WORK/track.lua
CAMPAIGN=bench-track
export EDM_BENCH_TRACK_SECRET=bench-track-secret-0123456789abcdef0123456789
EDM_PID=

stop_edm() {
	[ -n "$EDM_PID" ] || return 0
	kill "$EDM_PID" 2>/dev/null || true
	wait "$EDM_PID" 2>/dev/null || true
	EDM_PID=
}
trap stop_edm EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- inputs -------------------------------------------------------------------
python3 - "$LIST" "$TOKENS" "$ROWS" "$CAMPAIGN" <<'PY' || die "cannot write the list and tokens"
import base64, hashlib, hmac, os, sys
path, tokpath, rows, campaign = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
secret = os.environ["EDM_BENCH_TRACK_SECRET"].encode()
with open(path, "w", newline="") as f:
    f.write("email,first_name\n")
    for i in range(1, rows + 1):
        f.write("reader%d@bench%d.example,Reader %d\n" % (i, i % 50, i))
with open(tokpath, "w") as f:
    for row in range(1, rows + 1):
        r = row.to_bytes(5, "big")
        mac = hmac.new(secret, b"edm-token-1\0" + campaign.encode() + b"\0" + r,
                       hashlib.sha256).digest()[:12]
        f.write(base64.urlsafe_b64encode(r + mac).decode().rstrip("=") + "\n")
PY

cat >"$CONF" <<EOF
; written by bench/track.sh: edm track benchmark
[campaign]
name = $CAMPAIGN
recipients = $(basename "$LIST")
suppression = track-bench-suppress.csv
out_dir = $(basename "$OUT")

[tracking]
base_url = http://127.0.0.1
listen = 127.0.0.1:0
secret_env = EDM_BENCH_TRACK_SECRET
EOF

cat >"$LUA" <<'EOF'
-- track.lua (written by bench/track.sh): GET /o/TOKEN.gif, cycling through
-- the tokens file given after "--"; each thread starts at its own offset.
local tokens, i = {}, 0
local threads = {}

function setup(thread)
	table.insert(threads, thread)
	thread:set("tid", #threads)
end

function init(args)
	for line in io.lines(args[1]) do
		tokens[#tokens + 1] = line
	end
	i = ((tid or 1) - 1) * math.floor(#tokens / 2)
end

function request()
	i = i % #tokens + 1
	return wrk.format("GET", "/o/" .. tokens[i] .. ".gif")
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
		"non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
		summary.requests, summary.duration, latency:percentile(50),
		latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end
EOF

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- the server ---------------------------------------------------------------
rm -rf "$OUT"
: >"$LOG"
(cd "$WORK" && exec timeout --foreground "$RUN_TIMEOUT" "$EDM" track --listen 127.0.0.1:0 \
	"$(basename "$CONF")") 2>>"$LOG" &
EDM_PID=$!
PORT=
for ((i = 0; i < 200; i++)); do
	PORT=$(sed -n 's/^edm track: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG")
	[ -n "$PORT" ] && break
	kill -0 "$EDM_PID" 2>/dev/null || break
	sleep 0.05
done
[ -n "$PORT" ] || { cat "$LOG" >&2; die "edm track did not start (log: $LOG)"; }
# the server process (timeout's child)
SRV=$(pgrep -P "$EDM_PID" | head -n 1 || true)
if [ -z "$SRV" ] || [ ! -r "/proc/$SRV/status" ]; then
	die "cannot find the edm track process"
fi
RSS0=$(rss_kb "$SRV")

run_wrk() { # seconds
	timeout "$RUN_TIMEOUT" "$WRK" -t "$THREADS" -c "$CONNS" -d "${1}s" -s "$LUA" \
		"http://127.0.0.1:$PORT" -- "$TOKENS"
}
if [ "$WARMUP" -gt 0 ]; then
	WARM_OUT=$(run_wrk "$WARMUP") || die "wrk (warm-up) failed"
	WARM_REQ=$(sed -n 's/^RESULT requests=\([0-9]*\) .*/\1/p' <<<"$WARM_OUT")
else
	WARM_REQ=0
fi
RSS1=$(rss_kb "$SRV")
WRK_OUT=$(run_wrk "$DURATION") || die "wrk failed"
RSS2=$(rss_kb "$SRV")
echo "$WRK_OUT" >>"$LOG"
kill -TERM "$SRV"
set +e
wait "$EDM_PID"
RC=$?
set -e
EDM_PID=
[ "$RC" = 0 ] || { tail -n 5 "$LOG" >&2; die "edm track exited with $RC after SIGTERM"; }

# --- the report ---------------------------------------------------------------
R=$(grep '^RESULT ' <<<"$WRK_OUT") || { echo "$WRK_OUT" >&2; die "no result from wrk"; }
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${R#RESULT }"; }
REQ=$(val requests) DUR=$(val duration_us) P50=$(val p50_us) P99=$(val p99_us)
NON2XX=$(val non2xx) ECONN=$(val connect) EREAD=$(val read) EWRITE=$(val write) ETIME=$(val timeout)
SOCKERR=$((ECONN + EREAD + EWRITE + ETIME))
EVENTS=$(($(wc -l <"$OUT/events.csv") - 1))
# every request wrk counted was answered, so recorded (requests still in
# flight when wrk stopped may add a few)
[ "$EVENTS" -ge $((REQ + WARM_REQ - NON2XX)) ] ||
	die "events.csv has $EVENTS opens for $((REQ + WARM_REQ)) requests"
rm -rf "$OUT"
RPS=$(awk -v r="$REQ" -v d="$DUR" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
GROWTH=$((RSS2 - RSS1))
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
{
	echo "edm track benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "edm: $BUILD_INFO"
	echo "wrk: $("$WRK" -v 2>&1 | head -n 1)"
	echo "load: $THREADS threads, $CONNS keep-alive connections, ${DURATION}s (after ${WARMUP}s" \
		"warm-up), GET /o/TOKEN.gif over $ROWS distinct tokens"
	echo
	printf '%-28s %s\n' "requests" "$REQ"
	printf '%-28s %s\n' "requests/s" "$RPS"
	printf '%-28s %.3f ms\n' "latency p50" "$(awk -v v="$P50" 'BEGIN { print v / 1000 }')"
	printf '%-28s %.3f ms\n' "latency p99" "$(awk -v v="$P99" 'BEGIN { print v / 1000 }')"
	printf '%-28s %s\n' "non-2xx replies" "$NON2XX"
	printf '%-28s %s (connect %s, read %s, write %s, timeout %s)\n' "socket errors" \
		"$SOCKERR" "$ECONN" "$EREAD" "$EWRITE" "$ETIME"
	printf '%-28s %s\n' "opens in events.csv" "$EVENTS"
	printf '%-28s %s KB\n' "RSS at start" "$RSS0"
	printf '%-28s %s KB\n' "RSS after warm-up" "$RSS1"
	printf '%-28s %s KB (%+d KB)\n' "RSS after the run" "$RSS2" "$GROWTH"
	echo
	echo "$(verdict "$([ "$RPS" -ge "$TARGET_RPS" ] && echo 1)") requests/s >= $TARGET_RPS ($RPS)"
	echo "$(verdict "$([ "$NON2XX" = 0 ] && [ "$SOCKERR" = 0 ] && echo 1)") no non-2xx replies, no socket errors"
	echo "$(verdict "$([ "$GROWTH" -lt "$TARGET_RSS_GROWTH_KB" ] && echo 1)") flat memory: RSS grew ${GROWTH} KB during the run (< $TARGET_RSS_GROWTH_KB KB)"
} | tee "$RESULTS"
echo "report saved: $RESULTS"
