"""Shapes from a ninth round of public forks' batch scripts (written here in our own words): the dataset directory a
script names when its era spans two, a base dir built from a variable known only in the job, a log file written
into a directory nothing creates, variables nothing sets under `set -u`, and (round ten) the base dir exported under
another name."""

from __future__ import annotations

import json

from tests.clirun import check_script

HEAD = "#!/bin/bash\n#SBATCH --gres=gpu:4\n#SBATCH --time=12:00:00\nset -e\nexport OMP_NUM_THREADS=1\n"
TRAIN = "torchrun --standalone --nproc_per_node=4 -m scripts.base_train -- --depth=12\n"


def test_the_dataset_directory_the_script_names_is_the_one_checked(tmp_path, cli):
    # the no-mid era spans FineWeb-Edu's base_data and ClimbMix's base_data_climbmix; a Feb-2026 fork counts its
    # shards in base_data
    base = tmp_path / "base"
    base.mkdir()
    body = (
        HEAD + f"export NANOCHAT_BASE_DIR={base}\n" + 'ls -1 "$NANOCHAT_BASE_DIR/base_data/"*.parquet | wc -l\n' + TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    (few,) = [f for f in checks["DS001"]["findings"] if "holds 0 shard" in f["message"]]
    assert f"{base}/base_data holds 0" in few["message"], few["message"]  # was base_data_climbmix
    assert not any("shard_06542" in f["message"] for f in checks["DS001"]["findings"]), checks["DS001"]


def test_a_base_dir_known_only_in_the_job_is_not_a_path_here(tmp_path, cli):
    body = HEAD + 'PROJECT_ROOT="$(dirname "$SCRIPT_DIR")"\nexport NANOCHAT_BASE_DIR="$PROJECT_ROOT/cache"\n' + TRAIN
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert checks["DS001"]["status"] == "skip" and "known only when the job runs" in checks["DS001"]["reason"]


_LOGGED = (
    "#!/bin/bash\nset -euo pipefail\n"
    'LOG_DIR="$PROJECT_SCRATCH/logs"\nLOGFILE="$LOG_DIR/run_${SLURM_JOB_ID}.log"\n'
    'log() {\n    echo "[$(date)] $*" | tee -a "$LOGFILE"\n}\n'
    'log "starting on $(hostname)"\n' + TRAIN
)


def test_a_log_written_into_a_directory_nothing_creates(tmp_path, cli):
    # a multi-node fork's per-node script: its log function tees into a logs/ directory under its caller's base dir,
    # which no line creates; under pipefail tee's failure ends the job at its first log line (the author's next
    # version adds the mkdir)
    _report, checks = check_script(cli, tmp_path, _LOGGED, "--profile", "no-mid")
    (missing,) = checks["SB034"]["findings"]
    assert missing["location"]["line"] == 6, missing
    assert "in a function: at its first call" in missing["message"], missing["message"]
    assert (
        "$PROJECT_SCRATCH/logs" in missing["message"] and "unless it exists when the job starts" in missing["message"]
    )
    assert "pipeline's failure ends the job there" in missing["message"], missing["message"]
    assert missing["fix"] == 'mkdir -p "$LOG_DIR" before its first write', missing["fix"]

    fixed = _LOGGED.replace("log() {", 'mkdir -p "$LOG_DIR"\nlog() {')
    _report, checks = check_script(cli, tmp_path, fixed, "--profile", "no-mid")
    assert checks["SB034"]["status"] == "pass", checks["SB034"]

    # the caller's directory is known here and has no logs/: it does not exist (the job's variables are read as the
    # script's: an export before sbatch)
    (tmp_path / "scratch").mkdir()
    known = _LOGGED.replace("set -euo pipefail\n", f"set -euo pipefail\nPROJECT_SCRATCH={tmp_path}/scratch\n")
    _report, checks = check_script(cli, tmp_path, known, "--profile", "no-mid")
    (missing,) = checks["SB034"]["findings"]
    assert f"{tmp_path}/scratch/logs does not exist here" in missing["message"], missing["message"]


def test_a_redirection_into_a_missing_directory_here_stops_the_command(tmp_path, cli):
    body = HEAD.replace("set -e\n", "") + TRAIN.replace("\n", " > out/base.log 2>&1\n")
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    (missing,) = checks["SB034"]["findings"]
    assert "out does not exist here and no line of the script creates it" in missing["message"], missing["message"]
    assert "so `torchrun` does not run" in missing["message"] and "set -e" not in missing["message"]
    assert missing["fix"] == 'mkdir -p "out" before line 5', missing["fix"]

    (tmp_path / "out").mkdir()  # the directory the job starts in has it
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert checks["SB034"]["status"] == "pass", checks["SB034"]


def test_writes_into_the_log_directory_or_another_machines_path_are_not_findings(tmp_path, cli):
    body = (
        HEAD.replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH --output=slurm_logs/%j.out\n")
        + "date | tee slurm_logs/$SLURM_JOB_ID-start\n"  # SLURM opened its --output there: it exists
        + "date >> /nonexistent-cluster/alice/logs/started.txt\n"  # the author's own file system, not this one
        + 'RESULTS="$NANOCHAT_BASE_DIR/results"\nls "$RESULTS"\n'  # the script expects it to exist
        + TRAIN.replace("\n", ' | tee "$RESULTS/train.log"\n')
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    assert checks["SB034"]["status"] == "pass", checks["SB034"]


_PER_NODE = (
    "#!/bin/bash\nset -euo pipefail\n"  # no #SBATCH lines: srun runs it on each node, its caller exports the rest
    'echo "rendezvous $RDZV_ID on $SLURM_NODEID"\n'
    "torchrun --nnodes=$SLURM_NNODES --rdzv_id=$RDZV_ID --rdzv_backend=c10d --rdzv_endpoint=$MASTER_ADDR:29500 "
    "-m scripts.base_train -- --depth=12\n"
)


def test_a_variable_nothing_sets_under_set_u_stops_the_script(tmp_path, cli):
    # round nine's per-node script: under `set -euo pipefail` it expands variables only its caller can set; SLURM's
    # and the launcher's own (SLURM_NODEID, MASTER_ADDR) are set at run time
    _report, checks = check_script(cli, tmp_path, _PER_NODE, "--profile", "no-mid")
    (unbound,) = checks["SB035"]["findings"]
    assert unbound["location"]["line"] == 3 and unbound["severity"] == "warning", unbound
    assert "expands $RDZV_ID under `set -u` (line 2)" in unbound["message"], unbound["message"]
    assert "this script's caller (it has no #SBATCH lines)" in unbound["message"]
    assert "`RDZV_ID: unbound variable`" in unbound["message"]

    for fixed, env in (
        (_PER_NODE, {"RDZV_ID": "job42"}),  # exported by whoever runs it
        (_PER_NODE.replace("$RDZV_ID", "${RDZV_ID:-$SLURM_JOB_ID}"), None),  # a default
        (_PER_NODE.replace("set -euo pipefail", "set -eo pipefail"), None),  # no set -u
        (_PER_NODE.replace("set -euo pipefail\n", "set -euo pipefail\nmodule load nccl\n"), None),  # may set it
    ):
        _report, checks = check_script(cli, tmp_path, fixed, "--profile", "no-mid", env=env)
        assert not checks["SB035"]["findings"], (fixed, checks["SB035"])


def test_an_unbound_variable_in_a_submitted_script_is_an_error(tmp_path, cli):
    body = (
        HEAD.replace("set -e\n", "set -eu\n")
        + "echo '$NOT_EXPANDED' \"${#ALSO_MISSING}\"\n"
        + 'for SEED in 1 2; do echo "$SEED"; done\n'
        + 'export NANOCHAT_BASE_DIR="$SCRATCH_ROOT/nanochat"\n'
        + TRAIN
    )
    _report, checks = check_script(cli, tmp_path, body, "--profile", "no-mid")
    found = {f["message"].split(" expands ")[1].split(" ")[0]: f for f in checks["SB035"]["findings"]}
    assert sorted(found) == ["$ALSO_MISSING", "$SCRATCH_ROOT"], found  # not the single-quoted one, not SEED
    assert all(f["severity"] == "error" for f in found.values())
    assert "not the environment sbatch passes from here" in found["$SCRATCH_ROOT"]["message"]
    assert found["$SCRATCH_ROOT"]["fix"].startswith("export SCRATCH_ROOT=... before sbatch")


def test_a_base_dir_set_under_another_name_is_named(tmp_path, cli):
    # round ten's NPU SFT script exports NANOCHAT_CACHE_DIR=/mnt/...; nanochat reads only NANOCHAT_BASE_DIR, so its
    # checkpoints went to ~/.cache/nanochat while the script looked for them under /mnt
    (tmp_path / "job.sh").write_text(HEAD + "export NANOCHAT_CACHE_DIR=/mnt/models/nanochat\n" + TRAIN)
    env = {"HOME": str(tmp_path / "home")}
    proc = cli("preflight", "check", "job.sh", "--profile", "no-mid", "--format", "json", cwd=tmp_path, env=env)
    (home,) = next(c for c in json.loads(proc.stdout)["checks"] if c["code"] == "ENV003")["findings"]
    assert (
        "sets NANOCHAT_CACHE_DIR (line 6), which nanochat (upstream, at every commit) does not read" in home["message"]
    )
    assert "did you mean NANOCHAT_BASE_DIR?" in home["message"] and "not /mnt/models/nanochat" in home["message"]
    assert home["fix"] == 'export NANOCHAT_BASE_DIR="$NANOCHAT_CACHE_DIR" after line 6', home["fix"]

    checkout = tmp_path / "fork"  # a fork that reads its own variable
    (checkout / "nanochat").mkdir(parents=True)
    (checkout / "scripts").mkdir()
    (checkout / "nanochat" / "common.py").write_text('import os\nBASE = os.environ.get("NANOCHAT_CACHE_DIR")\n')
    (checkout / "scripts" / "base_train.py").write_text("import argparse\n")
    proc = cli(
        "preflight", "check", "job.sh", "--profile", "no-mid", "--checkout", str(checkout), "--format", "json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    findings = next(c for c in json.loads(proc.stdout)["checks"] if c["code"] == "ENV003")["findings"]
    assert not any("did you mean" in f["message"] for f in findings), findings


def test_a_per_node_script_says_its_node_count_is_its_callers(tmp_path, cli):
    # round nine: the per-node script was planned as one node with nothing saying so
    report, _checks = check_script(cli, tmp_path, _PER_NODE, "--profile", "no-mid", env={"RDZV_ID": "1"})
    said = [a for a in report["plan"]["assumptions"] if a.startswith("1 node: torchrun --nnodes=$SLURM_NNODES")]
    assert said and "its caller sets it" in said[0], report["plan"]["assumptions"]
    with_directive = _PER_NODE.replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --gres=gpu:8\n")
    report, _checks = check_script(cli, tmp_path, with_directive, "--profile", "no-mid", env={"RDZV_ID": "1"})
    assert not any(a.startswith("1 node:") for a in report["plan"]["assumptions"]), report["plan"]["assumptions"]
