#!/bin/sh
# run_corpus.sh - run one libFuzzer harness once over every file of the
# given directories (its seed corpus and its kept crashers), no fuzzing.
# Used by the meson `fuzz` suite and by scripts/fuzz.sh before it fuzzes,
# so every input that ever crashed a harness stays a regression test.
#
# usage: run_corpus.sh HARNESS DIR...
# Exit status: the harness's (non-zero on any crash, leak, UBSan report or
# broken property), 0 when the directories hold no file at all.
set -eu

exe=$1
shift
set -- $(for d in "$@"; do
	[ -d "$d" ] && find "$d" -type f ! -name '.*' ! -name README | sort
done)
[ $# -gt 0 ] || exit 0
# Harnesses that write files do it under TMPDIR: a crash skips their own
# clean-up, so the directory goes here.
TMPDIR=$(mktemp -d)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
# Inputs given as files are each run once; -runs is not needed.
# libFuzzer's default error exit code is 77, which meson reads as SKIP.
"$exe" -rss_limit_mb=2048 -timeout=25 -error_exitcode=1 "$@"
