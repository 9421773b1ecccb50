"""What a checkout's own task files load from the Hugging Face Hub, read as text (never imported): which task an
entry point imports, and the datasets a fork's own tasks name (``repo_id="me/my-sft"``) that no era lists."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

MAX_TASK_FILES = 200
# a dataset a task loads by a literal repo id: load_dataset("a/b"), load_hub_dataset(repo_id="a/b"), hf_hub_download
_LOAD_RE = re.compile(
    r"\b(load_dataset|load_hub_dataset|hf_hub_download|snapshot_download)\(\s*(?:[^()]{0,200}?\brepo_id\s*=\s*)?"
    r"[\"']([\w.-]+/[\w.-]+)[\"']"
)


def read_small(path: Path) -> str | None:
    try:
        return path.read_bytes()[: 2 << 20].decode("utf-8", "replace") if path.is_file() else None
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def task_files(root: str) -> tuple[tuple[str, str], ...]:
    """(stem, text) of a checkout's tasks/*.py (at most MAX_TASK_FILES)."""
    try:
        paths = sorted((Path(root) / "tasks").glob("*.py"))[:MAX_TASK_FILES]
    except OSError:
        return ()
    return tuple((p.stem, text) for p in paths if (text := read_small(p)) is not None)


def _entry_text(checkout: Any, module: str) -> str | None:
    return read_small(Path(checkout.root) / (module.replace(".", "/") + ".py"))


def _imports(entry: str, stem: str) -> bool:
    t = re.escape(stem)
    return bool(re.search(rf"\btasks\.{t}\b|from tasks import[^\n]*\b{t}\b", entry))


def entry_imports_its_task(checkout: Any, item: dict) -> bool:
    """A dataset a task file loads (the file that names its repo id) is the phase's only where the entry point that
    runs it (the item's ``module``) imports that task: a fork's chat_sft that trains on its own mixture leaves
    tasks/smoltalk.py unused. True where there is nothing to ask (no single entry, no task file naming the source)."""
    module, source = item.get("module"), str(item.get("source") or "")
    if checkout is None or not module or not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        return True
    tasks = [stem for stem, text in task_files(str(checkout.root)) if source in text]
    entry = _entry_text(checkout, module)
    if not tasks or entry is None:
        return True
    return any(_imports(entry, t) for t in tasks)


def own_task_datasets(checkout: Any, module: str, known: set[str]) -> list[tuple[str, str, str]]:
    """(repo id, loader, "tasks/x.py:LINE") of the datasets the tasks an entry point imports load by a literal repo id,
    leaving out those in ``known`` (what the era already lists)."""
    entry = _entry_text(checkout, module) if checkout is not None else None
    if entry is None:
        return []
    out: dict[str, tuple[str, str, str]] = {}
    for stem, text in task_files(str(checkout.root)):
        if not _imports(entry, stem):
            continue
        for m in _LOAD_RE.finditer(text):
            repo = m.group(2)
            if repo not in known and repo not in out:
                out[repo] = (repo, m.group(1), f"tasks/{stem}.py:{text.count(chr(10), 0, m.start()) + 1}")
    return list(out.values())
