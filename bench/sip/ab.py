#!/usr/bin/env python3
"""A/B comparison of kemigo variants under SIPp at one fixed rate.

Each variant is a kemigo binary, environment and options, started once on
its own loopback port with the benchmark's configuration (kemigo.toml, the
reference script or --native basic). Then ROUNDS rounds of one SIPp step
per variant, the order rotating each round so the machine's noise hits the
variants alike; every step reports the proxy's CPU-seconds per 1000 calls
(/proc, as run.py). Prints each round and, per variant, the median and its
ratio to the first variant.

This is how a runtime setting (GOGC, GOMEMLIMIT, GODEBUG) or a change of
kemigo itself is judged: two things in one run, a ratio, never one timing.

  python3 bench/sip/ab.py --scenario options --rate 6000 \\
      --variant base: --variant gogc400:GOGC=400
  python3 bench/sip/ab.py --scenario call --rate 400 \\
      --variant old@/tmp/kemigo-old --variant new@./kemigo

A variant is NAME[@BINARY][:ENV=VAL,ENV=VAL][+native][+workers=N]; the
names kam-py and kam-native are Kamailio as in run.py, for reference.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def parse_variant(spec, default_bin):
    opts = {"native": False, "workers": None}
    spec, *extra = spec.split("+")
    for opt in extra:
        if opt == "native":
            opts["native"] = True
        elif opt.startswith("workers="):
            opts["workers"] = int(opt.split("=", 1)[1])
        else:
            sys.exit("unknown variant option +%s" % opt)
    head, _, envs = spec.partition(":")
    name, _, binary = head.partition("@")
    env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
    return dict(name=name, bin=os.path.abspath(binary) if binary else default_bin, env=env, **opts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="NAME[@BINARY][:ENV=VAL,...][+native][+workers=N]")
    ap.add_argument("--scenario", default="options", choices=sorted(run.SCENARIOS))
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--step", type=int, default=6, help="seconds of load per step")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kemigo", help="default binary (default: build one)")
    ap.add_argument("--python", help="build with this pyenv Python (3.12, 3.13)")
    ap.add_argument("--port-base", type=int, default=26060)
    args = ap.parse_args()

    if any(v.split(":")[0].split("@")[0] in ("kam-py", "kam-native") for v in args.variant):
        run.install()  # Kamailio's modules and SIPp (apt), as run.py
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = os.path.join(run.ROOT, "bench", "out", "ab", stamp)
    os.makedirs(work, exist_ok=True)
    scen_dir = os.path.join(run.HERE, "scenarios")
    default_bin = args.kemigo and os.path.abspath(args.kemigo)
    if not default_bin:
        prefix = None
        if args.python:
            prefix = next((d for v, d in run.pyenv_pythons() if v.startswith(args.python)), None)
            if not prefix:
                sys.exit("no pyenv Python %s with a shared libpython" % args.python)
        default_bin = run.build_kemigo(work, prefix)
    variants = [parse_variant(v, default_bin) for v in args.variant]
    run.write_injection_files(work)
    targets = []
    try:
        for i, v in enumerate(variants):
            kind = "kamailio" if v["name"] in ("kam-py", "kam-native") else "kemigo"
            t = run.Target(v["name"], args.port_base + i, work, args, kind=kind, native=v["native"])
            t.start(v["bin"], workers=v["workers"], env=v["env"])
            if args.scenario == "call":
                t.register_uas(scen_dir)
            targets.append((v, t))
        cpu = {v["name"]: [] for v in variants}
        rss = {v["name"]: [] for v in variants}
        for r in range(args.rounds):
            order = targets[r % len(targets):] + targets[:r % len(targets)]
            for v, t in order:
                st = run.run_step(t, args.scenario, args.rate, args.step, scen_dir, work, r, keep_rtt=False)
                if st["failed"]:
                    run.log("  %s: %d failed calls in round %d (its CPU figure is still counted)" % (v["name"], st["failed"], r))
                cpu[v["name"]].append(st["cpu_per_1000"])
                rss[v["name"]].append(st["rss_kib"] / 1024.0)
    finally:
        for _, t in targets:
            t.stop()
    base = statistics.median(cpu[variants[0]["name"]])
    print("\n%s at %d/s, %d rounds of %d s (CPU-s per 1000 calls: median, min-max, ratio of medians to %s; peak RSS of the proxy's processes, MiB)" % (
        args.scenario, args.rate, args.rounds, args.step, variants[0]["name"]))
    for v in variants:
        xs = cpu[v["name"]]
        m = statistics.median(xs)
        print("  %-16s %.4f  (%.4f-%.4f)  %.3fx  RSS %6.1f  %s" % (v["name"], m, min(xs), max(xs), m / base, max(rss[v["name"]]),
                                                                  " ".join("%.4f" % x for x in xs)))
    print("raw:", os.path.relpath(work, run.ROOT))


if __name__ == "__main__":
    main()
