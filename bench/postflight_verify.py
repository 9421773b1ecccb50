"""Verify a d20-sized run (base/mid/sft model files of the real d20 shapes, ~2 GB each, 8 optimizer
shards) and compare with a plain torch.load of the same model files. Prints time and peak RSS.

    python bench/postflight_verify.py [--depth 20] [--dir /tmp/pf_bench] [--keep]
    python -m bench --only postflight_verify          # the suite row (--tiny: a d2 run)

The suite row times the real CLI, ``postflight verify --base-dir BASE --no-smoke --select CK,RPT``,
in a child process (wall time and peak RSS via wait4), next to a plain ``torch.load`` of the same
three model files in a child process. Targets (issue 4): under 2 s and under 300 MB. A third row
runs the same CLI as the light install has it (torch cannot be imported: ``preflight.testing.WITHOUT_TORCH``):
the load tier is skipped, everything else reads the same files; target <= 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VERIFY = """
import resource, sys, time, pathlib
sys.path.insert(0, {root!r})
from preflight.testing import Scenario, run_scenario
t = time.time()
r = run_scenario(Scenario(stage="post", base_dir="base", env={{}}, config={{"smoke": False}}), pathlib.Path({d!r}),
                 select=["CK", "RPT"])
dt = time.time() - t
print(f"verify: {{dt:.2f}}s  peak RSS {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}} MB  "
      f"checks={{len(r.checks)}} findings={{[f.code for f in r.findings]}}")
"""
LOAD = """
import resource, sys, time, glob, torch
t = time.time()
for p in sorted(glob.glob({d!r} + "/base/*_checkpoints/*/model_*.pt")):
    sd = torch.load(p, map_location="cpu", weights_only=True)
    del sd
print(f"plain torch.load: {{time.time() - t:.2f}}s  peak RSS {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}} MB")
"""


def build(d: Path, depth: int) -> None:
    import torch

    from tests import factories as F

    cfg = F.model_config(depth, vocab_size=65536, sequence_len=2048)
    for phase, step in (("base", 21400), ("mid", 765), ("sft", 700)):
        sd = F.state_dict(cfg, wte_bf16=True, empty=True)
        F.write_checkpoint(d / "base", phase, step, cfg, world_size=8, sd=sd, optim=False)
        if phase in ("base", "mid"):
            ranks = range(8) if phase == "base" else [0]
            for r in ranks:  # optimizer shards: a slice of the state per rank (ZeRO-style), real torch files
                torch.save(
                    [
                        {
                            "state": {0: {"exp_avg": torch.empty(len(sd) * 1024, 1280 if depth == 20 else 64 * depth)}},
                            "param_groups": [{"lr": 0.004, "params": [0]}],
                        },
                        {"state": {}, "param_groups": []},
                    ],
                    d / "base" / F.STAGE_DIRS[phase] / f"d{depth}" / f"optim_{step:06d}_rank{r}.pt",
                )
    F.write_report(d / "base" / "report" / "report.md")


LOAD_ONLY = """
import glob, sys, torch
for p in sorted(glob.glob(sys.argv[1] + "/*_checkpoints/*/model_*.pt")):
    sd = torch.load(p, map_location="cpu", weights_only=True)
    del sd
"""


def bench(tiny: bool = False) -> list:
    import os
    import resource
    import statistics
    import tempfile

    from bench.common import Row, cli, run_child
    from preflight.testing import WITHOUT_TORCH

    depth, repeat = (2, 3) if tiny else (20, 5)
    with tempfile.TemporaryDirectory(prefix="pf_bench_") as tmp:
        d = Path(tmp)
        build(d, depth)
        size = sum(p.stat().st_size for p in (d / "base").rglob("*.pt"))
        env = {**os.environ, "HOME": tmp, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        verify = cli(
            "postflight",
            "verify",
            "--base-dir",
            str(d / "base"),
            "--no-smoke",
            "--select",
            "CK,RPT",
            "--format",
            "json",
            "-o",
            str(d / "out.json"),
        )
        load = [sys.executable, "-c", LOAD_ONLY, str(d / "base")]
        light = [verify[0], "-c", WITHOUT_TORCH + verify[2], *verify[3:-2], "-o", str(d / "light.json")]
        ours, theirs, light_t = [], [], []
        run_child(verify, cwd=tmp, env=env)  # warm the page cache and the imports
        run_child(light, cwd=tmp, env=env)
        light_cpu, full_cpu = [], []
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, _rss, rc = run_child(light, cwd=tmp, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if rc not in (0, 1):
                raise RuntimeError(f"postflight verify without torch exited {rc}")
            light_t.append(wall)  # CPU time too: on a shared, loaded machine wall time says little
            light_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            wall, rss, rc = run_child(verify, cwd=tmp, env=env)
            done = resource.getrusage(resource.RUSAGE_CHILDREN)
            if rc not in (0, 1):
                raise RuntimeError(f"postflight verify exited {rc}")
            ours.append((wall, rss))
            full_cpu.append(done.ru_utime + done.ru_stime - after.ru_utime - after.ru_stime)
            wall, rss, rc = run_child(load, cwd=tmp, env=env)
            if rc != 0:
                raise RuntimeError(f"plain torch.load exited {rc}")
            theirs.append((wall, rss))
        import json

        result = json.loads((d / "out.json").read_text())
        ran = sum(1 for c in result.get("checks", []) if c.get("status") not in ("skip", "SKIP"))
        light_result = json.loads((d / "light.json").read_text())
        same = [(p["name"], p["status"]) for p in light_result.get("phases") or []] == [
            (p["name"], p["status"]) for p in result.get("phases") or []
        ]
    t = [w for w, _ in ours]
    m = [r for _, r in ours]
    what = f"postflight verify, d{depth} run (3 phases, 8 optim shards, {size / 1e9:.2f} GB)"
    return [
        Row(
            what=what + ": time",
            ours=statistics.median(t),
            unit="s",
            baseline=statistics.median(w for w, _ in theirs),
            baseline_what="plain torch.load of the 3 model files",
            target="< 2 s",
            meets=statistics.median(t) < 2.0,
            spread=f"{min(t):.3g}–{max(t):.3g} s",
            note=f"CLI, --select CK,RPT, {ran} checks ran",
        ),
        Row(
            what=what + ": peak RSS",
            ours=float(max(m)),
            unit="B",
            baseline=float(max(r for _, r in theirs)),
            baseline_what="plain torch.load",
            target="< 300 MB",
            meets=max(m) < 300e6,
            spread=f"{min(m) / 2**20:.0f}–{max(m) / 2**20:.0f} MiB",
            note="max over repeats",
        ),
        Row(
            what=what + ": time without torch (light install)",
            ours=statistics.median(light_t),
            unit="s",
            baseline=statistics.median(t),
            baseline_what="the same CLI with torch (load tier)",
            target="<= 0.5 s",
            meets=statistics.median(light_t) <= 0.5,
            spread=f"{min(light_t):.3g}–{max(light_t):.3g} s",
            note=("same per-phase verdict" if same else "VERDICT DIFFERS from the torch run")
            + f"; CPU time {statistics.median(light_cpu):.2f} s vs {statistics.median(full_cpu):.2f} s with torch",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--dir", default="/tmp/pf_bench")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    d = Path(args.dir)
    if not (d / "base").exists():
        t = time.time()
        build(d, args.depth)
        size = sum(p.stat().st_size for p in (d / "base").rglob("*.pt"))
        print(f"built d{args.depth} run in {time.time() - t:.1f}s: {size / 1e9:.2f} GB of .pt files")
    for _name, code in (("verify", VERIFY), ("load", LOAD)):
        out = subprocess.run(
            [sys.executable, "-c", code.format(root=str(ROOT), d=str(d))], capture_output=True, text=True
        )
        print(out.stdout.strip() or out.stderr.strip()[-500:])
    if not args.keep:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
