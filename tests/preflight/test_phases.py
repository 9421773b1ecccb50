"""preflight/phases.py is the one home of the phase list: its facts agree with the era profiles and
with the real log / checkpoint names, and no module keeps a literal copy of the phase tuple."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preflight import phases
from preflight.profiles import PROFILE_NAMES, load_profile

ROOT = Path(__file__).resolve().parents[2]


def test_order_and_training_phases():
    assert phases.PHASE_NAMES == ("tokenizer", "base", "mid", "sft", "rl", "report")
    assert phases.TRAIN_PHASES == ("base", "mid", "sft", "rl")
    assert phases.TRAINER_SCRIPTS == {"base_train", "mid_train", "chat_sft", "chat_rl"}
    assert phases.order("sft") > phases.order("mid")


@pytest.mark.parametrize(
    "text,phase,script",
    [
        ("/scratch/u/.cache/nanochat/chatsft_checkpoints/d20", "sft", "chat_sft"),
        ("BASE/sft_checkpoints/d24", "sft", "chat_sft"),  # the 2026-01-31 stray dir
        ("No such file or directory: '/x/mid_checkpoints'", "mid", "mid_train"),
        ("chatrl_checkpoints/d20/model_000100.pt", "rl", "chat_rl"),
        ("base_checkpoints/d20", "base", "base_train"),
    ],
)
def test_checkpoint_dir_words(text, phase, script):
    m = phases.CKPT_DIR_RE.search(text)
    assert m and phases.DIR_WORD_PHASE[m.group(1)] == phase
    assert phases.script_of_dir_word(m.group(1)) == script


@pytest.mark.parametrize(
    "module,phase",
    [
        ("scripts.base_train", "base"),
        ("nanochat.base_loss", "base"),
        ("scripts.tok_eval", "tokenizer"),
        ("scripts.chat_sft", "sft"),
        ("chat_eval", None),
        ("nanochat.report", "report"),
        ("scripts.foo", None),
    ],
)
def test_phase_of_script(module, phase):
    assert phases.phase_of_script(module) == phase


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profiles_agree_with_phase_model(name):
    """Every era's phases are a subsequence of the one order; each training phase's train module
    is the Phase's train script under the era's package, and its checkpoint dir is a known word."""
    prof = load_profile(name, reason="test")
    assert [p for p in phases.PHASE_NAMES if p in prof.phases] == prof.phases
    for p in prof.phases:
        ph = phases.get(p)
        mod = ph.train_module(prof)
        if ph.train_script and mod:
            assert mod.rsplit(".", 1)[-1] == ph.train_script
        d = ph.checkpoint_dir_in(prof)
        if ph.trains:
            assert d and phases.DIR_WORD_PHASE[phases.CKPT_DIR_RE.fullmatch(d).group(1)] == p
        for m in ph.modules(prof):
            assert phases.phase_of_script(m) in (p, None)


def test_no_module_keeps_its_own_phase_tuple():
    """The phase tuple is written once: no other module under preflight/ spells it out."""
    pattern = re.compile(
        r"""\(\s*["']base["'],\s*["']mid["'],\s*["']sft["'],\s*["']rl["']\s*\)|"""
        r"""["']tokenizer["'],\s*["']base["'],\s*["']mid["']"""
    )
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "preflight").rglob("*.py")
        if p.name != "phases.py" and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_eras_md_is_current():
    """docs/eras.md is generated from the profiles and the Phase model (`preflight docs`)."""
    from preflight import erasdoc

    assert (ROOT / "docs" / "eras.md").read_text(encoding="utf-8") == erasdoc.generate(), (
        "docs/eras.md is stale: run `preflight docs` and commit the result"
    )
    text = erasdoc.generate()
    assert "cais/mmlu" in text and "configs auxiliary_train, all" in text and "../shared" not in text
