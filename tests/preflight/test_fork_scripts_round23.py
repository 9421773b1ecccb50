"""Shapes from a twenty-third round of public forks' job scripts (written here in our own words): an exit check one
line too late, a setup file's own `eval`, a `| tee` into a directory that is not there, and logs relative to the
checkout the job is submitted from."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\n"
T = "torchrun --standalone --nproc_per_node=8 -m"


def test_an_exit_check_after_an_echo_reads_the_echos_status(tmp_path, cli):
    # `torchrun ...; echo "base done"; if [ $? -ne 0 ]`: the test reads echo's 0; SB003 said "no per-step exit
    # checks" without saying that the one written there reads the wrong command
    body = (
        f"{HEAD}{T} scripts.base_train -- --depth=4\n"
        'echo "base done"\n'
        "if [ $? -ne 0 ]; then echo failed; exit 1; fi\n"
        f"{T} scripts.mid_train\n"
        "if [ $? -ne 0 ]; then exit 1; fi\n"
        f"{T} scripts.chat_sft\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    (found,) = checks["SB003"]["findings"]
    assert (
        "the `$?` test at line 6 reads the status of `echo` at line 5, not that of `scripts.base_train`"
        in (found["message"])
    ), found
    assert found["fix"].startswith("move the `$?` test to right after line 4"), found

    # right after the launch it is the launch's: no finding
    fixed = body.replace('echo "base done"\n', "").replace("echo failed; exit 1", 'echo "base failed"; exit 1')
    _report, checks = check_script(cli, tmp_path, fixed)
    assert checks["SB003"]["status"] == "pass", checks["SB003"]


def test_a_sourced_setup_files_own_eval_is_no_hidden_training(tmp_path, cli):
    # `source ~/.bashrc` whose `eval "$(pyenv init -)"` was "training-not-visible" in a script that runs a fork's
    # own program (no nanochat entry point to see)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text('export PYENV_ROOT="$HOME/.pyenv"\neval "$(pyenv init -)"\n')
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\nsource ~/.bashrc\n"
        'torchrun --nproc_per_node=2 "$REPO_DIR/finetune_gsm8k.py" --model default\n'
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB020"]["status"] == "pass", checks["SB020"]

    # the script's own `eval "$CMD"` still is one
    _report, checks = check_script(cli, tmp_path, body + 'CMD=$(cat cmd.txt)\neval "$CMD"\n')
    (found,) = checks["SB020"]["findings"]
    assert found["location"]["line"] == 7, found


def test_a_tee_into_a_missing_directory_fails_the_job_under_set_e_without_pipefail(tmp_path, cli):
    # `set -e` (no pipefail) and `torchrun ... | tee cache/train.log` with no cache/: the pipeline's status is tee's,
    # 1 once training ends; SB034 said only "tee writes nothing to it"
    body = (
        "#!/bin/bash\nset -e\n"
        'export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-cache}"\n'
        'torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=4 2>&1 | tee "$NANOCHAT_BASE_DIR/train.log"\n'
    )
    _report, checks = check_script(cli, tmp_path, body, env={"NANOCHAT_BASE_DIR": ""})
    (found,) = checks["SB034"]["findings"]
    assert (
        "exits 1 when the pipeline ends, which is the pipeline's status: `set -e` ends the job there"
        in (found["message"])
    ), found


def test_a_relative_log_path_is_the_checkout_givens_not_where_preflight_runs(tmp_path, cli):
    # `#SBATCH --output=logs/run.out` in a 2-node job checked with --checkout: FS003 joined the path to the directory
    # preflight ran in, while SB004 (and sbatch, submitted from the checkout) read it in the checkout
    checkout = tmp_path / "co"
    (checkout / "logs").mkdir(parents=True)
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --gres=gpu:4\n#SBATCH --output=logs/run.out\nset -e\n"
        "srun torchrun --nnodes=2 --nproc_per_node=4 -m scripts.base_train -- --depth=4\n"
    )
    env = {"HOME": str(tmp_path / "home"), "NANOCHAT_BASE_DIR": "/shared/nanochat"}
    proc = cli(
        "preflight", "check", str(script), "--checkout", str(checkout), "--format", "json", cwd=Path("/"), env=env
    )
    checks = {c["code"]: c for c in json.loads(proc.stdout)["checks"]}
    assert str(checkout).startswith("/tmp/")  # the checkout is on node-local storage here, / is not
    (found,) = checks["FS003"]["findings"]
    assert "--output=logs/run.out on node-local storage (/tmp)" in found["message"], found


def test_a_wrapped_jobs_gpus_are_its_sbatch_options_and_a_submitted_script_is_named_right(tmp_path, cli):
    # an ablation loop of `sbatch --gres=gpu:4 --wrap="... torchrun --nproc_per_node=8 ..."`: the plan said "check
    # that one: preflight check --wrap=cd ...", and nothing compared 4 GPUs with 8 processes
    body = (
        "#!/bin/bash\nfor lr in 0.01 0.02; do\n"
        '  sbatch --gres=gpu:4 --time=02:00:00 --job-name=abl_$lr --wrap="cd $HOME/nanochat && '
        'torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --matrix_lr=$lr"\n'
        "done\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    (found,) = checks["SB005"]["findings"]
    assert found["message"] == (
        "the job submitted at line 3 (sbatch --wrap) starts torchrun --nproc_per_node=8, but its options request "
        "4 GPU(s) per node (--gres=gpu:4)"
    ), found
    assert "submits a job whose command is inline (line 3: sbatch --wrap 'cd $HOME/nanochat" in json.dumps(report)

    # `sbatch -p gpu train.sh`: the job's script is train.sh, not -p's value
    report, _checks = check_script(cli, tmp_path, "#!/bin/bash\nsbatch -p gpu --time 01:00:00 train.sh 8\n")
    assert "check that one: preflight check train.sh" in json.dumps(report), report["plan"]


PBS_JOB = (
    "#!/bin/bash\n#PBS -N nc\n#PBS -l select=1:ncpus=16:ngpus=2:mem=64gb\n#PBS -l walltime=01:00:00\n#PBS -q gpu\n"
    "set -euo pipefail\ncd $PBS_O_WORKDIR\n"
    "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=20\n"
)


def test_a_pbs_jobs_resources_are_read_from_its_pbs_lines(tmp_path, cli):
    # a PBS Pro job (MetaCentrum's `select=1:...:ngpus=1`): its GPUs and walltime were read from nowhere (no GPU
    # check, no time check), sbatch --test-only judged it, and $PBS_O_WORKDIR was "unbound" under set -u
    _report, checks = check_script(cli, tmp_path, PBS_JOB)
    (gpus,) = checks["SB005"]["findings"]
    assert "starts 4 processes per node, but the job requests 2 GPU(s) per node" in gpus["message"], gpus
    (time,) = checks["SB006"]["findings"]
    assert time["message"].startswith("walltime=01:00:00 is shorter than the estimated"), time
    assert time["fix"].startswith("#PBS -l walltime="), time
    assert checks["SB014"]["status"] == "skip" and "a PBS job" in checks["SB014"]["reason"], checks["SB014"]
    assert checks["SB035"]["status"] == "pass", checks["SB035"]

    # Torque's nodes=N:ppn=P:gpus=G is the same request
    torque = PBS_JOB.replace("select=1:ncpus=16:ngpus=2:mem=64gb", "nodes=1:ppn=8:gpus=4")
    _report, checks = check_script(cli, tmp_path, torque)
    assert checks["SB005"]["status"] == "pass", checks["SB005"]


def test_a_submitter_names_the_script_it_submits_with_qsub_or_in_a_substitution(tmp_path, cli):
    # `jobid=$(qsub -v "...,SEED=$seed" -N name "${PBS_SCRIPT}")` in a loop, and `JID=$(sbatch --parsable ...)`:
    # both planned "no training phase preflight can see"
    body = (
        '#!/bin/bash\nPBS_SCRIPT="train.pbs"\nfor seed in 1 2 3; do\n'
        '  jobid=$(qsub -v "TAG=x,SEED=${seed}" -N "nc-${seed}" "${PBS_SCRIPT}")\ndone\n'
    )
    report, _checks = check_script(cli, tmp_path, body)
    assert "it submits another job (line 4: qsub train.pbs); check that one: preflight check train.pbs" in (
        json.dumps(report)
    ), report["plan"]
    report, _checks = check_script(cli, tmp_path, "#!/bin/bash\nJID=$(sbatch --parsable -p gpu train.sh)\n")
    assert "(line 2: sbatch train.sh); check that one: preflight check train.sh" in json.dumps(report)
    # `sbatch <<EOF ... EOF`: the job is data on sbatch's standard input, not a --wrap
    heredoc = "#!/bin/bash\nsbatch --gres=gpu:1 <<EOF\n#!/bin/bash\ntorchrun -m scripts.base_train\nEOF\n"
    report, _checks = check_script(cli, tmp_path, heredoc)
    assert "a job it writes on sbatch's standard input (line 2: a here-document or a pipe)" in json.dumps(report)


def test_a_script_run_inside_a_container_from_a_bind_known_only_in_the_job_is_read_from_the_checkout(tmp_path, cli):
    # `apptainer run --nv --bind $VSC_SCRATCH/nanochat:/opt/nanochat IMG bash /opt/nanochat/run.sh`: the runner was
    # "a path in a container preflight cannot read", though the checkout given holds run.sh; and its
    # --run=$WANDB_RUN was "an empty run name" though the image's runscript sets WANDB_RUN
    checkout = tmp_path / "co"
    checkout.mkdir()
    (checkout / "run.sh").write_text(
        "#!/bin/bash\ncd /opt/nanochat\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=20 --run=$WANDB_RUN\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_eval\n"
    )
    body = (
        "#!/bin/bash\n#SBATCH --gpus-per-node=4\n#SBATCH --time=16:00:00\n"
        'apptainer run --nv --bind $VSC_SCRATCH/nanochat:/opt/nanochat "$SIF" bash /opt/nanochat/run.sh\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert checks["SB020"]["status"] == "pass", checks["SB020"]
    gpus = checks["SB005"]["findings"]  # what run.sh launches is checked now: its two launches
    assert [f["location"]["line"] for f in gpus] == [3, 4], gpus
    assert "starts 2 processes per node, but the job requests 4 GPU(s) per node" in gpus[0]["message"], gpus
    assert checks["ENV002"]["status"] == "skip" and "apptainer run" in checks["ENV002"]["reason"], checks["ENV002"]


def test_a_runner_script_is_not_tested_as_a_batch_job(tmp_path, cli):
    # `bash runs/run_gpt2_small.sh` (no #! line, no #SBATCH): SB014 ran sbatch --test-only on it and reported, fatal
    # at start, "This does not look like a batch script"
    body = (
        "export NANOCHAT_BASE_DIR=/scratch/u/nanochat\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB014"]["status"] == "skip" and "a runner script" in checks["SB014"]["reason"], checks["SB014"]


def test_hostile_pbs_lines_are_read_without_a_crash(tmp_path, cli):
    # a count of 5,000 digits (int() refuses it), a superscript digit ("²".isdigit() is true), 100,000 chunks
    body = (
        f"#!/bin/bash\n#PBS -l select={'9' * 5000}:ngpus=²\n#PBS -l nodes=²:gpus=9999999999999\n"
        f"#PBS -l select=1+{'1+' * 100000}\n#PBS -q\n#PBS -l\n"
        "torchrun --standalone --nproc_per_node=4 -m scripts.base_train\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    assert all(c["status"] != "error" for c in checks.values()), [c for c in checks.values() if c["status"] == "error"]
    assert checks["SB005"]["status"] in ("pass", "skip", "fail"), checks["SB005"]


def test_a_bound_path_never_leads_out_of_the_checkout_given(tmp_path, cli):
    # `bash /opt/nanochat//abs/path.sh` under `--bind $X/nanochat:/opt/nanochat`: the rest after the bind is absolute,
    # and joined to the checkout it named a file outside it, which was read as the job's runner
    checkout = tmp_path / "co"
    checkout.mkdir()
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/bash\ntorchrun --standalone --nproc_per_node=2 -m scripts.base_train\n")
    body = (
        "#!/bin/bash\n#SBATCH --gpus-per-node=4\n"
        f'apptainer exec --bind $VSC_SCRATCH/nanochat:/opt/nanochat "$SIF" bash /opt/nanochat/{outside}\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert checks["SB005"]["status"] != "fail", checks["SB005"]  # outside.sh was not read
