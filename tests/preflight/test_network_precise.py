"""NET001 is era-, flag-, checkout- and hardware-precise, checks HF datasets per config, and groups
its findings per phase (``data.phase``) with one prefetch command each."""

from __future__ import annotations

from preflight.testing import Scenario, run_scenario

ENV = {"HOME": "{tmp}/home"}
CFG = {"base-dir": "{tmp}/base"}
HF = "home/.cache/huggingface/datasets"
BUNDLE = {"base/eval_bundle/core.yaml": "tasks: []\n"}


def _net(tmp_path, script, files=None, config=None):
    result = run_scenario(
        Scenario(script=script, env=ENV, config={**CFG, **(config or {})}, files=files or {}),
        tmp_path,
        select=["NET001"],
    )
    return [f for c in result.checks for f in c.findings if f.data.get("phase")]


def test_mmlu_config_all_missing_though_auxiliary_train_is_cached(tmp_path):
    """The fork's documented failure: `Couldn't find cache for cais/mmlu for config 'all'`."""
    files = {
        **BUNDLE,
        "base/identity_conversations.jsonl": "[]",
        "base/words_alpha.txt": "a",
        f"{HF}/cais___mmlu/auxiliary_train/0.0.0/h/x.arrow": b"x",
        f"{HF}/HuggingFaceTB___smol-smoltalk/default/0.0.0/h/x.arrow": b"x",
        f"{HF}/openai___gsm8k/main/0.0.0/h/x.arrow": b"x",
    }
    found = _net(tmp_path, "#!/bin/bash\nset -e\ntorchrun -m scripts.mid_train\n", files)
    assert len(found) == 1 and found[0].data["phase"] == "mid"
    assert [i.get("configs") for i in found[0].data["items"]] == [["all"]]
    assert "load_dataset('cais/mmlu', 'all')" in found[0].fix


def test_core_metric_every_minus_one_needs_no_eval_bundle(tmp_path):
    script = "#!/bin/bash\nset -e\ntorchrun -m scripts.base_train -- --depth=20 --core_metric_every=-1\n"
    assert _net(tmp_path, script) == []
    found = _net(tmp_path, "#!/bin/bash\nset -e\ntorchrun -m scripts.base_train -- --depth=20\n")
    assert [f.data["phase"] for f in found] == ["base"] and "eval_bundle.zip" in found[0].fix
    # base_eval still needs it
    found = _net(tmp_path, script + "torchrun -m scripts.base_eval\n")
    assert [f.data["phase"] for f in found] == ["base"]


def _fa3(tmp_path, gpus, profile="argparse"):
    script = (
        f"#!/bin/bash\n#SBATCH --gpus={gpus}\nset -e\ntorchrun -m scripts.base_train -- --depth=20 "
        "--device-batch-size=16 --core-metric-every=-1\n"
    )
    found = _net(tmp_path, script, {f"{HF}/x": "x"}, config={"profile": profile})
    return [
        (i["source"], bool(i.get("conditional"))) for f in found for i in f.data["items"] if i["kind"] == "hf_kernel"
    ]


def test_fa3_kernel_only_on_the_gpus_that_load_it(tmp_path):
    # argparse era (Jan 2026): the Hopper kernel, which arrived inside the era (2026-01-11), so conditional
    assert _fa3(tmp_path, "h100:8") == [("varunneal/flash-attention-3", True)]
    assert _fa3(tmp_path, "l40s:1") == []  # the community kernel for Ada/Ampere came 2026-03-11, after the era
    assert _fa3(tmp_path, "v100:1") == []
    # no-mid era (Feb .. May 2026): Hopper always; Ada/Ampere from 2026-03-11 (conditional)
    assert _fa3(tmp_path, "h100:8", "no-mid") == [("varunneal/flash-attention-3", False)]
    assert _fa3(tmp_path, "l40s:1", "no-mid") == [("kernels-community/flash-attn3", True)]


def test_no_fa3_kernel_for_a_run_on_the_cpu(tmp_path):
    """Upstream's runcpu.sh: no GPU requested and a plain python trainer; it never loads a CUDA kernel
    (the run plan says CPU, and NET001 reads the same decision)."""
    script = "#!/bin/bash\nset -e\npython -m scripts.base_train --depth=6 --core-metric-every=-1\n"
    kernels = lambda found: [i["source"] for f in found for i in f.data["items"] if i["kind"] == "hf_kernel"]  # noqa: E731
    assert kernels(_net(tmp_path, script, config={"profile": "no-mid"})) == []
    # the same trainer under torchrun on a Hopper request does load it
    gpu = "#!/bin/bash\n#SBATCH --gpus=h100:1\nset -e\ntorchrun -m scripts.base_train -- --depth=6 --core-metric-every=-1\n"
    assert kernels(_net(tmp_path, gpu, config={"profile": "no-mid"})) == ["varunneal/flash-attention-3"]


def test_checkout_without_identity_or_words_alpha_needs_neither(tmp_path):
    """Before 2025-10-21 mid_train used no identity_conversations (the checkout says so)."""
    co = {
        "nanochat/nanochat/configurator.py": "",
        "nanochat/nanochat/report.py": "",
        "nanochat/scripts/base_train.py": "depth = 20\n",
        "nanochat/tasks/spellingbee.py": "",
        "nanochat/scripts/mid_train.py": "from tasks.mmlu import MMLU\n",
    }
    found = _net(tmp_path, "#!/bin/bash\nset -e\ncd {tmp}/nanochat\ntorchrun -m scripts.mid_train\n", {**BUNDLE, **co})
    items = [i["local"].rsplit("/", 1)[-1] for f in found for i in f.data["items"]]
    assert items and not any("identity" in i or "words_alpha" in i for i in items)
    co["nanochat/scripts/mid_train.py"] = "p = 'identity_conversations.jsonl'\n"
    found = _net(tmp_path, "#!/bin/bash\nset -e\ncd {tmp}/nanochat\ntorchrun -m scripts.mid_train\n", {**BUNDLE, **co})
    assert any(i["local"].endswith("identity_conversations.jsonl") for f in found for i in f.data["items"])


def test_tiktoken_prefetch_reaches_shared_storage(tmp_path):
    found = _net(tmp_path, "#!/bin/bash\nset -e\npython -m scripts.tok_eval\n")
    assert [f.data["phase"] for f in found] == ["tokenizer"]
    assert "/tmp/data-gym-cache" not in found[0].fix
    assert f"TIKTOKEN_CACHE_DIR={tmp_path}/base/tiktoken_cache" in found[0].fix


def test_a_guessed_era_says_which_downloads_depend_on_the_checkout(tmp_path):
    """Alone, the current era's CPU runner reads as no-mid (a tie: no-mid's less three flags). No-mid's SFT
    downloads smol-smoltalk, MMLU, GSM8K through the HF cache and two files, which the current era's SFT does
    only before a5a3a33 / 950a1dc (2026-07-03): the finding says they are needed if the checkout is no-mid's,
    what the other era does instead, marks them conditional, and names --checkout."""
    script = (
        "#!/bin/bash\nset -e\npython -m scripts.base_train --depth=4 --max-seq-len=512 --core-metric-every=-1\n"
        "python -m scripts.chat_sft --device-batch-size=4\n"
    )
    (sft,) = [f for f in _net(tmp_path / "alone", script) if f.data["phase"] == "sft"]
    assert sft.message.startswith(
        "phase sft downloads at run time if the checkout is of the no-mid era (the script's likeliest; in the "
        "current era: HuggingFaceTB/smol-smoltalk config default, cais/mmlu config all, openai/gsm8k config main, "
    )
    assert (
        "only if the checkout is older than 2026-07-03 (a5a3a33); cais/mmlu config auxiliary_train not at all; "
        in sft.message
    )
    assert (
        "identity_conversations.jsonl, words_alpha.txt word list only if the checkout is older than 2026-07-03 (950a1dc)"
        in sft.message
    )
    assert all(i.get("conditional") and "current" in i["not_in_eras"] for i in sft.data["items"])
    # with a no-mid checkout the era is known: the same downloads, stated plainly
    files = {  # what fingerprints no-mid, and an SFT of February 2026 (before ChatCORE and MMLU's config change)
        "repo/nanochat/report.py": "",
        "repo/scripts/base_train.py": "",
        "repo/scripts/chat_sft.py": 'MMLU(subset="auxiliary_train", split="train")\nidentity_conversations\n',
        "repo/tasks/spellingbee.py": "words_alpha\n",
    }
    (sft,) = [
        f
        for f in _net(tmp_path / "co", "#!/bin/bash\ncd {tmp}/repo\n" + script.split("\n", 2)[2], files)
        if f.data["phase"] == "sft"
    ]
    assert sft.message.startswith("phase sft downloads at run time: ")
    assert not any(i.get("conditional") for i in sft.data["items"])


TASKS = ("smoltalk", "mmlu", "gsm8k", "arc", "humaneval")


def test_a_checkout_that_fetches_the_hub_parquet_export_needs_task_data_per_split(tmp_path):
    """From a5a3a33 (2026-07-03) tasks/common.py's load_hub_dataset downloads each dataset's parquet export
    into BASE/task_data/<org>--<name>/<config>/<split>/ (manifest.json last) instead of the HF cache."""
    co = {  # a current-era checkout (no report.py, no mid_train.py) of a5a3a33 or later
        "repo/nanochat/gpt.py": "",
        "repo/scripts/base_train.py": "",
        "repo/scripts/chat_sft.py": "from scripts.chat_eval import run_chat_eval\n",
        "repo/tasks/common.py": "def load_hub_dataset(repo_id, subset='default', split='train'): ...\n",
        **{f"repo/tasks/{t}.py": "from tasks.common import Task, load_hub_dataset\n" for t in TASKS},
        # what the job already has: smol-smoltalk complete, MMLU's training split only
        "base/task_data/HuggingFaceTB--smol-smoltalk/default/train/manifest.json": '["00000.parquet"]',
        "base/task_data/HuggingFaceTB--smol-smoltalk/default/test/manifest.json": '["00000.parquet"]',
        "base/task_data/cais--mmlu/all/auxiliary_train/manifest.json": '["00000.parquet"]',
    }
    script = "#!/bin/bash\nset -e\ncd {tmp}/repo\ntorchrun -m scripts.chat_sft\n"
    (sft,) = _net(tmp_path, script, co)
    assert [(i["source"], i["configs"]) for i in sft.data["items"]] == [
        ("cais/mmlu", ["all/test"]),
        ("openai/gsm8k", ["main/train", "main/test"]),
        ("allenai/ai2_arc", ["ARC-Easy/test", "ARC-Challenge/test"]),  # ChatCORE during SFT
        ("openai/openai_humaneval", ["openai_humaneval/test"]),
    ]
    assert "HF dataset" not in sft.message and "identity" not in sft.message
    assert sft.fix.startswith(
        f"on a login node: cd {tmp_path}/repo && NANOCHAT_BASE_DIR={tmp_path}/base python -c "
        "\"from tasks.common import load_hub_dataset as get; get('cais/mmlu', 'all', 'test'); "
        "get('openai/gsm8k', 'main', 'train'); get('openai/gsm8k', 'main', 'test'); "
    )
    # --chatcore-every=-1: SFT no longer evaluates ARC and HumanEval
    (sft,) = _net(tmp_path, script.replace("chat_sft", "chat_sft -- --chatcore-every=-1"), co)
    assert [i["source"] for i in sft.data["items"]] == ["cais/mmlu", "openai/gsm8k"]


def test_classic_sft_alone_needs_mmlu_for_its_last_step(tmp_path):
    """Classic and argparse chat_sft evaluate MMLU accuracy at their last step, before saving: an SFT-only job
    without MMLU in the HF cache trains to the end and dies with no checkpoint."""
    files = {
        "base/identity_conversations.jsonl": "[]",
        "base/words_alpha.txt": "a",
        f"{HF}/allenai___ai2_arc/ARC-Easy/0.0.0/h/x.arrow": b"x",
        f"{HF}/allenai___ai2_arc/ARC-Challenge/0.0.0/h/x.arrow": b"x",
        f"{HF}/HuggingFaceTB___smol-smoltalk/default/0.0.0/h/x.arrow": b"x",
        f"{HF}/openai___gsm8k/main/0.0.0/h/x.arrow": b"x",
    }
    for profile in ("classic", "argparse"):
        found = _net(
            tmp_path / profile, "#!/bin/bash\nset -e\ntorchrun -m scripts.chat_sft\n", files, {"profile": profile}
        )
        assert [(f.data["phase"], [(i["source"], i["configs"]) for i in f.data["items"]]) for f in found] == [
            ("sft", [("cais/mmlu", ["all"])])
        ], profile


def test_the_prefetch_shares_the_jobs_hf_dirs_and_mirror(tmp_path):
    """A job that exports HF_DATASETS_CACHE reads its datasets there, not under HF_HOME: a prefetch into HF_HOME
    alone leaves the job without them. Its mirror (HF_ENDPOINT) is where the login node can reach the hub."""
    script = (
        "#!/bin/bash\nset -e\nexport HF_HOME={tmp}/hfh\nexport HF_DATASETS_CACHE={tmp}/hfd\n"
        "export HF_ENDPOINT=https://hf-mirror.com\ntorchrun -m scripts.mid_train\n"
    )
    found = _net(tmp_path, script.replace("{tmp}", str(tmp_path)))
    assert found, "mid downloads its datasets"
    assert f"HF_HOME={tmp_path}/hfh HF_DATASETS_CACHE={tmp_path}/hfd HF_ENDPOINT=https://hf-mirror.com python -c" in (
        found[0].fix
    )
    assert f"no local copy at {tmp_path}/hfd/" in found[0].message
