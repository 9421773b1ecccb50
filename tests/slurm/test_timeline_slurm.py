"""The timeline through the real local cluster: a job submitted with plain sbatch (no ledger) whose
mid phase dies while loading its HF dataset, stdout and stderr split. `postflight verify JOBID`
gets the batch script from SLURM itself (scontrol write batch_script), reads both streams, and
places the crash in its phase; with the .out alone it names the .err the script's --error gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from slurm_helpers import sbatch, slurm_env, wait_final

pytestmark = pytest.mark.slurm

# a stand-in for nanochat's mid_train: the same start lines on stdout, the same offline failure on stderr
MID_TRAIN = """\
import sys
print("Overriding: run = dummy", flush=True)
print("Autodetected device type: cpu", flush=True)


def load_dataset(name):
    raise ConnectionError(f"Couldn't reach '{name}' on the Hub (LocalEntryNotFoundError)")


load_dataset("HuggingFaceTB/smol-smoltalk")
"""
SCRIPT = """#!/bin/bash
#SBATCH --job-name=tl
#SBATCH --output=logs/%x-%j.out
#SBATCH --error=logs/%x-%j.err
#SBATCH --time=00:05:00
echo "[3/5] Midtraining (teaching conversation format)..."
python -m scripts.mid_train -- --run=dummy
echo "[4/5] Supervised finetuning..."
python -m scripts.chat_sft -- --run=dummy
"""


def _verify(cli, cwd: Path, *args: str) -> dict:
    res = cli("postflight", "verify", *args, "--format", "json", "--no-smoke", cwd=cwd, env=slurm_env(), timeout=120)
    assert "Traceback (most recent call last)" not in res.stderr, res.stderr
    return json.loads(res.stdout)


def _phases(doc: dict) -> dict[str, dict]:
    return {p["name"]: p for p in doc["phases"]}


def test_jobid_without_ledger_gets_its_script_from_slurm(slurm, cli, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "__init__.py").write_text("")
    (tmp_path / "scripts" / "mid_train.py").write_text(MID_TRAIN)
    (tmp_path / "scripts" / "chat_sft.py").write_text(
        MID_TRAIN.replace("HuggingFaceTB/smol-smoltalk", "allenai/ai2_arc")
    )
    (tmp_path / "job.sbatch").write_text(SCRIPT)
    job_id = sbatch("job.sbatch", cwd=tmp_path)
    wait_final(job_id)
    os.remove(tmp_path / "job.sbatch")  # only SLURM has the script now
    assert not (tmp_path / ".preflight").exists()

    doc = _verify(cli, tmp_path, job_id)
    tl = doc["timeline"]
    assert tl["script_source"] in ("scontrol", "sacct")
    assert [(s["module"], s["phase"]) for s in tl["steps"]] == [
        ("scripts.mid_train", "mid"),
        ("scripts.chat_sft", "sft"),
    ]
    ph = _phases(doc)
    assert ph["mid"]["status"] == "failed" and "HuggingFaceTB/smol-smoltalk" in ph["mid"]["cause"]
    assert ph["sft"]["status"] == "failed" and "allenai/ai2_arc" in ph["sft"]["cause"]
    assert doc["resume"]["phase"] == "mid" and doc["resume"]["source"] == "script"
    assert doc["resume"]["commands"][0] == "python -m scripts.mid_train -- --run=dummy"

    # the .out alone: the script's --error pattern names the file the traceback is in
    out = tmp_path / "logs" / f"tl-{job_id}.out"
    err = tmp_path / "logs" / f"tl-{job_id}.err"
    err.rename(tmp_path / "moved.err")
    doc = _verify(cli, tmp_path, job_id, "--log", str(out))
    ph = _phases(doc)
    assert ph["mid"]["status"] == "failed" and "died during setup" in ph["mid"]["cause"]
    assert str(err) in ph["mid"]["cause"]
