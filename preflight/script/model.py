"""The data a parsed batch script becomes: directives, assignments, commands, launches
(ScriptModel and its parts); how they are read is in the package's other modules."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$", re.S)
# The expansion budget of one value_at/expand call: a script is data, and its expansion work must stay
# bounded whatever it holds (30 `export PATH=$PATH:/opt/x` lines re-expanded every earlier assignment:
# 2^30 steps; `A=$A$A` doubles the value). Each (name, line) is expanded once per call (memoised); past
# the budget, the nesting or the value size, the value is unknown (None), as for a $(command).
MAX_EXPANSIONS = 20_000
MAX_MODEL_EXPANSIONS = 2_000_000  # assignments looked at, over every call on one script
MAX_EXPANSION_NESTING = 64  # ~6 frames a level: well inside a thread's recursion limit
MAX_VALUE_CHARS = 65_536

# the word of ${X:-word}: it may nest two more levels of ${...} (${NNODES:-${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}})
PARAM_WORD = r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*"
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=+?])(" + PARAM_WORD + r"))?\}|([A-Za-z_][A-Za-z0-9_]*))")
# just the names a text references (`$X`, `${X}`, `${X:-d}`)
VAR_NAME_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


# SLURM's job variables that follow from the script's own directives (variable -> directive keys)
JOB_VARS = {
    "SLURM_NNODES": ("nodes", "N"),
    "SLURM_JOB_NUM_NODES": ("nodes", "N"),
    "SLURM_GPUS_ON_NODE": ("gres", "gpus-per-node"),
    "SLURM_GPUS_PER_NODE": ("gpus-per-node",),  # set only with --gpus-per-node (not with --gres: checked on 22.05)
    "SLURM_NTASKS_PER_NODE": ("ntasks-per-node",),
}


def own_job(script: ScriptModel | None, environ: dict[str, str]) -> str | None:
    """The job id when preflight runs inside the job of this very script (its first step, as in
    scripts/speedrun.slurm): SLURM_JOB_ID is set and SLURM_JOB_NAME is the script's job name (its
    --job-name, else its file name, which is what sbatch names a job). Then the allocation, not the
    directives, says how many nodes and GPUs the job has: `sbatch --nodes=4 job.slurm` overrides them."""
    job_id, job_name = environ.get("SLURM_JOB_ID"), environ.get("SLURM_JOB_NAME")
    if not job_id or not job_name or script is None or script.path is None:
        return None
    names = {Path(script.path).name}
    names.update(d.value for d in script.active_directives() if d.key == "job-name" and d.value)
    return job_id if job_name in names else None


# -- data --------------------------------------------------------------------------------------
@dataclass
class Directive:
    """An ``#SBATCH`` option as the script writes it."""

    line: int
    key: str  # long option name without dashes: gres, nodes, time, output ...
    value: str | None
    raw: str  # the option as written (--gres=gpu:8, -N 2)
    ignored: bool = False  # after the first command: sbatch does not read it
    has_variable: bool = False  # $VAR inside: sbatch reads it literally
    cut: str | None = None  # the rest of the line an unquoted `#` inside this option's word cut off
    scheduler: str = "slurm"  # "pbs": read from a `#PBS` line, as the sbatch option it amounts to

    @property
    def shown(self) -> str:
        """The line as a message quotes it: ``#SBATCH --gres=gpu:8``, ``#PBS select=1:ngpus=4``."""
        return self.raw if self.scheduler == "pbs" else f"#SBATCH {self.raw}"

    @property
    def reader(self) -> str:
        return "qsub" if self.scheduler == "pbs" else "sbatch"


@dataclass
class Assignment:
    """A variable assignment (``X=...``, ``export X=...``) and how surely it takes effect."""

    line: int
    name: str
    value: str  # unquoted text, $VARs not expanded
    exported: bool
    unconditional: bool  # top level, not in if/loop/function, not after && or ||
    default_only: bool = False  # ${X:-...} / : ${X:=...} style: keeps a value set before
    file: str = ""
    resolved: str | None = None  # its value as the static evaluation knows it (uses $1, $@ ...)
    append: bool = False  # ``X+=v`` / ``A+=(v w)``: adds to the value before it
    inline: bool = False  # in shell text a command runs (`srun bash -c "export X=1; torchrun ..."`), at its line
    undecided: bool = False  # in a branch the static evaluation could not decide (it may or may not run)
    prefix: bool = False  # set for one command, a script it runs (`X=v bash run.sh`): in that script's environment


def appended(before: str | None, added: str) -> str:
    """bash's ``X+=added``: text is concatenated; an array ``(a b)`` gains elements (a string
    before it becomes the array's first element)."""
    if not (added.startswith("(") and added.endswith(")")):
        return (before or "") + added
    if not before:
        return added
    head = before[1:-1] if before.startswith("(") and before.endswith(")") else shlex.quote(before)
    return f"({head} {added[1:-1]})"


SWEEP_RUNS_MAX = 256  # a launch's runs in `for` loops are followed up to this many (the plan sums them)
ARRAY_ALL_RE = re.compile(r'^"?\$\{(\w+)\[[@*]\]\}"?$')  # "${DEPTHS[@]}": every element of an array


def array_items(value: str | None) -> list[str] | None:
    """The elements of an array value as the model keeps it (``(12 "a b" 20)``); None if not an array of
    literal elements."""
    if not (value and value.startswith("(") and value.endswith(")")):
        return None
    try:
        items = shlex.split(value[1:-1], comments=True)
    except ValueError:
        return None
    return None if any(ch in item for item in items for ch in "*?[`$") else items


@dataclass
class Word:
    """One shell word: as written and with its quotes removed."""

    raw: str
    value: str  # quotes removed
    expands: bool  # contains an unquoted or double-quoted $


@dataclass
class Command:
    """One simple command of the script, with its prefix assignments and redirections split off."""

    line: int
    end_line: int
    words: list[str]  # values (quotes removed), prefix assignments and redirections removed
    raw_words: list[str]
    env: dict[str, str]  # prefix assignments (X=1 cmd)
    redirects: list[tuple[str, str]]
    op_before: str | None  # ; && || | & or None (start of line)
    op_after: str | None
    background: bool
    depth: int  # nesting in if/while/for/case/function/{ }
    in_condition: bool  # the condition of if/while/until
    negated: bool
    in_function: bool
    file: str
    text: str  # the logical line

    @property
    def name(self) -> str:
        return os.path.basename(self.words[0]) if self.words else ""

    @property
    def conditional(self) -> bool:
        return self.depth > 0 or self.op_before in ("&&", "||") or self.in_function


@dataclass
class Flag:
    """One argument of a launched program: ``--key=value``, ``--key value``, a bare switch or a positional."""

    key: str | None  # without leading dashes; None for a positional argument
    value: str | None
    style: str  # equals | space | bare | short | positional
    raw: str
    after_separator: bool = False  # came after a `--`


def entry_of_file(script_file: str | None) -> str | None:
    """``.../scripts/base_train.py`` -> scripts.base_train (and nanochat/X.py -> nanochat.X); None for another file."""
    sf = (script_file or "").replace("\\", "/")
    if sf.endswith(".py"):
        parts = [p for p in sf[:-3].split("/") if p not in ("", ".")]
        if len(parts) >= 2 and parts[-2] in ("scripts", "nanochat") and parts[-1].isidentifier():
            return f"{parts[-2]}.{parts[-1]}"
    return None


@dataclass
class Invocation:
    """A launch of a Python entry point (``torchrun -m X``, ``python -m X``, ``python file.py``) and its arguments."""

    line: int
    launcher: str  # torchrun | python | srun+torchrun | ...
    module: str | None  # python -m X
    script_file: str | None  # python file.py
    flags: list[Flag]
    args: list[str]
    nproc_per_node: str | None  # as written (8, $NPROC_PER_NODE)
    nnodes: str | None
    standalone: bool
    srun: bool
    background: bool
    checked: bool  # followed by a per-phase exit check
    command: Command
    launcher_opts: list[str] = field(default_factory=list)
    via: str | None = None  # the shell function or shell text it was launched through (`launch ...`, `bash -lc`)
    timeout: str | None = None  # `timeout DURATION` in front of it, as written
    prefixes: list[str] = field(default_factory=list)  # what runs it: srun, timeout, bash -lc, eval ...
    srun_opts: list[str] = field(default_factory=list)  # the options of the srun in front of it
    template: Command | None = None  # the launcher in the shell function it was called through (`via`)
    inline_cd: str | None = None  # the last `cd DIR` before it in the shell text it runs in (`bash -c "cd $X; ..."`)
    # an exit check meant for it that reads another command's status (`torchrun ...; echo done; [ $? -ne 0 ]`):
    # (the check's command, the command whose status it reads)
    misread_check: tuple[Command, Command] | None = None
    # launched through a variable set in branches the script decides only when it runs (`$LAUNCH scripts.base_train`
    # with LAUNCH="torchrun ... -m" or "python -m"): this is the first branch's; the others' as (assignment, launch)
    alternatives: list[tuple[Assignment, Invocation]] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.command.file

    @property
    def default_nproc(self) -> bool:
        """torchrun given no --nproc_per_node in any spelling: it starts its default, one process per node."""
        return (
            self.launcher.endswith("torchrun")
            and self.nproc_per_node is None
            and not any(o.lstrip("-").replace("-", "_").startswith("nproc_per_node") for o in self.launcher_opts)
        )

    @property
    def entry(self) -> str | None:
        """The program launched, as a module: ``-m scripts.base_train``, or a nanochat entry point run as a
        file (``torchrun -- /path/nanochat/scripts/base_train.py``: the same program); None for another file."""
        if self.module:
            return self.module
        return entry_of_file(self.script_file)

    def flag(self, *keys: str) -> Flag | None:
        norm = {k.replace("-", "_") for k in keys}
        for f in self.flags:
            if f.key and f.key.replace("-", "_") in norm:
                return f
        return None


@dataclass
class ScriptModel:
    """What a batch script says, read without running it: directives, assignments, commands, launches."""

    path: Path | None
    text: str = ""
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the file could not be read at all
    unparsable: list[tuple[int, str]] = field(default_factory=list)
    directives: list[Directive] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    first_command_line: int | None = None
    set_e_line: int | None = None
    pipefail_line: int | None = None
    errtrap_line: int | None = None
    shebang: str | None = None
    crlf_lines: int = 0
    cd_targets: list[str] = field(default_factory=list)
    # where bash runs it from its file ($0's directory): its own, or its twin's in the checkout given when this is a copy
    script_dir: str | None = None
    includes: list[ScriptModel] = field(default_factory=list)
    include_lines: dict[str, int] = field(default_factory=dict)  # included file -> line of the call
    size: int = 0
    hidden: list[tuple[int, str, str]] = field(default_factory=list)  # (line, file, why) launches not visible
    missing_includes: list[tuple[Command, str, list]] = field(default_factory=list)  # (call, path, tried) not found
    tree: list = field(default_factory=list, repr=False)  # the block tree (preflight.script.tree), when evaluated
    # static evaluation (preflight.script_eval): what the script starts with and what it skips
    environ: dict[str, str] | None = None  # the environment it is known to start with (None: unknown)
    positional: list[str] | None = None  # its arguments ($@) when known (a followed `bash x.sh --tiny`)
    functions: list = field(default_factory=list)  # script_eval.FunctionDef, definitions that may run
    skipped_lines: list[int] = field(default_factory=list)  # commands/assignments in branches not taken
    evaluated: bool = False  # False: the block structure was not understood; every branch counts
    problems_eval: str | None = None  # why it was not evaluated
    structure_line: int | None = None  # where the block structure broke (an `if` never closed, a stray `fi`)
    exited: tuple[int, str, str, str | None] | None = None  # an exit surely reached: (line, file, `exit 1`, why)
    # a runner's `: "${HF_TOKEN:?}"` with the variable unset here: its caller's environment decides, so the walk went
    # on past it (as `exited`); and whether this is the script preflight was given (not a file it runs)
    required_unset: tuple[int, str, str, str | None] | None = None
    top_level: bool = True
    unreached: list[Command] = field(default_factory=list)  # the commands after it, which never run
    _includes_env: dict = field(default_factory=dict, repr=False)  # id(command) -> script_eval.IncludeCall
    args_at: dict = field(default_factory=dict, repr=False)  # id(command) -> the script's arguments it passes on
    # id(command) -> its words in each iteration of the `for` loops around it, as the evaluation decided them
    loop_words: dict = field(default_factory=dict, repr=False)
    loop_origin: dict = field(default_factory=dict, repr=False)  # id(a per-loop-value copy) -> the script's command
    _by_name: tuple = field(default=(-1, {}), repr=False)  # (assignment count, name -> assignments)
    _expansion_steps: int = field(default=0, repr=False)  # across every call: past MAX_MODEL_EXPANSIONS, unknown

    # -- aggregated views (this script plus the scripts it runs) -----------------------------
    @property
    def ok(self) -> bool:
        return not self.problems

    def require_readable(self) -> None:
        """For checks: skip when the file could not be read (script-unparsable reports it)."""
        if not self.ok:
            from preflight.facts import Skip

            raise Skip("the script could not be read (see script-unparsable)")

    def file_of(self, item: object = None) -> str:
        """The file a command or invocation came from (a sourced or run script's), else this one."""
        file = getattr(item, "file", None)
        if file and file != "<script>":
            return file
        return str(self.path) if self.path else "<script>"

    def call_site(self, item: object) -> tuple[str, int] | None:
        """(file, line) of the call that gave a followed script the words ``item`` runs through its arguments
        (`./run.sh -m nanochat.dataset -n 1` into its `exec python "$@"`); None for a command of its own words."""
        raw = " ".join(getattr(getattr(item, "command", item), "raw_words", None) or [])
        if not re.search(r"\$(?:@|\*|\{[@*]\}|[1-9]|\{[1-9]\})", raw):
            return None
        for m in self.walk():
            for inc in m.includes:
                if str(inc.path) == getattr(item, "file", None) and str(inc.path) in m.include_lines:
                    return str(m.path), m.include_lines[str(inc.path)]
        return None

    def walk(self) -> Iterator[ScriptModel]:
        yield self
        for inc in self.includes:
            yield from inc.walk()

    @property
    def all_commands(self) -> list[Command]:
        return [c for m in self.walk() for c in m.commands]

    @property
    def all_invocations(self) -> list[Invocation]:
        return [i for m in self.walk() for i in m.invocations]

    @property
    def all_assignments(self) -> list[Assignment]:
        return [a for m in self.walk() for a in m.assignments]

    @property
    def errexit(self) -> bool:
        return self.set_e_line is not None or self.errtrap_line is not None

    @property
    def pbs_only(self) -> bool:
        """A PBS/Torque job (``#PBS`` lines, no ``#SBATCH``): qsub submits it, not sbatch."""
        return bool(self.directives) and all(d.scheduler == "pbs" for d in self.directives)

    def active_directives(self) -> list[Directive]:
        return [d for d in self.directives if not d.ignored]

    def directive(self, *keys: str) -> Directive | None:
        """The last active directive for any of these option names (sbatch: last one wins)."""
        found = None
        for d in self.active_directives():
            if d.key in keys:
                found = d
        return found

    def value_at(
        self,
        name: str,
        line: int | None = None,
        file: str | None = None,
        environ: dict[str, str] | None = None,
        _memo: dict | None = None,
    ) -> str | None:
        """The value of $name just before ``line`` (of ``file``): the script's own assignments
        (last one wins, a default-only assignment keeps an earlier value), else ``environ``."""
        memo: dict = {} if _memo is None else _memo
        key = (name, line, file)
        if key in memo:
            return memo[key]
        memo["#steps"] = memo.get("#steps", 0) + 1
        self._expansion_steps += 1
        if (
            memo["#steps"] > MAX_EXPANSIONS
            or memo.get("#nesting", 0) > MAX_EXPANSION_NESTING
            or self._expansion_steps > MAX_MODEL_EXPANSIONS
        ):
            return None
        memo["#nesting"] = memo.get("#nesting", 0) + 1
        try:
            value = self._value_at(name, line, file, environ, memo)
        except RecursionError:  # a deep chain through other names' values
            value = None
        finally:
            memo["#nesting"] -= 1
        if value is not None and len(value) > MAX_VALUE_CHARS:
            value = None
        memo[key] = value
        return value

    def _value_at(
        self, name: str, line: int | None, file: str | None, environ: dict[str, str] | None, memo: dict
    ) -> str | None:
        value = (environ or {}).get(name)
        if name in JOB_VARS and self.directives and not own_job(self, environ or {}):
            # SLURM sets these at job start: the submitting shell's values (an salloc) do not reach the job
            value = self._job_var(name)
        named = self._assignments_named(name)
        self._expansion_steps += len(named)
        later = self._files_run_after(file, line) if named and file is not None and line is not None else ()
        applicable = [
            a
            for a in named
            # before the line; the shell text of a line sets its variables before the launches in it
            if not (
                file is not None
                and line is not None
                and a.file == file
                and (a.line > line or (a.line == line and not a.inline))
            )
            and a.file not in later
        ]
        # only the last plain assignment and what follows it (appends `X+=v`, default-only `${X:=...}`)
        # decide the value: the earlier ones are never expanded (each one's own $name is the recursion, memoised)
        last_plain = len(applicable) - 1
        while last_plain >= 0 and (applicable[last_plain].default_only or applicable[last_plain].append):
            last_plain -= 1
        if last_plain >= 0:
            a = applicable[last_plain]
            value = self._assigned_value(a, environ, memo)
            if a.undecided and last_plain > 0 and not re.search(rf"\$\{{?{re.escape(name)}\b", a.value):
                # a fallback that may not run (`[ -z "$NGPUS" ] && NGPUS=4` after NGPUS=$(nvidia-smi ...)): over a
                # value set before it (not an empty one, and not one it extends), the value is known only where the
                # two agree
                before = self._value_at(name, a.line, a.file, environ, memo)
                if before and before != value:
                    return None
        for a in applicable[last_plain + 1 :]:
            if a.append:
                value = appended(value, self._assigned_value(a, environ, memo) or "")
            elif not value:
                value = self._assigned_value(a, environ, memo)
        return value

    def _files_run_after(self, file: str, line: int) -> set[str]:
        """The followed scripts ``file`` runs after ``line`` (and what they run): their assignments happen later."""
        out: set[str] = set()
        for m in self.walk():
            if str(m.path) != file and not (m is self and file == "<script>"):
                continue
            for inc in m.includes:
                if m.include_lines.get(str(inc.path), 0) > line:
                    out.update(str(sub.path) for sub in inc.walk())
        return out

    def _assigned_value(self, a: Assignment, environ: dict[str, str] | None, memo: dict) -> str | None:
        if a.resolved is not None and (re.search(r"\$\{?[0-9#@*]|\[[@*]\]\}", a.value) or "$(" in a.value):
            # an argument of the script ($1, $@), an array's elements or the script's own directory
            # (`$(cd "$(dirname "$0")" && pwd)`): only the evaluation knows it
            return a.resolved
        return self.expand(a.value, a.line, a.file, environ, _depth=1, _memo=memo) or a.value

    def _assignments_named(self, name: str) -> list[Assignment]:
        """all_assignments of one name, indexed once (and again if a followed script added some)."""
        count = sum(len(m.assignments) for m in self.walk())
        if self._by_name[0] != count:
            index: dict[str, list[Assignment]] = {}
            for a in self.all_assignments:
                index.setdefault(a.name, []).append(a)
            self._by_name = (count, index)
        return self._by_name[1].get(name, [])

    def _job_var(self, name: str) -> str | None:
        """What SLURM sets in the job for this script's own directives (SLURM_NNODES, SLURM_GPUS_ON_NODE...)."""
        from preflight.script.sbatch import count, gpus_from_gres

        if not self.directives:  # not a batch script (run by one, or by srun per node): its caller's job decides
            return None
        d = self.directive(*JOB_VARS[name])
        if d is None or d.value is None:
            return "1" if name in ("SLURM_NNODES", "SLURM_JOB_NUM_NODES") else None
        n = gpus_from_gres(d.value) if d.key == "gres" else count(d.value)
        return None if n is None else str(n)

    def expand(
        self,
        text: str,
        line: int | None = None,
        file: str | None = None,
        environ: dict[str, str] | None = None,
        _depth: int = 0,
        _memo: dict | None = None,
    ) -> str | None:
        """Expand $VAR/${VAR}/${VAR:-default} in text; None if a variable has no known value."""
        if text is None:
            return None
        if _depth > 5 or len(text) > MAX_VALUE_CHARS:
            return None
        memo: dict = {} if _memo is None else _memo
        missing = False

        def sub(m: re.Match) -> str:
            nonlocal missing
            name = m.group(1) or m.group(4)
            op, default = m.group(2), m.group(3)
            if default and len(default) > 1 and default[0] == default[-1] == '"':
                default = default[1:-1]  # ${X:-"dummy"}: bash removes the quotes, in or out of double quotes
            val = self.value_at(name, line, file, environ, memo) if _depth < 5 else None
            if op in (":-", "-", ":=", "=") and not val:
                if default and "$" in default:  # ${SLURM_SUBMIT_DIR:-$PWD}: the default is expanded too
                    inner = self.expand(default, line, file, environ, _depth + 1, memo)
                    if inner is None:
                        missing = True
                        return ""
                    return inner
                return default or ""
            if val is None:
                missing = True
                return ""
            return val

        out = VAR_RE.sub(sub, text)
        if missing or len(out) > MAX_VALUE_CHARS:
            return None
        if "$((" in out:
            out = self._arithmetic(out, line, file, environ, _depth, memo)
        if out is None or "$(" in out or "`" in out:
            return None
        return out

    def _arithmetic(
        self,
        text: str,
        line: int | None,
        file: str | None,
        environ: dict[str, str] | None,
        depth: int,
        memo: dict | None = None,
    ) -> str | None:
        """$(( expr )) replaced by its value (names in it are variables); None if one is unknown."""
        from preflight.script.arith import expand_arithmetic

        def lookup(name: str) -> str | None:
            return self.value_at(name, line, file, environ, memo) if depth < 5 else None

        return expand_arithmetic(text, lookup)
