"""Real forks' batch scripts (reproduced in tests/preflight/fixtures/forks, see its README): each
wrapper gets a run plan and the checks that apply; each defect its finding; the corrected
script none of the new ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from preflight.testing import Scenario, run_scenario

FORKS = Path(__file__).resolve().parent / "fixtures" / "forks"
NEW = {"SB020", "SB021", "SB022", "SB023", "SB024", "SB025", "SB026"}


def _run(tmp_path, rel, *, cwd=".", select=None):
    """Check a fixture as the fork's user would: from the directory they submit in, hermetic env."""
    src = FORKS / rel
    root = tmp_path / "repo"
    shutil.copytree(src.parent if cwd == "." else FORKS / cwd, root)
    script_name = src.name if cwd == "." else str(src.relative_to(FORKS / cwd))
    sc = Scenario(
        script=(FORKS / rel).read_text(),
        script_name=script_name,
        env={"HOME": "{tmp}/home"},
        config={"profile": "classic"},
    )
    result = run_scenario(sc, root, select=select)
    return {f.code: f for c in result.checks for f in c.findings}, result


def test_nvidia_srun_bash_lc_phases_get_checks_and_the_leaked_key(tmp_path):
    found, result = _run(tmp_path, "nvidia_srun_bash_lc.sbatch")
    assert "SB003" in found and "scripts.mid_train" in found["SB003"].message  # no set -e, now visible
    assert "SB021" in found and "WANDB_API_KEY" in found["SB021"].message
    assert "SB020" not in found  # every phase behind `srun bash -lc` is visible


def test_uppmax_timeout_trap_defects(tmp_path):
    found, _ = _run(tmp_path, "uppmax_timeout_trap.sbatch")
    assert {"SB016", "SB024", "SB025"} <= set(found)
    assert "172800s" in found["SB025"].message and "48:00:00" in found["SB025"].message
    assert "COMPLETED" in found["SB024"].message and found["SB024"].line == 23
    assert "TERM" in found["SB016"].message and "foreground" in found["SB016"].message


def test_looped_machine_config_exists_only_as_template(tmp_path):
    found, _ = _run(tmp_path, "looped/slurm/chat_sft.sbatch", cwd="looped")
    assert "SB022" in found
    assert "machine_config.sh.template" in found["SB022"].message
    assert found["SB022"].fix.startswith("cp slurm/machine_config.sh.template slurm/machine_config.sh")


def test_multinode_job_running_single_node_speedrun(tmp_path):
    found, _ = _run(tmp_path, "multinode/job.sbatch")
    assert "SB023" in found and "3 node(s) stay idle" in found["SB023"].message


def test_multinode_plan_counts_one_node(tmp_path):
    from preflight.plan_launches import world_size_from
    from preflight.script import parse_script
    from preflight.script.jobenv import JobEnv

    script = parse_script(FORKS / "multinode" / "job.sbatch", cwd=FORKS / "multinode", environ={})
    job_env = JobEnv(env={}, sbatch={"nodes": "4", "gres": "gpu:8"}, sbatch_source={})
    inv = script.all_invocations[0]
    assert world_size_from(script, job_env, inv, {})[:2] == (8, 1)  # not 8 x 4


def test_launcher_array_fork_gets_a_plan_and_no_new_findings(tmp_path):
    found, _ = _run(tmp_path, "launcher_array.sbatch")
    assert not NEW & set(found), {c: found[c].message for c in NEW & set(found)}
    from preflight.script import parse_script

    m = parse_script(FORKS / "launcher_array.sbatch", environ={})
    assert [(i.launcher, i.module, i.nproc_per_node) for i in m.invocations] == [
        ("torchrun", "scripts.base_train", "4")
    ]


def test_clean_wrapper_script_gets_none_of_the_new_findings(tmp_path):
    found, _ = _run(tmp_path, "clean_wrappers.sbatch")
    assert not NEW & set(found), {c: found[c].message for c in NEW & set(found)}
    assert "SB003" not in found


@pytest.mark.parametrize(
    "rel",
    [
        "nvidia_srun_bash_lc.sbatch",
        "uppmax_timeout_trap.sbatch",
        "launcher_array.sbatch",
        "clean_wrappers.sbatch",
        "multinode/job.sbatch",
        "flag_array_fp8.sh",
        "sweep_tee.sbatch",
    ],
)
def test_every_fork_script_has_a_visible_training_phase(rel):
    from preflight.script import parse_script

    m = parse_script(FORKS / rel, cwd=(FORKS / rel).parent, environ={"HOME": "/home/u"})
    assert any(i.module and "_train" in i.module or i.module == "scripts.chat_sft" for i in m.all_invocations), rel


def test_looped_layout_cd_home_then_uv_sync_then_source(tmp_path):
    """The fork's own order: `cd ~/repo`, `uv sync`, `source .venv/bin/activate` (made by uv sync: fine),
    `source slurm/machine_config.sh` (only the template exists: the finding)."""
    body = (
        "#!/bin/bash\ncd ~/looped_nanochat\nuv sync\nsource .venv/bin/activate\n\n"
        "source slurm/machine_config.sh\nvalidate_config || exit 1\n"
        "torchrun --standalone --nproc_per_node=1 -m scripts.chat_sft -- --run=s20\n"
    )
    sc = Scenario(
        script=body,
        env={"HOME": "{tmp}/home"},
        config={"profile": "classic"},
        files={"home/looped_nanochat/slurm/machine_config.sh.template": "export X=1\n"},
    )
    result = run_scenario(sc, tmp_path, select=["SB022"])
    (check,) = result.checks
    assert [f.line for f in check.findings] == [6]
    assert "machine_config.sh.template" in check.findings[0].message


def test_wandb_guard_fork_exits_before_training_unless_wandb_run_is_set(tmp_path):
    found, result = _run(tmp_path / "a", "wandb_guard.sbatch")
    assert (
        found["SB017"].line == 13 and "WANDB_RUN is not set in the environment sbatch passes" in found["SB017"].message
    )
    assert "scripts.base_train" in found["SB017"].message and "ENV001" not in found
    # with the run named where sbatch runs, the guard passes and every phase is planned
    src = FORKS / "wandb_guard.sbatch"
    root = tmp_path / "b" / "repo"
    shutil.copytree(src.parent, root)
    sc = Scenario(
        script=src.read_text(),
        script_name=src.name,
        env={"HOME": "{tmp}/home", "WANDB_RUN": "d20"},
        config={"profile": "classic"},
    )
    ctx = sc.context(root)
    assert [i.module for i in ctx.get("script").invocations][1:4] == [
        "scripts.base_train",
        "scripts.mid_train",
        "scripts.chat_sft",
    ]
    result = run_scenario(sc, root)
    found = {f.code: f for c in result.checks for f in c.findings}
    assert "SB017" not in found and "SB003" in found  # no set -e: that one stays


def test_flag_array_with_a_conditional_append_keeps_every_flag():
    from preflight.script import parse_script

    m = parse_script(FORKS / "flag_array_fp8.sh", environ={})
    (inv,) = m.invocations
    assert [f.raw for f in inv.flags] == [
        "--run=dummy",
        "--depth=24",
        "--device-batch-size=32",
        "--save-every=10",
        "--fp8",
        "--fp8-recipe=tensorwise",
    ]
    assert inv.via.startswith("run_step")


def test_apptainer_runner_is_followed_through_its_bind_and_gets_the_base_dir(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(FORKS / "apptainer", root)
    sc = Scenario(script=(FORKS / "apptainer" / "job.sbatch").read_text(), env={"HOME": "{tmp}/home", "PWD": str(root)})
    ctx = sc.context(root)
    m = ctx.get("script")
    assert [(i.module, Path(i.file).name) for i in m.all_invocations] == [("scripts.base_train", "run_560M.sh")]
    assert ctx.get("base_dir").path == root / "cache"


def test_sweep_through_a_teed_function_is_swallowed_and_its_log_discarded(tmp_path):
    found, result = _run(tmp_path, "sweep_tee.sbatch")
    assert "`| tee` (line 12) without `set -o pipefail`" in found["SB024"].message
    assert "SB028" in found and "--output=/dev/null" in found["SB028"].message
    from preflight.script import parse_script

    m = parse_script(FORKS / "sweep_tee.sbatch", environ={})
    assert [i.flag("run").value for i in m.invocations] == ["sweep_a", "sweep_b"]
    assert [f.raw for f in m.invocations[0].flags][-1] == "--matrix_lr=0.03"


def test_unclosed_retry_loop_is_reported_with_bashs_message(tmp_path):
    found, _ = _run(tmp_path, "npu_retry_unclosed.sh")
    assert found["SB015"].line == 6 and "syntax error: unexpected end of file" in found["SB015"].message
    assert "`for` (line 6), `if` (line 8)" in found["SB015"].message


def test_a_script_of_a_forks_own_entry_points_is_dated_by_its_flag_style():
    # a public fork's SFT job runs only its own scripts.pre1900_sft: its dash flags still say 2026-01-13 or later
    from preflight.era import guess_era
    from preflight.script import parse_text

    script = parse_text(
        "#!/bin/bash\n#SBATCH --gpus-per-node=8\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.pre1900_sft -- --model-tag d34 "
        "--device-batch-size=4 --total-batch-size=65536 --run=sft_v5\n"
    )
    guess = guess_era(script)
    assert guess is not None and guess.profile != "classic", guess  # was "classic": nothing was read
    assert "dash-style flags" in guess.evidence[0]
    underscored = parse_text("#!/bin/bash\npython -m scripts.my_eval -- --model_tag=d34\n")
    assert guess_era(underscored) is None  # no dash: the fork's flags say nothing
