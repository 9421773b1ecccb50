"""Where a job's launches run, and whether their entry points are there: SB018.

A ``python -m scripts.X`` run outside the nanochat checkout stops with ``No module named
'scripts'``: the directory each launch runs in is read from the submit directory, ``--chdir``,
the script's ``cd`` and ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from preflight.model import Finding, Severity
from preflight.registry import check

# prefixes that run the command somewhere else than the job's working directory
_ELSEWHERE = (
    "uv run",
    "conda run",
    "mamba run",
    "micromamba run",
    "apptainer exec",
    "apptainer run",
    "singularity exec",
    "singularity run",
)


# a cd to the submit directory, in the spellings job scripts use
SUBMIT_DIR_WORD_RE = re.compile(r'^"?\$(?:SLURM_SUBMIT_DIR|\{SLURM_SUBMIT_DIR(?::?-[^}]*)?\})"?$')


def _launch_dir(ctx, model, inv, job_env) -> tuple[Path, str] | None:
    """The directory a top-level launch runs in, and why; None when it cannot be told before the job."""
    from preflight.script.parser import expand_path

    chdir = job_env.sbatch.get("chdir")
    workdir = Path(ctx.inputs.cwd)
    why = _SUBMITTED_FROM
    if chdir:
        if "$" in chdir or "%" in chdir:
            return None
        workdir, why = workdir / chdir, f"#SBATCH --chdir={chdir}"
    cds = [c for c in model.commands if c.name in ("cd", "pushd", "popd") and c.line < inv.line]
    if cds:
        last = cds[-1]
        target = (
            expand_path(model, last.words[-1], last.line, last.file)
            if last.name != "popd" and len(last.words) > 1
            else None
        )
        if last.name != "popd" and len(last.words) > 1 and _is_submit_dir(model, last):
            # `cd "${SLURM_SUBMIT_DIR:-$PWD}"`: where sbatch was run (SLURM sets it in every batch job)
            if not last.depth and not last.in_function:
                return Path(ctx.inputs.cwd), f"the `cd` to the submit directory at line {last.line}"
            return None
        if target is None or last.depth or last.in_function:
            return None
        workdir, why = workdir / target, f"the `cd` at line {last.line}"
    if inv.inline_cd is not None:  # `srun bash -c "cd $PROJECT; python -m scripts.tok_train ..."`
        target = expand_path(model, inv.inline_cd, inv.line, inv.file)
        if target is None:
            return None
        workdir, why = workdir / target, f"the `cd` in the shell text at line {inv.line}"
    return workdir, why


_SUBMITTED_FROM = "the directory sbatch is run from"
_VAR_WORD_RE = re.compile(r'^"?\$(?:([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})"?$')


def _is_submit_dir(model, cd) -> bool:
    """`cd "${SLURM_SUBMIT_DIR:-$PWD}"`, or `cd "$REPO_DIR"` whose value is that (REPO_DIR="${SLURM_SUBMIT_DIR:-$PWD}")."""
    word = cd.words[-1]
    if SUBMIT_DIR_WORD_RE.match(word):
        return True
    m = _VAR_WORD_RE.match(word)
    if m is None:
        return False
    name = m.group(1) or m.group(2)
    before = [a for a in model.assignments if a.name == name and a.file == cd.file and a.line < cd.line]
    return bool(before) and bool(SUBMIT_DIR_WORD_RE.match(before[-1].value.strip()))


def _from_submit_dir(why: str) -> bool:
    """Whether _launch_dir's reason is the submit directory (no cd, or a cd to $SLURM_SUBMIT_DIR)."""
    return why == _SUBMITTED_FROM or why.startswith("the `cd` to the submit directory")


def _launched(inv) -> str:
    return f"python -m {inv.module}" if inv.module else f"python {inv.script_file}"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _cd_before(script, line: int | None) -> bool:
    """Whether the batch script changes directory before ``line`` (or anywhere, when the line is unknown)."""
    return any(c.name in ("cd", "pushd") and (line is None or c.line < line) for c in script.commands)


@check("SB018", "entry-not-found", severity="error")
def entry_not_found(ctx, script, job_env) -> Iterator[Finding]:
    """
    What it checks: that a ``python -m scripts.X`` (or ``torchrun -m scripts.X``, or
    ``python scripts/x.py``) launched by the batch script finds its file in the directory it runs
    in: the directory ``sbatch`` is run from (or ``#SBATCH --chdir``), or the target of the last
    literal ``cd`` before it; also through a literal ``PYTHONPATH``. ``preflight check --checkout DIR``
    takes the submit directory to be that checkout (``preflight sbatch`` submits from where it runs).

    Why it matters: run outside the nanochat checkout, python prints ``No module named
    'scripts'`` and exits 1 before the phase starts; later phases then fail the same way or run on
    nothing.

    Example:
        sbatch ~/nanochat/runs/speedrun.sh     # from the home directory, and the script has no cd

    How to fix: ``cd`` to the checkout in the script before the first phase (``cd "$HOME/nanochat"``),
    submit from the checkout, or set ``#SBATCH --chdir=/path/to/nanochat``.
    """
    from preflight.checkout import Checkout
    from preflight.checks.flags import checkout_or_none

    script.require_readable()
    pythonpath = job_env.get("PYTHONPATH") or ""
    # `export PYTHONPATH="$PYTHONPATH:$PWD/src"`: its known entries are searched; a module missing from them may be
    # in one known only when the job runs (then a warning, not an error)
    unknown = [p for p in pythonpath.split(":") if p and any(ch in p for ch in "$`")]
    extra = [Path(p) for p in pythonpath.split(":") if p and p not in unknown]
    missing: dict[Path, list] = {}  # working directory -> [(invocation, entry, why)]
    absent: dict[Path, list] = {}  # working directories that do not exist on this machine
    given = checkout_or_none(ctx)
    given = given if given is not None and given.source == "--checkout" else None
    explicit = ctx.config.get("checkout") if ctx.config is not None else None
    if given is None and explicit and _is_dir(Path(os.path.expanduser(str(explicit)))):
        # --checkout DIR of a project that is no nanochat checkout (a fork's own program): still the directory the
        # job is submitted from
        given = Checkout(Path(os.path.expanduser(str(explicit))), "--checkout")
    for inv in script.invocations:  # the batch script's own launches (a followed script runs where it is called)
        entry = None
        if inv.module and inv.module.split(".")[0] == "scripts":
            entry = Path(*inv.module.split(".")).with_suffix(".py")
        elif inv.script_file and not Path(inv.script_file).is_absolute() and "$" not in inv.script_file:
            entry = Path(inv.script_file)
        if (
            entry is None
            or any(p in _ELSEWHERE for p in inv.prefixes)
            or any(o.startswith(("--chdir", "-D")) for o in inv.srun_opts)
        ):
            continue
        where = _launch_dir(ctx, script, inv, job_env)
        if where is None:
            continue
        roots = [where[0], *extra] if inv.module else [where[0]]
        if given is not None and not ctx.inputs.submitting and _from_submit_dir(where[1]):
            # `preflight check --checkout DIR`: the job is submitted later, from where the user will; the checkout
            # it runs is the one given, not the directory preflight happens to run in
            where = (given.root, f"{where[1]}, taken to be the checkout given (--checkout)")
            roots = [where[0], *extra] if inv.module else [where[0]]
        elif not _is_dir(where[0]):
            # a cluster path (cd /mnt/...) seen from CI or a laptop: --checkout says what is there
            if given is not None:
                roots = [given.root, *extra]
            else:
                absent.setdefault(where[0], []).append((inv, entry, where[1]))
                continue
        if not any(Checkout(r, where[1]).entry_file(inv.module, inv.script_file) for r in roots):
            missing.setdefault(where[0], []).append((inv, entry, where[1]))
    if given is not None and not ctx.inputs.submitting:
        # a script the job runs (`bash speedrun_cluster.sh`) runs in its caller's directory, here the checkout given:
        # its launches of the checkout's scripts.X need them there too
        # (one that cds elsewhere first runs its launches there: not judged here)
        lacking = [
            inv
            for model in script.walk()
            if model is not script and not _cd_before(script, script.include_lines.get(str(model.path)))
            for inv in model.invocations
            if not any(c.name in ("cd", "pushd") and c.line < inv.line for c in model.commands)
            and inv.module
            and inv.module.split(".")[0] == "scripts"
            and not any(p in _ELSEWHERE for p in inv.prefixes)
            and not given.entry_file(inv.module, None)
        ]
        if lacking:
            names = list(dict.fromkeys(f"{inv.module} (line {inv.line})" for inv in lacking))
            yield Finding(
                f"{Path(script.file_of(lacking[0])).name} launches {', '.join(names)}, which the checkout given "
                f"({given.root}) does not have: python stops with `No module named` there"
                + (
                    f", unless PYTHONPATH's {', '.join(unknown)} (known only when the job runs) has it"
                    if unknown
                    else ""
                ),
                path=script.file_of(lacking[0]),
                line=lacking[0].line,
                severity=Severity.WARNING if unknown else None,
                fix="remove these launches, or run them from a checkout that has these scripts",
            )
    for workdir, launches in absent.items():
        inv, entry, why = launches[0]
        yield Finding(
            f"{_launched(inv)} (line {inv.line}) runs in {workdir} ({why}), which does not exist on this machine: "
            f"preflight cannot tell whether it has {entry}",
            path=script.file_of(inv),
            line=inv.line,
            severity=Severity.WARNING,
            fix="run preflight where that path exists (a login node of the cluster), or pass --checkout DIR with "
            "a copy of the checkout the job runs",
        )
    for workdir, launches in missing.items():
        inv, entry, why = launches[0]
        launched = _launched(inv)
        more = (
            f" (and {len(launches) - 1} later launch{'es' if len(launches) > 2 else ''} there)"
            if len(launches) > 1
            else ""
        )
        yield Finding(
            f"{launched} (line {inv.line}){more} runs in {workdir} ({why}), which has no {entry}: python stops "
            "with `No module named` before the phase starts"
            + (
                f", unless it is under PYTHONPATH's {', '.join(unknown)} (known only when the job runs)"
                if unknown and inv.module
                else ""
            ),
            path=script.file_of(inv),
            line=inv.line,
            severity=Severity.WARNING if unknown and inv.module else None,
            # in the checkout given, a nanochat tree: the code is there but this entry point is not (removed or
            # renamed in that version: mid_train from 2026-01-31, base_loss folded into base_eval): no cd helps
            fix=f"remove the launch or use the entry point that replaced it ({Path(workdir) / 'scripts'} lists this "
            f"checkout's), or run it with a checkout that has {entry}"
            if given is not None and Path(workdir) == Path(given.root) and _is_dir(Path(workdir) / "scripts")
            else f"cd to the nanochat checkout before line {inv.line} (cd /path/to/nanochat), submit from it, "
            "or set #SBATCH --chdir=/path/to/nanochat",
        )
