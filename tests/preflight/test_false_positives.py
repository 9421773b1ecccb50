"""False positives the real-script review found, each on the smallest script that showed it."""

from __future__ import annotations

from preflight.model import Status
from preflight.testing import Scenario, run_scenario

ENV = {"HOME": "{tmp}/home"}


def _check(tmp_path, code, script, **kw):
    result = run_scenario(Scenario(script=script, env=ENV, **kw), tmp_path, select=[code])
    return next(c for c in result.checks if c.code == code)


def test_tokenizer_missing_skips_a_job_that_runs_no_nanochat_phase(tmp_path):
    c = _check(
        tmp_path,
        "TOK001",
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\npython my_eval.py --ckpt x\n",
        config={"base-dir": "{tmp}/base"},
    )
    assert c.status is Status.SKIP and "no nanochat phase" in c.reason
    c = _check(
        tmp_path, "TOK001", "#!/bin/bash\nset -e\ntorchrun -m scripts.base_train\n", config={"base-dir": "{tmp}/base"}
    )
    assert c.status is Status.FAIL


SFT_TOKENS = (
    "import argparse\np = argparse.ArgumentParser()\n"
    'p.add_argument("--device-batch-size", type=int, default=32)\n'
    'p.add_argument("--max-seq-len", type=int, default=2048)\n'
    'p.add_argument("--total-batch-size", type=int, default=524288)\n'
)
SFT_EXAMPLES = (
    "import argparse\np = argparse.ArgumentParser()\n"
    'p.add_argument("--device-batch-size", type=int, default=4)\n'
    'p.add_argument("--target-examples-per-step", type=int, default=32)\n'
)


def _sft(tmp_path, source, nproc):
    files = {
        "nanochat/nanochat/common.py": "",
        "nanochat/scripts/mid_train.py": "",
        "nanochat/scripts/chat_sft.py": source,
    }
    script = f"#!/bin/bash\nset -e\ncd {{tmp}}/nanochat\ntorchrun --nproc_per_node={nproc} -m scripts.chat_sft -- --device-batch-size=4\n"
    return _check(tmp_path, "GPU001", script, files=files)


def test_sft_batched_by_tokens_uses_the_token_rule(tmp_path):
    """16 GPUs: the classic example rule (32 % (4 x 16)) fails, the token rule (524288 % (4 x 2048 x 16))
    holds. The checkout's chat_sft decides which rule applies."""
    assert not _sft(tmp_path, SFT_TOKENS, 16).findings
    assert _sft(tmp_path, SFT_EXAMPLES, 16).findings
    assert _sft(tmp_path, SFT_TOKENS, 3).findings  # 524288 % (4 x 2048 x 3) != 0


def test_an_entry_point_asked_for_its_usage_runs_no_phase(tmp_path):
    # a fork's 10-minute environment check runs `python -m scripts.base_train --help`: it was planned as a
    # 5-hour d20 run, with a time limit "too short" for it and shards, tokenizer and downloads it never needs
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --time=00:10:00\nset -euo pipefail\n"
        "python -m scripts.base_train --help >/dev/null\ntorchrun --nproc_per_node=1 -m scripts.chat_sft -h\n"
    )
    plan = Scenario(script=script, env=ENV).context(tmp_path / "p").get("plan")
    assert plan.rows() == [("plan", "the script runs no training phase preflight can see: nothing to plan")]
    for code in ("SB006", "TOK001", "DS001"):
        c = _check(tmp_path / code, code, script, config={"base-dir": "{tmp}/base"})
        assert c.status in (Status.SKIP, Status.PASS) and not c.findings, (code, c.status, c.findings)


def test_a_save_interval_held_in_a_variable_is_a_periodic_save(tmp_path):
    # SAVE_EVERY="${SAVE_EVERY:-500}" ... --save_every="${SAVE_EVERY}": SB007 said "saves only at the end"
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=10:00:00\nset -euo pipefail\n"
        'SAVE_EVERY="${SAVE_EVERY:-500}"\n'
        'torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=20 --save_every="${SAVE_EVERY}" --run=dummy\n'
    )
    assert not _check(tmp_path / "a", "SB007", script).findings
    assert _check(tmp_path / "b", "SB007", script.replace(":-500", ":--1")).findings  # -1: never saves


def test_sbatchs_no_interpreter_refusal_is_quoted_whole_with_its_fix(tmp_path):
    # a fork's run script has no #! line; sbatch 22.05 (here) words the refusal over three lines, and the finding
    # quoted only the last ("For instance: #!/bin/sh") with "fix the directive (partition, gres, time)"
    from preflight.script import SbatchTest

    refusal = (
        "sbatch: error: This does not look like a batch script.  The first\n"
        "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
        "sbatch: error: For instance: #!/bin/sh\n"
    )
    c = _check(
        tmp_path,
        "SB014",
        "export OMP_NUM_THREADS=1\ntorchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12\n",
        facts={"sbatch_test": SbatchTest(1, refusal, {}, None)},
    )
    (f,) = c.findings
    assert "The first line must start with #! followed by the path to an interpreter." in f.message, f.message
    assert f.fix.startswith("add `#!/bin/bash` as the script's first line"), f.fix


def test_a_job_for_another_cluster_is_not_rejected_by_this_one(tmp_path):
    # a VSC job names its cluster (#SBATCH --clusters=wice); checked on a login node of another SLURM, sbatch 22.05
    # (here, its words) refuses it: that is no fault of the job
    from preflight.script import SbatchTest

    refusal = (
        "sbatch: error: No cluster 'wice' known by database.\n"
        "sbatch: error: 'wice' can't be reached now, or it is an invalid entry for --cluster.  Use 'sacctmgr list "
        "clusters' to see available clusters.\n"
    )
    c = _check(
        tmp_path,
        "SB014",
        "#SBATCH --clusters=wice\nexport OMP_NUM_THREADS=1\ntorchrun --nproc_per_node=8 -m scripts.base_train\n",
        facts={"sbatch_test": SbatchTest(1, refusal, {}, None)},
    )
    assert c.status.value == "skip" and c.reason == "the job is for cluster 'wice', which the SLURM here does not know"
