"""Good/bad cases for the tokenizer checks (TOK001-TOK002), with real torch files."""

from preflight.testing import Scenario, bad, good

ENV = {"HOME": "{tmp}/home"}
CFG = {"base-dir": "{tmp}/base"}
BASE = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"


def token_bytes(vocab: int):
    def write(path):
        import torch

        torch.save(torch.ones(vocab, dtype=torch.int32), path)

    return write


def meta(vocab: int) -> dict:
    return {
        "step": 21400,
        "val_bpb": 0.81,
        "model_config": {
            "sequence_len": 2048,
            "vocab_size": vocab,
            "n_layer": 20,
            "n_head": 10,
            "n_kv_head": 10,
            "n_embd": 1280,
        },
    }


@bad("tokenizer-missing")
def _():
    return Scenario(script=BASE, env=ENV, config=CFG)


@good("tokenizer-missing")
def _():
    return Scenario(
        script=BASE,
        env=ENV,
        config=CFG,
        files={"base/tokenizer/tokenizer.pkl": b"\x80\x04.", "base/tokenizer/token_bytes.pt": token_bytes(512)},
    )


@good("tokenizer-missing")
def _():  # the script trains it first
    return Scenario(
        script=BASE.replace("torchrun", "python -m scripts.tok_train --max_chars=2000000000\ntorchrun", 1),
        env=ENV,
        config=CFG,
    )


@bad("tokenizer-vocab-mismatch")
def _():
    return Scenario(
        script=BASE,
        env=ENV,
        config=CFG,
        files={
            "base/tokenizer/tokenizer.pkl": b"\x80\x04.",
            "base/tokenizer/token_bytes.pt": token_bytes(32768),
            "base/base_checkpoints/d20/meta_021400.json": meta(65536),
        },
    )


@good("tokenizer-vocab-mismatch")
def _():
    return Scenario(
        script=BASE,
        env=ENV,
        config=CFG,
        files={
            "base/tokenizer/tokenizer.pkl": b"\x80\x04.",
            "base/tokenizer/token_bytes.pt": token_bytes(65536),
            "base/base_checkpoints/d20/meta_021400.json": meta(65536),
        },
    )
