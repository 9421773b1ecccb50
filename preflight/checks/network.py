"""Offline readiness: what each phase downloads at run time, and whether a local copy exists: NET001."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
        return base / local[len("{base}/") :]
    if local.startswith("{hf}"):
        rest = local[len("{hf}/") :]
        if rest.startswith("hub/"):
            return Path(env.get("HF_HUB_CACHE") or hf_home(env) / "hub") / rest[len("hub/") :]
        return hf_datasets_cache(env) / rest
    if local.startswith("{tiktoken}"):
        return tiktoken_cache(env)
    return Path(local)


def _present(path: Path, kind: str) -> bool:
    try:
        if kind == "dir":
            return path.is_dir() and any(path.iterdir())
        if kind == "tiktoken":
            return path.is_dir() and sum(1 for _ in path.iterdir()) >= 2  # gpt2 + cl100k_base
        if path.is_dir():
            return any(path.iterdir())
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def hf_configs_missing(local: Path, configs: list[str]) -> list[str]:
    """The configs of an HF dataset with no non-empty cache dir ``<org>___<name>/<config>/``."""
    return [c for c in configs if not _present(local / c, "dir")]


def _marker_found(checkout, item: dict) -> bool | None:
    """Whether the checkout's own files use this download (None: no checkout or no marker to ask)."""
    marker, files = item.get("marker"), item.get("marker_in") or []
    if checkout is None or not marker or not files:
        return None
    for rel in files:
        p = Path(checkout.root) / rel
        try:
            if p.is_file() and p.stat().st_size <= 2 << 20:
                with open(p, "rb") as fh:
                    if marker.encode() in fh.read():
                        return True
        except OSError:
            continue
    return False


def _gpu_sm(ctx, job_env) -> tuple[int | None, str]:
    """The compute-capability major of the job's GPUs (visible GPUs, config gpu.type, the request)."""
    from preflight.gputable import by_name, requested_model

    try:
        gpus = ctx.get("gpus", None)
    except Exception:
        gpus = None
    if gpus and gpus[0].compute_cap:
        return gpus[0].compute_cap[0], gpus[0].name
    cfg = ctx.config.get("gpu") or {}
    model = by_name(str(cfg["type"])) if cfg.get("type") else None
    where = "config gpu.type"
    if model is None:
        model, where = requested_model(job_env.sbatch)
    if model is None:
        from preflight.gputable import DEFAULT_MODEL

        model, where = by_name(DEFAULT_MODEL), "assumed, as the plan does: no GPU model known"
    if model is None or model.sm is None:
        return None, ""
    return model.sm[0], f"{model.name} ({where})"


def _dated(item: dict, profile) -> str:
    """Whether the era uses a dated download: 'yes', 'no' (it started after the era ended), or 'maybe'
    (it started inside the era: only the checkout can tell)."""
    since = str((item.get("since") or {}).get("date") or "")
    if not since:
        return "yes"
    start, end = profile.span
    if end and since > end:
        return "no"
    if start and since > start:
        return "maybe"
    return "yes"


def _eras_without(item: dict, phase: str, alternatives: list) -> list[str]:
    """The other eras a script alone could be written for (a guess without a checkout) whose same phase does
    not download this item: then whether the job needs it depends on the checkout, and the finding says so."""
    out = []
    for alt in alternatives:
        if alt.phase(phase) is None:
            continue
        items = alt.phase(phase).get("network") or []
        if not any(i.get("source") == item.get("source") and _dated(i, alt) != "no" for i in items):
            out.append(alt.variant or alt.name)
    return out


def _if_era(profile, not_in: list[str], what: str) -> str:
    return (
        f"if the checkout is of the {profile.variant or profile.name} era (the script's likeliest; in the "
        f"{' or '.join(not_in)} era this phase does not download {what}; --checkout tells)"
    )


def _flag_int(script, inv, job_env, key: str) -> int | None:
    f = inv.flag(key)
    if f is None or f.value is None:
        return None
    value = script.expand(f.value, inv.line, inv.file, job_env.env) if "$" in f.value else f.value
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _needed_by(item: dict, invs: list, script, job_env) -> list:
    """The launches of this phase that need the item (all of them when no script is at hand)."""
    mods = item.get("modules") or ([item["module"]] if item.get("module") else None)
    out = []
    for inv in invs:
        base = inv.module.rsplit(".", 1)[-1]
        if mods and base not in {m.rsplit(".", 1)[-1] for m in mods}:
            continue
        off = item.get("off_when")
        if off and base == off["module"].rsplit(".", 1)[-1]:
            v = _flag_int(script, inv, job_env, off["flag"])
            if v is not None and v <= off.get("max", 0):
                continue  # --core-metric-every=-1: base_train never evaluates CORE
        out.append(inv)
    return out


def _prefetch(item: dict, local: Path, missing_configs: list[str], hf_home_dir: Path) -> str:
    kind = item.get("kind")
    if kind == "hf_dataset" and item.get("configs"):
        loads = "; ".join(f"load_dataset({item['source']!r}, {c!r})" for c in (missing_configs or item["configs"]))
        return f'HF_HOME={hf_home_dir} python -c "from datasets import load_dataset; {loads}"'
    if kind == "hf_kernel":
        return f"HF_HOME={hf_home_dir} hf download {item['source']}"
    if kind == "tiktoken":
        return (
            f"TIKTOKEN_CACHE_DIR={local} python -c \"import tiktoken; tiktoken.get_encoding('gpt2'); "
            f"tiktoken.get_encoding('cl100k_base')\""
        )
    if kind == "url" and str(item.get("source", "")).startswith("http"):
        if str(local).endswith("eval_bundle/core.yaml"):
            d = local.parent.parent
            return f"curl -fL -o {d}/eval_bundle.zip {item['source']} && unzip -q -o {d}/eval_bundle.zip -d {d}"
        return f"curl -fL -o {local} {item['source']}"
    return f"place a copy at {local}"


def _merge_hf(commands: list[str]) -> list[str]:
    """One ``python -c`` for all the HF dataset loads of a phase (same HF_HOME), the rest in order."""
    head = 'python -c "from datasets import load_dataset; '
    loads, out, prefix = [], [], None
    for c in dict.fromkeys(commands):
        pre, sep, rest = c.partition(head)
        if sep and pre.startswith("HF_HOME="):
            prefix = prefix or pre
            loads.append(rest.rstrip('"'))
        else:
            out.append(c)
    return ([f'{prefix}{head}{"; ".join(loads)}"'] if loads else []) + out


@check("NET001", "offline-download-needed", severity="error")
def offline_download_needed(ctx, profile, base_dir, job_env) -> Iterator[Finding]:
    """
    What it checks: with ``network: offline`` (the default for SLURM jobs), for each phase
    the script runs, what that phase downloads at run time in this era and checkout (HF
    datasets per config, the CORE eval bundle unless ``--core-metric-every=-1``, identity
    conversations and words_alpha.txt where the checkout uses them, tiktoken files for
    tok_eval, the FA3 kernel only on the GPUs that load it) and whether a local copy is in
    place. One finding per phase lists what is missing (``data.phase``, ``data.items``).

    Why it matters: on a node without internet these downloads raise ConnectionError /
    LocalEntryNotFoundError and the phase crashes; without ``set -e`` the next phases cascade.

    Example:
        torchrun -m scripts.mid_train   # and no HF cache for cais/mmlu config 'all'

    How to fix: run the finding's prefetch command on a login node (it writes to the same
    HF_HOME / base dir the job reads, on shared storage) and export
    ``HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1`` in the job.
    """
    if ctx.config.get("network", "offline") != "offline":
        raise Skip("config network: online")
    script = ctx.get("script", None)
    if script is not None and not script.ok:
        script = None
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    run = phases_run(script, profile)
    env = job_env.env
    base = Path(base_dir.path)
    path = str(script.path) if script is not None and script.path else None
    hf_needed = False
    seen: set[str] = set()
    sm, sm_where = _gpu_sm(ctx, job_env)
    alternatives = profile.alternative_profiles() if checkout is None else []
    for phase in run:
        invs = (
            [i for i in script.all_invocations if i.module and profile.phase_of_module(i.module, i.args) == phase]
            if script is not None
            else None
        )
        missing, commands = [], []
        for item in (profile.phase(phase) or {}).get("network") or []:
            users = _needed_by(item, invs, script, job_env) if invs is not None else None
            if users is not None and not users:
                continue
            used = _marker_found(checkout, item)
            if used is False:
                continue  # this checkout does not download it (older/newer commit, a fork)
            dated = "yes" if used else _dated(item, profile)
            if dated == "no":
                continue  # upstream started downloading it after this era
            not_in = _eras_without(item, phase, alternatives)
            if item.get("gpu_sm") and sm is not None and sm not in item["gpu_sm"]:
                continue  # e.g. the Hopper FA3 kernel on an L40S job
            local = local_copy(item, base, env)
            configs = list(item.get("configs") or [])
            key = f"{local}|{','.join(configs)}"
            if key in seen:
                continue
            seen.add(key)
            if item.get("kind") == "hf_dataset":
                hf_needed = True
            if configs and item.get("kind") == "hf_dataset":
                gone = hf_configs_missing(local, configs)
                if not gone:
                    continue
                what = f"{item['source']} config{'s' if len(gone) > 1 else ''} {', '.join(gone)}"
            else:
                if _present(local, item.get("kind", "")):
                    continue
                gone, what = [], item["what"]
            if item.get("kind") == "tiktoken" and not (env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR")):
                # the default cache is node-local $TMPDIR: a login-node prefetch never reaches the job
                local = base / "tiktoken_cache"
                what += " (set TIKTOKEN_CACHE_DIR on shared storage: the default cache is node-local /tmp)"
            if dated == "maybe":
                since = item["since"]
                what += f" (if the checkout is from {since['date']} ({since['commit']}) or later; --checkout tells)"
            missing.append(
                {
                    "what": what,
                    "source": item["source"],
                    "local": str(local),
                    "kind": item.get("kind"),
                    **({"configs": gone} if gone else {}),
                    **({"conditional": True} if dated == "maybe" or not_in else {}),
                    **({"not_in_eras": not_in} if not_in else {}),
                }
            )
            commands.append(_prefetch(item, local, gone, hf_home(env)))
        if not missing:
            continue
        inv = invs[0] if invs else None
        where = inv.file if inv is not None and inv.file != "<script>" else path
        listing = "; ".join(f"{m['what']} (no local copy at {m['local']})" for m in missing)
        qualifier = ""
        shared = {tuple(m.get("not_in_eras") or ()) for m in missing}
        if len(shared) > 1:  # era-dependent items among others: each says so
            listing = "; ".join(
                f"{m['what']} ({_if_era(profile, m['not_in_eras'], 'it')}) (no local copy at {m['local']})"
                if m.get("not_in_eras")
                else f"{m['what']} (no local copy at {m['local']})"
                for m in missing
            )
        elif shared != {()}:  # all of them: said once
            qualifier = f" {_if_era(profile, missing[0]['not_in_eras'], 'these')}"
        tik = next((m["local"] for m in missing if m["kind"] == "tiktoken"), None)
        export = (
            f"; and in the job: export TIKTOKEN_CACHE_DIR={tik}"
            if tik and not (env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR"))
            else ""
        )
        yield Finding(
            f"phase {phase} downloads at run time{qualifier}: {listing}",
            path=where,
            line=inv.line if inv else None,
            fix="on a login node: " + " && ".join(_merge_hf(commands)) + export,
            data={
                "phase": phase,
                "items": missing,
                **({"gpu": sm_where} if sm_where and any(m["kind"] == "hf_kernel" for m in missing) else {}),
            },
        )
    if hf_needed and not (env.get("HF_DATASETS_OFFLINE") == "1" or env.get("HF_HUB_OFFLINE") == "1"):
        yield Finding(
            "HF datasets are needed but HF_DATASETS_OFFLINE/HF_HUB_OFFLINE are not set: on an offline node "
            "datasets tries the network first",
            path=path,
            severity=Severity.WARNING,
            fix="export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1",
        )
