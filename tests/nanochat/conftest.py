"""Fixtures for the bundled trainer's tests: a tiny base dir (demo shards + a 1024-token tokenizer), built once."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # --import-mode=importlib: make nc_helpers importable
from nc_helpers import copy_data_and_tokenizer, run_module


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("nanochat_base")
    run_module(base, "nanochat.dataset", "build", "--num-shards", "3", "--chars-per-shard", "600000")
    run_module(base, "nanochat.tok_train", "--max_chars=2000000", "--vocab_size=1024")
    return base


@pytest.fixture
def fresh_base_dir(tiny_base_dir, tmp_path):
    return copy_data_and_tokenizer(tiny_base_dir, tmp_path / "nanochat_base")
