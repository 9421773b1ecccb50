"""Reporters turn a RunResult into text. Each format lives in its own module, imported on use.

Machine formats (json, jsonl, junit, sarif, github) are a versioned, committed surface;
the human formats (text, markdown, html) are free to change.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

FORMATS = ("text", "json", "jsonl", "junit", "sarif", "github", "markdown", "html")
CURVE_FORMATS = {"text", "markdown", "html"}  # formats that draw the training curves (postflight)


def wants_curves(fmt: str, environ: Any = None) -> bool:
    """Collect the training curves for this format? github too when it writes a step summary (markdown)."""
    import os

    env = os.environ if environ is None else environ
    return fmt in CURVE_FORMATS or (fmt == "github" and bool(env.get("GITHUB_STEP_SUMMARY")))


# C0 controls (but tab and newline), DEL, C1 controls, bidi embeddings/overrides/isolates (Trojan Source),
# zero-width and line/paragraph separators, and lone surrogates (undecodable file-name bytes under
# surrogateescape): a message or path quoted from a log or a file name must not drive the reader's
# terminal, reorder what a reviewer sees, break XML 1.0, or make the output unencodable. Each is shown
# as a visible escape (``\x1b``, ``\u202e``) so the reader sees that it was there.
_ESCAPED = [
    *range(0, 9),
    *range(11, 32),
    *range(127, 160),
    0x061C,
    0x200B,
    0x200E,
    0x200F,
    *range(0x2028, 0x202F),
    *range(0x2066, 0x206A),
    0xFEFF,
    *range(0xD800, 0xE000),
]
_CONTROLS = {c: (f"\\x{c:02x}" if c < 256 else f"\\u{c:04x}") for c in _ESCAPED}


def clean(text: object) -> str:
    """Text safe to print or embed: secrets masked; controls, bidi overrides and lone surrogates become
    visible escapes."""
    from preflight.redact import redact

    return redact(str(text)).translate(_CONTROLS)


def clean_tree(value: Any) -> Any:
    """``clean`` applied to every string (keys included) of a JSON-like document."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_tree(k): clean_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_tree(v) for v in value]
    return value


# a GitHub runner reads a workflow command from any line of stdout or stderr that starts, after
# leading blanks, with "::" (or the legacy "##[")
_COMMAND_LINE = re.compile(r"^([ \t]*)(::|##\[)", re.M)


def defuse_commands(text: str) -> str:
    """No line that we did not write as a command starts a workflow command: ``::stop-commands::`` or
    ``::error title=...::`` carried in a file name or a log line is shown as ``\\::...``."""
    return _COMMAND_LINE.sub(r"\1\\\2", text) if ("::" in text or "##[" in text) else text


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
        return (
            -(f.severity.rank if f.severity else 2),
            not kills_at_start(f, registry),
            rank,
            f.code,
            f.path or "",
            f.line or 0,
        )

    return sorted(findings, key=key)


def render(fmt: str, result: Any, registry: Any, **options: Any) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    module = importlib.import_module(f"preflight.reporters.{fmt}_format")
    text = module.render(result, registry, **options)
    # the github format escapes its own data; every other one may quote a line that starts with "::"
    return text if fmt == "github" else defuse_commands(text)
