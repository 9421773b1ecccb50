"""
Train the BPE tokenizer (rustbpe) on the train shards and save it in the classic format.

    python -m nanochat.tok_train --max_chars=2000000000 --vocab_size=65536
    python -m nanochat.tok_train --max_chars=5000000 --vocab_size=1024   # tiny CPU run

Writes BASE/tokenizer/tokenizer.pkl (pickled tiktoken Encoding) and BASE/tokenizer/token_bytes.pt.
"""

import argparse
import logging
import os
import time

import torch

from nanochat.common import atomic_torch_save, get_base_dir, print_fingerprint
from nanochat.dataset import parquets_iter_batched
from nanochat.tokenizer import RustBPETokenizer, compute_token_bytes

print_fingerprint()
parser = argparse.ArgumentParser(description="Train a BPE tokenizer")
parser.add_argument("--max_chars", type=int, default=10_000_000_000, help="Maximum characters to train on")
parser.add_argument("--doc_cap", type=int, default=10_000, help="Maximum characters per document")
parser.add_argument("--vocab_size", type=int, default=65536, help="Vocabulary size, special tokens included")
parser.add_argument(
    "--synthetic",
    type=int,
    default=0,
    help="1: no training, a synthetic vocab of the requested size (throughput benchmarks only)",
)
args = parser.parse_args()
logging.getLogger("rustbpe").setLevel(logging.WARNING)  # rustbpe logs every merge percent at INFO
print(f"max_chars: {args.max_chars:,}")
print(f"doc_cap: {args.doc_cap:,}")
print(f"vocab_size: {args.vocab_size:,}")

# -----------------------------------------------------------------------------
# text iterator over the train split, capped per document and in total


def text_iterator():
    nchars = 0
    for batch in parquets_iter_batched(split="train"):
        for doc in batch:
            doc_text = doc[: args.doc_cap] if len(doc) > args.doc_cap else doc
            nchars += len(doc_text)
            yield doc_text
            if nchars > args.max_chars:
                return


t0 = time.time()
if args.synthetic:
    from nanochat.tokenizer import synthetic_tokenizer

    tokenizer = synthetic_tokenizer(args.vocab_size)
else:
    tokenizer = RustBPETokenizer.train_from_iterator(text_iterator(), args.vocab_size)
train_time = time.time() - t0
print(f"Training time: {train_time:.2f}s")

base_dir = get_base_dir()
tokenizer_dir = os.path.join(base_dir, "tokenizer")
tokenizer.save(tokenizer_dir)

# sanity check: round trip
test_text = (
    "Hello world! This is a test.\nNumbers: 123, 4567, 89\nContractions: I'm, you're, it's\n"
    "Special chars: @#$%^&*()\nUnicode: 你好世界 🌍"
)
assert tokenizer.decode(tokenizer.encode(test_text)) == test_text, "tokenizer round trip failed"

token_bytes = compute_token_bytes(tokenizer)
token_bytes_path = os.path.join(tokenizer_dir, "token_bytes.pt")
atomic_torch_save(token_bytes, token_bytes_path)
print(f"Saved token_bytes to {token_bytes_path}")

from nanochat.report import get_report

token_bytes_nonzero = token_bytes[token_bytes > 0].to(torch.float32)
get_report().log(
    section="Tokenizer training",
    data=[
        vars(args),
        {"train_time": train_time},
        {"num_special_tokens": len(tokenizer.get_special_tokens())},
        {
            "token_bytes_min": int(token_bytes_nonzero.min().item()),
            "token_bytes_max": int(token_bytes_nonzero.max().item()),
            "token_bytes_mean": token_bytes_nonzero.mean().item(),
            "token_bytes_std": token_bytes_nonzero.std().item(),
        },
    ],
)
