"""
Rotary embedding + QK norm of attention's queries and keys, forward and backward, as Triton kernels.

gpt.CausalSelfAttention computes, per head of D channels (x1 = the first D/2, x2 = the last D/2):
    r = (x1 * cos + x2 * sin, x2 * cos - x1 * sin)        (apply_rotary_emb)
    y = r * rstd, rstd = 1 / sqrt(mean(r^2) + eps)          (norm: RMSNorm, eps = float32's machine epsilon)
Compiled by inductor, the backward of that is a kernel that reads the saved inputs and writes the gradients at
about a third of the memory bandwidth (nanochat/LOG.md). Here one row (a token's head) is one row of a tile: the
forward reads x once and writes y and rstd, the backward reads dy, y and rstd and writes dx:
    dr = rstd * (dy - y * mean(dy * y)),  dx = (dr1 * cos - dr2 * sin, dr1 * sin + dr2 * cos)
(dx is dr through the transposed rotation). y is the forward's output, saved anyway for attention's backward, so
nothing more is kept for this backward than rstd (4 bytes per head and token).

`rope_norm` takes the q/k/v projection as one (tokens, (n_q + n_k + n_v) * D) tensor, the product of one GEMM
with the three weights concatenated (or one projection alone, as fp8's Linears give them: any count may be 0), and returns
q and k rotated and normalised, and v copied out, as (tokens, heads, D) tensors; its backward writes the gradients
into one (tokens, columns) tensor, the input of that GEMM's backward. It is a `torch.library.triton_op`, so
torch.compile keeps it inside the graph.

The default on NVIDIA GPUs since it was measured in training (nanochat/LOG.md); NANOCHAT_ROPE_KERNEL=compiled turns it
off (gpt.py).
"""

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from nanochat.common import nvidia_capability

EPS = torch.finfo(torch.float32).eps  # F.rms_norm's default for bf16 and fp32 inputs
BLOCK_ROWS = 8  # rows (token heads) per program: the fastest of 20 settings on an H200 (bench/gpu_kernels.py rope)
NUM_WARPS = 1


@triton.jit
def _tile(n_rows, H, HALF: tl.constexpr, BLOCK_R: tl.constexpr):
    # this program's rows (row = token * H + head), which of them exist, their token and head, a half's columns
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    return rows, rows < n_rows, rows // H, rows % H, tl.arange(0, HALF)[None, :]


@triton.jit
def _rope_norm_fwd(
    x_ptr,  # (N, columns): row n's segment starts at col0; head h at col0 + h * D
    stride_xn,
    col0,
    out_ptr,  # (N, H, D) contiguous
    rstd_ptr,  # (N * H,) fp32, written when ROTATE
    cos_ptr,  # (T, D/2): row t at cos_ptr + t * stride_ct
    sin_ptr,
    stride_ct,
    n_rows,
    H,
    T,
    eps,
    HALF: tl.constexpr,
    BLOCK_R: tl.constexpr,
    ROTATE: tl.constexpr,  # False: copy the segment (v)
):
    rows, in_range, n, h, cols = _tile(n_rows, H, HALF, BLOCK_R)
    mask = in_range[:, None]
    src = x_ptr + (n.to(tl.int64) * stride_xn + col0 + h * (2 * HALF))[:, None] + cols
    dst = out_ptr + rows.to(tl.int64)[:, None] * (2 * HALF) + cols
    x1 = tl.load(src, mask=mask, other=0.0)
    x2 = tl.load(src + HALF, mask=mask, other=0.0)
    if ROTATE:
        t = (n % T)[:, None] * stride_ct + cols
        c = tl.load(cos_ptr + t, mask=mask, other=0.0).to(tl.float32)
        s = tl.load(sin_ptr + t, mask=mask, other=0.0).to(tl.float32)
        x1 = x1.to(tl.float32)
        x2 = x2.to(tl.float32)
        r1 = x1 * c + x2 * s
        r2 = x2 * c - x1 * s
        rstd = tl.rsqrt((tl.sum(r1 * r1, axis=1) + tl.sum(r2 * r2, axis=1)) / (2 * HALF) + eps)
        tl.store(rstd_ptr + rows, rstd, mask=in_range)
        x1 = r1 * rstd[:, None]
        x2 = r2 * rstd[:, None]
    tl.store(dst, x1.to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(dst + HALF, x2.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rope_norm_bwd(
    dy_ptr,  # (N, H, D), last dimension contiguous
    stride_dn,
    stride_dh,
    y_ptr,  # (N, H, D) contiguous: the forward's output (ROTATE only)
    rstd_ptr,
    cos_ptr,
    sin_ptr,
    stride_ct,
    dx_ptr,  # (N, columns): this segment's gradient starts at col0
    stride_xn,
    col0,
    n_rows,
    H,
    T,
    HALF: tl.constexpr,
    BLOCK_R: tl.constexpr,
    ROTATE: tl.constexpr,
):
    rows, in_range, n, h, cols = _tile(n_rows, H, HALF, BLOCK_R)
    mask = in_range[:, None]
    grad = dy_ptr + (n.to(tl.int64) * stride_dn + h.to(tl.int64) * stride_dh)[:, None] + cols
    g1 = tl.load(grad, mask=mask, other=0.0)
    g2 = tl.load(grad + HALF, mask=mask, other=0.0)
    if ROTATE:
        saved = y_ptr + rows.to(tl.int64)[:, None] * (2 * HALF) + cols
        y1 = tl.load(saved, mask=mask, other=0.0).to(tl.float32)
        y2 = tl.load(saved + HALF, mask=mask, other=0.0).to(tl.float32)
        g1 = g1.to(tl.float32)
        g2 = g2.to(tl.float32)
        rstd = tl.load(rstd_ptr + rows, mask=in_range, other=0.0)
        proj = ((tl.sum(g1 * y1, axis=1) + tl.sum(g2 * y2, axis=1)) / (2 * HALF))[:, None]
        d1 = (g1 - y1 * proj) * rstd[:, None]
        d2 = (g2 - y2 * proj) * rstd[:, None]
        t = (n % T)[:, None] * stride_ct + cols
        c = tl.load(cos_ptr + t, mask=mask, other=0.0).to(tl.float32)
        s = tl.load(sin_ptr + t, mask=mask, other=0.0).to(tl.float32)
        g1 = d1 * c - d2 * s
        g2 = d1 * s + d2 * c
    dst = dx_ptr + (n.to(tl.int64) * stride_xn + col0 + h * (2 * HALF))[:, None] + cols
    tl.store(dst, g1.to(dx_ptr.dtype.element_ty), mask=mask)
    tl.store(dst + HALF, g2.to(dx_ptr.dtype.element_ty), mask=mask)


def _launch_fwd(x, col0, out, rstd, cos, sin, seq_len, rotate):
    n_rows, heads, head_dim = out.shape[0] * out.shape[1], out.shape[1], out.shape[2]
    if n_rows == 0:
        return
    wrap_triton(_rope_norm_fwd)[(triton.cdiv(n_rows, BLOCK_ROWS),)](
        x, x.stride(0), col0, out, rstd, cos, sin, cos.stride(0), n_rows, heads, seq_len, EPS,
        HALF=head_dim // 2, BLOCK_R=BLOCK_ROWS, ROTATE=rotate, num_warps=NUM_WARPS,
    )  # fmt: skip


def _launch_bwd(dy, y, rstd, cos, sin, dx, col0, seq_len, rotate):
    n_rows, heads, head_dim = dy.shape[0] * dy.shape[1], dy.shape[1], dy.shape[2]
    if n_rows == 0:
        return
    wrap_triton(_rope_norm_bwd)[(triton.cdiv(n_rows, BLOCK_ROWS),)](
        dy, dy.stride(0), dy.stride(1), y, rstd, cos, sin, cos.stride(0), dx, dx.stride(0), col0, n_rows, heads,
        seq_len, HALF=head_dim // 2, BLOCK_R=BLOCK_ROWS, ROTATE=rotate, num_warps=NUM_WARPS,
    )  # fmt: skip


@triton_op("nanochat::rope_norm", mutates_args={})
def rope_norm(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, seq_len: int, n_q: int, n_k: int, n_v: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x: (tokens, (n_q + n_k + n_v) * D), tokens in (batch, seq_len) order; cos, sin: (seq_len, D/2).
    Returns q (tokens, n_q, D) and k, rotated and normalised, v copied, and the rows' rstd (fp32, q's then k's)."""
    tokens, head_dim = x.shape[0], x.shape[1] // (n_q + n_k + n_v)
    assert x.stride(1) == 1 and cos.stride(1) == 1 and sin.stride(1) == 1, "rows must be dense"
    q = x.new_empty(tokens, n_q, head_dim)
    k = x.new_empty(tokens, n_k, head_dim)
    v = x.new_empty(tokens, n_v, head_dim)
    rstd = x.new_empty(tokens * (n_q + n_k), dtype=torch.float32)
    _launch_fwd(x, 0, q, rstd, cos, sin, seq_len, True)
    _launch_fwd(x, n_q * head_dim, k, rstd[tokens * n_q :], cos, sin, seq_len, True)
    _launch_fwd(x, (n_q + n_k) * head_dim, v, rstd, cos, sin, seq_len, False)
    return q, k, v, rstd


@triton_op("nanochat::rope_norm_backward", mutates_args={})
def rope_norm_backward(
    dq: torch.Tensor,
    dk: torch.Tensor,
    dv: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    rstd: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    seq_len: int,
) -> torch.Tensor:
    """The gradient of rope_norm's x, from those of q, k and v (each (tokens, heads, D), last dimension dense)."""
    tokens, n_q, head_dim = q.shape
    n_k, n_v = k.shape[1], dv.shape[1]
    dx = dq.new_empty(tokens, (n_q + n_k + n_v) * head_dim)
    _launch_bwd(dq, q, rstd, cos, sin, dx, 0, seq_len, True)
    _launch_bwd(dk, k, rstd[tokens * n_q :], cos, sin, dx, n_q * head_dim, seq_len, True)
    _launch_bwd(dv, dv, rstd, cos, sin, dx, (n_q + n_k) * head_dim, seq_len, False)
    return dx


def _dense_last(grad, shape, like):
    # an output nobody used gets no gradient (None); the kernels read the last dimension densely
    if grad is None:
        return like.new_zeros(shape)
    return grad if grad.stride(-1) == 1 else grad.contiguous()


def _setup_context(ctx, inputs, output):
    _, cos, sin, seq_len, _, _, _ = inputs
    q, k, v, rstd = output
    ctx.mark_non_differentiable(rstd)
    ctx.set_materialize_grads(False)  # unused outputs: None, not a tensor of zeros per call
    ctx.save_for_backward(q, k, rstd, cos, sin)
    ctx.seq_len, ctx.v_shape = seq_len, v.shape


def _backward(ctx, dq, dk, dv, _drstd):
    q, k, rstd, cos, sin = ctx.saved_tensors
    dq, dk, dv = _dense_last(dq, q.shape, q), _dense_last(dk, k.shape, k), _dense_last(dv, ctx.v_shape, q)
    return rope_norm_backward(dq, dk, dv, q, k, rstd, cos, sin, ctx.seq_len), None, None, None, None, None, None


rope_norm.register_autograd(_backward, setup_context=_setup_context)


def supported(device, head_dim):
    """NVIDIA GPUs from sm_80 (bf16), heads of a power-of-two size; elsewhere gpt.py's torch code runs."""
    capability = nvidia_capability(device)
    return capability is not None and capability >= (8, 0) and head_dim >= 2 and not head_dim & (head_dim - 1)
