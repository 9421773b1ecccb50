"""Data files shipped with nanochat-preflight: JSON Schemas and nanochat-era profiles."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """Filesystem path of a shipped data file, e.g. ``path('config.schema.json')``."""
    return Path(str(resources.files(__name__).joinpath(name)))


@cache
def load_json(name: str) -> dict:
    return json.loads(path(name).read_text(encoding="utf-8"))
