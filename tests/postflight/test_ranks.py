"""postflight on distributed failures: the first failing rank and its node, the rest a cascade (LOG020).

crash_sigkill.out is the real log of a two-node run of scripts/speedrun_multinode.slurm on the local
SLURM (tests/slurm/test_multinode_slurm.py makes a new one), whose rank 1 worker on node2 was killed
with SIGKILL during base training. nccl_oom_cascade.out has the shape of public NCCL reports: one rank
out of memory, the others in the NCCL watchdog ten minutes later."""

from __future__ import annotations

from pathlib import Path

from preflight import ranks
from preflight.model import Status
from preflight.testing import Scenario, run_scenario

FIX = Path(__file__).parent / "fixtures" / "multinode"


def _analyze(name: str) -> ranks.RankReport:
    return ranks.analyze(enumerate((FIX / name).read_text().splitlines(), 1))


def test_sigkilled_rank_on_node2_is_the_cause_and_gloo_peer_loss_a_cascade():
    rep = _analyze("crash_sigkill.out")
    assert (rep.root.rank, rep.root.cascade, rep.root.source) == (1, False, "torchrun")
    assert [f.rank for f in rep.cascades] == [0]
    assert rep.first_node == "node2"  # srun saw node2's task end first
    msg = ranks.describe(rep, "base")
    assert msg.startswith(
        "rank 1 on node2 failed first in base (line 108): exit -9 (SIGKILL): killed from outside, "
        "most often by the out-of-memory killer; rank 0 then failed because of it"
    ), msg


def test_nccl_watchdog_timeouts_are_consequences_of_the_oom_on_one_rank():
    rep = _analyze("nccl_oom_cascade.out")
    assert rep.root.rank == 13 and rep.root.cause.startswith("torch.OutOfMemoryError: CUDA out of memory")
    assert sorted(f.rank for f in rep.cascades) == [0, 2, 9]
    msg = ranks.describe(rep, "base")
    assert msg.startswith("rank 13 on gpu-node-018 failed first in base (line 4): torch.OutOfMemoryError"), msg
    assert "ranks 0, 2, 9 then failed because of it" in msg


def test_a_single_process_crash_is_not_a_distributed_failure():
    rep = ranks.analyze(
        enumerate(["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: boom"], 1)
    )
    assert not rep.distributed() and rep.root is None


def test_torchrun_tee_prefixes_name_the_rank_too():
    # `torchrun --tee 3` prefixes each worker's lines with its role and local rank: [default1]:
    lines = [
        "[default0]:step 00010/00020 | loss: 6.1",
        "[default1]:Traceback (most recent call last):",
        '[default1]:  File "base_train.py", line 9, in <module>',
        "[default1]:torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "[default0]:Traceback (most recent call last):",
        "[default0]:torch.distributed.DistBackendError: NCCL communicator was aborted on rank 0.",
    ]
    rep = ranks.analyze(enumerate(lines, 1))
    assert rep.distributed() and (rep.root.rank, rep.root.line) == (1, 2)
    assert rep.root.cause.startswith("torch.OutOfMemoryError")
    assert [f.rank for f in rep.cascades] == [0]


def test_postflight_names_the_rank_and_node_and_the_fix_of_its_own_cause(tmp_path):
    for name, expected, cascades, fix in (
        ("crash_sigkill.out", "rank 1 on node2 failed first in base", [0], "SIGKILL: usually memory"),
        # the fix of that rank's own error (it was the SIGKILL text for every cause)
        (
            "nccl_oom_cascade.out",
            "rank 13 on gpu-node-018 failed first",
            [0, 2, 9],
            "out of memory on that rank: lower",
        ),
    ):
        log = tmp_path / name
        log.write_text((FIX / name).read_text())
        result = run_scenario(
            Scenario(env={"HOME": "{tmp}/home"}, stage="post", logs=[name]), tmp_path, select=["LOG020"]
        )
        (check,) = result.checks
        assert check.status is Status.FAIL, check.reason
        (finding,) = check.findings
        assert expected in finding.message and finding.data["cascade_ranks"] == cascades, finding.message
        assert fix in finding.fix and finding.fix.endswith("the other ranks' errors need no fix of their own"), (
            finding.fix
        )


def test_a_failed_step_in_a_completed_job_names_its_nodes(tmp_path):
    from preflight.jobinfo import JobInfo

    steps = [
        {"JobID": "77.batch", "JobName": "batch", "State": "COMPLETED", "ExitCode": "0:0", "NodeList": "node1"},
        {"JobID": "77.0", "JobName": "torchrun", "State": "FAILED", "ExitCode": "1:0", "NodeList": "node[1-2]"},
    ]
    result = run_scenario(
        Scenario(env={}, stage="post", facts={"job": JobInfo(job_id="77", state="COMPLETED"), "job_steps": steps}),
        tmp_path,
        select=["JOB005"],
    )
    (finding,) = result.checks[0].findings
    assert finding.message == (
        "step 77.0 (torchrun) ended FAILED with exit 1:0 on node[1-2]; the job itself reports COMPLETED"
    )


def test_resume_plan_of_a_two_node_job_launches_across_nodes(tmp_path):
    from preflight.jobinfo import JobInfo

    log = tmp_path / "job.out"
    log.write_text((FIX / "crash_sigkill.out").read_text())
    job = JobInfo(job_id="6", state="FAILED", exit_code="1:0", raw={"NumNodes": "2"})
    ctx = Scenario(env={"HOME": "{tmp}/home"}, stage="post", logs=["job.out"], facts={"job": job}).context(tmp_path)
    plan = ctx.get("resume").to_json()
    base = next(c for c in plan["commands"] if "nanochat.base_train" in c)
    assert base.startswith(
        "srun --nodes=2 --ntasks-per-node=1 torchrun --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d"
    )
    assert "the job ran on 2 nodes" in plan["note"]
    assert not [f for f in plan["fixes"] if "another rank" in f]  # the cascade's "fix" is not a step of the plan


def test_the_peer_that_only_lost_its_partner_is_no_crash_and_no_phase_cause(tmp_path):
    """On the real two-node log, rank 0's gloo "Connection closed by peer" traceback is a consequence:
    phase-crashed does not report it and the phase table's cause (which wandb-dummy-run repeats) is
    rank 1's SIGKILL on node2."""
    name = "crash_sigkill.out"
    (tmp_path / name).write_text((FIX / name).read_text())
    result = run_scenario(
        Scenario(env={"HOME": "{tmp}/home"}, stage="post", logs=[name]),
        tmp_path,
        select=["LOG001", "LOG002", "LOG020"],
    )
    messages = [f.message for c in result.checks for f in c.findings]
    rank_failure = [f.message for c in result.checks if c.code == "LOG020" for f in c.findings]
    assert rank_failure and "rank 1 on node2 failed first in base" in rank_failure[0]
    others = [m for m in messages if m not in rank_failure]
    assert not [m for m in others if "Connection closed by peer" in m], others
    dummy = [f.message for c in result.checks if c.code == "LOG001" for f in c.findings]
    assert any("the real cause: rank 1 on node2 failed first in base" in m for m in dummy), dummy
