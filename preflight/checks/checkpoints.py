"""CK: checkpoint dirs after a run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from preflight.facts import Skip
from preflight.model import Finding
from preflight.phases import train_script_of
from preflight.registry import check


def _phases(checkpoints) -> Iterator[tuple[str, Any]]:
    for phase, pc in checkpoints.phases.items():
        if phase in checkpoints.expected or pc.exists:
            yield phase, pc


def _base_problem(checkpoints) -> Finding | None:
    if checkpoints.error:
        return Finding(
            f"base dir {checkpoints.base_dir}: {checkpoints.error}",
            path=checkpoints.base_dir,
            fix=f"chmod -R u+rX {checkpoints.base_dir} (or run as the job's user)",
        )
    return None


@check("CK001", "checkpoint-dir-missing", stage="post", severity="error")
def checkpoint_dir_missing(checkpoints) -> Iterator[Finding]:
    """
    What it checks: every expected training phase (base, mid, sft, and rl when planned) has its
    checkpoint dir ``BASE/<stage>_checkpoints/<model_tag>/``.

    Why it matters: a missing dir means the phase never saved (it crashed, was cancelled, or the
    job's NANOCHAT_BASE_DIR differs); every later phase that loads it fails with FileNotFoundError.

    Example:
        BASE/base_checkpoints/d20/   present
        BASE/mid_checkpoints/        absent  -> mid never saved; chat_sft then fails

    How to fix: find the phase's cause in the log (postflight's phase table), fix it, and rerun
    from that phase (the resume plan lists the commands).
    """
    problem = _base_problem(checkpoints)
    if problem:
        yield problem
        return
    if not checkpoints.base_exists:
        yield Finding(
            f"base dir {checkpoints.base_dir} ({checkpoints.base_named}) does not exist: no phase saved anything there",
            path=checkpoints.base_dir,
            fix="pass the job's NANOCHAT_BASE_DIR with --base-dir",
        )
        return
    for phase in checkpoints.expected:
        pc = checkpoints.phases.get(phase)
        if pc is None:
            continue
        if pc.error:
            yield Finding(f"{phase}: {pc.error}", path=pc.stage_dir, fix=f"chmod -R u+rX {pc.stage_dir}")
        elif not pc.exists:
            yield Finding(
                f"{phase} phase wrote no checkpoint dir: {pc.stage_dir} is missing",
                path=pc.stage_dir,
                fix=f"check the {train_script_of(phase)} part of the log for its crash, then rerun from {phase}",
            )
        elif pc.dir is None or not pc.steps:
            where = pc.dir or pc.stage_dir
            yield Finding(
                f"{phase}: {where} holds no checkpoint (tags: {', '.join(pc.tags) or 'none'})",
                path=where,
                fix=f"rerun {train_script_of(phase)} (or pass the right --model_tag)",
            )


@check("CK002", "checkpoint-incomplete", stage="post", severity="error")
def checkpoint_incomplete(checkpoints) -> Iterator[Finding]:
    """
    What it checks: every ``model_NNNNNN.pt`` has its ``meta_NNNNNN.json`` and vice versa, and no
    ``model_*.pt`` name breaks nanochat's step parsing (e.g. ``model_000100_copy.pt``).

    Why it matters: loaders pick the largest step from the model files and then open that step's
    meta; an unpaired file makes chat_cli/chat_sft crash, and an odd name crashes find_last_step.

    Example:
        model_021400.pt   (no meta_021400.json: killed while saving)

    How to fix: delete the unpaired file so the previous complete step is used, or rerun the save.
    """
    for phase, pc in _phases(checkpoints):
        for step, sf in sorted(pc.steps.items()):
            if sf.model and not sf.meta:
                yield Finding(
                    f"{phase}: model_{step:06d}.pt has no meta_{step:06d}.json (interrupted save?)",
                    path=sf.model,
                    fix=f"rm {sf.model}  # or rerun the phase; loaders would pick this step and crash",
                )
            elif sf.meta and not sf.model:
                yield Finding(
                    f"{phase}: meta_{step:06d}.json has no model_{step:06d}.pt",
                    path=sf.meta,
                    fix=f"rm {sf.meta}  # or restore the model file",
                )
        for odd in pc.odd_files:
            yield Finding(
                f"{phase}: {odd} does not match model_NNNNNN.pt; nanochat's find_last_step crashes on it",
                path=odd,
                fix=f"move {odd} out of the checkpoint dir",
            )


@check("CK003", "checkpoint-partial", stage="post", severity="error")
def checkpoint_partial(checkpoints, ctx) -> Iterator[Finding]:
    """
    What it checks: the last complete checkpoint step of each phase against the planned step (the
    ledger's plan, else the log's ``Calculated number of iterations`` / step totals).

    Why it matters: a base dir holding only a periodic save (e.g. step 12000 of 21400) looks like a
    finished run to later phases, which then fine-tune an under-trained model.

    Example:
        base_checkpoints/d20/model_012000.pt   planned 21400

    How to fix: resume the phase with ``--resume_from_step=<last step>`` (base_train) or rerun it.
    """
    phases = ctx.get("phases", None)
    for phase, pc in _phases(checkpoints):
        if pc.last_step is None:
            continue
        planned = checkpoints.planned_steps.get(phase)
        if planned is None and phases is not None:
            v = phases.get(phase)
            planned = v.planned if v else None
        if planned is not None and pc.last_step < planned:
            yield Finding(
                f"{phase}: last complete checkpoint is step {pc.last_step}, planned {planned}",
                path=pc.last.model,
                data={"phase": phase, "step": pc.last_step, "planned": planned},
                fix=f"resume: --resume_from_step={pc.last_step} (see the resume plan)",
            )


@check("CK004", "optimizer-shards-missing", stage="post", severity="warning")
def optimizer_shards_missing(checkpoints, ctx) -> Iterator[Finding]:
    """
    What it checks: the optimizer files the era writes at the last step: one
    ``optim_NNNNNN_rankR.pt`` per rank for base (and Era D sft), rank 0 for mid, a single
    ``optim_NNNNNN.pt`` in Era A0.

    Why it matters: resuming needs every rank's shard for the same world size; a missing shard
    makes ``--resume_from_step`` fail on that rank.

    Example:
        optim_021400_rank0.pt ... rank5.pt present, rank6/rank7 missing (8 GPUs)

    How to fix: resume with the world size the shards were written for, or rerun the phase.
    """
    from preflight.ckpt import optim_rule
    from preflight.resume import job_world_size

    world = checkpoints.world_size or job_world_size(ctx, ctx.get("logs", None), checkpoints)[0]
    for phase, pc in _phases(checkpoints):
        sf = pc.last
        if sf is None:
            continue
        rule = optim_rule(checkpoints.profile, phase)
        if rule == "per-rank":
            if sf.optim_single and not sf.optim:
                continue  # Era A0 layout
            missing = [r for r in range(world) if r not in sf.optim]
        elif rule == "rank0":
            missing = [] if (0 in sf.optim or sf.optim_single) else [0]
        elif rule == "single":
            missing = [] if sf.optim_single else [0]
        else:
            continue
        if missing:
            names = ", ".join(f"optim_{sf.step:06d}_rank{r}.pt" for r in missing[:4]) + (
                " ..." if len(missing) > 4 else ""
            )
            yield Finding(
                f"{phase} step {sf.step}: {len(missing)} optimizer shard(s) missing for world size {world}: {names}",
                path=pc.dir,
                fix=f"resume only with all {world} shards present, or rerun {phase}",
            )


def _model_files(checkpoints) -> Iterator[tuple[str, Any, Any]]:
    for phase, pc in _phases(checkpoints):
        sf = pc.last
        if sf is not None:
            yield phase, pc, sf
        for step, other in pc.steps.items():  # a newer model without meta is what loaders may pick
            if other.model and not other.meta and (sf is None or step > sf.step):
                yield phase, pc, other


@check("CK005", "checkpoint-unloadable", stage="post", severity="error", cost="load")
def checkpoint_unloadable(checkpoints) -> Iterator[Finding]:
    """
    What it checks: the final model file of each phase opens: zip central directory, a readable
    ``data.pkl``, a storage record of the declared size for every tensor, and, with torch
    installed, ``torch.load(mmap=True, weights_only=True)`` (maps, reads no tensor data).

    Why it matters: a truncated file (job killed mid-save, disk full, quota) fails only when the
    next phase or chat_cli loads it, hours later.

    Example:
        model_021400.pt  1.1 GB of 2.1 GB: "failed finding central directory"

    How to fix: delete the broken file so the previous complete step is used, and rerun the save.
    """
    from preflight.ckpt import load_mmap
    from preflight.ckpt_raw import TORCH_EXTRA, record_problems, torch_available

    with_torch = torch_available()
    sound, found = 0, False
    for phase, pc, sf in _model_files(checkpoints):
        fc = pc.check_file(sf.model)
        if fc.unsafe:
            continue  # checkpoint-unsafe reports it; never torch.load an unsafe file
        if fc.error:
            found = True
            yield Finding(
                f"{phase}: {sf.model} cannot be loaded: {fc.error}",
                path=sf.model,
                fix=f"rm {sf.model} {sf.meta or ''} and rerun the {phase} save".strip(),
            )
            continue
        bad = record_problems(sf.model, fc.tensors or {})
        err = (bad[0] + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")) if bad else None
        if err is None and with_torch:
            err = load_mmap(sf.model)
        if err:
            found = True
            yield Finding(f"{phase}: {sf.model}: {err}", path=sf.model, fix=f"rm {sf.model} and rerun the {phase} save")
        else:
            sound += 1
        for _r, p in sorted(sf.optim.items()):
            ofc = pc.check_file(p, tensors=False)
            if ofc.error:
                found = True
                yield Finding(
                    f"{phase}: optimizer shard {p} is damaged: {ofc.error}",
                    path=p,
                    fix=f"rm {p}; resume cannot use step {sf.step}",
                )
    if not with_torch and sound and not found:
        raise Skip(
            f"load tier needs torch ({TORCH_EXTRA}); the zip directory, pickle opcodes and storage "
            f"record sizes of {sound} final model file(s) are sound; torch.load(mmap=True) would also "
            "prove that this torch build maps them"
        )


@check("CK006", "checkpoint-shape-mismatch", stage="post", severity="error", cost="header")
def checkpoint_shape_mismatch(checkpoints) -> Iterator[Finding]:
    """
    What it checks: tensor names and shapes in the model file (read from the pickle's opcodes, not
    loaded) against ``meta.model_config`` (2 + 6·L tensors, padded vocab Vp).

    Why it matters: a model file from another depth or vocab than its meta says fails strict
    ``load_state_dict`` in every later phase and in chat_cli.

    Example:
        meta: n_layer 20, n_embd 1280; file: transformer.h.*.attn.c_q.weight (768, 768)

    How to fix: pair the model with its own meta (same step, same dir), or retrain the phase.
    """
    from preflight.ckpt import shape_problems

    for phase, pc, sf in _model_files(checkpoints):
        if not sf.meta:
            continue
        fc = pc.check_file(sf.model)
        meta, err = pc.meta(sf.meta)
        if fc.tensors is None or err or not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
            continue
        problems = shape_problems(fc.tensors, meta["model_config"])
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            yield Finding(
                f"{phase}: {sf.model} does not match model_config of {sf.meta}: " + "; ".join(problems[:3]) + more,
                path=sf.model,
                fix="use the meta written with this model file, or retrain the phase",
            )


def _schema_names(profile: Any, phase: str, meta: dict) -> list[str]:
    era = getattr(profile, "name", "classic")
    if phase == "base":
        return ["base-cd"] if era in ("argparse", "no-mid", "current") else ["base-classic", "base-a0"]
    if phase == "sft":
        if era == "bundled":  # this project's trainer: classic keys, but null where MMLU/ARC were not run
            return ["sft-bundled"]
        return ["sft-d"] if era == "current" else ["sft-a"]
    return [phase]


@check("CK007", "checkpoint-meta-invalid", stage="post", severity="error")
def checkpoint_meta_invalid(checkpoints) -> Iterator[Finding]:
    """
    What it checks: each final ``meta_NNNNNN.json`` parses as JSON and validates against the era's
    schema in ``schemas/meta/``; ``step`` equals the filename's step; metrics are finite.

    Why it matters: loaders build the model from ``model_config`` and resume reads the dataloader
    and loop state from meta: a damaged meta breaks every later phase.

    Example:
        meta_021400.json: {"step": 21400, "val_bpb": NaN, "model_config": {...}   (truncated)

    How to fix: restore the meta from the log's values, or rerun the phase's final save.
    """
    import jsonschema

    from preflight import schemas

    for phase, pc in _phases(checkpoints):
        sf = pc.last
        metas = [s for s in pc.steps.values() if s.meta and not s.model]
        for target in ([sf] if sf else []) + metas:
            meta, err = pc.meta(target.meta)
            if err:
                yield Finding(f"{phase}: {target.meta} is {err}", path=target.meta, fix="rerun the phase's final save")
                continue
            if not isinstance(meta, dict):
                yield Finding(
                    f"{phase}: {target.meta} holds a {type(meta).__name__}, not an object",
                    path=target.meta,
                    fix="rerun the phase's final save",
                )
                continue
            errors = []
            for name in _schema_names(checkpoints.profile, phase, meta):
                v = jsonschema.Draft202012Validator(schemas.load_json(f"meta/{name}.json"))
                errs = sorted(v.iter_errors(meta), key=lambda e: list(e.absolute_path))
                if not errs:
                    errors = []
                    break
                errors.append((name, errs[0]))
            if errors:
                name, e = errors[0]
                where = "$" + "".join(f".{p}" for p in e.absolute_path)
                yield Finding(
                    f"{phase}: {target.meta} does not match schemas/meta/{name}.json at {where}: {e.message}",
                    path=target.meta,
                    fix="rerun the phase's final save (meta is written last)",
                )
                continue
            if "step" in meta and isinstance(meta["step"], int) and meta["step"] != target.step:
                yield Finding(
                    f"{phase}: {target.meta} says step {meta['step']}, its name says {target.step}",
                    path=target.meta,
                    fix="rename or rewrite the meta so both agree",
                )
            for key in ("val_bpb", "val_loss", "mmlu_acc", "arc_easy_acc"):
                val = meta.get(key)
                if isinstance(val, float) and not math.isfinite(val):
                    yield Finding(
                        f"{phase}: {target.meta} has {key} = {val}: training diverged",
                        path=target.meta,
                        fix="restart the phase from an earlier checkpoint with a lower learning rate",
                    )


@check("CK008", "checkpoint-unsafe", stage="post", severity="error", cost="header")
def checkpoint_unsafe(checkpoints) -> Iterator[Finding]:
    """
    What it checks: each final model and optimizer file's pickle references only torch's tensor
    rebuild functions and storage types (walked with ``pickletools``; never executed).

    Why it matters: a ``.pt`` file is a pickle; one that names ``os.system`` or any other callable
    runs code when a plain ``torch.load`` opens it. nanochat's own files never need that.

    Example:
        model_021400.pt -> data.pkl references posix.system

    How to fix: do not load the file; delete it and restore the checkpoint from a trusted copy.
    """
    for phase, pc, sf in _model_files(checkpoints):
        for p in [sf.model, *sf.optim.values(), *([sf.optim_single] if sf.optim_single else [])]:
            if not p:
                continue
            fc = pc.check_file(p, tensors=(p == sf.model))
            if fc.unsafe:
                yield Finding(
                    f"{phase}: {p} is not a plain tensor checkpoint ({fc.unsafe}); it was not loaded",
                    path=p,
                    fix=f"do not torch.load it; delete {p} and restore from a trusted copy",
                )


@check("CK009", "checkpoint-nonfinite", stage="post", severity="error", cost="deep")
def checkpoint_nonfinite(checkpoints) -> Iterator[Finding]:
    """
    What it checks: every zip CRC of the final model file and NaN/Inf in every tensor (with
    --deep; read with torch when installed, else from the storage records with numpy).

    Why it matters: bit rot or a diverged run produces files that load but generate garbage;
    only reading every byte finds them.

    Example:
        transformer.h.3.mlp.c_fc.weight: NaN values

    How to fix: resume from an earlier finite checkpoint (lower LR) or restore the file.
    """
    from preflight.ckpt import deep_scan

    for phase, pc, sf in _model_files(checkpoints):
        fc = pc.check_file(sf.model)
        if fc.unsafe or fc.error:
            continue
        for problem in deep_scan(sf.model, fc.tensors)[:3]:
            yield Finding(
                f"{phase}: {sf.model}: {problem}",
                path=sf.model,
                fix="resume from an earlier checkpoint whose tensors are finite",
            )


@check("CK010", "stray-checkpoint-dir", stage="post", severity="warning")
def stray_checkpoint_dir(checkpoints) -> Iterator[Finding]:
    """
    What it checks: checkpoint dirs that no loader reads, e.g. ``BASE/sft_checkpoints/`` written by
    chat_sft between 2026-01-31 and 2026-02-01 (upstream bug, PR #484).

    Why it matters: SFT "succeeded" but chat_cli/chat_eval read ``chatsft_checkpoints/`` and fail
    with FileNotFoundError, or pick an older model.

    Example:
        BASE/sft_checkpoints/d24/model_000700.pt   (chatsft_checkpoints/ missing)

    How to fix: mv BASE/sft_checkpoints BASE/chatsft_checkpoints (or update nanochat past eaf49a3).
    """
    for path, why in checkpoints.stray:
        yield Finding(
            f"stray checkpoint dir {path}: {why}",
            path=path,
            fix=f"mv {path} {path.rsplit('/', 1)[0]}/chatsft_checkpoints",
        )
