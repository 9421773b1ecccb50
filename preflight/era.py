"""The era of a script alone (no checkout to fingerprint): evidence from what the script launches.

Each upstream era profile is a candidate; the script's text rules candidates out or counts for them:
- flag style: dashes inside names (``--device-batch-size``) exist only from 2026-01-13 (argparse-dash,
  no-mid, current); ``--key value`` needs argparse; underscores are rejected by the dash eras;
- phases: ``scripts.mid_train`` exists only up to 2026-01-31; an SFT with no ``nanochat.report``
  run at all is the current era (report.md was removed 2026-07-02);
- flags: a training flag the era's base_train does not declare rules it out (``--window_pattern``,
  ``--fp8`` are newer than the configurator);
- defaults restored: passing an older era's default where the era changed it (``--vocab_size=65536``
  to tok_train, ``--target_param_data_ratio=20``) is what a runner written after the change does;
- base_train then chat_sft with no mid_train and no ``--source``: up to 2026-01-31 chat_sft loaded the
  mid checkpoint by default, so such a runner is written for an era without midtraining;
- log lines parsed: a script that greps a line an entry point printed only for a while (the profiles'
  ``printed:``, e.g. base_train's "Number of parameters: N (scaling: M)", 2026-01-07 .. 01-27) was
  written for a checkout that printed it. Weaker than the rest (upstream's own sweep scripts kept
  parsing that line for weeks after base_train stopped printing it), so it only breaks ties.
The answer carries its evidence and a confidence (high: one candidate left; medium: one fits the
evidence best; low: a tie, or one decided by parsed log lines alone, broken by classic, then by the
era that lasted longest upstream, the likelier a priori).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from preflight.phases import TRAINER_SCRIPTS

# candidates in date order: (profile, variant, word separator, has mid_train, has report)
CANDIDATES = (
    ("classic", None, "_", True, True),
    ("argparse", "argparse-underscore", "_", True, True),
    ("argparse", "argparse-dash", "-", True, True),
    ("no-mid", None, "-", False, True),
    ("current", None, "-", False, False),
)


# defaults the switch to argparse (2026-01) changed, which runners from then on pass explicitly
# (65536-token vocab, ratio 20 restored; or the new 32768 / 8 spelled out)
CHANGED_AT_ARGPARSE = ("vocab_size", "target_param_data_ratio")


@dataclass
class EraGuess:
    """The era a script alone is written for, with its evidence, confidence and the other candidates."""

    profile: str
    variant: str | None
    confidence: str  # high | medium | low
    evidence: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.variant or self.profile

    @property
    def alternative_eras(self) -> list[tuple[str, str | None]]:
        """The alternatives as (profile, variant)."""
        by_label = {variant or name: (name, variant) for name, variant, *_ in CANDIDATES}
        return [by_label[a] for a in self.alternatives if a in by_label]


def _base(module: str | None) -> str:
    return (module or "").rsplit(".", 1)[-1]


def guess_era(script: Any) -> EraGuess | None:
    from preflight.profiles import load_profile

    invs = [i for i in (getattr(script, "all_invocations", None) or []) if i.entry]
    if not invs:
        return None
    modules = {_base(i.entry) for i in invs}
    flagged = TRAINER_SCRIPTS | {"tok_train"}
    if not modules & (TRAINER_SCRIPTS | {"tok_train", "base_eval", "chat_eval"}):
        # only a fork's own entry points (scripts.pre1900_sft): their flags still follow the checkout's parser
        # style, which dates the fork's nanochat; nothing else about them is upstream's
        flagged = {_base(i.entry) for i in invs if i.entry.startswith("scripts.")}
        if not any("-" in (f.key or "") for i in invs if _base(i.entry) in flagged for f in i.flags):
            return None
    train_flags = [
        (i, f)
        for i in invs
        if _base(i.entry) in flagged
        for f in i.flags
        if f.key and f.style not in ("positional", "short")
    ]
    dashed = [f for _, f in train_flags if "-" in f.key]
    underscored = [f for _, f in train_flags if "_" in f.key]
    mixed = ""
    if dashed and underscored:
        # both styles (a fork half-way through the 2026-01-13 renaming, its tok_train still underscored): no era
        # takes both, so the trainers' own flags decide and the rest is what SB010 judges
        core = [f for i, f in train_flags if _base(i.entry) in TRAINER_SCRIPTS]
        if core and all("-" in f.key or "_" not in f.key for f in core):
            mixed, underscored = f"--{underscored[0].key} does not fit the trainers' dashes", []
        elif core and all("_" in f.key or "-" not in f.key for f in core):
            mixed, dashed = f"--{dashed[0].key} does not fit the trainers' underscores", []
    spaced = [f for _, f in train_flags if f.style == "space"]
    has_mid, has_sft, has_report = "mid_train" in modules, "chat_sft" in modules, "report" in modules
    # the speedrun's shape: every phase, multi-GPU (upstream's CPU runner never wrote a report in any era)
    pipeline = {"tok_train", "base_train", "chat_sft"} <= modules and any("torchrun" in i.launcher for i in invs)
    alive = []
    mid_allowed: dict[str, bool] = {}
    notes: dict[str, list[str]] = {}
    for name, variant, sep, mid_ok, report_ok in CANDIDATES:
        label = variant or name
        notes.setdefault(label, [])
        if dashed and sep == "_":
            continue
        if underscored and sep == "-":
            continue
        if spaced and name == "classic":
            continue
        if has_mid and not mid_ok:
            continue
        if has_report and not report_ok:
            continue
        alive.append((name, variant, label))
        mid_allowed[label] = mid_ok
    if not alive:
        return None
    sft_from_base = (  # base then SFT in one script, nothing in between (an SFT-only job says nothing)
        has_sft
        and "base_train" in modules
        and not has_mid
        and not any(f.key == "source" for i in invs if _base(i.entry) == "chat_sft" for f in i.flags)
    )
    evidence = []
    if dashed:
        evidence.append(f"dash-style flags (--{dashed[0].key}): 2026-01-13 or later")
    elif underscored:
        evidence.append(f"underscore flags (--{underscored[0].key}): before 2026-01-13")
    if mixed:
        evidence.append(f"flags of both styles: {mixed}")
    if spaced:
        evidence.append(f"'--{spaced[0].key} {spaced[0].value}' needs argparse")
    if has_mid:
        evidence.append("runs scripts.mid_train: before 2026-01-31")
    elif has_report:
        evidence.append("runs nanochat.report: before 2026-07-02 (the current era has no report.md)")
    elif has_sft:
        evidence.append("runs SFT without scripts.mid_train: no-mid era or later")
    # score the remaining candidates on the flags and values the script passes
    scores = {}
    classic_defaults = load_profile("classic").defaults
    classic_alive = any(a[0] == "classic" for a in alive)  # flag and default evidence only tells classic apart
    for name, variant, label in alive:
        prof = load_profile(name, variant=variant)
        score = 0
        for inv, f in train_flags:
            if name != "classic" and not classic_alive:
                break
            k = f.key.replace("-", "_")
            if name == "classic":
                # the configurator's keys are exactly its globals: a flag it lacks is a later era's
                keys = prof.config_keys(inv.entry)
                if keys is not None and k not in keys and _base(inv.entry) == "base_train":
                    score -= 2
                    notes[label].append(f"--{f.key} is not a base_train flag of the classic era")
                continue
            if k not in CHANGED_AT_ARGPARSE:
                continue
            d_new, d_classic = prof.defaults.get(k), classic_defaults.get(k)
            if (
                f.value is not None
                and d_classic is not None
                and d_new is not None
                and d_new != d_classic
                and _base(inv.entry) in ("base_train", "tok_train")
                and (_same(f.value, d_classic) or _same(f.value, d_new))
            ):
                score += 1  # a value for a default that changed after the classic era: restored or adopted
                notes[label].append(
                    f"--{f.key}={f.value}: a default that changed after the classic era ({d_classic} -> {d_new})"
                )
        if name == "current" and pipeline and not has_report:
            score += 1
            notes[label].append("a full tokenizer -> base -> SFT pipeline under torchrun that never writes report.md")
        if sft_from_base and not mid_allowed[label]:
            score += 1
            notes[label].append(
                "runs SFT after base_train with no mid_train and no --source: until 2026-01-31 chat_sft loaded the mid checkpoint"
            )
        scores[label] = score
    parsed = _parsed_lines(script, alive, notes)
    best = max(scores.values())
    top = [a for a in alive if scores[a[2]] == best]
    # a tie: the log lines it parses, then classic (the tool's default when nothing tells), then the era
    # that lasted longest upstream
    name, variant, label = max(top, key=lambda a: (parsed[a[2]], a[0] == "classic", _days(a[0], a[1])))
    evidence += notes.get(label, [])
    if len(alive) == 1 and not mixed:
        confidence = "high"
    elif len(top) == 1:
        confidence = "medium"
    else:
        confidence = "low"
    return EraGuess(name, variant, confidence, evidence, [a[2] for a in alive if a[2] != label])


def _parsed_lines(script: Any, alive: list, notes: dict) -> dict[str, int]:
    """{candidate label: how many of the dated log lines the script parses that era's code printed}."""
    from preflight.profiles import Profile, load_profile

    text = getattr(script, "text", "") or ""
    out = {label: 0 for *_, label in alive}
    for item in load_profile("classic").data.get("printed") or []:
        if not all(t in text for t in item.get("in_script") or []):
            continue
        for name, variant, label in alive:
            if load_profile(name, variant=variant).dated(item)[0] != "no":
                out[label] += 1
                notes[label].append(f"parses {item['what']}, printed {Profile.dates_of(item)}")
    return out


def _days(name: str, variant: str | None) -> int:
    """How long an era (or dated sub-style) lasted upstream: the prior when the script cannot tell."""
    import datetime as dt

    from preflight.profiles import load_profile

    start_s, end_s = load_profile(name, variant=variant).span
    start = dt.date.fromisoformat(start_s or "2025-10-13")
    end = dt.date.fromisoformat(end_s) if end_s else start  # open-ended: no prior weight
    return (end - start).days


def _same(value: str, default: Any) -> bool:
    try:
        return float(value) == float(default)
    except (TypeError, ValueError):
        return False
