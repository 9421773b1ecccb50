"""Parquet shards (classic format) and the distributed, resumable data loader."""

import os
import sys

import pyarrow.parquet as pq
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nc_helpers import run_module


def test_demo_shards_have_the_classic_format(tiny_base_dir):
    data = tiny_base_dir / "base_data"
    names = sorted(os.listdir(data))
    assert names == ["shard_00000.parquet", "shard_00001.parquet", "shard_00002.parquet"], "no .tmp left, 5-digit names"
    for name in names:
        pf = pq.ParquetFile(data / name)
        assert pf.schema_arrow.names == ["text"]
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        assert all(s == 1024 for s in sizes[:-1]) and 0 < sizes[-1] <= 1024
        assert pf.metadata.row_group(0).column(0).compression == "ZSTD"
        assert pf.num_row_groups >= 2, "two ranks need two row groups per shard"


def test_build_from_text_dir(tmp_path):
    src = tmp_path / "texts"
    src.mkdir()
    for i in range(6):
        (src / f"doc{i}.txt").write_text(
            (f"Paragraph {i} of a user document. ") * 20 + "\n\n" + "Another block here. " * 15
        )
    base = tmp_path / "base"
    p = run_module(base, "nanochat.dataset", "build", "--from-text", str(src), "--num-shards", "2")
    assert "Done! Built: 2/2 shards" in p.stdout
    texts = sum(
        (
            pq.read_table(base / "base_data" / f).column("text").to_pylist()
            for f in sorted(os.listdir(base / "base_data"))
        ),
        [],
    )
    assert len(texts) == 12 and all(len(t) >= 200 for t in texts)


def test_build_is_deterministic(tmp_path):
    from nanochat.dataset import build_shards

    docs = [f"document number {i} " * 30 for i in range(300)]
    for d in ("a", "b"):
        build_shards(docs, 3, chars_per_shard=20000, data_dir=str(tmp_path / d))
    for f in os.listdir(tmp_path / "a"):
        assert pq.read_table(tmp_path / "a" / f).equals(pq.read_table(tmp_path / "b" / f))


def test_loader_exact_and_classic_resume(tiny_base_dir, monkeypatch):
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tiny_base_dir))
    from nanochat.dataloader import tokenizing_distributed_data_loader_with_state as loader
    from nanochat.tokenizer import get_tokenizer

    tok = get_tokenizer()
    B, T = 4, 128
    it = loader(B, T, "train", tok, device="cpu")
    batches = [next(it) for _ in range(40)]
    x0, y0, _ = batches[0]
    assert x0.shape == (B, T) and x0.dtype == torch.long
    assert torch.equal(x0.view(-1)[1:], y0.view(-1)[:-1]), "targets are the inputs shifted by one"
    assert x0[0, 0].item() == tok.get_bos_token_id(), "documents start with <|bos|>"
    for k in (0, 7, 25):
        state = batches[k][2]
        resumed = loader(B, T, "train", tok, device="cpu", resume_state_dict=state)
        for j in range(k + 1, min(k + 4, 40)):
            x, y, _ = next(resumed)
            assert torch.equal(x, batches[j][0]) and torch.equal(y, batches[j][1]), f"exact resume after batch {k}"
    # a classic state (pq_idx/rg_idx only) resumes at the next round of row groups: nothing repeated
    classic = {"pq_idx": 0, "rg_idx": 0}
    x, _, st = next(loader(B, T, "train", tok, device="cpu", resume_state_dict=classic))
    assert (st["pq_idx"], st["rg_idx"]) == (0, 1)
    assert not torch.equal(x, x0)
