"""The run ledger: ``.preflight/jobs/<JOBID>.json``, written by ``preflight sbatch``.

It records what was submitted (script path and hash, sbatch arguments, cwd, resolved config and
profile), what the run is expected to do (phases, steps, base dir, model tag, world size), where
its logs go (``--output``/``--error`` from the script merged with the command line, with
``%j``/``%x``/``%u`` expanded, absolute), and the preflight results. ``postflight verify JOBID``
reads it back through the ``ledger`` fact.

Written atomically (temp file in the same directory, fsync, ``os.replace``) so a reader never
sees half a ledger and two concurrent submits write two separate files.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable

SCHEMA_VERSION = 1
DEFAULT_LEDGER_DIR = ".preflight/jobs"
DEFAULT_OUTPUT = "slurm-%j.out"
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"
MAX_LEDGER_BYTES = 8_000_000  # a ledger is a few KB (its preflight report is capped); parsing 50 MB took 1.2 GB
# ASCII digits only ("١٢٣" is not a job id), bounded: 123, 123_4, 123+1, 123.batch
_JOB_ID_RE = re.compile(r"^[0-9]{1,12}(?:[_.+][0-9A-Za-z]{1,16}){0,2}$")

# sbatch options the ledger needs, by every spelling (short options take a value)
_OPTS = {
    "-o": "output",
    "--output": "output",
    "-e": "error",
    "--error": "error",
    "-J": "job-name",
    "--job-name": "job-name",
    "-D": "chdir",
    "--chdir": "chdir",
    "-a": "array",
    "--array": "array",
}
_SHORT_WITH_VALUE = {
    "-o",
    "-e",
    "-J",
    "-D",
    "-a",
    "-A",
    "-p",
    "-t",
    "-N",
    "-n",
    "-c",
    "-G",
    "-q",
    "-d",
    "-w",
    "-x",
    "-C",
    "-L",
    "-M",
    "-i",
    "-F",
    "-b",
    "-B",
    "-m",
    "-S",
}


# ---------------------------------------------------------------------------- sbatch options
def script_directives(text: str) -> list[str]:
    """The option words of the ``#SBATCH`` lines sbatch reads (those before the first command)."""
    words: list[str] = []
    for i, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if i == 0 and line.startswith("#!"):
            continue
        if not line:
            continue
        if not line.startswith("#"):
            break  # sbatch stops reading directives at the first command
        if line.startswith("#SBATCH"):
            try:
                words += shlex.split(line[len("#SBATCH") :], comments=True)
            except ValueError:  # unbalanced quote: sbatch would choke too; keep the plain words
                words += line[len("#SBATCH") :].split("#", 1)[0].split()
    return words


def parse_sbatch_options(words: Iterable[str]) -> dict[str, str]:
    """The options the ledger cares about (output, error, job-name, chdir, array); last one wins."""
    out: dict[str, str] = {}
    items = list(words)
    i = 0
    while i < len(items):
        w = items[i]
        i += 1
        if w.startswith("--"):
            name, eq, value = w.partition("=")
            key = _OPTS.get(name)
            if key is None:
                continue
            if not eq:
                if i >= len(items):
                    break
                value = items[i]
                i += 1
            out[key] = value
        elif w.startswith("-") and len(w) >= 2:
            flag = w[:2]
            if flag not in _SHORT_WITH_VALUE:
                continue
            value = w[2:].lstrip("=") if len(w) > 2 else (items[i] if i < len(items) else "")
            if len(w) == 2:
                i += 1
            if flag in _OPTS:
                out[_OPTS[flag]] = value
    return out


def expand_pattern(pattern: str, job_id: str, job_name: str, user: str, array: bool = False) -> str:
    """sbatch's filename pattern: %j %J %A (job id), %x (name), %u (user), %a, %s, %t, %n, %% (as
    measured on 22.05; ``%5j`` zero-pads). %N (the node) is unknown at submit and kept."""

    def repl(m: re.Match) -> str:
        pad, letter = m.group(1), m.group(2)
        if letter == "%":
            return "%"
        if letter in "jJ" and array:
            return m.group(0)  # each task of an array has its own job id, known only when it starts
        if letter in "jJA":
            value = job_id.split("_")[0]
        elif letter == "a":
            if array:
                return m.group(0)
            value = "4294967294"  # what sbatch writes for a job that is not an array
        elif letter == "x":
            return job_name
        elif letter == "u":
            return user
        elif letter == "s":
            return "batch"
        elif letter in "tn":
            value = "0"
        else:
            return m.group(0)
        return value.zfill(int(pad)) if pad else value

    return re.sub(r"%(\d*)([%jJAaxustnN])", repl, pattern)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): sbatch would use the uid
        return str(os.getuid())


def log_paths(
    script_text: str, script_path: Path, sbatch_args: list[str], cwd: Path, job_id: str, user: str | None = None
) -> dict[str, str]:
    """Where the job's stdout/stderr go: script directives overridden by the command line."""
    opts = parse_sbatch_options(script_directives(script_text))
    opts.update(parse_sbatch_options(sbatch_args))
    workdir = Path(opts["chdir"]) if "chdir" in opts else cwd
    if not workdir.is_absolute():
        workdir = cwd / workdir
    name = opts.get("job-name") or script_path.name
    array = "array" in opts
    user = user or _user()
    stdout = opts.get("output") or (DEFAULT_ARRAY_OUTPUT if array else DEFAULT_OUTPUT)
    stderr = opts.get("error") or stdout  # no --error: stderr goes to the stdout file

    def resolve(p: str) -> str:
        path = Path(expand_pattern(p, job_id, name, user, array))
        return os.path.normpath(str(path if path.is_absolute() else workdir / path))

    return {"stdout": resolve(stdout), "stderr": resolve(stderr)}


# ---------------------------------------------------------------------------- JSON helpers
def jsonable(obj: Any) -> Any:
    """Something json.dumps can write: to_json() when the object has one, dataclasses, paths."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "to_json") and callable(obj.to_json):
        return jsonable(obj.to_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_") and f.name != "raw"
        }
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "value") and isinstance(obj.value, (str, int)):  # enums
        return obj.value
    return str(obj)


def run_result_json(result: Any) -> dict[str, Any] | None:
    """The preflight RunResult as the JSON reporter writes it (the same document users see)."""
    if result is None:
        return None
    try:
        from preflight.reporters.json_format import document

        return jsonable(document(result))
    except Exception:  # reporter absent or changed: keep the essentials
        return {
            "stage": getattr(result, "stage", None),
            "verdict": getattr(result, "verdict", None),
            "checks": [jsonable(c) for c in getattr(result, "checks", [])],
        }


def _attr(obj: Any, *names: str) -> Any:
    """First present attribute or key of ``obj`` among ``names``."""
    for name in names:
        if isinstance(obj, dict) and obj.get(name) is not None:
            return obj[name]
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _model_tag(script: Any, plan: Any) -> str | None:
    """--model_tag / --model-tag given to a training phase, else nanochat's default ``d<depth>``."""
    invocations = getattr(script, "all_invocations", None) if script is not None else None
    if callable(invocations):
        invocations = invocations()
    for inv in invocations or []:
        flag = inv.flag("model_tag") if hasattr(inv, "flag") else None
        if flag is not None and flag.value:
            return flag.value
    depth = _attr(plan, "depth") if plan is not None else None
    if not depth or not _known_to_script(script, plan, "depth", "base_train"):
        return None  # a guess would make postflight look in the wrong <stage>_checkpoints/dN (it picks the largest)
    return f"d{depth}"


def _known_to_script(script: Any, plan: Any, key: str, module_suffix: str) -> bool:
    """Whether the plan's ``key`` describes what the script runs: set in the script, or the trainer's own
    default for a ``module_suffix`` phase the script launches. A value the plan assumed for a script whose
    phases it could not see (``bash speedrun.sh --tiny`` picks its flags at run time) is not."""
    source = str((_attr(plan, "sources") or {}).get(key) or "")
    if source and "default" not in source and "assum" not in source:
        return True  # the script line, torchrun's --nproc_per_node, the #SBATCH GPUs, the config
    invocations = getattr(script, "all_invocations", None) if script is not None else None
    if callable(invocations):
        invocations = invocations()
    return any(str(getattr(inv, "module", "") or "").endswith(module_suffix) for inv in invocations or [])


def expected_from_plan(plan: Any, ctx: Any, script: Any = None, base_dir: Any = None) -> dict[str, Any]:
    """What the run should do, from the plan (preflight/plan.py) when there is one. Without a
    plan the phases stay empty: the profile lists an era's phases, not what this script runs."""
    phases = _attr(plan, "phases") if plan is not None else None
    phase_list: list[Any] = []
    steps: dict[str, Any] = {}
    for ph in phases or []:
        name = _attr(ph, "name", "phase") if not isinstance(ph, str) else ph
        phase_list.append(name)
        n = None if isinstance(ph, str) else _attr(ph, "steps", "num_iterations", "num_steps")
        if n is not None and _attr(ph, "exact_steps") is not False:  # estimates are not expectations
            steps[str(name)] = jsonable(n)
    bd = getattr(base_dir, "path", base_dir)
    if bd is None:
        bd = getattr(getattr(ctx, "inputs", None), "base_dir", None)
    return {
        "phases": jsonable(phase_list),
        "steps": steps,
        "base_dir": jsonable(bd),
        "model_tag": _model_tag(script, plan),
        "world_size": jsonable(
            _attr(plan, "world_size")
            if plan is not None and _known_to_script(script, plan, "world_size", "base_train")
            else None
        ),
    }


def optional_fact(ctx: Any, name: str) -> Any:
    """A fact if it can be computed here, else None (absent module, no script, provider error:
    the ledger records what is known and never blocks a submit that already happened)."""
    if ctx is None:
        return None
    try:
        return ctx.get(name, None)
    except Exception:
        return None


# ---------------------------------------------------------------------------- write / read
def ledger_dir(ctx: Any = None, cwd: Path | None = None) -> Path:
    cwd = Path(cwd or getattr(getattr(ctx, "inputs", None), "cwd", None) or Path.cwd())
    configured = None
    if ctx is not None and getattr(ctx, "config", None) is not None:
        configured = ctx.config.get("ledger-dir")
    d = Path(configured or DEFAULT_LEDGER_DIR)
    return d if d.is_absolute() else cwd / d


def ledger_path(job_id: str, directory: Path) -> Path:
    if not _JOB_ID_RE.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return directory / f"{job_id}.json"


def write_atomic(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON to ``path`` so that readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def build_ledger(
    *,
    job_id: str,
    script: Path,
    sbatch_args: list[str],
    cwd: Path,
    forced: bool,
    ctx: Any = None,
    run_result: Any = None,
    script_args: list[str] | None = None,
    submitted_at: str | None = None,
) -> dict[str, Any]:
    """The ledger document for a job that sbatch accepted."""
    raw = script.read_bytes()
    text = raw.decode("utf-8", "replace")
    config = ctx.config.to_json() if ctx is not None and hasattr(ctx.config, "to_json") else None
    profile = optional_fact(ctx, "profile")
    plan = optional_fact(ctx, "plan")
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "job_id": job_id,
        "submitted_at": submitted_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "script": {"path": str(script.resolve()), "sha256": hashlib.sha256(raw).hexdigest()},
        "sbatch_args": list(sbatch_args),
        "cwd": str(cwd),
        "forced": bool(forced),
        "config": jsonable(config),
        "profile": (
            {
                "name": getattr(profile, "name", None),
                "reason": getattr(profile, "reason", None),
                # the checkout whose model code the chat smoke test runs after the job
                "checkout": str(profile.checkout) if getattr(profile, "checkout", None) else None,
            }
            if profile is not None
            else None
        ),
        "expected": expected_from_plan(plan, ctx, optional_fact(ctx, "script"), optional_fact(ctx, "base_dir")),
        "logs": log_paths(text, script, list(sbatch_args), cwd, job_id),
        "preflight": run_result_json(run_result),
    }
    if script_args:
        doc["script_args"] = list(script_args)
    if plan is not None:
        doc["plan"] = jsonable(plan)
    return doc


def is_job_id(text: str) -> bool:
    return bool(_JOB_ID_RE.match(text))


def _redacted(value: Any) -> Any:
    """The document with every string masked: `--export=...,WANDB_API_KEY=...` must not be stored in clear."""
    from preflight.redact import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def write_ledger(doc: dict[str, Any], directory: Path) -> Path:
    return write_atomic(ledger_path(str(doc["job_id"]), directory), _redacted(jsonable(doc)))


class Ledger(dict):
    """A ledger read back: the JSON document itself (a dict, so ``ledger.get("expected")``
    works) plus ``path``, where it was read from."""

    def __init__(self, data: dict[str, Any], path: Path):
        super().__init__(data)
        self.path = path

    @property
    def data(self) -> dict[str, Any]:
        return dict(self)

    @property
    def job_id(self) -> str:
        return str(self.get("job_id"))

    @property
    def logs(self) -> dict[str, str]:
        return dict(self.get("logs") or {})

    @property
    def expected(self) -> dict[str, Any]:
        return dict(self.get("expected") or {})

    @property
    def forced(self) -> bool:
        return bool(self.get("forced"))

    @property
    def cwd(self) -> Path | None:
        return Path(self["cwd"]) if self.get("cwd") else None

    @property
    def script_path(self) -> Path | None:
        s = self.get("script") or {}
        return Path(s["path"]) if s.get("path") else None

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), **self}


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):  # 1e999: every reader would int() it
        raise ValueError(f"non-finite number {text}")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"non-finite number {text}")


_LEDGER_TYPES = {"logs": dict, "expected": dict, "profile": dict, "script": dict, "cwd": str, "config": dict}


def read_ledger(path: Path) -> Ledger:
    """Parse a ledger; a clear one-line ValueError when it is not one."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):  # a link to /etc/shadow, a FIFO: not a ledger we wrote
            raise ValueError("not a regular file")
        size = st.st_size
        if size > MAX_LEDGER_BYTES:
            raise ValueError(f"{path}: {size} bytes is too large for a ledger")
        from preflight.safeio import read_limited

        data = json.loads(
            read_limited(path, MAX_LEDGER_BYTES, "ledger").decode("utf-8"),
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, digit limit
        raise ValueError(f"{path}: unreadable ledger ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or "job_id" not in data:
        raise ValueError(f"{path}: not a preflight ledger (no job_id)")
    for key, kind in _LEDGER_TYPES.items():  # the readers index into these: refuse a damaged ledger here
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise ValueError(f"{path}: not a preflight ledger ({key} is a {type(data[key]).__name__})")
    for key in ("stdout", "stderr"):
        if (data.get("logs") or {}).get(key) is not None and not isinstance(data["logs"][key], str):
            raise ValueError(f"{path}: not a preflight ledger (logs.{key} is not a path)")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(
            f"{path}: ledger schema_version {version!r} is not supported (this preflight reads <= {SCHEMA_VERSION})"
        )
    return Ledger(data, path)


def find_ledger(job_id: str, directories: Iterable[Path]) -> Path | None:
    for d in directories:
        try:
            p = ledger_path(job_id, d)
        except ValueError:
            return None
        if p.is_file() or p.is_symlink():  # a link is refused by read_ledger, with the reason
            return p
    return None


def ledger_fact(ctx: Any) -> Ledger:
    """The ``ledger`` fact: the ledger of ``ctx.inputs.job_id``, from the ledger dir under the
    working directory, else under the job's submit directory (as SLURM reports it)."""
    job_id = getattr(ctx.inputs, "job_id", None)
    if not job_id:
        raise FactUnavailable("no job id given")
    dirs = [ledger_dir(ctx)]
    # a task of a job array (6067_1) was submitted, and its ledger written, as the array (6067)
    ids = [str(job_id)] + ([str(job_id).split("_", 1)[0]] if "_" in str(job_id) else [])
    path = next((p for i in ids if (p := find_ledger(i, dirs))), None)
    if path is None:
        job = optional_fact(ctx, "job")
        work_dir = getattr(job, "work_dir", None)
        if work_dir:
            dirs.append(ledger_dir(ctx, cwd=Path(work_dir)))
            path = next((p for i in ids if (p := find_ledger(i, dirs[1:]))), None)
    if path is None:
        where = " or ".join(str(d) for d in dirs)
        raise FactUnavailable(f"no ledger for job {job_id} in {where} (was it submitted with `preflight sbatch`?)")
    try:
        return read_ledger(path)
    except ValueError as exc:
        raise FactUnavailable(str(exc)) from None
