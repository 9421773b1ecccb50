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
    from preflight.plan import world_size_from
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
