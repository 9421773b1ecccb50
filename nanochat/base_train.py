"""
Train the base model (pretraining on the parquet shards).

    python -m nanochat.base_train --depth=4 --max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --num_iterations=40
    torchrun --standalone --nproc_per_node=8 -m nanochat.base_train -- --depth=20 --run=$WANDB_RUN

Options are module-level settings below, overridden with --key=value (nanochat.configurator).
SIGUSR1 / SIGTERM (what SLURM sends before the time limit): save a checkpoint at the next step boundary, exit 0.
Resume with --resume_from_step=N (same world size and device_batch_size).
"""

from nanochat.stopsignal import install_stop_handlers

install_stop_handlers()  # first: a signal that comes while torch is imported must not kill us

import os

os.environ.setdefault("PYTORCH_ALLOC_CONF", "expandable_segments:True")
import sys
import time
from contextlib import nullcontext

import torch

from nanochat.common import (
    CLASSIC_PEAK_FLOPS,
    all_reduce_gradients,
    autodetect_device_type,
    compute_cleanup,
    compute_init,
    get_base_dir,
    init_wandb,
    print0,
    print_banner,
    print_fingerprint,
    stop_requested,
)
from nanochat.configurator import configure

print_fingerprint()

# -----------------------------------------------------------------------------
# settings (each one can be overridden with --key=value)
run = "dummy"  # wandb run name ("dummy" is special: no wandb logging, nothing else changes)
device_type = ""  # cuda|cpu; empty = autodetect
# model
depth = 20  # the one dial: n_layer = depth, n_embd = 64 * depth, n_head = ceil(n_embd / 128)
max_seq_len = 2048
fp8 = 0  # 1: the block matmuls in float8 (Hopper or newer; opt-in: the loss differs slightly from bf16's)
# training horizon, in order of precedence
num_iterations = -1  # explicit number of steps (-1 = disabled)
target_flops = -1.0  # compute budget in FLOPs (-1 = disabled)
target_param_data_ratio = 20  # Chinchilla: tokens = 20 * params (-1 = disabled)
# optimization
device_batch_size = 32  # per-device micro-batch (rows of max_seq_len tokens)
total_batch_size = 524288  # tokens per optimizer step, all ranks and micro-steps
embedding_lr = 0.2  # AdamW, wte
unembedding_lr = 0.004  # AdamW, lm_head
weight_decay = 0.0
matrix_lr = 0.02  # Muon, block matrices
grad_clip = 1.0  # 0 disables
warmup_ratio = 0.0
warmdown_ratio = 0.2
final_lr_frac = 0.0
resume_from_step = -1  # resume from this step's checkpoint (-1 = disabled)
# evaluation
eval_every = 250
eval_tokens = 20 * 524288
core_metric_every = 2000  # accepted for compatibility; the bundled trainer has no CORE eval (it needs a download)
core_metric_max_per_task = 500
sample_every = 2000
save_every = -1  # periodic checkpoints every N steps (-1 = only at the end)
model_tag = ""  # checkpoint dir name (default d{depth})
user_config = configure(globals())  # --key=value overrides; prints "Overriding: key = value"
# -----------------------------------------------------------------------------

print_banner()
device_type = autodetect_device_type() if device_type == "" else device_type
ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
master_process = ddp_rank == 0
autocast_ctx = torch.amp.autocast(device_type="cuda", dtype=torch.bfloat16) if device_type == "cuda" else nullcontext()
if fp8:
    from nanochat.fp8 import fp8_supported

    if not fp8_supported(device_type):  # before any data is read: a wrong node fails in seconds
        print0("--fp8=1 needs a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper); stopping")
        compute_cleanup()
        sys.exit(2)
synchronize = torch.cuda.synchronize if device_type == "cuda" else lambda: None
get_max_memory = torch.cuda.max_memory_allocated if device_type == "cuda" else lambda: 0
wandb_run = init_wandb(run, master_process, "nanochat", user_config)

from nanochat.checkpoint import load_checkpoint, save_checkpoint
from nanochat.dataloader import tokenizing_distributed_data_loader, tokenizing_distributed_data_loader_with_state
from nanochat.engine import Engine
from nanochat.gpt import GPT, GPTConfig, mlp_kernels, use_auto_kernels
from nanochat.loss_eval import evaluate_bpb
from nanochat.tokenizer import get_token_bytes, get_tokenizer

tokenizer = get_tokenizer()
token_bytes = get_token_bytes(device=device)
vocab_size = tokenizer.get_vocab_size()
print0(f"Vocab size: {vocab_size:,}")

# model shape from depth
num_layers = depth
model_dim = depth * 64  # aspect ratio 64
num_heads = max(1, (model_dim + 127) // 128)  # head dim 128
num_kv_heads = num_heads  # GQA off (1:1)
print0(f"num_layers: {num_layers}")
print0(f"model_dim: {model_dim}")
print0(f"num_heads: {num_heads}")
print0(f"num_kv_heads: {num_kv_heads}")

# batch and gradient accumulation
tokens_per_fwdbwd = device_batch_size * max_seq_len
world_tokens_per_fwdbwd = tokens_per_fwdbwd * ddp_world_size
assert total_batch_size % world_tokens_per_fwdbwd == 0, (
    f"total_batch_size {total_batch_size} must be divisible by device_batch_size*max_seq_len*world_size = {world_tokens_per_fwdbwd}"
)
grad_accum_steps = total_batch_size // world_tokens_per_fwdbwd
print0(f"Tokens / micro-batch / rank: {device_batch_size} x {max_seq_len} = {tokens_per_fwdbwd:,}")
print0(f"Tokens / micro-batch: {world_tokens_per_fwdbwd:,}")
print0(f"Total batch size {total_batch_size:,} => gradient accumulation steps: {grad_accum_steps}")

# -----------------------------------------------------------------------------
# model: built on the meta device, materialized, initialized (or loaded on resume)

model_config_kwargs = dict(
    sequence_len=max_seq_len,
    vocab_size=vocab_size,
    n_layer=num_layers,
    n_head=num_heads,
    n_kv_head=num_kv_heads,
    n_embd=model_dim,
)
with torch.device("meta"):
    model = GPT(GPTConfig(**model_config_kwargs))
model.to_empty(device=device)
model.init_weights()

base_dir = get_base_dir()
output_dirname = model_tag if model_tag else f"d{depth}"
checkpoint_dir = os.path.join(base_dir, "base_checkpoints", output_dirname)
resuming = resume_from_step != -1
if resuming:
    print0(f"Resuming optimization from step {resume_from_step}")
    model_data, optimizer_data, meta_data = load_checkpoint(
        checkpoint_dir, resume_from_step, device, load_optimizer=True, rank=ddp_rank
    )
    model.load_state_dict(model_data, strict=True, assign=True)
    del model_data

if fp8:
    from nanochat.fp8 import convert_to_fp8

    print0(f"fp8: {convert_to_fp8(model)} block Linears compute in float8 (dynamic per-tensor scales)")
orig_model = model  # the uncompiled module: saving, sampling
if device_type == "cuda":
    use_auto_kernels()  # the MLP kernels measured in base training (NANOCHAT_MLP_KERNEL=auto), before compiling
    print0(mlp_kernels())
model = torch.compile(model, dynamic=False) if device_type == "cuda" else model
num_params = sum(p.numel() for p in model.parameters())
print0(f"Number of parameters: {num_params:,}")
num_flops_per_token = orig_model.estimate_flops()
print0(f"Estimated FLOPs per token: {num_flops_per_token:e}")

# training horizon
assert num_iterations > 0 or target_param_data_ratio > 0 or target_flops > 0, (
    "set one of num_iterations, target_flops, target_param_data_ratio"
)
if num_iterations > 0:
    print0(f"Using user-provided number of iterations: {num_iterations:,}")
elif target_flops > 0:
    num_iterations = round(target_flops / (num_flops_per_token * total_batch_size))
    print0(f"Calculated number of iterations from target FLOPs: {num_iterations:,}")
else:
    target_tokens = target_param_data_ratio * num_params
    num_iterations = target_tokens // total_batch_size
    print0(f"Calculated number of iterations from target data:param ratio: {num_iterations:,}")
assert num_iterations > 0, (
    f"num_iterations came out as {num_iterations}: the model is too small for this batch size; set --num_iterations"
)
total_tokens = total_batch_size * num_iterations
print0(f"Total number of training tokens: {total_tokens:,}")
print0(f"Tokens : Params ratio: {total_batch_size * num_iterations / num_params:.2f}")
print0(f"Total training FLOPs estimate: {num_flops_per_token * total_tokens:e}")

optimizers = orig_model.setup_optimizers(
    unembedding_lr=unembedding_lr, embedding_lr=embedding_lr, matrix_lr=matrix_lr, weight_decay=weight_decay
)
adamw_optimizer, muon_optimizer = optimizers
if resuming:
    for opt, dat in zip(optimizers, optimizer_data, strict=False):
        opt.load_state_dict(dat)
    del optimizer_data

# -----------------------------------------------------------------------------
# data

dataloader_resume_state = None
if resuming:
    per_rank = meta_data.get("dataloader_state_dicts")
    dataloader_resume_state = (
        per_rank[ddp_rank] if per_rank and len(per_rank) == ddp_world_size else meta_data["dataloader_state_dict"]
    )
train_loader = tokenizing_distributed_data_loader_with_state(
    device_batch_size,
    max_seq_len,
    split="train",
    tokenizer=tokenizer,
    device=device_type,
    resume_state_dict=dataloader_resume_state,
)


def build_val_loader():
    return tokenizing_distributed_data_loader(
        device_batch_size, max_seq_len, split="val", tokenizer=tokenizer, device=device_type
    )


x, y, xy_state = next(train_loader)  # prefetch the first batch
# the loader position after the last batch actually trained on: what a checkpoint must store for exact resumption
trained_state = dataloader_resume_state or {
    "pq_idx": 0,
    "rg_idx": 0,
    "pos_pq": 0,
    "pos_rg": ddp_rank,
    "doc_idx": 0,
    "tok_idx": 0,
}

# -----------------------------------------------------------------------------
# schedules


def get_lr_multiplier(it):
    warmup_iters = round(warmup_ratio * num_iterations)
    warmdown_iters = round(warmdown_ratio * num_iterations)
    if it < warmup_iters:
        return (it + 1) / warmup_iters
    elif it <= num_iterations - warmdown_iters:
        return 1.0
    else:
        progress = (num_iterations - it) / warmdown_iters
        return progress * 1.0 + (1 - progress) * final_lr_frac


def get_muon_momentum(it):
    frac = min(it / 300, 1)
    return (1 - frac) * 0.85 + frac * 0.95


# -----------------------------------------------------------------------------
# checkpointing


def checkpoint(step):
    import torch.distributed as dist

    rank_states = None
    if ddp:
        rank_states = [None] * ddp_world_size
        dist.all_gather_object(rank_states, trained_state)
    meta = {
        "step": step,
        "val_bpb": val_bpb,
        "model_config": model_config_kwargs,
        "user_config": user_config,
        "device_batch_size": device_batch_size,
        "max_seq_len": max_seq_len,
        "dataloader_state_dict": trained_state if not ddp else rank_states[0],
        "loop_state": {
            "min_val_bpb": min_val_bpb,
            "smooth_train_loss": smooth_train_loss,
            "total_training_time": total_training_time,
        },
    }
    if ddp:
        meta["dataloader_state_dicts"] = rank_states  # one per rank (an extension: exact resume under DDP)
    save_checkpoint(
        checkpoint_dir, step, orig_model.state_dict(), [opt.state_dict() for opt in optimizers], meta, rank=ddp_rank
    )


# -----------------------------------------------------------------------------
# training loop

if not resuming:
    step = 0
    val_bpb = None
    min_val_bpb = float("inf")
    smooth_train_loss = 0.0
    total_training_time = 0.0
else:
    step = meta_data["step"]
    loop_state = meta_data["loop_state"]
    val_bpb = meta_data["val_bpb"]
    min_val_bpb = loop_state["min_val_bpb"]
    smooth_train_loss = loop_state["smooth_train_loss"]
    total_training_time = loop_state["total_training_time"]

loss_history = []  # (step, debiased smooth loss) for the loss-curve plot
val_history = []
mfu = 0.0
while True:
    last_step = step == num_iterations
    flops_so_far = num_flops_per_token * total_batch_size * step

    # stop signal: save where we are and exit cleanly (checked on every rank, agreed through an all-reduce)
    sig = stop_requested(ddp, device)
    if sig is not None and not last_step:
        if step != resume_from_step:
            checkpoint(step)
        print0(f"Received {sig}: saved checkpoint at step {step} to {checkpoint_dir}, exiting")
        wandb_run.finish()
        compute_cleanup()
        sys.exit(0)

    # validation bpb
    if last_step or (eval_every > 0 and step % eval_every == 0):
        model.eval()
        val_loader = build_val_loader()
        eval_steps = max(1, eval_tokens // (device_batch_size * max_seq_len * ddp_world_size))
        with autocast_ctx:
            val_bpb = evaluate_bpb(model, val_loader, eval_steps, token_bytes)
        print0(f"Step {step:05d} | Validation bpb: {val_bpb:.4f}")
        min_val_bpb = min(min_val_bpb, val_bpb)
        val_history.append((step, val_bpb))
        wandb_run.log(
            {
                "step": step,
                "total_training_flops": flops_so_far,
                "total_training_time": total_training_time,
                "val/bpb": val_bpb,
            }
        )
        model.train()

    # samples from the model (rank 0 only)
    if master_process and (last_step or (sample_every > 0 and step > 0 and step % sample_every == 0)):
        orig_model.eval()
        prompts = [
            "The capital of France is",
            "The chemical symbol of gold is",
            "If yesterday was Friday, then tomorrow will be",
            "The opposite of hot is",
            "The planets of the solar system are:",
            "My favorite color is",
            "If 5*x + 3 = 13, then x is",
        ]
        engine = Engine(orig_model, tokenizer)
        for prompt in prompts:
            tokens = tokenizer(prompt, prepend="<|bos|>")
            with autocast_ctx:
                sample, _ = engine.generate_batch(tokens, num_samples=1, max_tokens=16, temperature=0)
            print0(tokenizer.decode(sample[0]))
        orig_model.train()

    # checkpoint: at the end, and every save_every steps (never at step 0 or at the step we resumed from)
    if last_step or (step > 0 and step != resume_from_step and save_every > 0 and step % save_every == 0):
        checkpoint(step)

    if last_step:
        break

    # ---- one optimizer step ----
    synchronize()
    t0 = time.time()
    for _micro_step in range(grad_accum_steps):
        with autocast_ctx:
            loss = model(x, y)
        train_loss = loss.detach()
        loss = loss / grad_accum_steps  # each .backward() sums gradients
        loss.backward()
        trained_state = xy_state
        x, y, xy_state = next(train_loader)  # prefetch while the GPU is busy
    all_reduce_gradients(orig_model, ddp_world_size)
    if grad_clip > 0.0:
        grad_norm_tensor = torch.nn.utils.clip_grad_norm_(orig_model.parameters(), grad_clip)  # no sync: read below
    lrm = get_lr_multiplier(step)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * lrm
    muon_momentum = get_muon_momentum(step)
    for group in muon_optimizer.param_groups:
        group["momentum"] = muon_momentum
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)
    # CPU-GPU sync points, after the optimizer's kernels are queued (reading the norm before them left the GPU idle
    # while the CPU launched the optimizer step)
    grad_norm = grad_norm_tensor.item() if grad_clip > 0.0 else 0.0
    train_loss_f = train_loss.item()
    synchronize()
    t1 = time.time()
    dt = t1 - t0
    # ---- logging ----
    ema_beta = 0.9
    smooth_train_loss = ema_beta * smooth_train_loss + (1 - ema_beta) * train_loss_f
    debiased_smooth_loss = smooth_train_loss / (1 - ema_beta ** (step + 1))
    pct_done = 100 * step / num_iterations
    tok_per_sec = int(total_batch_size / dt)
    flops_per_sec = num_flops_per_token * total_batch_size / dt
    mfu = 100 * flops_per_sec / (CLASSIC_PEAK_FLOPS * ddp_world_size)  # classic: H100 bf16 peak, whatever the GPU
    if step > 10:
        total_training_time += dt  # the first steps include compilation
    print_grad_norm = f" grad norm: {grad_norm:.4f} |" if grad_clip > 0.0 else ""
    print0(
        f"step {step:05d}/{num_iterations:05d} ({pct_done:.2f}%) | loss: {debiased_smooth_loss:.6f} |{print_grad_norm} lrm: {lrm:.2f} "
        f"| dt: {dt * 1000:.2f}ms | tok/sec: {tok_per_sec:,} | mfu: {mfu:.2f} | total time: {total_training_time / 60:.2f}m"
    )
    loss_history.append((step, debiased_smooth_loss))
    if step % 100 == 0:
        wandb_run.log(
            {
                "step": step,
                "total_training_flops": flops_so_far,
                "total_training_time": total_training_time,
                "train/loss": debiased_smooth_loss,
                "train/lrm": lrm,
                "train/dt": dt,
                "train/tok_per_sec": tok_per_sec,
                "train/mfu": mfu,
            }
        )
    step += 1

# -----------------------------------------------------------------------------
# wrap up

print0(f"Peak memory usage: {get_max_memory() / 1024 / 1024:.2f}MiB")
print0(f"Total training time: {total_training_time / 60:.2f}m")
print0(f"Minimum validation bpb: {min_val_bpb:.4f}")

from nanochat.report import get_report

get_report().log(
    section="Base model training",
    data=[
        user_config,
        {
            "Number of parameters": num_params,
            "Number of FLOPs per token": f"{num_flops_per_token:e}",
            "Calculated number of iterations": num_iterations,
            "Number of training tokens": total_tokens,
            "Tokens : Params ratio": total_batch_size * num_iterations / num_params,
            "DDP world size": ddp_world_size,
            "warmup_ratio": warmup_ratio,
            "warmdown_ratio": warmdown_ratio,
            "final_lr_frac": final_lr_frac,
        },
        {
            "Minimum validation bpb": min_val_bpb,
            "Final validation bpb": val_bpb,
            "MFU %": f"{mfu:.2f}%",
            "Total training flops": f"{num_flops_per_token * total_tokens:e}",
            "Total training time": f"{total_training_time / 60:.2f}m",
            "Peak memory usage": f"{get_max_memory() / 1024 / 1024:.2f}MiB",
        },
    ],
)

# loss curve (best effort: skipped silently without matplotlib)
if master_process and loss_history:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([s for s, _ in loss_history], [loss for _, loss in loss_history], label="train loss (EMA, nats)")
        if val_history:
            ax.plot([s for s, _ in val_history], [v for _, v in val_history], "o-", label="val bpb")
        ax.set_xlabel("step")
        ax.legend()
        ax.set_title(f"base_train {output_dirname}")
        fig.tight_layout()
        fig.savefig(os.path.join(base_dir, "report", "base-loss.png"), dpi=100)
        plt.close(fig)
    except Exception:
        pass

wandb_run.finish()
compute_cleanup()
