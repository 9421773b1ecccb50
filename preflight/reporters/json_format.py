"""``--format json``: one document, validated by schemas/results.schema.json."""

from __future__ import annotations

import json
from typing import Any

from preflight import __version__

SCHEMA_VERSION = "1.0"


def document(result: Any, registry: Any = None, **_: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nanochat-preflight", "version": __version__},
        "stage": result.stage,
        "verdict": result.verdict,
        "fail_on": result.fail_on.value,
        "summary": result.counts(),
        "checks": [c.to_json() for c in result.checks],
    }
    doc.update(result.extras)
    return doc


def render(result: Any, registry: Any = None, **options: Any) -> str:
    from preflight.reporters import clean_tree

    return json.dumps(clean_tree(document(result, registry)), indent=2, default=str) + "\n"
