"""Good/bad cases for the filesystem checks (FS001-FS006)."""

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


TWO_NODES_IN = SCRIPT.replace("#SBATCH --gres", "#SBATCH --nodes=2\n#SBATCH --gres").replace(
    "set -e\n", 'set -e\nexport NANOCHAT_BASE_DIR="{base}"\n'
)


@good("node-local-path")
def _():  # $SCRATCH is set where the job runs: the path is not relative to where preflight runs (here under /tmp)
    return Scenario(script=TWO_NODES_IN.format(base="${SCRATCH}/run-3/nanochat"), env=ENV)


@bad("node-local-path")
def _():  # the node's own temporary directory, known only in the job
    return Scenario(script=TWO_NODES_IN.format(base="$TMPDIR/nanochat"), env=ENV)


PIPELINE = SCRIPT + "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train\n"
OLDER_D26 = {"base/base_checkpoints/d26/model_021400.pt": "x"}


@bad("model-tag-shadowed")
def _():  # a d26 of an earlier run in the base dir: mid (no tag) would continue it, not this d20 (nanochat#542)
    return Scenario(script=PIPELINE, env=ENV, files=OLDER_D26, config={"base-dir": "{tmp}/base"})


@good("model-tag-shadowed")
def _():  # the trained tag passed on
    script = PIPELINE.replace("scripts.mid_train", "scripts.mid_train -- --model_tag=d20")
    return Scenario(script=script, env=ENV, files=OLDER_D26, config={"base-dir": "{tmp}/base"})


@good("model-tag-shadowed")
def _():  # only smaller models there: the largest dN is this run's d20
    files = {"base/base_checkpoints/d12/model_000100.pt": "x"}
    return Scenario(script=PIPELINE, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


RESUME = SCRIPT.replace("--depth=20", "--depth=20 --num_iterations=3000 --resume_from_step=2000")


@bad("resume-checkpoint-missing")
def _():  # the run saved step 1000, not 2000
    files = {"base/base_checkpoints/d20/model_001000.pt": "x", "base/base_checkpoints/d20/meta_001000.json": "{}"}
    return Scenario(script=RESUME, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


@good("resume-checkpoint-missing")
def _():
    files = {"base/base_checkpoints/d20/model_002000.pt": "x", "base/base_checkpoints/d20/meta_002000.json": "{}"}
    return Scenario(script=RESUME, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


SFT_ON_BASE = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --source=base --model_tag=d20\n"
)


@bad("source-checkpoint-missing")
def _():  # SFT on a base model this base dir does not hold (another tag is there)
    files = {"base/base_checkpoints/d12/model_001000.pt": "x"}
    return Scenario(script=SFT_ON_BASE, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


@good("source-checkpoint-missing")
def _():
    files = {"base/base_checkpoints/d20/model_021400.pt": "x"}
    return Scenario(script=SFT_ON_BASE, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


# chat_cli talks to -i's model (SFT by default): a job whose SFT step is commented out still loads one
BASE_THEN_CHAT = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
    "# torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft\n"
    'python -m scripts.chat_cli -g d20 -p "Why is the sky blue?"\n'
)


@bad("source-checkpoint-missing")
def _():
    files = {"base/base_checkpoints/d20/model_021400.pt": "x"}
    return Scenario(script=BASE_THEN_CHAT, env=ENV, files=files, config={"base-dir": "{tmp}/base"})


@good("source-checkpoint-missing")
def _():  # an earlier job trained SFT under that tag
    files = {"base/chatsft_checkpoints/d20/model_000700.pt": "x"}
    return Scenario(script=BASE_THEN_CHAT, env=ENV, files=files, config={"base-dir": "{tmp}/base"})
