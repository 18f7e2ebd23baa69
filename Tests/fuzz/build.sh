#!/usr/bin/env bash
# Builds the libFuzzer targets (zip, csv, msgpack) with coverage and AddressSanitizer into
# .build-fuzz/: the modules they fuzz are compiled straight from Sources/ with swiftc, since
# SwiftPM has no fuzzer sanitizer. Used by `make fuzz-coverage`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-fuzz
mkdir -p "$out"
# shellcheck disable=SC2054  # -sanitize takes a comma-separated list: one argument
flags=(-O -sanitize=fuzzer,address -parse-as-library -enable-testing -I "$out" -I Sources/CIsal -I Sources/CZlib -I Sources/CMalloc
       -I Sources/CRowKernels/include)
module() {  # NAME SOURCES...
  local name=$1; shift
  swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/$name.swiftmodule" -wmo -c "$@" -o "$out/$name.o"
}
# The row kernels (C) with the same sanitizers, for KlineArchive.
for kernel in kline_rows trade_rows; do
  clang -O2 -fsanitize=fuzzer-no-link,address -I Sources/CRowKernels/include -c Sources/CRowKernels/$kernel.c -o "$out/$kernel.o"
done
module Columnar Sources/Columnar/*.swift
module KlineArchive Sources/KlineArchive/*.swift
module MsgPack Sources/MsgPack/*.swift
for target in zip csv msgpack; do
  objects=("$out/Columnar.o" "$out/KlineArchive.o" "$out/kline_rows.o" "$out/trade_rows.o")
  [ "$target" = msgpack ] && objects=("$out/MsgPack.o")
  swiftc "${flags[@]}" -module-name "Fuzz_$target" Tests/fuzz/$target.swift "${objects[@]}" -lisal -lz -o "$out/fuzz-$target"
done
echo "built $out/fuzz-zip $out/fuzz-csv $out/fuzz-msgpack"
