"""Bash arithmetic expansion ``$(( ... ))`` for the static evaluation: integers, + - * / % ( ),
comparisons and ``c ? a : b``, names looked up like variables. Parsed with a small recursive
descent parser (never ``eval``); anything else, or an unknown name, gives None."""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|==|!=|&&|\|\||[-+*/%()<>?:!]))")
MAX_EXPR = 256  # characters; longer expressions are not evaluated (hostile input stays cheap)
MAX_VALUE = 1 << 62  # bash integers are 64-bit; larger intermediate values mean nonsense input


class _Unknown(Exception):
    pass


def evaluate(expr: str, lookup: Callable[[str], str | None]) -> int | None:
    """The value of a bash arithmetic expression, or None when it cannot be known statically."""
    if len(expr) > MAX_EXPR:
        return None
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            return None
        pos = m.end()
        if m.group(1):
            tokens.append(("num", m.group(1)))
        elif m.group(2):
            tokens.append(("name", m.group(2)))
        else:
            tokens.append(("op", m.group(3)))
    try:
        p = _Parser(tokens, lookup)
        value = p.ternary()
        if p.i != len(tokens):
            return None
        return value
    except (_Unknown, IndexError, ZeroDivisionError, RecursionError):
        return None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], lookup: Callable[[str], str | None]):
        self.t, self.i, self.lookup = tokens, 0, lookup

    def _peek(self) -> str | None:
        return self.t[self.i][1] if self.i < len(self.t) and self.t[self.i][0] == "op" else None

    def _take(self, *ops: str) -> str | None:
        if self._peek() in ops:
            self.i += 1
            return self.t[self.i - 1][1]
        return None

    def ternary(self) -> int:
        cond = self.binary(0)
        if self._take("?"):
            a = self.ternary()
            if not self._take(":"):
                raise _Unknown
            b = self.ternary()
            return a if cond else b
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> int:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self._take(*self._LEVELS[level])) is not None:
            right = self.binary(level + 1)
            left = _apply(op, left, right)
        return left

    def unary(self) -> int:
        if self._take("-"):
            return -self.unary()
        if self._take("+"):
            return self.unary()
        if self._take("!"):
            return int(not self.unary())
        if self._take("("):
            v = self.ternary()
            if not self._take(")"):
                raise _Unknown
            return v
        kind, text = self.t[self.i]
        self.i += 1
        if kind == "num":
            return _checked(int(text))
        if kind == "name":
            raw = self.lookup(text)
            if raw is None or not re.fullmatch(r"\s*-?\d+\s*", raw or ""):
                raise _Unknown
            return _checked(int(raw))
        raise _Unknown


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return _checked(a + b)
    if op == "-":
        return _checked(a - b)
    if op == "*":
        return _checked(a * b)
    if op in ("/", "%"):
        if b == 0:
            raise ZeroDivisionError
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # bash truncates toward zero
        return q if op == "/" else a - b * q
    return int(
        {
            "<": a < b,
            ">": a > b,
            "<=": a <= b,
            ">=": a >= b,
            "==": a == b,
            "!=": a != b,
            "&&": bool(a) and bool(b),
            "||": bool(a) or bool(b),
        }[op]
    )


def _checked(v: int) -> int:
    if abs(v) > MAX_VALUE:
        raise _Unknown
    return v


def expand_arithmetic(text: str, lookup: Callable[[str], str | None]) -> str | None:
    """Every ``$(( expr ))`` of ``text`` replaced by its value; None if one cannot be known."""
    out, pos = [], 0
    while (start := text.find("$((", pos)) >= 0:
        end = text.find("))", start + 3)
        if end < 0:
            return None
        value = evaluate(text[start + 3 : end], lookup)
        if value is None:
            return None
        out.append(text[pos:start] + str(value))
        pos = end + 2
    return "".join(out) + text[pos:]
