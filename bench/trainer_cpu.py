"""Tokens/sec of the bundled trainer's tiny CPU config (for regressions; no target).

    python bench/trainer_cpu.py [--tiny]
    python -m bench --only trainer_cpu

Builds a temp NANOCHAT_BASE_DIR exactly as ``bash scripts/speedrun.sh --tiny`` does
(``nanochat.dataset build --num-shards 3 --chars-per-shard 600000``, ``nanochat.tok_train
--max_chars=2000000 --vocab_size=1024``), runs ``python -m nanochat.base_train`` with the tiny
flags of speedrun.sh (depth 2, seq 256, batch 2,048 tokens; ``--tiny`` here only shortens the
run), and reports the median ``tok/sec`` of the step lines with step >= 5 (the first steps warm
up the allocator). The baseline is a rough ceiling: a plain forward/backward of the same GPT
(same config, micro-batch and accumulation) with no optimizer, data loader or logging, in a
child process with the same environment (OMP_NUM_THREADS=1 in both).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARDS = ["--num-shards", "3", "--chars-per-shard", "600000"]
TOK = ["--max_chars=2000000", "--vocab_size=1024"]
BASE = [
    "--depth=2",
    "--max_seq_len=256",
    "--device_batch_size=4",
    "--total_batch_size=2048",
    "--eval_every=20",
    "--eval_tokens=8192",
    "--sample_every=-1",
]
STEP_RE = re.compile(r"^step (\d+)/\d+ .*\| tok/sec: ([\d,]+)", re.M)
MIN_STEP = 5

CEILING = (
    """
import sys, time, torch
from nanochat.gpt import GPT, GPTConfig
depth, T, B, total, vocab, steps = (int(a) for a in sys.argv[1:7])
dim = depth * 64
cfg = GPTConfig(sequence_len=T, vocab_size=vocab, n_layer=depth, n_head=max(1, (dim + 127) // 128),
                n_kv_head=max(1, (dim + 127) // 128), n_embd=dim)
with torch.device("meta"):
    model = GPT(cfg)
model.to_empty(device="cpu")
model.init_weights()
g = torch.Generator().manual_seed(0)
x = torch.randint(0, vocab, (B, T), generator=g)
y = torch.randint(0, vocab, (B, T), generator=g)
accum = total // (B * T)
rates = []
for step in range(steps):
    t0 = time.perf_counter()
    for _ in range(accum):
        (model(x, y) / accum).backward()
    model.zero_grad(set_to_none=True)
    rates.append(total / (time.perf_counter() - t0))
print(sorted(rates["""
    + str(MIN_STEP)
    + """:])[len(rates["""
    + str(MIN_STEP)
    + """:]) // 2])
"""
)


def _run(args: list[str], env: dict, cwd: str, log: Path) -> str:
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-400:]}")
    return proc.stdout + proc.stderr


def step_rates(log_text: str, min_step: int = MIN_STEP) -> list[float]:
    """tok/sec of every step line with step >= min_step."""
    return [float(m.group(2).replace(",", "")) for m in STEP_RE.finditer(log_text) if int(m.group(1)) >= min_step]


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    iterations = 12 if tiny else 40
    with tempfile.TemporaryDirectory(prefix="trainer_cpu_") as tmp:
        base = Path(tmp) / "base"
        env = {
            **os.environ,
            "NANOCHAT_BASE_DIR": str(base),
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "disabled",
            "HOME": tmp,
            "PYTHONUNBUFFERED": "1",
        }
        _run(["-m", "nanochat.dataset", "build", *SHARDS], env, tmp, Path(tmp) / "dataset.log")
        _run(["-m", "nanochat.tok_train", *TOK], env, tmp, Path(tmp) / "tok.log")
        text = _run(
            ["-m", "nanochat.base_train", "--run=dummy", *BASE, f"--num_iterations={iterations}"],
            env,
            tmp,
            Path(tmp) / "base.log",
        )
        rates = step_rates(text)
        if not rates:
            raise RuntimeError("no step lines with tok/sec in the base_train log")
        out = subprocess.run(
            [sys.executable, "-c", CEILING, "2", "256", "4", "2048", "1024", str(iterations)],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        ceiling = float(out.stdout.split()[-1]) if out.returncode == 0 and out.stdout.split() else None
    note = f"median of {len(rates)} steps >= {MIN_STEP} of {iterations}; depth 2, seq 256, batch 2,048, vocab 1,024"
    if ceiling is None:
        note += f"; ceiling failed: {out.stderr.strip()[-200:]}"
    return [
        Row(
            what="trainer on CPU, tiny config (speedrun.sh --tiny)",
            ours=statistics.median(rates),
            unit="tok/s",
            baseline=ceiling,
            baseline_what="plain fwd/bwd of the same GPT (rough ceiling)" if ceiling else "",
            target="",
            meets=None,
            spread=f"{min(rates):,.0f}–{max(rates):,.0f}",
            note=note,
        )
    ]


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    for r in bench(args.tiny):
        print(f"{r.what}: {r.ours:,.0f} tok/s ({r.spread}); {r.baseline_what}: {r.baseline or 0:,.0f} tok/s; {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
