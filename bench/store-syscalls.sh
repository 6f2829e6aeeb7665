#!/bin/bash
# Steady syscalls per stored message (bench/RESULTS.md Round 4): `strace -f -c` over a run of
# 2,000 messages minus a run of 200 (start-up, JIT and the day directory cancel out), / 1,800.
# usage: bench/store-syscalls.sh ROOT eml|maildir
set -u
here=$(dirname "$0")
"$here/store-load.sh" "$1" "$2" strace 2000 > /tmp/fakemx-sys-a.$$ 2>&1
"$here/store-load.sh" "$1" "$2" strace 200 > /tmp/fakemx-sys-b.$$ 2>&1
python3 - /tmp/fakemx-sys-a.$$ /tmp/fakemx-sys-b.$$ <<'P'
import re, sys
def load(f):
    d = {}
    for l in open(f):
        m = re.match(r'\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$', l)
        if m: d[m.group(2)] = int(m.group(1))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
rows = sorted(((a.get(k, 0) - b.get(k, 0)) / 1800, k) for k in set(a) | set(b) if k != 'total')[::-1]
print('per message: %.1f syscalls' % sum(r for r, _ in rows))
for r, k in rows:
    if abs(r) >= 0.05: print('  %-14s %6.2f' % (k, r))
P
rm -f /tmp/fakemx-sys-a.$$ /tmp/fakemx-sys-b.$$
