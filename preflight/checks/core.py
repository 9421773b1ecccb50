"""Checks about preflight itself (suppression comments)."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check


@check("SB900", "unused-suppression", stage="pre", severity="warning", requires=("suppression_usage",))
def unused_suppression(suppression_usage) -> Iterator[Finding]:
    """
    What it checks: ``# preflight: disable=CODE`` comments that silence nothing: the named
    check ran and reported nothing at that place, or the code names no known check.

    Why it matters: a stale suppression hides the next real problem on that line, and a
    misspelt code suppresses nothing while looking as if it did.

    Example:
        # preflight: disable=SB003
        set -euo pipefail        # SB003 (missing-set-e) cannot fire on this script

    How to fix: delete the code from the comment, or the whole comment.
    """
    usage = suppression_usage
    for sup in usage.suppressions:
        for code in sup.codes:
            target = usage.registry.get(code)
            if target is None:
                yield Finding(
                    f"suppression names unknown check {code!r}",
                    path=usage.script,
                    line=sup.line,
                    fix=f"remove {code} from the disable comment (see `preflight list`)",
                )
            elif target.code in usage.ran and target.code not in sup.used:
                scope = "anywhere in this file" if sup.file_wide else f"at line {sup.start}"
                yield Finding(
                    f"unused suppression: {target.code} ({target.name}) reports nothing {scope}",
                    path=usage.script,
                    line=sup.line,
                    fix=f"remove {target.code} from the disable comment",
                )
