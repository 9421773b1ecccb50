"""Checks on the filesystem under the base dir: FS001-FS005."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from preflight.checks.script import job_workdir
from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.profiles import chat_source
from preflight.registry import check

NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/local", "/scratch/local", "/lscratch", "/localscratch", "/run/user")


def nearest_existing(path: Path) -> Path | None:
    p = Path(os.path.abspath(str(path)))
    for cand in (p, *p.parents):
        try:
            if cand.exists():
                return cand
        except OSError:
            continue
    return None


def _known_here(base_dir) -> None:
    """A base dir under a variable only the job's node sets (`${SCRATCH}/run`) names no directory here: its
    filesystem is not this one (where preflight runs) and nothing about it can be checked."""
    if "$" in str(base_dir.path):
        raise Skip(f"the base dir {base_dir.path} is known only when the job runs")


@check("FS001", "base-dir-not-writable", severity="error", kills_at_start=True)
def base_dir_not_writable(base_dir) -> Iterator[Finding]:
    """
    What it checks: that the base dir exists and is a writable directory, or that it can be
    created (its nearest existing parent is writable).

    Why it matters: every phase writes under it; ``get_base_dir()`` calls ``os.makedirs``,
    and a read-only or foreign directory fails the first phase with PermissionError.

    Example:
        export NANOCHAT_BASE_DIR=/datasets/shared/nanochat   # read-only for you

    How to fix: choose a directory you own: ``export NANOCHAT_BASE_DIR=/scratch/$USER/nanochat``.
    """
    _known_here(base_dir)
    path = Path(base_dir.path)
    try:
        if path.exists():
            if not path.is_dir():
                yield Finding(
                    f"base dir {path} ({base_dir.source}) exists but is not a directory",
                    fix=f"remove or rename {path}, or set NANOCHAT_BASE_DIR elsewhere",
                )
            elif not os.access(path, os.W_OK | os.X_OK):
                yield Finding(
                    f"base dir {path} ({base_dir.source}) is not writable by you",
                    fix=f"chmod u+rwx {path}, or set NANOCHAT_BASE_DIR to a directory you own",
                )
            return
    except OSError as exc:
        yield Finding(
            f"base dir {path} cannot be examined: {exc.strerror or exc}",
            fix="set NANOCHAT_BASE_DIR to a plain directory you own",
        )
        return
    parent = nearest_existing(path)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        yield Finding(
            f"base dir {path} does not exist and cannot be created ({parent} is not writable)",
            fix=f"mkdir -p {path} as a user who may, or set NANOCHAT_BASE_DIR elsewhere",
        )


@check("FS002", "disk-space-insufficient", severity="error")
def disk_space_insufficient(ctx, base_dir, plan) -> Iterator[Finding]:
    """
    What it checks: free bytes and free inodes on the base dir's filesystem against the plan
    (shards still to download, eval bundle, model + optimizer checkpoints per phase,
    optimizer shards per rank), times config ``disk-margin`` (default 1.2).

    Why it matters: a full disk or quota kills the job mid-phase, often while saving a
    checkpoint, leaving a truncated file as the latest one.

    Example:
        d20 needs ~34 GB; /home has 12 GB free

    How to fix: free space, or point NANOCHAT_BASE_DIR at a larger filesystem.
    """
    _known_here(base_dir)
    where = nearest_existing(Path(base_dir.path))
    if where is None:
        raise Skip("no existing parent of the base dir")
    try:
        st = os.statvfs(where)
    except OSError as exc:
        raise Skip(f"statvfs({where}) failed: {exc.strerror or exc}") from None
    margin = float(ctx.config.get("disk-margin", 1.2) or 1.2)
    dataset = ctx.get("dataset", None)
    have = dataset.total_bytes if dataset is not None else 0
    have_files = dataset.count if dataset is not None else 0
    need = max(0, plan.disk_bytes - have) * margin
    free = st.f_bavail * st.f_frsize
    if free < need:
        yield Finding(
            f"{where} has {free / 1e9:.1f} GB free but the run needs ~{need / 1e9:.1f} GB more "
            f"(plan {plan.disk_bytes / 1e9:.1f} GB incl. checkpoints, minus {have / 1e9:.1f} GB of shards present, "
            f"x{margin:g} margin)",
            fix="free space or set NANOCHAT_BASE_DIR to a larger filesystem",
        )
    need_files = max(0, plan.disk_files - have_files) * margin
    if st.f_files > 0 and st.f_favail < need_files:
        yield Finding(
            f"{where} has {st.f_favail:,} free inodes but the run creates ~{int(need_files):,} files",
            fix="free inodes (delete small files) or use another filesystem",
        )


@check("FS003", "node-local-path", severity="error")
def node_local_path(base_dir, job_env, ctx) -> Iterator[Finding]:
    """
    What it checks: a multi-node job (``--nodes`` > 1) whose base dir, or whose logs
    (``#SBATCH --output/--error``, an ``srun --output`` of its steps), are on a node-local path
    (/tmp, /dev/shm, $TMPDIR, $SLURM_TMPDIR, /local ...).

    Why it matters: every rank must read the same shards and write checkpoints into one
    directory; on node-local storage the other nodes see an empty dir and crash. A log on a
    node's local disk stays there: postflight on the login node cannot read the evidence.

    Example:
        #SBATCH --nodes=2
        export NANOCHAT_BASE_DIR=/tmp/nanochat

    How to fix: put the base dir and the logs on a shared filesystem visible from all nodes.
    """
    if job_env.nodes <= 1:
        return
    roots = list(NODE_LOCAL) + [v for k in ("TMPDIR", "SLURM_TMPDIR") if (v := job_env.get(k))]

    def local_root(path: str, workdir: Path | None = None) -> str | None:
        if path.startswith(("$", "~")):  # known only where the job runs ($SCRATCH/...): not relative to here
            m = re.match(r"\$\{?(TMPDIR|SLURM_TMPDIR)\b", path)
            return f"${m.group(1)}" if m else None
        path = os.path.abspath(os.path.join(workdir, path) if workdir is not None else path)
        return next((r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")), None)

    path = str(base_dir.path)
    path = path if path.startswith(("$", "~")) else os.path.abspath(path)
    if root := local_root(path):
        yield Finding(
            f"{job_env.nodes}-node job with base dir {path} on node-local storage ({root}): the other "
            "nodes will not see its shards or checkpoints",
            fix="export NANOCHAT_BASE_DIR=<a shared filesystem path, e.g. /scratch/$USER/nanochat>",
        )
    script = ctx.get("script", None)
    logs = [
        (f"--{k}={job_env.sbatch[k]}", job_env.sbatch[k], None) for k in ("output", "error") if job_env.sbatch.get(k)
    ]
    for inv in script.all_invocations if script is not None and script.ok else []:
        if inv.srun:
            opts = inv.launcher_opts
            for i, w in enumerate(opts):
                key, eq, value = w.partition("=")
                if key in ("--output", "-o", "--error", "-e"):
                    value = value if eq else (opts[i + 1] if i + 1 < len(opts) else "")
                    logs.append((f"srun {key}={value}", value, inv.line))
    logs_dir = job_workdir(ctx, job_env)  # a relative log path is the submit directory's (SB004 reads it alike)
    for shown, value, line in logs:
        if value and (root := local_root(value, logs_dir)):
            yield Finding(
                f"{job_env.nodes}-node job writes its log {shown} on node-local storage ({root}): it stays on "
                "that node, where postflight on the login node cannot read it",
                line=line,
                severity=Severity.WARNING,
                fix="write logs to a shared directory, e.g. #SBATCH --output=logs/%x_%j.out (mkdir -p logs)",
            )


def _base_loaders(script, profile) -> list:
    """The launches that load base's checkpoint with no model tag: the trainer of a phase whose source is base
    (mid; SFT in eras without mid), and base's own evaluations."""
    from preflight.plan_launches import trains

    found = []
    for inv in script.all_invocations:
        phase = profile.phase_of_module(inv.entry, inv.args) if inv.entry else None
        if phase is None or inv.flag("model_tag", "g"):
            continue
        reads_base = phase == "base" and not trains(inv, profile, "base")
        if reads_base or (profile.phase(phase) or {}).get("source") == "base" and trains(inv, profile, phase):
            found.append(inv)
    return found


def _trained_tag(base_train, plan) -> str | None:
    """The model tag base training saves under: its --model_tag, else d<depth> (None where neither is known)."""
    flag = base_train.flag("model_tag") if base_train is not None else None
    depth = getattr(plan, "depth", None)
    return (flag.value if flag is not None and flag.value else None) or (f"d{depth}" if depth else None)


@check("FS004", "model-tag-shadowed", severity="warning")
def model_tag_shadowed(ctx, script, base_dir, plan) -> Iterator[Finding]:
    """
    What it checks: the model tag the script's base training saves (``--model_tag``, else
    ``d<depth>``) against the tags already under ``<base dir>/base_checkpoints/``, for the later
    launches that load base's checkpoint without a model tag (mid, base_eval; SFT in eras without
    mid).

    Why it matters: given no tag, nanochat loads the largest ``dN`` there. A d26 left by an
    earlier run makes midtraining, SFT and chat continue that d26 instead of the d20 this job
    trains; every phase succeeds and the new model is never used.

    Example:
        torchrun ... -m scripts.base_train -- --depth=20
        torchrun ... -m scripts.mid_train          # $NANOCHAT_BASE_DIR/base_checkpoints/d26 exists

    How to fix: pass the trained tag to the later phases (``--model_tag=d20``; chat_eval and
    chat_cli: ``-g d20``), or move the older model out of ``base_checkpoints/``.
    """
    from preflight.checkout import model_tag_flag
    from preflight.phases import PHASELESS_SCRIPTS, largest_depth_tag, tag_dirs
    from preflight.plan_launches import training_invocation

    profile = ctx.get("profile", None)
    base_train = training_invocation(script, profile, "base") if profile is not None else None
    if base_train is None:
        raise Skip("the script trains no base model")
    trained = _trained_tag(base_train, plan)
    loaders = _base_loaders(script, profile)
    if trained is None or not loaders:
        return
    ckpt = Path(base_dir.path) / "base_checkpoints"
    tags = tag_dirs(ckpt)
    if tags is None:
        return  # nothing saved there yet (or not readable from here): the trained tag is the only one
    picked = largest_depth_tag([*tags, trained]) or trained  # no dN there: the newest dir, this run's
    if picked == trained:
        return
    checkout = ctx.get("checkout", None)
    fixes, untagged = [], []
    for inv in loaders:
        name = inv.entry.rsplit(".", 1)[-1]
        flag, _ = model_tag_flag(checkout, profile, inv.entry)
        if flag is None:
            untagged.append(name)  # it has no tag flag: only moving the larger model out helps it
            continue
        fixes.append(f"{name} {flag}={trained}")
    no_flag = f" ({', '.join(dict.fromkeys(untagged))} takes no model tag in this {'checkout' if checkout else 'era'})"
    if any((inv.entry or "").rsplit(".", 1)[-1] in PHASELESS_SCRIPTS for inv in script.all_invocations):
        fixes.append(f"chat_eval/chat_cli -g {trained}")
    inv = loaders[0]
    yield Finding(
        f"{inv.entry} (line {inv.line}) loads base's checkpoint with no model tag, and {ckpt} already holds "
        f"{picked}: nanochat takes the largest dN there, so it and the phases after it would continue {picked}, "
        f"not the {trained} this script trains",
        path=inv.file,
        line=inv.line,
        fix=(f"pass the trained tag ({'; '.join(dict.fromkeys(fixes))}), or " if fixes else "")
        + f"move {ckpt / picked} out of {ckpt}"
        + (no_flag if untagged else ""),
        data={"trained_tag": trained, "would_load": picked, "dir": str(ckpt)},
    )


@check("FS005", "resume-checkpoint-missing", severity="error", kills_at_start=True)
def resume_checkpoint_missing(ctx, script, plan) -> Iterator[Finding]:
    """
    What it checks: a base training that resumes (``--resume_from_step=N``) against the base
    dir the job uses: ``base_checkpoints/<model tag>/model_<N>.pt`` and ``meta_<N>.json`` must
    be there (the tag is ``--model_tag``, else ``d<depth>``).

    Why it matters: base_train loads that step's model, optimizer and metadata before its first
    step; without them it stops with ``FileNotFoundError`` as soon as it starts, and a job that
    runs more phases after it goes on without a model.

    Example:
        torchrun ... -m scripts.base_train -- --depth=32 --resume-from-step=16000   # no model_016000.pt

    How to fix: resume from a step that was saved (``ls <base dir>/base_checkpoints/<tag>/``),
    point ``NANOCHAT_BASE_DIR`` at the run that saved it, or leave the flag out to start over.
    """
    phase = plan.phase("base") if plan is not None else None
    step = phase.resume_from if phase is not None else None
    if not step:
        raise Skip("no base training resumes from a step")
    from preflight.ckpt import MODEL_RE  # imports zipfile: only for a run that resumes
    from preflight.plan_launches import training_invocation

    base = _base_dir_with_runs(ctx)
    inv = training_invocation(script, ctx.get("profile", None), "base")
    tag = _trained_tag(inv, plan)
    if not tag or "$" in tag or "/" in tag:
        raise Skip("the model tag is known only when the job runs")
    ckpt = base / "base_checkpoints" / tag
    wanted = [ckpt / f"model_{step:06d}.pt", ckpt / f"meta_{step:06d}.json"]
    missing = [p.name for p in wanted if not _exists(p)]
    if not missing:
        return
    try:
        saved = sorted(int(m.group(1)) for e in os.scandir(ckpt) if (m := MODEL_RE.match(e.name)))
    except OSError:
        saved = []
    there = (
        f"; the steps saved there: {', '.join(f'{s:,}' for s in saved[-5:])}" if saved else f"; {ckpt} holds no model"
    )
    from preflight.checkout import setting_flag
    from preflight.checks.flags import checkout_or_none

    flag = None
    if inv is not None:
        flag, _ = setting_flag(checkout_or_none(ctx), ctx.get("profile", None), inv.entry, "resume_from_step")
    flag = flag or "--resume_from_step"
    where = f" (line {inv.line})" if inv is not None else ""
    yield Finding(
        f"base_train resumes from step {step:,}{where}, but {' and '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not in {ckpt}{there}: it stops with FileNotFoundError as it starts",
        path=str(ckpt),
        fix=f"resume from a saved step ({flag}={saved[-1]})"
        if saved
        else f"leave out {flag} to start over, or point NANOCHAT_BASE_DIR at the run that saved that step",
    )


def _base_dir_with_runs(ctx) -> Path:
    """The job's base dir, where it exists here; else Skip: the checkpoints a job loads or resumes from are on the
    machine that holds its runs, not on CI or a laptop."""
    from preflight.facts import FactUnavailable
    from preflight.inventory import known_base_dir

    try:
        base = Path(known_base_dir(ctx).path)
    except FactUnavailable as exc:
        raise Skip(str(exc)) from None
    if not _is_dir(base):
        raise Skip(f"the base dir {base} does not exist here: run preflight where the job's runs are")
    return base


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


@check("FS006", "source-checkpoint-missing", severity="error", kills_at_start=True)
def source_checkpoint_missing(ctx, script, profile, job_env) -> Iterator[Finding]:
    """
    What it checks: a phase the job runs that loads an earlier phase's checkpoint the job does
    not train itself (SFT or midtraining on a base model, RL on SFT, ``base_eval``,
    ``chat_eval -i sft``) against the base dir the job uses: the earlier phase's checkpoint
    directory (``base_checkpoints``, ``mid_checkpoints``, ``chatsft_checkpoints``) must hold a
    model, under the model tag the launch names (``--model_tag``, chat_eval's ``-g``) or any.

    Why it matters: the phase stops with ``FileNotFoundError`` as it loads the model, and
    without ``set -e`` every later phase runs on nothing while the job still ends COMPLETED:
    the job that waited hours in the queue trains nothing.

    Example:
        torchrun ... -m scripts.chat_sft -- --model-tag=d24   # and base_checkpoints/d24 holds no model

    How to fix: run the earlier phase first (in this job, or an earlier one that used the same
    ``NANOCHAT_BASE_DIR``), or point ``NANOCHAT_BASE_DIR`` at the run that has its checkpoint.
    """
    if not script.ok:
        raise Skip("the script could not be read (see script-unparsable)")
    loads, trained = _checkpoint_loads(script, profile)
    loads = [(inv, phase, src) for inv, phase, src in loads if src not in trained]
    if not loads:
        raise Skip("every checkpoint the job loads is one it trains (or it loads none)")
    from preflight.ckpt import MODEL_RE  # imports zipfile: only for a job that loads a checkpoint

    # what each load reads: its source phase's checkpoint dir, under the tag the launch names
    targets = [
        (inv, phase, src, (profile.phase(src) or {}).get("checkpoint_dir"), _loaded_tag(inv, script, job_env))
        for inv, phase, src in loads
    ]
    try:
        base = _base_dir_with_runs(ctx)
    except Skip as skip:  # not checkable here: still say what the job will need where it runs
        needs = [
            f"{dirname}/{tag} ({inv.module or inv.script_file}, line {inv.line})" if tag else dirname
            for inv, _phase, _src, dirname, tag in targets
            if dirname
        ]
        raise Skip(f"{skip}; the job loads {', '.join(dict.fromkeys(needs))}" if needs else str(skip)) from None
    told: set[tuple] = set()
    for inv, phase, src, dirname, tag in targets:
        if not dirname or (tag is not None and ("$" in tag or "/" in tag)) or (src, tag) in told:
            continue
        told.add((src, tag))
        root = base / dirname
        dirs = [root / tag] if tag else _subdirs(root)
        if any(MODEL_RE.match(name) for d in dirs for name in _names(d)):
            continue
        what = f"{src}'s checkpoint {dirname}/{tag}" if tag else f"{src}'s checkpoint ({dirname})"
        loader = inv.module or inv.script_file
        yield Finding(
            f"{loader} ({phase}) loads {what}, which the job does not train and {root / tag if tag else root} "
            "does not hold: it stops with FileNotFoundError as it starts",
            path=inv.file if inv.file and inv.file != "<script>" else str(script.path),
            line=inv.line,
            fix=f"run {src} training first (in this job, or an earlier one with this NANOCHAT_BASE_DIR), or point "
            f"NANOCHAT_BASE_DIR at the run that has {dirname}",
        )


_CHAT_ENTRIES = ("chat_cli", "chat_web")  # they load a phase's model to talk to it (-i, default sft)


def _checkpoint_loads(script, profile) -> tuple[list[tuple], set[str]]:
    """(launch, its phase, the phase whose checkpoint it loads) of each launch that loads one, and the phases the
    job trains. A trainer loads its source phase's model (chat_sft's --source where the era has it); an evaluation
    (base_eval, chat_eval -i X) loads its own phase's."""
    loads, trained = [], set()
    for inv in script.all_invocations:
        module = inv.entry
        phase = profile.phase_of_module(module, inv.args) if module else None
        if module and module.rsplit(".", 1)[-1] in _CHAT_ENTRIES:  # chat_cli -p ...: loads -i's model, sft by default
            src = chat_source(list(inv.args)) or "sft"
            if src in profile.phases:
                loads.append((inv, "chat", src))
            continue
        if phase is None:
            continue
        spec = profile.phase(phase) or {}
        if module.rsplit(".", 1)[-1] == (spec.get("train_module") or "").rsplit(".", 1)[-1]:
            trained.add(phase)
            given = inv.flag("source")
            src = given.value if given is not None and given.value in profile.phases else spec.get("source")
        else:
            src = phase
        if src:
            loads.append((inv, phase, src))
    return loads, trained


def _loaded_tag(inv, script, job_env) -> str | None:
    """The model tag the launch names, its variables expanded where the script sets them (MODEL_TAG=d12)."""
    short = (inv.module or "").rsplit(".", 1)[-1] in ("chat_eval", *_CHAT_ENTRIES)  # their -g is the tag
    f = inv.flag("model_tag", "g") if short else inv.flag("model_tag")
    if f is None or not f.value:
        return None
    if "$" in f.value:
        return script.expand(f.value, inv.line, inv.file, job_env.start) or f.value
    return f.value


def _subdirs(root: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return []


def _names(d: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(d)]
    except OSError:
        return []
