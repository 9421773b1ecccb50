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
    peer", torchrun agents that lost their rendezvous store.

    Why it matters: when one rank dies, the others wait in their next collective until the
    backend gives up, often for the rest of the time limit; the log then ends with many ranks'
    timeouts and the real cause is hundreds of lines up, on one node.

    Example:
        Root Cause (first observed failure):
          host      : gpu-node-017
          rank      : 13 (local_rank: 5)
          exitcode  : -9 (pid: 81211)  (SIGKILL)
        [rank0]:[E... ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout ...

    How to fix: fix the cause on the named rank and node (for SIGKILL, usually memory: a smaller
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
    for lf in failures:
        root = lf.report.root
        if root is None:
            continue
        yield Finding(
            lf.describe(),
            path=lf.path,
            line=root.line,
            fix="fix the cause on that rank and node (SIGKILL: usually memory; a smaller --device_batch_size), "
            "then resume; the other ranks' errors need no fix of their own",
            data={
                "rank": root.rank,
                "node": lf.node,
                "phase": lf.phase,
                "cause": root.cause,
                "cascade_ranks": sorted({f.rank for f in lf.report.cascades if f.rank is not None}),
            },
        )
    if world <= 1 and not failures:
        raise Skip("the job ran a single process")
