#!/usr/bin/env bash
# deps.sh - install what edm needs to build, test and run its demo, from
# Debian packages, when missing. Safe to run again: installs nothing when
# everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

# Build: compiler, meson, the libraries of the design card and the issues.
# Test: CUnit, dnsmasq (DNS fixture server on loopback), python3 (the
# integration tests check edm's output with Python's csv module),
# python3-email-validator (the peer in bench/), python3-dkim (verifies
# every DKIM signature edm makes, independently of OpenSSL's use in edm).
PKGS=(
	gcc libc6-dev pkg-config meson ninja-build python3
	libuv1-dev libssl-dev libcsv-dev libpcre2-dev libcunit1-dev
	libc-ares-dev libidn2-dev libgumbo-dev
	dnsmasq-base python3-email-validator python3-dkim python3-nacl openssl
	time
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root to install ${missing[*]}" >&2; exit 77; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
