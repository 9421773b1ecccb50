"""
Evaluate a chat model on the synthetic tasks (generative: sample a completion, check the answer).

    python -m nanochat.chat_eval -i sft
    torchrun --standalone --nproc_per_node=8 -m nanochat.chat_eval -- -i mid -a "Arithmetic|Spelling"

Prints "Final: passed/total (pct%)" and "<Task> accuracy: pct%" per task, and logs the report section
"Chat evaluation <source>" whose accuracies fill the summary table.
"""

import argparse
from contextlib import nullcontext

import torch
import torch.distributed as dist

from nanochat.common import (
    autodetect_device_type,
    compute_cleanup,
    compute_init,
    get_dist_info,
    print0,
    print_fingerprint,
)
from nanochat.engine import Engine
from nanochat.tasks import TASKS


def run_generative_eval(
    task_object, tokenizer, model, num_samples=1, max_new_tokens=64, temperature=0.0, top_k=50, max_problems=None
):
    ddp, ddp_rank, _, ddp_world_size = get_dist_info()
    device = model.get_device()
    engine = Engine(model, tokenizer)
    num_problems = len(task_object) if max_problems is None else min(len(task_object), max_problems)
    num_passed, total = 0, 0
    for i in range(ddp_rank, num_problems, ddp_world_size):
        conversation = task_object[i]
        encoded_prompt = tokenizer.render_for_completion(conversation)
        results, _ = engine.generate_batch(
            encoded_prompt, num_samples=num_samples, max_tokens=max_new_tokens, temperature=temperature, top_k=top_k
        )
        prefix_length = len(encoded_prompt)
        completions = [tokenizer.decode(result_tokens[prefix_length:]) for result_tokens in results]
        outcomes = [task_object.evaluate(conversation, completion) for completion in completions]
        num_passed += int(any(outcomes))
        total += 1
    if ddp and dist.is_initialized():
        t = torch.tensor([num_passed, total], dtype=torch.long, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        num_passed, total = t.tolist()
    print0(f"Final: {num_passed}/{total} ({100 * num_passed / max(total, 1):.2f}%)")
    return num_passed / max(total, 1)


def run_chat_eval(model, tokenizer, task_names=None, max_problems=None, **kwargs):
    """{task name: accuracy in [0, 1]} over the test split of each synthetic task."""
    task_names = task_names or list(TASKS)
    results = {}
    for name in task_names:
        assert name in TASKS, f"Unknown task {name}; choose from {list(TASKS)}"
        task = TASKS[name]("test", size=max(max_problems or 0, 64))
        results[name] = run_generative_eval(task, tokenizer, model, max_problems=max_problems, **kwargs)
    return results


if __name__ == "__main__":
    print_fingerprint()
    parser = argparse.ArgumentParser()
    parser.add_argument("-i", "--source", type=str, required=True, help="Source of the model: base|mid|sft|rl")
    parser.add_argument(
        "-a", "--task-name", type=str, default=None, help="Task name(s), separated by |. Default: all tasks"
    )
    parser.add_argument("-d", "--dtype", type=str, default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("-t", "--temperature", type=float, default=0.0)
    parser.add_argument("-m", "--max-new-tokens", type=int, default=64)
    parser.add_argument("-n", "--num-samples", type=int, default=1)
    parser.add_argument("-k", "--top-k", type=int, default=50)
    parser.add_argument(
        "-b", "--batch-size", type=int, default=8, help="accepted for compatibility (problems are run one at a time)"
    )
    parser.add_argument("-g", "--model-tag", type=str, default=None, help="Model tag to load")
    parser.add_argument("-s", "--step", type=int, default=None, help="Step to load")
    parser.add_argument("-x", "--max-problems", type=int, default=64, help="Max problems per task")
    parser.add_argument("--device-type", type=str, default="", choices=["cuda", "cpu", ""], help="empty = autodetect")
    args = parser.parse_args()

    device_type = autodetect_device_type() if args.device_type == "" else args.device_type
    ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
    ptdtype = torch.float32 if args.dtype == "float32" else torch.bfloat16
    autocast_ctx = torch.amp.autocast(device_type="cuda", dtype=ptdtype) if device_type == "cuda" else nullcontext()

    from nanochat.checkpoint import load_model

    model, tokenizer, meta = load_model(args.source, device, phase="eval", model_tag=args.model_tag, step=args.step)
    task_names = list(TASKS) if args.task_name is None else args.task_name.split("|")
    results = {}
    for task_name in task_names:
        with autocast_ctx:
            acc = run_chat_eval(
                model,
                tokenizer,
                [task_name],
                max_problems=args.max_problems,
                num_samples=args.num_samples,
                max_new_tokens=args.max_new_tokens,
                temperature=args.temperature,
                top_k=args.top_k,
            )[task_name]
        results[task_name] = acc
        print0(f"{task_name} accuracy: {100 * acc:.2f}%")

    from nanochat.report import get_report

    get_report().log(section="Chat evaluation " + args.source, data=[vars(args), results])
    compute_cleanup()
