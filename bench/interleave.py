#!/usr/bin/env python3
"""interleave.py — time commands in interleaved, shuffled rounds; print medians, p10 and p90.

  interleave.py [--n N] [--warmup W] [--block B] [--ratio A:B]... [--diff A:B]... 'NAME=COMMAND LINE'...

Each round runs every command once in a new random order, so drift on the machine (other
load, caches) falls on all of them alike. With `--block B` a round runs each command B+1
times in a row and keeps the last B: for work whose cost the kernel partly defers (a network
namespace is torn down after its last process is gone), the next run of the same command
pays it, not the next command's. COMMAND LINE is split like a shell's words (no
shell runs it); a command that exits non-zero stops the bench. `--ratio A:B` prints
median(A)/median(B), `--diff A:B` prints median(A)-median(B) in ms. Used by the front's
benches (front.sh, network.sh).
"""
import argparse, os, random, shlex, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=30)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--block", type=int, default=0)
ap.add_argument("--ratio", action="append", default=[])
ap.add_argument("--diff", action="append", default=[])
ap.add_argument("commands", nargs="+")
args = ap.parse_args()

cmds = {}
for c in args.commands:
    name, _, line = c.partition("=")
    cmds[name] = shlex.split(line)
samples = {k: [] for k in cmds}
devnull = open(os.devnull, "wb")
for r in range(args.warmup + args.n):
    order = list(cmds)
    random.shuffle(order)
    for k in order:
        for i in range(args.block + 1 if args.block else 1):
            t = time.monotonic()
            rc = subprocess.call(cmds[k], stdout=devnull, stderr=devnull)
            dt = time.monotonic() - t
            if rc != 0:
                sys.exit(f"interleave: {' '.join(cmds[k])} exited {rc}")
            if r >= args.warmup and (i > 0 or not args.block):
                samples[k].append(dt * 1000)


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


med = {k: statistics.median(xs) for k, xs in samples.items()}
width = max(len(k) for k in cmds) + 2
runs = args.n * max(args.block, 1)
print(f"{'':{width}} {'median':>9} {'p10':>9} {'p90':>9}   (ms, {runs} runs each)")
for k, xs in samples.items():
    print(f"{k:{width}} {med[k]:9.1f} {q(xs, .1):9.1f} {q(xs, .9):9.1f}")
for spec in args.ratio:
    a, b = spec.split(":")
    if a in med and b in med:
        print(f"ratio {a} / {b}: {med[a] / med[b]:.3f}x")
for spec in args.diff:
    a, b = spec.split(":")
    if a in med and b in med:
        print(f"{a} - {b}: {med[a] - med[b]:+.1f} ms")
