"""``--format markdown``: a report for PR comments and GitHub step summaries."""

from __future__ import annotations

from typing import Any

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥"}


def _cell(text: Any) -> str:
    from preflight.reporters import clean

    return clean(text).replace("|", "\\|").replace("\n", " ")


def render(result: Any, registry: Any = None, **_: Any) -> str:
    title = "Preflight" if result.stage == "pre" else "Postflight"
    out = [f"## {title}: {result.verdict.upper()}", ""]
    profile = result.extras.get("profile")
    if profile:
        out += [f"Profile: **{profile.get('name')}** ({profile.get('reason', '')})", ""]
    phases = result.extras.get("phases")
    if phases:
        from preflight.series import sparklines

        sparks = sparklines(result)
        if sparks:  # the loss of each training phase (postflight with curves)
            out += ["| Phase | Status | Loss | Cause |", "|---|---|---|---|"]
            out += [f"| {p['name']} | {p['status']} | {sparks.get(p['name'], '')} | {_cell(p.get('cause') or '')} |"
                    for p in phases]
        else:
            out += ["| Phase | Status | Cause |", "|---|---|---|"]
            out += [f"| {p['name']} | {p['status']} | {_cell(p.get('cause') or '')} |" for p in phases]
        out.append("")
    resume = result.extras.get("resume")
    if resume and resume.get("commands"):
        out += [f"Resume from **{resume.get('phase')}**:", "", "```bash", *resume["commands"], "```", ""]
    findings = result.findings
    if findings:
        out += ["| Severity | Code | Check | Message | Location | Fix |", "|---|---|---|---|---|---|"]
        from preflight.reporters import reading_order

        for f in reading_order(findings, registry):
            out.append(f"| {f.severity.value if f.severity else ''} | {f.code} | {f.name} | {_cell(f.message)} | "
                       f"{_cell(f.location)} | {_cell(f.fix or '')} |")
        out.append("")
    counts = result.counts()
    out.append("<details><summary>" + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + "</summary>\n")
    out += ["| | Code | Check | Status | Note |", "|---|---|---|---|---|"]
    for c in result.checks:
        out.append(f"| {ICONS.get(c.status.value, '')} | {c.code} | {c.name} | {c.status.value} | {_cell(c.reason or '')} |")
    out += ["", "</details>", ""]
    return "\n".join(out)
