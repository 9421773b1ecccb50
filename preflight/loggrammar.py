"""The log grammar of an era, compiled from its profile's ``log:`` section.

The regexes live in ``preflight/schemas/profiles/*.yaml`` (one home); this module only compiles
them once per profile and answers the questions the segmenter asks: is this line an echo header
of a phase, which phase does it name, does it chain to the previous traceback, is it part of
torchrun's failure summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class LogGrammar:
    profile: str
    header: re.Pattern | None
    header_anchor: bytes  # alternation added to the index's bytes anchor
    phase_words: tuple[tuple[str, re.Pattern], ...] = field(default_factory=tuple)
    chain: re.Pattern | None = None
    chain_anchor: bytes = b""
    torchrun_failed: re.Pattern | None = None
    torchrun_exitcode: re.Pattern | None = None
    torchrun_anchor: bytes = b""
    process_start: re.Pattern | None = None
    process_start_anchor: bytes = b""
    # (source phase, the training phase that loads its checkpoint), from the profile's phases[].source
    consumers: tuple[tuple[str, str], ...] = ()

    def consumer_of(self, source: str) -> str | None:
        """The phase that trains on ``source``'s checkpoint in this era (base -> mid, or sft without mid)."""
        return next((c for s, c in self.consumers if s == source), None)

    def header_phase(self, text: str) -> str | None:
        """The phase an echo header names ("[3/5] Midtraining ..." -> mid), or None."""
        if self.header is None or len(text) > 200:
            return None
        m = self.header.match(text)
        if not m:
            return None
        return self.phase_named(m.group("title"))

    def phase_named(self, title: str) -> str | None:
        best: tuple[int, str] | None = None
        for phase, rx in self.phase_words:
            mw = rx.search(title)
            if mw and (best is None or mw.start() < best[0]):
                best = (mw.start(), phase)
        return best[1] if best else None

    def anchors(self) -> bytes:
        return b"|".join(
            a for a in (self.header_anchor, self.chain_anchor, self.torchrun_anchor, self.process_start_anchor) if a
        )


def _rx(text: Any, flags: int = 0) -> re.Pattern | None:
    if not text or not isinstance(text, str):
        return None
    try:
        return re.compile(text, flags)
    except re.error:
        return None  # a broken user profile must not take postflight down; the grammar just lacks it


def _anchor(text: Any) -> bytes:
    if not text or not isinstance(text, str):
        return b""
    try:
        re.compile(text.encode())
    except re.error:
        return b""
    return text.encode()


@lru_cache(maxsize=16)
def _compile(name: str, log: tuple, consumers: tuple = ()) -> LogGrammar:
    data = dict(log)
    words = data.get("phase_words") or ()
    return LogGrammar(
        profile=name,
        header=_rx(data.get("phase_header")),
        header_anchor=_anchor(data.get("phase_header_anchor")),
        phase_words=tuple((phase, rx) for phase, pattern in words if (rx := _rx(pattern, re.I)) is not None),
        chain=_rx(data.get("chain")),
        chain_anchor=_anchor(data.get("chain_anchor")),
        torchrun_failed=_rx(data.get("torchrun_failed")),
        torchrun_exitcode=_rx(data.get("torchrun_exitcode")),
        torchrun_anchor=_anchor(data.get("torchrun_anchor")),
        process_start=_rx(data.get("process_start")),
        process_start_anchor=_anchor(data.get("process_start_anchor")),
        consumers=consumers,
    )


def grammar_for(profile: Any = None) -> LogGrammar:
    """The grammar of ``profile`` (a Profile, or None for the classic default)."""
    if profile is None:
        from preflight.profiles import load_profile

        profile = load_profile("classic")
    data = getattr(profile, "data", None) or {}
    log = data.get("log") or {}
    frozen = tuple((k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in sorted(log.items()))
    phases = data.get("phases") or {}
    consumers = tuple(
        (spec["source"], name)
        for name, spec in phases.items()
        if isinstance(spec, dict) and isinstance(spec.get("source"), str) and spec.get("checkpoint_dir")
    )
    return _compile(getattr(profile, "name", "classic"), frozen, consumers)
