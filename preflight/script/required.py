"""The ways a job script stops unless a variable is set, as the evaluator reads them on a path it surely takes:
`${X:?message}` in a command's words, and a function that exits unless the variable its argument names is set
(`require_env RUN_NAME`, or `for v in A B; do require_env "$v"; done`, through bash's indirect `${!name}`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from preflight.script.tree import If, Item, iter_commands

# [ -z "${!name:-}" ] / [[ -z ${!1} ]]: the variable named by `name` (or by argument 1) is empty or unset
_INDIRECT_EMPTY_RE = re.compile(r"-z\s+\"?\$\{!([A-Za-z_][A-Za-z0-9_]*|[1-9])(?::?-[^}]*)?\}")
_POSITIONAL_RE = re.compile(r"^\"?\$\{?([1-9])\}?\"?$")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def unset_required(raw_words: list[str], lookup: Callable[[str], Any]) -> str | None:
    """`${X:?msg}` / `${X?msg}` of a variable surely unset (or empty, with the colon): bash stops there. Inside
    another expansion's word it counts only where bash expands that word (`${A:-${X:?}}` with A surely unset)."""
    for raw in raw_words:
        if raw.startswith("'"):
            continue
        if (hit := _required(raw, lookup, 0)) is not None:
            name, colon = hit
            return f"{raw} stops bash when {name} is {'empty or ' if colon else ''}unset"
    return None


def _required(text: str, lookup: Callable[[str], Any], depth: int) -> tuple[str, bool] | None:
    if depth > 4 or "${" not in text:
        return None
    for name, op, word in _expansions(text):
        value = lookup(name)
        known = isinstance(value, str) or value is None  # (the evaluator's UNKNOWN is neither)
        empty = value is None or value == ""
        if op in (":?", "?"):
            if known and (value is None or (op == ":?" and value == "")):
                return name, op == ":?"
        elif known and (
            (op in (":-", ":=") and empty)
            or (op in ("-", "=") and value is None)
            or (op == ":+" and not empty)
            or (op == "+" and value is not None)
        ):
            if (hit := _required(word, lookup, depth + 1)) is not None:
                return hit
    return None


_EXPANSION_HEAD_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-=?+])?")


def _expansions(text: str):
    """(name, operator, word) of each outermost ``${name<op>word}`` in text (braces balanced)."""
    i = 0
    while (m := _EXPANSION_HEAD_RE.search(text, i)) is not None:
        j, level = m.end(), 1
        while j < len(text) and level:
            if text.startswith("${", j):
                level, j = level + 1, j + 2
                continue
            level -= text[j] == "}"
            j += 1
        if level:
            return  # unbalanced: not an expansion bash would run
        yield m.group(1), m.group(2) or "", text[m.end() : j - 1]
        i = j


def required_argument(body: list) -> int | None:
    """The argument (1-9) that names a variable the function exits without, else None."""
    aliases: dict[str, int] = {}  # local name="$1"
    for node in body:
        if isinstance(node, Item):
            for a, raw in node.assigns:
                if m := _POSITIONAL_RE.match(raw):
                    aliases[a.name] = int(m.group(1))
            cmd = node.cmd
            if cmd is not None and cmd.name in ("local", "declare", "typeset", "readonly"):
                for word in cmd.raw_words[1:]:
                    name, _, value = word.partition("=")
                    if (m := _POSITIONAL_RE.match(value)) and _NAME_RE.fullmatch(name):
                        aliases[name] = int(m.group(1))
    for test, then in _tests_with_consequence(body):
        m = _INDIRECT_EMPTY_RE.search(test)
        if m and _exits(then):
            ref = m.group(1)
            return int(ref) if ref.isdigit() else aliases.get(ref)
    return None


def _tests_with_consequence(body: list):
    """(test text, what runs when it holds) for `if TEST; then ...` and `TEST && ...` in a function body."""
    for i, node in enumerate(body):
        if isinstance(node, If) and node.branches:
            cond, then = node.branches[0]
            yield " ".join(c.text for c in iter_commands(cond)), then
        elif isinstance(node, Item) and node.cmd is not None and node.cmd.op_after == "&&" and i + 1 < len(body):
            yield node.cmd.text, [body[i + 1]]


def _exits(nodes: list) -> bool:
    """Whether the nodes (a branch, or what follows `&&`) run `exit` with a failing status."""
    return any(cmd.name == "exit" and cmd.words[1:2] != ["0"] for cmd in iter_commands(nodes))
