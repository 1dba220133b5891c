#!/bin/sh
# dkim_check.sh - edm's DKIM signatures checked by python3-dkim.
#
# Usage: dkim_check.sh TEST_DKIM_BINARY
# Runs the dkim unit test binary with EDM_DKIM_OUT_DIR set to a fresh
# temporary directory (it then writes signed, tampered and transit-altered
# messages, their TXT records and a manifest there), then verifies every
# manifest entry with tests/integration/dkim_verify.py. No DNS: records
# come from files. The directory is removed on exit.
set -eu

bin=${1:?usage: dkim_check.sh TEST_DKIM_BINARY}
here=$(cd "$(dirname "$0")" && pwd)

/usr/bin/python3 -c 'import dkim, nacl' 2>/dev/null || {
	echo "dkim_check: python3-dkim / python3-nacl not installed (scripts/deps.sh)" >&2
	exit 77   # meson: skipped
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/edm-dkim-check.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

EDM_DKIM_OUT_DIR=$dir "$bin" >"$dir/unit.log" 2>&1 || {
	cat "$dir/unit.log" >&2
	echo "dkim_check: $bin failed" >&2
	exit 1
}
[ -s "$dir/manifest" ] || { echo "dkim_check: no manifest written" >&2; exit 1; }
/usr/bin/python3 "$here/dkim_verify.py" --manifest "$dir/manifest"
