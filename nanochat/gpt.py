"""
GPT model, state-dict compatible and forward-equivalent with classic nanochat:
- rotary embeddings (bf16 tables, half-split pairs, base 10000), no positional embedding table
- QK norm (after rotary), parameter-free RMSNorm (also right after the token embedding)
- untied token embedding and lm_head, vocab padded to a multiple of 64
- ReLU^2 MLP, no biases anywhere
- logits soft-capped at 15 (tanh, in fp32)
- group-query attention (n_kv_head <= n_head) through SDPA's enable_gqa
"""

import os
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from nanochat.common import get_dist_info, print0, triton_module
from nanochat.fused_loss import softcap_cross_entropy
from nanochat.muon import Muon
from nanochat.relu_sq_mlp import relu_sq_mlp
from nanochat.splitk_linear import splitk_linear


@dataclass
class GPTConfig:
    sequence_len: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 6  # number of query heads
    n_kv_head: int = 6  # number of key/value heads (GQA)
    n_embd: int = 768


# The default, "fused" (nanochat/LOG.md has its measurements): on NVIDIA GPUs q/k/v come from one GEMM (the three
# weights concatenated per call) and rotary + QK norm run as Triton kernels (nanochat/rope_norm_kernel.py).
# NANOCHAT_ROPE_KERNEL=compiled (or any other value), CPUs and GPUs the kernels do not support run the torch code
# below, compiled by inductor: the same math.
ROPE_KERNEL = os.environ.get("NANOCHAT_ROPE_KERNEL", "fused")


def _import_rope_kernels():
    # imported here, not in forward: an import inside a compiled forward is a graph break in every layer
    try:
        return triton_module("rope_norm_kernel")
    except Exception as e:  # a Triton the kernels do not build with must not stop the default torch code
        warnings.warn(f"nanochat.rope_norm_kernel not loaded, rotary + QK norm run as torch code: {e!r}", stacklevel=2)
        return None


_ROPE_KERNELS = _import_rope_kernels()


@torch.compiler.assume_constant_result  # decided once per compiled graph, at trace time, not traced into
def _rope_kernel_runs_on(device, head_dim):
    return _ROPE_KERNELS is not None and _ROPE_KERNELS.supported(torch.device(device), head_dim)


def _rope_kernel(x, head_dim):
    """The kernel module where it runs for x, else None (CPU, no Triton, ROCm, old GPUs, NANOCHAT_ROPE_KERNEL)."""
    if ROPE_KERNEL != "fused" or not _rope_kernel_runs_on(str(x.device), head_dim):
        return None
    return _ROPE_KERNELS


def norm(x):
    # parameter-free RMSNorm; eps=None is float32 machine epsilon for fp32/bf16 inputs
    return F.rms_norm(x, (x.size(-1),))


def rotary_tables(seq_len, head_dim, base=10000, device=None):
    """cos, sin of each position's angles, (1, seq_len, 1, head_dim/2) in bf16: classic's values, part of the math."""
    channel_range = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device)
    inv_freq = 1.0 / (base ** (channel_range / head_dim))
    t = torch.arange(seq_len, dtype=torch.float32, device=device)
    freqs = torch.outer(t, inv_freq)
    cos, sin = freqs.cos().bfloat16(), freqs.sin().bfloat16()
    return cos[None, :, None, :], sin[None, :, None, :]


def apply_rotary_emb(x, cos, sin):
    # x: (B, T, H, D). Pairs channel j with j + D/2 and rotates each pair by -theta (classic convention)
    assert x.ndim == 4  # multihead attention
    d = x.shape[3] // 2
    x1, x2 = x[..., :d], x[..., d:]
    y1 = x1 * cos + x2 * sin
    y2 = x1 * (-sin) + x2 * cos
    out = torch.cat([y1, y2], 3)
    return out.to(x.dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.n_kv_head = config.n_kv_head
        self.n_embd = config.n_embd
        self.head_dim = self.n_embd // self.n_head
        assert self.n_embd % self.n_head == 0, f"n_embd {self.n_embd} must be divisible by n_head {self.n_head}"
        assert self.n_kv_head <= self.n_head and self.n_head % self.n_kv_head == 0, (
            f"n_kv_head {self.n_kv_head} must divide n_head {self.n_head}"
        )
        self.c_q = nn.Linear(self.n_embd, self.n_head * self.head_dim, bias=False)
        self.c_k = nn.Linear(self.n_embd, self.n_kv_head * self.head_dim, bias=False)
        self.c_v = nn.Linear(self.n_embd, self.n_kv_head * self.head_dim, bias=False)
        self.c_proj = nn.Linear(self.n_embd, self.n_embd, bias=False)

    def _qkv_kernel(self, kernel, x, cos, sin):
        # the same math as forward's torch code, through nanochat/rope_norm_kernel.py
        B, T, _ = x.size()
        hq, hkv, tables = self.n_head, self.n_kv_head, (cos.view(T, -1), sin.view(T, -1))
        if type(self.c_q) is not nn.Linear:  # fp8.py's Linears compute their own products: q and k one call each
            q = kernel.rope_norm(self.c_q(x).view(B * T, -1), *tables, T, hq, 0, 0)[0]
            k = kernel.rope_norm(self.c_k(x).view(B * T, -1), *tables, T, 0, hkv, 0)[1]
            v = self.c_v(x)
        else:  # one GEMM for q, k and v
            qkv = F.linear(x, torch.cat([self.c_q.weight, self.c_k.weight, self.c_v.weight])).view(B * T, -1)
            q, k, v, _ = kernel.rope_norm(qkv, *tables, T, hq, hkv, hkv)
        return q.view(B, T, hq, self.head_dim), k.view(B, T, hkv, self.head_dim), v.view(B, T, hkv, self.head_dim)

    def forward(self, x, cos_sin, kv_cache):
        B, T, C = x.size()
        cos, sin = cos_sin
        kernel = _rope_kernel(x, self.head_dim)
        if kernel:
            q, k, v = self._qkv_kernel(kernel, x, cos, sin)
        else:
            q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
            k = self.c_k(x).view(B, T, self.n_kv_head, self.head_dim)
            v = self.c_v(x).view(B, T, self.n_kv_head, self.head_dim)
            q, k = apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)
            q, k = norm(q), norm(k)  # QK norm
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
        if kv_cache is not None:
            k, v = kv_cache.insert_kv(self.layer_idx, k, v)
        Tq, Tk = q.size(2), k.size(2)
        enable_gqa = self.n_head != self.n_kv_head
        if kv_cache is None or Tq == Tk:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=enable_gqa)
        elif Tq == 1:
            # one query token attends to every cached position
            y = F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=enable_gqa)
        else:
            # a chunk: all of the prefix, then causal within the chunk
            attn_mask = torch.zeros((Tq, Tk), dtype=torch.bool, device=q.device)
            prefix_len = Tk - Tq
            attn_mask[:, :prefix_len] = True
            attn_mask[:, prefix_len:] = torch.tril(torch.ones((Tq, Tq), dtype=torch.bool, device=q.device))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=enable_gqa)
        y = y.transpose(1, 2).contiguous().view(B, T, -1)
        return self.c_proj(y)


# The MLP's kernels (nanochat/relu_sq_mlp.py, nanochat/splitk_linear.py; LOG.md has each measurement). Same math.
# NANOCHAT_MLP_KERNEL:
#   quack-epilogue: ReLU^2 in the epilogue of c_fc's product and its derivative in the epilogue of c_proj's input
#     gradient (quack's CuTe-DSL GEMMs: Hopper, the quack-kernels package, `pip install .[hopper]`), cuBLAS for the
#     other products; only the pre-activation is kept for the backward. d20 on H100s, same call as classic nanochat:
#     1.087-1.102x its tokens/s over five calls with split 2 (torch code, split 4: 1.065x), 48.8 against 73.8 GB peak.
#   quack: quack's whole MLP (`quack.mlp.mlp_func`; its weight-gradient GEMMs are slower than cuBLAS's).
#   torch: torch code (inductor's ReLU^2 kernels).
#   auto (the default): quack-epilogue in base_train and mid_train (the same fixed micro-batch shapes) where quack
#     runs (a Hopper GPU with quack installed; they call use_auto_kernels), else torch. SFT keeps the torch code: its
#     eager micro-batches change shape, and there quack's kernels were slower than torch's split 4
#     (`python bench/gpu_mlp.py --sft 20`, one H100: 8.10 against 7.63 ms over six shapes).
# quack's heuristic GEMM configs: its autotuning (tuned=True) did not finish a first step in 8 minutes in the trainer.
MLP_KERNEL = os.environ.get("NANOCHAT_MLP_KERNEL", "auto")


def _import_quack_mlp():
    """quack's MLP function where a quack kernel is asked for (or auto) and quack runs here, else None."""
    if MLP_KERNEL not in ("quack", "quack-epilogue", "auto"):
        return None
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9:
        return None
    try:
        from quack.gemm_interface import gemm_act, gemm_dact  # noqa: F401 - the epilogue kernel's two products
        from quack.mlp import mlp_func
    except ImportError as e:
        if MLP_KERNEL != "auto":
            warnings.warn(
                f"NANOCHAT_MLP_KERNEL={MLP_KERNEL} but quack is not importable, the MLP runs as torch code: {e!r}",
                stacklevel=2,
            )
        return None
    return mlp_func


_QUACK_MLP = _import_quack_mlp()
_QUACK_EPILOGUE = _QUACK_MLP is not None and MLP_KERNEL == "quack-epilogue"


def _wgrad_split() -> int:
    value = os.environ.get("NANOCHAT_WGRAD_SPLIT", "auto")
    if value == "auto":
        hopper = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9
        return 2 if _QUACK_EPILOGUE else 4 if hopper else 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    warnings.warn(
        f"NANOCHAT_WGRAD_SPLIT={value!r} is not a positive integer or auto: the MLP runs unsplit", stacklevel=2
    )
    return 1


# NANOCHAT_WGRAD_SPLIT=N (GPUs): the MLP's weight gradients as N products over slices of the tokens, summed in fp32
# (their small outputs leave a Hopper GPU part idle as one product). auto: 2 under quack-epilogue (4 was slower in
# `bench/gpu_mlp.py`), else 4 on Hopper (d20, one H100: 2 slices 1.013x unsplit, 4 slices 1.013x 2, 8 slower),
# unsplit on other GPUs (not measured there).
WGRAD_SPLIT = _wgrad_split()


def use_auto_kernels() -> None:
    """NANOCHAT_MLP_KERNEL=auto in base_train and mid_train: the quack epilogues where quack runs (measured in base
    training), before the model is compiled."""
    global _QUACK_EPILOGUE, WGRAD_SPLIT
    if MLP_KERNEL == "auto" and _QUACK_MLP is not None:
        _QUACK_EPILOGUE = True
        WGRAD_SPLIT = _wgrad_split()


def mlp_kernels() -> str:
    """What a training step's MLP runs on a GPU, for the training log."""
    kernel = "quack-epilogue" if _QUACK_EPILOGUE else "quack" if _QUACK_MLP and MLP_KERNEL == "quack" else "torch"
    return f"MLP: {kernel} kernels, weight gradients split {WGRAD_SPLIT} (NANOCHAT_MLP_KERNEL={MLP_KERNEL})"


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        training = x.is_cuda and torch.is_grad_enabled()  # inference (sampling, evals) runs the torch code
        if _QUACK_EPILOGUE and training:
            return relu_sq_mlp(x, self.c_fc.weight, self.c_proj.weight, WGRAD_SPLIT, "quack")
        if _QUACK_MLP is not None and MLP_KERNEL == "quack" and training:
            return _QUACK_MLP(x, self.c_fc.weight, self.c_proj.weight, activation="relu_sq", tuned=False)
        if WGRAD_SPLIT > 1 and training:
            x = splitk_linear(x, self.c_fc.weight, WGRAD_SPLIT)
            return splitk_linear(F.relu(x).square(), self.c_proj.weight, WGRAD_SPLIT)
        x = self.c_fc(x)
        x = F.relu(x).square()
        return self.c_proj(x)


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, cos_sin, kv_cache):
        x = x + self.attn(norm(x), cos_sin, kv_cache)
        x = x + self.mlp(norm(x))
        return x


class GPT(nn.Module):
    def __init__(self, config, pad_vocab_size_to=64):
        super().__init__()
        self.config = config
        # pad the vocab to a multiple of 64 for efficient matmuls; the padding rows are never read
        padded_vocab_size = ((config.vocab_size + pad_vocab_size_to - 1) // pad_vocab_size_to) * pad_vocab_size_to
        if padded_vocab_size != config.vocab_size:
            print0(
                f"Padding vocab_size from {config.vocab_size} to {padded_vocab_size} to be divisible by {pad_vocab_size_to}"
            )
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(padded_vocab_size, config.n_embd),
                "h": nn.ModuleList([Block(config, layer_idx) for layer_idx in range(config.n_layer)]),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, padded_vocab_size, bias=False)
        # training loss through nanochat/fused_loss.py (no full logits): None = on CUDA only, where it saves ~5 GB
        # at d12-d20; on CPU the plain head is a little faster. True / False force it.
        self.chunked_loss = None
        # rotary tables for 10x the sequence length; non-persistent buffers: never saved or loaded
        self.rotary_seq_len = config.sequence_len * 10
        head_dim = config.n_embd // config.n_head
        cos, sin = self._precompute_rotary_embeddings(self.rotary_seq_len, head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def init_weights(self):
        # RNG order matters for reproducibility: wte, lm_head, then per block c_q, c_k, c_v, c_fc
        torch.nn.init.normal_(self.transformer.wte.weight, mean=0.0, std=1.0)
        torch.nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.001)
        n_embd = self.config.n_embd
        s = 3**0.5 * n_embd**-0.5  # uniform(-s, s) has std 1/sqrt(n_embd)
        for block in self.transformer.h:
            torch.nn.init.uniform_(block.attn.c_q.weight, -s, s)
            torch.nn.init.uniform_(block.attn.c_k.weight, -s, s)
            torch.nn.init.uniform_(block.attn.c_v.weight, -s, s)
            torch.nn.init.zeros_(block.attn.c_proj.weight)  # residual branches start as identity
            torch.nn.init.uniform_(block.mlp.c_fc.weight, -s, s)
            torch.nn.init.zeros_(block.mlp.c_proj.weight)
        head_dim = self.config.n_embd // self.config.n_head
        cos, sin = self._precompute_rotary_embeddings(self.rotary_seq_len, head_dim)
        self.cos, self.sin = cos, sin
        # on CUDA the embedding is kept in bf16 (saves memory; the residual stream is bf16 under autocast anyway)
        if self.transformer.wte.weight.device.type == "cuda":
            self.transformer.wte.to(dtype=torch.bfloat16)

    def _precompute_rotary_embeddings(self, seq_len, head_dim):
        return rotary_tables(seq_len, head_dim, device=self.transformer.wte.weight.device)

    def get_device(self):
        return self.transformer.wte.weight.device

    def estimate_flops(self):
        """FLOPs per token (forward + backward), classic formula: 6 * non-embedding params + attention."""
        nparams = sum(p.numel() for p in self.parameters())
        nparams_embedding = self.transformer.wte.weight.numel()
        layers, h, q, t = (
            self.config.n_layer,
            self.config.n_head,
            self.config.n_embd // self.config.n_head,
            self.config.sequence_len,
        )
        return 6 * (nparams - nparams_embedding) + 12 * layers * h * q * t

    def setup_optimizers(self, unembedding_lr=0.004, embedding_lr=0.2, matrix_lr=0.02, weight_decay=0.0):
        """[AdamW(lm_head, wte), Muon(all block matrices)]; AdamW lrs scaled by (C/768)^-0.5."""
        model_dim = self.config.n_embd
        ddp, rank, local_rank, world_size = get_dist_info()
        matrix_params = list(self.transformer.h.parameters())
        embedding_params = list(self.transformer.wte.parameters())
        lm_head_params = list(self.lm_head.parameters())
        assert len(list(self.parameters())) == len(matrix_params) + len(embedding_params) + len(lm_head_params)
        dmodel_lr_scale = (model_dim / 768) ** -0.5
        print0(f"Scaling the LR for the AdamW parameters ∝1/√({model_dim}/768) = {dmodel_lr_scale:.6f}")
        adam_groups = [
            dict(params=lm_head_params, lr=unembedding_lr * dmodel_lr_scale),
            dict(params=embedding_params, lr=embedding_lr * dmodel_lr_scale),
        ]
        adamw_kwargs = dict(betas=(0.8, 0.95), eps=1e-10, weight_decay=weight_decay)
        # Under DDP the training scripts average the gradients first (common.all_reduce_gradients), so every rank
        # runs the same plain optimizers on the same gradients: replicated state, no sharding.
        adamw_optimizer = torch.optim.AdamW(adam_groups, fused=True, **adamw_kwargs)
        muon_optimizer = Muon(matrix_params, lr=matrix_lr, momentum=0.95)
        optimizers = [adamw_optimizer, muon_optimizer]
        for opt in optimizers:
            for group in opt.param_groups:
                group["initial_lr"] = group["lr"]
        return optimizers

    def forward(self, idx, targets=None, kv_cache=None, loss_reduction="mean"):
        B, T = idx.size()
        assert T <= self.cos.size(1), (
            f"Sequence length grew beyond the rotary embeddings cache: {T} > {self.cos.size(1)}"
        )
        assert idx.device == self.cos.device, (
            f"Rotary embeddings and idx are on different devices: {idx.device} != {self.cos.device}"
        )
        assert self.cos.dtype == torch.bfloat16, "Rotary embeddings must be in bfloat16"
        T0 = 0 if kv_cache is None else kv_cache.get_pos()  # offset the rotary tables by the cache position
        cos_sin = self.cos[:, T0 : T0 + T], self.sin[:, T0 : T0 + T]
        x = self.transformer.wte(idx)
        x = norm(x)
        for block in self.transformer.h:
            x = block(x, cos_sin, kv_cache)
        x = norm(x)
        softcap = 15
        chunked = self.chunked_loss if self.chunked_loss is not None else x.is_cuda
        if chunked and targets is not None and loss_reduction == "mean" and torch.is_grad_enabled():
            # training: the same loss and gradients, computed in chunks without materialising the logits
            return softcap_cross_entropy(x, self.lm_head.weight, targets, self.config.vocab_size, softcap)
        logits = self.lm_head(x)
        logits = logits[..., : self.config.vocab_size]  # drop the padding columns
        logits = logits.float()
        logits = softcap * torch.tanh(logits / softcap)
        if targets is not None:
            return F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1, reduction=loss_reduction
            )
        return logits

    @torch.inference_mode()
    def generate(self, tokens, max_tokens, temperature=1.0, top_k=None, seed=42):
        """Naive autoregressive streaming (no KV cache): batch 1, yields token ids."""
        assert isinstance(tokens, list)
        device = self.get_device()
        rng = torch.Generator(device=device).manual_seed(seed) if temperature > 0 else None
        ids = torch.tensor([tokens], dtype=torch.long, device=device)
        for _ in range(max_tokens):
            logits = self.forward(ids)[:, -1, :]
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            if temperature > 0:
                probs = F.softmax(logits / temperature, dim=-1)
                next_ids = torch.multinomial(probs, num_samples=1, generator=rng)
            else:
                next_ids = torch.argmax(logits, dim=-1, keepdim=True)
            ids = torch.cat((ids, next_ids), dim=1)
            yield next_ids.item()
