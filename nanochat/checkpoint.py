"""
Checkpoints in the classic layout: BASE/<phase>_checkpoints/<model_tag>/
  model_{step:06d}.pt          state_dict of the uncompiled model (rank 0)
  optim_{step:06d}_rank{r}.pt  [adamw.state_dict(), muon.state_dict()] (per rank)
  meta_{step:06d}.json         written LAST: its presence means the step's files are complete
Every file is written to a temp name, fsynced and renamed, so a process killed at any moment never leaves
a half-written file under a real name, and the newest *complete* step is what loaders pick.
"""

import glob
import json
import logging
import os
import re

import torch

from nanochat.common import atomic_torch_save, atomic_write_text, get_base_dir
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import get_tokenizer

logger = logging.getLogger("nanochat.checkpoint_manager")  # the classic logger name (validators key on it)


def log0(message):
    if int(os.environ.get("RANK", 0)) == 0:
        logger.info(message)


def _remove_stale_temp_files(checkpoint_dir):
    """Temp files (name.tmp.PID) left by a process that was killed mid-write: delete those whose writer is gone."""
    for path in glob.glob(os.path.join(checkpoint_dir, "*.tmp.*")):
        pid = path.rsplit(".", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # still alive (e.g. another rank): leave it
        except ProcessLookupError:
            try:
                os.remove(path)
            except OSError:
                pass
        except PermissionError:
            pass


def save_checkpoint(checkpoint_dir, step, model_data, optimizer_data, meta_data, rank=0):
    """Model + meta from rank 0; optimizer shard from every rank that passes one. Meta last (the commit point).
    Under DDP all ranks must call this (a barrier keeps meta after every rank's optimizer file)."""
    import torch.distributed as dist

    os.makedirs(checkpoint_dir, exist_ok=True)
    if rank == 0:
        _remove_stale_temp_files(checkpoint_dir)
    if rank == 0:
        model_path = os.path.join(checkpoint_dir, f"model_{step:06d}.pt")
        atomic_torch_save(model_data, model_path)
        logger.info(f"Saved model parameters to: {model_path}")
    if optimizer_data is not None:
        optimizer_path = os.path.join(checkpoint_dir, f"optim_{step:06d}_rank{rank:d}.pt")
        atomic_torch_save(optimizer_data, optimizer_path)
        logger.info(f"Saved optimizer state to: {optimizer_path}")
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    if rank == 0:
        meta_path = os.path.join(checkpoint_dir, f"meta_{step:06d}.json")
        atomic_write_text(meta_path, json.dumps(meta_data, indent=2))
        logger.info(f"Saved metadata to: {meta_path}")


def load_checkpoint(checkpoint_dir, step, device, load_optimizer=False, rank=0):
    model_path = os.path.join(checkpoint_dir, f"model_{step:06d}.pt")
    model_data = torch.load(model_path, map_location=device, weights_only=True, mmap=True)
    optimizer_data = None
    if load_optimizer:
        optimizer_path = os.path.join(checkpoint_dir, f"optim_{step:06d}_rank{rank:d}.pt")
        assert os.path.exists(optimizer_path), (
            f"Optimizer state not found: {optimizer_path} (resume needs one optim file per rank, same world size)"
        )
        optimizer_data = torch.load(optimizer_path, map_location=device, weights_only=True)
    meta_path = os.path.join(checkpoint_dir, f"meta_{step:06d}.json")
    with open(meta_path, encoding="utf-8") as f:
        meta_data = json.load(f)
    return model_data, optimizer_data, meta_data


def build_model(checkpoint_dir, step, device, phase):
    """Classic build_model: load, bf16->fp32 off CUDA, strip _orig_mod., build on meta, init (rotary), assign."""
    assert phase in ["train", "eval"], f"Invalid phase: {phase}"
    model_data, _, meta_data = load_checkpoint(checkpoint_dir, step, device, load_optimizer=False)
    if device.type in {"cpu", "mps"}:
        model_data = {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in model_data.items()}
    model_data = {k.removeprefix("_orig_mod."): v for k, v in model_data.items()}
    model_config_kwargs = meta_data["model_config"]
    log0(f"Building model with config: {model_config_kwargs}")
    model_config = GPTConfig(**model_config_kwargs)
    with torch.device("meta"):
        model = GPT(model_config)
    model.to_empty(device=device)
    model.init_weights()  # needed for the rotary tables on the real device; weights are overwritten next
    model.load_state_dict(model_data, strict=True, assign=True)
    if phase == "eval":
        model.eval()
    else:
        model.train()
    tokenizer = get_tokenizer()
    assert tokenizer.get_vocab_size() == model_config_kwargs["vocab_size"], (
        f"Tokenizer vocab size {tokenizer.get_vocab_size()} != model vocab size {model_config_kwargs['vocab_size']}: "
        f"was the tokenizer retrained after this checkpoint?"
    )
    return model, tokenizer, meta_data


def find_largest_model(checkpoints_dir):
    model_tags = [f for f in os.listdir(checkpoints_dir) if os.path.isdir(os.path.join(checkpoints_dir, f))]
    if not model_tags:
        raise FileNotFoundError(f"No checkpoints found in {checkpoints_dir}")
    candidates = []
    for model_tag in model_tags:
        match = re.match(r"d(\d+)", model_tag)
        if match:
            candidates.append((int(match.group(1)), model_tag))
    if candidates:
        candidates.sort(key=lambda x: x[0], reverse=True)
        return candidates[0][1]
    model_tags.sort(key=lambda x: os.path.getmtime(os.path.join(checkpoints_dir, x)), reverse=True)
    return model_tags[0]


def find_last_step(checkpoint_dir):
    """Largest step with both model_N.pt and meta_N.json (meta is written last, so this step is complete)."""
    steps = []
    for f in glob.glob(os.path.join(checkpoint_dir, "model_*.pt")):
        m = re.search(r"model_(\d+)\.pt$", os.path.basename(f))
        if m and os.path.exists(os.path.join(checkpoint_dir, f"meta_{int(m.group(1)):06d}.json")):
            steps.append(int(m.group(1)))
    if not steps:
        raise FileNotFoundError(f"No checkpoints found in {checkpoint_dir}")
    return max(steps)


PHASE_DIRS = {
    "base": "base_checkpoints",
    "mid": "mid_checkpoints",
    "sft": "chatsft_checkpoints",
    "rl": "chatrl_checkpoints",
}


def load_model_from_dir(checkpoints_dir, device, phase, model_tag=None, step=None):
    if model_tag is None:
        model_tag = find_largest_model(checkpoints_dir)
        log0(f"No model tag provided, guessing model tag: {model_tag}")
    checkpoint_dir = os.path.join(checkpoints_dir, model_tag)
    if step is None:
        step = find_last_step(checkpoint_dir)
    assert step is not None, f"No checkpoints found in {checkpoint_dir}"
    log0(f"Loading model from {checkpoint_dir} with step {step}")
    return build_model(checkpoint_dir, step, device, phase)


def load_model(source, *args, **kwargs):
    model_dir = PHASE_DIRS[source]
    checkpoints_dir = os.path.join(get_base_dir(), model_dir)
    return load_model_from_dir(checkpoints_dir, *args, **kwargs)
