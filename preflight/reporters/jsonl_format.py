"""``--format jsonl``: one JSON object per line: each finding, then each check, then a summary."""

from __future__ import annotations

import json
from typing import Any

from preflight.reporters.json_format import SCHEMA_VERSION


def render(result: Any, registry: Any = None, **_: Any) -> str:
    lines = []
    for check in result.checks:
        for finding in check.findings:
            lines.append({"type": "finding", "stage": result.stage, **finding.to_json()})
    for check in result.checks:
        row = check.to_json()
        row.pop("findings")
        lines.append({"type": "check", "stage": result.stage, **row, "finding_count": len(check.findings)})
    lines.append(
        {
            "type": "summary",
            "schema_version": SCHEMA_VERSION,
            "stage": result.stage,
            "verdict": result.verdict,
            "summary": result.counts(),
        }
    )
    from preflight.reporters import clean_tree

    return "".join(json.dumps(clean_tree(line), default=str) + "\n" for line in lines)
