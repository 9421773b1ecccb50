"""preflight/checkout.py: an entry point's real flags from its source, read with ast and never
executed, and SB010's messages against them. Hostile checkouts give a note, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preflight.checkout import MAX_SOURCE_BYTES, Checkout
from preflight.testing import Scenario, run_scenario

ARGPARSE = """import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--run", type=str, default="dummy")
parser.add_argument("--fp8", action="store_true")
parser.add_argument("--eval-tokens", type=int, default=80*524288)
parser.add_argument("--save-every", type=int, default=-1)
parser.add_argument("-i", "--source", type=str, default="sft")
args = parser.parse_args()
"""
CONFIGURATOR = """import os
depth = 20
target_param_data_ratio = 20
eval_tokens = 20*524288
run = "dummy"
model_tag = None
length_buckets = [(2048, 0.6), (4096, 0.4)]
device_type = "cuda" if torch.cuda.is_available() else "cpu"
_private = 1
config_keys = [k for k,v in globals().items() if not k.startswith('_')]
exec(open(os.path.join('nanochat', 'configurator.py')).read())
late = 5
"""


def _checkout(tmp_path: Path, files: dict[str, str | bytes]) -> Checkout:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return Checkout(tmp_path, "test")


def test_argparse_flags_types_defaults_and_prefixes(tmp_path):
    ep = _checkout(tmp_path, {"scripts/base_train.py": ARGPARSE}).entry("scripts.base_train")
    assert ep.ok and ep.style == "argparse"
    assert ep.flags["eval-tokens"].default == 80 * 524288 and ep.flags["eval-tokens"].type == "int"
    assert ep.flags["fp8"].type == "bool"
    assert ep.lookup("source") and ep.lookup("i").option == "i"
    assert ep.lookup("eval-tok").option == "eval-tokens"  # argparse's unique-prefix rule
    assert ep.spelled("save_every") == "save-every" and ep.spelled("resume_from_step") is None
    assert ep.saves_periodically and not ep.resumes
    assert ep.suggest("save-evry") == ["save-every"]


def test_configurator_keys_are_the_globals_before_the_exec(tmp_path):
    ep = _checkout(tmp_path, {"scripts/base_train.py": CONFIGURATOR}).entry("scripts.base_train")
    assert ep.style == "configurator"
    # the configurator takes any global (`key in globals()`): a list literal_eval reads, a value computed above it
    assert set(ep.flags) == {
        "depth",
        "target_param_data_ratio",
        "eval_tokens",
        "run",
        "model_tag",
        "length_buckets",
        "device_type",
    }
    assert ep.flags["length_buckets"].type == "list" and ep.flags["device_type"].type is None
    assert ep.flags["eval_tokens"].default == 20 * 524288
    # `model_tag = None` is a key too: the configurator skips its type check for a None default
    assert ep.spelled("model_tag") == "model_tag" and ep.flags["model_tag"].type is None


def test_script_file_launch_and_missing_entry(tmp_path):
    co = _checkout(tmp_path, {"scripts/base_train.py": ARGPARSE})
    assert co.entry(None, "scripts/base_train.py").ok
    assert co.entry("scripts.mid_train") is None


@pytest.mark.parametrize(
    "content,expect",
    [
        ("def f(:\n", "does not parse"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", "could not be parsed"),
        ("x = 1 + " * 200_000 + "1\n", "could not be parsed"),
    ],
)
def test_hostile_sources_give_a_note(tmp_path, content, expect):
    ep = _checkout(tmp_path, {"scripts/base_train.py": content}).entry("scripts.base_train")
    assert ep is not None and not ep.ok
    assert expect in (ep.error or "") or ep.style == "none"


def test_huge_file_is_not_read(tmp_path):
    ep = _checkout(tmp_path, {"scripts/base_train.py": "#" * (MAX_SOURCE_BYTES + 10)}).entry("scripts.base_train")
    assert "too large" in ep.error


def test_symlink_loop_and_fifo(tmp_path):
    (tmp_path / "scripts").mkdir()
    os.symlink(tmp_path / "scripts" / "a.py", tmp_path / "scripts" / "b.py")
    os.symlink(tmp_path / "scripts" / "b.py", tmp_path / "scripts" / "a.py")
    os.mkfifo(tmp_path / "scripts" / "mid_train.py")
    co = Checkout(tmp_path, "test")
    assert co.entry("scripts.a") is None
    ep = co.entry("scripts.mid_train")
    assert ep is None or not ep.ok  # a FIFO is never opened (it would block)


def test_hostile_code_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    src = (
        f"open({str(marker)!r}, 'w').write('x')\nimport argparse\np = argparse.ArgumentParser()\n"
        "p.add_argument('--depth', type=int, default=20)\n"
    )
    ep = _checkout(tmp_path, {"scripts/base_train.py": src}).entry("scripts.base_train")
    assert ep.ok and "depth" in ep.flags and not marker.exists()


HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=48:00:00\nset -euo pipefail\n"


def _sb010(tmp_path, script, files, **kw):
    result = run_scenario(
        Scenario(script=script, env={"HOME": "{tmp}/home"}, files=files, **kw), tmp_path, select=["SB010"]
    )
    return [f for c in result.checks for f in c.findings]


def test_sb010_names_the_source_and_suggests(tmp_path):
    files = {
        "nanochat/nanochat/common.py": "",
        "nanochat/scripts/chat_sft.py": "",
        "nanochat/scripts/base_train.py": ARGPARSE,
    }
    found = _sb010(
        tmp_path,
        HEAD + "cd {tmp}/nanochat\ntorchrun --nproc_per_node=8 -m scripts.base_train -- "
        "--fp8 --eval-tokens=100 --save_every=5 --sav-every=3\n",
        files,
    )
    msgs = [f.message for f in found]
    assert len(found) == 2, msgs
    assert "declares `--save-every`" in msgs[0] and found[0].fix == "write --save-every=5"
    assert "did you mean --save-every" in msgs[1] and "base_train.py" in msgs[1]


def test_sb010_checkout_option_wins(tmp_path):
    files = {
        "elsewhere/nanochat/common.py": "",
        "elsewhere/scripts/chat_sft.py": "",
        "elsewhere/scripts/base_train.py": ARGPARSE,
    }
    script = HEAD + "torchrun --nproc_per_node=8 -m scripts.base_train -- --fp8 --bogus=1\n"
    found = _sb010(tmp_path, script, files, config={"checkout": "{tmp}/elsewhere"})
    assert [f.message for f in found] and "unknown flag `--bogus`" in found[0].message


def test_sb010_says_why_the_checkout_was_not_used(tmp_path):
    """A --checkout that is no checkout, or an entry point that does not parse: a note in the finding
    (the era profile's lists are the fallback), never a traceback."""
    (tmp_path / "notacheckout").mkdir()
    script = HEAD + "torchrun --nproc_per_node=8 -m scripts.base_train -- --depth 20\n"
    found = _sb010(tmp_path, script, {}, config={"checkout": "{tmp}/notacheckout", "profile": "classic"})
    assert found and "is not a nanochat checkout" in found[0].message
    files = {"co/nanochat/common.py": "", "co/scripts/chat_sft.py": "", "co/scripts/base_train.py": "def f(:\n"}
    found = _sb010(tmp_path, script, files, config={"checkout": "{tmp}/co", "profile": "classic"})
    assert found and "does not parse as Python" in found[0].message


def test_sb010_knows_argparses_own_and_negatable_flags(tmp_path):
    # a fork declares --compile with argparse.BooleanOptionalAction (which also takes --no-compile), and its
    # smoke job asks for --help: both were "unknown flag" against the fork's own checkout
    src = (
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--depth', type=int, default=20)\n"
        "p.add_argument('--compile', action=argparse.BooleanOptionalAction, default=True)\n"
    )
    files = {"co/nanochat/common.py": "", "co/scripts/chat_sft.py": "", "co/scripts/base_train.py": src}
    script = HEAD + "torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=12 --no-compile\n"
    assert not _sb010(tmp_path / "a", script, files, config={"checkout": "{tmp}/co"})
    script = HEAD + "python -m scripts.base_train --help\npython -m scripts.base_train -h\n"
    assert not _sb010(tmp_path / "b", script, files, config={"checkout": "{tmp}/co"})
    found = _sb010(tmp_path / "c", script.replace("-h\n", "--no-depth=3\n"), files, config={"checkout": "{tmp}/co"})
    assert [f.message for f in found] and "unknown flag `--no-depth`" in found[0].message
