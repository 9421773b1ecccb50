"""
Midtraining: teach the base model the chat format, the special tokens and tool use on conversation data.
Conversations are rendered, packed back to back (the mask is ignored) and trained on like pretraining.

    python -m nanochat.mid_train --max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --task_size=500
    torchrun --standalone --nproc_per_node=8 -m nanochat.mid_train -- --run=$WANDB_RUN

Data: the synthetic tasks of nanochat.tasks (arithmetic, spelling, identity), plus --data=path.jsonl.
Runs one epoch of the mixture unless --num_iterations is set. --save_every / --resume_from_step as base_train;
SIGUSR1 / SIGTERM save a checkpoint at the next step boundary and exit 0.
"""

from nanochat.stopsignal import install_stop_handlers

install_stop_handlers()  # first: a signal that comes while torch is imported must not kill us

import os

os.environ.setdefault("PYTORCH_ALLOC_CONF", "expandable_segments:True")
import sys
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist

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
run = "dummy"  # wandb run name ("dummy": no wandb logging, nothing else changes)
device_type = ""  # cuda|cpu; empty = autodetect
model_tag = ""  # input (base_checkpoints/<tag>) and output (mid_checkpoints/<tag>) dir; empty = largest dN
step = -1  # base checkpoint step to load (-1 = last)
dtype = "bfloat16"
num_iterations = -1  # -1 = one epoch of the mixture
max_seq_len = 2048
device_batch_size = 32
total_batch_size = 524288
unembedding_lr = 0.004
embedding_lr = 0.2
matrix_lr = 0.02
init_lr_frac = 1.0
weight_decay = 0.0
eval_every = 150
eval_tokens = 20 * 524288
task_size = 20000  # examples per synthetic task (identity gets a quarter)
data = ""  # optional JSONL of your own conversations (a missing file is an error)
save_every = -1
resume_from_step = -1
dry_run = 0  # 1: train and log, but write no checkpoint and no report
user_config = configure(globals())
# -----------------------------------------------------------------------------

print_banner()
device_type = autodetect_device_type() if device_type == "" else device_type
ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
master_process = ddp_rank == 0
autocast_ctx = (
    torch.amp.autocast(device_type="cuda", dtype=torch.bfloat16)
    if (device_type == "cuda" and dtype == "bfloat16")
    else nullcontext()
)
synchronize = torch.cuda.synchronize if device_type == "cuda" else lambda: None
get_max_memory = torch.cuda.max_memory_allocated if device_type == "cuda" else lambda: 0
wandb_run = init_wandb(run, master_process, "nanochat-mid", user_config)

from nanochat.checkpoint import load_checkpoint, load_model, save_checkpoint
from nanochat.gpt import mlp_kernels, use_auto_kernels
from nanochat.loss_eval import evaluate_bpb
from nanochat.tasks import make_mixture
from nanochat.tokenizer import get_token_bytes

# the base model (or, on resume, our own checkpoint)
model, tokenizer, meta = load_model(
    "base", device, phase="train", model_tag=model_tag or None, step=None if step == -1 else step
)
pretrain_batch_size = meta.get("device_batch_size", None)
if pretrain_batch_size is not None and device_batch_size > pretrain_batch_size:
    print0(
        f"FOOTGUN WARNING: base model training used device_batch_size {pretrain_batch_size}, "
        f"did you pass in a good --device_batch_size to this script?"
    )
depth = model.config.n_layer
output_dirname = model_tag if model_tag else f"d{depth}"
checkpoint_dir = os.path.join(get_base_dir(), "mid_checkpoints", output_dirname)
resuming = resume_from_step != -1
if resuming:
    print0(f"Resuming optimization from step {resume_from_step}")
    model_data, optimizer_data, resume_meta = load_checkpoint(
        checkpoint_dir, resume_from_step, device, load_optimizer=True, rank=0
    )
    model.load_state_dict(model_data, strict=True, assign=True)
    del model_data
orig_model = model
if device_type == "cuda":
    use_auto_kernels()  # base training's MLP kernels: midtraining's micro-batches have the same fixed shapes
    print0(mlp_kernels())
model = torch.compile(model, dynamic=False) if device_type == "cuda" else model
num_flops_per_token = orig_model.estimate_flops()
tokens_per_fwdbwd = device_batch_size * max_seq_len
world_tokens_per_fwdbwd = tokens_per_fwdbwd * ddp_world_size
assert total_batch_size % world_tokens_per_fwdbwd == 0, (
    f"total_batch_size {total_batch_size} must be divisible by {world_tokens_per_fwdbwd}"
)
grad_accum_steps = total_batch_size // world_tokens_per_fwdbwd
print0(f"Tokens / micro-batch / rank: {device_batch_size} x {max_seq_len} = {tokens_per_fwdbwd:,}")
print0(f"Tokens / micro-batch: {world_tokens_per_fwdbwd:,}")
print0(f"Total batch size {total_batch_size:,} => gradient accumulation steps: {grad_accum_steps}")
token_bytes = get_token_bytes(device=device)

optimizers = orig_model.setup_optimizers(
    unembedding_lr=unembedding_lr, embedding_lr=embedding_lr, matrix_lr=matrix_lr, weight_decay=weight_decay
)
adamw_optimizer, muon_optimizer = optimizers
for opt in optimizers:
    for group in opt.param_groups:
        group["lr"] = group["lr"] * init_lr_frac
        group["initial_lr"] = group["lr"]
if resuming:
    for opt, dat in zip(optimizers, optimizer_data, strict=False):
        opt.load_state_dict(dat)  # replicated optimizer state: every rank loads rank 0's file
    del optimizer_data

# -----------------------------------------------------------------------------
# data: render conversations, pack B*T+1 tokens per batch, exact resumable position

train_dataset = make_mixture("train", task_size, data)
val_dataset = make_mixture("test", max(16, task_size // 10))
print0(f"Training mixture: {len(train_dataset):,} conversations | validation: {len(val_dataset):,}")


def mid_data_generator(dataset, start_cursor, start_offset, epoch_flag):
    """Yields (inputs, targets, state); state = position of the first unconsumed token {cursor, offset}.
    epoch_flag[0] is set when this rank's cursor wraps past the end of the dataset (one epoch)."""
    needed = device_batch_size * max_seq_len + 1
    buffer = []  # [ids, cursor, offset]
    buffered = 0
    cursor, skip = start_cursor, start_offset
    while True:
        while buffered < needed:
            ids, _ = tokenizer.render_conversation(dataset[cursor], max_tokens=max_seq_len + 1)
            buffer.append([ids, cursor, skip])
            buffered += len(ids) - skip
            skip = 0
            cursor += ddp_world_size
            if cursor >= len(dataset):
                cursor -= len(dataset)
                epoch_flag[0] = True
        out, remaining = [], needed
        while remaining > 0:
            entry = buffer[0]
            take = min(remaining, len(entry[0]) - entry[2])
            out.extend(entry[0][entry[2] : entry[2] + take])
            entry[2] += take
            remaining -= take
            if entry[2] == len(entry[0]):
                buffer.pop(0)
        buffered -= needed
        state = {"cursor": buffer[0][1], "offset": buffer[0][2]} if buffer else {"cursor": cursor, "offset": 0}
        scratch = torch.tensor(out, dtype=torch.long)
        inputs = (
            scratch[:-1].view(device_batch_size, max_seq_len).to(device=device, dtype=torch.int32, non_blocking=True)
        )
        targets = (
            scratch[1:].view(device_batch_size, max_seq_len).to(device=device, dtype=torch.int64, non_blocking=True)
        )
        yield inputs, targets, state


epoch_done = [False]
if resuming:
    rank_states = resume_meta["dataloader_state_dicts"]
    assert len(rank_states) == ddp_world_size, (
        f"resume needs the same world size ({len(rank_states)} != {ddp_world_size})"
    )
    start = rank_states[ddp_rank]
    epoch_done[0] = resume_meta["loop_state"]["epoch_done"]
else:
    start = {"cursor": ddp_rank, "offset": 0}
train_loader = mid_data_generator(train_dataset, start["cursor"], start["offset"], epoch_done)


def build_val_loader():
    for x, y, _ in mid_data_generator(val_dataset, ddp_rank, 0, [False]):
        yield x, y


x, y, xy_state = next(train_loader)
trained_state = start


def get_lr_multiplier(progress):
    return 1.0 if progress < 0.8 else 1 - (progress - 0.8) / 0.2


def get_muon_momentum(it):
    frac = min(it / 300, 1)
    return (1 - frac) * 0.85 + frac * 0.95


def checkpoint(at_step, final):
    rank_states = [trained_state]
    if ddp:
        rank_states = [None] * ddp_world_size
        dist.all_gather_object(rank_states, trained_state)
    meta_out = {
        "step": at_step,
        "val_bpb": val_bpb,
        "model_config": {**orig_model.config.__dict__, "sequence_len": max_seq_len},
        "user_config": user_config,
        # extensions for resume (classic mid meta has only the four keys above)
        "dataloader_state_dicts": rank_states,
        "loop_state": {
            "min_val_bpb": min_val_bpb,
            "smooth_train_loss": smooth_train_loss,
            "total_training_time": total_training_time,
            "progress": progress,
            "epoch_done": epoch_done[0],
        },
    }
    optim_data = [opt.state_dict() for opt in optimizers] if ddp_rank == 0 else None  # classic: rank 0 only
    save_checkpoint(
        checkpoint_dir, at_step, orig_model.state_dict() if ddp_rank == 0 else None, optim_data, meta_out, rank=ddp_rank
    )


# -----------------------------------------------------------------------------
# training loop (data-driven: one epoch of the mixture unless num_iterations is set)

if resuming:
    it = resume_meta["step"]
    ls = resume_meta["loop_state"]
    val_bpb, min_val_bpb, smooth_train_loss, total_training_time, progress = (
        resume_meta["val_bpb"],
        ls["min_val_bpb"],
        ls["smooth_train_loss"],
        ls["total_training_time"],
        ls["progress"],
    )
else:
    it, val_bpb, min_val_bpb, smooth_train_loss, total_training_time, progress = 0, None, float("inf"), 0.0, 0.0, 0.0
mfu = 0.0
while True:
    # all ranks agree on the end of the epoch
    last_step = epoch_done[0] if num_iterations <= 0 else it == num_iterations
    if ddp:
        t = torch.tensor([int(last_step)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        last_step = bool(t.item())

    sig = stop_requested(ddp, device)
    if sig is not None and not last_step:
        if it != resume_from_step and not dry_run:
            checkpoint(it, final=False)
        print0(f"Received {sig}: saved checkpoint at step {it} to {checkpoint_dir}, exiting")
        wandb_run.finish()
        compute_cleanup()
        sys.exit(0)

    if last_step or (eval_every > 0 and it % eval_every == 0):
        model.eval()
        eval_steps = max(1, eval_tokens // (device_batch_size * max_seq_len * ddp_world_size))
        with autocast_ctx:
            val_bpb = evaluate_bpb(model, build_val_loader(), eval_steps, token_bytes)
        print0(f"Step {it:05d} | Validation bpb: {val_bpb:.4f}")
        min_val_bpb = min(min_val_bpb, val_bpb)
        wandb_run.log({"step": it, "total_training_time": total_training_time, "val/bpb": val_bpb})
        model.train()

    if not dry_run and (last_step or (it > 0 and it != resume_from_step and save_every > 0 and it % save_every == 0)):
        checkpoint(it, final=last_step)

    if last_step:
        break

    synchronize()
    t0 = time.time()
    for _micro_step in range(grad_accum_steps):
        with autocast_ctx:
            loss = model(x, y)
        train_loss = loss.detach()
        loss = loss / grad_accum_steps
        loss.backward()
        trained_state = xy_state
        x, y, xy_state = next(train_loader)
        progress = max(
            progress, it / num_iterations if num_iterations > 0 else trained_state["cursor"] / len(train_dataset)
        )
    all_reduce_gradients(orig_model, ddp_world_size)
    lrm = get_lr_multiplier(progress)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * lrm
    for group in muon_optimizer.param_groups:
        group["momentum"] = get_muon_momentum(it)
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)
    train_loss_f = train_loss.item()
    synchronize()
    dt = time.time() - t0

    ema_beta = 0.9
    smooth_train_loss = ema_beta * smooth_train_loss + (1 - ema_beta) * train_loss_f
    debiased_smooth_loss = smooth_train_loss / (1 - ema_beta ** (it + 1))
    pct_done = 100 * progress
    tok_per_sec = int(total_batch_size / dt)
    mfu = 100 * num_flops_per_token * total_batch_size / dt / (CLASSIC_PEAK_FLOPS * ddp_world_size)
    if it > 10:
        total_training_time += dt
    print0(
        f"step {it:05d} ({pct_done:.2f}%) | loss: {debiased_smooth_loss:.6f} | lrm: {lrm:.2f} "
        f"| dt: {dt * 1000:.2f}ms | tok/sec: {tok_per_sec:,} | mfu: {mfu:.2f} | total time: {total_training_time / 60:.2f}m"
    )
    if it % 10 == 0:
        wandb_run.log(
            {
                "step": it,
                "train/loss": debiased_smooth_loss,
                "train/lrm": lrm,
                "train/dt": dt,
                "train/tok_per_sec": tok_per_sec,
                "train/mfu": mfu,
            }
        )
    it += 1

print0(f"Peak memory usage: {get_max_memory() / 1024 / 1024:.2f}MiB")
print0(f"Total training time: {total_training_time / 60:.2f}m")
print0(f"Minimum validation bpb: {min_val_bpb:.4f}")

if not dry_run:
    from nanochat.report import get_report

    get_report().log(
        section="Midtraining",
        data=[
            user_config,
            {"Number of iterations": it, "DDP world size": ddp_world_size},
            {"Minimum validation bpb": min_val_bpb},
        ],
    )
wandb_run.finish()
compute_cleanup()
