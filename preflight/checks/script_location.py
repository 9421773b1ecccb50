"""What a batch job lacks that a terminal has: the submitted file's own location (``dirname "$0"``, SB036) and
a keyboard (``read -p``, SB037)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.checks.script import _readable
from preflight.model import Finding, Severity
from preflight.registry import check

# the script's own path: $0, ${0}, $BASH_SOURCE, ${BASH_SOURCE[0]}
_SELF = r"(?:\$0\b|\$\{0\}|\$\{BASH_SOURCE(?:\[0\])?\}|\$BASH_SOURCE\b)"
# its directory: `dirname "$0"`, `realpath "$0"`, `readlink -f "$0"`, `${0%/*}`, `${BASH_SOURCE[0]%/*}`
_SELF_DIR_RE = re.compile(
    rf"(?:\bdirname|\brealpath|\breadlink\s+-f)\s+[\"']?{_SELF}|\$\{{(?:0|BASH_SOURCE(?:\[0\])?)%/\*\}}"
)
_SPOOL = "SlurmdSpoolDir/job<ID>/slurm_script"


@check("SB036", "script-dir-in-batch-job", severity="error", kills_at_start=True)
def script_dir_in_batch_job(script) -> Iterator[Finding]:
    """
    What it checks: a batch script (one with ``#SBATCH`` lines) that finds its files from its
    own location: ``cd "$(dirname "$0")"``, or a variable such as
    ``SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)`` that a later command uses
    as a path.

    Why it matters: sbatch does not run the file you submitted but a copy in slurmd's spool
    directory (``SlurmdSpoolDir/job<ID>/slurm_script``, e.g. under ``/var/spool/slurmd``), so
    ``$0`` and ``BASH_SOURCE`` name the copy. The job cds there, or looks for its files there,
    and ``python -m scripts.base_train`` finds no nanochat package; the same script works when
    run with ``bash``.

    Example:
        #SBATCH --gres=gpu:8
        cd "$(dirname "$0")"
        torchrun --standalone --nproc_per_node=8 -m scripts.base_train

    How to fix: ``cd "$SLURM_SUBMIT_DIR"`` (the directory you ran sbatch from; submit from the
    checkout) or the checkout's absolute path; for a variable,
    ``SCRIPT_DIR=${SLURM_SUBMIT_DIR:-$(dirname "$0")}``.
    """
    _readable(script)
    if not script.directives:
        return  # a runner bash starts from its own file: $0 is that file
    # variable -> (the variable that took the script's directory, its line): SCRIPT_DIR, and PROJECT_DIR built from it
    tainted: dict[str, tuple[str, int]] = {}
    # ${SLURM_SUBMIT_DIR:-$(dirname "$0")}, or `if [ -n "$SLURM_SUBMIT_DIR" ]; then X=$SLURM_SUBMIT_DIR; else
    # X=$(dirname "$0")`: the submit directory under sbatch
    submit = {a.name for a in script.assignments if "SLURM_SUBMIT_DIR" in a.value}
    for a in sorted(script.assignments, key=lambda a: a.line):
        if a.file != str(script.path) or a.name in submit:
            continue
        if _SELF_DIR_RE.search(a.value):
            tainted.setdefault(a.name, (a.name, a.line))
        elif (src := next((n for n in tainted if _uses(a.value, n)), None)) is not None:
            tainted.setdefault(a.name, tainted[src])
    for cmd in script.commands:
        if cmd.file != str(script.path):
            continue  # a script the job runs with bash is run from its own file
        text = " ".join(cmd.raw_words)
        if "SLURM_SUBMIT_DIR" in text:
            continue
        if cmd.name in ("cd", "pushd") and _SELF_DIR_RE.search(text):
            yield Finding(
                f"line {cmd.line} cds to the script's own directory (`{text[:80]}`), but sbatch runs a copy of the "
                f"script in slurmd's spool directory ({_SPOOL}): the job moves there, where the checkout's files and "
                "`python -m scripts...` are not",
                path=str(script.path),
                line=cmd.line,
                fix='cd "$SLURM_SUBMIT_DIR" (the directory sbatch was run from: submit from the checkout) or cd to '
                "the checkout's absolute path",
            )
            return
        used = next((name for name in tainted if _uses(text, name)), None)
        if used is not None:
            root, line = tainted[used]
            via = f"{used} is built from {root} (line {line})," if used != root else f"{root} (line {line}) is"
            yield Finding(
                f"{via} the script's own directory, which under sbatch is the spool directory of a copy of the "
                f"script ({_SPOOL}): line {cmd.line} (`{text[:80]}`) looks for files there",
                path=str(script.path),
                line=line,
                fix=f'{root}="${{SLURM_SUBMIT_DIR:-$(dirname "$0")}}" (then submit from the script\'s directory) or '
                "an absolute path",
            )
            return


def _uses(text: str, name: str) -> bool:
    return re.search(rf"\$\{{?{re.escape(name)}\b", text) is not None


@check("SB037", "interactive-prompt", severity="warning")
def interactive_prompt(script) -> Iterator[Finding]:
    """
    What it checks: a batch script that waits for the keyboard: ``read`` (``read -p "Press
    Enter..."``) with no input redirected to it, no pipe into it and not in a ``while read`` loop.

    Why it matters: a batch job has no terminal; its standard input is ``/dev/null``, so
    ``read`` gets end-of-input at once and returns 1: with ``set -e`` the job stops there,
    and without it the variable is empty and the job goes on without the answer.

    Example:
        #SBATCH --gres=gpu:8
        read -p "Press Enter when your dataset is ready..."

    How to fix: remove the prompt from the batch script (check the condition it waits for
    instead: ``[ -d "$DATA" ] || { echo "no data"; exit 1; }``), or take the answer from a
    variable: ``ANSWER=${ANSWER:-yes}``.
    """
    _readable(script)
    if not script.directives:
        return  # a runner started from a terminal has a keyboard
    for cmd in script.commands:
        if cmd.file != str(script.path) or cmd.name != "read" or cmd.in_condition or cmd.op_before == "|":
            continue
        if any(op.startswith("<") for op, _target in cmd.redirects):
            continue  # read from a file or a here-string
        stops = script.set_e_line is not None and script.set_e_line < cmd.line
        yield Finding(
            f"line {cmd.line} waits for the keyboard (`{' '.join(cmd.raw_words)[:80]}`), but a batch job's input "
            "is /dev/null: read gets end-of-input and returns 1"
            + (
                f", and with set -e (line {script.set_e_line}) the job stops here"
                if stops
                else ", and the job goes on without the answer"
            ),
            path=str(script.path),
            line=cmd.line,
            severity=Severity.ERROR if stops else None,
            fix="remove the prompt from the batch script (test what it waits for instead), or read the answer from "
            "a variable set before sbatch",
        )
