"""The GPU checks against a real ``--nproc_per_node`` of N, inside a real SLURM allocation and outside one.

Inside, SLURM itself sets SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES from ``--gres=gpu:N`` (the local
cluster's 8 GPUs are gres entries; there is no nvidia-smi). ``srun --job-name=speedrun.slurm`` runs
``preflight check scripts/speedrun.slurm`` the way the script's own first step does: in its allocation,
so the allocation (not the ``#SBATCH --gres=gpu:8`` line) sizes torchrun through
``NPROC_PER_NODE="${SLURM_GPUS_ON_NODE:-8}"``. batch-not-divisible (GPU001) then sees a world of N,
and visible-gpus-mismatch (GPU002) compares nproc with the GPUs SLURM gave the job.
gpu-memory-insufficient (GPU003) needs a GPU model, which fake gres GPUs do not have: it skips (asserted).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_helpers import slurm_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SELECT = "GPU001,GPU002,GPU003,SB005"
CHECK = "import sys; sys.argv[0] = 'preflight'; from preflight.cli import preflight_main; preflight_main()"


def _check(script: str, *, cwd: Path, base: Path, gpus: int | None = None, job_name: str | None = None) -> dict:
    """{code: (status, reason, [messages])} of `preflight check SCRIPT`, in an srun allocation with gpu:N or not."""
    cmd = [
        sys.executable,
        "-c",
        CHECK,
        "check",
        script,
        "--select",
        SELECT,
        "--format",
        "json",
        "--base-dir",
        str(base),
    ]
    if gpus is not None:
        cmd = ["srun", f"--gres=gpu:{gpus}", f"--job-name={job_name or Path(script).name}", "--time=00:05:00", *cmd]
    env = dict(slurm_env(), PYTHONPATH=str(REPO), NO_COLOR="1")
    for k in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"] + ["CUDA_VISIBLE_DEVICES"]:
        env.pop(k, None)  # the outside runs are outside: no job of the test runner's own leaks in
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode in (0, 1), p.stdout[-2000:] + p.stderr[-2000:]
    doc = json.loads(p.stdout)
    return {
        c["code"]: (c["status"], c.get("reason") or "", [f["message"] for f in c["findings"]]) for c in doc["checks"]
    }


def test_speedrun_slurm_sized_by_the_allocation(slurm, tmp_path):
    # outside: the #SBATCH --gres=gpu:8 line sizes the world; 8 divides the batch, no GPU to compare with
    out = _check("scripts/speedrun.slurm", cwd=REPO, base=tmp_path)
    assert out["GPU001"][0] == "pass" and out["SB005"][0] == "pass", out
    assert out["GPU002"][0] == "skip" and "nvidia-smi" in out["GPU002"][1], out
    # inside an allocation of 3 GPUs: torchrun gets 3 processes; 524,288 does not divide by 32 x 2048 x 3
    three = _check("scripts/speedrun.slurm", cwd=REPO, base=tmp_path, gpus=3)
    status, _, messages = three["GPU001"]
    assert status == "fail" and "world 3 = 196,608" in messages[0], three
    assert three["GPU002"][0] == "pass" and three["SB005"][0] == "pass", three  # nproc = visible = requested
    assert three["GPU003"][0] == "skip", three  # gres GPUs without a model: no memory to compare with
    # inside an allocation of 2: everything agrees
    two = _check("scripts/speedrun.slurm", cwd=REPO, base=tmp_path, gpus=2)
    assert {code: s for code, (s, _, _) in two.items() if code != "GPU003"} == dict.fromkeys(
        ("GPU001", "GPU002", "SB005"), "pass"
    ), two


def test_hard_coded_nproc_against_the_gpus_slurm_gave(slurm, tmp_path):
    # speedrun.slurm with its NPROC line hard-coded to 8, run in an allocation of 2 GPUs
    (tmp_path / "scripts").mkdir()
    text = (REPO / "scripts" / "speedrun.slurm").read_text()
    assert 'NPROC_PER_NODE="${SLURM_GPUS_ON_NODE:-8}"' in text
    (tmp_path / "scripts" / "speedrun.slurm").write_text(
        text.replace('NPROC_PER_NODE="${SLURM_GPUS_ON_NODE:-8}"', "NPROC_PER_NODE=8")
    )
    (tmp_path / "nanochat").symlink_to(REPO / "nanochat")
    inside = _check("scripts/speedrun.slurm", cwd=tmp_path, base=tmp_path / "base", gpus=2)
    status, _, messages = inside["GPU002"]
    assert status == "fail", inside
    assert "torchrun starts 8 processes but only 2 GPU(s) are visible (CUDA_VISIBLE_DEVICES=" in messages[0], inside
    assert inside["SB005"][0] == "fail" and "requests 2 GPU(s) per node" in inside["SB005"][2][0], inside

    # a script without #SBATCH lines, checked in an interactive allocation (srun --pty bash, then by hand):
    # the allocation is not this script's job, so SB005 has no request to compare with; GPU002 still tells
    (tmp_path / "run.sh").write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        "torchrun --standalone --nproc_per_node=8 -m nanochat.base_train -- --depth=20\n"
    )
    by_hand = _check("run.sh", cwd=tmp_path, base=tmp_path / "base", gpus=2, job_name="interactive")
    assert by_hand["GPU002"][0] == "fail" and "only 2 GPU(s) are visible" in by_hand["GPU002"][2][0], by_hand
    assert by_hand["SB005"][0] == "skip", by_hand
    outside = _check("run.sh", cwd=tmp_path, base=tmp_path / "base")
    assert outside["GPU002"][0] == "skip" and "nvidia-smi" in outside["GPU002"][1], outside
