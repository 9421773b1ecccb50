"""``--format junit``: one testcase per check (classname ``preflight.<stage>.<family>``)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr as _quoteattr

from preflight.model import Status
from preflight.reporters import clean


def quoteattr(text: str) -> str:
    return _quoteattr(clean(text))  # XML 1.0 has no control characters


def escape(text: str) -> str:
    return _escape(clean(text))


def _finding_text(check: Any) -> str:
    return "\n".join(
        f"[{f.severity.value}] {f.code} {f.message}"
        + (f" ({f.location})" if str(f.location) else "")
        + (f"\n  fix: {f.fix}" if f.fix else "")
        for f in check.findings
    )


def render(result: Any, registry: Any = None, **_: Any) -> str:
    counts = {"tests": len(result.checks), "failures": 0, "errors": 0, "skipped": 0}
    cases = []
    total = 0.0
    for check in result.checks:
        seconds = check.duration_ms / 1000.0
        total += seconds
        name = f"{check.code} {check.name}"
        classname = quoteattr(f"preflight.{result.stage}.{check.family or check.code[:2]}")
        head = f'    <testcase classname={classname} name={quoteattr(name)} time="{seconds:.3f}"'
        text = _finding_text(check)
        failing = [f for f in check.findings if f.severity and f.severity.rank >= result.fail_on.rank]
        if check.status is Status.ERROR:
            counts["errors"] += 1
            body = f'      <error message={quoteattr(check.reason or "error")} type="error"/>\n'
        elif check.status is Status.SKIP:
            counts["skipped"] += 1
            body = f"      <skipped message={quoteattr(check.reason or 'skipped')}/>\n"
        elif failing:
            counts["failures"] += 1
            first = failing[0]
            body = (
                f"      <failure message={quoteattr(first.message)} type={quoteattr(first.severity.value)}>"
                f"{escape(text)}</failure>\n"
            )
        elif text:
            body = f"      <system-out>{escape(text)}</system-out>\n"
        else:
            body = ""
        cases.append(head + (">\n" + body + "    </testcase>" if body else "/>"))
    suite = (
        f'  <testsuite name="preflight.{result.stage}" tests="{counts["tests"]}" failures="{counts["failures"]}" '
        f'errors="{counts["errors"]}" skipped="{counts["skipped"]}" time="{total:.3f}">'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="nanochat-preflight" tests="{counts["tests"]}" failures="{counts["failures"]}" '
        f'errors="{counts["errors"]}" skipped="{counts["skipped"]}">\n'
        + suite
        + "\n"
        + "\n".join(cases)
        + "\n  </testsuite>\n</testsuites>\n"
    )
