"""
Chunked lm_head + logit soft-cap + cross-entropy, without the full logits.

The classic head computes logits = x @ W.T for every token (B*T x vocab; 8.6 GB in bf16 at 32 x 2048 x 65,536),
casts them to fp32, soft-caps them (softcap * tanh(logits / softcap)) and takes the mean cross-entropy; autograd
then keeps the logits alive until backward and writes a gradient of the same size (+8 GiB of peak memory at d20
even when compiled). Here the tokens are cut into chunks: for each chunk the logits are formed, the loss is summed
and the gradients with respect to x and W are computed at once (the chunk's logits are dropped right after), so
only one chunk's logits ever exist (+3.2 GiB at d20). Inside a compiled model this function is a graph break on
purpose: traced into the graph, the chunks' buffers were all kept alive (+9.9 GiB).

The numerics follow the classic path step by step: the matmul in the autocast dtype (bf16 on CUDA), the soft-cap,
log-sum-exp and softmax in fp32, the logit gradient cast back to the matmul dtype before the two backward matmuls,
mean over the targets that are not ignore_index (-1). The gradient of W is accumulated over chunks in fp32.
Backward only scales the saved gradients by the incoming scalar (the loss is a scalar mean).
On NVIDIA GPUs each chunk's soft-cap, loss and logit gradient are one Triton kernel (softcap_ce_kernel.py) that
writes the gradient over the chunk's logits; NANOCHAT_LOSS_KERNEL=compiled picks the torch.compile version instead.
"""

import os

import torch

from nanochat.common import triton_module

IGNORE_INDEX = -1
CHUNK_ELEMENTS = 2**29  # logits per chunk (1 GiB in bf16): 8,192 tokens at a 65,536 vocab


def _chunk_loss_and_grad(logits, targets, softcap, inv_n):
    """Summed loss over the chunk's valid targets and d(mean loss)/d(logits), in the logits' dtype."""
    s = softcap * torch.tanh(logits.float() / softcap)
    lse = torch.logsumexp(s, dim=-1, keepdim=True)
    valid = (targets != IGNORE_INDEX).unsqueeze(1)
    safe = targets.clamp_min(0).unsqueeze(1)  # any in-range index where the target is ignored; masked below
    loss_sum = ((lse - s.gather(1, safe)) * valid).sum()
    cols = torch.arange(s.size(1), device=s.device).unsqueeze(0)
    grad_s = (torch.exp(s - lse) - (cols == safe).float()) * (valid * inv_n)  # (softmax - one-hot) / n
    grad_logits = grad_s * (1 - (s / softcap) ** 2)  # through softcap * tanh(z / softcap)
    return loss_sum, grad_logits.to(logits.dtype)


_compiled_chunk = None
_kernel_failed = False  # set when Triton could not build the kernel here: the compiled version from then on
KERNEL = os.environ.get("NANOCHAT_LOSS_KERNEL", "triton")  # "compiled": the two-kernel torch.compile version


def chunk_loss_and_grad(logits, targets, softcap, inv_n):
    """(summed loss, gradient) of one chunk. On CUDA the gradient may be written over the logits (one Triton kernel,
    nanochat/softcap_ce_kernel.py), else a compiled kernel pair (a reduction, then the gradient); eager elsewhere.
    A second chunk shape (SFT's varying batches) gets one shape-generic recompile rather than one per shape."""
    global _compiled_chunk, _kernel_failed
    if logits.device.type != "cuda":
        return _chunk_loss_and_grad(logits, targets, softcap, inv_n)
    kernel = triton_module("softcap_ce_kernel") if KERNEL == "triton" and not _kernel_failed else None
    if kernel and kernel.supported(logits, softcap):
        try:
            return kernel.chunk_loss_and_grad_(logits, targets, softcap, inv_n), logits
        except Exception as e:  # a Triton that cannot build the kernel here: fails before writing anything
            _kernel_failed = True
            print(f"nanochat: the Triton loss kernel is unavailable ({type(e).__name__}: {e}); using torch.compile")
    if _compiled_chunk is None:
        _compiled_chunk = torch.compile(_chunk_loss_and_grad)
    return _compiled_chunk(logits, targets, softcap, inv_n)


_addmm_out_dtype = True  # until torch says otherwise


def add_matmul_fp32(acc, a, b):
    """acc + a @ b with fp32 acc and bf16 a, b. One cuBLAS call (fp32 output) where addmm takes out_dtype (CUDA),
    else the product is rounded to the inputs' dtype and added (as autocast's own weight gradient is)."""
    global _addmm_out_dtype
    if _addmm_out_dtype and acc.is_cuda and acc.dtype != a.dtype:
        try:
            return torch.addmm(acc, a, b, out_dtype=acc.dtype)
        except (RuntimeError, TypeError):
            _addmm_out_dtype = False
    return acc + (a @ b).to(acc.dtype)


class _SoftcapCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, targets, vocab_size, softcap, chunk_rows, compute_dtype):
        with torch.autocast(x.device.type, enabled=False):
            xc = x.reshape(-1, x.size(-1)).to(compute_dtype)
            w = weight[:vocab_size].to(compute_dtype)  # the padding rows are never read
            t = targets.reshape(-1).long()
            inv_n = 1.0 / (t != IGNORE_INDEX).sum()  # mean over valid targets (NaN if none, as F.cross_entropy)
            loss = torch.zeros((), dtype=torch.float32, device=x.device)
            grad_x = torch.empty_like(xc)
            grad_w = torch.zeros((vocab_size, weight.size(1)), dtype=torch.float32, device=weight.device)
            for i in range(0, xc.size(0), chunk_rows):
                xi = xc[i : i + chunk_rows]
                loss_sum, g = chunk_loss_and_grad(xi @ w.t(), t[i : i + chunk_rows], softcap, inv_n)
                loss = loss + loss_sum
                torch.mm(g, w, out=grad_x[i : i + chunk_rows])
                grad_w = add_matmul_fp32(grad_w, g.t(), xi)
            if weight.size(0) > vocab_size:  # the padding rows get a zero gradient
                grad_w = torch.cat([grad_w, grad_w.new_zeros(weight.size(0) - vocab_size, weight.size(1))])
        ctx.save_for_backward(grad_x.view(x.shape).to(x.dtype), grad_w.to(weight.dtype))
        return loss * inv_n

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w = ctx.saved_tensors
        return grad_x * grad_loss.to(grad_x.dtype), grad_w * grad_loss.to(grad_w.dtype), None, None, None, None, None


@torch.compiler.disable  # inside a compiled model: a graph break, so each chunk's buffers are freed as it ends
def softcap_cross_entropy(x, weight, targets, vocab_size, softcap, chunk_rows=None):
    """Mean cross-entropy of softcap * tanh((x @ weight[:vocab_size].T) / softcap) against targets (-1 ignored)."""
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_ELEMENTS // vocab_size)
    # the matmul dtype autocast would use for lm_head (bf16 on CUDA), else the input's
    device_type = x.device.type
    compute_dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x.dtype
    return _SoftcapCrossEntropy.apply(x, weight, targets, vocab_size, float(softcap), int(chunk_rows), compute_dtype)
