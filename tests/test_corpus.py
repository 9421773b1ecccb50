"""The upstream corpus (tests/corpus/upstream: every version of every nanochat runner, each with its
commit's scripts; rebuilt by scripts/build_corpus.py): preflight against what is true of each commit.

Measured here (run ``PYTHONPATH=. python tests/corpus_eval.py`` for the table): era from the script
alone and in its checkout, no flag-style-mismatch on upstream's own runners, every flag a fix names
exists in that commit's base_train.py, no offline download that the commit does not use, every SFT
download it does use named in its checkout, no GPU kernel for the CPU runners, and each runner as it
stands at the newest commit (what a fresh clone runs) read against that commit.
"""

from __future__ import annotations

import corpus_eval as ce  # tests/corpus_eval.py (pytest puts tests/ on sys.path)
import pytest


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    root = ce.extract(tmp_path_factory.mktemp("corpus"))
    return ce.summary(ce.evaluate(root))


def test_corpus_is_what_the_facts_describe():
    facts = ce.facts()
    assert len(facts) >= 70
    assert {f["era"] for f in facts} == {"classic", "argparse", "no-mid", "current"}


def test_era_in_its_checkout_is_always_right(outcome):
    assert outcome["era_in_checkout"] == 1.0


def test_era_from_the_script_alone(outcome):
    # 90.8% at the time of writing (69/76), every miss a low-confidence tie: 5 launch exactly what a runner of
    # the guessed era launches (the current era's CPU runner = no-mid's, one argparse-dash sweep = no-mid's,
    # an underscore CPU runner = classic's), and no-mid's two miniseries.sh parse base_train's "(scaling: N)"
    # line, printed only 2026-01-07 .. 01-26, so they read as argparse (their parse is stale: SB027 says so)
    assert outcome["era_alone"] >= 0.90, outcome["era_alone_misses"]


def test_a_log_line_the_commit_no_longer_prints_is_named_in_its_checkout(outcome):
    # upstream's runs/miniseries.sh of 2026-02-08 (two commits) greps base_train's "(scaling: N)" count, which
    # base_train stopped printing at c8d93be (2026-01-27): the truth is read from each commit's base_train.py
    assert outcome["stale_log_parses"], "the corpus should hold the stale parse"
    assert outcome["sb027_in_checkout"] == outcome["stale_log_parses"]


def test_era_alone_is_sure_only_when_right_and_always_names_the_truth(outcome):
    # every guess with evidence behind it (high: one era left; medium: one era fits best) is right, and a
    # low-confidence guess lists the true era among its alternatives: a miss is never stated as a finding
    by_confidence = outcome["era_alone_by_confidence"]
    for confidence in ("high", "medium"):
        right, total = by_confidence.get(confidence, (0, 0))
        assert right == total, (confidence, outcome["era_alone_misses"])
    assert sum(total for c, (_r, total) in by_confidence.items() if c != "low") >= 30
    assert outcome["era_alone_truth_named"] == 1.0


def test_profile_defaults_are_the_eras_own(tmp_path_factory):
    """The plan and the batch checks fall back on a profile's defaults when a script omits a flag: each is
    the value the era's own entry point declared longest (no-mid once said depth 24 / batch 16 / ratio 8,
    the speedrun's flags, where its base_train says 20 / 32 / 10.5)."""
    from preflight.profiles import load_profile

    real = ce.era_defaults(ce.extract(tmp_path_factory.mktemp("defaults")))
    assert set(real) == {"classic", "argparse", "no-mid", "current"}
    wrong = []
    for era, keys in real.items():
        mine = load_profile(era).defaults
        for key, days in keys.items():
            longest = max(days, key=days.get)
            if key in mine and mine[key] != longest:
                wrong.append((era, key, mine[key], dict(days)))
    assert wrong == []


def test_no_flag_style_mismatch_on_upstream_runners(outcome):
    assert outcome["sb010"] == []


def test_no_batch_not_divisible_on_upstream_runners(outcome):
    assert outcome["gpu001"] == []


def test_every_flag_in_a_fix_exists_in_the_checkout(outcome):
    assert outcome["fix_flags_missing"] == []


def test_no_download_the_commit_does_not_use(outcome):
    assert outcome["unused_downloads_in_checkout"] == []
    assert outcome["unused_downloads_alone"] == []


def test_sft_data_the_commit_loads_is_named_in_its_checkout(outcome):
    # the current era changed its SFT data twice on 2026-07-03 (identity / word list gone at 950a1dc, the HF
    # datasets library replaced by the hub's parquet export at a5a3a33): each commit is read for itself
    assert outcome["sft_data_not_named_in_checkout"] == []


def test_a_fresh_clone_s_runners_name_the_hub_parquet_data_and_nothing_it_no_longer_loads(tmp_path):
    rows = ce.evaluate_head(ce.extract(tmp_path))
    assert {r["runner"] for r in rows} == {
        "runs/speedrun.sh",
        "runs/runcpu.sh",
        "runs/miniseries.sh",
        "runs/scaling_laws.sh",
    }
    for r in rows:
        assert r["era"] == "current" and r["unused"] == [], r
        sft = {key for phase, key in r["named"] if phase == "sft"}
        if r["runner"] in ("runs/speedrun.sh", "runs/runcpu.sh"):  # the two that train SFT
            assert sft == {"hub_parquet"}, r
        else:
            assert sft == set(), r
    cpu = next(r for r in rows if r["runner"] == "runs/runcpu.sh")
    assert ("base", "fa3_hopper") not in cpu["named"]


def test_no_gpu_kernel_download_for_the_cpu_runners(outcome):
    # runcpu.sh trains with plain python and asks for no GPU: the Hopper FA3 kernel is never loaded
    assert outcome["gpu_kernel_on_cpu_runners"] == []


@pytest.mark.parametrize("fork", ce.fork_names())
def test_fork_scripts_against_their_checkout(fork, tmp_path):
    """A fork's own flags (--size, --input-injection, --output-tag) are no error; flags its scripts
    still pass after the fork removed them (--no-sample-recur, chat_rl --source) are, exactly those."""
    rows = ce.evaluate_fork(fork, tmp_path)
    assert rows
    for r in rows:
        assert r["in_checkout"] == r["truth"], r
        # alone, only the separator/typo rules can fire: never a flag the fork declares
        assert set(r["alone"]) <= set(r["truth"]), r
