"""Output that hostile input cannot subvert: the CLI's streams, and the files it writes.

- stderr passes through ``GuardedStream``: secrets masked, and no line that a file name or a log
  line carried starts a GitHub workflow command (``::stop-commands::``); stdout's reports are
  guarded by the reporters themselves.
- Both streams encode with ``backslashreplace``: an ASCII locale or an undecodable file name never
  turns a report into an internal error.
- ``write_text`` (``init``, ``-o``) writes a temporary file in the target's directory and renames it
  over the target, and refuses a symbolic link (dangling or not) or a FIFO/device in the target's
  place: a checked-out tree cannot point a write outside itself or block it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

# what the text report prints, for streams that cannot encode it (ASCII locales, cp1252 consoles)
ASCII_SYMBOLS = str.maketrans(
    {
        "✗": "x",
        "·": "-",
        "✅": "ok",
        "❌": "x",
        "⚠": "!",
        "⏭": ">>",
        "💥": "!!",
        "…": "...",
        "—": "-",
        "–": "-",
        "→": "->",
        "≥": ">=",
        "≤": "<=",
        "×": "x",
        "\ufe0f": "",
    }
)


def can_encode(stream: Any, text: str = "✗·") -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


class GuardedStream:
    """A text stream wrapper: each line written is redacted and cannot start a workflow command."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        from preflight.redact import redact
        from preflight.reporters import defuse_commands

        if not isinstance(text, str) or not text:
            return self._stream.write(text)
        self._stream.write(defuse_commands(redact(text)))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    if not isinstance(sys.stderr, GuardedStream):
        sys.stderr = GuardedStream(sys.stderr)  # type: ignore[assignment]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While checks run, stdout (Python's and file descriptor 1, which child processes inherit) goes to
    stderr: the trainer's ``Padding vocab_size ...`` during the smoke test must not corrupt --format json."""
    sys.stdout.flush()
    saved_py = sys.stdout
    try:
        saved_fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        saved_fd = None
    sys.stdout = sys.stderr  # type: ignore[assignment]
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        finally:
            sys.stdout = saved_py
            if saved_fd is not None:
                os.dup2(saved_fd, 1)
                os.close(saved_fd)


class NotReadable(OSError):
    """A file a reader refuses before reading it: not a regular file, or over its byte budget."""


def read_limited(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Opened without blocking (a FIFO's open returns at once), then checked on the open descriptor (a
    link is followed and its target checked: ``/dev/zero``, a device, a FIFO are refused), and never
    more than ``limit`` bytes are read, whatever the size was when checked.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotReadable(f"{path} is not a regular file (a FIFO, device or socket); not read")
        if st.st_size > limit:
            raise NotReadable(f"{path} is {st.st_size:,} bytes; a {what} over {limit:,} bytes is not read")
        os.set_blocking(fd, True)
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise NotReadable(f"{path} grew past {limit:,} bytes while read; a {what} that large is not read")
        return data
    finally:
        os.close(fd)


class UnsafeTarget(Exception):
    """The path to write is a symbolic link or not a regular file."""


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, never through a link or into a FIFO/device.

    ``/dev/stdout`` and other paths under ``/dev/`` are written as named: the user asked for that device.
    """
    path = Path(path)
    if str(path).startswith("/dev/"):
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        state = "a dangling symbolic link" if not path.exists() else "a symbolic link"
        raise UnsafeTarget(f"{path} is {state} (to {target}); not writing through it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafeTarget(f"{path} is not a regular file; not writing to it")
    import tempfile  # not on the start-up path: only a write needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
