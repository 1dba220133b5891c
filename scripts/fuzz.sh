#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer harnesses (tests/fuzz/) and run them.
#
# usage: scripts/fuzz.sh [-t SECONDS] [-b BUILD_DIR] [-r] [NAME...]
#   -t SECONDS   fuzzing time per harness (default 30, the CI run; 600 is
#                the 10-minute target of issue 6; 0 = regression only)
#   -b DIR       build directory (default build-fuzz); set up with
#                CC=clang meson setup DIR -Dfuzz=true -Db_lundef=false
#   -r           regression only: run the seed corpus and the kept
#                crashers once, no fuzzing (same as -t 0)
#   NAME...      harnesses to run (smtp_reply, csv, ...); default all
# env FUZZ_SEED=N  libFuzzer's -seed (default 0: a new one each run)
#
# For each harness: first every file of tests/fuzz/corpus/NAME and
# tests/fuzz/crashers/NAME runs once (so an old crasher fails at once),
# then libFuzzer fuzzes for SECONDS from a scratch copy of the corpus in
# DIR/fuzz-work/NAME (the checked-in seeds are never written to). A new
# crash, leak, UBSan report, timeout or out-of-memory input is saved in
# tests/fuzz/crashers/NAME/ (keep it: it is a regression test from then
# on). Logs: DIR/fuzz-logs/NAME.log. The exit status is non-zero when any
# harness failed. Needs clang and libclang-rt-14-dev (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=30
build=build-fuzz
regress_only=0
while getopts "t:b:rh" opt; do
	case $opt in
	t) secs=$OPTARG ;;
	b) build=$OPTARG ;;
	r) regress_only=1 ;;
	*) sed -n '2,21p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $secs in
''|*[!0-9]*) echo "fuzz.sh: -t wants whole seconds" >&2; exit 2 ;;
esac
[ "$secs" -eq 0 ] && regress_only=1

# Largest input per harness: a little above what the module reads in one
# piece (a reply line 4096, an HTTP head 8192, ...), so the fuzzer spends
# its time on structure rather than on huge inputs.
max_len() {
	case $1 in
	address) echo 600 ;;
	smtp_reply|smtp_server|mime) echo 12000 ;;
	http|dsn) echo 20000 ;;
	*) echo 6000 ;;
	esac
}

# Build (reconfigure: optional harnesses appear when their module does).
if [ -f "$build/build.ninja" ]; then
	meson setup --reconfigure "$build" -Dfuzz=true >/dev/null
else
	CC=clang meson setup "$build" -Dfuzz=true -Db_lundef=false >/dev/null
fi
mapfile -t all < <(meson introspect --targets "$build" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["name"].startswith("fuzz_"):
        print(t["name"][5:])' | sort)
if [ $# -gt 0 ]; then
	names=("$@")
	for n in "${names[@]}"; do
		[[ " ${all[*]} " == *" $n "* ]] || {
			echo "fuzz.sh: no harness '$n' (have: ${all[*]})" >&2; exit 2; }
	done
else
	names=("${all[@]}")
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${names[@]}") >/dev/null

# Harnesses that write files do it under TMPDIR (tmpfs when there is one):
# a crashing run skips its own clean-up, so remove the lot at the end.
scratch=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz-logs" "$build/fuzz-work"

failed=0
rows=()
for n in "${names[@]}"; do
	exe=$build/tests/fuzz/fuzz_$n
	corpus=tests/fuzz/corpus/$n
	crashers=tests/fuzz/crashers/$n
	log=$build/fuzz-logs/$n.log
	work=$build/fuzz-work/$n
	mkdir -p "$crashers"
	result=ok
	execs=- rate=- size=- took=0

	# 1. regressions: seeds and old crashers, once each
	start=$(date +%s)
	if ! tests/fuzz/run_corpus.sh "$exe" "$corpus" "$crashers" >"$log" 2>&1; then
		result="REGRESSION"
	fi
	# 2. fuzzing
	if [ "$result" = ok ] && [ "$regress_only" -eq 0 ]; then
		rm -rf "$work"
		mkdir -p "$work"
		[ -d "$corpus" ] && cp "$corpus"/* "$work"/ 2>/dev/null || true
		before=$(ls "$crashers" | wc -l)
		set +e
		"$exe" "$work" -max_total_time="$secs" -max_len="$(max_len "$n")" \
			-rss_limit_mb=2048 -timeout=25 -error_exitcode=1 \
			-print_final_stats=1 -seed="${FUZZ_SEED:-0}" \
			-artifact_prefix="$root/$crashers/" >>"$log" 2>&1
		rc=$?
		set -e
		if [ $rc -ne 0 ] || [ "$(ls "$crashers" | wc -l)" -ne "$before" ]; then
			if grep -q 'LeakSanitizer' "$log"; then result=LEAK
			elif grep -q 'runtime error:' "$log"; then result=UBSAN
			elif grep -q 'ERROR: AddressSanitizer' "$log"; then result=ASAN
			elif grep -q 'property failed' "$log"; then result=PROPERTY
			elif grep -q 'libFuzzer: timeout' "$log"; then result=TIMEOUT
			elif grep -q 'out-of-memory' "$log"; then result=OOM
			else result="FAIL($rc)"
			fi
		fi
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
		size=$(ls "$work" | wc -l)
	fi
	took=$(( $(date +%s) - start ))
	[ "$result" = ok ] || failed=1
	rows+=("$(printf '%-14s %8s %12s %9s %8s  %s' "$n" "$took" \
		"${execs:--}" "${rate:--}" "$size" "$result")")
	echo "fuzz.sh: $n: $result (log $log)" >&2
done

printf '%-14s %8s %12s %9s %8s  %s\n' \
	harness seconds execs execs/s corpus result
printf '%s\n' "${rows[@]}"
if [ $failed -ne 0 ]; then
	echo "fuzz.sh: failures; inputs are in tests/fuzz/crashers/NAME/," \
	     "logs in $build/fuzz-logs/" >&2
	exit 1
fi
