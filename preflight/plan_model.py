"""The run plan's data: each phase's steps, tokens, time and checkpoints (PhasePlan), and the whole job's (Plan),
as the table and the JSON show them; how they are computed is preflight.plan's."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from preflight.model_size import GIB
from preflight.units import duration


@dataclass
class PhasePlan:
    """One phase of the plan: its entry points, steps, tokens, FLOPs and time."""

    name: str
    modules: list[str]
    steps: int | None = None
    tokens: int | None = None
    flops: float | None = None
    seconds: float | None = None
    checkpoint_dir: str | None = None
    model_bytes: int = 0
    optim_bytes: int = 0
    optim_files: int = 0
    files: int = 0
    note: str = ""
    # steps known from the script/config (base horizon, --num_iterations), not an era's typical count:
    # only these are promises a postflight can hold the run to
    exact_steps: bool = False
    resume_from: int | None = None  # the step the job resumes at (--resume_from_step): it trains only the rest
    eval_only: bool = False  # the script runs the phase's evaluations only (`base_eval` of a model trained before)
    saves: int = 1  # checkpoints it leaves: every --save_every step's and the last (nanochat deletes none)


@dataclass
class Plan:
    """What the job will do and need: model, batch, phases, time, cost, disk, memory per GPU, and why."""

    profile: str
    depth: int
    model_dim: int
    n_head: int
    vocab_size: int
    seq_len: int
    total_batch_size: int
    device_batch_size: int
    ratio: float
    params: int
    wte_params: int
    flops_per_token: int
    iterations: int
    tokens: int
    grad_accum: int | None
    world_size: int
    nodes: int
    gpu_name: str
    peak_flops: float | None
    mfu: float
    hourly_rate: float
    shards_raw: float
    shards_train_min: int
    shards_min: int
    shards_recommended: int
    shard_rule: str
    val_shard: Any
    phases: list[PhasePlan] = field(default_factory=list)
    total_seconds: float | None = None
    cost: float | None = None
    disk_bytes: int = 0
    disk_files: int = 0
    memory_per_gpu: int = 0
    assumptions: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # value -> where it came from
    horizon: str = ""  # how the iterations were set when not by the ratio ("--target-flops 2.15e+18: ratio 4.51")
    why_empty: str = ""  # no phases: why, where the script says more than "no training" (an exit before it)

    def phase(self, name: str) -> PhasePlan | None:
        return next((p for p in self.phases if p.name == name), None)

    @property
    def training_seconds(self) -> float | None:
        """Seconds until the last checkpoint-writing phase ends (what --time must cover)."""
        return self.total_seconds

    def rows(self) -> list[tuple[str, str]]:
        if not self.phases:  # an SFT-only fork job, a CPU-partition helper: the defaults would describe no run
            return [("plan", self.why_empty or "the script runs no training phase preflight can see: nothing to plan")]
        rows = [
            (
                "model",
                f"d{self.depth}: {self.params:,} params, dim {self.model_dim}, {self.n_head} heads, "
                f"vocab {self.vocab_size:,}, seq {self.seq_len}",
            ),
            ("FLOPs/token", f"{self.flops_per_token:.6e}"),
            (
                "base training",
                f"{self.iterations:,} iterations x {self.total_batch_size:,} tokens = "
                f"{self.tokens:,} tokens ({self.horizon or f'ratio {self.ratio:g}'})",
            ),
            (
                "batch",
                f"{self.device_batch_size} x {self.seq_len} x {self.world_size} {'GPUs' if self.gpu_name != 'CPU' else 'process(es)'}"
                + (f", grad accum {self.grad_accum}" if self.grad_accum else ", NOT divisible"),
            ),
            ("shards", f"{self.shards_recommended} recommended, {self.shards_min} minimum ({self.shard_rule})"),
            (
                "GPUs" if self.gpu_name != "CPU" else "device",
                (
                    f"{self.nodes} nodes x {self.world_size // self.nodes} {self.gpu_name} = {self.world_size}"
                    if self.nodes > 1
                    else f"{self.world_size} x {self.gpu_name}"
                )
                + (f" ({self.sources['gpu']})" if self.sources.get("gpu") and self.gpu_name != "CPU" else "")
                + f", MFU {self.mfu:.0%}, est. {self.memory_per_gpu / GIB:.1f} GiB/{'GPU' if self.gpu_name != 'CPU' else 'process'}",
            ),
        ]
        if self.phase("base") is None:  # a job that trains from a checkpoint: no base run, no shards it reads
            rows = [r for r in rows if r[0] not in ("base training", "shards")]
        if self.phases and all(p.name == "tokenizer" for p in self.phases):  # it trains no model: no model to size
            rows = [
                (k, v.split(", MFU")[0]) if k in ("GPUs", "device") else (k, v)
                for k, v in rows
                if k not in ("model", "FLOPs/token", "batch")
            ]
        for p in self.phases:
            bits = []
            if p.steps:
                bits.append(f"{p.steps:,} steps")
            if p.resume_from:
                bits.append(f"resumes at step {p.resume_from:,}: {p.steps - p.resume_from:,} left to train")
            if p.seconds is not None:
                bits.append(duration(p.seconds))
            if p.model_bytes:
                bits.append(f"checkpoint {_gb(p.model_bytes)}")
            if p.optim_files:
                bits.append(f"optimizer {_gb(p.optim_bytes)} in {p.optim_files} file(s)")
            if p.saves > 1:  # the sizes above are one checkpoint's
                bits.append(f"{p.saves} checkpoints kept ({_gb(p.saves * (p.model_bytes + p.optim_bytes))})")
            rows.append((f"phase {p.name}", ", ".join(bits) or "-"))
        if self.total_seconds is not None:
            cost = f", ${self.cost:,.0f} at ${self.hourly_rate:g}/GPU-hour" if self.cost is not None else ""
            rows.append(("total", f"{duration(self.total_seconds)}{cost}"))
        rows.append(("disk", f"{_gb(self.disk_bytes)}, {self.disk_files:,} files"))
        for a in self.assumptions:
            rows.append(("assumed", a))
        return rows

    def to_json(self) -> dict:
        out = asdict(self)
        out["phases"] = [asdict(p) for p in self.phases]
        return out


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
