"""nanochat era profiles: what differs between eras is data (schemas/profiles/*.yaml), not code.

``profile_fact(ctx)`` chooses one, in this order:
1. ``--profile NAME`` / config ``profile:`` (anything but ``auto``);
2. the fingerprint of the nanochat checkout the script runs from (the script's ``cd`` target,
   else $SLURM_SUBMIT_DIR, else the working directory): files each era has and lacks (the profiles' fingerprint);
3. the module names and flag style in the script (``nanochat.base_train`` -> bundled, dashes ->
   argparse, ``scripts.mid_train`` with ``--key=value`` -> classic ...);
4. classic.
The Profile records why (``reason``), and is what the text and JSON reporters print.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from preflight import pyparse
from preflight.facts import FactUnavailable
from preflight.phases import PHASE_NAMES as PHASE_ORDER
from preflight.phases import variant_of

PROFILE_NAMES = ("classic", "argparse", "no-mid", "current", "bundled")


def _profiles_dir() -> Path:
    from preflight import schemas

    return schemas.path("profiles")


def _merge_into(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base`` in place (both fresh copies): mappings merge key by key, a None value
    removes the key, everything else replaces."""
    for key, value in over.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge_into(base[key], value)
        else:
            base[key] = value
    return base


COMPILED = "compiled.json"  # the YAML files parsed ahead of time (start-up budget); see compile_profiles()


def _sources() -> dict[str, str]:
    return {n: (_profiles_dir() / f"{n}.yaml").read_text(encoding="utf-8") for n in PROFILE_NAMES}


def _digest(sources: dict[str, str]) -> str:
    """What compiled.json was made from: CRC-32 and length of the YAML sources (it only has to notice an
    edit, not resist one; importing hashlib's OpenSSL costs ~4 ms of every start)."""
    import zlib

    data = "\0".join(sources[n] for n in PROFILE_NAMES).encode()
    return f"crc32:{zlib.crc32(data):08x}:{len(data)}"


def _parse_yaml(text: str) -> dict:
    import yaml

    # libyaml's safe loader when present: ~10x faster than the pure-Python one
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@lru_cache(maxsize=1)
def _raw_profiles() -> dict[str, dict]:
    """Every profile file, unmerged. Read from compiled.json when it was made from the current YAML
    sources (their CRC-32 and length; JSON loads in ~1 ms where importing and running yaml takes ~30),
    else parsed from the YAML, so a hand-edited profile wins."""
    import json

    sources = _sources()
    try:
        compiled = json.loads((_profiles_dir() / COMPILED).read_text(encoding="utf-8"))
        if compiled.get("digest") == _digest(sources):
            return compiled["profiles"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    return {n: _parse_yaml(text) for n, text in sources.items()}


def compile_profiles() -> str:
    """The text of compiled.json for the current YAML sources (`preflight docs` writes it)."""
    import json

    sources = _sources()
    return (
        json.dumps(
            {"digest": _digest(sources), "profiles": {n: _parse_yaml(t) for n, t in sources.items()}},
            indent=1,
            sort_keys=False,  # the YAML order: the same documents whether read from here or from the YAML
        )
        + "\n"
    )


@cache
def _load_raw(name: str) -> dict:
    if name not in PROFILE_NAMES:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(PROFILE_NAMES)})")
    data = json.loads(json.dumps(_raw_profiles()[name]))  # a fresh copy (plain JSON data; faster than deepcopy)
    parent = data.pop("extends", None)
    if parent:
        data = _merge_into(json.loads(_merged_json(parent)), data)
    # "report: null" / "mid: null" remove keys in the merge; keep them explicit as None
    for key in ("report",):
        data.setdefault(key, None)
    return data


@cache
def _merged_json(name: str) -> str:
    """The merged profile as JSON text: json.loads copies it ~4x faster than copy.deepcopy (the CLI loads
    profiles a dozen times per run; the data is plain JSON, as compiled.json shows)."""
    return json.dumps(_load_raw(name))


@dataclass
class Profile:
    """A nanochat era's facts (merged profile data) and why this era was chosen."""

    name: str
    reason: str
    data: dict
    variant: str | None = None  # e.g. argparse-dash / argparse-underscore
    checkout: Path | None = None  # the nanochat checkout the detection looked at
    # other eras the script alone could be written for (a guess without a checkout): ("no-mid", None), ...
    alternatives: tuple[tuple[str, str | None], ...] = ()

    # -- convenience ---------------------------------------------------------------------
    @property
    def phases(self) -> list[str]:
        present = self.data.get("phases", {})
        return [p for p in PHASE_ORDER if present.get(p) is not None]

    def phase(self, name: str) -> dict | None:
        return (self.data.get("phases") or {}).get(name)

    @property
    def defaults(self) -> dict:
        return dict(self.data.get("defaults") or {})

    @property
    def dataset(self) -> dict:
        return dict(self.data.get("dataset") or {})

    @property
    def flag_style(self) -> str:
        return self.data["flag_style"]["style"]

    @property
    def flag_word_sep(self) -> str:
        if self.variant:
            for v in self.data["flag_style"].get("variants") or []:
                if v["name"] == self.variant:
                    return v["word_sep"]
        return self.data["flag_style"]["word_sep"]

    @property
    def span(self) -> tuple[str, str]:
        """(from, to) ISO dates of the era, or of its dated flag sub-style; "" where open or unknown."""
        span = self.data.get("dates") or {}
        for v in (self.data.get("flag_style") or {}).get("variants") or []:
            if v.get("name") == self.variant:
                span = v
        return str(span.get("from") or ""), str(span.get("to") or "")

    @staticmethod
    def dates_of(item: dict) -> str:
        """A dated fact's window in words: "from DATE (commit) until DATE (commit)" (either end may be absent)."""
        since, until = item.get("since") or {}, item.get("until") or {}
        parts = [f"from {since['date']} ({since.get('commit')})"] if since.get("date") else []
        parts += [f"until {until['date']} ({until.get('commit')})"] if until.get("date") else []
        return " ".join(parts)

    def dated(self, item: dict) -> tuple[str, str]:
        """Whether this era has a dated fact (a download with ``since``/``until`` commits): "yes", "no"
        (it started after the era ended or stopped before it began) or "maybe" (it started or stopped
        inside the era: only the checkout can tell), with the condition said in words for "maybe"."""
        start, end = self.span
        since = item.get("since") or {}
        until = item.get("until") or {}  # the first commit without it
        s, u = str(since.get("date") or ""), str(until.get("date") or "")
        if (s and end and s > end) or (u and start and u <= start):
            return "no", ""
        conds = []
        if s and start and s > start:
            conds.append(f"from {s} ({since.get('commit')}) or later")
        if u and (not end or u <= end):
            conds.append(f"older than {u} ({until.get('commit')})")
        return ("maybe", " and ".join(conds)) if conds else ("yes", "")

    def alternative_profiles(self) -> list[Profile]:
        """The profiles of the other eras a script alone could be written for (empty with a checkout)."""
        return [load_profile(name, variant=variant) for name, variant in self.alternatives]

    @property
    def modules(self) -> dict:
        return {k: v for k, v in (self.data.get("modules") or {}).items() if v}

    def phase_of_module(self, module: str, args: list[str] | None = None) -> str | None:
        """Which phase an invocation of ``module`` belongs to (chat_eval: by its -i/--source). A fork's
        variant of an entry point (``scripts.base_train_jp``, a copy of base_train) is that entry's phase.
        One asked for its usage (``--help``) prints it and exits: no phase."""
        if args and any(a in ("-h", "--help") for a in args):
            return None
        module = self.entry_of_variant(module)
        if module == self.modules.get("chat_eval") or module.endswith(".chat_eval"):
            source = chat_source(args or [])
            if source in self.phases:
                return source
            return None
        for phase in self.phases:
            if module in (self.phase(phase) or {}).get("modules", []):
                return phase
        # a module from another era's naming (scripts.X vs nanochat.X): match by basename
        base = module.rsplit(".", 1)[-1]
        for phase in self.phases:
            if any(m.rsplit(".", 1)[-1] == base for m in (self.phase(phase) or {}).get("modules", [])):
                return phase
        return None

    def entry_of_variant(self, module: str) -> str:
        """``scripts.base_train_jp_cloud`` -> ``scripts.base_train`` (the longest entry point name it extends with
        ``_``); any other module as it is."""
        head, _, base = module.rpartition(".")
        known = {m.rsplit(".", 1)[-1] for phase in self.phases for m in (self.phase(phase) or {}).get("modules", [])}
        known |= {m.rsplit(".", 1)[-1] for m in self.modules.values() if isinstance(m, str)}
        if base in known:
            return module
        stem = variant_of(base, known)
        if stem is None:
            return module
        return f"{head}.{stem}" if head else stem

    def config_keys(self, module: str) -> dict | None:
        """Known configurator/argparse keys (with defaults) of a module; None when unknown."""
        base = module.rsplit(".", 1)[-1]
        if self.data["flag_style"].get("keys_from_source") and self.checkout is not None:
            keys = pyparse.settable_keys(self.checkout / "nanochat" / f"{base}.py")
            if keys is not None:
                return keys
        for phase in self.phases:
            spec = self.phase(phase) or {}
            aux = spec.get("aux_config_keys") or {}
            for mod, keys in aux.items():
                if mod.rsplit(".", 1)[-1] == base:
                    return keys
            if spec.get("train_module") and spec["train_module"].rsplit(".", 1)[-1] == base:
                return spec.get("config_keys")
        return None

    def uses_configurator(self, module: str) -> bool:
        if self.flag_style != "configurator":
            return False
        base = module.rsplit(".", 1)[-1]
        return not any(m.rsplit(".", 1)[-1] == base for m in self.data["flag_style"].get("argparse_modules", []))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "reason": self.reason,
            "variant": self.variant,
            "era": self.data.get("era"),
            "description": self.data.get("description"),
            "checkout": str(self.checkout) if self.checkout else None,
            "phases": self.phases,
            "flag_style": {"style": self.flag_style, "word_sep": self.flag_word_sep},
        }

    def __str__(self) -> str:
        v = f" ({self.variant})" if self.variant else ""
        return f"{self.name}{v}: {self.reason}"


def load_profile(name: str, reason: str = "", variant: str | None = None, checkout: Path | None = None) -> Profile:
    """A profile by public name, with `extends:` resolved (a fresh copy each call). With the checkout the job
    runs, its dataset section is the layout that checkout's nanochat/dataset.py reads."""
    data = json.loads(_merged_json(name))
    if checkout is not None:
        from preflight.dataset_layout import apply_checkout_layout

        apply_checkout_layout(data, checkout, lambda: (_merged_json(n) for n in PROFILE_NAMES))
    return Profile(name=name, reason=reason or f"profile {name}", data=data, variant=variant, checkout=checkout)


def chat_source(args: list[str]) -> str | None:
    """The phase a chat_eval / chat_cli / chat_web launch loads: its -i / --source (None when not given)."""
    for i, a in enumerate(args):
        for flag in ("-i", "--source"):
            if a == flag and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        if a.startswith("-i") and len(a) > 2 and not a.startswith("--"):
            return a[2:]
    return None


# -- detection -------------------------------------------------------------------------------
def fingerprint(checkout: Path) -> tuple[str, str, str | None] | None:
    """(profile, reason, variant) from the files of a nanochat checkout; None if it is not one."""

    def has(rel: str) -> bool:
        return (checkout / rel).exists()

    if not (has("nanochat") and (has("scripts") or has("nanochat/base_train.py"))):
        return None
    if has("nanochat/base_train.py"):
        return "bundled", f"checkout {checkout} has nanochat/base_train.py (this project's trainer)", None
    if has("nanochat/configurator.py") and _execs_configurator(checkout):
        return "classic", f"checkout {checkout} has nanochat/configurator.py (configurator era)", None
    # a configurator.py left beside an argparse base_train is no evidence of the configurator era
    leftover = " (its configurator.py is a leftover: scripts/base_train.py parses argparse flags)"
    left = leftover if has("nanochat/configurator.py") else ""
    if has("scripts/mid_train.py"):
        variant = _argparse_variant(checkout)
        why = "has scripts/mid_train.py" + (left or " but no configurator.py")
        return "argparse", f"checkout {checkout} {why}", variant
    if has("nanochat/report.py"):
        return "no-mid", f"checkout {checkout} has nanochat/report.py but no scripts/mid_train.py{left}", None
    if has("scripts/base_train.py"):
        return "current", f"checkout {checkout} has no nanochat/report.py and no scripts/mid_train.py{left}", None
    return None


def _execs_configurator(checkout: Path) -> bool:
    """Whether base_train reads its settings through the configurator (a fork may keep configurator.py after moving
    to argparse: then its flags are argparse's); True when base_train cannot be read (the file decides alone)."""
    try:
        with open(checkout / "scripts" / "base_train.py", encoding="utf-8", errors="replace") as f:
            text = f.read(400_000)
    except OSError:
        return True
    return "configurator" in text or "add_argument" not in text


def _argparse_variant(checkout: Path) -> str | None:
    probe = _load_raw("argparse")["flag_style"]["variant_probe"]
    try:
        with open(checkout / probe["file"], encoding="utf-8", errors="replace") as f:
            text = f.read(400_000)
    except OSError:
        return None
    if probe["dash"] in text:
        return "argparse-dash"
    if probe["underscore"] in text:
        return "argparse-underscore"
    return None


def candidate_checkouts(ctx: Any, script: Any | None) -> list[Path]:
    """Where the script's nanochat lives: its cd target, then $SLURM_SUBMIT_DIR, cwd, script dir."""
    out: list[Path] = []
    explicit = ctx.config.get("checkout") if ctx.config is not None else None
    if explicit:  # --checkout DIR / config checkout: wins over everything the script suggests
        out.append(Path(os.path.expanduser(str(explicit))))
    if script is not None:
        for d in getattr(script, "cd_targets", []) or []:
            out.append(Path(d))
    env = ctx.environ
    if env.get("SLURM_SUBMIT_DIR"):
        out.append(Path(env["SLURM_SUBMIT_DIR"]))
    out.append(Path(ctx.inputs.cwd))
    if script is not None and getattr(script, "path", None):
        out.append(Path(script.path).parent)
    seen, uniq = set(), []
    for p in out:
        key = str(p)
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


def _not_the_scripts(ctx: Any, script: Any | None, cand: Path) -> str | None:
    """Why a checkout only guessed from where preflight runs (cwd, $SLURM_SUBMIT_DIR, the script's
    folder) is not the one the script runs: it has none of the nanochat entry points the script
    launches. None when it may be (or when the user or the script's own cd named it)."""
    if script is None or (ctx.config is not None and ctx.config.get("checkout")):
        return None
    if str(cand) in {str(Path(d)) for d in getattr(script, "cd_targets", None) or []}:
        return None
    from preflight.checkout import Checkout

    entries: list[tuple[str | None, str | None, Path]] = []  # (module, script file, its path in a checkout)
    for inv in getattr(script, "all_invocations", None) or []:
        if inv.module and inv.module.split(".")[0] in ("scripts", "nanochat"):
            entries.append((inv.module, None, Path(*inv.module.split(".")).with_suffix(".py")))
        elif inv.script_file and "$" not in inv.script_file and not os.path.isabs(inv.script_file):
            entries.append((None, inv.script_file, Path(inv.script_file)))
    # every era has its base_train entry: a checkout without the one the script launches is another one
    # (a fork's stale launch of a removed phase is not: that is a finding about the right checkout)
    base = [e for e in entries if e[2].stem == "base_train"]
    here = Checkout(cand, "where preflight runs")
    try:
        missing = [path for module, file, path in base or entries if here.entry_file(module, file) is None]
    except OSError:
        return None
    if not missing or len(missing) < len(base or entries):
        return None
    return f"{cand} is a nanochat checkout without {missing[0]}, which the script runs"


def _not_the_logs(ctx: Any, script: Any | None, cand: Path, era: str) -> str | None:
    """After the job, with logs and no script: a checkout only guessed from where postflight runs (its
    working directory, $SLURM_SUBMIT_DIR) whose flag style the logs contradict ran another job, or has been
    updated since: `Overriding:` lines come from the configurator era only, and the bundled trainer's
    checkout runs no upstream job. The logs' era wins then."""
    if script is not None or getattr(ctx.inputs, "stage", "pre") != "post" or not getattr(ctx.inputs, "logs", None):
        return None
    if ctx.config is not None and ctx.config.get("checkout"):
        return None
    from preflight.era_evidence import detect, frame_roots, stdout_without_fingerprint

    own = _from_logs(ctx)  # a log that names its era (the bundled trainer's first line) settles it
    roots = frame_roots(list(ctx.inputs.logs))
    if own is None and roots and os.path.realpath(cand) not in {os.path.realpath(r) for r in roots}:
        return f"{cand} is not the checkout the logs ran (their tracebacks run {sorted(roots)[0]})"
    if own is not None:
        return None if own.name == era else f"{cand} is a {era} checkout, but the logs are {own.name}'s"
    if era == "bundled" and stdout_without_fingerprint(list(ctx.inputs.logs)):
        return f"{cand} is the bundled trainer's checkout, but the logs' processes do not print its first line"
    try:
        found = detect(ctx)
    except Exception:  # unreadable evidence is no evidence: keep the checkout
        return None
    if found is None or found[0] == era or not (found[0] == "classic" or era in ("classic", "bundled")):
        return None
    return f"{cand} is a {era} checkout, but the logs are another era's"


def detect_from_script(script: Any) -> tuple[str, str, str | None, tuple] | None:
    """(profile, reason, variant, alternatives) from the modules and flag spellings the script uses."""
    invocations = list(getattr(script, "all_invocations", None) or getattr(script, "invocations", []) or [])
    if not invocations:
        return None
    modules = {inv.entry for inv in invocations if inv.entry}
    if any(
        m.startswith("nanochat.") and m.split(".", 1)[1] in ("base_train", "mid_train", "chat_sft") for m in modules
    ):
        return "bundled", "the script runs python -m nanochat.base_train/mid_train/chat_sft (bundled trainer)", None, ()
    from preflight.era import guess_era

    guess = guess_era(script)
    if guess is None:
        return None
    alt = f"; also possible: {', '.join(guess.alternatives)}" if guess.alternatives else ""
    said = "; ".join(guess.evidence[:3]) or "nothing era-specific in what the script runs"
    reason = f"{said} (confidence {guess.confidence}{alt})"
    return guess.profile, reason, guess.variant, tuple(guess.alternative_eras)


def profile_fact(ctx: Any) -> Profile:
    requested = None
    if ctx.config is not None:
        requested = ctx.config.get("profile")
    if requested and requested != "auto":
        if requested not in PROFILE_NAMES:
            raise FactUnavailable(f"unknown profile {requested!r}")
        checkout = None
        try:
            script = ctx.get("script", None)
        except Exception:
            script = None
        for cand in candidate_checkouts(ctx, script):
            fp = _safe_fingerprint(cand)
            if fp:
                checkout = cand
                break
        variant = _argparse_variant(checkout) if (requested == "argparse" and checkout) else None
        return load_profile(requested, f"set by --profile/config profile: {requested}", variant, checkout)
    try:
        script = ctx.get("script", None)
    except Exception:  # an unparsable script still lets us detect from the checkout
        script = None
    passed_over: list[str] = []
    for cand in candidate_checkouts(ctx, script):
        fp = _safe_fingerprint(cand)
        if fp and (why_not := _not_the_scripts(ctx, script, cand) or _not_the_logs(ctx, script, cand, fp[0])):
            passed_over.append(why_not)
        elif fp:
            name, reason, variant = fp
            return load_profile(name, reason, variant, cand)
    if script is not None:
        guess = detect_from_script(script)
        if guess:
            name, reason, variant, alternatives = guess
            found = "; ".join(passed_over) or "no nanochat checkout found to fingerprint"
            prof = load_profile(name, f"{reason} ({found})", variant)
            prof.alternatives = alternatives
            return prof
    recorded = _from_ledger(ctx)
    if recorded:
        return recorded
    from_logs = _from_logs(ctx)
    if from_logs:
        return from_logs
    if getattr(ctx.inputs, "stage", "pre") == "post":
        from preflight.era_evidence import detect

        try:
            found = detect(ctx)  # after the job: the log grammar, the base-dir layout, the meta files
        except Exception:  # evidence that cannot be read is no evidence; the default below still applies
            found = None
        if found:
            prof = load_profile(found[0], f"{found[1]} ({'; '.join(passed_over) or 'no nanochat checkout found'})")
            prof.alternatives = tuple((name, None) for name in found[2])  # the eras the evidence fits as well
            return prof
    found = "; ".join(passed_over) or "no nanochat checkout found"
    from preflight.era_evidence import era_of_log_date

    dated = era_of_log_date(ctx, found) if script is None else None
    if dated is not None:
        return dated
    seen = "in the script" if script is not None else "in the logs"
    return load_profile("classic", f"default: {found} and nothing era-specific {seen}")


def _from_ledger(ctx: Any) -> Profile | None:
    """After the job: the profile `preflight sbatch` recorded in the run ledger."""
    if getattr(ctx.inputs, "stage", "pre") != "post" or not getattr(ctx.inputs, "job_id", None):
        return None
    try:
        ledger = ctx.get("ledger", None)
    except Exception:
        return None
    recorded = ledger.get("profile") if isinstance(ledger, dict) else None
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if name in PROFILE_NAMES:
        return load_profile(name, f"recorded in the run ledger of job {ctx.inputs.job_id}")
    return None


def _from_logs(ctx: Any) -> Profile | None:
    """After the job, without a checkout: a profile's ``log_fingerprint`` in the head or tail of a log."""

    logs = list(getattr(ctx.inputs, "logs", None) or [])
    if not logs:
        return None
    from preflight.era_evidence import log_samples

    heads = [text for _, text in log_samples(logs)]
    for name in PROFILE_NAMES:
        pattern = (_load_raw(name).get("log_fingerprint") or "").strip()
        if pattern and any(re.search(pattern, head, re.M) for head in heads):
            return load_profile(name, f"its log says so ({pattern!r} in {Path(str(logs[0])).name})")
    return None


def _safe_fingerprint(path: Path) -> tuple[str, str, str | None] | None:
    try:
        if not path.is_dir():
            return None
        return fingerprint(path)
    except OSError:
        return None
