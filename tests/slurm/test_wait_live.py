"""`postflight verify JOBID --wait` on the real local cluster: while the job trains, a live line with the
step, loss, tok/s and ETA read from the tail of the job's log; then the verdict."""

from __future__ import annotations

import re

import pytest
from slurm_helpers import sbatch, slurm_env

pytestmark = pytest.mark.slurm

# base-style step lines, one a second, as nanochat prints them
LIVE = """#!/bin/bash
#SBATCH --job-name=live
#SBATCH --output=logs/%x_%j.out
set -euo pipefail
echo "Autodetected device type: cpu"
for i in $(seq 0 11); do
    printf 'step %05d/00040 (%.2f%%) | loss: 3.%04d00 | lrm: 1.00 | dt: 1000.00ms | tok/sec: 2,048 | mfu: 0.00 | total time: 0.00m\\n' \\
        "$i" "$((i * 100 / 40))" "$((5000 - i * 10))"
    sleep 1
done
"""


def test_wait_shows_a_live_line(slurm, cli, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(LIVE)
    job_id = sbatch("job.sbatch", cwd=tmp_path)
    waited = cli(
        "postflight",
        "verify",
        job_id,
        "--wait",
        "--wait-timeout",
        "90",
        "--format",
        "text",
        "--no-color",
        cwd=tmp_path,
        env=slurm_env(),
        timeout=150,
    )
    live = [line for line in waited.stderr.splitlines() if line.startswith(f"postflight: job {job_id} ")]
    assert live, waited.stderr
    m = re.search(r"RUNNING \d+s · base step (\d+)/40 · loss (3\.\d{4}) · 2\.0k tok/s · ETA 0m(\d\d)s$", live[0])
    assert m, live[0]
    step = int(m.group(1))
    assert float(m.group(2)) == pytest.approx(3.5 - step * 0.001) and int(m.group(3)) == 40 - step
    base = next(line for line in waited.stdout.splitlines() if line.startswith("base "))  # then the verdict
    assert "failed" in base and re.search(r"3\.50 [▁▂▃▄▅▆▇█]{16} 3\.49", base), base

    # the page of the same job: the scheduler's facts next to the curves
    cli("postflight", "verify", job_id, "--format", "html", "-o", "report.html", cwd=tmp_path, env=slurm_env())
    page = (tmp_path / "report.html").read_text()
    job = page[page.index('<table id="job">') :]
    job = job[: job.index("</table>")]
    assert f"<td>{job_id}</td>" in job and "<td>COMPLETED</td>" in job and "<td>0:0</td>" in job
    assert re.search(r"<th>elapsed / limit</th><td>\d+s / 1h00m \(\d+% of the limit\)</td>", job), job
    assert "<th>nodes</th><td>1</td>" in job
    assert 'data-phase="base" id="phase-base"' in page and "stopped at step 11 of 40" in page


QUIET = """#!/bin/bash
#SBATCH --job-name=quiet
#SBATCH --output=logs/%x_%j.out
echo "step 00001/00040 (2.50%) | loss: 3.500000 | lrm: 1.00 | dt: 100.00ms | tok/sec: 2,048 | mfu: 0.00 | total time: 0.00m"
sleep 120
"""


def test_wait_says_when_the_job_has_gone_quiet(slurm, cli, tmp_path):
    import subprocess
    import time

    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(QUIET)
    job_id = sbatch("job.sbatch", cwd=tmp_path)
    env = {**slurm_env(), "PREFLIGHT_HANG_MINUTES": "0.1"}  # 6 s stand in for 30 min
    try:
        time.sleep(9)
        waited = cli(
            "postflight", "verify", job_id, "--wait", "--wait-timeout", "8", "--no-color", cwd=tmp_path, env=env
        )
    finally:
        subprocess.run(["scancel", job_id], env=slurm_env(), timeout=30)
    live = [line for line in waited.stderr.splitlines() if line.startswith(f"postflight: job {job_id} RUNNING")]
    assert live and re.search(r"base step 1/40 · .* · no output for \d+s: hung\?$", live[0]), waited.stderr
    assert "LOG010 job-hung" in waited.stdout and "has written nothing for" in waited.stdout, waited.stdout
