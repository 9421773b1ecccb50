"""SB014: what the SLURM here says of the job before it is submitted (``sbatch --test-only``, the partition's
limits)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding
from preflight.registry import check
from preflight.units import parse_count

_UNKNOWN_CLUSTER_RE = re.compile(r"No cluster '([^']{1,64})' known")


@check("SB014", "slurm-rejects-job", severity="error", cost="load", kills_at_start=True)
def slurm_rejects_job(script, job_env, sbatch_test) -> Iterator[Finding]:
    """
    What it checks: with SLURM present, ``sbatch --test-only`` on the script (with the
    sbatch arguments given), and the time and node limits of its partition from
    ``scontrol show partition``.

    Why it matters: a job SLURM rejects never runs; one over the partition's MaxTime sits
    PENDING forever (PartitionTimeLimit).

    Example:
        #SBATCH --partition=debug      # MaxTime=00:30:00
        #SBATCH --time=04:00:00

    How to fix: fix what sbatch reports, or choose a partition whose limits fit the job.
    """
    from preflight.script.sbatch import parse_time_limit

    if sbatch_test.returncode != 0:
        # sbatch words one error over several "sbatch: error:" lines: quote them all, not the last ("For instance")
        errors = [ln.split("error:", 1)[1].strip() for ln in sbatch_test.output.splitlines() if "error:" in ln]
        msg = " ".join(errors) or (sbatch_test.output.splitlines() or [f"exit {sbatch_test.returncode}"])[-1]
        other = _UNKNOWN_CLUSTER_RE.search(sbatch_test.output)
        if other:  # `#SBATCH --clusters=wice` checked where SLURM knows no such cluster: not this job's cluster
            raise Skip(f"the job is for cluster {other.group(1)!r}, which the SLURM here does not know")
        no_shebang = "must start with #!" in sbatch_test.output
        yield Finding(
            f"sbatch --test-only rejects the job: {msg[:400]}",
            path=str(script.path),
            fix="add `#!/bin/bash` as the script's first line: sbatch runs only scripts that name their interpreter"
            if no_shebang
            else "fix the directive sbatch names (partition, gres, time) or submit to a partition that has it",
        )
    part_name = job_env.sbatch.get("partition") or sbatch_test.default_partition
    part = sbatch_test.partitions.get(part_name or "")
    if not part:
        return
    limit = job_env.time_limit_s
    max_time = parse_time_limit(part.get("MaxTime"))
    if limit is not None and max_time is not None and limit > max_time:
        yield Finding(
            f"--time={job_env.sbatch.get('time')} exceeds partition {part_name}'s MaxTime={part.get('MaxTime')}: "
            "the job would stay PENDING (PartitionTimeLimit)",
            path=str(script.path),
            fix=f"#SBATCH --time={part.get('MaxTime')} or another partition",
        )
    max_nodes = part.get("MaxNodes", "UNLIMITED")
    if parse_count(max_nodes) is not None and job_env.nodes > parse_count(max_nodes):
        yield Finding(
            f"--nodes={job_env.nodes} exceeds partition {part_name}'s MaxNodes={max_nodes}",
            path=str(script.path),
            fix=f"#SBATCH --nodes={max_nodes} or another partition",
        )
