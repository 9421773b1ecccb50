"""Log index throughput: our one-pass index vs `grep -c` of step lines on a realistic log.

    python bench/logscan.py [--size-mb 1024] [--path /tmp/nanochat_bench.log] [--keep]

The log is a d20 classic speedrun repeated: banner-less startup lines, `Overriding:`
lines, 21,400 base step lines with validation every 250 and CORE every 2,000 steps, samples,
coloured logger lines, save lines, mid (800 steps) and SFT (700 steps) phases, chat_eval progress
redraws (\\r + ANSI) and a dataset download summary. Prints GB/s and peak RSS; no assertions.
Logs of 512 MiB and more are indexed with a helper process (preflight/steplines.py) that searches
the last part of the log; its memory is reported on its own.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GREEN, BOLD, RESET = "\x1b[32m", "\x1b[1m", "\x1b[0m"


def logger(name: str, msg: str) -> str:
    return f"2025-10-14 08:00:00,000 - {name} - {GREEN}{BOLD}INFO{RESET} - {msg}"


def speedrun_log(base: str = "/scratch/u/nanochat") -> str:
    out = ["Downloading 240 shards using 4 workers...", f"Target directory: {base}/base_data"]
    out += [f"Successfully downloaded shard_{i:05d}.parquet" for i in range(240)]
    out.append(f"Done! Downloaded: 240/240 shards to {base}/base_data")
    out += [
        "max_chars: 2,000,000,000",
        "doc_cap: 10,000",
        "vocab_size: 65,536",
        "Training time: 91.23s",
        f"Saved tokenizer encoding to {base}/tokenizer/tokenizer.pkl",
        f"Saved token_bytes to {base}/tokenizer/token_bytes.pt",
    ]
    # base
    out += [
        "Overriding: depth = 20",
        "Overriding: run = dummy",
        "Autodetected device type: cuda",
        logger("nanochat.common", f"Distributed world size: {BOLD}8{RESET}"),
        "Vocab size: 65,536",
        "num_layers: 20",
        "model_dim: 1280",
        "num_heads: 10",
        "num_kv_heads: 10",
        "Tokens / micro-batch / rank: 32 x 2048 = 65,536",
        "Number of parameters: 560,988,160",
        "Calculated number of iterations from target data:param ratio: 21,400",
    ]
    total = 21400
    for s in range(total):
        if s % 250 == 0:
            out.append(f"Step {s:05d} | Validation bpb: {1.2 - s * 1e-5:.4f}")
        if s % 2000 == 0 and s:
            out.append(f"Step {s:05d} | CORE metric: 0.{1000 + s // 100:04d}")
            out += [f"<|bos|>The capital of France is Paris. The chemical symbol of gold is Au. {i}" for i in range(7)]
        out.append(
            f"step {s:05d}/{total:05d} ({100 * s / total:.2f}%) | loss: {3.5 - s * 1e-4:.6f} | grad norm: 0.{1234 + s % 1000:04d} |"
            f" lrm: 1.00 | dt: {480 + s % 37:.2f}ms | tok/sec: {1092000 + s % 999:,} | mfu: 48.{s % 100:02d} | total time: {s * 0.008:.2f}m"
        )
    out += [
        f"Step {total:05d} | Validation bpb: 0.8123",
        "Peak memory usage: 75123.45MiB",
        "Total training time: 171.23m",
        "Minimum validation bpb: 0.8123",
    ]
    d = f"{base}/base_checkpoints/d20"
    out.append(logger("nanochat.checkpoint_manager", f"Saved model parameters to: {d}/model_021400.pt"))
    out += [
        logger("nanochat.checkpoint_manager", f"Saved optimizer state to: {d}/optim_021400_rank{r}.pt")
        for r in range(8)
    ]
    out.append(logger("nanochat.checkpoint_manager", f"Saved metadata to: {d}/meta_021400.json"))
    # base_eval
    out += ["Autodetected device type: cuda", logger("nanochat.common", "Distributed world size: 8")]
    out += [
        f"Evaluating: task_{i} (0-shot, type: multiple_choice)... accuracy: 0.4{i:03d} | centered: 0.2{i:03d} | time: 12.34s"
        for i in range(22)
    ]
    # mid
    out += [
        "Overriding: run = dummy",
        "Autodetected device type: cuda",
        logger("nanochat.common", "Distributed world size: 8"),
    ]
    for s in range(800):
        if s % 150 == 0:
            out.append(f"Step {s:05d} | Validation bpb: 0.{7000 + s:04d}")
        out.append(
            f"step {s:05d} ({100 * s / 800:.2f}%) | loss: {2.1 - s * 1e-4:.6f} | lrm: 1.00 "
            f"| dt: 470.12ms | tok/sec: 1,101,234 | mfu: 48.55 | total time: {s * 0.008:.2f}m"
        )
    out += ["Peak memory usage: 75123.45MiB", "Total training time: 7.01m", "Minimum validation bpb: 0.6123"]
    out.append(
        logger("nanochat.checkpoint_manager", f"Saved model parameters to: {base}/mid_checkpoints/d20/model_000800.pt")
    )
    # chat_eval with progress redraws
    out += [
        "Autodetected device type: cuda",
        "".join(f"\r\x1b[KRank 0 | {i}/1319 ({100 * i / 1319:.2f}%)" for i in range(0, 1319, 7)),
        "Final: 33/1319 (2.50%)",
        "GSM8K accuracy: 2.50%",
    ]
    # sft
    out += [
        "Overriding: run = dummy",
        "Autodetected device type: cuda",
        logger("nanochat.common", "Distributed world size: 8"),
    ]
    for s in range(700):
        if s % 100 == 0:
            out.append(f"Step {s:05d} | Validation loss: 1.{s:06d}")
        out.append(
            f"Step {s:05d}/00701 | Training loss: {1.2 - s * 1e-4:.6f}| lrm: 0.{999999 - s:06d}| num_tokens: 12,345"
        )
    out.append(
        logger(
            "nanochat.checkpoint_manager", f"Saved model parameters to: {base}/chatsft_checkpoints/d20/model_000700.pt"
        )
    )
    out.append(f"\u2705 Saved model checkpoint to {base}/chatsft_checkpoints/d20")
    out += ["Generating report...", "Copying report.md to current directory for convenience"]
    return "\n".join(out) + "\n"


def make_log(path: Path, size_mb: int) -> None:
    block = speedrun_log().encode()
    n = max(1, (size_mb << 20) // len(block))
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(block)


INDEX_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[2])
from preflight.logindex import index_log
t = time.perf_counter()
ix = index_log(sys.argv[1])
print(time.perf_counter() - t, sum(s.step_lines for s in ix.segments),
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)  # the helper process, if one ran
"""


def bench(tiny: bool = False) -> list:
    """Suite rows: index throughput (GB/s, in a child process, page cache warm) vs `grep -c '^step '`,
    and the child's peak RSS next to the log size (memory must stay flat)."""
    import statistics
    import tempfile

    from bench.common import Row, run_child

    size_mb, repeat = (4, 3) if tiny else (1024, 3)
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="logscan_") as tmp:
        path = Path(tmp) / "speedrun.log"
        make_log(path, size_mb)
        size = path.stat().st_size
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=False)
        ours, grep, rss, helper_rss = [], [], [], []
        counts = set()
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, "-c", INDEX_CHILD, str(path), root], capture_output=True, text=True, check=True
            )
            secs, steps, helper = out.stdout.split()
            ours.append(float(secs))
            counts.add(int(steps))
            helper_rss.append(int(helper))
            rss.append(run_child([sys.executable, "-c", INDEX_CHILD, str(path), root])[1])
            t = time.perf_counter()
            g = subprocess.run(["grep", "-c", "^step ", str(path)], capture_output=True, text=True)
            grep.append(time.perf_counter() - t)
        grep_count = int(g.stdout.strip() or 0)
        idle = run_child(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); import preflight.logindex"]
        )[1]
    gbps = [size / x / 1e9 for x in ours]
    note = f"step lines {counts.pop() if len(counts) == 1 else counts} (grep {grep_count})"
    return [
        Row(
            what=f"log index, {size / 2**20:,.0f} MiB realistic log",
            ours=statistics.median(gbps),
            unit="GB/s",
            baseline=statistics.median(size / x / 1e9 for x in grep),
            baseline_what="grep -c '^step '",
            target="≥ 1 GB/s",
            meets=statistics.median(gbps) >= 1.0,
            spread=f"{min(gbps):.3g}–{max(gbps):.3g}",
            note=note + "; in-process time, page cache warm",
        ),
        Row(
            what=f"log index, {size / 2**20:,.0f} MiB log: peak RSS",
            ours=float(max(rss)),
            unit="B",
            baseline=float(idle),
            baseline_what="same interpreter, index module imported only",
            target="flat (≤ 64 MiB over baseline)",
            meets=max(rss) - idle <= 64 << 20,
            note=f"log size {size / 2**20:.0f} MiB; "
            + (
                f"plus the helper process: {max(helper_rss) / 2**20:.0f} MiB"
                if max(helper_rss)
                else "no helper process"
            ),
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--path", default="/tmp/nanochat_bench.log")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    path = Path(args.path)
    if not path.exists() or path.stat().st_size < (args.size_mb << 20) * 0.9:
        t = time.time()
        make_log(path, args.size_mb)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.time() - t:.1f}s")
    size = path.stat().st_size

    # warm the page cache so both tools read from memory
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=False)

    t = time.time()
    grep = subprocess.run(["grep", "-c", "^step ", str(path)], capture_output=True, text=True)
    grep_s = time.time() - t
    print(f"grep -c '^step ':       {grep_s:6.2f}s  {size / grep_s / 1e9:5.2f} GB/s  count={grep.stdout.strip()}")

    from preflight.logindex import index_log

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.time()
    ix = index_log(path)
    ours_s = time.time() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    steps = sum(s.step_lines for s in ix.segments)
    print(
        f"preflight.logindex:     {ours_s:6.2f}s  {size / ours_s / 1e9:5.2f} GB/s  step lines={steps} "
        f"segments={len(ix.segments)} lines={ix.lines}"
    )
    print(f"peak RSS: {rss1 / 1024:.0f} MB (before the index: {rss0 / 1024:.0f} MB)")
    if not args.keep:
        os.unlink(path)


if __name__ == "__main__":
    main()
