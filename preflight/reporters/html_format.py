"""``--format html``: the run report as one self-contained page (inline CSS and SVG, no script).

What a person wants first after a long job: the verdict, each phase's status with its cause and
timing, and per training phase its curves (loss raw and smoothed, validation, lr multiplier, tok/s,
MFU) with the checkpoints and the step where it stopped; then the findings, their fixes and the
resume commands, and the job's facts. Everything quoted from logs, file names or messages is
escaped, and a Content-Security-Policy forbids scripts and every request: the page works (and is
safe) on an air-gapped cluster.
"""

from __future__ import annotations

import re
from typing import Any

from preflight.reporters.svg import Chart, Line, Marker, esc, timeline
from preflight.reporters.svg import render as svg
from preflight.units import duration

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:18px;
color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 6px} h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 4px} code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f6f8fa;padding:8px 10px;overflow-x:auto;border-radius:6px}
table{border-collapse:collapse;margin:6px 0} th,td{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
th{color:#57606a;font-weight:600;border-bottom:1px solid #d0d7de} td{border-bottom:1px solid #eaeef2}
.verdict{display:inline-block;padding:3px 12px;border-radius:6px;color:#fff;font-weight:700;font-size:16px}
.v-pass{background:#1a7f37} .v-warn{background:#9a6700} .v-fail{background:#cf222e}
.s-done{color:#1a7f37;font-weight:600} .s-failed{color:#cf222e;font-weight:700} .s-partial{color:#9a6700;font-weight:700}
.s-running{color:#0969da;font-weight:600} .s-stopped{color:#9a6700;font-weight:700} .s-not-run{color:#6e7781}
.ev{color:#57606a;font-size:12.5px} .muted{color:#6e7781}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:6px 14px}
svg.chart,svg.timeline{width:100%;height:auto;background:#fff}
svg .ct{font-size:11px;font-weight:600;fill:#24292f} svg .tick{font-size:9.5px;fill:#57606a} svg .empty{font-size:11px;fill:#8c959f}
svg .plot{fill:#fbfcfd;stroke:#d0d7de} svg .grid{stroke:#eaeef2}
svg polyline{fill:none;stroke-width:1.2} svg .band{stroke:none;opacity:.28}
.raw{stroke:#8fb8e8} .band.raw{fill:#8fb8e8} .smooth{stroke:#0550ae;stroke-width:1.8!important}
.val{stroke:#8250df} circle.val{fill:#8250df;stroke:none} .lrm{stroke:#bf8700}
.tok{stroke:#1a7f37} .band.tok{fill:#1a7f37} .mfu{stroke:#bc4c00}
svg .ckpt{stroke:#1a7f37;stroke-dasharray:3 3} svg .stop{stroke:#cf222e;stroke-width:1.6}
svg .stoplabel{font-size:10px;fill:#cf222e;font-weight:600} svg .nan{stroke:#cf222e;stroke-dasharray:2 2}
svg .plan{stroke:#8c959f;stroke-dasharray:1 3}
svg .bar.done{fill:#4ac26b} svg .bar.failed{fill:#ff8182} svg .bar.partial{fill:#d4a72c}
svg .bar.running{fill:#54aeff} svg .bar.stopped{fill:#d4a72c} svg .bar.not-run{fill:#d0d7de}
.f-error{color:#cf222e;font-weight:700} .f-warning{color:#9a6700;font-weight:700} .f-info{color:#0969da}
.finding{margin:8px 0 10px} .fix{color:#1a7f37} section.phase-chart{margin-bottom:18px}
"""


def render(
    result: Any, registry: Any = None, *, title: str | None = None, elapsed: float | None = None, **_: Any
) -> str:
    from preflight.reporters.text_format import verdict_line

    extras, series = result.extras, result.display.get("series")
    heading = title or ("Postflight" if result.stage == "post" else "Preflight")
    body = [
        f"<h1>{esc(heading)}</h1>",
        f'<p><span class="verdict v-{esc(result.verdict)}">{esc(result.verdict.upper())}</span> '
        f'<span id="verdict-line">{esc(verdict_line(result, elapsed))}</span></p>',
    ]
    profile = extras.get("profile")
    if profile:
        body.append(f"<p>profile <b>{esc(profile.get('name'))}</b>: {esc(profile.get('reason', ''))}</p>")
    body += _streams((extras.get("timeline") or {}).get("streams") or {})
    body += _phases(extras.get("phases") or [], series, extras.get("timeline") or {})
    if series is not None and series.phases:
        body.append("<h2>Training curves</h2>")
        body += [_phase_charts(ps) for ps in series.phases]
    body += _findings(result)
    resume = extras.get("resume") or {}
    if resume.get("commands"):
        body.append(f"<h2>Resume from {esc(resume.get('phase'))}</h2>")
        if resume.get("note"):
            body.append(f'<p class="muted">{esc(resume["note"])}</p>')
        lines = [f"export {k}={v}" for k, v in (resume.get("env") or {}).items()] + list(resume["commands"])
        body.append('<pre id="resume">' + "\n".join(esc(c) for c in lines) + "</pre>")
    body += _job(extras.get("job"), result.display.get("job_raw") or {})
    body += _checks(result)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(heading)}: {esc(result.verdict.upper())}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _streams(streams: dict) -> list[str]:
    """Which logs were read beside the ones given, and where a missing traceback would be (the timeline)."""
    out = [
        f'<p class="muted">also read {esc(s.get("path"))} ({esc(s.get("why"))})</p>'
        for s in streams.get("also_read") or []
    ]
    if streams.get("stderr_hint"):
        out.append(f'<p class="muted">{esc(streams["stderr_hint"])}</p>')
    return out


def _span(span: dict) -> str:
    """ "run.out:10-48" (or both ends in full when they are in two logs): where a phase is in the logs."""
    start, end = span.get("start"), span.get("end")
    if not start:
        return ""
    path, _, a = start.rpartition(":")
    epath, _, b = (end or "").rpartition(":")
    name = path.rsplit("/", 1)[-1]
    return f"{name}:{a}-{b}" if epath == path else f"{start} - {end}"


def _phases(phases: list[dict], series: Any, tl: dict) -> list[str]:
    if not phases:
        return []
    from preflight.series import phase_timeline

    times = {name: (a, b) for name, a, b in phase_timeline(series)} if series is not None else {}
    spans = {s.get("name"): s for s in tl.get("phases") or []}
    out = [
        "<h2>Phases</h2>",
        '<table id="phases"><tr><th>phase</th><th>status</th><th>cause</th>'
        "<th>duration</th><th>in the log</th><th>evidence</th></tr>",
    ]
    rows = []
    for p in phases:
        status = p.get("status", "")
        if not p.get("expected", True) and status == "not-run":
            status_text = "not-run (not planned)"
        else:
            status_text = status
        a, b = times.get(p.get("name"), (None, None))
        took = duration(b - a) if a is not None and b is not None else ""
        evidence = ", ".join(str(e) for e in (p.get("evidence") or [])[:3])
        out.append(
            f'<tr data-phase="{esc(p.get("name"))}"><td><b>{esc(p.get("name"))}</b></td>'
            f'<td class="s-{esc(status)}">{esc(status_text)}</td><td>{esc(p.get("cause") or "")}</td>'
            f'<td>{esc(took)}</td><td class="ev">{esc(_span(spans.get(p.get("name")) or {}))}</td>'
            f'<td class="ev">{esc(evidence)}</td></tr>'
        )
        if a is not None:
            rows.append((p.get("name"), a, b, status))
    out.append("</table>")
    if rows:
        out += [
            '<h3>Timeline <span class="muted">(training time per phase, from its step lines: dt x steps)</span></h3>',
            f'<div style="max-width:640px">{timeline(rows)}</div>',
        ]
    return out


def _phase_charts(ps: Any) -> str:
    from preflight.series import downsample, smooth

    markers = [Marker(float(s), "ckpt", f"checkpoint step {s}") for s in ps.checkpoints]
    last = ps.last_step
    if ps.status in ("failed", "partial", "running", "stopped") and last is not None:
        word = "running: step" if ps.status == "running" else "stopped at step"
        markers.append(Marker(float(last), "stop", f"{word} {last}" + (f" of {ps.planned}" if ps.planned else "")))
    if ps.nan_step is not None:
        markers.append(Marker(float(ps.nan_step), "nan", f"NaN from step {ps.nan_step}"))
    x_max = float(ps.planned) if ps.planned else None

    xs, ys = ps.column("loss")
    loss = downsample(xs, ys)
    lines = []
    if loss:
        bx = [b.x for b in loss]
        lines.append(Line(bx, [b.mean for b in loss], "raw", [b.lo for b in loss], [b.hi for b in loss]))
        # the EMA of the bucket means (of the points themselves up to DISPLAY_POINTS): cheap at any log size
        lines.append(Line(bx, smooth([b.mean for b in loss]), "smooth"))
    charts = [Chart("loss (raw band, smoothed line)", lines, markers, x_max)]
    kind, vx, vy = ps.val()
    val = downsample(vx, vy)  # one every 250 steps: a long run has thousands
    charts.append(
        Chart(
            f"validation {kind}",
            [Line([b.x for b in val], [b.mean for b in val], "val", dots=len(val) < 3)] if val else [],
            markers,
            x_max,
            empty="no validation line logged",
        )
    )
    for name, css, label in (("lrm", "lrm", "lr multiplier"), ("tok_per_sec", "tok", "tok/s"), ("mfu", "mfu", "MFU %")):
        cx, cy = ps.column(name)
        b = downsample(cx, cy)
        band = name == "tok_per_sec" and len(b) > 1
        line = Line(
            [k.x for k in b],
            [k.mean for k in b],
            css,
            [k.lo for k in b] if band else None,
            [k.hi for k in b] if band else None,
        )
        charts.append(Chart(label, [line] if b else [], markers, x_max, empty=f"no {label} in the step lines"))

    facts = [f'<span class="s-{esc(ps.status)}">{esc(ps.status or "unknown")}</span>']
    if ps.cause:
        facts.append(esc(ps.cause))
    facts.append(f"{ps.step_lines:,} step lines" + (f", last step {last}" if last is not None else ""))
    if ps.planned:
        facts.append(f"planned {ps.planned:,}")
    if ps.nan_step is not None:
        facts.append(f'<span class="s-failed">loss not a number from step {ps.nan_step}</span>')
    if len(ps.attempts) > 1:
        facts.append(f"{len(ps.attempts)} process runs")
    if any(a.sampled for a in ps.attempts):
        facts.append("curves from evenly spaced samples of the step lines (large log)")
    if not xs:
        facts.append("no training step logged")
    return (
        f'<section class="phase-chart" data-phase="{esc(ps.phase)}" id="phase-{esc(ps.phase)}">'
        f"<h3>{esc(ps.phase)}</h3><p>{' · '.join(facts)}</p>"
        f'<div class="charts">{"".join(svg(c) for c in charts)}</div></section>'
    )


def _findings(result: Any) -> list[str]:
    findings = sorted(result.findings, key=lambda f: (-(f.severity.rank if f.severity else 2), f.code))
    if not findings:
        return ["<h2>Findings</h2>", "<p>No findings.</p>"]
    out = [f"<h2>Findings ({len(findings)})</h2>", '<div id="findings">']
    for f in findings:
        sev = f.severity.value if f.severity else "error"
        loc = f' <span class="ev">{esc(f.location)}</span>' if str(f.location) else ""
        out.append(
            f'<div class="finding"><span class="f-{esc(sev)}">{esc(sev)}</span> <b>{esc(f.code)}</b> '
            f"{esc(f.name)}{loc}<br>{esc(f.message)}"
            + (f'<br><span class="fix">fix:</span> {esc(f.fix)}' if f.fix else "")
            + "</div>"
        )
    out.append("</div>")
    return out


_GPU_RE = re.compile(r"gres/gpu(?::[\w.-]+)?=(\d+)")


def _job(job: dict | None, raw: dict) -> list[str]:
    if not job:
        return []
    rows = [
        ("job", job.get("job_id")),
        ("name", job.get("name")),
        ("state", job.get("state")),
        ("exit code", job.get("exit_code")),
        ("reason", job.get("reason")),
    ]
    elapsed, limit = job.get("elapsed_s"), job.get("time_limit_s")
    if elapsed is not None:
        share = f" ({elapsed / limit:.0%} of the limit)" if limit else ""
        rows.append(("elapsed / limit", f"{duration(elapsed)} / {duration(limit) if limit else '—'}{share}"))
    nodes = raw.get("NumNodes") or raw.get("NNodes")
    tres = " ".join(str(raw.get(k) or "") for k in ("AllocTRES", "TRES", "ReqTRES", "TresPerNode"))
    gpus = _GPU_RE.search(tres)
    rows += [
        ("nodes", nodes),
        ("GPUs", gpus.group(1) if gpus else None),
        ("start", job.get("start")),
        ("end", job.get("end")),
        ("source", job.get("source")),
    ]
    out = ["<h2>Job</h2>", '<table id="job">']
    out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v not in (None, "")]
    return out + ["</table>"]


def _checks(result: Any) -> list[str]:
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    out = [
        f"<details><summary>{len(result.checks)} checks: {esc(counts)}</summary><table>"
        "<tr><th>code</th><th>check</th><th>status</th><th>note</th></tr>"
    ]
    out += [
        f"<tr><td>{esc(c.code)}</td><td>{esc(c.name)}</td><td>{esc(c.status.value)}</td>"
        f"<td>{esc(c.reason or '')}</td></tr>"
        for c in result.checks
    ]
    return out + ["</table></details>"]
