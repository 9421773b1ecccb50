"""Profiles: data files load and merge; detection per era from fake checkouts, the script and config."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.profiles import PROFILE_NAMES, fingerprint, load_profile
from preflight.testing import Scenario


def checkout(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


ERAS = {
    "classic": {
        "nanochat/configurator.py": "",
        "scripts/mid_train.py": "",
        "nanochat/report.py": "",
        "speedrun.sh": "",
    },
    "argparse": {
        "nanochat/report.py": "",
        "scripts/mid_train.py": "",
        "scripts/base_train.py": 'parser.add_argument("--device-batch-size")\n',
    },
    "no-mid": {"nanochat/report.py": "", "scripts/base_train.py": ""},
    "current": {"nanochat/common.py": "", "scripts/base_train.py": "", "runs/speedrun.sh": ""},
    "bundled": {
        "nanochat/base_train.py": "depth = 20\ndevice_batch_size = 32\nrun = 'dummy'\n",
        "nanochat/configurator.py": "",
    },
}


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profiles_load_with_stable_fields(name):
    p = load_profile(name)
    for key in (
        "name",
        "era",
        "flag_style",
        "modules",
        "defaults",
        "dataset",
        "tokenizer",
        "checkpoints",
        "log",
        "phases",
    ):
        assert key in p.data, key
    assert p.phases[0] == "tokenizer" and "base" in p.phases and "sft" in p.phases
    assert p.to_json()["name"] == name
    for ph in p.phases:
        spec = p.phase(ph)
        if spec.get("checkpoint_dir"):
            assert spec["optimizer_shards"] in ("per-rank", "rank0", "single", "none")


def test_era_differences_are_data():
    assert "mid" in load_profile("classic").phases and "mid" not in load_profile("no-mid").phases
    assert load_profile("current").data["report"] is None and load_profile("no-mid").data["report"][
        "summary_columns"
    ] == ["BASE", "SFT", "RL"]
    assert load_profile("argparse").dataset["usable_fraction"] == 0.65
    assert load_profile("bundled").modules["base_train"] == "nanochat.base_train"
    assert load_profile("classic").data["resume_flag"] == "resume_from_step"
    assert load_profile("argparse").data["resume_flag"] == "resume-from-step"


@pytest.mark.parametrize("era", list(ERAS))
def test_fingerprint_per_era(era, tmp_path):
    name, reason, variant = fingerprint(checkout(tmp_path, ERAS[era]))
    assert name == era and str(tmp_path) in reason
    if era == "argparse":
        assert variant == "argparse-dash"


def test_argparse_underscore_variant(tmp_path):
    files = dict(ERAS["argparse"], **{"scripts/base_train.py": 'parser.add_argument("--device_batch_size")\n'})
    name, _, variant = fingerprint(checkout(tmp_path, files))
    assert (name, variant) == ("argparse", "argparse-underscore")
    assert load_profile("argparse", variant=variant).flag_word_sep == "_"


def _profile(tmp_path, script, files=None, config=None, env=None):
    ctx = Scenario(script=script, files=files or {}, config=config or {}, env=env or {}).context(tmp_path)
    return ctx.get("profile")


def test_detection_order(tmp_path):
    files = {f"repo/{k}": v for k, v in ERAS["no-mid"].items()}
    p = _profile(tmp_path, "#!/bin/bash\ncd {tmp}/repo\ntorchrun -m scripts.base_train\n", files)
    assert p.name == "no-mid" and "checkout" in p.reason
    p = _profile(tmp_path, "#!/bin/bash\ncd {tmp}/repo\n", files, config={"profile": "classic"})
    assert p.name == "classic" and "--profile" in p.reason
    p = _profile(tmp_path, "#!/bin/bash\n", files, env={"SLURM_SUBMIT_DIR": "{tmp}/repo"})
    assert p.name == "no-mid"


def test_a_checkout_where_preflight_runs_is_passed_over_if_it_lacks_what_the_script_launches(tmp_path):
    # run from another checkout (here this project's, which has nanochat/base_train.py): the script's
    # `-m scripts.base_train` cannot run there, so its era comes from the script, and the reason says why
    runner = "#!/bin/bash\ntorchrun -m scripts.base_train -- --device-batch-size=16 --depth 24\n"
    p = _profile(tmp_path / "a", runner, ERAS["bundled"])
    assert p.name != "bundled" and p.checkout is None
    assert p.reason.endswith("is a nanochat checkout without scripts/base_train.py, which the script runs)"), p.reason
    # named with --checkout, it is the checkout all the same
    p = _profile(tmp_path / "b", runner, ERAS["bundled"], config={"checkout": "{tmp}"})
    assert p.name == "bundled"
    # a checkout that has base_train but not a phase the script still runs (a stale runner) stays the checkout
    p = _profile(tmp_path / "c", runner + "torchrun -m scripts.mid_train\n", ERAS["no-mid"])
    assert p.name == "no-mid" and "checkout" in p.reason


def test_detection_from_the_script(tmp_path):
    assert _profile(tmp_path / "a", "python -m nanochat.base_train --depth=4\n").name == "bundled"
    p = _profile(
        tmp_path / "b", "torchrun -m scripts.base_train -- --device-batch-size=16\ntorchrun -m scripts.mid_train\n"
    )
    assert (p.name, p.variant) == ("argparse", "argparse-dash")
    assert _profile(tmp_path / "c", "torchrun -m scripts.base_train -- --depth=20\n").name == "classic"
    assert _profile(tmp_path / "d", "echo hi\n").reason.startswith("default")


def test_bundled_keys_come_from_the_checkout(tmp_path):
    p = _profile(
        tmp_path,
        "#!/bin/bash\ncd {tmp}/repo\npython -m nanochat.base_train --depth=4\n",
        {f"repo/{k}": v for k, v in ERAS["bundled"].items()},
    )
    assert p.name == "bundled"
    assert p.config_keys("nanochat.base_train") == {"depth": 20, "device_batch_size": 32, "run": "dummy"}


def test_sft_without_mid_is_evidence_for_an_era_without_midtraining(tmp_path):
    # until 2026-01-31 chat_sft loaded the mid checkpoint by default: a dash-flag runner that runs SFT
    # straight after base is written for no-mid or later, and says why, with medium confidence
    runner = (
        "torchrun -m scripts.base_train -- --device-batch-size=16\n"
        "torchrun -m scripts.chat_sft -- --device-batch-size=16\n"
        "python -m nanochat.report generate\n"
    )
    p = _profile(tmp_path / "a", runner)
    assert p.name == "no-mid"
    assert "confidence medium" in p.reason and "chat_sft loaded the mid checkpoint" in p.reason
    # with --source the SFT says where it starts from: no such evidence, a tie broken by the prior
    p = _profile(tmp_path / "b", runner.replace("chat_sft --", "chat_sft -- --source=base"))
    assert "confidence low" in p.reason and "mid checkpoint" not in p.reason


def test_a_guess_with_no_evidence_says_so(tmp_path):
    p = _profile(tmp_path, "torchrun -m scripts.chat_eval -- -i sft -a ARC-Easy\n")
    assert p.name == "classic"
    assert p.reason.startswith("nothing era-specific in what the script runs (confidence low; also possible: ")


def test_a_parsed_log_line_breaks_a_tie_for_the_eras_that_printed_it(tmp_path):
    # base_train printed "Number of parameters: N (scaling: M)" only 2026-01-07 .. 01-26 (argparse era):
    # a dash-flag base-only sweep that greps it reads as argparse-dash, still a low-confidence guess
    sweep = "torchrun -m scripts.base_train -- --depth=12 --save-every=-1 2>&1 | tee train.log\n"
    parse = "N=$(grep 'Number of parameters:' train.log | grep -oP 'scaling: [0-9,]+')\n"
    p = _profile(tmp_path / "a", sweep)
    assert p.name == "no-mid"
    p = _profile(tmp_path / "b", sweep + parse)
    assert (p.name, p.variant) == ("argparse", "argparse-dash")
    assert "confidence low" in p.reason
    assert "parses base_train's 'Number of parameters: N (scaling: M)' line, printed from 2026-01-07" in p.reason


def test_a_forks_variant_of_an_entry_point_is_that_entrys_phase():
    # a public fork's runner: `-m scripts.base_train_jp_cloud`, `-m scripts.chat_sft_jp_cloud` (copies of the entries)
    for name in PROFILE_NAMES:
        p = load_profile(name)
        assert p.phase_of_module("scripts.base_train_jp_cloud") == "base", name
        assert p.phase_of_module("scripts.chat_eval_jp", ["-i", "sft"]) == p.phase_of_module(
            "scripts.chat_eval", ["-i", "sft"]
        )
        assert p.phase_of_module("scripts.base") is None and p.phase_of_module("scripts.tok_trainer") is None
