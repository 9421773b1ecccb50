"""Shapes from a twentieth round of public forks' job scripts (written here in our own words): a launcher that cds to
its own directory, checked as a copy beside its checkout; output logs relative to the checkout a job is submitted
from; an evaluation bundle an early checkout reads but never downloads."""

from __future__ import annotations

from tests.clirun import check_script

LAUNCHER = (
    "#!/usr/bin/env bash\nset -euo pipefail\n"
    'PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)\ncd "$PROJECT_ROOT"\n'
    "export WANDB_RUN=dummy\npython -m scripts.base_train --depth=4\n"
)


def _checkout(root):
    (root / "scripts").mkdir(parents=True)
    (root / "nanochat").mkdir()
    (root / "scripts" / "base_train.py").write_text("depth = 20\n")
    (root / "nanochat" / "configurator.py").write_text("")
    return root


def test_a_launcher_that_cds_to_its_own_directory_runs_in_the_checkout_it_belongs_to(tmp_path, cli):
    # the launcher lives at the checkout's top; checked as a copy (another name, another directory) with --checkout,
    # its `cd "$(dirname "${BASH_SOURCE[0]}")"` was the copy's directory, and SB018 said scripts.base_train is missing
    checkout = _checkout(tmp_path / "nc")
    (checkout / "train_local.sh").write_text(LAUNCHER)
    _report, checks = check_script(cli, tmp_path, LAUNCHER, "--checkout", str(checkout))
    assert checks["SB018"]["status"] == "pass", checks["SB018"]

    # without its twin in the checkout, the copy's own directory is where it runs: the finding stands
    (checkout / "train_local.sh").write_text(LAUNCHER + "# edited\n")
    _report, checks = check_script(cli, tmp_path, LAUNCHER, "--checkout", str(checkout))
    (found,) = checks["SB018"]["findings"]
    assert "python -m scripts.base_train (line 6) runs in" in found["message"], found


def test_an_eval_bundle_an_early_checkout_reads_but_never_downloads_must_be_there(tmp_path, cli):
    # the first commits' base_eval opens eval_bundle/core.yaml with no code to fetch it, and base_train runs the CORE
    # evaluation at its last step: without the bundle the run dies just before its final save. NET001 skipped it as
    # "this checkout does not download it"
    checkout = _checkout(tmp_path / "nc")
    (checkout / "scripts" / "base_eval.py").write_text(
        "import os\ndef evaluate_model(base_dir):\n    eval_bundle_dir = os.path.join(base_dir, 'eval_bundle')\n"
        "    config_path = os.path.join(eval_bundle_dir, 'core.yaml')\n"
    )
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=04:00:00\nset -e\n"
        f"cd {checkout}\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=4\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    (found,) = checks["NET001"]["findings"]
    assert found["message"].startswith(
        "phase base reads files nothing downloads: CORE eval bundle (eval_bundle.zip from S3), first CORE eval and "
        "base_eval, which this checkout reads but has no code to download (FileNotFoundError where it is read)"
    ), found["message"]
    assert "eval_bundle.zip https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip" in found["fix"]

    # the script fetches it itself (speedrun.sh of those commits): that download is SB011's, not a second finding
    fetch = "curl -L -o eval_bundle.zip https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip\n"
    _report, checks = check_script(
        cli, tmp_path, body.replace("set -e\n", "set -e\n" + fetch), "--checkout", str(checkout)
    )
    assert not [f for f in checks["NET001"]["findings"] if "eval bundle" in f["message"]], checks["NET001"]
    assert any("eval_bundle.zip" in f["message"] for f in checks["SB011"]["findings"]), checks["SB011"]


def test_the_shard_download_fix_picks_a_forks_pretraining_dataset(tmp_path, cli):
    # a fork's downloader fetches one of two datasets and the midtraining mix by default: `-n 250` alone would fill
    # another directory (and its loader falls back to it), so the fix names the choice that gets pretraining shards
    checkout = _checkout(tmp_path / "nc")
    (checkout / "nanochat" / "dataset.py").write_text(
        "import argparse\nif __name__ == '__main__':\n    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('-n', '--num-files', type=int, required=True)\n"
        "    parser.add_argument('-d', '--dataset', choices=['base', 'mid_train'], default='mid_train')\n"
        "    args = parser.parse_args()\n"
    )
    body = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n"
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    (found,) = checks["DS001"]["findings"]  # no second finding for the validation shard of an empty directory
    assert found["fix"].startswith(
        "python -m nanochat.dataset -n 240 --dataset=base on a login node (it skips shards already present); this "
        "checkout's downloader fetches 'mid_train' by default"
    ), found["fix"]


def test_chat_eval_of_the_rl_model_downloads_its_tasks_too(tmp_path, cli):
    # `chat_eval -i rl` after chat_rl runs chat_eval's own tasks (ARC, MMLU, HumanEval) on an offline node; only RL's
    # GSM8K was reported, as chat_eval's downloads are listed under the phases whose evaluation the speedrun runs
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\nexport WANDB_RUN=dummy\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.chat_rl\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.chat_eval -- -i rl\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    rl = [f for f in checks["NET001"]["findings"] if f["message"].startswith("phase rl downloads at run time")]
    assert len(rl) == 1, checks["NET001"]
    for dataset in ("openai/gsm8k", "cais/mmlu", "allenai/ai2_arc", "openai/openai_humaneval"):
        assert dataset in rl[0]["message"], rl[0]["message"]
