"""`preflight check` over a speedrun-sized base dir, next to a full pyarrow read of the same shards.

    python bench/preflight_check.py [--repeat 7] [--shards 240] [--row-groups 54]
    python -m bench --only preflight_check

Builds, in a temp dir: BASE/base_data/shard_00000..00239.parquet (real parquet: one `text`
column, zstd, row groups of 1024 rows: ~54 groups per shard like a real FineWeb-EDU shard, but
short rows so each file is ~1 MB), BASE/tokenizer/{tokenizer.pkl,token_bytes.pt},
BASE/eval_bundle/{core.yaml,eval_meta_data.csv,eval_data/}, and an sbatch script for the d20
pipeline. Then times the CLI in a subprocess (default checks, footers only) several times and
prints median/min/max, next to reading every shard fully with pyarrow. Target: < 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCRIPT = """#!/bin/bash
#SBATCH --job-name=nanochat-d20
#SBATCH --nodes=1
#SBATCH --gres=gpu:8
#SBATCH --time=06:00:00
#SBATCH --signal=B:USR1@600
#SBATCH --output=logs/%x_%j.out
set -euo pipefail
export OMP_NUM_THREADS=1
export NANOCHAT_BASE_DIR={base}
export WANDB_MODE=offline
export HF_DATASETS_OFFLINE=1
torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=${{WANDB_RUN:-dummy}}
torchrun --standalone --nproc_per_node=8 -m scripts.base_loss
torchrun --standalone --nproc_per_node=8 -m scripts.base_eval
torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=${{WANDB_RUN:-dummy}}
torchrun --standalone --nproc_per_node=8 -m scripts.chat_eval -- -i mid
torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --run=${{WANDB_RUN:-dummy}}
torchrun --standalone --nproc_per_node=8 -m scripts.chat_eval -- -i sft
python -m nanochat.report generate
"""


def build_base(root: Path, shards: int, row_groups: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    base = root / "base"
    data = base / "base_data"
    data.mkdir(parents=True)
    rows = row_groups * 1024 - 300  # the last group of a shard is smaller, as upstream
    texts = [f"Document {i}: the quick brown fox jumps over the lazy dog. " for i in range(rows)]
    first = data / "shard_00000.parquet"
    pq.write_table(
        pa.table({"text": texts}),
        first,
        row_group_size=1024,
        compression="zstd",
        use_dictionary=False,
        write_statistics=False,
    )
    for i in range(1, shards):
        shutil.copyfile(first, data / f"shard_{i:05d}.parquet")
    tok = base / "tokenizer"
    tok.mkdir()
    (tok / "tokenizer.pkl").write_bytes(b"\x80\x04N.")  # never unpickled by preflight
    torch.save(torch.ones(65536, dtype=torch.int32), tok / "token_bytes.pt")
    eb = base / "eval_bundle"
    (eb / "eval_data").mkdir(parents=True)
    (eb / "core.yaml").write_text("icl_tasks: []\n")
    (eb / "eval_meta_data.csv").write_text("Eval Task,Random baseline\n")
    for name in ("identity_conversations.jsonl", "words_alpha.txt"):
        (base / name).write_text("x\n")
    for d in (
        "HuggingFaceTB___smol-smoltalk",
        "cais___mmlu",
        "openai___gsm8k",
        "allenai___ai2_arc",
        "openai___openai_humaneval",
    ):
        p = root / "home" / ".cache" / "huggingface" / "datasets" / d
        p.mkdir(parents=True)
        (p / "data.arrow").write_bytes(b"x")
    (root / "logs").mkdir()
    (root / "job.sbatch").write_text(SCRIPT.format(base=base))
    return base


def time_cli(root: Path, base: Path, repeat: int, extra: list[str]) -> tuple[list[float], int]:
    env = {
        "HOME": str(root / "home"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
        "TIKTOKEN_CACHE_DIR": str(root / "home"),
    }
    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.argv[0]='preflight'; from preflight.cli import preflight_main; preflight_main()",
        "check",
        str(root / "job.sbatch"),
        "--base-dir",
        str(base),
        "--format",
        "json",
        *extra,
    ]
    subprocess.run(cmd, cwd=root, env=env, capture_output=True)  # warm the page cache
    times, rc = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
        rc = proc.returncode
    return times, rc


def time_full_read(base: Path, repeat: int) -> list[float]:
    import pyarrow.parquet as pq

    files = sorted((base / "base_data").glob("*.parquet"))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for f in files:
            pf = pq.ParquetFile(f)
            for i in range(pf.num_row_groups):
                pf.read_row_group(i, columns=["text"])
        times.append(time.perf_counter() - start)
    return times


def time_footer_only(base: Path, repeat: int) -> list[float]:
    from preflight.parquet_footer import read_footer

    files = sorted((base / "base_data").glob("*.parquet"))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for f in files:
            read_footer(f)
        times.append(time.perf_counter() - start)
    return times


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"
    )


def measure(shards: int, row_groups: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        base = build_base(root, shards, row_groups)
        build_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (base / "base_data").iterdir())
        cli_times, rc = time_cli(root, base, repeat, [])
        deep_times, _ = time_cli(root, base, max(1, repeat // 3), ["--deep", "--select", "DS002"])
        full = time_full_read(base, max(1, repeat // 2))
        footers = time_footer_only(base, repeat)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; sys.argv[0]='preflight'; from preflight.cli import preflight_main; preflight_main()",
                "check",
                str(root / "job.sbatch"),
                "--base-dir",
                str(base),
            ],
            cwd=root,
            env={
                "HOME": str(root / "home"),
                "PATH": os.environ.get("PATH", ""),
                "NO_COLOR": "1",
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
        )
        return {
            "shards": shards,
            "row_groups": row_groups,
            "bytes": size,
            "build_s": build_s,
            "cli": cli_times,
            "cli_rc": rc,
            "deep": deep_times,
            "full_read": full,
            "footers": footers,
            "text_tail": (proc.stdout + proc.stderr)[-3000:],
        }


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    r = measure(8 if tiny else 240, 4 if tiny else 54, 3 if tiny else 7)
    med = statistics.median(r["cli"])
    return [
        Row(
            what=f"preflight check, {r['shards']} shards (footers only)",
            ours=med,
            unit="s",
            baseline=statistics.median(r["full_read"]),
            baseline_what="pyarrow full read of the shards",
            target="< 0.5 s",
            meets=med < 0.5,
            spread=f"{min(r['cli']):.3g}–{max(r['cli']):.3g}",
            note=f"footer decode alone {statistics.median(r['footers']) * 1000:.0f} ms",
        )
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shards", type=int, default=240)
    ap.add_argument("--row-groups", type=int, default=54)
    ap.add_argument("--show-output", action="store_true", help="print the text report of one run")
    args = ap.parse_args()
    r = measure(args.shards, args.row_groups, args.repeat)
    print(
        f"base dir: {r['shards']} shards x {r['row_groups']} row groups of 1024 rows, {r['bytes'] / 1e6:.0f} MB "
        f"(built in {r['build_s']:.1f} s); {os.cpu_count()} cores"
    )
    print(f"preflight check (CLI, default checks):  {summary(r['cli'])}  exit {r['cli_rc']}  target < 500 ms")
    print(f"preflight check --deep --select DS002:  {summary(r['deep'])}")
    print(f"footer decode only (in-process):       {summary(r['footers'])}")
    print(f"pyarrow full read of the same shards:  {summary(r['full_read'])}")
    if args.show_output:
        print(r["text_tail"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
