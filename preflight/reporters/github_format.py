"""``--format github``: workflow-command annotations (capped) plus a step summary."""

from __future__ import annotations

import os
from typing import Any

MAX_ANNOTATIONS = 50
COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    from preflight.reporters import clean

    # the workflow-command spec: %, CR and LF in data; then clean() (its escapes carry no %)
    return clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _append_summary(path: str, text: str) -> None:
    """Append to the step summary file; a FIFO or device there (a blocked open) is refused, not waited on."""
    import stat

    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace", closefd=False) as fh:
            fh.write(text)
    finally:
        os.close(fd)


def render(result: Any, registry: Any = None, *, max_annotations: int = MAX_ANNOTATIONS, **_: Any) -> str:
    lines = []
    findings = sorted(result.findings, key=lambda f: -(f.severity.rank if f.severity else 2))
    for f in findings[:max_annotations]:
        props = []
        if f.path:
            props.append(f"file={_escape_prop(os.path.relpath(f.path) if os.path.isabs(f.path) else f.path)}")
        if f.line:
            props.append(f"line={int(f.line)}")
        props.append(f"title={_escape_prop(f'{f.code} {f.name}')}")
        message = f.message + (f"\nFix: {f.fix}" if f.fix else "")
        lines.append(
            f"::{COMMANDS[f.severity.value if f.severity else 'error']} {','.join(props)}::{_escape_data(message)}"
        )
    hidden = len(findings) - max_annotations
    if hidden > 0:
        lines.append(f"::notice title=nanochat-preflight::{hidden} more findings not shown (see the step summary)")
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        from preflight.reporters.markdown_format import render as markdown

        try:
            _append_summary(summary_path, markdown(result, registry))
        except OSError as exc:
            lines.append(
                f"::warning title=nanochat-preflight::cannot write GITHUB_STEP_SUMMARY: {_escape_data(str(exc))}"
            )
    counts = result.counts()
    lines.append(
        f"preflight {result.stage}: {result.verdict} ({len(result.findings)} findings; "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        + ")"
    )
    return "\n".join(lines) + "\n"
