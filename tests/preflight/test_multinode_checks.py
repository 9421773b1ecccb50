"""What a user reads about a multi-node job before submitting it: nodes-launch-mismatch (SB030),
rendezvous-unreachable (SB031), the plan for N nodes, and preflight run as the job's first step
(the allocation, not the directives, says how many nodes and GPUs there are). The template
scripts/speedrun_multinode.slurm passes all of them; the real two-node runs are in
tests/slurm/test_multinode_slurm.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from preflight.model import Status
from preflight.testing import Scenario, run_scenario

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "scripts" / "speedrun_multinode.slurm").read_text()
ENV = {"HOME": "{tmp}/home", "OMP_NUM_THREADS": "1"}
HEAD = "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gres=gpu:8\n#SBATCH --time=04:00:00\nset -euo pipefail\n"
RDZV = 'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
LAUNCH = (
    'srun torchrun --nnodes="$SLURM_NNODES" --nproc_per_node=8 --rdzv_backend=c10d '
    '--rdzv_endpoint="$HEAD_NODE:29500" --rdzv_id="$SLURM_JOB_ID" -m scripts.base_train -- --depth=20 --device_batch_size=16\n'
)
GOOD = HEAD + RDZV + LAUNCH


def _run(tmp_path, script: str, *codes: str, env: dict | None = None, sbatch_args=()):
    return run_scenario(
        Scenario(script=script, env=env or ENV, sbatch_args=list(sbatch_args)), tmp_path, select=list(codes)
    )


def _messages(tmp_path, script: str, code: str, **kw) -> list[str]:
    (check,) = _run(tmp_path, script, code, **kw).checks
    assert check.status is not Status.ERROR, check.reason
    return [f.message for f in check.findings]


def test_template_passes_the_launch_batch_and_gpu_checks(tmp_path):
    result = _run(tmp_path, TEMPLATE, "SB030", "SB031", "SB005", "SB016", "GPU001")
    assert {c.code: c.status for c in result.checks} == dict.fromkeys(
        ("SB030", "SB031", "SB005", "SB016", "GPU001"), Status.PASS
    )


def _plan(cli, tmp_path, script: str, env: dict | None = None) -> dict[str, str]:
    """The run plan rows `preflight check` prints (name -> text)."""
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    res = cli(
        "preflight",
        "check",
        str(path),
        "--select",
        "SB030,GPU001",
        "--base-dir",
        str(tmp_path / "base"),
        cwd=tmp_path,
        env=dict(env or {}, PREFLIGHT_NO_SLURM="1"),
    )
    rows: dict[str, str] = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition("  ")
        if key and value.strip() and not line.startswith(" "):
            rows.setdefault(key.strip(), value.strip())
    rows["_out"] = res.stdout
    return rows


def test_template_plan_counts_nodes_and_states_the_interconnect_assumption(cli, tmp_path):
    rows = _plan(cli, tmp_path, TEMPLATE)
    assert rows["GPUs"].startswith("2 nodes x 8 H100 = 16"), rows["_out"]
    assert rows["batch"].startswith("16 x 2048 x 16 GPUs"), rows["_out"]  # --device_batch_size=$((256 / WORLD))
    assert "90% scaling efficiency across 2 nodes (config internode-efficiency)" in rows["_out"]
    four = _plan(cli, tmp_path, TEMPLATE.replace("#SBATCH --nodes=2", "#SBATCH --nodes=4"))
    assert four["batch"].startswith("8 x 2048 x 32 GPUs"), four["_out"]
    assert "GPU001" not in four["_out"]  # the template divides the batch for any node count


@pytest.mark.parametrize(
    "script, expected",
    [
        (
            HEAD + "srun torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --device_batch_size=16\n",
            "torchrun --standalone under srun in a 2-node job: every node makes a world of its own",
        ),
        (
            GOOD.replace('--nnodes="$SLURM_NNODES"', "--nnodes=4"),
            "torchrun --nnodes=4 waits for 4 node(s), but the job has 2 (--nodes, script:2)",
        ),
        (
            GOOD.replace("srun torchrun", "srun --ntasks-per-node=8 torchrun"),
            "srun starts 8 tasks per node, each a torchrun with its own workers",
        ),
        (
            HEAD.replace("--ntasks-per-node=1", "--ntasks-per-node=8")
            + "srun python -m scripts.base_train -- --depth=20\n",
            "srun runs scripts.base_train as 16 plain tasks: nanochat reads RANK, LOCAL_RANK and WORLD_SIZE",
        ),
        (
            HEAD + "srun torchrun --nproc_per_node=8 --rdzv_endpoint=$(hostname):29500 -m scripts.base_train\n",
            "torchrun without --nnodes under srun in a 2-node job",
        ),
        (
            HEAD.replace("#SBATCH --nodes=2\n", "")
            + "torchrun --nnodes=2 --nproc_per_node=8 --rdzv_endpoint=$(hostname):29500 "
            "-m scripts.base_train\n",
            "torchrun --nnodes=2 waits for 2 node(s), but the job has 1",
        ),
    ],
)
def test_nodes_launch_mismatch(tmp_path, script, expected):
    msgs = _messages(tmp_path, script, "SB030")
    assert any(expected in m for m in msgs), msgs


@pytest.mark.parametrize(
    "script, expected, severity",
    [
        (
            HEAD + "export MASTER_ADDR=localhost\n" + LAUNCH.replace("$HEAD_NODE", "$MASTER_ADDR"),
            "the rendezvous endpoint $MASTER_ADDR:29500 is localhost on every node",
            "error",
        ),
        (HEAD + LAUNCH.replace("$HEAD_NODE", "127.0.0.1"), "is 127.0.0.1 on every node", "error"),
        (
            HEAD + LAUNCH.replace("$HEAD_NODE", "gpu-node-017"),
            "the rendezvous host gpu-node-017 is fixed in the script",
            "warning",
        ),
        (HEAD + RDZV + LAUNCH.replace(":29500", ":80"), "rendezvous port 80 is privileged", "error"),
        (
            HEAD + LAUNCH.replace(' --rdzv_backend=c10d --rdzv_endpoint="$HEAD_NODE:29500"', ""),
            "multi-node torchrun with no --rdzv_endpoint or --master_addr",
            "error",
        ),
    ],
)
def test_rendezvous_unreachable(tmp_path, script, expected, severity):
    (check,) = _run(tmp_path, script, "SB031").checks
    found = [(f.message, (f.severity or check.severity).value) for f in check.findings]
    assert any(expected in m and s == severity for m, s in found), found


def test_rendezvous_from_the_allocation_or_the_batch_shells_host_is_quiet(tmp_path):
    for host in ('$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)', "$(hostname)", "$SLURMD_NODENAME"):
        script = HEAD + f"MASTER={host}\n" + LAUNCH.replace("$HEAD_NODE", "$MASTER")
        assert _messages(tmp_path, script, "SB031") == [], host


def test_one_node_jobs_skip_the_rendezvous_check(tmp_path):
    (check,) = _run(
        tmp_path,
        "#!/bin/bash\n#SBATCH --gres=gpu:8\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n",
        "SB031",
    ).checks
    assert check.status is Status.SKIP and "no torchrun spans several nodes" in check.reason


def _in_job(script_name: str, nodes: str, gpus: str, node_id: str = "0") -> dict:
    return dict(
        ENV,
        SLURM_JOB_ID="77",
        SLURM_JOB_NAME=script_name,
        SLURM_JOB_NUM_NODES=nodes,
        SLURM_NNODES=nodes,
        SLURM_GPUS_ON_NODE=gpus,
        SLURM_TASKS_PER_NODE=f"1(x{nodes})",
        SLURM_NODEID=node_id,
        SLURM_JOB_PARTITION="two",
    )


def test_inside_its_own_job_the_allocation_overrides_the_directives(cli, tmp_path):
    # `sbatch --nodes=4 --gres=gpu:1 job.sbatch`: the directives say 2 x 8, the job has 4 x 1
    script = GOOD.replace("--nproc_per_node=8", '--nproc_per_node="$SLURM_GPUS_ON_NODE"')
    rows = _plan(cli, tmp_path, script, env=_in_job("job.sbatch", "4", "1"))
    assert rows["GPUs"].startswith("4 nodes x 1 H100 = 4"), rows["_out"]
    assert "SB030" not in rows["_out"]
    # another job's environment (an salloc shell checking some other script) changes nothing
    other = _plan(cli, tmp_path, script, env=_in_job("something-else", "4", "1"))
    assert other["GPUs"].startswith("2 nodes x 8 H100 = 16"), other["_out"]


def test_inside_the_job_a_busy_rendezvous_port_on_the_head_node(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        script = HEAD + RDZV + LAUNCH.replace(":29500", f":{port}")
        msgs = _messages(tmp_path, script, "SB031", env=_in_job("job.sbatch", "2", "8"))
        assert any(f"rendezvous port {port} is already in use on this node" in m for m in msgs), msgs
        # on another node of the job (or before submission) the port says nothing
        assert _messages(tmp_path, script, "SB031", env=_in_job("job.sbatch", "2", "8", node_id="1")) == []


def test_connections_of_an_earlier_job_in_time_wait_leave_the_port_usable(tmp_path):
    """An earlier job's rendezvous port with connections still in TIME_WAIT: torchrun (SO_REUSEADDR)
    listens there anyway, so SB031 says nothing (seen for real: two jobs with the same id modulo 1000)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the listening side closes first: its port is left in TIME_WAIT
        client.close()
    script = HEAD + RDZV + LAUNCH.replace(":29500", f":{port}")
    assert _messages(tmp_path, script, "SB031", env=_in_job("job.sbatch", "2", "8")) == []


def test_node_local_logs_of_a_multi_node_job(tmp_path):
    script = GOOD.replace("srun torchrun", "srun --output=/tmp/run_%N.out torchrun").replace(
        "#SBATCH --time", "#SBATCH --output=/dev/shm/%x_%j.out\n#SBATCH --time"
    )
    (check,) = run_scenario(
        Scenario(script=script, env=ENV, base_dir="base", files={"base/.keep": ""}), tmp_path, select=["FS003"]
    ).checks
    msgs = [(f.message, f.severity.value if f.severity else check.severity.value) for f in check.findings]
    assert (
        "2-node job writes its log --output=/dev/shm/%x_%j.out on node-local storage (/dev/shm): it stays on that "
        "node, where postflight on the login node cannot read it",
        "warning",
    ) in msgs, msgs
    assert any(m.startswith("2-node job writes its log srun --output=/tmp/run_%N.out") for m, _ in msgs), msgs
