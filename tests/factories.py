"""Fixture factories: nanochat artifacts of every era, written exactly as nanochat-facts.md describes.

Checkpoint dirs (model/meta/optim files with real torch state dicts of the §2.1 names and
shapes), meta JSON per era and phase (§2.2), tokenizer files, report.md (§3) and logs with the
exact §4 line formats (ANSI colour codes in logger lines, tracebacks, SLURM lines).
Used by tests/cases/postflight_*.py and tests/postflight/; other areas may use them too.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STAGE_DIRS = {
    "base": "base_checkpoints",
    "mid": "mid_checkpoints",
    "sft": "chatsft_checkpoints",
    "rl": "chatrl_checkpoints",
}
SPECIALS = [
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
]
TINY_VOCAB = 256 + len(SPECIALS)  # byte-level tokenizer + the 9 chat specials


# -- model config and state dicts (nanochat-architecture.md §1-2) --------------------------------
def model_config(
    depth: int = 2,
    vocab_size: int = TINY_VOCAB,
    sequence_len: int = 64,
    n_embd: int | None = None,
    era: str = "classic",
) -> dict[str, Any]:
    n_embd = n_embd or depth * 64
    n_head = max(1, (n_embd + 127) // 128)
    cfg = {
        "sequence_len": sequence_len,
        "vocab_size": vocab_size,
        "n_layer": depth,
        "n_head": n_head,
        "n_kv_head": n_head,
        "n_embd": n_embd,
    }
    if era in ("argparse", "no-mid", "current"):
        cfg["window_pattern"] = "SSSL"
    return cfg


def tensor_shapes(cfg: dict[str, Any]) -> OrderedDict[str, tuple[int, ...]]:
    vp = 64 * math.ceil(cfg["vocab_size"] / 64)
    c, h, kv = cfg["n_embd"], cfg["n_head"], cfg["n_kv_head"]
    hd = c // h
    out: OrderedDict[str, tuple[int, ...]] = OrderedDict()
    out["transformer.wte.weight"] = (vp, c)
    for i in range(cfg["n_layer"]):
        out[f"transformer.h.{i}.attn.c_q.weight"] = (h * hd, c)
        out[f"transformer.h.{i}.attn.c_k.weight"] = (kv * hd, c)
        out[f"transformer.h.{i}.attn.c_v.weight"] = (kv * hd, c)
        out[f"transformer.h.{i}.attn.c_proj.weight"] = (c, c)
        out[f"transformer.h.{i}.mlp.c_fc.weight"] = (4 * c, c)
        out[f"transformer.h.{i}.mlp.c_proj.weight"] = (c, 4 * c)
    out["lm_head.weight"] = (vp, c)
    return out


def state_dict(
    cfg: dict[str, Any],
    *,
    wte_bf16: bool = False,
    fill: str = "randn",
    prefix: str = "",
    empty: bool = False,
    seed: int = 0,
):
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for name, shape in tensor_shapes(cfg).items():
        dtype = torch.bfloat16 if (wte_bf16 and name == "transformer.wte.weight") else torch.float32
        if empty:
            t = torch.empty(shape, dtype=dtype)
        elif fill == "zeros":
            t = torch.zeros(shape, dtype=dtype)
        else:
            t = (torch.randn(shape, generator=gen) * 0.02).to(dtype)
        sd[prefix + name] = t
    return sd


def write_model(path: Path, cfg: dict[str, Any], **kw) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = kw.pop("sd", None)
    torch.save(sd if sd is not None else state_dict(cfg, **kw), path)
    return path


def optimizer_state(cfg: dict[str, Any], *, step: int = 1):
    """[adamw, muon] state dicts, the shape of classic optim files (§2.6, small)."""
    import torch

    c = cfg["n_embd"]
    adamw = {
        "state": {
            0: {"step": torch.tensor(float(step)), "exp_avg": torch.zeros(4, c), "exp_avg_sq": torch.zeros(4, c)}
        },
        "param_groups": [
            {
                "lr": 0.004,
                "betas": (0.8, 0.95),
                "eps": 1e-10,
                "weight_decay": 0.0,
                "fused": True,
                "initial_lr": 0.004,
                "params": [0],
            }
        ],
    }
    muon = {
        "state": {1: {"momentum_buffer": torch.zeros(c, c)}},
        "param_groups": [{"lr": 0.02, "momentum": 0.95, "nesterov": True, "ns_steps": 5, "params": [1]}],
    }
    return [adamw, muon]


def write_optim(path: Path, cfg: dict[str, Any], step: int = 1) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(optimizer_state(cfg, step=step), path)
    return path


# -- meta JSON per era and phase (facts §2.2) --------------------------------------------------
def user_config(phase: str, depth: int, num_iterations: int = -1, run: str = "dummy") -> dict[str, Any]:
    if phase == "base":
        return {
            "run": run,
            "device_type": "",
            "depth": depth,
            "max_seq_len": 64,
            "num_iterations": num_iterations,
            "target_flops": -1.0,
            "target_param_data_ratio": 20,
            "device_batch_size": 4,
            "total_batch_size": 512,
            "embedding_lr": 0.2,
            "unembedding_lr": 0.004,
            "weight_decay": 0.0,
            "matrix_lr": 0.02,
            "grad_clip": 1.0,
            "warmup_ratio": 0.0,
            "warmdown_ratio": 0.2,
            "final_lr_frac": 0.0,
            "resume_from_step": -1,
            "eval_every": 250,
            "eval_tokens": 10485760,
            "core_metric_every": 2000,
            "core_metric_max_per_task": 500,
            "sample_every": 2000,
            "save_every": -1,
            "model_tag": "",
        }
    return {
        "run": run,
        "device_type": "",
        "model_tag": "",
        "step": -1,
        "dtype": "bfloat16",
        "num_iterations": num_iterations,
        "device_batch_size": 4,
    }


def meta(phase: str, step: int, cfg: dict[str, Any], era: str = "classic", **override) -> dict[str, Any]:
    depth = cfg["n_layer"]
    if phase == "base":
        if era == "a0":
            out = {
                "step": step,
                "val_bpb": 1.2345,
                "model_config": cfg,
                "user_config": user_config("base", depth, step),
                "device_batch_size": 4,
                "max_seq_len": cfg["sequence_len"],
            }
        else:
            out = {
                "step": step,
                "val_bpb": 1.2345,
                "model_config": cfg,
                "user_config": user_config("base", depth, step),
                "device_batch_size": 4,
                "max_seq_len": cfg["sequence_len"],
                "dataloader_state_dict": {"pq_idx": 1, "rg_idx": 0},
                "loop_state": {"min_val_bpb": 1.2345, "smooth_train_loss": 3.21, "total_training_time": 12.5},
            }
            if era in ("argparse", "no-mid", "current"):
                out["total_batch_size"] = 512
                out["dataloader_state_dict"]["epoch"] = 1
    elif phase == "mid":
        out = {"step": step, "val_bpb": 1.1, "model_config": cfg, "user_config": user_config("mid", depth)}
    elif phase == "sft":
        if era == "current":
            out = {"step": step, "val_bpb": 1.0, "model_config": cfg, "user_config": user_config("sft", depth)}
        else:
            out = {"step": step, "val_loss": 1.05, "mmlu_acc": 0.31, "arc_easy_acc": 0.38, "model_config": cfg}
    elif phase == "rl":
        out = {"model_config": cfg}
    else:
        raise ValueError(phase)
    out.update(override)
    return out


def write_meta(path: Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(data, indent=2)
        if not isinstance(data, (str, bytes))
        else data
        if isinstance(data, str)
        else data.decode("latin-1")
    )
    return path


def optim_ranks(phase: str, era: str, world_size: int) -> list[int | None]:
    """Which optimizer files the era writes for a phase (None: the single A0 file)."""
    if era == "a0":
        return [None] if phase in ("base", "mid") else []
    if (
        phase == "base"
        or (phase == "sft" and era == "current")
        or (phase in ("base", "mid", "sft") and era == "bundled-all")
    ):
        return list(range(world_size))
    if phase == "mid":
        return [0]
    return []


def write_checkpoint(
    base: Path,
    phase: str,
    step: int,
    cfg: dict[str, Any],
    *,
    tag: str | None = None,
    era: str = "classic",
    world_size: int = 1,
    meta_override: dict | None = None,
    model: bool = True,
    meta_file: bool = True,
    optim: bool = True,
    **model_kw,
) -> Path:
    """One step of one phase: BASE/<stage>_checkpoints/<tag>/{model,meta,optim} files."""
    tag = tag or f"d{cfg['n_layer']}"
    d = Path(base) / STAGE_DIRS[phase] / tag
    d.mkdir(parents=True, exist_ok=True)
    if model:
        write_model(d / f"model_{step:06d}.pt", cfg, **model_kw)
    if optim:
        for r in optim_ranks(phase, era, world_size):
            name = f"optim_{step:06d}.pt" if r is None else f"optim_{step:06d}_rank{r}.pt"
            write_optim(d / name, cfg, step)
    if meta_file:
        write_meta(d / f"meta_{step:06d}.json", meta(phase, step, cfg, era, **(meta_override or {})))
    return d


def write_tokenizer(base: Path, vocab_size: int = TINY_VOCAB) -> Path:
    """BASE/tokenizer/{tokenizer.pkl (pickled tiktoken Encoding), token_bytes.pt}."""
    import tiktoken
    import torch

    n = vocab_size - len(SPECIALS)
    assert n == 256, "the fixture tokenizer is byte-level (256 + 9 specials)"
    enc = tiktoken.Encoding(
        name="rustbpe",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}{1,2}| ?[^\s\p{L}\p{N}]+|\s+""",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={name: n + i for i, name in enumerate(SPECIALS)},
    )
    d = Path(base) / "tokenizer"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tokenizer.pkl").write_bytes(pickle.dumps(enc, protocol=4))
    torch.save(torch.tensor([1] * 256 + [0] * len(SPECIALS), dtype=torch.int32), d / "token_bytes.pt")
    return d


DEFAULT_STEPS = {"base": 20, "mid": 12, "sft": 9, "rl": 6}


def write_run(
    base: Path,
    *,
    era: str = "classic",
    phases: Iterable[str] = ("base", "mid", "sft"),
    depth: int = 2,
    steps: dict[str, int] | None = None,
    world_size: int = 2,
    tokenizer: bool = True,
    report: bool | None = None,
    cfg: dict | None = None,
) -> dict[str, Any]:
    """A complete run's artifacts under BASE; returns what it wrote (steps, cfg)."""
    base = Path(base)
    steps = {**DEFAULT_STEPS, **(steps or {})}
    cfg = cfg or model_config(depth, era=era)
    if tokenizer:
        write_tokenizer(base, cfg["vocab_size"])
    for phase in phases:
        write_checkpoint(base, phase, steps[phase], cfg, era=era, world_size=world_size)
    if report is None:
        report = era in ("classic", "a0", "argparse", "no-mid", "bundled")
    if report:
        cols = ["BASE", "SFT", "RL"] if era in ("no-mid",) else ["BASE", "MID", "SFT", "RL"]
        write_report(base / "report" / "report.md", phases=list(phases), columns=cols)
    return {"steps": steps, "cfg": cfg, "phases": list(phases)}


# -- report.md (facts §3) -------------------------------------------------------------------------
SECTIONS = [
    ("tokenizer", "Tokenizer training"),
    ("tokenizer", "Tokenizer evaluation"),
    ("base", "Base model training"),
    ("base", "Base model loss"),
    ("base", "Base model evaluation"),
    ("mid", "Midtraining"),
    ("mid", "Chat evaluation mid"),
    ("sft", "Chat SFT"),
    ("sft", "Chat evaluation sft"),
    ("rl", "Chat RL"),
    ("rl", "Chat evaluation rl"),
]


def report_text(
    phases: Iterable[str] = ("base", "mid", "sft"),
    columns: list[str] | None = None,
    wall: str = "3h51m",
    skip_sections: Iterable[str] = (),
    cells: dict | None = None,
) -> str:
    phases = ["tokenizer", *phases]
    columns = columns or ["BASE", "MID", "SFT", "RL"]
    if "MID" not in columns:
        phases = [p for p in phases if p != "mid"]
    lines = [
        "# nanochat training report",
        "",
        "Generated: 2025-10-14 12:00:00",
        "",
        "## Environment",
        "",
        "### Git Information",
        "- Branch: master",
        "- Commit: 48abd7d (clean)",
        "- Message: classic",
        "",
        "### Hardware",
        "- Platform: Linux",
        "- CPUs: 96 cores (192 logical)",
        "- Memory: 1843.7 GB",
        "- GPUs: 8x NVIDIA H100 80GB HBM3",
        "- GPU Memory: 633.4 GB total",
        "- CUDA Version: 12.8",
        "- Hourly Rate: $24.00/hour",
        "",
        "### Software",
        "- Python: 3.10.12",
        "- PyTorch: 2.8.0+cu128",
        "",
        "### Bloat",
        "- Characters: 406,359",
        "- Lines: 9,976",
        "- Files: 47",
        "- Tokens (approx): 101,589",
        "- Dependencies (uv.lock lines): 2,004",
        "",
        "Run started: 2025-10-14 08:00:00",
        "",
        "---",
        "",
    ]
    minute = 10
    for phase, title in SECTIONS:
        if phase not in phases or title in skip_sections:
            continue
        lines += [f"## {title}", f"timestamp: 2025-10-14 {8 + minute // 60:02d}:{minute % 60:02d}:00", ""]
        minute += 20
        if title == "Base model evaluation":
            lines += ["- Model: base_model (step 21400)", "- CORE metric: 0.2219"]
        elif title.startswith("Chat evaluation"):
            lines += [
                "- source: x",
                "- ARC-Easy: 0.3561",
                "- ARC-Challenge: 0.2875",
                "- MMLU: 0.3111",
                "- GSM8K: 0.0250",
                "- HumanEval: 0.0671",
            ]
        else:
            lines += ["- key: value"]
        lines.append("")
    lines += [
        "## Summary",
        "",
        "- Characters: 406,359",
        "- Lines: 9,976",
        "- Files: 47",
        "- Tokens (approx): 101,589",
        "- Dependencies (uv.lock lines): 2,004",
        "",
    ]
    header = "| " + "Metric".ljust(15) + " | " + " | ".join(c.ljust(8) for c in columns) + " |"
    sep = "|" + "-" * 17 + "|" + "|".join("-" * 10 for _ in columns) + "|"
    lines += [header, sep]
    default_cells = {
        "CORE": {"BASE": "0.2219"},
        "ARC-Challenge": {"MID": "0.2875", "SFT": "0.2807"},
        "ARC-Easy": {"MID": "0.3561", "SFT": "0.3876"},
        "GSM8K": {"MID": "0.0250", "SFT": "0.0455", "RL": "0.0758"},
        "HumanEval": {"MID": "0.0671", "SFT": "0.0854"},
        "MMLU": {"MID": "0.3111", "SFT": "0.3151"},
        "ChatCORE": {"MID": "0.0730", "SFT": "0.0884"},
    }
    for metric, row in (cells or default_cells).items():
        vals = [row.get(c, "-") for c in columns]
        lines.append("| " + metric.ljust(15) + " | " + " | ".join(v.ljust(8) for v in vals) + " |")
    lines += ["", f"Total wall clock time: {wall}"]
    return "\n".join(lines) + "\n"


def write_report(path: Path, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_text(**kw))
    (path.parent / "header.md").write_text("# nanochat training report\n")
    return path


# -- logs (facts §4) ------------------------------------------------------------------------------
GREEN, BOLD, RESET = "\x1b[32m", "\x1b[1m", "\x1b[0m"


def logger_line(name: str, message: str, level: str = "INFO") -> str:
    """A logger.info line with the classic colour codes (level coloured, numbers bold)."""
    return f"2025-10-14 08:00:00,000 - {name} - {GREEN}{BOLD}{level}{RESET} - {message}"


def traceback_lines(script: str, exc: str, message: str, prefix: str = "", module_dir: str = "scripts") -> list[str]:
    return [
        f"{prefix}Traceback (most recent call last):",
        f'{prefix}  File "<frozen runpy>", line 198, in _run_module_as_main',
        f'{prefix}  File "/home/u/nanochat/{module_dir}/{script}.py", line 80, in <module>',
        f"{prefix}    train_loader = build()",
        f'{prefix}  File "/home/u/nanochat/nanochat/common.py", line 12, in build',
        f"{prefix}    raise {exc.rsplit('.', 1)[-1]}(...)",
        f"{prefix}{exc}: {message}",
    ]


def step_line(phase: str, step: int, total: int, loss: float | str = 3.5, era: str = "classic") -> str:
    loss_s = loss if isinstance(loss, str) else f"{loss:.6f}"
    if phase == "base":
        grad = " grad norm: 0.1234 |" if era == "classic" else ""
        tail = (
            " | epoch: 1 | total time: 0.50m | eta: 1.0m"
            if era in ("argparse", "no-mid", "current")
            else " | total time: 0.50m"
        )
        return (
            f"step {step:05d}/{total:05d} ({100 * step / total:.2f}%) | loss: {loss_s} |{grad} lrm: 1.00 | dt: 480.12ms"
            f" | tok/sec: 1,092,000 | mfu: 48.12{tail}"
        )
    if phase == "mid" or (phase == "sft" and era == "current"):
        return (
            f"step {step:05d} ({100 * step / total:.2f}%) | loss: {loss_s} | lrm: 1.00 | dt: 480.12ms"
            f" | tok/sec: 1,092,000 | mfu: 48.12 | total time: 0.50m"
        )
    if phase == "sft":
        return f"Step {step:05d}/{total:05d} | Training loss: {loss_s}| lrm: 0.500000| num_tokens: 12,345"
    if phase == "rl":
        return f"Step {step}/{total} | Average reward: 0.25 | Average sequence length: 120.00"
    raise ValueError(phase)


def phase_log(
    phase: str,
    *,
    base: str = "/base",
    tag: str = "d2",
    steps: int | None = None,
    planned: int | None = None,
    era: str = "classic",
    world_size: int = 2,
    crash: tuple[str, str] | None = None,
    crash_at: str = "end",
    run: str = "dummy",
    nan_at: int | None = None,
    save: bool = True,
    module_dir: str = "scripts",
    guessed: bool = False,
) -> list[str]:
    """The log lines one training phase prints (stdout and stderr merged, as SLURM does by default); guessed: mid
    was given no model tag (the loader's guess line before its load)."""
    planned = planned or DEFAULT_STEPS[phase] + (1 if phase == "sft" else 0)
    last = steps if steps is not None else (planned if phase != "sft" else planned - 1)
    script = {"base": "base_train", "mid": "mid_train", "sft": "chat_sft", "rl": "chat_rl"}[phase]
    out: list[str] = []
    if era in ("classic", "a0", "bundled"):
        out.append(f"Overriding: run = {run}")
        if phase == "base":
            out.append("Overriding: depth = 2")
    out.append("Autodetected device type: cuda")
    out.append(logger_line("nanochat.common", f"Distributed world size: {BOLD}{world_size}{RESET}"))
    if crash and crash_at == "setup":
        out += traceback_lines(script, *crash, module_dir=module_dir)
        return out
    if phase == "base":
        out += [
            "Vocab size: 265",
            "num_layers: 2",
            "model_dim: 128",
            "Number of parameters: 917,504",
            f"Calculated number of iterations from target data:param ratio: {planned:,}",
        ]
    if phase == "mid" and guessed:
        out.append(logger_line("nanochat.checkpoint_manager", f"No model tag provided, guessing model tag: {tag}"))
    if phase == "mid":
        out.append(
            logger_line("nanochat.checkpoint_manager", f"Loading model from {base}/base_checkpoints/{tag} with step 20")
        )
    if phase == "rl":
        out.append(f"Calculated number of steps: {planned}")
    for s in range(last):  # the loop breaks at the last step after saving: step lines 0 .. last-1
        loss = "nan" if nan_at is not None and s >= nan_at else 3.5 - s * 0.01
        out.append(step_line(phase, s, planned, loss, era))
        if phase in ("base", "mid") and s % (250 if phase == "base" else 150) == 0:
            out.append(f"Step {s:05d} | Validation bpb: 1.2345")
    if crash and crash_at == "end":
        out += traceback_lines(script, *crash, module_dir=module_dir)
        return out
    if phase in ("base", "mid"):
        out += [
            f"Step {last:05d} | Validation bpb: 1.2345",
            "Peak memory usage: 75123.45MiB",
            "Total training time: 180.12m",
            "Minimum validation bpb: 1.2345",
        ]
    if save:
        d = f"{base}/{STAGE_DIRS[phase]}/{tag}"
        saved_step = last
        out.append(
            logger_line("nanochat.checkpoint_manager", f"Saved model parameters to: {d}/model_{saved_step:06d}.pt")
        )
        out.append(logger_line("nanochat.checkpoint_manager", f"Saved metadata to: {d}/meta_{saved_step:06d}.json"))
        if phase == "base":
            for r in range(world_size):
                out.append(
                    logger_line(
                        "nanochat.checkpoint_manager",
                        f"Saved optimizer state to: {d}/optim_{saved_step:06d}_rank{r}.pt",
                    )
                )
        if phase in ("sft", "rl"):
            out.append(f"\u2705 Saved model checkpoint to {d}")
    return out


def run_log(
    phases: Iterable[str] = ("base", "mid", "sft"),
    *,
    era: str = "classic",
    base: str = "/base",
    tokenizer: bool = True,
    report: bool = True,
    downloads: tuple[int, int] = (8, 8),
    per_phase: dict[str, dict] | None = None,
    tail: Iterable[str] = (),
    cancel_after: str | None = None,
    world_size: int = 2,
) -> str:
    """A whole pipeline's log (speedrun order); per_phase passes phase_log() options per phase."""
    per_phase = per_phase or {}
    out = [
        f"Downloading {downloads[1]} shards using 4 workers...",
        f"Target directory: {base}/base_data",
        f"Done! Downloaded: {downloads[0]}/{downloads[1]} shards to {base}/base_data",
    ]
    if tokenizer:
        out += [
            "max_chars: 2,000,000,000",
            "doc_cap: 10,000",
            "vocab_size: 265",
            "Training time: 12.34s",
            f"Saved tokenizer encoding to {base}/tokenizer/tokenizer.pkl",
            f"Saved token_bytes to {base}/tokenizer/token_bytes.pt",
        ]
    for phase in phases:
        out += phase_log(phase, base=base, era=era, world_size=world_size, **per_phase.get(phase, {}))
        if cancel_after == phase:
            out.append(
                "slurmstepd: error: *** JOB 4242 ON gpu-node-01 CANCELLED AT 2025-10-14T12:00:00 DUE TO TIME LIMIT ***"
            )
            break
    if report and cancel_after is None:
        out += ["Generating report...", "Copying report.md to current directory for convenience"]
    out += list(tail)
    return "\n".join(out) + "\n"


def write_log(path: Path, text: str | bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# -- hostile inputs -----------------------------------------------------------------------------
class _MarkerPayload:
    """A pickle whose loading would create a file (proves the file is never unpickled)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(OrderedDict(weights=_MarkerPayload(str(marker))), protocol=2)


def malicious_torch_zip(path: Path, marker: Path) -> Path:
    """A torch-style zip whose data.pkl calls os.system (a hostile "checkpoint")."""
    import zipfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", malicious_pickle(marker))
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    return path


# -- current-era model code and checkpoints (value embeddings, lambdas; not the bundled GPT) --------
CURRENT_CHECKOUT = Path(__file__).resolve().parent / "fixtures" / "current_checkout"


def current_tensor_shapes(cfg: dict[str, Any]) -> OrderedDict[str, tuple[int, ...]]:
    """Current nanochat's state dict: the classic tensors plus per-layer value-embedding gates,
    value embeddings on alternating layers (the last always), residual/x0 lambdas, smear, backout."""
    out = tensor_shapes(cfg)
    vp, layers = 64 * math.ceil(cfg["vocab_size"] / 64), cfg["n_layer"]
    kv_dim = cfg["n_kv_head"] * (cfg["n_embd"] // cfg["n_head"])
    ve_layers = [i for i in range(layers) if i % 2 == (layers - 1) % 2]
    for i in ve_layers:
        out[f"transformer.h.{i}.attn.ve_gate.weight"] = (cfg["n_kv_head"], 12)
    out["resid_lambdas"] = (layers,)
    out["x0_lambdas"] = (layers,)
    out["smear_gate.weight"] = (1, 24)
    out["smear_lambda"] = (1,)
    out["backout_lambda"] = (1,)
    for i in ve_layers:
        out[f"value_embeds.{i}.weight"] = (vp, kv_dim)
    return out


def write_current_run(
    base: Path, *, phases: Iterable[str] = ("base", "sft"), depth: int = 2, nan: bool = False, cfg: dict | None = None
) -> dict[str, Any]:
    """A finished current-era run (no mid) whose checkpoints only the current model code loads."""
    import torch

    cfg = cfg or model_config(depth, era="current")
    write_tokenizer(base, cfg["vocab_size"])
    gen = torch.Generator().manual_seed(0)
    for phase in phases:
        sd = OrderedDict()
        for name, shape in current_tensor_shapes(cfg).items():
            sd[name] = torch.ones(shape) if name == "resid_lambdas" else torch.randn(shape, generator=gen) * 0.02
        sd["transformer.wte.weight"] = sd["transformer.wte.weight"].to(torch.bfloat16)
        if nan:
            sd["lm_head.weight"][0, 0] = float("nan")
        write_checkpoint(base, phase, DEFAULT_STEPS[phase], cfg, era="current", world_size=1, sd=sd)
    return {"steps": DEFAULT_STEPS, "cfg": cfg, "phases": list(phases)}


PROBE_CODE = """
def build_model(checkpoint_dir, step, device, phase):  # reports what the child can see and reach, then fails
    import os, socket
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
        net = "NET-REACHED"
    except OSError:
        net = "NET-BLOCKED"
    seen = {{k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "https_proxy", "HTTPS_PROXY",
                                            "WANDB_API_KEY", "PYTHONDONTWRITEBYTECODE")}}
    raise RuntimeError(f"PROBE {{net}} {{seen}} cwd={{os.getcwd()}} home={{os.path.expanduser('~')}}")
"""


def write_checkout(dest: Path, *, variant: str = "ok", venv_python: str | None = None, probe_port: int = 0) -> Path:
    """A copy of the current-era checkout. Variants: 'ok'; 'load-error' (its GPT lacks a parameter
    the checkpoint has: a real strict-load RuntimeError); 'missing-dep' (imports an absent module);
    'probe' (build_model reports the child's network, environment, cwd and HOME in its error).
    ``venv_python``: the checkout's .venv/bin/python (its whole venv linked as .venv when it is one)."""
    import shutil

    dest = Path(dest)
    shutil.copytree(CURRENT_CHECKOUT, dest)
    gpt = dest / "nanochat" / "gpt.py"
    text = gpt.read_text(encoding="utf-8")
    if variant == "load-error":
        text = text.replace("        self.backout_lambda = nn.Parameter(0.2 * torch.ones(1))  # BACKOUT\n", "")
        text = text.replace("            x = x - self.backout_lambda * mid\n", "            x = x - 0.2 * mid\n")
    elif variant == "missing-dep":
        text = "import flash_attn_for_this_test_is_absent  # noqa: F401\n" + text
    elif variant == "probe":
        cm = dest / "nanochat" / "checkpoint_manager.py"
        cm.write_text(cm.read_text(encoding="utf-8") + PROBE_CODE.format(port=probe_port), encoding="utf-8")
    elif variant != "ok":
        raise ValueError(variant)
    gpt.write_text(text, encoding="utf-8")
    if venv_python:
        venv = Path(venv_python).parent.parent
        if (venv / "pyvenv.cfg").is_file() and sys.prefix != sys.base_prefix:
            # a python of a venv finds its packages through the pyvenv.cfg beside its bin/: link the whole venv
            (dest / ".venv").symlink_to(venv, target_is_directory=True)
        else:
            (dest / ".venv" / "bin").mkdir(parents=True)
            (dest / ".venv" / "bin" / "python").symlink_to(venv_python)
    return dest
