"""The MLP (c_fc -> ReLU^2 -> c_proj) as one autograd Function: ReLU^2 computed in the epilogue of c_fc's product and
its derivative in the epilogue of c_proj's input gradient, the other products as cuBLAS with split-K weight gradients.

quack's Hopper GEMMs (`quack.mlp.mlp_func`) fuse the two epilogues, which saves the elementwise passes over the 4x-wide
hidden activation, but compute the weight gradients with their own GEMMs, 20-60% slower than cuBLAS's at d20; cuBLAS
in turn leaves a Hopper GPU part idle on those small outputs unless they are split over the tokens
(nanochat/splitk_linear.py). This Function takes the best of both: quack only for the two products with an
activation epilogue (`kernel="quack"`), cuBLAS for the rest, the weight gradients as `split` token-slice products.
`kernel="torch"` computes the same two products as torch code (CPU, tests, other GPUs).

Only the pre-activation is kept for the backward (c_proj's input is rebuilt by the epilogue there), as in quack's MLP.
"""

import torch
import torch.nn.functional as F

from nanochat.splitk_linear import weight_grad


def _act_forward(kernel, x, w1):
    """(pre, relu(pre)^2) for pre = x @ w1^T."""
    if kernel == "quack":
        from quack.gemm_interface import gemm_act

        return gemm_act(x, w1.t(), activation="relu_sq", tuned=False)
    pre = x @ w1.t()
    return pre, F.relu(pre).square()


def _act_backward(kernel, dout, w2, pre):
    """(d pre, relu(pre)^2) for d post = dout @ w2: the gradient through ReLU^2 and c_proj's input rebuilt."""
    if kernel == "quack":
        from quack.gemm_interface import gemm_dact

        return gemm_dact(dout, w2, pre, activation="relu_sq", tuned=False)
    relu = F.relu(pre)
    return (dout @ w2) * (2 * relu), relu.square()


class ReluSqMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, w2, split, kernel):
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, w1, w2 = x.to(dtype), w1.to(dtype), w2.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            ctx.shape, ctx.split, ctx.kernel = x.shape, split, kernel
            x = x.reshape(-1, x.size(-1))
            pre, post = _act_forward(kernel, x, w1)
            ctx.save_for_backward(x, w1, w2, pre)
            return (post @ w2.t()).view(*ctx.shape[:-1], w2.size(0))

    @staticmethod
    def backward(ctx, dout):
        x, w1, w2, pre = ctx.saved_tensors
        with torch.autocast(dout.device.type, enabled=False):
            dout = dout.reshape(-1, dout.size(-1)).to(x.dtype).contiguous()
            dpre, post = _act_backward(ctx.kernel, dout, w2, pre)
            dw2 = weight_grad(dout, post, ctx.split)
            dx = (dpre @ w1).view(ctx.shape)
            return dx, weight_grad(dpre, x, ctx.split), dw2, None, None


def relu_sq_mlp(x, w1, w2, split=1, kernel="torch"):
    """F.linear(relu(F.linear(x, w1))^2, w2), its weight gradients reduced as `split` products."""
    return ReluSqMLP.apply(x, w1, w2, split, kernel)
