#!/usr/bin/env bash
# demo.sh - the README's first command: install what edm needs, build it,
# and clean the example campaign's list with `edm validate`, with DNS checks
# answered by a dnsmasq started on a loopback port (no real resolver is
# asked). Prints where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

out=$(pwd)/examples/spring-sale.out
echo "== edm validate examples/spring-sale.ini =="
bash tests/with_dnsmasq.sh sh -c \
	'build/edm validate --resolver "$EDM_TEST_DNS" --out-dir "$1" examples/spring-sale.ini' \
	sh "$out"
echo
echo "Results: $out/clean.csv (kept rows) and $out/rejects.csv (reason per row)"
