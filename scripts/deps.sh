#!/usr/bin/env bash
# deps.sh - install what edm needs to build, test and run its demo, from
# Debian packages, when missing. Safe to run again: installs nothing when
# everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

# Build: compiler, meson, the libraries of the design card and the issues.
# Test: CUnit, dnsmasq (DNS fixture server on loopback), python3 (the
# integration tests check edm's output with Python's csv module),
# python3-email-validator (the peer in bench/), python3-dkim (verifies
# every DKIM signature edm makes, independently of OpenSSL's use in edm),
# postfix (smtp-sink and smtp-source: the volume peer of the send tests and
# benchmarks; its daemon is not used), python3-aiosmtpd (the scripted SMTP
# peer with STARTTLS and AUTH), libhttp-parser-dev (edm track's request
# parser), curl (fetches tracking URLs in the tests), wrk (the tracking
# benchmark), chromium (renders report.html headless in the tests), clang
# and libclang-rt-14-dev (libFuzzer harnesses, tests/fuzz).
PKGS=(
	gcc libc6-dev pkg-config meson ninja-build python3
	libuv1-dev libssl-dev libcsv-dev libpcre2-dev libcunit1-dev
	libc-ares-dev libidn2-dev libgumbo-dev
	dnsmasq-base python3-email-validator python3-dkim python3-nacl openssl
	time postfix python3-aiosmtpd
	libhttp-parser-dev curl wrk chromium clang libclang-rt-14-dev
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
# postfix asks how to configure itself: "No configuration" (we only use
# its smtp-sink/smtp-source tools, never the mail system).
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
