#!/usr/bin/env bash
# Expands and compiles svirt's Xen test policy (Tests/Fixtures/xen/policy/svirt-xen.conf.in) into the sources and
# binaries the tests read. Both are committed, so the tests run where checkpolicy is absent. Run this after editing
# the template.
#   svirt-xen.conf      -> svirt-xen.24, svirt-xen.30          (checkpolicy -t xen)
#   svirt-xen-mls.conf  -> svirt-xen-mls.24, svirt-xen-mls.30  (checkpolicy -t xen -M)
# Version 24 has no devicetreecon (checkpolicy drops it silently), so the version 24 inputs leave those lines out.
set -euo pipefail
cd "$(dirname "$0")/../Tests/Fixtures/xen/policy"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

header='# Generated from svirt-xen.conf.in by scripts/compile-xen-fixtures.sh; edit the template, not this file.'
{ echo "$header"; sed -e '/^#NOMLS{$/,/^#NOMLS}$/d' -e '/^#MLS[{}]$/d' -e 's/@\[\([^]]*\)\]@/\1/g' svirt-xen.conf.in; } > svirt-xen-mls.conf
{ echo "$header"; sed -e '/^#MLS{$/,/^#MLS}$/d' -e '/^#NOMLS[{}]$/d' -e 's/@\[[^]]*\]@//g' svirt-xen.conf.in; } > svirt-xen.conf

compile() { # compile FLAGS... OUTPUT SOURCE
    local out=${*: -2:1} src=${*: -1}
    if ! checkpolicy -t xen "${@:1:$#-2}" -o "$out" "$src" >"$tmp/log" 2>&1; then
        cat "$tmp/log" >&2
        exit 1
    fi
}
for name in svirt-xen svirt-xen-mls; do
    flags=()
    [ "$name" = svirt-xen-mls ] && flags=(-M)
    grep -v devicetreecon "$name.conf" > "$tmp/$name-24.conf"
    compile "${flags[@]}" -c 24 "$name.24" "$tmp/$name-24.conf"
    compile "${flags[@]}" -c 30 "$name.30" "$name.conf"
done
ls -l svirt-xen*
