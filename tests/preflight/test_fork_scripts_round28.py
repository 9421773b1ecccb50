"""Shapes from a twenty-eighth round of real evidence: the runner scripts of upstream nanochat's own pull requests,
each checked with its pull request's checkout (written here in our own words): a flag built only when a variable is
set, a launcher picked at run time, a device batch the trainer sizes itself, an auto batch a fork rounds, a runner
its caller starts on each node."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\nset -e\n"
T = "torchrun --standalone --nproc_per_node=8 -m"

# an argparse base_train of 2026 (dashes), its auto-sized total batch, and what a fork changed in it
BASE_TRAIN = """import argparse
import math
parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=20)
parser.add_argument("--max-seq-len", type=int, default=2048)
parser.add_argument("--device-batch-size", type=int, default={dbs})
parser.add_argument("--total-batch-size", type=int, default=-1)
parser.add_argument("--target-param-data-ratio", type=float, default=10.5)
parser.add_argument("--run", type=str, default="dummy")
args = parser.parse_args()
world_tokens_per_fwdbwd = args.device_batch_size * args.max_seq_len * 8
total_batch_size = args.total_batch_size
if total_batch_size == -1:
    predicted_batch_size = 2**19
    {auto}
"""
POW2 = "total_batch_size = 2 ** round(math.log2(predicted_batch_size))"
ROUNDED = (
    "preferred_batch_size = 2 ** round(math.log2(predicted_batch_size))\n"
    "    total_batch_size = preferred_batch_size\n"
    "    if total_batch_size % world_tokens_per_fwdbwd != 0:\n"
    "        total_batch_size = round_to_nearest_multiple(preferred_batch_size, world_tokens_per_fwdbwd)"
)


def _checkout(root: Path, dbs: int = 32, auto: str = POW2) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "nanochat").mkdir()
    (root / "scripts" / "base_train.py").write_text(BASE_TRAIN.format(dbs=dbs, auto=auto))
    return root


def test_a_flag_built_only_when_its_variable_is_set_is_not_an_empty_value(tmp_path, cli):
    # `[ -n "$DEVICE_BATCH_SIZE" ] && BATCH_SIZE_ARG="--device_batch_size=$DEVICE_BATCH_SIZE"` with the variable
    # empty: SB010 read the assignment as made and called `--device_batch_size=` a str against the default 32
    body = (
        f'{HEAD}DEVICE_BATCH_SIZE=""\nBATCH_SIZE_ARG=""\n'
        '[ -n "$DEVICE_BATCH_SIZE" ] && BATCH_SIZE_ARG="--device_batch_size=$DEVICE_BATCH_SIZE"\n'
        f"{T} scripts.base_train -- --depth=20 $BATCH_SIZE_ARG\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB010"]["status"] == "pass", checks["SB010"]

    # set, the flag is made and its value checked
    _report, checks = check_script(cli, tmp_path, body.replace('DEVICE_BATCH_SIZE=""', "DEVICE_BATCH_SIZE=16"))
    assert checks["SB010"]["status"] == "pass", checks["SB010"]

    # a flag written with an empty variable is a real Type mismatch, said as such (not "write --device_batch_size=''")
    empty = f'{HEAD}BS=""\n{T} scripts.base_train -- --depth=20 --device_batch_size=$BS\n'
    _report, checks = check_script(cli, tmp_path, empty)
    (found,) = checks["SB010"]["findings"]
    assert "`--device_batch_size=$BS` expands to `--device_batch_size=` with nothing after it" in found["message"]
    assert found["fix"] == "give --device_batch_size a value, or leave the flag out where the variable is empty"


def test_a_launcher_picked_at_run_time_is_read_in_each_branch(tmp_path, cli):
    # `if [ "$NUM_GPUS" -gt 1 ]; then LAUNCH="torchrun ... -m"; else LAUNCH="python -m"; fi` then
    # `$LAUNCH scripts.base_train -- --depth=...`: "training not visible", and on one GPU the bare `--` that python
    # hands to the script (argparse stops) went unseen
    body = (
        "#!/bin/bash\nset -e\n"
        'NUM_GPUS=$(python -c "import torch; print(torch.cuda.device_count())")\n'
        'if [ "$NUM_GPUS" -gt 1 ]; then\n'
        '    LAUNCH="torchrun --standalone --nproc_per_node=$NUM_GPUS -m"\n'
        "else\n"
        '    LAUNCH="python -m"\n'
        "fi\n"
        "$LAUNCH scripts.base_train -- --depth=8 --run=dummy\n"
        "$LAUNCH scripts.chat_sft -- --run=dummy\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    assert checks["SB020"]["status"] == "pass", checks["SB020"]
    found = checks["SB010"]["findings"]
    assert [f["location"]["line"] for f in found] == [9, 10], found
    assert found[0]["message"].startswith(
        "scripts.base_train: where line 7 sets LAUNCH='python -m' (a branch decided when the job runs), "
        "`python -m scripts.base_train -- ...` passes the bare `--` to the script"
    ), found[0]
    assert report["plan"]["depth"] == 8, report["plan"]

    # without the `--` both branches work
    _report, checks = check_script(cli, tmp_path, body.replace(" -- ", " "))
    assert checks["SB010"]["status"] == "pass", checks["SB010"]
    assert checks["SB020"]["status"] == "pass", checks["SB020"]


def test_a_device_batch_the_trainer_sizes_itself_is_no_odd_factor(tmp_path, cli):
    # a pull request's base_train declares --device-batch-size default -1 ("auto from depth"): GPU001 multiplied the
    # -1 in and reported "the odd factor -1" and "a multiple of -16,384"
    co = _checkout(tmp_path / "co", dbs=-1)
    body = f"{HEAD}{T} scripts.base_train -- --depth=20\n"
    report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["GPU001"]["status"] == "pass", checks["GPU001"]
    assert any(
        "device_batch_size 32, the era's default: base_train.py sizes it" in a for a in report["plan"]["assumptions"]
    )

    # a device batch it is given still counts (6 x 2048 x 8 has the odd factor 3)
    report, checks = check_script(
        cli, tmp_path, body.replace("--depth=20", "--depth=20 --device-batch-size=6"), "--checkout", str(co)
    )
    (found,) = checks["GPU001"]["findings"]
    assert "has the odd factor 3" in found["message"], found


def test_an_auto_batch_the_checkout_rounds_to_the_micro_batch_always_divides(tmp_path, cli):
    # a fork rounds its power-of-two auto batch to a multiple of the micro-batch (7 GPUs: 8 x 2048 x 7): the plan
    # said "NOT divisible" and assumed 524,288 tokens "(--checkout tells)" with the checkout given
    co = _checkout(tmp_path / "co", dbs=8, auto=ROUNDED)
    body = (
        HEAD.replace("gpu:8", "gpu:7")
        + "torchrun --standalone --nproc_per_node=7 -m scripts.base_train -- --depth=20 --device-batch-size=8\n"
    )
    report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["GPU001"]["status"] == "pass", checks["GPU001"]
    plan = report["plan"]
    assert plan["total_batch_size"] % 114_688 == 0 and plan["grad_accum"], plan
    rounded = f"rounded to {plan['total_batch_size']:,}, a multiple of the 114,688-token micro-batch"
    assert any(rounded in a for a in plan["assumptions"]), plan["assumptions"]

    # upstream's own (a power of two, no rounding): 7 GPUs cannot divide it
    co2 = _checkout(tmp_path / "co2", dbs=8)
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co2))
    (found,) = checks["GPU001"]["findings"]
    assert "has the odd factor 7" in found["message"], found


def test_a_shebangs_interpreter_is_looked_up_on_the_path_the_job_starts_with(tmp_path, cli):
    # `#!/usr/bin/env bash`, a sourced env file, then a PATH the script may set in a branch decided at run time:
    # SB029 looked bash up on that later PATH (unknown) and said bash was missing
    body = (
        '#!/usr/bin/env bash\n[ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"\n'
        "if ! command -v uv >/dev/null; then\n"
        '  command -v uv >/dev/null || export PATH="$HOME/.local/bin:$PATH"\nfi\necho hi\n'
    )
    (tmp_path / "home" / ".cargo").mkdir(parents=True)
    (tmp_path / "home" / ".cargo" / "env").write_text('export PATH="$HOME/.cargo/bin:$PATH"\n')  # rustup's
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB029"]["status"] == "pass", checks["SB029"]

    _report, checks = check_script(cli, tmp_path, body.replace("env bash", "env no-such-shell-here"))
    (found,) = checks["SB029"]["findings"]
    assert "no-such-shell-here (run through /usr/bin/env) is not on the job's PATH here" in found["message"]


def test_a_state_file_sourced_only_where_it_exists_is_no_missing_file(tmp_path, cli):
    # `STATE_FILE=".runmps_wandb_ids"; if [ -f "$STATE_FILE" ]; then . "$STATE_FILE"; fi`: the guard names it by
    # the variable, which SB022 did not match to the file
    body = (
        '#!/bin/bash\nset -euo pipefail\nSTATE_FILE=".runmps_wandb_ids"\n'
        'if [ -f "$STATE_FILE" ]; then\n    . "$STATE_FILE"\nfi\n'
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB022"]["status"] == "pass", checks["SB022"]

    # unguarded, it is one
    _report, checks = check_script(
        cli, tmp_path, body.replace('if [ -f "$STATE_FILE" ]; then\n', "").replace("fi\n", "")
    )
    (found,) = checks["SB022"]["findings"]
    assert "sources .runmps_wandb_ids, which does not exist" in found["message"], found


def test_a_multinode_runner_takes_its_nodes_and_address_from_its_caller(tmp_path, cli):
    # `MASTER_ADDR=10.0.0.1 NODE_RANK=1 NNODES=2 bash runs/multinode.sh` on each node (no #SBATCH lines): the
    # script's `${NNODES:-2}` and `${MASTER_ADDR:-localhost}` are defaults its caller overrides; SB030 said "the job
    # has 1 node" and SB031 "localhost on every node"
    body = (
        "#!/bin/bash\nset -e\n"
        'MASTER_ADDR="${MASTER_ADDR:-localhost}"\nMASTER_PORT="${MASTER_PORT:-9321}"\n'
        'NNODES="${NNODES:-2}"\nNODE_RANK="${NODE_RANK:-0}"\n'
        "torchrun --nproc_per_node=8 --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR "
        "--master_port=$MASTER_PORT -m scripts.base_train -- --depth=20\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB030"]["status"] == "pass", checks["SB030"]
    assert checks["SB031"]["status"] == "pass", checks["SB031"]

    # submitted as a one-node batch job, the same lines are wrong
    _report, checks = check_script(cli, tmp_path, body.replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH --nodes=1\n"))
    assert checks["SB030"]["findings"], checks["SB030"]
    assert checks["SB031"]["findings"], checks["SB031"]


def test_a_runner_that_needs_arguments_is_said_to_be_run_with_bash(tmp_path, cli):
    # a runner (no #SBATCH lines) that exits without arguments: "as `sbatch job.sh` runs it" for a script run by bash
    body = '#!/bin/bash\nif [ "$#" -eq 0 ]; then echo usage; exit 1; fi\npython -m scripts.base_train "$@"\n'
    _report, checks = check_script(cli, tmp_path, body)
    (found,) = checks["SB017"]["findings"]
    assert "(with no arguments, as `bash job.sh` runs it)" in found["message"], found
    assert found["fix"].startswith("pass the script its arguments (bash job.sh ARGS)"), found


def test_a_job_that_is_one_chunk_of_base_training_is_warned_not_failed(tmp_path, cli):
    # four 3h55m jobs chained with --dependency=afterany, each resuming the last: the first saves every 200 steps and
    # is meant to be cut off. SB006 called it an error, and its fix offered the --save-every it already passes
    co = _checkout(tmp_path / "co")
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\n#SBATCH -t 3:55:00\nset -e\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=24 --device-batch-size=16 "
        "--save-every=200\ntouch done.marker\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    (found,) = checks["SB006"]["findings"]
    assert found["severity"] == "warning", found
    assert "base training saves every 200 steps (up to " in found["message"], found
    assert "so the job is one chunk of the run and a later job must resume it" in found["message"], found
    assert found["fix"].startswith("resume it in a follow-up job (sbatch --dependency=afterany:JOBID)"), found

    # without the periodic save the whole run is lost at the limit: an error
    _report, checks = check_script(cli, tmp_path, body.replace(" --save-every=200", ""), "--checkout", str(co))
    (found,) = checks["SB006"]["findings"]
    assert found["severity"] == "error" and "chunk" not in found["message"], found

    # nor is a cut base a chunk where the job has more to run after it (SFT never starts)
    _report, checks = check_script(
        cli, tmp_path, body + "torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft\n", "--checkout", str(co)
    )
    (found,) = checks["SB006"]["findings"]
    assert found["severity"] == "error", found


def test_a_job_that_only_evaluates_a_base_model_plans_no_base_training(tmp_path, cli):
    # the last job of such a chain: base_eval, SFT, chat_eval. The plan counted base training's 6 hours in its time
    # (SB006: "shorter than the estimated 6:22:00") and DS001 asked for base training's 149 shards
    co = _checkout(tmp_path / "co")
    body = (
        "#!/bin/bash\n#SBATCH --gres=gpu:2\n#SBATCH -t 3:55:00\nset -e\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.base_eval -- --device-batch-size=16\n"
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft -- --device-batch-size=16\n"
    )
    report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    base = next(p for p in report["plan"]["phases"] if p["name"] == "base")
    assert not base["steps"] and base["note"].startswith("evaluation only"), base
    assert report["plan"]["total_seconds"] < 2 * 3600, report["plan"]["total_seconds"]
    assert checks["SB006"]["status"] == "pass", checks["SB006"]
    assert checks["DS001"]["status"] == "skip", checks["DS001"]


def test_a_pods_own_variables_are_set_when_a_runner_written_for_it_runs(tmp_path, cli):
    # a RunPod runner: `echo "starting on pod=$RUNPOD_POD_ID"` under set -u was "unbound variable: bash stops there"
    body = '#!/bin/bash\nset -euo pipefail\necho "starting on pod=$RUNPOD_POD_ID"\npython -m scripts.base_train\n'
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB035"]["status"] == "pass", checks["SB035"]

    _report, checks = check_script(cli, tmp_path, body.replace("RUNPOD_POD_ID", "MY_POD_ID"))
    (found,) = checks["SB035"]["findings"]
    assert "expands $MY_POD_ID under `set -u`" in found["message"], found


WRAPPER = """import argparse
import sys


def _own_flags():
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--mix-ratio", type=float, default=0.3)
    own, rest = pre.parse_known_args()
    sys.argv = [sys.argv[0]] + rest
    return own


if __name__ == "__main__":
    _own_flags()
    import scripts.base_train  # noqa: F401  (base_train trains at import, with the flags left in sys.argv)
"""


def test_a_wrapper_entry_point_passes_the_flags_it_does_not_declare_to_the_one_it_runs(tmp_path, cli):
    # `-m scripts.clarinet_train -- --mix-ratio=0.3 --depth=24 ...`: a wrapper that keeps its own flags
    # (parse_known_args) and imports scripts.base_train with the rest; SB010 called --depth, --run ... unknown flags
    co = _checkout(tmp_path / "co")
    (co / "scripts" / "wrap_train.py").write_text(WRAPPER)
    body = f"{HEAD}{T} scripts.wrap_train -- --mix-ratio=0.3 --depth=24 --target-param-data-ratio=8 --run=dummy\n"
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["SB010"]["status"] == "pass", checks["SB010"]

    # a flag neither declares is still one, said with both files
    _report, checks = check_script(
        cli, tmp_path, body.replace("--target-param-data-ratio", "--target_param_data_ratio"), "--checkout", str(co)
    )
    (found,) = checks["SB010"]["findings"]
    assert (
        "`--target_param_data_ratio` is not accepted by this checkout: it declares `--target-param-data-ratio`"
        in (found["message"])
    )
    assert "and the scripts.base_train it runs" in found["message"], found

    # a wrapper whose rest goes where preflight cannot follow: its unknown flags are not judged
    (co / "scripts" / "wrap_train.py").write_text(WRAPPER.replace("import scripts.base_train", "import mylib.train"))
    _report, checks = check_script(
        cli, tmp_path, body.replace("--target-param-data-ratio", "--target_param_data_ratio"), "--checkout", str(co)
    )
    assert checks["SB010"]["status"] == "pass", checks["SB010"]


def test_a_batch_shell_that_runs_a_trapping_runner_as_a_child_is_told_to_exec_it(tmp_path, cli):
    # `#SBATCH --signal=B:USR1@900` and, last, `bash runs/train_4b.sh`, whose own `trap forward USR1` forwards the
    # signal to the trainer it starts with &: the batch shell (no trap) dies of USR1 and the runner never gets it
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "train.sh").write_text(
        "#!/bin/bash\nforward() { kill -USR1 $PID; }\ntrap forward USR1\n"
        f"{T} scripts.base_train -- --depth=20 &\nPID=$!\nwait $PID\n"
    )
    body = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\n#SBATCH --signal=B:USR1@900\nset -e\n"
    _report, checks = check_script(cli, tmp_path, body + "bash runs/train.sh\n")
    (found,) = checks["SB016"]["findings"]
    assert "(runs/train.sh, which it runs as a child at line 6, traps USR1 itself at its line 3" in found["message"]
    assert found["fix"].startswith("`exec bash runs/train.sh` (line 6): the runner becomes the batch shell"), found

    # with more to run after it, exec is no fix: the usual one
    _report, checks = check_script(cli, tmp_path, body + "bash runs/train.sh\necho done\n")
    (found,) = checks["SB016"]["findings"]
    assert found["fix"].startswith("trap USR1 and forward it"), found

    # exec'd, the runner is the batch shell: its trap counts
    _report, checks = check_script(cli, tmp_path, body + "exec bash runs/train.sh\n")
    assert checks["SB016"]["status"] == "pass", checks["SB016"]


def test_a_script_whose_flags_mix_the_styles_is_dated_by_its_trainers(tmp_path, cli):
    # base_train's dash flags beside tok_train's `--max_chars` (a fork half-way through the 2026-01-13 renaming):
    # no era took both, so the era fell back to classic and SB010 called every dash flag of base_train wrong
    body = (
        "#!/bin/bash\nset -e\npython -m scripts.tok_train --max_chars=500000000\n"
        "python -m scripts.base_train --depth=12 --max-seq-len=1024 --device-batch-size=16 --num-iterations=100\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    assert report["profile"]["name"] != "classic", report["profile"]
    assert "flags of both styles: --max_chars does not fit the trainers' dashes" in report["profile"]["reason"]
    assert not [f for f in checks["SB010"]["findings"] if "uses dashes" in f["message"]], checks["SB010"]


def test_a_placeholder_in_a_usage_line_is_no_secret(tmp_path, cli):
    # `#   export GITHUB_TOKEN="your_github_token"` and `echo "  export GITHUB_TOKEN='ghp_your_token_here'"`: two
    # SB009 errors ("revoke the key") for text that holds no key
    body = (
        '#!/bin/bash\n#   export GITHUB_TOKEN="your_github_token"\n'
        "echo \"  export GITHUB_TOKEN='ghp_your_token_here'\"\npython -m scripts.base_train\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["SB009"]["status"] == "pass", checks["SB009"]

    _report, checks = check_script(cli, tmp_path, body + "export GITHUB_TOKEN=ghp_" + "a1B2" * 9 + "\n")
    (found,) = checks["SB009"]["findings"]
    assert found["location"]["line"] == 5, found


def test_an_unknown_flags_suggestion_is_the_same_setting_not_a_near_spelling_of_another(tmp_path, cli):
    # base_eval `--model-step=$step` where the checkout declares `--step`: "remove --model-step"; chat_sft
    # `--eval_steps=4` where it declares `--eval-tokens`: "did you mean --eval-tokens?" (steps are no tokens)
    co = _checkout(tmp_path / "co")
    (co / "scripts" / "base_eval.py").write_text(
        'import argparse\np = argparse.ArgumentParser()\np.add_argument("--step", type=int, default=None)\n'
        'p.add_argument("--model-tag", type=str, default=None)\n'
    )
    (co / "scripts" / "chat_sft.py").write_text(
        'import argparse\np = argparse.ArgumentParser()\np.add_argument("--eval-tokens", type=int, default=1)\n'
        'p.add_argument("--eval-every", type=int, default=150)\n'
    )
    body = (
        f"{HEAD}step=2000\n{T} scripts.base_eval -- --model-tag=d20 --model-step=$step\n"
        f"{T} scripts.chat_sft -- --eval_steps=4 --eval-evry=100\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    by_flag = {f["message"].split("`")[1]: f for f in checks["SB010"]["findings"]}
    assert "(did you mean --step?)" in by_flag["--model-step"]["message"], by_flag
    assert by_flag["--model-step"]["fix"] == "write --step=$step", by_flag
    assert "did you mean" not in by_flag["--eval_steps"]["message"], by_flag
    assert "(did you mean --eval-every?)" in by_flag["--eval-evry"]["message"], by_flag  # a typo still is one


def test_a_gpu_count_written_before_the_model_still_names_it(tmp_path, cli):
    # "# It is designed to run on a blank 4XH20 GPU node": the count glued to the model hid H20, and the plan
    # assumed H100s (about 6.7 times H20's peak)
    body = "#!/bin/bash\n# It is designed to run on a blank 4XH20 GPU node\nset -e\n"
    body += "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=20\n"
    report, _checks = check_script(cli, tmp_path, body)
    assert report["plan"]["gpu_name"] == "H20", report["plan"]["gpu_name"]


def test_a_command_kept_in_a_quoted_variable_over_several_lines_is_read_flag_by_flag(tmp_path, cli):
    # TRAIN_CMD="python -m scripts.base_train \\<newline> --device-batch-size=8 \\<newline> --save-every=500" then
    # `eval $TRAIN_CMD`: inside double quotes bash removes a backslash-newline, preflight kept it, the flags came
    # out as " --device-batch-size=8" and were lost: GPU003 said "device batch 32 needs 69.8 GiB" and SB007
    # "saves only at the end"
    body = (
        "#!/bin/bash\n#SBATCH --gpus=l40s:1\n#SBATCH -t 48:00:00\nset -e\n"
        'TRAIN_CMD="python -m scripts.base_train \\\n    --depth=20 \\\n    --device-batch-size=8 \\\n'
        '    --save-every=500"\neval $TRAIN_CMD\n'
    )
    report, checks = check_script(cli, tmp_path, body)
    assert report["plan"]["device_batch_size"] == 8, report["plan"]["device_batch_size"]
    assert checks["GPU003"]["status"] != "fail", checks["GPU003"]
    assert checks["SB007"]["status"] == "pass", checks["SB007"]


def test_a_term_trap_is_judged_by_the_checkouts_own_trainer_and_its_foreground_launch(tmp_path, cli):
    # `trap forward TERM` around a backgrounded, waited-for base_train whose checkout registers its own SIGTERM
    # handler in a loop over names: SB016 said the trainer runs "in the foreground" and "the no-mid era's trainers
    # do not save on a signal"
    co = _checkout(tmp_path / "co")
    handler = (
        "import signal\n_stop = False\ndef _handle(signum, frame):\n    global _stop\n    _stop = True\n"
        'for _name in ("SIGUSR1", "SIGTERM"):\n    signal.signal(getattr(signal, _name), _handle)\n'
    )
    base_train = co / "scripts" / "base_train.py"
    plain = base_train.read_text()
    base_train.write_text(handler + plain)
    body = (
        f"{HEAD}forward() {{ kill -TERM $PID; }}\ntrap forward TERM\n"
        f"{T} scripts.base_train -- --depth=20 --save-every=500 &\nPID=$!\nwait $PID\ntrap - TERM\n"
        f"{T} scripts.base_eval\n{T} scripts.chat_sft\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    assert checks["SB016"]["status"] == "pass", checks["SB016"]

    # a trainer without its own handler: the finding names the launch that does run in the foreground
    base_train.write_text(plain)
    (co / "scripts" / "chat_sft.py").write_text("import argparse\n")
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    (found,) = checks["SB016"]["findings"]
    assert "bash runs it only after scripts.chat_sft (line 12), running in the foreground" in found["message"], found


def test_a_runners_required_variable_is_its_callers_and_the_rest_is_still_read(tmp_path, cli):
    # a pod's start script: `: "${HF_TOKEN:?HF_TOKEN must be set}"` (the pod's environment sets it), then the
    # training. With HF_TOKEN unset here, everything after the guard was unread: its downloads, the
    # OMP_NUM_THREADS it exports (ENV004 "not set"), the training it runs (no plan)
    body = (
        '#!/bin/bash\nset -euo pipefail\n: "${HF_TOKEN:?HF_TOKEN must be set}"\nexport OMP_NUM_THREADS=1\n'
        'export HF_HUB_TOKEN="${HF_TOKEN}"\npython -m nanochat.dataset -n 8\n'
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12\n"
    )
    report, checks = check_script(cli, tmp_path, body, env={"HF_TOKEN": ""})
    (found,) = checks["SB017"]["findings"]
    assert found["severity"] == "warning" and "whatever runs it must set it" in found["message"], found
    assert checks["ENV004"]["status"] == "pass", checks["ENV004"]
    assert [f["location"]["line"] for f in checks["SB011"]["findings"]] == [6], checks["SB011"]
    assert report["plan"]["depth"] == 12, report["plan"]
    assert checks["SB035"]["status"] == "pass", checks["SB035"]  # the guard asks for HF_TOKEN already

    # a batch job's own environment is this shell's (sbatch passes it): there the guard ends the job here
    report, checks = check_script(
        cli, tmp_path, body.replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH --gres=gpu:8\n"), env={"HF_TOKEN": ""}
    )
    (found,) = checks["SB017"]["findings"]
    assert found["severity"] == "error", found
    assert checks["SB011"]["status"] != "fail", checks["SB011"]


def test_a_quoted_program_of_hundreds_of_lines_is_one_command(tmp_path, cli):
    # `python -c "..."` writing 255 lines of identity conversations: over the 200 lines a quote was followed, it was
    # "line 169 cannot be parsed: unterminated quote" (SB015, an error), twice, and the lines after it were lost
    program = "\n".join(f"rows.append({{'n': {k}, 'text': 'line {k}'}})" for k in range(300))
    body = (
        f'#!/bin/bash\nset -e\npython -c "\nrows = []\n{program}\nprint(len(rows))\n"\n'
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12\n"
    )
    report, checks = check_script(cli, tmp_path, body)
    assert checks["SB015"]["status"] == "pass", checks["SB015"]
    assert report["plan"]["depth"] == 12, report["plan"]

    # a quote that never closes still is one, at its line
    _report, checks = check_script(cli, tmp_path, body.replace('print(len(rows))\n"', "print(len(rows))"))
    assert [f["location"]["line"] for f in checks["SB015"]["findings"]][:1] == [3], checks["SB015"]


def test_a_forks_own_tokenizer_trainer_trains_the_tokenizer(tmp_path, cli):
    # `python -m scripts.tok_train_wiki --max-chars=2000000000` (a fork's variant that trains on WikiText): TOK001
    # said "the script does not train a tokenizer" and asked for `python -m scripts.tok_train`
    body = (
        "#!/bin/bash\nset -e\npython -m scripts.tok_train_wiki --max-chars=2000000000\npython -m scripts.base_train\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["TOK001"]["status"] != "fail", checks["TOK001"]

    _report, checks = check_script(
        cli, tmp_path, body.replace("python -m scripts.tok_train_wiki --max-chars=2000000000\n", "")
    )
    assert checks["TOK001"]["status"] == "fail", checks["TOK001"]


def test_base_training_told_where_its_data_is_is_not_asked_for_base_data_shards(tmp_path, cli):
    # `-m scripts.base_train --data_dir=$DATA_DIR` (a fork's flag: ClimbMix on /lustre) and `--dataset-kind
    # paramgolf`: DS001 asked for 217 shards in $NANOCHAT_BASE_DIR/base_data, which those runs never read
    body = f"{HEAD}DATA_DIR=/lustre/data/climbmix\n{T} scripts.base_train -- --depth=20 --data_dir=$DATA_DIR\n"
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["DS001"]["status"] == "skip", checks["DS001"]
    assert "`--data_dir=$DATA_DIR` (line 6)" in checks["DS001"]["reason"], checks["DS001"]
    _report, checks = check_script(cli, tmp_path, body.replace("--data_dir=$DATA_DIR", "--dataset-kind paramgolf"))
    assert checks["DS001"]["status"] == "skip", checks["DS001"]

    _report, checks = check_script(cli, tmp_path, body.replace(" --data_dir=$DATA_DIR", ""))
    assert checks["DS001"]["status"] == "fail", checks["DS001"]


def test_torchrun_without_nproc_per_node_starts_one_process(tmp_path, cli):
    # `torchrun --standalone -m scripts.base_train ...` with no --nproc_per_node: torchrun's default is 1 process;
    # the plan assumed 8 GPUs ("NOT divisible"), and a job asking for 8 GPUs was not told that 7 sit idle
    body = "#!/bin/bash\nset -e\ntorchrun --standalone -m scripts.base_train -- --depth=4 --total_batch_size=512\n"
    report, _checks = check_script(cli, tmp_path, body)
    assert report["plan"]["world_size"] == 1, report["plan"]["world_size"]

    job = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ntorchrun --standalone -m scripts.base_train -- --depth=12\n"
    _report, checks = check_script(cli, tmp_path, job)
    (found,) = checks["SB005"]["findings"]
    assert found["message"].startswith(
        "torchrun without --nproc_per_node starts 1 process (its default) per node, but the job requests 8 GPU(s)"
    ), found
    assert found["fix"].startswith("use --nproc_per_node=8"), found


def test_every_periodic_checkpoint_is_counted_on_disk(tmp_path, cli):
    # `--save-every=200` over a 5,568-step run: nanochat deletes no checkpoint, so 28 of them stay (about 170 GB
    # at d24); the plan counted one, and FS002 compared the free space with that
    body = f"{HEAD}{T} scripts.base_train -- --depth=12 --num-iterations=1000 --save-every=200\n"
    report, _checks = check_script(cli, tmp_path, body)
    (base,) = [p for p in report["plan"]["phases"] if p["name"] == "base"]
    assert base["saves"] == 5, base  # steps 200, 400, 600, 800 and the last, 1000
    once = base["model_bytes"] + base["optim_bytes"]
    report2, _checks = check_script(cli, tmp_path, body.replace(" --save-every=200", ""))
    assert report["plan"]["disk_bytes"] - report2["plan"]["disk_bytes"] == 4 * once


def test_a_start_command_that_runs_no_python_starts_no_wandb(tmp_path, cli):
    # a pod's start command: exports WANDB_RUN for later, clones, installs, and hands over to the image's
    # /start.sh; "wandb run 'nanochat-speedrun' will start wandb ... the phase crashes" (ENV002, an error) and
    # "OMP_NUM_THREADS is not set" (ENV004) for a script that starts no Python
    body = (
        '#!/bin/bash\nset -euo pipefail\nexport WANDB_RUN="${WANDB_RUN:-nanochat-speedrun}"\n'
        "git clone https://example.invalid/nanochat.git /workspace/nanochat\nexec /start.sh\n"
    )
    _report, checks = check_script(cli, tmp_path, body)
    assert checks["ENV002"]["status"] != "fail", checks["ENV002"]
    assert checks["ENV004"]["status"] != "warn", checks["ENV004"]

    # with a launch after it, they judge it again
    _report, checks = check_script(
        cli, tmp_path, body.replace("exec /start.sh\n", "python -m scripts.base_train --run=$WANDB_RUN\n")
    )
    assert checks["ENV002"]["status"] == "fail", checks["ENV002"]
    assert checks["ENV004"]["status"] == "warn", checks["ENV004"]


def test_a_gpu_named_in_the_scripts_file_name_is_its_authors(tmp_path, cli):
    # speedrun_1x3090.sh keeps upstream's header ("designed to run ... on 8XH100 node") and trains with plain
    # `python -m`: the plan called it a CPU run, then (reading the header) an H100; its own name says 3090
    body = (
        "#!/bin/bash\n# It is designed to run in ~4 hours on 8XH100 node at $3/GPU/hour.\nset -e\n"
        "uv sync --extra gpu\npython -m scripts.base_train --depth=20\n"
    )
    (tmp_path / "speedrun_1x3090.sh").write_text(body)
    import json

    proc = cli(
        "preflight", "check", "speedrun_1x3090.sh", "--format", "json", cwd=tmp_path, env={"HOME": str(tmp_path)}
    )
    plan = json.loads(proc.stdout)["plan"]
    assert plan["gpu_name"] == "RTX 3090", plan["gpu_name"]


def test_a_mac_runners_caffeinate_runs_its_training(tmp_path, cli):
    # `caffeinate -i uv run python -m scripts.train_phrase_gpt ...` (macOS: stay awake while it runs): the launch
    # behind it was not seen, so the script looked like one that runs no Python at all
    body = "#!/bin/bash\nset -e\ncaffeinate -i uv run python -m scripts.base_train --depth=4 --device_type=mps\n"
    report, checks = check_script(cli, tmp_path, body)
    assert report["plan"]["depth"] == 4, report["plan"]
    assert checks["ENV004"]["status"] == "warn", checks["ENV004"]


def test_base_loss_split_tokens_must_be_whole_steps_where_it_asserts_so(tmp_path, cli):
    # a CPU-sized config copied to 8 GPUs: `base_loss --device_batch_size=1 --split_tokens=4096` on a model of
    # sequence length 1024 over 8 ranks (8,192 tokens a step): base_loss (until 2026-02-01) asserts it and stops
    base = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=4 --max_seq_len=1024 --total_batch_size=8192\n"
    body = f"{HEAD}{base}torchrun --standalone --nproc_per_node=8 -m scripts.base_loss -- --device_batch_size=1 --split_tokens=4096\n"
    _report, checks = check_script(cli, tmp_path, body)
    found = [f for f in checks["GPU001"]["findings"] if f["message"].startswith("base_loss")]
    assert found and "split_tokens 4,096 (--split_tokens=4096) is not divisible by" in found[0]["message"], found
    assert found[0]["fix"] == "pass a multiple of 8,192: --split_tokens=8192", found[0]

    _report, checks = check_script(cli, tmp_path, body.replace("=4096", "=16384"))
    assert not [f for f in checks["GPU001"]["findings"] if f["message"].startswith("base_loss")], checks["GPU001"]


def test_an_entry_point_the_checkout_given_no_longer_has_is_not_fixed_by_a_cd(tmp_path, cli):
    # a script of the mid era run against a checkout without scripts/mid_train.py (removed 2026-01-31): SB018
    # said "cd to the nanochat checkout", which is where it already runs
    co = _checkout(tmp_path / "co")
    body = f"{HEAD}{T} scripts.base_train -- --depth=4\n{T} scripts.mid_train\n"
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(co))
    (found,) = checks["SB018"]["findings"]
    assert found["fix"].startswith("remove the launch or use the entry point that replaced it"), found
