"""The stop-signal path with N processes on one node, through the real SLURM, and a bitwise resume.

The batch script is built from scripts/speedrun.slurm itself (its NPROC_PER_NODE line and its
forwarding functions; the base phase launched the way the script launches it, with tiny CPU settings),
submitted with ``--gres=gpu:2`` so that SLURM sets SLURM_GPUS_ON_NODE=2 and torchrun starts 2 gloo
processes. ``scancel --signal=USR1 --batch`` is what ``#SBATCH --signal=B:USR1@300`` does before the time
limit. Then: every rank stopped at one step (each rank's optimizer shard holds that step and nothing
else was saved), the job ends COMPLETED without starting the next phase, and the resubmitted job
(RESUME_FROM_STEP) ends bitwise where an uninterrupted job with the same seed and data ends: model,
both optimizer shards, validation bpb and every logged loss and grad norm.

The two-node variant (srun + c10d rendezvous) is tests/slurm/test_multinode_slurm.py; the 1-process,
SLURM-free forwarding tests are tests/nanochat/test_signal_forwarding.py.
Cost on the loaded 2-core machine: about 3 min (data and tokenizer, two 16-step jobs at once, the resumed one).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from slurm_helpers import sbatch, slurm_env, wait_final

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NPROC = 2
ITERS = 16  # the stop lands ~2 steps after the signal (a step takes ~3 s on the loaded 2-core machine)
TINY = [
    "--depth=2",
    "--max_seq_len=128",
    "--device_batch_size=4",
    f"--total_batch_size={512 * NPROC}",
    "--eval_every=-1",
    "--eval_tokens=2048",
    "--sample_every=-1",
    "--device_type=cpu",
    f"--num_iterations={ITERS}",
]
STEP_LINE = re.compile(r"^step (\d{5})/\d{5} \([^)]*\) \| loss: ([\d.]+) \| grad norm: ([\d.]+) \|", re.MULTILINE)


def _speedrun_parts() -> tuple[str, str]:
    """speedrun.slurm's NPROC_PER_NODE line and its signal-forwarding functions, verbatim."""
    text = (REPO / "scripts" / "speedrun.slurm").read_text()
    (nproc_line,) = [line for line in text.splitlines() if line.startswith("NPROC_PER_NODE=")]
    start = text.index('CHILD=""')
    end = text.index("\n}\n", text.index("finish_phase() {")) + 3
    return nproc_line, text[start:end]


def _script(logs: Path, base: Path, tag: str) -> str:
    nproc_line, functions = _speedrun_parts()
    bindir = Path(sys.executable).parent
    return (
        f"#!/bin/bash\n#SBATCH --job-name=sig-{tag}\n#SBATCH --output={logs}/%x_%j.out\n"
        f"#SBATCH --gres=gpu:{NPROC}\n#SBATCH --cpus-per-task={NPROC}\n#SBATCH --time=00:15:00\n"
        "set -euo pipefail\n"
        f"export PATH={bindir}:$PATH PYTHONPATH={REPO} OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1\n"
        f"export NANOCHAT_BASE_DIR={base}\ncd {REPO}\n"
        f'{nproc_line}\nRESUME_FROM_STEP="${{RESUME_FROM_STEP:--1}}"\n{functions}\n'
        'echo "NPROC_PER_NODE=$NPROC_PER_NODE"\n'
        "not_stopped nanochat.base_train\n"
        "torchrun --standalone --nproc_per_node=$NPROC_PER_NODE -m nanochat.base_train -- "
        f"{' '.join(TINY)} --model_tag={tag} --resume_from_step=$RESUME_FROM_STEP &\n"
        "PID=$!; started $PID\nwait $PID && rc=0 || rc=$?\nfinish_phase nanochat.base_train $PID $rc\n"
        "echo NEXT-PHASE-STARTED\n"
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Demo shards (2+ row groups each: one per rank) and a small tokenizer."""
    b = tmp_path_factory.mktemp("nproc-signal") / "base"
    env = dict(slurm_env(), NANOCHAT_BASE_DIR=str(b), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    for args in (
        "nanochat.dataset build --num-shards 3 --chars-per-shard 600000",
        "nanochat.tok_train --max_chars=1000000 --vocab_size=512",
    ):
        p = subprocess.run(
            [sys.executable, "-m", *args.split()],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert p.returncode == 0, p.stderr[-2000:]
    return b


def _submit(tmp_path: Path, base: Path, tag: str, resume: int = -1) -> tuple[str, Path]:
    script = tmp_path / f"{tag}_{resume}.sbatch"
    script.write_text(_script(tmp_path, base, tag))
    job = sbatch(str(script), cwd=tmp_path, env=dict(slurm_env(), RESUME_FROM_STEP=str(resume)))
    return job, tmp_path / f"sig-{tag}_{job}.out"


def _losses(log: str) -> dict[int, tuple[str, str]]:
    return {int(s): (loss, norm) for s, loss, norm in STEP_LINE.findall(log)}


def _sd(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _same(a, b) -> bool:
    """Bitwise equality of two state dicts / optimizer state lists (tensors by torch.equal)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
        )
    return a == b


def test_usr1_stops_every_rank_at_one_step_and_resume_is_bitwise(slurm, base, tmp_path):
    full_job, full_log = _submit(tmp_path, base, "full")
    stop_job, stop_log = _submit(tmp_path, base, "stopped")
    deadline = time.monotonic() + 300
    while not (stop_log.exists() and re.search(r"^step 0000[3-9]", stop_log.read_text(errors="replace"), re.MULTILINE)):
        assert time.monotonic() < deadline, (
            stop_log.read_text(errors="replace")[-3000:] if stop_log.exists() else "no log"
        )
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR1", "--batch", stop_job], env=slurm_env(), check=True, timeout=30)

    assert wait_final(stop_job, timeout=300).state == "COMPLETED", stop_log.read_text(errors="replace")[-3000:]
    stopped = stop_log.read_text(errors="replace")
    assert "NPROC_PER_NODE=2" in stopped  # from SLURM_GPUS_ON_NODE, as speedrun.slurm sizes torchrun
    assert "Distributed world size: 2" in stopped
    assert "Received USR1, forwarding SIGTERM to the running phase" in stopped, stopped[-3000:]
    assert "Stopped by a signal during nanochat.base_train" in stopped and "NEXT-PHASE-STARTED" not in stopped
    m = re.search(r"Received SIGTERM: saved checkpoint at step (\d+)", stopped)
    assert m, stopped[-3000:]
    stop = int(m.group(1))
    assert 3 <= stop < ITERS

    # exactly one checkpoint, at the stop step: rank 0's model and meta, each rank's optimizer shard
    ckpt = base / "base_checkpoints" / "stopped"
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        [f"model_{stop:06d}.pt", f"meta_{stop:06d}.json"] + [f"optim_{stop:06d}_rank{r}.pt" for r in range(NPROC)]
    )
    # every rank stopped after the same number of optimizer steps (AdamW counts them per parameter)
    shards = [_sd(ckpt / f"optim_{stop:06d}_rank{r}.pt") for r in range(NPROC)]
    for shard in shards:
        assert {int(s["step"]) for s in shard[0]["state"].values()} == {stop}
    assert _same(shards[0], shards[1])  # replicated optimizer: same state on every rank
    meta = json.loads((ckpt / f"meta_{stop:06d}.json").read_text())
    assert meta["step"] == stop and len(meta["dataloader_state_dicts"]) == NPROC

    resume_job, resume_log = _submit(tmp_path, base, "stopped", resume=stop)
    assert wait_final(resume_job, timeout=400).state == "COMPLETED", resume_log.read_text(errors="replace")[-3000:]
    assert wait_final(full_job, timeout=400).state == "COMPLETED", full_log.read_text(errors="replace")[-3000:]
    resumed, full = resume_log.read_text(errors="replace"), full_log.read_text(errors="replace")
    assert f"Resuming optimization from step {stop}" in resumed

    # bitwise: every logged loss and grad norm, then the final model, optimizer shards and val bpb
    full_losses, before, after = _losses(full), _losses(stopped), _losses(resumed)
    assert sorted(full_losses) == list(range(ITERS))
    assert sorted(before) == list(range(stop)) and sorted(after) == list(range(stop, ITERS))
    assert before == {s: full_losses[s] for s in before}
    assert after == {s: full_losses[s] for s in after}
    full_dir = base / "base_checkpoints" / "full"
    assert _same(_sd(full_dir / f"model_{ITERS:06d}.pt"), _sd(ckpt / f"model_{ITERS:06d}.pt"))
    for r in range(NPROC):
        assert _same(_sd(full_dir / f"optim_{ITERS:06d}_rank{r}.pt"), _sd(ckpt / f"optim_{ITERS:06d}_rank{r}.pt"))
    m_full = json.loads((full_dir / f"meta_{ITERS:06d}.json").read_text())
    m_res = json.loads((ckpt / f"meta_{ITERS:06d}.json").read_text())
    assert m_full["val_bpb"] == m_res["val_bpb"]
    assert m_full["dataloader_state_dicts"] == m_res["dataloader_state_dicts"]
