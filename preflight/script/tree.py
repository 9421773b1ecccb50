"""The block tree of a parsed script: the parser's flat event stream -> if / loops / case /
groups / functions (``build_tree``), and the commands in a tree (``iter_commands``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


# -- the block tree ----------------------------------------------------------------------------
# plain classes, not dataclasses: this module is imported on every `preflight check` (start-up)
class Item:
    __slots__ = ("cmd", "assigns")

    def __init__(self, cmd: Any, assigns: list):
        self.cmd = cmd  # script.Command or None (a line of plain assignments)
        self.assigns = assigns  # [(script.Assignment, raw value as written)]


class If:
    __slots__ = ("branches", "else_body")

    def __init__(self, branches: list, else_body: list | None = None):
        self.branches = branches  # [[cond nodes, body nodes]]
        self.else_body = else_body


class Loop:
    __slots__ = ("kind", "header", "cond", "body")

    def __init__(self, kind: str, header: list):
        self.kind = kind  # for | select | while | until
        self.header = header  # raw words after `for`
        self.cond: list = []
        self.body: list = []


class Case:
    __slots__ = ("header", "arms")

    def __init__(self, header: list):
        self.header = header  # raw words after `case`: WORD in
        self.arms: list = []  # [(raw patterns, body nodes)]


class Group:
    __slots__ = ("kind", "body")

    def __init__(self, kind: str):
        self.kind = kind  # { or (
        self.body: list = []


class Func:
    __slots__ = ("name", "line", "body")

    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line
        self.body: list = []


class Malformed(Exception):
    """Keywords that do not pair up; ``line``: where the block left open (or the stray keyword) is."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def iter_commands(nodes: list) -> Iterator[Any]:
    """The commands in a block tree (every branch, loop and group), in order."""
    for n in nodes:
        if isinstance(n, Item):
            if n.cmd is not None:
                yield n.cmd
        elif isinstance(n, If):
            for cond, body in n.branches:
                yield from iter_commands(cond)
                yield from iter_commands(body)
            yield from iter_commands(n.else_body or [])
        elif isinstance(n, Loop):
            yield from iter_commands(n.cond)
            yield from iter_commands(n.body)
        elif isinstance(n, Case):
            for _patterns, body in n.arms:
                yield from iter_commands(body)
        elif isinstance(n, (Group, Func)):
            yield from iter_commands(n.body)


def iter_nodes(nodes: list, func: Func | None = None) -> Iterator[tuple[Any, Func | None]]:
    """Every node of a block tree, in order, with the function whose body holds it (None at the top)."""
    for n in nodes:
        yield n, func
        if isinstance(n, If):
            for cond, body in n.branches:
                yield from iter_nodes(cond, func)
                yield from iter_nodes(body, func)
            yield from iter_nodes(n.else_body or [], func)
        elif isinstance(n, Loop):
            yield from iter_nodes(n.cond, func)
            yield from iter_nodes(n.body, func)
        elif isinstance(n, Case):
            for _patterns, body in n.arms:
                yield from iter_nodes(body, func)
        elif isinstance(n, Group):
            yield from iter_nodes(n.body, func)
        elif isinstance(n, Func):
            yield from iter_nodes(n.body, n)


def branch_paths(nodes: list, path: tuple = ()) -> dict[int, tuple]:
    """Each command's line -> the branches it lies in: ((id of its if/case, which branch), ...) from the outside in.
    Two commands whose paths take different branches of one if or case never both run."""
    out: dict[int, tuple] = {}
    for n in nodes:
        if isinstance(n, Item):
            if n.cmd is not None:
                out.setdefault(n.cmd.line, path)
        elif isinstance(n, If):
            arms = [body for _cond, body in n.branches] + [n.else_body or []]
            for cond, _body in n.branches:
                out.update(branch_paths(cond, path))  # a condition runs whenever the branches before it fail
            for i, body in enumerate(arms):
                out.update(branch_paths(body, (*path, (id(n), i))))
        elif isinstance(n, Case):
            for i, (_patterns, body) in enumerate(n.arms):
                out.update(branch_paths(body, (*path, (id(n), i))))
        elif isinstance(n, Loop):
            out.update(branch_paths(n.cond, path))
            out.update(branch_paths(n.body, path))
        elif isinstance(n, (Group, Func)):
            out.update(branch_paths(n.body, path))
    return out


def exclusive(a: tuple, b: tuple) -> bool:
    """Whether two branch paths (branch_paths) take different branches of one if or case."""
    taken = dict(a)
    return any(node in taken and taken[node] != arm for node, arm in b)


_CLOSES = {"fi": If, "done": Loop, "esac": Case}


def build_tree(events: list) -> list:
    """Events -> nested nodes. Raises Malformed when keywords do not pair up."""
    root: list = []
    cur: list = root
    stack: list[tuple[Any, list]] = []  # (open node, the list to go back to)
    pending_fn: tuple[str, int] | None = None
    scratch: list = []

    opened: list[tuple[str, int | None]] = []  # the keyword and line of each block on the stack
    line: int | None = None

    def top(kind: type) -> Any:
        if not stack or not isinstance(stack[-1][0], kind):
            raise Malformed(f"unpaired keyword (expected an open {getattr(kind, '__name__', 'block')})", line)
        return stack[-1][0]

    for ev in events:
        kind = ev[0]
        if kind == "item":
            cur.append(Item(ev[1], ev[2]))
            pending_fn = None
            continue
        if kind == "fn":
            pending_fn = (ev[1], ev[2])
            continue
        if kind == "pattern":
            node = top(Case)
            node.arms.append((ev[1], []))
            cur = node.arms[-1][1]
            continue
        kw = ev[1]
        line = ev[3] if len(ev) > 3 else None
        fn, pending_fn = pending_fn, None
        depth = len(stack)
        if kw == "if":
            node = If([[[], []]])
            cur.append(node)
            stack.append((node, cur))
            cur = node.branches[0][0]
        elif kw == "then":
            cur = top(If).branches[-1][1]
        elif kw == "elif":
            node = top(If)
            node.branches.append([[], []])
            cur = node.branches[-1][0]
        elif kw == "else":
            node = top(If)
            node.else_body = []
            cur = node.else_body
        elif kw in ("while", "until", "for", "select"):
            node = Loop(kw, list(ev[2] or []))
            cur.append(node)
            stack.append((node, cur))
            cur = node.cond if kw in ("while", "until") else scratch
        elif kw == "do":
            cur = top(Loop).body
        elif kw == "case":
            node = Case(list(ev[2] or []))
            cur.append(node)
            stack.append((node, cur))
            cur = scratch
        elif kw in ("{", "("):
            node = Func(fn[0], fn[1]) if fn else Group(kw)
            cur.append(node)
            stack.append((node, cur))
            cur = node.body
        elif kw in _CLOSES:
            top(_CLOSES[kw])
            cur = stack.pop()[1]
        elif kw in ("}", ")"):
            node = top((Func, Group))  # type: ignore[arg-type]
            if isinstance(node, Group) and node.kind != ("{" if kw == "}" else "("):
                raise Malformed(kw, line)
            cur = stack.pop()[1]
        if len(stack) > depth:
            opened.append((kw, line))
        del opened[len(stack) :]
    if stack:
        names = ", ".join(f"`{kw}` (line {line})" for kw, line in opened) or type(stack[-1][0]).__name__
        raise Malformed(f"unclosed {names}", opened[0][1] if opened else None)
    return root


# -- evaluation --------------------------------------------------------------------------------
