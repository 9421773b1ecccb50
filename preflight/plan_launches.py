"""Which launches of a script train which phase, and on how many processes: what the plan, and the checks that
need a phase's launch, read from the script model."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from typing import Any

from preflight.phases import PHASELESS_SCRIPTS, SCRIPT_PHASE, TRAIN_PHASES
from preflight.script.placement import launch_nodes
from preflight.units import parse_count


def trains(inv: Any, profile: Any, phase: str) -> bool:
    """The launch runs the phase's trainer (not one of its evaluations)."""
    if not inv.entry or profile.phase_of_module(inv.entry, inv.args) != phase:
        return False
    trainer = ((profile.phase(phase) or {}).get("train_module") or "").rsplit(".", 1)[-1]
    return inv.entry.rsplit(".", 1)[-1] == trainer


def training_invocation(script: Any, profile: Any, phase: str) -> Any:
    if script is None or not getattr(script, "ok", False):
        return None
    return next((inv for inv in script.all_invocations if trains(inv, profile, phase)), None)


def evaluates_only(script: Any, profile: Any, phase: str) -> bool:
    """The script runs the phase's evaluations and nothing else of it (`base_eval` alone, not a fork's own
    `base_train_jepa`, which trains)."""
    spec = profile.phase(phase) or {}
    trainer = (spec.get("train_module") or "").rsplit(".", 1)[-1]
    evals = {m.rsplit(".", 1)[-1] for m in spec.get("modules") or []} - {trainer}
    runs = [
        i.entry.rsplit(".", 1)[-1]
        for i in script.all_invocations
        if i.entry and profile.phase_of_module(i.entry, i.args) == phase
    ]
    return bool(runs) and set(runs) <= evals


def trainer_invocations(script: Any, profile: Any) -> list:
    """The script's launches of a training phase (base, mid, sft, rl; not their evals)."""
    return [
        i
        for i in script.all_invocations
        if i.entry and not i.entry.endswith("chat_eval") and profile.phase_of_module(i.entry, i.args) in TRAIN_PHASES
    ]


def phases_run(script: Any, profile: Any) -> list[str]:
    """Phases the script runs (in profile order); without a (readable) script: every non-optional phase.

    A readable script that launches no nanochat module runs no phase: planning the whole
    pipeline for it would invent time limits and expected checkpoints it never promised."""
    if script is None or not getattr(script, "ok", False):
        return [p for p in profile.phases if not (profile.phase(p) or {}).get("optional")]
    found = set()
    for inv in script.all_invocations:
        if inv.entry:
            ph = profile.phase_of_module(inv.entry, inv.args)
            if ph:
                found.add(ph)
    return [p for p in profile.phases if p in found]


def foreign_launches(script: Any, profile: Any) -> list[tuple[str, list[int]]]:
    """(entry, lines) of the job's launches of an entry point that is no phase's and no module the era knows (a fork's
    own `scripts.agent_rl`): the plan counts nothing of them, and says so."""
    if script is None or not getattr(script, "ok", False):
        return []
    known = {m.rsplit(".", 1)[-1] for p in profile.phases for m in (profile.phase(p) or {}).get("modules", [])}
    known |= {m.rsplit(".", 1)[-1] for m in profile.modules.values() if isinstance(m, str)}
    known |= set(SCRIPT_PHASE) | set(PHASELESS_SCRIPTS)  # upstream's own in any era (base_loss where base_eval took it)
    found: dict[str, list[int]] = {}
    for inv in script.all_invocations:
        entry = inv.entry or ""
        if not entry.startswith(("scripts.", "nanochat.")) or profile.phase_of_module(entry, inv.args):
            continue
        if profile.entry_of_variant(entry).rsplit(".", 1)[-1] in known:
            continue
        found.setdefault(entry, []).append(inv.line)
    return list(found.items())


def world_size_from(script: Any, job_env: Any, inv: Any, environ: dict) -> tuple[int | None, int, str]:
    """(nproc_per_node, nodes, source) for an invocation."""
    nodes = job_env.nodes if job_env is not None else 1
    if inv is not None and job_env is not None:
        nodes = launch_nodes(script, inv, job_env) or nodes  # `bash speedrun.sh` on --nodes=4 runs on one
    if inv is not None and inv.nproc_per_node:
        raw = inv.nproc_per_node
        val = script.expand(raw, inv.line, inv.file, job_env.start if job_env else environ) if "$" in raw else raw
        if parse_count(val) is not None:
            return parse_count(val), nodes, f"torchrun --nproc_per_node={raw} (line {inv.line})"
        if val == "gpu":
            pass
    if inv is not None and inv.launcher.startswith("srun+python") and job_env is not None:
        n = job_env.gpus_per_node
        if n:
            return n, nodes, "srun tasks per node (GPUs requested)"
    if inv is not None and inv.launcher.endswith("python") and not inv.srun:
        return 1, nodes, f"single process python (line {inv.line})"
    if inv is not None and inv.default_nproc:
        return 1, nodes, f"torchrun's default --nproc_per_node=1 (line {inv.line})"
    if job_env is not None and job_env.gpus_per_node:
        return job_env.gpus_per_node, nodes, "GPUs requested in #SBATCH"
    return None, nodes, ""


def unread_runners(script: Any, profile: Any) -> list[tuple[Any, str]]:
    """(command, path) of the scripts the job runs that preflight cannot read here (a path in a container, under a cd
    to the cluster's directory), when no training launch is visible: the training, and what it sets, is in them."""
    from preflight.script.parser import included_file

    if script is None or not getattr(script, "ok", False) or trainer_invocations(script, profile):
        return []
    out = []
    for model in script.walk():
        missing = {id(cmd) for cmd, _path, _tried in model.missing_includes}  # sourced-file-missing's
        followed = set(model.include_lines.values())
        for cmd in model.commands:
            target = included_file(cmd)
            if target and cmd.name not in ("source", ".") and cmd.line not in followed and id(cmd) not in missing:
                out.append((cmd, target))
    return out


def why_nothing_to_plan(script: Any) -> str:
    """Why a script plans no phase, where it says more than "no training": it exits before its first launch, or it
    only submits other jobs."""
    exits = exits_before_training(script)
    if exits:
        return exits
    from preflight.script.parser import expand_path
    from preflight.script.sbatch import command_options

    submits = submit_commands(script)
    if submits and submits[-1][1].name == "qsub":
        model, cmd = submits[-1]
        target = _qsub_script(cmd.words[1:])
        if target and "$" in target:  # `qsub "${PBS_SCRIPT}"`: the script's own value where it has one
            target = expand_path(model, target, cmd.line, cmd.file) or target
        if target:
            return (
                f"the script trains nothing itself: it submits another job (line {cmd.line}: qsub {target[:60]}); "
                f"check that one: preflight check {target[:60]}"
            )
    elif submits:
        _model, cmd = submits[-1]
        options, rest = command_options(cmd.words[1:])
        wrap = next((value for key, value, _raw in options if key == "wrap" and value), None)
        if wrap is None and not rest:  # `sbatch <<EOF` / `... | sbatch`: the job's text is data here
            return (
                f"the script trains nothing itself: it submits a job it writes on sbatch's standard input (line "
                f"{cmd.line}: a here-document or a pipe): preflight reads a job from a file: write it into one and "
                "check that"
            )
        if wrap is not None:
            shown = f"sbatch --wrap {shlex.quote(wrap[:60])}"
            return (
                f"the script trains nothing itself: it submits a job whose command is inline (line {cmd.line}: "
                f"{shown}); its GPU count is checked against its options (gpu-count-mismatch), the rest only in "
                "a batch script: write the command and its options (#SBATCH lines) into one and check that"
            )
        return (
            f"the script trains nothing itself: it submits another job (line {cmd.line}: sbatch {rest[0][:60]}); "
            f"check that one: preflight check {rest[0][:60]}"
        )
    return ""


def submit_commands(script: Any) -> list[tuple[Any, Any]]:
    """(script model, command) of the sbatch / qsub commands the script runs, also inside
    ``JOB=$(sbatch --parsable x.sh)`` (the command then stands at the assignment's line, in its file)."""
    from preflight.script.parser import parse_text

    found = []
    for model in script.walk():
        found += [(model, c) for c in model.commands if c.name in ("sbatch", "qsub") and len(c.words) > 1]
        for a in model.assignments:
            value = a.value.strip()
            if value.startswith("$(") and value.endswith(")") and re.match(r"\$\(\s*(sbatch|qsub)\s", value):
                found += [
                    (model, replace(c, line=a.line, file=a.file))
                    for c in parse_text(value[2:-1]).commands
                    if c.name in ("sbatch", "qsub") and len(c.words) > 1
                ]
    return sorted(found, key=lambda mc: mc[1].line)


# qsub's options that take no value (the rest do: -v LIST, -N NAME, -l RESOURCES ...)
_QSUB_FLAGS = set("hIVXzf")


def _qsub_script(words: list[str]) -> str | None:
    """The script a ``qsub`` command submits: the first word that is neither an option nor an option's value."""
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--":
            return None  # `qsub -- /bin/cmd`: a command, not a script
        if w.startswith("-") and len(w) >= 2:
            i += 2 if len(w) == 2 and w[1] not in _QSUB_FLAGS else 1
            continue
        return w
    return None


def exits_before_training(script: Any) -> str:
    """Why a script that launches training plans none: it surely exits before its first launch (SB017 says why)."""
    from preflight.script.launchers import launches_of

    for model in script.walk():
        if model.exited is None:
            continue
        line, _file, words, _why = model.exited
        first = next((c for c in model.unreached if launches_of(model, c)), None)
        if first is not None:
            return (
                f"the script exits at line {line} (`{words[:40]}`) before its first launch (line {first.line}): "
                "nothing runs until that is fixed (see SB017)"
            )
    return ""
