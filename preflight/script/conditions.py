"""Conditions of `if`/`while` and `case` patterns, decided from known values (three-valued)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from preflight.script.tree import Item


class Conditions:
    """Mixin of the Evaluator: needs ``expand_raw``."""

    expand_raw: Any

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
            if op == "=~" and double:  # bash's ERE (a quoted pattern matches literally); Python's re agrees on the
                # forms scripts use (^[0-9]+$); a pattern it cannot read is undecided
                try:
                    return re.search(re.escape(right) if any(q in b for q in "'\"") else right, left) is not None
                except re.error:
                    return None
            if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
                try:
                    x, y = int(left.strip()), int(right.strip())
                except ValueError:
                    return None
                return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[op]
        return None

    def _match(self, word: str, patterns: list[str]) -> bool | None:
        unknown = False
        for raw in patterns:
            pat = self.expand_raw(raw)
            if pat is None:
                unknown = True
                continue
            quoted = any(q in raw for q in "'\"\\")
            if fnmatchcase(word, pat) if not quoted else word == pat:
                return True
        return None if unknown else False
