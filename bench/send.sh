#!/usr/bin/env bash
# send.sh - benchmark delivery (`edm send`) to Postfix's smtp-sink on
# loopback, against smtp-source on the same sink in the same run, and
# report against the targets of the issue.
#
# usage: bash bench/send.sh [ROWS]              (default 100000)
# env:   BUILD=build        meson build dir holding edm (default build/;
#                           `meson setup --buildtype=release` when missing,
#                           `ninja edm` every run)
#        RUNS=3             timed runs per tool (the median is reported)
#        CONNS=50           connections, of edm and of smtp-source
#        DOMAINS=20         recipient domains the rows are spread over
#                           (1 = every row on one domain)
#        DKIM_ROWS=ROWS     rows of the RSA-2048 runs
#        RSS_ROWS=1000000   rows of the peak-RSS run (the target is for
#                           1,000,000; a smaller count is said in the report)
#        PARTS="plain dkim rss"   which of the three measurements to run
#        PEER_LEN=5000      smtp-source's message payload (-l), bytes
#        RUN_TIMEOUT=900    seconds after which any one server or client
#                           run is killed (the benchmark then fails)
#        PORT               the sink's port on 127.0.0.1 (default: a free one)
#
# What it does, all in bench/work/ (gitignored):
#   - writes send-ROWS-dDOMAINS.csv (and send-RSS_ROWS-dDOMAINS.csv) with
#     bench/send_gen.py: ASCII, every address distinct and valid, the rows
#     spread evenly over DOMAINS .example domains; tmpl-send/ holds a
#     ~2 KB text and a ~3 KB HTML body using the 5 CSV variables;
#   - makes an RSA-2048 key with `edm dkim keygen` (reused when present);
#   - writes send-plain.ini, send-rsa2048.ini and send-rss.ini: relay mode
#     to the sink, tls = none, [smtp] max_connections = CONNS, and a
#     [domain *] section that lifts the shipped per-domain limits
#     (connections = CONNS, rate = 0, connect_rate = 10000/s,
#     messages_per_connection = 1000000), so the sink and edm are what is
#     measured, not the shaping;
#   - plain: RUNS times, interleaved, `smtp-source -d -s CONNS -m ROWS -l
#     PEER_LEN` and `edm send` of send-plain.ini, each against a fresh
#     smtp-sink; msg/s = messages / wall time of the process;
#   - dkim: RUNS times, interleaved, `openssl speed -multi NPROC -seconds 3
#     rsa2048` (all cores, sign/s) and `edm send` of send-rsa2048.ini;
#   - for every client run, how many CPUs other processes kept busy
#     meanwhile (/proc/stat: the machine's busy time minus the client's and
#     the sink's), since neighbours on the same cores move the rates;
#   - rss: one `edm send` of send-rss.ini under `/usr/bin/time -v`
#     ("Maximum resident set size");
#   - prints a table of medians and PASS/FAIL lines, and saves the report as
#     results-send-ROWS-DATE.txt; send.log holds every run's line and the
#     servers' messages.
# Every edm run starts from a removed out dir (edm resumes from its journal
# otherwise) and must deliver every row, or the benchmark fails.
#
# Targets (issue 6, 2-core machine): edm >= 0.7 x smtp-source's msg/s on
# 100,000 personalised ~5 KB messages over 50 connections; with DKIM
# RSA-2048, >= 0.7 x `openssl speed -multi 2 rsa2048` sign/s; peak RSS
# <= 96 MB sending 1,000,000 recipients.
#
# Exit status: 0 whether the targets are met or not (it is a report, not a
# test); 1 when something failed to run (build, tools, a server, a client,
# an undelivered row, a timeout); 2 for bad usage.
# It does not: use the network beyond 127.0.0.1, write outside bench/work
# (except building BUILD), or need anything outside this repository.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
TIME=/usr/bin/time       # GNU time (package `time`): peak RSS, CPU times
SMTP_SINK=/usr/sbin/smtp-sink      # Debian package postfix
SMTP_SOURCE=/usr/sbin/smtp-source

# Targets of the issue.
TARGET_ROWS=100000
TARGET_CONNS=50
TARGET_RATIO=0.7          # edm msg/s over smtp-source's, no DKIM
TARGET_DKIM_FRACTION=0.7  # edm msg/s with RSA-2048 over openssl's sign/s, all cores
TARGET_RSS_ROWS=1000000
TARGET_RSS_MB=96

ROWS=${1:-$TARGET_ROWS}
RUNS=${RUNS:-3}
CONNS=${CONNS:-$TARGET_CONNS}
DOMAINS=${DOMAINS:-20}
DKIM_ROWS=${DKIM_ROWS:-$ROWS}
RSS_ROWS=${RSS_ROWS:-$TARGET_RSS_ROWS}
PARTS=${PARTS:-plain dkim rss}
PEER_LEN=${PEER_LEN:-5000}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
PORT=${PORT:-}
BUILD=${BUILD:-build}
NPROC=$(nproc)

die() { echo "send.sh: $*" >&2; exit 1; }
usage() {
	echo "usage: bash bench/send.sh [ROWS]  (ROWS, RUNS, CONNS, DOMAINS, DKIM_ROWS," \
		"RSS_ROWS, PEER_LEN, RUN_TIMEOUT positive integers; PARTS words of:" \
		"plain dkim rss)" >&2
	exit 2
}

for n in "$ROWS" "$RUNS" "$CONNS" "$DOMAINS" "$DKIM_ROWS" "$RSS_ROWS" "$PEER_LEN" "$RUN_TIMEOUT" ${PORT:+"$PORT"}; do
	case $n in ''|*[!0-9]*|0) usage ;; esac
done
[ "$CONNS" -le 10000 ] || usage
DO_PLAIN=0 DO_DKIM=0 DO_RSS=0
for p in $PARTS; do
	case $p in
	plain) DO_PLAIN=1 ;;
	dkim) DO_DKIM=1 ;;
	rss) DO_RSS=1 ;;
	*) usage ;;
	esac
done
[ $((DO_PLAIN + DO_DKIM + DO_RSS)) -gt 0 ] || usage

# --- tools --------------------------------------------------------------------
[ -x "$TIME" ] || die "$TIME not found: install the Debian package 'time'"
{ [ -x "$SMTP_SINK" ] && [ -x "$SMTP_SOURCE" ]; } ||
	die "$SMTP_SINK / $SMTP_SOURCE not found: install the Debian package 'postfix'"
for t in python3 timeout pgrep; do
	command -v "$t" >/dev/null || die "$t not found"
done
[ "$DO_DKIM" = 0 ] || command -v openssl >/dev/null || die "openssl not found (Debian package openssl)"
# smtp-sink refuses to run as root without a user to drop to.
SINK_USER=()
[ "$(id -u)" != 0 ] || SINK_USER=(-u nobody)

# --- build --------------------------------------------------------------------
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
mkdir -p "$WORK"
(cd "$ROOT" && { [ -d "$BUILD/meson-info" ] || meson setup --buildtype=release "$BUILD"; } &&
	ninja -C "$BUILD" edm) >"$WORK/build.log" 2>&1 ||
	{ cat "$WORK/build.log" >&2; die "build failed (log: $WORK/build.log)"; }
EDM=$BUILD/edm

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

LOG=$WORK/send.log
TFILE=$WORK/send-time.$$
RESULTS=$WORK/results-send-$ROWS-$(date +%Y%m%d-%H%M%S).txt
CLK_TCK=$(getconf CLK_TCK)
R_OTHERS=0          # CPUs busy with other processes during the last timed run
SINK_PID=           # the `timeout` wrapping the running smtp-sink
SINK_TICKS=0        # CPU clock ticks of the last smtp-sink, read before stopping it
TIME_V=0            # 1: the next timed run is under `time -v` (the RSS run)

# Stop the running smtp-sink (if any), first reading its CPU time.
stop_sink() {
	local spid
	[ -n "$SINK_PID" ] || return 0
	spid=$(pgrep -P "$SINK_PID" | head -n 1 || true)
	SINK_TICKS=0
	if [ -n "$spid" ] && [ -r "/proc/$spid/stat" ]; then
		SINK_TICKS=$(sed 's/.*) //' "/proc/$spid/stat" | awk '{ print $12 + $13 }')
	fi
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=
}
trap 'stop_sink; rm -f "$TFILE" "$WORK"/send-*.csv.tmp' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start a fresh smtp-sink on 127.0.0.1:PORT, bounded by RUN_TIMEOUT, and
# wait until it accepts connections.
start_sink() {
	local i
	echo "--- smtp-sink $(date +%T)" >>"$LOG"
	timeout --foreground "$RUN_TIMEOUT" "$SMTP_SINK" "${SINK_USER[@]}" "127.0.0.1:$PORT" 256 >>"$LOG" 2>&1 &
	SINK_PID=$!
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SINK_PID" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && kill -0 "$SINK_PID" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	tail -n 5 "$LOG" >&2
	die "smtp-sink did not start on 127.0.0.1:$PORT (log: $LOG)"
}

if [ -z "$PORT" ]; then
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
		die "cannot find a free port"
fi

# --- inputs -------------------------------------------------------------------
# make_list ROWS: the recipient list of that many rows; prints its path.
make_list() {
	local csv=$WORK/send-$1-d$DOMAINS.csv
	if [ ! -s "$csv" ] || [ "$BENCH/send_gen.py" -nt "$csv" ]; then
		python3 "$BENCH/send_gen.py" list "$csv" "$1" --domains "$DOMAINS" 2>>"$LOG" ||
			die "send_gen.py list failed (log: $LOG)"
	fi
	echo "$csv"
}
: >"$LOG"
LIST=$(make_list "$ROWS")
[ "$DO_DKIM" = 0 ] || DKIM_LIST=$(make_list "$DKIM_ROWS")
[ "$DO_RSS" = 0 ] || RSS_LIST=$(make_list "$RSS_ROWS")
python3 "$BENCH/send_gen.py" templates "$WORK/tmpl-send" 2>>"$LOG" || die "send_gen.py templates failed"
KEY=$WORK/dkim-send-rsa2048.pem
if [ "$DO_DKIM" = 1 ] && [ ! -s "$KEY" ]; then
	"$EDM" dkim keygen --domain news.example --selector bench-send --out "$KEY" >/dev/null ||
		die "edm dkim keygen failed"
fi

# write_config NAME LIST WITH-DKIM(0/1): bench/work/send-NAME.ini, out dir send-NAME.out.
write_config() {
	cat >"$WORK/send-$1.ini" <<EOF
; written by bench/send.sh: delivery benchmark ($1), relay to smtp-sink on loopback
[campaign]
name = send-$1
recipients = $(basename "$2")
out_dir = send-$1.out

[validate]
dns = no

[message]
from = "Acme News <news@news.example>"
to_name = {{first_name}} {{last_name}}
subject = "{{first_name}}, your spring offer for {{city}} is here"
text = tmpl-send/body.txt
html = tmpl-send/body.html
unsubscribe_url = https://news.example/unsubscribe?e={{email}}&c={{code}}

[smtp]
mode = relay
relay = 127.0.0.1:$PORT
tls = none
max_connections = $CONNS

; lifts the shipped limits (10 connections, 100 msg/s, 100 messages per
; connection for any domain): the benchmark measures edm and the sink
[domain *]
connections = $CONNS
rate = 0
connect_rate = 10000/s
messages_per_connection = 1000000
EOF
	if [ "$3" = 1 ]; then
		cat >>"$WORK/send-$1.ini" <<EOF

[dkim]
domain = news.example
selector = bench-send
key = $(basename "$KEY")
EOF
	fi
}
[ "$DO_PLAIN" = 0 ] || write_config plain "$LIST" 0
[ "$DO_DKIM" = 0 ] || write_config rsa2048 "$DKIM_LIST" 1
[ "$DO_RSS" = 0 ] || write_config rss "$RSS_LIST" 0

# --- measuring ----------------------------------------------------------------
# Median / min / max of the numbers given (median of an even count: the
# mean of the two middle ones).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# openssl speed on every core: the sign/s column, found by its place in the
# header (3.0: "sign verify sign/s verify/s"; 3.2+ adds more columns).
openssl_sign_rate() {
	local out
	out=$(openssl speed -multi "$NPROC" -seconds 3 rsa2048 2>/dev/null) || return 1
	printf '%s\n' "$out" | awk '
		/sign\/s/ { for (i = 1; i <= NF; i++) if ($i == "sign/s") back = NF - i }
		back != "" && /^ *rsa +2048 +bits/ { print $(NF - back); exit }'
}

# CPU clock ticks the whole machine has spent busy so far (/proc/stat "cpu"
# line: user nice system irq softirq steal; idle and iowait left out).
machine_busy_ticks() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# timed LABEL MESSAGES CMD...: run CMD against a fresh sink, bounded by
# RUN_TIMEOUT, under GNU time (-v when TIME_V is 1); sets R_WALL,
# R_RSS (KB), R_CPU (user + sys s), R_SINK_CPU (s), R_RATE (MESSAGES /
# wall), R_OTHERS (CPUs other processes kept busy meanwhile) and R_OUT
# (the output file). A failure or timeout stops the benchmark.
timed() {
	local label=$1 msgs=$2 rc=0 targs u s b0 b1
	shift 2
	R_OUT=$WORK/send-run.out
	start_sink
	if [ "$TIME_V" = 1 ]; then targs=(-v); else targs=(-f '%e %M %U %S'); fi
	b0=$(machine_busy_ticks)
	"$TIME" "${targs[@]}" -o "$TFILE" timeout --foreground "$RUN_TIMEOUT" "$@" >"$R_OUT" 2>&1 || rc=$?
	b1=$(machine_busy_ticks)
	stop_sink
	if [ "$rc" != 0 ]; then
		tail -n 20 "$R_OUT" >&2
		[ "$rc" != 124 ] || die "$label: timed out after $RUN_TIMEOUT s: $*"
		die "$label: exit status $rc: $*"
	fi
	if [ "$TIME_V" = 1 ]; then
		R_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0
			for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$TFILE")
		R_RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TFILE")
		R_CPU=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$TFILE")
	else
		read -r R_WALL R_RSS u s < <(tail -n 1 "$TFILE")
		R_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
	fi
	R_SINK_CPU=$(awk -v t="$SINK_TICKS" -v hz="$CLK_TCK" 'BEGIN { print t / hz }')
	R_RATE=$(awk -v m="$msgs" -v w="$R_WALL" 'BEGIN { printf "%.0f", (w > 0 ? m / w : 0) }')
	# the sink's ticks count from its start, a little before b0: close
	# enough, it idles until the client connects
	R_OTHERS=$(awk -v b0="$b0" -v b1="$b1" -v hz="$CLK_TCK" -v c="$R_CPU" \
		-v k="$R_SINK_CPU" -v w="$R_WALL" 'BEGIN {
		o = (b1 - b0) / hz - c - k; if (o < 0) o = 0
		printf "%.2f", (w > 0 ? o / w : 0) }')
	printf '%s wall_s=%s rss_kb=%s cpu_s=%s sink_cpu_s=%s msgs=%s msgs_per_s=%s others_cpus=%s\n' \
		"$label" "$R_WALL" "$R_RSS" "$R_CPU" "$R_SINK_CPU" "$msgs" "$R_RATE" "$R_OTHERS" >>"$LOG"
}

# edm_send NAME ROWS: one `edm send` of send-NAME.ini from a removed out
# dir; every row must be delivered. Also sets R_SELF (edm's own msg/s,
# counted from its loop's start).
edm_send() {
	local name=$1 rows=$2 delivered
	rm -rf "$WORK/send-$name.out"
	timed "edm-$name" "$rows" "$EDM" send --no-progress "$WORK/send-$name.ini"
	cat "$R_OUT" >>"$LOG"
	delivered=$(sed -n 's/.* delivered \([0-9]*\),.*/\1/p' "$R_OUT")
	[ "$delivered" = "$rows" ] || die "edm-$name delivered ${delivered:-?} of $rows rows (see $R_OUT)"
	R_SELF=$(sed -n 's/.* s, \([0-9.]*\) msg\/s).*/\1/p' "$R_OUT")
}

# The lists from the page cache, not the disk, for every run.
cat "$LIST" ${DKIM_LIST:+"$DKIM_LIST"} ${RSS_LIST:+"$RSS_LIST"} >/dev/null

# Bytes of edm's message for row 1 (as handed to SMTP, before dot-stuffing).
msg_bytes() { "$EDM" preview --row 1 "$WORK/send-$1.ini" | wc -c; }

declare -A MED MIN MAX WALL CPU SINK RSS OTHERS
# record KEY values-of-rate, and the parallel arrays walls/cpus/sinks/rsss/others
record() {
	local k=$1
	MED[$k]=$(median "${rates[@]}")
	MIN[$k]=$(minimum "${rates[@]}")
	MAX[$k]=$(maximum "${rates[@]}")
	WALL[$k]=$(median "${walls[@]}")
	CPU[$k]=$(median "${cpus[@]}")
	SINK[$k]=$(median "${sinks[@]}")
	RSS[$k]=$(median "${rsss[@]}")
	OTHERS[$k]=$(median "${others[@]}")
}

if [ "$DO_PLAIN" = 1 ]; then
	PLAIN_BYTES=$(msg_bytes plain) || die "edm preview failed on send-plain.ini"
	p_rates=() p_walls=() p_cpus=() p_sinks=() p_rsss=() p_others=()
	e_rates=() e_walls=() e_cpus=() e_sinks=() e_rsss=() e_self=() e_others=()
	for ((run = 1; run <= RUNS; run++)); do
		echo "send.sh: plain run $run/$RUNS: smtp-source, $ROWS messages" >&2
		timed smtp-source "$ROWS" "$SMTP_SOURCE" -d -s "$CONNS" -m "$ROWS" -l "$PEER_LEN" \
			"127.0.0.1:$PORT"
		p_rates+=("$R_RATE") p_walls+=("$R_WALL") p_cpus+=("$R_CPU")
		p_sinks+=("$R_SINK_CPU") p_rsss+=("$R_RSS") p_others+=("$R_OTHERS")
		echo "  smtp-source: $R_RATE msg/s ($R_WALL s)" >&2
		echo "send.sh: plain run $run/$RUNS: edm send, $ROWS rows" >&2
		edm_send plain "$ROWS"
		e_rates+=("$R_RATE") e_walls+=("$R_WALL") e_cpus+=("$R_CPU")
		e_sinks+=("$R_SINK_CPU") e_rsss+=("$R_RSS") e_self+=("$R_SELF")
		e_others+=("$R_OTHERS")
		echo "  edm:         $R_RATE msg/s ($R_WALL s)" >&2
	done
	rates=("${p_rates[@]}") walls=("${p_walls[@]}") cpus=("${p_cpus[@]}")
	sinks=("${p_sinks[@]}") rsss=("${p_rsss[@]}") others=("${p_others[@]}")
	record peer
	rates=("${e_rates[@]}") walls=("${e_walls[@]}") cpus=("${e_cpus[@]}")
	sinks=("${e_sinks[@]}") rsss=("${e_rsss[@]}") others=("${e_others[@]}")
	record plain
	PLAIN_SELF=$(median "${e_self[@]}")
	# the ratio of each run's pair, and of the medians
	PAIR_RATIOS=$(for ((i = 0; i < RUNS; i++)); do
		awk -v e="${e_rates[i]}" -v p="${p_rates[i]}" 'BEGIN { printf "%.2f ", (p > 0 ? e / p : 0) }'
	done)
fi

if [ "$DO_DKIM" = 1 ]; then
	DKIM_BYTES=$(msg_bytes rsa2048) || die "edm preview failed on send-rsa2048.ini"
	o_rates=()
	rates=() walls=() cpus=() sinks=() rsss=() d_self=() others=()
	for ((run = 1; run <= RUNS; run++)); do
		echo "send.sh: dkim run $run/$RUNS: openssl speed -multi $NPROC -seconds 3 rsa2048" >&2
		o=$(openssl_sign_rate) || die "openssl speed rsa2048 failed"
		[ -n "$o" ] || die "could not parse openssl speed rsa2048's output"
		o_rates+=("$o")
		echo "openssl-speed-rsa2048 multi=$NPROC sign_per_s=$o" >>"$LOG"
		echo "  openssl: $o sign/s" >&2
		echo "send.sh: dkim run $run/$RUNS: edm send, $DKIM_ROWS rows, RSA-2048" >&2
		edm_send rsa2048 "$DKIM_ROWS"
		rates+=("$R_RATE") walls+=("$R_WALL") cpus+=("$R_CPU")
		sinks+=("$R_SINK_CPU") rsss+=("$R_RSS") d_self+=("$R_SELF")
		others+=("$R_OTHERS")
		echo "  edm:     $R_RATE msg/s ($R_WALL s)" >&2
	done
	record rsa2048
	# each run over the openssl rate measured just before it
	DKIM_RATIOS=$(for ((i = 0; i < RUNS; i++)); do
		awk -v e="${rates[i]}" -v o="${o_rates[i]}" 'BEGIN { printf "%.2f ", (o > 0 ? e / o : 0) }'
	done)
	# shellcheck disable=SC2086
	DKIM_RATIO_MED=$(median $DKIM_RATIOS)
	OSSL_MED=$(median "${o_rates[@]}")
	OSSL_MIN=$(minimum "${o_rates[@]}")
	OSSL_MAX=$(maximum "${o_rates[@]}")
	DKIM_SELF=$(median "${d_self[@]}")
fi

if [ "$DO_RSS" = 1 ]; then
	echo "send.sh: rss: edm send, $RSS_ROWS rows, under $TIME -v" >&2
	TIME_V=1
	edm_send rss "$RSS_ROWS"
	TIME_V=0
	cp "$TFILE" "$WORK/send-rss-time.txt"
	rates=("$R_RATE") walls=("$R_WALL") cpus=("$R_CPU") sinks=("$R_SINK_CPU") rsss=("$R_RSS")
	others=("$R_OTHERS")
	record rss
	# its journal and results take ~370 MB at 1,000,000 rows
	rm -rf "$WORK/send-rss.out"
	echo "  edm: $R_RATE msg/s, peak RSS $((R_RSS / 1024)) MB" >&2
fi

# --- report -------------------------------------------------------------------
# row LABEL KEY ROWS: one line of the table.
row() {
	awk -v l="$1" -v n="$3" -v med="${MED[$2]}" -v mn="${MIN[$2]}" -v mx="${MAX[$2]}" \
		-v w="${WALL[$2]}" -v c="${CPU[$2]}" -v s="${SINK[$2]}" -v r="${RSS[$2]}" \
		-v o="${OTHERS[$2]}" 'BEGIN {
		printf "%-22s %8d %9.0f %9.0f %9.0f %8.2f %9.1f %9.1f %8.1f %6.2f\n",
			l, n, med, mn, mx, w, c * 1e6 / n, s * 1e6 / n, r / 1024, o }'
}
# verdict OK(1/0) TEXT
verdict() { if [ "$1" = 1 ]; then echo "PASS  $2"; else echo "FAIL  $2"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? 1 : 0) }'; }

{
	echo "edm delivery benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
	echo "machine: $NPROC CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "build:   $BUILD ($(bench_build_info "$BUILD")); $(openssl version 2>/dev/null || echo "no openssl")"
	echo "server:  $SMTP_SINK ${SINK_USER[*]} 127.0.0.1:$PORT 256 (Postfix" \
		"$(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo "?")), a fresh one per run"
	echo "list:    rows spread evenly over $DOMAINS domain(s) (d1..d$DOMAINS.example), every row valid" \
		"and distinct; templates ~2 KB text + ~3 KB HTML, 5 variables"
	echo "config:  relay, tls = none, $CONNS connections ([smtp] max_connections and [domain *]" \
		"connections), rate = 0, connect_rate = 10000/s, messages_per_connection = 1000000"
	echo "rates:   messages / wall seconds of the client process (start-up included); $RUNS runs"
	echo "         each, interleaved, medians; CPU = user + sys of the client, sink CPU = smtp-sink's"
	echo
	printf '%-22s %8s %9s %9s %9s %8s %9s %9s %8s %6s\n' "run" rows "msg/s" min max "wall s" \
		"CPU us/m" "sink us/m" "RSS MB" others
	[ "$DO_PLAIN" = 0 ] || {
		row "smtp-source -d -l $PEER_LEN" peer "$ROWS"
		row "edm send" plain "$ROWS"
	}
	[ "$DO_DKIM" = 0 ] || {
		row "edm send + RSA-2048" rsa2048 "$DKIM_ROWS"
		printf '%-22s %8s %9.0f %9.0f %9.0f   (openssl speed -multi %s -seconds 3 rsa2048, sign/s)\n' \
			"openssl rsa2048" - "$OSSL_MED" "$OSSL_MIN" "$OSSL_MAX" "$NPROC"
	}
	[ "$DO_RSS" = 0 ] || row "edm send (RSS run)" rss "$RSS_ROWS"
	echo
	[ "$DO_PLAIN" = 0 ] || {
		echo "plain:   message sizes: edm $PLAIN_BYTES bytes (row 1, headers included), smtp-source" \
			"$PEER_LEN bytes of payload + its few headers"
		echo "         edm's own figure (from its loop's start): $PLAIN_SELF msg/s; per-run edm/smtp-source: $PAIR_RATIOS"
	}
	[ "$DO_DKIM" = 0 ] || {
		echo "dkim:    message size $DKIM_BYTES bytes (row 1); edm's own figure: $DKIM_SELF msg/s"
		echo "         per-run edm/openssl (openssl measured just before each run):" \
			"${DKIM_RATIOS}median $DKIM_RATIO_MED"
	}
	echo "others:  median CPUs kept busy by other processes during the client runs (of $NPROC);"
	echo "         the sink and the client need both cores, so any other load lowers the rates"
	[ "$DO_RSS" = 0 ] || {
		echo "rss:     GNU time -v, Maximum resident set size: ${RSS[rss]} KB ($WORK/send-rss-time.txt)"
		[ "$RSS_ROWS" = "$TARGET_RSS_ROWS" ] ||
			echo "note:    RSS_ROWS=$RSS_ROWS: the RSS target is for $TARGET_RSS_ROWS recipients"
	}
	[ "$ROWS" = "$TARGET_ROWS" ] || echo "note:    ROWS=$ROWS: the throughput targets are for $TARGET_ROWS recipients"
	[ "$CONNS" = "$TARGET_CONNS" ] || echo "note:    CONNS=$CONNS: the targets are for $TARGET_CONNS connections"
	echo
	if [ "$DO_PLAIN" = 1 ]; then
		r=$(awk -v e="${MED[plain]}" -v p="${MED[peer]}" 'BEGIN { printf "%.2f", (p > 0 ? e / p : 0) }')
		verdict "$(ge "$r" "$TARGET_RATIO")" \
			"edm $(printf %.0f "${MED[plain]}") msg/s = $r x smtp-source's $(printf %.0f "${MED[peer]}") msg/s (target >= $TARGET_RATIO x)"
	fi
	if [ "$DO_DKIM" = 1 ]; then
		r=$(awk -v e="${MED[rsa2048]}" -v o="$OSSL_MED" 'BEGIN { printf "%.2f", (o > 0 ? e / o : 0) }')
		verdict "$(ge "$r" "$TARGET_DKIM_FRACTION")" \
			"edm+RSA-2048 $(printf %.0f "${MED[rsa2048]}") msg/s = $r x openssl's $(printf %.0f "$OSSL_MED") sign/s on $NPROC cores (target >= $TARGET_DKIM_FRACTION x)"
	fi
	if [ "$DO_RSS" = 1 ]; then
		mb=$(awk -v k="${RSS[rss]}" 'BEGIN { printf "%.1f", k / 1024 }')
		verdict "$(awk -v m="$mb" -v t="$TARGET_RSS_MB" 'BEGIN { print (m <= t ? 1 : 0) }')" \
			"edm peak RSS $mb MB sending $RSS_ROWS recipients (target <= $TARGET_RSS_MB MB at $TARGET_RSS_ROWS)"
	fi
} | tee "$RESULTS"
echo "send.sh: report saved to $RESULTS" >&2
exit 0
