"""Hostile input, round two: nothing runs that the user did not ask for, nonsense is not a pass (issue 14).

- ``plugins:`` of a config found in the checked tree (or an ancestor) is not imported unless trusted
  (``--trust-config``, ``PREFLIGHT_TRUST_CONFIG=1``) or named with ``--plugins DIR``; config discovery
  stops at shared parents such as a world-writable /tmp.
- The resume plan never prints a log value as shell: ``Overriding: run = d20$(touch x)`` is reported.
- An unknown, Unicode-digit or 5000-digit job id, a ledger that is a link to /etc/shadow, and a verify
  where every check skipped are exit 2, not a PASS.
- ``preflight sbatch --export=...,WANDB_API_KEY=...`` does not store the key in the ledger.
- Whatever a check prints goes to stderr: --format json stays valid.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import factories
import pytest
from rel_helpers import check_survived, run_bounded
from test_sbatch_hostile import _fake_slurm

PLUGIN = """
from pathlib import Path
Path({marker!r}).write_text("imported")
from preflight.registry import check
from preflight.model import Finding

DOC = '''
What it checks: x.
Why it matters: y.
Example:
    z
How to fix: w.
'''

@check("ZQ901", "planted-check", requires=())
def planted():
    {doc}
    print("Padding vocab_size from 265 to 320 to be divisible by 64")
    import subprocess, sys
    subprocess.run([sys.executable, "-c", "print('a child writes to fd 1')"])
    return [Finding("planted check ran", fix="none")]
"""


def _plant(tree: Path, marker: Path, how: str) -> None:
    site = tree / "site_checks"
    site.mkdir(parents=True)
    (site / "planted.py").write_text(PLUGIN.format(marker=str(marker), doc="__doc__ = DOC"))
    if how == "yaml":
        (tree / "preflight.yaml").write_text("plugins: [./site_checks]\n")
    else:
        (tree / "pyproject.toml").write_text('[tool.preflight]\nplugins = ["./site_checks"]\n')


@pytest.mark.parametrize("how", ["yaml", "pyproject"])
@pytest.mark.parametrize("command", [["check"], ["list"], ["explain", "SB003"], ["verify"]])
def test_config_plugins_of_the_checked_tree_do_not_run(command, how, tmp_path, cli, tally):
    tree, marker = tmp_path / "pr-checkout", tmp_path / "PWNED"
    _plant(tree, marker, how)
    (tree / "sub").mkdir()
    tool = "postflight" if command == ["verify"] else "preflight"
    args = [*command, "--base-dir", str(tree)] if command == ["verify"] else command
    proc = run_bounded(cli, tally, "config plugins", tool, *args, cwd=tree / "sub", timeout=60)
    check_survived(tally, "config plugins", proc, allowed=(0, 1, 2), marker=marker)
    assert "not loading plugins" in proc.stderr and "--trust-config" in proc.stderr


@pytest.mark.parametrize("how", ["flag", "env", "plugins-dir"])
def test_trusted_plugins_still_load_and_their_prints_go_to_stderr(how, tmp_path, cli, tally):
    tree, marker = tmp_path / "mine", tmp_path / "IMPORTED"
    _plant(tree, marker, "yaml")
    extra, env = {
        "flag": (["--trust-config"], {}),
        "env": ([], {"PREFLIGHT_TRUST_CONFIG": "1"}),
        "plugins-dir": (["--plugins", str(tree / "site_checks")], {}),
    }[how]
    if how == "plugins-dir":
        (tree / "preflight.yaml").unlink()
    proc = run_bounded(
        cli,
        tally,
        "config plugins",
        "preflight",
        "check",
        "--select",
        "ZQ",
        "--format",
        "json",
        *extra,
        cwd=tree,
        env=env,
        timeout=60,
    )
    assert marker.exists(), proc.stderr
    doc = json.loads(proc.stdout)  # the check's print and its child's output did not land in the report
    assert doc["checks"][0]["findings"][0]["message"] == "planted check ran"
    assert "Padding vocab_size" in proc.stderr and "a child writes to fd 1" in proc.stderr


def test_config_discovery_does_not_climb_into_a_shared_parent(tmp_path, cli, tally):
    """A preflight.yaml planted in a world-writable sticky parent (/tmp, /scratch) is not this project's."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "preflight.yaml").write_text("select: [NO-SUCH-CHECK]\n")
    project = shared / "me" / "proj"
    project.mkdir(parents=True)
    proc = run_bounded(cli, tally, "config", "preflight", "check", "--select", "SB", cwd=project, timeout=60)
    check_survived(tally, "config", proc, allowed=(0, 1))
    assert "NO-SUCH-CHECK" not in proc.stderr


def _resume_case(tmp_path: Path, run_value: str) -> tuple[Path, Path]:
    base = tmp_path / "base"
    factories.write_run(base, world_size=2, phases=("base",))
    log = factories.write_log(
        tmp_path / "logs" / "run.out",
        factories.run_log(
            base=str(base),
            phases=("base", "mid"),
            per_phase={"mid": {"run": run_value, "crash": ("RuntimeError", "x")}},
        ),
    )
    return base, log


def test_resume_plan_never_prints_a_log_value_as_shell(tmp_path, cli, tally):
    marker = tmp_path / "x"
    base, log = _resume_case(tmp_path, f"d20$(touch {marker})")
    proc = run_bounded(
        cli,
        tally,
        "resume plan",
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
        timeout=60,
    )
    check_survived(tally, "resume plan", proc, allowed=(1,), marker=marker)
    resume = json.loads(proc.stdout)["resume"]
    assert resume["commands"], resume
    for command in resume["commands"]:
        assert "$(" not in command and "touch" not in command, f"a log value became shell: {command}"
        shlex.split(command)  # every command is well-formed shell
    assert any("d20$(touch" in item for item in resume["refused"]), resume


def test_resume_plan_keeps_plain_values(tmp_path, cli, tally):
    base, log = _resume_case(tmp_path, "d20-speedrun")
    proc = run_bounded(
        cli,
        tally,
        "resume plan",
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
        timeout=60,
    )
    resume = json.loads(proc.stdout)["resume"]
    assert any("--run=d20-speedrun" in c for c in resume["commands"]), resume
    assert not resume.get("refused")


@pytest.mark.parametrize(
    "job_id",
    ["999999", "\u0661\u0662\u0663", "9" * 5000, "12;rm"],
    ids=["unknown", "arabic-indic-digits", "5000-digits", "shell"],
)
def test_unknown_or_malformed_job_id_is_no_such_job(job_id, tmp_path, cli, tally):
    proc = run_bounded(
        cli,
        tally,
        "job id",
        "postflight",
        "verify",
        job_id,
        "--no-smoke",
        cwd=tmp_path,
        env={"SLURM_CONF": "/nonexistent"},
        timeout=60,
    )
    check_survived(tally, "job id", proc, allowed=(2,))
    assert "no such job" in proc.stderr and len(proc.stderr) < 600


def test_ledger_that_is_a_link_is_refused(tmp_path, cli, tally):
    jobs = tmp_path / ".preflight" / "jobs"
    jobs.mkdir(parents=True)
    target = tmp_path / "shadow"
    target.write_text(json.dumps({"schema_version": 1, "job_id": "4242", "logs": {}}))
    (jobs / "4242.json").symlink_to(target)
    proc = run_bounded(
        cli,
        tally,
        "ledger",
        "postflight",
        "verify",
        "4242",
        "--no-smoke",
        cwd=tmp_path,
        env={"SLURM_CONF": "/nonexistent"},
        timeout=60,
    )
    check_survived(tally, "ledger", proc, allowed=(2,))
    assert "no such job" in proc.stderr


def test_verify_where_every_check_skipped_is_not_a_pass(tmp_path, cli, tally):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_bounded(
        cli,
        tally,
        "verify",
        "postflight",
        "verify",
        "--base-dir",
        str(empty),
        "--select",
        "CHAT",
        "--no-smoke",
        cwd=tmp_path,
        timeout=60,
    )
    check_survived(tally, "verify", proc, allowed=(2,))
    assert "nothing was verified" in proc.stderr


def test_sbatch_export_secret_is_not_stored_in_the_ledger(tmp_path, cli, tally):
    calls = tmp_path / "sbatch-calls.txt"
    _fake_slurm(tmp_path / "bin", calls)
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH --time=00:05:00\nset -euo pipefail\necho hi\n")
    secret = "Zq8Zq8Zq8Zq8Zq8Zq8Zq8"
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "SLURM_CONF": "/nonexistent"}
    proc = run_bounded(
        cli,
        tally,
        "ledger",
        "preflight",
        "sbatch",
        "--force",
        "job.sh",
        f"--export=ALL,WANDB_API_KEY={secret}",
        cwd=tmp_path,
        env=env,
        timeout=90,
    )
    check_survived(tally, "ledger", proc, allowed=(0,))
    ledger = (tmp_path / ".preflight" / "jobs" / "4242.json").read_text()
    assert secret not in ledger and "WANDB_API_KEY=Zq8Z****" in ledger
    assert secret not in proc.stdout + proc.stderr
    assert secret in calls.read_text(), "sbatch itself still gets the real value"
