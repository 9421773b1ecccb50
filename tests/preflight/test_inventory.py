"""Inventory: base dir precedence, shard footers (vs pyarrow), tokenizer vocab without unpickling, bad input."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflight.inventory import token_bytes_vocab
from preflight.parquet_footer import read_footer
from preflight.testing import Scenario


def write_shard(path, rows=3000, rg=1024):
    pq.write_table(
        pa.table({"text": [f"doc {i}" for i in range(rows)]}),
        path,
        row_group_size=rg,
        compression="zstd",
        use_dictionary=False,
        write_statistics=False,
    )


def test_footer_reader_agrees_with_pyarrow(tmp_path):
    p = tmp_path / "s.parquet"
    write_shard(p, 5000)
    info, problem, _ = read_footer(p)
    meta = pq.ParquetFile(p).metadata
    assert problem is None and info.columns == ["text"] and info.num_rows == meta.num_rows == 5000
    assert info.row_groups == [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@pytest.mark.parametrize(
    "mutate,expect",
    [
        (lambda b: b"", "empty"),
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b"XXXX" + b[4:], "PAR1"),
        (lambda b: b[:-8] + (10**9).to_bytes(4, "little") + b"PAR1", "out of range"),
        (lambda b: b[: -8 - 40] + b"\xff" * 40 + b[-8:], "footer"),
    ],
)
def test_corrupt_shards_are_problems(tmp_path, mutate, expect):
    p = tmp_path / "s.parquet"
    write_shard(p)
    p.write_bytes(mutate(p.read_bytes()))
    info, problem, _ = read_footer(p)
    assert info is None and expect in problem


def test_base_dir_precedence(tmp_path):
    script = "#!/bin/bash\nexport NANOCHAT_BASE_DIR=$HOME/nc\n"
    env = {"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/env"}
    ctx = Scenario(script=script, env=env, base_dir="cli").context(tmp_path)
    assert ctx.get("base_dir").source == "--base-dir"
    ctx = Scenario(script=script, env=env, config={"base-dir": "{tmp}/cfg"}).context(tmp_path)
    assert str(ctx.get("base_dir").path) == f"{tmp_path}/cfg"
    ctx = Scenario(script=script, env=env).context(tmp_path)
    bd = ctx.get("base_dir")
    assert str(bd.path) == f"{tmp_path}/home/nc" and bd.line == 2
    ctx = Scenario(script="#!/bin/bash\n", env=env).context(tmp_path)
    assert str(ctx.get("base_dir").path) == f"{tmp_path}/env"
    ctx = Scenario(script="#!/bin/bash\n", env={"HOME": "{tmp}/home"}).context(tmp_path)
    assert ctx.get("base_dir").default


def test_dataset_inventory_survives_bad_entries(tmp_path):
    d = tmp_path / "base" / "base_data"
    d.mkdir(parents=True)
    write_shard(d / "shard_00000.parquet")
    write_shard(d / "shard_00002.parquet")
    (d / "shard_00003.parquet.tmp").write_bytes(b"PAR1")
    (d / "notes.parquet").write_bytes(b"")
    os.symlink(d / "shard_00009.parquet", d / "shard_00009.parquet")  # a symlink loop
    ctx = Scenario(env={}, config={"base-dir": str(tmp_path / "base")}).context(tmp_path)
    ds = ctx.get("dataset")
    assert ds.indices == [0, 2] and ds.gaps() == [1] and len(ds.tmp_files) == 1 and len(ds.stray) == 1
    assert len(ds.unreadable) == 1 and not ds.validate()


def test_unreadable_dataset_dir(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can list any directory")
    d = tmp_path / "base" / "base_data"
    d.mkdir(parents=True)
    d.chmod(0)
    try:
        ctx = Scenario(env={}, config={"base-dir": str(tmp_path / "base")}).context(tmp_path)
        assert ctx.get("dataset").error
    finally:
        d.chmod(0o755)


def test_token_bytes_vocab_without_unpickling(tmp_path):
    import torch

    p = tmp_path / "token_bytes.pt"
    torch.save(torch.zeros(65536, dtype=torch.int32), p)
    assert token_bytes_vocab(p) == (65536, None)
    p.write_bytes(b"garbage")
    vocab, problem = token_bytes_vocab(p)
    assert vocab is None and problem


def test_one_base_dir_resolution_before_and_after(tmp_path):
    """Pre and post resolve the base dir in one place (inventory.base_dir_fact) with one precedence;
    after the job the default ~/.cache/nanochat counts only when it exists."""
    from preflight.ckpt import resolve_base_dir
    from preflight.testing import Scenario

    env = {"HOME": "{tmp}/home", "NANOCHAT_BASE_DIR": "{tmp}/from_env"}
    pre = Scenario(script="#!/bin/bash\nexport NANOCHAT_BASE_DIR={tmp}/from_script\n", env=env).context(tmp_path)
    assert pre.get("base_dir").path == tmp_path / "from_script"
    post = Scenario(env=env, stage="post", logs=[]).context(tmp_path)
    assert resolve_base_dir(post) == (tmp_path / "from_env", "NANOCHAT_BASE_DIR in the environment")
    bare = Scenario(env={"HOME": "{tmp}/nohome"}, stage="post").context(tmp_path)
    assert resolve_base_dir(bare) is None
