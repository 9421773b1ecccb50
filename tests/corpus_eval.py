"""Run preflight over the upstream corpus (tests/corpus/upstream, built by scripts/build_corpus.py)
and measure it against the corpus facts. Used by tests/test_corpus.py; run it directly for a table:

    PYTHONPATH=. python tests/corpus_eval.py
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus" / "upstream"
CHECKS = ["SB006", "SB007", "SB010", "SB011", "SB027", "NET001", "GPU001", "ENV001"]
# what each NET001 item's local file says about which download it is
NET_USES = {
    "identity_conversations.jsonl": "identity_conversations",
    "words_alpha.txt": "words_alpha",
    "core.yaml": "eval_bundle",
    "models--varunneal--flash-attention-3": "fa3_hopper",
    "models--kernels-community--flash-attn3": "fa3_community",
}
SFT_DATA_KEYS = ("hf_datasets", "hub_parquet", "identity_conversations", "words_alpha")
FLAG_RE = re.compile(r"(?<![\w-])--([a-z][a-z0-9_-]*)")


def facts() -> list[dict]:
    return json.loads((CORPUS / "facts.json").read_text())["runners"]


def head_fact() -> dict:
    """The newest commit (what a fresh clone runs today): its commit, era, runner paths and downloads."""
    return json.loads((CORPUS / "facts.json").read_text())["head"]


def extract(dest: Path) -> Path:
    with tarfile.open(CORPUS / "corpus.tar.xz", "r:xz") as tar:
        tar.extractall(dest, filter="data")
    return dest


@dataclass
class Outcome:
    id: str
    era_truth: str
    era_alone: str = ""
    era_in_checkout: str = ""
    confidence: str = ""  # of the guess from the script alone: high | medium | low
    candidates: list = field(default_factory=list)  # that guess and the alternatives it names, as profile names
    runs_sft: bool = False  # the runner launches scripts.chat_sft (or mid_train): SFT data must be named
    findings_alone: list = field(default_factory=list)  # (code, message, fix, data)
    findings_in_checkout: list = field(default_factory=list)
    stale_parse: bool = False  # greps base_train's "(scaling: N)" count, which its commit's base_train does not print
    commands: tuple = ()  # what the script launches, as the era guess sees it (module, launcher, flags)


def _run(script: Path, cwd: Path, env_home: Path, checkout: Path | None):
    from preflight.config import load_config
    from preflight.context import Context, RunInputs
    from preflight.runner import Selection, run_checks

    values = {"base-dir": str(env_home / "base")}
    if checkout is not None:
        values["checkout"] = str(checkout)
    config = load_config(values, environ={}, search=False)
    ctx = Context(config, inputs=RunInputs(script=script, stage="pre", cwd=cwd), environ={"HOME": str(env_home)})
    profile = ctx.get("profile", None)
    result = run_checks(
        _registry(), ctx, "pre", selection=Selection(select=CHECKS, ignore=[]), profile=getattr(profile, "name", None)
    )
    found = [(f.code, f.message, f.fix or "", f.data) for c in result.checks for f in c.findings]
    if checkout is None:
        from preflight.era import guess_era

        script_model = ctx.get("script", None)
        found.append(("COMMANDS", "", "", {"commands": _commands(script_model)}))
        guess = guess_era(script_model)
        if guess is not None:
            found.append(("ERA", guess.confidence, "", {"candidates": [guess.label, *guess.alternatives]}))
    return getattr(profile, "name", ""), found


def _commands(script_model) -> tuple:
    """The script's launched entry points with their launcher and flags (name, style, value): two
    runners with the same commands look the same to anything that reads only what a script runs."""
    invs = getattr(script_model, "all_invocations", None) or []
    return tuple(
        sorted(
            {
                (
                    i.module,
                    (i.launcher or "").split(" ")[0],
                    tuple(sorted((str(f.key), str(f.style), str(f.value)) for f in i.flags)),
                )
                for i in invs
                if i.module
            }
        )
    )


_REG = []


def _registry():
    if not _REG:
        from preflight.registry import Registry

        _REG.append(Registry.default(entry_points=False))
    return _REG[0]


def evaluate(root: Path) -> list[Outcome]:
    """Each runner twice: alone (copied to an empty directory, nothing to read but the script)
    and in its own checkout (the commit's files, with --checkout)."""
    out = []
    alone_dir = root / "alone"
    alone_dir.mkdir(exist_ok=True)
    for f in facts():
        o = Outcome(f["id"], f["era"])
        text = (root / "runners" / f["id"]).read_bytes()
        o.runs_sft = b"scripts.chat_sft" in text or b"scripts.mid_train" in text
        lone = alone_dir / Path(f["runner"]).name
        lone.write_bytes(text)
        o.era_alone, o.findings_alone = _run(lone, alone_dir, root / "home", None)
        for code, confidence, _fix, data in o.findings_alone:
            if code == "COMMANDS":
                o.commands = data["commands"]
            if code == "ERA":
                o.confidence = confidence
                o.candidates = [c.split("-")[0] if c.startswith("argparse") else c for c in data["candidates"]]
        co = root / "checkouts" / f["commit"]
        printed = (co / "scripts" / "base_train.py").read_text(errors="replace")
        o.stale_parse = b"Number of parameters:" in text and b"scaling:" in text and "(scaling: " not in printed
        inside = co / f["runner"]
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_bytes(text)
        o.era_in_checkout, o.findings_in_checkout = _run(inside, co, root / "home", co)
        out.append(o)
    return out


def fix_flags(finding) -> set[str]:
    code, _msg, fix, _data = finding
    if code not in ("SB006", "SB007"):
        return set()
    return {m for m in FLAG_RE.findall(fix) if m not in ("time", "signal")}


def download_key(local: str) -> str | None:
    """Which corpus ``uses`` key a NET001 item's local copy stands for."""
    if "/task_data/" in local or local.endswith("/task_data"):
        return "hub_parquet"
    if "/datasets/" in local and "___" in local.rsplit("/", 1)[-1]:
        return "hf_datasets"
    return next((key for tail, key in NET_USES.items() if local.endswith(tail)), None)


def unused_downloads(finding, uses: dict) -> list[str]:
    code, _msg, _fix, data = finding
    if code != "NET001":
        return []
    bad = []
    for item in data.get("items", []):
        if item.get("conditional"):
            continue  # said as "if the checkout is from DATE or later": true either way
        key = download_key(item["local"])
        if key is not None and not uses.get(key, True):
            bad.append(key)
    return bad


def evaluate_head(root: Path) -> list[dict]:
    """Each runner as it stands at the newest commit, in that commit's checkout: the downloads NET001
    names, by ``uses`` key and phase (for the SFT phase: what a fresh clone's job fetches at run time)."""
    head = head_fact()
    latest = {f["runner"]: f["id"] for f in facts()}  # facts are in date order: the last version wins
    co = root / "checkouts" / head["commit"]
    out = []
    for runner in head["runners"]:
        inside = co / runner
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_bytes((root / "runners" / latest[runner]).read_bytes())
        era, found = _run(inside, co, root / "home", co)
        named = {
            (data.get("phase"), download_key(i["local"]))
            for code, _m, _f, data in found
            if code == "NET001"
            for i in data.get("items", [])
        }
        unused = [u for fd in found if (u := unused_downloads(fd, head["uses"]))]
        out.append({"runner": runner, "era": era, "named": sorted(named, key=str), "unused": unused})
    return out


def summary(outcomes: list[Outcome]) -> dict:
    by_id = {f["id"]: f for f in facts()}
    n = len(outcomes)
    upstream_only = [o for o in outcomes]
    alone_ok = sum(o.era_alone == o.era_truth for o in upstream_only)
    inside_ok = sum(o.era_in_checkout == o.era_truth for o in upstream_only)
    sb010 = [
        (o.id, m) for o in outcomes for (c, m, *_rest) in o.findings_in_checkout + o.findings_alone if c == "SB010"
    ]
    gpu001 = [
        (o.id, m) for o in outcomes for (c, m, *_rest) in o.findings_in_checkout + o.findings_alone if c == "GPU001"
    ]
    bad_fix = [
        (o.id, sorted(fix_flags(fd) - set(by_id[o.id]["base_train_flags"])))
        for o in outcomes
        for fd in o.findings_in_checkout
        if fix_flags(fd) - set(by_id[o.id]["base_train_flags"])
    ]
    unused = [
        (o.id, u) for o in outcomes for fd in o.findings_in_checkout if (u := unused_downloads(fd, by_id[o.id]["uses"]))
    ]
    unused_alone = [
        (o.id, u) for o in outcomes for fd in o.findings_alone if (u := unused_downloads(fd, by_id[o.id]["uses"]))
    ]
    # recall: what the commit's SFT / mid data loading fetches (HF cache or hub parquet, the two files) must be
    # named in its checkout when the runner trains SFT or mid and nothing is cached
    missed = [
        (o.id, key)
        for o in outcomes
        if o.runs_sft
        for key in SFT_DATA_KEYS
        if by_id[o.id]["uses"].get(key)
        and not any(
            download_key(i["local"]) == key
            for code, _m, _f, data in o.findings_in_checkout
            if code == "NET001"
            for i in data.get("items", [])
        )
    ]
    # upstream's CPU runners (dev/runcpu.sh, runs/runcpu.sh) train with plain python and request no GPU
    gpu_kernel_on_cpu = [
        (o.id, i["source"])
        for o in outcomes
        if "runcpu" in o.id
        for code, _m, _f, data in o.findings_in_checkout + o.findings_alone
        if code == "NET001"
        for i in data.get("items", [])
        if i.get("kind") == "hf_kernel"
    ]
    by_confidence = {}
    for o in outcomes:
        right, total = by_confidence.get(o.confidence, (0, 0))
        by_confidence[o.confidence] = (right + (o.era_alone == o.era_truth), total + 1)
    return {
        "runners": n,
        "era_alone": alone_ok / n,
        "era_alone_by_confidence": by_confidence,
        "era_alone_truth_named": sum(o.era_truth in o.candidates for o in outcomes) / n,
        "era_in_checkout": inside_ok / n,
        "era_alone_misses": [(o.id, o.era_truth, o.era_alone) for o in outcomes if o.era_alone != o.era_truth],
        # a miss whose launched commands equal those of a runner of the era it guessed: no reader of the
        # script's commands can tell those two apart (the era then rests on a prior)
        "era_alone_misses_same_commands_as_guess": [
            (o.id, twin.id)
            for o in outcomes
            if o.era_alone != o.era_truth
            for twin in [next((t for t in outcomes if t.era_truth == o.era_alone and t.commands == o.commands), None)]
            if twin is not None
        ],
        "sb010": sb010,
        "sb027_in_checkout": sorted({o.id for o in outcomes for c, *_r in o.findings_in_checkout if c == "SB027"}),
        "stale_log_parses": sorted(o.id for o in outcomes if o.stale_parse),
        "gpu001": gpu001,
        "fix_flags_missing": bad_fix,
        "unused_downloads_in_checkout": unused,
        "unused_downloads_alone": unused_alone,
        "gpu_kernel_on_cpu_runners": gpu_kernel_on_cpu,
        "sft_data_not_named_in_checkout": missed,
    }


DEFAULT_KEYS = {
    "scripts/base_train.py": (
        "depth",
        "max_seq_len",
        "device_batch_size",
        "total_batch_size",
        "target_param_data_ratio",
    ),
    "scripts/tok_train.py": ("vocab_size",),
}


def _declared_defaults(path: Path) -> dict:
    """An entry point's defaults as its source declares them: argparse `default=` (dashes as underscores),
    else the configurator era's module globals. -1 for total_batch_size means auto-sized (None)."""
    import ast

    out: dict = {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            name = node.args[0]
            default = [k.value for k in node.keywords if k.arg == "default"]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and default:
                try:
                    out[name.value.lstrip("-").replace("-", "_")] = ast.literal_eval(default[0])
                except ValueError:
                    pass
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out.setdefault(node.targets[0].id, ast.literal_eval(node.value))
            except ValueError:
                pass
    if out.get("total_batch_size") == -1:
        out["total_batch_size"] = None
    return out


def era_defaults(root: Path) -> dict:
    """{era: {key: {value: days}}}: each default of each era's entry points and how long upstream kept it,
    from the corpus commits (a value holds from its commit until the era's next corpus commit)."""
    import datetime as dt

    commits = sorted({(f["date"], f["commit"], f["era"]) for f in facts()})
    out: dict = {}
    for i, (date, commit, era) in enumerate(commits):
        later = [d for d, _c, e in commits[i + 1 :] if e == era]
        days = (dt.date.fromisoformat(later[0]) - dt.date.fromisoformat(date)).days if later else 1
        for rel, keys in DEFAULT_KEYS.items():
            declared = _declared_defaults(root / "checkouts" / commit / rel)
            for key in keys:
                if key in declared:
                    per = out.setdefault(era, {}).setdefault(key, {})
                    per[declared[key]] = per.get(declared[key], 0) + days
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        s = summary(evaluate(extract(Path(tmp))))
    print(f"runners: {s['runners']}")
    print(f"era from the script alone: {s['era_alone']:.1%}; in its checkout: {s['era_in_checkout']:.1%}")
    for conf, (right, total) in sorted(s["era_alone_by_confidence"].items()):
        print(f"  confidence {conf or '-'}: {right}/{total} right")
    print(f"  the true era named (the guess or one of its alternatives): {s['era_alone_truth_named']:.1%}")
    twins = dict(s["era_alone_misses_same_commands_as_guess"])
    for row in s["era_alone_misses"]:
        print("  era miss (alone):", *row, f"(launches exactly what {twins[row[0]]} does)" if row[0] in twins else "")
    print("SB027 in checkout:", s["sb027_in_checkout"], "truth:", s["stale_log_parses"])
    for key in (
        "sb010",
        "gpu001",
        "fix_flags_missing",
        "unused_downloads_in_checkout",
        "unused_downloads_alone",
        "gpu_kernel_on_cpu_runners",
        "sft_data_not_named_in_checkout",
    ):
        print(f"{key}: {len(s[key])}")
        for row in s[key][:10]:
            print("  ", row)
    sys.exit(0)


# -- forks: their SLURM scripts against their own checkout ----------------------------------------
FORKS = Path(__file__).resolve().parent / "corpus" / "forks"
FLAG_IN_MSG = re.compile(r"`--([\w-]+)`")


def fork_names() -> list[str]:
    return sorted(p.name for p in FORKS.iterdir() if (p / "facts.json").is_file()) if FORKS.is_dir() else []


def evaluate_fork(name: str, dest: Path) -> list[dict]:
    """Per runner: the flags SB010 calls unknown with the fork's checkout and without it, and the truth
    (flags the runner passes that the entry point's source never declares, from build_corpus.py)."""
    base = FORKS / name
    with tarfile.open(base / "corpus.tar.xz", "r:xz") as tar:
        tar.extractall(dest, filter="data")
    co = dest / "checkout"
    out = []
    for f in json.loads((base / "facts.json").read_text())["runners"]:
        text = (dest / "runners" / f["id"]).read_bytes()
        inside = co / f["runner"]
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_bytes(text)
        lone = dest / "alone" / f["id"]
        lone.parent.mkdir(exist_ok=True)
        lone.write_bytes(text)
        _, found_in = _run(inside, co, dest / "home", co)
        _, found_alone = _run(lone, lone.parent, dest / "home", None)

        def flags(found):
            return sorted({m for c, msg, *_ in found if c == "SB010" for m in FLAG_IN_MSG.findall(msg)[:1]})

        out.append(
            {
                "id": f["id"],
                "truth": sorted({x for v in f["stale_flags"].values() for x in v}),
                "in_checkout": flags(found_in),
                "alone": flags(found_alone),
            }
        )
    return out
