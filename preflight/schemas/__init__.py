"""Data files shipped with nanochat-preflight: JSON Schemas and nanochat-era profiles."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path


def path(name: str) -> Path:
    """Filesystem path of a shipped data file, e.g. ``path('config.schema.json')``. The package is always
    installed as files (never zipped), so its folder is the data's; importlib.resources would cost ~5 ms of
    start-up (it imports zipfile) for the same answer."""
    return Path(__file__).parent / name


@cache
def load_json(name: str) -> dict:
    return json.loads(path(name).read_text(encoding="utf-8"))
