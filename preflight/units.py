"""How long something took, in one format for every message and report: 4h05m, 3m20s, 45s."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """4h05m for hours (seconds say nothing there), 3m20s under an hour, 45s under a minute; "—" for unknown."""
    if seconds is None:
        return "—"
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
