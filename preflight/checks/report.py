"""RPT: report.md; eras with a report only (the fact is unavailable otherwise)."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check


@check("RPT001", "report-missing", stage="post", severity="warning")
def report_missing(report) -> Iterator[Finding]:
    """
    What it checks: ``report.md`` in BASE/report/ (or the working dir of ``report generate``).

    Why it matters: ``python -m nanochat.report generate`` is the last step; no report means the
    pipeline did not reach it (or ran it from another directory), and the run's metrics are lost.

    Example:
        BASE/report/report.md   missing

    How to fix: python -m nanochat.report generate   (from the nanochat checkout, same NANOCHAT_BASE_DIR)
    """
    if not report.exists:
        yield Finding(
            f"report.md not found (looked in {', '.join(report.searched)})",
            path=report.searched[0],
            fix="python -m nanochat.report generate  # from the checkout, with the run's NANOCHAT_BASE_DIR",
        )
    elif report.error:
        yield Finding(f"{report.path}: {report.error}", path=report.path, fix="python -m nanochat.report generate")


@check("RPT002", "report-section-missing", stage="post", severity="warning")
def report_section_missing(report, ctx) -> Iterator[Finding]:
    """
    What it checks: every phase that ran (per the phase verdicts) has its ``## Title`` sections
    in report.md, and the file starts with ``# nanochat training report``.

    Why it matters: a missing section means that phase's script did not reach its report call
    (it crashed after training, or ran with dry_run=1).

    Example:
        ## Base model training ... ## Chat SFT   (no ## Midtraining although mid ran)

    How to fix: rerun the phase's evaluation/report step, then ``python -m nanochat.report generate``.
    """
    from preflight.facts import Skip

    if not report.exists:
        raise Skip("no report.md (report-missing reports it)")
    spec = report.profile.data.get("report") or {}
    if report.title != spec.get("title", "# nanochat training report"):
        yield Finding(
            f"{report.path} does not start with {spec.get('title')!r}",
            path=report.path,
            line=1,
            fix="python -m nanochat.report generate",
        )
    phases = ctx.get("phases", None)
    optional = set(spec.get("optional_sections") or [])
    for slug, title, phase in spec.get("sections") or []:
        if slug in optional:
            continue
        v = phases.get(phase) if phases is not None else None
        ran = v is not None and v.status in ("done", "partial")
        if ran and title not in report.sections:
            yield Finding(
                f"{phase} ran but report.md has no '## {title}' section",
                path=report.path,
                fix=f"rerun the step that writes report/{slug}.md, then python -m nanochat.report generate",
            )


@check("RPT003", "report-summary-incomplete", stage="post", severity="warning")
def report_summary_incomplete(report) -> Iterator[Finding]:
    """
    What it checks: the ``## Summary`` table header is exactly the era's (BASE/MID/SFT/RL, or
    BASE/SFT/RL), its cells are finite numbers or '-', CORE has a BASE value, and the last line is
    ``Total wall clock time: XhYm`` (not ``unknown``).

    Why it matters: ``unknown`` wall clock means header.md or a section timestamp is missing
    (report reset not run, or a phase never wrote its section); NaN cells mean a diverged eval.

    Example:
        Total wall clock time: unknown

    How to fix: run ``python -m nanochat.report reset`` once at the start of the pipeline and let
    every phase finish; then ``python -m nanochat.report generate``.
    """
    from preflight.facts import Skip
    from preflight.reportmd import cell_problem

    if not report.exists:
        raise Skip("no report.md (report-missing reports it)")
    spec = report.profile.data.get("report") or {}
    fix = "python -m nanochat.report generate  # after every phase finished"
    if report.summary_line is None:
        yield Finding(f"{report.path} has no '## Summary' section", path=report.path, fix=fix)
        return
    want = spec.get("summary_header")
    if report.table_header is None:
        yield Finding(
            f"{report.path}: the summary has no metrics table", path=report.path, line=report.summary_line, fix=fix
        )
    elif want and report.table_header.strip() != want:
        yield Finding(
            f"summary table columns are {report.columns}, expected {spec.get('summary_columns')}",
            path=report.path,
            line=report.table_header_line,
            fix=fix,
        )
    for metric, row in report.rows.items():
        for col, cell in row.items():
            problem = cell_problem(cell)
            if problem:
                yield Finding(
                    f"summary {metric}/{col}: {problem}", path=report.path, line=report.row_lines[metric], fix=fix
                )
    for metric, col in spec.get("summary_required", [["CORE", "BASE"]]):
        value = report.rows.get(metric, {}).get(col)
        if report.table_header and (value is None or value == "-"):
            hint = " (base_eval did not run or did not report)" if metric == "CORE" else ""
            yield Finding(
                f"summary has no {metric} value for {col}{hint}",
                path=report.path,
                fix="rerun the evaluation that reports it, then python -m nanochat.report generate",
            )
    if report.wall_clock is None:
        yield Finding("no 'Total wall clock time:' line", path=report.path, fix=fix)
    elif report.wall_clock == "unknown":
        yield Finding(
            "Total wall clock time: unknown (header.md's 'Run started:' or a section timestamp is missing)",
            path=report.path,
            line=report.wall_clock_line,
            fix="python -m nanochat.report reset at the start of the pipeline (once), then generate",
        )
