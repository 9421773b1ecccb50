"""Good/bad cases for the multi-node launch checks (SB030 nodes-launch-mismatch, SB031 rendezvous-unreachable)."""

from preflight.testing import Scenario, bad, good

ENV = {"HOME": "{tmp}/home", "OMP_NUM_THREADS": "1"}
HEAD = "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gres=gpu:8\n#SBATCH --time=04:00:00\nset -euo pipefail\n"
RDZV = 'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
GOOD = (
    HEAD + RDZV + 'srun torchrun --nnodes="$SLURM_NNODES" --nproc_per_node=8 --rdzv_backend=c10d '
    '--rdzv_endpoint="$HEAD_NODE:29500" --rdzv_id="$SLURM_JOB_ID" -m scripts.base_train -- --depth=20 --device_batch_size=16\n'
)


@bad("nodes-launch-mismatch")
def _():
    return Scenario(
        script=HEAD + "srun torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --device_batch_size=16\n",
        env=ENV,
    )


@bad("nodes-launch-mismatch")
def _():
    return Scenario(script=GOOD.replace('--nnodes="$SLURM_NNODES"', "--nnodes=4"), env=ENV)


@good("nodes-launch-mismatch")
def _():
    return Scenario(script=GOOD, env=ENV)


# one controller per node runs a followed script; the one-time setup is fenced to node 0 (a public fork's shape)
PER_NODE = (
    "NODE_RANK=${SLURM_NODEID:-0}\n"
    'if [ "$NODE_RANK" = "0" ]; then\n'
    "    python -m nanochat.dataset -n 8\n"
    "    python -m scripts.tok_train\n"
    "fi\n"
    'torchrun --nnodes="$SLURM_NNODES" --node_rank="$NODE_RANK" --nproc_per_node=8 --rdzv_backend=c10d '
    '--rdzv_endpoint="$MASTER_ADDR:29500" -m scripts.base_train -- --depth=20\n'
)


@good("nodes-launch-mismatch")
def _():  # the setup on node 0 only is no trainer "run as 2 plain tasks"
    return Scenario(
        script=HEAD + "srun --ntasks-per-node=1 bash per_node.sh\n", env=ENV, files={"per_node.sh": PER_NODE}
    )


@bad("nodes-launch-mismatch")
def _():  # a trainer the followed script runs plainly on every node is one
    return Scenario(
        script=HEAD + "srun --ntasks-per-node=1 bash per_node.sh\n",
        env=ENV,
        files={
            "per_node.sh": PER_NODE.replace("python -m scripts.tok_train\nfi\n", "fi\npython -m scripts.base_loss\n")
        },
    )


@bad("rendezvous-unreachable")
def _():
    return Scenario(
        script=HEAD + "export MASTER_ADDR=localhost\n" + GOOD[len(HEAD) :].replace("$HEAD_NODE", "$MASTER_ADDR"),
        env=ENV,
    )


@good("rendezvous-unreachable")
def _():
    return Scenario(script=GOOD, env=ENV)


_FIX = __import__("pathlib").Path(__file__).resolve().parents[1] / "postflight" / "fixtures" / "multinode"


@bad("rank-failure")
def _():
    return Scenario(
        env=ENV, stage="post", files={"job.out": (_FIX / "crash_sigkill.out").read_text()}, logs=["job.out"]
    )


@good("rank-failure")
def _():
    # a real two-node run: torchrun's rendezvous noise at shutdown is no failure
    return Scenario(env=ENV, stage="post", files={"job.out": (_FIX / "ok_two_nodes.out").read_text()}, logs=["job.out"])
