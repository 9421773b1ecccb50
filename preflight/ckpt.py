"""Checkpoint inventory (the ``checkpoints`` fact): BASE/<stage>_checkpoints/<tag>/ per phase.

Tiers (never a full load by default):
- stat: which model/meta/optim files exist per step (``model_(\\d{6})\\.pt$``).
- header: the zip central directory of each model file (truncation shows here) and its
  ``data.pkl`` walked with ``pickletools.genops`` -- opcodes are read, NEVER executed -- to prove it
  is a plain tensor dict (only torch's tensor-rebuild GLOBALs) and to read names, shapes, dtypes.
- load: ``torch.load(mmap=True, weights_only=True)`` (maps the file; reads no tensor data).
- deep: ``ZipFile.testzip`` (every CRC) and a NaN/Inf scan of every tensor.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.phases import CHECKPOINT_DIRS, TRAIN_PHASES, largest_depth_tag
from preflight.picklewalk import MAX_PICKLE_BYTES, TensorInfo, UnsafePickle, walk_pickle

MODEL_RE = re.compile(r"^model_(\d{6})\.pt$")
MODEL_LOOSE_RE = re.compile(r"^model_(.+)\.pt$")
META_RE = re.compile(r"^meta_(\d{6})\.json$")
OPTIM_RE = re.compile(r"^optim_(\d{6})(?:_rank(\d+))?\.pt$")
DEFAULT_STAGE_DIRS = CHECKPOINT_DIRS
STRAY_DIRS = {
    "sft_checkpoints": "chat_sft saved to sft_checkpoints/ from 2026-01-31 to 2026-02-01 (eaf49a3, PR #484); "
    "loaders read chatsft_checkpoints/"
}


# -- per-file inspection ------------------------------------------------------------------------
@dataclass
class FileCheck:
    path: str
    size: int = 0
    error: str | None = None  # unreadable/truncated/corrupt: a one-line reason
    unsafe: str | None = None  # not a plain tensor dict: the offending reference
    tensors: dict[str, TensorInfo] | None = None  # model files: name -> info
    kind: str = "zip"  # zip | legacy-pickle | empty | garbage

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "error": self.error,
            "unsafe": self.unsafe,
            "kind": self.kind,
            "tensors": len(self.tensors) if self.tensors is not None else None,
        }


def inspect_torch_file(path: str | Path, want_tensors: bool = True) -> FileCheck:
    """Header-tier inspection: zip directory, data.pkl walked symbolically. Never executes the pickle."""
    path = str(path)
    fc = FileCheck(path=path)
    try:
        fc.size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        fc.error = f"cannot read: {exc.strerror or exc}"
        return fc
    if fc.size == 0:
        fc.kind, fc.error = "empty", "zero-byte file"
        return fc
    if head[:1] == b"\x80":  # a bare pickle (legacy torch.save or not torch at all)
        fc.kind = "legacy-pickle"
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_PICKLE_BYTES)
            obj = walk_pickle(data)
        except UnsafePickle as exc:
            fc.unsafe = str(exc)
            return fc
        except Exception as exc:
            fc.error = f"not a torch zip checkpoint and not a readable pickle ({type(exc).__name__})"
            return fc
        fc.error = "legacy (non-zip) torch format: torch.load(mmap=True) cannot map it"
        _collect(fc, obj, want_tensors)
        return fc
    if head[:2] != b"PK":
        fc.kind, fc.error = "garbage", "not a torch checkpoint (no zip or pickle header)"
        return fc
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            pkl = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
            if not pkl:
                fc.error = "zip has no data.pkl (not a torch checkpoint)"
                return fc
            seen: set[str] = set()
            dup = next((i.filename for i in infos if i.filename in seen or seen.add(i.filename)), None)
            if dup is not None or len(pkl) > 1:  # which copy would torch.load read?
                dup = dup or pkl[-1].filename
                fc.error = f"corrupt zip: duplicate entry {dup}"
                return fc
            for info in infos:  # a record pointing past the end of the file: truncated
                if info.header_offset + info.compress_size > fc.size:
                    fc.error = f"truncated: {info.filename} extends past the end of the file"
                    return fc
            if pkl[0].file_size > MAX_PICKLE_BYTES:
                fc.error = f"data.pkl is {pkl[0].file_size} bytes (> {MAX_PICKLE_BYTES}); refusing to scan it"
                return fc
            data = z.read(pkl[0])
    except zipfile.BadZipFile as exc:
        fc.error = f"corrupt or truncated zip ({exc})"
        return fc
    except (OSError, EOFError, ValueError, zipfile.LargeZipFile) as exc:
        fc.error = f"cannot read zip: {type(exc).__name__}: {exc}"
        return fc
    except Exception as exc:  # zlib.error (corrupt deflate), NotImplementedError (deflate64), RuntimeError (encrypted)
        fc.error = f"cannot read zip: {type(exc).__name__}: {str(exc)[:200]}"
        return fc
    try:
        obj = walk_pickle(data)
    except UnsafePickle as exc:
        fc.unsafe = str(exc)
        return fc
    except Exception as exc:  # genops on a damaged pickle
        fc.error = f"data.pkl is corrupt ({type(exc).__name__}: {exc})"
        return fc
    _collect(fc, obj, want_tensors)
    return fc


def _collect(fc: FileCheck, obj: Any, want_tensors: bool) -> None:
    if not want_tensors:
        return
    if (
        isinstance(obj, dict)
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, TensorInfo) for v in obj.values())
    ):
        fc.tensors = dict(obj)
    else:
        fc.unsafe = fc.unsafe or f"not a plain tensor dict (top level is {type(obj).__name__})"


def load_mmap(path: str | Path) -> str | None:
    """The load tier: torch.load(mmap, weights_only). Returns an error line or None."""
    import torch

    try:
        obj = torch.load(str(path), mmap=True, weights_only=True, map_location="cpu")
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"torch.load(mmap=True, weights_only=True) failed: {type(exc).__name__}: {msg[:300]}"
    del obj
    return None


def deep_scan(path: str | Path, tensors: dict[str, TensorInfo] | None = None) -> list[str]:
    """The deep tier: every zip CRC, then NaN/Inf in every floating tensor. Returns problems.
    Without torch the values are read from the storage records (``tensors``: the header tier's)."""
    from preflight.ckpt_raw import torch_available, value_problems

    problems: list[str] = []
    try:
        with zipfile.ZipFile(str(path)) as z:
            bad = z.testzip()
            if bad:
                problems.append(f"CRC mismatch in {bad}")
    except Exception as exc:
        return [f"cannot read zip: {type(exc).__name__}: {exc}"]
    if problems:
        return problems
    if not torch_available():
        return value_problems(path, tensors or {})
    import torch

    try:
        sd = torch.load(str(path), mmap=True, weights_only=True, map_location="cpu")
    except Exception as exc:
        return [f"torch.load failed: {type(exc).__name__}"]
    tensors = sd.items() if isinstance(sd, dict) else []
    for name, t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            flat = t.reshape(-1)
            for i in range(0, flat.numel(), 1 << 24):  # chunked: bounded temporaries
                part = flat[i : i + (1 << 24)]
                if not torch.isfinite(part).all():
                    n_nan = int(torch.isnan(part).sum())
                    problems.append(f"{name}: {'NaN' if n_nan else 'Inf'} values")
                    break
    return problems


# -- expected state dict (2 + 6 x layers tensors, padded vocab) ----------------------------------------
CORE_KEYS = ("sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd")


def expected_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    vp = 64 * math.ceil(int(cfg["vocab_size"]) / 64)
    c, h, kv, layers = int(cfg["n_embd"]), int(cfg["n_head"]), int(cfg["n_kv_head"]), int(cfg["n_layer"])
    if not 0 < layers <= 10_000:  # a damaged meta must not make us build billions of names
        raise ValueError(f"n_layer {layers} is out of range")
    hd = c // h
    out = {"transformer.wte.weight": (vp, c)}
    for i in range(layers):
        out[f"transformer.h.{i}.attn.c_q.weight"] = (h * hd, c)
        out[f"transformer.h.{i}.attn.c_k.weight"] = (kv * hd, c)
        out[f"transformer.h.{i}.attn.c_v.weight"] = (kv * hd, c)
        out[f"transformer.h.{i}.attn.c_proj.weight"] = (c, c)
        out[f"transformer.h.{i}.mlp.c_fc.weight"] = (4 * c, c)
        out[f"transformer.h.{i}.mlp.c_proj.weight"] = (c, 4 * c)
    out["lm_head.weight"] = (vp, c)
    return out


def shape_problems(tensors: dict[str, TensorInfo], cfg: dict[str, Any]) -> list[str]:
    """Names/shapes vs model_config. Era B+ (window_pattern) adds tensors: extra keys are allowed there."""
    try:
        want = expected_shapes(cfg)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return [f"model_config cannot describe a GPT ({type(exc).__name__}: {exc})"]
    have = {k.removeprefix("_orig_mod."): v for k, v in tensors.items()}
    problems = []
    missing = [k for k in want if k not in have]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]}")
    for k, shape in want.items():
        if k in have and tuple(have[k].shape) != shape:
            problems.append(f"{k} has shape {tuple(have[k].shape)}, model_config implies {shape}")
    extra = [k for k in have if k not in want]
    if extra and "window_pattern" not in cfg:
        problems.append(f"{len(extra)} unexpected tensor(s), e.g. {extra[0]}")
    return problems


# -- inventory ------------------------------------------------------------------------------------
@dataclass
class StepFiles:
    step: int
    model: str | None = None
    meta: str | None = None
    optim: dict[int, str] = field(default_factory=dict)  # rank -> path
    optim_single: str | None = None  # Era A0 optim_XXXXXX.pt


@dataclass
class PhaseCheckpoints:
    phase: str
    stage_dir: str  # BASE/<stage>_checkpoints
    exists: bool = False
    tag: str | None = None
    tags: list[str] = field(default_factory=list)
    dir: str | None = None  # BASE/<stage>/<tag>
    steps: dict[int, StepFiles] = field(default_factory=dict)
    odd_files: list[str] = field(default_factory=list)  # model_*.pt names that break find_last_step
    error: str | None = None  # permission denied etc.
    _checks: dict[str, FileCheck] = field(default_factory=dict, repr=False)
    _metas: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def complete_steps(self) -> list[int]:
        return sorted(s for s, f in self.steps.items() if f.model and f.meta)

    @property
    def last_step(self) -> int | None:
        steps = self.complete_steps
        return steps[-1] if steps else None

    @property
    def last(self) -> StepFiles | None:
        s = self.last_step
        return self.steps[s] if s is not None else None

    def check_file(self, path: str, tensors: bool = True) -> FileCheck:
        """Header-tier inspection, cached. tensors=False for optimizer files (a list, not a tensor dict)."""
        if path not in self._checks:
            self._checks[path] = inspect_torch_file(path, want_tensors=tensors)
        return self._checks[path]

    def meta(self, path: str) -> tuple[Any, str | None]:
        """(parsed JSON, error line)."""
        if path not in self._metas:
            try:
                if not os.path.isfile(path):  # a FIFO would block open() forever
                    raise OSError(f"{path} is not a regular file")
                with open(path, "rb") as f:
                    raw = f.read(16 << 20)
                self._metas[path] = (json.loads(raw.decode("utf-8")), None)
            except UnicodeDecodeError:
                self._metas[path] = (None, "not UTF-8 text")
            except json.JSONDecodeError as exc:
                self._metas[path] = (None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
            except ValueError as exc:  # e.g. an integer past Python's 4,300-digit limit
                self._metas[path] = (None, f"not valid JSON ({exc})")
            except OSError as exc:
                self._metas[path] = (None, f"cannot read: {exc.strerror or exc}")
            except RecursionError:
                self._metas[path] = (None, "JSON nested too deeply")
        return self._metas[path]

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "dir": self.dir,
            "exists": self.exists,
            "tag": self.tag,
            "steps": self.complete_steps,
            "last_step": self.last_step,
            "error": self.error,
        }


@dataclass
class CheckpointInventory:
    base_dir: str
    base_exists: bool
    base_named: str  # where the base dir came from
    phases: dict[str, PhaseCheckpoints] = field(default_factory=dict)
    stray: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    error: str | None = None
    profile: Any = None
    expected: list[str] = field(default_factory=list)
    planned_steps: dict[str, int] = field(default_factory=dict)
    world_size: int | None = None
    tokenizer: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_dir": self.base_dir,
            "exists": self.base_exists,
            "error": self.error,
            "phases": {k: v.to_json() for k, v in self.phases.items()},
            "stray": [p for p, _ in self.stray],
        }


def resolve_base_dir(ctx: Any) -> tuple[Path, str] | None:
    """(base dir, source) from the one resolver (inventory.base_dir_fact); after the job the default
    ~/.cache/nanochat counts only when it exists."""
    try:
        bd = ctx.get("base_dir", None)
    except Exception:
        bd = None
    if bd is None:
        return None
    if bd.default and not bd.path.is_dir():
        return None
    return bd.path, bd.source


def get_profile(ctx: Any) -> Any:
    prof = ctx.get("profile", None)
    if prof is None:
        from preflight.profiles import load_profile

        prof = load_profile("classic", reason="default (no profile detected)")
    return prof


def stage_dir_name(profile: Any, phase: str) -> str | None:
    spec = profile.phase(phase) if profile is not None else None
    if spec is not None:
        return spec.get("checkpoint_dir")
    return DEFAULT_STAGE_DIRS.get(phase)


def planned_phases(ctx: Any, profile: Any) -> list[str] | None:
    """The phases the ledger's plan or the job's script says the job runs; None where neither says."""
    ledger = ctx.get("ledger", None)
    if isinstance(ledger, dict):
        phases = (ledger.get("expected") or {}).get("phases")
        if isinstance(phases, list):  # [] is a plan too: a job that runs no nanochat phase
            return [p for p in phases if isinstance(p, str)]
    js = ctx.get("jobscript", None) if getattr(ctx.inputs, "stage", "pre") == "post" else None  # what the job launched
    if js is not None and js.steps:
        launched = {st.phase for st in js.steps if st.phase}
        if launched:
            return [p for p in profile.phases if p in launched]
    return None


def expected_phases(ctx: Any, profile: Any) -> list[str]:
    """The ledger's plan or the job's script, else the profile's phases (optional ones only when the logs show they
    ran)."""
    planned = planned_phases(ctx, profile)
    if planned is not None:
        return planned
    out = []
    logs = ctx.get("logs", None)
    started = logs.started_phases() if logs is not None else []
    for p in profile.phases:
        spec = profile.phase(p) or {}
        if spec.get("optional") and p not in started:
            continue
        out.append(p)
    return out


def find_tag(stage: Path, wanted: str | None) -> tuple[str | None, list[str]]:
    tags = sorted(e.name for e in os.scandir(stage) if e.is_dir())
    if wanted:
        return (wanted if wanted in tags else wanted), tags
    if not tags:
        return None, tags
    return largest_depth_tag(tags) or max(tags, key=lambda t: os.path.getmtime(stage / t)), tags


def scan_phase(base: Path, phase: str, stage_name: str, tag: str | None) -> PhaseCheckpoints:
    stage = base / stage_name
    pc = PhaseCheckpoints(phase=phase, stage_dir=str(stage))
    try:
        if not stage.is_dir():
            return pc
        pc.exists = True
        pc.tag, pc.tags = find_tag(stage, tag)
        if pc.tag is None:
            return pc
        d = stage / pc.tag
        pc.dir = str(d)
        if not d.is_dir():
            return pc
        names = os.listdir(d)
    except PermissionError as exc:
        pc.error = f"permission denied: {exc.filename or stage}"
        return pc
    except OSError as exc:
        pc.error = f"cannot list {stage}: {exc.strerror or exc}"
        return pc
    for n in names:
        m = MODEL_RE.match(n)
        if m:
            pc.steps.setdefault(int(m.group(1)), StepFiles(int(m.group(1)))).model = str(d / n)
            continue
        if MODEL_LOOSE_RE.match(n):
            pc.odd_files.append(str(d / n))
            continue
        m = META_RE.match(n)
        if m:
            pc.steps.setdefault(int(m.group(1)), StepFiles(int(m.group(1)))).meta = str(d / n)
            continue
        m = OPTIM_RE.match(n)
        if m:
            sf = pc.steps.setdefault(int(m.group(1)), StepFiles(int(m.group(1))))
            if m.group(2) is None:
                sf.optim_single = str(d / n)
            else:
                sf.optim[int(m.group(2))] = str(d / n)
    return pc


def checkpoints_fact(ctx: Any) -> CheckpointInventory:
    found = resolve_base_dir(ctx)
    if found is None:
        raise FactUnavailable("no base dir: pass --base-dir (or set NANOCHAT_BASE_DIR / config base-dir)")
    base, named = found
    profile = get_profile(ctx)
    inv = CheckpointInventory(base_dir=str(base), base_exists=False, base_named=named, profile=profile)
    ledger = ctx.get("ledger", None)
    expected = (ledger.get("expected") or {}) if isinstance(ledger, dict) else {}
    inv.expected = expected_phases(ctx, profile)
    steps = expected.get("steps") if isinstance(expected.get("steps"), dict) else {}
    inv.planned_steps = {
        k: int(v) for k, v in steps.items() if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))
    }
    inv.world_size = expected.get("world_size")
    tag = expected.get("model_tag")
    try:
        inv.base_exists = base.is_dir()
        if inv.base_exists:
            os.listdir(base)
    except PermissionError:
        inv.error = f"permission denied: cannot list {base}"
        return inv
    except OSError as exc:
        inv.error = f"cannot read {base}: {exc.strerror or exc}"
        return inv
    if not inv.base_exists:
        return inv
    for phase in TRAIN_PHASES:
        stage = stage_dir_name(profile, phase)
        if stage is None and phase in ("mid",):
            continue
        stage = stage or DEFAULT_STAGE_DIRS[phase]
        inv.phases[phase] = scan_phase(base, phase, stage, tag)
    for name, why in STRAY_DIRS.items():
        if (base / name).exists() and name not in {stage_dir_name(profile, p) for p in TRAIN_PHASES}:
            inv.stray.append((str(base / name), why))
    tok_dir = base / "tokenizer"
    inv.tokenizer = {n: (tok_dir / n).is_file() for n in ("tokenizer.pkl", "token_bytes.pt")}
    return inv


def optim_rule(profile: Any, phase: str) -> str:
    spec = profile.phase(phase) if profile is not None else None
    return (spec or {}).get("optimizer_shards") or "none"
