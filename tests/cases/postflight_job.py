"""Good/bad cases for the JOB checks. The scheduler's answer is a fact override (no SLURM here);
logs and checkpoints are real files."""

from __future__ import annotations

from preflight.jobinfo import JobInfo
from preflight.testing import Scenario, bad, good
from tests import factories as F


def _job(state, code="0:0", **kw):
    return JobInfo(job_id="4242", state=state, exit_code=code, **kw)


def _scenario(job, phases=("base", "mid", "sft"), log=None):
    def setup(root):
        F.write_run(root / "base", phases=phases)
        F.write_log(root / "run.out", log or F.run_log(phases=phases))

    return Scenario(stage="post", base_dir="base", setup=setup, logs=["run.out"], env={}, facts={"job": job})


@good("job-failed")
@good("job-silent-failure")
@good("job-timeout")
@good("job-oom")
def _completed_ok():
    return _scenario(_job("COMPLETED"))


@bad("job-failed")
def _failed_no_output_dir():
    return _scenario(_job("FAILED", "0:53", stdout="/nonexistent/logs/nanochat_4242.out"))


@bad("job-silent-failure")
def _completed_but_mid_crashed():
    log = F.run_log(phases=("base", "mid"), per_phase={"mid": {"crash": ("RuntimeError", "boom"), "crash_at": "setup"}})
    return _scenario(_job("COMPLETED"), phases=("base",), log=log)


@bad("job-timeout")
def _timeout():
    return _scenario(_job("TIMEOUT", "0:15", elapsed_s=43200))


@bad("job-oom")
def _oom():
    return _scenario(_job("OUT_OF_MEMORY", "0:125"))


@bad("job-failed")
def _failed_of_its_own_usr1():
    return _scenario(_job("FAILED", "0:10", reason="JobLaunchFailure"))


# sacct's steps of a two-node job (the shape `sacct -P -j ID` prints on the local two-node SLURM)
def _steps(state: str = "COMPLETED", code: str = "0:0"):
    return [
        {
            "JobID": "4242.batch",
            "JobName": "batch",
            "State": "COMPLETED",
            "ExitCode": "0:0",
            "NodeList": "node1",
            "NNodes": "1",
            "Elapsed": "00:03:10",
        },
        {
            "JobID": "4242.0",
            "JobName": "torchrun",
            "State": state,
            "ExitCode": code,
            "NodeList": "node[1-2]",
            "NNodes": "2",
            "Elapsed": "00:01:05",
        },
    ]


@bad("step-failed")
def _completed_job_with_a_failed_step():
    sc = _scenario(_job("COMPLETED"))
    sc.facts["job_steps"] = _steps("FAILED", "1:0")
    return sc


@good("step-failed")
def _every_step_completed():
    sc = _scenario(_job("COMPLETED"))
    sc.facts["job_steps"] = _steps()
    return sc
