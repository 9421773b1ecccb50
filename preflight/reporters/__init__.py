"""Reporters turn a RunResult into text. Each format lives in its own module, imported on use.

Machine formats (json, jsonl, junit, sarif, github) are a versioned, committed surface;
the human formats (text, markdown) are free to change.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = ("text", "json", "jsonl", "junit", "sarif", "github", "markdown")
MACHINE_FORMATS = {"json", "jsonl", "junit", "sarif", "github"}


def render(fmt: str, result: Any, registry: Any, **options: Any) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    module = importlib.import_module(f"preflight.reporters.{fmt}_format")
    return module.render(result, registry, **options)
