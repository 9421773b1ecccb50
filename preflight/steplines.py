"""Where the training step lines are in a block of a log: runs of consecutive step lines.

Most of a training log (99% of a speedrun's bytes) are step lines, and the log index parses only
the first and last line of each run. Finding the runs is the hot loop, so it has two exact
implementations of one definition:

- a step line starts with ``step `` (base, mid) or matches ``Step N/M | Training loss`` (SFT);
- a run starts and ends with a step line; plain validation lines inside it
  (``Step N | Validation bpb: 0.8123``, a finite number) do not break it, so the run of a phase
  is not cut every 250 steps. Anything else (a NaN, a CORE line, a traceback) ends it.

A fork's tag before its step lines (``[run_tag] step 00050/04357 ...``) is cut from a tagged log's
blocks before they get here (``untagged_blocks``), so both read it as any log.

- ``runs_regex``: compiled regexes; no imports. Used for small logs.
- ``runs_numpy``: every newline at once (``a == 10``), the first bytes of every line compared as
  integers; several times faster. Used for large logs, where numpy's import (~50 ms) pays off.

Both return ``(start, stop, lines, steps)``: byte ranges of whole lines, ascending, inside
[start, end), with the number of lines and of step lines in each.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_VAL = rb"Step \d+ \| Validation (?:bpb|loss): [\d.]+(?=\r?\n)"
STEP_START_RE = re.compile(rb"step |Step \d+/\d+ \| Training loss")
VAL_LINE_RE = re.compile(_VAL)
UPPER_LINE_RE = re.compile(rb"(Step \d+/\d+ \| Training loss)|(" + _VAL + rb")")  # group 1: step, 2: validation
# the newline before a line that is neither a step line nor a plain validation line
NONSTEP_RE = re.compile(rb"\n(?!step |Step \d+/\d+ \| Training loss|" + _VAL + rb")")
STEP_LINE_RE = re.compile(rb"\n(?:step |Step \d+/\d+ \| Training loss)")
VALS_IN_RUN_RE = re.compile(rb"\nStep \d+ \| Validation")
VAL_LINES_RE = re.compile(rb"(?:" + _VAL + rb"\r?\n)+")

NUMPY_MIN_LOG = 32 << 20  # below this a log is indexed faster without importing numpy
MAX_LINES = 1 << 18  # lines per numpy pass: bounds its arrays (~8 bytes x 4 per line)

Run = tuple[int, int, int, int]


def runs_regex(buf: bytes, start: int, end: int) -> list[Run]:
    runs: list[Run] = []
    pos = start
    while pos < end:
        if STEP_START_RE.match(buf, pos):
            m = NONSTEP_RE.search(buf, pos, end)
            stop = min(m.start() + 1, end) if m is not None else end
            nxt = stop
            while True:  # a run ends with a step line: validation lines after it are not part of it
                last = buf.rfind(b"\n", pos, stop - 1) + 1
                if last <= pos or not VAL_LINE_RE.match(buf, last, end):
                    break
                stop = last
            runs.append((pos, stop, *count_run(buf, pos, stop)))
            pos = nxt
        found = STEP_LINE_RE.search(buf, pos, end)
        if found is None:
            break
        pos = found.start() + 1
    return runs


def count_run(buf: bytes, a: int, b: int) -> tuple[int, int]:
    """(lines, step lines) of buf[a:b], a run that starts with a step line."""
    lines = buf.count(b"\n", a, b) + (buf[b - 1 : b] != b"\n")  # a last line may lack its newline (EOF)
    return lines, lines - len(VALS_IN_RUN_RE.findall(buf, a, b))


def runs_numpy(buf: bytes, start: int, end: int) -> list[Run]:
    np = _numpy()
    runs: list[Run] = []
    pos = start
    while pos < end:
        arr = np.frombuffer(buf, np.uint8, count=end - pos, offset=pos)
        is_nl = arr == 10
        span, lines = end - pos, int(np.count_nonzero(is_nl))
        while lines > MAX_LINES:  # dense short lines: a prefix, so the per-line arrays stay small
            span = max(1, span * MAX_LINES // lines // 2)
            lines = int(np.count_nonzero(is_nl[:span]))
        stop = end if span == end - pos else (buf.find(b"\n", pos + span - 1, end) + 1 or end)
        arr, is_nl = arr[: stop - pos], is_nl[: stop - pos]
        found = _runs_in(buf, pos, end, arr, is_nl)
        if runs and found and _continues(buf, runs[-1][1], found[0][0]):  # a run across the window edge
            a, b, lines, steps = runs.pop()
            first = found[0]
            found[0] = (a, first[1], lines + buf.count(b"\n", b, first[0]) + first[2], steps + first[3])
        runs += found
        pos = stop
    return runs


def _continues(buf: bytes, prev_stop: int, start: int) -> bool:
    return prev_stop == start or VAL_LINES_RE.fullmatch(buf, prev_stop, start) is not None


def _runs_in(buf: bytes, offset: int, end: int, arr: Any, is_nl: Any) -> list[Run]:
    np = _numpy()
    size = arr.size
    ends = np.flatnonzero(is_nl)  # the newline of every line
    if not ends.size or ends[-1] != size - 1:  # a last line without a newline (EOF)
        ends = np.append(ends, size)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # the first five bytes of every line as one integer: an overlapping little-endian uint64 view
    if size >= 8:
        words = np.ndarray((size - 7,), "<u8", buffer=buf, offset=offset, strides=(1,))
        heads = words[np.minimum(starts, size - 8)] & 0xFFFFFFFFFF
        is_step = heads == _LOWER
        upper = heads == _UPPER
        tail = np.flatnonzero(starts > size - 8)  # lines starting in the last 7 bytes: words cannot reach
    else:
        is_step, upper = np.zeros(ends.size, dtype=bool), np.zeros(ends.size, dtype=bool)
        tail = np.arange(ends.size)
    for i in tail.tolist():
        head = bytes(buf[offset + int(starts[i]) : offset + int(starts[i]) + 5])
        is_step[i], upper[i] = head == b"step ", head == b"Step "
    # "Step " starts SFT step lines, validation lines and others: the few candidates one by one
    cand = np.flatnonzero(upper)
    if size >= 40:  # the usual SFT layout, confirmed as arrays: "Step 00012/00701 | Training loss"
        at = starts[cand] + 5
        fits = at + 32 <= size
        sft = np.zeros(cand.size, dtype=bool)
        at = at[fits]
        row = np.stack([words[at + k] for k in (0, 8, 16, 24)], axis=1).view(np.uint8)  # 32 bytes a line
        digits = (row >= 48) & (row <= 57)
        sft[fits] = (
            digits[:, 0:5].all(1)
            & (row[:, 5] == 47)
            & digits[:, 6:11].all(1)
            & (row[:, 11:27] == np.frombuffer(_SFT_TAIL, np.uint8)).all(1)
        )
        is_step[cand[sft]] = True
        cand = cand[~sft]
    # the rest (validation and metric lines, other layouts) one by one
    match = UPPER_LINE_RE.match
    kinds = np.array(
        [m.lastindex if m else 0 for m in (match(buf, a, end) for a in (starts[cand] + offset).tolist())], dtype=np.int8
    )
    is_step[cand[kinds == 1]] = True
    is_val = np.zeros(ends.size, dtype=bool)
    is_val[cand[kinds == 2]] = True
    step_idx = np.flatnonzero(is_step)
    if not step_idx.size:
        return []
    edges = np.diff((is_step | is_val).view(np.int8), prepend=0, append=0)
    # a run of step and validation lines, trimmed to its first and last step line
    k1 = np.searchsorted(step_idx, np.flatnonzero(edges == 1))
    k2 = np.searchsorted(step_idx, np.flatnonzero(edges == -1))
    keep = k2 > k1
    k1, k2 = k1[keep], k2[keep]
    lo, hi = step_idx[k1], step_idx[k2 - 1]
    a = (starts[lo] + offset).tolist()
    b = (np.minimum(ends[hi] + 1, size) + offset).tolist()
    return list(zip(a, b, (hi - lo + 1).tolist(), (k2 - k1).tolist(), strict=False))


_LOWER = int.from_bytes(b"step ", "little")
_UPPER = int.from_bytes(b"Step ", "little")
_SFT_TAIL = b" | Training loss"
_np: Any = None


def _numpy() -> Any:
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def numpy_available() -> bool:
    try:
        _numpy()
    except ImportError:
        return False
    return True


# -- reading a log in blocks ---------------------------------------------------------------------
CHUNK = 4 << 20
MAX_LINE = 16 << 10  # longest line kept (bytes); longer lines are cut, never buffered whole


class BlockReader:
    """A log as blocks of whole lines, read CHUNK bytes at a time into one reused buffer.

    A line cut by a chunk edge is joined (its head capped at MAX_LINE) into a small block of its
    own, a copy. ``blocks()`` yields ``(buf, start, end, offset)``: offset is the file offset of
    buf[start] for a block inside a chunk, None for a joined line. ``first_chunk`` starts at
    that chunk (the helper process): only the blocks inside chunks are then exact."""

    def __init__(self, f: BinaryIO, size: int, first_chunk: int = 0, chunk: int = 0):
        self.f, self.size, self.first_chunk, self.chunk = f, size, first_chunk, chunk or CHUNK
        # a reused buffer: a fresh bytes object per read costs page faults on every chunk
        self.buffer = bytearray(min(self.chunk, size))
        self.head = b""  # the first 64 KiB, to tell a text log from binary data
        self.long_lines = 0  # lines longer than MAX_LINE (cut)

    def blocks(self) -> Iterator[tuple[Any, int, int, int | None]]:
        data, offset = self.buffer, self.first_chunk * self.chunk
        remaining = self.size - offset
        pending = b""  # head of an unfinished line (capped at MAX_LINE)
        long_pending = False
        if offset:
            self.f.seek(offset - 1)
            long_pending = self.f.read(1) != b"\n"  # the chunk starts inside a line
        while remaining > 0:
            with memoryview(data) as view:  # readinto a slice of it: no copy
                size = self.f.readinto(view[: min(self.chunk, remaining)])
            if not size:
                break
            remaining -= size
            if not self.head:
                self.head = bytes(data[: min(size, 65536)])
            first_nl = data.find(b"\n", 0, size)
            if first_nl < 0:
                if len(pending) < MAX_LINE:
                    pending += data[: min(size, MAX_LINE - len(pending))]
                long_pending = long_pending or len(pending) >= MAX_LINE
                offset += size
                continue
            start = 0
            if pending or long_pending:
                joined = pending + data[: max(0, min(first_nl, MAX_LINE - len(pending)))] + b"\n"
                if long_pending or first_nl > MAX_LINE:
                    self.long_lines += 1
                yield joined, 0, len(joined), None
                start = first_nl + 1
            last_nl = data.rfind(b"\n", 0, size)
            if last_nl + 1 > start:
                yield data, start, last_nl + 1, offset + start
            pending = bytes(data[last_nl + 1 : min(size, last_nl + 1 + MAX_LINE)])
            long_pending = size - last_nl - 1 > MAX_LINE
            offset += size
        if pending:
            yield pending + b"\n", 0, len(pending) + 1, None


# a fork's tag before its step lines (`[clamp_0.100_NO_SN] step 00050/04357 (1.15%) | loss: ...`)
TAG_PREFIX_RE = re.compile(rb"(?m)^\[[^\]\n]{1,64}\] (?=step \d|Step \d)")
TAG_PROBE = 1 << 20  # bytes of a log's head searched for tagged step lines (the first step line comes early)


def tagged(f: BinaryIO) -> bool:
    """Whether the log's step lines carry a fork's tag (its head holds one); the file is read from its start
    again after."""
    try:
        head = f.read(TAG_PROBE)
        f.seek(0)
    except OSError:
        return False
    if b"] step " not in head and b"] Step " not in head:  # the common case, at memchr speed
        return False
    return TAG_PREFIX_RE.search(head) is not None


def untagged_blocks(blocks: Iterator[tuple[Any, int, int, int | None]]) -> Iterator[tuple[Any, int, int, None]]:
    """The blocks of a tagged log with the tag cut from its step lines (a copy per block; lines keep their
    numbers): every grammar then reads them as any log's."""
    for buf, start, end, _offset in blocks:
        clean = TAG_PREFIX_RE.sub(b"", bytes(buf[start:end]))
        yield clean, 0, len(clean), None


# -- a helper process for the last part of a large log -------------------------------------------
HELPER_MIN_LOG = 512 << 20  # below this the helper's start-up (~0.1 s) is not worth it
HELPER_SHARE = 0.8  # of the chunks, the last ones (measured best of 0.5-0.95 on a 1 GB log)
_HEADER = struct.Struct("<qqq")  # file offset, length, number of runs


class RunsHelper:
    """A child process (this module run as a script) that reads the last HELPER_SHARE of a log
    and streams the step runs of each block; the indexer uses them instead of searching itself,
    so the search and the indexing run on two cores (threads would not: numpy and the indexer
    take turns on the GIL). Anything unexpected (no numpy, the child dies, a block that does not
    line up) turns the helper off; the caller then searches itself: same result, only slower."""

    def __init__(self, path: str, size: int, chunk: int = 0):
        chunk = chunk or CHUNK
        first_chunk = int(-(-size // chunk) * (1 - HELPER_SHARE))
        self.start = first_chunk * chunk
        # this very module, whatever the caller's directory and path hold
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        argv = [
            sys.executable,
            "-m",
            "preflight.steplines",
            os.path.abspath(path),
            str(size),
            str(first_chunk),
            str(chunk),
        ]
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=package_root,
                env=env,
            )
        except (OSError, ValueError):  # no interpreter to run (embedded Python)
            self.proc = None

    def runs(self, offset: int | None, start: int, end: int) -> list[Run] | None:
        """The runs of buf[start:end] at file ``offset``, shifted to start; None: search yourself."""
        if self.proc is None or offset is None or offset < self.start:
            return None
        while True:
            header = self._read(_HEADER.size)
            if header is None:
                return None
            at, length, count = _HEADER.unpack(header)
            if not 0 <= count <= length:  # not our helper talking
                self.close()
                return None
            body = self._read(count * 32)
            if body is None:
                return None
            if at < offset:  # a block we do not need (it cannot happen with equal chunking)
                continue
            if (at, length) != (offset, end - start):
                self.close()
                return None
            runs = _numpy().frombuffer(body, dtype="<i8").reshape(-1, 4).copy()
            runs[:, :2] += start
            return [tuple(r) for r in runs.tolist()]

    def _read(self, n: int) -> bytes | None:
        data = self.proc.stdout.read(n) if self.proc is not None and self.proc.stdout else b""
        if len(data) != n:
            self.close()
            return None
        return data

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None


def _serve(path: str, size: int, first_chunk: int, chunk: int) -> None:
    """The helper's side: the runs of every block from ``first_chunk`` on, to stdout."""
    np = _numpy()
    out = sys.stdout.buffer
    try:
        with open(path, "rb") as f:
            for buf, start, end, offset in BlockReader(f, size, first_chunk, chunk).blocks():
                if offset is None:
                    continue
                runs = np.array(runs_numpy(buf, start, end), dtype="<i8").reshape(-1, 4)
                runs[:, :2] -= start
                out.write(_HEADER.pack(offset, end - start, len(runs)) + runs.tobytes())
                out.flush()
    except (BrokenPipeError, KeyboardInterrupt):  # the indexer is done or gone
        pass


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
