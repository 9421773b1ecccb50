"""What sbatch and SLURM really do where the script-defect checks claim something (local cluster):

- an ``#SBATCH`` line is split by sbatch's own rules: several options per line, quotes kept as
  one word, ``|`` literal, and an unquoted ``#`` ends the line even inside a word
  (directive-comment-cut);
- a SIGTERM to the whole job (what SLURM sends at the time limit; here from ``scancel --full``)
  reaches a foreground trainer directly, and bash runs the batch shell's TERM trap only after the
  trainer has died of it (signal-not-delivered's TERM trap case); the trap's ``exit 0`` then
  makes the job COMPLETED.

- on a two-node allocation (the ``--two-nodes`` instance), what the batch shell starts runs on the
  first node only and ``srun`` reaches both (idle-nodes).

The jobs take seconds.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from slurm_helpers import sbatch, slurm_env, wait_final

pytestmark = [pytest.mark.slurm]


def _scontrol(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], env=slurm_env(), capture_output=True, text=True, timeout=30
    ).stdout


def test_sbatch_splits_directives_the_way_preflight_does(slurm, cli, tmp_path):
    script = tmp_path / "cut.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --job-name=run#2 --time=00:05:00\n"
        f'#SBATCH --output={tmp_path}/cut-%j.out --comment="a # b|c" --nice=7  # note\n'
        "#SBATCH --partition=debug\necho hi\n"
    )
    job = sbatch("--hold", str(script), cwd=tmp_path)
    try:
        shown = _scontrol(job)
    finally:
        subprocess.run(["scancel", job], env=slurm_env(), timeout=30)
    assert "JobName=run " in shown or "JobName=run\n" in shown, shown
    assert "TimeLimit=00:05:00" not in shown, shown  # cut off by the # in run#2
    assert "Comment=a # b|c" in shown and "Nice=7" in shown, shown

    res = cli("preflight", "check", "--select", "SB026", "--format", "json", str(script), cwd=tmp_path, env=slurm_env())
    (check,) = json.loads(res.stdout)["checks"]
    assert check["status"] == "fail" and check["findings"][0]["location"]["line"] == 2
    assert "--time=00:05:00" in check["findings"][0]["message"]
    from preflight.script import parse_script

    keys = {d.key: d.value for d in parse_script(script).directives}
    assert keys["job-name"] == "run" and keys["comment"] == "a # b|c" and keys["nice"] == "7" and "time" not in keys


TRAINER = "import time; print('trainer started', flush=True); time.sleep(120); print('trainer finished', flush=True)"


def test_term_trap_runs_only_after_the_foreground_trainer_died(slurm, cli, tmp_path):
    out = tmp_path / "trap.out"
    script = tmp_path / "trap.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --partition=debug\n#SBATCH --time=00:05:00\n"
        f"#SBATCH --output={out}\nset -e\n"
        'cleanup() { echo "trap ran"; exit 0; }\ntrap cleanup TERM\n'
        f'python3 -c "{TRAINER}"  # stands in for python -m scripts.base_train\n'
        "python -m scripts.base_train --depth=2 --save_every=100 || echo unreachable\n"
    )
    res = cli(
        "preflight",
        "check",
        "--select",
        "SB016",
        "--profile",
        "classic",
        "--format",
        "json",
        str(script),
        cwd=tmp_path,
        env=slurm_env(),
    )
    (check,) = json.loads(res.stdout)["checks"]
    assert check["status"] == "fail" and "TERM" in check["findings"][0]["message"]

    job = sbatch(str(script), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "trainer started" not in (out.read_text() if out.exists() else ""):
        time.sleep(0.25)
    subprocess.run(["scancel", "--signal=TERM", "--full", job], env=slurm_env(), check=True, timeout=30)
    info = wait_final(job, timeout=60)
    log = out.read_text()
    assert "trainer started" in log and "trainer finished" not in log, log  # it died of the TERM itself
    assert log.index("trainer started") < log.index("trap ran"), log  # the trap ran once it was gone
    assert info.state == "COMPLETED", (info, log)  # the trap's `exit 0`: nothing says it was killed


def _run_batch(tmp_path, name: str, body: str):
    """Submit ``#!/bin/bash`` + its output and time lines + ``body`` as tmp_path/NAME.sbatch; wait for it to end:
    (the script, SLURM's final view of the job, what it printed)."""
    out, script = tmp_path / f"{name}.out", tmp_path / f"{name}.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --output={out}\n#SBATCH --time=00:02:00\n{body}")
    info = wait_final(sbatch(str(script), cwd=tmp_path), timeout=60)
    return script, info, out.read_text()


def _selected(cli, script, code: str, cwd) -> dict:
    """`preflight check --select CODE` on the script: that check's result."""
    res = cli("preflight", "check", "--select", code, "--format", "json", str(script), cwd=cwd, env=slurm_env())
    (check,) = json.loads(res.stdout)["checks"]
    return check


def test_sbatch_runs_a_copy_so_the_scripts_own_directory_is_the_spool(slurm, cli, tmp_path):
    # script-dir-in-batch-job: `cd "$(dirname "$0")"` in a batch script moves the job to slurmd's spool directory
    (tmp_path / "scripts").mkdir()  # beside the file submitted, as in a checkout
    (tmp_path / "scripts" / "base_train.py").write_text("")
    script, _info, text = _run_batch(
        tmp_path, "where", 'cd "$(dirname "$0")"\necho "script=$0"\necho "cwd=$PWD"\nls scripts 2>&1 | head -1\n'
    )
    log = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert log["script"] != str(script) and log["script"].endswith("slurm_script"), log
    assert log["cwd"] != str(tmp_path), log  # the job is in the spool directory, not beside its files
    assert "No such file" in text, text
    check = _selected(cli, script, "SB036", tmp_path)
    assert check["status"] == "fail" and check["findings"][0]["location"]["line"] == 4, check


def test_a_prompt_in_a_batch_job_reads_end_of_input_and_set_e_stops_the_job(slurm, cli, tmp_path):
    # interactive-prompt: sbatch gives the job /dev/null for input
    script, info, log = _run_batch(
        tmp_path, "prompt", 'set -e\necho before\nread -p "Press Enter when your dataset is ready..."\necho after\n'
    )
    assert "before" in log and "after" not in log, log
    assert info.state == "FAILED", info
    finding = _selected(cli, script, "SB037", tmp_path)["findings"][0]
    assert finding["location"]["line"] == 6 and finding["severity"] == "error", finding


TWO_NODE_CONF = "/etc/slurm-2node/slurm.conf"  # scripts/local-slurm.sh start --two-nodes


def _two_node_env() -> dict[str, str] | None:
    import os

    from preflight.facts import FactUnavailable
    from preflight.slurm import probe

    env = {**os.environ, "SLURM_CONF": TWO_NODE_CONF}
    try:
        info = probe(env=env, timeout=10)
    except (FactUnavailable, OSError) as exc:
        return pytest.skip(f"no two-node instance ({exc}): scripts/local-slurm.sh start --two-nodes")
    if not any((p.total_nodes or 0) >= 2 for p in info.partitions):
        pytest.skip("the two-node instance has no partition with 2 nodes")
    return env


def test_two_node_job_without_srun_runs_on_one_node(cli, tmp_path):
    """idle-nodes: the batch shell and everything it starts run on the first node only; srun reaches both."""
    env = _two_node_env()
    head = "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --time=00:02:00\n"
    body = "python3 -m scripts.base_train --depth=2 2>/dev/null || true\n"  # stands in for the trainer (absent here)
    jobs = {}
    for name, launch in (
        ("idle", "bash -c 'echo ran-on $SLURMD_NODENAME'\n"),
        ("srun", "srun bash -c 'echo ran-on $SLURMD_NODENAME'\n"),
    ):
        script = tmp_path / f"{name}.sbatch"
        script.write_text(
            head + f"#SBATCH --output={tmp_path}/{name}.out\n" + launch + ("srun " if name == "srun" else "") + body
        )
        res = cli("preflight", "check", "--select", "SB023", "--format", "json", str(script), cwd=tmp_path, env=env)
        (check,) = json.loads(res.stdout)["checks"]
        jobs[name] = (check["status"], sbatch(str(script), cwd=tmp_path, env=env))
    for name, (status, job) in jobs.items():
        deadline = time.monotonic() + 120
        out = tmp_path / f"{name}.out"
        while time.monotonic() < deadline and not (_finished(job, env) and out.exists()):
            time.sleep(0.5)
        nodes = {line.split()[-1] for line in out.read_text().splitlines() if line.startswith("ran-on")}
        if name == "idle":
            assert len(nodes) == 1 and status == "warn", (nodes, status)  # one node idle, and preflight says so
        else:
            assert len(nodes) == 2 and status == "pass", (nodes, status)


def _finished(job: str, env: dict) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True, timeout=30).stdout
    return not out.strip()
