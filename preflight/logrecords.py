"""What the log index records (preflight.logindex builds them in one streaming pass): a log's
segments (one per process run), their steps, tracebacks, saves and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from preflight.phases import SCRIPT_PHASE, TRAINER_SCRIPTS, is_train_phase


@dataclass
class StepRecord:
    step: int
    total: int | None
    loss: float | None
    line: int
    style: str  # base | mid | sft | rl
    dt_ms: float | None = None
    tok_per_sec: float | None = None
    mfu: float | None = None
    pct: float | None = None
    lrm: float | None = None  # the learning-rate multiplier of the step ("| lrm: 0.45 |")
    reward: float | None = None  # chat_rl's average reward of the step ("| Average reward: 0.25 |")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class TracebackRecord:
    line: int  # line of "Traceback (most recent call last):"
    exc_type: str = ""
    message: str = ""
    exc_line: int | None = None
    frames: list[tuple[str, int]] = field(default_factory=list)  # (file, line), capped
    calls: list[str] = field(default_factory=list)  # source lines of the frames outside the Python install, capped
    script: str | None = None  # the nanochat script whose frames appear (base_train, mid_train ...)
    entry: str | None = None  # a fork's own copy of it that ran, as a module (scripts.base_train_gc), else None
    rank: str = ""
    path: str = ""
    chain: list[tuple[str, str]] = field(default_factory=list)  # earlier exceptions of the same process
    detail: list[str] = field(default_factory=list)  # the exception message's continuation lines, capped
    ranks: list[int] = field(default_factory=list)  # every rank that printed this traceback
    copies: int = 1  # how many identical copies were folded into this one
    helper: bool = False  # a thread's or a multiprocessing child's exception ("Exception in thread X:", "Process X:")
    _added: bool = field(default=False, repr=False)

    @property
    def phase(self) -> str | None:
        return SCRIPT_PHASE.get(self.script or "")

    @property
    def root(self) -> tuple[str, str]:
        """The first exception of the chain (what went wrong first), else this one."""
        return self.chain[0] if self.chain else (self.exc_type, self.message)

    @property
    def chain_text(self) -> str:
        """Every exception of the process, one per line: what cause rules match."""
        return "\n".join([*(f"{t}: {m}" for t, m in [*self.chain, (self.exc_type, self.message)]), *self.detail])

    @property
    def calls_text(self) -> str:
        """The frames' source lines, one per line: what ``frames: true`` cause rules match (a dataset named
        in the code that called the failing download, when the exception itself does not say)."""
        return "\n".join(self.calls)

    @property
    def signature(self) -> tuple:
        return (self.script, tuple(self.chain), self.exc_type, self.message)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def last_frame(self) -> str | None:
        return f"{self.frames[-1][0]}:{self.frames[-1][1]}" if self.frames else None

    @property
    def code_frame(self) -> str | None:
        """The innermost frame outside the Python install (torch, site-packages): the job's own code that
        made the failing call; the last frame when every frame is the install's."""
        from preflight.loglines import PYTHON_INSTALL_RE  # loglines imports this module

        # "<string>": code exec'd from a string (the configurator), whose caller's line is the one to look at
        own = [f for f in self.frames if not PYTHON_INSTALL_RE.search(f[0]) and f[0] != "<string>"]
        return f"{own[-1][0]}:{own[-1][1]}" if own else self.last_frame

    @property
    def wrapper(self) -> bool:
        """Not the trainer process's own failure: torchrun's ChildFailedError summary of a rank's failure, its
        agent losing the rendezvous store after another node's agent left (a consequence), or a helper thread's or
        child process's."""
        if self.exc_type.endswith("ChildFailedError") or self.helper:
            return True  # a helper's exception is not its trainer's (a broken pipe after the trainer was killed)
        from preflight.ranks import AGENT_NOISE

        in_agent = bool(self.frames) and "torch/distributed/elastic/" in self.frames[-1][0]
        return (
            in_agent
            and not self.exc_type.endswith("RendezvousTimeoutError")
            and bool(AGENT_NOISE.search(self.chain_text))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "type": self.exc_type,
            "message": self.message,
            "script": self.script,
            "frame": self.last_frame,
            "path": self.path,
            "ranks": self.ranks,
            "copies": self.copies,
            "chain": [{"type": t, "message": m} for t, m in self.chain],
        }


@dataclass
class Event:
    kind: str
    line: int
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Segment:
    """One process run inside a log."""

    index: int
    start_line: int
    end_line: int = 0
    path: str = ""
    script: str | None = None
    marker: str | None = None  # phase named by an explicit script marker
    overrides: dict[str, str] = field(default_factory=dict)
    override_line: int | None = None
    settings: dict[str, str] = field(default_factory=dict)  # what it printed of its settings (loglines.RUN_SETTING_RES)
    horizon_computed: bool = False  # its num_iterations setting is the one it computed (a ratio or FLOPs target)
    device: str | None = None
    world_size: int | None = None
    planned_steps: int | None = None  # Calculated number of iterations / steps
    resume_from: int | None = None
    params: int | None = None
    first_step: StepRecord | None = None
    _last_step: StepRecord | None = field(default=None, repr=False)
    _last_raw: tuple[bytes, int] | None = field(default=None, repr=False)  # parsed when asked for
    step_lines: int = 0
    end_markers: dict[str, Event] = field(default_factory=dict)
    saves: list[Event] = field(default_factory=list)
    tracebacks: list[TracebackRecord] = field(default_factory=list)
    nan_loss: Event | None = None
    rewarded_steps: int = 0  # chat_rl's step lines with an average reward
    reward_max: float | None = None  # the largest of those rewards
    downloads: list[Event] = field(default_factory=list)
    footgun: Event | None = None
    failed_marker: Event | None = None  # torchrun "scripts.X FAILED" (data: script, exitcode, rank)
    header: Event | None = None  # the echo header that opened the segment ("[3/5] Midtraining ...")
    placed_by_step: int | None = None  # the batch-script step it was paired with (logset.align_with_steps)
    content: bool = False  # saw anything besides start lines
    first_eval: int | None = None  # line of its first evaluation (step 0's comes before the first training step)
    loaded: Event | None = None  # "Loading model from <phase>_checkpoints/..." (data: source phase, step, path)
    load_sources: set[str] = field(default_factory=set)  # the phases of every checkpoint it loaded
    guessed_tag: Event | None = None  # "No model tag provided, guessing model tag: d26" (data: tag)
    trainer_setup: bool = False  # printed a line only a trainer prints while it sets up
    command: Event | None = None  # the command line that started it (`set -x`'s trace, a terminal paste)
    named_by_load: str | None = None  # its phase came from a checkpoint load: "checkpoint load" | "stream pair"
    named_by_steps: bool = False  # its script is the era's guess from mid-style step lines (MID_STYLE_SCRIPTS)
    evals: dict[str, float] = field(default_factory=dict)  # chat_eval's results: task (or ChatCORE) -> value
    eval_counts: dict[str, int] = field(default_factory=dict)  # task -> how many problems it was scored on
    grad_accum: int | None = None  # its gradient accumulation steps, as its setup printed them

    @property
    def last_step(self) -> StepRecord | None:
        if self._last_raw is not None:  # a plain-ASCII step line that already matched a step grammar
            raw, line = self._last_raw
            self._last_raw = None
            from preflight.loglines import parse_step  # loglines imports this module

            self._last_step = parse_step(raw.decode("ascii"), line)
        return self._last_step

    @last_step.setter
    def last_step(self, rec: StepRecord | None) -> None:
        self._last_step, self._last_raw = rec, None

    @property
    def phase(self) -> str | None:
        if self.marker:
            return self.marker
        if self.script == "chat_eval" and len(self.load_sources) == 1:
            return next(iter(self.load_sources))  # chat_eval -i mid: it evaluates the checkpoint it loaded
        return SCRIPT_PHASE.get(self.script or "")

    @property
    def is_training(self) -> bool:
        return self.script in TRAINER_SCRIPTS or is_train_phase(self.marker)

    def saved_steps(self, kind: str = "model") -> list[int]:
        return [e.data["step"] for e in self.saves if e.data.get("kind") == kind and e.data.get("step") is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "lines": [self.start_line, self.end_line],
            "script": self.script,
            "phase": self.phase,
            "steps": self.step_lines,
            "first_step": self.first_step.to_json() if self.first_step else None,
            "last_step": self.last_step.to_json() if self.last_step else None,
            "planned_steps": self.planned_steps,
            "tracebacks": [t.to_json() for t in self.tracebacks],
            "saves": [e.data for e in self.saves],
            "end_markers": sorted(self.end_markers),
        }


@dataclass
class LogIndex:
    path: str
    size: int = 0
    lines: int = 0
    segments: list[Segment] = field(default_factory=list)
    slurm: list[Event] = field(default_factory=list)  # time-limit cancels, oom-kill lines
    error: str | None = None  # the log could not be read (finding, not a crash)
    long_lines: int = 0  # lines longer than MAX_LINE (cut)
    binary: bool = False  # mostly undecodable bytes
    stderr_line: int | None = None  # a line python logging wrote to stderr: stderr goes into this log too

    @property
    def tracebacks(self) -> list[TracebackRecord]:
        return [t for s in self.segments for t in s.tracebacks]

    def by_phase(self, phase: str) -> list[Segment]:
        return [s for s in self.segments if s.phase == phase]

    @property
    def recognised(self) -> bool:
        """Anything in it that nanochat, torchrun or SLURM prints (a fork's own format: nothing)."""
        return bool(self.segments or self.slurm)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "lines": self.lines,
            "error": self.error,
            "segments": [s.to_json() for s in self.segments],
            "slurm": [{"kind": e.kind, "line": e.line, "text": e.text} for e in self.slurm],
        }
