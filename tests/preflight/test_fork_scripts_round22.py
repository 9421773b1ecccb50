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
