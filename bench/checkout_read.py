"""Reading a nanochat checkout's entry points (ast, never imported), and what it adds to a check.

    python -m bench --only checkout_read

Rows:
- the in-process read of every entry point upstream's speedrun launches (base_train, mid_train,
  chat_sft, chat_eval, tok_train, tok_eval, base_eval) at commit 7312ec9, cache cleared each time,
  next to plain ``ast.parse`` of the same files (the floor: parsing alone);
- ``preflight check`` of that speedrun with ``--checkout`` next to the same check of the script
  alone (both CLI wall time, child processes): the cost of the checkout read end to end.
The checkout comes from the test corpus (tests/corpus/upstream/corpus.tar.xz).
"""

from __future__ import annotations

import ast
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "7312ec9"
RUNNER = "2026-01-13-7312ec9-speedrun.sh"
MODULES = (
    "scripts.base_train",
    "scripts.mid_train",
    "scripts.chat_sft",
    "scripts.chat_eval",
    "scripts.tok_train",
    "scripts.tok_eval",
    "scripts.base_eval",
)


def _extract(dest: Path) -> tuple[Path, Path]:
    import tarfile

    with tarfile.open(ROOT / "tests" / "corpus" / "upstream" / "corpus.tar.xz", "r:xz") as tar:
        tar.extractall(dest, filter="data")
    co = dest / "checkouts" / COMMIT
    script = co / "speedrun.sh"
    script.write_bytes((dest / "runners" / RUNNER).read_bytes())
    return co, script


def _read_all(co: Path) -> float:
    from preflight.checkout import Checkout, _read_entry

    _read_entry.cache_clear()
    t = time.perf_counter()
    c = Checkout(co, "bench")
    for m in MODULES:
        c.entry(m)
    return time.perf_counter() - t


def _parse_only(co: Path) -> float:
    t = time.perf_counter()
    for m in MODULES:
        p = co / (m.replace(".", "/") + ".py")
        ast.parse(p.read_bytes())
    return time.perf_counter() - t


def _cli(args: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "preflight", "check", *args], cwd=cwd, env=env, capture_output=True)
    return time.perf_counter() - t


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    sys.path.insert(0, str(ROOT))
    repeat = 3 if tiny else 15
    with tempfile.TemporaryDirectory(prefix="checkout_") as tmp:
        co, script = _extract(Path(tmp))
        ours = [_read_all(co) for _ in range(repeat)]
        base = [_parse_only(co) for _ in range(repeat)]
        env = {**os.environ, "HOME": tmp, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        alone_dir = Path(tmp) / "alone"
        alone_dir.mkdir()
        (alone_dir / "speedrun.sh").write_bytes(script.read_bytes())
        common = ["--base-dir", str(Path(tmp) / "base"), "--exit-zero"]
        _cli([str(script), "--checkout", str(co), *common], co, env)  # warm
        _cli([str(alone_dir / "speedrun.sh"), *common], alone_dir, env)
        with_co, alone = [], []
        for _ in range(repeat):  # taking turns: a busy second on this machine slows both alike
            with_co.append(_cli([str(script), "--checkout", str(co), *common], co, env))
            alone.append(_cli([str(alone_dir / "speedrun.sh"), *common], alone_dir, env))
    med = statistics.median
    return [
        Row(
            what=f"checkout read: {len(MODULES)} entry points of {COMMIT} (ast, cache cleared)",
            ours=med(ours),
            unit="s",
            baseline=med(base),
            baseline_what="ast.parse of the same files alone",
            target="≤ parsing the whole files",
            meets=med(ours) <= med(base),
            spread=f"{min(ours) * 1000:.1f}–{max(ours) * 1000:.1f} ms",
        ),
        Row(
            what="preflight check speedrun.sh with its checkout",
            ours=med(with_co),
            unit="s",
            baseline=med(alone),
            baseline_what="the same script alone, no checkout",
            target="checkout adds ≤ 25%",
            meets=med(with_co) <= 1.25 * med(alone),
            spread=f"{min(with_co):.3f}–{max(with_co):.3f}",
        ),
    ]


if __name__ == "__main__":
    for row in bench(tiny="--tiny" in sys.argv):
        print(row)
