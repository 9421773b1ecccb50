"""Concurrency: `postflight verify` on a job that is still running (its log growing, a checkpoint being
written under a temp name) must say "running" for the phase in progress and must not call the
half-written file corrupt. (Two `preflight sbatch` at once: tests/slurm/test_slurm_cluster.py
test_concurrent_submits_write_separate_ledgers covers it; not duplicated here.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import factories
import pytest
from rel_helpers import check_survived

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slurm"))
from slurm_helpers import probe_cluster, slurm_env  # noqa: E402


def _need_slurm() -> None:
    info = probe_cluster()
    if isinstance(info, str):
        if os.environ.get("PREFLIGHT_REQUIRE_SLURM") == "1":
            pytest.fail(f"PREFLIGHT_REQUIRE_SLURM=1 but no SLURM cluster: {info}", pytrace=False)
        pytest.skip(f"no SLURM cluster: {info} (start one: sudo scripts/local-slurm.sh start)")


def _running_tree(tmp: Path) -> tuple[Path, Path, Path]:
    """base done; mid started, its log growing, its final model being written as a temp file."""
    base = tmp / "base"
    factories.write_run(base, phases=("base",), world_size=2, report=False)
    head = factories.run_log(("base",), base=str(base), report=False)
    mid = factories.phase_log("mid", base=str(base), steps=5, planned=12, save=False)
    prefix = tmp / "prefix.log"
    prefix.write_text(head + "\n".join(mid[:-2]) + "\n")
    more = tmp / "more.log"
    more.write_text("\n".join(factories.step_line("mid", s, 12) for s in range(5, 12)) + "\n")
    d = base / "mid_checkpoints" / "d2"
    d.mkdir(parents=True)
    half = factories.write_model(d / "model_000012.pt.tmp.4242", factories.model_config(2))
    factories.truncate(half, 0.4)
    return base, prefix, more


JOB = """#!/bin/bash
#SBATCH --job-name=relrun
#SBATCH --output=logs/relrun_%j.out
#SBATCH --time=00:05:00
cat prefix.log
while true; do
  while read -r line; do echo "$line"; sleep 0.3; done < more.log
done
"""


@pytest.mark.slurm
def test_verify_running_job(tmp_path, cli, tally):
    _need_slurm()
    base, _, _ = _running_tree(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(JOB)
    env = slurm_env()
    sub = subprocess.run(
        ["sbatch", "--parsable", "job.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    try:
        log = tmp_path / "logs" / f"relrun_{job_id}.out"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and log.stat().st_size > 2000):
            time.sleep(0.2)
        assert log.exists(), "the job never started"
        tally.fault("verify while the job runs")
        proc = cli(
            "postflight",
            "verify",
            job_id,
            "--base-dir",
            str(base),
            "--no-smoke",
            "--format",
            "json",
            cwd=tmp_path,
            env={"SLURM_CONF": env.get("SLURM_CONF", "")},
            timeout=120,
        )
        check_survived(tally, "running job", proc, allowed=(1,))
        data = json.loads(proc.stdout)
        phases = {p["name"]: p["status"] for p in data["phases"]}
        assert phases.get("base") == "done", phases
        assert phases.get("mid") == "running", f"the phase in progress is not reported as running: {phases}"
        corrupt = [
            f
            for c in data["checks"]
            for f in c["findings"]
            if ".tmp" in (f.get("location") or {}).get("path", "")
            and c["code"] in ("CK002", "CK005", "CK006", "CK007", "CK008")
        ]
        assert not corrupt, f"a checkpoint still being written is reported as broken: {corrupt}"
    finally:
        subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=30)


def test_verify_growing_log_without_slurm(tmp_path, cli, tally):
    """No job id: the tool cannot know the job runs, but must not crash or call the temp file corrupt."""
    import threading

    base, prefix, more = _running_tree(tmp_path)
    log = tmp_path / "logs" / "run.out"
    log.parent.mkdir()
    log.write_bytes(prefix.read_bytes())
    stop = threading.Event()

    def append():
        lines = more.read_text().splitlines()
        with open(log, "a") as f:
            i = 0
            while not stop.is_set():
                f.write(lines[i % len(lines)] + "\n")
                f.flush()
                i += 1
                time.sleep(0.002)

    t = threading.Thread(target=append, daemon=True)
    t.start()
    tally.fault("log appended while verified")
    try:
        proc = cli(
            "postflight",
            "verify",
            "--log",
            str(log),
            "--base-dir",
            str(base),
            "--no-smoke",
            "--format",
            "json",
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        stop.set()
        t.join(5)
    check_survived(tally, "running job", proc, allowed=(1,))
    data = json.loads(proc.stdout)
    corrupt = [
        f
        for c in data["checks"]
        for f in c["findings"]
        if ".tmp" in (f.get("location") or {}).get("path", "")
        and c["code"] in ("CK002", "CK005", "CK006", "CK007", "CK008")
    ]
    assert not corrupt, f"a checkpoint still being written is reported as broken: {corrupt}"
