"""A bias-free Linear whose weight gradient is computed split over the token dimension.

The MLP's weight gradients (dW = dy^T x) reduce over all 65,536 tokens of a micro-batch into a small 1280 x 5120
output: too few output tiles to fill a Hopper GPU, so cuBLAS runs them at ~580 TFLOP/s against ~720 for the forward
product of the same size. Computing them as a batch of `split` products over slices of the tokens, summed in fp32,
fills the GPU (one H200, d20: 1.484 -> 1.239 ms for c_fc's, `python bench/gpu_kernels.py gemm20`). Each part is
rounded to bf16 as the single product is, and the parts are summed in fp32: the same precision (relative error to
an fp32 reference 1.65e-3 vs 1.62e-3 in tests/test_splitk_linear.py's case).

Forward and input gradient are the plain products. Under autocast the inputs are cast to its dtype first, as F.linear
would, and the body runs with autocast off so the backward sees the same dtypes.
"""

import torch
import torch.nn.functional as F


class SplitKLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, split):
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), weight.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            ctx.split = split
            ctx.save_for_backward(x, weight)
            return F.linear(x, weight)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        with torch.autocast(dy.device.type, enabled=False):
            dy = dy.to(x.dtype)
            dx = dy @ weight
            return dx, weight_grad(dy.flatten(0, -2), x.flatten(0, -2), ctx.split), None


def weight_grad(dy, x, split):
    """dy^T x for dy (n, out), x (n, in), as `split` products over n summed in fp32 (one product where n does not
    divide)."""
    n, fan_out, fan_in = x.size(0), dy.size(1), x.size(1)
    if split < 2 or n % split:
        return (dy.t() @ x).float()
    parts = torch.bmm(dy.t().reshape(fan_out, split, n // split).transpose(0, 1), x.view(split, n // split, fan_in))
    return parts.sum(0, dtype=torch.float32)


def splitk_linear(x, weight, split=2):
    """F.linear(x, weight) whose weight gradient is reduced as `split` products."""
    return SplitKLinear.apply(x, weight, split)
