#!/usr/bin/env python3
"""Interleaved timing loop for bench/run.sh (see bench/README.md).

Not meant to be run by hand: run.sh builds the bundle and the floor binary, then calls
    harness.py SETUP.json
where SETUP.json names the runtimes, the bundle, the state dirs and the cgroup path.

What one sample is:
  floor        ./floor -f -c ROOTFS /bin/true                  (one process, waits for the child)
  <rt>/run     <rt> --root S run ID                            (foreground; the container exits)
  <rt>/csd     <rt> --root S create --pid-file P ID; <rt> start ID;
               wait until the container's process has exited (pidfd); <rt> delete ID
Each sample is wall time (CLOCK_MONOTONIC) around posix_spawn + waitpid of those commands.
Every round runs each target once, in an order shuffled per round (seeded), so machine noise
lands on all targets alike. Checks for leftovers (cgroup dirs, state dirs, processes) run
between samples, outside the timed region.
"""
import ctypes
import json
import os
import platform
import random
import select
import signal
import statistics
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(2)


class Ctx:
    def __init__(self, setup):
        self.s = setup
        self.work = setup["work"]
        self.cg = setup["cgroup_rel"].strip("/")  # e.g. berth-bench-1234/ctr
        self.hier = setup["hierarchies"]  # mount points of cgroup (v1) / cgroup2 hierarchies
        self.devnull_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.devnull_w = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        self.logs = {}
        self.floor_pids = []
        self.children = f"/proc/{os.getpid()}/task/{os.getpid()}/children"

    def log_fd(self, name):
        if name not in self.logs:
            path = os.path.join(self.work, f"{name}.stderr")
            self.logs[name] = (path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))
        return self.logs[name][1]

    def log_mark(self, name):
        """Current size of the stderr log, to show only what a step wrote."""
        self.log_fd(name)
        return os.path.getsize(self.logs[name][0])

    def log_since(self, name, mark):
        path = self.logs[name][0]
        with open(path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace").strip()

    def spawn(self, argv, errname):
        fa = [
            (os.POSIX_SPAWN_DUP2, self.devnull_r, 0),
            (os.POSIX_SPAWN_DUP2, self.devnull_w, 1),
            (os.POSIX_SPAWN_DUP2, self.log_fd(errname), 2),
        ]
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)

    def call(self, argv, errname):
        pid = self.spawn(argv, errname)
        _, st = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(st)

    # ---- leftovers -------------------------------------------------------------------
    def cgroup_dirs(self, rel):
        return [os.path.join(h, rel) for h in self.hier if os.path.isdir(os.path.join(h, rel))]

    def describe_cgroups(self, rel, dirs):
        names = ",".join(os.path.basename(d[: -len(rel) - 1]) for d in dirs)  # <hier>/<rel> -> hier
        return f"cgroup {rel} left in {len(dirs)} hierarchies ({names})"

    def remove_cgroup(self, path):
        for _ in range(200):
            try:
                os.rmdir(path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.005)
        return False

    def live_children(self):
        try:
            with open(self.children) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def reap_strays(self):
        n = 0
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return n
            if pid == 0:
                return n
            n += 1


def quantiles(xs):
    xs = sorted(xs)
    if not xs:
        return None
    def q(p):
        k = (len(xs) - 1) * p
        lo = int(k)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
    return {"median": q(0.5), "p10": q(0.1), "p90": q(0.9), "min": xs[0], "max": xs[-1],
            "mean": statistics.fmean(xs), "n": len(xs)}


class Target:
    """One measured thing: floor, or a runtime doing run / create+start+delete."""

    def __init__(self, ctx, name, kind, rt=None):
        self.ctx, self.name, self.kind, self.rt = ctx, name, kind, rt
        self.samples = []
        self.failures = []  # (iteration, message)
        self.leftovers = []  # (iteration, message)
        self.strays = 0
        self.seq = 0

    def next_id(self):
        self.seq += 1
        return f"bench-{self.kind}-{self.seq}"

    def argv(self, *args):
        return [self.rt["bin"], "--root", self.rt["state"], *args]

    # one sample; returns (ns or None, error message or None)
    def once(self):
        c = self.ctx
        if self.kind == "floor":
            argv = [c.s["floor"], "-f", "-c", c.s["rootfs"], "/bin/true"]
            mark = c.log_mark("floor")
            t0 = time.perf_counter_ns()
            pid = c.spawn(argv, "floor")
            _, st = os.waitpid(pid, 0)
            t1 = time.perf_counter_ns()
            c.floor_pids.append(pid)
            rc = os.waitstatus_to_exitcode(st)
            return (t1 - t0, None) if rc == 0 else (None, f"floor exited {rc}: {c.log_since('floor', mark)}")

        cid = self.next_id()
        errname = self.rt["name"]
        mark = c.log_mark(errname)
        if self.kind == "run":
            t0 = time.perf_counter_ns()
            rc = c.call(self.argv("run", "--bundle", c.s["bundle"], cid), errname)
            t1 = time.perf_counter_ns()
            if rc != 0:
                self.force_delete(cid)
                return None, f"run exited {rc}: {c.log_since(errname, mark)}"
            return t1 - t0, None

        # create + start + wait + delete
        pidfile = os.path.join(c.work, f"{self.rt['name']}.pid")
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
        t0 = time.perf_counter_ns()
        rc = c.call(self.argv("create", "--bundle", c.s["bundle"], "--pid-file", pidfile, cid), errname)
        if rc != 0:
            self.force_delete(cid)
            return None, f"create exited {rc}: {c.log_since(errname, mark)}"
        with open(pidfile) as f:
            pid = int(f.read().strip())
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = None  # already gone (cannot happen for a created container; reported below)
        rc = c.call(self.argv("start", cid), errname)
        if rc != 0:
            if pidfd is not None:
                os.close(pidfd)
            self.force_delete(cid)
            return None, f"start exited {rc}: {c.log_since(errname, mark)}"
        if pidfd is not None:
            p = select.poll()
            p.register(pidfd, select.POLLIN)
            if not p.poll(10_000):
                os.close(pidfd)
                self.force_delete(cid)
                return None, "container process still running 10 s after start"
            os.close(pidfd)
            try:
                os.waitpid(pid, 0)  # we are the subreaper: the init is our child once create exits
            except ChildProcessError:
                pass
        rc = c.call(self.argv("delete", cid), errname)
        t1 = time.perf_counter_ns()
        if pidfd is None:
            return None, f"the pid {pid} from --pid-file was gone before start"
        if rc != 0:
            self.force_delete(cid)
            return None, f"delete exited {rc}: {c.log_since(errname, mark)}"
        return t1 - t0, None

    def force_delete(self, cid):
        if self.rt:
            self.ctx.call(self.argv("delete", "--force", cid), self.rt["name"] + "-cleanup")

    def check_leftovers(self, it):
        """Outside the timed region: what did the last sample leave behind?"""
        c = self.ctx
        msgs = []
        if self.kind == "floor":
            pid = c.floor_pids[-1] if c.floor_pids else None
            if pid:
                left = c.cgroup_dirs(f"perffloor-{pid}")
                if left:
                    msgs.append(c.describe_cgroups(f"perffloor-{pid}", left))
                    for d in left:
                        c.remove_cgroup(d)
        else:
            left = c.cgroup_dirs(c.cg)
            if left:
                msgs.append(c.describe_cgroups(c.cg, left))
                for d in left:
                    c.remove_cgroup(d)
            st = self.rt["state"]
            # names with ':' are no container ids but a runtime's own (berth's seccomp:cache,
            # and spare:, the emptied directories it keeps for the next create)
            ids = [i for i in os.listdir(st) if ":" not in i] if os.path.isdir(st) else []
            if ids:
                msgs.append(f"state entries left in {st}: {' '.join(ids)}")
                for i in ids:
                    self.force_delete(i)
        alive = c.live_children()
        if alive:
            msgs.append(f"processes still running: {alive}")
            for p in alive:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        self.strays += c.reap_strays()
        if msgs:
            self.leftovers.append((it, "; ".join(msgs)))
        return msgs


def preflight_runtime(ctx, rt):
    """One run and one create/start/delete, with checks a timing loop must not do:
    is the container's process really in the cgroup we asked for, and is it gone afterwards?"""
    rep = {"ok": True, "notes": []}
    name = rt["name"]
    # run
    t = Target(ctx, name + "/run", "run", rt)
    ns, err = t.once()
    left = t.check_leftovers(0)
    rep["run"] = "ok" if err is None else err
    if err:
        rep["ok"] = False
    rep["run_leftovers"] = left
    # create, inspect, start, wait, delete
    cid = "bench-preflight"
    mark = ctx.log_mark(name)
    pidfile = os.path.join(ctx.work, f"{name}.preflight.pid")
    rc = ctx.call(t.argv("create", "--bundle", ctx.s["bundle"], "--pid-file", pidfile, cid), name)
    if rc != 0:
        rep["csd"] = f"create exited {rc}: {ctx.log_since(name, mark)}"
        rep["ok"] = False
        t.force_delete(cid)
        t.check_leftovers(0)
        return rep
    pid = int(open(pidfile).read().strip())
    joined, missing = [], []
    for h in ctx.hier:
        procs = os.path.join(h, ctx.cg, "cgroup.procs")
        try:
            with open(procs) as f:
                members = f.read().split()
        except OSError:
            missing.append(os.path.basename(h))
            continue
        (joined if str(pid) in members else missing).append(os.path.basename(h))
    rep["cgroup_joined"] = joined
    rep["cgroup_missing"] = missing
    pidfd = os.pidfd_open(pid)
    rc = ctx.call(t.argv("start", cid), name)
    if rc != 0:
        rep["csd"] = f"start exited {rc}: {ctx.log_since(name, mark)}"
        rep["ok"] = False
    else:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(10_000):
            rep["csd"] = "container process still running 10 s after start"
            rep["ok"] = False
        else:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            rc = ctx.call(t.argv("delete", cid), name)
            rep["csd"] = "ok" if rc == 0 else f"delete exited {rc}: {ctx.log_since(name, mark)}"
            if rc != 0:
                rep["ok"] = False
    os.close(pidfd)
    rep["csd_leftovers"] = t.check_leftovers(0)
    if rep["ok"] and not joined:
        rep["notes"].append("the container process joined NO cgroup at " + ctx.cg)
    return rep


def main():
    setup = json.load(open(sys.argv[1]))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        die("prctl(PR_SET_CHILD_SUBREAPER) failed")
    ctx = Ctx(setup)
    n, warmup = setup["n"], setup["warmup"]
    rng = random.Random(setup["seed"])

    # what the harness itself adds to every sample: posix_spawn + waitpid of a trivial process
    spawn_ns = []
    for _ in range(50):
        t0 = time.perf_counter_ns()
        ctx.call(["/bin/true"], "host-true")
        spawn_ns.append(time.perf_counter_ns() - t0)
    setup["host"]["spawn_true_ns"] = quantiles(spawn_ns)["median"]

    # preflight
    pre = {}
    for rt in setup["runtimes"]:
        pre[rt["name"]] = preflight_runtime(ctx, rt)
    floor_ok = None
    if setup.get("floor"):
        ft = Target(ctx, "floor", "floor")
        _, err = ft.once()
        ft.check_leftovers(0)
        floor_ok = err is None
        pre["floor"] = {"ok": floor_ok, "run": "ok" if floor_ok else err}

    for name, rep in pre.items():
        line = f"preflight {name:6s}: " + ("ok" if rep["ok"] else "FAILED")
        if "cgroup_joined" in rep:
            j, m = rep["cgroup_joined"], rep["cgroup_missing"]
            line += f"; cgroup {ctx.cg}: joined {len(j)}/{len(j) + len(m)} hierarchies"
            if m:
                line += f" (not: {','.join(m)})"
        print(line, file=sys.stderr)
        for k in ("run", "csd"):
            if k in rep and rep[k] != "ok":
                print(f"  {k}: {rep[k]}", file=sys.stderr)
        for k in ("run_leftovers", "csd_leftovers"):
            for msg in rep.get(k) or []:
                print(f"  {k.split('_')[0]} left behind: {msg}", file=sys.stderr)
        for note in rep.get("notes", []):
            print(f"  note: {note}", file=sys.stderr)

    targets = []
    if floor_ok:
        targets.append(Target(ctx, "floor", "floor"))
    for rt in setup["runtimes"]:
        r = pre[rt["name"]]
        if r.get("run") == "ok":
            targets.append(Target(ctx, f"{rt['name']}/run", "run", rt))
        if r.get("csd") == "ok":
            targets.append(Target(ctx, f"{rt['name']}/csd", "csd", rt))

    all_targets = {t.name: t for t in targets}  # also those dropped below
    stop = []  # set by SIGTERM (run.sh forwards Ctrl-C as SIGTERM): finish the sample, report
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    rounds = []  # per round: {target name: ns}
    t_start = time.time()
    total = warmup + n
    try:
        for it in range(total):
            order = targets[:]
            rng.shuffle(order)
            this = {}
            for t in order:
                if stop:
                    break
                ns, err = t.once()
                t.check_leftovers(it)
                if err:
                    if not stop:  # a sample cut by our own interrupt is not the runtime's fault
                        t.failures.append((it, err))
                elif it >= warmup:
                    this[t.name] = ns
            if stop:
                print(f"bench: interrupted in round {it + 1}; reporting the {len(rounds)} complete rounds",
                      file=sys.stderr)
                break
            if it >= warmup:
                rounds.append(this)
                for name, ns in this.items():
                    all_targets[name].samples.append(ns)
            if setup.get("progress") and (it + 1) % max(1, total // 10) == 0:
                el = time.time() - t_start
                print(f"  round {it + 1}/{total}  ({el:.0f} s)", file=sys.stderr)
            # give up on a target that keeps failing
            for t in targets[:]:
                if len(t.failures) >= 5 and len(t.failures) > len(t.samples) + warmup:
                    print(f"bench: {t.name} keeps failing, dropped: {t.failures[-1][1]}", file=sys.stderr)
                    targets.remove(t)
    finally:
        # floor cgroups of an interrupted floor run
        for pid in ctx.floor_pids[-3:]:
            for d in ctx.cgroup_dirs(f"perffloor-{pid}"):
                ctx.remove_cgroup(d)

    report(setup, pre, all_targets, rounds, ctx, time.time() - t_start)


def fmt_ms(ns):
    return f"{ns / 1e6:6.2f} ms" if ns is not None else "    -    "


def report(setup, pre, targets, rounds, ctx, elapsed):
    stats = {name: quantiles(t.samples) for name, t in targets.items()}
    floor = stats.get("floor")
    names = setup["runtimes"]
    ref = setup["reference"]  # runc

    def paired(a, b):
        rs = [r[a] / r[b] for r in rounds if a in r and b in r]
        return quantiles(rs)

    host = setup["host"]
    print()
    nr = f"{len(rounds)} of {setup['n']} (interrupted)" if len(rounds) < setup["n"] else str(len(rounds))
    print(f"bench: N={nr} (+{setup['warmup']} warmup), rootfs=busybox, host: {host['cores']} cores, "
          f"kernel {host['kernel']}, {elapsed:.0f} s")
    print(f"  each sample includes the harness's posix_spawn+wait per command "
          f"(host /bin/true: {host['spawn_true_ns'] / 1e6:.2f} ms)")
    for rt in names:
        print(f"  {rt['name']:6s} = {rt['bin']}  ({rt['version']})")
    print(f"  {'':28s}{'median':>9s} {'p10':>9s} {'p90':>9s}   {'vs runc':>8s} {'vs floor':>8s}")
    if floor:
        print(f"  {'floor (C, -f -c)':28s}{fmt_ms(floor['median'])} {fmt_ms(floor['p10'])} {fmt_ms(floor['p90'])}   "
              f"{'':>8s} {'1.00x':>8s}")
    labels = {"run": "run /bin/true", "csd": "create+start+del"}
    for kind in ("run", "csd"):
        refst = stats.get(f"{ref}/{kind}")
        for rt in names:
            key = f"{rt['name']}/{kind}"
            label = f"{rt['name']} {labels[kind]}"
            st = stats.get(key)
            if st is None:
                why = pre.get(rt["name"], {}).get(kind, "not measured")
                why = why.splitlines()[-1] if why else "not measured"
                print(f"  {label:28s}FAILED: {why[:120]}")
                continue
            vs_ref = f"{st['median'] / refst['median']:.2f}x" if refst else "-"
            vs_floor = f"{st['median'] / floor['median']:.2f}x" if floor else "-"
            print(f"  {label:28s}{fmt_ms(st['median'])} {fmt_ms(st['p10'])} {fmt_ms(st['p90'])}   "
                  f"{vs_ref:>8s} {vs_floor:>8s}")
    # paired ratios: per round, same noise
    lines = []
    for kind in ("run", "csd"):
        for rt in names:
            if rt["name"] == ref:
                continue
            pq = paired(f"{rt['name']}/{kind}", f"{ref}/{kind}")
            if pq:
                lines.append(f"{rt['name']}/{ref} {kind}: {pq['median']:.2f}x (p10 {pq['p10']:.2f}, p90 {pq['p90']:.2f})")
    if lines:
        print("  per-round paired ratio: " + "; ".join(lines))
    # problems
    problems = []
    for name, t in targets.items():
        if t.failures:
            problems.append(f"{name}: {len(t.failures)} failed samples, last: {t.failures[-1][1][:300]}")
        if t.leftovers:
            problems.append(f"{name}: left things behind {len(t.leftovers)} times, first: {t.leftovers[0][1][:300]}")
    for rt in names:
        rep = pre.get(rt["name"], {})
        if rep.get("cgroup_joined") == [] and rep.get("ok"):
            problems.append(f"{rt['name']}: its container joined no cgroup at {ctx.cg} "
                            "(it does less work than runc: compare with care)")
        elif rep.get("cgroup_missing"):
            problems.append(f"{rt['name']}: container not in {ctx.cg} of: {', '.join(rep['cgroup_missing'])}")
    for name, (path, _) in sorted(ctx.logs.items()):
        if name == "host-true" or not os.path.getsize(path):
            continue
        lines = open(path, errors="replace").read().splitlines()
        problems.append(f"{name} wrote {len(lines)} lines to stderr (failures included), first: {lines[0][:200]}")
    for p in problems:
        print(f"  ! {p}")

    if setup.get("out"):
        data = {
            "meta": {k: setup[k] for k in ("n", "warmup", "seed", "host", "cgroup_rel")},
            "runtimes": [{k: rt[k] for k in ("name", "bin", "version")} for rt in names],
            "unit": "ns",
            "elapsed_s": elapsed,
            "preflight": pre,
            "stats": stats,
            "samples": {name: t.samples for name, t in targets.items()},
            "rounds": rounds,
            "failures": {name: t.failures for name, t in targets.items() if t.failures},
            "leftovers": {name: t.leftovers for name, t in targets.items() if t.leftovers},
        }
        with open(setup["out"], "w") as f:
            json.dump(data, f, indent=1)
        print(f"  raw samples: {setup['out']}")


if __name__ == "__main__":
    main()
