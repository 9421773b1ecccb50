"""Good/bad cases for the filesystem checks (FS001-FS003)."""

from preflight.testing import Scenario, bad, good

SCRIPT = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
TINY = (
    "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\n"
    "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=2 --num_iterations=10\n"
)
ENV = {"HOME": "{tmp}/home"}


@bad("base-dir-not-writable")
def _():  # a file where the base dir should be
    return Scenario(script=SCRIPT, env=ENV, files={"base": "not a directory"}, config={"base-dir": "{tmp}/base"})


@bad("base-dir-not-writable")
def _():  # cannot be created under a file
    return Scenario(script=SCRIPT, env=ENV, files={"blocker": "x"}, config={"base-dir": "{tmp}/blocker/nanochat"})


@good("base-dir-not-writable")
def _():
    return Scenario(script=SCRIPT, env=ENV, config={"base-dir": "{tmp}/scratch/nanochat"})


@bad("disk-space-insufficient")
def _():  # d64: ~260B tokens, thousands of shards, far more than this disk
    return Scenario(script=SCRIPT.replace("--depth=20", "--depth=64"), env=ENV, config={"base-dir": "{tmp}/base"})


@good("disk-space-insufficient")
def _():
    return Scenario(script=TINY, env=ENV, config={"base-dir": "{tmp}/base"})


@bad("node-local-path")
def _():
    return Scenario(
        script=SCRIPT.replace("#SBATCH --gres", "#SBATCH --nodes=2\n#SBATCH --gres"),
        env=ENV,
        config={"base-dir": "/dev/shm/nanochat"},
    )


@good("node-local-path")
def _():
    return Scenario(
        script=SCRIPT.replace("#SBATCH --gres", "#SBATCH --nodes=2\n#SBATCH --gres"),
        env=ENV,
        config={"base-dir": "/shared/project/nanochat"},
    )
