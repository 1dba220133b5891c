#!/usr/bin/env bash
# test.sh - install dependencies, build, run every test suite (unit,
# integration, slow), then build again under ASan+UBSan and run the suite
# there too, then the fuzz harnesses briefly. Exit status is non-zero when
# anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

run_suite() { # builddir, extra meson options...
	local dir=$1; shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
	meson test -C "$dir" --print-errorlogs --num-processes 2
}

echo "== tests (debugoptimized) =="
run_suite build

echo "== tests under ASan+UBSan =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug -Dc_args=-fno-sanitize-recover=all

# The libFuzzer harnesses (tests/fuzz): every seed and kept crasher once,
# then 10 s of fuzzing each (scripts/fuzz.sh -t 600 is the long run).
echo "== fuzz harnesses (clang + libFuzzer, 10 s each) =="
fuzz_rc=0
# A fixed seed: CI explores the same paths each run (a find then shows up
# on the change that made it reachable, not at random later).
env -u ASAN_OPTIONS -u UBSAN_OPTIONS FUZZ_SEED=1 bash scripts/fuzz.sh -t 10 || fuzz_rc=$?

# One closing line for CI ("N passed, N failed"), counted from meson's logs.
/usr/bin/python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
ok = bad = skip = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r == "SKIP":
            skip += 1
        else:
            bad += 1
print(f"{ok} passed, {bad} failed, {skip} skipped")
sys.exit(1 if bad else 0)
PY
if [ "$fuzz_rc" -ne 0 ]; then
	echo "fuzz harnesses failed (exit $fuzz_rc): see build-fuzz/fuzz-logs/" >&2
	exit 1
fi
