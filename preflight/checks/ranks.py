"""Distributed failures in the logs: which rank and node failed first, and which only followed (LOG020)."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import FactUnavailable, Skip
from preflight.model import Finding
from preflight.registry import check


@check("LOG020", "rank-failure", stage="post", severity="error")
def rank_failure(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: in a job with several ranks (torchrun's ``[rankN]:`` output, srun tasks on
    several nodes), the first rank that failed for a reason of its own, the node it ran on, and
    the ranks that failed only because of it: NCCL watchdog timeouts, gloo's "Connection closed by
    peer", torchrun agents that lost their rendezvous store. Ranks that each hit the same error
    print in any order: they are said together, the one torchrun's root cause names first.

    Why it matters: when one rank dies, the others wait in their next collective until the
    backend gives up, often for the rest of the time limit; the log then ends with many ranks'
    timeouts and the real cause is hundreds of lines up, on one node.

    Example:
        Root Cause (first observed failure):
          host      : gpu-node-017
          rank      : 13 (local_rank: 5)
          exitcode  : -9 (pid: 81211)  (SIGKILL)
        [rank0]:[E... ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout ...

    How to fix: fix the cause on the named rank and node (the finding gives the fix of that rank's own
    error: disk full, out of memory, an offline dataset; for SIGKILL, usually memory: a smaller
    --device_batch_size, or look for the node's oom-kill event), then resume.
    """
    world = max((s.world_size or 1 for s in logs.segments), default=1)
    if not logs.tracebacks and not logs.slurm_events():
        if world > 1:
            return  # several ranks, and none of them failed
        raise Skip("no failure in the logs")
    try:
        failures = ctx.get("rank_failures")
    except FactUnavailable as exc:
        raise Skip(exc.reason) from None
    from preflight.verdict import superseded_at

    for lf in failures:
        root = lf.report.root
        if root is None:
            continue
        if lf.phase and superseded_at(lf.path, root.line, logs.by_phase(lf.phase)):
            continue  # an earlier attempt's failure: a later attempt of the phase in the same log got going
        yield Finding(
            lf.describe(),
            path=lf.path,
            line=root.line,
            fix=_root_fix(root, lf.phase, ctx, "these ranks" if len(lf.report.alike) > 1 else "that rank")
            + (
                "; every one of these ranks hit it: one fix serves them all"
                if len(lf.report.alike) > 1
                else "; the other ranks' errors need no fix of their own"
            ),
            data={
                "rank": root.rank,
                "node": lf.node,
                "phase": lf.phase,
                "cause": root.cause,
                "cascade_ranks": sorted({f.rank for f in lf.report.cascades if f.rank is not None}),
                "alike_ranks": lf.report.alike,
            },
        )
    if world <= 1 and not failures:
        # what was looked for, not a claim about the job: torchrun without --tee prints no [rankN]: prefixes
        raise Skip("the logs show no second rank ([rankN]: output) and no second node")


def _root_fix(root, phase, ctx, who: str = "that rank") -> str:
    """The fix of the first rank's own cause (disk full, offline dataset, ...) where its error line names one."""
    from preflight.causes import OTHER, classify_text, fix_for

    profile = ctx.get("profile", None)
    cause = classify_text(root.cause, profile)
    if cause.name != OTHER:
        return f"{cause.name} on {who}: " + fix_for(cause, profile, checkout=ctx.get("checkout", None), phase=phase)
    if "SIGKILL" in root.cause:
        return (
            "fix the cause on that rank and node (SIGKILL: usually memory; a smaller --device_batch_size), then resume"
        )
    whose = "that rank's" if who == "that rank" else "their"
    return f"read {whose} error (line {root.line}), fix it on that node, then resume"
