"""Helpers for the bundled trainer's tests: subprocess environment and module runner."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
