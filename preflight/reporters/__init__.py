"""Reporters turn a RunResult into text. Each format lives in its own module, imported on use.

Machine formats (json, jsonl, junit, sarif, github) are a versioned, committed surface;
the human formats (text, markdown, html) are free to change.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = ("text", "json", "jsonl", "junit", "sarif", "github", "markdown", "html")
CURVE_FORMATS = {"text", "markdown", "html"}  # formats that draw the training curves (postflight)

# C0 controls (but tab and newline) and DEL: a message or path quoted from a log or a file name must
# not drive the reader's terminal, and XML 1.0 forbids them outright
_CONTROLS = {c: "\N{REPLACEMENT CHARACTER}" for c in (*range(0, 9), *range(11, 32), 127)}


def clean(text: object) -> str:
    """Text safe to print or embed: control characters become U+FFFD."""
    return str(text).translate(_CONTROLS)


MACHINE_FORMATS = {"json", "jsonl", "junit", "sarif", "github"}
# the order the job meets problems in: the submission and the script, its setup, then the phases' inputs
FAMILY_ORDER = ("SB", "JOB", "FS", "ENV", "GPU", "DS", "TOK", "NET", "LOG", "CK", "RPT", "CHAT")


def kills_at_start(finding: Any, registry: Any) -> bool:
    spec = registry.get(finding.code) if registry is not None and finding.code else None
    return bool(getattr(spec, "kills_at_start", False))


def reading_order(findings: list[Any], registry: Any = None) -> list[Any]:
    """How the human formats list findings: errors, then warnings, then info; within a severity,
    what kills the job at start (or keeps it from being accepted) first, then the job's own order."""
    def key(f: Any) -> tuple:
        family = "".join(ch for ch in f.code if ch.isalpha())
        rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
        return (-(f.severity.rank if f.severity else 2), not kills_at_start(f, registry), rank, f.code,
                f.path or "", f.line or 0)

    return sorted(findings, key=key)


def render(fmt: str, result: Any, registry: Any, **options: Any) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    module = importlib.import_module(f"preflight.reporters.{fmt}_format")
    return module.render(result, registry, **options)
