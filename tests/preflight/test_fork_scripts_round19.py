"""Shapes from a nineteenth round of public forks' job scripts (written here in our own words): Python a job runs
inline that downloads, directly or through its checkout's tasks; a base dir from the script's own default or relative
to the job; the width flags of a model; a variable set for a child script; #SBATCH lines below the first command; a
configurator.py left in an argparse checkout; a child script's launches the checkout lacks; a loader that does not
crop; a fork's SFT entry's downloads; a download through a wrapper's arguments."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nexport WANDB_RUN=dummy\n"
_TRAIN = "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4\n"


def _downloads(checks: dict) -> list[dict]:
    return [f for f in checks["SB011"]["findings"] if f["message"].startswith("the Python at line")]


def test_a_tokenizer_fetched_from_the_hub_by_inline_python_needs_the_internet(tmp_path, cli):
    # `python -c "... hf_hub_download('org/base-d20', 'tokenizer.pkl') ..."` before training: on an offline node it
    # is the first step to fail, and only uv's installer was reported
    body = (
        HEAD + 'python -c "\nfrom huggingface_hub import hf_hub_download\n'
        "path = hf_hub_download('org/base-d20', 'tokenizer.pkl')\nprint(path)\n\"\n" + _TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    (found,) = _downloads(checks)
    assert found["severity"] == "error", found
    assert found["location"]["line"] == 7, found  # the call's own line, inside the quoted code
    assert found["message"].startswith(
        "the Python at line 5 downloads: hf_hub_download('org/base-d20') (Hugging Face Hub download), but compute "
        "nodes are offline"
    ), found["message"]
    assert "HF_HUB_OFFLINE=1" in found["fix"], found["fix"]


def test_task_classes_of_the_checkout_built_in_a_background_heredoc_download(tmp_path, cli):
    # a heredoc builds the checkout's task classes to prefetch their datasets, in the background (`&`): each class's
    # own source calls load_dataset; the checkout is read (ast), never imported
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    (checkout / "tasks").mkdir()
    (checkout / "scripts" / "base_train.py").write_text("import argparse\n")
    (checkout / "tasks" / "chatmix.py").write_text(
        "from datasets import load_dataset\nclass ChatMix:\n    def __init__(self, split):\n"
        "        self.ds = load_dataset('org/chat-mix', split=split)\n"
    )
    (checkout / "tasks" / "local.py").write_text("class Local:\n    def __init__(self, path):\n        self.p = path\n")
    body = (
        HEAD + "python - <<'EOF' &\nfrom tasks.chatmix import ChatMix\nfrom tasks.local import Local\n"
        "Local('/scratch/x.jsonl')\nChatMix('train')\nChatMix('test')\nEOF\n" + _TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    (found,) = _downloads(checks)
    assert found["location"]["line"] == 9, found
    assert found["message"] == (
        "the Python at line 5 downloads: ChatMix('train'), ChatMix('test') (Hugging Face datasets download, through "
        "tasks.chatmix), but compute nodes are offline (unless the cache the checkout's code reads is filled "
        "already); it runs in the background and nothing checks its exit status"
    ), found["message"]
    assert found["severity"] == "warning", found  # the checkout's code may find its cache filled
    # a task that downloads through a helper of another checkout module (tasks.common's urlopen)
    (checkout / "tasks" / "common.py").write_text(
        "import urllib.request\ndef load_hub_dataset(repo):\n    return urllib.request.urlopen(repo)\n"
    )
    (checkout / "tasks" / "chatmix.py").write_text(
        "from tasks.common import load_hub_dataset\nclass ChatMix:\n    def __init__(self, split):\n"
        "        self.ds = load_hub_dataset('org/chat-mix')\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    (found,) = _downloads(checks)
    assert "(URL download, through tasks.chatmix)" in found["message"], found["message"]


def test_inline_python_that_reads_local_files_or_the_cache_only(tmp_path, cli):
    # load_dataset's packaged builders read local files: no download
    local = (
        HEAD + "python -c \"from datasets import load_dataset; load_dataset('json', data_files='/scratch/a.jsonl')\"\n"
    )
    _report, checks = check_script(cli, tmp_path, local + _TRAIN, "--profile", "current")
    assert not _downloads(checks), checks["SB011"]
    # with HF_HUB_OFFLINE=1 the Hub call reads the cache: a warning that the cache must be filled first
    cached = (
        HEAD + "export HF_HUB_OFFLINE=1\npython -c \"from huggingface_hub import snapshot_download as s; s('org/m')\"\n"
    )
    _report, checks = check_script(cli, tmp_path, cached + _TRAIN, "--profile", "current")
    (found,) = _downloads(checks)
    assert found["severity"] == "warning", found
    assert "reads the Hugging Face cache only" in found["message"], found["message"]
    # code that does not parse as Python is not guessed at
    broken = HEAD + "python -c \"load_dataset('org/x'\"\n"
    _report, checks = check_script(cli, tmp_path, broken + _TRAIN, "--profile", "current")
    assert not _downloads(checks), checks["SB011"]


def test_a_base_dir_from_the_scripts_own_default_is_said_to_be_the_scripts(tmp_path, cli):
    # `export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"` with nothing set before the job: ENV003
    # said "(NANOCHAT_BASE_DIR in the environment)", as if the user had set it
    body = HEAD + 'export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"\n' + _TRAIN
    env = {"HOME": str(tmp_path / "home")}
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current", env={**env, "NANOCHAT_BASE_DIR": ""})
    (home,) = checks["ENV003"]["findings"]
    assert home["location"]["line"] == 5, home
    assert home["message"].startswith(
        f"the script sets NANOCHAT_BASE_DIR to {tmp_path}/home/.cache/nanochat in the home directory (line 5, its "
        "default when nothing is set before the job)"
    ), home["message"]
    assert home["fix"].startswith("export NANOCHAT_BASE_DIR=/scratch/$USER/nanochat before sbatch"), home["fix"]
    # set before the job to scratch: the default is not taken, nothing to say
    _report, checks = check_script(
        cli, tmp_path, body, "--profile", "current", env={**env, "NANOCHAT_BASE_DIR": str(tmp_path / "scratch")}
    )
    assert not checks["ENV003"]["findings"], checks["ENV003"]


def _width(report: dict) -> tuple[int, int]:
    return report["plan"]["model_dim"], report["plan"]["n_head"]


def test_the_plan_takes_the_width_the_script_gives(tmp_path, cli):
    # --aspect-ratio and --head-dim set the width (a smoke test of 32 wide, 2 heads): the plan took the defaults'
    # 128 wide, and a fork's --model-dim=640 at depth 64 was planned as 4,096 wide (13B parameters, a false disk error)
    small = (
        HEAD
        + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=2 --aspect-ratio=16 --head-dim=16\n"
    )
    report, _checks = check_script(cli, tmp_path, small, "--profile", "current")
    assert _width(report) == (32, 2), report["plan"]
    wide = (
        HEAD
        + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=64 --model-dim=640 --head-dim=128\n"
    )
    report, _checks = check_script(cli, tmp_path, wide, "--profile", "current")
    assert _width(report) == (640, 5), report["plan"]
    assert report["plan"]["params"] < 400_000_000, report["plan"]


def test_a_checkout_that_rounds_the_width_up_to_whole_heads_is_planned_so(tmp_path, cli):
    # from 2026-01-18, base_train nudges depth x aspect up to a multiple of head_dim: d11 is 768 wide, not 704
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    train = (
        "import argparse\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--depth", type=int, default=20)\n'
        'parser.add_argument("--aspect-ratio", type=int, default=64)\n'
        'parser.add_argument("--head-dim", type=int, default=128)\nargs = parser.parse_args()\n'
        "base_dim = args.depth * args.aspect_ratio\n"
    )
    body = HEAD + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=11\n"
    (checkout / "scripts" / "base_train.py").write_text(train + "model_dim = base_dim\n")
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    assert _width(report)[0] == 704, report["plan"]
    nudge = "model_dim = ((base_dim + args.head_dim - 1) // args.head_dim) * args.head_dim\n"
    (checkout / "scripts" / "base_train.py").write_text(train + nudge)
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    assert _width(report) == (768, 6), report["plan"]


def test_a_variable_set_for_the_child_script_reaches_its_launch(tmp_path, cli):
    # `WANDB_RUN=speedrun bash speedrun_cluster.sh`: the child's `--run=$WANDB_RUN` is speedrun, a named run that
    # needs wandb credentials; it was taken for an unset name ("dummy": wandb off, no finding)
    (tmp_path / "child.sh").write_text(
        "#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4 "
        "--run=$WANDB_RUN\n"
    )
    body = "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nWANDB_RUN=speedrun bash child.sh\n"
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current", env={"WANDB_API_KEY": ""})
    (creds,) = checks["ENV002"]["findings"]
    assert creds["message"].startswith(
        "wandb run 'speedrun' (--run=$WANDB_RUN, WANDB_RUN=speedrun set for the script it runs (job.sh:4))"
    ), creds["message"]


def test_a_gpu_request_below_the_first_command_is_an_error_and_the_gpu_fix_moves_it(tmp_path, cli):
    # `if [ "$1" = --prep ]; then ...; fi` before the #SBATCH block: sbatch ignores --gres and --time there. SB001
    # was a warning, and each launch's SB005 said "add #SBATCH --gres=gpu:8", a line the script already had
    body = (
        '#!/bin/bash\nif [ "$1" = "--prep" ]; then\n  echo prep\nfi\n#SBATCH --job-name=nc\n#SBATCH --gres=gpu:8\n'
        "set -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=4\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    by_line = {f["location"]["line"]: f for f in checks["SB001"]["findings"]}
    assert by_line[5]["severity"] == "warning", by_line[5]  # a job name
    assert by_line[6]["severity"] == "error" and by_line[6]["message"].endswith("and the job gets no GPUs"), by_line[6]
    (gpus,) = checks["SB005"]["findings"]
    assert "#SBATCH --gres=gpu:8 (line 6) comes after the first command (line 2)" in gpus["message"], gpus
    assert gpus["fix"] == "move line 6 (and the #SBATCH lines after it) above line 2", gpus["fix"]


def test_a_configurator_left_beside_an_argparse_base_train_is_not_the_configurator_era(tmp_path, cli):
    # a fork kept nanochat/configurator.py after upstream moved to argparse: the era was "classic (configurator)"
    checkout = tmp_path / "nanochat"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "nanochat").mkdir()
    for f in ("nanochat/configurator.py", "nanochat/report.py", "scripts/mid_train.py"):
        (checkout / f).write_text("\n")
    base_train = checkout / "scripts" / "base_train.py"
    base_train.write_text(
        'import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument("--depth", type=int)\n'
    )
    body = HEAD + "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=4\n"
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert report["profile"]["name"] == "argparse", report["profile"]
    assert "its configurator.py is a leftover" in report["profile"]["reason"], report["profile"]
    # a base_train that execs it is the configurator era
    base_train.write_text("exec(open(os.path.join('nanochat', 'configurator.py')).read())\n")
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert report["profile"]["name"] == "classic", report["profile"]


def _bare_checkout(root, *entries: str):
    (root / "scripts").mkdir(parents=True)
    (root / "nanochat").mkdir()
    for e in entries:
        (root / "scripts" / f"{e}.py").write_text("import argparse\n")
    return root


def test_a_child_scripts_launch_of_a_script_the_checkout_lacks_is_found(tmp_path, cli):
    # `bash speedrun_cluster.sh` launches scripts.base_loss and scripts.mid_train, which this fork's checkout no longer
    # has: SB018 looked at the batch script's own launches only
    checkout = _bare_checkout(tmp_path / "nanochat", "base_train", "chat_sft")
    (checkout / "run.sh").write_text(
        "#!/bin/bash\ntorchrun --standalone --nproc_per_node=1 -m scripts.base_train\n"
        "torchrun --standalone --nproc_per_node=1 -m scripts.base_loss\n"
        "torchrun --standalone --nproc_per_node=1 -m scripts.mid_train\n"
    )
    body = "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nbash run.sh\n"
    (tmp_path / "run.sh").write_text((checkout / "run.sh").read_text())
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    (lacking,) = checks["SB018"]["findings"]
    assert lacking["message"].startswith(
        f"run.sh launches scripts.base_loss (line 3), scripts.mid_train (line 4), which the checkout given ({checkout}) "
        "does not have"
    ), lacking["message"]
    assert lacking["severity"] == "error", lacking


def test_a_pythonpath_known_only_at_run_time_no_longer_hides_a_missing_entry(tmp_path, cli):
    # `export PYTHONPATH="$PYTHONPATH:$(pwd)/src"` skipped SB018 whole; the missing module is now a warning that names
    # the entry it could still be in (a command's output: known only when the job runs)
    checkout = _bare_checkout(tmp_path / "nanochat", "base_train")
    body = (
        '#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\nexport PYTHONPATH="$PYTHONPATH:$(pwd)/src"\n'
        "torchrun --standalone --nproc_per_node=1 -m scripts.base_loss\n"
    )
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current")
    (missing,) = checks["SB018"]["findings"]
    assert missing["severity"] == "warning", missing
    assert "$(pwd)/src (known only when the job runs)" in missing["message"], missing["message"]


def test_a_checkout_whose_base_train_loads_no_cropping_loader_needs_every_shard_once(tmp_path, cli):
    # the argparse era's loader crops 35% of tokens (upstream's 240 -> 370 shards), but a checkout of that era whose
    # base_train streams (no bestfit loader) reads them all: its own speedrun downloads 240, and 333 were demanded for d20
    checkout = _bare_checkout(tmp_path / "nanochat", "mid_train")
    (checkout / "nanochat" / "report.py").write_text("\n")
    flags = 'import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument("--device-batch-size")\n'
    body = (
        HEAD
        + "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --target-param-data-ratio=20\n"
    )
    (checkout / "scripts" / "base_train.py").write_text(flags + "from nanochat.dataloader import loader_bos_bestfit\n")
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert report["profile"]["name"] == "argparse", report["profile"]
    assert (report["plan"]["shards_min"], report["plan"]["shards_recommended"]) == (283, 370), report["plan"]
    (checkout / "scripts" / "base_train.py").write_text(flags + "from nanochat.dataloader import stream_loader\n")
    report, _checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    assert (report["plan"]["shards_min"], report["plan"]["shards_recommended"]) == (185, 240), report["plan"]


def test_a_fork_sft_entry_needs_the_downloads_its_own_tasks_name(tmp_path, cli):
    # scripts.chat_sft_pre1985 trains on GSM8K and spelling tasks only; NET001 listed the era's SFT downloads (MMLU,
    # ARC, SmolTalk ...) and missed none of them by reading the fork's own entry and the tasks it imports
    checkout = _bare_checkout(tmp_path / "nanochat", "base_train", "chat_sft", "chat_eval")
    (checkout / "nanochat" / "report.py").write_text("\n")
    (checkout / "tasks").mkdir()
    for name, source in (("gsm8k", "openai/gsm8k"), ("mmlu", "cais/mmlu"), ("smoltalk", "HuggingFaceTB/smol-smoltalk")):
        (checkout / "tasks" / f"{name}.py").write_text(f"from datasets import load_dataset\nDS = '{source}'\n")
    (checkout / "tasks" / "spellingbee.py").write_text("WORD_LIST_URL = 'https://h/words_alpha.txt'\n")
    (checkout / "scripts" / "chat_sft_pre1985.py").write_text(
        "import argparse\nfrom tasks.gsm8k import GSM8K\nfrom tasks.spellingbee import SpellingBee\n"
    )
    body = HEAD + "torchrun --standalone --nproc_per_node=1 -m scripts.chat_sft_pre1985\n"
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout))
    (sft,) = [f for f in checks["NET001"]["findings"] if f.get("data", {}).get("phase") == "sft"]
    sources = {item["source"] for item in sft["data"]["items"]}
    assert "openai/gsm8k" in sources and any("words_alpha" in s for s in sources), sources
    assert not sources & {"cais/mmlu", "HuggingFaceTB/smol-smoltalk", "allenai/ai2_arc"}, sources


def test_a_relative_base_dir_is_the_jobs_working_directorys(tmp_path, cli):
    # `export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-cache}`: nanochat opens it relative to where the job runs (the
    # checkout it is submitted from); it was looked for relative to where preflight ran
    checkout = _bare_checkout(tmp_path / "nanochat", "base_train")
    (checkout / "cache" / "tokenizer").mkdir(parents=True)
    (checkout / "cache" / "tokenizer" / "tokenizer.pkl").write_bytes(b"x")
    body = HEAD + "export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-cache}\n" + _TRAIN
    env = {"NANOCHAT_BASE_DIR": ""}
    _report, checks = check_script(cli, tmp_path, body, "--checkout", str(checkout), "--profile", "current", env=env)
    (shards, *_rest) = checks["DS001"]["findings"]
    assert shards["location"]["path"] == f"{checkout}/cache/base_data_climbmix", shards["location"]


def test_a_download_through_a_wrappers_arguments_is_the_callers_line(tmp_path, cli):
    # `./run.sh -m nanochat.dataset -n 8` where run.sh ends in `exec python "$@"`: SB011 pointed at run.sh's exec
    # line (editing it as told breaks every step), and `uv sync -q || uv sync` was said twice
    (tmp_path / "run.sh").write_text('#!/bin/bash\nuv sync -q > /dev/null 2>&1 || uv sync\nexec python "$@"\n')
    body = HEAD + "./run.sh -m nanochat.dataset -n 8\n" + _TRAIN
    _report, checks = check_script(cli, tmp_path, body, "--profile", "current")
    where = [(Path(f["location"]["path"]).name, f["location"]["line"]) for f in checks["SB011"]["findings"]]
    assert ("job.sh", 5) in where and ("run.sh", 3) not in where, where
    assert where.count(("run.sh", 2)) == 1, where
