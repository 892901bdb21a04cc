#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, check formatting, build with
# -Werror, run every ctest test; then an ASan+UBSan build running the unit tests and the
# leak check (label asan); then the libFuzzer targets for a bounded time on their corpora.
# Usage: bash tests/run.sh [--quick]   (--quick: the first build only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash deploy/install.sh

echo "== format (.clang-format)"
sources=$(find common ingest features models sinks conf runtime tests -name '*.[ch]' | sort)
if ! clang-format --dry-run --Werror $sources; then
  echo "format: run clang-format -i on the files above"
  exit 1
fi

echo "== build (Release, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

if [ "${1:-}" = "--quick" ]; then
  exit 0
fi

echo "== ASan+UBSan build, unit tests"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTERN_WERROR=ON \
  -DTERN_SANITIZE=ON -DTERN_FUZZ=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j"$jobs" -L unit --timeout 900)
echo "== ASan+UBSan build, leak check (a replay of the Taobao slice, ~45 s)"
(cd build-asan && ctest --output-on-failure -L asan --timeout 900)

echo "== fuzz (${TERN_FUZZ_SECONDS:=30} s per target)"
for target in build-asan/tests/fuzz_*; do
  name=$(basename "$target")
  corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  if ! "$target" -max_total_time="$TERN_FUZZ_SECONDS" -rss_limit_mb=1024 \
      -print_final_stats=1 "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "fuzz: $name found a failure (see above)"
    exit 1
  fi
  echo "$name: $(grep -E '^stat::number_of_executed_units' "$work.log" | awk '{print $2}') runs," \
    "corpus $(ls "$work" | wc -l) inputs, peak RSS $(grep -E '^stat::peak_rss_mb' "$work.log" | awk '{print $2}') MiB"
  rm -rf "$work" "$work.log"
done
echo "fuzz: no failure"
