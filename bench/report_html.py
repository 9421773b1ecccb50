"""The HTML run report's cost: `postflight verify --format html` vs `--format json` of the same run (the
same CLI, the same 1 GB realistic log of bench/logscan.py), and the size of the page.

    python bench/report_html.py [--size-mb 1024]
    python -m bench --only report_html          # the suite row (--tiny: a 4 MiB log)

The html verdict pays for the curves (step lines parsed during the index's own pass: every one up to
4 MiB of log, evenly spaced windows above) and the page; the json verdict pays for neither. Both run
in child processes with the page cache warm, alternating, medians of the repeats. Targets (issue 17):
at most 20% more time than json, page under 2 MB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def measure(size_mb: int, repeat: int) -> dict:
    from bench.common import cli, run_child
    from bench.logscan import make_log

    with tempfile.TemporaryDirectory(prefix="report_html_") as tmp:
        log = Path(tmp) / "speedrun.log"
        make_log(log, size_mb)
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=False)  # page cache warm
        times: dict[str, list[float]] = {"json": [], "html": []}
        pages = []
        for i in range(repeat + 1):  # the first round warms bytecode and the page cache; not counted
            for fmt in ("json", "html"):
                out = Path(tmp) / f"out.{fmt}"
                wall, _, code = run_child(
                    cli("postflight", "verify", "--log", str(log), "-f", fmt, "-o", str(out)), cwd=tmp
                )
                if code not in (0, 1):
                    raise RuntimeError(f"postflight verify -f {fmt} exited {code}")
                if i:
                    times[fmt].append(wall)
                    if fmt == "html":
                        pages.append(out.stat().st_size)
        return {
            "size": log.stat().st_size,
            "json": times["json"],
            "html": times["html"],
            "page": max(pages),
            "charts": out.read_text().count('class="phase-chart"'),
        }


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    m = measure(4 if tiny else 1024, 1 if tiny else 3)
    html, js = statistics.median(m["html"]), statistics.median(m["json"])
    ratios = [h / j for h, j in zip(m["html"], m["json"], strict=False)]
    log = f"{m['size'] / 2**20:,.0f} MiB log"
    return [
        Row(
            what=f"postflight --format html, {log}: time",
            ours=html,
            unit="s",
            baseline=js,
            baseline_what="--format json of the same run",
            target="≤ 1.20× json",
            meets=html / js <= 1.2,
            spread=f"{min(ratios):.2f}–{max(ratios):.2f}× per pair",
            note=f"CLI wall, child processes, page cache warm; {m['charts']} phase charts",
        ),
        Row(
            what=f"postflight --format html, {log}: page size",
            ours=m["page"] / 1024,
            unit="KiB",
            target="< 2 MB",
            meets=m["page"] < 2_000_000,
            note="one self-contained file: inline CSS and SVG",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    m = measure(args.size_mb, args.repeat)
    html, js = statistics.median(m["html"]), statistics.median(m["json"])
    print(
        f"log {m['size'] / 2**20:.0f} MiB: json {js:.2f}s  html {html:.2f}s  ratio {html / js:.2f}x  "
        f"page {m['page'] / 1024:.0f} KiB ({m['charts']} phase charts)  json runs {m['json']}  html runs {m['html']}"
    )


if __name__ == "__main__":
    main()
