"""The model's size from its depth (nanochat's one dial): dimensions, parameters, FLOPs per token, and the peak
GPU memory of base training. The run plan (plan.py) and the GPU checks use it."""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3


def peak_flops(gpu_name: str | None) -> float | None:
    from preflight.gputable import lookup

    model = lookup(gpu_name)
    return model.peak_bf16 if model else None


@dataclass
class ModelShape:
    """The model's dimensions for a depth (nanochat's one dial)."""

    depth: int
    model_dim: int
    n_head: int
    head_dim: int
    vocab_size: int
    padded_vocab: int
    seq_len: int

    @property
    def wte_params(self) -> int:
        return self.padded_vocab * self.model_dim

    @property
    def params(self) -> int:
        return 12 * self.depth * self.model_dim**2 + 2 * self.wte_params

    @property
    def scaling_params(self) -> int:
        """The block matrices and lm_head: what base_train's ratio counts from 2026-01-27 (value embeddings and
        their gates, the wte and the scalars are left out; the gates are ~0.001%)."""
        return 12 * self.depth * self.model_dim**2 + self.wte_params

    @property
    def flops_per_token(self) -> int:
        return 6 * (self.params - self.wte_params) + 12 * self.depth * self.n_head * self.head_dim * self.seq_len


def model_shape(
    depth: int,
    vocab_size: int,
    seq_len: int,
    aspect_ratio: int = 64,
    head_dim: int = 128,
    model_dim: int | None = None,
    nudged: bool = False,
) -> ModelShape:
    """The model base_train builds. ``model_dim``: a width given outright (a fork's --model-dim); ``nudged``: the
    width rounded up to a multiple of head_dim (base_train from 2026-01-18, `base_dim = depth * aspect_ratio`)."""
    model_dim = model_dim or depth * aspect_ratio
    if nudged:
        model_dim = math.ceil(model_dim / head_dim) * head_dim
    n_head = max(1, math.ceil(model_dim / head_dim))
    return ModelShape(
        depth, model_dim, n_head, model_dim // n_head, vocab_size, ((vocab_size + 63) // 64) * 64, seq_len
    )


def auto_batch_size(shape: ModelShape, reference: ModelShape, rule: dict) -> int:
    """base_train's auto-sized total batch (from 2026-02-06): the reference depth's batch times (D / D_ref) ** exponent,
    rounded to a power of two; D and D_ref are the same ratio of the scaling params, so theirs is the ratio."""
    predicted = rule["reference_batch"] * (shape.scaling_params / reference.scaling_params) ** rule["exponent"]
    return 2 ** round(math.log2(predicted))


def memory_estimate_bytes(shape: ModelShape, device_batch_size: int) -> int:
    """Peak GPU memory of base training, per rank.

    16 B/param (fp32 weights, grads, Muon/AdamW state) + logits + activations + CUDA context.
    The two per-token coefficients are fitted to classic nanochat measured on one H200
    (measured on an H200: d20 dbs32 73.8 GiB, d12 dbs32 31.7 GiB); treat the result as +-10%.
    """
    tokens = device_batch_size * shape.seq_len
    return int(
        16 * shape.params
        + 2.1 * tokens * shape.padded_vocab
        + 36.5 * tokens * shape.depth * shape.model_dim
        + 1.5 * GIB
    )
