"""Documentation generated from the registry: docs/checks.md, `preflight explain`, `preflight list -f markdown`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from preflight.registry import DOC_SECTIONS, doc_sections


def checks_table(specs: Iterable[Any]) -> str:
    rows = ["| Code | Name | Stage | Severity | Cost | What it checks |", "|---|---|---|---|---|---|"]
    for s in specs:
        anchor = f"{s.code.lower()}-{s.name}"
        rows.append(
            f"| [{s.code}](#{anchor}) | {s.name} | {s.stage} | {s.severity.value} | {s.cost} | "
            f"{s.summary.replace('|', '/')} |"
        )
    return "\n".join(rows) + "\n"


def explain(spec: Any) -> str:
    sections = doc_sections(spec.doc)
    out = [
        f"{spec.code} {spec.name}  ({spec.stage}-flight, default severity {spec.severity.value}, cost {spec.cost})",
        "",
    ]
    for title in DOC_SECTIONS:
        body = sections.get(title, "(missing)")
        out += [f"{title}:", *("  " + line if line else "" for line in body.splitlines()), ""]
    out.append(f"Requires: {', '.join(spec.requires) or 'nothing'}   Applies to: {', '.join(spec.applies_to)}")
    return "\n".join(out) + "\n"


def generate(registry: Any) -> str:
    specs = list(registry)
    out = [
        "# Checks",
        "",
        "Generated from the check registry by `preflight docs`; do not edit by hand.",
        "Select checks by code, prefix or name (`--select SB,CK001 --ignore missing-set-e`);",
        "re-grade with `severity:` in preflight.yaml; silence one line of a script with",
        "`# preflight: disable=CODE`.",
        "",
        checks_table(specs),
    ]
    for s in specs:
        sections = doc_sections(s.doc)
        out += [
            f"## {s.code} {s.name}",
            "",
            f"Stage: `{s.stage}` · default severity: `{s.severity.value}` · cost: `{s.cost}` · "
            f"requires: {', '.join(f'`{r}`' for r in s.requires) or 'nothing'} · applies to: {', '.join(s.applies_to)}",
            "",
        ]
        for title in DOC_SECTIONS:
            body = sections.get(title, "")
            if title == "Example" and body:
                lines = body.splitlines()
                body = "```\n" + "\n".join(ln[4:] if ln.startswith("    ") else ln for ln in lines) + "\n```"
            out += [f"**{title}**", "", body, ""]
    return "\n".join(out).rstrip() + "\n"
