"""preflight/gputable.py: the one GPU table, and the model a job asks SLURM for feeding the plan,
gpu-memory-insufficient and time-limit-too-short."""

from __future__ import annotations

import pytest

from preflight.gputable import lookup, requested_model
from preflight.testing import Scenario, run_scenario


@pytest.mark.parametrize(
    "text,model",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
        ("Tesla V100-SXM2-32GB", "V100"),
        ("NVIDIA H200", "H200"),
        ("AMD Instinct MI250X", "MI250X"),
        ("AMD Instinct MI300X", "MI300X"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("Matrox G200", None),
    ],
)
def test_device_names(text, model):
    m = lookup(text)
    assert (m.name if m else None) == model


@pytest.mark.parametrize(
    "sbatch,model,where",
    [
        ({"gres": "gpu:a100:8"}, "A100 80GB", "--gres=gpu:a100:8"),
        ({"gres": "gpu:h100:8"}, "H100 SXM", "--gres=gpu:h100:8"),
        ({"gres": "gpu:a100_40g:4,lscratch:10"}, "A100 40GB", "--gres=gpu:a100_40g:4,lscratch:10"),
        ({"gpus": "l40s:1"}, "L40S", "--gpus=l40s:1"),
        ({"gpus-per-node": "rtx_6000:2"}, "RTX 6000 Ada", "--gpus-per-node=rtx_6000:2"),
        ({"gres": "gpu:8", "constraint": "a100_80gb"}, "A100 80GB", "--constraint=a100_80gb"),
        ({"gres": "gpu:4", "partition": "gpu-l40s"}, "L40S", "--partition=gpu-l40s"),
        ({"gres": "gpu:8", "partition": "gpu"}, None, ""),
    ],
)
def test_requested_model(sbatch, model, where):
    m, w = requested_model(sbatch)
    assert (m.name if m else None, w) == (model, where)


def _run(tmp_path, head, select):
    script = (
        head
        + "set -e\ncd /nonexistent || exit 1\ntorchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=20\n"
    )
    result = run_scenario(Scenario(script=script, env={"HOME": "{tmp}/home"}), tmp_path, select=select)
    return {c.code: c for c in result.checks}


def test_l40s_two_days_are_too_short_for_d20(tmp_path):
    """d20 on one L40S was planned with H100 figures and passed; with L40S figures it needs ~76 h."""
    checks = _run(tmp_path, "#!/bin/bash\n#SBATCH --gpus=l40s:1\n#SBATCH --time=48:00:00\n", ["SB006"])
    assert [f.code for f in checks["SB006"].findings] == ["SB006"], checks["SB006"].reason


def test_h100_two_days_are_enough_for_d20(tmp_path):
    checks = _run(tmp_path, "#!/bin/bash\n#SBATCH --gres=gpu:h100:1\n#SBATCH --time=48:00:00\n", ["SB006"])
    assert not checks["SB006"].findings


def test_a100_40gb_request_runs_memory_check(tmp_path):
    checks = _run(tmp_path, "#!/bin/bash\n#SBATCH --gres=gpu:a100_40g:1\n#SBATCH --time=48:00:00\n", ["GPU003"])
    f = checks["GPU003"].findings
    assert f and "A100 40GB (--gres=gpu:a100_40g:1)" in f[0].message


def test_partition_tres_names_the_model():
    """`scontrol show partition -o` lines (the real format) with a typed gres in TRES."""
    from preflight.gputable import partition_model
    from preflight.slurm import parse_partitions

    line = (
        "PartitionName=gpu-l40s AllowGroups=ALL Default=NO State=UP TotalCPUs=64 TotalNodes=2 "
        "TRES=cpu=64,mem=512G,node=2,billing=64,gres/gpu=8,gres/gpu:l40s=8"
    )
    part = parse_partitions(line)[0]
    model, where = partition_model(part)
    assert model.name == "L40S" and "gpu-l40s" in where
    untyped = parse_partitions(line.replace(",gres/gpu:l40s=8", ""))[0]
    assert partition_model(untyped) == (None, "")


def test_an_mi250_gpu_is_one_of_its_two_dies(tmp_path):
    """SLURM, ROCm and torch count an MI250's two dies as two GPUs of 64 GB: a d20 run at batch 32 needs more than one
    has (the card's 128 GB let it pass)."""
    assert (lookup("AMD Instinct MI250").memory_gib, lookup("AMD Instinct MI250X").memory_gib) == (64, 64)
    checks = _run(
        tmp_path, "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --constraint=MI250\n#SBATCH --time=48:00:00\n", ["GPU003"]
    )
    f = checks["GPU003"].findings
    assert f and "MI250 (--constraint=MI250)" in f[0].message, checks["GPU003"].reason
