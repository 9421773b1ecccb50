"""Offline readiness: what each phase downloads at run time, and whether a local copy exists: NET001."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from preflight.checkout_tasks import entry_imports_its_task, own_task_datasets
from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.plan_launches import phases_run
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
    if env.get("TMPDIR"):
        return Path(env["TMPDIR"]) / "data-gym-cache"
    import tempfile  # only here: tiktoken's own default, and gettempdir() probes the candidate folders

    return Path(tempfile.gettempdir()) / "data-gym-cache"


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


def parquet_splits_missing(local: Path, splits: list[str]) -> list[str]:
    """The ``config/split`` exports of a hub dataset not complete under ``task_data/<org>--<name>/``
    (``manifest.json`` is written last, so its presence means the download finished)."""
    return [s for s in splits if not _present(local / s / "manifest.json", "file")]


def _markers(item: dict) -> list[tuple[str, list[str]]]:
    out = [(item["marker"], list(item.get("marker_in") or []))] if item.get("marker") else []
    return out + [(text, list(files)) for text, files in item.get("markers") or []]


def marker_found(checkout, item: dict) -> bool | None:
    """Whether the checkout's own files use this download: False when a marker is absent from every one
    of its files that exists, True when every marker is found; None without a checkout or a file to ask."""
    if checkout is None:
        return None
    answers = []
    for marker, files in _markers(item):
        found, asked = False, False
        for rel in files:
            p = Path(checkout.root) / rel
            try:
                if p.is_file() and p.stat().st_size <= 2 << 20:
                    asked = True
                    with open(p, "rb") as fh:
                        if marker.encode() in fh.read():
                            found = True
                            break
            except OSError:
                continue
        if asked and not found:
            return False
        answers.append(found)
    return True if answers and all(answers) else None


def _phase_items(profile, phase: str, invs: list | None) -> list[dict]:
    """The downloads a phase's launches may make: its own list, and where the job evaluates it with chat_eval (``-i
    rl``), chat_eval's own tasks, which the era lists once, under the phase whose evaluation the speedrun runs."""
    items = list((profile.phase(phase) or {}).get("network") or [])
    if invs and any(i.entry.rsplit(".", 1)[-1] == "chat_eval" for i in invs):
        others = [p for p in profile.phases if p != phase]
        for item in [it for p in others for it in (profile.phase(p) or {}).get("network") or []]:
            mods = item.get("modules") or ([item["module"]] if item.get("module") else [])
            if mods and all(m.rsplit(".", 1)[-1] == "chat_eval" for m in mods) and item not in items:
                items.append(item)
    return items


def _read_without_download(checkout, item: dict, script) -> bool:
    """The checkout reads the item (its ``read_marker`` in the files that would download it) but has no code to
    download it, and the script does not fetch it either (a `curl ... eval_bundle.zip` is SB011's)."""
    read = item.get("read_marker")
    if (
        not read
        or checkout is None
        or marker_found(checkout, {"marker": read, "marker_in": item.get("marker_in")}) is not True
    ):
        return False
    # a script's own fetch names the archive or the file read (`curl -o eval_bundle.zip`, `wget -O .../core.yaml`)
    names = [n for n in (str(item.get("marker") or ""), str(read)) if n]
    words = [w for c in script.all_commands for w in c.raw_words] if script is not None else []
    return not any(n in w for n in names for w in words)


def _gpu_sm(ctx, job_env) -> tuple[int | None, str]:
    """The compute-capability major of the job's GPUs (visible GPUs, config gpu.type, the request);
    0 when the run plan trains on the CPU (no GPU requested, a plain python launcher, --device-type=cpu)."""
    from preflight.gputable import by_name, requested_model

    plan = ctx.get("plan", None)
    if plan is not None and plan.gpu_name == "CPU":
        return 0, f"no GPU: the job trains on the CPU ({plan.sources.get('gpu', 'run plan')})"
    try:
        gpus = ctx.get("gpus", None)
    except Exception:
        gpus = None
    if gpus and gpus[0].compute_cap:
        return gpus[0].compute_cap[0], gpus[0].name
    cfg = ctx.config.get("gpu") or {}
    model = by_name(str(cfg["type"])) if cfg.get("type") else None
    where = "config gpu.type"
    if model is None and plan is not None and plan.sources.get("gpu", "").startswith("named in the script"):
        model, where = by_name(plan.gpu_name), plan.sources["gpu"]  # a workstation script's comment
    if model is None:
        model, where = requested_model(job_env.sbatch)
    if model is None:
        from preflight.gputable import DEFAULT_MODEL

        model, where = by_name(DEFAULT_MODEL), "assumed, as the plan does: no GPU model known"
    if model is None or model.sm is None:
        return None, ""
    return model.sm[0], f"{model.name} ({where})"


def _eras_without(item: dict, phase: str, alternatives: list) -> dict[str, str]:
    """The other eras a script alone could be written for (a guess without a checkout) whose same phase does
    not download this item ("") or only in part of the era (the condition): then whether the job needs it
    depends on the checkout, and the finding says so."""
    out = {}
    for alt in alternatives:
        if alt.phase(phase) is None:
            continue
        dated = [alt.dated(i) for i in alt.phase(phase).get("network") or [] if _same_download(i, item)]
        if any(d == "yes" for d, _ in dated):
            continue
        out[alt.variant or alt.name] = next((c for d, c in dated if d == "maybe"), "")
    return out


def _same_download(a: dict, b: dict) -> bool:
    """The same source fetched the same way, with a config in common (or neither naming configs)."""
    if a.get("source") != b.get("source") or a.get("kind") != b.get("kind"):
        return False
    ca, cb = set(a.get("configs") or ()), set(b.get("configs") or ())
    return bool(ca & cb) or not (ca or cb)


def _if_era(profile, missing: list[dict]) -> str:
    """What the other candidate eras download of these, grouped: "in the current era: A, B only if the
    checkout is older than DATE (commit); C not at all"."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in missing:
        for era, cond in (m.get("era_conditions") or dict.fromkeys(m.get("not_in_eras") or (), "")).items():
            groups.setdefault((era, cond), []).append(m["what"].split(" (", 1)[0])
    if len(groups) == 1 and len(next(iter(groups.values()))) == len(missing):  # one statement for all of them
        ((era, cond),) = groups
        said = [
            f"in the {era} era " + (f"only if the checkout is {cond}" if cond else "this phase does not download these")
        ]
    else:
        by_era: dict[str, list[str]] = {}
        for (era, cond), names in groups.items():
            how = f"only if the checkout is {cond}" if cond else "not at all"
            by_era.setdefault(era, []).append(f"{', '.join(names)} {how}")
        said = [f"in the {era} era: {'; '.join(parts)}" for era, parts in by_era.items()]
    era = profile.variant or profile.name
    return f"if the checkout is of the {era} era (the script's likeliest; {'; '.join(said)}; --checkout tells)"


def _flag_int(script, inv, job_env, key: str) -> int | None:
    f = inv.flag(key)
    if f is None or f.value is None:
        return None
    value = script.expand(f.value, inv.line, inv.file, job_env.start) if "$" in f.value else f.value
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _needed_by(item: dict, invs: list, script, job_env, phase_modules: list, checkout=None) -> list:
    """The launches of this phase that need the item (all of them when no script is at hand). A fork's own entry of
    the phase (scripts.chat_sft_pre1985) needs what its source and the task modules it imports name."""
    mods = item.get("modules") or ([item["module"]] if item.get("module") else None)
    upstream = {m.rsplit(".", 1)[-1] for m in phase_modules}
    out = []
    for inv in invs:
        base = inv.entry.rsplit(".", 1)[-1]
        own = _fork_entry_names(checkout, inv.entry, item) if checkout is not None and base not in upstream else None
        if own is False:
            continue  # the fork's entry, read: nothing in it or its tasks names this download
        if own is None and mods and base not in {m.rsplit(".", 1)[-1] for m in mods}:
            continue
        if any(
            _switched_off(cond, script, inv, job_env)
            for cond in off_conditions(item)
            if cond["module"].rsplit(".", 1)[-1] == base
        ):
            continue  # --core-metric-every=-1: base_train never evaluates CORE; base_eval --eval=bpb runs none
        out.append(inv)
    return out


def _fork_entry_names(checkout, entry: str, item: dict) -> bool | None:
    """Whether a fork's entry point, or a ``tasks`` module it imports, names the item's source; None when the
    entry cannot be read."""
    texts = _entry_texts(str(checkout.root), entry)
    if texts is None:
        return None
    # the dataset's id (cais/mmlu), or a downloaded file's stem (words_alpha): the markers tell eras apart, not what
    # is downloaded ("from datasets import")
    source = item.get("source") or ""
    needle = source.rsplit("/", 1)[-1].split(".")[0] if source.startswith("http") else source
    return bool(needle) and any(needle in t for t in texts)


@lru_cache(maxsize=64)
def _entry_texts(root: str, entry: str) -> tuple[str, ...] | None:
    """The source of an entry point and of the ``tasks.*`` modules it imports (what it may build and download)."""

    def read(module: str) -> str | None:
        path = Path(root, *module.split(".")).with_suffix(".py")
        try:
            with open(path, "rb") as fh:
                return fh.read(2 << 20).decode("utf-8", errors="replace")
        except OSError:
            return None

    own = read(entry)
    if own is None:
        return None
    tasks = dict.fromkeys(re.findall(r"^\s*(?:from|import)\s+(tasks\.\w+)", own, re.M))
    return (own, *(t for m in tasks if (t := read(m)) is not None))


def off_conditions(item: dict) -> list[dict]:
    """An item's off_when: one condition or a list of them (each: a module, its flag, and max or lacks)."""
    off = item.get("off_when") or []
    return [off] if isinstance(off, dict) else list(off)


def _switched_off(cond: dict, script, inv, job_env) -> bool:
    if "lacks" in cond:  # a list flag without the word: --eval=bpb,sample (no core)
        f = inv.flag(cond["flag"])
        if f is None or f.value is None:
            return False
        value = script.expand(f.value, inv.line, inv.file, job_env.start) if "$" in f.value else f.value
        return value is not None and "$" not in value and cond["lacks"] not in {w.strip() for w in value.split(",")}
    v = _flag_int(script, inv, job_env, cond["flag"])
    return v is not None and v <= cond.get("max", 0)


PARQUET_HEAD = 'python -c "from tasks.common import load_hub_dataset as get; '


def hf_env_prefix(env: dict) -> str:
    """The job's HF settings for a prefetch on a login node (HF_HOME as the job resolves it)."""
    from preflight.causes import hf_assignments

    return hf_assignments({**env, "HF_HOME": str(hf_home(env))})


def _prefetch(item: dict, local: Path, missing_configs: list[str], env: dict, base: Path, root) -> str:
    kind = item.get("kind")
    if kind == "hub_parquet":
        gets = "; ".join(f"get({item['source']!r}, {c.split('/')[0]!r}, {c.split('/')[1]!r})" for c in missing_configs)
        where = f"cd {root} && " if root else "(in the job's nanochat checkout) "
        mirror = f"HF_ENDPOINT={env['HF_ENDPOINT']} " if env.get("HF_ENDPOINT") else ""
        return f'{where}{mirror}NANOCHAT_BASE_DIR={base} {PARQUET_HEAD}{gets}"'
    if kind == "hf_dataset" and item.get("configs"):
        loads = "; ".join(f"load_dataset({item['source']!r}, {c!r})" for c in (missing_configs or item["configs"]))
        return f'{hf_env_prefix(env)} python -c "from datasets import load_dataset; {loads}"'
    if kind == "hf_kernel":
        return f"{hf_env_prefix(env)} hf download {item['source']}"
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
    """One ``python -c`` for all the dataset loads of a phase (HF cache or hub parquet), the rest in order."""
    merged: dict[tuple[str, str], list[str]] = {}  # (prefix, head) -> loads
    out: list = []
    for c in dict.fromkeys(commands):
        for head in ('python -c "from datasets import load_dataset; ', PARQUET_HEAD):
            pre, sep, rest = c.partition(head)
            if sep:
                if (pre, head) not in merged:
                    merged[(pre, head)] = []
                    out.append((pre, head))
                merged[(pre, head)].append(rest.rstrip('"'))
                break
        else:
            out.append(c)
    return [f'{o[0]}{o[1]}{"; ".join(merged[o])}"' if isinstance(o, tuple) else o for o in out]


def _own_datasets(checkout, profile, phase: str, invs: list | None, base: Path, env: dict) -> list[dict]:
    """The datasets a fork's own tasks load (by a literal repo id) for the phase's trainer, which the era does not
    list, where no local copy is found (the hub's parquet export in task_data/, else the HF datasets cache)."""
    trainer = (profile.phase(phase) or {}).get("train_module")
    if checkout is None or not trainer or (invs is not None and not any(i.entry == trainer for i in invs)):
        return []
    known = {str(i.get("source")) for p in profile.phases for i in (profile.phase(p) or {}).get("network") or []}
    out = []
    for repo, loader, where in own_task_datasets(checkout, trainer, known):
        hub = loader == "load_hub_dataset"
        local = (
            base / "task_data" / repo.replace("/", "--") if hub else hf_datasets_cache(env) / repo.replace("/", "___")
        )
        if local.exists():
            continue
        via = ", the hub's parquet export" if hub else ""
        what = f"{repo} (loaded by this checkout's own {where}{via})"
        out.append(
            {
                "what": what,
                "source": repo,
                "local": str(local),
                "kind": "hub_parquet" if hub else "hf_dataset",
                "task": where,
            }
        )
    return out


@check("NET001", "offline-download-needed", severity="error")
def offline_download_needed(ctx, profile, base_dir, job_env) -> Iterator[Finding]:
    """
    What it checks: with ``network: offline`` (the default for SLURM jobs), for each phase
    the script runs, what that phase downloads at run time in this era and checkout (HF
    datasets per config, or from 2026-07-03 the hub's parquet export per config and split
    into ``task_data/``; the CORE eval bundle unless ``--core-metric-every=-1``; ChatCORE's
    datasets during SFT unless ``--chatcore-every=-1``; identity conversations and
    words_alpha.txt where the checkout uses them; tiktoken files for tok_eval; the FA3
    kernel only on the GPUs that load it, never on a CPU run) and whether a local copy is in
    place. With ``--checkout``, a task's dataset counts only where the phase's entry point
    imports that task, and the datasets a fork's own tasks load by a literal repo id count
    too. One finding per phase lists what is missing (``data.phase``, ``data.items``).

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
    if "$(" in str(base) or "`" in str(base):
        # the job computes it (NANOCHAT_BASE_DIR="$(eval echo ...)"): pasted on a login node that text would name
        # another directory (/ where its variable is unset); this form stops with a message instead
        base = Path("${NANOCHAT_BASE_DIR:?set it to the base dir the job computes}")
    path = str(script.path) if script is not None and script.path else None
    hf_needed = False
    seen: set[tuple[str, str]] = set()  # (local copy, config): said once per phase even if two items need it
    sm, sm_where = _gpu_sm(ctx, job_env)
    alternatives = profile.alternative_profiles() if checkout is None else []
    for phase in run:
        invs = (
            [i for i in script.all_invocations if i.entry and profile.phase_of_module(i.entry, i.args) == phase]
            if script is not None
            else None
        )
        missing, commands = [], []
        for item in _phase_items(profile, phase, invs):
            phase_modules = (profile.phase(phase) or {}).get("modules") or []
            users = _needed_by(item, invs, script, job_env, phase_modules, checkout) if invs is not None else None
            if users is not None and not users:
                continue
            if not entry_imports_its_task(checkout, item):
                continue  # the entry point that would load it does not import the task that does (a fork's mixture)
            used = marker_found(checkout, item)
            read_only = used is False and _read_without_download(checkout, item, script)
            if used is False and not read_only:
                continue  # this checkout does not download it (older/newer commit, a fork)
            dated, condition = ("yes", "") if used or read_only else profile.dated(item)
            if dated == "no":
                continue  # upstream downloads it only after this era, or stopped before it
            not_in = _eras_without(item, phase, alternatives)
            if item.get("gpu_sm") and sm is not None and sm not in item["gpu_sm"]:
                continue  # e.g. the Hopper FA3 kernel on an L40S job, or on a CPU run
            local = local_copy(item, base, env)
            kind = item.get("kind", "")
            configs = [c for c in item.get("configs") or [] if (str(local), c) not in seen]
            if item.get("configs") and not configs or (not item.get("configs") and (str(local), "") in seen):
                continue
            seen.update((str(local), c) for c in configs or [""])
            if kind == "hf_dataset":
                hf_needed = True
            if configs and kind in ("hf_dataset", "hub_parquet"):
                gone = (hf_configs_missing if kind == "hf_dataset" else parquet_splits_missing)(local, configs)
                if not gone:
                    continue
                if kind == "hf_dataset":
                    what = f"{item['source']} config{'s' if len(gone) > 1 else ''} {', '.join(gone)}"
                else:
                    what = f"{item['source']} {', '.join(gone)} (the hub's parquet export)"
            else:
                if _present(local, kind):
                    continue
                gone, what = [], item["what"]
            if kind == "tiktoken" and not (env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR")):
                # the default cache is node-local $TMPDIR: a login-node prefetch never reaches the job
                local = base / "tiktoken_cache"
                what += " (set TIKTOKEN_CACHE_DIR on shared storage: the default cache is node-local /tmp)"
            if dated == "maybe":
                tells = "--checkout tells" if checkout is None else "the checkout's files do not say"
                what += f" (if the checkout is {condition}; {tells})"
            if read_only:
                what += ", which this checkout reads but has no code to download (FileNotFoundError where it is read)"
            missing.append(
                {
                    "what": what,
                    **({"read_only": True} if read_only else {}),
                    "source": item["source"],
                    "local": str(local),
                    "kind": kind,
                    **({"configs": gone} if gone else {}),
                    **({"conditional": True} if dated == "maybe" or not_in else {}),
                    # every launch that needs it goes on if it fails (`tok_eval || true`)
                    **({"tolerated": True} if users and all(u.command.op_after == "||" for u in users) else {}),
                    **({"not_in_eras": list(not_in)} if not_in else {}),
                    **({"era_conditions": not_in} if any(not_in.values()) else {}),
                }
            )
            root = checkout.root if checkout is not None else None
            commands.append(_prefetch(item, local, gone, env, base, root))
        own = _own_datasets(checkout, profile, phase, invs, base, env)
        missing += own
        if not missing:
            continue
        inv = invs[0] if invs else None
        where = inv.file if inv is not None and inv.file != "<script>" else path
        listing = "; ".join(f"{m['what']} (no local copy at {m['local']})" for m in missing)
        qualifier = ""
        if any(m.get("not_in_eras") for m in missing):  # other candidate eras differ: said once, grouped
            qualifier = f" {_if_era(profile, missing)}"
        tik = next((m["local"] for m in missing if m["kind"] == "tiktoken"), None)
        export = (
            f"; and in the job: export TIKTOKEN_CACHE_DIR={tik}"
            if tik and not (env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR"))
            else ""
        )
        if own:  # no era knows their configs: the checkout's own task code is the prefetch
            tasks = ", ".join(dict.fromkeys(m["task"].split(":")[0] for m in own))
            build = f"build this checkout's own tasks once there ({tasks}: they load their datasets when made)"
            export += f"; and {build}" if commands else build
        tolerated = all(m.get("tolerated") for m in missing)
        needs = "reads files nothing downloads" if all(m.get("read_only") for m in missing) else "downloads at run time"
        yield Finding(
            f"phase {phase} {needs}{qualifier}: {listing}"
            + (
                "; each launch that needs it goes on when it fails (`|| ...`), so the job does too" if tolerated else ""
            ),
            path=where,
            line=inv.line if inv else None,
            severity=Severity.WARNING if tolerated else None,
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
