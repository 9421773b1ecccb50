"""A conda environment activated in a shell that has no conda hook (SB038)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from preflight.checks.script import _readable
from preflight.model import Finding, Severity
from preflight.registry import check

_ACTIVATORS = ("conda", "mamba", "micromamba")
# what defines the `conda` shell function in a script's own shell: conda's profile script, the hook, a shell start file
_HOOK_FILE_RE = re.compile(r"(?:conda|mamba)\.sh$|/profile\.d/|\.bashrc$|\.bash_profile$|(?:^|/)\.?profile$")
_HOOK_TEXT_RE = re.compile(r"\bshell\.bash\b|\bshell\s+hook\b|\bshell\.posix\b")


@check("SB038", "conda-activate-without-hook", severity="warning")
def conda_activate_without_hook(script) -> Iterator[Finding]:
    """
    What it checks: ``conda activate ENV`` (or mamba / micromamba) in a script that has not
    set conda up in its own shell first: no ``source <conda>/etc/profile.d/conda.sh``, no
    ``eval "$(conda shell.bash hook)"``, no ``source ~/.bashrc``, no ``module load`` and no
    login shell (``#!/bin/bash -l``) before it.

    Why it matters: ``conda activate`` is a shell function that ``conda init`` defines in
    interactive shells; a batch job (and ``bash script.sh``) runs a non-interactive shell,
    which neither reads ``~/.bashrc`` nor inherits functions, so it stops with ``CondaError:
    Run 'conda init' before 'conda activate'``. With ``set -e`` the job ends there; without
    it every later step runs on whatever ``python`` is first on ``PATH`` (``No module named
    torch``, or the wrong packages).

    Example:
        #!/bin/bash
        conda activate nanochat
        torchrun --standalone --nproc_per_node=8 -m scripts.base_train

    How to fix: ``source "$(conda info --base)/etc/profile.d/conda.sh"`` (or ``eval "$(conda
    shell.bash hook)"``) before ``conda activate``, or call the environment's interpreter by
    its path (``$CONDA_PREFIX/bin/python``, ``conda run -n ENV python``).
    """
    _readable(script)
    if script.shebang and re.search(r"\s-[a-zA-Z]*[li]", script.shebang):
        return  # a login or interactive shell reads the start files conda init wrote to
    hooked_at: int | None = None
    for cmd in sorted(script.all_commands, key=lambda c: (c.file != script.file_of(), c.line)):
        if cmd.file != script.file_of():
            continue
        if hooked_at is None and _sets_conda_up(script, cmd):
            hooked_at = cmd.line
        if cmd.name not in _ACTIVATORS or cmd.words[1:2] != ["activate"] or len(cmd.words) < 3:
            continue
        if hooked_at is not None or cmd.op_after == "||" or cmd.in_condition:
            continue  # set up above, or its failure is handled (`conda activate X || source activate X`)
        stops = script.set_e_line is not None and script.set_e_line < cmd.line
        yield Finding(
            f"line {cmd.line} runs `{' '.join(cmd.raw_words)[:60]}` in a non-interactive shell that has not set "
            f'{cmd.name} up (no conda.sh, shell hook or ~/.bashrc sourced before it): it stops with "CondaError: '
            f"Run '{cmd.name} init' before '{cmd.name} activate'\""
            + (
                f", and with set -e (line {script.set_e_line}) the job ends there"
                if stops
                else ", and the steps after it run on whatever python is first on PATH"
            ),
            path=script.file_of(),
            line=cmd.line,
            severity=Severity.ERROR if stops else None,
            fix=f'source "$({cmd.name} info --base)/etc/profile.d/conda.sh" before line {cmd.line} (or eval '
            f'"$({cmd.name} shell.bash hook)"), or run the environment\'s python by its path',
        )
        return  # one per script: the first activation decides


def _sets_conda_up(script, cmd, depth: int = 0) -> bool:
    if cmd.name in ("source", ".") and len(cmd.words) > 1:
        raw = cmd.words[1]
        # `source "$CONDA_SH"`: its value where the script sets it, else the variable's name
        target = (script.expand(raw, cmd.line, cmd.file, None) or raw) if "$" in raw else raw
        if any(_HOOK_FILE_RE.search(t) or re.search(r"\$\{?\w*(?:CONDA|MAMBA)", t, re.I) for t in (raw, target)):
            return True
        if "$" in target:
            return True  # a file known only when the job runs (a loop's pick of conda.sh paths): it may set conda up
        # a file of its own the script sources (env.sh), read by the script model: whether it sets conda up
        inc = next(
            (m for m in script.walk() if m is not script and m.path and Path(m.path).name == Path(target).name), None
        )
        return inc is not None and depth < 2 and any(_sets_conda_up(inc, c, depth + 1) for c in inc.commands)
    if cmd.name in ("module", "ml"):
        return True  # an environment module may define conda's shell function (module load anaconda3)
    return cmd.name == "eval" and bool(_HOOK_TEXT_RE.search(" ".join(cmd.raw_words)))
