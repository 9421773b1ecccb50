"""LOG013: what the job's shell could not run (`command not found`): a step that never happened, with no traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check

# bash builtins dash (/bin/sh) lacks: "not found" for one of them means /bin/sh ran a bash script
_BASH_ONLY = {"source", "shopt", "declare", "local", "pushd", "popd", "mapfile", "readarray", "[["}


@check("LOG013", "command-not-found", stage="post", severity="warning")
def command_not_found(logs) -> Iterator[Finding]:
    """
    What it checks: the shell's ``command not found`` lines in the job's logs: a command the
    batch script (or a script it runs) could not find on the node, and bash builtins such as
    ``source`` that ``/bin/sh`` (dash) does not have.

    Why it matters: nothing of that step happened (an install, an environment, a download), and
    with no ``set -e`` the script runs on: the phases after it fail later with other errors, or the
    job ends COMPLETED having trained nothing. ``source: not found`` means the script ran under
    ``/bin/sh``: its ``#!`` line is missing or not bash. A warning: a missing helper (``bc`` for a
    cost line in a speedrun that finished) may have mattered to nothing; the phase table says.

    Example:
        runs/speedrun.sh: line 52: uv: command not found
        /var/lib/slurm/slurmd/job713551/slurm_script: 4: source: not found

    How to fix: put the command on the nodes' PATH in the script before that line (``export
    PATH="$HOME/.local/bin:$PATH"``) or install it there; for a bash builtin, make
    ``#!/bin/bash`` the script's first line.
    """
    told: set[tuple[str, str]] = set()
    for ix, ev in logs.slurm_events("not-found"):
        cmd, where, lineno = ev.data["cmd"], ev.data["where"], ev.data["lineno"]
        if (where, cmd) in told:
            continue
        told.add((where, cmd))
        script = os.path.basename(where)
        if cmd in _BASH_ONLY:
            yield Finding(
                f"{script} line {lineno}: `{cmd}: not found`: /bin/sh (dash) ran the script, which has no `{cmd}` "
                "(a bash builtin): what it should have done did not happen",
                path=ix.path,
                line=ev.line,
                fix="make #!/bin/bash the script's first line (sbatch runs the script with its #! interpreter)",
            )
        else:
            yield Finding(
                f"{script} line {lineno}: `{cmd}` was not found on the node: that step did not run, and what "
                "needed it after it failed or ran without it",
                path=ix.path,
                line=ev.line,
                fix=f"install {cmd} on the nodes or put it on PATH in the script before line {lineno} "
                '(export PATH="$HOME/.local/bin:$PATH")',
            )
