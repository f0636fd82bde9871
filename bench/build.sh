#!/usr/bin/env bash
# Builds the C baseline programs of svirt-bench into $1 (default: .build/bench-c). They link the system
# libselinux (Debian: libselinux1-dev). svirt-bench runs this script; `swift build` never builds these.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/bench-c}
mkdir -p "$out"
cc=${CC:-cc}
for src in bench/*.c; do
    name=$(basename "$src" .c)
    if [ ! -x "$out/$name" ] || [ "$src" -nt "$out/$name" ]; then
        "$cc" -O2 -Wall -Wextra -o "$out/$name" "$src" -lselinux
    fi
done
