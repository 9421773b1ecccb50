"""Which pretraining dataset a nanochat checkout reads, from its own ``nanochat/dataset.py`` (parsed with
``ast``; nothing is imported or run): the directory under the base dir (``DATA_DIR``) and the last shard
(``MAX_SHARD``).

The era profiles describe the two datasets upstream has used: FineWeb-Edu in ``base_data/`` (the classic
profile's ``dataset:``) and ClimbMix in ``base_data_climbmix/`` (from 2026-03-04). An era spans the switch
(no-mid starts 2026-02-01, and forks kept FineWeb-Edu long after), so a checkout's own file decides which
layout a job's shards follow; the profiles stay the one home of each layout's numbers."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from preflight import pyparse

MAX_SOURCE_BYTES = 1 << 20


def read_layout(checkout: Path) -> tuple[str | None, int | None, str | None, str | None]:
    """(DATA_DIR's directory under the base dir, MAX_SHARD, the environment variable that overrides DATA_DIR, the
    regex of its shards' file names) of the checkout's nanochat/dataset.py; None for what it lacks."""
    path = Path(checkout) / "nanochat" / "dataset.py"
    try:
        st = path.stat()
    except OSError:
        return None, None, None, None
    return _read(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _read(path: str, size: int, mtime_ns: int) -> tuple[str | None, int | None, str | None, str | None]:
    if size > MAX_SOURCE_BYTES:
        return None, None, None, None
    try:
        with open(path, "rb") as fh:
            tree = pyparse.parse(fh.read(MAX_SOURCE_BYTES).decode("utf-8"), filename=path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None, None, None, None
    data_dir = max_shard = env = shard_regex = None
    strings: dict[str, str] = {}  # the module's plain string constants, for its f-strings (DATASET_VERSION = "v3")
    for node in tree.body:  # module level only: what importing the module would set
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            strings[name] = node.value.value
        if name == "MAX_SHARD" and isinstance(node.value, ast.Constant) and type(node.value.value) is int:
            max_shard = node.value.value
        elif name == "DATA_DIR":
            # os.path.join(base_dir, "base_data_climbmix"), a fork's f"datasets/jp-pretrain/{DATASET_VERSION}" or
            # os.environ.get("X", os.path.join(...)): the last plain directory path in it
            names = [t for n in ast.walk(node.value) if (t := _text(n, strings)) is not None and _dir_path(t)]
            data_dir = names[-1] if names else None
            env = pyparse.environ_name(node.value)
        elif name == "index_to_filename" and isinstance(node.value, ast.Lambda):
            shard_regex = _file_name_regex(node.value.body, strings)
    return data_dir, max_shard, env, shard_regex


def _parts(node: ast.JoinedStr, strings: dict[str, str]) -> list[tuple[str, bool]] | None:
    """An f-string's parts: (text, False) for its constants and the module's string names, ("", True) for any other
    field; None for a form it does not read."""
    parts = []
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append((v.value, False))
        elif isinstance(v, ast.FormattedValue):
            known = isinstance(v.value, ast.Name) and v.value.id in strings
            parts.append((strings[v.value.id], False) if known else ("", True))
        else:
            return None
    return parts


def _text(node: ast.AST, strings: dict[str, str]) -> str | None:
    """A string constant, or an f-string of constants and the module's string names; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    parts = _parts(node, strings) if isinstance(node, ast.JoinedStr) else None
    return "".join(t for t, _ in parts) if parts is not None and not any(f for _, f in parts) else None


def _file_name_regex(body: ast.expr, strings: dict[str, str]) -> str | None:
    """The regex of `lambda index: f"shard_{index:05d}.parquet"`'s names: its text, each field a number."""
    parts = _parts(body, strings) if isinstance(body, ast.JoinedStr) else None
    if parts is None or sum(f for _, f in parts) != 1:
        return None
    regex = "^" + "".join(r"(\d+)" if f else re.escape(t) for t, f in parts) + "$"
    return regex if regex.endswith(r"\.parquet$") else None


def _dir_path(text: str) -> bool:
    """A relative directory path a base dir can hold (`base_data`, `datasets/jp-pretrain/v3`): lowercase, no `..`."""
    parts = text.split("/")
    return (
        0 < len(text) <= 128
        and text.isascii()
        and text.lower() == text
        and all(p and p[0] != "." for p in parts)
        and all(re.fullmatch(r"[\w.-]+", p) for p in parts)
    )


def apply_checkout_layout(data: dict, checkout: Path, profiles: Callable[[], Iterable[str]]) -> None:
    """Point ``data``'s ``dataset:`` section at the layout the checkout reads. ``profiles``: the merged profiles
    as JSON (the layouts), asked for only when needed. A directory no profile describes (a fork's) keeps this
    era's numbers."""
    _apply_cropping(data, checkout)
    data_dir, max_shard, env, shard_regex = read_layout(checkout)
    ds = data.get("dataset") or {}
    dirs = list(ds.get("dirs") or [])
    if data_dir is None or (dirs and dirs[0] == data_dir and max_shard in (None, ds.get("max_shard")) and not env):
        return
    known = layout_of(data_dir, profiles)
    # a fork's own dataset: its shards' size is not upstream's, so how many a run needs is not known (``own``)
    ds = known or {**ds, "dirs": [data_dir], "val_shard": "last", "own": True}
    if known is None and shard_regex:
        ds["shard_regex"] = shard_regex
    if max_shard is not None and max_shard != ds.get("max_shard"):
        if isinstance(ds.get("val_shard"), int):  # a pinned validation shard is the last one
            ds["val_shard"] = max_shard
        ds["max_shard"] = max_shard
    if env:
        ds["dir_env"] = env  # the job's $NANOCHAT_DATA_DIR, where it sets one, is the directory
    ds["from_checkout"] = os.path.join("nanochat", "dataset.py")
    data["dataset"] = ds


def _apply_cropping(data: dict, checkout: Path) -> None:
    """An era whose loader crops documents to fill each row (``usable_fraction`` < 1, its loader named by
    ``cropping_loader``) reads every token of its shards in a checkout whose base_train loads no such loader (a fork
    of the weeks before upstream's, or one that kept the streaming loader)."""
    ds = data.get("dataset") or {}
    marker = ds.get("cropping_loader")
    if not marker or ds.get("usable_fraction", 1.0) >= 1.0:
        return
    try:
        with open(checkout / "scripts" / "base_train.py", "rb") as f:
            text = f.read(MAX_SOURCE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return  # no base_train to read: the era's figure stands
    if marker not in text:
        data["dataset"] = {**ds, "usable_fraction": 1.0, "usable_from_checkout": "scripts/base_train.py"}


def layout_of(data_dir: str, profiles: Callable[[], Iterable[str]]) -> dict | None:
    """The ``dataset:`` section of the profile whose layout keeps its shards in ``data_dir``; None for a fork's."""
    for text in profiles():
        other = json.loads(text).get("dataset") or {}
        if (other.get("dirs") or [None])[0] == data_dir:
            return dict(other)
    return None


def named_by_script(text: str, dirs: list[str]) -> str | None:
    """The one dataset directory of ``dirs`` a script's text names as a path (`ls $NANOCHAT_BASE_DIR/base_data/`),
    where it names exactly one: the layout its job uses, when the era spans two."""
    named = [d for d in dirs if re.search(rf"/{re.escape(d)}(?![\w])", text or "")]
    return named[0] if len(named) == 1 else None
