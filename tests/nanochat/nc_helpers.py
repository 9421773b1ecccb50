"""Helpers for the bundled trainer's tests: subprocess environment and module runner."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def nc_env(base_dir, **extra):
    env = dict(os.environ)
    env.update(
        {
            "NANOCHAT_BASE_DIR": str(base_dir),
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        }
    )
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_module(base_dir, module, *args, timeout=300, cwd=None, check=True):
    p = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=nc_env(base_dir),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert p.returncode == 0, (
            f"{module} {' '.join(args)} failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        )
    return p


# the tiny base-train settings shared by the training tests (depth 2, 256 x 4 rows, 2 micro-steps per step)
TINY_BASE = [
    "--depth=2",
    "--max_seq_len=256",
    "--device_batch_size=4",
    "--total_batch_size=2048",
    "--eval_tokens=4096",
    "--sample_every=-1",
    "--device_type=cpu",
]


def copy_data_and_tokenizer(tiny_base_dir, dest):
    """A base dir of its own with the shared shards and tokenizer but none of the checkpoints, reports or
    logs that other tests write into ``tiny_base_dir``: postflight reads every tag there."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in ("base_data", "tokenizer"):
        shutil.copytree(tiny_base_dir / part, dest / part)
    return dest


def run_interpreted(code):
    """Runs code in a child with Triton's CPU interpreter on (TRITON_INTERPRET=1) and the repo importable; its stdout."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def skip_where_interpreter_cannot(probe, known_error, what):
    """Skips where a small probe under Triton's interpreter fails with one known limitation of this torch/Triton pair
    (`what` says which); any other failure of the probe fails the test instead of skipping it."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], env=env, capture_output=True, text=True)
    if known_error in proc.stderr:
        import torch
        import triton

        pytest.skip(f"torch {torch.__version__} with Triton {triton.__version__}: {what}")
    assert proc.returncode == 0, proc.stderr[-3000:]
