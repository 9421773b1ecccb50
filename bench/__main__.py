"""Run every benchmark and print one table: ours, the baseline measured in the same run, ratio, target.

    python -m bench            # full sizes (a few minutes; needs ~8 GB free disk for the d20 run)
    python -m bench --tiny     # every benchmark at a tiny size (proves they work; numbers meaningless)
    python -m bench --only startup,logscan --markdown

GPU rows come from runs on an H100 or H200 recorded in bench/gpu_results.json (this machine has no GPU).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import re
import sys
import traceback

from bench.common import Row, machine

BENCHMARKS = (
    "startup",
    "preflight_check",
    "checkout_read",
    "postflight_verify",
    "install",
    "logscan",
    "report_html",
    "deep",
    "trainer_cpu",
    "gpu",
    "multinode",
)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s" and value < 1:
        return f"{value * 1000:.0f} ms"
    if unit in ("B", "bytes"):
        return f"{value / 2**20:.0f} MiB"
    if abs(value) >= 10000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.3g} {unit}".strip()


def _at_edge(r: Row) -> bool:
    """A missed target, or a ratio within 0.005 of the target's own ratio (``≥ 1.10× classic``)."""
    if r.meets is False:
        return True
    m = re.search(r"([\d.]+)×", r.target or "")
    return r.meets is True and m is not None and abs(r.ratio - float(m.group(1))) < 0.005


def table(rows: list[Row], markdown: bool) -> str:
    head = ["what", "ours", "baseline", "ratio", "target", "meets", "min–max", "note"]
    body = []
    for r in rows:
        # a ratio at its target's edge shows three decimals: 1.0957 is not "1.10×", nor 1.1007 a clear "1.10×"
        ratio = "—" if r.ratio is None else f"{r.ratio:.3f}×" if _at_edge(r) else f"{r.ratio:.2f}×"
        meets = {True: "yes", False: "**NO**" if markdown else "NO", None: "—"}[r.meets]
        base = f"{fmt(r.baseline, r.unit)} ({r.baseline_what})" if r.baseline is not None else "—"
        body.append([r.what, fmt(r.ours, r.unit), base, ratio, r.target or "—", meets, r.spread or "—", r.note])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in body]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: prove every benchmark runs")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only.split(",")]
    info = machine()
    print(f"# nanochat-preflight benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}", file=sys.stderr)
    print("# machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), file=sys.stderr)
    rows: list[Row] = []
    failed = []
    for name in chosen:
        print(f"# running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            rows += module.bench(tiny=args.tiny)
        except Exception as exc:
            failed.append(name)
            traceback.print_exc()
            rows.append(Row(what=f"{name}: FAILED ({type(exc).__name__}: {exc})", ours=0.0, unit=""))
    print(table(rows, args.markdown))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(
                {
                    "machine": info,
                    "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "tiny": args.tiny,
                    "rows": [r.__dict__ | {"ratio": r.ratio} for r in rows],
                },
                fh,
                indent=2,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
