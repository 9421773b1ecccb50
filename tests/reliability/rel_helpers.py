"""Shared assertions for the reliability suite: run a command on hostile input and prove it survived.

"Survived" means: exit code in the allowed set, no Python traceback and no "internal error" on
stderr, the payload marker never created, and no file of the user's tree created, changed or
deleted (every file hashed before and after).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

BIG = 64 * 1024 * 1024  # files above this are fingerprinted by size, mtime and head/tail hashes


def _digest(path: Path, st: os.stat_result) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if st.st_size <= BIG:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f.read(1 << 20))
            f.seek(st.st_size - (1 << 20))
            h.update(f.read(1 << 20))
    return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()}"


def snapshot(root: Path) -> dict[str, str]:
    """path -> fingerprint for every entry under root (symlinks by target, dirs by mode)."""
    out: dict[str, str] = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            try:
                st = p.lstat()
            except OSError as exc:
                out[rel] = f"unstat:{exc.errno}"
                continue
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir:{oct(st.st_mode)}"
            elif stat.S_ISREG(st.st_mode):
                try:
                    out[rel] = _digest(p, st)
                except OSError as exc:  # unreadable on purpose (permission tests)
                    out[rel] = f"unreadable:{st.st_size}:{st.st_mtime_ns}:{exc.errno}"
            else:
                out[rel] = f"other:{oct(st.st_mode)}"
    return out


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    out = []
    for k in sorted(set(before) | set(after)):
        if k not in after:
            out.append(f"deleted {k}")
        elif k not in before:
            out.append(f"created {k}")
        elif before[k] != after[k]:
            out.append(f"modified {k}")
    return out


def problems(
    proc,
    *,
    allowed: Iterable[int] = (1, 2),
    marker: Path | None = None,
    before: dict[str, str] | None = None,
    root: Path | None = None,
    check_errors_ok: bool = False,
) -> list[str]:
    """Everything wrong with one run on hostile input (empty list: it survived)."""
    out: list[str] = []
    err = proc.stderr or ""
    if "Traceback (most recent call last)" in err:
        out.append("traceback on stderr:\n" + err[-3000:])
    if "internal error" in err:
        out.append("internal error: " + err.strip().splitlines()[-1][:500])
    out_text = proc.stdout or ""
    if out_text.lstrip().startswith("{") and not check_errors_ok:  # --format json
        import json

        try:
            crashed = [
                f"{c['code']}: {c.get('message') or c.get('reason') or ''}"
                for c in json.loads(out_text).get("checks", [])
                if c.get("status") == "error"
            ]
        except (ValueError, AttributeError):
            crashed = []
        if crashed:
            out.append("check crashed: " + " | ".join(crashed[:5]))
    if (
        "Checks that could not run (internal errors):" in out_text and not check_errors_ok
    ):  # a check raised: contained, but a crash
        tail = out_text.split("Checks that could not run (internal errors):", 1)[1].strip().splitlines()
        out.append("check crashed: " + " | ".join(ln.strip() for ln in tail[:5] if ln.strip()))
    if proc.returncode not in tuple(allowed):
        out.append(
            f"exit code {proc.returncode}, expected one of {tuple(allowed)}; stdout tail:\n"
            + (proc.stdout or "")[-1500:]
            + "\nstderr tail:\n"
            + err[-1500:]
        )
    if marker is not None and Path(marker).exists():
        out.append(f"PAYLOAD EXECUTED: {marker} was created")
    if before is not None and root is not None:
        changed = diff(before, snapshot(root))
        if changed:
            out.append("user files changed: " + ", ".join(changed[:20]))
    return out


PEAK_RSS_MB = 512  # issue 14: no hostile input may take a run past this


def check_survived(tally, reader: str, proc, **kw) -> None:
    """Count the input, record bad outcomes in the tally, and fail the test with every problem."""
    tally.tried(reader)
    tally.measure(reader, proc)
    found = problems(proc, **kw)
    rss = getattr(proc, "peak_rss_mb", None)
    if rss is not None and rss > PEAK_RSS_MB:
        found.append(f"peak RSS {rss:.0f} MB, over {PEAK_RSS_MB} MB")
    for p in found:
        if p.startswith("traceback") or p.startswith("internal error"):
            tally.outcome("tracebacks")
        elif p.startswith("check crashed"):
            tally.outcome("crashed checks")
        elif p.startswith("PAYLOAD"):
            tally.outcome("executed payloads")
        elif p.startswith("user files"):
            tally.outcome("modified user files")
    assert not found, f"[{reader}] " + "\n".join(found)


def registered(prefix: str, stage: str | None = None) -> list[str]:
    """Codes of registered checks starting with ``prefix`` (to skip where an area has not landed yet)."""
    from preflight.registry import Registry

    return [
        s.code
        for s in Registry.default(entry_points=False)
        if s.code.startswith(prefix) and (stage is None or s.stage == stage)
    ]


def run_bounded(cli, tally, reader: str, *args, timeout: float = 60, **kw):
    """cli(*args) with a wall-clock bound: a hang is counted and fails the test instead of blocking the suite."""
    import subprocess

    import pytest

    try:
        return cli(*args, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        tally.tried(reader)
        pytest.fail(f"[{reader}] hung: {' '.join(map(str, args))[:300]} did not finish within {timeout:g}s")
