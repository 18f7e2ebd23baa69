#!/usr/bin/env bash
# `make fuzz-coverage`: builds the libFuzzer targets, seeds their corpora, runs them at once for
# FUZZ_SECONDS each (default 600; FUZZ_TARGETS picks some of zip, csv, msgpack), and writes the
# figures of the three targets' last runs into docs/fuzz.md. Crashes land in
# .build-fuzz/artifacts/<target>/; each one found is to be copied into Tests/fuzz/regressions/<target>/,
# where a normal test decodes it and expects a clean error.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-zip csv msgpack}
out=.build-fuzz
Tests/fuzz/build.sh
for t in $targets; do rm -rf "$out/corpus/$t" "$out/artifacts/$t"; done
python3 Tests/fuzz/seeds.py "$out/seeds" "${BINANCE_IMPORT_SHARED:-../shared}"
for t in $targets; do
  mkdir -p "$out/corpus/$t" && cp "$out/seeds/$t"/* "$out/corpus/$t/"
  mkdir -p "$out/artifacts/$t"
  # Regression inputs seed the corpus too, so fixed findings stay covered.
  cp "Tests/fuzz/regressions/$t"/* "$out/corpus/$t/" 2>/dev/null || true
  ASAN_OPTIONS=detect_leaks=0 "$out/fuzz-$t" "$out/corpus/$t" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" > "$out/$t.log" 2>&1 &
done
wait || true
{
  echo
  echo "## Coverage-guided fuzzing (libFuzzer, \`make fuzz-coverage\`, $(date -u +%Y-%m-%d))"
  echo
  echo "swiftc -sanitize=fuzzer,address builds of the zip reader with the whole decoder (both inflaters), the CSV parser"
  echo "(fed through the decoder's loop in 1-64-byte pieces) and the msgpack decoder, run at once on $(nproc) cores"
  echo "for $seconds s each (ending $(date -u +%H:%M) UTC), from seed corpora of zip64, data-descriptor, stored and deflated members, real archive prefixes,"
  echo "CSV rows and the real MarketStore captures (Tests/fuzz/seeds.py)."
  echo
  echo "| target | executions | exec/s | coverage (edges) | features | corpus at the end | crashes found |"
  echo "|---|---|---|---|---|---|---|"
  for t in zip csv msgpack; do
    log="$out/$t.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo "?")
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo "?")
    corp=$(echo "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*' || echo "?")
    crashes=$(find "$out/artifacts/$t" -type f | wc -l)
    echo "| $t | $runs | $rate | $cov | $ft | $corp | $crashes |"
  done
} >> docs/fuzz.md
tail -12 docs/fuzz.md
