"""Python a job script runs inline (``python -c "..."``, ``python - <<EOF``): which calls in it download.

The code is parsed with ``ast``, never run. A call downloads when its name is one of the profile's
``python_network`` calls (``hf_hub_download``, ``load_dataset``, ...), or when it calls a name imported from a module
of the checkout whose own source makes such a call (``from tasks.smoltalk import SmolTalk; SmolTalk()``: the task
loads its dataset from the Hub when built).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from preflight import pyparse
from preflight.script.model import Command, ScriptModel
from preflight.script.wrappers import strip_prefixes

# datasets' packaged builders read local files (`load_dataset("json", data_files=...)`): not a download
LOCAL_BUILDERS = frozenset(
    {"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder", "webdataset"}
)
MAX_MODULE_BYTES = 512 * 1024  # a task module of a checkout is a few KB; a larger file is not read
_PYTHON_RE = re.compile(r"python(\d+(\.\d+)?)?$")


@dataclass
class NetworkCall:
    call: str  # the name called, as written: hf_hub_download, SmolTalk
    what: str  # what it downloads, from the profile
    line: int  # line of the script
    target: str = ""  # its first argument when a string: the repo or dataset id
    via: str = ""  # the checkout module whose source downloads, for a call of a name imported from it


def inline_code(cmd: Command, model: ScriptModel) -> tuple[str, int] | None:
    """The Python source a command runs inline, with the script line its first line is on."""
    words = strip_prefixes(list(cmd.words)).words
    if words[:2] == ["uv", "run"]:
        words = words[2:]
    if not words or not _PYTHON_RE.match(os.path.basename(words[0])):
        return None
    args = words[1:]
    if "-c" in args and args.index("-c") + 1 < len(args):
        return args[args.index("-c") + 1], cmd.line
    if any(op in ("<<", "<<-") for op, _t in cmd.redirects) and (not args or args == ["-"]):
        first = cmd.line + cmd.text.count("\n")  # the heredoc's body starts after the command's logical line
        body = model.lines[first : cmd.end_line - 1]
        return ("\n".join(body), first + 1) if body else None
    return None


def network_calls(code: str, first_line: int, calls: dict[str, str], root: Path | None) -> list[NetworkCall]:
    """The calls in ``code`` that download (see the module's docstring), in source order."""
    try:
        tree = pyparse.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # not Python preflight can read (a template, a shell variable in the code): no claim
    imported = _downloading_imports(tree, calls, root) if root is not None else {}
    for node in ast.walk(tree):  # `from huggingface_hub import snapshot_download as fetch`
        if isinstance(node, ast.ImportFrom):
            imported.update({a.asname: (calls[a.name], "") for a in node.names if a.asname and a.name in calls})
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in calls:
            what, via = calls[name], ""
        elif name in imported:
            what, via = imported[name]
        else:
            continue
        arg = node.args[0] if node.args else None
        target = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
        if target in LOCAL_BUILDERS or target.startswith(("/", "./", "../", "~")):
            continue  # a local file or folder
        found.append(NetworkCall(name, what, first_line + node.lineno - 1, target, via))
    return sorted(found, key=lambda c: c.line)


def _downloading_imports(tree: ast.Module, calls: dict[str, str], root: Path) -> dict[str, tuple[str, str]]:
    """Names imported from modules of the checkout that make a downloading call: name -> (what, module)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            what = _module_downloads(str(root), node.module, tuple(sorted(calls.items())))
            if what:
                out.update({a.asname or a.name: (what, node.module) for a in node.names})
    return out


MAX_IMPORT_DEPTH = 3  # tasks.smoltalk -> tasks.common.load_hub_dataset -> urllib's urlopen


@lru_cache(maxsize=128)
def _module_downloads(root: str, module: str, calls: tuple[tuple[str, str], ...], depth: int = 0) -> str:
    """What a checkout module's own source downloads ('' when it makes no such call or cannot be read): a call of
    the profile's, or of a name it imports from another checkout module that downloads."""
    path = Path(root, *module.split(".")).with_suffix(".py")
    try:
        if not path.is_file() or path.stat().st_size > MAX_MODULE_BYTES:
            return ""
        tree = pyparse.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    names = dict(calls)
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level and depth < MAX_IMPORT_DEPTH:
            if node.module != module and (what := _module_downloads(root, node.module, calls, depth + 1)):
                imported.update({a.asname or a.name: what for a in node.names})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in names:
                return names[name]
            if name in imported:
                return imported[name]
    return ""
