"""Checks for jobs that span several nodes: how training is launched across them (SB030) and where
their processes meet (SB031). Both read the parsed script; neither runs anything."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.phases import TORCHRUN_SCRIPTS
from preflight.registry import check
from preflight.script.model import VAR_NAME_RE
from preflight.script.placement import on_some_nodes_only
from preflight.script.sbatch import count
from preflight.units import parse_count, parse_int

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "ip6-localhost"}
# text that ties a host to the allocation: its node list, SLURM's own name for the head node
_FROM_ALLOCATION = re.compile(
    r"SLURM_(?:JOB_)?NODELIST|scontrol\s+show\s+hostnames?|SLURM_LAUNCH_NODE_IPADDR|"
    r"SLURMD_NODENAME|SLURM_TOPOLOGY_ADDR|\$\(\s*hostname|\$HOSTNAME|\$\{HOSTNAME"
)
_SRUN_TASK_KEYS = {"ntasks-per-node", "ntasks", "n", "nodes", "N"}
TEMPLATE_FIX = (
    "srun --ntasks-per-node=1 torchrun --nnodes=$SLURM_NNODES --nproc_per_node=<GPUs per node> "
    "--rdzv_backend=c10d --rdzv_endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1):29500 "
    "--rdzv_id=$SLURM_JOB_ID -m ... (as scripts/speedrun_multinode.slurm does)"
)


def _opts(opts: list[str]) -> dict[str, str]:
    """`--key=value`, `--key value` and `-k value` launcher options as a dict (last wins)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(opts):
        w = opts[i]
        if w.startswith("-"):
            key, eq, value = w.lstrip("-").partition("=")
            if not eq and i + 1 < len(opts) and not opts[i + 1].startswith("-"):
                value = opts[i + 1]
                i += 1
            out[key.replace("_", "-")] = value
        i += 1
    return out


def _value(script, inv, raw: str | None, job_env) -> str | None:
    if raw is None or "$" not in raw:
        return raw
    return script.expand(raw, inv.line, inv.file, job_env.start)


def _origin(script, raw: str, depth: int = 0) -> str:
    """raw with the assignments of the variables it names appended (what it is made from)."""
    if depth > 3:
        return raw
    parts = [raw]
    for name in VAR_NAME_RE.findall(raw):
        for a in script.all_assignments:
            if a.name == name:
                parts.append(_origin(script, a.value, depth + 1))
    return " ".join(parts)


def _runner_defaults(script, job_env, raw: str) -> bool:
    """A runner script (no #SBATCH or #PBS lines, no sbatch options: `MASTER_ADDR=10.0.0.1 NNODES=2 bash
    runs/multinode.sh` on each node) whose value here is only a default the caller overrides (`${NNODES:-2}`)."""
    if script.directives or job_env.sbatch_source:
        return False
    names = VAR_NAME_RE.findall(raw or "")
    sets = [a for a in script.all_assignments if a.name in names]
    return bool(names) and (not sets or all(a.default_only for a in sets))


def _training(script):
    return [inv for inv in script.all_invocations if inv.launcher.endswith("torchrun") or inv.entry]


def _tasks_per_node(opts: dict[str, str], job_env, nodes: int) -> int | None:
    """Tasks srun starts on each node for this step (its own options, else the job's)."""
    for source in (opts, job_env.sbatch):
        per = count(source.get("ntasks-per-node"))
        if per:
            return per
        total = count(source.get("ntasks") or source.get("n"))
        step_nodes = count(source.get("nodes") or source.get("N")) or nodes
        if total:
            return max(1, total // max(1, step_nodes))
    return 1


def _nnodes_range(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)(?::(\d+))?", text.strip())
    lo = parse_int(m.group(1)) if m else None
    hi = parse_int(m.group(2)) if m and m.group(2) else lo
    return (lo, hi) if lo is not None and hi is not None else None


@check("SB030", "nodes-launch-mismatch", severity="error")
def nodes_launch_mismatch(script, job_env) -> Iterator[Finding]:
    """
    What it checks: in a job with several nodes, or a torchrun that asks for several, that the
    launch matches the allocation: ``torchrun --nnodes`` equals ``--nodes``, srun starts one
    torchrun per node (``--ntasks-per-node=1``), no ``--standalone`` under srun, and no
    ``srun python -m nanochat...`` without torchrun.

    Why it matters: torchrun waits for ``--nnodes`` agents: more than the job has and the
    rendezvous waits until its timeout; ``--standalone`` on every node makes one separate
    world per node that train the same model side by side and overwrite each other's
    checkpoints; several torchruns per node start several workers per GPU; nanochat reads
    RANK/WORLD_SIZE, which only torchrun sets, so plain srun tasks each train alone.

    Example:
        #SBATCH --nodes=2
        srun torchrun --standalone --nproc_per_node=8 -m scripts.base_train

    How to fix: ``srun --ntasks-per-node=1 torchrun --nnodes=$SLURM_NNODES ... --rdzv_backend=c10d
    --rdzv_endpoint=<first node>:29500 --rdzv_id=$SLURM_JOB_ID`` (see scripts/speedrun_multinode.slurm).
    """
    if not script.ok:
        raise Skip("the script could not be read (see script-unparsable)")
    nodes = job_env.nodes
    invs = _training(script)
    if not invs:
        raise Skip("the script launches no training that preflight can see")
    where = job_env.sbatch_source.get("nodes", "default")
    for inv in invs:
        opts = _opts(inv.launcher_opts)
        path = str(inv.file if inv.file != "<script>" else script.path)
        torchrun = inv.launcher.endswith("torchrun")
        nnodes_raw = inv.nnodes
        nnodes_txt = _value(script, inv, nnodes_raw, job_env) if nnodes_raw else None
        rng = _nnodes_range(nnodes_txt) if nnodes_txt else None
        if (
            torchrun
            and rng is not None
            and not (rng[0] <= nodes <= rng[1])
            and not _runner_defaults(script, job_env, nnodes_raw)
        ):
            want = f"{rng[0]}" if rng[0] == rng[1] else f"{rng[0]} to {rng[1]}"
            yield Finding(
                f"torchrun --nnodes={nnodes_raw} waits for {want} node(s), but the job has {nodes} "
                f"(--nodes, {where}): the rendezvous waits for nodes that never come until it times out",
                path=path,
                line=inv.line,
                fix="torchrun --nnodes=$SLURM_NNODES",
            )
        if nodes <= 1:
            continue
        tasks = _tasks_per_node(opts, job_env, nodes) if inv.srun else None
        if torchrun and inv.standalone and inv.srun:
            yield Finding(
                f"torchrun --standalone under srun in a {nodes}-node job: every node makes a world of its own; "
                f"{nodes} copies of the model train side by side and overwrite each other's checkpoints",
                path=path,
                line=inv.line,
                fix=TEMPLATE_FIX,
            )
        elif torchrun and inv.srun and rng is None and nnodes_raw is None:
            yield Finding(
                f"torchrun without --nnodes under srun in a {nodes}-node job: it defaults to one node, so "
                "every node trains alone",
                path=path,
                line=inv.line,
                fix=TEMPLATE_FIX,
            )
        if torchrun and inv.srun and tasks and tasks > 1:
            yield Finding(
                f"srun starts {tasks} tasks per node, each a torchrun with its own workers: "
                f"{tasks} x --nproc_per_node={inv.nproc_per_node or '?'} processes per node compete for its GPUs",
                path=path,
                line=inv.line,
                fix="srun --ntasks-per-node=1 torchrun ... (one torchrun per node)",
            )
        if (
            not torchrun
            and inv.srun
            and inv.entry
            and inv.entry.startswith(("nanochat.", "scripts."))
            and inv.entry.rsplit(".", 1)[-1] in TORCHRUN_SCRIPTS  # a trainer or evaluation (not a download)
            and (tasks or 1) * nodes > 1
            and not on_some_nodes_only(script, inv.command)  # `if [ "$NODE_RANK" = 0 ]; then ...`
        ):
            yield Finding(
                f"srun runs {inv.entry} as {(tasks or 1) * nodes} plain tasks: nanochat reads RANK, LOCAL_RANK "
                "and WORLD_SIZE, which only torchrun sets, so each task trains alone on its own copy",
                path=path,
                line=inv.line,
                fix=TEMPLATE_FIX,
            )


@check("SB031", "rendezvous-unreachable", severity="error")
def rendezvous_unreachable(script, job_env) -> Iterator[Finding]:
    """
    What it checks: where the nodes of a multi-node torchrun meet: an endpoint (``--rdzv_endpoint``,
    ``--master_addr``, ``MASTER_ADDR``) that is given at all, is not localhost, is derived from the
    allocation (its first node) rather than a fixed host name, and a port that a user may bind
    (1024 or above; free on this node when preflight runs inside the job).

    Why it matters: every node's torchrun connects to the endpoint; on localhost each node waits
    for itself, on a fixed host that is not in the allocation nobody listens, and on a
    privileged or busy port the first node cannot listen. The job then hangs in the rendezvous
    until its timeout, or until the time limit.

    Example:
        export MASTER_ADDR=localhost
        srun torchrun --nnodes=2 --rdzv_backend=c10d --rdzv_endpoint=$MASTER_ADDR:29500 ...

    How to fix: ``--rdzv_endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1):29500``.
    """
    if not script.ok:
        raise Skip("the script could not be read (see script-unparsable)")
    invs = [inv for inv in script.all_invocations if inv.launcher.endswith("torchrun")]
    multi = []
    for inv in invs:
        rng = _nnodes_range(_value(script, inv, inv.nnodes, job_env) or "") if inv.nnodes else None
        if job_env.nodes > 1 or (rng and rng[1] > 1):
            multi.append(inv)
    if not multi:
        raise Skip("no torchrun spans several nodes")
    master_env = job_env.env.get("MASTER_ADDR") if "MASTER_ADDR" in job_env.exported else None
    for inv in multi:
        if inv.standalone:
            continue  # nodes-launch-mismatch says it: a standalone rendezvous is local by design
        opts = _opts(inv.launcher_opts)
        path = str(inv.file if inv.file != "<script>" else script.path)
        endpoint_raw = opts.get("rdzv-endpoint") or (
            f"{opts['master-addr']}:{opts.get('master-port', '29500')}" if opts.get("master-addr") else None
        )
        if endpoint_raw is None and master_env:
            endpoint_raw = f"$MASTER_ADDR:{job_env.env.get('MASTER_PORT', '29500')}"
        if endpoint_raw is None:
            yield Finding(
                "multi-node torchrun with no --rdzv_endpoint or --master_addr: each node's torchrun meets "
                "at its own localhost:29500 and the nodes never find each other",
                path=path,
                line=inv.line,
                fix=TEMPLATE_FIX,
            )
            continue
        host_raw, _, port_raw = endpoint_raw.rpartition(":") if ":" in endpoint_raw else (endpoint_raw, "", "")
        host = _value(script, inv, host_raw, job_env)
        if host is None and host_raw == "$MASTER_ADDR":
            host = master_env
        origin = _origin(script, host_raw)
        if (
            host is not None
            and host.strip().lower() in _LOCAL_HOSTS
            and not _runner_defaults(script, job_env, host_raw)
        ):
            yield Finding(
                f"the rendezvous endpoint {endpoint_raw} is {host} on every node: each node's torchrun "
                "waits for the others on itself until the rendezvous times out",
                path=path,
                line=inv.line,
                fix=TEMPLATE_FIX,
            )
        elif host is not None and "$" not in host_raw and not _FROM_ALLOCATION.search(origin):
            yield Finding(
                f"the rendezvous host {host} is fixed in the script: SLURM picks the job's nodes, so it may "
                "not be in the allocation (then nobody listens)",
                path=path,
                line=inv.line,
                severity=Severity.WARNING,
                fix="derive it from the allocation: $(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)",
            )
        elif host is None and "$" in host_raw and not _FROM_ALLOCATION.search(origin):
            pass  # a value preflight cannot see (set outside the script): nothing to judge
        port_txt = _value(script, inv, port_raw, job_env) if port_raw else None
        port = parse_count(port_txt)
        if port is not None:
            if port > 65535:
                yield Finding(
                    f"rendezvous port {port} is no TCP port (0-65535): torchrun cannot listen on it",
                    path=path,
                    line=inv.line,
                    fix="use a port of 1024 to 65535, e.g. 29500",
                )
            elif port < 1024:
                yield Finding(
                    f"rendezvous port {port} is privileged: a user's torchrun cannot listen on it",
                    path=path,
                    line=inv.line,
                    fix="use a port of 1024 or above, e.g. 29500",
                )
            elif _own_head_node(job_env) and _port_busy(port):
                yield Finding(
                    f"rendezvous port {port} is already in use on this node (the job's first): its torchrun "
                    "cannot listen there",
                    path=path,
                    line=inv.line,
                    fix="derive the port from the job id, e.g. $((29500 + SLURM_JOB_ID % 1000))",
                )


def _own_head_node(job_env) -> bool:
    """Inside the job, on its first node (where the rendezvous listens)."""
    return job_env.sbatch_source.get("nodes", "").startswith("allocation") and job_env.env.get("SLURM_NODEID") == "0"


def _port_busy(port: int) -> bool:
    """Something listens on the port. SO_REUSEADDR as torch's TCPStore sets it: connections of an
    earlier job still in TIME_WAIT on that port do not stop torchrun, so they do not count."""
    import socket  # only inside a job: ~4 ms of start-up otherwise

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False
