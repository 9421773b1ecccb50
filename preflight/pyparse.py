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
