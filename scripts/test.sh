#!/usr/bin/env bash
# test.sh - install dependencies, build, run every test suite (unit,
# integration, slow), then build again under ASan+UBSan and run the suite
# there too. Exit status is non-zero when anything fails.
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

echo "all test suites passed"
