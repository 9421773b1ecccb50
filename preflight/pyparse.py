"""``ast.parse`` for the Python source preflight reads (a checkout's entry points, its dataset.py): parsed, never
imported or run. One parse at a time: CPython 3.11's AST constructor keeps its recursion depth in state the
interpreter shares, so two threads parsing at once can fail with "SystemError: AST constructor recursion depth
mismatch" (the checks run concurrently; seen under load on the upstream corpus)."""

from __future__ import annotations

import ast
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename=filename)


def environ_name(value: ast.expr) -> str | None:
    """X of `os.environ.get("X", ...)` / `os.getenv("X", ...)`: the variable a fork reads a setting from."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.args):
        return None
    func, first = value.func, value.args[0]
    named = func.attr == "getenv" or (func.attr == "get" and getattr(func.value, "attr", None) == "environ")
    if named and isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.isidentifier():
        return first.value
    return None


@lru_cache(maxsize=64)
def settable_keys(path: Path) -> dict | None:
    """Top-level simple assignments of a configurator script (its settable keys), via ast."""
    try:
        tree = parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return None  # CPython's parser raises RecursionError/MemoryError on very long operator chains
    out: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.startswith("_"):
                continue
            value = const_value(node.value)
            if isinstance(value, (int, float, bool, str)):
                out[name] = value
    return out or None


def const_value(node: Any) -> Any:
    """A literal, or constant arithmetic on literals (``eval_tokens = 20 * 524288``); else None."""
    import operator

    ops = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv,
        ast.Pow: operator.pow,
        ast.Mod: operator.mod,
    }
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        left, right = const_value(node.left), const_value(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)) and not isinstance(left, bool):
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                return None  # no huge powers from someone else's source
            try:
                return ops[type(node.op)](left, right)
            except (ArithmeticError, ValueError):
                return None
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        return None
