"""Shapes from a ninth round of public forks' batch scripts (written here in our own words): the dataset directory a
script names when its era spans two, and a base dir built from a variable known only in the job."""

from __future__ import annotations

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
