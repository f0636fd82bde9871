#!/usr/bin/env bash
# Builds the C baseline programs that svirt-bench runs side by side with svirt. They link the system libraries
# (Debian: libsepol-dev, libselinux1-dev) and are never part of `swift build`. Output: .build/bench/
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build/bench
cc -O2 -Wall -o .build/bench/policy_baseline bench/policy_baseline.c -lsepol
cc -O2 -Wall -Wextra -o .build/bench/fcontext_baseline bench/fcontext_baseline.c -lselinux
