"""Shapes from a fourteenth round of public forks' job scripts and logs (written here in our own words)."""

from __future__ import annotations

from tests.clirun import check_script


def test_torchruns_double_dash_left_in_a_python_m_line_is_an_error(tmp_path, cli):
    # a one-GPU copy of upstream's speedrun: torchrun swapped for python, its `--` kept; every phase died at start
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\n"
        "python -m scripts.base_train -- --depth=20 --device_batch_size=8\n"
        "torchrun --standalone --nproc_per_node=1 -m scripts.mid_train -- --device_batch_size=8\n"
        "python -m scripts.chat_eval -- -i mid\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    bare = [f for f in checks["SB010"]["findings"] if "bare `--`" in f["message"]]
    assert [(f["location"]["line"], f["fix"]) for f in bare] == [
        (4, "remove the `--` after scripts.base_train"),
        (6, "remove the `--` after scripts.chat_eval"),
    ], bare  # torchrun's own `--` (line 5) is right
    assert bare[0]["message"].startswith(
        "scripts.base_train: `python -m scripts.base_train -- ...` passes the bare `--` to the script (torchrun ends"
    ), bare[0]["message"]


_MODES = (
    "#!/bin/bash\n#SBATCH --gres=gpu:4\nset -euo pipefail\n"
    'REPO_DIR="${SLURM_SUBMIT_DIR:-$PWD}"\ncd "$REPO_DIR"\n'
    "if [ -f /etc/profile.d/modules.sh ]; then\n    source /etc/profile.d/modules.sh\n"
    "elif [ -f /usr/share/lmod/lmod/init/bash ]; then\n    source /usr/share/lmod/lmod/init/bash\nfi\n"
    "module load cuda/12.5\n"
    'MODE="${MODE:-smoke}"\n'
    'case "$MODE" in\n    smoke) ITERS=2; RUN=dummy ;;\n    full) ITERS=-1; RUN=atlas-sft ;;\n'
    '    *) echo "MODE must be smoke or full"; exit 2 ;;\nesac\n'
    "torchrun --standalone --nproc_per_node=4 -m scripts.chat_sft -- --num-iterations=$ITERS --run=$RUN\n"
)


def test_sourcing_the_module_systems_init_keeps_what_the_script_set(tmp_path, cli):
    # `source /etc/profile.d/modules.sh` (or Lmod's init) defines `module` and nothing of the job's: MODE's
    # default still picks the smoke arm (the full arm's run name was reported as a wandb run without credentials)
    report, checks = check_script(cli, tmp_path, _MODES, "--profile", "no-mid", env={"WANDB_API_KEY": ""})
    (sft,) = [p for p in report["plan"]["phases"] if p["name"] == "sft"]
    assert sft["steps"] == 2, sft
    assert checks["ENV002"]["status"] != "fail", checks["ENV002"]
    # any other sourced file may set MODE: both arms count again
    other = _MODES.replace("/etc/profile.d/modules.sh", "/etc/site/job-env.sh")
    report, _checks = check_script(cli, tmp_path, other, "--profile", "no-mid")
    (sft,) = [p for p in report["plan"]["phases"] if p["name"] == "sft"]
    assert sft["steps"] != 2, sft


def test_a_cd_to_a_variable_holding_the_submit_dir_is_the_checkout_given(tmp_path, cli):
    # REPO_DIR="${SLURM_SUBMIT_DIR:-$PWD}"; cd "$REPO_DIR": with --checkout, the submit directory is that checkout
    # (the cd was read as a cd to wherever preflight ran: "No module named scripts")
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "scripts" / "chat_sft.py").write_text("import argparse\n")
    (checkout / "nanochat" / "__init__.py").write_text("")
    _report, checks = check_script(cli, tmp_path, _MODES, "--profile", "no-mid", "--checkout", str(checkout))
    assert checks["SB018"]["status"] == "pass", checks["SB018"]["findings"]
    _report, checks = check_script(cli, tmp_path, _MODES, "--profile", "no-mid")
    (missing,) = checks["SB018"]["findings"]
    assert "(the `cd` to the submit directory at line 5)" in missing["message"], missing["message"]


def test_base_eval_without_core_needs_no_eval_bundle(tmp_path, cli):
    # base_eval --eval=bpb,sample (upstream from 2026-02-01) and base_train --core-metric-every=-1: nothing loads
    # the CORE bundle, and NET001 demanded it (at the base_train line)
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:4\nset -euo pipefail\n"
        "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=20 --core-metric-every=-1\n"
        "torchrun --standalone --nproc_per_node=4 -m scripts.base_eval -- --eval=bpb,sample\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert not any("eval_bundle" in f["message"] for f in checks["NET001"]["findings"]), checks["NET001"]
    _report, checks = check_script(cli, tmp_path, body.replace("bpb,sample", "core,bpb"), "--profile", "no-mid")
    assert [f for f in checks["NET001"]["findings"] if "CORE eval bundle" in f["message"]], checks["NET001"]


def test_a_script_that_asserts_cuda_is_planned_on_a_gpu(tmp_path, cli):
    # no #SBATCH, one `python -m` process: planned as CPU training (4,565 hours) two lines below its CUDA assert
    body = (
        "#!/bin/bash\nset -ex\nsource .venv/bin/activate\n"
        "python -c \"import torch; assert torch.cuda.is_available(), 'CUDA not available'\"\n"
        "python -m scripts.chat_rl --model-tag=d24 --device-batch-size=8 --run=dummy\n"
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert (
        "one GPU: the script asks SLURM for none but runs on one (line 4: torch.cuda.is_available())"
        in (report["plan"]["assumptions"])
    ), report["plan"]["assumptions"]
    assert not any("CPU training" in a for a in report["plan"]["assumptions"]), report["plan"]["assumptions"]


def test_a_helper_functions_shift_does_not_unsettle_the_callers_switches(tmp_path, cli):
    # run_command DESC CMD...: `shift` moves the function's own arguments; every `if [ "$ENABLE_X" = true ]` after
    # its first call was undecided, so switched-off RL was planned too
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\nENABLE_SFT=true\nENABLE_RL=false\n"
        'run_command() {\n    local description="$1"\n    shift\n    "$@" 2>&1 | tee -a run.log\n'
        "    local code=${PIPESTATUS[0]}\n    if [ $code -ne 0 ]; then exit $code; fi\n}\n"
        'if [ "$ENABLE_SFT" = true ]; then\n'
        '    run_command "sft" torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft\nfi\n'
        'if [ "$ENABLE_RL" = true ]; then\n'
        '    run_command "rl" torchrun --standalone --nproc_per_node=2 -m scripts.chat_rl\nfi\n'
    )
    report, _checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert [p["name"] for p in report["plan"]["phases"]] == ["sft"], report["plan"]["phases"]
