"""Configs that passed the schema before, remembered with what they parsed to.

Importing jsonschema costs 40-60 ms and PyYAML ~10 ms, together a third of a whole check, and a
project's preflight.yaml rarely changes between runs. After a document passes validation, its exact
text (a YAML file's, or the canonical JSON of PREFLIGHT_* / command-line values) and the values it
parsed to are kept in ``$XDG_CACHE_HOME/nanochat-preflight/valid-configs.json`` (``~/.cache/...`` by
default), under a fingerprint of the schema, so a new schema forgets every entry. A later run with the
same text skips the parser and jsonschema. Only small documents that are plain JSON values are kept.

The file is believed only when this user owns it and its folder and nobody else can write either (it
holds values that decide which plugins load); anything wrong with it (missing, unreadable, corrupt, not
writable) means: parse and validate as before. Invalid documents are never remembered, so their error
message comes back on every run.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "valid-configs.json"
MAX_ENTRIES = 16  # newest kept
MAX_TEXT = 8192  # characters of one remembered document (a commented starter config is ~2,500)
_MAX_FILE = MAX_ENTRIES * MAX_TEXT * 4 + 4096  # the values are never much larger than their text


def cache_file(environ: Mapping[str, str]) -> Path | None:
    """Where the entries live, or None when neither XDG_CACHE_HOME nor HOME is set."""
    base = environ.get("XDG_CACHE_HOME") or (str(Path(environ["HOME"]) / ".cache") if environ.get("HOME") else "")
    return Path(base) / "nanochat-preflight" / FILE_NAME if base else None


def json_key(data: Any) -> str | None:
    """The canonical JSON text that stands for ``data`` (values from the environment or the command line),
    or None when ``data`` is not exactly one JSON value (YAML dates, integer keys, sets)."""
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return "json:" + canonical if json.loads(canonical) == data else None


@functools.cache  # asked once per config source (file, environment, command line) in a run
def _schema_fingerprint() -> str:
    from preflight import __version__, schemas

    raw = schemas.path("config.schema.json").read_bytes()
    return f"{__version__}:crc32:{zlib.crc32(raw):08x}:{len(raw)}"


def _private(path: Path, want_dir: bool) -> bool:
    """Owned by this user, not a symlink, and writable by nobody else."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _entries(path: Path, fingerprint: str) -> list[list]:
    if not (_private(path.parent, want_dir=True) and _private(path, want_dir=False)):
        return []
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_FILE + 1)
        if len(raw) > _MAX_FILE:
            return []
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(doc, dict) or doc.get("schema") != fingerprint or not isinstance(doc.get("entries"), list):
        return []
    return [e for e in doc["entries"] if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)]


def lookup(key: str, environ: Mapping[str, str]) -> Any | None:
    """What the document with this exact text parsed to, when it passed the current schema in an earlier
    run; None otherwise."""
    path = cache_file(environ)
    if path is None or len(key) > MAX_TEXT:
        return None
    return next((data for text, data in _entries(path, _schema_fingerprint()) if text == key), None)


def remember(key: str, data: Any, environ: Mapping[str, str]) -> None:
    """Keep a document that passed the schema (atomically: a new file renamed over the old one). Never
    raises: a cache that cannot be written only means the next run parses and validates again."""
    path = cache_file(environ)
    values = json_key(data)
    if path is None or len(key) > MAX_TEXT or values is None or len(values) > 4 * MAX_TEXT:
        return  # (YAML aliases can make a short text's values long)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent, want_dir=True):
            return
        fingerprint = _schema_fingerprint()
        kept = [e for e in _entries(path, fingerprint) if e[0] != key][-(MAX_ENTRIES - 1) :]
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"schema": fingerprint, "entries": [*kept, [key, data]]}, fh)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError:
        return
