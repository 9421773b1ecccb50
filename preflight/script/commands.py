"""Simple commands from tokens: block keywords (as events for the evaluator), assignments,
exports, `set -e`/pipefail, ERR traps and `cd` targets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.script.model import ASSIGN_RE, Assignment, Command, ScriptModel, Word

_KEYWORDS_OPEN = {"if", "while", "until", "for", "case", "select", "{"}
_KEYWORDS_CLOSE = {"fi", "done", "esac", "}"}
_KEYWORDS_PREFIX = {"then", "do", "else", "elif", "!", "time"}


@dataclass
class State:
    """The shell parser's nesting state while it walks the script."""

    depth: int = 0
    function_depth: list[int] = field(default_factory=list)
    in_condition: bool = False
    events: list = field(default_factory=list)  # block structure for preflight.script_eval
    case_expects_pattern: list[bool] = field(default_factory=list)  # one per open `case`


def commands_from_tokens(
    model: ScriptModel, state: State, tokens: list, line: int, end_line: int, text: str, fname: str
) -> None:
    cur: list[Word] = []
    redirects: list[tuple[str, str]] = []
    op_before: str | None = None
    negated = False
    expect_redirect: str | None = None
    pending_fn = False

    def emit(op_after: str | None) -> None:
        nonlocal cur, redirects, op_before, negated
        words = cur
        cur, reds = [], redirects
        redirects = []
        if not words:
            op_before = op_after if op_after not in (None, "nl") else None
            return
        # leading keywords
        while words and words[0].raw in (_KEYWORDS_OPEN | _KEYWORDS_CLOSE | _KEYWORDS_PREFIX | {"elif"}):
            kw = words[0].raw
            words = words[1:]
            if kw in ("if", "while", "until", "elif"):
                state.in_condition = True
                if kw != "elif":
                    state.depth += 1
                state.events.append(("kw", kw, None, line))
            elif kw in ("then", "do", "else"):
                state.in_condition = False
                state.events.append(("kw", kw, None, line))
            elif kw in ("for", "case", "select"):
                state.depth += 1
                state.events.append(("kw", kw, [w.raw for w in words], line))
                if kw == "case":
                    state.case_expects_pattern.append(True)
                words = []  # the loop header / case word is not a command
                break
            elif kw == "{":
                state.depth += 1
                state.events.append(("kw", kw, None, line))
            elif kw in _KEYWORDS_CLOSE:
                state.depth = max(0, state.depth - 1)
                if state.function_depth and state.depth < state.function_depth[-1]:
                    state.function_depth.pop()
                if kw == "esac" and state.case_expects_pattern:
                    state.case_expects_pattern.pop()
                state.events.append(("kw", kw, None, line))
            elif kw == "!":
                negated = True
        if words:
            _record(model, state, words, reds, op_before, op_after, negated, line, end_line, text, fname)
        negated = False
        op_before = op_after if op_after not in (None, "nl") else None

    idx = 0
    while idx < len(tokens):
        kind, tok = tokens[idx]
        if kind == "word":
            if expect_redirect:
                redirects.append((expect_redirect, tok.value))
                expect_redirect = None
            elif cur and cur[-1].raw == "function":
                cur = []
                pending_fn = True
                state.events.append(("fn", tok.value, line))
            else:
                cur.append(tok)
        elif kind == "nl":
            emit(None)
        elif (
            tok in ("&&", "||", "(", ")", "<", ">")
            and any(w.raw == "[[" for w in cur[:3])  # (after `if`, `!`, `elif`, `while`)
            and not any(w.raw == "]]" for w in cur)
        ):
            cur.append(Word(tok, tok, False))  # inside [[ ... ]] these are the test's own operators
        else:
            op = tok
            expects_pattern = bool(state.case_expects_pattern and state.case_expects_pattern[-1])
            if op in (">", ">>", ">&", "&>", "<", "<&", "<<", "<<-", "<<<"):
                expect_redirect = op
            elif (
                op == "("
                and idx + 1 < len(tokens)
                and tokens[idx + 1] == ("op", ")")
                and (len(cur) == 1 or (pending_fn and not cur))
            ):
                # name() { ... } / function name() { ... }: a function definition
                if cur:
                    state.events.append(("fn", cur[0].value, line))
                cur = []
                idx += 1
                pending_fn = True
            elif op == "|" and expects_pattern and cur:
                cur.append(Word("|", "|", False))  # -t|--tiny) : alternatives of one case pattern
            elif op == "(" and expects_pattern and not cur:
                pass  # (--tiny) : the optional open paren of a case pattern
            elif op == ")" and cur and cur[0].raw == "case" and any(w.raw == "in" for w in cur[1:-1]):
                # one-line `case "$1" in --tiny) ...`: the header, then the first pattern
                k = next(j for j, w in enumerate(cur) if w.raw == "in" and j > 0)
                pattern = cur[k + 1 :]
                cur = cur[: k + 1]
                emit(None)
                state.events.append(("pattern", [w.raw for w in pattern if w.raw != "|"]))
                if state.case_expects_pattern:
                    state.case_expects_pattern[-1] = False
            elif op == ")" and cur and expects_pattern:
                # a case pattern such as `start)`: not a command
                state.events.append(("pattern", [w.raw for w in cur if w.raw != "|"]))
                state.case_expects_pattern[-1] = False
                cur = []
                emit(None)
            elif op in ("(", ")"):
                emit(None)
                if op == "(":
                    state.depth += 1
                else:
                    state.depth = max(0, state.depth - 1)
                state.events.append(("kw", op, None, line))
            elif op == ";;":
                emit(None)
                if state.case_expects_pattern:
                    state.case_expects_pattern[-1] = True
            else:
                emit(op)
            if pending_fn and op not in ("(", ")"):
                pass
        if pending_fn and kind == "word" and tok.raw == "{":
            pass
        if pending_fn and cur and cur[0].raw == "{":
            state.function_depth.append(state.depth + 1)
            pending_fn = False
        idx += 1
    emit(None)


def _record(
    model: ScriptModel,
    state: State,
    words: list[Word],
    redirects: list,
    op_before: str | None,
    op_after: str | None,
    negated: bool,
    line: int,
    end_line: int,
    text: str,
    fname: str,
) -> None:
    n_assign, n_cmd = len(model.assignments), len(model.commands)
    _record_command(model, state, words, redirects, op_before, op_after, negated, line, end_line, text, fname)
    # the event for preflight.script_eval: the command and its assignments with their values as written
    raws: dict[str, str] = {}
    for w in words:
        m = ASSIGN_RE.match(w.value)
        if m and not w.raw.startswith(("'", '"')):
            raws[m.group(1)] = w.raw.partition("=")[2]
        m = re.match(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):?=", w.raw)
        if m:
            raws[m.group(1)] = w.raw  # `: ${X:=v}`: keeps a value set before
    new = model.assignments[n_assign:]
    cmd = model.commands[n_cmd] if len(model.commands) > n_cmd else None
    state.events.append(("item", cmd, [(a, raws.get(a.name, a.value)) for a in new]))


def _record_command(
    model: ScriptModel,
    state: State,
    words: list[Word],
    redirects: list,
    op_before: str | None,
    op_after: str | None,
    negated: bool,
    line: int,
    end_line: int,
    text: str,
    fname: str,
) -> None:
    env: dict[str, str] = {}
    appends: set[str] = set()  # names assigned with +=
    rest = list(words)
    while rest and ASSIGN_RE.match(rest[0].value) and not rest[0].raw.startswith(("'", '"')):
        m = ASSIGN_RE.match(rest[0].value)
        env[m.group(1)] = m.group(3)
        if m.group(2):
            appends.add(m.group(1))
        else:
            appends.discard(m.group(1))
        rest = rest[1:]
    in_function = bool(state.function_depth)
    cmd = Command(
        line=line,
        end_line=end_line,
        words=[w.value for w in rest],
        raw_words=[w.raw for w in rest],
        env=env,
        redirects=redirects,
        op_before=op_before,
        op_after=op_after,
        background=op_after == "&",
        depth=state.depth,
        in_condition=state.in_condition,
        negated=negated,
        in_function=in_function,
        file=fname,
        text=text,
    )
    unconditional = (
        state.depth == 0 and not in_function and op_before not in ("&&", "||") and op_after not in ("&&", "||")
    )
    if not rest:
        # plain assignments: X=1 Y=2
        for name, value in env.items():
            model.assignments.append(
                Assignment(
                    line,
                    name,
                    value,
                    exported=False,
                    unconditional=unconditional,
                    default_only=_is_default_only(name, value),
                    file=fname,
                    append=name in appends,
                )
            )
        return
    model.commands.append(cmd)
    name = cmd.name
    if name in ("export", "declare", "typeset", "readonly", "local") and len(rest) > 1:
        exported = name == "export" or (
            name in ("declare", "typeset") and any(w.value.startswith("-") and "x" in w.value for w in rest[1:])
        )
        for w in rest[1:]:
            if w.value.startswith("-"):
                continue
            m = ASSIGN_RE.match(w.value)
            if m:
                model.assignments.append(
                    Assignment(
                        line,
                        m.group(1),
                        m.group(3),
                        exported=exported,
                        unconditional=unconditional and name != "local",
                        default_only=_is_default_only(m.group(1), m.group(3)),
                        file=fname,
                        append=bool(m.group(2)),
                    )
                )
            elif exported:
                # `export X` exports the current value: record as a marker with the value it has
                model.assignments.append(
                    Assignment(
                        line,
                        w.value,
                        f"${{{w.value}}}",
                        exported=True,
                        unconditional=False,
                        default_only=True,
                        file=fname,
                    )
                )
    elif name == ":" and len(rest) > 1:
        for w in rest[1:]:
            m = re.match(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):?=(.*)\}$", w.value)
            if m:
                model.assignments.append(
                    Assignment(
                        line, m.group(1), m.group(2), exported=False, unconditional=False, default_only=True, file=fname
                    )
                )
    elif name == "set":
        for w in cmd.words[1:]:
            if re.match(r"^-[a-zA-Z]*e[a-zA-Z]*$", w) and model.set_e_line is None:
                model.set_e_line = line
            if re.match(r"^-[a-zA-Z]*E", w):
                pass
        opts = cmd.words[1:]
        for j, w in enumerate(opts):
            if w in ("-o", "-eo", "-euo", "-ueo", "-oe") or (w.startswith("-") and w.endswith("o")):
                nxt = opts[j + 1] if j + 1 < len(opts) else ""
                if nxt == "errexit" and model.set_e_line is None:
                    model.set_e_line = line
                if nxt == "pipefail" and model.pipefail_line is None:
                    model.pipefail_line = line
            if w in ("+e",) and model.set_e_line is not None and unconditional:
                model.set_e_line = None  # `set +e` at top level turns it off again
    elif name == "trap" and len(cmd.words) > 2 and "ERR" in cmd.words[2:] and "exit" in cmd.words[1]:
        model.errtrap_line = model.errtrap_line or line


def _is_default_only(name: str, value: str) -> bool:
    return bool(re.match(rf"^\$\{{{re.escape(name)}:?[-=]", value))


def inside_quoted_word(cmd: Any, start: int, end: int) -> bool:
    """Whether [start, end) of the command's words joined by blanks lies inside one word written in quotes (an
    argument, like a message's text, not words the command runs)."""
    pos = 0
    for word, raw in zip(cmd.words, cmd.raw_words, strict=False):
        if pos <= start and end <= pos + len(word):
            return raw[:1] in ("'", '"')
        pos += len(word) + 1
    return False
