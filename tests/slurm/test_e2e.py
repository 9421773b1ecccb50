"""End to end through the real local cluster, as a user runs it: `preflight sbatch` then
`postflight verify JOBID`, asserting the user-visible verdicts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slurm_helpers import slurm_env, wait_final

pytestmark = pytest.mark.slurm

NOLOG = (
    "#!/bin/bash\n#SBATCH --job-name=nolog\n#SBATCH --output=logs/%x_%j.out\n#SBATCH --time=00:05:00\n"
    "set -euo pipefail\necho hi\n"
)
# no --time: SB006 would compare it with the plan of a full nanochat run (the partition's 1 h applies)
SLEEPY = (
    "#!/bin/bash\n#SBATCH --job-name=sleepy\n#SBATCH --output=logs/%x_%j.out\nset -euo pipefail\nsleep 6\necho done\n"
)


def _cli(cli, tool: str, *args: str, cwd: Path, timeout: float = 120):
    return cli(tool, *args, cwd=cwd, env=slurm_env(), timeout=timeout)


def _findings(doc: dict, code: str) -> list[dict]:
    return [f for c in doc["checks"] if c["code"] == code for f in c["findings"]]


def test_missing_output_dir_refused_then_forced_fails_0_53(slurm, cli, tmp_path):
    (tmp_path / "job.sbatch").write_text(NOLOG)
    refused = _cli(cli, "preflight", "sbatch", "job.sbatch", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout.strip() == ""
    assert "output-dir-missing" in refused.stderr and "not submitted" in refused.stderr
    assert not (tmp_path / ".preflight").exists()

    forced = _cli(cli, "preflight", "sbatch", "--force", "job.sbatch", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    job_id = forced.stdout.strip()
    assert job_id.isdigit() and "--force" in forced.stderr
    ledger = json.loads((tmp_path / ".preflight" / "jobs" / f"{job_id}.json").read_text())
    assert ledger["forced"] is True and ledger["logs"]["stdout"] == str(tmp_path / "logs" / f"nolog_{job_id}.out")
    assert any(f["name"] == "output-dir-missing" for c in ledger["preflight"]["checks"] for f in c["findings"])

    verify = _cli(
        cli, "postflight", "verify", job_id, "--wait", "--wait-timeout", "60", "--format", "json", cwd=tmp_path
    )
    assert verify.returncode == 1, verify.stderr
    doc = json.loads(verify.stdout)
    assert (doc["job"]["state"], doc["job"]["exit_code"]) == ("FAILED", "0:53")
    (failed,) = _findings(doc, "JOB001")
    assert "0:53" in failed["message"] and str(tmp_path / "logs") in failed["message"]
    assert not (tmp_path / "logs").exists()


def test_clean_script_is_submitted_and_completes(slurm, cli, tmp_path):
    (tmp_path / "preflight.yaml").write_text("select: [SB]\n")  # a plain shell job: only the script checks
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(SLEEPY.replace("sleep 6", "sleep 1"))
    res = _cli(cli, "preflight", "sbatch", "job.sbatch", "--job-name=renamed", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    job_id = res.stdout.strip()
    assert job_id.isdigit() and f"Submitted batch job {job_id}" in res.stderr
    ledger = json.loads((tmp_path / ".preflight" / "jobs" / f"{job_id}.json").read_text())
    assert ledger["sbatch_args"] == ["--job-name=renamed"] and ledger["forced"] is False
    assert ledger["preflight"]["verdict"] == "pass"
    info = wait_final(job_id)
    assert (info.state, info.exit_code, info.name) == ("COMPLETED", "0:0", "renamed")
    assert info.stdout == ledger["logs"]["stdout"] == str(tmp_path / "logs" / f"renamed_{job_id}.out")


def test_test_only_passes_through(slurm, cli, tmp_path):
    (tmp_path / "preflight.yaml").write_text("select: [SB]\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(SLEEPY)
    ok = _cli(cli, "preflight", "sbatch", "--test-only", "job.sbatch", "--gres=gpu:8", cwd=tmp_path)
    assert ok.returncode == 0 and "to start at" in ok.stderr and ok.stdout.strip() == ""
    too_long = _cli(cli, "preflight", "sbatch", "--test-only", "job.sbatch", "--time=99:00:00", cwd=tmp_path)
    assert too_long.returncode != 0 and "time limit" in too_long.stderr.lower()
    assert not (tmp_path / ".preflight").exists()


def test_verify_running_job_then_wait(slurm, cli, tmp_path):
    (tmp_path / "preflight.yaml").write_text("select: [SB]\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(SLEEPY)
    job_id = _cli(cli, "preflight", "sbatch", "job.sbatch", cwd=tmp_path).stdout.strip()
    assert job_id.isdigit()
    running = _cli(cli, "postflight", "verify", job_id, "--format", "json", cwd=tmp_path)
    assert running.returncode == 1
    assert json.loads(running.stdout)["job"]["state"] in ("PENDING", "RUNNING")
    waited = _cli(
        cli, "postflight", "verify", job_id, "--wait", "--wait-timeout", "60", "--format", "json", cwd=tmp_path
    )
    doc = json.loads(waited.stdout)
    assert (doc["job"]["state"], doc["job"]["exit_code"]) == ("COMPLETED", "0:0")
    assert not _findings(doc, "JOB001") and not _findings(doc, "JOB003")


def test_sbatch_checks_the_script_with_the_arguments_it_submits(slurm, cli, tmp_path):
    # sbatch options before --, the script's own after it: the check sees what the job will ($# and $1 here)
    (tmp_path / "preflight.yaml").write_text("select: [SB017]\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "job.sbatch").write_text(
        SLEEPY.replace(
            "set -euo pipefail\n", 'set -euo pipefail\nif [ $# -eq 0 ]; then echo "usage: $0 DEPTH"; exit 1; fi\n'
        )
        + "python -m scripts.tok_train\n"
    )
    bare = _cli(cli, "preflight", "sbatch", "job.sbatch", cwd=tmp_path)
    assert bare.returncode == 1 and bare.stdout == "", bare.stderr  # refused: nothing submitted
    assert "`[ $# -eq 0 ]` is true (with no arguments, as `sbatch job.sbatch` runs it)" in bare.stderr, bare.stderr
    given = _cli(cli, "preflight", "sbatch", "--test-only", "job.sbatch", "--", "26", cwd=tmp_path)
    assert given.returncode == 0 and "to start at" in given.stderr, given.stderr
