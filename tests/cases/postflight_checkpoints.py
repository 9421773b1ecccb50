"""Good/bad cases for the CK (checkpoint) checks, built with tests/factories.py."""

from __future__ import annotations

import os
import shutil

from preflight.testing import Scenario, bad, good
from tests import factories as F

CFG = F.model_config(2)


def _run(phases=("base", "mid", "sft"), **kw):
    def setup(root):
        F.write_run(root / "base", phases=phases, **kw)

    return setup


def _scenario(setup, **kw):
    return Scenario(stage="post", base_dir="base", setup=setup, env={}, **kw)


@good("checkpoint-dir-missing")
@good("checkpoint-incomplete")
@good("checkpoint-partial")
@good("optimizer-shards-missing")
@good("checkpoint-unloadable")
@good("checkpoint-shape-mismatch")
@good("checkpoint-meta-invalid")
@good("checkpoint-unsafe")
@good("checkpoint-nonfinite")
@good("stray-checkpoint-dir")
def _complete_classic_run():
    return _scenario(_run(), config={"deep": True})


@bad("checkpoint-dir-missing")
def _mid_and_sft_never_saved():
    return _scenario(_run(phases=("base",)))


@bad("checkpoint-incomplete")
def _model_without_meta():
    def setup(root):
        _run()(root)
        F.write_checkpoint(root / "base", "sft", 30, CFG, meta_file=False)

    return _scenario(setup)


@bad("checkpoint-partial")
def _base_stopped_at_a_periodic_save():
    def setup(root):
        _run()(root)
        F.write_log(root / "run.log", F.run_log(per_phase={"base": {"planned": 40}}))

    return _scenario(setup, logs=["run.log"])


@bad("optimizer-shards-missing")
def _rank1_shard_missing():
    def setup(root):
        _run(world_size=2)(root)
        os.unlink(root / "base/base_checkpoints/d2/optim_000020_rank1.pt")
        F.write_log(root / "run.log", F.run_log(world_size=2))

    return _scenario(setup, logs=["run.log"])


@bad("checkpoint-unloadable")
def _truncated_model():
    def setup(root):
        _run()(root)
        F.truncate(root / "base/chatsft_checkpoints/d2/model_000009.pt", 0.6)

    return _scenario(setup)


@bad("checkpoint-shape-mismatch")
def _model_from_another_depth():
    def setup(root):
        _run()(root)
        F.write_model(root / "base/mid_checkpoints/d2/model_000012.pt", F.model_config(4))

    return _scenario(setup)


@bad("checkpoint-meta-invalid")
def _meta_not_json():
    def setup(root):
        _run()(root)
        (root / "base/base_checkpoints/d2/meta_000020.json").write_text('{"step": 20, "val_bpb": 1.2, "model_con')

    return _scenario(setup)


@bad("checkpoint-unsafe")
def _pickle_that_runs_code():
    def setup(root):
        _run()(root)
        F.malicious_torch_zip(root / "base/chatsft_checkpoints/d2/model_000009.pt", root / "PWNED")

    return _scenario(setup)


@bad("checkpoint-nonfinite")
def _nan_weights():
    def setup(root):
        _run()(root)
        sd = F.state_dict(CFG)
        sd["lm_head.weight"][0, 0] = float("nan")
        F.write_model(root / "base/chatsft_checkpoints/d2/model_000009.pt", CFG, sd=sd)

    return _scenario(setup, config={"deep": True})


@bad("stray-checkpoint-dir")
def _sft_checkpoints_from_the_jan_31_bug():
    def setup(root):
        _run()(root)
        shutil.copytree(root / "base/chatsft_checkpoints", root / "base/sft_checkpoints")

    return _scenario(setup)
