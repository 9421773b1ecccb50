"""
Supervised finetuning: train on whole conversations, one per row, loss only on the assistant's tokens.

    python -m nanochat.chat_sft --device_batch_size=4 --target_examples_per_step=8 --task_size=200
    torchrun --standalone --nproc_per_node=8 -m nanochat.chat_sft -- --run=$WANDB_RUN

Loads the mid model by default (--source=base|mid). Saves chatsft_checkpoints/<tag>/model_{num_iterations-1:06d}.pt.
--save_every / --resume_from_step as base_train; SIGUSR1 / SIGTERM save at the next step boundary and exit 0.
"""

from nanochat.stopsignal import install_stop_handlers

install_stop_handlers()  # first: a signal that comes while torch is imported must not kill us

import os

os.environ.setdefault("PYTORCH_ALLOC_CONF", "expandable_segments:True")
import sys
from contextlib import nullcontext

import torch
import torch.distributed as dist

from nanochat.common import (
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
source = "mid"  # base|mid: which checkpoint to finetune
device_type = ""  # cuda|cpu; empty = autodetect
model_tag = ""  # input and output dir name; empty = largest dN
step = -1  # input checkpoint step (-1 = last)
dtype = "bfloat16"
device_batch_size = 4  # max rows per micro-batch (each row is one padded conversation)
num_epochs = 1
num_iterations = -1  # -1: derived from num_epochs
target_examples_per_step = 32
unembedding_lr = 0.004
embedding_lr = 0.2
matrix_lr = 0.02
weight_decay = 0.0
init_lr_frac = 0.02
eval_every = 100
eval_steps = 100
eval_metrics_every = 200  # accuracy on the synthetic tasks (generative, a few examples)
eval_metrics_max_problems = 16
task_size = 5000  # examples per synthetic task (identity gets a quarter)
data = ""  # optional JSONL of your own conversations (a missing file is an error)
save_every = -1
resume_from_step = -1
user_config = configure(globals())
# -----------------------------------------------------------------------------

print_banner()
device_type = autodetect_device_type() if device_type == "" else device_type
ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
master_process = ddp_rank == 0
ptdtype = torch.float32 if dtype == "float32" else torch.bfloat16
autocast_ctx = torch.amp.autocast(device_type="cuda", dtype=ptdtype) if device_type == "cuda" else nullcontext()
wandb_run = init_wandb(run, master_process, "nanochat-sft", user_config)

from nanochat.chat_eval import run_chat_eval
from nanochat.checkpoint import load_checkpoint, load_model, save_checkpoint
from nanochat.tasks import make_mixture

model, tokenizer, meta = load_model(
    source, device, phase="train", model_tag=model_tag or None, step=None if step == -1 else step
)
orig_model = model  # not compiled: rows have variable lengths
depth = model.config.n_layer
output_dirname = model_tag if model_tag else f"d{depth}"
checkpoint_dir = os.path.join(get_base_dir(), "chatsft_checkpoints", output_dirname)
resuming = resume_from_step != -1
if resuming:
    print0(f"Resuming optimization from step {resume_from_step}")
    model_data, optimizer_data, resume_meta = load_checkpoint(
        checkpoint_dir, resume_from_step, device, load_optimizer=True, rank=0
    )
    model.load_state_dict(model_data, strict=True, assign=True)
    del model_data

# -----------------------------------------------------------------------------
# data: one conversation per row; inputs padded with <|assistant_end|>, targets -1 where not supervised

train_ds = make_mixture("train", task_size, data)
val_ds = make_mixture("test", max(16, task_size // 10))


def sft_data_generator(dataset, batch_size, skip=0):
    """Infinite; rank r takes examples r, r+W, ... Skips the first `skip` examples of this rank without rendering."""
    pad_token_id = tokenizer.encode_special("<|assistant_end|>")

    def collate_and_yield(batch):
        nrows = len(batch)
        ncols = max(len(ids) for ids, mask in batch) - 1
        inputs = torch.full((nrows, ncols), pad_token_id, dtype=torch.long)
        targets = torch.full((nrows, ncols), -1, dtype=torch.long)
        for i, (ids, mask) in enumerate(batch):
            n = len(ids)
            ids_tensor = torch.tensor(ids, dtype=torch.long)
            inputs[i, : n - 1] = ids_tensor[:-1]
            row_targets = ids_tensor[1:]
            mask_tensor = torch.tensor(mask[1:], dtype=torch.long)
            row_targets[mask_tensor == 0] = -1
            targets[i, : n - 1] = row_targets
        return inputs.to(device), targets.to(device)

    batch = []
    seen = 0
    while True:
        for i in range(ddp_rank, len(dataset), ddp_world_size):
            seen += 1
            if seen <= skip:
                continue
            ids, mask = tokenizer.render_conversation(dataset[i])
            batch.append((ids, mask))
            if len(batch) == batch_size:
                yield collate_and_yield(batch)
                batch = []


examples_per_step = device_batch_size * ddp_world_size
print0(f"Target examples per step: {target_examples_per_step}")
print0(f"Device batch size: {device_batch_size}")
print0(f"Examples per step is device_batch_size * ddp_world_size: {examples_per_step}")
assert target_examples_per_step % examples_per_step == 0, (
    "Target examples per step must be divisible by examples per step"
)
grad_accum_steps = target_examples_per_step // examples_per_step
print0(f"=> Setting grad accum steps: {grad_accum_steps}")
if num_iterations == -1:
    num_iterations = (len(train_ds) // target_examples_per_step) * num_epochs
assert num_iterations > 0, (
    f"num_iterations came out as {num_iterations}: too few training rows ({len(train_ds)}) "
    f"for target_examples_per_step={target_examples_per_step}"
)
start_step = resume_meta["step"] if resuming else 0
train_loader = sft_data_generator(train_ds, device_batch_size, skip=start_step * grad_accum_steps * device_batch_size)


def build_val_loader():
    return sft_data_generator(val_ds, device_batch_size)


optimizers = model.setup_optimizers(
    unembedding_lr=unembedding_lr, embedding_lr=embedding_lr, matrix_lr=matrix_lr, weight_decay=weight_decay
)
for opt in optimizers:
    for group in opt.param_groups:
        group["lr"] = group["lr"] * init_lr_frac
        group["initial_lr"] = group["lr"]
if resuming:
    for opt, dat in zip(optimizers, optimizer_data, strict=False):
        opt.load_state_dict(dat)
    del optimizer_data


def get_lr_multiplier(it):
    return 1.0 - it / num_iterations


def checkpoint(at_step, final):
    meta_out = {
        "step": at_step,
        "val_loss": val_loss,
        "mmlu_acc": None,  # classic keys; MMLU/ARC need downloads, the bundled trainer evaluates its synthetic tasks
        "arc_easy_acc": None,
        **{f"{k.lower()}_acc": v for k, v in metrics.items()},
        "model_config": model.config.__dict__,
    }
    if not final:
        meta_out["user_config"] = user_config
    # classic SFT writes no optimizer file; intermediate saves do (needed for --resume_from_step)
    optim_data = None if final or ddp_rank != 0 else [opt.state_dict() for opt in optimizers]
    save_checkpoint(
        checkpoint_dir, at_step, model.state_dict() if ddp_rank == 0 else None, optim_data, meta_out, rank=ddp_rank
    )
    if final:
        print0(f"✅ Saved model checkpoint to {checkpoint_dir}")


# -----------------------------------------------------------------------------
# training loop

val_loss = resume_meta.get("val_loss") if resuming else None
metrics = {}
train_loss_item = float("nan")
for step in range(start_step, num_iterations):
    last_step = step == num_iterations - 1

    sig = stop_requested(ddp, device)
    if sig is not None and not last_step:
        if step != resume_from_step:
            checkpoint(step, final=False)
        print0(f"Received {sig}: saved checkpoint at step {step} to {checkpoint_dir}, exiting")
        wandb_run.finish()
        compute_cleanup()
        sys.exit(0)

    if last_step or step % eval_every == 0:
        model.eval()
        val_iter = iter(build_val_loader())
        losses = []
        for _ in range(max(1, eval_steps // ddp_world_size)):
            val_inputs, val_targets = next(val_iter)
            with torch.no_grad(), autocast_ctx:
                losses.append(model(val_inputs, val_targets))
        val_loss = torch.stack(losses).mean()
        if ddp:
            dist.all_reduce(val_loss, op=dist.ReduceOp.SUM)
            val_loss = val_loss / ddp_world_size
        val_loss = val_loss.item()
        print0(f"Step {step:05d} | Validation loss: {val_loss:.6f}")
        wandb_run.log({"step": step, "val_loss": val_loss})
        model.train()

    if last_step or (step > 0 and step % eval_metrics_every == 0):
        model.eval()
        with autocast_ctx:
            metrics = run_chat_eval(model, tokenizer, max_problems=eval_metrics_max_problems, max_new_tokens=64)
        print0(f"Step {step:05d} | " + ", ".join(f"{k.lower()}_acc: {v:.6f}" for k, v in metrics.items()))
        wandb_run.log({"step": step, **metrics})
        model.train()

    if not last_step and step > 0 and step != resume_from_step and save_every > 0 and step % save_every == 0:
        checkpoint(step, final=False)

    if last_step:
        break

    num_tokens = torch.tensor(0, device=device)
    for _micro_step in range(grad_accum_steps):
        train_inputs, train_targets = next(train_loader)
        with autocast_ctx:
            loss = model(train_inputs, train_targets)
        train_loss = loss.detach()
        loss = loss / grad_accum_steps
        loss.backward()
        num_tokens += (train_targets >= 0).sum()
    all_reduce_gradients(model, ddp_world_size)
    if ddp:
        dist.all_reduce(num_tokens, op=dist.ReduceOp.SUM)
    lrm = get_lr_multiplier(step)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * lrm
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)
    train_loss_item = train_loss.item()
    num_tokens_item = num_tokens.item()
    print0(
        f"Step {step:05d}/{num_iterations:05d} | Training loss: {train_loss_item:.6f}| lrm: {lrm:.6f}| num_tokens: {num_tokens_item:,}"
    )
    wandb_run.log({"step": step, "lrm": lrm, "train_loss": train_loss_item, "num_tokens": num_tokens_item})

checkpoint(step, final=True)

from nanochat.report import get_report

get_report().log(
    section="Chat SFT",
    data=[
        user_config,
        {
            "Training rows": len(train_ds),
            "Number of iterations": num_iterations,
            "Training loss": train_loss_item,
            "Validation loss": val_loss,
        },
    ],
)
wandb_run.finish()
compute_cleanup()
