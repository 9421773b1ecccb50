"""Side-by-side summary of base_train logs from one GPU call: bundled trainer vs classic nanochat.

    python bench/gpu_compare.py stamp < trainer_output > LOG    # prefix each line with a wall-clock timestamp
    python bench/gpu_compare.py summary LOG... [--json OUT]    # medians over steps >= 11, ratios, loss gaps
    python bench/gpu_compare.py summary DIR                    # the same over DIR/*.log (a device call's $OUT)

Log names say who ran: c12.log = classic at depth 12, b12.log = bundled, b12-default.log = a bundled variant.
Each bundled log is compared with the classic log of its depth: median-dt tok/sec ratio, wall-clock ratio
(timestamps of the step-10 and last step lines), peak memory, and the largest gap between the printed
(debiased EMA) losses over the common steps.
"""

import glob
import json
import os
import re
import statistics
import sys
import time

STEP = re.compile(r"step (\d+)/\d+ .*?\| loss: ([\d.]+) \|.*?dt: ([\d.]+)ms \| tok/sec: ([\d,]+) \| mfu: ([\d.]+)")
BATCH = re.compile(r"Total batch size ([\d,]+)")
PEAK = re.compile(r"Peak memory usage: ([\d.]+)\s*MiB")


def stamp():
    # bytes, not text: a sample of a barely trained model can split a UTF-8 character, and a decode error here ended
    # the whole comparison (set -o pipefail) after its first run (2026-12-06)
    for line in sys.stdin.buffer:
        sys.stdout.buffer.write(f"{time.time():.3f} ".encode() + line)
        sys.stdout.buffer.flush()


def parse(path):
    steps, peak, batch, exit_code = {}, None, 524288, None
    for raw in open(path, errors="replace"):
        ts, _, line = raw.partition(" ")
        try:
            ts = float(ts)
        except ValueError:
            ts, line = None, raw
        if m := BATCH.search(line):
            batch = int(m.group(1).replace(",", ""))
        if m := STEP.search(line):
            steps[int(m.group(1))] = dict(ts=ts, loss=float(m.group(2)), dt=float(m.group(3)), mfu=float(m.group(5)))
        if m := PEAK.search(line):
            peak = float(m.group(1))
        if line.startswith("EXIT "):
            exit_code = int(line.split()[1])
    late = sorted(s for s in steps if s >= 11)
    out = dict(
        name=os.path.basename(path).rsplit(".", 1)[0],
        exit=exit_code,
        steps=len(steps),
        peak_mib=peak,
        loss={s: steps[s]["loss"] for s in sorted(steps)},
    )
    if late:
        med_dt = statistics.median(steps[s]["dt"] for s in late)
        last = late[-1]
        wall = (steps[last]["ts"] - steps[10]["ts"]) / (last - 10) if 10 in steps and steps[10]["ts"] else None
        out.update(
            steps_in_median=f"11-{last}",
            median_dt_ms=round(med_dt, 1),
            tok_per_sec=round(batch / (med_dt / 1000)),
            mfu=round(statistics.median(steps[s]["mfu"] for s in late), 2),
            wall_tok_per_sec=round(batch / wall) if wall else None,
            first_step_s=round(steps[0]["dt"] / 1000, 1) if 0 in steps else None,
        )
    return out


def summary(paths):
    paths = [
        p for path in paths for p in (sorted(glob.glob(os.path.join(path, "*.log"))) if os.path.isdir(path) else [path])
    ]
    runs = {r["name"]: r for r in map(parse, paths)}
    comparisons = []
    for name, r in runs.items():
        c = runs.get("c" + re.sub(r"\D.*$", "", name[1:]))
        if not name.startswith("b") or not c or "tok_per_sec" not in r or "tok_per_sec" not in c:
            continue
        common = sorted(set(r["loss"]) & set(c["loss"]))
        comparisons.append(
            dict(
                bundled=name,
                classic=c["name"],
                ratio=round(r["tok_per_sec"] / c["tok_per_sec"], 4),
                wall_ratio=round(r["wall_tok_per_sec"] / c["wall_tok_per_sec"], 4)
                if r.get("wall_tok_per_sec") and c.get("wall_tok_per_sec")
                else None,
                max_loss_gap=round(max(abs(r["loss"][s] - c["loss"][s]) for s in common), 6) if common else None,
                loss_steps=f"{common[0]}-{common[-1]}" if common else "",
                peak_mib=r["peak_mib"],
                classic_peak_mib=c["peak_mib"],
            )
        )
    return dict(runs=list(runs.values()), comparisons=comparisons)


def main(argv):
    if argv[:1] == ["stamp"]:
        return stamp()
    if argv[:1] != ["summary"]:
        print(__doc__)
        return 2
    args, out = argv[1:], None
    if "--json" in args:
        i = args.index("--json")
        out, args = args[i + 1], args[:i] + args[i + 2 :]
    result = summary(args)
    for r in result["runs"]:
        print(
            f"{r['name']}: exit {r['exit']}, {r['steps']} steps, median dt {r.get('median_dt_ms')} ms, "
            f"{r.get('tok_per_sec', 0):,} tok/s (wall {r.get('wall_tok_per_sec')}), MFU {r.get('mfu')}%, "
            f"peak {r['peak_mib']} MiB, first step {r.get('first_step_s')} s"
        )
        print("   loss:", [round(v, 3) for v in r["loss"].values()])
    for c in result["comparisons"]:
        print(
            f"RATIO {c['bundled']} / {c['classic']}: tok/s {c['ratio']:.4f} (wall {c['wall_ratio']}); "
            f"max loss gap {c['max_loss_gap']} over steps {c['loss_steps']}; peak {c['peak_mib']} vs {c['classic_peak_mib']} MiB"
        )
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
