"""Good/bad cases for offline readiness (NET001)."""

from preflight.testing import Scenario, bad, good

ENV = {"HOME": "{tmp}/home"}
CFG = {"base-dir": "{tmp}/base"}
HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\n"
BASE = "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
MID = "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train\n"


@bad("offline-download-needed")
def _():
    return Scenario(script=HEAD + BASE + MID, env=ENV, config=CFG, files={"base/eval_bundle/core.yaml": "tasks: []\n"})


@bad("offline-download-needed")
def _():  # base only, but no eval bundle
    return Scenario(script=HEAD + BASE, env=ENV, config=CFG)


@good("offline-download-needed")
def _():
    return Scenario(script=HEAD + BASE, env=ENV, config=CFG, files={"base/eval_bundle/core.yaml": "tasks: []\n"})


@good("offline-download-needed")
def _():  # mid with everything prefetched
    hf = "home/.cache/huggingface/datasets"
    files = {
        "base/eval_bundle/core.yaml": "tasks: []\n",
        "base/identity_conversations.jsonl": "[]\n",
        "base/words_alpha.txt": "a\n",
    }
    for d in (
        "HuggingFaceTB___smol-smoltalk/default",
        "cais___mmlu/auxiliary_train",
        "cais___mmlu/all",
        "openai___gsm8k/main",
    ):
        files[f"{hf}/{d}/0.0.0/abc/x.arrow"] = b"x"
    return Scenario(script=HEAD + "export HF_DATASETS_OFFLINE=1\n" + BASE + MID, env=ENV, config=CFG, files=files)
