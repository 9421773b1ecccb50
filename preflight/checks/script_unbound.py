"""Variables a ``set -u`` script expands that nothing sets: bash stops at the first one."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.model import Finding, Severity
from preflight.registry import check
from preflight.script.runvars import NAME_SETTERS, set_at_run_time
from preflight.script.sourced import known_sets
from preflight.script.tree import Item, Loop, iter_nodes

# $X, ${X}, ${#X}, ${X#p}, ${X:0:3}: an error under set -u when X is unset; ${X:-d}, ${X-d}, ${X:=d}, ${X+a},
# ${X:?m} are not (the guard decides); ${!X} (indirect) is not read here
_REF_RE = re.compile(
    r"\$(?:\{(?P<len>#)?(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<sub>\[[^\]]*\])?(?P<op>[^}]*)\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_GUARD_RE = re.compile(r":?[-=+?]")
# commands after which any variable may be set: an unread script, eval, environment modules, conda/spack
_OPAQUE = ("eval", "module", "ml", "spack")
_ACTIVATES = ("conda", "mamba", "micromamba")
# commands that set or declare the names they take (`read X`, `printf -v X`, `declare X`)
_SETTERS = (*NAME_SETTERS, "local", "declare", "typeset", "export", "readonly")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOUNSET_RE = re.compile(r"^[-+][a-zA-Z]*u[a-zA-Z]*$")
_NEVER = 10**9  # a line after every line
_SHOWN = 50  # findings, one per variable; the rest are counted
_SPECIAL_RE = re.compile(r"[\\'\"$]")


def unguarded_refs(raw: str) -> Iterator[str]:
    """The variables a raw shell word expands with no default or guard, outside single quotes."""
    i, n, in_double = 0, len(raw), False
    while i < n:
        special = _SPECIAL_RE.search(raw, i)  # skip plain text at C speed
        if special is None:
            return
        i = special.start()
        ch = raw[i]
        if ch == "\\":
            i += 2
        elif ch == "'" and not in_double:
            end = raw.find("'", i + 1)
            i = n if end < 0 else end + 1
        elif ch == '"':
            in_double = not in_double
            i += 1
        elif ch == "$" and (m := _REF_RE.match(raw, i)):
            guarded = m.group("braced") and not m.group("len") and _GUARD_RE.match(m.group("op"))
            whole_array = m.group("sub") in ("[@]", "[*]")  # an empty array's "${A[@]}": bash versions differ
            if not guarded and not whole_array:
                yield m.group("braced") or m.group("plain")
            i = m.end()
        else:
            i += 1


_REQUIRED_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


def _nounset_lines(model) -> tuple[int, int] | None:
    """(from, to): the lines of the script's own file that run under ``set -u`` (to: a later ``set +u``)."""
    on = 1 if model.shebang and re.search(r"\s-[a-zA-Z]*u", model.shebang) else None
    off = None
    for c in model.commands:
        if c.name != "set" or c.file != model.file_of() or c.in_function:
            continue
        words = c.words[1 : c.words.index("--")] if "--" in c.words else c.words[1:]  # `set -- -u`: arguments
        flags = [w for w in words if _NOUNSET_RE.match(w)]
        flags += [
            f"{w[0]}u" for w, nxt in zip(words, words[1:], strict=False) if w in ("-o", "+o") and nxt == "nounset"
        ]
        for f in flags:
            if f.startswith("-") and on is None and not c.conditional:
                on = c.line
            elif f.startswith("+") and on is not None and off is None:
                off = c.line
    return (on, off or _NEVER) if on is not None else None


def _opaque_from(script, lowercase: bool = False) -> int:
    """The first line of the script's own file after which a variable may be set where preflight cannot see.
    ``lowercase``: for a lower-case name, which environment modules and conda activations do not set (they
    export environment variables, upper-case by convention); eval and an unread script still may."""
    children = {str(child.path): child for child in script.includes}
    followed = {line: children[p] for p, line in script.include_lines.items() if p in children}
    first = _NEVER
    for c in script.commands:
        if c.file != script.file_of():
            continue
        opaque = (c.name in _OPAQUE or (c.name in _ACTIVATES and "activate" in c.words[1:2])) and not (
            lowercase and c.name != "eval"
        )
        if c.name in ("source", "."):
            child = followed.get(c.line)
            if child is not None:  # read here: opaque only if it runs something that is not
                opaque = _opaque_from(child, lowercase) < _NEVER
            else:
                opaque = len(c.words) < 2 or known_sets(c.words[1]) is None
        if opaque:
            first = min(first, c.line)
    return first


def _assigned_names(script) -> set[str]:
    names = {a.name for a in script.all_assignments}
    for m in script.walk():
        for c in m.commands:
            if c.name in _SETTERS:
                names.update(w.split("=", 1)[0] for w in c.words[1:] if _NAME_RE.fullmatch(w.split("=", 1)[0]))
            if c.name in ("source", ".") and len(c.words) > 1 and (sets := known_sets(c.words[1])):
                names.update(sets)
        for node, _func in iter_nodes(m.tree or []):
            if isinstance(node, Loop) and node.kind in ("for", "select") and node.header:
                names.add(node.header[0])
    return names


def _references(model, live: set[int]) -> list[tuple[int, str, object]]:
    """(line, variable, the function around it or None) for each unguarded expansion of the script's own file on
    a path that may run, in line order."""
    found = []
    for node, func in iter_nodes(model.tree or []):
        if not isinstance(node, Item):
            continue
        cmd = node.cmd
        if cmd is not None and id(cmd) in live and cmd.file == model.file_of():
            raws = list(cmd.raw_words) + [target for _op, target in cmd.redirects]
            found += [(cmd.line, name, func) for raw in raws for name in unguarded_refs(raw)]
        for a, raw in node.assigns:
            if id(a) in live and a.file == model.file_of():
                found += [(a.line, name, func) for name in unguarded_refs(raw)]
    return sorted(found, key=lambda f: f[0])


@check("SB035", "unbound-variable", severity="error")
def unbound_variable(ctx, script, job_env) -> Iterator[Finding]:
    """
    What it checks: under ``set -u`` (``set -euo pipefail``, ``set -o nounset``, ``#!/bin/bash -u``),
    a variable the script expands without a default (``$X``, ``${X}``, not ``${X:-...}``) that
    nothing sets: no line of the script (or of a script it sources that preflight reads), not
    the environment the job starts with (the submitting shell's, as sbatch's ``--export``
    passes it), not SLURM or the launcher at run time. Lines after a ``source`` of a file
    preflight cannot read, ``eval``, ``module load`` or ``conda activate`` are not judged.

    Why it matters: bash stops the script at that line with ``X: unbound variable``, before
    any training: a multi-node script that expects its caller to export
    ``NANOCHAT_BASE_DIR`` dies at its first line that uses it.

    Without ``set -u`` the variable expands to nothing, and where it is a flag's whole value
    (``--num-models=$num_models``) the program gets an empty value: an error where the
    checkout declares that flag a number (argparse stops with ``invalid int value: ''``), a
    warning otherwise.

    Example:
        set -euo pipefail
        export UV_CACHE_DIR="${NANOCHAT_BASE_DIR}/.cache/uv"   # nothing sets NANOCHAT_BASE_DIR

    How to fix: export the variable before ``sbatch``, set it in the script, or give it a
    default: ``${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}``.
    """
    script.require_readable()
    span = _nounset_lines(script)
    assigned = _assigned_names(script)
    env = job_env.start
    if span is None:  # without set -u an unset variable is an empty word: a flag's value then is ""
        yield from _empty_flag_values(ctx, script, assigned, env)
        return
    opaque = _opaque_from(script)
    live = {id(c) for c in script.commands} | {id(a) for a in script.assignments}
    submitted = bool(script.active_directives())
    called = {c.name for c in script.all_commands}
    unset: dict[str, int] = {}  # variable -> the first line that expands it
    # `: "${HF_TOKEN:?set it}"`: the script asks for it itself (exits-before-training says so where it is unset)
    required = set(_REQUIRED_RE.findall(script.text or ""))
    for line, name, func in _references(script, live):
        if name in unset or name in assigned or name in env or set_at_run_time(name) or name in required:
            continue
        if not (span[0] <= line < span[1]) or line >= opaque:
            continue
        if func is not None and (func.line < span[0] or func.name not in called):
            continue  # a function never called, or defined before `set -u` (whether it runs under it is not read)
        unset[name] = line
    who = "the environment sbatch passes from here" if submitted else "this script's caller (it has no #SBATCH lines)"
    shown = list(unset.items())[:_SHOWN]
    for name, line in shown:
        yield Finding(
            f"line {line} expands ${name} under `set -u` (line {span[0]}), and nothing sets it: not the script, not "
            f"{who}; bash stops there with `{name}: unbound variable`",
            path=script.file_of(),
            line=line,
            severity=None if submitted else Severity.WARNING,
            fix=f"export {name}=... before {'sbatch' if submitted else 'running it'}, set it in the script, or "
            f"write ${{{name}:-default}}",
        )
    if len(unset) > len(shown):
        yield Finding(
            f"... and {len(unset) - len(shown)} more variables nothing sets, expanded under `set -u`",
            path=script.file_of(),
            severity=None if submitted else Severity.WARNING,
        )


def _empty_flag_values(ctx, script, assigned: set[str], env) -> Iterator[Finding]:
    """A launched entry point's ``--key=$X`` (or ``--key $X``) where nothing sets X: the program gets ``--key=``."""
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    submitted = bool(script.active_directives())
    seen: set[str] = set()
    opaque = {False: _opaque_from(script), True: _opaque_from(script, lowercase=True)}
    for inv in script.invocations:
        if inv.file != script.file_of() or not inv.entry:
            continue
        for flag in inv.flags:
            m = _REF_RE.fullmatch(flag.value or "")
            name = m and (m.group("braced") or m.group("plain"))
            if not name or m.group("op") or m.group("sub") or name in seen or inv.line >= opaque[name.islower()]:
                continue
            if name in assigned or name in env or set_at_run_time(name):
                continue
            seen.add(name)
            entry = checkout.entry(inv.module, inv.script_file) if checkout is not None else None
            declared = entry.lookup(flag.key) if entry is not None and entry.ok and flag.key else None
            numeric = declared is not None and declared.type in ("int", "float")
            if flag.style == "space":  # unquoted, the word vanishes: the flag takes the next word or none
                shown, numeric = f"--{flag.key} {flag.value}", numeric or not flag.raw.startswith('"')
                outcome = f"--{flag.key} takes the next word as its value (or argparse stops: expected one argument)"
            else:
                shown = f"--{flag.key}={flag.value}"
                outcome = (
                    f"argparse stops with `argument --{flag.key}: invalid {declared.type} value: ''`"
                    if numeric
                    else "it runs with an empty value"
                )
            who = "the environment sbatch passes from here" if submitted else "this script's caller (no #SBATCH lines)"
            yield Finding(
                f"line {inv.line} passes `{shown}` to {inv.entry}, and nothing sets ${name}: not the script, not "
                f"{who}; it expands to nothing, so {outcome}",
                path=script.file_of(),
                line=inv.line,
                severity=None if numeric and submitted else Severity.WARNING,
                fix=f"set {name}=... in the script (or export it before submitting), or write ${{{name}:-default}}",
            )
