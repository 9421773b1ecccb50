"""FS004 on the shape of karpathy/nanochat#542: runs at several depths share one base dir, and a d8 run's SFT and
chat (no --model-tag) would load the larger d16 left there."""

from __future__ import annotations

import json

RUNCPU_D8 = """#!/bin/bash
set -e
export NANOCHAT_BASE_DIR={base}
python -m scripts.base_train --depth=8 --head-dim=64 --max-seq-len=512 --device-batch-size=32 --num-iterations=5000
python -m scripts.base_eval --device-batch-size=1 --max-per-task=16
python -m scripts.chat_sft --max-seq-len=512 --device-batch-size=32{sft_tag}
python -m scripts.chat_cli -p "Why is the sky blue?"
"""


def _fs004(cli, tmp_path, sft_tag="", tags=("d16", "d12")):
    base = tmp_path / "base"
    for tag in tags:
        (base / "base_checkpoints" / tag).mkdir(parents=True)
    script = tmp_path / "runcpu.sh"
    script.write_text(RUNCPU_D8.format(base=base, sft_tag=sft_tag))
    proc = cli("preflight", "check", str(script), "--format", "json", cwd=tmp_path)
    return next(c for c in json.loads(proc.stdout)["checks"] if c["code"] == "FS004")


def test_a_larger_model_in_the_base_dir_is_named_with_each_loaders_flag(cli, tmp_path):
    check = _fs004(cli, tmp_path)
    (f,) = check["findings"]
    assert check["status"] == "warn" and "already holds d16" in f["message"] and "not the d8" in f["message"]
    assert "base_eval --model-tag=d8" in f["fix"] and "chat_sft --model-tag=d8" in f["fix"] and "-g d8" in f["fix"]


def test_no_finding_where_every_loader_has_the_tag_or_no_larger_model_is_there(cli, tmp_path):
    assert _fs004(cli, tmp_path / "a", tags=("d6", "d8"))["status"] == "pass"
    tagged = _fs004(cli, tmp_path / "b", sft_tag=" --model-tag=d8")  # base_eval still loads untagged
    assert [f["message"].split()[0] for f in tagged["findings"]] == ["scripts.base_eval"]
    assert "chat_sft" not in tagged["findings"][0]["fix"]


CLASSIC_D20 = """#!/bin/bash
set -e
export NANOCHAT_BASE_DIR={base}
torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=$WANDB_RUN
torchrun --standalone --nproc_per_node=8 -m scripts.base_eval
torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=$WANDB_RUN
"""


def test_a_loader_with_no_tag_flag_in_its_era_is_told_to_move_the_model(cli, tmp_path):
    # classic's base_eval has no --model-tag (none of the configurator-era checkouts has one): naming it would be a
    # flag the user's checkout refuses
    base = tmp_path / "base"
    (base / "base_checkpoints" / "d32").mkdir(parents=True)
    script = tmp_path / "speedrun.sh"
    script.write_text(CLASSIC_D20.format(base=base))
    proc = cli("preflight", "check", str(script), "--format", "json", cwd=tmp_path)
    (f,) = next(c for c in json.loads(proc.stdout)["checks"] if c["code"] == "FS004")["findings"]
    assert "mid_train --model_tag=d20" in f["fix"] and "base_eval --model" not in f["fix"]
    assert f["fix"].endswith("(base_eval takes no model tag in this era)")
