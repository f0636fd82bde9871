#!/usr/bin/env bash
# Compiles the policy fixtures in Tests/Fixtures/policy/src at the versions the tests read. The compiled files
# are committed, so the tests run where checkpolicy and secilc are absent. Run this after editing a source.
#   small.conf  -> small.24 ... small.33   (checkpolicy -M; extended permission rules only from version 30)
#   tiny.cil    -> tiny.30, tiny.33        (secilc, no MLS, handle_unknown allow)
#   xen.conf    -> xen.24, xen.30          (checkpolicy -t xen; version 24 has no devicetreecon and 32-bit iomem)
set -euo pipefail
cd "$(dirname "$0")/../Tests/Fixtures/policy"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v 'xperm' src/small.conf > "$tmp/small-noxperm.conf"
for v in 24 25 26 27 28 29 30 31 32 33; do
    src=src/small.conf
    [ "$v" -lt 30 ] && src="$tmp/small-noxperm.conf"
    checkpolicy -M -c "$v" -o "small.$v" "$src" >/dev/null 2>&1 || { checkpolicy -M -c "$v" -o "small.$v" "$src"; exit 1; }
done
for v in 30 33; do
    secilc -c "$v" -o "tiny.$v" -f /dev/null src/tiny.cil
done
grep -v -e devicetreecon -e 0x100000000 src/xen.conf > "$tmp/xen24.conf"
checkpolicy -t xen -c 24 -o xen.24 "$tmp/xen24.conf" >/dev/null
checkpolicy -t xen -c 30 -o xen.30 src/xen.conf >/dev/null
ls -l small.* tiny.* xen.*
