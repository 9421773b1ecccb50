"""Offline readiness: what each phase downloads at run time, and whether a local copy exists: NET001."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.plan import phases_run
from preflight.registry import check


def hf_datasets_cache(env: dict) -> Path:
    if env.get("HF_DATASETS_CACHE"):
        return Path(env["HF_DATASETS_CACHE"])
    return hf_home(env) / "datasets"


def hf_home(env: dict) -> Path:
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"])
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "~"), ".cache")
    return Path(xdg) / "huggingface"


def tiktoken_cache(env: dict) -> Path:
    if env.get("TIKTOKEN_CACHE_DIR"):
        return Path(env["TIKTOKEN_CACHE_DIR"])
    if env.get("DATA_GYM_CACHE_DIR"):
        return Path(env["DATA_GYM_CACHE_DIR"])
    return Path(env.get("TMPDIR") or tempfile.gettempdir()) / "data-gym-cache"


def local_copy(item: dict, base: Path, env: dict) -> Path:
    local = item.get("local", "")
    if local.startswith("{base}"):
        return base / local[len("{base}/"):]
    if local.startswith("{hf}"):
        rest = local[len("{hf}/"):]
        if rest.startswith("hub/"):
            return Path(env.get("HF_HUB_CACHE") or hf_home(env) / "hub") / rest[len("hub/"):]
        return hf_datasets_cache(env) / rest
    if local.startswith("{tiktoken}"):
        return tiktoken_cache(env)
    return Path(local)


def _present(path: Path, kind: str) -> bool:
    try:
        if kind == "tiktoken":
            return path.is_dir() and sum(1 for _ in path.iterdir()) >= 2  # gpt2 + cl100k_base
        if path.is_dir():
            return any(path.iterdir())
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


@check("NET001", "offline-download-needed", severity="error")
def offline_download_needed(ctx, profile, base_dir, job_env) -> Iterator[Finding]:
    """
    What it checks: with ``network: offline`` (the default for SLURM jobs), for each phase
    the script runs, what nanochat downloads at run time (facts §8.2: HF datasets for
    mid/SFT/eval, the eval bundle, identity conversations, words_alpha.txt, tiktoken files for
    tok_eval, the FA3 kernel) and whether a local copy is already in place.

    Why it matters: on a node without internet these downloads raise ConnectionError /
    LocalEntryNotFoundError and the phase crashes; without ``set -e`` the next phases cascade.

    Example:
        torchrun -m scripts.mid_train   # and no HF cache with smol-smoltalk, cais/mmlu, gsm8k

    How to fix: prefetch on a login node (load each dataset once with the same HF_HOME, place
    eval_bundle/, identity_conversations.jsonl and words_alpha.txt in the base dir) and export
    ``HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1`` in the job.
    """
    if ctx.config.get("network", "offline") != "offline":
        raise Skip("config network: online")
    script = ctx.get("script", None)
    if script is not None and not script.ok:
        script = None
    run = phases_run(script, profile)
    modules_run = {inv.module for inv in script.all_invocations if inv.module} if script is not None else None
    env = job_env.env
    base = Path(base_dir.path)
    path = str(script.path) if script is not None and script.path else None
    hf_needed = False
    seen: set[str] = set()
    for phase in run:
        for item in (profile.phase(phase) or {}).get("network") or []:
            mod = item.get("module")
            if mod and modules_run is not None and mod not in modules_run:
                continue
            local = local_copy(item, base, env)
            key = str(local)
            if key in seen:
                continue
            seen.add(key)
            if item.get("kind") == "hf_dataset":
                hf_needed = True
            if _present(local, item.get("kind", "")):
                continue
            line, where = None, path
            if script is not None:
                inv = next((i for i in script.all_invocations
                            if i.module and profile.phase_of_module(i.module, i.args) == phase), None)
                if inv is not None:
                    line, where = inv.line, (inv.file if inv.file != "<script>" else path)
            yield Finding(f"phase {phase}: {item['what']} is downloaded at run time from {item['source']}, "
                          f"and there is no local copy at {local}", path=where, line=line,
                          fix=f"prefetch it on a login node into {local}")
    if hf_needed and not (env.get("HF_DATASETS_OFFLINE") == "1" or env.get("HF_HUB_OFFLINE") == "1"):
        yield Finding("HF datasets are needed but HF_DATASETS_OFFLINE/HF_HUB_OFFLINE are not set: on an offline node "
                      "datasets tries the network first", path=path, severity=Severity.WARNING,
                      fix="export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1")
