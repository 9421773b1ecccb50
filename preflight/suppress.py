"""Inline suppressions in batch scripts: ``# preflight: disable=SB003[,GPU001]``.

A comment on its own line applies to the next command (a command continued with ``\\``
spans all its lines; ``#SBATCH`` directives count as commands here, so a directive can be
silenced). A trailing comment applies to its own command. A comment before the first shell
command (directives are not shell commands) applies to the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DISABLE_RE = re.compile(r"#\s*preflight:\s*disable\s*=\s*([A-Za-z0-9_,\- ]+)")


@dataclass
class Suppression:
    """A ``# preflight: disable=...`` comment and the lines it covers."""

    line: int  # where the comment is
    codes: tuple[str, ...]
    file_wide: bool
    start: int = 0  # lines it covers (inclusive), for next-command suppressions
    end: int = 0
    used: set[str] = field(default_factory=set)


def parse_suppressions(text: str) -> list[Suppression]:
    lines = text.splitlines()
    out: list[Suppression] = []
    pending: list[Suppression] = []
    seen_command = False
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        lineno = i + 1
        match = DISABLE_RE.search(raw)
        codes = (
            tuple(
                c.strip().upper() if re.match(r"^[A-Za-z]{2,4}\d{3}$", c.strip()) else c.strip().lower()
                for c in match.group(1).split(",")
                if c.strip()
            )
            if match
            else ()
        )
        if not stripped:
            i += 1
            continue
        if stripped.startswith("#") and not stripped.upper().startswith("#SBATCH"):
            if codes:
                sup = Suppression(lineno, codes, file_wide=not seen_command)
                out.append(sup)
                if not sup.file_wide:
                    pending.append(sup)
            i += 1
            continue
        # a command (or directive): find its extent across backslash continuations
        start = lineno
        j = i
        while lines[j].rstrip().endswith("\\") and j + 1 < len(lines):
            j += 1
        end = j + 1
        for sup in pending:
            sup.start, sup.end = start, end
        pending = []
        if codes:  # trailing comment on a command line
            sup = Suppression(lineno, codes, file_wide=False, start=start, end=end)
            out.append(sup)
        if not stripped.upper().startswith("#SBATCH"):
            seen_command = True
        i = j + 1
    return out


def suppression_for(sups: list[Suppression], code: str, name: str, line: int | None) -> Suppression | None:
    for sup in sups:
        if code not in sup.codes and name not in sup.codes:
            continue
        if sup.file_wide:
            return sup
        if line is not None and sup.start <= line <= sup.end:
            return sup
    return None
