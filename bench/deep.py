"""Throughput of the ``--deep`` checks, timed through the real CLI on generated data.

    python bench/deep.py [--tiny]
    python -m bench --only deep

Two rows, each in GB/s of file bytes (wall time of a child process, page cache warm):

- ``preflight check --deep --select DS002 --base-dir BASE``: every parquet page read with its
  CRC verified (shards written with page checksums, zstd, row groups of 1024 realistic-length
  documents), next to a plain pyarrow read of the same shards in a child process.
- ``postflight verify --deep --select CK009 --base-dir BASE``: every zip CRC of the final model
  file and a NaN/Inf scan of every tensor (a d12 base model of the real shapes, random values),
  next to a plain ``torch.load`` + ``torch.isfinite`` of the same file in a child process.

Both sides pay the interpreter start-up and their imports, so the ratio is like for like.
There is no target in the issue: the rows are for regressions.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYARROW_READ = """
import glob, sys
import pyarrow.parquet as pq
for p in sorted(glob.glob(sys.argv[1] + "/base_data/*.parquet")):
    pf = pq.ParquetFile(p)
    for i in range(pf.num_row_groups):
        pf.read_row_group(i, columns=["text"])
"""

TORCH_SCAN = """
import glob, sys, torch
for p in sorted(glob.glob(sys.argv[1] + "/*_checkpoints/*/model_*.pt")):
    sd = torch.load(p, map_location="cpu", weights_only=True)
    for t in sd.values():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            print("nonfinite", p)
"""

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there their one all we can has been if more when will would who so no model data "
    "training learning energy river history science language network city people water system"
).split()


def build_shards(base: Path, shards: int, rows: int) -> int:
    """Shards with page checksums, ~2 KB documents (FineWeb-EDU's median is ~2-3 KB)."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    data = base / "base_data"
    data.mkdir(parents=True)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(250, 500))) + "." for _ in range(rows)]
    first = data / "shard_00000.parquet"
    pq.write_table(pa.table({"text": texts}), first, row_group_size=1024, compression="zstd", write_page_checksum=True)
    for i in range(1, shards):
        (data / f"shard_{i:05d}.parquet").write_bytes(first.read_bytes())
    return sum(p.stat().st_size for p in data.iterdir())


def build_checkpoint(base: Path, depth: int) -> int:
    from tests import factories as F

    cfg = F.model_config(depth, vocab_size=65536, sequence_len=2048)
    d = F.write_checkpoint(base, "base", 1000, cfg, world_size=1, optim=False, wte_bf16=True)
    return sum(p.stat().st_size for p in d.glob("model_*.pt"))


def _time(cmd: list[str], cwd: str, env: dict, repeat: int, ok: tuple[int, ...] = (0,)) -> list[float]:
    from bench.common import run_child

    run_child(cmd, cwd=cwd, env=env)  # warm the page cache and the imports
    out = []
    for _ in range(repeat):
        wall, _, rc = run_child(cmd, cwd=cwd, env=env)
        if rc not in ok:
            raise RuntimeError(f"{' '.join(cmd[-8:])} exited {rc}")
        out.append(wall)
    return out


def _ran(result_file: Path, code: str) -> str:
    """The check's status in the JSON result: proves it ran and found nothing."""
    result = json.loads(result_file.read_text())
    for c in result.get("checks", []):
        if c.get("code") == code:
            return c.get("status", "?")
    return "absent"


def _row(what: str, nbytes: int, ours: list[float], base: list[float], base_what: str, note: str):
    from bench.common import Row

    g = [nbytes / t / 1e9 for t in ours]
    return Row(
        what=what,
        ours=statistics.median(g),
        unit="GB/s",
        baseline=statistics.median(nbytes / t / 1e9 for t in base),
        baseline_what=base_what,
        target="",
        meets=None,
        spread=f"{min(g):.3g}–{max(g):.3g}",
        note=note,
    )


def bench(tiny: bool = False) -> list:
    from bench.common import cli

    shards, rows, depth, repeat = (2, 2048, 2, 3) if tiny else (8, 12 * 1024, 12, 3)
    with tempfile.TemporaryDirectory(prefix="deep_bench_") as tmp:
        base = Path(tmp) / "base"
        env = {**os.environ, "HOME": tmp, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        out = []

        pq_bytes = build_shards(base, shards, rows)
        res = Path(tmp) / "ds.json"
        ours = _time(
            cli(
                "preflight",
                "check",
                "--deep",
                "--select",
                "DS002",
                "--base-dir",
                str(base),
                "--format",
                "json",
                "-o",
                str(res),
            ),
            tmp,
            env,
            repeat,
        )
        status = _ran(res, "DS002")
        if status != "pass":
            raise RuntimeError(f"DS002 --deep did not pass on clean shards: {status}")
        theirs = _time([sys.executable, "-c", PYARROW_READ, str(base)], tmp, env, repeat)
        out.append(
            _row(
                f"--deep DS002: parquet page CRCs + full read, {shards} shards ({pq_bytes / 2**20:.0f} MiB)",
                pq_bytes,
                ours,
                theirs,
                "plain pyarrow full read",
                f"CLI wall incl. start-up: {statistics.median(ours):.2f} s; DS002 {status}",
            )
        )

        ck_bytes = build_checkpoint(base, depth)
        res = Path(tmp) / "ck.json"
        ours = _time(
            cli(
                "postflight",
                "verify",
                "--deep",
                "--select",
                "CK009",
                "--no-smoke",
                "--base-dir",
                str(base),
                "--format",
                "json",
                "-o",
                str(res),
            ),
            tmp,
            env,
            repeat,
            ok=(0, 1),
        )
        status = _ran(res, "CK009")
        if status != "pass":
            raise RuntimeError(f"CK009 did not pass on a finite checkpoint: {status}")
        theirs = _time([sys.executable, "-c", TORCH_SCAN, str(base)], tmp, env, repeat)
        out.append(
            _row(
                f"--deep CK009: zip CRCs + NaN/Inf scan, d{depth} model file ({ck_bytes / 2**20:.0f} MiB)",
                ck_bytes,
                ours,
                theirs,
                "torch.load + torch.isfinite",
                f"CLI wall incl. start-up: {statistics.median(ours):.2f} s; CK009 {status}",
            )
        )
        return out


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    for r in bench(args.tiny):
        print(f"{r.what}: {r.ours:.3g} GB/s ({r.spread}); {r.baseline_what}: {r.baseline:.3g} GB/s; {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
