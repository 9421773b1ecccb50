"""The resume plan (the ``resume`` fact): the commands that pick a job up at its first incomplete phase,
the job's own command lines where its script is known, else built from the era profile, and the fixes
its crashes call for first."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.phases import CKPT_DIR_RE, checkpoint_tag
from preflight.phases import PHASE_NAMES as PHASES
from preflight.phases import TORCHRUN_SCRIPTS as LAUNCHED_BY_TORCHRUN
from preflight.verdict import PhaseVerdict


@dataclass
class ResumePlan:
    phase: str | None
    commands: list[str]
    note: str = ""
    fixes: list[str] = field(default_factory=list)  # first fix these (prefetch ...), then run the commands
    source: str = "profile"  # script: the job's own command lines; profile: built from the era profile
    # log values not put into a command (not a plain flag value: "d20$(touch x)"), as "key = value"
    refused: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)  # earlier phases outside the logs, taken as done
    remarks: list[str] = field(default_factory=list)  # what the commands assume or changed (the note's tail)
    env: dict[str, str] = field(default_factory=dict)  # to export before the commands (the run's own base dir)

    def to_json(self) -> dict[str, Any]:
        out = {
            "phase": self.phase,
            "commands": self.commands,
            "note": self.note,
            "fixes": self.fixes,
            "source": self.source,
        }
        if self.refused:
            out["refused"] = self.refused
        if self.assumed:
            out["assumed"] = self.assumed
        if self.remarks:
            out["remarks"] = self.remarks
        if self.env:
            out["env"] = self.env
        return out


# a value from a log line that may go into a command the user pastes: no quotes, blanks, $, `, ;, |, &, <, >
PLAIN_FLAG_VALUE = re.compile(r"[A-Za-z0-9_.,:+\-/@%=]{1,200}")


def _fixes(ctx: Any, logs: Any, profile: Any, from_phase: str) -> list[str]:
    """The fixes the crashes from ``from_phase`` on call for, one per cause (every offline
    dataset in one prefetch command)."""
    from preflight.causes import CASCADE, classify_traceback, fix_for
    from preflight.checks.logs_crash import hf_settings, too_big_fix

    if logs is None:
        return []
    later = set(PHASES[PHASES.index(from_phase) :]) if from_phase in PHASES else set(PHASES)
    by_cause: dict[str, list[tuple[str, str | None]]] = {}
    phase_of: dict[str, str | None] = {}  # the phase whose entry point spells the cause's fix
    first_of: dict[str, Any] = {}
    too_big: dict[str, str] = {}  # a setup out-of-memory no batch size fixes: the model outgrows the GPUs
    for tb, seg in last_crashes(logs):
        if (tb.phase or seg.phase) not in later:
            continue
        cause = classify_traceback(tb, profile)
        if cause.name == "other" or cause.name in CASCADE:
            continue  # another rank's failure seen from this one: its own fix is rank-failure's
        items = by_cause.setdefault(cause.name, [])
        phase_of.setdefault(cause.name, tb.phase or seg.phase)
        first_of.setdefault(cause.name, cause)  # its groups spell the fix (the file a full disk could not take)
        segs = logs.by_phase(tb.phase or seg.phase) if (tb.phase or seg.phase) else [seg]
        if not any(s.step_lines for s in segs) and (big := too_big_fix(tb, segs, cause)):
            too_big.setdefault(cause.name, big)
        if cause.dataset and (cause.dataset, cause.config) not in items:
            items.append((cause.dataset, cause.config))
    checkout = ctx.get("checkout", None)
    return [
        too_big.get(name)
        or fix_for(
            first_of[name],
            profile,
            hf=hf_settings(ctx),
            datasets=items,
            checkout=checkout,
            phase=phase_of[name],
            batch=device_batch_size(logs, phase_of[name], profile),
        )
        for name, items in by_cause.items()
    ]


def last_crashes(logs: Any) -> list:
    """The crashes of each phase's last crashed process: what a resume must fix. An earlier attempt's crash (a
    sweep's out-of-memory, then a later try's own error; a Ctrl-C, then a run that got going) was answered by the
    attempts after it."""
    from preflight.checks.logs_crash import crashes
    from preflight.verdict import superseded

    found = [
        (tb, seg)
        for tb, seg in crashes(logs)
        if not ((tb.phase or seg.phase) and superseded(tb, logs.by_phase(tb.phase or seg.phase)))
    ]
    last = {tb.phase or seg.phase: seg for tb, seg in found}
    return [(tb, seg) for tb, seg in found if seg is last[tb.phase or seg.phase]]


def _fork_entry_points(logs: Any) -> dict[str, str]:
    """nanochat script -> the fork's own copy of it that ran (base_train -> scripts.base_train_gc), where a crash's
    traceback shows one: a rerun of the canonical script would drop what the copy adds (its gradient checkpointing)."""
    if logs is None:
        return {}
    return {tb.script: tb.entry for tb, _seg in last_crashes(logs) if tb.script and tb.entry}


def _out_of_memory(logs: Any, profile: Any) -> set[str]:
    """The phases whose last crashed process ran out of memory."""
    from preflight.causes import classify_traceback

    if logs is None:
        return set()
    return {
        tb.phase or seg.phase
        for tb, seg in last_crashes(logs)
        if classify_traceback(tb, profile).name == "out of memory"
    }


def _script_commands(ctx: Any, phase: str) -> list[str] | None:
    """The job's own command lines from the first step of ``phase`` on (None: no script known)."""
    js = ctx.get("jobscript", None)
    steps = list(getattr(js, "steps", None) or [])
    first = next((i for i, st in enumerate(steps) if st.phase == phase), None)
    if first is None:
        return None
    return [st.command for st in steps[first:]]


def _flag(profile: Any, key: str) -> str:
    sep = profile.flag_word_sep if hasattr(profile, "flag_word_sep") else "_"
    return "--" + key.replace("_", sep)


def _command(module: str, args: list[str], world: int, nodes: int = 1) -> str:
    base = module.rsplit(".", 1)[-1]
    tail = " -- " + " ".join(args) if args else ""
    if base in LAUNCHED_BY_TORCHRUN and nodes > 1:
        # one torchrun per node meeting on the allocation's first node (scripts/speedrun_multinode.slurm)
        return (
            f"srun --nodes={nodes} --ntasks-per-node=1 torchrun --nnodes={nodes} "
            f"--nproc_per_node={max(1, world // nodes)} --rdzv_backend=c10d "
            '--rdzv_endpoint="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):29500" '
            f'--rdzv_id="$SLURM_JOB_ID" -m {module}' + tail
        )
    if base in LAUNCHED_BY_TORCHRUN and world > 1:
        return f"torchrun --standalone --nproc_per_node={world} -m {module}" + tail
    return f"python -m {module}" + (" " + " ".join(args) if args else "")


ASSUMED_WORLD = 8  # a speedrun node's GPUs, where nothing shows the job's


def job_world_size(ctx: Any, logs: Any, inv: Any) -> tuple[int, str]:
    """The processes the job ran, and a note where that is a guess ("" when the evidence says)."""
    ledger = ctx.get("ledger", None)
    if isinstance(ledger, dict) and (ledger.get("expected") or {}).get("world_size"):
        return int(ledger["expected"]["world_size"]), ""
    if logs is not None:
        ws = [s.world_size for s in logs.segments if s.world_size]
        if ws:
            return ws[-1], ""
        launched = [_launch_width(s.command.text) for s in logs.segments if s.command is not None]
        if any(n is not None for n in launched):  # the traced command line (`+ torchrun --nproc_per_node=2 ...`)
            return [n for n in launched if n is not None][-1], ""
        if any(s.device in ("cpu", "mps") for s in logs.segments):
            return 1, ""  # nanochat runs one process on a CPU or a Mac: no torchrun
    if inv is not None and "base" in inv.phases and inv.phases["base"].last:
        ranks = inv.phases["base"].last.optim
        if ranks:
            return max(ranks) + 1, ""
    seen = {r for s in (logs.segments if logs is not None else []) for tb in s.tracebacks for r in tb.ranks}
    # the ranks that printed a traceback are a lower bound only (an excerpt, one node of several): still a guess
    named = f" (they name ranks up to {max(seen)})" if seen else ""
    return ASSUMED_WORLD, (
        f"the logs do not say how many GPUs the job ran{named}: --nproc_per_node={ASSUMED_WORLD} is assumed; "
        "use the job's own count"
    )


_NPROC_RE = re.compile(r"--nproc[_-]per[_-]node[= ](\d{1,4})\b")


def _launch_width(command: str) -> int | None:
    """Processes a traced command line started: torchrun's --nproc_per_node, 1 for plain python, None unknown."""
    if re.search(r"(?:^|[\s/+])torchrun\s", command):
        m = _NPROC_RE.search(command)
        return int(m.group(1)) if m else None
    return 1 if re.search(r"(?:^|[\s/+])python[\d.]*\s", command) else None


_RUN_DIR_RE = re.compile(r"^(/.+?)/(?:" + CKPT_DIR_RE.pattern + r"|tokenizer)/")  # group 1: the base dir


def logged_base_dir(logs: Any) -> str | None:
    """The NANOCHAT_BASE_DIR the logged run wrote to (its last save's, or load's, path), where it is not the default
    ~/.cache/nanochat: the resume must run there too, or it finds none of the run's files."""
    if logs is None:
        return None
    paths = [e.data.get("path") or "" for s in logs.segments for e in s.saves]
    paths += [(s.loaded.data.get("path") or "") + "/" for s in logs.segments if s.loaded is not None]
    found = [m.group(1) for p in paths if (m := _RUN_DIR_RE.match(p))]
    if not found or found[-1].endswith("/.cache/nanochat") or not PLAIN_FLAG_VALUE.fullmatch(found[-1]):
        return None  # (a path that is no plain word never goes into a command)
    return found[-1]


def _nodes(ctx: Any) -> int:
    """How many nodes the job ran on (scontrol's NumNodes, else the widest step in accounting)."""
    job = ctx.get("job", None)
    raw = getattr(job, "raw", None) or {}
    n = str(raw.get("NumNodes") or "").split("-")[0]
    if n.isdigit():
        return int(n)
    steps = ctx.get("job_steps", None) or []
    counts = [int(s["NNodes"]) for s in steps if str(s.get("NNodes", "")).isdigit()]
    return max(counts, default=1)


def resume_fact(ctx: Any) -> ResumePlan:
    from preflight.ckpt import get_profile

    phases = ctx.get("phases")
    profile = get_profile(ctx)
    logs = ctx.get("logs", None)
    if ctx.get("checkpoints", None) is None and logs is not None and logs.no_pipeline_phase:
        return ResumePlan(None, [], "no process in these logs is a phase of the pipeline (log-unusable): no plan")
    first = next((v for v in phases.verdicts if v.expected and v.status != "done" and not v.before_logs), None)
    if first is None:
        return ResumePlan(None, [], "every expected phase is done")
    outside = [v.name for v in phases.verdicts[: PHASES.index(first.name)] if v.before_logs]
    inv = ctx.get("checkpoints", None)
    if inv is None and logs is not None and logs.logs and not logs.recognised:
        # nothing read: "not run" is not known, and a plan from the tokenizer would redo a finished run
        return ResumePlan(None, [], "nothing in the logs is in nanochat's formats (log-unusable): no plan")
    world, world_guess = job_world_size(ctx, logs, inv)
    nodes = _nodes(ctx)
    modules = profile.modules
    commands: list[str] = []
    refused: list[str] = []
    start = PHASES.index(first.name)
    oom = _out_of_memory(logs, profile)
    halved: list[str] = []
    tag = run_model_tag(logs)
    checkout = ctx.get("checkout", None)
    untagged: list[str] = []  # loaders with no model tag flag: they take the largest dN, which may not be the run's
    entries = _fork_entry_points(logs)
    for v in phases.verdicts[start:]:
        if not v.expected:
            continue
        spec = profile.phase(v.name) or {}
        if v.name == "report":
            if modules.get("report"):
                commands.append(f"python -m {modules['report']} generate")
            continue
        modules_run = list(spec.get("modules") or [])
        if v.trained is not None:  # its training is done: from the evaluation that crashed on
            names = [m.rsplit(".", 1)[-1] for m in modules_run]
            cut = names.index(v.rerun) if v.rerun in names else 1
            modules_run = [m for m in modules_run[cut:] if m != spec.get("train_module")]
        for module in modules_run:
            base = module.rsplit(".", 1)[-1]
            args: list[str] = []
            if base == "chat_eval":
                args = ["-i", v.name] + (["-a", "GSM8K"] if v.name == "rl" else [])
            elif module == spec.get("train_module"):
                # midtraining runs base's micro-batch (the fix says so): after base ran out of memory, mid's too
                shrink = v.name in oom or (v.name == "mid" and "base" in oom)
                args = _train_args(profile, v, logs, spec, refused, halved if shrink else None)
            elif logs is not None:
                args = _eval_args(profile, logs.by_phase(v.name), base, refused)
            if (
                tag is not None
                and v.name != "tokenizer"
                and module != (profile.phase("base") or {}).get("train_module")
            ):
                tagged = _tag_args(checkout, profile, module, args, tag)
                args += tagged or []
                if tagged is None:
                    untagged.append(base)
            commands.append(_command(entries.get(base, module), args, world, nodes))
    note = f"{first.name} is {first.status}" + (f": {first.cause}" if first.cause else "")
    if outside:
        note += (
            f"; {', '.join(outside)} are not in these logs: this plan assumes their outputs exist (pass --base-dir "
            f"to check); if they do not, run them first"
        )
    remarks: list[str] = []  # what the commands assume or changed, said after the status (and below the commands)
    if first.status == "stopped":
        remarks.append(
            f"first make sure {first.name}'s run is over (squeue, ps, or the log still growing): these commands "
            "would train it a second time beside itself"
        )
    old = [
        v.name
        for v in phases.verdicts[start:]
        if v.step is not None
        and saves_predate_resume(profile.phase(v.name) or {}, logs.by_phase(v.name) if logs else [])
    ]
    if old and resume_key(profile, old[0]):
        remarks.append(
            f"{old[0]}'s saves read `Saved model file to:`, the wording of a nanochat from before 2025-11-13 "
            f"(c6abcdf), whose {old[0]} training has no --{resume_key(profile, old[0])}: the plan reruns it from "
            "the start (a checkout from c6abcdf on resumes from its last checkpoint)"
        )
    leak = _impossibly_low(ctx) if first.name != "tokenizer" else None
    if leak:
        remarks.append(
            f"base's {leak} (loss-impossibly-low): these commands rerun a configuration whose model sees what it "
            "predicts; fix that first (see that finding)"
        )
    first_segs = logs.by_phase(first.name) if logs is not None else []
    if first.name == "base" and _trainer_flags(first_segs, "base_train")[1]:
        remarks.append(
            "base_train's flags here are the settings it printed of itself (depth, horizon, micro-batch, sequence "
            "length): these logs show neither its command line nor Overriding lines, so add any other flag the run "
            "was given (the job script has them)"
        )
    if untagged and _tag_may_be_shadowed(ctx, tag):
        remarks.append(
            f"{', '.join(dict.fromkeys(untagged))} takes no model tag in this "
            f"{'checkout' if checkout is not None else 'era'}: it loads the largest dN in base_checkpoints, which is "
            f"not the run's {tag} if a larger one is there (move it out first)"
        )
    wiped = _wiped_by_reset(logs, phases) if any(c.endswith(" generate") for c in commands) else None
    if wiped:
        remarks.append(wiped)
    if halved:
        remarks.append(
            f"{', '.join(halved)} for the out-of-memory (the gradient accumulation steps double: the same total "
            "batch; halve it again if it still does not fit)"
        )
    if world_guess and any("--nproc_per_node" in c for c in commands):
        remarks.append(world_guess)
    if nodes > 1:
        remarks.append(
            f"the job ran on {nodes} nodes: run these inside an allocation of {nodes} nodes "
            f"(sbatch/salloc --nodes={nodes})"
        )
    # (a base dir the user named, --base-dir or NANOCHAT_BASE_DIR, is where they mean to run)
    named_dir = getattr(ctx.inputs, "base_dir", None) or ctx.environ.get("NANOCHAT_BASE_DIR")
    run_dir = logged_base_dir(logs) if not named_dir else None
    env = {"NANOCHAT_BASE_DIR": run_dir} if run_dir is not None else {}
    first_trainer = ((profile.phase(first.name) or {}).get("train_module") or "").rsplit(".", 1)[-1]
    for name, value in launch_env(logs.by_phase(first.name) if logs is not None else [], first_trainer).items():
        env.setdefault(name, value)  # TORCHDYNAMO_DISABLE=1 torchrun ...: the rerun needs it as much as the run did
    if run_dir is not None:
        remarks.append(f"the run wrote to {run_dir} (its saves say so): the commands run there")
    fixes = _fixes(ctx, logs, profile, first.name)
    own = _script_commands(ctx, first.name)
    if own and not (first.status == "partial" and first.step is not None):  # a partial resume needs the resume flag
        return ResumePlan(first.name, own, "; ".join([note, *remarks]), fixes, "script", assumed=outside, env=env)
    if refused:
        note += f"; left out of the commands (not a plain flag value; set it yourself): {', '.join(refused)}"
    return ResumePlan(
        first.name,
        commands,
        "; ".join([note, *remarks]),
        fixes,
        refused=refused,
        assumed=outside,
        remarks=remarks,
        env=env,
    )


def _wiped_by_reset(logs: Any, phases: Any) -> str | None:
    """The report sections a `nanochat.report reset` in these logs deleted: those of the phases done before it."""
    resets = logs.slurm_events("report-reset") if logs is not None else []
    if not resets:
        return None
    ix, reset = resets[-1]
    gone = [
        v.name
        for v in phases.verdicts
        if v.status == "done"
        and v.name != "report"
        and (v.before_logs or all(s.end_line and s.end_line < reset.line for s in logs.by_phase(v.name)))
    ]
    if not gone:
        return None
    return (
        f"the job reset the report ({Path(ix.path).name}:{reset.line}, `nanochat.report reset`) after "
        f"{', '.join(gone)} had run: `report generate` holds only the sections written after it, and theirs are "
        "gone (copy them from an earlier report.md, or rerun their evaluations first)"
    )


def _impossibly_low(ctx: Any) -> str | None:
    """LOG016's reading of base training's curve, where the logs' series is at hand."""
    from preflight.checks.loss_curve import impossibly_low

    try:
        return impossibly_low(ctx.get("series", None))
    except Exception:  # an unreadable log: its own findings say so; the plan stands without this remark
        return None


def trainer_flags(segs: list, trainer: str) -> dict[str, str]:
    """The flags the phase's trainer ran with, as its logs show them: its ``Overriding: key = value`` lines, else
    (argparse eras print none) the traced command line that started it."""
    return _trainer_flags(segs, trainer)[0]


def _trainer_flags(segs: list, trainer: str) -> tuple[dict[str, str], bool]:
    """trainer_flags, and whether they are only the settings base_train printed of itself (its other flags are
    not in the logs)."""
    overrides = next((s.overrides for s in reversed(segs) if s.overrides and s.script in (None, trainer)), {})
    if overrides:
        return overrides, False
    flags = _command_flags(_logged_command(segs, trainer), trainer)
    if flags:
        return flags, False
    # no flags printed (argparse eras, a log without the command): the settings base_train printed of itself, all
    # four base_train flags in every era (a later phase's Model config is the model it loaded, not its flags)
    if trainer != "base_train":
        return {}, False
    settings = next((dict(s.settings) for s in reversed(segs) if s.settings and s.script in (None, trainer)), {})
    return settings, bool(settings)


def _logged_command(segs: list, trainer: str) -> str:
    """The trainer's command line as the logs show it (traced, or quoted by bash's kill report), else ""."""
    return next((s.command.text for s in reversed(segs) if s.command is not None and s.script == trainer), "")


def launch_env(segs: list, trainer: str) -> dict[str, str]:
    """The VAR=value prefix of the trainer's logged command line (`TORCHDYNAMO_DISABLE=1 torchrun ...`), plain
    values only (a log is data)."""
    try:
        words = shlex.split(_logged_command(segs, trainer))
    except ValueError:  # an unbalanced quote in a cut-off line
        return {}
    env: dict[str, str] = {}
    for word in words:
        m = re.fullmatch(r"([A-Z_][A-Z0-9_]{0,63})=(.*)", word)
        if m is None:
            break
        if PLAIN_FLAG_VALUE.fullmatch(m.group(2)):
            env[m.group(1)] = m.group(2)
    return env


def device_batch_size(logs: Any, phase: str | None, profile: Any) -> int | None:
    """The --device_batch_size the phase's trainer ran with, where its logs show it."""
    if logs is None or not phase:
        return None
    trainer = ((profile.phase(phase) or {}).get("train_module") or "").rsplit(".", 1)[-1]
    segs = logs.by_phase(phase)
    flags = trainer_flags(segs, trainer)
    value = next((v for k, v in flags.items() if k.replace("-", "_") == "device_batch_size"), None)
    if value is None:  # its own micro-batch line ("Tokens / micro-batch / rank: 1 x 1024"): every trainer prints it
        value = next((s.settings.get("device_batch_size") for s in reversed(segs) if s.script == trainer), None)
    return int(value) if value is not None and str(value).isdigit() and len(str(value)) <= 6 else None


def _command_flags(command: str, script: str) -> dict[str, str]:
    """--key=value / --key value pairs after `-m scripts.<script>` on a traced command line (a `--` is skipped)."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote in a cut-off line
        return {}
    tail = next(
        (words[i + 2 :] for i, w in enumerate(words[:-1]) if w == "-m" and words[i + 1].endswith(f".{script}")), []
    )
    flags: dict[str, str] = {}
    i = 0
    while i < len(tail):
        word = tail[i]
        if word.startswith("--") and "=" in word:
            key, value = word[2:].split("=", 1)
            flags[key] = value
        elif word.startswith("--") and len(word) > 2 and i + 1 < len(tail) and not tail[i + 1].startswith("-"):
            flags[word[2:]] = tail[i + 1]
            i += 1
        i += 1
    return flags


def run_model_tag(logs: Any) -> str | None:
    """The model tag the run's phases trained, saved and loaded (a `model_tag` flag, a save's or a load's tag
    dir), where the logs show exactly one; None where they show none or several (the plan then names none)."""
    if logs is None:
        return None
    tags: set[str] = set()
    trained: set[str] = set()
    guessed: set[str] = set()
    for seg in logs.segments:
        tags.update(
            str(value).strip("'\"") for key, value in seg.overrides.items() if key.replace("-", "_") == "model_tag"
        )
        # a load of a guessed tag (no --model-tag: the largest dN there) may be another run's model, not this one's
        loaded = seg.loaded.data["path"] if seg.loaded else ""
        paths = [e.data.get("path") or "" for e in seg.saves] + ([loaded] if seg.guessed_tag is None else [])
        tags.update(found[1] for found in map(checkpoint_tag, paths) if found is not None)
        guessed.update(found[1] for found in map(checkpoint_tag, [loaded] if seg.guessed_tag else []) if found)
        if seg.phase == "base" and seg.first_step is not None and str(seg.settings.get("depth", "")).isdigit():
            trained.add(f"d{seg.settings['depth']}")
    tags.discard("")
    # then base_train's own tag for the depth it trained, and only then what a guess loaded
    tags = tags or trained or guessed
    tag = tags.pop() if len(tags) == 1 else None
    return tag if tag is not None and PLAIN_FLAG_VALUE.fullmatch(tag) else None


def _tag_args(checkout: Any, profile: Any, module: str, args: list[str], tag: str) -> list[str] | None:
    """The run's model tag for a later phase's entry point that loads a checkpoint and was given none: without it
    nanochat loads the largest dN there, which may be another run's model. None: the entry point takes no tag."""
    if any(re.match(r"(-g|--model[-_]tag)\b", a) for a in args):
        return []
    from preflight.checkout import model_tag_flag

    flag, _ = model_tag_flag(checkout, profile, module)
    return [f"{flag}={tag}"] if flag else None


def _tag_may_be_shadowed(ctx: Any, tag: str | None) -> bool:
    """Whether an untagged loader may load another model than the run's: a larger dN is in base_checkpoints (where
    the base dir is known), or, where not, the run's tag is its own name (a run named so sits beside others)."""
    from preflight.phases import largest_depth_tag, tag_dirs

    if tag is None:
        return False
    inv = ctx.get("checkpoints", None)
    tags = tag_dirs(Path(inv.base_dir) / "base_checkpoints") if inv is not None and inv.base_exists else None
    if tags is not None:
        return (largest_depth_tag([*tags, tag]) or tag) != tag
    return re.fullmatch(r"d\d+", tag) is None


def _depth_of_saved_tag(segs: list) -> int | None:
    """N of the d<N> model tag the phase's logs saved or resumed into (the last one), else None."""
    for seg in reversed(segs):
        for ev in reversed(seg.saves):
            found = checkpoint_tag(ev.data.get("path") or "")
            m = re.fullmatch(r"d(\d{1,3})", found[1]) if found else None
            if m:
                return int(m.group(1))
    return None


def resume_key(profile: Any, phase: str) -> str | None:
    """The setting a phase's trainer resumes from (resume_from_step), or None where it cannot resume (chat_rl)."""
    if profile is None:
        return None
    spec = profile.phase(phase) or {}
    return spec.get("resume_flag") or (profile.data.get("resume_flag") if phase == "base" else None)


def saves_predate_resume(spec: dict, segs: list) -> bool:
    """The phase's saves use the wording of a nanochat whose trainer cannot resume (classic before 2025-11-13)."""
    pattern = spec.get("save_line_before_resume")
    return bool(pattern) and any(re.search(pattern, e.text) for s in segs for e in s.saves)


def _eval_args(profile: Any, segs: list, script: str, refused: list[str]) -> list[str]:
    """An evaluation's own flags as its logs show them (base_loss's `Overriding: device_batch_size = 1` on a small
    GPU), plain values only; chat_eval's short options and the model tag are the plan's own."""
    if script == "chat_eval":
        return []
    mine = [s for s in segs if s.script == script]
    flags = next((s.overrides for s in reversed(mine) if s.overrides), None) or _command_flags(
        _logged_command(mine, script), script
    )
    skip = ("model_tag", "model_step", "step")
    return [
        shlex.quote(f"{_flag(profile, key)}={value}")
        for key, value in flags.items()
        if key.replace("-", "_") not in skip and _plain(key, value, refused)
    ]


def _plain(key: str, value: Any, refused: list[str]) -> bool:
    """Whether a logged flag is a plain flag a command may repeat (a log is data); else it is noted in ``refused``."""
    if re.fullmatch(r"[A-Za-z_][\w-]{0,63}", key) and PLAIN_FLAG_VALUE.fullmatch(str(value)):
        return True
    refused.append(f"{key[:64]} = {str(value)[:80]!r}")
    return False


def _train_args(
    profile: Any, v: PhaseVerdict, logs: Any, spec: dict, refused: list[str], halved: list[str] | None = None
) -> list[str]:
    """Trainer flags rebuilt from the phase's ``Overriding: key = value`` lines. A log is data: a value
    that is not a plain flag value is left out and reported in ``refused``; the rest is shell-quoted. ``halved``
    (a phase that ran out of memory): its device batch size is halved, and what was halved is added to it."""
    args: list[str] = []
    resume_setting = resume_key(profile, v.name)
    segs = logs.by_phase(v.name) if logs is not None else []
    # the trainer's own flags: base_loss's `Overriding: split_tokens = ...` is no base_train flag
    trainer = (spec.get("train_module") or "").rsplit(".", 1)[-1]
    overrides = trainer_flags(segs, trainer)
    resume_norm = (resume_setting or "").replace("-", "_")
    resumes = bool(
        resume_setting
        and not saves_predate_resume(spec, segs)
        and v.status in ("partial", "failed", "running", "stopped")
        and v.step is not None
        and (v.planned is None or v.step < v.planned)
    )
    # a rerun from scratch computes its horizon again (from the batch it may now be given): only a resume must end
    # its LR schedule where the first run's did
    computed = {s.settings.get("num_iterations") for s in segs if s.horizon_computed} if not resumes else set()
    for key, value in overrides.items():
        if key.replace("-", "_") == resume_norm:
            continue
        if key.replace("-", "_") == "num_iterations" and value in computed:
            continue
        if not _plain(key, value, refused):
            continue
        if halved is not None and key.replace("-", "_") == "device_batch_size" and str(value).isdigit():
            if int(value) > 1:  # the batch that did not fit is no command to rerun as it was
                said = f"{_flag(profile, key)} {value} -> {int(value) // 2}"
                if said not in halved:
                    halved.append(said)
                value = str(int(value) // 2)
        args.append(shlex.quote(f"{_flag(profile, key)}={value}"))
    batch_keys = [k for k in overrides if k.replace("-", "_") == "device_batch_size"]
    if halved is not None and not batch_keys:
        # the default batch ran out of memory (no flag set it): its micro-batch line says what it was
        value = device_batch_size(logs, v.name, profile)
        if value is None and v.name == "mid":  # not run yet: it would run base's
            value = device_batch_size(logs, "base", profile)
        if value is not None and value > 1:
            said = f"{_flag(profile, 'device_batch_size')} {value} -> {value // 2}"
            if said not in halved:
                halved.append(said)
            args.append(f"{_flag(profile, 'device_batch_size')}={value // 2}")
    depth = _depth_of_saved_tag(segs) if v.name == "base" else None
    if depth is not None and not any(k.replace("-", "_") == "depth" for k in overrides):
        # base_train's model tag is d<depth> unless told otherwise: without --depth it would build (and look for)
        # the default d20 (a stderr log holds the saves, not the flags)
        args.append(f"{_flag(profile, 'depth')}={depth}")
    if resumes:
        args.append(f"{_flag(profile, resume_norm)}={v.step}")
    return args
