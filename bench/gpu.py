"""GPU rows of the suite: the bundled trainer on H200s, read from ``bench/gpu_results.json``.

    python bench/gpu.py            # print the recorded rows
    bash bench/gpu_train.sh single # re-measure depth 12 and 20 on one GPU (then update the JSON)
    bash bench/gpu_train.sh ddp2   # re-measure depth 12 on 2 GPUs

This machine has no GPU, so these rows are not measured in the suite's run: they are the
recorded H200 runs (date, torch and commands in the JSON and in nanochat/LOG.md), next to
classic nanochat on the same GPU type, depth, batch, sequence length and vocab. Every row says
"(H200, recorded)". When CUDA is available the rows say that ``bash bench/gpu_train.sh single``
could re-measure them; this module never launches a training run itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().with_name("gpu_results.json")
TARGET = "≥ classic nanochat, same GPU and depth"


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def bench(tiny: bool = False) -> list:
    """``tiny`` changes nothing: the rows are read, not measured."""
    from bench.common import Row

    data = json.loads(RESULTS.read_text())
    runs = {r["key"]: r for r in data["runs"]}
    classic = data["baseline"]
    when = f"{data['date']}, torch {data['torch']}"
    hint = "; CUDA is available here: `bash bench/gpu_train.sh single` re-measures" if cuda_available() else ""
    rows = []
    for key in ("d12_1gpu", "d20_1gpu"):
        r, c = runs[key], classic[key]
        label = f"trainer d{r['depth']}, 1 GPU (H200, recorded)"
        rows.append(Row(what=f"{label}: tok/sec", ours=float(r["tok_per_sec"]), unit="tok/s",
                        baseline=float(c["tok_per_sec"]), baseline_what="classic nanochat 507d542, H200",
                        target=TARGET, meets=r["tok_per_sec"] >= c["tok_per_sec"],
                        note=f"{when}; median dt {r['median_dt_ms']} ms, steps {r['steps_in_median']}; "
                             f"peak {r['peak_memory_mib']:,.2f} MiB (classic {c['peak_memory']}){hint}"))
        rows.append(Row(what=f"{label}: MFU", ours=float(r["mfu"]), unit="%", baseline=float(c["mfu"]),
                        baseline_what="classic nanochat 507d542, H200", target=TARGET, meets=r["mfu"] >= c["mfu"],
                        note=f"{when}; classic MFU formula (989 TFLOP/s per GPU)"))
    one, two = runs["d12_1gpu"], runs["d12_2gpu"]
    scaling = two["tok_per_sec"] / one["tok_per_sec"]
    rows.append(Row(what="trainer d12, 2 GPUs torchrun (H200, recorded): tok/sec", ours=float(two["tok_per_sec"]),
                    unit="tok/s", baseline=2.0 * one["tok_per_sec"], baseline_what="2× our 1-GPU d12 (ideal scaling)",
                    target="", meets=None,
                    note=f"{when}; {scaling:.2f}× one GPU, MFU {two['mfu']}%; steps {two['steps_in_median']}{hint}"))
    return rows


def main() -> int:
    for r in bench():
        print(f"{r.what}: {r.ours:,.2f} {r.unit} vs {r.baseline:,.2f} ({r.baseline_what}); {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
