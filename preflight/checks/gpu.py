"""Checks on GPUs and batch arithmetic: GPU001-GPU004."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import FactUnavailable, Skip
from preflight.gpus import visible_count
from preflight.model import Finding, Severity
from preflight.model_size import GIB, memory_estimate_bytes, model_shape
from preflight.phases import TRAIN_PHASES
from preflight.plan import requested_gpu
from preflight.plan_launches import world_size_from
from preflight.registry import check
from preflight.units import parse_count


def _training_invocations(script, profile):
    for inv in script.all_invocations:
        if not inv.entry:
            continue
        phase = profile.phase_of_module(inv.entry, inv.args)
        spec = profile.phase(phase) if phase else None
        if (
            phase in TRAIN_PHASES
            and spec
            and inv.entry.rsplit(".", 1)[-1] == (spec.get("train_module") or "").rsplit(".", 1)[-1]
        ):
            yield phase, spec, inv


def _value(script, inv, job_env, key, spec, profile, entry=None):
    f = inv.flag(key)
    if f is not None and f.value is not None:
        v = script.expand(f.value, inv.line, inv.file, job_env.start) if "$" in f.value else f.value
        try:
            return int(float(v)), f"--{f.key}={f.value}" + (f" ({v})" if v != f.value else "")
        except (TypeError, ValueError, OverflowError):  # "inf", or more digits than a float holds
            return None, ""
    if entry is not None and entry.ok:  # the checkout's own default wins over the era's
        d = entry.numeric_default(key)
        if d is not None:
            return int(d), f"{key}={d} (default in {entry.path.rsplit('/', 2)[-2]}/{entry.path.rsplit('/', 1)[-1]})"
        if entry.spelled(key):
            return None, ""  # declared with a computed default (None: inherited; -1: sized when it runs)
    keys = spec.get("config_keys") or profile.config_keys(inv.entry) or {}
    if key in keys and isinstance(keys[key], (int, float)) and not isinstance(keys[key], bool):
        return int(keys[key]), f"{key}={keys[key]} (default)"
    d = profile.defaults.get(key)
    if d is not None:
        return int(d), f"{key}={d} (default)"
    return None, ""


@check("GPU001", "batch-not-divisible", severity="error")
def batch_not_divisible(ctx, script, profile, job_env) -> Iterator[Finding]:
    """
    What it checks: for every training phase the script runs, that the total batch divides
    by device batch x sequence length x world size (base/mid, and SFT where it batches by
    tokens: from 2026-02, or whenever the checkout's chat_sft takes ``--total-batch-size``), by
    device batch x world (classic SFT: examples per step) or by world (RL), with world =
    nproc_per_node x nodes. Defaults come from the checkout's entry point when it is readable. And
    base_loss's ``--split_tokens`` (until 2026-02-01): a whole number of steps of device batch x the
    model's sequence length x world, which it asserts.

    Why it matters: nanochat asserts this at startup with a bare AssertionError: with the
    defaults only 1, 2, 4 or 8 GPUs work; 3, 5, 6 or 7 crash the phase.

    Example:
        torchrun --nproc_per_node=6 -m scripts.base_train   # 524288 % (32*2048*6) != 0

    How to fix: use a GPU count that divides the batch (1, 2, 4, 8), or pass a
    ``--total_batch_size`` that is a multiple of device_batch_size x max_seq_len x world.
    """
    if not script.ok:
        raise Skip("the script could not be read")
    from preflight.checkout import setting_flag
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    found = False
    for phase, spec, inv in _training_invocations(script, profile):
        rule = spec.get("batch_rule")
        if not rule:
            continue
        entry = checkout.entry(inv.entry, inv.script_file) if checkout is not None else None
        if entry is not None and entry.ok and not entry.spelled(rule["total"]) and entry.spelled("total_batch_size"):
            # this checkout batches the phase by tokens (SFT from 9652279 on), whatever the era says
            rule = {"total": "total_batch_size", "per": ["device_batch_size", "max_seq_len", "world"]}
        nproc, nodes, _src = world_size_from(script, job_env, inv, job_env.start)
        if nproc is None:
            continue
        found = True
        world = nproc * nodes
        total, tsrc = _value(script, inv, job_env, rule["total"], spec, profile, entry)
        auto = total is None or total <= 0  # auto-computed (later eras)
        if auto and not (entry is not None and entry.ok and entry.batch_power_of_two):
            continue  # its value is known only when the job runs
        if auto and entry.batch_rounded:
            continue  # the checkout rounds its auto batch to a multiple of the micro-batch: it always divides
        product, parts = 1, []
        for key in rule["per"]:
            if key == "world":
                product *= world
                parts.append(f"world {world}")
                continue
            v, vsrc = _value(script, inv, job_env, key, spec, profile, entry)
            if v is None or v <= 0:  # -1: sized by the trainer when it runs (a fork's auto device batch)
                product = 0
                break
            product *= v
            parts.append(vsrc)
        flag, _ = setting_flag(checkout, profile, inv.entry, rule["total"], inv.script_file)
        set_total = (
            f"set {flag} to a multiple of {product:,}" if flag else f"a total batch that is a multiple of {product:,}"
        )
        path = inv.file if inv.file != "<script>" else str(script.path)
        if auto and product and product & (product - 1):
            odd = product // (product & -product)
            yield Finding(
                f"{phase} ({inv.entry}): {entry.path.rsplit('/', 2)[-2]}/{entry.path.rsplit('/', 1)[-1]} auto-sizes "
                f"{rule['total']} to a power of two, and {' x '.join(parts)} = {product:,} has the odd factor {odd}: "
                "no power of two divides by it, so the phase stops with an AssertionError",
                path=path,
                line=inv.line,
                fix="make that product a power of two (device batch size, sequence length and GPU count each a "
                f"power of two), or {set_total}",
            )
        elif not auto and product and total % product:
            # the GPU counts that would make it divide (the world is one factor of the product)
            per_gpu = product // world if "world" in rule["per"] and world else 0
            fits = [w for w in (1, 2, 4, 8, 16) if per_gpu and total % (per_gpu * w) == 0]
            on = (
                f"run on {' or '.join(map(str, fits))} GPU{'s' if fits != [1] else ''} (then it divides)"
                if fits
                else ""
            )
            yield Finding(
                f"{phase} ({inv.entry}): {rule['total']} {total:,} is not divisible by "
                f"{' x '.join(parts)} = {product:,}; the phase stops with an AssertionError",
                path=path,
                line=inv.line,
                fix=f"{on} or {set_total}" if on else set_total,
            )
    for inv in script.all_invocations:
        if (inv.entry or "").rsplit(".", 1)[-1] == "base_loss" and (
            f := _split_not_divisible(ctx, script, profile, job_env, inv, checkout)
        ):
            found = True
            yield f
    if not found:
        raise Skip("no training phase with a known process count")


def _split_not_divisible(ctx, script, profile, job_env, inv, checkout) -> Finding | None:
    """base_loss (until 2026-02-01) asserts that --split_tokens is a whole number of steps of device batch x the
    model's sequence length (its base training's max_seq_len) x world; base_eval, which replaced it, rounds instead."""
    entry = checkout.entry(inv.entry, inv.script_file) if checkout is not None else None
    if entry is not None and entry.ok and not entry.split_asserted:
        return None
    plan = ctx.get("plan", None)
    nproc, nodes, _src = world_size_from(script, job_env, inv, job_env.start)
    spec = profile.phase("base") or {}
    split, ssrc = _value(script, inv, job_env, "split_tokens", spec, profile, entry)
    dbs, dsrc = _value(script, inv, job_env, "device_batch_size", spec, profile, entry)
    seq = getattr(plan, "seq_len", None)
    if not (split and dbs and seq and nproc) or dbs <= 0:
        return None
    step = dbs * seq * nproc * nodes
    if split % step == 0:
        return None
    from preflight.checkout import setting_flag

    flag, _ = setting_flag(checkout, profile, inv.entry, "split_tokens", inv.script_file)
    return Finding(
        f"base_loss ({inv.entry}): split_tokens {split:,} ({ssrc}) is not divisible by {dsrc} x the model's sequence "
        f"length {seq} x world {nproc * nodes} = {step:,}; it stops with an AssertionError (its training is done: "
        "only this evaluation is lost)",
        path=inv.file if inv.file != "<script>" else str(script.path),
        line=inv.line,
        fix=f"pass a multiple of {step:,}: {flag or '--split_tokens'}={max(step, split - split % step)}",
    )


def _visible_gpus(ctx) -> tuple[int, str]:
    """How many GPUs this process can see, and where that count comes from ("" = the GPU inventory).
    Inside a SLURM allocation without nvidia-smi (a container, a minimal image), SLURM's own
    CUDA_VISIBLE_DEVICES / SLURM_GPUS_ON_NODE still say how many GPUs the job got."""
    try:
        return len(ctx.get("gpus")), ""  # a hung driver (FactError) stays an error
    except FactUnavailable:
        job = ctx.environ.get("SLURM_JOB_ID")
        n, src = visible_count(ctx.environ)
        if not job or not n:  # outside a job, or a job with no GPU: nothing to compare with
            raise
        return n, f" ({src} in job {job})"


@check("GPU002", "visible-gpus-mismatch", severity="error")
def visible_gpus_mismatch(ctx, script, job_env) -> Iterator[Finding]:
    """
    What it checks: inside an allocation (or on a GPU node running the script directly), the
    GPUs this process can see (CUDA_VISIBLE_DEVICES / SLURM_GPUS_ON_NODE) against
    ``torchrun --nproc_per_node``. The count comes from nvidia-smi; inside a SLURM allocation
    where nvidia-smi is missing, from the GPUs SLURM gave the job.

    Why it matters: more ranks than visible GPUs fail with "invalid device ordinal" at
    startup; fewer leave GPUs idle.

    Example:
        CUDA_VISIBLE_DEVICES=0,1 bash speedrun.sh     # speedrun hard-codes 8

    How to fix: ``--nproc_per_node=$SLURM_GPUS_ON_NODE`` (or the visible count).
    """
    visible, source = _visible_gpus(ctx)
    if script.directives and not ctx.environ.get("SLURM_JOB_ID"):
        raise Skip("not inside the job's allocation: its GPUs are not visible here")
    for inv in script.all_invocations:
        if not inv.launcher.endswith("torchrun"):
            continue
        raw = inv.nproc_per_node
        if not raw:
            continue
        n = script.expand(raw, inv.line, inv.file, job_env.start) if "$" in raw else raw
        n = parse_count(n)
        if n is None:
            continue
        if n > visible:
            yield Finding(
                f"torchrun starts {n} processes but only {visible} GPU(s) are visible{source}; ranks {visible}.. crash "
                "with 'invalid device ordinal'",
                path=inv.file,
                line=inv.line,
                fix=f"--nproc_per_node={visible}",
            )
        elif n < visible:
            yield Finding(
                f"torchrun starts {n} processes but {visible} GPUs are visible{source}: {visible - n} stay idle",
                path=inv.file,
                line=inv.line,
                fix=f"--nproc_per_node={visible}",
                severity=Severity.WARNING,
            )


def _gpu_memory(ctx) -> tuple[int | None, str]:
    gpus = ctx.get("gpus", None)
    if gpus:
        g = min(gpus, key=lambda g: g.memory_bytes)
        return g.memory_bytes, g.name
    cfg = ctx.config.get("gpu") or {}
    memory = cfg.get("memory-gib")
    if isinstance(memory, (int, float)) and not isinstance(memory, bool) and 0 < memory < float("inf"):
        return int(memory * GIB), cfg.get("type", "configured GPU")
    from preflight.gputable import by_name

    model = by_name(str(cfg["type"])) if cfg.get("type") else None
    if model is not None:
        return int(model.memory_gib * GIB), f"{model.name} (config gpu.type)"
    try:
        job_env = ctx.get("job_env", None)
    except Exception:
        job_env = None
    model, where = requested_gpu(job_env) if job_env is not None else (None, "")
    if model is not None:
        return int(model.memory_gib * GIB), f"{model.name} ({where})"
    return None, ""


@check("GPU003", "gpu-memory-insufficient", severity="error")
def gpu_memory_insufficient(ctx, plan, profile) -> Iterator[Finding]:
    """
    What it checks: the estimated peak memory of base training (weights, grads, optimizer
    state, logits and activations for depth x device batch) against the smallest GPU's
    memory (visible GPUs, ``gpu: {memory-gib: ...}`` or ``gpu: {type: ...}`` in config, or the model
    the job requests: ``--gres=gpu:a100:8``, ``--gpus=l40s:1``, ``--constraint``, the partition).
    A job that trains no base model (SFT from a checkpoint) is skipped: its depth is the checkpoint's.

    Why it matters: an OOM at the first step wastes the queue wait; upstream d20 with device
    batch 32 needs ~74 GiB, so 40/48 GB cards must lower ``--device_batch_size``.

    Example:
        torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20   # on 8x A100 40GB

    How to fix: halve ``--device_batch_size`` until it fits (gradient accumulation keeps the
    total batch), e.g. ``--device_batch_size=16``.
    """
    if not any(p.name == "base" for p in plan.phases):
        # an SFT-only job: the model and its depth come from a checkpoint, the estimate is base training's
        raise Skip("the script trains no base model (the estimate is base training's)")
    mem, name = _gpu_memory(ctx)
    if mem is None:
        raise Skip("no GPU visible, no gpu.memory-gib in config and no GPU model in the job's request")
    need = plan.memory_per_gpu
    if need <= mem * 0.97:
        return
    shape = model_shape(plan.depth, plan.vocab_size, plan.seq_len)
    dbs = plan.device_batch_size
    while dbs > 1 and memory_estimate_bytes(shape, dbs) > mem * 0.97:
        dbs //= 2
    fits = memory_estimate_bytes(shape, dbs) <= mem * 0.97
    fix = (
        f"pass --device_batch_size={dbs} to the training phases (est. {memory_estimate_bytes(shape, dbs) / GIB:.1f} GiB)"
        if fits
        else "use a smaller --depth or GPUs with more memory"
    )
    from preflight.causes import respell_flags
    from preflight.checks.flags import checkout_or_none

    yield Finding(
        f"d{plan.depth} with device batch {plan.device_batch_size} needs ~{need / GIB:.1f} GiB per GPU, "
        f"but {name} has {mem / GIB:.1f} GiB: base training will run out of memory",
        fix=respell_flags(fix, profile, checkout_or_none(ctx), "base"),
    )


@check("GPU004", "bf16-unsupported", severity="error")
def bf16_unsupported(gpus) -> Iterator[Finding]:
    """
    What it checks: GPUs with compute capability below 8.0 (pre-Ampere: V100, T4, GTX 10xx),
    which have no bf16 tensor cores.

    Why it matters: nanochat trains under ``autocast(bfloat16)`` with a bf16 embedding;
    older GPUs emulate it very slowly or fail in the kernels (FlashAttention).

    Example:
        GPU 0: Tesla V100-SXM2-32GB (compute capability 7.0)

    How to fix: run on A100/H100-class GPUs (sm80+), or use a trainer build that runs in
    fp16/fp32 (Era D: ``NANOCHAT_DTYPE=float32``).
    """
    for g in gpus:
        if g.bf16 is False:
            yield Finding(
                f"GPU {g.index} {g.name} (compute capability {g.compute_cap[0]}.{g.compute_cap[1]}) "
                "has no bf16 support: training is emulated or fails",
                fix="request sm80+ GPUs (A100, H100, H200)",
            )
