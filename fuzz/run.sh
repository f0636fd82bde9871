#!/usr/bin/env bash
# Builds the libFuzzer target for the policy reader and runs it on the policy fixtures.
#   fuzz/run.sh [SECONDS]      (default 120)
# The build compiles the SELinux and SELinuxPolicy sources with -sanitize=fuzzer,address; it is not part of
# `swift build`. Crashes are written to fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
out=.build/fuzz
mkdir -p "$out" fuzz/artifacts "$out/corpus"
flags=(-O -sanitize=fuzzer,address -parse-as-library -swift-version 6)
swiftc "${flags[@]}" -wmo -module-name SELinux -emit-module -emit-module-path "$out/SELinux.swiftmodule" \
    -c Sources/SELinux/*.swift -o "$out/SELinux.o"
swiftc "${flags[@]}" -I "$out" -module-name PolicyFuzzer Sources/SELinuxPolicy/*.swift fuzz/PolicyFuzzer.swift \
    "$out/SELinux.o" -o "$out/policy-fuzzer"
cp Tests/Fixtures/policy/small.* Tests/Fixtures/policy/tiny.* Tests/Fixtures/policy/xen.* "$out/corpus/"
"$out/policy-fuzzer" "$out/corpus" -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 \
    -artifact_prefix=fuzz/artifacts/ -rss_limit_mb=2048 2>&1 | tail -25
