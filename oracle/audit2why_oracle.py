#!/usr/bin/python3
"""Differential oracle: libsepol's audit2why (python3-selinux) answers svirt's policy queries.

usage: /usr/bin/python3 audit2why_oracle.py POLICY QUERIES OUT

QUERIES has one query per line: SCON<TAB>TCON<TAB>CLASS<TAB>PERM[ PERM...].
OUT gets one line per query: RESULT<TAB>BOOLEANS, where RESULT is ALLOW, DONTAUDIT, TERULE, BOOLEAN,
CONSTRAINT, RBAC, BOUNDS or ERR<code>, and BOOLEANS is name=value,... for BOOLEAN results.
The policy is loaded again every 2000 queries so libsepol's SID table (a linear list) stays short.
"""
import sys
import selinux.audit2why as a2w

NAMES = {a2w.ALLOW: "ALLOW", a2w.DONTAUDIT: "DONTAUDIT", a2w.TERULE: "TERULE", a2w.BOOLEAN: "BOOLEAN",
         a2w.CONSTRAINT: "CONSTRAINT", a2w.RBAC: "RBAC", a2w.BOUNDS: "BOUNDS"}


def main():
    policy, queries, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(queries) as f, open(out, "w") as o:
        loaded = False
        for n, line in enumerate(f):
            if n % 2000 == 0:
                if loaded:
                    a2w.finish()
                if a2w.init(policy) != 0:
                    sys.exit("cannot load " + policy)
                loaded = True
            scon, tcon, tclass, perms = line.rstrip("\n").split("\t")
            rc, data = a2w.analyze(scon, tcon, tclass, perms.split(" "))
            name = NAMES.get(rc, "ERR%d" % rc)
            bools = ""
            if rc == a2w.BOOLEAN and data:
                bools = ",".join("%s=%d" % (b, v) for b, v in sorted(data))
            o.write("%s\t%s\n" % (name, bools))


if __name__ == "__main__":
    main()
