"""Checks on the environment the job will see (ctx.environ overlaid with the script's exports): ENV001-ENV004."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from preflight.facts import Skip
from preflight.model import Finding
from preflight.phases import TRAIN_PHASES
from preflight.redact import is_secret_name, mask
from preflight.registry import check
from preflight.script.model import VAR_NAME_RE

_OFF_MODES = ("offline", "disabled", "dryrun")


def variable_origin(ctx, name: str) -> tuple[str, str | None, int | None]:
    """(where the job's value of $name comes from, file, line): the script's last assignment
    that takes effect (a ``${X:-default}`` one only when nothing set X before), else the
    environment preflight runs in (sbatch hands it to the job), else unset."""
    script = ctx.get("script", None)
    found = None
    if script is not None and script.ok:
        for a in script.all_assignments:
            if a.name != name or (a.default_only and (found is not None or ctx.environ.get(name))):
                continue
            found = a
    if found is not None:
        where = (
            f"{Path(found.file).name}:{found.line}" if found.file and found.file != "<script>" else f"line {found.line}"
        )
        how = (
            f"{name}={found.value} set for the script it runs ({where})"
            if found.prefix
            else f"{'export ' if found.exported else ''}{name}={found.value} in the script ({where})"
        )
        return (
            how,
            found.file if found.file != "<script>" else None,
            found.line,
        )
    job_env = ctx.get("job_env", None)
    if job_env is not None and name in job_env.dropped:
        return (
            f"{name} is set where preflight runs, but --export={job_env.export} ({job_env.export_source}) "
            "does not pass it to the job",
            None,
            None,
        )
    if ctx.environ.get(name) is not None:
        return f"{name}={ctx.environ[name]} in the environment it is submitted from", None, None
    return f"{name} is not set", None, None


# what a shell word's variables and substitutions are, and its quotes: what is left is literal text
_SHELL_PARTS_RE = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)|\$\w+|`[^`]*`|[\"']")


NO_TRAINING = "no training phase (only they start wandb)"
RUN_TIME = "the run name is computed when the job runs"


def _unread_training(ctx) -> str | None:
    """Why what the job sets cannot be told: its training runs in a script preflight cannot read here (SB020)."""
    from preflight.plan_launches import unread_runners

    try:
        script, profile = ctx.get("script", None), ctx.get("profile", None)
    except Exception:  # an unreadable script or profile: the checks' own facts say so
        return None
    runners = unread_runners(script, profile) if profile is not None else []
    if not runners:
        return None
    cmd, target = runners[0]
    return f"the training runs in {target} (line {cmd.line}), which preflight cannot read here: what it sets is unknown"


def _runs_no_python(ctx, script) -> bool:
    """The script launches no Python at all, hides none (`$LAUNCH`, eval of unknown text) and runs no script
    preflight cannot read: whatever it sets, no trainer of it reads."""
    return not script.all_invocations and not any(m.hidden for m in script.walk()) and not _unread_training(ctx)


_DEFAULT_TEXT_RE = re.compile(r"^\$\{(\w+):?[-=](.*)\}$")  # ${NAME:-default text}


def _last_assignment(script, value: str, inv):
    """The assignment before the launch of the one variable a word is (`"$WANDB_RUN"`, `${wb_run}`), or None."""
    m = re.fullmatch(r'"?\$\{?(\w+)\}?"?', value.strip())
    if m is None:
        return None
    named = [a for a in script.all_assignments if a.name == m.group(1) and (a.file != inv.file or a.line < inv.line)]
    return named[-1] if named else None


def _computed_at_run_time(script, value: str, inv) -> str | None:
    """Where a word that is only a variable gets a value the job computes (`wb_run="$(wb_run_for base d12)"`)."""
    last = _last_assignment(script, value, inv)
    if last is None or not any(c in last.value for c in ("$(", "`")):
        return None
    return f"{last.name}={last.value.strip()} at line {last.line}"


def _set_nowhere(script, value: str, job_env) -> bool:
    """A word that is only a variable (`$WANDB_RUN`) which neither the script (nor a file it sources, all of them
    read) nor the environment the job gets sets: it expands to nothing."""
    m = re.fullmatch(r'"?\$\{?(\w+)\}?"?', value.strip())
    # (an environment's activation script, `source .venv/bin/activate`, sets its paths, never a run name)
    unread = [p for _, p, _ in script.missing_includes if not re.search(r"(?:^|/)(?:activate|conda\.sh)$", str(p))]
    if m is None or unread or script.hidden or job_env.get(m.group(1)) is not None:
        return False
    return not any(a.name == m.group(1) for a in script.all_assignments)


def _has_own_text(script, value: str, inv, depth: int = 0) -> bool:
    """Text of its own in a word whose value is unknown (`${SERIES} baseline`), also through the variable it names
    when that one defaults to text (`WANDB_RUN=${WANDB_RUN:-run-$(date +%F)}`): a named run either way."""
    if _SHELL_PARTS_RE.sub("", value).strip():
        return True
    last = _last_assignment(script, value, inv) if depth <= 3 else None
    if last is None:
        return False
    own = last.value.strip().strip('"')
    if own == "dummy":  # one branch's dummy (`if [ -f key ]; then WANDB_RUN=name; else WANDB_RUN=dummy; fi`)
        return False
    d = _DEFAULT_TEXT_RE.match(own)
    return _has_own_text(script, d.group(2) if d else own, inv, depth + 1)


def wandb_run_name(ctx, job_env) -> tuple[str | None, str, int | None, str | None]:
    """(run name the training sees, where it came from, line, file). None: not set (trainer default dummy)."""
    script = ctx.get("script", None)
    profile = ctx.get("profile", None)
    if script is not None and script.ok and profile is not None:
        for inv in script.all_invocations:
            phase = profile.phase_of_module(inv.entry, inv.args) if inv.entry else None
            # a fork's own entry point (scripts.pre1900_sft) that takes nanochat's --run starts wandb the same way
            fork_entry = phase is None and (inv.entry or "").startswith("scripts.") and inv.flag("run") is not None
            if not inv.entry or (phase not in TRAIN_PHASES and not fork_entry):
                continue
            f = inv.flag("run")
            if f is None:
                continue
            value = f.value or ""
            expanded = script.expand(value, inv.line, inv.file, job_env.start) if "$" in value else value
            if expanded is None and _has_own_text(script, value, inv):
                expanded = value  # a variable with no known value, but text of its own: a named run all the same
            elif expanded is None and (computed := _computed_at_run_time(script, value, inv)):
                return None, f"{RUN_TIME}: --run={value}, {computed}", inv.line, inv.file
            source = f"--run={value}"
            if "WANDB_RUN" in value:
                source += f", {variable_origin(ctx, 'WANDB_RUN')[0]}"
            if expanded is None and f.style == "equals" and _set_nowhere(script, value, job_env):
                # `--run=$WANDB_RUN` with WANDB_RUN set nowhere: the trainer gets an empty name, which is not dummy
                return "", source + ": the trainer gets an empty run name, not dummy", inv.line, inv.file
            return (expanded or None), source, inv.line, inv.file
        trainers = [
            inv
            for inv in script.all_invocations
            if inv.entry and profile.phase_of_module(inv.entry, inv.args) in TRAIN_PHASES
        ]
        if trainers:
            named = _run_from_environment(ctx, job_env, trainers[0])
            if named is not None:
                return named
            return None, "no --run flag (the trainer's default is dummy)", None, None
        if any(inv.entry for inv in script.all_invocations):
            # it launches nanochat entry points, none of which trains (a tokenizer job): nothing starts wandb
            return None, NO_TRAINING, None, None
        if _runs_no_python(ctx, script):  # a pod's start command that clones and installs: it trains nothing
            return None, NO_TRAINING, None, None
    value = job_env.get("WANDB_RUN")
    source, path, line = variable_origin(ctx, "WANDB_RUN")
    return value or None, source, line, path


def _run_from_environment(ctx, job_env, inv) -> tuple[str | None, str, int | None, str | None] | None:
    """A fork's trainer whose run name defaults to an environment variable (``run = os.getenv("WANDB_RUN",
    "dummy")``): the name the job's environment gives it; None where the checkout's default is a constant."""
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    entry = checkout.entry(inv.module, inv.script_file) if checkout is not None else None
    flag = entry.lookup("run") if entry is not None and entry.ok else None
    if flag is None or not flag.env:
        return None
    value = job_env.get(flag.env)
    source, path, line = variable_origin(ctx, flag.env)
    said = f"no --run flag, and {entry.path} takes its default from ${flag.env} ({source})"
    return (value or None), said, line, path


@check("ENV001", "wandb-disabled", severity="info")
def wandb_disabled(ctx, job_env) -> Iterator[Finding]:
    """
    What it checks: whether the training phases log to wandb: ``--run=dummy`` (``WANDB_RUN=dummy``)
    or no ``--run`` at all means wandb logging is off. (``--run=$WANDB_RUN`` with WANDB_RUN set
    nowhere passes an empty name, which is not dummy: wandb starts, and wandb-no-credentials says so.)

    Why it matters: it is only information: ``dummy`` disables wandb and nothing else:
    training, evaluation, checkpoints and report.md are unaffected. Sites that
    require a wandb record can make this an error (``severity: {wandb-disabled: error}``).

    Example:
        torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=$WANDB_RUN   # WANDB_RUN=dummy

    How to fix: nothing is broken. To log, ``export WANDB_RUN=my-run`` plus
    ``WANDB_MODE=offline`` (sync later) or a ``WANDB_API_KEY``.
    """
    name, source, line, path = wandb_run_name(ctx, job_env)
    if source == NO_TRAINING:
        return
    if source.startswith(RUN_TIME):
        raise Skip(f"{source}: whether it is dummy is known only then")
    if name in (None, "dummy") and (hidden := _unread_training(ctx)):
        raise Skip(hidden)
    if name in (None, "dummy"):
        script = ctx.get("script", None)
        if script is not None and any(m.exited for m in script.walk()):
            return  # it exits before its training (exits-before-training says where and why)
        guard = _wandb_guard(script)
        if guard is not None:
            return  # the script exits (line `guard`) unless WANDB_RUN names a run: a run that trains logs
        yield Finding(
            f"wandb logging is off (run = dummy; {source}). Training, evaluation and checkpoints are unaffected: "
            "dummy only disables wandb",
            path=path or (str(script.path) if script is not None and script.path else None),
            line=line,
            fix="optional: export WANDB_RUN=<name> with WANDB_MODE=offline (or a WANDB_API_KEY) to log to wandb",
        )


_WANDB_TEST = re.compile(r'(?:-z\s+"?\$\{?WANDB_RUN\b|\$\{?WANDB_RUN\}?"?\s*!?==?\s*"?dummy)')
_WANDB_REQUIRED = re.compile(r"\$\{WANDB_RUN:?\?")  # ${WANDB_RUN:?message} exits when unset


def _wandb_guard(script) -> int | None:
    """The line where the script exits unless WANDB_RUN is set and not dummy (``[ -z "$WANDB_RUN" ]
    ... exit``, ``[ "$WANDB_RUN" = dummy ] && exit 1``, ``: "${WANDB_RUN:?}"``); None if it has none."""
    lines = list(getattr(script, "lines", None) or [])
    for i, text in enumerate(lines):
        code = text.split("#", 1)[0] if not text.lstrip().startswith("#") else ""
        if _WANDB_REQUIRED.search(code):
            return i + 1
        if _WANDB_TEST.search(code):
            window = " ".join(x.split("#", 1)[0] for x in lines[i : i + 4])
            if re.search(r"\bexit\s+[1-9]|\bexit\b\s*(?:;|$|\bfi\b)|\breturn\s+[1-9]", window):
                return i + 1
    return None


def _has_netrc_key(home: str | None) -> bool:
    if not home:
        return False
    try:
        text = (Path(home) / ".netrc").read_text(errors="replace")[:100_000]
    except OSError:
        return False
    return "api.wandb.ai" in text


def _container_runscript(script) -> str | None:
    """`apptainer run IMG ...` (or singularity's) in the job: the image's runscript runs first, with its own exports."""
    from preflight.script.wrappers import strip_prefixes

    if script is None or not getattr(script, "ok", False):
        return None
    for model in script.walk():
        for cmd in model.commands:
            names = strip_prefixes(cmd.words).names
            if run := next((n for n in names if n in ("apptainer run", "singularity run")), None):
                return run
    return None


@check("ENV002", "wandb-no-credentials", severity="error")
def wandb_no_credentials(ctx, job_env) -> Iterator[Finding]:
    """
    What it checks: a named wandb run (not ``dummy``) with neither ``WANDB_MODE=offline`` /
    ``disabled`` nor credentials (``WANDB_API_KEY`` or ``~/.netrc`` from ``wandb login``).

    Why it matters: rank 0 calls ``wandb.init`` at startup and, with no key on a batch
    node, the phase crashes with ``api_key not configured (no-tty)``; on offline nodes it
    fails even with a key.

    Example:
        export WANDB_RUN=d20-speedrun      # and no WANDB_API_KEY, no WANDB_MODE

    How to fix: ``export WANDB_MODE=offline`` (then ``wandb sync`` from a login node), or
    run ``wandb login`` on the login node, or use ``WANDB_RUN=dummy``.
    """
    name, source, line, path = wandb_run_name(ctx, job_env)
    if name in (None, "dummy"):
        return
    if name == "" and (runner := _container_runscript(ctx.get("script", None))):
        raise Skip(
            f"WANDB_RUN is unset here, and the job runs through `{runner}`, whose image's runscript may set it "
            "(nanochat images default it to dummy): not readable here"
        )
    mode = (job_env.get("WANDB_MODE") or "").lower()
    if mode in _OFF_MODES or job_env.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return
    offline = ctx.config.get("network", "offline") == "offline"
    has_key = bool(job_env.get("WANDB_API_KEY")) or _has_netrc_key(job_env.get("HOME"))
    if has_key and not offline:
        return
    why = (
        "compute nodes are offline, so wandb.init cannot reach the server"
        if has_key
        else "no WANDB_API_KEY and no ~/.netrc entry: wandb.init fails with 'api_key not configured (no-tty)'"
    )
    yield Finding(
        f"wandb run {name!r} ({source}) will start wandb, but {why}; the phase crashes at startup",
        path=path,
        line=line,
        fix="export WANDB_MODE=offline in the script (sync later with `wandb sync`)"
        + (
            ", or give the run a name before the launch: WANDB_RUN=${WANDB_RUN:-dummy} turns wandb off"
            if name == ""
            else ""
        ),
    )


def _under(path: Path, root: str | None) -> bool:
    if not root:
        return False
    try:
        return os.path.commonpath([os.path.abspath(str(path)), os.path.abspath(root)]) == os.path.abspath(root)
    except ValueError:
        return False


@check("ENV003", "base-dir-in-home", severity="warning")
def base_dir_in_home(ctx, base_dir, job_env) -> Iterator[Finding]:
    """
    What it checks: ``NANOCHAT_BASE_DIR`` unset (defaults to ``~/.cache/nanochat``) or set to
    a path in the home directory, including the unconditional reset in speedrun.sh.

    Why it matters: a d20 run writes ~30 GB (shards, checkpoints, optimizer shards; the message
    gives the run plan's estimate for this script); home quotas are often 10-50 GB, and the job
    dies mid-phase with a disk-quota error.

    Example:
        export NANOCHAT_BASE_DIR="$HOME/.cache/nanochat"   # speedrun.sh line 15

    How to fix: ``export NANOCHAT_BASE_DIR=/scratch/$USER/nanochat`` and remove (or make
    conditional) the script's own assignment: ``export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-...}``.
    """
    home = job_env.get("HOME")
    if base_dir.default and (hidden := _unread_training(ctx)):
        raise Skip(hidden)
    if base_dir.default or _under(base_dir.path, home):
        if base_dir.line is not None and base_dir.conditional:  # a fallback it takes (`if [ -z ... ]`): nothing is lost
            msg = (
                f"the script sets NANOCHAT_BASE_DIR to {base_dir.path} in the home directory (line {base_dir.line}, "
                + (
                    "its default when nothing is set before the job"
                    if base_dir.fallback
                    else "a conditional assignment"
                )
                + f"); {_run_size(ctx)} may exceed the quota"
            )
            fix = "export NANOCHAT_BASE_DIR=/scratch/$USER/nanochat before sbatch, or change that line's path"
        elif base_dir.line is not None:
            msg = (
                f"NANOCHAT_BASE_DIR is (re)set to {base_dir.path} in the home directory by the script; a value set "
                "before the job is overwritten"
            )
            fix = f"change line {base_dir.line} to: export NANOCHAT_BASE_DIR=${{NANOCHAT_BASE_DIR:-/scratch/$USER/nanochat}}"
        else:
            msg = f"the base dir {base_dir.path} is in the home directory ({base_dir.source}); {_run_size(ctx)} may exceed the quota"
            fix = "export NANOCHAT_BASE_DIR=/scratch/$USER/nanochat (a large shared filesystem)"
            if base_dir.default and (near := _near_miss(ctx)) is not None:
                a, where = near
                msg += (
                    f"; the script sets {a.name} (line {a.line}), which nanochat{where} does not read: did you mean "
                    f"NANOCHAT_BASE_DIR? Its checkpoints go to {base_dir.path}, not {a.value}"
                )
                # not a rename: the script's own later lines may read the name it chose
                fix = f'export NANOCHAT_BASE_DIR="${a.name}" after line {a.line}'
        yield Finding(msg, path=base_dir.file, line=base_dir.line, fix=fix)


# a variable that reads as the base dir's: NANOCHAT_CACHE_DIR, NANOCHAT_HOME, NANOCHAT_DATA_ROOT ...
_BASE_DIR_LIKE_RE = re.compile(r"^NANOCHAT_[A-Z0-9_]*(?:DIR|HOME|PATH|ROOT|CACHE)[A-Z0-9_]*$")
_READ_LIMIT = 4 << 20  # bytes of a checkout's Python read to find a variable's name


def _near_miss(ctx):
    """(the script's assignment of a base-dir-like NANOCHAT_* variable nanochat does not read, where that was
    decided), else None. Upstream nanochat reads only NANOCHAT_BASE_DIR at every commit; a checkout decides a fork."""
    script = ctx.get("script", None)
    if script is None or not script.ok:
        return None
    checkout = ctx.get("checkout", None)
    for a in script.all_assignments:
        if a.name == "NANOCHAT_BASE_DIR" or not _BASE_DIR_LIKE_RE.match(a.name):
            continue
        if checkout is None:
            return a, " (upstream, at every commit)"
        if not _checkout_mentions(Path(checkout.root), a.name):
            return a, " at this checkout"
    return None


def _checkout_mentions(root: Path, name: str) -> bool:
    """Whether the checkout's Python (nanochat/, scripts/, at most _READ_LIMIT bytes) names ``name``; True when
    it cannot be read (then nothing is claimed)."""
    needle, budget = name.encode(), _READ_LIMIT
    try:
        files = [f for d in ("nanochat", "scripts") for f in sorted((root / d).glob("**/*.py"))]
        for f in files:
            data = f.read_bytes()[:budget]
            budget -= len(data)
            if needle in data:
                return True
            if budget <= 0:
                return True
    except OSError:
        return True
    return False


def _run_size(ctx) -> str:
    """What the job writes, from the run plan when there is one."""
    try:
        plan = ctx.get("plan", None)
    except Exception:  # no plan (unreadable script, unknown depth): the rule of thumb
        plan = None
    if plan is None or not plan.disk_bytes or not any(p.name in TRAIN_PHASES for p in plan.phases):
        return "a d20 run's ~30 GB"  # no plan, or one of nothing the script trains: the rule of thumb
    gb = plan.disk_bytes / 1e9
    return (
        f"this d{plan.depth} run's ~{gb:.1f} GB (run plan)"
        if gb < 10
        else f"this d{plan.depth} run's ~{gb:.0f} GB (run plan)"
    )


@check("ENV004", "omp-threads-unset", severity="warning")
def omp_threads_unset(ctx, job_env) -> Iterator[Finding]:
    """
    What it checks: ``OMP_NUM_THREADS`` not set for a job that runs plain ``python`` steps. A job
    whose every launch is ``torchrun`` is not told: torchrun sets it to 1 for its workers.

    Why it matters: plain ``python -m`` steps (tokenizer training, evals) start one thread per
    core per process and oversubscribe the node; nanochat's scripts export ``OMP_NUM_THREADS=1``.

    Example:
        python -m scripts.tok_train   # no export OMP_NUM_THREADS

    How to fix: ``export OMP_NUM_THREADS=1`` near the top of the script.
    """
    if not job_env.get("OMP_NUM_THREADS"):
        if hidden := _unread_training(ctx):
            raise Skip(hidden)
        script = ctx.get("script", None)
        launches = list(script.all_invocations) if script is not None and script.ok else []
        # torchrun sets OMP_NUM_THREADS=1 for its workers; `OMP_NUM_THREADS=1 python -m ...` sets it for one step
        plain = [
            inv
            for inv in launches
            if not inv.launcher.endswith("torchrun") and "OMP_NUM_THREADS" not in (inv.command.env or {})
        ]
        if launches and not plain or script is not None and script.ok and _runs_no_python(ctx, script):
            return
        first = plain[0] if plain else None
        yield Finding(
            "OMP_NUM_THREADS is not set for the job"
            + (
                f": its plain python steps (first: {first.entry or first.script_file}) run one thread per core"
                if first
                else ""
            ),
            path=script.file_of(first)
            if first is not None
            else str(script.path)
            if script is not None and script.path
            else None,
            line=first.line if first is not None else None,
            fix="export OMP_NUM_THREADS=1",
        )


@check("ENV005", "environment-not-passed", severity="warning")
def environment_not_passed(ctx, job_env) -> Iterator[Finding]:
    """
    What it checks: ``--export=NONE`` (or a list without ALL), from ``#SBATCH``, the sbatch command
    line or ``$SBATCH_EXPORT``, while variables the trainer or the script reads are set only in
    the shell that submits: NANOCHAT_BASE_DIR, WANDB_*, HF_*, OMP_NUM_THREADS, and any the script uses
    without setting.

    Why it matters: the job then starts with SLURM's variables and the login profile only. A
    NANOCHAT_BASE_DIR exported in the terminal does not reach it: the run downloads into and
    fills ~/.cache/nanochat instead of scratch, and offline settings are lost.

    Example:
        #SBATCH --export=NONE
        (in the terminal: export NANOCHAT_BASE_DIR=/scratch/me/nanochat; sbatch job.sh)

    How to fix: set the variables in the script (``export NANOCHAT_BASE_DIR=...``), or pass them:
    ``--export=ALL``, or ``--export=NANOCHAT_BASE_DIR`` (that one and SLURM's own).
    """
    from preflight.script.jobenv import TRAINER_ENV

    if not job_env.dropped:
        return
    script = ctx.get("script", None)
    used: set[str] = set(TRAINER_ENV)
    if script is not None and script.ok:
        set_here = {a.name for a in script.all_assignments}
        used |= {n for c in script.all_commands for w in c.raw_words for n in VAR_NAME_RE.findall(w)} - set_here
    lost = [n for n in sorted(job_env.dropped) if n in used]
    if not lost:
        return
    shown = ", ".join(
        f"{n}={mask(job_env.dropped[n]) if is_secret_name(n) else job_env.dropped[n][:80]}" for n in lost[:6]
    ) + (" ..." if len(lost) > 6 else "")
    line = int(job_env.export_source[5:]) if job_env.export_source.startswith("line ") else None
    yield Finding(
        f"--export={job_env.export} ({job_env.export_source}): the job does not get {shown} from the shell that "
        "submits it (only SLURM's variables and the login profile); "
        + (
            "it uses ~/.cache/nanochat as its base dir" if "NANOCHAT_BASE_DIR" in lost else "the script sees them unset"
        ),
        path=str(script.path) if script is not None and script.path else None,
        line=line,
        fix=f"export them in the script, or submit with --export=ALL (or --export={','.join(lost[:6])}: only those)",
    )
