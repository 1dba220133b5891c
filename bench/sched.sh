#!/usr/bin/env bash
# sched.sh - benchmark the delivery scheduler (`edm send`) under realistic
# conditions on loopback: round-trip latency, many domains with mixed rate
# limits in mx mode, and one domain that throttles; each against the bound
# the limits allow.
#
# usage: bash bench/sched.sh
# env:   BUILD=build-bench  meson build dir (default build-bench/; `meson setup
#                           --buildtype=release` when missing, `ninja edm
#                           tests/fault_server` every run)
#        PARTS="latency mx throttle"   which parts to run
#        RUNS=3             runs of each measurement (medians are reported)
#        LAT_ROWS=20000     messages of the latency part
#        LAT_CONNS=200      its connections
#        DELAY_MS=50        its simulated round trip (fault_server --delay-ms)
#        MX_ROWS=15000      rows of the many-domain list (throttled ones not
#                           counted)
#        MX_DOMAINS=1000    its recipient domains
#        MX_MAXCONN=100     [smtp] max_connections of the mx parts (the
#                           shipped default)
#        MAX_RATE=0         [smtp] max_rate of the mx parts, msg/s (0: unset)
#        THROTTLED_ROWS=300 rows of the throttled domain (part throttle)
#        LINGER_GRACE=5     seconds edm may take to exit after its last
#                           delivery (docs/SCHEDULER.md: idle connections
#                           QUIT after IDLE_MS = 2 s)
#        RUN_TIMEOUT=180    seconds after which any one run is killed (the
#                           benchmark then fails)
#
# What it does, all in bench/work/ (gitignored), every file named sched-*:
#   latency: `tests/fault_server --delay-ms DELAY_MS` holds every reply as a
#     round trip would (a pipelined batch waits once); edm sends LAT_ROWS
#     messages (bench/send_gen.py's list and ~5 KB templates, one domain)
#     in relay mode, tls = none, over LAT_CONNS connections ([smtp]
#     max_connections and [domain *] connections = LAT_CONNS, rate = 0,
#     connect_rate = 10000/s, messages_per_connection = 1000000), RUNS
#     times with the server offering PIPELINING and RUNS times with
#     --no-pipelining. The bound is computed from the round trips edm makes
#     (engine/smtp_session.c): with PIPELINING, a message's MAIL + RCPT +
#     DATA leave behind the previous message's dot (pipeline_messages), so
#     the dot reply and the next 354 come back together and the message +
#     dot + the next commands leave in one write: r = 1, plus one round trip
#     for the first message's commands; without PIPELINING MAIL, RCPT, DATA
#     and message + dot each wait: r = 4. Each connection also waits for
#     the greeting and the EHLO reply before its first message and for the
#     QUIT reply after its last (h = 3, PIPELINING h = 4 with that first
#     round trip), and carries m = LAT_ROWS / LAT_CONNS messages (all open
#     at once), so
#       T_bound = (m x r + h) x d,   bound = LAT_ROWS / T_bound
#             = C / ((r + h/m) x d)       (d = DELAY_MS / 1000 s)
#     measured = messages / wall time of the edm process (start-up
#     included). Target: >= 0.8 x bound. The server's and edm's CPU are
#     reported: on 2 cores the server may be the bottleneck.
#   mx: bench/sched_gen.py writes a list of MX_ROWS rows over MX_DOMAINS
#     domains (big.example 40% at 200/s over 10 connections; 5 slowN.example
#     at 5/s sized to 90% of big's bound; the rest dN.example at 50/s with
#     3 connections each, Zipf-sized: see sched_gen.py), the dnsmasq
#     records (every MX -> mx.sink.test -> 127.0.0.1) and the [domain]
#     sections. dnsmasq (--no-resolv --bind-interfaces, a free high port on
#     127.0.0.1) answers edm's MX lookups ([smtp] mode = mx, resolver,
#     allow_private_mx = yes, mx_port = the sink's port). The sink is
#     tests/fault_server without delay, its --log a FIFO read by
#     `sched_gen.py stamp`, which stamps each delivery with the time it was
#     read (~1 ms; results.csv has seconds). The bound is max over domains
#     of max(0, count - burst) / rate (a full bucket sends `burst` at once;
#     burst = one second's worth, edm's default) and, with MAX_RATE,
#     (rows - MAX_RATE) / MAX_RATE. Measured: the makespan from the first
#     to the last delivery, and the wall time of the edm process; each
#     over the bound. Target: <= 1.05 x bound, for both.
#   throttle: the same list plus THROTTLED_ROWS rows on throttled.example,
#     whose MX (mx.throttled.test) is 127.0.0.2, where a second
#     fault_server answers every RCPT with `421 4.7.0 Too many messages,
#     slow down` (and closes). Short retries (retry_first 5s, retry_for
#     15s, backoff_period/backoff_pause 2s) and --no-wait; the throttled
#     domain cannot finish (its rows never go through), so once every
#     other row is delivered and LINGER_GRACE has passed edm is stopped
#     with SIGTERM (exit 75, as an operator would). Measured: the other
#     domains' makespan over their bound (the same as mx's). Target:
#     <= 1.05 x bound: a throttled domain does not slow the others.
#   After the last expected delivery, edm gets LINGER_GRACE seconds to
#   exit. When it has not (mx), the sink is stopped: the connections still
#   open then (the sink's "close reason=SIGTERM" lines) are counted and
#   attributed to their domains, and edm exits when they close. Its wall
#   time is then last delivery + LINGER_GRACE at least, and the report says
#   it did not exit on its own.
#   Prints the figures, bounds, ratios and PASS/FAIL lines, and saves the
#   report as results-sched-DATE.txt; sched.log has every run's line, edm's
#   output and the servers' messages.
# Every edm run starts from a removed out dir, and every expected row must
# be delivered, or the benchmark fails.
#
# Exit status: 0 whether the targets are met or not (it is a report, not a
# test); 1 when something failed to run (build, a tool, a server, dnsmasq,
# edm, an undelivered row, a timeout); 2 for bad usage.
# It does not: use the network beyond 127.0.0.0/8, write outside bench/work
# (except building BUILD), or need anything outside this repository.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
TIME=/usr/bin/time       # GNU time (package `time`)
DNSMASQ=/usr/sbin/dnsmasq

TARGET_LAT=0.8           # edm msg/s over the round-trip bound, at least
TARGET_MX=1.05           # makespan over the rate bound, at most

PARTS=${PARTS:-latency mx throttle}
RUNS=${RUNS:-3}
LAT_ROWS=${LAT_ROWS:-20000}
LAT_CONNS=${LAT_CONNS:-200}
DELAY_MS=${DELAY_MS:-50}
MX_ROWS=${MX_ROWS:-15000}
MX_DOMAINS=${MX_DOMAINS:-1000}
MX_MAXCONN=${MX_MAXCONN:-100}
MAX_RATE=${MAX_RATE:-0}
THROTTLED_ROWS=${THROTTLED_ROWS:-300}
LINGER_GRACE=${LINGER_GRACE:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
BUILD=${BUILD:-build-bench}
NPROC=$(nproc)

die() { echo "sched.sh: $*" >&2; exit 1; }
usage() {
	echo "usage: bash bench/sched.sh  (RUNS, LAT_ROWS, LAT_CONNS, DELAY_MS, MX_ROWS," \
		"MX_DOMAINS, MX_MAXCONN, THROTTLED_ROWS, LINGER_GRACE, RUN_TIMEOUT positive" \
		"integers, MAX_RATE an integer; PARTS words of: latency mx throttle)" >&2
	exit 2
}
[ $# -eq 0 ] || usage
for n in "$RUNS" "$LAT_ROWS" "$LAT_CONNS" "$DELAY_MS" "$MX_ROWS" "$MX_DOMAINS" "$MX_MAXCONN" \
	"$THROTTLED_ROWS" "$LINGER_GRACE" "$RUN_TIMEOUT"; do
	case $n in ''|*[!0-9]*|0) usage ;; esac
done
case $MAX_RATE in ''|*[!0-9]*) usage ;; esac
if [ "$LAT_CONNS" -gt 10000 ] || [ "$MX_MAXCONN" -gt 10000 ]; then usage; fi
DO_LAT=0 DO_MX=0 DO_THR=0
for p in $PARTS; do
	case $p in
	latency) DO_LAT=1 ;;
	mx) DO_MX=1 ;;
	throttle) DO_THR=1 ;;
	*) usage ;;
	esac
done
[ $((DO_LAT + DO_MX + DO_THR)) -gt 0 ] || usage

# --- tools --------------------------------------------------------------------
[ -x "$TIME" ] || die "$TIME not found: install the Debian package 'time'"
[ $((DO_MX + DO_THR)) = 0 ] || [ -x "$DNSMASQ" ] ||
	die "$DNSMASQ not found: install the Debian package dnsmasq-base"
for t in python3 timeout pgrep mkfifo meson ninja; do
	command -v "$t" >/dev/null || die "$t not found"
done

# --- build --------------------------------------------------------------------
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
mkdir -p "$WORK"
(cd "$ROOT" && { [ -d "$BUILD/meson-info" ] || meson setup --buildtype=release "$BUILD"; } &&
	ninja -C "$BUILD" edm tests/fault_server) >"$WORK/sched-build.log" 2>&1 ||
	{ cat "$WORK/sched-build.log" >&2; die "build failed (log: $WORK/sched-build.log)"; }
EDM=$BUILD/edm
FAULT=$BUILD/tests/fault_server

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

LOG=$WORK/sched.log
TFILE=$WORK/sched-time.$$
RESULTS=$WORK/results-sched-$(date +%Y%m%d-%H%M%S).txt
CLK_TCK=$(getconf CLK_TCK)
FS_PIDS=()          # running fault_servers
STAMP_PID=
DNS_PID=
EDM_BG=             # the `time` process running edm in the background

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local p
	if [ -n "$EDM_BG" ]; then
		kill "$EDM_BG" 2>/dev/null || true
		wait "$EDM_BG" 2>/dev/null || true
	fi
	for p in "${FS_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$STAMP_PID" ]; then
		kill "$STAMP_PID" 2>/dev/null || true
		wait "$STAMP_PID" 2>/dev/null || true
	fi
	if [ -n "$DNS_PID" ]; then
		kill "$DNS_PID" 2>/dev/null || true
		wait "$DNS_PID" 2>/dev/null || true
	fi
	rm -f "$TFILE" "$WORK/sched-sink.fifo"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() {
	local ok=$1
	shift
	if [ "$ok" = 1 ]; then echo "PASS  $*"; else echo "FAIL  $*"; fi
}
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
proc_ticks() {
	[ -r "/proc/$1/stat" ] && sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }' || echo 0
}
epoch() { date +%s.%N; }
# Established TCP connections from a client to 127.0.0.1:PORT (both ends
# are on this machine, so /proc/net/tcp lists the client's side too).
conns_to() {
	awk -v p="$(printf '0100007F:%04X' "$1")" '$3 == p && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp
}

# start_fault NAME LISTEN ARGS...: a fault_server (bounded by --max-seconds)
# on LISTEN (HOST:PORT, port 0 = any); sets FS_PID and FS_PORT.
start_fault() {
	local name=$1 listen=$2 i
	shift 2
	: >"$WORK/sched-fs-$name.out"
	echo "--- fault_server $name $listen $* $(date +%T)" >>"$LOG"
	"$FAULT" --listen "$listen" --max-seconds "$RUN_TIMEOUT" "$@" \
		>"$WORK/sched-fs-$name.out" 2>"$WORK/sched-fs-$name.err" &
	FS_PID=$!
	FS_PIDS+=("$FS_PID")
	for ((i = 0; i < 100; i++)); do
		FS_PORT=$(sed -n 's/^port=//p' "$WORK/sched-fs-$name.out")
		[ -z "$FS_PORT" ] || return 0
		kill -0 "$FS_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$WORK/sched-fs-$name.err" >&2
	die "fault_server $name did not start on $listen"
}

# stop_fault PID NAME: SIGTERM it (it closes what is open and exits 0),
# first reading its CPU ticks into FS_TICKS; its stderr goes to the log.
stop_fault() {
	local pid=$1 name=$2 p keep=()
	FS_TICKS=$(proc_ticks "$pid")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${FS_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	FS_PIDS=("${keep[@]}")
	grep -v ' close reason=client closed' "$WORK/sched-fs-$name.err" >>"$LOG" || true
}

# dnsmasq on 127.0.0.1 at a free high port, with the records of CONF;
# sets DNS_PORT. Probed with an MX query for big.example.
dns_probe() {
	local b r
	exec 3<>"/dev/udp/127.0.0.1/$1" || return 1
	printf 'AB\001\000\000\001\000\000\000\000\000\000\003big\007example\000\000\017\000\001' >&3
	read -r -t 1 -N 1 b <&3 2>/dev/null
	r=$?
	exec 3<&-
	[ "$r" -eq 0 ] && [ "$b" = A ]
}
start_dns() {
	local conf=$1 port
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40001))
		"$DNSMASQ" --no-daemon --no-resolv --no-hosts --bind-interfaces \
			--listen-address=127.0.0.1 --port="$port" --pid-file="$WORK/sched-dnsmasq.pid" \
			--conf-file="$conf" >>"$LOG" 2>&1 </dev/null &
		DNS_PID=$!
		for _ in {1..30}; do
			kill -0 "$DNS_PID" 2>/dev/null || break
			if dns_probe "$port"; then
				DNS_PORT=$port
				return 0
			fi
			sleep 0.1
		done
		kill "$DNS_PID" 2>/dev/null || true
		wait "$DNS_PID" 2>/dev/null || true
		DNS_PID=
	done
	die "dnsmasq did not start on 127.0.0.1 (log: $LOG)"
}

# The [campaign] and [message] part of every config: NAME LIST.
config_head() {
	cat <<EOF
; written by bench/sched.sh: scheduler benchmark ($1)
[campaign]
name = sched-$1
recipients = $(basename "$2")
out_dir = sched-$1.out

[validate]
dns = no

[message]
from = "Acme News <news@news.example>"
to_name = {{first_name}} {{last_name}}
subject = "{{first_name}}, your spring offer for {{city}} is here"
text = tmpl-send/body.txt
html = tmpl-send/body.html
unsubscribe_url = https://news.example/unsubscribe?e={{email}}&c={{code}}

EOF
}

# edm_result OUTFILE: "delivered pending" from edm's summary line.
edm_result() {
	sed -n 's/.* delivered \([0-9]*\),.* still pending \([0-9]*\) .*/\1 \2/p' "$1" | tail -n 1
}

# --- inputs -------------------------------------------------------------------
: >"$LOG"
python3 "$BENCH/send_gen.py" templates "$WORK/tmpl-send" 2>>"$LOG" || die "send_gen.py templates failed"
if [ "$DO_LAT" = 1 ]; then
	LAT_LIST=$WORK/sched-lat-$LAT_ROWS.csv
	if [ ! -s "$LAT_LIST" ] || [ "$BENCH/send_gen.py" -nt "$LAT_LIST" ]; then
		python3 "$BENCH/send_gen.py" list "$LAT_LIST" "$LAT_ROWS" --domains 1 2>>"$LOG" ||
			die "send_gen.py list failed (log: $LOG)"
	fi
fi
GEN_ARGS=(--rows "$MX_ROWS" --domains "$MX_DOMAINS")
if [ "$DO_MX" = 1 ]; then
	MX_PREFIX=$WORK/sched-mx-$MX_ROWS-$MX_DOMAINS
	python3 "$BENCH/sched_gen.py" mx "$MX_PREFIX" "${GEN_ARGS[@]}" 2>>"$LOG" ||
		die "sched_gen.py mx failed (log: $LOG)"
fi
if [ "$DO_THR" = 1 ]; then
	THR_PREFIX=$WORK/sched-thr-$MX_ROWS-$MX_DOMAINS-$THROTTLED_ROWS
	python3 "$BENCH/sched_gen.py" mx "$THR_PREFIX" "${GEN_ARGS[@]}" \
		--throttled "$THROTTLED_ROWS" 2>>"$LOG" || die "sched_gen.py mx --throttled failed (log: $LOG)"
fi

# --- part 1: latency ----------------------------------------------------------
declare -A LAT_RATE LAT_BOUND LAT_BARE LAT_WALL LAT_SELF LAT_CPU LAT_SINK LAT_OTHERS LAT_MIN LAT_MAX LAT_R
if [ "$DO_LAT" = 1 ]; then
	cat "$LAT_LIST" >/dev/null
	M_PER_CONN=$(calc '%g' "$LAT_ROWS / $LAT_CONNS")
	# connections that get no message (LAT_CONNS > LAT_ROWS) are not opened
	[ "$LAT_CONNS" -le "$LAT_ROWS" ] || die "LAT_CONNS ($LAT_CONNS) > LAT_ROWS ($LAT_ROWS)"
	for mode in pipelining no-pipelining; do
		# pipelining: one round trip per message once the first one's
		# commands were answered (pipeline_messages)
		if [ "$mode" = pipelining ]; then r=1 h=4; else r=4 h=3; fi
		LAT_R[$mode]=$r
		# T = (m r + h) d with h = 3 (greeting, EHLO, QUIT) [+ 1]
		LAT_BOUND[$mode]=$(calc '%.1f' "$LAT_ROWS / (($M_PER_CONN * $r + $h) * $DELAY_MS / 1000)")
		LAT_BARE[$mode]=$(calc '%.1f' "$LAT_CONNS / ($r * $DELAY_MS / 1000)")
		rates=() walls=() selfs=() cpus=() sinks=() others=()
		for ((run = 1; run <= RUNS; run++)); do
			echo "sched.sh: latency ($mode) run $run/$RUNS: $LAT_ROWS messages, $LAT_CONNS connections, ${DELAY_MS} ms" >&2
			start_fault lat 127.0.0.1:0 --quiet --delay-ms "$DELAY_MS" "--$mode"
			pid=$FS_PID
			{ config_head lat "$LAT_LIST"; cat <<EOF; } >"$WORK/sched-lat.ini"
[smtp]
mode = relay
relay = 127.0.0.1:$FS_PORT
tls = none
max_connections = $LAT_CONNS

; the shipped limits lifted: only the round trips limit the rate
[domain *]
connections = $LAT_CONNS
rate = 0
connect_rate = 10000/s
messages_per_connection = 1000000
EOF
			rm -rf "$WORK/sched-lat.out"
			b0=$(machine_busy_ticks)
			rc=0
			(cd "$WORK" && "$TIME" -f '%e %U %S' -o "$TFILE" timeout --foreground "$RUN_TIMEOUT" \
				"$EDM" send --no-progress sched-lat.ini) >"$WORK/sched-run.out" 2>&1 || rc=$?
			b1=$(machine_busy_ticks)
			stop_fault "$pid" lat
			cat "$WORK/sched-run.out" >>"$LOG"
			[ "$rc" = 0 ] || { tail -n 20 "$WORK/sched-run.out" >&2; die "latency: edm exit status $rc"; }
			read -r delivered _ < <(edm_result "$WORK/sched-run.out")
			[ "${delivered:-}" = "$LAT_ROWS" ] || die "latency: edm delivered ${delivered:-?} of $LAT_ROWS"
			read -r wall u s < <(tail -n 1 "$TFILE")
			cpu=$(calc '%.2f' "$u + $s")
			sink=$(calc '%.2f' "$FS_TICKS / $CLK_TCK")
			rate=$(calc '%.1f' "$LAT_ROWS / $wall")
			self=$(sed -n 's/.* s, \([0-9.]*\) msg\/s).*/\1/p' "$WORK/sched-run.out")
			oth=$(calc '%.2f' "(($b1 - $b0) / $CLK_TCK - $cpu - $sink) / $wall")
			awk -v o="$oth" 'BEGIN { exit !(o < 0) }' && oth=0.00
			echo "latency-$mode run=$run wall_s=$wall msgs_per_s=$rate edm_self=$self edm_cpu_s=$cpu sink_cpu_s=$sink others_cpus=$oth bound=${LAT_BOUND[$mode]}" >>"$LOG"
			echo "  edm: $rate msg/s ($wall s; bound ${LAT_BOUND[$mode]}); sink CPU $sink s" >&2
			rates+=("$rate") walls+=("$wall") selfs+=("$self") cpus+=("$cpu") sinks+=("$sink") others+=("$oth")
		done
		LAT_RATE[$mode]=$(median "${rates[@]}")
		LAT_MIN[$mode]=$(minimum "${rates[@]}")
		LAT_MAX[$mode]=$(maximum "${rates[@]}")
		LAT_WALL[$mode]=$(median "${walls[@]}")
		LAT_SELF[$mode]=$(median "${selfs[@]}")
		LAT_CPU[$mode]=$(median "${cpus[@]}")
		LAT_SINK[$mode]=$(median "${sinks[@]}")
		LAT_OTHERS[$mode]=$(median "${others[@]}")
	done
fi

# --- parts 2 and 3: many domains in mx mode -----------------------------------
# mx_run NAME PREFIX THROTTLED(0/1) RUN: one run; appends to the MXR_* arrays.
MXR_RATIO=() MXR_MAKESPAN=() MXR_WALL=() MXR_WALLR=() MXR_LATEST=() MXR_LINGER=() MXR_CPU=() MXR_SINK=()
MXR_BOUND='' MXR_BOUNDBY='' MXR_EXIT=() MXR_LATESTDOM=() MXR_THR=() MXR_GROUPS=() MXR_LINGERDOMS=()
mx_run() {
	local name=$1 prefix=$2 thr=$3 run=$4 fifo=$WORK/sched-sink.fifo stamped=$WORK/sched-$1.stamped
	local sink_pid thr_pid="" expected n t_done="" lingered=0 open_conns=0 rc=0 edm_pid tpid wall u s start
	local args=() an
	rm -f "$fifo" "$stamped" "$WORK/sched-$name-thr.log"
	mkfifo "$fifo"
	python3 "$BENCH/sched_gen.py" stamp "$fifo" "$stamped" 2>>"$LOG" &
	STAMP_PID=$!
	start_fault "$name" 127.0.0.1:0 --log "$fifo"
	sink_pid=$FS_PID
	FS_PORT_MAIN=$FS_PORT
	if [ "$thr" = 1 ]; then
		start_fault "$name-thr" "127.0.0.2:$FS_PORT" --log "$WORK/sched-$name-thr.log" \
			--rcpt-reply '@=421 4.7.0 Too many messages, slow down'
		thr_pid=$FS_PID
	fi
	{
		config_head "$name" "$prefix.csv"
		cat <<EOF
[smtp]
mode = mx
resolver = 127.0.0.1:$DNS_PORT
allow_private_mx = yes
mx_port = $FS_PORT
tls = none
max_connections = $MX_MAXCONN
EOF
		[ "$MAX_RATE" = 0 ] || echo "max_rate = $MAX_RATE/s"
		if [ "$thr" = 1 ]; then
			cat <<EOF
; short retries, so the throttled domain keeps trying during the run
retry_first = 5s
retry_for = 15s
retry_max_interval = 10s
backoff_period = 2s
backoff_pause = 2s
EOF
		fi
		echo
		cat "$prefix.shaping.ini"
	} >"$WORK/sched-$name.ini"
	expected=$(awk -F'\t' 'NR > 1 && $5 != "throttled" { n += $2 } END { print n }' "$prefix.tsv")
	rm -rf "$WORK/sched-$name.out"
	[ "$thr" = 1 ] && args=(--no-wait)
	b0=$(machine_busy_ticks)
	start=$(epoch)
	(cd "$WORK" && exec "$TIME" -f '%e %U %S' -o "$TFILE" timeout --foreground "$RUN_TIMEOUT" \
		"$EDM" send --no-progress "${args[@]}" "sched-$name.ini") >"$WORK/sched-run.out" 2>&1 &
	EDM_BG=$!
	# watch the sink's log until every expected row is delivered
	while kill -0 "$EDM_BG" 2>/dev/null; do
		n=$(grep -c '^[0-9.]* msg ' "$stamped" 2>/dev/null || true)
		if [ "${n:-0}" -ge "$expected" ]; then
			t_done=$(epoch)
			break
		fi
		sleep 0.2
	done
	# edm exited on its own: give the stamper (reading the sink's log
	# through a FIFO) up to 3 s to catch up before counting
	if [ -z "$t_done" ]; then
		for _ in $(seq 30); do
			n=$(grep -c '^[0-9.]* msg ' "$stamped" 2>/dev/null || true)
			if [ "${n:-0}" -ge "$expected" ]; then
				t_done=$(epoch)
				break
			fi
			sleep 0.1
		done
	fi
	if [ -n "$t_done" ]; then
		# LINGER_GRACE seconds to exit on its own
		while kill -0 "$EDM_BG" 2>/dev/null &&
			awk -v a="$t_done" -v b="$(epoch)" -v g="$LINGER_GRACE" 'BEGIN { exit !(b - a < g) }'; do
			sleep 0.1
		done
		if kill -0 "$EDM_BG" 2>/dev/null; then
			lingered=1
			open_conns=$(conns_to "$FS_PORT_MAIN")
			if [ "$thr" = 1 ]; then
				# the throttled domain keeps it running: stop it
				tpid=$(pgrep -P "$EDM_BG" | head -n 1 || true)
				edm_pid=$(pgrep -P "${tpid:-0}" | head -n 1 || true)
				[ -z "$edm_pid" ] || kill -TERM "$edm_pid" 2>/dev/null || true
			else
				# idle connections keep it running: close them from the sink
				stop_fault "$sink_pid" "$name"
				sink_pid=
			fi
		fi
	fi
	wait "$EDM_BG" || rc=$?
	EDM_BG=
	b1=$(machine_busy_ticks)
	[ -z "$sink_pid" ] || stop_fault "$sink_pid" "$name"
	sink=$(calc '%.2f' "$FS_TICKS / $CLK_TCK")
	if [ -n "$thr_pid" ]; then
		stop_fault "$thr_pid" "$name-thr"
		sink=$(calc '%.2f' "$sink + $FS_TICKS / $CLK_TCK")
	fi
	wait "$STAMP_PID" 2>/dev/null || true
	STAMP_PID=
	cat "$WORK/sched-run.out" >>"$LOG"
	case $rc in
	0) ;;
	75) [ "$thr" = 1 ] || { tail -n 20 "$WORK/sched-run.out" >&2; die "$name: edm exit status 75"; } ;;
	*) tail -n 20 "$WORK/sched-run.out" >&2; die "$name: edm exit status $rc (timeout: 124)" ;;
	esac
	[ -n "$t_done" ] || die "$name: edm exited before every row was delivered ($n of $expected; see $LOG)"
	read -r wall u s < <(tail -n 1 "$TFILE")
	cpu=$(calc '%.2f' "$u + $s")
	# the connections the sink closed itself: conn id and messages
	grep ' close reason=SIGTERM ' "$WORK/sched-fs-$name.err" |
		sed 's/.*conn=\([0-9]*\) .*messages=\([0-9]*\).*/\1 \2/' >"$WORK/sched-$name.lingering" || true
	an=$(python3 "$BENCH/sched_gen.py" analyse "$stamped" "$prefix.tsv" --start "$start" \
		--end "$(calc '%.6f' "$start + $wall")" --max-rate "$MAX_RATE" --exclude throttled \
		--lingering "$WORK/sched-$name.lingering") || die "$name: sched_gen.py analyse failed"
	printf '%s\n' "$an" | sed "s/^/$name run=$run /" >>"$LOG"
	k() { printf '%s\n' "$an" | sed -n "s/^$1=//p"; }
	if [ "$(k delivered)" != "$expected" ] || [ "$(k stray)" != 0 ]; then
		die "$name: the sink logged $(k delivered) of $expected deliveries and $(k stray) to unknown domains"
	fi
	MXR_BOUND=$(k bound_s) MXR_BOUNDBY=$(k bound_by)
	MXR_RATIO+=("$(k ratio)") MXR_MAKESPAN+=("$(k makespan_s)")
	if [ "$lingered" = 1 ]; then
		MXR_WALL+=("$wall") MXR_EXIT+=("no: stopped $LINGER_GRACE s after the last delivery")
	else
		MXR_WALL+=("$wall") MXR_EXIT+=("yes")
	fi
	MXR_WALLR+=("$(k wall_ratio)") MXR_LATEST+=("$(k latest_ratio)")
	MXR_LATESTDOM+=("$(k latest_domain) $(k latest_done_s) s, bound $(k latest_bound_s) s")
	MXR_LINGER+=("$open_conns")
	if [ -s "$WORK/sched-$name.lingering" ]; then
		MXR_LINGERDOMS+=("the sink closed them; group:count/median seconds each sat idle before its domain's last delivery: $(k lingering_groups)")
	else
		MXR_LINGERDOMS+=("edm QUIT them when stopped")
	fi
	MXR_CPU+=("$cpu") MXR_SINK+=("$sink")
	MXR_GROUPS+=("$(for g in big slow tail; do printf '%s last %s s (bound %s) ' "$g" \
		"$(k "group_${g}_last_s")" "$(k "group_${g}_bound_s")"; done)")
	if [ "$thr" = 1 ]; then
		MXR_THR+=("421s $(grep -c '^rcpt-rejected ' "$WORK/sched-$name-thr.log" || true), edm: $(edm_result "$WORK/sched-run.out" |
			awk '{ print "pending " $2 }'), expired $(sed -n 's/.* expired \([0-9]*\),.*/\1/p' "$WORK/sched-run.out"), window cuts $(grep -c 'event=window.*throttled.example.*change=halve' "$WORK/sched-$name.out/send.log" || true), other domains' window events $(grep 'event=window' "$WORK/sched-$name.out/send.log" | grep -vc 'throttled.example' || true)")
	fi
	echo "$name run=$run wall_s=$wall edm_cpu_s=$cpu sink_cpu_s=$sink exit=$rc lingered=$lingered others_cpus=$(calc '%.2f' "(($b1 - $b0) / $CLK_TCK - $cpu - $sink) / $wall")" >>"$LOG"
	echo "  makespan $(k makespan_s) s, bound $(k bound_s) s ($(k ratio) x); edm wall $wall s," \
		"exited on its own: $([ "$lingered" = 1 ] && echo "no ($open_conns connections open)" || echo yes)" >&2
}

declare -A MX_SUM
# mx_part NAME PREFIX THROTTLED: RUNS runs, medians into MX_SUM[NAME,*].
mx_part() {
	local name=$1 prefix=$2 thr=$3 run i
	MXR_RATIO=() MXR_MAKESPAN=() MXR_WALL=() MXR_WALLR=() MXR_LATEST=() MXR_LINGER=() MXR_CPU=()
	MXR_SINK=() MXR_EXIT=() MXR_LATESTDOM=() MXR_THR=() MXR_GROUPS=() MXR_LINGERDOMS=()
	cat "$prefix.csv" >/dev/null
	for ((run = 1; run <= RUNS; run++)); do
		echo "sched.sh: $name run $run/$RUNS: $(($(wc -l <"$prefix.csv") - 1)) rows, mx mode" >&2
		mx_run "$name" "$prefix" "$thr" "$run"
	done
	MX_SUM[$name,bound]=$MXR_BOUND
	MX_SUM[$name,boundby]=$MXR_BOUNDBY
	MX_SUM[$name,ratio]=$(median "${MXR_RATIO[@]}")
	MX_SUM[$name,ratios]=${MXR_RATIO[*]}
	MX_SUM[$name,makespan]=$(median "${MXR_MAKESPAN[@]}")
	MX_SUM[$name,wall]=$(median "${MXR_WALL[@]}")
	MX_SUM[$name,wallr]=$(median "${MXR_WALLR[@]}")
	MX_SUM[$name,wallrs]=${MXR_WALLR[*]}
	MX_SUM[$name,latest]=$(median "${MXR_LATEST[@]}")
	MX_SUM[$name,linger]=$(median "${MXR_LINGER[@]}")
	MX_SUM[$name,cpu]=$(median "${MXR_CPU[@]}")
	MX_SUM[$name,sink]=$(median "${MXR_SINK[@]}")
	MX_SUM[$name,detail]=$(for ((i = 0; i < RUNS; i++)); do
		echo "  run $((i + 1)): makespan ${MXR_MAKESPAN[i]} s (${MXR_RATIO[i]} x), wall ${MXR_WALL[i]} s (${MXR_WALLR[i]} x), exited on its own: ${MXR_EXIT[i]}"
		echo "         ${MXR_GROUPS[i]}"
		echo "         latest against its own bound: ${MXR_LATESTDOM[i]} (${MXR_LATEST[i]} x)"
		[ "${MXR_LINGER[i]:-0}" = 0 ] || echo "         connections open after the grace: ${MXR_LINGER[i]} (${MXR_LINGERDOMS[i]})"
		[ "$thr" = 0 ] || echo "         throttled.example: ${MXR_THR[i]}"
	done)
}

if [ $((DO_MX + DO_THR)) -gt 0 ]; then
	if [ "$DO_THR" = 1 ]; then start_dns "$THR_PREFIX.dns.conf"; else start_dns "$MX_PREFIX.dns.conf"; fi
	echo "--- dnsmasq on 127.0.0.1:$DNS_PORT" >>"$LOG"
	[ "$DO_MX" = 0 ] || mx_part mx "$MX_PREFIX" 0
	[ "$DO_THR" = 0 ] || mx_part thr "$THR_PREFIX" 1
fi

# --- report -------------------------------------------------------------------
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? 1 : 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? 1 : 0) }'; }
{
	echo "edm scheduler benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
	echo "machine: $NPROC CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "build:   $BUILD ($(bench_build_info "$BUILD"))"
	echo "runs:    $RUNS of each measurement, medians (min-max where shown)"
	if [ "$DO_LAT" = 1 ]; then
		echo
		echo "== latency: $LAT_ROWS messages, $LAT_CONNS connections, fault_server --delay-ms $DELAY_MS, relay, tls = none"
		echo "bound:   T = (m x r + h) x d, rate = N / T = C / ((r + h/m) x d), with C = $LAT_CONNS connections,"
		echo "         m = N / C = $M_PER_CONN messages each (all open at once), d = $DELAY_MS ms, h = 3 round trips"
		echo "         per connection (greeting, EHLO, QUIT; PIPELINING 4: the first message's commands),"
		echo "         r round trips per message: PIPELINING 1 (message + dot + the next MAIL+RCPT+DATA in one"
		echo "         write), none 4 (MAIL, RCPT, DATA, message+dot)"
		echo "measured: messages / wall time of the edm process (start-up included)"
		printf '%-15s %2s %9s %9s %9s %9s %9s %6s %8s %8s %7s\n' mode r "bare C/rd" bound "msg/s" min max ratio \
			"edm CPU" "sink CPU" others
		for mode in pipelining no-pipelining; do
			printf '%-15s %2s %9.0f %9.0f %9.0f %9.0f %9.0f %6.3f %7.2fs %7.2fs %7.2f\n' "$mode" "${LAT_R[$mode]}" \
				"${LAT_BARE[$mode]}" "${LAT_BOUND[$mode]}" "${LAT_RATE[$mode]}" "${LAT_MIN[$mode]}" \
				"${LAT_MAX[$mode]}" "$(calc '%.3f' "${LAT_RATE[$mode]} / ${LAT_BOUND[$mode]}")" \
				"${LAT_CPU[$mode]}" "${LAT_SINK[$mode]}" "${LAT_OTHERS[$mode]}"
		done
		for mode in pipelining no-pipelining; do
			echo "$mode: wall ${LAT_WALL[$mode]} s, edm's own figure ${LAT_SELF[$mode]} msg/s; the sink used" \
				"$(calc '%.0f' "100 * ${LAT_SINK[$mode]} / ${LAT_WALL[$mode]}")% of one core" \
				"(of $NPROC), edm $(calc '%.0f' "100 * ${LAT_CPU[$mode]} / ${LAT_WALL[$mode]}")%"
		done
	fi
	if [ "$DO_MX" = 1 ] || [ "$DO_THR" = 1 ]; then
		echo
		echo "== many domains, mx mode: dnsmasq on 127.0.0.1, every MX -> the sink on 127.0.0.1, tls = none,"
		echo "   max_connections = $MX_MAXCONN$([ "$MAX_RATE" = 0 ] || echo ", max_rate = $MAX_RATE/s")"
		prefix=${MX_PREFIX:-$THR_PREFIX}
		awk -F'\t' 'NR > 1 && $5 != "throttled" { n[$5]++; c[$5] += $2; r[$5] = $3; if ($2 > mx[$5]) mx[$5] = $2 }
			END { printf "list:    %d domains: big %d rows at %g/s; %d slow x %d rows at %g/s; %d tail domains, %d rows, at %g/s (largest %d)\n",
				n["big"] + n["slow"] + n["tail"], c["big"], r["big"], n["slow"], mx["slow"], r["slow"],
				n["tail"], c["tail"], r["tail"], mx["tail"] }' "$prefix.tsv"
		echo "bound:   max over domains of max(0, count - burst) / rate (burst = rate x 1 s)$([ "$MAX_RATE" = 0 ] ||
			echo ", and (rows - max_rate) / max_rate")"
		echo "measured: makespan = first to last delivery (the sink's log, stamped to ~1 ms);"
		echo "         wall = the edm process, start to exit; both over the bound"
	fi
	if [ "$DO_MX" = 1 ]; then
		echo
		echo "-- mx: bound ${MX_SUM[mx,bound]} s (set by ${MX_SUM[mx,boundby]})"
		echo "   makespan ${MX_SUM[mx,makespan]} s = ${MX_SUM[mx,ratio]} x bound (runs: ${MX_SUM[mx,ratios]})"
		echo "   wall     ${MX_SUM[mx,wall]} s = ${MX_SUM[mx,wallr]} x bound (runs: ${MX_SUM[mx,wallrs]})"
		echo "   edm CPU ${MX_SUM[mx,cpu]} s, sink CPU ${MX_SUM[mx,sink]} s"
		echo "${MX_SUM[mx,detail]}"
	fi
	if [ "$DO_THR" = 1 ]; then
		echo
		echo "-- throttle: + $THROTTLED_ROWS rows on throttled.example (MX 127.0.0.2: every RCPT gets 421 4.7.0);"
		echo "   the other domains' bound ${MX_SUM[thr,bound]} s (set by ${MX_SUM[thr,boundby]})"
		echo "   their makespan ${MX_SUM[thr,makespan]} s = ${MX_SUM[thr,ratio]} x bound (runs: ${MX_SUM[thr,ratios]})"
		[ "$DO_MX" = 0 ] || echo "   without the throttled domain (mx above): ${MX_SUM[mx,makespan]} s"
		echo "${MX_SUM[thr,detail]}"
		echo "   (edm is stopped with SIGTERM once the others are delivered: the throttled rows cannot finish)"
	fi
	echo
	if [ "$DO_LAT" = 1 ]; then
		for mode in pipelining no-pipelining; do
			r=$(calc '%.3f' "${LAT_RATE[$mode]} / ${LAT_BOUND[$mode]}")
			verdict "$(ge "$r" "$TARGET_LAT")" "latency, $mode: $(printf %.0f "${LAT_RATE[$mode]}") msg/s =" \
				"$r x the round-trip bound $(printf %.0f "${LAT_BOUND[$mode]}") msg/s (target >= $TARGET_LAT x)"
		done
	fi
	if [ "$DO_MX" = 1 ]; then
		verdict "$(le "${MX_SUM[mx,ratio]}" "$TARGET_MX")" "mx, makespan (first to last delivery):" \
			"${MX_SUM[mx,makespan]} s = ${MX_SUM[mx,ratio]} x the bound ${MX_SUM[mx,bound]} s (target <= $TARGET_MX x)"
		verdict "$(le "${MX_SUM[mx,wallr]}" "$TARGET_MX")" "mx, edm process wall: ${MX_SUM[mx,wall]} s =" \
			"${MX_SUM[mx,wallr]} x the bound (target <= $TARGET_MX x)$([ "${MX_SUM[mx,linger]:-0}" = 0 ] ||
				echo "; it did not exit on its own: ${MX_SUM[mx,linger]} idle connections still open")"
	fi
	if [ "$DO_THR" = 1 ]; then
		verdict "$(le "${MX_SUM[thr,ratio]}" "$TARGET_MX")" "throttle, the other domains' makespan:" \
			"${MX_SUM[thr,makespan]} s = ${MX_SUM[thr,ratio]} x their bound ${MX_SUM[thr,bound]} s (target <= $TARGET_MX x)"
	fi
} | tee "$RESULTS"
echo "sched.sh: report saved to $RESULTS" >&2
exit 0
