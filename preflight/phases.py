"""nanochat's pipeline phases: the one home of their names, order and the facts that hold in every era.

What changes between eras (the modules of a phase, its checkpoint dir, the report.md sections it
writes, whether it exists at all) lives in the era profiles (schemas/profiles/*.yaml); the ``Phase``
accessors below read it from a profile and fall back to the classic layout when there is none.
Every check, the log indexer, the verdict and the plan take phase names and script/dir mappings
from here, never from a literal tuple of their own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phase:
    """A pipeline phase: its name, entry points, artifact and report section."""

    name: str  # public name: tokenizer | base | mid | sft | rl | report (JSON ``phases[].name``)
    title: str  # how the text output names it
    trains: bool  # a model-training phase (writes model checkpoints, runs under torchrun)
    scripts: tuple[str, ...]  # entry-point basenames (``scripts.X`` / ``nanochat.X``) that belong to it
    train_script: str | None  # the entry point that writes the phase's artifact
    checkpoint_dir: str | None  # dir under BASE in the classic layout (the profile may rename it)
    dir_words: tuple[str, ...] = ()  # the "<word>_checkpoints" spellings that name this phase in paths/logs

    # -- era-dependent facts, read from a profile --------------------------------------------
    def spec(self, profile: Any) -> dict | None:
        return profile.phase(self.name) if profile is not None else None

    def in_era(self, profile: Any) -> bool:
        """Whether the era has this phase at all (no-mid eras have no ``mid``)."""
        return profile is None or self.name in profile.phases

    def modules(self, profile: Any) -> list[str]:
        spec = self.spec(profile)
        if spec is not None:
            return list(spec.get("modules") or [])
        return [f"scripts.{s}" for s in self.scripts]

    def train_module(self, profile: Any) -> str | None:
        spec = self.spec(profile)
        if spec is not None:
            return spec.get("train_module")
        return f"scripts.{self.train_script}" if self.train_script else None

    def checkpoint_dir_in(self, profile: Any) -> str | None:
        spec = self.spec(profile)
        if spec is not None:
            return spec.get("checkpoint_dir")
        return self.checkpoint_dir

    def report_sections(self, profile: Any) -> list[str]:
        spec = self.spec(profile)
        return list((spec or {}).get("report_sections") or [])


PHASES: tuple[Phase, ...] = (
    Phase("tokenizer", "tokenizer", False, ("tok_train", "tok_eval"), "tok_train", None),
    Phase(
        "base",
        "base training",
        True,
        ("base_train", "base_loss", "base_eval"),
        "base_train",
        "base_checkpoints",
        ("base",),
    ),
    Phase("mid", "midtraining", True, ("mid_train",), "mid_train", "mid_checkpoints", ("mid",)),
    # sft_checkpoints: where chat_sft saved from 2026-01-31 to 2026-02-01 (eaf49a3, PR #484)
    Phase("sft", "SFT", True, ("chat_sft",), "chat_sft", "chatsft_checkpoints", ("chatsft", "sft")),
    Phase("rl", "RL", True, ("chat_rl",), "chat_rl", "chatrl_checkpoints", ("chatrl",)),
    Phase("report", "report", False, ("report",), "report", None),
)
BY_NAME: dict[str, Phase] = {p.name: p for p in PHASES}
PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in PHASES)
TRAIN_PHASES: tuple[str, ...] = tuple(p.name for p in PHASES if p.trains)

# entry points that belong to no single phase: chat_eval belongs to the phase of its -i/--source,
# chat_cli/chat_web only read checkpoints; ``dataset`` (the shard downloader) is a log marker of its own.
PHASELESS_SCRIPTS = ("chat_eval", "chat_cli", "chat_web")
SCRIPT_PHASE: dict[str, str | None] = {
    **{s: p.name for p in PHASES for s in p.scripts},
    "dataset": "dataset",
    **{s: None for s in PHASELESS_SCRIPTS},
}
# the script that writes each phase's artifact
TRAIN_SCRIPTS: dict[str, str] = {p.train_script: p.name for p in PHASES if p.train_script and p.name != "report"}
# the entry points that train a model (base_train, mid_train, chat_sft, chat_rl)
TRAINER_SCRIPTS = frozenset(p.train_script for p in PHASES if p.trains and p.train_script)
# the entry points that evaluate a phase's model (base_eval, base_loss, tok_eval, chat_eval): a job of them trains none
EVALUATION_SCRIPTS = frozenset(
    {s for p in PHASES if p.train_script for s in p.scripts if s != p.train_script and s != "report"} | {"chat_eval"}
)
# entry points nanochat launches with torchrun (a world size applies to them)
# the entry points that print mid-style step lines ("step 00051 (17.00%) | loss: ..."): which one a log's are is a
# guess of the era's until the process names itself (a save into chatsft_checkpoints, a frame of scripts/chat_sft.py)
MID_STYLE_SCRIPTS = frozenset({"mid_train", "chat_sft"})
TORCHRUN_SCRIPTS = frozenset({"base_train", "base_loss", "base_eval", "mid_train", "chat_eval", "chat_sft", "chat_rl"})
# log section markers ("=== base ===") the indexer accepts: the phases plus the shard download
MARKER_NAMES = frozenset({*PHASE_NAMES, "dataset"})

# "<word>_checkpoints" in a path or message -> the phase
DIR_WORD_PHASE: dict[str, str] = {w: p.name for p in PHASES for w in p.dir_words}
CKPT_DIR_RE = re.compile(r"(" + "|".join(sorted(DIR_WORD_PHASE, key=len, reverse=True)) + r")_checkpoints")
# ".../<word>_checkpoints/<model tag>" (the tag dir every era saves into; a step file is not a tag)
_CKPT_TAG_RE = re.compile(CKPT_DIR_RE.pattern + r"/(?!(?:model|meta|optim)_\d)([^/\s'\"]+)")


def checkpoint_tag(path: str) -> tuple[str, str] | None:
    """(phase, model tag) of a path in a checkpoint dir: ``/s/base_checkpoints/d20/model_000100.pt`` -> base, d20."""
    m = _CKPT_TAG_RE.search(path)
    return (DIR_WORD_PHASE[m.group(1)], m.group(2)) if m else None


CHECKPOINT_DIRS: dict[str, str] = {p.name: p.checkpoint_dir for p in PHASES if p.checkpoint_dir}


MAX_TAG_DIRS = 256  # a <phase>_checkpoints dir holds a few model tags; past this it is not one


def largest_depth_tag(tags) -> str | None:
    """The tag nanochat's loaders take when given none, where one is named d<N> (``re.match``: the largest N);
    None where none is (they then take the newest dir)."""
    numbered = [(int(m.group(1)), t) for t in tags if (m := re.match(r"d(\d+)", t))]
    return max(numbered)[1] if numbered else None


def tag_dirs(stage: str | os.PathLike) -> list[str] | None:
    """The model tag dirs of a <phase>_checkpoints dir, sorted (at most MAX_TAG_DIRS); None where unreadable."""
    try:
        with os.scandir(stage) as it:
            return sorted(e.name for _, e in zip(range(MAX_TAG_DIRS), it, strict=False) if e.is_dir())
    except OSError:
        return None


def get(name: str) -> Phase:
    return BY_NAME[name]


def phase_of_script(script: str | None) -> str | None:
    """The phase an entry point (basename or dotted module) belongs to; None for chat_eval & co."""
    if not script:
        return None
    return SCRIPT_PHASE.get(script.rsplit(".", 1)[-1])


def variant_of(name: str, known, prefixed: bool = False) -> str | None:
    """The entry point of ``known`` a fork's copy named ``name`` extends (base_train_gc, chat_sft_lora -> base_train,
    chat_sft), or with ``prefixed`` also prefixes (my_base_train -> base_train): the longest that fits; None where
    none does. (A prefix often names another program: a vision fork's vis_tok_train trains no BPE tokenizer; so a job
    script's launches are read without it, a traceback's file names with it.)"""
    return next(
        (
            s
            for s in sorted(known, key=len, reverse=True)
            # a prefix only before a two-word name: `make_report` is no report module
            if name.startswith(s + "_") or (prefixed and "_" in s and name.endswith("_" + s))
        ),
        None,
    )


def known_script(name: str | None) -> str | None:
    """The nanochat entry point a script file's stem names: itself, or the one a fork's copy extends
    (base_train_gc.py, chat_sft_lora.py, my_base_train.py -> base_train, chat_sft, base_train); None otherwise."""
    if not name:
        return None
    if name in SCRIPT_PHASE:
        return name
    return variant_of(name, SCRIPT_PHASE, prefixed=True)


def is_train_phase(name: str | None) -> bool:
    return name in TRAIN_PHASES


def order(name: str) -> int:
    return PHASE_NAMES.index(name)


def train_script_of(phase: str) -> str | None:
    p = BY_NAME.get(phase)
    return p.train_script if p else None


def script_of_dir_word(word: str) -> str | None:
    """``chatsft`` (from ``chatsft_checkpoints``) -> ``chat_sft``."""
    phase = DIR_WORD_PHASE.get(word)
    return train_script_of(phase) if phase else None
