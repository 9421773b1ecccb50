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


# base_train from 2026: the ratio counts the block matrices + lm_head, the batch is auto-sized (a checkout's own
# base_train says which; written here as the two lines that decide it)
_HORIZON_TRAIN = (
    "import argparse, math\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--depth", type=int, default=20)\n'
    'parser.add_argument("--max-seq-len", type=int, default=2048)\n'
    'parser.add_argument("--device-batch-size", type=int, default=32)\n'
    'parser.add_argument("--total-batch-size", type=int, default=-1)\n'
    'parser.add_argument("--target-param-data-ratio", type=float, default=10.5)\n'
    "args = parser.parse_args()\n"
    "counts = model.num_scaling_params()\n"
    "scaling_params = counts['transformer_matrices'] + counts['lm_head']\n"
    "total_batch_size = 2 ** round(math.log2(predicted_batch_size))\n"
)


def _tiny(cli, tmp_path, checkout_train: str | None):
    # a d4 smoke run with a 32,768 vocab and ratio 5, as a public fork's tiny speedrun has it
    if checkout_train is not None:
        (tmp_path / "co" / "scripts").mkdir(parents=True)
        (tmp_path / "co" / "nanochat").mkdir()
        (tmp_path / "co" / "nanochat" / "common.py").write_text("")
        (tmp_path / "co" / "scripts" / "base_train.py").write_text(checkout_train)
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\n#SBATCH --time=01:00:00\nset -euo pipefail\n"
        "python -m scripts.tok_train --vocab-size=32768\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=4 --max-seq-len=256 "
        "--target-param-data-ratio=5 --run=dummy\n"
    )
    extra = ("--checkout", str(tmp_path / "co")) if checkout_train is not None else ("--profile", "current")
    report, _checks = check_script(cli, tmp_path, body, *extra)
    return report["plan"]


def test_the_checkouts_base_train_decides_what_the_ratio_counts_and_the_batch(tmp_path, cli):
    plan = _tiny(cli, tmp_path, _HORIZON_TRAIN)
    # scaling params of d4 at vocab 32,768: 12 x 4 x 256^2 + 32,768 x 256 = 11,534,336; x 5 = 57,671,680 tokens;
    # batch 2^19 x (11,534,336 / 110,100,480)^0.383 = 220,9xx -> 2^18
    assert plan["total_batch_size"] == 262144, plan
    assert plan["iterations"] == 220, plan  # 57,671,680 // 262,144
    old = _HORIZON_TRAIN.replace("counts['transformer_matrices'] + counts['lm_head']", "counts['total']").replace(
        "2 ** round(math.log2(predicted_batch_size))", "args.total_batch_size"
    )
    plan = _tiny(cli, tmp_path / "old", old.replace("default=-1)", "default=524288)"))
    # every parameter (wte too: 19,922,944 x 5) at 524,288 a step: an earlier base_train's own count
    assert plan["total_batch_size"] == 524288 and plan["iterations"] == 190, plan


def test_without_a_checkout_the_era_profile_decides(tmp_path, cli):
    plan = _tiny(cli, tmp_path, None)  # the current era: both rules, in every commit of it
    assert (plan["total_batch_size"], plan["iterations"]) == (262144, 220), plan
