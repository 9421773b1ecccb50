"""What is already on disk: the base dir, the dataset shards, the tokenizer.

Shard validation reads only the first 4 and the last 8 bytes plus the parquet footer
(``parquet_footer``), so a 240-shard check needs neither pyarrow's 0.3 s import nor a data page.
``--deep`` reads every shard fully with pyarrow (page CRCs verified).
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.parquet_footer import read_footer
from preflight.phases import CHECKPOINT_DIRS


# -- base dir ----------------------------------------------------------------------------------
@dataclass
class BaseDir:
    """The nanochat base directory the job will use, and how it was chosen."""

    path: Path
    source: str  # how it was chosen (printed in findings)
    raw: str  # as written before expansion
    line: int | None = None  # script line that sets it
    file: str | None = None
    default: bool = False  # ~/.cache/nanochat because nothing set it
    conditional: bool = False  # the script's assignment is in a branch (`if [ -z "$NANOCHAT_BASE_DIR" ]`, `[ ... ] &&`)
    fallback: bool = False  # the script's `${NANOCHAT_BASE_DIR:-...}` default, taken because nothing set it before

    def __str__(self) -> str:
        return str(self.path)


def _expand(text: str, env: dict) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    out = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)
    if out.startswith("~"):
        home = env.get("HOME")
        if home:
            out = home + out[1:]
    return out


def base_dir_fact(ctx: Any) -> BaseDir:
    """The one base-dir resolution, before and after the job: --base-dir, config base-dir, (after the
    job) the run ledger's, the script's own NANOCHAT_BASE_DIR=, the environment, ~/.cache/nanochat. A relative one
    (``NANOCHAT_BASE_DIR=cache``) is relative to the job's working directory, where that is known."""
    found = _base_dir(ctx)
    if found.path.is_absolute() or str(found.path).startswith(("$", "~")) or found.source == "--base-dir":
        return found
    workdir = _job_workdir(ctx)
    if workdir is None:
        return found
    found.path = workdir[0] / found.path
    found.source += f" (relative to the job's working directory, {workdir[1]})"
    return found


def _job_workdir(ctx: Any) -> tuple[Path, str] | None:
    """Where the job runs, for a relative path: the checkout given (--checkout: the job is submitted from it), else
    the script's last cd to an absolute directory."""
    explicit = ctx.config.get("checkout") if ctx.config is not None else None
    if explicit:
        return Path(os.path.expanduser(str(explicit))).absolute(), "the checkout given"
    script = ctx.get("script", None)
    cds = [d for d in (getattr(script, "cd_targets", None) or []) if os.path.isabs(d)]
    return (Path(cds[-1]), "the script's cd") if cds else None


def _base_dir(ctx: Any) -> BaseDir:
    env = dict(ctx.environ)
    job_env = ctx.get("job_env", None)
    if job_env is not None:
        env = dict(job_env.env)
    if ctx.inputs.base_dir is not None:
        return BaseDir(Path(ctx.inputs.base_dir), "--base-dir", str(ctx.inputs.base_dir))
    cfg = ctx.config.get("base-dir") if ctx.config is not None else None
    if cfg:
        return BaseDir(Path(_expand(cfg, {**ctx.environ})), "config base-dir", cfg)
    if getattr(ctx.inputs, "stage", "pre") == "post":
        try:
            ledger = ctx.get("ledger", None)
        except Exception:  # an unreadable ledger is the ledger checks' finding, not a crash here
            ledger = None
        recorded = (ledger.get("expected") or {}).get("base_dir") if isinstance(ledger, dict) else None
        if isinstance(recorded, str) and recorded:
            return BaseDir(Path(recorded), "ledger", recorded)
    script = ctx.get("script", None)
    passed = _passed_to_training(script, "NANOCHAT_BASE_DIR") if script is not None and script.ok else None
    if passed is not None:  # `apptainer exec --env NANOCHAT_BASE_DIR=... IMG bash run.sh`: what the trainer sees
        value, cmd = passed
        expanded = script.expand(value, cmd.line, cmd.file, dict(ctx.environ)) or _expand(value, env)
        return BaseDir(Path(expanded), f"passed to the command at {cmd.file}:{cmd.line}", value, cmd.line, cmd.file)
    if script is not None and script.ok:
        found = None
        for a in script.all_assignments:
            if a.name == "NANOCHAT_BASE_DIR" and not a.default_only:
                found = a
        if found is not None:
            value = script.expand(found.value, found.line, found.file, dict(ctx.environ)) or _expand(found.value, env)
            where = f"{found.file}:{found.line}"
            return BaseDir(
                Path(value),
                f"set by the script ({where})",
                found.value,
                found.line,
                found.file,
                conditional=not found.unconditional,
            )
    if env.get("NANOCHAT_BASE_DIR") and not ctx.environ.get("NANOCHAT_BASE_DIR") and script is not None and script.ok:
        # `export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}` with nothing set before the job
        fallbacks = [a for a in script.all_assignments if a.name == "NANOCHAT_BASE_DIR" and a.default_only]
        if fallbacks:
            a = fallbacks[0]
            return BaseDir(
                Path(_expand(env["NANOCHAT_BASE_DIR"], env)),
                f"the script's default ({a.file}:{a.line}), as NANOCHAT_BASE_DIR is not set before the job",
                a.value,
                a.line,
                a.file,
                conditional=True,
                fallback=True,
            )
    if env.get("NANOCHAT_BASE_DIR"):
        return BaseDir(
            Path(_expand(env["NANOCHAT_BASE_DIR"], env)),
            "NANOCHAT_BASE_DIR in the environment",
            env["NANOCHAT_BASE_DIR"],
        )
    home = env.get("HOME") or os.path.expanduser("~")
    dropped = job_env is not None and "NANOCHAT_BASE_DIR" in job_env.dropped
    why = f"not passed to the job (--export={job_env.export})" if dropped else "not set"
    return BaseDir(
        Path(home) / ".cache" / "nanochat",
        f"default (~/.cache/nanochat: NANOCHAT_BASE_DIR is {why})",
        "~/.cache/nanochat",
        default=True,
    )


def _passed_to_training(script: Any, name: str) -> tuple[str, Any] | None:
    """A variable set for one command only (`X=v cmd`, `env X=v cmd`, a container's `--env X=v`) on a
    command that launches training or runs the script that does: (value, command)."""
    from preflight.script.parser import included_file
    from preflight.script.wrappers import strip_prefixes

    for model in script.walk():
        launches = {id(inv.command) for inv in model.invocations}
        for cmd in model.commands:
            env = {**cmd.env, **strip_prefixes(cmd.words).env}
            if name in env and (id(cmd) in launches or included_file(cmd)):
                return env[name], cmd
    return None


# -- dataset -----------------------------------------------------------------------------------
@dataclass
class Shard:
    """One ``shard_NNNNN.parquet`` file of the pretraining data."""

    index: int
    name: str
    path: Path
    size: int


@dataclass
class ShardProblem:
    """A shard that cannot be read as nanochat reads it (corrupt, or the wrong layout)."""

    shard: str
    path: Path
    problem: str
    kind: str  # corrupt | layout


@dataclass
class Dataset:
    """The pretraining shards under the base dir, with leftovers of interrupted downloads and strays."""

    dir: Path
    exists: bool
    shards: list[Shard] = field(default_factory=list)
    tmp_files: list[Path] = field(default_factory=list)
    stray: list[Path] = field(default_factory=list)  # *.parquet not named shard_NNNNN.parquet
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    error: str | None = None  # the directory itself could not be listed
    val_index: int | None = None
    text_column: str = "text"
    row_group_rows: int = 1024
    other_dirs: list[Path] = field(default_factory=list)
    _validated: list[ShardProblem] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def count(self) -> int:
        return len(self.shards)

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.shards)

    @property
    def indices(self) -> list[int]:
        return [s.index for s in self.shards]

    def gaps(self) -> list[int]:
        """Missing indices in 0..max train index (a pinned val shard is not part of the range)."""
        idx = sorted(i for i in self.indices if i != self.val_index)
        if not idx:
            return []
        have = set(idx)
        return [i for i in range(0, idx[-1]) if i not in have]

    def validate(self, deep: bool = False) -> list[ShardProblem]:
        with self._lock:
            if self._validated is not None and not deep:
                return self._validated
            problems: list[ShardProblem] = []
            for s in self.shards:
                info, problem, _ = read_footer(s.path)
                if problem:
                    problems.append(ShardProblem(s.name, s.path, problem, "corrupt"))
                    continue
                if self.text_column not in info.columns:
                    problems.append(
                        ShardProblem(
                            s.name,
                            s.path,
                            f"no {self.text_column!r} column (columns: {', '.join(info.columns) or 'none'})",
                            "corrupt",
                        )
                    )
                    continue
                if info.num_rows <= 0:
                    problems.append(ShardProblem(s.name, s.path, "holds no rows", "corrupt"))
                    continue
                if sum(info.row_groups) != info.num_rows:
                    problems.append(
                        ShardProblem(
                            s.name,
                            s.path,
                            f"row groups hold {sum(info.row_groups)} rows but the footer says {info.num_rows}",
                            "corrupt",
                        )
                    )
                    continue
                odd = [i for i, n in enumerate(info.row_groups[:-1]) if n != self.row_group_rows]
                if odd:
                    problems.append(
                        ShardProblem(
                            s.name,
                            s.path,
                            f"row group {odd[0]} has {info.row_groups[odd[0]]} rows, "
                            f"not {self.row_group_rows} (not nanochat's layout)",
                            "layout",
                        )
                    )
            if deep:
                problems.extend(self._deep_read({p.path for p in problems if p.kind == "corrupt"}))
            else:
                self._validated = problems
            return problems

    def _deep_read(self, skip: set) -> list[ShardProblem]:
        import pyarrow.parquet as pq

        out = []
        for s in self.shards:
            if s.path in skip:
                continue
            try:
                # read as a dictionary: a value repeated in every row through a dictionary page (1 MiB
                # declared, 1 GiB as plain strings) stays one value; plain pages decode to their declared size
                pf = pq.ParquetFile(s.path, page_checksum_verification=True, read_dictionary=[self.text_column])
                for i in range(pf.num_row_groups):
                    size = _text_bytes(pf.metadata.row_group(i), self.text_column)
                    if size > MAX_DEEP_ROW_GROUP:
                        out.append(
                            ShardProblem(
                                s.name,
                                s.path,
                                f"row group {i} declares {size / 2**20:,.0f} MiB of text uncompressed (over "
                                f"{MAX_DEEP_ROW_GROUP >> 20} MiB; real shards have a few MiB): not read, a "
                                "decompression bomb or not a dataset shard",
                                "corrupt",
                            )
                        )
                        break
                    pf.read_row_group(i, columns=[self.text_column])
            except Exception as exc:  # pyarrow raises several types for corrupt pages
                out.append(ShardProblem(s.name, s.path, f"full read failed: {type(exc).__name__}: {exc}", "corrupt"))
        return out


# --deep decodes a row group's text column at once: its declared uncompressed size bounds the memory
# (nanochat's shards: 1,024 documents, a few MiB a row group)
MAX_DEEP_ROW_GROUP = 128 << 20


def _text_bytes(row_group: Any, column: str) -> int:
    return sum(
        row_group.column(j).total_uncompressed_size
        for j in range(row_group.num_columns)
        if row_group.column(j).path_in_schema == column
    )


def _layout_the_script_names(ctx: Any, ds_spec: dict, dirs: list[str]) -> tuple[dict, list[str]]:
    """An era whose dataset changed (FineWeb-Edu's base_data, then ClimbMix's base_data_climbmix), none of them here:
    the one the job's script names as a path decides, with that layout's numbers."""
    from preflight.dataset_layout import layout_of, named_by_script
    from preflight.profiles import PROFILE_NAMES, _merged_json

    script = ctx.get("script", None)
    texts = [m.text for m in script.walk()] if script is not None and getattr(script, "ok", False) else []
    named = named_by_script("\n".join(t for t in texts if t), dirs)
    if named is None:
        return ds_spec, dirs
    layout = layout_of(named, lambda: (_merged_json(n) for n in PROFILE_NAMES)) or {**ds_spec, "dirs": [named]}
    return layout, [named]


def known_base_dir(ctx: Any) -> Any:
    """The base dir, where it is known before the job: NANOCHAT_BASE_DIR="$PROJECT_ROOT/cache" with PROJECT_ROOT
    from $(dirname ...), or "/scratch/$USER/..." where USER is not set here, is known only when the job runs."""
    base = ctx.get("base_dir")
    if "$" in str(base.path):
        raise FactUnavailable(f"the base dir {base.path} is known only when the job runs")
    return base


def dataset_fact(ctx: Any) -> Dataset:
    base = known_base_dir(ctx)
    profile = ctx.get("profile", None)
    ds_spec = profile.dataset if profile is not None else {}
    dirs = ds_spec.get("dirs") or ["base_data"]
    if len(dirs) > 1 and not any((Path(base.path) / d).is_dir() for d in dirs):
        ds_spec, dirs = _layout_the_script_names(ctx, ds_spec, dirs)
    regex = re.compile(ds_spec.get("shard_regex") or r"^shard_(\d{5})\.parquet$")
    chosen = Path(base.path) / dirs[0]
    others = []
    for d in dirs:
        if (Path(base.path) / d).is_dir():
            chosen = Path(base.path) / d
            break
    for d in dirs:
        if Path(base.path) / d != chosen:
            others.append(Path(base.path) / d)
    env_name = ds_spec.get("dir_env")  # the checkout reads its data directory from this variable where it is set
    value = None
    if env_name:
        job_env = ctx.get("job_env", None)
        value = job_env.get(env_name) if job_env is not None else ctx.environ.get(env_name)
    if value:
        if "$" in value:
            raise FactUnavailable(f"the dataset directory is ${env_name}={value}, known only in the job")
        chosen, others = Path(value), []
    val = ds_spec.get("val_shard", "last")
    ds = Dataset(
        dir=chosen,
        exists=chosen.is_dir(),
        text_column=ds_spec.get("text_column", "text"),
        row_group_rows=int(ds_spec.get("row_group_rows", 1024)),
        other_dirs=others,
        val_index=val if isinstance(val, int) else None,
    )
    if not ds.exists:
        return ds
    try:
        entries = list(os.scandir(chosen))
    except OSError as exc:
        ds.error = f"cannot list {chosen}: {exc.strerror or exc}"
        return ds
    for e in entries:
        name = e.name
        path = Path(e.path)
        if name.endswith(".tmp"):
            ds.tmp_files.append(path)
            continue
        if not name.endswith(".parquet"):
            continue
        m = regex.match(name)
        try:
            st = e.stat()
        except OSError as exc:
            ds.unreadable.append((path, exc.strerror or str(exc)))
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end when read
            ds.unreadable.append((path, "not a regular file"))
            continue
        if not m:
            ds.stray.append(path)
            continue
        ds.shards.append(Shard(int(m.group(1)), name, path, st.st_size))
    ds.shards.sort(key=lambda s: s.index)
    ds.tmp_files.sort()
    return ds


# -- tokenizer ---------------------------------------------------------------------------------
@dataclass
class CheckpointVocab:
    """The vocabulary size a checkpoint's meta file records."""

    meta: Path
    vocab_size: int


@dataclass
class Tokenizer:
    """The trained tokenizer's files under the base dir and the vocabulary size they give."""

    dir: Path
    pkl: Path
    token_bytes: Path
    has_pkl: bool
    has_token_bytes: bool
    vocab_size: int | None  # from token_bytes.pt, read without unpickling
    vocab_problem: str | None = None
    checkpoints: list[CheckpointVocab] = field(default_factory=list)


def token_bytes_vocab(path: Path) -> tuple[int | None, str | None]:
    """Length of the 1-D tensor in token_bytes.pt from the zip entry sizes (no unpickling)."""
    import zipfile  # only when there is a token_bytes.pt (~4 ms of start-up otherwise)

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            storages = [i for i in infos if re.search(r"(^|/)data/\d+$", i.filename)]
            pkl = next((i for i in infos if i.filename.endswith("data.pkl")), None)
            if len(storages) != 1 or pkl is None:
                return None, f"{path.name}: expected one tensor storage, found {len(storages)}"
            if pkl.file_size > 1_000_000:
                return None, f"{path.name}: data.pkl is unexpectedly large"
            header = z.read(pkl)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return None, f"{path.name} is not a readable torch file: {exc}"
    if b"IntStorage" in header:
        width = 4
    elif b"LongStorage" in header:
        width = 8
    elif b"ShortStorage" in header:
        width = 2
    else:
        m = re.search(rb"(int32|int64|int16)", header)
        width = {b"int32": 4, b"int64": 8, b"int16": 2}.get(m.group(1)) if m else None
    if width is None:
        return None, f"{path.name}: unknown tensor dtype"
    return storages[0].file_size // width, None


def _checkpoint_vocabs(base: Path, profile: Any) -> list[CheckpointVocab]:
    out = []
    dirs = []
    if profile is not None:
        for ph in profile.phases:
            d = (profile.phase(ph) or {}).get("checkpoint_dir")
            if d:
                dirs.append(d)
    else:
        dirs = list(CHECKPOINT_DIRS.values())
    for d in dirs:
        root = base / d
        try:
            tags = [e for e in os.scandir(root) if e.is_dir()]
        except OSError:
            continue
        for tag in tags:
            try:
                metas = sorted(p for p in os.listdir(tag.path) if re.match(r"^meta_\d+\.json$", p))
            except OSError:
                continue
            if not metas:
                continue
            meta = Path(tag.path) / metas[-1]
            try:
                from preflight.safeio import read_limited

                data = json.loads(read_limited(meta, 10_000_000, "meta file").decode("utf-8"))
                vocab = int(data["model_config"]["vocab_size"])
            except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
                continue  # an unreadable meta: checkpoint checks report it; no vocab to compare here
            out.append(CheckpointVocab(meta, vocab))
    return out


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # permission denied on the directory: treated as absent (the dir check says why)
        return False


def tokenizer_fact(ctx: Any) -> Tokenizer:
    base = Path(known_base_dir(ctx).path)
    profile = ctx.get("profile", None)
    spec = (profile.data.get("tokenizer") if profile is not None else None) or {}
    d = base / spec.get("dir", "tokenizer")
    pkl, tb = d / "tokenizer.pkl", d / "token_bytes.pt"
    tok = Tokenizer(
        dir=d, pkl=pkl, token_bytes=tb, has_pkl=_is_file(pkl), has_token_bytes=_is_file(tb), vocab_size=None
    )
    tok.checkpoints = _checkpoint_vocabs(base, profile)
    if tok.has_token_bytes and tok.checkpoints:  # read the vocab only when something compares it
        tok.vocab_size, tok.vocab_problem = token_bytes_vocab(tb)
    return tok
