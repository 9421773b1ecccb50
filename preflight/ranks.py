"""Which rank and node failed first in a distributed job, and which failures only followed it.

When one rank of a multi-GPU or multi-node job dies (out of memory, a bad batch, SIGKILL), the
others do not stop at once: they wait in their next collective until the backend notices. With
NCCL they sit in the watchdog until its timeout (10-30 min) and then abort; with gloo they get
"Connection closed by peer" at once; torchrun's agents lose their rendezvous store. Those are
consequences. This module reads the log lines once and separates the root failure (the first rank
that failed for a reason of its own) from the cascade (ranks that failed because another did), and
maps ranks to nodes from what the launchers print:

- ``[rankN]:`` / ``[defaultN]:`` prefixes (torch's per-rank output, torchrun's ``--tee``), ``[Rank N]`` in NCCL watchdog lines;
- torchrun's ``Root Cause (first observed failure)`` block: ``host``, ``rank``, ``exitcode``;
- srun's ``srun: error: NODE: task T: Exited with exit code C`` / ``Killed`` lines, and
  slurmstepd's ``Detected N oom-kill event(s) in StepId=J.S`` lines.

The patterns are data (``RULES``); nothing here depends on the trainer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from preflight.loglines import RANK_PREFIX_RE
from preflight.units import parse_int

_NCCL_RANK = re.compile(r"\[(?:PG [^\]]*?)?Rank (\d+)\]")
# a failure of this rank that another rank caused: the collective it waited in broke or timed out
CASCADE = re.compile(
    r"Watchdog caught collective operation timeout|Process group watchdog thread terminated|"
    r"watchdog got stuck|NCCL communicator was aborted|Connection closed by peer|Connection reset by peer|"
    r"remote worker crashing|Some NCCL operations have failed or timed out|ncclRemoteError|"
    r"DistBackendError|Exception \(either an error or timeout\) detected by watchdog",
    re.I,
)
# torchrun's agent losing its rendezvous store after another node's agent exited: never a root cause
AGENT_NOISE = re.compile(
    r"RendezvousConnectionError|failed to shutdown the rendezvous|Error waiting on exit barrier|"
    r"TCPStore\.cpp:\d+\] \[c10d\] (?:recv|send)|DistNetworkError: Failed to recv",
    re.I,
)
# the line a traceback ends with: `ValueError: ...`, or a bare dotted name (`bdb.BdbQuit`, `KeyboardInterrupt`)
_EXC_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b|[A-Za-z_][\w.]*\.\w*Error\b|[A-Za-z_][\w.]*(?::|$))[^\n]*"
)
_TORCHRUN_FIELD = re.compile(r"^\s*(time|host|rank|exitcode|error_file|traceback)\s*:\s*(.*)$")
_SRUN_TASK = re.compile(r"^srun: error: ([^:\s]+): tasks? ([\d,\-]+): (.+)$")
_OOM_KILL = re.compile(r"Detected (\d+) oom[-_ ]kill event\(s\) in (?:StepId=)?(\d+)\.(\w+)", re.I)
_SIGNALS = {"-9": "SIGKILL", "-15": "SIGTERM", "-6": "SIGABRT", "-11": "SIGSEGV", "-7": "SIGBUS"}


@dataclass
class RankFailure:
    rank: int | None
    node: str | None
    line: int
    cause: str  # the exception line, or "exit -9 (SIGKILL)"
    cascade: bool  # failed because another rank did
    source: str  # traceback | torchrun | nccl | srun


def rank_span(ranks: list[int]) -> str:
    """[0, 1, 2, 3, 5] -> "ranks 0-3, 5"."""
    if not ranks:
        return ""
    parts, start, prev = [], ranks[0], ranks[0]
    for r in [*ranks[1:], None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if r is not None:
            start = prev = r
    return ("ranks " if len(ranks) > 1 else "rank ") + ", ".join(parts)


@dataclass
class RankReport:
    failures: list[RankFailure] = field(default_factory=list)
    torchrun_root: int | None = None  # the rank torchrun's "Root Cause (first observed failure)" names
    node_exits: list[tuple[str, str, str, int]] = field(default_factory=list)  # (node, tasks, how, line), in order
    oom_kills: list[tuple[str, int]] = field(default_factory=list)  # (step, line)
    ranks_seen: set[int] = field(default_factory=set)

    @property
    def root(self) -> RankFailure | None:
        """The first failure that is not a consequence of another rank's (else the first failure)."""
        own = [f for f in self.failures if not f.cascade]
        # ranks that fail alike print in any order: torchrun's agent saw its rank's exit first
        seen_first = next(
            (f for f in own if f.rank is not None and f.rank == self.torchrun_root and f.source != "torchrun"), None
        )
        return seen_first or (own[0] if own else None)

    @property
    def alike(self) -> list[int]:
        """The ranks that failed on their own with the root's very error (each hit it, none caused the others)."""
        root = self.root
        if root is None or root.rank is None:
            return []
        return sorted({f.rank for f in self.failures if not f.cascade and f.rank is not None and f.cause == root.cause})

    @property
    def cascades(self) -> list[RankFailure]:
        root = self.root
        return [f for f in self.failures if f.cascade and (root is None or f.rank != root.rank)]

    @property
    def first_node(self) -> str | None:
        """The node whose task srun saw end first (the failing node when each node runs one task)."""
        return self.node_exits[0][0] if self.node_exits else None

    def node_of(self, rank: int | None) -> str | None:
        for f in self.failures:
            if f.rank == rank and f.node and f.node not in ("localhost", "127.0.0.1"):
                return f.node
        return None

    def distributed(self) -> bool:
        return len(self.ranks_seen) > 1 or len({n for n, *_ in self.node_exits}) > 1


def analyze(lines: Iterable[tuple[int, str]]) -> RankReport:
    """The rank report of a log: ``lines`` are (1-based number, text) pairs, in order."""
    rep = RankReport()
    tb_rank: int | None = None  # inside a [rankN]: traceback
    tb_start = 0
    torchrun: dict[str, str] | None = None
    torchrun_line = 0
    seen_root_keys: set[tuple] = set()
    for no, raw in lines:
        text = raw.rstrip("\n")
        m = RANK_PREFIX_RE.match(text)
        rank = parse_int(m.group(1)) if m else None
        body = text[m.end() :].lstrip() if m else text
        if rank is not None:
            rep.ranks_seen.add(rank)
        # NCCL watchdog lines name the rank themselves ([Rank 3]), with or without the prefix
        if CASCADE.search(body):
            r = rank
            if r is None and (nm := _NCCL_RANK.search(body)):
                r = parse_int(nm.group(1))
            if r is not None:
                rep.ranks_seen.add(r)
            if r is not None and ("Watchdog caught" in body or "watchdog thread terminated" in body):
                _add(rep, seen_root_keys, RankFailure(r, None, no, _short(body), True, "nccl"))
                continue
        if rank is not None and body.startswith("Traceback (most recent call last)"):
            tb_rank, tb_start = rank, no
            continue
        if tb_rank is not None and rank == tb_rank and _EXC_LINE.match(body):
            cascade = bool(CASCADE.search(body)) or bool(AGENT_NOISE.search(body))
            _add(rep, seen_root_keys, RankFailure(tb_rank, None, tb_start, _short(body), cascade, "traceback"))
            tb_rank = None
            continue
        if text.startswith("Root Cause (first observed failure)"):
            torchrun, torchrun_line = {}, no
            continue
        if torchrun is not None:
            fm = _TORCHRUN_FIELD.match(text)
            if fm:
                torchrun[fm.group(1)] = fm.group(2).strip()
                continue
            if text.startswith("[") and text.rstrip().endswith(":"):
                continue  # "[0]:" the failure's index
            _torchrun_failure(rep, seen_root_keys, torchrun, torchrun_line)
            torchrun = None
        sm = _SRUN_TASK.match(text)
        if sm:
            rep.node_exits.append((sm.group(1), sm.group(2), sm.group(3).strip(), no))
            continue
        om = _OOM_KILL.search(text)
        if om:
            rep.oom_kills.append((f"{om.group(2)}.{om.group(3)}", no))
    if torchrun:
        _torchrun_failure(rep, seen_root_keys, torchrun, torchrun_line)
    return rep


def _torchrun_failure(rep: RankReport, seen: set, fields: dict[str, str], line: int) -> None:
    rm = re.match(r"(\d+)", fields.get("rank", ""))
    rank = parse_int(rm.group(1)) if rm else None
    code = (fields.get("exitcode") or "").split()[0] if fields.get("exitcode") else ""
    sig = _SIGNALS.get(code)
    cause = f"exit {code}" + (f" ({sig})" if sig else "")
    if fields.get("traceback") and not fields["traceback"].startswith(("To enable traceback", "Signal ")):
        cause += f": {fields['traceback']}"
    host = fields.get("host") or None
    # torchrun reports the rank's own death; whether it was a cascade is decided by its traceback
    # (if the rank printed one, that entry already stands and this adds the host)
    for f in rep.failures:
        if f.rank == rank and f.node is None:
            f.node = host
    if rank is not None:
        rep.ranks_seen.add(rank)
        if rep.torchrun_root is None:
            rep.torchrun_root = rank
    _add(rep, seen, RankFailure(rank, host, line, cause, False, "torchrun"))


def _add(rep: RankReport, seen: set, failure: RankFailure) -> None:
    key = (failure.rank, failure.cascade)
    if key in seen:
        return  # one entry per rank and kind: the first line that shows it
    if not failure.cascade and any(f.rank == failure.rank and not f.cascade for f in rep.failures):
        return
    seen.add(key)
    rep.failures.append(failure)


def _short(text: str, limit: int = 220) -> str:
    text = re.sub(r"^\[[EWI]\d{4} [\d:.]+ [^\]]*\]\s*", "", text.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(rep: RankReport, phase: str | None = None) -> str | None:
    """One sentence for the user: the root cause's rank and node, then what followed from it."""
    root = rep.root
    if root is None:
        return None
    node = root.node if root.node not in (None, "localhost", "127.0.0.1") else None
    node = node or rep.node_of(root.rank) or rep.first_node
    where = f"rank {root.rank}" if root.rank is not None else "a process"
    if node:
        where += f" on {node}"
    what = root.cause
    if "SIGKILL" in what:
        what += ": killed from outside, most often by the out-of-memory killer" + (
            f" (slurmstepd counted an oom-kill in step {rep.oom_kills[0][0]})" if rep.oom_kills else ""
        )
    alike = rep.alike
    if len(alike) > 1:  # the same error on each: no rank failed first in any sense that matters
        shown = f"{rank_span(alike)}" + (f" on {node}" if node else "")
        msg = (
            f"{shown} each failed on their own with the same error"
            + (f" in {phase}" if phase else "")
            + f" (line {root.line}"
            + (f", rank {root.rank}'s: the first torchrun saw" if rep.torchrun_root == root.rank else "")
            + f"): {what}"
        )
    else:
        msg = f"{where} failed first" + (f" in {phase}" if phase else "") + f" (line {root.line}): {what}"
    others = sorted({f.rank for f in rep.cascades if f.rank is not None})
    if others:
        ranks = ", ".join(str(r) for r in others)
        msg += (
            f"; rank{'s' if len(others) > 1 else ''} {ranks} then failed because of it "
            "(a collective that lost its peer: a consequence, not a cause)"
        )
    return msg


@dataclass
class LogRankFailure:
    """A log's rank report whose root failure is known: where it is and which phase it was in."""

    path: str
    report: RankReport
    phase: str | None
    node: str | None
    process: str | None = None  # the phase, else the script of the process it failed in (chat_eval)

    def describe(self) -> str | None:
        return describe(self.report, self.process or self.phase)


def _numbered(path: str) -> Iterable[tuple[int, str]]:
    with open(path, "rb") as fh:  # streamed: a log can be gigabytes
        for no, raw in enumerate(fh, 1):
            yield no, raw[:4096].decode("utf-8", errors="replace")


def rank_failures_fact(ctx: Any) -> list[LogRankFailure]:
    """Per log of a job with several ranks: the first rank that failed of its own, its node and phase.
    One home for the LOG020 finding and the phase table's cause (a cascade is never a phase's cause)."""
    from preflight.facts import FactUnavailable

    logs = ctx.get("logs", None)
    if logs is None:
        raise FactUnavailable("no logs")
    world = max((s.world_size or 1 for s in logs.segments), default=1)
    if not logs.tracebacks and not logs.slurm_events():
        return []
    out: list[LogRankFailure] = []
    for ix in logs.logs:
        try:
            rep = analyze(_numbered(ix.path))
        except OSError as exc:
            raise FactUnavailable(f"cannot read {ix.path}: {exc.strerror or exc}") from None
        if not (rep.distributed() or world > 1) or rep.root is None:
            if rep.distributed():
                out.append(LogRankFailure(ix.path, rep, None, None))  # several ranks, none failed of its own
            continue
        root = rep.root
        # the process the failure is in: a chat_eval after mid_train is no phase, and its failure is not mid's
        seg = next((s for s in reversed(ix.segments) if s.start_line <= root.line), None)
        phase = seg.phase if seg is not None else None
        process = (seg.script if seg is not None else None) or phase  # chat_eval of mid's checkpoint, not mid
        node = root.node if root.node not in (None, "localhost", "127.0.0.1") else None
        out.append(LogRankFailure(ix.path, rep, phase, node or rep.node_of(root.rank) or rep.first_node, process))
    return out
