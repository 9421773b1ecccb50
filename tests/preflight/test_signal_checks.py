"""What the user reads about --signal: signal-not-delivered (SB016) for each way the signal misses the
trainer, missing-timeout-signal (SB007) when the plan fits the limit with room, background-without-wait
(SB008) with a waiting shell function, and job-failed's reading of FAILED 0:10. The real SLURM behind
these messages: tests/slurm/test_signal_delivery.py."""

from __future__ import annotations

from preflight.jobinfo import JobInfo
from preflight.model import Status
from preflight.testing import Scenario, run_scenario
from tests.cases.postflight_job import _scenario
from tests.cases.preflight_script import BASE, BG_BASE, ENV, FORWARD, HEAD, SIGNAL_B


def _check(tmp_path, script: str, code: str):
    result = run_scenario(Scenario(script=script, env=ENV), tmp_path, select=[code])
    (check,) = result.checks
    return check


def _message(tmp_path, script: str, code: str = "SB016") -> str:
    check = _check(tmp_path, script, code)
    assert check.status is not Status.ERROR, check.reason
    assert len(check.findings) == 1, [f.message for f in check.findings]
    return check.findings[0].message + " | fix: " + check.findings[0].fix


def test_untrapped_batch_signal_kills_the_shell(tmp_path):
    msg = _message(tmp_path, SIGNAL_B + BASE)
    assert "no `trap ... USR1`" in msg and "FAILED, exit 0:10" in msg and "scripts/speedrun.slurm" in msg


def test_trap_with_foreground_trainer_never_fires_in_time(tmp_path):
    msg = _message(tmp_path, SIGNAL_B + FORWARD + BASE)
    assert "scripts.base_train (line 7) runs in the foreground" in msg and "wait $PID || wait $PID" in msg


def test_signal_without_b_misses_a_trainer_not_started_by_srun(tmp_path):
    script = HEAD.replace("set -euo", "#SBATCH --signal=USR1@600\nset -euo") + BASE
    msg = _message(tmp_path, script)
    assert "has no B:" in msg and "never receives it" in msg and "or start the trainer with srun" in msg
    assert _check(tmp_path, script.replace("torchrun", "srun torchrun"), "SB016").status is Status.PASS


def test_trap_set_after_a_long_foreground_step(tmp_path):
    script = SIGNAL_B + "python -m scripts.tok_train --max_chars=2000000000\n" + FORWARD + BG_BASE
    msg = _message(tmp_path, script)
    assert "the USR1 trap (line 7) is set after scripts.tok_train (line 6)" in msg
    # a quick step before the trap (report reset) is no finding; nor is the trap above everything
    quick = SIGNAL_B + "python -m nanochat.report reset\n" + FORWARD + BG_BASE
    assert _check(tmp_path, quick, "SB016").status is Status.PASS


def test_signal_spelled_as_number_or_with_sig_prefix(tmp_path):
    for spec, trap_as in (("B:10@600", "USR1"), ("B:SIGUSR1@600", "10"), ("B:usr1@600", "SIGUSR1")):
        script = SIGNAL_B.replace("B:USR1@600", spec) + FORWARD.replace("USR1\n", trap_as + "\n") + BG_BASE
        assert _check(tmp_path, script, "SB016").status is Status.PASS, spec


def test_only_the_batch_shells_own_traps_count(tmp_path):
    # a trap in a sourced file is the batch shell's; one in a `bash child.sh` belongs to another process
    def setup(root):
        (root / "traps.sh").write_text(FORWARD)
        (root / "child.sh").write_text("#!/bin/bash\n" + FORWARD + BG_BASE)

    def run(script):
        result = run_scenario(Scenario(script=script, env=ENV, setup=setup), tmp_path, select=["SB016"])
        return result.checks[0]

    assert run(SIGNAL_B + "source traps.sh\n" + BG_BASE).status is Status.PASS
    child = run(SIGNAL_B + "bash child.sh\n")
    assert child.findings and "no `trap ... USR1`" in child.findings[0].message


def test_unknown_signal_is_named(tmp_path):
    msg = _message(tmp_path, SIGNAL_B.replace("B:USR1@600", "B:USR9@600") + BASE)
    assert "--signal=B:USR9@600 is not a signal" in msg


def test_ignoring_or_resetting_the_signal_is_no_trap(tmp_path):
    for trap in ("trap '' USR1\n", "trap - USR1\n"):
        msg = _message(tmp_path, SIGNAL_B + trap + BG_BASE)
        assert "no `trap ... USR1`" in msg, trap


def test_speedrun_slurm_and_the_demo_script_deliver_their_signal(tmp_path):
    import sys

    from preflight.demo import SCRIPT
    from tests.conftest import ROOT as REPO

    speedrun = (REPO / "scripts" / "speedrun.slurm").read_text()
    demo = SCRIPT.format(logs=tmp_path, base=tmp_path / "base", repo=REPO, python=sys.executable)
    for script in (speedrun, demo):
        for code in ("SB016", "SB008", "SB007"):
            check = _check(tmp_path, script, code)
            assert check.status in (Status.PASS, Status.SKIP) and not check.findings, (
                code,
                check.reason,
                [f.message for f in check.findings],
            )


def test_timeout_signal_not_needed_when_the_plan_fits_with_room(tmp_path):
    # d20 on 8 GPUs, ~3.7 h: with 48 h the warning is skipped, with 6 h it stays
    roomy = _check(tmp_path, HEAD + BASE, "SB007")
    assert roomy.status is Status.SKIP and "under a third of --time (2880 min)" in roomy.reason
    tight = _check(tmp_path, HEAD.replace("48:00:00", "06:00:00") + BASE, "SB007")
    assert tight.status is Status.WARN and "--save_every=1000" in tight.findings[0].fix  # upstream: no handler


def test_a_signal_does_not_protect_an_upstream_trainer(tmp_path):
    script = HEAD.replace("48:00:00", "06:00:00").replace("set -euo", "#SBATCH --signal=B:USR1@600\nset -euo") + BASE
    check = _check(tmp_path, script, "SB007")
    assert check.status is Status.WARN
    msg = check.findings[0].message
    assert "--signal=B:USR1@600 does not help: the classic era's trainers do not save on a signal" in msg, msg
    bundled = _check(tmp_path, script.replace("scripts.base_train", "nanochat.base_train"), "SB007")
    assert bundled.status is Status.PASS, bundled.reason


def test_a_shell_function_that_waits_counts_as_wait(tmp_path):
    finish = 'finish() { wait "$!"; }\n'
    assert (
        _check(tmp_path, HEAD + finish + "python -m nanochat.dataset -n 240 &\nfinish\n" + BASE, "SB008").status
        is Status.PASS
    )
    other = "finish() { echo done; }\n"
    assert _check(tmp_path, HEAD + other + "python -m nanochat.dataset -n 240 &\nfinish\n" + BASE, "SB008").findings


def test_job_failed_of_its_own_usr1_says_why(tmp_path):
    job = JobInfo(job_id="4242", state="FAILED", exit_code="0:10", reason="JobLaunchFailure")
    result = run_scenario(_scenario(job), tmp_path, select=["job-failed"])
    (finding,) = result.checks[0].findings
    assert "exit code 0:10; the batch shell died of SIGUSR1" in finding.message
    assert "#SBATCH --signal=B:USR1@N" in finding.message and "signal-not-delivered" in finding.fix
    other = JobInfo(job_id="4242", state="FAILED", exit_code="0:9")
    (plain,) = run_scenario(_scenario(other), tmp_path, select=["job-failed"]).checks[0].findings
    assert "SIGUSR1" not in plain.message and "died of" not in plain.message


def test_term_trap_fix_spells_the_checkouts_flags_and_sees_the_save_it_has(tmp_path):
    from tests.cases.preflight_script import _DASH_CHECKOUT

    trainer = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20"
    for extra, says in (
        (" --save-every=400", "it already passes --save-every: rerun with --resume-from-step=STEP"),
        ("", "pass --save-every=N to scripts.base_train and resume with --resume-from-step=STEP"),
    ):
        script = HEAD + "cd {tmp}/nanochat\ntrap 'echo stopping' TERM\n" + trainer + extra + "\n"
        result = run_scenario(
            Scenario(script=script, env=ENV, files=_DASH_CHECKOUT), tmp_path / str(len(extra)), select=["SB016"]
        )
        (finding,) = result.checks[0].findings
        assert says in finding.fix, finding.fix  # was "pass --save_every=N", a flag this checkout does not have
        assert "--save_every" not in finding.message + finding.fix
