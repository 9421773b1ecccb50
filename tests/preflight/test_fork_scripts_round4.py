"""Shapes from a fourth round of public forks' batch scripts (written here in our own words): a run name built
from a defaulted variable, shared-GPU GRES, a reachability probe with an offline branch, a script that only
evaluates, and a flag commented out in the middle of a continued command."""

from __future__ import annotations

from tests.clirun import check_script


def _script(gres, body):
    return f"#!/bin/bash\n#SBATCH --time=12:00:00\n#SBATCH --gres={gres}\nset -euo pipefail\nexport OMP_NUM_THREADS=1\n{body}"


def test_a_run_name_from_a_defaulted_variable_is_a_named_run(tmp_path, cli):
    body = (
        _script("gpu:h100:1", "") + 'SERIES="${SERIES:-$(date +%b%d | tr "[:upper:]" "[:lower:]")}"\n'
        'python -m scripts.base_train --depth=4 --run="${SERIES} baseline"\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    assert not checks["ENV001"]["findings"], checks["ENV001"]  # was "wandb logging is off (run = dummy ...)"
    (named,) = checks["ENV002"]["findings"]
    assert "baseline" in named["message"]


def test_shared_gpu_gres_is_one_gpu_not_a_cpu_job(tmp_path, cli):
    body = _script("shard:4", "python -m scripts.base_train --depth=12\n")
    report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    assert not checks["SB006"]["findings"], checks["SB006"]  # was 8,749 h "on 1x CPU"
    assert report["plan"]["gpu_name"] != "CPU", report["plan"]["gpu_name"]


def test_a_reachability_probe_with_an_offline_branch_is_information(tmp_path, cli):
    body = (
        _script("gpu:h100:1", "") + "if curl -s --max-time 5 -o /dev/null https://api.wandb.ai; then\n"
        "    export WANDB_MODE=online\nelse\n    export WANDB_MODE=offline\nfi\n"
        "curl -L -o words.txt https://example.org/words.txt\n"
        "python -m scripts.base_train --depth=4\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    by_line = {f["location"]["line"]: f for f in checks["SB011"]["findings"]}
    assert by_line[6]["severity"] == "info" and "other branch" in by_line[6]["message"]
    assert by_line[11]["severity"] == "error"  # a plain download stays an error


def test_a_script_that_only_evaluates_plans_no_training_and_lists_the_evaluation_datasets(tmp_path, cli):
    body = _script("gpu:h100:1", "torchrun --standalone --nproc_per_node=1 -m scripts.chat_eval -- -i mid\n")
    report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (mid,) = [p for p in report["plan"]["phases"] if p["name"] == "mid"]
    assert not mid.get("steps") and not mid.get("checkpoint_dir"), mid  # was 241 steps and a checkpoint
    (net,) = [f for f in checks["NET001"]["findings"] if f.get("data", {}).get("phase") == "mid"]
    for dataset in ("allenai/ai2_arc", "openai/openai_humaneval", "cais/mmlu config all", "openai/gsm8k"):
        assert dataset in net["message"], net["message"]
    assert "auxiliary_train" not in net["message"]  # only mid_train loads MMLU's auxiliary_train


def test_a_comment_inside_a_continued_command_cuts_it(tmp_path, cli):
    body = (
        _script("gpu:h100:1", "") + 'LOG="$HOME/run.log"\n'
        "python -m scripts.base_train \\\n"
        "    --depth=4 \\\n"
        "    # --ortho-init \\\n"
        '    2>&1 | tee "$LOG"\n'
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "argparse")
    (cut,) = checks["SB033"]["findings"]
    assert cut["location"]["line"] == 9 and "2>&1 | tee" in cut["message"], cut
    fixed = body.replace("    # --ortho-init \\\n", "")
    _report, checks = check_script(cli, tmp_path, fixed, "--profile", "argparse")
    assert not checks["SB033"]["findings"]


_REQUIRE = (
    'require_env() {\n  local name="$1"\n  if [ -z "${!name:-}" ]; then\n    echo "$name must be set" >&2\n'
    "    exit 1\n  fi\n}\n"
    'run_step() {\n  echo "==> $*"\n  "$@"\n}\n'
    'for v in BASE_DIR RUN_NAME; do\n  require_env "$v"\ndone\n'
    'run_step torchrun --nproc_per_node=1 -m scripts.base_train -- --depth=4 --run="$RUN_NAME"\n'
)


def test_a_function_that_exits_unless_the_named_variable_is_set_stops_the_script(tmp_path, cli):
    # a 2026 fork's multi-node script: `for v in ...; do require_env "$v"; done` (bash's indirect ${!name}), then
    # its launch through a `run_step` wrapper
    _report, checks = check_script(cli, tmp_path, _script("gpu:h100:1", _REQUIRE), "--profile", "argparse")
    (stop,) = checks["SB017"]["findings"]
    assert "before it runs scripts.base_train" in stop["message"], stop["message"]
    assert "require_env BASE_DIR" in stop["message"] and "BASE_DIR is not set" in stop["message"]
    assert stop["fix"].startswith("set BASE_DIR before sbatch")
    assert not checks["ENV001"]["findings"]  # was "wandb logging is off (run = dummy; --run=$RUN_NAME)"

    env = {"BASE_DIR": str(tmp_path), "RUN_NAME": "d4-try", "WANDB_MODE": "offline"}
    _report, checks = check_script(cli, tmp_path, _script("gpu:h100:1", _REQUIRE), "--profile", "argparse", env=env)
    assert not checks["SB017"]["findings"] and not checks["ENV001"]["findings"]
    assert checks["ENV002"]["status"] == "pass"  # a named run, logged offline


def test_a_word_expands_with_the_values_of_its_line_not_a_later_export(tmp_path, cli):
    # a fork's mid job: the run name's base defaults from WANDB_RUN, which the script exports only later (for its
    # eval), with a nested default; it read "wandb run '${WANDB_RUN_BASE_eval}_mid'", then 'realdata_mid_eval_mid'
    body = _script(
        "gpu:h100:1",
        'WANDB_RUN_BASE="${WANDB_RUN:-realdata_mid}"\n'
        'python -m scripts.mid_train --run="${WANDB_RUN_BASE}_mid"\n'
        'export WANDB_RUN="${WANDB_RUN_EVAL:-${WANDB_RUN_BASE}_eval}"\n'
        "python -m scripts.chat_eval -i mid\n",
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (named,) = checks["ENV002"]["findings"]
    assert "wandb run 'realdata_mid_mid'" in named["message"], named["message"]


def test_a_tokenizer_job_starts_no_wandb(tmp_path, cli):
    # a fork's tokenizer job exports a named WANDB_RUN (and a key) for nothing: tok_train and tok_eval never start
    # wandb; it read "wandb.init cannot reach the server; the phase crashes at startup"
    body = _script(
        "gpu:b200:1",
        'export WANDB_RUN="b200_tokenizer_${SLURM_JOB_ID:-0}"\npython -m scripts.tok_train\npython -m scripts.tok_eval\n',
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    assert not checks["ENV002"]["findings"] and not checks["ENV001"]["findings"]


def test_gpu_memory_speaks_the_eras_flags_and_says_nothing_of_base_training_for_an_sft_job(tmp_path, cli):
    # a 2026 fork on 48 GB L40S cards: the base job's fix is spelled as its argparse takes it (--device-batch-size);
    # its SFT-only job (depth from the base checkpoint) was told "base training will run out of memory"
    base = _script("gpu:L40S:4", "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=20\n")
    _report, checks = check_script(cli, tmp_path, base, "--profile", "argparse")
    (oom,) = checks["GPU003"]["findings"]
    assert "L40S" in oom["message"] and "--device-batch-size=16" in oom["fix"], oom

    sft = _script("gpu:L40S:4", "torchrun --standalone --nproc_per_node=4 -m scripts.chat_sft -- --model-tag=d20\n")
    _report, checks = check_script(cli, tmp_path, sft, "--profile", "argparse")
    assert checks["GPU003"]["status"] == "skip" and "trains no base model" in checks["GPU003"]["reason"]
