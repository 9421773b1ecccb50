"""GPU inventory: from torch when it is already imported with CUDA, else ``nvidia-smi``.

Importing torch costs ~1.4 s, so a torch-free run asks ``nvidia-smi`` (one subprocess with a
timeout). No GPU visible -> FactUnavailable, and the GPU checks are skipped with the reason.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

from preflight.facts import FactUnavailable
from preflight.units import parse_count


@dataclass
class GPU:
    """A GPU visible here (nvidia-smi)."""

    index: int
    name: str
    memory_bytes: int
    compute_cap: tuple[int, int] | None

    @property
    def bf16(self) -> bool | None:
        """bf16 tensor cores need compute capability 8.0 (Ampere) or newer."""
        return None if self.compute_cap is None else self.compute_cap >= (8, 0)

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / 1024**3

    def to_json(self) -> dict:
        return asdict(self)


def parse_nvidia_smi(text: str) -> list[GPU]:
    """Lines of `nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader`."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0]:
            continue
        name = parts[0]
        mem = 0
        bits = parts[1].split()
        try:
            value = float(bits[0])
            unit = bits[1].lower() if len(bits) > 1 else "mib"
            mem = int(value * {"mib": 1024**2, "gib": 1024**3, "kib": 1024, "b": 1}.get(unit, 1024**2))
        except (ValueError, IndexError):
            mem = 0
        cap = None
        if len(parts) > 2:
            try:
                major, _, minor = parts[2].partition(".")
                cap = (int(major), int(minor or 0))
            except ValueError:
                cap = None
        out.append(GPU(len(out), name, mem, cap))
    return out


def _from_torch() -> list[GPU] | None:
    torch = sys.modules.get("torch")  # only if something already paid for the import
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available():
            return None
        gpus = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(GPU(i, p.name, int(p.total_memory), (p.major, p.minor)))
        return gpus
    except Exception:
        return None


def visible_count(environ: dict) -> tuple[int | None, str]:
    """GPUs this process may use per CUDA_VISIBLE_DEVICES / SLURM_GPUS_ON_NODE (None: no limit set)."""
    cvd = environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        items = [x for x in cvd.split(",") if x.strip() != ""]
        if cvd.strip() in ("", "-1", "NoDevFiles"):
            return 0, f"CUDA_VISIBLE_DEVICES={cvd!r}"
        return len(items), f"CUDA_VISIBLE_DEVICES={cvd}"
    son = environ.get("SLURM_GPUS_ON_NODE")
    if parse_count(son) is not None:
        return parse_count(son), f"SLURM_GPUS_ON_NODE={son}"
    return None, ""


def gpus_fact(ctx: Any) -> list[GPU]:
    gpus = _from_torch()
    if gpus is None:
        from preflight.proc import ToolTimeout, run_tool

        try:
            res = run_tool(
                ["nvidia-smi", "--query-gpu=name,memory.total,compute_cap", "--format=csv,noheader,nounits"],
                timeout=10.0,
            )
        except FactUnavailable:
            raise FactUnavailable("no GPU visible (login node?): nvidia-smi not found") from None
        except ToolTimeout:
            raise  # a hung driver is not "no GPU": the GPU checks become errors
        if res.returncode != 0:
            raise FactUnavailable(
                f"no GPU visible (login node?): nvidia-smi exited {res.returncode}: "
                f"{(res.stderr or res.stdout).strip()[:200]}"
            )
        gpus = parse_nvidia_smi(res.stdout)
        # nounits: memory in MiB
    if not gpus:
        raise FactUnavailable("no GPU visible (login node?)")
    n, _src = visible_count(ctx.environ)
    if n is not None and n < len(gpus) and _from_torch() is None:
        # nvidia-smi lists every GPU of the node; the job sees only the visible ones
        gpus = gpus[:n]
        if not gpus:
            raise FactUnavailable("no GPU visible (CUDA_VISIBLE_DEVICES hides all)")
    return gpus
