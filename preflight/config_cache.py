"""Configs that passed the schema before, remembered by a digest of their content.

Importing jsonschema costs 40-60 ms, a third of a whole check, and a project's preflight.yaml rarely
changes between runs. After a document passes validation, the SHA-256 of its canonical JSON (salted
with the schema's own bytes, so a new schema forgets every entry) is kept in
``$XDG_CACHE_HOME/nanochat-preflight/valid-configs`` (``~/.cache/...`` by default): digests only, since a
config may hold secrets. A later run with the same document skips jsonschema.

The file is believed only when this user owns it and its folder and nobody else can write either;
anything wrong with it (missing, unreadable, corrupt, not writable) means: validate as before.
Invalid documents are never remembered, so their error message comes back on every run.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "valid-configs"
MAX_DIGESTS = 64  # newest kept; one line of 64 hex digits each
_MAX_BYTES = MAX_DIGESTS * 65 + 1024


def cache_file(environ: Mapping[str, str]) -> Path | None:
    """Where the digests live, or None when neither XDG_CACHE_HOME nor HOME is set."""
    base = environ.get("XDG_CACHE_HOME") or (str(Path(environ["HOME"]) / ".cache") if environ.get("HOME") else "")
    return Path(base) / "nanochat-preflight" / FILE_NAME if base else None


def digest(data: Any, schema: bytes) -> str | None:
    """SHA-256 of ``data`` as canonical JSON after ``schema``; None when ``data`` is not exactly one JSON
    document (YAML dates, integer keys, sets): those are validated every time."""
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    if json.loads(canonical) != data:
        return None
    import hashlib  # ~3 ms of OpenSSL set-up: only on this path

    h = hashlib.sha256(schema)
    h.update(b"\0")
    h.update(canonical.encode("utf-8"))
    return h.hexdigest()


def _private(path: Path, want_dir: bool) -> bool:
    """Owned by this user, not a symlink, and writable by nobody else."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(path: Path) -> list[str]:
    if not (_private(path.parent, want_dir=True) and _private(path, want_dir=False)):
        return []
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_BYTES)
    except OSError:
        return []
    lines = raw.decode("ascii", "replace").split()
    return [ln for ln in lines if len(ln) == 64 and all(c in "0123456789abcdef" for c in ln)]


def known(key: str, environ: Mapping[str, str]) -> bool:
    """Whether a document with this digest passed the schema in an earlier run."""
    path = cache_file(environ)
    return path is not None and key in _read(path)


def remember(key: str, environ: Mapping[str, str]) -> None:
    """Add a digest (atomically: a new file renamed over the old one). Never raises: a cache that cannot
    be written only means the next run validates again."""
    path = cache_file(environ)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = [k for k in _read(path) if k != key][-(MAX_DIGESTS - 1) :] + [key]
        if not _private(path.parent, want_dir=True):
            return
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write("\n".join(keys) + "\n")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError:
        return
