"""Good/bad cases for the GPU checks (GPU001-GPU004). GPU inventories are fact overrides: no GPU here."""

from preflight.gpus import GPU
from preflight.testing import Scenario, bad, good

GIB = 1024**3


def _script(nproc: int, gres: int | None = None, extra: str = "") -> str:
    head = "#!/bin/bash\n" + (f"#SBATCH --gres=gpu:{gres}\n" if gres else "") + "set -euo pipefail\n"
    return head + f"torchrun --standalone --nproc_per_node={nproc} -m scripts.base_train -- --depth=20{extra}\n"


def _gpus(n: int, name: str = "NVIDIA H100 80GB HBM3", mem: float = 80, cap=(9, 0)):
    return [GPU(i, name, int(mem * GIB), cap) for i in range(n)]


ENV = {"HOME": "{tmp}/home"}


@bad("batch-not-divisible")
def _():
    return Scenario(script=_script(6, 6), env=ENV)


@bad("batch-not-divisible")
def _():  # SFT: 32 examples per step / (4 x 3)
    return Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:3\nset -e\n"
        "torchrun --standalone --nproc_per_node=3 -m scripts.chat_sft\n",
        env=ENV,
    )


@good("batch-not-divisible")
def _():
    return Scenario(script=_script(8, 8) + "torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft\n", env=ENV)


@bad("visible-gpus-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n",
        env=ENV,
        facts={"gpus": _gpus(2)},
    )


@good("visible-gpus-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n",
        env=ENV,
        facts={"gpus": _gpus(8)},
    )


@bad("visible-gpus-mismatch")
def _():  # inside an allocation without nvidia-smi: the GPUs SLURM gave the job are the count
    return Scenario(
        script="#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n",
        env={**ENV, "SLURM_JOB_ID": "77", "SLURM_GPUS_ON_NODE": "2", "CUDA_VISIBLE_DEVICES": "0,1"},
    )


@good("visible-gpus-mismatch")
def _():
    return Scenario(
        script="#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=2 -m scripts.base_train\n",
        env={**ENV, "SLURM_JOB_ID": "77", "SLURM_GPUS_ON_NODE": "2", "CUDA_VISIBLE_DEVICES": "0,1"},
    )


@bad("gpu-memory-insufficient")
def _():
    return Scenario(script=_script(8, 8), env=ENV, facts={"gpus": _gpus(8, "NVIDIA A100-SXM4-40GB", 40, (8, 0))})


@good("gpu-memory-insufficient")
def _():
    return Scenario(
        script=_script(8, 8, " --device_batch_size=8"),
        env=ENV,
        facts={"gpus": _gpus(8, "NVIDIA A100-SXM4-40GB", 40, (8, 0))},
    )


@good("gpu-memory-insufficient")
def _():
    return Scenario(script=_script(8, 8), env=ENV, facts={"gpus": _gpus(8)})


@bad("bf16-unsupported")
def _():
    return Scenario(script=_script(8, 8), env=ENV, facts={"gpus": _gpus(8, "Tesla V100-SXM2-32GB", 32, (7, 0))})


@good("bf16-unsupported")
def _():
    return Scenario(script=_script(8, 8), env=ENV, facts={"gpus": _gpus(8)})


# a checkout whose base_train auto-sizes the total batch to a power of two (upstream from 2026-02-06)
_AUTO_BATCH_BASE_TRAIN = (
    "import argparse, math\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--depth", type=int, default=20)\n'
    'parser.add_argument("--max-seq-len", type=int, default=2048)\n'
    'parser.add_argument("--device-batch-size", type=int, default=32)\n'
    'parser.add_argument("--total-batch-size", type=int, default=-1)\n'
    "args = parser.parse_args()\n"
    "total_batch_size = args.total_batch_size\n"
    "if total_batch_size == -1:\n"
    "    total_batch_size = 2 ** round(math.log2(524288 * 1.3))\n"
)
_AUTO_CHECKOUT = {"nanochat/nanochat/common.py": "", "nanochat/scripts/base_train.py": _AUTO_BATCH_BASE_TRAIN}


def _auto(extra: str) -> str:
    return (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -euo pipefail\ncd {tmp}/nanochat\n"
        f"python -m scripts.base_train --depth=24{extra}\n"
    )


@bad("batch-not-divisible")
def _():  # 6 x 2048 = 3 x 4096: no power of two divides by it (a public fork's d24 script)
    return Scenario(script=_auto(" --device-batch-size=6"), env=ENV, files=_AUTO_CHECKOUT)


@good("batch-not-divisible")
def _():
    return Scenario(script=_auto(" --device-batch-size=8"), env=ENV, files=_AUTO_CHECKOUT)
