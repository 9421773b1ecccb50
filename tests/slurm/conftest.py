"""SLURM tests: the ``slurm`` marker needs a live controller (scripts/local-slurm.sh start).

Where none answers, marked tests skip with the reason, unless PREFLIGHT_REQUIRE_SLURM=1 (CI):
then they fail, so a broken cluster can never turn into a green run of skips.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

CAPTURED = Path(__file__).resolve().parent / "captured"
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


def _probe():
    if "result" not in _PROBE:
        from preflight.facts import FactUnavailable
        from preflight.slurm import probe

        try:
            _PROBE["result"] = probe(env=slurm_env(), timeout=10)
        except FactUnavailable as exc:
            _PROBE["result"] = exc.reason
    return _PROBE["result"]


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm") is None:
        return
    info = _probe()
    if isinstance(info, str):
        msg = f"no SLURM cluster: {info} (start one: sudo scripts/local-slurm.sh start)"
        if os.environ.get("PREFLIGHT_REQUIRE_SLURM") == "1":
            pytest.fail(f"PREFLIGHT_REQUIRE_SLURM=1 but {msg}", pytrace=False)
        pytest.skip(msg)


@pytest.fixture
def slurm():
    """The SlurmInfo of the live cluster (tests using it must be marked ``slurm``)."""
    info = _probe()
    assert not isinstance(info, str), info
    if "SLURM_CONF" not in os.environ and info.conf:
        os.environ["SLURM_CONF"] = info.conf
    return info


def sbatch(*args: str, cwd: Path, env: dict | None = None) -> str:
    """Submit with the real sbatch; the job id."""
    out = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, env=env or slurm_env(), capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def wait_final(job_id: str, timeout: float = 60):
    from preflight.slurm import wait_for_job

    t0 = time.monotonic()
    info = wait_for_job(job_id, timeout=timeout, poll=0.25, env=slurm_env())
    assert info is not None, f"job {job_id} unknown to SLURM"
    assert info.finished, f"job {job_id} still {info.state} after {time.monotonic() - t0:.0f}s"
    return info
