"""The sbatch script model: parse a batch script without running it.

What it extracts (all with 1-based line numbers of the file they came from):
- ``#SBATCH`` directives, and which ones sbatch ignores (those after the first command);
- variable assignments and exports (unconditional or not), prefix environments;
- simple commands, split on ``; && || | &``, with background ``&`` and ``wait``;
- ``torchrun`` / ``python -m`` invocations (also under ``srun`` / ``uv run``) with their module,
  flags as (key, value, style) and ``--nproc_per_node``;
- ``set -e`` / ``-o errexit`` / ``pipefail`` and per-phase exit checks (``|| exit``, ``if !``, ``$?``);
- scripts it runs (``bash speedrun.sh``, ``source x.sh``), parsed too when the file exists.

Bad input never raises: a binary, non-UTF-8 or huge file becomes a ScriptModel whose
``problems`` say why; a line that cannot be tokenised (unterminated quote) is listed in
``unparsable`` and skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from preflight.facts import FactUnavailable

MAX_SCRIPT_BYTES = 50 * 1024 * 1024
MAX_INCLUDE_DEPTH = 4
MAX_QUOTE_JOIN = 200  # lines a quoted string may span before we call it unterminated

# sbatch short options -> long names (those that matter here)
_SHORT = {"J": "job-name", "N": "nodes", "n": "ntasks", "G": "gpus", "t": "time", "o": "output",
          "e": "error", "p": "partition", "c": "cpus-per-task", "D": "chdir", "A": "account",
          "q": "qos", "w": "nodelist", "C": "constraint", "a": "array", "d": "dependency",
          "i": "input", "x": "exclude", "M": "clusters", "m": "distribution", "k": "no-kill"}
_SBATCH_FLAGS_NO_VALUE = {"exclusive", "requeue", "no-requeue", "hold", "test-only", "wait", "overcommit",
                          "contiguous", "no-kill", "parsable", "spread-job", "use-min-nodes", "oversubscribe",
                          "verbose", "quiet", "export-file", "ignore-pbs", "k", "v", "Q", "H", "O", "s", "W", "h"}

_KEYWORDS_OPEN = {"if", "while", "until", "for", "case", "select", "{"}
_KEYWORDS_CLOSE = {"fi", "done", "esac", "}"}
_KEYWORDS_PREFIX = {"then", "do", "else", "elif", "!", "time"}
_ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$", re.S)
_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=+?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_PY_RE = re.compile(r"^(?:python(?:\d+(?:\.\d+)?)?|pypy3?)$")


# -- data --------------------------------------------------------------------------------------
@dataclass
class Directive:
    line: int
    key: str  # long option name without dashes: gres, nodes, time, output ...
    value: str | None
    raw: str  # the option as written (--gres=gpu:8, -N 2)
    ignored: bool = False  # after the first command: sbatch does not read it
    has_variable: bool = False  # $VAR inside: sbatch reads it literally


@dataclass
class Assignment:
    line: int
    name: str
    value: str  # unquoted text, $VARs not expanded
    exported: bool
    unconditional: bool  # top level, not in if/loop/function, not after && or ||
    default_only: bool = False  # ${X:-...} / : ${X:=...} style: keeps a value set before
    file: str = ""
    resolved: str | None = None  # its value as the static evaluation knows it (uses $1, $@ ...)


@dataclass
class Word:
    raw: str
    value: str  # quotes removed
    expands: bool  # contains an unquoted or double-quoted $


@dataclass
class Command:
    line: int
    end_line: int
    words: list[str]  # values (quotes removed), prefix assignments and redirections removed
    raw_words: list[str]
    env: dict[str, str]  # prefix assignments (X=1 cmd)
    redirects: list[tuple[str, str]]
    op_before: str | None  # ; && || | & or None (start of line)
    op_after: str | None
    background: bool
    depth: int  # nesting in if/while/for/case/function/{ }
    in_condition: bool  # the condition of if/while/until
    negated: bool
    in_function: bool
    file: str
    text: str  # the logical line

    @property
    def name(self) -> str:
        return os.path.basename(self.words[0]) if self.words else ""

    @property
    def conditional(self) -> bool:
        return self.depth > 0 or self.op_before in ("&&", "||") or self.in_function


@dataclass
class Flag:
    key: str | None  # without leading dashes; None for a positional argument
    value: str | None
    style: str  # equals | space | bare | short | positional
    raw: str
    after_separator: bool = False  # came after a `--`


@dataclass
class Invocation:
    line: int
    launcher: str  # torchrun | python | srun+torchrun | ...
    module: str | None  # python -m X
    script_file: str | None  # python file.py
    flags: list[Flag]
    args: list[str]
    nproc_per_node: str | None  # as written (8, $NPROC_PER_NODE)
    nnodes: str | None
    standalone: bool
    srun: bool
    background: bool
    checked: bool  # followed by a per-phase exit check
    command: Command
    launcher_opts: list[str] = field(default_factory=list)
    via: str | None = None  # the shell function it was launched through (`launch nanochat.base_train ...`)

    @property
    def file(self) -> str:
        return self.command.file

    def flag(self, *keys: str) -> Flag | None:
        norm = {k.replace("-", "_") for k in keys}
        for f in self.flags:
            if f.key and f.key.replace("-", "_") in norm:
                return f
        return None


@dataclass
class ScriptModel:
    path: Path | None
    text: str = ""
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the file could not be read at all
    unparsable: list[tuple[int, str]] = field(default_factory=list)
    directives: list[Directive] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    first_command_line: int | None = None
    set_e_line: int | None = None
    pipefail_line: int | None = None
    errtrap_line: int | None = None
    shebang: str | None = None
    crlf_lines: int = 0
    cd_targets: list[str] = field(default_factory=list)
    includes: list["ScriptModel"] = field(default_factory=list)
    include_lines: dict[str, int] = field(default_factory=dict)  # included file -> line of the call
    size: int = 0
    # static evaluation (preflight.script_eval): what the script starts with and what it skips
    environ: dict[str, str] | None = None  # the environment it is known to start with (None: unknown)
    positional: list[str] | None = None  # its arguments ($@) when known (a followed `bash x.sh --tiny`)
    functions: list = field(default_factory=list)  # script_eval.FunctionDef, definitions that may run
    skipped_lines: list[int] = field(default_factory=list)  # commands/assignments in branches not taken
    evaluated: bool = False  # False: the block structure was not understood; every branch counts
    problems_eval: str | None = None  # why it was not evaluated
    _includes_env: dict = field(default_factory=dict, repr=False)  # id(command) -> script_eval.IncludeCall

    # -- aggregated views (this script plus the scripts it runs) -----------------------------
    @property
    def ok(self) -> bool:
        return not self.problems

    def walk(self) -> Iterator["ScriptModel"]:
        yield self
        for inc in self.includes:
            yield from inc.walk()

    @property
    def all_commands(self) -> list[Command]:
        return [c for m in self.walk() for c in m.commands]

    @property
    def all_invocations(self) -> list[Invocation]:
        return [i for m in self.walk() for i in m.invocations]

    @property
    def all_assignments(self) -> list[Assignment]:
        return [a for m in self.walk() for a in m.assignments]

    @property
    def errexit(self) -> bool:
        return self.set_e_line is not None or self.errtrap_line is not None

    def active_directives(self) -> list[Directive]:
        return [d for d in self.directives if not d.ignored]

    def directive(self, *keys: str) -> Directive | None:
        """The last active directive for any of these option names (sbatch: last one wins)."""
        found = None
        for d in self.active_directives():
            if d.key in keys:
                found = d
        return found

    def value_at(self, name: str, line: int | None = None, file: str | None = None,
                 environ: dict[str, str] | None = None) -> str | None:
        """The value of $name just before ``line`` (of ``file``): the script's own assignments
        (last one wins, a default-only assignment keeps an earlier value), else ``environ``."""
        value = (environ or {}).get(name)
        for a in self.all_assignments:
            if a.name != name:
                continue
            if file is not None and line is not None and a.file == file and a.line >= line:
                continue
            if a.default_only and value:
                continue
            if a.resolved is not None and re.search(r"\$\{?[0-9#@*]", a.value):
                value = a.resolved  # an argument of the script ($1, $@): only the evaluation knows it
                continue
            value = self.expand(a.value, a.line, a.file, environ, _depth=1) or a.value
        return value

    def expand(self, text: str, line: int | None = None, file: str | None = None,
               environ: dict[str, str] | None = None, _depth: int = 0) -> str | None:
        """Expand $VAR/${VAR}/${VAR:-default} in text; None if a variable has no known value."""
        if text is None:
            return None
        if _depth > 5:
            return None
        missing = False

        def sub(m: re.Match) -> str:
            nonlocal missing
            name = m.group(1) or m.group(4)
            op, default = m.group(2), m.group(3)
            val = self.value_at(name, line, file, environ) if _depth < 5 else None
            if op in (":-", "-", ":=", "=") and not val:
                return default or ""
            if val is None:
                missing = True
                return ""
            return val

        out = _VAR_RE.sub(sub, text)
        if "$(" in out or "`" in out:
            return None
        return None if missing else out


# -- tokenizer ---------------------------------------------------------------------------------
class Unterminated(Exception):
    pass


_OPS = ("&&", "||", ";;", "<<<", "<<-", "<<", ">>", ">&", "&>", "<&", ";", "&", "|", "(", ")", "<", ">")


def tokenize(s: str) -> tuple[list[tuple[str, Word | str]], list[str]]:
    """Shell-like tokens: ("word", Word) / ("op", "&&") / ("nl", "\\n"). Also heredoc delimiters.

    Understands single/double quotes, backslashes, $(...), ${...}, backticks and # comments.
    Raises Unterminated for an open quote or substitution.
    """
    tokens: list[tuple[str, Any]] = []
    heredocs: list[str] = []
    i, n = 0, len(s)
    raw: list[str] = []
    val: list[str] = []
    expands = False
    in_word = False

    def flush() -> None:
        nonlocal raw, val, expands, in_word
        if in_word:
            tokens.append(("word", Word("".join(raw), "".join(val), expands)))
        raw, val, expands, in_word = [], [], False, False

    def read_balanced(j: int, open_c: str, close_c: str) -> int:
        depth = 0
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "'":
                k = s.find("'", j + 1)
                if k < 0:
                    raise Unterminated("'")
                j = k + 1
                continue
            if c == '"':
                j = read_dquote(j + 1)
                continue
            if c == open_c:
                depth += 1
            elif c == close_c:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise Unterminated(open_c)

    def read_dquote(j: int) -> int:
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == '"':
                return j + 1
            if c == "$" and j + 1 < n and s[j + 1] == "(":
                j = read_balanced(j + 1, "(", ")")
                continue
            if c == "`":
                k = s.find("`", j + 1)
                if k < 0:
                    raise Unterminated("`")
                j = k + 1
                continue
            j += 1
        raise Unterminated('"')

    while i < n:
        c = s[i]
        if c == "\n":
            flush()
            tokens.append(("nl", "\n"))
            i += 1
            continue
        if c in " \t\r":
            flush()
            i += 1
            continue
        if c == "#" and not in_word:
            k = s.find("\n", i)
            i = n if k < 0 else k
            continue
        if c == "\\":
            if i + 1 < n and s[i + 1] == "\n":
                i += 2
                continue
            raw.append(s[i:i + 2])
            val.append(s[i + 1:i + 2])
            in_word = True
            i += 2
            continue
        if c == "'":
            k = s.find("'", i + 1)
            if k < 0:
                raise Unterminated("'")
            raw.append(s[i:k + 1])
            val.append(s[i + 1:k])
            in_word = True
            i = k + 1
            continue
        if c == '"':
            k = read_dquote(i + 1)
            body = s[i + 1:k - 1]
            raw.append(s[i:k])
            val.append(re.sub(r'\\([$`"\\])', r"\1", body))
            expands = expands or "$" in body or "`" in body
            in_word = True
            i = k
            continue
        if c == "$" and i + 1 < n and s[i + 1] in "({":
            k = read_balanced(i + 1, s[i + 1], ")" if s[i + 1] == "(" else "}")
            raw.append(s[i:k])
            val.append(s[i:k])
            expands = True
            in_word = True
            i = k
            continue
        if c == "`":
            k = s.find("`", i + 1)
            if k < 0:
                raise Unterminated("`")
            raw.append(s[i:k + 1])
            val.append(s[i:k + 1])
            expands = True
            in_word = True
            i = k + 1
            continue
        op = next((o for o in _OPS if s.startswith(o, i)), None)
        if op is not None:
            # `name=(a b)` arrays and `$((...))` are rare here; treat ( ) as ops
            if in_word and op in (">", ">>", ">&", "<", "<&") and "".join(raw).isdigit():
                raw, val, in_word = [], [], False  # 2>file: the fd number belongs to the redirect
            flush()
            tokens.append(("op", op))
            i += len(op)
            if op in ("<<", "<<-"):
                m = re.match(r"\s*(['\"]?)([A-Za-z0-9_.\-]+)\1", s[i:])
                if m:
                    heredocs.append(m.group(2))
            continue
        if c == "$":
            expands = True
        raw.append(c)
        val.append(c)
        in_word = True
        i += 1
    flush()
    return tokens, heredocs


# -- parsing -----------------------------------------------------------------------------------
def _read_script(path: Path) -> tuple[str | None, list[str], int]:
    """(text, problems, size). Refuses binary, non-UTF-8 and huge files without reading them whole."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, [f"cannot read {path}: {exc.strerror or exc}"], 0
    if path.is_dir():
        return None, [f"{path} is a directory, not a batch script"], 0
    if size > MAX_SCRIPT_BYTES:
        return None, [f"{path} is {size / 1e6:.0f} MB; a batch script over {MAX_SCRIPT_BYTES // (1024 * 1024)} MB "
                      "is not parsed (is this really the script?)"], size
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [f"cannot read {path}: {exc.strerror or exc}"], size
    if b"\x00" in data[:65536]:
        return None, [f"{path} is a binary file (NUL bytes), not a batch script"], size
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"{path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})"], size
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, [], size


def parse_script(path: Path | str, cwd: Path | None = None, *, environ: dict[str, str] | None = None,
                 args: list[str] | None = None, _environ_complete: bool = True, _seen: set | None = None,
                 _depth: int = 0) -> ScriptModel:
    """Parse a script file and the scripts it runs.

    ``environ``: the environment the script starts with (branches that test it are decided
    from it; None: unknown, they are kept). ``args``: its positional arguments (None: unknown)."""
    path = Path(path)
    text, problems, size = _read_script(path)
    model = ScriptModel(path=path, problems=problems, size=size)
    if text is None:
        return model
    _parse_text(model, text, environ, args, _environ_complete)
    # follow `bash other.sh` / `source x.sh` when the file exists
    seen = set() if _seen is None else _seen
    try:
        seen.add(str(path.resolve()))
    except (OSError, RuntimeError):
        seen.add(str(path))
    if _depth < MAX_INCLUDE_DEPTH:
        for cmd in model.commands:
            target = _included_file(cmd)
            if not target:
                continue
            resolved = _resolve_include(model, cmd, target, cwd)
            if resolved is None:
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
                child = parse_script(resolved, cwd=cwd, environ=call.environ, args=call.positional,
                                     _environ_complete=call.complete, _seen=seen, _depth=_depth + 1)
            else:
                child = parse_script(resolved, cwd=cwd, _seen=seen, _depth=_depth + 1)
            model.includes.append(child)
            model.include_lines[str(resolved)] = cmd.line
    return model


def parse_text(text: str, path: Path | None = None, *, environ: dict[str, str] | None = None,
               args: list[str] | None = None) -> ScriptModel:
    """Parse script text directly (tests, stdin). ``environ``/``args`` as for parse_script."""
    model = ScriptModel(path=path, size=len(text.encode("utf-8", "replace")))
    _parse_text(model, text, environ, args)
    return model


def _included_file(cmd: Command) -> str | None:
    w = cmd.words
    if not w:
        return None
    name = os.path.basename(w[0])
    if name in ("bash", "sh", "zsh") and len(w) > 1:
        rest = [x for x in w[1:] if not x.startswith("-")]
        if "-c" in w[1:]:
            return None
        return rest[0] if rest else None
    if name in ("source", ".") and len(w) > 1:
        return w[1]
    if w[0].endswith(".sh") and ("/" in w[0]):
        return w[0]
    return None


def _resolve_include(model: ScriptModel, cmd: Command, target: str, cwd: Path | None) -> Path | None:
    expanded = model.expand(target, cmd.line, cmd.file, dict(os.environ)) if "$" in target else target
    if not expanded:
        return None
    expanded = os.path.expanduser(expanded)
    candidates = []
    p = Path(expanded)
    if p.is_absolute():
        candidates.append(p)
    else:
        for d in list(reversed(model.cd_targets)) + ([str(model.path.parent)] if model.path else []) + \
                ([str(cwd)] if cwd else []):
            candidates.append(Path(d) / p)
    for c in candidates:
        try:
            if c.is_file():
                return c
        except OSError:
            continue
    return None


def _parse_text(model: ScriptModel, text: str, environ: dict[str, str] | None = None,
                args: list[str] | None = None, environ_complete: bool = True) -> None:
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

    state = _State()
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
                _parse_directive(model, lineno, stripped[len("#SBATCH"):])
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
        _commands_from_tokens(model, state, tokens, start + 1, i + 1, chunk, fname)
        i += 1

    # directives after the first command are ignored by sbatch
    if model.first_command_line is not None:
        for d in model.directives:
            d.ignored = d.line > model.first_command_line
    export = model.directive("export")
    if export is not None and not (export.value or "").upper().startswith("ALL"):
        environ = None  # --export=NONE / a list: the job does not start with this environment
    _evaluate(model, state.events, environ, args, environ_complete, fname)
    _find_invocations(model)


def _evaluate(model: ScriptModel, events: list, environ: dict[str, str] | None, args: list[str] | None,
              complete: bool, fname: str) -> None:
    """Drop the commands and assignments of branches the script provably does not take."""
    from preflight.script_eval import Evaluator, Malformed, build_tree

    # (environ may hold script_eval.UNKNOWN for a parent's variable set at run time)
    model.environ = {k: v for k, v in environ.items() if isinstance(v, str)} if environ is not None else None
    model.positional = list(args) if args is not None else None
    try:
        tree = build_tree(events)
        ev = Evaluator(environ, args, complete=complete, file=fname, include_args=_include_args)
        ev.run_top(tree)
    except Exception as exc:  # noqa: BLE001 - never let the evaluation break the parse
        # structure not understood (Malformed) or a form it does not handle: keep every branch
        for a in model.assignments:
            a.resolved = None
        model.problems_eval = f"{type(exc).__name__}: {exc}" if not isinstance(exc, Malformed) else str(exc)
        return
    model.evaluated = True
    model.commands = [c for c in model.commands if id(c) in ev.live]
    model.assignments = [a for a in model.assignments if id(a) in ev.live]
    model.functions = ev.functions
    model.skipped_lines = sorted(ev.skipped_lines)
    model._includes_env = ev.includes


def _include_args(cmd: Command) -> tuple[str, list[str]] | None:
    """("bash"|"source", raw words of its arguments) when cmd runs another script."""
    target = _included_file(cmd)
    if not target:
        return None
    w = cmd.words
    name = os.path.basename(w[0])
    kind = "source" if name in ("source", ".") else "bash"
    try:
        k = w.index(target, 1 if kind == "source" or name in ("bash", "sh", "zsh") else 0)
    except ValueError:
        return None
    return kind, list(cmd.raw_words[k + 1:])


@dataclass
class _State:
    depth: int = 0
    function_depth: list[int] = field(default_factory=list)
    in_condition: bool = False
    events: list = field(default_factory=list)  # block structure for preflight.script_eval
    case_expects_pattern: list[bool] = field(default_factory=list)  # one per open `case`


def _commands_from_tokens(model: ScriptModel, state: _State, tokens: list, line: int, end_line: int,
                          text: str, fname: str) -> None:
    cur: list[Word] = []
    redirects: list[tuple[str, str]] = []
    op_before: str | None = None
    negated = False
    expect_redirect: str | None = None
    pending_fn = False

    def emit(op_after: str | None) -> None:
        nonlocal cur, redirects, op_before, negated
        words = cur
        cur, reds = [], redirects
        redirects = []
        if not words:
            op_before = op_after if op_after not in (None, "nl") else None
            return
        # leading keywords
        while words and words[0].raw in (_KEYWORDS_OPEN | _KEYWORDS_CLOSE | _KEYWORDS_PREFIX | {"elif"}):
            kw = words[0].raw
            words = words[1:]
            if kw in ("if", "while", "until", "elif"):
                state.in_condition = True
                if kw != "elif":
                    state.depth += 1
                state.events.append(("kw", kw, None))
            elif kw in ("then", "do", "else"):
                state.in_condition = False
                state.events.append(("kw", kw, None))
            elif kw in ("for", "case", "select"):
                state.depth += 1
                state.events.append(("kw", kw, [w.raw for w in words]))
                if kw == "case":
                    state.case_expects_pattern.append(True)
                words = []  # the loop header / case word is not a command
                break
            elif kw == "{":
                state.depth += 1
                state.events.append(("kw", kw, None))
            elif kw in _KEYWORDS_CLOSE:
                state.depth = max(0, state.depth - 1)
                if state.function_depth and state.depth < state.function_depth[-1]:
                    state.function_depth.pop()
                if kw == "esac" and state.case_expects_pattern:
                    state.case_expects_pattern.pop()
                state.events.append(("kw", kw, None))
            elif kw == "!":
                negated = True
        if words:
            _record(model, state, words, reds, op_before, op_after, negated, line, end_line, text, fname)
        negated = False
        op_before = op_after if op_after not in (None, "nl") else None

    idx = 0
    while idx < len(tokens):
        kind, tok = tokens[idx]
        if kind == "word":
            if expect_redirect:
                redirects.append((expect_redirect, tok.value))
                expect_redirect = None
            elif cur and cur[-1].raw == "function":
                cur = []
                pending_fn = True
                state.events.append(("fn", tok.value, line))
            else:
                cur.append(tok)
        elif kind == "nl":
            emit(None)
        else:
            op = tok
            expects_pattern = bool(state.case_expects_pattern and state.case_expects_pattern[-1])
            if op in (">", ">>", ">&", "&>", "<", "<&", "<<", "<<-", "<<<"):
                expect_redirect = op
            elif op == "(" and idx + 1 < len(tokens) and tokens[idx + 1] == ("op", ")") and \
                    (len(cur) == 1 or (pending_fn and not cur)):
                # name() { ... } / function name() { ... }: a function definition
                if cur:
                    state.events.append(("fn", cur[0].value, line))
                cur = []
                idx += 1
                pending_fn = True
            elif op == "|" and expects_pattern and cur:
                cur.append(Word("|", "|", False))  # -t|--tiny) : alternatives of one case pattern
            elif op == "(" and expects_pattern and not cur:
                pass  # (--tiny) : the optional open paren of a case pattern
            elif op == ")" and cur and cur[0].raw == "case" and any(w.raw == "in" for w in cur[1:-1]):
                # one-line `case "$1" in --tiny) ...`: the header, then the first pattern
                k = next(j for j, w in enumerate(cur) if w.raw == "in" and j > 0)
                pattern = cur[k + 1:]
                cur = cur[:k + 1]
                emit(None)
                state.events.append(("pattern", [w.raw for w in pattern if w.raw != "|"]))
                if state.case_expects_pattern:
                    state.case_expects_pattern[-1] = False
            elif op == ")" and cur and expects_pattern:
                # a case pattern such as `start)`: not a command
                state.events.append(("pattern", [w.raw for w in cur if w.raw != "|"]))
                state.case_expects_pattern[-1] = False
                cur = []
                emit(None)
            elif op in ("(", ")"):
                emit(None)
                if op == "(":
                    state.depth += 1
                else:
                    state.depth = max(0, state.depth - 1)
                state.events.append(("kw", op, None))
            elif op == ";;":
                emit(None)
                if state.case_expects_pattern:
                    state.case_expects_pattern[-1] = True
            else:
                emit(op)
            if pending_fn and op not in ("(", ")"):
                pass
        if pending_fn and kind == "word" and tok.raw == "{":
            pass
        if pending_fn and cur and cur[0].raw == "{":
            state.function_depth.append(state.depth + 1)
            pending_fn = False
        idx += 1
    emit(None)


def _record(model: ScriptModel, state: _State, words: list[Word], redirects: list, op_before: str | None,
            op_after: str | None, negated: bool, line: int, end_line: int, text: str, fname: str) -> None:
    n_assign, n_cmd = len(model.assignments), len(model.commands)
    _record_command(model, state, words, redirects, op_before, op_after, negated, line, end_line, text, fname)
    # the event for preflight.script_eval: the command and its assignments with their values as written
    raws: dict[str, str] = {}
    for w in words:
        m = _ASSIGN_RE.match(w.value)
        if m and not w.raw.startswith(("'", '"')):
            raws[m.group(1)] = w.raw.partition("=")[2]
        m = re.match(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):?=", w.raw)
        if m:
            raws[m.group(1)] = w.raw  # `: ${X:=v}`: keeps a value set before
    new = model.assignments[n_assign:]
    cmd = model.commands[n_cmd] if len(model.commands) > n_cmd else None
    state.events.append(("item", cmd, [(a, raws.get(a.name, a.value)) for a in new]))


def _record_command(model: ScriptModel, state: _State, words: list[Word], redirects: list, op_before: str | None,
                    op_after: str | None, negated: bool, line: int, end_line: int, text: str, fname: str) -> None:
    env: dict[str, str] = {}
    rest = list(words)
    while rest and _ASSIGN_RE.match(rest[0].value) and not rest[0].raw.startswith(("'", '"')):
        m = _ASSIGN_RE.match(rest[0].value)
        env[m.group(1)] = m.group(3)
        rest = rest[1:]
    in_function = bool(state.function_depth)
    cmd = Command(line=line, end_line=end_line, words=[w.value for w in rest], raw_words=[w.raw for w in rest],
                  env=env, redirects=redirects, op_before=op_before, op_after=op_after,
                  background=op_after == "&", depth=state.depth, in_condition=state.in_condition,
                  negated=negated, in_function=in_function, file=fname, text=text)
    unconditional = state.depth == 0 and not in_function and op_before not in ("&&", "||") and op_after not in ("&&", "||")
    if not rest:
        # plain assignments: X=1 Y=2
        for name, value in env.items():
            model.assignments.append(Assignment(line, name, value, exported=False, unconditional=unconditional,
                                                default_only=_is_default_only(name, value), file=fname))
        return
    model.commands.append(cmd)
    name = cmd.name
    if name in ("export", "declare", "typeset", "readonly", "local") and len(rest) > 1:
        exported = name == "export" or (name in ("declare", "typeset") and any(w.value.startswith("-") and "x" in w.value for w in rest[1:]))
        for w in rest[1:]:
            if w.value.startswith("-"):
                continue
            m = _ASSIGN_RE.match(w.value)
            if m:
                model.assignments.append(Assignment(line, m.group(1), m.group(3), exported=exported,
                                                    unconditional=unconditional and name != "local",
                                                    default_only=_is_default_only(m.group(1), m.group(3)), file=fname))
            elif exported:
                # `export X` exports the current value: record as a marker with the value it has
                model.assignments.append(Assignment(line, w.value, f"${{{w.value}}}", exported=True,
                                                    unconditional=False, default_only=True, file=fname))
    elif name == ":" and len(rest) > 1:
        for w in rest[1:]:
            m = re.match(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):?=(.*)\}$", w.value)
            if m:
                model.assignments.append(Assignment(line, m.group(1), m.group(2), exported=False,
                                                    unconditional=False, default_only=True, file=fname))
    elif name == "set":
        for w in cmd.words[1:]:
            if re.match(r"^-[a-zA-Z]*e[a-zA-Z]*$", w) and model.set_e_line is None:
                model.set_e_line = line
            if re.match(r"^-[a-zA-Z]*E", w):
                pass
        opts = cmd.words[1:]
        for j, w in enumerate(opts):
            if w in ("-o", "-eo", "-euo", "-ueo", "-oe") or (w.startswith("-") and w.endswith("o")):
                nxt = opts[j + 1] if j + 1 < len(opts) else ""
                if nxt == "errexit" and model.set_e_line is None:
                    model.set_e_line = line
                if nxt == "pipefail" and model.pipefail_line is None:
                    model.pipefail_line = line
            if w in ("+e",) and model.set_e_line is not None and unconditional:
                model.set_e_line = None  # `set +e` at top level turns it off again
    elif name == "trap" and len(cmd.words) > 2 and "ERR" in cmd.words[2:] and "exit" in cmd.words[1]:
        model.errtrap_line = model.errtrap_line or line
    elif name in ("cd", "pushd") and len(cmd.words) > 1:
        target = cmd.words[-1]
        expanded = model.expand(target, line, fname, dict(os.environ)) if "$" in target else target
        if expanded:
            model.cd_targets.append(os.path.expanduser(expanded))


def _is_default_only(name: str, value: str) -> bool:
    return bool(re.match(r"^\$\{%s:?[-=]" % re.escape(name), value))


# -- directives --------------------------------------------------------------------------------
def _split_options(text: str) -> list[str]:
    try:
        tokens, _ = tokenize(text)
    except Unterminated:
        return text.split()
    return [t.value for kind, t in tokens if kind == "word"]


def parse_option_list(words: list[str]) -> list[tuple[str, str | None, str]]:
    """sbatch-style options -> [(long key, value, raw)]; stops at the first non-option."""
    out = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("--"):
            key, eq, value = w[2:].partition("=")
            raw = w
            if not eq:
                if key in _SBATCH_FLAGS_NO_VALUE or i + 1 >= len(words) or words[i + 1].startswith("-"):
                    value = None
                else:
                    value = words[i + 1]
                    raw = f"{w} {value}"
                    i += 1
            out.append((key, value, raw))
        elif w.startswith("-") and len(w) >= 2:
            letter = w[1]
            key = _SHORT.get(letter, letter)
            if len(w) > 2:
                value = w[2:].lstrip("=")
                raw = w
            elif letter in _SBATCH_FLAGS_NO_VALUE or i + 1 >= len(words):
                value, raw = None, w
            else:
                value = words[i + 1]
                raw = f"{w} {value}"
                i += 1
            out.append((key, value, raw))
        else:
            break
        i += 1
    return out


def _parse_directive(model: ScriptModel, lineno: int, rest: str) -> None:
    words = _split_options(rest)
    for key, value, raw in parse_option_list(words):
        model.directives.append(Directive(line=lineno, key=key, value=value, raw=raw,
                                          has_variable=bool(value and re.search(r"\$\{?[A-Za-z_]", value))))


# -- invocations -------------------------------------------------------------------------------
_TORCHRUN_NO_VALUE = {"standalone", "no_python", "no-python", "run_path", "run-path", "module", "m"}
_SRUN_VALUE_SHORT = set("nNcGptoeJwCdDABqmx")


def _strip_wrappers(words: list[str]) -> tuple[list[str], bool, list[str]]:
    """Remove srun/uv run/env/nohup/time/exec prefixes. Returns (words, under_srun, srun_opts)."""
    srun = False
    srun_opts: list[str] = []
    changed = True
    while changed and words:
        changed = False
        head = os.path.basename(words[0])
        if head == "srun":
            srun = True
            j = 1
            while j < len(words) and words[j].startswith("-"):
                w = words[j]
                srun_opts.append(w)
                if len(w) == 2 and w[1] in _SRUN_VALUE_SHORT and j + 1 < len(words):
                    srun_opts.append(words[j + 1])
                    j += 1
                j += 1
            words = words[j:]
            changed = True
        elif head in ("nohup", "exec", "time", "stdbuf", "numactl", "nice", "command"):
            j = 1
            while j < len(words) and words[j].startswith("-"):
                j += 1
            words = words[j:]
            changed = True
        elif head == "env":
            j = 1
            while j < len(words) and (words[j].startswith("-") or _ASSIGN_RE.match(words[j])):
                j += 1
            words = words[j:]
            changed = True
        elif head == "uv" and len(words) > 1 and words[1] == "run":
            j = 2
            while j < len(words) and words[j].startswith("-"):
                j += 1
            words = words[j:]
            changed = True
        elif head == "timeout":
            j = 1
            while j < len(words) and words[j].startswith("-"):
                j += 1
            words = words[j + 1:]
            changed = True
    return words, srun, srun_opts


def parse_flags(args: list[str]) -> list[Flag]:
    """Script arguments as flags: --k=v (equals), --k v (space), --k (bare), -x v (short), positional."""
    flags: list[Flag] = []
    after = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            if not after:
                after = True
                i += 1
                continue
        if a.startswith("--") and len(a) > 2:
            key, eq, value = a[2:].partition("=")
            if eq:
                flags.append(Flag(key, value, "equals", a, after))
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                flags.append(Flag(key, args[i + 1], "space", f"{a} {args[i + 1]}", after))
                i += 1
            elif i + 1 < len(args) and re.match(r"^-\d", args[i + 1]):
                flags.append(Flag(key, args[i + 1], "space", f"{a} {args[i + 1]}", after))
                i += 1
            else:
                flags.append(Flag(key, None, "bare", a, after))
        elif a.startswith("-") and len(a) > 1 and not re.match(r"^-\d", a):
            if len(a) > 2:
                flags.append(Flag(a[1], a[2:].lstrip("="), "short", a, after))
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                flags.append(Flag(a[1], args[i + 1], "short", f"{a} {args[i + 1]}", after))
                i += 1
            else:
                flags.append(Flag(a[1], None, "short", a, after))
        else:
            flags.append(Flag(None, a, "positional", a, after))
        i += 1
    return flags


def _parse_invocation(cmd: Command, words: list[str] | None = None) -> Invocation | None:
    """cmd as a python/torchrun invocation; ``words``: its words after expansion (default: as written)."""
    words, srun, srun_opts = _strip_wrappers(list(cmd.words if words is None else words))
    if not words:
        return None
    head = os.path.basename(words[0])
    launcher_opts: list[str] = []
    nproc = nnodes = None
    standalone = False
    module = script_file = None
    args: list[str] = []
    launcher = None
    if head == "torchrun" or (_PY_RE.match(head) and len(words) > 2 and words[1] == "-m"
                              and words[2] in ("torch.distributed.run", "torch.distributed.launch")):
        launcher = "torchrun"
        j = 1 if head == "torchrun" else 3
        while j < len(words):
            w = words[j]
            if w in ("-m", "--module"):
                if j + 1 < len(words):
                    module = words[j + 1]
                    args = words[j + 2:]
                j = len(words)
                break
            if not w.startswith("-"):
                script_file = w
                args = words[j + 1:]
                break
            key, eq, value = w.lstrip("-").partition("=")
            launcher_opts.append(w)
            if not eq and key not in _TORCHRUN_NO_VALUE and j + 1 < len(words):
                value = words[j + 1]
                launcher_opts.append(value)
                j += 1
            k = key.replace("-", "_")
            if k == "nproc_per_node":
                nproc = value
            elif k == "nnodes":
                nnodes = value
            elif k == "standalone":
                standalone = True
            j += 1
        if module is None and script_file is None and head == "torchrun":
            return None
    elif _PY_RE.match(head):
        launcher = "python"
        j = 1
        while j < len(words):
            w = words[j]
            if w == "-m" and j + 1 < len(words):
                module = words[j + 1]
                args = words[j + 2:]
                break
            if w.startswith("-m") and len(w) > 2:
                module = w[2:]
                args = words[j + 1:]
                break
            if w == "-c":
                return None
            if w in ("-X", "-W") and j + 1 < len(words):
                j += 2
                continue
            if not w.startswith("-"):
                script_file = w
                args = words[j + 1:]
                break
            j += 1
        if module is None and script_file is None:
            return None
    else:
        return None
    if srun:
        launcher = "srun+" + launcher
    return Invocation(line=cmd.line, launcher=launcher, module=module, script_file=script_file,
                      flags=parse_flags(args), args=args, nproc_per_node=nproc, nnodes=nnodes,
                      standalone=standalone, srun=srun, background=cmd.background, checked=False,
                      command=cmd, launcher_opts=launcher_opts + srun_opts)


def _find_invocations(model: ScriptModel) -> None:
    cmds = model.commands
    wrappers = _find_wrappers(model)
    templates = {id(w.command) for _, w in wrappers if w is not None}
    for idx, cmd in enumerate(cmds):
        if id(cmd) in templates:
            continue  # the launcher inside a wrapper function: its calls are the invocations
        words = _expand_words(model, [(v, r) for v, r in zip(cmd.words, cmd.raw_words)], cmd)
        via = None
        if words:
            wrapper = _wrapper_for(wrappers, words[0], cmd)
            if wrapper is not None:
                words = _expand_words(model, wrapper.apply(words[1:]), cmd)
                via = f"{wrapper.name} (defined line {wrapper.line})"
        inv = _parse_invocation(cmd, words)
        if inv is None:
            continue
        inv.checked = _has_exit_check(cmds, idx)
        inv.via = via
        model.invocations.append(inv)


# an argument that is exactly one parameter expansion: $X, ${X}, ${X:-default}, "$X" ...
_PURE_VAR_RE = re.compile(r"^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*(?::?[-=+][^{}]*)?\})$")


def _expand_words(model: ScriptModel, pairs: list[tuple[str, str | None]], cmd: Command) -> list[str]:
    """(value, raw) -> words, expanding what bash would: a variable head (`$PYTHON -m ...`,
    `"${PY}"`) and unquoted variable arguments, split into words (`$BASE` holding
    `--depth=2 --max_seq_len=256`) or gone (empty). Quoted arguments and words with text
    around the variable (`--run=$WANDB_RUN`) stay as written (checks expand them where
    they need the value). raw None: the value is final."""
    out: list[str] = []
    for k, (value, raw) in enumerate(pairs):
        if raw is None or "$" not in raw:
            out.append(value)
            continue
        quoted = len(raw) > 1 and raw[0] == raw[-1] == '"'
        inner = raw[1:-1] if quoted else raw
        if not _PURE_VAR_RE.match(inner) or (quoted and k > 0):
            out.append(value)
            continue
        val = model.expand(inner, cmd.line, cmd.file, model.environ)
        if val is None or "$" in val:
            out.append(value)
        elif quoted:
            out.append(val)
        else:
            out.extend(val.split())  # bash's word splitting (default IFS); an empty value is no word
    return out


class _Wrapper:
    """A shell function that launches its first argument: `launch() { local mod=$1; shift;
    torchrun ... -m "$mod" -- "$@"; }` (or a fixed module with "$@")."""

    def __init__(self, name: str, line: int, file: str, command: Command, aliases: dict[str, int], shift: int):
        self.name, self.line, self.file = name, line, file
        self.command = command  # the launcher command inside the body
        self.aliases = aliases  # local name -> index of the call argument it holds
        self.shift = shift  # arguments shifted away before the launcher runs

    def apply(self, args: list[str]) -> list[tuple[str, str | None]]:
        """The launcher's words for a call with these (expanded) arguments."""
        out: list[tuple[str, str | None]] = []
        for value, raw in zip(self.command.words, self.command.raw_words):
            ref = _positional_ref(raw, self.aliases, self.shift)
            if ref == "all":
                out.extend((a, None) for a in args[self.shift:])
            elif isinstance(ref, int):
                out.append((args[ref] if ref < len(args) else "", None))
            else:
                out.append((value, raw))
        return out


def _positional_ref(raw: str, aliases: dict[str, int], shift: int) -> int | str | None:
    inner = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == '"' else raw
    if inner in ("$@", "${@}", "$*", "${*}"):
        return "all"
    m = re.fullmatch(r"\$(?:([1-9])|\{([1-9])\}|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})", inner)
    if not m:
        return None
    digit = m.group(1) or m.group(2)
    if digit:
        return shift + int(digit) - 1
    return aliases.get(m.group(3) or m.group(4))


def _find_wrappers(model: ScriptModel) -> list[tuple[Any, _Wrapper | None]]:
    """(definition, the wrapper it is or None) for every function definition that may run."""
    from preflight.script_eval import Item

    found: list[tuple[Any, _Wrapper | None]] = []
    for fn in model.functions:
        found.append((fn, None))
        aliases: dict[str, int] = {}
        shift = 0
        for node in fn.body:
            if not isinstance(node, Item):
                break  # simple wrappers only: straight-line bodies
            for a, raw in node.assigns:
                ref = _positional_ref(raw, {}, shift)
                if isinstance(ref, int):
                    aliases[a.name] = ref
            cmd = node.cmd
            if cmd is None or cmd.name in ("local", "declare", "typeset", "export"):
                continue
            if cmd.name == "shift":
                n = cmd.words[1] if len(cmd.words) > 1 else "1"
                if not n.isdigit():
                    break
                shift += int(n)
                continue
            refs = [_positional_ref(r, aliases, shift) for r in cmd.raw_words]
            if not any(r is not None for r in refs):
                continue
            words = _expand_words(model, [(v, r) for v, r in zip(cmd.words, cmd.raw_words)], cmd)
            inv = _parse_invocation(cmd, words)
            if inv is None:
                continue
            module_ref = _positional_ref(next((r for v, r in zip(cmd.words, cmd.raw_words) if v == inv.module), ""),
                                         aliases, shift) if inv.module else None
            if isinstance(module_ref, int) or "all" in refs:
                found[-1] = (fn, _Wrapper(fn.name, fn.line, fn.file, cmd, aliases, shift))
                break
    return found


def _wrapper_for(wrappers: list[tuple[Any, _Wrapper | None]], name: str, cmd: Command) -> _Wrapper | None:
    """The definition a call uses: the last one before the call among those that may run
    (a definition in a branch the script does not take was dropped already)."""
    best = None
    for fn, w in wrappers:
        if fn.name == name and (fn.file != cmd.file or fn.line < cmd.line):
            best = w
    return best


def _has_exit_check(cmds: list[Command], idx: int) -> bool:
    cmd = cmds[idx]
    if cmd.in_condition:
        return True  # `if ! torchrun ...; then exit 1; fi` / `if torchrun ...; then`
    if cmd.op_after == "||":
        for nxt in cmds[idx + 1: idx + 6]:
            if nxt.line > cmd.end_line + 3:
                break
            if nxt.name in ("exit", "return", "false") or any(w in ("exit", "return") for w in nxt.words):
                return True
            if nxt.op_after not in (";", "&&", None) and nxt.name not in ("echo", "printf", ">&2"):
                break
    if idx + 1 < len(cmds):
        nxt = cmds[idx + 1]
        joined = " ".join(nxt.raw_words)
        if "$?" in joined or "${?}" in joined or "PIPESTATUS" in joined:
            return True
    return False


# -- facts -------------------------------------------------------------------------------------
def script_fact(ctx: Any) -> ScriptModel:
    path = ctx.inputs.script
    if path is None:
        raise FactUnavailable("no batch script given")
    path = Path(path)
    if not path.is_absolute():
        path = Path(ctx.inputs.cwd) / path
    if not path.exists():
        return ScriptModel(path=path, problems=[f"{path} does not exist"])
    # sbatch hands the job this environment (--export=ALL, its default); branches that test it
    # are decided from it. With --export=NONE or a list on the command line it is unknown.
    environ: dict[str, str] | None = dict(ctx.environ)
    for key, value, _raw in parse_option_list(list(ctx.inputs.sbatch_args or [])):
        if key == "export" and not (value or "").upper().startswith("ALL"):
            environ = None
    return parse_script(path, cwd=Path(ctx.inputs.cwd), environ=environ)


# time formats: min | min:sec | h:min:sec | d-h | d-h:min | d-h:min:sec
def parse_time_limit(value: str | None) -> int | None:
    """sbatch --time value -> seconds (None: unlimited or unparsable)."""
    if not value:
        return None
    v = value.strip()
    if v.lower() in ("unlimited", "infinite", "-1"):
        return None
    days = 0
    if "-" in v:
        d, _, v = v.partition("-")
        if not d.isdigit():
            return None
        days = int(d)
        parts = v.split(":")
        if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
            return None
        h, m, s = (list(map(int, parts)) + [0, 0])[:3]
        return days * 86400 + h * 3600 + m * 60 + s
    parts = v.split(":")
    if not all(p.isdigit() for p in parts):
        return None
    nums = list(map(int, parts))
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    if len(nums) == 3:
        return nums[0] * 3600 + nums[1] * 60 + nums[2]
    return None


def gpus_from_gres(value: str | None) -> int | None:
    """--gres=gpu:8 / gpu:h100:8 / gpu:a100:4,lscratch:10 -> 8/8/4; gpu (no count) -> 1."""
    if not value:
        return None
    for part in value.split(","):
        bits = part.split(":")
        if bits[0] != "gpu":
            continue
        if len(bits) == 1:
            return 1
        last = bits[-1].split("(")[0]
        if last.isdigit():
            return int(last)
        return 1
    return None


def _count(value: str | None) -> int | None:
    """--gpus=8 / --gpus=h100:8 / --nodes=2 / --nodes=1-2 (min) -> int."""
    if not value:
        return None
    v = value.split(":")[-1].split("-")[0].split(",")[0]
    return int(v) if v.isdigit() else None


@dataclass
class JobEnv:
    """What the job will see: ctx.environ overlaid with the script's exports, and the sbatch
    options (script directives, overridden by the command-line sbatch args)."""

    env: dict[str, str]
    sbatch: dict[str, str | None]  # long option -> value (last wins; CLI over script)
    sbatch_source: dict[str, str]  # long option -> "script:LINE" | "command line"
    exported: set[str] = field(default_factory=set)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.env.get(name, default)

    @property
    def nodes(self) -> int:
        return _count(self.sbatch.get("nodes")) or 1

    @property
    def gpus_per_node(self) -> int | None:
        s = self.sbatch
        n = gpus_from_gres(s.get("gres"))
        if n is not None:
            return n
        if s.get("gpus-per-node"):
            return _count(s.get("gpus-per-node"))
        if s.get("gpus"):
            total = _count(s.get("gpus"))
            return None if total is None else max(1, total // self.nodes)
        if s.get("gpus-per-task"):
            per = _count(s.get("gpus-per-task"))
            tasks = _count(s.get("ntasks-per-node")) or _count(s.get("ntasks")) or 1
            return None if per is None else per * tasks
        return None

    @property
    def time_limit_s(self) -> int | None:
        return parse_time_limit(self.sbatch.get("time"))

    def to_json(self) -> dict:
        return {"sbatch": dict(self.sbatch), "exported": sorted(self.exported)}


def job_env_fact(ctx: Any) -> JobEnv:
    env = dict(ctx.environ)
    sbatch: dict[str, str | None] = {}
    source: dict[str, str] = {}
    exported: set[str] = set()
    script = ctx.get("script", None)
    if script is not None and script.ok:
        for d in script.active_directives():
            sbatch[d.key] = d.value
            source[d.key] = f"script:{d.line}"
        for a in script.all_assignments:
            if a.default_only and env.get(a.name):
                continue
            value = script.expand(a.value, a.line, a.file, env)
            if value is None:
                value = a.value
            if a.name in env or a.exported:
                # a plain assignment of an exported variable changes what children see
                env[a.name] = value
            if a.exported:
                exported.add(a.name)
    for key, value, _raw in parse_option_list(list(ctx.inputs.sbatch_args or [])):
        sbatch[key] = value
        source[key] = "command line"
    return JobEnv(env=env, sbatch=sbatch, sbatch_source=source, exported=exported)


# -- sbatch --test-only and partition limits ---------------------------------------------------
_UNREACHABLE = ("unable to contact slurm controller", "connection refused", "socket timed out",
                "zero bytes were transmitted", "unable to establish", "could not establish", "communications connection failure")


@dataclass
class SbatchTest:
    """What SLURM says about the job without submitting it (the ``sbatch_test`` fact)."""

    returncode: int
    output: str  # stderr + stdout of `sbatch --test-only`
    partitions: dict[str, dict[str, str]]  # name -> scontrol fields (MaxTime, MaxNodes, Default ...)
    default_partition: str | None = None


def parse_partitions(text: str) -> tuple[dict[str, dict[str, str]], str | None]:
    parts: dict[str, dict[str, str]] = {}
    default = None
    for line in text.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        name = fields.get("PartitionName")
        if not name:
            continue
        parts[name] = fields
        if fields.get("Default") == "YES":
            default = name
    return parts, default


def sbatch_test_fact(ctx: Any) -> SbatchTest:
    from preflight.proc import ToolTimeout, run_tool, which

    if which("sbatch") is None:
        raise FactUnavailable("SLURM not installed here (no sbatch on PATH)")
    ctx.get("slurm")  # quick: a missing controller skips, a hung one errors, before sbatch waits on it
    script = ctx.get("script")
    if not script.ok or script.path is None:
        raise FactUnavailable("no readable batch script")
    timeout = float(ctx.config.get("slurm-timeout", 20.0)) if ctx.config is not None else 20.0
    try:
        res = run_tool(["sbatch", "--test-only", *list(ctx.inputs.sbatch_args or []), str(script.path)],
                       timeout=timeout, cwd=str(ctx.inputs.cwd), env=ctx.environ or None)
    except ToolTimeout:
        raise  # hung, not absent: SB014 becomes an error, not a silent skip
    out = (res.stderr + res.stdout).strip()
    if res.returncode != 0 and any(s in out.lower() for s in _UNREACHABLE):
        raise FactUnavailable(f"SLURM controller not reachable: {out.splitlines()[-1] if out else ''}")
    partitions, default = {}, None
    try:
        part = run_tool(["scontrol", "show", "partition", "-o"], timeout=timeout)
        if part.returncode == 0:
            partitions, default = parse_partitions(part.stdout)
    except (FactUnavailable, ToolTimeout):
        pass
    return SbatchTest(res.returncode, out, partitions, default)
