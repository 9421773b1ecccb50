"""
One Triton kernel for a chunk of the training loss: soft-cap, log-sum-exp, the row's loss and the logit gradient.

fused_loss.py forms one chunk of logits (rows x vocab, bf16) with a cuBLAS GEMM; this kernel then turns those
logits into the gradient of the mean loss, in place, and writes each row's loss. The compiled PyTorch version of
the same math runs as two kernels (a reduction, then the gradient) that read the chunk from memory three or more
times; here each row is read twice by the same program (the second read mostly from L2) and written once.

The math is fused_loss._chunk_loss_and_grad's, in fp32 from the bf16 logits z:
    t = tanh(z / c), s = c * t                       (the soft-cap)
    lse = log(sum(exp(s)))                            (shifted by c, not the row max: |s| <= c, so no overflow)
    loss = lse - s[target]                            (0 where target == -1)
    grad = (exp(s - lse) - onehot(target)) * inv_n * (1 - t^2), cast back to the logits' dtype
The caller sums the row losses; inv_n is 1 / (number of targets != -1), read from the device (no host sync).
"""

import functools

import torch
import triton
import triton.language as tl

from nanochat.common import nvidia_capability
from nanochat.fused_loss import IGNORE_INDEX

_IGNORE_INDEX = tl.constexpr(IGNORE_INDEX)  # a kernel reads module globals only when they are constexpr
MAX_SOFTCAP = 40.0  # exp(s - c) >= exp(-2c) must stay a normal fp32 number (exp(-80) ~ 1.8e-35)


@triton.jit
def _tanh(u):
    # exp-based: one exp and one reciprocal; exact limits at +-inf, and the absolute error (~1e-7) is far below
    # the bf16 rounding of the logits it is applied to
    return 1.0 - 2.0 / (tl.exp(2.0 * u) + 1.0)


@triton.jit
def _tanh_approx(u):
    # the hardware's tanh.approx.f32 (one MUFU op, ~2^-11 relative error): measured, see nanochat/LOG.md
    return tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [u], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _tanh_of(u, APPROX_TANH: tl.constexpr):
    if APPROX_TANH:
        return _tanh_approx(u)
    return _tanh(u)


@triton.jit
def _softcap_ce_rows(
    logits_ptr,  # (n_rows, n_cols), rows contiguous; overwritten with the gradient
    targets_ptr,  # (n_rows,) int64, -1 = ignored
    loss_ptr,  # (n_rows,) fp32 out
    inv_n_ptr,  # () fp32: 1 / number of valid targets over the whole batch
    n_rows,
    n_cols,
    stride_row,
    softcap,
    BLOCK: tl.constexpr,
    APPROX_TANH: tl.constexpr,
):
    inv_c = 1.0 / softcap
    inv_n = tl.load(inv_n_ptr)
    # persistent: a bounded number of rows in flight keeps each row in L2 between its two passes
    for row in range(tl.program_id(0), n_rows, tl.num_programs(0)):
        base = logits_ptr + tl.cast(row, tl.int64) * stride_row
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            z = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32)
            s = softcap * _tanh_of(z * inv_c, APPROX_TANH)
            acc += tl.where(mask, tl.exp(s - softcap), 0.0)
        lse = softcap + tl.log(tl.sum(acc, axis=0))
        target = tl.load(targets_ptr + row)
        valid = target != _IGNORE_INDEX
        z_t = tl.load(base + tl.where(valid, target, 0)).to(tl.float32)
        s_t = softcap * _tanh(z_t * inv_c)
        tl.store(loss_ptr + row, tl.where(valid, lse - s_t, 0.0))
        scale = tl.where(valid, inv_n, 0.0)
        # second pass from the end of the row: its last blocks are the likeliest to still be in L2
        for back in range(0, n_cols, BLOCK):
            cols = ((n_cols - 1) // BLOCK) * BLOCK - back + tl.arange(0, BLOCK)
            mask = cols < n_cols
            z = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32)
            t = _tanh_of(z * inv_c, APPROX_TANH)
            p = tl.exp(softcap * t - lse)
            g = (p - tl.where(cols == target, 1.0, 0.0)) * scale * (1.0 - t * t)
            tl.store(base + cols, g.to(logits_ptr.dtype.element_ty), mask=mask)


# chosen on one H200 with `python bench/gpu_kernels.py loss` (8,192 x 65,536 bf16 chunks; nanochat/LOG.md): 0.87 ms
# per chunk against 1.87 ms for the compiled pair. The kernel is bound by the special-function units (exp, tanh,
# reciprocal), so the hardware tanh (1.24 -> 0.87 ms) counts more than the memory layout; its error moved the
# loss by 2e-7 and the bf16 gradient by 8e-6 (relative), far below the bf16 rounding of the logits themselves.
BLOCK = 4096
NUM_WARPS = 16
PROGRAMS_PER_SM = 4  # 4 x 512 threads: a full H100/H200 SM; each row's second pass then mostly hits L2
APPROX_TANH = True


@functools.cache
def _sm_count(index):
    return torch.cuda.get_device_properties(index).multi_processor_count


def _sm(device):
    if device.type != "cuda":  # Triton's interpreter (TRITON_INTERPRET=1, tests on CPU)
        return 1
    return _sm_count(device.index if device.index is not None else torch.cuda.current_device())


def supported(logits, softcap):
    """NVIDIA GPUs from sm_75 on (tanh.approx.f32 is PTX); ROCm and older GPUs keep the compiled version."""
    capability = nvidia_capability(logits.device)
    if capability is None or logits.dim() != 2 or logits.stride(1) != 1:
        return False
    return capability >= (7, 5) and 0 < softcap <= MAX_SOFTCAP


def chunk_loss_and_grad_(
    logits, targets, softcap, inv_n, block=None, num_warps=None, programs_per_sm=None, approx_tanh=None
):
    """Summed loss of the chunk's valid targets; logits are overwritten with d(mean loss)/d(logits)."""
    n_rows, n_cols = logits.shape
    programs = max(1, min(n_rows, _sm(logits.device) * (programs_per_sm or PROGRAMS_PER_SM)))
    row_loss = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
    inv_n = torch.as_tensor(inv_n, dtype=torch.float32, device=logits.device)
    _softcap_ce_rows[(programs,)](
        logits,
        targets.contiguous(),
        row_loss,
        inv_n,
        n_rows,
        n_cols,
        logits.stride(0),
        float(softcap),
        BLOCK=block or BLOCK,
        APPROX_TANH=APPROX_TANH if approx_tanh is None else approx_tanh,
        num_warps=num_warps or NUM_WARPS,
    )
    return row_loss.sum()
