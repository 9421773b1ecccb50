"""The sbatch script model: directives, assignments, invocations, exit checks, includes, bad input."""

from __future__ import annotations

from pathlib import Path

from preflight.script import gpus_from_gres, parse_script, parse_text, parse_time_limit, tokenize

FIXTURES = Path(__file__).parent / "fixtures"


def test_classic_speedrun_reconstruction():
    m = parse_script(FIXTURES / "speedrun_classic.sh")
    assert m.ok and not m.unparsable
    assert m.set_e_line is None and not m.errexit
    base_dir = [a for a in m.assignments if a.name == "NANOCHAT_BASE_DIR"]
    assert len(base_dir) == 1 and base_dir[0].exported and base_dir[0].unconditional and base_dir[0].line == 15
    wandb = [a for a in m.assignments if a.name == "WANDB_RUN"]
    assert wandb and not wandb[0].unconditional  # inside `if [ -z "$WANDB_RUN" ]`
    modules = [i.module for i in m.invocations]
    assert modules == [
        "nanochat.report",
        "nanochat.dataset",
        "nanochat.dataset",
        "scripts.tok_train",
        "scripts.tok_eval",
        "scripts.base_train",
        "scripts.base_loss",
        "scripts.base_eval",
        "scripts.mid_train",
        "scripts.chat_eval",
        "scripts.chat_sft",
        "scripts.chat_eval",
        "nanochat.report",
    ]
    base = next(i for i in m.invocations if i.module == "scripts.base_train")
    assert base.line == 83 and base.standalone and base.nproc_per_node == "$NPROC_PER_NODE"
    assert [(f.key, f.value, f.style, f.after_separator) for f in base.flags] == [
        ("depth", "20", "equals", True),
        ("run", "$WANDB_RUN", "equals", True),
    ]
    assert m.value_at("NPROC_PER_NODE", base.line, base.file) == "8"
    bg = [c for c in m.commands if c.background]
    assert [c.line for c in bg] == [60]
    assert any(c.name == "wait" and c.line == 77 for c in m.commands)
    assert not any(i.checked for i in m.invocations)
    # commented-out RL/chat_web steps are not commands
    assert not any(i.module in ("scripts.chat_rl", "scripts.chat_web") for i in m.invocations)


def test_directives_after_first_command_are_ignored():
    m = parse_text(
        "#!/bin/bash\n#SBATCH -J nanochat --nodes=2\n#SBATCH --gres=gpu:h100:8 # eight\n"
        "echo start\n#SBATCH --time=04:00:00\n"
    )
    keys = {(d.key, d.value, d.ignored) for d in m.directives}
    assert keys == {
        ("job-name", "nanochat", False),
        ("nodes", "2", False),
        ("gres", "gpu:h100:8", False),
        ("time", "04:00:00", True),
    }
    assert m.first_command_line == 4


def test_errexit_forms_and_exit_checks():
    assert parse_text("#!/bin/bash\nset -euo pipefail\ntrue\n").set_e_line == 2
    m = parse_text("set -o errexit\nset -o pipefail\n")
    assert m.set_e_line == 1 and m.pipefail_line == 2
    assert parse_text("#!/bin/bash -e\ntrue\n").errexit
    m = parse_text(
        "torchrun -m scripts.base_train || exit 1\n"
        "if ! python -m scripts.mid_train; then exit 1; fi\n"
        "python -m scripts.chat_sft\nif [ $? -ne 0 ]; then exit 1; fi\n"
        "python -m scripts.chat_eval -i sft\n"
    )
    assert [i.checked for i in m.invocations] == [True, True, True, False]


def test_flag_styles_and_wrappers():
    m = parse_text(
        "srun --ntasks-per-node=1 uv run torchrun --nnodes 2 --nproc-per-node 4 -m scripts.base_train "
        "--depth 20 --device-batch-size=16 --fp8 -x 3 extra\n"
    )
    (inv,) = m.invocations
    assert inv.srun and inv.launcher == "srun+torchrun" and inv.nproc_per_node == "4" and inv.nnodes == "2"
    assert [(f.key, f.value, f.style) for f in inv.flags] == [
        ("depth", "20", "space"),
        ("device-batch-size", "16", "equals"),
        ("fp8", None, "bare"),
        ("x", "3", "short"),
        (None, "extra", "positional"),
    ]
    (py,) = parse_text("python3 -u -m nanochat.base_train --depth=4 &\nwait\n").invocations
    assert py.module == "nanochat.base_train" and py.background


def test_continuations_heredocs_and_quotes():
    text = (
        "#!/bin/bash\ntorchrun --standalone \\\n  --nproc_per_node=8 \\\n  -m scripts.base_train -- --depth=20\n"
        "cat <<EOF > notes.txt\ntorchrun -m not.a.command\nEOF\n"
        "echo 'a # not a comment; still echo'\nX=\"multi\nline\"\npython -m scripts.tok_eval\n"
    )
    m = parse_text(text)
    assert [(i.module, i.line) for i in m.invocations] == [("scripts.base_train", 2), ("scripts.tok_eval", 11)]
    assert any(a.name == "X" and a.value == "multi\nline" for a in m.assignments)


def test_unterminated_quote_is_reported_not_raised():
    m = parse_text('#!/bin/bash\necho "oops\npython -m scripts.base_train\n')
    assert m.unparsable and m.unparsable[0][0] == 2


def test_tokenizer_handles_substitutions():
    tokens, _ = tokenize('A=$(nproc) B="${X:-1}" `date` 2>/dev/null && echo ok')
    words = [t.value for k, t in tokens if k == "word"]
    assert words == ["A=$(nproc)", "B=${X:-1}", "`date`", "/dev/null", "echo", "ok"]


def test_includes_are_followed_once(tmp_path):
    (tmp_path / "inner.sh").write_text(
        "#!/bin/bash\nsource ./job.sbatch\ntorchrun --nproc_per_node=8 -m scripts.base_train\n"
    )
    job = tmp_path / "job.sbatch"
    job.write_text("#!/bin/bash\n#SBATCH --gres=gpu:8\nbash inner.sh\n")
    m = parse_script(job, cwd=tmp_path)
    assert [i.module for i in m.all_invocations] == ["scripts.base_train"]
    assert len(list(m.walk())) == 2  # the recursive source of job.sbatch is not followed again


def test_bad_inputs_become_problems(tmp_path):
    binary = tmp_path / "a.out"
    binary.write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    assert "binary" in parse_script(binary).problems[0]
    latin = tmp_path / "latin.sh"
    latin.write_bytes("echo caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in parse_script(latin).problems[0]
    huge = tmp_path / "huge.sh"
    with open(huge, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    m = parse_script(huge)
    assert m.problems and "MB" in m.problems[0] and not m.commands
    assert parse_script(tmp_path).problems  # a directory
    loop = tmp_path / "loop.sh"
    loop.symlink_to(tmp_path / "loop.sh")
    assert parse_script(loop).problems


def test_sbatch_value_parsers():
    assert parse_time_limit("30") == 1800
    assert parse_time_limit("04:00:00") == 14400
    assert parse_time_limit("1-12") == 36 * 3600
    assert parse_time_limit("2-00:30") == 48 * 3600 + 1800
    assert parse_time_limit("UNLIMITED") is None and parse_time_limit("soon") is None
    assert gpus_from_gres("gpu:8") == 8 and gpus_from_gres("gpu:h100:4,lscratch:10") == 4 and gpus_from_gres("gpu") == 1


def test_an_open_block_is_reported_with_bashs_own_message(tmp_path):
    from preflight.model import Status
    from preflight.testing import Scenario, run_scenario

    script = (
        "#!/bin/bash\nset -e\necho start\nfor attempt in 1 2 3; do\n  echo try\n"
        "  if torchrun --nproc_per_node=8 -- -m scripts.chat_sft --run=dummy; then\n    break\n\necho done\n"
    )
    result = run_scenario(Scenario(script=script, env={"HOME": "{tmp}/home"}), tmp_path, select=["SB015"])
    (check,) = result.checks
    assert check.status is Status.FAIL
    (finding,) = check.findings
    assert finding.line == 4 and finding.message.startswith(
        "bash cannot parse the script: line 10: syntax error: unexpected end of file "
        "(never closed: `for` (line 4), `if` (line 6)). bash runs the lines before line 4"
    ), finding.message
    # torchrun's `-- -m MODULE` (the script after the end of torchrun's options) is still the phase's launch
    (inv,) = parse_text(script).invocations
    assert inv.module == "scripts.chat_sft" and inv.flag("run").value == "dummy"


def test_a_followed_script_run_later_does_not_change_a_value_before_its_call(tmp_path):
    # a public multi-node fork: the batch script sets NANOCHAT_BASE_DIR with a default, hands it to
    # `srun bash per_node.sh`, whose bare `export NANOCHAT_BASE_DIR` re-exports it (a later file, run later)
    (tmp_path / "per_node.sh").write_text(
        'if [ -z "${NANOCHAT_BASE_DIR:-}" ]; then NANOCHAT_BASE_DIR="$HOME/.cache/nanochat"; fi\n'
        "export NANOCHAT_BASE_DIR\npython -m scripts.base_train\n"
    )
    job = tmp_path / "job.sh"
    job.write_text(
        "#!/bin/bash\n"
        'export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-/scratch/$USER/nanochat}"\n'
        'echo "$NANOCHAT_BASE_DIR"\n'
        "srun --ntasks-per-node=1 bash per_node.sh\n"
    )
    model = parse_script(job, cwd=tmp_path, environ={"USER": "me", "HOME": "/home/me"})
    assert model.includes, "per_node.sh is followed"
    # was "${NANOCHAT_BASE_DIR}": the child's re-export counted as an assignment before line 3
    assert model.value_at("NANOCHAT_BASE_DIR", 3, str(job), {"USER": "me"}) == "/scratch/me/nanochat"
    # a default is expanded too (it was returned as written: "/scratch/$USER/nanochat")
    assert model.expand("${UNSET_HERE:-/scratch/$USER/x}", 3, str(job), {"USER": "me"}) == "/scratch/me/x"


def test_nested_loops_are_walked_within_a_budget(tmp_path):
    # 60 x 60 x 60 values: 216,000 walks of the body took 2.5 s; past the budget a loop is walked once, uncertainly
    from preflight.script import evaluator

    calls = []
    real = evaluator.Evaluator.run

    def counting(self, nodes, certain=True):
        calls.append(1)
        return real(self, nodes, certain)

    values = " ".join(map(str, range(60)))
    job = tmp_path / "nested.sh"
    job.write_text(
        f"#!/bin/bash\nfor a in {values}; do for b in {values}; do for c in {values}; do\n"
        "  torchrun --nproc_per_node=8 -m scripts.base_train -- --depth=$c --tag=$a$b\ndone; done; done\n"
    )
    evaluator.Evaluator.run = counting
    try:
        model = parse_script(job)
    finally:
        evaluator.Evaluator.run = real
    assert len(calls) < 3 * evaluator.MAX_BODY_WALKS, len(calls)
    assert model.evaluated and [i.module for i in model.invocations] == ["scripts.base_train"]
