"""Shapes from a thirteenth round of public forks' batch scripts (written here in our own words): phases switched
off by flags after a `source ~/.cargo/env`, and messages that name a setup command."""

from __future__ import annotations

from tests.clirun import check_script

_TOGGLES = (
    "#!/bin/bash\n#SBATCH --gres=gpu:2\nset -e\n"
    "ENABLE_RUST=false\nENABLE_BASE_TRAIN=false\nENABLE_SFT=true\n"
    'if [ -f "$HOME/.cargo/env" ]; then\n    source "$HOME/.cargo/env"\nfi\n'
    'if [ "$ENABLE_BASE_TRAIN" = true ]; then\n'
    "    torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=20\nfi\n"
    'if [ "$ENABLE_SFT" = true ]; then\n    torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft\nfi\n'
)


def test_phases_switched_off_stay_off_after_sourcing_rustups_env(tmp_path, cli):
    # rustup's env file puts ~/.cargo/bin on PATH and nothing else: the flags after it are still known (every phase
    # was planned, with errors for the base training that never runs)
    report, _checks = check_script(cli, tmp_path, _TOGGLES, "--profile", "classic")
    assert [p["name"] for p in report["plan"]["phases"]] == ["sft"], report["plan"]["phases"]
    # any other sourced file may set anything: then both branches count
    other = _TOGGLES.replace(".cargo/env", "site/env.sh")
    report, _checks = check_script(cli, tmp_path, other, "--profile", "classic")
    assert "base" in [p["name"] for p in report["plan"]["phases"]], report["plan"]["phases"]


def test_a_message_that_names_a_setup_command_downloads_nothing(tmp_path, cli):
    body = (
        '#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nlog() { echo "$1"; }\n'
        'if [ ! -d .venv ]; then log "no venv: create one with uv venv && uv sync --extra gpu"; exit 1; fi\n'
        'srun bash -lc "uv sync"\npython -m scripts.base_train --depth=4\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    lines = [f["location"]["line"] for f in checks["SB011"]["findings"]]
    assert lines == [6], checks["SB011"]["findings"]  # the srun's shell text, not the message on line 5


def test_a_base_dir_the_job_computes_is_not_pasted_into_a_login_node_command(tmp_path, cli):
    # NANOCHAT_BASE_DIR="$(eval echo "$RAW")": the prefetch fix printed that text, which on a login node without RAW
    # names / ("curl -o $(eval echo "$RAW")/eval_bundle.zip")
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nRAW='~/exp/.cache/nanochat'\n"
        'export NANOCHAT_BASE_DIR="$(eval echo "$RAW")"\n'
        "python -m scripts.tok_eval\ntorchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    fixes = " ".join(f["fix"] for f in checks["NET001"]["findings"])
    assert "$(eval" not in fixes and "${NANOCHAT_BASE_DIR:?" in fixes, fixes


_RUN_COMMAND = (
    "#!/bin/bash\n#SBATCH --gres=gpu:2\nLOG=run.log\n"
    "run_command() {\n"
    '    "$@" 2>&1 | tee -a "$LOG"\n'
    "    local status=${PIPESTATUS[0]}\n"
    '    if [ $status -ne 0 ]; then echo "failed: $*" >&2; exit $status; fi\n'
    "}\n"
    "run_command torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=4\n"
    "run_command torchrun --standalone --nproc_per_node=2 -m scripts.mid_train\n"
    "run_command torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft\n"
)


def test_a_wrapper_that_reads_its_pipelines_status_checks_each_step(tmp_path, cli):
    # `"$@" | tee` then ${PIPESTATUS[0]} and exit: every step through it is checked (SB003 said "without set -e or
    # per-step exit checks")
    _report, checks = check_script(cli, tmp_path, _RUN_COMMAND, "--profile", "classic")
    assert not checks["SB003"]["findings"], checks["SB003"]["findings"]
    # `$?` after the pipeline is tee's status: no check of the trainer
    unchecked = _RUN_COMMAND.replace("${PIPESTATUS[0]}", "$?")
    _report, checks = check_script(cli, tmp_path, unchecked, "--profile", "classic")
    assert checks["SB003"]["findings"], checks["SB003"]


def test_a_script_that_only_submits_another_job_says_which_to_check(tmp_path, cli):
    body = (
        "#!/bin/bash\nset -e\nSTEP=$(ls base_checkpoints/d20 | tail -1)\n"
        'sbatch --dependency=singleton runs/train_d20.sh "$STEP"\n'
    )
    (tmp_path / "job.sh").write_text(body)
    proc = cli("preflight", "check", "job.sh", "--profile", "current", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert "it submits another job (line 4: sbatch runs/train_d20.sh); check that one" in proc.stdout, proc.stdout
