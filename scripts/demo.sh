#!/usr/bin/env bash
# demo.sh - the README's first command: install what edm needs, build it,
# and clean the example campaign's list with `edm validate`, with DNS checks
# answered by a dnsmasq started on a loopback port (no real resolver is
# asked), then render row 1's message with `edm preview`. Prints where the
# results are.
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
echo "== edm preview examples/spring-sale.ini --row 1 =="
build/edm preview --row 1 --out "$out/row-1.eml" examples/spring-sale.ini
echo "the message of row 1, as it would be sent: $out/row-1.eml"
echo
echo "Results: $out/clean.csv (kept rows), $out/rejects.csv (reason per row),"
echo "         $out/row-1.eml (a rendered message; edm preview --all writes every row)"
