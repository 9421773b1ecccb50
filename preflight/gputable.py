"""GPU models: the one table of peak bf16 FLOP/s, memory and architecture, and the GPU model a job
asks SLURM for (``--gres=gpu:TYPE:N``, ``--gpus[-per-node]=TYPE:N``, ``--constraint``, the partition).

Peak figures are dense bf16 tensor-core FLOP/s from the vendors' data sheets (no sparsity).
``sm`` is the CUDA compute capability major.minor (None for AMD), which decides what kernels load
(nanochat's FA3 kernel: Hopper sm90 only until 2026-03-11).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GPUModel:
    """A GPU model's peak dense bf16 FLOP/s, memory and the names it goes by."""

    name: str  # canonical: "H100 SXM", "A100 80GB"
    peak_bf16: float  # FLOP/s, dense
    memory_gib: float
    sm: tuple[int, int] | None  # CUDA compute capability; None for AMD
    keys: tuple[str, ...]  # lowercase tokens that name it in device names / gres types / features

    @property
    def arch(self) -> str:
        if self.sm is None:
            return "cdna"
        return {7: "volta/turing", 8: "ampere/ada", 9: "hopper", 10: "blackwell", 12: "blackwell"}.get(self.sm[0], "?")

    @property
    def hopper(self) -> bool:
        return self.sm is not None and self.sm[0] == 9


# order matters: the first model whose key matches wins, so longer / more specific keys come first
MODELS: tuple[GPUModel, ...] = (
    GPUModel("GB200", 2.5e15, 186, (10, 0), ("gb200",)),
    GPUModel("B200", 2.25e15, 180, (10, 0), ("b200",)),
    GPUModel("B100", 1.75e15, 180, (10, 0), ("b100",)),
    GPUModel("GH200", 989e12, 96, (9, 0), ("gh200",)),
    GPUModel("H200", 989e12, 141, (9, 0), ("h200",)),
    GPUModel("H100 PCIe", 756e12, 80, (9, 0), ("h100 pcie", "h100pcie", "h100-pcie", "h100_pcie")),
    GPUModel("H100 NVL", 835e12, 94, (9, 0), ("h100 nvl", "h100nvl", "h100-nvl")),
    GPUModel("H100 SXM", 989e12, 80, (9, 0), ("h100",)),
    GPUModel("H800", 989e12, 80, (9, 0), ("h800",)),
    GPUModel("H20", 148e12, 96, (9, 0), ("h20",)),
    GPUModel(
        "A100 40GB",
        312e12,
        40,
        (8, 0),
        (
            "a100-40",
            "a100_40",
            "a100-sxm4-40",
            "a100-pcie-40",
            "a100 40",
            "a100 sxm4 40",
            "a100 pcie 40",
            "a100-sxm-40",
            "a100_sxm4_40",
        ),
    ),
    GPUModel("A100 80GB", 312e12, 80, (8, 0), ("a100",)),
    GPUModel("A800", 312e12, 80, (8, 0), ("a800",)),
    GPUModel("L40S", 362e12, 48, (8, 9), ("l40s",)),
    GPUModel("L40", 181e12, 48, (8, 9), ("l40",)),
    GPUModel(
        "RTX 6000 Ada",
        364e12,
        48,
        (8, 9),
        ("rtx 6000 ada", "rtx6000ada", "rtx_6000_ada", "rtx_6000", "rtx6000", "rtx-6000"),
    ),
    GPUModel("RTX A6000", 155e12, 48, (8, 6), ("rtx a6000", "a6000", "rtx_a6000")),
    GPUModel("A40", 150e12, 48, (8, 6), ("a40",)),
    GPUModel("A10G", 70e12, 24, (8, 6), ("a10g",)),
    GPUModel("A10", 125e12, 24, (8, 6), ("a10",)),
    GPUModel("L4", 121e12, 24, (8, 9), ("l4",)),
    GPUModel("RTX 5090", 209e12, 32, (12, 0), ("5090",)),
    GPUModel("RTX 4090", 165e12, 24, (8, 9), ("4090",)),
    GPUModel("RTX 3090", 71e12, 24, (8, 6), ("3090",)),
    GPUModel("V100", 125e12, 32, (7, 0), ("v100",)),
    GPUModel("T4", 65e12, 16, (7, 5), ("t4",)),
    GPUModel("MI300X", 1307e12, 192, None, ("mi300x", "mi300")),
    # an MI250(X) card is two dies (GCDs), each its own device to ROCm, torch and SLURM's gres: one GCD's figures
    GPUModel("MI250X", 191.5e12, 64, None, ("mi250x",)),
    GPUModel("MI250", 181e12, 64, None, ("mi250",)),
)
DEFAULT_MODEL = "H100 SXM"


def _tokens(text: str) -> str:
    return " " + re.sub(r"\s+", " ", text.lower()) + " "


def lookup(text: str | None) -> GPUModel | None:
    """The model a device name, gres type, feature or partition name refers to (None: unknown).
    A key must stand as its own word-ish token: ``l4`` matches ``gpu:l4:1`` but not ``l40s``; a count may lead
    it (``8xH100``, ``4XH20``)."""
    if not text:
        return None
    t = _tokens(text)
    for m in MODELS:
        for key in m.keys:
            if re.search(r"(?:(?<![a-z0-9])|(?<=[0-9]x))" + re.escape(key) + r"(?![0-9]|s\b)", t):
                return m
    return None


_CUDA_SIGN_RE = re.compile(
    r"\bCUDA_VISIBLE_DEVICES\b|\bnvidia-smi\b|\bPYTORCH_CUDA_ALLOC_CONF\b|--device[_-]type[= ]cuda\b"
    r"|\btorch\.cuda\.is_available\(\)|\buv sync\b[^\n#]*--extra[= ]gpu\b"  # a CUDA check; nanochat's GPU extra
)


def gpu_in_script(lines: list[str]) -> tuple[GPUModel | None, str | None]:
    """(the GPU model a comment names, where) or (None, where the script sets CUDA up) or (None, None): how a
    script that asks SLURM for no GPU shows it runs on one ("# scaling runs for 3090", nvidia-smi)."""
    sign = None
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith("#") and not text.startswith("#!") and "SBATCH" not in text:  # `# #SBATCH --constraint=`
            model = lookup(text[1:])
            if model is not None:
                return model, f"line {n}: {text[:60]}"
        elif sign is None and (m := _CUDA_SIGN_RE.search(line)):
            sign = f"line {n}: {m.group(0)}"
    return None, sign


# a script that runs on accelerators other than the NVIDIA GPU assumed when none is named: Huawei Ascend NPUs
# (torch_npu) or AMD GPUs (ROCm), whatever SLURM calls the device
_OTHER_ACCELERATORS = (
    (
        "Ascend NPUs",
        re.compile(r"\bnpu-smi\b|\btorch_npu\b|\bASCEND_RT_VISIBLE_DEVICES\b|--extra[= ]npu\b|device[_-]type[= ]npu\b"),
    ),
    (
        "AMD GPUs (ROCm)",
        re.compile(r"\brocm-smi\b|\bROCR_VISIBLE_DEVICES\b|\bHIP_VISIBLE_DEVICES\b|\bHSA_OVERRIDE_GFX_VERSION\b"),
    ),
)


def other_accelerator_in_script(lines: list[str]) -> tuple[str, str] | None:
    """(what, where: "line 22: npu-smi") where a script shows it runs on Ascend NPUs or AMD GPUs, else None."""
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith("#"):
            continue
        for what, rx in _OTHER_ACCELERATORS:
            if m := rx.search(line):
                return what, f"line {n}: {m.group(0)}"
    return None


def by_name(name: str) -> GPUModel | None:
    return next((m for m in MODELS if m.name.lower() == name.lower()), None) or lookup(name)


def _gres_type(value: str | None) -> str | None:
    """``gpu:h100:8`` / ``gpu:a100_80g:4,lscratch:10`` / ``gpu:8`` -> the type (None if untyped)."""
    for part in (value or "").split(","):
        bits = part.split("(")[0].split(":")
        if bits[0] in ("gpu", "gres/gpu") and len(bits) >= 3:
            return bits[1]
        if bits[0] in ("gpu", "gres/gpu") and len(bits) == 2 and not bits[1].isdigit():
            return bits[1]
    return None


def _gpus_type(value: str | None) -> str | None:
    """``--gpus=l40s:1`` / ``--gpus-per-node=h100:8`` -> l40s / h100."""
    bits = (value or "").split(":")
    return bits[0] if len(bits) >= 2 and bits[0] and not bits[0].isdigit() else None


def requested_model(sbatch: dict) -> tuple[GPUModel | None, str]:
    """The GPU model the job asks SLURM for, and where that came from ('' when it names none)."""
    for opt, parse in (
        ("gres", _gres_type),
        ("gpus", _gpus_type),
        ("gpus-per-node", _gpus_type),
        ("gpus-per-task", _gpus_type),
    ):
        raw = sbatch.get(opt)
        typ = parse(raw)
        if typ:
            m = lookup(typ) or lookup(typ.replace("_", " ").replace("-", " "))
            if m is not None:
                return m, f"--{opt}={raw}"
    for opt in ("constraint", "partition"):
        raw = sbatch.get(opt)
        if raw:
            m = lookup(re.sub(r"[&|,\[\]()*]", " ", raw).replace("_", " "))
            if m is not None:
                return m, f"--{opt}={raw}"
    return None, ""


def partition_model(partition) -> tuple[GPUModel | None, str]:
    """The GPU model a partition's TRES names (``gres/gpu:h100=32`` in ``scontrol show partition``)."""
    tres = (getattr(partition, "raw", None) or {}).get("TRES", "")
    for typ in re.findall(r"gres/gpu:([^=,]+)=", tres):
        m = lookup(typ) or lookup(typ.replace("_", " ").replace("-", " "))
        if m is not None:
            return m, f"partition {partition.name}: TRES gres/gpu:{typ}"
    return None, ""


def job_partition_gpu(ctx: Any, job_env: Any) -> tuple[Any, str]:
    """A GPU model from the partition the job asks for (or the default one), via the real scontrol,
    when the request itself names none and nothing else (visible GPUs, config) does."""
    if (
        job_env is None
        or not job_env.gpus_per_node
        or requested_model(job_env.sbatch)[0] is not None
        or (ctx.config.get("gpu") or {}).get("type")
    ):
        return None, ""
    try:  # `scontrol show partition -o`, shared with the slurm fact and bounded to 2 s
        parts = ctx.get("slurm_partitions", None)
    except Exception:  # the tool failed: no model from the partition
        return None, ""
    if not parts:
        return None, ""
    name = job_env.sbatch.get("partition")
    part = next((p for p in parts if p.name == name), None) if name else next((p for p in parts if p.default), None)
    if part is None:
        return None, ""
    return partition_model(part)
