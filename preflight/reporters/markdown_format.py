"""``--format markdown``: a report for PR comments and GitHub step summaries."""

from __future__ import annotations

from typing import Any

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥"}


def _cell(text: Any) -> str:
    """User text (messages, paths, log lines) in a table cell: no raw HTML (``</details><img ...>``),
    no column breaks, no controls."""
    import html

    from preflight.reporters import clean

    return html.escape(clean(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run in the block, so the block cannot close it."""
    import re

    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def render(result: Any, registry: Any = None, **_: Any) -> str:
    title = "Preflight" if result.stage == "pre" else "Postflight"
    out = [f"## {title}: {result.verdict.upper()}", ""]
    profile = result.extras.get("profile")
    if profile:
        out += [f"Profile: **{_cell(profile.get('name'))}** ({_cell(profile.get('reason', ''))})", ""]
    phases = result.extras.get("phases")
    if phases:
        from preflight.series import sparklines

        sparks = sparklines(result)
        if sparks:  # the loss of each training phase (postflight with curves)
            out += ["| Phase | Status | Loss | Cause |", "|---|---|---|---|"]
            out += [
                f"| {_cell(p['name'])} | {_cell(p['status'])} | {sparks.get(p['name'], '')} | "
                f"{_cell(p.get('cause') or '')} |"
                for p in phases
            ]
        else:
            out += ["| Phase | Status | Cause |", "|---|---|---|"]
            out += [f"| {_cell(p['name'])} | {_cell(p['status'])} | {_cell(p.get('cause') or '')} |" for p in phases]
        out.append("")
    resume = result.extras.get("resume")
    if resume and resume.get("commands"):
        from preflight.reporters import clean

        exports = [f"export {k}={v}" for k, v in (resume.get("env") or {}).items()]
        commands = [clean(c) for c in exports + list(resume["commands"])]
        fence = _fence(commands)
        out += [f"Resume from **{_cell(resume.get('phase'))}**:", "", fence + "bash", *commands, fence, ""]
        out += [f"- note: {_cell(clean(r))}" for r in resume.get("remarks") or []] + (
            [""] if resume.get("remarks") else []
        )
    findings = result.findings
    if findings:
        out += ["| Severity | Code | Check | Message | Location | Fix |", "|---|---|---|---|---|---|"]
        from preflight.reporters import reading_order

        for f in reading_order(findings, registry):
            out.append(
                f"| {f.severity.value if f.severity else ''} | {_cell(f.code)} | {_cell(f.name)} | "
                f"{_cell(f.message)} | "
                f"{_cell(f.location)} | {_cell(f.fix or '')} |"
            )
        out.append("")
    counts = result.counts()
    out.append("<details><summary>" + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + "</summary>\n")
    out += ["| | Code | Check | Status | Note |", "|---|---|---|---|---|"]
    for c in result.checks:
        out.append(
            f"| {ICONS.get(c.status.value, '')} | {_cell(c.code)} | {_cell(c.name)} | {c.status.value} | "
            f"{_cell(c.reason or '')} |"
        )
    out += ["", "</details>", ""]
    return "\n".join(out)
