"""What a crashed process's evidence means: the cause rules of the era profile's ``evidence:`` section.

A rule is tried on the whole exception chain of one process (every exception it raised, with
its message), so a ``LocalEntryNotFoundError`` three links down still names the dataset that
could not load offline. The first matching rule wins; its named groups (``dataset``, ``config``,
``source``) are quoted in the cause and filled into the fix (the exact prefetch command for an
HF dataset cache miss).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

OTHER = "other"
# causes that are another rank's failure seen from this one (rank-failure names the first)
CASCADE = ("lost peer", "NCCL timeout")


@dataclass
class Cause:
    name: str  # "offline dataset", "out of memory", ... "other"
    detail: str = ""  # "HF dataset allenai/ai2_arc (config ARC-Easy) not in the offline cache"
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def dataset(self) -> str | None:
        return self.groups.get("dataset")

    @property
    def config(self) -> str | None:
        return self.groups.get("config")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "detail": self.detail, **{k: v for k, v in self.groups.items() if v}}


@dataclass(frozen=True)
class _Rule:
    name: str
    match: re.Pattern
    when: re.Pattern | None
    frames: bool = False  # match the frames' source lines (``when`` still reads the exceptions)


def _evidence(profile: Any) -> dict:
    if profile is None:
        from preflight.profiles import load_profile

        profile = load_profile("classic")
    return (getattr(profile, "data", None) or {}).get("evidence") or {}


@lru_cache(maxsize=16)
def _compile(rules: tuple) -> tuple[_Rule, ...]:
    out = []
    for name, match, when, flags, frames in rules:
        try:
            f = re.I if "i" in (flags or "") else 0
            out.append(_Rule(name, re.compile(match, f), re.compile(when) if when else None, bool(frames)))
        except re.error:
            continue  # a broken rule in a user profile is skipped, not fatal
    return tuple(out)


def rules(profile: Any = None) -> tuple[_Rule, ...]:
    raw = _evidence(profile).get("causes") or []
    frozen = tuple(
        (r.get("name", OTHER), r.get("match", ""), r.get("when"), r.get("flags"), r.get("frames"))
        for r in raw
        if isinstance(r, dict) and r.get("match")
    )
    return _compile(frozen)


def classify_text(text: str, profile: Any = None, calls: str = "") -> Cause:
    """The cause of an exception chain (``type: message`` lines); ``calls``: the frames' source lines."""
    for rule in rules(profile):
        if rule.when is not None and not rule.when.search(text):
            continue
        m = rule.match.search(calls if rule.frames else text)
        if m:
            groups = {k: v for k, v in m.groupdict().items() if v}
            return Cause(rule.name, _detail(rule.name, groups), groups)
    return Cause(OTHER)


def classify_traceback(tb: Any, profile: Any = None) -> Cause:
    text = tb.chain_text if hasattr(tb, "chain_text") else f"{tb.exc_type}: {tb.message}"
    return classify_text(text, profile, getattr(tb, "calls_text", ""))


def _detail(name: str, groups: dict[str, str]) -> str:
    if name == "offline dataset" and groups.get("dataset"):
        cfg = f" (config {groups['config']})" if groups.get("config") else ""
        return f"HF dataset {groups['dataset']}{cfg} could not load on the offline node (not in the HF cache)"
    if name == "NCCL system error" and groups.get("call"):
        return f"NCCL could not set up the interconnect on this node: {groups['call'].strip()}"
    if name == "bad flag" and groups.get("configurator"):
        return (
            "the configurator refused an argument: it takes only --key=value (not `--key value` or a bare `--`), "
            "with a value of the key's type"
        )
    if name == "bad flag" and groups.get("launcher"):
        return (
            f"torchrun refused a flag meant for the trainer ({groups['launcher'].strip()[:120]}): the trainer's "
            "flags go after `-m scripts.X --`; nothing started"
        )
    if name == "bad flag" and (groups.get("flags") or groups.get("key")):
        if groups.get("key"):
            return f"the configurator has no key {groups['key']} (--{groups['key']}=...): not a flag of this checkout"
        return f"the script does not accept {groups['flags'].strip()[:120]}"
    if name == "checkpoint from other code" and groups.get("key"):
        return (
            f"the checkpoint it loaded was written by other code: its model config has {groups['key']}, which this "
            "code's GPTConfig does not take"
        )
    if name == "missing checkpoint" and groups.get("source"):
        return f"{groups['source']}_checkpoints is missing"
    if name == "missing module" and groups.get("module"):
        top = groups["module"].split(".")[0]
        if top in ("scripts", "nanochat"):
            return f"python cannot import {top}: the phase did not run in the nanochat checkout"
        return f"the job's Python has no module {groups['module']}: its environment is not the one the phase needs"
    return ""


def prefetch_loads(datasets: list[tuple[str, str | None]], profile: Any = None) -> str:
    """``load_dataset(...)`` calls for every (dataset, config) seen; configs from the profile when unknown."""
    configs = _evidence(profile).get("hf_configs") or {}
    calls: list[str] = []
    for name, config in datasets:
        cfgs = [config] if config else list(configs.get(name) or [])
        if cfgs:
            calls += [f"load_dataset('{name}', '{c}')" for c in cfgs]
        else:
            calls.append(f"load_dataset('{name}')")
    return "; ".join(dict.fromkeys(calls))


# the HF settings a prefetch on a login node must share with the job: its cache dirs (a download into HF_HOME is not
# found by a job that reads HF_DATASETS_CACHE elsewhere) and its endpoint (a mirror where the hub is blocked)
HF_CACHE_VARS = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE")


def hf_assignments(settings: dict, endpoint: bool = True) -> str:
    """`HF_HOME=... HF_DATASETS_CACHE=... HF_ENDPOINT=...`: the HF settings of ``settings`` that are set."""
    names = HF_CACHE_VARS + (("HF_ENDPOINT",) if endpoint else ())
    return " ".join(f"{k}={settings[k]}" for k in names if settings.get(k))


def fix_for(
    cause: Cause | str,
    profile: Any = None,
    *,
    hf: dict[str, str] | None = None,
    datasets: list[tuple[str, str | None]] | None = None,
    checkout: Any = None,
    phase: str | None = None,
    batch: int | None = None,
) -> str:
    """The fix text of a cause, with the prefetch command filled in for HF cache misses and its flags
    spelled the way the phase's entry point spells them (``--device-batch-size`` in a checkout whose
    argparse uses hyphens)."""
    name = cause if isinstance(cause, str) else cause.name
    fixes = _evidence(profile).get("fixes") or {}
    text = fixes.get(name) or fixes.get(OTHER) or "read the traceback; fix it and rerun from this phase"
    groups = {} if isinstance(cause, str) else cause.groups
    if name == "disk full":  # the file it could not write, or HF datasets' space check: its cache's disk
        path = groups.get("path") or ""
        hf = groups.get("hf_cache") or "/huggingface/" in path
        text = (fixes.get("disk full in the HF cache") if hf else None) or text
        text = text.replace("{where}", f": {path}" if path else "")
    if name == "bad flag" and groups.get("configurator"):
        text = fixes.get("bad flag to the configurator") or text
    if "{batch_steps}" in text and batch == 1 and fixes.get(f"{name} at batch 1"):
        text = fixes[f"{name} at batch 1"]
    if "{batch_steps}" in text:  # halvings of the batch the run used (batch: its --device_batch_size)
        steps = [batch // 2**i for i in range(3) if batch // 2**i >= 1] if batch and batch > 1 else [32, 16, 8]
        text = text.replace("{batch_steps}", " -> ".join(map(str, steps)))
    if name == "missing data" and groups.get("file"):
        text = _download_fix(profile, groups["file"]) or text
    if "{" in text:
        if datasets is None and not isinstance(cause, str) and cause.dataset:
            datasets = [(cause.dataset, cause.config)]
        loads = prefetch_loads(datasets or [], profile) or "load_dataset('<the dataset named in the traceback>')"
        names = ", ".join(dict.fromkeys(d for d, _ in datasets or [])) or "<the dataset named in the traceback>"
        hf = {"HF_HOME": "$HF_HOME", **(hf or {})}
        text = text.replace("{hf_env}", hf_assignments(hf)).replace("{hf_dirs}", hf_assignments(hf, endpoint=False))
        text = text.replace("{loads}", loads).replace("{dataset}", names)
    return respell_flags(text, profile, checkout, phase)


def _download_fix(profile: Any, word: str) -> str | None:
    """The era's own download of a file a phase found missing (identity_conversations.jsonl, words_alpha.txt, the
    eval bundle), as the command to run on a login node: the job's node could not fetch it, or nothing did."""
    for phase in getattr(profile, "phases", None) or []:
        for item in (profile.phase(phase) or {}).get("network") or []:
            source, local = str(item.get("source") or ""), str(item.get("local") or "")
            if item.get("kind") != "url" or word not in source or not local.startswith("{base}/"):
                continue
            dest = local.replace("{base}", "$NANOCHAT_BASE_DIR")
            if source.endswith(".zip"):  # the eval bundle: the zip, unpacked beside it
                zipped = f"$NANOCHAT_BASE_DIR/{source.rsplit('/', 1)[-1]}"
                get = f"curl -L -o {zipped} {source} && unzip -q -o {zipped} -d $NANOCHAT_BASE_DIR"
            else:
                get = f"curl -L -o {dest} {source}"
            return (
                f"download it on a login node into the base dir the job reads (NANOCHAT_BASE_DIR), before "
                f"submitting: {get}; then rerun the phase"
            )
    return None


_FLAG_IN_TEXT = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:[_-][a-z0-9]+)+)\b")


def respell_flags(text: str, profile: Any, checkout: Any, phase: str | None) -> str:
    """Each multi-word ``--flag`` of ``text`` as the phase's training entry point spells it (its real
    parser when the checkout is known, else the era's separator); a flag it has no spelling for stays."""
    if profile is None or not phase or "--" not in text:
        return text
    from preflight.checkout import setting_flag

    module = (profile.phase(phase) or {}).get("train_module")
    if not module:
        return text

    def sub(m: re.Match) -> str:
        flag, _source = setting_flag(checkout, profile, module, m.group(1).replace("-", "_"))
        return flag or m.group(0)

    return _FLAG_IN_TEXT.sub(sub, text)
