"""Median tok/sec, MFU and dt over steps >= 11 of a base_train log; peak memory. Usage: python scripts/bench_summarize.py LOG"""

import re
import statistics
import sys

text = open(sys.argv[1]).read()
rows = [
    (int(m.group(1)), float(m.group(2)), int(m.group(3).replace(",", "")), float(m.group(4)))
    for m in re.finditer(r"step (\d+)/\d+ .*? dt: ([\d.]+)ms \| tok/sec: ([\d,]+) \| mfu: ([\d.]+)", text)
]
late = [r for r in rows if r[0] >= 11]
peak = re.search(r"Peak memory usage: ([\d.]+)MiB", text)
params = re.search(r"Number of parameters: ([\d,]+)", text)
print(
    f"{sys.argv[1]}: params {params.group(1) if params else '?'} | steps >= 11: {len(late)} | "
    f"median dt {statistics.median(r[1] for r in late):.1f} ms | median tok/sec {statistics.median(r[2] for r in late):,.0f} | "
    f"median mfu {statistics.median(r[3] for r in late):.2f}% | peak memory {float(peak.group(1)) / 1024 if peak else float('nan'):.1f} GiB"
)
