"""GPU rows of the suite: the bundled trainer on an H100 or H200, read from ``bench/gpu_results.json``.

    python bench/gpu.py                               # print the recorded rows
    bash bench/gpu_train.sh vs-classic "c20 b20"      # re-measure: classic nanochat then the bundled trainer, one call
    bash bench/gpu_train.sh ddp2                      # depth 12 on 2 GPUs

This machine has no GPU, so these rows are not measured in the suite's run: they are recorded runs
(date, torch, code state and commands in the JSON and in nanochat/LOG.md). Each 1-GPU row is a ratio
of two runs made in the same device call, classic nanochat 507d542 first, with identical flags, data,
tokenizer and seed. Every row names its card ("(H100, recorded)"); this module never launches a training run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().with_name("gpu_results.json")
TARGETS = {20: 1.10, 12: 1.05}  # tok/sec over classic, same call (issue 18)
SHOWN = ("d20_1gpu", "d12_1gpu", "d20_1gpu_h200", "d12_1gpu_h200")  # the landed code, then the H200's last rows


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def tok_per_sec_row(s: dict, what: str, baseline_what: str, note: str, target: str = "", meets=None):
    """A side-by-side entry's tokens/sec row: the bundled trainer against classic nanochat of the same call; with
    ``repeat_ratios`` (the same comparison of the same code in other calls), their range."""
    from bench.common import Row

    ours, baseline = float(s["bundled"]["tok_per_sec"]), float(s["classic"]["tok_per_sec"])
    repeats = s.get("repeat_ratios") or []
    spread = f"{min(repeats):.3f}–{max(repeats):.3f}× ({len(repeats)} calls)" if repeats else ""
    return Row(what=what, ours=ours, unit="tok/s", baseline=baseline, baseline_what=baseline_what, target=target,
               meets=meets, spread=spread, note=note)  # fmt: skip


def bench(tiny: bool = False) -> list:
    """``tiny`` changes nothing: the rows are read, not measured."""
    from bench.common import Row

    data = json.loads(RESULTS.read_text())

    def when(s):
        torch_version = s.get("torch") or data["torch"].split(" ")[0]
        return f"{s.get('date') or data['date']}, torch {torch_version}, same device call"

    hint = "; CUDA is available here: `bash bench/gpu_train.sh vs-classic` re-measures" if cuda_available() else ""
    rows = []
    for s in data["side_by_side"]:
        if s["key"] not in SHOWN:
            continue  # experiments: nanochat/LOG.md
        b, c, target = s["bundled"], s["classic"], TARGETS[s["depth"]]
        landed = s["code"].startswith("as landed")
        label = f"trainer d{s['depth']}, 1 GPU ({s.get('card', 'H200')}, recorded)"
        code = "" if landed else "; NOT the landed code: " + s["code"].split(":", 1)[0]
        rows.append(
            tok_per_sec_row(
                s,
                f"{label}: tok/sec",
                "classic nanochat 507d542, same call",
                f"{when(s)}; steps {b['steps_in_median']}; wall-clock ratio {s['wall_ratio']}; MFU {b['mfu']}% vs "
                f"{c['mfu']}%; max loss gap {s['max_loss_gap']} (steps {s['loss_steps']}){code}"
                + (f"; {s['note']}" if landed and s.get("note") else "")
                + hint,
                target=f"≥ {target:.2f}× classic, loss gap ≤ 1e-2",
                # met only if every call of the same code met it: one call's ratio inside the spread proves nothing
                meets=(min([s["ratio"], *s.get("repeat_ratios", [])]) >= target and s["max_loss_gap"] <= 1e-2)
                if landed
                else None,
            )
        )
        rows.append(
            Row(
                what=f"{label}: peak memory",
                ours=float(b["peak_mib"]),
                unit="MiB",
                baseline=float(c["peak_mib"]),
                baseline_what="classic nanochat 507d542, same call",
                target="≤ classic",
                meets=b["peak_mib"] <= c["peak_mib"] if landed else None,
                note=f"{when(s)}; torch.cuda.max_memory_allocated(){code}",
            )
        )
    for s in data["side_by_side"]:
        if not s["key"].endswith("_fp8"):
            continue
        b, c = s["bundled"], s["classic"]
        peak = f"peak {b['peak_mib']:,.0f} vs {c['peak_mib']:,.0f} MiB" if b.get("peak_mib") else "peak not recorded"
        rows.append(
            tok_per_sec_row(
                s,
                f"trainer d{s['depth']}, 1 GPU, opt-in --fp8=1 (H200, recorded): tok/sec",
                "classic nanochat 507d542 (bf16), same call",  # other numerics: never the default, so no target
                f"{when(s)}; steps {b['steps_in_median']}; bf16 bundled in that call "
                f"{s['bf16_tok_per_sec']:,} tok/s ({b['tok_per_sec'] / s['bf16_tok_per_sec']:.3f}× it); max loss gap "
                f"{s['max_loss_gap']} vs classic, {s['max_loss_gap_vs_bf16']} vs bf16 (steps {s['loss_steps']}); {peak}"
                + ("; measured before the Triton loss kernel" if "before the Triton loss kernel" in s["code"] else ""),
            )
        )
    runs = {r["key"]: r for r in data["runs"]}
    one, two = runs["d12_1gpu"], runs["d12_2gpu"]
    scaling = two["tok_per_sec"] / one["tok_per_sec"]
    rows.append(
        Row(
            what="trainer d12, 2 GPUs torchrun (H200, recorded): tok/sec",
            ours=float(two["tok_per_sec"]),
            unit="tok/s",
            baseline=2.0 * one["tok_per_sec"],
            baseline_what="2× our 1-GPU d12 (ideal scaling), 2026-11-28",
            target="",
            meets=None,
            note=f"{two['note']}; {scaling:.2f}× one GPU, MFU {two['mfu']}%; steps {two['steps_in_median']}{hint}",
        )
    )
    return rows


def main() -> int:
    for r in bench():
        print(f"{r.what}: {r.ours:,.2f} {r.unit} vs {r.baseline:,.2f} ({r.baseline_what}); {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
