"""Hostile input, round two: tokenizer and checkpoint files (issue 14).

- A tokenizer.pkl that the restricted unpickler accepts but whose Encoding state is a *name* made
  tiktoken fetch that encoding during unpickling (network chosen by a data file; a 30 s hang offline).
  The readers now build the Encoding from checked data and refuse a name.
- Checkpoint zips that crashed the header reader (deflate64, encrypted, corrupt deflate, a
  5000-digit dimension, two data.pkl entries) are reported as corrupt files.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from preflight.ckpt import inspect_torch_file

tiktoken = pytest.importorskip("tiktoken")


def _named_encoding_pickle() -> bytes:
    """What tiktoken writes for an encoding it has registered: only the name."""
    import tiktoken.registry as registry

    enc = tiktoken.Encoding(
        name="cl100k_base", pat_str=r"\s+|\S+", mergeable_ranks={bytes([i]): i for i in range(256)}, special_tokens={}
    )
    registry.ENCODINGS["cl100k_base"] = enc
    try:
        return pickle.dumps(enc)
    finally:
        del registry.ENCODINGS["cl100k_base"]


@pytest.fixture
def no_fetch(monkeypatch):
    """Fail if anything asks tiktoken for a named encoding (that downloads it)."""
    import tiktoken.registry as registry

    calls = []
    monkeypatch.setattr(
        registry,
        "get_encoding",
        lambda name: (
            calls.append(name) or pytest.fail(f"tiktoken.get_encoding({name!r}) called while reading a data file")
        ),
    )
    return calls


def test_bundled_reader_refuses_a_named_encoding(tmp_path, no_fetch, tally):
    from nanochat.tokenizer import load_tokenizer_pkl

    tally.tried("tokenizer.pkl")
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(_named_encoding_pickle())
    with pytest.raises(ValueError, match="names the registered encoding 'cl100k_base'"):
        load_tokenizer_pkl(path)
    assert not no_fetch


def test_smoke_child_reader_refuses_a_named_encoding(no_fetch, tally):
    from preflight import smoke_driver

    tally.tried("tokenizer.pkl")
    with pytest.raises(smoke_driver._Refused, match="registered encoding"):
        smoke_driver._restricted_loads(_named_encoding_pickle())
    assert not no_fetch


def test_real_encoding_still_loads(tmp_path, no_fetch):
    from nanochat.tokenizer import load_tokenizer_pkl

    enc = tiktoken.Encoding(
        name="rustbpe",
        pat_str=r"\s+|\S+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|bos|>": 256},
    )
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(enc))
    loaded = load_tokenizer_pkl(path)
    assert loaded.n_vocab == 257 and loaded.encode("hi") == [104, 105]


def test_opcode_bomb_tokenizer_is_refused(tmp_path, tally):
    """Millions of tiny opcodes (each builds an object): bounded before unpickling."""
    from nanochat.tokenizer import load_tokenizer_pkl

    tally.tried("tokenizer.pkl")
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(b"\x80\x04]" + b"}" * 5_000_000 + b".")  # EMPTY_LIST then 5M EMPTY_DICTs
    with pytest.raises(ValueError, match="opcodes"):
        load_tokenizer_pkl(path)


def _torch_like_zip(path: Path, data_pkl: bytes, *, method=zipfile.ZIP_STORED, twice=False) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as z:
        z.writestr("archive/data.pkl", data_pkl)
        if twice:
            z.writestr("archive/data.pkl", pickle.dumps({}))
        z.writestr("archive/version", "3\n")
    return path


def _patch_first_header(path: Path, *, method: int | None = None, flags: int | None = None) -> None:
    """Rewrite the compression method / flag bits of the first entry in both its headers."""
    raw = bytearray(path.read_bytes())
    local, central = 0, raw.find(b"PK\x01\x02")
    if method is not None:
        struct.pack_into("<H", raw, local + 8, method)
        struct.pack_into("<H", raw, central + 10, method)
    if flags is not None:
        struct.pack_into("<H", raw, local + 6, flags)
        struct.pack_into("<H", raw, central + 8, flags)
    path.write_bytes(bytes(raw))


def _cases(tmp: Path) -> dict[str, Path]:
    good = pickle.dumps({"w": 1}, protocol=2)
    out = {"duplicate-data.pkl": _torch_like_zip(tmp / "dup.pt", good, twice=True)}
    p = _torch_like_zip(tmp / "deflate64.pt", good, method=zipfile.ZIP_DEFLATED)
    _patch_first_header(p, method=9)
    out["deflate64"] = p
    p = _torch_like_zip(tmp / "encrypted.pt", good, method=zipfile.ZIP_DEFLATED)
    _patch_first_header(p, flags=0x1)
    out["encrypted"] = p
    p = _torch_like_zip(tmp / "corrupt-deflate.pt", good * 50, method=zipfile.ZIP_DEFLATED)
    raw = bytearray(p.read_bytes())
    start = 30 + len("archive/data.pkl")
    raw[start : start + 8] = b"\xff" * 8
    p.write_bytes(bytes(raw))
    out["corrupt-deflate"] = p
    huge = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01L" + b"9" * 5000 + b"L\n" + b"s."  # {"w": 99...9L}
    out["5000-digit-int"] = _torch_like_zip(tmp / "digits.pt", huge)
    return out


@pytest.mark.parametrize("case", ["duplicate-data.pkl", "deflate64", "encrypted", "corrupt-deflate", "5000-digit-int"])
def test_checkpoint_zip_that_crashed_the_reader_is_a_corrupt_file(case, tmp_path, tally):
    tally.tried("checkpoint zip")
    fc = inspect_torch_file(_cases(tmp_path)[case])
    assert fc.error, f"{case}: read as a valid checkpoint"
    str(fc.error)  # printable: no 5000-digit int inside
    assert len(fc.error) < 400
