"""Files the script writes (``| tee FILE``, ``> FILE``) into a directory nothing creates."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from preflight.checks.script import output_pattern_path
from preflight.model import Finding
from preflight.registry import check
from preflight.script.model import VAR_RE

_WRITE_OPS = {">", ">>", "&>"}  # as the lexer records them (`2>>` as `>>`, `&>>` as `>`)
# commands whose mention of a directory says nothing about whether it exists (they only print or write)
_MENTION_ONLY = {"echo", "printf", "tee"}
_DEPTH = 4  # variables chased through their assignments


class _Shaper:
    """Path words with what is known expanded and the rest kept as ``$NAME``: ``$LOGFILE`` with
    ``LOG_DIR=$NANOCHAT_BASE_DIR/logs`` and ``LOGFILE=$LOG_DIR/run.log`` (no base dir known here)
    reads ``$NANOCHAT_BASE_DIR/logs/run.log``. Memoized: a script's words are shaped once."""

    def __init__(self, root):
        self.values: dict[str, set[tuple[str, int, str]]] = {}
        for a in root.all_assignments:
            if not a.append:
                self.values.setdefault(a.name, set()).add((a.value, a.line, a.file))
        self.memo: dict[tuple, str] = {}

    def __call__(self, model, word: str, line: int, file: str, depth: int = 0) -> str:
        if "$" not in word:
            return word
        key = (id(model), word, line, file, depth)
        if key not in self.memo:
            self.memo[key] = VAR_RE.sub(lambda m: self._var(model, m, line, file, depth), word)
        return self.memo[key]

    def _var(self, model, m: re.Match, line: int, file: str, depth: int) -> str:
        name = m.group(1) or m.group(4)
        known = model.expand(m.group(0), line, file, model.environ)
        if known is not None and "$" not in known:
            return known
        values = self.values.get(name, set())
        if depth < _DEPTH and len({v for v, _l, _f in values}) == 1:  # one value wherever it is set
            value, at, in_file = next(iter(values))
            return self(model, value, at, in_file, depth + 1)
        return f"${{{name}}}" if m.group(1) else "$" + name


def _writes(model) -> Iterator[tuple[object, str, str]]:
    """(command, how, target word) for each file a command writes: tee's files, > and >> targets."""
    for c in model.commands:
        if c.name == "tee":
            for w in c.words[1:]:
                if not w.startswith("-"):
                    yield c, "tee", w
        for op, target in c.redirects:
            if op in _WRITE_OPS:
                yield c, "redirect", target


def _usable(target: str) -> bool:
    return bool(target) and not target.startswith(("/dev/", "/proc/")) and "$(" not in target and "`" not in target


def _mentions(shape: str, directory: str) -> bool:
    return shape == directory or shape.startswith(directory.rstrip("/") + "/")


def _exists_here(directory: str, workdir: Path | None) -> bool | None:
    """True/False where this machine can tell; None for a path whose parent is not here either (another
    machine's file system) or a relative one whose working directory is unknown."""
    if "$" in directory:
        return None
    path = Path(directory)
    if not path.is_absolute():
        if workdir is None:
            return None
        path = workdir / path
    try:
        if path.is_dir():
            return True
        # only a directory whose parent is here tells: /home/alice/... on another machine is not this one's
        return False if path.parent.is_dir() else None
    except OSError:
        return None


def _workdir(ctx, script, job_env) -> Path | None:
    """The job's working directory for relative paths when the script (and what it sources) never changes it."""
    if any(c.name in ("cd", "pushd", "popd") for m in script.walk() for c in m.commands):
        return None
    chdir = job_env.sbatch.get("chdir")
    if chdir and ("$" in chdir or "%" in chdir):
        return None
    return Path(ctx.inputs.cwd) / (chdir or "")


def _consequence(model, cmd, how: str, pipefail: bool) -> str:
    read = not (cmd.in_condition or cmd.op_after == "||" or cmd.op_before == "||")
    if how == "tee":
        if model.errexit and pipefail and read:
            return "tee fails, and under `set -e` with pipefail the pipeline's failure ends the job there"
        if model.errexit and read and cmd.op_after != "|":
            # without pipefail the pipeline's status is tee's own: 1 once the trainer's output ends
            return (
                "tee writes nothing to it and exits 1 when the pipeline ends, which is the pipeline's status: "
                "`set -e` ends the job there, FAILED even after a successful run"
            )
        return "tee writes nothing to it (the output still reaches the job's log)"
    if model.errexit and read:
        return f"bash cannot open it, so `{cmd.name}` does not run and `set -e` ends the job there"
    return f"bash cannot open it, so `{cmd.name}` does not run"


@check("SB034", "write-dir-missing", severity="warning")
def write_dir_missing(ctx, script, job_env) -> Iterator[Finding]:
    """
    What it checks: a file the script writes with ``tee FILE`` or ``> FILE`` / ``>> FILE`` whose
    directory no line of the script creates, mentions in another command, or names as its
    ``--output``/``--error`` directory, and which does not exist here (or, for a directory under a
    variable known only in the job, ``$NANOCHAT_BASE_DIR/logs``, may not exist).

    Why it matters: neither bash nor tee creates directories. A redirection into a missing one
    fails before the command runs (the command never starts); tee prints ``No such file or
    directory`` and exits 1, which under ``set -euo pipefail`` ends the job at its first log line,
    on every node.

    Example:
        set -euo pipefail
        LOG_DIR="$NANOCHAT_BASE_DIR/logs"
        log() { echo "$*" | tee -a "$LOG_DIR/run_${SLURM_JOB_ID}.log"; }
        log "starting"          # no mkdir -p "$LOG_DIR" anywhere

    How to fix: ``mkdir -p "$LOG_DIR"`` before the first write.
    """
    script.require_readable()
    pipefail = any(m.pipefail_line is not None for m in script.walk())
    log_dirs = {
        os.path.dirname(str(p))
        for key in ("output", "error")
        if (v := job_env.sbatch.get(key)) and (p := output_pattern_path(v)) is not None
    }
    shape = _Shaper(script)
    mentioned: list[str] | None = None  # every other command's words, shaped: only once a write needs them
    holders: dict[str, str] | None = None
    reported: set[str] = set()
    workdir = _workdir(ctx, script, job_env)
    for model in script.walk():
        for cmd, how, word in _writes(model):
            target = shape(model, word, cmd.line, cmd.file)
            directory = os.path.dirname(target)
            if not _usable(target) or directory in ("", ".", "/") or directory in reported:
                continue
            last = directory.rstrip("/").rsplit("/", 1)[-1]
            if not last or "$" in last or any(ch in VAR_RE.sub("", target) for ch in "*?["):
                continue  # the directory itself comes from the caller (`$RESULTS_DIR/x.log`), or a glob
            if mentioned is None:
                mentioned = [
                    shape(m, w, c.line, c.file)
                    for m in script.walk()
                    for c in m.commands
                    if c.name not in _MENTION_ONLY
                    for w in c.words[1:]
                ]
            if directory in log_dirs or any(_mentions(m, directory) for m in mentioned):
                continue
            exists = _exists_here(directory, workdir)
            if exists or (exists is None and "$" not in word):
                continue  # a literal path on another machine's file system: its author knows it
            reported.add(directory)
            where = " (in a function: at its first call)" if cmd.in_function else ""
            if holders is None:  # the variable that holds each shaped value, for the fix
                holders = {}
                for a in reversed(script.all_assignments):
                    holders[shape(model, a.value, a.line, a.file)] = f'"${a.name}"'
            holder = holders.get(directory, f'"{directory}"')
            result = _consequence(model, cmd, how, pipefail)
            if exists is False:
                said = f"{directory} does not exist here and no line of the script creates it; {result}"
            else:
                said = f"no line of the script creates {directory}: unless it exists when the job starts, {result}"
            yield Finding(
                f"line {cmd.line}{where} writes {target}, but {said}",
                path=script.file_of(cmd),
                line=cmd.line,
                fix=f"mkdir -p {holder} before {'its first write' if cmd.in_function else f'line {cmd.line}'}",
            )
