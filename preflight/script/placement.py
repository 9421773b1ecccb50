"""Where a job's launches run: how many of its allocated nodes each one reaches.

The batch script runs on the first node of the allocation only. A command reaches the other
nodes only through a launcher that starts processes there: ``srun`` (one task per node unless
told otherwise), or tools that ssh/PMI into them (mpirun, pdsh, deepspeed ...). ``torchrun
--nnodes=4`` started by the batch shell is one agent on one node: it waits at the rendezvous for
three agents nobody starts.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from preflight.script.wrappers import strip_prefixes
from preflight.units import parse_count

# commands that may start processes on other nodes of the allocation without srun
CROSS_NODE_COMMANDS = {
    "srun",
    "mpirun",
    "mpiexec",
    "orterun",
    "pdsh",
    "clush",
    "pssh",
    "ssh",
    "deepspeed",
    "accelerate",
    "horovodrun",
    "torchx",
    "ray",
    "charmrun",
    "prun",
}


def _opt(opts: list[str], short: str, long: str) -> str | None:
    """The last value of an srun option (-N 2, -N2, --nodes=2, --nodes 2)."""
    found = None
    for i, w in enumerate(opts):
        if w in (short, long) and i + 1 < len(opts):
            found = opts[i + 1]
        elif w.startswith(long + "="):
            found = w.partition("=")[2]
        elif short and w.startswith(short) and len(w) > len(short) and not w.startswith("--"):
            found = w[len(short) :].lstrip("=")
    return found


def _number(script: Any, text: str | None, inv: Any, environ: dict) -> int | None:
    if text is None:
        return None
    if "$" in text:
        text = script.expand(text, inv.line, inv.file, environ)
    text = (text or "").split("-")[0]  # --nodes=2-4: at least 2
    return parse_count(text)


def launch_nodes(script: Any, inv: Any, job_env: Any) -> int | None:
    """How many nodes ``inv`` runs on (None: cannot tell)."""
    nodes = job_env.nodes
    if not inv.srun:
        return 1
    environ = job_env.start  # SLURM_NNODES & co. come from the script's directives (ScriptModel.value_at)
    opts = inv.srun_opts
    raw_nodes, raw_tasks = _opt(opts, "-N", "--nodes"), _opt(opts, "-n", "--ntasks")
    if raw_nodes is not None:
        n = _number(script, raw_nodes, inv, environ)
        return None if n is None else min(n, nodes)
    per_node = _number(script, _opt(opts, "", "--ntasks-per-node"), inv, environ)
    if raw_tasks is not None:
        tasks = _number(script, raw_tasks, inv, environ)
        if tasks is None:
            return None
    else:  # srun inherits the job's task count; none given: one task per node
        tasks = _number(script, job_env.sbatch.get("ntasks"), inv, environ)
        per_node = per_node or _number(script, job_env.sbatch.get("ntasks-per-node"), inv, environ)
        if tasks is None:
            return nodes
    if per_node:
        return min(nodes, math.ceil(tasks / per_node))
    return min(nodes, tasks)


def cross_node_commands(script: Any) -> list[Any]:
    """Commands that may start processes on other nodes and are not launches preflight reads
    (`srun hostname`, `mpirun ...`, `pdsh ...`)."""
    launched = {(i.file, i.line) for i in script.all_invocations}
    out = []
    for c in script.all_commands:
        if (c.file, c.line) in launched:
            continue
        p = strip_prefixes(c.words)
        if p.srun or (p.words and os.path.basename(p.words[0]) in CROSS_NODE_COMMANDS):
            out.append(c)
    return out


# variables that tell one node (or task) of a job from the others: a command under an `if` that reads one
# runs on some nodes only (`if [ "$NODE_RANK" = "0" ]; then python -m nanochat.dataset ...; fi`)
NODE_RANK_VAR_RE = re.compile(
    r"\$\{?(?:NODE_RANK|SLURM_NODEID|SLURM_PROCID|SLURM_LOCALID|GROUP_RANK|RANK|LOCAL_RANK|OMPI_COMM_WORLD_RANK"
    r"|PMI_RANK|PMIX_RANK)\b"
)


def on_some_nodes_only(script: Any, cmd: Any) -> bool:
    """``cmd`` sits under an ``if``/``case`` that tests a node's rank: it does not run on every node."""
    model = next((m for m in script.walk() if m.tree and any(c is cmd for c in m.commands)), None)
    return model is not None and _under_rank_test(model.tree, cmd)


def _under_rank_test(nodes: list, cmd: Any) -> bool:
    from preflight.script.tree import Case, Group, If, Item, Loop, iter_commands

    for n in nodes:
        if isinstance(n, Item) or not any(c is cmd for c in iter_commands([n])):
            continue
        if isinstance(n, If):
            tests = [c for cond, _ in n.branches for c in iter_commands(cond)]
            if any(NODE_RANK_VAR_RE.search(c.text) for c in tests):
                return True
            blocks = [b for _, b in n.branches] + [n.else_body or []]
        elif isinstance(n, Case):
            if NODE_RANK_VAR_RE.search(" ".join(n.header)):
                return True
            blocks = [b for _, b in n.arms]
        elif isinstance(n, Loop):
            blocks = [n.body]
        elif isinstance(n, Group) or hasattr(n, "body"):
            blocks = [n.body]
        else:
            blocks = []
        return any(_under_rank_test(b, cmd) for b in blocks)
    return False
