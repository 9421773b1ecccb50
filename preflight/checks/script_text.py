"""Checks on the batch script as a file of shell text: readable, parsable by bash, Unix line
endings, an interpreter that exists (SB013, SB015, SB029). The other script checks read what it
does (``script``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from preflight.checks.script import _readable
from preflight.facts import FactUnavailable
from preflight.model import Finding
from preflight.registry import check


@check("SB015", "script-unparsable", severity="error")
def script_unparsable(script) -> Iterator[Finding]:
    """
    What it checks: that the batch script is readable shell text: not binary, UTF-8, not
    absurdly large, every line tokenises (no unterminated quote or substitution), and its
    blocks pair up (``if``/``fi``, ``for``/``done``, ``case``/``esac``, braces). A block
    structure preflight cannot pair is reported only when ``bash -n`` (parse, never run)
    rejects the script too, with bash's own message.

    Why it matters: sbatch will refuse or bash will stop at the broken line; every other
    script check would be guessing. An ``if`` or ``for`` left open makes bash run the lines
    before it and then stop with ``syntax error: unexpected end of file`` (exit code 2):
    the training in that block never starts, after the whole wait in the queue.

    Example:
        echo "starting the run
        torchrun --nproc_per_node=8 -m scripts.base_train

    How to fix: close the quote or the block, convert the file to UTF-8 text, or point
    preflight at the right file.
    """
    for problem in script.problems:
        yield Finding(problem, path=str(script.path), fix="point preflight at the batch script (a UTF-8 text file)")
    for line, why in script.unparsable[:20]:
        yield Finding(
            f"line {line} cannot be parsed: {why}; bash will fail or run it differently",
            path=str(script.path),
            line=line,
            fix="close the quote or substitution on this line",
        )
    if script.ok and not script.unparsable and script.problems_eval and script.structure_line is not None:
        error = _bash_syntax_error(script)
        if error:
            where, unclosed = script.structure_line, script.problems_eval.startswith("unclosed ")
            said = f" (never closed: {script.problems_eval.removeprefix('unclosed ')})" if unclosed else ""
            yield Finding(
                f"bash cannot parse the script: {error}{said}. bash runs the lines before line {where}, then stops "
                "with exit code 2: nothing from there on runs",
                path=str(script.path),
                line=where,
                fix="close the block (fi, done, esac, }) or remove the stray keyword; `bash -n SCRIPT` checks the syntax",
            )


_SHELLS = ("bash", "sh")


def _bash_syntax_error(script) -> str | None:
    """bash's own syntax error for the script (``bash -n``: parse only, no command runs); None if
    bash accepts it, is not installed, or the script is written for another interpreter."""
    from preflight.proc import ToolTimeout, run_tool

    interpreter = (script.shebang or "bash").split()
    name = os.path.basename(interpreter[0]) if interpreter else "bash"
    if name == "env" and len(interpreter) > 1:
        name = os.path.basename(interpreter[1])
    if name not in _SHELLS or not script.path:
        return None
    # no startup files, no BASH_ENV: nothing but the parser runs; extglob on, as `-n` never runs the
    # script's own `shopt -s extglob` (which makes `+(a|b)` patterns parse at run time)
    args = ["bash", "--norc", "--noprofile", "-O", "extglob", "-n", str(script.path)]
    try:
        res = run_tool(args, timeout=5, env={"PATH": os.defpath})
    except (FactUnavailable, ToolTimeout):
        return None
    if res.returncode == 0:
        return None
    lines = [ln.split(": ", 1)[1] if ln.startswith(str(script.path)) else ln for ln in res.stderr.splitlines()]
    said = [ln for ln in lines if "syntax error" in ln]
    return said[0][:200] if said else None


@check("SB013", "crlf-line-endings", severity="error", kills_at_start=True)
def crlf_line_endings(script) -> Iterator[Finding]:
    """
    What it checks: Windows (CRLF) line endings in the script.

    Why it matters: sbatch refuses the script ("DOS line breaks"), and bash reads every
    command with a trailing ``\\r`` (``$'\\r': command not found``).

    Example:
        #!/bin/bash\\r\\n

    How to fix: ``sed -i 's/\\r$//' job.sbatch`` (or ``dos2unix job.sbatch``).
    """
    _readable(script)
    for model in script.walk():
        if model.crlf_lines:
            yield Finding(
                f"{model.crlf_lines} line(s) end with CRLF (Windows line endings)",
                path=str(model.path),
                line=1,
                fix=f"sed -i 's/\\r$//' {model.path}",
            )


@check("SB029", "interpreter-missing", severity="warning", kills_at_start=True)
def interpreter_missing(script, job_env) -> Iterator[Finding]:
    """
    What it checks: the interpreter the script's ``#!`` line names: that the path exists here,
    or for ``#!/usr/bin/env NAME`` that NAME is on the job's PATH. A warning, as the compute
    nodes may differ from the machine preflight runs on.

    Why it matters: slurmstepd starts the batch script with that interpreter; without it the
    job fails at once (``execve(): bad interpreter(...): No such file or directory``, exit code
    2) and nothing in the script runs.

    Example:
        #!/opt/conda/envs/old/bin/bash

    How to fix: ``#!/bin/bash`` (every node has it), then activate environments inside the
    script.
    """
    script.require_readable()
    words = (script.shebang or "").split()
    if not words:
        return
    interpreter, missing = words[0], None
    if not os.path.isabs(interpreter) or not os.path.isfile(interpreter):
        missing = f"{interpreter} does not exist here"
    elif os.path.basename(interpreter) == "env" and len(words) > 1 and not words[1].startswith("-"):
        # the PATH the job starts with: the script's own `export PATH=...` comes after the #! line has run
        path = job_env.start.get("PATH") if job_env.start else job_env.get("PATH")
        if shutil.which(words[1], path=path or os.defpath) is None:
            missing = f"{words[1]} (run through {interpreter}) is not on the job's PATH here"
    if missing:
        yield Finding(
            f"#!{script.shebang}: {missing}; if a compute node lacks it too, the job fails at once "
            "(execve(): bad interpreter, exit code 2) and nothing in the script runs",
            path=str(script.path),
            line=1,
            fix="#!/bin/bash (and activate environments inside the script)",
        )
