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
