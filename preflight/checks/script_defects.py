"""Script defects seen in real nanochat forks' batch scripts: SB020-SB022, SB026-SB028, SB032, SB033.

Launches hidden behind shell text preflight cannot read, xtrace that prints a key into the
job's .out, a sourced file that is not there, an ``#SBATCH`` line cut short by ``#``, a
log line parsed that the checkout's trainer no longer prints, output sent to /dev/null, and
variables a new shell (``srun bash -lc '...'``) cannot see because they were never exported,
and a comment line that ends a backslash-continued command early.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from preflight.model import Finding
from preflight.plan_launches import trainer_invocations, unread_runners
from preflight.redact import is_secret_name, mask
from preflight.registry import check
from preflight.script.model import VAR_NAME_RE, VAR_RE
from preflight.script.parser import TEMPLATE_SUFFIXES

# what a launch hidden from preflight leaves unchecked
_UNCHECKED = "the run plan, time limit, GPU count, trainer flags and missing-set-e"
_TRAINING_HINT_RE = re.compile(r"torchrun|python|_train\b|\btrain|scripts\.|nanochat\.|LAUNCH|CMD|accelerate", re.I)


@check("SB020", "training-not-visible", severity="warning")
def training_not_visible(script, profile) -> Iterator[Finding]:
    """
    What it checks: commands whose program is known only when the job runs (``$LAUNCH ...``,
    ``eval "$CMD"`` or ``bash -c "$CMD"`` with a value set at run time) in a script where
    preflight sees no training launch, or whose text looks like one.

    Why it matters: preflight reads through ``srun bash -lc '...'``, ``eval`` of a known
    string, ``timeout``, ``env``, functions and arrays, but not a command built at run time.
    A training phase behind one gets no run plan, no time, GPU or flag check, and a missing
    ``set -e`` goes unreported: the checks pass because they see nothing.

    Example:
        TRAIN_CMD=$(cat train_cmd.txt)
        eval "$TRAIN_CMD"

    How to fix: write the launch out (``torchrun ... -m scripts.base_train -- ...``), or build
    it from values set in the script; preflight then checks it.
    """
    script.require_readable()
    visible = trainer_invocations(script, profile)
    for cmd, target in unread_runners(script, profile):
        # `apptainer run ... bash /opt/nanochat/run.sh`, a script under a cd to a directory not here
        yield Finding(
            f"line {cmd.line} runs {target}, which preflight cannot read here (a path in a container or on "
            f"the cluster); no training launch is visible in the script, so {_UNCHECKED} are not checked",
            path=script.file_of(cmd),
            line=cmd.line,
            fix=f"run preflight where {target} can be read, or check that script itself: preflight check "
            "<its host path>",
        )
    for model in script.walk():
        for line, file, why in model.hidden:
            text = next((c.text for c in model.all_commands if c.line == line and c.file == file), "")
            # a sourced setup file's own `eval "$(pyenv init -)"` (~/.bashrc, conda's hook) launches no training
            if (visible or model is not script) and not _TRAINING_HINT_RE.search(text):
                continue
            what = "no training launch is visible in the script" if not visible else "it may launch training"
            yield Finding(
                f"line {line}: {why}; {what}, so {_UNCHECKED} are not checked for what it runs",
                path=file if file != "<script>" else str(script.path),
                line=line,
                fix="write the launch out in the script (torchrun ... -m scripts.base_train -- ...) or "
                "build it only from values the script sets",
            )


def _xtrace_switches(model) -> list[tuple[int, bool, bool]]:
    """(line, on, certain) for each `set -x` / `set +x` / `set -o xtrace` in a script."""
    out = []
    if model.shebang and re.search(r"\s-[a-zA-Z]*x", model.shebang):
        out.append((1, True, True))
    for c in model.commands:
        if c.name != "set":
            continue
        words = c.words[1:]
        for j, w in enumerate(words):
            on = None
            if re.fullmatch(r"[-+][a-zA-Z]*x[a-zA-Z]*", w):
                on = w.startswith("-")
            elif w in ("-o", "+o") and words[j + 1 : j + 2] == ["xtrace"]:
                on = w == "-o"
            if on is not None:
                out.append((c.line, on, not c.conditional))
    return sorted(out)


def _xtrace_on(switches: list[tuple[int, bool, bool]], line: int) -> int | None:
    """The line of the `set -x` in force at ``line`` (a conditional `set +x` does not count)."""
    on_line = None
    for sw_line, on, certain in switches:
        if sw_line >= line:
            break
        if on:
            on_line = sw_line
        elif certain:
            on_line = None
    return on_line


@check("SB021", "xtrace-leaks-secret", severity="error")
def xtrace_leaks_secret(script) -> Iterator[Finding]:
    """
    What it checks: a secret (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD``) assigned,
    exported or passed on a command line while xtrace (``set -x``, ``bash -x``) is on. The
    message shows only the value's first 4 characters.

    Why it matters: xtrace prints every command after expansion to stderr, so the key itself
    lands in the job's .out/.err, in shared log directories and in any report or issue the log
    is pasted into; ``export WANDB_API_KEY=$(cat ~/.wandb_key)`` leaks it as much as a literal.

    Example:
        set -x
        export WANDB_API_KEY=$(cat ~/.wandb_key)

    How to fix: ``set +x`` before the line and ``set -x`` after it, or set the secret before
    turning xtrace on (better: keep it out of the script, e.g. ``~/.netrc``).
    """
    script.require_readable()
    for model in script.walk():
        switches = _xtrace_switches(model)
        if not any(on for _, on, _ in switches):
            continue
        path = str(model.path) if model.path else "<script>"
        for a in model.assignments:
            on = _xtrace_on(switches, a.line)
            if on is None or not is_secret_name(a.name) or a.value.startswith("${" + a.name):
                continue
            shown = mask(a.value) if "$" not in a.value else "its value"
            yield Finding(
                f"{a.name} is {'exported' if a.exported else 'assigned'} on line {a.line} while xtrace is on "
                f"(set -x, line {on}): bash prints it with {shown} into the job's log",
                path=path,
                line=a.line,
                fix=f"put `set +x` before line {a.line} and `set -x` after it, or set it before line {on}",
            )
        for c in model.commands:
            on = _xtrace_on(switches, c.line)
            if on is None or c.name in ("export", "declare", "typeset", "readonly", "local", "set"):
                continue
            names = [
                n for w in c.raw_words[1:] for n in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", w) if is_secret_name(n)
            ]
            if names:
                yield Finding(
                    f"line {c.line} passes ${names[0]} on the command line of `{c.name}` while xtrace is on "
                    f"(set -x, line {on}): bash prints its value into the job's log",
                    path=path,
                    line=c.line,
                    fix=f"wrap line {c.line} in `set +x` ... `set -x`, or let the tool read the variable "
                    "from the environment",
                )


def _guarded(model, cmd, path: str) -> bool:
    """`[ -f x ] && source x`, `if [ -f x ]; then source x; fi`: a missing file is expected."""
    if cmd.op_before in ("&&", "||") or cmd.in_condition:
        return True
    if cmd.depth == 0:
        return False
    name = path.rsplit("/", 1)[-1]
    # the test names it as the source line does (`[ -f "$STATE_FILE" ]` ... `. "$STATE_FILE"`) or by its name
    said = {w.strip("\"'") for w in cmd.raw_words[1:2]}
    return any(
        c.name in ("[", "[[", "test")
        and any(w in ("-f", "-e", "-r", "-s") for w in c.words)
        and any(name in w or w.strip("\"'") in said for w in c.raw_words)
        for c in model.commands
        if c.line <= cmd.line
    )


_VENV_RE = re.compile(
    r"^(?:uv (?:venv|sync)|python\S* -m venv|virtualenv|conda create|mamba create|micromamba create)\b"
)
_CREATES_RE = re.compile(r"^(?:mkdir|cp|ln|wget|curl|git clone|tar|unzip|cat|echo|printf|touch|mv|install|rsync)\b")


def _created_before(model, cmd, path: str) -> bool:
    """An earlier command may create the file: `uv venv` / `uv sync` before `source .venv/bin/activate`,
    `cp x.template x` or `echo ... > x` before `source x`."""
    parts = [p for p in path.split("/") if p and p != "."]
    first, name = (parts[0] if parts else ""), (parts[-1] if parts else "")
    venv = "activate" in name or any(p in ("bin", "etc") for p in parts[:-1])
    for c in model.commands:
        if c.line >= cmd.line:
            break
        text = " ".join(c.words)
        if venv and _VENV_RE.match(text):
            return True
        if _CREATES_RE.match(text) and any(first in w or name in w for w in c.words[1:]):
            return True
        if any(name in target for _op, target in c.redirects):
            return True
    return False


def _venv_from_lockfile(path: str, tried: list) -> bool:
    """`source .venv/bin/activate` where a directory it was looked for in holds uv.lock (the checkout)."""
    if not re.search(r"(?:^|/)\.?venv/bin/activate$", path):
        return False
    rel = Path(path)
    for cand in tried:
        root = Path(cand)
        for _ in rel.parts:
            root = root.parent
        if (root / "uv.lock").is_file():
            return True
    return False


@check("SB022", "sourced-file-missing", severity="error")
def sourced_file_missing(script) -> Iterator[Finding]:
    """
    What it checks: ``source FILE`` / ``. FILE`` / ``bash FILE.sh`` where FILE, resolved against
    the job's working directory (the script's ``cd``, ``--chdir``, the submit directory), does
    not exist and nothing in the script creates it first.

    Why it matters: the job dies at that line (with ``set -e``) or runs on without the
    variables and functions the file defines (a venv that is not activated: the system's
    python, without the job's packages): a machine config that exists only as a
    ``.template`` in the repository kills every job at its first second.

    Example:
        source slurm/machine_config.sh   # only slurm/machine_config.sh.template exists

    How to fix: create the file (``cp slurm/machine_config.sh.template slurm/machine_config.sh``
    and fill it in), fix the path, or guard it: ``[ -f FILE ] && source FILE``.
    """
    script.require_readable()
    for model in script.walk():
        for cmd, path, tried in model.missing_includes:
            if _guarded(model, cmd, path) or _created_before(model, cmd, path):
                continue
            templates = [t for c in tried for t in (c.with_name(c.name + s) for s in TEMPLATE_SUFFIXES) if t.is_file()]
            what = "sources" if cmd.name in ("source", ".") else "runs"
            if templates:
                suffix = templates[0].name[len(Path(path).name) :]
                hint, fix = f" (only {path}{suffix} exists)", f"cp {path}{suffix} {path} and fill it in"
            elif _venv_from_lockfile(path, tried):
                # a virtual environment is never committed: the checkout's lock file builds it
                hint = " (a virtual environment is never in a checkout: the checkout's uv.lock builds it)"
                fix = f"build it once on a login node, in the checkout: `uv sync` (then {path} exists)"
            else:
                hint, fix = "", f"create {path}, fix the path, or guard it: [ -f {path} ] && {cmd.name} {path}"
            if model.set_e_line is not None and model.set_e_line < cmd.line:
                outcome = f"under set -e (line {model.set_e_line}) the job fails there"
            elif what == "runs":
                outcome = "bash fails and, with no set -e, the job runs on without what it does"
            elif Path(path).name == "activate":
                outcome = "with no set -e the job runs on outside the environment, with whatever python is on PATH"
            else:
                outcome = "with no set -e the job runs on without what it defines"
            yield Finding(
                f"line {cmd.line} {what} {path}, which does not exist{hint}: {outcome}",
                path=script.file_of(cmd),
                line=cmd.line,
                fix=fix,
            )


@check("SB026", "directive-comment-cut", severity="error")
def directive_comment_cut(script) -> Iterator[Finding]:
    """
    What it checks: an ``#SBATCH`` line where an unquoted ``#`` inside a word cuts the line.
    sbatch (checked with 22.05) reads several options on one ``#SBATCH`` line and stops at an
    unquoted ``#``, even in the middle of a word: the rest of the line is a comment to it.

    Why it matters: ``#SBATCH --job-name=run#2 --time=02:00:00`` names the job ``run`` and
    drops ``--time``: the job gets the partition's default limit with no warning.

    Example:
        #SBATCH --job-name=run#2 --time=02:00:00

    How to fix: quote the value (``--job-name="run#2"``) or leave ``#`` out of it; put each
    option on its own ``#SBATCH`` line.
    """
    script.require_readable()
    for d in script.active_directives():
        if not d.cut:
            continue
        dropped = [w for w in d.cut[1:].split() if w.startswith("-")]
        lost = f"; these options are never read: {' '.join(dropped)}" if dropped else ""
        yield Finding(
            f"#SBATCH {d.raw}{d.cut}: sbatch stops reading at the unquoted # and gets --{d.key}={d.value or ''}{lost}",
            path=str(script.path),
            line=d.line,
            fix=f'quote the value: --{d.key}="{d.value or ""}{d.cut.split()[0]}", and put each option on '
            "its own #SBATCH line",
        )


@check("SB027", "log-line-not-printed", severity="warning")
def log_line_not_printed(script, profile, ctx) -> Iterator[Finding]:
    """
    What it checks: a script that parses a line of an entry point's log (``grep "Number of
    parameters:" ... 'scaling: '``) which the checkout's entry point does not print. The lines
    upstream printed only for a while are listed, with their dates, in the profiles' ``printed:``;
    the checkout's own source says whether it prints one. Without a checkout, only an era that
    never printed the line is reported.

    Why it matters: the grep finds nothing, the variable is empty, and the results file gets an
    empty column with no error. Upstream's own ``runs/miniseries.sh`` of February 2026 read the
    "scaling" parameter count that base_train had stopped printing on 2026-01-27.

    Example:
        NUM_SCALING_PARAMS=$(grep "Number of parameters:" "$LOG" | grep -oP 'scaling: [0-9,]+')

    How to fix: parse what the checkout's entry point prints today (read its source or one log),
    or run the script with the checkout it was written for.
    """
    from preflight.checks.flags import checkout_or_none
    from preflight.checks.network import marker_found

    script.require_readable()
    text = script.text or ""
    launched = {(i.entry or "").rsplit(".", 1)[-1] for i in script.all_invocations if i.entry}
    checkout = checkout_or_none(ctx)
    for item in profile.data.get("printed") or []:
        needles = item.get("in_script") or []
        if not needles or not all(t in text for t in needles) or item.get("module") not in launched:
            continue
        since, until = item.get("since") or {}, item.get("until") or {}
        found = marker_found(checkout, item)
        if found is False:
            where = f"this checkout's {', '.join(item.get('marker_in') or [])} does not print it"
        elif found is None and profile.dated(item)[0] == "no":
            where = f"the {profile.name} era's {item['module']} does not print it"
        else:
            continue
        line = next((n for n, t in enumerate(text.splitlines(), 1) if needles[0] in t), None)
        yield Finding(
            f"the script parses {item['what']} (printed {profile.dates_of(item)}); {where}: the value comes out empty",
            path=str(script.path),
            line=line,
            fix=f"parse what the job's {item['module']} prints (see one of its logs), or run the "
            f"script with a checkout from {since.get('date')} to before {until.get('date')}",
        )


_DISCARDED = {"/dev/null"}


@check("SB028", "output-discarded", severity="warning")
def output_discarded(script, job_env) -> Iterator[Finding]:
    """
    What it checks: ``--output`` or ``--error`` set to ``/dev/null`` (``--error`` defaults to
    ``--output``, so ``--output=/dev/null`` alone discards both).

    Why it matters: the job's log is the only record of why a phase failed: its traceback, the
    OOM or NCCL message, the last step it reached. Discarded, a crash leaves nothing to read,
    and ``postflight verify`` can only report the exit code.

    Example:
        #SBATCH --output=/dev/null

    How to fix: write the log to a file (``#SBATCH --output=logs/%x_%j.out`` after
    ``mkdir -p logs``); keep ``--error`` on a file too, or leave it out to share the output's.
    """
    script.require_readable()
    output, error = job_env.sbatch.get("output"), job_env.sbatch.get("error")
    lost = []
    if output in _DISCARDED:
        lost.append(
            (
                "output",
                "its output and its tracebacks (no --error elsewhere)"
                if error in (None, *_DISCARDED)
                else "its output (step lines, saves, evaluation)",
            )
        )
    elif error in _DISCARDED:
        lost.append(("error", "its stderr: every traceback and error message"))
    for key, what in lost:
        line = job_env.directive_line(key)
        yield Finding(
            f"--{key}=/dev/null: the job discards {what}; a crash leaves nothing to diagnose it from",
            path=str(script.path),
            line=line,
            fix=f"#SBATCH --{key}=logs/%x_%j.{'err' if key == 'error' else 'out'} (and mkdir -p logs before sbatch)",
        )


_ALLEXPORT_RE = re.compile(r"-[a-zA-Z]*a[a-zA-Z]*")


def _exports_all(script) -> bool:
    """`set -a` / `set -o allexport` anywhere: every later assignment is exported."""
    for c in script.all_commands:
        words = c.words[1:] if c.name == "set" else []
        if any(_ALLEXPORT_RE.fullmatch(w) for w in words) or "allexport" in words:
            return True
    return False


@check("SB032", "variable-not-exported", severity="error")
def variable_not_exported(script, environ) -> Iterator[Finding]:
    """
    What it checks: shell text in single quotes that a command runs in a new shell
    (``srun bash -lc '...'``, ``bash -c '...'``) and that uses variables the script sets without
    ``export``.

    Why it matters: the new shell sees only the environment. A variable the script set but did
    not export is empty there, so ``--nnodes=$NNODES`` reaches torchrun as ``--nnodes=`` and the
    launch stops with an argument error on every node (or runs with a default the script never
    meant).

    Example:
        NNODES=2
        srun bash -lc 'torchrun --nnodes=$NNODES --nproc_per_node=8 -m scripts.base_train'

    How to fix: ``export NNODES`` (or ``set -a`` before the assignments), or write the text in
    double quotes so the batch shell expands it before srun runs it.
    """
    from preflight.script.wrappers import inline_commands, inline_text, strip_prefixes

    script.require_readable()
    assigned: dict[str, list[int]] = {}
    exported: set[str] = set()
    for a in script.all_assignments:
        assigned.setdefault(a.name, []).append(a.line)
        if a.exported:
            exported.add(a.name)
    if _exports_all(script):
        return
    for c in script.all_commands:
        prefix = strip_prefixes(list(c.words))
        inline = inline_text(prefix.words)
        if inline is None or inline[0] == "eval":
            continue
        how, text = inline
        raw = next((r for r in c.raw_words if r.startswith("'") and r[1:9] == text[:8]), None)
        if raw is None:
            continue  # double quotes: this shell expands the variables before the new one starts
        parsed = inline_commands(text, c)
        set_inside = {a.name for a in parsed[1].assignments} if parsed else set()
        given = set(prefix.env) | {n for o in prefix.srun_opts for n in re.findall(r"([A-Za-z_]\w*)=", o)}
        empty = [
            n
            for n in dict.fromkeys(VAR_NAME_RE.findall(text))
            if n in assigned and n not in exported and n not in environ and n not in set_inside and n not in given
        ]
        if not empty:
            continue
        words = [w for ic in (parsed[0] if parsed else []) for w in ic.raw_words]
        uses = [w for w in words if any(f"${n}" in w or f"${{{n}" in w for n in empty)]
        shown = next((w for w in uses if w.startswith("-")), uses[0] if uses else None)  # a flag says most
        becomes = ""
        if shown is not None:
            blank = VAR_RE.sub(
                lambda m, gone=tuple(empty): "" if (m.group(1) or m.group(4)) in gone else m.group(0), shown
            )
            becomes = f": `{shown}` becomes `{blank}`"
        lines = sorted({ln for n in empty for ln in assigned[n]})
        names = ", ".join(empty)
        yield Finding(
            f"line {c.line}: `{how} '...'` runs a new shell, where {names} "
            f"{'is' if len(empty) == 1 else 'are'} empty: the script sets "
            f"{'it' if len(empty) == 1 else 'them'} ({'line' if len(lines) == 1 else 'lines'} {', '.join(map(str, lines[:4]))}) "
            "but does not export "
            f"{'it' if len(empty) == 1 else 'them'}{becomes}",
            path=c.file if c.file != "<script>" else str(script.path),
            line=c.line,
            fix=f"export {' '.join(empty)} before line {c.line}, or write the shell text in double quotes so "
            "the batch shell expands it",
        )


_HEREDOC_RE = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
# a line that reads as the rest of a command: an option, a redirection, a pipe or a list operator
_CONTINUES_RE = re.compile(r"^(?:-|\d?>|\||&&|\|\||<)")


def _comment_cuts(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line, comment, next line) where a comment line sits inside a backslash-continued command."""
    heredoc = None
    for i in range(1, len(lines) - 1):
        prev, cur, nxt = lines[i - 1].rstrip(), lines[i].strip(), lines[i + 1].strip()
        if heredoc is not None:
            heredoc = None if cur == heredoc else heredoc
            continue
        mh = _HEREDOC_RE.search(prev)
        if mh and not prev.lstrip().startswith("#"):
            heredoc = mh.group(1)
            continue
        continued = prev.endswith("\\") and not prev.endswith("\\\\") and not prev.lstrip().startswith("#")
        if continued and cur.startswith("#") and _CONTINUES_RE.match(nxt):
            yield i + 1, cur, nxt


@check("SB033", "comment-cuts-command", severity="error")
def comment_cuts_command(script) -> Iterator[Finding]:
    """
    What it checks: a comment line inside a command continued with backslashes (a flag
    commented out in the middle of a long ``torchrun``/``python`` call).

    Why it matters: bash ends the command at the comment (the comment's own trailing backslash
    continues nothing), so the lines after it run as a command of their own: ``2>&1 | tee
    "$LOG"`` then tees nothing, the log stays empty, and every ``grep`` on it finds nothing;
    flags after it are run as a command and fail.

    Example:
        python -m scripts.base_train \\
            --save-every=-1 \\
            # --ortho-init \\
            2>&1 | tee "$LOG"

    How to fix: delete the commented-out line, or move it above or below the command.
    """
    script.require_readable()
    for model in script.walk():
        for line, comment, nxt in _comment_cuts(model.lines):
            yield Finding(
                f"`{comment[:60]}` inside a continued command ends it: bash reads it as a comment, so the next line "
                f"(`{nxt[:60]}`) runs as a command of its own",
                path=str(model.path),
                line=line,
                fix="delete the commented-out line, or move it above or below the command",
            )
