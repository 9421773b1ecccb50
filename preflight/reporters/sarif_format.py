"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (stable ruleIds = check codes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from preflight import __version__

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _uri(path: str) -> str:
    """A URI reference (RFC 3986): relative to the working directory when inside it, else file://;
    percent-encoded from the file name's bytes (spaces, '#', '%', undecodable bytes)."""
    from urllib.parse import quote_from_bytes

    p = Path(path)
    try:
        rel = p.resolve().relative_to(Path.cwd().resolve())
        return quote_from_bytes(os.fsencode(rel.as_posix()), safe="/")
    except (ValueError, OSError, RuntimeError):
        if not p.is_absolute():
            return quote_from_bytes(os.fsencode(p.as_posix()), safe="/")
        return "file://" + quote_from_bytes(os.fsencode(p.as_posix()), safe="/")


def render(result: Any, registry: Any, **_: Any) -> str:
    from preflight.registry import doc_sections

    ran = {c.code for c in result.checks}
    specs = [s for s in registry if s.code in ran]
    index = {s.code: i for i, s in enumerate(specs)}
    rules = []
    for spec in specs:
        sections = doc_sections(spec.doc)
        rules.append(
            {
                "id": spec.code,
                "name": spec.name,
                "shortDescription": {"text": spec.summary or spec.name},
                "fullDescription": {"text": sections.get("Why it matters", spec.summary or spec.name)},
                "help": {
                    "text": sections.get("How to fix", ""),
                    "markdown": "\n\n".join(f"**{k}**: {v}" for k, v in sections.items()),
                },
                "helpUri": spec.help_uri,
                "defaultConfiguration": {"level": LEVELS[spec.severity.value]},
                "properties": {"tags": [spec.family, spec.stage]},
            }
        )
    results = []
    for check in result.checks:
        for f in check.findings:
            item: dict[str, Any] = {
                "ruleId": f.code,
                "ruleIndex": index.get(f.code, 0),
                "level": LEVELS[(f.severity.value if f.severity else "error")],
                "message": {"text": f.message + (f" Fix: {f.fix}" if f.fix else "")},
            }
            if f.path:
                region = {"startLine": int(f.line)} if f.line else None
                phys: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.path)}}
                if region:
                    phys["region"] = region
                item["locations"] = [{"physicalLocation": phys}]
            results.append(item)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nanochat-preflight",
                        "version": __version__,
                        "informationUri": "https://github.com/nanochat-preflight/nanochat-preflight",
                        "rules": rules,
                    }
                },
                "results": results,
                "originalUriBaseIds": {"SRCROOT": {"uri": Path(os.getcwd()).resolve().as_uri().rstrip("/") + "/"}},
            }
        ],
    }
    from preflight.reporters import clean_tree

    return json.dumps(clean_tree(doc), indent=2) + "\n"
