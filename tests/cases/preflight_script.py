"""Good/bad cases for the script checks (SB001-SB016)."""

from preflight.script import SbatchTest
from preflight.testing import Scenario, bad, good

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\nset -euo pipefail\n"
BASE = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
ENV = {"HOME": "{tmp}/home", "OMP_NUM_THREADS": "1"}


@bad("script-unparsable")
def _():
    return Scenario(script=b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00" * 50, env=ENV)


@bad("script-unparsable")
def _():
    return Scenario(script='#!/bin/bash\necho "never closed\n', env=ENV)


@bad("script-unparsable")
def _():  # a retry loop whose `if` and `for` were never closed (the shape of a public NPU script)
    return Scenario(
        script="#!/bin/bash\nset -e\nfor attempt in 1 2 3; do\n  if torchrun --nproc_per_node=8 -- -m scripts.chat_sft \\\n"
        "    --run=dummy\necho done\n",
        env=ENV,
    )


@good("script-unparsable")
def _():
    return Scenario(script=HEAD + BASE, env=ENV)


@good("script-unparsable")
def _():  # an extglob pattern: `bash -n` alone rejects it (it never runs the shopt); the job parses it
    return Scenario(
        script=HEAD + 'shopt -s extglob\ncase "$1" in\n  +(a|b)) echo ab;;\nesac\nif true; then\n' + BASE + "fi\n",
        env=ENV,
    )


@good("script-unparsable")
def _():  # blocks preflight pairs up and bash accepts: case arms, one-line loops, functions, subshells
    return Scenario(
        script="#!/bin/bash\ncase $1 in\n  a|b) echo a;;\n  (c) echo c;;\nesac\nfor i in 1 2; do echo $i; done\n"
        "f() { ( cd /tmp && echo x ); }\nif f; then :; elif true; then :; else :; fi\n" + BASE,
        env=ENV,
    )


@bad("directive-after-command")
def _():
    return Scenario(script="#!/bin/bash\nexport OMP_NUM_THREADS=1\n#SBATCH --gres=gpu:8\n" + BASE, env=ENV)


@good("directive-after-command")
def _():
    return Scenario(script=HEAD + BASE, env=ENV)


@bad("variable-in-directive")
def _():
    return Scenario(script="#!/bin/bash\n#SBATCH --output=$HOME/logs/%j.out\n" + BASE, env=ENV)


@good("variable-in-directive")
def _():
    return Scenario(script="#!/bin/bash\n#SBATCH --output=/tmp/%u-%j.out\n" + BASE, env=ENV)


@bad("missing-set-e")
def _():
    return Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:8\n"
        + BASE
        + "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train\n",
        env=ENV,
    )


@good("missing-set-e")
def _():
    return Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:8\n" + BASE.rstrip() + " || exit 1\n"
        "if ! torchrun --standalone --nproc_per_node=8 -m scripts.mid_train; then exit 1; fi\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft\n",
        env=ENV,
    )


@good("missing-set-e")
def _():
    return Scenario(script=HEAD + BASE + "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train\n", env=ENV)


@bad("output-dir-missing")
def _():
    return Scenario(script="#!/bin/bash\n#SBATCH --output=logs/nanochat_speedrun_%j.out\n" + BASE, env=ENV)


@good("output-dir-missing")
def _():
    return Scenario(
        script="#!/bin/bash\n#SBATCH --output=logs/nanochat_speedrun_%j.out\n" + BASE, env=ENV, files={"logs/.keep": ""}
    )


@good("output-dir-missing")
def _():  # submitted from the checkout given (--checkout), which has logs/; where preflight runs has none
    return Scenario(
        script="#!/bin/bash\n#SBATCH --output=logs/nanochat_speedrun_%j.out\n" + BASE,
        env=ENV,
        files={"nc/logs/.keep": "", "nc/nanochat/__init__.py": "", "nc/scripts/base_train.py": ""},
        config={"checkout": "{tmp}/nc"},
    )


@bad("output-dir-missing")
def _():  # the checkout given has no logs/ (one where preflight runs does not count: sbatch runs in the checkout)
    return Scenario(
        script="#!/bin/bash\n#SBATCH --output=logs/nanochat_speedrun_%j.out\n" + BASE,
        env=ENV,
        files={"logs/.keep": "", "nc/nanochat/__init__.py": "", "nc/scripts/base_train.py": ""},
        config={"checkout": "{tmp}/nc"},
    )


@bad("gpu-count-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:4\nNPROC_PER_NODE=8\n"
        "torchrun --standalone --nproc_per_node=$NPROC_PER_NODE -m scripts.base_train\n",
        env=ENV,
    )


@bad("gpu-count-mismatch")
def _():  # a PBS job: its GPUs are its select's ngpus
    return Scenario(script="#!/bin/bash\n#PBS -l select=1:ncpus=8:ngpus=2\n" + BASE, env=ENV)


@good("gpu-count-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\n#PBS -l select=1:ncpus=64:ngpus=8\n#PBS -l walltime=48:00:00\n" + BASE, env=ENV
    )


@bad("gpu-count-mismatch")
def _():  # a submitter's wrapped job
    return Scenario(script='#!/bin/bash\nsbatch --gres=gpu:2 --wrap="' + BASE.strip() + '"\n', env=ENV)


@good("gpu-count-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --gpus-per-node=8\nNPROC_PER_NODE=8\n"
        "torchrun --standalone --nproc_per_node=$NPROC_PER_NODE -m scripts.base_train\n",
        env=ENV,
    )


@bad("time-limit-too-short")
def _():
    return Scenario(script="#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=01:00:00\n" + BASE, env=ENV)


@good("time-limit-too-short")
def _():
    return Scenario(script="#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=1-00:00:00\n" + BASE, env=ENV)


@bad("missing-timeout-signal")
def _():
    # d20 on 8 GPUs: ~3.7 h estimated; with 48 h to spare the check is skipped (test_signal_checks.py)
    return Scenario(script=HEAD.replace("48:00:00", "06:00:00") + BASE, env=ENV)


@bad("missing-timeout-signal")
def _():
    # upstream trainers do not save on a signal: --signal alone protects nothing
    return Scenario(
        script=HEAD.replace("48:00:00", "06:00:00").replace("set -euo", "#SBATCH --signal=B:USR1@600\nset -euo") + BASE,
        env=ENV,
    )


@good("missing-timeout-signal")
def _():
    # the bundled trainer saves on the signal (whether it gets there is signal-not-delivered's case)
    return Scenario(
        script=HEAD.replace("set -euo", "#SBATCH --signal=B:USR1@600\nset -euo")
        + BASE.replace("scripts.base_train", "nanochat.base_train"),
        env=ENV,
    )


@good("missing-timeout-signal")
def _():
    return Scenario(script=HEAD + BASE.rstrip() + " --save_every=1000\n", env=ENV)


@bad("background-without-wait")
def _():
    return Scenario(script=HEAD + "python -m nanochat.dataset -n 240 &\n" + BASE, env=ENV)


@good("background-without-wait")
def _():
    return Scenario(script=HEAD + "python -m nanochat.dataset -n 240 &\nPID=$!\nwait $PID\n" + BASE, env=ENV)


@good("background-without-wait")
def _():  # a dashboard started beside the job on purpose: it ends with the job, nothing reads what it writes
    script = (
        HEAD + 'nohup env PYTHONPATH=. uv run tensorboard --logdir runs --port "$PORT" >/tmp/tb.log 2>&1 &\n' + BASE
    )
    return Scenario(script=script, env=ENV)


@bad("secret-in-script")
def _():
    return Scenario(script=HEAD + "export WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567\n" + BASE, env=ENV)


@bad("secret-in-script")
def _():  # a fork's script kept its key in a comment: wandb's prefixed format, no variable name (a made-up key)
    return Scenario(script=HEAD + "# wandb_v1_" + "Xq7" * 26 + "\n# wandb login\n" + BASE, env=ENV)


@good("secret-in-script")
def _():
    return Scenario(script=HEAD + 'export WANDB_API_KEY="$(cat ~/.config/wandb_key)"\n' + BASE, env=ENV)


@bad("flag-style-mismatch")
def _():
    # a classic-era run (alone, '--depth 20' reads as argparse: the profile says which era it is)
    return Scenario(
        script=HEAD + "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth 20 "
        "--target_param_data_ratio=8.5\n",
        env=ENV,
        config={"profile": "classic"},
    )


@bad("flag-style-mismatch")
def _():  # dash-era argparse checkout, underscore flags
    return Scenario(
        script=HEAD + "cd {tmp}/nanochat\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train "
        "-- --depth=20 --device_batch_size=16\n",
        env=ENV,
        files={
            "nanochat/nanochat/common.py": "",
            "nanochat/scripts/mid_train.py": "",
            "nanochat/scripts/base_train.py": 'parser.add_argument("--device-batch-size", type=int)\n',
        },
    )


@good("flag-style-mismatch")
def _():
    return Scenario(
        script=HEAD + "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 "
        "--target_param_data_ratio=8 --run=$WANDB_RUN\npython -m scripts.chat_eval -i sft\n",
        env=ENV,
    )


@bad("network-in-offline-job")
def _():
    return Scenario(script=HEAD + "uv sync --extra gpu\n" + BASE, env=ENV)


@good("network-in-offline-job")
def _():
    return Scenario(script=HEAD + "source .venv/bin/activate\n" + BASE, env=ENV)


@bad("network-in-offline-job")
def _():  # inline Python that fetches a tokenizer from the Hub
    return Scenario(
        script=HEAD
        + "python -c \"from huggingface_hub import hf_hub_download; hf_hub_download('o/m', 't.pkl')\"\n"
        + BASE,
        env=ENV,
    )


@good("network-in-offline-job")
def _():  # inline Python that reads a local JSONL file with datasets' json builder
    return Scenario(
        script=HEAD + "python -c \"from datasets import load_dataset; load_dataset('json', data_files='a.jsonl')\"\n"
        "source .venv/bin/activate\n" + BASE,
        env=ENV,
    )


@bad("script-dir-in-batch-job")
def _():
    return Scenario(script=HEAD + 'cd "$(dirname "$0")"\n' + BASE, env=ENV)


@good("script-dir-in-batch-job")
def _():  # the submit directory under sbatch, the script's own when run with bash
    return Scenario(script=HEAD + 'cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"\n' + BASE, env=ENV)


@good("script-dir-in-batch-job")
def _():  # the script's own directory only where SLURM_SUBMIT_DIR is unset (run with bash)
    return Scenario(
        script=HEAD + 'if [ -n "${SLURM_SUBMIT_DIR:-}" ]; then\n  ROOT="$SLURM_SUBMIT_DIR"\nelse\n'
        '  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"\nfi\ncd "$ROOT"\n' + BASE,
        env=ENV,
    )


@bad("interactive-prompt")
def _():
    return Scenario(script=HEAD + 'read -p "Press Enter when your dataset is ready..."\n' + BASE, env=ENV)


@good("interactive-prompt")
def _():  # lines of a file, not the keyboard
    return Scenario(script=HEAD + "while read -r d; do echo $d; done < depths.txt\n" + BASE, env=ENV)


@bad("blocking-server")
def _():
    return Scenario(script=HEAD + BASE + "python -m scripts.chat_web\n", env=ENV)


@good("blocking-server")
def _():
    return Scenario(script=HEAD + BASE + 'python -m scripts.chat_cli -p "Why is the sky blue?"\n', env=ENV)


@bad("crlf-line-endings")
def _():
    return Scenario(script=(HEAD + BASE).replace("\n", "\r\n").encode(), env=ENV)


@good("crlf-line-endings")
def _():
    return Scenario(script=HEAD + BASE, env=ENV)


@bad("slurm-rejects-job")
def _():
    return Scenario(
        script=HEAD + BASE,
        env=ENV,
        facts={
            "sbatch_test": SbatchTest(
                1, "sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification", {}, None
            )
        },
    )


@bad("slurm-rejects-job")
def _():
    return Scenario(
        script=HEAD + BASE,
        env=ENV,
        facts={
            "sbatch_test": SbatchTest(
                0,
                "sbatch: Job 3 to start at 2026-07-04T10:00:00",
                {"debug": {"PartitionName": "debug", "MaxTime": "01:00:00", "MaxNodes": "1", "Default": "YES"}},
                "debug",
            )
        },
    )


@good("slurm-rejects-job")
def _():
    return Scenario(
        script=HEAD + BASE,
        env=ENV,
        facts={
            "sbatch_test": SbatchTest(
                0,
                "sbatch: Job 3 to start at 2026-07-04T10:00:00",
                {"gpu": {"PartitionName": "gpu", "MaxTime": "UNLIMITED", "MaxNodes": "UNLIMITED", "Default": "YES"}},
                "gpu",
            )
        },
    )


# -- signal-not-delivered: each way the --signal misses the trainer (measured on the local SLURM:
#    tests/slurm/test_signal_delivery.py), and the two that work
SIGNAL_B = HEAD.replace("set -euo", "#SBATCH --signal=B:USR1@600\nset -euo")
FORWARD = "trap 'kill -USR1 \"$PID\"' USR1\n"
BG_BASE = BASE.rstrip() + " &\nPID=$!\nwait $PID || wait $PID\n"


@bad("signal-not-delivered")
def _():
    return Scenario(script=SIGNAL_B + BASE, env=ENV)  # no trap: the shell dies of USR1


@bad("signal-not-delivered")
def _():
    return Scenario(script=SIGNAL_B + FORWARD + BASE, env=ENV)  # trainer in the foreground: the trap waits for it


@bad("signal-not-delivered")
def _():
    return Scenario(
        script=HEAD.replace("set -euo", "#SBATCH --signal=USR1@600\nset -euo") + BASE, env=ENV
    )  # no B:, no srun


@bad("signal-not-delivered")
def _():
    return Scenario(
        script=SIGNAL_B + "python -m scripts.tok_train --max_chars=2000000000\n" + FORWARD + BG_BASE, env=ENV
    )


@bad("signal-not-delivered")
def _():
    return Scenario(script=SIGNAL_B.replace("B:USR1@600", "B:USR9@600") + BASE, env=ENV)


@good("signal-not-delivered")
def _():
    return Scenario(script=SIGNAL_B + FORWARD + BG_BASE, env=ENV)


@good("signal-not-delivered")
def _():
    return Scenario(script=HEAD.replace("set -euo", "#SBATCH --signal=USR1@600\nset -euo") + "srun " + BASE, env=ENV)


@good("signal-not-delivered")
def _():
    return Scenario(script=HEAD + BASE, env=ENV)  # no --signal: missing-timeout-signal's business


# SB010 against the checkout's real flags (preflight/checkout.py reads them with ast)
_DASH_BASE_TRAIN = (
    "import argparse\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--depth", type=int, default=20)\n'
    'parser.add_argument("--fp8", action="store_true")\n'
    'parser.add_argument("--device-batch-size", type=int, default=32)\n'
    'parser.add_argument("--save-every", type=int, default=-1)\n'
    'parser.add_argument("--resume-from-step", type=int, default=-1)\n'
    "args = parser.parse_args()\n"
)
_DASH_CHECKOUT = {
    "nanochat/nanochat/common.py": "",
    "nanochat/scripts/chat_sft.py": "",
    "nanochat/scripts/base_train.py": _DASH_BASE_TRAIN,
}


@bad("signal-not-delivered")
def _():  # a TERM trap in front of a foreground trainer that already saves periodically: the fix keeps its flags
    return Scenario(
        script=HEAD + "cd {tmp}/nanochat\ntrap 'echo stopping' TERM\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --save-every=400\n",
        env=ENV,
        files=_DASH_CHECKOUT,
    )


@good("flag-style-mismatch")
def _():  # --fp8 exists in the checkout (Karpathy's own speedrun passes it); --device-batch abbreviates
    return Scenario(
        script=HEAD + "cd {tmp}/nanochat\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train "
        "-- --depth=20 --fp8 --device-batch=16\n",
        env=ENV,
        files=_DASH_CHECKOUT,
    )


@bad("flag-style-mismatch")
def _():  # a typo against the checkout's flags: did you mean --save-every
    return Scenario(
        script=HEAD + "cd {tmp}/nanochat\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train "
        "-- --depth=20 --save-evry=500\n",
        env=ENV,
        files=_DASH_CHECKOUT,
    )


@good("flag-style-mismatch")
def _():  # no checkout: a fork's own flag is not an error just because the era profile lacks it
    return Scenario(
        script=HEAD + "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 "
        "--input_injection=1\n",
        env=ENV,
    )


@good("network-in-offline-job")
def _():  # a path in an export is not a download (rustup's home on shared storage)
    return Scenario(
        script=HEAD + "export RUSTUP_HOME=/scratch/$USER/rustup\nexport CARGO_HOME=/scratch/$USER/cargo\n"
        "source .venv/bin/activate\n" + BASE,
        env=ENV,
    )


@bad("interpreter-missing")
def _():
    return Scenario(script="#!/opt/nothere/envs/old/bin/bash\n" + HEAD.split("\n", 1)[1] + BASE, env=ENV)


@bad("interpreter-missing")
def _():
    return Scenario(
        script="#!/usr/bin/env nothere-shell\n" + HEAD.split("\n", 1)[1] + BASE, env={**ENV, "PATH": "/usr/bin:/bin"}
    )


@good("interpreter-missing")
def _():
    return Scenario(
        script="#!/usr/bin/env bash\n" + HEAD.split("\n", 1)[1] + BASE, env={**ENV, "PATH": "/usr/bin:/bin"}
    )


_PER_NODE = "torchrun --standalone --nproc_per_node=${SLURM_GPUS_PER_NODE:-8} -m scripts.base_train -- --depth=20\n"


@bad("gpu-count-mismatch")
def _():  # SLURM leaves SLURM_GPUS_PER_NODE unset for --gres (seen on 22.05): the default 8 starts
    return Scenario(script=HEAD.replace("gpu:8", "gpu:4") + _PER_NODE, env=ENV)


@good("gpu-count-mismatch")
def _():  # --gpus-per-node=4 sets it to 4
    return Scenario(script=HEAD.replace("--gres=gpu:8", "--gpus-per-node=4") + _PER_NODE, env=ENV)
