"""
Talk to a chat model in the terminal (KV-cache generation).

    python -m nanochat.chat_cli                 # interactive, the SFT model
    python -m nanochat.chat_cli -p "hi"         # answer once and exit
    python -m nanochat.chat_cli -i mid -g d4 -s 100
"""

import argparse
from contextlib import nullcontext

import torch

from nanochat.checkpoint import load_model
from nanochat.common import autodetect_device_type, compute_init, print_fingerprint
from nanochat.engine import Engine

print_fingerprint()
parser = argparse.ArgumentParser(description="Chat with the model")
parser.add_argument("-i", "--source", type=str, default="sft", help="Source of the model: sft|mid|rl|base")
parser.add_argument("-g", "--model-tag", type=str, default=None, help="Model tag to load")
parser.add_argument("-s", "--step", type=int, default=None, help="Step to load")
parser.add_argument("-p", "--prompt", type=str, default="", help="Prompt the model once, print the answer and exit")
parser.add_argument("-t", "--temperature", type=float, default=0.6, help="Temperature for generation")
parser.add_argument("-k", "--top-k", type=int, default=50, help="Top-k sampling parameter")
parser.add_argument("-m", "--max-tokens", type=int, default=256, help="Max tokens per answer")
parser.add_argument("--device-type", type=str, default="", choices=["cuda", "cpu", ""], help="empty = autodetect")
parser.add_argument("-d", "--dtype", type=str, default="bfloat16", choices=["float32", "bfloat16"])
args = parser.parse_args()

device_type = autodetect_device_type() if args.device_type == "" else args.device_type
ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
ptdtype = torch.float32 if args.dtype == "float32" else torch.bfloat16
autocast_ctx = torch.amp.autocast(device_type="cuda", dtype=ptdtype) if device_type == "cuda" else nullcontext()
model, tokenizer, meta = load_model(args.source, device, phase="eval", model_tag=args.model_tag, step=args.step)

bos = tokenizer.get_bos_token_id()
user_start, user_end = tokenizer.encode_special("<|user_start|>"), tokenizer.encode_special("<|user_end|>")
assistant_start, assistant_end = (
    tokenizer.encode_special("<|assistant_start|>"),
    tokenizer.encode_special("<|assistant_end|>"),
)
engine = Engine(model, tokenizer)

print("\nNanoChat Interactive Mode")
print("-" * 50)
print("Type 'quit' or 'exit' to end the conversation")
print("Type 'clear' to start a new conversation")
print("-" * 50)

conversation_tokens = [bos]
while True:
    if args.prompt:
        user_input = args.prompt
    else:
        try:
            user_input = input("\nUser: ").strip()
        except (EOFError, KeyboardInterrupt):
            print("\nGoodbye!")
            break
    if user_input.lower() in ["quit", "exit"]:
        print("Goodbye!")
        break
    if user_input.lower() == "clear":
        conversation_tokens = [bos]
        print("Conversation cleared.")
        continue
    if not user_input:
        continue
    conversation_tokens += [user_start] + tokenizer.encode(user_input) + [user_end] + [assistant_start]
    response_tokens = []
    print("\nAssistant: ", end="", flush=True)
    with autocast_ctx:
        for token_column, _token_masks in engine.generate(
            conversation_tokens,
            num_samples=1,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
        ):
            token = token_column[0]
            response_tokens.append(token)
            print(tokenizer.decode([token]), end="", flush=True)
    print()
    # the terminal token is part of the history; add <|assistant_end|> if the answer was cut at max_tokens
    if response_tokens[-1] != assistant_end:
        response_tokens.append(assistant_end)
    conversation_tokens += response_tokens
    if args.prompt:
        break
