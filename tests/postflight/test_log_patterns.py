"""The job's log found by the --output names SLURM uses (config ``log-patterns``), array tasks included:
%j is the task's own job id, %A the array's, %a the task's number."""

from __future__ import annotations

from preflight.jobinfo import JobInfo
from preflight.logset import _expand
from preflight.testing import Scenario


def test_patterns_fill_in_array_tasks_as_slurm_does():
    assert _expand("slurm-%A_%a.out", "6068", "arr", "6067_1") == "slurm-6067_1.out"
    assert _expand("logs/%x_%j.out", "6068", "arr", "6067_1") == "logs/arr_6068.out"
    assert _expand("slurm-%A_%a.out", "6070", "one", None) is None  # not an array task: no %a
    assert _expand("slurm-%A.out", "6070", None, None) == "slurm-6070.out"
    assert _expand("logs/%x_%j.out", "6070", None, None) is None  # the name is not known
    assert _expand("100%%-%j.out", "6070", None, None) == "100%-6070.out"


def test_an_array_tasks_default_log_is_found_once_the_scheduler_forgot_its_path(tmp_path):
    # accounting (sacct) knows the task but not its stdout path: the default name for arrays finds it
    job = JobInfo(job_id="6068", state="FAILED", exit_code="3:0", name="arr", source="sacct", array_id="6067_1")
    scenario = Scenario(
        stage="post",
        job_id="6067_1",
        env={"HOME": "{tmp}/home"},
        files={"slurm-6067_1.out": "task one\nTraceback (most recent call last):\nValueError: boom\n"},
        facts={"job": job},
    )
    logs = scenario.context(tmp_path).get("logs")
    assert [ix.path for ix in logs.logs] == [str(tmp_path / "slurm-6067_1.out")]
    assert logs.source == "log-patterns"
