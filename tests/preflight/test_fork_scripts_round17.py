"""Shapes from a seventeenth round of public forks' job scripts (written here in our own words): a run name whose
default was commented out, a job that downloads its own shards and tokenizer from the Hub, and a fork whose
evaluation reads a bundle the job writes itself."""

from __future__ import annotations

import json

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=04:00:00\nset -e\n"
_TRAIN = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --run=$WANDB_RUN\n"


def test_a_run_name_set_nowhere_is_an_empty_name_and_wandb_starts(tmp_path, cli):
    # the speedrun's `WANDB_RUN=dummy` default is commented out: `--run=` gives the trainer "", which is not dummy, so
    # wandb.init runs (and fails on a node with no credentials); it was "wandb logging is off (run = dummy)"
    body = HEAD + 'source .venv/bin/activate\n# if [ -z "$WANDB_RUN" ]; then\n#     WANDB_RUN=dummy\n# fi\n' + _TRAIN
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (crash,) = checks["ENV002"]["findings"]
    assert crash["message"].startswith(
        "wandb run '' (--run=$WANDB_RUN, WANDB_RUN is not set: the trainer gets an empty"
    ), crash
    assert "WANDB_RUN=${WANDB_RUN:-dummy} turns wandb off" in crash["fix"], crash["fix"]
    assert not checks["ENV001"]["findings"], checks["ENV001"]
    # set where the job is submitted from, it is that name's business (dummy here: off)
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic", env={"WANDB_RUN": "dummy"})
    assert not checks["ENV002"]["findings"] and checks["ENV001"]["findings"], (checks["ENV002"], checks["ENV001"])
    # a sourced settings file preflight cannot read may set it: no claim
    unread = body.replace("source .venv/bin/activate\n", "source slurm/machine_config.sh\n")
    _report, checks = check_script(cli, tmp_path, unread, "--profile", "classic")
    assert not checks["ENV002"]["findings"], checks["ENV002"]


_FETCHES = (
    'export NANOCHAT_DATA_DIR="$NANOCHAT_BASE_DIR/base_data"\n'
    'mkdir -p "$NANOCHAT_DATA_DIR" "$NANOCHAT_BASE_DIR/tokenizer"\n'
    'hf download someone/darija-pretrain-mix --repo-type dataset --local-dir "$NANOCHAT_DATA_DIR"\n'
    'wget -q -P "$NANOCHAT_BASE_DIR/tokenizer" https://example.org/tok/tokenizer.pkl\n'
)


def test_shards_and_a_tokenizer_the_job_downloads_itself_are_not_missing(tmp_path, cli):
    # DS001's fix (`python -m nanochat.dataset -n 800`) would fill the fork's own data folder with another dataset,
    # and TOK001's (`tok_train`) would replace the tokenizer the job downloads
    body = HEAD + "export WANDB_RUN=dummy\n" + _FETCHES + _TRAIN
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic", "--network", "online")
    assert checks["DS001"]["status"] == "skip", checks["DS001"]
    assert (
        "the script downloads into" in checks["DS001"]["reason"] and "(line 8: hf download" in checks["DS001"]["reason"]
    )
    assert checks["TOK001"]["status"] == "skip" and "(line 9: wget" in checks["TOK001"]["reason"], checks["TOK001"]
    # a download somewhere else fills neither
    elsewhere = body.replace('--local-dir "$NANOCHAT_DATA_DIR"', "--local-dir /scratch/other").replace(
        '-P "$NANOCHAT_BASE_DIR/tokenizer"', "-P /scratch/tok"
    )
    _report, checks = check_script(cli, tmp_path, elsewhere, "--profile", "classic", "--network", "online")
    assert checks["DS001"]["findings"] and checks["TOK001"]["findings"], (checks["DS001"], checks["TOK001"])


def test_a_fork_whose_evaluation_downloads_no_bundle_needs_none_from_the_network(tmp_path, cli):
    # the fork's base_eval reads BASE/eval_bundle (the job wgets a bundle of its own there) and fetches nothing
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "scripts" / "base_train.py").write_text("import argparse\n")
    base_eval = 'eval_bundle_dir = os.path.join(base_dir, "eval_bundle")\n'
    (checkout / "scripts" / "base_eval.py").write_text(base_eval)
    body = (
        HEAD + "export WANDB_RUN=dummy\n" + _TRAIN + "torchrun --standalone --nproc_per_node=8 -m scripts.base_eval\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "classic")
    assert not any("eval bundle" in f["message"] for f in checks["NET001"]["findings"]), checks["NET001"]
    # upstream's base_eval downloads eval_bundle.zip: then it is needed
    (checkout / "scripts" / "base_eval.py").write_text(base_eval + 'EVAL_BUNDLE_URL = "https://h/eval_bundle.zip"\n')
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "classic")
    assert any("eval bundle" in f["message"] for f in checks["NET001"]["findings"]), checks["NET001"]


def test_a_machine_config_the_checkout_has_only_as_a_template_is_missing(tmp_path, cli):
    # `cd ~/looped_nanochat` (not on this machine), then `source slurm/machine_config.sh`: the checkout given has only
    # slurm/machine_config.sh.template (the file is git-ignored, each user makes it); it was "unknown", no finding
    checkout = tmp_path / "looped_nanochat"
    (checkout / "slurm").mkdir(parents=True)
    (checkout / "scripts").mkdir()
    (checkout / "scripts" / "base_train.py").write_text("import argparse\n")
    (checkout / "slurm" / "machine_config.sh.template").write_text("export NANOCHAT_BASE_DIR=/scratch/me\n")
    body = (
        "#!/bin/bash\ncd ~/no-such-dir-here/looped_nanochat\nsource slurm/machine_config.sh\n"
        "validate_config || exit 1\n" + _TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    (missing,) = checks["SB022"]["findings"]
    assert missing["message"].startswith("line 3 sources slurm/machine_config.sh, which does not exist (only "), missing
    assert missing["fix"] == "cp slurm/machine_config.sh.template slurm/machine_config.sh and fill it in"
    # made from its template in the checkout: nothing to say
    (checkout / "slurm" / "machine_config.sh").write_text("export NANOCHAT_BASE_DIR=/scratch/me\n")
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    assert not checks["SB022"]["findings"], checks["SB022"]


def test_a_checkout_of_another_project_is_still_the_submit_directory(tmp_path, cli):
    # `preflight check job.sh --checkout BabyGPT` for a job that cds to $SLURM_SUBMIT_DIR and runs its own program:
    # the directory given is where the job is submitted from, nanochat checkout or not (it was the cwd of preflight)
    project = tmp_path / "BabyGPT"
    (project / "1_finetune").mkdir(parents=True)
    (project / "1_finetune" / "finetune.py").write_text("print('training')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    body = "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\ncd $SLURM_SUBMIT_DIR\npython 1_finetune/finetune.py\n"
    _report, checks = check_script(cli, elsewhere, body, "--checkout", str(project))
    assert not checks["SB018"]["findings"], checks["SB018"]
    (project / "1_finetune" / "finetune.py").unlink()
    _report, checks = check_script(cli, elsewhere, body, "--checkout", str(project))
    (missing,) = checks["SB018"]["findings"]
    assert str(project) in missing["message"], missing


def test_torchrun_on_a_cpu_partition_needs_a_gpu_partition_too(tmp_path, cli):
    # SB005's fix "#SBATCH --gres=gpu:1" alone is refused on --partition=cpu
    body = "#!/bin/bash\n#SBATCH --partition=cpu\n#SBATCH --nodes=1\nset -e\nexport WANDB_RUN=dummy\n"
    body += "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4\n"
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    (no_gpu,) = checks["SB005"]["findings"]
    assert no_gpu["message"].startswith("torchrun starts 1 process per node but the job requests no GPUs"), no_gpu
    assert "on partition cpu, which its name says has none" in no_gpu["message"], no_gpu
    assert no_gpu["fix"].startswith("#SBATCH --gres=gpu:1 and a GPU partition"), no_gpu["fix"]
    _report, checks = check_script(cli, tmp_path, body.replace("=cpu", "=gpu-a100"), "--profile", "current")
    (no_gpu,) = checks["SB005"]["findings"]
    assert no_gpu["fix"] == "#SBATCH --gres=gpu:1", no_gpu["fix"]


_CHILD = (
    "#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=12 --run=dummy\n"
)


def test_a_runner_that_calls_a_script_beside_it_is_followed(tmp_path, cli):
    # `SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"` then `bash "$SCRIPT_DIR/train.sh"`: bash runs the
    # script from its file, so that is the folder it is in; it was "cannot be read here", and the job passed unchecked
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "train.sh").write_text(_CHILD)
    body = (
        '#!/bin/bash\nset -e\nSCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"\nbash "$SCRIPT_DIR/train.sh"\n'
    )
    (runs / "compare.sh").write_text(body)
    proc = cli("preflight", "check", str(runs / "compare.sh"), "--format", "json", "--profile", "current", cwd=tmp_path)
    report = json.loads(proc.stdout)
    checks = {c["code"]: c for c in report["checks"]}
    assert not checks["SB020"]["findings"], checks["SB020"]
    assert report["plan"]["depth"] == 12, report["plan"]
    # `$(cd "$(dirname "$0")/.." && pwd)` is the folder above it
    up = body.replace('"$(dirname "${BASH_SOURCE[0]}")"', '"$(dirname "$0")/.."').replace(
        "$SCRIPT_DIR/", "$SCRIPT_DIR/runs/"
    )
    (runs / "compare.sh").write_text(up)
    proc = cli("preflight", "check", str(runs / "compare.sh"), "--format", "json", "--profile", "current", cwd=tmp_path)
    assert json.loads(proc.stdout)["plan"]["depth"] == 12
    # under sbatch the script runs from a copy in SLURM's spool directory: that folder is not known here
    (runs / "compare.sh").write_text(body.replace("set -e\n", "#SBATCH --gres=gpu:2\nset -e\n"))
    proc = cli("preflight", "check", str(runs / "compare.sh"), "--format", "json", "--profile", "current", cwd=tmp_path)
    checks = {c["code"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["SB020"]["findings"], checks["SB020"]


def test_a_launch_whose_flags_are_an_array_known_only_at_run_time_says_so(tmp_path, cli):
    body = (
        '#!/bin/bash\nset -e\nARGS=(--depth="$DEPTH_FROM_CALLER")\n'
        'torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- "${ARGS[@]}" $EXTRA_ARGS\n'
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "current")
    said = report["plan"]["assumptions"]
    assert any(
        a.startswith("$EXTRA_ARGS (script line 4) is known only when the job runs: the flags in it") for a in said
    )
