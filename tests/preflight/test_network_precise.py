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
    downloads smol-smoltalk, MMLU, GSM8K and two files that the current era's SFT does not: the finding says
    they are needed if the checkout is no-mid's, marks them conditional, and names --checkout."""
    script = (
        "#!/bin/bash\nset -e\npython -m scripts.base_train --depth=4 --max-seq-len=512 --core-metric-every=-1\n"
        "python -m scripts.chat_sft --device-batch-size=4\n"
    )
    (sft,) = [f for f in _net(tmp_path / "alone", script) if f.data["phase"] == "sft"]
    assert sft.message.startswith(
        "phase sft downloads at run time if the checkout is of the no-mid era (the script's likeliest; in the "
        "current era this phase does not download these; --checkout tells):"
    )
    assert "smol-smoltalk" in sft.message and "words_alpha" in sft.message
    assert all(i.get("conditional") and i["not_in_eras"] == ["current"] for i in sft.data["items"])
    # with a no-mid checkout the era is known: the same downloads, stated plainly
    files = {"repo/nanochat/report.py": "", "repo/scripts/base_train.py": ""}  # what fingerprints no-mid
    (sft,) = [
        f
        for f in _net(tmp_path / "co", "#!/bin/bash\ncd {tmp}/repo\n" + script.split("\n", 2)[2], files)
        if f.data["phase"] == "sft"
    ]
    assert sft.message.startswith("phase sft downloads at run time: ")
    assert not any(i.get("conditional") for i in sft.data["items"])
