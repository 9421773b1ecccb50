"""Checks on the batch script itself (parsed, never executed): SB001-SB014 (the file as text: script_text)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from preflight.checks.flags import checkout_or_none
from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.redact import SECRET_PATTERNS, mask
from preflight.registry import check
from preflight.units import parse_count, parse_int


def _p(script, inv_or_cmd=None) -> str:
    if inv_or_cmd is not None and getattr(inv_or_cmd, "file", None) and inv_or_cmd.file != "<script>":
        return inv_or_cmd.file
    return str(script.path) if script.path else "<script>"


def _readable(script) -> None:
    if not script.ok:
        raise Skip("the script could not be read (see script-unparsable)")


@check("SB001", "directive-after-command", severity="warning")
def directive_after_command(script) -> Iterator[Finding]:
    """
    What it checks: ``#SBATCH`` lines that come after the first shell command.

    Why it matters: sbatch stops reading directives at the first command, so these options
    (GPUs, time, output) are silently ignored and the job runs with defaults.

    Example:
        #!/bin/bash
        export OMP_NUM_THREADS=1
        #SBATCH --gres=gpu:8

    How to fix: move every ``#SBATCH`` line to the top, right after the ``#!`` line.
    """
    _readable(script)
    for d in script.directives:
        if d.ignored:
            resource = _RESOURCE_DEFAULTS.get(d.key)
            yield Finding(
                f"{d.shown} comes after the first command (line {script.first_command_line}): {d.reader} ignores it"
                + (f", and the job gets {resource}" if resource else ""),
                path=str(script.path),
                line=d.line,
                # what the job gets (its GPUs, time, place) is wrong, not a name or a log path
                severity=Severity.ERROR if resource else None,
                fix=f"move this line above line {script.first_command_line}",
            )


# directives whose loss changes what the job runs on, and what it gets instead (an ignored one is an error, not a
# job name's or a log path's loss)
_RESOURCE_DEFAULTS = {
    **dict.fromkeys(("gres", "gpus", "gpus-per-node", "gpus-per-task"), "no GPUs"),
    "time": "the partition's default time limit",
    "partition": "the default partition",
    **dict.fromkeys(("nodes", "ntasks", "ntasks-per-node", "cpus-per-task"), "the default node and task counts"),
    **dict.fromkeys(("mem", "mem-per-gpu", "mem-per-cpu"), "the default memory"),
    **dict.fromkeys(("account", "qos"), "the default account and QoS (or a rejection)"),
    "constraint": "any node of the partition",
}


def _ignored_directive(script, *keys: str):
    """The ignored #SBATCH line (after the first command) that asks for one of ``keys``, or None."""
    return next((d for d in script.directives if d.ignored and d.key in keys), None)


@check("SB002", "variable-in-directive", severity="warning")
def variable_in_directive(script) -> Iterator[Finding]:
    """
    What it checks: ``$VAR`` inside an active ``#SBATCH`` directive.

    Why it matters: sbatch does not expand variables in directives; ``--output=$HOME/x.out``
    creates a directory literally named ``$HOME`` or fails.

    Example:
        #SBATCH --output=$SCRATCH/logs/%j.out

    How to fix: write the value literally (``%u`` is the user, ``%j`` the job id), or pass it
    on the command line: ``sbatch --output=$SCRATCH/logs/%j.out job.sbatch``.
    """
    _readable(script)
    for d in script.active_directives():
        if d.has_variable:
            yield Finding(
                f"#SBATCH {d.raw}: sbatch does not expand variables in directives",
                path=str(script.path),
                line=d.line,
                fix=f"write the value literally, or pass --{d.key}=... on the sbatch command line",
            )


@check("SB003", "missing-set-e", severity="error")
def missing_set_e(script, profile) -> Iterator[Finding]:
    """
    What it checks: a script that runs several phases with neither ``set -e`` (errexit) nor
    an exit-code check after each phase; and (a warning) one whose single launch is followed by
    other commands (an ``echo "done"``) with neither: the job's exit status is then theirs.

    Why it matters: upstream speedrun.sh has no ``set -e``: when midtraining crashes, SFT and
    the report still run, fail in turn, and the job ends COMPLETED with nothing to show.

    Example:
        torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20
        torchrun --nproc_per_node=8 -m scripts.mid_train

    How to fix: add ``set -euo pipefail`` after the ``#!`` line, or end each phase with
    ``|| exit 1``.
    """
    _readable(script)
    for model in script.walk():
        if model.errexit or not model.ok:
            continue
        invs = [i for i in model.invocations if i.entry and not i.background]
        if len(invs) == 1:
            yield from _lone_launch_masked(model, invs[0], profile)
        if len(invs) < 2:
            continue
        unchecked = [i for i in invs[:-1] if not i.checked]
        if not unchecked:
            continue
        first = unchecked[0]
        phases = [profile.phase_of_module(i.entry, i.args) or i.entry for i in invs]
        misread = ""
        if first.misread_check is not None:
            test, before = first.misread_check
            misread = (
                f" (the `$?` test at line {test.line} reads the status of `{before.name}` at line {before.line}, "
                f"not that of `{first.module or first.entry}`)"
            )
        yield Finding(
            f"{os.path.basename(str(model.path))} runs {len(invs)} steps ({', '.join(dict.fromkeys(phases))}) "
            f"without set -e or per-step exit checks: if `{first.module}` (line {first.line}) fails, "
            f"the later steps still run on missing artifacts and the job can end COMPLETED{misread}",
            path=str(model.path),
            line=first.line,
            fix=f"move the `$?` test to right after line {first.line} (or `|| exit 1` on the launch; "
            "or `set -euo pipefail` after the #! line)"
            if misread
            else "add `set -euo pipefail` after the #! line (or `|| exit 1` after each step)",
        )


def _lone_launch_masked(model, inv, profile) -> Iterator[Finding]:
    """One unchecked launch with commands after it: the job's exit status is theirs, so its crash ends COMPLETED."""
    cmd = inv.command
    if inv.checked or cmd.conditional or cmd.in_condition or cmd.file != str(model.path):
        return
    later = [
        c
        for c in model.commands
        if c.file == cmd.file and c.line > cmd.end_line and c.name and c.depth == 0 and not c.in_function
    ]
    if not later:
        return
    phase = profile.phase_of_module(inv.entry, inv.args) or inv.entry
    piped = (
        " (and its pipe into another command hides its status too: `set -o pipefail`)" if cmd.op_after == "|" else ""
    )
    yield Finding(
        f"{os.path.basename(str(model.path))} runs `{inv.module or inv.entry}` (line {inv.line}) without set -e or an "
        f"exit check, then {len(later)} more command(s) (the last: `{later[-1].name}`, line {later[-1].line}): "
        f"the job's exit status is the last command's, so a crash of {phase} still ends the job COMPLETED{piped}",
        path=str(model.path),
        line=inv.line,
        severity=Severity.WARNING,
        fix="add `set -euo pipefail` after the #! line (or `|| exit 1` after the launch)",
    )


_PATTERN_RE = re.compile(r"%(%|[0-9]*[AajJNnsStux])")


def output_pattern_path(value: str) -> Path | None:
    """An --output/--error file pattern as a path (its %j-style fields filled in); None where a
    variable decides it."""
    return None if not value or "$" in value else Path(_PATTERN_RE.sub("x", value))


def job_workdir(ctx, job_env) -> Path:
    """Where the job's relative --output/--error paths point: --chdir, else where sbatch runs: the checkout given
    (--checkout: it is submitted from there), else here."""
    given = ctx.config.get("checkout") if ctx.config is not None else None
    submitted = Path(os.path.expanduser(str(given))) if given else Path(ctx.inputs.cwd)
    return submitted / job_env.sbatch["chdir"] if job_env.sbatch.get("chdir") else submitted


@check("SB004", "output-dir-missing", severity="error", kills_at_start=True)
def output_dir_missing(ctx, script, job_env) -> Iterator[Finding]:
    """
    What it checks: that the directory of ``--output`` / ``--error`` exists.

    Why it matters: SLURM does not create it: the job starts, cannot open its log, and dies
    at once with no log at all to explain why.

    Example:
        #SBATCH --output=logs/nanochat_speedrun_%j.out   # and there is no logs/ directory

    How to fix: ``mkdir -p logs`` before ``sbatch`` (in the submit directory).
    """
    _readable(script)
    workdir = job_workdir(ctx, job_env)
    for key in ("output", "error"):
        value = job_env.sbatch.get(key)
        path = output_pattern_path(value)
        if path is None:
            continue
        if not path.is_absolute():
            path = workdir / path
        parent = path.parent
        if not parent.is_dir():
            line = job_env.directive_line(key)
            yield Finding(
                f"--{key}={value}: directory {parent} does not exist; the job will die without a log",
                path=str(script.path),
                line=line,
                fix=f"mkdir -p {parent}",
            )


def _resolved_nproc(script, inv, job_env) -> int | None:
    raw = inv.nproc_per_node
    if raw is None:  # torchrun's default is one process per node (not one per GPU)
        return 1 if inv.default_nproc else None
    val = script.expand(raw, inv.line, inv.file, job_env.start) if "$" in raw else raw
    return parse_count(val)


def _nproc_source(script, inv) -> str:
    raw = inv.nproc_per_node or ""
    m = re.match(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)", raw)
    if not m:
        return ""
    if m.group(1) == "SLURM_GPUS_PER_NODE" and script.directive("gpus-per-node") is None:
        return (
            " (SLURM sets SLURM_GPUS_PER_NODE only for --gpus-per-node, so its default applies; "
            "SLURM_GPUS_ON_NODE is set for --gres too)"
        )
    for a in script.all_assignments:
        if a.name == m.group(1) and a.value.isdigit() and a.unconditional:
            return f" ({m.group(1)}={a.value} is hard-coded at {os.path.basename(a.file)}:{a.line})"
    return ""


def _wrapped_mismatches(script) -> Iterator[Finding]:
    """``sbatch --gres=gpu:4 --wrap="torchrun --nproc_per_node=8 ..."`` in a submitter: the wrapped job's GPUs are
    its sbatch options, its launches the wrapped text's."""
    from preflight.plan_launches import submit_commands
    from preflight.script.jobenv import JobEnv
    from preflight.script.parser import parse_text
    from preflight.script.sbatch import command_options

    for _model, cmd in submit_commands(script):
        options, _rest = command_options(cmd.words[1:]) if cmd.name == "sbatch" else ([], [])
        opts = {key: value for key, value, _raw in options}
        if not opts.get("wrap"):
            continue
        requested = JobEnv(env={}, sbatch=opts, sbatch_source={}).gpus_per_node
        asked = " ".join(raw for key, _v, raw in options if key in ("gres", "gpus", "gpus-per-node"))
        for inv in parse_text(opts["wrap"]).invocations:
            n = parse_count(inv.nproc_per_node) if inv.nproc_per_node else None
            if not inv.launcher.endswith("torchrun") or n is None or n == requested:
                continue
            yield Finding(
                f"the job submitted at line {cmd.line} (sbatch --wrap) starts torchrun --nproc_per_node={n}, "
                + (
                    f"but its options request {requested} GPU(s) per node ({asked})"
                    if requested is not None
                    else "but its options request no GPUs (no --gres=gpu:N / --gpus)"
                ),
                path=script.file_of(cmd),
                line=cmd.line,
                fix=f"make them agree: --gres=gpu:{n}, or --nproc_per_node={requested}"
                if requested is not None
                else f"add --gres=gpu:{n} to the sbatch command at line {cmd.line}",
            )


@check("SB005", "gpu-count-mismatch", severity="error")
def gpu_count_mismatch(script, job_env) -> Iterator[Finding]:
    """
    What it checks: GPUs requested per node (``--gres=gpu:N``, ``--gpus*``, divided over
    ``--nodes``) against ``torchrun --nproc_per_node``, including a hard-coded
    ``NPROC_PER_NODE=8`` as in speedrun.sh, and a torchrun with no ``--nproc_per_node`` (its
    default is one process per node); and in a submitter, the options of an
    ``sbatch --wrap="torchrun ..."`` against the command it wraps.

    Why it matters: more processes than GPUs crash at startup (invalid device ordinal) or
    share a GPU and OOM; fewer leave paid GPUs idle and change the batch arithmetic.

    Example:
        #SBATCH --gres=gpu:4
        NPROC_PER_NODE=8
        torchrun --standalone --nproc_per_node=$NPROC_PER_NODE -m scripts.base_train

    How to fix: make them agree, e.g. ``torchrun --nproc_per_node=${SLURM_GPUS_ON_NODE:-8}``.
    """
    _readable(script)
    wrapped = list(_wrapped_mismatches(script))
    yield from wrapped
    if not script.directives and not job_env.sbatch:
        if wrapped:
            return
        raise Skip("no #SBATCH directives or sbatch arguments: not a batch job")
    requested = job_env.gpus_per_node
    for inv in script.all_invocations:
        if not inv.launcher.endswith("torchrun"):
            continue
        n = _resolved_nproc(script, inv, job_env)
        if n is None or (requested is None and inv.nproc_per_node is None):
            continue  # (torchrun's default of one process in a job that asks for no GPU: a CPU run, not judged)
        if requested is None and (lost := _ignored_directive(script, "gres", "gpus", "gpus-per-node")) is not None:
            yield Finding(
                f"torchrun starts {n} process{'es' if n != 1 else ''} per node but the job requests no GPUs: "
                f"{lost.shown} (line {lost.line}) comes after the first command (line "
                f"{script.first_command_line}), where {lost.reader} ignores it",
                path=_p(script, inv),
                line=inv.line,
                fix=f"move line {lost.line} (and the #SBATCH lines after it) above line {script.first_command_line}",
            )
        elif requested is None:
            part = script.directive("partition")
            cpu_only = part is not None and re.search(r"(?i)(?:^|[-_,])cpus?(?:$|[-_,])", part.value or "")
            yield Finding(
                f"torchrun starts {n} process{'es' if n != 1 else ''} per node but the job requests no GPUs (no "
                "--gres=gpu:N / --gpus)"
                + (f" on partition {part.value}, which its name says has none" if cpu_only else ""),
                path=_p(script, inv),
                line=inv.line,
                fix=f"#SBATCH --gres=gpu:{n}"
                + (" and a GPU partition (sinfo -o '%P %G' lists them)" if cpu_only else ""),
            )
        elif n != requested:
            how = f"--nproc_per_node={inv.nproc_per_node}" if inv.nproc_per_node else "without --nproc_per_node"
            yield Finding(
                f"torchrun {how} starts {n} process{'es' if n != 1 else ' (its default)'} per node, but the job "
                f"requests {requested} GPU(s) per node{_nproc_source(script, inv)}",
                path=_p(script, inv),
                line=inv.line,
                fix=f"use --nproc_per_node={requested} (or request gpu:{n})",
            )


def _time_directive(script, value: str) -> str:
    """The line that sets the job's time limit in the script's own scheduler's words."""
    return f"#PBS -l walltime={value}" if script.pbs_only else f"#SBATCH --time={value}"


def _fmt_s(seconds: float) -> str:
    h = int(seconds // 3600)
    m = int((seconds % 3600) // 60)
    return f"{h}:{m:02d}:00"


def _resume_alternative(ctx, script, profile) -> str:
    """ ", or <save flag> and resume with <resume flag> in a second job" when the checkout has both."""
    from preflight.checkout import setting_flag

    inv = next((i for i in script.all_invocations if i.entry and i.entry.endswith("base_train")), None)
    if inv is None:
        return ""
    checkout = checkout_or_none(ctx)
    save, _ = setting_flag(checkout, profile, inv.entry, "save_every", inv.script_file)
    resume, _ = setting_flag(checkout, profile, inv.entry, "resume_from_step", inv.script_file)
    return f", or {save}=N and resume with {resume}=STEP in a second job" if save and resume else ""


def _periodic_save(script, inv, job_env) -> int | str | None:
    """The base trainer's --save_every: its step count, "run time" where a variable the job sets gives it
    (`--save_every="${SAVE_EVERY}"`), None where it saves only at the end."""
    save = inv.flag("save_every", "save-every")
    value = save.value if save is not None else None
    if value and "$" in value:  # --save_every="${SAVE_EVERY}" with SAVE_EVERY="${SAVE_EVERY:-500}"
        value = script.expand(value, inv.line, inv.file, job_env.start)
        if value is None:
            return "run time"  # set when the job runs: a periodic save its user chooses
    n = parse_int(value) if value and value.lstrip("-").isdigit() else None
    return n if n and n > 0 else None


def _chunk(plan, every) -> str:
    """Why a time limit that cuts base training is by design: the job saves as it goes, base is its last phase, and
    a later job resumes it (an empty string where that is not so)."""
    timed = [p for p in plan.phases if p.seconds]
    if not every or not timed or timed[-1].name != "base":
        return ""
    steps = f"every {every} steps" if isinstance(every, int) else "periodically (--save_every set when it runs)"
    per = (
        f" (up to {_fmt_s(timed[-1].seconds * every / timed[-1].steps)} of training lost at the cut)"
        if isinstance(every, int) and timed[-1].steps
        else ""
    )
    return f": base training saves {steps}{per}, so the job is one chunk of the run and a later job must resume it"


# the MFU nanochat's own trainer reaches at d20 on one H200: classic nanochat 507d542 measured 55.1% in the
# same-call runs of BENCHMARKS.md; a --time between this estimate and the planning one (config mfu) may do
LIKELY_MFU = 0.55


@check("SB006", "time-limit-too-short", severity="error")
def time_limit_too_short(ctx, script, job_env, plan, profile) -> Iterator[Finding]:
    """
    What it checks: the job's ``--time`` against the plan's estimate for the phases the
    script runs (FLOPs / (peak x GPUs x MFU) plus eval time). An error when the run does not
    fit even at 55% MFU (what nanochat's own trainer reaches at d20 on an H200), a warning when
    it fits at that MFU but not at the planning one (config ``mfu``, 40%), or when the job is
    one chunk of base training (it saves every N steps and base is its last phase: a later job
    resumes it).

    Why it matters: at the limit SLURM kills the job; nanochat saves base training only at
    the end by default, so hours of pretraining are lost.

    Example:
        #SBATCH --time=02:00:00   # d20 on 8xH100 needs ~4 h

    How to fix: raise ``--time`` above the estimate, or save periodically and resume in a
    follow-up job (offered only with the flags the checkout declares, in its spelling).
    """
    _readable(script)
    limit = job_env.time_limit_s
    if limit is None:
        raise Skip("no --time limit set (the partition default applies)")
    if plan.total_seconds is None:
        raise Skip("no time estimate (unknown GPU peak FLOPs)")
    if limit < plan.total_seconds:
        line = job_env.directive_line("time")
        need = plan.total_seconds * 1.2
        # the plan's MFU is a planning figure; a run that fits at the MFU nanochat reaches on Hopper may fit
        likely_mfu = max(plan.mfu, LIKELY_MFU)
        likely = plan.total_seconds * plan.mfu / likely_mfu
        fp8 = any(i.flag("fp8") is not None for i in script.all_invocations)
        text = (
            f"{'walltime' if script.pbs_only else '--time'}={job_env.sbatch.get('time')} is shorter than the estimated "
            f"{_fmt_s(plan.total_seconds)} "
            f"for {', '.join(p.name for p in plan.phases)} on {plan.world_size}x {plan.gpu_name} at "
            f"{plan.mfu:.0%} MFU"
        )
        if limit >= likely:
            text += f"; at {likely_mfu:.0%} MFU it needs {_fmt_s(likely)}, which fits: it may be cut off" + (
                " (the estimate counts bf16; --fp8 runs faster)" if fp8 else ""
            )
        base = next((i for i in script.all_invocations if i.entry and i.entry.endswith("base_train")), None)
        chunk = _chunk(plan, _periodic_save(script, base, job_env)) if base is not None else ""
        fix = f"{_time_directive(script, _fmt_s(need))} (estimate + 20%)"
        yield Finding(
            text + chunk,
            path=str(script.path),
            line=line,
            severity=Severity.WARNING if limit >= likely or chunk else None,
            fix=f"resume it in a follow-up job (sbatch --dependency=afterany:JOBID) from its last save, or {fix}"
            if chunk
            else fix + _resume_alternative(ctx, script, profile),
        )


def _save_interval(plan) -> int:
    """A periodic save every 1000 steps, or a quarter of a shorter run (rounded down to 500, 250, 100, 50, 25, 10):
    --save-every=1000 never saves a 300-step run before its end."""
    steps = getattr(plan, "iterations", None) if plan is not None else None
    if not steps or steps >= 4000:
        return 1000
    return next((n for n in (500, 250, 100, 50, 25, 10) if n <= steps // 4), 1)


@check("SB007", "missing-timeout-signal", severity="warning")
def missing_timeout_signal(ctx, script, job_env, profile) -> Iterator[Finding]:
    """
    What it checks: a job that trains, saves only at the end (no ``--save_every``), and sets
    no ``--signal`` to be warned before the time limit (or sets one for upstream trainers,
    which do not save on a signal). Skipped when the plan's estimate is under a third of
    ``--time``.

    Why it matters: a job that hits its limit is killed without a checkpoint. With
    ``--signal=B:USR1@600`` and a trap that forwards it (see signal-not-delivered) the
    bundled trainer saves and exits cleanly; upstream needs ``--save_every``.

    Example:
        #SBATCH --time=04:00:00
        torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20

    How to fix: ``#SBATCH --signal=B:USR1@600`` with a trap that forwards it to the trainer
    (bundled trainer; scripts/speedrun.slurm shows how), or save periodically with the flag the
    checkout declares (``--save_every=1000`` classic, ``--save-every=1000`` dash eras; none before
    2025-11-13, where the fix says to raise ``--time`` or update instead).
    """
    _readable(script)
    trainers = [
        i
        for i in script.all_invocations
        if i.entry and profile.phase_of_module(i.entry, i.args) == "base" and i.entry.endswith("base_train")
    ]
    if not trainers:
        raise Skip("the script runs no base training")
    signal_opt = job_env.sbatch.get("signal")
    if signal_opt and profile.data.get("saves_on_signal"):
        return  # whether it reaches the trainer is signal-not-delivered's question
    inv = trainers[0]
    if _periodic_save(script, inv, job_env):
        return
    from preflight.checkout import SETTING_SINCE, setting_flag

    checkout = checkout_or_none(ctx)
    save_flag, src = setting_flag(checkout, profile, inv.entry, "save_every", inv.script_file)
    resume_flag, _ = setting_flag(checkout, profile, inv.entry, "resume_from_step", inv.script_file)
    plan = ctx.get("plan", None)
    limit = job_env.time_limit_s
    if plan is not None and plan.total_seconds is not None and limit is not None and plan.total_seconds * 3 <= limit:
        raise Skip(
            f"the estimated run ({plan.total_seconds / 60:.1f} min) is under a third of --time "
            f"({limit / 60:.0f} min): no time-limit kill expected"
        )
    every = _save_interval(plan)
    if profile.data.get("saves_on_signal"):
        fix = (
            "#SBATCH --signal=B:USR1@600 and a trap that forwards it to the trainer started with & "
            "(the bundled trainer saves on SIGUSR1; scripts/speedrun.slurm shows how)"
        )
    elif save_flag and resume_flag:
        fix = f"pass {save_flag}={every} to {inv.entry} and resume a killed job with {resume_flag}=STEP (flags from {src})"
    elif save_flag:
        fix = (
            f"pass {save_flag}={every} to {inv.entry}; this checkout has no resume flag ({src}), so a killed job "
            f"restarts base training from step 0: raise --time, or update nanochat (resume arrived "
            f"{SETTING_SINCE['resume_from_step']})"
        )
    else:
        fix = (
            f"this checkout's {inv.entry} can neither save periodically nor resume ({src}; both arrived "
            f"{SETTING_SINCE['save_every']}): raise --time above the estimate, or update nanochat"
        )
    why = (
        f"--signal={signal_opt} does not help: the {profile.name} era's trainers do not save on a signal"
        if signal_opt
        else "no --signal is set"
    )
    yield Finding(
        f"{inv.entry} saves only at the end and {why}: if the job reaches its time limit it is killed "
        "with no checkpoint",
        path=_p(script, inv),
        line=inv.line,
        fix=fix,
    )


# what a usage line shows in a key's place: `your_github_token`, `ghp_your_token_here`, `<key>`, `xxxxxxxx`
_PLACEHOLDER_RE = re.compile(r"your|here|xxxx|example|placeholder|changeme|redacted|<|\.\.\.|\*\*\*", re.I)


@check("SB009", "secret-in-script", severity="error")
def secret_in_script(script) -> Iterator[Finding]:
    """
    What it checks: API keys and tokens written into the script (WANDB_API_KEY=..., hf_...,
    ``wandb login <key>``). Findings show only the first 4 characters.

    Why it matters: batch scripts get copied to shared spool directories, committed and
    pasted into issues (one public nanochat PR shipped a wandb key this way).

    Example:
        export WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567

    How to fix: remove the key, revoke it, and read it from a file only you can read
    (``~/.netrc`` via ``wandb login`` on the login node, or ``source ~/.secrets``).
    """
    _readable(script)
    for model in script.walk():
        for lineno, line in enumerate(model.lines, 1):
            for rx, kind in SECRET_PATTERNS:
                m = rx.search(line)
                if not m:
                    continue
                secret = m.group(m.lastindex)
                if _PLACEHOLDER_RE.search(secret) or len(set(secret)) <= 2:
                    continue  # `export GITHUB_TOKEN="your_github_token"` in a usage comment: no key at all
                label = m.group(1) if m.lastindex and m.lastindex > 1 else kind
                yield Finding(
                    f"{label} is written into the script ({mask(secret)})",
                    path=str(model.path),
                    line=lineno,
                    fix="remove it, revoke the key, and load it at run time from a private file (e.g. ~/.netrc)",
                )
                break


@check("SB012", "blocking-server", severity="error")
def blocking_server(script, profile) -> Iterator[Finding]:
    """
    What it checks: a chat web server (``scripts.chat_web``) started in the foreground by the job.

    Why it matters: it never returns, so the job holds every GPU until the time limit
    (run1000.sh ends this way) and is then reported as TIMEOUT.

    Example:
        python -m scripts.chat_web

    How to fix: remove it from the batch script; start the server in an interactive
    allocation when you want to chat.
    """
    _readable(script)
    blocking = set(profile.data.get("blocking_modules") or []) | {"scripts.chat_web"}
    for inv in script.all_invocations:
        if inv.entry in blocking and not inv.background:
            yield Finding(
                f"`{inv.entry}` starts a web server that never exits: the job holds its GPUs until the time limit",
                path=_p(script, inv),
                line=inv.line,
                fix="remove this line from the batch script",
            )
