"""Shapes from a twelfth round of public forks' batch scripts (written here in our own words)."""

from __future__ import annotations

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=04:00:00\nset -euo pipefail\n"


def _checkout(root):
    for d in ("nanochat", "scripts"):
        (root / d).mkdir(parents=True)
    (root / "scripts" / "base_train.py").write_text("import argparse\n")
    (root / "scripts" / "tok_train.py").write_text("import argparse\n")
    return root


def test_a_job_run_from_the_submit_directory_is_judged_in_the_checkout_given(tmp_path, cli):
    # `cd ${SLURM_SUBMIT_DIR}` then `python -m scripts...`: `preflight check --checkout DIR` run from elsewhere takes
    # the job to be submitted from that checkout (it said "No module named" for the directory preflight ran in)
    checkout = _checkout(tmp_path / "nanochat")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    body = HEAD + "cd ${SLURM_SUBMIT_DIR}\npython -m scripts.tok_train\npython -m scripts.base_train --depth=4\n"
    _report, checks = check_script(cli, jobs, body, "--checkout", str(checkout), "--profile", "current")
    assert not checks["SB018"]["findings"], checks["SB018"]
    # with no cd at all, the same
    _report, checks = check_script(
        cli,
        jobs,
        HEAD + "python -m scripts.base_train --depth=4\n",
        "--checkout",
        str(checkout),
        "--profile",
        "current",
    )
    assert not checks["SB018"]["findings"], checks["SB018"]
    # without --checkout the directory it runs in is where the job would be submitted from: it has no scripts/
    _report, checks = check_script(cli, jobs, body, "--profile", "current")
    (finding,) = checks["SB018"]["findings"]
    assert "No module named" in finding["message"], finding
    # a checkout that lacks the entry point still fails, and says where it looked
    (checkout / "scripts" / "tok_train.py").unlink()
    _report, checks = check_script(cli, jobs, body, "--checkout", str(checkout), "--profile", "current")
    (finding,) = checks["SB018"]["findings"]
    assert f"runs in {checkout}" in finding["message"] and "taken to be the checkout given" in finding["message"]


_ALTERNATIVES = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=12:00:00\nset -e\n"
    'DEVICE=cpu\nif command -v nvidia-smi >/dev/null 2>&1; then DEVICE=gpu; fi\nif [ "$DEVICE" == "gpu" ]; then\n'
    "    torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=dummy\n"
    'elif [ "${PARALLEL:-0}" -eq 1 ]; then\n'
    "    torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=4 --num-iterations=20 --run=dummy\n"
    "else\n"
    "    python -m scripts.base_train --depth=4 --num-iterations=20 --run=dummy\n"
    "fi\n"
)


def test_launches_in_branches_decided_at_run_time_are_alternatives_not_a_sweep(tmp_path, cli):
    # a GPU run, or else a CPU smoke test: one of them runs (it was planned as a sweep of 3 runs, their sum)
    report, _checks = check_script(cli, tmp_path, _ALTERNATIVES, "--profile", "current")
    plan = report["plan"]
    assert plan["depth"] == 20, plan
    base = next(p for p in plan["phases"] if p["name"] == "base")
    assert "sweep" not in (base.get("note") or ""), base
    assert any("different branches of an if/case" in a and "planned is line 8's" in a for a in plan["assumptions"])
    # the same launches one after the other are a sweep, as before
    sweep = _ALTERNATIVES.replace('elif [ "${PARALLEL:-0}" -eq 1 ]; then', 'fi\nif [ -n "$SLURM_JOB_ID" ]; then')
    report, _checks = check_script(cli, tmp_path, sweep.replace("else\n", 'fi\nif [ -n "$SLURM_NODEID" ]; then\n'))
    assert any("a sweep of 3 base_train runs" in a for a in report["plan"]["assumptions"]), report["plan"]


def test_a_base_dir_known_only_in_the_job_skips_the_tokenizer_as_it_skips_the_shards(tmp_path, cli):
    # TOK001 said "tokenizer.pkl and token_bytes.pt missing in /scratch/$(whoami)/nanochat-cache/tokenizer" while
    # the shard checks of the same report were skipped for that base dir
    body = (
        HEAD
        + 'export NANOCHAT_BASE_DIR="/scratch/$(whoami)/nanochat-cache"\n'
        + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4 --run=dummy\n"
    )
    report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    for code in ("TOK001", "DS001"):
        assert checks[code]["status"] == "skip", checks[code]
        assert "is known only when the job runs" in checks[code]["reason"], checks[code]


def test_a_missing_venv_without_set_e_does_not_end_the_job_it_runs_outside_it(tmp_path, cli):
    # SB022 said "the job fails there" for a script with no set -e: bash runs on, with the system's python
    body = "#!/bin/bash\n#SBATCH --gres=gpu:1\nsource .venv/bin/activate\npython -m scripts.base_train --depth=4\n"
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    (finding,) = checks["SB022"]["findings"]
    assert "with no set -e the job runs on outside the environment" in finding["message"], finding
    _report, checks = check_script(cli, tmp_path, body.replace("source", "set -e\nsource"), "--profile", "current")
    (finding,) = checks["SB022"]["findings"]
    assert "under set -e (line 3) the job fails there" in finding["message"], finding


def test_a_plan_of_a_script_that_exits_before_its_training_says_so(tmp_path, cli):
    # the plan read "runs no training phase preflight can see" while SB017 of the same report listed the launches
    body = (
        HEAD
        + 'if [ -z "$ROUND12_UNSET_GUARD" ]; then echo "set ROUND12_UNSET_GUARD" >&2; exit 1; fi\n'
        + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4 --run=dummy\n"
    )
    (tmp_path / "job.sh").write_text(body)
    proc = cli("preflight", "check", "job.sh", "--profile", "current", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert "the script exits at line 5 (`exit 1`) before its first launch (line 6)" in proc.stdout, proc.stdout


def test_a_script_for_ascend_npus_or_amd_gpus_says_the_estimates_are_not_theirs(tmp_path, cli):
    body = (
        "#!/bin/bash\nset -e\nif npu-smi info >/dev/null 2>&1; then DEVICE=npu; fi\n"
        "torchrun --nproc_per_node=16 -m scripts.base_train -- --depth=12 --run=dummy\n"
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "current")
    (note,) = [a for a in report["plan"]["assumptions"] if "Ascend" in a]
    assert "runs on Ascend NPUs (line 3: npu-smi)" in note and "not theirs" in note, note
    report, _checks = check_script(cli, tmp_path, body.replace("npu-smi info", "rocm-smi"), "--profile", "current")
    (note,) = [a for a in report["plan"]["assumptions"] if "AMD" in a]
    assert "runs on AMD GPUs (ROCm) (line 3: rocm-smi)" in note, note
    report, _checks = check_script(cli, tmp_path, body.replace("npu-smi info", "nvidia-smi"), "--profile", "current")
    assert not [a for a in report["plan"]["assumptions"] if "Ascend" in a], report["plan"]["assumptions"]
