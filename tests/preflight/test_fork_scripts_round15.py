"""Shapes from a fifteenth round of public forks' job scripts, checked against what their committed logs show
(written here in our own words)."""

from __future__ import annotations

from tests.clirun import check_script


def test_sft_and_rl_take_their_own_steps_not_base_trainings_batch(tmp_path, cli):
    # a fork's logs: SFT ran 701 steps and RL "Calculated number of steps: 467"; the plan said 88 and 934 (the era's
    # typical step counts divided by base training's total batch)
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft -- --run=dummy\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_rl -- --run=dummy\n"
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "classic")
    steps = {p["name"]: p["steps"] for p in report["plan"]["phases"]}
    assert (steps["sft"], steps["rl"]) == (700, 467), steps


_DEPTH_REQUIRED = (
    "#!/bin/bash\n#SBATCH --gres=gpu:4\nset -e\n"
    'DEPTH="${SLURM_ARRAY_TASK_ID:-${DEPTH:?set DEPTH, e.g. DEPTH=24}}"\n'
    "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=$DEPTH\n"
)


def test_a_required_variable_in_an_assignment_stops_the_job_unless_set(tmp_path, cli):
    # the header says `DEPTH=24 sbatch ...`: submitted without it, bash stops at line 4; SB017 passed and the plan
    # showed a d20 nobody asked for
    report, checks = check_script(cli, tmp_path, _DEPTH_REQUIRED, "--profile", "no-mid")
    (sb017,) = checks["SB017"]["findings"]
    assert sb017["message"].endswith(
        "stops bash when DEPTH is empty or unset (DEPTH is not set in the environment sbatch passes to the job)"
    ), sb017["message"]
    assert sb017["fix"] == "set DEPTH before sbatch (DEPTH=... sbatch job.sh)", sb017["fix"]
    assert report["plan"]["phases"] == []
    report, checks = check_script(cli, tmp_path, _DEPTH_REQUIRED, "--profile", "no-mid", env={"DEPTH": "24"})
    assert checks["SB017"]["status"] == "pass" and report["plan"]["depth"] == 24, report["plan"]
    # an array job: each task's id is the depth, known only when it runs: no stop, and the plan says its depth is
    # a default
    array = _DEPTH_REQUIRED.replace("gpu:4\n", "gpu:4\n#SBATCH --array=20-24:4\n")
    report, checks = check_script(cli, tmp_path, array, "--profile", "no-mid")
    assert checks["SB017"]["status"] == "pass", checks["SB017"]["findings"]
    assert (
        "--depth=$DEPTH (script line 6) is known only when the job runs: this plan takes the default"
        in (report["plan"]["assumptions"])
    ), report["plan"]["assumptions"]


def test_a_required_variable_inside_a_set_ones_default_is_never_expanded(tmp_path, cli):
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nTAG=d12\n"
        'echo "tag: ${TAG:-${MODEL_TAG:?}}"\npython -m scripts.base_train --depth=12\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert checks["SB017"]["status"] == "pass", checks["SB017"]["findings"]
    _report, checks = check_script(cli, tmp_path, body.replace("TAG=d12\n", ""), "--profile", "classic")
    assert "stops bash when MODEL_TAG is empty or unset" in checks["SB017"]["findings"][0]["message"]


def test_an_sft_job_on_a_base_model_the_base_dir_does_not_hold(tmp_path, cli):
    # an SFT job (four forks' scripts): nothing checked that the base model it loads is there; the job would wait in
    # the queue, stop with FileNotFoundError, and (without set -e) run chat_eval on nothing
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft -- --model-tag=d24 --run=dummy\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_eval -- -i sft\n"
    )
    (tmp_path / "base" / "base_checkpoints" / "d12").mkdir(parents=True)
    (tmp_path / "base" / "base_checkpoints" / "d12" / "model_001000.pt").write_bytes(b"x")
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    (missing,) = checks["FS006"]["findings"]  # chat_eval -i sft loads what this job trains: nothing to say
    assert missing["location"]["line"] == 3, missing
    assert missing["message"].startswith(
        "scripts.chat_sft (sft) loads base's checkpoint base_checkpoints/d24, which the job does not train"
    ), missing["message"]
    (tmp_path / "base" / "base_checkpoints" / "d24").mkdir()
    (tmp_path / "base" / "base_checkpoints" / "d24" / "model_005742.pt").write_bytes(b"x")
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert checks["FS006"]["status"] == "pass", checks["FS006"]
