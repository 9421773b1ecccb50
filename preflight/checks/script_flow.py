"""How a job's phases run and end: SB017, SB023-SB025 (SB018, where launches run: script_entry).

An ``exit`` the script reaches before its training, idle nodes (an allocation nothing launches
across), a crashed phase that still ends the job COMPLETED, and a ``timeout`` that SLURM's time
limit always beats.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.plan_launches import trainer_invocations
from preflight.registry import check
from preflight.script.model import VAR_NAME_RE
from preflight.script.placement import cross_node_commands, launch_nodes
from preflight.script.runvars import set_at_run_time
from preflight.script.tree import If, Item, iter_commands
from preflight.script.wrappers import timeout_seconds
from preflight.units import duration


@check("SB023", "idle-nodes", severity="warning")
def idle_nodes(script, job_env) -> Iterator[Finding]:
    """
    What it checks: a job that asks for several nodes (``--nodes`` > 1) while nothing in it
    launches across nodes: no ``srun`` (or mpirun, pdsh ...), only commands the batch shell
    runs itself, such as ``bash speedrun.sh`` or ``torchrun`` without ``srun``.

    Why it matters: the batch script runs on the first node only. The other nodes are
    allocated, billed and idle for the whole job, and a ``torchrun --nnodes=4`` started once
    waits at its rendezvous for agents nobody starts.

    Example:
        #SBATCH --nodes=4
        bash speedrun.sh

    How to fix: ask for one node (``--nodes=1``), or start one launcher per node with ``srun``:
    ``srun --ntasks-per-node=1 torchrun --nnodes=$SLURM_NNODES --rdzv_backend=c10d
    --rdzv_endpoint=$MASTER_ADDR:29500 ...``.
    """
    script.require_readable()
    nodes = job_env.nodes
    if nodes <= 1:
        raise Skip("the job asks for one node")
    invs = [i for i in script.all_invocations if i.module or i.script_file]
    if not invs:
        raise Skip("the script launches nothing preflight can see")
    spans = [launch_nodes(script, i, job_env) for i in invs]
    if any(s is None or s > 1 for s in spans) or cross_node_commands(script):
        return
    inv = invs[0]
    what = inv.module or inv.script_file
    waits = ""
    if inv.nnodes and inv.nnodes.strip("'\"") not in ("1", "1:1"):
        waits = f"; torchrun --nnodes={inv.nnodes} waits at its rendezvous for agents that no srun starts"
    where = job_env.sbatch_source.get("nodes", "")
    yield Finding(
        f"--nodes={job_env.sbatch.get('nodes')} ({where}) but nothing launches across nodes: {what} "
        f"(line {inv.line}) runs on the batch node only and {nodes - 1} node(s) stay idle{waits}",
        path=script.file_of(inv),
        line=inv.line,
        fix="ask for --nodes=1, or launch one torchrun per node with srun --ntasks-per-node=1 "
        "(torchrun --nnodes=$SLURM_NNODES --rdzv_backend=c10d --rdzv_endpoint=$MASTER_ADDR:29500)",
    )


# a condition on the script's own arguments ($#, $1, "$@", ${2:-x})
_ARGS_RE = re.compile(r"\$(?:[#@*1-9]|\{[#@*1-9])")
_EXITS = {"exit", "return", "false", "scancel", "kill"}
# commands that report a failure without ending anything
_BENIGN = {
    "echo",
    "printf",
    "true",
    ":",
    "[",
    "[[",
    "test",
    "let",
    "sleep",
    "date",
    "ls",
    "du",
    "df",
    "cat",
    "tee",
    "logger",
    "mail",
    "nvidia-smi",
    "touch",
    "rm",
    "cp",
    "mv",
    "mkdir",
    "sync",
    "wait",
}


def exits_script(cmds: list, functions: dict) -> bool | None:
    """True: one of them ends the script; False: none does; None: cannot tell (an unknown command)."""
    unknown = False
    for c in cmds:
        if c.name in _EXITS or any(w in ("exit", "return") for w in c.words):
            return True
        if c.name in functions:
            if exits_script(list(iter_commands(functions[c.name].body)), {}):
                return True
        elif c.name not in _BENIGN:
            unknown = True
    return None if unknown else False


def or_handler(cmds: list, idx: int) -> list:
    """The commands after `cmd ||`: one simple command (and its && chain) or a `{ ...; }` group."""
    cmd = cmds[idx]
    out: list = []
    for nxt in cmds[idx + 1 :]:
        if not out:
            if nxt.op_before != "||" and nxt.depth <= cmd.depth:
                break
        elif out[0].depth > cmd.depth:  # a group: `|| { ...; }`, on one line or several
            if nxt.depth <= cmd.depth:
                break
        elif not (nxt.op_before == "&&" and nxt.line == out[-1].line):
            break
        out.append(nxt)
    return out


def _if_around(nodes: list, cmd) -> If | None:
    for n in nodes:
        if isinstance(n, If):
            for cond, body in n.branches:
                if any(c is cmd for c in iter_commands(cond)):
                    return n
                found = _if_around(body, cmd)
                if found:
                    return found
            found = _if_around(n.else_body or [], cmd)
            if found:
                return found
        elif not isinstance(n, Item):
            found = _if_around(getattr(n, "body", []) + getattr(n, "cond", []), cmd)
            if found:
                return found
    return None


# what a trainer's output is piped into to keep a log: they succeed whatever the trainer did
# (`| while read line; do ... done`: a loop that parses the output; its status is its last command's)
_LOG_SINKS = {"tee", "cat", "ts", "sed", "awk", "gawk", "cut", "logger", "stdbuf", "sponge", "read"}


def _piped_away(model, cmds: list, idx: int, pipefail: bool) -> str | None:
    """`trainer | tee log` without pipefail: the pipeline's status is tee's. That loses the
    failure where something reads that status: set -e, `|| exit`, an `if`, or the job's end."""
    cmd = cmds[idx]
    if cmd.op_after != "|" or pipefail:
        return None
    end = idx + 1
    while end < len(cmds) - 1 and cmds[end].op_after == "|":
        end += 1
    if end >= len(cmds) or cmds[end].name not in _LOG_SINKS:
        return None
    sink, after = cmds[end], cmds[end + 1] if end + 1 < len(cmds) else None
    if after is not None and any("PIPESTATUS" in w for w in after.raw_words):
        return None  # `exit ${PIPESTATUS[0]}`: the script reads the trainer's own status
    last = after is None and cmd.depth == 0 and not cmd.in_function
    if not (model.errexit or sink.op_after == "||" or cmd.in_condition or last):
        return None  # nothing reads the status anyway (missing-set-e says so when steps follow)
    if sink.name == "read":
        if not sink.in_condition:
            return None
        shown, whose = "while read", "the loop's"
    else:
        shown, whose = sink.name, f"{sink.name}'s"
    return f"`| {shown}` (line {sink.line}) without `set -o pipefail`: the pipeline's exit status is {whose}"


def _swallowed(model, cmd, functions: dict, pipefail: bool = False) -> str | None:
    """How a failure of ``cmd`` is swallowed (None: it is not, or it cannot be told)."""
    cmds = model.commands
    idx = next((k for k, c in enumerate(cmds) if c is cmd), None)
    if idx is None:
        return None
    piped = _piped_away(model, cmds, idx, pipefail)
    if piped:
        return piped
    if cmd.op_after == "||":
        handler = or_handler(cmds, idx)
        if handler and exits_script(handler, functions) is False:
            first = handler[0]
            shown = "|| true" if first.name in ("true", ":") and len(handler) == 1 else "|| { ... } without exit"
            return f"`{shown}` (line {first.line})"
        return None
    if cmd.in_condition:
        node = _if_around(model.tree, cmd)
        if node is None:
            return None
        if cmd.negated:
            body = next((b for cond, b in node.branches if any(c is cmd for c in iter_commands(cond))), [])
            return (
                None
                if exits_script(list(iter_commands(body)), functions) is not False
                else "`if ! ...; then` whose branch does not exit"
            )
        if node.else_body is None:
            return "`if ...; then ... fi` without an else that exits"
        return (
            None
            if exits_script(list(iter_commands(node.else_body)), functions) is not False
            else "`if ...; else` whose else does not exit"
        )
    nxt = cmds[idx + 1] if idx + 1 < len(cmds) else None
    if nxt is not None and idx + 2 == len(cmds) and nxt.name in ("true", ":") and not model.errexit:
        return f"`{nxt.name}` as the script's last command (line {nxt.line})"
    return None


@check("SB024", "failure-swallowed", severity="error")
def failure_swallowed(script, profile) -> Iterator[Finding]:
    """
    What it checks: a training phase whose failure the script throws away: ``|| true``,
    ``|| { echo ...; }`` without ``exit``, ``if torchrun ...; then ... fi`` with no ``else`` that
    exits, a ``true`` after it as the script's last command, or its output piped into ``tee``
    (``cat``, ``sed``, a ``while read`` loop ...) without ``set -o pipefail`` where ``set -e``,
    ``||``, an ``if`` or the job's end reads the pipeline's status (which is then tee's).
    ``set -e`` does not help: bash ignores errexit in a command followed by ``||`` and in an
    ``if`` condition.

    Why it matters: the trainer crashes (OOM, no data, NCCL timeout) and the job still ends
    COMPLETED with exit code 0; later phases start on a missing checkpoint and the real
    failure is found hours later, if at all.

    Example:
        timeout 172800s $TRAIN_CMD || {
            echo "Training exited with code: $?"
        }

    How to fix: end the handler with ``exit 1`` (``|| { echo "failed: $?"; exit 1; }``), give
    the ``if`` an ``else exit 1``, or ``set -o pipefail`` before a ``| tee``.
    """
    script.require_readable()
    trainers = trainer_invocations(script, profile)
    if not trainers:
        raise Skip("the script runs no training phase preflight can see")
    trainer_ids = {id(i) for i in trainers}
    pipefail = any(m.pipefail_line is not None for m in script.walk())
    reported = set()
    for model in script.walk():
        functions = {f.name: f for f in model.functions}
        for inv in model.invocations:
            if id(inv) not in trainer_ids:
                continue
            outer = next((c for c in model.commands if c is inv.command), None) or next(
                (c for c in model.commands if c.line == inv.line and c.file == inv.file), None
            )
            if outer is None or (outer.file, outer.line) in reported:
                continue
            how = _swallowed(model, outer, functions, pipefail)
            template = inv.template
            if not how and template is not None and (template.file, template.line) not in reported:
                # `run() { torchrun ... | tee log; }`: the pipe is in the function, once for all its calls
                idx = next((k for k, c in enumerate(model.commands) if c is template), None)
                how = _piped_away(model, model.commands, idx, pipefail) if idx is not None else None
                if how:
                    reported.add((template.file, template.line))
            if how:
                reported.add((outer.file, outer.line))
                piped = how.startswith("`| ")
                yield Finding(
                    f"{inv.entry} (line {inv.line}) can crash and the job still ends COMPLETED: its failure "
                    f"is swallowed by {how}",
                    path=script.file_of(inv),
                    line=inv.line,
                    fix="add `set -o pipefail` near the top (`set -euo pipefail`)"
                    if piped
                    else 'end the failure branch with `exit 1` (|| { echo "failed: $?"; exit 1; })',
                )


@check("SB025", "timeout-not-before-limit", severity="warning")
def timeout_not_before_limit(script, job_env) -> Iterator[Finding]:
    """
    What it checks: ``timeout DURATION`` in front of a phase where DURATION is not shorter than
    the job's ``--time``: the timeout cannot fire before SLURM ends the job.

    Why it matters: the script's plan for a timeout (exit code 124, a message, a resume hint,
    a final save) never runs: SLURM kills the job first and it ends TIMEOUT.

    Example:
        #SBATCH -t 48:00:00
        timeout 172800s python -m scripts.base_train --depth=24

    How to fix: make the timeout end well before the limit (``timeout 47h`` for ``-t 48:00:00``,
    leaving time for what runs before and after), or drop it and rely on ``--save_every``.
    """
    script.require_readable()
    limit = job_env.time_limit_s
    if limit is None:
        raise Skip("the job sets no --time (or an unlimited one)")
    for inv in script.all_invocations:
        seconds = timeout_seconds(inv.timeout)
        if not seconds or seconds < limit:
            continue
        yield Finding(
            f"timeout {inv.timeout} ({duration(seconds)}) around {inv.module or inv.script_file} "
            f"(line {inv.line}) cannot fire before --time={job_env.sbatch.get('time')} ({duration(limit)}) "
            "ends the job: SLURM kills it first and the script's timeout handling never runs",
            path=script.file_of(inv),
            line=inv.line,
            fix=f"use a timeout well under the limit (e.g. timeout {max(1, int(limit * 0.95 // 60))}m) or drop it",
        )


@check("SB017", "exits-before-training", severity="error")
def exits_before_training(script, job_env) -> Iterator[Finding]:
    """
    What it checks: an ``exit`` the script surely reaches before it launches its training,
    decided from the environment ``sbatch`` hands the job (this shell's, by default): a guard
    such as ``if [ -z "$WANDB_RUN" ]; then ... exit 1; fi``, ``[ -n "$X" ] || exit 1``,
    ``: "${X:?}"`` or a function that exits unless the variable its argument names is set
    (``require_env RUN_NAME``, bash's ``${!name}``), whose variable is not set here. A guard on the
    script's own arguments (``[ $# -eq 0 ]``, ``[ -z "$1" ]``) is decided from the arguments it is
    checked with: none, as ``sbatch job.sh`` runs it, unless given (``preflight check job.sh -- ARGS``).
    In a runner (no ``#SBATCH`` lines) a variable unset here is its caller's to set: a warning, and
    the script after a ``${X:?}`` guard is still read.

    Why it matters: the job waits in the queue, starts, prints the guard's message and ends
    FAILED (or COMPLETED, with ``exit 0``) without training anything.

    Example:
        if [ -z "$WANDB_RUN" ]; then echo "set WANDB_RUN"; exit 1; fi   # and WANDB_RUN is not set

    How to fix: set what the guard asks for before ``sbatch`` (``WANDB_RUN=d20 sbatch job.sh``,
    or ``sbatch --export=ALL,WANDB_RUN=d20 job.sh``), or remove the guard.
    """
    from preflight.script.launchers import launches_of
    from preflight.script.parser import included_file

    script.require_readable()
    # a script with no #SBATCH lines is run by something else (srun, mpirun, a wrapper): its caller may set them
    submitted = bool(script.active_directives())
    name = script.path.name if script.path else "job.sh"
    for model in script.walk():
        stop = model.exited or model.required_unset  # (a runner's `${X:?}`: the rest was read as if X were set)
        if stop is None:
            continue
        line, file, command, why = stop
        unreached = (
            model.unreached
            if model.exited is not None
            else [c for c in model.commands if c.file == file and c.line > line]
        )
        skipped = []
        for cmd in unreached:
            invs = launches_of(model, cmd)
            for what in [inv.module or inv.script_file for inv in invs] if invs else [included_file(cmd)]:
                if what and what not in skipped:
                    skipped.append(what)
        if not skipped:
            continue  # an exit after the last launch (or with nothing after it) ends a finished script
        # (what SLURM sets at run time is not the user's to set: ${SLURM_ARRAY_TASK_ID:-${DEPTH:?}} asks for DEPTH)
        unset = [
            v for v in dict.fromkeys(VAR_NAME_RE.findall(why or "")) if not job_env.get(v) and not set_at_run_time(v)
        ]
        because = (
            f": `{why.removesuffix(' is true')}` is true"
            if why and why.endswith(" is true")
            else f": {why}"
            if why
            else ""
        )
        by_args = model is script and model.positional is not None and bool(_ARGS_RE.search(why or ""))
        if by_args:
            given = shlex.join(model.positional)
            runs = "sbatch" if submitted else "bash"  # a runner (no #SBATCH lines) is run, not submitted
            because += f" (with {f'the arguments {given}' if given else 'no arguments'}, as `{runs} {name}"
            because += f"{' ' + given if given else ''}` runs it)"
        if unset:
            names = ", ".join(unset)
            who = (
                "the environment sbatch passes to the job"
                if submitted
                else "this shell, and the script has no #SBATCH lines: whatever runs it must set it"
            )
            because += f" ({names} {'is' if len(unset) == 1 else 'are'} not set in {who})"
        how = (
            f"is replaced by `{command[:80]}` at line {line}"
            if command.startswith("exec ")
            else f"exits at line {line} (`{command}`)"
        )
        yield Finding(
            f"the script {how} before it runs {', '.join(skipped[:6])}{' ...' if len(skipped) > 6 else ''}{because}",
            path=file,
            line=line,
            fix=f"pass the script its arguments ({'sbatch' if submitted else 'bash'} {name} ARGS) and check it with "
            f"them: preflight check {name} -- ARGS"
            if by_args
            else f"set {unset[0]} before sbatch ({unset[0]}=... sbatch {name})"
            if unset and submitted
            else f"make sure whatever runs it sets {unset[0]}"
            if unset
            else "change the condition or remove the exit",
            severity=None if submitted or not unset else Severity.WARNING,
        )
