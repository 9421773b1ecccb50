"""SB016: does the signal SLURM sends before the time limit (``--signal``) reach the trainer?

Measured on SLURM 22.05 (the local cluster), a 1-minute job with ``--signal=...@50`` and a Python
process that saves on SIGUSR1:
- ``B:USR1`` and no trap: the batch shell dies of it after 8 s, FAILED 0:10, nothing saved;
- ``B:USR1`` with a trap, trainer in the foreground: bash runs the trap only after the command
  ends, so it never ran; TIMEOUT, nothing saved;
- ``USR1`` (no ``B:``) and the trainer started by the batch shell: it never got it; TIMEOUT;
- ``USR1`` (no ``B:``) and ``srun python ...``: it got it and saved.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

from preflight.model import Finding
from preflight.plan_launches import trainer_invocations, trains
from preflight.registry import check

_SIGNAL_RE = re.compile(r"^(?:(?P<flags>[RB]+):)?(?P<sig>[A-Za-z0-9+]+)(?:@(?P<secs>\d+))?$")
_FORWARD_EXAMPLE = "scripts/speedrun.slurm"


def signal_name(spec: str) -> str | None:
    """USR1, SIGUSR1, usr1 or 10 -> 'USR1' (None when it is no signal)."""
    s = spec.strip().upper()
    if s.isdigit():
        try:
            return signal.Signals(int(s)).name.removeprefix("SIG")
        except ValueError:
            return None
    s = s.removeprefix("SIG")
    return s if f"SIG{s}" in signal.Signals.__members__ else None


def parse_signal_option(value: str) -> tuple[bool, str] | None:
    """``--signal`` value -> (to the batch shell only, signal name); None when unparsable."""
    m = _SIGNAL_RE.match(value.strip())
    if not m:
        return None
    name = signal_name(m.group("sig"))
    return (("B" in (m.group("flags") or "")), name) if name else None


def _caller(model, child):
    """The command of ``model`` that runs the included file ``child`` (`source x.sh`, `bash x.sh`, `exec bash x.sh`)."""
    line = model.include_lines.get(str(child.path))
    return next((c for c in model.commands if c.line == line), None)


def _batch_shell_commands(model) -> list:
    """The commands the batch shell runs itself: its own and those of files it sources or execs (`exec bash x.sh`
    replaces it; a plain `bash x.sh` child is another process: its traps do not protect the batch shell)."""
    cmds = list(model.commands)
    for child in model.includes:
        caller = _caller(model, child)
        if caller is not None and caller.name in ("source", ".", "exec"):
            cmds += _batch_shell_commands(child)
    return cmds


def _trapped(script, name: str) -> list:
    """The batch shell's ``trap`` commands that run something on signal ``name`` (not ``trap - SIG``
    or ``trap '' SIG``)."""
    found = []
    for cmd in _batch_shell_commands(script):
        if cmd.name != "trap":
            continue
        words = cmd.words[1:]
        if words and words[0] == "--":
            words = words[1:]
        if len(words) < 2 or words[0] in ("-", ""):
            continue
        if any(signal_name(w) == name for w in words[1:]):
            found.append(cmd)
    return found


def _trapping_child(model, name: str) -> tuple | None:
    """(the `bash runner.sh` line, the runner's own trap) where the batch shell runs, in the foreground and as its
    last word, a child script that traps signal ``name`` itself (it would forward it, if it got it)."""
    for child in model.includes:
        caller = _caller(model, child)
        if caller is None or caller.name in ("source", ".") or caller.background:
            continue
        if any(c.line > caller.line for c in model.commands):  # exec would never run what follows it
            continue
        traps = _trapped(child, name)
        if traps:
            return caller, traps[0]
    return None


@check("SB016", "signal-not-delivered", severity="error")
def signal_not_delivered(ctx, script, job_env, profile) -> Iterator[Finding]:
    """
    What it checks: that the signal ``#SBATCH --signal`` asks for can reach the trainer.
    With ``B:`` SLURM signals only the batch shell: it needs a ``trap`` for that signal, and the
    trainer must run in the background (``&`` then ``wait``), since bash runs a trap only after
    the foreground command ends. Without ``B:`` SLURM signals job steps only (``srun``); a
    trainer the batch shell starts itself never gets it.

    Why it matters: the signal is the job's one chance to save before the time limit. An
    untrapped ``B:USR1`` kills the batch shell (job FAILED, exit 0:10) and the running phase
    with it; otherwise the job runs into TIMEOUT as if no signal had been asked for.

    Example:
        #SBATCH --signal=B:USR1@600
        torchrun --nproc_per_node=8 -m nanochat.base_train -- --depth=20

    Without ``--signal``, a ``trap ... TERM`` in the batch shell is checked too: at the time
    limit SLURM sends SIGTERM to every process of the job, the trainer included, and bash runs
    the trap only after a foreground trainer has exited; a trainer that does not save on a
    signal (every upstream era) dies with what it saved last, whatever the trap promises.

    How to fix: trap the signal, forward it to the trainer started with ``&``, and ``wait``
    until it is gone (scripts/speedrun.slurm does this); or drop ``B:`` and start the
    trainer with ``srun``. For upstream trainers a trap cannot save anything: pass
    ``--save_every`` and resume from the last checkpoint.
    """
    script.require_readable()
    value = job_env.sbatch.get("signal")
    if not value:
        yield from _term_trap(ctx, script, profile)
        return
    line = job_env.directive_line("signal")
    parsed = parse_signal_option(value)
    if parsed is None:
        yield Finding(
            f"--signal={value} is not a signal SLURM understands ([B:]SIG[@seconds])",
            path=str(script.path),
            line=line,
            fix="#SBATCH --signal=B:USR1@600",
        )
        return
    batch_only, name = parsed
    trainers = trainer_invocations(script, profile)
    if not trainers:
        return
    if not batch_only:
        direct = [i for i in trainers if not i.srun]
        if direct:
            inv = direct[0]
            yield Finding(
                f"--signal={value} has no B:, so SLURM sends SIG{name} to srun job steps only; {inv.entry} "
                f"(line {inv.line}) is started by the batch shell itself and never receives it: the job runs "
                "into its time limit without saving",
                path=script.file_of(inv),
                line=inv.line,
                fix=f"#SBATCH --signal=B:{name}@<seconds> with a trap that forwards it to the trainer "
                f"(see {_FORWARD_EXAMPLE}), or start the trainer with srun",
            )
        return
    traps = _trapped(script, name)
    if not traps:
        number = int(signal.Signals[f"SIG{name}"])
        runner = _trapping_child(script, name)
        yield Finding(
            f"--signal={value} sends SIG{name} to the batch shell only, and the script has no "
            f"`trap ... {name}`: bash dies of it (job FAILED, exit 0:{number}) and the running phase is "
            "killed without saving"
            + (
                f" ({runner[0].words[-1]}, which it runs as a child at line {runner[0].line}, traps {name} "
                f"itself at its line {runner[1].line}, but never receives it)"
                if runner
                else ""
            ),
            path=str(script.path),
            line=line,
            fix=f"`exec {' '.join(runner[0].words)}` (line {runner[0].line}): the runner becomes the batch shell, "
            f"and its own trap forwards {name} to the trainer"
            if runner
            else f"trap {name} and forward it to the trainer started with & and waited for (see {_FORWARD_EXAMPLE})",
        )
        return
    foreground = [i for i in trainers if not i.background]
    if foreground:
        inv = foreground[0]
        yield Finding(
            f"{inv.entry} (line {inv.line}) runs in the foreground: bash runs the {name} trap only after it "
            "ends, so the trainer never gets the signal and is killed at the time limit",
            path=script.file_of(inv),
            line=inv.line,
            fix="start it with `&`, then `PID=$!; wait $PID || wait $PID` (a trapped signal ends the first "
            f"wait early; see {_FORWARD_EXAMPLE})",
        )
        return
    trap = traps[0]
    long_before = [
        i
        for i in script.all_invocations
        if not i.background and i.file == trap.file and i.line < trap.line and i.entry and _is_long_setup(i, profile)
    ]
    if long_before:
        inv = long_before[0]
        yield Finding(
            f"the {name} trap (line {trap.line}) is set after {inv.entry} (line {inv.line}) runs in the "
            "foreground: a signal during it kills the batch shell",
            path=script.file_of(trap),
            line=trap.line,
            fix="move the trap (and the function it calls) above the first command of the script",
        )


def _term_trap(ctx, script, profile) -> Iterator[Finding]:
    """A TERM trap (no --signal) that cannot make the trainer save at the time limit."""
    from preflight.checkout import setting_flag
    from preflight.checks.flags import checkout_or_none

    if profile.data.get("saves_on_signal"):
        return  # the trainer itself saves on the SIGTERM SLURM sends it
    traps = _trapped(script, "TERM")
    trainers = trainer_invocations(script, profile)
    if not traps or not trainers:
        return
    trap, inv = traps[0], trainers[0]
    # the flags as the checkout the job runs spells them (--save-every from 2026-01-13), else the era's
    checkout = checkout_or_none(ctx)
    entry = checkout.entry(inv.entry, inv.script_file) if checkout is not None and inv.entry else None
    if entry is not None and entry.ok and entry.saves_on_signal:
        return  # this checkout's trainer installs its own handler: it saves on the SIGTERM SLURM sends it
    foreground = next(
        (i for i in trainers if not i.background and trains(i, profile, profile.phase_of_module(i.entry, i.args))),
        None,
    )
    when = (
        f"bash runs it only after {foreground.entry} (line {foreground.line}), running in the foreground, has exited; "
        if foreground is not None
        else ""
    )
    save, _ = setting_flag(checkout, profile, inv.entry, "save_every", inv.script_file)
    resume, _ = setting_flag(checkout, profile, inv.entry, "resume_from_step", inv.script_file)
    resume_text = f" and resume with {resume}=STEP" if resume else ""
    if save and inv.flag("save_every") is not None:
        again = f"rerun with {resume}=STEP (its last checkpoint)" if resume else "resume from its last checkpoint"
        fix = f"it already passes {save}: {again}; the trap can only report, not save"
    elif save:
        fix = f"pass {save}=N to {inv.entry}{resume_text}; the trap can only report, not save"
    else:
        fix = f"this {inv.entry} has no periodic save: split the run into jobs that fit the time limit"
    yield Finding(
        f"`{' '.join(trap.words[:2])} ... TERM` (line {trap.line}) cannot make {inv.entry} save at the time "
        f"limit: {when}SLURM sends SIGTERM to the trainer too, and the {profile.name} era's trainers do not "
        f"save on a signal, so it dies with only what {save or 'it'} saved last",
        path=script.file_of(trap),
        line=trap.line,
        fix=fix,
    )


def _is_long_setup(inv, profile) -> bool:
    """Steps before training that can run for hours: tokenizer training, dataset downloads."""
    return profile.phase_of_module(inv.entry, inv.args) == "tokenizer" or inv.entry == profile.modules.get("dataset")
