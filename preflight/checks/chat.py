"""CHAT: load the final chat model with the project's own model code and generate a few tokens."""

from __future__ import annotations

import math
import os
from typing import Iterator

from preflight.facts import Skip
from preflight.model import Finding
from preflight.registry import check


def _final_model(checkpoints):
    for phase in ("sft", "mid", "base"):
        pc = checkpoints.phases.get(phase)
        if pc is not None and pc.last is not None:
            return phase, pc, pc.last
    return None


def _n_params(cfg: dict) -> int:
    vp = 64 * math.ceil(int(cfg["vocab_size"]) / 64)
    c, layers, h, kv = int(cfg["n_embd"]), int(cfg["n_layer"]), int(cfg["n_head"]), int(cfg["n_kv_head"])
    return 2 * vp * c + layers * (10 * c * c + 2 * kv * (c // h) * c)


def smoke_generate(model_path: str, meta: dict, tokenizer_path: str, max_tokens: int = 4) -> list[int]:
    """Build the bundled GPT from meta, load the (mmap'd) state dict, generate greedily."""
    import torch

    from nanochat.gpt import GPT, GPTConfig
    from nanochat.tokenizer import RustBPETokenizer, load_tokenizer_pkl

    enc = load_tokenizer_pkl(tokenizer_path)
    tok = RustBPETokenizer(enc)
    cfg = dict(meta["model_config"])
    if tok.get_vocab_size() != cfg["vocab_size"]:
        raise ValueError(f"tokenizer vocab {tok.get_vocab_size()} != model vocab {cfg['vocab_size']} "
                         "(tokenizer retrained after this checkpoint?)")
    sd = torch.load(model_path, mmap=True, weights_only=True, map_location="cpu")
    sd = {k.removeprefix("_orig_mod."): (v.float() if v.dtype == torch.bfloat16 else v) for k, v in sd.items()}
    known = {k: cfg[k] for k in ("sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd")}
    with torch.device("meta"):
        model = GPT(GPTConfig(**known))
    model.to_empty(device="cpu")
    model.init_weights()
    model.load_state_dict(sd, strict=True, assign=True)
    model.eval()
    prompt = [tok.get_bos_token_id()] + tok.encode("Hello")
    out = list(model.generate(prompt, max_tokens=max_tokens, temperature=0.0))
    if any(not (0 <= t < cfg["vocab_size"]) for t in out):
        raise ValueError(f"generated token ids outside the vocab: {out}")
    return out


@check("CHAT001", "chat-smoke-failed", stage="post", severity="error", cost="load")
def chat_smoke_failed(checkpoints, ctx) -> Iterator[Finding]:
    """
    What it checks: the final chat model (sft, else mid, else base) loads with the project's own
    model code (``nanochat.gpt``) and tokenizer (``tokenizer.pkl`` through a restricted unpickler)
    and generates a few tokens. Runs by default below ``smoke-max-params`` (--smoke/--no-smoke).

    Why it matters: files can be individually valid yet unusable together: a tokenizer retrained
    after the checkpoint, a config the code rejects, weights that produce NaN logits.

    Example:
        tokenizer vocab 32768 != model vocab 65536 (tokenizer retrained after this checkpoint?)

    How to fix: pair the model with the tokenizer it was trained with; retrain the phase otherwise.
    """
    mode = ctx.config.get("smoke", "auto")
    if mode is False or mode == "false":
        raise Skip("chat smoke test disabled (--no-smoke)")
    from preflight.ckpt_raw import TORCH_EXTRA, torch_available

    if not torch_available():
        raise Skip(f"the chat smoke test needs torch ({TORCH_EXTRA})")
    found = _final_model(checkpoints)
    if found is None:
        raise Skip("no complete checkpoint to load (checkpoint checks report why)")
    phase, pc, sf = found
    fc = pc.check_file(sf.model)
    if fc.unsafe or fc.error:
        raise Skip(f"{sf.model} is not loadable (checkpoint checks report it)")
    meta, err = pc.meta(sf.meta)
    if err or not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
        raise Skip(f"{sf.meta} is invalid (checkpoint-meta-invalid reports it)")
    try:
        n = _n_params(meta["model_config"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise Skip("model_config cannot describe a GPT (checkpoint-meta-invalid reports it)") from None
    limit = int(ctx.config.get("smoke-max-params", 50_000_000))
    if mode == "auto" and n > limit:
        raise Skip(f"model has {n:,} parameters > smoke-max-params {limit:,} (use --smoke to force)")
    tok_path = os.path.join(checkpoints.base_dir, "tokenizer", "tokenizer.pkl")
    if not os.path.isfile(tok_path):
        yield Finding(f"no tokenizer at {tok_path}: the {phase} model cannot be used for chat", path=tok_path,
                      fix="python -m scripts.tok_train (or restore tokenizer/ from the run that trained the model)")
        return
    try:
        smoke_generate(sf.model, meta, tok_path)
    except Exception as exc:  # any failure to load or generate is the finding
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        yield Finding(f"{phase} model {sf.model} failed the chat smoke test: {type(exc).__name__}: {msg}", path=sf.model,
                      fix="pair the model with its own tokenizer/meta; if the weights are broken, rerun the phase")
