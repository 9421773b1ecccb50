"""Training launches in a parsed script: torchrun / python -m / srun invocations, their flags,
the wrappers in front of them, shell functions that launch their arguments, and exit checks."""

from __future__ import annotations

import os
import re
from typing import Any

from preflight.script.model import ASSIGN_RE, Command, Flag, Invocation, ScriptModel
from preflight.script.tree import Item

_PY_RE = re.compile(r"^(?:python(?:\d+(?:\.\d+)?)?|pypy3?)$")


_TORCHRUN_NO_VALUE = {"standalone", "no_python", "no-python", "run_path", "run-path", "module", "m"}
_SRUN_VALUE_SHORT = set("nNcGptoeJwCdDABqmx")


def strip_wrappers(words: list[str]) -> tuple[list[str], bool, list[str]]:
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
            while j < len(words) and (words[j].startswith("-") or ASSIGN_RE.match(words[j])):
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


def parse_invocation(cmd: Command, words: list[str] | None = None) -> Invocation | None:
    """cmd as a python/torchrun invocation; ``words``: its words after expansion (default: as written)."""
    words, srun, srun_opts = strip_wrappers(list(cmd.words if words is None else words))
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


def find_invocations(model: ScriptModel) -> None:
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
        inv = parse_invocation(cmd, words)
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
            inv = parse_invocation(cmd, words)
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
