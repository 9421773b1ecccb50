"""Verify a d20-sized run (base/mid/sft model files of the real d20 shapes, ~2 GB each, 8 optimizer
shards) and compare with a plain torch.load of the same model files. Prints time and peak RSS.

    python bench/postflight_verify.py [--depth 20] [--dir /tmp/pf_bench] [--keep]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
                torch.save([{"state": {0: {"exp_avg": torch.empty(len(sd) * 1024, 1280 if depth == 20 else 64 * depth)}},
                             "param_groups": [{"lr": 0.004, "params": [0]}]}, {"state": {}, "param_groups": []}],
                           d / "base" / F.STAGE_DIRS[phase] / f"d{depth}" / f"optim_{step:06d}_rank{r}.pt")
    F.write_report(d / "base" / "report" / "report.md")


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
    for name, code in (("verify", VERIFY), ("load", LOAD)):
        out = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), d=str(d))], capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr.strip()[-500:])
    if not args.keep:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
