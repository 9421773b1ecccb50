"""The script model sees through wrappers: shell text run by `bash -c`/`eval`, prefixes such as
`timeout`, `env`, `apptainer exec`, `conda run`, known arrays; and it says which lines still hide
a launch. Also: `#SBATCH` lines split the way sbatch splits them, and paths expanded from the
job's environment only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preflight.script import parse_script, parse_text
from preflight.script.sbatch import split_directive
from preflight.script.wrappers import strip_prefixes, timeout_seconds


def _invs(m):
    return [(i.line, i.launcher, i.module) for i in m.all_invocations]


def test_srun_bash_lc_text_is_parsed_like_script_lines():
    m = parse_text(
        "srun --ntasks=2 --ntasks-per-node=1 bash --noprofile --norc -lc 'source .venv/bin/activate; "
        "torchrun --nnodes=2 --nproc_per_node=8 -m scripts.base_train -- --depth=20 && "
        "torchrun --nnodes=2 --nproc_per_node=8 -m scripts.mid_train'\n"
    )
    assert _invs(m) == [(1, "srun+torchrun", "scripts.base_train"), (1, "srun+torchrun", "scripts.mid_train")]
    base = m.invocations[0]
    assert base.nproc_per_node == "8" and base.nnodes == "2" and base.flag("depth").value == "20"
    assert base.srun_opts == ["--ntasks=2", "--ntasks-per-node=1"]
    assert base.prefixes == ["srun", "bash --noprofile --norc -lc"]


@pytest.mark.parametrize(
    "line",
    [
        'eval "$TRAIN_CMD"',
        "eval $TRAIN_CMD",
        'bash -c "$TRAIN_CMD"',
        'sh -c "$TRAIN_CMD"',
        "timeout 172800s $TRAIN_CMD",
        "env PYTHONUNBUFFERED=1 nohup stdbuf -oL time $TRAIN_CMD",
    ],
)
def test_a_known_command_string_is_seen_through_every_wrapper(line):
    m = parse_text('TRAIN_CMD="python -m scripts.base_train --depth=24 --run=$WANDB_RUN"\n' + line + "\n")
    assert _invs(m) == [(2, "python", "scripts.base_train")], line
    assert m.invocations[0].flag("depth").value == "24"
    assert not m.hidden


def test_prefixes_with_options_and_images():
    cases = {
        "apptainer exec --nv -B /data:/data img.sif torchrun --nproc_per_node 8 -m scripts.base_train": "apptainer exec",
        "singularity exec --bind /x img.sif python -m scripts.mid_train": "singularity exec",
        "conda run -n nanochat --no-capture-output python -m scripts.chat_sft": "conda run",
        "uv run --with wandb python -m scripts.base_train": "uv run",
        "nice -n 10 numactl --cpunodebind=0 python -m scripts.base_train": "nice",
    }
    for line, first in cases.items():
        m = parse_text(line + "\n")
        assert len(m.invocations) == 1 and m.invocations[0].module.startswith("scripts."), line
        assert m.invocations[0].prefixes[0] == first, line


def test_timeout_duration_is_kept_and_parsed():
    m = parse_text("timeout -s INT --kill-after=60 47h python -m scripts.base_train\n")
    assert m.invocations[0].timeout == "47h"
    assert timeout_seconds("47h") == 47 * 3600 and timeout_seconds("172800s") == 172800
    assert timeout_seconds("1.5m") == 90 and timeout_seconds("2d") == 172800 and timeout_seconds("soon") is None
    assert strip_prefixes(["srun", "-N", "2", "timeout", "10h", "env", "A=1", "python"]).words == ["python"]


def test_known_array_launcher_and_the_branch_that_sets_it():
    text = (
        'NGPUS=4\nif [ "$USE_DS" -eq 1 ]; then\n  LAUNCHER=(deepspeed --num_gpus="$NGPUS")\nelse\n'
        '  LAUNCHER=(torchrun --standalone --nproc_per_node="$NGPUS")\nfi\n'
        '"${LAUNCHER[@]}" -m scripts.base_train -- --depth=12\n'
    )
    m = parse_text("USE_DS=0\n" + text)
    assert _invs(m) == [(8, "torchrun", "scripts.base_train")]
    assert m.invocations[0].nproc_per_node == "4" and m.invocations[0].standalone


def test_flag_arrays_keep_their_appends():
    # the shape of public launch scripts: an argument array, extended when an option is on, run through a
    # function that echoes and runs its arguments
    text = (
        'run_step() {\n  echo "==> $*"\n  "$@"\n}\n'
        'DEPTH="${DEPTH:-24}"\nFP8="${FP8:-1}"\n'
        'TRAIN_ARGS=(\n  --run=dummy\n  --depth="$DEPTH"\n  --device-batch-size=32\n)\n'
        'if [ "$FP8" = "1" ]; then\n  TRAIN_ARGS+=(--fp8 --fp8-recipe=tensorwise)\nfi\n'
        'run_step torchrun --nnodes=1 --nproc_per_node=8 -m scripts.base_train -- "${TRAIN_ARGS[@]}"\n'
    )
    inv = parse_text(text, environ={}).invocations[0]
    assert [f.raw for f in inv.flags] == [
        "--run=dummy",
        "--depth=24",
        "--device-batch-size=32",
        "--fp8",
        "--fp8-recipe=tensorwise",
    ]
    # the option off: the branch is not taken and the array keeps its first elements only
    inv = parse_text(text, environ={"FP8": "0"}).invocations[0]
    assert [f.key for f in inv.flags] == ["run", "depth", "device-batch-size"]


def test_string_appends_and_the_scripts_own_arguments():
    m = parse_text(
        'ARGS="--depth=26"\nARGS+=" --run=dummy"\nX=a\nX+=b\nif [ "$X" = ab ]; then Y=1; else Y=2; fi\n'
        'torchrun --standalone -m scripts.base_train -- $ARGS --y=$Y --fp8 "$@"\n',
        environ={},
    )
    inv = m.invocations[0]
    assert [(f.key, f.value) for f in inv.flags][:3] == [("depth", "26"), ("run", "dummy"), ("y", "$Y")]
    assert m.expand("$Y", inv.line) == "1"  # X+=b made X "ab": the if took its first branch
    # "$@" (the script's own arguments, unknown here) is never taken as --fp8's value
    assert [(f.key, f.value, f.style) for f in inv.flags][3:] == [("fp8", None, "bare"), (None, "$@", "positional")]


def test_inner_set_e_and_outer_exit_check_mark_phases_checked():
    m = parse_text(
        "bash -c 'set -e; python -m scripts.base_train; python -m scripts.mid_train'\n"
        "bash -c 'python -m scripts.chat_sft' || exit 1\n"
    )
    assert [i.checked for i in m.invocations] == [True, False, True]


def test_unknown_command_text_is_reported_hidden_not_guessed():
    m = parse_text('eval "$(cat cmd.txt)"\n$LAUNCH -m scripts.base_train\nbash -c "$CMD"\n', environ={})
    assert not m.invocations
    assert [line for line, _f, _why in m.hidden] == [1, 2, 3]
    assert "eval" in m.hidden[0][2] and "$LAUNCH" in m.hidden[1][2]


def test_nested_shell_text_stops_at_the_depth_limit():
    inner = "python -m scripts.base_train"
    for _ in range(8):
        inner = "bash -c " + "'" + inner.replace("'", "'\\''") + "'"
    m = parse_text(inner + "\n")  # 8 levels: deeper than followed, reported, never a crash
    assert not m.invocations and m.hidden


def test_eval_that_evals_itself_terminates():
    m = parse_text('X=\'eval "$X"\'\neval "$X"\n')
    assert not m.invocations  # a self-referencing eval is cut by the depth limit, not followed forever


def test_sbatch_directive_split_follows_sbatch_not_the_shell():
    assert split_directive(" --constraint=a100|h100 -N 2") == (["--constraint=a100|h100", "-N", "2"], None)
    assert split_directive(' --comment="a # b" --nice=7  # note') == (["--comment=a # b", "--nice=7"], None)
    assert split_directive(" --job-name=run#2 --time=5") == (["--job-name=run"], "#2 --time=5")
    m = parse_text("#!/bin/bash\n#SBATCH --constraint=a100|h100 --time=10 # ten minutes\n#SBATCH --job-name=a#b -N 2\n")
    assert [(d.key, d.value) for d in m.directives] == [("constraint", "a100|h100"), ("time", "10"), ("job-name", "a")]
    assert m.directives[2].cut == "#b -N 2"


def test_paths_expand_from_the_jobs_environment_not_preflights(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "site.sh").write_text("export FROM_SITE=1\n")
    monkeypatch.setenv("SITE_DIR", str(tmp_path / "mine"))  # the linting machine's environment
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\ncd "$SITE_DIR"\nsource "$SITE_DIR/site.sh"\n')
    assert os.environ["SITE_DIR"]
    m = parse_script(script, cwd=tmp_path, environ={})
    assert m.cd_targets == [] and m.includes == []  # SITE_DIR is not set for the job: nothing is guessed
    m = parse_script(script, cwd=tmp_path, environ={"SITE_DIR": str(tmp_path / "mine")})
    assert m.cd_targets == [str(tmp_path / "mine")] and len(m.includes) == 1
    home = parse_script(_write(tmp_path / "h.sh", "source ~/env.sh\n"), cwd=tmp_path, environ={"HOME": str(tmp_path)})
    assert home.missing_includes and str(home.missing_includes[0][1]) == f"{tmp_path}/env.sh"


def _write(path, text):
    path.write_text(text)
    return path


def test_loop_over_a_known_list_launches_each_phase():
    m = parse_text(
        'PHASES="base mid"\nfor phase in $PHASES; do\n'
        "  torchrun --standalone --nproc_per_node=8 -m scripts.${phase}_train -- --run=$phase\ndone\n"
        "for f in *.cfg; do python -m scripts.chat_sft --config=$f; done\n"
    )
    assert [(i.line, i.module, i.flag("run") and i.flag("run").value) for i in m.invocations] == [
        (3, "scripts.base_train", "base"),
        (3, "scripts.mid_train", "mid"),
        (5, "scripts.chat_sft", None),
    ]
    assert m.invocations[2].flag("config").value == "$f"  # a glob: the file names are not known, read once


def test_function_that_runs_its_arguments_launches_them():
    m = parse_text(
        'run_step() {\n  echo "== $1"\n  shift\n  "$@" || exit 1\n}\n'
        "run_step base torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
        "run_step sft python -m scripts.chat_sft\n",
        environ={},
    )
    assert [(i.line, i.launcher, i.module) for i in m.invocations] == [
        (6, "torchrun", "scripts.base_train"),
        (7, "python", "scripts.chat_sft"),
    ]
    assert not m.hidden  # the body's "$@" is the wrapper's template, not a hidden launch
    assert all(i.checked for i in m.invocations)  # `"$@" || exit 1` in the body checks every phase


def test_function_running_shell_text_built_from_its_arguments():
    m = parse_text(
        'launch() {\n  local mod=$1\n  srun bash -lc "torchrun --nproc_per_node=8 -m $mod -- ${@:2}"\n}\n'
        'run2() { bash -c "python -m $1"; }\n'
        "launch scripts.base_train --depth=20\nrun2 scripts.chat_sft\n",
        environ={},
    )
    assert [(i.line, i.launcher, i.module) for i in m.invocations] == [
        (6, "srun+torchrun", "scripts.base_train"),
        (7, "python", "scripts.chat_sft"),
    ]
    assert not any("$" in (i.module or "") for i in m.invocations)  # the bodies are templates, not launches


def test_a_script_run_in_a_container_is_followed_through_its_bind(tmp_path):
    # the shape of a public Apptainer job: the checkout bound at /opt/nanochat, its runner started
    # by the image's runscript, the base dir passed with --env
    (tmp_path / "nanochat").mkdir()
    (tmp_path / "nanochat" / "run_560M.sh").write_text(
        "#!/bin/bash\nset -e\ntorchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=20\n"
    )
    job = tmp_path / "job.sbatch"
    job.write_text(
        "#!/bin/bash\n#SBATCH --gpus-per-node=4\n"
        f'apptainer run --nv --bind {tmp_path}/nanochat:/opt/nanochat -B /data --env NANOCHAT_BASE_DIR="{tmp_path}/base" '
        '"$SIF_IMAGE" bash /opt/nanochat/run_560M.sh\n'
    )
    m = parse_script(job, environ={"SIF_IMAGE": "/images/nanochat.sif"})
    assert [(i.module, i.file) for i in m.all_invocations] == [
        ("scripts.base_train", str(tmp_path / "nanochat" / "run_560M.sh"))
    ]
    assert strip_prefixes(m.commands[0].words).binds == [(f"{tmp_path}/nanochat", "/opt/nanochat"), ("/data", "/data")]

    from preflight.testing import Scenario

    ctx = Scenario(script=job.read_text(), env={"HOME": "{tmp}/home", "SIF_IMAGE": "/i.sif"}).context(tmp_path)
    base = ctx.get("base_dir")
    assert base.path == tmp_path / "base" and base.source.startswith("passed to the command at ")


def test_host_paths_of_container_paths():
    from preflight.script.wrappers import host_path

    binds = [("/scratch/me/nanochat", "/opt/nanochat"), ("/scratch/me", "/work"), ("/data", "/data")]
    assert host_path("/opt/nanochat/runs/speedrun.sh", binds) == "/scratch/me/nanochat/runs/speedrun.sh"
    assert host_path("/work/x.sh", binds) == "/scratch/me/x.sh"
    assert host_path("/opt/nanochatX/y.sh", binds) == "/opt/nanochatX/y.sh"  # a prefix of a name is no bind
    assert host_path("/home/me/run.sh", binds) == "/home/me/run.sh"  # apptainer binds $HOME as it is


def test_what_shell_text_sets_is_what_its_launches_see(tmp_path):
    # the shape of a public pyxis job: every phase in one `srun --container-image=... bash -c "..."`
    # whose text exports the base dir and the thread count before it launches
    from preflight.testing import Scenario

    script = (
        "#!/bin/bash\n#SBATCH --gpus-per-node=8\nset -euo pipefail\nLUSTRE=/lustre/me\n"
        'srun --container-image=/images/pt.sqsh --container-mounts=$LUSTRE:$LUSTRE bash -c "\n'
        "set -euo pipefail\nexport OMP_NUM_THREADS=1\nexport NANOCHAT_BASE_DIR=$LUSTRE/.cache/nanochat\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=12\n"
        '"\n'
        "echo done\n"
    )
    ctx = Scenario(script=script, env={"HOME": "{tmp}/home"}).context(tmp_path)
    (inv,) = ctx.get("script").invocations
    assert inv.module == "scripts.base_train" and inv.srun
    assert ctx.get("base_dir").path == Path("/lustre/me/.cache/nanochat")
    assert ctx.get("job_env").get("OMP_NUM_THREADS") == "1"


def test_a_script_srun_runs_has_every_launch_under_srun(tmp_path):
    # `srun bash train.sh` on two nodes: train.sh's torchrun --nnodes=2 runs once per node
    (tmp_path / "train.sh").write_text(
        "#!/bin/bash\nset -e\ntorchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d "
        "--rdzv_endpoint=$MASTER_ADDR:29500 -m scripts.base_train -- --depth=20\n"
    )
    job = tmp_path / "job.sbatch"
    job.write_text(
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gres=gpu:8\n"
        "timeout 47h srun --ntasks-per-node=1 bash train.sh\n"
    )
    (inv,) = parse_script(job, environ={}).all_invocations
    assert (inv.launcher, inv.srun_opts, inv.timeout, inv.prefixes) == (
        "srun+torchrun",
        ["--ntasks-per-node=1"],
        "47h",
        ["timeout", "srun"],
    )


def test_every_download_in_shell_text_is_its_own_finding(tmp_path):
    # a container step that installs, downloads and trains in one `bash -c` text: each download is named
    from preflight.testing import Scenario, run_scenario

    script = (
        '#!/bin/bash\nset -e\nsrun --container-image=img.sqsh bash -c "\nset -e\n'
        "pip install torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
        'curl -L -o /scratch/identity_conversations.jsonl https://example.org/identity_conversations.jsonl\n"\n'
    )
    result = run_scenario(Scenario(script=script, env={"HOME": "{tmp}/home"}), tmp_path, select=["SB011"])
    messages = [f.message for f in result.checks[0].findings]
    assert any(m.startswith("`pip install torch==2.9.1") for m in messages), messages
    assert any(m.startswith("`curl -L -o /scratch/identity_conversations.jsonl") for m in messages), (
        messages
    )  # was missed
    assert not any(m.startswith("`srun") for m in messages), messages  # the step's own text, not srun's
