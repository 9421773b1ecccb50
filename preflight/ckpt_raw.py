"""Checkpoint tiers without torch: storage record sizes and a NaN/Inf scan from the raw bytes.

A light install (``pip install nanochat-preflight``) has no torch, and importing torch from a
shared filesystem takes seconds on a login node. The zip directory and the pickle's opcodes
(``ckpt.inspect_torch_file``) already give names, shapes, dtypes and storage keys, so two more
tiers need no torch at all:

- records: every tensor's ``data/<key>`` record exists and holds numel x itemsize bytes (a save
  cut short, or a file patched together from two saves, shows here);
- values: the records read with numpy in chunks; bf16 is checked on its bit pattern.

What only torch adds (the load tier): proof that this torch build maps the file with
``torch.load(mmap=True, weights_only=True)``.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from typing import Any

TORCH_EXTRA = "pip install 'nanochat-preflight[torch]'"
ITEMSIZE = {
    "float32": 4,
    "float64": 8,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
}
CHUNK = 16 << 20


def torch_available() -> bool:
    """Whether ``import torch`` would work, found without importing it."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _records(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    out = {}
    for info in z.infolist():
        head, sep, key = info.filename.rpartition("/data/")
        if sep and "/" not in key and "/" not in head:
            out[key] = info
    return out


def record_problems(path: str | Path, tensors: dict[str, Any]) -> list[str]:
    """Each tensor's storage record against the size its pickle declares (numel x itemsize)."""
    try:
        with zipfile.ZipFile(str(path)) as z:
            records = _records(z)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return [f"cannot read zip: {type(exc).__name__}: {exc}"]
    problems = []
    for name, t in tensors.items():
        key = getattr(t, "storage_key", "")
        if not key:
            continue
        info = records.get(key)
        if info is None:
            problems.append(f"{name}: storage record data/{key} is missing")
            continue
        want = t.numel * ITEMSIZE.get(t.dtype, 0)
        if want and info.file_size != want:
            problems.append(
                f"{name}: storage record data/{key} holds {info.file_size} bytes, "
                f"its pickle declares {t.numel} x {t.dtype} = {want}"
            )
    return problems


def _nonfinite(chunk: bytes, dtype: str) -> str | None:
    """'NaN', 'Inf' or None for one chunk of a floating storage."""
    import numpy as np

    if dtype == "bfloat16":  # no numpy dtype: exponent bits all ones is Inf (mantissa 0) or NaN
        bits = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<u2")
        special = (bits & 0x7F80) == 0x7F80
        if not special.any():
            return None
        return "NaN" if ((bits[special] & 0x7F) != 0).any() else "Inf"
    np_dtype = {"float32": "<f4", "float64": "<f8", "float16": "<f2"}.get(dtype)
    if np_dtype is None:
        return None
    size = np.dtype(np_dtype).itemsize
    values = np.frombuffer(chunk[: len(chunk) // size * size], dtype=np_dtype)
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    return "NaN" if np.isnan(values[bad]).any() else "Inf"


def value_problems(path: str | Path, tensors: dict[str, Any]) -> list[str]:
    """NaN/Inf in every floating tensor, read from its record in chunks (bounded memory)."""
    problems = []
    try:
        with zipfile.ZipFile(str(path)) as z:
            records = _records(z)
            for name, t in tensors.items():
                info = records.get(getattr(t, "storage_key", ""))
                if info is None or t.dtype not in ("bfloat16", "float16", "float32", "float64"):
                    continue
                step = CHUNK - CHUNK % ITEMSIZE[t.dtype]
                with z.open(info) as fh:
                    while chunk := fh.read(step):
                        kind = _nonfinite(chunk, t.dtype)
                        if kind:
                            problems.append(f"{name}: {kind} values")
                            break
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        problems.append(f"cannot read zip: {type(exc).__name__}: {exc}")
    return problems
