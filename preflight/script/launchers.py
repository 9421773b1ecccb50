"""Training launches in a parsed script: torchrun / python -m / srun invocations, their flags,
the wrappers in front of them, shell functions that launch their arguments, and exit checks."""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import replace
from typing import Any

from preflight.script.lexer import Unterminated, tokenize
from preflight.script.model import (
    ARRAY_ALL_RE,
    SWEEP_RUNS_MAX,
    Assignment,
    Command,
    Flag,
    Invocation,
    ScriptModel,
    array_items,
)
from preflight.script.tree import Item, Loop, iter_commands
from preflight.script.wrappers import MAX_INLINE_DEPTH, RUNNERS, inline_commands, inline_text, strip_prefixes
from preflight.units import parse_count

_PY_RE = re.compile(r"^(?:python(?:\d+(?:\.\d+)?)?|pypy3?)$")


_TORCHRUN_NO_VALUE = {"standalone", "no_python", "no-python", "run_path", "run-path", "module", "m"}


# the script's own arguments passed on ("$@"), unknown before it runs: words of their own, never a flag's value
_SCRIPT_ARGS = frozenset({"$@", "${@}", "$*", "${*}"})


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
            elif i + 1 < len(args) and args[i + 1] in _SCRIPT_ARGS:
                flags.append(Flag(key, None, "bare", a, after))
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
            elif i + 1 < len(args) and not args[i + 1].startswith("-") and args[i + 1] not in _SCRIPT_ARGS:
                flags.append(Flag(a[1], args[i + 1], "short", f"{a} {args[i + 1]}", after))
                i += 1
            else:
                flags.append(Flag(a[1], None, "short", a, after))
        else:
            flags.append(Flag(None, a, "positional", a, after))
        i += 1
    return flags


def parse_invocation(cmd: Command, words: list[str] | None = None) -> Invocation | None:
    """cmd as a python/torchrun invocation; ``words``: its words after expansion (default: as written)."""
    prefix = strip_prefixes(list(cmd.words if words is None else words))
    words, srun, srun_opts = prefix.words, prefix.srun, prefix.srun_opts
    if not words:
        return None
    head = os.path.basename(words[0])
    launcher_opts: list[str] = []
    nproc = nnodes = None
    standalone = False
    module = script_file = None
    args: list[str] = []
    launcher = None
    if head == "torchrun" or (
        _PY_RE.match(head)
        and len(words) > 2
        and words[1] == "-m"
        and words[2] in ("torch.distributed.run", "torch.distributed.launch")
    ):
        launcher = "torchrun"
        j = 1 if head == "torchrun" else 3
        while j < len(words):
            w = words[j]
            if w == "--":  # the end of torchrun's options: what follows is the script and its arguments,
                rest = words[j + 1 :]  # and `-- -m X` runs `python -u -m X` (torchrun passes "-m" on as the script)
                if len(rest) > 1 and rest[0] == "-m":
                    module, args = rest[1], rest[2:]
                elif rest:
                    script_file, args = rest[0], rest[1:]
                break
            if w in ("-m", "--module"):
                if j + 1 < len(words):
                    module = words[j + 1]
                    args = words[j + 2 :]
                j = len(words)
                break
            if not w.startswith("-"):
                script_file = w
                args = words[j + 1 :]
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
                args = words[j + 2 :]
                break
            if w.startswith("-m") and len(w) > 2:
                module = w[2:]
                args = words[j + 1 :]
                break
            if w == "-c":
                return None
            if w in ("-X", "-W") and j + 1 < len(words):
                j += 2
                continue
            if not w.startswith("-"):
                script_file = w
                args = words[j + 1 :]
                break
            j += 1
        if module is None and script_file is None:
            return None
    else:
        return None
    if srun:
        launcher = "srun+" + launcher
    return Invocation(
        line=cmd.line,
        launcher=launcher,
        module=module,
        script_file=script_file,
        flags=parse_flags(args),
        args=args,
        nproc_per_node=nproc,
        nnodes=nnodes,
        standalone=standalone,
        srun=srun,
        background=cmd.background,
        checked=False,
        command=cmd,
        launcher_opts=launcher_opts + srun_opts,
        timeout=prefix.timeout,
        prefixes=list(prefix.names),
        srun_opts=list(srun_opts),
    )


def find_invocations(model: ScriptModel) -> None:
    cmds = model.commands
    wrappers = _find_wrappers(model)
    templates = {id(w.command) for _, w in wrappers if w is not None}
    loops = _loop_values(model)
    for idx, cmd in enumerate(cmds):
        if id(cmd) in templates:
            continue  # the launcher inside a wrapper function: its calls are the invocations
        checked = _has_exit_check(cmds, idx)
        misread = None if checked else _misread_exit_check(cmds, idx)
        for one in _per_loop_value(cmd, loops.get(id(cmd)), _MAX_LOOP_VALUES):
            if one is not cmd:
                model.loop_origin[id(one)] = cmd
            for inv in _launches(model, wrappers, one, 0):
                inv.checked = inv.checked or checked
                inv.misread_check = None if inv.checked else misread
                model.invocations.append(inv)


def launches_of(model: ScriptModel, cmd: Command) -> list[Invocation]:
    """What one command launches, through the script's wrapper functions and shell text as well (`run_step torchrun
    ...`): for commands outside ``model.commands``, such as those after an exit."""
    return _launches(model, _find_wrappers(model), cmd, 0)


Loops = list[tuple[str, list[str]]]  # the `for` loops around a command, outermost first: (variable, values)


def _loop_values(model: ScriptModel) -> dict[int, Loops]:
    """id(command) -> the loops around it whose lists are known before the job runs (`for phase in base mid
    sft`, `for d in $DEPTHS` with DEPTHS set, `for d in "${DEPTHS[@]}"` with DEPTHS=(12 16 20))."""
    out: dict[int, Loops] = {}

    def walk(nodes: list, outer: Loops) -> None:
        for n in nodes:
            loops = outer
            if isinstance(n, Loop) and n.kind == "for" and len(n.header) > 2 and n.header[1] == "in":
                values = _loop_list(model, n.header[2:])
                if values and len(values) <= _MAX_LOOP_VALUES:
                    loops = [*outer, (n.header[0], values)]
                    for c in iter_commands(n.body):
                        out[id(c)] = loops  # an inner loop's walk below overrides this with its own, longer list
            for child in (getattr(n, "body", None), getattr(n, "cond", None), getattr(n, "else_body", None)):
                if isinstance(child, list):
                    walk(child, loops)
            for pair in getattr(n, "branches", None) or getattr(n, "arms", None) or []:
                walk(pair[1], loops)

    walk(model.tree, [])
    return out


def _loop_list(model: ScriptModel, words: list[str]) -> list[str] | None:
    values: list[str] = []
    for raw in words:
        array = ARRAY_ALL_RE.match(raw)
        if array:
            items = array_items(model.value_at(array.group(1), None, None, model.environ))
            if items is None:
                return None
            values.extend(items)
            continue
        text = raw.strip("'\"") if "$" not in raw else model.expand(raw.strip('"'), None, None, model.environ)
        if text is None or any(ch in text for ch in "*?[`$"):
            return None
        values.extend(text.split())
    return values


def _per_loop_value(cmd: Command, loops: Loops | None, cap: int) -> list[Command]:
    """The command once, or once per combination of the values of the loops whose variables it uses (at most
    cap combinations: a larger sweep is read once)."""
    refs = []
    for var, values in loops or []:
        ref = re.compile(rf"\$(?:\{{{var}\}}|{var}\b)")
        if any(ref.search(r) for r in cmd.raw_words):
            refs.append((ref, values))
    if not refs or math.prod(len(v) for _, v in refs) > cap:
        return [cmd]
    out = []
    for combo in itertools.product(*(values for _, values in refs)):
        words, raws = list(cmd.words), list(cmd.raw_words)
        for (ref, _), value in zip(refs, combo, strict=True):
            words = [ref.sub(lambda _m, v=value: v, w) for w in words]
            raws = [ref.sub(lambda _m, v=value: v, r) for r in raws]
        out.append(replace(cmd, words=words, raw_words=raws))
    return out


def sweep_runs(model: ScriptModel, cmd: Command, cap: int = SWEEP_RUNS_MAX) -> list[Invocation]:
    """Every run one launch command makes inside `for` loops over known lists (a depth sweep, a scaling-law
    grid), up to cap runs: with each iteration's words as the evaluation decided them (`if [ $d -ge 22 ]`
    taken or not), else by substituting the loop values; [] where it is in no such loop."""
    cmd = model.loop_origin.get(id(cmd), cmd)
    iterations = model.loop_words.get(id(cmd)) or []
    if 1 < len(iterations) <= cap and all(words for words in iterations):
        commands = [replace(cmd, words=list(words), raw_words=list(words)) for words in iterations]
    else:
        commands = _per_loop_value(cmd, _loop_values(model).get(id(cmd)), cap)
    if len(commands) <= 1:
        return []
    wrappers = _find_wrappers(model)
    return [run for one in commands for run in _launches(model, wrappers, one, 0)]


_MAX_LOOP_VALUES = 16  # a longer list is a sweep, not a pipeline: its commands are read once
# a command whose program is only known at run time: `$LAUNCH ...`, `"${CMD[@]}"`, `$(...)`
_DYNAMIC_HEAD_RE = re.compile(r"^[\"']?(\$|`)")


# `python -c "exec(open('scripts/base_train.py').read().replace(...))"`, runpy.run_path / run_module of an entry point
_EXEC_ENTRY_RE = re.compile(
    r"""(?:\bopen|\brun_path)\(\s*['"](/?(?:[\w.-]+/)*(?:scripts|nanochat)/\w+\.py)['"]"""
    r"""|\brun_module\(\s*['"]((?:scripts|nanochat)\.\w+)['"]"""
)


def _exec_of_entry(words: list[str]) -> str | None:
    """Why a `python -c` launch is hidden: its code runs an entry point's source itself (exec of the file, runpy)."""
    if len(words) < 3 or not _PY_RE.match(os.path.basename(words[0])) or "-c" not in words[1:-1]:
        return None
    m = _EXEC_ENTRY_RE.search(words[words.index("-c", 1) + 1])
    if m is None:
        return None
    return f"`python -c` runs {m.group(1) or m.group(2)} through its own code (exec/runpy), with changes preflight does not follow"


def _launches(model: ScriptModel, wrappers: list, cmd: Command, depth: int) -> list[Invocation]:
    """The invocations one command makes: itself, through a shell function that launches its
    arguments, or through shell text it runs (`srun bash -lc '...'`, `eval "$CMD"`)."""
    words = _expand_words(model, [(v, r) for v, r in zip(cmd.words, cmd.raw_words, strict=False)], cmd)
    via, wrapper = None, None
    if words:
        wrapper = _wrapper_for(wrappers, words[0], cmd)
        if wrapper is not None:
            words = _expand_words(model, wrapper.apply(words[1:]), cmd)
            via = f"{wrapper.name} (defined line {wrapper.line})"
    head = os.path.basename(words[0]) if words else ""
    if not (head in RUNNERS or _PY_RE.match(head) or head[:1] in "$`\"'"):
        return []  # echo, mkdir, cd ...: most lines of a script
    if (hidden := _exec_of_entry(strip_prefixes(words).words)) is not None:
        model.hidden.append((cmd.line, cmd.file, hidden))
        return []
    inv = parse_invocation(cmd, words)
    if inv is not None:
        inv.via = via
        inv.template = wrapper.command if wrapper is not None else None
        inv.checked = bool(wrapper is not None and wrapper.checked)
        return [inv]
    prefix = strip_prefixes(words)
    if prefix.words and (branches := _branch_launches(model, cmd, words)):
        return branches
    if prefix.words and _DYNAMIC_HEAD_RE.match(prefix.words[0]):
        model.hidden.append((cmd.line, cmd.file, f"the command is {prefix.words[0]}, known only when the job runs"))
        return []
    inline = inline_text(prefix.words)
    if inline is None:
        return []
    how, text = inline
    if how == "eval":
        text = _expand_eval_text(model, cmd, prefix.words[1:])
    if text is None or depth >= MAX_INLINE_DEPTH:
        why = "its text is known only when the job runs" if text is None else "shell text nested too deep"
        model.hidden.append((cmd.line, cmd.file, f"`{how}` runs shell text: {why}"))
        return []
    parsed = inline_commands(text, cmd)
    if parsed is None:
        model.hidden.append((cmd.line, cmd.file, f"`{how}` runs shell text that cannot be parsed"))
        return []
    inner, scratch = parsed
    if depth == 0:  # what the text sets, the launches in it see (`export NANOCHAT_BASE_DIR=...; torchrun ...`)
        known = {(a.file, a.line, a.name, a.value) for a in model.assignments if a.inline}
        for a in scratch.assignments:
            if (a.file, a.line, a.name, a.value) not in known:  # a function's text, once for all its calls
                a.inline, a.unconditional = True, False
                model.assignments.append(a)
    found: list[Invocation] = []
    for j, ic in enumerate(inner):
        for inv in _launches(model, wrappers, ic, depth + 1):
            if prefix.srun and not inv.srun:
                inv.srun, inv.launcher = True, "srun+" + inv.launcher
            inv.launcher_opts = inv.launcher_opts + prefix.srun_opts
            inv.srun_opts = inv.srun_opts + prefix.srun_opts
            inv.timeout = inv.timeout or prefix.timeout
            inv.prefixes = prefix.names + [how] + inv.prefixes
            inv.background = inv.background or cmd.background
            inv.checked = inv.checked or _has_exit_check(inner, j) or (scratch.errexit and j < len(inner) - 1)
            inv.via = inv.via or f"{how} (line {cmd.line})"
            if inv.inline_cd is None:
                cds = [c for c in inner[:j] if c.name in ("cd", "pushd") and len(c.words) > 1 and not c.in_function]
                inv.inline_cd = cds[-1].words[-1] if cds and not cds[-1].depth else None
            found.append(inv)
    return found


def _branch_launches(model: ScriptModel, cmd: Command, words: list[str]) -> list[Invocation]:
    """`$LAUNCH scripts.base_train ...` where the script sets LAUNCH in branches decided at run time
    (`if [ "$NUM_GPUS" -gt 1 ]; then LAUNCH="torchrun ... -m"; else LAUNCH="python -m"; fi`): the launch of the first
    branch, the others as its alternatives; none unless every assignment before it gives a known launch."""
    m = _PURE_VAR_RE.match(words[0].strip('"'))
    name = re.sub(r"[${}\"]|:?[-=+].*", "", m.group(0)) if m else None
    sets = [a for a in model.assignments if a.name == name and a.file == cmd.file and a.line < cmd.line]
    if not sets or len(sets) > _MAX_BRANCHES or any(a.append or a.prefix or a.inline for a in sets):
        return []
    found: list[tuple[Assignment, Invocation]] = []
    for a in sets:
        # what is known expands; the rest stays as written (`--nproc_per_node=$NUM_GPUS`), but not the program
        value = (model.expand(a.value, a.line, a.file, model.environ) or a.value).split()
        inv = parse_invocation(cmd, value + words[1:]) if value and "$" not in value[0] else None
        if inv is None:
            return []
        found.append((a, inv))
    first = found[0][1]
    first.alternatives = [(a, inv) for a, inv in found[1:] if inv.launcher != first.launcher or inv.args != first.args]
    return [first]


_MAX_BRANCHES = 4


def _expand_eval_text(model: ScriptModel, cmd: Command, words: list[str]) -> str | None:
    """eval's words, expanded (it joins them with blanks and runs the result); None if unknown."""
    out = []
    for k, w in enumerate(words):
        if "$" in w or "`" in w:
            value = model.expand(w, cmd.line, cmd.file, model.environ)
            if value is None and (k == 0 or _PURE_VAR_RE.match(w) or "$(" in w or "`" in w):
                return None  # the command itself, or a whole word of it, is known only at run time
            w = w if value is None else value  # `--run=$WANDB_RUN`: eval expands it later, as text here
        out.append(w)
    return " ".join(out)


# an argument that is exactly one parameter expansion: $X, ${X}, ${X:-default}, "$X" ...
_PURE_VAR_RE = re.compile(r"^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*(?::?[-=+][^{}]*)?\})$")


def _expand_words(model: ScriptModel, pairs: list[tuple[str, str | None]], cmd: Command) -> list[str]:
    """(value, raw) -> words, expanding what bash would: a variable head (`$PYTHON -m ...`,
    `"${PY}"`) and unquoted variable arguments, split into words (`$BASE` holding
    `--depth=2 --max_seq_len=256`) or gone (empty). Quoted arguments and words with text
    around the variable (`--run=$WANDB_RUN`) stay as written (checks expand them where
    they need the value). raw None: the value is final."""
    out: list[str] = []
    passed = model.args_at.get(id(cmd))  # the script's own arguments, where it passes them on and they are known
    for k, (value, raw) in enumerate(pairs):
        if raw is None or "$" not in raw:
            out.append(value)
            continue
        if passed is not None and raw.strip('"') in _SCRIPT_ARGS:
            out.extend(passed)  # `preflight check job.sh -- -m scripts.base_train --depth=12`: as bash splits them
            continue
        array = _ARRAY_ALL_RE.match(raw)
        if array:
            words = _array_words(model, array.group(1), cmd)
            out.extend([value] if words is None else words)
            continue
        quoted = len(raw) > 1 and raw[0] == raw[-1] == '"'
        inner = raw[1:-1] if quoted else raw
        if not _PURE_VAR_RE.match(inner) or (quoted and k > 0):
            out.append(value)
            continue
        val = model.expand(inner, cmd.line, cmd.file, model.environ)
        # a value may hold a variable set at run time (`torchrun ... --rdzv_endpoint=$MASTER_ADDR:29500`):
        # its words are still known; a value that is itself only a variable is not
        if val is None or val.lstrip().startswith(("$", "`")):
            out.append(value)
        elif quoted:
            out.append(val)
        else:
            out.extend(val.split())  # bash's word splitting (default IFS); an empty value is no word
    return out


_ARRAY_ALL_RE = re.compile(r'^"?\$\{([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]\}"?$')


def _array_words(model: ScriptModel, name: str, cmd: Command) -> list[str] | None:
    """The elements of a known array (`LAUNCHER=(torchrun --nproc_per_node=8)`), expanded."""
    value = model.value_at(name, cmd.line, cmd.file, model.environ)
    if not value or not (value.startswith("(") and value.endswith(")")):
        return None
    try:
        tokens, _ = tokenize(value[1:-1])
    except Unterminated:
        return None
    return [t.value for kind, t in tokens if kind == "word"]


class _Wrapper:
    """A shell function that launches its first argument: `launch() { local mod=$1; shift;
    torchrun ... -m "$mod" -- "$@"; }` (or a fixed module with "$@")."""

    def __init__(self, name: str, line: int, file: str, command: Command, aliases: dict[str, int], shift: int):
        self.name, self.line, self.file = name, line, file
        self.command = command  # the launcher command inside the body
        self.aliases = aliases  # local name -> index of the call argument it holds
        self.shift = shift  # arguments shifted away before the launcher runs
        self.checked = False  # the launcher in the body is followed by an exit check (`"$@" || exit 1`)

    def apply(self, args: list[str]) -> list[tuple[str, str | None]]:
        """The launcher's words for a call with these (expanded) arguments."""
        out: list[tuple[str, str | None]] = []
        for value, raw in zip(self.command.words, self.command.raw_words, strict=False):
            ref = _positional_ref(raw, self.aliases, self.shift)
            if ref == "all":
                out.extend((a, None) for a in args[self.shift :])
            elif isinstance(ref, int):
                arg = args[ref] if ref < len(args) else ""
                if raw.startswith('"'):
                    out.append((arg, None))
                else:  # unquoted: split into words, and an empty value is no word at all
                    out.extend((w, None) for w in arg.split())
            elif raw.startswith("'") or not self._refers(raw):
                out.append((value, raw))
            else:  # `"torchrun -m $1"` (shell text a function runs): the call's arguments, in place
                out.append((_EMBEDDED_REF_RE.sub(lambda m: self._arg(m, args), value), None))
        return out

    def _refers(self, raw: str) -> bool:
        return any(
            m.group(1) or m.group(2) or m.group(3) or (m.group(4) or m.group(5)) in self.aliases
            for m in _EMBEDDED_REF_RE.finditer(raw)
        )

    def _arg(self, m: re.Match, args: list[str]) -> str:
        digit = m.group(1) or m.group(2)
        if digit:
            k = self.shift + int(digit) - 1
            return args[k] if k < len(args) else ""
        if m.group(3):
            return " ".join(args[self.shift :])
        k = self.aliases.get(m.group(4) or m.group(5) or "")
        return m.group(0) if k is None else (args[k] if k < len(args) else "")


# a positional parameter (or a local alias of one) inside a longer word
_EMBEDDED_REF_RE = re.compile(
    r"\$(?:([1-9])|\{([1-9])\}|(\{?[@*]\}?)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})"
)


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
                if parse_count(n) is None:
                    break
                shift += parse_count(n)
                continue
            refs = [_positional_ref(r, aliases, shift) for r in cmd.raw_words]
            wrapper = _Wrapper(fn.name, fn.line, fn.file, cmd, aliases, shift)
            if _runs_text_with_args(cmd, aliases):  # `srun bash -c "torchrun ... -m $1"`
                found[-1] = (fn, wrapper)
                break
            if not (any(r is not None for r in refs) or any(wrapper._refers(r) for r in cmd.raw_words[1:])):
                continue
            if refs[0] == "all":  # `run_step() { echo ...; "$@" || exit 1; }`: it runs its arguments
                found[-1] = (fn, wrapper)
                break
            # a launch built from the call's arguments: its module, all of them, or some (`--depth=$1`,
            # `--run="$tag"` with `local tag=$1`): each call is an invocation of its own
            words = _expand_words(model, [(v, r) for v, r in zip(cmd.words, cmd.raw_words, strict=False)], cmd)
            if parse_invocation(cmd, words) is not None:
                found[-1] = (fn, wrapper)
                break
    for _fn, w in found:
        if w is not None:
            idx = next((k for k, c in enumerate(model.commands) if c is w.command), None)
            w.checked = idx is not None and _has_exit_check(model.commands, idx)
    return found


def _runs_text_with_args(cmd: Command, aliases: dict[str, int]) -> bool:
    """Whether cmd runs shell text built from the function's arguments (`bash -c "... $1"`)."""
    inline = inline_text(strip_prefixes(list(cmd.words)).words)
    if inline is None or inline[0] == "eval":
        return False
    raw = next((r for r in cmd.raw_words if r.endswith(inline[1][-1:]) and inline[1][:8] in r), "")
    if raw.startswith("'"):
        return False  # single quotes: the inner shell's own $1, not the function's
    for m in _EMBEDDED_REF_RE.finditer(inline[1]):
        if m.group(1) or m.group(2) or m.group(3) or (m.group(4) or m.group(5)) in aliases:
            return True
    return False


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
        for nxt in cmds[idx + 1 : idx + 6]:
            if nxt.line > cmd.end_line + 3:
                break
            if nxt.name in ("exit", "return", "false") or any(w in ("exit", "return") for w in nxt.words):
                return True
            if nxt.op_after not in (";", "&&", None) and nxt.name not in ("echo", "printf", ">&2"):
                break
    end = idx
    while end + 1 < len(cmds) and cmds[end].op_after == "|":
        end += 1  # `"$@" 2>&1 | tee -a "$LOG"`: the check reads the pipeline's statuses after its last member
    if end + 1 < len(cmds):
        nxt = cmds[end + 1]
        joined = " ".join(nxt.raw_words)
        if "PIPESTATUS" in joined or (end == idx and ("$?" in joined or "${?}" in joined)):
            return True
    return False


def _misread_exit_check(cmds: list[Command], idx: int) -> tuple[Command, Command] | None:
    """A `$?` test a few plain commands after a launch (`torchrun ...; echo "base done"; if [ $? -ne 0 ]`): it
    reads the status of the command just before it, which succeeds whatever the launch did."""
    cmd = cmds[idx]
    if cmd.op_after not in (";", None) or cmd.in_condition:
        return None
    for j in range(idx + 1, min(idx + 4, len(cmds))):
        nxt = cmds[j]
        # the test may be an `if`'s condition, one level in
        if nxt.line > cmd.end_line + 6 or nxt.depth - (1 if nxt.in_condition else 0) != cmd.depth:
            return None
        joined = " ".join(nxt.raw_words)
        if "PIPESTATUS" in joined:
            return None
        if "$?" in joined or "${?}" in joined:
            before = cmds[j - 1]
            return (nxt, before) if j > idx + 1 else None
        if nxt.op_after not in (";", None) or nxt.name not in ("echo", "printf", "date", "sleep", "cp", "mv", "touch"):
            return None
    return None
