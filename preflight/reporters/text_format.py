"""``--format text``: the human report: errors, warnings, info (``reporters.reading_order``), then a one-line verdict.

The report is built as styled segments; on a colour terminal rich renders them, otherwise
they are joined as plain text, so a CI log or a pipe never pays rich's import (~40 ms).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MARKS = {"error": ("✗", "bold red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}
SECTIONS = {"error": "Errors", "warning": "Warnings", "info": "Info"}
HEADLINE = {"training-not-visible"}  # shown above the run plan, not among the others
STATUS_STYLE = {
    "done": "green",
    "partial": "yellow",
    "failed": "bold red",
    "not-run": "dim",
    "running": "cyan",
    "stopped": "yellow",
}

Segment = tuple[str, str]  # (text, rich style or "")
Line = list[Segment]


def _table(title: str, header: list[str] | None, rows: Iterable[list[Segment]]) -> list[Line]:
    rows = [list(r) for r in rows]
    ncols = max([len(header or [])] + [len(r) for r in rows])
    widths = [0] * ncols
    for r in ([[(h, "") for h in header]] if header else []) + rows:
        for i, (text, _) in enumerate(r):
            widths[i] = max(widths[i], len(text))
    out: list[Line] = [[(title, "bold")]]
    if header:
        out.append([(("  " if i else "") + h.ljust(widths[i]), "dim") for i, h in enumerate(header)])
    for r in rows:
        line: Line = []
        for i, (text, style) in enumerate(r):
            pad = "" if i == len(r) - 1 else " " * (widths[i] - len(text))
            line.append((("  " if i else "") + text, style))
            if pad:
                line.append((pad, ""))
        out.append(line)
    return out


def _finding_lines(f: Any, registry: Any) -> list[Line]:
    from preflight.reporters import kills_at_start

    sev = f.severity.value if f.severity else "error"
    mark, style = MARKS[sev]
    head: Line = [(" ", ""), (mark, style), (" ", ""), (f.code, "bold"), (f" {f.name}", "")]
    if str(f.location):
        head.append((f"  {f.location}", "dim"))
    if kills_at_start(f, registry):
        head.append(("  fatal at start", style))
    out = [head, [(f"     {f.message}", "")]]
    if f.fix:
        out.append([("     ", ""), ("fix:", "green"), (f" {f.fix}", "")])
    return out


def build(
    result: Any, *, verbose: bool = False, elapsed: float | None = None, title: str | None = None, registry: Any = None
) -> list[Line]:
    lines: list[Line] = []
    extras = result.extras
    if title:
        lines.append([(title, "bold")])
    profile = extras.get("profile")
    if profile:
        lines.append([("profile ", ""), (str(profile.get("name")), "bold"), (f": {profile.get('reason', '')}", "")])
    streams = (extras.get("timeline") or {}).get("streams") or {}
    for item in streams.get("also_read") or []:  # the stderr read beside the given .out
        lines.append([("also read ", ""), (str(item.get("path")), "bold"), (f" ({item.get('why')})", "dim")])
    for item in streams.get("refused") or []:
        lines.append([("not read ", ""), (str(item.get("path")), "bold"), (f" ({item.get('why')})", "dim")])
    for assumption in result.display.get("assumptions") or []:  # stated once here, not in every finding
        lines.append([(assumption, "")])

    # findings that qualify everything below them (a hidden launch: the plan and checks miss it) come first
    headline = [f for f in result.findings if f.name in HEADLINE]
    if headline:
        lines += [[], [("Not visible to preflight", "bold yellow")]]
        for f in headline:
            lines += _finding_lines(f, registry)

    plan_rows = result.display.get("plan_rows")
    if plan_rows:
        lines.append([])
        lines += _table("Run plan", None, ([(str(k), "dim"), (str(v), "")] for k, v in plan_rows))

    phases = extras.get("phases")
    if phases:
        from preflight.series import sparklines

        sparks = sparklines(result)
        rows = []
        for p in phases:
            evidence = p.get("evidence") or []
            if isinstance(evidence, list):
                evidence = ", ".join(str(e) for e in evidence[:2])
            status = p.get("status", "")
            row = [(p.get("name", ""), ""), (status, STATUS_STYLE.get(status, ""))]
            if sparks:  # the loss of each training phase, first and last value around its shape
                row.append((sparks.get(p.get("name", ""), ""), "cyan"))
            rows.append(row + [(str(p.get("cause") or ""), ""), (str(evidence), "dim")])
        lines.append([])
        lines += _table("Phases", ["phase", "status"] + (["loss"] if sparks else []) + ["cause", "evidence"], rows)

    smoke = extras.get("chat_smoke")
    if smoke and smoke.get("ok"):
        via = (
            "the bundled GPT"
            if smoke.get("route") == "bundled"
            else f"{smoke.get('checkout')} with {smoke.get('python')}"
        )
        lines += [
            [],
            [
                ("Chat smoke test ", "bold"),
                (
                    f"{smoke.get('phase')} step {smoke.get('step')} via {via}: {smoke.get('said')!r} "
                    f"in {smoke.get('seconds', 0):.1f}s",
                    "",
                ),
            ],
        ]

    from preflight.reporters import reading_order

    section = None
    rest = [f for f in result.findings if f.name not in HEADLINE]
    for f in reading_order(rest, registry):
        sev = f.severity.value if f.severity else "error"
        if sev != section:
            section = sev
            count = sum(1 for g in rest if (g.severity.value if g.severity else "error") == sev)
            lines += [[], [(f"{SECTIONS[sev]} ({count})", "bold")]]
        lines += _finding_lines(f, registry)

    resume = extras.get("resume")
    if resume and resume.get("commands"):
        lines += [[], [(f"Resume from {resume.get('phase')}:", "bold")]]
        if resume.get("assumed"):
            names = ", ".join(resume["assumed"])
            lines.append([(f"  ({names}: not in these logs, taken as done; pass --base-dir to check)", "dim")])
        lines += [[("  first: ", "green"), (fix, "")] for fix in resume.get("fixes") or []]
        lines += [[(f"  export {k}={v}", "")] for k, v in (resume.get("env") or {}).items()]
        lines += [[(f"  {cmd}", "")] for cmd in resume["commands"]]
        for item in resume.get("refused") or []:
            lines.append([(f"  left out (not a plain flag value; set it yourself): {item}", "yellow")])
        lines += [[("  note: ", "dim"), (remark, "")] for remark in resume.get("remarks") or []]

    errors = [c for c in result.checks if c.status.value == "error"]
    if errors:
        lines += [[], [("Checks that could not run (internal errors):", "bold magenta")]]
        lines += [[("  ", ""), (c.code, "magenta"), (f" {c.name}: {c.reason or ''}", "")] for c in errors]
    skipped = [c for c in result.checks if c.status.value == "skip"]
    if skipped and verbose:
        lines += [[], [("Skipped:", "dim")]]
        lines += [[(f"  {c.code} {c.name}: {c.reason or ''}", "dim")] for c in skipped]
    elif skipped:
        reasons: dict[str, list[str]] = {}
        for c in skipped:
            reasons.setdefault(c.reason or "", []).append(c.code)
        parts = [f"{', '.join(codes)} ({reason})" for reason, codes in reasons.items()]
        lines += [[], [(f"skipped: {'; '.join(parts)}", "dim")]]

    lines += [[], verdict_segments(result, elapsed)]
    return lines


def verdict_segments(result: Any, elapsed: float | None = None) -> Line:
    sev = {"error": 0, "warning": 0, "info": 0}
    for f in result.findings:
        sev[f.severity.value if f.severity else "error"] += 1
    counts = result.counts()
    word, style = {
        "pass": ("PASS", "bold green"),
        "warn": ("PASS with warnings", "bold yellow"),
        "fail": ("FAIL", "bold red"),
    }[result.verdict]
    finding_part = (
        ", ".join(f"{n} {k}{'s' if n != 1 and k != 'info' else ''}" for k, n in sev.items() if n) or "no findings"
    )
    incomplete = result.incomplete_phases() if hasattr(result, "incomplete_phases") else []
    if incomplete:
        finding_part += f"; not done: {', '.join(incomplete)}"
    check_part = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    time_part = f" in {elapsed:.2f}s" if elapsed is not None else ""
    return [(word, style), (f": {finding_part} · {len(result.checks)} checks ({check_part}){time_part}", "")]


def verdict_line(result: Any, elapsed: float | None = None) -> str:
    return "".join(text for text, _ in verdict_segments(result, elapsed))


def render_lines(lines: list[Line], *, color: bool = False, width: int | None = None) -> str:
    from preflight.reporters import clean

    lines = [[(clean(text), style) for text, style in line] for line in lines]
    if not color:
        return "".join("".join(text for text, _ in line) + "\n" for line in lines)
    import io

    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=width or 120, highlight=False, soft_wrap=True)
    for line in lines:
        text = Text()
        for segment, style in line:
            text.append(segment, style=style or None)
        console.print(text)
    return buf.getvalue()


def render(
    result: Any,
    registry: Any = None,
    *,
    color: bool = False,
    width: int | None = None,
    verbose: bool = False,
    elapsed: float | None = None,
    title: str | None = None,
    **_: Any,
) -> str:
    return render_lines(
        build(result, verbose=verbose, elapsed=elapsed, title=title, registry=registry), color=color, width=width
    )
