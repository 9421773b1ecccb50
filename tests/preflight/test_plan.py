"""The run plan reproduces nanochat's own numbers for the classic d20 speedrun."""

from __future__ import annotations

from pathlib import Path

from preflight.model_size import memory_estimate_bytes, model_shape, peak_flops
from preflight.plan import build_plan
from preflight.profiles import load_profile
from preflight.script import parse_script
from preflight.testing import Scenario, run_scenario

FIXTURES = Path(__file__).parent / "fixtures"


def test_classic_d20_numbers():
    plan = build_plan(load_profile("classic"), parse_script(FIXTURES / "speedrun_classic.sh"))
    assert plan.params == 560_988_160
    assert f"{plan.flops_per_token:e}" == "3.491758e+09"
    assert plan.iterations == 21_400
    assert plan.tokens == 11_219_763_200
    assert plan.shards_recommended == 240
    assert (plan.shards_train_min, plan.shards_min) == (216, 217)
    assert plan.world_size == 8 and plan.grad_accum == 1
    assert [p.name for p in plan.phases] == ["tokenizer", "base", "mid", "sft", "report"]
    base = plan.phase("base")
    assert base.optim_files == 8 and plan.phase("mid").optim_files == 1 and plan.phase("sft").optim_files == 0
    assert 2.0e9 < base.model_bytes < 2.2e9  # "~2.1 GB" (facts §2.1)
    # 3.918e19 FLOPs / (989e12 x 8 x 0.4) = 3.44 h of pretraining
    assert 3.4 * 3600 < base.seconds - 15 * 60 < 3.5 * 3600
    assert abs(plan.cost - plan.total_seconds / 3600 * 8 * 3.0) < 1e-6
    labels = [label for label, _ in plan.rows()]
    assert labels[:3] == ["model", "FLOPs/token", "base training"]
    assert plan.to_json()["params"] == 560_988_160


def test_other_published_sizes():
    assert model_shape(26, 65536, 2048).params == 1_081_999_360
    assert model_shape(32, 65536, 2048).params == 1_879_048_192
    assert model_shape(32, 65536, 2048).flops_per_token == 12_079_595_520  # "1.207960e+10"


def test_era_b_shard_rule():
    plan = build_plan(load_profile("argparse"), None, config={})
    # Era B: vocab 32,768, ratio 8 by default: the rule, not a constant
    assert plan.shards_recommended % 10 == 0 and plan.shards_train_min * 0.65 >= plan.shards_raw - 1


def test_memory_estimate_matches_measured_h200():
    gib = 1024**3
    assert abs(memory_estimate_bytes(model_shape(20, 65536, 2048), 32) / gib - 73.8) < 3.0
    assert abs(memory_estimate_bytes(model_shape(12, 65536, 2048), 32) / gib - 31.7) < 3.0


def test_peak_table():
    assert peak_flops("NVIDIA H200") == 989e12 and peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("mystery accelerator") is None


def test_plan_fact_uses_config(tmp_path):
    sc = Scenario(
        script="#!/bin/bash\n#SBATCH --gres=gpu:4\ntorchrun --nproc_per_node=4 -m scripts.base_train -- --depth=12\n",
        config={"mfu": 0.5, "hourly-rate": 2.0, "gpu": {"type": "A100"}},
        env={},
    )
    plan = sc.context(tmp_path).get("plan")
    assert plan.depth == 12 and plan.world_size == 4 and plan.gpu_name == "A100" and plan.mfu == 0.5
    assert plan.grad_accum == 2 and plan.hourly_rate == 2.0


def test_a_default_of_a_guessed_era_says_what_the_other_eras_use(tmp_path):
    """A base-only dash-flag script (upstream's Jan-Mar miniseries) is argparse-dash, no-mid or current: its
    iterations come from the guessed era's default ratio, and the plan says which ratio the others use."""
    script = "#!/bin/bash\n#SBATCH --gres=gpu:8\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12 --model-tag=d12\n"
    plan = Scenario(script=script, env={}).context(tmp_path / "a").get("plan")
    assert plan.iterations == int(10.5 * plan.params) // 524288
    assert (
        "target_param_data_ratio 10.5: the no-mid era's default, an era guessed from the script alone "
        "(argparse-dash: 8, current: 12; --checkout tells)"
    ) in plan.assumptions
    # the ratio passed: nothing era-dependent about it
    plan = Scenario(script=script.replace("d12\n", "d12 --target-param-data-ratio=8\n"), env={})
    assert not any("target_param_data_ratio" in a for a in plan.context(tmp_path / "b").get("plan").assumptions)


def test_target_flops_sets_the_horizon_as_base_train_does(tmp_path):
    """A fork's scaling-law job passes `--target-flops 2.15e18 --target-param-data-ratio=-1`: base_train takes
    round(flops / (flops_per_token x batch)) iterations; the plan once took the ratio and planned -910 steps
    (and DS001 said `python -m nanochat.dataset -n -13`)."""
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\ntorchrun --nproc_per_node=1 -m scripts.base_train -- --depth=12 "
        "--target-flops 2.15e18 --target-param-data-ratio=-1 --device-batch-size=32\n"
    )
    plan = Scenario(script=script, env={}).context(tmp_path / "a").get("plan")
    assert plan.iterations == round(2.15e18 / (plan.flops_per_token * plan.total_batch_size)) > 0
    assert plan.shards_recommended > 0
    assert "(--target-flops 2.15e+18: ratio " in dict(plan.rows())["base training"]
    # a budget the job is given when submitted (sbatch job.sh 1e18), with the arguments unknown: no step count
    # before the job runs, and DS001 says so instead of "needs at least 1" (the validation shard alone)
    looped = script.replace("torchrun", "FLOPS=$1\ntorchrun").replace("--target-flops 2.15e18", "--target-flops $FLOPS")
    result = run_scenario(
        Scenario(script=looped, env={}, config={"base-dir": "{tmp}/base"}, script_args=None),
        tmp_path / "c",
        select=["DS001"],
    )
    (ds,) = [f for c in result.checks for f in c.findings]  # (an empty directory lacks its validation shard too)
    assert ds.message.endswith(
        "holds 0 shard(s); base_train needs at least 2 (one to train on and the validation shard), and how many "
        "more is known only when the job runs (--target-flops $1: set when the job runs)"
    )
    assert "python -m nanochat.dataset -n N on a login node" in ds.fix
    # no horizon at all: no negative plan, and it says why
    plan = Scenario(script=script.replace("--target-flops 2.15e18 ", ""), env={}).context(tmp_path / "b").get("plan")
    assert plan.iterations == 0 and plan.shards_recommended >= 0
    assert any(a.startswith("no training horizon") for a in plan.assumptions)


def test_a_cpu_run_is_planned_on_the_cpu_without_a_gpu_price(tmp_path):
    """Upstream's runcpu.sh: no GPU requested, a plain python trainer; a price per GPU-hour would be made up."""
    script = "#!/bin/bash\npython -m scripts.base_train --depth=6 --max-seq-len=512 --num-iterations=50\n"
    plan = Scenario(script=script, env={}).context(tmp_path).get("plan")
    assert plan.gpu_name == "CPU" and plan.sources["gpu"] == "no GPUs requested, plain python launcher"
    total = dict(plan.rows())["total"]
    assert plan.cost is None and "GPU-hour" not in total


def test_the_home_quota_warning_gives_this_runs_size(tmp_path):
    def message(script):
        result = run_scenario(Scenario(script=script, env={"HOME": "{tmp}/home"}), tmp_path, select=["ENV003"])
        (check,) = result.checks
        return check.findings[0].message

    d26 = message(
        "#!/bin/bash\n#SBATCH --gres=gpu:8\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=26\n"
    )
    d12 = message(
        "#!/bin/bash\n#SBATCH --gres=gpu:8\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12\n"
    )
    size = [float(m.split("run's ~")[1].split(" GB")[0]) for m in (d26, d12)]
    assert "this d26 run's ~" in d26 and "this d12 run's ~" in d12 and size[0] > 2 * size[1], (d26, d12)


def test_a_script_without_a_training_phase_gets_no_plan_of_defaults(tmp_path):
    # a fork's SFT-only job (its own scripts.pre1900_sft): d20 base-training defaults would describe no run of it
    job = tmp_path / "sft.sh"
    job.write_text("#!/bin/bash\ntorchrun --standalone --nproc_per_node=8 -m scripts.pre1900_sft -- --run=v5\n")
    plan = build_plan(load_profile("no-mid"), parse_script(job))
    assert plan.rows() == [("plan", "the script runs no training phase preflight can see: nothing to plan")]


def test_a_time_limit_that_fits_at_a_likely_mfu_is_a_warning_not_an_error(tmp_path):
    # d20 on 8 GPUs: ~3.7 h at the planning 40% MFU, ~2.7 h at the 55% nanochat reaches on Hopper
    base = "set -euo pipefail\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
    found = {}
    for limit in ("01:00:00", "03:00:00"):
        script = f"#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time={limit}\n" + base
        result = run_scenario(
            Scenario(script=script, env={"HOME": "{tmp}/home"}), tmp_path / limit[:2], select=["SB006"]
        )
        (finding,) = result.checks[0].findings
        found[limit] = finding
    assert found["01:00:00"].severity.value == "error" and "which fits" not in found["01:00:00"].message
    assert found["03:00:00"].severity.value == "warning", found["03:00:00"]
    assert "at 55% MFU it needs" in found["03:00:00"].message and "may be cut off" in found["03:00:00"].message


def _sweep(loop_header: str, prelude: str = "") -> str:
    return (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\nset -euo pipefail\n"
        + prelude
        + f"for d in {loop_header}; do\n"
        + '  if [ "$d" -ge 22 ]; then DBS=16; else DBS=32; fi\n'
        + "  torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=$d --device_batch_size=$DBS"
        + " 2>&1 | tee train_d$d.log\n"
        + "done\n"
    )


def test_a_depth_sweep_is_planned_as_the_sum_of_its_runs(tmp_path):
    """upstream's miniseries.sh trains d12 ... d26 in one job; the plan was the first run's (d12: ~1 h of a
    ~13 h job, so a 2 h --time passed) or the era's default depth."""
    one = {d: Scenario(script=_sweep(str(d)), env={}).context(tmp_path / f"d{d}").get("plan") for d in (12, 20, 26)}
    for header, prelude in (("12 20 26", ""), ('"${DEPTHS[@]}"', "DEPTHS=(12 20 26)\n")):
        plan = Scenario(script=_sweep(header, prelude), env={}).context(tmp_path / str(len(prelude))).get("plan")
        # the run that needs the most memory: d20 at batch 32, not d26 at the 16 its if branch gives it
        assert (plan.depth, plan.device_batch_size) == (20, 32) and one[26].device_batch_size == 16
        assert plan.memory_per_gpu == one[20].memory_per_gpu > one[26].memory_per_gpu
        assert plan.shards_recommended == one[26].shards_recommended  # enough for the run that reads the most
        base = plan.phase("base")
        assert base.seconds == sum(p.phase("base").seconds for p in one.values())
        assert plan.total_seconds == sum(p.total_seconds for p in one.values())
        assert base.note == "a sweep of 3 runs (--depth=12, 20, 26; --device_batch_size=32, 16)", base.note
        assert any(
            a.startswith(f"a sweep of 3 base_train runs (script line {7 + bool(prelude)}:") for a in plan.assumptions
        )


def test_a_grid_of_nested_loops_is_every_combination(tmp_path):
    # upstream's scaling_laws.sh: FLOPs budgets x depths, each one base_train run
    script = (
        '#!/bin/bash\n#SBATCH --gres=gpu:8\nBUDGETS=(1e18 2.15e18)\nfor f in "${BUDGETS[@]}"; do\n'
        "  for d in 10 12 14; do\n"
        "    torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=$d --target-flops=$f"
        " --target-param-data-ratio=-1\n"
        "  done\ndone\n"
    )
    plan = Scenario(script=script, env={}).context(tmp_path).get("plan")
    assert plan.phase("base").note == "a sweep of 6 runs (--depth=10, 12, 14; --target-flops=1e18, 2.15e18)"
    # one run per line, the same flags: a retry, not a sweep
    retry = "#!/bin/bash\n#SBATCH --gres=gpu:8\nfor i in 1 2; do\n  torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12\ndone\n"
    plan = Scenario(script=retry, env={}).context(tmp_path / "r").get("plan")
    assert plan.phase("base").note == "" and not any("sweep" in a for a in plan.assumptions)


def test_a_workstation_script_that_names_or_sets_up_its_gpu_is_not_planned_on_the_cpu(tmp_path):
    # forks' single-GPU scripts ask SLURM for nothing and run plain python; they were planned on the CPU
    # (24,019 h for an RTX 3090 base run)
    run = "python -m scripts.base_train --depth=8 --device_batch_size=16 --num_iterations=2000\n"
    named = Scenario(script="#!/bin/bash\n# base pretraining on an RTX 3090 (24 GB)\n" + run, env={})
    plan = named.context(tmp_path / "a").get("plan")
    assert (plan.gpu_name, plan.world_size) == ("RTX 3090", 1) and plan.sources["gpu"].startswith("named in the script")
    # and no Hopper-only download (the FA3 kernel) is asked of it
    argparse_era = Scenario(script=named.script, env={}, config={"profile": "argparse"})
    result = run_scenario(argparse_era, tmp_path / "n", select=["NET001"])
    assert not [f for c in result.checks for f in c.findings if "flash-attention-3" in f.message]
    smi = Scenario(script="#!/bin/bash\nnvidia-smi\n" + run, env={}).context(tmp_path / "b").get("plan")
    assert smi.gpu_name != "CPU" and any(a.endswith("(line 2: nvidia-smi)") for a in smi.assumptions), smi.assumptions
    plain = Scenario(script="#!/bin/bash\n# a quick run\n" + run, env={}).context(tmp_path / "c").get("plan")
    assert plain.gpu_name == "CPU"  # upstream's runcpu.sh: nothing says GPU


def test_a_flag_the_script_does_not_pass_takes_the_checkouts_own_default(tmp_path):
    # a fork's base_train declares max_seq_len=1024, device_batch_size=16 and ratio 4 (upstream at babde18 had 4):
    # the plan took the era profile's 2048 / 32 / 8 even with --checkout
    src = (
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--depth', type=int, default=20)\n"
        "p.add_argument('--max-seq-len', type=int, default=1024)\np.add_argument('--device-batch-size', type=int, "
        "default=16)\np.add_argument('--total-batch-size', type=int, default=-1)\n"
        "p.add_argument('--target-param-data-ratio', type=int, default=4)\n"
    )
    files = {"co/nanochat/common.py": "", "co/scripts/chat_sft.py": "", "co/scripts/base_train.py": src}
    script = "#!/bin/bash\n#SBATCH --gres=gpu:8\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12\n"
    sc = Scenario(script=script, env={}, files=files, config={"checkout": "{tmp}/co", "profile": "argparse"})
    plan = sc.context(tmp_path).get("plan")
    assert (plan.depth, plan.seq_len, plan.device_batch_size, plan.ratio) == (12, 1024, 16, 4)
    assert plan.sources["max_seq_len"] == "default of base_train.py in the checkout"
    assert plan.sources["total_batch_size"] == "profile argparse default"  # -1: sized at run time, as the era does


def test_the_home_quota_warning_of_a_script_with_nothing_to_plan_gives_no_runs_size(tmp_path):
    # a fork's wrapper calls another script the checker cannot see: the plan is empty, and ENV003 said
    # "this d20 run's ~24 GB (run plan)" of a run no plan described
    result = run_scenario(
        Scenario(script="#!/bin/bash\n#SBATCH --gres=gpu:8\nbash scripts/sweep.sh\n", env={"HOME": "{tmp}/home"}),
        tmp_path,
        select=["ENV003"],
    )
    (finding,) = [f for c in result.checks for f in c.findings]
    assert "(run plan)" not in finding.message and "a d20 run's ~30 GB" in finding.message, finding.message


def test_a_mid_only_job_is_sized_by_its_own_flags_and_model_tag(tmp_path):
    # a fork's midtraining job (no base_train): the plan took base training's defaults (d20, 32 x 2048) and
    # listed a base run and its shards
    script = tmp_path / "mid.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --gpus-per-node=4\nset -e\nDEPTH=4\n"
        'torchrun --standalone --nproc_per_node=4 -m scripts.mid_train -- --model_tag="d$DEPTH" '
        "--max_seq_len=4096 --device_batch_size=2\n"
    )
    plan = build_plan(load_profile("classic"), parse_script(script))
    assert (plan.depth, plan.seq_len, plan.device_batch_size, plan.world_size) == (4, 4096, 2, 4)
    assert plan.sources["depth"] == "model tag d4 (script line 5)"
    assert [p.name for p in plan.phases] == ["mid"]
    labels = [label for label, _ in plan.rows()]
    assert "base training" not in labels and "shards" not in labels
    assert not any("target_param_data_ratio" in a for a in plan.assumptions)


def test_a_python_launch_told_to_use_cuda_runs_on_a_gpu(tmp_path, cli):
    # a workstation SFT script with no GPU request: --device_type=cuda is a GPU run, not a CPU plan of 1,112 hours
    import json

    (tmp_path / "sft.sh").write_text(
        "#!/bin/bash\npython -m scripts.chat_sft --device_type=cuda --device_batch_size=2\n"
    )
    env = {"HOME": str(tmp_path), "NANOCHAT_BASE_DIR": str(tmp_path / "base")}
    proc = cli("preflight", "check", "sft.sh", "--format", "json", "--profile", "classic", cwd=tmp_path, env=env)
    plan = json.loads(proc.stdout)["plan"]
    assert plan["gpu_name"] != "CPU" and plan["world_size"] == 1, plan
    assert any(a.startswith("one GPU: the script asks SLURM for none but runs on one") for a in plan["assumptions"])


def test_a_tokenizer_job_has_no_model_to_size(tmp_path):
    # a fork's tokenizer job was planned as a d20 with a 69.8 GiB/GPU estimate
    job = tmp_path / "tok.sh"
    job.write_text("#!/bin/bash\n#SBATCH --gres=gpu:1\npython -m scripts.tok_train\npython -m scripts.tok_eval\n")
    rows = dict(build_plan(load_profile("argparse"), parse_script(job)).rows())
    assert "phase tokenizer" in rows and not {"model", "FLOPs/token", "batch"} & set(rows), rows
    assert "GiB" not in rows["GPUs"], rows["GPUs"]


def test_a_horizon_passed_through_a_defaulted_variable_is_the_runs(tmp_path):
    # a per-node multi-node script: NUM_ITERATIONS="${NUM_ITERATIONS:-68500}" ... --num_iterations="$NUM_ITERATIONS"
    job = tmp_path / "node.sh"
    job.write_text(
        '#!/bin/bash\nNUM_ITERATIONS="${NUM_ITERATIONS:-68500}"\n'
        'torchrun --nproc_per_node=4 -m scripts.base_train -- --depth=4 --num_iterations="$NUM_ITERATIONS"\n'
    )
    plan = build_plan(load_profile("classic"), parse_script(job, environ={"HOME": str(tmp_path)}))
    assert plan.iterations == 68500, plan.iterations  # was the ratio's horizon


def test_the_home_quota_warning_of_a_plan_that_trains_nothing_gives_the_rule_of_thumb(tmp_path):
    # only the report is planned (the training hid behind arrays preflight could not read): "~0 GB (run plan)" was
    # a size of nothing
    result = run_scenario(
        Scenario(
            script="#!/bin/bash\n#SBATCH --gres=gpu:8\npython -m nanochat.report generate\n", env={"HOME": "{tmp}/home"}
        ),
        tmp_path,
        select=["ENV003"],
    )
    (finding,) = [f for c in result.checks for f in c.findings]
    assert "~0 GB" not in finding.message and "a d20 run's ~30 GB" in finding.message, finding.message
