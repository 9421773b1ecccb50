"""Good/bad cases for the environment checks (ENV001-ENV005)."""

from preflight.testing import Scenario, bad, good

SCRIPT = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -euo pipefail\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=$WANDB_RUN\n"
)


@bad("wandb-disabled")
def _():  # no --run at all: the trainer's default is dummy
    return Scenario(script=SCRIPT.replace(" --run=$WANDB_RUN", ""), env={"HOME": "{tmp}/home"})


@bad("wandb-disabled")
def _():
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home", "WANDB_RUN": "dummy"})


@good("wandb-disabled")
def _():
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home", "WANDB_RUN": "d20", "WANDB_MODE": "offline"})


@bad("wandb-no-credentials")
def _():
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home", "WANDB_RUN": "d20-speedrun"})


@bad("wandb-no-credentials")
def _():  # --run=$WANDB_RUN with WANDB_RUN set nowhere: an empty run name, which is not dummy
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home"})


@bad("wandb-no-credentials")
def _():  # a fork's own entry point that takes nanochat's --run (it was read as "wandb off")
    return Scenario(
        script="#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.pre1900_sft -- --run=sft-v5\n",
        env={"HOME": "{tmp}/home"},
    )


@good("wandb-no-credentials")
def _():
    return Scenario(
        script="#!/bin/bash\nexport WANDB_MODE=offline\n" + SCRIPT.split("\n", 1)[1],
        env={"HOME": "{tmp}/home", "WANDB_RUN": "d20-speedrun"},
    )


# a fork's base_train takes its run name's default from the environment (no --run flag in the script)
ENV_RUN_FORK = {
    "nc/scripts/base_train.py": 'import os\nrun = os.getenv("WANDB_RUN", "dummy")\ndepth = 20\n'
    "exec(open(os.path.join('nanochat', 'configurator.py')).read())\n",
    "nc/nanochat/configurator.py": "",
}
ENV_RUN_SCRIPT = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ncd {tmp}/nc\nexport WANDB_RUN=b200-run\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
)


@bad("wandb-no-credentials")
def _():
    return Scenario(script=ENV_RUN_SCRIPT, env={"HOME": "{tmp}/home"}, files=ENV_RUN_FORK)


@good("wandb-no-credentials")
def _():  # the upstream default (run = "dummy"): the variable reaches no wandb
    files = {
        **ENV_RUN_FORK,
        "nc/scripts/base_train.py": ENV_RUN_FORK["nc/scripts/base_train.py"].replace(
            'os.getenv("WANDB_RUN", "dummy")', '"dummy"'
        ),
    }
    return Scenario(script=ENV_RUN_SCRIPT, env={"HOME": "{tmp}/home"}, files=files)


@bad("base-dir-in-home")
def _():
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home"})


@bad("base-dir-in-home")
def _():
    return Scenario(
        script=SCRIPT.replace(
            "set -euo pipefail\n", 'set -euo pipefail\nexport NANOCHAT_BASE_DIR="$HOME/.cache/nanochat"\n'
        ),
        env={"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/scratch/nanochat"},
    )


@good("base-dir-in-home")
def _():
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/scratch/nanochat"})


@bad("omp-threads-unset")
def _():  # a plain python step: one thread per core
    return Scenario(
        script=SCRIPT.replace("torchrun", "python -m scripts.tok_train\ntorchrun"), env={"HOME": "{tmp}/home"}
    )


@good("omp-threads-unset")
def _():
    return Scenario(
        script=SCRIPT.replace("set -euo pipefail\n", "set -euo pipefail\nexport OMP_NUM_THREADS=1\n"),
        env={"HOME": "{tmp}/home"},
    )


@good("omp-threads-unset")
def _():  # every launch is torchrun, which sets it to 1 for its workers (a real fork's logs show its warning)
    return Scenario(script=SCRIPT, env={"HOME": "{tmp}/home"})


@good("wandb-disabled")
def _():  # the script refuses to run without a named wandb run: a run that trains always logs
    return Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
        'if [ -z "$WANDB_RUN" ] || [ "$WANDB_RUN" = "dummy" ]; then\n  echo "set WANDB_RUN"; exit 1\nfi\n'
        "export WANDB_MODE=offline\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=$WANDB_RUN\n",
        env={"HOME": "{tmp}/home"},
    )


# -- environment-not-passed
@bad("environment-not-passed")
def _():  # the base dir exported in the terminal never reaches a --export=NONE job
    return Scenario(
        script=SCRIPT.replace("set -euo", "#SBATCH --export=NONE\nset -euo"),
        env={"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/scratch", "WANDB_RUN": "d20"},
    )


@bad("environment-not-passed")
def _():  # from $SBATCH_EXPORT, a list without ALL: only the named one passes
    return Scenario(
        script=SCRIPT,
        env={"HOME": "{tmp}/home", "SBATCH_EXPORT": "NANOCHAT_BASE_DIR", "NANOCHAT_BASE_DIR": "/s", "WANDB_RUN": "d20"},
    )


@good("environment-not-passed")
def _():
    return Scenario(
        script=SCRIPT.replace("set -euo", "#SBATCH --export=NONE\nset -euo"),
        env={"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/scratch", "WANDB_RUN": "d20"},
        sbatch_args=["--export=ALL"],  # the command line wins over the #SBATCH line
    )
