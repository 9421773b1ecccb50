"""The shell lexer: a logical line -> words, operators and newlines (heredoc delimiters too)."""

from __future__ import annotations

import re
from typing import Any

from preflight.script.model import Word


class Unterminated(Exception):
    pass


_ARRAY_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=$")
_OP_START = frozenset("&|;()<>")
_OPS = ("&&", "||", ";;", "<<<", "<<-", "<<", ">>", ">&", "&>", "<&", ";", "&", "|", "(", ")", "<", ">")


def tokenize(s: str) -> tuple[list[tuple[str, Word | str]], list[str]]:
    """Shell-like tokens: ("word", Word) / ("op", "&&") / ("nl", "\\n"). Also heredoc delimiters.

    Understands single/double quotes, backslashes, $(...), ${...}, backticks and # comments.
    Raises Unterminated for an open quote or substitution.
    """
    tokens: list[tuple[str, Any]] = []
    heredocs: list[str] = []
    i, n = 0, len(s)
    raw: list[str] = []
    val: list[str] = []
    expands = False
    in_word = False

    def flush() -> None:
        nonlocal raw, val, expands, in_word
        if in_word:
            tokens.append(("word", Word("".join(raw), "".join(val), expands)))
        raw, val, expands, in_word = [], [], False, False

    def read_balanced(j: int, open_c: str, close_c: str) -> int:
        depth = 0
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "'":
                k = s.find("'", j + 1)
                if k < 0:
                    raise Unterminated("'")
                j = k + 1
                continue
            if c == '"':
                j = read_dquote(j + 1)
                continue
            if c == open_c:
                depth += 1
            elif c == close_c:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise Unterminated(open_c)

    def read_dquote(j: int) -> int:
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == '"':
                return j + 1
            if c == "$" and j + 1 < n and s[j + 1] == "(":
                j = read_balanced(j + 1, "(", ")")
                continue
            if c == "`":
                k = s.find("`", j + 1)
                if k < 0:
                    raise Unterminated("`")
                j = k + 1
                continue
            j += 1
        raise Unterminated('"')

    while i < n:
        c = s[i]
        if c == "\n":
            flush()
            tokens.append(("nl", "\n"))
            i += 1
            continue
        if c in " \t\r":
            flush()
            i += 1
            continue
        if c == "#" and not in_word:
            k = s.find("\n", i)
            i = n if k < 0 else k
            continue
        if c == "\\":
            if i + 1 < n and s[i + 1] == "\n":
                i += 2
                continue
            raw.append(s[i : i + 2])
            val.append(s[i + 1 : i + 2])
            in_word = True
            i += 2
            continue
        if c == "'":
            k = s.find("'", i + 1)
            if k < 0:
                raise Unterminated("'")
            raw.append(s[i : k + 1])
            val.append(s[i + 1 : k])
            in_word = True
            i = k + 1
            continue
        if c == '"':
            k = read_dquote(i + 1)
            body = s[i + 1 : k - 1]
            raw.append(s[i:k])
            # inside double quotes a backslash escapes $ ` " \ and joins lines (a `\` newline is removed)
            val.append(re.sub(r'\\(?:\n|([$`"\\]))', lambda m: m.group(1) or "", body))
            expands = expands or "$" in body or "`" in body
            in_word = True
            i = k
            continue
        # $(...), ${...}, and process substitution `<(cmd "$X")`: each one word, read to its closing bracket
        if i + 1 < n and (c == "$" and s[i + 1] in "({" or c in "<>" and s[i + 1] == "("):
            k = read_balanced(i + 1, s[i + 1], ")" if s[i + 1] == "(" else "}")
            raw.append(s[i:k])
            val.append(s[i:k])
            expands = True
            in_word = True
            i = k
            continue
        if c == "`":
            k = s.find("`", i + 1)
            if k < 0:
                raise Unterminated("`")
            raw.append(s[i : k + 1])
            val.append(s[i : k + 1])
            expands = True
            in_word = True
            i = k + 1
            continue
        if c == "(" and in_word and _ARRAY_ASSIGN_RE.match("".join(raw)):
            k = read_balanced(i, "(", ")")  # NAME=(a b c): the array's words stay one word
            raw.append(s[i:k])
            val.append(s[i:k])
            i = k
            continue
        op = next((o for o in _OPS if s.startswith(o, i)), None) if c in _OP_START else None
        if op is not None:
            # `name=(a b)` arrays and `$((...))` are rare here; treat ( ) as ops
            if in_word and op in (">", ">>", ">&", "<", "<&") and "".join(raw).isdigit():
                raw, val, in_word = [], [], False  # 2>file: the fd number belongs to the redirect
            flush()
            tokens.append(("op", op))
            i += len(op)
            if op in ("<<", "<<-"):
                m = re.match(r"\s*(['\"]?)([A-Za-z0-9_.\-]+)\1", s[i:])
                if m:
                    heredocs.append(m.group(2))
            continue
        if c == "$":
            expands = True
        raw.append(c)
        val.append(c)
        in_word = True
        i += 1
    flush()
    return tokens, heredocs


def brace_end(text: str, start: int) -> int:
    """The index of the `}` closing a `${` whose body starts at ``start`` (quotes and nested braces inside it
    skipped); -1 where it is not closed."""
    depth, i, quote = 1, start, ""
    while i < len(text):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1
