"""
Opt-in float8 matmuls for training (--fp8=1; Hopper or newer). Off by default: it changes the numerics.

The Linears of the transformer blocks compute their three products (output, input gradient, weight
gradient) with torch._scaled_mm: activations and weights in float8 e4m3, gradients in e5m2, one scale
per tensor from its current absolute maximum (dynamic, nothing to calibrate). The parameters, the
optimizers and the state dict stay as they are (fp32 weights, bf16 autocast elsewhere); lm_head and
the embeddings keep bf16. Without gradients (evaluation, sampling) the plain bf16 product runs.
"""

import torch
import torch.nn as nn

E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2


def _quantize(t, dtype):
    """t in float8 scaled so its largest magnitude lands on the format's max, and the scale to undo it."""
    fmax = torch.finfo(dtype).max
    amax = t.detach().abs().amax().float().clamp(min=1e-12)
    scale = fmax / amax
    q = (t.float() * scale).clamp(-fmax, fmax).to(dtype)
    return q, scale.reciprocal()


def _col_major(t):
    """The same matrix laid out column-major: _scaled_mm wants its second operand that way."""
    return t.t().contiguous().t()


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        lead, k = x.shape[:-1], x.shape[-1]
        xq, x_inv = _quantize(x.reshape(-1, k), E4M3)
        wq, w_inv = _quantize(weight, E4M3)
        out = torch._scaled_mm(xq, wq.t(), scale_a=x_inv, scale_b=w_inv, out_dtype=torch.bfloat16)
        ctx.save_for_backward(xq, x_inv, wq, w_inv)  # float8 copies: a quarter of fp32's memory
        ctx.lead, ctx.x_dtype, ctx.w_dtype = lead, x.dtype, weight.dtype
        return out.view(*lead, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        xq, x_inv, wq, w_inv = ctx.saved_tensors
        gq, g_inv = _quantize(grad.reshape(-1, grad.shape[-1]), E5M2)
        dx = torch._scaled_mm(gq, _col_major(wq), scale_a=g_inv, scale_b=w_inv, out_dtype=torch.bfloat16)
        dw = torch._scaled_mm(
            gq.t().contiguous(), _col_major(xq), scale_a=g_inv, scale_b=x_inv, out_dtype=torch.float32
        )
        return dx.view(*ctx.lead, xq.shape[-1]).to(ctx.x_dtype), dw.to(ctx.w_dtype)


class Fp8Linear(nn.Linear):
    """An nn.Linear (same parameters, same state dict) whose training products run in float8."""

    def forward(self, x):
        rows = x.numel() // x.shape[-1]
        # _scaled_mm needs every dimension a multiple of 16; evaluation and odd shapes take bf16
        if not torch.is_grad_enabled() or rows % 16 or self.in_features % 16 or self.out_features % 16:
            return super().forward(x)
        return _Fp8Matmul.apply(x, self.weight)


def convert_to_fp8(model):
    """Turn every bias-free Linear of the transformer blocks into an Fp8Linear in place; returns how many."""
    n = 0
    for module in model.transformer.h.modules():
        if type(module) is nn.Linear and module.bias is None:
            module.__class__ = Fp8Linear
            n += 1
    return n


def fp8_supported(device_type):
    """float8 tensor-core products exist from compute capability 8.9 (Ada, Hopper) on."""
    return device_type == "cuda" and torch.cuda.get_device_capability() >= (8, 9)


__all__ = ["Fp8Linear", "convert_to_fp8", "fp8_supported"]
