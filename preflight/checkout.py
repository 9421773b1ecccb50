"""Read the nanochat checkout a job will run, statically: each entry point's real flags.

The source is parsed with ``ast`` and never imported or executed (it is someone else's code):
- argparse: every ``*.add_argument("--name", ...)`` call (option strings, type, default, action);
- the configurator era: the module's top-level assignments before it execs ``nanochat/configurator.py``
  (it takes any of those globals as a ``--key=value`` key; literals give the key's type);
- dataclass configs: the annotated fields of a ``@dataclass`` class (forks' tyro/simple-parsing style).
It also notes what the entry point can do: save periodically, resume, save on a signal.

Reading is lazy (only the entry points a script launches) and cached per file (path, size, mtime).
A file that is missing, huge, not a regular file, a symlink loop, undecodable or full of syntax errors
gives an ``EntryPoint`` with ``error`` set, never an exception.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from preflight import pyparse

MAX_SOURCE_BYTES = 2 << 20  # nanochat's largest script is ~40 KB; anything past 2 MB is not one


@dataclass(frozen=True)
class CheckoutFlag:
    """One option an entry point declares, read statically from its source."""

    option: str  # as declared, without leading dashes: "device-batch-size" / "device_batch_size"
    type: str | None = None  # int | float | str | bool (store_true) | None (unknown)
    default: Any = None
    aliases: tuple[str, ...] = ()  # other option strings of the same argument
    choices: tuple[Any, ...] = ()  # its literal choices=[...], where it declares them
    env: str | None = None  # the environment variable its default comes from (`run = os.getenv("WANDB_RUN", ...)`)


@dataclass
class EntryPoint:
    """A launched entry point of the checkout: its flags and what it can save or resume."""

    module: str  # scripts.base_train
    path: str
    style: str = "none"  # argparse | configurator | dataclass | none
    flags: dict[str, CheckoutFlag] = field(default_factory=dict)  # option (no dashes) -> flag
    error: str | None = None  # why it could not be read
    saves_periodically: bool = False  # has a save_every-style flag
    resumes: bool = False  # has a resume_from_step-style flag
    saves_on_signal: bool = False  # installs a SIGUSR1/SIGTERM handler
    batch_power_of_two: bool = False  # auto-sizes the total batch to a power of two (2 ** round(log2(...)))
    batch_rounded: bool = False  # then rounds that auto batch to a multiple of the micro-batch (a fork's fix)
    # a wrapper: parses its own flags with parse_known_args and runs another entry point on the rest
    # (`sys.argv = [sys.argv[0]] + remaining; import scripts.base_train`)
    known_args: bool = False
    delegates: str | None = None
    split_asserted: bool = False  # base_loss: `assert split_tokens % tokens_per_step == 0` (until 2026-02-01)
    scaling_params: bool = False  # its ratio counts the block matrices + lm_head (no embeddings)
    nudged_dim: bool = False  # rounds depth * aspect_ratio up to a multiple of head_dim

    @property
    def ok(self) -> bool:
        return self.error is None and self.style != "none"

    def lookup(self, key: str) -> CheckoutFlag | None:
        """The flag ``--key`` means, as the entry point's parser would resolve it: exact option, then
        (argparse only, its default allow_abbrev) a unique prefix."""
        if key in self.flags:
            return self.flags[key]
        if self.style == "argparse":
            hits = {f.option for opt, f in self.flags.items() if opt.startswith(key)}
            if len(hits) == 1:
                return self.flags[hits.pop()]
        return None

    def numeric_default(self, dest: str) -> int | float | None:
        """The literal positive default this entry point declares for a setting (a fork's max_seq_len=1024); None
        for none, a flag, or -1 / 0 (computed at run time, as an auto-sized batch is)."""
        spelled = self.spelled(dest) if self.ok else None
        flag = self.lookup(spelled) if spelled else None
        value = flag.default if flag is not None else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return None
        return value

    def spelled(self, dest: str) -> str | None:
        """How this checkout spells a setting (``save_every`` -> ``save-every``); None if it has none."""
        norm = dest.replace("-", "_")
        for opt in self.flags:
            if opt.replace("-", "_") == norm:
                return opt
        return None

    def suggest(self, key: str) -> list[str]:
        norm = {opt.replace("-", "_"): opt for opt in self.flags}
        want = key.replace("-", "_")
        last = want.rsplit("_", 1)[-1]
        # a near spelling, but not one that counts another thing (--eval_steps is no typo of --eval-tokens)
        close = [
            c
            for c in difflib.get_close_matches(want, list(norm), n=3, cutoff=0.75)
            if difflib.SequenceMatcher(None, last, c.rsplit("_", 1)[-1]).ratio() >= 0.8
        ]
        # or the setting under a shorter name: --model-step where the script declares --step
        close += [c for c in norm if "_" in want and want.endswith("_" + c) and c not in close]
        return [norm[c] for c in close[:3]]


@dataclass
class Checkout:
    """The nanochat checkout the job will run, and how it was found."""

    root: Path
    source: str  # how it was found: "--checkout", "the script's cd", ...

    def entry_file(self, module: str | None, script_file: str | None = None) -> Path | None:
        if module:
            rel = Path(*module.split("."))
            for cand in (self.root / rel.with_suffix(".py"), self.root / rel / "__main__.py"):
                if _is_file(cand):
                    return cand
            return None
        if script_file:
            p = Path(script_file)
            cand = p if p.is_absolute() else self.root / p
            return cand if _is_file(cand) else None
        return None

    def entry(self, module: str | None, script_file: str | None = None) -> EntryPoint | None:
        """The entry point a launch runs; None when the checkout has no such file."""
        path = self.entry_file(module, script_file)
        if path is None:
            return None
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
        except OSError as exc:
            return EntryPoint(module or str(script_file), str(path), error=f"cannot stat {path}: {exc.strerror or exc}")
        ep = _read_entry(str(path), *key)
        if module and ep.module != module:
            ep = EntryPoint(**{**ep.__dict__, "module": module})
        return ep

    def to_json(self) -> dict:
        return {"root": str(self.root), "source": self.source}


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:  # ELOOP, EACCES on a parent ...
        return False


@lru_cache(maxsize=64)
def _read_entry(path: str, size: int, mtime_ns: int) -> EntryPoint:
    name = Path(path).stem
    ep = EntryPoint(name, path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            ep.error = f"{path} is not a regular file"
            return ep
        if st.st_size > MAX_SOURCE_BYTES:
            ep.error = f"{path} is {st.st_size // 1024} KB, too large to be a nanochat entry point; not read"
            return ep
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SOURCE_BYTES + 1)
        text = raw.decode("utf-8")
        tree = _parse_declarations(text, path)
    except OSError as exc:
        ep.error = f"cannot read {path}: {exc.strerror or exc}"
        return ep
    except UnicodeDecodeError:
        ep.error = f"{path} is not UTF-8 text"
        return ep
    except SyntaxError as exc:
        ep.error = f"{path} does not parse as Python (line {exc.lineno}: {exc.msg})"
        return ep
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; absurdly nested expressions
        ep.error = f"{path} could not be parsed ({type(exc).__name__})"
        return ep
    _collect(tree, ep)
    # (or a loop that registers one handler for each name: `for name in ("SIGUSR1", "SIGTERM"): signal.signal(...)`)
    ep.saves_on_signal = bool(_SIGNAL_RE.search(text) or ("signal.signal(" in text and _SIGNAL_NAME_RE.search(text)))
    ep.batch_power_of_two = bool(_POW2_BATCH_RE.search(text))
    ep.batch_rounded = bool(_ROUNDED_BATCH_RE.search(text))
    ep.known_args = ".parse_known_args(" in text
    ep.split_asserted = bool(_SPLIT_ASSERT_RE.search(text))
    if m := _DELEGATE_RE.search(text):
        ep.delegates = m.group(1) or m.group(3) or f"scripts.{m.group(2)}"
    ep.scaling_params = bool(_SCALING_PARAMS_RE.search(text))
    ep.nudged_dim = bool(_NUDGED_DIM_RE.search(text))
    return ep


_SIGNAL_RE = re.compile(r"signal\.signal\(\s*(?:signal\.)?SIG(?:USR1|USR2|TERM)\b")
_SIGNAL_NAME_RE = re.compile(r"[\"']SIG(?:USR1|USR2|TERM)[\"']")
# base_train from 2026-02-06 (685271d): `total_batch_size = 2 ** round(math.log2(predicted_batch_size))`
# (a fork may name it preferred_batch_size and then round it: `total_batch_size = round_to_nearest_multiple(
# preferred_batch_size, world_tokens_per_fwdbwd)`, so any power of two divides)
_POW2_BATCH_RE = re.compile(r"\w*batch_size\s*=\s*2\s*\*\*\s*(?:round|int|math\.ceil|math\.floor)\(")
_ROUNDED_BATCH_RE = re.compile(r"total_batch_size\s*=\s*[\w.]+\(\s*\w+\s*,\s*world_tokens_per_fwdbwd\s*\)")
# base_train from 2026-01-27: tokens = ratio x (transformer_matrices + lm_head), "the cleanest scaling laws"
_SPLIT_ASSERT_RE = re.compile(r"assert\s+(?:args\.)?split_tokens\s*%\s*tokens_per_step\s*==\s*0")
# a wrapper's run of another entry point: `import scripts.base_train`, `from scripts import base_train`,
# `runpy.run_module("scripts.base_train", ...)`
_DELEGATE_RE = re.compile(
    r"^\s*(?:import\s+(scripts\.\w+)|from\s+scripts\s+import\s+(\w+)\b)|runpy\.run_module\(\s*['\"](scripts\.\w+)['\"]",
    re.M,
)
_SCALING_PARAMS_RE = re.compile(r"\[['\"]transformer_matrices['\"]\]\s*\+\s*[\w.()]+\[['\"]lm_head['\"]\]")
# base_train from 2026-01-18 (cf5c9e5): `model_dim = ((base_dim + args.head_dim - 1) // args.head_dim) * args.head_dim`
_NUDGED_DIM_RE = re.compile(r"model_dim\s*=\s*\(\(\s*base_dim\s*\+\s*(?:args\.)?head_dim\s*-\s*1\s*\)\s*//")


def _parse_declarations(text: str, path: str) -> ast.Module:
    """Parse only as far as the declarations go when that is a clean cut (the flags of nanochat's
    scripts sit in their first ~80 lines; parsing all ~500 costs most of the read), else the whole file.
    The cut is the first top-level statement after the last ``add_argument`` / the configurator exec."""
    lines = text.splitlines(keepends=True)
    marks = [i for i, s in enumerate(lines) if "add_argument" in s or ("exec(" in s and "configurator" in s)]
    if marks and "@dataclass" not in text and "dataclass" not in text:
        for j in range(marks[-1] + 1, len(lines)):
            s = lines[j]
            if s[:1] not in ("", " ", "\t", "\n", "\r", "#", ")", "]", "}") and not s.startswith(
                ("else", "elif", "except", "finally")
            ):
                try:
                    return pyparse.parse("".join(lines[:j]), filename=path)
                except SyntaxError:
                    break  # not a clean cut: parse everything
    return pyparse.parse(text, filename=path)


def _collect(tree: ast.Module, ep: EntryPoint) -> None:
    argparse_flags: dict[str, CheckoutFlag] = {}
    dataclass_flags: dict[str, CheckoutFlag] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "add_argument":
                for f in _argparse_flag(node):
                    argparse_flags[f.option] = f
        elif isinstance(node, ast.ClassDef) and any(_decorator_name(d) == "dataclass" for d in node.decorator_list):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    value = _literal(stmt.value) if stmt.value is not None else None
                    ann = stmt.annotation.id if isinstance(stmt.annotation, ast.Name) else None
                    dataclass_flags[stmt.target.id] = CheckoutFlag(stmt.target.id, ann, value)
    configurator = _configurator_keys(tree)
    if argparse_flags:
        for name in ("help", "h"):  # argparse's own (add_help): prints the usage and exits
            argparse_flags.setdefault(name, CheckoutFlag(name, "bool", False, ("h",) if name == "help" else ("help",)))
        ep.style, ep.flags = "argparse", argparse_flags
    elif configurator is not None:
        ep.style, ep.flags = "configurator", configurator
    elif dataclass_flags:
        ep.style, ep.flags = "dataclass", dataclass_flags
    norm = {k.replace("-", "_") for k in ep.flags}
    ep.saves_periodically = "save_every" in norm
    ep.resumes = "resume_from_step" in norm


def _argparse_flag(call: ast.Call) -> list[CheckoutFlag]:
    opts = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    longs = [o[2:] for o in opts if o.startswith("--") and len(o) > 2]
    shorts = [o[1:] for o in opts if o.startswith("-") and not o.startswith("--") and len(o) > 1]
    if not longs and not shorts:
        return []  # a positional argument
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    action = _literal(kw["action"]) if "action" in kw else None
    # argparse.BooleanOptionalAction: --compile and --no-compile
    negatable = (
        isinstance(kw.get("action"), ast.Attribute | ast.Name)
        and (getattr(kw["action"], "attr", None) or getattr(kw["action"], "id", None)) == "BooleanOptionalAction"
    )
    typ = None
    if isinstance(kw.get("type"), ast.Name):
        typ = kw["type"].id
    elif action in ("store_true", "store_false") or negatable:
        typ = "bool"
    default = _literal(kw["default"]) if "default" in kw else (False if action == "store_true" else None)
    names = longs + [f"no-{n}" for n in longs if negatable] + shorts
    choices = _literal(kw["choices"]) if "choices" in kw else None
    choices = tuple(choices) if isinstance(choices, list | tuple) else ()
    return [CheckoutFlag(n, typ, default, tuple(x for x in names if x != n), choices) for n in names]


def _configurator_keys(tree: ast.Module) -> dict[str, CheckoutFlag] | None:
    """Configurator era: ``exec(open(os.path.join('nanochat', 'configurator.py')).read())`` overrides
    the simple globals assigned above it; those are the keys. None when the module does not exec it."""
    keys: dict[str, CheckoutFlag] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and _is_configurator_exec(node.value):
            return keys
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            value = _literal(node.value)
            if not name.startswith("_") and isinstance(value, (int, float, bool, str)):
                keys[name] = CheckoutFlag(name, type(value).__name__, value)
            elif not name.startswith("_") and isinstance(node.value, ast.Constant) and node.value.value is None:
                keys[name] = CheckoutFlag(
                    name
                )  # `model_tag = None`: a key of any type (the configurator skips its check)
            elif not name.startswith("_") and isinstance(node.value, (ast.List, ast.Tuple, ast.Dict)):
                # `length_buckets = [(2048, 0.6), ...]`: the configurator takes any global, literal_eval's list
                keys[name] = CheckoutFlag(name, type(node.value).__name__.lower())
            elif not name.startswith("_") and name != "config_keys":  # (the list of keys it logs: not a setting)
                # a computed global: a key too, of the type its value has then; a fork's default from the environment
                keys[name] = CheckoutFlag(name, env=pyparse.environ_name(node.value))
    return None


def _is_configurator_exec(call: ast.Call) -> bool:
    if not (isinstance(call.func, ast.Name) and call.func.id == "exec"):
        return False
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and "configurator" in n.value for n in ast.walk(call)
    )


def _decorator_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _literal(node: ast.AST) -> Any:
    """A literal, or constant arithmetic on literals (``80*524288``); else None. Never evaluates code."""
    from preflight.pyparse import const_value

    return const_value(node)


# -- finding the checkout ----------------------------------------------------------------------
def looks_like_checkout(path: Path) -> bool:
    try:
        return (
            path.is_dir()
            and ((path / "scripts").is_dir() or (path / "nanochat" / "base_train.py").is_file())
            and (path / "nanochat").is_dir()
        )
    except OSError:
        return False


def checkout_fact(ctx: Any) -> Checkout | None:
    """The checkout the job runs: ``--checkout DIR`` / config ``checkout:``, else the directory the
    era profile was fingerprinted from (the script's cd target, $SLURM_SUBMIT_DIR, cwd, the script's dir)."""
    from preflight.facts import FactUnavailable

    explicit = ctx.config.get("checkout") if ctx.config is not None else None
    if explicit:
        p = Path(os.path.expanduser(str(explicit)))
        if looks_like_checkout(p):
            return Checkout(p, "--checkout")
        raise FactUnavailable(f"--checkout {p} is not a nanochat checkout (no nanochat/ and scripts/ there)")
    try:
        profile = ctx.get("profile", None)
    except Exception:
        profile = None
    root = getattr(profile, "checkout", None)
    if root is not None and looks_like_checkout(Path(root)):
        return Checkout(Path(root), f"the nanochat checkout at {root} (where the script runs)")
    if getattr(ctx.inputs, "stage", "pre") == "post":  # after the job: the one `preflight sbatch` recorded
        try:
            ledger = ctx.get("ledger", None)
        except Exception:
            ledger = None
        rec = ledger.get("profile") if isinstance(ledger, dict) else None
        recorded = rec.get("checkout") if isinstance(rec, dict) else None
        if isinstance(recorded, str) and looks_like_checkout(Path(recorded)):
            return Checkout(Path(recorded), "the run ledger")
    return None


# -- flags a fix may name ------------------------------------------------------------------------
# when upstream gained the settings fixes talk about (so a fix can say "update past ...")
SETTING_SINCE = {"save_every": "2025-11-13 (c6abcdf)", "resume_from_step": "2025-11-13 (c6abcdf)"}


def model_tag_flag(checkout: Checkout | None, profile: Any, module: str) -> tuple[str | None, bool]:
    """How an entry point that loads a checkpoint is told its model tag: (flag, whether the checkout's source
    said so). None: it takes no tag (an era's untagged loader, or the checkout's own source has no such flag): it
    loads the largest dN."""
    flag, source = setting_flag(checkout, profile, module, "model_tag")
    if source.endswith(".py"):
        return flag, True
    if profile is not None and module in profile.data.get("untagged_loaders", []):
        return None, False
    if profile is not None and not profile.uses_configurator(module):
        return "--model-tag", False  # without its source: how every upstream argparse loader spells it
    return flag or "--model_tag", False


def setting_flag(
    checkout: Checkout | None, profile: Any, module: str | None, dest: str, script_file: str | None = None
) -> tuple[str | None, str]:
    """How the entry point the job runs spells a setting: (``--save-every``, source) or (None, why).
    The checkout's real flags win; without one, the era profile's keys in its separator."""
    entry = checkout.entry(module, script_file) if checkout is not None else None
    if entry is not None and entry.ok:
        opt = entry.spelled(dest)
        return (f"--{opt}" if opt else None), f"{entry.path}"
    keys = profile.config_keys(module) if (profile is not None and module) else None
    if keys is not None and dest not in keys:
        return None, f"the {profile.name} era profile"
    sep = "_" if profile is None or (module and profile.uses_configurator(module)) else profile.flag_word_sep
    return f"--{dest.replace('_', sep)}", (f"the {profile.name} era profile" if profile is not None else "default")
