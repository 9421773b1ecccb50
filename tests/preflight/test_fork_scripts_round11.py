"""Shapes from an eleventh round of public forks' batch scripts (written here in our own words): torchrun's options
and the trainer's flags kept in bash arrays (one of them prepended to itself, one holding a rendezvous endpoint known
only in the job), and a default nested three deep."""

from __future__ import annotations

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:4\n#SBATCH --time=12:00:00\nset -euo pipefail\nexport OMP_NUM_THREADS=1\n"

_ARRAYS = (
    'NNODES="${NNODES:-${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}}"\n'
    "LAUNCH=(--nproc_per_node=4)\n"
    'if [ "$NNODES" -gt 1 ]; then\n'
    '    LAUNCH+=(--nnodes="$NNODES" --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:29500")\n'
    "else\n"
    '    LAUNCH=(--standalone "${LAUNCH[@]}")\n'
    "fi\n"
    'TRAIN=(--depth=12 --run="$RUN_NAME")\n'
    'torchrun "${LAUNCH[@]}" -m scripts.base_train -- "${TRAIN[@]}"\n'
)


def test_a_launch_whose_options_are_arrays_is_planned(tmp_path, cli):
    # one node: the else branch prepends --standalone to the array itself
    report, _checks = check_script(cli, tmp_path, HEAD + 'RUN_NAME="${RUN_NAME:-dummy}"\n' + _ARRAYS)
    plan = report["plan"]
    assert plan["depth"] == 12, plan
    assert [p["name"] for p in plan["phases"] if p["name"] == "base"], plan["phases"]


def test_a_per_node_script_with_a_rendezvous_array_is_one_multi_node_launch(tmp_path, cli):
    # the batch script asks for two nodes and runs the per-node script once per node; the rendezvous endpoint in the
    # array is known only in the job, the rest of the launch is not
    (tmp_path / "node.sh").write_text("#!/bin/bash\nset -euo pipefail\nRUN_NAME=dummy\n" + _ARRAYS)
    body = (
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gres=gpu:4\n#SBATCH --time=12:00:00\n"
        'export NNODES="${NNODES:-${SLURM_JOB_NUM_NODES:-2}}"\nexport MASTER_ADDR=$(hostname)\n'
        f"srun --ntasks-per-node=1 bash {tmp_path}/node.sh\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    plan = report["plan"]
    assert plan["depth"] == 12 and [p for p in plan["phases"] if p["name"] == "base"], plan
    assert not checks["SB030"]["findings"], checks["SB030"]  # --standalone is only in the branch not taken


def test_a_default_nested_three_deep_is_read(tmp_path, cli):
    body = (
        HEAD + 'DEPTH="${DEPTH:-${MODEL_DEPTH:-${D:-26}}}"\n'
        'torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth="$DEPTH" --run=dummy\n'
    )
    report, _checks = check_script(cli, tmp_path, body)
    assert report["plan"]["depth"] == 26, report["plan"]


_LONE = (
    "#!/bin/bash\n#SBATCH --gres=gpu:4\n#SBATCH --time=12:00:00\nexport OMP_NUM_THREADS=1\n"
    "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=12 --run=dummy 2>&1 | tee train.log\n"
    'echo "Training complete! Chat with: python -m scripts.chat_cli"\n'
)


def test_one_launch_then_an_echo_ends_completed_whatever_the_launch_did(tmp_path, cli):
    _report, checks = check_script(cli, tmp_path, _LONE)
    (masked,) = checks["SB003"]["findings"]
    assert masked["severity"] == "warning" and masked["location"]["line"] == 5, masked
    assert "the job's exit status is the last command's" in masked["message"], masked["message"]
    assert "(the last: `echo`, line 6)" in masked["message"] and "set -o pipefail" in masked["message"], masked
    for fixed in (
        _LONE.replace("2>&1 | tee train.log", "|| exit 1"),  # (with the pipe, `|| exit 1` reads tee's status)
        _LONE.replace("export OMP", "set -eo pipefail\nexport OMP"),
        _LONE.rsplit("echo", 1)[0],  # the launch is the job's last command: its status is the job's
    ):
        _report, checks = check_script(cli, tmp_path, fixed)
        assert not checks["SB003"]["findings"], (fixed, checks["SB003"])


def test_a_batch_computed_with_shell_arithmetic_is_planned_as_bash_computes_it(tmp_path, cli):
    # 6 GPUs x 7 rows x 2048 tokens = 86,016 a step; 393,216 / 86,016 = 4 accumulation steps; the guard that raises
    # it to 1 does not run
    body = HEAD.replace("gpu:4", "gpu:6") + (
        "NGPU=6\nB=7\nT=2048\nWORLD=$((B * T * NGPU))\nACCUM=$((393216 / WORLD))\n"
        "if [ $ACCUM -lt 1 ]; then ACCUM=1; fi\nTOTAL=$((ACCUM * WORLD))\n"
        "torchrun --standalone --nproc_per_node=$NGPU -m scripts.base_train -- --depth=12 --device_batch_size=$B "
        "--total_batch_size=$TOTAL --num_iterations=100 --run=dummy\n"
    )
    report, _checks = check_script(cli, tmp_path, body)
    plan = report["plan"]
    assert plan["total_batch_size"] == 344064 and plan["grad_accum"] == 4, plan


def test_an_or_inside_a_double_bracket_test_is_the_test_not_a_command(tmp_path, cli):
    body = HEAD + (
        'STAGE="${STAGE:-all}"\n'
        'if [[ "$STAGE" == "all" || "$STAGE" == "train" ]]; then\n'
        "    torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=12 --run=dummy\nfi\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    assert not checks["SB020"]["findings"], checks["SB020"]  # was: "the command is $STAGE"
    assert [p for p in report["plan"]["phases"] if p["name"] == "base"], report["plan"]


_GUARDED = (
    "#!/bin/bash\n"
    'if [ -z "$ENV_PREFIX" ]; then echo "the launcher sets ENV_PREFIX"; exit 1; fi\n'
    'source "$ENV_PREFIX/bin/activate"\n'
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --run=dummy\n"
)


def test_a_guard_in_a_script_something_else_runs_is_a_warning_for_its_caller(tmp_path, cli):
    # no #SBATCH lines: an MPI launcher's wrapper, whose caller sets the variable; this shell's lack of it is no proof
    _report, checks = check_script(cli, tmp_path, _GUARDED)
    (guard,) = checks["SB017"]["findings"]
    assert guard["severity"] == "warning" and "whatever runs it must set it" in guard["message"], guard
    _report, checks = check_script(cli, tmp_path, _GUARDED.replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH -N 1\n"))
    (guard,) = checks["SB017"]["findings"]
    assert guard["severity"] == "error" and "the environment sbatch passes" in guard["message"], guard
