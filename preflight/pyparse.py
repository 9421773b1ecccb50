"""``ast.parse`` for the Python source preflight reads (a checkout's entry points, its dataset.py): parsed, never
imported or run. One parse at a time: CPython 3.11's AST constructor keeps its recursion depth in state the
interpreter shares, so two threads parsing at once can fail with "SystemError: AST constructor recursion depth
mismatch" (the checks run concurrently; seen under load on the upstream corpus)."""

from __future__ import annotations

import ast
import threading

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
