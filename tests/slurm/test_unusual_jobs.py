"""Jobs SLURM starts in unusual ways, on the real local cluster.

Job arrays: a task is verified by its array id (6067_1), the array's own id names every task and
is refused with the list, and the task's log is found by SLURM's default name for arrays
(slurm-%A_%a.out). A script whose #! interpreter is missing: warned before, explained after."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from slurm_helpers import sbatch, slurm_env, wait_final

from preflight import slurm as S

pytestmark = pytest.mark.slurm

# task 1 fails with exit code 3, task 2 succeeds; the default output name is slurm-%A_%a.out
TASKS = '[ "$SLURM_ARRAY_TASK_ID" = 1 ] && { echo "task one fails" >&2; exit 3; }; echo "task two done"'


def _accounted(query: str, timeout: float = 30.0):
    """sacct's row for ``query`` once accounting has it (scontrol forgets finished jobs; sacct does not)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            row, _err = S._sacct_once(query, slurm_env(), 10, completion=False)
        except S.ArrayJob:
            raise
        if (row is not None and S.sacct_settled(row)) or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def test_an_array_is_verified_task_by_task(slurm, tmp_path, cli):
    array = sbatch("-J", "arr", "--array=1-2", f"--wrap={TASKS}", cwd=tmp_path)
    first, second = wait_final(f"{array}_1"), wait_final(f"{array}_2")
    assert (first.state, first.exit_code, first.array_id) == ("FAILED", "3:0", f"{array}_1")
    assert (second.state, second.array_id, second.label) == ("COMPLETED", f"{array}_2", f"{array}_2")
    assert first.job_id != f"{array}_1" and first.job_id.isdigit()  # its own id, which %j names

    # the array's own id is also its last task's JobId: never silently that task
    with pytest.raises(S.ArrayJob) as err:
        S.job_info(array, env=slurm_env())
    assert [t for t, _ in err.value.tasks] == [f"{array}_1", f"{array}_2"]
    # and the same from accounting, once the controller has forgotten the job
    row = _accounted(f"{array}_1")
    assert row is not None and (row["JobID"], row["JobIDRaw"]) == (f"{array}_1", first.job_id)
    with pytest.raises(S.ArrayJob):
        S._sacct_once(array, slurm_env(), 10, completion=False)

    proc = cli("postflight", "verify", array, cwd=tmp_path, env=slurm_env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"job {array} is a job array of 2 tasks ({array}_1 FAILED, {array}_2 COMPLETED)" in proc.stderr
    assert f"postflight verify {array}_1" in proc.stderr

    proc = cli("postflight", "verify", f"{array}_1", "--format", "json", cwd=tmp_path, env=slurm_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    job001 = next(c for c in report["checks"] if c["code"] == "JOB001")
    assert job001["findings"][0]["message"].startswith(f"job {array}_1 ended FAILED with exit code 3:0")
    assert report["job"]["array_id"] == f"{array}_1"
    # the task's own log (SLURM named it slurm-%A_%a.out) was found and read
    assert job001["findings"][0]["location"]["path"] == str(tmp_path / f"slurm-{array}_1.out"), job001
    assert not [c["code"] for c in report["checks"] if "no log found" in (c.get("reason") or "")]


def test_a_script_whose_interpreter_is_missing_never_ran(slurm, tmp_path, cli):
    # slurmstepd cannot exec the #! interpreter: FAILED 2:0, and its only output is its own error line
    script = tmp_path / "job.sh"
    script.write_text("#!/opt/nothere/bin/bash\n#SBATCH --output=out_%j.txt\necho never\n")
    proc = cli("preflight", "check", str(script), "--select", "SB029", cwd=tmp_path, env=slurm_env())
    assert "#!/opt/nothere/bin/bash: /opt/nothere/bin/bash does not exist here" in proc.stdout, proc.stdout
    job = sbatch(str(script), cwd=tmp_path)
    info = wait_final(job)
    assert (info.state, info.exit_code) == ("FAILED", "2:0")
    assert "execve(): bad interpreter(/opt/nothere/bin/bash)" in (tmp_path / f"out_{job}.txt").read_text()
    proc = cli("postflight", "verify", job, cwd=tmp_path, env=slurm_env())
    assert proc.returncode == 1
    assert (
        f"job {job} ended FAILED with exit code 2:0; slurmstepd could not start the batch script: its interpreter "
        "/opt/nothere/bin/bash does not exist on the node"
    ) in " ".join(proc.stdout.split()), proc.stdout


def test_an_array_submitted_with_preflight_sbatch_finds_each_tasks_log(slurm, tmp_path, cli):
    # the ledger is written at submission, when no task has its own id yet: its log names keep %j and %a
    from preflight.ledger import expand_pattern

    assert expand_pattern("logs/%x_%A_%a.out", "700", "arr", "me", array=True) == "logs/arr_700_%a.out"
    assert expand_pattern("logs/%j.out", "700", "arr", "me", array=True) == "logs/%j.out"
    assert expand_pattern("logs/%j_%a.out", "700", "one", "me") == "logs/700_4294967294.out"
    (tmp_path / "logs").mkdir()
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --job-name=arr\n#SBATCH --output=logs/%x_%A_%a.out\n{TASKS}\n")
    proc = cli("preflight", "sbatch", str(script), "--array=1-2", "--force", cwd=tmp_path, env=slurm_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    array = proc.stdout.strip().splitlines()[-1]
    wait_final(f"{array}_1")
    proc = cli("postflight", "verify", f"{array}_1", "--format", "json", cwd=tmp_path, env=slurm_env())
    report = json.loads(proc.stdout)
    job001 = next(c for c in report["checks"] if c["code"] == "JOB001")
    assert job001["findings"][0]["location"]["path"] == str(tmp_path / "logs" / f"arr_{array}_1.out"), job001


def test_a_job_outside_the_checkout_fails_base_at_setup_not_not_run(slurm, tmp_path, cli):
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n#SBATCH --output=job_%j.out\nset -euo pipefail\n"
        f"{sys.executable} -m scripts.base_train --depth=4\n{sys.executable} -m scripts.mid_train\n"
    )
    job = sbatch(str(script), cwd=tmp_path)
    assert wait_final(job).state == "FAILED"
    proc = cli("postflight", "verify", job, "--format", "json", cwd=tmp_path, env=slurm_env())
    phases = {p["name"]: p for p in json.loads(proc.stdout)["phases"]}
    assert phases["base"]["status"] == "failed", phases["base"]
    assert "python cannot import scripts: the phase did not run in the nanochat checkout" in json.dumps(phases["base"])
    assert phases["mid"]["status"] == "not-run"


HANGS = """#!/bin/bash
#SBATCH --output=hang_%j.out
#SBATCH --error=hang_%j.err
echo "=== phase: mid ==="
{python} -u -c '
import logging, time
logging.basicConfig(format="%(asctime)s - %(name)s - %(levelname)s - %(message)s", level=logging.INFO)
logging.getLogger("nanochat.checkpoint_manager").info("Building model with config: {{}}")
print("Muon: Grouping 20 params of shape torch.Size([5120, 1280])", flush=True)
time.sleep(600)
'
"""


def test_a_job_that_stopped_writing_has_hung_while_it_runs_and_after(slurm, tmp_path, cli):
    # a phase that prints its setup, then waits forever (a rank stuck in a collective looks the same)
    script = tmp_path / "hang.sh"
    script.write_text(HANGS.format(python=sys.executable))
    job = sbatch(str(script), cwd=tmp_path)
    out = tmp_path / f"hang_{job}.out"
    deadline = time.monotonic() + 60
    while "Muon" not in (out.read_text() if out.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(13)
    env = {**slurm_env(), "PREFLIGHT_HANG_MINUTES": "0.2"}  # 12 s stand in for the default 30 min
    try:
        proc = cli("postflight", "verify", job, "--format", "json", cwd=tmp_path, env=env)
        checks = {c["code"]: c for c in json.loads(proc.stdout)["checks"]}
        (hung,) = [f["message"] for f in checks["LOG010"]["findings"]]
        # at least the 12 s threshold; how much more depends on this machine's load (it read 21 s once under CI)
        quiet = re.match(r"mid has written nothing for (\d+)s before its first step", hung)
        assert quiet and 12 <= int(quiet.group(1)) < 600, hung
        assert "; the job is still running: it has hung" in hung, hung
        # logging writes to stderr: the .out holds the print, its second line
        assert f"hang_{job}.out:2 `Muon: Grouping 20 params" in hung, hung
    finally:
        subprocess.run(["scancel", job], env=slurm_env(), timeout=30)
    info = wait_final(job)
    assert info.state == "CANCELLED"
    proc = cli("postflight", "verify", job, "--format", "json", cwd=tmp_path, env=env)
    checks = {c["code"]: c for c in json.loads(proc.stdout)["checks"]}
    (hung,) = [f["message"] for f in checks["LOG010"]["findings"]]
    assert (
        hung.startswith("mid wrote nothing for the last ")
        and "before the end (CANCELLED) before its first step" in hung
    )
    # the .out's own last write dates it: the cancel line went to the .err
    assert "timestamped" not in hung and f"hang_{job}.out:2" in hung


NOT_EXPORTED = """#!/bin/bash
#SBATCH --output=ne_%j.out
{export}NNODES=2
cd {checkout}
srun bash -c 'echo "nodes=[$NNODES]"; {python} -m scripts.base_train --nnodes=$NNODES --depth=4 || true'
"""


@pytest.mark.parametrize("export", ["", "export "])
def test_a_variable_set_without_export_is_empty_in_srun_bash_c(slurm, tmp_path, cli, export):
    # the shape of a public multi-node attempt (karpathy/nanochat issue 114): srun bash -lc '... $NNODES ...'
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "scripts" / "base_train.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--nnodes')\np.add_argument('--depth')\n"
        "print('nnodes argument:', repr(p.parse_args().nnodes))\n"
    )
    script = tmp_path / "ne.sh"
    script.write_text(NOT_EXPORTED.format(export=export, checkout=checkout, python=sys.executable))
    proc = cli("preflight", "check", str(script), "--select", "SB032", "--format", "json", cwd=tmp_path)
    findings = [f["message"] for c in json.loads(proc.stdout)["checks"] for f in c["findings"]]
    job = sbatch(str(script), cwd=tmp_path)
    wait_final(job)
    out = (tmp_path / f"ne_{job}.out").read_text()
    if export:
        assert "nodes=[2]" in out and "nnodes argument: '2'" in out, out
        assert findings == []
    else:
        # what SLURM really ran: the new shell saw no NNODES
        assert "nodes=[]" in out and "nnodes argument: ''" in out, out
        (msg,) = findings
        assert msg.startswith("line 5: `bash -c '...'` runs a new shell, where NNODES is empty"), msg
        assert "(line 3) but does not export it: `--nnodes=$NNODES` becomes `--nnodes=`" in msg, msg


EXPORT_NONE = """#!/bin/bash
#SBATCH --output=en_%j.out
#SBATCH --export={export}
echo "base dir=[$NANOCHAT_BASE_DIR]"
"""


@pytest.mark.parametrize("export", ["NONE", "NANOCHAT_BASE_DIR"])
def test_export_none_keeps_the_submitting_shells_variables_from_the_job(slurm, tmp_path, cli, export):
    script = tmp_path / "en.sh"
    script.write_text(EXPORT_NONE.format(export=export))
    env = {**slurm_env(), "NANOCHAT_BASE_DIR": str(tmp_path / "scratch")}
    proc = cli("preflight", "check", str(script), "--select", "ENV005", "--format", "json", cwd=tmp_path, env=env)
    findings = [f["message"] for c in json.loads(proc.stdout)["checks"] for f in c["findings"]]
    job = sbatch(str(script), cwd=tmp_path, env=env)
    wait_final(job)
    out = (tmp_path / f"en_{job}.out").read_text()
    if export == "NONE":
        assert "base dir=[]" in out, out  # what SLURM really hands the job
        (msg,) = findings
        assert msg.startswith(f"--export=NONE (line 3): the job does not get NANOCHAT_BASE_DIR={tmp_path}/scratch"), msg
        assert msg.endswith("it uses ~/.cache/nanochat as its base dir"), msg
    else:
        assert f"base dir=[{tmp_path}/scratch]" in out, out
        assert findings == []
