"""The script model sees through shell indirection: variable heads, function wrappers, word
splitting of unquoted variables, and branches decided from known values and arguments."""

from __future__ import annotations

from pathlib import Path

from preflight.plan import build_plan
from preflight.profiles import load_profile
from preflight.script import parse_script, parse_text

REPO = Path(__file__).resolve().parents[2]


def _mods(m):
    return [(i.line, i.launcher, i.module) for i in m.all_invocations]


def test_variable_heads_resolve_through_assignments_defaults_and_environment():
    m = parse_text(
        'PYTHON="${PYTHON:-python3}"\nPY=python\nTR=torchrun\n'
        '$PYTHON -m a.b --x=1\n"$PY" -m c.d\n${TR} --nproc_per_node=4 -m e.f\n$UNSET -m g.h\n'
    )
    assert _mods(m) == [(4, "python", "a.b"), (5, "python", "c.d"), (6, "torchrun", "e.f")]
    assert m.invocations[2].nproc_per_node == "4"
    env = parse_text('PYTHON="${PYTHON:-python3}"\n$PYTHON -m a.b\n', environ={"PYTHON": "torchrun --standalone"})
    assert [(i.launcher, i.module, i.standalone) for i in env.invocations] == [("torchrun", "a.b", True)]


def test_unquoted_variables_split_into_words_quoted_ones_do_not():
    m = parse_text(
        'BASE="--depth=2 --max_seq_len=256"\nEMPTY=""\npython -m x.base_train $BASE $EMPTY "$BASE" --run=$BASE\n'
    )
    inv = m.invocations[0]
    assert inv.args == ["--depth=2", "--max_seq_len=256", "$BASE", "--run=$BASE"]  # quoted: one word, as written
    assert inv.flag("depth").value == "2" and inv.flag("max_seq_len").value == "256"


def test_function_wrapper_call_becomes_an_invocation_of_its_module():
    m = parse_text(
        'launch() { local mod=$1; shift; torchrun --standalone --nproc_per_node=8 -m "$mod" -- "$@"; }\n'
        'function run_py {\n  python -m "$1" --fixed=1 "${@:2}"\n}\n'
        "launch scripts.base_train --depth=12 --run=x\n"
        "launch scripts.mid_train\n"
    )
    invs = m.invocations
    assert [(i.line, i.launcher, i.module) for i in invs] == [
        (5, "torchrun", "scripts.base_train"),
        (6, "torchrun", "scripts.mid_train"),
    ]
    assert invs[0].nproc_per_node == "8" and invs[0].standalone and invs[0].via.startswith("launch")
    assert [(f.key, f.value, f.after_separator) for f in invs[0].flags] == [("depth", "12", True), ("run", "x", True)]
    assert not any(i.module == "$mod" for i in invs)  # the body's template is not a run of its own


def test_wrapper_with_fixed_module_passes_the_call_arguments():
    m = parse_text('train() {\n  srun python -m scripts.base_train "$@"\n}\ntrain --depth=4\n')
    assert [(i.line, i.launcher, i.module, i.args) for i in m.invocations] == [
        (4, "srun+python", "scripts.base_train", ["--depth=4"])
    ]


def test_wrapper_with_fixed_module_takes_named_arguments_per_call():
    # the shape of public sweep scripts: a fixed module, the run name and extra flags from the call
    m = parse_text(
        "run_training() {\n"
        '  local RUN_TAG="$1"\n  local EXTRA_ARGS="$2"\n'
        '  torchrun --standalone --nproc_per_node=8 -m scripts.base_train --depth=12 --run="$RUN_TAG" $EXTRA_ARGS\n'
        "}\n"
        'run_training fp8 "--fp8 --fp8-recipe=tensorwise"\nrun_training plain ""\n',
        environ={},
    )
    assert _mods(m) == [(6, "torchrun", "scripts.base_train"), (7, "torchrun", "scripts.base_train")]
    fp8, plain = m.invocations
    assert [f.raw for f in fp8.flags] == ["--depth=12", "--run=fp8", "--fp8", "--fp8-recipe=tensorwise"]
    assert [f.raw for f in plain.flags] == ["--depth=12", "--run=plain"]  # an empty unquoted argument is no word
    assert fp8.template is plain.template and fp8.template.line == 4


def test_function_defined_in_both_branches_picks_the_taken_one_else_the_last():
    text = (
        'if [ "$MODE" = "gpu" ]; then\n'
        '  launch() { local m=$1; shift; torchrun --nproc_per_node=8 -m "$m" "$@"; }\n'
        "else\n"
        '  launch() { local m=$1; shift; python -m "$m" "$@"; }\n'
        "fi\nlaunch scripts.base_train --depth=2\n"
    )
    assert parse_text("MODE=gpu\n" + text).invocations[0].launcher == "torchrun"
    assert parse_text("MODE=cpu\n" + text).invocations[0].launcher == "python"
    assert parse_text(text).invocations[0].launcher == "python"  # MODE unknown: the last definition
    assert parse_text(text, environ={"MODE": "gpu"}).invocations[0].launcher == "torchrun"


def test_branches_decided_only_from_known_values():
    text = (
        'X=1\nif [ "$X" = "1" ]; then A=yes; else A=no; fi\n'
        'if [ "$Y" = "1" ]; then B=y1; else B=y0; fi\n'
        'if [ "$(hostname)" = gpu ]; then C=1; fi\n'
        'if [ -n "$SLURM_JOB_ID" ]; then D=1; fi\n'
    )
    m = parse_text(text, environ={})
    assert [(a.name, a.value) for a in m.assignments] == [("X", "1"), ("A", "yes"), ("B", "y0"), ("C", "1"), ("D", "1")]
    m = parse_text(text)  # environment unknown: Y may be anything
    assert [(a.name, a.value) for a in m.assignments if a.name == "B"] == [("B", "y1"), ("B", "y0")]


def test_option_loops_over_positional_arguments():
    loop = (
        'TINY=0\nfor arg in "$@"; do\n  case "$arg" in\n    -t|--tiny) TINY=1 ;;\n    *) echo bad; exit 2 ;;\n'
        '  esac\ndone\nif [ "$TINY" = "1" ]; then D=2; else D=20; fi\npython -m scripts.base_train --depth=$D\n'
    )
    for args, want in ((["--tiny"], "2"), (["-t"], "2"), ([], "20")):
        m = parse_text(loop, args=args)
        assert m.value_at("D", 99, m.invocations[0].file) == want, args
        assert [a.value for a in m.assignments if a.name == "D"] == [want]
    assert [a.value for a in parse_text(loop).assignments if a.name == "D"] == ["2", "20"]  # args unknown
    shift_loop = (
        'TINY=0\nwhile [ $# -gt 0 ]; do\n  case "$1" in\n    --tiny) TINY=1; shift ;;\n'
        "    --depth) DEPTH=$2; shift 2 ;;\n    *) shift ;;\n  esac\ndone\n"
    )
    m = parse_text(shift_loop, args=["--depth", "7", "--tiny"])
    assert m.value_at("TINY", 99) == "1" and m.value_at("DEPTH", 99) == "7"


def test_unbalanced_blocks_keep_every_branch():
    m = parse_text('X=1\nif [ "$X" = 2 ]; then\n  python -m scripts.base_train\n')
    assert not m.evaluated and [i.module for i in m.invocations] == ["scripts.base_train"]


def _speedrun_sbatch(tmp_path: Path, args: str) -> Path:
    p = tmp_path / "job.sbatch"
    p.write_text(
        f"#!/bin/bash\n#SBATCH --time=00:20:00\nset -euo pipefail\nexport WANDB_RUN=dummy\n"
        f"cd {REPO}\nbash scripts/speedrun.sh {args}\n"
    )
    return p


def test_real_speedrun_followed_with_tiny(tmp_path):
    m = parse_script(_speedrun_sbatch(tmp_path, "--tiny"), cwd=tmp_path, environ={"HOME": str(tmp_path)})
    child = m.includes[0]
    assert child.positional == ["--tiny"]
    mods = [i.module for i in m.all_invocations]
    assert mods == [
        "nanochat.report",
        "nanochat.dataset",
        "nanochat.tok_train",
        "nanochat.base_train",
        "nanochat.mid_train",
        "nanochat.chat_eval",
        "nanochat.chat_sft",
        "nanochat.chat_eval",
        "nanochat.report",
    ]  # NANOCHAT_DATA unset: the local build, not the fineweb download
    base = next(i for i in m.all_invocations if i.module == "nanochat.base_train")
    assert base.launcher == "python" and base.via.startswith("launch")
    plan = build_plan(load_profile("bundled"), m, environ={"HOME": str(tmp_path)})
    assert (plan.depth, plan.vocab_size, plan.iterations) == (2, 1024, 40)


def test_real_speedrun_followed_without_tiny(tmp_path):
    m = parse_script(_speedrun_sbatch(tmp_path, ""), cwd=tmp_path, environ={"HOME": str(tmp_path)})
    plan = build_plan(load_profile("bundled"), m, environ={"HOME": str(tmp_path)})
    assert plan.depth == 20 and plan.vocab_size == 8192  # the demo corpus's vocab (speedrun.sh line 68)
    # HAS_CUDA is only known at run time: both launch() definitions may run, the last (python) is used
    assert {i.launcher for i in m.all_invocations if i.via} == {"python"}


def test_an_exit_surely_reached_ends_what_the_script_runs():
    text = (
        "echo start\n"
        '[ -z "$X" ] && { echo "set X"; exit 1; }\n'
        '[ -n "$Y" ] || exit 2\n'
        'if [ -z "$W" ]; then\n  exit 3\nfi\n'
        ': "${V:?set V}"\n'
        "torchrun -m scripts.base_train\n"
    )
    cases = {  # environment -> (the exit reached, its line) ; None: the launch runs
        (): ("exit 1", 2),
        ("X",): ("exit 2", 3),
        ("X", "Y"): ("exit 3", 5),
        ("X", "Y", "W"): (": ${V:?set V}", 7),
        ("X", "Y", "W", "V"): None,
    }
    for names, expected in cases.items():
        m = parse_text(text, environ={n: "1" for n in names})
        if expected is None:
            assert m.exited is None and _mods(m) == [(8, "torchrun", "scripts.base_train")], names
            continue
        assert m.exited[:3] == (expected[1], "<script>", expected[0]), (names, m.exited)
        assert not m.invocations and any(c.name == "torchrun" for c in m.unreached), names
    # an unknown environment (sbatch --export=NONE) decides nothing: every path may run
    m = parse_text(text, environ=None)
    assert m.exited is None and _mods(m) == [(8, "torchrun", "scripts.base_train")]
    # an exit in a subshell, a pipeline or a function body ends no script
    m = parse_text("( exit 1 )\necho x | exit 1\nf() { exit 1; }\ntorchrun -m scripts.base_train\n", environ={})
    assert m.exited is None and len(m.invocations) == 1


def test_exec_replaces_the_shell():
    m = parse_text(
        "exec > log 2>&1\ntorchrun -m scripts.base_train\nexec torchrun -m scripts.mid_train\ntorchrun -m scripts.chat_sft\n",
        environ={},
    )
    assert [i.module for i in m.invocations] == [
        "scripts.base_train",
        "scripts.mid_train",
    ]  # `exec >log` only redirects
    assert m.exited[0] == 3 and [c.line for c in m.unreached] == [4]
