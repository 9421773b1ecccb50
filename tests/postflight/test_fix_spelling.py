"""A fix names the flag as the job's own checkout spells it.

The shape is a public report (karpathy/nanochat issue 443, in our own words): speedrun's base_train at a
January 2026 commit ran out of GPU memory in its first compiled step, and the workaround was
`--device-batch-size=16`. That checkout's argparse only knows the hyphenated flag; a fix that says
`--device_batch_size` fails with "unrecognized arguments"."""

from __future__ import annotations

import json

LOG = """\
Autodetected device type: cuda
Tokens / micro-batch / rank: 32 x 2048 = 65,536
Total batch size 524,288 => gradient accumulation steps: 1
Calculated number of iterations from target data:param ratio: 21,400
Step 00000 | Validation bpb: 3.123456
[rank3]: Traceback (most recent call last):
[rank3]:   File "/home/u/nanochat/scripts/base_train.py", line 330, in <module>
[rank3]:     loss = model(x, y)
[rank3]:   File "/tmp/torchinductor_u/x7/cx7abc.py", line 5269, in call
[rank3]:     buf706 = empty_strided_cuda((65536, 65536), (65536, 1), torch.bfloat16)
[rank3]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 8.00 GiB. GPU 3 has a total capacity of 79.19 GiB
"""

BASE_TRAIN = """\
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=20)
parser.add_argument("--device-batch-size", type=int, default=32)
args = parser.parse_args()
"""


def test_the_out_of_memory_fix_uses_the_checkouts_flag(tmp_path, cli):
    checkout = tmp_path / "nanochat-jan"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "scripts" / "base_train.py").write_text(BASE_TRAIN)
    log = tmp_path / "speedrun-900.out"
    log.write_text(LOG)
    args = ["--log", str(log), "--checkout", str(checkout)]
    proc = cli("postflight", "verify", *args, "--format", "json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    (crash,) = next(c for c in report["checks"] if c["code"] == "LOG002")["findings"]
    assert crash["data"]["class"] == "out of memory"
    assert crash["fix"].startswith("lower --device-batch-size (32 -> 16 -> 8)"), crash["fix"]
    assert "--device-batch-size (32" in report["resume"]["fixes"][0], report["resume"]
    text = cli("postflight", "verify", *args, cwd=tmp_path).stdout
    assert "device_batch_size" not in text and "first: lower --device-batch-size" in text, text
