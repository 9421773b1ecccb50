"""LOG002: the crashes in the run's logs, one finding per failure (the same error on several ranks said once),
with the fix of its cause; and the helpers the resume plan shares with it (the crashes, the too-big-model fix)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.model import Finding
from preflight.ranks import rank_span
from preflight.registry import check


def hf_settings(ctx) -> dict[str, str]:
    """The HF settings the job used (its script's exports; HF_HOME else this environment's): a prefetch
    must fill the cache dir the job reads and may need its mirror."""
    import re

    from preflight.causes import HF_CACHE_VARS

    js = ctx.get("jobscript", None)
    out: dict[str, str] = {}
    for name in (*HF_CACHE_VARS, "HF_ENDPOINT"):
        m = re.search(rf"^\s*(?:export\s+)?{name}=(\S+)", js.text, re.M) if js is not None else None
        if m:
            out[name] = m.group(1).strip("'\"")
    if "HF_HOME" not in out and ctx.environ.get("HF_HOME"):
        out["HF_HOME"] = ctx.environ["HF_HOME"]
    return out


def crashes(logs):
    """One (traceback, segment) per crashed process: rank copies and chained tracebacks are already
    folded by the index; the same failure seen in two logs (stdout and stderr) counts once."""
    from preflight.verdict import is_missing_checkpoint

    seen = set()
    for ix in logs.logs:
        for seg in ix.segments:
            for tb in seg.tracebacks:
                if tb.wrapper or is_missing_checkpoint(tb):
                    continue  # torchrun's summary; cascades belong to cascade-missing-checkpoint
                if tb.signature in seen:
                    continue
                seen.add(tb.signature)
                yield tb, seg


_CAPACITY_RE = re.compile(r"total capacity of ([\d.]+) GiB")


def too_big_fix(tb, segs, cause) -> str | None:
    """An out-of-memory before the first step of a model whose fp32 weights alone outgrow each GPU, even split
    over all of the job's GPUs: no batch size helps (39B parameters on three 40 GB GPUs)."""
    if cause.name not in ("out of memory", "model too large"):
        return None
    params = next((s.params for s in segs if s.params), None)
    cap = _CAPACITY_RE.search(" ".join([tb.message, *tb.detail]))
    if not params or cap is None:
        return None
    world = max([s.world_size or 1 for s in segs] + [len(tb.ranks or [])] + [1])
    weights = params * 4 / 2**30  # GiB: nanochat keeps its weights in fp32 (bf16 only in autocast)
    if weights / world <= float(cap.group(1)):
        return None
    split = f", {weights / world:,.0f} GiB a GPU even split over the job's {world}" if world > 1 else ""
    return (
        f"the model is too big for these GPUs: {params / 1e9:,.1f}B parameters are {weights:,.0f} GiB of fp32 weights"
        f"{split}, more than each GPU's {float(cap.group(1)):g} GiB before any batch: no batch size makes it fit; "
        "a smaller --depth, or GPUs with more memory"
    )


def _missing_named(logs) -> Iterator[Finding]:
    for path, where in logs.missing:
        yield Finding(
            f"log {path} (from {where}) does not exist",
            path=path,
            fix="check #SBATCH --output/--error (their directory must exist before sbatch) or pass --log",
        )


@check("LOG002", "phase-crashed", stage="post", severity="error")
def phase_crashed(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: tracebacks in the logs, attributed to their phase (by the script's frames or
    the surrounding lines) and classified: out of memory, offline download, wandb credentials,
    NCCL timeout, disk quota, other.

    Why it matters: without ``set -e`` a crashed phase is followed by later phases that fail in
    turn; the first traceback is the real cause, the rest are consequences.

    Example:
        Traceback (most recent call last):
          File ".../scripts/mid_train.py", line 80, in <module>
        requests.exceptions.ConnectionError: ... NameResolutionError

    How to fix: the finding names the cause class and the fix for it.
    """
    from preflight.causes import CASCADE, classify_traceback, fix_for
    from preflight.crashtext import crash_text, evaluated_before, last_step_before, root_rank
    from preflight.resume import device_batch_size
    from preflight.verdict import superseded

    yield from _missing_named(logs)
    profile = ctx.get("profile", None)
    try:  # the first rank of a multi-rank job that failed of its own, per log (rank-failure's fact)
        roots = {lf.path: lf.report.root for lf in ctx.get("rank_failures", None) or [] if lf.report.root}
    except Exception:  # FactError: an unreadable log; the traceback is still reported below
        roots = {}
    found: dict[tuple, tuple] = {}  # one finding per failure: the same error on several ranks is said once
    for tb, seg in crashes(logs):
        cause = classify_traceback(tb, profile)
        phase = tb.phase or seg.phase
        if phase and superseded(tb, logs.by_phase(phase)):
            continue  # an earlier attempt's crash: a later attempt of the phase in the same log got going
        who = tb.script or seg.script or "a process"
        failed = seg.failed_marker.data if seg.failed_marker is not None else {}
        root = roots.get(tb.path)
        other_root = root is not None and root.line != tb.line and root.rank not in (tb.ranks or [])
        if cause.name in CASCADE and (root_rank(tb, failed) is not None or other_root):
            continue  # this rank only lost another that failed first: rank-failure reports both
        if tb.exc_type.endswith("SignalException") and any(
            k[:2] == (tb.path, phase) and v[4].name == cause.name for k, v in found.items()
        ):
            continue  # torchrun's agent echoing the signal its ranks already reported (Ctrl-C: KeyboardInterrupt)
        exitcode = failed.get("exitcode")
        key = (tb.path, phase, tb.exc_type, cause.name, tb.code_frame, who)
        # a rank's copy whose traceback was cut above the frames that name the cause (a `tail` of the log): the same
        # error, said once under the cause its other copies show
        twin = next(
            (
                k
                for k, v in found.items()
                if tb.ranks
                and v[0].ranks
                and (k[:3], k[5]) == (key[:3], key[5])
                and "other" in (k[3], cause.name)
                and v[0].message == tb.message
            ),
            None,
        )
        if twin is not None and cause.name == "other":
            key = twin
        if key in found and tb.ranks and found[key][0].ranks:  # another rank's copy, its numbers differ (GPU N)
            found[key][1].extend(r for r in tb.ranks if r not in found[key][1])
            continue
        taken = found.pop(twin)[1] if twin is not None else []  # the cut copy came first: this one takes its ranks
        # the steps of the attempts up to this crash, not of a later attempt appended to the same log
        steps = (
            sum(s.step_lines for s in logs.by_phase(phase) if s.path != tb.path or s.start_line <= tb.line)
            if phase
            else None
        )
        segs = logs.by_phase(phase) if phase else [seg]
        fix = fix_for(
            cause,
            profile,
            hf=hf_settings(ctx),
            checkout=ctx.get("checkout", None),
            phase=phase,
            batch=device_batch_size(logs, phase, profile) if profile is not None else None,
        )
        if phase is None and cause.name == "other" and logs.no_pipeline_phase:  # no phase, so no resume plan
            said = f" (it says: {tb.detail[0][:160]})" if tb.detail else ""
            fix = f"read the traceback{said}; fix it and rerun that program (it is no phase of the pipeline)"
        if not steps:
            fix = too_big_fix(tb, segs, cause) or fix
        if cause.name == "GPU occupied" and failed.get("local_rank") is not None:
            fix = f"GPU {failed['local_rank']} (torchrun's local rank {failed['local_rank']} failed): {fix}"
        text = crash_text(tb, steps, failed, evaluated_before(segs, tb), last_step_before(segs, tb))
        # the rank torchrun says failed, where the traceback names none (a single stream without [rankN]: prefixes)
        ranks = list(tb.ranks or ([failed["rank"]] if isinstance(failed.get("rank"), int) else []))
        ranks += [r for r in taken if r not in ranks]
        found[key] = (tb, ranks, f"{who} ({phase or 'unknown phase'}) {text}", fix, cause, exitcode)
    for (_path, phase, *_rest), (tb, ranks, text, fix, cause, exitcode) in found.items():
        extra = [
            x
            for x in (
                rank_span(sorted(ranks)),
                f"exit code {exitcode}" if exitcode is not None else "",
                f"raised at {tb.code_frame}" if tb.code_frame else "",
            )
            if x
        ]
        yield Finding(
            text + (f" [{'; '.join(extra)}]" if extra else ""),
            path=tb.path,
            line=tb.line,
            fix=fix,
            data={
                "phase": phase,
                "class": cause.name,
                "type": tb.exc_type,
                "ranks": sorted(ranks),
                "exitcode": exitcode,
                "cause": cause.to_json(),
                "root": {"type": tb.root[0], "message": tb.root[1]},
            },
        )
