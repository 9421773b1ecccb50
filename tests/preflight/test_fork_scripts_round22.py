"""Shapes from a twenty-second round of public forks' job scripts (written here in our own words): a base dir under a
variable only the cluster sets, checked from a directory under /tmp."""

from __future__ import annotations

from tests.clirun import check_script


def test_a_base_dir_under_a_cluster_variable_is_not_joined_to_where_preflight_runs(tmp_path, cli):
    # `export NANOCHAT_BASE_DIR="${SCRATCH}/run/nanochat"` in a 2-node job, checked from /tmp/...: FS003 made it
    # /tmp/.../${SCRATCH}/run/nanochat and called it node-local storage; from / it said nothing
    body = (
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --gres=gpu:4\nset -e\n"
        'export NANOCHAT_BASE_DIR="${SCRATCH}/run-3/nanochat"\n'
        "srun torchrun --nnodes=2 --nproc_per_node=4 -m scripts.base_train -- --depth=4\n"
    )
    env = {"NANOCHAT_BASE_DIR": ""}
    _report, checks = check_script(cli, tmp_path, body, env=env)
    assert str(tmp_path).startswith("/tmp/")  # where the defect showed: a node-local root
    assert checks["FS003"]["status"] == "pass", checks["FS003"]
    # nor is its disk this machine's: FS002 measured the free space of where preflight runs
    for code in ("FS001", "FS002"):
        assert checks[code]["status"] == "skip" and "known only when the job runs" in checks[code]["reason"], code

    # the node's own temporary directory is node-local wherever preflight runs
    _report, checks = check_script(cli, tmp_path, body.replace("${SCRATCH}", "$TMPDIR"), env=env)
    (found,) = checks["FS003"]["findings"]
    assert "base dir $TMPDIR/run-3/nanochat on node-local storage ($TMPDIR)" in found["message"], found


def test_the_hf_cli_and_apt_are_downloads_and_a_tokenizer_copied_from_the_hub_is_the_jobs(tmp_path, cli):
    # `uvx hf repos cp hf://.../tokenizer.pkl $NANOCHAT_BASE_DIR/tokenizer/` fetched the tokenizer: no SB011 for it,
    # and TOK001 said "missing, and the script does not train a tokenizer"
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\n"
        "apt-get install -y git curl\n"
        "uvx hf auth whoami > /dev/null 2>&1 || uvx hf auth login\n"
        'mkdir -p "$NANOCHAT_BASE_DIR/tokenizer"\n'
        'uvx hf repos cp "$HF_RUN/tokenizer/tokenizer.pkl" "$NANOCHAT_BASE_DIR/tokenizer/"\n'
        'uvx hf repos cp "$HF_RUN/tokenizer/token_bytes.pt" "$NANOCHAT_BASE_DIR/tokenizer/"\n'
        "pip install -e . || true\n"
        "python gcs_fetch.py --src=gs://my-bucket/shards --dst=$NANOCHAT_BASE_DIR/base_data\n"
        "torchrun --standalone --nproc_per_node=1 -m scripts.chat_sft\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    found = {f["location"]["line"]: f for f in checks["SB011"]["findings"]}
    assert "(apt-get (the distribution's package mirrors))" in found[4]["message"], found[4]
    assert "(the Hugging Face Hub (hf CLI))" in found[5]["message"], found[5]
    assert "(Hugging Face Hub copy (hf repos cp))" in found[7]["message"], found[7]
    assert checks["TOK001"]["status"] == "skip" and "downloads into" in checks["TOK001"]["reason"], checks["TOK001"]
    # `|| true`: offline it fails quietly, a warning rather than a stop
    assert found[9]["severity"] == "warning" and "the `||` after it goes on" in found[9]["message"], found[9]
    assert found[7]["severity"] == "error"
    assert "(cloud storage copy (gs://, s3://))" in found[10]["message"], found[10]


def test_a_forks_own_entry_point_is_said_to_be_outside_the_plan(tmp_path, cli):
    # two `torchrun -m scripts.agent_rl` runs (a fork's own RL) after SFT: the plan said 24 minutes, silent on them
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --run=dummy\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.agent_rl -- --task=gsm8k\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.agent_rl -- --task=coding\n"
    )
    report, _checks = check_script(cli, tmp_path, body)
    assert (
        "not counted: scripts.agent_rl (lines 5, 6): an entry point of no phase preflight knows (a fork's own), "
        "whose time, memory and checkpoints are not in this plan"
    ) in report["plan"]["assumptions"], report["plan"]["assumptions"]
    # a fork's extended copy of a known entry point is that entry's phase, not a foreign one
    report, _checks = check_script(cli, tmp_path, body.replace("scripts.chat_sft", "scripts.chat_sft_lora"))
    assert [p["name"] for p in report["plan"]["phases"]] == ["sft"], report["plan"]["phases"]


def test_a_forks_own_sft_mixture_is_what_its_sft_downloads(tmp_path, cli):
    # the fork's chat_sft trains on its own tasks (its own hub datasets): NET001 listed the era's SmolTalk, whose task
    # file the fork keeps but never imports, and not one of the fork's datasets
    co = tmp_path / "nc"
    for rel, text in {
        "nanochat/configurator.py": "",
        "scripts/base_train.py": "depth = 20\n",
        "scripts/chat_sft.py": "from tasks.common import TaskMixture\nfrom tasks.my_sft import MySFT\n",
        "tasks/common.py": "class TaskMixture: pass\n",
        "tasks/smoltalk.py": 'from datasets import load_dataset\nds = load_dataset("HuggingFaceTB/smol-smoltalk")\n',
        "tasks/my_sft.py": "from datasets import load_dataset\n\nclass MySFT:\n    ds = load_dataset(\n"
        '        "me/my-sft", split="train")\n',
    }.items():
        (co / rel).parent.mkdir(parents=True, exist_ok=True)
        (co / rel).write_text(text)
    body = f"#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\ncd {co}\npython -m scripts.chat_sft\n"
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    (found,) = [f for f in checks["NET001"]["findings"] if f["message"].startswith("phase sft")]
    assert "me/my-sft (loaded by this checkout's own tasks/my_sft.py:4)" in found["message"], found["message"]
    assert "smol-smoltalk" not in found["message"], found["message"]
    assert "build this checkout's own tasks once there (tasks/my_sft.py" in found["fix"], found["fix"]


def test_a_runner_the_job_runs_from_its_own_clone_is_read_from_the_checkout_given(tmp_path, cli):
    # `cd $SCRATCH/run; git clone https://.../nanochat-pl.git; srun bash $SCRATCH/run/nanochat-pl/speedrun.sh`: SB020
    # could not read the runner, so the 2-node job had no plan (its 1 h limit against 68,500 steps went unsaid)
    co = tmp_path / "nanochat-pl"
    (co / "nanochat").mkdir(parents=True)
    (co / "scripts").mkdir()
    (co / "nanochat" / "configurator.py").write_text("")
    (co / "scripts" / "base_train.py").write_text("depth = 20\nnum_iterations = -1\n")
    (co / "speedrun.sh").write_text(
        "#!/bin/bash\nset -e\ntorchrun --nproc_per_node=4 -m scripts.base_train -- --depth=20 --num_iterations=68500\n"
    )
    body = (
        "#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --gres=gpu:4\n#SBATCH --time=1:00:00\nset -e\n"
        'export RUN_DIR="${SCRATCH}/run"\ncd $RUN_DIR\n'
        "if [ ! -d nanochat-pl ]; then\n  git clone https://github.com/someone/nanochat-pl.git\nfi\n"
        'SCRIPT_PATH="${RUN_DIR}/nanochat-pl/speedrun.sh"\nsrun bash $SCRIPT_PATH\n'
    )
    report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["SB020"]["status"] == "pass", checks["SB020"]
    assert [p["name"] for p in report["plan"]["phases"]] == ["base"], report["plan"]
    assert checks["SB006"]["status"] == "fail", checks["SB006"]  # 68,500 steps in an hour

    # a path that climbs out of the clone is not read from beside the checkout
    (tmp_path / "outside.sh").write_text((co / "speedrun.sh").read_text())
    body = body.replace("nanochat-pl/speedrun.sh", "nanochat-pl/../outside.sh")
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["SB020"]["status"] == "warn", checks["SB020"]


def test_an_sft_job_plans_the_depth_its_model_tag_names_and_says_so(tmp_path, cli):
    # an SFT-only job on `--model-tag=ginjinha_d11_ratio40`: planned as d20 (477M parameters), silently
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --model_tag=ginjinha_d11_ratio40\n"
    )
    report, _checks = check_script(cli, tmp_path, body)
    assert report["plan"]["depth"] == 11, report["plan"]
    assert (
        "depth 11, from the model tag ginjinha_d11_ratio40 (the job trains no base model)"
        in report["plan"]["assumptions"]
    )
    # no tag: the era's default, said
    report, _checks = check_script(cli, tmp_path, body.replace(" -- --model_tag=ginjinha_d11_ratio40", ""))
    assert report["plan"]["depth"] == 20
    assert any(a.startswith("depth 20, the era's default") for a in report["plan"]["assumptions"]), report["plan"]


def test_a_virtual_environment_missing_from_a_fresh_checkout_is_built_by_its_lock_file(tmp_path, cli):
    co = tmp_path / "nc"
    (co / "scripts").mkdir(parents=True)
    (co / "scripts" / "base_train.py").write_text("depth = 20\n")
    (co / "uv.lock").write_text("version = 1\n")
    body = (
        f"#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\ncd {co}\nsource .venv/bin/activate\npython -m scripts.base_train\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    (found,) = checks["SB022"]["findings"]
    assert "(a virtual environment is never in a checkout: the checkout's uv.lock builds it)" in found["message"]
    assert found["fix"] == "build it once on a login node, in the checkout: `uv sync` (then .venv/bin/activate exists)"
