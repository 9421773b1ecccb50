"""
Distributed, resumable pretraining data loader.

Rank r of W reads row groups r, r+W, ... of every shard, BOS-prepends every document, packs the tokens
back to back into a FIFO buffer and cuts B*T+1 tokens per batch (inputs = buf[:-1], targets = buf[1:]).
The iteration is infinite (epochs wrap around to the first shard).

State: every batch comes with {"pq_idx", "rg_idx"} (classic meaning: shard and row group of the chunk
most recently added to the buffer), plus, for exact resumption, "doc_idx"/"tok_idx"/"pos_pq"/"pos_rg":
where the first token that is not yet consumed lives. Given a state with the position keys, the loader
resumes exactly (the next batch is the one that would have come); given a classic state (pq_idx/rg_idx
only, e.g. from a classic checkpoint) it resumes the classic approximate way: at the next round of row groups.
"""

from collections import deque

import pyarrow.parquet as pq
import torch

from nanochat.common import get_dist_info
from nanochat.dataset import list_parquet_files


def tokenizing_distributed_data_loader_with_state(
    B, T, split, tokenizer, tokenizer_threads=4, tokenizer_batch_size=128, device="cuda", resume_state_dict=None
):
    assert split in ("train", "val"), "split must be 'train' or 'val'"
    ddp, ddp_rank, _, ddp_world_size = get_dist_info()
    parquet_paths = list_parquet_files()
    assert len(parquet_paths) >= 2, (
        "No dataset parquet files found (need >= 2: train + val), did you run: python -m nanochat.dataset build?"
    )
    parquet_paths = parquet_paths[:-1] if split == "train" else parquet_paths[-1:]
    needed = B * T + 1
    bos_token = tokenizer.get_bos_token_id()
    exact = resume_state_dict is not None and "pos_pq" in resume_state_dict

    def document_chunks():
        """Yields (texts, pq_idx, rg_idx, first_doc_idx) chunks of up to tokenizer_batch_size documents."""
        if exact:
            pq_idx, start_rg, skip_docs = (
                resume_state_dict["pos_pq"],
                resume_state_dict["pos_rg"],
                resume_state_dict["doc_idx"],
            )
        elif resume_state_dict is not None:
            # classic: skip the rest of round R, none repeated
            pq_idx = resume_state_dict["pq_idx"]
            start_rg = (resume_state_dict["rg_idx"] // ddp_world_size + 1) * ddp_world_size + ddp_rank
            skip_docs = 0
        else:
            pq_idx, start_rg, skip_docs = 0, ddp_rank, 0
        produced_any = False
        while True:
            while pq_idx < len(parquet_paths):
                pf = pq.ParquetFile(parquet_paths[pq_idx])
                rg_idx = start_rg if start_rg is not None else ddp_rank
                start_rg = None
                while rg_idx < pf.num_row_groups:
                    texts = pf.read_row_group(rg_idx).column("text").to_pylist()
                    for i in range(skip_docs, len(texts), tokenizer_batch_size):
                        produced_any = True
                        yield texts[i : i + tokenizer_batch_size], pq_idx, rg_idx, i
                    skip_docs = 0
                    rg_idx += ddp_world_size
                pq_idx += 1
            assert produced_any, (
                f"rank {ddp_rank} of {ddp_world_size} got no data from the {split} split: "
                f"each shard needs at least {ddp_world_size} row groups of {1024} rows. Build bigger shards."
            )
            pq_idx = 0

    # the buffer holds one entry per document: [tokens, pq_idx, rg_idx, doc_idx, offset of the first unconsumed token]
    docs = deque()
    buffered = 0  # number of unconsumed tokens in the buffer
    chunks = document_chunks()
    last_added = (0, 0)
    first_skip_tokens = resume_state_dict["tok_idx"] if exact else 0
    use_cuda = device == "cuda"
    while True:
        while buffered < needed:
            texts, pq_idx, rg_idx, doc0 = next(chunks)
            token_lists = tokenizer.encode(texts, prepend=bos_token, num_threads=tokenizer_threads)
            for j, toks in enumerate(token_lists):
                off = 0
                if first_skip_tokens:
                    off, first_skip_tokens = first_skip_tokens, 0
                docs.append([toks, pq_idx, rg_idx, doc0 + j, off])
                last_doc = (pq_idx, rg_idx, doc0 + j)
                buffered += len(toks) - off
            last_added = (pq_idx, rg_idx)
        # take needed tokens off the front of the buffer
        out, remaining = [], needed
        while remaining > 0:
            entry = docs[0]
            toks, off = entry[0], entry[4]
            take = min(remaining, len(toks) - off)
            out.extend(toks[off : off + take])
            entry[4] += take
            remaining -= take
            if entry[4] == len(toks):
                docs.popleft()
        buffered -= needed
        # position of the first unconsumed token (the next document in order if the buffer is empty)
        if docs:
            head = docs[0]
            pos = dict(pos_pq=head[1], pos_rg=head[2], doc_idx=head[3], tok_idx=head[4])
        else:
            # the buffer ran exactly dry: the next token is the start of the document after the last one added
            pos = dict(pos_pq=last_doc[0], pos_rg=last_doc[1], doc_idx=last_doc[2] + 1, tok_idx=0)
        state = {"pq_idx": last_added[0], "rg_idx": last_added[1], **pos}
        scratch = torch.tensor(out, dtype=torch.long, pin_memory=use_cuda)
        inputs_cpu, targets_cpu = scratch[:-1], scratch[1:]
        inputs = inputs_cpu.view(B, T).to(device=device, non_blocking=use_cuda)
        targets = targets_cpu.view(B, T).to(device=device, non_blocking=use_cuda)
        yield inputs, targets, state


def tokenizing_distributed_data_loader(*args, **kwargs):
    for inputs, targets, _ in tokenizing_distributed_data_loader_with_state(*args, **kwargs):
        yield inputs, targets
