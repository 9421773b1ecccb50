"""Shapes from a sixteenth round of public forks' job scripts (written here in our own words): a quoted default
of WANDB_RUN, a run name a shell function computes, and a dashboard started in the background."""

from __future__ import annotations

from tests.clirun import check_script

_TRAIN = "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=12 --run=$WANDB_RUN\n"


def test_a_quoted_default_dummy_is_dummy(tmp_path, cli):
    # `WANDB_RUN=${WANDB_RUN:-"dummy"}`: bash removes the quotes; ENV002 took '"dummy"' for a named run and said the
    # phase would crash without wandb credentials
    body = '#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\nWANDB_RUN=${WANDB_RUN:-"dummy"}\n' + _TRAIN
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert checks["ENV002"]["status"] == "pass", checks["ENV002"]
    (off,) = checks["ENV001"]["findings"]
    assert off["message"].startswith("wandb logging is off (run = dummy;"), off


def test_a_run_name_the_job_computes_is_not_called_dummy(tmp_path, cli):
    # the run name is echoed by a shell function at run time (dummy only if WANDB_RUN says so): "wandb is off" was a
    # guess presented as a fact
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\n"
        'run_name() {\n    if [ "${WANDB_RUN:-}" = dummy ]; then echo dummy; else echo "sweep-$1"; fi\n}\n'
        'wb_run="$(run_name base)"\n'
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=12 --run=${wb_run}\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert checks["ENV001"]["status"] == "skip", checks["ENV001"]
    assert "the run name is computed when the job runs" in checks["ENV001"]["reason"], checks["ENV001"]
    assert checks["ENV002"]["status"] == "pass", checks["ENV002"]


def test_a_dashboard_in_the_background_is_not_a_download_nobody_waits_for(tmp_path, cli):
    # SB008's fix ("wait $PID") on a tensorboard would hang the job until its time limit
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\nexport WANDB_RUN=dummy\n"
        "nohup env PYTHONPATH=. uv run tensorboard --logdir runs --port 6006 >/tmp/tb.log 2>&1 &\n"
        "nvidia-smi dmon -s u -d 30 > gpu.log &\n" + _TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert checks["SB008"]["status"] == "pass", checks["SB008"]
    body = body.replace("nvidia-smi dmon -s u -d 30 > gpu.log &\n", "python -m nanochat.dataset -n 8 &\n")
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (late,) = checks["SB008"]["findings"]
    assert late["message"].startswith("`python -m nanochat.dataset -n 8 &` runs in the background"), late


_NGPUS = (
    "#!/bin/bash\n#SBATCH --gpus-per-node=2\nset -e\nexport WANDB_RUN=dummy\n"
    'NGPUS="$(nvidia-smi -L | grep -c GPU)"\n'
    'if [ -z "$NGPUS" ] || [ "$NGPUS" -le 0 ]; then\n  NGPUS="4"\nfi\n'
    'if [ -f "$LATEST_FILE" ]; then\n  read -r TAG STEP < <(latest_checkpoint "$LATEST_FILE")\nfi\n'
    'torchrun --standalone --nproc_per_node="$NGPUS" -m scripts.base_train -- --depth=12\n'
)


def test_a_last_resort_gpu_count_is_not_the_count_the_job_uses(tmp_path, cli):
    # NGPUS is counted on the node; 4 is used only where that count is empty: SB005 said the job starts 4 processes
    # on its 2 GPUs
    report, checks = check_script(cli, tmp_path, _NGPUS, "--profile", "classic")
    assert checks["SB005"]["status"] == "pass", checks["SB005"]
    assert [p["name"] for p in report["plan"]["phases"]] == ["base"], report["plan"]
    # the process substitution `< <(cmd "$X")` is a redirection, not a command whose program is "$X"
    assert checks["SB020"]["status"] == "pass", checks["SB020"]
    # a fallback over an empty value is the value (`NGPUS=""; [ -z "$NGPUS" ] && NGPUS=4`)
    body = _NGPUS.replace('NGPUS="$(nvidia-smi -L | grep -c GPU)"', 'NGPUS="${NGPUS_OVERRIDE:-}"')
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (mismatch,) = checks["SB005"]["findings"]
    assert "starts 4 processes per node, but the job requests 2 GPU(s)" in mismatch["message"], mismatch


def test_a_checkpoint_the_job_loads_is_named_where_its_base_dir_is_not_here(tmp_path, cli):
    # a mid-only job from a base d12 (MODEL_TAG=${MODEL_TAG:-"d12"}): checked on a laptop, FS006 only said the base
    # dir is not here; what the job needs there went unsaid
    body = (
        '#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nexport WANDB_RUN=dummy\nMODEL_TAG=${MODEL_TAG:-"d12"}\n'
        'python -m scripts.mid_train --model_tag="$MODEL_TAG" --device_batch_size=8\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic", env={"NANOCHAT_BASE_DIR": "/nowhere"})
    fs006 = checks["FS006"]
    assert fs006["status"] == "skip", fs006
    assert fs006["reason"].endswith("; the job loads base_checkpoints/d12 (scripts.mid_train, line 6)"), fs006
    # where the base dir is here, the same expanded tag is checked
    (tmp_path / "base" / "base_checkpoints" / "d12").mkdir(parents=True)
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (missing,) = checks["FS006"]["findings"]
    assert "loads base's checkpoint base_checkpoints/d12" in missing["message"], missing


def test_the_gpu_a_launchers_comment_names_is_the_plans_gpu(tmp_path, cli):
    # a launcher for "a dual 4090 rig" (torchrun, two processes, no SLURM): the plan assumed H100s, with their
    # memory and speed; a commented-out #SBATCH line names no GPU the job has
    body = (
        "#!/bin/bash\n# Convenience launcher for a full experiment on a dual 4090 rig.\n"
        "# #SBATCH --constraint=<A100|H100>\nset -e\nexport WANDB_RUN=dummy\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=12\n"
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "classic")
    plan = report["plan"]
    assert plan["gpu_name"] == "RTX 4090", plan["gpu_name"]
    assert any(a.startswith("RTX 4090 GPUs, as the script says (line 2:") for a in plan["assumptions"])
