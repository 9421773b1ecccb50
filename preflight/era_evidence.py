"""The era of a run from its evidence alone: log grammar, base-dir layout, checkpoint meta files.

Used after the job when there is no checkout to fingerprint, no script and no ledger. The signs
live in each profile's ``evidence.era_signs`` (regexes on the head and tail of the logs, dirs under
the base dir, keys of a base checkpoint's meta file). Every sign found scores 1, a log line or a dir
the era never writes that is there scores -1, a dir it never writes that is missing scores 0.5; the
best positive score wins and the reason names what was seen.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

LOG_SNIFF_BYTES = 256 << 10  # a log's head: the setup lines every entry point prints
# uv's coloured progress bars (ANSI escapes, CR redraws): a speedrun log can open with ~1 MB of them, so the head
# is read on past them, up to this much of the file (nanochat's own coloured lines are its logger's: kept)
LOG_HEAD_SCAN_BYTES = 4 << 20
LOG_TAIL_BYTES = 64 << 10  # and its tail: what the job printed last (report generation, the final summary)
MAX_META_BYTES = 1 << 20
CANDIDATES = ("classic", "argparse", "no-mid", "current")  # bundled runs say so in their first line
TIE_ORDER = ("classic", "current", "no-mid", "argparse")  # equal evidence: the usual one first


_STAMP_RE = re.compile(r"^\[?(20\d\d-[01]\d-[0-3]\d)[ T][0-2]\d:[0-5]\d:[0-5]\d", re.M)


def _run_date(heads: list[tuple[str, str]]) -> str | None:
    """The earliest date a log's lines are stamped with (nanochat's logger, a launcher's): when the run ran."""
    dates = [m.group(1) for _, head in heads for m in _STAMP_RE.finditer(head)]
    return min(dates) if dates else None


def first_log_date(logs: list) -> str | None:
    """The earliest date the logs' heads are stamped with (YYYY-MM-DD): when the run ran."""
    return _run_date(log_samples(logs))


def last_log_date(logs: list) -> str | None:
    """The latest date the logs' heads and tails are stamped with (YYYY-MM-DD): the run ended no earlier."""
    dates = [m.group(1) for _, text in log_samples(logs) for m in _STAMP_RE.finditer(text)]
    return max(dates) if dates else None


def log_samples(logs: list) -> list[tuple[str, str]]:
    """(file name, head + tail text) of each readable log: era signs are read there, never the whole file. Read once
    per file version: the era, the checkout and the report guards all ask for the same samples."""
    out = []
    for path in logs:
        try:
            if not os.path.isfile(path):  # a named pipe would block open() forever
                continue
            st = os.stat(path)
            out.append((Path(path).name, _sample(str(path), st.st_size, st.st_mtime_ns)))
        except OSError:
            continue
    return out


@lru_cache(maxsize=32)
def _sample(path: str, size: int, mtime_ns: int) -> str:
    """A log's head and tail as text (``size`` and ``mtime_ns`` key the cache to this version of the file)."""
    with open(path, "rb") as fh:
        text, read = _head(fh)
        size = os.fstat(fh.fileno()).st_size
        if size > read:
            fh.seek(max(read, size - LOG_TAIL_BYTES))
            text += b"\n" + fh.read(LOG_TAIL_BYTES)
    return text.decode("utf-8", "replace")


_STAMPED_LINE_RE = re.compile(_STAMP_RE.pattern.encode().removeprefix(b"^"))  # a logger's line, colours or not


# a traceback frame of a checkout's own entry point or package: File "/home/u/nanochat/scripts/base_train.py"
_FRAME_ROOT_RE = re.compile(r'^\s*File "(/[^"]*?)/(?:scripts|nanochat)/\w+\.py", line \d+', re.M)


def frame_roots(logs: list) -> set[str]:
    """The checkout directories the logs' traceback frames run code from (an installed package's excluded)."""
    return {
        m.group(1)
        for _, text in log_samples(logs)
        for m in _FRAME_ROOT_RE.finditer(text)
        if not re.search(r"/(?:site|dist)-packages/|/lib/python\d", m.group(1))
    }


def _progress(line: bytes) -> bool:
    """A progress bar's redraw (colour codes, no logger stamp); a fork's coloured logger line (mychat.X) is kept."""
    return b"\x1b[" in line and b" - nanochat." not in line and not _STAMPED_LINE_RE.match(line)


def _head(fh) -> tuple[bytes, int]:
    """LOG_SNIFF_BYTES of a log's first lines that are not progress bars, and how far that read."""
    kept: list[bytes] = []
    size = read = 0
    while size < LOG_SNIFF_BYTES and read < LOG_HEAD_SCAN_BYTES:
        chunk = fh.read(min(LOG_SNIFF_BYTES, LOG_HEAD_SCAN_BYTES - read))
        if not chunk:
            break
        read += len(chunk)
        if not kept and read == len(chunk) and b"\x1b[" not in chunk:
            kept.append(chunk)  # the usual log: its head as it is
            size += len(chunk)
            continue
        for line in re.split(rb"(?<=[\r\n])", chunk):  # a CR redraw is a line of its own
            if not _progress(line):
                kept.append(line)
                size += len(line)
    return b"".join(kept), read


def _meta_keys(base: Path) -> set[str]:
    """Top-level and model_config keys of the newest base checkpoint meta file."""
    try:
        metas = sorted((base / "base_checkpoints").glob("*/meta_*.json"))
    except OSError:
        return set()
    for meta in reversed(metas[-4:]):
        try:
            from preflight.safeio import read_limited

            data = json.loads(read_limited(meta, MAX_META_BYTES, "meta file").decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # a hostile meta (100k nested arrays) is just no evidence
            continue
        if isinstance(data, dict):
            cfg = data.get("model_config") if isinstance(data.get("model_config"), dict) else {}
            return set(data) | set(cfg)
    return set()


def _base_dir(ctx: Any) -> Path | None:
    if getattr(ctx.inputs, "base_dir", None) is not None:
        return Path(ctx.inputs.base_dir)
    cfg = ctx.config.get("base-dir") if ctx.config is not None else None
    if cfg:
        return Path(os.path.expandvars(os.path.expanduser(str(cfg))))
    return None


def detect(ctx: Any) -> tuple[str, str, tuple[str, ...]] | None:
    """(profile name, reason, the eras the evidence fits as well) from the evidence, or None when nothing
    era-specific was seen."""
    from preflight.profiles import _load_raw, load_profile

    heads = log_samples(list(getattr(ctx.inputs, "logs", None) or []))
    base = _base_dir(ctx)
    dirs: set[str] = set()
    if base is not None:
        try:
            dirs = {e.name for e in os.scandir(base) if e.is_dir()}
        except OSError:
            base = None
    meta = _meta_keys(base) if base is not None else set()
    if not heads and base is None:
        return None
    scored = []
    for name in CANDIDATES:
        if "era_signs" not in (_load_raw(name).get("evidence") or {}):
            continue
        signs = (load_profile(name).data.get("evidence") or {}).get("era_signs") or {}
        score, logged, seen = 0.0, [], []  # the log signs it has, and the base dir's
        for pattern in signs.get("log") or []:
            try:
                rx = re.compile(pattern, re.M)
            except re.error:
                continue
            hit = next(((fname, m.group(0)) for fname, head in heads if (m := rx.search(head))), None)
            if hit:
                score += 1
                logged.append(f"{hit[0]} has {hit[1].strip()[:40]!r}")
        for pattern in signs.get("log_never") or []:  # a line this era's code never prints
            try:
                rx = re.compile(pattern, re.M)
            except re.error:
                continue
            if any(rx.search(head) for _, head in heads):
                score -= 1
        if base is not None:
            for d in signs.get("dirs") or []:
                if d in dirs:
                    score += 1
                    seen.append(f"the base dir has {d}/")
            for d in signs.get("absent") or []:
                if d in dirs:
                    score -= 1
                else:
                    score += 0.5
                    seen.append(f"no {d}/")
        for key in signs.get("meta") or []:
            if key in meta:
                score += 1
                seen.append(f"meta files carry {key}")
        positive = logged or any(s.startswith(("the base dir has", "meta files")) for s in seen)
        if positive:
            scored.append((score, len(logged), -TIE_ORDER.index(name), name, logged[:3] + seen[:3]))
    if not scored:
        return None
    scored.sort(reverse=True)
    score, logged, _, name, seen = scored[0]
    if score <= 0:
        return None
    tied = [s[3] for s in scored[1:] if s[:2] == (score, logged)]
    dated = _run_date(heads)
    if tied and dated:
        # code is never newer than its run: an era that began after the log's first timestamp is not the run's
        began = {n: str((_load_raw(n).get("dates") or {}).get("from") or "") for n in [name, *tied]}
        possible = [n for n in [name, *tied] if began[n] <= dated]
        if possible and name not in possible:
            late = name
            name = max(possible, key=lambda n: began[n])
            tied = [n for n in possible if n != name]
            seen = [*seen, f"its log is dated {dated}, before the {late} era (from {began[late]})"]
    if tied:  # the signs seen are printed by both eras: say so, and which one the tie took
        return (
            name,
            f"the run's evidence fits {' or '.join([name, *tied])} alike ({name} taken; --profile or --checkout "
            "decides): " + ", ".join(seen),
            tuple(tied),
        )
    return name, "the run's evidence says so: " + ", ".join(seen), ()


# lines every nanochat prints on stdout early in a process; the bundled trainer prints its fingerprint before them
_EARLY_STDOUT_RE = re.compile(r"^(?:Autodetected device type: |Overriding: |Calculated number of )", re.M)


def stdout_without_fingerprint(logs: list) -> bool:
    """The logs hold what a process prints on stdout after the bundled trainer's first line, but not that line."""
    return any(_EARLY_STDOUT_RE.search(text) for _, text in log_samples(logs))


def era_of_log_date(ctx: Any, found: str) -> Any:
    """Logs with nothing era-specific but a date: the latest era begun by then whose code prints every line they
    hold (none of its ``log_never`` lines), with the flag spelling of that date (argparse's underscores or dashes)."""
    from preflight.profiles import _load_raw, load_profile

    logs = list(getattr(ctx.inputs, "logs", None) or [])
    date = first_log_date(logs) if logs and getattr(ctx.inputs, "stage", "pre") == "post" else None
    if date is None:
        return None
    texts = [text for _, text in log_samples(logs)]

    def prints_never(name: str) -> bool:  # a line the logs hold that this era's code never prints
        never = ((load_profile(name).data.get("evidence") or {}).get("era_signs") or {}).get("log_never") or []
        return any(re.search(p, t, re.M) for p in never for t in texts)

    spans = [(name, (_load_raw(name).get("dates") or {})) for name in CANDIDATES if not prints_never(name)]
    began = [(str(d.get("from") or ""), name) for name, d in spans if str(d.get("from") or "") <= date]
    if not began:
        return None
    start, name = max(began)
    variants = ((_load_raw(name).get("flag_style") or {}).get("variants")) or []
    variant = next((v["name"] for v in variants if str(v.get("from")) <= date < str(v.get("to") or "9999")), None)
    reason = (
        f"its log is dated {date}: the latest era begun by then that prints what it holds is {name} (from {start}); "
        f"{found} and nothing else era-specific in the logs (--profile or --checkout decides)"
    )
    return load_profile(name, reason, variant)
