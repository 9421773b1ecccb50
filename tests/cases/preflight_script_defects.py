"""Good/bad cases for the script defects of real forks (SB017, SB018, SB020-SB028, SB032-SB035) and SB016's TERM trap."""

from preflight.testing import Scenario, bad, good

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\nset -euo pipefail\n"
BASE = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --save_every=1000"
ENV = {"HOME": "{tmp}/home", "OMP_NUM_THREADS": "1"}


# -- training-not-visible
@bad("training-not-visible")
def _():
    return Scenario(script=HEAD + 'TRAIN_CMD=$(cat "$HOME/train_cmd.txt")\neval "$TRAIN_CMD"\n', env=ENV)


@bad("training-not-visible")
def _():
    return Scenario(script=HEAD + "$LAUNCHER -m scripts.base_train --depth=20\n", env=ENV)


@bad("training-not-visible")
def _():  # the training is in a script inside a container, bound from a directory known only in the job
    return Scenario(
        script=HEAD
        + "apptainer run --nv --bind $VSC_SCRATCH/nanochat:/opt/nanochat img.sif bash /opt/nanochat/run.sh\n",
        env=ENV,
    )


@good("training-not-visible")
def _():
    return Scenario(script=HEAD + f'TRAIN_CMD="{BASE}"\neval "$TRAIN_CMD"\n', env=ENV)


@good("training-not-visible")
def _():
    return Scenario(script=HEAD + f"srun --ntasks-per-node=1 bash --noprofile --norc -lc '{BASE}'\n", env=ENV)


@bad("training-not-visible")
def _():  # python -c that reads base_train.py, edits its settings as text and exec()s it
    code = (
        "with open('/home/u/nanochat/scripts/base_train.py') as f:\n    src = f.read()\n"
        "exec(src.replace('device_batch_size = 32', 'device_batch_size = 8'))\n"
    )
    return Scenario(script=HEAD + f'python -c "\n{code}"\n', env=ENV)


# a cloud start command: one `bash -lc '...'` whose text is the program, not a script file to read (its whole text
# was reported as a file that does not exist, and as one preflight cannot read)
START_COMMAND = "bash -lc '\nset -e\ncd /workspace\ncd nanochat\nexec /start.sh\n'\n"


@good("training-not-visible")
def _():
    return Scenario(script=START_COMMAND, env=ENV)


@good("sourced-file-missing")
def _():
    return Scenario(script=START_COMMAND, env=ENV)


# -- xtrace-leaks-secret
@bad("xtrace-leaks-secret")
def _():
    return Scenario(script=HEAD + 'set -x\nexport WANDB_API_KEY="$(cat "$HOME/.wandb_key")"\n' + BASE + "\n", env=ENV)


@bad("xtrace-leaks-secret")
def _():
    return Scenario(
        script=HEAD.replace("#!/bin/bash", "#!/bin/bash -x")
        + 'huggingface-cli login --token "$HF_TOKEN"\n'
        + BASE
        + "\n",
        env=ENV,
    )


@good("xtrace-leaks-secret")
def _():
    return Scenario(script=HEAD + 'export WANDB_API_KEY="$(cat "$HOME/.wandb_key")"\nset -x\n' + BASE + "\n", env=ENV)


@good("xtrace-leaks-secret")
def _():
    return Scenario(
        script=HEAD + 'set -x\nset +x\nexport HF_TOKEN="$(cat "$HOME/.hf_token")"\nset -x\n' + BASE + "\n", env=ENV
    )


# -- sourced-file-missing
@bad("sourced-file-missing")
def _():
    return Scenario(
        script=HEAD + "source slurm/machine_config.sh\n" + BASE + "\n",
        env=ENV,
        files={"slurm/machine_config.sh.template": "export NANOCHAT_BASE_DIR=/tmp\n"},
    )


@good("sourced-file-missing")
def _():
    return Scenario(
        script=HEAD + "source slurm/machine_config.sh\n" + BASE + "\n",
        env=ENV,
        files={"slurm/machine_config.sh": "export NANOCHAT_BASE_DIR=/tmp\n"},
    )


@good("sourced-file-missing")
def _():
    return Scenario(
        script=HEAD + "uv venv .venv\nsource .venv/bin/activate\n"
        "[ -f slurm/site.sh ] && source slurm/site.sh\n" + BASE + "\n",
        env=ENV,
    )


@good("sourced-file-missing")
def _():  # the job's directory is not on this machine (entry-not-found says so): what it sources cannot be told
    return Scenario(script=HEAD + "cd /home/someone/nanochat\nsource .venv/bin/activate\n" + BASE + "\n", env=ENV)


@good("sourced-file-missing")
def _():  # the job's directory at the line is not on this machine; a later cd's (here) does not decide it
    return Scenario(
        script=HEAD + "cd /home/someone/nanochat\nsource .venv/bin/activate\ncd /tmp\n" + BASE + "\n", env=ENV
    )


@bad("sourced-file-missing")
def _():  # sourced before the cd to the directory that holds it: bash looks in the submit directory
    return Scenario(
        script=HEAD + "source env.sh\ncd sub\n" + BASE + "\n",
        env=ENV,
        files={"sub/env.sh": "export NANOCHAT_BASE_DIR=/tmp\n"},
    )


@good("sourced-file-missing")
def _():  # the same source after that cd
    return Scenario(
        script=HEAD + "cd sub\nsource env.sh\n" + BASE + "\n",
        env=ENV,
        files={"sub/env.sh": "export NANOCHAT_BASE_DIR=/tmp\n"},
    )


@good("sourced-file-missing")
def _():  # in a function, which runs after any of the script's cds
    return Scenario(
        script=HEAD + "setup() { source env.sh; }\ncd sub\nsetup\n" + BASE + "\n",
        env=ENV,
        files={"sub/env.sh": "export NANOCHAT_BASE_DIR=/tmp\n"},
    )


@good("sourced-file-missing")
def _():  # under a directory known only in the job (a real L40S script's secrets file), sourced before any cd
    return Scenario(
        script=HEAD + 'SCRATCH="${VSC_SCRATCH}/proj"\nsource "${SCRATCH}/secrets.sh"\n' + BASE + "\n", env=ENV
    )


@good("sourced-file-missing")
def _():  # a script inside a container, bound from a directory known only in the job
    return Scenario(
        script=HEAD + "apptainer exec --bind $VSC_SCRATCH/nanochat:/opt/nanochat img.sif bash /opt/nanochat/run.sh\n",
        env=ENV,
    )


# -- idle-nodes
@bad("idle-nodes")
def _():
    return Scenario(
        script=HEAD.replace("#SBATCH --gres", "#SBATCH --nodes=4\n#SBATCH --gres") + "bash speedrun.sh\n",
        files={"speedrun.sh": "#!/bin/bash\nset -e\n" + BASE + "\n"},
        env=ENV,
    )


@bad("idle-nodes")
def _():
    return Scenario(
        script=HEAD.replace("#SBATCH --gres", "#SBATCH --nodes=2\n#SBATCH --gres")
        + BASE.replace("--standalone", "--nnodes=2 --rdzv_backend=c10d --rdzv_endpoint=node1:29500")
        + "\n",
        env=ENV,
    )


@good("idle-nodes")
def _():
    return Scenario(
        script=HEAD.replace("#SBATCH --gres", "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gres")
        + "srun "
        + BASE.replace("--standalone", "--nnodes=2 --rdzv_backend=c10d --rdzv_endpoint=n1:29500")
        + "\n",
        env=ENV,
    )


# -- failure-swallowed
@bad("failure-swallowed")
def _():
    return Scenario(script=HEAD + BASE + " || true\n", env=ENV)


@bad("failure-swallowed")
def _():
    return Scenario(script=HEAD + "timeout 40h " + BASE + ' || {\n  echo "training exited with $?"\n}\n', env=ENV)


@bad("failure-swallowed")
def _():
    return Scenario(script=HEAD + "if " + BASE + "; then\n  echo done\nfi\n", env=ENV)


@good("failure-swallowed")
def _():
    return Scenario(script=HEAD + BASE + ' || { echo "failed: $?"; exit 1; }\n', env=ENV)


@good("failure-swallowed")
def _():
    return Scenario(script=HEAD + "if ! " + BASE + "; then\n  echo failed\n  exit 1\nfi\n", env=ENV)


SET_E = HEAD.replace("set -euo pipefail", "set -e")


@bad("failure-swallowed")
def _():  # set -e without pipefail: the pipeline's status is tee's, so errexit never sees the crash
    return Scenario(script=SET_E + BASE + " 2>&1 | tee base.log\necho next\n", env=ENV)


@bad("failure-swallowed")
def _():  # set -e without pipefail, the output parsed by a loop: the pipeline's status is the loop's
    loop = ' 2>&1 | while read line; do\n  [[ $line == step* ]] && echo "$line" >> steps.txt\ndone\necho next\n'
    return Scenario(script=SET_E + BASE + loop, env=ENV)


@good("failure-swallowed")
def _():  # the same loop with pipefail: set -e sees the trainer's crash
    loop = ' 2>&1 | while read line; do\n  [[ $line == step* ]] && echo "$line" >> steps.txt\ndone\necho next\n'
    return Scenario(script=HEAD + BASE + loop, env=ENV)


@bad("failure-swallowed")
def _():  # no set -e, the job's last command: the job's exit code is tee's
    return Scenario(script=HEAD.replace("set -euo pipefail\n", "") + BASE + " |& tee base.log\n", env=ENV)


@good("failure-swallowed")
def _():
    return Scenario(script=HEAD + BASE + " 2>&1 | tee base.log\necho next\n", env=ENV)


@bad("failure-swallowed")
def _():  # the pipe inside a function that each phase is run through
    return Scenario(
        script=SET_E + 'run() {\n  torchrun --standalone --nproc_per_node=8 -m "$1" -- --run=dummy 2>&1 | tee "$2"\n}\n'
        "run scripts.base_train base.log\nrun scripts.chat_sft sft.log\n",
        env=ENV,
    )


@good("failure-swallowed")
def _():  # the trainer's own status read from PIPESTATUS
    return Scenario(script=SET_E + BASE + " | tee base.log\nexit ${PIPESTATUS[0]}\n", env=ENV)


# -- timeout-not-before-limit
@bad("timeout-not-before-limit")
def _():
    return Scenario(script=HEAD + "timeout 172800s " + BASE + "\n", env=ENV)


@good("timeout-not-before-limit")
def _():
    return Scenario(script=HEAD + "timeout 47h " + BASE + "\n", env=ENV)


# -- directive-comment-cut
@bad("directive-comment-cut")
def _():
    return Scenario(
        script=HEAD.replace("#SBATCH --gres=gpu:8", "#SBATCH --gres=gpu:8\n#SBATCH --job-name=run#2 --qos=high")
        + BASE
        + "\n",
        env=ENV,
    )


@good("directive-comment-cut")
def _():
    return Scenario(
        script=HEAD.replace(
            "#SBATCH --gres=gpu:8", '#SBATCH --job-name="run#2" --qos=high  # two options, then a comment'
        )
        + BASE
        + "\n",
        env=ENV,
    )


# -- signal-not-delivered: a TERM trap with an upstream trainer in the foreground
@bad("signal-not-delivered")
def _():
    return Scenario(
        script=HEAD + 'cleanup() { echo "saving"; exit 0; }\ntrap cleanup TERM INT\n' + BASE + "\n", env=ENV
    )


@good("signal-not-delivered")
def _():
    return Scenario(
        script=HEAD
        + 'cleanup() { echo "stopped"; }\ntrap cleanup TERM\n'
        + BASE.replace("scripts.base_train", "nanochat.base_train")
        + "\n",
        env=ENV,
    )


# -- log-line-not-printed (upstream's runs/miniseries.sh of 2026-02-08 read a line base_train stopped printing)
_PARSE = (
    "cd {tmp}/nanochat\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --save-every=-1 2>&1 | tee train.log\n"
    "NUM_PARAMS=$(grep \"Number of parameters:\" train.log | tail -1 | grep -oP '[\\d,]+' | head -1)\n"
    "NUM_SCALING=$(grep \"Number of parameters:\" train.log | tail -1 | grep -oP 'scaling: [\\d,]+')\n"
)


def _no_mid_checkout(prints: str) -> dict:
    return {
        "nanochat/nanochat/report.py": "",
        "nanochat/scripts/chat_sft.py": "",
        "nanochat/scripts/base_train.py": _DASH_ARGPARSE + f"print0({prints!r})\n",
    }


_DASH_ARGPARSE = (
    "import argparse\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--depth", type=int, default=20)\n'
    'parser.add_argument("--save-every", type=int, default=-1)\n'
    "args = parser.parse_args()\n"
)


@bad("log-line-not-printed")
def _():  # the checkout's base_train prints the per-part table (2026-01-27 on), not "(scaling: N)"
    return Scenario(
        script=HEAD + _PARSE, env=ENV, files=_no_mid_checkout("Number of parameters: {n:,} (see the table above)")
    )


@good("log-line-not-printed")
def _():  # a checkout from 2026-01-07 .. 01-26 prints it
    return Scenario(
        script=HEAD + _PARSE,
        env=ENV,
        files=_no_mid_checkout("Number of parameters: {num_params:,} (scaling: {num_scaling_params:,})"),
    )


@bad("log-line-not-printed")
def _():  # no checkout, the era said: no-mid's base_train never printed it
    return Scenario(script=HEAD + _PARSE.replace("cd {tmp}/nanochat\n", ""), env=ENV, config={"profile": "no-mid"})


# -- output-discarded
@bad("output-discarded")
def _():  # the shape of a public H200 run script: both streams thrown away
    return Scenario(script=HEAD.replace("set -euo", "#SBATCH --output=/dev/null\nset -euo") + BASE + "\n", env=ENV)


@bad("output-discarded")
def _():
    return Scenario(
        script=HEAD.replace("set -euo", "#SBATCH --output=run_%j.out\n#SBATCH --error=/dev/null\nset -euo")
        + BASE
        + "\n",
        env=ENV,
    )


@good("output-discarded")
def _():
    return Scenario(script=HEAD.replace("set -euo", "#SBATCH --output=%x_%j.out\nset -euo") + BASE + "\n", env=ENV)


# -- exits-before-training
@bad("exits-before-training")
def _():  # the guard of a public SLURM fork's speedrun, with WANDB_RUN not set where sbatch runs
    return Scenario(
        script=HEAD
        + 'if [ -z "$WANDB_RUN" ]; then\n  echo "set WANDB_RUN"\n  exit 1\nfi\n'
        + BASE
        + " --run=$WANDB_RUN\n",
        env=ENV,
    )


@bad("exits-before-training")
def _():
    return Scenario(script=HEAD + ': "${DEPTH:?set DEPTH}"\n' + BASE + "\n", env=ENV)


@good("exits-before-training")
def _():  # set where sbatch runs: the guard passes
    return Scenario(
        script=HEAD
        + 'if [ -z "$WANDB_RUN" ]; then\n  echo "set WANDB_RUN"\n  exit 1\nfi\n'
        + BASE
        + " --run=$WANDB_RUN\n",
        env={**ENV, "WANDB_RUN": "d20", "WANDB_MODE": "offline"},
    )


@good("exits-before-training")
def _():  # a guard that cannot be decided before the job (a file on the node), and an exit after the last phase
    return Scenario(
        script=HEAD + 'if [ ! -d "$SLURM_TMPDIR" ]; then exit 1; fi\n' + BASE + "\nexit 0\n",
        env=ENV,
    )


# -- entry-not-found
@bad("entry-not-found")
def _():  # submitted from a directory that is not the checkout, and the script has no cd
    return Scenario(script=HEAD + BASE + "\n", env=ENV)


@good("entry-not-found")
def _():
    return Scenario(script=HEAD + BASE + "\n", env=ENV, files={"scripts/base_train.py": ""})


@good("entry-not-found")
def _():  # the script cds to the checkout first
    return Scenario(
        script=HEAD + "cd {tmp}/nanochat\n" + BASE + "\n", env=ENV, files={"nanochat/scripts/base_train.py": ""}
    )


@good("entry-not-found")
def _():  # the common cd to the submit directory, submitted from the checkout (it read "<cwd>/$PWD" before)
    return Scenario(
        script=HEAD + 'cd "${SLURM_SUBMIT_DIR:-$PWD}"\n' + BASE + "\n", env=ENV, files={"scripts/base_train.py": ""}
    )


@bad("entry-not-found")
def _():  # the same cd, submitted from elsewhere: the submit directory has no scripts/
    return Scenario(script=HEAD + 'cd "${SLURM_SUBMIT_DIR:-$PWD}"\n' + BASE + "\n", env=ENV)


@bad("entry-not-found")
def _():  # a cluster path that does not exist where preflight runs (CI, a laptop): a warning that says so
    return Scenario(script=HEAD + "cd /mnt/cluster-only/nanochat\n" + BASE + "\n", env=ENV)


@good("entry-not-found")
def _():  # the same, with --checkout: the copy of the checkout the job runs has the entry point
    return Scenario(
        script=HEAD + "cd /mnt/cluster-only/nanochat\n" + BASE + "\n",
        env=ENV,
        files={"co/scripts/base_train.py": "", "co/nanochat/__init__.py": ""},
        config={"checkout": "{tmp}/co"},
    )


# a public fork's shape: the whole pipeline as shell text in a container step, which cds to the checkout first
_IN_TEXT = 'PROJECT={tmp}/{dir}\nsrun --container-image=img.sqsh bash -c "\nset -e\ncd $PROJECT\n' + BASE + '\n"\n'


@good("entry-not-found")
def _():
    return Scenario(
        script=HEAD + _IN_TEXT.replace("{dir}", "nanochat"), env=ENV, files={"nanochat/scripts/base_train.py": ""}
    )


@bad("entry-not-found")
def _():  # the cd in the text goes somewhere without scripts/ (it was read as the submit directory)
    return Scenario(
        script=HEAD + _IN_TEXT.replace("{dir}", "elsewhere"),
        env=ENV,
        files={"elsewhere/README": "", "scripts/base_train.py": ""},
    )


@good("entry-not-found")
def _():  # a cd preflight cannot resolve before the job: no verdict
    return Scenario(script=HEAD + 'cd "$(dirname "$0")"\n' + BASE + "\n", env=ENV)


# -- variable-not-exported
MULTI = (
    "srun --ntasks-per-node=1 bash --noprofile --norc -lc "
    "'torchrun --nnodes=$NNODES --nproc_per_node=8 -m scripts.base_train -- --depth=20 --save_every=1000'\n"
)


@bad("variable-not-exported")
def _():  # the shape of a public multi-node attempt: set in the batch shell, read in a new one
    return Scenario(script=HEAD + "NNODES=1\n" + MULTI, env=ENV)


@good("variable-not-exported")
def _():
    return Scenario(script=HEAD + "export NNODES=1\n" + MULTI, env=ENV)


@good("variable-not-exported")
def _():  # double quotes: the batch shell expands it before srun runs the text
    return Scenario(script=HEAD + "NNODES=1\n" + MULTI.replace("'", '"'), env=ENV)


# -- comment-cuts-command
@bad("comment-cuts-command")
def _():
    cmd = BASE.replace(" -- --depth=20", " -- \\\n    --depth=20 \\\n    # --window-pattern=L \\\n    ")
    return Scenario(script=HEAD + cmd + ' \\\n    2>&1 | tee "$HOME/base.log"\n', env=ENV)


@good("comment-cuts-command")
def _():  # the flag commented out above the command; and a heredoc whose body has such lines is not a command
    cmd = BASE.replace(" -- --depth=20", " -- \\\n    --depth=20")
    note = 'cat > "$HOME/notes.txt" <<EOF\nrun \\\n# --window-pattern=L \\\n--depth=20\nEOF\n'
    return Scenario(script=HEAD + "# --window-pattern=L\n" + cmd + ' 2>&1 | tee "$HOME/base.log"\n' + note, env=ENV)


# -- write-dir-missing
@bad("write-dir-missing")
def _():  # tee into a directory no line creates: under pipefail the job ends at that line
    return Scenario(script=HEAD + BASE + ' 2>&1 | tee "$HOME/logs/base.log"\n', env=ENV)


@good("write-dir-missing")
def _():
    return Scenario(script=HEAD + 'mkdir -p "$HOME/logs"\n' + BASE + ' 2>&1 | tee "$HOME/logs/base.log"\n', env=ENV)


# -- unbound-variable
SCRATCH_BASE = 'export NANOCHAT_BASE_DIR="$SCRATCH_ROOT/nanochat"\n'


@bad("unbound-variable")
def _():  # set -u, and nothing sets SCRATCH_ROOT: bash stops at that line
    return Scenario(script=HEAD + SCRATCH_BASE + BASE + "\n", env=ENV)


@good("unbound-variable")
def _():  # exported before sbatch
    return Scenario(script=HEAD + SCRATCH_BASE + BASE + "\n", env={**ENV, "SCRATCH_ROOT": "{tmp}/scratch"})


# without set -u an unset variable is an empty word: a number flag's value "" stops argparse
LOSS_ARGPARSE = (
    "import argparse\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--num-models", type=int, default=1)\nargs = parser.parse_args()\n'
)
EMPTY_FLAG = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=01:00:00\ncd {tmp}/nc\nconda activate triod\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_loss -- --num-models=$num_models\n"
)


@bad("unbound-variable")
def _():  # nothing sets num_models (conda activate exports upper-case environment variables, not it)
    return Scenario(script=EMPTY_FLAG, files={"nc/scripts/base_loss.py": LOSS_ARGPARSE}, env=ENV)


@good("unbound-variable")
def _():
    return Scenario(
        script=EMPTY_FLAG.replace("conda activate triod\n", "num_models=3\n"),
        files={"nc/scripts/base_loss.py": LOSS_ARGPARSE},
        env=ENV,
    )


@good("unbound-variable")
def _():  # set -- with no words before `--` (it sets the positional arguments): no flag of set's own
    return Scenario(script=HEAD + "set -- python -m scripts.base_train\n" + BASE + "\n", env=ENV)


# -- conda-activate-without-hook
CONDA_JOB = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n{setup}conda activate nanochat\n" + BASE + "\n"


@bad("conda-activate-without-hook")
def _():  # a batch shell is not interactive: no conda function, `conda activate` stops with CondaError
    return Scenario(script=CONDA_JOB.format(setup=""), env=ENV)


@good("conda-activate-without-hook")
def _():
    return Scenario(script=CONDA_JOB.format(setup='source "$HOME/miniconda3/etc/profile.d/conda.sh"\n'), env=ENV)


@good("conda-activate-without-hook")
def _():
    return Scenario(script=CONDA_JOB.format(setup='eval "$(conda shell.bash hook)"\n'), env=ENV)


@good("conda-activate-without-hook")
def _():  # a login shell reads the start files `conda init` wrote to
    return Scenario(script=CONDA_JOB.replace("#!/bin/bash\n", "#!/bin/bash -l\n").format(setup=""), env=ENV)


@good("conda-activate-without-hook")
def _():  # conda.sh through a variable, guarded
    setup = 'CONDA_SH="${CONDA_ROOT:-$HOME/anaconda3}/etc/profile.d/conda.sh"\n[ -f "$CONDA_SH" ] || exit 1\nsource "$CONDA_SH"\n'
    return Scenario(script=CONDA_JOB.format(setup=setup), env=ENV)


@good("conda-activate-without-hook")
def _():  # conda.sh picked by a loop over candidate installs (a real SLURM job's form): known only in the job
    setup = (
        'for c in "$HOME/miniconda3/etc/profile.d/conda.sh" /opt/conda/etc/profile.d/conda.sh; do\n'
        '  [ -f "$c" ] && INIT="$c" && break\ndone\n. "$INIT"\n'
    )
    return Scenario(script=CONDA_JOB.format(setup=setup), env=ENV)


@good("conda-activate-without-hook")
def _():  # a sourced env file of the job's own sets conda up
    return Scenario(
        script=CONDA_JOB.format(setup="source ./env.sh\n"),
        files={"env.sh": 'source "$HOME/miniconda3/etc/profile.d/conda.sh"\nexport OMP_NUM_THREADS=1\n'},
        env=ENV,
    )


@bad("conda-activate-without-hook")
def _():  # a sourced env file of the job's own that does not set conda up
    return Scenario(
        script=CONDA_JOB.format(setup="source ./env.sh\n"), files={"env.sh": "export OMP_NUM_THREADS=1\n"}, env=ENV
    )


# -- job-rewrites-checkout: a `git clean` over the work tree that holds the base dir, a pull at the job's start
GIT_HEAD = HEAD + 'REPO="$SCRATCH/proj"\nexport NANOCHAT_BASE_DIR="$REPO/nanochat_cache"\ncd "$REPO"\n'


@bad("job-rewrites-checkout")
def _():
    return Scenario(script=GIT_HEAD + f"git reset --hard HEAD\ngit clean -fd\n{BASE}\n", env=ENV)


@bad("job-rewrites-checkout")
def _():  # -x deletes the ignored files too
    return Scenario(
        script=GIT_HEAD + f"git clean -fdx\n{BASE}\n",
        files={".gitignore": "nanochat_cache/\n"},
        config={"checkout": "{tmp}"},
        env=ENV,
    )


@good("job-rewrites-checkout")
def _():  # the base dir is ignored as a whole: -fd keeps it
    return Scenario(
        script=GIT_HEAD + f"git clean -fd\n{BASE}\n",
        files={".gitignore": "/nanochat_cache\n"},
        config={"checkout": "{tmp}"},
        env=ENV,
    )


@good("job-rewrites-checkout")
def _():  # the base dir is outside the work tree
    return Scenario(
        script=HEAD + 'export NANOCHAT_BASE_DIR="$SCRATCH/nanochat"\ncd "$HOME/proj"\n'
        f"git clean -fdx\ngit reset --hard HEAD\n{BASE}\n",
        env=ENV,
    )


@bad("job-rewrites-checkout")
def _():
    return Scenario(script=HEAD + f'cd "$HOME/proj"\ngit pull --rebase origin master\n{BASE}\n', env=ENV)


@bad("job-rewrites-checkout")
def _():  # `git -C DIR clean` from elsewhere
    return Scenario(
        script=HEAD + 'REPO="$SCRATCH/proj"\nexport NANOCHAT_BASE_DIR="$REPO/cache"\n'
        f'git -C "$REPO" clean -fdx\n{BASE}\n',
        env=ENV,
    )
