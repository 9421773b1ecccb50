"""The dataset a checkout reads, from its own nanochat/dataset.py (ast): a no-mid checkout from before the
ClimbMix switch (and the forks that kept FineWeb-Edu) reads base_data/ up to shard 1822 with the last file as
validation, not base_data_climbmix/ with a pinned shard_06542; DS001 and its fix follow the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.dataset_layout import read_layout
from preflight.profiles import load_profile
from preflight.testing import Scenario, run_scenario

FINEWEB = (
    "import os\nfrom nanochat.common import get_base_dir\n"
    'BASE_URL = "https://huggingface.co/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main"\n'
    "MAX_SHARD = 1822 # the last datashard is shard_01822.parquet\n"
    "base_dir = get_base_dir()\n"
    'DATA_DIR = os.path.join(base_dir, "base_data")\n'
)
CLIMBMIX = FINEWEB.replace("1822", "6542").replace('"base_data"', '"base_data_climbmix"')
FORK_ENV = CLIMBMIX.replace(
    'DATA_DIR = os.path.join(base_dir, "base_data_climbmix")',
    'DATA_DIR = os.environ.get("NANOCHAT_DATA_DIR", os.path.join(base_dir, "my_corpus"))',
).replace("6542", "99")
FORK_JP = (  # a fork's own corpus: an f-string path under the base dir, its own file names
    "import os\nfrom nanochat.common import get_base_dir\n"
    'DATASET_VERSION = "v3"\n'
    "MAX_SHARD = 58\n"
    'index_to_filename = lambda index: f"data_{index}.parquet"\n'
    "base_dir = get_base_dir()\n"
    'DATA_DIR = os.path.join(base_dir, f"datasets/nanochat-jp-pretrain/{DATASET_VERSION}")\n'
)
NO_MID_TRAIN = (
    "import argparse\nparser = argparse.ArgumentParser()\n"
    'parser.add_argument("--depth", type=int, default=20)\n'
    'parser.add_argument("--device-batch-size", type=int, default=32)\n'
    "args = parser.parse_args()\n"
    # the era's loader, which crops documents to fill its rows (35% of tokens: usable_fraction 0.65)
    "from nanochat.dataloader import tokenizing_distributed_data_loader_with_state_bos_bestfit\n"
)


def _checkout(root: Path, dataset: str) -> Path:
    for rel, text in {
        "nanochat/dataset.py": dataset,
        "nanochat/common.py": "",
        "scripts/base_train.py": NO_MID_TRAIN,
        "scripts/chat_sft.py": "",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    "source,layout",
    [
        (FINEWEB, ("base_data", 1822, None, None)),
        (CLIMBMIX, ("base_data_climbmix", 6542, None, None)),
        (FORK_ENV, ("my_corpus", 99, "NANOCHAT_DATA_DIR", None)),
        (FORK_JP, ("datasets/nanochat-jp-pretrain/v3", 58, None, r"^data_(\d+)\.parquet$")),
    ],
)
def test_layout_read_from_the_source(tmp_path, source, layout):
    assert read_layout(_checkout(tmp_path, source)) == layout


def test_an_era_across_the_switch_takes_the_checkouts_dataset(tmp_path):
    fineweb = load_profile("no-mid", checkout=_checkout(tmp_path / "a", FINEWEB)).dataset
    assert (fineweb["dirs"], fineweb["max_shard"], fineweb["val_shard"]) == (["base_data"], 1822, "last")
    assert fineweb == {**load_profile("classic").dataset, "from_checkout": "nanochat/dataset.py"}
    climbmix = load_profile("no-mid", checkout=_checkout(tmp_path / "b", CLIMBMIX)).dataset
    assert climbmix == load_profile("no-mid").dataset  # the era's own layout: nothing changes
    fork = load_profile("current", checkout=_checkout(tmp_path / "c", FORK_ENV)).dataset
    assert (fork["dirs"], fork["max_shard"], fork["val_shard"]) == (["my_corpus"], 99, "last")


@pytest.mark.parametrize("source", ["def broken(:\n", "MAX_SHARD = '7'\nDATA_DIR = 5\n", b"\xff\xfe"])
def test_a_dataset_py_that_says_nothing_readable_changes_nothing(tmp_path, source):
    root = _checkout(tmp_path, "")
    (root / "nanochat" / "dataset.py").write_bytes(source if isinstance(source, bytes) else source.encode())
    assert load_profile("no-mid", checkout=root).dataset == load_profile("no-mid").dataset


def test_ds001_and_its_fix_look_where_the_checkout_reads(tmp_path):
    files = {
        f"nanochat/{rel}": text for rel, text in {"nanochat/dataset.py": FINEWEB, "nanochat/common.py": ""}.items()
    }
    files["nanochat/scripts/base_train.py"] = NO_MID_TRAIN
    files["base/base_data/shard_00000.parquet"] = "not read by DS001"
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -euo pipefail\ncd {tmp}/nanochat\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --device-batch-size=32\n"
    )
    result = run_scenario(
        Scenario(script=script, env={"HOME": "{tmp}/home"}, files=files, config={"base-dir": "{tmp}/base"}),
        tmp_path,
        select=["DS001"],
    )
    (finding,) = result.checks[0].findings
    assert finding.path.endswith("/base/base_data"), finding.path  # was base_data_climbmix, which it never reads
    assert "holds 1 shard(s)" in finding.message and "shard_06542" not in finding.message


def test_a_fork_that_reads_its_data_directory_from_a_variable_is_checked_there(tmp_path):
    # a fork's dataset.py: DATA_DIR = os.environ.get("NANOCHAT_DATA_DIR", ...); its job exports that variable, so the
    # shards are there, not in the base dir's my_corpus/
    files = {
        f"nanochat/{rel}": text for rel, text in {"nanochat/dataset.py": FORK_ENV, "nanochat/common.py": ""}.items()
    }
    files["nanochat/scripts/base_train.py"] = NO_MID_TRAIN
    files["data/nm55/shard_00000.parquet"] = "not read by DS001"
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -euo pipefail\ncd {tmp}/nanochat\nexport NANOCHAT_DATA_DIR={tmp}/data/nm55\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
    )
    scenario = Scenario(script=script, env={"HOME": "{tmp}/home"}, files=files, config={"base-dir": "{tmp}/base"})
    result = run_scenario(scenario, tmp_path, select=["DS001"])
    (finding, *_rest) = result.checks[0].findings
    assert finding.path.endswith("/data/nm55"), finding.path  # was {tmp}/base/my_corpus
    assert "holds 1 shard(s)" in finding.message

    scenario.script = script.replace("{tmp}/data/nm55", "$LUSTRE_HOME/nm55")  # a directory known only in the job
    result = run_scenario(scenario, tmp_path / "b", select=["DS001"])
    assert result.checks[0].status.value == "skip" and "known only in the job" in result.checks[0].reason


def test_a_fork_with_its_own_corpus_needs_its_own_files_not_upstreams_count(tmp_path):
    # DS001 asked a Japanese fork for 1011 shards of base_data_climbmix and its pinned shard_06542; the fork reads
    # data_N.parquet under datasets/nanochat-jp-pretrain/v3, 59 files in all, of a size preflight does not know
    files = {
        f"nanochat/{rel}": text for rel, text in {"nanochat/dataset.py": FORK_JP, "nanochat/common.py": ""}.items()
    }
    files["nanochat/scripts/base_train.py"] = NO_MID_TRAIN
    script = (
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -euo pipefail\ncd {tmp}/nanochat\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=22\n"
    )
    scenario = Scenario(script=script, env={"HOME": "{tmp}/home"}, files=files, config={"base-dir": "{tmp}/base"})
    result = run_scenario(scenario, tmp_path, select=["DS001"])
    (finding,) = result.checks[0].findings
    assert finding.path.endswith("/base/datasets/nanochat-jp-pretrain/v3"), finding.path
    assert "needs at least 2" in finding.message and "shard_06542" not in finding.message, finding.message
    assert finding.fix.endswith("its whole dataset is 59 files"), finding.fix
    # two of its own files (the last is validation) are what can be checked
    files.update({f"base/datasets/nanochat-jp-pretrain/v3/data_{i}.parquet": "not read by DS001" for i in (0, 1)})
    result = run_scenario(scenario, tmp_path / "b", select=["DS001"])
    assert result.checks[0].status.value == "pass", result.checks[0]
