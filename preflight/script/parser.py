"""Parse a batch script (and the scripts it runs) into a ScriptModel without running it."""

from __future__ import annotations

import os
import re
from pathlib import Path

from preflight.script.commands import State, commands_from_tokens
from preflight.script.evaluator import Evaluator
from preflight.script.launchers import find_invocations
from preflight.script.lexer import Unterminated, tokenize
from preflight.script.model import JOB_VARS, Assignment, Command, ScriptModel, own_job
from preflight.script.sbatch import parse_directive, parse_pbs_directive
from preflight.script.tree import Malformed, build_tree
from preflight.script.wrappers import host_path, strip_prefixes

# SLURM refuses batch scripts over 4 MiB by default; a bigger "script" is not one (a 45 MB one hung the evaluator)
MAX_SCRIPT_BYTES = 4 * 1024 * 1024
MAX_INCLUDE_DEPTH = 4
MAX_QUOTE_JOIN = 200  # lines a quoted string may span before we call it unterminated


def _read_script(path: Path) -> tuple[str | None, list[str], int]:
    """(text, problems, size). Refuses binary, non-UTF-8 and huge files without reading them whole."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, [f"cannot read {path}: {exc.strerror or exc}"], 0
    if path.is_dir():
        return None, [f"{path} is a directory, not a batch script"], 0
    if size > MAX_SCRIPT_BYTES:
        return (
            None,
            [
                f"{path} is {size / 1e6:.0f} MB; a batch script over {MAX_SCRIPT_BYTES // (1024 * 1024)} MB "
                "is not parsed (is this really the script?)"
            ],
            size,
        )
    from preflight.safeio import read_limited

    try:
        data = read_limited(path, MAX_SCRIPT_BYTES, "batch script")
    except OSError as exc:
        return None, [str(exc) if not exc.strerror else f"cannot read {path}: {exc.strerror}"], size
    if b"\x00" in data[:65536]:
        return None, [f"{path} is a binary file (NUL bytes), not a batch script"], size
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"{path} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"], size
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, [], size


def parse_script(
    path: Path | str,
    cwd: Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    args: list[str] | None = None,
    checkout: Path | None = None,
    _environ_complete: bool = True,
    _seen: set | None = None,
    _depth: int = 0,
) -> ScriptModel:
    """Parse a script file and the scripts it runs.

    ``environ``: the environment the script starts with (branches that test it are decided
    from it; None: unknown, they are kept). ``args``: its positional arguments (None: unknown).
    ``checkout``: the nanochat checkout the job runs (--checkout): where a relative path it runs or sources is
    looked for too, and instead of a job directory this machine does not have."""
    path = Path(path)
    text, problems, size = _read_script(path)
    model = ScriptModel(path=path, problems=problems, size=size)
    if text is None:
        return model
    model.script_dir = _twin_dir(path, text, checkout) or str(path.resolve().parent)
    model.top_level = _depth == 0
    _parse_text(model, text, environ, args, _environ_complete)
    # follow `bash other.sh` / `source x.sh` when the file exists
    seen = set() if _seen is None else _seen
    try:
        seen.add(str(path.resolve()))
    except (OSError, RuntimeError):
        seen.add(str(path))
    if _depth < MAX_INCLUDE_DEPTH:
        for cmd in model.commands:
            target = included_file(cmd)
            if not target:
                continue
            candidates = _include_candidates(model, cmd, target, cwd, checkout)
            resolved = next((c for c in candidates if _is_file(c)), None)
            if resolved is None:
                if candidates:  # a known path, and no such file (an unknown one is not reported)
                    model.missing_includes.append((cmd, expand_path(model, target, cmd.line, cmd.file), candidates))
                continue
            try:
                key = str(resolved.resolve())
            except (OSError, RuntimeError):
                continue  # a symlink loop
            if key in seen:
                continue
            seen.add(key)
            call = model._includes_env.get(id(cmd))
            if call is not None:  # what the parent knows at the call: its exports and the arguments
                child = parse_script(
                    resolved,
                    cwd=cwd,
                    environ=call.environ,
                    args=call.positional,
                    checkout=checkout,
                    _environ_complete=call.complete,
                    _seen=seen,
                    _depth=_depth + 1,
                )
            else:
                child = parse_script(resolved, cwd=cwd, checkout=checkout, _seen=seen, _depth=_depth + 1)
            _run_through(child, strip_prefixes(cmd.words))
            _prefix_assignments(model, cmd)
            model.includes.append(child)
            model.include_lines[str(resolved)] = cmd.line
    return model


def _prefix_assignments(model: ScriptModel, cmd: Command) -> None:
    """`WANDB_RUN=speedrun bash run.sh`: the child script starts with the variable set, as if the line exported it
    (the value lookups are per name across the files; the evaluation gave the child its value already)."""
    env = {**cmd.env, **strip_prefixes(cmd.words).env}
    for name, raw in env.items():
        if not any(a.name == name and a.line == cmd.line and a.file == cmd.file for a in model.assignments):
            model.assignments.append(
                Assignment(cmd.line, name, raw, True, not cmd.conditional, file=cmd.file, inline=True, prefix=True)
            )


def _run_through(child: ScriptModel, prefix) -> None:
    """A script run behind prefixes (`srun bash train.sh`, `timeout 47h bash run.sh`): every launch in
    it runs behind them too (one per srun task, killed at the timeout)."""
    if not (prefix.srun or prefix.timeout or prefix.names):
        return
    for inv in child.all_invocations:
        if prefix.srun and not inv.srun:
            inv.srun, inv.launcher = True, "srun+" + inv.launcher
            inv.srun_opts = prefix.srun_opts + inv.srun_opts
            inv.launcher_opts = inv.launcher_opts + prefix.srun_opts
        inv.timeout = inv.timeout or prefix.timeout
        inv.prefixes = prefix.names + inv.prefixes


def parse_text(
    text: str, path: Path | None = None, *, environ: dict[str, str] | None = None, args: list[str] | None = None
) -> ScriptModel:
    """Parse script text directly (tests, stdin). ``environ``/``args`` as for parse_script."""
    model = ScriptModel(path=path, size=len(text.encode("utf-8", "replace")))
    _parse_text(model, text, environ, args)
    return model


def included_file(cmd: Command) -> str | None:
    """The script a command runs or sources (`bash x.sh`, `source x.sh`, `./x.sh`), also behind
    prefixes (`srun`, `timeout`, `apptainer exec IMG bash x.sh`), as written."""
    w = strip_prefixes(cmd.words).words
    if not w:
        return None
    name = os.path.basename(w[0])
    if name in ("bash", "sh", "zsh") and len(w) > 1:
        rest = [x for x in w[1:] if not x.startswith("-")]
        if any(x.startswith("-") and not x.startswith("--") and "c" in x for x in w[1:]):
            return None  # `bash -c TEXT`, `bash -lc TEXT`: the text is the program, not a file
        return rest[0] if rest else None
    if name in ("source", ".") and len(w) > 1:
        return w[1]
    if w[0].endswith(".sh") and ("/" in w[0]):
        return w[0]
    return None


def expand_path(model: ScriptModel, word: str, line: int, file: str) -> str | None:
    """A path word as the job sees it: variables from the script and the environment it is known
    to start with (never the environment preflight runs in), ``~`` from that environment's HOME."""
    expanded = model.expand(word, line, file, model.environ) if "$" in word else word
    if expanded and expanded.startswith("~"):
        home = (model.environ or {}).get("HOME") or model.value_at("HOME", line, file)
        if not home or not (expanded == "~" or expanded.startswith("~/")):
            return None
        expanded = home + expanded[1:]
    return expanded or None


def _cd_commands(model: ScriptModel) -> list[tuple[Command, str]]:
    """Each `cd DIR` / `pushd DIR` of the script whose directory is known, with that directory."""
    return [
        (c, t)
        for c in model.commands
        if c.name in ("cd", "pushd") and len(c.words) > 1
        for t in [expand_path(model, c.words[-1], c.line, c.file)]
        if t
    ]


def cd_targets_at(model: ScriptModel, cmd: Command) -> list[str]:
    """The directories the script may have changed to when `cmd` runs: its cds above it in the same file
    (all of them for a command in a function, which may be called after any of them)."""
    return [t for c, t in _cd_commands(model) if cmd.in_function or cmd.file != c.file or c.line < cmd.line]


def _include_candidates(
    model: ScriptModel, cmd: Command, target: str, cwd: Path | None, checkout: Path | None = None
) -> list[Path]:
    """Where a sourced/run file may be, in the order bash would find it ([] when its path is unknown)."""
    expanded = expand_path(model, target, cmd.line, cmd.file)
    if not expanded:
        return []
    binds = strip_prefixes(cmd.words).binds
    if binds:  # `apptainer exec -B /scratch/me/nanochat:/opt/nanochat IMG bash /opt/nanochat/run.sh`
        binds = [(expand_path(model, src, cmd.line, cmd.file) or src, dest) for src, dest in binds]
        bound = _bound_checkout_file(expanded, binds, checkout)
        if bound is not None:
            return [bound]
        expanded = host_path(expanded, binds)
    cloned = _in_clone(model, cmd, expanded, checkout)
    if cloned is not None:  # the job runs its own clone of the checkout given (`git clone URL; bash nanochat/run.sh`)
        return [cloned]
    if "$" in expanded:  # under a directory whose path is known only in the job ($VSC_SCRATCH/...)
        return []
    p = Path(expanded)
    if p.is_absolute():
        return [p]
    cd_targets = cd_targets_at(model, cmd)
    if cd_targets:
        last = Path(cd_targets[-1])
        last = Path(cwd) / last if cwd and not last.is_absolute() else last
        if not last.is_dir():  # the job's directory is not on this machine (entry-not-found says so): unknown,
            # unless the copy of the checkout given (--checkout) has the file (a venv or a site file it may lack), or
            # has only its template (`machine_config.sh.template`: a file each user makes, which a job cannot run
            # without; sourced-file-missing names the template)
            if checkout is not None and (_is_file(checkout / p) or _has_template(checkout / p)):
                return [checkout / p]
            return []
    # the job's working directory: a `cd` of the script before the line, --chdir, the submit directory
    chdir = model.directive("chdir")
    dirs = (
        list(reversed(cd_targets))
        + ([chdir.value] if chdir and chdir.value else [])
        + ([str(cwd)] if cwd else [])
        + ([str(model.path.parent)] if model.path else [])
        + ([str(checkout)] if checkout is not None else [])  # submitted from the checkout the job runs
    )
    return [(Path(cwd) / d if cwd and not Path(d).is_absolute() else Path(d)) / p for d in dirs]


def _bound_checkout_file(inside: str, binds: list[tuple[str, str]], checkout: Path | None) -> Path | None:
    """The checkout given (--checkout) as the host directory a container binds from a path known only in the job
    (`--bind $VSC_SCRATCH/nanochat:/opt/nanochat ... bash /opt/nanochat/run.sh`), where it holds the file."""
    if checkout is None:
        return None
    for src, dest in sorted(binds, key=lambda b: len(b[1]), reverse=True):
        prefix = dest.rstrip("/") + "/"
        rest = inside[len(prefix) :] if inside.startswith(prefix) else ""
        if "$" in src and _inside(rest) and _is_file(checkout / rest):
            return checkout / rest
    return None


_CLONE_VALUE_OPTIONS = {"-b", "--branch", "--depth", "-c", "--config", "-o", "--origin", "--reference", "-j", "--jobs"}


def _in_clone(model: ScriptModel, cmd: Command, expanded: str, checkout: Path | None) -> Path | None:
    """The checkout's own copy of a file the job runs from a `git clone` it made earlier (its path, as far as it is
    known: `$SCRATCH/run/nanochat-pl/speedrun.sh` under `cd $SCRATCH/run; git clone .../nanochat-pl.git`): the
    checkout given (--checkout) is taken as that clone."""
    if checkout is None:
        return None
    for c in model.commands:
        if c.name != "git" or c.words[1:2] != ["clone"] or (c.file == cmd.file and c.line > cmd.line):
            continue
        args, skip = [], False
        for w in c.words[2:]:
            if skip:
                skip = False
            elif w.startswith("-"):
                skip = w in _CLONE_VALUE_OPTIONS
            else:
                args.append(w)
        if not args:
            continue
        dest = args[1] if len(args) > 1 else args[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        dest = expand_path(model, dest, c.line, c.file) or dest
        if not dest.startswith(("/", "$", "~")):
            cds = cd_targets_at(model, c)
            if not cds:
                continue
            dest = cds[-1].rstrip("/") + "/" + dest
        prefix = dest.rstrip("/") + "/"
        rest = expanded[len(prefix) :] if expanded.startswith(prefix) else ""
        if _inside(rest) and _is_file(checkout / rest):  # (never a path out of the checkout)
            return checkout / rest
    return None


def _inside(rest: str) -> bool:
    """A relative path that stays in the directory it is joined to (no `..`, not absolute: `//etc/x` leaves `/etc/x`)."""
    return bool(rest) and not rest.startswith(("/", "\\")) and ".." not in Path(rest).parts


TEMPLATE_SUFFIXES = (".template", ".example", ".sample", ".in", ".dist")


def _has_template(path: Path) -> bool:
    return any(_is_file(path.with_name(path.name + suffix)) for suffix in TEMPLATE_SUFFIXES)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _parse_text(
    model: ScriptModel,
    text: str,
    environ: dict[str, str] | None = None,
    args: list[str] | None = None,
    environ_complete: bool = True,
) -> None:
    model.text = text
    raw_lines = text.split("\n")
    model.crlf_lines = sum(1 for ln in raw_lines if ln.endswith("\r"))
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw_lines]
    if lines and lines[-1] == "":
        lines.pop()
    model.lines = lines
    fname = str(model.path) if model.path else "<script>"
    if lines and lines[0].startswith("#!"):
        model.shebang = lines[0][2:].strip()
        if re.search(r"\s-[a-zA-Z]*e", model.shebang):
            model.set_e_line = 1

    state = State()
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        lineno = i + 1
        if not stripped:
            i += 1
            continue
        if stripped.startswith("#"):
            if re.match(r"#SBATCH\b", stripped):
                parse_directive(model, lineno, stripped[len("#SBATCH") :])
            elif re.match(r"#PBS\b", stripped):
                parse_pbs_directive(model, lineno, stripped[len("#PBS") :])
            i += 1
            continue
        # a logical line: join backslash continuations and lines inside open quotes
        start = i
        chunk = line
        tokens = None
        heredocs: list[str] = []
        while True:
            if chunk.endswith("\\") and not chunk.endswith("\\\\") and i + 1 < n:
                i += 1
                chunk = chunk + "\n" + lines[i]
                continue
            try:
                tokens, heredocs = tokenize(chunk)
                break
            except Unterminated:
                if i + 1 < n and i - start < MAX_QUOTE_JOIN:
                    i += 1
                    chunk = chunk + "\n" + lines[i]
                    continue
                if i + 1 < n:  # a longer quoted text (a `python -c "..."` of 250 lines): looked for in bigger steps
                    found = _long_quote_end(lines, start, i + 1)
                    if found is not None:
                        i, chunk, (tokens, heredocs) = found
                break
        if tokens is None:
            model.unparsable.append((start + 1, "unterminated quote or substitution"))
            i = start + 1
            continue
        if model.first_command_line is None:
            model.first_command_line = start + 1
        # heredoc bodies are data, not commands
        for delim in heredocs:
            j = i + 1
            while j < n and lines[j].strip() != delim:
                j += 1
            i = j
        commands_from_tokens(model, state, tokens, start + 1, i + 1, chunk, fname)
        i += 1

    # directives after the first command are ignored by sbatch
    if model.first_command_line is not None:
        for d in model.directives:
            d.ignored = d.line > model.first_command_line
    export = model.directive("export")
    if export is not None and not (export.value or "").upper().startswith("ALL"):
        environ = None  # --export=NONE / a list: the job does not start with this environment
    _evaluate(model, state.events, environ, args, environ_complete, fname)
    model.cd_targets = [t for _c, t in _cd_commands(model)]
    find_invocations(model)


def _twin_dir(path: Path, text: str, checkout: Path | None) -> str | None:
    """A script checked as a copy outside the checkout given: the directory of the same file (same bytes, any name)
    in that checkout's top level or two levels below, where bash runs it from (``cd "$(dirname "$0")"`` goes there)."""
    if checkout is None:
        return None
    size = len(text.encode())
    try:
        root = checkout.resolve()
        if root in path.resolve().parents:
            return None
        looked = 0
        for depth in range(3):
            for twin in sorted(root.glob("/".join(["*"] * (depth + 1)) + (path.suffix or "")))[:_TWIN_FILES]:
                looked += 1
                if twin.is_file() and twin.stat().st_size == size and twin.read_text() == text:
                    return str(twin.parent)
            if looked > _TWIN_FILES:
                break
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None


def _long_quote_end(lines: list[str], start: int, first: int) -> tuple[int, str, tuple] | None:
    """(last line, text, tokens) of a logical line whose quote spans more than MAX_QUOTE_JOIN lines, up to
    MAX_LONG_QUOTE: the first line count that closes it, found by doubling the span and then halving the gap (a
    quote that closes, then another that opens and closes within the same gap, may be taken as one)."""
    n = len(lines)

    def attempt(last: int):
        text = "\n".join(lines[start : last + 1])
        try:
            return text, tokenize(text)
        except Unterminated:
            return None

    bad, step = first - 1, MAX_QUOTE_JOIN
    while True:
        last = min(n - 1, bad + step, start + MAX_LONG_QUOTE)
        if last <= bad:
            return None
        ok = attempt(last)
        if ok is not None:
            break
        bad, step = last, step * 2
    good = last
    while good - bad > 1:  # the smallest span that tokenises, between the last that does not and one that does
        mid = (bad + good) // 2
        tried = attempt(mid)
        if tried is None:
            bad = mid
        else:
            good, ok = mid, tried
    return good, ok[0], ok[1]


MAX_LONG_QUOTE = 5000  # lines a quoted text may span at most (a generated file, an inline program)


_TWIN_FILES = 500  # files of the script's suffix looked at in the checkout, at most


def _evaluate(
    model: ScriptModel, events: list, environ: dict[str, str] | None, args: list[str] | None, complete: bool, fname: str
) -> None:
    """Drop the commands and assignments of branches the script provably does not take."""
    # (environ may hold evaluator.UNKNOWN for a parent's variable set at run time)
    model.environ = {k: v for k, v in environ.items() if isinstance(v, str)} if environ is not None else None
    model.positional = list(args) if args is not None else None
    if environ is not None and not own_job(model, environ):
        # what SLURM sets at job start from the script's own directives decides branches too
        # (NGPUS=${SLURM_GPUS_ON_NODE:-}; a fallback when it is empty)
        job_vars = {name: v for name in JOB_VARS if (v := model._job_var(name)) is not None}
        environ = {**environ, **job_vars}
        if model.directives and model.directive("array") is None:
            # SLURM sets the task id in array jobs only: a batch script without --array (here or on sbatch's
            # command line, which the job facts mark) runs with it unset (DEPTH=${SLURM_ARRAY_TASK_ID:-${DEPTH:?}})
            environ.setdefault("SLURM_ARRAY_TASK_ID", None)
    try:
        tree = build_tree(events)
        # bash runs a script from its file; sbatch runs a copy in its spool directory (`dirname $0` is that)
        here = (model.script_dir or str(Path(fname).resolve().parent)) if model.path and not model.directives else None
        runner = model.top_level and model.path is not None and not model.directives
        ev = Evaluator(
            environ, args, complete=complete, file=fname, include_args=_include_args, script_dir=here, runner=runner
        )
        ev.run_top(tree)
    except Exception as exc:  # noqa: BLE001 - never let the evaluation break the parse
        # structure not understood (Malformed) or a form it does not handle: keep every branch
        for a in model.assignments:
            a.resolved = None
        model.problems_eval = f"{type(exc).__name__}: {exc}" if not isinstance(exc, Malformed) else str(exc)
        model.structure_line = exc.line if isinstance(exc, Malformed) else None
        return
    model.evaluated = True
    model.tree = tree
    model.required_unset = ev.required_unset
    if ev.exited is not None:
        line, file = ev.exited[0], ev.exited[1]
        model.exited = ev.exited
        model.unreached = [c for c in model.commands if id(c) not in ev.live and c.file == file and c.line > line]
    model.commands = [c for c in model.commands if id(c) in ev.live]
    model.assignments = [a for a in model.assignments if id(a) in ev.live]
    model.functions = ev.functions
    model.skipped_lines = sorted(ev.skipped_lines)
    model._includes_env = ev.includes
    model.args_at = ev.args_at
    model.loop_words = ev.loop_words


def _include_args(cmd: Command) -> tuple[str, list[str]] | None:
    """("bash"|"source", raw words of its arguments) when cmd runs another script."""
    target = included_file(cmd)
    if not target:
        return None
    w = cmd.words
    name = os.path.basename(w[0])
    kind = "source" if name in ("source", ".") else "bash"
    try:
        k = w.index(target, 1 if kind == "source" or name in ("bash", "sh", "zsh") else 0)
    except ValueError:
        return None
    return kind, list(cmd.raw_words[k + 1 :])
