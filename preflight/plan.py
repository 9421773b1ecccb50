"""The run plan: what the job will compute, store and cost, from depth and the profile.

nanochat's own arithmetic:
    model_dim = depth * aspect_ratio (64); heads = ceil(model_dim / head_dim (128))
    params    = 12 * L * C^2 + 2 * Vp * C              (blocks + wte + untied lm_head; Vp = vocab padded to 64)
    FLOPs/tok = 6 * (params - wte) + 12 * L * H * hd * T
    iterations = (ratio * params) // total_batch_size ; tokens = iterations * total_batch_size
For the classic d20 speedrun: 560,988,160 params, 3.491758e+09 FLOPs/token, 21,400 iterations,
11,219,763,200 tokens. Later eras change the model (value embeddings, windows) and the batch
(auto-sized); the plan then uses the same formula as an estimate and says so.

Shards -- the rule is explicit here because upstream rounds by hand:
    raw        = tokens * chars_per_token / chars_per_shard        (d20: 11.22e9 * 4.8 / 250e6 = 215.4)
    train_min  = ceil(raw / usable_fraction)                        (216; Era B crops 35%: / 0.65)
    minimum    = train_min + 1 validation shard                     (217: the last file is val)
    recommended = ceil_to(ceil_to(ceil(raw) * headroom, round_to) / usable_fraction, 10)
                = ceil_to(216 * 1.1 = 237.6, 40) = 240              ("round up to 240 for safety")
                  Era B: 240 / 0.65 = 369.2 -> 370                  ("240 / (1 - 0.35) = 370 shards")
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.gputable import gpu_in_script, job_partition_gpu, lookup, other_accelerator_in_script
from preflight.model_size import auto_batch_size, memory_estimate_bytes, model_shape, peak_flops
from preflight.plan_launches import (
    evaluates_only,
    foreign_launches,
    phases_run,
    trainer_invocations,
    training_invocation,
    world_size_from,
)
from preflight.plan_model import PhasePlan, Plan
from preflight.units import parse_count

# peak FLOP/s and memory per GPU model: preflight/gputable.py (the one table)
DEFAULT_GPU = "H100"
# fp32 matmul throughput of one CPU training process (a rough figure for a few cores with AVX2/AVX-512);
# with the configured MFU it gives minutes-scale estimates for the tiny CPU runs, not GPU hours
CPU_PEAK_FLOPS = 1e11
# classic d20 (nanochat's own numbers): the reference the profiles' typical runs describe
REF_D20_FLOPS_PER_TOKEN = 3.491758e9
REF_D20_TOKENS = 11_219_763_200
# base training below this share of a d20's compute is a smoke test (CI, a laptop), whose later phases are as small
SMOKE_RUN_SCALE = 1e-3
BYTES_PER_SHARD = 100e6  # ~250M chars of zstd parquet
EVAL_BUNDLE_BYTES = 2 * 162e6  # the zip stays next to the unpacked bundle
EVAL_BUNDLE_FILES = 80


def requested_gpu(job_env: Any):
    """(GPUModel, where) the job asks SLURM for (--gres=gpu:TYPE:N, --gpus, --constraint, --partition)."""
    from preflight.gputable import requested_model

    return requested_model(getattr(job_env, "sbatch", None) or {})


def shard_rule(profile, tokens: str = "tokens") -> str:
    """How many training shards a token count needs, in words: TOKENS x chars/token / chars/shard / usable."""
    ds = profile.dataset if profile is not None else {}
    cps, cpt, usable = ds.get("chars_per_shard", 250e6), ds.get("chars_per_token", 4.8), ds.get("usable_fraction", 1.0)
    return f"{tokens} x {cpt} chars/tok / {cps:.3g} chars/shard" + (f" / {usable}" if usable != 1.0 else "")


def ceil_to(x: float, multiple: int) -> int:
    return int(math.ceil(x / multiple - 1e-9) * multiple)


# -- inputs from the script (the launches themselves: preflight.plan_launches) ------------------
def _flag_value(inv: Any, key: str) -> str | None:
    f = inv.flag(key) if inv is not None else None
    return f.value if f is not None else None


def _num(text: str | None, kind=int) -> Any:
    if text is None:
        return None
    try:
        val = kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
    except (TypeError, ValueError, OverflowError):  # --depth=1e999
        return None
    return None if isinstance(val, float) and not math.isfinite(val) else val


def _checkout_entry(checkout: Any, inv: Any) -> Any:
    """The checkout's own entry point that inv launches (its flags, what its source does); None where unknown."""
    try:
        return checkout.entry(inv.entry, inv.script_file) if checkout is not None and inv is not None else None
    except OSError:
        return None


def _checkout_default(checkout: Any, inv: Any, key: str, kind=int) -> tuple[Any, str] | None:
    """(value, where) of the default the checkout's own entry point declares for key."""
    ep = _checkout_entry(checkout, inv)
    default = ep.numeric_default(key) if ep is not None else None
    value = _num(str(default), kind) if default is not None else None
    return (value, f"default of {Path(ep.path).name} in the checkout") if value is not None else None


def _checkout_auto(checkout: Any, inv: Any, key: str) -> str | None:
    """The checkout's entry point file where it declares key with a default of -1 or 0 (sized at run time)."""
    ep = _checkout_entry(checkout, inv)
    opt = ep.spelled(key) if ep is not None and ep.ok else None
    default = ep.flags[opt].default if opt else None
    auto = isinstance(default, int) and not isinstance(default, bool) and default <= 0
    return Path(ep.path).name if auto else None


def _horizon_rules(profile: Any, checkout: Any, inv: Any) -> tuple[bool, bool, dict, str]:
    """(ratio counts the scaling params, total batch auto-sized, the auto-size rule, where that was read): the
    checkout's own base_train where given, else the era profile's base_horizon."""
    rules = profile.data.get("base_horizon") or {}
    scaling, auto, where = rules.get("params") == "scaling", bool(rules.get("auto_batch")), f"profile {profile.name}"
    ep = _checkout_entry(checkout, inv)
    if ep is not None and ep.ok:
        scaling, auto, where = ep.scaling_params, ep.batch_power_of_two, f"{Path(ep.path).name} in the checkout"
    rule = rules.get("auto_batch_rule") or {}
    return scaling, auto and bool(rule), rule, where


def _alternative_defaults(profile: Any, key: str) -> str:
    """The other eras the script could be written for whose default for key differs: 'argparse-dash: 8'."""
    mine = profile.defaults.get(key)
    out = []
    for alt in profile.alternative_profiles():
        if key in alt.defaults and alt.defaults[key] != mine:
            out.append(f"{alt.variant or alt.name}: {_shown(alt.defaults[key])}")
    return ", ".join(out)


def _shown(value: Any) -> str:
    return "auto-sized" if value is None else str(value)


def build_plan(
    profile: Any,
    script: Any = None,
    job_env: Any = None,
    gpus: Any = None,
    config: Any = None,
    environ: dict | None = None,
    partition_gpu: tuple[Any, str] = (None, ""),
    base_inv: Any = None,
    checkout: Any = None,
) -> Plan:
    """The plan of the script's (first) base run, or of base_inv: one run of a sweep. A flag the script does not
    pass takes the default the checkout's own base_train declares, else the era profile's."""
    config = config or {}
    environ = environ or {}
    d = profile.defaults
    base_inv = base_inv or training_invocation(script, profile, "base")
    # a job that trains no base model (mid or SFT from a checkpoint): its own trainer's flags size the run
    flag_inv = base_inv
    if flag_inv is None and script is not None and getattr(script, "ok", False):
        flag_inv = next(iter(trainer_invocations(script, profile)), None)
    sources: dict[str, str] = {}
    assumptions: list[str] = []
    era_dependent: dict[str, str] = {}  # defaults taken from a guessed era that another candidate era sets otherwise

    def passed(key: str, inv: Any = None) -> str | None:
        """The value the script passes for key (to the trainer, or to ``inv``), its variables expanded where the
        script knows them."""
        inv = inv if inv is not None else flag_inv
        raw = _flag_value(inv, key)
        if raw is not None and "$" in raw and script is not None:
            raw = script.expand(raw, inv.line, inv.file, job_env.start if job_env else environ)
        return raw

    def pick(key: str, kind=int) -> Any:
        given = passed(key)
        val = _num(given, kind)
        if val is not None:
            sources[key] = f"script line {flag_inv.line}"
            return val
        if given is not None and "$" in given:  # --depth=$DEPTH with DEPTH set (or not) only when the job runs
            assumptions.append(
                f"{flag_inv.flag(key).raw} (script line {flag_inv.line}) is known only when the job runs: this plan "
                "takes the default"
            )
        tag = (passed("model_tag") or "") if key == "depth" and base_inv is None else ""
        # nanochat tags a model d<depth>; a run named by its user often keeps it (ginjinha_d11_ratio40)
        if m := re.fullmatch(r"d(\d{1,3})", tag) or re.search(r"(?:^|[_-])d(\d{1,3})(?:[_-]|$)", tag):
            sources[key] = f"model tag {tag} (script line {flag_inv.line})"
            if m.group(0) != tag:
                assumptions.append(f"depth {m.group(1)}, from the model tag {tag} (the job trains no base model)")
            return int(m.group(1))
        own = _checkout_default(checkout, flag_inv, key, kind)
        if own is not None:
            sources[key] = own[1]
            return own[0]
        if key == "device_batch_size" and (auto := _checkout_auto(checkout, flag_inv, key)):
            assumptions.append(
                f"{key} {d.get(key)}, the era's default: {auto} sizes it when the job runs (its default is -1 or 0)"
            )
        sources[key] = f"profile {profile.name} default"
        if key == "depth" and base_inv is None and flag_inv is not None:
            assumptions.append(
                f"depth {d.get(key)}, the era's default: the job trains no base model and names no depth (its model "
                "tag, --model-tag=d<N>, would)"
            )
        other = _alternative_defaults(profile, key)
        if other:
            era_dependent[key] = (
                f"{key} {_shown(d.get(key))}: the {profile.variant or profile.name} era's default, an era guessed "
                f"from the script alone ({other}; --checkout tells)"
            )
        return d.get(key)

    # a word of the launch whose value is known only when the job runs (`"${ARGS[@]}"` built from a variable set
    # elsewhere): whatever flags it holds are not in this plan, which takes the defaults for them
    opaque = next(
        (f.raw for f in (flag_inv.flags if flag_inv is not None else []) if f.style == "positional" and "$" in f.raw),
        None,
    )
    if opaque is not None:
        assumptions.append(
            f"{opaque[:80]} (script line {flag_inv.line}) is known only when the job runs: the flags in it are not in "
            "this plan, which takes the defaults for them"
        )
    depth = pick("depth")
    seq = pick("max_seq_len")
    dbs = pick("device_batch_size")
    total = pick("total_batch_size")
    ratio = pick("target_param_data_ratio", float)
    num_iters = _num(passed("num_iterations", base_inv)) if base_inv is not None else None
    vocab = d.get("vocab_size", 65536)
    tok_inv = training_invocation(script, profile, "tokenizer")
    tok_vocab = _num(passed("vocab_size", tok_inv)) if tok_inv is not None else None
    if tok_vocab and tok_vocab > 0:
        vocab = tok_vocab
        sources["vocab_size"] = f"script line {tok_inv.line} (tokenizer training)"
    # the width: --aspect-ratio / --head-dim (argparse eras), a fork's --model-dim, and the checkout's rounding rule
    aspect, head_dim = pick("aspect_ratio") or 64, pick("head_dim") or 128
    width = _num(passed("model_dim")) if flag_inv is not None else None
    if width:
        sources["model_dim"] = f"script line {flag_inv.line}"
    ep = _checkout_entry(checkout, base_inv or flag_inv)
    nudged = bool(ep is not None and ep.ok and ep.nudged_dim)
    shape = model_shape(depth, vocab, seq, aspect, head_dim, width, nudged)
    scaling, auto_batch, rule, rules_from = _horizon_rules(profile, checkout, base_inv or flag_inv)
    auto_sized = False
    if total is None or total <= 0:
        era_dependent.pop("total_batch_size", None)
        auto_sized = auto_batch
        if auto_batch:
            reference = model_shape(rule["reference_depth"], vocab, seq, aspect, head_dim, None, nudged)
            total = auto_batch_size(shape, reference, rule)
            sources["total_batch_size"] = f"auto-sized as base_train does ({rules_from})"
        else:
            total = 524288
            assumptions.append(
                "total batch 524,288 tokens ("
                + (
                    f"{Path(ep.path).name} in the checkout sizes it in a way preflight does not read)"
                    if ep is not None and ep.ok
                    else "base_train auto-sizes it from 2026-02-06: --checkout tells)"
                )
            )
    if profile.data.get("era") in ("C", "D"):
        assumptions.append(
            "memory and checkpoint sizes from the classic parameter count (later eras add value embeddings)"
        )
    # what the ratio counts: every parameter, or (2026) the block matrices + lm_head
    params = shape.scaling_params if scaling else shape.params
    if scaling:
        sources["ratio_params"] = f"block matrices + lm_head ({rules_from})"
    # base_train's own order: --num_iterations, else --target_flops, else --target_param_data_ratio
    flops_passed = passed("target_flops")
    target_flops = _num(flops_passed, float)
    horizon = ""
    if num_iters and num_iters > 0:
        iterations = num_iters
        era_dependent.pop("target_param_data_ratio", None)  # not used
    elif target_flops and target_flops > 0:
        iterations = round(target_flops / (shape.flops_per_token * total))
        era_dependent.pop("target_param_data_ratio", None)
        ratio = iterations * total / params
        horizon = f"--target-flops {target_flops:g}: ratio {ratio:.2f}"
    elif flops_passed is not None and target_flops is None:
        iterations = 0
        era_dependent.pop("target_param_data_ratio", None)
        horizon = f"--target-flops {flops_passed}: set when the job runs"
        assumptions.append(f"no step count: the horizon is --target-flops {flops_passed}, known only when the job runs")
    elif ratio is not None and ratio > 0:
        iterations = int(ratio * params) // total
    else:
        iterations = 0
        assumptions.append(
            "no training horizon: num_iterations, target_flops and target_param_data_ratio are all <= 0 "
            "(base_train refuses to start)"
        )
    if base_inv is None:  # no base run: its horizon (and the era's default for it) plans nothing here
        era_dependent.pop("target_param_data_ratio", None)
    assumptions += era_dependent.values()
    tokens = iterations * total

    # GPUs: count from the script, type from the GPU inventory / config
    nproc, nodes, src = world_size_from(script, job_env, flag_inv, environ)
    cfg_gpu = dict(config.get("gpu") or {})
    if nproc is None:
        nproc = cfg_gpu.get("count") or (len(gpus) if gpus else None) or 8
        src = "config gpu.count" if cfg_gpu.get("count") else ("visible GPUs" if gpus else "assumed 8 (speedrun)")
        if not cfg_gpu.get("count") and not gpus:
            assumptions.append("8 GPUs per node (no count in the script or config)")
    sources["world_size"] = src
    if flag_inv is not None and flag_inv.nnodes and nodes == 1 and not script.active_directives():
        # a per-node script with no #SBATCH lines (srun runs it on each node): its caller decides the node count
        raw = flag_inv.nnodes
        value = script.expand(raw, flag_inv.line, flag_inv.file, job_env.start if job_env else environ)
        if parse_count(value or "") is None:
            assumptions.append(
                f"1 node: torchrun --nnodes={raw} (line {flag_inv.line}) is known only when the job runs (this script "
                "has no #SBATCH lines: its caller sets it); the time divides by the node count"
            )
    world = nproc * nodes
    lines = getattr(script, "lines", None) or []
    named_gpu, other = gpu_in_script(lines), other_accelerator_in_script(lines)
    # the script's own name ("speedrun_1x3090.sh") is its author's; a comment may be upstream's header, copied
    by_name = lookup(Path(script.path).stem) if script is not None and getattr(script, "path", None) else None
    if by_name is not None:
        named_gpu = (by_name, f"its file name, {Path(script.path).name}")
    gpu_name = None
    if gpus:
        gpu_name = gpus[0].name
        sources["gpu"] = "visible GPU"
    elif cfg_gpu.get("type"):
        gpu_name = cfg_gpu["type"]
        sources["gpu"] = "config gpu.type"
    elif job_env is not None and requested_gpu(job_env)[0] is not None:
        model, where = requested_gpu(job_env)
        gpu_name = model.name
        sources["gpu"] = where
    elif partition_gpu[0] is not None:
        gpu_name, sources["gpu"] = partition_gpu[0].name, partition_gpu[1]
    elif named_gpu[0] is not None and other is None:
        # no GPU visible, configured or requested by model: the one the script's own comment names ("# ... on a
        # dual 4090 rig") beats the assumed one
        gpu_name, sources["gpu"] = named_gpu[0].name, f"named in the script ({named_gpu[1]})"
        assumptions.append(f"{gpu_name} GPUs, as the script says ({named_gpu[1]}; set gpu.type in config)")
    else:
        gpu_name = DEFAULT_GPU
        sources["gpu"] = "assumed"
        assumptions.append(
            f"{DEFAULT_GPU} GPUs (none visible here; set gpu.type in config)"
            if other is None
            else f"{DEFAULT_GPU} GPUs, but the script runs on {other[0]} ({other[1]}), which it names no model of: "
            "the time, cost and memory are an H100's, not theirs (set gpu.type in config where the table has it)"
        )
    device_flag = (_flag_value(flag_inv, "device_type") or "").lower() if flag_inv is not None else ""
    no_gpus_asked = job_env is not None and not job_env.gpus_per_node and not cfg_gpu.get("count")
    cuda = named_gpu[1] if device_flag != "cpu" else None  # where the script names its GPU or sets CUDA up
    cuda = cuda or ("--device_type=cuda" if device_flag == "cuda" else None)  # the trainer is told to use a GPU
    if cuda is not None and no_gpus_asked and not gpus and flag_inv is not None and flag_inv.launcher == "python":
        # a workstation script (no GPU request, one python process) that names its GPU or sets CUDA up: nanochat
        # autodetects the GPU (the model a comment names was taken above; this line quotes that comment)
        assumptions[:] = [a for a in assumptions if "as the script says" not in a]
        assumptions.append(f"one GPU: the script asks SLURM for none but runs on one ({cuda})")
    elif device_flag == "cpu" or (
        no_gpus_asked and flag_inv is not None and flag_inv.launcher == "python" and not gpus
    ):
        # a CPU job: no GPUs requested and a single-process trainer (or --device_type=cpu)
        gpu_name = "CPU"
        sources["gpu"] = "--device_type=cpu" if device_flag == "cpu" else "no GPUs requested, plain python launcher"
        assumptions[:] = [a for a in assumptions if "GPUs (none visible" not in a]
        assumptions.append(f"CPU training at {CPU_PEAK_FLOPS:.0e} FLOP/s peak per process")
    peak = CPU_PEAK_FLOPS if gpu_name == "CPU" else peak_flops(gpu_name)
    if peak is None:
        assumptions.append(f"peak FLOPs of {gpu_name!r} unknown: no time estimate")
    mfu = float(config.get("mfu", 0.4) or 0.4)
    rate = float(config.get("hourly-rate", 3.0) if config.get("hourly-rate") is not None else 3.0)
    per_step = dbs * seq * world
    if auto_sized and ep is not None and ep.ok and ep.batch_rounded and per_step > 0 and total % per_step:
        rounded = max(per_step, round(total / per_step) * per_step)
        assumptions.append(
            f"auto batch {total:,} rounded to {rounded:,}, a multiple of the {per_step:,}-token micro-batch, as "
            f"{Path(ep.path).name} in the checkout does"
        )
        total = rounded
    grad_accum = total // per_step if per_step and total % per_step == 0 else None

    ds = profile.dataset
    cps, cpt = ds.get("chars_per_shard", 250e6), ds.get("chars_per_token", 4.8)
    usable = ds.get("usable_fraction", 1.0)
    raw = tokens * cpt / cps
    train_min = math.ceil(raw / usable - 1e-9)
    shards_min = train_min + 1
    padded = math.ceil(raw - 1e-9) * ds.get("headroom", 1.1)
    if padded >= ds.get("round_to", 40):
        recommended = ceil_to(ceil_to(padded, ds.get("round_to", 40)) / usable, 10)
    else:  # small runs: headroom, the val shard, no rounding up to speedrun-sized blocks
        recommended = max(shards_min, math.ceil(padded / usable - 1e-9) + 1)
    rule = f"ceil({shard_rule(profile, f'{tokens:.3g} tok')}) = {train_min} train + 1 val"

    wte = shape.wte_params
    model_bytes = (params - wte) * 4 + wte * 2
    optim_total = 12 * depth * shape.model_dim**2 * 4 + wte * 2 * 4 + wte * 2 * 2
    run = phases_run(script, profile)
    phases: list[PhasePlan] = []
    fpt = shape.flops_per_token
    run_scale = min(1.0, (fpt * tokens) / (REF_D20_FLOPS_PER_TOKEN * REF_D20_TOKENS))
    throughput = peak * world * mfu if peak else None
    if throughput and nodes > 1:
        # the interconnect between nodes is slower than NVLink inside one: gradients cross it every step
        eff = float(config.get("internode-efficiency", 0.9) or 0.9)
        throughput *= eff
        assumptions.append(f"{eff:.0%} scaling efficiency across {nodes} nodes (config internode-efficiency)")
    for name in run:
        spec = profile.phase(name) or {}
        est = spec.get("estimate") or {}
        pp = PhasePlan(name=name, modules=list(spec.get("modules") or []), checkpoint_dir=spec.get("checkpoint_dir"))
        inv = training_invocation(script, profile, name) if name != "base" else base_inv
        explicit_steps = _num(passed("num_iterations", inv)) if inv is not None and name != "base" else None
        eval_only = inv is None and script is not None and getattr(script, "ok", False)
        if name == "base":  # `base_eval` alone loads a base model another job trained; a fork's own trainer trains
            eval_only = eval_only and evaluates_only(script, profile, "base")
        if eval_only:  # `chat_eval -i mid` alone: the phase's evaluation, no training and no checkpoint written
            pp.note = f"evaluation only: the script does not run {spec.get('train_module') or 'its trainer'}"
            pp.checkpoint_dir, pp.eval_only = None, True
        elif name == "base":
            pp.steps, pp.tokens, pp.exact_steps = iterations, tokens, True
            resume = _num(passed("resume_from_step", inv)) if inv is not None else None
            if resume and iterations and 0 < resume < iterations:  # this job trains only the steps after it
                pp.tokens, pp.resume_from = (iterations - resume) * total, resume
        elif explicit_steps and explicit_steps > 0:
            per_step = _num(passed("total_batch_size", inv)) or total
            pp.steps, pp.tokens, pp.exact_steps = explicit_steps, explicit_steps * per_step, True
            pp.note = f"--num_iterations on script line {inv.line}"
        elif est.get("steps"):
            # data-driven phases: an epoch of the era's task mixture in the phase's own batch (not base training's), as
            # many steps whatever the model (a smaller one makes each step cheaper, not fewer); a smoke run's later
            # phases are cut down with it (its scripts shrink their data too)
            smoke = run_scale < SMOKE_RUN_SCALE
            pp.steps = max(1, int(round(est["steps"] * (run_scale if smoke else 1))))
            pp.tokens = pp.steps * int(est.get("tokens_per_step", 0))
            pp.note = (
                f"steps of the era's own mixture and batch, scaled x{run_scale:.2g} with this smoke run"
                if smoke
                else "steps of the era's own mixture and batch (a typical run; --num_iterations sets them)"
            )
        if pp.tokens:
            pp.flops = float(fpt) * pp.tokens
        # evaluation/setup overheads of a d20 run shrink with the model for smaller ones
        fixed = float(est.get("minutes_fixed", 0)) * 60 * min(1.0, fpt / REF_D20_FLOPS_PER_TOKEN)
        if throughput:
            pp.seconds = (pp.flops or 0) / throughput + fixed
        if pp.checkpoint_dir:
            shards = spec.get("optimizer_shards", "none")
            pp.model_bytes = model_bytes
            pp.files = 2
            if shards == "per-rank":
                pp.optim_files, pp.optim_bytes = world, optim_total
            elif shards in ("rank0", "single"):
                pp.optim_files, pp.optim_bytes = 1, optim_total // max(1, world) if shards == "rank0" else optim_total
            pp.files += pp.optim_files
            every = _num(passed("save_every", inv)) if name == "base" and inv is not None else None
            if every and every > 0 and pp.steps and pp.steps > every:
                # base_train saves at every multiple of N before its last step (after the step it resumed from),
                # and at the last: all are kept
                pp.saves = (pp.steps - 1) // every - (pp.resume_from or 0) // every + 1
        phases.append(pp)
    foreign = [
        f"{entry} (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"
        for entry, lines in foreign_launches(script, profile)
    ]
    if foreign:
        assumptions.append(
            f"not counted: {', '.join(foreign)}: "
            + ("an entry point" if len(foreign) == 1 else "entry points")
            + " of no phase preflight knows (a fork's own), whose time, memory and checkpoints are not in this plan"
        )
    total_seconds = sum(p.seconds for p in phases if p.seconds is not None) if throughput else None
    # a price per GPU-hour says nothing of a CPU run
    cost = total_seconds / 3600 * world * rate if total_seconds is not None and gpu_name != "CPU" else None

    # base training reads them (a base phase that only evaluates, or no phase at all: the profile's whole run)
    shards_on_disk = recommended if any(p.name == "base" and not p.eval_only for p in phases) or not phases else 0
    if ds.get("own") and isinstance(ds.get("max_shard"), int):  # a fork's own corpus has no more files than that
        shards_on_disk = min(shards_on_disk, ds["max_shard"] + 1)
    disk = (
        shards_on_disk * BYTES_PER_SHARD
        + EVAL_BUNDLE_BYTES
        + sum(p.saves * (p.model_bytes + p.optim_bytes) for p in phases)
    )
    files = shards_on_disk + EVAL_BUNDLE_FILES + sum(p.saves * p.files for p in phases) + 20
    return Plan(
        profile=profile.name,
        depth=depth,
        model_dim=shape.model_dim,
        n_head=shape.n_head,
        vocab_size=vocab,
        seq_len=seq,
        total_batch_size=total,
        device_batch_size=dbs,
        ratio=ratio,
        horizon=horizon,
        params=params,
        wte_params=wte,
        flops_per_token=fpt,
        iterations=iterations,
        tokens=tokens,
        grad_accum=grad_accum,
        world_size=world,
        nodes=nodes,
        gpu_name=gpu_name,
        peak_flops=peak,
        mfu=mfu,
        hourly_rate=rate,
        shards_raw=raw,
        shards_train_min=train_min,
        shards_min=shards_min,
        shards_recommended=recommended,
        shard_rule=rule,
        val_shard=ds.get("val_shard", "last"),
        phases=phases,
        total_seconds=total_seconds,
        cost=cost,
        disk_bytes=int(disk),
        disk_files=int(files),
        memory_per_gpu=memory_estimate_bytes(shape, dbs),
        assumptions=assumptions,
        sources=sources,
    )


def plan_fact(ctx: Any) -> Plan:
    profile = ctx.get("profile")
    script = ctx.get("script", None)
    if script is not None and not script.ok:
        script = None
    job_env = ctx.get("job_env", None)
    gpus = ctx.get("gpus", None)
    partition_gpu = job_partition_gpu(ctx, job_env) if not gpus else (None, "")
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    try:
        from preflight.plan_launches import why_nothing_to_plan
        from preflight.plan_sweep import base_runs, runs_plan

        runs = base_runs(script, profile)
        if len(runs) > 1:  # a depth sweep, a scaling-law grid, alternatives: one plan
            plans = [
                build_plan(
                    profile,
                    script,
                    job_env,
                    gpus,
                    ctx.config,
                    ctx.environ,
                    partition_gpu,
                    base_inv=run,
                    checkout=checkout,
                )
                for run, _path in runs
            ]
            return runs_plan(plans, runs)
        plan = build_plan(
            profile, script, job_env, gpus, ctx.config, ctx.environ, partition_gpu=partition_gpu, checkout=checkout
        )
        if not plan.phases and script is not None:
            plan.why_empty = why_nothing_to_plan(script)
        return plan
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise FactUnavailable(f"cannot plan this run: {exc}") from None
