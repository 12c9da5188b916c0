#!/usr/bin/env bash
# meson test "fuzz libfuzzer": a short libFuzzer run of the protocol fuzz target.
#   run_libfuzzer.sh BINARY WORKDIR CORPUS_DIR...   fuzz for HERD_FUZZ_SECONDS (default 25)
#   run_libfuzzer.sh --skip REASON                  exit 77: meson reports the test skipped
# New inputs go to WORKDIR/corpus (the corpus directories given are only read); a crashing
# input is written to WORKDIR/crash-* and the test fails: add it to tests/fuzz/regressions.
set -euo pipefail
if [ "${1:-}" = "--skip" ]; then
  echo "skipped: ${2:-}"
  exit 77
fi
binary=$1 workdir=$2
shift 2
seconds=${HERD_FUZZ_SECONDS:-25}
mkdir -p "$workdir/corpus"
status=0
# libFuzzer exits 77 on a crash by default, which meson would count as a skip: make it 1.
"$binary" -max_total_time="$seconds" -max_len=512 -timeout=10 -error_exitcode=1 -timeout_exitcode=1 \
  -print_final_stats=1 -artifact_prefix="$workdir/" "$workdir/corpus" "$@" 2>"$workdir/libfuzzer.log" \
  || status=$?
[ "$status" -ne 77 ] || status=1
grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' "$workdir/libfuzzer.log" || true
if [ "$status" -ne 0 ]; then
  cat "$workdir/libfuzzer.log" >&2
  echo "libFuzzer exited $status; the crashing input is in $workdir/ (add it to tests/fuzz/regressions)" >&2
fi
exit "$status"
