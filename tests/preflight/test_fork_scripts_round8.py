"""Shapes from an eighth round of public forks' batch scripts (written here in our own words): entry points run by
their path on the cluster, a resumed base run's time, and the sourced-file and job-directory cases around them."""

from __future__ import annotations

from tests.clirun import check_script

PATH_LAUNCH = (
    "#!/bin/bash\n#SBATCH --time=72:00:00\n#SBATCH --gres=gpu:h100:2\nset -e\nexport OMP_NUM_THREADS=1\n"
    "export WANDB_MODE=offline\n"
    'RESUME_ARG="--resume-from-step 76500"\n'
    "torchrun --nproc_per_node=2 --master_port $MASTER_PORT -- \\\n"
    "    /cluster/me/nanochat/scripts/base_train.py --depth 26 --max-seq-len 2048 --device-batch-size 8 \\\n"
    "    --num-iterations 153600 --save-every 500 --run d26_run_01 $RESUME_ARG\n"
)


def test_an_entry_point_run_by_its_path_is_that_phase_and_a_resumed_run_is_timed_from_its_step(tmp_path, cli):
    report, checks = check_script(cli, tmp_path, PATH_LAUNCH)
    plan = report["plan"]
    (base,) = [p for p in plan["phases"] if p["name"] == "base"]  # was "the script runs no training phase"
    assert plan["depth"] == 26 and base["steps"] == 153600 and base["resume_from"] == 76500, base
    assert not checks["SB010"]["findings"], checks["SB010"]  # was 8 x "the classic configurator needs --key=value"
    assert report["profile"]["name"] != "classic", report["profile"]
    # 77,100 steps left of a d26 on 2 GPUs: over the 72 h limit (the whole run's 153,600 would say twice as much)
    (late,) = checks["SB006"]["findings"]
    hours = float(late["message"].split("estimated ")[1].split(":")[0])
    assert 72 < hours < 150, late["message"]
    assert checks["ENV001"]["status"] != "fail" and not any(
        "run = dummy" in f["message"] for f in checks["ENV001"]["findings"]
    ), checks["ENV001"]  # --run d26_run_01 is a named run


def test_a_checkout_gives_a_path_launch_its_own_copy_of_the_entry_point(tmp_path, cli):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "scripts" / "base_train.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\n"
        'p.add_argument("--depth", type=int, default=20)\np.add_argument("--max-seq-len", type=int, default=2048)\n'
        'p.add_argument("--device-batch-size", type=int, default=32)\np.add_argument("--num-iterations", type=int)\n'
        'p.add_argument("--save-every", type=int, default=-1)\np.add_argument("--run", default="dummy")\n'
        'p.add_argument("--resume-from-step", type=int, default=-1)\n'
    )
    _report, checks = check_script(
        cli, tmp_path, PATH_LAUNCH.replace("--save-every 500", "--save-evry 500"), "--checkout", str(checkout)
    )
    (typo,) = checks["SB010"]["findings"]  # the checkout's base_train.py, though the job runs /cluster/me/...
    assert "--save-evry" in typo["message"] and "--save-every" in typo["message"], typo["message"]


def test_the_gpu_count_slurm_sets_decides_a_fallback_branch_after_a_conda_hook(tmp_path, cli):
    body = (
        "#!/bin/bash\n#SBATCH --gpus-per-node=5\n#SBATCH --time=04:00:00\nset -euo pipefail\nexport OMP_NUM_THREADS=1\n"
        'CONDA_BASE="${CONDA_BASE:-$HOME/miniconda3}"\n'
        'if [ -f "$CONDA_BASE/etc/profile.d/conda.sh" ]; then\n'
        '  source "$CONDA_BASE/etc/profile.d/conda.sh"\n  conda activate train\nfi\n'
        'NGPUS="${SLURM_GPUS_ON_NODE:-}"\n'
        'if ! [[ "$NGPUS" =~ ^[0-9]+$ ]]; then\n'
        "  NGPUS=\"$(python -c 'import torch; print(torch.cuda.device_count())')\"\nfi\n"
        'if [ -z "$NGPUS" ] || [ "$NGPUS" -le 0 ]; then\n  NGPUS="4"\nfi\n'
        'torchrun --standalone --nproc_per_node="$NGPUS" -m scripts.base_train -- --depth=4\n'
    )
    report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    assert not checks["SB005"]["findings"], checks["SB005"]  # was "starts 4 processes ... requests 5"
    assert report["plan"]["world_size"] == 5, report["plan"]["world_size"]


def test_a_base_dir_set_only_when_unset_is_no_overwrite(tmp_path, cli):
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=04:00:00\nset -e\nexport OMP_NUM_THREADS=1\n"
        'if [ -z "${NANOCHAT_BASE_DIR:-}" ]; then\n  export NANOCHAT_BASE_DIR="$HOME/.cache/nanochat"\nfi\n'
        "python -m scripts.base_train --depth=4\n"
    )
    (tmp_path / "home").mkdir()
    _report, checks = check_script(cli, tmp_path, body, "--profile", "argparse", env={"NANOCHAT_BASE_DIR": ""})
    (home,) = checks["ENV003"]["findings"]
    assert "a conditional assignment" in home["message"] and "overwritten" not in home["message"], home["message"]


def test_a_run_name_defaulting_to_text_and_a_date_is_a_named_run(tmp_path, cli):
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=04:00:00\nset -e\nexport OMP_NUM_THREADS=1\n"
        'WANDB_RUN="${WANDB_RUN:-fineweb-multinode-run-$(date +%Y%m%d-%H%M)}"\n'
        'python -m scripts.base_train --depth=4 --run="$WANDB_RUN"\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    assert not checks["ENV001"]["findings"], checks["ENV001"]  # was "wandb logging is off (run = dummy ...)"
    assert checks["ENV002"]["findings"], checks["ENV002"]  # a named run with no credentials starts wandb


def test_a_relative_script_with_no_cd_is_found_in_the_checkout_given(tmp_path, cli):
    checkout = tmp_path / "nanochat"
    for d in ("nanochat", "scripts", "runs"):
        (checkout / d).mkdir(parents=True)
    (checkout / "scripts" / "base_train.py").write_text("import argparse\n")
    (checkout / "runs" / "speedrun.sh").write_text(
        "#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=4\n"
    )
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:4\n#SBATCH --time=04:00:00\nexport OMP_NUM_THREADS=1\nbash runs/speedrun.sh\n"
    )
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    report, checks = check_script(cli, jobs, body, "--checkout", str(checkout), "--profile", "argparse")
    assert not checks["SB022"]["findings"], checks["SB022"]  # was "runs runs/speedrun.sh, which does not exist"
    assert [p["name"] for p in report["plan"]["phases"]] == ["base"], report["plan"]
    _report, checks = check_script(
        cli, jobs, body, "--profile", "argparse"
    )  # no checkout: submitted from here, it fails
    assert checks["SB022"]["findings"], checks["SB022"]


def test_a_near_miss_of_a_base_eval_flag_is_told_without_a_checkout(tmp_path, cli):
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=04:00:00\nset -e\nexport OMP_NUM_THREADS=1\n"
        "python -m scripts.base_eval --model-tag=d20 --max-per-tsk=16 --device-batch-size=8\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    (typo,) = checks["SB010"]["findings"]  # the era's base_eval flags are known now (the trainer's only, before)
    assert "--max-per-tsk" in typo["message"] and "max-per-task" in typo["message"], typo["message"]


def test_what_a_script_preflight_cannot_read_sets_is_not_told_unset(tmp_path, cli):
    # a fork's submit script: cd to the cluster's checkout, then `bash runs/speedrun_myrun.sh`, which sets the base dir,
    # OMP_NUM_THREADS and the run name itself; from here it cannot be read (SB020 says so)
    body = (
        "#!/bin/bash\n#SBATCH --gpus=4\n#SBATCH --time=08:00:00\n"
        "cd /data/scratch/someone/nanochat\nbash runs/speedrun_myrun.sh\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid", env={"NANOCHAT_BASE_DIR": ""})
    assert checks["SB020"]["findings"], checks["SB020"]
    for code in ("ENV001", "ENV003", "ENV004"):  # were findings about variables the hidden script sets
        assert checks[code]["status"] == "skip" and "cannot read here" in checks[code]["reason"], checks[code]
