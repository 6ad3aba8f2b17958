#!/usr/bin/env bash
# Import graph between the top-level modules of src/ (from `use crate::X` and
# `crate::X::` paths, comments skipped), and every pair of modules that import
# each other directly or through others. Exits non-zero when there is a cycle.
# With CHECK="report compare perf site" only those modules and the imports
# between them are looked at (a cycle through other modules is listed apart
# as a warning: those belong to other modules' owners).
set -euo pipefail
cd "$(dirname "$0")/../src"
mods=$(for f in *.rs */; do n=${f%/}; n=${n%.rs}; [ "$n" = main ] || [ "$n" = lib ] || echo "$n"; done | sort -u)
edges=$(for m in $mods; do
  files=$( { [ -f "$m.rs" ] && echo "$m.rs"; [ -d "$m" ] && find "$m" -name '*.rs'; } || true)
  [ -z "$files" ] && continue
  # Drop line comments and doc comments, then find crate paths.
  cat $files | sed -e 's://.*$::' | grep -oE 'crate::[a-z_]+|use crate::\{[^}]*' | sed -e 's/use crate::{//' -e 's/crate:://' | tr ',' '\n' | sed -e 's/^ *//' -e 's/::.*//' -e 's/[^a-z_].*//' | sort -u | while read -r t; do
    [ -n "$t" ] && [ "$t" != "$m" ] && echo "$mods" | grep -qx "$t" && echo "$m $t"
  done
done)
python3 - "$edges" "${CHECK:-}" <<'PY'
import sys
edges = [l.split() for l in sys.argv[1].splitlines() if l.strip()]
check = set(sys.argv[2].split()) if sys.argv[2] else None
g = {}
for a, b in edges:
    g.setdefault(a, set()).add(b)
def reach(a, within):
    seen, stack = set(), [a]
    while stack:
        for n in g.get(stack.pop(), ()):
            if n not in seen and (within is None or n in within):
                seen.add(n); stack.append(n)
    return seen
nodes = sorted(set(g) | {b for _, b in edges})
def cycles(within):
    out = []
    for a in nodes:
        for b in nodes:
            if within is not None and (a not in within or b not in within):
                continue
            if a < b and b in reach(a, within) and a in reach(b, within):
                why = "direct" if b in g.get(a, ()) and a in g.get(b, ()) else "through others"
                out.append(f"{a} <-> {b} ({why})")
    return out
for m in nodes:
    if check is None or m in check:
        print(f"{m} -> {' '.join(sorted(g.get(m, ())))}")
bad = cycles(check)
print("cycles:" if bad else "no cycle" + (f" among {' '.join(sorted(check))}" if check else ""))
for b in bad:
    print("  " + b)
if check is not None:
    outside = [c for c in cycles(None) if c.split()[0] in check and c.split()[2] in check and c not in bad]
    if outside:
        print("warning: cycles between them through modules outside the check:")
        for c in outside:
            print("  " + c)
sys.exit(1 if bad else 0)
PY
