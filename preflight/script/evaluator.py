"""Static evaluation of a parsed batch script: which branches it takes, without running anything.

The parser (preflight.script.parser) records a flat stream of events (keywords, case patterns,
function heads, simple commands with their assignments). ``tree.build_tree`` turns it into blocks
(if / loops / case / groups / functions) and ``Evaluator`` walks them with what is known
statically: the script's own assignments, the environment it is given (when given) and its
positional arguments (when a followed script is run as ``bash x.sh --tiny``).

Three-valued throughout: a value or a condition that depends on anything unknown (a command
substitution, a variable set at run time, an undecidable test) is UNKNOWN, and then every
branch it guards is kept, as before this module existed. Only a branch that provably is not
taken is dropped. Code that may or may not run is walked "uncertainly": its assignments make
their variables UNKNOWN, but conditions inside it are still decided where they can be.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

from preflight.script.arith import expand_arithmetic
from preflight.script.conditions import Conditions
from preflight.script.lexer import Unterminated, brace_end, tokenize
from preflight.script.model import (
    ARRAY_ALL_RE,
    JOB_VARS,
    MAX_VALUE_CHARS,
    PARAM_WORD,
    SWEEP_RUNS_MAX,
    appended,
    array_items,
)
from preflight.script.required import required_argument, unset_required
from preflight.script.runvars import NAME_SETTERS, script_dir_value, set_at_run_time
from preflight.script.sourced import known_sets
from preflight.script.tree import Case, Func, Group, If, Item, Loop
from preflight.units import parse_count, parse_int


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
MAX_ITERATIONS = 64  # a loop that runs longer is walked once, uncertainly
# loop bodies walked in one evaluation: nested loops multiply (60 x 60 x 60 values took 2.5 s); past this budget
# a loop is walked once, uncertainly, as a long one is
MAX_BODY_WALKS = 4096

_PARAM_RE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[#@*])(?:(:?[-=+])(" + PARAM_WORD + r"))?\}"
    r"|([A-Za-z_][A-Za-z0-9_]*|[0-9#@*?$!-]))"
)
# a `$` left after the expansions we evaluate that starts one we do not (`${#X}`, `$((`, `$[`); a `$` at the end of a
# word or before another character is a literal `$` in bash (`$'\n'` and `$"..."`: expand_raw)
_UNREAD_DOLLAR_RE = re.compile(r"\$(?=[{(\[A-Za-z0-9_])")
_ALL_ARGS = {'"$@"', "$@", '"${@}"', "${@}", "$*", "${*}"}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Exit(Exception):
    """An `exit` the script surely reaches: nothing after it runs."""


class FunctionDef:
    """A function definition on a path that may run."""

    __slots__ = ("name", "line", "file", "body", "certain")

    def __init__(self, name: str, line: int, file: str, body: list, certain: bool):
        self.name, self.line, self.file, self.body = name, line, file, body
        self.certain = certain  # defined on a path the script surely takes

    def __repr__(self) -> str:
        return f"FunctionDef({self.name!r}, line {self.line})"


class IncludeCall:
    """What a followed script starts with: its environment and its positional arguments."""

    __slots__ = ("environ", "complete", "positional")

    def __init__(self, environ: dict, complete: bool, positional: list[str] | None):
        self.environ = environ  # name -> value or UNKNOWN
        self.complete = complete  # names missing from environ are unset (not unknown)
        self.positional = positional


class Evaluator(Conditions):
    def __init__(
        self,
        environ: dict | None,
        positional: list[str] | None,
        *,
        complete: bool = True,
        file: str = "",
        include_args: Callable[[Any], tuple[str, list[str]] | None] | None = None,
        script_dir: str | None = None,
        runner: bool = False,
    ):
        self.base: dict = dict(environ or {})
        self.runner = runner  # a script with no #SBATCH lines, run by a caller whose environment is not this one
        self.required_unset: tuple | None = None
        self.script_dir = script_dir  # where bash runs the script from its file (runvars.script_dir_value)
        self.complete = environ is not None and complete
        self.env: dict[str, Any] = {}  # the script's own assignments so far (value, None: unset, UNKNOWN)
        self.exported: set[str] = set()
        self.positional = list(positional) if positional is not None else None
        self.file = file
        self.include_args = include_args
        self.live: set[int] = set()  # id() of the Commands / Assignments on a path that may run
        self.functions: list[FunctionDef] = []
        self.includes: dict[int, IncludeCall] = {}  # id(command) -> what the followed script sees
        self.args_at: dict[int, list[str]] = {}  # id(command) -> the script's arguments where it passes them on ("$@")
        self.skipped_lines: set[int] = set()
        self.exited: tuple[int, str, str, str | None] | None = None  # (line, file, `exit N`, why it is reached)
        self._taken: list[str] = []  # the conditions of the branches being walked that are surely taken
        # id(command) -> its words in each iteration of the `for` loops around it (None: unknown in that one)
        self.loop_words: dict[int, list[list[str] | None]] = {}
        self._loops = 0  # `for` loops over known lists being iterated
        self._walks = 0  # loop bodies walked so far (MAX_BODY_WALKS)

    # -- values ---------------------------------------------------------------------------------
    def lookup(self, name: str) -> Any:
        """A variable's value: str, None (unset) or UNKNOWN."""
        if name in self.env:
            return self.env[name]
        if name in self.base:
            return self.base[name]
        if not self.complete or set_at_run_time(name):
            return UNKNOWN
        return None

    def _param(self, name: str) -> Any:
        if name.isdigit():
            if name == "0":
                return UNKNOWN
            if self.positional is None:
                return UNKNOWN
            i = (parse_int(name) or len(self.positional) + 1) - 1  # $99999...: past any argument
            return self.positional[i] if i < len(self.positional) else None
        if name == "#":
            return UNKNOWN if self.positional is None else str(len(self.positional))
        if name in ("@", "*"):
            return UNKNOWN if self.positional is None else " ".join(self.positional)
        if len(name) == 1 and not (name.isalpha() or name == "_"):
            return UNKNOWN  # $? $$ $! $-
        return self.lookup(name)

    def _arith_name(self, name: str) -> str | None:
        """A name in $(( )): its value; an unset one is 0, as in bash; None where unknown."""
        val = self._param(name)
        return None if val is UNKNOWN else (val or "0")

    def subst(self, text: str, _depth: int = 0) -> str | None:
        """Parameter expansion of unquoted/double-quoted text; None if anything is unknown."""
        if "$((" in text and _depth <= 4:  # arithmetic, with the names known here (WORLD=$((B * T * NGPU)))
            text = expand_arithmetic(text, self._arith_name)
            if text is None:
                return None
        if "$(" in text or "`" in text or _depth > 4 or len(text) > MAX_VALUE_CHARS:
            return None
        if _UNREAD_DOLLAR_RE.search(_PARAM_RE.sub("", text)):
            return None  # a form we do not evaluate: ${#X}, ${X%y}, ${A[0]}, $((..)); a bare $ (`^[0-9]+$`) is literal
        unknown = False

        def one(m: re.Match) -> str:
            nonlocal unknown
            name = m.group(1) or m.group(4)
            op, word = m.group(2), m.group(3)
            val = self._param(name)
            if val is UNKNOWN:
                unknown = True
                return ""
            if op:
                is_set = val is not None and (val != "" or not op.startswith(":"))
                if op.endswith("+"):
                    return (self.subst(word, _depth + 1) or "") if is_set else ""
                if not is_set:
                    # ${X:-"dummy"}: bash removes the default's own quotes
                    quoted = len(word) > 1 and word[0] == word[-1] and word[0] in "\"'"
                    alt = self.subst(word[1:-1] if quoted else word, _depth + 1)
                    if alt is None:
                        unknown = True
                        return ""
                    return alt
            return val or ""

        out = _PARAM_RE.sub(one, text)
        return None if unknown or len(out) > MAX_VALUE_CHARS else out  # `A=$A$A` 40 times: unknown, not 1 TB

    def expand_raw(self, raw: str) -> str | None:
        """A word as written (with its quotes) -> its value after expansion and quote removal."""
        if "$(" in raw.replace("$((", "") or "`" in raw:  # a command's output; arithmetic is evaluated
            return script_dir_value(raw, self.script_dir)
        out: list[str] = []
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if c == "'":
                j = raw.find("'", i + 1)
                if j < 0:
                    return None
                out.append(raw[i + 1 : j])
                i = j + 1
            elif c == '"':
                j = i + 1
                while j < n and raw[j] != '"':
                    j = brace_end(raw, j + 2) + 1 if raw.startswith("${", j) else j + (2 if raw[j] == "\\" else 1)
                    if j == 0:
                        return None
                v = self.subst(re.sub(r'\\(["\\])', r"\1", raw[i + 1 : j]))
                if v is None:
                    return None
                out.append(v)
                i = j + 1
            elif c == "\\":
                out.append(raw[i + 1 : i + 2])
                i += 2
            else:
                j = i
                while j < n and raw[j] not in "'\"\\":
                    j = brace_end(raw, j + 2) + 1 if raw.startswith("${", j) else j + 1  # ${X:-"a b"}: one part
                    if j == 0:
                        return None
                if raw[i:j].endswith("$") and j < n and raw[j] in "'\"":
                    return None  # $'...' (ANSI-C quoting), $"..." (translated): not evaluated
                v = self.subst(raw[i:j])
                if v is None:
                    return None
                out.append(v)
                i = j
        value = "".join(out)
        return value if len(value) <= MAX_VALUE_CHARS else None

    def _expand_array(self, raw: str) -> str | None:
        """``(a "$X" "${A[@]}")`` -> its elements expanded, as the model keeps an array (``(a x1 y1 y2)``):
        `A=(--standalone "${A[@]}")` prepends to an array; an unknown element is kept as written."""
        if not raw.endswith(")"):
            return self.expand_raw(raw)
        try:
            tokens, _ = tokenize(raw[1:-1])
        except Unterminated:
            return None
        # an element known only in the job stays as written (`--rdzv_endpoint=$MASTER_ADDR:29500`), as in a
        # command's words: the launcher's other options and the module still count
        items = self._words_known([t.raw for kind, t in tokens if kind == "word"])
        value = "(" + " ".join(shlex.quote(item) for item in items) + ")"
        return value if len(value) <= MAX_VALUE_CHARS else None

    def expand_words(self, raws: list[str]) -> list[str] | None:
        """Raw words -> words, as bash splits them: "$@" gives each argument, an unquoted
        expansion splits on blanks; None if any is unknown or a glob."""
        out: list[str] = []
        for raw in raws:
            if raw in _ALL_ARGS:
                if self.positional is None:
                    return None
                out.extend(self.positional)
                continue
            array = ARRAY_ALL_RE.match(raw)
            if array:  # "${DEPTHS[@]}": each element, for a `for` loop over an array
                held = self.lookup(array.group(1))
                items = array_items(held) if isinstance(held, str) else None
                if items is None:
                    return None
                out.extend(items)
                continue
            v = self.expand_raw(raw)
            if v is None:
                return None
            quoted = any(q in raw for q in "'\"\\")
            if not quoted and any(g in v for g in "*?["):
                return None
            if not quoted and "$" in raw:
                out.extend(v.split())
            else:
                out.append(v)
        return out

    def _words_known(self, raws: list[str]) -> list[str]:
        """Raw words with what is known expanded (split as bash would) and the rest left as written."""
        out: list[str] = []
        for raw in raws:
            words = self.expand_words([raw])
            out.extend(words if words is not None else [raw])
        return out

    # -- assignments ----------------------------------------------------------------------------
    def _assign(self, a: Any, raw: str, certain: bool) -> None:
        if a.exported:
            self.exported.add(a.name)
        if not certain:
            self.env[a.name] = UNKNOWN
            a.resolved = None
            a.undecided = True
            return
        v = a.resolved = self._expand_array(raw) if raw.startswith("(") else self.expand_raw(raw)  # X+=v: what it adds
        if a.append:  # the whole value is known only if the value before it is
            before = self.lookup(a.name)
            v = None if v is None or before is UNKNOWN else appended(before, v)
        self.env[a.name] = UNKNOWN if v is None else v

    def child_environ(self, include_all: bool) -> IncludeCall:
        env = dict(self.base)
        for name, val in self.env.items():
            if include_all or name in self.exported or name in self.base:
                if val is None:
                    env.pop(name, None)
                else:
                    env[name] = val
        return IncludeCall(env, self.complete, None)

    # -- walking --------------------------------------------------------------------------------
    def run(self, nodes: list, certain: bool = True) -> None:
        for i, node in enumerate(nodes):
            guard = self._guard(nodes, i) if certain and i else None  # `test && exit 1`, `test || { ...; }`
            if guard is None:
                self._node(node, certain)
                continue
            taken, why = guard
            if isinstance(node, Group):
                self._taken.append(why)
                try:
                    self._node(node, certain and taken is True)
                finally:
                    self._taken.pop()
            elif isinstance(node, Item) and node.cmd is None:  # `[ -n "$BS" ] && ARG="--device_batch_size=$BS"`
                if taken is False:
                    self._skip([node])
                else:
                    self._node(node, taken is True)
            else:
                self._node(node, certain)
            if taken is True and isinstance(node, Item) and node.cmd is not None and node.cmd.name == "exit":
                self._exit(node.cmd, why)

    def _guard(self, nodes: list, i: int) -> tuple[bool | None, str] | None:
        """For a node run only if the command before it succeeded (`&&`) or failed (`||`): whether it
        runs (None: cannot tell) and that command's text; None when it is not guarded that way."""
        node, prev = nodes[i], nodes[i - 1]
        first = node.cmd if isinstance(node, Item) else None
        if not isinstance(prev, Item) or prev.cmd is None or prev.cmd.op_after not in ("&&", "||"):
            return None
        if first is not None and first.op_before != prev.cmd.op_after:
            return None
        if prev.cmd.op_before in ("&&", "||", "|"):
            return None, prev.cmd.text.strip()  # a longer list: not decided here
        r = self.condition([prev])
        runs = None if r is None else (r if prev.cmd.op_after == "&&" else not r)
        return runs, prev.cmd.text.strip()

    def _required(self, where: tuple) -> None:
        """A `${X:?}` that stops bash, X unset here: the end of the walk, but in a runner the caller's environment
        decides, so it is noted and the walk goes on."""
        if not self.runner:
            self.exited = where
            raise _Exit()
        self.required_unset = self.required_unset or where

    def _exit(self, cmd: Any, why: str | None) -> None:
        self.exited = (cmd.line, cmd.file, " ".join(cmd.words), why)
        raise _Exit()

    def run_top(self, nodes: list) -> None:
        try:
            self.run(nodes, True)
        except (_Break, _Continue, _Exit):
            pass

    def _node(self, node: Any, certain: bool) -> None:
        if isinstance(node, Item):
            self._item(node, certain)
        elif isinstance(node, If):
            self._if(node, certain)
        elif isinstance(node, Loop):
            self._loop(node, certain)
        elif isinstance(node, Case):
            self._case(node, certain)
        elif isinstance(node, Func):
            self.functions.append(FunctionDef(node.name, node.line, self.file, node.body, certain))
            self._mark_live(node.body)
        elif isinstance(node, Group):
            if node.kind == "(" and node.body and isinstance(node.body[0], Group) and node.body[0].kind == "(":
                self._forget_names(node.body)  # (( arithmetic )): may assign anything it names
            self.run(node.body, certain and node.kind == "{")  # a subshell's assignments do not leak

    def _mark_live(self, nodes: list) -> None:
        for node in nodes:
            if isinstance(node, Item):
                if node.cmd is not None:
                    self.live.add(id(node.cmd))
                self.live.update(id(a) for a, _ in node.assigns)
            elif isinstance(node, If):
                for cond, body in node.branches:
                    self._mark_live(cond)
                    self._mark_live(body)
                self._mark_live(node.else_body or [])
            elif isinstance(node, Loop):
                self._mark_live(node.cond)
                self._mark_live(node.body)
            elif isinstance(node, Case):
                for _, body in node.arms:
                    self._mark_live(body)
            elif isinstance(node, (Group, Func)):
                self._mark_live(node.body)

    def _forget_names(self, nodes: list) -> None:
        for node in nodes:
            if isinstance(node, Item) and node.cmd is not None:
                for w in node.cmd.words:
                    for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", w):
                        self.env[name] = UNKNOWN
            elif isinstance(node, Group):
                self._forget_names(node.body)

    def _assigned_in(self, nodes: list, out: set) -> set:
        for node in nodes:
            if isinstance(node, Item):
                out.update(a.name for a, _ in node.assigns if not (node.cmd is not None and node.cmd.name == "local"))
                # (a function's shift and set -- move its own arguments, not the caller's variables)
                if node.cmd is not None and node.cmd.name in ("read", "getopts", "source", "."):
                    out.add("*")
            elif isinstance(node, If):
                for cond, body in node.branches:
                    self._assigned_in(cond, out)
                    self._assigned_in(body, out)
                self._assigned_in(node.else_body or [], out)
            elif isinstance(node, Loop):
                out.add(node.header[0] if node.header else "*")
                self._assigned_in(node.cond, out)
                self._assigned_in(node.body, out)
            elif isinstance(node, Case):
                for _, body in node.arms:
                    self._assigned_in(body, out)
            elif isinstance(node, (Group, Func)):
                self._assigned_in(node.body, out)
        return out

    def _forget_everything(self) -> None:
        # a sourced file may set anything, but what SLURM set for the job's own directives stays what it is
        kept = {k: v for k, v in self.base.items() if k in JOB_VARS and k not in self.env}
        self.env = {k: UNKNOWN for k in (set(self.env) | set(self.base)) - set(kept)}
        self.env.update(kept)
        self.complete = False

    def _item(self, node: Item, certain: bool) -> None:
        cmd = node.cmd
        if cmd is not None and self._loops:  # one run of a sweep: its words with this iteration's values
            runs = self.loop_words.setdefault(id(cmd), [])
            if len(runs) <= SWEEP_RUNS_MAX:  # one more than the most followed: "too many" (and bounded work)
                runs.append(self._words_known(cmd.raw_words) if certain else None)
        if cmd is not None and (cmd.op_before in ("&&", "||", "|") or cmd.op_after in ("&&", "||", "|")):
            certain = False  # `test && X=1`: may or may not happen
        for a, raw in node.assigns:
            self.live.add(id(a))
            if certain and cmd is None and (required := unset_required([raw], self.lookup)):
                # DEPTH="${DEPTH:?set DEPTH}": bash expands the value first, and stops the script there
                self._required((a.line, a.file, f"{a.name}={raw}", required))
            self._assign(a, raw, certain)
        if cmd is None:
            return
        self.live.add(id(cmd))
        name = cmd.name
        words = cmd.words
        if certain and not cmd.in_function and self.positional is not None and _ALL_ARGS.intersection(cmd.raw_words):
            self.args_at[id(cmd)] = list(self.positional)  # `torchrun --nproc_per_node=8 "$@"`: a launch's words
        if certain and name == "exit" and cmd.op_after != "|":  # on a path surely taken: the rest never runs
            self._exit(cmd, self._taken[-1] if self._taken else None)
        if certain and name == "exec" and len(words) > 1 and cmd.op_after != "|":  # the shell becomes that command
            self._exit(cmd, self._taken[-1] if self._taken else None)
        if certain and (required := unset_required(cmd.raw_words, self.lookup)):  # `: "${WANDB_RUN:?set it}"`
            self._required((cmd.line, cmd.file, " ".join(cmd.words), required))
        if self.include_args is not None:
            inc = self.include_args(cmd)
            if inc is not None:
                kind, raws = inc
                call = self.child_environ(include_all=kind == "source")
                for name, raw in cmd.env.items():  # `WANDB_RUN=speedrun bash run.sh`: in the child's environment
                    value = self.expand_raw(raw)
                    call.environ[name] = UNKNOWN if value is None else value
                call.positional = self.expand_words(raws) if (kind == "bash" or raws) else self.positional
                self.includes[id(cmd)] = call
        if name == "shift":
            n = words[1] if len(words) > 1 else "1"
            if certain and self.positional is not None and parse_count(n) is not None:
                self.positional = self.positional[parse_count(n) :]
            else:
                self.positional = None
        elif name == "set" and "--" in words:
            self.positional = self.expand_words(cmd.raw_words[cmd.raw_words.index("--") + 1 :]) if certain else None
        elif name == "unset":
            for w in words[1:]:
                if not w.startswith("-"):
                    self.env[w] = None if certain else UNKNOWN
        elif name in ("source", ".") and len(words) > 1 and (sets := known_sets(words[1])) is not None:
            for var in sets:  # a virtualenv's activate script, conda's hook: these and nothing else
                self.env[var] = UNKNOWN
        elif name in ("source", ".", "eval"):
            self._forget_everything()  # it may set anything
        elif name in NAME_SETTERS:
            for w in words[1:]:
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", w):
                    self.env[w] = UNKNOWN
        elif name in ("break", "continue") and certain and cmd.op_before in (None, ";"):
            raise _Break() if name == "break" else _Continue()
        elif any(f.name == name for f in self.functions):
            if certain and (required := self._required_by_call(cmd)):
                self._exit(cmd, required)
            # a call: whatever its body assigns (globals) is no longer known
            for f in self.functions:
                if f.name == name:
                    for var in self._assigned_in(f.body, set()):
                        if var == "*":
                            self._forget_everything()
                        else:
                            self.env[var] = UNKNOWN

    def _required_by_call(self, cmd: Any) -> str | None:
        """A call of a function that exits unless the variable its argument names is set, that variable surely
        unset or empty here (`require_env RUN_NAME`)."""
        for f in self.functions:
            if f.name == cmd.name and (n := required_argument(f.body)) and n < len(cmd.raw_words):
                var = self.expand_raw(cmd.raw_words[n])
                if var and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) and self.lookup(var) in (None, ""):
                    return f"{cmd.name} {var} (defined line {f.line}) exits unless ${var} is set"
        return None

    # -- conditions -----------------------------------------------------------------------------
    def _if(self, node: If, certain: bool) -> None:
        for i, (cond, body) in enumerate(node.branches):
            self.run(cond, certain)
            r = self.condition(cond)
            if r is True:
                said = " ".join(n.cmd.text.strip() for n in cond if isinstance(n, Item) and n.cmd)
                # the condition alone: a one-line `if [ $# -eq 0 ]; then echo usage; exit 1; fi` has it all on its line
                cond_text = re.sub(r"^(?:el)?if\s+|(?:;|\s)\s*then(?:\s.*)?$", "", said, flags=re.S)
                self._taken.append(cond_text + " is true")
                try:
                    self.run(body, certain)
                finally:
                    self._taken.pop()
                return
            if r is None:
                self.run(body, False)
                for cond2, body2 in node.branches[i + 1 :]:
                    self.run(cond2, False)
                    self.run(body2, False)
                self.run(node.else_body or [], False)
                return
            self._skip(body)
        if node.else_body is not None:
            self.run(node.else_body, certain)

    def _skip(self, nodes: list) -> None:
        for node in nodes:
            if isinstance(node, Item):
                if node.cmd is not None:
                    self.skipped_lines.add(node.cmd.line)
                for a, _ in node.assigns:
                    self.skipped_lines.add(a.line)

    # -- loops and case -------------------------------------------------------------------------
    def _loop(self, node: Loop, certain: bool) -> None:
        if node.kind in ("for", "select"):
            h = node.header
            var = h[0] if h and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", h[0]) else None
            if var is None:
                self.run(node.body, False)
                return
            if len(h) == 1 or (len(h) > 1 and h[1] != "in"):
                values = None if self.positional is None else list(self.positional)  # `for x; do` loops over "$@"
            else:
                values = self.expand_words(h[2:])
            over_budget = values is not None and self._walks + len(values) > MAX_BODY_WALKS
            if node.kind == "select" or values is None or len(values) > MAX_ITERATIONS or over_budget:
                self.env[var] = UNKNOWN
                self.run(node.body, False)
                self.env[var] = UNKNOWN
                return
            if not values:
                self._skip(node.body)
            self._loops += 1
            try:
                for v in values:
                    self._walks += 1
                    self.env[var] = v if certain else UNKNOWN
                    try:
                        self.run(node.body, certain)
                    except _Continue:
                        continue
                    except _Break:
                        break
            finally:
                self._loops -= 1
            return
        # while / until
        if not certain:
            self.run(node.cond, False)
            self.run(node.body, False)
            return
        for _ in range(MAX_ITERATIONS):
            self._walks += 1
            if self._walks > MAX_BODY_WALKS:
                break
            self.run(node.cond, True)
            r = self.condition(node.cond)
            if r is not None and node.kind == "until":
                r = not r
            if r is False:
                return
            if r is None:
                break
            try:
                self.run(node.body, True)
            except _Continue:
                continue
            except _Break:
                return
        self.positional = None
        self.run(node.body, False)
        self.run(node.cond, False)

    def _case(self, node: Case, certain: bool) -> None:
        word = self.expand_raw(node.header[0]) if node.header else None
        for i, (patterns, body) in enumerate(node.arms):
            r = None if word is None else self._match(word, patterns)
            if r is True:
                self.run(body, certain)
                return
            if r is None:
                for _, body2 in node.arms[i:]:
                    self.run(body2, False)
                return
            self._skip(body)
