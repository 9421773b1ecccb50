"""Helpers for the SLURM tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

RUN_DIR = Path(os.environ.get("SLURM_LOCAL_RUN_DIR", "/var/lib/slurm-local"))
_PROBE: dict[str, object] = {}


def _env_file_conf() -> str | None:
    """SLURM_CONF from local-slurm.sh's env file, when the shell did not source it."""
    try:
        for line in (RUN_DIR / "env.sh").read_text().splitlines():
            if line.startswith("export SLURM_CONF="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def slurm_env() -> dict[str, str]:
    env = dict(os.environ)
    if "SLURM_CONF" not in env and (conf := _env_file_conf()):
        env["SLURM_CONF"] = conf
    return env


def probe_cluster():
    if "result" not in _PROBE:
        from preflight.facts import FactUnavailable
        from preflight.slurm import probe

        try:
            _PROBE["result"] = probe(env=slurm_env(), timeout=10)
        except FactUnavailable as exc:
            _PROBE["result"] = exc.reason
    return _PROBE["result"]


def sbatch(*args: str, cwd: Path, env: dict | None = None) -> str:
    """Submit with the real sbatch; the job id."""
    out = subprocess.run(
        ["sbatch", "--parsable", *args], cwd=cwd, env=env or slurm_env(), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def wait_final(job_id: str, timeout: float = 60):
    from preflight.slurm import wait_for_job

    t0 = time.monotonic()
    info = wait_for_job(job_id, timeout=timeout, poll=0.25, env=slurm_env())
    assert info is not None, f"job {job_id} unknown to SLURM"
    assert info.finished, f"job {job_id} still {info.state} after {time.monotonic() - t0:.0f}s"
    return info
