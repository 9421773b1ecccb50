"""Static evaluation of a parsed batch script: which branches it takes, without running anything.

The parser (preflight/script.py) records a flat stream of events (keywords, case patterns,
function heads, simple commands with their assignments). ``build_tree`` turns it into blocks
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
from fnmatch import fnmatchcase
from typing import Any, Callable, Iterator


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
MAX_ITERATIONS = 64  # a loop that runs longer is walked once, uncertainly

# set by SLURM, the launcher or the shell when the job runs: never what preflight sees now
_RUNTIME_PREFIXES = ("SLURM_", "SLURMD_", "SBATCH_", "PMI_", "PMIX_", "OMPI_", "TORCHELASTIC_")
_RUNTIME_NAMES = {"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "HOSTNAME", "RANDOM",
                  "PWD", "OLDPWD", "SECONDS", "PPID", "BASHPID", "LINENO", "BASH_SOURCE", "FUNCNAME",
                  "LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "REPLY", "OPTARG", "OPTIND"}

_PARAM_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[#@*])(?:(:?[-=+])((?:[^{}]|\{[^{}]*\})*))?\}"
                       r"|([A-Za-z_][A-Za-z0-9_]*|[0-9#@*?$!-]))")
_ALL_ARGS = {'"$@"', "$@", '"${@}"', "${@}", "$*", "${*}"}


# -- the block tree ----------------------------------------------------------------------------
# plain classes, not dataclasses: this module is imported on every `preflight check` (start-up)
class Item:
    __slots__ = ("cmd", "assigns")

    def __init__(self, cmd: Any, assigns: list):
        self.cmd = cmd  # script.Command or None (a line of plain assignments)
        self.assigns = assigns  # [(script.Assignment, raw value as written)]


class If:
    __slots__ = ("branches", "else_body")

    def __init__(self, branches: list, else_body: list | None = None):
        self.branches = branches  # [[cond nodes, body nodes]]
        self.else_body = else_body


class Loop:
    __slots__ = ("kind", "header", "cond", "body")

    def __init__(self, kind: str, header: list):
        self.kind = kind  # for | select | while | until
        self.header = header  # raw words after `for`
        self.cond: list = []
        self.body: list = []


class Case:
    __slots__ = ("header", "arms")

    def __init__(self, header: list):
        self.header = header  # raw words after `case`: WORD in
        self.arms: list = []  # [(raw patterns, body nodes)]


class Group:
    __slots__ = ("kind", "body")

    def __init__(self, kind: str):
        self.kind = kind  # { or (
        self.body: list = []


class Func:
    __slots__ = ("name", "line", "body")

    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line
        self.body: list = []


class Malformed(Exception):
    pass


def iter_commands(nodes: list) -> Iterator[Any]:
    """The commands in a block tree (every branch, loop and group), in order."""
    for n in nodes:
        if isinstance(n, Item):
            if n.cmd is not None:
                yield n.cmd
        elif isinstance(n, If):
            for cond, body in n.branches:
                yield from iter_commands(cond)
                yield from iter_commands(body)
            yield from iter_commands(n.else_body or [])
        elif isinstance(n, Loop):
            yield from iter_commands(n.cond)
            yield from iter_commands(n.body)
        elif isinstance(n, Case):
            for _patterns, body in n.arms:
                yield from iter_commands(body)
        elif isinstance(n, (Group, Func)):
            yield from iter_commands(n.body)


_CLOSES = {"fi": If, "done": Loop, "esac": Case}


def build_tree(events: list) -> list:
    """Events -> nested nodes. Raises Malformed when keywords do not pair up."""
    root: list = []
    cur: list = root
    stack: list[tuple[Any, list]] = []  # (open node, the list to go back to)
    pending_fn: tuple[str, int] | None = None
    scratch: list = []

    def top(kind: type) -> Any:
        if not stack or not isinstance(stack[-1][0], kind):
            raise Malformed(f"unpaired keyword (expected an open {getattr(kind, '__name__', 'block')})")
        return stack[-1][0]

    for ev in events:
        kind = ev[0]
        if kind == "item":
            cur.append(Item(ev[1], ev[2]))
            pending_fn = None
            continue
        if kind == "fn":
            pending_fn = (ev[1], ev[2])
            continue
        if kind == "pattern":
            node = top(Case)
            node.arms.append((ev[1], []))
            cur = node.arms[-1][1]
            continue
        kw = ev[1]
        fn, pending_fn = pending_fn, None
        if kw == "if":
            node = If([[[], []]])
            cur.append(node)
            stack.append((node, cur))
            cur = node.branches[0][0]
        elif kw == "then":
            cur = top(If).branches[-1][1]
        elif kw == "elif":
            node = top(If)
            node.branches.append([[], []])
            cur = node.branches[-1][0]
        elif kw == "else":
            node = top(If)
            node.else_body = []
            cur = node.else_body
        elif kw in ("while", "until", "for", "select"):
            node = Loop(kw, list(ev[2] or []))
            cur.append(node)
            stack.append((node, cur))
            cur = node.cond if kw in ("while", "until") else scratch
        elif kw == "do":
            cur = top(Loop).body
        elif kw == "case":
            node = Case(list(ev[2] or []))
            cur.append(node)
            stack.append((node, cur))
            cur = scratch
        elif kw in ("{", "("):
            node = Func(fn[0], fn[1]) if fn else Group(kw)
            cur.append(node)
            stack.append((node, cur))
            cur = node.body
        elif kw in _CLOSES:
            top(_CLOSES[kw])
            cur = stack.pop()[1]
        elif kw in ("}", ")"):
            node = top((Func, Group))  # type: ignore[arg-type]
            if isinstance(node, Group) and node.kind != ("{" if kw == "}" else "("):
                raise Malformed(kw)
            cur = stack.pop()[1]
    if stack:
        raise Malformed("unclosed " + type(stack[-1][0]).__name__)
    return root


# -- evaluation --------------------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


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


class Evaluator:
    def __init__(self, environ: dict | None, positional: list[str] | None, *, complete: bool = True,
                 file: str = "", include_args: Callable[[Any], tuple[str, list[str]] | None] | None = None):
        self.base: dict = dict(environ or {})
        self.complete = environ is not None and complete
        self.env: dict[str, Any] = {}  # the script's own assignments so far (value, None: unset, UNKNOWN)
        self.exported: set[str] = set()
        self.positional = list(positional) if positional is not None else None
        self.file = file
        self.include_args = include_args
        self.live: set[int] = set()  # id() of the Commands / Assignments on a path that may run
        self.functions: list[FunctionDef] = []
        self.includes: dict[int, IncludeCall] = {}  # id(command) -> what the followed script sees
        self.skipped_lines: set[int] = set()

    # -- values ---------------------------------------------------------------------------------
    def lookup(self, name: str) -> Any:
        """A variable's value: str, None (unset) or UNKNOWN."""
        if name in self.env:
            return self.env[name]
        if name in self.base:
            return self.base[name]
        if not self.complete or name in _RUNTIME_NAMES or name.startswith(_RUNTIME_PREFIXES):
            return UNKNOWN
        return None

    def _param(self, name: str) -> Any:
        if name.isdigit():
            if name == "0":
                return UNKNOWN
            if self.positional is None:
                return UNKNOWN
            i = int(name) - 1
            return self.positional[i] if i < len(self.positional) else None
        if name == "#":
            return UNKNOWN if self.positional is None else str(len(self.positional))
        if name in ("@", "*"):
            return UNKNOWN if self.positional is None else " ".join(self.positional)
        if len(name) == 1 and not (name.isalpha() or name == "_"):
            return UNKNOWN  # $? $$ $! $-
        return self.lookup(name)

    def subst(self, text: str, _depth: int = 0) -> str | None:
        """Parameter expansion of unquoted/double-quoted text; None if anything is unknown."""
        if "$(" in text or "`" in text or _depth > 4:
            return None
        if "$" in _PARAM_RE.sub("", text):
            return None  # a form we do not evaluate: ${#X}, ${X%y}, ${A[0]}, $((..))
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
                    alt = self.subst(word, _depth + 1)
                    if alt is None:
                        unknown = True
                        return ""
                    return alt
            return val or ""

        out = _PARAM_RE.sub(one, text)
        return None if unknown else out

    def expand_raw(self, raw: str) -> str | None:
        """A word as written (with its quotes) -> its value after expansion and quote removal."""
        if "$(" in raw or "`" in raw:
            return None
        out: list[str] = []
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if c == "'":
                j = raw.find("'", i + 1)
                if j < 0:
                    return None
                out.append(raw[i + 1:j])
                i = j + 1
            elif c == '"':
                j = i + 1
                while j < n and raw[j] != '"':
                    j += 2 if raw[j] == "\\" else 1
                v = self.subst(re.sub(r'\\(["\\])', r"\1", raw[i + 1:j]))
                if v is None:
                    return None
                out.append(v)
                i = j + 1
            elif c == "\\":
                out.append(raw[i + 1:i + 2])
                i += 2
            else:
                j = i
                while j < n and raw[j] not in "'\"\\":
                    j += 1
                v = self.subst(raw[i:j])
                if v is None:
                    return None
                out.append(v)
                i = j
        return "".join(out)

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

    # -- assignments ----------------------------------------------------------------------------
    def _assign(self, a: Any, raw: str, certain: bool) -> None:
        if a.exported:
            self.exported.add(a.name)
        if not certain or "+=" in raw.split("=", 1)[0]:
            self.env[a.name] = UNKNOWN
            a.resolved = None
            return
        v = self.expand_raw(raw)
        self.env[a.name] = UNKNOWN if v is None else v
        a.resolved = v

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
        for node in nodes:
            self._node(node, certain)

    def run_top(self, nodes: list) -> None:
        try:
            self.run(nodes, True)
        except (_Break, _Continue):
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
                if node.cmd is not None and node.cmd.name in ("read", "getopts", "shift", "set", "source", "."):
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
        self.env = {k: UNKNOWN for k in set(self.env) | set(self.base)}
        self.complete = False

    def _item(self, node: Item, certain: bool) -> None:
        cmd = node.cmd
        if cmd is not None and (cmd.op_before in ("&&", "||", "|") or cmd.op_after in ("&&", "||", "|")):
            certain = False  # `test && X=1`: may or may not happen
        for a, raw in node.assigns:
            self.live.add(id(a))
            self._assign(a, raw, certain)
        if cmd is None:
            return
        self.live.add(id(cmd))
        name = cmd.name
        words = cmd.words
        if self.include_args is not None:
            inc = self.include_args(cmd)
            if inc is not None:
                kind, raws = inc
                call = self.child_environ(include_all=kind == "source")
                call.positional = self.expand_words(raws) if (kind == "bash" or raws) else self.positional
                self.includes[id(cmd)] = call
        if name == "shift":
            n = words[1] if len(words) > 1 else "1"
            if certain and self.positional is not None and n.isdigit():
                self.positional = self.positional[int(n):]
            else:
                self.positional = None
        elif name == "set" and "--" in words:
            self.positional = self.expand_words(cmd.raw_words[cmd.raw_words.index("--") + 1:]) if certain else None
        elif name == "unset":
            for w in words[1:]:
                if not w.startswith("-"):
                    self.env[w] = None if certain else UNKNOWN
        elif name in ("source", ".", "eval"):
            self._forget_everything()  # it may set anything
        elif name in ("read", "getopts", "mapfile", "readarray", "let", "printf"):
            for w in words[1:]:
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", w):
                    self.env[w] = UNKNOWN
        elif name in ("break", "continue") and certain and cmd.op_before in (None, ";"):
            raise _Break() if name == "break" else _Continue()
        elif any(f.name == name for f in self.functions):
            # a call: whatever its body assigns (globals) is no longer known
            for f in self.functions:
                if f.name == name:
                    for var in self._assigned_in(f.body, set()):
                        if var == "*":
                            self._forget_everything()
                        else:
                            self.env[var] = UNKNOWN

    # -- conditions -----------------------------------------------------------------------------
    def _if(self, node: If, certain: bool) -> None:
        for i, (cond, body) in enumerate(node.branches):
            self.run(cond, certain)
            r = self.condition(cond)
            if r is True:
                self.run(body, certain)
                return
            if r is None:
                self.run(body, False)
                for cond2, body2 in node.branches[i + 1:]:
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

    def condition(self, nodes: list) -> bool | None:
        """The exit status of a condition list as True/False, or None when it cannot be told."""
        val: bool | None = None
        first = True
        for node in nodes:
            if not isinstance(node, Item) or node.cmd is None:
                return None
            cmd = node.cmd
            r = self.test(cmd.raw_words)
            if cmd.negated and r is not None:
                r = not r
            if first or cmd.op_before in (None, ";"):
                val = r
            elif cmd.op_before == "&&":
                val = False if val is False else (r if val is True else (False if r is False else None))
            elif cmd.op_before == "||":
                val = True if val is True else (r if val is False else (True if r is True else None))
            else:
                return None
            first = False
        return val

    def test(self, raws: list[str]) -> bool | None:
        if not raws:
            return None
        head = raws[0]
        if head in ("true", ":") and len(raws) == 1:
            return True
        if head == "false" and len(raws) == 1:
            return False
        if head == "[" and raws[-1] == "]":
            args, double = raws[1:-1], False
        elif head == "[[" and raws[-1] == "]]":
            args, double = raws[1:-1], True
        elif head == "test":
            args, double = raws[1:], False
        else:
            return None
        negate = False
        if args and args[0] == "!":
            negate, args = True, args[1:]
        r = self._test_args(args, double)
        return (not r) if (negate and r is not None) else r

    def _test_args(self, args: list[str], double: bool) -> bool | None:
        if len(args) == 1:
            v = self.expand_raw(args[0])
            return None if v is None else v != ""
        if len(args) == 2 and args[0] in ("-z", "-n"):
            v = self.expand_raw(args[1])
            return None if v is None else ((v == "") == (args[0] == "-z"))
        if len(args) == 3:
            a, op, b = args
            left = self.expand_raw(a)
            right = self.expand_raw(b)
            if left is None or right is None:
                return None
            if op in ("=", "==", "!="):
                quoted = any(q in b for q in "'\"")
                if double and not quoted and any(g in right for g in "*?["):
                    same = fnmatchcase(left, right)
                else:
                    same = left == right
                return same if op != "!=" else not same
            if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
                try:
                    x, y = int(left.strip()), int(right.strip())
                except ValueError:
                    return None
                return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[op]
        return None

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
            if node.kind == "select" or values is None or len(values) > MAX_ITERATIONS:
                self.env[var] = UNKNOWN
                self.run(node.body, False)
                self.env[var] = UNKNOWN
                return
            if not values:
                self._skip(node.body)
            for v in values:
                self.env[var] = v if certain else UNKNOWN
                try:
                    self.run(node.body, certain)
                except _Continue:
                    continue
                except _Break:
                    break
            return
        # while / until
        if not certain:
            self.run(node.cond, False)
            self.run(node.body, False)
            return
        for _ in range(MAX_ITERATIONS):
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

    def _match(self, word: str, patterns: list[str]) -> bool | None:
        unknown = False
        for raw in patterns:
            pat = self.expand_raw(raw)
            if pat is None:
                unknown = True
                continue
            quoted = any(q in raw for q in "'\"\\")
            if (fnmatchcase(word, pat) if not quoted else word == pat):
                return True
        return None if unknown else False
