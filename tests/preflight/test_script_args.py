"""`preflight check SCRIPT [-- ARGS]`: a job script is checked as `sbatch SCRIPT ARGS` runs it, with no
arguments unless they are given (a fork's runner that exits with its usage text, `--testrun` switches and
loops over "$@" were all planned as if any argument could be there)."""

from __future__ import annotations

import json

from tests.clirun import check_script

_USAGE = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -eo pipefail\n"
    'if [ $# -eq 0 ]; then\n    echo "Usage: $0 <model_type> [model_type ...]" >&2\n    exit 1\nfi\n'
    'for model in "$@"; do\n'
    "    torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12 --model-tag=$model\n"
    "done\n"
)


def test_a_runner_that_needs_arguments_says_so_and_how_to_check_it_with_them(tmp_path, cli):
    report, checks = check_script(cli, tmp_path, _USAGE, "--profile", "classic")
    assert report["plan"]["phases"] == []
    (sb017,) = checks["SB017"]["findings"]
    assert sb017["message"].endswith("`[ $# -eq 0 ]` is true (with no arguments, as `sbatch job.sh` runs it)")
    assert sb017["fix"] == "pass the script its arguments (sbatch job.sh ARGS) and check it with them: " + (
        "preflight check job.sh -- ARGS"
    )
    # given its arguments, each one is a run of the loop
    report, checks = check_script(cli, tmp_path, _USAGE, "--profile", "classic", "--", "gpt_base", "gpt")
    assert checks["SB017"]["status"] == "pass"
    (base,) = [p for p in report["plan"]["phases"] if p["name"] == "base"]
    one = report["plan"]["iterations"]
    assert base["steps"] == 2 * one, (base, one)


_TESTRUN = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\nDEPTH=26\nTESTRUN=false\n"
    'for arg in "$@"; do\n    case $arg in\n        --testrun) TESTRUN=true; shift ;;\n    esac\ndone\n'
    'if [ "$TESTRUN" = true ]; then\n    DEPTH=12\n    HORIZON="--num-iterations=100"\n'
    'else\n    HORIZON="--target-param-data-ratio=8.5"\nfi\n'
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=$DEPTH $HORIZON\n"
)


def test_a_testrun_switch_is_off_unless_passed(tmp_path, cli):
    # the depth came from the --testrun branch and the horizon from the other one: a d12 run of ratio 8.5
    report, _checks = check_script(cli, tmp_path, _TESTRUN, "--profile", "no-mid")
    assert (report["plan"]["depth"], report["plan"]["iterations"]) == (26, 14889), report["plan"]
    report, _checks = check_script(cli, tmp_path, _TESTRUN, "--profile", "no-mid", "--", "--testrun")
    assert (report["plan"]["depth"], report["plan"]["iterations"]) == (12, 100), report["plan"]


def test_the_title_names_the_arguments_and_arguments_need_a_script(tmp_path, cli):
    (tmp_path / "job.sh").write_text(_USAGE)
    proc = cli("preflight", "check", "job.sh", "--profile", "classic", "--", "gpt base", cwd=tmp_path)
    assert proc.stdout.splitlines()[0] == "preflight check job.sh 'gpt base'"
    proc = cli("preflight", "check", "--format", "json", "job.sh", "gpt", cwd=tmp_path)  # no dash: no -- needed
    assert not [f for c in json.loads(proc.stdout)["checks"] if c["code"] == "SB017" for f in c["findings"]]
    alone = cli("preflight", "check", "--", "--testrun", cwd=tmp_path)
    assert alone.returncode == 2 and "preflight: --testrun: no such file" in alone.stderr


def test_a_one_line_guard_is_quoted_by_its_condition_alone(tmp_path, cli):
    body = _USAGE.replace(
        'if [ $# -eq 0 ]; then\n    echo "Usage: $0 <model_type> [model_type ...]" >&2\n    exit 1\nfi\n',
        'if [ -z "$1" ]; then echo "usage: $0 MODEL"; exit 1; fi\n',
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "classic")
    (sb017,) = checks["SB017"]["findings"]
    assert ': `[ -z "$1" ]` is true (with no arguments' in sb017["message"], sb017["message"]


_PASS_ON = (
    "set -e\n"  # a job platform's wrapper: no #! line, the launch's module and flags are its arguments
    'if [ -z "$ENV_PREFIX" ]; then\n    echo "ENV_PREFIX is not set"\n    exit 1\nfi\n'
    "NUM_GPUS=4\n"
    'run_one() {\n    echo "inside a function, $@ is the function\'s own"\n}\n'
    "exec ${ENV_PREFIX}/torchrun --nproc_per_node=$NUM_GPUS --nnodes=1 $@\n"
)


def test_a_wrapper_that_passes_its_arguments_to_torchrun_is_planned_with_them(tmp_path, cli):
    args = ("--", "-m", "scripts.base_train", "--depth=12", "--model-tag=d12_x")
    report, _checks = check_script(cli, tmp_path, _PASS_ON, "--profile", "classic", *args, env={"ENV_PREFIX": "/env"})
    plan = report["plan"]
    assert [p["name"] for p in plan["phases"]] == ["base"] and (plan["depth"], plan["world_size"]) == (12, 4), plan
    # with no arguments (as the wrapper is run bare) it launches nothing preflight can see
    report, _checks = check_script(cli, tmp_path, _PASS_ON, "--profile", "classic", env={"ENV_PREFIX": "/env"})
    assert report["plan"]["phases"] == []
